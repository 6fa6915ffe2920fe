//! Loop kinds: unroll, vectorize, parallel, and binding to GPU thread axes.

use crate::analysis::check_independent;
use crate::error::ScheduleError;
use crate::loops::{const_int, parts, replace_loop};
use tir::visit::for_each_stmt;
use tir::{ForKind, Function, Stmt};

/// Largest extent `unroll` accepts: code generators expand the loop fully.
pub const MAX_UNROLL: i64 = 256;

/// Largest extent `vectorize` accepts.
pub const MAX_VECTOR: i64 = 64;

fn set_kind(
    func: &mut Function,
    name: &str,
    primitive: &'static str,
    kind: ForKind,
    check: &dyn Fn(&Stmt) -> Result<(), String>,
) -> Result<(), ScheduleError> {
    let body = replace_loop(&func.body, name, primitive, &mut |s| {
        let l = parts(s).ok_or_else(|| ScheduleError::illegal(primitive, name, "not a loop"))?;
        if l.kind != ForKind::Serial {
            return Err(ScheduleError::illegal(
                primitive,
                name,
                format!("loop is already {}", l.kind.name()),
            ));
        }
        check(s).map_err(|r| ScheduleError::illegal(primitive, name, r))?;
        Ok(Stmt::for_(
            l.var,
            l.min.clone(),
            l.extent.clone(),
            kind,
            l.body.clone(),
        ))
    })?;
    func.body = body;
    Ok(())
}

fn constant_extent(s: &Stmt, max: i64) -> Result<i64, String> {
    let l = parts(s).ok_or("not a loop")?;
    match const_int(l.extent) {
        Some(e) if e > 0 && e <= max => Ok(e),
        Some(e) => Err(format!("extent {e} is outside 1..={max}")),
        None => Err("extent is not a constant".into()),
    }
}

fn contains_loop(body: &Stmt) -> bool {
    let mut found = false;
    for_each_stmt(body, &mut |s| found |= matches!(s, Stmt::For { .. }));
    found
}

/// Marks loop `name` to be fully unrolled by code generators. Unrolling never changes
/// the order of iterations, so it is always legal for a serial loop with a constant
/// extent of at most [`MAX_UNROLL`].
///
/// Errors: no such loop; extent not a constant in `1..=MAX_UNROLL`; loop not serial.
pub fn unroll(func: &mut Function, name: &str) -> Result<(), ScheduleError> {
    set_kind(func, name, "unroll", ForKind::Unrolled, &|s| {
        constant_extent(s, MAX_UNROLL).map(|_| ())
    })
}

/// Maps loop `name` onto SIMD lanes (its extent is the vector width; split first to
/// choose the width).
///
/// Errors: no such loop; extent not a constant in `1..=MAX_VECTOR`; the loop contains
/// another loop (only innermost loops vectorize); its iterations are not independent
/// (a reduction, or a store not partitioned by the loop variable); loop not serial.
pub fn vectorize(func: &mut Function, name: &str) -> Result<(), ScheduleError> {
    set_kind(func, name, "vectorize", ForKind::Vectorized, &|s| {
        constant_extent(s, MAX_VECTOR)?;
        let l = parts(s).ok_or("not a loop")?;
        if contains_loop(l.body) {
            return Err("only innermost loops can be vectorized".into());
        }
        check_independent(l.var, l.body)
    })
}

/// Runs the iterations of loop `name` on several threads.
///
/// Errors: no such loop; its iterations are not independent (for instance a reduction
/// loop made parallel); loop not serial; loop nested in another parallel loop.
pub fn parallel(func: &mut Function, name: &str) -> Result<(), ScheduleError> {
    let nested = enclosing_kinds(&func.body, name)
        .into_iter()
        .any(|k| k == ForKind::Parallel);
    if nested {
        return Err(ScheduleError::illegal(
            "parallel",
            name,
            "an enclosing loop is already parallel (nested parallelism is not supported)",
        ));
    }
    set_kind(func, name, "parallel", ForKind::Parallel, &|s| {
        let l = parts(s).ok_or("not a loop")?;
        check_independent(l.var, l.body)
    })
}

/// Binds loop `name` to a GPU axis (`kind` is one of the `Block*`/`Thread*` kinds):
/// each iteration runs on its own work-group or work-item.
///
/// Errors: `kind` is not a thread binding; no such loop; iterations not independent;
/// the axis is already bound by an enclosing loop; loop not serial.
pub fn bind(func: &mut Function, name: &str, kind: ForKind) -> Result<(), ScheduleError> {
    if !kind.is_thread_binding() {
        return Err(ScheduleError::illegal(
            "bind",
            name,
            format!(
                "`{}` is not a GPU axis (block_x..z, thread_x..z)",
                kind.name()
            ),
        ));
    }
    if enclosing_kinds(&func.body, name).contains(&kind) {
        return Err(ScheduleError::illegal(
            "bind",
            name,
            format!("axis {} is already bound by an enclosing loop", kind.name()),
        ));
    }
    set_kind(func, name, "bind", kind, &|s| {
        let l = parts(s).ok_or("not a loop")?;
        check_independent(l.var, l.body)
    })
}

/// The kinds of the loops enclosing loop `name` (outermost first).
fn enclosing_kinds(s: &Stmt, name: &str) -> Vec<ForKind> {
    fn walk(s: &Stmt, name: &str, stack: &mut Vec<ForKind>) -> Option<Vec<ForKind>> {
        match s {
            Stmt::For {
                var, kind, body, ..
            } => {
                if var == name {
                    return Some(stack.clone());
                }
                stack.push(*kind);
                let r = walk(body, name, stack);
                stack.pop();
                r
            }
            Stmt::Seq(items) => items.iter().find_map(|i| walk(i, name, stack)),
            Stmt::Let { body, .. } | Stmt::Allocate { body, .. } => walk(body, name, stack),
            Stmt::If {
                then, otherwise, ..
            } => walk(then, name, stack)
                .or_else(|| otherwise.as_ref().and_then(|o| walk(o, name, stack))),
            Stmt::Store { .. } | Stmt::Prefetch { .. } => None,
        }
    }
    walk(s, name, &mut Vec::new()).unwrap_or_default()
}
