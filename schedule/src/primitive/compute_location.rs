//! Compute location: compute_at, compute_inline, and decompose_reduction (its
//! inverse for reduction inits).
//!
//! There are no TVM "blocks" in this IR. A *stage* is a top-level statement of the
//! function body's sequence (or of the sequence inside the body's `alloc`s): in
//! practice a loop nest writing one buffer, e.g. FC's `init_m`/`init_n` nest writing
//! `Y`. A *producer nest* is a stage made of perfectly nested loops with constant
//! bounds around one store `B[v₁ + c₁, ..., vᵣ + cᵣ] = value`, where each index
//! position is a distinct loop variable (plus a constant) and `value` does not read
//! `B` (not a reduction).

use crate::error::ScheduleError;
use crate::loops::{add, find_loop, fresh_name, parts, replace_loop};
use crate::primitive::cache::enclosing_loops;
use crate::region::{
    affine_index, collect, loaded_buffers, reads, region, replace_loads_stmt, writes,
    written_buffers, Dim,
};
use tir::visit::{bound_names, substitute_expr, substitute_stmt};
use tir::{Expr, ForKind, Function, ParamKind, Stmt};

/// A loop of a producer nest.
#[derive(Debug, Clone)]
struct NestLoop {
    var: String,
    min: i64,
    extent: i64,
    kind: ForKind,
}

/// A parsed producer nest.
#[derive(Debug, Clone)]
struct Producer {
    loops: Vec<NestLoop>,
    buffer: String,
    indices: Vec<Expr>,
    value: Expr,
    /// For each index position: the loop (index into `loops`) and the constant shift.
    map: Vec<(usize, i64)>,
}

/// Parses a producer nest (see the module docs).
fn producer(s: &Stmt) -> Result<Producer, String> {
    let mut loops = Vec::new();
    let mut cur = s;
    while let Some(l) = parts(cur) {
        match (l.min, l.extent) {
            (Expr::Int(min), Expr::Int(extent)) => loops.push(NestLoop {
                var: l.var.to_string(),
                min: *min,
                extent: *extent,
                kind: l.kind,
            }),
            _ => return Err(format!("loop `{}` does not have constant bounds", l.var)),
        }
        cur = l.body;
    }
    let Stmt::Store {
        buffer,
        indices,
        value,
    } = cur
    else {
        return Err("the stage is not a perfect loop nest around a single store".to_string());
    };
    if tir::visit::expr_loads_buffer(value, buffer) {
        return Err(format!(
            "the stage is a reduction (its value reads `{buffer}`)"
        ));
    }
    let names: Vec<String> = loops.iter().map(|l| l.var.clone()).collect();
    let mut map = Vec::new();
    for idx in indices {
        let f = affine_index(idx, &names).filter(|f| f.offset.is_empty());
        let one = f.as_ref().and_then(|f| {
            let mut it = f.coefs.iter();
            match (it.next(), it.next()) {
                (Some((v, 1)), None) => names.iter().position(|n| n == v).map(|p| (p, f.constant)),
                _ => None,
            }
        });
        match one {
            Some(m) if !map.iter().any(|(p, _)| *p == m.0) => map.push(m),
            _ => {
                return Err(format!(
                    "index `{}` of `{buffer}` is not one of the stage's loop variables (plus a constant) used once",
                    tir::print_expr(idx)
                ))
            }
        }
    }
    if map.len() != loops.len() {
        return Err(format!(
            "a loop of the stage does not index `{buffer}`, so it writes elements more than once"
        ));
    }
    Ok(Producer {
        loops,
        buffer: buffer.clone(),
        indices: indices.clone(),
        value: value.clone(),
        map,
    })
}

/// Rewrites a stage list.
type StageEdit<'a> = dyn FnMut(&[Stmt]) -> Result<Vec<Stmt>, ScheduleError> + 'a;

/// Coefficient, loop min and loop extent of each chain loop in an offset.
type ChainTerms = Vec<(i64, i64, i64)>;

/// A loop replayed by `decompose_reduction`: name, min, extent, constant bounds.
type ChainLoop = (String, Expr, Expr, Option<(i64, i64)>);

/// Calls `f` on the stage list of `body` (its top-level sequence, inside any
/// `alloc`s) and rebuilds the body with the list `f` returns.
fn with_stages(s: &Stmt, f: &mut StageEdit<'_>) -> Result<Stmt, ScheduleError> {
    Ok(match s {
        Stmt::Allocate {
            name,
            dtype,
            shape,
            scope,
            body,
        } => Stmt::Allocate {
            name: name.clone(),
            dtype: *dtype,
            shape: shape.clone(),
            scope: *scope,
            body: Box::new(with_stages(body, f)?),
        },
        Stmt::Seq(items) => Stmt::Seq(f(items)?),
        other => {
            let mut v = f(std::slice::from_ref(other))?;
            if v.len() == 1 {
                v.remove(0)
            } else {
                Stmt::Seq(v)
            }
        }
    })
}

fn is_stage_of(s: &Stmt, name: &str) -> bool {
    matches!(s, Stmt::For { var, .. } if var == name)
}

/// The error for a loop that is not the outermost loop of a stage.
fn not_a_stage(func: &Function, primitive: &'static str, name: &str) -> ScheduleError {
    if find_loop(&func.body, name).is_none() {
        ScheduleError::NoSuchLoop {
            primitive,
            loop_name: name.to_string(),
        }
    } else {
        ScheduleError::illegal(
            primitive,
            name,
            "not the outermost loop of a stage (a top-level statement of the function body)",
        )
    }
}

/// Flattens nested sequences.
fn flatten(s: Stmt) -> Stmt {
    match s {
        Stmt::Seq(items) => {
            let mut out = Vec::new();
            for i in items {
                match flatten(i) {
                    Stmt::Seq(inner) => out.extend(inner),
                    x => out.push(x),
                }
            }
            if out.len() == 1 {
                out.remove(0)
            } else {
                Stmt::Seq(out)
            }
        }
        Stmt::For {
            var,
            min,
            extent,
            kind,
            body,
        } => Stmt::For {
            var,
            min,
            extent,
            kind,
            body: Box::new(flatten(*body)),
        },
        Stmt::Let { var, value, body } => Stmt::Let {
            var,
            value,
            body: Box::new(flatten(*body)),
        },
        Stmt::If {
            cond,
            then,
            otherwise,
        } => Stmt::If {
            cond,
            then: Box::new(flatten(*then)),
            otherwise: otherwise.map(|o| Box::new(flatten(*o))),
        },
        Stmt::Allocate {
            name,
            dtype,
            shape,
            scope,
            body,
        } => Stmt::Allocate {
            name,
            dtype,
            shape,
            scope,
            body: Box::new(flatten(*body)),
        },
        st @ (Stmt::Store { .. } | Stmt::Prefetch { .. }) => st,
    }
}

/// The conditions of the `if`s on the path from `s` down to loop `name`, each with
/// whether the path takes its `else` branch.
fn conds_on_path(s: &Stmt, name: &str) -> Option<Vec<(Expr, bool)>> {
    match s {
        Stmt::For { var, .. } if var == name => Some(Vec::new()),
        Stmt::For { body, .. } | Stmt::Let { body, .. } | Stmt::Allocate { body, .. } => {
            conds_on_path(body, name)
        }
        Stmt::Seq(items) => items.iter().find_map(|i| conds_on_path(i, name)),
        Stmt::If {
            cond,
            then,
            otherwise,
        } => {
            if let Some(mut v) = conds_on_path(then, name) {
                v.insert(0, (cond.clone(), false));
                return Some(v);
            }
            let mut v = otherwise.as_ref().and_then(|o| conds_on_path(o, name))?;
            v.insert(0, (cond.clone(), true));
            Some(v)
        }
        Stmt::Store { .. } | Stmt::Prefetch { .. } => None,
    }
}

/// True when guard `cond` (taken on the `then` branch) only skips iterations whose
/// box lies beyond the producer's domain: `cond` is `A < C` with `A` affine in the
/// chain loops and equal, up to a constant, to the offset of some index position
/// whose skipped boxes start after the domain's last element (a split's guard).
fn guard_skips_only_outside(
    cond: &Expr,
    names: &[String],
    dims: &[Dim],
    domain_hi: &[i64],
) -> bool {
    let Expr::Binary(tir::BinOp::Lt, a, c) = cond else {
        return false;
    };
    let Expr::Int(c) = **c else {
        return false;
    };
    let Some(fa) = affine_index(a, names).filter(|f| f.offset.is_empty() && !f.coefs.is_empty())
    else {
        return false;
    };
    dims.iter().zip(domain_hi).any(|(dim, hi)| {
        affine_index(&dim.offset.offset_expr(), names)
            .filter(|fd| fd.offset.is_empty() && fd.coefs == fa.coefs)
            .is_some_and(|fd| {
                // Skipped: Σ >= c - fa.constant, so the box starts at or after this.
                let first = c
                    .saturating_sub(fa.constant)
                    .saturating_add(fd.constant)
                    .saturating_add(dim.lo);
                first > *hi
            })
    })
}

/// Per index position: the coefficients of the chain loops in the region's offset,
/// the constant part, and the chain's bounds. Errors when the offset mentions
/// anything else.
fn offset_over_chain(
    dim: &Dim,
    chain: &[(String, Option<(i64, i64)>)],
    buffer: &str,
    allow_residual: bool,
) -> Result<(ChainTerms, i64), String> {
    let names: Vec<String> = chain.iter().map(|c| c.0.clone()).collect();
    let off = dim.offset.offset_expr();
    let f = affine_index(&off, &names)
        .filter(|f| allow_residual || f.offset.is_empty())
        .ok_or_else(|| {
            format!(
                "the offset `{}` of `{buffer}` is not an affine function of the enclosing loops",
                tir::print_expr(&off)
            )
        })?;
    let mut terms = Vec::new();
    for (v, a) in &f.coefs {
        let Some((_, Some((min, ext)))) = chain.iter().find(|c| &c.0 == v) else {
            return Err(format!("loop `{v}` does not have constant bounds"));
        };
        terms.push((*a, *min, *ext));
    }
    Ok((terms, f.constant))
}

/// Moves the producer stage whose outermost loop is `stage_loop` to the top of the
/// body of loop `at_loop` (in a later stage, the consumer), restricted to the
/// elements of its buffer that one iteration of `at_loop` touches.
///
/// The producer must be a producer nest (module docs) writing buffer `B`. The
/// consumer's accesses of `B` must all lie inside `at_loop` and be affine (see
/// [`crate::region`]) with offsets affine in the loops from the consumer's root down
/// to `at_loop` (constant bounds, no `if` on the way). The producer's loops keep their
/// names; their bounds become the region's box (`for init_m in [m, m + 1)` when
/// computed at `n` in FC), with a guard where the box may leave the producer's domain.
///
/// Errors: `stage_loop` is not the outermost loop of a stage, or is not a producer
/// nest (a reduction, indices that are not its loop variables, non-constant bounds);
/// `at_loop` is not in a later stage; a stage in between touches `B` or writes a
/// buffer the producer reads, or the consumer writes one; the consumer accesses `B`
/// outside `at_loop` or non-affinely; the consumer writes `B` and two iterations of
/// the loops down to `at_loop` touch a common element (recomputing it would overwrite
/// the consumer's update, e.g. `compute_at(init_m, k)`); the consumer's iterations do
/// not touch every element the producer writes.
pub fn compute_at(
    func: &mut Function,
    stage_loop: &str,
    at_loop: &str,
) -> Result<(), ScheduleError> {
    const P: &str = "compute_at";
    let err = |r: String| ScheduleError::illegal(P, stage_loop, r);
    if find_loop(&func.body, at_loop).is_none() {
        return Err(ScheduleError::NoSuchLoop {
            primitive: P,
            loop_name: at_loop.to_string(),
        });
    }
    let mut found = false;
    let body = with_stages(&func.body, &mut |items| {
        let Some(i) = items.iter().position(|s| is_stage_of(s, stage_loop)) else {
            return Ok(items.to_vec());
        };
        found = true;
        let prod = producer(&items[i]).map_err(err)?;
        let b = prod.buffer.as_str();
        let j = items
            .iter()
            .position(|s| find_loop(s, at_loop).is_some())
            .filter(|j| *j > i)
            .ok_or_else(|| {
                err(format!(
                    "`{at_loop}` is not a loop of a later stage than `{stage_loop}`"
                ))
            })?;
        let reads_of_value = loaded_buffers(&prod.value);
        for mid in &items[i + 1..j] {
            if reads(mid, b) || writes(mid, b) {
                return Err(err(format!(
                    "a stage between the producer and the consumer touches `{b}`"
                )));
            }
            if let Some(w) = written_buffers(mid)
                .iter()
                .find(|w| reads_of_value.contains(w))
            {
                return Err(err(format!(
                    "a stage between the producer and the consumer writes `{w}`, which the producer reads"
                )));
            }
        }
        let consumer = &items[j];
        if let Some(w) = written_buffers(consumer)
            .iter()
            .find(|w| reads_of_value.contains(w))
        {
            return Err(err(format!(
                "the consumer writes `{w}`, which the producer reads"
            )));
        }
        let at = find_loop(consumer, at_loop)
            .and_then(parts)
            .ok_or_else(|| err(format!("no loop `{at_loop}`")))?;
        if collect(consumer, b).accesses.len() != collect(at.body, b).accesses.len() {
            return Err(err(format!(
                "the consumer accesses `{b}` outside loop `{at_loop}`"
            )));
        }
        let conds = conds_on_path(consumer, at_loop).unwrap_or_default();
        let reg = region(at.body, b)
            .map_err(err)?
            .ok_or_else(|| err(format!("loop `{at_loop}` does not access `{b}`")))?;
        let mut chain = enclosing_loops(consumer, at_loop).unwrap_or_default();
        chain.push((
            at_loop.to_string(),
            match (at.min, at.extent) {
                (Expr::Int(a), Expr::Int(e)) => Some((*a, *e)),
                _ => None,
            },
        ));
        let consumer_writes = writes(at.body, b);
        let mut per_dim = Vec::new();
        for dim in &reg.dims {
            per_dim.push(offset_over_chain(dim, &chain, b, false).map_err(err)?);
        }
        // Each chain loop in at most one position (the union of boxes is a product).
        let names: Vec<String> = chain.iter().map(|c| c.0.clone()).collect();
        for n in &names {
            let dims_using: Vec<usize> = reg
                .dims
                .iter()
                .enumerate()
                .filter(|(_, dim)| {
                    affine_index(&dim.offset.offset_expr(), &names)
                        .is_some_and(|f| f.coefs.contains_key(n))
                })
                .map(|(d, _)| d)
                .collect();
            if dims_using.len() > 1 {
                return Err(err(format!(
                    "loop `{n}` appears in several index positions of `{b}`"
                )));
            }
            let trivial = chain
                .iter()
                .any(|c| &c.0 == n && matches!(c.1, Some((_, 1))));
            if consumer_writes && dims_using.is_empty() && !trivial {
                return Err(err(format!(
                    "every iteration of `{n}` touches the same elements of `{b}`, which the consumer updates: recomputing them in each iteration would overwrite its results"
                )));
            }
        }
        let domain_hi: Vec<i64> = prod
            .map
            .iter()
            .map(|(li, shift)| {
                let pl = &prod.loops[*li];
                pl.min + shift + pl.extent - 1
            })
            .collect();
        for (cond, in_else) in &conds {
            if *in_else || !guard_skips_only_outside(cond, &names, &reg.dims, &domain_hi) {
                return Err(err(format!(
                    "loop `{at_loop}` is under the condition `{}`, which may skip elements the producer writes",
                    tir::print_expr(cond)
                )));
            }
        }
        let mut new_loops = prod.loops.clone();
        let mut guards = Vec::new();
        for (d, (dim, (terms, c0))) in reg.dims.iter().zip(&per_dim).enumerate() {
            let ext = dim.extent();
            let mut sorted: Vec<(i64, i64, i64)> = terms.clone();
            sorted.sort_by_key(|t| t.0.abs());
            let (mut lo, mut hi) = (c0 + dim.lo, c0 + dim.hi);
            let mut span = ext - 1;
            for (a, min, e) in &sorted {
                if *e <= 1 {
                    continue;
                }
                if consumer_writes && a.abs() <= span {
                    return Err(err(format!(
                        "iterations of the loops down to `{at_loop}` touch overlapping elements of `{b}` in position {d}, which the consumer updates"
                    )));
                }
                if a.abs() > span + 1 {
                    return Err(err(format!(
                        "the iterations of the loops down to `{at_loop}` leave gaps in position {d} of `{b}`, so the producer would not compute every element"
                    )));
                }
                span = span.saturating_add(a.abs().saturating_mul(e - 1));
                let (x, y) = (
                    a.saturating_mul(*min),
                    a.saturating_mul(min.saturating_add(e - 1)),
                );
                lo = lo.saturating_add(x.min(y));
                hi = hi.saturating_add(x.max(y));
            }
            let (li, shift) = prod.map[d];
            let pl = &prod.loops[li];
            let (dlo, dhi) = (pl.min + shift, pl.min + shift + pl.extent - 1);
            if lo > dlo || hi < dhi {
                return Err(err(format!(
                    "the consumer touches [{lo}, {hi}] in position {d} of `{b}`, not every element [{dlo}, {dhi}] the producer writes"
                )));
            }
            let v = &pl.var;
            if lo < dlo {
                guards.push(Expr::var(v).ge(Expr::Int(pl.min)));
            }
            if hi > dhi {
                guards.push(Expr::var(v).lt(Expr::Int(pl.min + pl.extent)));
            }
            new_loops[li] = NestLoop {
                var: pl.var.clone(),
                min: 0,
                extent: ext,
                kind: pl.kind,
            };
        }
        // Build the restricted nest: loop li runs over [base_d - shift, + extent).
        let mut inner = Stmt::store(b, prod.indices.clone(), prod.value.clone());
        if let Some(c) = guards.into_iter().reduce(|a, c| a.and(c)) {
            inner = Stmt::if_(c, inner);
        }
        for (li, l) in new_loops.iter().enumerate().rev() {
            let d = prod.map.iter().position(|(p, _)| *p == li).unwrap_or(0);
            let (_, shift) = prod.map[d];
            let dim = &reg.dims[d];
            let min = add(dim.base(), Expr::Int(-shift));
            inner = Stmt::for_(&l.var, min, Expr::Int(l.extent), l.kind, inner);
        }
        let new_consumer = replace_loop(consumer, at_loop, P, &mut |s| {
            let l = parts(s).ok_or_else(|| err("not a loop".into()))?;
            Ok(Stmt::for_(
                l.var,
                l.min.clone(),
                l.extent.clone(),
                l.kind,
                flatten(Stmt::Seq(vec![inner.clone(), l.body.clone()])),
            ))
        })?;
        let mut out = items.to_vec();
        out[j] = new_consumer;
        out.remove(i);
        Ok(out)
    })?;
    if !found {
        return Err(not_a_stage(func, P, stage_loop));
    }
    func.body = flatten(body);
    Ok(())
}

/// The buffer an init nest writes: loops and `if`s around one store whose value does
/// not read its buffer.
fn init_buffer(s: &Stmt) -> Option<String> {
    match s {
        Stmt::For { body, .. } => init_buffer(body),
        Stmt::If {
            then,
            otherwise: None,
            ..
        } => init_buffer(then),
        Stmt::Store { buffer, value, .. } if !tir::visit::expr_loads_buffer(value, buffer) => {
            Some(buffer.clone())
        }
        _ => None,
    }
}

/// Removes `alloc name` when its body no longer mentions the buffer.
fn drop_unused_alloc(s: Stmt, buffer: &str) -> Stmt {
    match s {
        Stmt::Allocate {
            name,
            dtype,
            shape,
            scope,
            body,
        } => {
            let body = drop_unused_alloc(*body, buffer);
            if name == buffer && !reads(&body, buffer) && !writes(&body, buffer) {
                body
            } else {
                Stmt::Allocate {
                    name,
                    dtype,
                    shape,
                    scope,
                    body: Box::new(body),
                }
            }
        }
        other => other,
    }
}

/// Inlines the producer stage whose outermost loop is `stage_loop` into every load of
/// its buffer in later stages, and removes it (and its `alloc` when nothing else
/// uses the buffer).
///
/// Preconditions: the stage is a producer nest (module docs) whose indices are
/// exactly its loop variables, covering the whole buffer (each loop runs over
/// `[0, shape)`); the buffer is allocated in the function (not a parameter); no
/// other statement writes it and no earlier stage reads it; later stages read it
/// and write no buffer that the stage's value reads.
///
/// Errors: not the outermost loop of a stage; a reduction or non-pure stage; the
/// buffer is a parameter (an output must keep its stores); the buffer is written
/// elsewhere or read by no one; a later stage writes what the value reads.
pub fn compute_inline(func: &mut Function, stage_loop: &str) -> Result<(), ScheduleError> {
    const P: &str = "compute_inline";
    let err = |r: String| ScheduleError::illegal(P, stage_loop, r);
    let mut found = false;
    let mut inlined: Option<String> = None;
    let params = func.params.clone();
    let shape_of = |b: &str| crate::region::buffer_shape(func, b);
    let mut shape_err = None;
    let body = with_stages(&func.body, &mut |items| {
        let Some(i) = items.iter().position(|s| is_stage_of(s, stage_loop)) else {
            return Ok(items.to_vec());
        };
        found = true;
        let prod = producer(&items[i]).map_err(err)?;
        let b = prod.buffer.clone();
        if let Some(p) = params.iter().find(|p| p.name == b) {
            let what = match p.kind {
                ParamKind::Output => "an output parameter: its values must be stored",
                _ => "a parameter",
            };
            return Err(err(format!("`{b}` is {what}")));
        }
        let shape = shape_of(&b).unwrap_or_default();
        for (d, (li, shift)) in prod.map.iter().enumerate() {
            let l = &prod.loops[*li];
            if *shift != 0
                || l.min != 0
                || Some(&(l.extent as usize)) != shape.get(d).filter(|_| l.extent >= 0)
            {
                shape_err = Some(format!(
                    "the stage does not write the whole of `{b}` (position {d}), so inlining would change the elements it leaves"
                ));
            }
        }
        if let Some(e) = shape_err.take() {
            return Err(err(e));
        }
        for (k, s) in items.iter().enumerate() {
            if k != i && writes(s, &b) {
                return Err(err(format!("`{b}` is also written by another stage")));
            }
            if k < i && reads(s, &b) {
                return Err(err(format!("`{b}` is read before the stage")));
            }
        }
        let reads_of_value = loaded_buffers(&prod.value);
        if !items[i + 1..].iter().any(|s| reads(s, &b)) {
            return Err(err(format!("`{b}` is read by no one")));
        }
        for s in &items[i + 1..] {
            if let Some(w) = written_buffers(s)
                .iter()
                .find(|w| reads_of_value.contains(w))
            {
                return Err(err(format!(
                    "a later stage writes `{w}`, which the stage reads"
                )));
            }
        }
        let loops = prod.loops.clone();
        let map = prod.map.clone();
        let value = prod.value.clone();
        let replace = move |idx: &[Expr]| {
            let mut v = value.clone();
            for (d, (li, _)) in map.iter().enumerate() {
                if let Some(e) = idx.get(d) {
                    v = substitute_expr(&v, &loops[*li].var, e);
                }
            }
            v
        };
        let mut out = Vec::new();
        for (k, s) in items.iter().enumerate() {
            if k < i {
                out.push(s.clone());
            } else if k > i {
                out.push(replace_loads_stmt(s, &b, &replace));
            }
        }
        inlined = Some(b);
        Ok(out)
    })?;
    if !found {
        return Err(not_a_stage(func, P, stage_loop));
    }
    let mut body = flatten(body);
    if let Some(b) = inlined {
        body = drop_unused_alloc(body, &b);
    }
    func.body = body;
    Ok(())
}

/// Splits the init out of a reduction: loop `loop_name`'s body must be
/// `init; rest` where `init` is a producer nest (module docs, zero or more loops)
/// writing buffer `B` and `rest` the reduction that reads and updates `B` (the shape
/// `compute_at(init_m, n)` leaves in FC). The init nest is removed from the body and
/// placed right before loop `at_loop` (`loop_name` itself or an ancestor reached
/// through a perfect nest of loops), inside new loops `{v}_init` that replay the
/// loops from `at_loop` down to `loop_name`.
///
/// Legal when no iteration's reduction can see another iteration's init: the region
/// `rest` touches lies within the region `init` writes (same offsets), and the init
/// regions of different iterations of the replayed loops are disjoint (each replayed
/// loop, constant-bounded, indexes `B` with a step beyond the region's extent).
///
/// Second form: `loop_name` is a reduction loop `k` (constant bounds, first value
/// `k0`) inside a perfect nest from `at_loop` down to one store
/// `B[idx] = select(k == k0, init, B[idx]) op e` (`op` one of `+ * min max`, either
/// operand order; `init` and `e` do not read `B`, `init` does not use `k`, `idx`
/// does not use `k` and is injective in the other loops of the nest, all with
/// constant bounds). The update becomes `B[idx] = B[idx] op e` and a nest of the
/// other loops (`{v}_init`) storing `B[idx] = init` goes before `at_loop`. Each
/// element then sees the same operations in the same order: bit-identical results.
///
/// Errors: no such loop; neither form matches (the body does not start with an init
/// nest followed by code reading `B`, and is not the select form); `at_loop` is not `loop_name` or an ancestor through a perfect nest;
/// `rest` touches elements outside the init's region; two iterations initialise
/// common elements.
pub fn decompose_reduction(
    func: &mut Function,
    loop_name: &str,
    at_loop: &str,
) -> Result<Vec<String>, ScheduleError> {
    const P: &str = "decompose_reduction";
    let err = |r: String| ScheduleError::illegal(P, loop_name, r);
    let l = find_loop(&func.body, loop_name)
        .and_then(parts)
        .ok_or_else(|| ScheduleError::NoSuchLoop {
            primitive: P,
            loop_name: loop_name.to_string(),
        })?;
    let shape_err = || {
        err("the body does not start with an init nest (loops around one store that does not read its buffer) followed by the reduction reading that buffer".to_string())
    };
    let Stmt::Seq(items) = l.body else {
        if let Some(r) = decompose_select(func, loop_name, at_loop)? {
            return Ok(r);
        }
        return Err(shape_err());
    };
    let (Some(init), rest) = (items.first(), &items[1.min(items.len())..]) else {
        return Err(shape_err());
    };
    let b = init_buffer(init).ok_or_else(shape_err)?;
    let b = b.as_str();
    let rest_stmt = if rest.len() == 1 {
        rest[0].clone()
    } else {
        Stmt::Seq(rest.to_vec())
    };
    if !reads(&rest_stmt, b) {
        return Err(shape_err());
    }
    // The chain of loops from at_loop down to loop_name.
    let at = find_loop(&func.body, at_loop)
        .and_then(parts)
        .ok_or_else(|| ScheduleError::NoSuchLoop {
            primitive: P,
            loop_name: at_loop.to_string(),
        })?;
    let mut chain: Vec<ChainLoop> = Vec::new();
    let mut cur = at;
    loop {
        let b = match (cur.min, cur.extent) {
            (Expr::Int(a), Expr::Int(e)) => Some((*a, *e)),
            _ => None,
        };
        chain.push((cur.var.to_string(), cur.min.clone(), cur.extent.clone(), b));
        if cur.var == loop_name {
            break;
        }
        cur = parts(cur.body).ok_or_else(|| {
            err(format!(
                "`{at_loop}` is not `{loop_name}` or an ancestor of it through a perfect nest of loops"
            ))
        })?;
    }
    let ri = region(init, b).map_err(err)?.ok_or_else(shape_err)?;
    let rr = region(&rest_stmt, b).map_err(err)?.ok_or_else(shape_err)?;
    for (d, (a, c)) in ri.dims.iter().zip(&rr.dims).enumerate() {
        if a.offset.offset_key() != c.offset.offset_key() || c.lo < a.lo || c.hi > a.hi {
            return Err(err(format!(
                "the reduction touches elements of `{b}` in position {d} that the init does not write"
            )));
        }
    }
    let chain_bounds: Vec<(String, Option<(i64, i64)>)> =
        chain.iter().map(|c| (c.0.clone(), c.3)).collect();
    let mut seen: Vec<String> = Vec::new();
    for (d, dim) in ri.dims.iter().enumerate() {
        let (terms, _) = offset_over_chain(dim, &chain_bounds, b, true).map_err(err)?;
        let names: Vec<String> = chain.iter().map(|c| c.0.clone()).collect();
        if let Some(f) = affine_index(&dim.offset.offset_expr(), &names) {
            seen.extend(f.coefs.keys().cloned());
        }
        let mut sorted = terms;
        sorted.sort_by_key(|t| t.0.abs());
        let mut span = dim.extent() - 1;
        for (a, _, e) in sorted {
            if e <= 1 {
                continue;
            }
            if a.abs() <= span {
                return Err(err(format!(
                    "different iterations initialise common elements of `{b}` in position {d}"
                )));
            }
            span = span.saturating_add(a.abs().saturating_mul(e - 1));
        }
    }
    for (v, _, _, bnd) in &chain {
        if !seen.contains(v) && !matches!(bnd, Some((_, e)) if *e <= 1) {
            return Err(err(format!(
                "every iteration of `{v}` initialises the same elements of `{b}`; hoisting the init above it would drop the re-initialisation"
            )));
        }
    }
    // Build the hoisted init nest.
    let taken = bound_names(&func.body);
    let mut new_names: Vec<String> = Vec::new();
    for (v, ..) in &chain {
        let n = fresh_name(&format!("{v}_init"), &taken);
        let mut t = taken.clone();
        t.extend(new_names.iter().cloned());
        let n = if new_names.contains(&n) {
            fresh_name(&n, &t)
        } else {
            n
        };
        new_names.push(n);
    }
    let mut hoisted = init.clone();
    for ((v, ..), n) in chain.iter().zip(&new_names) {
        hoisted = substitute_stmt(&hoisted, v, &Expr::var(n));
    }
    for ((v, min, ext, _), n) in chain.iter().zip(&new_names).rev() {
        let mut min = min.clone();
        let mut ext = ext.clone();
        for ((w, ..), m) in chain.iter().zip(&new_names) {
            if w != v {
                min = substitute_expr(&min, w, &Expr::var(m));
                ext = substitute_expr(&ext, w, &Expr::var(m));
            }
        }
        hoisted = Stmt::for_(n, min, ext, ForKind::Serial, hoisted);
    }
    let without_init = replace_loop(&func.body, loop_name, P, &mut |s| {
        let l = parts(s).ok_or_else(shape_err)?;
        Ok(Stmt::for_(
            l.var,
            l.min.clone(),
            l.extent.clone(),
            l.kind,
            rest_stmt.clone(),
        ))
    })?;
    let body = replace_loop(&without_init, at_loop, P, &mut |s| {
        Ok(Stmt::Seq(vec![hoisted.clone(), s.clone()]))
    })?;
    func.body = flatten(body);
    Ok(new_names)
}

/// Matches `select(k == k0, init, B[idx])`, giving `init`.
fn select_init<'e>(e: &'e Expr, k: &str, k0: i64, buffer: &str, idx: &[Expr]) -> Option<&'e Expr> {
    let Expr::Select(cond, init, other) = e else {
        return None;
    };
    let is_k = |x: &Expr| matches!(x, Expr::Var(v) if v == k);
    let first = match &**cond {
        Expr::Binary(tir::BinOp::Eq, a, b) => {
            (is_k(a) && **b == Expr::Int(k0)) || (is_k(b) && **a == Expr::Int(k0))
        }
        _ => false,
    };
    let own = matches!(&**other, Expr::Load { buffer: b, indices } if b == buffer && indices.as_slice() == idx);
    (first && own).then_some(&**init)
}

/// The select form of [`decompose_reduction`]; `Ok(None)` when the nest does not
/// have that shape.
fn decompose_select(
    func: &mut Function,
    loop_name: &str,
    at_loop: &str,
) -> Result<Option<Vec<String>>, ScheduleError> {
    const P: &str = "decompose_reduction";
    let err = |r: String| ScheduleError::illegal(P, loop_name, r);
    let Some(at) = find_loop(&func.body, at_loop) else {
        return Err(ScheduleError::NoSuchLoop {
            primitive: P,
            loop_name: at_loop.to_string(),
        });
    };
    // The perfect nest from at_loop down to one store.
    let mut chain: Vec<NestLoop> = Vec::new();
    let mut cur = at;
    while let Some(l) = parts(cur) {
        let (Expr::Int(min), Expr::Int(extent)) = (l.min, l.extent) else {
            return Ok(None);
        };
        chain.push(NestLoop {
            var: l.var.to_string(),
            min: *min,
            extent: *extent,
            kind: l.kind,
        });
        cur = l.body;
    }
    let Stmt::Store {
        buffer,
        indices,
        value,
    } = cur
    else {
        return Ok(None);
    };
    let Some(kl) = chain.iter().find(|c| c.var == loop_name).cloned() else {
        return Ok(None);
    };
    let Expr::Binary(
        op @ (tir::BinOp::Add | tir::BinOp::Mul | tir::BinOp::Min | tir::BinOp::Max),
        x,
        y,
    ) = value
    else {
        return Ok(None);
    };
    let (init, e, select_first) = match (
        select_init(x, &kl.var, kl.min, buffer, indices),
        select_init(y, &kl.var, kl.min, buffer, indices),
    ) {
        (Some(i), _) => (i, &**y, true),
        (None, Some(i)) => (i, &**x, false),
        _ => return Ok(None),
    };
    if kl.extent <= 0 {
        return Err(err("the reduction loop runs no iteration".into()));
    }
    if tir::visit::expr_loads_buffer(init, buffer) || tir::visit::expr_loads_buffer(e, buffer) {
        return Err(err(format!(
            "the init or the update reads `{buffer}` elsewhere"
        )));
    }
    if tir::visit::expr_uses_var(init, loop_name) {
        return Err(err(format!("the init value depends on `{loop_name}`")));
    }
    // idx must not use k and must be injective in the other loops.
    let names: Vec<String> = chain.iter().map(|c| c.var.clone()).collect();
    let mut seen: Vec<String> = Vec::new();
    for idx in indices {
        let f = affine_index(idx, &names).ok_or_else(|| {
            err(format!(
                "index `{}` of `{buffer}` is not affine in the nest",
                tir::print_expr(idx)
            ))
        })?;
        if f.coefs.contains_key(loop_name) {
            return Err(err(format!(
                "`{loop_name}` indexes `{buffer}`: it is not a reduction loop"
            )));
        }
        let mut terms: Vec<(i64, i64)> = f
            .coefs
            .iter()
            .filter_map(|(v, a)| {
                chain
                    .iter()
                    .find(|c| &c.var == v)
                    .map(|c| (a.abs(), c.extent))
            })
            .collect();
        terms.sort();
        let mut span = 0i64;
        for (a, ext) in terms {
            if ext <= 1 {
                continue;
            }
            if a <= span {
                return Err(err(format!(
                    "the loops of the nest write overlapping elements of `{buffer}`"
                )));
            }
            span = span.saturating_add(a.saturating_mul(ext - 1));
        }
        seen.extend(f.coefs.keys().cloned());
    }
    if let Some(c) = chain
        .iter()
        .find(|c| c.var != loop_name && c.extent > 1 && !seen.contains(&c.var))
    {
        return Err(err(format!(
            "`{}` does not index `{buffer}`, so its iterations also accumulate",
            c.var
        )));
    }
    // Build the init nest over the other loops, renamed.
    let taken = bound_names(&func.body);
    let mut new_names = Vec::new();
    let mut init_store = Stmt::store(buffer, indices.clone(), init.clone());
    let others: Vec<&NestLoop> = chain.iter().filter(|c| c.var != loop_name).collect();
    for c in &others {
        let mut t = taken.clone();
        t.extend(new_names.iter().cloned());
        let n = fresh_name(&format!("{}_init", c.var), &t);
        init_store = substitute_stmt(&init_store, &c.var, &Expr::var(&n));
        new_names.push(n);
    }
    let mut nest = init_store;
    for (c, n) in others.iter().zip(&new_names).rev() {
        nest = Stmt::for_(
            n,
            Expr::Int(c.min),
            Expr::Int(c.extent),
            ForKind::Serial,
            nest,
        );
    }
    let own = Expr::load(buffer.clone(), indices.clone());
    let new_value = if select_first {
        Expr::binary(*op, own, e.clone())
    } else {
        Expr::binary(*op, e.clone(), own)
    };
    let update = Stmt::store(buffer, indices.clone(), new_value);
    let mut reduction = update;
    for c in chain.iter().rev() {
        reduction = Stmt::for_(
            &c.var,
            Expr::Int(c.min),
            Expr::Int(c.extent),
            c.kind,
            reduction,
        );
    }
    func.body = flatten(replace_loop(&func.body, at_loop, P, &mut |_| {
        Ok(Stmt::Seq(vec![nest.clone(), reduction.clone()]))
    })?);
    Ok(Some(new_names))
}
