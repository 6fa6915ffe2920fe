//! BCR pruning: from a dense weight matrix to a [`BcrMatrix`], with the same numbers of
//! kept rows and columns in every block ([`crate::prune_spread::prune_across_blocks`]
//! keeps the same share of the matrix with the counts spread unevenly over the blocks).
//!
//! # The algorithm (this is the contract)
//!
//! The matrix is cut into the block grid of [`PruneConfig::block`] (edge blocks may be
//! partial, see [`BcrMatrix::block_extent`]). Each block, of height `h` and width `w`, is
//! pruned on its own:
//!
//! 1. **Counts.** `(kr, kc)` = [`PruneRate::kept_counts`]`(h, w)`:
//!    - `RowCol { row_rate, col_rate }`: `kc = round(w * (1 - col_rate))`,
//!      `kr = round(h * (1 - row_rate))`;
//!    - `Sparsity(s)`: with density `d = 1 - s`, `kc = clamp(round(w * sqrt(d)), 0, w)`,
//!      then `kr = clamp(round(d * h * w / kc), 0, h)` (`kr = 0` when `kc = 0`).
//!
//!    `round` is [`f64::round`] (halves away from zero), all in `f64`. If `kr = 0` or
//!    `kc = 0` the block is empty (stored in canonical empty form).
//! 2. **Columns first.** Each of the block's `w` columns is scored by its L2 norm over
//!    the block's `h` rows; the `kc` columns with the largest norms are kept.
//! 3. **Then rows.** Each of the `h` rows is scored by its L2 norm over the *kept
//!    columns only*; the `kr` rows with the largest norms are kept.
//! 4. The block stores the kept rows and columns as sorted local indices and the
//!    `kr x kc` original values at their crossings, unchanged. Everything else is
//!    zero in [`BcrMatrix::to_dense`].
//!
//! Norms are compared as sums of squares accumulated in `f64` (in increasing row order for
//! a column, increasing column order for a row), which orders exactly like the L2 norm
//! without the rounding of a square root. Ranking is by norm descending, ties broken by
//! the lower local index first, so pruning is deterministic.
//!
//! For `Sparsity(s)` every block keeps `kr * kc` values with
//! `|kr * kc - d * h * w| <= max(h, w) / 2`, so the achieved overall sparsity is within
//! `sum over blocks of max(h, w) / 2` elements of the target, i.e. within one row or
//! column per block.
//!
//! # Errors
//!
//! Checked in this order: the rate (sparsity or rates outside `[0, 1)`, NaN included),
//! the shapes (empty matrix, zero block dimension, block larger than the matrix,
//! dimensions over `u32::MAX`), then the weights (the first non-finite weight in row-major
//! order is reported by row and column).

use crate::bcr::{self, BcrError, BcrMatrix, BlockShape};
use crate::matrix::Matrix;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// How much of each block to prune.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum PruneRate {
    /// Target fraction of zeros, in `[0, 1)`; rows and columns are pruned in proportion
    /// (see the [module docs](self)).
    Sparsity(f64),
    /// Fractions of rows and of columns pruned in every block, each in `[0, 1)`.
    RowCol {
        /// Fraction of each block's rows pruned.
        row_rate: f64,
        /// Fraction of each block's columns pruned.
        col_rate: f64,
    },
}

impl PruneRate {
    /// The numbers of rows and columns `(kr, kc)` kept in a block of height `h` and width
    /// `w`, by the formulas in the [module docs](self); `(0, 0)` when the block ends up
    /// empty. Assumes a validated rate; out-of-range rates give clamped counts.
    pub fn kept_counts(&self, h: usize, w: usize) -> (usize, usize) {
        // `as usize` saturates (NaN -> 0), and the results are clamped to the block.
        let (kr, kc) = match *self {
            PruneRate::RowCol { row_rate, col_rate } => (
                ((h as f64 * (1.0 - row_rate)).round() as usize).min(h),
                ((w as f64 * (1.0 - col_rate)).round() as usize).min(w),
            ),
            PruneRate::Sparsity(s) => {
                let d = 1.0 - s;
                let kc = ((w as f64 * d.sqrt()).round() as usize).min(w);
                if kc == 0 {
                    (0, 0)
                } else {
                    let kr = ((d * h as f64 * w as f64 / kc as f64).round() as usize).min(h);
                    (kr, kc)
                }
            }
        };
        if kr == 0 || kc == 0 {
            (0, 0)
        } else {
            (kr, kc)
        }
    }
}

/// What to prune: the BCR block shape and the rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PruneConfig {
    /// The block shape (`R x C`).
    pub block: BlockShape,
    /// How much of each block to prune.
    pub rate: PruneRate,
}

/// Why pruning was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PruneError {
    /// `PruneRate::Sparsity` outside `[0, 1)` or NaN.
    #[error("rate: sparsity must be in [0, 1), got {value}")]
    InvalidSparsity {
        /// The sparsity given.
        value: f64,
    },
    /// `PruneRate::RowCol::row_rate` outside `[0, 1)` or NaN.
    #[error("rate: row_rate must be in [0, 1), got {value}")]
    InvalidRowRate {
        /// The row rate given.
        value: f64,
    },
    /// `PruneRate::RowCol::col_rate` outside `[0, 1)` or NaN.
    #[error("rate: col_rate must be in [0, 1), got {value}")]
    InvalidColRate {
        /// The column rate given.
        value: f64,
    },
    /// The matrix has no rows or no columns.
    #[error(
        "cannot prune an empty {rows}x{cols} matrix: it needs at least one row and one column"
    )]
    EmptyMatrix {
        /// Matrix rows.
        rows: usize,
        /// Matrix columns.
        cols: usize,
    },
    /// A block dimension is zero.
    #[error(
        "block: block shape {block} has a zero dimension (block.rows and block.cols must be >= 1)"
    )]
    ZeroBlock {
        /// The block shape given.
        block: BlockShape,
    },
    /// The block is larger than the matrix.
    #[error("block: block shape {block} is larger than the {rows}x{cols} matrix (need block.rows <= {rows} and block.cols <= {cols})")]
    BlockLargerThanMatrix {
        /// The block shape given.
        block: BlockShape,
        /// Matrix rows.
        rows: usize,
        /// Matrix columns.
        cols: usize,
    },
    /// A matrix dimension is over `u32::MAX`.
    #[error(
        "matrix of {rows}x{cols} is too large for BCR: each dimension must be at most {}",
        u32::MAX
    )]
    TooLarge {
        /// Matrix rows.
        rows: usize,
        /// Matrix columns.
        cols: usize,
    },
    /// A weight is NaN or infinite.
    #[error("weight at row {row}, column {col} is not finite ({value})")]
    NonFiniteWeight {
        /// Row of the weight.
        row: usize,
        /// Column of the weight.
        col: usize,
        /// The weight.
        value: f32,
    },
}

pub(crate) fn check_rate(rate: PruneRate) -> Result<(), PruneError> {
    let ok = |v: f64| (0.0..1.0).contains(&v);
    match rate {
        PruneRate::Sparsity(value) if !ok(value) => Err(PruneError::InvalidSparsity { value }),
        PruneRate::RowCol { row_rate, .. } if !ok(row_rate) => {
            Err(PruneError::InvalidRowRate { value: row_rate })
        }
        PruneRate::RowCol { col_rate, .. } if !ok(col_rate) => {
            Err(PruneError::InvalidColRate { value: col_rate })
        }
        _ => Ok(()),
    }
}

/// The `k` indices with the largest scores (ties: lower index first), sorted ascending.
fn top_k(scores: &[f64], k: usize) -> Vec<u32> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| match scores[b].total_cmp(&scores[a]) {
        Ordering::Equal => a.cmp(&b),
        o => o,
    });
    order.truncate(k);
    order.sort_unstable();
    // Indices are below a block extent, itself <= u32::MAX (checked by the shape check).
    order.into_iter().map(|i| i as u32).collect()
}

/// Prunes `m` to BCR with the block shape and rate of `cfg`, by the algorithm in the
/// [module docs](self).
pub fn prune(m: &Matrix, cfg: &PruneConfig) -> Result<BcrMatrix, PruneError> {
    check_rate(cfg.rate)?;
    let (rows, cols, block) = (m.rows(), m.cols(), cfg.block);
    let (gr, gc) = bcr::check_shape(rows, cols, block).map_err(|e| match e {
        BcrError::EmptyMatrix { rows, cols } => PruneError::EmptyMatrix { rows, cols },
        BcrError::ZeroBlock { block } => PruneError::ZeroBlock { block },
        BcrError::BlockLargerThanMatrix { block, rows, cols } => {
            PruneError::BlockLargerThanMatrix { block, rows, cols }
        }
        // `check_shape` reports no other variant; map everything else to the size error.
        _ => PruneError::TooLarge { rows, cols },
    })?;
    if let Some((k, &value)) = m.data().iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(PruneError::NonFiniteWeight {
            row: k / cols,
            col: k % cols,
            value,
        });
    }
    let mut blocks = Vec::with_capacity(gr * gc);
    for br in 0..gr {
        for bc in 0..gc {
            let (r0, c0, h, w) = bcr::block_extent_of(rows, cols, block, br, bc);
            let (kr, kc) = cfg.rate.kept_counts(h, w);
            if kr == 0 || kc == 0 {
                blocks.push(bcr::BcrBlock::empty());
                continue;
            }
            let sq = |i: usize, j: usize| {
                let v = f64::from(m.get(r0 + i, c0 + j));
                v * v
            };
            let col_scores: Vec<f64> = (0..w)
                .map(|j| (0..h).fold(0.0, |acc, i| acc + sq(i, j)))
                .collect();
            let kept_cols = top_k(&col_scores, kc);
            let row_scores: Vec<f64> = (0..h)
                .map(|i| {
                    kept_cols
                        .iter()
                        .fold(0.0, |acc, &j| acc + sq(i, j as usize))
                })
                .collect();
            let kept_rows = top_k(&row_scores, kr);
            blocks.push(bcr::block_from_selection(m, r0, c0, kept_rows, kept_cols));
        }
    }
    Ok(bcr::from_parts_unchecked(rows, cols, block, blocks))
}
