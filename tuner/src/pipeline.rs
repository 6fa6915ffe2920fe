//! The compile pipeline between a schedule and code generation: the e-graph pass
//! simplifies every index expression of the scheduled function with the shipped
//! rewrite rules (`tir/rules/*.rules`), before C or OpenCL is generated.
//!
//! Limits are node and iteration counts only (the time limit is set far out of
//! reach), so the result is the same on every machine and a trace replayed on a phone
//! compiles to the same code. Every candidate's outputs are then compared with the
//! reference interpreter, as for every other transformation.

use std::sync::OnceLock;
use std::time::Duration;
use tir::egraph::pass::{simplify_function, Limits};
use tir::egraph::rules::RuleSet;
use tir::Function;

fn rules() -> Option<&'static RuleSet> {
    static RULES: OnceLock<Option<RuleSet>> = OnceLock::new();
    RULES.get_or_init(|| RuleSet::shipped().ok()).as_ref()
}

/// The deterministic limits of the pipeline's e-graph runs.
pub fn limits() -> Limits {
    Limits {
        nodes: 5_000,
        iterations: 8,
        time: Duration::from_secs(3600),
    }
}

/// Simplifies `f`'s index expressions; returns `f` unchanged when the pass cannot run.
pub fn optimize(f: &Function) -> Function {
    match rules() {
        Some(r) => simplify_function(f, r, &limits())
            .map(|(g, _)| g)
            .unwrap_or_else(|_| f.clone()),
        None => f.clone(),
    }
}
