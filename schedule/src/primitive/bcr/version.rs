//! Versioning by kept-column count: when the entries of a BCR weight differ in shape,
//! each common column count gets its own copy of the entry's code with the count a
//! constant.
//!
//! [`super::specialize_offsets`] makes every per-entry loop constant, but only when all
//! entries have one shape. Patterns whose blocks keep different numbers of columns (the
//! kept weights spread over the blocks, [`tir::Spread::AcrossBlocks`], as GRIM's
//! regularized training leaves them) keep a kept-columns loop whose trip count changes
//! from entry to entry: the C compiler cannot unroll it, keeps the loop-carried
//! addresses and decoded columns in memory, and the loop exit is mispredicted whenever
//! the count changes. On a conv 64->128 7x7 (3x3, 16x16 blocks at 75%, one-row
//! register tiles, tabulated column decoding, host, 1 thread), the same schedule ran
//! 92 us with offsets specialized on uniform blocks, 132 us with them loaded, and 213
//! us on blocks with the same number of weights spread unevenly (4 to 13 kept columns
//! per block).
//!
//! Versioning keeps the offsets loaded and branches once per entry on its column
//! count:
//!
//! ```text
//! for (b, 0, nb) { let r0 = ..; let c0 = ..; let v0 = ..; let nc = W_col_ptr[b + 1] - c0;
//!   if nc == 8 { REST[nc := 8] } else if nc == 7 { REST[nc := 7] } .. else { REST } }
//! ```
//!
//! The counts with the most kept weights come first, at most [`MAX_VERSIONS`] of
//! them; in each copy of up to [`MAX_UNROLLED`] columns the kept-columns loops are
//! unrolled; the last branch is the unchanged body, so the function computes the same for
//! any data (a trace replayed on another pattern stays correct, only slower where its
//! counts differ). Every copy's loops and lets are renamed (`_c8` and so on) so loop
//! names stay unique.
//!
//! Measured (same conv and schedule): versioned 95.5 us; with the copies' kept-columns
//! loops unrolled 66 us, and on the MNIST CNN's spread `conv_layers.6` (the same shape,
//! more counts of 10 to 15 columns, which GCC left rolled) 124 -> 66.5 us. On uniform
//! blocks the one unrolled copy also beat specialized offsets there (66 against 91
//! us), but not on the 56-wide benchmark conv with 5-row tiles (about 5% slower), so
//! the tuner measures both.

use super::{find_block_loop, read_data_layout, replace_block_loop, with_rest};
use crate::error::ScheduleError;
use crate::loops::parts;
use crate::primitive::loop_transformation::rename_loops;
use crate::primitive::State;
use std::collections::BTreeMap;
use tir::visit::{bound_names, map_stmt, substitute_stmt};
use tir::{BinOp, Expr, ForKind, Stmt};

const P: &str = "version_column_counts";

/// Most copies of an entry's code (one per column count); counts beyond them run the
/// unchanged body. 16 covers every count of a 16-column block.
pub const MAX_VERSIONS: usize = 16;

/// The column counts that get a copy, for entries keeping `cols[b]` columns and
/// `weights[b]` weights: by kept weights, most first (ties: the smaller count first),
/// at most [`MAX_VERSIONS`]; empty entries (no column) are left to the unchanged body.
pub fn version_counts(cols: &[usize], weights: &[usize]) -> Vec<i64> {
    let mut work: BTreeMap<usize, usize> = BTreeMap::new();
    for (c, w) in cols.iter().zip(weights) {
        if *c > 0 {
            *work.entry(*c).or_default() += w;
        }
    }
    let mut by_work: Vec<(usize, usize)> = work.into_iter().collect();
    by_work.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    by_work
        .into_iter()
        .take(MAX_VERSIONS)
        .map(|(c, _)| c as i64)
        .collect()
}

/// Copies for at most this many columns have their kept-columns loops unrolled.
pub const MAX_UNROLLED: i64 = 16;

/// `s` with every serial loop over the kept columns (extent `nc`) unrolled, `k`
/// iterations: GCC unrolls such constant loops itself only up to about 8 iterations,
/// and a register tile left in a rolled loop stays in memory (a 7-wide conv's one-row
/// tile: a store and a reload around every multiply-add).
pub(crate) fn unroll_count_loops(s: &Stmt, nc: &str, k: i64) -> Stmt {
    map_stmt(s, &mut |st| {
        let l = parts(st)?;
        let over_count = matches!(l.extent, Expr::Var(v) if v == nc);
        (over_count && l.kind == ForKind::Serial).then(|| {
            Stmt::for_(
                l.var,
                l.min.clone(),
                Expr::Int(k),
                ForKind::Unrolled,
                unroll_count_loops(l.body, nc, k),
            )
        })
    })
}

/// True when `rest` (a block loop's body under its header) is already versioned on
/// the count `nc`.
pub(crate) fn is_versioned(rest: &Stmt, nc: &str) -> bool {
    matches!(rest, Stmt::If { cond: Expr::Binary(BinOp::Eq, a, k), .. }
        if matches!(&**a, Expr::Var(v) if v == nc) && matches!(&**k, Expr::Int(_)))
}

/// Versioning of weight `weight`'s entry body by kept-column count (see the [module
/// docs](self)). Meant to be the last BCR primitive of a weight, in place of
/// [`super::specialize_offsets`] where the entries differ in shape: the other BCR
/// primitives refuse the weight afterwards. Returns no loops.
///
/// Errors (naming the weight): not BCR; no entry keeps a column; the block loop is
/// not as the BCR primitives leave it (or is versioned already).
pub fn version_column_counts(
    state: &mut State,
    weight: &str,
) -> Result<Vec<String>, ScheduleError> {
    let d = read_data_layout(state, weight, P, true)?;
    let bl = find_block_loop(&state.func, weight, P)?;
    let cols: Vec<usize> = (0..d.len()).map(|b| d.cols_of(b).len()).collect();
    let weights: Vec<usize> = (0..d.len())
        .map(|b| d.cols_of(b).len() * d.rows_of(b).len())
        .collect();
    let counts = version_counts(&cols, &weights);
    if counts.is_empty() {
        return Err(ScheduleError::illegal(
            P,
            weight,
            format!("no entry of `{weight}` keeps a column"),
        ));
    }
    let taken = bound_names(&state.func.body);
    let mut versioned = bl.rest.clone();
    for k in counts.iter().rev() {
        let unrolled = if *k <= MAX_UNROLLED {
            unroll_count_loops(&bl.rest, &bl.nc, *k)
        } else {
            bl.rest.clone()
        };
        let copy = substitute_stmt(&unrolled, &bl.nc, &Expr::Int(*k));
        versioned = Stmt::If {
            cond: Expr::var(&bl.nc).eq_(Expr::Int(*k)),
            then: Box::new(rename_loops(&copy, &format!("_c{k}"), &taken)),
            otherwise: Some(Box::new(versioned)),
        };
    }
    replace_block_loop(&mut state.func, &bl, P, |s| Ok(with_rest(s, versioned)))?;
    Ok(Vec::new())
}
