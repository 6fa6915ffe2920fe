//! A model as a graph of ops in topological order.

use crate::error::ModelError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One op of a graph. Weight-bearing ops name a layer of the model by index; the
/// others are glue that runs in plain Rust.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Fully connected: input `[N, K]` (any shape with `K` elements per row of `N`),
    /// output `[N, M]`; bias and activation as in the layer's spec.
    Fc {
        /// The layer.
        layer: usize,
    },
    /// 2-D convolution, NCHW in and out, as the layer's spec says.
    Conv {
        /// The layer.
        layer: usize,
    },
    /// A GRU or LSTM over a sequence `[seq, batch, input]` starting from zero state;
    /// outputs `Y [seq, 1, batch, hidden]` and `Y_h [1, batch, hidden]` (ONNX's first
    /// two outputs, one direction, `linear_before_reset = 1` for GRU).
    Rnn {
        /// The layer.
        layer: usize,
    },
    /// `max(x, 0)`.
    Relu,
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Max pooling over the last two axes of an NCHW array.
    MaxPool {
        /// Window `[kh, kw]`.
        kernel: [usize; 2],
        /// Strides `[sh, sw]`.
        stride: [usize; 2],
        /// Padding `[top, left, bottom, right]` (padded cells never win).
        pad: [usize; 4],
    },
    /// Average pooling over the last two axes (padding excluded from the count).
    AvgPool {
        /// Window `[kh, kw]`.
        kernel: [usize; 2],
        /// Strides `[sh, sw]`.
        stride: [usize; 2],
        /// Padding `[top, left, bottom, right]`.
        pad: [usize; 4],
    },
    /// Mean over the last two axes, keeping them as size 1.
    GlobalAvgPool,
    /// Flattens to 2-D `[prod(shape[..axis]), prod(shape[axis..])]`.
    Flatten {
        /// The split axis.
        axis: usize,
    },
    /// Reshape with ONNX semantics (`0` copies the input dim, `-1` is inferred).
    Reshape {
        /// The target shape.
        shape: Vec<i64>,
    },
    /// Softmax along an axis.
    Softmax {
        /// The axis.
        axis: usize,
    },
    /// Element-wise sum of two arrays of the same shape (or the second of 1 element,
    /// or one per channel of NCHW).
    Add,
    /// Concatenation along an axis.
    Concat {
        /// The axis.
        axis: usize,
    },
    /// Passes its input through (ONNX Identity, Dropout at inference).
    Identity,
}

impl Op {
    /// The op's name in messages.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Fc { .. } => "Fc",
            Op::Conv { .. } => "Conv",
            Op::Rnn { .. } => "Rnn",
            Op::Relu => "Relu",
            Op::Sigmoid => "Sigmoid",
            Op::Tanh => "Tanh",
            Op::MaxPool { .. } => "MaxPool",
            Op::AvgPool { .. } => "AveragePool",
            Op::GlobalAvgPool => "GlobalAveragePool",
            Op::Flatten { .. } => "Flatten",
            Op::Reshape { .. } => "Reshape",
            Op::Softmax { .. } => "Softmax",
            Op::Add => "Add",
            Op::Concat { .. } => "Concat",
            Op::Identity => "Identity",
        }
    }

    /// The layer this op runs, if it is weight-bearing.
    pub fn layer(&self) -> Option<usize> {
        match self {
            Op::Fc { layer } | Op::Conv { layer } | Op::Rnn { layer } => Some(*layer),
            _ => None,
        }
    }

    /// How many inputs it takes.
    fn arity(&self) -> std::ops::RangeInclusive<usize> {
        match self {
            Op::Add => 2..=2,
            Op::Concat { .. } => 1..=usize::MAX,
            _ => 1..=1,
        }
    }
}

/// One node: an op, the values it reads and the values it defines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The node's name (for messages).
    pub name: String,
    /// The op.
    pub op: Op,
    /// Names of the values it reads.
    pub inputs: Vec<String>,
    /// Names of the values it defines (`Rnn` defines two; the rest one).
    pub outputs: Vec<String>,
}

/// A graph with one input and one output, nodes in topological order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// The input value's name.
    pub input: String,
    /// The input's shape (batch first).
    pub input_shape: Vec<usize>,
    /// The output value's name.
    pub output: String,
    /// The nodes, each reading only values defined before it.
    pub nodes: Vec<Node>,
}

impl Graph {
    /// Checks layer indices, arities and that every value is defined once before it
    /// is read and that the output is defined.
    pub fn validate(&self, layers: usize) -> Result<(), ModelError> {
        let mut defined: BTreeSet<&str> = BTreeSet::new();
        defined.insert(&self.input);
        for n in &self.nodes {
            let err = |reason: String| ModelError::Node {
                node: n.name.clone(),
                op: n.op.name().to_string(),
                reason,
            };
            if let Some(l) = n.op.layer() {
                if l >= layers {
                    return Err(err(format!("refers to layer {l}, the model has {layers}")));
                }
            }
            if !n.op.arity().contains(&n.inputs.len()) {
                return Err(err(format!(
                    "takes {:?} inputs, got {}",
                    n.op.arity(),
                    n.inputs.len()
                )));
            }
            let outs = if matches!(n.op, Op::Rnn { .. }) {
                1..=2
            } else {
                1..=1
            };
            if !outs.contains(&n.outputs.len()) {
                return Err(err(format!(
                    "defines {:?} outputs, got {}",
                    outs,
                    n.outputs.len()
                )));
            }
            for i in &n.inputs {
                if !defined.contains(i.as_str()) {
                    return Err(err(format!("reads `{i}` before it is defined")));
                }
            }
            for o in &n.outputs {
                if !defined.insert(o) {
                    return Err(err(format!("defines `{o}` a second time")));
                }
            }
        }
        if !defined.contains(self.output.as_str()) {
            return Err(ModelError::Format {
                path: "graph".to_string(),
                reason: format!("the output `{}` is never defined", self.output),
            });
        }
        Ok(())
    }
}
