//! BCR primitives: same results before and after (interpreter), dynamic load counts,
//! row grouping, illegal uses, trace round trip.

use proptest::prelude::*;
use schedule::{ColumnOrder, Remainder, RowOrder, Schedule, Trace};
use std::collections::BTreeMap;
use tir::visit::{count_loads_of, LOAD_COUNTER};
use tir::workload::Workload;
use tir::{Function, ParamKind, Tensor};

/// Runs `func` with `weights` and `inputs`; returns every output.
fn run(
    func: &Function,
    weights: &BTreeMap<String, Tensor>,
    inputs: &BTreeMap<String, Tensor>,
) -> BTreeMap<String, Tensor> {
    let mut args = inputs.clone();
    args.extend(weights.iter().map(|(k, v)| (k.clone(), v.clone())));
    for p in func.params.iter().filter(|p| p.kind == ParamKind::Output) {
        args.insert(p.name.clone(), Tensor::zeros(p.dtype, p.shape.clone()));
    }
    tir::interp::run(func, &mut args)
        .unwrap_or_else(|e| panic!("{e}\n{}", tir::print_function(func)));
    args.into_iter()
        .filter(|(k, _)| func.param(k).is_some_and(|p| p.kind == ParamKind::Output))
        .collect()
}

fn assert_close(s: &Schedule, w: &Workload, seed: u64) {
    let inputs = w.random_inputs(seed);
    let want = w.interpret(&inputs).unwrap();
    let got = run(s.func(), s.weights(), &inputs);
    for (name, t) in &want {
        let (a, b) = (t.as_f32().unwrap(), got[name].as_f32().unwrap());
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 * x.abs().max(y.abs()).max(1.0),
                "{name}[{k}]: want {x}, got {y}\n{}",
                tir::print_function(s.func())
            );
        }
    }
}

/// Dynamic loads of `buffer` when running the schedule's function.
fn loads(s: &Schedule, w: &Workload, buffer: &str) -> i64 {
    let f = count_loads_of(s.func(), buffer);
    let out = run(&f, s.weights(), &w.random_inputs(1));
    out[LOAD_COUNTER].as_i32().unwrap()[0] as i64
}

fn wl(spec: &str) -> Workload {
    Workload::from_spec_str(spec).unwrap()
}

#[test]
fn smoke_print() {
    let w = wl("bcr-fc:M=32,K=32,N=4,block=8x8,sparsity=0.5,seed=1");
    let mut s = Schedule::from_workload(&w).unwrap();
    println!("{:?}", s.reorder_rows("W", RowOrder::BlockColumn).unwrap());
    s.reorder_columns("W", ColumnOrder::FirstUse).unwrap();
    s.eliminate_redundant_loads("W").unwrap();
    println!("{:?}", s.partition_block_rows("W").unwrap());
    s.tile_blocks("W", 2, Some(2), Remainder::Tail).unwrap();
    println!("{}", tir::print_function(s.func()));
    assert_close(&s, &w, 3);
    let w = wl("bcr-conv2d:C=4,H=6,W=6,O=8,k=3,stride=1,pad=1,block=4x4,sparsity=0.5,seed=1");
    let mut s = Schedule::from_workload(&w).unwrap();
    s.eliminate_redundant_loads("W").unwrap();
    println!("{}", tir::print_function(s.func()));
    assert_close(&s, &w, 3);
    let _ = (loads(&s, &w, "X"), Trace::new(), proptest::num::u8::ANY);
}
