//! `grim-tune db ...` as a user runs it: tables, files, exit codes and messages.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tir::workload::Workload;
use tuning_logs::{
    Database, DeviceIdentity, ErrorKind, Failure, Measurement, Outcome, Record, Target, WorkloadRef,
};

fn grim_tune(args: &[&str], env: &[(&str, &Path)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_grim-tune"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run grim-tune");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pixel() -> DeviceIdentity {
    DeviceIdentity {
        model: "Pixel 7".into(),
        soc: "Tensor G2".into(),
        abi: "arm64-v8a".into(),
        cores: 8,
        opencl_device: None,
        serial: Some("28051FDH2000ZZ".into()),
    }
}

fn a76() -> Target {
    "aarch64-neon -mcpu=cortex-a76".parse().unwrap()
}

fn times(median_s: f64) -> Outcome {
    Outcome::Measured(Measurement {
        median_s,
        min_s: median_s,
        mean_s: median_s,
        stddev_s: 0.0,
        number: 10,
        repeat: 3,
        instructions: None,
    })
}

/// A database with two workloads on the Pixel: one with a default-schedule baseline
/// (4 ms) and a tuned 1 ms schedule, one with only a tuned time and a failure.
fn fill(path: &Path) {
    let db = Database::open(path).unwrap();
    let w1 = Workload::from_spec_str("fc:M=64,K=64,N=8").unwrap();
    let w2 = Workload::from_spec_str("bcr-fc:M=32,K=32,N=1,block=8x8,sparsity=0.5").unwrap();
    let mut s1 = schedule::Schedule::from_workload(&w1).unwrap();
    s1.parallel("m").unwrap();
    let mut s2 = schedule::Schedule::from_workload(&w1).unwrap();
    s2.unroll("m").unwrap();
    let rec = |w: &Workload, trace: &schedule::Trace, out: Outcome, t: u64| {
        let mut r = Record::new(WorkloadRef::of(w), a76(), pixel(), trace.clone(), out);
        r.time_unix_ms = t;
        r
    };
    db.insert(&rec(&w1, &schedule::Trace::new(), times(4e-3), 1))
        .unwrap();
    db.insert(&rec(&w1, s1.trace(), times(1e-3), 2)).unwrap();
    db.insert(&rec(&w2, s2.trace(), times(2.5e-6), 3)).unwrap();
    let fail = Outcome::Error(Failure {
        kind: ErrorKind::WrongResult,
        message: "max abs error 0.5 at Y[3,0]".into(),
    });
    db.insert(&rec(&w2, s1.trace(), fail, 4)).unwrap();
}

#[test]
fn show_prints_a_table_with_speedup_over_default() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    fill(&db);
    let (ok, out, err) = grim_tune(&["db", "show", "--db", db.to_str().unwrap()], &[]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("workload"), "{out}");
    for col in ["target", "device", "trials", "errors", "best", "speedup"] {
        assert!(lines[0].contains(col), "{out}");
    }
    let fc = lines.iter().find(|l| l.starts_with("fc:M=64")).unwrap();
    assert!(fc.contains("aarch64-neon -mcpu=cortex-a76"), "{fc}");
    assert!(fc.contains("Pixel 7 (Tensor G2) #"), "{fc}");
    assert!(fc.contains("1.000 ms"), "{fc}");
    assert!(fc.trim_end().ends_with("4.00x"), "{fc}");
    let bcr = lines.iter().find(|l| l.starts_with("bcr-fc:M=32")).unwrap();
    assert!(bcr.contains("2.500 us"), "{bcr}");
    assert!(bcr.trim_end().ends_with('-'), "{bcr}");
    assert!(out.contains("4 record(s) in 2 group(s)"), "{out}");
    assert!(out.contains("errors: wrong_result 1"), "{out}");
}

#[test]
fn export_import_round_trip_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (db, db2) = (dir.path().join("db"), dir.path().join("db2"));
    fill(&db);
    let (f1, f2) = (dir.path().join("one.jsonl"), dir.path().join("two.jsonl"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (ok, out, err) = grim_tune(&["db", "export", "--db", &s(&db), "--out", &s(&f1)], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("exported 4 record(s)"), "{out}");
    let (ok, out, err) = grim_tune(&["db", "import", "--db", &s(&db2), &s(&f1)], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("imported 4 record(s)"), "{out}");
    let (ok, _, err) = grim_tune(&["db", "export", "--db", &s(&db2), "--out", &s(&f2)], &[]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(&f1).unwrap(), std::fs::read(&f2).unwrap());
    // Filters.
    let f3 = dir.path().join("best.jsonl");
    let (ok, out, err) = grim_tune(
        &[
            "db",
            "export",
            "--db",
            &s(&db),
            "--out",
            &s(&f3),
            "--best-only",
            "--target",
            "aarch64-neon -mcpu=cortex-a76",
            "--device",
            "Pixel 7",
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert!(out.contains("exported 2 record(s)"), "{out}");
    let f4 = dir.path().join("host.jsonl");
    let (ok, out, _) = grim_tune(
        &[
            "db",
            "export",
            "--db",
            &s(&db),
            "--out",
            &s(&f4),
            "--target",
            "host",
        ],
        &[],
    );
    assert!(ok);
    assert!(out.contains("exported 0 record(s)"), "{out}");
    // Merge of a database and a file: all duplicates.
    let m = dir.path().join("m.jsonl");
    let (ok, out, err) = grim_tune(&["db", "merge", &s(&db), &s(&f1), "--out", &s(&m)], &[]);
    assert!(ok, "{err}");
    assert!(
        out.contains("merged 8 record(s) from 2 inputs into 4 record(s)"),
        "{out}"
    );
}

#[test]
fn a_bad_import_lists_lines_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    fill(&db);
    let good = dir.path().join("good.jsonl");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    assert!(grim_tune(&["db", "export", "--db", &s(&db), "--out", &s(&good)], &[]).0);
    let text = std::fs::read_to_string(&good).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[2] = lines[2].replace("\"repeat\":3", "\"repeat\":\"3\"");
    lines[4].truncate(40);
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();

    let fresh = dir.path().join("fresh");
    let (ok, out, err) = grim_tune(&["db", "import", "--db", &s(&fresh), &s(&bad)], &[]);
    assert!(!ok);
    assert!(out.is_empty());
    assert!(err.starts_with("grim-tune: error: "), "{err}");
    assert!(err.contains("2 bad line(s), nothing imported"), "{err}");
    assert!(
        err.contains("line 3: field `result.measured.repeat`: invalid type"),
        "{err}"
    );
    assert!(err.contains("line 5: EOF while parsing"), "{err}");
    assert!(
        !fresh.exists(),
        "a rejected import must not create a database"
    );

    let (ok, out, err) = grim_tune(
        &["db", "import", "--db", &s(&fresh), "--skip-bad", &s(&bad)],
        &[],
    );
    assert!(ok, "{err}");
    assert!(out.contains("imported 2 record(s)"), "{out}");
    assert!(out.contains("skipped 2 bad line(s):\n  line 3: "), "{out}");

    // A file from a newer grim.
    let newer = dir.path().join("newer.jsonl");
    std::fs::write(&newer, text.replacen("\"format\":1", "\"format\":2", 1)).unwrap();
    let (ok, _, err) = grim_tune(&["db", "import", "--db", &s(&fresh), &s(&newer)], &[]);
    assert!(!ok);
    assert!(
        err.contains("line 1: file format version 2 is newer than this grim supports (version 1)"),
        "{err}"
    );
}

#[test]
fn the_default_database_lives_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [("XDG_DATA_HOME", data.as_path()), ("HOME", dir.path())];
    let (ok, _, err) = grim_tune(&["db", "show"], &env);
    assert!(!ok);
    let expected = data.join("grim").join("tuning-db");
    assert!(
        err.contains(&format!("no tuning database at {}", expected.display())),
        "{err}"
    );
    fill(&expected);
    let (ok, out, err) = grim_tune(&["db", "show"], &env);
    assert!(ok, "{err}");
    assert!(out.contains("4 record(s)"), "{out}");
}

#[test]
fn a_database_in_use_is_a_clear_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    fill(&path);
    let held = Database::open(&path).unwrap();
    let start = Instant::now();
    let (ok, _, err) = grim_tune(&["db", "show", "--db", path.to_str().unwrap()], &[]);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "database {} is in use by another process",
            path.display()
        )),
        "{err}"
    );
    drop(held);
}
