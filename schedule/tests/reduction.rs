//! `vectorize_reduction`: dense reductions summed in vector lanes keep their results
//! (up to reassociation) on FC, GRU and LSTM workloads of random shapes, and what it
//! refuses is refused with the reason, leaving the schedule unchanged.

mod common;

use common::{assert_close_seed, wl};
use proptest::prelude::*;
use schedule::{Remainder, Schedule};

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Dense FC of random shape: the reduction over `k` in 2..16 lanes (with or
    /// without a tail) computes the same outputs; the lane loop is vectorized and the
    /// tail loop exists exactly when the lanes do not divide K.
    #[test]
    fn fc_reduction_in_lanes_keeps_results(
        m in 1usize..12,
        k in 2usize..70,
        n in 1usize..4,
        lanes in 2i64..16,
        bias in any::<bool>(),
        seed in 0u64..1000,
    ) {
        prop_assume!(lanes as usize <= k);
        let w = wl(&format!("fc:M={m},K={k},N={n},bias={},act=relu,seed={seed}", u8::from(bias)));
        let mut s = Schedule::from_workload(&w).unwrap();
        let loops = s.vectorize_reduction("k", lanes).unwrap();
        let tail = k as i64 % lanes != 0;
        prop_assert_eq!(loops.len(), if tail { 3 } else { 2 });
        let text = tir::print_function(s.func());
        let vector_loop = format!("vectorized for (k_l, 0, {lanes})");
        prop_assert!(text.contains(&vector_loop), "{}", text);
        prop_assert_eq!(text.contains("for (k_t, "), tail);
        assert_close_seed(&w, &s, seed + 1);
    }
}

#[test]
fn rnn_reductions_and_trace_replay() {
    for (spec, loops) in [
        ("gru:input=24,hidden=16,batch=2,seed=3", ["gi_k", "gh_k"]),
        ("lstm:input=9,hidden=8,batch=1,seed=4", ["gi_k", "gh_k"]),
    ] {
        let w = wl(spec);
        let mut s = Schedule::from_workload(&w).unwrap();
        for l in loops {
            s.vectorize_reduction(l, 4).unwrap();
        }
        assert_close_seed(&w, &s, 3);
        let replayed = s.trace().replay(&w.func, &w.weights).unwrap();
        assert_eq!(replayed.func(), s.func(), "{spec}: replay differs");
    }
    // After a split of the output loop and with the outer loop parallel.
    let w = wl("fc:M=32,K=40,N=1,seed=2");
    let mut s = Schedule::from_workload(&w).unwrap();
    s.split("m", &[None, Some(4)], Remainder::Tail).unwrap();
    s.parallel("m_0").unwrap();
    s.vectorize_reduction("k", 8).unwrap();
    assert_close_seed(&w, &s, 4);
}

#[test]
fn refusals_leave_the_schedule_unchanged() {
    let w = wl("fc:M=8,K=12,N=2,seed=1");
    let err = |s: &mut Schedule, l: &str, lanes: i64| {
        let before = (s.func().clone(), s.weights().clone());
        let e = s.vectorize_reduction(l, lanes).unwrap_err().to_string();
        assert_eq!((s.func().clone(), s.weights().clone()), before, "{e}");
        e
    };
    let mut s = Schedule::from_workload(&w).unwrap();
    assert!(err(&mut s, "k", 1).contains("lanes must be between 2 and 64"));
    assert!(err(&mut s, "k", 65).contains("lanes must be between 2 and 64"));
    assert!(err(&mut s, "k", 16).contains("fewer than 16 lanes"));
    assert!(err(&mut s, "q", 4).contains("q"));
    // Not reductions: the output initialization, a loop whose body is a loop.
    assert!(err(&mut s, "init_n", 2).contains("not an update"));
    assert!(err(&mut s, "n", 2).contains("not a single store"));
    // The output element depends on the loop.
    let text =
        tir::print_function(&w.func).replace("Y[m, n] = Y[m, n]", "Y[m, k % 2] = Y[m, k % 2]");
    let f = tir::parse_function(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut t = Schedule::new(f, w.weights.clone()).unwrap();
    assert!(err(&mut t, "k", 4).contains("not a reduction"));
    // A data-dependent extent (BCR kept columns).
    let b = wl("bcr-fc:M=16,K=16,N=1,block=8x8,sparsity=0.5,seed=1");
    let mut s = Schedule::from_workload(&b).unwrap();
    assert!(err(&mut s, "j", 2).contains("must be constants"));
    // Twice: the loop is gone.
    let mut s = Schedule::from_workload(&w).unwrap();
    s.vectorize_reduction("k", 4).unwrap();
    assert!(err(&mut s, "k", 4).contains("k"));
}
