//! Per-group summaries of a database, for `grim-tune db show`.

use crate::db::Database;
use crate::device::DeviceIdentity;
use crate::error::DbError;
use crate::key::GROUP_LEN;
use crate::record::{Record, WorkloadRef};
use crate::target::Target;

/// What is known about one workload on one target and device.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSummary {
    /// The workload.
    pub workload: WorkloadRef,
    /// The target.
    pub target: Target,
    /// The device (of the group's first record; serials may differ).
    pub device: DeviceIdentity,
    /// Number of records (measured candidates).
    pub trials: usize,
    /// How many of them failed.
    pub errors: usize,
    /// The best cost: median seconds, or instructions when `instructions` is set.
    pub best_s: Option<f64>,
    /// The best cost of the default schedule (empty trace).
    pub default_s: Option<f64>,
    /// True when the costs are instruction counts (emulated devices), not seconds.
    pub instructions: bool,
}

impl GroupSummary {
    /// Default time over best time, when both are known.
    pub fn speedup(&self) -> Option<f64> {
        match (self.default_s, self.best_s) {
            (Some(d), Some(b)) if b > 0.0 => Some(d / b),
            _ => None,
        }
    }
}

fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// The summary of one group's records (in insertion order, at least one).
fn summarize_group(records: Vec<Record>) -> Option<GroupSummary> {
    let best_s = crate::prefer::preferred(&records, |r| r).and_then(|i| records[i].cost());
    let mut default_s = None;
    for r in records.iter().filter(|r| r.trace.instructions.is_empty()) {
        default_s = min_opt(default_s, r.cost());
    }
    let trials = records.len();
    let errors = records.iter().filter(|r| r.cost().is_none()).count();
    let instructions = records.iter().any(Record::cost_is_instructions);
    let first = records.into_iter().next()?;
    Some(GroupSummary {
        workload: first.workload,
        target: first.target,
        device: first.device,
        trials,
        errors,
        best_s,
        default_s,
        instructions,
    })
}

/// One summary per (workload, target, device), in key order. The best cost is the
/// preferred record's ([`crate::prefer`]: the newest confirmation round supersedes the
/// single measurements before it), the default's the lowest of its records.
pub fn summarize(db: &Database) -> Result<Vec<GroupSummary>, DbError> {
    let mut out = Vec::new();
    let mut group: Vec<u8> = Vec::new();
    let mut records: Vec<Record> = Vec::new();
    for s in db.iter() {
        let r = s?.record;
        let g = crate::key::group_prefix(
            &crate::key::workload_prefix(&r.workload.key()).unwrap_or([0; 16]),
            r.target.id(),
            r.device.id(),
        );
        if g[..GROUP_LEN] != group[..] {
            out.extend(summarize_group(std::mem::take(&mut records)));
            group = g[..GROUP_LEN].to_vec();
        }
        records.push(r);
    }
    out.extend(summarize_group(records));
    Ok(out)
}
