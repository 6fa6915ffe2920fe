//! Runners behind one trait: build a batch of candidates into one binary and measure
//! each on a device, checking outputs against the reference before any time counts.

use codegen::harness::{measurement_source, Candidate};
use codegen::insn_count::{build_plugin, kernel_instructions};
use codegen::run::{max_error, run_candidate, Protocol};
use codegen::toolchain::{build_binary, Runner as Where};
use codegen::{CodegenError, Target};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tir::{Function, Tensor};

/// Why a candidate has no valid measurement: the tuning database's error kinds
/// (build error, build timeout, run error, run timeout, wrong result, device lost).
pub use tuning_logs::ErrorKind;

/// A failed candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The kind.
    pub kind: ErrorKind,
    /// What happened.
    pub message: String,
}

/// A successful measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Median seconds per run (under qemu: wall time, not a performance signal).
    pub median: f64,
    /// Fastest sample.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stddev: f64,
    /// Runs per sample.
    pub number: u64,
    /// Samples.
    pub repeat: u64,
    /// Retired instructions per run, where counted (qemu).
    pub instructions: Option<u64>,
    /// Largest relative error against the reference.
    pub max_rel_error: f64,
}

impl Measurement {
    /// The quantity the search minimises: instructions when counted, else seconds.
    pub fn cost(&self) -> f64 {
        match self.instructions {
            Some(n) => n as f64,
            None => self.median,
        }
    }
}

/// What a runner gets for one candidate.
pub struct Job<'a> {
    /// The scheduled function.
    pub func: &'a Function,
    /// All its arguments (inputs and its possibly rewritten weights).
    pub args: &'a BTreeMap<String, Tensor>,
}

/// A device that measures candidates.
pub trait Runner: Send + Sync {
    /// A short description (`local`, `qemu:cortex-a76`).
    fn describe(&self) -> String;
    /// The code generation target it runs.
    fn target(&self) -> &Target;
    /// Builds `jobs` into one binary in `dir`.
    fn build(&self, jobs: &[Job<'_>], dir: &Path) -> Result<PathBuf, Failure>;
    /// Runs candidate `index` of `bin`; `reference` are the expected outputs.
    fn measure(
        &self,
        bin: &Path,
        index: usize,
        job: &Job<'_>,
        reference: &BTreeMap<String, Tensor>,
        dir: &Path,
    ) -> Result<Measurement, Failure>;
    /// The identity of the device it measures on, when the runner knows it better than
    /// its target does (an adb device reports its model, SoC and cores).
    fn identity(&self) -> Option<tuning_logs::DeviceIdentity> {
        None
    }
    /// The OpenMP threads its CPU candidates run with (`None`: the environment's, or
    /// not a CPU target).
    fn threads(&self) -> Option<u32> {
        None
    }
}

/// Timeouts and tolerances shared by the runners.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Per build.
    pub build_timeout: Duration,
    /// Per run.
    pub run_timeout: Duration,
    /// Largest accepted relative error.
    pub tolerance: f64,
    /// The timing protocol (local runs).
    pub protocol: Protocol,
    /// OpenMP threads of every candidate run on a CPU target (`OMP_NUM_THREADS`);
    /// part of the stored target (`host -threads=N`). `None`: the environment's.
    pub threads: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            build_timeout: Duration::from_secs(120),
            run_timeout: Duration::from_secs(30),
            tolerance: 1e-4,
            protocol: Protocol {
                number: 1,
                repeat: 7,
                min_repeat_ms: 2.0,
                timeout: Duration::from_secs(30),
                threads: None,
            },
            threads: None,
        }
    }
}

/// A successful measurement from a run's timing.
fn measured(
    t: &codegen::run::Timing,
    instructions: Option<u64>,
    max_rel_error: f64,
) -> Measurement {
    Measurement {
        median: t.median,
        min: t.min,
        mean: t.mean,
        stddev: t.stddev,
        number: t.number,
        repeat: t.repeat,
        instructions,
        max_rel_error,
    }
}

pub(crate) fn build_failure(e: CodegenError) -> Failure {
    match e {
        CodegenError::BuildTimeout(d) => Failure {
            kind: ErrorKind::BuildTimeout,
            message: format!("build timed out after {d:?}"),
        },
        other => Failure {
            kind: ErrorKind::BuildError,
            message: truncate(&other.to_string()),
        },
    }
}

fn run_failure(e: CodegenError) -> Failure {
    match e {
        CodegenError::RunTimeout(d) => Failure {
            kind: ErrorKind::RunTimeout,
            message: format!("killed after {d:?}"),
        },
        other => Failure {
            kind: ErrorKind::RunError,
            message: truncate(&other.to_string()),
        },
    }
}

pub(crate) fn truncate(s: &str) -> String {
    if s.len() > 2000 {
        let mut end = 2000;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s.to_string()
    }
}

pub(crate) fn check(
    got: &BTreeMap<String, Tensor>,
    want: &BTreeMap<String, Tensor>,
    tol: f64,
) -> Result<f64, Failure> {
    match max_error(got, want) {
        Some((_, rel)) if rel <= tol => Ok(rel),
        Some((abs, rel)) => Err(Failure {
            kind: ErrorKind::WrongResult,
            message: format!(
                "max abs error {abs:.3e}, max rel error {rel:.3e} > tolerance {tol:e}"
            ),
        }),
        None => Err(Failure {
            kind: ErrorKind::WrongResult,
            message: "outputs do not match the function's outputs".into(),
        }),
    }
}

pub(crate) fn build_jobs(
    target: &Target,
    jobs: &[Job<'_>],
    dir: &Path,
    limit: Duration,
) -> Result<PathBuf, Failure> {
    let cands: Vec<Candidate<'_>> = jobs.iter().map(|j| Candidate { func: j.func }).collect();
    let src = measurement_source(&cands, target).map_err(build_failure)?;
    build_binary(&src, dir, target, limit).map_err(build_failure)
}

/// Runs natively on this machine, timing with the measurement protocol.
pub struct LocalRunner {
    target: Target,
    limits: Limits,
}

impl LocalRunner {
    /// A runner for the host target.
    pub fn new(limits: Limits) -> LocalRunner {
        LocalRunner {
            target: Target::Host,
            limits,
        }
    }
}

impl Runner for LocalRunner {
    fn describe(&self) -> String {
        "local".into()
    }

    fn threads(&self) -> Option<u32> {
        self.limits.threads
    }

    fn target(&self) -> &Target {
        &self.target
    }

    fn build(&self, jobs: &[Job<'_>], dir: &Path) -> Result<PathBuf, Failure> {
        build_jobs(&self.target, jobs, dir, self.limits.build_timeout)
    }

    fn measure(
        &self,
        bin: &Path,
        index: usize,
        job: &Job<'_>,
        reference: &BTreeMap<String, Tensor>,
        dir: &Path,
    ) -> Result<Measurement, Failure> {
        let mut protocol = self.limits.protocol.clone();
        protocol.timeout = self.limits.run_timeout;
        protocol.threads = self.limits.threads;
        let r = run_candidate(
            bin,
            &Where::Native,
            index,
            job.func,
            job.args,
            &protocol,
            dir,
        )
        .map_err(run_failure)?;
        let rel = check(&r.outputs, reference, self.limits.tolerance)?;
        Ok(measured(&r.timing, None, rel))
    }
}

/// Runs aarch64 binaries under `qemu-aarch64`; the cost is the retired instruction
/// count of one kernel run (deterministic), results are checked.
pub struct QemuRunner {
    target: Target,
    cpu: String,
    limits: Limits,
    /// The instruction-count plugin, built on first use into a temporary directory
    /// that is removed with the runner.
    plugin: std::sync::OnceLock<Result<(tempfile::TempDir, PathBuf), String>>,
}

impl QemuRunner {
    /// A runner for `aarch64-neon:MCPU` code on qemu's `cpu` model.
    pub fn new(mcpu: &str, cpu: &str, limits: Limits) -> QemuRunner {
        QemuRunner {
            target: Target::Aarch64Neon { mcpu: mcpu.into() },
            cpu: cpu.into(),
            limits,
            plugin: std::sync::OnceLock::new(),
        }
    }
}

impl Runner for QemuRunner {
    fn describe(&self) -> String {
        format!("qemu:{}", self.cpu)
    }

    fn threads(&self) -> Option<u32> {
        self.limits.threads
    }

    fn target(&self) -> &Target {
        &self.target
    }

    fn build(&self, jobs: &[Job<'_>], dir: &Path) -> Result<PathBuf, Failure> {
        build_jobs(&self.target, jobs, dir, self.limits.build_timeout)
    }

    fn measure(
        &self,
        bin: &Path,
        index: usize,
        job: &Job<'_>,
        reference: &BTreeMap<String, Tensor>,
        dir: &Path,
    ) -> Result<Measurement, Failure> {
        let protocol = Protocol {
            number: 1,
            repeat: 1,
            min_repeat_ms: 0.0,
            timeout: self.limits.run_timeout,
            threads: self.limits.threads,
        };
        let runner = Where::Qemu {
            cpu: self.cpu.clone(),
        };
        let r = run_candidate(bin, &runner, index, job.func, job.args, &protocol, dir)
            .map_err(run_failure)?;
        let rel = check(&r.outputs, reference, self.limits.tolerance)?;
        let plugin = self
            .plugin
            .get_or_init(|| {
                let d = tempfile::Builder::new()
                    .prefix("grim-qemu-plugin-")
                    .tempdir()
                    .map_err(|e| format!("temporary directory: {e}"))?;
                let lib = build_plugin(d.path()).map_err(|e| e.to_string())?;
                Ok((d, lib))
            })
            .as_ref()
            .map(|(_, lib)| lib.clone())
            .map_err(|m| Failure {
                kind: ErrorKind::DeviceLost,
                message: format!("instruction-count plugin: {m}"),
            })?;
        let n = kernel_instructions(
            bin,
            &plugin,
            &self.cpu,
            index,
            job.func,
            job.args,
            dir,
            self.limits.run_timeout,
        )
        .map_err(run_failure)?;
        Ok(measured(&r.timing, Some(n), rel))
    }
}

/// Runs OpenCL kernels on a local OpenCL platform (pocl's CPU device here, a phone's
/// GPU through the same API): outputs checked, time from OpenCL profiling events.
///
/// Kernels run inside this process (the OpenCL API has no portable way to kill a
/// running kernel), so the run timeout is not enforced for this runner.
pub struct OpenClRunner {
    target: Target,
    device: codegen::opencl_run::OpenClDevice,
    limits: Limits,
}

impl OpenClRunner {
    /// Opens the first GPU (else the first device) whose name contains `name`.
    pub fn new(fp16: bool, name: Option<&str>, limits: Limits) -> Result<OpenClRunner, String> {
        let device = codegen::opencl_run::OpenClDevice::open(name).map_err(|e| e.to_string())?;
        Ok(OpenClRunner {
            target: Target::OpenCl { fp16 },
            device,
            limits,
        })
    }
}

impl Runner for OpenClRunner {
    fn describe(&self) -> String {
        format!("opencl:{}", self.device.name())
    }

    fn target(&self) -> &Target {
        &self.target
    }

    /// Generates every kernel's OpenCL C (building happens on the device at run time);
    /// writes the sources to `dir` for inspection.
    fn build(&self, jobs: &[Job<'_>], dir: &Path) -> Result<PathBuf, Failure> {
        std::fs::create_dir_all(dir).map_err(|e| Failure {
            kind: ErrorKind::BuildError,
            message: format!("{}: {e}", dir.display()),
        })?;
        for (i, j) in jobs.iter().enumerate() {
            let p = codegen::opencl_emit::emit_program(j.func, &format!("c{i}"), &self.target)
                .map_err(build_failure)?;
            let _ = std::fs::write(dir.join(format!("candidate{i}.cl")), &p.source);
        }
        Ok(dir.to_path_buf())
    }

    fn measure(
        &self,
        _bin: &Path,
        index: usize,
        job: &Job<'_>,
        reference: &BTreeMap<String, Tensor>,
        _dir: &Path,
    ) -> Result<Measurement, Failure> {
        let prog = codegen::opencl_emit::emit_program(job.func, &format!("c{index}"), &self.target)
            .map_err(build_failure)?;
        let protocol = codegen::opencl_run::OpenClProtocol {
            warmup: 1,
            repeat: self.limits.protocol.repeat.clamp(1, 1000) as u32,
        };
        let r =
            codegen::opencl_run::run_program(&self.device, &prog, job.func, job.args, &protocol)
                .map_err(run_failure)?;
        let rel = check(&r.outputs, reference, self.limits.tolerance)?;
        Ok(measured(&r.timing, None, rel))
    }
}
