//! Benchmark (not a test): inserts records and queries best-k.
//!
//! `cargo run --release -p tuning-logs --example bench_db [RECORDS] [FLUSHED]`
//! (defaults: 1,000,000 records inserted with a flush every 1,000, and 10,000
//! records with a flush after each). Prints inserts/s, best-k latency, "already
//! measured" latency and the size on disk.

use schedule::{Factor, Instruction, Remainder, Trace};
use std::time::Instant;
use tuning_logs::{
    Database, DeviceIdentity, ErrorKind, Failure, Measurement, Outcome, Query, Record, Target,
    WorkloadRef,
};

const WORKLOADS: u64 = 50;

fn devices() -> [DeviceIdentity; 2] {
    let d = |model: &str, soc: &str| DeviceIdentity {
        model: model.into(),
        soc: soc.into(),
        abi: "arm64-v8a".into(),
        cores: 8,
        opencl_device: Some("Mali-G710".into()),
        serial: None,
    };
    [d("Pixel 7", "Tensor G2"), d("Galaxy S21", "Exynos 2100")]
}

fn targets() -> [Target; 2] {
    [
        "aarch64-neon -mcpu=cortex-a76"
            .parse()
            .unwrap_or(Target::HOST),
        "opencl -profile=mali-g710".parse().unwrap_or(Target::HOST),
    ]
}

fn workload(w: u64) -> WorkloadRef {
    WorkloadRef {
        structure: format!("{:016x}", 0x5eed_0000 + w),
        pattern: format!("{:016x}", 0xbcb0_0000 + w),
        spec: format!(
            "bcr-fc:M=256,K={},N=1,bias=0,act=none,block=16x16,sparsity=0.9,seed=1",
            256 + 16 * w
        ),
    }
}

/// A realistic record: a 5-instruction trace, times, sometimes a failure.
fn record(i: u64) -> Record {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let trace = Trace {
        format: schedule::trace::TRACE_FORMAT,
        instructions: vec![
            Instruction::SamplePerfectTile {
                loop_name: "m".into(),
                n: 2,
                max_innermost: 16,
                decision: vec![16, 16],
            },
            Instruction::Split {
                loop_name: "m".into(),
                factors: vec![Factor::Infer, Factor::Const(1 + (i % 64) as i64)],
                remainder: Remainder::Tail,
            },
            Instruction::SampleCategorical {
                candidates: vec![i as i64, 4, 8],
                probs: vec![0.25, 0.5, 0.25],
                decision: 0,
            },
            Instruction::Vectorize {
                loop_name: "m_1".into(),
            },
            Instruction::Parallel {
                loop_name: "m_0".into(),
            },
        ],
    };
    let result = if x % 13 == 7 {
        Outcome::Error(Failure {
            kind: ErrorKind::WrongResult,
            message: "max abs error 0.25 at Y[7,0]".into(),
        })
    } else {
        let t = 1e-6 * (1.0 + (x >> 40) as f64 / 1e4);
        Outcome::Measured(Measurement {
            median_s: t,
            min_s: t * 0.97,
            mean_s: t * 1.01,
            stddev_s: t * 0.02,
            number: 100,
            repeat: 5,
            instructions: None,
        })
    };
    let (w, t, d) = (i % WORKLOADS, (i / WORKLOADS) % 2, (i / WORKLOADS / 2) % 2);
    let mut r = Record::new(
        workload(w),
        targets()[t as usize].clone(),
        devices()[d as usize].clone(),
        trace,
        result,
    );
    r.time_unix_ms = 1_700_000_000_000 + i;
    r
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(1_000_000);
    let n_flushed = args.get(1).copied().unwrap_or(10_000);
    let base = std::env::temp_dir().join(format!("grim-bench-db-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);

    // Per-record flush: the "reported as committed" contract of Database::insert.
    let db = Database::open(&base.join("flushed"))?;
    let start = Instant::now();
    for i in 0..n_flushed {
        db.insert(&record(i))?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "insert + flush per record: {n_flushed} records in {secs:.2} s = {:.0} inserts/s ({:.1} us each)",
        n_flushed as f64 / secs,
        secs / n_flushed as f64 * 1e6
    );
    drop(db);

    // Batched: flush every 1000 records.
    let path = base.join("batched");
    let db = Database::open(&path)?;
    let start = Instant::now();
    for i in 0..n {
        db.insert_unflushed(&record(i))?;
        if i % 1000 == 999 {
            db.flush()?;
        }
    }
    db.flush()?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "insert, flush every 1000: {n} records in {secs:.1} s = {:.0} inserts/s",
        n as f64 / secs
    );
    println!(
        "database on disk: {:.0} MiB ({} records, {:.0} bytes/record)",
        dir_size(&path) as f64 / (1 << 20) as f64,
        db.len(),
        dir_size(&path) as f64 / db.len().max(1) as f64
    );

    let per_group = n / WORKLOADS / 4;
    for k in [1usize, 10, 100] {
        let queries = 2000u64;
        let start = Instant::now();
        let mut found = 0;
        for q in 0..queries {
            let key = workload(q % WORKLOADS).key();
            let (t, d) = (
                &targets()[(q % 2) as usize],
                &devices()[(q / 2 % 2) as usize],
            );
            found += db
                .best_k(
                    &Query {
                        workload: &key,
                        target: t,
                        device: d,
                    },
                    k,
                )?
                .len();
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "best-k, k={k:3}, {per_group} records per (workload,target,device): {:.1} us per query ({found} records returned)",
            secs / queries as f64 * 1e6
        );
    }
    let start = Instant::now();
    let queries = 10_000u64;
    let mut hits = 0;
    for q in 0..queries {
        let r = record(q * 197 % (2 * n));
        let key = r.workload.key();
        hits += usize::from(db.is_measured(
            &Query {
                workload: &key,
                target: &r.target,
                device: &r.device,
            },
            &r.trace,
        )?);
    }
    println!(
        "is_measured: {:.1} us per query ({hits} of {queries} measured)",
        start.elapsed().as_secs_f64() / queries as f64 * 1e6
    );
    let out = base.join("all.jsonl");
    let start = Instant::now();
    let written = tuning_logs::export(&db, &out, &tuning_logs::ExportFilter::default())?;
    println!(
        "export: {written} records in {:.1} s ({:.0} MiB)",
        start.elapsed().as_secs_f64(),
        std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) as f64 / (1 << 20) as f64
    );
    drop(db);
    let start = Instant::now();
    let fresh = Database::open(&base.join("imported"))?;
    let report = tuning_logs::import(&fresh, &out, false)?;
    println!(
        "import (validate every line, then insert): {} records in {:.1} s",
        report.imported,
        start.elapsed().as_secs_f64()
    );
    drop(fresh);
    let _ = std::fs::remove_dir_all(&base);
    Ok(())
}
