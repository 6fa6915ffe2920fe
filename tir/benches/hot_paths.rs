//! criterion micro-benchmarks of tir's hot paths: BCR pruning (uniform and spread over
//! the blocks), workload hashing (the tuning database key) and e-graph saturation (the
//! index simplification pass and the BCR compute-form search). Not a test:
//! `cargo bench -p tir --bench hot_paths`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::Duration;
use tir::egraph::pass::{bcr_forms, simplify_function, Limits};
use tir::egraph::rules::RuleSet;
use tir::rng::SplitMix64;
use tir::workload::Workload;
use tir::{prune, prune_across_blocks, BlockShape, Matrix, PruneConfig, PruneRate};

fn pruning(c: &mut Criterion) {
    let mut rng = SplitMix64::new(1);
    let m = Matrix::new(1024, 1024, rng.symmetric_vec(1024 * 1024, 1.0))
        .unwrap_or_else(|_| Matrix::zeros(1024, 1024));
    for (r, cols) in [(16, 16), (32, 32), (64, 16)] {
        let cfg = PruneConfig {
            block: BlockShape { rows: r, cols },
            rate: PruneRate::Sparsity(0.9),
        };
        c.bench_function(&format!("prune 1024x1024 {r}x{cols} 90%"), |b| {
            b.iter(|| prune(black_box(&m), &cfg))
        });
        c.bench_function(
            &format!("prune across blocks 1024x1024 {r}x{cols} 90%"),
            |b| b.iter(|| prune_across_blocks(black_box(&m), &cfg)),
        );
    }
}

fn hashing(c: &mut Criterion) {
    for spec in [
        "bcr-fc:M=2048,K=2048,N=1,block=32x32,sparsity=0.9,seed=1",
        "bcr-gru:hidden=256,input=256,batch=1,block=16x16,sparsity=0.9,seed=1",
    ] {
        let Ok(w) = Workload::from_spec_str(spec) else {
            continue;
        };
        c.bench_function(
            &format!("workload key {}", spec.split(',').next().unwrap_or(spec)),
            |b| b.iter(|| black_box(&w).key()),
        );
    }
}

fn saturation(c: &mut Criterion) {
    let Ok(rules) = RuleSet::shipped() else {
        return;
    };
    let limits = Limits {
        nodes: 5_000,
        iterations: 8,
        time: Duration::from_secs(3600),
    };
    let specs = [
        "bcr-fc:M=256,K=256,N=1,block=16x16,sparsity=0.9,seed=1",
        "bcr-conv2d:C=16,O=16,H=8,W=8,k=3,pad=1,block=16x16,sparsity=0.75,seed=1",
    ];
    for spec in specs {
        let Ok(w) = Workload::from_spec_str(spec) else {
            continue;
        };
        let kind = spec.split(':').next().unwrap_or(spec);
        c.bench_function(&format!("e-graph index simplification {kind}"), |b| {
            b.iter(|| simplify_function(black_box(&w.func), &rules, &limits))
        });
    }
    if let Ok(w) = Workload::from_spec_str(specs[0]) {
        let tensor_limits = Limits {
            nodes: 10_000,
            iterations: 12,
            time: Duration::from_secs(3600),
        };
        c.bench_function("e-graph BCR compute form bcr-fc 256", |b| {
            b.iter(|| bcr_forms(black_box(&w), &rules, &tensor_limits))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = pruning, hashing, saturation
}
criterion_main!(benches);
