//! apply-best: the scheduled function of the best record, or the explicit fact that
//! there is none. Never a silent fallback to the default schedule.

use crate::db::{Database, Query, Stored};
use crate::device::DeviceIdentity;
use crate::error::DbError;
use crate::record::Record;
use crate::target::Target;
use schedule::Schedule;
use std::fmt;
use tir::workload::Workload;
use tir::{Function, WorkloadKey};

/// The answer of [`apply_best`].
#[derive(Debug)]
pub enum ApplyBest {
    /// The best record's trace, replayed on the workload.
    Tuned {
        /// The scheduled workload (its [`Schedule::func`] is the function to compile).
        schedule: Box<Schedule>,
        /// The record it comes from.
        record: Box<Stored>,
    },
    /// No measured record exists for this workload, target and device.
    NoRecord(Box<NoRecord>),
}

/// The fact that nothing is tuned for a workload on a target and device. Its
/// `Display` is the line a caller prints before using the default schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct NoRecord {
    /// The workload key.
    pub workload: WorkloadKey,
    /// The workload spec.
    pub spec: String,
    /// The target.
    pub target: Target,
    /// The device.
    pub device: DeviceIdentity,
}

impl fmt::Display for NoRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no tuned schedule for {} (key {}) on target `{}`, device {} [{}], using the default",
            self.spec,
            self.workload,
            self.target,
            self.device.name(),
            self.device.id_hex()
        )
    }
}

impl ApplyBest {
    /// The scheduled function, when tuned.
    pub fn function(&self) -> Option<&Function> {
        match self {
            ApplyBest::Tuned { schedule, .. } => Some(schedule.func()),
            ApplyBest::NoRecord(_) => None,
        }
    }
}

/// Replays the best measured trace for `workload` on `target` and `device`: the
/// preferred record ([`crate::prefer`]): the best of the records measured on the code
/// this build generates ([`Record::is_current`]), else, when there are none, the best of
/// all (its cost then comes from older generated code; [`Record::grim_version`] says
/// which), where the newest confirmation round supersedes the single measurements
/// before it. When no record exists, says
/// so with [`ApplyBest::NoRecord`]; when the chosen trace does not replay, returns
/// [`DbError::Replay`] (it does not try the next best silently).
pub fn apply_best(
    db: &Database,
    workload: &Workload,
    target: &Target,
    device: &DeviceIdentity,
) -> Result<ApplyBest, DbError> {
    let key = workload.key();
    let q = Query {
        workload: &key,
        target,
        device,
    };
    let best = db.preferred_best(&q)?;
    match best {
        None => Ok(ApplyBest::NoRecord(Box::new(NoRecord {
            workload: key,
            spec: workload.spec.to_string(),
            target: target.clone(),
            device: device.clone(),
        }))),
        Some(stored) => {
            let schedule = stored
                .record
                .trace
                .replay(&workload.func, &workload.weights)
                .map_err(|source| DbError::Replay {
                    workload: key.to_string(),
                    target: target.to_string(),
                    device: device.id_hex(),
                    source: Box::new(source),
                })?;
            Ok(ApplyBest::Tuned {
                schedule: Box::new(schedule),
                record: Box::new(stored),
            })
        }
    }
}

/// Rebuilds a record's workload from its portable spec, checking that it has the
/// record's key (so an exported file is usable without the original model).
pub fn workload_of(record: &Record) -> Result<Workload, DbError> {
    let spec = &record.workload.spec;
    let w = Workload::from_spec_str(spec).map_err(|source| DbError::Workload {
        spec: spec.clone(),
        source: Box::new(source),
    })?;
    let actual = w.key();
    if actual != record.workload.key() {
        return Err(DbError::WorkloadMismatch {
            spec: spec.clone(),
            actual: actual.to_string(),
            recorded: record.workload.key().to_string(),
        });
    }
    Ok(w)
}
