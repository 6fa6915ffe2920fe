//! Measures how many candidates per second a batch build compiles: N schedules of a
//! BCR FC layer in one translation unit, built once per target.
//! `cargo run --release -p codegen --example batch_rate -- [N]`

use codegen::harness::{measurement_source, Candidate};
use codegen::toolchain::build_binary;
use codegen::Target;
use schedule::{Remainder, Schedule};
use std::time::{Duration, Instant};
use tir::workload::Workload;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let w = Workload::from_spec_str("bcr-fc:M=512,K=512,N=8,block=16x16,sparsity=0.9,seed=1")
        .expect("workload");
    let mut funcs = Vec::new();
    for i in 0..n {
        let mut s = Schedule::from_workload(&w).expect("schedule");
        let f = [1, 2, 4, 8][i % 4];
        let _ = s.split("n", &[None, Some(f)], Remainder::Exact);
        if f >= 4 {
            let _ = s.vectorize("n_1");
        }
        let _ = s.split("i", &[None, Some(1 + (i / 4) as i64 % 4)], Remainder::Tail);
        if i % 2 == 0 {
            let _ = s.parallel("init_m");
        }
        funcs.push(s.func().clone());
    }
    let cands: Vec<Candidate<'_>> = funcs.iter().map(|f| Candidate { func: f }).collect();
    for target in [
        Target::Host,
        Target::Aarch64Neon {
            mcpu: "cortex-a76".into(),
        },
    ] {
        let t0 = Instant::now();
        let src = measurement_source(&cands, &target).expect("source");
        let gen = t0.elapsed();
        let dir = std::env::temp_dir().join(format!("grim-batch-{}", std::process::id()));
        let t1 = Instant::now();
        build_binary(&src, &dir, &target, Duration::from_secs(600)).expect("build");
        let build = t1.elapsed();
        println!(
            "{target}: {n} candidates, C generation {:.3} s, one compiler run {:.2} s, {:.1} candidates/s ({} KiB of C)",
            gen.as_secs_f64(),
            build.as_secs_f64(),
            n as f64 / (gen + build).as_secs_f64(),
            src.len() / 1024
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
