//! Column-decoding tables: a kept column's decoding into input coordinates (a conv's
//! channel and kernel taps) is computed once per entry into a small table instead of
//! once per use.
//!
//! A conv's weight matrix has one column per (input channel, kernel row, kernel
//! column), so the lowered kernel decodes every kept column it reads: `c = col / 9`,
//! `ky = col / 3 % 3`, `kx = col % 3` for a 3x3 kernel. Under a register tile that
//! decoding sits in the kept-columns loop, which runs again for every row of output
//! positions (56 times per entry for a 56x56 output), and it is integer division with
//! sign fix-ups and data-dependent branches: in the tuned conv 3x3 64->64 56x56 at 90%
//! (32x32 blocks, 5-row tiles) about 40 scalar instructions around 20 vector
//! multiply-adds per kept column. Reading the three values from a per-entry table
//! filled before the entry's loops took the kernel from 345-362 us to 287-299 us
//! (hand-edited generated C, same inputs, identical outputs, this machine).

use super::lre::MAX_LOCAL_ELEMS;
use super::{
    allocated_in, find_block_loop, lets_loading, read_data_layout, taken_names, with_rest,
};
use super::{replace_block_loop, BlockLoop};
use crate::error::ScheduleError;
use crate::loops::fresh_name;
use crate::primitive::State;
use std::collections::BTreeMap;
use tir::interp::{floor_div, floor_mod};
use tir::visit::{stmt_uses_var, substitute_expr, try_map_stmt};
use tir::{BinOp, DType, Expr, MemScope, Stmt};

const P: &str = "tabulate_column_decoding";

/// Stands for the kept column in a decoding expression (not a valid tir name, so it
/// cannot collide with one).
const COL: &str = "$col";

/// Column-decoding tables for weight `weight`. Every `let v = e` under a kept-column
/// let `let col = W_cols[c0 + J]` whose value is integer arithmetic (`+ - * / % min
/// max` of constants, `col` and earlier such lets) with a division or modulo by
/// something other than 1 is *decoding*; each distinct decoding (in terms of `col`)
/// gets a column `k` of a table `coldec: i32[max_nc, K]` allocated at the top of the
/// block loop's body and filled once per entry:
///
/// ```text
/// for (b, ..) { let r0 ..; let c0 ..; let v0 ..; let nc ..;
///   alloc coldec: i32[max_nc, K] {
///     for (j_dec, 0, nc) { let col_dec = W_cols[c0 + j_dec];
///       coldec[j_dec, 0] = col_dec / 9; coldec[j_dec, 1] = col_dec / 3 % 3; .. }
///     <the entry's loops, with `let c = coldec[J, 0]`, `let ky = coldec[J, 1]`, ..> } }
/// ```
///
/// A kept-column let whose body no longer uses `col` is dropped. The data and the
/// results are unchanged (the same integers, read from the table). Works on any form
/// of the entry's loops (lowered, register-tiled, with load-redundancy elimination's
/// gather, whose copy of the decoding is tabulated too), so it goes after the
/// primitives that restructure them and before [`super::specialize_offsets`].
///
/// Errors (naming the weight; the schedule is unchanged): not BCR; no kept-column let,
/// or no decoding by a division (FCs and recurrent layers use the column as it is,
/// 1x1 convs divide by 1); a decoding name bound twice under one kept-column let; a
/// decoded value of some kept column outside `i32` (checked on the weight's data);
/// applied twice (the decoding already reads a table).
pub fn tabulate_column_decoding(
    state: &mut State,
    weight: &str,
) -> Result<Vec<String>, ScheduleError> {
    let d = read_data_layout(state, weight, P, true)?;
    let bl = find_block_loop(&state.func, weight, P)?;
    let err = |r: String| ScheduleError::illegal(P, weight, r);
    let cols_arr = format!("{weight}_cols");
    if lets_loading(&bl.rest, &cols_arr).is_empty() {
        return Err(err(format!(
            "no `let col = {cols_arr}[c0 + j]` in the block loop"
        )));
    }
    let taken = taken_names(&state.func);
    let pre = bl.prefix().to_string();
    let mut t = Tabulator {
        table: fresh_name(&format!("{pre}coldec"), &taken),
        cols_arr: &cols_arr,
        bl: &bl,
        decodings: Vec::new(),
    };
    let rest = t.rewrite(&bl.rest).map_err(err)?;
    if t.decodings.is_empty() {
        let already = allocated_in(&bl.rest)
            .iter()
            .any(|a| a.starts_with(&format!("{pre}coldec")));
        return Err(err(if already {
            "the column decoding of this weight is already tabulated".into()
        } else {
            "no kept column is decoded by a division (the columns are used as they are)".into()
        }));
    }
    // The table holds i32: check every decoded value of every kept column.
    for &col in &d.cols {
        for e in &t.decodings {
            match eval_decoding(e, i64::from(col)) {
                Some(v) if i32::try_from(v).is_ok() => {}
                other => {
                    return Err(err(format!(
                        "kept column {col} decodes by `{}` to {} (the table holds i32)",
                        tir::print_expr(&substitute_expr(e, COL, &Expr::var("col"))),
                        other.map_or("an overflow or a division by zero".into(), |v| v
                            .to_string())
                    )))
                }
            }
        }
    }
    let jd = fresh_name(&format!("{pre}j_dec"), &taken);
    let cd = fresh_name(&format!("{pre}col_dec"), &taken);
    let fill = Stmt::serial(
        &jd,
        Expr::var(&bl.nc),
        Stmt::let_(
            &cd,
            Expr::load(cols_arr.clone(), vec![Expr::var(&bl.c0) + Expr::var(&jd)]),
            Stmt::Seq(
                t.decodings
                    .iter()
                    .enumerate()
                    .map(|(k, e)| {
                        Stmt::store(
                            &t.table,
                            vec![Expr::var(&jd), Expr::Int(k as i64)],
                            substitute_expr(e, COL, &Expr::var(&cd)),
                        )
                    })
                    .collect(),
            ),
        ),
    );
    let shape = vec![d.max_cols().max(1), t.decodings.len()];
    let scope = if shape.iter().product::<usize>() <= MAX_LOCAL_ELEMS {
        MemScope::Local
    } else {
        MemScope::Global
    };
    let rest = Stmt::Allocate {
        name: t.table.clone(),
        dtype: DType::I32,
        shape,
        scope,
        body: Box::new(Stmt::Seq(vec![fill, rest])),
    };
    replace_block_loop(&mut state.func, &bl, P, |s| Ok(with_rest(s, rest)))?;
    Ok(vec![jd])
}

/// The rewrite's state: the table's name and the decodings given a column so far.
struct Tabulator<'a> {
    table: String,
    cols_arr: &'a str,
    bl: &'a BlockLoop,
    /// Decoding `k` (an expression of [`COL`]) is the table's column `k`.
    decodings: Vec<Expr>,
}

impl Tabulator<'_> {
    /// `s` with every kept-column let's decoding read from the table.
    fn rewrite(&mut self, s: &Stmt) -> Result<Stmt, String> {
        try_map_stmt(s, &mut |st| match st {
            Stmt::Let { var, value, body } if matches!(value, Expr::Load { buffer, .. } if buffer == self.cols_arr) =>
            {
                let j = column_position(value, self.bl).ok_or_else(|| {
                    format!(
                        "the kept-column load `{}` is not `{}[{} + j]`",
                        tir::print_expr(value),
                        self.cols_arr,
                        self.bl.c0
                    )
                })?;
                let known = BTreeMap::from([(var.clone(), Expr::var(COL))]);
                let body = self.decode(body, &known, &j)?;
                Ok(Some(if stmt_uses_var(&body, var) {
                    Stmt::let_(var.clone(), value.clone(), body)
                } else {
                    body
                }))
            }
            _ => Ok(None),
        })
    }

    /// The body `s` of a kept-column let at position `j`: decoding lets (their values
    /// in terms of the column in `known`, the decodings bound above `s`) become table
    /// loads.
    fn decode(
        &mut self,
        s: &Stmt,
        known: &BTreeMap<String, Expr>,
        j: &Expr,
    ) -> Result<Stmt, String> {
        try_map_stmt(s, &mut |st| {
            let Stmt::Let { var, value, body } = st else {
                return Ok(None);
            };
            if known.contains_key(var) {
                return Err(format!("`{var}` is bound twice under one kept-column let"));
            }
            if matches!(value, Expr::Load { buffer, .. } if buffer == self.cols_arr) {
                return Err("a kept-column let inside another".into());
            }
            let mut value = value.clone();
            let mut inner = known.clone();
            if let Some(inlined) = inline_decoding(&value, known) {
                if divides(&inlined) {
                    let k = match self.decodings.iter().position(|e| *e == inlined) {
                        Some(k) => k,
                        None => {
                            self.decodings.push(inlined.clone());
                            self.decodings.len() - 1
                        }
                    };
                    value = Expr::load(&self.table, vec![j.clone(), Expr::Int(k as i64)]);
                }
                inner.insert(var.clone(), inlined);
            }
            let body = self.decode(body, &inner, j)?;
            Ok(Some(Stmt::let_(var.clone(), value, body)))
        })
    }
}

/// `J` of a kept-column load `W_cols[c0 + J]` (or `W_cols[e]` as `e - c0`).
fn column_position(value: &Expr, bl: &BlockLoop) -> Option<Expr> {
    match value {
        Expr::Load { indices, .. } => match indices.as_slice() {
            [Expr::Binary(BinOp::Add, a, j)] if matches!(&**a, Expr::Var(v) if *v == bl.c0) => {
                Some((**j).clone())
            }
            [idx] => Some(idx.clone() - Expr::var(&bl.c0)),
            _ => None,
        },
        _ => None,
    }
}

/// `value` with every known name replaced by its decoding, when it is integer
/// arithmetic on known names and constants only; `None` otherwise.
fn inline_decoding(value: &Expr, known: &BTreeMap<String, Expr>) -> Option<Expr> {
    match value {
        Expr::Int(_) => Some(value.clone()),
        Expr::Var(v) => known.get(v).cloned(),
        Expr::Binary(
            op @ (BinOp::Add
            | BinOp::Sub
            | BinOp::Mul
            | BinOp::Div
            | BinOp::Mod
            | BinOp::Min
            | BinOp::Max),
            a,
            b,
        ) => Some(Expr::binary(
            *op,
            inline_decoding(a, known)?,
            inline_decoding(b, known)?,
        )),
        _ => None,
    }
}

/// True when `e` divides or takes a modulo by anything but the constant 1.
fn divides(e: &Expr) -> bool {
    match e {
        Expr::Binary(BinOp::Div | BinOp::Mod, a, b) => {
            !matches!(&**b, Expr::Int(1)) || divides(a) || divides(b)
        }
        Expr::Binary(_, a, b) => divides(a) || divides(b),
        _ => false,
    }
}

/// Value of decoding `e` (over constants and [`COL`]) for kept column `col`, with
/// tir's floor semantics; `None` on overflow or a zero divisor.
fn eval_decoding(e: &Expr, col: i64) -> Option<i64> {
    match e {
        Expr::Int(v) => Some(*v),
        Expr::Var(_) => Some(col),
        Expr::Binary(op, a, b) => {
            let (x, y) = (eval_decoding(a, col)?, eval_decoding(b, col)?);
            match op {
                BinOp::Add => x.checked_add(y),
                BinOp::Sub => x.checked_sub(y),
                BinOp::Mul => x.checked_mul(y),
                BinOp::Div => floor_div(x, y),
                BinOp::Mod => floor_mod(x, y),
                BinOp::Min => Some(x.min(y)),
                BinOp::Max => Some(x.max(y)),
                _ => None,
            }
        }
        _ => None,
    }
}
