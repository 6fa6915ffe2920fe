//! Accuracy figures: top-1 accuracy of a classifier, and word accuracy and phoneme
//! error rate of a grapheme-to-phoneme model.

/// Top-1 accuracy of a classifier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Top1 {
    /// Samples whose argmax was the label.
    pub correct: usize,
    /// Samples scored.
    pub total: usize,
}

impl Top1 {
    /// `correct / total` (0 when empty).
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct, self.total)
    }

    /// The sum of two scores.
    pub fn merge(self, o: Top1) -> Top1 {
        Top1 {
            correct: self.correct + o.correct,
            total: self.total + o.total,
        }
    }
}

/// Scores of a grapheme-to-phoneme model against reference pronunciations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct G2pScore {
    /// Words scored.
    pub words: usize,
    /// Words whose predicted phonemes equal the reference exactly.
    pub exact: usize,
    /// Sum over words of the edit (Levenshtein) distance between prediction and
    /// reference phoneme sequences.
    pub edits: usize,
    /// Sum over words of the reference's phoneme count.
    pub reference_phonemes: usize,
}

impl G2pScore {
    /// The score of one word.
    pub fn of(predicted: &[String], reference: &[String]) -> G2pScore {
        G2pScore {
            words: 1,
            exact: usize::from(predicted == reference),
            edits: levenshtein(predicted, reference),
            reference_phonemes: reference.len(),
        }
    }

    /// Fraction of words predicted exactly.
    pub fn word_accuracy(&self) -> f64 {
        ratio(self.exact, self.words)
    }

    /// Phoneme error rate: total edit distance over total reference phonemes.
    pub fn phoneme_error_rate(&self) -> f64 {
        ratio(self.edits, self.reference_phonemes)
    }

    /// The sum of two scores.
    pub fn merge(self, o: G2pScore) -> G2pScore {
        G2pScore {
            words: self.words + o.words,
            exact: self.exact + o.exact,
            edits: self.edits + o.edits,
            reference_phonemes: self.reference_phonemes + o.reference_phonemes,
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Edit distance (insertions, deletions and substitutions of one element each).
pub fn levenshtein<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(x != y);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        let s = |t: &str| t.chars().collect::<Vec<_>>();
        assert_eq!(levenshtein(&s("kitten"), &s("sitting")), 3);
        assert_eq!(levenshtein(&s(""), &s("abc")), 3);
        assert_eq!(levenshtein(&s("abc"), &s("")), 3);
        assert_eq!(levenshtein(&s("flaw"), &s("lawn")), 2);
        assert_eq!(levenshtein(&s("same"), &s("same")), 0);
    }

    #[test]
    fn scores_merge() {
        let p = |t: &str| t.split(' ').map(str::to_string).collect::<Vec<_>>();
        let a = G2pScore::of(&p("K AE1 T"), &p("K AE1 T"));
        let b = G2pScore::of(&p("D AA1 G Z"), &p("D AO1 G"));
        let m = a.merge(b);
        assert_eq!(
            (m.words, m.exact, m.edits, m.reference_phonemes),
            (2, 1, 2, 6)
        );
        assert!((m.word_accuracy() - 0.5).abs() < 1e-12);
        assert!((m.phoneme_error_rate() - 2.0 / 6.0).abs() < 1e-12);
        let t = Top1 {
            correct: 3,
            total: 4,
        }
        .merge(Top1 {
            correct: 1,
            total: 4,
        });
        assert_eq!(t.accuracy(), 0.5);
        assert_eq!(Top1::default().accuracy(), 0.0);
    }
}
