//! Model files: versioned JSON (`{"format": "grim-model", "version": 1, "model":
//! ...}`), written atomically (temporary file + rename) and validated on load.
//! Loading never trusts the file: its size is bounded, every BCR matrix is validated
//! while parsing, and the model is checked before it is returned.

use crate::error::ModelError;
use crate::Model;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

/// The format name in the header.
pub const FORMAT: &str = "grim-model";
/// The format version written by this build.
pub const VERSION: u32 = 1;
/// Largest model file accepted, in bytes.
pub const MAX_BYTES: u64 = 1 << 30;

#[derive(Serialize)]
struct Out<'m> {
    format: &'static str,
    version: u32,
    model: &'m Model,
}

#[derive(Deserialize)]
struct Header {
    format: String,
    version: u32,
}

#[derive(Deserialize)]
struct In {
    model: Model,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `model` to `path` atomically.
pub fn save(model: &Model, path: &Path) -> Result<(), ModelError> {
    let text = serde_json::to_vec(&Out {
        format: FORMAT,
        version: VERSION,
        model,
    })
    .map_err(|e| ModelError::Format {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let tmp = path.with_extension("tmp-grim");
    std::fs::write(&tmp, text).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Parses a model from the bytes of a file named `path` (for messages).
pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Model, ModelError> {
    let bad = |reason: String| ModelError::Format {
        path: path.to_string(),
        reason,
    };
    let header: Header = serde_json::from_slice(bytes).map_err(|e| {
        bad(format!(
            "not a readable grim model file (truncated, corrupt, or without the `format` and `version` header): {e}"
        ))
    })?;
    if header.format != FORMAT {
        return Err(bad(format!(
            "format `{}`, expected `{FORMAT}`",
            header.format
        )));
    }
    if header.version != VERSION {
        return Err(bad(format!(
            "format version {}, this grim reads version {VERSION}",
            header.version
        )));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed: In = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| bad(format!("at `{}`: {}", e.path(), e.inner())))?;
    parsed.model.validate().map_err(|e| bad(e.to_string()))?;
    Ok(parsed.model)
}

/// Reads and validates a model file.
pub fn load(path: &Path) -> Result<Model, ModelError> {
    let f = std::fs::File::open(path).map_err(io(path))?;
    let mut bytes = Vec::new();
    f.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(ModelError::Format {
            path: path.display().to_string(),
            reason: format!("larger than the {MAX_BYTES}-byte limit"),
        });
    }
    from_bytes(&bytes, &path.display().to_string())
}
