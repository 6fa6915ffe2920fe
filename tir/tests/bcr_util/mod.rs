//! Helpers shared by the BCR, CSR and pruning tests.
#![allow(dead_code)]

use proptest::prelude::*;
use tir::{BlockShape, Matrix};

/// A small deterministic xorshift64* generator, so tests need no extra crates.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A random `rows x cols` matrix: each element is zero with probability `zero_frac`,
/// otherwise uniform in `[-1, 1)`, or, when `quantized`, an integer in `-3..=3` (so that
/// equal norms, i.e. ties, are common).
pub fn random_matrix(
    rows: usize,
    cols: usize,
    seed: u64,
    zero_frac: f64,
    quantized: bool,
) -> Matrix {
    let mut rng = Rng::new(seed);
    let data = (0..rows * cols)
        .map(|_| {
            if rng.unit() < zero_frac {
                0.0
            } else if quantized {
                (rng.next_u64() % 7) as f32 - 3.0
            } else {
                (rng.unit() * 2.0 - 1.0) as f32
            }
        })
        .collect();
    Matrix::new(rows, cols, data).expect("shape matches data by construction")
}

/// Naive dense product of `a` (`m x k`) and row-major `x` (`k x n`).
pub fn dense_matmul(a: &Matrix, x: &[f32], n: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; a.rows() * n];
    for i in 0..a.rows() {
        for j in 0..n {
            let mut acc = 0.0f32;
            for k in 0..a.cols() {
                acc += a.get(i, k) * x[k * n + j];
            }
            y[i * n + j] = acc;
        }
    }
    y
}

/// A random matrix (1..=40 rows and columns, some zeros, sometimes quantized for ties), a
/// block shape that fits it and a sparsity in `[0, 0.97)`.
pub fn prune_case() -> impl Strategy<Value = (Matrix, BlockShape, f64)> {
    (1usize..=40, 1usize..=40)
        .prop_flat_map(|(m, k)| {
            (
                Just(m),
                Just(k),
                1..=m,
                1..=k,
                any::<u64>(),
                0.0f64..0.5,
                any::<bool>(),
                0.0f64..0.97,
            )
        })
        .prop_map(|(m, k, r, c, seed, z, q, s)| {
            (random_matrix(m, k, seed, z, q), BlockShape::new(r, c), s)
        })
}
