//! Small generic passes over the IR used by schedule primitives and analyses:
//! substitution of a variable, free-variable queries, collection of accesses, and
//! instrumentation that counts loads at run time.

use crate::expr::Expr;
use crate::function::{Function, Param, ParamKind};
use crate::stmt::Stmt;
use crate::DType;

/// Replaces every free occurrence of variable `var` in `e` by `with`.
pub fn substitute_expr(e: &Expr, var: &str, with: &Expr) -> Expr {
    match e {
        Expr::Var(n) if n == var => with.clone(),
        Expr::Int(_) | Expr::Float(_) | Expr::Bool(_) | Expr::Var(_) => e.clone(),
        Expr::Binary(op, a, b) => Expr::binary(
            *op,
            substitute_expr(a, var, with),
            substitute_expr(b, var, with),
        ),
        Expr::Unary(op, a) => Expr::Unary(*op, Box::new(substitute_expr(a, var, with))),
        Expr::Select(c, a, b) => Expr::select(
            substitute_expr(c, var, with),
            substitute_expr(a, var, with),
            substitute_expr(b, var, with),
        ),
        Expr::Cast(t, a) => Expr::cast(*t, substitute_expr(a, var, with)),
        Expr::Load { buffer, indices } => Expr::Load {
            buffer: buffer.clone(),
            indices: indices
                .iter()
                .map(|i| substitute_expr(i, var, with))
                .collect(),
        },
        Expr::Call(f, args) => Expr::Call(
            *f,
            args.iter().map(|a| substitute_expr(a, var, with)).collect(),
        ),
    }
}

/// Replaces every free occurrence of variable `var` in `s` by `with`. Bindings of
/// `var` inside `s` shadow it, and substitution stops there. The caller must make sure
/// `with` does not mention a variable that `s` rebinds around an occurrence (schedule
/// primitives keep loop names unique, which guarantees this).
pub fn substitute_stmt(s: &Stmt, var: &str, with: &Expr) -> Stmt {
    let se = |e: &Expr| substitute_expr(e, var, with);
    match s {
        Stmt::For {
            var: v,
            min,
            extent,
            kind,
            body,
        } => Stmt::For {
            var: v.clone(),
            min: se(min),
            extent: se(extent),
            kind: *kind,
            body: Box::new(if v == var {
                (**body).clone()
            } else {
                substitute_stmt(body, var, with)
            }),
        },
        Stmt::Seq(items) => Stmt::Seq(
            items
                .iter()
                .map(|i| substitute_stmt(i, var, with))
                .collect(),
        ),
        Stmt::Let {
            var: v,
            value,
            body,
        } => Stmt::Let {
            var: v.clone(),
            value: se(value),
            body: Box::new(if v == var {
                (**body).clone()
            } else {
                substitute_stmt(body, var, with)
            }),
        },
        Stmt::If {
            cond,
            then,
            otherwise,
        } => Stmt::If {
            cond: se(cond),
            then: Box::new(substitute_stmt(then, var, with)),
            otherwise: otherwise
                .as_ref()
                .map(|o| Box::new(substitute_stmt(o, var, with))),
        },
        Stmt::Store {
            buffer,
            indices,
            value,
        } => Stmt::Store {
            buffer: buffer.clone(),
            indices: indices.iter().map(se).collect(),
            value: se(value),
        },
        Stmt::Prefetch { buffer, indices } => Stmt::Prefetch {
            buffer: buffer.clone(),
            indices: indices.iter().map(se).collect(),
        },
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
            body: Box::new(substitute_stmt(body, var, with)),
        },
    }
}

/// Rebuilds `s` top-down: where `f` returns a statement it replaces that node (and is
/// not applied inside it); elsewhere the node is kept with its children rebuilt.
pub fn map_stmt(s: &Stmt, f: &mut dyn FnMut(&Stmt) -> Option<Stmt>) -> Stmt {
    match try_map_stmt(s, &mut |st| Ok::<_, std::convert::Infallible>(f(st))) {
        Ok(out) => out,
        Err(never) => match never {},
    }
}

/// [`map_stmt`] with a fallible `f`: the first error stops the rebuild.
pub fn try_map_stmt<E>(
    s: &Stmt,
    f: &mut dyn FnMut(&Stmt) -> Result<Option<Stmt>, E>,
) -> Result<Stmt, E> {
    if let Some(r) = f(s)? {
        return Ok(r);
    }
    Ok(match s {
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
            body: Box::new(try_map_stmt(body, f)?),
        },
        Stmt::Seq(items) => Stmt::Seq(
            items
                .iter()
                .map(|x| try_map_stmt(x, f))
                .collect::<Result<_, _>>()?,
        ),
        Stmt::Let { var, value, body } => Stmt::Let {
            var: var.clone(),
            value: value.clone(),
            body: Box::new(try_map_stmt(body, f)?),
        },
        Stmt::If {
            cond,
            then,
            otherwise,
        } => Stmt::If {
            cond: cond.clone(),
            then: Box::new(try_map_stmt(then, f)?),
            otherwise: match otherwise {
                Some(o) => Some(Box::new(try_map_stmt(o, f)?)),
                None => None,
            },
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
            body: Box::new(try_map_stmt(body, f)?),
        },
    })
}

/// True when `e` mentions variable `var`.
pub fn expr_uses_var(e: &Expr, var: &str) -> bool {
    match e {
        Expr::Var(n) => n == var,
        Expr::Int(_) | Expr::Float(_) | Expr::Bool(_) => false,
        Expr::Binary(_, a, b) => expr_uses_var(a, var) || expr_uses_var(b, var),
        Expr::Unary(_, a) | Expr::Cast(_, a) => expr_uses_var(a, var),
        Expr::Select(c, a, b) => {
            expr_uses_var(c, var) || expr_uses_var(a, var) || expr_uses_var(b, var)
        }
        Expr::Load { indices, .. } => indices.iter().any(|i| expr_uses_var(i, var)),
        Expr::Call(_, args) => args.iter().any(|a| expr_uses_var(a, var)),
    }
}

/// True when `s` mentions variable `var` free (not rebound).
pub fn stmt_uses_var(s: &Stmt, var: &str) -> bool {
    let ue = |e: &Expr| expr_uses_var(e, var);
    match s {
        Stmt::For {
            var: v,
            min,
            extent,
            body,
            ..
        } => ue(min) || ue(extent) || (v != var && stmt_uses_var(body, var)),
        Stmt::Seq(items) => items.iter().any(|i| stmt_uses_var(i, var)),
        Stmt::Let {
            var: v,
            value,
            body,
        } => ue(value) || (v != var && stmt_uses_var(body, var)),
        Stmt::If {
            cond,
            then,
            otherwise,
        } => {
            ue(cond)
                || stmt_uses_var(then, var)
                || otherwise.as_ref().is_some_and(|o| stmt_uses_var(o, var))
        }
        Stmt::Store { indices, value, .. } => indices.iter().any(ue) || ue(value),
        Stmt::Prefetch { indices, .. } => indices.iter().any(ue),
        Stmt::Allocate { body, .. } => stmt_uses_var(body, var),
    }
}

/// True when `e` loads from `buffer`.
pub fn expr_loads_buffer(e: &Expr, buffer: &str) -> bool {
    let mut found = false;
    for_each_load(e, &mut |b, _| found |= b == buffer);
    found
}

/// Calls `f(buffer, indices)` for every load in `e`, outer loads first.
pub fn for_each_load<'e>(e: &'e Expr, f: &mut impl FnMut(&'e str, &'e [Expr])) {
    match e {
        Expr::Int(_) | Expr::Float(_) | Expr::Bool(_) | Expr::Var(_) => {}
        Expr::Binary(_, a, b) => {
            for_each_load(a, f);
            for_each_load(b, f);
        }
        Expr::Unary(_, a) | Expr::Cast(_, a) => for_each_load(a, f),
        Expr::Select(c, a, b) => {
            for_each_load(c, f);
            for_each_load(a, f);
            for_each_load(b, f);
        }
        Expr::Load { buffer, indices } => {
            f(buffer, indices);
            for i in indices {
                for_each_load(i, f);
            }
        }
        Expr::Call(_, args) => {
            for a in args {
                for_each_load(a, f);
            }
        }
    }
}

/// Every expression directly held by `s` (not those of nested statements).
pub fn stmt_exprs(s: &Stmt) -> Vec<&Expr> {
    match s {
        Stmt::For { min, extent, .. } => vec![min, extent],
        Stmt::Seq(_) | Stmt::Allocate { .. } => Vec::new(),
        Stmt::Let { value, .. } => vec![value],
        Stmt::If { cond, .. } => vec![cond],
        Stmt::Store { indices, value, .. } => {
            indices.iter().chain(std::iter::once(value)).collect()
        }
        Stmt::Prefetch { indices, .. } => indices.iter().collect(),
    }
}

/// Calls `f` on `s` and every statement nested in it, parents first.
pub fn for_each_stmt<'s>(s: &'s Stmt, f: &mut impl FnMut(&'s Stmt)) {
    f(s);
    match s {
        Stmt::For { body, .. } | Stmt::Let { body, .. } | Stmt::Allocate { body, .. } => {
            for_each_stmt(body, f)
        }
        Stmt::Seq(items) => {
            for i in items {
                for_each_stmt(i, f);
            }
        }
        Stmt::If {
            then, otherwise, ..
        } => {
            for_each_stmt(then, f);
            if let Some(o) = otherwise {
                for_each_stmt(o, f);
            }
        }
        Stmt::Store { .. } | Stmt::Prefetch { .. } => {}
    }
}

/// The names of every `for` loop in `s`, outer first.
pub fn loop_names(s: &Stmt) -> Vec<String> {
    let mut names = Vec::new();
    for_each_stmt(s, &mut |st| {
        if let Stmt::For { var, .. } = st {
            names.push(var.clone());
        }
    });
    names
}

/// The names of every variable bound (by `for` or `let`) in `s`.
pub fn bound_names(s: &Stmt) -> Vec<String> {
    let mut names = Vec::new();
    for_each_stmt(s, &mut |st| match st {
        Stmt::For { var, .. } | Stmt::Let { var, .. } => names.push(var.clone()),
        _ => {}
    });
    names
}

/// Name of the counter buffer added by [`count_loads_of`].
pub const LOAD_COUNTER: &str = "__load_count";

/// Instruments `f` to count, at run time, the loads from `buffer`: returns a copy of
/// `f` with an extra `out i32[1]` parameter [`LOAD_COUNTER`] and, before every
/// statement whose own expressions load from `buffer` k times, a store adding k to it.
/// Running the result in the interpreter gives the exact dynamic load count (a `select`
/// counts the loads of both branches, an upper bound: only the picked one runs).
pub fn count_loads_of(f: &Function, buffer: &str) -> Function {
    fn count(s: &Stmt, buffer: &str) -> i64 {
        let mut k = 0;
        for e in stmt_exprs(s) {
            for_each_load(e, &mut |b, _| {
                if b == buffer {
                    k += 1
                }
            });
        }
        k
    }
    fn bump(k: i64) -> Stmt {
        let c = Expr::load(LOAD_COUNTER, vec![Expr::Int(0)]);
        Stmt::store(LOAD_COUNTER, vec![Expr::Int(0)], c + Expr::Int(k))
    }
    fn walk(s: &Stmt, buffer: &str) -> Stmt {
        let inner = match s {
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
                body: Box::new(walk(body, buffer)),
            },
            Stmt::Seq(items) => Stmt::Seq(items.iter().map(|i| walk(i, buffer)).collect()),
            Stmt::Let { var, value, body } => Stmt::Let {
                var: var.clone(),
                value: value.clone(),
                body: Box::new(walk(body, buffer)),
            },
            Stmt::If {
                cond,
                then,
                otherwise,
            } => Stmt::If {
                cond: cond.clone(),
                then: Box::new(walk(then, buffer)),
                otherwise: otherwise.as_ref().map(|o| Box::new(walk(o, buffer))),
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
                body: Box::new(walk(body, buffer)),
            },
        };
        let k = count(s, buffer);
        if k == 0 {
            inner
        } else {
            Stmt::Seq(vec![bump(k), inner])
        }
    }
    let mut g = f.clone();
    g.params.push(Param::new(
        LOAD_COUNTER,
        ParamKind::Output,
        DType::I32,
        vec![1],
    ));
    g.body = walk(&f.body, buffer);
    g
}
