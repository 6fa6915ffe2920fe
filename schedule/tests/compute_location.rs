//! compute_at, compute_inline and decompose_reduction: the interpreter agrees before
//! and after on random workloads and parameters; every illegal use fails with its
//! reason; traces replay to the same IR.

use proptest::prelude::*;
use schedule::{Remainder, Schedule, ScheduleError, Trace};
use tir::workload::Workload;
use tir::Function;

/// Runs `func` and the workload's own function on random inputs and compares every
/// output with relative tolerance `tol` (0: bit-equal).
fn assert_same(w: &Workload, reference: &Function, func: &Function, seed: u64, tol: f32) {
    let inputs = w.random_inputs(seed);
    let want = w
        .interpret_function(reference, &inputs)
        .expect("reference runs");
    let got = w
        .interpret_function(func, &inputs)
        .unwrap_or_else(|e| panic!("{e}\n{}", tir::print_function(func)));
    for (name, t) in &want {
        let (a, b) = (t.as_f32().unwrap_or(&[]), got[name].as_f32().unwrap_or(&[]));
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let ok = if tol == 0.0 {
                x.to_bits() == y.to_bits()
            } else {
                (x - y).abs() <= tol * x.abs().max(y.abs()).max(1.0)
            };
            assert!(ok, "{name}[{i}]: {x} != {y}\n{}", tir::print_function(func));
        }
    }
}

fn reason<T: std::fmt::Debug>(r: Result<T, ScheduleError>) -> String {
    match r {
        Err(ScheduleError::Illegal { reason, .. }) => reason,
        other => panic!("expected an Illegal error, got {other:?}"),
    }
}

fn workload(spec: &str) -> (Workload, Schedule) {
    let w = Workload::from_spec_str(spec).expect("spec");
    let s = Schedule::from_workload(&w).expect("schedule");
    (w, s)
}

/// A function with the parameters of `bias-add:M=4,N=3` (so that workload's weights
/// and inputs run it) from a body.
fn bias_add_fn(body: &str) -> (Workload, Function) {
    let w = Workload::from_spec_str("bias-add:M=4,N=3").expect("spec");
    let text = format!("fn f(X: in f32[4, 3], B: weight f32[4], Y: out f32[4, 3]) {{ {body} }}");
    let f = tir::parse_function(&text).unwrap_or_else(|e| panic!("{e}"));
    (w, f)
}

/// `T = X + B` into a temporary, then `Y = act(T)` (two consumers when `twice`).
fn inline_fn(m: usize, n: usize, act: &str, twice: bool) -> (Workload, Function) {
    let w = Workload::from_spec_str(&format!("bias-add:M={m},N={n}")).expect("spec");
    let second = if twice {
        format!("for (m2, 0, {m}) {{ for (n2, 0, {n}) {{ Y[m2, n2] = Y[m2, n2] * T[m2, n2]; }} }}")
    } else {
        String::new()
    };
    let text = format!(
        "fn f(X: in f32[{m}, {n}], B: weight f32[{m}], Y: out f32[{m}, {n}]) {{
           alloc T: f32[{m}, {n}] local {{
             for (t_m, 0, {m}) {{ for (t_n, 0, {n}) {{ T[t_m, t_n] = X[t_m, t_n] + B[t_m]; }} }}
             for (m, 0, {m}) {{ for (n, 0, {n}) {{ Y[m, n] = {act}(T[m, n]); }} }}
             {second}
           }}
         }}"
    );
    let f = tir::parse_function(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (w, f)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// FC with a random split of `m` or `n`, the init computed at a random legal loop,
    /// then (sometimes) decomposed again before a random ancestor: bit-equal outputs.
    #[test]
    fn fc_compute_at_and_decompose_preserve_outputs(
        m in 1usize..6, k in 1usize..5, n in 1usize..9, bias in any::<bool>(),
        act in prop_oneof![Just("none"), Just("relu"), Just("tanh")],
        split_n in any::<bool>(), factor in 1i64..5, guard in any::<bool>(),
        at in 0usize..3, decompose in any::<bool>(), up in 0usize..3, seed in 0u64..100,
    ) {
        let (w, mut s) = workload(&format!("fc:M={m},K={k},N={n},bias={},act={act}", bias as u8));
        let (name, extent) = if split_n { ("n", n) } else { ("m", m) };
        let rem = if !guard && extent as i64 % factor == 0 { Remainder::Exact } else { Remainder::Guard };
        let loops = s.split(name, &[None, Some(factor)], rem).expect("split");
        // Chain of loops from the root down to the innermost spatial loop.
        let chain: Vec<String> = if split_n {
            vec!["m".into(), loops[0].clone(), loops[1].clone()]
        } else {
            vec![loops[0].clone(), loops[1].clone(), "n".into()]
        };
        let at_loop = &chain[at];
        s.compute_at("init_m", at_loop).expect("compute_at");
        assert_same(&w, &w.func, s.func(), seed, 0.0);
        if decompose {
            let up = up.min(at);
            let guarded_m = !split_n && rem == Remainder::Guard && m as i64 % factor != 0;
            if guarded_m && at == 2 && up < 2 {
                // The split's guard sits between `m_1` and `n`: not a perfect nest.
                let r = reason(s.decompose_reduction(at_loop, &chain[up]));
                prop_assert!(r.contains("through a perfect nest of loops"), "{}", r);
                return Ok(());
            }
            let new = s.decompose_reduction(at_loop, &chain[up]).expect("decompose_reduction");
            prop_assert_eq!(new.len(), at - up + 1);
            assert_same(&w, &w.func, s.func(), seed, 0.0);
        }
    }

    /// Conv init computed at `o`, or at the innermost spatial loop once the reduction
    /// loops are moved inside.
    #[test]
    fn conv_compute_at_preserves_outputs(
        c in 1usize..3, o in 1usize..4, h in 3usize..6, k in 1usize..4, pad in 0usize..2,
        bias in any::<bool>(), inner in any::<bool>(), seed in 0u64..100,
    ) {
        let (w, mut s) = workload(&format!("conv2d:C={c},O={o},H={h},W={h},k={k},pad={pad},bias={}", bias as u8));
        if inner {
            s.reorder(&["o", "nb", "oh", "ow", "c", "ky", "kx"]).expect("reorder");
            s.compute_at("init_nb", "ow").expect("compute_at");
        } else {
            s.compute_at("init_nb", "o").expect("compute_at");
        }
        assert_same(&w, &w.func, s.func(), seed, 0.0);
        let at = if inner { "ow" } else { "o" };
        s.decompose_reduction(at, "o").expect("decompose");
        assert_same(&w, &w.func, s.func(), seed, 0.0);
    }

    /// A bias-add temporary inlined into one or two activation consumers (split first
    /// or not): bit-equal outputs, and the temporary is gone.
    #[test]
    fn compute_inline_preserves_outputs(
        m in 1usize..6, n in 1usize..6,
        act in prop_oneof![Just("tanh"), Just("sigmoid"), Just("abs")],
        twice in any::<bool>(), split in any::<bool>(), seed in 0u64..100,
    ) {
        let (w, f) = inline_fn(m, n, act, twice);
        let mut s = Schedule::new(f.clone(), w.weights.clone()).expect("schedule");
        if split {
            s.split("n", &[None, Some(2)], Remainder::Guard).expect("split");
        }
        s.compute_inline("t_m").expect("compute_inline");
        let text = tir::print_function(s.func());
        prop_assert!(!text.contains("T["), "{}", text);
        assert_same(&w, &f, s.func(), seed, 0.0);
    }
}

#[test]
fn compute_at_fc_prints_the_restricted_init() {
    let (w, mut s) = workload("fc:M=4,K=3,N=2,bias=1");
    s.compute_at("init_m", "n").unwrap();
    let text = tir::print_function(s.func());
    let want = "  for (m, 0, 4) {
    for (n, 0, 2) {
      for (init_m, m, 1) {
        for (init_n, n, 1) {
          Y[init_m, init_n] = B[init_m];
        }
      }
      for (k, 0, 3) {";
    assert!(text.contains(want), "{text}");
    assert_same(&w, &w.func, s.func(), 0, 0.0);
    // At `m`: a whole row.
    let (_, mut s) = workload("fc:M=4,K=3,N=2,bias=1");
    s.compute_at("init_m", "m").unwrap();
    assert!(tir::print_function(s.func()).contains("for (init_n, 0, 2)"));
}

#[test]
fn compute_at_rejects_recomputation_inside_the_reduction() {
    let (_, mut s) = workload("fc:M=4,K=3,N=2");
    let r = reason(s.compute_at("init_m", "k"));
    assert!(
        r.contains("every iteration of `k` touches the same elements of `Y`"),
        "{r}"
    );
    let (_, mut s) = workload("conv2d:C=2,O=2,H=4,W=4,k=3");
    let r = reason(s.compute_at("init_nb", "c"));
    assert!(
        r.contains("every iteration of `c` touches the same elements of `Y`"),
        "{r}"
    );
}

#[test]
fn compute_at_rejects_an_intervening_stage() {
    let (_, mut s) = workload("fc:M=4,K=3,N=2,act=relu");
    let r = reason(s.compute_at("init_m", "act_n"));
    assert!(
        r.contains("a stage between the producer and the consumer touches `Y`"),
        "{r}"
    );
    let (_, f) = bias_add_fn(
        "alloc T: f32[4, 3] local { alloc A: f32[4] local {
           for (a, 0, 4) { A[a] = B[a]; }
           for (t_m, 0, 4) { for (t_n, 0, 3) { T[t_m, t_n] = A[t_m]; } }
           for (z, 0, 4) { A[z] = 0.0; }
           for (m, 0, 4) { for (n, 0, 3) { Y[m, n] = T[m, n]; } }
         } }",
    );
    let mut s = Schedule::new(f, Default::default()).unwrap();
    let r = reason(s.compute_at("t_m", "n"));
    assert!(r.contains("writes `A`, which the producer reads"), "{r}");
}

#[test]
fn compute_at_rejects_non_stages_reductions_and_partial_consumers() {
    let (_, mut s) = workload("fc:M=4,K=3,N=2,act=relu");
    let r = reason(s.compute_at("n", "act_n"));
    assert!(r.contains("not the outermost loop of a stage"), "{r}");
    let r = reason(s.compute_at("m", "act_n"));
    assert!(r.contains("is a reduction"), "{r}");
    let r = reason(s.compute_at("act_m", "n"));
    assert!(
        r.contains("is a reduction") || r.contains("not a loop of a later stage"),
        "{r}"
    );
    let (_, f) = bias_add_fn(
        "alloc T: f32[4, 3] local {
           for (t_m, 0, 4) { for (t_n, 0, 3) { T[t_m, t_n] = B[t_m]; } }
           for (m, 0, 2) { for (n, 0, 3) { Y[m, n] = T[m, n]; } }
           for (m2, 0, 4) { for (n2, 0, 3) { Y[m2, n2] = Y[m2, n2] + T[m2, n2]; } }
         }",
    );
    let mut s = Schedule::new(f, Default::default()).unwrap();
    let r = reason(s.compute_at("t_m", "n"));
    assert!(
        r.contains("not every element [0, 3] the producer writes"),
        "{r}"
    );
    let (_, f) = bias_add_fn(
        "alloc T: f32[4, 3] local {
           for (t_m, 0, 4) { for (t_n, 0, 3) { T[t_m, t_n] = B[t_m]; } }
           for (m, 0, 4) { if m < 2 { for (n, 0, 3) { Y[m, n] = T[m, n]; } } }
         }",
    );
    let mut s = Schedule::new(f, Default::default()).unwrap();
    let r = reason(s.compute_at("t_m", "n"));
    assert!(r.contains("is under the condition `m < 2`"), "{r}");
    assert!(matches!(
        s.compute_at("t_m", "nope"),
        Err(ScheduleError::NoSuchLoop { .. })
    ));
}

#[test]
fn compute_inline_rejects_reductions_outputs_and_unread_buffers() {
    let (_, mut s) = workload("fc:M=4,K=3,N=2");
    let r = reason(s.compute_inline("m"));
    assert!(r.contains("is a reduction (its value reads `Y`)"), "{r}");
    let r = reason(s.compute_inline("init_m"));
    assert!(r.contains("`Y` is an output parameter"), "{r}");
    let (_, f) = bias_add_fn(
        "alloc T: f32[4, 3] local {
           for (t_m, 0, 4) { for (t_n, 0, 3) { T[t_m, t_n] = B[t_m]; } }
           for (m, 0, 4) { for (n, 0, 3) { Y[m, n] = X[m, n]; } }
         }",
    );
    let mut s = Schedule::new(f, Default::default()).unwrap();
    let r = reason(s.compute_inline("t_m"));
    assert!(r.contains("`T` is read by no one"), "{r}");
    let (_, f) = bias_add_fn(
        "alloc T: f32[4, 3] local {
           for (t_m, 0, 4) { for (t_n, 0, 3) { T[t_m, t_n] = B[t_m]; } }
           for (z, 0, 3) { T[0, z] = 1.0; }
           for (m, 0, 4) { for (n, 0, 3) { Y[m, n] = T[m, n]; } }
         }",
    );
    let mut s = Schedule::new(f, Default::default()).unwrap();
    let r = reason(s.compute_inline("t_m"));
    assert!(r.contains("`T` is also written by another stage"), "{r}");
    let (_, f) = bias_add_fn(
        "alloc T: f32[4, 3] local {
           for (t_m, 0, 2) { for (t_n, 0, 3) { T[t_m, t_n] = B[t_m]; } }
           for (m, 0, 4) { for (n, 0, 3) { Y[m, n] = T[m, n]; } }
         }",
    );
    let mut s = Schedule::new(f, Default::default()).unwrap();
    let r = reason(s.compute_inline("t_m"));
    assert!(r.contains("does not write the whole of `T`"), "{r}");
}

#[test]
fn decompose_reduction_rejects_bad_shapes_and_shared_inits() {
    let (_, mut s) = workload("fc:M=4,K=3,N=2");
    let r = reason(s.decompose_reduction("m", "m"));
    assert!(r.contains("does not start with an init nest"), "{r}");
    s.compute_at("init_m", "n").unwrap();
    let r = reason(s.decompose_reduction("n", "k"));
    assert!(r.contains("is not `n` or an ancestor of it"), "{r}");
    let (_, f) = bias_add_fn(
        "for (m, 0, 4) { for (n, 0, 3) {
           Y[m, 0] = 0.0;
           for (k, 0, 2) { Y[m, 0] = Y[m, 0] + X[m, k]; }
         } }",
    );
    let mut s = Schedule::new(f, Default::default()).unwrap();
    let r = reason(s.decompose_reduction("n", "m"));
    assert!(
        r.contains("every iteration of `n` initialises the same elements of `Y`"),
        "{r}"
    );
    assert!(s.decompose_reduction("n", "n").is_err());
    let (_, f) = bias_add_fn(
        "for (m, 0, 4) {
           Y[m, 0] = 0.0;
           for (k, 0, 2) { Y[m, k] = Y[m, k] + X[m, k]; }
         }",
    );
    let mut s = Schedule::new(f, Default::default()).unwrap();
    let r = reason(s.decompose_reduction("m", "m"));
    assert!(r.contains("that the init does not write"), "{r}");
}

#[test]
fn compute_location_trace_replays_to_the_same_ir() {
    let (w, mut s) = workload("fc:M=6,K=4,N=6,bias=1,act=relu");
    s.split("n", &[None, Some(4)], Remainder::Guard).unwrap();
    s.compute_at("init_m", "n_1").unwrap();
    s.decompose_reduction("n_1", "n_0").unwrap();
    s.unroll("k").unwrap();
    let json = s.trace().to_json();
    for op in ["compute_at", "decompose_reduction"] {
        assert!(json.contains(&format!(r#""op":"{op}""#)), "{json}");
    }
    let replayed = Trace::from_json(&json)
        .unwrap()
        .replay(&w.func, &w.weights)
        .unwrap();
    assert_eq!(
        tir::print_function(replayed.func()),
        tir::print_function(s.func())
    );
    assert_same(&w, &w.func, replayed.func(), 3, 0.0);

    let (w, f) = inline_fn(3, 4, "tanh", true);
    let mut s = Schedule::new(f.clone(), w.weights.clone()).unwrap();
    s.compute_inline("t_m").unwrap();
    let json = s.trace().to_json();
    assert!(json.contains(r#""op":"compute_inline""#), "{json}");
    let replayed = Trace::from_json(&json)
        .unwrap()
        .replay(&f, &w.weights)
        .unwrap();
    assert_eq!(
        tir::print_function(replayed.func()),
        tir::print_function(s.func())
    );
}

#[test]
fn decompose_reduction_splits_a_select_init() {
    for at in ["m", "n", "k"] {
        let (w, f) = bias_add_fn(
            "for (m, 0, 4) { for (n, 0, 3) { for (k, 0, 3) {
               Y[m, n] = select(k == 0, B[m], Y[m, n]) + X[m, k] * X[k, n];
             } } }",
        );
        let mut s = Schedule::new(f.clone(), w.weights.clone()).unwrap();
        let new = s.decompose_reduction("k", at).unwrap();
        let text = tir::print_function(s.func());
        assert!(!text.contains("select"), "{text}");
        assert!(
            text.contains("Y[m, n] = Y[m, n] + X[m, k] * X[k, n];"),
            "{text}"
        );
        let want: &[&str] = match at {
            "m" => &["m_init", "n_init"],
            "n" => &["n_init"],
            _ => &[],
        };
        assert_eq!(new, want);
        for seed in 0..4 {
            assert_same(&w, &f, s.func(), seed, 0.0);
        }
        let replayed = Trace::from_json(&s.trace().to_json())
            .unwrap()
            .replay(&f, &w.weights)
            .unwrap();
        assert_eq!(tir::print_function(replayed.func()), text);
    }
}

#[test]
fn decompose_reduction_rejects_select_inits_shared_across_loops() {
    let (_, f) = bias_add_fn(
        "for (m, 0, 4) { for (n, 0, 3) { for (k, 0, 3) {
           Y[m, 0] = select(k == 0, 0.0, Y[m, 0]) + X[m, k];
         } } }",
    );
    let mut s = Schedule::new(f, Default::default()).unwrap();
    let r = reason(s.decompose_reduction("k", "m"));
    assert!(r.contains("`n` does not index `Y`"), "{r}");
    let (_, f) = bias_add_fn(
        "for (m, 0, 4) { for (k, 0, 3) {
           Y[m, k] = select(k == 0, 0.0, Y[m, k]) + X[m, k];
         } }",
    );
    let mut s = Schedule::new(f, Default::default()).unwrap();
    let r = reason(s.decompose_reduction("k", "m"));
    assert!(
        r.contains("`k` indexes `Y`: it is not a reduction loop"),
        "{r}"
    );
}

#[test]
fn rnn_gate_inits_compute_at_and_cache_in_an_alloc() {
    for spec in [
        "gru:hidden=4,input=3,batch=2",
        "lstm:hidden=3,input=5,batch=3",
    ] {
        let (w, mut s) = workload(spec);
        s.compute_at("gi_init_m", "gi_n").unwrap();
        s.compute_at("gh_init_m", "gh_m").unwrap();
        s.decompose_reduction("gi_n", "gi_m").unwrap();
        s.cache_write("gi_n", "gi", tir::MemScope::Local).unwrap();
        s.cache_read("gh_m", "h_prev", tir::MemScope::Local)
            .unwrap();
        for seed in 0..3 {
            assert_same(&w, &w.func, s.func(), seed, 0.0);
        }
    }
    // BCR gates: the block loops scatter rows through `W_ih_rows`.
    let (_, mut s) = workload("bcr-gru:hidden=8,input=8,block=4x4,sparsity=0.5");
    let r = reason(s.compute_at("gi_init_m", "gi_b"));
    assert!(r.contains("not an affine function"), "{r}");
}
