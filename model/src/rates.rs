//! Choosing BCR hyperparameters for a whole model, as GRIM does: the block size is
//! chosen first and separately from the per-layer pruning rates, which keeps the
//! search small.
//!
//! 1. **Block size**: for each candidate block shape, prune every prunable layer at
//!    the uniform rate that meets the target compression (refit when enabled) and
//!    score the model on the calibration data; keep the best shape.
//! 2. **Sensitivity**: with that block shape, prune one layer at a time at each rate of
//!    a grid and score the model (the others stay dense).
//! 3. **Rates**: start with every layer dense and repeatedly raise the rate of the
//!    layer whose next grid step loses the least score per weight removed (by its
//!    sensitivity curve), until the kept weights meet the target compression; then
//!    give back, while the target still holds, the steps whose undoing recovers the
//!    most score (the last greedy steps overshoot).
//! 4. **Refit** (with calibration data): each pruned matrix's kept weights are refit
//!    by ridge least squares to the dense matrix's outputs (`crate::prune`), its
//!    block masks chosen by [`MaskCriterion`]. The block size and rates are chosen
//!    with the same counts in every block; with [`SpreadChoice::Best`] the model is
//!    then pruned and refit at the chosen rates once more with the kept
//!    weights spread over the blocks ([`Spread::AcrossBlocks`], as many weights per
//!    matrix) and whichever scores better is kept. Then a **sequential refit** (with a
//!    [`Calibrator`]): layer after layer, each pruned layer, and each dense layer
//!    behind a pruned one, is refit on the inputs the layers before it (already
//!    pruned and refit) really hand it, paired with the dense model's
//!    ([`crate::paired`]), and kept where the model scores better with it than with
//!    its one-shot refit (or unchanged); a recurrent layer is refit once more on its
//!    own pruned states ([`PruneOptions::recurrent_passes`]). The model that scores
//!    better of the one-shot and the sequential refit is returned.
//!
//! Compression is `dense weights / kept weights` over every weight matrix of the
//! model (biases and embeddings are not counted; index arrays neither: the storage
//! ratio with BCR's index arrays is reported separately), or with
//! [`Objective::Macs`] `dense / kept multiply-adds per call` (each weight counted once
//! per output position it is applied at), a target for speed rather than storage.

use crate::calibrate::{Calibration, Gram};
use crate::error::ModelError;
use crate::layer::Layer;
use crate::prune::{
    closer_per_matrix, prune_layer_weighted, refit_dense_layer_validated, refit_layer_validated,
    Spread,
};
use crate::Model;
use std::collections::BTreeMap;
use tir::bcr::BlockShape;
use tir::spec::WorkloadSpec;

/// What the target compression counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Objective {
    /// Weights: `dense weights / kept weights` (storage; GRIM's measure).
    #[default]
    Weights,
    /// Multiply-adds per call: `dense MACs / kept MACs`, each layer's weights counted
    /// once per output position they are applied at (what running the model costs: a
    /// conv with few weights applied at many positions counts for more than a large FC
    /// applied once).
    Macs,
}

impl Objective {
    /// How many times each weight of `l` counts toward the objective.
    fn uses(self, l: &Layer) -> f64 {
        match self {
            Objective::Weights => 1.0,
            Objective::Macs => l.dense_macs() as f64 / l.dense_params().max(1) as f64,
        }
    }

    /// What the dense form of `l` amounts to (weights or multiply-adds).
    fn dense_amount(self, l: &Layer) -> f64 {
        l.dense_params() as f64 * self.uses(l)
    }

    /// What `l` amounts to with its kept weights.
    fn kept_amount(self, l: &Layer) -> f64 {
        l.kept_params() as f64 * self.uses(l)
    }

    /// The quantity's name in messages.
    fn name(self) -> &'static str {
        match self {
            Objective::Weights => "compression",
            Objective::Macs => "multiply-add reduction",
        }
    }

    /// What is counted, in messages.
    fn unit(self) -> &'static str {
        match self {
            Objective::Weights => "weights",
            Objective::Macs => "multiply-adds",
        }
    }
}

/// How to prune a model.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Target compression (dense / kept, counted as `objective` says), > 1.
    pub compression: f64,
    /// What the compression counts: weights (default) or multiply-adds.
    pub objective: Objective,
    /// Candidate block shapes (the best on calibration data is used).
    pub blocks: Vec<BlockShape>,
    /// The rate grid of the sensitivity analysis, increasing, each in `(0, 1)`.
    pub rates: Vec<f64>,
    /// Refit kept weights by ridge least squares (needs calibration Gram matrices).
    pub refit: bool,
    /// Relative ridge strengths tried by the refit (toward the magnitude-pruned
    /// values); per matrix, the one with the least output error on the validation
    /// half of the calibration data wins, or no refit when that is better.
    pub ridges: Vec<f64>,
    /// Layers smaller than this many weights stay dense.
    pub min_layer_weights: usize,
    /// How the kept columns and rows of each block are chosen when calibration data
    /// is given (plain magnitude pruning, the baseline, is always by magnitude).
    pub mask: MaskCriterion,
    /// How each matrix's kept weights are spread over its blocks.
    pub spread: SpreadChoice,
    /// In the sequential refit, also refit the dense layers that come after a pruned
    /// one (all their weights kept), to map their shifted inputs back toward the
    /// dense model's outputs.
    pub refit_dense_after_pruned: bool,
    /// Sequential refits of each pruned recurrent layer (the later ones on the states
    /// of the refit layer itself; each kept where it scores better). 1: one refit.
    pub recurrent_passes: usize,
}

/// How BCR pruning ranks a block's columns and rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskCriterion {
    /// By the L2 norm of the weights (GRIM's criterion; the default: the other two
    /// choose more at random on the calibration data, which made the rate search
    /// prune the MNIST CNN's convs harder for lower test accuracy).
    #[default]
    Magnitude,
    /// By the L2 norm of the weights scaled by the root mean square of the input each
    /// multiplies on the calibration data ([`crate::prune::prune_matrix_weighted`]):
    /// by how much each weight contributes to the outputs.
    Activation,
    /// Both, each refit; per weight matrix the one whose refit output is closer to
    /// the dense matrix's on the validation half of the calibration data
    /// ([`crate::prune::closer_per_matrix`]).
    Best,
}

/// How the kept weights are spread over each matrix's BCR blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpreadChoice {
    /// The same numbers of columns and rows in every block (GRIM's pattern). The
    /// library's default, one pruning and refit per rate set; `grim-tune prune`
    /// defaults to [`SpreadChoice::Best`].
    #[default]
    Uniform,
    /// Unevenly over the blocks, by the mean square of each block's columns and rows
    /// ([`Spread::AcrossBlocks`]).
    AcrossBlocks,
    /// The block size and rates are chosen with uniform blocks (GRIM's pattern); then,
    /// at the chosen rates, the model is pruned and refit with each spread and the one
    /// that scores better on the calibration data is kept, for the whole model. An
    /// accuracy choice, not a speed one: at the same rates and kept counts, spreading
    /// gives the MNIST CNN at 10x 99.15% against 98.98% (99.33% after the sequential
    /// refit) and the g2p GRU 85.85% PER against 71.17%, and the calibration score
    /// ranks them the same way. Blocks of different shapes get kernels versioned by
    /// kept-column count (`schedule::primitive::bcr::version_column_counts`): the
    /// MNIST CNN's spread model ran 5.86x faster than dense (uniform blocks: 4.33x in
    /// the same run).
    Best,
}

impl SpreadChoice {
    /// The spread the block size and rates are chosen with (and the "magnitude
    /// pruning only" baseline pruned with): uniform unless spreading is fixed.
    pub fn for_search(self) -> Spread {
        match self {
            SpreadChoice::AcrossBlocks => Spread::AcrossBlocks,
            SpreadChoice::Uniform | SpreadChoice::Best => Spread::Uniform,
        }
    }
}

/// How BCR masks are chosen: the ranking of a block's columns and rows (with
/// calibration data; magnitude without) and the spread of the kept weights over the
/// blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaskRule {
    /// How a block's columns and rows are ranked.
    pub criterion: MaskCriterion,
    /// How the kept weights are spread over the blocks.
    pub spread: Spread,
}

impl From<MaskCriterion> for MaskRule {
    /// `criterion` with the same counts in every block.
    fn from(criterion: MaskCriterion) -> MaskRule {
        MaskRule {
            criterion,
            spread: Spread::Uniform,
        }
    }
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            compression: 10.0,
            objective: Objective::Weights,
            blocks: vec![BlockShape { rows: 32, cols: 32 }],
            rates: vec![
                0.5, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.96, 0.97, 0.98, 0.99,
            ],
            refit: true,
            ridges: vec![0.01, 0.1, 1.0, 10.0],
            min_layer_weights: 1024,
            mask: MaskCriterion::default(),
            spread: SpreadChoice::default(),
            refit_dense_after_pruned: true,
            recurrent_passes: 2,
        }
    }
}

/// The score of a model on calibration data (higher is better, e.g. accuracy).
pub type Scorer<'a> = dyn FnMut(&Model) -> Result<f64, ModelError> + 'a;

/// Records the calibration Gram matrices of a partially pruned model, paired with the
/// dense model's ([`crate::task::Task::paired_calibration`]), for the sequential
/// refit.
pub type Calibrator<'a> = dyn FnMut(&Model) -> Result<Calibration, ModelError> + 'a;

/// One layer's score at each rate of the grid (others dense).
#[derive(Debug, Clone, PartialEq)]
pub struct Sensitivity {
    /// The layer's name.
    pub layer: String,
    /// `(rate, score)` pairs, starting with `(0, dense score)`.
    pub points: Vec<(f64, f64)>,
}

/// The outcome of [`prune_model`].
#[derive(Debug, Clone)]
pub struct PruneReport {
    /// The dense model's calibration score.
    pub dense_score: f64,
    /// Score of each candidate block shape at the uniform rate.
    pub block_scores: Vec<(BlockShape, f64)>,
    /// The chosen block shape.
    pub block: BlockShape,
    /// Per-layer sensitivity curves.
    pub sensitivity: Vec<Sensitivity>,
    /// Chosen rate per layer (0 = dense), in layer order.
    pub rates: Vec<(String, f64)>,
    /// Compression reached (dense / kept weights).
    pub compression: f64,
    /// Multiply-adds per call reduction reached (dense / kept MACs).
    pub mac_reduction: f64,
    /// The pruned model's calibration score with plain magnitude pruning.
    pub magnitude_score: f64,
    /// The pruned model's calibration score after refitting (when enabled).
    pub refit_score: Option<f64>,
    /// The score after the sequential refit (when a calibrator was given); the
    /// returned model is whichever refit scored better.
    pub sequential_score: Option<f64>,
    /// How the kept weights are spread over the blocks in the returned model.
    pub spread: Spread,
    /// With [`SpreadChoice::Best`], the scores at the chosen rates (refit when
    /// enabled) with the same counts in every block and spread over the blocks.
    pub spread_scores: Option<(f64, f64)>,
}

fn dense_weights(m: &Model) -> usize {
    m.layers.iter().map(Layer::dense_params).sum()
}

fn kept_weights(m: &Model) -> usize {
    m.layers.iter().map(Layer::kept_params).sum()
}

/// Model compression: dense weights / kept weights.
pub fn compression(m: &Model) -> f64 {
    dense_weights(m) as f64 / kept_weights(m).max(1) as f64
}

/// The multiply-add reduction of a model's layers: dense / kept multiply-adds per call, each layer's
/// weights counted once per output position ([`Objective::Macs`]).
pub fn mac_reduction(layers: &[Layer]) -> f64 {
    let o = Objective::Macs;
    let dense: f64 = layers.iter().map(|l| o.dense_amount(l)).sum();
    let kept: f64 = layers.iter().map(|l| o.kept_amount(l)).sum();
    dense / kept.max(1.0)
}

/// Prunes layer `i` of `model` at `rate` with `block` and `mask`'s spread, refit when
/// grams are given (its blocks then ranked by `mask`'s criterion; by magnitude
/// without them).
fn pruned_layer(
    model: &Model,
    i: usize,
    block: BlockShape,
    rate: f64,
    grams: Option<&Calibration>,
    ridges: &[f64],
    mask: MaskRule,
) -> Result<Layer, ModelError> {
    let dense = &model.layers[i];
    let Some(c) = grams.filter(|_| rate > 0.0) else {
        return prune_layer_weighted(dense, block, rate, &[], mask.spread);
    };
    let (fit, valid) = (
        layer_grams(&c.fit, dense, i)?,
        layer_grams(&c.valid, dense, i)?,
    );
    let refit_with = |by_activation: bool| -> Result<Layer, ModelError> {
        let scales: Vec<Vec<f64>> = match by_activation {
            true => fit.iter().map(|g| g.rms()).collect(),
            false => Vec::new(),
        };
        let p = prune_layer_weighted(dense, block, rate, &scales, mask.spread)?;
        refit_layer_validated(dense, &p, &fit, &valid, ridges)
    };
    match mask.criterion {
        MaskCriterion::Magnitude => refit_with(false),
        MaskCriterion::Activation => refit_with(true),
        MaskCriterion::Best => {
            closer_per_matrix(dense, refit_with(true)?, &refit_with(false)?, &valid)
        }
    }
}

/// Layer `i` of the dense `model`, all its weights kept, refit on `grams`
/// ([`refit_dense_layer_validated`]).
fn refit_dense_layer(
    model: &Model,
    i: usize,
    grams: &Calibration,
    ridges: &[f64],
) -> Result<Layer, ModelError> {
    let layer = &model.layers[i];
    let (fit, valid) = (
        layer_grams(&grams.fit, layer, i)?,
        layer_grams(&grams.valid, layer, i)?,
    );
    refit_dense_layer_validated(layer, &fit, &valid, ridges)
}

/// The Gram matrices of every weight matrix of `layer` (index `i`) in `grams`.
fn layer_grams<'a>(
    grams: &'a BTreeMap<(usize, usize), Gram>,
    layer: &Layer,
    i: usize,
) -> Result<Vec<&'a Gram>, ModelError> {
    (0..layer.weights.matrices.len())
        .map(|m| {
            grams.get(&(i, m)).ok_or_else(|| {
                ModelError::layer(&layer.name, format!("no calibration inputs for matrix {m}"))
            })
        })
        .collect()
}

/// `model` with layer `i` pruned at `rates[i]` (masks chosen by `mask` and refit
/// when `grams` are given, by magnitude and not refit otherwise).
pub fn apply_rates(
    model: &Model,
    block: BlockShape,
    rates: &[f64],
    grams: Option<&Calibration>,
    ridges: &[f64],
    mask: MaskRule,
) -> Result<Model, ModelError> {
    let mut out = model.clone();
    for (i, &r) in rates.iter().enumerate() {
        out.layers[i] = pruned_layer(model, i, block, r, grams, ridges, mask)?;
    }
    Ok(out)
}

/// Which layers may be pruned.
fn prunable(model: &Model, opts: &PruneOptions) -> Vec<bool> {
    model
        .layers
        .iter()
        .map(|l| l.dense_params() >= opts.min_layer_weights)
        .collect()
}

/// The uniform rate (over prunable layers) that meets the target compression.
fn uniform_rate(
    model: &Model,
    able: &[bool],
    target: f64,
    objective: Objective,
) -> Result<f64, ModelError> {
    let total: f64 = model.layers.iter().map(|l| objective.dense_amount(l)).sum();
    let fixed: f64 = model
        .layers
        .iter()
        .zip(able)
        .filter(|(_, a)| !**a)
        .map(|(l, _)| objective.dense_amount(l))
        .sum();
    let budget = total / target - fixed;
    let prunable = total - fixed;
    if budget <= 0.0 || prunable <= 0.0 {
        return Err(ModelError::layer(
            &model.name,
            format!(
                "{} {target}x cannot be met: the {fixed} {} of layers too small to prune already exceed the budget",
                objective.name(),
                objective.unit()
            ),
        ));
    }
    Ok((1.0 - budget / prunable).clamp(0.0, 0.995))
}

/// Runs the three steps of the [module docs](self) and returns the pruned (and refit)
/// model with a report. `grams` are the calibration Gram matrices (needed when
/// `opts.refit`); `score` scores a model on calibration data; `progress` gets a line
/// per evaluated configuration.
pub fn prune_model(
    model: &Model,
    opts: &PruneOptions,
    grams: Option<&Calibration>,
    mut calibrate: Option<&mut Calibrator<'_>>,
    score: &mut Scorer<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<(Model, PruneReport), ModelError> {
    if opts.compression.is_nan() || opts.compression <= 1.0 {
        return Err(ModelError::layer(
            &model.name,
            format!("compression must be > 1, got {}", opts.compression),
        ));
    }
    if opts.refit && grams.is_none() {
        return Err(ModelError::layer(
            &model.name,
            "refitting needs calibration data",
        ));
    }
    let grams = if opts.refit { grams } else { None };
    let able = prunable(model, opts);
    // The block size and rates are chosen with uniform blocks unless the spread is
    // fixed to the other; `Best` decides at the chosen rates.
    let mut rule = MaskRule {
        criterion: opts.mask,
        spread: opts.spread.for_search(),
    };
    let n = model.layers.len();
    let dense_score = score(model)?;
    progress(&format!("dense model: score {dense_score:.4}"));
    // 1. Block size at the uniform rate.
    let u = uniform_rate(model, &able, opts.compression, opts.objective)?;
    let mut block_scores = Vec::new();
    for &b in &opts.blocks {
        let rates: Vec<f64> = able.iter().map(|&a| if a { u } else { 0.0 }).collect();
        let m = apply_rates(model, b, &rates, grams, &opts.ridges, rule)?;
        let s = score(&m)?;
        progress(&format!(
            "block {}x{} at uniform rate {u:.3}: score {s:.4}",
            b.rows, b.cols
        ));
        block_scores.push((b, s));
    }
    let block = block_scores
        .iter()
        .fold(None::<(BlockShape, f64)>, |best, &(b, s)| match best {
            Some((_, bs)) if bs >= s => best,
            _ => Some((b, s)),
        })
        .map(|(b, _)| b)
        .ok_or_else(|| ModelError::layer(&model.name, "no candidate block shape"))?;
    // 2. Sensitivity per prunable layer.
    let mut sensitivity = Vec::new();
    // Weights actually kept at each point (BCR rounding makes it differ from the rate).
    let mut kept_at: Vec<Vec<f64>> = Vec::new();
    for (i, &prunable_layer) in able.iter().enumerate() {
        let mut points = vec![(0.0, dense_score)];
        let mut kept_here = vec![opts.objective.dense_amount(&model.layers[i])];
        if prunable_layer {
            for &r in &opts.rates {
                let mut m = model.clone();
                m.layers[i] = pruned_layer(model, i, block, r, grams, &opts.ridges, rule)?;
                kept_here.push(opts.objective.kept_amount(&m.layers[i]));
                let s = score(&m)?;
                progress(&format!(
                    "sensitivity {} at {r}: score {s:.4}",
                    model.layers[i].name
                ));
                points.push((r, s));
            }
        }
        sensitivity.push(Sensitivity {
            layer: model.layers[i].name.clone(),
            points,
        });
        kept_at.push(kept_here);
    }
    // 3. Greedy rate choice.
    let total: f64 = model
        .layers
        .iter()
        .map(|l| opts.objective.dense_amount(l))
        .sum();
    let budget = total / opts.compression;
    let mut step = vec![0usize; n];
    let kept = |step: &[usize]| -> f64 { (0..n).map(|i| kept_at[i][step[i]]).sum() };
    while kept(&step) > budget {
        let mut best: Option<(usize, f64)> = None;
        for i in 0..n {
            let pts = &sensitivity[i].points;
            if step[i] + 1 >= pts.len() {
                continue;
            }
            let (s0, s1) = (pts[step[i]].1, pts[step[i] + 1].1);
            let removed = kept_at[i][step[i]] - kept_at[i][step[i] + 1];
            let cost = (s0 - s1).max(0.0) / removed.max(1.0) + 1e-12 / removed.max(1.0);
            if best.is_none_or(|(_, c)| cost < c) {
                best = Some((i, cost));
            }
        }
        match best {
            Some((i, _)) => step[i] += 1,
            None => {
                return Err(ModelError::layer(
                    &model.name,
                    format!(
                        "{} {}x cannot be met with rates up to {:?}: the most reachable is {:.2}x",
                        opts.objective.name(),
                        opts.compression,
                        opts.rates.last(),
                        total / kept(&step).max(1.0)
                    ),
                ))
            }
        }
    }
    // The greedy steps overshoot the budget (a last step can remove many weights, and
    // later steps can make earlier ones unnecessary): give back, while the budget
    // still holds, the step whose undoing recovers the most score (by the curves; a
    // step that scored better than the one before it stays).
    loop {
        let mut best: Option<(usize, f64)> = None;
        for i in 0..n {
            if step[i] == 0 {
                continue;
            }
            let added = kept_at[i][step[i] - 1] - kept_at[i][step[i]];
            if kept(&step) + added > budget {
                continue;
            }
            let pts = &sensitivity[i].points;
            let gain = pts[step[i] - 1].1 - pts[step[i]].1;
            if gain >= 0.0 && best.is_none_or(|(_, g)| gain > g) {
                best = Some((i, gain));
            }
        }
        match best {
            Some((i, _)) => step[i] -= 1,
            None => break,
        }
    }
    let rates: Vec<f64> = (0..n).map(|i| sensitivity[i].points[step[i]].0).collect();
    let magnitude = apply_rates(model, block, &rates, None, &opts.ridges, rule)?;
    let magnitude_score = score(&magnitude)?;
    progress(&format!(
        "chosen rates, magnitude pruning: score {magnitude_score:.4}"
    ));
    let (mut pruned, mut refit_score) = match grams {
        Some(_) => {
            let m = apply_rates(model, block, &rates, grams, &opts.ridges, rule)?;
            let s = score(&m)?;
            progress(&format!("chosen rates, refit: score {s:.4}"));
            (m, Some(s))
        }
        None => (magnitude, None),
    };
    // The spread, when it is a choice: the same rates and kept counts with the kept
    // weights spread over the blocks, for the whole model, kept if it scores better.
    let mut spread_scores = None;
    if opts.spread == SpreadChoice::Best {
        let spread = MaskRule {
            spread: Spread::AcrossBlocks,
            ..rule
        };
        let m = apply_rates(model, block, &rates, grams, &opts.ridges, spread)?;
        let s = score(&m)?;
        let before = refit_score.unwrap_or(magnitude_score);
        spread_scores = Some((before, s));
        if s > before {
            (rule, pruned) = (spread, m);
            refit_score = refit_score.map(|_| s);
        }
        progress(&format!(
            "chosen rates, kept weights spread over the blocks: score {s:.4} (same counts in every block: {before:.4}); kept: {}",
            rule.spread.describe()
        ));
    }
    // Sequential refit: layer by layer in order, each refit on the inputs it gets from
    // the already pruned layers before it (so it matches the dense layer on the
    // activations it will really see). Kept when it scores better on validation data.
    let mut sequential_score = None;
    if let (Some(cal), Some(_)) = (calibrate.as_mut(), grams) {
        let one_shot = pruned.clone();
        let mut m = model.clone();
        // The score of `m` as it stands (the dense model's until a layer changes).
        let mut current = dense_score;
        let mut pruned_before = false;
        for (i, &r) in rates.iter().enumerate() {
            let name = &model.layers[i].name;
            // A dense layer behind pruned ones gets shifted inputs: it is refit too
            // (all its weights kept), unless that scores worse than leaving it.
            let (candidate, alternative) = if r == 0.0 {
                if !(pruned_before && opts.refit_dense_after_pruned) {
                    continue;
                }
                let grams_now = cal(&m)?;
                let refit = refit_dense_layer(model, i, &grams_now, &opts.ridges)?;
                (refit, m.layers[i].clone())
            } else {
                pruned_before = true;
                // Pruned and refit on the inputs the layers before it hand it now.
                let refit = pruned_layer(model, i, block, r, Some(&cal(&m)?), &opts.ridges, rule)?;
                (refit, one_shot.layers[i].clone())
            };
            // Keep the sequential refit of this layer only where it scores at least as
            // well as the alternative (the one-shot refit, or the unchanged dense
            // layer): least squares on the layer's outputs is not the task's score.
            m.layers[i] = candidate;
            let kept_score = score(&m)?;
            let mut other = m.clone();
            other.layers[i] = alternative;
            let other_score = score(&other)?;
            let kept = if other_score > kept_score {
                m = other;
                "the one-shot refit or unchanged layer"
            } else {
                "the sequential refit"
            };
            current = kept_score.max(other_score);
            progress(&format!(
                "sequential refit: {name}: {kept_score:.4} refit in sequence, {other_score:.4} otherwise; kept {kept}"
            ));
            // A recurrent layer's hidden-to-hidden matrix takes the layer's own state:
            // its refit above saw the dense layer's states. Refit it again on the
            // states of the pruned layer itself, kept where that scores better.
            if r > 0.0 && matches!(model.layers[i].spec, WorkloadSpec::Rnn(_)) {
                for pass in 2..=opts.recurrent_passes {
                    let mut again = m.clone();
                    again.layers[i] =
                        pruned_layer(model, i, block, r, Some(&cal(&m)?), &opts.ridges, rule)?;
                    let s = score(&again)?;
                    progress(&format!(
                        "sequential refit: {name} pass {pass} on its own states: {s:.4} (before {current:.4})"
                    ));
                    if s > current {
                        (m, current) = (again, s);
                    }
                }
            }
        }
        let s = current;
        progress(&format!("chosen rates, sequential refit: score {s:.4}"));
        sequential_score = Some(s);
        if refit_score.is_none_or(|r| s > r) {
            pruned = m;
        }
    }
    let report = PruneReport {
        dense_score,
        block_scores,
        block,
        sensitivity,
        rates: model
            .layers
            .iter()
            .map(|l| l.name.clone())
            .zip(rates)
            .collect(),
        compression: compression(&pruned),
        mac_reduction: mac_reduction(&pruned.layers),
        magnitude_score,
        refit_score,
        sequential_score,
        spread: rule.spread,
        spread_scores,
    };
    Ok((pruned, report))
}

impl PruneReport {
    /// The chosen table as aligned text: layer, rate, kept weights, and the scores.
    pub fn table(&self, pruned: &Model) -> String {
        let mut s = format!(
            "block {}x{}; compression {:.2}x (weights), multiply-adds {:.2}x fewer\n{:<12} {:>7} {:>10} {:>10}\n",
            self.block.rows,
            self.block.cols,
            self.compression,
            self.mac_reduction,
            "layer",
            "rate",
            "weights",
            "kept"
        );
        for (l, (name, rate)) in pruned.layers.iter().zip(&self.rates) {
            s.push_str(&format!(
                "{:<12} {:>7.3} {:>10} {:>10}\n",
                name,
                rate,
                l.dense_params(),
                l.kept_params()
            ));
        }
        s.push_str(&format!(
            "score: dense {:.4}, magnitude-pruned {:.4}",
            self.dense_score, self.magnitude_score
        ));
        if let Some(r) = self.refit_score {
            s.push_str(&format!(", refit {r:.4}"));
        }
        if let Some(r) = self.sequential_score {
            s.push_str(&format!(", sequential refit {r:.4}"));
        }
        if let Some((same, spread)) = self.spread_scores {
            s.push_str(&format!(
                "\nkept weights: {} (score {same:.4} with the same counts in every block, {spread:.4} spread over the blocks)",
                self.spread.describe()
            ));
        }
        s
    }
}
