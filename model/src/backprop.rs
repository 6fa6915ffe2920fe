//! Forward and backward passes of the ops of graph models, on plain slices, for
//! fine-tuning ([`crate::finetune`]).
//!
//! Weight-bearing ops multiply by a [`Pattern`]-masked matrix: only the kept
//! positions of a BCR matrix (every position of a dense one) take part, in the
//! forward pass, in the input gradient and in the weight gradient, so a pruned
//! position never gets a gradient and the work scales with the kept weights.
//!
//! Layouts follow [`crate::exec`]: a matrix product is `Y [M, N] = W [M, K] · X [K, N]`;
//! a convolution runs per image on its im2col matrix `[C·kh·kw, OH·OW]` (row index
//! `(c·kh + i)·kw + j`, the column order of the weight matrix's `O x (C·kh·kw)` view).
//! Glue ops take and return NCHW arrays as [`crate::ops`] does. Every backward
//! function takes the forward pass's input and/or output and the gradient of the loss
//! with respect to the output, and returns (or accumulates) the gradient with respect
//! to the input and the parameters.

use crate::exec::dot;
use crate::kept_blocks::KeptBlocks;
use std::ops::Range;
use tir::bcr::BcrMatrix;
use tir::spec::Activation;

/// Which positions of an `rows x cols` weight matrix are kept: per row, the kept
/// columns as increasing, disjoint, non-adjacent runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    cols: usize,
    runs: Vec<Vec<Range<usize>>>,
}

impl Pattern {
    /// Every position kept.
    pub fn dense(rows: usize, cols: usize) -> Pattern {
        let run: Vec<Range<usize>> = (cols > 0).then_some(0..cols).into_iter().collect();
        Pattern {
            cols,
            runs: vec![run; rows],
        }
    }

    /// No position kept.
    pub fn empty(rows: usize, cols: usize) -> Pattern {
        Pattern {
            cols,
            runs: vec![Vec::new(); rows],
        }
    }

    /// The kept positions of a BCR matrix (its structure, whatever the kept values).
    pub fn of_bcr(b: &BcrMatrix) -> Pattern {
        let mut kept: Vec<Vec<usize>> = vec![Vec::new(); b.rows()];
        let (gr, gc) = b.grid();
        for br in 0..gr {
            for bc in 0..gc {
                let (r0, c0, _, _) = b.block_extent(br, bc);
                let blk = b.block_at(br, bc);
                for &lr in &blk.kept_rows {
                    let row = &mut kept[r0 + lr as usize];
                    row.extend(blk.kept_cols.iter().map(|&lc| c0 + lc as usize));
                }
            }
        }
        let runs = kept
            .into_iter()
            .map(|mut cs| {
                cs.sort_unstable();
                let mut runs: Vec<Range<usize>> = Vec::new();
                for c in cs {
                    match runs.last_mut() {
                        Some(r) if r.end == c => r.end += 1,
                        _ => runs.push(c..c + 1),
                    }
                }
                runs
            })
            .collect();
        Pattern {
            cols: b.cols(),
            runs,
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.runs.len()
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The kept column runs of row `r`.
    pub fn row(&self, r: usize) -> &[Range<usize>] {
        self.runs.get(r).map_or(&[], |v| &v[..])
    }

    /// Whether `(r, c)` is kept.
    pub fn is_kept(&self, r: usize, c: usize) -> bool {
        self.row(r).iter().any(|run| run.contains(&c))
    }

    /// Number of kept positions.
    pub fn kept(&self) -> usize {
        self.runs.iter().flatten().map(|r| r.len()).sum()
    }

    /// The kept positions as ranges of the row-major flat index (row by row).
    pub fn flat_runs(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        self.runs.iter().enumerate().flat_map(move |(r, runs)| {
            runs.iter()
                .map(move |run| r * self.cols + run.start..r * self.cols + run.end)
        })
    }

    /// Sets every position that is not kept to zero in the row-major `w`.
    pub fn apply(&self, w: &mut [f32]) {
        for (r, runs) in self.runs.iter().enumerate() {
            let row = &mut w[r * self.cols..(r + 1) * self.cols];
            let mut at = 0;
            for run in runs {
                row[at..run.start].fill(0.0);
                at = run.end;
            }
            row[at..].fill(0.0);
        }
    }
}

/// `y += a · x`.
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yv, xv) in y.iter_mut().zip(x) {
        *yv += a * xv;
    }
}

/// `Y [M, N] = W [M, K] · X [K, N]` over the kept positions of `p` (`w` row-major
/// `M x K`, `p` of the same shape).
pub fn matmul(w: &[f32], p: &Pattern, x: &[f32], n: usize) -> Vec<f32> {
    let k = p.cols();
    let mut y = vec![0.0f32; p.rows() * n];
    for r in 0..p.rows() {
        let wr = &w[r * k..(r + 1) * k];
        if n == 1 {
            y[r] = p
                .row(r)
                .iter()
                .map(|run| dot(&wr[run.clone()], &x[run.clone()]))
                .sum();
        } else {
            let yr = &mut y[r * n..(r + 1) * n];
            for run in p.row(r) {
                for c in run.clone() {
                    axpy(wr[c], &x[c * n..(c + 1) * n], yr);
                }
            }
        }
    }
    y
}

/// The backward pass of [`matmul`]: adds `dY · Xᵀ` to `dw` at the kept positions
/// only, and, when `dx` is given, adds `Wᵀ · dY` to it.
pub fn matmul_backward(
    w: &[f32],
    p: &Pattern,
    x: &[f32],
    n: usize,
    dy: &[f32],
    dw: &mut [f32],
    mut dx: Option<&mut [f32]>,
) {
    let k = p.cols();
    for r in 0..p.rows() {
        let (wr, dwr) = (&w[r * k..(r + 1) * k], &mut dw[r * k..(r + 1) * k]);
        let dyr = &dy[r * n..(r + 1) * n];
        if n == 1 {
            let g = dyr[0];
            if g == 0.0 {
                continue;
            }
            for run in p.row(r) {
                axpy(g, &x[run.clone()], &mut dwr[run.clone()]);
                if let Some(dx) = dx.as_deref_mut() {
                    axpy(g, &wr[run.clone()], &mut dx[run.clone()]);
                }
            }
        } else {
            for run in p.row(r) {
                for c in run.clone() {
                    let xc = &x[c * n..(c + 1) * n];
                    dwr[c] += dot(dyr, xc);
                    if let Some(dx) = dx.as_deref_mut() {
                        axpy(wr[c], dyr, &mut dx[c * n..(c + 1) * n]);
                    }
                }
            }
        }
    }
}

/// The geometry of one 2-D convolution (one image).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Input channels.
    pub c: usize,
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
    /// Dilation.
    pub dilation: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl ConvGeometry {
    /// For each im2col row `(c, i, j)` and output pixel, the input index it reads, or
    /// `None` in the zero padding; calls `f(row, pixel, input index)`.
    fn each(&self, mut f: impl FnMut(usize, usize, usize)) {
        let g = self;
        for c in 0..g.c {
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let row = (c * g.kh + i) * g.kw + j;
                    for oy in 0..g.oh {
                        let iy = (oy * g.stride + i * g.dilation) as isize - g.pad as isize;
                        if iy < 0 || iy >= g.h as isize {
                            continue;
                        }
                        for ox in 0..g.ow {
                            let ix = (ox * g.stride + j * g.dilation) as isize - g.pad as isize;
                            if ix < 0 || ix >= g.w as isize {
                                continue;
                            }
                            f(
                                row,
                                oy * g.ow + ox,
                                (c * g.h + iy as usize) * g.w + ix as usize,
                            );
                        }
                    }
                }
            }
        }
    }

    /// Rows of the im2col matrix (`C·kh·kw`).
    pub fn patch(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output pixels (`OH·OW`).
    pub fn pixels(&self) -> usize {
        self.oh * self.ow
    }

    /// The im2col matrix `[C·kh·kw, OH·OW]` of one image `x [C, H, W]`.
    pub fn im2col(&self, x: &[f32]) -> Vec<f32> {
        let p = self.pixels();
        let mut cols = vec![0.0f32; self.patch() * p];
        self.each(|row, px, at| cols[row * p + px] = x[at]);
        cols
    }

    /// The backward pass of [`ConvGeometry::im2col`]: adds each im2col gradient to
    /// the input element it was read from.
    pub fn col2im(&self, dcols: &[f32], dx: &mut [f32]) {
        let p = self.pixels();
        self.each(|row, px, at| dx[at] += dcols[row * p + px]);
    }
}

/// The gradient of an activation given its output `y` and the output gradient `dy`,
/// in place in `dy`.
pub fn activation_backward(act: Activation, y: &[f32], dy: &mut [f32]) {
    match act {
        Activation::None => {}
        Activation::Relu => {
            for (g, &v) in dy.iter_mut().zip(y) {
                if v <= 0.0 {
                    *g = 0.0;
                }
            }
        }
        Activation::Sigmoid => {
            for (g, &v) in dy.iter_mut().zip(y) {
                *g *= v * (1.0 - v);
            }
        }
        Activation::Tanh => {
            for (g, &v) in dy.iter_mut().zip(y) {
                *g *= 1.0 - v * v;
            }
        }
    }
}

/// A pooling window, as [`crate::ops::pool`] takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// Window `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Strides `[sh, sw]`.
    pub stride: [usize; 2],
    /// Padding `[top, left, bottom, right]`.
    pub pad: [usize; 4],
    /// Max (else average) pooling.
    pub max: bool,
}

/// The backward pass of max or average pooling over the last two axes of an NCHW `x`
/// of `shape` ([`crate::ops::pool`]) with an output of `out_hw`: the gradient of the
/// input. A max window's gradient goes to its first largest element, as the forward
/// pass picks it.
pub fn pool_backward(
    x: &[f32],
    shape: [usize; 4],
    out_hw: [usize; 2],
    dy: &[f32],
    pool: Pool,
) -> Vec<f32> {
    let Pool {
        kernel,
        stride,
        pad,
        max,
    } = pool;
    let [n, c, h, w] = shape;
    let [oh, ow] = out_hw;
    let mut dx = vec![0.0f32; x.len()];
    let mut window = Vec::with_capacity(kernel[0] * kernel[1]);
    for plane in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                window.clear();
                for i in 0..kernel[0] {
                    let iy = (oy * stride[0] + i) as isize - pad[0] as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for j in 0..kernel[1] {
                        let ix = (ox * stride[1] + j) as isize - pad[1] as isize;
                        if ix < 0 || ix >= w as isize {
                            continue;
                        }
                        window.push((plane * h + iy as usize) * w + ix as usize);
                    }
                }
                let g = dy[(plane * oh + oy) * ow + ox];
                if max {
                    let mut best: Option<usize> = None;
                    for &at in &window {
                        if best.is_none_or(|b| x[at] > x[b]) {
                            best = Some(at);
                        }
                    }
                    if let Some(b) = best {
                        dx[b] += g;
                    }
                } else {
                    let share = g / window.len().max(1) as f32;
                    for &at in &window {
                        dx[at] += share;
                    }
                }
            }
        }
    }
    dx
}

/// The backward pass of the mean over the last two axes of `[n, c, h, w]`.
pub fn global_avg_pool_backward(shape: [usize; 4], dy: &[f32]) -> Vec<f32> {
    let plane = shape[2] * shape[3];
    let mut dx = Vec::with_capacity(dy.len() * plane);
    for &g in dy {
        dx.extend(std::iter::repeat_n(g / plane.max(1) as f32, plane));
    }
    dx
}

/// The backward pass of a softmax along `axis` of `shape`, from its output `y`:
/// `dx = y ⊙ (dy − Σ_axis y ⊙ dy)`.
pub fn softmax_backward(y: &[f32], shape: &[usize], axis: usize, dy: &[f32]) -> Vec<f32> {
    let len = shape.get(axis).copied().unwrap_or(1);
    let inner: usize = shape.get(axis + 1..).map_or(1, |s| s.iter().product());
    let outer: usize = shape[..axis.min(shape.len())].iter().product();
    let mut dx = vec![0.0f32; y.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * len + k) * inner + i;
            let s: f32 = (0..len).map(|k| y[at(k)] * dy[at(k)]).sum();
            for k in 0..len {
                dx[at(k)] = y[at(k)] * (dy[at(k)] - s);
            }
        }
    }
    dx
}

/// The gradient of the second operand of [`crate::ops::add`] (`b` of `b_len`
/// elements broadcast onto an `a` of `a_shape`), from the output gradient.
pub fn add_backward_b(a_shape: &[usize], b_len: usize, dy: &[f32]) -> Vec<f32> {
    if b_len == dy.len() {
        dy.to_vec()
    } else if b_len == 1 {
        vec![dy.iter().sum()]
    } else {
        // One value per channel of NCHW.
        let (c, hw) = (a_shape[1], a_shape[2] * a_shape[3]);
        let mut db = vec![0.0f32; b_len];
        for (i, g) in dy.iter().enumerate() {
            db[(i / hw) % c] += g;
        }
        db
    }
}

/// The backward pass of [`crate::ops::concat`]: the output gradient cut into one
/// gradient per input (`shapes`).
pub fn concat_backward(shapes: &[&[usize]], axis: usize, dy: &[f32]) -> Vec<Vec<f32>> {
    let Some(first) = shapes.first() else {
        return Vec::new();
    };
    let outer: usize = first[..axis].iter().product();
    let inner: usize = first[axis + 1..].iter().product();
    let mut out: Vec<Vec<f32>> = shapes
        .iter()
        .map(|s| Vec::with_capacity(s.iter().product()))
        .collect();
    let mut at = 0;
    for _ in 0..outer {
        for (s, o) in shapes.iter().zip(&mut out) {
            let chunk = s[axis] * inner;
            o.extend_from_slice(&dy[at..at + chunk]);
            at += chunk;
        }
    }
    out
}

/// The kept structure of a weight matrix, which multiplies a vector with the matrix's
/// values: the masked dense form ([`Pattern`], values row-major) or the packed kept
/// blocks ([`KeptBlocks`], values packed).
pub trait MatVec: std::fmt::Debug + Sync {
    /// `y = W x`.
    fn matvec(&self, w: &[f32], x: &[f32]) -> Vec<f32>;
    /// Adds `dy xᵀ` to `dw` at the kept positions, and `Wᵀ dy` to `dx` when given.
    fn matvec_backward(
        &self,
        w: &[f32],
        x: &[f32],
        dy: &[f32],
        dw: &mut [f32],
        dx: Option<&mut [f32]>,
    );
}

impl MatVec for Pattern {
    fn matvec(&self, w: &[f32], x: &[f32]) -> Vec<f32> {
        matmul(w, self, x, 1)
    }
    fn matvec_backward(
        &self,
        w: &[f32],
        x: &[f32],
        dy: &[f32],
        dw: &mut [f32],
        dx: Option<&mut [f32]>,
    ) {
        matmul_backward(w, self, x, 1, dy, dw, dx);
    }
}

impl MatVec for KeptBlocks {
    fn matvec(&self, w: &[f32], x: &[f32]) -> Vec<f32> {
        KeptBlocks::matvec(self, w, x)
    }
    fn matvec_backward(
        &self,
        w: &[f32],
        x: &[f32],
        dy: &[f32],
        dw: &mut [f32],
        dx: Option<&mut [f32]>,
    ) {
        KeptBlocks::matvec_backward(self, w, x, dy, dw, dx);
    }
}

/// A GRU cell's weights (PyTorch/ONNX gate order r, z, n; `linear_before_reset`):
/// `W_ih [3H, I]`, `W_hh [3H, H]` (with their kept structure, which says how the
/// values are laid out) and `b_ih`, `b_hh [3H]`.
#[derive(Debug, Clone, Copy)]
pub struct GruWeights<'a> {
    /// `W_ih`.
    pub w_ih: &'a [f32],
    /// Its kept structure.
    pub p_ih: &'a dyn MatVec,
    /// `W_hh`.
    pub w_hh: &'a [f32],
    /// Its kept structure.
    pub p_hh: &'a dyn MatVec,
    /// `b_ih`.
    pub b_ih: &'a [f32],
    /// `b_hh`.
    pub b_hh: &'a [f32],
}

/// What one GRU step keeps for its backward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct GruStep {
    /// The input `x`.
    pub x: Vec<f32>,
    /// The previous state `h`.
    pub h: Vec<f32>,
    /// Reset gate.
    pub r: Vec<f32>,
    /// Update gate.
    pub z: Vec<f32>,
    /// Candidate state.
    pub n: Vec<f32>,
    /// `W_hn h + b_hn`.
    pub ghn: Vec<f32>,
    /// The new state `h' = (1 − z) ⊙ n + z ⊙ h`.
    pub out: Vec<f32>,
}

fn sigmoid(v: f32) -> f32 {
    Activation::Sigmoid.apply(v)
}

/// One GRU step as [`crate::exec::Reference`] computes it:
/// `r = σ(W_ir x + b_ir + W_hr h + b_hr)`, `z = σ(W_iz x + b_iz + W_hz h + b_hz)`,
/// `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`, `h' = (1 − z) ⊙ n + z ⊙ h`.
pub fn gru_forward(w: &GruWeights<'_>, x: &[f32], h: &[f32]) -> GruStep {
    let hid = h.len();
    let mut gi = w.p_ih.matvec(w.w_ih, x);
    let mut gh = w.p_hh.matvec(w.w_hh, h);
    gi.iter_mut().zip(w.b_ih).for_each(|(v, b)| *v += b);
    gh.iter_mut().zip(w.b_hh).for_each(|(v, b)| *v += b);
    let r: Vec<f32> = (0..hid).map(|j| sigmoid(gi[j] + gh[j])).collect();
    let z: Vec<f32> = (0..hid)
        .map(|j| sigmoid(gi[hid + j] + gh[hid + j]))
        .collect();
    let ghn = gh[2 * hid..3 * hid].to_vec();
    let n: Vec<f32> = (0..hid)
        .map(|j| (gi[2 * hid + j] + r[j] * ghn[j]).tanh())
        .collect();
    let out = (0..hid)
        .map(|j| (1.0 - z[j]) * n[j] + z[j] * h[j])
        .collect();
    GruStep {
        x: x.to_vec(),
        h: h.to_vec(),
        r,
        z,
        n,
        ghn,
        out,
    }
}

/// Gradients of a GRU cell's four tensors (`W_ih`, `W_hh`, `b_ih`, `b_hh`), added to.
#[derive(Debug)]
pub struct GruGrads<'a> {
    /// `∂L/∂W_ih` (kept positions only).
    pub w_ih: &'a mut [f32],
    /// `∂L/∂W_hh` (kept positions only).
    pub w_hh: &'a mut [f32],
    /// `∂L/∂b_ih`.
    pub b_ih: &'a mut [f32],
    /// `∂L/∂b_hh`.
    pub b_hh: &'a mut [f32],
}

impl<'a> GruGrads<'a> {
    /// The gradient buffers of one GRU cell (`W_ih`, `W_hh`, `b_ih`, `b_hh`, in that
    /// order); an error unless there are exactly four.
    pub fn of(g: &'a mut [Vec<f32>]) -> Result<GruGrads<'a>, crate::error::ModelError> {
        let [w_ih, w_hh, b_ih, b_hh] = g else {
            return Err(crate::error::ModelError::exec(
                "seq2seq",
                "four GRU tensors",
            ));
        };
        Ok(GruGrads {
            w_ih,
            w_hh,
            b_ih,
            b_hh,
        })
    }
}

/// The gate gradients `(dr, dz, dn)` of one GRU unit (PyTorch gates: `n = tanh(gi_n +
/// r * ghn)`, `h' = (1 - z) n + z h`) from the gradient `dout` of its new state; the
/// pre-activation gradients, shared by the one-word and batched backward passes.
pub(crate) fn gru_gate_grads(
    dout: f32,
    r: f32,
    z: f32,
    n: f32,
    h: f32,
    ghn: f32,
) -> (f32, f32, f32) {
    let dn = dout * (1.0 - z) * (1.0 - n * n);
    let dz = dout * (h - n) * z * (1.0 - z);
    let dr = dn * ghn * r * (1.0 - r);
    (dr, dz, dn)
}

/// Stores unit `j`'s gate gradients `(dr, dz, dn)` (from [`gru_gate_grads`]) into the
/// pre-activation gradients of the input and hidden products, gates `[r, z, n]` of
/// `dgi.len() / 3` units each; the hidden product's `n` gate is scaled by `r`.
pub(crate) fn store_gate_grads(
    dgi: &mut [f32],
    dgh: &mut [f32],
    j: usize,
    r: f32,
    (dr, dz, dn): (f32, f32, f32),
) {
    let len = dgi.len() / 3;
    dgi[j] = dr;
    dgh[j] = dr;
    dgi[len + j] = dz;
    dgh[len + j] = dz;
    dgi[2 * len + j] = dn;
    dgh[2 * len + j] = dn * r;
}

/// The backward pass of [`gru_forward`]: adds the weight and bias gradients to `g`
/// and returns the gradient of the previous state (and of the input when `want_dx`).
pub fn gru_backward(
    w: &GruWeights<'_>,
    step: &GruStep,
    dout: &[f32],
    g: &mut GruGrads<'_>,
    want_dx: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let hid = step.h.len();
    let mut dgi = vec![0.0f32; 3 * hid];
    let mut dgh = vec![0.0f32; 3 * hid];
    let mut dh: Vec<f32> = (0..hid).map(|j| dout[j] * step.z[j]).collect();
    for (j, &d) in dout.iter().enumerate().take(hid) {
        let r = step.r[j];
        let grads = gru_gate_grads(d, r, step.z[j], step.n[j], step.h[j], step.ghn[j]);
        store_gate_grads(&mut dgi, &mut dgh, j, r, grads);
    }
    g.b_ih.iter_mut().zip(&dgi).for_each(|(b, d)| *b += d);
    g.b_hh.iter_mut().zip(&dgh).for_each(|(b, d)| *b += d);
    let mut dx = want_dx.then(|| vec![0.0f32; step.x.len()]);
    w.p_ih
        .matvec_backward(w.w_ih, &step.x, &dgi, g.w_ih, dx.as_deref_mut());
    w.p_hh
        .matvec_backward(w.w_hh, &step.h, &dgh, g.w_hh, Some(&mut dh));
    (dh, dx)
}

#[cfg(test)]
mod tests {
    //! Finite-difference checks of every backward pass: the loss is a fixed random
    //! projection `L = Σ r ⊙ f(x)`, so `dL/dy = r`, and each analytic gradient is
    //! compared with central differences.

    use super::*;
    use crate::array::Array;
    use crate::ops;
    use proptest::prelude::*;
    use tir::rng::SplitMix64;

    /// `L(x) = Σ r ⊙ f(x)` in f64.
    fn proj(r: &[f32], y: &[f32]) -> f64 {
        r.iter().zip(y).map(|(a, b)| *a as f64 * *b as f64).sum()
    }

    /// Checks `analytic` against central differences of `f` at `x` (every element).
    fn check(name: &str, x: &[f32], eps: f32, f: &dyn Fn(&[f32]) -> f64, analytic: &[f32]) {
        assert_eq!(x.len(), analytic.len(), "{name}");
        for i in 0..x.len() {
            let mut xp = x.to_vec();
            xp[i] += eps;
            let mut xm = x.to_vec();
            xm[i] -= eps;
            let num = (f(&xp) - f(&xm)) / (2.0 * eps as f64);
            let a = analytic[i] as f64;
            let tol = 5e-4 + 3e-3 * num.abs().max(a.abs());
            assert!(
                (num - a).abs() <= tol,
                "{name}: element {i}: numeric {num}, analytic {a}"
            );
        }
    }

    /// Values with every pair at least `gap` apart (no ties, no kinks within `gap`).
    fn spread(rng: &mut SplitMix64, n: usize, gap: f32) -> Vec<f32> {
        let mut v: Vec<f32> = (0..n)
            .map(|i| (i as f32 - n as f32 / 2.0 + 0.5) * gap)
            .collect();
        for i in (1..n).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
        v
    }

    fn bcr_pattern(rng: &mut SplitMix64, m: usize, k: usize) -> (Vec<f32>, Pattern) {
        let dense = tir::Matrix::new(m, k, rng.symmetric_vec(m * k, 1.0)).unwrap();
        let cfg = tir::PruneConfig {
            block: tir::BlockShape { rows: 4, cols: 4 },
            rate: tir::PruneRate::Sparsity(0.6),
        };
        let b = tir::prune(&dense, &cfg).unwrap();
        (b.to_dense().data().to_vec(), Pattern::of_bcr(&b))
    }

    #[test]
    fn matmul_gradients_match_finite_differences() {
        let mut rng = SplitMix64::new(1);
        for n in [1, 3] {
            let (m, k) = (8, 12);
            let (w, p) = bcr_pattern(&mut rng, m, k);
            assert!(p.kept() > 0 && p.kept() < m * k);
            let x = rng.symmetric_vec(k * n, 1.0);
            let r = rng.symmetric_vec(m * n, 1.0);
            let mut dw = vec![0.0; m * k];
            let mut dx = vec![0.0; k * n];
            matmul_backward(&w, &p, &x, n, &r, &mut dw, Some(&mut dx));
            check(
                "matmul dx",
                &x,
                1e-2,
                &|x| proj(&r, &matmul(&w, &p, x, n)),
                &dx,
            );
            // The weight gradient: finite differences over every position; pruned
            // positions do not take part, so their gradient is zero.
            let f = |wv: &[f32]| {
                let mut wm = wv.to_vec();
                p.apply(&mut wm);
                proj(&r, &matmul(&wm, &p, &x, n))
            };
            check("matmul dw", &w, 1e-2, &f, &dw);
            for r in 0..m {
                for c in 0..k {
                    if !p.is_kept(r, c) {
                        assert_eq!(dw[r * k + c], 0.0);
                        assert_eq!(w[r * k + c], 0.0);
                    }
                }
            }
        }
    }

    #[test]
    fn im2col_backward_matches_finite_differences() {
        let mut rng = SplitMix64::new(2);
        for (stride, pad, dilation) in [(1, 1, 1), (2, 0, 1), (1, 2, 2)] {
            let (c, h, w, kh, kw) = (2, 6, 5, 3, 2);
            let out = |s: usize, k: usize| (s + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
            let g = ConvGeometry {
                c,
                h,
                w,
                kh,
                kw,
                stride,
                pad,
                dilation,
                oh: out(h, kh),
                ow: out(w, kw),
            };
            let x = rng.symmetric_vec(c * h * w, 1.0);
            let r = rng.symmetric_vec(g.patch() * g.pixels(), 1.0);
            let mut dx = vec![0.0; x.len()];
            g.col2im(&r, &mut dx);
            check("im2col", &x, 1e-2, &|x| proj(&r, &g.im2col(x)), &dx);
        }
    }

    #[test]
    fn conv_as_im2col_matmul_equals_the_reference_and_its_gradients_check() {
        // conv2d = bias + W · im2col(x): compared with the reference executor, then
        // the whole chain (im2col, masked product, activation) checked numerically.
        let mut rng = SplitMix64::new(3);
        let layer = crate::Layer::from_spec(
            "c",
            "conv2d:C=3,O=4,H=6,W=6,k=3,pad=1,bias=true,act=tanh,seed=5",
        )
        .unwrap();
        let tir::spec::WorkloadSpec::Conv2d(s) = &layer.spec else {
            unreachable!()
        };
        let g = ConvGeometry {
            c: s.c,
            h: s.h,
            w: s.w,
            kh: s.kh,
            kw: s.kw,
            stride: s.stride,
            pad: s.pad,
            dilation: s.dilation,
            oh: s.out_h().unwrap(),
            ow: s.out_w().unwrap(),
        };
        let w = layer.dense(0).unwrap().data().to_vec();
        let b = layer.bias(0).unwrap().to_vec();
        let p = Pattern::dense(s.o, g.patch());
        let fwd = |x: &[f32], w: &[f32]| {
            let mut y = matmul(w, &p, &g.im2col(x), g.pixels());
            for (i, v) in y.iter_mut().enumerate() {
                *v = s.act.apply(*v + b[i / g.pixels()]);
            }
            y
        };
        let x = rng.symmetric_vec(s.c * s.h * s.w, 1.0);
        let want = crate::Reference::default();
        let want = {
            let mut e = want;
            crate::LayerExec::run(&mut e, std::slice::from_ref(&layer), 0, &[&x]).unwrap()
        };
        let got = fwd(&x, &w);
        for (a, b) in got.iter().zip(&want[0]) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let r = rng.symmetric_vec(got.len(), 1.0);
        let mut dy = r.clone();
        activation_backward(s.act, &got, &mut dy);
        let cols = g.im2col(&x);
        let mut dw = vec![0.0; w.len()];
        let mut dcols = vec![0.0; cols.len()];
        matmul_backward(&w, &p, &cols, g.pixels(), &dy, &mut dw, Some(&mut dcols));
        let mut dx = vec![0.0; x.len()];
        g.col2im(&dcols, &mut dx);
        check("conv dx", &x, 1e-2, &|x| proj(&r, &fwd(x, &w)), &dx);
        check("conv dw", &w, 1e-2, &|w| proj(&r, &fwd(&x, w)), &dw);
    }

    #[test]
    fn activation_gradients_match_finite_differences() {
        let mut rng = SplitMix64::new(4);
        for act in [
            Activation::None,
            Activation::Relu,
            Activation::Sigmoid,
            Activation::Tanh,
        ] {
            let x = spread(&mut rng, 20, 0.15);
            let r = rng.symmetric_vec(20, 1.0);
            let f = |x: &[f32]| x.iter().map(|&v| act.apply(v)).collect::<Vec<_>>();
            let mut dy = r.clone();
            activation_backward(act, &f(&x), &mut dy);
            check(act.name(), &x, 1e-3, &|x| proj(&r, &f(x)), &dy);
        }
    }

    #[test]
    fn pool_gradients_match_finite_differences() {
        let mut rng = SplitMix64::new(5);
        let shape = [1, 2, 5, 6];
        for max in [true, false] {
            for (kernel, stride, pad) in [([2, 2], [2, 2], [0; 4]), ([3, 2], [1, 2], [1, 0, 1, 1])]
            {
                let x = spread(&mut rng, 60, 0.1);
                let fwd = |x: &[f32]| {
                    ops::pool(
                        &Array::new(shape.to_vec(), x.to_vec()).unwrap(),
                        kernel,
                        stride,
                        pad,
                        max,
                    )
                    .unwrap()
                };
                let y = fwd(&x);
                let r = rng.symmetric_vec(y.len(), 1.0);
                let dx = pool_backward(
                    &x,
                    shape,
                    [y.shape()[2], y.shape()[3]],
                    &r,
                    Pool {
                        kernel,
                        stride,
                        pad,
                        max,
                    },
                );
                check("pool", &x, 1e-3, &|x| proj(&r, fwd(x).data()), &dx);
            }
        }
        let x = rng.symmetric_vec(60, 1.0);
        let fwd = |x: &[f32]| {
            ops::global_avg_pool(&Array::new(shape.to_vec(), x.to_vec()).unwrap()).unwrap()
        };
        let r = rng.symmetric_vec(2, 1.0);
        let dx = global_avg_pool_backward(shape, &r);
        check("global pool", &x, 1e-2, &|x| proj(&r, fwd(x).data()), &dx);
    }

    #[test]
    fn softmax_add_and_concat_gradients_match_finite_differences() {
        let mut rng = SplitMix64::new(6);
        let shape = [2, 5, 3];
        for axis in 0..3 {
            let x = rng.symmetric_vec(30, 2.0);
            let fwd = |x: &[f32]| {
                ops::softmax(&Array::new(shape.to_vec(), x.to_vec()).unwrap(), axis).unwrap()
            };
            let r = rng.symmetric_vec(30, 1.0);
            let dx = softmax_backward(fwd(&x).data(), &shape, axis, &r);
            check("softmax", &x, 1e-2, &|x| proj(&r, fwd(x).data()), &dx);
        }
        let a_shape = [1, 3, 2, 2];
        let a = Array::new(a_shape.to_vec(), rng.symmetric_vec(12, 1.0)).unwrap();
        for b_len in [12, 1, 3] {
            let b = rng.symmetric_vec(b_len, 1.0);
            let r = rng.symmetric_vec(12, 1.0);
            let b_shape = if b_len == 12 {
                a_shape.to_vec()
            } else {
                vec![b_len]
            };
            let fwd = |b: &[f32]| ops::add(&a, &Array::new(b_shape.clone(), b.to_vec()).unwrap());
            let db = add_backward_b(&a_shape, b_len, &r);
            check(
                "add b",
                &b,
                1e-2,
                &|b| proj(&r, fwd(b).unwrap().data()),
                &db,
            );
        }
        let (s1, s2) = ([2usize, 3, 2], [2usize, 1, 2]);
        let x1 = rng.symmetric_vec(12, 1.0);
        let x2 = rng.symmetric_vec(4, 1.0);
        let r = rng.symmetric_vec(16, 1.0);
        let cat = |x1: &[f32], x2: &[f32]| {
            let a = Array::new(s1.to_vec(), x1.to_vec()).unwrap();
            let b = Array::new(s2.to_vec(), x2.to_vec()).unwrap();
            ops::concat(&[&a, &b], 1).unwrap()
        };
        let d = concat_backward(&[&s1, &s2], 1, &r);
        check(
            "concat 0",
            &x1,
            1e-2,
            &|x| proj(&r, cat(x, &x2).data()),
            &d[0],
        );
        check(
            "concat 1",
            &x2,
            1e-2,
            &|x| proj(&r, cat(&x1, x).data()),
            &d[1],
        );
    }

    #[test]
    fn gru_step_equals_the_reference_and_its_gradients_check() {
        let mut rng = SplitMix64::new(8);
        let layer = crate::Layer::from_spec("g", "gru:hidden=5,input=4,batch=1,seed=7").unwrap();
        let (hid, inp) = (5, 4);
        let w_ih = layer.dense(0).unwrap().data().to_vec();
        let w_hh = layer.dense(1).unwrap().data().to_vec();
        let (b_ih, b_hh) = (
            layer.bias(0).unwrap().to_vec(),
            layer.bias(1).unwrap().to_vec(),
        );
        let (p_ih, p_hh) = (Pattern::dense(3 * hid, inp), Pattern::dense(3 * hid, hid));
        let x = rng.symmetric_vec(inp, 1.0);
        let h = rng.symmetric_vec(hid, 1.0);
        let fwd = |x: &[f32], h: &[f32], w_ih: &[f32], w_hh: &[f32], b_ih: &[f32], b_hh: &[f32]| {
            let w = GruWeights {
                w_ih,
                p_ih: &p_ih,
                w_hh,
                p_hh: &p_hh,
                b_ih,
                b_hh,
            };
            gru_forward(&w, x, h)
        };
        let step = fwd(&x, &h, &w_ih, &w_hh, &b_ih, &b_hh);
        let want = crate::LayerExec::run(
            &mut crate::Reference::default(),
            std::slice::from_ref(&layer),
            0,
            &[&x, &h],
        )
        .unwrap();
        for (a, b) in step.out.iter().zip(&want[0]) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        let r = rng.symmetric_vec(hid, 1.0);
        let (mut gwi, mut gwh) = (vec![0.0; w_ih.len()], vec![0.0; w_hh.len()]);
        let (mut gbi, mut gbh) = (vec![0.0; b_ih.len()], vec![0.0; b_hh.len()]);
        let w = GruWeights {
            w_ih: &w_ih,
            p_ih: &p_ih,
            w_hh: &w_hh,
            p_hh: &p_hh,
            b_ih: &b_ih,
            b_hh: &b_hh,
        };
        let mut g = GruGrads {
            w_ih: &mut gwi,
            w_hh: &mut gwh,
            b_ih: &mut gbi,
            b_hh: &mut gbh,
        };
        let (dh, dx) = gru_backward(&w, &step, &r, &mut g, true);
        let dx = dx.unwrap();
        let e = 1e-2;
        check(
            "gru dx",
            &x,
            e,
            &|v| proj(&r, &fwd(v, &h, &w_ih, &w_hh, &b_ih, &b_hh).out),
            &dx,
        );
        check(
            "gru dh",
            &h,
            e,
            &|v| proj(&r, &fwd(&x, v, &w_ih, &w_hh, &b_ih, &b_hh).out),
            &dh,
        );
        check(
            "gru dW_ih",
            &w_ih,
            e,
            &|v| proj(&r, &fwd(&x, &h, v, &w_hh, &b_ih, &b_hh).out),
            &gwi,
        );
        check(
            "gru dW_hh",
            &w_hh,
            e,
            &|v| proj(&r, &fwd(&x, &h, &w_ih, v, &b_ih, &b_hh).out),
            &gwh,
        );
        check(
            "gru db_ih",
            &b_ih,
            e,
            &|v| proj(&r, &fwd(&x, &h, &w_ih, &w_hh, v, &b_hh).out),
            &gbi,
        );
        check(
            "gru db_hh",
            &b_hh,
            e,
            &|v| proj(&r, &fwd(&x, &h, &w_ih, &w_hh, &b_ih, v).out),
            &gbh,
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// The masked product equals the dense product of the masked matrix, and its
        /// backward pass never puts a gradient on a pruned position.
        #[test]
        fn masked_product_is_the_product_of_the_masked_matrix(
            seed in any::<u64>(), m in 1usize..12, k in 1usize..12, n in 1usize..4,
        ) {
            let mut rng = SplitMix64::new(seed);
            let dense = tir::Matrix::new(m, k, rng.symmetric_vec(m * k, 1.0)).unwrap();
            let block = tir::BlockShape { rows: m.min(3), cols: k.min(4) };
            let cfg = tir::PruneConfig { block, rate: tir::PruneRate::Sparsity(0.5) };
            let b = tir::prune(&dense, &cfg).unwrap();
            let p = Pattern::of_bcr(&b);
            let w = b.to_dense().data().to_vec();
            prop_assert_eq!(p.kept(), b.nnz());
            let x = rng.symmetric_vec(k * n, 1.0);
            let y = matmul(&w, &p, &x, n);
            for r in 0..m {
                for j in 0..n {
                    let want: f32 = (0..k).map(|c| w[r * k + c] * x[c * n + j]).sum();
                    prop_assert!((y[r * n + j] - want).abs() < 1e-4);
                }
            }
            let dy = rng.symmetric_vec(m * n, 1.0);
            let mut dw = vec![0.0; m * k];
            matmul_backward(&w, &p, &x, n, &dy, &mut dw, None);
            for r in 0..m {
                for c in 0..k {
                    if b.to_dense().get(r, c) != 0.0 {
                        prop_assert!(p.is_kept(r, c));
                    }
                    if !p.is_kept(r, c) {
                        prop_assert_eq!(dw[r * k + c], 0.0);
                    }
                }
            }
        }
    }
}
