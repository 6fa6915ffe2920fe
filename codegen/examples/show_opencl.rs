//! Prints the generated OpenCL C of a BCR FC with a GPU schedule (for reading).
use schedule::{Remainder, Schedule};
use tir::workload::Workload;
fn main() {
    let w =
        Workload::from_spec_str("bcr-fc:M=32,K=32,N=8,block=16x16,sparsity=0.8,seed=3").unwrap();
    let mut s = Schedule::from_workload(&w).unwrap();
    s.bind("init_m", tir::ForKind::BlockX).unwrap();
    s.bind("init_n", tir::ForKind::ThreadX).unwrap();
    s.split("n", &[None, Some(4)], Remainder::Exact).unwrap();
    s.bind("n_0", tir::ForKind::ThreadX).unwrap();
    s.vectorize("n_1").unwrap();
    let t = codegen::Target::OpenCl { fp16: false };
    let p = codegen::opencl_emit::emit_program(s.func(), "bcr_fc", &t).unwrap();
    print!("{}", p.source);
    for l in &p.launches {
        println!("// {} global {:?} local {:?}", l.name, l.global, l.local);
    }
}
