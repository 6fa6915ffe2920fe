//! The `grim-tune` commands that work today, as library functions returning the text
//! they print (so tests can call them without a process).

use std::fmt::Write as _;
use std::path::Path;
use tir::workload::{Workload, WorkloadError};

/// An error of a `grim-tune` command, printed with its context.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The workload spec is invalid.
    #[error("{0}")]
    Workload(#[from] WorkloadError),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A `.tir` file does not parse.
    #[error("{0}")]
    Parse(#[from] tir::parser::ParseError),
    /// Any other failure, already phrased for the user.
    #[error("{0}")]
    Other(String),
    /// A rule file is unreadable or malformed.
    #[error("{0}")]
    Rules(#[from] tir::egraph::rules::RuleError),
    /// The e-graph pass could not run.
    #[error("{0}")]
    Pass(tir::egraph::pass::PassError),
    /// A `.tir` file parses but is not well formed.
    #[error("{path}: {source}")]
    Verify {
        /// The file.
        path: String,
        /// The verifier's error.
        source: tir::verify::VerifyError,
    },
    /// A `db` command failed.
    #[error(transparent)]
    Db(#[from] crate::db::DbCliError),
}

fn kib(bytes: usize) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

/// `grim-tune show SPEC`: the canonical spec, the workload key, per-weight BCR
/// statistics and (when `ir` is true) the lowered IR.
pub fn show(spec: &str, ir: bool) -> Result<String, CliError> {
    let w = Workload::from_spec_str(spec)?;
    let mut out = String::new();
    let _ = writeln!(out, "workload  {}", w.spec);
    let _ = writeln!(out, "key       {}", w.key());
    for m in &w.matrices {
        let (rows, cols) = (m.dense.rows(), m.dense.cols());
        match &m.bcr {
            None => {
                let _ = writeln!(out, "weight    {} dense {rows}x{cols}", m.name);
            }
            Some(b) => {
                let (gr, gc) = b.grid();
                let _ = writeln!(
                    out,
                    "weight    {} {rows}x{cols} BCR block {}: {} of {} blocks non-empty, nnz {} (sparsity {:.4}), storage {} vs dense {} ({:.2}x smaller)",
                    m.name,
                    b.block(),
                    b.nonempty_blocks(),
                    gr * gc,
                    b.nnz(),
                    b.sparsity(),
                    kib(b.storage_bytes()),
                    kib(rows * cols * 4),
                    b.compression_ratio()
                );
            }
        }
    }
    if ir {
        let _ = writeln!(out);
        out.push_str(&tir::printer::print_function(&w.func));
    }
    Ok(out)
}

/// `grim-tune check-ir FILE`: parses and verifies a `.tir` file; returns its
/// structure hash.
pub fn check_ir(path: &Path) -> Result<String, CliError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Read {
        path: name.clone(),
        source,
    })?;
    let f = tir::parser::parse_function(&text).map_err(|e| e.with_file(&name))?;
    tir::verify::verify(&f).map_err(|source| CliError::Verify {
        path: name.clone(),
        source,
    })?;
    Ok(format!(
        "{name}: ok, function `{}` with {} parameters, structure hash {}\n",
        f.name,
        f.params.len(),
        tir::hash::structure_hash(&f)
    ))
}
