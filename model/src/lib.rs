//! Whole models for grim.
//!
//! A [`Model`] is a list of weight-bearing [`Layer`]s (FC, conv2d, GRU/LSTM cells;
//! each one is a `tir` workload with the model's real weights) and a [`Body`] that
//! says how they are wired: a [`Graph`] of ops in topological order (CNNs, ONNX
//! imports) or a GRU encoder-decoder with greedy decoding ([`Seq2Seq`], the g2p
//! model). Glue ops (pooling, activations, softmax, reshapes, embeddings) run in plain
//! Rust; layers run through a [`LayerExec`]: the dense [`Reference`] (independent
//! plain-Rust math), the `tir` [`Interpreter`] (the reference semantics of the
//! compiler), or compiled kernels.
//!
//! Models are stored as versioned JSON files ([`file`]).
//!
//! The two real models of the project are built from their original files
//! ([`zoo`]: a PyTorch MNIST CNN and the g2p-en GRU, read by [`load`]) and scored on
//! their data ([`data`]: MNIST images, CMUdict words) by [`evaluate`] ([`metrics`]).

#![warn(missing_docs)]

pub mod array;
pub mod backprop;
pub mod calibrate;
pub mod compiled;
pub mod data;
pub mod distill;
pub mod error;
pub mod eval;
pub mod evaluate;
pub mod exec;
pub mod file;
pub mod finetune;
pub mod gradual;
pub mod graph;
pub mod kept_blocks;
pub mod layer;
pub mod load;
pub mod metrics;
pub mod onnx;
pub mod ops;
pub mod paired;
pub mod prune;
pub mod rates;
pub mod seq2seq;
pub mod seq2seq_batch;
pub mod shape;
pub mod standalone;
pub mod task;
pub mod trainable;
pub mod trainable_seq2seq;
pub mod zoo;

pub use array::Array;
pub use error::ModelError;
pub use exec::{Interpreter, LayerExec, Reference};
pub use graph::{Graph, Node, Op};
pub use layer::Layer;
pub use seq2seq::Seq2Seq;

use serde::{Deserialize, Serialize};

/// How a model's layers are wired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// A graph of ops (feed-forward networks, ONNX imports).
    Graph(Graph),
    /// A GRU encoder-decoder with greedy decoding.
    Seq2Seq(Seq2Seq),
}

/// A whole model: its layers with their weights and how they are wired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// A name for messages and reports.
    pub name: String,
    /// The weight-bearing layers; ops refer to them by index.
    pub layers: Vec<Layer>,
    /// The wiring.
    pub body: Body,
}

impl Model {
    /// Checks that every layer's weights fit its spec and every op's layer index and
    /// inputs exist, naming the layer or node at fault.
    pub fn validate(&self) -> Result<(), ModelError> {
        for layer in &self.layers {
            layer.workload()?;
        }
        match &self.body {
            Body::Graph(g) => g.validate(self.layers.len()),
            Body::Seq2Seq(s) => s.validate(&self.layers),
        }
    }
}
