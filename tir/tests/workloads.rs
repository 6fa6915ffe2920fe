//! For every workload kind, the reference interpreter on the lowered IR equals a direct
//! naive Rust implementation on random inputs (proptest over shapes, block shapes and
//! sparsity in [0, 0.97)).

mod naive;

use proptest::prelude::*;
use tir::workload::Workload;

fn check(spec: &str, input_seed: u64) {
    let w = Workload::from_spec_str(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    tir::verify::verify(&w.func).unwrap_or_else(|e| panic!("{spec}: verify: {e}"));
    let inputs = w.random_inputs(input_seed);
    let got = w
        .interpret(&inputs)
        .unwrap_or_else(|e| panic!("{spec}: interpret: {e}"));
    let want = naive::reference(&w, &inputs);
    assert_eq!(got.len(), want.len(), "{spec}: outputs");
    for (name, want) in &want {
        let t = got
            .get(name)
            .unwrap_or_else(|| panic!("{spec}: no output {name}"));
        naive::assert_close(
            &format!("{spec}: {name}"),
            t.as_f32().expect("f32 output"),
            want,
        );
    }
}

fn act() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("none"), Just("relu"), Just("sigmoid"), Just("tanh")]
}

/// `(dim, block dim)` with the block no larger than the dim.
fn dim_and_block(max: usize) -> impl Strategy<Value = (usize, usize)> {
    (1..=max).prop_flat_map(|d| (Just(d), 1..=d))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn fc_dense((m, k, n) in (1usize..24, 1usize..24, 1usize..5), bias in any::<bool>(), a in act(), seed in 0u64..1000) {
        check(&format!("fc:M={m},K={k},N={n},bias={},act={a},seed={seed}", bias as u8), seed + 1);
    }

    #[test]
    fn fc_bcr((m, br) in dim_and_block(40), (k, bc) in dim_and_block(40), n in 1usize..4, s in 0.0f64..0.97, bias in any::<bool>(), a in act(), seed in 0u64..1000) {
        check(&format!("bcr-fc:M={m},K={k},N={n},block={br}x{bc},sparsity={s},bias={},act={a},seed={seed}", bias as u8), seed);
    }

    #[test]
    fn conv2d_dense(c in 1usize..4, o in 1usize..5, h in 3usize..8, w in 3usize..8, k in 1usize..4, stride in 1usize..3, pad in 0usize..2, dil in 1usize..3, batch in 1usize..3, bias in any::<bool>(), a in act(), seed in 0u64..1000) {
        prop_assume!(h + 2 * pad > dil * (k - 1) && w + 2 * pad > dil * (k - 1));
        check(&format!("conv2d:C={c},O={o},H={h},W={w},k={k},stride={stride},pad={pad},dilation={dil},batch={batch},bias={},act={a},seed={seed}", bias as u8), seed);
    }

    #[test]
    fn conv2d_bcr(c in 1usize..5, o in 1usize..9, hw in 3usize..7, kh in 1usize..4, kw in 1usize..4, stride in 1usize..3, pad in 0usize..2, s in 0.0f64..0.97, blk in (1usize..9, 1usize..37), bias in any::<bool>(), seed in 0u64..1000) {
        let (br, bc) = (blk.0.min(o), blk.1.min(c * kh * kw));
        prop_assume!(hw + 2 * pad >= kh.max(kw));
        check(&format!("bcr-conv2d:C={c},O={o},H={hw},W={hw},kh={kh},kw={kw},stride={stride},pad={pad},block={br}x{bc},sparsity={s},bias={},seed={seed}", bias as u8), seed);
    }

    #[test]
    fn gru_dense(hidden in 1usize..12, input in 1usize..12, batch in 1usize..3, seed in 0u64..1000) {
        check(&format!("gru:hidden={hidden},input={input},batch={batch},seed={seed}"), seed);
    }

    #[test]
    fn gru_bcr(hidden in 1usize..12, input in 1usize..12, batch in 1usize..3, blk in (1usize..17, 1usize..13), s in 0.0f64..0.97, seed in 0u64..1000) {
        let (br, bc) = (blk.0.min(3 * hidden), blk.1.min(input.min(hidden)));
        check(&format!("bcr-gru:hidden={hidden},input={input},batch={batch},block={br}x{bc},sparsity={s},seed={seed}"), seed);
    }

    #[test]
    fn lstm_dense(hidden in 1usize..12, input in 1usize..12, batch in 1usize..3, seed in 0u64..1000) {
        check(&format!("lstm:hidden={hidden},input={input},batch={batch},seed={seed}"), seed);
    }

    #[test]
    fn lstm_bcr(hidden in 1usize..12, input in 1usize..12, batch in 1usize..3, blk in (1usize..17, 1usize..13), s in 0.0f64..0.97, seed in 0u64..1000) {
        let (br, bc) = (blk.0.min(4 * hidden), blk.1.min(input.min(hidden)));
        check(&format!("bcr-lstm:hidden={hidden},input={input},batch={batch},block={br}x{bc},sparsity={s},seed={seed}"), seed);
    }

    #[test]
    fn bias_add(m in 1usize..20, n in 1usize..20, seed in 0u64..1000) {
        check(&format!("bias-add:M={m},N={n},seed={seed}"), seed);
    }

    #[test]
    fn activation(f in prop_oneof![Just("relu"), Just("sigmoid"), Just("tanh")], m in 1usize..20, n in 1usize..20, seed in 0u64..1000) {
        check(&format!("activation:fn={f},M={m},N={n}"), seed);
    }
}

/// The example sizes at a scale the interpreter runs quickly.
#[test]
fn documented_examples_at_small_scale() {
    for spec in [
        "bcr-fc:M=256,K=256,N=1,block=32x32,sparsity=0.9,seed=1",
        "fc:M=64,K=64,N=4",
        "bcr-conv2d:C=8,O=16,H=10,W=10,k=3,stride=1,pad=1,block=16x32,sparsity=0.9,seed=1",
        "bcr-gru:hidden=32,input=32,batch=1,block=16x16,sparsity=0.9,seed=1",
        "bcr-lstm:hidden=32,input=16,batch=2,block=16x16,sparsity=0.5,seed=3",
        "bcr-fc:M=100,K=70,N=3,block=32x32,sparsity=0.8,seed=5",
    ] {
        check(spec, 42);
    }
}

/// A BCR workload computes the same as the dense workload whose weights are the
/// effective pruned matrix: at sparsity 0 it equals the unpruned dense layer.
#[test]
fn bcr_at_sparsity_zero_equals_dense() {
    let dense = Workload::from_spec_str("fc:M=40,K=24,N=3,bias=1,act=tanh,seed=9").unwrap();
    let sparse =
        Workload::from_spec_str("bcr-fc:M=40,K=24,N=3,bias=1,act=tanh,block=8x8,sparsity=0,seed=9")
            .unwrap();
    assert_eq!(
        dense.matrix("W").unwrap().dense,
        sparse.matrix("W").unwrap().dense
    );
    let inputs = dense.random_inputs(3);
    let a = dense.interpret(&inputs).unwrap();
    let b = sparse.interpret(&inputs).unwrap();
    naive::assert_close("Y", b["Y"].as_f32().unwrap(), a["Y"].as_f32().unwrap());
}

/// The pruned workload really has the requested sparsity and its pattern is BCR.
#[test]
fn spec_sparsity_is_achieved() {
    let w =
        Workload::from_spec_str("bcr-fc:M=512,K=512,N=1,block=32x32,sparsity=0.9,seed=1").unwrap();
    let b = w.matrix("W").unwrap().bcr.as_ref().unwrap();
    b.validate().unwrap();
    assert!(
        (b.sparsity() - 0.9).abs() < 0.01,
        "sparsity {}",
        b.sparsity()
    );
    assert_eq!(w.matrix("W").unwrap().dense.count_nonzero(), b.nnz());
}
