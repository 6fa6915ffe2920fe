//! The machine's ceilings for the roofline (`grim-bench ceilings`): the peak rate of
//! vector multiply-adds and read bandwidths, measured by a small C probe
//! (`src/ceilings.c`) built with grim's host flags, at each thread count of the run.
//! Bandwidth is measured for each cache level (half of L1, half of L2, four times L2)
//! and, for each sparse case, at exactly its kept values' bytes (split over the
//! threads): a working set a little past L2 is read partly from L2, so a level's
//! figure alone would not bound it. The report sets every grim BCR time against them:
//! the time any kernel of the case needs at the multiply-add peak or to read its kept
//! values at the measured bandwidth, whichever is longer (the roofline bound), and how
//! close grim comes.

use crate::error::{io, BenchError};
use codegen::toolchain::run_with_timeout;
use codegen::Target;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The probe's C source.
pub const SOURCE: &str = include_str!("ceilings.c");

/// The name the probe's errors carry in place of a system.
const SYSTEM: &str = "ceilings";

/// The read bandwidth at one working-set size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadCeiling {
    /// `L1`, `L2` or `LLC` for a cache level's working set, or the case id.
    pub label: String,
    /// Bytes each thread read over and over (a working set that level holds).
    pub bytes: u64,
    /// Read bandwidth, GB/s, summed over the threads.
    pub gbs: f64,
}

/// The ceilings measured at one thread count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ceilings {
    /// Threads (`OMP_NUM_THREADS`).
    pub threads: u32,
    /// Peak multiply-add rate, GFLOP/s (2 flops per multiply-add), summed over threads.
    pub fma_gflops: f64,
    /// Read bandwidth per cache level (smallest first), then per case.
    pub read: Vec<ReadCeiling>,
    /// When it was measured (UTC, `YYYY-MM-DD HH:MM`).
    pub measured_utc: String,
}

impl Ceilings {
    /// The read bandwidth measured under `label` (a cache level or a case id).
    pub fn read_gbs(&self, label: &str) -> Option<f64> {
        self.read.iter().find(|r| r.label == label).map(|r| r.gbs)
    }

    /// The cache levels' read ceilings (the entries labelled `L1`, `L2`, `LLC`).
    pub fn levels(&self) -> impl Iterator<Item = &ReadCeiling> {
        self.read
            .iter()
            .filter(|r| LEVELS.contains(&r.label.as_str()))
    }
}

/// The probe reads in steps of this many bytes (8 vectors of up to 64 bytes), so every
/// working set is a multiple of it.
pub const PROBE_STEP: u64 = 512;

/// The labels of the cache levels' working sets.
pub const LEVELS: [&str; 3] = ["L1", "L2", "LLC"];

/// The working sets to read at `threads` threads: each cache level's (from `(level,
/// bytes)` cache sizes: half of L1 and half of L2, room for everything else, and for
/// the last-level cache four times L2, past L2 and well inside any LLC, capped at half
/// the LLC; levels the machine does not report are left out), then each case's
/// `(id, bytes)` split evenly over the threads; each rounded up to [`PROBE_STEP`].
pub fn working_sets(
    caches: &[(u32, u64)],
    cases: &[(String, u64)],
    threads: u32,
) -> Vec<(String, u64)> {
    let step = |bytes: u64| bytes.div_ceil(PROBE_STEP).max(1) * PROBE_STEP;
    let size = |l: u32| caches.iter().find(|c| c.0 == l).map(|c| c.1);
    let mut out = Vec::new();
    if let Some(l1) = size(1) {
        out.push(("L1".to_string(), step(l1 / 2)));
    }
    if let Some(l2) = size(2) {
        out.push(("L2".to_string(), step(l2 / 2)));
        let llc = caches.iter().filter(|c| c.0 > 2).max_by_key(|c| c.0);
        if let Some(&(_, llc)) = llc {
            out.push(("LLC".to_string(), step((4 * l2).min(llc / 2))));
        }
    }
    for (id, bytes) in cases {
        out.push((id.clone(), step(bytes.div_ceil(u64::from(threads.max(1))))));
    }
    out
}

/// Builds the probe into `dir`; returns its path.
pub fn build(dir: &Path) -> Result<PathBuf, BenchError> {
    crate::c_program::build(dir, "ceilings", SOURCE, &Target::Host, ("-", SYSTEM))
}

/// Runs the probe at `threads` threads over the working sets `sets` (`(level, bytes)`),
/// each figure the best of 5 samples of at least `min_ms` milliseconds.
pub fn measure(
    bin: &Path,
    threads: u32,
    sets: &[(String, u64)],
    min_ms: f64,
) -> Result<Ceilings, BenchError> {
    let fail = |message: String| BenchError::Run {
        case: "-".into(),
        system: SYSTEM.into(),
        message,
    };
    let mut cmd = Command::new(bin);
    cmd.env("OMP_NUM_THREADS", threads.to_string())
        .arg(min_ms.to_string())
        .args(sets.iter().map(|(_, b)| b.to_string()));
    let limit = Duration::from_secs(300);
    let f = run_with_timeout(&mut cmd, limit)
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail(format!("timed out after {limit:?}")))?;
    if f.code != Some(0) {
        return Err(fail(format!("exit {:?}: {}", f.code, f.stderr.trim())));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    parse(&f.stdout, threads, sets, utc(now)).map_err(fail)
}

/// Reads the probe's output (`fma_gflops RATE`, then `read_gbs BYTES RATE` per working
/// set, in the order of `sets`). Errors name the line that is wrong or missing.
pub fn parse(
    text: &str,
    threads: u32,
    sets: &[(String, u64)],
    measured_utc: String,
) -> Result<Ceilings, String> {
    let mut lines = text.lines();
    let rate = |s: Option<&str>, what: &str| -> Result<f64, String> {
        let v: f64 = s
            .ok_or_else(|| format!("{what}: missing value"))?
            .parse()
            .map_err(|e| format!("{what}: {e}"))?;
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(format!("{what}: not a positive rate: {v}"))
        }
    };
    let first = lines.next().ok_or("no output")?;
    let mut it = first.split_whitespace();
    if it.next() != Some("fma_gflops") {
        return Err(format!("expected `fma_gflops RATE`, got `{first}`"));
    }
    let fma_gflops = rate(it.next(), "fma_gflops")?;
    let mut read = Vec::new();
    for (label, _) in sets {
        let line = lines
            .next()
            .ok_or_else(|| format!("no `read_gbs` line for {label}"))?;
        let mut it = line.split_whitespace();
        if it.next() != Some("read_gbs") {
            return Err(format!("expected `read_gbs BYTES RATE`, got `{line}`"));
        }
        let bytes: u64 = it
            .next()
            .ok_or_else(|| format!("`{line}`: missing bytes"))?
            .parse()
            .map_err(|e| format!("`{line}`: {e}"))?;
        let gbs = rate(it.next(), &format!("read_gbs {label}"))?;
        read.push(ReadCeiling {
            label: label.clone(),
            bytes,
            gbs,
        });
    }
    Ok(Ceilings {
        threads,
        fma_gflops,
        read,
        measured_utc,
    })
}

/// `YYYY-MM-DD HH:MM` (UTC) of `secs` seconds since the Unix epoch (the civil-from-days
/// conversion of the proleptic Gregorian calendar).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (hh, mm) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}")
}

/// Writes the ceilings of every thread count as JSON.
pub fn write(path: &Path, all: &[Ceilings]) -> Result<(), BenchError> {
    let text = serde_json::to_string_pretty(all).map_err(|e| BenchError::BadFile {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    std::fs::write(path, text).map_err(io(path))
}

/// Reads what [`write`] wrote; `None` when the file does not exist (a run without the
/// ceilings step).
pub fn read(path: &Path) -> Result<Option<Vec<Ceilings>>, BenchError> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| BenchError::BadFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}
