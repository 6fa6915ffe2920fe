//! Per-group summaries of a database, for `grim-tune db show`.

use crate::db::Database;
use crate::device::DeviceIdentity;
use crate::error::DbError;
use crate::key::GROUP_LEN;
use crate::record::WorkloadRef;
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

/// One summary per (workload, target, device), in key order.
pub fn summarize(db: &Database) -> Result<Vec<GroupSummary>, DbError> {
    let mut out: Vec<(Vec<u8>, GroupSummary)> = Vec::new();
    for s in db.iter() {
        let s = s?;
        let r = s.record;
        let group = crate::key::group_prefix(
            &crate::key::workload_prefix(&r.workload.key()).unwrap_or([0; 16]),
            r.target.id(),
            r.device.id(),
        );
        let median = r.cost();
        let is_default = r.trace.instructions.is_empty();
        match out.last_mut() {
            Some((g, sum)) if g[..] == group[..GROUP_LEN] => {
                sum.trials += 1;
                sum.instructions |= r.cost_is_instructions();
                sum.errors += usize::from(median.is_none());
                sum.best_s = min_opt(sum.best_s, median);
                if is_default {
                    sum.default_s = min_opt(sum.default_s, median);
                }
            }
            _ => out.push((
                group.to_vec(),
                GroupSummary {
                    trials: 1,
                    errors: usize::from(median.is_none()),
                    best_s: median,
                    default_s: if is_default { median } else { None },
                    instructions: r.cost_is_instructions(),
                    workload: r.workload,
                    target: r.target,
                    device: r.device,
                },
            )),
        }
    }
    Ok(out.into_iter().map(|(_, s)| s).collect())
}
