//! Generated NEON C for aarch64, cross-compiled statically with `-Wall -Werror` and run
//! under `qemu-aarch64 -cpu cortex-a76`, equals the interpreter on the corpus.

mod corpus;

use codegen::toolchain::Runner;
use codegen::Target;

#[test]
fn corpus_on_aarch64_under_qemu() {
    let target = Target::Aarch64Neon {
        mcpu: "cortex-a76".into(),
    };
    let names = corpus::check_corpus(
        &target,
        &Runner::Qemu {
            cpu: "cortex-a76".into(),
        },
        1e-4,
    );
    assert_eq!(names.len(), corpus::corpus().len());
}

/// Row vectorization becomes NEON multiply-adds: each kept column's values of four
/// rows are loaded as one vector and multiplied by the broadcast input value.
#[test]
fn row_vectorized_bcr_kernel_uses_neon_fma() {
    let w = tir::workload::Workload::from_spec_str(
        "bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.9,seed=1",
    )
    .unwrap();
    let mut s = schedule::Schedule::from_workload(&w).unwrap();
    s.vectorize_rows("W", 4).unwrap();
    let target = Target::Aarch64Neon {
        mcpu: "cortex-a76".into(),
    };
    let c = codegen::c_emit::emit_kernel(s.func(), "k", &target).unwrap();
    let fma = c
        .lines()
        .find(|l| l.contains("vfmaq_f32("))
        .unwrap_or_else(|| panic!("no vfmaq_f32 in:\n{c}"));
    assert!(fma.contains("vld1q_f32(&b_W_val["), "{fma}");
    assert!(fma.contains("vdupq_n_f32(b_X["), "{fma}");
    assert!(fma.contains("vst1q_f32(&b_row_acc["), "{fma}");
}

/// Masked rows (lanes past an entry's kept rows read nothing) become whole NEON loads
/// and-ed with the lane mask, with `grim_load4_first` where a vector would pass the
/// values' end, instead of four scalar loads and inserts per vector.
#[test]
fn masked_rows_use_neon_loads_with_a_lane_mask() {
    let w = tir::workload::Workload::from_spec_str(
        "bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.9,seed=1",
    )
    .unwrap();
    let mut s = schedule::Schedule::from_workload(&w).unwrap();
    s.vectorize_rows_masked("W", 8).unwrap();
    s.specialize_offsets("W").unwrap();
    let target = Target::Aarch64Neon {
        mcpu: "cortex-a76".into(),
    };
    let c = codegen::c_emit::emit_kernel(s.func(), "k", &target).unwrap();
    let loads: Vec<&str> = c.lines().filter(|l| l.contains("b_W_val[")).collect();
    assert!(
        loads.iter().any(
            |l| l.contains("vandq_u32(vreinterpretq_u32_f32(vld1q_f32(&b_W_val[")
                && l.contains("grim_load4_first(&b_W_val[")
        ),
        "no masked NEON load in:\n{c}"
    );
    assert!(
        loads.iter().all(|l| !l.contains("grim_pack4(")),
        "values packed lane by lane:\n{c}"
    );
}
