//! Test helper: writes records to a tuning database in a loop, printing
//! `committed INDEX` after each record is durable. The crash-consistency test kills it
//! with SIGKILL at random moments.
//!
//! Usage: `db-writer PATH START COUNT BATCH` writes records START..START+COUNT,
//! flushing every BATCH records (1: after each); `db-writer PATH --hold` opens the
//! database, prints `ready` and sleeps (holding the lock) until killed.

use schedule::{Instruction, Trace};
use std::io::Write;
use std::process::ExitCode;
use tuning_logs::{
    Database, DeviceIdentity, ErrorKind, Failure, Measurement, Outcome, Record, Target, WorkloadRef,
};

/// The record with index `i`: its trace samples `i`, so every index has its own
/// trace; targets, devices and outcomes vary with `i`.
fn record(i: u64) -> Record {
    let workload = WorkloadRef {
        structure: format!("{:016x}", 0x1000 + i % 3),
        pattern: format!("{:016x}", 0xbeef),
        spec: "fc:M=8,K=8,N=1,bias=0,act=none,seed=0".to_string(),
    };
    let target = match i % 2 {
        0 => Target::HOST,
        _ => Target::Aarch64Neon {
            mcpu: "cortex-a76".into(),
            threads: None,
        },
    };
    let device = DeviceIdentity {
        model: match i % 5 {
            0 => "Pixel 7",
            _ => "host",
        }
        .into(),
        soc: "test".into(),
        abi: "arm64-v8a".into(),
        cores: 8,
        opencl_device: None,
        serial: Some(format!("serial-{i}")),
    };
    let trace = Trace {
        format: schedule::trace::TRACE_FORMAT,
        instructions: vec![Instruction::SampleCategorical {
            candidates: vec![i as i64],
            probs: vec![1.0],
            decision: 0,
        }],
    };
    let result = if i % 7 == 3 {
        Outcome::Error(Failure {
            kind: ErrorKind::RunTimeout,
            message: format!("candidate {i} ran past 10 s"),
        })
    } else {
        let t = 1e-6 * (1 + (i * 7919) % 1000) as f64;
        Outcome::Measured(Measurement {
            median_s: t,
            min_s: t * 0.9,
            mean_s: t * 1.05,
            stddev_s: t * 0.01,
            number: 10,
            repeat: 3,
            instructions: Some(1000 + i),
        })
    };
    Record::new(workload, target, device, trace, result)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: db-writer PATH START COUNT BATCH | db-writer PATH --hold");
        return ExitCode::FAILURE;
    };
    let db = match Database::open(std::path::Path::new(path)) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("db-writer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if args.get(1).map(String::as_str) == Some("--hold") {
        let _ = writeln!(out, "ready");
        let _ = out.flush();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    let num = |i: usize, default: u64| {
        args.get(i)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let (start, count, batch) = (num(1, 0), num(2, u64::MAX), num(3, 1).max(1));
    let mut pending = Vec::new();
    for i in start..start.saturating_add(count) {
        if let Err(e) = db.insert_unflushed(&record(i)) {
            eprintln!("db-writer: {e}");
            return ExitCode::FAILURE;
        }
        pending.push(i);
        if pending.len() as u64 >= batch {
            if let Err(e) = db.flush() {
                eprintln!("db-writer: {e}");
                return ExitCode::FAILURE;
            }
            for p in pending.drain(..) {
                let _ = writeln!(out, "committed {p}");
            }
            let _ = out.flush();
        }
    }
    ExitCode::SUCCESS
}
