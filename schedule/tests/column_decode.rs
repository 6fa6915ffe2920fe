//! Column-decoding tables: same results as the workload's reference (interpreter) on
//! random convs after any of the primitives they follow, the table's form on the
//! benchmark's conv, what they refuse, and trace round trips.

mod common;

use common::{assert_close_seed, wl};
use proptest::prelude::*;
use schedule::{RowOrder, Schedule, Trace};
use tir::workload::Workload;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random convs (channels, kernel size, stride, padding, batch, blocks), with or
    /// without row reordering (column reordering does not apply to convs), load-redundancy elimination, a register tile
    /// and offset specialization around the table: the results stay the reference's.
    /// Kernels of one tap (1x1) decode nothing and are refused unchanged.
    #[test]
    fn decoding_tables_keep_results(
        c in 1usize..10,
        o in 1usize..16,
        hw in 3usize..10,
        kk in prop_oneof![Just(1usize), Just(2), Just(3), Just(5)],
        stride in 1usize..3,
        pad in 0usize..3,
        batch in 1usize..3,
        block in 1usize..9,
        sparsity in 0.0f64..=0.9,
        seed in 0u64..1000,
        row_order in prop::option::of(prop_oneof![Just(RowOrder::BlockColumn), Just(RowOrder::RowCount)]),
        lre in any::<bool>(),
        tile in prop::option::of((1i64..=5, prop_oneof![Just(4i64), Just(8), Just(16)])),
        specialize in any::<bool>(),
    ) {
        let spec = format!(
            "bcr-conv2d:C={c},O={o},H={hw},W={hw},k={kk},stride={stride},pad={pad},batch={batch},bias=1,block={block}x{block},sparsity={sparsity:.3},seed={seed}"
        );
        let Ok(w) = Workload::from_spec_str(&spec) else { return Ok(()); };
        let mut s = Schedule::from_workload(&w).unwrap();
        if let Some(o) = row_order { s.reorder_rows("W", o).unwrap(); }
        if lre { let _ = s.eliminate_redundant_loads("W"); }
        if let Some((rows, lanes)) = tile { let _ = s.register_tile("W", rows, lanes); }
        let before = s.clone();
        match s.tabulate_column_decoding("W") {
            Ok(fill) => {
                prop_assert!(kk > 1, "a 1x1 kernel was tabulated");
                let text = tir::print_function(s.func());
                prop_assert!(text.contains(&format!("for ({fill}, 0, nc)")), "{}", text);
                // The only decoding left is the fill loop's.
                for line in text.lines().map(str::trim_start) {
                    let decodes = line.contains("col") && (line.contains(" / ") || line.contains(" % "));
                    prop_assert!(!decodes || line.starts_with("coldec["), "{}\n{}", line, text);
                }
            }
            Err(e) => {
                prop_assert_eq!(kk, 1, "{}", e);
                prop_assert!(e.to_string().contains("no kept column is decoded by a division"), "{}", e);
                prop_assert_eq!(s.func(), before.func());
            }
        }
        if specialize { let _ = s.specialize_offsets("W"); }
        assert_close_seed(&w, &s, seed + 3);
    }
}

/// The benchmark's conv (3x3, 56x56, 32x32 blocks at 90%, scaled down in channels)
/// with 5-row register tiles: the table is `i32[10, 3]` in registers or on the stack,
/// filled once per entry by the fill loop with the column's channel and taps, and the
/// tile's kept-columns loop reads them instead of dividing; offset specialization still
/// applies after it, and the trace replays to the same function.
#[test]
fn the_tiled_conv_reads_its_taps_from_the_table() {
    let w = wl("bcr-conv2d:C=32,O=64,H=56,W=56,k=3,pad=1,block=32x32,sparsity=0.9,seed=3");
    let mut s = Schedule::from_workload(&w).unwrap();
    s.register_tile("W", 5, 16).unwrap();
    let fill = s.tabulate_column_decoding("W").unwrap();
    assert_eq!(fill, "j_dec");
    let text = tir::print_function(s.func());
    assert!(text.contains("alloc coldec: i32[10, 3] local"), "{text}");
    assert!(text.contains("for (j_dec, 0, nc)"), "{text}");
    assert!(text.contains("let col_dec = W_cols[c0 + j_dec]"), "{text}");
    assert!(text.contains("coldec[j_dec, 0] = col_dec / 9"), "{text}");
    assert!(
        text.contains("coldec[j_dec, 1] = col_dec / 3 % 3"),
        "{text}"
    );
    assert!(text.contains("coldec[j_dec, 2] = col_dec % 3"), "{text}");
    assert!(text.contains("let c = coldec[j, 0]"), "{text}");
    assert!(text.contains("let ky = coldec[j, 1]"), "{text}");
    assert!(text.contains("let kx = coldec[j, 2]"), "{text}");
    // The tile and its rest rows no longer divide, nor load the column.
    assert_eq!(text.matches("col / ").count(), 0, "{text}");
    assert_eq!(text.matches("col % ").count(), 0, "{text}");
    assert!(!text.contains("let col = W_cols"), "{text}");
    s.specialize_offsets("W").unwrap();
    assert_close_seed(&w, &s, 5);
    let json = s.trace().to_json();
    assert!(
        json.contains(r#"{"op":"tabulate_column_decoding","weight":"W"}"#),
        "{json}"
    );
    let back = Trace::from_json(&json).unwrap();
    let replayed = back.replay(&w.func, &w.weights).unwrap();
    assert_eq!(replayed.func(), s.func());
}

/// Load-redundancy elimination's gather decodes the column too: both the gather and
/// (where it still decodes) the kernel read the table, and one table column serves
/// both copies of each decoding.
#[test]
fn the_gather_of_redundant_load_elimination_reads_the_table() {
    let w = wl("bcr-conv2d:C=8,O=16,H=6,W=6,k=3,pad=1,block=8x8,sparsity=0.5,seed=4");
    let mut s = Schedule::from_workload(&w).unwrap();
    s.eliminate_redundant_loads("W").unwrap();
    s.tabulate_column_decoding("W").unwrap();
    let text = tir::print_function(s.func());
    assert!(text.contains("alloc coldec: i32["), "{text}");
    assert!(text.contains(", 3] local"), "{text}");
    assert!(text.contains("let c_ld = coldec[j_ld, 0]"), "{text}");
    assert_close_seed(&w, &s, 6);
}

/// Refusals name the weight and the reason and leave the schedule as it was: FCs and
/// recurrent layers use their columns as they are, 1x1 convs divide by 1, a second
/// application finds the decoding already tabulated, a dense weight is not BCR.
#[test]
fn refusals_name_the_reason_and_change_nothing() {
    let cases: [(&str, &str, &str); 4] = [
        (
            "bcr-fc:M=64,K=64,N=8,block=16x16,sparsity=0.8,seed=1",
            "W",
            "no kept column is decoded by a division",
        ),
        (
            "bcr-gru:hidden=32,input=32,block=16x16,sparsity=0.8,seed=1",
            "W_ih",
            "no kept column is decoded by a division",
        ),
        (
            "bcr-conv2d:C=16,O=16,H=6,W=6,k=1,block=8x8,sparsity=0.5,seed=1",
            "W",
            "no kept column is decoded by a division",
        ),
        ("conv2d:C=4,O=4,H=6,W=6,k=3,seed=1", "W", "W"),
    ];
    for (spec, weight, reason) in cases {
        let w = wl(spec);
        let mut s = Schedule::from_workload(&w).unwrap();
        let before = s.clone();
        let e = s
            .tabulate_column_decoding(weight)
            .expect_err(spec)
            .to_string();
        assert!(e.contains(reason), "{spec}: {e}");
        assert!(e.contains(weight), "{spec}: {e}");
        assert_eq!(s.func(), before.func(), "{spec}");
        assert_eq!(s.trace(), before.trace(), "{spec}");
    }
    let w = wl("bcr-conv2d:C=8,O=8,H=6,W=6,k=3,pad=1,block=4x4,sparsity=0.5,seed=1");
    let mut s = Schedule::from_workload(&w).unwrap();
    s.tabulate_column_decoding("W").unwrap();
    let before = s.clone();
    let e = s.tabulate_column_decoding("W").unwrap_err().to_string();
    assert!(e.contains("already tabulated"), "{e}");
    assert_eq!(s.func(), before.func());
}
