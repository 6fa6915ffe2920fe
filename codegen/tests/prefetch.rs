//! `prefetch` statements in generated code: `__builtin_prefetch` of the element's
//! address in host and NEON C, a comment in OpenCL C (the values themselves are
//! checked against the interpreter by the corpus on every target).

use codegen::Target;
use schedule::Schedule;
use tir::workload::Workload;

fn prefetched() -> Schedule {
    let w =
        Workload::from_spec_str("bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.9,seed=2").unwrap();
    let mut s = Schedule::from_workload(&w).unwrap();
    s.vectorize_rows_masked("W", 8).unwrap();
    s.prefetch_values("W", 512).unwrap();
    s.specialize_offsets("W").unwrap();
    s
}

#[test]
fn c_targets_emit_builtin_prefetch_of_the_value() {
    let s = prefetched();
    for target in [
        Target::Host,
        Target::Aarch64Neon {
            mcpu: "cortex-a76".into(),
        },
    ] {
        let c = codegen::c_emit::emit_kernel(s.func(), "k", &target).unwrap();
        let line = c
            .lines()
            .find(|l| l.contains("__builtin_prefetch("))
            .unwrap_or_else(|| panic!("{target}: no prefetch in\n{c}"));
        assert!(line.contains("__builtin_prefetch(&b_W_val["), "{line}");
        // Clamped to the last value (the entry ahead is clamped to the last entry).
        assert!(line.contains("grim_min_i64("), "{line}");
    }
}

#[test]
fn opencl_leaves_the_hint_as_a_comment() {
    let s = prefetched();
    let p =
        codegen::opencl_emit::emit_program(s.func(), "k", &Target::OpenCl { fp16: false }).unwrap();
    assert!(p.source.contains("/* prefetch b_W_val["), "{}", p.source);
    assert!(!p.source.contains("__builtin_prefetch"), "{}", p.source);
}
