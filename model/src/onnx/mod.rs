//! ONNX models in and out.
//!
//! [`import`] reads an `.onnx` file into a [`Model`] with a graph body: each Conv,
//! Gemm, MatMul (by a constant matrix), GRU and LSTM node becomes a [`crate::Layer`]
//! (a `tir` conv2d, fc, gru or lstm workload with the file's weights and the shapes
//! static shape inference gives from the graph input's shape), and Add (of two values,
//! or of a constant bias, which is folded into the layer before it), Relu, Sigmoid,
//! Tanh, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape (constant shape),
//! Softmax, Concat, Identity, Dropout and Constant become glue ops. Anything else is
//! [`ModelError::Unsupported`] naming the node and op; an attribute grim cannot honour
//! (Conv `group`, GRU `linear_before_reset = 0`, a bidirectional RNN, ...) is an error
//! naming the node and the attribute; a shape that does not fit names the node; a
//! truncated or corrupt file names the file.
//!
//! Limits (each an error naming the node and attribute, or the file): one graph input
//! (initializers aside) and one output (the first, or [`ImportOptions::output`]);
//! FLOAT models; Conv 2-D with `group = 1`, equal strides and dilations and the same
//! padding on all sides; pooling without `ceil_mode` or dilations; GRU/LSTM forward
//! only, default activations, no clip, no `sequence_lens`, zero (or absent) initial
//! states and peepholes, GRU with `linear_before_reset = 1`, LSTM without a used
//! `Y_c`; Add of two values of equal shape, or broadcasting one value or one value per
//! channel; no external or segmented tensor data.
//!
//! [`export`] writes a graph model as an ONNX file (opset 13) that other runtimes
//! (onnxruntime, tract) can run, so grim's results can be checked independently; BCR
//! layers are written as their effective dense weights.
//!
//! Files are read with `prost` and the message types in [`proto`] (no `protoc`).
//! Nothing in a file is trusted: its size is bounded ([`MAX_BYTES`]), each tensor's
//! declared size is checked against the bytes it holds before anything is copied, and
//! every shape is checked against `tir`'s element limit.

mod attr;
mod export;
pub mod gates;
mod import;
pub mod proto;
pub mod tensor;

use crate::array::Array;
use crate::error::ModelError;
use crate::Model;
use prost::Message;
use std::io::Read;
use std::path::Path;

pub use export::{export, to_proto};

/// Largest `.onnx` file accepted, in bytes (protobuf's own limit is 2 GiB).
pub const MAX_BYTES: u64 = 1 << 31;

/// Choices for [`import`].
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOptions {
    /// The size given to a symbolic first dimension of the graph input (the batch of
    /// a CNN, the sequence length of an RNN). Default 1.
    pub batch: usize,
    /// The whole input shape, for inputs with other symbolic dimensions (fixed
    /// dimensions in the file must agree).
    pub input_shape: Option<Vec<usize>>,
    /// Which graph output is the model's output (default: the first).
    pub output: Option<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            batch: 1,
            input_shape: None,
            output: None,
        }
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, ModelError> {
    let io = |source| ModelError::Io {
        path: path.display().to_string(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    f.take(MAX_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(ModelError::Format {
            path: path.display().to_string(),
            reason: format!("larger than the {MAX_BYTES}-byte limit"),
        });
    }
    Ok(bytes)
}

/// Reads an `.onnx` file into a model (see the [module docs](self)).
pub fn import(path: &Path, options: &ImportOptions) -> Result<Model, ModelError> {
    let bytes = read_bounded(path)?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "onnx".to_string());
    import_bytes(&bytes, &path.display().to_string(), &name, options)
}

/// Imports a model from the bytes of an `.onnx` file; `path` names it in messages
/// and `name` is the model's name when the graph has none.
pub fn import_bytes(
    bytes: &[u8],
    path: &str,
    name: &str,
    options: &ImportOptions,
) -> Result<Model, ModelError> {
    let proto = proto::ModelProto::decode(bytes).map_err(|e| ModelError::Format {
        path: path.to_string(),
        reason: format!("not a readable ONNX model (truncated or corrupt protobuf): {e}"),
    })?;
    import::Importer::new(&proto, path, options)?.run(name)
}

/// Reads a tensor file (a serialized `TensorProto`, as in ONNX's test data sets
/// `input_0.pb` / `output_0.pb`) as its name and a float array.
pub fn read_tensor(path: &Path) -> Result<(String, Array), ModelError> {
    let bytes = read_bounded(path)?;
    let bad = |reason: String| ModelError::Format {
        path: path.display().to_string(),
        reason,
    };
    let t = proto::TensorProto::decode(&bytes[..])
        .map_err(|e| bad(format!("not a readable ONNX tensor: {e}")))?;
    let value = tensor::decode(&t).map_err(|e| bad(format!("tensor `{}` {e}", t.name)))?;
    let array = value
        .to_array()
        .map_err(|e| bad(format!("tensor `{}` {e}", t.name)))?;
    Ok((t.name, array))
}

/// Writes a float array as a tensor file (a serialized `TensorProto`).
pub fn write_tensor(path: &Path, name: &str, array: &Array) -> Result<(), ModelError> {
    let t = tensor::f32_tensor(name, array.shape(), array.data());
    std::fs::write(path, t.encode_to_vec()).map_err(|source| ModelError::Io {
        path: path.display().to_string(),
        source,
    })
}
