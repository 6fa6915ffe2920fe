//! Prints the generated C of a workload with a small schedule (for reading).
use schedule::{Remainder, Schedule};
use tir::workload::Workload;
fn main() {
    let w =
        Workload::from_spec_str("bcr-fc:M=32,K=32,N=8,block=16x16,sparsity=0.8,seed=3").unwrap();
    let mut s = Schedule::from_workload(&w).unwrap();
    s.split("n", &[None, Some(4)], Remainder::Exact).unwrap();
    s.vectorize("n_1").unwrap();
    let t = codegen::Target::Aarch64Neon {
        mcpu: "cortex-a76".into(),
    };
    print!(
        "{}",
        codegen::c_emit::emit_kernel(s.func(), "0", &t).unwrap()
    );
}
