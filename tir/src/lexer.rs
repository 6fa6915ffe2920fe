//! Tokenizer for the tir text format (used by [`crate::parser`]).
//!
//! The lexer never fails outright: an invalid character or malformed number becomes a
//! [`Tok::Error`] token, after which lexing stops; [`Lexed::error`] holds its message.
//! The parser reports that message when it reaches the token, so errors come out in
//! source order.

/// The kind of a token. Identifier, number and punctuation text is found through the
/// token's byte span into the source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Tok {
    /// An identifier or keyword: `[A-Za-z_][A-Za-z0-9_]*`.
    Ident,
    /// An unsigned integer literal: digits only.
    Int,
    /// An unsigned float literal: digits with a fraction and/or an exponent.
    Float,
    /// An operator or delimiter.
    Punct(&'static str),
    /// End of input.
    Eof,
    /// A lexical error (see [`Lexed::error`]); always the last token.
    Error,
}

/// A token with its byte span and 1-based start position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
    pub line: usize,
    pub col: usize,
}

/// Multi-character operators first, so that the longest match wins.
const PUNCTS: [&str; 24] = [
    "==", "!=", "<=", ">=", "&&", "||", "(", ")", "[", "]", "{", "}", ",", ";", ":", "=", "<", ">",
    "+", "-", "*", "/", "%", "!",
];

struct Lexer<'a> {
    src: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    line: usize,
    col: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn eat_while(&mut self, pred: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&pred) {
            self.bump();
        }
    }

    fn skip_trivia(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => self.eat_while(|c| c != '\n'),
                _ => return,
            }
        }
    }

    /// Lexes a number starting at the current (digit) character.
    fn number(&mut self) -> Result<Tok, String> {
        let start = self.pos;
        let mut float = false;
        self.eat_while(|c| c.is_ascii_digit());
        if self.peek() == Some('.') {
            self.bump();
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                let text = self.src.get(start..self.pos).unwrap_or("");
                return Err(format!(
                    "invalid numeric literal '{text}': expected a digit after '.'"
                ));
            }
            self.eat_while(|c| c.is_ascii_digit());
            float = true;
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let exp_digits = match self.peek_at(1) {
                Some('+' | '-') => self.peek_at(2).is_some_and(|c| c.is_ascii_digit()),
                Some(c) => c.is_ascii_digit(),
                None => false,
            };
            if exp_digits {
                self.bump();
                if matches!(self.peek(), Some('+' | '-')) {
                    self.bump();
                }
                self.eat_while(|c| c.is_ascii_digit());
                float = true;
            }
        }
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            self.eat_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            let text = self.src.get(start..self.pos).unwrap_or("");
            return Err(format!("invalid numeric literal '{}'", truncate(text)));
        }
        Ok(if float { Tok::Float } else { Tok::Int })
    }

    fn next_token(&mut self) -> (Token, Option<String>) {
        self.skip_trivia();
        let (start, line, col) = (self.pos, self.line, self.col);
        let kind: Result<Tok, String> = match self.peek() {
            None => Ok(Tok::Eof),
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                self.eat_while(|c| c.is_ascii_alphanumeric() || c == '_');
                Ok(Tok::Ident)
            }
            Some(c) if c.is_ascii_digit() => self.number(),
            Some(c) => {
                let rest = self.rest();
                match PUNCTS.iter().find(|p| rest.starts_with(**p)) {
                    Some(p) => {
                        for _ in 0..p.len() {
                            self.bump();
                        }
                        Ok(Tok::Punct(p))
                    }
                    None => {
                        self.bump();
                        let hint = match c {
                            '&' => " (did you mean '&&'?)",
                            '|' => " (did you mean '||'?)",
                            _ => "",
                        };
                        Err(format!("unexpected character {c:?}{hint}"))
                    }
                }
            }
        };
        let (kind, error) = match kind {
            Ok(k) => (k, None),
            Err(m) => (Tok::Error, Some(m)),
        };
        let token = Token {
            kind,
            start,
            end: self.pos,
            line,
            col,
        };
        (token, error)
    }
}

/// Shortens very long token text for error messages.
pub(crate) fn truncate(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}...")
    }
}

/// The tokens of a text.
pub(crate) struct Lexed {
    /// Ends with a [`Tok::Eof`] token, or with a [`Tok::Error`] token at the first
    /// lexical error.
    pub tokens: Vec<Token>,
    /// The message of the [`Tok::Error`] token, if any.
    pub error: Option<String>,
}

/// Splits `src` into tokens, stopping at the first lexical error.
pub(crate) fn tokenize(src: &str) -> Lexed {
    let mut lexer = Lexer {
        src,
        pos: 0,
        line: 1,
        col: 1,
    };
    let mut tokens = Vec::new();
    loop {
        let (tok, error) = lexer.next_token();
        let stop = matches!(tok.kind, Tok::Eof | Tok::Error);
        tokens.push(tok);
        if stop {
            return Lexed { tokens, error };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        tokenize(src).tokens.into_iter().map(|t| t.kind).collect()
    }

    fn error(src: &str) -> String {
        tokenize(src).error.unwrap_or_default()
    }

    #[test]
    fn numbers_and_operators() {
        assert_eq!(
            kinds("1 1.5 1e20 1.5e-7 a<=b"),
            vec![
                Tok::Int,
                Tok::Float,
                Tok::Float,
                Tok::Float,
                Tok::Ident,
                Tok::Punct("<="),
                Tok::Ident,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn positions_count_characters() {
        let lexed = tokenize("# comment\n  é");
        let last = lexed.tokens.last().copied();
        assert_eq!(
            last.map(|t| (t.kind, t.line, t.col)),
            Some((Tok::Error, 2, 3))
        );
        assert!(lexed
            .error
            .is_some_and(|m| m.contains("unexpected character 'é'")));
    }

    #[test]
    fn bad_numbers() {
        assert_eq!(kinds("1.x"), vec![Tok::Error]);
        assert!(error("1.x").contains("digit after '.'"));
        assert!(error("12ab").contains("'12ab'"));
        assert!(error("1e").contains("'1e'"));
        assert!(error("1.5.2").contains("'1.5.2'"));
        assert!(error("a | b").contains("did you mean '||'?"));
    }
}
