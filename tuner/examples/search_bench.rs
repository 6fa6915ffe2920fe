//! Benchmark (not a test): evolutionary search with the cost model vs random search at
//! the same number of trials, on BCR workloads, measured by retired aarch64
//! instructions under qemu (deterministic, so the comparison is not noise), plus
//! tuned-vs-default on the host.
//!
//! `cargo run --release -p tuner --example search_bench -- [TRIALS]`

use std::sync::atomic::AtomicBool;
use std::time::Instant;
use tir::workload::Workload;
use tuner::measure::{Limits, LocalRunner, QemuRunner};
use tuner::tune::{tune, MemoryStore, NoProgress, Strategy, TuneOptions};

fn best_after(r: &tuner::tune::TuneReport, n: usize) -> f64 {
    r.trials
        .iter()
        .take(n)
        .filter_map(|t| t.cost())
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let trials: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(32);
    let stop = AtomicBool::new(false);
    let specs = [
        "bcr-fc:M=512,K=512,N=1,block=32x32,sparsity=0.9,seed=1",
        "bcr-conv2d:C=32,O=32,H=14,W=14,k=3,pad=1,block=16x32,sparsity=0.9,seed=1",
        "bcr-gru:hidden=128,input=128,batch=1,block=16x16,sparsity=0.9,seed=1",
    ];
    println!("## Search strategies under qemu (cortex-a76), {trials} trials, cost = aarch64 instructions per run\n");
    println!(
        "| workload | strategy | default | best@{} | best@{} | best@{trials} | candidates/s |",
        trials / 4,
        trials / 2
    );
    println!("|---|---|---|---|---|---|---|");
    for spec in specs {
        let w = Workload::from_spec_str(spec).expect("workload");
        for strategy in [Strategy::Random, Strategy::Evolutionary] {
            let runner = QemuRunner::new("cortex-a76", "cortex-a76", Limits::default());
            let opts = TuneOptions {
                trials,
                strategy,
                seed: 7,
                ..TuneOptions::default()
            };
            let t0 = Instant::now();
            let r = tune(
                &w,
                &runner,
                &mut MemoryStore::default(),
                &opts,
                &NoProgress,
                &stop,
            )
            .expect("tune");
            let secs = t0.elapsed().as_secs_f64();
            let d = r.default_trial().and_then(|t| t.cost()).unwrap_or(f64::NAN);
            println!(
                "| {spec} | {strategy:?} | {d:.0} | {:.0} | {:.0} | {:.0} ({:.2}x) | {:.2} |",
                best_after(&r, trials / 4),
                best_after(&r, trials / 2),
                best_after(&r, trials),
                d / best_after(&r, trials),
                r.trials.len() as f64 / secs
            );
        }
    }
    println!("\n## Tuned vs default on the host ({trials} trials, evolutionary, median seconds per run)\n");
    println!("| workload | default | best | speedup | candidates/s |");
    println!("|---|---|---|---|---|");
    for spec in [
        "bcr-fc:M=2048,K=2048,N=1,block=32x32,sparsity=0.9,seed=1",
        "bcr-conv2d:C=64,O=64,H=28,W=28,k=3,stride=1,pad=1,block=16x32,sparsity=0.9,seed=1",
        "bcr-fc:M=64,K=64,N=8,block=16x16,sparsity=0.8,seed=1",
    ] {
        let w = Workload::from_spec_str(spec).expect("workload");
        let runner = LocalRunner::new(Limits::default());
        let opts = TuneOptions {
            trials,
            seed: 7,
            ..TuneOptions::default()
        };
        let t0 = Instant::now();
        let r = tune(
            &w,
            &runner,
            &mut MemoryStore::default(),
            &opts,
            &NoProgress,
            &stop,
        )
        .expect("tune");
        let secs = t0.elapsed().as_secs_f64();
        let d = r.default_trial().and_then(|t| t.cost()).unwrap_or(f64::NAN);
        let b = r.best().and_then(|t| t.cost()).unwrap_or(f64::NAN);
        println!(
            "| {spec} | {:.1} us | {:.1} us | {:.2}x | {:.2} |",
            d * 1e6,
            b * 1e6,
            d / b,
            r.trials.len() as f64 / secs
        );
        if let Some(t) = r.best() {
            println!("|   best: {} | | | | |", t.description);
        }
    }
}
