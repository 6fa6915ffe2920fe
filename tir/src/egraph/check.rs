//! The soundness checker: every rule is executed on random bindings with the
//! reference semantics of [`eval`](super::eval), both sides compared.
//!
//! For each rule the checker draws bindings of its variables by their
//! [`Kind`]s (dimensions in `1..=5`, integers mostly small with some up to
//! `2^20` and frequent `0`/`1`/`-1`, floats of magnitude up to `2^10`, matrices in `[-1, 1)`), keeps
//! those that satisfy the condition, and needs [`CheckConfig::bindings`] of them
//! (default 1000). On each kept binding:
//! - both sides error: agree (for instance both divide by zero);
//! - one side errors and the other does not: **unsound**;
//! - both have values: they must be equal (ints, booleans, index vectors exactly;
//!   floats and matrices exactly, `-0.0 == 0.0`, unless the rule is `[approx]`, then
//!   within a relative tolerance of [`CheckConfig::rel_tol`]).
//!
//! When a rule is unsound, the smallest counterexample found among the bindings is
//! reported (small numbers and small tensors are easier to read).
//!
//! A rule whose condition is too rarely satisfiable, or whose left side never has a
//! value, is reported as vacuous (a failure too: it checks nothing).
//!
//! What the checker does *not* establish: integer soundness is up to `i64` overflow
//! (values are drawn below `2^20`, as index arithmetic never overflows in practice);
//! variables are bound to values, so a rule that drops a subterm (`x * 0 => 0`) may, in
//! a program, remove a run-time error of that subterm (grim accepts this refinement, as
//! TVM's simplifier does); and random testing is evidence, not proof (an SMT check as in
//! Cranelift's ISLE verifier would be the next step).

use super::eval::{eval_pattern, EvalError, Value};
use super::rules::{Kind, Rule, RuleSet};
use crate::rng::SplitMix64;
use egg::Var;
use std::collections::BTreeMap;
use std::fmt;

/// Checker settings.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// Bindings satisfying the condition to evaluate per rule (default 1000).
    pub bindings: usize,
    /// Most bindings drawn per rule before giving up (default 100 000).
    pub max_attempts: usize,
    /// Seed of the random bindings (default 1).
    pub seed: u64,
    /// Relative tolerance for `[approx]` rules (default 1e-4).
    pub rel_tol: f32,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            bindings: 1000,
            max_attempts: 100_000,
            seed: 1,
            rel_tol: 1e-4,
        }
    }
}

/// A binding on which the two sides of a rule disagree.
#[derive(Debug, Clone)]
pub struct Counterexample {
    /// Variable values.
    pub binding: Vec<(String, Value)>,
    /// Left side's result.
    pub lhs: Result<Value, EvalError>,
    /// Right side's result.
    pub rhs: Result<Value, EvalError>,
    /// Why they disagree.
    pub why: String,
}

/// The verdict on one rule.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Agreed on every binding.
    Sound {
        /// Bindings evaluated (satisfying the condition).
        bindings: usize,
        /// Of those, bindings where the left side had a value.
        defined: usize,
    },
    /// Disagreed on a binding.
    Unsound(Box<Counterexample>),
    /// Could not be checked: the condition is too rarely true, or the left side
    /// never has a value.
    Vacuous {
        /// What went wrong.
        why: String,
    },
}

/// The result of checking one rule.
#[derive(Debug, Clone)]
pub struct RuleCheck {
    /// Rule name.
    pub name: String,
    /// `file:line`.
    pub location: String,
    /// The rule as written.
    pub text: String,
    /// `[approx]`.
    pub approx: bool,
    /// Verdict.
    pub verdict: Verdict,
}

impl RuleCheck {
    /// True for [`Verdict::Sound`].
    pub fn is_sound(&self) -> bool {
        matches!(self.verdict, Verdict::Sound { .. })
    }
}

fn show(r: &Result<Value, EvalError>) -> String {
    match r {
        Ok(v) => v.to_string(),
        Err(e) => format!("error ({e})"),
    }
}

impl fmt::Display for RuleCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tol = if self.approx {
            " [approx: relative tolerance]"
        } else {
            ""
        };
        match &self.verdict {
            Verdict::Sound { bindings, defined } => write!(
                f,
                "ok       {} ({}): {bindings} bindings, {defined} defined{tol}",
                self.name, self.location
            ),
            Verdict::Vacuous { why } => write!(
                f,
                "VACUOUS  {} ({}): {why}\n         rule: {}",
                self.name, self.location, self.text
            ),
            Verdict::Unsound(c) => {
                let b: Vec<String> = c
                    .binding
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect();
                write!(
                    f,
                    "UNSOUND  {} ({}): {}\n         rule: {}\n         counterexample: {}\n         left:  {}\n         right: {}",
                    self.name,
                    self.location,
                    c.why,
                    self.text,
                    b.join(", "),
                    show(&c.lhs),
                    show(&c.rhs)
                )
            }
        }
    }
}

fn below(rng: &mut SplitMix64, n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        rng.next_u64() % n
    }
}

fn range(rng: &mut SplitMix64, lo: i64, hi: i64) -> i64 {
    lo + below(rng, (hi - lo + 1) as u64) as i64
}

fn draw_int(rng: &mut SplitMix64) -> i64 {
    match below(rng, 100) {
        0..=9 => [0, 1, -1, 2][below(rng, 4) as usize],
        10..=59 => range(rng, -8, 16),
        60..=89 => range(rng, -100, 100),
        _ => range(rng, -(1 << 20), 1 << 20),
    }
}

fn shuffled(rng: &mut SplitMix64, n: usize) -> Vec<i64> {
    let mut v: Vec<i64> = (0..n as i64).collect();
    for i in (1..n).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        v.swap(i, j);
    }
    v
}

/// Draws one binding of a rule's variables, or `None` when the dimension
/// constraints could not be met this time.
fn draw_binding(
    kinds: &BTreeMap<String, Kind>,
    rng: &mut SplitMix64,
) -> Option<BTreeMap<String, Value>> {
    let mut dims: BTreeMap<&str, usize> = BTreeMap::new();
    for k in kinds.values() {
        let names: Vec<&String> = match k {
            Kind::Mat(a, b) | Kind::Idx(a, b) | Kind::Distinct(a, b) => vec![a, b],
            Kind::Perm(a) | Kind::Dim(a) => vec![a],
            _ => vec![],
        };
        for n in names {
            if !dims.contains_key(n.as_str()) {
                dims.insert(n, 1 + below(rng, 5) as usize);
            }
        }
    }
    for k in kinds.values() {
        if let Kind::Distinct(a, m) = k {
            if dims[a.as_str()] > dims[m.as_str()] {
                let v = 1 + below(rng, dims[m.as_str()] as u64) as usize;
                dims.insert(a, v);
            }
        }
    }
    for k in kinds.values() {
        if let Kind::Distinct(a, m) = k {
            if dims[a.as_str()] > dims[m.as_str()] {
                return None;
            }
        }
    }
    let mut out = BTreeMap::new();
    for (v, k) in kinds {
        let val = match k {
            Kind::Int => Value::Int(draw_int(rng)),
            Kind::Bool => Value::Bool(below(rng, 2) == 1),
            Kind::F32 => {
                if below(rng, 10) == 0 {
                    Value::F32([0.0, -0.0, 1.0, -1.0][below(rng, 4) as usize])
                } else {
                    // Varied magnitudes, so that float sums round.
                    let scale = 2f32.powi(range(rng, -10, 10) as i32);
                    Value::F32(rng.next_symmetric_f32(1.0) * scale)
                }
            }
            Kind::Buf => Value::Buf(1 + below(rng, 3)),
            Kind::Mat(a, b) => {
                let (r, c) = (dims[a.as_str()], dims[b.as_str()]);
                Value::mat(r, c, rng.symmetric_vec(r * c, 1.0))
            }
            Kind::Idx(a, m) => {
                let (n, bound) = (dims[a.as_str()], dims[m.as_str()]);
                Value::Idx((0..n).map(|_| below(rng, bound as u64) as i64).collect())
            }
            Kind::Distinct(a, m) => {
                let mut p = shuffled(rng, dims[m.as_str()]);
                p.truncate(dims[a.as_str()]);
                Value::Idx(p)
            }
            Kind::Perm(m) => Value::Idx(shuffled(rng, dims[m.as_str()])),
            Kind::Dim(m) => Value::Int(dims[m.as_str()] as i64),
        };
        out.insert(v.clone(), val);
    }
    Some(out)
}

fn close(a: f32, b: f32, tol: f32) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    a == b || (a - b).abs() <= tol * 1f32.max(a.abs()).max(b.abs())
}

fn exact(a: f32, b: f32) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Compares two values; `Err` says how they differ.
fn agree(a: &Value, b: &Value, approx: bool, tol: f32) -> Result<(), String> {
    let feq = |x: f32, y: f32| {
        if approx {
            close(x, y, tol)
        } else {
            exact(x, y)
        }
    };
    let ok = match (a, b) {
        (Value::F32(x), Value::F32(y)) => {
            if !approx && !exact(*x, *y) && close(*x, *y, tol) {
                return Err("differs by rounding only: mark the rule [approx] if reassociating floats is intended".into());
            }
            feq(*x, *y)
        }
        (
            Value::Mat { rows, cols, data },
            Value::Mat {
                rows: r2,
                cols: c2,
                data: d2,
            },
        ) => {
            if (rows, cols) != (r2, c2) {
                return Err(format!("shapes differ: {rows}x{cols} vs {r2}x{c2}"));
            }
            let all_close = data.iter().zip(d2).all(|(x, y)| close(*x, *y, tol));
            let all_eq = data.iter().zip(d2).all(|(x, y)| feq(*x, *y));
            if !approx && !all_eq && all_close {
                return Err("differs by rounding only: mark the rule [approx] if reassociating floats is intended".into());
            }
            all_eq
        }
        _ => a == b,
    };
    if ok {
        Ok(())
    } else {
        Err("the two sides have different values".into())
    }
}

/// How big a binding is to read: magnitudes of numbers plus sizes of tensors.
fn binding_size(b: &BTreeMap<String, Value>) -> u64 {
    b.values()
        .map(|v| match v {
            Value::Int(i) => i.unsigned_abs(),
            Value::F32(f) => f.abs().min(1e9) as u64,
            Value::Bool(_) | Value::Buf(_) => 0,
            Value::Mat { rows, cols, .. } => 4 * (rows * cols) as u64,
            Value::Idx(ix) => 4 * ix.len() as u64,
        })
        .fold(0u64, u64::saturating_add)
}

fn rule_seed(seed: u64, name: &str) -> u64 {
    name.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Checks one rule.
pub fn check_rule(rule: &Rule, cfg: &CheckConfig) -> RuleCheck {
    let mut rng = SplitMix64::new(rule_seed(cfg.seed, &rule.name));
    let mut satisfied = 0usize;
    let mut defined = 0usize;
    let mut attempts = 0usize;
    let mut best: Option<(u64, Counterexample)> = None;
    let report = |verdict| RuleCheck {
        name: rule.name.clone(),
        location: rule.location(),
        text: rule.text.clone(),
        approx: rule.approx,
        verdict,
    };
    while satisfied < cfg.bindings && attempts < cfg.max_attempts {
        attempts += 1;
        let Some(b) = draw_binding(&rule.kinds, &mut rng) else {
            continue;
        };
        let lookup = |v: &Var| b.get(&v.to_string()).cloned();
        if let Some(c) = &rule.cond {
            match eval_pattern(c, &lookup) {
                Ok(Value::Bool(true)) => {}
                _ => continue,
            }
        }
        satisfied += 1;
        let lhs = eval_pattern(&rule.lhs, &lookup);
        let rhs = eval_pattern(&rule.rhs, &lookup);
        let why = match (&lhs, &rhs) {
            (Err(_), Err(_)) => None,
            (Ok(_), Err(_)) => {
                Some("the left side has a value but the right side errors".to_string())
            }
            (Err(_), Ok(_)) => {
                Some("the left side errors but the right side has a value".to_string())
            }
            (Ok(a), Ok(b)) => {
                defined += 1;
                agree(a, b, rule.approx, cfg.rel_tol).err()
            }
        };
        if let Some(why) = why {
            // Keep looking (within the binding budget) for the smallest counterexample.
            let size = binding_size(&b);
            if best.as_ref().is_none_or(|(s, _)| size < *s) {
                best = Some((
                    size,
                    Counterexample {
                        binding: b.into_iter().collect(),
                        lhs,
                        rhs,
                        why,
                    },
                ));
            }
        }
    }
    if let Some((_, c)) = best {
        return report(Verdict::Unsound(Box::new(c)));
    }
    if satisfied < cfg.bindings {
        return report(Verdict::Vacuous {
            why: format!(
                "only {satisfied} of {attempts} random bindings satisfy the condition (need {})",
                cfg.bindings
            ),
        });
    }
    if defined == 0 {
        return report(Verdict::Vacuous {
            why: format!("the left side errors on all {satisfied} bindings (check the kinds)"),
        });
    }
    report(Verdict::Sound {
        bindings: satisfied,
        defined,
    })
}

/// Checks every rule of a set, in order.
pub fn check_rules(set: &RuleSet, cfg: &CheckConfig) -> Vec<RuleCheck> {
    set.rules.iter().map(|r| check_rule(r, cfg)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_respect_kinds() {
        let mut kinds = BTreeMap::new();
        kinds.insert("?r".to_string(), Kind::Distinct("a".into(), "m".into()));
        kinds.insert("?p".to_string(), Kind::Perm("m".into()));
        kinds.insert("?W".to_string(), Kind::Mat("m".into(), "k".into()));
        let mut rng = SplitMix64::new(3);
        for _ in 0..200 {
            let b = draw_binding(&kinds, &mut rng).unwrap();
            let Value::Mat { rows, .. } = b["?W"] else {
                panic!()
            };
            let Value::Idx(p) = &b["?p"] else { panic!() };
            let mut s = p.clone();
            s.sort();
            assert_eq!(s, (0..rows as i64).collect::<Vec<_>>());
            let Value::Idx(r) = &b["?r"] else { panic!() };
            assert!(r.len() <= rows && r.iter().all(|&x| (x as usize) < rows));
        }
    }
}
