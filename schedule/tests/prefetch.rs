//! Value prefetch: same results as the workload's reference (interpreter, which checks
//! every prefetch index against the buffer's bounds) on random FCs and GRUs in the
//! forms the tuner builds, the statement's shape, refusals and trace round trips.

mod common;

use common::{assert_close_seed, wl};
use proptest::prelude::*;
use schedule::{Schedule, Trace};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random FC shapes and blocks, lowered or windowed (masked rows, block-row
    /// windows) or register-tiled (N > 1), any distance from 1 byte to 64 KB (past the
    /// last entry too), then offset specialization: the results stay the reference's
    /// and the interpreter finds every prefetch in bounds.
    #[test]
    fn prefetch_keeps_results_and_stays_in_bounds(
        (m, k, br, bc) in (1usize..70, 1usize..50).prop_flat_map(|(m, k)| (Just(m), Just(k), 1..=m.min(32), 1..=k.min(16))),
        n in 1usize..4,
        sparsity in 0.0f64..=0.95,
        seed in 0u64..1000,
        form in 0u8..3,
        bytes in prop_oneof![1i64..64, 64i64..70000],
        specialize in any::<bool>(),
    ) {
        let w = wl(&format!("bcr-fc:M={m},K={k},N={n},bias=1,block={br}x{bc},sparsity={sparsity:.3},seed={seed}"));
        let mut s = Schedule::from_workload(&w).unwrap();
        match form {
            1 => { let _ = s.vectorize_rows_masked("W", 8).and_then(|_| s.window_block_rows("W").map(|_| ())); }
            2 => { let _ = s.register_tile("W", 2, 4); }
            _ => {}
        }
        match s.prefetch_values("W", bytes) {
            Ok(pf) => {
                let text = tir::print_function(s.func());
                prop_assert!(text.contains(&format!("unrolled for ({pf}, 0, ")), "{}", text);
                prop_assert!(text.contains("prefetch W_val[min(W_val_ptr[min(b + "), "{}", text);
            }
            Err(e) => {
                // Only an all-pruned weight has nothing to prefetch.
                prop_assert!(e.to_string().contains("stores no value"), "{}", e);
            }
        }
        if specialize { let _ = s.specialize_offsets("W"); }
        assert_close_seed(&w, &s, seed + 4);
    }
}

/// FC 2048 at 90% in 16x16 blocks (25 values, 100 bytes per entry): 2 KB ahead is 21
/// entries, two cache lines each; after specialization the offset is `min(b + 21,
/// 16383) * 25`. A GRU prefetches each of its two weights; the trace replays.
#[test]
fn distances_and_lines_follow_the_entry_size() {
    let w = wl("bcr-fc:M=2048,K=2048,N=1,block=16x16,sparsity=0.9,seed=1");
    let mut s = Schedule::from_workload(&w).unwrap();
    s.vectorize_rows_masked("W", 8).unwrap();
    s.window_block_rows("W").unwrap();
    s.prefetch_values("W", 2048).unwrap();
    s.specialize_offsets("W").unwrap();
    let text = tir::print_function(s.func());
    assert!(text.contains("unrolled for (pf, 0, 2)"), "{text}");
    assert!(
        text.contains("prefetch W_val[min(min(b + 21, 16383) * 25 + pf * 16, 409599)]"),
        "{text}"
    );
    let json = s.trace().to_json();
    assert!(
        json.contains(r#"{"op":"prefetch_values","weight":"W","bytes_ahead":2048}"#),
        "{json}"
    );
    let back = Trace::from_json(&json).unwrap();
    assert_eq!(back.replay(&w.func, &w.weights).unwrap().func(), s.func());

    let g = wl("bcr-gru:hidden=32,input=24,block=8x8,sparsity=0.75,seed=3");
    let mut s = Schedule::from_workload(&g).unwrap();
    s.prefetch_values("W_ih", 1024).unwrap();
    s.prefetch_values("W_hh", 1024).unwrap();
    let text = tir::print_function(s.func());
    assert!(text.contains("prefetch W_ih_val["), "{text}");
    assert!(text.contains("prefetch W_hh_val["), "{text}");
    assert_close_seed(&g, &s, 9);
}

/// Refusals name the weight and the reason and leave the schedule as it was.
#[test]
fn refusals_name_the_reason_and_change_nothing() {
    let w = wl("bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.8,seed=1");
    for (bytes, reason) in [(0, "must be positive"), (-64, "must be positive")] {
        let mut s = Schedule::from_workload(&w).unwrap();
        let before = s.clone();
        let e = s.prefetch_values("W", bytes).unwrap_err().to_string();
        assert!(e.contains(reason) && e.contains('W'), "{e}");
        assert_eq!(s.func(), before.func());
    }
    let mut s = Schedule::from_workload(&w).unwrap();
    s.prefetch_values("W", 1024).unwrap();
    let before = s.clone();
    let e = s.prefetch_values("W", 1024).unwrap_err().to_string();
    assert!(e.contains("already prefetched"), "{e}");
    assert_eq!(s.func(), before.func());
    let dense = wl("fc:M=8,K=8,N=1,seed=1");
    let mut s = Schedule::from_workload(&dense).unwrap();
    assert!(s.prefetch_values("W", 1024).is_err());
}
