//! Soak test of the tuning loop: many candidates through the local runner with faults
//! injected at known rates. Compiler-side and kernel-side faults are injected by the
//! tuner's own hook (hang, crash, wrong output, build error, build hang); output-file
//! faults (truncated, wrong-length garbage, right-length garbage) by a runner wrapper
//! that runs the real binary and then damages the file it wrote, as a broken device or
//! a full disk would. Every candidate must be recorded once with the right error kind,
//! none chosen as best, and the run must complete.
//!
//! CI runs 100 candidates; `GRIM_SOAK=N` runs N (for example `GRIM_SOAK=2000 cargo test
//! -p tuner --release --test soak -- --nocapture`).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tir::workload::Workload;
use tir::{Function, Tensor};
use tuner::measure::{ErrorKind, Failure, Job, Limits, LocalRunner, Measurement, Runner};
use tuner::tune::{tune, Fault, FaultInjection, MemoryStore, NoProgress, Strategy, TuneOptions};

/// How a runner wrapper damages the output file after the real binary exits 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    /// The last 4 bytes are cut off.
    Truncated,
    /// Replaced by 7 bytes of garbage.
    ShortGarbage,
    /// Every byte set to 0xff (all NaN): the right length, the wrong values.
    NanGarbage,
}

const DAMAGES: [Damage; 3] = [Damage::Truncated, Damage::ShortGarbage, Damage::NanGarbage];

/// Every `DAMAGE_EVERY`-th measured candidate that the tuner did not fault gets the
/// next damage.
const DAMAGE_EVERY: usize = 4;

fn script(d: Damage) -> &'static str {
    match d {
        Damage::Truncated => "truncate -s -4 \"$3\"",
        Damage::ShortGarbage => "printf 'garbage' > \"$3\"",
        Damage::NanGarbage => {
            "n=$(stat -c %s \"$3\"); head -c \"$n\" /dev/zero | tr '\\000' '\\377' > \"$3.g\" && mv \"$3.g\" \"$3\""
        }
    }
}

/// Wraps the local runner; damages the output file of some candidates.
struct Damaging {
    inner: LocalRunner,
    calls: AtomicUsize,
    clean: AtomicUsize,
    /// Per measure call: the damage applied (None: untouched).
    log: Mutex<Vec<Option<Damage>>>,
}

/// True when the tuner's fault hook touched this function (its markers).
fn tuner_faulted(f: &Function) -> bool {
    let text = tir::print_function(f);
    tuner::tune::FAULT_MARKERS.iter().any(|m| text.contains(m))
}

impl Runner for Damaging {
    fn describe(&self) -> String {
        "local+damage".into()
    }
    fn target(&self) -> &codegen::Target {
        self.inner.target()
    }
    fn build(&self, jobs: &[Job<'_>], dir: &Path) -> Result<PathBuf, Failure> {
        self.inner.build(jobs, dir)
    }
    fn measure(
        &self,
        bin: &Path,
        index: usize,
        job: &Job<'_>,
        reference: &BTreeMap<String, Tensor>,
        dir: &Path,
    ) -> Result<Measurement, Failure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let damage = if tuner_faulted(job.func) {
            None
        } else {
            let n = self.clean.fetch_add(1, Ordering::SeqCst) + 1;
            n.is_multiple_of(DAMAGE_EVERY)
                .then(|| DAMAGES[(n / DAMAGE_EVERY - 1) % DAMAGES.len()])
        };
        let log_len = {
            let mut log = self.log.lock().unwrap();
            log.push(damage);
            log.len()
        };
        let Some(d) = damage else {
            return self.inner.measure(bin, index, job, reference, dir);
        };
        // A wrapper program: runs the real binary with the same argv, then damages
        // its output file ($3) and exits 0.
        std::fs::create_dir_all(dir).unwrap();
        let wrapper = dir.join(format!("damaged{log_len}.sh"));
        let text = format!(
            "#!/bin/sh\n'{}' \"$@\" || exit $?\n{}\n",
            bin.display(),
            script(d)
        );
        std::fs::write(&wrapper, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        self.inner.measure(&wrapper, index, job, reference, dir)
    }
}

fn expected_kind(f: Fault) -> ErrorKind {
    match f {
        Fault::Hang => ErrorKind::RunTimeout,
        Fault::Crash => ErrorKind::RunError,
        Fault::WrongOutput => ErrorKind::WrongResult,
        Fault::BuildError => ErrorKind::BuildError,
        Fault::BuildHang => ErrorKind::BuildTimeout,
    }
}

fn damage_kind(d: Damage) -> ErrorKind {
    match d {
        Damage::Truncated | Damage::ShortGarbage => ErrorKind::RunError,
        Damage::NanGarbage => ErrorKind::WrongResult,
    }
}

#[test]
fn soak_every_fault_is_recorded_with_its_kind_and_never_best() {
    let n: usize = std::env::var("GRIM_SOAK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    // A tiny BCR workload with a large enough space for thousands of distinct traces.
    let w = Workload::from_spec_str("bcr-fc:M=48,K=48,N=8,block=8x8,sparsity=0.7,seed=3").unwrap();
    let mut limits = Limits::default();
    limits.protocol.repeat = 2;
    limits.protocol.min_repeat_ms = 0.1;
    limits.run_timeout = Duration::from_millis(1000);
    // Long enough for the largest legitimate candidate (a batch build of versioned,
    // masked 16-lane entries took over 2 s under a debug test run on a 2-vCPU AMD EPYC
    // Zen 3), short enough that the injected build hangs stay cheap.
    limits.build_timeout = Duration::from_secs(8);
    let runner = Damaging {
        inner: LocalRunner::new(limits),
        calls: AtomicUsize::new(0),
        clean: AtomicUsize::new(0),
        log: Mutex::new(Vec::new()),
    };
    // Every 5th candidate gets a tuner fault (20%), cycling through the five kinds.
    let every = 5;
    let faults = vec![
        Fault::Hang,
        Fault::Crash,
        Fault::WrongOutput,
        Fault::BuildError,
        Fault::BuildHang,
    ];
    let opts = TuneOptions {
        trials: n,
        batch: 10,
        strategy: Strategy::Random,
        seed: 77,
        egraph: false,
        work_dir: std::env::temp_dir().join(format!("grim-soak-{}", std::process::id())),
        faults: Some(FaultInjection {
            every,
            faults: faults.clone(),
        }),
        ..TuneOptions::default()
    };
    let mut store = MemoryStore::default();
    let t0 = std::time::Instant::now();
    let r = tune(
        &w,
        &runner,
        &mut store,
        &opts,
        &NoProgress,
        &AtomicBool::new(false),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(&opts.work_dir);
    assert_eq!(r.trials.len(), n, "the run completes: {n} candidates");
    // The confirmation round that ends the run (the best 4 measured again, 5 times
    // each, on the same damaging runner) stores one more record per candidate that
    // passed every round.
    let round = r.confirmation.as_ref().expect("a confirmation round ran");
    let confirmed = if round.candidates.len() >= 2 {
        round.candidates.len()
    } else {
        0
    };
    assert_eq!(store.trials.len(), n, "every candidate is recorded once");
    assert_eq!(
        store.confirmed.len(),
        confirmed,
        "and each confirmed one once more"
    );
    let distinct: HashSet<String> = store.trials.iter().map(|t| t.trace.to_json()).collect();
    assert_eq!(distinct.len(), n, "no trace recorded twice");

    // Walk the trials in order, pairing each measured one with the wrapper's log.
    let log = runner.log.lock().unwrap().clone();
    let mut calls = log.iter();
    let mut injected: BTreeMap<String, usize> = BTreeMap::new();
    let mut faulty = HashSet::new();
    for (i, t) in r.trials.iter().enumerate() {
        assert_eq!(t.index, i);
        let cand = i + 1;
        let tuner_fault = cand
            .is_multiple_of(every)
            .then(|| faults[(cand / every - 1) % faults.len()]);
        let want = match tuner_fault {
            Some(f) => {
                if !matches!(f, Fault::BuildError | Fault::BuildHang) {
                    assert_eq!(calls.next(), Some(&None), "trial {i}: measured, undamaged");
                }
                *injected.entry(format!("{f:?}")).or_default() += 1;
                Some(expected_kind(f))
            }
            None => {
                let d = calls
                    .next()
                    .unwrap_or_else(|| panic!("trial {i} was never measured"));
                d.map(|d| {
                    *injected.entry(format!("{d:?}")).or_default() += 1;
                    damage_kind(d)
                })
            }
        };
        let got = t.outcome.as_ref().err().map(|f| f.kind);
        assert_eq!(
            got,
            want,
            "trial {i} ({}): {:?}",
            t.description,
            t.outcome.as_ref().err()
        );
        if want.is_some() {
            faulty.insert(i);
        }
    }
    // The rest of the measure calls are the round's: every candidate that passed
    // measured `rounds` times undamaged, every dropped one stopped at its first damaged
    // call.
    let rounds = opts.confirm_rounds;
    let rest: Vec<_> = calls.collect();
    let damaged = rest.iter().filter(|d| d.is_some()).count();
    assert_eq!(damaged, round.dropped.len(), "{:?}", round.dropped);
    assert_eq!(round.rounds, rounds);
    assert!(rest.len() >= rounds * round.candidates.len() + round.dropped.len());
    assert!(rest.len() <= rounds * (round.candidates.len() + round.dropped.len()));
    for c in &round.candidates {
        assert_eq!(c.round_medians.len(), rounds);
        let found = r.trials.iter().find(|t| t.trace == c.trace);
        assert!(
            found.is_some_and(|t| t.outcome.is_ok() && !faulty.contains(&t.index)),
            "only candidates measured without fault are confirmed"
        );
    }
    let best = r.best().expect("some candidates succeed");
    assert!(best.outcome.is_ok() && !faulty.contains(&best.index));
    let errors: usize = r.errors.values().sum();
    assert_eq!(errors, faulty.len());
    eprintln!(
        "soak: {n} candidates in {:.1} s; faults injected {injected:?}; errors recorded {:?}",
        t0.elapsed().as_secs_f64(),
        r.errors
    );
}
