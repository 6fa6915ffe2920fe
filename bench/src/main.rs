//! `grim-bench`: the Rust half of `bench/run` (export, grim and C CSR timings, ARM
//! comparison, report). See `bench/README.md`.

use clap::{Parser, Subcommand};
use grim_bench::error::{io, BenchError};
use grim_bench::plan::{cases, families, Mode};
use grim_bench::protocol::Protocol;
use grim_bench::{ceilings, csr_c, export, grim_run, plot, report, results};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Benchmarks grim's BCR kernels side by side with other systems.
#[derive(Parser)]
#[command(name = "grim-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prints the workload specs to tune, one per line (BCR cases, or the dense
    /// workload of each family).
    Specs {
        /// Which plan.
        #[arg(long, value_enum, default_value = "full")]
        mode: Mode,
        /// Print the dense specs instead of the BCR ones.
        #[arg(long)]
        dense: bool,
        /// Print the specs of the ARM comparison (BCR, or with --dense the dense ones).
        #[arg(long)]
        arm: bool,
    },
    /// Writes every case's weights, inputs and reference output into `OUT/ID/`, and
    /// the ordered case list into `OUT/plan.json`.
    Export {
        /// Which plan.
        #[arg(long, value_enum, default_value = "full")]
        mode: Mode,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Times grim's kernels (tuned BCR, default BCR, tuned dense) on every case.
    Grim {
        /// The exported cases (`export --out`).
        #[arg(long)]
        cases: PathBuf,
        /// The tuning database.
        #[arg(long)]
        db: PathBuf,
        /// Thread counts, comma-separated.
        #[arg(long, default_value = "1,2")]
        threads: String,
        /// The quick protocol (fewer, shorter samples).
        #[arg(long)]
        quick: bool,
        /// Result file (JSON Lines, appended).
        #[arg(long)]
        out: PathBuf,
    },
    /// Times the plain C CSR kernel on every case.
    CsrC {
        /// The exported cases.
        #[arg(long)]
        cases: PathBuf,
        /// Thread counts, comma-separated.
        #[arg(long, default_value = "1,2")]
        threads: String,
        /// The quick protocol.
        #[arg(long)]
        quick: bool,
        /// Result file (JSON Lines, appended).
        #[arg(long)]
        out: PathBuf,
    },
    /// ARM: grim dense vs BCR vs C CSR cross-compiled for aarch64, by qemu
    /// instruction counts and llvm-mca cycle estimates.
    Arm {
        /// The tuning database (for the tuned schedules; default schedules otherwise).
        #[arg(long)]
        db: PathBuf,
        /// Work and output folder.
        #[arg(long)]
        out: PathBuf,
        /// The quick subset.
        #[arg(long)]
        quick: bool,
    },
    /// Measures the machine's ceilings for the roofline (multiply-add peak, read
    /// bandwidth from L1, L2 and the last-level cache) at each thread count; the report
    /// reads them from `RESULTS/raw/ceilings.json`.
    Ceilings {
        /// Thread counts, comma-separated.
        #[arg(long, default_value = "1,2")]
        threads: String,
        /// Shorter samples (5 ms instead of 50).
        #[arg(long)]
        quick: bool,
        /// The exported cases (`export --out`): each sparse case's read bandwidth is
        /// measured at its kept values' bytes.
        #[arg(long)]
        cases: Option<PathBuf>,
        /// Work folder for the probe's build.
        #[arg(long)]
        build: PathBuf,
        /// Output file (JSON), replaced.
        #[arg(long)]
        out: PathBuf,
    },
    /// Merges every result into the markdown report, CSV and SVG figures.
    Report {
        /// The results folder (with `cases/`, `raw/*.jsonl`).
        #[arg(long)]
        results: PathBuf,
        /// A markdown file of run context to put at the top (tuning budget, machine).
        #[arg(long)]
        context: Option<PathBuf>,
    },
}

fn parse_threads(s: &str) -> Result<Vec<u32>, BenchError> {
    s.split(',')
        .map(|t| {
            t.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=256).contains(n))
                .ok_or_else(|| BenchError::BadFile {
                    path: "--threads".into(),
                    message: format!("`{t}` is not a thread count (1-256)"),
                })
        })
        .collect()
}

fn plan_ids(cases_dir: &Path) -> Result<Vec<String>, BenchError> {
    let p = cases_dir.join("plan.json");
    let text = std::fs::read_to_string(&p).map_err(io(&p))?;
    serde_json::from_str(&text).map_err(|e| BenchError::BadFile {
        path: p.display().to_string(),
        message: e.to_string(),
    })
}

fn run(cli: Cli) -> Result<String, BenchError> {
    match cli.command {
        Command::Specs { mode, dense, arm } => {
            let mut out = String::new();
            if arm {
                let specs = grim_bench::arm::arm_specs(mode == Mode::Quick);
                let mut fams: Vec<String> = specs.iter().map(|s| s.0.clone()).collect();
                fams.dedup();
                if dense {
                    for f in families().iter().filter(|f| fams.contains(&f.name)) {
                        out.push_str(&format!("{},seed=1\n", f.dense_spec));
                    }
                } else {
                    for (_, s) in specs {
                        out.push_str(&s);
                        out.push('\n');
                    }
                }
            } else if dense {
                let fams: Vec<String> = cases(mode).iter().map(|c| c.family.clone()).collect();
                for f in families().iter().filter(|f| fams.contains(&f.name)) {
                    out.push_str(&format!("{},seed=1\n", f.dense_spec));
                }
            } else {
                for c in cases(mode).iter().filter(|c| !c.is_dense()) {
                    out.push_str(&c.spec);
                    out.push('\n');
                }
            }
            Ok(out)
        }
        Command::Export { mode, out } => {
            let mut ids = Vec::new();
            let mut text = String::new();
            for c in cases(mode) {
                let m = export::export_case(&c, &out.join(&c.id))?;
                text.push_str(&format!(
                    "exported {:<24} {:>9} weights, {:>9} non-zeros, BCR {:>9} bytes\n",
                    c.id, m.stats.weights, m.stats.nonzeros, m.stats.bcr_bytes
                ));
                ids.push(c.id);
            }
            let p = out.join("plan.json");
            let json = serde_json::to_string_pretty(&ids).unwrap_or_default();
            std::fs::write(&p, json).map_err(io(&p))?;
            Ok(text)
        }
        Command::Grim {
            cases,
            db,
            threads,
            quick,
            out,
        } => {
            let threads = parse_threads(&threads)?;
            let protocol = if quick {
                Protocol::quick()
            } else {
                Protocol::full()
            };
            let database = tuning_logs::Database::open(&db).map_err(|e| BenchError::Db {
                path: db.display().to_string(),
                message: e.to_string(),
            })?;
            let text = String::new();
            for id in plan_ids(&cases)? {
                let recs =
                    grim_run::measure_case(&database, &cases.join(&id), &threads, &protocol)?;
                for r in &recs {
                    eprintln!("{}", summary_line(r));
                }
                results::append(&out, &recs)?;
            }
            Ok(text)
        }
        Command::CsrC {
            cases,
            threads,
            quick,
            out,
        } => {
            let threads = parse_threads(&threads)?;
            let protocol = if quick {
                Protocol::quick()
            } else {
                Protocol::full()
            };
            let bin = csr_c::build(&cases.join("_csr-c-build"))?;
            let text = String::new();
            for id in plan_ids(&cases)? {
                let recs = csr_c::measure_case(&bin, &cases.join(&id), &threads, &protocol)?;
                for r in &recs {
                    eprintln!("{}", summary_line(r));
                }
                results::append(&out, &recs)?;
            }
            Ok(text)
        }
        Command::Arm { db, out, quick } => grim_bench::arm::run(&db, &out, quick),
        Command::Ceilings {
            threads,
            quick,
            cases,
            build,
            out,
        } => {
            let threads = parse_threads(&threads)?;
            let bin = ceilings::build(&build)?;
            let mut sizes = Vec::new();
            if let Some(dir) = &cases {
                for id in plan_ids(dir)? {
                    let meta = export::read_meta(&dir.join(&id))?;
                    if !meta.case.is_dense() {
                        sizes.push((id, 4 * meta.stats.bcr_values));
                    }
                }
            }
            let min_ms = if quick { 5.0 } else { 50.0 };
            let caches = report::cache_sizes();
            let mut all = Vec::new();
            let mut text = String::new();
            for t in threads {
                let sets = ceilings::working_sets(&caches, &sizes, t);
                let c = ceilings::measure(&bin, t, &sets, min_ms)?;
                text.push_str(&format!(
                    "{t} thread(s): multiply-add peak {:.1} GFLOP/s; read {} ({} case sizes)\n",
                    c.fma_gflops,
                    c.levels()
                        .map(|r| format!("{} {:.1} GB/s", r.label, r.gbs))
                        .collect::<Vec<_>>()
                        .join(", "),
                    sizes.len()
                ));
                all.push(c);
            }
            ceilings::write(&out, &all)?;
            Ok(text)
        }
        Command::Report {
            results: dir,
            context,
        } => {
            let cases_dir = dir.join("cases");
            let ids = plan_ids(&cases_dir)?;
            let recs = results::read_all(&dir.join("raw"))?;
            let t = report::Table::new(&cases_dir, &ids, recs)?;
            let ceilings =
                ceilings::read(&dir.join("raw").join("ceilings.json"))?.unwrap_or_default();
            let mut md = String::from("# grim benchmark: BCR kernels side by side\n\n");
            if let Some(c) = context {
                md.push_str(&std::fs::read_to_string(&c).map_err(io(&c))?);
                md.push('\n');
            }
            for &th in &t.threads {
                md.push_str(&format!(
                    "\n## Median ms per call, {th} thread(s); (Nx) = that system's time / grim BCR's\n\n"
                ));
                md.push_str(&report::markdown_table(&t, th));
            }
            md.push_str("\n## Goals of issue 11 (ratios of medians)\n\n");
            md.push_str(&report::goals_markdown(&t, report::Stat::Median));
            md.push_str("\n## The same goals from each system's fastest sample (less sensitive to other jobs on the machine)\n\n");
            md.push_str(&report::goals_markdown(&t, report::Stat::Min));
            for &th in &t.threads {
                md.push_str(&format!("\n## Roofline of grim BCR, {th} thread(s)\n\n"));
                let c = ceilings.iter().find(|c| c.threads == th);
                md.push_str(&report::roofline_markdown(&t, th, c));
            }
            md.push_str(
                "\n## Output check: max abs difference from the reference (first thread count)\n\n",
            );
            md.push_str(&report::verification_markdown(&t));
            let models = report::models_markdown(&t);
            md.push_str("\n## Models (dense vs BCR, end to end)\n\n");
            if models.is_empty() {
                md.push_str("No model results: the model crate (issue 11, point 5) is not part of this run yet. The hook: an executable `bench/models/run RESULTS_DIR` is run by `bench/run` when present and appends `model:` records to `RESULTS_DIR/raw/models.jsonl` (see bench/README.md).\n");
            } else {
                md.push_str(&models);
            }
            let fails = report::failures_markdown(&t);
            if !fails.is_empty() {
                md.push_str("\n## Failed or wrong measurements\n\n");
                md.push_str(&fails);
            }
            let arm = dir.join("arm").join("arm.md");
            if arm.exists() {
                md.push('\n');
                md.push_str(&std::fs::read_to_string(&arm).map_err(io(&arm))?);
            }
            let csv_path = dir.join("results.csv");
            std::fs::write(&csv_path, report::csv(&t)).map_err(io(&csv_path))?;
            md.push_str("\n## Figures\n\n");
            for &th in &t.threads {
                let p = dir.join(format!("speedup_vs_sparsity_t{th}.svg"));
                plot::speedup_vs_sparsity(&t, th, &p)?;
                let q = dir.join(format!("latency_per_system_t{th}.svg"));
                plot::latency_per_system(&t, th, &q)?;
                md.push_str(&format!(
                    "- `speedup_vs_sparsity_t{th}.svg`, `latency_per_system_t{th}.svg`\n"
                ));
            }
            md.push_str("- `results.csv`: every measurement\n");
            let p = dir.join("report.md");
            std::fs::write(&p, &md).map_err(io(&p))?;
            Ok(md)
        }
    }
}

fn summary_line(r: &results::ResultRecord) -> String {
    match (r.ok, r.median_ms) {
        (true, Some(ms)) => format!(
            "{:<24} {:<18} {}t {:>10.4} ms  max|diff| {:.1e}",
            r.case,
            r.system,
            r.threads,
            ms,
            r.max_abs_diff.unwrap_or(f64::NAN)
        ),
        _ => format!(
            "{:<24} {:<18} {}t FAILED: {}",
            r.case,
            r.system,
            r.threads,
            r.note.lines().next().unwrap_or("")
        ),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("grim-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}
