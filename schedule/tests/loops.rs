//! Loop transformations, loop kinds, sampling and traces: every legal schedule keeps
//! the interpreter's results, every illegal one is refused with a clear error and
//! leaves the schedule unchanged, and traces round-trip through JSON and replay.

use proptest::prelude::*;
use schedule::{Factor, Instruction, Remainder, Schedule, ScheduleError, Trace};
use std::collections::BTreeMap;
use tir::workload::Workload;
use tir::{print_function, ForKind, Function, Tensor};

fn outputs(w: &Workload, f: &Function, seed: u64) -> BTreeMap<String, Tensor> {
    w.interpret_function(f, &w.random_inputs(seed))
        .unwrap_or_else(|e| panic!("interpret:\n{}\n{e}", print_function(f)))
}

/// Asserts the scheduled function computes exactly what the original does.
fn assert_same(w: &Workload, s: &Schedule) {
    assert_eq!(
        outputs(w, &w.func, 7),
        outputs(w, s.func(), 7),
        "{}",
        print_function(s.func())
    );
}

fn remainder() -> impl Strategy<Value = Remainder> {
    prop_oneof![
        Just(Remainder::Guard),
        Just(Remainder::Tail),
        Just(Remainder::Exact)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Split of any loop of a dense FC by random factors; exact strategy only when
    /// it divides. Iteration order is unchanged, so results are bit-identical.
    #[test]
    fn split_preserves_results(m in 1usize..12, k in 1usize..10, n in 1usize..9,
                               which in 0usize..7, f1 in 1i64..6, f2 in 1i64..4,
                               three in any::<bool>(), infer_pos in 0usize..3, rem in remainder()) {
        let w = Workload::from_spec_str(&format!("fc:M={m},K={k},N={n},bias=1,act=relu")).unwrap();
        let loops = ["init_m", "init_n", "m", "n", "k", "act_m", "act_n"];
        let name = loops[which];
        let mut factors = if three { vec![Some(f1), Some(f2), Some(2)] } else { vec![Some(f1), Some(f2)] };
        let pos = infer_pos % factors.len();
        factors[pos] = None;
        let mut s = Schedule::from_workload(&w).unwrap();
        match s.split(name, &factors, rem) {
            Ok(names) => {
                prop_assert_eq!(names.len() >= factors.len(), true);
                assert_same(&w, &s);
            }
            Err(e) => {
                // Only the exact strategy may refuse, and only for a non-divisible extent.
                prop_assert_eq!(rem, Remainder::Exact, "{}", e);
                prop_assert!(e.to_string().contains("divisible") || e.to_string().contains("multiply"), "{}", e);
                prop_assert_eq!(s.func(), &w.func);
            }
        }
    }

    /// Split of the data-dependent BCR loops (kept rows `i`, kept columns `j`).
    #[test]
    fn split_of_data_dependent_bcr_loops(m in 4usize..40, k in 4usize..40, s_ in 0.0f64..0.9,
                                         f in 1i64..5, loop_j in any::<bool>(), tail in any::<bool>()) {
        let spec = format!("bcr-fc:M={m},K={k},N=2,block=4x4,sparsity={s_},seed=3");
        let w = Workload::from_spec_str(&spec).unwrap();
        let mut s = Schedule::from_workload(&w).unwrap();
        let rem = if tail { Remainder::Tail } else { Remainder::Guard };
        s.split(if loop_j { "j" } else { "i" }, &[None, Some(f)], rem).unwrap();
        assert_same(&w, &s);
    }

    /// Any permutation of the dense FC matmul nest keeps results (the k order per
    /// element is unchanged, so they are even bit-identical).
    #[test]
    fn reorder_preserves_results(m in 1usize..8, k in 1usize..8, n in 1usize..8, perm in 0usize..6) {
        let w = Workload::from_spec_str(&format!("fc:M={m},K={k},N={n}")).unwrap();
        let orders = [["m","n","k"],["m","k","n"],["n","m","k"],["n","k","m"],["k","m","n"],["k","n","m"]];
        let mut s = Schedule::from_workload(&w).unwrap();
        s.reorder(&orders[perm]).unwrap();
        assert_same(&w, &s);
    }

    /// Split, fuse back, reorder, then loop kinds: still the same results, and the
    /// trace replays to the same function.
    #[test]
    fn combined_schedule_and_replay(m in 1usize..10, k in 1usize..10, n4 in 1usize..4, f in 1i64..4) {
        let n = n4 * 4;
        let w = Workload::from_spec_str(&format!("fc:M={m},K={k},N={n},bias=1")).unwrap();
        let mut s = Schedule::from_workload(&w).unwrap();
        let ms = s.split("m", &[None, Some(f)], Remainder::Guard).unwrap();
        s.split("n", &[None, Some(4)], Remainder::Exact).unwrap();
        s.reorder(&["k", "n_1"]).unwrap();
        s.vectorize("n_1").unwrap();
        s.parallel(&ms[0]).unwrap();
        let fused = s.fuse("init_m", "init_n").unwrap();
        s.unroll("act_n").unwrap_or(());
        assert_same(&w, &s);
        let json = s.trace().to_json();
        let t = Trace::from_json(&json).unwrap();
        prop_assert_eq!(&t, s.trace());
        let r = t.replay(&w.func, &w.weights).unwrap();
        prop_assert_eq!(print_function(r.func()), print_function(s.func()));
        let header = format!("for ({fused}, 0, {})", m * n);
        prop_assert!(print_function(s.func()).contains(&header));
    }
}

#[test]
fn loop_kinds_keep_results_on_every_workload_kind() {
    for (spec, vec_loop, par_loop) in [
        ("fc:M=8,K=8,N=8", "init_n", "m"),
        ("conv2d:C=2,O=4,H=6,W=6,k=3,pad=1", "init_ow", "o"),
        ("bcr-fc:M=32,K=32,N=4,block=8x8,sparsity=0.7", "n", "init_m"),
        ("gru:hidden=8,input=4,batch=2", "n", "j"),
        ("lstm:hidden=4,input=4,batch=2", "gi_init_n", "gh_init_m"),
    ] {
        let w = Workload::from_spec_str(spec).unwrap();
        let mut s = Schedule::from_workload(&w).unwrap();
        s.vectorize(vec_loop)
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
        s.parallel(par_loop)
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_same(&w, &s);
        let mut g = Schedule::from_workload(&w).unwrap();
        g.bind(par_loop, ForKind::BlockX).unwrap();
        g.bind(vec_loop, ForKind::ThreadX).unwrap();
        assert_same(&w, &g);
        assert!(print_function(g.func()).contains("block_x for"));
    }
}

#[test]
fn sampling_records_decisions_and_replays() {
    let w = Workload::from_spec_str("fc:M=48,K=16,N=12").unwrap();
    let mut s = Schedule::from_workload(&w).unwrap();
    s.seed(5);
    let tiles = s.sample_perfect_tile("m", 3, 4).unwrap();
    let product: i64 = tiles
        .iter()
        .map(|f| s.resolve(f).unwrap().unwrap())
        .product();
    assert_eq!(product, 48);
    assert!(s.resolve(&tiles[2]).unwrap().unwrap() <= 4);
    let names = s.split_by("m", tiles, Remainder::Exact).unwrap();
    assert_eq!(names, ["m_0", "m_1", "m_2"]);
    let width = s.sample_categorical(&[1, 2, 4], &[0.2, 0.3, 0.5]).unwrap();
    let wv = s.resolve(&width).unwrap().unwrap();
    assert!([1, 2, 4].contains(&wv));
    s.split_by("n", vec![Factor::Infer, width], Remainder::Exact)
        .unwrap();
    assert_same(&w, &s);

    // Same seed, same decisions; the trace replays to the same IR.
    let replay = s.trace().replay(&w.func, &w.weights).unwrap();
    assert_eq!(print_function(replay.func()), print_function(s.func()));

    // Mutating a decision to another valid one replays to a different, still
    // correct, schedule.
    let mut t = s.trace().clone();
    if let Instruction::SamplePerfectTile { decision, .. } = &mut t.instructions[0] {
        *decision = vec![2, 6, 4];
    }
    let r = t.replay(&w.func, &w.weights).unwrap();
    assert!(print_function(r.func()).contains("for (m_1, 0, 6)"));
    assert_same(&w, &r);

    // An invalid mutation fails cleanly, naming the instruction.
    if let Instruction::SamplePerfectTile { decision, .. } = &mut t.instructions[0] {
        *decision = vec![5, 5, 2];
    }
    let e = t.replay(&w.func, &w.weights).unwrap_err().to_string();
    assert_eq!(
        e,
        "trace instruction 0 (sample_perfect_tile): sample_perfect_tile: loop `m`: decision [5, 5, 2] does not multiply to the extent 48"
    );
    let mut t2 = s.trace().clone();
    if let Instruction::SampleCategorical { decision, .. } = &mut t2.instructions[2] {
        *decision = 7;
    }
    let e = t2.replay(&w.func, &w.weights).unwrap_err().to_string();
    assert!(
        e.starts_with("trace instruction 2 (sample_categorical)"),
        "{e}"
    );
}

#[test]
fn trace_json_is_readable_and_strict() {
    let w = Workload::from_spec_str("fc:M=8,K=4,N=4").unwrap();
    let mut s = Schedule::from_workload(&w).unwrap();
    s.split("m", &[None, Some(4)], Remainder::Tail).unwrap();
    s.bind("m_0", ForKind::BlockX).unwrap();
    let json = s.trace().to_json();
    assert_eq!(
        json,
        r#"{"format":1,"instructions":[{"op":"split","loop_name":"m","factors":[null,4],"remainder":"tail"},{"op":"bind","loop_name":"m_0","axis":"BlockX"}]}"#
    );
    for (bad, want) in [
        ("{", "trace JSON: line 1 column 1"),
        (
            r#"{"format":1,"instructions":[{"op":"explode"}]}"#,
            "unknown variant `explode`",
        ),
        (
            r#"{"format":1,"instructions":[{"op":"split","loop_name":"m"}]}"#,
            "missing field `factors`",
        ),
        (
            r#"{"format":2,"instructions":[]}"#,
            "format version 2 is not supported (this grim reads version 1)",
        ),
    ] {
        let e = Trace::from_json(bad).unwrap_err().to_string();
        assert!(e.contains(want), "{bad}: {e}");
    }
}

/// Illegal schedules: each is refused with its expected message and the schedule is
/// left exactly as it was.
#[test]
fn illegal_schedules_are_refused_with_clear_errors() {
    type Step = fn(&mut Schedule) -> Result<(), ScheduleError>;
    let cases: Vec<(&str, Step, &str)> = vec![
        ("fc:M=8,K=8,N=8", |s| s.split("q", &[Some(2), Some(4)], Remainder::Exact).map(|_| ()),
         "split: no loop named `q`"),
        ("fc:M=8,K=8,N=8", |s| s.split("m", &[Some(3), Some(3)], Remainder::Exact).map(|_| ()),
         "split: loop `m`: factors [3, 3] multiply to 9, not the extent 8"),
        ("fc:M=9,K=8,N=8", |s| s.split("m", &[None, Some(2)], Remainder::Exact).map(|_| ()),
         "split: loop `m`: extent 9 is not divisible by 2 (the product of the other factors); use the guard or tail strategy"),
        ("fc:M=8,K=8,N=8", |s| s.split("m", &[None, None], Remainder::Guard).map(|_| ()),
         "split: loop `m`: at most one factor may be inferred (null)"),
        ("fc:M=8,K=8,N=8", |s| s.split("m", &[Some(0), Some(8)], Remainder::Guard).map(|_| ()),
         "split: loop `m`: factor 0 is not positive"),
        ("fc:M=8,K=8,N=8", |s| s.split("m", &[Some(8)], Remainder::Guard).map(|_| ()),
         "split: loop `m`: needs at least 2 factors, got 1"),
        ("bcr-fc:M=16,K=16,N=1,block=4x4,sparsity=0.5", |s| s.split("i", &[Some(2), None], Remainder::Guard).map(|_| ()),
         "split: loop `i`: with a non-constant extent only the outermost factor can be inferred"),
        ("bcr-fc:M=16,K=16,N=1,block=4x4,sparsity=0.5", |s| s.split("i", &[None, Some(2)], Remainder::Exact).map(|_| ()),
         "split: loop `i`: a non-constant extent cannot be split exactly; use the guard or tail strategy"),
        ("fc:M=8,K=8,N=8", |s| s.fuse("m", "k").map(|_| ()),
         "fuse: loop `m`: `k` is not the only statement in its body (loops must be perfectly nested)"),
        ("bcr-fc:M=16,K=16,N=1,block=4x4,sparsity=0.5", |s| s.fuse("j", "n").map(|_| ()),
         "fuse: loop `j`: `n` is not the only statement in its body"),
        ("fc:M=8,K=8,N=8", |s| s.reorder(&["m"]),
         "reorder: loop `m`: needs at least two loops"),
        ("fc:M=8,K=8,N=8", |s| s.reorder(&["m", "m"]),
         "reorder: loop `m`: named twice"),
        ("fc:M=8,K=8,N=8", |s| s.reorder(&["k", "init_n"]),
         "reorder: loop `k`: the loops are not nested in one another"),
        ("bcr-fc:M=16,K=16,N=2,block=4x4,sparsity=0.5", |s| s.reorder(&["n", "i"]),
         "reorder: loop `i`: the named loops are not perfectly nested (a let, if, store or sequence sits between them)"),
        ("fc:M=8,K=8,N=8", |s| s.parallel("k"),
         "parallel: loop `k`: `k` is a reduction loop: its iterations accumulate into the same elements of `Y`"),
        ("fc:M=8,K=8,N=8", |s| s.vectorize("k"),
         "vectorize: loop `k`: `k` is a reduction loop"),
        ("fc:M=8,K=8,N=8", |s| s.vectorize("m"),
         "vectorize: loop `m`: only innermost loops can be vectorized"),
        ("fc:M=8,K=8,N=128", |s| s.vectorize("init_n"),
         "vectorize: loop `init_n`: extent 128 is outside 1..=64"),
        ("bcr-fc:M=16,K=16,N=1,block=4x4,sparsity=0.5", |s| s.parallel("b"),
         "parallel: loop `b`: cannot prove that different iterations of `b` write different elements of `Y`"),
        ("bcr-fc:M=16,K=16,N=1,block=4x4,sparsity=0.5", |s| s.unroll("i"),
         "unroll: loop `i`: extent is not a constant"),
        ("fc:M=8,K=8,N=8", |s| { s.parallel("m")?; s.parallel("n") },
         "parallel: loop `n`: an enclosing loop is already parallel (nested parallelism is not supported)"),
        ("fc:M=8,K=8,N=8", |s| { s.unroll("k")?; s.vectorize("k") },
         "vectorize: loop `k`: loop is already unrolled"),
        ("fc:M=8,K=8,N=8", |s| s.bind("m", ForKind::Parallel),
         "bind: loop `m`: `parallel` is not a GPU axis (block_x..z, thread_x..z)"),
        ("fc:M=8,K=8,N=8", |s| { s.bind("m", ForKind::ThreadX)?; s.bind("n", ForKind::ThreadX) },
         "bind: loop `n`: axis thread_x is already bound by an enclosing loop"),
        ("fc:M=8,K=8,N=8", |s| s.sample_perfect_tile("m", 2, 0).map(|_| ()),
         "sample_perfect_tile: loop `m`: max_innermost must be at least 1"),
        ("bcr-fc:M=16,K=16,N=1,block=4x4,sparsity=0.5", |s| s.sample_perfect_tile("j", 2, 4).map(|_| ()),
         "sample_perfect_tile: loop `j`: extent is not a positive constant"),
        ("fc:M=8,K=8,N=8", |s| s.sample_categorical(&[1, 2], &[1.0]).map(|_| ()),
         "sample_categorical: loop `-`: 2 candidates with 1 probabilities"),
        ("fc:M=8,K=8,N=8", |s| s.split_by("m", vec![Factor::Sampled { sample: 0, index: 0 }, Factor::Infer], Remainder::Exact).map(|_| ()),
         "split: loop `m`: factor refers to instruction 0, which is not an earlier sample with output 0"),
    ];
    assert!(cases.len() >= 15);
    for (spec, step, want) in cases {
        let w = Workload::from_spec_str(spec).unwrap();
        let mut s = Schedule::from_workload(&w).unwrap();
        let before_func = s.func().clone();
        let before_trace = s.trace().clone();
        // Multi-step cases: the last step fails; compare against the state before it.
        let err = step(&mut s).expect_err(want).to_string();
        assert!(
            err.starts_with(want) || err.contains(want),
            "\n  got  {err}\n  want {want}"
        );
        if before_trace.instructions.len() == s.trace().instructions.len() {
            assert_eq!(
                s.func(),
                &before_func,
                "failed primitive changed the function: {want}"
            );
        }
    }
}

#[test]
fn duplicate_loop_names_are_refused() {
    let text = "fn f(Y: out f32[4]) {\n  for (i, 0, 4) {\n    Y[i] = 0.0;\n  }\n  for (i, 0, 4) {\n    Y[i] = 1.0;\n  }\n}\n";
    let f = tir::parse_function(text).unwrap();
    let e = Schedule::new(f, BTreeMap::new()).unwrap_err().to_string();
    assert_eq!(
        e,
        "loop name `i` is bound more than once; schedules address loops by unique names"
    );
}
