//! Finding and rewriting loops by name.

use crate::error::ScheduleError;
use tir::visit::for_each_stmt;
use tir::{Expr, Stmt};

/// The loop named `name` in `s`, if any.
pub fn find_loop<'s>(s: &'s Stmt, name: &str) -> Option<&'s Stmt> {
    let mut found = None;
    for_each_stmt(s, &mut |st| {
        if found.is_none() {
            if let Stmt::For { var, .. } = st {
                if var == name {
                    found = Some(st);
                }
            }
        }
    });
    found
}

/// Rebuilds `s` with the loop named `name` replaced by `f(loop)`. Errors with
/// [`ScheduleError::NoSuchLoop`] when there is none.
pub fn replace_loop(
    s: &Stmt,
    name: &str,
    primitive: &'static str,
    f: &mut dyn FnMut(&Stmt) -> Result<Stmt, ScheduleError>,
) -> Result<Stmt, ScheduleError> {
    let mut done = false;
    let out = rewrite(s, name, f, &mut done)?;
    if done {
        Ok(out)
    } else {
        Err(ScheduleError::NoSuchLoop {
            primitive,
            loop_name: name.to_string(),
        })
    }
}

fn rewrite(
    s: &Stmt,
    name: &str,
    f: &mut dyn FnMut(&Stmt) -> Result<Stmt, ScheduleError>,
    done: &mut bool,
) -> Result<Stmt, ScheduleError> {
    tir::visit::try_map_stmt(s, &mut |st| match st {
        Stmt::For { var, .. } if var == name && !*done => {
            *done = true;
            f(st).map(Some)
        }
        _ => Ok(None),
    })
}

/// The parts of a `for` statement; `None` for anything else.
pub struct LoopParts<'s> {
    /// Loop variable.
    pub var: &'s str,
    /// First value.
    pub min: &'s Expr,
    /// Iteration count.
    pub extent: &'s Expr,
    /// Kind.
    pub kind: tir::ForKind,
    /// Body.
    pub body: &'s Stmt,
}

/// Destructures a `for` statement.
pub fn parts(s: &Stmt) -> Option<LoopParts<'_>> {
    match s {
        Stmt::For {
            var,
            min,
            extent,
            kind,
            body,
        } => Some(LoopParts {
            var,
            min,
            extent,
            kind: *kind,
            body,
        }),
        _ => None,
    }
}

/// The constant value of `e`, when it is an integer literal.
pub fn const_int(e: &Expr) -> Option<i64> {
    match e {
        Expr::Int(v) => Some(*v),
        _ => None,
    }
}

/// A name based on `base` that is not in `taken`: `base`, else `base_1`, `base_2`, ...
pub fn fresh_name(base: &str, taken: &[String]) -> String {
    if !taken.iter().any(|t| t == base) {
        return base.to_string();
    }
    (1..)
        .map(|i| format!("{base}_{i}"))
        .find(|n| !taken.iter().any(|t| t == n))
        .unwrap_or_else(|| base.to_string())
}

/// Simplifies `a + b` and `a * b` when an operand is the constant 0 or 1, so that
/// schedules do not fill the IR with `+ 0` and `* 1`.
pub fn add(a: Expr, b: Expr) -> Expr {
    match (&a, &b) {
        (Expr::Int(0), _) => b,
        (_, Expr::Int(0)) => a,
        (Expr::Int(x), Expr::Int(y)) => match x.checked_add(*y) {
            Some(v) => Expr::Int(v),
            None => a + b,
        },
        _ => a + b,
    }
}

/// `a * b` with the trivial cases folded (see [`add`]).
pub fn mul(a: Expr, b: Expr) -> Expr {
    match (&a, &b) {
        (Expr::Int(1), _) => b,
        (_, Expr::Int(1)) => a,
        (Expr::Int(x), Expr::Int(y)) => match x.checked_mul(*y) {
            Some(v) => Expr::Int(v),
            None => a * b,
        },
        _ => a * b,
    }
}
