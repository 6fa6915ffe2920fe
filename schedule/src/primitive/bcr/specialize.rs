//! Offset specialization: when every entry of a BCR weight has the same shape, the
//! entry offsets are affine in the entry number and their loads become constants.
//!
//! GRIM prunes a layer at one rate, so every block of a weight (whose size divides the
//! matrix) keeps the same number of rows and columns: `W_row_ptr[b] == b * nr`,
//! `W_col_ptr[b] == b * nc` and `W_val_ptr[b] == b * nv` for every entry `b`. The
//! lowered kernel still reads the three offset arrays, so the C compiler sees kept-row
//! and kept-column loops of unknown trip count around a handful of multiply-adds and
//! cannot unroll them, keep the accumulator of [`super::vectorize_rows`] in registers
//! or drop its padding guard. Replacing the loads by `b * nr` (and the counts
//! `W_row_ptr[b + 1] - r0` by `nr`) makes every per-entry loop constant. On FC 2048 at
//! 90% (32x32 blocks, 10 kept rows and columns per block, host, 1 thread, `grim-tune
//! check`, same session) the kernel with rows vectorized by 4 ran 220 us with loaded
//! offsets and 42 us specialized; by 16 lanes, 110 us and 45-55 us.
//!
//! The data are unchanged (the index and value arrays are still read); only the loads
//! of the offset arrays go. Since the function then depends on the offsets being
//! affine, the primitive checks that on the weight's data when it is applied, and a
//! trace replayed on another pattern is checked again.

use super::{map_stmt_exprs, read_data_layout, BcrData};
use crate::error::ScheduleError;
use crate::primitive::State;
use tir::visit::{for_each_load, for_each_stmt, stmt_exprs};
use tir::{BinOp, Expr, Stmt};

const P: &str = "specialize_offsets";

/// The common stride of the three offset arrays of `d`: `(rows, cols, values)` per
/// entry, or the reason why the entries differ.
pub fn uniform_entry_shape(d: &BcrData) -> Result<(i64, i64, i64), String> {
    if d.is_empty() {
        return Err("it stores no entry".into());
    }
    let stride = |name: &str, what: &str, ptr: &[i32]| -> Result<i64, String> {
        let s = i64::from(ptr[1]) - i64::from(ptr[0]);
        match (1..ptr.len()).find(|&b| i64::from(ptr[b]) - i64::from(ptr[b - 1]) != s) {
            None => Ok(s),
            Some(b) => Err(format!(
                "its entries differ in {what}: entry 0 has {s}, entry {} has {} ({name} is \
                 not affine; row reordering merges blocks into groups of different sizes, \
                 and partial blocks at the matrix edge are smaller)",
                b - 1,
                i64::from(ptr[b]) - i64::from(ptr[b - 1])
            )),
        }
    };
    Ok((
        stride("row_ptr", "kept rows", &d.row_ptr)?,
        stride("col_ptr", "kept columns", &d.col_ptr)?,
        stride("val_ptr", "stored values", &d.val_ptr)?,
    ))
}

/// Offset specialization of weight `weight`: every load `W_row_ptr[e]`,
/// `W_col_ptr[e]`, `W_val_ptr[e]` becomes `e * nr`, `e * nc`, `e * nv`, and the entry
/// counts the lowering reads as `W_row_ptr[b + 1] - r0` (and `W_col_ptr[b + 1] - c0`)
/// become the constants `nr` (`nc`).
///
/// ```text
/// for (b, 0, nb) { let r0 = W_row_ptr[b]; let c0 = W_col_ptr[b]; let v0 = W_val_ptr[b];
///   let nc = W_col_ptr[b + 1] - c0; for (i, 0, W_row_ptr[b + 1] - r0) { ... } }
/// // becomes (10 kept rows, 10 kept columns per entry)
/// for (b, 0, nb) { let r0 = b * 10; let c0 = b * 10; let v0 = b * 100;
///   let nc = 10; for (i, 0, 10) { ... } }
/// ```
///
/// Composes after every other BCR primitive (it is meant to be the last one: the
/// others find the block loop by its loads of the offset arrays and refuse the weight
/// afterwards). Returns no loops.
///
/// Errors (naming the weight): not BCR; the entries differ in kept rows, kept columns
/// or stored values (the reason names the first entry that differs); the function no
/// longer loads the offsets (already specialized).
pub fn specialize_offsets(state: &mut State, weight: &str) -> Result<Vec<String>, ScheduleError> {
    let d = read_data_layout(state, weight, P, true)?;
    let (nr, nc, nv) = uniform_entry_shape(&d).map_err(|r| {
        ScheduleError::illegal(
            P,
            weight,
            format!("offsets of `{weight}` are not affine: {r}"),
        )
    })?;
    let arrays = [
        (format!("{weight}_row_ptr"), nr),
        (format!("{weight}_col_ptr"), nc),
        (format!("{weight}_val_ptr"), nv),
    ];
    let mut loads = 0usize;
    for_each_stmt(&state.func.body, &mut |s| {
        for e in stmt_exprs(s) {
            for_each_load(e, &mut |buffer, _| {
                loads += usize::from(arrays.iter().any(|(a, _)| a == buffer));
            });
        }
    });
    if loads == 0 {
        return Err(ScheduleError::illegal(
            P,
            weight,
            format!("the function no longer loads the offsets of `{weight}` (already specialized)"),
        ));
    }
    // The header lets `x0 = ptr[b]`, so that `ptr[b + 1] - x0` can become the stride.
    let mut starts: Vec<(String, String, String, i64)> = Vec::new();
    for_each_stmt(&state.func.body, &mut |s| {
        if let Stmt::Let {
            var,
            value: Expr::Load { buffer, indices },
            ..
        } = s
        {
            if let ([Expr::Var(b)], Some((_, stride))) =
                (indices.as_slice(), arrays.iter().find(|(a, _)| a == buffer))
            {
                starts.push((var.clone(), buffer.clone(), b.clone(), *stride));
            }
        }
    });
    let body = map_stmt_exprs(&state.func.body, &mut |e| match &e {
        Expr::Load { buffer, indices } if indices.len() == 1 => {
            match arrays.iter().find(|(a, _)| a == buffer) {
                Some((_, stride)) => {
                    Expr::binary(BinOp::Mul, indices[0].clone(), Expr::Int(*stride))
                }
                None => e,
            }
        }
        // `(b + 1) * s - x0` with `let x0 = ptr[b]` (now `b * s`): the count `s`. The
        // loads below were replaced first (bottom-up).
        Expr::Binary(BinOp::Sub, a, x0) => match (&**a, &**x0) {
            (Expr::Binary(BinOp::Mul, next, s), Expr::Var(x0)) => {
                let is_next = |b: &str| {
                    matches!(&**next, Expr::Binary(BinOp::Add, v, one)
                        if matches!(&**v, Expr::Var(v) if v == b) && **one == Expr::Int(1))
                };
                match starts
                    .iter()
                    .find(|(v, _, b, stride)| v == x0 && **s == Expr::Int(*stride) && is_next(b))
                {
                    Some((.., stride)) => Expr::Int(*stride),
                    None => e,
                }
            }
            _ => e,
        },
        _ => e,
    });
    state.func.body = body;
    Ok(Vec::new())
}
