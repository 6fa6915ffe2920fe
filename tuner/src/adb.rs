//! Measuring on a phone over adb: [`AdbRunner`] drives the real `adb` program, always
//! with `-s SERIAL`. Per session it creates a directory on the device (default
//! `/data/local/tmp/grim/<session>`), pushes each batch binary once and each
//! candidate's inputs, runs the candidate with `adb shell` (every argument quoted with
//! [`shell_quote`]), pulls the outputs back and checks them against the reference
//! before its time counts. The directory is removed by [`AdbRunner::finish`] or on drop.
//!
//! Faults: a missing, offline or unauthorized device is an [`AdbError`] that says what
//! to do; a candidate that runs past the run timeout is killed on the device by its
//! pid and recorded as [`ErrorKind::RunTimeout`]; when the device disappears the
//! candidate is recorded as [`ErrorKind::DeviceLost`] and the next measurement first
//! reconnects (`adb connect` for `host:port` serials) with exponential backoff, a
//! bounded number of times, re-creating the directory and pushing again.
//!
//! [`devices`] lists the connected devices with their identity ([`probe_identity`]:
//! `getprop`, `/proc/cpuinfo` CPU parts mapped to core names, core frequencies).

use crate::measure::{check, truncate, ErrorKind, Failure, Job, Limits, Measurement, Runner};
use codegen::run::{parse_timing, read_outputs, write_inputs};
use codegen::toolchain::{run_with_timeout, Finished};
use codegen::Target;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tir::Tensor;
use tuning_logs::DeviceIdentity;

/// Quotes `s` as one word for the device's shell (`sh`/`mksh`): words made only of
/// `[A-Za-z0-9_./=:,+@%-]` stay as they are, anything else is single-quoted with
/// embedded single quotes written as `'\''`. Nothing inside is expanded.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./=:,+@%-".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Joins words into a command line for the device's shell, each quoted.
pub fn shell_words<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

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

fn adb_command(adb: &Path) -> Command {
    let mut c = Command::new(adb);
    c.stdin(Stdio::null());
    c
}

fn missing(adb: &Path, e: std::io::Error) -> AdbError {
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

/// `grim-tune devices`: one block per connected device with its identity.
pub fn devices(adb: &Path) -> Result<String, AdbError> {
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

/// How to reach the device and how patient to be with it.
#[derive(Debug, Clone)]
pub struct AdbOptions {
    /// The `adb` program.
    pub adb: PathBuf,
    /// The device's serial (`adb -s`).
    pub serial: String,
    /// Parent of the session directories on the device.
    pub device_dir: String,
    /// Reconnection attempts after the device is lost, per measurement.
    pub reconnect_tries: u32,
    /// First backoff between reconnection attempts (doubled each time, at most 8x).
    pub backoff: Duration,
    /// Run candidates under `taskset MASK` (hex CPU mask, e.g. `f0` for big cores).
    pub cpu_mask: Option<String>,
    /// Limit of each adb step other than the run itself (push, pull, mkdir, kill).
    pub command_timeout: Duration,
    /// Pause before each new batch binary (lets a phone cool down between batches).
    pub cooldown: Option<Duration>,
    /// Warn when a thermal zone of the device reports more than this, in degrees
    /// Celsius (read from `/sys/class/thermal/thermal_zone*/temp` before each batch).
    pub thermal_warn_c: f64,
}

impl AdbOptions {
    /// Defaults for `serial`: `adb` from PATH, `/data/local/tmp/grim`, 4 reconnection
    /// tries from 0.5 s.
    pub fn new(serial: &str) -> AdbOptions {
        AdbOptions {
            adb: PathBuf::from("adb"),
            serial: serial.into(),
            device_dir: "/data/local/tmp/grim".into(),
            reconnect_tries: 4,
            backoff: Duration::from_millis(500),
            cpu_mask: None,
            command_timeout: Duration::from_secs(60),
            cooldown: None,
            thermal_warn_c: 75.0,
        }
    }
}

#[derive(Default)]
struct State {
    /// Thermal warnings so far.
    warnings: Vec<String>,
    /// Batch binaries on the device, by (host path, size, mtime).
    pushed: HashMap<(PathBuf, u64, Option<SystemTime>), String>,
    next_bin: usize,
    dir_ready: bool,
    lost: bool,
}

/// Measures aarch64 candidates on an adb device (see the module docs).
pub struct AdbRunner {
    opts: AdbOptions,
    target: Target,
    limits: Limits,
    probe: Probe,
    session: String,
    state: Mutex<State>,
}

/// How an adb call went wrong.
enum CallError {
    Spawn(std::io::Error),
    Timeout,
}

impl AdbRunner {
    /// Connects to `opts.serial` (it must be listed as `device`), reads its identity,
    /// and prepares a session directory name. `mcpu` is the `-mcpu` of the code.
    pub fn new(opts: AdbOptions, mcpu: &str, limits: Limits) -> Result<AdbRunner, AdbError> {
        require_device(&opts.adb, &opts.serial)?;
        // A device that just connected may refuse its first command: retry briefly.
        let mut attempt = 0;
        let probe = loop {
            match probe_identity(&opts.adb, &opts.serial) {
                Ok(p) => break p,
                Err(AdbError::Command { .. }) if attempt < 3 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(300 * attempt));
                }
                Err(e) => return Err(e),
            }
        };
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let session = format!(
            "{}/{}-{stamp}",
            opts.device_dir.trim_end_matches('/'),
            std::process::id()
        );
        Ok(AdbRunner {
            opts,
            target: Target::Aarch64Neon { mcpu: mcpu.into() },
            limits,
            probe,
            session,
            state: Mutex::new(State::default()),
        })
    }

    /// The session directory on the device.
    pub fn session_dir(&self) -> &str {
        &self.session
    }

    /// What the probe found (cores, frequencies).
    pub fn probe(&self) -> &Probe {
        &self.probe
    }

    /// Removes the session directory from the device (also done on drop; skipped while
    /// the device is lost).
    pub fn finish(&self) {
        let mut st = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if st.dir_ready && !st.lost {
            let _ = self.call(
                &[
                    "shell".into(),
                    shell_words(&["rm", "-rf", &self.session]).into(),
                ],
                self.opts.command_timeout.min(Duration::from_secs(20)),
            );
            st.dir_ready = false;
            st.pushed.clear();
        }
    }

    fn call(&self, args: &[OsString], limit: Duration) -> Result<Finished, CallError> {
        let mut c = adb_command(&self.opts.adb);
        c.arg("-s").arg(&self.opts.serial).args(args);
        match run_with_timeout(&mut c, limit) {
            Ok(Some(f)) => Ok(f),
            Ok(None) => Err(CallError::Timeout),
            Err(e) => Err(CallError::Spawn(e)),
        }
    }

    /// The device's state as `adb get-state` says (`device` when usable), and for a
    /// device the server still lists, whether it answers a trivial command.
    fn state_now(&self) -> String {
        let limit = self.opts.command_timeout.min(Duration::from_secs(10));
        match self.call(&["get-state".into()], limit) {
            Ok(f) if f.code == Some(0) && f.stdout.trim() == "device" => {
                match self.call(&["shell".into(), "echo grim-ping".into()], limit) {
                    Ok(p) if p.stdout.contains("grim-ping") => "device".into(),
                    _ => format!("listed, but not answering within {limit:?}"),
                }
            }
            Ok(f) if f.code == Some(0) => f.stdout.trim().to_string(),
            Ok(f) => f.stderr.trim().to_string(),
            Err(_) => "adb server not answering".into(),
        }
    }

    /// A failed adb step: `DeviceLost` when the device is gone (and the runner will
    /// reconnect first next time), else `kind`.
    fn failed(&self, st: &mut State, what: &str, err: CallError, kind: ErrorKind) -> Failure {
        let detail = match err {
            CallError::Spawn(e) => {
                return Failure {
                    kind: ErrorKind::DeviceLost,
                    message: format!("cannot run {}: {e}", self.opts.adb.display()),
                }
            }
            CallError::Timeout => "timed out".to_string(),
        };
        self.classify(st, what, &detail, kind)
    }

    fn classify(&self, st: &mut State, what: &str, detail: &str, kind: ErrorKind) -> Failure {
        let state = self.state_now();
        if state != "device" {
            st.lost = true;
            return Failure {
                kind: ErrorKind::DeviceLost,
                message: truncate(&format!(
                    "device {} lost during {what} ({}): {detail}",
                    self.opts.serial, state
                )),
            };
        }
        Failure {
            kind,
            message: truncate(&format!("{what}: {detail}")),
        }
    }

    /// Runs an adb step that must succeed.
    fn step(&self, st: &mut State, what: &str, args: &[OsString]) -> Result<Finished, Failure> {
        match self.call(args, self.opts.command_timeout) {
            Ok(f) if f.code == Some(0) => Ok(f),
            Ok(f) => Err(self.classify(st, what, f.stderr.trim(), ErrorKind::RunError)),
            Err(e) => Err(self.failed(st, what, e, ErrorKind::RunError)),
        }
    }

    /// Reads the hottest thermal zone; past `thermal_warn_c`, prints a warning (once
    /// per batch) and keeps it for [`AdbRunner::warnings`]. Unreadable zones are
    /// skipped silently (many phones restrict them).
    fn check_thermal(&self, st: &mut State) {
        let limit = self.opts.command_timeout.min(Duration::from_secs(10));
        let Ok(f) = self.call(
            &[
                "shell".into(),
                "cat /sys/class/thermal/thermal_zone*/temp 2>/dev/null".into(),
            ],
            limit,
        ) else {
            return;
        };
        if let Some(c) = max_temperature_c(&f.stdout) {
            if c > self.opts.thermal_warn_c {
                let w = format!(
                    "device {} reports {c:.0} °C (thermal zone): it may be throttling, timings may be slow; consider a cooldown",
                    self.opts.serial
                );
                eprintln!("grim-tune: warning: {w}");
                st.warnings.push(w);
            }
        }
    }

    /// The thermal warnings issued so far.
    pub fn warnings(&self) -> Vec<String> {
        match self.state.lock() {
            Ok(s) => s.warnings.clone(),
            Err(p) => p.into_inner().warnings.clone(),
        }
    }

    /// After a loss: reconnects with exponential backoff, a bounded number of times.
    fn reconnect(&self, st: &mut State) -> Result<(), Failure> {
        let mut wait = self.opts.backoff;
        let is_tcp = self.opts.serial.contains(':');
        for attempt in 1..=self.opts.reconnect_tries.max(1) {
            if is_tcp {
                let limit = self.opts.command_timeout.min(Duration::from_secs(10));
                let mut c = adb_command(&self.opts.adb);
                c.arg("disconnect").arg(&self.opts.serial);
                let _ = run_with_timeout(&mut c, limit);
                let mut c = adb_command(&self.opts.adb);
                c.arg("connect").arg(&self.opts.serial);
                let _ = run_with_timeout(&mut c, limit);
            }
            if self.state_now() == "device" {
                st.lost = false;
                st.dir_ready = false;
                st.pushed.clear();
                return Ok(());
            }
            if attempt < self.opts.reconnect_tries {
                std::thread::sleep(wait);
                wait = (wait * 2).min(self.opts.backoff * 8);
            }
        }
        Err(Failure {
            kind: ErrorKind::DeviceLost,
            message: format!(
                "device {} lost; not back after {} reconnection attempts",
                self.opts.serial, self.opts.reconnect_tries
            ),
        })
    }

    /// Runs `command` with `adb shell`, killing it on the device by pid (printed first
    /// as `GRIM-PID N`) when it runs past `limit`.
    fn run_watched(
        &self,
        st: &mut State,
        command: &str,
        limit: Duration,
    ) -> Result<Finished, Failure> {
        let mut c = adb_command(&self.opts.adb);
        c.arg("-s")
            .arg(&self.opts.serial)
            .arg("shell")
            .arg(command)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().map_err(|e| Failure {
            kind: ErrorKind::DeviceLost,
            message: format!("cannot run {}: {e}", self.opts.adb.display()),
        })?;
        let out = Arc::new(Mutex::new(Vec::new()));
        let o2 = out.clone();
        let mut so = child.stdout.take();
        let t_out = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Some(Ok(n)) = so.as_mut().map(|s| s.read(&mut buf)) {
                if n == 0 {
                    break;
                }
                if let Ok(mut v) = o2.lock() {
                    v.extend_from_slice(&buf[..n]);
                }
            }
        });
        let mut se = child.stderr.take();
        let t_err = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(e) = se.as_mut() {
                let _ = e.read_to_string(&mut s);
            }
            s
        });
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) => {}
                Err(_) => break None,
            }
            if start.elapsed() > limit {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout_now = || {
            out.lock()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_default()
        };
        let Some(status) = status else {
            let pid = stdout_now().lines().find_map(|l| {
                l.strip_prefix("GRIM-PID ")
                    .and_then(|p| p.trim().parse::<u32>().ok())
            });
            let killed = match pid {
                Some(pid) => self.call(
                    &["shell".into(), format!("kill -9 {pid}").into()],
                    self.opts.command_timeout.min(Duration::from_secs(10)),
                ),
                None => Err(CallError::Timeout),
            };
            let _ = child.kill();
            let _ = child.wait();
            let _ = t_out.join();
            let _ = t_err.join();
            return match (pid, killed) {
                (Some(pid), Ok(_)) => Err(Failure {
                    kind: ErrorKind::RunTimeout,
                    message: format!("killed on the device (pid {pid}) after {limit:?}"),
                }),
                (_, Err(e)) => Err(self.failed(st, "run", e, ErrorKind::RunTimeout)),
                (None, Ok(_)) => Err(self.classify(
                    st,
                    "run",
                    &format!("no answer after {limit:?}"),
                    ErrorKind::RunTimeout,
                )),
            };
        };
        let _ = t_out.join();
        let stderr = t_err.join().unwrap_or_default();
        #[cfg(unix)]
        let signal = std::os::unix::process::ExitStatusExt::signal(&status);
        #[cfg(not(unix))]
        let signal = None;
        Ok(Finished {
            code: status.code(),
            signal,
            stdout: stdout_now(),
            stderr,
        })
    }

    fn measure_locked(
        &self,
        st: &mut State,
        bin: &Path,
        index: usize,
        job: &Job<'_>,
        reference: &BTreeMap<String, Tensor>,
        dir: &Path,
    ) -> Result<Measurement, Failure> {
        if st.lost {
            self.reconnect(st)?;
        }
        let io_fail = |what: &str, e: &dyn std::fmt::Display| Failure {
            kind: ErrorKind::RunError,
            message: format!("{what}: {e}"),
        };
        if !st.dir_ready {
            self.step(
                st,
                "mkdir",
                &[
                    "shell".into(),
                    shell_words(&["mkdir", "-p", &self.session]).into(),
                ],
            )?;
            st.dir_ready = true;
        }
        let md = std::fs::metadata(bin).map_err(|e| io_fail(&bin.display().to_string(), &e))?;
        let key = (bin.to_path_buf(), md.len(), md.modified().ok());
        let remote_bin = match st.pushed.get(&key) {
            Some(p) => p.clone(),
            None => {
                if let Some(c) = self.opts.cooldown {
                    std::thread::sleep(c);
                }
                self.check_thermal(st);
                let p = format!("{}/b{}/kernels", self.session, st.next_bin);
                st.next_bin += 1;
                self.step(
                    st,
                    "push binary",
                    &["push".into(), bin.into(), p.clone().into()],
                )?;
                st.pushed.insert(key, p.clone());
                p
            }
        };
        std::fs::create_dir_all(dir).map_err(|e| io_fail(&dir.display().to_string(), &e))?;
        let input = dir.join(format!("in{index}.bin"));
        write_inputs(job.func, job.args, &input).map_err(|e| io_fail("inputs", &e))?;
        let remote_in = format!("{}/in.bin", self.session);
        let remote_out = format!("{}/out.bin", self.session);
        self.step(
            st,
            "push inputs",
            &[
                "push".into(),
                input.clone().into(),
                remote_in.clone().into(),
            ],
        )?;
        let p = &self.limits.protocol;
        let mut run: Vec<String> = Vec::new();
        if let Some(mask) = &self.opts.cpu_mask {
            run.extend(["taskset".to_string(), mask.clone()]);
        }
        run.extend([
            remote_bin,
            index.to_string(),
            remote_in,
            remote_out.clone(),
            p.number.to_string(),
            p.repeat.to_string(),
            p.min_repeat_ms.to_string(),
        ]);
        let command = format!(
            "cd {} && rm -f {} && echo GRIM-PID $$ && exec {}",
            shell_quote(&self.session),
            shell_quote(&remote_out),
            shell_words(&run)
        );
        let fin = self.run_watched(st, &command, self.limits.run_timeout)?;
        if fin.code != Some(0) {
            let detail = match fin.signal {
                Some(s) => format!("adb killed by signal {s}"),
                None => format!("exit status {:?}; stderr: {}", fin.code, fin.stderr.trim()),
            };
            return Err(self.classify(st, "run", &detail, ErrorKind::RunError));
        }
        let output = dir.join(format!("out{index}.bin"));
        let _ = std::fs::remove_file(&output);
        self.step(
            st,
            "pull outputs",
            &["pull".into(), remote_out.into(), output.clone().into()],
        )?;
        let outputs = read_outputs(job.func, &output).map_err(|e| Failure {
            kind: ErrorKind::RunError,
            message: truncate(&e.to_string()),
        })?;
        let timing = parse_timing(&fin.stdout).map_err(|e| Failure {
            kind: ErrorKind::RunError,
            message: truncate(&e.to_string()),
        })?;
        let rel = check(&outputs, reference, self.limits.tolerance)?;
        Ok(Measurement {
            median: timing.median,
            min: timing.min,
            mean: timing.mean,
            stddev: timing.stddev,
            number: timing.number,
            repeat: timing.repeat,
            instructions: None,
            max_rel_error: rel,
        })
    }
}

impl Runner for AdbRunner {
    fn describe(&self) -> String {
        format!("adb:{}", self.opts.serial)
    }

    fn target(&self) -> &Target {
        &self.target
    }

    fn build(&self, jobs: &[Job<'_>], dir: &Path) -> Result<PathBuf, Failure> {
        crate::measure::build_jobs(&self.target, jobs, dir, self.limits.build_timeout)
    }

    fn measure(
        &self,
        bin: &Path,
        index: usize,
        job: &Job<'_>,
        reference: &BTreeMap<String, Tensor>,
        dir: &Path,
    ) -> Result<Measurement, Failure> {
        let mut st = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        self.measure_locked(&mut st, bin, index, job, reference, dir)
    }

    fn identity(&self) -> Option<DeviceIdentity> {
        Some(self.probe.identity.clone())
    }
}

impl Drop for AdbRunner {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_words_literal() {
        assert_eq!(shell_quote("abc/d-1.bin"), "abc/d-1.bin");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
        // Round trip through a real sh: every word arrives as one argument, unchanged.
        let words = [
            "a b",
            "it's",
            "x;echo PWNED",
            "&& true",
            "$(echo PWNED)",
            "`id`",
            "\"q\"",
            "back\\slash",
            "*",
            "~",
            "\n",
        ];
        let script = format!(
            "for a in {}; do printf '[%s]' \"$a\"; done",
            shell_words(&words)
        );
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        let want: String = words.iter().map(|w| format!("[{w}]")).collect();
        assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    }

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
