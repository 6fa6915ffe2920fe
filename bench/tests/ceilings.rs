//! The machine-ceilings probe of the roofline (`grim-bench ceilings`): it builds with
//! grim's host flags, measures a positive rate for every working set it is given, its
//! output is read strictly, and the working sets follow the caches and the cases.

use grim_bench::ceilings::{self, Ceilings, ReadCeiling};

#[test]
fn the_probe_measures_every_working_set_at_one_and_two_threads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bin = ceilings::build(tmp.path()).expect("probe builds");
    let caches = [(1, 48 * 1024), (2, 2 * 1024 * 1024), (3, 32 * 1024 * 1024)];
    for threads in [1, 2] {
        let sets = ceilings::working_sets(&caches, &[("case-a".into(), 10_000)], threads);
        let c = ceilings::measure(&bin, threads, &sets, 2.0).expect("probe runs");
        assert_eq!(c.threads, threads);
        assert!(c.fma_gflops.is_finite() && c.fma_gflops > 0.0, "{c:?}");
        let labels: Vec<&str> = c.read.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["L1", "L2", "LLC", "case-a"]);
        for (r, (_, bytes)) in c.read.iter().zip(&sets) {
            assert_eq!(r.bytes, *bytes, "{r:?}");
            assert!(r.gbs.is_finite() && r.gbs > 0.0, "{r:?}");
        }
        assert_eq!(c.levels().count(), 3);
        assert_eq!(c.measured_utc.len(), "2026-11-30 21:09".len(), "{c:?}");
    }
    // Bad arguments are refused with a message, not measured.
    // (The least is the probe's vector step: 512 bytes with AVX-512, 256 with AVX2.)
    let e = ceilings::measure(&bin, 1, &[("tiny".into(), 100)], 2.0).expect_err("too small");
    assert!(
        e.to_string().contains("BYTES must be at least ") && e.to_string().contains("got `100`"),
        "{e}"
    );
    let e = ceilings::measure(&bin, 1, &[], 0.0).expect_err("no time");
    assert!(
        e.to_string().contains("MIN_MS must be a positive number"),
        "{e}"
    );
}

#[test]
fn working_sets_follow_the_caches_and_split_cases_over_threads() {
    let caches = [(1, 48 * 1024), (2, 2 * 1024 * 1024), (3, 260 * 1024 * 1024)];
    let cases = [("a".to_string(), 1_000_000), ("b".to_string(), 100)];
    let one = ceilings::working_sets(&caches, &cases, 1);
    assert_eq!(
        one,
        [
            ("L1".to_string(), 24 * 1024),
            ("L2".to_string(), 1024 * 1024),
            ("LLC".to_string(), 8 * 1024 * 1024),
            ("a".to_string(), 1_000_448),
            ("b".to_string(), 512),
        ]
    );
    let two = ceilings::working_sets(&caches, &cases, 2);
    assert_eq!(two[3], ("a".to_string(), 500_224));
    // A small last-level cache caps its working set at half its size; a machine that
    // reports no L2 has no LLC working set either.
    let small = ceilings::working_sets(&[(1, 32 * 1024), (2, 1 << 20), (3, 2 << 20)], &[], 1);
    assert_eq!(small[2], ("LLC".to_string(), 1 << 20));
    assert_eq!(ceilings::working_sets(&[(1, 32 * 1024)], &[], 1).len(), 1);
}

#[test]
fn the_probe_output_is_read_strictly() {
    let sets = [("L1".to_string(), 256), ("x".to_string(), 512)];
    let ok = "fma_gflops 100.5\nread_gbs 256 200\nread_gbs 512 150.25\n";
    let c = ceilings::parse(ok, 1, &sets, "2026-01-01 00:00".into()).expect("parses");
    assert_eq!(c.fma_gflops, 100.5);
    assert_eq!(c.read_gbs("x"), Some(150.25));
    assert_eq!(c.read_gbs("L2"), None);
    for (text, says) in [
        ("", "no output"),
        ("peak 1\n", "expected `fma_gflops RATE`"),
        ("fma_gflops\n", "fma_gflops: missing value"),
        (
            "fma_gflops -3\nread_gbs 256 1\nread_gbs 512 1\n",
            "not a positive rate",
        ),
        ("fma_gflops nan\n", "not a positive rate"),
        ("fma_gflops 1\nread_gbs 256 1\n", "no `read_gbs` line for x"),
        (
            "fma_gflops 1\nread_gbs 256 1\nread 512 1\n",
            "expected `read_gbs BYTES RATE`",
        ),
        (
            "fma_gflops 1\nread_gbs 256 1\nread_gbs many 1\n",
            "`read_gbs many 1`",
        ),
        (
            "fma_gflops 1\nread_gbs 256 1\nread_gbs 512 0\n",
            "read_gbs x: not a positive rate",
        ),
    ] {
        let e = ceilings::parse(text, 1, &sets, String::new()).expect_err(text);
        assert!(e.contains(says), "{text:?}: {e}");
    }
}

#[test]
fn ceilings_round_trip_through_their_file_and_a_missing_file_is_none() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path().join("ceilings.json");
    assert_eq!(ceilings::read(&p).expect("absent is fine"), None);
    let all = vec![Ceilings {
        threads: 2,
        fma_gflops: 350.0,
        read: vec![ReadCeiling {
            label: "L2".into(),
            bytes: 1 << 20,
            gbs: 280.0,
        }],
        measured_utc: "2026-11-30 21:09".into(),
    }];
    ceilings::write(&p, &all).expect("write");
    assert_eq!(ceilings::read(&p).expect("read"), Some(all));
    std::fs::write(&p, "{ not json").expect("write");
    let e = ceilings::read(&p).expect_err("corrupt");
    assert!(e.to_string().contains("ceilings.json"), "{e}");
}

#[test]
fn utc_dates_are_civil_dates() {
    assert_eq!(ceilings::utc(0), "1970-01-01 00:00");
    assert_eq!(ceilings::utc(951_782_400), "2000-02-29 00:00");
    assert_eq!(ceilings::utc(1_796_072_965), "2026-11-30 21:09");
}
