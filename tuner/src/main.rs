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
    /// E-graph rewrite rules: list them, check their soundness, explain a workload.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Checks every rule of each FILE (the shipped rules when none is given) on 1000
    /// random bindings; prints a counterexample for each unsound rule and fails if any.
    Check {
        /// Rule files (`.rules`).
        files: Vec<PathBuf>,
    },
    /// Prints every loaded rule (shipped, plus --rules files) with its file:line.
    List {
        /// Extra rule file to load after the shipped ones (repeatable).
        #[arg(long = "rules")]
        rules: Vec<PathBuf>,
    },
    /// Runs the e-graph pass on a workload: rules fired, stop reasons, cost before and
    /// after, and the BCR compute form picked.
    Explain {
        /// Workload spec, `KIND:KEY=VALUE,...`.
        #[arg(long)]
        workload: String,
        /// Extra rule file to load after the shipped ones (repeatable).
        #[arg(long = "rules")]
        rules: Vec<PathBuf>,
        /// Most e-nodes per e-graph run.
        #[arg(long, default_value_t = 10_000)]
        node_limit: usize,
        /// Most iterations per e-graph run.
        #[arg(long, default_value_t = 12)]
        iter_limit: usize,
        /// Most seconds per e-graph run.
        #[arg(long, default_value_t = 2.0)]
        time_limit: f64,
        /// Also print the simplified function and the extracted BCR terms.
        #[arg(long)]
        ir: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Show { spec, no_ir } => tuner::show(&spec, !no_ir),
        Command::CheckIr { file } => tuner::check_ir(&file),
        Command::Rules { command } => match command {
            RulesCommand::Check { files } => match tuner::rules::check(&files) {
                Ok(outcome) if outcome.failed > 0 => {
                    print!("{}", outcome.text);
                    eprintln!(
                        "grim-tune: error: {} rule(s) unsound or vacuous",
                        outcome.failed
                    );
                    return ExitCode::FAILURE;
                }
                Ok(outcome) => Ok(outcome.text),
                Err(e) => Err(e),
            },
            RulesCommand::List { rules } => tuner::rules::list(&rules),
            RulesCommand::Explain {
                workload,
                rules,
                node_limit,
                iter_limit,
                time_limit,
                ir,
            } => {
                if !(time_limit.is_finite() && time_limit > 0.0) {
                    eprintln!(
                        "grim-tune: error: --time-limit must be a positive number of seconds"
                    );
                    return ExitCode::FAILURE;
                }
                let limits = tir::egraph::pass::Limits {
                    nodes: node_limit,
                    iterations: iter_limit,
                    time: std::time::Duration::from_secs_f64(time_limit),
                };
                tuner::rules::explain(&workload, &rules, &limits, ir)
            }
        },
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
