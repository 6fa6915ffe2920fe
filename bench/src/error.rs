//! The benchmark's errors: each names the case, file or system it concerns.

/// What can go wrong in a benchmark step.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A workload spec did not build.
    #[error("case {case}: {message}")]
    Workload {
        /// The case id.
        case: String,
        /// What failed.
        message: String,
    },
    /// A file's content is not what was expected.
    #[error("{path}: {message}")]
    BadFile {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Building or running a kernel failed.
    #[error("case {case}, {system}: {message}")]
    Run {
        /// The case id.
        case: String,
        /// The system (`grim-bcr`, `csr-c`, ...).
        system: String,
        /// What failed.
        message: String,
    },
    /// The tuning database could not be used.
    #[error("tuning database {path}: {message}")]
    Db {
        /// The database path.
        path: String,
        /// What failed.
        message: String,
    },
    /// Drawing a plot failed.
    #[error("plot {path}: {message}")]
    Plot {
        /// The SVG file.
        path: String,
        /// What failed.
        message: String,
    },
}

/// `map_err` helper for I/O errors on `path`.
pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> BenchError + '_ {
    move |source| BenchError::Io {
        path: path.display().to_string(),
        source,
    }
}
