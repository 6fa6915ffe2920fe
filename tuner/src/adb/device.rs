//! Which devices adb knows, whether one is usable, and what it is: `getprop`, the CPU
//! parts of `/proc/cpuinfo` mapped to core names, and the cores' frequencies (the
//! commands; their output is read by [`super::parse`]).

use super::parse::{parse_devices, parse_probe, Listed, Probe};
use crate::measure::Runner as _;
use codegen::toolchain::run_with_timeout;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

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
    Ok(parse_devices(&f.stdout))
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

/// The script that prints what [`parse_probe`] reads.
const PROBE: &str = "echo @model; getprop ro.product.model; echo @abi; getprop ro.product.cpu.abi; \
echo @soc; getprop ro.soc.model; echo @platform; getprop ro.board.platform; \
echo @cpuinfo; cat /proc/cpuinfo; echo @freq; \
for f in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq; do echo \"$f $(cat \"$f\" 2>/dev/null)\"; done; echo @end";

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
    fn the_probe_script_prints_every_section_the_parser_knows() {
        for s in super::super::parse::PROBE_SECTIONS {
            assert!(
                PROBE.contains(&format!("echo @{s};")) || PROBE.ends_with(&format!("echo @{s}")),
                "{s}"
            );
        }
    }
}
