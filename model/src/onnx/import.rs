//! ONNX graph to grim model: weight-bearing nodes (Conv, Gemm, MatMul, GRU, LSTM)
//! become [`Layer`]s with their initializers as weights and shapes from static shape
//! inference; the others become glue [`Op`]s. Constant biases added after a layer are
//! folded into it.

use super::attr::NodeRef;
use super::gates;
use super::proto::{data_type, DimValue, GraphProto, ModelProto, ValueInfoProto};
use super::tensor::{self, Tensor, Values};
use super::ImportOptions;
use crate::error::ModelError;
use crate::graph::{Graph, Node, Op};
use crate::layer::Layer;
use crate::shape;
use crate::{Body, Model};
use std::collections::{BTreeMap, BTreeSet};
use tir::spec::{Activation, Conv2dSpec, FcSpec, RnnCell, RnnSpec, WorkloadSpec};
use tir::workload::{GivenMatrix, GivenWeights};
use tir::Matrix;

/// Which layer a value is the raw output of (before any activation), for folding a
/// constant bias into it.
#[derive(Clone, Copy)]
struct BiasSlot {
    layer: usize,
}

/// The state of one import.
pub(crate) struct Importer<'g> {
    path: String,
    opset: i64,
    graph: &'g GraphProto,
    options: &'g ImportOptions,
    /// Constant values: initializers and Constant outputs.
    consts: BTreeMap<String, Tensor>,
    /// Shapes of grim values.
    shapes: BTreeMap<String, Vec<usize>>,
    /// ONNX value name -> grim value name, where they differ.
    alias: BTreeMap<String, String>,
    /// How often each ONNX value is read (by nodes and as a graph output).
    uses: BTreeMap<String, usize>,
    /// Every value name taken (for fresh names).
    taken: BTreeSet<String>,
    /// Declared shapes (`None` for symbolic dims) from value_info and outputs.
    declared: BTreeMap<String, Vec<Option<i64>>>,
    bias_slots: BTreeMap<String, BiasSlot>,
    /// How many Identity/Dropout nodes read each grim value (they read it
    /// transparently: their readers are its readers).
    passes: BTreeMap<String, usize>,
    layers: Vec<Layer>,
    nodes: Vec<Node>,
}

fn format_err(path: &str, reason: impl Into<String>) -> ModelError {
    ModelError::Format {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// The standard operator set's version.
fn opset_version(model: &ModelProto, path: &str) -> Result<i64, ModelError> {
    model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| {
            format_err(
                path,
                "imports no version of the standard ONNX operator set (opset_import)",
            )
        })
}

fn elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
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

/// A non-negative axis from a possibly negative one, for a rank (`inclusive`: the
/// rank itself is allowed, as in Flatten).
fn axis(a: i64, rank: usize, inclusive: bool) -> Option<usize> {
    let r = rank as i64;
    let a = if a < 0 { a + r } else { a };
    let hi = if inclusive { r } else { r - 1 };
    (0..=hi).contains(&a).then_some(a as usize)
}

/// Two equal values from a per-dimension attribute (`strides`, `dilations`).
fn same_pair(v: &[i64]) -> Option<usize> {
    match *v {
        [a, b] if a == b && a >= 0 => usize::try_from(a).ok(),
        _ => None,
    }
}

fn as_usizes(v: &[i64]) -> Option<Vec<usize>> {
    v.iter().map(|&d| usize::try_from(d).ok()).collect()
}

impl<'g> Importer<'g> {
    pub(crate) fn new(
        model: &'g ModelProto,
        path: &str,
        options: &'g ImportOptions,
    ) -> Result<Importer<'g>, ModelError> {
        let graph = model
            .graph
            .as_ref()
            .ok_or_else(|| format_err(path, "has no graph (not an ONNX model?)"))?;
        if model.ir_version <= 0 {
            return Err(format_err(
                path,
                "has no IR version (not an ONNX model, or a corrupt one)",
            ));
        }
        let opset = opset_version(model, path)?;
        if !graph.sparse_initializer.is_empty() {
            return Err(format_err(
                path,
                "has sparse initializers, which grim does not read",
            ));
        }
        let mut consts = BTreeMap::new();
        let mut taken = BTreeSet::new();
        for t in &graph.initializer {
            let value = tensor::decode(t)
                .map_err(|e| format_err(path, format!("initializer `{}` {e}", t.name)))?;
            if consts.insert(t.name.clone(), value).is_some() {
                return Err(format_err(
                    path,
                    format!("initializer `{}` is given twice", t.name),
                ));
            }
            taken.insert(t.name.clone());
        }
        let mut uses = BTreeMap::new();
        for n in &graph.node {
            for i in n.input.iter().filter(|i| !i.is_empty()) {
                *uses.entry(i.clone()).or_insert(0) += 1;
            }
            taken.extend(n.output.iter().cloned());
        }
        for o in &graph.output {
            *uses.entry(o.name.clone()).or_insert(0) += 1;
        }
        let mut declared = BTreeMap::new();
        for vi in graph.value_info.iter().chain(&graph.output) {
            if let Some(dims) = declared_dims(vi) {
                declared.insert(vi.name.clone(), dims);
            }
        }
        taken.extend(graph.input.iter().map(|i| i.name.clone()));
        Ok(Importer {
            path: path.to_string(),
            opset,
            graph,
            options,
            consts,
            shapes: BTreeMap::new(),
            alias: BTreeMap::new(),
            uses,
            taken,
            declared,
            bias_slots: BTreeMap::new(),
            passes: BTreeMap::new(),
            layers: Vec::new(),
            nodes: Vec::new(),
        })
    }

    /// Runs the import.
    pub(crate) fn run(mut self, name: &str) -> Result<Model, ModelError> {
        let (input, input_shape) = self.graph_input()?;
        self.shapes.insert(input.clone(), input_shape.clone());
        for (i, p) in self.graph.node.iter().enumerate() {
            let n = NodeRef::new(p, i);
            self.node(&n)?;
            self.check_declared(&n)?;
        }
        let output = self.graph_output()?;
        let model = Model {
            name: if self.graph.name.is_empty() {
                name.to_string()
            } else {
                self.graph.name.clone()
            },
            layers: self.layers,
            body: Body::Graph(Graph {
                input,
                input_shape,
                output,
                nodes: self.nodes,
            }),
        };
        model.validate()?;
        Ok(model)
    }

    fn graph_input(&self) -> Result<(String, Vec<usize>), ModelError> {
        let inputs: Vec<&ValueInfoProto> = self
            .graph
            .input
            .iter()
            .filter(|i| !self.consts.contains_key(&i.name))
            .collect();
        let vi = match inputs[..] {
            [one] => one,
            _ => {
                let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
                return Err(format_err(
                    &self.path,
                    format!(
                        "grim imports graphs with one input (not counting initializers); this one has {}: {names:?}",
                        inputs.len()
                    ),
                ));
            }
        };
        let bad = |reason: String| format_err(&self.path, format!("input `{}`: {reason}", vi.name));
        let tt = vi
            .r#type
            .as_ref()
            .and_then(|t| t.tensor_type.as_ref())
            .ok_or_else(|| bad("is not a tensor".to_string()))?;
        if tt.elem_type != data_type::FLOAT {
            return Err(bad(format!(
                "has element type {}, grim runs FLOAT models",
                data_type::name(tt.elem_type)
            )));
        }
        let file_dims: Option<Vec<Option<i64>>> = tt.shape.as_ref().map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(DimValue::DimValue(v)) => Some(v),
                    _ => None,
                })
                .collect()
        });
        let shape = match (&self.options.input_shape, file_dims) {
            (Some(given), Some(dims)) => {
                if given.len() != dims.len() {
                    return Err(bad(format!(
                        "the file declares rank {}, the given shape {given:?} has rank {}",
                        dims.len(),
                        given.len()
                    )));
                }
                for (i, (g, d)) in given.iter().zip(&dims).enumerate() {
                    if let Some(d) = d {
                        if *d != *g as i64 {
                            return Err(bad(format!(
                                "dim {i} is {d} in the file, the given shape says {g}"
                            )));
                        }
                    }
                }
                given.clone()
            }
            (Some(given), None) => given.clone(),
            (None, None) => {
                return Err(bad(
                    "has no shape in the file; give one (ImportOptions::input_shape)".to_string(),
                ))
            }
            (None, Some(dims)) => {
                let mut shape = Vec::with_capacity(dims.len());
                for (i, d) in dims.iter().enumerate() {
                    match d {
                        Some(v) if *v > 0 => shape.push(*v as usize),
                        Some(v) => return Err(bad(format!("dim {i} is {v}"))),
                        None if i == 0 => shape.push(self.options.batch),
                        None => {
                            return Err(bad(format!(
                                "dim {i} is symbolic; give the input shape (ImportOptions::input_shape)"
                            )))
                        }
                    }
                }
                shape
            }
        };
        if shape.contains(&0) || elements(&shape).is_none_or(|n| n > tensor::MAX_ELEMENTS) {
            return Err(bad(format!("shape {shape:?} is empty or too large")));
        }
        Ok((vi.name.clone(), shape))
    }

    fn graph_output(&self) -> Result<String, ModelError> {
        let name = match &self.options.output {
            Some(o) => {
                if !self.graph.output.iter().any(|v| v.name == *o) {
                    let names: Vec<&str> =
                        self.graph.output.iter().map(|v| v.name.as_str()).collect();
                    return Err(format_err(
                        &self.path,
                        format!("has no output `{o}` (its outputs: {names:?})"),
                    ));
                }
                o.clone()
            }
            None => self
                .graph
                .output
                .first()
                .map(|v| v.name.clone())
                .ok_or_else(|| format_err(&self.path, "the graph has no output"))?,
        };
        let resolved = self.resolve(&name);
        if self.shapes.contains_key(&resolved) {
            Ok(resolved)
        } else if self.consts.contains_key(&name) {
            Err(format_err(
                &self.path,
                format!("output `{name}` is a constant, not computed from the input"),
            ))
        } else {
            Err(format_err(
                &self.path,
                format!("output `{name}` is never computed"),
            ))
        }
    }

    fn resolve(&self, name: &str) -> String {
        self.alias
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    }

    /// A new value name based on `base`.
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

    /// A computed input of node `n` (not a constant): its grim name and shape.
    fn value(&self, n: &NodeRef, name: &str) -> Result<(String, Vec<usize>), ModelError> {
        let r = self.resolve(name);
        if let Some(s) = self.shapes.get(&r) {
            return Ok((r, s.clone()));
        }
        if self.consts.contains_key(name) {
            return Err(n.err(format!(
                "input `{name}` is a constant; grim takes constants only as weights, biases and shapes"
            )));
        }
        Err(n.err(format!(
            "reads `{name}`, which no earlier node defines (nodes must be in topological order)"
        )))
    }

    /// A constant input of node `n`.
    fn constant(&self, n: &NodeRef, name: &str, what: &str) -> Result<&Tensor, ModelError> {
        self.consts.get(name).ok_or_else(|| {
            n.err(format!(
                "input `{name}` ({what}) must be a constant (an initializer or a Constant), grim does not compute weights"
            ))
        })
    }

    fn floats<'t>(&self, n: &NodeRef, t: &'t Tensor, what: &str) -> Result<&'t [f32], ModelError> {
        t.floats().map_err(|e| n.err(format!("{what} {e}")))
    }

    /// Marks ONNX output `onnx` of `n` as the grim value `grim`.
    fn define(&mut self, n: &NodeRef, onnx: &str, grim: &str) -> Result<(), ModelError> {
        if self.shapes.contains_key(onnx)
            || self.alias.contains_key(onnx)
            || self.consts.contains_key(onnx)
        {
            return Err(n.err(format!("defines `{onnx}` a second time")));
        }
        if onnx != grim {
            self.alias.insert(onnx.to_string(), grim.to_string());
        }
        Ok(())
    }

    /// The grim name for ONNX output `i` of `n` (its own name, or a fresh one when
    /// the output is omitted).
    fn out_name(&mut self, n: &NodeRef, i: usize, what: &str) -> Result<String, ModelError> {
        match n.output(i) {
            Some(o) => {
                if self.shapes.contains_key(o)
                    || self.alias.contains_key(o)
                    || self.consts.contains_key(o)
                {
                    return Err(n.err(format!("defines `{o}` a second time")));
                }
                Ok(o.to_string())
            }
            None => Ok(self.fresh(&format!("{}:{what}", n.name))),
        }
    }

    /// How many nodes (and graph outputs) read grim value `v` under any of its ONNX
    /// names, not counting the Identity/Dropout nodes that only rename it.
    fn readers(&self, v: &str) -> usize {
        let reads: usize = self
            .uses
            .iter()
            .filter(|(name, _)| self.resolve(name) == v)
            .map(|(_, c)| c)
            .sum();
        reads - self.passes.get(v).copied().unwrap_or(0).min(reads)
    }

    /// Appends a grim node and records its output shapes.
    fn emit(
        &mut self,
        n: &NodeRef,
        name: String,
        op: Op,
        inputs: Vec<String>,
        outputs: Vec<String>,
    ) -> Result<(), ModelError> {
        let node = Node {
            name,
            op,
            inputs,
            outputs,
        };
        let ins: Vec<&[usize]> = node
            .inputs
            .iter()
            .map(|i| self.shapes.get(i).map(|s| &s[..]).unwrap_or(&[]))
            .collect();
        let outs = shape::node_outputs(&node, &self.layers, &ins).map_err(|e| match e {
            ModelError::Node { reason, .. } => n.err(reason),
            other => other,
        })?;
        for (o, s) in node.outputs.iter().zip(outs) {
            if elements(&s).is_none_or(|c| c > tensor::MAX_ELEMENTS) {
                return Err(n.err(format!(
                    "output shape {s:?} exceeds the {}-element limit",
                    tensor::MAX_ELEMENTS
                )));
            }
            self.taken.insert(o.clone());
            self.shapes.insert(o.clone(), s);
        }
        self.nodes.push(node);
        Ok(())
    }

    /// Emits a one-input, one-output glue op from ONNX input 0 to output 0.
    fn unary(&mut self, n: &NodeRef, op: Op) -> Result<(), ModelError> {
        let (x, _) = self.value(n, n.required_input(0, "X")?)?;
        let out = self.out_name(n, 0, "Y")?;
        self.emit(n, n.name.clone(), op, vec![x], vec![out])
    }

    /// A layer name based on the node's.
    fn layer_name(&self, n: &NodeRef) -> String {
        let base = if n.proto.name.is_empty() {
            format!("{}{}", n.proto.op_type.to_lowercase(), self.layers.len())
        } else {
            n.proto.name.clone()
        };
        let mut name = base.clone();
        let mut i = 1;
        while self.layers.iter().any(|l| l.name == name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        name
    }

    fn push_layer(&mut self, n: &NodeRef, spec: WorkloadSpec, weights: GivenWeights) -> usize {
        let name = self.layer_name(n);
        self.layers.push(Layer {
            name,
            spec,
            weights,
        });
        self.layers.len() - 1
    }

    fn check_declared(&self, n: &NodeRef) -> Result<(), ModelError> {
        for o in n.proto.output.iter().filter(|o| !o.is_empty()) {
            let (Some(want), Some(have)) =
                (self.declared.get(o), self.shapes.get(&self.resolve(o)))
            else {
                continue;
            };
            let fits = want.len() == have.len()
                && want
                    .iter()
                    .zip(have)
                    .all(|(w, h)| w.is_none_or(|w| w == *h as i64));
            if !fits {
                let shown: Vec<String> = want
                    .iter()
                    .map(|w| w.map_or("?".to_string(), |v| v.to_string()))
                    .collect();
                return Err(n.err(format!(
                    "computes `{o}` with shape {have:?}, the file declares [{}]",
                    shown.join(", ")
                )));
            }
        }
        Ok(())
    }

    fn node(&mut self, n: &NodeRef) -> Result<(), ModelError> {
        let p = n.proto;
        if !(p.domain.is_empty() || p.domain == "ai.onnx") {
            return Err(ModelError::Unsupported {
                node: n.name.clone(),
                op: format!("{}.{}", p.domain, p.op_type),
            });
        }
        match p.op_type.as_str() {
            "Conv" => self.conv(n),
            "Gemm" => self.gemm(n),
            "MatMul" => self.matmul(n),
            "GRU" => self.rnn(n, RnnCell::Gru),
            "LSTM" => self.rnn(n, RnnCell::Lstm),
            "Add" => self.add(n),
            "Relu" => {
                n.attrs(&[])?;
                self.unary(n, Op::Relu)
            }
            "Sigmoid" => {
                n.attrs(&[])?;
                self.unary(n, Op::Sigmoid)
            }
            "Tanh" => {
                n.attrs(&[])?;
                self.unary(n, Op::Tanh)
            }
            "MaxPool" | "AveragePool" => self.pool(n),
            "GlobalAveragePool" => {
                n.attrs(&[])?;
                self.unary(n, Op::GlobalAvgPool)
            }
            "Flatten" => self.flatten(n),
            "Reshape" => self.reshape(n),
            "Softmax" => self.softmax(n),
            "Concat" => self.concat(n),
            "Identity" => {
                n.attrs(&[])?;
                self.pass(n)
            }
            "Dropout" => self.dropout(n),
            "Constant" => self.constant_node(n),
            _ => Err(ModelError::Unsupported {
                node: n.name.clone(),
                op: p.op_type.clone(),
            }),
        }
    }

    /// Identity: output 0 is input 0.
    fn pass(&mut self, n: &NodeRef) -> Result<(), ModelError> {
        let x = n.required_input(0, "input")?;
        let out = match n.output(0) {
            Some(o) => o,
            None => return Ok(()),
        };
        if let Some(c) = self.consts.get(x).cloned() {
            if self.shapes.contains_key(out) || self.alias.contains_key(out) {
                return Err(n.err(format!("defines `{out}` a second time")));
            }
            self.consts.insert(out.to_string(), c);
            return Ok(());
        }
        let (v, _) = self.value(n, x)?;
        self.define(n, out, &v)?;
        *self.passes.entry(v).or_insert(0) += 1;
        Ok(())
    }

    fn dropout(&mut self, n: &NodeRef) -> Result<(), ModelError> {
        let a = n.attrs(&["ratio", "is_test", "seed"])?;
        if a.has("is_test") && a.int("is_test", 1)? == 0 {
            return Err(a.err(
                "is_test",
                "= 0 is training mode; grim imports inference graphs",
            ));
        }
        if let Some(t) = n.input(2) {
            let mode = self.constant(n, t, "training_mode")?;
            let on = match &mode.values {
                Values::I64(v) => v.iter().any(|&b| b != 0),
                Values::F32(v) => v.iter().any(|&b| b != 0.0),
            };
            if on {
                return Err(n.err("training_mode is true; grim imports inference graphs"));
            }
        }
        if let Some(mask) = n.output(1) {
            if self.uses.get(mask).copied().unwrap_or(0) > 0 {
                return Err(n.err(format!(
                    "its mask output `{mask}` is used; grim's Dropout is the identity"
                )));
            }
        }
        self.pass(n)
    }

    fn constant_node(&mut self, n: &NodeRef) -> Result<(), ModelError> {
        let a = n.attrs(&[
            "value",
            "value_float",
            "value_floats",
            "value_int",
            "value_ints",
        ])?;
        let t = if let Some(t) = a.tensor("value")? {
            tensor::decode(t).map_err(|e| a.err("value", e))?
        } else if a.has("value_float") {
            Tensor {
                shape: vec![],
                values: Values::F32(vec![a.float("value_float", 0.0)?]),
            }
        } else if let Some(v) = a.floats("value_floats")? {
            Tensor {
                shape: vec![v.len()],
                values: Values::F32(v.to_vec()),
            }
        } else if a.has("value_int") {
            Tensor {
                shape: vec![],
                values: Values::I64(vec![a.int("value_int", 0)?]),
            }
        } else if let Some(v) = a.ints("value_ints")? {
            Tensor {
                shape: vec![v.len()],
                values: Values::I64(v.to_vec()),
            }
        } else {
            return Err(n.err("has no value attribute"));
        };
        let out = n.required_output(0)?;
        if self.shapes.contains_key(out)
            || self.alias.contains_key(out)
            || self.consts.contains_key(out)
        {
            return Err(n.err(format!("defines `{out}` a second time")));
        }
        self.consts.insert(out.to_string(), t);
        Ok(())
    }

    fn conv(&mut self, n: &NodeRef) -> Result<(), ModelError> {
        let a = n.attrs(&[
            "auto_pad",
            "dilations",
            "group",
            "kernel_shape",
            "pads",
            "strides",
        ])?;
        let (x, xs) = self.value(n, n.required_input(0, "X")?)?;
        let [b, c, h, w] = match xs[..] {
            [b, c, h, w] => [b, c, h, w],
            _ => {
                return Err(n.err(format!(
                    "input X has shape {xs:?}; grim imports 2-D convolutions of NCHW inputs"
                )))
            }
        };
        let wt = self.constant(n, n.required_input(1, "W")?, "W")?;
        let [o, wc, kh, kw] = match wt.shape[..] {
            [o, wc, kh, kw] => [o, wc, kh, kw],
            _ => {
                return Err(n.err(format!(
                    "weight W has shape {:?}, expected [O, C, kh, kw]",
                    wt.shape
                )))
            }
        };
        let group = a.int("group", 1)?;
        if group != 1 {
            return Err(a.err("group", format!("= {group}; grim supports only group = 1")));
        }
        if wc != c {
            return Err(n.err(format!(
                "weight W has {wc} input channels, the input X {xs:?} has {c}"
            )));
        }
        if let Some(k) = a.ints("kernel_shape")? {
            if k != [kh as i64, kw as i64] {
                return Err(a.err(
                    "kernel_shape",
                    format!("{k:?} does not match the weight's {kh}x{kw}"),
                ));
            }
        }
        let stride = match a.ints("strides")? {
            None => 1,
            Some(s) => same_pair(s).filter(|&s| s > 0).ok_or_else(|| {
                a.err(
                    "strides",
                    format!("{s:?}; grim needs two equal positive strides"),
                )
            })?,
        };
        let dilation = match a.ints("dilations")? {
            None => 1,
            Some(d) => same_pair(d).filter(|&d| d > 0).ok_or_else(|| {
                a.err(
                    "dilations",
                    format!("{d:?}; grim needs two equal positive dilations"),
                )
            })?,
        };
        let auto_pad = a.string("auto_pad", "NOTSET")?;
        let pad = match auto_pad.as_str() {
            "NOTSET" => match a.ints("pads")? {
                None => 0,
                Some(p) => match *p {
                    [t, l, bo, r] if t == l && t == bo && t == r && t >= 0 => t as usize,
                    _ => {
                        return Err(a.err(
                            "pads",
                            format!("{p:?}; grim needs the same padding on all four sides"),
                        ))
                    }
                },
            },
            "VALID" => 0,
            "SAME_UPPER" | "SAME_LOWER" => {
                let total = |size: usize, k: usize| {
                    let out = size.div_ceil(stride);
                    ((out - 1) * stride + (k - 1) * dilation + 1).saturating_sub(size)
                };
                let (th, tw) = (total(h, kh), total(w, kw));
                if th != tw || th % 2 != 0 {
                    return Err(a.err(
                        "auto_pad",
                        format!("{auto_pad} needs uneven padding ({th} rows, {tw} columns); grim needs the same padding on all sides"),
                    ));
                }
                th / 2
            }
            other => return Err(a.err("auto_pad", format!("unknown value `{other}`"))),
        };
        let data = self.floats(n, wt, "weight W")?.to_vec();
        let bias = match n.input(2) {
            None => None,
            Some(bn) => {
                let bt = self.constant(n, bn, "B")?;
                if bt.len() != o {
                    return Err(n.err(format!("bias B has shape {:?}, expected [{o}]", bt.shape)));
                }
                Some(self.floats(n, bt, "bias B")?.to_vec())
            }
        };
        let spec = Conv2dSpec {
            batch: b,
            c,
            o,
            h,
            w,
            kh,
            kw,
            stride,
            pad,
            dilation,
            bias: bias.is_some(),
            act: Activation::None,
            sparse: None,
            seed: 0,
        };
        if spec.out_h().is_none() || spec.out_w().is_none() {
            return Err(n.err(format!(
                "the {kh}x{kw} kernel (dilation {dilation}, padding {pad}) does not fit the input {xs:?}"
            )));
        }
        let matrix =
            Matrix::new(o, c * kh * kw, data).map_err(|e| n.err(format!("weight W: {e}")))?;
        let layer = self.push_layer(
            n,
            WorkloadSpec::Conv2d(spec),
            GivenWeights {
                matrices: vec![GivenMatrix::Dense(matrix)],
                biases: bias.into_iter().collect(),
            },
        );
        let out = self.out_name(n, 0, "Y")?;
        self.emit(
            n,
            n.name.clone(),
            Op::Conv { layer },
            vec![x],
            vec![out.clone()],
        )?;
        self.bias_slots.insert(out, BiasSlot { layer });
        Ok(())
    }

    /// Adds an FC layer `W [m, k]` on `x` (any shape of `n * k` values).
    #[allow(clippy::too_many_arguments)]
    fn fc_layer(
        &mut self,
        n: &NodeRef,
        x: String,
        rows: usize,
        m: usize,
        k: usize,
        w: Vec<f32>,
        bias: Option<Vec<f32>>,
        out: String,
    ) -> Result<usize, ModelError> {
        let spec = FcSpec {
            m,
            k,
            n: rows,
            bias: bias.is_some(),
            act: Activation::None,
            sparse: None,
            seed: 0,
        };
        let matrix = Matrix::new(m, k, w).map_err(|e| n.err(format!("weight: {e}")))?;
        let layer = self.push_layer(
            n,
            WorkloadSpec::Fc(spec),
            GivenWeights {
                matrices: vec![GivenMatrix::Dense(matrix)],
                biases: bias.into_iter().collect(),
            },
        );
        self.emit(n, n.name.clone(), Op::Fc { layer }, vec![x], vec![out])?;
        Ok(layer)
    }

    fn gemm(&mut self, n: &NodeRef) -> Result<(), ModelError> {
        let a = n.attrs(&["alpha", "beta", "transA", "transB"])?;
        if a.int("transA", 0)? != 0 {
            return Err(a.err(
                "transA",
                "= 1 (a transposed input A) is not supported; grim's FC takes A as [batch, K]",
            ));
        }
        let alpha = a.float("alpha", 1.0)?;
        let beta = a.float("beta", 1.0)?;
        let trans_b = a.int("transB", 0)? != 0;
        let (x, xs) = self.value(n, n.required_input(0, "A")?)?;
        let [rows, k] = match xs[..] {
            [r, k] => [r, k],
            _ => return Err(n.err(format!("input A has shape {xs:?}, Gemm needs 2-D"))),
        };
        let bt = self.constant(n, n.required_input(1, "B")?, "B")?;
        let (m, wk) = match (&bt.shape[..], trans_b) {
            (&[m, wk], true) => (m, wk),
            (&[wk, m], false) => (m, wk),
            _ => return Err(n.err(format!("weight B has shape {:?}, Gemm needs 2-D", bt.shape))),
        };
        if wk != k {
            return Err(n.err(format!(
                "weight B {:?} (transB = {}) takes {wk} inputs, the input A {xs:?} has {k}",
                bt.shape,
                i32::from(trans_b)
            )));
        }
        let raw = self.floats(n, bt, "weight B")?;
        let mut w = if trans_b {
            raw.to_vec()
        } else {
            transpose(raw, k, m)
        };
        if alpha != 1.0 {
            w.iter_mut().for_each(|v| *v *= alpha);
        }
        let bias = match n.input(2) {
            None => None,
            Some(cn) => {
                let ct = self.constant(n, cn, "C")?;
                let c = self.floats(n, ct, "bias C")?;
                let per_out: Vec<f32> = match ct.shape[..] {
                    [] | [1] | [1, 1] => vec![c[0]; m],
                    [len] | [1, len] if len == m => c.to_vec(),
                    _ => {
                        return Err(n.err(format!(
                            "bias C has shape {:?}; grim takes a per-output bias ([{m}], [1, {m}] or a scalar)",
                            ct.shape
                        )))
                    }
                };
                Some(per_out.into_iter().map(|v| v * beta).collect())
            }
        };
        let out = self.out_name(n, 0, "Y")?;
        let layer = self.fc_layer(n, x, rows, m, k, w, bias, out.clone())?;
        self.bias_slots.insert(out, BiasSlot { layer });
        Ok(())
    }

    fn matmul(&mut self, n: &NodeRef) -> Result<(), ModelError> {
        n.attrs(&[])?;
        let (x, xs) = self.value(n, n.required_input(0, "A")?)?;
        let bt = self.constant(n, n.required_input(1, "B")?, "B")?;
        let (k, m) = match bt.shape[..] {
            [k, m] => (k, m),
            _ => {
                return Err(n.err(format!(
                    "weight B has shape {:?}; grim imports MatMul by a constant 2-D matrix",
                    bt.shape
                )))
            }
        };
        let (lead, last) = match xs.split_last() {
            Some((last, lead)) => (lead.to_vec(), *last),
            None => return Err(n.err("input A is a scalar")),
        };
        if last != k {
            return Err(n.err(format!(
                "input A {xs:?} has {last} columns, the weight B {:?} has {k} rows",
                bt.shape
            )));
        }
        let rows = elements(&lead).ok_or_else(|| n.err("input too large"))?;
        let w = transpose(self.floats(n, bt, "weight B")?, k, m);
        let mut onnx_shape = lead;
        onnx_shape.push(m);
        let out = self.out_name(n, 0, "Y")?;
        let layer = if onnx_shape == [rows, m] {
            self.fc_layer(n, x, rows, m, k, w, None, out.clone())?
        } else {
            // grim's FC gives [rows, m]; restore ONNX's rank.
            let flat = self.fresh(&format!("{}:2d", n.name));
            let layer = self.fc_layer(n, x, rows, m, k, w, None, flat.clone())?;
            let shape = onnx_shape.iter().map(|&d| d as i64).collect();
            self.emit(
                n,
                format!("{}/reshape", n.name),
                Op::Reshape { shape },
                vec![flat],
                vec![out.clone()],
            )?;
            layer
        };
        self.bias_slots.insert(out, BiasSlot { layer });
        Ok(())
    }

    /// The per-output bias a constant adds to a layer's output of shape `out`, if it
    /// broadcasts as one (one value per FC output or conv channel, or one value).
    fn bias_vector(layer: &Layer, c: &Tensor, out: &[usize]) -> Option<Vec<f32>> {
        let vals = c.floats().ok()?;
        if c.shape.len() > out.len() {
            return None;
        }
        // Drop leading 1s: they do not change the broadcast when rank(c) <= rank(out).
        let dims: Vec<usize> = c.shape.iter().copied().skip_while(|&d| d == 1).collect();
        let outputs = match &layer.spec {
            WorkloadSpec::Fc(s) => s.m,
            WorkloadSpec::Conv2d(s) => s.o,
            _ => return None,
        };
        if dims.is_empty() {
            return Some(vec![vals[0]; outputs]);
        }
        let fits = match &layer.spec {
            WorkloadSpec::Fc(s) => dims == [s.m] && out.last() == Some(&s.m),
            WorkloadSpec::Conv2d(s) => dims == [s.o, 1, 1] && out.len() == 4,
            _ => false,
        };
        fits.then(|| vals.to_vec())
    }

    fn add(&mut self, n: &NodeRef) -> Result<(), ModelError> {
        n.attrs(&[])?;
        let a = n.required_input(0, "A")?;
        let b = n.required_input(1, "B")?;
        let out = n.required_output(0)?;
        let (ca, cb) = (self.consts.contains_key(a), self.consts.contains_key(b));
        match (ca, cb) {
            (true, true) => {
                Err(n.err("adds two constants; grim does not fold constant expressions"))
            }
            (false, false) => {
                let (va, sa) = self.value(n, a)?;
                let (vb, sb) = self.value(n, b)?;
                // Put the larger operand first; grim's Add broadcasts only its second.
                let ((va, sa), (vb, sb)) = if elements(&sa) < elements(&sb) {
                    ((vb, sb), (va, sa))
                } else {
                    ((va, sa), (vb, sb))
                };
                let ok = sa == sb
                    || (elements(&sb) == Some(1) && sb.len() <= sa.len())
                    || (sa.len() == 4
                        && sb.len() <= 4
                        && sb.iter().copied().skip_while(|&d| d == 1).eq([sa[1], 1, 1]));
                if !ok {
                    return Err(n.err(format!(
                        "broadcasting {sa:?} with {sb:?} is not supported (equal shapes, one value, or one value per channel)"
                    )));
                }
                let out = self.out_name(n, 0, "C")?;
                self.emit(n, n.name.clone(), Op::Add, vec![va, vb], vec![out])
            }
            _ => {
                let (cname, vname) = if ca { (a, b) } else { (b, a) };
                let (v, vs) = self.value(n, vname)?;
                let c = self.constant(n, cname, "bias")?.clone();
                let only_reader = self.readers(&v) == 1;
                let slot = self.bias_slots.get(&v).copied().filter(|_| only_reader);
                let add = slot.and_then(|s| {
                    self.layers
                        .get(s.layer)
                        .and_then(|l| Self::bias_vector(l, &c, &vs))
                        .map(|add| (s.layer, add))
                });
                let Some((li, add)) = add else {
                    return Err(n.err(format!(
                        "adds the constant `{cname}` {:?} to `{vname}` {vs:?}; grim folds a constant only into the bias of the Conv, Gemm or MatMul whose output it alone reads",
                        c.shape
                    )));
                };
                let layer = &mut self.layers[li];
                match &mut layer.spec {
                    WorkloadSpec::Fc(s) => s.bias = true,
                    WorkloadSpec::Conv2d(s) => s.bias = true,
                    _ => {}
                }
                match layer.weights.biases.first_mut() {
                    Some(old) => old.iter_mut().zip(&add).for_each(|(o, a)| *o += a),
                    None => layer.weights.biases.push(add),
                }
                self.define(n, out, &v)?;
                self.bias_slots.remove(&v);
                Ok(())
            }
        }
    }

    fn pool(&mut self, n: &NodeRef) -> Result<(), ModelError> {
        let max = n.proto.op_type == "MaxPool";
        let known: &[&str] = if max {
            &[
                "auto_pad",
                "ceil_mode",
                "dilations",
                "kernel_shape",
                "pads",
                "storage_order",
                "strides",
            ]
        } else {
            &[
                "auto_pad",
                "ceil_mode",
                "count_include_pad",
                "dilations",
                "kernel_shape",
                "pads",
                "strides",
            ]
        };
        let a = n.attrs(known)?;
        let (x, xs) = self.value(n, n.required_input(0, "X")?)?;
        if xs.len() != 4 {
            return Err(n.err(format!(
                "input X has shape {xs:?}; grim pools NCHW (4-D) inputs"
            )));
        }
        let pair = |name: &str, default: [usize; 2]| -> Result<[usize; 2], ModelError> {
            match a.ints(name)? {
                None => Ok(default),
                Some(v) => match as_usizes(v).as_deref() {
                    Some(&[p, q]) if p > 0 && q > 0 => Ok([p, q]),
                    _ => Err(a.err(name, format!("{v:?}; expected two positive values"))),
                },
            }
        };
        if !a.has("kernel_shape") {
            return Err(n.err("attribute `kernel_shape` is missing"));
        }
        let kernel = pair("kernel_shape", [1, 1])?;
        let stride = pair("strides", [1, 1])?;
        if pair("dilations", [1, 1])? != [1, 1] {
            return Err(a.err("dilations", "other than 1 are not supported"));
        }
        if a.int("ceil_mode", 0)? != 0 {
            return Err(a.err("ceil_mode", "= 1 is not supported (grim rounds down)"));
        }
        let auto_pad = a.string("auto_pad", "NOTSET")?;
        let pad = match auto_pad.as_str() {
            "NOTSET" => match a.ints("pads")? {
                None => [0; 4],
                Some(p) => match as_usizes(p).as_deref() {
                    Some(&[t, l, b, r]) => [t, l, b, r],
                    _ => return Err(a.err("pads", format!("{p:?}; expected 4 values >= 0"))),
                },
            },
            "VALID" => [0; 4],
            "SAME_UPPER" | "SAME_LOWER" => {
                let total = |size: usize, k: usize, s: usize| {
                    ((size.div_ceil(s) - 1) * s + k).saturating_sub(size)
                };
                let th = total(xs[2], kernel[0], stride[0]);
                let tw = total(xs[3], kernel[1], stride[1]);
                if auto_pad == "SAME_UPPER" {
                    [th / 2, tw / 2, th - th / 2, tw - tw / 2]
                } else {
                    [th - th / 2, tw - tw / 2, th / 2, tw / 2]
                }
            }
            other => return Err(a.err("auto_pad", format!("unknown value `{other}`"))),
        };
        if !max && a.int("count_include_pad", 0)? != 0 && pad.iter().any(|&p| p > 0) {
            return Err(a.err(
                "count_include_pad",
                "= 1 with padding is not supported (grim leaves padding out of the average)",
            ));
        }
        if let Some(ind) = n.output(1) {
            if self.uses.get(ind).copied().unwrap_or(0) > 0 {
                return Err(n.err(format!(
                    "its Indices output `{ind}` is used; grim's MaxPool has none"
                )));
            }
        }
        let op = if max {
            Op::MaxPool {
                kernel,
                stride,
                pad,
            }
        } else {
            Op::AvgPool {
                kernel,
                stride,
                pad,
            }
        };
        let out = self.out_name(n, 0, "Y")?;
        self.emit(n, n.name.clone(), op, vec![x], vec![out])
    }

    fn flatten(&mut self, n: &NodeRef) -> Result<(), ModelError> {
        let a = n.attrs(&["axis"])?;
        let (x, xs) = self.value(n, n.required_input(0, "input")?)?;
        let raw = a.int("axis", 1)?;
        let ax = axis(raw, xs.len(), true)
            .ok_or_else(|| a.err("axis", format!("{raw} is out of range for shape {xs:?}")))?;
        let out = self.out_name(n, 0, "output")?;
        self.emit(
            n,
            n.name.clone(),
            Op::Flatten { axis: ax },
            vec![x],
            vec![out],
        )
    }

    fn reshape(&mut self, n: &NodeRef) -> Result<(), ModelError> {
        let a = n.attrs(&["allowzero"])?;
        let allow_zero = a.int("allowzero", 0)? != 0;
        let data = n.required_input(0, "data")?;
        let st = self.constant(n, n.required_input(1, "shape")?, "shape")?;
        let target = st.ints().map_err(|e| n.err(format!("shape {e}")))?.to_vec();
        if allow_zero && target.contains(&0) {
            return Err(a.err(
                "allowzero",
                "= 1 with a 0 in the shape (an empty tensor) is not supported",
            ));
        }
        if let Some(c) = self.consts.get(data).cloned() {
            let dims = shape::reshape(&c.shape, &target).map_err(|e| n.err(e))?;
            let out = n.required_output(0)?;
            self.consts.insert(
                out.to_string(),
                Tensor {
                    shape: dims,
                    values: c.values,
                },
            );
            return Ok(());
        }
        let (x, xs) = self.value(n, data)?;
        let dims = shape::reshape(&xs, &target).map_err(|e| n.err(e))?;
        let out = self.out_name(n, 0, "reshaped")?;
        let shape = dims.iter().map(|&d| d as i64).collect();
        self.emit(n, n.name.clone(), Op::Reshape { shape }, vec![x], vec![out])
    }

    fn softmax(&mut self, n: &NodeRef) -> Result<(), ModelError> {
        let a = n.attrs(&["axis"])?;
        let (x, xs) = self.value(n, n.required_input(0, "input")?)?;
        let raw = a.int("axis", if self.opset < 13 { 1 } else { -1 })?;
        let ax = axis(raw, xs.len(), false)
            .ok_or_else(|| a.err("axis", format!("{raw} is out of range for shape {xs:?}")))?;
        let out = self.out_name(n, 0, "output")?;
        let inner: usize = xs[ax + 1..].iter().product();
        if self.opset >= 13 || inner == 1 {
            return self.emit(
                n,
                n.name.clone(),
                Op::Softmax { axis: ax },
                vec![x],
                vec![out],
            );
        }
        // Before opset 13, Softmax normalizes over all axes from `axis` on.
        let outer: usize = xs[..ax].iter().product();
        let flat = self.fresh(&format!("{}:2d", n.name));
        let soft = self.fresh(&format!("{}:softmax", n.name));
        self.emit(
            n,
            format!("{}/flatten", n.name),
            Op::Reshape {
                shape: vec![outer as i64, (xs[ax] * inner) as i64],
            },
            vec![x],
            vec![flat.clone()],
        )?;
        self.emit(
            n,
            n.name.clone(),
            Op::Softmax { axis: 1 },
            vec![flat],
            vec![soft.clone()],
        )?;
        self.emit(
            n,
            format!("{}/unflatten", n.name),
            Op::Reshape {
                shape: xs.iter().map(|&d| d as i64).collect(),
            },
            vec![soft],
            vec![out],
        )
    }

    fn concat(&mut self, n: &NodeRef) -> Result<(), ModelError> {
        let a = n.attrs(&["axis"])?;
        if !a.has("axis") {
            return Err(n.err("attribute `axis` is missing"));
        }
        let mut ins = Vec::new();
        let mut rank = 0;
        for i in n.proto.input.iter().filter(|i| !i.is_empty()) {
            let (v, s) = self.value(n, i)?;
            rank = s.len();
            ins.push(v);
        }
        if ins.is_empty() {
            return Err(n.err("has no inputs"));
        }
        let raw = a.int("axis", 0)?;
        let ax = axis(raw, rank, false)
            .ok_or_else(|| a.err("axis", format!("{raw} is out of range for rank {rank}")))?;
        let out = self.out_name(n, 0, "concat_result")?;
        self.emit(n, n.name.clone(), Op::Concat { axis: ax }, ins, vec![out])
    }

    /// A zero-or-absent optional constant input (initial states, peepholes).
    fn zero_input(&self, n: &NodeRef, i: usize, what: &str) -> Result<(), ModelError> {
        let Some(name) = n.input(i) else {
            return Ok(());
        };
        let zero = self
            .consts
            .get(name)
            .and_then(|t| t.floats().ok())
            .is_some_and(|v| v.iter().all(|&x| x == 0.0));
        if zero {
            Ok(())
        } else {
            Err(n.err(format!(
                "input {i} ({what}) `{name}` is given and not a zero constant; grim's recurrent layers start from zero state without {what} other than zero"
            )))
        }
    }

    fn rnn(&mut self, n: &NodeRef, cell: RnnCell) -> Result<(), ModelError> {
        let known: &[&str] = match cell {
            RnnCell::Gru => &[
                "activation_alpha",
                "activation_beta",
                "activations",
                "clip",
                "direction",
                "hidden_size",
                "layout",
                "linear_before_reset",
            ],
            RnnCell::Lstm => &[
                "activation_alpha",
                "activation_beta",
                "activations",
                "clip",
                "direction",
                "hidden_size",
                "input_forget",
                "layout",
            ],
        };
        let a = n.attrs(known)?;
        for name in ["activation_alpha", "activation_beta", "clip"] {
            if a.has(name) {
                return Err(a.err(
                    name,
                    "is not supported (grim uses the default activations without clipping)",
                ));
            }
        }
        let defaults: &[&str] = match cell {
            RnnCell::Gru => &["sigmoid", "tanh"],
            RnnCell::Lstm => &["sigmoid", "tanh", "tanh"],
        };
        if let Some(acts) = a.strings("activations")? {
            let lower: Vec<String> = acts.iter().map(|s| s.to_lowercase()).collect();
            if lower != defaults {
                return Err(a.err(
                    "activations",
                    format!("{acts:?}; grim supports only the defaults {defaults:?}"),
                ));
            }
        }
        let direction = a.string("direction", "forward")?;
        if direction != "forward" {
            return Err(a.err(
                "direction",
                format!("= {direction}; grim supports only forward"),
            ));
        }
        if a.int("layout", 0)? != 0 {
            return Err(a.err("layout", "= 1 (batch-first) is not supported"));
        }
        if cell == RnnCell::Gru {
            let lbr = a.int("linear_before_reset", 0)?;
            if lbr != 1 {
                return Err(a.err(
                    "linear_before_reset",
                    format!("= {lbr}; grim's GRU (like PyTorch's) applies the reset gate after the recurrent product, which is linear_before_reset = 1"),
                ));
            }
        }
        if cell == RnnCell::Lstm && a.int("input_forget", 0)? != 0 {
            return Err(a.err("input_forget", "= 1 (coupled gates) is not supported"));
        }
        let (x, xs) = self.value(n, n.required_input(0, "X")?)?;
        let [_, batch, input] = match xs[..] {
            [t, b, i] => [t, b, i],
            _ => {
                return Err(n.err(format!(
                    "input X has shape {xs:?}, expected [seq_length, batch, input_size]"
                )))
            }
        };
        let g = cell.gates();
        let wt = self.constant(n, n.required_input(1, "W")?, "W")?;
        let rt = self.constant(n, n.required_input(2, "R")?, "R")?;
        let hidden = match rt.shape[..] {
            [1, gh, h] if gh == g * h && h > 0 => h,
            _ => {
                return Err(n.err(format!(
                    "recurrence weight R has shape {:?}, expected [1, {g}*hidden, hidden]",
                    rt.shape
                )))
            }
        };
        if wt.shape != [1, g * hidden, input] {
            return Err(n.err(format!(
                "weight W has shape {:?}; with hidden {hidden} and the input X {xs:?} it must be [1, {}, {input}]",
                wt.shape,
                g * hidden
            )));
        }
        if a.has("hidden_size") {
            let hs = a.int("hidden_size", 0)?;
            if hs != hidden as i64 {
                return Err(a.err(
                    "hidden_size",
                    format!("= {hs}, but the weights have hidden size {hidden}"),
                ));
            }
        }
        let w_ih = gates::to_tir(cell, self.floats(n, wt, "weight W")?, hidden * input);
        let w_hh = gates::to_tir(cell, self.floats(n, rt, "weight R")?, hidden * hidden);
        let (b_ih, b_hh) = match n.input(3) {
            None => (vec![0.0; g * hidden], vec![0.0; g * hidden]),
            Some(bn) => {
                let bt = self.constant(n, bn, "B")?;
                if bt.shape != [1, 2 * g * hidden] {
                    return Err(n.err(format!(
                        "bias B has shape {:?}, expected [1, {}]",
                        bt.shape,
                        2 * g * hidden
                    )));
                }
                let b = self.floats(n, bt, "bias B")?;
                let (wb, rb) = b.split_at(g * hidden);
                (
                    gates::to_tir(cell, wb, hidden),
                    gates::to_tir(cell, rb, hidden),
                )
            }
        };
        if let Some(s) = n.input(4) {
            return Err(n.err(format!(
                "input 4 (sequence_lens) `{s}` is given; grim runs every sequence to its full length"
            )));
        }
        self.zero_input(n, 5, "initial_h")?;
        if cell == RnnCell::Lstm {
            self.zero_input(n, 6, "initial_c")?;
            self.zero_input(n, 7, "peepholes P")?;
            if let Some(yc) = n.output(2) {
                if self.uses.get(yc).copied().unwrap_or(0) > 0 {
                    return Err(n.err(format!(
                        "its cell state output Y_c `{yc}` is used; grim's LSTM exposes Y and Y_h only"
                    )));
                }
            }
        }
        let spec = RnnSpec {
            cell,
            hidden,
            input,
            batch,
            sparse: None,
            seed: 0,
        };
        let mat = |rows: usize, cols: usize, d: Vec<f32>| {
            Matrix::new(rows, cols, d)
                .map(GivenMatrix::Dense)
                .map_err(|e| n.err(format!("weights: {e}")))
        };
        let weights = GivenWeights {
            matrices: vec![
                mat(g * hidden, input, w_ih)?,
                mat(g * hidden, hidden, w_hh)?,
            ],
            biases: vec![b_ih, b_hh],
        };
        let layer = self.push_layer(n, WorkloadSpec::Rnn(spec), weights);
        let y = self.out_name(n, 0, "Y")?;
        let yh = self.out_name(n, 1, "Y_h")?;
        self.emit(n, n.name.clone(), Op::Rnn { layer }, vec![x], vec![y, yh])
    }
}

/// The declared dims of a value (`None` for symbolic ones), if it has a tensor type
/// with a shape.
fn declared_dims(vi: &ValueInfoProto) -> Option<Vec<Option<i64>>> {
    let shape = vi.r#type.as_ref()?.tensor_type.as_ref()?.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match d.value {
                Some(DimValue::DimValue(v)) => Some(v),
                _ => None,
            })
            .collect(),
    )
}
