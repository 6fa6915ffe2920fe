//! numpy `.npz` archives: a zip of `.npy` arrays (stored or deflated), as written by
//! `numpy.savez` / `savez_compressed`.

use super::archive::{read_file, Zip};
use super::{npy, Tensors, MAX_FILE_BYTES};
use crate::error::ModelError;
use std::path::Path;

/// Reads every array of an `.npz` file; names drop the `.npy` suffix.
pub fn read(path: &Path) -> Result<Tensors, ModelError> {
    let bytes = read_file(path, MAX_FILE_BYTES)?;
    from_bytes(bytes, &path.display().to_string())
}

/// Reads the arrays of an `.npz` archive held in `bytes` (read from `path`).
pub fn from_bytes(bytes: Vec<u8>, path: &str) -> Result<Tensors, ModelError> {
    let mut zip = Zip::new(bytes, path, "numpy .npz archive")?;
    let mut entries = Vec::new();
    for name in zip.names() {
        if name.ends_with('/') {
            continue;
        }
        let data = zip.read(&name, MAX_FILE_BYTES)?;
        let array = npy::parse(&data).map_err(|reason| ModelError::Format {
            path: path.to_string(),
            reason: format!("array `{name}`: {reason}"),
        })?;
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        entries.push((key, array));
    }
    Ok(Tensors {
        path: path.to_string(),
        entries,
    })
}
