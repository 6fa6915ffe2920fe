//! Errors of model loading, checking and inference.

/// What can go wrong with a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A model file is malformed.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong, with the position where known.
        reason: String,
    },
    /// A layer's weights do not fit its spec.
    #[error("layer `{layer}`: {reason}")]
    Layer {
        /// The layer's name.
        layer: String,
        /// What is wrong.
        reason: String,
    },
    /// A graph node is malformed or got inputs of the wrong shape.
    #[error("node `{node}` ({op}): {reason}")]
    Node {
        /// The node's name.
        node: String,
        /// Its op.
        op: String,
        /// What is wrong.
        reason: String,
    },
    /// An op the importer or evaluator does not support.
    #[error("node `{node}`: unsupported op `{op}`")]
    Unsupported {
        /// The node's name.
        node: String,
        /// The op type.
        op: String,
    },
    /// Running a layer failed.
    #[error("running layer `{layer}`: {reason}")]
    Exec {
        /// The layer's name.
        layer: String,
        /// What failed.
        reason: String,
    },
}

impl ModelError {
    /// A [`ModelError::Layer`].
    pub fn layer(layer: &str, reason: impl Into<String>) -> ModelError {
        ModelError::Layer {
            layer: layer.to_string(),
            reason: reason.into(),
        }
    }

    /// A [`ModelError::Exec`].
    pub fn exec(layer: &str, reason: impl Into<String>) -> ModelError {
        ModelError::Exec {
            layer: layer.to_string(),
            reason: reason.into(),
        }
    }
}
