//! The compile pipeline between a workload and code generation, around the e-graph
//! pass (`tir/rules/*.rules`, plus a researcher's rules):
//!
//! 1. [`default_schedule`]: for every BCR weight, the e-graph picks the BCR compute
//!    form ([`tir::egraph::bcr_choice`]) and the form is turned into BCR schedule
//!    primitives (load-redundancy elimination, row reordering by block column; see
//!    [`crate::space_bcr::egraph_decisions`]), and the kept rows are vectorized by 4
//!    where the kernel allows it (row vectorization). The scheduled function is run in the
//!    reference interpreter and compared with the lowered function's outputs before
//!    it is used. The same point starts the search of `grim-tune tune`.
//! 2. [`optimize`]: the pass simplifies every index expression of the scheduled
//!    function before C or OpenCL is generated.
//!
//! Limits are node and iteration counts only (the time limit is set far out of
//! reach), so the result is the same on every machine and a trace replayed on a phone
//! compiles to the same code. Every candidate's outputs are then compared with the
//! reference interpreter, as for every other transformation.

use crate::space::SearchSpace;
use schedule::Schedule;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;
use tir::egraph::bcr_choice::{bcr_choices, BcrChoice};
use tir::egraph::pass::{simplify_function, Limits, PassError};
use tir::egraph::rules::RuleSet;
use tir::workload::Workload;
use tir::{Function, ParamKind, Tensor};

/// The shipped rules, loaded once (`None` if they do not load, which the test suite
/// rules out).
pub fn shipped_rules() -> Option<&'static RuleSet> {
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
    match shipped_rules() {
        Some(r) => simplify_function(f, r, &limits())
            .map(|(g, _)| g)
            .unwrap_or_else(|_| f.clone()),
        None => f.clone(),
    }
}

/// Why the pipeline's default schedule could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The e-graph pass failed (a rule that does not compile, index overflow).
    #[error("e-graph pass: {0}")]
    Pass(#[from] PassError),
    /// The workload cannot be scheduled.
    #[error("schedule: {0}")]
    Schedule(#[from] schedule::ScheduleError),
    /// The interpreter failed on the scheduled or the lowered function.
    #[error("interpreter check of the default schedule: {0}")]
    Interp(#[from] tir::interp::InterpError),
    /// The scheduled function computes other outputs than the lowered one.
    #[error("the default schedule ({schedule}) computes different outputs than the lowered function: max relative difference {rel:e}")]
    Mismatch {
        /// The schedule's description.
        schedule: String,
        /// The largest relative difference seen.
        rel: f64,
    },
}

/// The pipeline's default schedule of a workload and how it was chosen.
#[derive(Debug, Clone)]
pub struct DefaultSchedule {
    /// The schedule (its trace has the BCR instructions the e-graph chose).
    pub schedule: Schedule,
    /// The e-graph's choice for each BCR weight.
    pub choices: Vec<BcrChoice>,
    /// The knob choices applied (`default` when none).
    pub description: String,
    /// Largest relative difference from the lowered function in the interpreter
    /// (random inputs, seed 1); at most [`CHECK_TOLERANCE`].
    pub max_rel_diff: f64,
}

/// Largest relative difference accepted between the default schedule and the lowered
/// function in the interpreter (row reordering by block column and load-redundancy
/// elimination keep every sum in the same order, so it is 0 in practice).
pub const CHECK_TOLERANCE: f64 = 1e-5;

/// The default schedule of `w` under `rules` (see the module docs): the e-graph's
/// BCR choices applied through the search space's knobs, checked in the interpreter
/// against the lowered function. Workloads without BCR weights get the lowered
/// function as is. A knob the schedule refuses is left "as is" (the description says
/// what was applied).
pub fn default_schedule(w: &Workload, rules: &RuleSet) -> Result<DefaultSchedule, PipelineError> {
    let choices = bcr_choices(w, rules, &limits())?;
    let space = SearchSpace::new(w);
    let point = space.egraph_point(&choices);
    let (schedule, effective) = space.apply(w, &point)?;
    let description = space.describe(&effective);
    let inputs = w.random_inputs(1);
    let want = w.interpret(&inputs)?;
    let got = interpret_scheduled(&schedule, &inputs)?;
    let rel = codegen::run::max_error(&got, &want)
        .map(|(_, rel)| rel)
        .unwrap_or(f64::INFINITY);
    if rel.is_nan() || rel > CHECK_TOLERANCE {
        return Err(PipelineError::Mismatch {
            schedule: description,
            rel,
        });
    }
    Ok(DefaultSchedule {
        schedule,
        choices,
        description,
        max_rel_diff: rel,
    })
}

/// Runs a schedule's function with its (possibly re-laid-out) weights in the
/// interpreter; returns the outputs.
pub fn interpret_scheduled(
    s: &Schedule,
    inputs: &BTreeMap<String, Tensor>,
) -> Result<BTreeMap<String, Tensor>, tir::interp::InterpError> {
    interpret_with(s.func(), s.weights(), inputs)
}

/// Runs `func` with `weights` and `inputs` (outputs start at zero) in the
/// interpreter; returns the outputs.
pub fn interpret_with(
    func: &Function,
    weights: &BTreeMap<String, Tensor>,
    inputs: &BTreeMap<String, Tensor>,
) -> Result<BTreeMap<String, Tensor>, tir::interp::InterpError> {
    let mut args = inputs.clone();
    args.extend(weights.iter().map(|(k, v)| (k.clone(), v.clone())));
    for p in func.params.iter().filter(|p| p.kind == ParamKind::Output) {
        args.insert(p.name.clone(), Tensor::zeros(p.dtype, p.shape.clone()));
    }
    tir::interp::run(func, &mut args)?;
    Ok(args
        .into_iter()
        .filter(|(k, _)| func.param(k).is_some_and(|p| p.kind == ParamKind::Output))
        .collect())
}

/// Lines describing the e-graph's choice per weight (for `build`, `check`, `tune`).
pub fn choices_text(d: &DefaultSchedule) -> String {
    let mut out = String::new();
    for c in &d.choices {
        out.push_str(&format!("bcr form  {c}\n"));
        if crate::space_bcr::window_input(c) && c.load_redundancy_elimination() {
            out.push_str(
                "          (not applied: a conv reads its input windows in place; sharing them \
                 would copy every window, so load-redundancy elimination is left to the tuner)\n",
            );
        }
        if c.limit_hits > 0 || c.unread_classes > 0 {
            out.push_str(&format!(
                "          ({} of {} column classes stopped on a limit, {} not read)\n",
                c.limit_hits, c.classes, c.unread_classes
            ));
        }
    }
    out.push_str(&format!(
        "schedule  {} (interpreter check: max relative difference {:.1e})\n",
        d.description, d.max_rel_diff
    ));
    out
}

/// The rule set a command runs with: the shipped rules, without the rules named in
/// `drop`, plus the rules of each file in `extra`.
pub fn load_rules(
    extra: &[std::path::PathBuf],
    drop: &[String],
) -> Result<RuleSet, tir::egraph::rules::RuleError> {
    let names: Vec<&str> = drop.iter().map(String::as_str).collect();
    let mut set = RuleSet::shipped()?.without(&names)?;
    for p in extra {
        set.extend(RuleSet::load(p)?)?;
    }
    Ok(set)
}
