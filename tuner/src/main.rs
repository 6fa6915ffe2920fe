//! `grim-tune`: the grim command-line program.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// grim: a compiler and autotuner for BCR-sparse neural networks on ARM phones.
#[derive(Parser)]
#[command(name = "grim-tune", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The rules of the e-graph pass: the shipped ones, minus `--drop-rule`s, plus
/// `--rules` files.
#[derive(clap::Args, Debug, Clone, Default)]
struct RuleArgs {
    /// Extra rule file to load after the shipped ones (repeatable).
    #[arg(long = "rules")]
    rules: Vec<PathBuf>,
    /// Shipped rule to leave out, by name (repeatable; see `grim-tune rules list`).
    #[arg(long = "drop-rule")]
    drop_rules: Vec<String>,
}

impl RuleArgs {
    fn load(&self) -> Result<tir::egraph::rules::RuleSet, tuner::CliError> {
        Ok(tuner::pipeline::load_rules(&self.rules, &self.drop_rules)?)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Builds a workload from a spec string and prints its key, BCR statistics and
    /// lowered IR. Example: grim-tune show 'bcr-fc:M=256,K=256,N=1,block=16x16,sparsity=0.9,seed=1'
    Show {
        /// Workload spec, `KIND:KEY=VALUE,...` (see README.md).
        spec: String,
        /// Print only the summary, not the IR.
        #[arg(long)]
        no_ir: bool,
    },
    /// Tunes workloads on a device: searches schedules, checks every candidate against
    /// the interpreter, records results, prints default vs best vs dense.
    Tune {
        /// Workload spec, or a file with one spec per line.
        #[arg(long)]
        workload: String,
        /// Target: `host` or `aarch64-neon:MCPU`.
        #[arg(long, default_value = "host")]
        target: String,
        /// Device: `local`, `qemu[:CPU]` or `adb:SERIAL`.
        #[arg(long, default_value = "local")]
        device: String,
        /// Candidates to measure per workload (the default schedule included).
        #[arg(long, default_value_t = 32)]
        trials: usize,
        /// Search strategy.
        #[arg(long, value_enum, default_value = "evolutionary")]
        strategy: tuner::tune::Strategy,
        /// Seed of every random choice.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Per-build timeout, seconds.
        #[arg(long, default_value_t = 120)]
        build_timeout: u64,
        /// Per-run timeout, seconds.
        #[arg(long, default_value_t = 30)]
        run_timeout: u64,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Do not tune the dense version for comparison.
        #[arg(long)]
        no_dense: bool,
        /// Write the tuning curve (best so far vs trial) to an SVG file.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// The tuning database (default: the user's data directory, see README).
        #[arg(long)]
        db: Option<PathBuf>,
        /// The `adb` program for `--device adb:SERIAL` (default: `adb` on PATH).
        #[arg(long)]
        adb: Option<PathBuf>,
        /// On an adb device, run candidates pinned to these CPUs (`taskset` hex mask,
        /// e.g. `f0` for the big cores of a 4+4 phone).
        #[arg(long)]
        cpu_mask: Option<String>,
        /// On an adb device, pause this many seconds before each batch (cooldown).
        #[arg(long)]
        cooldown: Option<f64>,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Lists the adb devices with their identity (model, ABI, SoC, cores and their
    /// frequencies, and the id their tuning records are stored under).
    Devices {
        /// The `adb` program (default: `adb` on PATH).
        #[arg(long)]
        adb: Option<PathBuf>,
    },
    /// Parses and verifies a tir text file.
    CheckIr {
        /// The `.tir` file.
        file: PathBuf,
    },
    /// Generates the C of a (scheduled) workload and builds its measurement binary.
    Build {
        /// Workload spec.
        #[arg(long)]
        workload: String,
        /// Target: `host` or `aarch64-neon:MCPU`.
        #[arg(long, default_value = "host")]
        target: String,
        /// A trace JSON file with the schedule to apply (default schedule otherwise:
        /// the BCR form the e-graph picks, see README).
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Output directory for `kernels.c` and `kernels`.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Builds and runs a (scheduled) workload and compares it with the interpreter;
    /// exits non-zero when the error exceeds the tolerance.
    Check {
        /// Workload spec.
        #[arg(long)]
        workload: String,
        /// Target: `host` or `aarch64-neon:MCPU`.
        #[arg(long, default_value = "host")]
        target: String,
        /// Where to run: this machine, or qemu-aarch64.
        #[arg(long, value_enum, default_value = "local")]
        device: tuner::build_check::Device,
        /// A trace JSON file with the schedule to apply.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Largest accepted relative error.
        #[arg(long, default_value_t = 1e-4)]
        tolerance: f64,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// The tuning database: export, import, merge, show.
    Db {
        #[command(subcommand)]
        command: tuner::db::DbCommand,
    },
    /// E-graph rewrite rules: list them, check their soundness, explain a workload.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Checks every rule of each FILE (the shipped rules when none is given) on 1000
    /// random bindings; prints a counterexample for each unsound rule and fails if any.
    Check {
        /// Rule files (`.rules`).
        files: Vec<PathBuf>,
    },
    /// Prints every loaded rule (shipped, plus --rules files) with its file:line.
    List {
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Runs the e-graph pass on a workload: rules fired, stop reasons, cost before and
    /// after, and the BCR compute form picked.
    Explain {
        /// Workload spec, `KIND:KEY=VALUE,...`.
        #[arg(long)]
        workload: String,
        #[command(flatten)]
        rules: RuleArgs,
        /// Most e-nodes per e-graph run.
        #[arg(long, default_value_t = 10_000)]
        node_limit: usize,
        /// Most iterations per e-graph run.
        #[arg(long, default_value_t = 12)]
        iter_limit: usize,
        /// Most seconds per e-graph run.
        #[arg(long, default_value_t = 2.0)]
        time_limit: f64,
        /// Also print the simplified function and the extracted BCR terms.
        #[arg(long)]
        ir: bool,
    },
}

struct TuneCli {
    workload: String,
    target: String,
    device: String,
    trials: usize,
    strategy: tuner::tune::Strategy,
    seed: u64,
    build_timeout: u64,
    run_timeout: u64,
    json: bool,
    no_dense: bool,
    plot: Option<PathBuf>,
    db: Option<PathBuf>,
    adb: Option<PathBuf>,
    cpu_mask: Option<String>,
    cooldown: Option<f64>,
    rules: RuleArgs,
}

fn tune_command(c: TuneCli) -> Result<String, tuner::CliError> {
    use std::io::IsTerminal;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let other = tuner::CliError::Other;
    let rules = if c.rules.rules.is_empty() && c.rules.drop_rules.is_empty() {
        None
    } else {
        Some(c.rules.load()?)
    };
    let args = tuner::tune_cmd::TuneArgs {
        workloads: tuner::tune_cmd::workloads_from_arg(&c.workload).map_err(other)?,
        target: c.target,
        device: c.device.parse().map_err(other)?,
        trials: c.trials.max(1),
        strategy: c.strategy,
        seed: c.seed,
        build_timeout: std::time::Duration::from_secs(c.build_timeout.max(1)),
        run_timeout: std::time::Duration::from_secs(c.run_timeout.max(1)),
        json: c.json,
        progress: std::io::stderr().is_terminal() && !c.json,
        no_dense: c.no_dense,
        plot: c.plot,
        adb: c.adb,
        cpu_mask: c.cpu_mask,
        cooldown: c
            .cooldown
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(std::time::Duration::from_secs_f64),
        rules,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("grim-tune: stopping after the current candidate (Ctrl-C again to abort)");
    });
    let db_path = match c.db {
        Some(p) => p,
        None => tuning_logs::default_db_path().ok_or_else(|| {
            other("no data directory for the default database: pass --db PATH".into())
        })?,
    };
    let db = Arc::new(
        tuning_logs::Database::open(&db_path)
            .map_err(|e| other(format!("{}: {e}", db_path.display())))?,
    );
    let mut store_for = |w: &tir::workload::Workload, r: &dyn tuner::measure::Runner| {
        tuner::db_store::DbStore::new(db.clone(), w, r)
            .map(|s| Box::new(s) as Box<dyn tuner::tune::Store>)
    };
    let sums = tuner::tune_cmd::run(&args, &mut store_for, &stop).map_err(other)?;
    if args.json {
        serde_json::to_string_pretty(&sums)
            .map(|s| s + "\n")
            .map_err(|e| tuner::CliError::Other(e.to_string()))
    } else {
        Ok(tuner::tune_cmd::table(&sums))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tune {
            workload,
            target,
            device,
            trials,
            strategy,
            seed,
            build_timeout,
            run_timeout,
            json,
            no_dense,
            plot,
            db,
            adb,
            cpu_mask,
            cooldown,
            rules,
        } => tune_command(TuneCli {
            workload,
            target,
            device,
            trials,
            strategy,
            seed,
            build_timeout,
            run_timeout,
            json,
            no_dense,
            plot,
            db,
            adb,
            cpu_mask,
            cooldown,
            rules,
        }),
        Command::Devices { adb } => {
            tuner::adb::devices(adb.as_deref().unwrap_or(std::path::Path::new("adb")))
                .map_err(|e| tuner::CliError::Other(e.to_string()))
        }
        Command::Show { spec, no_ir } => tuner::show(&spec, !no_ir),
        Command::CheckIr { file } => tuner::check_ir(&file),
        Command::Build {
            workload,
            target,
            trace,
            out,
            rules,
        } => rules.load().and_then(|r| {
            tuner::build_check::build(&workload, &target, trace.as_deref(), &out, &r)
        }),
        Command::Check {
            workload,
            target,
            device,
            trace,
            tolerance,
            rules,
        } => {
            let checked = rules.load().and_then(|r| {
                tuner::build_check::check(
                    &workload,
                    &target,
                    device,
                    trace.as_deref(),
                    tolerance,
                    &r,
                )
            });
            match checked {
                Ok(r) if r.ok => Ok(r.text),
                Ok(r) => {
                    print!("{}", r.text);
                    eprintln!("grim-tune: error: error exceeds the tolerance");
                    return ExitCode::FAILURE;
                }
                Err(e) => Err(e),
            }
        }
        Command::Db { command } => tuner::db::run(command).map_err(tuner::CliError::from),
        Command::Rules { command } => match command {
            RulesCommand::Check { files } => match tuner::rules::check(&files) {
                Ok(outcome) if outcome.failed > 0 => {
                    print!("{}", outcome.text);
                    eprintln!(
                        "grim-tune: error: {} rule(s) unsound or vacuous",
                        outcome.failed
                    );
                    return ExitCode::FAILURE;
                }
                Ok(outcome) => Ok(outcome.text),
                Err(e) => Err(e),
            },
            RulesCommand::List { rules } => rules.load().and_then(|r| tuner::rules::list(&r)),
            RulesCommand::Explain {
                workload,
                rules,
                node_limit,
                iter_limit,
                time_limit,
                ir,
            } => {
                if !(time_limit.is_finite() && time_limit > 0.0) {
                    eprintln!(
                        "grim-tune: error: --time-limit must be a positive number of seconds"
                    );
                    return ExitCode::FAILURE;
                }
                let limits = tir::egraph::pass::Limits {
                    nodes: node_limit,
                    iterations: iter_limit,
                    time: std::time::Duration::from_secs_f64(time_limit),
                };
                rules
                    .load()
                    .and_then(|r| tuner::rules::explain(&workload, &r, &limits, ir))
            }
        },
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("grim-tune: error: {e}");
            ExitCode::FAILURE
        }
    }
}
