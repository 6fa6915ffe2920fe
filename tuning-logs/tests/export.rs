//! Export files: round trip, merge, and every kind of bad input rejected with its line
//! number and reason, leaving the database untouched.

mod common;

use common::*;
use std::io::Write;
use std::path::Path;
use tuning_logs::{
    export, import, merge, Database, ErrorKind, ExportError, ExportFilter, Record, Target,
};

fn filled(dir: &Path) -> Database {
    let db = Database::open(&dir.join("db")).unwrap();
    let (pixel, galaxy) = (device("Pixel 7"), device("Galaxy S21"));
    let mut tag = 0;
    for w in 0..3 {
        for (t, d) in [(a76(), &pixel), (a76(), &galaxy), (Target::HOST, &pixel)] {
            for m in [3e-6, 1e-6, 2.000_000_000_000_1e-6, 1e-6] {
                db.insert_unflushed(&record(w, t.clone(), d, tag, measured(m)))
                    .unwrap();
                tag += 1;
            }
            db.insert_unflushed(&record(w, t.clone(), d, tag, failed(ErrorKind::BuildError)))
                .unwrap();
            tag += 1;
        }
    }
    db.flush().unwrap();
    db
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn export_import_export_gives_the_identical_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled(dir.path());
    let first = dir.path().join("first.jsonl");
    assert_eq!(export(&db, &first, &ExportFilter::default()).unwrap(), 45);
    let fresh = Database::open(&dir.path().join("fresh")).unwrap();
    let report = import(&fresh, &first, false).unwrap();
    assert_eq!((report.imported, report.duplicates), (45, 0));
    let second = dir.path().join("second.jsonl");
    export(&fresh, &second, &ExportFilter::default()).unwrap();
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap()
    );
    // Importing again adds nothing.
    let again = import(&fresh, &first, false).unwrap();
    assert_eq!((again.imported, again.duplicates), (0, 45));
    assert_eq!(fresh.len(), 45);
    // The header is versioned and counts the records.
    let header = &lines(&first)[0];
    assert!(
        header.starts_with("{\"kind\":\"grim-tuning-log\",\"format\":1,"),
        "{header}"
    );
    assert!(header.ends_with("\"records\":45}"), "{header}");
    // Exports never overwrite.
    assert!(matches!(
        export(&db, &first, &ExportFilter::default()).unwrap_err(),
        ExportError::OutputExists { .. }
    ));
}

#[test]
fn export_filters_and_best_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled(dir.path());
    let out = |name: &str, f: ExportFilter| {
        let p = dir.path().join(name);
        export(&db, &p, &f).unwrap();
        let l = lines(&p);
        l[1..]
            .iter()
            .map(|l| serde_json::from_str::<Record>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let host = out(
        "host.jsonl",
        ExportFilter {
            target: Some(Target::HOST),
            ..ExportFilter::default()
        },
    );
    assert_eq!(host.len(), 15);
    assert!(host.iter().all(|r| r.target == Target::HOST));
    let galaxy_id = device("Galaxy S21").id_hex();
    for d in [galaxy_id.as_str(), "Galaxy S21"] {
        let g = out(
            &format!("g-{}.jsonl", d.len()),
            ExportFilter {
                device: Some(d.to_string()),
                ..ExportFilter::default()
            },
        );
        assert_eq!(g.len(), 15);
        assert!(g.iter().all(|r| r.device.model == "Galaxy S21"));
    }
    let best = out(
        "best.jsonl",
        ExportFilter {
            best_only: true,
            ..ExportFilter::default()
        },
    );
    assert_eq!(best.len(), 9);
    // The best of each group is the first 1e-6 (ties: the earlier record).
    assert!(best.iter().all(|r| r.median_s() == Some(1e-6)));
    assert!(best.iter().all(|r| r.time_unix_ms % 5 == 1), "{best:?}");
}

#[test]
fn merge_dedups_by_workload_target_device_and_trace() {
    let dir = tempfile::tempdir().unwrap();
    let pixel = device("Pixel 7");
    let a = Database::open(&dir.path().join("a")).unwrap();
    let b = Database::open(&dir.path().join("b")).unwrap();
    // Same trace measured in both: the faster measurement is kept.
    a.insert(&record(0, a76(), &pixel, 1, measured(2e-6)))
        .unwrap();
    b.insert(&record(0, a76(), &pixel, 1, measured(1.5e-6)))
        .unwrap();
    // Same trace, one failed: the measured one is kept.
    a.insert(&record(0, a76(), &pixel, 2, failed(ErrorKind::RunTimeout)))
        .unwrap();
    b.insert(&record(0, a76(), &pixel, 2, measured(9e-6)))
        .unwrap();
    // Same trace on another target or device, or another workload: all kept.
    b.insert(&record(0, Target::HOST, &pixel, 1, measured(1e-6)))
        .unwrap();
    b.insert(&record(0, a76(), &device("Galaxy S21"), 1, measured(1e-6)))
        .unwrap();
    b.insert(&record(1, a76(), &pixel, 1, measured(1e-6)))
        .unwrap();
    // Identical records in both.
    a.insert(&record(2, a76(), &pixel, 3, measured(1e-6)))
        .unwrap();
    b.insert(&record(2, a76(), &pixel, 3, measured(1e-6)))
        .unwrap();
    let (fa, fb) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    export(&a, &fa, &ExportFilter::default()).unwrap();
    export(&b, &fb, &ExportFilter::default()).unwrap();
    drop((a, b));

    let ab = dir.path().join("ab.jsonl");
    let report = merge(&[&fa, &fb], &ab).unwrap();
    assert_eq!((report.read, report.written), (9, 6));
    // Order of inputs does not matter; databases merge like files.
    let ba = dir.path().join("ba.jsonl");
    merge(&[&dir.path().join("b"), &dir.path().join("a")], &ba).unwrap();
    assert_eq!(std::fs::read(&ab).unwrap(), std::fs::read(&ba).unwrap());
    let merged: Vec<Record> = lines(&ab)[1..]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |w: u64, t: &Target, dev: &str, tag: i64| -> Vec<&Record> {
        merged
            .iter()
            .filter(|r| {
                r.workload == workload(w)
                    && r.target == *t
                    && r.device.model == dev
                    && r.trace == trace(tag)
            })
            .collect()
    };
    assert_eq!(find(0, &a76(), "Pixel 7", 1)[0].median_s(), Some(1.5e-6));
    assert_eq!(find(0, &a76(), "Pixel 7", 2)[0].median_s(), Some(9e-6));
    assert_eq!(find(2, &a76(), "Pixel 7", 3).len(), 1);
    // Into a database.
    let c = dir.path().join("c");
    merge(&[&fa, &fb], &c).unwrap();
    assert_eq!(Database::open(&c).unwrap().check().unwrap(), 6);
}

/// Writes `content` as a file and imports it into a database holding one record;
/// returns the error text and checks the database is untouched.
fn rejected(name: &str, content: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("db")).unwrap();
    let keep = record(5, a76(), &device("Pixel 7"), 77, measured(1e-6));
    db.insert(&keep).unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    let e = import(&db, &path, false).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(name), "{msg}");
    assert_eq!(db.len(), 1, "{name}: database changed");
    assert_eq!(db.check().unwrap(), 1);
    assert_eq!(db.iter().next().unwrap().unwrap().record, keep);
    msg
}

fn good_lines() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let db = filled(dir.path());
    let p = dir.path().join("good.jsonl");
    export(&db, &p, &ExportFilter::default()).unwrap();
    lines(&p)
}

fn file(lines: &[String]) -> Vec<u8> {
    let mut s = lines.join("\n");
    s.push('\n');
    s.into_bytes()
}

#[test]
fn truncated_line_is_rejected_with_its_number() {
    let mut l = good_lines();
    let n = l.len();
    let half = l[n - 1].len() / 2;
    l[n - 1].truncate(half);
    let msg = rejected("truncated.jsonl", &file(&l));
    assert!(
        msg.contains(&format!("line {n}: EOF while parsing")),
        "{msg}"
    );
    // A file cut at a line boundary is caught by the header's count.
    let mut l = good_lines();
    l.truncate(10);
    let msg = rejected("short.jsonl", &file(&l));
    assert!(
        msg.contains("line 11: end of file after 9 record line(s), but the header announces 45"),
        "{msg}"
    );
}

#[test]
fn wrong_versions_are_rejected_naming_both() {
    let mut l = good_lines();
    l[0] = l[0].replace("\"format\":1", "\"format\":2");
    let msg = rejected("newer.jsonl", &file(&l));
    assert!(
        msg.contains("line 1: file format version 2 is newer than this grim supports (version 1)"),
        "{msg}"
    );
    let mut l = good_lines();
    l[3] = l[3].replacen("\"format\":1", "\"format\":3", 1);
    let msg = rejected("newer-record.jsonl", &file(&l));
    assert!(
        msg.contains(
            "line 4: record format version 3 is newer than this grim supports (version 1)"
        ),
        "{msg}"
    );
    let mut l = good_lines();
    l[2] = l[2].replace("\"trace\":{\"format\":1", "\"trace\":{\"format\":9");
    let msg = rejected("newer-trace.jsonl", &file(&l));
    assert!(
        msg.contains("line 3: field `trace.format`: trace format version 9"),
        "{msg}"
    );
}

#[test]
fn wrong_types_and_values_name_the_field() {
    let mut l = good_lines();
    l[1] = l[1].replace("\"number\":10", "\"number\":\"ten\"");
    l[5] = l[5].replace("\"cores\":8", "\"cores\":-1");
    l[7] = l[7].replace(
        "\"target\":\"aarch64-neon -mcpu=cortex-a76\"",
        "\"target\":\"riscv\"",
    );
    let failed_line = l
        .iter()
        .enumerate()
        .position(|(i, x)| i > 15 && x.contains("build_error"))
        .unwrap();
    l[failed_line] = l[failed_line].replace("\"kind\":\"build_error\"", "\"kind\":\"exploded\"");
    l[11] = l[11].replace("\"median_s\":", "\"median_s\":-");
    l[13] = l[13].replace("\"workload\":{", "\"workload\":{\"structure\":\"zz\",");
    l[15] = "[1,2,3]".to_string();
    let msg = rejected("types.jsonl", &file(&l));
    let kind_line = format!(
        "line {}: field `result.error.kind`: unknown variant `exploded`",
        failed_line + 1
    );
    for want in [
        "line 2: field `result.measured.number`: invalid type: string \"ten\", expected u32",
        "line 6: field `device.cores`: invalid value: integer `-1`, expected u32",
        "line 8: field `target`: `riscv`: expected `host [-threads=N]`",
        kind_line.as_str(),
        "line 12: field `result.measured.median_s`",
        "line 14: field `workload`: duplicate field `structure`",
        "line 16: expected a JSON object",
        "7 bad line(s), nothing imported",
    ] {
        assert!(msg.contains(want), "missing {want:?} in:\n{msg}");
    }
}

#[test]
fn unknown_fields_are_rejected_anywhere() {
    let mut l = good_lines();
    l[1] = l[1].replacen('{', "{\"extra\":1,", 1);
    l[2] = l[2].replace("\"device\":{", "\"device\":{\"imei\":\"x\",");
    l[3] = l[3].replace("\"decision\":1}", "\"decision\":1,\"note\":\"hi\"}");
    l[4] = l[4].replace("\"trace\":{", "\"trace\":{\"by\":\"me\",");
    let msg = rejected("unknown.jsonl", &file(&l));
    assert!(
        msg.contains("line 2: field `extra`: unknown field `extra`"),
        "{msg}"
    );
    assert!(
        msg.contains("line 3: field `device.imei`: unknown field `imei`"),
        "{msg}"
    );
    assert!(
        msg.contains("line 4: unknown field `trace.instructions[0].note`"),
        "{msg}"
    );
    assert!(msg.contains("line 5: unknown field `trace.by`"), "{msg}");
}

#[test]
fn a_100_mb_line_is_rejected_without_reading_it_into_memory() {
    let l = good_lines();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(f, "{}", l[0]).unwrap();
        writeln!(f, "{}", l[1]).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        f.write_all(b"{\"format\":1,\"workload\":\"").unwrap();
        for _ in 0..100 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\"}\n").unwrap();
        for line in &l[3..] {
            writeln!(f, "{line}").unwrap();
        }
    }
    let content = std::fs::read(&path).unwrap();
    assert!(content.len() > 100 << 20);
    let msg = rejected("huge.jsonl", &content);
    assert!(
        msg.contains("line 3: line is 104857626 bytes long, more than the limit of 8388608 bytes"),
        "{msg}"
    );
    assert!(msg.contains("1 bad line(s)"), "{msg}");
}

#[test]
fn binary_garbage_is_rejected() {
    let mut l: Vec<u8> = file(&good_lines()[..5]);
    l.extend_from_slice(&[0xff, 0xfe, 0x00, 0x9c, b'{', 0x80, b'\n']);
    l.extend_from_slice(b"\x00\x00\x00\n");
    let msg = rejected("garbage.jsonl", &l);
    assert!(
        msg.contains("line 6: not UTF-8 text (invalid byte at column 1)"),
        "{msg}"
    );
    assert!(msg.contains("line 7: "), "{msg}");
    // Garbage instead of a header.
    let msg = rejected("garbage-header.jsonl", b"\x7fELF\x02\x01\x01\x00\n");
    assert!(
        msg.contains("line 1: not a grim tuning log header"),
        "{msg}"
    );
    let msg = rejected("empty.jsonl", b"");
    assert!(msg.contains("empty file"), "{msg}");
}

#[test]
fn skip_bad_imports_the_good_lines() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("db")).unwrap();
    let mut l = good_lines();
    l[4] = "{\"format\":1".into();
    l[9] = "garbage".into();
    let path = dir.path().join("some-bad.jsonl");
    std::fs::write(&path, file(&l)).unwrap();
    let report = import(&db, &path, true).unwrap();
    assert_eq!(report.imported, 43);
    let bad: Vec<usize> = report.skipped.iter().map(|e| e.line).collect();
    assert_eq!(bad, [5, 10]);
    assert_eq!(db.check().unwrap(), 43);
}

mod merge_props {
    use super::common::*;
    use proptest::prelude::*;
    use tuning_logs::export::merge_records;
    use tuning_logs::{ErrorKind, Record, Target};

    /// Workload, host target?, Pixel?, trace tag, median (None: failed), time.
    type Spec = (u64, bool, bool, i64, Option<u32>, u64);

    fn arb() -> impl Strategy<Value = Vec<Spec>> {
        prop::collection::vec(
            (
                0u64..2,
                any::<bool>(),
                any::<bool>(),
                0i64..4,
                prop::option::of(1u32..4),
                0u64..3,
            ),
            0..30,
        )
    }

    fn build(specs: &[Spec]) -> Vec<Record> {
        specs
            .iter()
            .map(|&(w, host, pixel, tag, m, time)| {
                let t = if host { Target::HOST } else { a76() };
                let d = device(if pixel { "Pixel 7" } else { "Galaxy S21" });
                let out = m.map_or(failed(ErrorKind::RunError), |m| {
                    measured(f64::from(m) * 1e-6)
                });
                let mut r = record(w, t, &d, tag, out);
                r.time_unix_ms = time;
                r
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

        /// One record per identity, the fastest (measured beats failed), independent of
        /// input order.
        #[test]
        fn merge_keeps_the_best_record_per_identity(a in arb(), b in arb()) {
            let (ra, rb) = (build(&a), build(&b));
            let ab = merge_records(ra.iter().chain(&rb).cloned());
            let ba = merge_records(rb.iter().chain(&ra).cloned());
            prop_assert_eq!(&ab, &ba);
            let id = |r: &Record| (r.workload.key(), r.target.to_string(), r.device.id(), r.trace_json());
            let mut ids: Vec<_> = ab.iter().map(id).collect();
            let n = ids.len();
            ids.sort();
            ids.dedup();
            prop_assert_eq!(ids.len(), n, "duplicate identities after merge");
            for r in ra.iter().chain(&rb) {
                let kept = ab.iter().find(|k| id(k) == id(r));
                prop_assert!(kept.is_some());
                let kept = kept.unwrap();
                match (kept.median_s(), r.median_s()) {
                    (Some(k), Some(x)) => prop_assert!(k <= x),
                    (None, Some(_)) => prop_assert!(false, "a failure was kept over a time"),
                    _ => {}
                }
            }
        }
    }
}
