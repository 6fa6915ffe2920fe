//! The tuning loop: propose candidates (random or evolutionary with the cost model),
//! build them in parallel batches, measure each on the runner with its outputs checked
//! against the interpreter, and record every result as it completes.

use crate::confirm::{run_round, ConfirmationReport, Contender, RoundSetup};
use crate::cost_model::CostModel;
use crate::features::features;
use crate::measure::{ErrorKind, Failure, Job, Measurement, Runner};
use crate::space::{Decisions, SearchSpace};
use rayon::prelude::*;
use schedule::{Schedule, Trace};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use tir::rng::SplitMix64;
use tir::workload::Workload;
use tir::{Expr, Function, ParamKind, Stmt, Tensor};

/// How candidates are proposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Uniformly random points of the space.
    Random,
    /// Mutation and crossover of the best measured points, ranked by the cost model,
    /// with epsilon-greedy random exploration.
    Evolutionary,
}

/// A fault to inject into candidates, to test how the tuner survives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The kernel loops (practically) forever.
    Hang,
    /// The kernel writes far out of bounds (a segmentation fault).
    Crash,
    /// The kernel adds 1 to its first output element.
    WrongOutput,
    /// The candidate cannot be generated (a GPU binding on a CPU target).
    BuildError,
    /// The compiler runs (practically) forever: the body is wrapped in a fully
    /// unrolled loop of [`BUILD_HANG_COPIES`] iterations, so the C compiler gets that
    /// many copies of the kernel and runs past any short build timeout.
    BuildHang,
}

/// Copies of the kernel body a [`Fault::BuildHang`] candidate hands the C compiler.
pub const BUILD_HANG_COPIES: i64 = 4096;

/// Test hook: every `every`-th candidate (1-based) gets the next fault of `faults`.
#[derive(Debug, Clone)]
pub struct FaultInjection {
    /// Period.
    pub every: usize,
    /// The faults, used in turn.
    pub faults: Vec<Fault>,
}

/// Options of a tuning run.
#[derive(Debug, Clone)]
pub struct TuneOptions {
    /// Number of candidates to measure (the default schedule included).
    pub trials: usize,
    /// Candidates per build batch.
    pub batch: usize,
    /// Search strategy.
    pub strategy: Strategy,
    /// Seed of every random choice.
    pub seed: u64,
    /// Fraction of random candidates in evolutionary batches.
    pub epsilon: f64,
    /// Scratch directory for sources and binaries.
    pub work_dir: PathBuf,
    /// Fault injection (tests only).
    pub faults: Option<FaultInjection>,
    /// Run the e-graph pass: it picks the BCR compute form that gives the second
    /// starting point of the search (after the lowered function as is), and it
    /// simplifies each candidate's index expressions before code generation.
    pub egraph: bool,
    /// The rules of the e-graph's BCR choice (`None`: the shipped rules).
    pub rules: Option<tir::egraph::rules::RuleSet>,
    /// Stop the run after this many consecutive `device_lost` candidates (the runner
    /// has already tried to reconnect for each); 0 never stops.
    pub max_device_lost: usize,
    /// Candidates of the confirmation round that ends the run (the best distinct
    /// traces, the store's best among them, measured again side by side; see
    /// [`crate::confirm`]); below 2, no round.
    pub confirm: usize,
    /// Measurements of each candidate in the confirmation round.
    pub confirm_rounds: usize,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions {
            trials: 32,
            batch: 8,
            strategy: Strategy::Evolutionary,
            seed: 1,
            epsilon: 0.25,
            work_dir: std::env::temp_dir().join(format!("grim-tune-{}", std::process::id())),
            faults: None,
            egraph: true,
            rules: None,
            max_device_lost: 3,
            confirm: 4,
            confirm_rounds: 5,
        }
    }
}

/// One measured (or failed) candidate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trial {
    /// Order of measurement in this run (0-based).
    pub index: usize,
    /// What the schedule does.
    pub description: String,
    /// The trace.
    pub trace: Trace,
    /// The measurement or the failure.
    pub outcome: Result<Measurement, Failure>,
}

impl Trial {
    /// The cost, for successful trials.
    pub fn cost(&self) -> Option<f64> {
        self.outcome.as_ref().ok().map(|m| m.cost())
    }
}

/// Where results go as they complete (the tuning database, or memory).
pub trait Store {
    /// True when this trace was already measured for this workload, target and device.
    fn contains(&self, trace_json: &str) -> bool;
    /// Stores a completed trial durably.
    fn put(&mut self, trial: &Trial) -> Result<(), String>;
    /// Earlier results for this workload, target and device (for the cost model).
    fn history(&self) -> Vec<(Trace, Option<f64>)>;
    /// Stores a measurement of the confirmation round durably (default: as a plain
    /// trial).
    fn put_confirmed(
        &mut self,
        trial: &Trial,
        confirmation: &tuning_logs::Confirmation,
    ) -> Result<(), String> {
        let _ = confirmation;
        self.put(trial)
    }
    /// The best stored trace and its cost by the database's rule
    /// ([`tuning_logs::prefer`]), when the store keeps records across runs.
    fn preferred(&self) -> Option<(Trace, f64)> {
        None
    }
    /// Starting points from related targets: the best trace of this workload on this
    /// device at each other thread count of the same CPU target (a schedule tuned at
    /// one thread is a good start at four, and its partitioned form often better).
    fn seeds(&self) -> Vec<Trace> {
        Vec::new()
    }
}

/// A store that keeps results in memory only.
#[derive(Default)]
pub struct MemoryStore {
    /// The trials stored so far.
    pub trials: Vec<Trial>,
    /// The confirmation rounds' measurements, each with the number of trials stored
    /// before it.
    pub confirmed: Vec<(usize, Trial, tuning_logs::Confirmation)>,
}

impl Store for MemoryStore {
    fn put_confirmed(
        &mut self,
        trial: &Trial,
        confirmation: &tuning_logs::Confirmation,
    ) -> Result<(), String> {
        self.confirmed
            .push((self.trials.len(), trial.clone(), confirmation.clone()));
        Ok(())
    }
    /// The database's rule ([`tuning_logs::prefer`]) on memory: the newest round's
    /// measurements and the trials stored after it, else every trial; lowest cost.
    fn preferred(&self) -> Option<(Trace, f64)> {
        let newest = self.confirmed.iter().map(|c| c.2.round_unix_ms).max();
        let candidates: Vec<&Trial> = match newest {
            None => self.trials.iter().collect(),
            Some(round) => {
                let of_round: Vec<&(usize, Trial, tuning_logs::Confirmation)> = self
                    .confirmed
                    .iter()
                    .filter(|c| c.2.round_unix_ms == round)
                    .collect();
                let after = of_round.iter().map(|c| c.0).max().unwrap_or(0);
                of_round
                    .into_iter()
                    .map(|c| &c.1)
                    .chain(self.trials[after.min(self.trials.len())..].iter())
                    .collect()
            }
        };
        candidates
            .into_iter()
            .filter_map(|t| t.cost().map(|c| (t.trace.clone(), c)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }
    fn contains(&self, trace_json: &str) -> bool {
        self.trials.iter().any(|t| t.trace.to_json() == trace_json)
    }
    fn put(&mut self, trial: &Trial) -> Result<(), String> {
        self.trials.push(trial.clone());
        Ok(())
    }
    fn history(&self) -> Vec<(Trace, Option<f64>)> {
        self.trials
            .iter()
            .map(|t| (t.trace.clone(), t.cost()))
            .collect()
    }
}

/// Receives progress (a progress bar in the CLI).
pub trait Progress: Sync {
    /// A trial completed; `best` is the best cost so far.
    fn trial(&self, trial: &Trial, done: usize, total: usize, best: Option<f64>, errors: usize);
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {
    fn trial(&self, _: &Trial, _: usize, _: usize, _: Option<f64>, _: usize) {}
}

/// The result of a tuning run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TuneReport {
    /// Canonical workload spec.
    pub workload: String,
    /// The runner (`local`, `qemu:cortex-a76`).
    pub runner: String,
    /// The target.
    pub target: String,
    /// Trials measured in this run, in order.
    pub trials: Vec<Trial>,
    /// Candidates skipped because the store already had them.
    pub skipped_already_measured: usize,
    /// Failures per kind.
    pub errors: BTreeMap<ErrorKind, usize>,
    /// True when stopped early (Ctrl-C).
    pub interrupted: bool,
    /// Number of points of the search space.
    pub space_size: String,
    /// The e-graph's choice per BCR weight, in words (empty without BCR weights or
    /// with the e-graph pass off).
    #[serde(default)]
    pub egraph_choices: Vec<String>,
    /// The trace of the e-graph's starting point, when it differs from the default.
    #[serde(default)]
    pub egraph_trace: Option<Trace>,
    /// Starting points taken from the best records at other thread counts (see
    /// [`Store::seeds`]), parallel forms included.
    #[serde(default)]
    pub seed_points: usize,
    /// The confirmation round, when one ran.
    #[serde(default)]
    pub confirmation: Option<ConfirmationReport>,
    /// Why the confirmation round did not run or failed to build, when it was asked
    /// for and there were candidates.
    #[serde(default)]
    pub confirmation_note: Option<String>,
}

impl TuneReport {
    /// The best successful trial of this run.
    pub fn best(&self) -> Option<&Trial> {
        self.trials
            .iter()
            .filter(|t| t.cost().is_some())
            .min_by(|a, b| {
                a.cost()
                    .unwrap_or(f64::MAX)
                    .total_cmp(&b.cost().unwrap_or(f64::MAX))
            })
    }

    /// The cost of the run's choice: the confirmation round's winner when a round ran,
    /// else the best trial's.
    pub fn best_cost(&self) -> Option<f64> {
        match self.confirmation.as_ref().and_then(|c| c.best()) {
            Some(c) => Some(c.measurement.cost()),
            None => self.best().and_then(|t| t.cost()),
        }
    }

    /// The default schedule's trial, when measured in this run.
    pub fn default_trial(&self) -> Option<&Trial> {
        self.trials.iter().find(|t| t.trace.instructions.is_empty())
    }

    /// The trial of the e-graph's starting point, when measured in this run.
    pub fn egraph_trial(&self) -> Option<&Trial> {
        let t = self.egraph_trace.as_ref()?;
        self.trials.iter().find(|x| &x.trace == t)
    }
}

/// Why a run produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// The workload cannot be scheduled or interpreted.
    #[error("{0}")]
    Setup(String),
    /// Every candidate failed.
    #[error("every candidate failed ({summary})")]
    AllFailed {
        /// Counts per error kind and the first message.
        summary: String,
        /// The report, for the record.
        report: Box<TuneReport>,
    },
    /// The store failed.
    #[error("database: {0}")]
    Store(String),
    /// The device stayed lost for `max_device_lost` candidates in a row; everything
    /// measured before is recorded, and a rerun resumes (lost candidates are retried).
    #[error("{lost} candidates in a row lost the device, giving up ({message}); results so far are recorded, rerun to resume")]
    DeviceLost {
        /// Consecutive lost candidates.
        lost: usize,
        /// The last failure's message.
        message: String,
        /// The report so far.
        report: Box<TuneReport>,
    },
}

/// A proposed candidate, ready to build.
struct Proposal {
    decisions: Decisions,
    description: String,
    func: Function,
    args: BTreeMap<String, Tensor>,
    trace: Trace,
}

/// Loop names that mark a function changed by [`Fault`] injection (one per kind), so
/// that a test harness can tell injected candidates apart.
pub const FAULT_MARKERS: [&str; 5] = ["__hang", "__crash", "__wrong", "__gpu", "__slow"];

fn inject(func: &mut Function, fault: Fault) {
    let out = func
        .params
        .iter()
        .find(|p| p.kind == ParamKind::Output)
        .map(|p| (p.name.clone(), p.shape.len()));
    let Some((out, rank)) = out else { return };
    let body = std::mem::replace(&mut func.body, Stmt::Seq(Vec::new()));
    func.body = match fault {
        Fault::Hang => Stmt::serial("__hang", Expr::Int(1 << 62), body),
        Fault::Crash => {
            let mut idx = vec![Expr::Int(0); rank];
            idx[0] = Expr::Int(1 << 40);
            let bad = Stmt::serial(
                "__crash",
                Expr::Int(1),
                Stmt::store(out, idx, Expr::Float(1.0)),
            );
            Stmt::Seq(vec![bad, body])
        }
        Fault::WrongOutput => {
            let idx = vec![Expr::Int(0); rank];
            let bump = Stmt::store(&out, idx.clone(), Expr::load(&out, idx) + Expr::Float(1.0));
            Stmt::Seq(vec![body, Stmt::serial("__wrong", Expr::Int(1), bump)])
        }
        Fault::BuildHang => Stmt::for_(
            "__slow",
            Expr::Int(0),
            Expr::Int(BUILD_HANG_COPIES),
            tir::ForKind::Unrolled,
            body,
        ),
        Fault::BuildError => Stmt::for_(
            "__gpu",
            Expr::Int(0),
            Expr::Int(1),
            tir::ForKind::ThreadX,
            body,
        ),
    };
}

/// The trace of starting point `d` (named `what` in errors), when there is one.
fn start_trace(
    space: &SearchSpace,
    w: &Workload,
    d: Option<&Decisions>,
    what: &str,
) -> Result<Option<Trace>, TuneError> {
    match d {
        Some(d) => Ok(Some(
            space
                .apply(w, d)
                .map_err(|e| TuneError::Setup(format!("{what} starting point: {e}")))?
                .0
                .trace()
                .clone(),
        )),
        None => Ok(None),
    }
}

/// Removes its directory when dropped, if the directory is empty then (a scratch
/// directory the caller chose keeps whatever else it holds).
struct RemoveWhenEmpty<'p>(&'p Path);

impl Drop for RemoveWhenEmpty<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(self.0);
    }
}

/// Runs the tuning loop for `w` on `runner`, recording into `store`. Each batch's
/// sources and binaries are removed after it; the scratch directory itself is removed
/// at the end, on every exit, when nothing else is left in it.
pub fn tune(
    w: &Workload,
    runner: &dyn Runner,
    store: &mut dyn Store,
    opts: &TuneOptions,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> Result<TuneReport, TuneError> {
    let _scratch = RemoveWhenEmpty(&opts.work_dir);
    let space =
        SearchSpace::for_target(w, matches!(runner.target(), codegen::Target::OpenCl { .. }))
            .for_threads(runner.threads());
    let inputs = w.random_inputs(opts.seed);
    let reference = w
        .interpret(&inputs)
        .map_err(|e| TuneError::Setup(format!("reference interpreter: {e}")))?;
    // The compile pipeline's default point (the e-graph's BCR choice; dense reductions
    // summed in vector lanes): the second starting point.
    let mut egraph_choices = Vec::new();
    let mut egraph_point = None;
    if opts.egraph && crate::space::bcr_weights(w).is_empty() {
        egraph_point = Some(space.egraph_point(&[]));
    } else if opts.egraph {
        if let Some(rules) = opts.rules.as_ref().or(crate::pipeline::shipped_rules()) {
            let choices =
                tir::egraph::bcr_choice::bcr_choices(w, rules, &crate::pipeline::limits())
                    .map_err(|e| TuneError::Setup(format!("e-graph pass: {e}")))?;
            egraph_choices = choices.iter().map(|c| c.to_string()).collect();
            egraph_point = Some(space.egraph_point(&choices));
        }
    }
    // A starting point's multi-threaded forms exist above one thread only.
    let several_threads = matches!(runner.threads(), Some(n) if n > 1);
    let above_one_thread =
        |point: &Option<Decisions>,
         form: &dyn Fn(&Decisions) -> Option<Decisions>|
         -> Option<Decisions> { point.as_ref().filter(|_| several_threads).and_then(form) };
    // The traces of the starting points (kept ahead of the cost model's ranking below).
    let mut start_jsons: HashSet<String> = HashSet::new();
    let mut mark = |point: Option<&Decisions>, what: &str| -> Result<(), TuneError> {
        start_jsons.extend(start_trace(&space, w, point, what)?.map(|t| t.to_json()));
        Ok(())
    };
    // With more than one thread, the parallel form of the best-known starting point
    // (the e-graph's, else the default) is measured too: the search rarely finds a
    // partitioned, specialized, vectorized schedule by mutation alone.
    let best_known = egraph_point
        .clone()
        .unwrap_or_else(|| space.default_point());
    let parallel_point = above_one_thread(&Some(best_known.clone()), &|d| space.parallel_point(d));
    mark(parallel_point.as_ref(), "parallel")?;
    // The windowed form of the e-graph's point (rows in masked lanes, each block row's
    // outputs in a register window): one chunk per entry and no per-row scatter, a
    // form mutation alone rarely reaches (two knobs must agree).
    let window_point = space.window_point(w, &best_known, false);
    mark(window_point.as_ref(), "window")?;
    // The same with padded lanes (no masks; more values read): which wins depends on
    // the machine (see `space_bcr::window_decisions`). Only where the windows apply (a
    // matrix-matrix product refuses them, and padded lanes alone are no form of their
    // own).
    let padded_window_point = space
        .window_point(w, &best_known, true)
        .filter(|d| Some(d) != window_point.as_ref())
        .filter(|d| {
            space.apply(w, d).is_ok_and(|(s, _)| {
                s.trace()
                    .instructions
                    .iter()
                    .any(|i| matches!(i, schedule::trace::Instruction::WindowBlockRows { .. }))
            })
        });
    mark(padded_window_point.as_ref(), "padded window")?;
    // Above one thread, also its parallel form (block rows partitioned in parallel,
    // then windowed).
    let window_parallel_point = above_one_thread(&window_point, &|d| space.parallel_point(d));
    mark(window_parallel_point.as_ref(), "parallel window")?;
    let padded_window_parallel_point =
        above_one_thread(&padded_window_point, &|d| space.parallel_point(d));
    mark(
        padded_window_parallel_point.as_ref(),
        "parallel padded window",
    )?;
    // The register-tiled form of the e-graph's point (a few kept rows times a row of
    // output positions summed in registers; convs and FC with N > 1), and above one
    // thread its parallel form: the row count must suit the entries' kept rows.
    let tile_point = space.tile_point(w, &best_known);
    mark(tile_point.as_ref(), "register tile")?;
    // The same with one-row tiles, which narrow outputs favour (see
    // `SearchSpace::one_row_tile_point`; the MNIST CNN's 14- and 7-wide convs).
    let one_row_tile_point = space.one_row_tile_point(w, &best_known);
    mark(one_row_tile_point.as_ref(), "one-row register tile")?;
    // Both tiles with their entries versioned by kept-column count instead of
    // specialized offsets: the same code with the kept-columns loops unrolled
    // (`SearchSpace::versioned_point`).
    let tile_versioned_points: Vec<Decisions> = [&tile_point, &one_row_tile_point]
        .into_iter()
        .filter_map(|p| p.as_ref().and_then(|d| space.versioned_point(d)))
        .collect();
    for d in &tile_versioned_points {
        mark(Some(d), "register tile, entries versioned")?;
    }
    let tile_parallel_point = above_one_thread(&tile_point, &|d| space.parallel_point(d));
    mark(tile_parallel_point.as_ref(), "parallel register tile")?;
    // Above one thread, the register-tiled point in parallel by output rows (convs:
    // a conv with one or two block rows has little for the block-row partition).
    let tile_rows_point = above_one_thread(&tile_point, &|d| space.output_rows_point(w, d));
    mark(tile_rows_point.as_ref(), "register tile by output rows")?;
    // The best schedules of this workload at other thread counts (two at most), and
    // above one thread their parallel forms: they start where earlier tuning ended.
    // The seeds themselves are measured right after the default and the e-graph's
    // point, ahead of the other starting points (they are the best known schedules; a
    // small budget at 2 threads had measured five other starting points first and
    // left the 1-thread best out), their parallel forms after the other starting points.
    let mut seed_plain: Vec<Decisions> = Vec::new();
    let mut seed_parallel: Vec<Decisions> = Vec::new();
    for t in store.seeds().iter().take(2) {
        if let Some(d) = space.decisions_of(w, t) {
            if parallel_point.is_some() {
                seed_parallel.extend(space.parallel_point(&d));
            }
            seed_plain.push(d);
        }
    }
    for d in seed_plain.iter().chain(&seed_parallel) {
        mark(Some(d), "seed")?;
    }
    let egraph_trace = start_trace(&space, w, egraph_point.as_ref(), "e-graph")?
        .filter(|t| !t.instructions.is_empty());
    let mut rng = SplitMix64::new(opts.seed);
    let mut model = CostModel::new(opts.seed);
    let mut seen: HashSet<String> = HashSet::new();
    let mut stored: HashSet<String> = HashSet::new();
    for (trace, cost) in store.history() {
        stored.insert(trace.to_json());
        if let (Some(c), Ok(s)) = (cost, trace.replay(&w.func, &w.weights)) {
            model.add(features(s.func()), c);
        }
    }
    model.train();
    let mut report = TuneReport {
        workload: w.spec.to_string(),
        runner: runner.describe(),
        target: match runner.threads() {
            Some(n) => format!(
                "{} ({n} thread{})",
                runner.target(),
                if n == 1 { "" } else { "s" }
            ),
            None => runner.target().to_string(),
        },
        trials: Vec::new(),
        skipped_already_measured: 0,
        errors: BTreeMap::new(),
        interrupted: false,
        space_size: space.size().to_string(),
        egraph_choices,
        egraph_trace,
        seed_points: seed_plain.len() + seed_parallel.len(),
        confirmation: None,
        confirmation_note: None,
    };
    // The starting points (the default, the e-graph's, the seeds, the parallel one,
    // the windowed ones (masked, then padded lanes) and register-tiled ones, the tiled
    // one by output rows, the one-row tile and the seeds' parallel forms), kept ahead
    // of the cost model's ranking.
    let egraph_json = report.egraph_trace.as_ref().map(|t| t.to_json());
    let seeded = |s: &Schedule, json: &String| {
        s.trace().instructions.is_empty()
            || egraph_json.as_ref() == Some(json)
            || start_jsons.contains(json)
    };
    // Points measured in this run with their decisions (the evolutionary population).
    let mut population: Vec<(Decisions, f64)> = Vec::new();
    let mut candidate_no = 0usize;
    let mut starts: Vec<Decisions> = vec![space.default_point()];
    starts.extend(egraph_point.iter().cloned());
    starts.extend(seed_plain.iter().cloned());
    starts.extend(parallel_point.iter().cloned());
    starts.extend(window_point.iter().cloned());
    starts.extend(window_parallel_point.iter().cloned());
    starts.extend(padded_window_point.iter().cloned());
    starts.extend(padded_window_parallel_point.iter().cloned());
    starts.extend(tile_point.iter().cloned());
    starts.extend(tile_parallel_point.iter().cloned());
    starts.extend(tile_rows_point.iter().cloned());
    // After the multi-threaded tiles, which a small budget above one thread must
    // reach first.
    starts.extend(one_row_tile_point.iter().cloned());
    starts.extend(tile_versioned_points.iter().cloned());
    starts.extend(seed_parallel.iter().cloned());
    let mut lost_in_a_row = 0usize;
    while report.trials.len() < opts.trials {
        if stop.load(Ordering::SeqCst) {
            report.interrupted = true;
            break;
        }
        let want = opts.batch.min(opts.trials - report.trials.len()).max(1);
        // Propose.
        // The starting points lead every batch until each is measured (they are
        // skipped once seen), so a small batch does not drop the later ones.
        let mut pool: Vec<Decisions> = starts.clone();
        let n_pool = match opts.strategy {
            Strategy::Random => want * 4,
            Strategy::Evolutionary => want * 8,
        };
        for _ in 0..n_pool {
            let d = if opts.strategy == Strategy::Random
                || population.is_empty()
                || (rng.next_unit_f32() as f64) < opts.epsilon
            {
                space.random(&mut rng)
            } else {
                let mut sorted = population.clone();
                sorted.sort_by(|a, b| a.1.total_cmp(&b.1));
                let top = &sorted[..sorted.len().min(8)];
                let a = &top[(rng.next_u64() % top.len() as u64) as usize].0;
                if rng.next_u64().is_multiple_of(5) && top.len() > 1 {
                    let b = &top[(rng.next_u64() % top.len() as u64) as usize].0;
                    let c = space.crossover(a, b, &mut rng);
                    space.mutate(&c, &mut rng)
                } else {
                    space.mutate(a, &mut rng)
                }
            };
            pool.push(d);
        }
        // Apply (in parallel), dedup against everything seen.
        let applied: Vec<Option<(Decisions, Schedule)>> = pool
            .par_iter()
            .map(|d| space.apply(w, d).ok().map(|(s, eff)| (eff, s)))
            .collect();
        let mut fresh: Vec<(Decisions, Schedule, String)> = Vec::new();
        for (eff, s) in applied.into_iter().flatten() {
            let json = s.trace().to_json();
            if seen.contains(&json) || fresh.iter().any(|f| f.2 == json) {
                continue;
            }
            if stored.contains(&json) || store.contains(&json) {
                report.skipped_already_measured += 1;
                seen.insert(json);
                continue;
            }
            fresh.push((eff, s, json));
        }
        if fresh.is_empty() {
            break; // the space is exhausted (or every proposal was measured already)
        }
        // Rank by the cost model (evolutionary), keep `want`, some random.
        if opts.strategy == Strategy::Evolutionary && model.is_trained() {
            let start = fresh.iter().take_while(|f| seeded(&f.1, &f.2)).count();
            let feats: Vec<Vec<f64>> = fresh[start..]
                .iter()
                .map(|f| features(f.1.func()))
                .collect();
            let scores = model.predict(&feats);
            let mut order: Vec<usize> = (0..scores.len()).collect();
            order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
            let mut ranked: Vec<(Decisions, Schedule, String)> = fresh[..start].to_vec();
            let mut rest: Vec<Option<(Decisions, Schedule, String)>> =
                fresh.into_iter().skip(start).map(Some).collect();
            let n_random = ((want as f64) * opts.epsilon).round() as usize;
            for i in order {
                if ranked.len() + n_random >= want {
                    break;
                }
                if let Some(x) = rest[i].take() {
                    ranked.push(x);
                }
            }
            let mut leftovers: Vec<_> = rest.into_iter().flatten().collect();
            while ranked.len() < want && !leftovers.is_empty() {
                let i = (rng.next_u64() % leftovers.len() as u64) as usize;
                ranked.push(leftovers.swap_remove(i));
            }
            fresh = ranked;
        }
        fresh.truncate(want);
        let proposals: Vec<Proposal> = fresh
            .into_iter()
            .map(|(decisions, s, json)| {
                seen.insert(json);
                candidate_no += 1;
                let mut func = if opts.egraph {
                    crate::pipeline::optimize(s.func())
                } else {
                    s.func().clone()
                };
                if let Some(fi) = &opts.faults {
                    if fi.every > 0
                        && candidate_no.is_multiple_of(fi.every)
                        && !fi.faults.is_empty()
                    {
                        let fault = fi.faults[(candidate_no / fi.every - 1) % fi.faults.len()];
                        inject(&mut func, fault);
                    }
                }
                let mut args = inputs.clone();
                args.extend(s.weights().iter().map(|(k, v)| (k.clone(), v.clone())));
                Proposal {
                    description: space.describe(&decisions),
                    decisions,
                    func,
                    args,
                    trace: s.trace().clone(),
                }
            })
            .collect();
        // Build in parallel chunks (one binary each), then measure one by one.
        let chunks = rayon::current_num_threads().clamp(1, 4);
        let per = proposals.len().div_ceil(chunks);
        let batch_dir = opts.work_dir.join(format!("batch{}", report.trials.len()));
        let built: Vec<(usize, Result<PathBuf, Failure>)> = proposals
            .chunks(per.max(1))
            .enumerate()
            .collect::<Vec<_>>()
            .par_iter()
            .map(|(c, chunk)| {
                let jobs: Vec<Job<'_>> = chunk
                    .iter()
                    .map(|p| Job {
                        func: &p.func,
                        args: &p.args,
                    })
                    .collect();
                (
                    *c,
                    runner.build(&jobs, &batch_dir.join(format!("chunk{c}"))),
                )
            })
            .collect();
        for (c, bin) in built {
            let chunk = &proposals[c * per..((c + 1) * per).min(proposals.len())];
            for (i, p) in chunk.iter().enumerate() {
                if stop.load(Ordering::SeqCst) {
                    report.interrupted = true;
                    break;
                }
                let dir = batch_dir.join(format!("chunk{c}"));
                let job = Job {
                    func: &p.func,
                    args: &p.args,
                };
                let outcome = match &bin {
                    Ok(b) => runner.measure(b, i, &job, &reference, &dir),
                    // The batch failed to build: build this candidate alone to find out
                    // whether it is the culprit.
                    Err(_) => {
                        let solo = dir.join(format!("solo{i}"));
                        match runner.build(std::slice::from_ref(&job), &solo) {
                            Ok(b) => runner.measure(&b, 0, &job, &reference, &solo),
                            Err(f) => Err(f),
                        }
                    }
                };
                let trial = Trial {
                    index: report.trials.len(),
                    description: p.description.clone(),
                    trace: p.trace.clone(),
                    outcome,
                };
                if let Err(e) = store.put(&trial) {
                    let _ = std::fs::remove_dir_all(&batch_dir);
                    return Err(TuneError::Store(e));
                }
                match &trial.outcome {
                    Ok(m) => {
                        model.add(features(&p.func), m.cost());
                        population.push((p.decisions.clone(), m.cost()));
                    }
                    Err(f) => *report.errors.entry(f.kind).or_insert(0) += 1,
                }
                let lost = match &trial.outcome {
                    Err(f) if f.kind == ErrorKind::DeviceLost => Some(f.message.clone()),
                    _ => None,
                };
                report.trials.push(trial);
                match lost {
                    Some(message) => {
                        lost_in_a_row += 1;
                        if opts.max_device_lost > 0 && lost_in_a_row >= opts.max_device_lost {
                            let _ = std::fs::remove_dir_all(&batch_dir);
                            return Err(TuneError::DeviceLost {
                                lost: lost_in_a_row,
                                message,
                                report: Box::new(report),
                            });
                        }
                    }
                    None => lost_in_a_row = 0,
                }
                let best = report.best().and_then(|t| t.cost());
                let errors: usize = report.errors.values().sum();
                if let Some(t) = report.trials.last() {
                    progress.trial(t, report.trials.len(), opts.trials, best, errors);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&batch_dir);
        model.train();
    }
    if report.best().is_none() && !report.trials.is_empty() {
        let mut summary: Vec<String> = report
            .errors
            .iter()
            .map(|(k, n)| format!("{n} {k:?}"))
            .collect();
        if let Some(Err(f)) = report.trials.first().map(|t| &t.outcome) {
            summary.push(format!("first: {}", f.message));
        }
        return Err(TuneError::AllFailed {
            summary: summary.join(", "),
            report: Box::new(report),
        });
    }
    if !report.interrupted && !stop.load(Ordering::SeqCst) {
        let setup = RoundSetup {
            w,
            runner,
            inputs: &inputs,
            reference: &reference,
            egraph: opts.egraph,
            dir: &opts.work_dir.join("confirm"),
        };
        confirm_best(&setup, &space, store, opts, &mut report)?;
    }
    Ok(report)
}

/// The confirmation round of a run ([`crate::confirm`]): the store's best trace and
/// this run's best distinct traces, `opts.confirm` in all, measured again side by side;
/// their combined measurements are stored as confirmed records and kept in the report.
/// Nothing runs with fewer than two candidates, below `opts.confirm` 2, or when the
/// costs are instruction counts (deterministic).
fn confirm_best(
    setup: &RoundSetup<'_>,
    space: &SearchSpace,
    store: &mut dyn Store,
    opts: &TuneOptions,
    report: &mut TuneReport,
) -> Result<(), TuneError> {
    if opts.confirm < 2 || opts.confirm_rounds == 0 {
        return Ok(());
    }
    let mut ok: Vec<(&Trial, &Measurement)> = report
        .trials
        .iter()
        .filter_map(|t| t.outcome.as_ref().ok().map(|m| (t, m)))
        .collect();
    if ok.iter().any(|(_, m)| m.instructions.is_some()) {
        return Ok(());
    }
    ok.sort_by(|a, b| a.1.cost().total_cmp(&b.1.cost()));
    let mut contenders: Vec<Contender> = Vec::new();
    let mut taken: HashSet<String> = HashSet::new();
    if let Some((trace, cost)) = store.preferred() {
        let json = trace.to_json();
        let from_run = ok.iter().find(|(t, _)| t.trace.to_json() == json);
        contenders.push(Contender {
            description: match from_run {
                Some((t, _)) => t.description.clone(),
                None => describe_stored(space, setup.w, &trace),
            },
            search_cost: from_run.map_or(cost, |(_, m)| m.cost()),
            from_store: from_run.is_none(),
            trace,
        });
        taken.insert(json);
    }
    for (t, m) in ok {
        if contenders.len() >= opts.confirm {
            break;
        }
        if taken.insert(t.trace.to_json()) {
            contenders.push(Contender {
                trace: t.trace.clone(),
                description: t.description.clone(),
                search_cost: m.cost(),
                from_store: false,
            });
        }
    }
    if contenders.len() < 2 {
        return Ok(());
    }
    let _ = std::fs::create_dir_all(setup.dir);
    let round = run_round(setup, contenders, opts.confirm_rounds);
    let _ = std::fs::remove_dir_all(setup.dir);
    let round = match round {
        Ok(r) => r,
        Err(e) => {
            report.confirmation_note = Some(e);
            return Ok(());
        }
    };
    if round.candidates.len() >= 2 {
        let confirmation = tuning_logs::Confirmation {
            round_unix_ms: round.round_unix_ms,
            candidates: round.candidates.len() as u32,
            rounds: round.rounds as u32,
        };
        for c in &round.candidates {
            let trial = Trial {
                index: report.trials.len(),
                description: c.description.clone(),
                trace: c.trace.clone(),
                outcome: Ok(c.measurement.clone()),
            };
            store
                .put_confirmed(&trial, &confirmation)
                .map_err(TuneError::Store)?;
        }
    } else {
        report.confirmation_note = Some(format!(
            "confirmation: only {} candidate(s) measured without failure; nothing recorded",
            round.candidates.len()
        ));
    }
    report.confirmation = Some(round);
    Ok(())
}

/// The description of a stored trace (the search space's words for its decisions, or
/// a note that the trace is outside this space).
fn describe_stored(space: &SearchSpace, w: &Workload, trace: &Trace) -> String {
    match space.decisions_of(w, trace) {
        Some(d) => space.describe(&d),
        None => "a stored schedule outside this search space".to_string(),
    }
}
