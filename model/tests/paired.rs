//! Paired calibration and the refit on it: the refit fits the pruned matrix on the
//! inputs it sees to the dense matrix's outputs on the dense inputs, and the paired
//! output error is what it says.

use model::calibrate::Gram;
use model::prune::{output_error, refit_matrix};
use tir::bcr::{BcrMatrix, BlockShape};
use tir::rng::SplitMix64;
use tir::Matrix;

/// `Σ ‖P x − D x_d‖² / n` over the pairs, computed directly.
fn brute_error(dense: &Matrix, pruned: &Matrix, pairs: &[(Vec<f32>, Vec<f32>)]) -> f64 {
    let mut total = 0.0;
    for (x, xd) in pairs {
        for r in 0..dense.rows() {
            let p: f64 = (0..dense.cols())
                .map(|c| pruned.get(r, c) as f64 * x[c] as f64)
                .sum();
            let d: f64 = (0..dense.cols())
                .map(|c| dense.get(r, c) as f64 * xd[c] as f64)
                .sum();
            total += (p - d) * (p - d);
        }
    }
    total / pairs.len() as f64
}

/// Dense inputs `x_d` and the inputs a pruned model's matrix sees instead: `A x_d`
/// plus a little noise, for an invertible mixing `A` near the identity.
fn pairs(rng: &mut SplitMix64, k: usize, n: usize) -> Vec<(Vec<f32>, Vec<f32>)> {
    let mix: Vec<f32> = rng.symmetric_vec(k * k, 1.0);
    (0..n)
        .map(|_| {
            let xd = rng.symmetric_vec(k, 1.0);
            let noise = rng.symmetric_vec(k, 0.01);
            let x: Vec<f32> = (0..k)
                .map(|i| {
                    xd[i]
                        + (0..k).map(|j| mix[i * k + j] * xd[j]).sum::<f32>() / (k as f32).sqrt()
                        + noise[i]
                })
                .collect();
            (x, xd)
        })
        .collect()
}

#[test]
fn paired_output_error_is_the_error_of_the_pruned_matrix_on_its_own_inputs() {
    let mut rng = SplitMix64::new(7);
    let (m, k) = (12usize, 16usize);
    let dense = Matrix::new(m, k, rng.symmetric_vec(m * k, 1.0)).unwrap();
    let data = pairs(&mut rng, k, 300);
    let mut g = Gram::new_paired(k);
    for (x, xd) in &data {
        g.add_pair(x, xd);
    }
    let cfg = tir::PruneConfig {
        block: BlockShape { rows: 4, cols: 8 },
        rate: tir::PruneRate::Sparsity(0.5),
    };
    let pruned = tir::prune(&dense, &cfg).unwrap().to_dense();
    for p in [&pruned, &dense] {
        let want = brute_error(&dense, p, &data);
        let got = output_error(&dense, p, &g);
        assert!(
            (got - want).abs() <= 1e-6 * want.max(1.0),
            "{got} vs {want}"
        );
    }
    // The dense matrix on the shifted inputs is not free of error.
    assert!(output_error(&dense, &dense, &g) > 1e-3);
}

#[test]
fn the_paired_refit_undoes_a_shift_of_its_inputs() {
    let mut rng = SplitMix64::new(11);
    let (m, k) = (8usize, 16usize);
    let dense = Matrix::new(m, k, rng.symmetric_vec(m * k, 1.0)).unwrap();
    let data = pairs(&mut rng, k, 400);
    let (mut paired, mut plain) = (Gram::new_paired(k), Gram::new(k));
    for (x, xd) in &data {
        paired.add_pair(x, xd);
        plain.add(x);
    }
    // Every weight kept: the paired refit can map the shifted inputs back exactly (up
    // to the noise), the plain one only reproduces the dense matrix on them.
    let full = BcrMatrix::from_dense(&dense, BlockShape { rows: 8, cols: 8 }).unwrap();
    let on_pairs = refit_matrix(&dense, &full, &paired, 1e-9)
        .unwrap()
        .to_dense();
    let on_seen = refit_matrix(&dense, &full, &plain, 1e-9)
        .unwrap()
        .to_dense();
    let before = brute_error(&dense, &dense, &data);
    let after = brute_error(&dense, &on_pairs, &data);
    assert!(after < before * 0.02, "before {before}, after {after}");
    assert!(brute_error(&dense, &on_seen, &data) > before * 0.5);
}
