//! A weight matrix as its kept BCR blocks only, for fast fine-tuning of the GRU
//! model ([`crate::trainable_seq2seq`]).
//!
//! The masked product of [`crate::backprop::matmul`] walks every row's kept column
//! runs in a dense row-major matrix; after BCR pruning those runs are one or two
//! columns long, so the walk costs more than the arithmetic. Here a matrix keeps,
//! for every non-empty block, its kept rows and kept columns (absolute indices) and
//! its kept values packed contiguously (`kept rows x kept cols`, row-major, block
//! after block). A matrix-vector product gathers the block's kept inputs once and
//! takes one short dense dot product per kept row; pruned blocks, rows and columns
//! cost nothing. A dense matrix is one block with every row and column.
//!
//! The packed values are the parameters that train ([`KeptBlocks::pack`] and
//! [`KeptBlocks::unpack`] convert from and to the dense row-major form), so a pruned
//! position has no storage at all and cannot become non-zero.

use crate::exec::dot;
use tir::bcr::BcrMatrix;

/// One block's kept rows and columns and where its values start.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    rows: Vec<u32>,
    cols: Vec<u32>,
    offset: usize,
}

/// The kept blocks of a `rows x cols` matrix (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptBlocks {
    rows: usize,
    cols: usize,
    blocks: Vec<Block>,
    kept: usize,
}

impl KeptBlocks {
    /// A dense `rows x cols` matrix: one block with everything.
    pub fn dense(rows: usize, cols: usize) -> KeptBlocks {
        let blocks = if rows > 0 && cols > 0 {
            vec![Block {
                rows: (0..rows as u32).collect(),
                cols: (0..cols as u32).collect(),
                offset: 0,
            }]
        } else {
            Vec::new()
        };
        KeptBlocks {
            rows,
            cols,
            blocks,
            kept: rows * cols,
        }
    }

    /// The kept blocks of a BCR matrix (its structure, whatever the kept values).
    pub fn of_bcr(b: &BcrMatrix) -> KeptBlocks {
        let (gr, gc) = b.grid();
        let mut blocks = Vec::new();
        let mut kept = 0;
        for br in 0..gr {
            for bc in 0..gc {
                let (r0, c0, _, _) = b.block_extent(br, bc);
                let blk = b.block_at(br, bc);
                if blk.kept_rows.is_empty() || blk.kept_cols.is_empty() {
                    continue;
                }
                let rows: Vec<u32> = blk.kept_rows.iter().map(|&r| r0 as u32 + r).collect();
                let cols: Vec<u32> = blk.kept_cols.iter().map(|&c| c0 as u32 + c).collect();
                let n = rows.len() * cols.len();
                blocks.push(Block {
                    rows,
                    cols,
                    offset: kept,
                });
                kept += n;
            }
        }
        KeptBlocks {
            rows: b.rows(),
            cols: b.cols(),
            blocks,
            kept,
        }
    }

    /// Rows of the matrix.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns of the matrix.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Number of kept values (the packed length).
    pub fn kept(&self) -> usize {
        self.kept
    }

    /// The kept values of the dense row-major `w`, packed.
    pub fn pack(&self, w: &[f32]) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.kept);
        for b in &self.blocks {
            for &r in &b.rows {
                let row = &w[r as usize * self.cols..(r as usize + 1) * self.cols];
                out.extend(b.cols.iter().map(|&c| row[c as usize]));
            }
        }
        out
    }

    /// The dense row-major matrix of the packed values `v` (zero where pruned).
    pub fn unpack(&self, v: &[f32]) -> Vec<f32> {
        let mut w = vec![0.0f32; self.rows * self.cols];
        for b in &self.blocks {
            let kc = b.cols.len();
            for (i, &r) in b.rows.iter().enumerate() {
                let vals = &v[b.offset + i * kc..b.offset + (i + 1) * kc];
                for (&c, &x) in b.cols.iter().zip(vals) {
                    w[r as usize * self.cols + c as usize] = x;
                }
            }
        }
        w
    }

    /// `y = W x` for the packed values `v`.
    pub fn matvec(&self, v: &[f32], x: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0f32; self.rows];
        let mut xg = Vec::new();
        for b in &self.blocks {
            let kc = b.cols.len();
            xg.clear();
            xg.extend(b.cols.iter().map(|&c| x[c as usize]));
            for (i, &r) in b.rows.iter().enumerate() {
                y[r as usize] += dot(&v[b.offset + i * kc..b.offset + (i + 1) * kc], &xg);
            }
        }
        y
    }

    /// The backward pass of [`KeptBlocks::matvec`]: adds `dy xᵀ` at the kept
    /// positions to the packed gradient `dv`, and `Wᵀ dy` to `dx` when given.
    pub fn matvec_backward(
        &self,
        v: &[f32],
        x: &[f32],
        dy: &[f32],
        dv: &mut [f32],
        mut dx: Option<&mut [f32]>,
    ) {
        let mut xg = Vec::new();
        let mut dxg = Vec::new();
        for b in &self.blocks {
            let kc = b.cols.len();
            xg.clear();
            xg.extend(b.cols.iter().map(|&c| x[c as usize]));
            dxg.clear();
            dxg.resize(kc, 0.0f32);
            for (i, &r) in b.rows.iter().enumerate() {
                let g = dy[r as usize];
                if g == 0.0 {
                    continue;
                }
                let at = b.offset + i * kc..b.offset + (i + 1) * kc;
                for (d, &xv) in dv[at.clone()].iter_mut().zip(&xg) {
                    *d += g * xv;
                }
                if dx.is_some() {
                    for (d, &w) in dxg.iter_mut().zip(&v[at]) {
                        *d += g * w;
                    }
                }
            }
            if let Some(dx) = dx.as_deref_mut() {
                for (&c, &d) in b.cols.iter().zip(&dxg) {
                    dx[c as usize] += d;
                }
            }
        }
    }

    /// `Y = W X` for `n` vectors at once: `X [cols, n]` and `Y [rows, n]` row-major
    /// (vector `b` is column `b`). Each kept weight multiplies a contiguous run of
    /// `n` inputs, which vectorizes where one vector's short rows do not.
    pub fn matmat(&self, v: &[f32], x: &[f32], n: usize) -> Vec<f32> {
        let mut y = vec![0.0f32; self.rows * n];
        let mut xg = Vec::new();
        for b in &self.blocks {
            let kc = b.cols.len();
            xg.clear();
            for &c in &b.cols {
                xg.extend_from_slice(&x[c as usize * n..(c as usize + 1) * n]);
            }
            for (i, &r) in b.rows.iter().enumerate() {
                let yr = &mut y[r as usize * n..(r as usize + 1) * n];
                let w = &v[b.offset + i * kc..b.offset + (i + 1) * kc];
                for (j, &wv) in w.iter().enumerate() {
                    for (yv, &xv) in yr.iter_mut().zip(&xg[j * n..(j + 1) * n]) {
                        *yv += wv * xv;
                    }
                }
            }
        }
        y
    }

    /// The backward pass of [`KeptBlocks::matmat`]: adds `dY Xᵀ` at the kept
    /// positions to the packed gradient `dv`, and `Wᵀ dY` to `dx` when given.
    pub fn matmat_backward(
        &self,
        v: &[f32],
        x: &[f32],
        n: usize,
        dy: &[f32],
        dv: &mut [f32],
        mut dx: Option<&mut [f32]>,
    ) {
        let mut xg = Vec::new();
        let mut dxg = Vec::new();
        for b in &self.blocks {
            let kc = b.cols.len();
            xg.clear();
            for &c in &b.cols {
                xg.extend_from_slice(&x[c as usize * n..(c as usize + 1) * n]);
            }
            dxg.clear();
            dxg.resize(kc * n, 0.0f32);
            for (i, &r) in b.rows.iter().enumerate() {
                let dyr = &dy[r as usize * n..(r as usize + 1) * n];
                let at = b.offset + i * kc;
                for j in 0..kc {
                    dv[at + j] += dot(dyr, &xg[j * n..(j + 1) * n]);
                    if dx.is_some() {
                        let wv = v[at + j];
                        for (d, &g) in dxg[j * n..(j + 1) * n].iter_mut().zip(dyr) {
                            *d += wv * g;
                        }
                    }
                }
            }
            if let Some(dx) = dx.as_deref_mut() {
                for (j, &c) in b.cols.iter().enumerate() {
                    let dst = &mut dx[c as usize * n..(c as usize + 1) * n];
                    for (d, &g) in dst.iter_mut().zip(&dxg[j * n..(j + 1) * n]) {
                        *d += g;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backprop::{matmul, matmul_backward, Pattern};
    use proptest::prelude::*;
    use tir::rng::SplitMix64;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// The kept-block path (one vector and several) equals the masked dense path of
        /// [`crate::backprop`] (same pattern): product, weight gradient (unpacked)
        /// and input gradient; packing round-trips the pruned matrix.
        #[test]
        fn kept_blocks_equal_the_masked_dense_path(
            seed in any::<u64>(), m in 1usize..40, k in 1usize..40,
            br in 1usize..9, bc in 1usize..9, sparsity in 0.0f64..0.97, dense in any::<bool>(),
        ) {
            let mut rng = SplitMix64::new(seed);
            let d = tir::Matrix::new(m, k, rng.symmetric_vec(m * k, 1.0)).unwrap();
            let (w, p, kb) = if dense {
                (d.data().to_vec(), Pattern::dense(m, k), KeptBlocks::dense(m, k))
            } else {
                let cfg = tir::PruneConfig {
                    block: tir::BlockShape { rows: br.min(m), cols: bc.min(k) },
                    rate: tir::PruneRate::Sparsity(sparsity),
                };
                let b = tir::prune(&d, &cfg).unwrap();
                (b.to_dense().data().to_vec(), Pattern::of_bcr(&b), KeptBlocks::of_bcr(&b))
            };
            prop_assert_eq!(kb.kept(), p.kept());
            let v = kb.pack(&w);
            prop_assert_eq!(v.len(), kb.kept());
            prop_assert_eq!(kb.unpack(&v), w.clone());
            let x = rng.symmetric_vec(k, 1.0);
            let (y0, y1) = (matmul(&w, &p, &x, 1), kb.matvec(&v, &x));
            for (a, b) in y0.iter().zip(&y1) {
                prop_assert!((a - b).abs() < 1e-4, "{} vs {}", a, b);
            }
            let dy = rng.symmetric_vec(m, 1.0);
            let (mut dw, mut dx0) = (vec![0.0; m * k], vec![0.0; k]);
            matmul_backward(&w, &p, &x, 1, &dy, &mut dw, Some(&mut dx0));
            let (mut dv, mut dx1) = (vec![0.0; kb.kept()], vec![0.0; k]);
            kb.matvec_backward(&v, &x, &dy, &mut dv, Some(&mut dx1));
            for (a, b) in dw.iter().zip(&kb.unpack(&dv)) {
                prop_assert!((a - b).abs() < 1e-5, "{} vs {}", a, b);
            }
            for (a, b) in dx0.iter().zip(&dx1) {
                prop_assert!((a - b).abs() < 1e-4, "{} vs {}", a, b);
            }
            let mut dv2 = vec![0.0; kb.kept()];
            kb.matvec_backward(&v, &x, &dy, &mut dv2, None);
            prop_assert_eq!(dv2, dv);
            // Several vectors at once equal the masked product with n columns.
            let n = 1 + (seed % 5) as usize;
            let xs = rng.symmetric_vec(k * n, 1.0);
            let (ys0, ys1) = (matmul(&w, &p, &xs, n), kb.matmat(&v, &xs, n));
            for (a, b) in ys0.iter().zip(&ys1) {
                prop_assert!((a - b).abs() < 1e-4, "{} vs {}", a, b);
            }
            let dys = rng.symmetric_vec(m * n, 1.0);
            let (mut dw, mut dx0) = (vec![0.0; m * k], vec![0.0; k * n]);
            matmul_backward(&w, &p, &xs, n, &dys, &mut dw, Some(&mut dx0));
            let (mut dv, mut dx1) = (vec![0.0; kb.kept()], vec![0.0; k * n]);
            kb.matmat_backward(&v, &xs, n, &dys, &mut dv, Some(&mut dx1));
            for (a, b) in dw.iter().zip(&kb.unpack(&dv)) {
                prop_assert!((a - b).abs() < 1e-4, "{} vs {}", a, b);
            }
            for (a, b) in dx0.iter().zip(&dx1) {
                prop_assert!((a - b).abs() < 1e-4, "{} vs {}", a, b);
            }
        }
    }
}
