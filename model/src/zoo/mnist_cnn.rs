//! The MNIST CNN of the PyPI package `digit-recognizer-py` 0.1.0
//! (`digit_recognizer/model.py`), from its PyTorch checkpoint
//! `handwriting_model.pth`:
//!
//! ```text
//! conv_layers.0  Conv2d(1, 32, 3, padding=1)   ReLU  MaxPool2d(2, 2)   28x28 -> 14x14
//! conv_layers.3  Conv2d(32, 64, 3, padding=1)  ReLU  MaxPool2d(2, 2)   14x14 -> 7x7
//! conv_layers.6  Conv2d(64, 128, 3, padding=1) ReLU  MaxPool2d(2, 2)   7x7   -> 3x3
//! view(N, 1152)
//! fc_layers.0    Linear(1152, 256)             ReLU
//! fc_layers.2    Linear(256, 10)                                      -> logits
//! ```
//!
//! The model takes one normalized image `[1, 1, 28, 28]` (white digit on black,
//! `(pixel / 255 - 0.1307) / 0.3081`, as the package's `recognizer.py` does; see
//! [`crate::data::mnist::Mnist::input`]) and returns the 10 logits `[1, 10]`. ReLUs
//! are separate graph ops, so each layer's output is its linear part.

use super::dense_layer;
use crate::error::ModelError;
use crate::graph::{Graph, Node, Op};
use crate::load::{torch, Tensors};
use crate::{Body, Model};
use std::path::Path;

/// The checkpoint's file name in the models folder.
pub const FILE: &str = "handwriting_model.pth";

/// Loads the model from `dir/handwriting_model.pth`.
pub fn load(dir: &Path) -> Result<Model, ModelError> {
    load_file(&dir.join(FILE))
}

/// Loads the model from a checkpoint file.
pub fn load_file(path: &Path) -> Result<Model, ModelError> {
    from_state_dict(&torch::read_state_dict(path)?)
}

fn node(name: &str, op: Op, input: &str, output: &str) -> Node {
    Node {
        name: name.to_string(),
        op,
        inputs: vec![input.to_string()],
        outputs: vec![output.to_string()],
    }
}

/// Builds the model from the checkpoint's tensors, checking every shape.
pub fn from_state_dict(t: &Tensors) -> Result<Model, ModelError> {
    let conv = |i: usize, c: usize, o: usize, hw: usize| {
        let name = format!("conv_layers.{i}");
        dense_layer(
            t,
            &name,
            &format!("conv2d:C={c},O={o},H={hw},W={hw},k=3,pad=1,bias=true"),
            &[(&format!("{name}.weight"), &[o, c, 3, 3])],
            &[(&format!("{name}.bias"), &[o])],
        )
    };
    let fc = |i: usize, k: usize, m: usize| {
        let name = format!("fc_layers.{i}");
        dense_layer(
            t,
            &name,
            &format!("fc:M={m},K={k},N=1,bias=true"),
            &[(&format!("{name}.weight"), &[m, k])],
            &[(&format!("{name}.bias"), &[m])],
        )
    };
    let layers = vec![
        conv(0, 1, 32, 28)?,
        conv(3, 32, 64, 14)?,
        conv(6, 64, 128, 7)?,
        fc(0, 1152, 256)?,
        fc(2, 256, 10)?,
    ];
    let pool = || Op::MaxPool {
        kernel: [2, 2],
        stride: [2, 2],
        pad: [0; 4],
    };
    let nodes = vec![
        node("conv1", Op::Conv { layer: 0 }, "image", "conv1"),
        node("relu1", Op::Relu, "conv1", "relu1"),
        node("pool1", pool(), "relu1", "pool1"),
        node("conv2", Op::Conv { layer: 1 }, "pool1", "conv2"),
        node("relu2", Op::Relu, "conv2", "relu2"),
        node("pool2", pool(), "relu2", "pool2"),
        node("conv3", Op::Conv { layer: 2 }, "pool2", "conv3"),
        node("relu3", Op::Relu, "conv3", "relu3"),
        node("pool3", pool(), "relu3", "pool3"),
        node("flatten", Op::Flatten { axis: 1 }, "pool3", "flat"),
        node("fc1", Op::Fc { layer: 3 }, "flat", "fc1"),
        node("relu4", Op::Relu, "fc1", "relu4"),
        node("fc2", Op::Fc { layer: 4 }, "relu4", "logits"),
    ];
    let model = Model {
        name: "mnist-cnn".to_string(),
        layers,
        body: Body::Graph(Graph {
            input: "image".to_string(),
            input_shape: vec![1, 1, 28, 28],
            output: "logits".to_string(),
            nodes,
        }),
    };
    model.validate()?;
    Ok(model)
}
