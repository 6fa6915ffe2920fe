//! The confirmation round that ends a tuning run: the best candidates re-measured side
//! by side (every round checked against the interpreter), stored as confirmed records
//! that decide apply-best over a lucky earlier measurement, printed by `grim-tune
//! tune`, and skipped when turned off.

use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tir::workload::Workload;
use tuner::confirm::combine;
use tuner::db_store::DbStore;
use tuner::measure::{Limits, LocalRunner, Measurement};
use tuner::tune::{tune, NoProgress, Store, TuneOptions};
use tuning_logs::{apply_best, ApplyBest, Database, DeviceIdentity, Query, Record, Target};

const SPEC: &str = "bcr-fc:M=64,K=64,N=8,block=16x16,sparsity=0.8,seed=2";

fn runner() -> LocalRunner {
    let mut l = Limits {
        threads: Some(1),
        ..Limits::default()
    };
    l.protocol.repeat = 3;
    l.protocol.min_repeat_ms = 0.5;
    l.run_timeout = Duration::from_secs(20);
    LocalRunner::new(l)
}

fn opts(confirm: usize, tag: &str) -> TuneOptions {
    TuneOptions {
        trials: 8,
        batch: 4,
        confirm,
        confirm_rounds: 3,
        work_dir: std::env::temp_dir().join(format!("grim-confirm-{tag}-{}", std::process::id())),
        ..TuneOptions::default()
    }
}

fn m(median: f64, min: f64, mean: f64, repeat: u64) -> Measurement {
    Measurement {
        median,
        min,
        mean,
        stddev: 0.0,
        number: 10,
        repeat,
        instructions: None,
        max_rel_error: median * 1e-3,
    }
}

/// A record of `trace` on `w` (1 thread, this host) measured once at 1 ns: the lucky
/// single measurement of an earlier run.
fn impossibly_fast(w: &Workload, trace: schedule::Trace) -> Record {
    Record::new(
        tuning_logs::WorkloadRef::of(w),
        Target::Host { threads: Some(1) },
        DeviceIdentity::host(),
        trace,
        tuning_logs::Outcome::Measured(tuning_logs::Measurement {
            median_s: 1e-9,
            min_s: 1e-9,
            mean_s: 1e-9,
            stddev_s: 0.0,
            number: 1,
            repeat: 1,
            instructions: None,
        }),
    )
}

#[test]
fn combine_takes_the_median_of_the_rounds() {
    let c = combine(&[
        m(3.0, 2.5, 3.1, 5),
        m(9.0, 8.0, 9.5, 5),
        m(4.0, 3.5, 4.0, 5),
    ])
    .unwrap();
    assert_eq!(c.median, 4.0);
    assert_eq!(c.min, 2.5);
    assert!((c.mean - (3.1 + 9.5 + 4.0) / 3.0).abs() < 1e-12);
    assert_eq!(c.repeat, 15);
    assert_eq!(c.number, 10);
    // The spread of the rounds' medians: population standard deviation of 3, 9, 4.
    let mean = 16.0 / 3.0;
    let sd = (((3.0f64 - mean).powi(2) + (9.0 - mean).powi(2) + (4.0 - mean).powi(2)) / 3.0).sqrt();
    assert!((c.stddev - sd).abs() < 1e-12);
    assert!((c.max_rel_error - 9.0e-3).abs() < 1e-15);
    let even = combine(&[m(2.0, 1.0, 2.0, 3), m(6.0, 5.0, 6.0, 3)]).unwrap();
    assert_eq!(even.median, 4.0);
    assert!(combine(&[]).is_none());
}

#[test]
fn a_round_overrules_a_lucky_stored_record_and_apply_best_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::open(&dir.path().join("db")).unwrap());
    let w = Workload::from_spec_str(SPEC).unwrap();
    let runner = runner();
    // An earlier "run" measured the default schedule once, impossibly fast.
    let lucky = impossibly_fast(&w, schedule::Trace::new());
    db.insert(&lucky).unwrap();
    let mut store = DbStore::new(db.clone(), &w, &runner).unwrap();
    assert_eq!(
        store.preferred().map(|(t, _)| t.instructions.len()),
        Some(0),
        "before the round the lucky record is the best"
    );
    let report = tune(
        &w,
        &runner,
        &mut store,
        &opts(3, "db"),
        &NoProgress,
        &AtomicBool::new(false),
    )
    .unwrap();
    let round = report.confirmation.as_ref().expect("a round ran");
    assert_eq!(round.rounds, 3);
    assert_eq!(
        round.candidates.len() + round.dropped.len(),
        3,
        "{:?}",
        report.confirmation_note
    );
    assert!(round.dropped.is_empty(), "{:?}", round.dropped);
    // The stored best (the default schedule, also the run's first trial) is among the
    // candidates, with the cost it was found with.
    let default = round
        .candidates
        .iter()
        .find(|c| c.trace.instructions.is_empty())
        .expect("the stored best is re-measured");
    assert!(default.measurement.median > 1e-8, "re-measured, not copied");
    for c in &round.candidates {
        assert_eq!(c.round_medians.len(), 3);
        assert!(c.measurement.max_rel_error <= 1e-4);
        let mut sorted = c.round_medians.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(c.measurement.median, sorted[1]);
    }
    for pair in round.candidates.windows(2) {
        assert!(pair[0].measurement.cost() <= pair[1].measurement.cost());
    }
    let winner = round.best().unwrap();
    // The database now prefers the round's winner over the lucky record.
    let key = w.key();
    let target = Target::Host { threads: Some(1) };
    let device = DeviceIdentity::host();
    let q = Query {
        workload: &key,
        target: &target,
        device: &device,
    };
    let confirmed: Vec<_> = db
        .records_of(&q)
        .unwrap()
        .into_iter()
        .filter(|s| s.record.confirmation.is_some())
        .collect();
    assert_eq!(confirmed.len(), round.candidates.len());
    match apply_best(&db, &w, &target, &device).unwrap() {
        ApplyBest::Tuned { record, schedule } => {
            assert_eq!(record.record.trace, winner.trace);
            assert_eq!(record.record.median_s(), Some(winner.measurement.median));
            assert_eq!(schedule.trace(), &winner.trace);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.best_cost(), Some(winner.measurement.median));
    // The lucky record is kept (nothing stored is lost), only no longer chosen.
    assert!(db.records_of(&q).unwrap().iter().any(|s| s.record == lucky));
}

#[test]
fn a_stored_trace_that_no_longer_replays_is_dropped_from_the_round() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::open(&dir.path().join("db")).unwrap());
    let w = Workload::from_spec_str(SPEC).unwrap();
    let runner = runner();
    // A record whose trace names a weight this workload does not have, impossibly
    // fast: the store's best before the round.
    let bogus = schedule::Trace::from_json(
        r#"{"format":1,"instructions":[{"op":"vectorize_rows","weight":"W_gone","lanes":4,"masked":false}]}"#,
    )
    .unwrap();
    let record = impossibly_fast(&w, bogus.clone());
    db.insert(&record).unwrap();
    let mut store = DbStore::new(db.clone(), &w, &runner).unwrap();
    assert_eq!(store.preferred().map(|(t, _)| t), Some(bogus.clone()));
    let report = tune(
        &w,
        &runner,
        &mut store,
        &opts(3, "replay"),
        &NoProgress,
        &AtomicBool::new(false),
    )
    .unwrap();
    let round = report.confirmation.as_ref().expect("a round ran");
    assert_eq!(round.dropped.len(), 1, "{:?}", round.dropped);
    assert!(round.dropped[0].1.message.contains("does not replay"));
    assert_eq!(round.candidates.len(), 2);
    // The round's winner replaces the unusable record as the best.
    match apply_best(
        &db,
        &w,
        &Target::Host { threads: Some(1) },
        &DeviceIdentity::host(),
    )
    .unwrap()
    {
        ApplyBest::Tuned { record, .. } => {
            assert_eq!(record.record.trace, round.best().unwrap().trace)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_round_when_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::open(&dir.path().join("db")).unwrap());
    let w = Workload::from_spec_str(SPEC).unwrap();
    let runner = runner();
    let mut store = DbStore::new(db.clone(), &w, &runner).unwrap();
    let report = tune(
        &w,
        &runner,
        &mut store,
        &opts(1, "off"),
        &NoProgress,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(report.confirmation.is_none());
    assert_eq!(db.len(), report.trials.len());
    assert!(db.iter().all(|s| s.unwrap().record.confirmation.is_none()));
}

#[test]
fn grim_tune_prints_the_round_and_db_show_reports_its_winner() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let out = Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args([
            "tune",
            "--workload",
            SPEC,
            "--trials",
            "6",
            "--threads",
            "1",
        ])
        .args([
            "--no-dense",
            "--confirm",
            "3",
            "--confirm-rounds",
            "2",
            "--json",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sums: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let s = &sums[0];
    let round = &s["confirmation"];
    assert_eq!(round["rounds"], 2);
    let winner = &round["candidates"][0];
    assert_eq!(winner["round_medians"].as_array().unwrap().len(), 2);
    let best = s["best_cost"].as_f64().unwrap();
    assert_eq!(winner["measurement"]["median"].as_f64().unwrap(), best);
    let best_trace: serde_json::Value =
        serde_json::from_str(s["best_trace"].as_str().unwrap()).unwrap();
    assert_eq!(best_trace, winner["trace"]);
    // The table form says so too.
    let table = Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args([
            "tune",
            "--workload",
            SPEC,
            "--trials",
            "7",
            "--threads",
            "1",
        ])
        .args(["--no-dense", "--confirm", "3", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{text}");
    assert!(
        text.contains(
            "confirmation round: the 3 best candidates measured again in turn, 5 time(s) each"
        ),
        "{text}"
    );
    assert!(
        text.contains("| confirmed | when found | rounds | schedule |"),
        "{text}"
    );
    let show = Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args(["db", "show", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(show.status.success(), "{shown}");
    // The second run's round (it re-measured the first run's winner) decides `db show`.
    let best_line = text
        .lines()
        .find(|l| l.starts_with("| bcr-fc:M=64,K=64,N=8,"))
        .unwrap()
        .to_string();
    let best_us = best_line.split('|').nth(6).unwrap().trim().to_string();
    let fields: Vec<String> = shown
        .lines()
        .find(|l| l.starts_with("bcr-fc:"))
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let (value, unit) = (&fields[fields.len() - 3], &fields[fields.len() - 2]);
    let scale = match unit.as_str() {
        "ns" => 1e-3,
        "us" => 1.0,
        "ms" => 1e3,
        other => panic!("unit {other} in {shown}"),
    };
    let shown_us = value.parse::<f64>().unwrap() * scale;
    let best_us: f64 = best_us.trim_end_matches(" us").parse().unwrap();
    assert!(
        (shown_us - best_us).abs() < 0.01,
        "show {shown_us} vs tune {best_us}\n{shown}\n{text}"
    );
}
