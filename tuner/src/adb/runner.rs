//! [`AdbRunner`]: measuring candidates on an adb device.

use super::device::{adb_command, probe_identity, require_device, AdbError};
use super::parse::{max_temperature_c, parse_pid, run_status, state_text, Probe};
use super::quote::{shell_quote, shell_words};
use crate::measure::{check, truncate, ErrorKind, Failure, Job, Limits, Measurement, Runner};
use codegen::run::{parse_timing, read_outputs, write_inputs};
use codegen::toolchain::{read_capped, run_with_timeout, Finished, MAX_CAPTURE};
use codegen::Target;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tir::Tensor;
use tuning_logs::DeviceIdentity;

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
        let state = match self.call(&["get-state".into()], limit) {
            Ok(f) => state_text(f.code, &f.stdout, &f.stderr),
            Err(_) => return "adb server not answering".into(),
        };
        if state != "device" {
            return state;
        }
        match self.call(&["shell".into(), "echo grim-ping".into()], limit) {
            Ok(p) if p.stdout.contains("grim-ping") => state,
            _ => format!("listed, but not answering within {limit:?}"),
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
                // Keep at most MAX_CAPTURE bytes; read (and drop) the rest.
                if let Ok(mut v) = o2.lock() {
                    let room = MAX_CAPTURE.saturating_sub(v.len());
                    v.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        });
        let mut se = child.stderr.take();
        let t_err = std::thread::spawn(move || se.as_mut().map(read_capped).unwrap_or_default());
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
            let pid = parse_pid(&stdout_now());
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
        if let Err(detail) = run_status(fin.code, fin.signal, &fin.stderr) {
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
