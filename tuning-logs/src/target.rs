//! Targets: what a schedule was compiled for. Records of different targets never mix
//! in a query.

use crate::error::RecordError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A compilation target, written as text in records and on the command line:
/// `host`, `host -threads=2`, `aarch64-neon -mcpu=cortex-a76 -threads=4`,
/// `opencl -profile=mali-g76`.
///
/// CPU targets carry the OpenMP thread count the schedules were measured with
/// (`-threads=N`, as TVM's `-num-cores`): a schedule that is fastest on one core is
/// rarely the fastest on four, so records of different thread counts never mix. No
/// count (the form of databases written before counts existed) means OpenMP's
/// default of the measuring process.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// C for the host CPU (local runs).
    Host {
        /// OpenMP threads of the measurements (`None`: the process default).
        threads: Option<u32>,
    },
    /// C with NEON intrinsics for an ARM CPU, tuned for one `-mcpu`.
    Aarch64Neon {
        /// The `-mcpu` value, e.g. `cortex-a76`.
        mcpu: String,
        /// OpenMP threads of the measurements (`None`: the process default).
        threads: Option<u32>,
    },
    /// OpenCL C for a mobile GPU with a device profile.
    OpenCl {
        /// The device profile, e.g. `mali-g76`.
        profile: String,
    },
}

/// Whether `s` is a usable option value: non-empty, `[A-Za-z0-9._+-]`.
fn valid_value(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
}

impl FromStr for Target {
    type Err = RecordError;

    /// Parses the text form. Errors name the expected forms.
    fn from_str(text: &str) -> Result<Target, RecordError> {
        let expected = "expected `host [-threads=N]`, `aarch64-neon -mcpu=CPU [-threads=N]` or `opencl -profile=DEVICE`";
        let bad = || RecordError::new("target", format!("`{text}`: {expected}"));
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some((&kind, options)) = words.split_first() else {
            return Err(bad());
        };
        // `-name=value` options, each at most once, only the ones the kind takes.
        let mut values: Vec<(&str, &str)> = Vec::new();
        for opt in options {
            let (name, value) = opt
                .strip_prefix('-')
                .and_then(|o| o.split_once('='))
                .filter(|(_, v)| valid_value(v))
                .ok_or_else(bad)?;
            if values.iter().any(|(n, _)| *n == name) {
                return Err(bad());
            }
            values.push((name, value));
        }
        let allowed: &[&str] = match kind {
            "host" => &["threads"],
            "aarch64-neon" => &["mcpu", "threads"],
            "opencl" => &["profile"],
            _ => return Err(bad()),
        };
        if values.iter().any(|(n, _)| !allowed.contains(n)) {
            return Err(bad());
        }
        let value = |name: &str| values.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let threads = match value("threads") {
            None => None,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    return Err(RecordError::new(
                        "target",
                        format!("`{text}`: -threads must be a whole number of at least 1"),
                    ))
                }
            },
        };
        match kind {
            "host" => Ok(Target::Host { threads }),
            "aarch64-neon" => Ok(Target::Aarch64Neon {
                mcpu: value("mcpu").ok_or_else(bad)?.to_string(),
                threads,
            }),
            _ => Ok(Target::OpenCl {
                profile: value("profile").ok_or_else(bad)?.to_string(),
            }),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Host { .. } => write!(f, "host")?,
            Target::Aarch64Neon { mcpu, .. } => write!(f, "aarch64-neon -mcpu={mcpu}")?,
            Target::OpenCl { profile } => write!(f, "opencl -profile={profile}")?,
        }
        match self.threads() {
            Some(n) => write!(f, " -threads={n}"),
            None => Ok(()),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Target, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|e: RecordError| serde::de::Error::custom(e.reason))
    }
}

impl Target {
    /// The host target without a thread count (OpenMP's default).
    pub const HOST: Target = Target::Host { threads: None };

    /// The OpenMP thread count the target's schedules are measured and run with
    /// (`None` for OpenCL and for CPU targets without a count).
    pub fn threads(&self) -> Option<u32> {
        match self {
            Target::Host { threads } | Target::Aarch64Neon { threads, .. } => *threads,
            Target::OpenCl { .. } => None,
        }
    }

    /// The same target with `threads` OpenMP threads; OpenCL targets are returned
    /// unchanged (their parallelism is the work-group shape, not threads).
    pub fn with_threads(self, threads: Option<u32>) -> Target {
        match self {
            Target::Host { .. } => Target::Host { threads },
            Target::Aarch64Neon { mcpu, .. } => Target::Aarch64Neon { mcpu, threads },
            other => other,
        }
    }

    /// The target's id in database keys: the first 8 bytes of SHA-256 over the text
    /// form.
    pub fn id(&self) -> [u8; 8] {
        crate::key::hash8(&[b"grim-target-v1", self.to_string().as_bytes()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_and_errors() {
        for t in [
            "host",
            "host -threads=2",
            "aarch64-neon -mcpu=cortex-a76",
            "aarch64-neon -mcpu=cortex-a76 -threads=4",
            "opencl -profile=mali-g76",
        ] {
            let parsed: Target = t.parse().unwrap();
            assert_eq!(parsed.to_string(), t);
        }
        assert_eq!(
            "aarch64-neon   -mcpu=cortex-a55"
                .parse::<Target>()
                .unwrap()
                .to_string(),
            "aarch64-neon -mcpu=cortex-a55"
        );
        for bad in [
            "",
            "x86",
            "host extra",
            "aarch64-neon",
            "aarch64-neon -mcpu=",
            "opencl -mcpu=x",
            "opencl -profile=a b",
            "host -mcpu=x",
            "host -threads",
            "opencl -profile=x -threads=2",
            "aarch64-neon -threads=2",
            "aarch64-neon -mcpu=a -mcpu=b",
        ] {
            let e = bad.parse::<Target>().unwrap_err();
            assert_eq!(e.field, "target");
            assert!(e.reason.contains("expected `host"), "{bad}: {e}");
        }
        for bad in ["host -threads=0", "host -threads=two", "host -threads=-1"] {
            let e = bad.parse::<Target>().unwrap_err();
            assert!(e.reason.contains("-threads must be"), "{bad}: {e}");
        }
        // Options in either order; printed in one.
        let t: Target = "aarch64-neon -threads=4 -mcpu=cortex-a55".parse().unwrap();
        assert_eq!(t.to_string(), "aarch64-neon -mcpu=cortex-a55 -threads=4");
        assert_eq!(t.threads(), Some(4));
        assert_eq!(
            Target::HOST.with_threads(Some(2)).to_string(),
            "host -threads=2"
        );
        // Thread counts are part of the identity.
        assert_ne!(Target::HOST.id(), Target::HOST.with_threads(Some(1)).id());
        assert_ne!(
            Target::HOST.id(),
            "aarch64-neon -mcpu=cortex-a76"
                .parse::<Target>()
                .unwrap()
                .id()
        );
    }
}
