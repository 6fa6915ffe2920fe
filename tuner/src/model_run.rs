//! Running a compiled model's standalone program ([`model::standalone`]) on a device:
//! this machine, qemu-aarch64, or a phone over adb (the real `adb` program, always
//! with `-s SERIAL`, every argument quoted; the program, its weights and inputs go to
//! `/data/local/tmp/grim/model-<pid>`, which is removed afterwards).

use crate::adb::{require_device, shell_quote};
use crate::tune_cmd::DeviceArg;
use codegen::toolchain::Runner;
use codegen::Target;
use model::standalone::{self, Program, RunOutput};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The target a device needs: the host for local runs, NEON for qemu and adb.
pub fn target_for(device: &DeviceArg, mcpu: &str) -> Result<Target, String> {
    let s = match device {
        DeviceArg::Local => "host".to_string(),
        _ => format!("aarch64-neon:{mcpu}"),
    };
    s.parse()
        .map_err(|e: codegen::target::TargetParseError| e.to_string())
}

fn adb_call(adb: &Path, serial: &str, args: &[&str], what: &str) -> Result<String, String> {
    let out = Command::new(adb)
        .arg("-s")
        .arg(serial)
        .args(args)
        .output()
        .map_err(|e| format!("starting {}: {e}", adb.display()))?;
    if !out.status.success() {
        return Err(format!(
            "adb {what} on {serial} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where and how to run a model program.
#[derive(Debug, Clone)]
pub struct ModelDevice {
    /// The device.
    pub device: DeviceArg,
    /// The `adb` program for adb devices (default: `adb` on PATH).
    pub adb: Option<PathBuf>,
    /// The code target (see [`target_for`]).
    pub target: Target,
    /// Wall-clock limit of one run.
    pub timeout: Duration,
    /// OpenMP threads of the run (`OMP_NUM_THREADS`; `None`: the environment's).
    pub threads: Option<u32>,
}

/// Builds `program` in `dir` and runs it on `on` with `input`, timing `repeat`
/// inferences.
pub fn run_program(
    program: &Program,
    on: &ModelDevice,
    dir: &Path,
    input: &[u8],
    repeat: usize,
) -> Result<RunOutput, String> {
    let (target, device, timeout, threads) = (&on.target, &on.device, on.timeout, on.threads);
    let adb = on.adb.as_deref();
    let bin = standalone::build(program, dir, target).map_err(|e| e.to_string())?;
    match device {
        DeviceArg::Local => standalone::run(&bin, &Runner::Native, input, repeat, threads, timeout)
            .map_err(|e| e.to_string()),
        DeviceArg::Qemu(cpu) => standalone::run(
            &bin,
            &Runner::Qemu { cpu: cpu.clone() },
            input,
            repeat,
            threads,
            timeout,
        )
        .map_err(|e| e.to_string()),
        DeviceArg::Adb(serial) => {
            let adb: PathBuf = adb
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("adb"));
            require_device(&adb, serial).map_err(|e| e.to_string())?;
            let remote = format!("/data/local/tmp/grim/model-{}", std::process::id());
            let inp = dir.join("input.bin");
            std::fs::write(&inp, input).map_err(|e| format!("{}: {e}", inp.display()))?;
            let result = (|| {
                adb_call(
                    &adb,
                    serial,
                    &["shell", &format!("mkdir -p {}", shell_quote(&remote))],
                    "mkdir",
                )?;
                for (local, name) in [
                    (&bin, "model"),
                    (&dir.join("weights.bin"), "weights.bin"),
                    (&inp, "input.bin"),
                ] {
                    let local = local.to_string_lossy();
                    adb_call(
                        &adb,
                        serial,
                        &["push", &local, &format!("{remote}/{name}")],
                        "push",
                    )?;
                }
                let q = |n: &str| shell_quote(&format!("{remote}/{n}"));
                let env = threads.map_or(String::new(), |n| format!("OMP_NUM_THREADS={n} "));
                let cmd = format!(
                    "chmod 755 {} && {env}timeout {} {} {} {} {} {}",
                    q("model"),
                    timeout.as_secs().max(1),
                    q("model"),
                    q("weights.bin"),
                    q("input.bin"),
                    q("output.bin"),
                    repeat
                );
                let stdout = adb_call(&adb, serial, &["shell", &cmd], "run")?;
                let outp = dir.join("output.bin");
                adb_call(
                    &adb,
                    serial,
                    &[
                        "pull",
                        &format!("{remote}/output.bin"),
                        &outp.to_string_lossy(),
                    ],
                    "pull",
                )?;
                let output =
                    std::fs::read(&outp).map_err(|e| format!("{}: {e}", outp.display()))?;
                let timing = standalone::parse_timing(&stdout);
                if repeat > 0 && timing.is_none() {
                    return Err(format!(
                        "the program on {serial} printed no timing line: {stdout}"
                    ));
                }
                let profile = standalone::parse_profile(&stdout);
                Ok(RunOutput {
                    output,
                    timing,
                    profile,
                })
            })();
            let _ = adb_call(
                &adb,
                serial,
                &["shell", &format!("rm -rf {}", shell_quote(&remote))],
                "cleanup",
            );
            result
        }
    }
}
