//! Builds a function's generated C for the host, runs it once natively on given
//! arguments and runs the interpreter on the same ones.

use codegen::run::{run_candidate, Protocol};
use codegen::toolchain::{build_binary, Runner};
use codegen::Target;
use std::collections::BTreeMap;
use std::time::Duration;
use tir::{Function, ParamKind, Tensor};

/// The outputs of `src` (the measurement source of `f` alone) run natively with one
/// thread, and the interpreter's outputs, on `args` (outputs start as zeros).
pub fn run_and_interpret(
    f: &Function,
    src: &str,
    args: &BTreeMap<String, Tensor>,
) -> (BTreeMap<String, Tensor>, BTreeMap<String, Tensor>) {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_binary(src, dir.path(), &Target::Host, Duration::from_secs(120)).unwrap();
    let protocol = Protocol {
        number: 1,
        repeat: 1,
        min_repeat_ms: 0.0,
        timeout: Duration::from_secs(60),
        threads: Some(1),
    };
    let r = run_candidate(&bin, &Runner::Native, 0, f, args, &protocol, dir.path()).unwrap();
    let mut want = args.clone();
    for p in f.params.iter().filter(|p| p.kind == ParamKind::Output) {
        want.insert(p.name.clone(), Tensor::zeros(p.dtype, p.shape.clone()));
    }
    tir::interp::run(f, &mut want).unwrap();
    (r.outputs, want)
}
