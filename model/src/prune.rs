//! BCR pruning of a model's layers and refitting of the kept weights.
//!
//! [`prune_layer`] prunes every weight matrix of a layer with `tir`'s BCR pruning
//! (columns, then rows, by L2 norm inside each block) and turns its spec into the
//! `bcr-` kind. [`refit_layer`] then recovers accuracy without retraining: for each
//! output row `r` with kept columns `S`, it solves the ridge least-squares problem
//!
//! `min_w ‖Xᵀ_S w − Xᵀ w_dense‖² + λ‖w − w_dense,S‖²`, i.e.
//! `(G_SS + λI) w = G_S: · w_dense + λ w_dense,S`,
//!
//! where `G = Σ x xᵀ` is the Gram matrix of the inputs this matrix saw on calibration
//! data ([`crate::calibrate`]): the pruned row then reproduces the dense row's outputs
//! on that data as closely as its pattern allows, while the ridge term keeps it near
//! the magnitude-pruned values (so it cannot overfit inputs the calibration data barely
//! exercises). `λ` is `ridge` times the mean diagonal of `G_SS`.
//!
//! With a paired Gram ([`Gram::add_pair`]: the inputs `x` the pruned matrix sees,
//! each with the input `x_d` the dense model's matrix saw at the same point) the
//! right-hand side is `C_S: · w_dense` with `C = Σ x x_dᵀ`: the pruned row then fits
//! the dense row's outputs on the dense inputs from the inputs it really gets.
//!
//! Which columns and rows each block keeps is plain BCR magnitude pruning
//! ([`prune_layer`]) or, with calibration data, magnitude weighted by each input's
//! root mean square ([`prune_matrix_weighted`]); how many each block keeps is the same
//! in every block or spread unevenly over the blocks ([`Spread`]).

use crate::calibrate::Gram;
use crate::error::ModelError;
use crate::layer::Layer;
use rayon::prelude::*;
use tir::bcr::{BcrMatrix, BlockShape};
use tir::prune::{PruneConfig, PruneRate};
use tir::spec::{SparseSpec, WorkloadSpec};
use tir::workload::GivenMatrix;
use tir::Matrix;
pub use tir::Spread;

/// The block shape actually used for a layer: `block` clamped to the smallest weight
/// matrix of the layer (a 32x9 conv1 matrix gets 32x9 blocks from 32x32).
pub fn clamp_block(layer: &Layer, block: BlockShape) -> BlockShape {
    let (mut rows, mut cols) = (block.rows, block.cols);
    for m in &layer.weights.matrices {
        let (r, c) = m.shape();
        rows = rows.min(r);
        cols = cols.min(c);
    }
    BlockShape {
        rows: rows.max(1),
        cols: cols.max(1),
    }
}

fn set_sparse(spec: &mut WorkloadSpec, sparse: Option<SparseSpec>) {
    match spec {
        WorkloadSpec::Fc(s) => s.sparse = sparse,
        WorkloadSpec::Conv2d(s) => s.sparse = sparse,
        WorkloadSpec::Rnn(s) => s.sparse = sparse,
        _ => {}
    }
}

/// `layer` with every weight matrix BCR-pruned to `sparsity` with blocks `block`
/// (clamped by [`clamp_block`]). Sparsity 0 returns the dense layer unchanged. The
/// layer must be dense.
pub fn prune_layer(layer: &Layer, block: BlockShape, sparsity: f64) -> Result<Layer, ModelError> {
    prune_layer_weighted(layer, block, sparsity, &[], Spread::Uniform)
}

/// The number of distinct shapes (kept rows x kept columns) among the non-empty
/// full-size blocks of `b`: 1 for uniform pruning, more when the kept weights are
/// spread over the blocks (then the kernels cannot specialize the entry offsets, which
/// needs one shape, and are versioned by kept-column count instead). Partial blocks at
/// the matrix edge are not counted.
pub fn kept_block_shapes(b: &BcrMatrix) -> usize {
    let (gr, gc) = b.grid();
    let full = b.block();
    let mut shapes = std::collections::BTreeSet::new();
    for br in 0..gr {
        for bc in 0..gc {
            let (_, _, h, w) = b.block_extent(br, bc);
            let blk = b.block_at(br, bc);
            if (h, w) == (full.rows, full.cols) && !blk.is_empty() {
                shapes.insert((blk.kept_rows.len(), blk.kept_cols.len()));
            }
        }
    }
    shapes.len()
}

/// BCR-prunes `d` with `spread` ([`Spread::prune`]), but chooses the kept columns and
/// rows by the weights scaled by `scales` (one per input column: `w[r][c] *
/// scales[c]`), then stores the original, unscaled values at the kept crossings.
///
/// With `scales[c]` the root mean square of input `c` on calibration data, a weight is
/// ranked by the size of its contribution to the outputs (`|w| * rms(x)`, as in Wanda)
/// instead of its size alone: a large weight on an input that is nearly always zero
/// matters less than a small one on a busy input.
pub fn prune_matrix_weighted(
    d: &Matrix,
    cfg: &PruneConfig,
    scales: &[f64],
    spread: Spread,
) -> Result<BcrMatrix, String> {
    if scales.len() != d.cols() {
        return Err(format!(
            "{} column scales for a matrix of {} columns",
            scales.len(),
            d.cols()
        ));
    }
    if let Some(c) = scales.iter().position(|s| !s.is_finite() || *s < 0.0) {
        return Err(format!(
            "column scale {c} is {}, not a finite non-negative number",
            scales[c]
        ));
    }
    let k = d.cols();
    let scaled: Vec<f32> = d
        .data()
        .iter()
        .enumerate()
        .map(|(i, &w)| (w as f64 * scales[i % k]) as f32)
        .collect();
    let scaled = Matrix::new(d.rows(), k, scaled).map_err(|e| e.to_string())?;
    let mask = spread.prune(&scaled, cfg).map_err(|e| e.to_string())?;
    with_values(&mask, d.data())
}

/// `b` with its kept values taken from the dense row-major `w` (same shape).
pub(crate) fn with_values(b: &BcrMatrix, w: &[f32]) -> Result<BcrMatrix, String> {
    let k = b.cols();
    if w.len() != b.rows() * k {
        return Err(format!(
            "{} trained weights for a {}x{} matrix",
            w.len(),
            b.rows(),
            k
        ));
    }
    let (gr, gc) = b.grid();
    let mut blocks = b.blocks().to_vec();
    for br in 0..gr {
        for bc in 0..gc {
            let (r0, c0, _, _) = b.block_extent(br, bc);
            let blk = &mut blocks[br * gc + bc];
            let nc = blk.kept_cols.len();
            for (i, &lr) in blk.kept_rows.iter().enumerate() {
                for (j, &lc) in blk.kept_cols.iter().enumerate() {
                    blk.values[i * nc + j] = w[(r0 + lr as usize) * k + c0 + lc as usize];
                }
            }
        }
    }
    BcrMatrix::new(b.rows(), b.cols(), b.block(), blocks).map_err(|e| e.to_string())
}

/// Like [`prune_layer`], but with the kept weights spread by `spread`, and matrix `i`
/// pruned by [`prune_matrix_weighted`] with `scales[i]` where given (an empty list, or
/// a missing entry, means plain magnitude).
pub fn prune_layer_weighted(
    layer: &Layer,
    block: BlockShape,
    sparsity: f64,
    scales: &[Vec<f64>],
    spread: Spread,
) -> Result<Layer, ModelError> {
    if layer.spec.sparse().is_some() {
        return Err(ModelError::layer(&layer.name, "is already pruned"));
    }
    if sparsity == 0.0 {
        return Ok(layer.clone());
    }
    let block = clamp_block(layer, block);
    let cfg = PruneConfig {
        block,
        rate: PruneRate::Sparsity(sparsity),
    };
    let mut out = layer.clone();
    for (i, m) in layer.weights.matrices.iter().enumerate() {
        let GivenMatrix::Dense(d) = m else {
            return Err(ModelError::layer(&layer.name, "has a pruned matrix"));
        };
        let b = match scales.get(i) {
            Some(s) => prune_matrix_weighted(d, &cfg, s, spread),
            None => spread.prune(d, &cfg).map_err(|e| e.to_string()),
        }
        .map_err(|e| ModelError::layer(&layer.name, format!("pruning matrix {i}: {e}")))?;
        out.weights.matrices[i] = GivenMatrix::Bcr(b);
    }
    set_sparse(
        &mut out.spec,
        Some(SparseSpec {
            block_rows: block.rows,
            block_cols: block.cols,
            sparsity,
            spread,
        }),
    );
    Ok(out)
}

/// `layer` as a dense layer: BCR matrices become their dense form (pruned entries
/// zero) and the spec loses its `bcr-` kind; a dense layer is returned unchanged.
/// Gradual pruning prunes such a layer again at a higher rate.
pub fn densify(layer: &Layer) -> Layer {
    let mut out = layer.clone();
    for m in &mut out.weights.matrices {
        if let GivenMatrix::Bcr(b) = m {
            *m = GivenMatrix::Dense(b.to_dense());
        }
    }
    set_sparse(&mut out.spec, None);
    out
}

/// Solves `A x = b` for a symmetric positive definite `n x n` `A` (row-major) by
/// Cholesky; `None` when `A` is not positive definite.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], n: usize) -> Option<()> {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= a[k * n + i] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    Some(())
}

/// For every row of `b`, the global columns it keeps, in increasing order, and where
/// each kept value lives (`(block index, value index)`).
fn row_supports(b: &BcrMatrix) -> Vec<Vec<(usize, usize, usize)>> {
    let mut rows: Vec<Vec<(usize, usize, usize)>> = vec![Vec::new(); b.rows()];
    let (gr, gc) = b.grid();
    for br in 0..gr {
        for bc in 0..gc {
            let (r0, c0, _, _) = b.block_extent(br, bc);
            let blk = b.block_at(br, bc);
            let kc = blk.kept_cols.len();
            for (i, &lr) in blk.kept_rows.iter().enumerate() {
                for (j, &lc) in blk.kept_cols.iter().enumerate() {
                    rows[r0 + lr as usize].push((c0 + lc as usize, br * gc + bc, i * kc + j));
                }
            }
        }
    }
    for r in &mut rows {
        r.sort_unstable();
    }
    rows
}

/// The refit values of one row (dense weights `w`) on its kept columns `support`
/// (see the [module docs](self)); `None` when the row keeps nothing or its system is
/// not positive definite (no calibration signal: the magnitude values stay).
fn refit_row(
    w: &[f32],
    support: &[(usize, usize, usize)],
    g: &Gram,
    ridge: f64,
) -> Option<Vec<f64>> {
    let n = support.len();
    if n == 0 {
        return None;
    }
    let mut a = vec![0.0f64; n * n];
    let mut rhs = vec![0.0f64; n];
    let mut diag = 0.0;
    for (p, &(cp, _, _)) in support.iter().enumerate() {
        for (q, &(cq, _, _)) in support.iter().enumerate() {
            a[p * n + q] = g.get(cp, cq);
        }
        diag += g.get(cp, cp);
        rhs[p] = w
            .iter()
            .enumerate()
            .map(|(c, &wc)| g.cross(cp, c) * wc as f64)
            .sum();
    }
    // Ridge toward the magnitude-pruned values (not toward zero): with a large
    // `ridge` the refit stays at plain pruning, so rarely active inputs (a nearly
    // singular G_SS) cannot blow weights up and overfit the calibration data.
    let lambda = ridge * (diag / n as f64).max(1e-12);
    for (p, &(cp, _, _)) in support.iter().enumerate() {
        a[p * n + p] += lambda;
        rhs[p] += lambda * w[cp] as f64;
    }
    cholesky_solve(&mut a, &mut rhs, n)?;
    Some(rhs)
}

/// Refits matrix `b` (the pruned form of `dense`) on the Gram matrix `g` of its
/// calibration inputs; see the [module docs](self).
pub fn refit_matrix(
    dense: &Matrix,
    b: &BcrMatrix,
    g: &Gram,
    ridge: f64,
) -> Result<BcrMatrix, String> {
    if g.k() != dense.cols() || (dense.rows(), dense.cols()) != (b.rows(), b.cols()) {
        return Err(format!(
            "calibration inputs have {} features, the matrix {}x{}",
            g.k(),
            dense.rows(),
            dense.cols()
        ));
    }
    let k = dense.cols();
    let supports = row_supports(b);
    // Rows are independent problems: solve them in parallel.
    let solutions: Vec<Option<Vec<f64>>> = supports
        .par_iter()
        .enumerate()
        .map(|(r, support)| refit_row(&dense.data()[r * k..(r + 1) * k], support, g, ridge))
        .collect();
    let mut blocks = b.blocks().to_vec();
    for (support, solution) in supports.iter().zip(solutions) {
        let Some(solution) = solution else { continue };
        for (&(_, blk, vi), &v) in support.iter().zip(&solution) {
            if v.is_finite() {
                blocks[blk].values[vi] = v as f32;
            }
        }
    }
    BcrMatrix::new(b.rows(), b.cols(), b.block(), blocks).map_err(|e| e.to_string())
}

/// `Σ_samples ‖(P − D) x‖² / samples` through the Gram matrix `g`: how far the
/// outputs of `pruned` are from those of `dense` on the data `g` summarizes; for a
/// paired `g`, `Σ ‖P x − D x_d‖² / samples` (the pruned matrix on the inputs it sees
/// against the dense matrix on the dense model's).
pub fn output_error(dense: &Matrix, pruned: &Matrix, g: &Gram) -> f64 {
    if g.is_paired() {
        return paired_output_error(dense, pruned, g);
    }
    let k = dense.cols();
    let mut total = 0.0;
    let mut idx = Vec::with_capacity(k);
    let mut val = Vec::with_capacity(k);
    for r in 0..dense.rows() {
        idx.clear();
        val.clear();
        for c in 0..k {
            let d = pruned.get(r, c) as f64 - dense.get(r, c) as f64;
            if d != 0.0 {
                idx.push(c);
                val.push(d);
            }
        }
        for (a, &i) in idx.iter().enumerate() {
            let mut row = 0.0;
            for (b, &j) in idx.iter().enumerate() {
                row += g.get(i, j) * val[b];
            }
            total += val[a] * row;
        }
    }
    total / g.samples().max(1) as f64
}

/// [`output_error`] for a paired `g`: per row, `pᵀ G p − 2 pᵀ C d + dᵀ G_d d` over
/// the non-zero entries of the pruned row `p` and the dense row `d`.
fn paired_output_error(dense: &Matrix, pruned: &Matrix, g: &Gram) -> f64 {
    let k = dense.cols();
    let mut total = 0.0;
    let nonzero = |m: &Matrix, r: usize| -> Vec<(usize, f64)> {
        (0..k)
            .filter(|&c| m.get(r, c) != 0.0)
            .map(|c| (c, m.get(r, c) as f64))
            .collect()
    };
    for r in 0..dense.rows() {
        let (p, d) = (nonzero(pruned, r), nonzero(dense, r));
        for &(i, pi) in &p {
            let seen: f64 = p.iter().map(|&(j, pj)| g.get(i, j) * pj).sum();
            let cross: f64 = d.iter().map(|&(j, dj)| g.cross(i, j) * dj).sum();
            total += pi * (seen - 2.0 * cross);
        }
        for &(i, di) in &d {
            let dd: f64 = d.iter().map(|&(j, dj)| g.dense_get(i, j) * dj).sum();
            total += di * dd;
        }
    }
    total / g.samples().max(1) as f64
}

/// Refits `b` on `fit` with each strength of `ridges` and keeps whichever of those
/// and plain magnitude pruning has the smallest [`output_error`] on `valid`. Returns
/// the matrix and the chosen strength (`None`: magnitude pruning was best).
pub fn refit_matrix_validated(
    dense: &Matrix,
    b: &BcrMatrix,
    fit: &Gram,
    valid: &Gram,
    ridges: &[f64],
) -> Result<(BcrMatrix, Option<f64>), String> {
    let mut best = (b.clone(), None, output_error(dense, &b.to_dense(), valid));
    for &ridge in ridges {
        let m = refit_matrix(dense, b, fit, ridge)?;
        let e = output_error(dense, &m.to_dense(), valid);
        if e < best.2 {
            best = (m, Some(ridge), e);
        }
    }
    Ok((best.0, best.1))
}

/// Refits every pruned matrix of `pruned` (the pruned form of `dense`) on the fit
/// Gram matrices `fit[m]`, choosing the strength among `ridges` (or no refit) by the
/// output error on `valid[m]` ([`refit_matrix_validated`]).
pub fn refit_layer_validated(
    dense: &Layer,
    pruned: &Layer,
    fit: &[&Gram],
    valid: &[&Gram],
    ridges: &[f64],
) -> Result<Layer, ModelError> {
    let mut out = pruned.clone();
    for (i, m) in pruned.weights.matrices.iter().enumerate() {
        let GivenMatrix::Bcr(b) = m else { continue };
        let (Some(f), Some(v)) = (fit.get(i), valid.get(i)) else {
            return Err(ModelError::layer(
                &dense.name,
                format!("no calibration data for matrix {i}"),
            ));
        };
        let d = dense.dense(i)?;
        let (refit, _) = refit_matrix_validated(&d, b, f, v, ridges)
            .map_err(|e| ModelError::layer(&dense.name, e))?;
        correct_bias(&mut out, i, &d, &refit.to_dense(), f);
        out.weights.matrices[i] = GivenMatrix::Bcr(refit);
    }
    Ok(out)
}

/// Per weight matrix, whichever of `a` and `b` (two pruned and refit forms of
/// `dense`) has the smaller [`output_error`] on `valid[m]`; a matrix taken from `b`
/// comes with its bias (the bias [`refit_layer_validated`] corrects along with it).
pub fn closer_per_matrix(
    dense: &Layer,
    a: Layer,
    b: &Layer,
    valid: &[&Gram],
) -> Result<Layer, ModelError> {
    let mut out = a;
    for (m, (ma, mb)) in out
        .weights
        .matrices
        .clone()
        .iter()
        .zip(&b.weights.matrices)
        .enumerate()
    {
        let (GivenMatrix::Bcr(pa), GivenMatrix::Bcr(pb)) = (ma, mb) else {
            continue;
        };
        let g = valid.get(m).ok_or_else(|| {
            ModelError::layer(&dense.name, format!("no calibration data for matrix {m}"))
        })?;
        let d = dense.dense(m)?;
        if output_error(&d, &pb.to_dense(), g) < output_error(&d, &pa.to_dense(), g) {
            out.weights.matrices[m] = mb.clone();
            if let (Some(to), Some(from)) = (out.weights.biases.get_mut(m), b.weights.biases.get(m))
            {
                to.clone_from(from);
            }
        }
    }
    Ok(out)
}

/// Refits every weight matrix of the dense `layer`, all its weights kept, on the
/// (paired) Gram matrices `fit[m]`, choosing the strength among `ridges`, or no
/// change, by the output error on `valid[m]` ([`refit_matrix_validated`]). Used by
/// the sequential refit for a layer left dense behind pruned ones: it then maps the
/// shifted inputs it gets back toward the dense model's outputs. Returns a dense layer.
pub fn refit_dense_layer_validated(
    layer: &Layer,
    fit: &[&Gram],
    valid: &[&Gram],
    ridges: &[f64],
) -> Result<Layer, ModelError> {
    if layer.spec.sparse().is_some() {
        return Err(ModelError::layer(&layer.name, "is pruned, not dense"));
    }
    let mut whole = layer.clone();
    for (i, m) in layer.weights.matrices.iter().enumerate() {
        let GivenMatrix::Dense(d) = m else { continue };
        let block = BlockShape {
            rows: d.rows(),
            cols: d.cols(),
        };
        let b = BcrMatrix::from_dense(d, block)
            .map_err(|e| ModelError::layer(&layer.name, format!("matrix {i}: {e}")))?;
        whole.weights.matrices[i] = GivenMatrix::Bcr(b);
    }
    Ok(densify(&refit_layer_validated(
        layer, &whole, fit, valid, ridges,
    )?))
}

/// Bias correction: adds `W_dense · mean(x_d) − W_pruned · mean(x)` to the bias that
/// goes with weight matrix `i` (FC/conv: `B` when the layer has one; GRU/LSTM: `b_ih`
/// for `W_ih`, `b_hh` for `W_hh`), so the layer's mean output on the calibration data
/// is the dense layer's (`x_d = x` unless `g` is paired).
fn correct_bias(layer: &mut Layer, i: usize, dense: &Matrix, pruned: &Matrix, g: &Gram) {
    let has_bias = match &layer.spec {
        WorkloadSpec::Fc(s) => s.bias && i == 0,
        WorkloadSpec::Conv2d(s) => s.bias && i == 0,
        WorkloadSpec::Rnn(_) => i < 2,
        _ => false,
    };
    let Some(bias) = layer.weights.biases.get_mut(i).filter(|_| has_bias) else {
        return;
    };
    let k = dense.cols();
    let (mean, dense_mean) = (g.mean(), g.dense_mean());
    if mean.len() != k || bias.len() != dense.rows() {
        return;
    }
    for (r, b) in bias.iter_mut().enumerate() {
        let shift: f64 = (0..k)
            .map(|c| dense.get(r, c) as f64 * dense_mean[c] - pruned.get(r, c) as f64 * mean[c])
            .sum();
        *b += shift as f32;
    }
}

/// Refits every pruned matrix of `pruned` (the pruned form of `dense`) with the Gram
/// matrices `grams[m]` of its calibration inputs.
pub fn refit_layer(
    dense: &Layer,
    pruned: &Layer,
    grams: &[&Gram],
    ridge: f64,
) -> Result<Layer, ModelError> {
    let mut out = pruned.clone();
    for (i, m) in pruned.weights.matrices.iter().enumerate() {
        let GivenMatrix::Bcr(b) = m else { continue };
        let g = grams.get(i).ok_or_else(|| {
            ModelError::layer(&dense.name, format!("no calibration data for matrix {i}"))
        })?;
        let d = dense.dense(i)?;
        let refit = refit_matrix(&d, b, g, ridge).map_err(|e| ModelError::layer(&dense.name, e))?;
        out.weights.matrices[i] = GivenMatrix::Bcr(refit);
    }
    Ok(out)
}
