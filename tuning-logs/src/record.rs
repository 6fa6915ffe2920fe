//! Records: one per measured candidate. The JSON form of a record is the same in the
//! database and in export files.

use crate::device::DeviceIdentity;
use crate::error::RecordError;
use crate::target::Target;
use schedule::Trace;
use serde::{Deserialize, Serialize};
use tir::WorkloadKey;

/// Version of the record format (database values and export lines). Bump it when the
/// JSON form changes; older grim builds then refuse newer data instead of misreading
/// it.
pub const FORMAT_VERSION: u32 = 1;

/// The version of grim that writes records: the package version and a fingerprint of
/// the sources that turn a trace into code (tir, schedule, codegen; see `build.rs`),
/// e.g. `0.1.0+3f9a0c1d2e4b5a69`. Tuning re-measures traces whose records carry
/// another one, and [`crate::apply_best`] prefers records that carry this one: a cost
/// measured on code that grim no longer generates is not trusted as current.
pub const GRIM_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "+",
    env!("GRIM_CODE_FINGERPRINT")
);

impl Record {
    /// True when this record was measured on the code this build generates (its
    /// [`Record::grim_version`] is [`GRIM_VERSION`]).
    pub fn is_current(&self) -> bool {
        self.grim_version == GRIM_VERSION
    }
}

/// The workload a record is about: its key and its portable text (the canonical spec,
/// from which [`tir::workload::Workload::from_spec_str`] rebuilds function and weights
/// without the original model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadRef {
    /// Structure hash (16 hex digits).
    pub structure: String,
    /// Sparsity pattern hash (16 hex digits).
    pub pattern: String,
    /// The canonical workload spec.
    pub spec: String,
}

impl WorkloadRef {
    /// The reference of a built workload.
    pub fn of(w: &tir::workload::Workload) -> WorkloadRef {
        let key = w.key();
        WorkloadRef {
            structure: key.structure,
            pattern: key.pattern,
            spec: w.spec.to_string(),
        }
    }

    /// The workload key.
    pub fn key(&self) -> WorkloadKey {
        WorkloadKey {
            structure: self.structure.clone(),
            pattern: self.pattern.clone(),
        }
    }
}

/// A successful measurement, in seconds per run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measurement {
    /// Median over the repeats.
    pub median_s: f64,
    /// Minimum.
    pub min_s: f64,
    /// Mean.
    pub mean_s: f64,
    /// Standard deviation.
    pub stddev_s: f64,
    /// Runs per timed repeat.
    pub number: u32,
    /// Timed repeats.
    pub repeat: u32,
    /// Instructions executed per run, where counted (qemu plugin).
    pub instructions: Option<u64>,
}

/// Why a candidate has no time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The generated code did not compile.
    BuildError,
    /// The compiler did not finish in time.
    BuildTimeout,
    /// The kernel crashed or exited with an error.
    RunError,
    /// The kernel did not finish in time.
    RunTimeout,
    /// The kernel's output differs from the reference interpreter's.
    WrongResult,
    /// The device went away during the measurement.
    DeviceLost,
}

impl ErrorKind {
    /// Every kind, in display order.
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::BuildError,
        ErrorKind::BuildTimeout,
        ErrorKind::RunError,
        ErrorKind::RunTimeout,
        ErrorKind::WrongResult,
        ErrorKind::DeviceLost,
    ];

    /// The snake_case name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::BuildError => "build_error",
            ErrorKind::BuildTimeout => "build_timeout",
            ErrorKind::RunError => "run_error",
            ErrorKind::RunTimeout => "run_timeout",
            ErrorKind::WrongResult => "wrong_result",
            ErrorKind::DeviceLost => "device_lost",
        }
    }
}

/// A failed candidate: the kind and the message (compiler output, signal, diff...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    /// What failed.
    pub kind: ErrorKind,
    /// Details.
    pub message: String,
}

/// The result of measuring a candidate. JSON: `{"measured": {...}}` or
/// `{"error": {"kind": "run_timeout", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    /// It ran and was checked; its times.
    Measured(Measurement),
    /// It failed; never chosen as best.
    Error(Failure),
}

/// One measured candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Record format version ([`FORMAT_VERSION`]).
    pub format: u32,
    /// The workload.
    pub workload: WorkloadRef,
    /// What it was compiled for.
    pub target: Target,
    /// What it ran on.
    pub device: DeviceIdentity,
    /// The schedule, as a trace (empty: the default schedule).
    pub trace: Trace,
    /// Times or error.
    pub result: Outcome,
    /// The grim version that measured it.
    pub grim_version: String,
    /// When it was measured, milliseconds since the Unix epoch.
    pub time_unix_ms: u64,
    /// Set when the time comes from a confirmation round (the best candidates of a
    /// tuning run measured again side by side): such a round supersedes the records
    /// measured before it in choosing the best (see [`crate::prefer`]). Absent from the
    /// JSON of ordinary records, so their form is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Confirmation>,
}

/// How a confirmed record was measured: the tuner's best candidates re-measured in
/// turn, `rounds` times each, in one round that started at `round_unix_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    /// When the round started, milliseconds since the Unix epoch; the same in every
    /// record of the round, which identifies it.
    pub round_unix_ms: u64,
    /// Candidates measured side by side in the round (at least 2).
    pub candidates: u32,
    /// Times each candidate was measured, in turn with the others (at least 1); the
    /// record's median is the median of these measurements' medians.
    pub rounds: u32,
}

fn is_hex16(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Milliseconds since the Unix epoch now (0 if the clock is before 1970).
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Record {
    /// A record of the current format and grim version, timed now.
    pub fn new(
        workload: WorkloadRef,
        target: Target,
        device: DeviceIdentity,
        trace: Trace,
        result: Outcome,
    ) -> Record {
        Record {
            format: FORMAT_VERSION,
            workload,
            target,
            device,
            trace,
            result,
            grim_version: GRIM_VERSION.to_string(),
            time_unix_ms: now_unix_ms(),
            confirmation: None,
        }
    }

    /// The quantity "best" minimises, for measured records: the retired instruction
    /// count where it was measured (emulated devices, whose wall time means nothing),
    /// otherwise the median time in seconds. Within one (workload, target, device)
    /// group every record uses the same unit.
    pub fn cost(&self) -> Option<f64> {
        match &self.result {
            Outcome::Measured(m) => Some(m.instructions.map(|n| n as f64).unwrap_or(m.median_s)),
            Outcome::Error(_) => None,
        }
    }

    /// True when the cost is an instruction count.
    pub fn cost_is_instructions(&self) -> bool {
        matches!(&self.result, Outcome::Measured(m) if m.instructions.is_some())
    }

    /// The median time, for measured records.
    pub fn median_s(&self) -> Option<f64> {
        match &self.result {
            Outcome::Measured(m) => Some(m.median_s),
            Outcome::Error(_) => None,
        }
    }

    /// The error kind, for failed records.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        match &self.result {
            Outcome::Measured(_) => None,
            Outcome::Error(f) => Some(f.kind),
        }
    }

    /// The canonical trace JSON (what "already measured" and dedup compare).
    pub fn trace_json(&self) -> String {
        self.trace.to_json()
    }

    /// Checks everything a reader relies on: the format version is not newer than
    /// this build's, keys are 16 lowercase hex digits, the spec parses and is in
    /// canonical form, the device is complete, the trace format is known, and times
    /// are finite, non-negative and consistent.
    pub fn validate(&self) -> Result<(), RecordError> {
        if self.format > FORMAT_VERSION {
            return Err(RecordError::new(
                "format",
                format!(
                    "record format version {} is newer than this grim supports (version {FORMAT_VERSION})",
                    self.format
                ),
            ));
        }
        if self.format == 0 {
            return Err(RecordError::new("format", "version 0 does not exist"));
        }
        for (field, v) in [
            ("workload.structure", &self.workload.structure),
            ("workload.pattern", &self.workload.pattern),
        ] {
            if !is_hex16(v) {
                return Err(RecordError::new(
                    field,
                    format!("`{v}` is not 16 lowercase hex digits"),
                ));
            }
        }
        let spec: tir::spec::WorkloadSpec = self
            .workload
            .spec
            .parse()
            .map_err(|e| RecordError::new("workload.spec", format!("{e}")))?;
        if spec.to_string() != self.workload.spec {
            return Err(RecordError::new(
                "workload.spec",
                format!(
                    "`{}` is not in canonical form (expected `{spec}`)",
                    self.workload.spec
                ),
            ));
        }
        self.device.validate()?;
        if self.trace.format == 0 || self.trace.format > schedule::trace::TRACE_FORMAT {
            return Err(RecordError::new(
                "trace.format",
                format!(
                    "trace format version {} is not supported (this grim reads version {})",
                    self.trace.format,
                    schedule::trace::TRACE_FORMAT
                ),
            ));
        }
        if self.grim_version.trim().is_empty() {
            return Err(RecordError::new("grim_version", "must not be empty"));
        }
        match &self.result {
            Outcome::Measured(m) => {
                for (field, v) in [
                    ("result.measured.median_s", m.median_s),
                    ("result.measured.min_s", m.min_s),
                    ("result.measured.mean_s", m.mean_s),
                    ("result.measured.stddev_s", m.stddev_s),
                ] {
                    if !v.is_finite() || v < 0.0 {
                        return Err(RecordError::new(
                            field,
                            format!("{v} is not a finite, non-negative number of seconds"),
                        ));
                    }
                }
                if m.min_s > m.median_s {
                    return Err(RecordError::new(
                        "result.measured.min_s",
                        format!("{} is larger than the median {}", m.min_s, m.median_s),
                    ));
                }
                if m.number == 0 {
                    return Err(RecordError::new(
                        "result.measured.number",
                        "must be at least 1",
                    ));
                }
                if m.repeat == 0 {
                    return Err(RecordError::new(
                        "result.measured.repeat",
                        "must be at least 1",
                    ));
                }
            }
            Outcome::Error(_) => {}
        }
        if let Some(c) = &self.confirmation {
            if matches!(self.result, Outcome::Error(_)) {
                return Err(RecordError::new(
                    "confirmation",
                    "a failed record cannot be confirmed",
                ));
            }
            if c.candidates < 2 {
                return Err(RecordError::new(
                    "confirmation.candidates",
                    format!("{} (a round compares at least 2 candidates)", c.candidates),
                ));
            }
            if c.rounds == 0 {
                return Err(RecordError::new(
                    "confirmation.rounds",
                    "must be at least 1",
                ));
            }
            if c.round_unix_ms > self.time_unix_ms {
                return Err(RecordError::new(
                    "confirmation.round_unix_ms",
                    format!(
                        "the round starts ({}) after the record was measured ({})",
                        c.round_unix_ms, self.time_unix_ms
                    ),
                ));
            }
        }
        Ok(())
    }
}
