//! Gradual BCR pruning: instead of pruning to the target at once and then
//! fine-tuning, the model is pruned in `steps` stages toward the per-layer rates
//! chosen for the target ([`crate::rates::prune_model`]), with fine-tuning after
//! every stage, so that each stage removes only part of the weights and the training
//! recovers from a smaller loss.
//!
//! Schedule: at stage `s` of `S` a layer with final rate `r` keeps the fraction
//! `(1 − r)^(s/S)` of its weights (geometric in the kept fraction: with two layers
//! at 10x and three stages, about 2.15x, 4.6x, 10x), so the last stage uses exactly
//! the final rates, with the same block shape: the final model has the same BCR
//! kind, rates, kept counts and `tir` workload keys as a one-shot pruning with the
//! same rates. Layers with rate 0 stay dense throughout.
//!
//! Stage 1 prunes the dense model (with the ridge refit when calibration Gram
//! matrices are given, as the one-shot path does); each later stage prunes the
//! current fine-tuned weights again by magnitude at the higher rate (columns, then
//! rows, by L2 norm inside each block; the pattern is chosen afresh, so a position
//! pruned earlier may come back, starting from zero).

use crate::calibrate::Calibration;
use crate::error::ModelError;
use crate::prune::{densify, prune_layer};
use crate::rates::{apply_rates, MaskRule};
use crate::Model;
use tir::bcr::BlockShape;

/// The per-layer rates of every stage (`steps` of them, the last equal to
/// `final_rates`); see the [module docs](self).
pub fn stage_rates(final_rates: &[f64], steps: usize) -> Result<Vec<Vec<f64>>, ModelError> {
    if steps == 0 {
        return Err(ModelError::layer(
            "gradual pruning",
            "needs at least one stage",
        ));
    }
    if let Some(r) = final_rates.iter().find(|r| !(0.0..1.0).contains(*r)) {
        return Err(ModelError::layer(
            "gradual pruning",
            format!("rate {r} is not in [0, 1)"),
        ));
    }
    Ok((1..=steps)
        .map(|s| {
            final_rates
                .iter()
                .map(|&r| {
                    if s == steps || r == 0.0 {
                        r
                    } else {
                        1.0 - (1.0 - r).powf(s as f64 / steps as f64)
                    }
                })
                .collect()
        })
        .collect())
}

/// `model` (dense or pruned) with layer `i` pruned again, by magnitude of its current
/// weights, at `rates[i]` with blocks `block` (rate 0: the layer is left as it is).
pub fn reprune(model: &Model, block: BlockShape, rates: &[f64]) -> Result<Model, ModelError> {
    let mut out = model.clone();
    for (i, &r) in rates.iter().enumerate() {
        if r == 0.0 {
            continue;
        }
        let layer = model
            .layers
            .get(i)
            .ok_or_else(|| ModelError::layer(&format!("#{i}"), "no such layer"))?;
        out.layers[i] = prune_layer(&densify(layer), block, r)?;
    }
    Ok(out)
}

/// Fine-tunes the model of a stage (1-based stage number given).
pub type StageTrainer<'a> = dyn FnMut(&Model, usize) -> Result<Model, ModelError> + 'a;

/// Gradual pruning of `dense` to `final_rates` with `block` in `steps` stages, each
/// followed by `train` (see the [module docs](self)); `grams` enable the refit of the
/// first stage, whose masks `mask` chooses then (later stages prune by magnitude with
/// the same counts in every block). `progress` gets a line per stage. Returns the last
/// stage's model.
#[allow(clippy::too_many_arguments)]
pub fn gradual_prune(
    dense: &Model,
    block: BlockShape,
    final_rates: &[f64],
    steps: usize,
    grams: Option<&Calibration>,
    ridges: &[f64],
    mask: MaskRule,
    train: &mut StageTrainer<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<Model, ModelError> {
    if final_rates.len() != dense.layers.len() {
        return Err(ModelError::layer(
            &dense.name,
            format!(
                "{} rates for {} layers",
                final_rates.len(),
                dense.layers.len()
            ),
        ));
    }
    let stages = stage_rates(final_rates, steps)?;
    let mut current = dense.clone();
    for (s, rates) in stages.iter().enumerate() {
        let pruned = if s == 0 {
            apply_rates(dense, block, rates, grams, ridges, mask)?
        } else {
            reprune(&current, block, rates)?
        };
        progress(&format!(
            "gradual stage {}/{steps}: rates {}, compression {:.2}x",
            s + 1,
            rates
                .iter()
                .map(|r| format!("{r:.3}"))
                .collect::<Vec<_>>()
                .join(", "),
            crate::rates::compression(&pruned)
        ));
        current = train(&pruned, s + 1)?;
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_geometric_in_the_kept_fraction_and_end_at_the_final_rates() {
        let st = stage_rates(&[0.9, 0.0, 0.75], 2).unwrap();
        assert_eq!(st.len(), 2);
        assert_eq!(st[1], vec![0.9, 0.0, 0.75]);
        assert!((st[0][0] - (1.0 - 0.1f64.sqrt())).abs() < 1e-12);
        assert_eq!(st[0][1], 0.0);
        assert!((st[0][2] - 0.5).abs() < 1e-12);
        assert_eq!(stage_rates(&[0.9], 1).unwrap(), vec![vec![0.9]]);
        assert!(stage_rates(&[0.9], 0).is_err());
        assert!(stage_rates(&[1.0], 3).is_err());
        assert!(stage_rates(&[f64::NAN], 3).is_err());
    }
}
