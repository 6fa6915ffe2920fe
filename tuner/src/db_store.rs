//! The tuning database as the tuner's [`Store`]: every completed trial becomes a
//! durable record (flushed before the next candidate runs), resumed runs skip traces
//! already measured for the same workload, target and device, and the cost model
//! starts from the stored records.

use crate::measure::Runner;
use crate::tune::{Store, Trial};
use schedule::Trace;
use std::sync::Arc;
use tir::workload::Workload;
use tir::WorkloadKey;
use tuning_logs::{Database, DeviceIdentity, Query, Record, Target, WorkloadRef};

/// The identity under which a runner's results are stored.
pub fn identity_of(runner: &dyn Runner) -> Result<(Target, DeviceIdentity), String> {
    let sanitize = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    if let Some(device) = runner.identity() {
        let target = match runner.target() {
            codegen::Target::Host => Target::Host {
                threads: runner.threads(),
            },
            codegen::Target::Aarch64Neon { mcpu } => Target::Aarch64Neon {
                mcpu: mcpu.clone(),
                threads: runner.threads(),
            },
            codegen::Target::OpenCl { .. } => Target::OpenCl {
                profile: sanitize(device.opencl_device.as_deref().unwrap_or("opencl")),
            },
        };
        return Ok((target, device));
    }
    match runner.target() {
        codegen::Target::Host => Ok((
            Target::Host {
                threads: runner.threads(),
            },
            DeviceIdentity::host(),
        )),
        codegen::Target::Aarch64Neon { mcpu } => {
            let d = runner.describe();
            let cpu = d.strip_prefix("qemu:").unwrap_or(&d).to_string();
            Ok((
                Target::Aarch64Neon {
                    mcpu: mcpu.clone(),
                    threads: runner.threads(),
                },
                DeviceIdentity {
                    model: format!("qemu-aarch64 -cpu {cpu}"),
                    soc: cpu,
                    abi: "arm64-v8a".into(),
                    cores: 1,
                    opencl_device: None,
                    serial: None,
                },
            ))
        }
        codegen::Target::OpenCl { .. } => {
            let d = runner.describe();
            let name = d.strip_prefix("opencl:").unwrap_or(&d).to_string();
            let mut dev = DeviceIdentity::host();
            dev.opencl_device = Some(name.clone());
            Ok((
                Target::OpenCl {
                    profile: sanitize(&name),
                },
                dev,
            ))
        }
    }
}

/// A [`Store`] over an open database for one workload, target and device.
pub struct DbStore {
    db: Arc<Database>,
    workload: WorkloadRef,
    key: WorkloadKey,
    target: Target,
    device: DeviceIdentity,
}

impl DbStore {
    /// The store of `w`'s results on `runner` in `db`.
    pub fn new(db: Arc<Database>, w: &Workload, runner: &dyn Runner) -> Result<DbStore, String> {
        let (target, device) = identity_of(runner)?;
        Ok(DbStore {
            db,
            workload: WorkloadRef::of(w),
            key: w.key(),
            target,
            device,
        })
    }

    /// Stores a trial's record (durably: the insert flushes).
    fn insert(
        &self,
        trial: &Trial,
        confirmation: Option<tuning_logs::Confirmation>,
    ) -> Result<(), String> {
        self.db
            .insert(&self.record_of(trial, confirmation))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The record of a trial, measured now by this build.
    fn record_of(&self, trial: &Trial, confirmation: Option<tuning_logs::Confirmation>) -> Record {
        let result = match &trial.outcome {
            Ok(m) => tuning_logs::Outcome::Measured(tuning_logs::Measurement {
                median_s: m.median,
                min_s: m.min.min(m.median),
                mean_s: m.mean,
                stddev_s: m.stddev,
                number: m.number.min(u32::MAX as u64) as u32,
                repeat: m.repeat.min(u32::MAX as u64) as u32,
                instructions: m.instructions,
            }),
            Err(f) => tuning_logs::Outcome::Error(tuning_logs::Failure {
                kind: f.kind,
                message: f.message.clone(),
            }),
        };
        Record {
            format: tuning_logs::FORMAT_VERSION,
            workload: self.workload.clone(),
            target: self.target.clone(),
            device: self.device.clone(),
            trace: trial.trace.clone(),
            result,
            grim_version: tuning_logs::GRIM_VERSION.to_string(),
            time_unix_ms: tuning_logs::record::now_unix_ms(),
            confirmation,
        }
    }

    fn query(&self) -> Query<'_> {
        Query {
            workload: &self.key,
            target: &self.target,
            device: &self.device,
        }
    }
}

fn device_lost(r: &Record) -> bool {
    matches!(
        &r.result,
        tuning_logs::Outcome::Error(f) if f.kind == tuning_logs::ErrorKind::DeviceLost
    )
}

impl Store for DbStore {
    /// Candidates whose only records say `device_lost`, or were measured by another
    /// grim build's generated code (their `grim_version` is not
    /// [`tuning_logs::GRIM_VERSION`]), count as not measured: a resumed run measures
    /// them again.
    fn contains(&self, trace_json: &str) -> bool {
        match Trace::from_json(trace_json) {
            Ok(t) => {
                self.db.is_measured(&self.query(), &t).unwrap_or(false)
                    && self
                        .db
                        .records_of(&self.query())
                        .map(|v| {
                            v.iter().any(|s| {
                                s.record.trace == t
                                    && !device_lost(&s.record)
                                    && s.record.is_current()
                            })
                        })
                        .unwrap_or(true)
            }
            Err(_) => false,
        }
    }

    fn put(&mut self, trial: &Trial) -> Result<(), String> {
        self.insert(trial, None)
    }

    fn put_confirmed(
        &mut self,
        trial: &Trial,
        confirmation: &tuning_logs::Confirmation,
    ) -> Result<(), String> {
        self.insert(trial, Some(confirmation.clone()))
    }

    /// The database's preferred record ([`tuning_logs::prefer`]) of this workload,
    /// target and device.
    fn preferred(&self) -> Option<(Trace, f64)> {
        let s = self.db.preferred_best(&self.query()).ok()??;
        let cost = s.record.cost()?;
        Some((s.record.trace, cost))
    }

    /// The best measured trace of this workload and device under every other thread
    /// count of this target (`host`, `host -threads=1`, ... for `host -threads=2`; the
    /// preferred record of each, see [`tuning_logs::prefer`]), best first.
    fn seeds(&self) -> Vec<Trace> {
        if matches!(self.target, Target::OpenCl { .. }) {
            return Vec::new();
        }
        let Ok(all) = self.db.records_of_workload(&self.key) else {
            return Vec::new();
        };
        // The records of each other thread count of this target on this device.
        let mut groups: Vec<(Target, Vec<Record>)> = Vec::new();
        for s in all {
            let r = s.record;
            if r.target == self.target
                || r.device.id() != self.device.id()
                || r.target.clone().with_threads(self.target.threads()) != self.target
            {
                continue;
            }
            match groups.iter_mut().find(|(t, _)| *t == r.target) {
                Some((_, v)) => v.push(r),
                None => groups.push((r.target.clone(), vec![r])),
            }
        }
        // Each group's preferred record (the database's rule: a confirmation round
        // supersedes the single measurements before it).
        let mut best: Vec<(Target, f64, Trace)> = groups
            .into_iter()
            .filter_map(|(t, v)| {
                let i = tuning_logs::preferred(&v, |r| r)?;
                let cost = v[i].cost()?;
                Some((t, cost, v[i].trace.clone()))
            })
            .collect();
        best.sort_by(|a, b| a.1.total_cmp(&b.1));
        best.into_iter().map(|(_, _, t)| t).collect()
    }

    /// The records of this workload, target and device measured by this build's
    /// generated code (older ones are measured again, not reported or learned from).
    fn history(&self) -> Vec<(Trace, Option<f64>)> {
        self.db
            .records_of(&self.query())
            .map(|v| {
                v.into_iter()
                    .filter(|s| !device_lost(&s.record) && s.record.is_current())
                    .map(|s| (s.record.trace.clone(), s.record.cost()))
                    .collect()
            })
            .unwrap_or_default()
    }
}
