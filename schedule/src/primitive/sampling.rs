//! Sampling instructions: the decisions a tuner explores.

use crate::error::ScheduleError;
use crate::loops::{const_int, find_loop, parts};
use tir::rng::SplitMix64;
use tir::Function;

/// The constant extent of loop `name`.
fn extent_of(func: &Function, name: &str, p: &'static str) -> Result<i64, ScheduleError> {
    let l = find_loop(&func.body, name).ok_or_else(|| ScheduleError::NoSuchLoop {
        primitive: p,
        loop_name: name.to_string(),
    })?;
    parts(l)
        .and_then(|l| const_int(l.extent))
        .filter(|e| *e > 0)
        .ok_or_else(|| ScheduleError::illegal(p, name, "extent is not a positive constant"))
}

/// Draws `n` factors of the extent of loop `name` (product = extent, innermost at most
/// `max_innermost`), uniformly among divisors at each step from the innermost out.
pub fn sample_perfect_tile(
    func: &Function,
    name: &str,
    n: usize,
    max_innermost: i64,
    rng: &mut SplitMix64,
) -> Result<Vec<i64>, ScheduleError> {
    const P: &str = "sample_perfect_tile";
    if n == 0 {
        return Err(ScheduleError::illegal(P, name, "n must be at least 1"));
    }
    if max_innermost < 1 {
        return Err(ScheduleError::illegal(
            P,
            name,
            "max_innermost must be at least 1",
        ));
    }
    let mut rest = extent_of(func, name, P)?;
    let mut out = vec![1i64; n];
    for k in (1..n).rev() {
        let limit = if k == n - 1 { max_innermost } else { rest };
        let divisors: Vec<i64> = (1..=rest.min(limit)).filter(|d| rest % d == 0).collect();
        let pick = divisors[(rng.next_u64() % divisors.len() as u64) as usize];
        out[k] = pick;
        rest /= pick;
    }
    out[0] = rest;
    if n == 1 && rest > max_innermost {
        return Err(ScheduleError::illegal(
            P,
            name,
            format!("a single factor {rest} exceeds max_innermost {max_innermost}"),
        ));
    }
    Ok(out)
}

/// Checks a recorded perfect-tile decision against the loop.
pub fn validate_perfect_tile(
    func: &Function,
    name: &str,
    n: usize,
    max_innermost: i64,
    decision: &[i64],
) -> Result<(), ScheduleError> {
    const P: &str = "sample_perfect_tile";
    let extent = extent_of(func, name, P)?;
    if decision.len() != n {
        return Err(ScheduleError::illegal(
            P,
            name,
            format!("decision has {} factors, expected {n}", decision.len()),
        ));
    }
    if decision.iter().any(|f| *f < 1) {
        return Err(ScheduleError::illegal(
            P,
            name,
            format!("decision {decision:?} has a factor below 1"),
        ));
    }
    let product = decision.iter().try_fold(1i64, |a, f| a.checked_mul(*f));
    if product != Some(extent) {
        return Err(ScheduleError::illegal(
            P,
            name,
            format!("decision {decision:?} does not multiply to the extent {extent}"),
        ));
    }
    if decision.last().is_some_and(|f| *f > max_innermost) {
        return Err(ScheduleError::illegal(
            P,
            name,
            format!("innermost factor of {decision:?} exceeds max_innermost {max_innermost}"),
        ));
    }
    Ok(())
}

/// Checks candidates and probabilities; returns the cumulative distribution.
fn check_categorical(candidates: &[i64], probs: &[f64]) -> Result<Vec<f64>, ScheduleError> {
    const P: &str = "sample_categorical";
    if candidates.is_empty() || candidates.len() != probs.len() {
        return Err(ScheduleError::illegal(
            P,
            "-",
            format!(
                "{} candidates with {} probabilities",
                candidates.len(),
                probs.len()
            ),
        ));
    }
    if probs.iter().any(|p| !p.is_finite() || *p < 0.0) || probs.iter().sum::<f64>() <= 0.0 {
        return Err(ScheduleError::illegal(
            P,
            "-",
            "probabilities must be finite, non-negative and not all zero",
        ));
    }
    let total: f64 = probs.iter().sum();
    let mut acc = 0.0;
    Ok(probs
        .iter()
        .map(|p| {
            acc += p / total;
            acc
        })
        .collect())
}

/// Draws an index into `candidates` with probabilities `probs`.
pub fn sample_categorical(
    candidates: &[i64],
    probs: &[f64],
    rng: &mut SplitMix64,
) -> Result<usize, ScheduleError> {
    let cdf = check_categorical(candidates, probs)?;
    let u = rng.next_unit_f32() as f64;
    Ok(cdf.iter().position(|c| u < *c).unwrap_or(cdf.len() - 1))
}

/// Checks a recorded categorical decision.
pub fn validate_categorical(
    candidates: &[i64],
    probs: &[f64],
    decision: usize,
) -> Result<(), ScheduleError> {
    check_categorical(candidates, probs)?;
    if decision >= candidates.len() || probs[decision] == 0.0 {
        return Err(ScheduleError::illegal(
            "sample_categorical",
            "-",
            format!("decision {decision} is not a candidate with non-zero probability"),
        ));
    }
    Ok(())
}
