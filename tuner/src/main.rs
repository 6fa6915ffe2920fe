//! `grim-tune`: the grim command-line program.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// grim: a compiler and autotuner for BCR-sparse neural networks on ARM phones.
#[derive(Parser)]
#[command(name = "grim-tune", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Builds a workload from a spec string and prints its key, BCR statistics and
    /// lowered IR. Example: grim-tune show 'bcr-fc:M=256,K=256,N=1,block=16x16,sparsity=0.9,seed=1'
    Show {
        /// Workload spec, `KIND:KEY=VALUE,...` (see README.md).
        spec: String,
        /// Print only the summary, not the IR.
        #[arg(long)]
        no_ir: bool,
    },
    /// Parses and verifies a tir text file.
    CheckIr {
        /// The `.tir` file.
        file: PathBuf,
    },
    /// Generates the C of a (scheduled) workload and builds its measurement binary.
    Build {
        /// Workload spec.
        #[arg(long)]
        workload: String,
        /// Target: `host` or `aarch64-neon:MCPU`.
        #[arg(long, default_value = "host")]
        target: String,
        /// A trace JSON file with the schedule to apply (default schedule otherwise).
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Output directory for `kernels.c` and `kernels`.
        #[arg(long)]
        out: PathBuf,
    },
    /// Builds and runs a (scheduled) workload and compares it with the interpreter;
    /// exits non-zero when the error exceeds the tolerance.
    Check {
        /// Workload spec.
        #[arg(long)]
        workload: String,
        /// Target: `host` or `aarch64-neon:MCPU`.
        #[arg(long, default_value = "host")]
        target: String,
        /// Where to run: this machine, or qemu-aarch64.
        #[arg(long, value_enum, default_value = "local")]
        device: tuner::build_check::Device,
        /// A trace JSON file with the schedule to apply.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Largest accepted relative error.
        #[arg(long, default_value_t = 1e-4)]
        tolerance: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Show { spec, no_ir } => tuner::show(&spec, !no_ir),
        Command::CheckIr { file } => tuner::check_ir(&file),
        Command::Build {
            workload,
            target,
            trace,
            out,
        } => tuner::build_check::build(&workload, &target, trace.as_deref(), &out),
        Command::Check {
            workload,
            target,
            device,
            trace,
            tolerance,
        } => {
            match tuner::build_check::check(&workload, &target, device, trace.as_deref(), tolerance)
            {
                Ok(r) if r.ok => Ok(r.text),
                Ok(r) => {
                    print!("{}", r.text);
                    eprintln!("grim-tune: error: error exceeds the tolerance");
                    return ExitCode::FAILURE;
                }
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("grim-tune: error: {e}");
            ExitCode::FAILURE
        }
    }
}
