//! The e-graph layer: tir expressions in [`egg`], rewrite rules loaded from text
//! files, a soundness checker, and saturation with cost-based extraction as a
//! compile pass.
//!
//! - [`lang`]: the [`TirLang`](lang::TirLang) language (index/value and tensor level);
//! - [`analysis`]: e-class facts (intervals, constants, shapes) for constant folding,
//!   rule conditions and costs;
//! - [`rules`]: the rule-file format and [`RuleSet`](rules::RuleSet) (shipped rules in
//!   `tir/rules/*.rules`, embedded in the binary);
//! - [`eval`]: reference semantics of both levels;
//! - [`check`]: the soundness checker (both sides on >= 1000 random bindings);
//! - [`cost`]: the cost model used by extraction;
//! - [`pass`]: the compile pass (simplify every index expression of a function) and
//!   the BCR compute-form selection for a workload;
//! - [`bcr_choice`]: the BCR schedule decisions (load-redundancy elimination, row
//!   reordering) read off the extracted compute form, for the compile pipeline.

pub mod analysis;
pub mod bcr_choice;
pub mod check;
pub mod cost;
pub mod eval;
pub mod lang;
pub mod pass;
pub mod rules;
