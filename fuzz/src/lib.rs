//! Mutation fuzzing of grim's parsers and loaders on stable Rust.
//!
//! Each target (IR text, workload specs, rule files, trace JSON, database import
//! files, the measurement binary's timing line and output file, adb output) starts from a seed
//! corpus of valid inputs generated from real workloads, mutates them byte by byte
//! ([`mutate`]), and runs every input under `catch_unwind` with a time check, a size
//! cap and (in the `fuzz` binary) an allocation cap. Any panic, hang or excessive
//! allocation is a failure: the input is written to a file and [`run`] reports it.
#![warn(missing_docs)]

pub mod alloc;
pub mod corpus;
pub mod mutate;
pub mod targets;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tir::rng::SplitMix64;

/// Largest input fed to a target, in bytes.
pub const MAX_INPUT: usize = 64 * 1024;

/// An input that runs longer than this counts as a hang.
pub const HANG: Duration = Duration::from_secs(1);

/// An input that allocates more than this many bytes at once (on top of what was live
/// before it) fails, where the counting allocator is installed.
pub const MAX_ALLOC: usize = 256 << 20;

/// A fuzz target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `tir::parse_function`, verification and print/parse round trip.
    TirText,
    /// `WorkloadSpec` parsing and canonical round trip.
    Spec,
    /// `RuleSet::parse` and building the rewrites.
    Rules,
    /// `Trace::from_json` and replay.
    TraceJson,
    /// Database export-file reading (`tuning_logs::export::read_from`) and merging.
    DbImport,
    /// `codegen::run::parse_timing`.
    TimingOutput,
    /// `codegen::run::outputs_from_bytes` and the reference comparison.
    OutputsFile,
    /// Everything read from adb output (`tuner::adb::parse`): `adb devices [-l]`, the
    /// identity probe (getprop, `/proc/cpuinfo`, cpufreq), thermal zones, `adb
    /// get-state`, a run's pid line, timing line and exit status.
    AdbOutput,
    /// Model files: grim model JSON (`model::file`), ONNX (`model::onnx`), numpy
    /// `.npz` and PyTorch zip checkpoints (`model::load`); every input goes to each.
    ModelFile,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 9] = [
        Target::TirText,
        Target::Spec,
        Target::Rules,
        Target::TraceJson,
        Target::DbImport,
        Target::TimingOutput,
        Target::OutputsFile,
        Target::AdbOutput,
        Target::ModelFile,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Target::TirText => "tir-text",
            Target::Spec => "spec",
            Target::Rules => "rules",
            Target::TraceJson => "trace-json",
            Target::DbImport => "db-import",
            Target::TimingOutput => "timing-output",
            Target::OutputsFile => "outputs-file",
            Target::AdbOutput => "adb-output",
            Target::ModelFile => "model-file",
        }
    }

    /// The target named `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    fn run(self, data: &[u8], fx: &targets::Fixtures) -> bool {
        match self {
            Target::TirText => targets::tir_text(data, fx),
            Target::Spec => targets::spec(data, fx),
            Target::Rules => targets::rules(data, fx),
            Target::TraceJson => targets::trace_json(data, fx),
            Target::DbImport => targets::db_import(data, fx),
            Target::TimingOutput => targets::timing_output(data, fx),
            Target::OutputsFile => targets::outputs_file(data, fx),
            Target::AdbOutput => targets::adb_output(data, fx),
            Target::ModelFile => targets::model_file(data, fx),
        }
    }
}

/// Options of a fuzzing run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The target.
    pub target: Target,
    /// Inputs to try (the seeds included).
    pub iterations: u64,
    /// Seed of the mutator.
    pub seed: u64,
    /// Where failing inputs are written.
    pub out_dir: PathBuf,
}

/// Why an input failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// The target panicked (the message).
    Panic(String),
    /// The input took longer than [`HANG`] (milliseconds).
    Hang(u128),
    /// The input allocated more than [`MAX_ALLOC`] bytes (the peak).
    Memory(usize),
}

/// A failing input.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What went wrong.
    pub kind: FailureKind,
    /// Where the input was written (when it could be).
    pub file: Option<PathBuf>,
    /// The input.
    pub input: Vec<u8>,
}

/// Totals of a run.
#[derive(Debug, Clone)]
pub struct Stats {
    /// The target.
    pub target: Target,
    /// Inputs tried.
    pub inputs: u64,
    /// Inputs the parser accepted (for import files: with no bad line).
    pub accepted: u64,
    /// Seed inputs (valid examples) among them.
    pub seeds: usize,
    /// Slowest input.
    pub slowest: Duration,
    /// Largest peak allocation of one input (0 without the counting allocator).
    pub peak_alloc: usize,
    /// Inputs that ran longer than [`HANG`] once and were timed again (a stall of the
    /// machine, unless the second run is slow too).
    pub retimed: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The first failure, which stops the run.
    pub failure: Option<Failure>,
}

impl Stats {
    /// Inputs per second.
    pub fn rate(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn write_input(dir: &Path, target: Target, input: &[u8]) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let mut h: u64 = 0xcbf29ce484222325;
    for b in input {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100000001b3);
    }
    let p = dir.join(format!("{}-{h:016x}.bin", target.name()));
    std::fs::write(&p, input).ok()?;
    Some(p)
}

thread_local! {
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Installs a panic hook that records the message (and location) instead of printing
/// it, so that a failure is reported once, with its input.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = match info.payload().downcast_ref::<&str>() {
            Some(s) => s.to_string(),
            None => info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "non-string panic".into()),
        };
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{at}")));
    }));
}

/// Runs one input through `target` without catching anything (to reproduce a failure
/// written by [`run`]).
pub fn run_one(target: Target, data: &[u8]) -> bool {
    target.run(data, &targets::Fixtures::new())
}

/// Runs one target. Stops at the first failure (returned in [`Stats::failure`]).
///
/// A watchdog thread writes the current input and aborts the process when one input
/// runs for more than 10 times [`HANG`] (a true infinite loop cannot be unwound).
pub fn run(opts: &Options) -> Stats {
    quiet_panics();
    let fx = targets::Fixtures::new();
    let seeds = corpus::seeds(opts.target);
    let dict = corpus::dictionary(opts.target);
    let mut rng = SplitMix64::new(opts.seed ^ 0x9e37_79b9_7f4a_7c15);
    let start = Instant::now();
    let current: Arc<Mutex<Vec<u8>>> = Arc::default();
    let started_ms = Arc::new(AtomicU64::new(u64::MAX));
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (current, started_ms, done) = (current.clone(), started_ms.clone(), done.clone());
        let (dir, target) = (opts.out_dir.clone(), opts.target);
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let s = started_ms.load(Ordering::Relaxed);
                let now = start.elapsed().as_millis() as u64;
                if s != u64::MAX && now.saturating_sub(s) > 10 * HANG.as_millis() as u64 {
                    let input = current.lock().map(|c| c.clone()).unwrap_or_default();
                    let file = write_input(&dir, target, &input);
                    eprintln!(
                        "HANG: {} input ran for more than {:?}; written to {file:?}",
                        target.name(),
                        10 * HANG
                    );
                    std::process::abort();
                }
            }
        })
    };
    let mut stats = Stats {
        target: opts.target,
        inputs: 0,
        accepted: 0,
        seeds: seeds.len(),
        slowest: Duration::ZERO,
        peak_alloc: 0,
        retimed: 0,
        elapsed: Duration::ZERO,
        failure: None,
    };
    let mut input = Vec::new();
    while stats.inputs < opts.iterations {
        let i = stats.inputs as usize;
        input.clear();
        if i < seeds.len() {
            input.extend_from_slice(&seeds[i]);
        } else if !seeds.is_empty() {
            input.extend_from_slice(&seeds[(rng.next_u64() % seeds.len() as u64) as usize]);
            mutate::mutate(&mut rng, &mut input, &seeds, dict, MAX_INPUT);
        }
        // Publishing the input for the watchdog costs a copy; do it for slow targets'
        // sake on every input (the copy is small next to parsing).
        if let Ok(mut c) = current.lock() {
            c.clear();
            c.extend_from_slice(&input);
        }
        started_ms.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
        alloc::reset_peak();
        let t0 = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| opts.target.run(&input, &fx)));
        let mut took = t0.elapsed();
        if r.is_ok() && took > HANG {
            // A loaded machine can stall any input: time it again before calling it a
            // hang, and report the second time.
            stats.retimed += 1;
            let t1 = Instant::now();
            let _ = catch_unwind(AssertUnwindSafe(|| opts.target.run(&input, &fx)));
            took = t1.elapsed();
        }
        started_ms.store(u64::MAX, Ordering::Relaxed);
        let peak = alloc::peak_above_base();
        stats.inputs += 1;
        stats.accepted += u64::from(matches!(r, Ok(true)));
        stats.slowest = stats.slowest.max(took);
        stats.peak_alloc = stats.peak_alloc.max(peak);
        let kind = if r.is_err() {
            Some(FailureKind::Panic(
                LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_else(|| "panic".into()),
            ))
        } else if took > HANG {
            Some(FailureKind::Hang(took.as_millis()))
        } else if peak > MAX_ALLOC {
            Some(FailureKind::Memory(peak))
        } else {
            None
        };
        if let Some(kind) = kind {
            let file = write_input(&opts.out_dir, opts.target, &input);
            stats.failure = Some(Failure {
                kind,
                file,
                input: input.clone(),
            });
            break;
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    stats.elapsed = start.elapsed();
    stats
}
