//! [`AdbRunner`]: measuring candidates on an adb device.

use super::device::{adb_command, probe_identity, require_device, AdbError};
use super::opencl::{self, HarnessBuild};
use super::parse::{max_temperature_c, parse_pid, run_status, state_text, Probe};
use super::quote::{shell_quote, shell_words};
use crate::measure::{check, truncate, ErrorKind, Failure, Job, Limits, Measurement, Runner};
use codegen::opencl_harness::{HarnessError, OpenClInfo};
use codegen::run::{parse_timing, read_outputs, write_inputs};
use codegen::toolchain::{read_capped, run_with_timeout, Finished, MAX_CAPTURE};
use codegen::Target;
use std::collections::{BTreeMap, HashMap, HashSet};
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
    /// OpenCL targets: the OpenCL library on the device (default: the harness searches
    /// [`codegen::opencl_harness::LIBRARY_PATHS`]).
    pub opencl_library: Option<String>,
    /// OpenCL targets: the C compiler that builds the device-side harness (default: by
    /// the device's ABI, see [`codegen::opencl_harness::compiler_for_abi`]; an Android
    /// phone needs the NDK's `aarch64-linux-android<API>-clang`).
    pub opencl_cc: Option<String>,
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
            opencl_library: None,
            opencl_cc: None,
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
    /// OpenCL batches (directories of program files) seen so far.
    batches: HashSet<PathBuf>,
    dir_ready: bool,
    lost: bool,
}

/// What runs on the device.
enum Mode {
    /// Static aarch64 measurement binaries, one per batch.
    Cpu,
    /// The OpenCL harness, pushed once, and one program file per candidate.
    OpenCl(HarnessBuild),
}

/// Measures aarch64 candidates, or OpenCL candidates through the device's OpenCL
/// library, on an adb device (see the module docs).
pub struct AdbRunner {
    opts: AdbOptions,
    target: Target,
    limits: Limits,
    probe: Probe,
    session: String,
    mode: Mode,
    opencl: Option<OpenClInfo>,
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
        let (probe, session) = Self::connect(&opts)?;
        Ok(AdbRunner {
            opts,
            target: Target::Aarch64Neon { mcpu: mcpu.into() },
            limits,
            probe,
            session,
            mode: Mode::Cpu,
            opencl: None,
            state: Mutex::new(State::default()),
        })
    }

    /// Like [`AdbRunner::new`], for OpenCL candidates (`opencl`, or `opencl:fp16` with
    /// `fp16`): builds the device-side harness of [`codegen::opencl_harness`] for the
    /// device's ABI (or with `opts.opencl_cc`), pushes it, and runs its `probe`, which
    /// loads the device's OpenCL library (`opts.opencl_library`, else the usual vendor
    /// paths). The OpenCL device's name becomes part of the device identity.
    ///
    /// A device without an OpenCL library is [`AdbError::NoOpenCl`] naming every path
    /// searched; one whose library offers no device, or whose ABI has no known
    /// compiler, is [`AdbError::OpenCl`].
    pub fn new_opencl(opts: AdbOptions, fp16: bool, limits: Limits) -> Result<AdbRunner, AdbError> {
        let (probe, session) = Self::connect(&opts)?;
        let harness = opencl::build_for(
            &opts.serial,
            &probe.identity.abi,
            opts.opencl_cc.as_deref(),
            limits.build_timeout,
        )?;
        let mut runner = AdbRunner {
            opts,
            target: Target::OpenCl { fp16 },
            limits,
            probe,
            session,
            mode: Mode::OpenCl(harness),
            opencl: None,
            state: Mutex::new(State::default()),
        };
        let info = runner.probe_opencl()?;
        runner.probe.identity.opencl_device = Some(info.device.clone());
        runner.opencl = Some(info);
        Ok(runner)
    }

    /// The OpenCL device the harness found (OpenCL runners only).
    pub fn opencl(&self) -> Option<&OpenClInfo> {
        self.opencl.as_ref()
    }

    /// The library argument of the harness: the configured path, or `-` to search.
    fn library_arg(&self) -> String {
        self.opts
            .opencl_library
            .clone()
            .unwrap_or_else(|| "-".into())
    }

    /// Pushes the harness and runs its `probe` in the session directory.
    fn probe_opencl(&self) -> Result<OpenClInfo, AdbError> {
        let Mode::OpenCl(harness) = &self.mode else {
            return Err(AdbError::OpenCl {
                serial: self.opts.serial.clone(),
                message: "not an OpenCL runner".into(),
            });
        };
        let mut st = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let command_error = |f: Failure| AdbError::Command {
            serial: self.opts.serial.clone(),
            what: "OpenCL probe".into(),
            message: f.message,
        };
        self.ensure_dir(&mut st).map_err(command_error)?;
        let remote = self
            .ensure_pushed(&mut st, &harness.bin, false)
            .map_err(command_error)?;
        let command = format!(
            "cd {} && exec {}",
            shell_quote(&self.session),
            shell_words(&[remote.as_str(), "probe", &self.library_arg()])
        );
        let f = match self.call(&["shell".into(), command.into()], self.opts.command_timeout) {
            Ok(f) => f,
            Err(e) => {
                return Err(command_error(self.failed(
                    &mut st,
                    "OpenCL probe",
                    e,
                    ErrorKind::RunError,
                )))
            }
        };
        if let Some(e) = HarnessError::from_run(f.code, &f.stderr) {
            return Err(opencl::probe_error(&self.opts.serial, e));
        }
        OpenClInfo::parse(&f.stdout).ok_or_else(|| AdbError::OpenCl {
            serial: self.opts.serial.clone(),
            message: format!(
                "the harness's probe printed no device: {}",
                truncate(f.stdout.trim())
            ),
        })
    }

    /// Checks the device, reads its identity, and names the session directory.
    fn connect(opts: &AdbOptions) -> Result<(Probe, String), AdbError> {
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
        Ok((probe, session))
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

    /// Creates the session directory once (again after a reconnection).
    fn ensure_dir(&self, st: &mut State) -> Result<(), Failure> {
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
        Ok(())
    }

    /// Pause and thermal check before a new batch.
    fn before_batch(&self, st: &mut State) {
        if let Some(c) = self.opts.cooldown {
            std::thread::sleep(c);
        }
        self.check_thermal(st);
    }

    /// Pushes the executable `bin` unless this session already has it; returns its path
    /// on the device. With `batch`, a new push starts a batch (cooldown, thermal check).
    fn ensure_pushed(&self, st: &mut State, bin: &Path, batch: bool) -> Result<String, Failure> {
        let md = std::fs::metadata(bin).map_err(|e| Failure {
            kind: ErrorKind::RunError,
            message: format!("{}: {e}", bin.display()),
        })?;
        let key = (bin.to_path_buf(), md.len(), md.modified().ok());
        if let Some(p) = st.pushed.get(&key) {
            return Ok(p.clone());
        }
        if batch {
            self.before_batch(st);
        }
        let p = format!("{}/b{}/kernels", self.session, st.next_bin);
        st.next_bin += 1;
        self.step(
            st,
            "push binary",
            &["push".into(), bin.into(), p.clone().into()],
        )?;
        st.pushed.insert(key, p.clone());
        Ok(p)
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
        self.ensure_dir(st)?;
        let remote_in = format!("{}/in.bin", self.session);
        let remote_out = format!("{}/out.bin", self.session);
        let p = &self.limits.protocol;
        // The command line of the measurement, and what is pushed for it first.
        let run: Vec<String> = match &self.mode {
            Mode::Cpu => {
                let remote_bin = self.ensure_pushed(st, bin, true)?;
                vec![
                    remote_bin,
                    index.to_string(),
                    remote_in.clone(),
                    remote_out.clone(),
                    p.number.to_string(),
                    p.repeat.to_string(),
                    p.min_repeat_ms.to_string(),
                ]
            }
            Mode::OpenCl(harness) => {
                // `bin` is the batch's directory of program files.
                if st.batches.insert(bin.to_path_buf()) {
                    self.before_batch(st);
                }
                let remote_harness = self.ensure_pushed(st, &harness.bin, false)?;
                let remote_prog = format!("{}/program.grimcl", self.session);
                self.step(
                    st,
                    "push program",
                    &[
                        "push".into(),
                        opencl::program_path(bin, index).into(),
                        remote_prog.clone().into(),
                    ],
                )?;
                vec![
                    remote_harness,
                    "run".into(),
                    self.library_arg(),
                    remote_prog,
                    remote_in.clone(),
                    remote_out.clone(),
                    "1".into(),
                    p.repeat.clamp(1, 1000).to_string(),
                ]
            }
        };
        std::fs::create_dir_all(dir).map_err(|e| io_fail(&dir.display().to_string(), &e))?;
        let input = dir.join(format!("in{index}.bin"));
        write_inputs(job.func, job.args, &input).map_err(|e| io_fail("inputs", &e))?;
        self.step(
            st,
            "push inputs",
            &[
                "push".into(),
                input.clone().into(),
                remote_in.clone().into(),
            ],
        )?;
        let mut words: Vec<String> = Vec::new();
        if let (Mode::Cpu, Some(n)) = (&self.mode, self.limits.threads) {
            words.extend(["env".to_string(), format!("OMP_NUM_THREADS={n}")]);
        }
        if let Some(mask) = &self.opts.cpu_mask {
            words.extend(["taskset".to_string(), mask.clone()]);
        }
        words.extend(run);
        let command = format!(
            "cd {} && rm -f {} && echo GRIM-PID $$ && exec {}",
            shell_quote(&self.session),
            shell_quote(&remote_out),
            shell_words(&words)
        );
        let fin = self.run_watched(st, &command, self.limits.run_timeout)?;
        if let Err(detail) = run_status(fin.code, fin.signal, &fin.stderr) {
            if let (Mode::OpenCl(_), None) = (&self.mode, fin.signal) {
                if let Some(e) = HarnessError::from_run(fin.code, &fin.stderr) {
                    let kind = opencl::run_kind(&e);
                    return Err(self.classify(st, "run", &e.to_string(), kind));
                }
            }
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
        codegen::run::check_threads(&timing, self.threads()).map_err(|e| Failure {
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

    /// CPU: one static aarch64 binary per batch. OpenCL: one program file per
    /// candidate (OpenCL C plus its launches) in `dir`, built by the device's driver
    /// when it runs; the batch's "binary" is `dir`.
    fn build(&self, jobs: &[Job<'_>], dir: &Path) -> Result<PathBuf, Failure> {
        match self.mode {
            Mode::Cpu => {
                crate::measure::build_jobs(&self.target, jobs, dir, self.limits.build_timeout)
            }
            Mode::OpenCl(_) => opencl::write_programs(&self.target, jobs, dir),
        }
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

    fn threads(&self) -> Option<u32> {
        match self.mode {
            Mode::Cpu => self.limits.threads,
            Mode::OpenCl(_) => None,
        }
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
