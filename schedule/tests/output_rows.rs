//! Output-row partitions of convs: bit-identical results to the unpartitioned schedule
//! on random convs after the primitives they follow, the partitioned loops' form on the
//! benchmark's conv, what they refuse, and trace round trips.

mod common;

use common::{assert_close_seed, outputs, wl};
use proptest::prelude::*;
use schedule::{Schedule, Trace};
use tir::workload::Workload;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random convs (channels, kernel size, stride, padding, batch, blocks), lowered
    /// or register-tiled (with its tail nest), with or without the column-decoding
    /// table, split into 2 to 9 parts (more parts than rows included), then offsets
    /// specialized: each output sums the entries in the same order as before the
    /// partition, so the interpreter's results are bit-identical, and the reference's.
    #[test]
    fn partitions_keep_results_bit_for_bit(
        c in 1usize..8,
        o in 1usize..12,
        hw in 3usize..10,
        kk in prop_oneof![Just(1usize), Just(3), Just(5)],
        stride in 1usize..3,
        pad in 0usize..3,
        batch in 1usize..3,
        block in 1usize..9,
        sparsity in 0.0f64..=0.9,
        seed in 0u64..1000,
        tile in prop::option::of((1i64..=5, prop_oneof![Just(4i64), Just(8), Just(16)])),
        table in any::<bool>(),
        parts in 2i64..10,
        specialize in any::<bool>(),
    ) {
        let spec = format!(
            "bcr-conv2d:C={c},O={o},H={hw},W={hw},k={kk},stride={stride},pad={pad},batch={batch},bias=1,block={block}x{block},sparsity={sparsity:.3},seed={seed}"
        );
        let Ok(w) = Workload::from_spec_str(&spec) else { return Ok(()); };
        let mut s = Schedule::from_workload(&w).unwrap();
        if let Some((rows, lanes)) = tile { let _ = s.register_tile("W", rows, lanes); }
        if table { let _ = s.tabulate_column_decoding("W"); }
        let before = s.clone();
        match s.partition_output_rows("W", parts) {
            Ok(part) => {
                let text = tir::print_function(s.func());
                prop_assert!(text.contains(&format!("parallel for ({part}, 0, ")), "{}", text);
                if specialize { let _ = s.specialize_offsets("W"); }
                let mut unpartitioned = before.clone();
                if specialize { let _ = unpartitioned.specialize_offsets("W"); }
                prop_assert_eq!(outputs(&s, &w, seed + 1), outputs(&unpartitioned, &w, seed + 1));
                assert_close_seed(&w, &s, seed + 1);
            }
            Err(e) => {
                // Only a conv with a single output row has nothing to share out.
                prop_assert!(e.to_string().contains("nothing to share out"), "{}: {}", spec, e);
                prop_assert_eq!(s.func(), before.func());
            }
        }
    }
}

/// The benchmark's conv (3x3 64->64 56x56, 64x16 blocks at 90%: one block row, so the
/// block-row partition has nothing to share) with 5-row register tiles and the
/// column-decoding table, in 4 parts: a parallel loop of 4 parts of 14 rows around the
/// block loop, the tile's nest and its tail nest both restricted to the part's rows,
/// the table still filled once per entry (per part); offsets specialize after it and
/// the trace replays to the same function.
#[test]
fn the_benchmark_conv_runs_its_rows_in_parallel_parts() {
    let w = wl("bcr-conv2d:C=16,O=64,H=56,W=56,k=3,pad=1,block=64x16,sparsity=0.9,seed=1");
    let mut s = Schedule::from_workload(&w).unwrap();
    s.register_tile("W", 5, 16).unwrap();
    s.tabulate_column_decoding("W").unwrap();
    let part = s.partition_output_rows("W", 4).unwrap();
    assert_eq!(part, "oh_part");
    let text = tir::print_function(s.func());
    assert!(text.contains("parallel for (oh_part, 0, 4) {"), "{text}");
    assert!(
        text.contains("for (oh, oh_part * 14, min(56 - oh_part * 14, 14))"),
        "{text}"
    );
    assert!(
        text.contains("for (oh_t, oh_part * 14, min(56 - oh_part * 14, 14))"),
        "{text}"
    );
    // The partition loop encloses the block loop.
    let part_at = text.find("parallel for (oh_part").unwrap();
    let block_at = text.find("for (b, ").unwrap();
    assert!(part_at < block_at, "{text}");
    s.specialize_offsets("W").unwrap();
    assert_close_seed(&w, &s, 5);
    let json = s.trace().to_json();
    assert!(
        json.contains(r#"{"op":"partition_output_rows","weight":"W","parts":4}"#),
        "{json}"
    );
    let back = Trace::from_json(&json).unwrap();
    let replayed = back.replay(&w.func, &w.weights).unwrap();
    assert_eq!(replayed.func(), s.func());
}

/// More parts than rows: one row per part, no empty part; results unchanged.
#[test]
fn parts_are_never_empty() {
    let w = wl("bcr-conv2d:C=4,O=8,H=3,W=5,k=3,pad=1,block=4x4,sparsity=0.5,seed=2");
    let mut s = Schedule::from_workload(&w).unwrap();
    s.partition_output_rows("W", 8).unwrap();
    let text = tir::print_function(s.func());
    assert!(text.contains("parallel for (oh_part, 0, 3) {"), "{text}");
    assert!(
        text.contains("for (oh, oh_part * 1, min(3 - oh_part * 1, 1))"),
        "{text}"
    );
    assert_close_seed(&w, &s, 2);
}

/// Refusals name the weight and the reason and leave the schedule as it was: FCs and
/// recurrent layers have no output-row loop; fewer than 2 parts; a second partition
/// (the rows no longer start at 0); a block loop already in a parallel block-row
/// partition; offsets already specialized (no block loop header left); an output-row
/// copy it does not know (load-redundancy elimination's gather); a conv with one
/// output row; a dense weight.
#[test]
fn refusals_name_the_reason_and_change_nothing() {
    let conv = "bcr-conv2d:C=8,O=16,H=6,W=6,k=3,pad=1,block=4x4,sparsity=0.5,seed=1";
    let cases: Vec<(&str, &str, i64, Vec<&str>, &str)> = vec![
        (
            "bcr-fc:M=64,K=64,N=8,block=16x16,sparsity=0.8,seed=1",
            "W",
            2,
            vec![],
            "no loop over output rows",
        ),
        (
            "bcr-gru:hidden=32,input=32,block=16x16,sparsity=0.8,seed=1",
            "W_hh",
            2,
            vec![],
            "no loop over output rows",
        ),
        (conv, "W", 1, vec![], "at least 2 parts"),
        (conv, "W", 2, vec!["partition"], "(was it split"),
        (
            conv,
            "W",
            2,
            vec!["block rows"],
            "already runs inside a parallel loop",
        ),
        (conv, "W", 2, vec!["specialize"], "specialize_offsets"),
        // Load-redundancy elimination's gather copies the rows in `oh_ld`, a loop this
        // primitive does not restrict.
        (conv, "W", 2, vec!["lre"], "named like an output-row loop"),
        (
            "bcr-conv2d:C=4,O=8,H=3,W=5,k=3,block=4x4,sparsity=0.5,seed=2",
            "W",
            2,
            vec![],
            "nothing to share out",
        ),
        ("conv2d:C=4,O=4,H=6,W=6,k=3,seed=1", "W", 2, vec![], "W"),
    ];
    for (spec, weight, parts, first, reason) in cases {
        let w = wl(spec);
        let mut s = Schedule::from_workload(&w).unwrap();
        for f in &first {
            match *f {
                "partition" => {
                    s.partition_output_rows(weight, 2).unwrap();
                }
                "block rows" => {
                    let p = s.partition_block_rows(weight).unwrap();
                    assert!(p.parallel, "{spec}: the block-row partition is parallel");
                }
                "lre" => {
                    s.eliminate_redundant_loads(weight).unwrap();
                }
                _ => s.specialize_offsets(weight).unwrap(),
            }
        }
        let before = s.clone();
        let e = s
            .partition_output_rows(weight, parts)
            .expect_err(spec)
            .to_string();
        assert!(e.contains(reason), "{spec} after {first:?}: {e}");
        assert!(e.contains(weight), "{spec}: {e}");
        assert_eq!(s.func(), before.func(), "{spec}");
        assert_eq!(s.trace(), before.trace(), "{spec}");
    }
}
