//! Bounded reading of files and zip archives, with errors that name the file and
//! the entry.

use crate::error::ModelError;
use std::io::{Cursor, Read};
use std::path::Path;
use zip::ZipArchive;

/// Reads a whole file of at most `limit` bytes.
pub(crate) fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, ModelError> {
    let io = |source| ModelError::Io {
        path: path.display().to_string(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    f.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(ModelError::Format {
            path: path.display().to_string(),
            reason: format!("larger than the {limit}-byte limit"),
        });
    }
    Ok(bytes)
}

/// A zip archive held in memory.
pub(crate) struct Zip {
    path: String,
    archive: ZipArchive<Cursor<Vec<u8>>>,
}

impl Zip {
    /// Opens the archive in `bytes` (read from `path`).
    pub(crate) fn new(bytes: Vec<u8>, path: &str, what: &str) -> Result<Zip, ModelError> {
        let archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| ModelError::Format {
            path: path.to_string(),
            reason: format!("not a readable {what} (a zip archive): {e}"),
        })?;
        Ok(Zip {
            path: path.to_string(),
            archive,
        })
    }

    /// The entries' names, in archive order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.archive.file_names().map(str::to_string).collect()
    }

    /// The bytes of entry `name` (at most `limit` of them), checked against the
    /// archive's CRC.
    pub(crate) fn read(&mut self, name: &str, limit: u64) -> Result<Vec<u8>, ModelError> {
        let path = self.path.clone();
        let err = |reason: String| ModelError::Format {
            path: path.clone(),
            reason: format!("zip entry `{name}`: {reason}"),
        };
        let mut f = self.archive.by_name(name).map_err(|e| err(e.to_string()))?;
        let size = f.size();
        if size > limit {
            return Err(err(format!("{size} bytes, over the {limit}-byte limit")));
        }
        let mut bytes = Vec::with_capacity(size.min(1 << 26) as usize);
        let got = (&mut f).take(limit + 1).read_to_end(&mut bytes);
        drop(f);
        match got {
            Ok(_) if bytes.len() as u64 != size => Err(err(format!(
                "holds {} bytes, its header says {size}",
                bytes.len()
            ))),
            Ok(_) => Ok(bytes),
            Err(e) => Err(err(format!("corrupt: {e}"))),
        }
    }
}
