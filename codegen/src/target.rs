//! Code generation targets, as data.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where generated code runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    /// The machine grim runs on: portable C, `cc -O3 -march=native`, vectorized loops
    /// left to the compiler's auto-vectorizer (`#pragma omp simd`).
    Host,
    /// 64-bit ARM with NEON: C with `arm_neon.h` intrinsics for vectorized loops, built
    /// with `aarch64-linux-gnu-gcc -O3 -static -mcpu=MCPU`.
    Aarch64Neon {
        /// The core to tune for (`cortex-a55`, `cortex-a76`, `cortex-x1`, ...).
        mcpu: String,
    },
    /// A GPU (or any OpenCL device) through OpenCL C kernels, built and run with the
    /// device's OpenCL driver (see [`crate::opencl_emit`] and [`crate::opencl_run`]).
    OpenCl {
        /// Vectorized loops compute in `half4` (storage stays `f32`); needs a device
        /// with `cl_khr_fp16`.
        fp16: bool,
    },
}

/// The error returned for an unknown target string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown target `{0}`, expected `host`, `aarch64-neon:MCPU` (e.g. aarch64-neon:cortex-a76), `opencl` or `opencl:fp16`"
)]
pub struct TargetParseError(pub String);

impl FromStr for Target {
    type Err = TargetParseError;

    fn from_str(s: &str) -> Result<Target, TargetParseError> {
        let s = s.trim();
        if s == "host" {
            return Ok(Target::Host);
        }
        if s == "opencl" {
            return Ok(Target::OpenCl { fp16: false });
        }
        if s == "opencl:fp16" {
            return Ok(Target::OpenCl { fp16: true });
        }
        if s == "aarch64-neon" {
            return Ok(Target::Aarch64Neon {
                mcpu: "cortex-a76".into(),
            });
        }
        if let Some(mcpu) = s.strip_prefix("aarch64-neon:") {
            let ok = !mcpu.is_empty()
                && mcpu
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '+');
            if ok {
                return Ok(Target::Aarch64Neon { mcpu: mcpu.into() });
            }
        }
        Err(TargetParseError(s.to_string()))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Host => f.write_str("host"),
            Target::Aarch64Neon { mcpu } => write!(f, "aarch64-neon:{mcpu}"),
            Target::OpenCl { fp16: false } => f.write_str("opencl"),
            Target::OpenCl { fp16: true } => f.write_str("opencl:fp16"),
        }
    }
}

impl Target {
    /// True when vectorized loops are emitted with NEON intrinsics.
    pub fn neon(&self) -> bool {
        matches!(self, Target::Aarch64Neon { .. })
    }

    /// True for OpenCL targets (kernels in OpenCL C, not a C measurement binary).
    pub fn opencl(&self) -> bool {
        matches!(self, Target::OpenCl { .. })
    }
}
