//! Versioning by kept-column count: same results as the workload's reference
//! (interpreter) on random FCs, convs and GRU steps whose kept weights are spread
//! unevenly over the blocks, after any of the primitives it follows; which counts get
//! a copy; what it refuses; trace round trips.

mod common;

use common::{assert_close_seed, wl};
use proptest::prelude::*;
use schedule::primitive::bcr::{version_counts, MAX_VERSIONS};
use schedule::{Schedule, Trace};
use tir::workload::{GivenMatrix, GivenWeights, Workload};

/// The distinct non-zero kept-column counts of the entries of `weight` in `s`.
fn column_counts(s: &Schedule, weight: &str) -> Vec<i32> {
    let ptr = s.weights()[&format!("{weight}_col_ptr")].as_i32().unwrap();
    let mut counts: Vec<i32> = ptr
        .windows(2)
        .map(|p| p[1] - p[0])
        .filter(|c| *c > 0)
        .collect();
    counts.sort_unstable();
    counts.dedup();
    counts
}

/// Every BCR weight of `w` (`W`, or `W_ih` and `W_hh`).
fn bcr_weights(w: &Workload) -> Vec<String> {
    w.matrices.iter().map(|m| m.name.clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random layers pruned with the kept weights spread over the blocks (or uniform),
    /// with or without load-redundancy elimination, rows vectorized (padded or masked
    /// lanes) and block-row windows, or a register tile, column decoding and a value
    /// prefetch before it: the versioned function computes the reference's outputs,
    /// with one `if nc == K` per column count (at most [`MAX_VERSIONS`]).
    #[test]
    fn versioning_keeps_results(
        kind in 0usize..3,
        m in 1usize..40,
        k in 1usize..40,
        n in 1usize..4,
        block in 1usize..10,
        sparsity in 0.0f64..=0.95,
        spread in any::<bool>(),
        seed in 0u64..1000,
        lre in any::<bool>(),
        rows in prop::option::of((prop_oneof![Just(4i64), Just(8), Just(16)], any::<bool>(), any::<bool>())),
        tile in prop::option::of((1i64..=5, prop_oneof![Just(4i64), Just(8)])),
        decode in any::<bool>(),
        prefetch in any::<bool>(),
    ) {
        let sparse = format!(
            "block={block}x{block},sparsity={sparsity:.3}{},seed={seed}",
            if spread { ",spread=blocks" } else { "" }
        );
        let spec = match kind {
            0 => format!("bcr-fc:M={m},K={k},N={n},bias=1,{sparse}"),
            1 => format!("bcr-conv2d:C={},O={m},H=6,W=6,k=3,pad=1,bias=1,{sparse}", k % 6 + 1),
            _ => format!("bcr-gru:hidden={},input={k},batch={n},{sparse}", m % 20 + 1),
        };
        let Ok(w) = Workload::from_spec_str(&spec) else { return Ok(()); };
        let mut s = Schedule::from_workload(&w).unwrap();
        for weight in bcr_weights(&w) {
            if lre { let _ = s.eliminate_redundant_loads(&weight); }
            if let Some((lanes, masked, window)) = rows {
                let done = if masked {
                    s.vectorize_rows_masked(&weight, lanes)
                } else {
                    s.vectorize_rows(&weight, lanes)
                };
                if done.is_ok() && window { let _ = s.window_block_rows(&weight); }
            }
            if let Some((r, lanes)) = tile { let _ = s.register_tile(&weight, r, lanes); }
            if decode { let _ = s.tabulate_column_decoding(&weight); }
            if prefetch { let _ = s.prefetch_values(&weight, 256); }
            let counts = column_counts(&s, &weight);
            match s.version_column_counts(&weight) {
                Ok(()) => {
                    let text = tir::print_function(s.func());
                    let ifs = text.matches(" == ").count();
                    prop_assert!(ifs >= counts.len().min(MAX_VERSIONS), "{} counts {:?}\n{}", ifs, counts, text);
                }
                Err(e) => {
                    prop_assert!(counts.is_empty(), "{}: {}", spec, e);
                    prop_assert!(e.to_string().contains("keeps a column"), "{}", e);
                }
            }
        }
        assert_close_seed(&w, &s, seed + 7);
    }
}

/// The counts that get a copy: by kept weights, most first, ties to the smaller count,
/// empty entries left out, at most [`MAX_VERSIONS`].
#[test]
fn the_counts_with_most_weights_come_first() {
    // Entries of 3, 5, 3, 0 and 2 columns holding 9, 10, 6, 0 and 10 weights.
    let cols = [3, 5, 3, 0, 2];
    let weights = [9, 10, 6, 0, 10];
    assert_eq!(version_counts(&cols, &weights), vec![3, 2, 5]);
    assert!(version_counts(&[0, 0], &[0, 0]).is_empty());
    let many: Vec<usize> = (1..=40).collect();
    let got = version_counts(&many, &many);
    assert_eq!(got.len(), MAX_VERSIONS);
    assert_eq!(got[0], 40);
    assert_eq!(*got.last().unwrap(), 40 - MAX_VERSIONS as i64 + 1);
}

/// A conv whose blocks keep 4 to 13 columns (the spread of the MNIST CNN's second
/// conv): one copy per count in the order of their weights, each with its count as a
/// constant, its kept-columns loops unrolled and its loops renamed, the unchanged body last; the trace replays to the
/// same function; the results stay the reference's.
#[test]
fn a_spread_conv_gets_one_copy_per_column_count() {
    let w = wl("bcr-conv2d:C=16,O=32,H=7,W=7,k=3,pad=1,bias=1,block=16x16,sparsity=0.75,spread=blocks,seed=1");
    let mut s = Schedule::from_workload(&w).unwrap();
    s.register_tile("W", 1, 4).unwrap();
    s.tabulate_column_decoding("W").unwrap();
    let counts = column_counts(&s, "W");
    assert!(counts.len() > 3, "{counts:?}");
    s.version_column_counts("W").unwrap();
    let text = tir::print_function(s.func());
    for c in &counts {
        assert!(text.contains(&format!("if nc == {c} {{")), "{c}\n{text}");
        assert!(
            text.contains(&format!("unrolled for (j_c{c}, 0, {c})")),
            "{c}\n{text}"
        );
        assert!(
            text.contains(&format!("unrolled for (j_dec_c{c}, 0, {c})")),
            "{c}\n{text}"
        );
    }
    // The unchanged body is the last branch.
    assert!(text.contains("for (j, 0, nc)"), "{text}");
    assert_close_seed(&w, &s, 11);
    let json = s.trace().to_json();
    assert!(
        json.contains(r#"{"op":"version_column_counts","weight":"W"}"#),
        "{json}"
    );
    let replayed = Trace::from_json(&json)
        .unwrap()
        .replay(&w.func, &w.weights)
        .unwrap();
    assert_eq!(replayed.func(), s.func());
}

/// Refusals name the weight and the reason and leave the schedule as it was: a second
/// application, the other BCR primitives after it, a weight that keeps nothing, a
/// dense weight.
#[test]
fn refusals_name_the_reason_and_change_nothing() {
    let w = wl("bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.9,spread=blocks,seed=2");
    let mut s = Schedule::from_workload(&w).unwrap();
    s.version_column_counts("W").unwrap();
    let before = s.clone();
    let again = s.version_column_counts("W").unwrap_err().to_string();
    assert!(again.contains("versioned"), "{again}");
    let later = s.vectorize_rows("W", 4).unwrap_err().to_string();
    assert!(later.contains("versioned by kept-column count"), "{later}");
    assert!(later.contains('W'), "{later}");
    assert_eq!(s.func(), before.func());
    assert_eq!(s.trace(), before.trace());

    // A layer whose matrix keeps nothing.
    let empty = tir::BcrMatrix::from_dense(
        &tir::Matrix::zeros(8, 8),
        tir::BlockShape { rows: 4, cols: 4 },
    )
    .unwrap();
    let spec: tir::WorkloadSpec = "bcr-fc:M=8,K=8,N=1,block=4x4,sparsity=0.5,seed=1"
        .parse()
        .unwrap();
    let given = GivenWeights {
        matrices: vec![GivenMatrix::Bcr(empty)],
        biases: Vec::new(),
    };
    let w = Workload::with_weights(spec, &given).unwrap();
    let mut s = Schedule::from_workload(&w).unwrap();
    let e = s.version_column_counts("W").unwrap_err().to_string();
    assert!(e.contains("no entry of `W` keeps a column"), "{e}");

    let dense = wl("fc:M=8,K=8,N=1,seed=1");
    let mut s = Schedule::from_workload(&dense).unwrap();
    let e = s.version_column_counts("W").unwrap_err().to_string();
    assert!(e.contains('W'), "{e}");
}
