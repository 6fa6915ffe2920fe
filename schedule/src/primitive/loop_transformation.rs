//! Loop transformations: split, fuse, reorder.

use crate::analysis::check_permutable;
use crate::error::ScheduleError;
use crate::loops::{add, const_int, fresh_name, mul, parts, replace_loop};
use serde::{Deserialize, Serialize};
use tir::visit::{bound_names, expr_uses_var, substitute_stmt};
use tir::{Expr, ForKind, Function, Stmt};

/// What `split` does with iterations beyond the original extent when the factors do
/// not divide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Remainder {
    /// The factors must divide the extent exactly (constant extents only).
    Exact,
    /// The outer loop rounds up and the body is guarded by `if index < extent`.
    Guard,
    /// A main nest covers `floor(extent / product)` full tiles; a separate tail loop
    /// runs the rest (the body is duplicated, so the main nest has no guard and can be
    /// vectorized).
    Tail,
}

/// A factor of `split`: a constant, or inferred from the extent (at most one).
pub type SplitFactor = Option<i64>;

/// Splits loop `name` into `factors.len()` nested loops named `name_0` (outermost) to
/// `name_{n-1}`, whose extents are the factors.
///
/// At most one factor may be `None`: it is inferred as `ceil(extent / product of the
/// others)` (`Guard`, `Tail`) or `extent / product` (`Exact`). With a non-constant
/// extent (e.g. the kept rows of a BCR block), only the outermost factor may be
/// inferred and the strategy must be `Guard` or `Tail`; the extent is bound once by a
/// `let name_extent = ...` before the new loops. The original variable is replaced by
/// `min + ((name_0 * f1 + name_1) * f2 + ...)`.
///
/// Errors: no such loop, a factor `<= 0`, more than one inferred factor, factors whose
/// product does not match a constant extent under `Exact`, an inferred inner factor
/// with a non-constant extent.
pub fn split(
    func: &mut Function,
    name: &str,
    factors: &[SplitFactor],
    remainder: Remainder,
) -> Result<Vec<String>, ScheduleError> {
    const P: &str = "split";
    let err = |r: String| ScheduleError::illegal(P, name, r);
    if factors.len() < 2 {
        return Err(err(format!(
            "needs at least 2 factors, got {}",
            factors.len()
        )));
    }
    if factors.iter().filter(|f| f.is_none()).count() > 1 {
        return Err(err("at most one factor may be inferred (null)".into()));
    }
    if let Some(f) = factors.iter().flatten().find(|f| **f <= 0) {
        return Err(err(format!("factor {f} is not positive")));
    }
    let taken = bound_names(&func.body);
    let names: Vec<String> = (0..factors.len())
        .map(|i| fresh_name(&format!("{name}_{i}"), &taken))
        .collect();
    let extent_name = fresh_name(&format!("{name}_extent"), &taken);
    let known: i64 = factors
        .iter()
        .flatten()
        .try_fold(1i64, |acc, f| acc.checked_mul(*f))
        .ok_or_else(|| err("product of factors overflows".into()))?;
    let mut new_names = names.clone();
    let body = replace_loop(&func.body, name, P, &mut |s| {
        let l = parts(s).ok_or_else(|| err("not a loop".into()))?;
        let const_extent = const_int(l.extent);
        // Resolve the factors.
        let mut fs: Vec<Expr> = Vec::with_capacity(factors.len());
        let mut product_const: Option<i64> = None;
        for (i, f) in factors.iter().enumerate() {
            match (f, const_extent) {
                (Some(v), _) => fs.push(Expr::Int(*v)),
                (None, Some(e)) => {
                    let v = match remainder {
                        Remainder::Exact => {
                            if e % known != 0 {
                                return Err(err(format!(
                                    "extent {e} is not divisible by {known} (the product of the other factors); use the guard or tail strategy"
                                )));
                            }
                            e / known
                        }
                        Remainder::Guard | Remainder::Tail => (e + known - 1) / known,
                    };
                    fs.push(Expr::Int(v.max(1)));
                }
                (None, None) => {
                    if i != 0 {
                        return Err(err(
                            "with a non-constant extent only the outermost factor can be inferred"
                                .into(),
                        ));
                    }
                    if remainder == Remainder::Exact {
                        return Err(err(
                            "a non-constant extent cannot be split exactly; use the guard or tail strategy".into(),
                        ));
                    }
                    fs.push(Expr::Int(0)); // placeholder, set below
                }
            }
        }
        if let Some(e) = const_extent {
            let p: i64 = fs.iter().filter_map(const_int).product();
            product_const = Some(p);
            if remainder == Remainder::Exact && p != e {
                return Err(err(format!(
                    "factors {:?} multiply to {p}, not the extent {e}",
                    fs.iter().filter_map(const_int).collect::<Vec<_>>()
                )));
            }
        } else if factors.iter().all(|f| f.is_some()) && remainder == Remainder::Exact {
            return Err(err(
                "a non-constant extent cannot be split exactly; use the guard or tail strategy"
                    .into(),
            ));
        }
        // The extent as an expression (bound by a let when not constant).
        let extent_expr = match const_extent {
            Some(e) => Expr::Int(e),
            None => Expr::var(&extent_name),
        };
        let inner_product: i64 = fs[1..].iter().filter_map(const_int).product();
        if factors[0].is_none() && const_extent.is_none() {
            // ceil(extent / inner_product)
            fs[0] = (extent_expr.clone() + Expr::Int(inner_product - 1)) / Expr::Int(inner_product);
        }
        // index = ((n0 * f1 + n1) * f2 + n2) ...
        let mut index = Expr::var(&names[0]);
        for (k, f) in fs.iter().enumerate().skip(1) {
            index = add(mul(index, f.clone()), Expr::var(&names[k]));
        }
        let full = add(l.min.clone(), index.clone());
        let new_body = substitute_stmt(l.body, l.var, &full);
        let covers_exactly = product_const.is_some() && product_const == const_extent;
        let nest = |body: Stmt, outer_extent: Expr| {
            let mut s = body;
            for k in (0..fs.len()).rev() {
                let ext = if k == 0 {
                    outer_extent.clone()
                } else {
                    fs[k].clone()
                };
                let kind = if k == fs.len() - 1 {
                    l.kind
                } else {
                    ForKind::Serial
                };
                s = Stmt::for_(&names[k], Expr::Int(0), ext, kind, s);
            }
            s
        };
        let result = match remainder {
            _ if covers_exactly => nest(new_body, fs[0].clone()),
            Remainder::Exact => nest(new_body, fs[0].clone()),
            Remainder::Guard => {
                let guarded = Stmt::if_(index.clone().lt(extent_expr.clone()), new_body);
                nest(guarded, fs[0].clone())
            }
            Remainder::Tail => {
                let tile = fs
                    .iter()
                    .skip(1)
                    .fold(Expr::Int(1), |a, f| mul(a, f.clone()));
                let outer_full = match const_extent {
                    Some(e) => {
                        Expr::Int(e / fs[1..].iter().filter_map(const_int).product::<i64>().max(1))
                    }
                    None => extent_expr.clone() / tile.clone(),
                };
                // With a given outer factor the main nest still only covers whole
                // tiles that exist: min(outer factor, extent / tile).
                let outer_full = match factors[0] {
                    Some(f0) => match const_int(&outer_full) {
                        Some(v) => Expr::Int(v.min(f0)),
                        None => outer_full.min(Expr::Int(f0)),
                    },
                    None => outer_full,
                };
                let main = nest(new_body, outer_full.clone());
                let done = mul(outer_full, tile);
                let tail_var = fresh_name(&format!("{name}_tail"), &taken);
                new_names.push(tail_var.clone());
                let tail_body = rename_loops(l.body, "_tail", &taken);
                let tail_body = substitute_stmt(&tail_body, l.var, &Expr::var(&tail_var));
                let tail = Stmt::for_(
                    &tail_var,
                    add(l.min.clone(), done.clone()),
                    extent_expr.clone() - done,
                    ForKind::Serial,
                    tail_body,
                );
                Stmt::Seq(vec![main, tail])
            }
        };
        Ok(match const_extent {
            Some(_) => result,
            None => Stmt::let_(&extent_name, l.extent.clone(), result),
        })
    })?;
    func.body = body;
    Ok(new_names)
}

/// Renames every loop and let variable bound in `s` to `NAME{suffix}` (made fresh
/// against `taken`), so a duplicated body keeps loop names unique.
pub(crate) fn rename_loops(s: &Stmt, suffix: &str, taken: &[String]) -> Stmt {
    let mut out = s.clone();
    for n in bound_names(s) {
        let fresh = fresh_name(&format!("{n}{suffix}"), taken);
        out = rename_binder(&out, &n, &fresh);
    }
    out
}

fn rename_binder(s: &Stmt, from: &str, to: &str) -> Stmt {
    match s {
        Stmt::For {
            var,
            min,
            extent,
            kind,
            body,
        } if var == from => Stmt::For {
            var: to.to_string(),
            min: min.clone(),
            extent: extent.clone(),
            kind: *kind,
            body: Box::new(substitute_stmt(body, from, &Expr::var(to))),
        },
        Stmt::Let { var, value, body } if var == from => Stmt::Let {
            var: to.to_string(),
            value: value.clone(),
            body: Box::new(substitute_stmt(body, from, &Expr::var(to))),
        },
        Stmt::For {
            var,
            min,
            extent,
            kind,
            body,
        } => Stmt::For {
            var: var.clone(),
            min: min.clone(),
            extent: extent.clone(),
            kind: *kind,
            body: Box::new(rename_binder(body, from, to)),
        },
        Stmt::Let { var, value, body } => Stmt::Let {
            var: var.clone(),
            value: value.clone(),
            body: Box::new(rename_binder(body, from, to)),
        },
        Stmt::Seq(items) => Stmt::Seq(items.iter().map(|i| rename_binder(i, from, to)).collect()),
        Stmt::If {
            cond,
            then,
            otherwise,
        } => Stmt::If {
            cond: cond.clone(),
            then: Box::new(rename_binder(then, from, to)),
            otherwise: otherwise
                .as_ref()
                .map(|o| Box::new(rename_binder(o, from, to))),
        },
        Stmt::Store { .. } | Stmt::Prefetch { .. } => s.clone(),
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
            body: Box::new(rename_binder(body, from, to)),
        },
    }
}

/// Fuses loop `outer` with loop `inner`, which must be its whole body, into one loop
/// `outer_inner_fused` over `extent(outer) * extent(inner)` iterations;
/// `outer = min_o + f / E_i` and `inner = min_i + f % E_i`.
///
/// Errors: `inner` is not the direct and only body of `outer`; the inner extent is not
/// a positive constant; the inner loop's bounds depend on `outer`; either loop is not
/// serial.
pub fn fuse(func: &mut Function, outer: &str, inner: &str) -> Result<String, ScheduleError> {
    const P: &str = "fuse";
    let taken = bound_names(&func.body);
    let fused = fresh_name(&format!("{outer}_{inner}_fused"), &taken);
    let body = replace_loop(&func.body, outer, P, &mut |s| {
        let o = parts(s).ok_or_else(|| ScheduleError::illegal(P, outer, "not a loop"))?;
        let i = parts(o.body).filter(|i| i.var == inner).ok_or_else(|| {
            ScheduleError::illegal(
                P,
                outer,
                format!("`{inner}` is not the only statement in its body (loops must be perfectly nested)"),
            )
        })?;
        let ei = const_int(i.extent)
            .filter(|e| *e > 0)
            .ok_or_else(|| ScheduleError::illegal(P, inner, "extent is not a positive constant"))?;
        if expr_uses_var(i.min, outer) || expr_uses_var(i.extent, outer) {
            return Err(ScheduleError::illegal(
                P,
                inner,
                format!("bounds depend on `{outer}`"),
            ));
        }
        if o.kind != ForKind::Serial || i.kind != ForKind::Serial {
            return Err(ScheduleError::illegal(
                P,
                outer,
                "only serial loops can be fused",
            ));
        }
        let f = Expr::var(&fused);
        let ov = add(o.min.clone(), f.clone() / Expr::Int(ei));
        let iv = add(i.min.clone(), f % Expr::Int(ei));
        let b = substitute_stmt(i.body, inner, &iv);
        let b = substitute_stmt(&b, outer, &ov);
        Ok(Stmt::for_(
            &fused,
            Expr::Int(0),
            mul(o.extent.clone(), Expr::Int(ei)),
            ForKind::Serial,
            b,
        ))
    })?;
    func.body = body;
    Ok(fused)
}

/// Reorders loops of one perfect nest: the loops named in `order` (at least two,
/// distinct) must form a chain in which each is nested directly in the previous loop
/// of the chain with only loops in between; they are permuted into the given order
/// (outermost first), the loops in between keep their places.
///
/// Errors: a name is missing or repeated; the loops are not one perfect nest (a `let`,
/// `if`, store or sequence sits between them); a loop's bounds depend on another
/// loop of the chain; the body has a dependence that the permutation could break
/// (see [`crate::analysis`]).
pub fn reorder(func: &mut Function, order: &[String]) -> Result<(), ScheduleError> {
    const P: &str = "reorder";
    let first = order.first().cloned().unwrap_or_default();
    if order.len() < 2 {
        return Err(ScheduleError::illegal(
            P,
            &first,
            "needs at least two loops",
        ));
    }
    for (i, n) in order.iter().enumerate() {
        if order[..i].contains(n) {
            return Err(ScheduleError::illegal(P, n, "named twice"));
        }
    }
    // Find the outermost of the named loops: the one none of the others contains.
    let outermost = order
        .iter()
        .find(|n| {
            crate::loops::find_loop(&func.body, n).is_some_and(|s| {
                order
                    .iter()
                    .filter(|m| m != n)
                    .all(|m| crate::loops::find_loop(s, m).is_some())
            })
        })
        .cloned();
    let Some(outermost) = outermost else {
        for n in order {
            if crate::loops::find_loop(&func.body, n).is_none() {
                return Err(ScheduleError::NoSuchLoop {
                    primitive: P,
                    loop_name: n.clone(),
                });
            }
        }
        return Err(ScheduleError::illegal(
            P,
            &first,
            "the loops are not nested in one another",
        ));
    };
    let body = replace_loop(&func.body, &outermost, P, &mut |s| {
        // Walk the perfect chain down to the last named loop.
        let mut chain: Vec<(String, Expr, Expr, ForKind)> = Vec::new();
        let mut cur = s;
        let mut remaining = order.len();
        loop {
            let l = parts(cur).ok_or_else(|| {
                ScheduleError::illegal(
                    P,
                    chain.last().map(|c| c.0.as_str()).unwrap_or(&outermost),
                    "the named loops are not perfectly nested (a let, if, store or sequence sits between them)",
                )
            })?;
            if order.iter().any(|n| n == l.var) {
                remaining -= 1;
            }
            chain.push((l.var.to_string(), l.min.clone(), l.extent.clone(), l.kind));
            cur = l.body;
            if remaining == 0 {
                break;
            }
        }
        let innermost_body = cur;
        let vars: Vec<&str> = chain.iter().map(|c| c.0.as_str()).collect();
        for (v, min, ext, _) in &chain {
            for w in &vars {
                if *w != v && (expr_uses_var(min, w) || expr_uses_var(ext, w)) {
                    return Err(ScheduleError::illegal(
                        P,
                        v,
                        format!("bounds depend on loop `{w}`"),
                    ));
                }
            }
        }
        let named: Vec<&str> = order.iter().map(|s| s.as_str()).collect();
        let mut extents = std::collections::BTreeMap::new();
        for (v, _, ext, _) in &chain {
            match const_int(ext) {
                Some(e) => {
                    extents.insert(v.clone(), e);
                }
                None => {
                    return Err(ScheduleError::illegal(P, v, "extent is not a constant"));
                }
            }
        }
        check_permutable(&vars, &extents, innermost_body)
            .map_err(|r| ScheduleError::illegal(P, &outermost, r))?;
        // Positions of named loops in the chain get the named loops in the new order.
        let mut new_chain = chain.clone();
        let mut next = order.iter();
        for slot in new_chain.iter_mut() {
            if named.contains(&slot.0.as_str()) {
                if let Some(n) = next.next() {
                    if let Some(c) = chain.iter().find(|c| &c.0 == n) {
                        *slot = c.clone();
                    }
                }
            }
        }
        let mut out = innermost_body.clone();
        for (v, min, ext, kind) in new_chain.into_iter().rev() {
            out = Stmt::for_(v, min, ext, kind, out);
        }
        Ok(out)
    })?;
    func.body = body;
    Ok(())
}
