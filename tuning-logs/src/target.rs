//! Targets: what a schedule was compiled for. Records of different targets never mix
//! in a query.

use crate::error::RecordError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A compilation target, written as text in records and on the command line:
/// `host`, `aarch64-neon -mcpu=cortex-a76`, `opencl -profile=mali-g76`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// C for the host CPU (local runs).
    Host,
    /// C with NEON intrinsics for an ARM CPU, tuned for one `-mcpu`.
    Aarch64Neon {
        /// The `-mcpu` value, e.g. `cortex-a76`.
        mcpu: String,
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
        let expected = "expected `host`, `aarch64-neon -mcpu=CPU` or `opencl -profile=DEVICE`";
        let words: Vec<&str> = text.split_whitespace().collect();
        let option = |prefix: &str| -> Result<String, RecordError> {
            match words.as_slice() {
                [_, opt] => match opt.strip_prefix(prefix) {
                    Some(v) if valid_value(v) => Ok(v.to_string()),
                    _ => Err(RecordError::new("target", format!("`{text}`: {expected}"))),
                },
                _ => Err(RecordError::new("target", format!("`{text}`: {expected}"))),
            }
        };
        match words.first().copied() {
            Some("host") if words.len() == 1 => Ok(Target::Host),
            Some("aarch64-neon") => Ok(Target::Aarch64Neon {
                mcpu: option("-mcpu=")?,
            }),
            Some("opencl") => Ok(Target::OpenCl {
                profile: option("-profile=")?,
            }),
            _ => Err(RecordError::new("target", format!("`{text}`: {expected}"))),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Host => write!(f, "host"),
            Target::Aarch64Neon { mcpu } => write!(f, "aarch64-neon -mcpu={mcpu}"),
            Target::OpenCl { profile } => write!(f, "opencl -profile={profile}"),
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
            "aarch64-neon -mcpu=cortex-a76",
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
        ] {
            let e = bad.parse::<Target>().unwrap_err();
            assert_eq!(e.field, "target");
            assert!(e.reason.contains("expected `host`"), "{e}");
        }
        assert_ne!(
            Target::Host.id(),
            "aarch64-neon -mcpu=cortex-a76"
                .parse::<Target>()
                .unwrap()
                .id()
        );
    }
}
