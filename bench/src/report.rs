//! The report: merges every result record with the cases' metadata and prints a
//! markdown table of milliseconds and ratios (grim BCR vs each system) per thread
//! count, the goals, and the roofline of grim's BCR kernels; writes a CSV.

use crate::ceilings::Ceilings;
use crate::export::{read_meta, CaseMeta};
use crate::results::ResultRecord;
use crate::systems::{system, SYSTEMS};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Which statistic of a measurement a ratio uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    /// The median per-call time (the main tables).
    Median,
    /// The fastest sample: less sensitive to other jobs sharing the machine.
    Min,
}

/// Results indexed for the report.
pub struct Table {
    /// Case metadata in plan order.
    pub cases: Vec<CaseMeta>,
    /// `(case, system, threads)` -> record.
    pub records: BTreeMap<(String, String, u32), ResultRecord>,
    /// Thread counts present.
    pub threads: Vec<u32>,
}

impl Table {
    /// Reads the case folders listed in `order` under `cases_dir` and indexes `records`
    /// (the timing rounds of one case, system and threads merged by
    /// [`crate::results::combine_rounds`]).
    pub fn new(
        cases_dir: &Path,
        order: &[String],
        records: Vec<ResultRecord>,
    ) -> Result<Table, crate::error::BenchError> {
        let mut cases = Vec::new();
        for id in order {
            cases.push(read_meta(&cases_dir.join(id))?);
        }
        let mut threads: Vec<u32> = records.iter().map(|r| r.threads).collect();
        threads.sort_unstable();
        threads.dedup();
        let records = crate::results::combine_rounds(records)
            .into_iter()
            .map(|r| ((r.case.clone(), r.system.clone(), r.threads), r))
            .collect();
        Ok(Table {
            cases,
            records,
            threads,
        })
    }

    /// The valid median (ms) of a system on a case, when measured and correct.
    pub fn ms(&self, case: &str, sys: &str, threads: u32) -> Option<f64> {
        self.stat(case, sys, threads, Stat::Median)
    }

    /// The valid median or fastest sample (ms) of a system on a case.
    pub fn stat(&self, case: &str, sys: &str, threads: u32, stat: Stat) -> Option<f64> {
        self.records
            .get(&(case.to_string(), sys.to_string(), threads))
            .filter(|r| r.ok)
            .and_then(|r| match stat {
                Stat::Median => r.median_ms,
                Stat::Min => r.min_ms,
            })
    }

    /// The fastest dense framework on a case: `(system id, ms)` (medians).
    pub fn fastest_dense(&self, case: &str, threads: u32) -> Option<(&'static str, f64)> {
        self.fastest(case, threads, Stat::Median, |s| s.dense_framework)
    }

    /// The fastest of the systems `pick` selects on a case, by `stat`.
    pub fn fastest(
        &self,
        case: &str,
        threads: u32,
        stat: Stat,
        pick: impl Fn(&crate::systems::System) -> bool,
    ) -> Option<(&'static str, f64)> {
        SYSTEMS
            .iter()
            .filter(|s| pick(s))
            .filter_map(|s| self.stat(case, s.id, threads, stat).map(|t| (s.id, t)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Systems with at least one record, in table order.
    pub fn present_systems(&self) -> Vec<&'static str> {
        SYSTEMS
            .iter()
            .filter(|s| self.records.keys().any(|(_, sys, _)| sys == s.id))
            .map(|s| s.id)
            .collect()
    }
}

fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// The main table for one thread count: each system's median ms, with the ratio
/// `system / grim BCR` (how many times faster grim BCR is) for sparse cases.
pub fn markdown_table(t: &Table, threads: u32) -> String {
    let systems = t.present_systems();
    let mut s = String::new();
    let _ = write!(s, "| case | sparsity | block |");
    for id in &systems {
        let _ = write!(s, " {} |", system(id).map(|x| x.title).unwrap_or(id));
    }
    s.push('\n');
    let _ = writeln!(s, "|---|---|---|{}", "---|".repeat(systems.len()));
    for c in &t.cases {
        let id = &c.case.id;
        let base = t.ms(id, "grim-bcr", threads);
        let _ = write!(
            s,
            "| {} | {} | {} |",
            c.case.family,
            if c.case.is_dense() {
                "0".to_string()
            } else {
                format!("{:.0}%", c.case.sparsity * 100.0)
            },
            c.case.block_label()
        );
        for sys in &systems {
            let rec = t.records.get(&(id.clone(), sys.to_string(), threads));
            let cell = match rec {
                None => "".to_string(),
                Some(r) if !r.ok => match r.max_abs_diff {
                    Some(d) if d.is_finite() => format!("WRONG ({d:.1e})"),
                    _ => "failed".into(),
                },
                Some(r) => match (r.median_ms, base) {
                    (Some(ms), Some(b)) if *sys != "grim-bcr" => {
                        format!("{} ({:.1}x)", fmt_ms(ms), ms / b)
                    }
                    (Some(ms), _) if *sys == "grim-bcr" => format!("**{}**", fmt_ms(ms)),
                    (Some(ms), _) => fmt_ms(ms),
                    (None, _) => "-".into(),
                },
            };
            let _ = write!(s, " {cell} |");
        }
        s.push('\n');
    }
    s
}

/// One goal of the issue and what was reached.
pub struct Goal {
    /// What is compared.
    pub what: String,
    /// The goal ratio.
    pub goal: f64,
    /// Reached ratio, per thread count.
    pub reached: Vec<(u32, Option<f64>, String)>,
}

type Baseline<'a> = &'a dyn Fn(&Table, &str, u32) -> Option<(String, f64)>;

fn family_goal(
    t: &Table,
    stat: Stat,
    family: &str,
    sparsity: f64,
    what: &str,
    goal: f64,
    baseline: Baseline<'_>,
) -> Vec<Goal> {
    let mut out = Vec::new();
    for c in t
        .cases
        .iter()
        .filter(|c| c.case.family == family && (c.case.sparsity - sparsity).abs() < 1e-9)
    {
        let reached = t
            .threads
            .iter()
            .map(|&th| {
                let g = t.stat(&c.case.id, "grim-bcr", th, stat);
                match (g, baseline(t, &c.case.id, th)) {
                    (Some(g), Some((name, b))) => (th, Some(b / g), name),
                    _ => (th, None, "-".into()),
                }
            })
            .collect();
        out.push(Goal {
            what: format!("{} {} ({})", c.case.family, what, c.case.block_label()),
            goal,
            reached,
        });
    }
    out
}

/// The goals of issue 11 at 90% sparsity, from medians or fastest samples.
pub fn goals(t: &Table, stat: Stat) -> Vec<Goal> {
    let named = |r: Option<(&'static str, f64)>| r.map(|(s, v)| (s.to_string(), v));
    let dense = |t: &Table, c: &str, th: u32| named(t.fastest(c, th, stat, |s| s.dense_framework));
    let lsparse = |t: &Table, c: &str, th: u32| {
        named(t.fastest(c, th, stat, |s| {
            s.id == "litert-sparse" || s.id == "litert-csr"
        }))
    };
    let csr = |t: &Table, c: &str, th: u32| named(t.fastest(c, th, stat, |s| s.csr));
    let gdense =
        |t: &Table, c: &str, th: u32| named(t.fastest(c, th, stat, |s| s.id == "grim-dense"));
    let bcr_loop = |t: &Table, c: &str, th: u32| named(t.fastest(c, th, stat, |s| s.id == "bcr-c"));
    let mut g = Vec::new();
    g.extend(family_goal(
        t,
        stat,
        "fc2048",
        0.9,
        "vs fastest dense framework",
        9.0,
        &dense,
    ));
    g.extend(family_goal(
        t,
        stat,
        "fc2048",
        0.9,
        "vs LiteRT block-sparse FC",
        2.0,
        &lsparse,
    ));
    g.extend(family_goal(
        t,
        stat,
        "fc2048",
        0.9,
        "vs fastest CSR kernel",
        5.0,
        &csr,
    ));
    // "Much better than the plain BCR loop at every block size": read as >= 2x.
    g.extend(family_goal(
        t,
        stat,
        "fc2048",
        0.9,
        "vs the plain C BCR loop (same blocks)",
        2.0,
        &bcr_loop,
    ));
    g.extend(family_goal(
        t,
        stat,
        "conv3x3",
        0.9,
        "vs fastest dense framework",
        7.0,
        &dense,
    ));
    for fam in ["gru256", "gru1024"] {
        g.extend(family_goal(
            t,
            stat,
            fam,
            0.9,
            "vs fastest dense framework",
            7.0,
            &dense,
        ));
        g.extend(family_goal(
            t,
            stat,
            fam,
            0.9,
            "vs grim dense",
            7.0,
            &gdense,
        ));
    }
    g
}

/// The goals as a markdown table.
pub fn goals_markdown(t: &Table, stat: Stat) -> String {
    let mut s = String::new();
    let _ = write!(s, "| goal (90% sparsity) | target |");
    for th in &t.threads {
        let _ = write!(s, " {th} thread(s) |");
    }
    s.push('\n');
    let _ = writeln!(s, "|---|---|{}", "---|".repeat(t.threads.len()));
    for g in goals(t, stat) {
        let _ = write!(s, "| {} | >= {:.0}x |", g.what, g.goal);
        for (_, r, name) in &g.reached {
            let cell = match r {
                Some(v) => format!(
                    "{v:.2}x vs {name} {}",
                    if *v >= g.goal { "(met)" } else { "(not met)" }
                ),
                None => "not measured".into(),
            };
            let _ = write!(s, " {cell} |");
        }
        s.push('\n');
    }
    s
}

/// Cache sizes of this machine from sysfs: `(level, bytes)`, data/unified caches.
pub fn cache_sizes() -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    for i in 0..8 {
        let d = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
        let read = |f: &str| std::fs::read_to_string(format!("{d}/{f}")).ok();
        let (Some(level), Some(size), Some(kind)) = (read("level"), read("size"), read("type"))
        else {
            continue;
        };
        if kind.trim() == "Instruction" {
            continue;
        }
        let size = size.trim();
        let bytes = if let Some(k) = size.strip_suffix('K') {
            k.parse::<u64>().ok().map(|v| v * 1024)
        } else if let Some(m) = size.strip_suffix('M') {
            m.parse::<u64>().ok().map(|v| v * 1024 * 1024)
        } else {
            size.parse::<u64>().ok()
        };
        if let (Ok(l), Some(b)) = (level.trim().parse::<u32>(), bytes) {
            out.push((l, b));
        }
    }
    out
}

/// The roofline table: per sparse case, the bytes of kept weights plus BCR indices one
/// call reads, grim BCR's time, the bandwidth that implies and the arithmetic rate, and
/// the cache those bytes fit (then the kernel reads them from cache across repeated
/// calls, not from DRAM); beside it, the fastest dense framework's time, the bandwidth
/// its dense weights imply and its arithmetic rate. With the machine's measured
/// `ceilings` at this thread count: the multiply-add rates as shares of the peak, and
/// the roofline bound, the least time any BCR kernel of the case can take here: the
/// longer of its kept multiply-adds at the peak and reading its kept values (4 bytes
/// each; every kernel reads them, while which index arrays it reads depends on the
/// schedule) at the read bandwidth measured for that many bytes; with the share of it
/// grim reaches.
pub fn roofline_markdown(t: &Table, threads: u32, ceilings: Option<&Ceilings>) -> String {
    let caches = cache_sizes();
    let size = |l: u32| caches.iter().find(|c| c.0 == l).map(|c| c.1);
    let llc = caches.iter().max_by_key(|c| c.0).map(|c| c.1);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Caches (cpu0, sysfs): {}.\n",
        caches
            .iter()
            .map(|(l, b)| format!("L{l} {} KiB", b / 1024))
            .collect::<Vec<_>>()
            .join(", ")
    );
    match ceilings {
        Some(c) => {
            let _ = writeln!(
                s,
                "Ceilings at {} thread(s) (`grim-bench ceilings`, {} UTC; best of 5 samples): multiply-add peak {:.1} GFLOP/s; read bandwidth {}; and each case's read bandwidth at its kept values' bytes (split over the threads), in the table.\n",
                c.threads,
                c.measured_utc,
                c.fma_gflops,
                c.levels()
                    .map(|r| format!("{} {:.1} GB/s ({} KiB per thread)", r.label, r.gbs, r.bytes / 1024))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        None => s.push_str("No measured ceilings for this thread count (`grim-bench ceilings` was not run): the shares of the peak and the roofline bound are left out.\n\n"),
    }
    s.push_str("| case | kept values | weight+index bytes | dense bytes | grim BCR ms | GB/s (weights+indices) | GFLOP/s (kept MACs) | resident in | read ceiling GB/s (kept values) | % of FMA peak | roofline bound ms | % of bound reached | fastest dense framework ms | its GB/s (dense weights) | its GFLOP/s (dense MACs) | its % of FMA peak |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let pct = |v: Option<f64>| {
        v.map(|v| format!("{:.0}%", 100.0 * v))
            .unwrap_or_else(|| "-".into())
    };
    for c in t.cases.iter().filter(|c| !c.case.is_dense()) {
        let Some(ms) = t.ms(&c.case.id, "grim-bcr", threads) else {
            continue;
        };
        let bytes = c.stats.bcr_bytes as f64;
        let gbs = bytes / (ms * 1e-3) / 1e9;
        let flops = 2.0 * c.stats.bcr_values as f64 * c.layer.reuse() as f64;
        let gflops = flops / (ms * 1e-3) / 1e9;
        let fits = |l: Option<u64>| l.is_some_and(|l| bytes as u64 <= l);
        let level = if fits(size(1)) {
            Some("L1")
        } else if fits(size(2)) {
            Some("L2")
        } else if fits(llc) {
            Some("LLC")
        } else {
            None
        };
        let resident = match (level, llc) {
            (Some(l), _) => l,
            (None, Some(_)) => "DRAM (exceeds LLC)",
            (None, None) => "?",
        };
        let read_ceiling = ceilings.and_then(|ceil| ceil.read_gbs(&c.case.id));
        let peak = ceilings.map(|c| c.fma_gflops);
        let value_bytes = 4.0 * c.stats.bcr_values as f64;
        let bound_ms = match (read_ceiling, peak) {
            (Some(bw), Some(p)) => Some((value_bytes / (bw * 1e9)).max(flops / (p * 1e9)) * 1e3),
            _ => None,
        };
        let dense_bytes = 4.0 * c.stats.weights as f64;
        let dense_flops = 2.0 * c.stats.weights as f64 * c.layer.reuse() as f64;
        let (dense_ms, dense_gbs, dense_gflops, dense_peak) =
            match t.fastest_dense(&c.case.id, threads) {
                Some((name, d)) => {
                    let g = dense_flops / (d * 1e-3) / 1e9;
                    (
                        format!("{} ({name})", fmt_ms(d)),
                        format!("{:.1}", dense_bytes / (d * 1e-3) / 1e9),
                        format!("{g:.1}"),
                        pct(peak.map(|p| g / p)),
                    )
                }
                None => ("-".into(), "-".into(), "-".into(), "-".into()),
            };
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} MB | {:.2} MB | {} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.case.id,
            c.stats.bcr_values,
            bytes / 1e6,
            dense_bytes / 1e6,
            fmt_ms(ms),
            gbs,
            gflops,
            resident,
            read_ceiling.map(|bw| format!("{bw:.1}")).unwrap_or_else(|| "-".into()),
            pct(peak.map(|p| gflops / p)),
            bound_ms.map(fmt_ms).unwrap_or_else(|| "-".into()),
            pct(bound_ms.map(|b| b / ms)),
            dense_ms,
            dense_gbs,
            dense_gflops,
            dense_peak
        );
    }
    s
}

/// The CSV of every record, with the case's family, sparsity and block and the ratio
/// `system / grim BCR` of the same case and threads.
pub fn csv(t: &Table) -> String {
    let mut s = String::from(
        "case,family,sparsity,block,system,threads,median_ms,min_ms,repeat,number,max_abs_diff,ok,ratio_vs_grim_bcr,note\n",
    );
    for c in &t.cases {
        for sys in SYSTEMS {
            for &th in &t.threads {
                let Some(r) = t.records.get(&(c.case.id.clone(), sys.id.to_string(), th)) else {
                    continue;
                };
                let ratio = match (r.ok, r.median_ms, t.ms(&c.case.id, "grim-bcr", th)) {
                    (true, Some(ms), Some(b)) => format!("{:.4}", ms / b),
                    _ => String::new(),
                };
                let opt = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
                let _ = writeln!(
                    s,
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},\"{}\"",
                    c.case.id,
                    c.case.family,
                    c.case.sparsity,
                    c.case.block_label(),
                    sys.id,
                    th,
                    opt(r.median_ms),
                    opt(r.min_ms),
                    r.repeat,
                    r.number,
                    r.max_abs_diff
                        .map(|v| format!("{v:.3e}"))
                        .unwrap_or_default(),
                    r.ok,
                    ratio,
                    r.note.replace('"', "'").replace('\n', " ")
                );
            }
        }
    }
    s
}

/// The verification table: per case, the largest absolute difference from the
/// reference of every system (1 thread).
pub fn verification_markdown(t: &Table) -> String {
    let systems = t.present_systems();
    let th = t.threads.first().copied().unwrap_or(1);
    let mut s = String::from("| case |");
    for id in &systems {
        let _ = write!(s, " {id} |");
    }
    let _ = writeln!(s, "\n|---|{}", "---|".repeat(systems.len()));
    for c in &t.cases {
        let _ = write!(s, "| {} |", c.case.id);
        for id in &systems {
            let cell = match t.records.get(&(c.case.id.clone(), id.to_string(), th)) {
                Some(r) => match r.max_abs_diff {
                    Some(d) => format!("{d:.1e}{}", if r.ok { "" } else { " !" }),
                    None => "failed".into(),
                },
                None => String::new(),
            };
            let _ = write!(s, " {cell} |");
        }
        s.push('\n');
    }
    s
}

/// Failed or wrong records with their notes.
pub fn failures_markdown(t: &Table) -> String {
    let mut s = String::new();
    for r in t
        .records
        .values()
        .filter(|r| !r.ok && !r.case.starts_with("model:"))
    {
        let _ = writeln!(
            s,
            "- {} / {} / {} thread(s): {}",
            r.case,
            r.system,
            r.threads,
            r.note.lines().next().unwrap_or("")
        );
    }
    s
}

/// The models section (issue 11, point 5): records whose case is not in the plan and
/// starts with `model:` (`model:NAME:dense`, `model:NAME:bcr-...`), written by a model
/// benchmark into `raw/*.jsonl` (see bench/README.md). Their `note` carries the accuracy.
pub fn models_markdown(t: &Table) -> String {
    let mut rows: Vec<&ResultRecord> = t
        .records
        .values()
        .filter(|r| r.case.starts_with("model:"))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    rows.sort_by(|a, b| (&a.case, &a.system, a.threads).cmp(&(&b.case, &b.system, b.threads)));
    let mut s = String::from(
        "| model case | system | threads | median ms | checked | accuracy / note |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            r.case,
            r.system,
            r.threads,
            r.median_ms.map(fmt_ms).unwrap_or_else(|| "-".into()),
            if r.ok { "yes" } else { "no" },
            r.note.replace('|', "/")
        );
    }
    let ratios = model_ratio_lines(t);
    if !ratios.is_empty() {
        s.push('\n');
        s.push_str(&ratios);
    }
    s
}

/// One line per model with a timed BCR row: its ratio over grim's dense model and over
/// the fastest dense framework that ran the same dense model (records of case
/// `model:NAME:dense` from another system, all at the BCR row's thread count), both
/// ratios of medians. Empty when no model has a timed BCR row.
pub fn model_ratio_lines(t: &Table) -> String {
    let mut s = String::new();
    for (case, system, threads) in t.records.keys() {
        let Some(name) = case
            .strip_prefix("model:")
            .and_then(|c| c.strip_suffix(":bcr"))
        else {
            continue;
        };
        let Some(ms) = t.ms(case, system, *threads).filter(|_| system == "grim") else {
            continue;
        };
        let dense_case = format!("model:{name}:dense");
        let mut parts = Vec::new();
        if let Some(d) = t.ms(&dense_case, "grim", *threads) {
            parts.push(format!(
                "{:.2}x over grim's dense model ({} ms)",
                d / ms,
                fmt_ms(d)
            ));
        }
        let fastest = t
            .records
            .keys()
            .filter(|(c, sys, th)| *c == dense_case && sys != "grim" && th == threads)
            .filter_map(|(c, sys, th)| t.ms(c, sys, *th).map(|d| (sys, d)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match fastest {
            Some((sys, d)) => parts.push(format!(
                "{:.2}x over the fastest dense framework ({sys} {} ms)",
                d / ms,
                fmt_ms(d)
            )),
            None => parts.push("no dense framework ran this model".to_string()),
        }
        let _ = writeln!(
            s,
            "- {name}, {threads} thread(s): grim BCR {} ms, {}.",
            fmt_ms(ms),
            parts.join("; ")
        );
    }
    s
}
