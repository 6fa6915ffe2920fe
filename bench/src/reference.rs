//! Reference outputs in the frameworks' layout, computed plainly in `f64` from a case's
//! effective dense weights: the answer every system (grim included) is compared with.
//!
//! Layouts (row-major): FC `x [N, K]`, `W [M, K]`, `y [N, M]` (`y = x · Wᵀ`);
//! conv NCHW `x [1, C, H, W]`, `W [O, C, kh, kw]`, `y [1, O, OH, OW]`;
//! GRU (PyTorch gate order r, z, n; `n = tanh(Wi_n·x + b_in + r ∘ (Wh_n·h + b_hn))`)
//! `x [1, input]`, `h [1, hidden]`, `W_ih [3H, input]`, `W_hh [3H, H]`, `y = h' [1, H]`.

/// FC: `y[n, m] = Σ_k w[m, k] · x[n, k]`.
pub fn fc(w: &[f32], x: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut y = vec![0f32; n * m];
    for b in 0..n {
        let xr = &x[b * k..(b + 1) * k];
        for r in 0..m {
            let wr = &w[r * k..(r + 1) * k];
            let acc: f64 = wr.iter().zip(xr).map(|(a, b)| *a as f64 * *b as f64).sum();
            y[b * m + r] = acc as f32;
        }
    }
    y
}

/// Shape of a conv2d (batch 1, dilation 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// Input channels.
    pub c: usize,
    /// Output channels.
    pub o: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding.
    pub pad: usize,
}

impl ConvShape {
    /// Output height.
    pub fn oh(&self) -> usize {
        (self.h + 2 * self.pad - self.kh) / self.stride + 1
    }
    /// Output width.
    pub fn ow(&self) -> usize {
        (self.w + 2 * self.pad - self.kw) / self.stride + 1
    }
}

/// Conv2d NCHW, batch 1, no bias.
pub fn conv2d(wt: &[f32], x: &[f32], s: &ConvShape) -> Vec<f32> {
    let (oh, ow) = (s.oh(), s.ow());
    let mut y = vec![0f32; s.o * oh * ow];
    let mut acc = vec![0f64; oh * ow];
    for o in 0..s.o {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for c in 0..s.c {
            for ky in 0..s.kh {
                for kx in 0..s.kw {
                    let wv = wt[((o * s.c + c) * s.kh + ky) * s.kw + kx] as f64;
                    if wv == 0.0 {
                        continue;
                    }
                    for yy in 0..oh {
                        let iy = (yy * s.stride + ky) as isize - s.pad as isize;
                        if iy < 0 || iy >= s.h as isize {
                            continue;
                        }
                        for xx in 0..ow {
                            let ix = (xx * s.stride + kx) as isize - s.pad as isize;
                            if ix < 0 || ix >= s.w as isize {
                                continue;
                            }
                            acc[yy * ow + xx] +=
                                wv * x[(c * s.h + iy as usize) * s.w + ix as usize] as f64;
                        }
                    }
                }
            }
        }
        for (i, a) in acc.iter().enumerate() {
            y[o * oh * ow + i] = *a as f32;
        }
    }
    y
}

/// Weights of a GRU step.
pub struct GruWeights<'a> {
    /// `[3H, input]`.
    pub w_ih: &'a [f32],
    /// `[3H, H]`.
    pub w_hh: &'a [f32],
    /// `[3H]`.
    pub b_ih: &'a [f32],
    /// `[3H]`.
    pub b_hh: &'a [f32],
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// One GRU step, batch 1: returns `h' [1, H]`.
pub fn gru(g: &GruWeights<'_>, x: &[f32], h: &[f32], hidden: usize, input: usize) -> Vec<f32> {
    let rows = 3 * hidden;
    let mv = |w: &[f32], v: &[f32], cols: usize, b: &[f32]| -> Vec<f64> {
        (0..rows)
            .map(|r| {
                b[r] as f64
                    + w[r * cols..(r + 1) * cols]
                        .iter()
                        .zip(v)
                        .map(|(a, b)| *a as f64 * *b as f64)
                        .sum::<f64>()
            })
            .collect()
    };
    let gi = mv(g.w_ih, x, input, g.b_ih);
    let gh = mv(g.w_hh, h, hidden, g.b_hh);
    (0..hidden)
        .map(|j| {
            let r = sigmoid(gi[j] + gh[j]);
            let z = sigmoid(gi[hidden + j] + gh[hidden + j]);
            let n = (gi[2 * hidden + j] + r * gh[2 * hidden + j]).tanh();
            ((1.0 - z) * n + z * h[j] as f64) as f32
        })
        .collect()
}

/// The largest absolute difference between two equally long slices (`inf` when the
/// lengths differ or a value is NaN).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let mut m = 0f64;
    for (x, y) in a.iter().zip(b) {
        let d = (*x as f64 - *y as f64).abs();
        if d.is_nan() {
            return f64::INFINITY;
        }
        m = m.max(d);
    }
    m
}
