//! Masked row vectorization and block-row windows: same results as the workload's
//! reference (interpreter) on random patterns, what they refuse, and trace round trips.

mod common;

use common::{assert_close_seed, wl};
use proptest::prelude::*;
use schedule::{ColumnOrder, RowOrder, Schedule, Trace};

/// Most kept rows of an entry of BCR weight `weight`.
fn max_rows(s: &Schedule, weight: &str) -> i64 {
    let p = s.weights()[&format!("{weight}_row_ptr")].as_i32().unwrap();
    p.windows(2)
        .map(|w| i64::from(w[1] - w[0]))
        .max()
        .unwrap_or(0)
}

/// The smallest of 8, 16, 32, 64 lanes holding every entry's rows.
fn lanes_for(s: &Schedule, weight: &str) -> Option<i64> {
    let r = max_rows(s, weight);
    [8, 16, 32, 64].into_iter().find(|l| *l >= r)
}

/// Errors a window may give on a valid schedule: a partition too tall (row
/// reordering merges block rows), an output shorter than a window, or parallel
/// windows that overlap at the matrix end.
fn acceptable_refusal(e: &str) -> bool {
    e.contains("windows hold at most")
        || e.contains("fewer than a window")
        || e.contains("overlap")
        || e.contains("do not fit its window")
        || e.contains("keeps no rows")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random matrix-vector BCR shapes, blocks and sparsity, with or without row and
    /// column reordering, load-redundancy elimination, masking, an explicit partition
    /// and offset specialization: windows keep the results, or refuse with a reason.
    #[test]
    fn windows_keep_results(
        (m, k, br, bc) in (1usize..80, 1usize..60).prop_flat_map(|(m, k)| (Just(m), Just(k), 1..=m.min(40), 1..=k.min(16))),
        sparsity in 0.0f64..=0.95,
        seed in 0u64..1000,
        rows in prop::option::of(prop_oneof![Just(RowOrder::BlockColumn), Just(RowOrder::RowCount)]),
        cols in prop::option::of(prop_oneof![Just(ColumnOrder::FirstUse), Just(ColumnOrder::UseCount)]),
        lre in any::<bool>(),
        masked in any::<bool>(),
        partition in any::<bool>(),
        specialize in any::<bool>(),
    ) {
        let w = wl(&format!("bcr-fc:M={m},K={k},N=1,block={br}x{bc},sparsity={sparsity:.3},seed={seed}"));
        let mut s = Schedule::from_workload(&w).unwrap();
        if let Some(o) = rows { s.reorder_rows("W", o).unwrap(); }
        if let Some(o) = cols { s.reorder_columns("W", o).unwrap(); }
        if lre { s.eliminate_redundant_loads("W").unwrap(); }
        let Some(lanes) = lanes_for(&s, "W") else { return Ok(()); };
        if masked { s.vectorize_rows_masked("W", lanes).unwrap(); } else { s.vectorize_rows("W", lanes).unwrap(); }
        if partition { s.partition_block_rows("W").unwrap(); }
        match s.window_block_rows("W") {
            Ok(_) => {
                let text = tir::print_function(s.func());
                prop_assert!(text.contains("W_wsel["), "{}", text);
                prop_assert!(!text.contains("W_rows["), "the scatter is gone: {}", text);
            }
            Err(e) => prop_assert!(acceptable_refusal(&e.to_string()), "{}", e),
        }
        if specialize { let _ = s.specialize_offsets("W"); }
        assert_close_seed(&w, &s, seed + 1);
    }

    /// Masked row vectorization alone (any lane count, several chunks per entry)
    /// keeps the results and the weight's size.
    #[test]
    fn masked_vectorization_keeps_results(
        (m, k, br, bc) in (1usize..50, 1usize..50).prop_flat_map(|(m, k)| (Just(m), Just(k), 1..=m.min(20), 1..=k.min(12))),
        n in 1usize..4,
        sparsity in 0.0f64..=0.95,
        seed in 0u64..1000,
        lanes in 2i64..20,
    ) {
        let w = wl(&format!("bcr-fc:M={m},K={k},N={n},block={br}x{bc},sparsity={sparsity:.3},seed={seed}"));
        let mut s = Schedule::from_workload(&w).unwrap();
        let before = s.weights()["W_val"].len();
        s.vectorize_rows_masked("W", lanes).unwrap();
        prop_assert_eq!(s.weights()["W_val"].len(), before);
        assert_close_seed(&w, &s, seed + 3);
    }
}

/// The shape of the benchmark's FC (32x32 blocks, 10 kept rows and columns each),
/// scaled down: one window of 32 rows per block row, every entry's rows in one chunk
/// of 16 masked lanes, the window loop vectorized, results as the reference, and the
/// trace replays to the same function.
#[test]
fn fc_windows_of_a_uniform_layer() {
    let w = wl("bcr-fc:M=128,K=96,N=1,block=32x32,sparsity=0.9,seed=4");
    let mut s = Schedule::from_workload(&w).unwrap();
    assert_eq!(max_rows(&s, "W"), 10);
    s.vectorize_rows_masked("W", 16).unwrap();
    s.window_block_rows("W").unwrap();
    s.specialize_offsets("W").unwrap();
    assert_close_seed(&w, &s, 9);
    let bases = s.weights()["W_wbase"].as_i32().unwrap();
    assert_eq!(bases, &[0, 32, 64, 96]);
    // One byte per selector.
    let sel = s.weights()["W_wsel"].as_u8().unwrap();
    assert_eq!(sel.len(), 12 * 32);
    // Every entry selects each of its 10 lanes once; the other 22 rows say "none" (16).
    for e in sel.chunks(32) {
        let mut lanes: Vec<u8> = e.iter().copied().filter(|l| *l != 16).collect();
        lanes.sort_unstable();
        assert_eq!(lanes, (0..10).collect::<Vec<_>>());
    }
    let text = tir::print_function(s.func());
    assert!(text.contains("W_wsel: weight u8[384]"), "{text}");
    assert!(text.contains("win: f32[32] local"), "{text}");
    assert!(text.contains("vectorized for (wk, 0, 32)"), "{text}");
    assert!(
        text.contains("select(i_o * 16 + i_l < nr, W_val[v0 + j * nr + (i_o * 16 + i_l)], 0.0)"),
        "{text}"
    );
    let json = serde_json::to_string(s.trace()).unwrap();
    assert!(
        json.contains(r#""op":"vectorize_rows","weight":"W","lanes":16,"masked":true"#),
        "{json}"
    );
    assert!(json.contains(r#""op":"window_block_rows""#), "{json}");
    let back: Trace = serde_json::from_str(&json).unwrap();
    let again = back.replay(&w.func, &w.weights).unwrap();
    assert_eq!(again.func(), s.func());
    assert_eq!(again.weights(), s.weights());
    // An unmasked trace's JSON is as before this flag existed.
    let mut p = Schedule::from_workload(&w).unwrap();
    p.vectorize_rows("W", 16).unwrap();
    let json = serde_json::to_string(p.trace()).unwrap();
    assert!(
        json.contains(r#"{"op":"vectorize_rows","weight":"W","lanes":16}"#),
        "{json}"
    );
}

/// A GRU's two weights (batch 1) both get windows, with the partition loops made
/// parallel, and the step still computes the reference.
#[test]
fn gru_weights_get_windows() {
    let w = wl("bcr-gru:input=48,hidden=32,batch=1,block=16x16,sparsity=0.8,seed=5");
    let mut s = Schedule::from_workload(&w).unwrap();
    for weight in ["W_ih", "W_hh"] {
        let lanes = lanes_for(&s, weight).unwrap();
        s.vectorize_rows_masked(weight, lanes).unwrap();
        s.window_block_rows(weight).unwrap();
        s.specialize_offsets(weight).unwrap();
    }
    assert_close_seed(&w, &s, 2);
    let text = tir::print_function(s.func());
    assert!(
        text.contains("W_ih_wsel[") && text.contains("W_hh_wsel["),
        "{text}"
    );
}

/// What windows refuse, with the reason, leaving the schedule unchanged; and what
/// masked vectorization makes other primitives refuse.
#[test]
fn window_illegal_uses() {
    let fc1 = wl("bcr-fc:M=64,K=48,N=1,block=16x16,sparsity=0.7,seed=3");
    let err = |s: &mut Schedule| {
        let before = (s.func().clone(), s.weights().clone());
        let e = s.window_block_rows("W").unwrap_err().to_string();
        assert_eq!((s.func().clone(), s.weights().clone()), before, "{e}");
        e
    };
    // Not vectorized.
    let mut s = Schedule::from_workload(&fc1).unwrap();
    let e = err(&mut s);
    assert!(e.contains("apply vectorize_rows first"), "{e}");
    // Fewer lanes than an entry's rows.
    let mut s = Schedule::from_workload(&fc1).unwrap();
    assert!(max_rows(&s, "W") > 2);
    s.vectorize_rows("W", 2).unwrap();
    let e = err(&mut s);
    assert!(e.contains("more than the 2 lanes"), "{e}");
    // Several output columns per row (N = 4).
    let fc4 = wl("bcr-fc:M=64,K=48,N=4,block=16x16,sparsity=0.7,seed=3");
    let mut s = Schedule::from_workload(&fc4).unwrap();
    s.vectorize_rows("W", 16).unwrap();
    let e = err(&mut s);
    assert!(e.contains("windows take one"), "{e}");
    // Twice.
    let mut s = Schedule::from_workload(&fc1).unwrap();
    s.vectorize_rows_masked("W", 16).unwrap();
    s.window_block_rows("W").unwrap();
    let e = err(&mut s);
    assert!(e.contains("already have windows"), "{e}");
    // After specialization.
    let mut s = Schedule::from_workload(&fc1).unwrap();
    s.vectorize_rows_masked("W", 16).unwrap();
    s.specialize_offsets("W").unwrap();
    let e = err(&mut s);
    assert!(e.contains("specialize"), "{e}");
    // A block row taller than the largest window.
    let tall = wl("bcr-fc:M=160,K=16,N=1,block=80x16,sparsity=0.3,seed=1");
    let mut s = Schedule::from_workload(&tall).unwrap();
    s.vectorize_rows_masked("W", 64).unwrap_or_else(|_| {
        // more rows than 64 lanes: the lanes check refuses first
        Vec::new()
    });
    let e = s.window_block_rows("W").unwrap_err().to_string();
    assert!(
        e.contains("windows hold at most 64") || e.contains("lanes"),
        "{e}"
    );
    // Masked values are column-major: the primitives reading row-major entries refuse.
    let mut s = Schedule::from_workload(&fc1).unwrap();
    s.vectorize_rows_masked("W", 8).unwrap();
    assert!(s.reorder_rows("W", RowOrder::BlockColumn).is_err());
    assert!(s.reorder_columns("W", ColumnOrder::FirstUse).is_err());
    assert!(s.eliminate_redundant_loads("W").is_err());
    assert!(s
        .tile_blocks("W", 2, None, schedule::Remainder::Tail)
        .is_err());
    assert!(s.vectorize_rows("W", 4).is_err());
}
