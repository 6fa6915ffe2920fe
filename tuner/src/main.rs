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
    /// The tuning database: export, import, merge, show.
    Db {
        #[command(subcommand)]
        command: tuner::db::DbCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Show { spec, no_ir } => tuner::show(&spec, !no_ir),
        Command::CheckIr { file } => tuner::check_ir(&file),
        Command::Db { command } => tuner::db::run(command).map_err(tuner::CliError::from),
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
