//! Dense row-major `f32` matrices: the form weights take before BCR pruning.

use serde::{Deserialize, Serialize};

/// A dense `rows x cols` row-major matrix of `f32`.
///
/// Invariant kept by the constructor: `data.len() == rows * cols`.
/// Deserialization checks the invariant (a file cannot make a malformed matrix).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawMatrix")]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

/// The unchecked serialized form of [`Matrix`].
#[derive(Deserialize)]
struct RawMatrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl TryFrom<RawMatrix> for Matrix {
    type Error = MatrixShapeError;

    fn try_from(raw: RawMatrix) -> Result<Matrix, MatrixShapeError> {
        Matrix::new(raw.rows, raw.cols, raw.data)
    }
}

/// The error returned when a matrix's data does not fit its shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {rows}x{cols} matrix needs {} values, got {actual}", rows * cols)]
pub struct MatrixShapeError {
    /// Requested rows.
    pub rows: usize,
    /// Requested columns.
    pub cols: usize,
    /// Values supplied.
    pub actual: usize,
}

impl Matrix {
    /// A matrix from row-major data; fails when `data.len() != rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Matrix, MatrixShapeError> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(MatrixShapeError {
                rows,
                cols,
                actual: data.len(),
            });
        }
        Ok(Matrix { rows, cols, data })
    }

    /// A matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Matrix {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Element `(r, c)`; panics when out of range (callers index within the shape).
    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.cols + c]
    }

    /// Sets element `(r, c)`; panics when out of range (callers index within the shape).
    pub fn set(&mut self, r: usize, c: usize, v: f32) {
        self.data[r * self.cols + c] = v;
    }

    /// The row-major data.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Consumes the matrix, giving its row-major data.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Number of non-zero elements.
    pub fn count_nonzero(&self) -> usize {
        self.data.iter().filter(|v| **v != 0.0).count()
    }
}
