//! Reading real models' original files: PyTorch `torch.save` zip checkpoints
//! ([`torch`], through a bounded pickle reader, [`pickle`]) and numpy `.npz` archives
//! ([`npz`] of [`npy`] arrays). Each reader returns the named tensors of the file as
//! [`Tensors`]; every error names the file and, where known, the entry and position.

pub mod npy;
pub mod npz;
pub mod pickle;
pub mod torch;

mod archive;

use crate::array::Array;
use crate::error::ModelError;

/// Largest checkpoint or archive file accepted, in bytes.
pub const MAX_FILE_BYTES: u64 = 1 << 31;

/// Reads a whole file of at most `limit` bytes (an error naming the file otherwise).
pub fn read_bounded(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, ModelError> {
    archive::read_file(path, limit)
}

/// The named tensors of one file, in the file's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensors {
    /// The file they came from (for messages).
    pub path: String,
    /// Name and value of each tensor.
    pub entries: Vec<(String, Array)>,
}

impl Tensors {
    /// The tensor called `name`, or an error naming the file and the tensors it has.
    pub fn get(&self, name: &str) -> Result<&Array, ModelError> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a)
            .ok_or_else(|| ModelError::Format {
                path: self.path.clone(),
                reason: format!(
                    "has no tensor `{name}` (it has: {})",
                    self.entries
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// The tensor called `name`, checked to have `shape`.
    pub fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<&Array, ModelError> {
        let a = self.get(name)?;
        if a.shape() != shape {
            return Err(ModelError::Format {
                path: self.path.clone(),
                reason: format!(
                    "tensor `{name}` has shape {:?}, the model needs {shape:?}",
                    a.shape()
                ),
            });
        }
        if let Some(i) = a.data().iter().position(|v| !v.is_finite()) {
            return Err(ModelError::Format {
                path: self.path.clone(),
                reason: format!("tensor `{name}`: element {i} is not finite"),
            });
        }
        Ok(a)
    }
}
