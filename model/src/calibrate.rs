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
///
/// A *paired* Gram ([`Gram::add_pair`]) also keeps, for each vector `x` a pruned
/// model's matrix saw, the vector `x_d` the dense model's matrix saw at the same point
/// of the same calibration sample: `Σ x x_dᵀ` ([`Gram::cross`]) and `Σ x_d x_dᵀ`
/// ([`Gram::dense_get`]). The refit then fits the pruned matrix's outputs on the
/// inputs it really gets to the dense matrix's outputs on the dense inputs, so it
/// also makes up for the error of the pruned layers before it. An unpaired Gram
/// answers `cross` and `dense_get` with `Σ x xᵀ` (the dense model saw the same
/// inputs).
#[derive(Debug, Clone, PartialEq)]
pub struct Gram {
    k: usize,
    g: Vec<f64>,
    sum: Vec<f64>,
    samples: u64,
    paired: Option<Box<DenseSide>>,
}

/// The dense model's side of a paired [`Gram`].
#[derive(Debug, Clone, PartialEq)]
struct DenseSide {
    /// `Σ x x_dᵀ`, row-major `k x k`.
    cross: Vec<f64>,
    /// `Σ x_d x_dᵀ`.
    dense: Vec<f64>,
    /// `Σ x_d`.
    sum: Vec<f64>,
}

/// `g += a bᵀ` for `k x k` row-major `g` (rows of zero `a[i]` skipped).
fn add_outer(g: &mut [f64], a: &[f32], b: &[f32]) {
    let k = b.len();
    for (i, &ai) in a.iter().enumerate() {
        if ai == 0.0 {
            continue;
        }
        let ai = ai as f64;
        for (gij, &bj) in g[i * k..(i + 1) * k].iter_mut().zip(b) {
            *gij += ai * bj as f64;
        }
    }
}

impl Gram {
    /// An empty accumulator for vectors of length `k`.
    pub fn new(k: usize) -> Gram {
        Gram {
            k,
            g: vec![0.0; k * k],
            sum: vec![0.0; k],
            samples: 0,
            paired: None,
        }
    }

    /// An empty paired accumulator ([`Gram::add_pair`]) for vectors of length `k`.
    pub fn new_paired(k: usize) -> Gram {
        Gram {
            paired: Some(Box::new(DenseSide {
                cross: vec![0.0; k * k],
                dense: vec![0.0; k * k],
                sum: vec![0.0; k],
            })),
            ..Gram::new(k)
        }
    }

    /// Whether this Gram pairs each vector with the dense model's.
    pub fn is_paired(&self) -> bool {
        self.paired.is_some()
    }

    /// `(Σ x x_dᵀ)[i][j]`: the seen inputs against the dense model's (`get` when
    /// unpaired).
    pub fn cross(&self, i: usize, j: usize) -> f64 {
        match &self.paired {
            Some(p) => p.cross[i * self.k + j],
            None => self.get(i, j),
        }
    }

    /// `(Σ x_d x_dᵀ)[i][j]`: the dense model's inputs (`get` when unpaired).
    pub fn dense_get(&self, i: usize, j: usize) -> f64 {
        match &self.paired {
            Some(p) => p.dense[i * self.k + j],
            None => self.get(i, j),
        }
    }

    /// The mean of the dense model's input vectors ([`Gram::mean`] when unpaired).
    pub fn dense_mean(&self) -> Vec<f64> {
        match &self.paired {
            Some(p) => {
                let n = self.samples.max(1) as f64;
                p.sum.iter().map(|s| s / n).collect()
            }
            None => self.mean(),
        }
    }

    /// Adds the vector `x` a pruned model's matrix saw together with the vector
    /// `x_dense` the dense model's saw at the same point (ignored when a length is
    /// wrong or the Gram is not paired).
    pub fn add_pair(&mut self, x: &[f32], x_dense: &[f32]) {
        if x.len() != self.k || x_dense.len() != self.k {
            return;
        }
        let Some(p) = self.paired.as_deref_mut() else {
            return;
        };
        add_outer(&mut p.cross, x, x_dense);
        add_outer(&mut p.dense, x_dense, x_dense);
        for (s, &v) in p.sum.iter_mut().zip(x_dense) {
            *s += v as f64;
        }
        for (s, &v) in self.sum.iter_mut().zip(x) {
            *s += v as f64;
        }
        add_outer(&mut self.g, x, x);
        self.samples += 1;
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

    /// The root mean square of each component over the vectors added (zeros before
    /// any): `sqrt(G_cc / samples)`.
    pub fn rms(&self) -> Vec<f64> {
        let n = self.samples.max(1) as f64;
        (0..self.k).map(|c| (self.get(c, c) / n).sqrt()).collect()
    }

    /// Adds `x xᵀ` (ignores vectors of the wrong length; a paired Gram takes `x` as
    /// its own dense partner).
    pub fn add(&mut self, x: &[f32]) {
        if self.paired.is_some() {
            self.add_pair(x, x);
            return;
        }
        if x.len() != self.k {
            return;
        }
        for (s, &v) in self.sum.iter_mut().zip(x) {
            *s += v as f64;
        }
        add_outer(&mut self.g, x, x);
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
