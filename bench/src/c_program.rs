//! Building the benchmark's own C programs (the CSR kernel, the ceilings probe) with the
//! compiler and flags grim's kernels get for the same target
//! (`codegen::toolchain::compiler`: the host's, or the aarch64 cross compiler's), so that
//! every C figure in the report comes from the same compiler settings as grim's.

use crate::error::{io, BenchError};
use codegen::toolchain::{compiler, require, run_with_timeout};
use codegen::Target;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Writes `source` to `dir/NAME.c` and builds it for `target` into `dir/NAME`
/// (warnings are errors); returns the binary's path. Errors carry `case` and `system`,
/// the part of the report the program serves.
pub fn build(
    dir: &Path,
    name: &str,
    source: &str,
    target: &Target,
    (case, system): (&str, &str),
) -> Result<PathBuf, BenchError> {
    let (cc, flags, package) = compiler(target);
    let fail = |message: String| BenchError::Run {
        case: case.into(),
        system: system.into(),
        message,
    };
    require(&cc, package).map_err(|e| fail(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).map_err(io(&src))?;
    let bin = dir.join(name);
    let mut cmd = Command::new(&cc);
    cmd.args(&flags)
        .args(["-Wall", "-Werror", "-o"])
        .arg(&bin)
        .arg(&src)
        .arg("-lm");
    let f = run_with_timeout(&mut cmd, Duration::from_secs(300))
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("build timed out".into()))?;
    if f.code != Some(0) {
        return Err(fail(format!("{cc} failed: {}", f.stderr.trim())));
    }
    Ok(bin)
}
