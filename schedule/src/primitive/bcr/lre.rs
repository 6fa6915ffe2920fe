//! Load-redundancy elimination: a group's input values are loaded once and reused by
//! every row of the group.

use super::{
    allocated_in, find_block_loop, lets_loading, read_data, replace_block_loop, taken_names,
    with_rest,
};
use crate::error::ScheduleError;
use crate::loops::{fresh_name, parts};
use crate::primitive::State;
use std::collections::BTreeMap;
use tir::visit::{bound_names, expr_uses_var, for_each_stmt, stmt_uses_var, substitute_expr};
use tir::{BinOp, DType, Expr, ForKind, MemScope, Stmt};

/// Buffers of at most this many elements are allocated `local` (registers / stack);
/// larger ones (a conv's input patches) `global`.
pub const MAX_LOCAL_ELEMS: usize = 4096;

/// Load-redundancy elimination for weight `weight` (GRIM's "redundant load
/// elimination"). All rows of an entry (a block, or a group after
/// [`super::reorder_rows`]) multiply the same kept columns, so the input values they
/// read are the same for every row. At the top of the block loop's body this allocates
/// `xg: f32[max_nc, D1, .., Dd]` (prefix of the nest, e.g. `gi_xg`; `max_nc` the largest
/// kept-column count, `D1..Dd` the constant extents of the loops between the kept
/// column and the update) and fills it once per entry by a copy of the per-column
/// kernel body (loops and lets renamed with suffix `_ld`):
///
/// ```text
/// for (j_ld, 0, nc) { let col_ld = W_cols[c0 + j_ld]; ...; xg[j_ld, n_ld] = X[col_ld, n_ld]; }
/// ```
///
/// and the update reads `xg[j, n]` instead of `X[col, n]`. Dynamic loads of the input go
/// from `rows · cols · N` to `cols · N` per entry.
///
/// For a conv the copy keeps the column's decoding into channel and taps, the loops
/// over images and output positions and the padding guard: `xg[j, nb, oh, ow]` is the
/// input patch (the im2col row) of kept column `j`, loaded once per group instead of
/// once per kept row; positions outside the image are never read.
///
/// Legal when the weight is BCR with its kernel body as lowered: one value `let w =
/// W_val[..]` (so before [`super::tile_blocks`] with a tail, which duplicates it), the
/// path from the kept column to the update `OUT[..] = OUT[..] + w * X[..]` made only
/// of lets, loops from 0 with constant extents and ifs, and the input's indices not
/// depending on the row. Errors: not BCR; applied twice (the update already reads a
/// buffer allocated in the block loop); any other shape of the body.
pub fn eliminate_redundant_loads(
    state: &mut State,
    weight: &str,
) -> Result<Vec<String>, ScheduleError> {
    const P: &str = "eliminate_redundant_loads";
    let d = read_data(state, weight, P)?;
    let bl = find_block_loop(&state.func, weight, P)?;
    let err = |r: String| ScheduleError::illegal(P, weight, r);
    let w_lets = lets_loading(&bl.rest, &format!("{weight}_val"));
    let w_let = match w_lets.as_slice() {
        [one] => *one,
        [] => {
            return Err(err(format!(
                "no `let w = {weight}_val[..]` in the block loop"
            )))
        }
        many => {
            return Err(err(format!(
                "the kernel body appears {} times (tile_blocks with a tail duplicates it); \
                 eliminate redundant loads before tile_blocks",
                many.len()
            )))
        }
    };
    let Stmt::Let {
        var: w,
        body: w_body,
        ..
    } = w_let
    else {
        return Err(err("internal: not a let".into()));
    };
    // The update `OUT[idx] = OUT[idx] + w * IN[xidx]`.
    let mut updates: Vec<&Stmt> = Vec::new();
    for_each_stmt(w_body, &mut |s| {
        if let Stmt::Store { value, .. } = s {
            if expr_uses_var(value, w) {
                updates.push(s);
            }
        }
    });
    let [update] = updates.as_slice() else {
        return Err(err(format!(
            "expected one update using `{w}`, found {}",
            updates.len()
        )));
    };
    let input = match update {
        Stmt::Store {
            buffer,
            indices,
            value,
        } => match value {
            Expr::Binary(BinOp::Add, acc, prod) => match (&**acc, &**prod) {
                (
                    Expr::Load {
                        buffer: ob,
                        indices: oi,
                    },
                    Expr::Binary(BinOp::Mul, wv, x),
                ) if ob == buffer && oi == indices && matches!(&**wv, Expr::Var(v) if v == w) => {
                    match &**x {
                        Expr::Load { buffer: ib, .. } => ib.clone(),
                        _ => {
                            return Err(err("the update does not multiply by an input load".into()))
                        }
                    }
                }
                _ => {
                    return Err(err(format!(
                        "the update is not `OUT[..] = OUT[..] + {w} * X[..]`"
                    )))
                }
            },
            _ => {
                return Err(err(format!(
                    "the update is not `OUT[..] = OUT[..] + {w} * X[..]`"
                )))
            }
        },
        _ => return Err(err("internal: not a store".into())),
    };
    if allocated_in(&bl.body).contains(&input) {
        return Err(err(format!(
            "load-redundancy elimination was already applied to `{weight}` (the update reads `{input}`, allocated in the block loop)"
        )));
    }
    // The kept-column let enclosing the value let.
    let col_lets: Vec<&Stmt> = lets_loading(&bl.rest, &format!("{weight}_cols"))
        .into_iter()
        .filter(|s| matches!(s, Stmt::Let { body, .. } if stmt_uses_var(body, w) || contains(body, w_let)))
        .collect();
    let [col_let] = col_lets.as_slice() else {
        return Err(err(format!(
            "expected one `let col = {weight}_cols[c0 + j]` around the kernel body, found {}",
            col_lets.len()
        )));
    };
    let Stmt::Let {
        var: col,
        value: col_value,
        body: col_body,
    } = col_let
    else {
        return Err(err("internal: not a let".into()));
    };
    let j_expr = match col_value {
        Expr::Load { indices, .. } => match indices.as_slice() {
            [Expr::Binary(BinOp::Add, a, j)] if matches!(&**a, Expr::Var(v) if *v == bl.c0) => {
                (**j).clone()
            }
            [idx] => idx.clone() - Expr::var(&bl.c0),
            _ => return Err(err("kept-column load is not 1-D".into())),
        },
        _ => return Err(err("internal: not a load".into())),
    };
    // Names.
    let taken = taken_names(&state.func);
    let pre = bl.prefix().to_string();
    let xg = fresh_name(&format!("{pre}xg"), &taken);
    let jg = fresh_name(&format!("{pre}j_ld"), &taken);
    let mut rename: BTreeMap<String, String> = BTreeMap::new();
    rename.insert(col.clone(), fresh_name(&format!("{col}_ld"), &taken));
    for n in bound_names(col_body) {
        if n != *w {
            rename.insert(n.clone(), fresh_name(&format!("{n}_ld"), &taken));
        }
    }
    let rn = |e: &Expr| {
        rename.iter().fold(e.clone(), |e, (from, to)| {
            substitute_expr(&e, from, &Expr::var(to))
        })
    };
    // Walk the chain from the kept column to the update.
    let mut dims: Vec<(String, usize)> = Vec::new();
    let ctx = Chain {
        w,
        update,
        xg: &xg,
        jg: &jg,
        j_expr: &j_expr,
        rn: &rn,
    };
    let (g_inner, m_inner) = ctx.walk(col_body, &mut dims).map_err(err)?;
    let g_col = rename.get(col).cloned().unwrap_or_default();
    let gather = Stmt::serial(
        &jg,
        Expr::var(&bl.nc),
        Stmt::let_(
            &g_col,
            Expr::load(
                format!("{weight}_cols"),
                vec![Expr::var(&bl.c0) + Expr::var(&jg)],
            ),
            g_inner,
        ),
    );
    // The gather runs outside the row loop: it must not depend on what is bound there.
    for n in bound_names(&bl.rest) {
        if !rename.contains_key(&n) && stmt_uses_var(&gather, &n) {
            return Err(err(format!(
                "the input load depends on `{n}`, bound between the block and the kept column \
                 (the loaded values are not the same for every row)"
            )));
        }
    }
    let mut shape = vec![d.max_cols()];
    shape.extend(dims.iter().map(|(_, e)| *e));
    let elems: usize = shape.iter().product();
    let scope = if elems <= MAX_LOCAL_ELEMS {
        MemScope::Local
    } else {
        MemScope::Global
    };
    let new_col_let = if stmt_uses_var(&m_inner, col) {
        Stmt::let_(col.clone(), col_value.clone(), m_inner)
    } else {
        m_inner
    };
    let main = replace_let(&bl.rest, col, &new_col_let);
    let rest = Stmt::Allocate {
        name: xg.clone(),
        dtype: DType::F32,
        shape,
        scope,
        body: Box::new(Stmt::Seq(vec![gather, main])),
    };
    replace_block_loop(&mut state.func, &bl, P, |s| Ok(with_rest(s, rest)))?;
    let mut created = vec![jg];
    created.extend(
        dims.into_iter()
            .map(|(n, _)| rename.get(&n).cloned().unwrap_or(n)),
    );
    Ok(created)
}

fn contains(s: &Stmt, target: &Stmt) -> bool {
    let mut found = false;
    for_each_stmt(s, &mut |st| found |= std::ptr::eq(st, target));
    found
}

/// Replaces the first `let var = ..` in `s` by `new`.
fn replace_let(s: &Stmt, var: &str, new: &Stmt) -> Stmt {
    match s {
        Stmt::Let { var: v, .. } if v == var => new.clone(),
        Stmt::Let {
            var: v,
            value,
            body,
        } => Stmt::let_(v.clone(), value.clone(), replace_let(body, var, new)),
        Stmt::For {
            var: v,
            min,
            extent,
            kind,
            body,
        } => Stmt::for_(
            v.clone(),
            min.clone(),
            extent.clone(),
            *kind,
            replace_let(body, var, new),
        ),
        Stmt::Seq(items) => Stmt::Seq(items.iter().map(|i| replace_let(i, var, new)).collect()),
        Stmt::If {
            cond,
            then,
            otherwise,
        } => Stmt::If {
            cond: cond.clone(),
            then: Box::new(replace_let(then, var, new)),
            otherwise: otherwise
                .as_ref()
                .map(|o| Box::new(replace_let(o, var, new))),
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
            body: Box::new(replace_let(body, var, new)),
        },
        Stmt::Store { .. } | Stmt::Prefetch { .. } => s.clone(),
    }
}

struct Chain<'a> {
    w: &'a str,
    update: &'a Stmt,
    xg: &'a str,
    jg: &'a str,
    j_expr: &'a Expr,
    rn: &'a dyn Fn(&Expr) -> Expr,
}

impl Chain<'_> {
    /// Returns (gather copy, rewritten original) of the chain `s`.
    fn walk(&self, s: &Stmt, dims: &mut Vec<(String, usize)>) -> Result<(Stmt, Stmt), String> {
        let rv = |v: &str| match (self.rn)(&Expr::var(v)) {
            Expr::Var(n) => n,
            _ => v.to_string(),
        };
        match s {
            Stmt::Let { var, value, body } if var == self.w => {
                let (g, m) = self.walk(body, dims)?;
                Ok((g, Stmt::let_(var.clone(), value.clone(), m)))
            }
            Stmt::Let { var, value, body } => {
                let (g, m) = self.walk(body, dims)?;
                // The kernel keeps only the lets it still uses (the decoding of the
                // column moved to the fill stage).
                let m = if stmt_uses_var(&m, var) {
                    Stmt::let_(var.clone(), value.clone(), m)
                } else {
                    m
                };
                Ok((Stmt::let_(rv(var), (self.rn)(value), g), m))
            }
            Stmt::For { .. } => {
                let l = parts(s).ok_or("internal: not a loop")?;
                let e = match (l.min, l.extent) {
                    (Expr::Int(0), Expr::Int(e)) if *e >= 0 => *e as usize,
                    _ => {
                        return Err(format!(
                            "loop `{}` between the kept column and the update does not run over \
                             a constant range from 0 (eliminate redundant loads before splitting it)",
                            l.var
                        ))
                    }
                };
                dims.push((l.var.to_string(), e));
                let (g, m) = self.walk(l.body, dims)?;
                Ok((
                    Stmt::for_(
                        rv(l.var),
                        Expr::Int(0),
                        Expr::Int(e as i64),
                        ForKind::Serial,
                        g,
                    ),
                    Stmt::for_(l.var, l.min.clone(), l.extent.clone(), l.kind, m),
                ))
            }
            Stmt::If {
                cond,
                then,
                otherwise: None,
            } => {
                let (g, m) = self.walk(then, dims)?;
                Ok((Stmt::if_((self.rn)(cond), g), Stmt::if_(cond.clone(), m)))
            }
            Stmt::Store {
                buffer,
                indices,
                value,
            } if std::ptr::eq(s, self.update) => {
                let xidx = match value {
                    Expr::Binary(_, _, p) => match &**p {
                        Expr::Binary(_, _, x) => (**x).clone(),
                        _ => return Err("internal: update shape".into()),
                    },
                    _ => return Err("internal: update shape".into()),
                };
                let g_idx: Vec<Expr> = std::iter::once(Expr::var(self.jg))
                    .chain(dims.iter().map(|(n, _)| Expr::var(rv(n))))
                    .collect();
                let m_idx: Vec<Expr> = std::iter::once(self.j_expr.clone())
                    .chain(dims.iter().map(|(n, _)| Expr::var(n)))
                    .collect();
                let gather = Stmt::store(self.xg, g_idx, (self.rn)(&xidx));
                let new_value = super::map_expr(value, &mut |e| {
                    if e == xidx {
                        Expr::load(self.xg, m_idx.clone())
                    } else {
                        e
                    }
                });
                Ok((
                    gather,
                    Stmt::store(buffer.clone(), indices.clone(), new_value),
                ))
            }
            _ => Err(
                "the kernel body between the kept column and the update is not a single chain \
                 of lets, loops and ifs"
                    .into(),
            ),
        }
    }
}
