//! Property test: random legal traces on small BCR workloads give the interpreter's
//! results on the host and on aarch64 (under qemu). All candidates of a case are
//! built into one binary per target (one compiler start each).

use codegen::harness::{measurement_source, Candidate};
use codegen::run::{max_error, run_candidate, Protocol};
use codegen::toolchain::{build_binary, Runner};
use codegen::Target;
use proptest::prelude::*;
use schedule::{Remainder, Schedule};
use std::collections::BTreeMap;
use std::time::Duration;
use tir::workload::Workload;
use tir::{Function, ParamKind, Tensor};

/// One random schedule step; steps that are illegal for the current function are
/// refused by the schedule and skipped (a refused step changes nothing).
#[derive(Debug, Clone)]
enum Step {
    Split(usize, i64, u8),
    Vectorize(usize),
    Parallel(usize),
    Unroll(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0usize..16, 1i64..5, 0u8..3).prop_map(|(l, f, r)| Step::Split(l, f, r)),
        (0usize..16).prop_map(Step::Vectorize),
        (0usize..16).prop_map(Step::Parallel),
        (0usize..16).prop_map(Step::Unroll),
    ]
}

fn apply(s: &mut Schedule, steps: &[Step]) {
    for st in steps {
        let loops = tir::visit::loop_names(&s.func().body);
        let pick = |i: usize| loops[i % loops.len()].clone();
        let _ = match st {
            Step::Split(l, f, r) => {
                let rem = [Remainder::Guard, Remainder::Tail, Remainder::Exact][*r as usize];
                s.split(&pick(*l), &[None, Some(*f)], rem).map(|_| ())
            }
            Step::Vectorize(l) => s.vectorize(&pick(*l)),
            Step::Parallel(l) => s.parallel(&pick(*l)),
            Step::Unroll(l) => s.unroll(&pick(*l)),
        };
    }
}

fn reference(f: &Function, args: &BTreeMap<String, Tensor>) -> BTreeMap<String, Tensor> {
    let mut a = args.clone();
    for p in f.params.iter().filter(|p| p.kind == ParamKind::Output) {
        a.insert(p.name.clone(), Tensor::zeros(p.dtype, p.shape.clone()));
    }
    tir::interp::run(f, &mut a).unwrap();
    a.into_iter()
        .filter(|(k, _)| f.param(k).is_some_and(|p| p.kind == ParamKind::Output))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, .. ProptestConfig::default() })]

    #[test]
    fn random_traces_agree_on_host_and_aarch64(
        shapes in proptest::collection::vec((4usize..24, 4usize..24, 1usize..9, 0.0f64..0.95, 0u64..100), 6),
        programs in proptest::collection::vec(proptest::collection::vec(step(), 0..7), 6),
    ) {
        let mut funcs = Vec::new();
        let mut argss = Vec::new();
        for ((m, k, n, sp, seed), steps) in shapes.iter().zip(&programs) {
            let w = Workload::from_spec_str(&format!(
                "bcr-fc:M={m},K={k},N={n},block=4x4,sparsity={sp},bias=1,act=sigmoid,seed={seed}"
            )).unwrap();
            let mut s = Schedule::from_workload(&w).unwrap();
            apply(&mut s, steps);
            let mut args = w.random_inputs(*seed);
            args.extend(s.weights().clone());
            funcs.push(s.func().clone());
            argss.push(args);
        }
        let cands: Vec<Candidate<'_>> = funcs.iter().map(|f| Candidate { func: f }).collect();
        let protocol = Protocol { number: 1, repeat: 1, min_repeat_ms: 0.0, timeout: Duration::from_secs(60), threads: None };
        for (target, runner) in [
            (Target::Host, Runner::Native),
            // qemu 7.2 has no cortex-a55 model: run the a55 build on the a76 model (both Armv8.2-A).
            (Target::Aarch64Neon { mcpu: "cortex-a55".into() }, Runner::Qemu { cpu: "cortex-a76".into() }),
        ] {
            let dir = std::env::temp_dir().join(format!("grim-rt-{}-{}", std::process::id(), target.neon()));
            let src = measurement_source(&cands, &target).unwrap();
            let bin = build_binary(&src, &dir, &target, Duration::from_secs(300)).unwrap();
            for (i, f) in funcs.iter().enumerate() {
                let want = reference(f, &argss[i]);
                let got = run_candidate(&bin, &runner, i, f, &argss[i], &protocol, &dir).unwrap();
                let (_, rel) = max_error(&got.outputs, &want).unwrap();
                prop_assert!(rel <= 1e-4, "{target}: candidate {i}: rel error {rel}\n{}", tir::print_function(f));
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
