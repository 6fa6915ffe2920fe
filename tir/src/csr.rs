//! CSR (compressed sparse row) matrices: the unstructured-sparsity baseline BCR is
//! compared against.
//!
//! Row `r` holds the entries `row_ptr[r] .. row_ptr[r + 1]` of `col_idx` and `values`;
//! column indices are strictly increasing within a row. A [`CsrMatrix`] can only be built
//! through [`CsrMatrix::new`] (which validates), [`CsrMatrix::from_dense`],
//! [`crate::bcr::BcrMatrix::to_csr`] or deserialization (which also validates).

use crate::matrix::Matrix;
use serde::{Deserialize, Serialize};

/// Why a CSR matrix (or an operand of [`CsrMatrix::spmm`]) is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    /// A dimension does not fit the `u32` column indices, or `rows * cols` overflows.
    #[error("CSR matrix of {rows}x{cols} is too large: each dimension must be at most {} and rows*cols must fit in usize", u32::MAX)]
    TooLarge {
        /// Matrix rows.
        rows: usize,
        /// Matrix columns.
        cols: usize,
    },
    /// `row_ptr` does not have `rows + 1` entries.
    #[error("row_ptr has {actual} entries, expected rows + 1 = {expected}")]
    RowPtrLength {
        /// `rows + 1`.
        expected: usize,
        /// `row_ptr.len()`.
        actual: usize,
    },
    /// `row_ptr[0]` is not zero.
    #[error("row_ptr[0] is {value}, expected 0")]
    RowPtrStart {
        /// `row_ptr[0]`.
        value: usize,
    },
    /// `row_ptr` decreases at some row.
    #[error("row_ptr decreases at row {row}: row_ptr[{row}] = {start} > row_ptr[{row}+1] = {end}")]
    RowPtrDecreasing {
        /// The row.
        row: usize,
        /// `row_ptr[row]`.
        start: usize,
        /// `row_ptr[row + 1]`.
        end: usize,
    },
    /// The last `row_ptr` entry is not the number of column indices.
    #[error("row_ptr ends at {last} but col_idx has {nnz} entries")]
    RowPtrEnd {
        /// The last entry of `row_ptr`.
        last: usize,
        /// `col_idx.len()`.
        nnz: usize,
    },
    /// `values` and `col_idx` differ in length.
    #[error("values has {values} entries but col_idx has {col_idx}")]
    ValuesLength {
        /// `col_idx.len()`.
        col_idx: usize,
        /// `values.len()`.
        values: usize,
    },
    /// A column index is not below the number of columns.
    #[error("row {row}: column index {col} is out of range 0..{cols}")]
    ColumnOutOfRange {
        /// The row.
        row: usize,
        /// The offending column index.
        col: u32,
        /// Matrix columns.
        cols: usize,
    },
    /// A column index repeats its predecessor in the same row.
    #[error("row {row}: column index {col} appears twice")]
    DuplicateColumn {
        /// The row.
        row: usize,
        /// The repeated column index.
        col: u32,
    },
    /// A column index is smaller than its predecessor in the same row.
    #[error("row {row}: column indices are not sorted: {col} follows {previous}")]
    UnsortedColumns {
        /// The row.
        row: usize,
        /// The out-of-order column index.
        col: u32,
        /// The index before it.
        previous: u32,
    },
    /// The dense operand of [`CsrMatrix::spmm`] does not have `cols * n` elements.
    #[error("spmm operand must be {k}x{n} ({} elements), got {actual} elements", k.saturating_mul(*n))]
    OperandLength {
        /// Rows the operand needs (the matrix's columns).
        k: usize,
        /// Columns of the operand.
        n: usize,
        /// Elements supplied.
        actual: usize,
    },
}

/// A `rows x cols` matrix in CSR form.
///
/// Serializes as `{rows, cols, row_ptr, col_idx, values}`; deserialization runs
/// [`CsrMatrix::validate`] and rejects malformed data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawCsrMatrix")]
pub struct CsrMatrix {
    rows: usize,
    cols: usize,
    row_ptr: Vec<usize>,
    col_idx: Vec<u32>,
    values: Vec<f32>,
}

/// The unchecked serialized form of [`CsrMatrix`].
#[derive(Deserialize)]
struct RawCsrMatrix {
    rows: usize,
    cols: usize,
    row_ptr: Vec<usize>,
    col_idx: Vec<u32>,
    values: Vec<f32>,
}

impl TryFrom<RawCsrMatrix> for CsrMatrix {
    type Error = CsrError;

    fn try_from(raw: RawCsrMatrix) -> Result<CsrMatrix, CsrError> {
        CsrMatrix::new(raw.rows, raw.cols, raw.row_ptr, raw.col_idx, raw.values)
    }
}

fn check_dims(rows: usize, cols: usize) -> Result<(), CsrError> {
    let max = u32::MAX as usize;
    if rows > max || cols > max || rows.checked_mul(cols).is_none() {
        return Err(CsrError::TooLarge { rows, cols });
    }
    Ok(())
}

impl CsrMatrix {
    /// A CSR matrix from its parts, validated as in [`CsrMatrix::validate`].
    pub fn new(
        rows: usize,
        cols: usize,
        row_ptr: Vec<usize>,
        col_idx: Vec<u32>,
        values: Vec<f32>,
    ) -> Result<CsrMatrix, CsrError> {
        let m = CsrMatrix {
            rows,
            cols,
            row_ptr,
            col_idx,
            values,
        };
        m.validate()?;
        Ok(m)
    }

    /// Parts the caller guarantees valid; checked in debug builds.
    pub(crate) fn from_parts_unchecked(
        rows: usize,
        cols: usize,
        row_ptr: Vec<usize>,
        col_idx: Vec<u32>,
        values: Vec<f32>,
    ) -> CsrMatrix {
        let m = CsrMatrix {
            rows,
            cols,
            row_ptr,
            col_idx,
            values,
        };
        debug_assert_eq!(m.validate(), Ok(()));
        m
    }

    /// The CSR form of a dense matrix, keeping the elements that are not zero (`-0.0`
    /// counts as zero, NaN does not). Empty shapes are allowed. Fails only when a
    /// dimension exceeds `u32::MAX`.
    pub fn from_dense(m: &Matrix) -> Result<CsrMatrix, CsrError> {
        let (rows, cols) = (m.rows(), m.cols());
        check_dims(rows, cols)?;
        let mut row_ptr = Vec::with_capacity(rows + 1);
        let mut col_idx = Vec::new();
        let mut values = Vec::new();
        row_ptr.push(0);
        if cols > 0 {
            for row in m.data().chunks_exact(cols) {
                for (c, &v) in row.iter().enumerate() {
                    if v != 0.0 {
                        // c < cols <= u32::MAX.
                        col_idx.push(c as u32);
                        values.push(v);
                    }
                }
                row_ptr.push(col_idx.len());
            }
        } else {
            row_ptr.resize(rows + 1, 0);
        }
        Ok(CsrMatrix {
            rows,
            cols,
            row_ptr,
            col_idx,
            values,
        })
    }

    /// The dense matrix (absent elements are zero).
    pub fn to_dense(&self) -> Matrix {
        let mut m = Matrix::zeros(self.rows, self.cols);
        for r in 0..self.rows {
            for k in self.row_ptr[r]..self.row_ptr[r + 1] {
                m.set(r, self.col_idx[k] as usize, self.values[k]);
            }
        }
        m
    }

    /// Checks, in this order: dimensions fit `u32` ([`CsrError::TooLarge`]); `row_ptr`
    /// has `rows + 1` entries ([`CsrError::RowPtrLength`]), starts at 0
    /// ([`CsrError::RowPtrStart`]), never decreases ([`CsrError::RowPtrDecreasing`]) and
    /// ends at `col_idx.len()` ([`CsrError::RowPtrEnd`]); `values.len() == col_idx.len()`
    /// ([`CsrError::ValuesLength`]); in each row, column indices are below `cols`
    /// ([`CsrError::ColumnOutOfRange`]) and strictly increasing
    /// ([`CsrError::DuplicateColumn`], [`CsrError::UnsortedColumns`]).
    pub fn validate(&self) -> Result<(), CsrError> {
        check_dims(self.rows, self.cols)?;
        if self.row_ptr.len() != self.rows + 1 {
            return Err(CsrError::RowPtrLength {
                expected: self.rows + 1,
                actual: self.row_ptr.len(),
            });
        }
        if self.row_ptr[0] != 0 {
            return Err(CsrError::RowPtrStart {
                value: self.row_ptr[0],
            });
        }
        for (row, w) in self.row_ptr.windows(2).enumerate() {
            if w[0] > w[1] {
                return Err(CsrError::RowPtrDecreasing {
                    row,
                    start: w[0],
                    end: w[1],
                });
            }
        }
        let last = self.row_ptr[self.rows];
        if last != self.col_idx.len() {
            return Err(CsrError::RowPtrEnd {
                last,
                nnz: self.col_idx.len(),
            });
        }
        if self.values.len() != self.col_idx.len() {
            return Err(CsrError::ValuesLength {
                col_idx: self.col_idx.len(),
                values: self.values.len(),
            });
        }
        for row in 0..self.rows {
            let cols = &self.col_idx[self.row_ptr[row]..self.row_ptr[row + 1]];
            for (k, &col) in cols.iter().enumerate() {
                if col as usize >= self.cols {
                    return Err(CsrError::ColumnOutOfRange {
                        row,
                        col,
                        cols: self.cols,
                    });
                }
                if k > 0 {
                    let previous = cols[k - 1];
                    if col == previous {
                        return Err(CsrError::DuplicateColumn { row, col });
                    }
                    if col < previous {
                        return Err(CsrError::UnsortedColumns { row, col, previous });
                    }
                }
            }
        }
        Ok(())
    }

    /// Matrix rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Matrix columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row offsets: row `r` is entries `row_ptr[r] .. row_ptr[r + 1]`.
    pub fn row_ptr(&self) -> &[usize] {
        &self.row_ptr
    }

    /// Column index of each entry, strictly increasing within a row.
    pub fn col_idx(&self) -> &[u32] {
        &self.col_idx
    }

    /// Value of each entry.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Bytes the format takes, counting 4-byte elements as a kernel would store them:
    /// 4 per value, 4 per column index and 4 per `row_ptr` entry (`rows + 1` of them,
    /// counted as 32-bit offsets even though they are held as `usize` here). The shape
    /// itself is not counted.
    pub fn storage_bytes(&self) -> usize {
        4 * self.values.len() + 4 * self.col_idx.len() + 4 * self.row_ptr.len()
    }

    /// `Y = A X`, the baseline sparse-dense product: `x` is the `cols x n` operand in
    /// row-major order and the result is `rows x n`, row-major. Fails when `x` does not
    /// have `cols * n` elements.
    pub fn spmm(&self, x: &[f32], n: usize) -> Result<Vec<f32>, CsrError> {
        let operand_err = CsrError::OperandLength {
            k: self.cols,
            n,
            actual: x.len(),
        };
        if self.cols.checked_mul(n) != Some(x.len()) {
            return Err(operand_err);
        }
        // `rows * n` can still overflow when rows > cols; that is reported as the same
        // error, since no operand of that width can be used.
        let len = self.rows.checked_mul(n).ok_or(operand_err)?;
        let mut y = vec![0.0f32; len];
        if n == 0 {
            return Ok(y);
        }
        for (r, yrow) in y.chunks_exact_mut(n).enumerate() {
            for k in self.row_ptr[r]..self.row_ptr[r + 1] {
                let a = self.values[k];
                let c = self.col_idx[k] as usize;
                for (yv, &xv) in yrow.iter_mut().zip(&x[c * n..(c + 1) * n]) {
                    *yv += a * xv;
                }
            }
        }
        Ok(y)
    }
}
