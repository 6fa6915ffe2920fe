//! OpenCL tuning over adb, with Debian's real `adb` client and server and the loopback
//! device of `adb-loopback`.
//!
//! No aarch64 OpenCL driver exists here, so the device that runs OpenCL plays an x86-64
//! Android emulator (`ro.product.cpu.abi=x86_64`): the device-side harness is built
//! with the host `cc` (dynamic, `-ldl`), pushed by the real adb, run on the "device",
//! and dlopens this machine's OpenCL ICD loader (pocl behind it), named with
//! `--opencl-lib` as a phone's driver would be found on its vendor paths. The ARM device
//! (the loopback default) runs the aarch64 build of the harness under qemu, where no
//! OpenCL library exists: the run stops with the clear "no OpenCL library" error.

mod common;

use adb_loopback::Config;
use codegen::opencl_harness::LIBRARY_PATHS;
use common::{rig_with, Rig};
use schedule::Schedule;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tir::workload::Workload;
use tir::{Expr, Stmt};
use tuner::adb::{AdbError, AdbOptions, AdbRunner};
use tuner::measure::{ErrorKind, Job, Limits, Runner};
use tuner::tune::{tune, Fault, FaultInjection, MemoryStore, NoProgress, Strategy, TuneOptions};

const SPEC: &str = "bcr-fc:M=32,K=32,N=4,block=8x8,sparsity=0.75,seed=4";

/// A device playing an x86-64 Android emulator.
fn x86_64_emulator() -> Config {
    let mut c = Config::default();
    for (k, v) in [
        ("ro.product.model", "grim x86_64 emulator"),
        ("ro.product.cpu.abi", "x86_64"),
        ("ro.board.platform", "ranchu"),
    ] {
        c.props.insert(k.into(), v.into());
    }
    c.cpu_parts = Vec::new();
    c.cpu_max_khz = Vec::new();
    c
}

/// This machine's OpenCL ICD loader, as the emulator's "vendor" library.
fn host_library() -> String {
    [
        "/usr/lib/x86_64-linux-gnu/libOpenCL.so.1",
        "/usr/lib64/libOpenCL.so.1",
    ]
    .iter()
    .find(|p| Path::new(p).exists())
    .map(|p| p.to_string())
    .unwrap_or_else(|| "libOpenCL.so.1".into())
}

/// The name of the OpenCL device this machine's driver offers (as the opencl3 crate
/// sees it): what the harness must report from the "device".
fn local_opencl_device() -> String {
    codegen::opencl_run::OpenClDevice::open(None)
        .unwrap_or_else(|e| panic!("{e}"))
        .name()
        .trim()
        .to_string()
}

fn limits(run_timeout: u64) -> Limits {
    let mut l = Limits {
        run_timeout: Duration::from_secs(run_timeout),
        ..Limits::default()
    };
    l.protocol.repeat = 2;
    l
}

fn options(r: &Rig, library: Option<&str>) -> AdbOptions {
    let mut o = AdbOptions::new(&r.serial);
    o.adb = r.wrapper.clone();
    o.opencl_library = library.map(str::to_string);
    o
}

fn grim_tune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn grim_tune_opencl_over_adb_checks_results_and_records_the_opencl_device() {
    if cfg!(not(target_arch = "x86_64")) {
        eprintln!("skipped: the loopback emulator device is x86-64");
        return;
    }
    let r = rig_with(x86_64_emulator());
    let lib = host_library();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let db_s = db.display().to_string();
    let wrapper = r.wrapper.display().to_string();
    let device = format!("adb:{}", r.serial);
    let out = grim_tune(&[
        "tune",
        "--workload",
        SPEC,
        "--target",
        "opencl",
        "--device",
        &device,
        "--opencl-lib",
        &lib,
        "--trials",
        "4",
        "--strategy",
        "random",
        "--no-dense",
        "--json",
        "--db",
        &db_s,
        "--adb",
        &wrapper,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    eprintln!("{}", text(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v[0];
    assert_eq!(s["device"], device);
    assert_eq!(s["target"], "opencl");
    assert_eq!(s["trials"], 4);
    assert_eq!(
        s["errors"], 0,
        "every candidate matched the interpreter: {s}"
    );
    // The session directory is gone from the device.
    let grim = r.root().join("data/local/tmp/grim");
    let left: Vec<_> = std::fs::read_dir(&grim)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left on the device: {left:?}");

    // The runner reports the device's OpenCL device (the one this machine's driver
    // offers) and stores records under it; the CLI's records are there.
    let runner = AdbRunner::new_opencl(options(&r, Some(&lib)), false, limits(20)).unwrap();
    let name = local_opencl_device();
    let info = runner.opencl().unwrap();
    assert_eq!(info.device, name);
    assert_eq!(info.library, lib);
    assert!(info.version.starts_with("OpenCL "), "{info:?}");
    let (target, identity) = tuner::db_store::identity_of(&runner).unwrap();
    assert_eq!(identity.opencl_device.as_deref(), Some(name.as_str()));
    assert_eq!(identity.abi, "x86_64");
    assert_eq!(identity.model, "grim x86_64 emulator");
    assert!(matches!(target, tuning_logs::Target::OpenCl { .. }));
    drop(runner);
    let database = tuning_logs::Database::open(&db).unwrap();
    let w = Workload::from_spec_str(SPEC).unwrap();
    let key = w.key();
    let q = tuning_logs::Query {
        workload: &key,
        target: &target,
        device: &identity,
    };
    let recs = database.records_of(&q).unwrap();
    // The 4 candidates and the confirmation round's records (the best of them run
    // again on the phone's OpenCL device).
    let confirmed = recs
        .iter()
        .filter(|s| s.record.confirmation.is_some())
        .count();
    assert_eq!(recs.len() - confirmed, 4);
    assert!(confirmed >= 2, "{confirmed} confirmed records");
    for rec in &recs {
        assert_eq!(
            rec.record.device.opencl_device.as_deref(),
            Some(name.as_str())
        );
        assert_eq!(rec.record.device.serial.as_deref(), Some(r.serial.as_str()));
        assert!(
            matches!(rec.record.result, tuning_logs::Outcome::Measured(_)),
            "{:?}",
            rec.record.result
        );
    }
    let best = tuning_logs::apply_best(&database, &w, &target, &identity).unwrap();
    assert!(best.function().is_some(), "the best schedule replays");

    // `grim-tune devices --opencl` shows the OpenCL device.
    let out = grim_tune(&[
        "devices",
        "--adb",
        &wrapper,
        "--opencl",
        "--opencl-lib",
        &lib,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    eprintln!("{listing}");
    assert!(
        listing.contains(&format!("  opencl  {name} (")),
        "{listing}"
    );
    assert!(listing.contains("abi     x86_64"), "{listing}");
}

#[test]
fn wrong_results_and_hanging_kernels_on_the_device_are_caught() {
    if cfg!(not(target_arch = "x86_64")) {
        eprintln!("skipped: the loopback emulator device is x86-64");
        return;
    }
    let r = rig_with(x86_64_emulator());
    let runner =
        AdbRunner::new_opencl(options(&r, Some(&host_library())), false, limits(4)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = Workload::from_spec_str(SPEC).unwrap();
    // Every second candidate adds 1 to its first output element: the comparison with
    // the interpreter on the host catches it.
    let opts = TuneOptions {
        trials: 4,
        batch: 4,
        strategy: Strategy::Random,
        seed: 3,
        work_dir: work.path().to_path_buf(),
        faults: Some(FaultInjection {
            every: 2,
            faults: vec![Fault::WrongOutput],
        }),
        ..TuneOptions::default()
    };
    let rep = tune(
        &w,
        &runner,
        &mut MemoryStore::default(),
        &opts,
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
        [
            None,
            Some(ErrorKind::WrongResult),
            None,
            Some(ErrorKind::WrongResult)
        ],
        "{:?}",
        rep.trials
    );

    // A kernel that never ends: the harness is killed on the device by its pid after
    // the run timeout (in-process OpenCL could not do that).
    let s = Schedule::from_workload(&w).unwrap();
    let mut f = s.func().clone();
    let body = std::mem::replace(&mut f.body, Stmt::Seq(Vec::new()));
    f.body = Stmt::serial("__hang", Expr::Int(1 << 62), body);
    let mut args = w.random_inputs(1);
    args.extend(s.weights().iter().map(|(k, v)| (k.clone(), v.clone())));
    let job = Job {
        func: &f,
        args: &args,
    };
    let dir = work.path().join("hang");
    let bin = runner.build(std::slice::from_ref(&job), &dir).unwrap();
    let t0 = std::time::Instant::now();
    let e = runner
        .measure(&bin, 0, &job, &BTreeMap::new(), &dir)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::RunTimeout, "{}", e.message);
    assert!(
        e.message.contains("killed on the device (pid "),
        "{}",
        e.message
    );
    assert!(t0.elapsed() < Duration::from_secs(20));
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let root = r.root().display().to_string();
    assert!(
        !text(&ps.stdout)
            .lines()
            .any(|l| l.contains(&root) && l.contains(" run ")),
        "still running: {}",
        text(&ps.stdout)
    );
}

#[test]
fn a_device_without_opencl_is_a_clear_error() {
    // The ARM device: the aarch64 harness (dynamic, cross-built) runs under qemu and
    // finds no library on any of the usual paths.
    let arm = rig_with(Config::default());
    match AdbRunner::new_opencl(options(&arm, None), false, limits(20)) {
        Err(e @ AdbError::NoOpenCl { .. }) => {
            let m = e.to_string();
            eprintln!("{m}");
            assert!(
                m.starts_with(&format!(
                    "adb device `{}` has no OpenCL library; searched: {}",
                    arm.serial,
                    LIBRARY_PATHS.join(", ")
                )),
                "{m}"
            );
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("an OpenCL device was found under qemu-aarch64"),
    }
    // The session directory is removed even so.
    let grim = arm.root().join("data/local/tmp/grim");
    let left: Vec<_> = std::fs::read_dir(&grim)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left on the device: {left:?}");
    let wrapper = arm.wrapper.display().to_string();
    let out = grim_tune(&["devices", "--adb", &wrapper, "--opencl"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(
        listing.contains("  opencl  none: adb device") && listing.contains("has no OpenCL library"),
        "{listing}"
    );
    drop(arm);

    // The CLI on a device whose library is not where it was said to be: non-zero exit,
    // one clear line naming the path, and nothing recorded.
    if cfg!(target_arch = "x86_64") {
        let r = rig_with(x86_64_emulator());
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("db").display().to_string();
        let out = grim_tune(&[
            "tune",
            "--workload",
            SPEC,
            "--target",
            "opencl",
            "--device",
            &format!("adb:{}", r.serial),
            "--opencl-lib",
            "/vendor/lib64/nowhere/libOpenCL.so",
            "--trials",
            "2",
            "--no-dense",
            "--db",
            &db,
            "--adb",
            &r.wrapper.display().to_string(),
        ]);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        eprintln!("{err}");
        assert!(
            err.contains(&format!(
                "adb device `{}` has no OpenCL library; searched: /vendor/lib64/nowhere/libOpenCL.so (",
                r.serial
            )),
            "{err}"
        );
    }
}
