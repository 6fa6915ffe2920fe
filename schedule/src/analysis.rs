//! Conservative dependence analysis: can the iterations of some loops be reordered or
//! run at once without changing what the program computes?
//!
//! Index expressions are read as affine forms `Σ aᵢ·vᵢ + c` over loop variables with
//! constant coefficients, where `c` mentions no variable bound inside the analysed
//! region. Anything else (an index through a `let` bound inside the region, a load, a
//! product of two variables) is *opaque*.
//!
//! - **Independent iterations** of loop `v` (precondition of `parallel`, `vectorize`
//!   and `bind`): every store in the body has an index position where `v` appears with
//!   coefficient `a` and the other region-bound variables `uⱼ` (loops with constant
//!   bounds) span less than one step of `v`: `Σ |bⱼ|·(Eⱼ-1) < |a|`. So different
//!   values of `v` write disjoint elements. Every load of a stored buffer in the body
//!   must use the store's exact indices (an iteration reads only what it writes).
//! - **Permutable loops** (precondition of `reorder`): every store is either a
//!   *reduction* `B[idx] = B[idx] op e` (`op` one of `+ * min max`, `e` not reading
//!   `B`) — any order gives the same result up to reassociation — or a plain store
//!   whose indices are injective in the permuted loops (mixed-radix affine forms). In
//!   both cases all loads of `B` in the body must use the store's exact indices.
//!
//! Buffers allocated inside the region are private to an iteration and ignored.
//! Anything that cannot be proven safe is reported, naming the buffer.

use std::collections::BTreeMap;
use tir::visit::{expr_loads_buffer, expr_uses_var, for_each_load, for_each_stmt, stmt_exprs};
use tir::{BinOp, Expr, Stmt};

/// An affine form: coefficients of region-bound variables; the rest is invariant.
type Affine = BTreeMap<String, i64>;

/// Reads `e` as an affine form over `region` variables, or `None` when opaque.
fn affine(e: &Expr, region: &[String]) -> Option<Affine> {
    let invariant = |x: &Expr| !region.iter().any(|n| expr_uses_var(x, n));
    match e {
        Expr::Var(n) if region.contains(n) => Some(BTreeMap::from([(n.clone(), 1)])),
        _ if invariant(e) => Some(BTreeMap::new()),
        Expr::Binary(op @ (BinOp::Add | BinOp::Sub), a, b) => {
            let mut fa = affine(a, region)?;
            let fb = affine(b, region)?;
            let sign = if *op == BinOp::Add { 1 } else { -1 };
            for (k, v) in fb {
                *fa.entry(k).or_insert(0) += sign * v;
            }
            fa.retain(|_, v| *v != 0);
            Some(fa)
        }
        Expr::Binary(BinOp::Mul, a, b) => {
            let (form, c) = match (&**a, &**b) {
                (x, Expr::Int(c)) | (Expr::Int(c), x) => (affine(x, region)?, *c),
                _ => return None,
            };
            let mut out: Affine = form.into_iter().map(|(k, v)| (k, v * c)).collect();
            out.retain(|_, v| *v != 0);
            Some(out)
        }
        _ => None,
    }
}

/// Constant extents of the loops bound inside `body`.
fn loop_extents(body: &Stmt) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for_each_stmt(body, &mut |s| {
        if let Stmt::For {
            var,
            extent: Expr::Int(e),
            ..
        } = s
        {
            out.insert(var.clone(), *e);
        }
    });
    out
}

fn all_bound(body: &Stmt) -> Vec<String> {
    tir::visit::bound_names(body)
}

struct Store<'s> {
    buffer: &'s str,
    indices: &'s [Expr],
    value: &'s Expr,
}

fn stores(body: &Stmt) -> Vec<Store<'_>> {
    let mut out = Vec::new();
    for_each_stmt(body, &mut |s| {
        if let Stmt::Store {
            buffer,
            indices,
            value,
        } = s
        {
            out.push(Store {
                buffer,
                indices,
                value,
            });
        }
    });
    out
}

fn loads_of<'s>(body: &'s Stmt, buffer: &str) -> Vec<&'s [Expr]> {
    let mut out = Vec::new();
    for_each_stmt(body, &mut |s| {
        for e in stmt_exprs(s) {
            for_each_load(e, &mut |b, idx| {
                if b == buffer {
                    out.push(idx);
                }
            });
        }
    });
    out
}

fn private_buffers(body: &Stmt) -> Vec<&str> {
    let mut out = Vec::new();
    for_each_stmt(body, &mut |s| {
        if let Stmt::Allocate { name, .. } = s {
            out.push(name.as_str());
        }
    });
    out
}

fn is_reduction(st: &Store<'_>) -> bool {
    match st.value {
        Expr::Binary(BinOp::Add | BinOp::Mul | BinOp::Min | BinOp::Max, a, b) => {
            let own = |e: &Expr| matches!(e, Expr::Load { buffer, indices } if buffer == st.buffer && indices.as_slice() == st.indices);
            (own(a) && !expr_loads_buffer(b, st.buffer))
                || (own(b) && !expr_loads_buffer(a, st.buffer))
        }
        _ => false,
    }
}

fn same_reads(body: &Stmt, st: &Store<'_>, what: &str) -> Result<(), String> {
    if loads_of(body, st.buffer)
        .iter()
        .any(|idx| *idx != st.indices)
    {
        return Err(format!(
            "buffer `{}` is also read at other indices than it is written, so {what} could change what is read",
            st.buffer
        ));
    }
    Ok(())
}

/// The variables of `body` whose values depend on `v`: `v` itself, lets whose value
/// mentions one of them, loops whose bounds do (transitively).
fn dependents(v: &str, body: &Stmt) -> Vec<String> {
    let mut dep = vec![v.to_string()];
    for_each_stmt(body, &mut |s| {
        let (var, exprs): (&str, Vec<&Expr>) = match s {
            Stmt::Let { var, value, .. } => (var, vec![value]),
            Stmt::For {
                var, min, extent, ..
            } => (var, vec![min, extent]),
            _ => return,
        };
        if exprs
            .iter()
            .any(|e| dep.iter().any(|d| expr_uses_var(e, d)))
        {
            dep.push(var.to_string());
        }
    });
    dep
}

/// Checks that the iterations of loop `v` (whose body is `body`) are independent:
/// the precondition of `parallel`, `vectorize` and thread binding.
pub fn check_independent(v: &str, body: &Stmt) -> Result<(), String> {
    let mut region = all_bound(body);
    region.push(v.to_string());
    let extents = loop_extents(body);
    let private = private_buffers(body);
    let deps = dependents(v, body);
    for st in stores(body) {
        if private.contains(&st.buffer) {
            continue;
        }
        let uses_v = st
            .indices
            .iter()
            .any(|i| deps.iter().any(|d| expr_uses_var(i, d)));
        if !uses_v {
            return Err(if is_reduction(&st) {
                format!("`{v}` is a reduction loop: its iterations accumulate into the same elements of `{}`", st.buffer)
            } else {
                format!(
                    "every iteration of `{v}` writes the same elements of `{}`",
                    st.buffer
                )
            });
        }
        let partitioned = st.indices.iter().any(|idx| {
            let Some(form) = affine(idx, &region) else {
                return false;
            };
            let Some(a) = form.get(v).map(|a| a.abs()) else {
                return false;
            };
            let mut span = 0i64;
            for (u, b) in &form {
                if u == v {
                    continue;
                }
                match extents.get(u) {
                    Some(e) => span = span.saturating_add(b.abs().saturating_mul(e - 1)),
                    None => return false,
                }
            }
            span < a
        });
        if !partitioned {
            return Err(format!(
                "cannot prove that different iterations of `{v}` write different elements of `{}`",
                st.buffer
            ));
        }
        same_reads(body, &st, "running iterations at once")?;
    }
    Ok(())
}

/// Is the index tuple injective in `vars` (given their constant extents)? Each
/// position's affine form must be mixed-radix over the permuted variables it mentions
/// (sorted by |coefficient|, each step larger than the span of the smaller ones), and
/// every permuted variable must appear somewhere.
fn injective(
    indices: &[Expr],
    vars: &[&str],
    region: &[String],
    extents: &BTreeMap<String, i64>,
) -> bool {
    let mut seen: Vec<&str> = Vec::new();
    for idx in indices {
        let Some(form) = affine(idx, region) else {
            return false;
        };
        let mut terms: Vec<(i64, i64)> = Vec::new();
        for (u, b) in &form {
            let Some(e) = extents.get(u) else {
                return false;
            };
            if let Some(v) = vars.iter().find(|v| **v == u) {
                seen.push(v);
            }
            terms.push((b.abs(), *e));
        }
        terms.sort();
        let mut span = 0i64;
        for (b, e) in terms {
            if b <= span {
                return false;
            }
            span = span.saturating_add(b.saturating_mul(e - 1));
        }
    }
    vars.iter().all(|v| seen.contains(v))
}

/// Checks that the perfectly nested loops `vars` (constant extents in `extents`),
/// whose innermost body is `body`, may be permuted: the precondition of `reorder`.
pub fn check_permutable(
    vars: &[&str],
    extents: &BTreeMap<String, i64>,
    body: &Stmt,
) -> Result<(), String> {
    let mut region = all_bound(body);
    region.extend(vars.iter().map(|v| v.to_string()));
    let mut all_extents = loop_extents(body);
    all_extents.extend(extents.iter().map(|(k, v)| (k.clone(), *v)));
    let private = private_buffers(body);
    for st in stores(body) {
        if private.contains(&st.buffer) {
            continue;
        }
        if !is_reduction(&st) && !injective(st.indices, vars, &region, &all_extents) {
            return Err(format!(
                "iterations may overwrite the same elements of `{}` in an order the permutation changes",
                st.buffer
            ));
        }
        same_reads(body, &st, "reordering")?;
    }
    Ok(())
}
