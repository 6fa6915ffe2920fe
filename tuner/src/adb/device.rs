//! Which devices adb knows, whether one is usable, and what it is: `getprop`, the CPU
//! parts of `/proc/cpuinfo` mapped to core names, and the cores' frequencies.

use crate::measure::Runner as _;
use codegen::toolchain::run_with_timeout;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use tuning_logs::DeviceIdentity;

/// Why the adb device cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AdbError {
    /// The `adb` program cannot be started.
    #[error("cannot run `{program}`: {reason}; install Debian's `adb` (apt-get install adb) or pass --adb PATH")]
    Missing {
        /// The program.
        program: String,
        /// The OS error.
        reason: String,
    },
    /// No device with this serial.
    #[error("adb device `{serial}` not found (connected: {connected}); check the cable or `adb connect HOST:PORT`, then `grim-tune devices`")]
    NotFound {
        /// The serial asked for.
        serial: String,
        /// The serials adb knows, or `none`.
        connected: String,
    },
    /// The device is offline.
    #[error("adb device `{serial}` is offline; reconnect it (unplug/replug, or `adb reconnect`) and retry")]
    Offline {
        /// The serial.
        serial: String,
    },
    /// The device has not authorized this computer.
    #[error("adb device `{serial}` is unauthorized; unlock the phone and accept the USB debugging prompt, then retry")]
    Unauthorized {
        /// The serial.
        serial: String,
    },
    /// The device has no OpenCL library (`--target opencl`).
    #[error("adb device `{serial}` has no OpenCL library; searched: {searched} (pass --opencl-lib PATH when the driver lives elsewhere on the device, or tune its CPU with --target aarch64-neon:MCPU)")]
    NoOpenCl {
        /// The serial.
        serial: String,
        /// The libraries tried, comma-separated.
        searched: String,
    },
    /// OpenCL on the device failed otherwise (the harness cannot be built for its ABI,
    /// no platform or device behind the library, ...).
    #[error("adb device `{serial}`: OpenCL: {message}")]
    OpenCl {
        /// The serial.
        serial: String,
        /// What went wrong.
        message: String,
    },
    /// An adb command failed.
    #[error("adb {what} on `{serial}`: {message}")]
    Command {
        /// The serial.
        serial: String,
        /// The command.
        what: String,
        /// Its error output.
        message: String,
    },
}

/// A device as `adb devices` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The serial.
    pub serial: String,
    /// `device`, `offline`, `unauthorized`, ...
    pub state: String,
}

pub(super) fn adb_command(adb: &Path) -> Command {
    let mut c = Command::new(adb);
    c.stdin(Stdio::null());
    c
}

pub(super) fn missing(adb: &Path, e: std::io::Error) -> AdbError {
    AdbError::Missing {
        program: adb.display().to_string(),
        reason: e.to_string(),
    }
}

/// The devices the adb server knows.
pub fn list(adb: &Path) -> Result<Vec<Listed>, AdbError> {
    let f = run_with_timeout(adb_command(adb).arg("devices"), Duration::from_secs(30))
        .map_err(|e| missing(adb, e))?
        .ok_or_else(|| AdbError::Command {
            serial: "-".into(),
            what: "devices".into(),
            message: "timed out after 30 s".into(),
        })?;
    Ok(f.stdout
        .lines()
        .skip_while(|l| !l.starts_with("List of devices"))
        .skip(1)
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some(Listed {
                serial: it.next()?.to_string(),
                state: it.next()?.to_string(),
            })
        })
        .collect())
}

/// Checks that `serial` is connected and usable.
pub fn require_device(adb: &Path, serial: &str) -> Result<(), AdbError> {
    let devices = list(adb)?;
    match devices.iter().find(|d| d.serial == serial) {
        Some(d) if d.state == "device" => Ok(()),
        Some(d) if d.state == "unauthorized" => Err(AdbError::Unauthorized {
            serial: serial.into(),
        }),
        Some(d) if d.state == "offline" => Err(AdbError::Offline {
            serial: serial.into(),
        }),
        Some(d) => Err(AdbError::Command {
            serial: serial.into(),
            what: "devices".into(),
            message: format!("state `{}`", d.state),
        }),
        None => Err(AdbError::NotFound {
            serial: serial.into(),
            connected: if devices.is_empty() {
                "none".into()
            } else {
                devices
                    .iter()
                    .map(|d| format!("{} ({})", d.serial, d.state))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        }),
    }
}

/// The hottest of the thermal-zone readings in `text` (one integer per line, in
/// millidegrees Celsius, or degrees on some devices), in degrees Celsius.
pub fn max_temperature_c(text: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.trim().parse::<i64>().ok())
        .map(|v| {
            if v.abs() >= 1000 {
                v as f64 / 1000.0
            } else {
                v as f64
            }
        })
        .max_by(|a, b| a.total_cmp(b))
}

/// The core name of an ARM `CPU part` (implementer 0x41).
pub fn core_name(part: u32) -> Option<&'static str> {
    Some(match part {
        0xd03 => "cortex-a53",
        0xd04 => "cortex-a35",
        0xd05 => "cortex-a55",
        0xd07 => "cortex-a57",
        0xd08 => "cortex-a72",
        0xd09 => "cortex-a73",
        0xd0a => "cortex-a75",
        0xd0b => "cortex-a76",
        0xd0d => "cortex-a77",
        0xd41 => "cortex-a78",
        0xd44 => "cortex-x1",
        0xd46 => "cortex-a510",
        0xd47 => "cortex-a710",
        0xd48 => "cortex-x2",
        0xd4d => "cortex-a715",
        0xd4e => "cortex-x3",
        0xd80 => "cortex-a520",
        0xd81 => "cortex-a720",
        0xd82 => "cortex-x4",
        _ => return None,
    })
}

/// What [`probe_identity`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The identity for the database key.
    pub identity: DeviceIdentity,
    /// Core names per core (`cortex-a55`, or `part 0x...` when unknown).
    pub cores: Vec<String>,
    /// Maximum frequency per core, kHz, where readable.
    pub max_khz: Vec<Option<u64>>,
}

/// The script that prints what [`parse_probe`] reads.
const PROBE: &str = "echo @model; getprop ro.product.model; echo @abi; getprop ro.product.cpu.abi; \
echo @soc; getprop ro.soc.model; echo @platform; getprop ro.board.platform; \
echo @cpuinfo; cat /proc/cpuinfo; echo @freq; \
for f in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq; do echo \"$f $(cat \"$f\" 2>/dev/null)\"; done; echo @end";

/// Parses the output of the probe script.
pub fn parse_probe(text: &str, serial: &str) -> Probe {
    let mut sections: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut cur = "";
    for l in text.lines() {
        if let Some(s) = l.strip_prefix('@') {
            cur = s.trim();
            continue;
        }
        sections.entry(cur).or_default().push(l);
    }
    let first = |k: &str| {
        sections
            .get(k)
            .and_then(|v| v.iter().map(|s| s.trim()).find(|s| !s.is_empty()))
            .unwrap_or("")
            .to_string()
    };
    let mut parts: Vec<String> = Vec::new();
    for l in sections.get("cpuinfo").map(|v| v.as_slice()).unwrap_or(&[]) {
        if let Some((k, v)) = l.split_once(':') {
            if k.trim() == "CPU part" {
                let v = v.trim();
                let name = u32::from_str_radix(v.trim_start_matches("0x"), 16)
                    .ok()
                    .and_then(core_name)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("part {v}"));
                parts.push(name);
            }
        }
    }
    let mut freqs: BTreeMap<usize, u64> = BTreeMap::new();
    for l in sections.get("freq").map(|v| v.as_slice()).unwrap_or(&[]) {
        let mut it = l.split_whitespace();
        let (Some(path), Some(v)) = (it.next(), it.next()) else {
            continue;
        };
        let cpu = path
            .split('/')
            .find_map(|c| c.strip_prefix("cpu").and_then(|n| n.parse::<usize>().ok()));
        if let (Some(cpu), Ok(v)) = (cpu, v.parse::<u64>()) {
            freqs.insert(cpu, v);
        }
    }
    // Cores: one `CPU part` per core on ARM; otherwise count `processor` entries.
    let processors = sections
        .get("cpuinfo")
        .map(|v| {
            v.iter()
                .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
                .count()
        })
        .unwrap_or(0);
    let n = parts.len().max(processors).max(1);
    let max_khz: Vec<Option<u64>> = (0..parts.len()).map(|i| freqs.get(&i).copied()).collect();
    // Groups of equal (core, frequency), in core order: "4x cortex-a55@1.8GHz".
    let mut groups: Vec<(String, Option<u64>, usize)> = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let f = max_khz.get(i).copied().flatten();
        match groups.last_mut() {
            Some(g) if g.0 == *p && g.1 == f => g.2 += 1,
            _ => groups.push((p.clone(), f, 1)),
        }
    }
    let cores_text = groups
        .iter()
        .map(|(p, f, k)| match f {
            Some(f) => format!("{k}x {p}@{:.1}GHz", *f as f64 / 1e6),
            None => format!("{k}x {p}"),
        })
        .collect::<Vec<_>>()
        .join(" + ");
    let mut soc = first("soc");
    if soc.is_empty() {
        soc = first("platform");
    }
    if soc.is_empty() {
        soc = "unknown".into();
    }
    if !cores_text.is_empty() {
        soc = format!("{soc}: {cores_text}");
    }
    let model = Some(first("model"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let abi = Some(first("abi"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    Probe {
        identity: DeviceIdentity {
            model,
            soc,
            abi,
            cores: n as u32,
            opencl_device: None,
            serial: Some(serial.to_string()),
        },
        cores: parts,
        max_khz,
    }
}

/// Reads a device's identity: `getprop` (model, ABI, SoC or platform), the CPU parts of
/// `/proc/cpuinfo` mapped to core names, and the cores' maximum frequencies.
pub fn probe_identity(adb: &Path, serial: &str) -> Result<Probe, AdbError> {
    let f = run_with_timeout(
        adb_command(adb).args(["-s", serial, "shell", PROBE]),
        Duration::from_secs(30),
    )
    .map_err(|e| missing(adb, e))?
    .ok_or_else(|| AdbError::Command {
        serial: serial.into(),
        what: "shell (identity)".into(),
        message: "timed out after 30 s".into(),
    })?;
    if !f.stdout.contains("@end") {
        return Err(AdbError::Command {
            serial: serial.into(),
            what: "shell (identity)".into(),
            message: f.stderr.trim().to_string(),
        });
    }
    Ok(parse_probe(&f.stdout, serial))
}

/// `grim-tune devices`: one block per connected device with its identity; with
/// `opencl` (the options of the OpenCL harness: `adb`, `opencl_library`, `opencl_cc`;
/// the serial is replaced), also the OpenCL device the GPU path would use, found by
/// running the harness's `probe` on the device.
pub fn devices(adb: &Path, opencl: Option<&super::AdbOptions>) -> Result<String, AdbError> {
    let listed = list(adb)?;
    if listed.is_empty() {
        return Ok(
            "no adb devices (connect a phone with USB debugging on, or `adb connect HOST:PORT`)\n"
                .into(),
        );
    }
    let mut s = String::new();
    for d in listed {
        s.push_str(&format!("{}  {}\n", d.serial, d.state));
        match d.state.as_str() {
            "device" => {
                match probe_identity(adb, &d.serial) {
                    Ok(p) => {
                        let id = &p.identity;
                        s.push_str(&format!("  model   {}\n  abi     {}\n  soc     {}\n  cores   {}\n  id      {}\n", id.model, id.abi, id.soc, id.cores, id.id_hex()));
                        if let Some(template) = opencl {
                            let mut o = template.clone();
                            o.adb = adb.to_path_buf();
                            o.serial = d.serial.clone();
                            let limits = crate::measure::Limits::default();
                            match super::AdbRunner::new_opencl(o, false, limits) {
                                Ok(r) => {
                                    if let Some(i) = r.opencl() {
                                        s.push_str(&format!("  opencl  {}\n", i.describe()));
                                    }
                                    if let Some(id) = r.identity() {
                                        s.push_str(&format!(
                                            "  id      {} (with OpenCL)\n",
                                            id.id_hex()
                                        ));
                                    }
                                }
                                Err(e) => s.push_str(&format!("  opencl  none: {e}\n")),
                            }
                        }
                    }
                    Err(e) => s.push_str(&format!("  error   {e}\n")),
                }
            }
            "unauthorized" => s.push_str("  accept the USB debugging prompt on the phone\n"),
            "offline" => s.push_str("  offline: reconnect it\n"),
            _ => {}
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperatures() {
        assert_eq!(max_temperature_c("41000\n83500\n-1\n"), Some(83.5));
        assert_eq!(max_temperature_c("45\n"), Some(45.0));
        assert_eq!(max_temperature_c(""), None);
    }

    #[test]
    fn probe_maps_parts_to_cores_and_groups_them() {
        let text = "@model\nPixel 7\n@abi\narm64-v8a\n@soc\nTensor G2\n@platform\ngs201\n@cpuinfo\nprocessor\t: 0\nCPU part\t: 0xd05\n\nprocessor\t: 1\nCPU part\t: 0xd05\n\nprocessor\t: 2\nCPU part\t: 0xd41\n\nprocessor\t: 3\nCPU part\t: 0xd44\n@freq\n/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq 1803000\n/sys/devices/system/cpu/cpu1/cpufreq/cpuinfo_max_freq 1803000\n/sys/devices/system/cpu/cpu2/cpufreq/cpuinfo_max_freq 2348000\n/sys/devices/system/cpu/cpu3/cpufreq/cpuinfo_max_freq 2850000\n@end\n";
        let p = parse_probe(text, "XYZ");
        assert_eq!(p.identity.model, "Pixel 7");
        assert_eq!(p.identity.cores, 4);
        assert_eq!(
            p.identity.soc,
            "Tensor G2: 2x cortex-a55@1.8GHz + 1x cortex-a78@2.3GHz + 1x cortex-x1@2.9GHz"
        );
        assert_eq!(p.identity.serial.as_deref(), Some("XYZ"));
        p.identity.validate().unwrap();
    }
}
