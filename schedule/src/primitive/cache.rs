//! Cache read and cache write: stage the region of a buffer that one iteration of a
//! loop touches in a local buffer (registers, or GPU shared memory).
//!
//! The region is found by [`crate::region`]: every index of the buffer inside the
//! loop body must be affine in the body's loops (constant bounds) plus an offset of
//! variables bound outside (the same offset for every access in that position); the
//! local copy is indexed relative to `offset + lo`. Copies between the buffer and
//! the local buffer are guarded against the buffer's shape whenever the region can
//! leave it (a guarded split tail, padding), so they never access out of bounds.

use crate::error::ScheduleError;
use crate::loops::{add, find_loop, fresh_name, parts, replace_loop};
use crate::region::{
    affine_index, buffer_shape, region, rewrite_accesses, Dim, LoopBounds, Region,
};
use tir::visit::{bound_names, for_each_stmt};
use tir::{DType, Expr, Function, MemScope, Stmt};

/// The loops enclosing the loop `name` (outermost first) with `(min, extent)` when
/// both are constant.
pub(crate) fn enclosing_loops(s: &Stmt, name: &str) -> Option<LoopBounds> {
    fn go(s: &Stmt, name: &str, path: &mut LoopBounds) -> bool {
        match s {
            Stmt::For { var, .. } if var == name => true,
            Stmt::For {
                var,
                min,
                extent,
                body,
                ..
            } => {
                let b = match (min, extent) {
                    (Expr::Int(a), Expr::Int(e)) => Some((*a, *e)),
                    _ => None,
                };
                path.push((var.clone(), b));
                if go(body, name, path) {
                    return true;
                }
                path.pop();
                false
            }
            Stmt::Seq(items) => items.iter().any(|i| go(i, name, path)),
            Stmt::Let { body, .. } | Stmt::Allocate { body, .. } => go(body, name, path),
            Stmt::If {
                then, otherwise, ..
            } => go(then, name, path) || otherwise.as_ref().is_some_and(|o| go(o, name, path)),
            Stmt::Store { .. } | Stmt::Prefetch { .. } => false,
        }
    }
    let mut path = Vec::new();
    go(s, name, &mut path).then_some(path)
}

/// Every buffer name of `func` (parameters and allocations).
pub(crate) fn buffer_names(func: &Function) -> Vec<String> {
    let mut out: Vec<String> = func.params.iter().map(|p| p.name.clone()).collect();
    for_each_stmt(&func.body, &mut |s| {
        if let Stmt::Allocate { name, .. } = s {
            out.push(name.clone());
        }
    });
    out
}

/// The range `[lo, hi]` of `base` over the enclosing loops, when it is affine in them.
fn base_range(base: &Expr, outer: &[(String, Option<(i64, i64)>)]) -> Option<(i64, i64)> {
    let names: Vec<String> = outer.iter().map(|o| o.0.clone()).collect();
    let f = affine_index(base, &names)?;
    if !f.offset.is_empty() {
        return None;
    }
    let (mut lo, mut hi) = (f.constant, f.constant);
    for (v, a) in &f.coefs {
        let (min, ext) = outer.iter().find(|o| &o.0 == v)?.1?;
        if ext <= 0 {
            return None;
        }
        let (x, y) = (
            a.saturating_mul(min),
            a.saturating_mul(min.saturating_add(ext - 1)),
        );
        lo = lo.saturating_add(x.min(y));
        hi = hi.saturating_add(x.max(y));
    }
    Some((lo, hi))
}

/// A nest of loops `ax_d in [0, extent_d)` around `f(buffer indices, local indices)`,
/// guarded so that the buffer index stays inside `shape`.
fn copy_nest(
    dims: &[Dim],
    shape: &[usize],
    outer: &[(String, Option<(i64, i64)>)],
    axes: &[String],
    f: &dyn Fn(Vec<Expr>, Vec<Expr>) -> Stmt,
) -> Stmt {
    let global: Vec<Expr> = dims
        .iter()
        .zip(axes)
        .map(|(d, a)| offset_by(Expr::var(a), d.base()))
        .collect();
    let local: Vec<Expr> = axes.iter().map(Expr::var).collect();
    let mut cond: Option<Expr> = None;
    for ((d, g), size) in dims.iter().zip(&global).zip(shape) {
        let size = *size as i64;
        let (need_lo, need_hi) = match base_range(&d.base(), outer) {
            Some((lo, hi)) => (lo < 0, hi + d.extent() > size),
            None => (true, true),
        };
        let mut add_cond = |c: Expr| {
            cond = Some(match cond.take() {
                Some(x) => x.and(c),
                None => c,
            })
        };
        if need_lo {
            add_cond(g.clone().ge(Expr::Int(0)));
        }
        if need_hi {
            add_cond(g.clone().lt(Expr::Int(size)));
        }
    }
    let mut body = f(global, local);
    if let Some(c) = cond {
        body = Stmt::if_(c, body);
    }
    for (d, a) in dims.iter().zip(axes).rev() {
        body = Stmt::serial(a, Expr::Int(d.extent()), body);
    }
    body
}

/// The relative index of `idx` in position `d` of the region.
fn relative(idx: &Expr, dim: &Dim, inner: &[String]) -> Expr {
    match affine_index(idx, inner) {
        Some(f) if f.offset_key() == dim.offset.offset_key() => f.relative_expr(-dim.lo),
        _ => offset_by(idx.clone(), Expr::Int(0) - dim.base()),
    }
}

/// `e + by`, folding constants and writing `e - c` for a negative constant.
fn offset_by(e: Expr, by: Expr) -> Expr {
    let by = match by {
        Expr::Binary(tir::BinOp::Sub, a, b) if matches!(*a, Expr::Int(0)) => match *b {
            Expr::Int(c) => Expr::Int(-c),
            other => return e - other,
        },
        other => other,
    };
    match by {
        Expr::Int(c) if c < 0 => e - Expr::Int(-c),
        other => add(other, e),
    }
}

struct Prepared {
    region: Region,
    local: String,
    shape: Vec<usize>,
    local_shape: Vec<usize>,
    outer: Vec<(String, Option<(i64, i64)>)>,
    axes: Vec<String>,
    inner: Vec<String>,
}

fn prepare(
    func: &Function,
    primitive: &'static str,
    loop_name: &str,
    buffer: &str,
    body: &Stmt,
) -> Result<Prepared, ScheduleError> {
    let err = |r: String| ScheduleError::illegal(primitive, loop_name, r);
    let shape =
        buffer_shape(func, buffer).ok_or_else(|| err(format!("no buffer named `{buffer}`")))?;
    let region = region(body, buffer)
        .map_err(err)?
        .ok_or_else(|| err(format!("the loop body does not access `{buffer}`")))?;
    let mut local_shape = Vec::new();
    for d in &region.dims {
        let e = usize::try_from(d.extent())
            .map_err(|_| err(format!("the region of `{buffer}` is empty")))?;
        local_shape.push(e);
    }
    let outer =
        enclosing_loops(&func.body, loop_name).ok_or_else(|| ScheduleError::NoSuchLoop {
            primitive,
            loop_name: loop_name.to_string(),
        })?;
    let mut outer = outer;
    if let Some(l) = find_loop(&func.body, loop_name).and_then(parts) {
        let b = match (l.min, l.extent) {
            (Expr::Int(a), Expr::Int(e)) => Some((*a, *e)),
            _ => None,
        };
        outer.push((loop_name.to_string(), b));
    }
    let taken_buffers = buffer_names(func);
    let local = fresh_name(&format!("{buffer}_local"), &taken_buffers);
    let taken = bound_names(&func.body);
    let axes = (0..shape.len())
        .map(|d| fresh_name(&format!("{local}_ax{d}"), &taken))
        .collect();
    let inner = region.loops.keys().cloned().collect();
    Ok(Prepared {
        region,
        local,
        shape,
        local_shape,
        outer,
        axes,
        inner,
    })
}

fn rewrite_to_local(body: &Stmt, buffer: &str, p: &Prepared) -> Stmt {
    let dims = p.region.dims.clone();
    let inner = p.inner.clone();
    let local = p.local.clone();
    rewrite_accesses(body, buffer, &move |idx| {
        let new = idx
            .iter()
            .zip(&dims)
            .map(|(i, d)| relative(i, d, &inner))
            .collect();
        (local.clone(), new)
    })
}

fn dtype_of(func: &Function, buffer: &str) -> DType {
    if let Some(p) = func.param(buffer) {
        return p.dtype;
    }
    let mut out = DType::F32;
    for_each_stmt(&func.body, &mut |s| {
        if let Stmt::Allocate { name, dtype, .. } = s {
            if name == buffer {
                out = *dtype;
            }
        }
    });
    out
}

/// Cache read: at the top of loop `loop_name`'s body, copies the region of `buffer`
/// that one iteration reads into a new buffer `alloc {buffer}_local: T[...] scope`,
/// and makes the body read the copy. Returns the new buffer's name.
///
/// The copy nest's loops are named `{buffer}_local_ax{d}`; the copy is indexed
/// relative to the region's first element, and guarded by the buffer's shape where
/// the region may leave it (elements outside are never read by the body, whose own
/// accesses were in bounds).
///
/// Errors: no such loop or buffer; the body writes `buffer` (use
/// [`cache_write`]); the body does not read it; an index is not affine in the
/// body's loops (an indirect BCR gather such as `X[col, n]`, a let bound inside the
/// body, a product of loop variables) or uses a loop with non-constant bounds;
/// accesses disagree on the offset of a position.
pub fn cache_read(
    func: &mut Function,
    loop_name: &str,
    buffer: &str,
    scope: MemScope,
) -> Result<String, ScheduleError> {
    const P: &str = "cache_read";
    let l = find_loop(&func.body, loop_name).ok_or_else(|| ScheduleError::NoSuchLoop {
        primitive: P,
        loop_name: loop_name.to_string(),
    })?;
    let body = parts(l)
        .map(|p| p.body.clone())
        .ok_or_else(|| ScheduleError::illegal(P, loop_name, "not a loop"))?;
    if crate::region::writes(&body, buffer) {
        return Err(ScheduleError::illegal(
            P,
            loop_name,
            format!("buffer `{buffer}` is written inside the loop, so a read-only copy would go stale; use cache_write"),
        ));
    }
    let p = prepare(func, P, loop_name, buffer, &body)?;
    let dtype = dtype_of(func, buffer);
    let copy = copy_nest(&p.region.dims, &p.shape, &p.outer, &p.axes, &|g, l| {
        Stmt::store(&p.local, l, Expr::load(buffer, g))
    });
    let new_body = Stmt::Allocate {
        name: p.local.clone(),
        dtype,
        shape: p.local_shape.clone(),
        scope,
        body: Box::new(Stmt::Seq(vec![copy, rewrite_to_local(&body, buffer, &p)])),
    };
    func.body = replace_loop(&func.body, loop_name, P, &mut |s| {
        let l = parts(s).ok_or_else(|| ScheduleError::illegal(P, loop_name, "not a loop"))?;
        Ok(Stmt::for_(
            l.var,
            l.min.clone(),
            l.extent.clone(),
            l.kind,
            new_body.clone(),
        ))
    })?;
    Ok(p.local)
}

/// True when the single unguarded store covers the region exactly: every position
/// is `v + c` over a distinct loop variable, and every loop in the body has constant,
/// positive bounds (so every element of the box is written).
fn store_covers_region(p: &Prepared) -> bool {
    let forms = &p.region.forms;
    if forms.len() != 1 || !forms[0].0.is_store || forms[0].0.guarded {
        return false;
    }
    if p.region
        .loops
        .values()
        .any(|b| !matches!(b, Some((_, e)) if *e > 0))
    {
        return false;
    }
    let mut seen: Vec<&String> = Vec::new();
    for f in &forms[0].1 {
        match f.coefs.iter().next() {
            Some((v, 1)) if f.coefs.len() == 1 && !seen.contains(&v) => seen.push(v),
            None => {}
            _ => return false,
        }
    }
    true
}

/// Cache write: makes loop `loop_name`'s body accumulate its writes (and reads) of
/// `buffer` in a new buffer `alloc {buffer}_local: T[...] scope` and writes the region
/// back to `buffer` at the end of the body. Returns the new buffer's name.
///
/// The region is first copied in from `buffer` unless the body does not read it and
/// one unguarded store provably writes every element of the region (so the
/// write-back never stores a value the body did not compute). Copy-in and write-back
/// are guarded by the buffer's shape where the region may leave it.
///
/// Errors: no such loop or buffer; the body does not write `buffer`; an index is not
/// affine in the body's loops (e.g. the BCR scatter `Y[row, n]` with `row` bound
/// inside the loop) or uses a loop with non-constant bounds; accesses disagree on the
/// offset of a position.
pub fn cache_write(
    func: &mut Function,
    loop_name: &str,
    buffer: &str,
    scope: MemScope,
) -> Result<String, ScheduleError> {
    const P: &str = "cache_write";
    let l = find_loop(&func.body, loop_name).ok_or_else(|| ScheduleError::NoSuchLoop {
        primitive: P,
        loop_name: loop_name.to_string(),
    })?;
    let body = parts(l)
        .map(|p| p.body.clone())
        .ok_or_else(|| ScheduleError::illegal(P, loop_name, "not a loop"))?;
    if !crate::region::writes(&body, buffer) {
        return Err(ScheduleError::illegal(
            P,
            loop_name,
            format!("buffer `{buffer}` is not written inside the loop"),
        ));
    }
    let p = prepare(func, P, loop_name, buffer, &body)?;
    let dtype = dtype_of(func, buffer);
    let mut items = Vec::new();
    if !store_covers_region(&p) {
        items.push(copy_nest(
            &p.region.dims,
            &p.shape,
            &p.outer,
            &p.axes,
            &|g, l| Stmt::store(&p.local, l, Expr::load(buffer, g)),
        ));
    }
    items.push(rewrite_to_local(&body, buffer, &p));
    let taken = bound_names(&func.body);
    let out_axes: Vec<String> = p
        .axes
        .iter()
        .map(|a| fresh_name(&format!("{a}_out"), &taken))
        .collect();
    items.push(copy_nest(
        &p.region.dims,
        &p.shape,
        &p.outer,
        &out_axes,
        &|g, l| Stmt::store(buffer, g, Expr::load(&p.local, l)),
    ));
    let new_body = Stmt::Allocate {
        name: p.local.clone(),
        dtype,
        shape: p.local_shape.clone(),
        scope,
        body: Box::new(Stmt::Seq(items)),
    };
    func.body = replace_loop(&func.body, loop_name, P, &mut |s| {
        let l = parts(s).ok_or_else(|| ScheduleError::illegal(P, loop_name, "not a loop"))?;
        Ok(Stmt::for_(
            l.var,
            l.min.clone(),
            l.extent.clone(),
            l.kind,
            new_body.clone(),
        ))
    })?;
    Ok(p.local)
}
