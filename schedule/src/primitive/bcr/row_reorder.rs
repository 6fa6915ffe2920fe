//! Row reordering: rows that keep the same columns become one contiguous group.

use super::{find_block_loop, read_data, replace_block_loop, write_data, BcrData};
use crate::error::ScheduleError;
use crate::loops::{const_int, parts};
use crate::primitive::State;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tir::{Expr, Stmt};

/// The order of the groups made by [`reorder_rows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowOrder {
    /// By first kept column (so by block column), then by first row: the input is
    /// walked forward.
    BlockColumn,
    /// By number of rows, largest first (ties as `BlockColumn`): the heaviest groups
    /// start first, which balances threads that take groups in turn.
    RowCount,
}

/// Row reordering of weight `weight` (GRIM's "row reordering"): every set of entries
/// (blocks) of the weight that keep the *same* list of global columns — so blocks of
/// one block column, in different block rows — becomes one entry, a *group*, whose rows
/// are the union of the blocks' kept rows, ascending, and whose values are the blocks'
/// value rows re-laid out in that order. Groups are ordered by `order`.
///
/// The loop nest is unchanged except that the block loop now runs over the groups (its
/// constant extent changes) and the array parameters change shape; `W_rows` still holds
/// each row's output position, so results are written back in the right place. With
/// `BlockColumn` every output row still receives its products in the same order (block
/// column by block column), so results are bit-identical; `RowCount` may change that
/// order (a reassociated sum). The permutation of the rows is recorded in `W_rows`
/// (group after group). Applying it twice changes nothing the second time.
///
/// Legal when the weight is BCR (six arrays, valid data) and its block loop is as
/// lowered: `for (b, 0, nb)` with `nb` the constant entry count (not split, not
/// partitioned). Errors otherwise, naming the weight.
pub fn reorder_rows(
    state: &mut State,
    weight: &str,
    order: RowOrder,
) -> Result<Vec<String>, ScheduleError> {
    const P: &str = "reorder_rows";
    let d = read_data(state, weight, P)?;
    let bl = find_block_loop(&state.func, weight, P)?;
    let err = |r: String| ScheduleError::illegal(P, weight, r);
    if state.func.param(&format!("{weight}_brow_ptr")).is_some() {
        return Err(err(
            "rows are partitioned (partition_block_rows); reorder rows before partitioning".into(),
        ));
    }
    if const_int(&bl.min) != Some(0) || const_int(&bl.extent) != Some(d.len() as i64) {
        return Err(err(format!(
            "block loop `{}` no longer runs over 0..{} (split or partitioned?); reorder rows first",
            bl.var,
            d.len()
        )));
    }
    let grouped = group(&d, order).map_err(err)?;
    let ng = grouped.len();
    write_data(state, weight, &grouped, P)?;
    replace_block_loop(&mut state.func, &bl, P, |s| {
        let l = parts(s).ok_or_else(|| err("not a loop".into()))?;
        Ok(Stmt::for_(
            l.var,
            l.min.clone(),
            Expr::Int(ng as i64),
            l.kind,
            l.body.clone(),
        ))
    })?;
    Ok(Vec::new())
}

/// A kept row and its values.
type RowValues<'a> = (i32, &'a [f32]);

/// Groups the entries of `d` by column list (see [`reorder_rows`]).
pub fn group(d: &BcrData, order: RowOrder) -> Result<BcrData, String> {
    // Column list -> (row, value row) pairs, in entry order.
    let mut groups: BTreeMap<&[i32], Vec<RowValues<'_>>> = BTreeMap::new();
    for b in 0..d.len() {
        let nc = d.cols_of(b).len();
        let vals = d.vals_of(b);
        let entry = groups.entry(d.cols_of(b)).or_default();
        for (i, r) in d.rows_of(b).iter().enumerate() {
            entry.push((*r, &vals[i * nc..(i + 1) * nc]));
        }
    }
    let mut list: Vec<(&[i32], Vec<RowValues<'_>>)> = groups.into_iter().collect();
    for (_, rows) in list.iter_mut() {
        rows.sort_by_key(|(r, _)| *r); // stable: equal rows keep entry order
    }
    let key = |cols: &[i32], rows: &[RowValues<'_>]| {
        (
            cols.first().copied().unwrap_or(i32::MAX),
            rows.first().map(|r| r.0).unwrap_or(i32::MAX),
        )
    };
    match order {
        RowOrder::BlockColumn => list.sort_by_key(|(c, r)| key(c, r)),
        RowOrder::RowCount => {
            list.sort_by_key(|(c, r)| (std::cmp::Reverse(r.len()), key(c, r)));
        }
    }
    BcrData::from_entries(list.into_iter().map(|(cols, rows)| {
        let rs: Vec<i32> = rows.iter().map(|r| r.0).collect();
        let vs: Vec<f32> = rows.iter().flat_map(|r| r.1.iter().copied()).collect();
        (rs, cols, vs)
    }))
}
