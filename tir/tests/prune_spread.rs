//! Tests of BCR pruning with the kept weights spread over the blocks
//! (`tir::prune_across_blocks`): the kept count, a valid BCR matrix with the original
//! values, the greedy choice on matrices whose answer is known, determinism, and the
//! same errors as the uniform pruning.

mod bcr_util;

use bcr_util::{prune_case, random_matrix};
use proptest::prelude::*;
use tir::{prune, prune_across_blocks, BlockShape, Matrix, PruneConfig, PruneRate};

fn sparsity(block: BlockShape, s: f64) -> PruneConfig {
    PruneConfig {
        block,
        rate: PruneRate::Sparsity(s),
    }
}

/// Sum of squares of the kept weights (the dense form's).
fn kept_energy(p: &tir::BcrMatrix) -> f64 {
    p.to_dense()
        .data()
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum()
}

/// The kept rows and columns of every block (row-major grid order) by the greedy of
/// the contract, written plainly: every step scans every segment of every block.
fn brute_force(d: &Matrix, block: BlockShape, target: usize) -> Vec<(Vec<u32>, Vec<u32>)> {
    let (gr, gc) = (d.rows().div_ceil(block.rows), d.cols().div_ceil(block.cols));
    // Per block: origin, kept rows, kept columns (local, as flags).
    let mut blocks: Vec<(usize, usize, Vec<bool>, Vec<bool>)> = Vec::new();
    for br in 0..gr {
        for bc in 0..gc {
            let (r0, c0) = (br * block.rows, bc * block.cols);
            let h = (d.rows() - r0).min(block.rows);
            let w = (d.cols() - c0).min(block.cols);
            blocks.push((r0, c0, vec![true; h], vec![true; w]));
        }
    }
    let sq = |r: usize, c: usize| f64::from(d.get(r, c)) * f64::from(d.get(r, c));
    let kept = |b: &[(usize, usize, Vec<bool>, Vec<bool>)]| -> usize {
        b.iter()
            .map(|(_, _, r, c)| r.iter().filter(|&&k| k).count() * c.iter().filter(|&&k| k).count())
            .sum()
    };
    while kept(&blocks) > target {
        // (mean, block, is_row, index), the least by the contract's order.
        let mut best: Option<(f64, usize, bool, usize)> = None;
        for (b, (r0, c0, rows, cols)) in blocks.iter().enumerate() {
            let kr: Vec<usize> = (0..rows.len()).filter(|&i| rows[i]).collect();
            let kc: Vec<usize> = (0..cols.len()).filter(|&j| cols[j]).collect();
            if kr.is_empty() || kc.is_empty() {
                continue;
            }
            let mut segs = Vec::new();
            for &j in &kc {
                let e: f64 = kr.iter().map(|&i| sq(r0 + i, c0 + j)).sum();
                segs.push((e / kr.len() as f64, b, false, j));
            }
            for &i in &kr {
                let e: f64 = kc.iter().map(|&j| sq(r0 + i, c0 + j)).sum();
                segs.push((e / kc.len() as f64, b, true, i));
            }
            for s in segs {
                let better = best.is_none_or(|t| {
                    s.0.total_cmp(&t.0)
                        .then(s.1.cmp(&t.1))
                        .then(s.2.cmp(&t.2))
                        .then(s.3.cmp(&t.3))
                        .is_lt()
                });
                if better {
                    best = Some(s);
                }
            }
        }
        let Some((_, b, is_row, i)) = best else { break };
        if is_row {
            blocks[b].2[i] = false;
        } else {
            blocks[b].3[i] = false;
        }
    }
    blocks
        .into_iter()
        .map(|(_, _, rows, cols)| {
            let sel = |k: &[bool]| -> Vec<u32> {
                (0..k.len()).filter(|&i| k[i]).map(|i| i as u32).collect()
            };
            let (r, c) = (sel(&rows), sel(&cols));
            if r.is_empty() || c.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                (r, c)
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// At most the target count is kept, and less by no more than one segment (a
    /// block's row or column); every kept value is the original one; the result is a
    /// valid BCR matrix with the configured block, and the same on a second run.
    #[test]
    fn keeps_the_target_count_with_the_original_values((d, block, s) in prune_case()) {
        let cfg = sparsity(block, s);
        let p = prune_across_blocks(&d, &cfg).unwrap();
        prop_assert_eq!(p.validate(), Ok(()));
        prop_assert_eq!((p.rows(), p.cols(), p.block()), (d.rows(), d.cols(), block));
        let target = ((1.0 - s) * (d.rows() * d.cols()) as f64).round() as usize;
        let kept = p.nnz();
        prop_assert!(kept <= target, "kept {} over the target {}", kept, target);
        prop_assert!(
            kept + block.rows.max(block.cols) > target,
            "kept {} for the target {}: more than one segment short", kept, target
        );
        let dense = p.to_dense();
        let (gr, gc) = p.grid();
        for br in 0..gr {
            for bc in 0..gc {
                let (r0, c0, _, _) = p.block_extent(br, bc);
                let b = &p.blocks()[br * gc + bc];
                for &r in &b.kept_rows {
                    for &c in &b.kept_cols {
                        let (r, c) = (r0 + r as usize, c0 + c as usize);
                        prop_assert_eq!(dense.get(r, c), d.get(r, c));
                    }
                }
            }
        }
        prop_assert_eq!(prune_across_blocks(&d, &cfg).unwrap(), p);
    }

    /// The result equals a brute-force run of the contract: at every step, over every
    /// block's kept columns and rows, remove the one whose kept weights have the least
    /// mean square (ties: lower block, columns first, lower index), until at most the
    /// target stays.
    #[test]
    fn equals_the_brute_force_greedy((d, block, s) in prune_case()) {
        let cfg = sparsity(block, s);
        let p = prune_across_blocks(&d, &cfg).unwrap();
        let target = ((1.0 - s) * (d.rows() * d.cols()) as f64).round() as usize;
        let want = brute_force(&d, block, target);
        let got: Vec<(Vec<u32>, Vec<u32>)> = p
            .blocks()
            .iter()
            .map(|b| (b.kept_rows.clone(), b.kept_cols.clone()))
            .collect();
        prop_assert_eq!(got, want);
    }

    /// Bad rates give the uniform pruning's error.
    #[test]
    fn refuses_bad_rates_like_the_uniform_pruning(s in prop_oneof![Just(f64::NAN), Just(1.0), Just(-0.1), Just(2.5)]) {
        let d = random_matrix(8, 8, 1, 0.0, false);
        let cfg = sparsity(BlockShape::new(4, 4), s);
        // Compared as messages: NaN is not equal to itself.
        prop_assert_eq!(
            prune_across_blocks(&d, &cfg).unwrap_err().to_string(),
            prune(&d, &cfg).unwrap_err().to_string()
        );
    }
}

/// Two 4x4 blocks side by side, one with weights 100 times the other's: at 50% the
/// small block loses everything and the large one stays whole, where the uniform
/// pruning keeps half of each.
#[test]
fn a_block_of_small_weights_goes_before_any_of_a_block_of_large_ones() {
    let mut data = Vec::new();
    for r in 0..4 {
        for c in 0..8 {
            let v = 1.0 + (r * 8 + c) as f32 * 0.01;
            data.push(if c < 4 { v * 0.01 } else { v });
        }
    }
    let d = Matrix::new(4, 8, data).unwrap();
    let cfg = sparsity(BlockShape::new(4, 4), 0.5);
    let p = prune_across_blocks(&d, &cfg).unwrap();
    assert!(p.blocks()[0].is_empty(), "{:?}", p.blocks()[0]);
    assert_eq!(p.blocks()[1].kept_rows, vec![0, 1, 2, 3]);
    assert_eq!(p.blocks()[1].kept_cols, vec![0, 1, 2, 3]);
    // The uniform pruning keeps 3x3 of each block (18 weights): less energy from more.
    let u = prune(&d, &cfg).unwrap();
    assert!(u.nnz() > p.nnz());
    assert!(kept_energy(&p) > kept_energy(&u));
}

/// Inside one block the weakest segment goes first, rows and columns alike: a block
/// whose last row is near zero loses that row before any column.
#[test]
fn removes_the_weakest_row_or_column_first() {
    let mut d = Matrix::zeros(4, 4);
    for r in 0..4 {
        for c in 0..4 {
            let v = if r == 3 { 0.001 } else { 1.0 + c as f32 };
            d.set(r, c, v);
        }
    }
    // 4 of 16 removed: exactly the near-zero row.
    let p = prune_across_blocks(&d, &sparsity(BlockShape::new(4, 4), 0.25)).unwrap();
    assert_eq!(p.blocks()[0].kept_rows, vec![0, 1, 2]);
    assert_eq!(p.blocks()[0].kept_cols, vec![0, 1, 2, 3]);
    // 7 of 16: then the weakest column (over the 3 kept rows: 3 weights).
    let p = prune_across_blocks(&d, &sparsity(BlockShape::new(4, 4), 7.0 / 16.0)).unwrap();
    assert_eq!(p.blocks()[0].kept_rows, vec![0, 1, 2]);
    assert_eq!(p.blocks()[0].kept_cols, vec![1, 2, 3]);
}

/// Sparsity 0 keeps everything; a non-finite weight and a block larger than the
/// matrix are refused with the uniform pruning's errors.
#[test]
fn edge_cases_match_the_uniform_pruning() {
    let d = random_matrix(6, 10, 9, 0.0, false);
    let p = prune_across_blocks(&d, &sparsity(BlockShape::new(4, 4), 0.0)).unwrap();
    assert_eq!(p.to_dense(), d);
    let mut bad = d.clone();
    bad.set(2, 7, f32::INFINITY);
    let cfg = sparsity(BlockShape::new(4, 4), 0.5);
    assert_eq!(
        prune_across_blocks(&bad, &cfg).unwrap_err(),
        prune(&bad, &cfg).unwrap_err()
    );
    let big = sparsity(BlockShape::new(8, 4), 0.5);
    assert_eq!(
        prune_across_blocks(&d, &big).unwrap_err(),
        prune(&d, &big).unwrap_err()
    );
}
