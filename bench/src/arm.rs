//! ARM (issue 11, point 4): grim's dense and BCR kernels and the C CSR kernel,
//! cross-compiled for aarch64 (`aarch64-linux-gnu-gcc -O3 -static -mcpu=CPU`), compared
//! without an ARM CPU (this machine has none):
//!
//! - **instructions per call**, exact, under `qemu-aarch64 -cpu CPU` with grim's
//!   instruction-count plugin (`codegen::insn_count`; the CSR kernel by the same
//!   difference of a 1-call and a 2-call run, from the block profile below);
//! - **estimated cycles per call**: a second plugin (`tb_profile.c`) counts how often
//!   each translated block runs in one call; the hottest blocks (95% of the
//!   instructions, at most 16) are disassembled and given to `llvm-mca -mcpu=CPU`,
//!   whose steady-state cycles per block iteration, times the block's executions, sum
//!   to the estimate (the rest at one cycle per instruction). It is a static model of
//!   an in-order (A55) or out-of-order (A76) core with every load hitting L1: it ranks
//!   kernels; it does not predict a phone's milliseconds.
//!
//! grim's kernels use their schedules tuned under qemu (instruction counts) when the
//! database has them (`bench/run` tunes a few), else the default schedule, said so.

use crate::csr_c;
use crate::error::{io, BenchError};
use crate::export::{export_case, read_meta};
use crate::plan::{bcr_spec, families, Case};
use codegen::harness::{measurement_source, Candidate};
use codegen::insn_count::{build_plugin, kernel_instructions};
use codegen::toolchain::{build_binary, run_with_timeout};
use codegen::Target;
use schedule::Schedule;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tir::workload::Workload;
use tuning_logs::{apply_best, ApplyBest, Database, DeviceIdentity};

/// The plugin that profiles translated blocks.
pub const TB_PLUGIN_SOURCE: &str = include_str!("tb_profile.c");

/// The cores compared (`-mcpu` of the build and llvm-mca's model).
pub const CPUS: [&str; 2] = ["cortex-a76", "cortex-a55"];

/// The qemu CPU model that runs code built for `mcpu`: qemu 7.2 has a `cortex-a76`
/// model but no `cortex-a55`, whose binaries (Armv8.2-A) run under `max`; instruction
/// counts depend only on the instructions executed, not on the model's timing.
pub fn qemu_cpu(mcpu: &str) -> &'static str {
    match mcpu {
        "cortex-a76" => "cortex-a76",
        _ => "max",
    }
}

/// The BCR specs of the ARM comparison (the dense spec of each family is added).
pub fn arm_specs(quick: bool) -> Vec<(String, String)> {
    let fams = families();
    let fam = |n: &str| fams.iter().find(|f| f.name == n).cloned();
    let mut out = Vec::new();
    let mut add = |n: &str, s: f64, b: (usize, usize)| {
        if let Some(f) = fam(n) {
            out.push((f.name.clone(), bcr_spec(&f, s, b)));
        }
    };
    if quick {
        add("fc2048", 0.9, (32, 32));
    } else {
        for b in [(16, 16), (32, 32), (64, 16)] {
            add("fc2048", 0.9, b);
        }
        add("fc2048", 0.75, (32, 32));
        add("gru256", 0.9, (32, 32));
        add("gru1024", 0.9, (32, 32));
    }
    out
}

/// The device identity under which qemu tuning records are stored (as the tuner's
/// `identity_of` for a qemu runner).
pub fn qemu_identity(qemu_cpu: &str) -> DeviceIdentity {
    let cpu = qemu_cpu;
    DeviceIdentity {
        model: format!("qemu-aarch64 -cpu {cpu}"),
        soc: cpu.to_string(),
        abi: "arm64-v8a".into(),
        cores: 1,
        opencl_device: None,
        serial: None,
    }
}

fn aerr(what: &str, m: impl std::fmt::Display) -> BenchError {
    BenchError::Run {
        case: what.into(),
        system: "arm".into(),
        message: m.to_string(),
    }
}

/// Per-block executions of one call: the difference of a `1 + 1`-call and a
/// `1 + 2`-call run, by block address: `(vaddr, instructions, executions)`.
fn profile(
    plugin: &Path,
    cpu: &str,
    cmd_for: &dyn Fn(u64) -> Command,
) -> Result<Vec<(u64, u64, u64)>, String> {
    let mut runs = Vec::new();
    for number in [1u64, 2] {
        let mut c = Command::new("qemu-aarch64");
        c.env("OMP_NUM_THREADS", "1")
            .arg("-plugin")
            .arg(plugin)
            .arg("-cpu")
            .arg(cpu);
        let inner = cmd_for(number);
        c.arg(inner.get_program()).args(inner.get_args());
        let f = run_with_timeout(&mut c, Duration::from_secs(600))
            .map_err(|e| e.to_string())?
            .ok_or("qemu timed out after 600 s")?;
        if f.code != Some(0) {
            return Err(format!("qemu exit {:?}: {}", f.code, f.stderr.trim()));
        }
        let mut blocks: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for l in f.stderr.lines() {
            let Some(rest) = l.strip_prefix("GRIM-TB ") else {
                continue;
            };
            let v: Vec<&str> = rest.split_whitespace().collect();
            if v.len() != 3 {
                continue;
            }
            let (Ok(a), Ok(n), Ok(e)) = (
                u64::from_str_radix(v[0], 16),
                v[1].parse::<u64>(),
                v[2].parse::<u64>(),
            ) else {
                continue;
            };
            let entry = blocks.entry(a).or_insert((n, 0));
            entry.0 = entry.0.max(n);
            entry.1 += e;
        }
        runs.push(blocks);
    }
    let (one, two) = (&runs[0], &runs[1]);
    Ok(two
        .iter()
        .filter_map(|(a, (n, e2))| {
            let e1 = one.get(a).map(|x| x.1).unwrap_or(0);
            (*e2 > e1).then_some((*a, *n, e2 - e1))
        })
        .collect())
}

/// The instructions of `[vaddr, vaddr + 4 n)` of `bin`, as assembler text for llvm-mca
/// (branch targets become a local label).
fn block_asm(bin: &Path, vaddr: u64, n: u64) -> Result<String, String> {
    let out = Command::new("aarch64-linux-gnu-objdump")
        .arg("-d")
        .arg("--no-show-raw-insn")
        .arg(format!("--start-address=0x{vaddr:x}"))
        .arg(format!("--stop-address=0x{:x}", vaddr + 4 * n))
        .arg(bin)
        .output()
        .map_err(|e| format!("aarch64-linux-gnu-objdump: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut asm = String::from(".text\n.Lgrim_target:\n");
    let mut count = 0;
    for line in text.lines() {
        // `  4005d0:\tldr\tx0, [x1]` (addresses, then the instruction after a tab)
        let Some((addr, rest)) = line.split_once(":\t") else {
            continue;
        };
        if u64::from_str_radix(addr.trim(), 16).is_err() {
            continue;
        }
        let ins = rest.split("//").next().unwrap_or("").trim();
        let ins = match ins.find(" <") {
            Some(i) => &ins[..i],
            None => ins,
        };
        let mut parts = ins.splitn(2, '\t');
        let mnem = parts.next().unwrap_or("").trim();
        let ops = parts.next().unwrap_or("").trim();
        if mnem.is_empty() || mnem.starts_with('.') || mnem == "udf" {
            continue;
        }
        // Branch targets printed as addresses: point them at the local label.
        let ops: Vec<String> = ops
            .split(", ")
            .map(|o| {
                let o = o.trim();
                let branch =
                    mnem.starts_with('b') || mnem.starts_with("cb") || mnem.starts_with("tb");
                if branch && u64::from_str_radix(o, 16).is_ok() && !o.starts_with('#') {
                    return ".Lgrim_target".to_string();
                }
                o.to_string()
            })
            .collect();
        let _ = writeln!(asm, "{mnem} {}", ops.join(", "));
        count += 1;
    }
    if count == 0 {
        return Err(format!("no instructions disassembled at 0x{vaddr:x}"));
    }
    Ok(asm)
}

/// llvm-mca's steady-state cycles per iteration of `asm` on `cpu`.
fn mca_cycles(asm: &str, cpu: &str, dir: &Path) -> Result<f64, String> {
    let p = dir.join("block.s");
    std::fs::write(&p, asm).map_err(|e| e.to_string())?;
    let out = Command::new("llvm-mca")
        .arg("-mtriple=aarch64")
        .arg(format!("-mcpu={cpu}"))
        .arg("-iterations=200")
        .arg(&p)
        .output()
        .map_err(|e| format!("llvm-mca: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    match (field("Total Cycles:"), field("Iterations:")) {
        (Some(c), Some(i)) if i > 0.0 => Ok(c / i),
        _ => Err(format!(
            "llvm-mca gave no cycle count: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("")
        )),
    }
}

/// One kernel's ARM figures.
#[derive(Debug, Clone)]
pub struct ArmRow {
    /// `fc2048-s90-b32x32`.
    pub case: String,
    /// `grim BCR`, `grim dense`, `C CSR`.
    pub kernel: String,
    /// The core.
    pub cpu: String,
    /// Which schedule.
    pub schedule: String,
    /// Instructions per call.
    pub insns: Option<u64>,
    /// Estimated cycles per call.
    pub cycles: Option<f64>,
    /// Share of the call's instructions in blocks llvm-mca modelled.
    pub coverage: f64,
    /// What went wrong, if anything.
    pub note: String,
}

/// Estimated cycles of one call from its block profile.
fn estimate(bin: &Path, blocks: &[(u64, u64, u64)], cpu: &str, dir: &Path) -> (f64, f64, String) {
    let total: u64 = blocks.iter().map(|b| b.1 * b.2).sum();
    let mut sorted = blocks.to_vec();
    sorted.sort_by_key(|b| std::cmp::Reverse(b.1 * b.2));
    let (mut covered, mut cycles, mut notes) = (0u64, 0f64, Vec::new());
    for b in sorted.iter().take(16) {
        if total > 0 && covered as f64 >= 0.95 * total as f64 {
            break;
        }
        match block_asm(bin, b.0, b.1).and_then(|a| mca_cycles(&a, cpu, dir)) {
            Ok(c) => {
                cycles += c * b.2 as f64;
                covered += b.1 * b.2;
            }
            Err(e) => notes.push(e),
        }
    }
    cycles += (total - covered) as f64;
    let cov = if total > 0 {
        covered as f64 / total as f64
    } else {
        0.0
    };
    notes.dedup();
    (cycles, cov, notes.join("; "))
}

struct GrimKernel {
    kernel: &'static str,
    func: tir::Function,
    args: BTreeMap<String, tir::Tensor>,
    schedule: String,
}

fn grim_kernel(
    db: &Database,
    w: &Workload,
    cpu: &str,
    kernel: &'static str,
) -> Result<GrimKernel, BenchError> {
    let target = tuning_logs::Target::Aarch64Neon {
        mcpu: cpu.into(),
        threads: None,
    };
    let (s, note) = match apply_best(db, w, &target, &qemu_identity(qemu_cpu(cpu))) {
        Ok(ApplyBest::Tuned { schedule, record }) => (
            *schedule,
            format!(
                "tuned under qemu ({} trace instructions)",
                record.record.trace.instructions.len()
            ),
        ),
        Ok(ApplyBest::NoRecord(_)) => (
            Schedule::from_workload(w).map_err(|e| aerr(kernel, e))?,
            "default (no qemu tuning record)".into(),
        ),
        Err(e) => return Err(aerr(kernel, e)),
    };
    let mut args = w.random_inputs(crate::export::INPUT_SEED);
    args.extend(s.weights().clone());
    Ok(GrimKernel {
        kernel,
        func: tuner::pipeline::optimize(s.func()),
        args,
        schedule: note,
    })
}

fn build_csr(dir: &Path, cpu: &str) -> Result<PathBuf, BenchError> {
    let target = Target::Aarch64Neon { mcpu: cpu.into() };
    crate::c_program::build(dir, "csr_bench", csr_c::SOURCE, &target, ("csr", "arm"))
}

fn build_tb_plugin(dir: &Path) -> Result<PathBuf, BenchError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let src = dir.join("tb_profile.c");
    std::fs::write(&src, TB_PLUGIN_SOURCE).map_err(io(&src))?;
    let lib = dir.join("libgrim_tb_profile.so");
    let mut cmd = Command::new("cc");
    cmd.args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&lib)
        .arg(&src);
    let f = run_with_timeout(&mut cmd, Duration::from_secs(60))
        .map_err(|e| aerr("plugin", e))?
        .ok_or_else(|| aerr("plugin", "build timed out"))?;
    if f.code != Some(0) {
        return Err(aerr("plugin", f.stderr.trim()));
    }
    Ok(lib)
}

/// Runs the ARM comparison into `out` (work files, `arm.md`); returns the markdown.
pub fn run(db_path: &Path, out: &Path, quick: bool) -> Result<String, BenchError> {
    let db = Database::open(db_path).map_err(|e| BenchError::Db {
        path: db_path.display().to_string(),
        message: e.to_string(),
    })?;
    std::fs::create_dir_all(out).map_err(io(out))?;
    let insn_plugin = build_plugin(&out.join("plugin")).map_err(|e| aerr("plugin", e))?;
    let tb_plugin = build_tb_plugin(&out.join("plugin"))?;
    let mut rows: Vec<ArmRow> = Vec::new();
    let specs = arm_specs(quick);
    for cpu in CPUS {
        let csr_bin = build_csr(&out.join(cpu).join("csr-build"), cpu)?;
        let target = Target::Aarch64Neon { mcpu: cpu.into() };
        let mut dense_done: Vec<String> = Vec::new();
        for (family, spec) in &specs {
            let w = Workload::from_spec_str(spec).map_err(|e| aerr(spec, e))?;
            let id = format!(
                "{family}-s{}-b{}",
                (w.spec.sparse().map(|s| s.sparsity).unwrap_or(0.0) * 100.0).round(),
                w.spec
                    .sparse()
                    .map(|s| format!("{}x{}", s.block_rows, s.block_cols))
                    .unwrap_or_default()
            );
            let dense_spec = families()
                .into_iter()
                .find(|f| &f.name == family)
                .map(|f| format!("{},seed=1", f.dense_spec))
                .unwrap_or_default();
            let mut kernels = vec![grim_kernel(&db, &w, cpu, "grim BCR")?];
            if !dense_done.contains(family) {
                let dw = Workload::from_spec_str(&dense_spec).map_err(|e| aerr(&dense_spec, e))?;
                kernels.push(grim_kernel(&db, &dw, cpu, "grim dense")?);
                dense_done.push(family.clone());
            }
            let dir = out.join(cpu).join(&id);
            let cands: Vec<Candidate<'_>> = kernels
                .iter()
                .map(|k| Candidate { func: &k.func })
                .collect();
            let src = measurement_source(&cands, &target).map_err(|e| aerr(&id, e))?;
            let bin = build_binary(&src, &dir, &target, Duration::from_secs(600))
                .map_err(|e| aerr(&id, e))?;
            for (i, k) in kernels.iter().enumerate() {
                let case_label = if k.kernel == "grim dense" {
                    format!("{family}-dense")
                } else {
                    id.clone()
                };
                eprintln!("arm: {cpu} {case_label} {}", k.kernel);
                let insns = kernel_instructions(
                    &bin,
                    &insn_plugin,
                    qemu_cpu(cpu),
                    i,
                    &k.func,
                    &k.args,
                    &dir,
                    Duration::from_secs(600),
                );
                let input = dir.join(format!("count-in{i}.bin"));
                let outp = dir.join(format!("prof-out{i}.bin"));
                let prof = profile(&tb_plugin, qemu_cpu(cpu), &|n| {
                    let mut c = Command::new(&bin);
                    c.arg(i.to_string())
                        .arg(&input)
                        .arg(&outp)
                        .arg(n.to_string())
                        .arg("0")
                        .arg("0");
                    c
                });
                let (cycles, coverage, mut note) = match &prof {
                    Ok(b) => {
                        let (c, cov, n) = estimate(&bin, b, cpu, &dir);
                        (Some(c), cov, n)
                    }
                    Err(e) => (None, 0.0, e.clone()),
                };
                if let Err(e) = &insns {
                    note = format!("{e}; {note}");
                }
                rows.push(ArmRow {
                    case: case_label,
                    kernel: k.kernel.into(),
                    cpu: cpu.into(),
                    schedule: k.schedule.clone(),
                    insns: insns.ok(),
                    cycles,
                    coverage,
                    note,
                });
            }
            // The C CSR kernel on the same matrix.
            let case = Case {
                id: id.clone(),
                family: family.clone(),
                spec: spec.clone(),
                dense_spec: dense_spec.clone(),
                sparsity: w.spec.sparse().map(|s| s.sparsity).unwrap_or(0.0),
                block: w.spec.sparse().map(|s| (s.block_rows, s.block_cols)),
            };
            let cdir = out.join("cases").join(&id);
            if read_meta(&cdir).is_err() {
                export_case(&case, &cdir)?;
            }
            let meta = read_meta(&cdir)?;
            let (args, _) = csr_c::prepare(
                &cdir,
                &meta,
                &out.join(cpu).join(&id).join("csr"),
                csr_c::Baseline::Csr,
            )?;
            eprintln!("arm: {cpu} {id} C CSR");
            let prof = profile(&tb_plugin, qemu_cpu(cpu), &|n| {
                let mut c = Command::new(&csr_bin);
                c.args(&args).arg("0").arg(n.to_string());
                c
            });
            let row = match prof {
                Ok(b) => {
                    let insns: u64 = b.iter().map(|x| x.1 * x.2).sum();
                    let (c, cov, note) = estimate(&csr_bin, &b, cpu, &dir);
                    ArmRow {
                        case: id.clone(),
                        kernel: "C CSR".into(),
                        cpu: cpu.into(),
                        schedule: "-".into(),
                        insns: Some(insns),
                        cycles: Some(c),
                        coverage: cov,
                        note,
                    }
                }
                Err(e) => ArmRow {
                    case: id.clone(),
                    kernel: "C CSR".into(),
                    cpu: cpu.into(),
                    schedule: "-".into(),
                    insns: None,
                    cycles: None,
                    coverage: 0.0,
                    note: e,
                },
            };
            rows.push(row);
        }
    }
    let md = markdown(&rows);
    let p = out.join("arm.md");
    std::fs::write(&p, &md).map_err(io(&p))?;
    Ok(md)
}

/// The ARM section of the report.
pub fn markdown(rows: &[ArmRow]) -> String {
    let mut s = String::from(
        "## ARM (aarch64, no ARM CPU here: qemu instruction counts and llvm-mca estimates)\n\n\
         Kernels cross-compiled with `aarch64-linux-gnu-gcc -O3 -static -mcpu=CPU -fopenmp`, run \
         with one thread under `qemu-aarch64` (`-cpu cortex-a76`; qemu 7.2 has no cortex-a55 \
         model, so the cortex-a55 builds run under `-cpu max`). Instructions per call are exact; cycles \
         are llvm-mca's steady-state estimate of the hottest blocks (coverage = share of the \
         instructions it modelled; the rest at 1 cycle each), with every load hitting L1. \
         `x dense` compares with grim's dense kernel for the same family and core.\n\n\
         | core | case | kernel | schedule | instructions/call | est. cycles/call | coverage | x dense (insns) | x dense (cycles) |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let fam = r.case.split('-').next().unwrap_or("");
        let dense = rows.iter().find(|d| {
            d.cpu == r.cpu && d.kernel == "grim dense" && d.case == format!("{fam}-dense")
        });
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
            _ => "-".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.0}% | {} | {} |",
            r.cpu,
            r.case,
            r.kernel,
            r.schedule,
            r.insns.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            r.cycles
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "-".into()),
            r.coverage * 100.0,
            ratio(
                dense.and_then(|d| d.insns.map(|v| v as f64)),
                r.insns.map(|v| v as f64)
            ),
            ratio(dense.and_then(|d| d.cycles), r.cycles),
        );
    }
    let notes: Vec<String> = rows
        .iter()
        .filter(|r| !r.note.is_empty())
        .map(|r| {
            let first = r.note.lines().next().unwrap_or("");
            format!("- {} {} {}: {}", r.cpu, r.case, r.kernel, first)
        })
        .collect();
    if !notes.is_empty() {
        s.push_str("\nNotes:\n");
        s.push_str(&notes.join("\n"));
        s.push('\n');
    }
    s
}
