//! Parallel parts over a convolution's output rows, around a BCR block loop.
//!
//! [`super::partition_block_rows`] runs disjoint block rows in parallel, which needs
//! several block rows: a conv 3x3 64->64 with 64x16 blocks has one, with 32x32 two
//! of unequal work. Every entry of a conv's weight updates all of the output's rows
//! (`oh`), so the rows themselves can be shared out: each part runs every entry over
//! its own range of output rows, and no two parts write the same output.

use super::{
    find_block_loop, in_parallel, outputs_indexed_by, read_data_layout, replace_block_loop,
    taken_names,
};
use crate::error::ScheduleError;
use crate::loops::{const_int, fresh_name, parts, replace_loop};
use crate::primitive::State;
use tir::visit::for_each_stmt;
use tir::{Expr, ForKind, Stmt};

const P: &str = "partition_output_rows";

/// The loop variable of a conv's output rows, as lowering names it (a function with
/// a loop of this name is one [`partition_output_rows`] can apply to).
pub const OUTPUT_ROWS: &str = "oh";

/// The output-row loops this primitive restricts: lowering's `oh` and the register
/// tile's tail nest's copy of it.
const KNOWN_ROW_LOOPS: [&str; 2] = [OUTPUT_ROWS, "oh_t"];

/// Splits the output rows of the conv whose BCR weight is `weight` into `parts`
/// parallel parts around its block loop:
///
/// ```text
/// parallel for (oh_part, 0, parts') {
///   for (b, ..) { .. for (oh, oh_part * R, min(OH - oh_part * R, R)) { .. } .. }
/// }
/// ```
///
/// with `R = ceil(OH / parts)` rows per part and `parts' = ceil(OH / R)` (so no part is
/// empty). Every output-row loop of the block loop is restricted alike: `oh` and the
/// register tile's tail nest's copy `oh_t` (other loops named `oh_*` are refused). The
/// entry's own work outside those loops (its column-decoding table, for instance) is
/// done once per part. Proof of the parallel loop: every store inside the block loop to
/// a buffer not allocated there, and every load of such a buffer, indexes one fixed
/// position with an output-row variable itself, so parts write disjoint outputs; each
/// output still sums the entries in the same order (results are bit-identical).
/// Returns the new loop's name.
///
/// Errors (naming the weight; the schedule is unchanged): not BCR; `parts` below 2; no
/// loop over `oh` with a constant extent in the block loop (only convolutions have
/// one), output-row loops with other bounds (split, or already partitioned), other
/// loops named `oh_*` or a row loop name bound twice; fewer
/// than 2 output rows; the block loop already inside a parallel loop; an output access
/// without an output-row variable at a fixed position.
pub fn partition_output_rows(
    state: &mut State,
    weight: &str,
    parts_wanted: i64,
) -> Result<Vec<String>, ScheduleError> {
    read_data_layout(state, weight, P, true)?;
    let bl = find_block_loop(&state.func, weight, P)?;
    let err = |r: String| ScheduleError::illegal(P, weight, r);
    if parts_wanted < 2 {
        return Err(err(format!(
            "a partition needs at least 2 parts, got {parts_wanted}"
        )));
    }
    // The output-row loops: `oh`, and the copies other primitives made of it (the
    // register tile's tail nest has `oh_t`).
    let is_row_loop = |v: &str| v == OUTPUT_ROWS || v.starts_with(&format!("{OUTPUT_ROWS}_"));
    let mut row_loops: Vec<(String, Option<i64>, Option<i64>)> = Vec::new();
    for_each_stmt(&bl.rest, &mut |s| {
        if let Some(l) = parts(s) {
            if is_row_loop(l.var) {
                row_loops.push((l.var.to_string(), const_int(l.min), const_int(l.extent)));
            }
        }
    });
    // Only the copies known to be the same output rows are restricted; a loop whose
    // name merely starts like them, or a name bound twice, is not guessed at.
    for (k, (var, ..)) in row_loops.iter().enumerate() {
        if !KNOWN_ROW_LOOPS.contains(&var.as_str()) {
            return Err(err(format!(
                "the block loop of `{weight}` has a loop `{var}` named like an output-row \
                 loop but not one of {KNOWN_ROW_LOOPS:?}; partition the rows before the \
                 primitive that made it"
            )));
        }
        if row_loops[..k].iter().any(|(v, ..)| v == var) {
            return Err(err(format!(
                "the block loop of `{weight}` has two loops named `{var}`"
            )));
        }
    }
    let Some((first_var, _, first_extent)) = row_loops.first().cloned() else {
        return Err(err(format!(
            "the block loop of `{weight}` has no loop over output rows (`{OUTPUT_ROWS}`): \
             only convolutions have one"
        )));
    };
    let rows = first_extent.unwrap_or(0);
    if let Some((var, ..)) = row_loops
        .iter()
        .find(|(_, min, extent)| *min != Some(0) || extent.is_none() || *extent != first_extent)
    {
        return Err(err(format!(
            "the output-row loop `{var}` does not run over 0..N with the constant N of \
             `{first_var}` (was it split, or are the rows already partitioned?)"
        )));
    }
    if rows < 2 {
        return Err(err(format!(
            "the output has {rows} row(s): nothing to share out"
        )));
    }
    if in_parallel(&state.func.body, &bl.var) {
        return Err(err(format!(
            "the block loop `{}` already runs inside a parallel loop (partition_block_rows?)",
            bl.var
        )));
    }
    let row_vars: Vec<&str> = row_loops.iter().map(|(v, ..)| v.as_str()).collect();
    if let Err(buffer) = outputs_indexed_by(
        &bl.body,
        &|e: &Expr| matches!(e, Expr::Var(v) if row_vars.contains(&v.as_str())),
    ) {
        return Err(err(format!(
            "`{buffer}` is written in the block loop but not accessed at a fixed index \
             `{OUTPUT_ROWS}` everywhere: the parts' outputs could overlap"
        )));
    }
    let per = (rows + parts_wanted.min(rows) - 1) / parts_wanted.min(rows);
    let count = (rows + per - 1) / per;
    let taken = taken_names(&state.func);
    let part = fresh_name(&format!("{}oh_part", bl.prefix()), &taken);
    let first = Expr::var(&part) * Expr::Int(per);
    replace_block_loop(&mut state.func, &bl, P, |s| {
        let mut restricted = s.clone();
        for var in &row_vars {
            restricted = replace_loop(&restricted, var, P, &mut |l| {
                let l = parts(l).ok_or_else(|| err("not a loop".into()))?;
                Ok(Stmt::for_(
                    l.var,
                    first.clone(),
                    (Expr::Int(rows) - first.clone()).min(Expr::Int(per)),
                    l.kind,
                    l.body.clone(),
                ))
            })?;
        }
        Ok(Stmt::for_(
            &part,
            Expr::Int(0),
            Expr::Int(count),
            ForKind::Parallel,
            restricted,
        ))
    })?;
    Ok(vec![part])
}
