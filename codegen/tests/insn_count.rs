//! Instruction counts under qemu: deterministic, and they see sparsity.

use codegen::harness::{measurement_source, Candidate};
use codegen::insn_count::{build_plugin, kernel_instructions};
use codegen::toolchain::build_binary;
use codegen::Target;
use std::time::Duration;
use tir::workload::Workload;

#[test]
fn counts_are_deterministic_and_track_the_work() {
    let dense = Workload::from_spec_str("fc:M=64,K=64,N=1,seed=1").unwrap();
    let sparse =
        Workload::from_spec_str("bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.9,seed=1").unwrap();
    let target = Target::Aarch64Neon {
        mcpu: "cortex-a76".into(),
    };
    let src = measurement_source(
        &[
            Candidate { func: &dense.func },
            Candidate { func: &sparse.func },
        ],
        &target,
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("grim-insn-{}", std::process::id()));
    let bin = build_binary(&src, &dir, &target, Duration::from_secs(120)).unwrap();
    let plugin = build_plugin(&dir).unwrap();
    let count = |w: &Workload, i: usize| {
        let mut args = w.random_inputs(1);
        args.extend(w.weights.clone());
        kernel_instructions(
            &bin,
            &plugin,
            "cortex-a76",
            i,
            &w.func,
            &args,
            &dir,
            Duration::from_secs(60),
        )
        .unwrap()
    };
    let d1 = count(&dense, 0);
    let d2 = count(&dense, 0);
    let s1 = count(&sparse, 1);
    eprintln!("aarch64 instructions per run: dense fc 64x64 {d1}, bcr-fc 90% {s1}");
    assert_eq!(d1, d2, "instruction counts must be deterministic");
    // A 64x64 dense matvec is 4096 multiply-adds: at least that many instructions.
    assert!(d1 >= 4096, "dense count {d1}");
    // 90% BCR sparsity keeps ~410 weights: far fewer instructions than dense.
    assert!(s1 < d1 / 2, "sparse {s1} vs dense {d1}");
    let _ = std::fs::remove_dir_all(&dir);
}
