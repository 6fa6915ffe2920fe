//! Column reordering: permute the weight's columns and the matching input rows.

use super::{find_block_loop, map_stmt_exprs, read_data, replace_block_loop, set_weight};
use crate::error::ScheduleError;
use crate::loops::fresh_name;
use crate::primitive::State;
use serde::{Deserialize, Serialize};
use tir::visit::{bound_names, for_each_load, for_each_stmt, stmt_exprs};
use tir::{DType, Expr, MemScope, ParamKind, Stmt, Tensor};

/// How [`reorder_columns`] chooses the permutation `π` (position -> original column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnOrder {
    /// Columns in order of first use: walking the entries (blocks or groups) in storage
    /// order and each entry's kept columns in order, a column gets the next free
    /// position the first time it is met; unused columns go last, ascending. The
    /// entries' gathers then walk `X_perm` forward and the columns of consecutive
    /// entries sit next to each other.
    FirstUse,
    /// Most used columns first (by the number of entries keeping them; ties by
    /// column): the hottest input rows share cache lines.
    UseCount,
}

/// Column reordering of weight `weight`: chooses a permutation `π` of the `K` input
/// rows by `order`, adds a weight array `W_colperm: i32[K]` holding `π`, and, just
/// before the block loop, a gather stage into a new buffer
/// `X_perm: f32[K, N] global` (`X` is the input the weight multiplies, e.g. `x_perm`,
/// `h_prev_perm` for a GRU):
///
/// ```text
/// for (perm_k, 0, K) { for (perm_n, 0, N) { X_perm[perm_k, perm_n] = X[W_colperm[perm_k], perm_n]; } }
/// ```
///
/// `W_cols` is remapped to positions in `X_perm` (`π⁻¹`), and every load of `X` in the
/// block loop reads `X_perm` at the same indices, so the results are identical.
///
/// Legal when the weight is BCR with its block loop as lowered (not partitioned:
/// reorder columns before [`super::partition_block_rows`]), not already reordered,
/// and every load of the input in the block loop has a kept column (a `let` loading
/// `W_cols`) as its first index on a 2-D input — FC, GRU and LSTM. A conv's columns
/// are (channel, tap) pairs that do not index the input directly; it is refused.
pub fn reorder_columns(
    state: &mut State,
    weight: &str,
    order: ColumnOrder,
) -> Result<Vec<String>, ScheduleError> {
    const P: &str = "reorder_columns";
    let mut d = read_data(state, weight, P)?;
    let bl = find_block_loop(&state.func, weight, P)?;
    let err = |r: String| ScheduleError::illegal(P, weight, r);
    let perm_name = format!("{weight}_colperm");
    if state.func.param(&perm_name).is_some() {
        return Err(err(format!(
            "columns of `{weight}` are already reordered (`{perm_name}` exists)"
        )));
    }
    if state.func.param(&format!("{weight}_brow_ptr")).is_some() {
        return Err(err(
            "rows are partitioned (partition_block_rows); reorder columns before partitioning"
                .into(),
        ));
    }
    // Variables holding a kept column.
    let cols_arr = format!("{weight}_cols");
    let col_vars: Vec<String> = super::lets_loading(&bl.body, &cols_arr)
        .into_iter()
        .filter_map(|s| match s {
            Stmt::Let { var, .. } => Some(var.clone()),
            _ => None,
        })
        .collect();
    // The input: the buffer loaded with a kept column as first index.
    let mut inputs: Vec<String> = Vec::new();
    for_each_stmt(&bl.body, &mut |s| {
        for e in stmt_exprs(s) {
            for_each_load(e, &mut |b, idx| {
                if idx
                    .iter()
                    .any(|i| col_vars.iter().any(|c| tir::visit::expr_uses_var(i, c)))
                    && !inputs.iter().any(|x| x == b)
                {
                    inputs.push(b.to_string());
                }
            });
        }
    });
    let input = match inputs.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(err(
                "no input load is indexed by a kept column directly (column reordering \
                 supports FC, GRU and LSTM; a conv decodes its columns into channel and taps)"
                    .into(),
            ))
        }
        many => {
            return Err(err(format!(
                "several buffers are indexed by kept columns ({}); expected one input",
                many.join(", ")
            )))
        }
    };
    let shape = match state.func.param(&input) {
        Some(p) if p.kind == ParamKind::Input && p.shape.len() == 2 => p.shape.clone(),
        _ => {
            return Err(err(format!(
                "the input `{input}` is not a 2-D input parameter indexed by the column \
                 (column reordering supports FC, GRU and LSTM, not conv)"
            )))
        }
    };
    let mut bad = None;
    for_each_stmt(&bl.body, &mut |s| {
        for e in stmt_exprs(s) {
            for_each_load(e, &mut |b, idx| {
                if b == input && !matches!(idx.first(), Some(Expr::Var(v)) if col_vars.contains(v))
                {
                    bad = Some(tir::print_expr(&Expr::load(b, idx.to_vec())));
                }
            });
        }
    });
    if let Some(b) = bad {
        return Err(err(format!(
            "load `{b}` of the input is not indexed by a kept column first \
             (column reordering supports FC, GRU and LSTM, not conv)"
        )));
    }
    let k = shape[0];
    if let Some(c) = d.cols.iter().find(|c| **c as usize >= k) {
        return Err(err(format!("column {c} is outside the input's {k} rows")));
    }
    let pi = permutation(&d, k, order);
    let mut inv = vec![0i32; k];
    for (pos, col) in pi.iter().enumerate() {
        inv[*col as usize] = pos as i32;
    }
    for c in d.cols.iter_mut() {
        *c = inv[*c as usize];
    }
    super::write_data(state, weight, &d, P)?;
    let t = Tensor::i32(vec![k], pi).map_err(|e| err(e.to_string()))?;
    set_weight(state, &perm_name, t);
    // The gather stage and the remapped loads.
    let taken: Vec<String> = bound_names(&state.func.body)
        .into_iter()
        .chain(state.func.params.iter().map(|p| p.name.clone()))
        .collect();
    let pre = bl.prefix().to_string();
    let xperm = fresh_name(&format!("{input}_perm"), &taken);
    let (pk, pn) = (
        fresh_name(&format!("{pre}perm_k"), &taken),
        fresh_name(&format!("{pre}perm_n"), &taken),
    );
    let gather = Stmt::serial(
        &pk,
        Expr::Int(k as i64),
        Stmt::serial(
            &pn,
            Expr::Int(shape[1] as i64),
            Stmt::store(
                &xperm,
                vec![Expr::var(&pk), Expr::var(&pn)],
                Expr::load(
                    &input,
                    vec![Expr::load(&perm_name, vec![Expr::var(&pk)]), Expr::var(&pn)],
                ),
            ),
        ),
    );
    replace_block_loop(&mut state.func, &bl, P, |s| {
        let remapped = map_stmt_exprs(s, &mut |e| match e {
            Expr::Load { buffer, indices } if buffer == input => Expr::Load {
                buffer: xperm.clone(),
                indices,
            },
            other => other,
        });
        Ok(Stmt::Allocate {
            name: xperm.clone(),
            dtype: DType::F32,
            shape: shape.clone(),
            scope: MemScope::Global,
            body: Box::new(Stmt::Seq(vec![gather, remapped])),
        })
    })?;
    Ok(vec![pk, pn])
}

/// The permutation (position -> original column) chosen by `order` for `K = k`.
pub fn permutation(d: &super::BcrData, k: usize, order: ColumnOrder) -> Vec<i32> {
    let mut out: Vec<i32> = Vec::with_capacity(k);
    let mut seen = vec![false; k];
    match order {
        ColumnOrder::FirstUse => {
            for c in &d.cols {
                let c = *c as usize;
                if c < k && !seen[c] {
                    seen[c] = true;
                    out.push(c as i32);
                }
            }
        }
        ColumnOrder::UseCount => {
            let mut count = vec![0usize; k];
            for c in &d.cols {
                if let Some(x) = count.get_mut(*c as usize) {
                    *x += 1;
                }
            }
            let mut used: Vec<usize> = (0..k).filter(|c| count[*c] > 0).collect();
            used.sort_by_key(|c| (std::cmp::Reverse(count[*c]), *c));
            for c in used {
                seen[c] = true;
                out.push(c as i32);
            }
        }
    }
    out.extend((0..k).filter(|c| !seen[*c]).map(|c| c as i32));
    out
}
