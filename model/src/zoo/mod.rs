//! The real models of the project, built from their original files (fetched by
//! `scripts/fetch-models.sh` into `models/`, or `$GRIM_MODELS_DIR`): the MNIST CNN of
//! the PyPI package `digit-recognizer-py` ([`mnist_cnn`]) and the GRU
//! grapheme-to-phoneme model of `g2p-en` ([`g2p`]).

pub mod g2p;
pub mod mnist_cnn;

use crate::error::ModelError;
use crate::layer::Layer;
use crate::load::Tensors;
use std::path::PathBuf;
use tir::spec::WorkloadSpec;
use tir::workload::{GivenMatrix, GivenWeights};
use tir::Matrix;

/// The folder the fetch script fills: `$GRIM_MODELS_DIR` when set, else `models`
/// (relative to the current directory).
pub fn default_dir() -> PathBuf {
    std::env::var_os("GRIM_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("models"))
}

/// A dense layer named `name` with spec `spec`, whose weight matrices are the tensors
/// `matrices` (each viewed as `rows x (elements / rows)`, rows = its first dimension)
/// and biases the tensors `biases`, all checked against the spec.
pub(crate) fn dense_layer(
    t: &Tensors,
    name: &str,
    spec: &str,
    matrices: &[(&str, &[usize])],
    biases: &[(&str, &[usize])],
) -> Result<Layer, ModelError> {
    let spec: WorkloadSpec = spec
        .parse()
        .map_err(|e| ModelError::layer(name, format!("spec `{spec}`: {e}")))?;
    let mut ms = Vec::new();
    for (tensor, shape) in matrices {
        let a = t.get_shaped(tensor, shape)?;
        let rows = shape.first().copied().unwrap_or(1);
        let cols = a.len() / rows.max(1);
        let m = Matrix::new(rows, cols, a.data().to_vec())
            .map_err(|e| ModelError::layer(name, format!("`{tensor}`: {e}")))?;
        ms.push(GivenMatrix::Dense(m));
    }
    let bs = biases
        .iter()
        .map(|(tensor, shape)| t.get_shaped(tensor, shape).map(|a| a.data().to_vec()))
        .collect::<Result<Vec<_>, _>>()?;
    let layer = Layer {
        name: name.to_string(),
        spec,
        weights: GivenWeights {
            matrices: ms,
            biases: bs,
        },
    };
    layer.workload()?;
    Ok(layer)
}
