//! Helpers shared by the schedule test files: run a schedule in the interpreter and
//! compare it with the workload's reference.

use schedule::Schedule;
use std::collections::BTreeMap;
use tir::workload::Workload;
use tir::{ParamKind, Tensor};

/// The workload of `spec`, panicking with the spec and the error when it is invalid.
#[allow(dead_code)] // Some test files build their workloads otherwise.
pub fn wl(spec: &str) -> Workload {
    Workload::from_spec_str(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

/// The outputs of the schedule's function on the workload's random inputs of `seed`.
pub fn outputs(s: &Schedule, w: &Workload, seed: u64) -> BTreeMap<String, Tensor> {
    let inputs = w.random_inputs(seed);
    let mut args = inputs.clone();
    args.extend(s.weights().clone());
    for p in s
        .func()
        .params
        .iter()
        .filter(|p| p.kind == ParamKind::Output)
    {
        args.insert(p.name.clone(), Tensor::zeros(p.dtype, p.shape.clone()));
    }
    tir::interp::run(s.func(), &mut args).unwrap();
    args.into_iter()
        .filter(|(k, _)| {
            s.func()
                .param(k)
                .is_some_and(|p| p.kind == ParamKind::Output)
        })
        .collect()
}

/// Asserts that the schedule computes the workload's reference outputs within 1e-5
/// (relative, absolute below 1) on the random inputs of `seed`.
pub fn assert_close_seed(w: &Workload, s: &Schedule, seed: u64) {
    let want = w.interpret(&w.random_inputs(seed)).unwrap();
    let got = outputs(s, w, seed);
    for (k, t) in &want {
        for (a, b) in got[k].as_f32().unwrap().iter().zip(t.as_f32().unwrap()) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{k}: {a} vs {b}\n{}",
                tir::print_function(s.func())
            );
        }
    }
}
