//! The errors of the tuning database, its records and its export files. Each names
//! what it is about: the database path, the file and line, the field.

use std::path::PathBuf;

/// A record is not valid: a field holds a value the database cannot accept.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct RecordError {
    /// The field, as a path in the JSON form (`result.measured.median_s`).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl RecordError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> RecordError {
        RecordError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// What can go wrong opening, reading or writing a tuning database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Another process holds the database (sled keeps an exclusive file lock).
    #[error("database {path} is in use by another process (could not acquire its lock); close the other grim-tune or pass another --db")]
    Locked {
        /// The database directory.
        path: PathBuf,
    },
    /// The database does not exist (for commands that only read).
    #[error("no tuning database at {path}")]
    NotFound {
        /// The path asked for.
        path: PathBuf,
    },
    /// The database was written by a newer grim.
    #[error("database {path} has format version {found}, newer than this grim supports (version {supported}); use a newer grim-tune")]
    NewerFormat {
        /// The database directory.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A stored value does not decode: the database is damaged or was written by
    /// something else.
    #[error("database {path}: corrupt entry in tree `{tree}` at key {key}: {reason}")]
    Corrupt {
        /// The database directory.
        path: PathBuf,
        /// The sled tree.
        tree: String,
        /// The key, in hex.
        key: String,
        /// What does not decode.
        reason: String,
    },
    /// A record offered for insertion is not valid.
    #[error("invalid record: {0}")]
    InvalidRecord(#[from] RecordError),
    /// sled failed (I/O error, corruption it detected).
    #[error("database {path}: {source}")]
    Sled {
        /// The database directory.
        path: PathBuf,
        /// sled's error.
        source: sled::Error,
    },
    /// The best record's trace does not replay on the workload.
    #[error("best record for workload {workload} (target {target}, device {device}) does not replay: {source}")]
    Replay {
        /// The workload key.
        workload: String,
        /// The target.
        target: String,
        /// The device id.
        device: String,
        /// The replay error.
        source: Box<schedule::ScheduleError>,
    },
    /// A record's workload spec builds a workload with another key than the record's.
    #[error("record's workload `{spec}` has key {actual}, but the record says {recorded}")]
    WorkloadMismatch {
        /// The spec in the record.
        spec: String,
        /// The key it builds.
        actual: String,
        /// The key in the record.
        recorded: String,
    },
    /// A record's workload spec does not build.
    #[error("record's workload `{spec}`: {source}")]
    Workload {
        /// The spec in the record.
        spec: String,
        /// Why it does not build.
        source: Box<tir::workload::WorkloadError>,
    },
}

/// One bad line of an export file.
#[derive(Debug, Clone, PartialEq)]
pub struct LineError {
    /// 1-based line number (0 for the file as a whole, e.g. a record count mismatch).
    pub line: usize,
    /// Why the line is rejected.
    pub reason: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "line {}: {}", self.line, self.reason)
        }
    }
}

/// What can go wrong reading, writing, importing or merging export files.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file has bad lines; nothing was imported.
    #[error("{path}: {} bad line(s), nothing imported:\n{}", .errors.len(), list_errors(.errors))]
    BadLines {
        /// The file.
        path: PathBuf,
        /// Every bad line (the header's error, if any, first).
        errors: Vec<LineError>,
    },
    /// The file cannot be used at all (no header, newer format): nothing imported.
    #[error("{path}: {error}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// The problem, with its line.
        error: LineError,
    },
    /// The output exists already; grim never overwrites tuning results.
    #[error("{path} exists already; choose a new output path")]
    OutputExists {
        /// The output path.
        path: PathBuf,
    },
    /// A database operation failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The first 50 errors, one a line, and how many more there are.
fn list_errors(errors: &[LineError]) -> String {
    const SHOWN: usize = 50;
    let mut out: Vec<String> = errors
        .iter()
        .take(SHOWN)
        .map(|e| format!("  {e}"))
        .collect();
    if errors.len() > SHOWN {
        out.push(format!("  ... and {} more", errors.len() - SHOWN));
    }
    out.join("\n")
}
