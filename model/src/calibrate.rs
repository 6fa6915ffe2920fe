//! Calibration statistics for refitting: the Gram matrix `Σ x xᵀ` of the inputs each
//! weight matrix sees while the dense model runs on calibration data.
//!
//! A [`Recorder`] is a [`LayerExec`] that computes like [`Reference`] and accumulates,
//! for every layer and weight matrix, the Gram matrix of the vectors that matrix
//! multiplies: FC columns of `X`, conv2d im2col patches (one per output pixel, zero
//! padding included), GRU/LSTM `x` for `W_ih` and `h_prev` for `W_hh`.

use crate::error::ModelError;
use crate::exec::{LayerExec, Reference};
use crate::layer::Layer;
use std::collections::BTreeMap;
use tir::spec::WorkloadSpec;

/// Gram matrices of every `(layer, matrix)` from two disjoint halves of the
/// calibration data: `fit` to refit on, `valid` to choose the ridge strength and to
/// score on (so the refit is judged on data it was not fit to).
#[derive(Debug, Clone, Default)]
pub struct Calibration {
    /// From the first half.
    pub fit: BTreeMap<(usize, usize), Gram>,
    /// From the second half.
    pub valid: BTreeMap<(usize, usize), Gram>,
}

/// A running Gram matrix `Σ x xᵀ` of `k`-vectors, in `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gram {
    k: usize,
    g: Vec<f64>,
    sum: Vec<f64>,
    samples: u64,
}

impl Gram {
    /// An empty accumulator for vectors of length `k`.
    pub fn new(k: usize) -> Gram {
        Gram {
            k,
            g: vec![0.0; k * k],
            sum: vec![0.0; k],
            samples: 0,
        }
    }

    /// Vector length.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Vectors added so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Element `(i, j)`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.g[i * self.k + j]
    }

    /// The mean of the vectors added (zeros before any).
    pub fn mean(&self) -> Vec<f64> {
        let n = self.samples.max(1) as f64;
        self.sum.iter().map(|s| s / n).collect()
    }

    /// Adds `x xᵀ` (ignores vectors of the wrong length).
    pub fn add(&mut self, x: &[f32]) {
        if x.len() != self.k {
            return;
        }
        for (s, &v) in self.sum.iter_mut().zip(x) {
            *s += v as f64;
        }
        for (i, &xi) in x.iter().enumerate() {
            if xi == 0.0 {
                continue;
            }
            let xi = xi as f64;
            let row = &mut self.g[i * self.k..(i + 1) * self.k];
            for (gij, &xj) in row.iter_mut().zip(x) {
                *gij += xi * xj as f64;
            }
        }
        self.samples += 1;
    }
}

/// The vectors weight matrix `matrix` of `layer` multiplies for one call with
/// `inputs` (parameter order), passed one by one to `sink`.
pub fn layer_input_vectors(
    layer: &Layer,
    matrix: usize,
    inputs: &[&[f32]],
    sink: &mut dyn FnMut(&[f32]),
) {
    match (&layer.spec, matrix) {
        (WorkloadSpec::Fc(s), 0) => {
            if let Some(x) = inputs.first().filter(|x| x.len() == s.k * s.n) {
                let mut col = vec![0.0f32; s.k];
                for n in 0..s.n {
                    for (k, v) in col.iter_mut().enumerate() {
                        *v = x[k * s.n + n];
                    }
                    sink(&col);
                }
            }
        }
        (WorkloadSpec::Conv2d(s), 0) => {
            let Some(x) = inputs
                .first()
                .filter(|x| x.len() == s.batch * s.c * s.h * s.w)
            else {
                return;
            };
            let (Some(oh), Some(ow)) = (s.out_h(), s.out_w()) else {
                return;
            };
            let mut patch = vec![0.0f32; s.c * s.kh * s.kw];
            for b in 0..s.batch {
                for oy in 0..oh {
                    for ox in 0..ow {
                        for c in 0..s.c {
                            for i in 0..s.kh {
                                for j in 0..s.kw {
                                    let iy =
                                        (oy * s.stride + i * s.dilation) as isize - s.pad as isize;
                                    let ix =
                                        (ox * s.stride + j * s.dilation) as isize - s.pad as isize;
                                    let inside = iy >= 0
                                        && ix >= 0
                                        && (iy as usize) < s.h
                                        && (ix as usize) < s.w;
                                    patch[(c * s.kh + i) * s.kw + j] = if inside {
                                        x[((b * s.c + c) * s.h + iy as usize) * s.w + ix as usize]
                                    } else {
                                        0.0
                                    };
                                }
                            }
                        }
                        sink(&patch);
                    }
                }
            }
        }
        (WorkloadSpec::Rnn(s), m @ (0 | 1)) => {
            let (len, data) = if m == 0 {
                (s.input, inputs.first())
            } else {
                (s.hidden, inputs.get(1))
            };
            if let Some(x) = data.filter(|x| x.len() == len * s.batch) {
                let mut col = vec![0.0f32; len];
                for n in 0..s.batch {
                    for (k, v) in col.iter_mut().enumerate() {
                        *v = x[k * s.batch + n];
                    }
                    sink(&col);
                }
            }
        }
        _ => {}
    }
}

/// Runs layers like [`Reference`] and records the Gram matrix of every weight
/// matrix's inputs.
#[derive(Debug, Default)]
pub struct Recorder {
    reference: Reference,
    grams: BTreeMap<(usize, usize), Gram>,
}

impl Recorder {
    /// The Gram matrix of layer `layer`'s weight matrix `matrix`, if it ran.
    pub fn gram(&self, layer: usize, matrix: usize) -> Option<&Gram> {
        self.grams.get(&(layer, matrix))
    }

    /// Every recorded Gram matrix by `(layer, matrix)`.
    pub fn into_grams(self) -> BTreeMap<(usize, usize), Gram> {
        self.grams
    }
}

impl LayerExec for Recorder {
    fn run(
        &mut self,
        layers: &[Layer],
        index: usize,
        inputs: &[&[f32]],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let out = self.reference.run(layers, index, inputs)?;
        if let Some(layer) = layers.get(index) {
            for (m, given) in layer.weights.matrices.iter().enumerate() {
                let k = given.shape().1;
                let gram = self.grams.entry((index, m)).or_insert_with(|| Gram::new(k));
                layer_input_vectors(layer, m, inputs, &mut |x| gram.add(x));
            }
        }
        Ok(out)
    }
}
