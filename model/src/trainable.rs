//! A graph model as trainable parameters: forward pass with a tape, backward pass
//! through every op ([`crate::backprop`]), and writing the trained values back into
//! the model's layers with their BCR structure unchanged.
//!
//! The parameters are flat tensors: for every layer an FC or Conv node runs, its
//! weight matrix (dense row-major, the `O x (C·kh·kw)` view for a convolution; pruned
//! positions zero) with its kept [`Pattern`], and its bias when the spec has one.
//! Gradients have the same layout and are zero at every pruned position.
//!
//! Supported ops: Fc and Conv (any fused activation), Relu, Sigmoid, Tanh, MaxPool,
//! AveragePool, GlobalAveragePool, Flatten, Reshape, Softmax, Add, Concat, Identity.
//! A graph with any other op (Rnn), or an encoder-decoder model, is refused with an
//! error naming the node and op.

use crate::array::Array;
use crate::backprop::{self, ConvGeometry, Pattern, Pool};
use crate::error::ModelError;
use crate::graph::{Graph, Node, Op};
use crate::layer::Layer;
use crate::ops;
use crate::prune::with_values;
use crate::{Body, Model};
use std::collections::BTreeMap;
use tir::spec::{Activation, WorkloadSpec};
use tir::workload::GivenMatrix;
use tir::Matrix;

fn node_err(name: &str, op: &Op, reason: impl Into<String>) -> ModelError {
    ModelError::Node {
        node: name.to_string(),
        op: op.name().to_string(),
        reason: reason.into(),
    }
}

/// `[rows, cols]` row-major to `[cols, rows]`.
fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    for r in 0..rows {
        for c in 0..cols {
            y[c * rows + r] = x[r * cols + c];
        }
    }
    y
}

/// What a weight-bearing layer computes.
#[derive(Debug, Clone)]
enum Kind {
    Fc {
        m: usize,
        k: usize,
        n: usize,
        act: Activation,
    },
    Conv {
        batch: usize,
        o: usize,
        geom: ConvGeometry,
        act: Activation,
    },
}

/// One layer's parameter tensors (indices into [`Trainable::tensors`]).
#[derive(Debug, Clone)]
struct Slot {
    kind: Kind,
    weight: usize,
    bias: Option<usize>,
}

/// One node, its values as indices.
#[derive(Debug, Clone)]
struct Step {
    name: String,
    op: Op,
    inputs: Vec<usize>,
    output: usize,
}

/// What a step keeps from its forward pass for its backward pass (besides the values).
#[derive(Debug, Clone)]
enum Cache {
    None,
    /// FC: its input as `[K, N]`.
    Fc(Vec<f32>),
    /// Conv: the im2col matrix of every image.
    Conv(Vec<Vec<f32>>),
}

/// Everything a forward pass computed: every value and every step's cache.
#[derive(Debug, Clone)]
pub struct Tape {
    values: Vec<Option<Array>>,
    caches: Vec<Cache>,
    logits: usize,
}

impl Tape {
    /// The logits the loss reads: the graph output, or the input of the final
    /// softmax when the graph ends in one over its last axis.
    pub fn logits(&self) -> Option<&Array> {
        self.values.get(self.logits).and_then(Option::as_ref)
    }
}

/// A graph model's trainable form; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Trainable {
    steps: Vec<Step>,
    values: usize,
    input_shape: Vec<usize>,
    logits: usize,
    /// Whether the loss gradient reaches each value (it depends on a parameter).
    needs_grad: Vec<bool>,
    slots: BTreeMap<usize, Slot>,
    /// The parameter tensors: per trained layer its weights, then its bias.
    pub tensors: Vec<Vec<f32>>,
    /// The kept pattern of each tensor (`None`: every element is trained, biases).
    pub patterns: Vec<Option<Pattern>>,
}

fn layer_kind(n: &Node, layer: &Layer) -> Result<Kind, ModelError> {
    match (&n.op, &layer.spec) {
        (Op::Fc { .. }, WorkloadSpec::Fc(s)) => Ok(Kind::Fc {
            m: s.m,
            k: s.k,
            n: s.n,
            act: s.act,
        }),
        (Op::Conv { .. }, WorkloadSpec::Conv2d(s)) => {
            let (Some(oh), Some(ow)) = (s.out_h(), s.out_w()) else {
                return Err(node_err(&n.name, &n.op, "kernel larger than input"));
            };
            Ok(Kind::Conv {
                batch: s.batch,
                o: s.o,
                geom: ConvGeometry {
                    c: s.c,
                    h: s.h,
                    w: s.w,
                    kh: s.kh,
                    kw: s.kw,
                    stride: s.stride,
                    pad: s.pad,
                    dilation: s.dilation,
                    oh,
                    ow,
                },
                act: s.act,
            })
        }
        (op, spec) => Err(node_err(
            &n.name,
            op,
            format!("cannot run a `{}` layer", spec.kind()),
        )),
    }
}

impl Trainable {
    /// The trainable form of a graph model; an error naming the node for an op
    /// without a backward pass, or naming the model when it is not a graph.
    pub fn new(model: &Model) -> Result<Trainable, ModelError> {
        let Body::Graph(g) = &model.body else {
            return Err(ModelError::Format {
                path: model.name.clone(),
                reason: "fine-tuning supports graph models only (this is an encoder-decoder)"
                    .to_string(),
            });
        };
        model.validate()?;
        Trainable::from_graph(g, &model.layers)
    }

    fn from_graph(g: &Graph, layers: &[Layer]) -> Result<Trainable, ModelError> {
        let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
        ids.insert(&g.input, 0);
        let mut steps = Vec::new();
        let mut slots = BTreeMap::new();
        let mut tensors = Vec::new();
        let mut patterns = Vec::new();
        let mut needs_grad = vec![false];
        for n in &g.nodes {
            if matches!(n.op, Op::Rnn { .. }) {
                return Err(node_err(
                    &n.name,
                    &n.op,
                    "fine-tuning has no backward pass for this op (supported: Conv, Fc, Relu, \
                     Sigmoid, Tanh, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape, \
                     Softmax, Add, Concat, Identity)",
                ));
            }
            let inputs: Vec<usize> = n
                .inputs
                .iter()
                .map(|i| {
                    ids.get(i.as_str())
                        .copied()
                        .ok_or_else(|| node_err(&n.name, &n.op, format!("`{i}` is not defined")))
                })
                .collect::<Result<_, _>>()?;
            let out_name = n
                .outputs
                .first()
                .ok_or_else(|| node_err(&n.name, &n.op, "defines no value"))?;
            let mut needs = inputs.iter().any(|&i| needs_grad[i]);
            if let Some(l) = n.op.layer() {
                needs = true;
                let layer = layers
                    .get(l)
                    .ok_or_else(|| node_err(&n.name, &n.op, format!("no layer {l}")))?;
                if let std::collections::btree_map::Entry::Vacant(e) = slots.entry(l) {
                    let kind = layer_kind(n, layer)?;
                    let (pattern, w) = match layer.weights.matrices.first() {
                        Some(GivenMatrix::Dense(m)) => {
                            (Pattern::dense(m.rows(), m.cols()), m.data().to_vec())
                        }
                        Some(GivenMatrix::Bcr(b)) => {
                            (Pattern::of_bcr(b), b.to_dense().data().to_vec())
                        }
                        None => return Err(ModelError::layer(&layer.name, "has no weight matrix")),
                    };
                    let weight = tensors.len();
                    tensors.push(w);
                    patterns.push(Some(pattern));
                    let has_bias = match &layer.spec {
                        WorkloadSpec::Fc(s) => s.bias,
                        WorkloadSpec::Conv2d(s) => s.bias,
                        _ => false,
                    };
                    let bias = if has_bias {
                        tensors.push(layer.bias(0)?.to_vec());
                        patterns.push(None);
                        Some(tensors.len() - 1)
                    } else {
                        None
                    };
                    e.insert(Slot { kind, weight, bias });
                } else if let Some(s) = slots.get(&l) {
                    // A layer shared by two nodes must be used the same way.
                    let k = layer_kind(n, layer)?;
                    if std::mem::discriminant(&k) != std::mem::discriminant(&s.kind) {
                        return Err(node_err(&n.name, &n.op, "layer used by two kinds of op"));
                    }
                }
            }
            let output = needs_grad.len();
            needs_grad.push(needs);
            ids.insert(out_name, output);
            steps.push(Step {
                name: n.name.clone(),
                op: n.op.clone(),
                inputs,
                output,
            });
        }
        let output = *ids
            .get(g.output.as_str())
            .ok_or_else(|| ModelError::Format {
                path: "graph".to_string(),
                reason: format!("the output `{}` is never defined", g.output),
            })?;
        // A final softmax over the last axis is folded into the loss.
        let logits = steps
            .iter()
            .find(|s| s.output == output)
            .and_then(|s| match s.op {
                Op::Softmax { .. } => s.inputs.first().copied(),
                _ => None,
            })
            .unwrap_or(output);
        Ok(Trainable {
            steps,
            values: needs_grad.len(),
            input_shape: g.input_shape.clone(),
            logits,
            needs_grad,
            slots,
            tensors,
            patterns,
        })
    }

    /// Runs the graph on `x`, keeping what the backward pass needs.
    pub fn forward(&self, x: &Array) -> Result<Tape, ModelError> {
        if x.shape() != self.input_shape.as_slice() {
            return Err(ModelError::Format {
                path: "input".to_string(),
                reason: format!(
                    "shape {:?}, the model takes {:?}",
                    x.shape(),
                    self.input_shape
                ),
            });
        }
        let mut values: Vec<Option<Array>> = vec![None; self.values];
        values[0] = Some(x.clone());
        let mut caches = Vec::with_capacity(self.steps.len());
        for s in &self.steps {
            let args: Vec<&Array> = s
                .inputs
                .iter()
                .map(|&i| {
                    values[i]
                        .as_ref()
                        .ok_or_else(|| node_err(&s.name, &s.op, "input not computed"))
                })
                .collect::<Result<_, _>>()?;
            let (y, cache) = self.forward_step(s, &args)?;
            caches.push(cache);
            values[s.output] = Some(y);
        }
        Ok(Tape {
            values,
            caches,
            logits: self.logits,
        })
    }

    fn forward_step(&self, s: &Step, args: &[&Array]) -> Result<(Array, Cache), ModelError> {
        let e = |m: String| node_err(&s.name, &s.op, m);
        let x = *args.first().ok_or_else(|| e("no input".to_string()))?;
        let arr = |shape: Vec<usize>, data: Vec<f32>| {
            Array::new(shape, data).ok_or_else(|| e("output size".to_string()))
        };
        Ok(match &s.op {
            Op::Fc { layer } | Op::Conv { layer } => {
                let slot = self
                    .slots
                    .get(layer)
                    .ok_or_else(|| e(format!("no layer {layer}")))?;
                let w = &self.tensors[slot.weight];
                let p = self.patterns[slot.weight]
                    .as_ref()
                    .ok_or_else(|| e("weights without a pattern".to_string()))?;
                let bias = slot.bias.map(|b| &self.tensors[b][..]);
                match slot.kind {
                    Kind::Fc { m, k, n, act } => {
                        if x.len() != k * n {
                            return Err(e(format!(
                                "input {:?} does not hold {n} x {k} values",
                                x.shape()
                            )));
                        }
                        let xt = transpose(x.data(), n, k);
                        let mut y = backprop::matmul(w, p, &xt, n);
                        for r in 0..m {
                            let b = bias.map_or(0.0, |b| b[r]);
                            for v in &mut y[r * n..(r + 1) * n] {
                                *v = act.apply(*v + b);
                            }
                        }
                        (arr(vec![n, m], transpose(&y, m, n))?, Cache::Fc(xt))
                    }
                    Kind::Conv {
                        batch,
                        o,
                        geom: g,
                        act,
                    } => {
                        if x.shape() != [batch, g.c, g.h, g.w] {
                            return Err(e(format!(
                                "input {:?}, expected {:?}",
                                x.shape(),
                                [batch, g.c, g.h, g.w]
                            )));
                        }
                        let (img, px) = (g.c * g.h * g.w, g.pixels());
                        let mut out = Vec::with_capacity(batch * o * px);
                        let mut all_cols = Vec::with_capacity(batch);
                        for b in 0..batch {
                            let cols = g.im2col(&x.data()[b * img..(b + 1) * img]);
                            let mut y = backprop::matmul(w, p, &cols, px);
                            for (i, v) in y.iter_mut().enumerate() {
                                *v = act.apply(*v + bias.map_or(0.0, |bv| bv[i / px]));
                            }
                            out.extend(y);
                            all_cols.push(cols);
                        }
                        (arr(vec![batch, o, g.oh, g.ow], out)?, Cache::Conv(all_cols))
                    }
                }
            }
            Op::Rnn { .. } => return Err(e("no backward pass".to_string())),
            Op::Relu => (ops::map(x, |v| v.max(0.0)), Cache::None),
            Op::Sigmoid => (ops::map(x, |v| Activation::Sigmoid.apply(v)), Cache::None),
            Op::Tanh => (ops::map(x, f32::tanh), Cache::None),
            Op::MaxPool {
                kernel,
                stride,
                pad,
            } => (
                ops::pool(x, *kernel, *stride, *pad, true).map_err(e)?,
                Cache::None,
            ),
            Op::AvgPool {
                kernel,
                stride,
                pad,
            } => (
                ops::pool(x, *kernel, *stride, *pad, false).map_err(e)?,
                Cache::None,
            ),
            Op::GlobalAvgPool => (ops::global_avg_pool(x).map_err(e)?, Cache::None),
            Op::Flatten { axis } => (ops::flatten(x.clone(), *axis).map_err(e)?, Cache::None),
            Op::Reshape { shape } => (ops::reshape(x.clone(), shape).map_err(e)?, Cache::None),
            Op::Softmax { axis } => (ops::softmax(x, *axis).map_err(e)?, Cache::None),
            Op::Add => {
                let b = args
                    .get(1)
                    .ok_or_else(|| e("Add takes 2 inputs".to_string()))?;
                (ops::add(x, b).map_err(e)?, Cache::None)
            }
            Op::Concat { axis } => (ops::concat(args, *axis).map_err(e)?, Cache::None),
            Op::Identity => (x.clone(), Cache::None),
        })
    }

    /// Adds the gradient of the loss to `grads` (one per tensor), given the tape of a
    /// forward pass and the gradient of the loss with respect to the logits.
    pub fn backward(
        &self,
        tape: &Tape,
        d_logits: &[f32],
        grads: &mut [Vec<f32>],
    ) -> Result<(), ModelError> {
        let mut dv: Vec<Option<Vec<f32>>> = vec![None; self.values];
        match tape.logits() {
            Some(l) if l.len() == d_logits.len() => dv[self.logits] = Some(d_logits.to_vec()),
            _ => {
                return Err(ModelError::Format {
                    path: "gradient".to_string(),
                    reason: format!("{} logit gradients do not fit the logits", d_logits.len()),
                })
            }
        }
        for (si, s) in self.steps.iter().enumerate().rev() {
            let Some(dy) = dv[s.output].take() else {
                continue;
            };
            let need: Vec<bool> = s.inputs.iter().map(|&i| self.needs_grad[i]).collect();
            let dxs = self.backward_step(s, &tape.caches[si], &tape.values, dy, &need, grads)?;
            for ((&i, dx), n) in s.inputs.iter().zip(dxs).zip(need) {
                let Some(dx) = dx.filter(|_| n) else { continue };
                match &mut dv[i] {
                    Some(acc) => acc.iter_mut().zip(&dx).for_each(|(a, d)| *a += d),
                    slot => *slot = Some(dx),
                }
            }
        }
        Ok(())
    }

    /// One step's backward pass: the gradient of each input (`None` where not needed).
    fn backward_step(
        &self,
        s: &Step,
        cache: &Cache,
        values: &[Option<Array>],
        mut dy: Vec<f32>,
        need: &[bool],
        grads: &mut [Vec<f32>],
    ) -> Result<Vec<Option<Vec<f32>>>, ModelError> {
        let e = |m: &str| node_err(&s.name, &s.op, m.to_string());
        let value = |i: usize| {
            values
                .get(i)
                .and_then(Option::as_ref)
                .ok_or_else(|| e("value"))
        };
        let x = value(*s.inputs.first().ok_or_else(|| e("no input"))?)?;
        let y = value(s.output)?;
        let need0 = need.first().copied().unwrap_or(false);
        Ok(match &s.op {
            Op::Fc { layer } | Op::Conv { layer } => {
                let slot = self.slots.get(layer).ok_or_else(|| e("no layer"))?;
                let w = &self.tensors[slot.weight];
                let p = self.patterns[slot.weight]
                    .as_ref()
                    .ok_or_else(|| e("pattern"))?;
                let mut dw = std::mem::take(&mut grads[slot.weight]);
                let mut db = slot.bias.map(|b| std::mem::take(&mut grads[b]));
                let dx = match (&slot.kind, cache) {
                    (&Kind::Fc { m, k, n, act }, Cache::Fc(xt)) => {
                        let yt = transpose(y.data(), n, m);
                        let mut dyt = transpose(&dy, n, m);
                        backprop::activation_backward(act, &yt, &mut dyt);
                        if let Some(db) = db.as_mut() {
                            for (r, b) in db.iter_mut().enumerate() {
                                *b += dyt[r * n..(r + 1) * n].iter().sum::<f32>();
                            }
                        }
                        let mut dxt = need0.then(|| vec![0.0f32; k * n]);
                        backprop::matmul_backward(w, p, xt, n, &dyt, &mut dw, dxt.as_deref_mut());
                        dxt.map(|d| transpose(&d, k, n))
                    }
                    (
                        &Kind::Conv {
                            o, geom: g, act, ..
                        },
                        Cache::Conv(cols),
                    ) => {
                        let (img, px) = (g.c * g.h * g.w, g.pixels());
                        let mut dx = need0.then(|| vec![0.0f32; x.len()]);
                        for (b, cols) in cols.iter().enumerate() {
                            let dyb = &mut dy[b * o * px..(b + 1) * o * px];
                            let yb = &y.data()[b * o * px..(b + 1) * o * px];
                            backprop::activation_backward(act, yb, dyb);
                            if let Some(db) = db.as_mut() {
                                for (oc, bv) in db.iter_mut().enumerate() {
                                    *bv += dyb[oc * px..(oc + 1) * px].iter().sum::<f32>();
                                }
                            }
                            let mut dcols = dx.as_ref().map(|_| vec![0.0f32; cols.len()]);
                            backprop::matmul_backward(
                                w,
                                p,
                                cols,
                                px,
                                dyb,
                                &mut dw,
                                dcols.as_deref_mut(),
                            );
                            if let (Some(dx), Some(dc)) = (dx.as_mut(), dcols) {
                                g.col2im(&dc, &mut dx[b * img..(b + 1) * img]);
                            }
                        }
                        dx
                    }
                    _ => return Err(e("cache does not fit the layer")),
                };
                grads[slot.weight] = dw;
                if let (Some(bi), Some(db)) = (slot.bias, db) {
                    grads[bi] = db;
                }
                vec![dx]
            }
            Op::Rnn { .. } => return Err(e("no backward pass")),
            Op::Relu => {
                backprop::activation_backward(Activation::Relu, y.data(), &mut dy);
                vec![Some(dy)]
            }
            Op::Sigmoid => {
                backprop::activation_backward(Activation::Sigmoid, y.data(), &mut dy);
                vec![Some(dy)]
            }
            Op::Tanh => {
                backprop::activation_backward(Activation::Tanh, y.data(), &mut dy);
                vec![Some(dy)]
            }
            Op::MaxPool {
                kernel,
                stride,
                pad,
            }
            | Op::AvgPool {
                kernel,
                stride,
                pad,
            } => {
                let (&[n, c, h, w], &[_, _, oh, ow]) = (x.shape(), y.shape()) else {
                    return Err(e("pooling needs NCHW"));
                };
                let pool = Pool {
                    kernel: *kernel,
                    stride: *stride,
                    pad: *pad,
                    max: matches!(s.op, Op::MaxPool { .. }),
                };
                vec![Some(backprop::pool_backward(
                    x.data(),
                    [n, c, h, w],
                    [oh, ow],
                    &dy,
                    pool,
                ))]
            }
            Op::GlobalAvgPool => {
                let &[n, c, h, w] = x.shape() else {
                    return Err(e("pooling needs NCHW"));
                };
                vec![Some(backprop::global_avg_pool_backward([n, c, h, w], &dy))]
            }
            Op::Flatten { .. } | Op::Reshape { .. } | Op::Identity => vec![Some(dy)],
            Op::Softmax { axis } => vec![Some(backprop::softmax_backward(
                y.data(),
                y.shape(),
                *axis,
                &dy,
            ))],
            Op::Add => {
                let b = value(*s.inputs.get(1).ok_or_else(|| e("Add takes 2 inputs"))?)?;
                let db = backprop::add_backward_b(x.shape(), b.len(), &dy);
                vec![Some(dy), Some(db)]
            }
            Op::Concat { axis } => {
                let shapes: Vec<&[usize]> = s
                    .inputs
                    .iter()
                    .map(|&i| value(i).map(Array::shape))
                    .collect::<Result<_, _>>()?;
                backprop::concat_backward(&shapes, *axis, &dy)
                    .into_iter()
                    .map(Some)
                    .collect()
            }
        })
    }

    /// `layers` with the trained weights and biases written back: a BCR matrix keeps
    /// its blocks' kept rows and columns (only its values change), a dense matrix
    /// stays dense, and every spec is unchanged.
    pub fn write_back(&self, layers: &[Layer]) -> Result<Vec<Layer>, ModelError> {
        let mut out = layers.to_vec();
        for (&l, slot) in &self.slots {
            let layer = out
                .get_mut(l)
                .ok_or_else(|| ModelError::layer(&format!("#{l}"), "no such layer"))?;
            let biases: Vec<&[f32]> = slot.bias.iter().map(|&b| &self.tensors[b][..]).collect();
            write_layer(layer, &[&self.tensors[slot.weight]], &biases)?;
        }
        Ok(out)
    }
}

/// Writes trained weight matrices (dense row-major, in the layer's matrix order) and
/// biases (in its bias order; fewer leave the rest) into `layer`: a BCR matrix keeps
/// its structure and takes the values at its kept positions, a dense one takes all.
pub(crate) fn write_layer(
    layer: &mut Layer,
    matrices: &[&[f32]],
    biases: &[&[f32]],
) -> Result<(), ModelError> {
    for (i, w) in matrices.iter().enumerate() {
        let m = match layer.weights.matrices.get(i) {
            Some(GivenMatrix::Dense(d)) => GivenMatrix::Dense(
                Matrix::new(d.rows(), d.cols(), w.to_vec())
                    .map_err(|e| ModelError::layer(&layer.name, e.to_string()))?,
            ),
            Some(GivenMatrix::Bcr(b)) => {
                GivenMatrix::Bcr(with_values(b, w).map_err(|e| ModelError::layer(&layer.name, e))?)
            }
            None => {
                return Err(ModelError::layer(
                    &layer.name,
                    format!("has no weight matrix {i}"),
                ))
            }
        };
        layer.weights.matrices[i] = m;
    }
    for (i, b) in biases.iter().enumerate() {
        match layer.weights.biases.get_mut(i) {
            Some(v) if v.len() == b.len() => v.copy_from_slice(b),
            _ => {
                return Err(ModelError::layer(
                    &layer.name,
                    format!("bias {i} length changed"),
                ))
            }
        }
    }
    Ok(())
}
