//! The BCR (block-based column-row) sparse matrix format.
//!
//! A weight matrix `W` (`M x K`) is cut into a grid of blocks of `R` rows by `C` columns
//! (the [`BlockShape`]). The last block row and block column may be partial when `M` or
//! `K` is not a multiple of the block size: block `(br, bc)` covers rows
//! `br*R .. min((br+1)*R, M)` and columns `bc*C .. min((bc+1)*C, K)` (see
//! [`BcrMatrix::block_extent`]). Inside each block whole rows and whole columns are pruned
//! independently, so each block keeps a dense sub-matrix of `kept rows x kept columns`
//! values ([`BcrBlock`]).
//!
//! A [`BcrMatrix`] can only be built through [`BcrMatrix::new`] (which validates),
//! [`BcrMatrix::from_dense`], [`crate::prune::prune`] or deserialization (which also
//! validates), so every value of the type satisfies the invariants listed on
//! [`BcrMatrix::validate`].

use crate::csr::CsrMatrix;
use crate::matrix::Matrix;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The size of a BCR block: `rows x cols` (displayed as `RxC`, e.g. `16x32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlockShape {
    /// Rows per block (`R`).
    pub rows: usize,
    /// Columns per block (`C`).
    pub cols: usize,
}

impl BlockShape {
    /// A block shape of `rows x cols`.
    pub const fn new(rows: usize, cols: usize) -> BlockShape {
        BlockShape { rows, cols }
    }
}

impl fmt::Display for BlockShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.rows, self.cols)
    }
}

/// The error returned when a string is not a block shape of the form `RxC`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid block shape `{text}`: expected `RxC` with R and C decimal integers, e.g. `16x32`")]
pub struct ParseBlockShapeError {
    /// The text that failed to parse.
    pub text: String,
}

impl FromStr for BlockShape {
    type Err = ParseBlockShapeError;

    /// Parses `RxC` (e.g. `16x32`), the form [`fmt::Display`] writes. Zero dimensions
    /// parse; they are rejected where a shape is used.
    fn from_str(s: &str) -> Result<BlockShape, ParseBlockShapeError> {
        let err = || ParseBlockShapeError {
            text: s.to_string(),
        };
        let (r, c) = s.split_once('x').ok_or_else(err)?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(r) || !digits(c) {
            return Err(err());
        }
        Ok(BlockShape {
            rows: r.parse().map_err(|_| err())?,
            cols: c.parse().map_err(|_| err())?,
        })
    }
}

/// One block of a [`BcrMatrix`]: the rows and columns it keeps and their dense values.
///
/// Indices are local to the block (`0..height` and `0..width` of the block's possibly
/// partial extent) and strictly increasing. `values` is the kept sub-matrix in row-major
/// order: `values[i * kept_cols.len() + j]` is the element at local row `kept_rows[i]`,
/// local column `kept_cols[j]`. A block with no kept row or no kept column is stored in
/// canonical empty form: all three vectors empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BcrBlock {
    /// Kept rows, local to the block, strictly increasing.
    pub kept_rows: Vec<u32>,
    /// Kept columns, local to the block, strictly increasing.
    pub kept_cols: Vec<u32>,
    /// The kept sub-matrix, row-major, `kept_rows.len() * kept_cols.len()` values.
    pub values: Vec<f32>,
}

impl BcrBlock {
    /// The canonical empty block (nothing kept).
    pub fn empty() -> BcrBlock {
        BcrBlock::default()
    }

    /// Whether the block keeps no value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Number of stored values.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }
}

/// Which index list of a block an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Axis {
    /// `kept_rows`.
    Row,
    /// `kept_cols`.
    Col,
}

impl fmt::Display for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Axis::Row => "kept_rows",
            Axis::Col => "kept_cols",
        })
    }
}

/// Why a BCR matrix is malformed. Block-level variants name the block `(br, bc)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BcrError {
    /// The matrix has no rows or no columns.
    #[error("BCR matrix is empty ({rows}x{cols}): it needs at least one row and one column")]
    EmptyMatrix {
        /// Matrix rows.
        rows: usize,
        /// Matrix columns.
        cols: usize,
    },
    /// The block shape has a zero dimension.
    #[error("block shape {block} has a zero dimension: block rows and cols must be >= 1")]
    ZeroBlock {
        /// The block shape.
        block: BlockShape,
    },
    /// The block shape is larger than the matrix in some dimension.
    #[error("block shape {block} is larger than the {rows}x{cols} matrix")]
    BlockLargerThanMatrix {
        /// The block shape.
        block: BlockShape,
        /// Matrix rows.
        rows: usize,
        /// Matrix columns.
        cols: usize,
    },
    /// A matrix dimension does not fit the `u32` indices, or `rows * cols` overflows.
    #[error("BCR matrix of {rows}x{cols} is too large: each dimension must be at most {} and rows*cols must fit in usize", u32::MAX)]
    TooLarge {
        /// Matrix rows.
        rows: usize,
        /// Matrix columns.
        cols: usize,
    },
    /// The number of blocks is not the grid size.
    #[error("a {grid_rows}x{grid_cols} block grid needs {expected} blocks, got {actual}")]
    BlockCount {
        /// Block rows in the grid.
        grid_rows: usize,
        /// Block columns in the grid.
        grid_cols: usize,
        /// `grid_rows * grid_cols`.
        expected: usize,
        /// Blocks supplied.
        actual: usize,
    },
    /// A block keeps no row or no column but some of its vectors are non-empty.
    #[error("block ({br}, {bc}) is empty but not in canonical form (kept_rows {kept_rows}, kept_cols {kept_cols}, values {values} entries; an empty block stores all three empty)")]
    NonCanonicalEmpty {
        /// Block row.
        br: usize,
        /// Block column.
        bc: usize,
        /// `kept_rows.len()`.
        kept_rows: usize,
        /// `kept_cols.len()`.
        kept_cols: usize,
        /// `values.len()`.
        values: usize,
    },
    /// A kept index is not below the block's height (rows) or width (columns).
    #[error("block ({br}, {bc}): {axis}[{position}] = {index} is out of range 0..{extent}")]
    IndexOutOfRange {
        /// Block row.
        br: usize,
        /// Block column.
        bc: usize,
        /// Which index list.
        axis: Axis,
        /// Position in the list.
        position: usize,
        /// The offending index.
        index: u32,
        /// The block's height (rows) or width (columns).
        extent: usize,
    },
    /// A kept index repeats its predecessor.
    #[error("block ({br}, {bc}): {axis}[{position}] = {index} duplicates the previous index")]
    DuplicateIndex {
        /// Block row.
        br: usize,
        /// Block column.
        bc: usize,
        /// Which index list.
        axis: Axis,
        /// Position of the repeat in the list.
        position: usize,
        /// The repeated index.
        index: u32,
    },
    /// A kept index is smaller than its predecessor.
    #[error(
        "block ({br}, {bc}): {axis} is not sorted: {axis}[{position}] = {index} follows {previous}"
    )]
    UnsortedIndices {
        /// Block row.
        br: usize,
        /// Block column.
        bc: usize,
        /// Which index list.
        axis: Axis,
        /// Position of the out-of-order index.
        position: usize,
        /// The out-of-order index.
        index: u32,
        /// The index before it.
        previous: u32,
    },
    /// `values.len()` is not `kept_rows.len() * kept_cols.len()`.
    #[error("block ({br}, {bc}): values has {actual} entries, expected {expected} (kept rows x kept cols)")]
    ValuesLength {
        /// Block row.
        br: usize,
        /// Block column.
        bc: usize,
        /// `kept_rows.len() * kept_cols.len()`.
        expected: usize,
        /// `values.len()`.
        actual: usize,
    },
}

/// Checks a matrix shape and block shape; shared by [`BcrMatrix::validate`],
/// [`BcrMatrix::from_dense`] and pruning. Returns the grid `(block_rows, block_cols)`.
pub(crate) fn check_shape(
    rows: usize,
    cols: usize,
    block: BlockShape,
) -> Result<(usize, usize), BcrError> {
    if rows == 0 || cols == 0 {
        return Err(BcrError::EmptyMatrix { rows, cols });
    }
    if block.rows == 0 || block.cols == 0 {
        return Err(BcrError::ZeroBlock { block });
    }
    if block.rows > rows || block.cols > cols {
        return Err(BcrError::BlockLargerThanMatrix { block, rows, cols });
    }
    let max = u32::MAX as usize;
    if rows > max || cols > max || rows.checked_mul(cols).is_none() {
        return Err(BcrError::TooLarge { rows, cols });
    }
    Ok((rows.div_ceil(block.rows), cols.div_ceil(block.cols)))
}

/// Extent `(row0, col0, height, width)` of block `(br, bc)`; the caller keeps `br`, `bc`
/// within the grid of a checked shape.
fn extent(
    rows: usize,
    cols: usize,
    block: BlockShape,
    br: usize,
    bc: usize,
) -> (usize, usize, usize, usize) {
    let r0 = br * block.rows;
    let c0 = bc * block.cols;
    (r0, c0, block.rows.min(rows - r0), block.cols.min(cols - c0))
}

/// Validates one index list of block `(br, bc)` against the block's extent.
fn check_indices(
    br: usize,
    bc: usize,
    axis: Axis,
    idx: &[u32],
    extent: usize,
) -> Result<(), BcrError> {
    for (position, &index) in idx.iter().enumerate() {
        if index as usize >= extent {
            return Err(BcrError::IndexOutOfRange {
                br,
                bc,
                axis,
                position,
                index,
                extent,
            });
        }
        if position > 0 {
            let previous = idx[position - 1];
            if index == previous {
                return Err(BcrError::DuplicateIndex {
                    br,
                    bc,
                    axis,
                    position,
                    index,
                });
            }
            if index < previous {
                return Err(BcrError::UnsortedIndices {
                    br,
                    bc,
                    axis,
                    position,
                    index,
                    previous,
                });
            }
        }
    }
    Ok(())
}

/// A matrix in BCR format: its shape, block shape and the blocks of the grid in row-major
/// grid order (block `(br, bc)` is `blocks[br * grid_cols + bc]`).
///
/// Serializes as `{rows, cols, block, blocks}`; deserialization runs
/// [`BcrMatrix::validate`] and rejects malformed data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawBcrMatrix")]
pub struct BcrMatrix {
    rows: usize,
    cols: usize,
    block: BlockShape,
    blocks: Vec<BcrBlock>,
}

/// The unchecked serialized form of [`BcrMatrix`].
#[derive(Deserialize)]
struct RawBcrMatrix {
    rows: usize,
    cols: usize,
    block: BlockShape,
    blocks: Vec<BcrBlock>,
}

impl TryFrom<RawBcrMatrix> for BcrMatrix {
    type Error = BcrError;

    fn try_from(raw: RawBcrMatrix) -> Result<BcrMatrix, BcrError> {
        BcrMatrix::new(raw.rows, raw.cols, raw.block, raw.blocks)
    }
}

impl BcrMatrix {
    /// A BCR matrix from its parts (blocks in row-major grid order), validated as in
    /// [`BcrMatrix::validate`].
    pub fn new(
        rows: usize,
        cols: usize,
        block: BlockShape,
        blocks: Vec<BcrBlock>,
    ) -> Result<BcrMatrix, BcrError> {
        let m = BcrMatrix {
            rows,
            cols,
            block,
            blocks,
        };
        m.validate()?;
        Ok(m)
    }

    /// Converts a dense matrix losslessly: in each block, keeps every row and every column
    /// that has a non-zero element inside the block (so the kept sub-matrix may contain
    /// zeros where a kept row crosses a kept column). `-0.0` counts as zero; NaN does not.
    ///
    /// Fails on an empty matrix or a block shape that is zero, larger than the matrix, or
    /// a matrix too large for `u32` indices.
    pub fn from_dense(m: &Matrix, block: BlockShape) -> Result<BcrMatrix, BcrError> {
        let (rows, cols) = (m.rows(), m.cols());
        let (gr, gc) = check_shape(rows, cols, block)?;
        let mut blocks = Vec::with_capacity(gr * gc);
        for br in 0..gr {
            for bc in 0..gc {
                let (r0, c0, h, w) = extent(rows, cols, block, br, bc);
                let mut row_nz = vec![false; h];
                let mut col_nz = vec![false; w];
                for (i, rnz) in row_nz.iter_mut().enumerate() {
                    for (j, cnz) in col_nz.iter_mut().enumerate() {
                        if m.get(r0 + i, c0 + j) != 0.0 {
                            *rnz = true;
                            *cnz = true;
                        }
                    }
                }
                let kept = |nz: &[bool]| -> Vec<u32> {
                    // Local indices are below the block extent, itself <= u32::MAX
                    // (checked by `check_shape`), so the casts are exact.
                    (0..nz.len()).filter(|&i| nz[i]).map(|i| i as u32).collect()
                };
                blocks.push(block_from_selection(
                    m,
                    r0,
                    c0,
                    kept(&row_nz),
                    kept(&col_nz),
                ));
            }
        }
        Ok(BcrMatrix {
            rows,
            cols,
            block,
            blocks,
        })
    }

    /// The dense matrix this BCR matrix stands for (unkept elements are zero).
    pub fn to_dense(&self) -> Matrix {
        let mut m = Matrix::zeros(self.rows, self.cols);
        let (_, gc) = self.grid();
        for (k, b) in self.blocks.iter().enumerate() {
            let (r0, c0, _, _) = self.block_extent(k / gc, k % gc);
            let nc = b.kept_cols.len();
            for (i, &r) in b.kept_rows.iter().enumerate() {
                for (j, &c) in b.kept_cols.iter().enumerate() {
                    m.set(r0 + r as usize, c0 + c as usize, b.values[i * nc + j]);
                }
            }
        }
        m
    }

    /// Checks every invariant, in this order, returning the first violation:
    /// 1. the matrix is non-empty ([`BcrError::EmptyMatrix`]);
    /// 2. the block shape has no zero dimension ([`BcrError::ZeroBlock`]);
    /// 3. the block is not larger than the matrix: block rows <= M and block cols <= K
    ///    ([`BcrError::BlockLargerThanMatrix`]);
    /// 4. M and K are at most `u32::MAX` and `M*K` fits in `usize`
    ///    ([`BcrError::TooLarge`]);
    /// 5. there is one block per grid cell ([`BcrError::BlockCount`]);
    /// 6. then for each block in grid order: a block with no kept row or no kept column
    ///    has all three vectors empty ([`BcrError::NonCanonicalEmpty`]); each index list
    ///    is in range of the block's (possibly partial) extent
    ///    ([`BcrError::IndexOutOfRange`]) and strictly increasing
    ///    ([`BcrError::DuplicateIndex`], [`BcrError::UnsortedIndices`]); `values` has
    ///    `kept_rows.len() * kept_cols.len()` entries ([`BcrError::ValuesLength`]).
    pub fn validate(&self) -> Result<(), BcrError> {
        let (gr, gc) = check_shape(self.rows, self.cols, self.block)?;
        // gr * gc <= rows * cols, which fits in usize (checked above).
        let expected = gr * gc;
        if self.blocks.len() != expected {
            return Err(BcrError::BlockCount {
                grid_rows: gr,
                grid_cols: gc,
                expected,
                actual: self.blocks.len(),
            });
        }
        for (k, b) in self.blocks.iter().enumerate() {
            let (br, bc) = (k / gc, k % gc);
            let (_, _, h, w) = extent(self.rows, self.cols, self.block, br, bc);
            let (nr, nc, nv) = (b.kept_rows.len(), b.kept_cols.len(), b.values.len());
            if (nr == 0 || nc == 0) && (nr, nc, nv) != (0, 0, 0) {
                return Err(BcrError::NonCanonicalEmpty {
                    br,
                    bc,
                    kept_rows: nr,
                    kept_cols: nc,
                    values: nv,
                });
            }
            check_indices(br, bc, Axis::Row, &b.kept_rows, h)?;
            check_indices(br, bc, Axis::Col, &b.kept_cols, w)?;
            // In range and strictly increasing, so nr <= h and nc <= w: no overflow.
            if nv != nr * nc {
                return Err(BcrError::ValuesLength {
                    br,
                    bc,
                    expected: nr * nc,
                    actual: nv,
                });
            }
        }
        Ok(())
    }

    /// Matrix rows (`M`).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Matrix columns (`K`).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The block shape.
    pub fn block(&self) -> BlockShape {
        self.block
    }

    /// The grid size `(block_rows, block_cols)` = `(ceil(M / R), ceil(K / C))`.
    pub fn grid(&self) -> (usize, usize) {
        (
            self.rows.div_ceil(self.block.rows),
            self.cols.div_ceil(self.block.cols),
        )
    }

    /// The blocks in row-major grid order.
    pub fn blocks(&self) -> &[BcrBlock] {
        &self.blocks
    }

    /// Block `(br, bc)`. Panics when `(br, bc)` is outside [`BcrMatrix::grid`].
    pub fn block_at(&self, br: usize, bc: usize) -> &BcrBlock {
        let (gr, gc) = self.grid();
        assert!(
            br < gr && bc < gc,
            "block ({br}, {bc}) outside the {gr}x{gc} grid"
        );
        &self.blocks[br * gc + bc]
    }

    /// Extent `(row0, col0, height, width)` of block `(br, bc)`: its first row and column
    /// in the matrix and its size, smaller than the block shape for edge blocks when the
    /// shape does not divide the matrix. Panics when `(br, bc)` is outside
    /// [`BcrMatrix::grid`].
    pub fn block_extent(&self, br: usize, bc: usize) -> (usize, usize, usize, usize) {
        let (gr, gc) = self.grid();
        assert!(
            br < gr && bc < gc,
            "block ({br}, {bc}) outside the {gr}x{gc} grid"
        );
        extent(self.rows, self.cols, self.block, br, bc)
    }

    /// Number of stored values (the sum of kept rows x kept columns over blocks; a kept
    /// value may itself be zero).
    pub fn nnz(&self) -> usize {
        self.blocks.iter().map(BcrBlock::nnz).sum()
    }

    /// `1 - nnz / (M * K)`: the fraction of elements not stored.
    pub fn sparsity(&self) -> f64 {
        1.0 - self.nnz() as f64 / (self.rows as f64 * self.cols as f64)
    }

    /// Bytes the format takes, counting 4-byte (`f32`/`i32`) elements:
    /// - 4 per stored value;
    /// - 4 per kept-row index and 4 per kept-column index, over all blocks;
    /// - 12 per block (empty blocks included): one 4-byte entry per block in each of three
    ///   offset arrays (start of the block's values, of its kept rows, of its kept
    ///   columns).
    ///
    /// The shape and block shape themselves (a few scalars) are not counted.
    pub fn storage_bytes(&self) -> usize {
        let indices: usize = self
            .blocks
            .iter()
            .map(|b| b.kept_rows.len() + b.kept_cols.len())
            .sum();
        4 * self.nnz() + 4 * indices + 12 * self.blocks.len()
    }

    /// Dense bytes (`4 * M * K`) divided by [`BcrMatrix::storage_bytes`].
    pub fn compression_ratio(&self) -> f64 {
        4.0 * self.rows as f64 * self.cols as f64 / self.storage_bytes() as f64
    }

    /// Number of blocks that store at least one value.
    pub fn nonempty_blocks(&self) -> usize {
        self.blocks.iter().filter(|b| !b.is_empty()).count()
    }

    /// The same matrix in CSR form, holding only the non-zero elements (stored zeros of
    /// the BCR blocks are dropped): equal to `CsrMatrix::from_dense(&self.to_dense())`.
    pub fn to_csr(&self) -> CsrMatrix {
        let (gr, gc) = self.grid();
        let mut row_ptr = Vec::with_capacity(self.rows + 1);
        let mut col_idx = Vec::new();
        let mut values = Vec::new();
        row_ptr.push(0);
        for br in 0..gr {
            let (r0, _, h, _) = extent(self.rows, self.cols, self.block, br, 0);
            for i in 0..h {
                for bc in 0..gc {
                    let b = &self.blocks[br * gc + bc];
                    let (_, c0, _, _) = extent(self.rows, self.cols, self.block, br, bc);
                    // i < h <= u32::MAX, so the cast is exact.
                    if let Ok(pos) = b.kept_rows.binary_search(&(i as u32)) {
                        let nc = b.kept_cols.len();
                        for (j, &c) in b.kept_cols.iter().enumerate() {
                            let v = b.values[pos * nc + j];
                            if v != 0.0 {
                                // c0 + c < cols <= u32::MAX.
                                col_idx.push((c0 + c as usize) as u32);
                                values.push(v);
                            }
                        }
                    }
                }
                debug_assert_eq!(row_ptr.len(), r0 + i + 1);
                row_ptr.push(col_idx.len());
            }
        }
        CsrMatrix::from_parts_unchecked(self.rows, self.cols, row_ptr, col_idx, values)
    }
}

/// The block at `(r0, c0)` keeping `kept_rows x kept_cols` (local, sorted) of `m`, in
/// canonical empty form when either list is empty.
pub(crate) fn block_from_selection(
    m: &Matrix,
    r0: usize,
    c0: usize,
    kept_rows: Vec<u32>,
    kept_cols: Vec<u32>,
) -> BcrBlock {
    if kept_rows.is_empty() || kept_cols.is_empty() {
        return BcrBlock::empty();
    }
    let mut values = Vec::with_capacity(kept_rows.len() * kept_cols.len());
    for &r in &kept_rows {
        for &c in &kept_cols {
            values.push(m.get(r0 + r as usize, c0 + c as usize));
        }
    }
    BcrBlock {
        kept_rows,
        kept_cols,
        values,
    }
}

/// A BCR matrix from parts the caller guarantees valid (pruning builds them); checked in
/// debug builds.
pub(crate) fn from_parts_unchecked(
    rows: usize,
    cols: usize,
    block: BlockShape,
    blocks: Vec<BcrBlock>,
) -> BcrMatrix {
    let m = BcrMatrix {
        rows,
        cols,
        block,
        blocks,
    };
    debug_assert_eq!(m.validate(), Ok(()));
    m
}

/// `(row0, col0, height, width)` of block `(br, bc)` for a checked shape; used by pruning.
pub(crate) fn block_extent_of(
    rows: usize,
    cols: usize,
    block: BlockShape,
    br: usize,
    bc: usize,
) -> (usize, usize, usize, usize) {
    extent(rows, cols, block, br, bc)
}
