//! A run's OpenMP thread count: `Protocol::threads` sets `OMP_NUM_THREADS` of the
//! measurement binary, the binary reports the count its parallel loops had, and a
//! run that did not get the count it asked for fails instead of storing a time
//! under the wrong thread count.

use codegen::harness::{measurement_source, Candidate};
use codegen::run::{check_threads, parse_timing, run_candidate, Protocol};
use codegen::toolchain::{build_binary, Runner};
use codegen::{CodegenError, Target};
use schedule::Schedule;
use std::time::Duration;
use tir::workload::Workload;

#[test]
fn runs_report_the_thread_count_they_were_given() {
    let w = Workload::from_spec_str("fc:M=64,K=64,N=1,seed=1").unwrap();
    let mut s = Schedule::from_workload(&w).unwrap();
    s.parallel("m").unwrap();
    let f = s.func().clone();
    let dir = tempfile::tempdir().unwrap();
    let src = measurement_source(&[Candidate { func: &f }], &Target::Host).unwrap();
    let bin = build_binary(&src, dir.path(), &Target::Host, Duration::from_secs(120)).unwrap();
    let mut args = w.random_inputs(3);
    args.extend(s.weights().clone());
    let want = w.interpret(&w.random_inputs(3)).unwrap();
    for n in [1u32, 3] {
        let protocol = Protocol {
            number: 1,
            repeat: 1,
            min_repeat_ms: 0.0,
            timeout: Duration::from_secs(60),
            threads: Some(n),
        };
        let r = run_candidate(&bin, &Runner::Native, 0, &f, &args, &protocol, dir.path()).unwrap();
        assert_eq!(r.timing.threads, Some(n));
        let (_, rel) = codegen::run::max_error(&r.outputs, &want).unwrap();
        assert!(rel < 1e-4, "{n} threads: {rel}");
    }
}

#[test]
fn timing_lines_with_and_without_a_thread_count() {
    let t = parse_timing("GRIM-TIMING 1e-6 9e-7 1.1e-6 1e-8 100 7 4\n").unwrap();
    assert_eq!((t.number, t.repeat, t.threads), (100, 7, Some(4)));
    // The OpenCL harness prints no count.
    let t = parse_timing("GRIM-TIMING 1e-6 9e-7 1.1e-6 1e-8 1 7\n").unwrap();
    assert_eq!(t.threads, None);
    for bad in [
        "GRIM-TIMING 1e-6 9e-7 1.1e-6 1e-8 100 7 four",
        "GRIM-TIMING 1e-6 9e-7 1.1e-6 1e-8 100 7 4 5",
        "GRIM-TIMING 1e-6 9e-7 1.1e-6 1e-8 100",
    ] {
        assert!(
            matches!(parse_timing(bad), Err(CodegenError::BadOutput(_))),
            "{bad}"
        );
    }
}

#[test]
fn a_run_with_another_thread_count_is_refused() {
    let four = parse_timing("GRIM-TIMING 1e-6 9e-7 1.1e-6 1e-8 100 7 4\n").unwrap();
    let none = parse_timing("GRIM-TIMING 1e-6 9e-7 1.1e-6 1e-8 1 7\n").unwrap();
    assert!(check_threads(&four, Some(4)).is_ok());
    assert!(check_threads(&four, None).is_ok());
    assert!(check_threads(&none, None).is_ok());
    let e = check_threads(&four, Some(2)).unwrap_err().to_string();
    assert!(e.contains("asked for 2") && e.contains("had 4"), "{e}");
    let e = check_threads(&none, Some(2)).unwrap_err().to_string();
    assert!(e.contains("did not report"), "{e}");
}
