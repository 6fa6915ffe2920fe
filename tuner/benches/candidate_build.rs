//! criterion micro-benchmark of building one tuning candidate, everything the tuner
//! does before the C compiler starts: sample a point of the search space, apply it to
//! a fresh schedule (replaying its instructions), run the compile pipeline's e-graph
//! pass, and generate the measurement binary's C source. Not a test:
//! `cargo bench -p tuner --bench candidate_build`.

use codegen::harness::{measurement_source, Candidate};
use codegen::Target;
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::Duration;
use tir::rng::SplitMix64;
use tir::workload::Workload;
use tuner::space::SearchSpace;

fn candidate_build(c: &mut Criterion) {
    for spec in [
        "bcr-fc:M=512,K=512,N=1,block=32x32,sparsity=0.9,seed=1",
        "bcr-gru:hidden=128,input=128,batch=1,block=16x16,sparsity=0.9,seed=1",
    ] {
        let Ok(w) = Workload::from_spec_str(spec) else {
            continue;
        };
        let space = SearchSpace::new(&w);
        let mut rng = SplitMix64::new(1);
        let kind = spec.split(':').next().unwrap_or(spec);
        c.bench_function(&format!("candidate build {kind}"), |b| {
            b.iter(|| {
                let d = space.random(&mut rng);
                let (s, _) = space.apply(black_box(&w), &d).ok()?;
                let f = tuner::pipeline::optimize(s.func());
                measurement_source(&[Candidate { func: &f }], &Target::Host).ok()
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = candidate_build
}
criterion_main!(benches);
