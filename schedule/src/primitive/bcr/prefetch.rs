//! Software prefetch of a BCR weight's values: each entry asks for the cache lines of
//! an entry some way ahead, so the value stream arrives from L2 before it is needed.
//!
//! An FC or recurrent kernel at high sparsity does a few multiply-adds per entry (5 x 5
//! at 90% with 16x16 blocks) between loads of the next entry's values, so the hardware
//! prefetchers, which follow the index arrays and values as separate streams, leave
//! part of each entry's value latency exposed. On FC 2048 at 90% (the tuned kernels of
//! the tenth session's benchmark, hand-edited C, same inputs, identical outputs), two
//! prefetches per entry 32 entries (3.2 KB) ahead took the 16x16 kernel from 67-69 us to
//! 55-58 us; seven per entry 8-16 entries (3.2-6.4 KB) ahead the 32x32 kernel from 43-44
//! us to 35-37 us.

use super::{find_block_loop, read_data_layout, replace_block_loop, with_rest};
use crate::error::ScheduleError;
use crate::loops::fresh_name;
use crate::primitive::State;
use tir::visit::{bound_names, for_each_stmt};
use tir::{Expr, ForKind, Stmt};

const P: &str = "prefetch_values";

/// Bytes of a cache line (64 on the x86-64 and Arm cores grim targets).
pub const CACHE_LINE_BYTES: usize = 64;

/// Most prefetches issued per entry (an entry larger than this many cache lines gets
/// its first lines prefetched only).
pub const MAX_PREFETCH_LINES: usize = 32;

/// Software prefetch of weight `weight`'s values about `bytes_ahead` bytes ahead. With
/// `E` stored values per entry on average (all entries' values over their count), the
/// block loop's body starts with
///
/// ```text
/// unrolled for (pf, 0, L) {
///   prefetch W_val[min(W_val_ptr[min(b + D, nb - 1)] + pf * 16, len - 1)]; }
/// ```
///
/// where `D = ceil(bytes_ahead / 4E)` entries (at least 1) and `L = ceil(4E / 64)`
/// cache lines (1 to [`MAX_PREFETCH_LINES`]): the lines of the entry `D` ahead, clamped
/// to the last entry and the last value so every index is in bounds. Values and
/// results are unchanged (a prefetch reads nothing). Goes after the primitives that
/// restructure the entry's loops and before [`super::specialize_offsets`], which turns
/// the offset load into `min(b + D, nb - 1) * E`.
///
/// Errors (naming the weight; the schedule is unchanged): not BCR; `bytes_ahead` not
/// positive; no stored value; already applied (the block loop prefetches the values).
pub fn prefetch_values(
    state: &mut State,
    weight: &str,
    bytes_ahead: i64,
) -> Result<Vec<String>, ScheduleError> {
    let d = read_data_layout(state, weight, P, true)?;
    let bl = find_block_loop(&state.func, weight, P)?;
    let err = |r: String| ScheduleError::illegal(P, weight, r);
    if bytes_ahead <= 0 {
        return Err(err(format!(
            "the prefetch distance must be positive, got {bytes_ahead} bytes"
        )));
    }
    let val = format!("{weight}_val");
    let entries = d.len();
    if entries == 0 || d.val.is_empty() {
        return Err(err(format!("`{val}` stores no value: nothing to prefetch")));
    }
    let mut already = false;
    for_each_stmt(&bl.rest, &mut |s| {
        already |= matches!(s, Stmt::Prefetch { buffer, .. } if *buffer == val);
    });
    if already {
        return Err(err(format!("the values `{val}` are already prefetched")));
    }
    let entry_bytes = (d.val.len() * 4).div_ceil(entries).max(1);
    let ahead = (bytes_ahead as usize).div_ceil(entry_bytes).max(1);
    let lines = entry_bytes
        .div_ceil(CACHE_LINE_BYTES)
        .clamp(1, MAX_PREFETCH_LINES);
    let taken: Vec<String> = bound_names(&state.func.body);
    let pf = fresh_name(&format!("{}pf", bl.prefix()), &taken);
    let entry = (Expr::var(&bl.var) + Expr::Int(ahead as i64)).min(Expr::Int(entries as i64 - 1));
    let start = Expr::load(format!("{weight}_val_ptr"), vec![entry]);
    let index = (start + Expr::var(&pf) * Expr::Int((CACHE_LINE_BYTES / 4) as i64))
        .min(Expr::Int(d.val.len() as i64 - 1));
    let prefetch = Stmt::for_(
        &pf,
        Expr::Int(0),
        Expr::Int(lines as i64),
        ForKind::Unrolled,
        Stmt::Prefetch {
            buffer: val,
            indices: vec![index],
        },
    );
    let rest = Stmt::Seq(vec![prefetch, bl.rest.clone()]);
    replace_block_loop(&mut state.func, &bl, P, |s| Ok(with_rest(s, rest)))?;
    Ok(vec![pf])
}
