//! cache_read / cache_write: the interpreter agrees before and after on random
//! workloads and parameters; every illegal use fails with its reason; traces replay.

use proptest::prelude::*;
use schedule::{Remainder, Schedule, ScheduleError, Trace};
use tir::workload::Workload;
use tir::{Function, MemScope};

/// Runs `func` and the workload's own function on random inputs and compares every
/// output with relative tolerance `tol` (0: bit-equal).
fn assert_same(w: &Workload, func: &Function, seed: u64, tol: f32) {
    let inputs = w.random_inputs(seed);
    let want = w.interpret(&inputs).expect("reference runs");
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

fn illegal_reason(r: Result<String, ScheduleError>) -> String {
    match r {
        Err(ScheduleError::Illegal { reason, .. }) => reason,
        other => panic!("expected an Illegal error, got {other:?}"),
    }
}

fn fc(spec: &str) -> (Workload, Schedule) {
    let w = Workload::from_spec_str(spec).expect("spec");
    let s = Schedule::from_workload(&w).expect("schedule");
    (w, s)
}

fn remainder() -> impl Strategy<Value = Remainder> {
    prop_oneof![
        Just(Remainder::Exact),
        Just(Remainder::Guard),
        Just(Remainder::Tail)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// FC with a random split of `n`, a cache_read of X or W at a random loop and a
    /// cache_write of Y at a random loop: bit-equal outputs (nothing reassociates).
    #[test]
    fn fc_cache_read_write_preserve_outputs(
        m in 1usize..6, k in 1usize..6, n in 1usize..10, bias in any::<bool>(),
        factor in 1i64..5, rem in remainder(),
        read_at in 0usize..4, write_at in 0usize..4, read_w in any::<bool>(), seed in 0u64..100,
    ) {
        let (w, mut s) = fc(&format!("fc:M={m},K={k},N={n},bias={}", bias as u8));
        let rem = if rem == Remainder::Exact && n as i64 % factor != 0 { Remainder::Guard } else { rem };
        s.split("n", &[None, Some(factor)], rem).expect("split");
        let loops = ["m", "n_0", "n_1", "k"];
        let buffer = if read_w { "W" } else { "X" };
        let r = s.cache_read(loops[read_at], buffer, MemScope::Local);
        let wr = s.cache_write(loops[write_at], "Y", MemScope::Local);
        if rem != Remainder::Tail || loops[read_at] != "m" {
            prop_assert!(r.is_ok(), "{r:?}");
        }
        if rem != Remainder::Tail || loops[write_at] != "m" {
            prop_assert!(wr.is_ok(), "{wr:?}");
        }
        for res in [r, wr] {
            if let Err(e) = res {
                prop_assert!(matches!(e, ScheduleError::Illegal { .. }), "{e}");
            }
        }
        assert_same(&w, s.func(), seed, 0.0);
    }

    /// Padded, strided conv with cache_read of its input and cache_write of Y at random loops.
    #[test]
    fn conv_cache_read_write_preserve_outputs(
        c in 1usize..3, o in 1usize..3, h in 3usize..6, k in 1usize..4, pad in 0usize..2,
        stride in 1usize..3, read_at in 0usize..7, write_at in 0usize..7, seed in 0u64..100,
    ) {
        let (w, mut s) = fc(&format!("conv2d:C={c},O={o},H={h},W={h},k={k},pad={pad},stride={stride},bias=1"));
        let loops = ["o", "c", "ky", "kx", "nb", "oh", "ow"];
        // With padding the conv reads the zero-padded copy of X.
        let input = if pad > 0 { tir::lower::PADDED_INPUT } else { "X" };
        s.cache_read(loops[read_at], input, MemScope::Local).expect("cache_read");
        s.cache_write(loops[write_at], "Y", MemScope::Shared).expect("cache_write");
        assert_same(&w, s.func(), seed, 0.0);
    }
}

#[test]
fn cache_read_fc_prints_relative_copy() {
    let (_, mut s) = fc("fc:M=4,K=3,N=8");
    s.split("n", &[None, Some(4)], Remainder::Exact).unwrap();
    assert_eq!(
        s.cache_read("n_0", "X", MemScope::Local).unwrap(),
        "X_local"
    );
    let text = tir::print_function(s.func());
    assert!(text.contains("alloc X_local: f32[3, 4] local"), "{text}");
    assert!(
        text.contains("X_local[X_local_ax0, X_local_ax1] = X[X_local_ax0, n_0 * 4 + X_local_ax1];"),
        "{text}"
    );
    assert!(text.contains("W[m, k] * X_local[k, n_1]"), "{text}");
}

#[test]
fn cache_write_skips_copy_in_when_every_element_is_written() {
    let (w, mut s) = fc("fc:M=4,K=3,N=5");
    s.cache_write("init_m", "Y", MemScope::Local).unwrap();
    let text = tir::print_function(s.func());
    assert!(
        !text.contains("Y_local[Y_local_ax0, Y_local_ax1] = Y["),
        "{text}"
    );
    assert_same(&w, s.func(), 1, 0.0);
}

#[test]
fn cache_read_guards_a_split_tail() {
    let (w, mut s) = fc("fc:M=3,K=2,N=7");
    s.split("n", &[None, Some(4)], Remainder::Guard).unwrap();
    s.cache_read("n_0", "X", MemScope::Local).unwrap();
    let text = tir::print_function(s.func());
    assert!(text.contains("if n_0 * 4 + X_local_ax1 < 7"), "{text}");
    assert_same(&w, s.func(), 2, 0.0);
}

#[test]
fn cache_read_rejects_indirect_bcr_gather() {
    let (_, mut s) = fc("bcr-fc:M=16,K=16,N=2,block=4x4,sparsity=0.5");
    let r = illegal_reason(s.cache_read("i", "X", MemScope::Local));
    assert!(
        r.contains("is not an affine function of the loops inside"),
        "{r}"
    );
    assert!(r.contains("`col`"), "{r}");
    // At `j` the gathered row `col` is fixed per iteration: legal.
    assert!(s.cache_read("j", "X", MemScope::Local).is_ok());
}

#[test]
fn cache_read_rejects_loops_with_data_dependent_bounds() {
    let (_, mut s) = fc("bcr-fc:M=16,K=16,N=2,block=4x4,sparsity=0.5");
    let r = illegal_reason(s.cache_read("i", "W_cols", MemScope::Local));
    assert!(
        r.contains("uses loop `j`, whose bounds are not constant"),
        "{r}"
    );
}

#[test]
fn cache_read_rejects_a_buffer_written_in_the_loop() {
    let (_, mut s) = fc("fc:M=4,K=3,N=2");
    let r = illegal_reason(s.cache_read("k", "Y", MemScope::Local));
    assert!(r.contains("is written inside the loop"), "{r}");
    let r = illegal_reason(s.cache_read("init_m", "X", MemScope::Local));
    assert!(r.contains("does not access `X`"), "{r}");
}

#[test]
fn cache_read_rejects_differing_offsets() {
    let f = tir::parse_function(
        "fn f(X: in f32[4, 3], B: weight f32[4], Y: out f32[4, 3]) {
           for (m, 0, 4) { for (n, 0, 3) { for (z, 0, 1) { Y[m, n] = X[m, n] + X[n, m]; } } }
         }",
    )
    .unwrap();
    let mut s = Schedule::new(f, Default::default()).unwrap();
    let r = illegal_reason(s.cache_read("n", "X", MemScope::Local));
    assert!(r.contains("different offsets in index position 0"), "{r}");
}

#[test]
fn cache_write_rejects_unwritten_and_indirect_buffers() {
    let (_, mut s) = fc("fc:M=4,K=3,N=2");
    let r = illegal_reason(s.cache_write("m", "X", MemScope::Local));
    assert!(r.contains("is not written inside the loop"), "{r}");
    let (_, mut s) = fc("bcr-fc:M=16,K=16,N=2,block=4x4,sparsity=0.5");
    let r = illegal_reason(s.cache_write("b", "Y", MemScope::Local));
    assert!(
        r.contains("index `row` of `Y` is not an affine function"),
        "{r}"
    );
    assert!(matches!(
        s.cache_write("nope", "Y", MemScope::Local),
        Err(ScheduleError::NoSuchLoop { .. })
    ));
}

#[test]
fn cache_trace_replays_to_the_same_ir() {
    let (w, mut s) = fc("fc:M=8,K=4,N=6,bias=1");
    s.split("n", &[None, Some(4)], Remainder::Guard).unwrap();
    s.cache_read("n_0", "X", MemScope::Local).unwrap();
    s.cache_write("n_0", "Y", MemScope::Shared).unwrap();
    s.cache_read("m", "W", MemScope::Global).unwrap();
    let json = s.trace().to_json();
    assert!(json.contains(r#""op":"cache_read""#) && json.contains(r#""op":"cache_write""#));
    let replayed = Trace::from_json(&json)
        .unwrap()
        .replay(&w.func, &w.weights)
        .unwrap();
    assert_eq!(
        tir::print_function(replayed.func()),
        tir::print_function(s.func())
    );
    assert_same(&w, replayed.func(), 5, 0.0);
}
