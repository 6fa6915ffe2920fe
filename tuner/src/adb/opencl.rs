//! OpenCL over adb, the host side: building the device-side harness of
//! [`codegen::opencl_harness`] for the device's ABI, the per-candidate program files,
//! and turning the harness's failures into clear errors.

use super::device::AdbError;
use crate::measure::{build_failure, ErrorKind, Failure, Job};
use codegen::opencl_emit::emit_program;
use codegen::opencl_harness::{build_harness, compiler_for_abi, program_file, HarnessError};
use codegen::Target;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A host directory holding the harness built for one device, removed on drop.
#[derive(Debug)]
pub(super) struct HarnessBuild {
    dir: PathBuf,
    /// The executable.
    pub(super) bin: PathBuf,
}

impl Drop for HarnessBuild {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Builds the harness for a device of ABI `abi` (`ro.product.cpu.abi`) with `cc`, or
/// the compiler [`compiler_for_abi`] knows for it.
pub(super) fn build_for(
    serial: &str,
    abi: &str,
    cc: Option<&str>,
    limit: Duration,
) -> Result<HarnessBuild, AdbError> {
    let fail = |message: String| AdbError::OpenCl {
        serial: serial.into(),
        message,
    };
    let (cc, package) = match cc {
        Some(cc) => (cc.to_string(), "the compiler given with --opencl-cc"),
        None => compiler_for_abi(abi).map_err(|e| fail(e.to_string()))?,
    };
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "grim-opencl-harness-{}-{stamp}",
        std::process::id()
    ));
    let build = build_harness(&cc, package, &dir, limit);
    match build {
        Ok(bin) => Ok(HarnessBuild { dir, bin }),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(fail(format!(
                "cannot build the OpenCL harness for device ABI `{abi}`: {e}"
            )))
        }
    }
}

/// The program file of candidate `index` of a batch in `dir`.
pub(super) fn program_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("c{index}.grimcl"))
}

/// Writes every job's program file (see [`program_file`]) into `dir`; the batch
/// "binary" is the directory.
pub(super) fn write_programs(
    target: &Target,
    jobs: &[Job<'_>],
    dir: &Path,
) -> Result<PathBuf, Failure> {
    std::fs::create_dir_all(dir).map_err(|e| Failure {
        kind: ErrorKind::BuildError,
        message: format!("{}: {e}", dir.display()),
    })?;
    for (i, j) in jobs.iter().enumerate() {
        let p = emit_program(j.func, &format!("c{i}"), target).map_err(build_failure)?;
        let path = program_path(dir, i);
        std::fs::write(&path, program_file(&p)).map_err(|e| Failure {
            kind: ErrorKind::BuildError,
            message: format!("{}: {e}", path.display()),
        })?;
    }
    Ok(dir.to_path_buf())
}

/// The error of a failed `probe` on device `serial`.
pub(super) fn probe_error(serial: &str, e: HarnessError) -> AdbError {
    match e {
        HarnessError::NoLibrary { searched } => AdbError::NoOpenCl {
            serial: serial.into(),
            searched: searched
                .iter()
                .map(|(p, _)| p.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        },
        other => AdbError::OpenCl {
            serial: serial.into(),
            message: other.to_string(),
        },
    }
}

/// The error kind of a failed candidate run: the driver rejecting the kernel is a
/// build error, anything else a run error.
pub(super) fn run_kind(e: &HarnessError) -> ErrorKind {
    match e {
        HarnessError::BuildFailed(_) => ErrorKind::BuildError,
        _ => ErrorKind::RunError,
    }
}
