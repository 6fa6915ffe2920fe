//! Evaluating a graph model with a [`LayerExec`] for its layers.

use crate::array::Array;
use crate::error::ModelError;
use crate::exec::LayerExec;
use crate::graph::{Graph, Node, Op};
use crate::layer::Layer;
use crate::ops;
use std::collections::BTreeMap;
use tir::spec::WorkloadSpec;

fn node_err(n: &Node, reason: impl Into<String>) -> ModelError {
    ModelError::Node {
        node: n.name.clone(),
        op: n.op.name().to_string(),
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

fn run_layer_node(
    n: &Node,
    layers: &[Layer],
    index: usize,
    x: &Array,
    exec: &mut dyn LayerExec,
) -> Result<Vec<Array>, ModelError> {
    let layer = layers
        .get(index)
        .ok_or_else(|| node_err(n, format!("no layer {index}")))?;
    let one = |out: Vec<Vec<f32>>, shape: Vec<usize>| -> Result<Array, ModelError> {
        let data = out.into_iter().next().unwrap_or_default();
        Array::new(shape, data).ok_or_else(|| node_err(n, "layer output has the wrong size"))
    };
    match (&n.op, &layer.spec) {
        (Op::Fc { .. }, WorkloadSpec::Fc(s)) => {
            if x.len() != s.k * s.n {
                return Err(node_err(
                    n,
                    format!(
                        "input {:?} does not hold {} x {} values",
                        x.shape(),
                        s.n,
                        s.k
                    ),
                ));
            }
            let xt = transpose(x.data(), s.n, s.k);
            let y = exec.run(layers, index, &[&xt])?;
            let yt = transpose(&y.into_iter().next().unwrap_or_default(), s.m, s.n);
            Ok(vec![one(vec![yt], vec![s.n, s.m])?])
        }
        (Op::Conv { .. }, WorkloadSpec::Conv2d(s)) => {
            if x.shape() != [s.batch, s.c, s.h, s.w] {
                return Err(node_err(
                    n,
                    format!(
                        "input {:?}, layer `{}` expects {:?}",
                        x.shape(),
                        layer.name,
                        [s.batch, s.c, s.h, s.w]
                    ),
                ));
            }
            let (oh, ow) = (s.out_h().unwrap_or(0), s.out_w().unwrap_or(0));
            let y = exec.run(layers, index, &[x.data()])?;
            Ok(vec![one(y, vec![s.batch, s.o, oh, ow])?])
        }
        (Op::Rnn { .. }, WorkloadSpec::Rnn(s)) => {
            let (seq, batch) = match *x.shape() {
                [t, b, i] if b == s.batch && i == s.input => (t, b),
                ref sh => {
                    return Err(node_err(
                        n,
                        format!("input {sh:?}, expected [seq, {}, {}]", s.batch, s.input),
                    ))
                }
            };
            let mut h = vec![0.0f32; s.hidden * batch];
            let mut c = vec![0.0f32; s.hidden * batch];
            let mut ys = Vec::with_capacity(seq * s.hidden * batch);
            for t in 0..seq {
                let step = &x.data()[t * batch * s.input..(t + 1) * batch * s.input];
                let xt = transpose(step, batch, s.input);
                let out = if s.cell == tir::spec::RnnCell::Lstm {
                    exec.run(layers, index, &[&xt, &h, &c])?
                } else {
                    exec.run(layers, index, &[&xt, &h])?
                };
                let mut it = out.into_iter();
                h = it.next().unwrap_or_default();
                if let Some(cn) = it.next() {
                    c = cn;
                }
                if h.len() != s.hidden * batch {
                    return Err(node_err(n, "layer output has the wrong size"));
                }
                ys.extend(transpose(&h, s.hidden, batch));
            }
            let last = transpose(&h, s.hidden, batch);
            Ok(vec![
                one(vec![ys], vec![seq, 1, batch, s.hidden])?,
                one(vec![last], vec![1, batch, s.hidden])?,
            ])
        }
        (op, spec) => Err(node_err(
            n,
            format!("op {} cannot run a `{}` layer", op.name(), spec.kind()),
        )),
    }
}

/// Runs `graph` on `input`, its layers through `exec`, and returns the output.
pub fn run_graph(
    graph: &Graph,
    layers: &[Layer],
    input: &Array,
    exec: &mut dyn LayerExec,
) -> Result<Array, ModelError> {
    let mut values = run_graph_values(graph, layers, input, exec)?;
    values
        .remove(&graph.output)
        .ok_or_else(|| ModelError::Format {
            path: "graph".to_string(),
            reason: format!("the output `{}` was never computed", graph.output),
        })
}

/// Runs `graph` like [`run_graph`] and returns every value it computed, by name.
pub fn run_graph_values(
    graph: &Graph,
    layers: &[Layer],
    input: &Array,
    exec: &mut dyn LayerExec,
) -> Result<BTreeMap<String, Array>, ModelError> {
    if input.shape() != graph.input_shape.as_slice() {
        return Err(ModelError::Format {
            path: "input".to_string(),
            reason: format!(
                "shape {:?}, the model takes {:?}",
                input.shape(),
                graph.input_shape
            ),
        });
    }
    let mut values: BTreeMap<String, Array> = BTreeMap::new();
    values.insert(graph.input.clone(), input.clone());
    for n in &graph.nodes {
        let args: Vec<&Array> = n
            .inputs
            .iter()
            .map(|i| {
                values
                    .get(i)
                    .ok_or_else(|| node_err(n, format!("`{i}` is not defined")))
            })
            .collect::<Result<_, _>>()?;
        let x = args
            .first()
            .copied()
            .ok_or_else(|| node_err(n, "no input"))?;
        let e = |m: String| node_err(n, m);
        let outs: Vec<Array> = match &n.op {
            Op::Fc { layer } | Op::Conv { layer } | Op::Rnn { layer } => {
                run_layer_node(n, layers, *layer, x, exec)?
            }
            Op::Relu => vec![ops::map(x, |v| v.max(0.0))],
            Op::Sigmoid => vec![ops::map(x, |v| tir::spec::Activation::Sigmoid.apply(v))],
            Op::Tanh => vec![ops::map(x, f32::tanh)],
            Op::MaxPool {
                kernel,
                stride,
                pad,
            } => vec![ops::pool(x, *kernel, *stride, *pad, true).map_err(e)?],
            Op::AvgPool {
                kernel,
                stride,
                pad,
            } => vec![ops::pool(x, *kernel, *stride, *pad, false).map_err(e)?],
            Op::GlobalAvgPool => vec![ops::global_avg_pool(x).map_err(e)?],
            Op::Flatten { axis } => vec![ops::flatten(x.clone(), *axis).map_err(e)?],
            Op::Reshape { shape } => vec![ops::reshape(x.clone(), shape).map_err(e)?],
            Op::Softmax { axis } => vec![ops::softmax(x, *axis).map_err(e)?],
            Op::Add => {
                let b = args
                    .get(1)
                    .copied()
                    .ok_or_else(|| node_err(n, "Add takes 2 inputs"))?;
                vec![ops::add(x, b).map_err(e)?]
            }
            Op::Concat { axis } => vec![ops::concat(&args, *axis).map_err(e)?],
            Op::Identity => vec![x.clone()],
        };
        for (name, v) in n.outputs.iter().zip(outs) {
            values.insert(name.clone(), v);
        }
    }
    Ok(values)
}
