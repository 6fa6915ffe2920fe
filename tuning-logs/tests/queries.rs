//! Queries: best-k against brute force, isolation of targets and devices,
//! "already measured", error counts, apply-best, refusals (lock, newer format, corrupt
//! values).

mod common;

use common::*;
use proptest::prelude::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tuning_logs::{
    apply_best, ApplyBest, Database, DbError, DeviceIdentity, ErrorKind, Query, Record, Target,
};

fn open_temp() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("db")).unwrap();
    (dir, db)
}

fn query<'a>(key: &'a tir::WorkloadKey, t: &'a Target, d: &'a DeviceIdentity) -> Query<'a> {
    Query {
        workload: key,
        target: t,
        device: d,
    }
}

/// One random record: workload 0..2, target 0..2, device 0..2, a median from a small
/// set (so ties happen) or a failure.
fn arb_record() -> impl Strategy<Value = (u64, usize, usize, i64, Option<u32>)> {
    (
        0u64..2,
        0usize..2,
        0usize..2,
        0i64..6,
        prop::option::weighted(0.8, 1u32..6),
    )
}

fn targets() -> [Target; 2] {
    [Target::HOST, a76()]
}

fn devices() -> [DeviceIdentity; 2] {
    [device("Pixel 7"), device("Galaxy S21")]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// best_k equals sorting the matching measured records by (median, insertion).
    #[test]
    fn best_k_equals_brute_force(specs in prop::collection::vec(arb_record(), 0..40), k in 0usize..8) {
        let (_dir, db) = open_temp();
        let mut inserted: Vec<(u64, Record)> = Vec::new();
        for (w, t, d, tag, median) in &specs {
            let result = match median {
                Some(m) => measured(f64::from(*m) * 1e-4),
                None => failed(ErrorKind::WrongResult),
            };
            let r = record(*w, targets()[*t].clone(), &devices()[*d], *tag, result);
            let seq = db.insert_unflushed(&r).unwrap();
            inserted.push((seq, r));
        }
        for w in 0..2u64 {
            for t in &targets() {
                for d in &devices() {
                    let key = workload(w).key();
                    let got: Vec<(u64, Record)> = db
                        .best_k(&query(&key, t, d), k)
                        .unwrap()
                        .into_iter()
                        .map(|s| (s.seq, s.record))
                        .collect();
                    let mut want: Vec<&(u64, Record)> = inserted
                        .iter()
                        .filter(|(_, r)| r.workload.key() == key && r.target == *t && r.device.id() == d.id())
                        .filter(|(_, r)| r.median_s().is_some())
                        .collect();
                    want.sort_by(|a, b| {
                        a.1.median_s().unwrap().total_cmp(&b.1.median_s().unwrap()).then(a.0.cmp(&b.0))
                    });
                    let want: Vec<(u64, Record)> = want.into_iter().take(k).cloned().collect();
                    prop_assert_eq!(got, want);
                }
            }
        }
        prop_assert_eq!(db.check().unwrap(), specs.len());
    }
}

#[test]
fn targets_and_devices_never_leak_into_each_others_best() {
    let (_dir, db) = open_temp();
    let (pixel, galaxy) = (device("Pixel 7"), device("Galaxy S21"));
    // The fastest record overall is on the host target; the Galaxy has a faster one
    // than the Pixel on the same target; a failure is fastest of all (no time).
    db.insert(&record(0, Target::HOST, &pixel, 1, measured(1e-6)))
        .unwrap();
    db.insert(&record(0, a76(), &pixel, 2, measured(5e-6)))
        .unwrap();
    db.insert(&record(0, a76(), &galaxy, 3, measured(2e-6)))
        .unwrap();
    db.insert(&record(0, a76(), &pixel, 4, failed(ErrorKind::RunError)))
        .unwrap();
    // The same device with another serial is the same device.
    let mut pixel2 = pixel.clone();
    pixel2.serial = Some("another".into());
    db.insert(&record(0, a76(), &pixel2, 5, measured(4e-6)))
        .unwrap();
    // Another workload with the same target and device.
    db.insert(&record(1, a76(), &pixel, 6, measured(1e-7)))
        .unwrap();

    let key = workload(0).key();
    let tags = |t: &Target, d: &DeviceIdentity| -> Vec<Option<f64>> {
        db.best_k(&query(&key, t, d), 10)
            .unwrap()
            .iter()
            .map(|s| s.record.median_s())
            .collect()
    };
    assert_eq!(tags(&a76(), &pixel), [Some(4e-6), Some(5e-6)]);
    assert_eq!(tags(&a76(), &galaxy), [Some(2e-6)]);
    assert_eq!(tags(&Target::HOST, &pixel), [Some(1e-6)]);
    assert!(tags(&Target::HOST, &galaxy).is_empty());
    let other = Target::Aarch64Neon {
        mcpu: "cortex-a55".into(),
        threads: None,
    };
    assert!(tags(&other, &pixel).is_empty());

    assert_eq!(db.records_of_workload(&key).unwrap().len(), 5);
    assert_eq!(db.records_of_workload(&workload(1).key()).unwrap().len(), 1);
    assert_eq!(
        db.records_of(&query(&key, &a76(), &pixel)).unwrap().len(),
        3
    );
}

#[test]
fn already_measured_and_error_counts() {
    let (_dir, db) = open_temp();
    let pixel = device("Pixel 7");
    db.insert(&record(0, a76(), &pixel, 1, measured(1e-6)))
        .unwrap();
    db.insert(&record(
        0,
        a76(),
        &pixel,
        2,
        failed(ErrorKind::BuildTimeout),
    ))
    .unwrap();
    db.insert(&record(
        0,
        a76(),
        &pixel,
        3,
        failed(ErrorKind::BuildTimeout),
    ))
    .unwrap();
    db.insert(&record(1, a76(), &pixel, 3, failed(ErrorKind::DeviceLost)))
        .unwrap();
    let key = workload(0).key();
    let arm = a76();
    let q = query(&key, &arm, &pixel);
    assert!(db.is_measured(&q, &trace(1)).unwrap());
    assert!(
        db.is_measured(&q, &trace(2)).unwrap(),
        "failures count as measured"
    );
    assert!(!db.is_measured(&q, &trace(4)).unwrap());
    assert!(!db
        .is_measured(&query(&key, &Target::HOST, &pixel), &trace(1))
        .unwrap());
    let all = db.error_counts(None).unwrap();
    assert_eq!(all.get(&ErrorKind::BuildTimeout), Some(&2));
    assert_eq!(all.get(&ErrorKind::DeviceLost), Some(&1));
    assert_eq!(all.len(), 2);
    let w0 = db.error_counts(Some(&key)).unwrap();
    assert_eq!(w0.get(&ErrorKind::DeviceLost), None);
}

#[test]
fn apply_best_replays_or_says_there_is_none() {
    use tir::workload::Workload;
    let (_dir, db) = open_temp();
    let w = Workload::from_spec_str("bcr-fc:M=32,K=32,N=4,block=8x8,sparsity=0.5,seed=3").unwrap();
    let pixel = device("Pixel 7");
    match apply_best(&db, &w, &a76(), &pixel).unwrap() {
        ApplyBest::NoRecord(none) => {
            let line = none.to_string();
            assert!(
                line.starts_with("no tuned schedule for bcr-fc:M=32"),
                "{line}"
            );
            assert!(line.contains("aarch64-neon -mcpu=cortex-a76"), "{line}");
            assert!(line.ends_with("using the default"), "{line}");
        }
        other => panic!("{other:?}"),
    }
    // The default schedule and a tuned one; a failure that would be "fastest".
    let mut s = schedule::Schedule::from_workload(&w).unwrap();
    let loops: Vec<String> = tir::print_function(s.func())
        .lines()
        .filter_map(|l| l.trim().strip_prefix("for ("))
        .filter_map(|l| l.split(',').next().map(str::to_string))
        .collect();
    s.unroll(&loops[loops.len() - 1]).unwrap();
    let wr = tuning_logs::WorkloadRef::of(&w);
    let mk = |trace: schedule::Trace, result| {
        Record::new(wr.clone(), a76(), pixel.clone(), trace, result)
    };
    db.insert(&mk(schedule::Trace::new(), measured(3e-6)))
        .unwrap();
    db.insert(&mk(s.trace().clone(), measured(1e-6))).unwrap();
    db.insert(&mk(trace(9), failed(ErrorKind::WrongResult)))
        .unwrap();
    match apply_best(&db, &w, &a76(), &pixel).unwrap() {
        ApplyBest::Tuned { schedule, record } => {
            assert_eq!(schedule.func(), s.func());
            assert_eq!(record.record.median_s(), Some(1e-6));
        }
        other => panic!("{other:?}"),
    }
    // Other device: explicitly none.
    assert!(apply_best(&db, &w, &a76(), &device("Galaxy S21"))
        .unwrap()
        .function()
        .is_none());
    // A best trace that does not replay is an error, not a silent fallback.
    let mut bad = schedule::Trace::new();
    bad.instructions.push(schedule::Instruction::Unroll {
        loop_name: "no_such_loop".into(),
    });
    db.insert(&mk(bad, measured(1e-7))).unwrap();
    let e = apply_best(&db, &w, &a76(), &pixel).unwrap_err();
    assert!(matches!(e, DbError::Replay { .. }), "{e}");
    assert!(e.to_string().contains("no_such_loop"), "{e}");
    // The record's portable spec rebuilds the workload with the same key.
    let best = db.best(&query(&w.key(), &a76(), &pixel)).unwrap().unwrap();
    assert_eq!(
        tuning_logs::workload_of(&best.record).unwrap().key(),
        w.key()
    );
}

#[test]
fn invalid_records_are_refused_on_insert() {
    let (_dir, db) = open_temp();
    let pixel = device("Pixel 7");
    let mut r = record(0, a76(), &pixel, 1, measured(f64::NAN));
    assert!(db
        .insert(&r)
        .unwrap_err()
        .to_string()
        .contains("result.measured.median_s"));
    r.result = measured(1e-6);
    r.workload.structure = "XYZ".into();
    assert!(db
        .insert(&r)
        .unwrap_err()
        .to_string()
        .contains("workload.structure"));
    r.workload = workload(0);
    r.workload.spec = "fc:M=8,K=8,N=1".into();
    assert!(db
        .insert(&r)
        .unwrap_err()
        .to_string()
        .contains("not in canonical form"));
    r.workload = workload(0);
    r.format = tuning_logs::FORMAT_VERSION + 1;
    let e = db.insert(&r).unwrap_err().to_string();
    assert!(e.contains("version 2") && e.contains("version 1"), "{e}");
    assert!(db.is_empty());
}

#[test]
fn a_corrupt_value_is_an_error_not_a_panic() {
    let (_dir, db) = open_temp();
    let pixel = device("Pixel 7");
    let r = record(0, a76(), &pixel, 1, measured(1e-6));
    let seq = db.insert(&r).unwrap();
    db.corrupt_record_for_tests(&r, seq, b"{\"format\":1,\"workl")
        .unwrap();
    let key = workload(0).key();
    let e = db.best_k(&query(&key, &a76(), &pixel), 1).unwrap_err();
    assert!(matches!(e, DbError::Corrupt { .. }), "{e}");
    assert!(
        e.to_string().contains("corrupt entry in tree `records`"),
        "{e}"
    );
    assert!(db.check().is_err());
    assert!(db.iter().any(|s| s.is_err()));
}

#[test]
fn a_database_from_a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let raw = sled::open(&path).unwrap();
        raw.open_tree("meta")
            .unwrap()
            .insert("format", "7")
            .unwrap();
        raw.flush().unwrap();
    }
    let e = Database::open(&path).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            DbError::NewerFormat {
                found: 7,
                supported: 1,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("format version 7") && msg.contains("version 1"),
        "{msg}"
    );
}

#[test]
fn a_database_held_by_another_process_is_a_clear_error_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut holder = Command::new(env!("CARGO_BIN_EXE_db-writer"))
        .arg(&path)
        .arg("--hold")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    let start = Instant::now();
    let result = Database::open(&path);
    let waited = start.elapsed();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let e = result.unwrap_err();
    assert!(matches!(e, DbError::Locked { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("in use by another process"), "{msg}");
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    // Free again once the holder is gone.
    Database::open(&path).unwrap();
}

#[test]
fn open_existing_does_not_create() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing");
    assert!(matches!(
        Database::open_existing(&path).unwrap_err(),
        DbError::NotFound { .. }
    ));
    assert!(!path.exists());
}

/// A snapshot that sled did not finish writing (`snap.N.generating`, left by a process
/// killed mid-write) used to make sled 0.34 refuse the database ("Read corrupted
/// data", seen in the SIGKILL crash test under load). Opening removes it and recovers
/// every record from the log.
#[test]
fn a_partial_snapshot_left_by_a_killed_process_does_not_block_opening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let dev = common::device("phone");
    {
        let db = Database::open(&path).unwrap();
        for tag in 0..5 {
            db.insert(&common::record(
                1,
                common::a76(),
                &dev,
                tag,
                common::measured(1e-3 + tag as f64 * 1e-6),
            ))
            .unwrap();
        }
    }
    // A torn snapshot with the highest sequence number, as a killed writer leaves it.
    std::fs::write(
        path.join("snap.7FFFFFFFFFFFFFF0.generating"),
        b"half a snapshot",
    )
    .unwrap();
    let db = Database::open(&path).unwrap();
    assert_eq!(db.len(), 5);
    assert!(!path.join("snap.7FFFFFFFFFFFFFF0.generating").exists());
    db.check().unwrap();
}

/// Records measured by another build's generated code (another `grim_version`): the
/// best of this build's records wins over a faster older one, the older best is used
/// only when nothing current exists, and a merge keeps the current record of a trace.
#[test]
fn current_records_win_over_older_generated_code() {
    use tir::workload::Workload;
    assert!(
        tuning_logs::GRIM_VERSION.starts_with(concat!(env!("CARGO_PKG_VERSION"), "+")),
        "{}",
        tuning_logs::GRIM_VERSION
    );
    let (_dir, db) = open_temp();
    let w = Workload::from_spec_str("bcr-fc:M=32,K=32,N=4,block=8x8,sparsity=0.5,seed=3").unwrap();
    let pixel = device("Pixel 7");
    let wr = tuning_logs::WorkloadRef::of(&w);
    let key = w.key();
    let mut old = schedule::Schedule::from_workload(&w).unwrap();
    old.register_tile("W", 2, 4).unwrap();
    let mut older = Record::new(
        wr.clone(),
        a76(),
        pixel.clone(),
        old.trace().clone(),
        measured(1.0e-6),
    );
    older.grim_version = "0.0.9+0000000000000000".into();
    assert!(!older.is_current());
    db.insert(&older).unwrap();
    // Only an older record: it is used (nothing better is known).
    match apply_best(&db, &w, &a76(), &pixel).unwrap() {
        ApplyBest::Tuned { record, .. } => assert_eq!(record.record, older),
        other => panic!("{other:?}"),
    }
    // A slower current record wins.
    let current = Record::new(
        wr,
        a76(),
        pixel.clone(),
        schedule::Trace::new(),
        measured(5.0e-6),
    );
    assert!(current.is_current());
    db.insert(&current).unwrap();
    let target = a76();
    let q = query(&key, &target, &pixel);
    assert_eq!(db.best(&q).unwrap().unwrap().record, older);
    assert_eq!(
        db.best_where(&q, Record::is_current)
            .unwrap()
            .unwrap()
            .record,
        current
    );
    match apply_best(&db, &w, &a76(), &pixel).unwrap() {
        ApplyBest::Tuned { record, schedule } => {
            assert_eq!(record.record, current);
            assert!(schedule.trace().instructions.is_empty());
        }
        other => panic!("{other:?}"),
    }
    // Merging the same trace measured by both: the current record stays, in either
    // input order.
    let mut same_trace_old = current.clone();
    same_trace_old.grim_version = "0.0.9+0000000000000000".into();
    same_trace_old.result = measured(1.0e-7);
    for pair in [
        vec![same_trace_old.clone(), current.clone()],
        vec![current.clone(), same_trace_old.clone()],
    ] {
        assert_eq!(
            tuning_logs::export::merge_records(pair),
            vec![current.clone()]
        );
    }
}
