//! Static shapes of a graph's values, following exactly what [`crate::eval`] and
//! [`crate::ops`] compute, without running anything. Used to fill layer specs when a
//! model is imported and to declare value shapes when one is exported.

use crate::error::ModelError;
use crate::graph::{Graph, Node, Op};
use crate::layer::Layer;
use std::collections::BTreeMap;
use tir::spec::WorkloadSpec;

fn node_err(n: &Node, reason: impl Into<String>) -> ModelError {
    ModelError::Node {
        node: n.name.clone(),
        op: n.op.name().to_string(),
        reason: reason.into(),
    }
}

fn elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

fn pool_out(size: usize, k: usize, stride: usize, pad0: usize, pad1: usize) -> Option<usize> {
    let padded = size.checked_add(pad0)?.checked_add(pad1)?;
    if k == 0 || stride == 0 || padded < k {
        return None;
    }
    Some((padded - k) / stride + 1)
}

/// The shape [`crate::ops::reshape`] gives an input of shape `from` for target
/// `shape` (`0` copies a dim, one `-1` is inferred), or why it cannot.
pub fn reshape(from: &[usize], shape: &[i64]) -> Result<Vec<usize>, String> {
    let total = elements(from).ok_or("input size overflows")?;
    let mut dims = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &d) in shape.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                dims.push(1);
            }
            0 => dims.push(*from.get(i).ok_or("0 beyond the input rank")?),
            d if d > 0 => dims.push(usize::try_from(d).map_err(|_| format!("dim {d}"))?),
            d => return Err(format!("bad target dim {d}")),
        }
    }
    let known = elements(&dims).ok_or("target size overflows")?;
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            return Err(format!(
                "cannot infer -1 for {total} elements into {shape:?}"
            ));
        }
        dims[i] = total / known;
    } else if known != total {
        return Err(format!("cannot reshape {from:?} to {shape:?}"));
    }
    Ok(dims)
}

/// The output shapes of node `n` given its input shapes (in order).
pub fn node_outputs(
    n: &Node,
    layers: &[Layer],
    inputs: &[&[usize]],
) -> Result<Vec<Vec<usize>>, ModelError> {
    let x = *inputs.first().ok_or_else(|| node_err(n, "no input"))?;
    let rank4 = || match *x {
        [a, b, c, d] => Ok([a, b, c, d]),
        ref s => Err(node_err(
            n,
            format!("expects an NCHW (4-D) input, got shape {s:?}"),
        )),
    };
    let spec = |l: usize| {
        layers
            .get(l)
            .map(|layer| &layer.spec)
            .ok_or_else(|| node_err(n, format!("no layer {l}")))
    };
    let one = |s: Vec<usize>| Ok(vec![s]);
    match &n.op {
        Op::Fc { layer } => match spec(*layer)? {
            WorkloadSpec::Fc(s) if elements(x) == s.k.checked_mul(s.n) => one(vec![s.n, s.m]),
            WorkloadSpec::Fc(s) => Err(node_err(
                n,
                format!("input {x:?} does not hold {} x {} values", s.n, s.k),
            )),
            other => Err(node_err(
                n,
                format!("op Fc cannot run a `{}` layer", other.kind()),
            )),
        },
        Op::Conv { layer } => match spec(*layer)? {
            WorkloadSpec::Conv2d(s) => {
                if x != [s.batch, s.c, s.h, s.w] {
                    return Err(node_err(
                        n,
                        format!(
                            "input {x:?}, the layer expects {:?}",
                            [s.batch, s.c, s.h, s.w]
                        ),
                    ));
                }
                match (s.out_h(), s.out_w()) {
                    (Some(oh), Some(ow)) => one(vec![s.batch, s.o, oh, ow]),
                    _ => Err(node_err(n, "the kernel does not fit the input")),
                }
            }
            other => Err(node_err(
                n,
                format!("op Conv cannot run a `{}` layer", other.kind()),
            )),
        },
        Op::Rnn { layer } => match spec(*layer)? {
            WorkloadSpec::Rnn(s) => match *x {
                [t, b, i] if b == s.batch && i == s.input => {
                    Ok(vec![vec![t, 1, b, s.hidden], vec![1, b, s.hidden]])
                }
                ref sh => Err(node_err(
                    n,
                    format!("input {sh:?}, expected [seq, {}, {}]", s.batch, s.input),
                )),
            },
            other => Err(node_err(
                n,
                format!("op Rnn cannot run a `{}` layer", other.kind()),
            )),
        },
        Op::Relu | Op::Sigmoid | Op::Tanh | Op::Identity => one(x.to_vec()),
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
            let [b, c, h, w] = rank4()?;
            match (
                pool_out(h, kernel[0], stride[0], pad[0], pad[2]),
                pool_out(w, kernel[1], stride[1], pad[1], pad[3]),
            ) {
                (Some(oh), Some(ow)) => one(vec![b, c, oh, ow]),
                _ => Err(node_err(
                    n,
                    format!("window {kernel:?} stride {stride:?} does not fit {x:?}"),
                )),
            }
        }
        Op::GlobalAvgPool => {
            let [b, c, _, _] = rank4()?;
            one(vec![b, c, 1, 1])
        }
        Op::Flatten { axis } => {
            if *axis > x.len() {
                return Err(node_err(n, format!("axis {axis} beyond rank {}", x.len())));
            }
            match (elements(&x[..*axis]), elements(&x[*axis..])) {
                (Some(a), Some(b)) => one(vec![a, b]),
                _ => Err(node_err(n, "size overflows")),
            }
        }
        Op::Reshape { shape } => one(reshape(x, shape).map_err(|e| node_err(n, e))?),
        Op::Softmax { axis } => {
            if *axis >= x.len() {
                return Err(node_err(n, format!("axis {axis} beyond rank {}", x.len())));
            }
            one(x.to_vec())
        }
        Op::Add => {
            let b = *inputs
                .get(1)
                .ok_or_else(|| node_err(n, "Add takes 2 inputs"))?;
            let per_channel = x.len() == 4 && elements(b) == Some(x[1]);
            if x == b || elements(b) == Some(1) || per_channel {
                one(x.to_vec())
            } else {
                Err(node_err(n, format!("cannot add shapes {x:?} and {b:?}")))
            }
        }
        Op::Concat { axis } => {
            let rank = x.len();
            if *axis >= rank {
                return Err(node_err(n, format!("axis {axis} beyond rank {rank}")));
            }
            let mut out = x.to_vec();
            out[*axis] = 0;
            for s in inputs {
                let same = s.len() == rank && (0..rank).all(|i| i == *axis || s[i] == x[i]);
                if !same {
                    return Err(node_err(
                        n,
                        format!("shapes {x:?} and {s:?} differ off the axis"),
                    ));
                }
                out[*axis] += s[*axis];
            }
            one(out)
        }
    }
}

/// The shape of every value of `graph` (its input included), checking each node's
/// input shapes as [`crate::eval::run_graph`] would.
pub fn graph_shapes(
    graph: &Graph,
    layers: &[Layer],
) -> Result<BTreeMap<String, Vec<usize>>, ModelError> {
    let mut shapes = BTreeMap::new();
    shapes.insert(graph.input.clone(), graph.input_shape.clone());
    for n in &graph.nodes {
        let ins: Vec<&[usize]> = n
            .inputs
            .iter()
            .map(|i| {
                shapes
                    .get(i)
                    .map(|s: &Vec<usize>| &s[..])
                    .ok_or_else(|| node_err(n, format!("`{i}` is not defined")))
            })
            .collect::<Result<_, _>>()?;
        let outs = node_outputs(n, layers, &ins)?;
        for (name, s) in n.outputs.iter().zip(outs) {
            shapes.insert(name.clone(), s);
        }
    }
    Ok(shapes)
}
