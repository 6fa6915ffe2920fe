//! Weight-bearing layers: each one is a `tir` workload spec with the model's real
//! weights.

use crate::error::ModelError;
use serde::{Deserialize, Serialize};
use tir::spec::WorkloadSpec;
use tir::workload::{GivenMatrix, GivenWeights, Workload};
use tir::Matrix;

/// One FC, conv2d, GRU or LSTM layer of a model.
///
/// `spec` fixes the kind and every shape (its `seed` is unused); `weights` are the
/// real weights in the order [`GivenWeights`] documents. A pruned layer has a `bcr-`
/// spec and BCR matrices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// The layer's name (from the model: `conv1`, `fc2`, `encoder`, ...).
    pub name: String,
    /// Kind and shapes.
    pub spec: WorkloadSpec,
    /// The weights.
    pub weights: GivenWeights,
}

impl Layer {
    /// A layer with the spec's generated weights (BCR-pruned for `bcr-` specs): for
    /// synthetic models in tests, examples and benchmarks.
    pub fn from_spec(name: &str, spec: &str) -> Result<Layer, ModelError> {
        let w =
            Workload::from_spec_str(spec).map_err(|e| ModelError::layer(name, e.to_string()))?;
        Ok(Layer {
            name: name.to_string(),
            spec: w.spec.clone(),
            weights: w.given_weights(),
        })
    }

    /// The layer's `tir` workload (lowered with its real weights), or an error naming
    /// the layer when the weights do not fit the spec.
    pub fn workload(&self) -> Result<Workload, ModelError> {
        Workload::with_weights(self.spec.clone(), &self.weights)
            .map_err(|e| ModelError::layer(&self.name, e.to_string()))
    }

    /// The effective dense form of weight matrix `i` (pruned entries are zero).
    pub fn dense(&self, i: usize) -> Result<Matrix, ModelError> {
        match self.weights.matrices.get(i) {
            Some(GivenMatrix::Dense(m)) => Ok(m.clone()),
            Some(GivenMatrix::Bcr(b)) => Ok(b.to_dense()),
            None => Err(ModelError::layer(
                &self.name,
                format!("has no weight matrix {i}"),
            )),
        }
    }

    /// The same layer computed densely: the dense spec and every matrix in its dense
    /// form (pruned entries zero), biases unchanged; `None` for a layer that is not
    /// pruned. Its outputs equal the layer's up to the order of the sums. The model
    /// compiler runs it instead of the BCR kernel where its tuned kernel is faster (a
    /// small matrix pruned lightly can be).
    pub fn densified(&self) -> Option<Result<Layer, ModelError>> {
        let spec = self.spec.dense_form()?;
        let matrices = (0..self.weights.matrices.len())
            .map(|i| self.dense(i).map(GivenMatrix::Dense))
            .collect::<Result<Vec<_>, _>>();
        Some(matrices.map(|matrices| Layer {
            name: self.name.clone(),
            spec,
            weights: GivenWeights {
                matrices,
                biases: self.weights.biases.clone(),
            },
        }))
    }

    /// Bias vector `i`.
    pub fn bias(&self, i: usize) -> Result<&[f32], ModelError> {
        self.weights
            .biases
            .get(i)
            .map(|b| &b[..])
            .ok_or_else(|| ModelError::layer(&self.name, format!("has no bias {i}")))
    }

    /// Number of weights in the dense form of every matrix.
    pub fn dense_params(&self) -> usize {
        self.weights
            .matrices
            .iter()
            .map(|m| {
                let (r, c) = m.shape();
                r * c
            })
            .sum()
    }

    /// Multiply-adds of one call of the dense layer: every weight once per output
    /// position (conv: output pixels times batch; FC: its `N` columns; RNN: one step,
    /// times the batch). What the layer costs to run, as the weight count is what it
    /// costs to store.
    pub fn dense_macs(&self) -> usize {
        let uses = match &self.spec {
            WorkloadSpec::Conv2d(c) => c.batch * c.out_h().unwrap_or(0) * c.out_w().unwrap_or(0),
            WorkloadSpec::Fc(f) => f.n,
            WorkloadSpec::Rnn(r) => r.batch,
            WorkloadSpec::BiasAdd { .. } | WorkloadSpec::Activation { .. } => 1,
        };
        self.dense_params() * uses
    }

    /// Number of weights kept (all of them for dense matrices).
    pub fn kept_params(&self) -> usize {
        self.weights
            .matrices
            .iter()
            .map(|m| match m {
                GivenMatrix::Dense(d) => d.rows() * d.cols(),
                GivenMatrix::Bcr(b) => b.nnz(),
            })
            .sum()
    }
}
