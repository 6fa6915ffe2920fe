//! criterion micro-benchmarks of the tuning database: inserting a record (unflushed,
//! as a batch writer does, and flushed, as the tuner commits every candidate) and the
//! best-schedule query. Not a test: `cargo bench -p tuning-logs --bench db`.

use criterion::{criterion_group, criterion_main, Criterion};
use schedule::{Factor, Instruction, Remainder, Trace};
use std::hint::black_box;
use std::time::Duration;
use tuning_logs::{
    Database, DeviceIdentity, Measurement, Outcome, Query, Record, Target, WorkloadRef,
};

fn device() -> DeviceIdentity {
    DeviceIdentity {
        model: "Pixel 7".into(),
        soc: "Tensor G2".into(),
        abi: "arm64-v8a".into(),
        cores: 8,
        opencl_device: None,
        serial: None,
    }
}

fn workload(w: u64) -> WorkloadRef {
    // Records hold the canonical form of the spec.
    WorkloadRef {
        structure: format!("{:016x}", 0x5eed_0000 + w),
        pattern: format!("{:016x}", 0xbcb0_0000 + w),
        spec: format!(
            "bcr-fc:M=256,K={},N=1,bias=0,act=none,block=16x16,sparsity=0.9,seed=1",
            256 + 16 * w
        ),
    }
}

fn record(i: u64) -> Record {
    let trace = Trace {
        format: schedule::trace::TRACE_FORMAT,
        instructions: vec![
            Instruction::Split {
                loop_name: "m".into(),
                factors: vec![Factor::Infer, Factor::Const(1 + (i % 64) as i64)],
                remainder: Remainder::Tail,
            },
            Instruction::Parallel {
                loop_name: "m_0".into(),
            },
        ],
    };
    let t = 1e-6 * (1.0 + (i % 997) as f64 / 100.0);
    Record::new(
        workload(i % 20),
        Target::HOST,
        device(),
        trace,
        Outcome::Measured(Measurement {
            median_s: t,
            min_s: t,
            mean_s: t,
            stddev_s: 0.0,
            number: 10,
            repeat: 5,
            instructions: None,
        }),
    )
}

fn db_benches(c: &mut Criterion) {
    let Ok(tmp) = tempfile::tempdir() else {
        return;
    };
    let Ok(db) = Database::open(&tmp.path().join("db")) else {
        return;
    };
    // A record the database refuses would make every insert below an error, timed.
    if let Err(e) = db.insert(&record(0)) {
        eprintln!("db bench: the benchmark record is refused: {e}");
        return;
    }
    let mut i = 0u64;
    c.bench_function("db insert (unflushed)", |b| {
        b.iter(|| {
            i += 1;
            db.insert_unflushed(black_box(&record(i)))
        })
    });
    c.bench_function("db insert + flush", |b| {
        b.iter(|| {
            i += 1;
            db.insert(black_box(&record(i)))
        })
    });
    let key = record(0).workload.key();
    let (target, dev) = (Target::HOST, device());
    let q = Query {
        workload: &key,
        target: &target,
        device: &dev,
    };
    c.bench_function(&format!("db best query ({} records)", db.len()), |b| {
        b.iter(|| db.best(black_box(&q)))
    });
    c.bench_function("db best-10 query", |b| {
        b.iter(|| db.best_k(black_box(&q), 10))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = db_benches
}
criterion_main!(benches);
