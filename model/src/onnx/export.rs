//! Grim model to ONNX (opset 13): layers become Conv, Gemm, GRU and LSTM nodes with
//! their effective dense weights as initializers (a BCR layer's pruned entries are
//! zeros) and their fused activation as a following node; glue ops map one to one,
//! with Reshape nodes where grim's implicit reshapes (an FC reading any shape, an
//! Add broadcasting one value or one value per channel) need ONNX to be explicit.

use super::gates;
use super::proto::{
    attribute_type, data_type, AttributeProto, DimValue, Dimension, GraphProto, ModelProto,
    NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor,
    ValueInfoProto,
};
use super::tensor::{f32_tensor, i64_tensor};
use crate::error::ModelError;
use crate::graph::{Graph, Node, Op};
use crate::layer::Layer;
use crate::shape;
use crate::{Body, Model};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use tir::spec::{Activation, RnnCell, WorkloadSpec};

/// The ONNX opset written.
pub const OPSET: i64 = 13;
/// The ONNX IR version written (that of opset 13).
pub const IR_VERSION: i64 = 7;

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: attribute_type::INT,
        i: v,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: attribute_type::INTS,
        ints: v.iter().map(|&d| d as i64).collect(),
        ..Default::default()
    }
}

fn value_info(name: &str, shape: &[usize]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto {
                    dim: shape
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(DimValue::DimValue(d as i64)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

struct Writer<'m> {
    layers: &'m [Layer],
    shapes: BTreeMap<String, Vec<usize>>,
    taken: BTreeSet<String>,
    node_names: BTreeSet<String>,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
}

impl Writer<'_> {
    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut i = 1;
        while self.taken.contains(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    fn push(
        &mut self,
        name: &str,
        op: &str,
        inputs: Vec<String>,
        outputs: Vec<String>,
        attribute: Vec<AttributeProto>,
    ) {
        let mut node_name = name.to_string();
        let mut i = 1;
        while !self.node_names.insert(node_name.clone()) {
            node_name = format!("{name}_{i}");
            i += 1;
        }
        self.nodes.push(NodeProto {
            input: inputs,
            output: outputs,
            name: node_name,
            op_type: op.to_string(),
            attribute,
            ..Default::default()
        });
    }

    fn init_f32(&mut self, base: &str, shape: &[usize], data: &[f32]) -> String {
        let name = self.fresh(base);
        self.inits.push(f32_tensor(&name, shape, data));
        name
    }

    /// A Reshape of `x` to `shape`, returning the new value's name.
    fn reshape(&mut self, node: &str, x: &str, shape: &[usize]) -> String {
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let sname = self.fresh(&format!("{node}.shape"));
        self.inits.push(i64_tensor(&sname, &[dims.len()], &dims));
        let out = self.fresh(&format!("{node}.reshaped"));
        self.push(
            &format!("{node}/reshape"),
            "Reshape",
            vec![x.to_string(), sname],
            vec![out.clone()],
            vec![],
        );
        out
    }

    fn shape(&self, n: &Node, v: &str) -> Result<Vec<usize>, ModelError> {
        self.shapes.get(v).cloned().ok_or_else(|| ModelError::Node {
            node: n.name.clone(),
            op: n.op.name().to_string(),
            reason: format!("`{v}` is not defined"),
        })
    }

    /// The name a layer op writes before its activation, and the activation node.
    fn with_act(
        &mut self,
        n: &Node,
        act: Activation,
        out: &str,
        emit: impl FnOnce(&mut Self, String),
    ) {
        let op = match act {
            Activation::None => None,
            Activation::Relu => Some("Relu"),
            Activation::Sigmoid => Some("Sigmoid"),
            Activation::Tanh => Some("Tanh"),
        };
        match op {
            None => emit(self, out.to_string()),
            Some(op) => {
                let pre = self.fresh(&format!("{}.pre_act", n.name));
                emit(self, pre.clone());
                self.push(
                    &format!("{}/act", n.name),
                    op,
                    vec![pre],
                    vec![out.to_string()],
                    vec![],
                );
            }
        }
    }

    fn layer_node(&mut self, n: &Node, index: usize) -> Result<(), ModelError> {
        let bad = |reason: String| ModelError::Node {
            node: n.name.clone(),
            op: n.op.name().to_string(),
            reason,
        };
        let layer = self
            .layers
            .get(index)
            .ok_or_else(|| bad(format!("no layer {index}")))?;
        let x = n
            .inputs
            .first()
            .cloned()
            .ok_or_else(|| bad("no input".into()))?;
        let out = n
            .outputs
            .first()
            .cloned()
            .ok_or_else(|| bad("no output".into()))?;
        let lname = layer.name.clone();
        match (&n.op, &layer.spec) {
            (Op::Fc { .. }, WorkloadSpec::Fc(s)) => {
                let xs = self.shape(n, &x)?;
                let a = if xs == [s.n, s.k] {
                    x
                } else {
                    self.reshape(&n.name, &x, &[s.n, s.k])
                };
                let w = layer.dense(0)?;
                let wn = self.init_f32(&format!("{lname}.W"), &[s.m, s.k], w.data());
                let mut ins = vec![a, wn];
                if s.bias {
                    let b = layer.bias(0)?.to_vec();
                    ins.push(self.init_f32(&format!("{lname}.B"), &[s.m], &b));
                }
                let name = n.name.clone();
                self.with_act(n, s.act, &out, |w, o| {
                    w.push(&name, "Gemm", ins, vec![o], vec![int("transB", 1)])
                });
            }
            (Op::Conv { .. }, WorkloadSpec::Conv2d(s)) => {
                let w = layer.dense(0)?;
                let wn = self.init_f32(&format!("{lname}.W"), &[s.o, s.c, s.kh, s.kw], w.data());
                let mut ins = vec![x, wn];
                if s.bias {
                    let b = layer.bias(0)?.to_vec();
                    ins.push(self.init_f32(&format!("{lname}.B"), &[s.o], &b));
                }
                let attrs = vec![
                    ints("kernel_shape", &[s.kh, s.kw]),
                    ints("strides", &[s.stride, s.stride]),
                    ints("pads", &[s.pad; 4]),
                    ints("dilations", &[s.dilation, s.dilation]),
                    int("group", 1),
                ];
                let name = n.name.clone();
                self.with_act(n, s.act, &out, |w, o| {
                    w.push(&name, "Conv", ins, vec![o], attrs)
                });
            }
            (Op::Rnn { .. }, WorkloadSpec::Rnn(s)) => {
                let g = s.cell.gates();
                let h = s.hidden;
                let w_ih = gates::to_onnx(s.cell, layer.dense(0)?.data(), h * s.input);
                let w_hh = gates::to_onnx(s.cell, layer.dense(1)?.data(), h * h);
                let mut b = gates::to_onnx(s.cell, layer.bias(0)?, h);
                b.extend(gates::to_onnx(s.cell, layer.bias(1)?, h));
                let wn = self.init_f32(&format!("{lname}.W"), &[1, g * h, s.input], &w_ih);
                let rn = self.init_f32(&format!("{lname}.R"), &[1, g * h, h], &w_hh);
                let bn = self.init_f32(&format!("{lname}.B"), &[1, 2 * g * h], &b);
                let (op, mut attrs) = match s.cell {
                    RnnCell::Gru => ("GRU", vec![int("linear_before_reset", 1)]),
                    RnnCell::Lstm => ("LSTM", vec![]),
                };
                attrs.push(int("hidden_size", h as i64));
                self.push(&n.name, op, vec![x, wn, rn, bn], n.outputs.clone(), attrs);
            }
            (op, spec) => {
                return Err(bad(format!(
                    "op {} cannot run a `{}` layer",
                    op.name(),
                    spec.kind()
                )))
            }
        }
        Ok(())
    }

    fn node(&mut self, n: &Node) -> Result<(), ModelError> {
        if let Some(l) = n.op.layer() {
            return self.layer_node(n, l);
        }
        let ins = n.inputs.clone();
        let outs = n.outputs.clone();
        let name = n.name.clone();
        let pool_attrs = |kernel: &[usize; 2], stride: &[usize; 2], pad: &[usize; 4]| {
            vec![
                ints("kernel_shape", kernel),
                ints("strides", stride),
                ints("pads", pad),
            ]
        };
        match &n.op {
            Op::Relu => self.push(&name, "Relu", ins, outs, vec![]),
            Op::Sigmoid => self.push(&name, "Sigmoid", ins, outs, vec![]),
            Op::Tanh => self.push(&name, "Tanh", ins, outs, vec![]),
            Op::Identity => self.push(&name, "Identity", ins, outs, vec![]),
            Op::MaxPool {
                kernel,
                stride,
                pad,
            } => self.push(&name, "MaxPool", ins, outs, pool_attrs(kernel, stride, pad)),
            Op::AvgPool {
                kernel,
                stride,
                pad,
            } => {
                let mut attrs = pool_attrs(kernel, stride, pad);
                attrs.push(int("count_include_pad", 0));
                self.push(&name, "AveragePool", ins, outs, attrs)
            }
            Op::GlobalAvgPool => self.push(&name, "GlobalAveragePool", ins, outs, vec![]),
            Op::Flatten { axis } => {
                self.push(&name, "Flatten", ins, outs, vec![int("axis", *axis as i64)])
            }
            Op::Reshape { shape } => {
                let sname = self.fresh(&format!("{name}.shape"));
                self.inits.push(i64_tensor(&sname, &[shape.len()], shape));
                let mut ins = ins;
                ins.push(sname);
                self.push(&name, "Reshape", ins, outs, vec![])
            }
            Op::Softmax { axis } => {
                self.push(&name, "Softmax", ins, outs, vec![int("axis", *axis as i64)])
            }
            Op::Concat { axis } => {
                self.push(&name, "Concat", ins, outs, vec![int("axis", *axis as i64)])
            }
            Op::Add => {
                let (a, b) = match &ins[..] {
                    [a, b] => (a.clone(), b.clone()),
                    _ => {
                        return Err(ModelError::Node {
                            node: name,
                            op: "Add".to_string(),
                            reason: "takes 2 inputs".to_string(),
                        })
                    }
                };
                let (sa, sb) = (self.shape(n, &a)?, self.shape(n, &b)?);
                let nb: usize = sb.iter().product();
                // The same cases, in the same order, as `ops::add`.
                let b = if sa == sb || (nb == 1 && sb.len() <= sa.len()) {
                    b
                } else if nb == 1 {
                    self.reshape(&name, &b, &[1])
                } else if sa.len() == 4 && nb == sa[1] && sb != [1, sa[1], 1, 1] {
                    self.reshape(&name, &b, &[1, sa[1], 1, 1])
                } else {
                    b
                };
                self.push(&name, "Add", vec![a, b], outs, vec![])
            }
            Op::Fc { .. } | Op::Conv { .. } | Op::Rnn { .. } => {}
        }
        Ok(())
    }
}

fn graph_proto(model: &Model, g: &Graph) -> Result<GraphProto, ModelError> {
    model.validate()?;
    let shapes = shape::graph_shapes(g, &model.layers)?;
    let taken: BTreeSet<String> = shapes.keys().cloned().collect();
    let mut w = Writer {
        layers: &model.layers,
        shapes,
        taken,
        node_names: BTreeSet::new(),
        nodes: Vec::new(),
        inits: Vec::new(),
    };
    for n in &g.nodes {
        w.node(n)?;
    }
    let out_shape = w.shapes.get(&g.output).cloned().unwrap_or_default();
    Ok(GraphProto {
        node: w.nodes,
        name: model.name.clone(),
        initializer: w.inits,
        input: vec![value_info(&g.input, &g.input_shape)],
        output: vec![value_info(&g.output, &out_shape)],
        doc_string: "written by grim".to_string(),
        ..Default::default()
    })
}

/// The ONNX form of a graph model (see the [module docs](super)).
pub fn to_proto(model: &Model) -> Result<ModelProto, ModelError> {
    let g = match &model.body {
        Body::Graph(g) => g,
        Body::Seq2Seq(_) => {
            return Err(ModelError::Format {
                path: format!("model `{}`", model.name),
                reason: "is an encoder-decoder with greedy decoding; only graph models can be written as ONNX".to_string(),
            })
        }
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "grim".to_string(),
        producer_version: env!("CARGO_PKG_VERSION").to_string(),
        graph: Some(graph_proto(model, g)?),
        ..Default::default()
    })
}

/// Writes a graph model as an `.onnx` file (atomically: a temporary file, then a
/// rename).
pub fn export(model: &Model, path: &Path) -> Result<(), ModelError> {
    let bytes = to_proto(model)?.encode_to_vec();
    let tmp = path.with_extension("onnx.tmp-grim");
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| ModelError::Io { path: p, source }
    };
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}
