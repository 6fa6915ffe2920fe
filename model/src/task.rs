//! What a model is for and how it is scored: an image classifier on MNIST or a
//! grapheme-to-phoneme model on CMUdict, each with a calibration split (used by
//! pruning: sensitivity scores and refit statistics) and a disjoint test split (used to
//! report accuracy).
//!
//! - MNIST (the 5000-image sample, which is sorted by digit): the images are first
//!   [interleaved](crate::data::mnist::Mnist::interleaved) so that the digits take
//!   turns, then the first `calibration` calibrate and the rest test; both splits and
//!   both calibration halves hold every digit in equal numbers.
//!   The pruning score is the mean log-probability of the right class (smoother than
//!   top-1 on a few hundred images); the report is top-1.
//! - Calibration data is halved: the refit is fit on the first half; its strength is
//!   chosen and every pruning score is measured on the second.
//! - CMUdict: [`Lexicon::split`](crate::data::cmudict::Lexicon::split) — 3000 test
//!   words and the next `calibration` words in hash order. The pruning score is minus
//!   the phoneme error rate; the report is word accuracy and PER.

use crate::calibrate::{Calibration, Recorder};
use crate::data::cmudict::{self, Entry};
use crate::data::mnist::{self, Mnist};
use crate::error::ModelError;
use crate::evaluate;
use crate::exec::{LayerExec, Reference};
use crate::finetune::{finetune, FinetuneOptions, FinetuneReport, Samples};
use crate::paired::{PairRecorder, Tape};
use crate::trainable_seq2seq::{finetune_seq2seq_on, TeacherWords};
use crate::Array;
use crate::{Body, Model};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// A data set split for one kind of model.
#[derive(Debug, Clone)]
pub enum Task {
    /// Digit classification.
    Mnist {
        /// Calibration images.
        calibration: Mnist,
        /// Test images.
        test: Mnist,
    },
    /// Grapheme-to-phoneme conversion.
    G2p {
        /// Calibration words.
        calibration: Vec<Entry>,
        /// Test words.
        test: Vec<Entry>,
        /// The other words (after the calibration words in hash order): more
        /// fine-tuning data ([`FinetuneWords`]).
        rest: Vec<Entry>,
    },
}

/// Which words fine-tune the g2p model (ignored by MNIST, which must keep the
/// default). The pool is every non-test word in hash order: the calibration words,
/// then the rest of the dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FinetuneWords {
    /// Training words: the first this many of the pool that are not validation words
    /// (`usize::MAX`: all of them); 0 keeps the default, the first half of the
    /// calibration words.
    pub train: usize,
    /// Validation words: the last this many of the pool; 0 keeps the default, the
    /// second half of the calibration words.
    pub valid: usize,
}

/// Fine-tuning data prepared once, reused by every stage of gradual pruning.
#[derive(Debug, Clone)]
pub enum FinetuneSet {
    /// MNIST: the calibration split, prepared when used.
    Mnist,
    /// CMUdict: training and validation words with their teacher logits.
    G2p {
        /// Training words.
        fit: TeacherWords,
        /// Validation words.
        valid: TeacherWords,
    },
}

/// Accuracy figures of a model on a split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Accuracy {
    /// Top-1 accuracy in `[0, 1]` over `n` images.
    Top1 {
        /// Fraction correct.
        top1: f64,
        /// Images.
        n: usize,
    },
    /// Word accuracy and phoneme error rate over `n` words.
    G2p {
        /// Fraction of words exactly right.
        words: f64,
        /// Phoneme edit distance / reference phonemes.
        per: f64,
        /// Words.
        n: usize,
    },
}

impl std::fmt::Display for Accuracy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Accuracy::Top1 { top1, n } => write!(f, "top-1 {:.2}% ({n} images)", top1 * 100.0),
            Accuracy::G2p { words, per, n } => write!(
                f,
                "word accuracy {:.2}%, PER {:.2}% ({n} words)",
                words * 100.0,
                per * 100.0
            ),
        }
    }
}

/// Resolves a data argument: `mnist` or `cmudict` (in `models_dir`), or a path to a
/// `.csv.gz` MNIST sample or a `.dict` CMUdict file.
pub fn data_path(arg: &str, models_dir: &Path) -> PathBuf {
    match arg {
        "mnist" => models_dir.join(mnist::FILE),
        "cmudict" => models_dir.join(cmudict::FILE),
        p => PathBuf::from(p),
    }
}

impl FinetuneSet {
    /// The same data with only the first `n` training words (g2p; MNIST data is
    /// returned as it is): cheaper intermediate stages of gradual pruning.
    pub fn first_train_words(&self, n: usize) -> FinetuneSet {
        match self {
            FinetuneSet::Mnist => FinetuneSet::Mnist,
            FinetuneSet::G2p { fit, valid } => FinetuneSet::G2p {
                fit: fit.first(n),
                valid: valid.clone(),
            },
        }
    }
}

impl Task {
    /// Loads the data for `model` from `path` with `calibration` calibration samples.
    pub fn load(model: &Model, path: &Path, calibration: usize) -> Result<Task, ModelError> {
        match &model.body {
            Body::Graph(_) => {
                let all = mnist::load_file(path)?.interleaved();
                if calibration >= all.len() {
                    return Err(ModelError::Format {
                        path: path.display().to_string(),
                        reason: format!("{} images, fewer than {calibration} calibration images plus a test set", all.len()),
                    });
                }
                Ok(Task::Mnist {
                    calibration: all.slice(0..calibration),
                    test: all.slice(calibration..all.len()),
                })
            }
            Body::Seq2Seq(_) => {
                let lex = cmudict::load_file(path)?;
                let split = lex.split(cmudict::TEST_WORDS, usize::MAX);
                let mut cal = split.calibration;
                let rest = cal.split_off(calibration.min(cal.len()));
                Ok(Task::G2p {
                    calibration: cal,
                    test: split.test,
                    rest,
                })
            }
        }
    }

    /// Number of test samples.
    pub fn test_len(&self) -> usize {
        match self {
            Task::Mnist { test, .. } => test.len(),
            Task::G2p { test, .. } => test.len(),
        }
    }

    /// The test split cut to its first `n` samples.
    pub fn limit_test(&mut self, n: usize) {
        match self {
            Task::Mnist { test, .. } => *test = test.slice(0..n),
            Task::G2p { test, .. } => test.truncate(n),
        }
    }

    /// The pruning score of `model` on the second (validation) half of the
    /// calibration split (higher is better), with the plain-Rust reference, in
    /// parallel over samples. The refit is fit on the first half only, so this scores
    /// it on data it was not fit to.
    pub fn score(&self, model: &Model) -> Result<f64, ModelError> {
        match self {
            Task::Mnist { calibration, .. } => {
                let half = calibration.len() / 2;
                let valid = calibration.slice(half..calibration.len());
                let logp: Vec<f64> = (0..valid.len())
                    .into_par_iter()
                    .map_init(Reference::default, |exec, i| {
                        let x = valid
                            .input(i)
                            .ok_or_else(|| ModelError::exec("data", "image"))?;
                        let y = evaluate::logits(model, &x, exec)?;
                        let label = usize::from(valid.labels[i]);
                        let m = y.data().iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                        let lse = m + y
                            .data()
                            .iter()
                            .map(|&v| (v as f64 - m).exp())
                            .sum::<f64>()
                            .ln();
                        let v = y.data().get(label).copied().unwrap_or(f32::NEG_INFINITY) as f64;
                        Ok(v - lse)
                    })
                    .collect::<Result<_, ModelError>>()?;
                Ok(logp.iter().sum::<f64>() / logp.len().max(1) as f64)
            }
            Task::G2p { calibration, .. } => {
                let half = calibration.len() / 2;
                let s = evaluate::g2p_par(model, &calibration[half..], Reference::default)?;
                Ok(-s.phoneme_error_rate())
            }
        }
    }

    /// Fine-tunes the pruned `student` toward the dense `teacher` on the calibration
    /// split ([`crate::finetune`]): the first half trains, the second validates (the
    /// test split is never used). MNIST: graph models on images; CMUdict: the
    /// encoder-decoder, teacher-forced on words ([`crate::trainable_seq2seq`]).
    pub fn finetune(
        &self,
        student: &Model,
        teacher: &Model,
        opts: &FinetuneOptions,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(Model, FinetuneReport), ModelError> {
        let set = self.finetune_set(teacher, FinetuneWords::default())?;
        self.finetune_on(&set, student, teacher, opts, progress)
    }

    /// The g2p fine-tuning words chosen by `words` (see [`FinetuneWords`]): training
    /// and validation, disjoint, never test words.
    pub fn g2p_finetune_words(
        calibration: &[Entry],
        rest: &[Entry],
        words: FinetuneWords,
    ) -> (Vec<Entry>, Vec<Entry>) {
        let half = calibration.len() / 2;
        let pool_len = calibration.len() + rest.len();
        let at = |i: usize| {
            if i < calibration.len() {
                &calibration[i]
            } else {
                &rest[i - calibration.len()]
            }
        };
        let valid = if words.valid == 0 {
            half..calibration.len()
        } else {
            pool_len.saturating_sub(words.valid)..pool_len
        };
        let train_n = if words.train == 0 { half } else { words.train };
        let train: Vec<Entry> = (0..pool_len)
            .filter(|i| !valid.contains(i))
            .take(train_n)
            .map(|i| at(i).clone())
            .collect();
        (train, valid.map(|i| at(i).clone()).collect())
    }

    /// Prepares the fine-tuning data once: for CMUdict, the words chosen by `words`
    /// with the `teacher`'s logits; MNIST takes only the default `words`.
    pub fn finetune_set(
        &self,
        teacher: &Model,
        words: FinetuneWords,
    ) -> Result<FinetuneSet, ModelError> {
        match self {
            Task::Mnist { .. } => {
                if words != FinetuneWords::default() {
                    return Err(ModelError::Format {
                        path: teacher.name.clone(),
                        reason: "the fine-tuning word counts apply to the g2p model only"
                            .to_string(),
                    });
                }
                Ok(FinetuneSet::Mnist)
            }
            Task::G2p {
                calibration, rest, ..
            } => {
                let (fit, valid) = Self::g2p_finetune_words(calibration, rest, words);
                Ok(FinetuneSet::G2p {
                    fit: TeacherWords::new(teacher, &fit)?,
                    valid: TeacherWords::new(teacher, &valid)?,
                })
            }
        }
    }

    /// [`Task::finetune`] on data prepared by [`Task::finetune_set`].
    pub fn finetune_on(
        &self,
        set: &FinetuneSet,
        student: &Model,
        teacher: &Model,
        opts: &FinetuneOptions,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(Model, FinetuneReport), ModelError> {
        match (self, set) {
            (Task::Mnist { calibration, .. }, FinetuneSet::Mnist) => {
                let half = calibration.len() / 2;
                let inputs: Vec<Array> = (0..calibration.len())
                    .map(|i| {
                        calibration
                            .input(i)
                            .ok_or_else(|| ModelError::exec("data", "image"))
                    })
                    .collect::<Result<_, _>>()?;
                let labels: Vec<usize> =
                    calibration.labels.iter().map(|&l| usize::from(l)).collect();
                let fit = Samples {
                    inputs: &inputs[..half],
                    labels: Some(&labels[..half]),
                };
                let valid = Samples {
                    inputs: &inputs[half..],
                    labels: Some(&labels[half..]),
                };
                finetune(student, teacher, fit, valid, opts, progress)
            }
            (Task::G2p { .. }, FinetuneSet::G2p { fit, valid }) => {
                finetune_seq2seq_on(student, fit, valid, opts, progress)
            }
            _ => Err(ModelError::Format {
                path: student.name.clone(),
                reason: "fine-tuning data of another kind of model".to_string(),
            }),
        }
    }

    /// Calls `run(half, sample)` for every calibration sample in order, `half` 0 for
    /// the first half of the split (to fit on) and 1 for the second (to validate on).
    fn each_calibration_sample(
        &self,
        run: &mut dyn FnMut(usize, &Sample<'_>) -> Result<(), ModelError>,
    ) -> Result<(), ModelError> {
        match self {
            Task::Mnist { calibration, .. } => {
                let half = calibration.len() / 2;
                for i in 0..calibration.len() {
                    let x = calibration
                        .input(i)
                        .ok_or_else(|| ModelError::exec("data", "image"))?;
                    run(usize::from(i >= half), &Sample::Image(x))?;
                }
            }
            Task::G2p { calibration, .. } => {
                let half = calibration.len() / 2;
                for (i, e) in calibration.iter().enumerate() {
                    run(usize::from(i >= half), &Sample::Word(&e.word))?;
                }
            }
        }
        Ok(())
    }

    /// Runs the dense `model` over each half of the calibration split and returns the
    /// Gram matrices of every layer's inputs (for refitting and validating it).
    pub fn calibration_grams(&self, model: &Model) -> Result<Calibration, ModelError> {
        let mut halves = [Recorder::default(), Recorder::default()];
        self.each_calibration_sample(&mut |half, sample| sample.run(model, &mut halves[half]))?;
        let [fit, valid] = halves;
        Ok(Calibration {
            fit: fit.into_grams(),
            valid: valid.into_grams(),
        })
    }

    /// Runs `dense` and then `pruned` (the same model, some layers pruned) over each
    /// half of the calibration split, sample by sample, and returns paired Gram
    /// matrices of every layer's inputs in `pruned` against those in `dense`
    /// ([`crate::paired`]). The g2p model's output layer returns the dense model's
    /// logits, so the pruned model decodes the dense model's phonemes.
    pub fn paired_calibration(
        &self,
        dense: &Model,
        pruned: &Model,
    ) -> Result<Calibration, ModelError> {
        let forced = match &pruned.body {
            crate::Body::Seq2Seq(s) => Some(s.output),
            crate::Body::Graph(_) => None,
        };
        let mut halves = [PairRecorder::new(forced), PairRecorder::new(forced)];
        self.each_calibration_sample(&mut |half, sample| {
            let mut tape = Tape::default();
            sample.run(dense, &mut tape)?;
            halves[half].follow(tape);
            sample.run(pruned, &mut halves[half])
        })?;
        let [fit, valid] = halves;
        Ok(Calibration {
            fit: fit.into_grams(),
            valid: valid.into_grams(),
        })
    }

    /// Accuracy of `model` on the test split with executors from `new_exec`, in
    /// parallel over samples.
    pub fn accuracy<E: LayerExec>(
        &self,
        model: &Model,
        new_exec: impl Fn() -> E + Sync + Send,
    ) -> Result<Accuracy, ModelError> {
        match self {
            Task::Mnist { test, .. } => {
                let t = evaluate::mnist_par(model, test, new_exec)?;
                Ok(Accuracy::Top1 {
                    top1: t.accuracy(),
                    n: t.total,
                })
            }
            Task::G2p { test, .. } => {
                let s = evaluate::g2p_par(model, test, new_exec)?;
                Ok(Accuracy::G2p {
                    words: s.word_accuracy(),
                    per: s.phoneme_error_rate(),
                    n: test.len(),
                })
            }
        }
    }
}

/// One calibration sample: an MNIST image or a CMUdict word.
enum Sample<'a> {
    Image(Array),
    Word(&'a str),
}

impl Sample<'_> {
    /// Runs `model` on the sample with `exec` (the g2p model decodes the word).
    fn run(&self, model: &Model, exec: &mut dyn LayerExec) -> Result<(), ModelError> {
        match self {
            Sample::Image(x) => evaluate::logits(model, x, exec).map(|_| ()),
            Sample::Word(w) => crate::zoo::g2p::predict(model, w, exec).map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(prefix: &str, n: usize) -> Vec<Entry> {
        (0..n)
            .map(|i| Entry {
                word: format!("{prefix}{i}"),
                phonemes: vec!["AA1".to_string()],
            })
            .collect()
    }

    fn names(v: &[Entry]) -> Vec<&str> {
        v.iter().map(|e| e.word.as_str()).collect()
    }

    #[test]
    fn fine_tuning_words_are_disjoint_and_default_to_the_calibration_halves() {
        let (cal, rest) = (entries("c", 6), entries("r", 5));
        let (fit, valid) = Task::g2p_finetune_words(&cal, &rest, FinetuneWords::default());
        assert_eq!(names(&fit), ["c0", "c1", "c2"]);
        assert_eq!(names(&valid), ["c3", "c4", "c5"]);
        // All training words: the calibration words first, then the rest, minus the
        // validation words at the end of the pool.
        let all = FinetuneWords {
            train: usize::MAX,
            valid: 2,
        };
        let (fit, valid) = Task::g2p_finetune_words(&cal, &rest, all);
        assert_eq!(names(&valid), ["r3", "r4"]);
        assert_eq!(
            names(&fit),
            ["c0", "c1", "c2", "c3", "c4", "c5", "r0", "r1", "r2"]
        );
        let some = FinetuneWords { train: 7, valid: 0 };
        let (fit, valid) = Task::g2p_finetune_words(&cal, &rest, some);
        assert_eq!(names(&valid), ["c3", "c4", "c5"]);
        assert_eq!(names(&fit), ["c0", "c1", "c2", "r0", "r1", "r2", "r3"]);
        assert!(fit.iter().all(|e| !valid.contains(e)));
    }
}
