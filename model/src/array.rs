//! Dense `f32` arrays flowing between the ops of a model.

use serde::{Deserialize, Serialize};

/// A dense row-major `f32` array. Invariant: `data.len()` is the product of `shape`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Array {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Array {
    /// An array from its shape and data; `None` when they do not fit.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Option<Array> {
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        (n == data.len()).then_some(Array { shape, data })
    }

    /// An array of zeros (empty when the element count overflows).
    pub fn zeros(shape: Vec<usize>) -> Array {
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .unwrap_or(0);
        let shape = if n == 0 && shape.iter().all(|&d| d > 0) {
            vec![0]
        } else {
            shape
        };
        Array {
            shape,
            data: vec![0.0; n],
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The elements, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the array into its elements.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The same data with another shape of the same element count.
    pub fn reshape(self, shape: Vec<usize>) -> Option<Array> {
        Array::new(shape, self.data)
    }

    /// Largest absolute element-wise difference (infinite when shapes differ or an
    /// element is not finite).
    pub fn max_abs_diff(&self, other: &Array) -> f32 {
        if self.shape != other.shape {
            return f32::INFINITY;
        }
        self.data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| {
                let d = (a - b).abs();
                if d.is_nan() {
                    f32::INFINITY
                } else {
                    d
                }
            })
            .fold(0.0, f32::max)
    }

    /// Index of the largest element (first on ties; `None` when empty).
    pub fn argmax(&self) -> Option<usize> {
        let mut best: Option<(usize, f32)> = None;
        for (i, &v) in self.data.iter().enumerate() {
            if best.is_none_or(|(_, b)| v > b) {
                best = Some((i, v));
            }
        }
        best.map(|(i, _)| i)
    }
}
