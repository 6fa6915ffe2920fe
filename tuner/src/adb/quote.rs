//! Quoting words for the device's shell: `adb shell` sends one string that the
//! device's `sh` parses, so every argument is quoted before it is joined.

/// Quotes `s` as one word for the device's shell (`sh`/`mksh`): words made only of
/// `[A-Za-z0-9_./=:,+@%-]` stay as they are, anything else is single-quoted with
/// embedded single quotes written as `'\''`. Nothing inside is expanded.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./=:,+@%-".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Joins words into a command line for the device's shell, each quoted.
pub fn shell_words<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn quoting_keeps_words_literal() {
        assert_eq!(shell_quote("abc/d-1.bin"), "abc/d-1.bin");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
        // Round trip through a real sh: every word arrives as one argument, unchanged.
        let words = [
            "a b",
            "it's",
            "x;echo PWNED",
            "&& true",
            "$(echo PWNED)",
            "`id`",
            "\"q\"",
            "back\\slash",
            "*",
            "~",
            "\n",
        ];
        let script = format!(
            "for a in {}; do printf '[%s]' \"$a\"; done",
            shell_words(&words)
        );
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        let want: String = words.iter().map(|w| format!("[{w}]")).collect();
        assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    }
}
