//! Compiler drivers and runners: how a target's C is built and where its binary runs.

use crate::error::CodegenError;
use crate::target::Target;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where a built binary runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    /// Directly on this machine (host target, or an aarch64 machine).
    Native,
    /// Under user-mode emulation: `qemu-aarch64 -cpu CPU`.
    Qemu {
        /// The emulated core (`cortex-a76`, `cortex-a55`, `max`).
        cpu: String,
    },
}

/// The compiler command for a target (for `opencl`, the host compiler: OpenCL kernels
/// are built by the device's driver at run time, see [`crate::opencl_run`]).
pub fn compiler(target: &Target) -> (String, Vec<String>, &'static str) {
    match target {
        Target::Host | Target::OpenCl { .. } => (
            "cc".into(),
            vec!["-O3".into(), "-march=native".into(), "-fopenmp".into()],
            "gcc",
        ),
        Target::Aarch64Neon { mcpu } => (
            "aarch64-linux-gnu-gcc".into(),
            vec![
                "-O3".into(),
                "-static".into(),
                format!("-mcpu={mcpu}"),
                "-fopenmp".into(),
            ],
            "gcc-aarch64-linux-gnu (and libc6-dev-arm64-cross)",
        ),
    }
}

/// Checks that `program` can be started; otherwise names the package to install.
pub fn require(program: &str, package: &str) -> Result<(), CodegenError> {
    match Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(_) => Err(CodegenError::MissingTool {
            program: program.into(),
            package: package.into(),
        }),
    }
}

/// Output of a finished child process.
pub struct Finished {
    /// Exit status (None when killed by a signal).
    pub code: Option<i32>,
    /// Signal number, when killed by one.
    pub signal: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Most bytes kept from each output stream of a child process ([`read_capped`]).
pub const MAX_CAPTURE: usize = 8 << 20;

/// Reads `r` to its end, keeping the first [`MAX_CAPTURE`] bytes (the rest is read
/// and dropped, so the child never blocks on a full pipe), as text: invalid UTF-8
/// (a device's or a compiler's stray bytes) becomes U+FFFD instead of losing the
/// whole output.
pub fn read_capped<R: Read>(r: &mut R) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = MAX_CAPTURE.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// Runs `cmd` with a wall-clock limit; kills it (SIGKILL) when the limit passes.
/// Returns `Ok(None)` on timeout. Each output stream is captured with
/// [`read_capped`].
pub fn run_with_timeout(
    cmd: &mut Command,
    limit: Duration,
) -> Result<Option<Finished>, std::io::Error> {
    // The child leads its own process group, so that a timeout kills what it started
    // too (the compiler driver's `cc1`, a shell wrapper's program); killing only the
    // direct child left orphaned compilers running after a build timeout.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(cmd, 0);
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let out_t = std::thread::spawn(move || out.as_mut().map(read_capped).unwrap_or_default());
    let err_t = std::thread::spawn(move || err.as_mut().map(read_capped).unwrap_or_default());
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        if start.elapsed() > limit {
            #[cfg(unix)]
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: kill(2) with a negative pid signals the child's process group,
                // which it leads (process_group(0) above); no memory is involved.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    Ok(status.map(|st| {
        #[cfg(unix)]
        let signal = std::os::unix::process::ExitStatusExt::signal(&st);
        #[cfg(not(unix))]
        let signal = None;
        Finished {
            code: st.code(),
            signal,
            stdout,
            stderr,
        }
    }))
}

/// Compiles `source` for `target` into an executable in `dir`; returns its path.
pub fn build_binary(
    source: &str,
    dir: &Path,
    target: &Target,
    limit: Duration,
) -> Result<PathBuf, CodegenError> {
    if target.opencl() {
        return Err(CodegenError::Unsupported {
            loop_name: "-".into(),
            reason: format!(
                "`{target}` kernels are OpenCL C built by the device driver: use codegen::opencl_run, not a C measurement binary"
            ),
        });
    }
    let (cc, flags, package) = compiler(target);
    require(&cc, package)?;
    let io = |path: &Path| {
        let p = path.display().to_string();
        move |source| CodegenError::Io { path: p, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let src = dir.join("kernels.c");
    std::fs::write(&src, source).map_err(io(&src))?;
    let bin = dir.join("kernels");
    let mut cmd = Command::new(&cc);
    cmd.args(&flags)
        .arg("-Wall")
        .arg("-Werror")
        .arg("-Wno-unused-variable")
        .arg("-Wno-unused-function")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .arg("-lm");
    match run_with_timeout(&mut cmd, limit).map_err(io(Path::new(&cc)))? {
        None => Err(CodegenError::BuildTimeout(limit)),
        Some(f) if f.code == Some(0) => Ok(bin),
        Some(f) => Err(CodegenError::BuildFailed {
            program: cc,
            status: format!("{:?}", f.code),
            stderr: f.stderr,
        }),
    }
}

/// The command that runs `bin` with `runner`.
pub fn command(bin: &Path, runner: &Runner) -> Result<Command, CodegenError> {
    Ok(match runner {
        Runner::Native => Command::new(bin),
        Runner::Qemu { cpu } => {
            require("qemu-aarch64", "qemu-user")?;
            let mut c = Command::new("qemu-aarch64");
            // Idle OpenMP threads spin by default; under emulation that costs seconds.
            c.env("OMP_WAIT_POLICY", "PASSIVE");
            c.arg("-cpu").arg(cpu).arg(bin);
            c
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_output_is_capped_and_lossy() {
        let latin1 = b"model \xe9t\xe9\n";
        assert_eq!(read_capped(&mut &latin1[..]), "model \u{fffd}t\u{fffd}\n");
        let big = vec![b'x'; MAX_CAPTURE + 12345];
        assert_eq!(read_capped(&mut big.as_slice()).len(), MAX_CAPTURE);
        // A real child whose output is not UTF-8 keeps its output.
        let f = run_with_timeout(
            Command::new("printf").arg("GRIM-PID 7\\n\\377\\n"),
            Duration::from_secs(10),
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.stdout, "GRIM-PID 7\n\u{fffd}\n");
    }
}
