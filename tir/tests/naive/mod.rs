//! Direct, naive Rust implementations of every workload kind, written independently
//! of the IR, to check the interpreter on the lowered loop nests.

use std::collections::BTreeMap;
use tir::spec::{RnnCell, WorkloadSpec};
use tir::workload::Workload;
use tir::{Matrix, Tensor};

fn f32s<'a>(m: &'a BTreeMap<String, Tensor>, name: &str) -> &'a [f32] {
    m.get(name)
        .and_then(|t| t.as_f32())
        .unwrap_or_else(|| panic!("missing f32 tensor {name}"))
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `W · X` for a dense `m x k` matrix and a `k x n` row-major input.
fn matmul(w: &Matrix, x: &[f32], n: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; w.rows() * n];
    for r in 0..w.rows() {
        for c in 0..w.cols() {
            let wv = w.get(r, c);
            for j in 0..n {
                y[r * n + j] += wv * x[c * n + j];
            }
        }
    }
    y
}

/// The outputs of `w` on `inputs`, computed directly from the spec and the effective
/// (pruned) dense weights.
pub fn reference(w: &Workload, inputs: &BTreeMap<String, Tensor>) -> BTreeMap<String, Vec<f32>> {
    let mut out = BTreeMap::new();
    match &w.spec {
        WorkloadSpec::Fc(s) => {
            let wm = &w.matrix("W").expect("W").dense;
            let mut y = matmul(wm, f32s(inputs, "X"), s.n);
            for r in 0..s.m {
                for j in 0..s.n {
                    let b = if s.bias {
                        f32s(&w.weights, "B")[r]
                    } else {
                        0.0
                    };
                    y[r * s.n + j] = s.act.apply(y[r * s.n + j] + b);
                }
            }
            out.insert("Y".to_string(), y);
        }
        WorkloadSpec::Conv2d(s) => {
            let wm = &w.matrix("W").expect("W").dense;
            let x = f32s(inputs, "X");
            let (oh, ow) = (s.out_h().unwrap(), s.out_w().unwrap());
            let mut y = vec![0.0f32; s.batch * s.o * oh * ow];
            for b in 0..s.batch {
                for o in 0..s.o {
                    for py in 0..oh {
                        for px in 0..ow {
                            let mut acc = if s.bias {
                                f32s(&w.weights, "B")[o]
                            } else {
                                0.0
                            };
                            for c in 0..s.c {
                                for ky in 0..s.kh {
                                    for kx in 0..s.kw {
                                        let iy =
                                            (py * s.stride + ky * s.dilation) as i64 - s.pad as i64;
                                        let ix =
                                            (px * s.stride + kx * s.dilation) as i64 - s.pad as i64;
                                        if iy < 0 || ix < 0 || iy >= s.h as i64 || ix >= s.w as i64
                                        {
                                            continue;
                                        }
                                        let wv = wm.get(o, (c * s.kh + ky) * s.kw + kx);
                                        let xv = x[((b * s.c + c) * s.h + iy as usize) * s.w
                                            + ix as usize];
                                        acc += wv * xv;
                                    }
                                }
                            }
                            y[((b * s.o + o) * oh + py) * ow + px] = s.act.apply(acc);
                        }
                    }
                }
            }
            out.insert("Y".to_string(), y);
        }
        WorkloadSpec::Rnn(s) => {
            let (hd, bt) = (s.hidden, s.batch);
            let gi = matmul(&w.matrix("W_ih").unwrap().dense, f32s(inputs, "x"), bt);
            let gh = matmul(&w.matrix("W_hh").unwrap().dense, f32s(inputs, "h_prev"), bt);
            let (b_ih, b_hh) = (f32s(&w.weights, "b_ih"), f32s(&w.weights, "b_hh"));
            let g = |v: &[f32], b: &[f32], gate: usize, j: usize, n: usize| {
                v[(gate * hd + j) * bt + n] + b[gate * hd + j]
            };
            let h = f32s(inputs, "h_prev");
            let mut h_next = vec![0.0; hd * bt];
            let mut c_next = vec![0.0; hd * bt];
            for j in 0..hd {
                for n in 0..bt {
                    let at = j * bt + n;
                    match s.cell {
                        RnnCell::Gru => {
                            let r = sigmoid(g(&gi, b_ih, 0, j, n) + g(&gh, b_hh, 0, j, n));
                            let z = sigmoid(g(&gi, b_ih, 1, j, n) + g(&gh, b_hh, 1, j, n));
                            let c = (g(&gi, b_ih, 2, j, n) + r * g(&gh, b_hh, 2, j, n)).tanh();
                            h_next[at] = (1.0 - z) * c + z * h[at];
                        }
                        RnnCell::Lstm => {
                            let c_prev = f32s(inputs, "c_prev");
                            let i = sigmoid(g(&gi, b_ih, 0, j, n) + g(&gh, b_hh, 0, j, n));
                            let f = sigmoid(g(&gi, b_ih, 1, j, n) + g(&gh, b_hh, 1, j, n));
                            let gg = (g(&gi, b_ih, 2, j, n) + g(&gh, b_hh, 2, j, n)).tanh();
                            let o = sigmoid(g(&gi, b_ih, 3, j, n) + g(&gh, b_hh, 3, j, n));
                            c_next[at] = f * c_prev[at] + i * gg;
                            h_next[at] = o * c_next[at].tanh();
                        }
                    }
                }
            }
            out.insert("h_next".to_string(), h_next);
            if s.cell == RnnCell::Lstm {
                out.insert("c_next".to_string(), c_next);
            }
        }
        WorkloadSpec::BiasAdd { m, n, .. } => {
            let (x, b) = (f32s(inputs, "X"), f32s(&w.weights, "B"));
            let y = (0..m * n).map(|i| x[i] + b[i / n]).collect();
            out.insert("Y".to_string(), y);
        }
        WorkloadSpec::Activation { func, .. } => {
            let y = f32s(inputs, "X").iter().map(|v| func.apply(*v)).collect();
            out.insert("Y".to_string(), y);
        }
    }
    out
}

/// Asserts that two float vectors agree to a relative-and-absolute tolerance.
pub fn assert_close(name: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-4 * w.abs().max(1.0);
        assert!(
            (g - w).abs() <= tol,
            "{name}[{i}]: interpreter {g} vs naive {w}"
        );
    }
}
