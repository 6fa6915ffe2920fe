//! `accumulate_at`: keep a reduction's partial sums in a local buffer across a loop
//! and add them to the output once, after the loop.
//!
//! This is the register blocking of GRIM's BCR kernels: inside a block, every kept row
//! sums `w * x` over the kept columns; lowered naively, each term loads and stores the
//! output element. `accumulate_at(j, Y)` on the kept-column loop `j` turns
//!
//! ```text
//! for (j, 0, nc) { ...; for (n, 0, N) { Y[row, n] = Y[row, n] + e; } }
//! ```
//!
//! into
//!
//! ```text
//! alloc Y_acc: f32[N] local {
//!   for (j, 0, nc) { ...; for (n, 0, N) { Y_acc[n] = Y_acc[n] + e; } }
//!   for (Y_acc_ax0, 0, N) { Y[row, Y_acc_ax0] = Y[row, Y_acc_ax0] + Y_acc[Y_acc_ax0]; }
//! }
//! ```
//!
//! Preconditions (each violated one is an error naming the loop or buffer):
//! - every store to the buffer inside the loop is an update `B[idx] = B[idx] + e` with
//!   `e` not reading `B`, and the loop reads `B` nowhere else;
//! - all updates use the same indices; each index is either free of every variable
//!   bound inside the loop (such as the BCR `row`, which is bound outside), or exactly
//!   the variable of a loop nested inside it, starting at 0 with a constant extent
//!   (these become the dimensions of the accumulator, which has at most 2^16 elements);
//! - the loop itself has that buffer's update somewhere in its body.
//!
//! The sums are reassociated (partial sums per loop, then one addition), so results
//! agree with the original up to floating-point rounding.

use crate::error::ScheduleError;
use crate::loops::{fresh_name, parts, replace_loop};
use tir::visit::{
    bound_names, expr_loads_buffer, expr_uses_var, for_each_load, for_each_stmt, stmt_exprs,
};
use tir::{DType, Expr, ForKind, Function, MemScope, Stmt};

const P: &str = "accumulate_at";

/// Largest accumulator, in elements.
pub const MAX_ACC: usize = 1 << 16;

struct Update {
    indices: Vec<Expr>,
}

fn collect(body: &Stmt, buffer: &str) -> Result<Vec<Update>, String> {
    let mut updates = Vec::new();
    let mut err = None;
    for_each_stmt(body, &mut |s| {
        if let Stmt::Store {
            buffer: b,
            indices,
            value,
        } = s
        {
            if b == buffer {
                let ok = match value {
                    Expr::Binary(tir::BinOp::Add, a, e) => {
                        matches!(&**a, Expr::Load { buffer: lb, indices: li } if lb == buffer && li == indices)
                            && !expr_loads_buffer(e, buffer)
                    }
                    _ => false,
                };
                if ok {
                    updates.push(Update {
                        indices: indices.clone(),
                    });
                } else if err.is_none() {
                    err = Some(format!(
                        "a store to `{buffer}` is not an update `{buffer}[i] = {buffer}[i] + e`"
                    ));
                }
            }
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    Ok(updates)
}

/// Replaces, inside `s`, the updates of `buffer` by updates of `acc` at `acc_idx`, and
/// loads `buffer[idx]` (only in those updates) accordingly.
fn rewrite(s: &Stmt, buffer: &str, acc: &str, acc_idx: &[Expr]) -> Stmt {
    tir::visit::map_stmt(s, &mut |st| match st {
        Stmt::Store {
            buffer: b, value, ..
        } if b == buffer => {
            let e = match value {
                Expr::Binary(_, _, e) => (**e).clone(),
                other => other.clone(),
            };
            Some(Stmt::store(
                acc,
                acc_idx.to_vec(),
                Expr::load(acc, acc_idx.to_vec()) + e,
            ))
        }
        _ => None,
    })
}

/// See the [module docs](self). Returns the accumulator's name.
pub fn accumulate_at(
    func: &mut Function,
    loop_name: &str,
    buffer: &str,
) -> Result<String, ScheduleError> {
    let dtype = func.param(buffer).map(|p| p.dtype);
    if dtype != Some(DType::F32) {
        // Locals allocated around the loop are fine too; look them up in the body.
        let mut local = false;
        for_each_stmt(&func.body, &mut |s| {
            if let Stmt::Allocate {
                name,
                dtype: DType::F32,
                ..
            } = s
            {
                local |= name == buffer;
            }
        });
        if !local {
            return Err(ScheduleError::illegal(
                P,
                buffer,
                "no f32 buffer of that name",
            ));
        }
    }
    let taken = bound_names(&func.body);
    let acc = fresh_name(&format!("{buffer}_acc"), &taken);
    let body = replace_loop(&func.body, loop_name, P, &mut |s| {
        let l = parts(s).ok_or_else(|| ScheduleError::illegal(P, loop_name, "not a loop"))?;
        let inner = {
            let mut v = bound_names(l.body);
            v.push(loop_name.to_string());
            v
        };
        let updates =
            collect(l.body, buffer).map_err(|r| ScheduleError::illegal(P, loop_name, r))?;
        let Some(first) = updates.first() else {
            return Err(ScheduleError::illegal(
                P,
                loop_name,
                format!("the loop does not update `{buffer}`"),
            ));
        };
        if updates.iter().any(|u| u.indices != first.indices) {
            return Err(ScheduleError::illegal(
                P,
                loop_name,
                format!("updates of `{buffer}` use different indices"),
            ));
        }
        // Other reads of the buffer inside the loop would see partial sums.
        let mut reads = 0usize;
        for_each_stmt(l.body, &mut |st| {
            for e in stmt_exprs(st) {
                for_each_load(e, &mut |b, _| reads += usize::from(b == buffer));
            }
        });
        if reads != updates.len() {
            return Err(ScheduleError::illegal(
                P,
                loop_name,
                format!("`{buffer}` is read inside the loop outside its updates"),
            ));
        }
        // Classify indices: invariant, or an inner loop variable with min 0 and a
        // constant extent.
        let mut extents = std::collections::BTreeMap::new();
        for_each_stmt(l.body, &mut |st| {
            if let Stmt::For {
                var,
                min: Expr::Int(0),
                extent: Expr::Int(e),
                ..
            } = st
            {
                extents.insert(var.clone(), *e);
            }
        });
        let mut dims: Vec<(usize, String, i64)> = Vec::new();
        for (pos, idx) in first.indices.iter().enumerate() {
            if !inner.iter().any(|v| expr_uses_var(idx, v)) {
                continue;
            }
            match idx {
                Expr::Var(v) if extents.contains_key(v) => {
                    if dims.iter().any(|d| &d.1 == v) {
                        return Err(ScheduleError::illegal(P, loop_name, format!("index variable `{v}` used twice")));
                    }
                    dims.push((pos, v.clone(), extents[v]));
                }
                _ => {
                    return Err(ScheduleError::illegal(
                        P,
                        loop_name,
                        format!(
                            "index {pos} of `{buffer}` varies inside the loop but is not a loop variable with constant bounds from 0"
                        ),
                    ))
                }
            }
        }
        let shape: Vec<usize> = dims.iter().map(|d| d.2.max(1) as usize).collect();
        let size: usize = shape.iter().product();
        if size > MAX_ACC {
            return Err(ScheduleError::illegal(
                P,
                loop_name,
                format!("accumulator of {size} elements exceeds {MAX_ACC}"),
            ));
        }
        let acc_idx: Vec<Expr> = dims.iter().map(|d| Expr::var(&d.1)).collect();
        let new_loop = Stmt::For {
            var: l.var.to_string(),
            min: l.min.clone(),
            extent: l.extent.clone(),
            kind: l.kind,
            body: Box::new(rewrite(l.body, buffer, &acc, &acc_idx)),
        };
        // Write-back nest over the accumulator's dimensions.
        let axes: Vec<String> = (0..dims.len())
            .map(|k| fresh_name(&format!("{acc}_ax{k}"), &taken))
            .collect();
        let mut out_idx = first.indices.clone();
        for (k, d) in dims.iter().enumerate() {
            out_idx[d.0] = Expr::var(&axes[k]);
        }
        let acc_read: Vec<Expr> = axes.iter().map(Expr::var).collect();
        let mut wb = Stmt::store(
            buffer,
            out_idx.clone(),
            Expr::load(buffer, out_idx) + Expr::load(&acc, acc_read),
        );
        for k in (0..dims.len()).rev() {
            wb = Stmt::for_(
                &axes[k],
                Expr::Int(0),
                Expr::Int(dims[k].2),
                ForKind::Serial,
                wb,
            );
        }
        Ok(Stmt::Allocate {
            name: acc.clone(),
            dtype: DType::F32,
            shape,
            scope: MemScope::Local,
            body: Box::new(Stmt::Seq(vec![new_loop, wb])),
        })
    })?;
    func.body = body;
    Ok(acc)
}
