//! Block tiling: rows and output columns per inner kernel, and the partition of the
//! entries into disjoint row ranges, run in parallel when the data proves it legal.

use super::{
    find_block_loop, in_parallel, lets_loading, outputs_indexed_by, read_data, replace_block_loop,
    BcrData,
};
use crate::error::ScheduleError;
use crate::loops::{const_int, find_loop, fresh_name, parts};
use crate::primitive::loop_transformation::{split, Remainder};
use crate::primitive::State;
use std::collections::BTreeMap;
use tir::visit::{bound_names, expr_loads_buffer, expr_uses_var, for_each_stmt};
use tir::{Expr, ForKind, Stmt, Tensor};

/// Block tiling of weight `weight`: each inner kernel computes `rows` kept rows of an
/// entry (the rows loop `i`, whose extent is data dependent, is split by
/// `[None, rows]` with `remainder`, which must be `Guard` or `Tail`) and, when `cols`
/// is given, `cols` output columns (the innermost loop around the update — `n` for FC
/// and RNNs, `ow` for conv — is split by `[None, cols]`, exactly when `cols` divides
/// its constant extent, else with `remainder`). The output-column split is done first
/// so that a row tail gets it too. Returns the loops created (see
/// [`crate::primitive::loop_transformation::split`] for their names), the column
/// split's first.
///
/// How many *entries* (blocks or groups) one kernel covers is the block loop itself:
/// split it with `split` after the BCR data primitives.
///
/// Errors: not BCR; `rows` or `cols` not positive; `Exact` remainder (the rows extent
/// is data dependent); the rows loop was already split (tiled twice); no loop around
/// the update to split for `cols`, or several copies of the kernel body.
pub fn tile_blocks(
    state: &mut State,
    weight: &str,
    rows: i64,
    cols: Option<i64>,
    remainder: Remainder,
) -> Result<Vec<String>, ScheduleError> {
    const P: &str = "tile_blocks";
    read_data(state, weight, P)?;
    let bl = find_block_loop(&state.func, weight, P)?;
    let err = |r: String| ScheduleError::illegal(P, weight, r);
    if rows <= 0 || cols.is_some_and(|c| c <= 0) {
        return Err(err(format!(
            "rows per kernel ({rows}) and columns per kernel ({}) must be positive",
            cols.map(|c| c.to_string()).unwrap_or_else(|| "-".into())
        )));
    }
    if remainder == Remainder::Exact {
        return Err(err(
            "the kept-rows count differs from block to block: use the guard or tail remainder"
                .into(),
        ));
    }
    let row_ptr = format!("{weight}_row_ptr");
    let mut row_loops: Vec<String> = Vec::new();
    for_each_stmt(&bl.rest, &mut |s| {
        if let Stmt::For { var, extent, .. } = s {
            if expr_loads_buffer(extent, &row_ptr) {
                row_loops.push(var.clone());
            }
        }
    });
    let [i_loop] = row_loops.as_slice() else {
        return Err(err(format!(
            "the loop over an entry's kept rows (extent `{row_ptr}[b + 1] - r0`) is not there \
             (found {}): tile_blocks was already applied or the loop was split",
            row_loops.len()
        )));
    };
    let i_loop = i_loop.clone();
    let mut created = Vec::new();
    if let Some(c) = cols {
        let w_lets = lets_loading(&bl.rest, &format!("{weight}_val"));
        let [Stmt::Let { var: w, body, .. }] = w_lets.as_slice() else {
            return Err(err(format!(
                "expected one `let w = {weight}_val[..]`, found {}",
                w_lets.len()
            )));
        };
        let n_loop = innermost_loop_around_use(body, w).ok_or_else(|| {
            err("no loop between the value and the update to tile by columns".into())
        })?;
        let extent = find_loop(&state.func.body, &n_loop)
            .and_then(parts)
            .and_then(|l| const_int(l.extent));
        let rem = match extent {
            Some(e) if e % c == 0 => Remainder::Exact,
            _ => remainder,
        };
        created.extend(split(&mut state.func, &n_loop, &[None, Some(c)], rem)?);
    }
    created.extend(split(
        &mut state.func,
        &i_loop,
        &[None, Some(rows)],
        remainder,
    )?);
    Ok(created)
}

/// The innermost loop in `s` enclosing a store whose value uses `var`.
fn innermost_loop_around_use(s: &Stmt, var: &str) -> Option<String> {
    fn go(s: &Stmt, var: &str, stack: &mut Vec<String>) -> Option<String> {
        match s {
            Stmt::Store { value, .. } if expr_uses_var(value, var) => stack.last().cloned(),
            Stmt::Store { .. } | Stmt::Prefetch { .. } => None,
            Stmt::For { var: v, body, .. } => {
                stack.push(v.clone());
                let r = go(body, var, stack);
                stack.pop();
                r
            }
            Stmt::Let { body, .. } | Stmt::Allocate { body, .. } => go(body, var, stack),
            Stmt::Seq(items) => items.iter().find_map(|i| go(i, var, stack)),
            Stmt::If {
                then, otherwise, ..
            } => {
                go(then, var, stack).or_else(|| otherwise.as_ref().and_then(|o| go(o, var, stack)))
            }
        }
    }
    go(s, var, &mut Vec::new())
}

/// Partitions the entries of weight `weight` into disjoint row ranges and adds an
/// outer loop over them (`brow`, with the nest's prefix, e.g. `gi_brow`):
///
/// ```text
/// for (brow, 0, np) parallel {
///   for (b, W_brow_ptr[brow], W_brow_ptr[brow + 1] - W_brow_ptr[brow]) { ...unchanged... }
/// }
/// ```
///
/// Entries are sorted (stably) by their first row and cut into the finest partitions
/// whose row intervals `[min row, max row]` do not overlap; with the lowered blocks
/// these are the block rows, after [`super::reorder_rows`] (groups spanning several
/// block rows) they may be coarser. `W_brow_ptr: i32[np + 1]` holds the partitions'
/// first entries.
///
/// The outer loop is made `parallel` only when that is proven: from the *data*, the
/// sets of rows written by different partitions are disjoint (checked on `W_rows`),
/// and from the *code*, every store of the block loop to a buffer not allocated in it
/// and every load of such a buffer has a row (a `let` loading `W_rows`) at one fixed
/// index position, and no enclosing loop is parallel or bound. The static dependence
/// analysis of [`crate::analysis`] cannot see this (the row is an indirect load), so
/// this data-proven legality is the only way such a loop becomes parallel. When it is
/// not proven the loop stays serial; [`crate::Schedule::partition_block_rows`] reports
/// which.
///
/// Errors: not BCR; the block loop is not `for (b, 0, nb)` (split, or already
/// partitioned).
pub fn partition_block_rows(state: &mut State, weight: &str) -> Result<Vec<String>, ScheduleError> {
    const P: &str = "partition_block_rows";
    let d = super::read_data_layout(state, weight, P, true)?;
    let bl = find_block_loop(&state.func, weight, P)?;
    let err = |r: String| ScheduleError::illegal(P, weight, r);
    let brow_ptr = format!("{weight}_brow_ptr");
    if state.func.param(&brow_ptr).is_some() {
        return Err(err(format!("rows of `{weight}` are already partitioned")));
    }
    if const_int(&bl.min) != Some(0) || const_int(&bl.extent) != Some(d.len() as i64) {
        return Err(err(format!(
            "block loop `{}` no longer runs over 0..{} (was it split?); partition before splitting it",
            bl.var,
            d.len()
        )));
    }
    // Sort the entries by first row and cut where intervals do not overlap.
    let interval = |b: usize| {
        let r = d.rows_of(b);
        (r.iter().min().copied(), r.iter().max().copied())
    };
    let mut order: Vec<usize> = (0..d.len()).collect();
    order.sort_by_key(|b| interval(*b).0.unwrap_or(i32::MIN));
    let mut ptr: Vec<i32> = vec![0];
    let mut cur_max: Option<i32> = None;
    for (k, b) in order.iter().enumerate() {
        if let (Some(lo), Some(hi)) = interval(*b) {
            if let Some(m) = cur_max {
                if lo > m {
                    ptr.push(k as i32);
                }
            }
            cur_max = Some(cur_max.map_or(hi, |m| m.max(hi)));
        }
    }
    if !d.is_empty() {
        ptr.push(d.len() as i32);
    }
    let sorted = BcrData::from_entries(order.iter().map(|b| {
        (
            d.rows_of(*b).to_vec(),
            d.cols_of(*b),
            d.vals_of(*b).to_vec(),
        )
    }))
    .map_err(err)?;
    let parts_n = ptr.len() - 1;
    // Data proof: the row sets of different partitions are disjoint.
    let mut owner: BTreeMap<i32, usize> = BTreeMap::new();
    let mut disjoint = true;
    for p in 0..parts_n {
        for b in ptr[p] as usize..ptr[p + 1] as usize {
            for r in sorted.rows_of(b) {
                if *owner.entry(*r).or_insert(p) != p {
                    disjoint = false;
                }
            }
        }
    }
    let parallel =
        disjoint && writes_only_rows(&bl.body, weight) && !in_parallel(&state.func.body, &bl.var);
    super::write_data(state, weight, &sorted, P)?;
    let t = Tensor::i32(vec![ptr.len()], ptr).map_err(|e| err(e.to_string()))?;
    super::set_weight(state, &brow_ptr, t);
    let taken: Vec<String> = bound_names(&state.func.body);
    let brow = fresh_name(&format!("{}brow", bl.prefix()), &taken);
    let at = |e: Expr| Expr::load(&brow_ptr, vec![e]);
    replace_block_loop(&mut state.func, &bl, P, |s| {
        let l = parts(s).ok_or_else(|| err("not a loop".into()))?;
        let start = at(Expr::var(&brow));
        let inner = Stmt::for_(
            l.var,
            start.clone(),
            at(Expr::var(&brow) + Expr::Int(1)) - start,
            l.kind,
            l.body.clone(),
        );
        let kind = if parallel {
            ForKind::Parallel
        } else {
            ForKind::Serial
        };
        Ok(Stmt::for_(
            &brow,
            Expr::Int(0),
            Expr::Int(parts_n as i64),
            kind,
            inner,
        ))
    })?;
    Ok(vec![brow])
}

/// True when every store in `body` to a buffer not allocated in it, and every load of
/// such a buffer, has a row variable (bound to a load of `W_rows`) at one fixed index
/// position per buffer.
fn writes_only_rows(body: &Stmt, weight: &str) -> bool {
    let rows_arr = format!("{weight}_rows");
    let row_vars: Vec<String> = lets_loading(body, &rows_arr)
        .into_iter()
        .filter_map(|s| match s {
            Stmt::Let { var, .. } => Some(var.clone()),
            _ => None,
        })
        .collect();
    outputs_indexed_by(
        body,
        &|e: &Expr| matches!(e, Expr::Var(v) if row_vars.contains(v)),
    )
    .is_ok()
}
