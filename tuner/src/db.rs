//! `grim-tune db ...`: export, import, merge and show tuning databases. Each command
//! returns the text it prints.

use clap::Subcommand;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tuning_logs::{
    summarize, Database, DbError, ErrorKind, ExportError, ExportFilter, RecordError, Target,
};

/// The `db` subcommands.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Writes records to a portable JSON Lines file (a versioned header line, then
    /// one record per line).
    Export {
        /// The database (default: `tuning-db` in the user's data directory).
        #[arg(long)]
        db: Option<PathBuf>,
        /// The file to write; must not exist.
        #[arg(long)]
        out: PathBuf,
        /// Only records of this target (`host`, `host -threads=N`,
        /// `aarch64-neon -mcpu=CPU [-threads=N]`, `opencl -profile=DEVICE`).
        #[arg(long)]
        target: Option<String>,
        /// Only records of this device: its id (16 hex digits) or model name.
        #[arg(long)]
        device: Option<String>,
        /// Only the best record of each workload, target and device.
        #[arg(long)]
        best_only: bool,
    },
    /// Imports an export file. Every line is validated first; with any bad line
    /// nothing is imported (unless --skip-bad) and every bad line is listed.
    Import {
        /// The database (default: `tuning-db` in the user's data directory).
        #[arg(long)]
        db: Option<PathBuf>,
        /// The export file.
        file: PathBuf,
        /// Import the good lines and report the bad ones.
        #[arg(long)]
        skip_bad: bool,
    },
    /// Merges databases or export files, keeping one record per workload, target,
    /// device and trace (the fastest measurement).
    Merge {
        /// Inputs: database directories or export files.
        #[arg(required = true, num_args = 2..)]
        inputs: Vec<PathBuf>,
        /// Output: an export file if it ends in `.jsonl`, else a new database; must
        /// not exist.
        #[arg(long)]
        out: PathBuf,
    },
    /// Prints a table: workload, target, device, trials, errors, best time, speedup
    /// over the default schedule.
    Show {
        /// The database (default: `tuning-db` in the user's data directory).
        #[arg(long)]
        db: Option<PathBuf>,
    },
}

/// An error of a `db` command.
#[derive(Debug, thiserror::Error)]
pub enum DbCliError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// An export file failed.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// A command-line value is invalid.
    #[error("--{option}: {error}")]
    Arg {
        /// The option.
        option: &'static str,
        /// What is wrong.
        error: RecordError,
    },
    /// No --db and no data directory.
    #[error("no data directory for the default tuning database; pass --db PATH")]
    NoDefaultPath,
}

fn db_path(db: Option<PathBuf>) -> Result<PathBuf, DbCliError> {
    db.or_else(tuning_logs::default_db_path)
        .ok_or(DbCliError::NoDefaultPath)
}

/// Runs a `db` subcommand.
pub fn run(cmd: DbCommand) -> Result<String, DbCliError> {
    match cmd {
        DbCommand::Export {
            db,
            out,
            target,
            device,
            best_only,
        } => {
            let target = target
                .map(|t| t.parse::<Target>())
                .transpose()
                .map_err(|error| DbCliError::Arg {
                    option: "target",
                    error,
                })?;
            let filter = ExportFilter {
                target,
                device,
                best_only,
            };
            export(&db_path(db)?, &out, &filter)
        }
        DbCommand::Import { db, file, skip_bad } => import(&db_path(db)?, &file, skip_bad),
        DbCommand::Merge { inputs, out } => merge(&inputs, &out),
        DbCommand::Show { db } => show(&db_path(db)?),
    }
}

/// `grim-tune db export`.
pub fn export(db: &Path, out: &Path, filter: &ExportFilter) -> Result<String, DbCliError> {
    let db = Database::open_existing(db)?;
    let n = tuning_logs::export(&db, out, filter)?;
    Ok(format!(
        "exported {n} record(s) from {} to {}\n",
        db.path().display(),
        out.display()
    ))
}

/// `grim-tune db import`.
pub fn import(db: &Path, file: &Path, skip_bad: bool) -> Result<String, DbCliError> {
    // Validate before creating or locking anything: a bad file leaves no trace.
    let parsed = tuning_logs::export::read_file(file)?;
    if !parsed.bad.is_empty() && !skip_bad {
        return Err(ExportError::BadLines {
            path: file.to_path_buf(),
            errors: parsed.bad,
        }
        .into());
    }
    let db = Database::open(db)?;
    let report = tuning_logs::export::import_parsed(&db, file, parsed, skip_bad)?;
    let mut out = format!(
        "imported {} record(s) from {} into {}",
        report.imported,
        file.display(),
        db.path().display()
    );
    if report.duplicates > 0 {
        let _ = write!(out, " ({} already present, skipped)", report.duplicates);
    }
    out.push('\n');
    if !report.skipped.is_empty() {
        let _ = writeln!(out, "skipped {} bad line(s):", report.skipped.len());
        for e in &report.skipped {
            let _ = writeln!(out, "  {e}");
        }
    }
    Ok(out)
}

/// `grim-tune db merge`.
pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<String, DbCliError> {
    let refs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let report = tuning_logs::merge(&refs, out)?;
    Ok(format!(
        "merged {} record(s) from {} inputs into {} record(s) in {}\n",
        report.read,
        inputs.len(),
        report.written,
        out.display()
    ))
}

/// Seconds in a readable unit.
pub fn format_seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else if s >= 1e-6 {
        format!("{:.3} us", s * 1e6)
    } else {
        format!("{:.1} ns", s * 1e9)
    }
}

/// `grim-tune db show`.
pub fn show(db: &Path) -> Result<String, DbCliError> {
    let db = Database::open_existing(db)?;
    let groups = summarize(&db)?;
    if groups.is_empty() {
        return Ok(format!("no records in {}\n", db.path().display()));
    }
    let header = [
        "workload", "target", "device", "trials", "errors", "best", "speedup",
    ];
    let rows: Vec<[String; 7]> = groups
        .iter()
        .map(|g| {
            [
                g.workload.spec.clone(),
                g.target.to_string(),
                format!("{} #{}", g.device.name(), &g.device.id_hex()[..8]),
                g.trials.to_string(),
                g.errors.to_string(),
                g.best_s.map_or("-".to_string(), |v| {
                    if g.instructions {
                        format!("{v:.0} insns")
                    } else {
                        format_seconds(v)
                    }
                }),
                g.speedup().map_or("-".to_string(), |x| format!("{x:.2}x")),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            // Text columns left, numbers right.
            if i < 3 {
                let _ = write!(l, "{c:<w$}  ");
            } else {
                let _ = write!(l, "{c:>w$}  ");
            }
        }
        let _ = writeln!(out, "{}", l.trim_end());
    };
    line(&mut out, &header);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    let counts = db.error_counts(None)?;
    let _ = write!(
        out,
        "\n{} record(s) in {} group(s) in {}",
        db.len(),
        groups.len(),
        db.path().display()
    );
    if !counts.is_empty() {
        let list: Vec<String> = ErrorKind::ALL
            .iter()
            .filter_map(|k| counts.get(k).map(|n| format!("{} {n}", k.name())))
            .collect();
        let _ = write!(out, "; errors: {}", list.join(", "));
    }
    out.push('\n');
    Ok(out)
}
