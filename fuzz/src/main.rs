//! `fuzz --target NAME --iterations N [--seed S] [--out DIR]`: runs one fuzz target
//! (or `--target all`) and prints inputs/s and totals; exits 1 on a panic, hang or
//! excessive allocation, with the input written to `DIR` (default `fuzz-failures`).

use fuzz::{Options, Target};
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static ALLOC: fuzz::alloc::Counting = fuzz::alloc::Counting;

fn usage() -> String {
    let names: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
    format!(
        "usage: fuzz --target NAME|all --iterations N [--seed S] [--out DIR] [--replay FILE]\ntargets: {}",
        names.join(", ")
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut target = None;
    let mut iterations = 100_000u64;
    let mut seed = 1u64;
    let mut out = PathBuf::from("fuzz-failures");
    let mut replay: Option<PathBuf> = None;
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1);
        let ok = match (args[i].as_str(), val) {
            ("--target", Some(v)) => {
                target = Some(v.clone());
                true
            }
            ("--iterations", Some(v)) => v.parse().map(|n| iterations = n).is_ok(),
            ("--seed", Some(v)) => v.parse().map(|n| seed = n).is_ok(),
            ("--out", Some(v)) => {
                out = PathBuf::from(v);
                true
            }
            ("--replay", Some(v)) => {
                replay = Some(PathBuf::from(v));
                true
            }
            _ => false,
        };
        if !ok {
            eprintln!("bad argument `{}`\n{}", args[i], usage());
            return ExitCode::from(2);
        }
        i += 2;
    }
    let targets: Vec<Target> = match target.as_deref() {
        Some("all") => Target::ALL.to_vec(),
        Some(n) => match Target::from_name(n) {
            Some(t) => vec![t],
            None => {
                eprintln!("unknown target `{n}`\n{}", usage());
                return ExitCode::from(2);
            }
        },
        None => {
            eprintln!("{}", usage());
            return ExitCode::from(2);
        }
    };
    if let Some(file) = replay {
        let Ok(data) = std::fs::read(&file) else {
            eprintln!("cannot read {}", file.display());
            return ExitCode::from(2);
        };
        for t in targets {
            let t0 = std::time::Instant::now();
            let ok = fuzz::run_one(t, &data);
            println!(
                "{}: {} bytes, accepted {ok}, ran in {:?}",
                t.name(),
                data.len(),
                t0.elapsed()
            );
        }
        return ExitCode::SUCCESS;
    }
    let mut failed = false;
    for t in targets {
        let s = fuzz::run(&Options {
            target: t,
            iterations,
            seed,
            out_dir: out.clone(),
        });
        println!(
            "{:<14} inputs {:>10}  accepted {:>9}  seeds {:>4}  {:>10.0} inputs/s  {:>8.1} s  slowest {:>7.2} ms  peak alloc {:>7.1} MiB  retimed {}  failures {}",
            t.name(),
            s.inputs,
            s.accepted,
            s.seeds,
            s.rate(),
            s.elapsed.as_secs_f64(),
            s.slowest.as_secs_f64() * 1e3,
            s.peak_alloc as f64 / (1 << 20) as f64,
            s.retimed,
            usize::from(s.failure.is_some())
        );
        if let Some(f) = s.failure {
            failed = true;
            println!("FAILURE {:?}; input written to {:?}", f.kind, f.file);
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
