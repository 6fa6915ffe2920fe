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

/// The workload of `build` and `check`: a spec, or a layer of a model file.
#[derive(clap::Args, Debug, Clone)]
struct WorkloadArgs {
    /// Workload spec.
    #[arg(long, required_unless_present = "model", conflicts_with = "model")]
    workload: Option<String>,
    /// A model file (`grim-tune prune --out`): take the workload of one of its layers,
    /// with the layer's real weights and BCR pattern (needs --layer).
    #[arg(long, requires = "layer")]
    model: Option<PathBuf>,
    /// The layer of --model, by name as `grim-tune run` prints it (e.g. `conv_layers.6`).
    #[arg(long, requires = "model")]
    layer: Option<String>,
}

impl WorkloadArgs {
    fn source(self) -> Result<tuner::build_check::WorkloadSource, tuner::CliError> {
        match (self.workload, self.model, self.layer) {
            (Some(spec), _, _) => Ok(tuner::build_check::WorkloadSource::Spec(spec)),
            (None, Some(model), Some(layer)) => {
                Ok(tuner::build_check::WorkloadSource::ModelLayer { model, layer })
            }
            _ => Err(tuner::CliError::Other(
                "give --workload SPEC, or --model FILE with --layer NAME".into(),
            )),
        }
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
        #[arg(long, required_unless_present = "model", conflicts_with = "model")]
        workload: Option<String>,
        /// A model (a grim model file from `grim-tune prune`, `mnist-cnn`, `g2p`, a
        /// checkpoint or an `.onnx` file): tunes every distinct layer, the `--trials`
        /// budget split across layers by their multiply-adds per call (at least 4
        /// each), and each pruned layer's dense form (run instead where faster).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Target: `host`, `aarch64-neon:MCPU`, `opencl` or `opencl:fp16`.
        #[arg(long, default_value = "host")]
        target: String,
        /// Device: `local`, `qemu[:CPU]` or `adb:SERIAL`.
        #[arg(long, default_value = "local")]
        device: String,
        /// CPU targets: OpenMP threads every candidate runs with (OMP_NUM_THREADS),
        /// stored with the results (`host -threads=N`) and used by `run --threads N`.
        /// With 1, parallel loops are left out of the search; above 1, the parallel
        /// form of the default schedule is measured as a starting point. Default: the
        /// environment's OpenMP setting, stored without a count.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        threads: Option<u32>,
        /// Candidates to measure per workload (the default schedule included).
        #[arg(long, default_value_t = 32)]
        trials: usize,
        /// Search strategy.
        #[arg(long, value_enum, default_value = "evolutionary")]
        strategy: tuner::tune::Strategy,
        /// Seed of every random choice.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Candidates of the confirmation round that ends each workload's run: its best
        /// distinct schedules (with the best stored one) measured again in turn, and the
        /// fastest by the median of its rounds recorded as the best (a single
        /// measurement on a busy machine or a warm phone can be lucky). 0 or 1: no
        /// round. Not counted in --trials; skipped where costs are instruction counts.
        #[arg(long, default_value_t = 4)]
        confirm: usize,
        /// Measurements of each candidate in the confirmation round.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100))]
        confirm_rounds: u64,
        /// Per-build timeout, seconds.
        #[arg(long, default_value_t = 120)]
        build_timeout: u64,
        /// Per-run timeout, seconds.
        #[arg(long, default_value_t = 30)]
        run_timeout: u64,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Do not tune the dense version for comparison (the "dense (tuned)" column).
        /// With `--model`, the pruned layers' dense forms are still tuned: they are
        /// candidates the model runs where faster, not a comparison.
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
        /// With --target opencl on an adb device: the OpenCL library on the device
        /// (default: search /vendor/lib64/libOpenCL.so and the other usual paths).
        #[arg(long)]
        opencl_lib: Option<String>,
        /// With --target opencl on an adb device: the C compiler for the device-side
        /// OpenCL harness (default: aarch64-linux-gnu-gcc for arm64-v8a, cc for x86_64;
        /// an Android phone needs the NDK's aarch64-linux-android<API>-clang).
        #[arg(long)]
        opencl_cc: Option<String>,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Prunes a whole model to BCR: chooses the block size and per-layer rates for a
    /// target compression on calibration data, refits the kept weights, prints the
    /// table and writes the pruned model file.
    /// Example: grim-tune prune --model mnist-cnn --compression 10 --calib mnist --out mnist.bcr
    Prune {
        /// `mnist-cnn`, `g2p` (shipped, see scripts/fetch-models.sh), a `.pth` or
        /// `.npz` checkpoint, an `.onnx` file, or a grim model file.
        #[arg(long)]
        model: String,
        /// Target compression: dense weights / kept weights (or, with `--objective
        /// macs`, dense / kept multiply-adds per inference).
        #[arg(long, default_value_t = 10.0)]
        compression: f64,
        /// What the compression counts: `weights` (storage, GRIM's measure) or `macs`
        /// (multiply-adds per inference, each weight once per output position it is
        /// applied at: a speed target, which prunes the convs of a CNN harder than its
        /// large but cheap FC layers).
        #[arg(long, value_enum, default_value_t = ObjectiveArg::Weights)]
        objective: ObjectiveArg,
        /// Candidate BCR block shapes, e.g. `--block 32x32 --block 16x16`; the best on
        /// the calibration data is used.
        #[arg(long = "block", default_value = "32x32")]
        blocks: Vec<String>,
        /// Calibration data: `mnist`, `cmudict`, or a path.
        #[arg(long)]
        calib: String,
        /// Calibration samples (taken from the start of MNIST; a hash sample of CMUdict
        /// disjoint from the 3000 test words).
        #[arg(long, default_value_t = 500)]
        calib_size: usize,
        /// Plain magnitude pruning, no refit.
        #[arg(long)]
        no_refit: bool,
        /// How each block's kept columns and rows are chosen: `magnitude` by |w|
        /// (GRIM's criterion, the default), `activation` by |w| times the root mean
        /// square of the input each weight multiplies on the calibration data (its
        /// share of the outputs), `best` refits both and keeps, per weight matrix,
        /// the one closer to the dense outputs on held-out calibration data. The
        /// "magnitude pruning only" baseline printed beside the refit always uses
        /// magnitude.
        #[arg(long, value_enum, default_value_t = MaskArg::Magnitude)]
        mask: MaskArg,
        /// How each matrix's kept weights are spread over its blocks: `best` (the
        /// default: the block size and rates are chosen with uniform blocks, then both
        /// spreads are refit at the chosen rates and the one that scores better on the
        /// calibration data is kept for the whole model; the MNIST CNN at 10x keeps the
        /// spread, 99.33% against 98.90%, the g2p GRU uniform blocks), `uniform` (the
        /// same numbers of columns and rows in every block, GRIM's pattern; one refit
        /// less) or `blocks` (the columns and rows of all blocks compete: blocks of
        /// small weights lose more, or all, and blocks of large ones keep more; as many
        /// weights in all). Blocks of different shapes get kernels versioned by
        /// kept-column count, about as fast as uniform ones (the MNIST CNN's spread
        /// convs ran faster). The "magnitude pruning only" baseline beside the refit
        /// is uniform unless `blocks` is given (with `--no-refit` it is the written
        /// model, with the spread kept).
        #[arg(long, value_enum, default_value_t = SpreadArg::Best)]
        spread: SpreadArg,
        /// Epochs of masked fine-tuning after the refit: the kept weights (BCR pattern
        /// unchanged) learn from the dense model's outputs (distillation) on the
        /// calibration data, half to train, half to choose learning rate and epoch
        /// (graph models on images; the g2p model teacher-forced on words). Default 0
        /// (off): `prune` stays a post-training method and its run time and figures
        /// stay as they were; 8 brings the MNIST CNN at 10x to within 0.4 points of
        /// the dense model in about 20 s.
        #[arg(long, default_value_t = 0)]
        finetune_epochs: usize,
        /// Candidate learning rates (Adam) for fine-tuning, e.g. `--finetune-lr 3e-3
        /// --finetune-lr 1e-3`: each trains the first epoch, the one with the lower
        /// validation loss continues.
        #[arg(long = "finetune-lr", default_values_t = [1e-3, 3e-4])]
        finetune_lrs: Vec<f32>,
        /// Samples per fine-tuning step.
        #[arg(long, default_value_t = 32)]
        finetune_batch: usize,
        /// g2p only: fine-tuning training words, taken from every non-test word of
        /// CMUdict in hash order (calibration words first) that is not a validation
        /// word; a count or `all`. Default: the first half of the calibration words.
        #[arg(long, value_parser = parse_count)]
        finetune_words: Option<usize>,
        /// g2p only: fine-tuning validation words, the last ones of the non-test words
        /// in hash order (disjoint from the training words). Default: the second half
        /// of the calibration words.
        #[arg(long, value_parser = parse_positive)]
        finetune_valid: Option<usize>,
        /// Gradual pruning in this many stages (needs --finetune-epochs): the model is
        /// pruned toward the chosen per-layer rates step by step (kept fraction
        /// geometric: e.g. 2.15x, 4.6x, 10x for 3), fine-tuned after every stage; the
        /// final model has the same block size, rates and workloads as one-shot
        /// pruning. Default 1 (one-shot).
        #[arg(long, default_value_t = 1)]
        gradual_steps: usize,
        /// Fine-tuning epochs of every stage but the last (default: --finetune-epochs).
        #[arg(long)]
        gradual_epochs: Option<usize>,
        /// g2p only: training words of every stage but the last (the first ones of
        /// the --finetune-words; default: all of them).
        #[arg(long, value_parser = parse_positive)]
        gradual_words: Option<usize>,
        /// The pruned model file to write.
        #[arg(long)]
        out: PathBuf,
        /// Where the shipped models and data are (default: $GRIM_MODELS_DIR or models).
        #[arg(long)]
        models_dir: Option<PathBuf>,
    },
    /// Runs a (pruned) model compiled with the best tuned schedules on test data,
    /// dense vs BCR side by side: accuracy, latency, check against the interpreter.
    Run {
        /// The model to run (usually from `grim-tune prune`).
        #[arg(long)]
        model: String,
        /// Its dense original, for the comparison (e.g. `mnist-cnn`).
        #[arg(long)]
        dense: Option<String>,
        /// Test data: `mnist`, `cmudict`, or a path.
        #[arg(long)]
        data: String,
        /// Calibration samples at the start of the data, skipped (as given to prune).
        #[arg(long, default_value_t = 500)]
        calib_size: usize,
        /// At most this many test samples.
        #[arg(long)]
        limit: Option<usize>,
        /// Device: `local`, `qemu[:CPU]` or `adb:SERIAL`.
        #[arg(long, default_value = "local")]
        device: String,
        /// `-mcpu` of the NEON build for qemu and adb devices.
        #[arg(long, default_value = "cortex-a76")]
        mcpu: String,
        /// The `adb` program (default: `adb` on PATH).
        #[arg(long)]
        adb: Option<PathBuf>,
        /// The tuning database (default: the user's data directory).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Timed inferences (median reported).
        #[arg(long, default_value_t = 50)]
        repeat: usize,
        /// Outputs compared with the reference interpreter.
        #[arg(long, default_value_t = 2)]
        check: usize,
        /// OpenMP threads of the runs (OMP_NUM_THREADS); picks the schedules tuned
        /// with `tune --threads N`. Default: the environment's, schedules tuned
        /// without --threads.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        threads: Option<u32>,
        /// Where the shipped models and data are (default: $GRIM_MODELS_DIR or models).
        #[arg(long)]
        models_dir: Option<PathBuf>,
    },
    /// Writes a model for other tools: ONNX when --out ends in `.onnx` (BCR layers as
    /// their effective dense weights), else a grim model file; with --samples-out, also
    /// the test split of --data as raw tensors with grim's reference outputs. Example:
    /// grim-tune convert --model mnist-cnn --out mnist.onnx --data mnist --calib-size 1000 --samples-out mnist-samples
    Convert {
        /// The model (`mnist-cnn`, `g2p`, a checkpoint, an `.onnx` or a grim model file).
        #[arg(long)]
        model: String,
        /// The file written: ONNX when it ends in `.onnx`, else a grim model file.
        #[arg(long)]
        out: PathBuf,
        /// Also write the test samples (inputs, labels, reference outputs) here.
        #[arg(long, requires = "data")]
        samples_out: Option<PathBuf>,
        /// Test data of the samples: `mnist` or a path.
        #[arg(long, requires = "samples_out")]
        data: Option<String>,
        /// Calibration samples at the start of the data, skipped (as given to prune).
        #[arg(long, default_value_t = 500)]
        calib_size: usize,
        /// At most this many test samples.
        #[arg(long)]
        limit: Option<usize>,
        /// Where the shipped models and data are (default: $GRIM_MODELS_DIR or models).
        #[arg(long)]
        models_dir: Option<PathBuf>,
    },
    /// Lists the adb devices with their identity (model, ABI, SoC, cores and their
    /// frequencies, and the id their tuning records are stored under).
    Devices {
        /// The `adb` program (default: `adb` on PATH).
        #[arg(long)]
        adb: Option<PathBuf>,
        /// Also find each device's OpenCL device (runs the OpenCL harness on it).
        #[arg(long)]
        opencl: bool,
        /// The OpenCL library on the devices (default: the usual vendor paths).
        #[arg(long)]
        opencl_lib: Option<String>,
        /// The C compiler for the device-side OpenCL harness (default: by ABI).
        #[arg(long)]
        opencl_cc: Option<String>,
    },
    /// Parses and verifies a tir text file.
    CheckIr {
        /// The `.tir` file.
        file: PathBuf,
    },
    /// Generates the C of a (scheduled) workload and builds its measurement binary.
    Build {
        #[command(flatten)]
        workload: WorkloadArgs,
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
        #[command(flatten)]
        workload: WorkloadArgs,
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
        /// Build and run in this directory and keep it: `kernels.c`, the binary, the
        /// input file `in0.bin` and the output `out0.bin` (CPU targets), for experiments by hand
        /// (`kernels 0 in0.bin out.bin 1 15 20` times an edited build on the same
        /// inputs). By default a scratch directory is used and removed.
        #[arg(long)]
        keep: Option<PathBuf>,
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

/// How `prune --mask` ranks a block's columns and rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MaskArg {
    /// Both, per weight matrix the one whose refit is closer to the dense outputs.
    Best,
    /// By |w| times the input's root mean square on the calibration data.
    Activation,
    /// By |w| alone.
    Magnitude,
}

/// How `prune --spread` spreads a matrix's kept weights over its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SpreadArg {
    /// Both refit at the chosen rates; the one that scores better is kept.
    Best,
    /// Unevenly: the columns and rows of all blocks compete.
    Blocks,
    /// The same numbers of columns and rows in every block.
    Uniform,
}

/// What `prune --compression` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ObjectiveArg {
    /// Dense weights / kept weights.
    Weights,
    /// Dense multiply-adds / kept multiply-adds per inference.
    Macs,
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
    workload: Option<String>,
    model: Option<PathBuf>,
    target: String,
    device: String,
    threads: Option<u32>,
    trials: usize,
    strategy: tuner::tune::Strategy,
    seed: u64,
    confirm: usize,
    confirm_rounds: u64,
    build_timeout: u64,
    run_timeout: u64,
    json: bool,
    no_dense: bool,
    plot: Option<PathBuf>,
    db: Option<PathBuf>,
    adb: Option<PathBuf>,
    cpu_mask: Option<String>,
    cooldown: Option<f64>,
    opencl_lib: Option<String>,
    opencl_cc: Option<String>,
    rules: RuleArgs,
}

/// A positive count.
fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("`{s}`: {e}")),
    }
}

/// A positive count or `all`.
fn parse_count(s: &str) -> Result<usize, String> {
    if s == "all" {
        Ok(usize::MAX)
    } else {
        parse_positive(s)
    }
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
    let (workloads, given) = match (&c.workload, &c.model) {
        (Some(w), _) => (
            tuner::tune_cmd::workloads_from_arg(w).map_err(other)?,
            Vec::new(),
        ),
        (None, Some(path)) => {
            let m =
                tuner::model_cmd::load_model(&path.to_string_lossy(), &model::zoo::default_dir())
                    .map_err(other)?;
            let (jobs, lines) = tuner::tune_cmd::model_jobs(&m, c.trials.max(1)).map_err(other)?;
            let dense_forms = jobs.iter().filter(|j| j.dense_form).count();
            eprintln!(
                "model `{}`: {} layers, {} distinct workloads to tune, plus the dense forms of {} pruned ones",
                m.name,
                m.layers.len(),
                jobs.len() - dense_forms,
                dense_forms
            );
            for l in lines {
                eprintln!("  {l}");
            }
            (Vec::new(), jobs)
        }
        (None, None) => return Err(other("give --workload or --model".into())),
    };
    let args = tuner::tune_cmd::TuneArgs {
        workloads,
        given,
        target: c.target,
        device: c.device.parse().map_err(other)?,
        threads: c.threads,
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
        opencl_lib: c.opencl_lib,
        opencl_cc: c.opencl_cc,
        rules,
        confirm: c.confirm,
        confirm_rounds: c.confirm_rounds as usize,
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
            model,
            target,
            device,
            threads,
            trials,
            strategy,
            seed,
            confirm,
            confirm_rounds,
            build_timeout,
            run_timeout,
            json,
            no_dense,
            plot,
            db,
            adb,
            cpu_mask,
            cooldown,
            opencl_lib,
            opencl_cc,
            rules,
        } => tune_command(TuneCli {
            workload,
            model,
            target,
            device,
            threads,
            trials,
            strategy,
            seed,
            confirm,
            confirm_rounds,
            build_timeout,
            run_timeout,
            json,
            no_dense,
            plot,
            db,
            adb,
            cpu_mask,
            cooldown,
            opencl_lib,
            opencl_cc,
            rules,
        }),
        Command::Devices {
            adb,
            opencl,
            opencl_lib,
            opencl_cc,
        } => {
            let adb = adb.unwrap_or_else(|| PathBuf::from("adb"));
            let template = opencl.then(|| {
                let mut o = tuner::adb::AdbOptions::new("-");
                o.adb = adb.clone();
                o.opencl_library = opencl_lib;
                o.opencl_cc = opencl_cc;
                o
            });
            tuner::adb::devices(&adb, template.as_ref())
                .map_err(|e| tuner::CliError::Other(e.to_string()))
        }
        Command::Prune {
            model,
            compression,
            objective,
            blocks,
            calib,
            calib_size,
            no_refit,
            mask,
            spread,
            finetune_epochs,
            finetune_lrs,
            finetune_batch,
            finetune_words,
            finetune_valid,
            gradual_steps,
            gradual_epochs,
            gradual_words,
            out,
            models_dir,
        } => blocks
            .iter()
            .map(|b| {
                b.parse::<tir::BlockShape>()
                    .map_err(|e| tuner::CliError::Other(format!("--block {b}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()
            .and_then(|blocks| {
                tuner::model_cmd::prune(&tuner::model_cmd::PruneArgs {
                    model,
                    models_dir: models_dir.unwrap_or_else(model::zoo::default_dir),
                    compression,
                    objective: match objective {
                        ObjectiveArg::Weights => model::rates::Objective::Weights,
                        ObjectiveArg::Macs => model::rates::Objective::Macs,
                    },
                    blocks,
                    calib,
                    calib_size,
                    no_refit,
                    mask: match mask {
                        MaskArg::Activation => model::rates::MaskCriterion::Activation,
                        MaskArg::Magnitude => model::rates::MaskCriterion::Magnitude,
                        MaskArg::Best => model::rates::MaskCriterion::Best,
                    },
                    spread: match spread {
                        SpreadArg::Best => model::rates::SpreadChoice::Best,
                        SpreadArg::Blocks => model::rates::SpreadChoice::AcrossBlocks,
                        SpreadArg::Uniform => model::rates::SpreadChoice::Uniform,
                    },
                    finetune_epochs,
                    finetune_lrs,
                    finetune_batch,
                    finetune_words: model::task::FinetuneWords {
                        train: finetune_words.unwrap_or(0),
                        valid: finetune_valid.unwrap_or(0),
                    },
                    gradual_steps,
                    gradual_epochs: gradual_epochs.unwrap_or(finetune_epochs),
                    gradual_words,
                    out,
                })
                .map_err(tuner::CliError::Other)
            }),
        Command::Run {
            model,
            dense,
            data,
            calib_size,
            limit,
            device,
            mcpu,
            adb,
            db,
            repeat,
            check,
            threads,
            models_dir,
        } => device
            .parse()
            .map_err(tuner::CliError::Other)
            .and_then(|device| {
                tuner::model_cmd::run(&tuner::model_cmd::RunArgs {
                    model,
                    dense,
                    models_dir: models_dir.unwrap_or_else(model::zoo::default_dir),
                    data,
                    calib_size,
                    limit,
                    device,
                    mcpu,
                    adb,
                    db,
                    repeat,
                    check,
                    threads,
                })
                .map_err(tuner::CliError::Other)
            }),
        Command::Convert {
            model,
            out,
            samples_out,
            data,
            calib_size,
            limit,
            models_dir,
        } => {
            let samples = match (samples_out, data) {
                (Some(dir), Some(data)) => Some(tuner::convert_cmd::SamplesArgs {
                    data,
                    calib_size,
                    limit,
                    dir,
                }),
                _ => None,
            };
            tuner::convert_cmd::convert(&tuner::convert_cmd::ConvertArgs {
                model,
                models_dir: models_dir.unwrap_or_else(model::zoo::default_dir),
                out,
                samples,
            })
            .map_err(tuner::CliError::Other)
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
            tuner::build_check::build(&workload.source()?, &target, trace.as_deref(), &out, &r)
        }),
        Command::Check {
            workload,
            target,
            device,
            trace,
            tolerance,
            keep,
            rules,
        } => {
            let checked = rules.load().and_then(|r| {
                tuner::build_check::check(
                    &workload.clone().source()?,
                    &target,
                    device,
                    trace.as_deref(),
                    tolerance,
                    keep.as_deref(),
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
