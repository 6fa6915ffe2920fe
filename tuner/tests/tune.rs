//! End-to-end tuning runs on the local machine and under qemu: results are checked,
//! resumed runs measure nothing twice, faults are recorded and never chosen, and a
//! seed fixes the candidate sequence.

use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tir::workload::Workload;
use tuner::measure::{ErrorKind, Limits, LocalRunner, QemuRunner, Runner};
use tuner::tune::{
    tune, Fault, FaultInjection, MemoryStore, NoProgress, Strategy, Trial, TuneOptions, TuneReport,
};

fn opts(trials: usize, strategy: Strategy, seed: u64) -> TuneOptions {
    TuneOptions {
        trials,
        batch: 6,
        strategy,
        seed,
        work_dir: std::env::temp_dir().join(format!(
            "grim-tune-test-{}-{seed}-{trials}",
            std::process::id()
        )),
        ..TuneOptions::default()
    }
}

fn quick_limits() -> Limits {
    let mut l = Limits::default();
    l.protocol.repeat = 3;
    l.protocol.min_repeat_ms = 0.5;
    l.run_timeout = Duration::from_secs(20);
    l
}

/// A local runner with the quick protocol at `threads` threads.
fn local(threads: u32) -> LocalRunner {
    LocalRunner::new(Limits {
        threads: Some(threads),
        ..quick_limits()
    })
}

/// Tunes `w` on `runner` into a fresh in-memory store (no progress output, never
/// stopped).
fn tune_fresh(w: &Workload, runner: &dyn Runner, o: &TuneOptions) -> TuneReport {
    tune(
        w,
        runner,
        &mut MemoryStore::default(),
        o,
        &NoProgress,
        &AtomicBool::new(false),
    )
    .unwrap()
}

#[test]
fn local_tune_records_checked_results_and_resumes_without_repeats() {
    let w =
        Workload::from_spec_str("bcr-fc:M=64,K=64,N=8,block=16x16,sparsity=0.8,seed=2").unwrap();
    let runner = LocalRunner::new(quick_limits());
    let mut store = MemoryStore::default();
    let stop = AtomicBool::new(false);
    let r1 = tune(
        &w,
        &runner,
        &mut store,
        &opts(10, Strategy::Evolutionary, 3),
        &NoProgress,
        &stop,
    )
    .unwrap();
    assert_eq!(r1.trials.len(), 10);
    assert!(
        r1.default_trial().is_some(),
        "the default schedule is measured first"
    );
    assert!(r1.trials[0].trace.instructions.is_empty());
    // The e-graph's BCR choice (shared gathers -> load-redundancy elimination) is the
    // second starting point, measured and checked like every candidate.
    let eg = r1.egraph_trial().expect("the e-graph's point is measured");
    assert_eq!(eg.index, 1);
    assert_eq!(
        eg.description,
        "eliminate redundant loads of W; vectorize rows of W by 4; specialize the entry offsets of W"
    );
    assert!(eg.outcome.is_ok());
    assert_eq!(r1.egraph_choices.len(), 1);
    assert!(
        r1.egraph_choices[0].contains("-> load-redundancy elimination"),
        "{:?}",
        r1.egraph_choices
    );
    for t in &r1.trials {
        let m = t
            .outcome
            .as_ref()
            .unwrap_or_else(|f| panic!("{}: {f:?}", t.description));
        assert!(m.max_rel_error <= 1e-4 && m.median > 0.0);
    }
    let best = r1.best().unwrap();
    // The best trace replays on the original workload.
    best.trace.replay(&w.func, &w.weights).unwrap();
    // Resume: a second run continues, measuring only new traces.
    let r2 = tune(
        &w,
        &runner,
        &mut store,
        &opts(8, Strategy::Evolutionary, 4),
        &NoProgress,
        &stop,
    )
    .unwrap();
    assert!(
        r2.skipped_already_measured >= 1,
        "the default schedule is already in the store"
    );
    let mut all: Vec<String> = store.trials.iter().map(|t| t.trace.to_json()).collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "a trace was measured twice");
    assert_eq!(n, 18);
    // Each run ended with a confirmation round; the second one re-measured the first
    // one's winner (the store's best) beside its own best.
    let first = r1
        .confirmation
        .as_ref()
        .expect("a round ended the first run");
    let winner = &first.best().expect("the round has a winner").trace;
    let second = r2
        .confirmation
        .as_ref()
        .expect("a round ended the second run");
    assert!(
        second
            .candidates
            .iter()
            .any(|c| &c.trace == winner && c.from_store),
        "{:?}",
        second.candidates
    );
    assert_eq!(
        store.confirmed.len(),
        first.candidates.len() + second.candidates.len()
    );
}

#[test]
fn faulty_candidates_are_recorded_and_never_chosen() {
    let w = Workload::from_spec_str("bcr-fc:M=32,K=32,N=4,block=8x8,sparsity=0.7,seed=1").unwrap();
    let mut limits = quick_limits();
    // Long enough that a healthy candidate never hits it on a loaded 2-core machine.
    limits.run_timeout = Duration::from_secs(8);
    let runner = LocalRunner::new(limits);
    let mut store = MemoryStore::default();
    let mut o = opts(12, Strategy::Random, 9);
    o.faults = Some(FaultInjection {
        every: 2,
        faults: vec![
            Fault::Hang,
            Fault::Crash,
            Fault::WrongOutput,
            Fault::BuildError,
        ],
    });
    let r = tune(
        &w,
        &runner,
        &mut store,
        &o,
        &NoProgress,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(r.trials.len(), 12);
    // Candidates 2,4,6,... are faulty: 6 faults, cycling through the 4 kinds.
    let kinds: Vec<ErrorKind> = r
        .trials
        .iter()
        .filter_map(|t| t.outcome.as_ref().err().map(|f| f.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ErrorKind::RunTimeout,
            ErrorKind::RunError,
            ErrorKind::WrongResult,
            ErrorKind::BuildError,
            ErrorKind::RunTimeout,
            ErrorKind::RunError
        ]
    );
    assert_eq!(r.errors.values().sum::<usize>(), 6);
    let best = r.best().unwrap();
    assert!(best.outcome.is_ok());
    assert_eq!(store.trials.len(), 12, "every candidate is recorded");
}

#[test]
fn same_seed_same_candidates() {
    let w = Workload::from_spec_str("bcr-fc:M=32,K=48,N=4,block=8x8,sparsity=0.75,seed=5").unwrap();
    let runner = LocalRunner::new(quick_limits());
    let run = |seed| {
        // More trials than starting points, so the seed decides some.
        tune_fresh(&w, &runner, &opts(10, Strategy::Random, seed))
            .trials
            .iter()
            .map(|t| t.trace.to_json())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
}

#[test]
fn qemu_tune_uses_instruction_counts_and_is_deterministic() {
    let w =
        Workload::from_spec_str("bcr-fc:M=48,K=48,N=4,block=16x16,sparsity=0.8,seed=3").unwrap();
    let runner = QemuRunner::new("cortex-a76", "cortex-a76", quick_limits());
    // The random strategy's candidate sequence depends only on the seed; instruction
    // counts are deterministic for serial kernels, while OpenMP-parallel ones vary by
    // a few instructions from run to run (libgomp), so counts are compared within 1%.
    let run = || {
        let r = tune_fresh(&w, &runner, &opts(8, Strategy::Random, 5));
        r.trials
            .iter()
            .map(|t| {
                (
                    t.trace.to_json(),
                    t.outcome.as_ref().unwrap().instructions.unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.len(), 8);
    assert!(a.iter().all(|(_, n)| *n > 0));
    for ((ta, na), (tb, nb)) in a.iter().zip(&b) {
        assert_eq!(ta, tb, "same seed, same candidates");
        let (na, nb) = (*na as f64, *nb as f64);
        assert!(
            (na - nb).abs() <= 0.01 * na,
            "instruction counts {na} vs {nb} for {ta}"
        );
        if !ta.contains("\"parallel\"") && !ta.contains("partition_block_rows") {
            assert_eq!(na, nb, "serial kernels count exactly: {ta}");
        }
    }
}

#[test]
fn opencl_tune_on_the_local_platform() {
    let w =
        Workload::from_spec_str("bcr-fc:M=64,K=64,N=4,block=16x16,sparsity=0.8,seed=3").unwrap();
    let runner = tuner::measure::OpenClRunner::new(false, None, quick_limits()).unwrap();
    let r = tune_fresh(&w, &runner, &opts(10, Strategy::Random, 21));
    assert_eq!(r.trials.len(), 10);
    assert!(r.trials.iter().all(|t| t.outcome.is_ok()), "{:?}", r.errors);
    // The GPU space binds loops to work-groups: some candidate must have done so.
    assert!(r
        .trials
        .iter()
        .any(|t| t.trace.to_json().contains("\"axis\":\"ThreadX\"")));
}

/// A device that is gone: every measurement fails with `DeviceLost`.
struct GoneDevice(LocalRunner);

impl tuner::measure::Runner for GoneDevice {
    fn describe(&self) -> String {
        "gone".into()
    }
    fn target(&self) -> &codegen::Target {
        self.0.target()
    }
    fn build(
        &self,
        jobs: &[tuner::measure::Job<'_>],
        dir: &std::path::Path,
    ) -> Result<std::path::PathBuf, tuner::measure::Failure> {
        self.0.build(jobs, dir)
    }
    fn measure(
        &self,
        _: &std::path::Path,
        _: usize,
        _: &tuner::measure::Job<'_>,
        _: &std::collections::BTreeMap<String, tir::Tensor>,
        _: &std::path::Path,
    ) -> Result<tuner::measure::Measurement, tuner::measure::Failure> {
        Err(tuner::measure::Failure {
            kind: ErrorKind::DeviceLost,
            message: "no route to device".into(),
        })
    }
}

#[test]
fn a_lost_device_stops_the_run_with_everything_recorded() {
    let w = Workload::from_spec_str("bcr-fc:M=16,K=16,N=4,block=8x8,sparsity=0.5,seed=1").unwrap();
    let runner = GoneDevice(LocalRunner::new(quick_limits()));
    let mut store = MemoryStore::default();
    let e = tune(
        &w,
        &runner,
        &mut store,
        &opts(10, Strategy::Random, 2),
        &NoProgress,
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("3 candidates in a row lost the device, giving up (no route to device)"),
        "{e}"
    );
    assert_eq!(
        store.trials.len(),
        3,
        "the failed candidates are recorded as device_lost"
    );
}

/// A dense workload's second starting point is the compile pipeline's default
/// schedule (its reduction summed in vector lanes), measured and checked like every
/// candidate.
#[test]
fn dense_tune_measures_the_pipeline_default_second() {
    let w = Workload::from_spec_str("fc:M=16,K=40,N=1,bias=1,seed=3").unwrap();
    let runner = LocalRunner::new(quick_limits());
    let mut store = MemoryStore::default();
    let stop = AtomicBool::new(false);
    let r = tune(
        &w,
        &runner,
        &mut store,
        &opts(3, Strategy::Random, 5),
        &NoProgress,
        &stop,
    )
    .unwrap();
    assert!(r.trials[0].trace.instructions.is_empty());
    let p = r
        .egraph_trial()
        .expect("the pipeline's default is measured");
    assert_eq!(p.index, 1);
    assert_eq!(p.description, "sum k in 16 lanes");
    let m = p.outcome.as_ref().expect("measured and checked");
    assert!(m.max_rel_error <= 1e-4);
    assert!(
        r.egraph_choices.is_empty(),
        "no BCR weight, no e-graph choice"
    );
}

/// Candidates of a run at N threads run with N OpenMP threads and are stored under
/// `host -threads=N`; at 1 thread the parallelism-only knobs leave the space; above
/// 1 the parallel form of the e-graph's point (block rows partitioned, loops
/// parallel) is measured right after the e-graph's point.
#[test]
fn thread_counts_shape_the_space_and_the_stored_target() {
    use tuner::space::SearchSpace;
    let w =
        Workload::from_spec_str("bcr-fc:M=128,K=128,N=1,block=16x16,sparsity=0.8,seed=2").unwrap();
    let all = SearchSpace::new(&w);
    let is_parallel = |name: &str| {
        name.starts_with("parallel ")
            || name.starts_with("block-row partition ")
            || name.starts_with("output-row partition ")
    };
    assert!(all.knobs.iter().any(|k| is_parallel(&k.name)));
    // An FC has no output rows to partition; a conv has.
    assert!(!all
        .knobs
        .iter()
        .any(|k| k.name.starts_with("output-row partition ")));
    let conv = Workload::from_spec_str(
        "bcr-conv2d:C=8,O=16,H=6,W=6,k=3,pad=1,block=4x4,sparsity=0.5,seed=1",
    )
    .unwrap();
    let conv_space = SearchSpace::new(&conv);
    assert!(conv_space
        .knobs
        .iter()
        .any(|k| k.name == "output-row partition W"));
    assert!(!conv_space
        .for_threads(Some(1))
        .knobs
        .iter()
        .any(|k| k.name == "output-row partition W"));
    let one = SearchSpace::new(&w).for_threads(Some(1));
    assert!(one.knobs.iter().all(|k| !is_parallel(&k.name)));
    assert_eq!(
        one.knobs.len() + all.knobs.iter().filter(|k| is_parallel(&k.name)).count(),
        all.knobs.len()
    );
    assert_eq!(
        SearchSpace::new(&w).for_threads(Some(2)).knobs.len(),
        all.knobs.len()
    );
    assert_eq!(
        SearchSpace::new(&w).for_threads(None).knobs.len(),
        all.knobs.len()
    );
    assert!(one.parallel_point(&one.default_point()).is_none());
    let p = all.parallel_point(&all.default_point()).unwrap();
    for (k, knob) in all.knobs.iter().enumerate() {
        assert_eq!(p[k] != 0, is_parallel(&knob.name), "{}", knob.name);
    }

    for threads in [1u32, 2] {
        let runner = LocalRunner::new(Limits {
            threads: Some(threads),
            ..quick_limits()
        });
        let (target, _) = tuner::db_store::identity_of(&runner).unwrap();
        assert_eq!(target.to_string(), format!("host -threads={threads}"));
        let r = tune_fresh(&w, &runner, &opts(4, Strategy::Random, 11 + threads as u64));
        let parallel_trials: Vec<_> = r
            .trials
            .iter()
            .filter(|t| {
                t.trace.instructions.iter().any(|i| {
                    matches!(
                        i,
                        schedule::Instruction::Parallel { .. }
                            | schedule::Instruction::PartitionBlockRows { .. }
                    )
                })
            })
            .collect();
        for t in &r.trials {
            let m = t
                .outcome
                .as_ref()
                .unwrap_or_else(|f| panic!("{threads} threads, {}: {f:?}", t.description));
            assert!(m.max_rel_error <= 1e-4);
        }
        if threads == 1 {
            assert!(parallel_trials.is_empty(), "1 thread: {parallel_trials:?}");
        } else {
            let t = &r.trials[2];
            assert!(
                t.description.contains("partition W by block rows")
                    && t.description.contains("specialize the entry offsets of W"),
                "{}",
                t.description
            );
        }
    }
}

/// Every point of a space is recovered from its trace (the seeds of another thread
/// count are traces); a trace no point makes is refused.
#[test]
fn decisions_are_recovered_from_traces() {
    use tuner::space::SearchSpace;
    for spec in [
        "bcr-fc:M=128,K=128,N=2,block=16x16,sparsity=0.8,seed=2",
        "bcr-gru:hidden=32,input=16,batch=1,block=8x8,sparsity=0.75,seed=3",
        "fc:M=16,K=40,N=1,bias=1,seed=3",
    ] {
        let w = Workload::from_spec_str(spec).unwrap();
        let space = SearchSpace::new(&w);
        let mut rng = tir::rng::SplitMix64::new(5);
        for _ in 0..40 {
            let (s, eff) = space.apply(&w, &space.random(&mut rng)).unwrap();
            let d = space
                .decisions_of(&w, s.trace())
                .unwrap_or_else(|| panic!("{spec}: {:?}", s.trace()));
            let (again, _) = space.apply(&w, &d).unwrap();
            assert_eq!(again.trace(), s.trace(), "{spec}");
            assert_eq!(d, eff, "{spec}: the effective decisions");
        }
        // A trace with a loop this workload does not have.
        let mut bad = space
            .apply(&w, &space.default_point())
            .unwrap()
            .0
            .trace()
            .clone();
        bad.instructions.push(schedule::Instruction::Unroll {
            loop_name: "no_such_loop".into(),
        });
        assert!(space.decisions_of(&w, &bad).is_none(), "{spec}");
        // Parallel knobs are not in the 1-thread space: a parallel trace is refused.
        let one = SearchSpace::new(&w).for_threads(Some(1));
        let par = space.parallel_point(&space.default_point()).unwrap();
        let (ps, _) = space.apply(&w, &par).unwrap();
        assert!(one.decisions_of(&w, ps.trace()).is_none(), "{spec}");
    }
}

/// A run at 2 threads starts from the best 1-thread record of the same workload and
/// device in the database, and from its parallel form.
#[test]
fn a_run_at_two_threads_starts_from_the_one_thread_best() {
    use std::sync::Arc;
    use tuner::db_store::DbStore;
    use tuner::tune::Store;
    let w =
        Workload::from_spec_str("bcr-fc:M=128,K=128,N=1,block=16x16,sparsity=0.8,seed=2").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(tuning_logs::Database::open(&dir.path().join("db")).unwrap());
    let stop = AtomicBool::new(false);
    let one = local(1);
    let mut store1 = DbStore::new(db.clone(), &w, &one).unwrap();
    assert!(
        store1.seeds().is_empty(),
        "nothing at other thread counts yet"
    );
    let r1 = tune(
        &w,
        &one,
        &mut store1,
        &opts(6, Strategy::Random, 21),
        &NoProgress,
        &stop,
    )
    .unwrap();
    assert_eq!(r1.seed_points, 0);
    // (The stored best is the confirmation round's winner where a round ran.)
    let winner = |r: &tuner::tune::TuneReport| {
        r.confirmation
            .as_ref()
            .and_then(|c| c.best())
            .map(|c| c.trace.clone())
            .unwrap_or_else(|| r.best().unwrap().trace.clone())
    };
    let best1 = winner(&r1);
    let two = local(2);
    let mut store2 = DbStore::new(db.clone(), &w, &two).unwrap();
    assert_eq!(store2.seeds(), vec![best1.clone()]);
    let r2 = tune(
        &w,
        &two,
        &mut store2,
        &opts(6, Strategy::Random, 22),
        &NoProgress,
        &stop,
    )
    .unwrap();
    assert!(r2.seed_points >= 1, "{}", r2.seed_points);
    // The 1-thread best is measured again at 2 threads, in the first batch.
    let seeded = r2.trials.iter().position(|t| t.trace == best1);
    assert!(
        seeded.is_some_and(|i| i < 6),
        "{seeded:?}: best1 {} among {:?}",
        best1.to_json(),
        r2.trials
            .iter()
            .map(|t| t.trace.to_json())
            .collect::<Vec<_>>()
    );
    // A store's own records are not its seeds; the 1-thread store now sees the
    // 2-thread best.
    assert_eq!(store2.seeds(), vec![winner(&r1)]);
    assert_eq!(store1.seeds(), vec![winner(&r2)]);
}

/// The windowed forms (rows in the fewest masked, then padded, lanes holding an
/// entry's rows, block rows in register windows) are measured among the starting
/// points, right after the e-graph's at one thread, and checked like every candidate.
#[test]
fn the_windowed_forms_are_starting_points() {
    use tuner::space::SearchSpace;
    let w =
        Workload::from_spec_str("bcr-fc:M=128,K=128,N=1,block=16x16,sparsity=0.8,seed=2").unwrap();
    let space = SearchSpace::new(&w).for_threads(Some(1));
    let d = space
        .window_point(&w, &space.default_point(), false)
        .expect("a window point");
    let (s, _) = space.apply(&w, &d).unwrap();
    let json = s.trace().to_json();
    assert!(json.contains(r#""masked":true"#), "{json}");
    assert!(json.contains("window_block_rows"), "{json}");
    // The padded form: the fewest padded lanes holding an entry's rows, no mask,
    // windows.
    let dp = space
        .window_point(&w, &space.default_point(), true)
        .expect("a padded window point");
    let (sp, _) = space.apply(&w, &dp).unwrap();
    let jp = sp.trace().to_json();
    assert!(!jp.contains("masked"), "{jp}");
    assert!(jp.contains("window_block_rows"), "{jp}");
    assert_ne!(jp, json);
    // A matrix-matrix product (N = 8) refuses windows: the point keeps only the lanes.
    let w8 =
        Workload::from_spec_str("bcr-fc:M=64,K=64,N=8,block=16x16,sparsity=0.8,seed=2").unwrap();
    let space8 = SearchSpace::new(&w8);
    if let Some(d) = space8.window_point(&w8, &space8.default_point(), false) {
        let (s, effective) = space8.apply(&w8, &d).unwrap();
        assert!(!s.trace().to_json().contains("window_block_rows"));
        assert_ne!(effective, d, "the refused window choice is skipped");
    }

    let runner = local(1);
    let r = tune_fresh(&w, &runner, &opts(4, Strategy::Random, 21));
    let t = &r.trials[2];
    assert!(
        t.description
            .contains("keep the block rows of W in register windows")
            && t.description.contains("(masked)"),
        "{}",
        t.description
    );
    let m = t.outcome.as_ref().unwrap();
    assert!(m.max_rel_error <= 1e-4, "{}", m.max_rel_error);
    // Then the padded windowed form.
    let t = &r.trials[3];
    assert!(
        t.description
            .contains("keep the block rows of W in register windows")
            && !t.description.contains("(masked)"),
        "{}",
        t.description
    );
    let m = t.outcome.as_ref().unwrap();
    assert!(m.max_rel_error <= 1e-4, "{}", m.max_rel_error);
}

/// The register-tiled form of the e-graph's point (kept rows times a row of output
/// positions in registers) is among the measured starting points of a conv, with the
/// largest row count that divides its entries' 10 kept rows and fits (10 x 12 output
/// columns would, so the output is made 48 wide: 5 rows), and checked like every candidate;
/// a matrix-vector product (one output position per row) has no such point.
#[test]
fn the_register_tiled_form_is_a_starting_point() {
    use tuner::space::SearchSpace;
    use tuner::space_bcr::tile_row_preference;
    assert_eq!(tile_row_preference(10)[..3], [10, 5, 2]);
    assert_eq!(tile_row_preference(12)[..3], [6, 4, 3]);
    assert_eq!(tile_row_preference(1).last(), Some(&1));
    // A conv's register-tile point at one thread: the point, the trace it applies
    // and whether every choice of it was accepted.
    let tile_point_of = |spec: &str| {
        let w = Workload::from_spec_str(spec).unwrap();
        let space = SearchSpace::new(&w).for_threads(Some(1));
        let d = space
            .tile_point(&w, &space.default_point())
            .expect("a register-tile point");
        let (s, eff) = space.apply(&w, &d).unwrap();
        (w, s.trace().to_json(), eff == d)
    };
    let (w, json, _) =
        tile_point_of("bcr-conv2d:C=32,O=64,H=6,W=48,k=3,pad=1,block=32x32,sparsity=0.9,seed=2");
    assert!(
        json.contains(r#""op":"register_tile","weight":"W","rows":5"#),
        "{json}"
    );
    // Its entries keep the same counts (288 columns, whole 32x32 blocks), so their
    // offsets are specialized too.
    assert!(
        json.contains(r#""op":"specialize_offsets","weight":"W""#),
        "{json}"
    );
    // With 144 columns the last block column is 16 wide: entries differ, the
    // specialization is refused and the point does not hold it.
    let (_, json16, all_accepted) =
        tile_point_of("bcr-conv2d:C=16,O=64,H=6,W=48,k=3,pad=1,block=32x32,sparsity=0.9,seed=2");
    assert!(all_accepted, "{json16}");
    assert!(!json16.contains("specialize_offsets"), "{json16}");
    // Pieces as wide as leaves one full piece: 16 lanes for 48 or 56 output columns,
    // 8 for 14, 4 for 7 (MNIST's second and third convs); the knob's choices are rows
    // within lanes.
    use tuner::space_bcr::{tile_choice, tile_lane_preference};
    assert_eq!(tile_lane_preference(Some(56)), [16, 8, 4]);
    assert_eq!(tile_lane_preference(Some(14)), [8, 16, 4]);
    assert_eq!(tile_lane_preference(Some(7)), [4, 16, 8]);
    assert_eq!(tile_lane_preference(Some(2)), [16, 8, 4]);
    assert_eq!(tile_lane_preference(None), [16, 8, 4]);
    assert_eq!(tile_choice(5, 16), Some(5));
    assert_eq!(tile_choice(8, 4), Some(23));
    assert_eq!(tile_choice(7, 16), None);
    let (_, json7, _) =
        tile_point_of("bcr-conv2d:C=64,O=128,H=7,W=7,k=3,pad=1,block=16x16,sparsity=0.75,seed=1");
    assert!(
        json7.contains(r#""op":"register_tile","weight":"W","rows":8,"lanes":4"#),
        "{json7}"
    );
    let fc1 =
        Workload::from_spec_str("bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.8,seed=2").unwrap();
    let space1 = SearchSpace::new(&fc1);
    assert_eq!(space1.tile_point(&fc1, &space1.default_point()), None);
    assert_eq!(
        space1.one_row_tile_point(&fc1, &space1.default_point()),
        None
    );
    // The one-row tile point: the same form with tiles of one kept row, a point of its
    // own beside the tile point (for the 14-wide conv, 8 rows against 1).
    let narrow = Workload::from_spec_str(
        "bcr-conv2d:C=32,O=64,H=14,W=14,k=3,pad=1,block=16x16,sparsity=0.75,seed=1",
    )
    .unwrap();
    let space14 = SearchSpace::new(&narrow).for_threads(Some(1));
    let base = space14.default_point();
    let tall = space14.tile_point(&narrow, &base).expect("a tile point");
    let one = space14
        .one_row_tile_point(&narrow, &base)
        .expect("a one-row tile point");
    assert_ne!(tall, one);
    let (s, eff) = space14.apply(&narrow, &one).unwrap();
    assert_eq!(eff, one);
    let json1 = s.trace().to_json();
    assert!(
        json1.contains(r#""op":"register_tile","weight":"W","rows":1,"lanes":8"#),
        "{json1}"
    );
    assert!(json1.contains("specialize_offsets"), "{json1}");
    let (s, _) = space14.apply(&narrow, &tall).unwrap();
    assert!(
        s.trace().to_json().contains(r#""rows":8,"lanes":8"#),
        "{}",
        s.trace().to_json()
    );

    // Short tunes measure the tile among their starting points, checked against the
    // interpreter: 5-row tiles for the 48-wide conv, one-row tiles for the narrow one.
    let measured_with = |w: &Workload, trials: usize, needle: &str| {
        let r = tune_fresh(w, &local(1), &opts(trials, Strategy::Random, 23));
        let t = r
            .trials
            .iter()
            .find(|t| t.description.contains(needle))
            .unwrap_or_else(|| {
                let d: Vec<&str> = r.trials.iter().map(|t| t.description.as_str()).collect();
                panic!("no trial with {needle:?} among {d:?}")
            });
        let m = t.outcome.as_ref().unwrap();
        assert!(m.max_rel_error <= 1e-4, "{needle}: {}", m.max_rel_error);
    };
    measured_with(&w, 4, "register tiles of 5 rows of W");
    measured_with(&narrow, 5, "register tiles of 1 row of W");
}

/// Starting points outnumbering a batch are not dropped: with one candidate per
/// batch, the e-graph's point of an FC with N = 8 (rows vectorized), its windowed and
/// its register-tiled forms are still measured in the first trials, each once.
#[test]
fn starting_points_survive_small_batches() {
    let w =
        Workload::from_spec_str("bcr-fc:M=64,K=64,N=8,block=16x16,sparsity=0.7,seed=3").unwrap();
    let runner = local(1);
    let o = TuneOptions {
        batch: 1,
        ..opts(5, Strategy::Evolutionary, 29)
    };
    let r = tune_fresh(&w, &runner, &o);
    let all: Vec<&str> = r.trials.iter().map(|t| t.description.as_str()).collect();
    // The register-tiled starting point is among the first four trials...
    let first_tile = r.trials[..4]
        .iter()
        .find(|t| t.description.contains("register tiles of"))
        .unwrap_or_else(|| panic!("no register-tiled starting point in {all:?}"));
    // ...and no trace is measured twice (a later tile found by the search is another
    // trace).
    let mut traces: Vec<String> = r.trials.iter().map(|t| t.trace.to_json()).collect();
    traces.sort();
    traces.dedup();
    assert_eq!(traces.len(), r.trials.len(), "{all:?}");
    assert_eq!(
        all.iter().filter(|d| **d == first_tile.description).count(),
        1,
        "{all:?}"
    );
}

/// Records measured by another build's generated code (another `grim_version`) do not
/// count as measured: a resumed run measures those traces again, learns only from
/// current records, and its summary's best is a current one.
#[test]
fn records_of_older_generated_code_are_measured_again() {
    use std::sync::Arc;
    use tuner::db_store::DbStore;
    use tuner::tune::Store;
    let w =
        Workload::from_spec_str("bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.8,seed=4").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(tuning_logs::Database::open(&dir.path().join("db")).unwrap());
    let stop = AtomicBool::new(false);
    let runner = local(1);
    let mut store = DbStore::new(db.clone(), &w, &runner).unwrap();
    let r1 = tune(
        &w,
        &runner,
        &mut store,
        &opts(3, Strategy::Random, 31),
        &NoProgress,
        &stop,
    )
    .unwrap();
    assert_eq!(r1.trials.len(), 3);
    // Rewrite every record as if an older grim had measured it (1 ns: "fastest").
    let all: Vec<tuning_logs::Record> = db.iter().map(|s| s.unwrap().record).collect();
    let dir2 = tempfile::tempdir().unwrap();
    let db2 = Arc::new(tuning_logs::Database::open(&dir2.path().join("db")).unwrap());
    for mut r in all {
        r.grim_version = "0.0.1+0000000000000000".into();
        if let tuning_logs::Outcome::Measured(m) = &mut r.result {
            m.median_s = 1e-9;
            m.min_s = 1e-9;
        }
        db2.insert(&r).unwrap();
    }
    let mut old_store = DbStore::new(db2.clone(), &w, &runner).unwrap();
    for t in &r1.trials {
        assert!(!old_store.contains(&t.trace.to_json()), "{}", t.description);
    }
    assert!(old_store.history().is_empty());
    let r2 = tune(
        &w,
        &runner,
        &mut old_store,
        &opts(3, Strategy::Random, 31),
        &NoProgress,
        &stop,
    )
    .unwrap();
    assert_eq!(r2.skipped_already_measured, 0);
    for t in &r1.trials {
        assert!(
            r2.trials.iter().any(|u| u.trace == t.trace),
            "{} not measured again",
            t.description
        );
        assert!(old_store.contains(&t.trace.to_json()));
    }
    assert!(old_store
        .history()
        .iter()
        .all(|(_, c)| c.is_none_or(|c| c > 1e-9)));
}

/// A batch-1 conv's stages start with the image loop (one iteration): their parallel
/// knobs sit on the first loop that runs more than once (the padding copy's channels,
/// the output zeroing's channels), only above one thread, and the parallel point with
/// them computes the reference at 2 threads.
#[test]
fn batch_one_conv_stages_get_parallel_knobs_on_their_first_wide_loop() {
    use tuner::space::SearchSpace;
    let w = Workload::from_spec_str(
        "bcr-conv2d:C=16,O=32,H=10,W=10,k=3,pad=1,block=16x16,sparsity=0.8,seed=5",
    )
    .unwrap();
    let two = SearchSpace::new(&w).for_threads(Some(2));
    let names: Vec<&str> = two.knobs.iter().map(|k| k.name.as_str()).collect();
    assert!(names.contains(&"parallel pad_c"), "{names:?}");
    assert!(names.contains(&"parallel init_o"), "{names:?}");
    assert!(!names
        .iter()
        .any(|n| *n == "parallel pad_nb" || *n == "parallel init_nb"));
    let one = SearchSpace::new(&w).for_threads(Some(1));
    assert!(one.knobs.iter().all(|k| !k.name.starts_with("parallel ")));
    let p = two.parallel_point(&two.default_point()).unwrap();
    let (s, eff) = two.apply(&w, &p).unwrap();
    let json = s.trace().to_json();
    assert!(
        json.contains(r#"{"op":"parallel","loop_name":"pad_c"}"#),
        "{json}"
    );
    assert!(
        json.contains(r#"{"op":"parallel","loop_name":"init_o"}"#),
        "{json}"
    );
    assert_eq!(eff.len(), p.len());

    let runner = local(2);
    let r = tune_fresh(&w, &runner, &opts(4, Strategy::Random, 41));
    let t = r
        .trials
        .iter()
        .find(|t| t.description.contains("parallel pad_c"))
        .expect("the parallel point is measured");
    assert!(t.outcome.as_ref().unwrap().max_rel_error <= 1e-4);
}

/// A run leaves no scratch files behind: each batch's sources and binaries go after
/// the batch, the scratch directory at the end when it is empty; a scratch directory
/// that holds the caller's own files is kept with them.
#[test]
fn a_run_removes_its_scratch_directory_and_keeps_the_callers_files() {
    let w = Workload::from_spec_str("bcr-fc:M=32,K=32,N=1,block=8x8,sparsity=0.75,seed=4").unwrap();
    let runner = LocalRunner::new(quick_limits());
    let parent = tempfile::tempdir().unwrap();
    let scratch = parent.path().join("scratch");
    let o = TuneOptions {
        work_dir: scratch.clone(),
        ..opts(3, Strategy::Random, 5)
    };
    let r = tune_fresh(&w, &runner, &o);
    assert_eq!(r.trials.len(), 3);
    assert!(!scratch.exists(), "{} is left behind", scratch.display());
    // The caller's file stays, and so does the directory holding it.
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join("notes.txt"), "mine").unwrap();
    let r = tune_fresh(&w, &runner, &o);
    assert_eq!(r.trials.len(), 3);
    assert_eq!(
        std::fs::read_to_string(scratch.join("notes.txt")).unwrap(),
        "mine"
    );
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert_eq!(left.len(), 1, "only the caller's file is left: {left:?}");
}

/// At two threads a conv's tuning also starts from its register-tiled point run in
/// parallel parts of output rows (block rows not partitioned); the candidate is
/// checked against the interpreter like every other. At one thread the space has no
/// such knob and no trial partitions output rows.
#[test]
fn a_two_thread_conv_tune_starts_from_the_tile_by_output_rows() {
    let w = Workload::from_spec_str(
        "bcr-conv2d:C=8,O=16,H=12,W=16,k=3,pad=1,block=8x8,sparsity=0.6,seed=3",
    )
    .unwrap();
    let by_rows = |r: &TuneReport| -> Vec<Trial> {
        r.trials
            .iter()
            .filter(|t| {
                t.trace.instructions.iter().any(|i| {
                    matches!(
                        i,
                        schedule::Instruction::PartitionOutputRows { parts: 4, .. }
                    )
                })
            })
            .cloned()
            .collect()
    };
    let r = tune_fresh(&w, &local(2), &opts(8, Strategy::Evolutionary, 21));
    let found = by_rows(&r);
    let start = found
        .iter()
        .find(|t| {
            !t.trace
                .instructions
                .iter()
                .any(|i| matches!(i, schedule::Instruction::PartitionBlockRows { .. }))
                && t.trace
                    .instructions
                    .iter()
                    .any(|i| matches!(i, schedule::Instruction::RegisterTile { .. }))
        })
        .unwrap_or_else(|| panic!("no tiled point by output rows: {:?}", r.trials));
    assert!(start.outcome.is_ok(), "{:?}", start.outcome);
    assert!(
        start
            .description
            .contains("partition the output rows of W into 4 parallel parts"),
        "{}",
        start.description
    );
    let r1 = tune_fresh(&w, &local(1), &opts(8, Strategy::Evolutionary, 21));
    assert!(by_rows(&r1).is_empty());
}

/// A workload of `spec` whose weight matrix keeps as many weights as the spec's
/// sparsity asks, spread unevenly over the blocks (`tir::prune_across_blocks`; the
/// weights of the first half of the output rows are 100 times smaller, so their blocks
/// lose more, many all): the kernels must handle blocks with different counts and
/// empty blocks.
fn spread_workload(spec: &str) -> Workload {
    let w = Workload::from_spec_str(spec).unwrap();
    let sparse = w.spec.sparse().unwrap();
    let mut dense = w.matrices[0].dense.clone();
    let mut rng = tir::rng::SplitMix64::new(5);
    let (rows, cols) = (dense.rows(), dense.cols());
    for r in 0..rows {
        for c in 0..cols {
            let v = rng.symmetric_vec(1, 1.0)[0];
            dense.set(r, c, if r < rows / 2 { v * 0.01 } else { v });
        }
    }
    let cfg = tir::PruneConfig {
        block: tir::BlockShape::new(sparse.block_rows, sparse.block_cols),
        rate: tir::PruneRate::Sparsity(sparse.sparsity),
    };
    let b = tir::prune_across_blocks(&dense, &cfg).unwrap();
    let counts: Vec<usize> = b.blocks().iter().map(|k| k.nnz()).collect();
    assert!(counts.contains(&0), "some blocks are empty: {counts:?}");
    assert!(
        counts
            .iter()
            .any(|&c| c > 0 && c != counts[counts.len() - 1]),
        "{counts:?}"
    );
    let mut given = w.given_weights();
    given.matrices[0] = tir::workload::GivenMatrix::Bcr(b);
    Workload::with_weights(w.spec.clone(), &given).unwrap()
}

#[test]
fn kept_weights_spread_over_the_blocks_tune_and_check() {
    for spec in [
        "bcr-fc:M=64,K=64,N=8,block=16x16,sparsity=0.8,bias=1,seed=2",
        "bcr-conv2d:C=16,O=32,H=6,W=6,k=3,pad=1,block=8x8,sparsity=0.8,seed=1",
    ] {
        let w = spread_workload(spec);
        let r = tune_fresh(&w, &local(1), &opts(12, Strategy::Evolutionary, 7));
        assert_eq!(r.trials.len(), 12, "{spec}");
        for t in &r.trials {
            let m = t
                .outcome
                .as_ref()
                .unwrap_or_else(|f| panic!("{spec}: {}: {f:?}", t.description));
            assert!(m.max_rel_error <= 1e-4, "{spec}: {}", t.description);
        }
        // The e-graph's starting point turns the constant-count knob on: with entries
        // of different shapes that versions them by kept-column count.
        assert!(
            r.trials.iter().any(|t| t
                .description
                .contains("version the entries of W by kept-column count")),
            "{spec}"
        );
    }
}
