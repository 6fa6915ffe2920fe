//! Which record is the best once tuning runs end with confirmation rounds: the rule of
//! `tuning_logs::prefer`, checked against the best index where no round exists, and
//! through apply-best, `db show`'s summary, best-only export, merge and import.

mod common;

use common::*;
use proptest::prelude::*;
use tuning_logs::{
    apply_best, export, preferred, summarize, ApplyBest, Confirmation, Database, DeviceIdentity,
    ExportFilter, Query, Record, Target,
};

/// A measured record of workload 0 on the host, trace `tag`, median `us`
/// microseconds, measured at `t` (milliseconds after a fixed epoch).
fn at(tag: i64, us: f64, t: u64) -> Record {
    let mut r = record(
        0,
        Target::HOST,
        &device("Pixel 7"),
        tag,
        measured(us * 1e-6),
    );
    r.time_unix_ms = 1_700_000_000_000 + t;
    r
}

/// The same, as a record of the round that started at `round`.
fn confirmed(tag: i64, us: f64, round: u64, t: u64) -> Record {
    let mut r = at(tag, us, t);
    r.confirmation = Some(Confirmation {
        round_unix_ms: 1_700_000_000_000 + round,
        candidates: 3,
        rounds: 3,
    });
    r
}

fn pick(records: &[Record]) -> Option<i64> {
    preferred(records, |r| r).map(|i| tag_of(&records[i]))
}

fn tag_of(r: &Record) -> i64 {
    match r.trace.instructions.first() {
        None => 0,
        Some(schedule::Instruction::SampleCategorical { candidates, .. }) => candidates[0],
        Some(other) => panic!("unexpected instruction {other:?}"),
    }
}

#[test]
fn a_round_supersedes_a_lucky_single_measurement_before_it() {
    // Trace 1 was measured once at 3 us (lucky); side by side it runs 4.2 us and trace
    // 2 3.8 us.
    let records = vec![
        at(1, 3.0, 10),
        at(2, 5.0, 20),
        confirmed(1, 4.2, 30, 31),
        confirmed(2, 3.8, 30, 32),
    ];
    assert_eq!(pick(&records), Some(2));
    // Without the round the lucky record wins.
    assert_eq!(pick(&records[..2]), Some(1));
}

#[test]
fn the_newest_round_supersedes_older_rounds() {
    let records = vec![
        confirmed(1, 3.0, 10, 11),
        confirmed(2, 3.5, 10, 12),
        // A later round on a slower moment: every time is higher, the order flipped.
        confirmed(1, 6.0, 50, 51),
        confirmed(2, 5.0, 50, 52),
    ];
    assert_eq!(pick(&records), Some(2));
}

#[test]
fn records_measured_after_the_newest_round_still_compete() {
    let mut records = vec![confirmed(1, 4.0, 10, 11), confirmed(2, 4.5, 10, 12)];
    // A later run without a round finds trace 3 faster than the round's winner.
    records.push(at(3, 3.0, 100));
    assert_eq!(pick(&records), Some(3));
    // Slower, it does not displace the winner.
    records.pop();
    records.push(at(3, 5.0, 100));
    assert_eq!(pick(&records), Some(1));
    // Records from before the round never come back, however fast.
    records.push(at(4, 0.5, 5));
    assert_eq!(pick(&records), Some(1));
}

#[test]
fn failed_and_older_code_records_follow_the_existing_rules() {
    let mut old = confirmed(1, 1.0, 80, 81);
    old.grim_version = "0.0.9+0000000000000000".into();
    let mut failed_rec = at(2, 1.0, 90);
    failed_rec.result = failed(tuning_logs::ErrorKind::RunTimeout);
    // Only older-code and failed records: the older-code one (its round counts among
    // them).
    assert_eq!(pick(&[old.clone(), failed_rec.clone()]), Some(1));
    // A current record, slower and unconfirmed, wins over an older-code round.
    let records = vec![old, failed_rec, at(3, 9.0, 5)];
    assert_eq!(pick(&records), Some(3));
    // Ties go to the earlier record.
    assert_eq!(pick(&[at(5, 2.0, 1), at(6, 2.0, 2)]), Some(5));
    assert_eq!(pick(&[]), None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Without rounds the rule is the database's best index: current records first,
    /// lowest median, ties to the earlier insert.
    #[test]
    fn without_rounds_it_is_the_best_index(
        specs in prop::collection::vec((1i64..6, 1u32..5, any::<bool>(), any::<bool>()), 1..24)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("db")).unwrap();
        for (i, (tag, us, current, ok)) in specs.iter().enumerate() {
            let mut r = at(*tag, f64::from(*us), i as u64);
            if !current {
                r.grim_version = "0.0.9+0000000000000000".into();
            }
            if !ok {
                r.result = failed(tuning_logs::ErrorKind::WrongResult);
            }
            db.insert_unflushed(&r).unwrap();
        }
        let key = workload(0).key();
        let (t, d) = (Target::HOST, device("Pixel 7"));
        let q = Query { workload: &key, target: &t, device: &d };
        let by_index = match db.best_where(&q, Record::is_current).unwrap() {
            Some(s) => Some(s),
            None => db.best(&q).unwrap(),
        };
        let by_rule = db.preferred_best(&q).unwrap();
        prop_assert_eq!(by_rule.map(|s| s.seq), by_index.map(|s| s.seq));
    }

    /// Records measured before the newest round change nothing, whatever their times;
    /// the choice is always a record of that round or one measured after it.
    #[test]
    fn records_before_the_newest_round_change_nothing(
        round in prop::collection::vec(1u32..9, 2..5),
        before in prop::collection::vec((1i64..9, 1u32..9), 0..8),
        after in prop::collection::vec((1i64..9, 1u32..9), 0..3),
    ) {
        let mut records: Vec<Record> = round
            .iter()
            .enumerate()
            .map(|(i, us)| confirmed(10 + i as i64, f64::from(*us), 100, 101 + i as u64))
            .collect();
        records.extend(after.iter().enumerate().map(|(i, (tag, us))| at(*tag, f64::from(*us), 200 + i as u64)));
        let chosen = pick(&records);
        let mut with_before = records.clone();
        with_before.extend(before.iter().enumerate().map(|(i, (tag, us))| at(20 + tag, f64::from(*us) * 0.1, i as u64)));
        prop_assert_eq!(pick(&with_before), chosen);
        let i = preferred(&with_before, |r| r).unwrap();
        let r = &with_before[i];
        prop_assert!(r.confirmation.is_some() || r.time_unix_ms > 1_700_000_000_100);
    }
}

/// A database with a lucky single measurement of trace 1 and a round preferring
/// trace 2, for a real workload so apply-best can replay the trace.
fn database_with_a_round(dir: &std::path::Path) -> (Database, tir::workload::Workload) {
    let w = tir::workload::Workload::from_spec_str("fc:M=16,K=16,N=4").unwrap();
    let mut s1 = schedule::Schedule::from_workload(&w).unwrap();
    s1.parallel("m").unwrap();
    let db = Database::open(&dir.join("db")).unwrap();
    let mk = |trace: schedule::Trace, us: f64, t: u64, round: Option<u64>| {
        let mut r = Record::new(
            tuning_logs::WorkloadRef::of(&w),
            Target::HOST,
            DeviceIdentity::host(),
            trace,
            measured(us * 1e-6),
        );
        r.time_unix_ms = 1_700_000_000_000 + t;
        r.confirmation = round.map(|x| Confirmation {
            round_unix_ms: 1_700_000_000_000 + x,
            candidates: 2,
            rounds: 3,
        });
        r
    };
    db.insert(&mk(s1.trace().clone(), 1.0, 10, None)).unwrap();
    db.insert(&mk(schedule::Trace::new(), 3.0, 20, None))
        .unwrap();
    db.insert(&mk(s1.trace().clone(), 2.5, 31, Some(30)))
        .unwrap();
    db.insert(&mk(schedule::Trace::new(), 2.0, 32, Some(30)))
        .unwrap();
    (db, w)
}

#[test]
fn apply_best_show_and_best_only_export_follow_the_round() {
    let dir = tempfile::tempdir().unwrap();
    let (db, w) = database_with_a_round(dir.path());
    match apply_best(&db, &w, &Target::HOST, &DeviceIdentity::host()).unwrap() {
        ApplyBest::Tuned { record, schedule } => {
            assert!(record.record.confirmation.is_some());
            assert!(
                schedule.trace().instructions.is_empty(),
                "the round's winner is the default"
            );
            assert_eq!(record.record.median_s(), Some(2.0e-6));
        }
        other => panic!("{other:?}"),
    }
    let sums = summarize(&db).unwrap();
    assert_eq!(sums.len(), 1);
    assert_eq!(sums[0].best_s, Some(2.0e-6));
    assert_eq!(sums[0].trials, 4);
    assert_eq!(sums[0].default_s, Some(2.0e-6));
    let out = dir.path().join("best.jsonl");
    let n = export(
        &db,
        &out,
        &ExportFilter {
            best_only: true,
            ..ExportFilter::default()
        },
    )
    .unwrap();
    assert_eq!(n, 1);
    let text = std::fs::read_to_string(&out).unwrap();
    let line = text.lines().nth(1).unwrap();
    assert!(
        line.contains("\"confirmation\":{\"round_unix_ms\":1700000000030"),
        "{line}"
    );
    // Importing the shipped file elsewhere gives the same choice.
    let db2 = Database::open(&dir.path().join("db2")).unwrap();
    tuning_logs::import(&db2, &out, false).unwrap();
    match apply_best(&db2, &w, &Target::HOST, &DeviceIdentity::host()).unwrap() {
        ApplyBest::Tuned { record, .. } => assert_eq!(record.record.median_s(), Some(2.0e-6)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn merge_keeps_a_rounds_record_beside_the_single_measurement_of_the_same_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (db, w) = database_with_a_round(dir.path());
    drop(db);
    let out = dir.path().join("merged.jsonl");
    let report = tuning_logs::merge(&[&dir.path().join("db")], &out).unwrap();
    assert_eq!(report.written, 4, "no record of the round is merged away");
    let merged = Database::open(&dir.path().join("merged-db")).unwrap();
    tuning_logs::import(&merged, &out, false).unwrap();
    match apply_best(&merged, &w, &Target::HOST, &DeviceIdentity::host()).unwrap() {
        ApplyBest::Tuned { record, .. } => assert_eq!(record.record.median_s(), Some(2.0e-6)),
        other => panic!("{other:?}"),
    }
}

/// A change that makes a record invalid.
type Spoil = Box<dyn Fn(&mut Record)>;

#[test]
fn bad_confirmations_are_refused_naming_the_field() {
    let cases: Vec<(Spoil, &str)> = vec![
        (
            Box::new(|r| r.confirmation.as_mut().unwrap().candidates = 1),
            "confirmation.candidates",
        ),
        (
            Box::new(|r| r.confirmation.as_mut().unwrap().rounds = 0),
            "confirmation.rounds",
        ),
        (
            Box::new(|r| r.confirmation.as_mut().unwrap().round_unix_ms = r.time_unix_ms + 1),
            "confirmation.round_unix_ms",
        ),
        (
            Box::new(|r| r.result = failed(tuning_logs::ErrorKind::RunError)),
            "confirmation",
        ),
    ];
    for (spoil, field) in cases {
        let mut r = confirmed(1, 2.0, 10, 11);
        r.validate().unwrap();
        spoil(&mut r);
        let e = r.validate().unwrap_err().to_string();
        assert!(e.contains(field), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("db")).unwrap();
        assert!(db.insert(&r).is_err(), "the database refuses it too");
        // In an export file, the line is refused with the field.
        let file = dir.path().join("bad.jsonl");
        let header = format!(
            "{{\"kind\":\"grim-tuning-log\",\"format\":1,\"grim_version\":\"{}\",\"records\":1}}",
            tuning_logs::GRIM_VERSION
        );
        std::fs::write(
            &file,
            format!("{header}\n{}\n", serde_json::to_string(&r).unwrap()),
        )
        .unwrap();
        let e = tuning_logs::import(&db, &file, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains(field) && e.contains("line 2"), "{e}");
        assert!(db.is_empty());
    }
}

#[test]
fn records_without_a_confirmation_keep_their_json() {
    let r = at(1, 2.0, 5);
    let json = serde_json::to_string(&r).unwrap();
    assert!(!json.contains("confirmation"), "{json}");
    let back: Record = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    let c = confirmed(1, 2.0, 5, 6);
    let back: Record = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
    assert_eq!(back, c);
}
