//! `grim-tune build` and `grim-tune check`: see and check what the code generator
//! makes of a workload (optionally scheduled by a trace file).

use crate::commands::CliError;
use codegen::harness::{measurement_source, Candidate};
use codegen::insn_count::{build_plugin, kernel_instructions};
use codegen::run::{max_error, run_candidate, Protocol};
use codegen::toolchain::{build_binary, Runner};
use codegen::Target;
use schedule::{Schedule, Trace};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tir::egraph::rules::RuleSet;
use tir::workload::Workload;

/// Where `check` runs the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Device {
    /// This machine, natively.
    Local,
    /// `qemu-aarch64` (aarch64 targets).
    Qemu,
}

/// Where `build` and `check` take their workload from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadSource {
    /// A workload spec (its weights generated from the seed).
    Spec(String),
    /// A layer of a model file (`grim-tune prune`'s output or a dense model file), with
    /// its real weights and pattern.
    ModelLayer {
        /// The model file.
        model: PathBuf,
        /// The layer's name, as `grim-tune run` prints it (`conv_layers.6`).
        layer: String,
    },
}

impl WorkloadSource {
    /// The workload: the spec's, or the model layer's with its weights. Errors name the
    /// file and the layer (listing the model's layers when the name is not one).
    pub fn workload(&self) -> Result<Workload, CliError> {
        match self {
            WorkloadSource::Spec(spec) => Ok(Workload::from_spec_str(spec)?),
            WorkloadSource::ModelLayer { model, layer } => {
                let m = model::file::load(model).map_err(|e| CliError::Other(e.to_string()))?;
                let l = m.layers.iter().find(|l| l.name == *layer).ok_or_else(|| {
                    CliError::Other(format!(
                        "{}: no layer `{layer}` (layers: {})",
                        model.display(),
                        m.layers
                            .iter()
                            .map(|l| l.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
                l.workload()
                    .map_err(|e| CliError::Other(format!("{}: {e}", model.display())))
            }
        }
    }
}

/// The report line naming a model layer's file (empty for a spec).
fn layer_line(source: &WorkloadSource) -> String {
    match source {
        WorkloadSource::Spec(_) => String::new(),
        WorkloadSource::ModelLayer { model, layer } => {
            format!("layer     `{layer}` of {} (its weights)\n", model.display())
        }
    }
}

/// A workload scheduled by a trace file, or else by the pipeline's default schedule
/// (the e-graph's BCR choices under `rules`, checked in the interpreter); the second
/// value is the text saying what the e-graph chose (empty with a trace).
fn scheduled(
    source: &WorkloadSource,
    trace: Option<&Path>,
    rules: &RuleSet,
) -> Result<(Workload, Schedule, String), CliError> {
    let w = source.workload()?;
    let s = match trace {
        None => {
            let d = crate::pipeline::default_schedule(&w, rules)
                .map_err(|e| CliError::Other(e.to_string()))?;
            let text = crate::pipeline::choices_text(&d);
            return Ok((w, d.schedule, text));
        }
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| CliError::Read {
                path: p.display().to_string(),
                source,
            })?;
            let t = Trace::from_json(&text)
                .map_err(|e| CliError::Other(format!("{}: {e}", p.display())))?;
            t.replay(&w.func, &w.weights)
                .map_err(|e| CliError::Other(format!("{}: {e}", p.display())))?
        }
    };
    Ok((w, s, String::new()))
}

fn parse_target(t: &str) -> Result<Target, CliError> {
    t.parse::<Target>()
        .map_err(|e| CliError::Other(e.to_string()))
}

/// `grim-tune build`: writes `kernels.c` (the scheduled kernel in the measurement
/// binary) and the binary `kernels` into `out`. Without a trace the kernel is the
/// pipeline's default schedule under `rules`, and the output says which BCR form the
/// e-graph chose and why.
pub fn build(
    source: &WorkloadSource,
    target: &str,
    trace: Option<&Path>,
    out: &Path,
    rules: &RuleSet,
) -> Result<String, CliError> {
    let target = parse_target(target)?;
    let (w, s, chosen) = scheduled(source, trace, rules)?;
    let func = crate::pipeline::optimize(s.func());
    let src = measurement_source(&[Candidate { func: &func }], &target)
        .map_err(|e| CliError::Other(e.to_string()))?;
    let bin = build_binary(&src, out, &target, Duration::from_secs(300))
        .map_err(|e| CliError::Other(e.to_string()))?;
    Ok(format!(
        "workload  {}\n{}{chosen}target    {target}\nsource    {}\nbinary    {}\nrun it    {} 0 INPUT OUTPUT NUMBER REPEAT MIN_REPEAT_MS\n",
        w.spec,
        layer_line(source),
        out.join("kernels.c").display(),
        bin.display(),
        bin.display()
    ))
}

/// The outcome of `check`: the report text and whether the tolerance held.
pub struct CheckReport {
    /// What to print.
    pub text: String,
    /// True when the maximum relative error is within the tolerance.
    pub ok: bool,
}

/// `grim-tune check`: builds the (scheduled) kernel for `target`, runs it on `device`
/// on random inputs and compares with the reference interpreter. Without a trace the
/// kernel is the pipeline's default schedule under `rules`. With `keep` the build and
/// the run happen in that directory, which is kept (source, binary, input and output
/// files); otherwise in a scratch directory that is removed.
pub fn check(
    source: &WorkloadSource,
    target: &str,
    device: Device,
    trace: Option<&Path>,
    tolerance: f64,
    keep: Option<&Path>,
    rules: &RuleSet,
) -> Result<CheckReport, CliError> {
    let target = parse_target(target)?;
    if let Target::OpenCl { .. } = target {
        return check_opencl(source, &target, device, trace, tolerance, rules);
    }
    let runner = match (device, &target) {
        (Device::Local, Target::Aarch64Neon { .. }) if std::env::consts::ARCH != "aarch64" => {
            return Err(CliError::Other(format!(
                "cannot run an aarch64 binary natively on {}; use --device qemu",
                std::env::consts::ARCH
            )))
        }
        (Device::Local, _) => Runner::Native,
        (Device::Qemu, Target::Aarch64Neon { .. }) => Runner::Qemu {
            cpu: "cortex-a76".into(),
        },
        (Device::Qemu, Target::OpenCl { .. }) | (Device::Qemu, Target::Host) => {
            return Err(CliError::Other(format!(
                "--device qemu runs aarch64 binaries; target {target} is not aarch64"
            )))
        }
    };
    let (w, s, chosen) = scheduled(source, trace, rules)?;
    let dir = keep
        .map(Path::to_path_buf)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("grim-check-{}", std::process::id())));
    let err = |e: codegen::CodegenError| CliError::Other(e.to_string());
    let func = crate::pipeline::optimize(s.func());
    let src = measurement_source(&[Candidate { func: &func }], &target).map_err(err)?;
    let bin = build_binary(&src, &dir, &target, Duration::from_secs(300)).map_err(err)?;
    let mut args = w.random_inputs(1);
    args.extend(s.weights().clone());
    // The reference is the original lowered function with the original weights: the
    // schedule, the e-graph pass and the code generator are all under test.
    let want = w
        .interpret(&w.random_inputs(1))
        .map_err(|e| CliError::Other(format!("interpreter: {e}")))?;
    let protocol = Protocol {
        number: 1,
        repeat: if runner == Runner::Native { 10 } else { 1 },
        min_repeat_ms: if runner == Runner::Native { 10.0 } else { 0.0 },
        timeout: Duration::from_secs(120),
        threads: None,
    };
    let got = run_candidate(&bin, &runner, 0, &func, &args, &protocol, &dir).map_err(err)?;
    let (abs, rel) = max_error(&got.outputs, &want).ok_or_else(|| {
        CliError::Other("kernel outputs do not match the function's outputs".into())
    })?;
    let ok = rel <= tolerance;
    let mut text = String::new();
    let _ = writeln!(text, "workload  {}", w.spec);
    text.push_str(&layer_line(source));
    text.push_str(&chosen);
    let _ = writeln!(text, "target    {target} on {device:?}");
    let _ = writeln!(
        text,
        "schedule  {} trace instructions",
        s.trace().instructions.len()
    );
    let _ = writeln!(
        text,
        "error     max abs {abs:.3e}, max rel {rel:.3e} (tolerance {tolerance:e}): {}",
        if ok { "ok" } else { "EXCEEDED" }
    );
    match runner {
        Runner::Native => {
            let _ = writeln!(
                text,
                "time      median {:.3} us, min {:.3} us over {} x {} runs",
                got.timing.median * 1e6,
                got.timing.min * 1e6,
                got.timing.repeat,
                got.timing.number
            );
        }
        Runner::Qemu { ref cpu } => {
            let plugin = build_plugin(&dir).map_err(err)?;
            let n = kernel_instructions(
                &bin,
                &plugin,
                cpu,
                0,
                s.func(),
                &args,
                &dir,
                Duration::from_secs(120),
            )
            .map_err(err)?;
            let _ = writeln!(text, "insns     {n} aarch64 instructions per run (qemu wall time is not a performance signal)");
        }
    }
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(CheckReport { text, ok })
}

/// `check` for OpenCL targets: runs on the local OpenCL platform (pocl here).
fn check_opencl(
    source: &WorkloadSource,
    target: &Target,
    device: Device,
    trace: Option<&Path>,
    tolerance: f64,
    rules: &RuleSet,
) -> Result<CheckReport, CliError> {
    if device != Device::Local {
        return Err(CliError::Other(
            "OpenCL kernels run on a local OpenCL platform: use --device local".into(),
        ));
    }
    let (w, s, chosen) = scheduled(source, trace, rules)?;
    let err = |e: codegen::CodegenError| CliError::Other(e.to_string());
    let dev = codegen::opencl_run::OpenClDevice::open(None).map_err(err)?;
    let mut args = w.random_inputs(1);
    args.extend(s.weights().clone());
    let r = codegen::opencl_run::check_against_interpreter(
        s.func(),
        &args,
        target,
        &dev,
        tolerance,
        &codegen::opencl_run::OpenClProtocol::default(),
    )
    .map_err(err)?;
    let mut text = String::new();
    let _ = writeln!(text, "workload  {}", w.spec);
    text.push_str(&layer_line(source));
    text.push_str(&chosen);
    let _ = writeln!(text, "target    {target} on {}", r.device);
    let _ = writeln!(
        text,
        "schedule  {} trace instructions, {} kernel launches",
        s.trace().instructions.len(),
        r.launches.len()
    );
    let _ = writeln!(
        text,
        "error     max abs {:.3e}, max rel {:.3e} (tolerance {tolerance:e}): {}",
        r.max_abs,
        r.max_rel,
        if r.passed { "ok" } else { "EXCEEDED" }
    );
    let _ = writeln!(
        text,
        "time      median {:.3} us (OpenCL profiling events)",
        r.timing.median * 1e6
    );
    Ok(CheckReport { text, ok: r.passed })
}
