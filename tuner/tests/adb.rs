//! Tuning over adb with Debian's real `adb` client and server, against the loopback
//! device of `adb-loopback` (aarch64 binaries run there under qemu): identity, quoting,
//! end-to-end tuning into the database, timeouts killed on the device, and the device
//! disappearing mid-run.

mod common;

use adb_loopback::server::AdbServer;
use adb_loopback::{spawn, Config, Handle};
use common::{rig_with, Rig};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tir::workload::Workload;
use tuner::adb::{shell_words, AdbError, AdbOptions, AdbRunner};
use tuner::measure::{ErrorKind, Limits};
use tuner::tune::{
    tune, Fault, FaultInjection, MemoryStore, NoProgress, Progress, Store, Strategy, Trial,
    TuneError, TuneOptions,
};

const SPEC: &str = "bcr-fc:M=32,K=32,N=2,block=8x8,sparsity=0.75,seed=4";

fn rig() -> Rig {
    rig_with(Config::default())
}

fn limits(run_timeout: u64) -> Limits {
    let mut l = Limits {
        run_timeout: Duration::from_secs(run_timeout),
        ..Limits::default()
    };
    l.protocol.repeat = 2;
    l.protocol.min_repeat_ms = 0.2;
    l
}

fn options(r: &Rig) -> AdbOptions {
    let mut o = AdbOptions::new(&r.serial);
    o.adb = r.wrapper.clone();
    o.backoff = Duration::from_millis(250);
    o.reconnect_tries = 4;
    o
}

fn tune_opts(trials: usize, work: &tempfile::TempDir) -> TuneOptions {
    TuneOptions {
        trials,
        batch: 4,
        strategy: Strategy::Random,
        seed: 7,
        work_dir: work.path().to_path_buf(),
        // These tests count the search's candidates and device calls; the
        // confirmation round over adb is checked through `grim-tune tune` below.
        confirm: 0,
        ..TuneOptions::default()
    }
}

fn shell(r: &Rig, cmd: &str) -> (Option<i32>, String, String) {
    let o = r.adb.run(&["-s", &r.serial, "shell", cmd]).unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn shell_exit_codes_and_quoted_words_arrive_literally() {
    let r = rig();
    assert_eq!(
        shell(&r, "echo hi; exit 7"),
        (Some(7), "hi\n".into(), String::new())
    );
    let root = r.root();
    // The shell starts in the device's `/`: a relative `PWNED` would land in the root.
    let canary = root.join("PWNED");
    let words = [
        "a b",
        "it's",
        "x; touch PWNED",
        "&& touch PWNED",
        "$(touch PWNED)",
        "`touch PWNED`",
        "\"dq\" | >",
        "*",
    ];
    let cmd = format!("printf '[%s]' {}", shell_words(&words));
    let (code, out, err) = shell(&r, &cmd);
    assert_eq!(code, Some(0), "{err}");
    let want: String = words.iter().map(|w| format!("[{w}]")).collect();
    assert_eq!(out, want);
    // A directory and file name with every special character: created, listed, read.
    let dir = "/data/local/tmp/grim test/it's; $(x) && y";
    let (code, _, err) = shell(
        &r,
        &format!(
            "mkdir -p {d} && echo ok > {d}/f && cat {d}/f",
            d = tuner::adb::shell_quote(dir)
        ),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(root
        .join("data/local/tmp/grim test/it's; $(x) && y/f")
        .exists());
    assert!(!canary.exists(), "an argument was executed");
    // Control: the same text unquoted does run on the device.
    let (code, _, _) = shell(&r, "echo $(touch CONTROL)");
    assert_eq!(code, Some(0));
    assert!(root.join("CONTROL").exists());
}

#[test]
fn devices_lists_identity_and_unknown_serial_is_clear() {
    let r = rig();
    let out = Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args(["devices", "--adb"])
        .arg(&r.wrapper)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("{}  device", r.serial)), "{text}");
    assert!(text.contains("model   grim loopback"), "{text}");
    assert!(
        text.contains("soc     loopback-soc: 4x cortex-a55@1.8GHz + 4x cortex-a76@2.4GHz"),
        "{text}"
    );
    assert!(text.contains("cores   8"), "{text}");

    let mut o = options(&r);
    o.serial = "127.0.0.1:1".into();
    match AdbRunner::new(o, "cortex-a76", limits(10)) {
        Err(e @ AdbError::NotFound { .. }) => {
            let m = e.to_string();
            assert!(m.contains("`127.0.0.1:1` not found"), "{m}");
            assert!(m.contains(&r.serial), "lists what is connected: {m}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("an unknown serial was accepted"),
    }
    // The same through the CLI: non-zero exit, the message names the serial.
    let nodb = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args([
            "tune",
            "--workload",
            SPEC,
            "--target",
            "aarch64-neon:cortex-a76",
            "--device",
            "adb:NOPE123",
            "--trials",
            "2",
            "--db",
        ])
        .arg(nodb.path().join("db"))
        .arg("--adb")
        .arg(&r.wrapper)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("adb device `NOPE123` not found"), "{err}");
}

#[test]
fn grim_tune_over_adb_records_the_device_identity_thread_count_and_the_best_replays() {
    let r = rig();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args([
            "tune",
            "--workload",
            SPEC,
            "--target",
            "aarch64-neon:cortex-a76",
            "--device",
            &format!("adb:{}", r.serial),
            "--trials",
            "4",
            "--strategy",
            "random",
            "--no-dense",
            "--json",
            "--cpu-mask",
            "1",
            "--threads",
            "3",
            "--db",
        ])
        .arg(&db)
        .arg("--adb")
        .arg(&r.wrapper)
        .output()
        .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v[0];
    assert_eq!(s["device"], format!("adb:{}", r.serial));
    assert_eq!(s["trials"], 4);
    assert_eq!(s["errors"], 0, "{s}");
    assert_eq!(s["unit"], "seconds");
    eprintln!("4 candidates over adb in {secs:.1} s");
    // The session directory is gone from the device.
    let grim = r.root().join("data/local/tmp/grim");
    let left: Vec<_> = std::fs::read_dir(&grim)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left on the device: {left:?}");

    // Records carry the device identity (serial kept out of the key); the best replays.
    let database = tuning_logs::Database::open(&db).unwrap();
    let w = Workload::from_spec_str(SPEC).unwrap();
    let device = tuning_logs::DeviceIdentity {
        model: "grim loopback".into(),
        soc: "loopback-soc: 4x cortex-a55@1.8GHz + 4x cortex-a76@2.4GHz".into(),
        abi: "arm64-v8a".into(),
        cores: 8,
        opencl_device: None,
        serial: None,
    };
    // Run with `env OMP_NUM_THREADS=3` on the device (the binaries report the count
    // they had, and a different one is an error above: 3 is not this machine's
    // default) and stored under it.
    let target = tuning_logs::Target::Aarch64Neon {
        mcpu: "cortex-a76".into(),
        threads: Some(3),
    };
    let key = w.key();
    let q = tuning_logs::Query {
        workload: &key,
        target: &target,
        device: &device,
    };
    let recs = database.records_of(&q).unwrap();
    // The 4 candidates, then the confirmation round: the best of them measured again
    // on the device in turn, one confirmed record each.
    let confirmed = recs
        .iter()
        .filter(|s| s.record.confirmation.is_some())
        .count();
    assert_eq!(recs.len() - confirmed, 4);
    assert!(
        confirmed >= 2,
        "a confirmation round over adb: {confirmed} records"
    );
    assert_eq!(s["confirmation"]["rounds"], 5, "{s}");
    assert!(recs
        .iter()
        .all(|s| s.record.device.serial.as_deref() == Some(r.serial.as_str())));
    let best = tuning_logs::apply_best(&database, &w, &target, &device).unwrap();
    assert!(best.function().is_some(), "the best schedule replays");
}

#[test]
fn a_hanging_candidate_is_killed_on_the_device_and_recorded() {
    let work = tempfile::tempdir().unwrap();
    // A hot device: the runner warns before the batch.
    let r = rig_with(Config {
        thermal_millic: vec![40_000, 91_000],
        ..Config::default()
    });
    let runner = AdbRunner::new(options(&r), "cortex-a76", limits(4)).unwrap();
    let w = Workload::from_spec_str(SPEC).unwrap();
    let mut store = MemoryStore::default();
    let mut o = tune_opts(3, &work);
    o.faults = Some(FaultInjection {
        every: 2,
        faults: vec![Fault::Hang],
    });
    let rep = tune(
        &w,
        &runner,
        &mut store,
        &o,
        &NoProgress,
        &AtomicBool::new(false),
    )
    .unwrap();
    let kinds: Vec<Option<ErrorKind>> = rep
        .trials
        .iter()
        .map(|t| t.outcome.as_ref().err().map(|f| f.kind))
        .collect();
    assert_eq!(
        kinds,
        [None, Some(ErrorKind::RunTimeout), None],
        "{:?}",
        rep.trials
    );
    let msg = &rep.trials[1].outcome.as_ref().unwrap_err().message;
    assert!(msg.contains("killed on the device (pid "), "{msg}");
    let warnings = runner.warnings();
    assert!(
        warnings.iter().any(|w| w.contains("reports 91 °C")),
        "{warnings:?}"
    );
    // Nothing of the candidate still runs on the device.
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let root = r.root().display().to_string();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(
        !ps.lines()
            .any(|l| l.contains("qemu-aarch64") && l.contains(&root)),
        "still running: {ps}"
    );
    drop(runner);
}

/// Stops the device after `at` trials; restarts it on the same port after `back`
/// (never, when None).
struct Killer {
    at: usize,
    back: Option<Duration>,
    rig: Arc<Mutex<Option<Handle>>>,
    port: u16,
}

impl Progress for Killer {
    fn trial(&self, _t: &Trial, done: usize, _: usize, _: Option<f64>, _: usize) {
        if done != self.at {
            return;
        }
        if let Some(h) = self.rig.lock().unwrap().take() {
            h.stop();
        }
        if let Some(back) = self.back {
            let slot = self.rig.clone();
            let port = self.port;
            std::thread::spawn(move || {
                std::thread::sleep(back);
                let cfg = Config {
                    port,
                    ..Config::default()
                };
                *slot.lock().unwrap() = Some(spawn(cfg).expect("restart the device"));
            });
        }
    }
}

#[test]
fn device_lost_mid_run_reconnects_and_gives_up_clearly_when_it_stays_away() {
    let work = tempfile::tempdir().unwrap();
    let mut r = rig();
    let port = r.dev.as_ref().unwrap().port();
    let slot = Arc::new(Mutex::new(r.dev.take()));
    let w = Workload::from_spec_str(SPEC).unwrap();

    // 1. The device goes away after 2 candidates and comes back 1 s later: the
    //    candidate in flight is recorded as device_lost, the run reconnects and goes on.
    let runner = AdbRunner::new(options(&r), "cortex-a76", limits(20)).unwrap();
    let mut store = MemoryStore::default();
    let killer = Killer {
        at: 2,
        back: Some(Duration::from_millis(1000)),
        rig: slot.clone(),
        port,
    };
    let rep = tune(
        &w,
        &runner,
        &mut store,
        &tune_opts(6, &work),
        &killer,
        &AtomicBool::new(false),
    )
    .unwrap();
    let lost = rep.errors.get(&ErrorKind::DeviceLost).copied().unwrap_or(0);
    assert!(lost >= 1, "{:?}", rep.errors);
    assert_eq!(rep.trials.len(), 6);
    assert!(rep.trials[..2].iter().all(|t| t.outcome.is_ok()));
    assert!(
        rep.trials.last().unwrap().outcome.is_ok(),
        "measuring resumed: {:?}",
        rep.trials
    );
    assert_eq!(store.trials.len(), 6, "every candidate is recorded");
    drop(runner);

    // 2. It goes away for good: bounded retries, then a clear error; measured results
    //    are kept.
    let runner = AdbRunner::new(options(&r), "cortex-a76", limits(20)).unwrap();
    let mut store = MemoryStore::default();
    let killer = Killer {
        at: 1,
        back: None,
        rig: slot.clone(),
        port,
    };
    let t0 = Instant::now();
    match tune(
        &w,
        &runner,
        &mut store,
        &tune_opts(8, &work),
        &killer,
        &AtomicBool::new(false),
    ) {
        Err(e @ TuneError::DeviceLost { .. }) => {
            let m = e.to_string();
            assert!(m.contains("3 candidates in a row lost the device"), "{m}");
            assert!(m.contains("rerun to resume"), "{m}");
        }
        other => panic!("expected DeviceLost, got {:?}", other.map(|r| r.errors)),
    }
    assert!(
        t0.elapsed() < Duration::from_secs(40),
        "gave up in bounded time"
    );
    assert!(
        store.trials[0].outcome.is_ok(),
        "the measured candidate is kept"
    );
    assert_eq!(
        store.trials.iter().filter(|t| t.outcome.is_err()).count(),
        3,
        "the lost candidates are recorded as such"
    );
    let _ = Store::history(&store);
    drop(runner);
}

/// Freezes the device (it stops answering without closing the connection) after `at`
/// trials, and thaws it once the next trial is recorded.
struct Freezer {
    at: usize,
    rig: Arc<Mutex<Option<Handle>>>,
}

impl Progress for Freezer {
    fn trial(&self, _t: &Trial, done: usize, _: usize, _: Option<f64>, _: usize) {
        if let Some(h) = self.rig.lock().unwrap().as_ref() {
            if done == self.at {
                h.set_frozen(true);
            } else if done == self.at + 1 {
                h.set_frozen(false);
            }
        }
    }
}

#[test]
fn a_device_that_stops_answering_times_out_then_the_run_goes_on() {
    let work = tempfile::tempdir().unwrap();
    let mut r = rig();
    let slot = Arc::new(Mutex::new(r.dev.take()));
    let mut o = options(&r);
    o.command_timeout = Duration::from_secs(3);
    let runner = AdbRunner::new(o, "cortex-a76", limits(3)).unwrap();
    let w = Workload::from_spec_str(SPEC).unwrap();
    let mut store = MemoryStore::default();
    let freezer = Freezer {
        at: 1,
        rig: slot.clone(),
    };
    let rep = tune(
        &w,
        &runner,
        &mut store,
        &tune_opts(3, &work),
        &freezer,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(rep.trials.len(), 3);
    let f = rep.trials[1].outcome.as_ref().unwrap_err();
    assert_eq!(f.kind, ErrorKind::DeviceLost, "{f:?}");
    assert!(f.message.contains("not answering"), "{}", f.message);
    assert!(rep.trials[2].outcome.is_ok(), "{:?}", rep.trials[2].outcome);
    drop(runner);
}

#[test]
fn a_resumed_run_remeasures_lost_candidates_and_nothing_else() {
    let work = tempfile::tempdir().unwrap();
    let mut r = rig();
    let port = r.dev.as_ref().unwrap().port();
    let slot = Arc::new(Mutex::new(r.dev.take()));
    let w = Workload::from_spec_str(SPEC).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dbdir = tmp.path().join("db");
    let db = Arc::new(tuning_logs::Database::open(&dbdir).unwrap());

    let runner = AdbRunner::new(options(&r), "cortex-a76", limits(20)).unwrap();
    let mut store = tuner::db_store::DbStore::new(db.clone(), &w, &runner).unwrap();
    let killer = Killer {
        at: 2,
        back: None,
        rig: slot.clone(),
        port,
    };
    let err = tune(
        &w,
        &runner,
        &mut store,
        &tune_opts(6, &work),
        &killer,
        &AtomicBool::new(false),
    )
    .unwrap_err();
    let TuneError::DeviceLost { report, .. } = err else {
        panic!("expected DeviceLost, got {err}")
    };
    let lost: Vec<String> = report.trials[2..]
        .iter()
        .map(|t| t.trace.to_json())
        .collect();
    let measured: Vec<String> = report.trials[..2]
        .iter()
        .map(|t| t.trace.to_json())
        .collect();
    assert_eq!(lost.len(), 3);
    drop(runner);

    // The device comes back on the same port; the same run again resumes: the two
    // measured candidates are skipped, the three lost ones measured.
    *slot.lock().unwrap() = Some(
        spawn(Config {
            port,
            ..Config::default()
        })
        .unwrap(),
    );
    r.adb.connect(&r.serial, Duration::from_secs(20)).unwrap();
    let runner = AdbRunner::new(options(&r), "cortex-a76", limits(20)).unwrap();
    let mut store = tuner::db_store::DbStore::new(db.clone(), &w, &runner).unwrap();
    let rep = tune(
        &w,
        &runner,
        &mut store,
        &tune_opts(3, &work),
        &NoProgress,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(
        rep.skipped_already_measured >= 2,
        "{}",
        rep.skipped_already_measured
    );
    let again: Vec<String> = rep.trials.iter().map(|t| t.trace.to_json()).collect();
    // Same seed, same proposals: the first batch's two lost candidates come up first
    // and are measured again; the measured ones never are.
    assert_eq!(
        again[..2],
        lost[..2],
        "the lost candidates are measured again"
    );
    assert!(
        again.iter().all(|t| !measured.contains(t)),
        "a candidate was measured twice"
    );
    assert!(
        rep.trials.iter().all(|t| t.outcome.is_ok()),
        "{:?}",
        rep.errors
    );
    drop(runner);
}

#[test]
fn an_unauthorized_device_says_what_to_do() {
    let dev = spawn(Config {
        unauthorized: true,
        ..Config::default()
    })
    .unwrap();
    let adb = AdbServer::start().unwrap();
    let serial = dev.serial();
    let _ = adb.run(&["connect", &serial]).unwrap();
    // The server lists the device as unauthorized once the AUTH exchange happened.
    let start = Instant::now();
    loop {
        let o = adb.run(&["devices"]).unwrap();
        if String::from_utf8_lossy(&o.stdout).contains(&format!("{serial}\tunauthorized")) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut o = AdbOptions::new(&serial);
    o.adb = adb.wrapper().unwrap();
    match AdbRunner::new(o, "cortex-a76", limits(5)) {
        Err(e @ AdbError::Unauthorized { .. }) => {
            assert!(
                e.to_string().contains("accept the USB debugging prompt"),
                "{e}"
            )
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("an unauthorized device was accepted"),
    }
    dev.stop();
}
