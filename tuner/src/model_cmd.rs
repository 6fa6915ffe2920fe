//! `grim-tune prune` and `grim-tune run`: whole models.
//!
//! - `prune` loads a model (a shipped one by name, its original file, an ONNX file or
//!   a grim model file), chooses the BCR block size and per-layer rates for a target
//!   compression on calibration data ([`model::rates`]), refits the kept weights,
//!   optionally fine-tunes them with distillation from the dense model
//!   ([`model::finetune`]), prints the chosen table with calibration scores and test
//!   accuracy (dense, magnitude, refit, fine-tuned), and writes the pruned model file.
//! - `run` compiles a pruned model and its dense original with the best schedules of the
//!   tuning database (the default loop nest, with a note, for layers without one) into
//!   standalone programs, runs them on the test data locally, under qemu or over adb,
//!   checks the first outputs against the reference interpreter, and prints accuracy
//!   and latency side by side.

use crate::model_run::{run_program, target_for, ModelDevice};
use crate::tune_cmd::fmt_cost;
use crate::tune_cmd::{DeviceArg, TuneArgs};
use model::compiled::{schedules, ScheduleSource};
use model::finetune::FinetuneOptions;
use model::rates::{compression, prune_model, PruneOptions};
use model::standalone::{self, f32_bytes, f32_values, sequences_bytes, sequences_from_bytes};
use model::task::{data_path, Accuracy, FinetuneWords, Task};
use model::{Body, Interpreter, Model};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tir::bcr::BlockShape;

/// Loads a model argument: `mnist-cnn` or `g2p` (the shipped models, from
/// `models_dir`), a `.pth` MNIST CNN checkpoint, a g2p `.npz` checkpoint, an `.onnx`
/// file (batch 1), or a grim model file (anything else).
pub fn load_model(arg: &str, models_dir: &Path) -> Result<Model, String> {
    let p = Path::new(arg);
    let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
    let r = match (arg, ext) {
        ("mnist-cnn", _) => model::zoo::mnist_cnn::load(models_dir),
        ("g2p", _) => model::zoo::g2p::load(models_dir),
        (_, "pth") => model::zoo::mnist_cnn::load_file(p),
        (_, "npz") => model::zoo::g2p::load_file(p),
        (_, "onnx") => model::onnx::import(p, &model::onnx::ImportOptions::default()),
        _ => model::file::load(p),
    };
    r.map_err(|e| {
        let hint = if matches!(arg, "mnist-cnn" | "g2p") {
            " (run scripts/fetch-models.sh, or set GRIM_MODELS_DIR)"
        } else {
            ""
        };
        format!("{e}{hint}")
    })
}

/// Everything `grim-tune prune` takes.
#[derive(Debug, Clone)]
pub struct PruneArgs {
    /// The dense model (see [`load_model`]).
    pub model: String,
    /// Where shipped models and data live.
    pub models_dir: PathBuf,
    /// Target compression (dense / kept, counted as `objective` says).
    pub compression: f64,
    /// What the compression counts.
    pub objective: model::rates::Objective,
    /// Candidate block shapes.
    pub blocks: Vec<BlockShape>,
    /// Calibration data (`mnist`, `cmudict` or a path).
    pub calib: String,
    /// Calibration samples.
    pub calib_size: usize,
    /// Skip the refit (plain magnitude pruning).
    pub no_refit: bool,
    /// How each block's kept columns and rows are chosen (with calibration data).
    pub mask: model::rates::MaskCriterion,
    /// How each matrix's kept weights are spread over its blocks.
    pub spread: model::rates::SpreadChoice,
    /// Epochs of masked fine-tuning with distillation from the dense model after the
    /// refit (0: none).
    pub finetune_epochs: usize,
    /// Candidate fine-tuning learning rates (see [`FinetuneOptions::learning_rates`]).
    pub finetune_lrs: Vec<f32>,
    /// Samples per fine-tuning step.
    pub finetune_batch: usize,
    /// Which words fine-tune the g2p model.
    pub finetune_words: FinetuneWords,
    /// Stages of gradual pruning (1: one-shot).
    pub gradual_steps: usize,
    /// Fine-tuning epochs of every stage but the last.
    pub gradual_epochs: usize,
    /// Training words of every stage but the last (g2p; `None`: all).
    pub gradual_words: Option<usize>,
    /// Where to write the pruned model.
    pub out: PathBuf,
}

/// Runs `grim-tune prune`; returns the report.
pub fn prune(a: &PruneArgs) -> Result<String, String> {
    if a.gradual_steps == 0 || (a.gradual_steps > 1 && a.finetune_epochs == 0) {
        return Err(format!(
            "--gradual-steps {} needs at least 1 stage, and --finetune-epochs when above 1",
            a.gradual_steps
        ));
    }
    let dense = load_model(&a.model, &a.models_dir)?;
    let data = data_path(&a.calib, &a.models_dir);
    let task = Task::load(&dense, &data, a.calib_size).map_err(|e| e.to_string())?;
    if matches!(task, Task::Mnist { .. })
        && (a.finetune_words != FinetuneWords::default() || a.gradual_words.is_some())
    {
        return Err(
            "--finetune-words, --finetune-valid and --gradual-words apply to the g2p model only"
                .to_string(),
        );
    }
    eprintln!(
        "prune: model `{}` ({} layers), calibration data {} ({} samples)",
        dense.name,
        dense.layers.len(),
        data.display(),
        a.calib_size
    );
    let opts = PruneOptions {
        compression: a.compression,
        objective: a.objective,
        blocks: a.blocks.clone(),
        refit: !a.no_refit,
        mask: a.mask,
        spread: a.spread,
        ..PruneOptions::default()
    };
    let t0 = std::time::Instant::now();
    let grams = if opts.refit {
        eprintln!("prune: recording calibration inputs of every layer");
        Some(task.calibration_grams(&dense).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let mut score = |m: &Model| task.score(m);
    let mut calibrate = |m: &Model| task.paired_calibration(&dense, m);
    let mut progress =
        |line: &str| eprintln!("prune: {line} ({:.0} s)", t0.elapsed().as_secs_f64());
    let (pruned, report) = prune_model(
        &dense,
        &opts,
        grams.as_ref(),
        if opts.refit {
            Some(&mut calibrate)
        } else {
            None
        },
        &mut score,
        &mut progress,
    )
    .map_err(|e| e.to_string())?;
    let tuned = if a.finetune_epochs > 0 {
        let ft = FinetuneOptions {
            epochs: a.finetune_epochs,
            learning_rates: a.finetune_lrs.clone(),
            batch: a.finetune_batch,
            ..FinetuneOptions::default()
        };
        eprintln!("prune: preparing the fine-tuning data (teacher outputs)");
        let set = task
            .finetune_set(&dense, a.finetune_words)
            .map_err(|e| e.to_string())?;
        let t1 = std::time::Instant::now();
        let mut progress =
            |line: &str| eprintln!("prune: {line} [{:.0} s]", t1.elapsed().as_secs_f64());
        if a.gradual_steps > 1 {
            let early_set = a.gradual_words.map(|n| set.first_train_words(n));
            let rates: Vec<f64> = report.rates.iter().map(|r| r.1).collect();
            let mut reports = Vec::new();
            let mut stage_lines = Vec::new();
            let mut train = |m: &Model, stage: usize| -> Result<Model, model::ModelError> {
                let o = FinetuneOptions {
                    epochs: if stage == a.gradual_steps {
                        a.finetune_epochs
                    } else {
                        a.gradual_epochs
                    },
                    ..ft.clone()
                };
                let mut p = |line: &str| {
                    eprintln!(
                        "prune: stage {stage}: {line} [{:.0} s]",
                        t1.elapsed().as_secs_f64()
                    )
                };
                let stage_set = match &early_set {
                    Some(e) if stage < a.gradual_steps => e,
                    _ => &set,
                };
                let (out, r) = task.finetune_on(stage_set, m, &dense, &o, &mut p)?;
                let acc = task.accuracy(&out, model::Reference::default)?;
                let line = format!(
                    "test: gradual stage {stage}/{} ({:.2}x, {} epochs): {acc}",
                    a.gradual_steps,
                    compression(&out),
                    o.epochs
                );
                eprintln!("prune: {line}");
                stage_lines.push(line);
                reports.push(r);
                Ok(out)
            };
            let mut p = |line: &str| eprintln!("prune: {line}");
            let m = model::gradual::gradual_prune(
                &dense,
                report.block,
                &rates,
                a.gradual_steps,
                grams.as_ref(),
                &opts.ridges,
                model::rates::MaskRule {
                    criterion: opts.mask,
                    spread: report.spread,
                },
                &mut train,
                &mut p,
            )
            .map_err(|e| e.to_string())?;
            let seconds = t1.elapsed().as_secs_f64();
            let last = reports
                .pop()
                .ok_or_else(|| "gradual pruning ran no stage".to_string())?;
            Some((m, last, seconds, stage_lines))
        } else {
            let (m, r) = task
                .finetune_on(&set, &pruned, &dense, &ft, &mut progress)
                .map_err(|e| e.to_string())?;
            let seconds = r.seconds;
            Some((m, r, seconds, Vec::new()))
        }
    } else {
        None
    };
    let written = tuned.as_ref().map_or(&pruned, |t| &t.0);
    model::file::save(written, &a.out).map_err(|e| e.to_string())?;
    let mut s = String::new();
    s.push_str(&format!(
        "pruned `{}` to {:.2}x ({} of {} weights kept; {:.2}x fewer multiply-adds)\n",
        dense.name,
        compression(&pruned),
        pruned.layers.iter().map(|l| l.kept_params()).sum::<usize>(),
        dense.layers.iter().map(|l| l.dense_params()).sum::<usize>(),
        model::rates::mac_reduction(&pruned.layers)
    ));
    s.push_str(&format!(
        "block size candidates: {}\n",
        report
            .block_scores
            .iter()
            .map(|(b, sc)| format!("{}x{} score {sc:.4}", b.rows, b.cols))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    s.push_str(&report.table(&pruned));
    s.push_str("\n(score: calibration ");
    s.push_str(match &dense.body {
        Body::Graph(_) => "mean log-probability of the right class",
        Body::Seq2Seq(_) => "minus phoneme error rate",
    });
    s.push_str(")\n");
    // Test accuracy, dense vs magnitude vs refit, on the held-out split.
    let acc = |m: &Model| {
        task.accuracy(m, model::Reference::default)
            .map_err(|e| e.to_string())
    };
    let magnitude = model::rates::apply_rates(
        &dense,
        report.block,
        &report.rates.iter().map(|r| r.1).collect::<Vec<_>>(),
        None,
        &opts.ridges,
        model::rates::MaskRule {
            criterion: opts.mask,
            // Without a refit the written model is this one, with the spread kept.
            spread: if opts.refit {
                opts.spread.for_search()
            } else {
                report.spread
            },
        },
    )
    .map_err(|e| e.to_string())?;
    s.push_str(&format!("test: dense {}\n", acc(&dense)?));
    s.push_str(&format!(
        "test: BCR, magnitude pruning only {}\n",
        acc(&magnitude)?
    ));
    if opts.refit {
        s.push_str(&format!("test: BCR, refit {}\n", acc(&pruned)?));
    }
    if let Some((m, r, seconds, stages)) = &tuned {
        for line in stages {
            s.push_str(line);
            s.push('\n');
        }
        let kept = match r.best {
            Some((lr, e)) => format!("kept epoch {e} at lr {lr:.0e}"),
            None => "no epoch validated better: the input model is kept".to_string(),
        };
        let how = if a.gradual_steps > 1 {
            format!(
                "gradual, {} stages of {} epochs then {}",
                a.gradual_steps - 1,
                a.gradual_epochs,
                a.finetune_epochs
            )
        } else {
            format!("{} epochs", a.finetune_epochs)
        };
        s.push_str(&format!(
            "test: BCR, fine-tuned {} ({how}, last stage {kept}, {seconds:.0} s)\n",
            acc(m)?,
        ));
    }
    s.push_str(&format!("wrote {}\n", a.out.display()));
    Ok(s)
}

/// Everything `grim-tune run` takes.
#[derive(Debug, Clone)]
pub struct RunArgs {
    /// The (pruned) model.
    pub model: String,
    /// Its dense original, for the side-by-side comparison.
    pub dense: Option<String>,
    /// Where shipped models and data live.
    pub models_dir: PathBuf,
    /// Test data (`mnist`, `cmudict` or a path).
    pub data: String,
    /// Calibration samples to skip at the start of the data (as in `prune`).
    pub calib_size: usize,
    /// At most this many test samples.
    pub limit: Option<usize>,
    /// Device.
    pub device: DeviceArg,
    /// `-mcpu` for qemu and adb.
    pub mcpu: String,
    /// The `adb` program.
    pub adb: Option<PathBuf>,
    /// The tuning database.
    pub db: Option<PathBuf>,
    /// Timed inferences.
    pub repeat: usize,
    /// Outputs checked against the interpreter.
    pub check: usize,
    /// OpenMP threads of the runs; also picks the tuning records measured with that
    /// many threads (`host -threads=N`). `None`: the environment's, records without a
    /// count.
    pub threads: Option<u32>,
}

struct Row {
    label: String,
    kept: usize,
    tuned: usize,
    layers: usize,
    accuracy: Accuracy,
    latency: Option<(f64, f64)>,
    profile: Option<model::standalone::Profile>,
    check: String,
}

fn device_identity(
    a: &RunArgs,
    target: &codegen::Target,
) -> Result<(tuning_logs::Target, tuning_logs::DeviceIdentity), String> {
    let args = TuneArgs {
        workloads: vec![],
        target: target.to_string(),
        device: a.device.clone(),
        threads: a.threads,
        trials: 1,
        strategy: crate::tune::Strategy::Random,
        seed: 1,
        build_timeout: Duration::from_secs(60),
        run_timeout: Duration::from_secs(60),
        json: false,
        progress: false,
        no_dense: true,
        plot: None,
        adb: a.adb.clone(),
        cpu_mask: None,
        cooldown: None,
        opencl_lib: None,
        opencl_cc: None,
        given: vec![],
        rules: None,
        confirm: 0,
        confirm_rounds: 0,
    };
    let runner = crate::tune_cmd::runner(&args)?;
    crate::db_store::identity_of(runner.as_ref())
}

/// What every run of [`run_one`] shares.
struct RunEnv<'a> {
    args: &'a RunArgs,
    on: &'a ModelDevice,
    db: Option<&'a tuning_logs::Database>,
    ident: &'a (tuning_logs::Target, tuning_logs::DeviceIdentity),
}

fn run_one(
    label: &str,
    m: &Model,
    task: &Task,
    env: &RunEnv<'_>,
    notes: &mut Vec<String>,
) -> Result<Row, String> {
    let (a, on, db, ident) = (env.args, env.on, env.db, env.ident);
    let scheds = schedules(&m.layers, db, &ident.0, &ident.1).map_err(|e| e.to_string())?;
    let mut tuned = 0;
    for (l, s) in m.layers.iter().zip(&scheds) {
        match s.source {
            ScheduleSource::Tuned { .. } => tuned += 1,
            ScheduleSource::DenseForm { cost, bcr_cost } => {
                tuned += 1;
                let unit = a.device.cost_unit();
                let why = match bcr_cost {
                    Some(b) => format!("its tuned dense form is faster ({} vs {} for the best BCR kernel)", fmt_cost(Some(cost), unit), fmt_cost(Some(b), unit)),
                    None => "the BCR kernel has no tuned schedule, its dense form has".to_string(),
                };
                notes.push(format!("{label} layer `{}`: runs as its dense form (pruned weights as a dense matrix): {why}", l.name));
            }
            ScheduleSource::Default => notes.push(format!("{label} layer `{}`: no tuned schedule for {} on this device, using the default loop nest", l.name, l.spec)),
        }
    }
    for l in &m.layers {
        let shapes = l
            .weights
            .matrices
            .iter()
            .filter_map(|g| match g {
                tir::workload::GivenMatrix::Bcr(b) => Some(model::prune::kept_block_shapes(b)),
                tir::workload::GivenMatrix::Dense(_) => None,
            })
            .max()
            .unwrap_or(0);
        if shapes > 1 {
            notes.push(format!("{label} layer `{}`: its kept blocks have {shapes} different shapes (kept weights spread over the blocks: `prune --spread`), so its kernels cannot specialize the entry offsets (tuning versions them by kept-column count instead)", l.name));
        }
    }
    let prog = standalone::generate(m, &scheds, &crate::pipeline::optimize, &on.target)
        .map_err(|e| e.to_string())?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (accuracy, latency, profile, check) = match (task, &m.body) {
        (Task::Mnist { test, .. }, Body::Graph(g)) => {
            let xs: Vec<model::Array> = (0..test.len()).filter_map(|i| test.input(i)).collect();
            let input = f32_bytes(&xs.iter().map(|x| x.data()).collect::<Vec<_>>());
            let out = run_program(&prog, on, work.path(), &input, a.repeat)?;
            let ys = f32_values(&out.output);
            if ys.len() != xs.len() * prog.output_len {
                return Err(format!(
                    "{label}: the program wrote {} values for {} images",
                    ys.len(),
                    xs.len()
                ));
            }
            let mut correct = 0;
            for (i, chunk) in ys.chunks(prog.output_len).enumerate() {
                let best =
                    model::Array::new(vec![chunk.len()], chunk.to_vec()).and_then(|a| a.argmax());
                if best == Some(usize::from(test.labels[i])) {
                    correct += 1;
                }
            }
            let mut worst = 0.0f32;
            for (i, x) in xs.iter().take(a.check).enumerate() {
                let want = model::eval::run_graph(g, &m.layers, x, &mut Interpreter::default())
                    .map_err(|e| e.to_string())?;
                let got = &ys[i * prog.output_len..(i + 1) * prog.output_len];
                worst = got
                    .iter()
                    .zip(want.data())
                    .map(|(p, q)| (p - q).abs())
                    .fold(worst, f32::max);
            }
            if worst > 1e-4 {
                return Err(format!(
                    "{label}: compiled outputs differ from the interpreter by {worst:e} (> 1e-4)"
                ));
            }
            (
                Accuracy::Top1 {
                    top1: correct as f64 / xs.len().max(1) as f64,
                    n: xs.len(),
                },
                out.timing,
                out.profile,
                format!(
                    "max abs diff {worst:.1e} on {} images",
                    a.check.min(xs.len())
                ),
            )
        }
        (Task::G2p { test, .. }, Body::Seq2Seq(s)) => {
            let seqs: Vec<Vec<usize>> = test.iter().map(|e| s.encode_word(&e.word)).collect();
            let out = run_program(&prog, on, work.path(), &sequences_bytes(&seqs), a.repeat)?;
            let got = sequences_from_bytes(&out.output)
                .ok_or_else(|| format!("{label}: malformed program output"))?;
            if got.len() != seqs.len() {
                return Err(format!(
                    "{label}: {} results for {} words",
                    got.len(),
                    seqs.len()
                ));
            }
            let mut score = model::metrics::G2pScore::default();
            for (e, ids) in test.iter().zip(&got) {
                let phones: Vec<String> = ids
                    .iter()
                    .map(|&i| s.output_symbols.get(i).cloned().unwrap_or_default())
                    .collect();
                score = score.merge(model::metrics::G2pScore::of(&phones, &e.phonemes));
            }
            for (seq, ids) in seqs.iter().zip(&got).take(a.check) {
                let want = s
                    .predict(&m.layers, seq, &mut Interpreter::default())
                    .map_err(|e| e.to_string())?;
                if want != *ids {
                    return Err(format!(
                        "{label}: the compiled model decodes {ids:?}, the interpreter {want:?}"
                    ));
                }
            }
            (
                Accuracy::G2p {
                    words: score.word_accuracy(),
                    per: score.phoneme_error_rate(),
                    n: test.len(),
                },
                out.timing,
                out.profile,
                format!(
                    "same decoding as the interpreter on {} words",
                    a.check.min(seqs.len())
                ),
            )
        }
        _ => return Err(format!("{label}: the data does not fit the model")),
    };
    Ok(Row {
        label: label.to_string(),
        kept: m.layers.iter().map(|l| l.kept_params()).sum(),
        tuned,
        layers: m.layers.len(),
        accuracy,
        latency,
        profile,
        check,
    })
}

/// The per-layer table of `rows` (dense first when there are two): median time per
/// inference of each layer's kernel, the speedup beside the factor the layer's
/// sparsity allows, the glue outside the kernels, and the BCR model's share.
fn profile_table(layers: &[model::layer::Layer], rows: &[Row], repeat: usize) -> String {
    let profiled: Vec<(&Row, &model::standalone::Profile)> = rows
        .iter()
        .filter_map(|r| Some((r, r.profile.as_ref()?)))
        .filter(|(_, p)| p.layers.len() == layers.len())
        .collect();
    let Some((_, last)) = profiled.last() else {
        return String::new();
    };
    let us = |t: f64| format!("{:.1} us", t * 1e6);
    let pair = profiled.len() == 2;
    let mut s = format!(
        "\nWhere the time goes: medians per inference over {repeat} more inferences with a clock read around every layer call (the rows need not add up to the total)\n\n| layer | calls |"
    );
    for (r, _) in &profiled {
        s.push_str(&format!(" {} |", r.label));
    }
    s.push_str(if pair {
        " speedup | fewer multiply-adds | share |\n"
    } else {
        " share |\n"
    });
    s.push_str(&"|---".repeat(profiled.len() + if pair { 5 } else { 3 }));
    s.push_str("|\n");
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.2}x", a / b)
        } else {
            "-".to_string()
        }
    };
    let share = |t: f64| format!("{:.0}%", 100.0 * t / last.total.max(f64::MIN_POSITIVE));
    let mut line = |name: &str, calls: String, times: Vec<f64>, allowed: String| {
        s.push_str(&format!("| {name} | {calls} |"));
        for t in &times {
            s.push_str(&format!(" {} |", us(*t)));
        }
        if pair {
            s.push_str(&format!(" {} | {allowed} |", ratio(times[0], times[1])));
        }
        s.push_str(&format!(" {} |\n", share(times[times.len() - 1])));
    };
    for (i, l) in layers.iter().enumerate() {
        let calls = last.layers[i].calls;
        line(
            &format!("`{}`", l.name),
            format!("{calls:.0}"),
            profiled.iter().map(|(_, p)| p.layers[i].seconds).collect(),
            ratio(l.dense_params() as f64, l.kept_params() as f64),
        );
    }
    line(
        "glue (pooling, activations, copies) and clock reads",
        String::new(),
        profiled.iter().map(|(_, p)| p.glue).collect(),
        "-".to_string(),
    );
    line(
        "total",
        String::new(),
        profiled.iter().map(|(_, p)| p.total).collect(),
        format!("{:.2}x", model::rates::mac_reduction(layers)),
    );
    s
}

/// Runs `grim-tune run`; returns the report.
pub fn run(a: &RunArgs) -> Result<String, String> {
    let bcr = load_model(&a.model, &a.models_dir)?;
    let dense = match &a.dense {
        Some(d) => Some(load_model(d, &a.models_dir)?),
        None => None,
    };
    let data = data_path(&a.data, &a.models_dir);
    let mut task = Task::load(&bcr, &data, a.calib_size).map_err(|e| e.to_string())?;
    let n = a.limit.unwrap_or(usize::MAX).min(task.test_len());
    task.limit_test(n);
    let target = target_for(&a.device, &a.mcpu)?;
    let on = ModelDevice {
        device: a.device.clone(),
        adb: a.adb.clone(),
        target: target.clone(),
        timeout: Duration::from_secs(1800),
        threads: a.threads,
    };
    let db = match &a.db {
        Some(p) => {
            Some(tuning_logs::Database::open(p).map_err(|e| format!("{}: {e}", p.display()))?)
        }
        None => tuning_logs::default_db_path()
            .filter(|p| p.exists())
            .and_then(|p| tuning_logs::Database::open(&p).ok()),
    };
    let ident = device_identity(a, &target)?;
    let env = RunEnv {
        args: a,
        on: &on,
        db: db.as_ref(),
        ident: &ident,
    };
    let mut notes = Vec::new();
    let mut rows = Vec::new();
    if let Some(d) = &dense {
        rows.push(run_one("dense", d, &task, &env, &mut notes)?);
    }
    rows.push(run_one("BCR", &bcr, &task, &env, &mut notes)?);
    let mut s = format!(
        "model `{}` on {} ({}), test data {} ({} samples), median of {} timed inferences\n\n",
        bcr.name,
        ident.1.name(),
        target,
        data.display(),
        n,
        a.repeat
    );
    s.push_str("| model | weights kept | tuned layers | accuracy | latency (median) | speedup | check vs interpreter |\n|---|---|---|---|---|---|---|\n");
    let base = rows.first().and_then(|r| r.latency).map(|t| t.0);
    for r in &rows {
        let lat = r
            .latency
            .map(|t| format!("{:.1} us", t.0 * 1e6))
            .unwrap_or_else(|| "-".into());
        let speed = match (base, r.latency) {
            (Some(b), Some(t)) if dense.is_some() => format!("{:.2}x", b / t.0),
            _ => "-".into(),
        };
        s.push_str(&format!(
            "| {} | {} | {}/{} | {} | {} | {} | {} |\n",
            r.label, r.kept, r.tuned, r.layers, r.accuracy, lat, speed, r.check
        ));
    }
    s.push_str(&profile_table(&bcr.layers, &rows, a.repeat));
    if matches!(a.device, DeviceArg::Qemu(_)) {
        s.push_str("\nnote: under qemu wall time is not a performance signal (emulated); compare instruction counts instead.\n");
    }
    for n in notes {
        s.push_str(&format!("note: {n}\n"));
    }
    Ok(s)
}
