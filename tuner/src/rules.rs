//! `grim-tune rules ...`: list, check and explain e-graph rewrite rules, as library
//! functions returning the text they print (so tests can call them without a process).

use crate::commands::CliError;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;
use tir::egraph::bcr_choice::BcrChoice;
use tir::egraph::check::{check_rules, CheckConfig};
use tir::egraph::pass::{bcr_forms, simplify_checked, Limits};
use tir::egraph::rules::RuleSet;
use tir::workload::Workload;

/// `grim-tune rules list [--rules FILE]... [--drop-rule NAME]...`: every rule of
/// `set` (see [`crate::pipeline::load_rules`]) with its `file:line`, its comment and
/// its text.
pub fn list(set: &RuleSet) -> Result<String, CliError> {
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

/// `grim-tune rules explain --workload SPEC [--rules FILE]... [--drop-rule NAME]...`:
/// runs the e-graph pass on the workload's lowered function and picks the BCR compute
/// form; prints which rules fired, the stop reasons and the cost before and after,
/// checks the simplified function against the interpreter, and says which BCR
/// schedule the compile pipeline derives from the form (and why).
pub fn explain(
    spec: &str,
    rules: &RuleSet,
    limits: &Limits,
    print_ir: bool,
) -> Result<String, CliError> {
    let rules = rules.clone();
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
    } else {
        explain_schedule(&w, &rules, &mut out)?;
    }
    if print_ir {
        let _ = writeln!(out, "\nsimplified function:");
        out.push_str(&tir::printer::print_function(&f2));
    }
    Ok(out)
}

/// The schedule the pipeline derives from the BCR forms (per column class, under the
/// pipeline's deterministic limits), checked in the interpreter.
fn explain_schedule(w: &Workload, rules: &RuleSet, out: &mut String) -> Result<(), CliError> {
    let d =
        crate::pipeline::default_schedule(w, rules).map_err(|e| CliError::Other(e.to_string()))?;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "schedule chosen by the compile pipeline (per column class, limits {})",
        crate::pipeline::limits()
    );
    for c in &d.choices {
        explain_choice(c, out);
    }
    let _ = writeln!(out, "  default schedule: {}", d.description);
    let _ = writeln!(
        out,
        "  check:           interpreter, scheduled vs lowered: max relative difference {:.1e}",
        d.max_rel_diff
    );
    let _ = writeln!(
        out,
        "  not derived:     column reordering (the extracted form has no column permutation to read); it stays a tuning knob"
    );
    Ok(())
}

fn explain_choice(c: &BcrChoice, out: &mut String) {
    let _ = writeln!(
        out,
        "  {}: {} blocks in {} column classes ({} e-graph runs, one per class shape)",
        c.weight, c.blocks, c.classes, c.runs
    );
    let _ = writeln!(out, "    stop reasons:  {}", c.stop_text());
    let _ = writeln!(out, "    rules fired:   {}", c.fired_text());
    let _ = writeln!(
        out,
        "    cost before:   {} ({} gathers of {} rows, one per kept row)",
        c.cost_before, c.gathers_before, c.input
    );
    let _ = writeln!(
        out,
        "    cost after:    {} ({} gathers of {} rows)",
        c.cost_after, c.gathers_after, c.input
    );
    if c.unread_classes > 0 {
        let _ = writeln!(
            out,
            "    note:          {} classes' extracted terms are not sums of scattered products and decide nothing",
            c.unread_classes
        );
    }
    let _ = writeln!(out, "    chosen:        {}", c.reason());
}
