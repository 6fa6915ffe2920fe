//! Accuracy recovery by short masked fine-tuning with knowledge distillation.
//!
//! The student is a pruned (and usually refit) model, the teacher its dense
//! original: a graph model here ([`finetune`]), the GRU encoder-decoder in
//! [`crate::trainable_seq2seq`]; both use the loop of [`train`]. The student's kept weights and biases are trained with Adam on the
//! [distillation loss](crate::distill) toward the teacher's logits; the BCR pattern
//! is kept exactly: gradients exist only at kept positions and every step re-zeroes
//! the pruned ones, so block size, pattern and every layer's `tir` workload stay the
//! same ([`Trainable::write_back`]).
//!
//! Data (graph models): the calibration split only, halved as in pruning: the first half trains
//! (shuffled every epoch, each image shifted by a random offset of up to
//! [`FinetuneOptions::shift`] pixels in both directions: targets come from the
//! teacher, so augmented inputs need no labels), the second half validates. The
//! validation distillation loss (the training objective on held-out images, without
//! augmentation; smoother on a few hundred images than top-1 or the right class's
//! log-probability, which are reported too) picks the learning rate (each candidate
//! trains one epoch from the same start; the best continues) and the epoch to keep
//! (the best one, including the start: fine-tuning never returns a model that
//! validates worse than its input).
//!
//! Deterministic for a seed: the shuffles and shifts come from one seeded generator,
//! and a batch's gradient is the in-order sum of fixed chunks computed in parallel.

use crate::array::Array;
use crate::backprop::Pattern;
use crate::distill::{log_prob, Distillation};
use crate::error::ModelError;
use crate::trainable::Trainable;
use crate::Model;
use rayon::prelude::*;
use std::ops::Range;
use std::time::Instant;
use tir::rng::SplitMix64;

/// Samples per chunk of a batch (one parallel job; fixed, so sums do not depend on
/// the thread count).
const CHUNK: usize = 4;

/// How to fine-tune.
#[derive(Debug, Clone, PartialEq)]
pub struct FinetuneOptions {
    /// Epochs over the training half (0: no training, the input model is returned).
    pub epochs: usize,
    /// Samples per step.
    pub batch: usize,
    /// Candidate Adam learning rates; each trains the first epoch from the same
    /// start and the one with the best validation score continues.
    pub learning_rates: Vec<f32>,
    /// The learning rate decays along a cosine to this fraction of its start by the
    /// last epoch.
    pub final_lr_fraction: f32,
    /// The loss.
    pub distillation: Distillation,
    /// Largest random shift in pixels of a training image (4-D inputs only; the
    /// border pixels fill what is shifted in).
    pub shift: usize,
    /// Seed of the shuffles and shifts.
    pub seed: u64,
}

impl Default for FinetuneOptions {
    fn default() -> Self {
        FinetuneOptions {
            epochs: 8,
            batch: 32,
            learning_rates: vec![1e-3, 3e-4],
            final_lr_fraction: 0.05,
            distillation: Distillation {
                temperature: 4.0,
                hard_weight: 0.5,
            },
            shift: 2,
            seed: 1,
        }
    }
}

/// Model inputs with their labels (class indices) when known.
#[derive(Debug, Clone, Copy)]
pub struct Samples<'a> {
    /// The inputs, each of the model's input shape.
    pub inputs: &'a [Array],
    /// One label per input, or `None`.
    pub labels: Option<&'a [usize]>,
}

impl Samples<'_> {
    fn label(&self, i: usize) -> Option<usize> {
        self.labels.and_then(|l| l.get(i).copied())
    }
}

/// Validation figures of a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Validation {
    /// The score that selects (higher is better): minus the mean distillation loss.
    pub score: f64,
    /// Mean distillation loss (with the hard-label term when labels exist).
    pub loss: f64,
    /// Mean log-probability of the right class when labels exist.
    pub log_prob: Option<f64>,
    /// Top-1 accuracy when labels exist.
    pub top1: Option<f64>,
}

/// One trained epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochStats {
    /// The run's starting learning rate.
    pub lr: f32,
    /// The epoch (1-based).
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
    /// Validation after the epoch.
    pub valid: Validation,
    /// Seconds since fine-tuning began.
    pub elapsed_s: f64,
}

/// The outcome of [`finetune`].
#[derive(Debug, Clone, PartialEq)]
pub struct FinetuneReport {
    /// Validation of the input model.
    pub start: Validation,
    /// Every trained epoch, learning-rate probes included, in order.
    pub epochs: Vec<EpochStats>,
    /// The learning rate and epoch kept (`None`: no epoch beat the input model, which
    /// is returned unchanged).
    pub best: Option<(f32, usize)>,
    /// Validation of the returned model.
    pub end: Validation,
    /// Trained values (kept weights and biases).
    pub trained_values: usize,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Adam's state.
#[derive(Debug, Clone)]
struct Adam {
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    t: i32,
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

impl Adam {
    fn new<N: Student>(net: &N) -> Adam {
        Adam {
            m: net.zero_grads(),
            v: net.zero_grads(),
            t: 0,
        }
    }

    /// One step on `net` with gradients `g`, at the kept positions `kept` only (a
    /// pruned position has a zero gradient and zero moments, so Adam would leave it
    /// at zero anyway: skipping it gives the same values with a tenth of the work
    /// at 10x).
    fn step<N: Student>(&mut self, net: &mut N, g: &[Vec<f32>], kept: &KeptRanges, lr: f32) {
        self.t += 1;
        let c1 = 1.0 - BETA1.powi(self.t);
        let c2 = 1.0 - BETA2.powi(self.t);
        for (i, w) in net.tensors_mut().iter_mut().enumerate() {
            let (m, v, gi) = (&mut self.m[i], &mut self.v[i], &g[i]);
            for run in &kept[i] {
                for j in run.clone() {
                    let gj = gi[j];
                    m[j] = BETA1 * m[j] + (1.0 - BETA1) * gj;
                    v[j] = BETA2 * v[j] + (1.0 - BETA2) * gj * gj;
                    w[j] -= lr * (m[j] / c1) / ((v[j] / c2).sqrt() + EPS);
                }
            }
        }
    }
}

/// Per tensor, the kept positions as ranges of its flat (row-major) index: a
/// pattern's runs, or the whole tensor when it has no pattern.
pub type KeptRanges = Vec<Vec<Range<usize>>>;

/// The [`KeptRanges`] of a student.
pub fn kept_ranges<N: Student>(net: &N) -> KeptRanges {
    net.tensors()
        .iter()
        .zip(net.patterns())
        .map(|(t, p)| match p {
            Some(p) => p.flat_runs().collect(),
            None => std::iter::once(0..t.len()).collect(),
        })
        .collect()
}

/// `x` (NCHW) shifted by `(dy, dx)` pixels, the border pixels filling in; other
/// shapes are returned unchanged.
pub fn shift_image(x: &Array, dy: isize, dx: isize) -> Array {
    let &[n, c, h, w] = x.shape() else {
        return x.clone();
    };
    if (dy == 0 && dx == 0) || h == 0 || w == 0 {
        return x.clone();
    }
    let mut y = x.clone();
    let src = x.data();
    for plane in 0..n * c {
        for r in 0..h {
            let sr = (r as isize - dy).clamp(0, h as isize - 1) as usize;
            for col in 0..w {
                let sc = (col as isize - dx).clamp(0, w as isize - 1) as usize;
                y.data_mut()[(plane * h + r) * w + col] = src[(plane * h + sr) * w + sc];
            }
        }
    }
    y
}

fn logits_of(net: &Trainable, x: &Array) -> Result<Vec<f32>, ModelError> {
    let tape = net.forward(x)?;
    tape.logits()
        .map(|l| l.data().to_vec())
        .ok_or_else(|| ModelError::exec("logits", "not computed"))
}

fn classes_of(net: &Trainable, x: &Array) -> Result<usize, ModelError> {
    let tape = net.forward(x)?;
    tape.logits()
        .and_then(|l| l.shape().last().copied())
        .ok_or_else(|| ModelError::exec("logits", "not computed"))
}

/// Validation of `net` against the teacher's logits `targets` on `valid`.
fn validate(
    net: &Trainable,
    valid: &Samples<'_>,
    targets: &[Vec<f32>],
    loss: &Distillation,
    classes: usize,
) -> Result<Validation, ModelError> {
    let per: Vec<(f64, f64, bool)> = (0..valid.inputs.len())
        .into_par_iter()
        .map(|i| {
            let z = logits_of(net, &valid.inputs[i])?;
            let label = valid.label(i);
            let (l, _) = loss.loss(&z, &targets[i], classes, label);
            let (lp, ok) = match label {
                Some(c) => {
                    let best = Array::new(vec![z.len()], z.clone()).and_then(|a| a.argmax());
                    (log_prob(&z, c), best == Some(c))
                }
                None => (0.0, false),
            };
            Ok((l, lp, ok))
        })
        .collect::<Result<_, ModelError>>()?;
    let n = per.len().max(1) as f64;
    let mean_loss = per.iter().map(|p| p.0).sum::<f64>() / n;
    let labelled = valid.labels.is_some();
    Ok(Validation {
        score: -mean_loss,
        loss: mean_loss,
        log_prob: labelled.then(|| per.iter().map(|p| p.1).sum::<f64>() / n),
        top1: labelled.then(|| per.iter().filter(|p| p.2).count() as f64 / n),
    })
}

/// One image's loss and gradient contribution (added to `grads`).
fn sample_grad(
    student: &Trainable,
    teacher: &Trainable,
    x: &Array,
    label: Option<usize>,
    loss: &Distillation,
    classes: usize,
    grads: &mut [Vec<f32>],
) -> Result<f64, ModelError> {
    let t = logits_of(teacher, x)?;
    let tape = student.forward(x)?;
    let z = tape
        .logits()
        .ok_or_else(|| ModelError::exec("logits", "not computed"))?;
    let (l, d) = loss.loss(z.data(), &t, classes, label);
    student.backward(&tape, &d, grads)?;
    Ok(l)
}

/// A student's trainable parameters: tensors with their kept patterns.
pub trait Student: Clone + Send + Sync {
    /// The parameter tensors.
    fn tensors(&self) -> &[Vec<f32>];
    /// The parameter tensors, to update.
    fn tensors_mut(&mut self) -> &mut [Vec<f32>];
    /// The kept pattern of each tensor (`None`: all of it trains).
    fn patterns(&self) -> &[Option<Pattern>];
    /// Zero gradients, one per tensor.
    fn zero_grads(&self) -> Vec<Vec<f32>> {
        self.tensors().iter().map(|t| vec![0.0; t.len()]).collect()
    }
    /// Trained values (kept weights and biases).
    fn trained_values(&self) -> usize {
        self.tensors()
            .iter()
            .zip(self.patterns())
            .map(|(t, p)| p.as_ref().map_or(t.len(), Pattern::kept))
            .sum()
    }
}

impl Student for Trainable {
    fn tensors(&self) -> &[Vec<f32>] {
        &self.tensors
    }
    fn tensors_mut(&mut self) -> &mut [Vec<f32>] {
        &mut self.tensors
    }
    fn patterns(&self) -> &[Option<Pattern>] {
        &self.patterns
    }
}

/// The summed loss of a chunk of training samples, each given as its index with two
/// random draws (for augmentation), their gradients added to the last argument.
pub type SampleGrad<'a, N> =
    dyn Fn(&N, &[(usize, [u64; 2])], &mut [Vec<f32>]) -> Result<f64, ModelError> + Sync + 'a;

/// Validation of a student.
pub type Validate<'a, N> = dyn Fn(&N) -> Result<Validation, ModelError> + Sync + 'a;

/// Trains `net` for one epoch over `n` training samples; returns the mean loss.
///
/// A batch is cut into fixed chunks of `chunk` samples, each chunk's gradient is
/// accumulated in its own buffer (in parallel), and the buffers are added in chunk
/// order, so the result does not depend on the thread count. The buffers are kept
/// from batch to batch and only their kept positions are cleared and added (the
/// backward passes never write a pruned position).
#[allow(clippy::too_many_arguments)]
fn train_epoch<N: Student>(
    net: &mut N,
    adam: &mut Adam,
    n: usize,
    grad: &SampleGrad<'_, N>,
    batch: usize,
    chunk: usize,
    lr: f32,
    rng: &mut SplitMix64,
    kept: &KeptRanges,
) -> Result<f64, ModelError> {
    let chunk = chunk.max(1);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let batch = batch.max(1);
    let mut buffers: Vec<Vec<Vec<f32>>> = (0..batch.div_ceil(chunk))
        .map(|_| net.zero_grads())
        .collect();
    let mut total = 0.0;
    for batch in order.chunks(batch) {
        let jobs: Vec<(usize, [u64; 2])> = batch
            .iter()
            .map(|&i| (i, [rng.next_u64(), rng.next_u64()]))
            .collect();
        let net_ref: &N = net;
        let used = jobs.len().div_ceil(chunk);
        let losses: Vec<f64> = jobs
            .par_chunks(chunk)
            .zip(buffers[..used].par_iter_mut())
            .map(|(chunk, g)| {
                for (t, ranges) in g.iter_mut().zip(kept) {
                    for r in ranges {
                        t[r.clone()].fill(0.0);
                    }
                }
                grad(net_ref, chunk, g)
            })
            .collect::<Result<_, ModelError>>()?;
        let (first, rest) = buffers[..used].split_at_mut(1);
        let g = &mut first[0];
        for pg in rest.iter() {
            for ((a, b), ranges) in g.iter_mut().zip(pg).zip(kept) {
                for r in ranges {
                    a[r.clone()]
                        .iter_mut()
                        .zip(&b[r.clone()])
                        .for_each(|(x, y)| *x += y);
                }
            }
        }
        let scale = 1.0 / batch.len() as f32;
        for (t, ranges) in g.iter_mut().zip(kept) {
            for r in ranges {
                t[r.clone()].iter_mut().for_each(|v| *v *= scale);
            }
        }
        adam.step(net, g, kept, lr);
        total += losses.iter().sum::<f64>();
    }
    Ok(total / n.max(1) as f64)
}

/// The best validation score so far, its learning rate and epoch (`None`: the
/// start), and its parameters.
type Best = (f64, Option<(f32, usize)>, Vec<Vec<f32>>);

/// The learning rate of `epoch` (1-based) of `epochs` for a run starting at `lr`.
fn lr_at(lr: f32, epoch: usize, epochs: usize, final_fraction: f32) -> f32 {
    let f = final_fraction.clamp(0.0, 1.0);
    let progress = if epochs <= 1 {
        0.0
    } else {
        (epoch - 1) as f32 / (epochs - 1) as f32
    };
    lr * (f + (1.0 - f) * 0.5 * (1.0 + (std::f32::consts::PI * progress).cos()))
}

/// Checks the options shared by every kind of model.
pub(crate) fn check_options(name: &str, opts: &FinetuneOptions) -> Result<(), ModelError> {
    if opts.learning_rates.is_empty() || opts.learning_rates.iter().any(|&l| l.is_nan() || l <= 0.0)
    {
        return Err(ModelError::Format {
            path: name.to_string(),
            reason: format!(
                "fine-tuning needs positive learning rates, got {:?}",
                opts.learning_rates
            ),
        });
    }
    Ok(())
}

fn fmt_valid(v: &Validation) -> String {
    let mut s = format!("valid loss {:.4}", v.loss);
    if let (Some(lp), Some(t)) = (v.log_prob, v.top1) {
        s.push_str(&format!(", log-prob {lp:.4}, top-1 {:.2}%", 100.0 * t));
    }
    s
}

/// The training loop of every kind of model: the learning-rate probe, the epochs
/// (shuffled order, batches of `opts.batch` samples, Adam with a cosine schedule,
/// pruned positions re-zeroed), validation after each epoch, and the best epoch kept
/// (or `start` when none validates better). `grad` gives training sample `i`'s loss
/// and gradient, `validate` scores a student on held-out data; `chunk` samples make
/// one job of a batch (a fixed number, so results do not depend on the thread
/// count).
pub fn train<N: Student>(
    start: &N,
    n_train: usize,
    chunk: usize,
    grad: &SampleGrad<'_, N>,
    validate: &Validate<'_, N>,
    opts: &FinetuneOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<(N, FinetuneReport), ModelError> {
    let t0 = Instant::now();
    let first = validate(start)?;
    progress(&format!("fine-tune: start: {}", fmt_valid(&first)));
    let mut report = FinetuneReport {
        start: first,
        epochs: Vec::new(),
        best: None,
        end: first,
        trained_values: start.trained_values(),
        seconds: 0.0,
    };
    if opts.epochs == 0 {
        report.seconds = t0.elapsed().as_secs_f64();
        return Ok((start.clone(), report));
    }
    let mut best: Best = (first.score, None, start.tensors().to_vec());
    let kept = kept_ranges(start);
    let mut run_epoch = |net: &mut N,
                         adam: &mut Adam,
                         rng: &mut SplitMix64,
                         lr0: f32,
                         epoch: usize,
                         report: &mut FinetuneReport,
                         best: &mut Best|
     -> Result<Validation, ModelError> {
        let lr = lr_at(lr0, epoch, opts.epochs, opts.final_lr_fraction);
        let train_loss = train_epoch(net, adam, n_train, grad, opts.batch, chunk, lr, rng, &kept)?;
        let v = validate(net)?;
        let stats = EpochStats {
            lr: lr0,
            epoch,
            train_loss,
            valid: v,
            elapsed_s: t0.elapsed().as_secs_f64(),
        };
        progress(&format!(
            "fine-tune: lr {lr0:.1e} epoch {epoch}/{}: train loss {train_loss:.4}, {} ({:.0} s)",
            opts.epochs,
            fmt_valid(&v),
            stats.elapsed_s
        ));
        report.epochs.push(stats);
        if v.score > best.0 {
            *best = (v.score, Some((lr0, epoch)), net.tensors().to_vec());
        }
        Ok(v)
    };
    // Learning-rate probe: one epoch each from the same start, with the same data
    // order and draws; the best continues.
    let probe_rng = SplitMix64::new(opts.seed);
    let mut chosen: Option<(f64, f32, N, Adam, SplitMix64)> = None;
    for &lr0 in &opts.learning_rates {
        let mut net = start.clone();
        let mut adam = Adam::new(&net);
        let mut r = probe_rng.clone();
        let v = run_epoch(&mut net, &mut adam, &mut r, lr0, 1, &mut report, &mut best)?;
        if chosen.as_ref().is_none_or(|c| v.score > c.0) {
            chosen = Some((v.score, lr0, net, adam, r));
        }
    }
    if let Some((_, lr0, mut net, mut adam, mut rng)) = chosen {
        for epoch in 2..=opts.epochs {
            run_epoch(
                &mut net,
                &mut adam,
                &mut rng,
                lr0,
                epoch,
                &mut report,
                &mut best,
            )?;
        }
    }
    let mut net = start.clone();
    for (t, b) in net.tensors_mut().iter_mut().zip(best.2) {
        *t = b;
    }
    report.best = best.1;
    report.end = validate(&net)?;
    report.seconds = t0.elapsed().as_secs_f64();
    progress(&format!(
        "fine-tune: kept {} ({}) after {:.0} s",
        match report.best {
            Some((lr, e)) => format!("lr {lr:.1e} epoch {e}"),
            None => "the input model (no epoch validated better)".to_string(),
        },
        fmt_valid(&report.end),
        report.seconds
    ));
    Ok((net, report))
}

/// Fine-tunes `student` toward `teacher` (same graph, same input and output shapes)
/// on `fit`, choosing learning rate and epoch on `valid`; see the [module
/// docs](self). `progress` gets a line per epoch. Returns the model with the kept
/// epoch's weights (same specs and BCR patterns as `student`) and a report.
pub fn finetune(
    student: &Model,
    teacher: &Model,
    fit: Samples<'_>,
    valid: Samples<'_>,
    opts: &FinetuneOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<(Model, FinetuneReport), ModelError> {
    let start_net = Trainable::new(student)?;
    let teacher_net = Trainable::new(teacher)?;
    let bad = |reason: String| ModelError::Format {
        path: student.name.clone(),
        reason,
    };
    check_options(&student.name, opts)?;
    if opts.epochs > 0 && (fit.inputs.is_empty() || valid.inputs.is_empty()) {
        return Err(bad(format!(
            "fine-tuning needs training and validation samples, got {} and {}",
            fit.inputs.len(),
            valid.inputs.len()
        )));
    }
    for (what, s) in [("training", &fit), ("validation", &valid)] {
        if let Some(l) = s.labels.filter(|l| l.len() != s.inputs.len()) {
            return Err(bad(format!(
                "{} {what} labels for {} inputs",
                l.len(),
                s.inputs.len()
            )));
        }
    }
    let classes = match valid.inputs.first() {
        Some(x) => classes_of(&teacher_net, x)?,
        None => 1,
    };
    let targets: Vec<Vec<f32>> = valid
        .inputs
        .par_iter()
        .map(|x| logits_of(&teacher_net, x))
        .collect::<Result<_, _>>()?;
    let loss = &opts.distillation;
    let span = 2 * opts.shift as u64 + 1;
    let grad = |net: &Trainable, chunk: &[(usize, [u64; 2])], g: &mut [Vec<f32>]| {
        let mut l = 0.0;
        for &(i, draws) in chunk {
            let dy = (draws[0] % span) as isize - opts.shift as isize;
            let dx = (draws[1] % span) as isize - opts.shift as isize;
            let x = shift_image(&fit.inputs[i], dy, dx);
            l += sample_grad(net, &teacher_net, &x, fit.label(i), loss, classes, g)?;
        }
        Ok(l)
    };
    let check = |net: &Trainable| validate(net, &valid, &targets, loss, classes);
    progress(&format!(
        "fine-tune: {} trained values, {} training and {} validation images",
        start_net.trained_values(),
        fit.inputs.len(),
        valid.inputs.len(),
    ));
    let (net, report) = train(
        &start_net,
        fit.inputs.len(),
        CHUNK,
        &grad,
        &check,
        opts,
        progress,
    )?;
    let mut out = student.clone();
    out.layers = net.write_back(&student.layers)?;
    Ok((out, report))
}
