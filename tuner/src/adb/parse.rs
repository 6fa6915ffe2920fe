//! Everything grim reads from adb's and the device's output, as pure functions of the
//! text (the `fuzz` crate's `adb-output` target feeds them arbitrary bytes): the
//! device list of `adb devices` / `adb devices -l` ([`parse_devices`]), the identity
//! probe (`getprop`, `/proc/cpuinfo`, cpufreq files; [`parse_probe`]), thermal-zone
//! readings ([`max_temperature_c`]), `adb get-state` ([`state_text`]), and a
//! candidate run's pid line and exit status ([`parse_pid`], [`run_status`]). The
//! timing line and the pulled output file are read by [`codegen::run::parse_timing`]
//! and [`codegen::run::outputs_from_bytes`].
//!
//! None of them panics or allocates more than a small multiple of its input; a phone
//! (or anything pretending to be one) controls this text.

use std::collections::{BTreeMap, HashMap};
use tuning_logs::DeviceIdentity;

/// A device as `adb devices` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The serial.
    pub serial: String,
    /// `device`, `offline`, `unauthorized`, or adb's words for other states (`no
    /// permissions (...)`), without the `-l` fields.
    pub state: String,
    /// The `key:value` fields of `adb devices -l` (`usb`, `product`, `model`,
    /// `device`, `transport_id`); empty for plain `adb devices`.
    pub details: BTreeMap<String, String>,
}

/// True for a `-l` field name: lowercase ASCII letters, digits and `_`.
fn is_field_name(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Parses the output of `adb devices` or `adb devices -l`: the lines after `List of
/// devices attached`, each `SERIAL<whitespace>STATE[ key:value...]`. Daemon messages
/// (`* daemon started successfully`) and blank lines are skipped; a line with a serial
/// and no state is skipped too.
pub fn parse_devices(text: &str) -> Vec<Listed> {
    text.lines()
        .skip_while(|l| !l.starts_with("List of devices"))
        .skip(1)
        .filter_map(parse_device_line)
        .collect()
}

fn parse_device_line(line: &str) -> Option<Listed> {
    let line = line.trim();
    if line.starts_with('*') {
        return None;
    }
    let (serial, rest) = line.split_once(|c: char| c.is_whitespace())?;
    let mut state: Vec<&str> = Vec::new();
    let mut details = BTreeMap::new();
    for tok in rest.split_whitespace() {
        match tok.split_once(':') {
            Some((k, v)) if !state.is_empty() && is_field_name(k) => {
                details.insert(k.to_string(), v.to_string());
            }
            _ if details.is_empty() => state.push(tok),
            // A word after the fields: keep it with the last field's value.
            _ => {
                if let Some(last) = details.values_mut().next_back() {
                    last.push(' ');
                    last.push_str(tok);
                }
            }
        }
    }
    if state.is_empty() {
        return None;
    }
    Some(Listed {
        serial: serial.to_string(),
        state: state.join(" "),
        details,
    })
}

/// The hottest of the thermal-zone readings in `text` (one integer per line, in
/// millidegrees Celsius, or degrees on some devices), in degrees Celsius. Lines that
/// are not integers are skipped.
pub fn max_temperature_c(text: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.trim().parse::<i64>().ok())
        .map(|v| {
            if v.unsigned_abs() >= 1000 {
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

/// What the identity probe found.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The identity for the database key.
    pub identity: DeviceIdentity,
    /// Core names per core (`cortex-a55`, or `part 0x...` when unknown).
    pub cores: Vec<String>,
    /// Maximum frequency per core, kHz, where readable.
    pub max_khz: Vec<Option<u64>>,
}

/// The section markers the probe script prints (`@model`, ...), one per line. Only
/// these start a section, so a property value that starts with `@` stays a value.
pub const PROBE_SECTIONS: [&str; 7] = ["model", "abi", "soc", "platform", "cpuinfo", "freq", "end"];

/// Longest value kept from a `getprop` answer (model, ABI, SoC), in characters.
pub const MAX_PROP_CHARS: usize = 200;

/// Parses the output of the identity probe (see `PROBE` in `device.rs`): sections
/// `@model`, `@abi`, `@soc`, `@platform` (first non-empty line of each, at most
/// [`MAX_PROP_CHARS`] characters), `@cpuinfo` (`/proc/cpuinfo`: `CPU part` per core,
/// `processor` entries), `@freq` (`PATH KHZ` per core). Missing values read as
/// `unknown`; the identity always has at least one core.
pub fn parse_probe(text: &str, serial: &str) -> Probe {
    let mut sections: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut cur = "";
    for l in text.lines() {
        if let Some(s) = l.strip_prefix('@') {
            if PROBE_SECTIONS.contains(&s.trim()) {
                cur = s.trim();
                continue;
            }
        }
        sections.entry(cur).or_default().push(l);
    }
    let first = |k: &str| {
        let v = sections
            .get(k)
            .and_then(|v| v.iter().map(|s| s.trim()).find(|s| !s.is_empty()))
            .unwrap_or("");
        v.chars().take(MAX_PROP_CHARS).collect::<String>()
    };
    let cpuinfo = sections.get("cpuinfo").map(|v| v.as_slice()).unwrap_or(&[]);
    let mut parts: Vec<String> = Vec::new();
    for l in cpuinfo {
        if let Some((k, v)) = l.split_once(':') {
            if k.trim() == "CPU part" {
                let v = v.trim();
                let name = u32::from_str_radix(v.trim_start_matches("0x"), 16)
                    .ok()
                    .and_then(core_name)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("part {}", v.chars().take(16).collect::<String>()));
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
    let processors = cpuinfo
        .iter()
        .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
        .count();
    let n = parts.len().max(processors).max(1);
    let max_khz: Vec<Option<u64>> = (0..parts.len()).map(|i| freqs.get(&i).copied()).collect();
    // Groups of equal (core, frequency), in core order: "4x cortex-a55@1.8GHz".
    let mut groups: Vec<(&str, Option<u64>, usize)> = Vec::new();
    for (p, f) in parts.iter().zip(&max_khz) {
        match groups.last_mut() {
            Some(g) if g.0 == p.as_str() && g.1 == *f => g.2 += 1,
            _ => groups.push((p.as_str(), *f, 1)),
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
    let or_unknown = |s: String| if s.is_empty() { "unknown".into() } else { s };
    Probe {
        identity: DeviceIdentity {
            model: or_unknown(first("model")),
            soc,
            abi: or_unknown(first("abi")),
            cores: u32::try_from(n).unwrap_or(u32::MAX),
            opencl_device: None,
            serial: Some(serial.to_string()),
        },
        cores: parts,
        max_khz,
    }
}

/// `adb get-state`'s answer in words: `device` when the exit status is 0 and the
/// output says `device`; otherwise the state it printed (`offline`, ...) or its error
/// output, or the exit status when both are empty.
pub fn state_text(code: Option<i32>, stdout: &str, stderr: &str) -> String {
    let (out, err) = (stdout.trim(), stderr.trim());
    match code {
        Some(0) if !out.is_empty() => out.to_string(),
        _ if !err.is_empty() => err.to_string(),
        _ if !out.is_empty() => out.to_string(),
        Some(c) => format!("exit status {c}"),
        None => "killed by a signal".into(),
    }
}

/// The pid a candidate run prints first (`GRIM-PID N`), when present.
pub fn parse_pid(stdout: &str) -> Option<u32> {
    stdout.lines().find_map(|l| {
        l.strip_prefix("GRIM-PID ")
            .and_then(|p| p.trim().parse::<u32>().ok())
    })
}

/// How a candidate run over `adb shell` ended: `Ok` on exit status 0, else what to
/// say about it (adb killed by a signal, or the status and the error output).
pub fn run_status(code: Option<i32>, signal: Option<i32>, stderr: &str) -> Result<(), String> {
    match (code, signal) {
        (Some(0), _) => Ok(()),
        (_, Some(s)) => Err(format!("adb killed by signal {s}")),
        (c, None) => Err(format!("exit status {c:?}; stderr: {}", stderr.trim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperatures() {
        assert_eq!(max_temperature_c("41000\n83500\n-1\n"), Some(83.5));
        assert_eq!(max_temperature_c("45\n"), Some(45.0));
        assert_eq!(max_temperature_c(""), None);
        // `i64::MIN.abs()` overflowed here (a panic in debug builds).
        assert_eq!(
            max_temperature_c("-9223372036854775808\n"),
            Some(-9223372036854775.808)
        );
    }

    #[test]
    fn device_lists_plain_and_long() {
        let plain = "* daemon not running; starting now at tcp:5037\n* daemon started successfully\nList of devices attached\n28051FDH2000ZZ\tdevice\n127.0.0.1:40001\toffline\nemulator-5554\tunauthorized\n0123456789ABCDEF\tno permissions (user in plugdev group; are your udev rules wrong?); see [http://developer.android.com/tools/device.html]\n\n";
        let d = parse_devices(plain);
        assert_eq!(d.len(), 4);
        assert_eq!(
            (d[0].serial.as_str(), d[0].state.as_str()),
            ("28051FDH2000ZZ", "device")
        );
        assert_eq!(d[1].state, "offline");
        assert!(d[3]
            .state
            .starts_with("no permissions (user in plugdev group;"));
        assert!(d.iter().all(|x| x.details.is_empty()));
        let long = "List of devices attached\n28051FDH2000ZZ         device usb:1-1 product:panther model:Pixel_7 device:panther transport_id:1\r\n127.0.0.1:40001        device product:sdk_gphone64_arm64 model:sdk_gphone64_arm64 device:emu64a transport_id:3\n";
        let d = parse_devices(long);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].state, "device");
        assert_eq!(d[0].details["model"], "Pixel_7");
        assert_eq!(d[0].details["transport_id"], "1");
        assert_eq!(d[1].serial, "127.0.0.1:40001");
        assert_eq!(parse_devices("garbage\n"), Vec::new());
        assert_eq!(
            parse_devices("List of devices attached\nlonely\n"),
            Vec::new()
        );
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

    #[test]
    fn probe_values_starting_with_at_stay_values() {
        let p = parse_probe("@model\n@home phone\n@abi\narm64-v8a\n@end\n", "S");
        assert_eq!(p.identity.model, "@home phone");
        let p = parse_probe("", "S");
        assert_eq!(
            (
                p.identity.model.as_str(),
                p.identity.soc.as_str(),
                p.identity.cores
            ),
            ("unknown", "unknown", 1)
        );
        let long = format!("@model\n{}\n@end\n", "x".repeat(10_000));
        assert_eq!(parse_probe(&long, "S").identity.model.len(), MAX_PROP_CHARS);
    }

    #[test]
    fn state_pid_and_exit_status() {
        assert_eq!(state_text(Some(0), "device\n", ""), "device");
        assert_eq!(state_text(Some(0), "offline\n", ""), "offline");
        assert_eq!(
            state_text(Some(1), "", "error: device '1.2.3.4:5' not found\n"),
            "error: device '1.2.3.4:5' not found"
        );
        assert_eq!(state_text(Some(1), "", ""), "exit status 1");
        assert_eq!(
            parse_pid("GRIM-PID 4242\nGRIM-TIMING 1 1 1 0 1 1\n"),
            Some(4242)
        );
        assert_eq!(parse_pid("GRIM-PID -1\n"), None);
        assert_eq!(run_status(Some(0), None, ""), Ok(()));
        assert_eq!(
            run_status(Some(139), None, "Segmentation fault\n"),
            Err("exit status Some(139); stderr: Segmentation fault".into())
        );
        assert_eq!(
            run_status(None, Some(9), ""),
            Err("adb killed by signal 9".into())
        );
    }
}
