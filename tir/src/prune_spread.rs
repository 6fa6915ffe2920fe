//! BCR pruning with the kept weights spread unevenly over the blocks.
//!
//! [`crate::prune::prune`] keeps the same numbers of rows and columns in every block.
//! [`prune_across_blocks`] keeps the same share of the matrix, but lets each block keep
//! as much as its weights deserve: starting from every block full, it removes one
//! segment at a time (a kept column or a kept row of one block, over that block's other
//! kept rows or columns), always the one whose weights have the least mean square, until
//! the matrix keeps at most `round(d * rows * cols)` weights (`d` the density of the
//! rate). The result is still BCR (each block keeps the crossings of some of its
//! columns and rows, or nothing), as GRIM's regularized training produces it: blocks
//! over unimportant inputs or outputs lose everything while others stay nearly full.
//!
//! Removing a segment lowers the squares of the crossing segments of the same block,
//! so that block's weakest segment is found again after each removal: a heap holds
//! one entry per block, its weakest segment (only the block just popped changes, so no
//! entry goes stale), and a removal costs one pass over its block. Sums of squares are in `f64`; ties go to the
//! lower block, columns before rows, the lower index first, so the result is
//! deterministic.

use crate::bcr::{self, BcrBlock, BcrMatrix, BlockShape};
use crate::matrix::Matrix;
use crate::prune::{check_rate, prune, PruneConfig, PruneError, PruneRate};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// How the weights a BCR-pruned matrix keeps are spread over its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spread {
    /// The same numbers of columns and rows in every block ([`prune`]).
    #[default]
    Uniform,
    /// Unevenly: the columns and rows of all blocks compete for the matrix's share
    /// ([`prune_across_blocks`]), so blocks of small weights lose more (or
    /// everything) and blocks of large ones keep more. The matrix keeps as many
    /// weights as the uniform pruning at the same rate (its rounding to whole rows and
    /// columns per block included), or fewer by less than one block row or column, so
    /// the two compare at equal size.
    AcrossBlocks,
}

impl Spread {
    /// The spread in words, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Spread::Uniform => "the same counts in every block",
            Spread::AcrossBlocks => "spread over the blocks",
        }
    }

    /// Its name in workload specs and on the command line: `uniform` or `blocks`.
    pub fn name(self) -> &'static str {
        match self {
            Spread::Uniform => "uniform",
            Spread::AcrossBlocks => "blocks",
        }
    }

    /// Prunes `m` to BCR by `cfg` with this spread (same errors as [`prune`]).
    pub fn prune(self, m: &Matrix, cfg: &PruneConfig) -> Result<BcrMatrix, PruneError> {
        let uniform = prune(m, cfg)?;
        match self {
            Spread::Uniform => Ok(uniform),
            // Nothing kept: there is nothing to spread.
            Spread::AcrossBlocks if uniform.nnz() == 0 => Ok(uniform),
            Spread::AcrossBlocks => {
                let total = (m.rows() * m.cols()) as f64;
                let same_count = PruneConfig {
                    block: cfg.block,
                    rate: PruneRate::Sparsity(1.0 - uniform.nnz() as f64 / total),
                };
                prune_across_blocks(m, &same_count)
            }
        }
    }
}

/// Prunes `m` to BCR with the block shape of `cfg`, keeping at most
/// `round(d * rows * cols)` weights in all (`d` = `1 - s` for `Sparsity(s)`, the
/// product of the kept row and column shares for `RowCol`), spread over the blocks by
/// the greedy removal in the [module docs](self).
///
/// Same errors, checked in the same order, as [`prune`].
pub fn prune_across_blocks(m: &Matrix, cfg: &PruneConfig) -> Result<BcrMatrix, PruneError> {
    check_rate(cfg.rate)?;
    // The uniform pruning checks the shapes and the weights with the same errors.
    prune(m, cfg)?;
    let density = match cfg.rate {
        PruneRate::Sparsity(s) => 1.0 - s,
        PruneRate::RowCol { row_rate, col_rate } => (1.0 - row_rate) * (1.0 - col_rate),
    };
    let (rows, cols) = (m.rows(), m.cols());
    let target = (density * rows as f64 * cols as f64).round() as usize;
    let mut state = Greedy::new(m, cfg.block);
    state.remove_down_to(target);
    Ok(bcr::from_parts_unchecked(
        rows,
        cols,
        cfg.block,
        state.into_blocks(m),
    ))
}

/// One block's kept rows and columns and its squared weights.
struct BlockState {
    r0: usize,
    c0: usize,
    /// Squared weights, row-major, `h x w`.
    sq: Vec<f64>,
    rows: Vec<bool>,
    cols: Vec<bool>,
    kept_rows: usize,
    kept_cols: usize,
}

impl BlockState {
    fn h(&self) -> usize {
        self.rows.len()
    }

    fn w(&self) -> usize {
        self.cols.len()
    }

    fn kept(&self) -> usize {
        self.kept_rows * self.kept_cols
    }

    /// Sum of squares of kept column `j` over the kept rows.
    fn col_energy(&self, j: usize) -> f64 {
        (0..self.h())
            .filter(|&i| self.rows[i])
            .map(|i| self.sq[i * self.w() + j])
            .sum()
    }

    /// Sum of squares of kept row `i` over the kept columns.
    fn row_energy(&self, i: usize) -> f64 {
        (0..self.w())
            .filter(|&j| self.cols[j])
            .map(|j| self.sq[i * self.w() + j])
            .sum()
    }

    /// The block's segment to remove next: `(mean square, is a row, index)` with the
    /// least mean square (ties: columns first, the lower index), `None` when the block
    /// keeps nothing.
    fn weakest(&self) -> Option<(f64, bool, usize)> {
        if self.kept() == 0 {
            return None;
        }
        let cols = (0..self.w())
            .filter(|&j| self.cols[j])
            .map(|j| (self.col_energy(j) / self.kept_rows as f64, false, j));
        let rows = (0..self.h())
            .filter(|&i| self.rows[i])
            .map(|i| (self.row_energy(i) / self.kept_cols as f64, true, i));
        cols.chain(rows)
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)))
    }
}

/// A removable segment, ordered so that the heap's top is the one to remove next.
struct Candidate {
    /// Mean square of the segment's kept weights.
    mean: f64,
    block: usize,
    /// Columns (false) before rows (true) on ties.
    is_row: bool,
    index: usize,
}

impl Candidate {
    fn rank(&self, other: &Self) -> Ordering {
        // Smallest mean first, then the lower block, columns first, the lower index.
        other
            .mean
            .total_cmp(&self.mean)
            .then(other.block.cmp(&self.block))
            .then(other.is_row.cmp(&self.is_row))
            .then(other.index.cmp(&self.index))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.rank(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank(other)
    }
}

/// The greedy removal's state over a whole matrix.
struct Greedy {
    blocks: Vec<BlockState>,
    heap: BinaryHeap<Candidate>,
    kept: usize,
}

impl Greedy {
    fn new(m: &Matrix, block: BlockShape) -> Greedy {
        let (rows, cols) = (m.rows(), m.cols());
        let (gr, gc) = (rows.div_ceil(block.rows), cols.div_ceil(block.cols));
        let mut blocks = Vec::with_capacity(gr * gc);
        for br in 0..gr {
            for bc in 0..gc {
                let (r0, c0, h, w) = bcr::block_extent_of(rows, cols, block, br, bc);
                let mut sq = Vec::with_capacity(h * w);
                for i in 0..h {
                    for j in 0..w {
                        let v = f64::from(m.get(r0 + i, c0 + j));
                        sq.push(v * v);
                    }
                }
                blocks.push(BlockState {
                    r0,
                    c0,
                    sq,
                    rows: vec![true; h],
                    cols: vec![true; w],
                    kept_rows: h,
                    kept_cols: w,
                });
            }
        }
        let kept = blocks.iter().map(BlockState::kept).sum();
        let mut s = Greedy {
            blocks,
            heap: BinaryHeap::new(),
            kept,
        };
        for b in 0..s.blocks.len() {
            s.push_weakest(b);
        }
        s
    }

    /// Pushes block `b`'s weakest segment, if it keeps any (the heap holds one entry
    /// per block: the global least is the least of the blocks' least, in the same tie
    /// order).
    fn push_weakest(&mut self, b: usize) {
        if let Some((mean, is_row, index)) = self.blocks[b].weakest() {
            self.heap.push(Candidate {
                mean,
                block: b,
                is_row,
                index,
            });
        }
    }

    /// Removes segments, least mean square first, until at most `target` weights stay.
    fn remove_down_to(&mut self, target: usize) {
        while self.kept > target {
            let Some(c) = self.heap.pop() else {
                break;
            };
            // The popped entry is its block's only one, made after the block's last change.
            let st = &mut self.blocks[c.block];
            let before = st.kept();
            if c.is_row {
                st.rows[c.index] = false;
                st.kept_rows -= 1;
            } else {
                st.cols[c.index] = false;
                st.kept_cols -= 1;
            }
            let after = st.kept();
            self.kept = self.kept - before + after;
            self.push_weakest(c.block);
        }
    }

    /// The BCR blocks: each block's kept crossings with the original values.
    fn into_blocks(self, m: &Matrix) -> Vec<BcrBlock> {
        self.blocks
            .into_iter()
            .map(|st| {
                if st.kept() == 0 {
                    return BcrBlock::empty();
                }
                let sel = |keep: &[bool]| -> Vec<u32> {
                    // Local indices are below a block extent, itself <= u32::MAX.
                    (0..keep.len())
                        .filter(|&i| keep[i])
                        .map(|i| i as u32)
                        .collect()
                };
                bcr::block_from_selection(m, st.r0, st.c0, sel(&st.rows), sel(&st.cols))
            })
            .collect()
    }
}
