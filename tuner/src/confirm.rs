//! The confirmation round that ends a tuning run: the best candidates measured again
//! side by side, so that the chosen schedule is the fastest one and not the one whose
//! single measurement happened to fall in a quiet moment of the device.
//!
//! During the search each candidate is measured once (a median over a few repeats of
//! some milliseconds), at its own moment: on a shared machine or a phone that heats up,
//! the device's speed moves by more than the gap between the best candidates (on the
//! 2-vCPU VM this was written on, one GRU 256 kernel measured 4.6 us in the search, a
//! median of 6.5 us run again a minute later, and 4.4 to 8.4 us over runs minutes apart;
//! the rounds of one confirmation measured another 6.7, 7.0 and 4.9 us). The round measures the run's best `k` distinct traces (with the best
//! stored record of earlier runs among them) in turn, `rounds` times each, each round
//! in a rotated order, and takes per candidate the median of its rounds' medians. Every
//! round re-checks the outputs against the reference. Its records carry a
//! [`tuning_logs::Confirmation`] and supersede the records measured before the round
//! when the database picks the best ([`tuning_logs::prefer`]).
//!
//! Costs that are instruction counts (qemu) are deterministic: no round is run there.

use crate::measure::{Failure, Job, Measurement, Runner};
use schedule::Trace;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tir::workload::Workload;
use tir::Tensor;

/// A candidate of the confirmation round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfirmedCandidate {
    /// What the schedule does.
    pub description: String,
    /// Its trace.
    pub trace: Trace,
    /// Its cost when it was found (this run's search, or the stored best record).
    pub search_cost: f64,
    /// True when it is the best stored record of earlier runs, not a trial of this run.
    pub from_store: bool,
    /// The combined measurement of the round (see [`combine`]).
    pub measurement: Measurement,
    /// The median of every round, in round order.
    pub round_medians: Vec<f64>,
}

/// What the round did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfirmationReport {
    /// When it started, milliseconds since the Unix epoch (the id of its records).
    pub round_unix_ms: u64,
    /// Measurements of every candidate.
    pub rounds: usize,
    /// The candidates that passed every round, fastest (confirmed) first.
    pub candidates: Vec<ConfirmedCandidate>,
    /// Candidates dropped because a measurement failed, with the failure.
    pub dropped: Vec<(String, Failure)>,
}

impl ConfirmationReport {
    /// The confirmed winner.
    pub fn best(&self) -> Option<&ConfirmedCandidate> {
        self.candidates.first()
    }
}

/// A candidate to confirm: its trace and description, the cost it was found with, and
/// whether it comes from the store.
pub struct Contender {
    /// The trace.
    pub trace: Trace,
    /// What it does.
    pub description: String,
    /// The cost it was found with.
    pub search_cost: f64,
    /// True for the store's best record.
    pub from_store: bool,
}

/// The measurement of a candidate over the rounds: the median of the rounds' medians
/// (the cost), the least of their minima, the mean of their means, the standard
/// deviation of their medians (how much the device moved between rounds), the runs
/// per sample of the first round, the samples of all rounds, the first round's
/// instruction count and the largest error of any round.
pub fn combine(rounds: &[Measurement]) -> Option<Measurement> {
    let first = rounds.first()?;
    let mut medians: Vec<f64> = rounds.iter().map(|m| m.median).collect();
    medians.sort_by(|a, b| a.total_cmp(b));
    let n = medians.len();
    let median = if n % 2 == 1 {
        medians[n / 2]
    } else {
        (medians[n / 2 - 1] + medians[n / 2]) / 2.0
    };
    let mean_of_medians = medians.iter().sum::<f64>() / n as f64;
    let var = medians
        .iter()
        .map(|m| (m - mean_of_medians) * (m - mean_of_medians))
        .sum::<f64>()
        / n as f64;
    Some(Measurement {
        median,
        min: rounds
            .iter()
            .map(|m| m.min)
            .fold(f64::INFINITY, f64::min)
            .min(median),
        mean: rounds.iter().map(|m| m.mean).sum::<f64>() / n as f64,
        stddev: var.sqrt(),
        number: first.number,
        repeat: rounds.iter().map(|m| m.repeat).sum(),
        instructions: first.instructions,
        max_rel_error: rounds.iter().map(|m| m.max_rel_error).fold(0.0, f64::max),
    })
}

/// What a round needs besides its contenders: the workload, the runner, the inputs
/// and reference outputs of the search, whether candidates go through the e-graph
/// pass (as in the search), and the scratch directory to build in.
pub struct RoundSetup<'a> {
    /// The workload.
    pub w: &'a Workload,
    /// The device.
    pub runner: &'a dyn Runner,
    /// The search's inputs.
    pub inputs: &'a BTreeMap<String, Tensor>,
    /// The reference outputs.
    pub reference: &'a BTreeMap<String, Tensor>,
    /// Run each candidate's function through the e-graph pass, as the search did.
    pub egraph: bool,
    /// Where to build.
    pub dir: &'a Path,
}

/// Runs the round: builds `contenders` into one binary, measures each `rounds` times in
/// turn (round `r` starts at contender `r`), drops a contender whose trace does not
/// replay or at its first failed measurement, and returns the survivors fastest first
/// (none when fewer than 2 replay). A failed build is returned as the error (nothing
/// was measured).
pub fn run_round(
    setup: &RoundSetup<'_>,
    contenders: Vec<Contender>,
    rounds: usize,
) -> Result<ConfirmationReport, String> {
    let RoundSetup {
        w,
        runner,
        inputs,
        reference,
        egraph,
        dir,
    } = *setup;
    let round_unix_ms = tuning_logs::record::now_unix_ms();
    let mut prepared = Vec::new();
    let mut dropped = Vec::new();
    for c in contenders {
        let s = match c.trace.replay(&w.func, &w.weights) {
            Ok(s) => s,
            Err(e) => {
                dropped.push((
                    c.description,
                    Failure {
                        kind: crate::measure::ErrorKind::BuildError,
                        message: format!("the trace does not replay: {e}"),
                    },
                ));
                continue;
            }
        };
        let func = if egraph {
            crate::pipeline::optimize(s.func())
        } else {
            s.func().clone()
        };
        let mut args = inputs.clone();
        args.extend(s.weights().iter().map(|(k, v)| (k.clone(), v.clone())));
        prepared.push((c, func, args));
    }
    if prepared.len() < 2 {
        // Nothing to compare side by side (a stored trace that no longer replays).
        return Ok(ConfirmationReport {
            round_unix_ms,
            rounds,
            candidates: Vec::new(),
            dropped,
        });
    }
    let jobs: Vec<Job<'_>> = prepared
        .iter()
        .map(|(_, func, args)| Job { func, args })
        .collect();
    let bin = runner
        .build(&jobs, dir)
        .map_err(|f| format!("confirmation build failed ({:?}): {}", f.kind, f.message))?;
    let n = prepared.len();
    let mut measured: Vec<Vec<Measurement>> = vec![Vec::new(); n];
    let mut failed: Vec<Option<Failure>> = vec![None; n];
    for r in 0..rounds {
        for k in 0..n {
            let i = (k + r) % n;
            if failed[i].is_some() {
                continue;
            }
            match runner.measure(&bin, i, &jobs[i], reference, dir) {
                Ok(m) => measured[i].push(m),
                Err(f) => failed[i] = Some(f),
            }
        }
    }
    let mut candidates = Vec::new();
    for (((c, _, _), ms), f) in prepared.into_iter().zip(measured).zip(failed) {
        match (f, combine(&ms)) {
            (None, Some(measurement)) => candidates.push(ConfirmedCandidate {
                round_medians: ms.iter().map(|m| m.median).collect(),
                description: c.description,
                trace: c.trace,
                search_cost: c.search_cost,
                from_store: c.from_store,
                measurement,
            }),
            (Some(f), _) => dropped.push((c.description, f)),
            (None, None) => {}
        }
    }
    candidates.sort_by(|a, b| a.measurement.cost().total_cmp(&b.measurement.cost()));
    Ok(ConfirmationReport {
        round_unix_ms,
        rounds,
        candidates,
        dropped,
    })
}
