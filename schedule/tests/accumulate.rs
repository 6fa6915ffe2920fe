//! `accumulate_at`: partial sums kept in a local accumulator across the kept-column
//! loop of BCR kernels; same results (up to reassociation), fewer output accesses,
//! and clear errors where it does not apply.

use proptest::prelude::*;
use schedule::{Remainder, RowOrder, Schedule};
use tir::workload::Workload;
use tir::{ParamKind, Tensor};

mod common;

fn assert_close(w: &Workload, s: &Schedule) {
    common::assert_close_seed(w, s, 5);
}

fn output_accesses(s: &Schedule, w: &Workload, buffer: &str) -> i32 {
    let f = tir::visit::count_loads_of(s.func(), buffer);
    let inputs = w.random_inputs(1);
    let mut args = inputs.clone();
    args.extend(s.weights().clone());
    for p in f.params.iter().filter(|p| p.kind == ParamKind::Output) {
        args.insert(p.name.clone(), Tensor::zeros(p.dtype, p.shape.clone()));
    }
    tir::interp::run(&f, &mut args).unwrap();
    args[tir::visit::LOAD_COUNTER].as_i32().unwrap()[0]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn bcr_fc_with_and_without_other_primitives(m in 4usize..40, k in 4usize..40, n in 1usize..6, sp in 0.0f64..0.95,
                                                lre in any::<bool>(), rows in any::<bool>(), tile in any::<bool>()) {
        let w = Workload::from_spec_str(&format!("bcr-fc:M={m},K={k},N={n},block=4x4,sparsity={sp},bias=1,act=relu,seed=2")).unwrap();
        let mut s = Schedule::from_workload(&w).unwrap();
        if rows { s.reorder_rows("W", RowOrder::BlockColumn).unwrap(); }
        if lre { s.eliminate_redundant_loads("W").unwrap(); }
        s.accumulate_at("j", "Y").unwrap();
        if tile { s.split("i", &[None, Some(2)], Remainder::Guard).unwrap(); }
        assert_close(&w, &s);
    }
}

#[test]
fn conv_gru_and_lstm() {
    for (spec, pairs) in [
        (
            "bcr-conv2d:C=4,O=8,H=6,W=6,k=3,pad=1,block=4x12,sparsity=0.6,bias=1,seed=1",
            vec![("j", "Y")],
        ),
        (
            "bcr-gru:hidden=8,input=12,batch=3,block=4x4,sparsity=0.6,seed=5",
            vec![("gi_j", "gi"), ("gh_j", "gh")],
        ),
        (
            "bcr-lstm:hidden=8,input=8,batch=2,block=8x4,sparsity=0.5,seed=3",
            vec![("gi_j", "gi"), ("gh_j", "gh")],
        ),
    ] {
        let w = Workload::from_spec_str(spec).unwrap();
        let mut s = Schedule::from_workload(&w).unwrap();
        for (l, b) in &pairs {
            s.accumulate_at(l, b)
                .unwrap_or_else(|e| panic!("{spec}: {e}"));
        }
        assert_close(&w, &s);
        let replay = s.trace().replay(&w.func, &w.weights).unwrap();
        assert_eq!(replay.func(), s.func());
    }
}

/// Output loads drop from one per kept weight (times N) to one per kept row (times N).
#[test]
fn output_traffic_goes_down() {
    let w =
        Workload::from_spec_str("bcr-fc:M=64,K=64,N=2,block=16x16,sparsity=0.75,seed=1").unwrap();
    let base = Schedule::from_workload(&w).unwrap();
    let mut s = base.clone();
    s.accumulate_at("j", "Y").unwrap();
    let (before, after) = (
        output_accesses(&base, &w, "Y"),
        output_accesses(&s, &w, "Y"),
    );
    // 16 blocks, each 8 kept rows x 8 kept columns, N = 2: 16*8*8*2 = 2048 loads before
    // (plus none in the init), 16*8*2 = 256 after.
    assert_eq!(before, 2048);
    assert_eq!(after, 256);
}

#[test]
fn illegal_uses() {
    let w = Workload::from_spec_str("bcr-fc:M=16,K=16,N=2,block=4x4,sparsity=0.5,seed=1").unwrap();
    let cases: [(&str, &str, &str); 4] = [
        ("i", "Y", "accumulate_at: loop `i`: index 0 of `Y` varies inside the loop but is not a loop variable with constant bounds from 0"),
        ("init_m", "Y", "accumulate_at: loop `init_m`: a store to `Y` is not an update `Y[i] = Y[i] + e`"),
        ("j", "X", "accumulate_at: loop `j`: the loop does not update `X`"),
        ("j", "Q", "accumulate_at: loop `Q`: no f32 buffer of that name"),
    ];
    for (l, b, want) in cases {
        let mut s = Schedule::from_workload(&w).unwrap();
        let e = s.accumulate_at(l, b).unwrap_err().to_string();
        assert_eq!(e, want);
        assert_eq!(s.func(), &w.func);
    }
    let mut s = Schedule::from_workload(&w).unwrap();
    s.accumulate_at("j", "Y").unwrap();
    let e = s.accumulate_at("j", "Y").unwrap_err().to_string();
    assert!(e.contains("the loop does not update `Y`"), "{e}");
}
