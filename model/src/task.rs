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
use crate::trainable_seq2seq::finetune_seq2seq;
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
                let split = lex.split(cmudict::TEST_WORDS, calibration);
                Ok(Task::G2p {
                    calibration: split.calibration,
                    test: split.test,
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
        match self {
            Task::Mnist { calibration, .. } => {
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
            Task::G2p { calibration, .. } => {
                let half = calibration.len() / 2;
                finetune_seq2seq(
                    student,
                    teacher,
                    &calibration[..half],
                    &calibration[half..],
                    opts,
                    progress,
                )
            }
        }
    }

    /// Runs the dense `model` over each half of the calibration split and returns the
    /// Gram matrices of every layer's inputs (for refitting and validating it).
    pub fn calibration_grams(&self, model: &Model) -> Result<Calibration, ModelError> {
        let mut halves = [Recorder::default(), Recorder::default()];
        match self {
            Task::Mnist { calibration, .. } => {
                let half = calibration.len() / 2;
                for i in 0..calibration.len() {
                    let x = calibration
                        .input(i)
                        .ok_or_else(|| ModelError::exec("data", "image"))?;
                    evaluate::logits(model, &x, &mut halves[usize::from(i >= half)])?;
                }
            }
            Task::G2p { calibration, .. } => {
                let half = calibration.len() / 2;
                for (i, e) in calibration.iter().enumerate() {
                    crate::zoo::g2p::predict(model, &e.word, &mut halves[usize::from(i >= half)])?;
                }
            }
        }
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
