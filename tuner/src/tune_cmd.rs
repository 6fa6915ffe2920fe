//! `grim-tune tune`: the main job. Tunes a workload on a device, records every result,
//! and prints the default time, the best time, the speedup, and the speedup over the
//! dense version of the same layer (tuned with a quarter of the budget).

use crate::confirm::ConfirmationReport;
use crate::measure::{Limits, LocalRunner, QemuRunner, Runner};
use crate::tune::{
    tune, MemoryStore, Progress, Store, Strategy, Trial, TuneError, TuneOptions, TuneReport,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tir::spec::WorkloadSpec;
use tir::workload::Workload;

/// Where candidates run, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceArg {
    /// This machine.
    Local,
    /// qemu-aarch64 with a CPU model.
    Qemu(String),
    /// An adb device by serial.
    Adb(String),
}

impl DeviceArg {
    /// The unit of the costs measured on this device: instruction counts under qemu
    /// (emulated time says nothing), seconds elsewhere.
    pub fn cost_unit(&self) -> &'static str {
        match self {
            DeviceArg::Qemu(_) => "instructions",
            DeviceArg::Local | DeviceArg::Adb(_) => "seconds",
        }
    }
}

impl std::str::FromStr for DeviceArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(DeviceArg::Local),
            "qemu" => Ok(DeviceArg::Qemu("cortex-a76".into())),
            _ => {
                if let Some(cpu) = s.strip_prefix("qemu:") {
                    if !cpu.is_empty() {
                        return Ok(DeviceArg::Qemu(cpu.into()));
                    }
                }
                if let Some(serial) = s.strip_prefix("adb:") {
                    if !serial.is_empty() {
                        return Ok(DeviceArg::Adb(serial.into()));
                    }
                }
                Err(format!(
                    "unknown device `{s}`, expected local, qemu[:CPU] or adb:SERIAL"
                ))
            }
        }
    }
}

/// Everything `grim-tune tune` takes.
#[derive(Debug, Clone)]
pub struct TuneArgs {
    /// Workload specs (one, or the lines of a file).
    pub workloads: Vec<String>,
    /// Target string (`host`, `aarch64-neon:MCPU`, `opencl`, `opencl:fp16`).
    pub target: String,
    /// Device.
    pub device: DeviceArg,
    /// CPU targets: OpenMP threads of every candidate run (see [`Limits::threads`]).
    pub threads: Option<u32>,
    /// Trials per workload.
    pub trials: usize,
    /// Strategy.
    pub strategy: Strategy,
    /// Seed.
    pub seed: u64,
    /// Build timeout.
    pub build_timeout: Duration,
    /// Run timeout.
    pub run_timeout: Duration,
    /// Print JSON instead of the table.
    pub json: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// Skip tuning the dense version.
    pub no_dense: bool,
    /// Tuning-curve plot output.
    pub plot: Option<PathBuf>,
    /// The `adb` program for `adb:SERIAL` devices (default: `adb` on PATH).
    pub adb: Option<PathBuf>,
    /// Pin candidates on an adb device to these CPUs (`taskset` hex mask).
    pub cpu_mask: Option<String>,
    /// Pause before each batch on an adb device.
    pub cooldown: Option<Duration>,
    /// `--target opencl` on an adb device: the OpenCL library on the device (default:
    /// the usual vendor paths).
    pub opencl_lib: Option<String>,
    /// `--target opencl` on an adb device: the compiler of the device-side harness
    /// (default: by the device's ABI).
    pub opencl_cc: Option<String>,
    /// Workloads built elsewhere (a model's layers, with their real weights), tuned
    /// after the spec workloads, each with its own trial budget.
    pub given: Vec<GivenJob>,
    /// The rules of the e-graph's BCR choice (`None`: the shipped rules).
    pub rules: Option<tir::egraph::rules::RuleSet>,
    /// Candidates of the confirmation round that ends each run (below 2: none).
    pub confirm: usize,
    /// Measurements of each candidate in the confirmation round.
    pub confirm_rounds: usize,
}

/// A workload to tune that was not built from a spec string: a model layer.
#[derive(Debug, Clone)]
pub struct GivenJob {
    /// What to call it in progress and results (e.g. `conv2 bcr-conv2d:...`).
    pub label: String,
    /// The workload, with the model's weights.
    pub workload: Workload,
    /// Its share of the trial budget.
    pub trials: usize,
    /// A pruned layer's dense form ([`model::layer::Layer::densified`]), tuned as a
    /// candidate the model compiler runs instead where faster.
    pub dense_form: bool,
}

/// The tuning jobs of a model: one per distinct layer workload (by key), with
/// `trials` split across them in proportion to their dense multiply-adds per call
/// (where the time goes: a conv with few weights applied at many positions outweighs
/// a large FC applied once; at least 4 each), and for each pruned layer a job for its
/// dense form ([`model::layer::Layer::densified`]; a quarter of the layer's trials, at
/// least 4; none when another job has its workload), which the model compiler runs
/// instead where it is faster. Returns the jobs and a line per layer saying which job
/// tunes it.
pub fn model_jobs(m: &model::Model, trials: usize) -> Result<(Vec<GivenJob>, Vec<String>), String> {
    let mut jobs: Vec<GivenJob> = Vec::new();
    let mut keys = Vec::new();
    let mut macs = Vec::new();
    let mut lines = Vec::new();
    // The job that tunes each layer, in layer order.
    let mut job_of = Vec::new();
    for layer in &m.layers {
        let w = layer.workload().map_err(|e| e.to_string())?;
        let key = w.key();
        match keys.iter().position(|k| *k == key) {
            Some(j) => {
                lines.push(format!(
                    "{}: same workload as {}",
                    layer.name, jobs[j].label
                ));
                job_of.push(j);
            }
            None => {
                lines.push(format!("{}: {} (key {key})", layer.name, w.spec));
                keys.push(key);
                macs.push(layer.dense_macs().max(1));
                job_of.push(jobs.len());
                jobs.push(GivenJob {
                    label: format!("{} {}", layer.name, w.spec),
                    workload: w,
                    trials: 0,
                    dense_form: false,
                });
            }
        }
    }
    let total: usize = macs.iter().sum();
    for (j, wts) in jobs.iter_mut().zip(&macs) {
        j.trials = ((trials as f64 * *wts as f64 / total.max(1) as f64).round() as usize).max(4);
    }
    let mut dense_jobs = Vec::new();
    for (layer, &own_job) in m.layers.iter().zip(&job_of) {
        let Some(d) = layer.densified() else { continue };
        let d = d.map_err(|e| e.to_string())?;
        let w = d.workload().map_err(|e| e.to_string())?;
        let key = w.key();
        if let Some(j) = keys.iter().position(|k| *k == key) {
            let same = jobs
                .iter()
                .chain(&dense_jobs)
                .nth(j)
                .map_or("?", |j| &j.label);
            lines.push(format!(
                "{} (dense form): same workload as {same}",
                layer.name
            ));
            continue;
        }
        let own = jobs[own_job].trials;
        lines.push(format!(
            "{} (dense form): {} (key {key})",
            layer.name, w.spec
        ));
        keys.push(key);
        dense_jobs.push(GivenJob {
            label: format!("{} (dense form) {}", layer.name, w.spec),
            workload: w,
            trials: (own / 4).max(4),
            dense_form: true,
        });
    }
    jobs.extend(dense_jobs);
    Ok((jobs, lines))
}

/// Resolves `--workload SPEC|FILE`: a file holds one spec per line (`#` comments).
pub fn workloads_from_arg(arg: &str) -> Result<Vec<String>, String> {
    let p = std::path::Path::new(arg);
    if !arg.contains(':') && p.exists() {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{arg}: {e}"))?;
        let mut specs = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let spec = line.split('#').next().unwrap_or("").trim();
            if spec.is_empty() {
                continue;
            }
            spec.parse::<WorkloadSpec>()
                .map_err(|e| format!("{arg}:{}: {e}", i + 1))?;
            specs.push(spec.to_string());
        }
        if specs.is_empty() {
            return Err(format!("{arg}: no workload specs in the file"));
        }
        return Ok(specs);
    }
    Ok(vec![arg.to_string()])
}

/// The runner `args` ask for (device and target).
pub fn runner(args: &TuneArgs) -> Result<Box<dyn Runner>, String> {
    let mut limits = Limits {
        build_timeout: args.build_timeout,
        run_timeout: args.run_timeout,
        threads: args.threads,
        ..Limits::default()
    };
    limits.protocol.timeout = args.run_timeout;
    let target: codegen::Target = args
        .target
        .parse()
        .map_err(|e: codegen::target::TargetParseError| e.to_string())?;
    if let (codegen::Target::OpenCl { .. }, Some(_)) = (&target, args.threads) {
        return Err(format!(
            "--threads applies to CPU targets; {target} runs in OpenCL work-groups (tuned by the search)"
        ));
    }
    match (&args.device, &target) {
        (DeviceArg::Local, codegen::Target::Host) => Ok(Box::new(LocalRunner::new(limits))),
        (DeviceArg::Local, codegen::Target::OpenCl { fp16 }) => Ok(Box::new(
            crate::measure::OpenClRunner::new(*fp16, None, limits)?,
        )),
        (DeviceArg::Local, t) => Err(format!(
            "target {t} cannot run on this machine ({}); use --device qemu or --target host",
            std::env::consts::ARCH
        )),
        (DeviceArg::Qemu(cpu), codegen::Target::Aarch64Neon { mcpu }) => {
            Ok(Box::new(QemuRunner::new(mcpu, cpu, limits)))
        }
        (DeviceArg::Qemu(_), t) => Err(format!(
            "--device qemu runs aarch64 code; use --target aarch64-neon:MCPU (not {t})"
        )),
        (DeviceArg::Adb(serial), codegen::Target::Aarch64Neon { mcpu }) => Ok(Box::new(
            crate::adb::AdbRunner::new(adb_options(args, serial), mcpu, limits)
                .map_err(|e| e.to_string())?,
        )),
        (DeviceArg::Adb(serial), codegen::Target::OpenCl { fp16 }) => Ok(Box::new(
            crate::adb::AdbRunner::new_opencl(adb_options(args, serial), *fp16, limits)
                .map_err(|e| e.to_string())?,
        )),
        (DeviceArg::Adb(_), t) => Err(format!(
            "--device adb runs aarch64 or OpenCL code; use --target aarch64-neon:MCPU or --target opencl (not {t})"
        )),
    }
}

fn adb_options(args: &TuneArgs, serial: &str) -> crate::adb::AdbOptions {
    let mut opts = crate::adb::AdbOptions::new(serial);
    if let Some(adb) = &args.adb {
        opts.adb = adb.clone();
    }
    opts.cpu_mask = args.cpu_mask.clone();
    opts.cooldown = args.cooldown;
    opts.opencl_library = args.opencl_lib.clone();
    opts.opencl_cc = args.opencl_cc.clone();
    opts
}

struct Bar {
    bar: ProgressBar,
    instructions: bool,
}

impl Progress for Bar {
    fn trial(&self, _t: &Trial, done: usize, _total: usize, best: Option<f64>, errors: usize) {
        self.bar.set_position(done as u64);
        let best = match best {
            Some(b) if self.instructions => format!("{b:.0} insns"),
            Some(b) => format!("{:.2} us", b * 1e6),
            None => "-".into(),
        };
        self.bar
            .set_message(format!("best {best}, {errors} errors"));
    }
}

/// One workload's summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Canonical spec.
    pub workload: String,
    /// Runner.
    pub device: String,
    /// Target.
    pub target: String,
    /// Unit of the costs (`seconds` or `instructions`).
    pub unit: String,
    /// Trials measured now.
    pub trials: usize,
    /// Already-measured candidates skipped.
    pub skipped: usize,
    /// Failed trials.
    pub errors: usize,
    /// Cost of the default schedule.
    pub default_cost: Option<f64>,
    /// Best cost.
    pub best_cost: Option<f64>,
    /// default / best.
    pub speedup: Option<f64>,
    /// Best cost of the dense version, when tuned.
    pub dense_cost: Option<f64>,
    /// dense / best.
    pub speedup_over_dense: Option<f64>,
    /// Description of the best schedule.
    pub best_schedule: String,
    /// Its trace JSON.
    pub best_trace: String,
    /// Best cost after each trial (the tuning curve).
    pub curve: Vec<Option<f64>>,
    /// True when interrupted.
    pub interrupted: bool,
    /// The e-graph's BCR choice per weight, in words.
    pub egraph_choices: Vec<String>,
    /// Cost of the e-graph's starting point, when measured in this run.
    pub egraph_cost: Option<f64>,
    /// Starting points taken from the records at other thread counts.
    pub seed_points: usize,
    /// The confirmation round that ended the run, when one ran.
    pub confirmation: Option<ConfirmationReport>,
    /// Why a confirmation round did not run to the end, when it did not.
    pub confirmation_note: Option<String>,
}

/// Summarizes a run; `history` (everything stored for this workload, target and
/// device, this run included) gives the overall default, and `preferred` (the store's
/// best by the database's rule, see [`tuning_logs::prefer`]) the overall best, so a
/// resumed run reports the best of all runs; without a store that keeps records, the
/// confirmation round's winner, else the run's best trial.
fn summarize(
    r: &TuneReport,
    unit: &str,
    dense: Option<f64>,
    history: &[(schedule::Trace, Option<f64>)],
    preferred: Option<(schedule::Trace, f64)>,
) -> Summary {
    let best_here = r.best();
    let confirmed = r.confirmation.as_ref().and_then(|c| c.best());
    let overall_best =
        preferred.or_else(|| confirmed.map(|c| (c.trace.clone(), c.measurement.cost())));
    let overall_best = overall_best.as_ref().map(|(t, c)| (t, *c));
    let default_cost = history
        .iter()
        .filter(|(t, _)| t.instructions.is_empty())
        .filter_map(|(_, c)| *c)
        .min_by(|a, b| a.total_cmp(b))
        .or_else(|| r.default_trial().and_then(|t| t.cost()));
    let best_cost = overall_best
        .map(|(_, c)| c)
        .or_else(|| best_here.and_then(|t| t.cost()));
    let best_trace = overall_best
        .map(|(t, _)| t.to_json())
        .or_else(|| best_here.map(|t| t.trace.to_json()))
        .unwrap_or_default();
    let confirmed_description = r.confirmation.as_ref().and_then(|c| {
        c.candidates
            .iter()
            .find(|x| x.trace.to_json() == best_trace)
            .map(|x| x.description.clone())
    });
    let best_schedule = match (confirmed_description, best_here) {
        (Some(d), _) => d,
        (None, Some(t)) if t.trace.to_json() == best_trace => t.description.clone(),
        _ if best_trace.is_empty() => String::new(),
        _ if best_trace == r#"{"format":1,"instructions":[]}"# => "default".to_string(),
        _ => format!("from an earlier run, trace {best_trace}"),
    };
    let mut curve = Vec::new();
    let mut cur: Option<f64> = None;
    for t in &r.trials {
        if let Some(c) = t.cost() {
            cur = Some(cur.map_or(c, |x: f64| x.min(c)));
        }
        curve.push(cur);
    }
    Summary {
        workload: r.workload.clone(),
        device: r.runner.clone(),
        target: r.target.clone(),
        unit: unit.into(),
        trials: r.trials.len(),
        skipped: r.skipped_already_measured,
        errors: r.errors.values().sum(),
        default_cost,
        best_cost,
        speedup: default_cost.zip(best_cost).map(|(d, b)| d / b),
        dense_cost: dense,
        speedup_over_dense: dense.zip(best_cost).map(|(d, b)| d / b),
        best_schedule,
        best_trace,
        curve,
        interrupted: r.interrupted,
        egraph_choices: r.egraph_choices.clone(),
        egraph_cost: r.egraph_trial().and_then(|t| t.cost()),
        seed_points: r.seed_points,
        confirmation: r.confirmation.clone(),
        confirmation_note: r.confirmation_note.clone(),
    }
}

/// A cost for a table: `-`, instructions, or microseconds (from seconds).
pub(crate) fn fmt_cost(c: Option<f64>, unit: &str) -> String {
    match c {
        None => "-".into(),
        Some(v) if unit == "instructions" => format!("{v:.0} insns"),
        Some(v) => format!("{:.2} us", v * 1e6),
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map(|v| format!("{v:.2}x")).unwrap_or_else(|| "-".into())
}

/// Renders summaries as the result table.
pub fn table(sums: &[Summary]) -> String {
    let mut s = String::new();
    s.push_str("| workload | device | trials | errors | default | best | speedup | dense (tuned) | speedup over dense |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for x in sums {
        s.push_str(&format!(
            "| {} | {} | {}{} | {} | {} | {} | {} | {} | {} |\n",
            x.workload,
            x.device,
            x.trials,
            if x.skipped > 0 {
                format!(" ({} already measured, skipped)", x.skipped)
            } else {
                String::new()
            },
            x.errors,
            fmt_cost(x.default_cost, &x.unit),
            fmt_cost(x.best_cost, &x.unit),
            fmt_ratio(x.speedup),
            fmt_cost(x.dense_cost, &x.unit),
            fmt_ratio(x.speedup_over_dense),
        ));
    }
    for x in sums {
        s.push_str(&format!(
            "\nbest schedule for {}: {}\n",
            x.workload, x.best_schedule
        ));
        for c in &x.egraph_choices {
            s.push_str(&format!("e-graph start, {c}\n"));
        }
        if !x.egraph_choices.is_empty() {
            s.push_str(&format!(
                "e-graph start measured: {}\n",
                fmt_cost(x.egraph_cost, &x.unit)
            ));
        } else if x.egraph_cost.is_some() {
            s.push_str(&format!(
                "compile pipeline's default schedule measured: {}\n",
                fmt_cost(x.egraph_cost, &x.unit)
            ));
        }
        if x.seed_points > 0 {
            s.push_str(&format!(
                "started from {} point(s) tuned at other thread counts (their best records, and their parallel forms)\n",
                x.seed_points
            ));
        }
        if let Some(c) = &x.confirmation {
            s.push_str(&confirmation_table(c, &x.unit));
        }
        if let Some(n) = &x.confirmation_note {
            s.push_str(&format!("{n}\n"));
        }
        if x.interrupted {
            s.push_str("(interrupted: results so far are recorded)\n");
        }
    }
    s
}

/// The confirmation round as lines: each candidate's confirmed cost, the cost it was
/// found with, every round's median, and what it does.
fn confirmation_table(c: &ConfirmationReport, unit: &str) -> String {
    let mut s = format!(
        "confirmation round: the {} best candidates measured again in turn, {} time(s) each; \
         the fastest by the median of its rounds is recorded as the best\n",
        c.candidates.len() + c.dropped.len(),
        c.rounds
    );
    s.push_str("| confirmed | when found | rounds | schedule |\n|---|---|---|---|\n");
    for x in &c.candidates {
        let rounds: Vec<String> = x
            .round_medians
            .iter()
            .map(|m| fmt_cost(Some(*m), unit))
            .collect();
        s.push_str(&format!(
            "| {} | {}{} | {} | {} |\n",
            fmt_cost(Some(x.measurement.cost()), unit),
            fmt_cost(Some(x.search_cost), unit),
            if x.from_store { " (stored)" } else { "" },
            rounds.join(" / "),
            x.description
        ));
    }
    for (d, f) in &c.dropped {
        s.push_str(&format!(
            "dropped from the round: {d}: {:?}: {}\n",
            f.kind, f.message
        ));
    }
    s
}

/// Opens the store that records a workload's results on a runner.
pub type StoreFactory<'a> =
    dyn FnMut(&Workload, &dyn Runner) -> Result<Box<dyn Store>, String> + 'a;

/// Runs `grim-tune tune` for every workload, recording into `store_for(spec)`.
pub fn run(
    args: &TuneArgs,
    store_for: &mut StoreFactory<'_>,
    stop: &AtomicBool,
) -> Result<Vec<Summary>, String> {
    let runner = runner(args)?;
    let unit = args.device.cost_unit();
    let mut sums = Vec::new();
    let mut jobs = Vec::new();
    for spec in &args.workloads {
        let w = Workload::from_spec_str(spec).map_err(|e| e.to_string())?;
        jobs.push((w.spec.to_string(), w, args.trials));
    }
    for g in &args.given {
        jobs.push((g.label.clone(), g.workload.clone(), g.trials));
    }
    for (label, w, trials) in jobs {
        let opts = TuneOptions {
            trials,
            strategy: args.strategy,
            seed: args.seed,
            rules: args.rules.clone(),
            confirm: args.confirm,
            confirm_rounds: args.confirm_rounds,
            ..TuneOptions::default()
        };
        let bar = ProgressBar::new(trials as u64);
        if !args.progress {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(label.clone());
        if !args.progress && !args.given.is_empty() {
            eprintln!("tuning {label}: {trials} trials");
        }
        let progress = Bar {
            bar: bar.clone(),
            instructions: unit == "instructions",
        };
        let mut store = store_for(&w, runner.as_ref())?;
        let report = match tune(&w, runner.as_ref(), store.as_mut(), &opts, &progress, stop) {
            Ok(r) => r,
            Err(TuneError::AllFailed { summary, .. }) => {
                bar.finish_and_clear();
                return Err(format!("{}: every candidate failed: {summary}", w.spec));
            }
            Err(e) => {
                bar.finish_and_clear();
                return Err(format!("{}: {e}", w.spec));
            }
        };
        bar.finish_and_clear();
        let dense = if args.no_dense {
            None
        } else {
            match w.spec.dense_form() {
                None => None,
                Some(d) => {
                    let dw = Workload::new(d).map_err(|e| e.to_string())?;
                    let dopts = TuneOptions {
                        trials: (trials / 4).max(4),
                        ..opts.clone()
                    };
                    let mut mem = MemoryStore::default();
                    tune(
                        &dw,
                        runner.as_ref(),
                        &mut mem,
                        &dopts,
                        &crate::tune::NoProgress,
                        stop,
                    )
                    .ok()
                    .and_then(|r| r.best_cost())
                }
            }
        };
        let history = store.history();
        let mut sum = summarize(&report, unit, dense, &history, store.preferred());
        sum.workload = label;
        sums.push(sum);
    }
    if let Some(path) = &args.plot {
        crate::plot::tuning_curve(&sums, path)?;
    }
    Ok(sums)
}
