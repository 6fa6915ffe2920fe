//! Running one layer: the dense plain-Rust reference and the `tir` interpreter.
//! (Compiled kernels live in `compiled`.)
//!
//! Every executor takes and returns the layer workload's `in` and `out` parameters in
//! the `tir` layouts: FC `X [K, N]` -> `Y [M, N]`; conv2d `X [B, C, H, W]` ->
//! `Y [B, O, OH, OW]`; GRU `x [input, B], h_prev [hidden, B]` -> `h_next`; LSTM adds
//! `c_prev` -> `c_next`.

use crate::error::ModelError;
use crate::layer::Layer;
use std::collections::BTreeMap;
use tir::spec::{Activation, RnnCell, WorkloadSpec};
use tir::workload::Workload;
use tir::{Matrix, ParamKind, Tensor};

/// Something that runs a model's layers.
pub trait LayerExec {
    /// Runs `layers[index]` on its inputs (in parameter order), returning its outputs
    /// (in parameter order).
    fn run(
        &mut self,
        layers: &[Layer],
        index: usize,
        inputs: &[&[f32]],
    ) -> Result<Vec<Vec<f32>>, ModelError>;
}

fn layer_at(layers: &[Layer], index: usize) -> Result<&Layer, ModelError> {
    layers
        .get(index)
        .ok_or_else(|| ModelError::exec(&format!("#{index}"), "no such layer"))
}

fn input<'a>(
    layer: &Layer,
    inputs: &[&'a [f32]],
    i: usize,
    len: usize,
) -> Result<&'a [f32], ModelError> {
    match inputs.get(i) {
        Some(x) if x.len() == len => Ok(x),
        Some(x) => Err(ModelError::exec(
            &layer.name,
            format!("input {i} has {} values, expected {len}", x.len()),
        )),
        None => Err(ModelError::exec(
            &layer.name,
            format!("input {i} is missing"),
        )),
    }
}

/// `a · b` with eight partial sums (so that it vectorizes).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut acc = [0.0f32; 8];
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `W · X` for `X [K, N]` into `[M, N]`.
fn matmul(w: &Matrix, x: &[f32], n: usize) -> Vec<f32> {
    let (m, k) = (w.rows(), w.cols());
    if n == 1 && k > 0 {
        return w.data().chunks_exact(k).map(|row| dot(row, x)).collect();
    }
    let mut y = vec![0.0f32; m * n];
    for r in 0..m {
        let row = &w.data()[r * k..(r + 1) * k];
        for (c, &wv) in row.iter().enumerate() {
            if wv == 0.0 {
                continue;
            }
            let xr = &x[c * n..(c + 1) * n];
            for (yv, xv) in y[r * n..(r + 1) * n].iter_mut().zip(xr) {
                *yv += wv * xv;
            }
        }
    }
    y
}

fn sigmoid(x: f32) -> f32 {
    Activation::Sigmoid.apply(x)
}

/// Dense plain-Rust math over each layer's effective dense weights, written
/// independently of `tir` (the ground truth the interpreter and kernels are checked
/// against, and the "dense model" of accuracy tables).
#[derive(Debug, Default)]
pub struct Reference {
    dense: BTreeMap<usize, Vec<Matrix>>,
}

impl Reference {
    fn matrices(&mut self, layer: &Layer, index: usize) -> Result<&[Matrix], ModelError> {
        if let std::collections::btree_map::Entry::Vacant(slot) = self.dense.entry(index) {
            let ms = (0..layer.weights.matrices.len())
                .map(|i| layer.dense(i))
                .collect::<Result<Vec<_>, _>>()?;
            slot.insert(ms);
        }
        Ok(self.dense.get(&index).map(|v| &v[..]).unwrap_or(&[]))
    }
}

impl LayerExec for Reference {
    fn run(
        &mut self,
        layers: &[Layer],
        index: usize,
        inputs: &[&[f32]],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let layer = layer_at(layers, index)?;
        let ms = self.matrices(layer, index)?;
        let w0 = ms
            .first()
            .ok_or_else(|| ModelError::exec(&layer.name, "no weight matrix"))?;
        match &layer.spec {
            WorkloadSpec::Fc(s) => {
                let x = input(layer, inputs, 0, s.k * s.n)?;
                let mut y = matmul(w0, x, s.n);
                let bias = if s.bias { Some(layer.bias(0)?) } else { None };
                for r in 0..s.m {
                    for v in &mut y[r * s.n..(r + 1) * s.n] {
                        *v = s.act.apply(*v + bias.map_or(0.0, |b| b[r]));
                    }
                }
                Ok(vec![y])
            }
            WorkloadSpec::Conv2d(s) => {
                let x = input(layer, inputs, 0, s.batch * s.c * s.h * s.w)?;
                let (oh, ow) = match (s.out_h(), s.out_w()) {
                    (Some(a), Some(b)) => (a, b),
                    _ => return Err(ModelError::exec(&layer.name, "kernel larger than input")),
                };
                let bias = if s.bias { Some(layer.bias(0)?) } else { None };
                let mut y = vec![0.0f32; s.batch * s.o * oh * ow];
                let kk = s.c * s.kh * s.kw;
                // Per image: the input patch of every output pixel as a row
                // (`[oh * ow, kk]`, zeros where the window leaves the image), then one
                // dot product per output channel and pixel.
                let mut patches = vec![0.0f32; oh * ow * kk];
                for b in 0..s.batch {
                    patches.fill(0.0);
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let row = &mut patches[(oy * ow + ox) * kk..(oy * ow + ox + 1) * kk];
                            for c in 0..s.c {
                                for i in 0..s.kh {
                                    let iy =
                                        (oy * s.stride + i * s.dilation) as isize - s.pad as isize;
                                    if iy < 0 || iy >= s.h as isize {
                                        continue;
                                    }
                                    for j in 0..s.kw {
                                        let ix = (ox * s.stride + j * s.dilation) as isize
                                            - s.pad as isize;
                                        if ix < 0 || ix >= s.w as isize {
                                            continue;
                                        }
                                        row[(c * s.kh + i) * s.kw + j] =
                                            x[((b * s.c + c) * s.h + iy as usize) * s.w
                                                + ix as usize];
                                    }
                                }
                            }
                        }
                    }
                    for o in 0..s.o {
                        let wrow = &w0.data()[o * kk..(o + 1) * kk];
                        let bo = bias.map_or(0.0, |bv| bv[o]);
                        let out = &mut y[(b * s.o + o) * oh * ow..(b * s.o + o + 1) * oh * ow];
                        for (v, patch) in out.iter_mut().zip(patches.chunks_exact(kk.max(1))) {
                            *v = s.act.apply(bo + dot(wrow, patch));
                        }
                    }
                }
                Ok(vec![y])
            }
            WorkloadSpec::Rnn(s) => {
                let (hid, n) = (s.hidden, s.batch);
                let x = input(layer, inputs, 0, s.input * n)?;
                let h = input(layer, inputs, 1, hid * n)?;
                let w1 = ms
                    .get(1)
                    .ok_or_else(|| ModelError::exec(&layer.name, "no W_hh"))?;
                let (b_ih, b_hh) = (layer.bias(0)?, layer.bias(1)?);
                let mut gi = matmul(w0, x, n);
                let mut gh = matmul(w1, h, n);
                for r in 0..s.cell.gates() * hid {
                    for c in 0..n {
                        gi[r * n + c] += b_ih[r];
                        gh[r * n + c] += b_hh[r];
                    }
                }
                let at = |g: &[f32], gate: usize, j: usize, c: usize| g[(gate * hid + j) * n + c];
                match s.cell {
                    RnnCell::Gru => {
                        let mut out = vec![0.0f32; hid * n];
                        for j in 0..hid {
                            for c in 0..n {
                                let r = sigmoid(at(&gi, 0, j, c) + at(&gh, 0, j, c));
                                let z = sigmoid(at(&gi, 1, j, c) + at(&gh, 1, j, c));
                                let cand = (at(&gi, 2, j, c) + r * at(&gh, 2, j, c)).tanh();
                                out[j * n + c] = (1.0 - z) * cand + z * h[j * n + c];
                            }
                        }
                        Ok(vec![out])
                    }
                    RnnCell::Lstm => {
                        let cprev = input(layer, inputs, 2, hid * n)?;
                        let mut hn = vec![0.0f32; hid * n];
                        let mut cn = vec![0.0f32; hid * n];
                        for j in 0..hid {
                            for c in 0..n {
                                let ig = sigmoid(at(&gi, 0, j, c) + at(&gh, 0, j, c));
                                let fg = sigmoid(at(&gi, 1, j, c) + at(&gh, 1, j, c));
                                let gg = (at(&gi, 2, j, c) + at(&gh, 2, j, c)).tanh();
                                let og = sigmoid(at(&gi, 3, j, c) + at(&gh, 3, j, c));
                                let cv = fg * cprev[j * n + c] + ig * gg;
                                cn[j * n + c] = cv;
                                hn[j * n + c] = og * cv.tanh();
                            }
                        }
                        Ok(vec![hn, cn])
                    }
                }
            }
            other => Err(ModelError::exec(
                &layer.name,
                format!("`{}` is not a layer kind", other.kind()),
            )),
        }
    }
}

/// Runs layers through the `tir` reference interpreter on their lowered workloads
/// (slow; the semantics every compiled kernel is checked against).
#[derive(Debug, Default)]
pub struct Interpreter {
    workloads: BTreeMap<usize, Workload>,
}

/// Runs `w`'s function `func` on inputs given in parameter order.
pub(crate) fn run_workload_function(
    w: &Workload,
    func: &tir::Function,
    layer: &str,
    inputs: &[&[f32]],
) -> Result<Vec<Vec<f32>>, ModelError> {
    let mut named = BTreeMap::new();
    for (i, p) in w.params_of(ParamKind::Input).enumerate() {
        let data = inputs
            .get(i)
            .ok_or_else(|| ModelError::exec(layer, format!("input `{}` is missing", p.name)))?;
        let t = Tensor::f32(p.shape.clone(), data.to_vec())
            .map_err(|e| ModelError::exec(layer, format!("input `{}`: {e}", p.name)))?;
        named.insert(p.name.clone(), t);
    }
    let outs = w
        .interpret_function(func, &named)
        .map_err(|e| ModelError::exec(layer, e.to_string()))?;
    w.params_of(ParamKind::Output)
        .map(|p| {
            outs.get(&p.name)
                .and_then(|t| t.as_f32())
                .map(|s| s.to_vec())
                .ok_or_else(|| ModelError::exec(layer, format!("no output `{}`", p.name)))
        })
        .collect()
}

impl LayerExec for Interpreter {
    fn run(
        &mut self,
        layers: &[Layer],
        index: usize,
        inputs: &[&[f32]],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let layer = layer_at(layers, index)?;
        if let std::collections::btree_map::Entry::Vacant(slot) = self.workloads.entry(index) {
            slot.insert(layer.workload()?);
        }
        let w = self
            .workloads
            .get(&index)
            .ok_or_else(|| ModelError::exec(&layer.name, "workload cache"))?;
        run_workload_function(w, &w.func, &layer.name, inputs)
    }
}
