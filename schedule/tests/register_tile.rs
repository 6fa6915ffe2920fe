//! Register tiles: same results as the workload's reference (interpreter) on random
//! convs and FCs with several output columns, what they refuse, and trace round trips.

mod common;

use common::{assert_close_seed, wl};
use proptest::prelude::*;
use schedule::{ColumnOrder, RowOrder, Schedule, Trace};
use tir::workload::Workload;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random FC shapes with N > 1 output columns, blocks and sparsity, with or without
    /// row and column reordering, any rows per tile and piece width, then offset
    /// specialization: tiles keep the results, or refuse only when too large.
    #[test]
    fn fc_tiles_keep_results(
        (m, k, br, bc) in (1usize..60, 1usize..40).prop_flat_map(|(m, k)| (Just(m), Just(k), 1..=m.min(32), 1..=k.min(16))),
        n in 2usize..40,
        sparsity in 0.0f64..=0.95,
        seed in 0u64..1000,
        rows in 1i64..=8,
        lanes in 1i64..=20,
        row_order in prop::option::of(prop_oneof![Just(RowOrder::BlockColumn), Just(RowOrder::RowCount)]),
        col_order in prop::option::of(prop_oneof![Just(ColumnOrder::FirstUse), Just(ColumnOrder::UseCount)]),
        specialize in any::<bool>(),
    ) {
        let w = wl(&format!("bcr-fc:M={m},K={k},N={n},bias=1,act=relu,block={br}x{bc},sparsity={sparsity:.3},seed={seed}"));
        let mut s = Schedule::from_workload(&w).unwrap();
        if let Some(o) = row_order { s.reorder_rows("W", o).unwrap(); }
        if let Some(o) = col_order { s.reorder_columns("W", o).unwrap(); }
        let before = s.clone();
        match s.register_tile("W", rows, lanes) {
            Ok(_) => {
                let text = tir::print_function(s.func());
                prop_assert!(text.contains("alloc tile"), "{}", text);
                prop_assert!(text.contains("unrolled"), "{}", text);
            }
            Err(e) => {
                prop_assert!((rows as usize) * n > schedule::primitive::bcr::MAX_TILE, "{}", e);
                prop_assert!(e.to_string().contains("over 384"), "{}", e);
                prop_assert_eq!(s.func(), before.func());
            }
        }
        if specialize { let _ = s.specialize_offsets("W"); }
        assert_close_seed(&w, &s, seed + 1);
    }

    /// Random convs (channels, kernel size, stride, padding, dilation, batch) tiled
    /// over their output rows keep the results.
    #[test]
    fn conv_tiles_keep_results(
        c in 1usize..12,
        o in 1usize..20,
        hw in 3usize..12,
        kk in prop_oneof![Just(1usize), Just(3)],
        stride in 1usize..3,
        pad in 0usize..2,
        batch in 1usize..3,
        block in 1usize..9,
        sparsity in 0.0f64..=0.9,
        seed in 0u64..1000,
        rows in 1i64..=6,
        lanes in prop_oneof![Just(4i64), Just(8), Just(16)],
        specialize in any::<bool>(),
    ) {
        let spec = format!(
            "bcr-conv2d:C={c},O={o},H={hw},W={hw},k={kk},stride={stride},pad={pad},batch={batch},bias=1,block={block}x{block},sparsity={sparsity:.3},seed={seed}"
        );
        let Ok(w) = Workload::from_spec_str(&spec) else { return Ok(()); };
        let mut s = Schedule::from_workload(&w).unwrap();
        let out = (hw + 2 * pad - kk) / stride + 1;
        if let Err(e) = s.register_tile("W", rows, lanes) {
            // One output position in all (a 1x1 output of one image): nothing to tile.
            prop_assert_eq!(batch * out * out, 1, "{}", e);
            prop_assert!(e.to_string().contains("only loops of one iteration"), "{}", e);
        }
        if specialize { let _ = s.specialize_offsets("W"); }
        assert_close_seed(&w, &s, seed + 2);
    }
}

/// The benchmark's conv (3x3, 56x56 output rows, 32x32 blocks at 90%: 10 kept rows
/// each), scaled down in channels: two tiles of 5 rows per entry, no rest rows, each
/// 56-wide output row in three 16-lane pieces and a fourth full piece over the last 16
/// positions (40..55) in the tile's own columns 48..63, of which the writeback takes
/// the last 8; the trace replays to the same function.
#[test]
fn conv_tiles_of_the_benchmark_shape() {
    let w = wl("bcr-conv2d:C=32,O=64,H=56,W=56,k=3,pad=1,block=32x32,sparsity=0.9,seed=3");
    let mut s = Schedule::from_workload(&w).unwrap();
    let loops = s.register_tile("W", 5, 16).unwrap();
    assert_eq!(loops, ["i_o", "i_r", "i_p", "i_l"]);
    let text = tir::print_function(s.func());
    assert!(text.contains("alloc tile: f32[5, 64] local"), "{text}");
    assert!(text.contains("unrolled for (i_p, 0, 3)"), "{text}");
    assert!(text.contains("vectorized for (i_l, 0, 16)"), "{text}");
    assert!(text.contains("vectorized for (i_lt, 0, 16)"), "{text}");
    assert!(text.contains("let ow = 40 + i_lt"), "{text}");
    assert!(text.contains("tile[i_r, 48 + i_lt]"), "{text}");
    // The writeback: 48 positions from columns 0..47, then 8 from columns 56..63.
    assert!(text.contains("vectorized for (ow_a, 0, 48)"), "{text}");
    assert!(text.contains("vectorized for (ow_a, 0, 8)"), "{text}");
    assert!(text.contains("tile[i_r, 56 + ow_a]"), "{text}");
    // The column's input position is computed once per column, outside the rows.
    let col = text.find("let c = col / 9").expect("per-column let");
    let rows = text.find("unrolled for (i_r, 0, 5)").expect("rows loop");
    assert!(col < rows, "{text}");
    s.specialize_offsets("W").unwrap();
    assert_close_seed(&w, &s, 5);
    let json = s.trace().to_json();
    assert!(
        json.contains(r#"{"op":"register_tile","weight":"W","rows":5,"lanes":16}"#),
        "{json}"
    );
    let back = Trace::from_json(&json).unwrap();
    let replayed = back.replay(&w.func, &w.weights).unwrap();
    assert_eq!(replayed.func(), s.func());
}

/// Rows that do not fill a tile run in a one-row rest loop: 10 kept rows with 4 per
/// tile leave 2, whose binders are renamed so every loop name stays unique.
#[test]
fn rest_rows_run_one_at_a_time() {
    let w = wl("bcr-fc:M=64,K=64,N=24,block=32x32,sparsity=0.9,seed=2");
    let mut s = Schedule::from_workload(&w).unwrap();
    s.register_tile("W", 4, 16).unwrap();
    let text = tir::print_function(s.func());
    assert!(text.contains("for (i_t, nr / 4 * 4, nr % 4)"), "{text}");
    assert!(text.contains("alloc tile_t: f32[1, 32] local"), "{text}");
    assert!(text.contains("j_t"), "{text}");
    assert_close_seed(&w, &s, 7);
}

/// The tail of the position loop: a full overlapping piece after at least one full
/// piece (all loads in bounds: positions `E - lanes .. E`), a narrow piece when the
/// loop is shorter than a piece or the wider tile would pass `MAX_TILE`, none when the
/// pieces divide the loop; the results stay the interpreter's in each case.
#[test]
fn tails_overlap_where_a_full_piece_fits() {
    // The FC of `n` columns register-tiled with `rows` rows of 16 lanes, checked
    // against the interpreter, and its printed IR.
    let tiled = |m: usize, n: usize, block: usize, sparsity: f64, rows: i64| {
        let w = wl(&format!(
            "bcr-fc:M={m},K={m},N={n},block={block}x{block},sparsity={sparsity},seed=4"
        ));
        let mut s = Schedule::from_workload(&w).unwrap();
        s.register_tile("W", rows, 16).unwrap();
        assert_close_seed(&w, &s, 11 + n as u64);
        tir::print_function(s.func())
    };
    // N = 20, 16 lanes: one piece, then positions 4..19 into columns 16..31.
    let text = tiled(48, 20, 16, 0.7, 3);
    assert!(text.contains("alloc tile: f32[3, 32] local"), "{text}");
    assert!(text.contains("let n = 4 + i_lt"), "{text}");
    assert!(
        text.contains("Y[row, 16 + n_a] = Y[row, 16 + n_a] + tile[i_r, 28 + n_a]"),
        "{text}"
    );
    // N = 12 < 16 lanes: no full piece, the tail is the narrow loop.
    let text = tiled(48, 12, 16, 0.7, 3);
    assert!(text.contains("alloc tile: f32[3, 12] local"), "{text}");
    assert!(text.contains("vectorized for (i_lt, 0, 12)"), "{text}");
    // N = 40, 16 lanes: 8 rows take the overlapping tail (8 x 48 = 384), 9 rows would
    // pass 384 with it (9 x 48), so their 8-wide tail stays.
    let text = tiled(64, 40, 32, 0.3, 8);
    assert!(text.contains("alloc tile: f32[8, 48] local"), "{text}");
    let text = tiled(64, 40, 32, 0.3, 9);
    assert!(text.contains("alloc tile: f32[9, 40] local"), "{text}");
    assert!(text.contains("vectorized for (i_lt, 0, 8)"), "{text}");
    // N = 32: two pieces, no tail.
    let text = tiled(48, 32, 16, 0.7, 3);
    assert!(text.contains("alloc tile: f32[3, 32] local"), "{text}");
    assert!(!text.contains("i_lt"), "{text}");
}

/// What a register tile refuses, each time leaving the schedule as it was.
#[test]
fn refusals_name_the_reason_and_change_nothing() {
    let cases: [(&str, i64, i64, &str); 6] = [
        // One output position per row: nothing to tile (row vectorization's case).
        (
            "bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.8,seed=1",
            2,
            16,
            "no loop over output positions",
        ),
        // A GRU's products have one position per row too.
        (
            "bcr-gru:hidden=32,input=32,block=16x16,sparsity=0.8,seed=1",
            2,
            16,
            "no loop over output positions",
        ),
        (
            "bcr-fc:M=64,K=64,N=8,block=16x16,sparsity=0.8,seed=1",
            0,
            16,
            "rows must be between 1 and 16",
        ),
        (
            "bcr-fc:M=64,K=64,N=8,block=16x16,sparsity=0.8,seed=1",
            2,
            65,
            "lanes must be between 1 and 64",
        ),
        (
            "bcr-fc:M=64,K=64,N=200,block=16x16,sparsity=0.8,seed=1",
            2,
            16,
            "over 384",
        ),
        ("fc:M=64,K=64,N=8,seed=1", 2, 16, "W"),
    ];
    for (spec, rows, lanes, reason) in cases {
        let w = wl(spec);
        let mut s = Schedule::from_workload(&w).unwrap();
        let weight = if spec.starts_with("bcr-gru") {
            "W_ih"
        } else {
            "W"
        };
        let before = s.clone();
        let e = s
            .register_tile(weight, rows, lanes)
            .expect_err(spec)
            .to_string();
        assert!(e.contains(reason), "{spec}: {e}");
        assert_eq!(s.func(), before.func(), "{spec}");
        assert_eq!(s.trace(), before.trace(), "{spec}");
    }
    // Twice, and after row vectorization (the rows loop is gone or changed).
    let w = wl("bcr-fc:M=64,K=64,N=8,block=16x16,sparsity=0.8,seed=1");
    let mut s = Schedule::from_workload(&w).unwrap();
    s.register_tile("W", 2, 8).unwrap();
    let e = s.register_tile("W", 2, 8).unwrap_err().to_string();
    assert!(
        e.contains("expected one loop over an entry's kept rows"),
        "{e}"
    );
    let mut v = Schedule::from_workload(&w).unwrap();
    v.vectorize_rows("W", 4).unwrap();
    assert!(v.register_tile("W", 2, 8).is_err());
}
