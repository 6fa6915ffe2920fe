//! Result records: one JSON line per (case, system, threads) measurement, appended by
//! every part of the benchmark (grim, the C CSR kernel, the Python baselines, tract)
//! to `results/*.jsonl` and merged by the report.

use crate::error::{io, BenchError};
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::Path;

/// One measurement (or one failure to measure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    /// The case id.
    pub case: String,
    /// The system (`grim-bcr`, `grim-dense`, `onnxruntime`, `csr-c`, ...).
    pub system: String,
    /// Threads it was allowed.
    pub threads: u32,
    /// Median milliseconds per call, when measured.
    #[serde(default)]
    pub median_ms: Option<f64>,
    /// Fastest sample, milliseconds per call.
    #[serde(default)]
    pub min_ms: Option<f64>,
    /// Samples taken.
    #[serde(default)]
    pub repeat: u64,
    /// Calls per sample.
    #[serde(default)]
    pub number: u64,
    /// Largest absolute difference from the reference output.
    #[serde(default)]
    pub max_abs_diff: Option<f64>,
    /// True when the output agreed with the reference (then the time counts).
    #[serde(default)]
    pub ok: bool,
    /// Anything worth knowing (the error when it failed, the format used, ...).
    #[serde(default)]
    pub note: String,
}

impl ResultRecord {
    /// A measurement of `system` on `case` with `threads`: the timing, the output's
    /// largest difference from the reference (ok within [`TOLERANCE`]) and a note.
    pub fn measured(
        case: &str,
        system: &str,
        threads: u32,
        timing: &codegen::run::Timing,
        max_abs_diff: f64,
        note: String,
    ) -> ResultRecord {
        ResultRecord {
            case: case.to_string(),
            system: system.to_string(),
            threads,
            median_ms: Some(timing.median * 1e3),
            min_ms: Some(timing.min * 1e3),
            repeat: timing.repeat,
            number: timing.number,
            max_abs_diff: Some(max_abs_diff),
            ok: max_abs_diff <= TOLERANCE,
            note,
        }
    }

    /// A failure to measure `system` on `case` with `threads`, saying why in `note`.
    pub fn failed(case: &str, system: &str, threads: u32, note: String) -> ResultRecord {
        ResultRecord {
            case: case.to_string(),
            system: system.to_string(),
            threads,
            median_ms: None,
            min_ms: None,
            repeat: 0,
            number: 0,
            max_abs_diff: None,
            ok: false,
            note,
        }
    }
}

/// The largest accepted absolute difference from the reference output. Outputs reach
/// about 1.5 in magnitude; every system agrees to about 1e-5 except MNN's 3x3
/// convolution (about 2e-3, its fast convolution algorithm), and a wrong layout or
/// weight gives differences of order 0.1-1.
pub const TOLERANCE: f64 = 5e-3;

/// Merges the records of several timing rounds (`bench/run --rounds N` times every
/// system N times, the systems in turn, so that a slow phase of a shared machine falls
/// on all of them): one record per (case, system, threads), in the order of first
/// appearance. A key measured once keeps its record. Several: when every round was
/// correct, the median of the rounds' medians, the least of their fastest samples, the
/// samples of all rounds, the largest difference from the reference, and the rounds'
/// medians in the note; when any round failed, a failure (a wrong output in one round
/// is a wrong output) whose note names the failed rounds.
pub fn combine_rounds(records: Vec<ResultRecord>) -> Vec<ResultRecord> {
    let mut order: Vec<(String, String, u32)> = Vec::new();
    let mut groups: std::collections::HashMap<(String, String, u32), Vec<ResultRecord>> =
        std::collections::HashMap::new();
    for r in records {
        let key = (r.case.clone(), r.system.clone(), r.threads);
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(r);
    }
    order
        .into_iter()
        .filter_map(|k| groups.remove(&k))
        .filter_map(combine_group)
        .collect()
}

fn combine_group(mut rounds: Vec<ResultRecord>) -> Option<ResultRecord> {
    if rounds.len() < 2 {
        return rounds.pop();
    }
    let n = rounds.len();
    let failed: Vec<usize> = (0..n).filter(|&i| !rounds[i].ok).collect();
    let mut first = rounds[0].clone();
    if let Some(&i) = failed.first() {
        let mut f = rounds[i].clone();
        let which: Vec<String> = failed.iter().map(|i| (i + 1).to_string()).collect();
        f.note = format!(
            "{} (failed in timing round(s) {} of {n})",
            f.note,
            which.join(", ")
        );
        f.ok = false;
        return Some(f);
    }
    let mut medians: Vec<f64> = rounds.iter().filter_map(|r| r.median_ms).collect();
    if medians.len() == n {
        let shown: Vec<String> = medians.iter().map(|m| format!("{m:.4}")).collect();
        medians.sort_by(f64::total_cmp);
        first.median_ms = Some(if n % 2 == 1 {
            medians[n / 2]
        } else {
            (medians[n / 2 - 1] + medians[n / 2]) / 2.0
        });
        let note = format!("median of {n} timing rounds ({} ms)", shown.join(" / "));
        first.note = if first.note.is_empty() {
            note
        } else {
            format!("{}; {note}", first.note)
        };
    }
    first.min_ms = rounds
        .iter()
        .filter_map(|r| r.min_ms)
        .min_by(|a, b| a.total_cmp(b));
    first.repeat = rounds.iter().map(|r| r.repeat).sum();
    first.max_abs_diff = rounds
        .iter()
        .filter_map(|r| r.max_abs_diff)
        .max_by(|a, b| a.total_cmp(b));
    Some(first)
}

/// Appends records to a JSON Lines file.
pub fn append(path: &Path, records: &[ResultRecord]) -> Result<(), BenchError> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    for r in records {
        let line = serde_json::to_string(r).map_err(|e| BenchError::BadFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        writeln!(f, "{line}").map_err(io(path))?;
    }
    Ok(())
}

/// Reads every `*.jsonl` file of `dir`; a bad line is an error naming file and line.
pub fn read_all(dir: &Path) -> Result<Vec<ResultRecord>, BenchError> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    for p in files {
        let text = std::fs::read_to_string(&p).map_err(io(&p))?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let r: ResultRecord = serde_json::from_str(line).map_err(|e| BenchError::BadFile {
                path: format!("{}:{}", p.display(), i + 1),
                message: e.to_string(),
            })?;
            out.push(r);
        }
    }
    Ok(out)
}
