//! `grim-tune rules ...`: list, check and explain e-graph rewrite rules, as library
//! functions returning the text they print (so tests can call them without a process).

use crate::commands::CliError;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;
use tir::egraph::check::{check_rules, CheckConfig};
use tir::egraph::pass::{bcr_forms, simplify_checked, Limits};
use tir::egraph::rules::RuleSet;
use tir::workload::Workload;

fn load(extra: &[PathBuf]) -> Result<RuleSet, CliError> {
    let paths: Vec<&std::path::Path> = extra.iter().map(|p| p.as_path()).collect();
    Ok(RuleSet::shipped_and(&paths)?)
}

/// `grim-tune rules list [--rules FILE]...`: every loaded rule with its `file:line`,
/// its comment and its text.
pub fn list(extra: &[PathBuf]) -> Result<String, CliError> {
    let set = load(extra)?;
    let mut out = String::new();
    let counts: Vec<String> = set
        .counts_by_file()
        .iter()
        .map(|(f, n)| format!("{f}: {n}"))
        .collect();
    let _ = writeln!(out, "{} rules ({})", set.rules.len(), counts.join(", "));
    for r in &set.rules {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}  {}", r.location(), r.name);
        if let Some(d) = &r.doc {
            let _ = writeln!(out, "    # {d}");
        }
        let _ = writeln!(out, "    {}", r.text);
    }
    Ok(out)
}

/// What `grim-tune rules check` found.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    /// The report to print.
    pub text: String,
    /// Rules that are unsound or vacuous (the command fails when non-zero).
    pub failed: usize,
}

/// `grim-tune rules check [FILE]...`: checks the rules of each file (the shipped rules
/// when no file is given) on random bindings; see [`tir::egraph::check`].
pub fn check(files: &[PathBuf]) -> Result<CheckOutcome, CliError> {
    let set = if files.is_empty() {
        RuleSet::shipped()?
    } else {
        let mut s = RuleSet::default();
        for f in files {
            s.extend(RuleSet::load(f)?)?;
        }
        s
    };
    let cfg = CheckConfig::default();
    let start = Instant::now();
    let results = check_rules(&set, &cfg);
    let secs = start.elapsed().as_secs_f64();
    let mut out = String::new();
    let mut failed = 0;
    for c in &results {
        if !c.is_sound() {
            failed += 1;
        }
        let _ = writeln!(out, "{c}");
    }
    let _ = writeln!(
        out,
        "\n{} rules checked on {} random bindings each (seed {}) in {secs:.2}s: {} sound, {failed} unsound or vacuous.\n[approx] rules are only approximately true in floating point and were compared with a relative tolerance of {:e}.",
        results.len(),
        cfg.bindings,
        cfg.seed,
        results.len() - failed,
        cfg.rel_tol
    );
    Ok(CheckOutcome { text: out, failed })
}

/// `grim-tune rules explain --workload SPEC [--rules FILE]...`: runs the e-graph pass
/// on the workload's lowered function and picks the BCR compute form; prints which
/// rules fired, the stop reasons and the cost before and after, and checks the
/// simplified function against the interpreter.
pub fn explain(
    spec: &str,
    extra: &[PathBuf],
    limits: &Limits,
    print_ir: bool,
) -> Result<String, CliError> {
    let rules = load(extra)?;
    let w = Workload::from_spec_str(spec)?;
    let mut out = String::new();
    let counts: Vec<String> = rules
        .counts_by_file()
        .iter()
        .map(|(f, n)| format!("{f}: {n}"))
        .collect();
    let _ = writeln!(out, "workload  {}", w.spec);
    let _ = writeln!(
        out,
        "rules     {} loaded ({})",
        rules.rules.len(),
        counts.join(", ")
    );
    let _ = writeln!(out, "limits    {limits} (per e-graph run)");
    let _ = writeln!(out);
    let seeds = [1, 2];
    let (f2, report) =
        simplify_checked(&w, &w.func, &rules, limits, &seeds).map_err(CliError::Pass)?;
    let _ = writeln!(
        out,
        "index expressions (lowered function `{}`)",
        w.func.name
    );
    let _ = writeln!(
        out,
        "  e-graph runs:  {} expressions, {} replaced by a cheaper form",
        report.exprs, report.changed
    );
    let stops: Vec<String> = report
        .stop_reasons
        .iter()
        .map(|(k, n)| format!("{k} x{n}"))
        .collect();
    let _ = writeln!(out, "  stop reasons:  {}", stops.join(", "));
    if report.limit_hits > 0 {
        let _ = writeln!(
            out,
            "  WARNING: {} run(s) stopped on a limit; their best terms so far were used (raise --node-limit/--iter-limit/--time-limit to saturate)",
            report.limit_hits
        );
    }
    let _ = writeln!(out, "  rules fired:   {}", report.fired_text());
    let _ = writeln!(out, "  cost before:   {}", report.before);
    let _ = writeln!(out, "  cost after:    {}", report.after);
    let _ = writeln!(
        out,
        "  check:         interpreter outputs bit-identical before/after (random inputs, seeds 1 and 2)"
    );
    let forms = bcr_forms(&w, &rules, limits).map_err(CliError::Pass)?;
    for f in &forms {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "BCR compute form of {} (times {}): {} blocks, {} kept rows; start: {}",
            f.weight, f.input, f.blocks, f.row_products, f.start
        );
        let _ = writeln!(
            out,
            "  stop reason:   {} ({} e-nodes){}",
            f.stop_reason,
            f.egraph_nodes,
            if f.hit_limit {
                "; WARNING: limit hit, best term so far used"
            } else {
                ""
            }
        );
        let _ = writeln!(out, "  rules fired:   {}", f.fired_text());
        let _ = writeln!(
            out,
            "  cost before:   {} ({} gathers of {} rows)",
            f.cost_before, f.gathers_before, f.input
        );
        let _ = writeln!(
            out,
            "  cost after:    {} ({} gathers of {} rows)",
            f.cost_after, f.gathers_after, f.input
        );
        match f.checked_max_rel_diff {
            Some(d) => {
                let _ = writeln!(
                    out,
                    "  check:         extracted term vs interpreter output: max relative difference {d:.2e}"
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  check:         not evaluated (only bcr-fc without bias/activation, and terms of at most 2^25 elements, are evaluated)"
                );
            }
        }
        if print_ir {
            let _ = writeln!(out, "  extracted:     {}", f.extracted);
        }
    }
    if forms.is_empty() {
        let _ = writeln!(out, "\n(no BCR weights: no tensor-level form to pick)");
    }
    if print_ir {
        let _ = writeln!(out, "\nsimplified function:");
        out.push_str(&tir::printer::print_function(&f2));
    }
    Ok(out)
}
