//! Device identity: which phone (or host) a record was measured on. Records of
//! different devices never mix in a query.

use crate::error::RecordError;
use serde::{Deserialize, Serialize};

/// What identifies a device for tuning purposes. Two phones of the same model, SoC,
/// ABI, core count and OpenCL device share tuning results: the [`serial`](Self::serial)
/// is kept for the record but is not part of the [`id`](Self::id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceIdentity {
    /// Device model (`ro.product.model` on Android, e.g. `Pixel 7`; `host` locally).
    pub model: String,
    /// SoC or CPU part (e.g. `Tensor G2`, `cortex-a76`, the host's CPU model name).
    pub soc: String,
    /// ABI (e.g. `arm64-v8a`, `aarch64`, `x86_64`).
    pub abi: String,
    /// Number of CPU cores.
    pub cores: u32,
    /// OpenCL device name, when the target uses one.
    pub opencl_device: Option<String>,
    /// Serial number (adb serial); never part of the id.
    pub serial: Option<String>,
}

impl DeviceIdentity {
    /// The machine this process runs on: model `host`, the CPU model name from
    /// `/proc/cpuinfo` (or `unknown`), the architecture and the number of cores.
    pub fn host() -> DeviceIdentity {
        let soc = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name") || l.starts_with("CPU part"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".to_string());
        DeviceIdentity {
            model: "host".to_string(),
            soc,
            abi: std::env::consts::ARCH.to_string(),
            cores: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
            opencl_device: None,
            serial: None,
        }
    }

    /// The device's id in database keys: the first 8 bytes of SHA-256 over every field
    /// except the serial.
    pub fn id(&self) -> [u8; 8] {
        let cores = self.cores.to_le_bytes();
        let (has_ocl, ocl) = match &self.opencl_device {
            Some(d) => (&[1u8][..], d.as_bytes()),
            None => (&[0u8][..], &[][..]),
        };
        crate::key::hash8(&[
            b"grim-device-v1",
            self.model.as_bytes(),
            self.soc.as_bytes(),
            self.abi.as_bytes(),
            &cores,
            has_ocl,
            ocl,
        ])
    }

    /// The id as 16 hex digits, as shown to users and accepted by `--device`.
    pub fn id_hex(&self) -> String {
        crate::key::hex(&self.id())
    }

    /// A short human name: `model (soc)`.
    pub fn name(&self) -> String {
        format!("{} ({})", self.model, self.soc)
    }

    /// Checks the fields: names non-empty, at least one core.
    pub fn validate(&self) -> Result<(), RecordError> {
        for (field, value) in [
            ("device.model", &self.model),
            ("device.soc", &self.soc),
            ("device.abi", &self.abi),
        ] {
            if value.trim().is_empty() {
                return Err(RecordError::new(field, "must not be empty"));
            }
        }
        if self.cores == 0 {
            return Err(RecordError::new("device.cores", "must be at least 1"));
        }
        if self
            .opencl_device
            .as_deref()
            .is_some_and(|d| d.trim().is_empty())
        {
            return Err(RecordError::new(
                "device.opencl_device",
                "must not be empty when present (use null)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel() -> DeviceIdentity {
        DeviceIdentity {
            model: "Pixel 7".into(),
            soc: "Tensor G2".into(),
            abi: "arm64-v8a".into(),
            cores: 8,
            opencl_device: Some("Mali-G710".into()),
            serial: Some("ABC123".into()),
        }
    }

    #[test]
    fn serial_is_not_part_of_the_id_but_everything_else_is() {
        let a = pixel();
        let mut b = pixel();
        b.serial = Some("OTHER".into());
        assert_eq!(a.id(), b.id());
        let mut c = pixel();
        c.cores = 4;
        assert_ne!(a.id(), c.id());
        let mut d = pixel();
        d.opencl_device = None;
        assert_ne!(a.id(), d.id());
        // Field boundaries matter: moving a character between fields changes the id.
        let mut e = pixel();
        e.model = "Pixel 7T".into();
        e.soc = "ensor G2".into();
        assert_ne!(a.id(), e.id());
        assert_eq!(a.id_hex().len(), 16);
    }

    #[test]
    fn host_is_valid() {
        DeviceIdentity::host().validate().unwrap();
    }
}
