//! `vectorize_reduction`: a reduction loop summed in vector lanes (TVM's `rfactor`
//! followed by vectorizing the factored loop, as one step).
//!
//! A dense matrix-vector product sums `W[m, k] * X[k, n]` over `k` into one output
//! element: a serial chain of additions that a C compiler may not reorder (without
//! `-ffast-math`), so the innermost loop stays scalar however it is split. Summing
//! `lanes` partial sums side by side makes it data-parallel:
//!
//! ```text
//! for (k, min, K) { B[idx] = B[idx] + e; }
//! // becomes, with L lanes (Q = K / L, T = K % L)
//! alloc k_acc: f32[L] local {
//!   for (k_o, 0, Q) { vectorized for (k_l, 0, L) { k_acc[k_l] = k_acc[k_l] + e[k := min + k_o * L + k_l]; } }
//!   for (k_t, min + Q * L, T) { B[idx] = B[idx] + e[k := k_t]; }
//!   for (k_r, 0, L) { B[idx] = B[idx] + k_acc[k_r]; }
//! }
//! ```
//!
//! (the tail loop is left out when `L` divides `K`). The sum is reassociated, so
//! results agree with the original up to floating-point rounding.

use crate::error::ScheduleError;
use crate::loops::{add, const_int, fresh_name, mul, parts, replace_loop};
use tir::visit::{bound_names, expr_loads_buffer, expr_uses_var, for_each_stmt, substitute_expr};
use tir::{BinOp, DType, Expr, ForKind, Function, MemScope, Stmt};

const P: &str = "vectorize_reduction";

/// The reduction a loop computes: its body is the single update `buffer[indices] =
/// buffer[indices] + term` whose indices do not use the loop variable and whose term
/// does not read the buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reduction {
    /// The updated buffer.
    pub buffer: String,
    /// The element updated (free of the loop variable).
    pub indices: Vec<Expr>,
    /// The summed term (uses the loop variable).
    pub term: Expr,
}

/// The reduction of loop statement `s` (see [`Reduction`]), or why it is not one.
pub fn reduction_of(s: &Stmt) -> Result<Reduction, String> {
    let l = parts(s).ok_or("not a loop")?;
    let Stmt::Store {
        buffer,
        indices,
        value,
    } = l.body
    else {
        return Err("the loop body is not a single store".into());
    };
    let Expr::Binary(BinOp::Add, acc, term) = value else {
        return Err(format!(
            "the store is not an update `{buffer}[i] = {buffer}[i] + e`"
        ));
    };
    if !matches!(&**acc, Expr::Load { buffer: b, indices: i } if b == buffer && i == indices) {
        return Err(format!(
            "the store is not an update `{buffer}[i] = {buffer}[i] + e`"
        ));
    }
    if indices.iter().any(|i| expr_uses_var(i, l.var)) {
        return Err(format!(
            "the updated element of `{buffer}` depends on `{}`: not a reduction",
            l.var
        ));
    }
    if expr_loads_buffer(term, buffer) {
        return Err(format!("the summed term reads `{buffer}` itself"));
    }
    if !expr_uses_var(term, l.var) {
        return Err(format!("the summed term does not depend on `{}`", l.var));
    }
    Ok(Reduction {
        buffer: buffer.clone(),
        indices: indices.clone(),
        term: (**term).clone(),
    })
}

/// Sums reduction loop `loop_name` in `lanes` vector lanes (2 to 64); see the
/// [module docs](self). Returns the names of the vector loop, the tail loop (when
/// there is one) and the final sum loop.
///
/// Errors (naming the loop): no such loop; `lanes` out of range; the extent or start is
/// not a constant, or the extent is smaller than `lanes`; the loop is not serial; its
/// body is not a single update of an `f32` buffer whose element does not depend on the
/// loop (see [`reduction_of`]).
pub fn vectorize_reduction(
    func: &mut Function,
    loop_name: &str,
    lanes: i64,
) -> Result<Vec<String>, ScheduleError> {
    let err = |r: String| ScheduleError::illegal(P, loop_name, r);
    if !(2..=64).contains(&lanes) {
        return Err(err(format!("lanes must be between 2 and 64, got {lanes}")));
    }
    let taken = bound_names(&func.body);
    let name = |suffix: &str| fresh_name(&format!("{loop_name}_{suffix}"), &taken);
    let (acc, outer, lane, tail, sum) = (name("acc"), name("o"), name("l"), name("t"), name("r"));
    let params = func.params.clone();
    let mut local_f32 = Vec::new();
    for_each_stmt(&func.body, &mut |s| {
        if let Stmt::Allocate {
            name,
            dtype: DType::F32,
            ..
        } = s
        {
            local_f32.push(name.clone());
        }
    });
    let mut created = Vec::new();
    let body = replace_loop(&func.body, loop_name, P, &mut |s| {
        let l = parts(s).ok_or_else(|| err("not a loop".into()))?;
        if l.kind != ForKind::Serial {
            return Err(err(format!("the loop is {:?}, not serial", l.kind)));
        }
        let (Some(min), Some(extent)) = (const_int(l.min), const_int(l.extent)) else {
            return Err(err("the loop's start and extent must be constants".into()));
        };
        if extent < lanes {
            return Err(err(format!(
                "the loop runs {extent} iterations, fewer than {lanes} lanes"
            )));
        }
        let r = reduction_of(s).map_err(err)?;
        let f32_buffer = params
            .iter()
            .any(|p| p.name == r.buffer && p.dtype == DType::F32)
            || local_f32.contains(&r.buffer);
        if !f32_buffer {
            return Err(err(format!("`{}` is not an f32 buffer", r.buffer)));
        }
        let (q, t) = (extent / lanes, extent % lanes);
        let at = |k: Expr| substitute_expr(&r.term, l.var, &k);
        let lane_k = add(
            Expr::Int(min),
            add(mul(Expr::var(&outer), Expr::Int(lanes)), Expr::var(&lane)),
        );
        let update = |e: Expr| {
            Stmt::store(
                &r.buffer,
                r.indices.clone(),
                Expr::load(&r.buffer, r.indices.clone()) + e,
            )
        };
        let acc_at = |v: &str| vec![Expr::var(v)];
        let mut steps = vec![Stmt::for_(
            &outer,
            Expr::Int(0),
            Expr::Int(q),
            ForKind::Serial,
            Stmt::for_(
                &lane,
                Expr::Int(0),
                Expr::Int(lanes),
                ForKind::Vectorized,
                Stmt::store(
                    &acc,
                    acc_at(&lane),
                    Expr::load(&acc, acc_at(&lane)) + at(lane_k),
                ),
            ),
        )];
        created = vec![lane.clone()];
        if t > 0 {
            steps.push(Stmt::for_(
                &tail,
                Expr::Int(min + q * lanes),
                Expr::Int(t),
                ForKind::Serial,
                update(at(Expr::var(&tail))),
            ));
            created.push(tail.clone());
        }
        steps.push(Stmt::for_(
            &sum,
            Expr::Int(0),
            Expr::Int(lanes),
            ForKind::Serial,
            update(Expr::load(&acc, acc_at(&sum))),
        ));
        created.push(sum.clone());
        Ok(Stmt::Allocate {
            name: acc.clone(),
            dtype: DType::F32,
            shape: vec![lanes as usize],
            scope: MemScope::Local,
            body: Box::new(Stmt::Seq(steps)),
        })
    })?;
    func.body = body;
    Ok(created)
}
