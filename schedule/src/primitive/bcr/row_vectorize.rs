//! Row vectorization: the kept rows of an entry are computed `lanes` at a time, one
//! vector lane per row, with each entry's values stored column-major and padded.
//!
//! Lowered, every kept row of an entry is a dot product over the entry's few kept
//! columns (5 to 20 at 90% sparsity): a serial reduction that a C compiler may not
//! reorder, so it stays scalar. The rows of an entry, though, are independent and
//! share the same columns: with the entry's values stored column by column, the
//! values of `lanes` consecutive kept rows for one column are contiguous, and one
//! vector multiply-add per column updates all of them against the broadcast input
//! value. This is GRIM's register-blocked BCR kernel in its SIMD form.

use super::{find_block_loop, read_data, rows_loop, write_data, BcrData};
use crate::error::ScheduleError;
use crate::loops::{const_int, fresh_name, replace_loop};
use crate::primitive::State;
use tir::visit::{bound_names, expr_loads_buffer, expr_uses_var, stmt_uses_var};
use tir::{BinOp, DType, Expr, ForKind, MemScope, Stmt};

const P: &str = "vectorize_rows";

/// Largest accumulator of one chunk of rows, in elements (`lanes` times the output
/// positions each row updates per column): it is meant to live in registers.
pub const MAX_ROW_ACC: usize = 256;

/// Row vectorization of weight `weight` with `lanes` rows per vector (2 to 64).
///
/// The entry's kept-rows loop `for (i, 0, nr) { let row = W_rows[r0 + i]; for (j, 0,
/// nc) { ...; let w = W_val[v0 + i * nc + j]; ...; OUT[idx] = OUT[idx] + e; } }` becomes
///
/// ```text
/// let nr = W_row_ptr[b + 1] - r0;
/// for (i_o, 0, (nr + L - 1) / L) {
///   alloc acc: f32[D1, .., Dd, L] local {
///     for (j, 0, nc) { ...; for (i_l, 0, L) vectorized {
///       acc[n1, .., nd, i_l] = acc[n1, .., nd, i_l] + e[w := W_val[v0 + j * nrp + i_o * L + i_l]]; } }
///     for (i_s, 0, L) { if (i_o * L + i_s < nr) { let row = W_rows[r0 + i_o * L + i_s];
///       for (n1_s, 0, D1) .. { OUT[idx'] = OUT[idx'] + acc[n1_s, .., i_s]; } } }
///   }
/// }
/// ```
///
/// where `n1..nd` are the loops (from 0, constant extents `D1..Dd`) between the kept
/// column and the update, and `nrp = (nr + L - 1) / L * L`. The data of `W_val` is
/// rewritten: each entry's `nr x nc` row-major values become `nc x nrp` column-major,
/// the padding rows zero (their lanes are computed and never stored). Index arrays are
/// unchanged. Works after [`super::reorder_rows`] (groups have more rows to fill the
/// lanes), [`super::reorder_columns`] and [`super::eliminate_redundant_loads`] (the
/// broadcast value comes from the loaded group input).
///
/// The sum of each row is reassociated (partial sums per chunk of rows, then one
/// addition into the output), so results agree with the lowered kernel up to
/// floating-point rounding.
///
/// After it, primitives that read `W_val` as row-major entries (row and column
/// reordering, load-redundancy elimination, block tiling) refuse the weight;
/// [`super::partition_block_rows`] still applies.
///
/// Errors (naming the weight): not BCR; `lanes` out of range; the rows loop is not as
/// lowered (tiled, already vectorized, or its value index is not `v0 + i * nc + j`);
/// anything but lets, ifs, constant loops and one update between the kept column and
/// the update; the update's indices depend on a name bound inside the rows loop other
/// than the row and those loops; an accumulator over [`MAX_ROW_ACC`] elements.
pub fn vectorize_rows(
    state: &mut State,
    weight: &str,
    lanes: i64,
) -> Result<Vec<String>, ScheduleError> {
    vectorize_rows_as(state, weight, lanes, false)
}

/// [`vectorize_rows`] without padding: each entry's values become `nc x nr`
/// column-major (no zero rows, so the weight is as large as before), and a lane past
/// the entry's last row loads nothing: the value becomes
/// `select(i_o * L + i_l < nr, W_val[v0 + j * nr + i_o * L + i_l], 0.0)`, which the C
/// compiler turns into a masked vector load (AVX-512; on FC 2048 at 90%, 32x32 blocks
/// of 10 kept rows, 16 lanes: 640 bytes per block column padded, 400 masked). Lanes
/// past `nr` hold zero sums; [`super::window_block_rows`] never reads them.
pub fn vectorize_rows_masked(
    state: &mut State,
    weight: &str,
    lanes: i64,
) -> Result<Vec<String>, ScheduleError> {
    vectorize_rows_as(state, weight, lanes, true)
}

fn vectorize_rows_as(
    state: &mut State,
    weight: &str,
    lanes: i64,
    masked: bool,
) -> Result<Vec<String>, ScheduleError> {
    let d = read_data(state, weight, P)?;
    let bl = find_block_loop(&state.func, weight, P)?;
    let err = |r: String| ScheduleError::illegal(P, weight, r);
    if !(2..=64).contains(&lanes) {
        return Err(err(format!("lanes must be between 2 and 64, got {lanes}")));
    }
    let (r0, v0) = (bl.r0.clone(), bl.v0.clone());
    // The rows loop.
    let rl = rows_loop(&bl, weight, P, "vectorize rows before tile_blocks")?;
    let (i, row, j_loop) = (rl.var.clone(), rl.row, &rl.j);
    let nr_extent = rl.extent.clone();
    let rows_arr = format!("{weight}_rows");
    if const_int(j_loop.min) != Some(0) || *j_loop.extent != Expr::var(&bl.nc) {
        return Err(err(format!(
            "the kept-columns loop `{}` must run over 0..{}",
            j_loop.var, bl.nc
        )));
    }
    let j = j_loop.var.to_string();

    let mut taken = bound_names(&state.func.body);
    let mut fresh = |base: String| {
        let n = fresh_name(&base, &taken);
        taken.push(n.clone());
        n
    };
    let io = fresh(format!("{i}_o"));
    let lane = fresh(format!("{i}_l"));
    let lane_s = fresh(format!("{i}_s"));
    let nr = fresh(format!("{}nr", bl.prefix()));
    let acc = fresh(format!("{}row_acc", bl.prefix()));

    let lanes_e = Expr::Int(lanes);
    let chunks = Expr::binary(
        BinOp::Div,
        Expr::var(&nr) + Expr::Int(lanes - 1),
        lanes_e.clone(),
    );
    let nrp = chunks.clone() * lanes_e.clone();
    let lane_in_entry = Expr::var(&io) * lanes_e.clone() + Expr::var(&lane);
    let column_stride = if masked { Expr::var(&nr) } else { nrp };
    let w_index = Expr::var(&v0) + Expr::var(&j) * column_stride + lane_in_entry.clone();
    let val_arr = format!("{weight}_val");
    let w_load = Expr::load(&val_arr, vec![w_index]);
    let w_value = if masked {
        Expr::Select(
            Box::new(lane_in_entry.lt(Expr::var(&nr))),
            Box::new(w_load),
            Box::new(Expr::Float(0.0)),
        )
    } else {
        w_load
    };
    let expected_w = Expr::var(&v0) + Expr::var(&i) * Expr::var(&bl.nc) + Expr::var(&j);
    let mut ctx = Rewrite {
        weight,
        val_arr: &val_arr,
        expected_w: &expected_w,
        w_value,
        row,
        i: &i,
        lane: &lane,
        lanes,
        acc: &acc,
        w: None,
        loops: Vec::new(),
        update: None,
    };
    let new_j_body = ctx.stmt(j_loop.body)?;
    let (out, idx, dims) = ctx.update.take().ok_or_else(|| {
        err(format!(
            "no update `OUT[..] = OUT[..] + .. * w` using `{val_arr}`"
        ))
    })?;
    let Some(w) = ctx.w.clone() else {
        return Err(err(format!(
            "no `let w = {val_arr}[..]` in the kept-columns loop"
        )));
    };
    if stmt_uses_var(&new_j_body, &w) {
        return Err(err(format!(
            "the value `{w}` is used outside the update; only the update may read it"
        )));
    }
    // Indices of the update may use the row, the loops around it, and names bound
    // outside the rows loop.
    let loops: Vec<&str> = dims.iter().map(|(d, _)| d.as_str()).collect();
    if let Some(n) = rl.inner_name_in(&idx, &loops) {
        return Err(err(format!(
            "the update's indices use `{n}`, bound inside the rows loop: only the row and the \
             constant loops around the update may appear there"
        )));
    }
    dims.iter()
        .try_fold(lanes as usize, |a, (_, e)| a.checked_mul(*e as usize))
        .filter(|n| *n <= MAX_ROW_ACC)
        .ok_or_else(|| {
            err(format!(
                "the accumulator of {lanes} rows x the output positions of one column ({}) \
                 exceeds {MAX_ROW_ACC} elements",
                dims.iter()
                    .map(|(n, e)| format!("{n}: {e}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let new_j = Stmt::for_(&j, Expr::Int(0), Expr::var(&bl.nc), j_loop.kind, new_j_body);
    if stmt_uses_var(&new_j, &i) || stmt_uses_var(&new_j, row) {
        return Err(err(format!(
            "the kept-columns loop uses the row `{row}` or the rows loop `{i}` outside the value and the update"
        )));
    }

    // Scatter: each valid lane adds its partial sums into the output.
    let lane_row = Expr::var(&io) * lanes_e.clone() + Expr::var(&lane_s);
    let mut renamed_idx = idx.clone();
    let mut acc_idx = Vec::new();
    let mut s_loops = Vec::new();
    for (n, e) in &dims {
        let ns = fresh(format!("{n}_s"));
        renamed_idx = renamed_idx
            .iter()
            .map(|x| tir::visit::substitute_expr(x, n, &Expr::var(&ns)))
            .collect();
        acc_idx.push(Expr::var(&ns));
        s_loops.push((ns, *e));
    }
    acc_idx.push(Expr::var(&lane_s));
    let mut scatter = Stmt::store(
        &out,
        renamed_idx.clone(),
        Expr::load(&out, renamed_idx) + Expr::load(&acc, acc_idx),
    );
    for (ns, e) in s_loops.iter().rev() {
        scatter = Stmt::serial(ns.clone(), Expr::Int(*e), scatter);
    }
    let scatter = Stmt::serial(
        &lane_s,
        lanes_e.clone(),
        Stmt::if_(
            lane_row.clone().lt(Expr::var(&nr)),
            Stmt::let_(
                row,
                Expr::load(&rows_arr, vec![Expr::var(&r0) + lane_row]),
                scatter,
            ),
        ),
    );
    let mut shape: Vec<usize> = dims.iter().map(|(_, e)| *e as usize).collect();
    shape.push(lanes as usize);
    let chunk = Stmt::Allocate {
        name: acc.clone(),
        dtype: DType::F32,
        shape,
        scope: MemScope::Local,
        body: Box::new(Stmt::Seq(vec![new_j, scatter])),
    };
    let replacement = Stmt::let_(&nr, nr_extent, Stmt::serial(&io, chunks, chunk));

    // Data: each entry's values column-major, rows padded to a multiple of `lanes`.
    let padded = BcrData::from_entries((0..d.len()).map(|b| {
        let (r, c) = (d.rows_of(b).len(), d.cols_of(b).len());
        let rp = if masked {
            r
        } else {
            r.div_ceil(lanes as usize) * lanes as usize
        };
        let v = d.vals_of(b);
        let mut out = vec![0f32; rp * c];
        for jj in 0..c {
            for ii in 0..r {
                out[jj * rp + ii] = v[ii * c + jj];
            }
        }
        (d.rows_of(b).to_vec(), d.cols_of(b), out)
    }))
    .map_err(err)?;
    let mut done = false;
    state.func.body = replace_loop(&state.func.body, &i, P, &mut |_| {
        done = true;
        Ok(replacement.clone())
    })?;
    if !done {
        return Err(err(format!("internal: rows loop `{i}` vanished")));
    }
    write_data(state, weight, &padded, P)?;
    Ok(vec![io, lane, lane_s])
}

/// An update found in the kept-columns loop: output buffer, its indices, the loops
/// around it (name, extent).
type Update = (String, Vec<Expr>, Vec<(String, i64)>);

/// The walk that rewrites the kept-columns loop's body.
struct Rewrite<'a> {
    weight: &'a str,
    val_arr: &'a str,
    expected_w: &'a Expr,
    w_value: Expr,
    row: &'a str,
    i: &'a str,
    lane: &'a str,
    lanes: i64,
    acc: &'a str,
    w: Option<String>,
    loops: Vec<(String, i64)>,
    update: Option<Update>,
}

impl Rewrite<'_> {
    fn err(&self, r: String) -> ScheduleError {
        ScheduleError::illegal(P, self.weight, r)
    }

    fn stmt(&mut self, s: &Stmt) -> Result<Stmt, ScheduleError> {
        match s {
            Stmt::Let { var, value, body } => {
                if matches!(value, Expr::Load { buffer, .. } if buffer == self.val_arr) {
                    let Expr::Load { indices, .. } = value else {
                        return Err(self.err("internal: not a load".into()));
                    };
                    if self.w.is_some() || indices.as_slice() != [self.expected_w.clone()] {
                        return Err(self.err(format!(
                            "the value must be loaded once, as `{}[v0 + i * nc + j]` (was the kernel tiled?)",
                            self.val_arr
                        )));
                    }
                    self.w = Some(var.clone());
                    return self.stmt(body);
                }
                if expr_uses_var(value, self.row) || expr_uses_var(value, self.i) {
                    return Err(self.err(format!(
                        "`let {var}` in the kept-columns loop depends on the row"
                    )));
                }
                Ok(Stmt::let_(var.clone(), value.clone(), self.stmt(body)?))
            }
            Stmt::For {
                var,
                min,
                extent,
                kind,
                body,
            } => {
                let e = match (const_int(min), const_int(extent)) {
                    (Some(0), Some(e)) if e > 0 => e,
                    _ => {
                        return Err(self.err(format!(
                            "loop `{var}` inside the kept-columns loop must run from 0 over a constant extent"
                        )))
                    }
                };
                self.loops.push((var.clone(), e));
                let b = self.stmt(body);
                self.loops.pop();
                Ok(Stmt::for_(
                    var.clone(),
                    min.clone(),
                    extent.clone(),
                    *kind,
                    b?,
                ))
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                if expr_uses_var(cond, self.row) || expr_uses_var(cond, self.i) {
                    return Err(
                        self.err("a condition in the kept-columns loop depends on the row".into())
                    );
                }
                Ok(Stmt::If {
                    cond: cond.clone(),
                    then: Box::new(self.stmt(then)?),
                    otherwise: match otherwise {
                        Some(o) => Some(Box::new(self.stmt(o)?)),
                        None => None,
                    },
                })
            }
            Stmt::Seq(items) => Ok(Stmt::Seq(
                items
                    .iter()
                    .map(|x| self.stmt(x))
                    .collect::<Result<_, _>>()?,
            )),
            Stmt::Store {
                buffer,
                indices,
                value,
            } => {
                let w = self.w.clone().ok_or_else(|| {
                    self.err(format!(
                        "a store before the value `let w = {}[..]`",
                        self.val_arr
                    ))
                })?;
                let term = match value {
                    Expr::Binary(BinOp::Add, a, e)
                        if matches!(&**a, Expr::Load { buffer: b, indices: ix } if b == buffer && ix == indices) =>
                    {
                        (**e).clone()
                    }
                    _ => {
                        return Err(self.err(format!(
                            "the store to `{buffer}` is not an update `{buffer}[..] = {buffer}[..] + e`"
                        )))
                    }
                };
                if !expr_uses_var(&term, &w)
                    || expr_loads_buffer(&term, buffer)
                    || expr_uses_var(&term, self.row)
                    || expr_uses_var(&term, self.i)
                {
                    return Err(self.err(format!(
                        "the update of `{buffer}` must add a term using the value `{w}`, not reading `{buffer}` or the row"
                    )));
                }
                if self.update.is_some() {
                    return Err(self.err("more than one update in the kept-columns loop".into()));
                }
                self.update = Some((buffer.clone(), indices.clone(), self.loops.clone()));
                let term = tir::visit::substitute_expr(&term, &w, &self.w_value);
                let mut acc_idx: Vec<Expr> = self.loops.iter().map(|(n, _)| Expr::var(n)).collect();
                acc_idx.push(Expr::var(self.lane));
                Ok(Stmt::for_(
                    self.lane,
                    Expr::Int(0),
                    Expr::Int(self.lanes),
                    ForKind::Vectorized,
                    Stmt::store(
                        self.acc,
                        acc_idx.clone(),
                        Expr::load(self.acc, acc_idx) + term,
                    ),
                ))
            }
            Stmt::Allocate { name, .. } => {
                Err(self.err(format!("allocation `{name}` inside the kept-columns loop")))
            }
            Stmt::Prefetch { buffer, .. } => Err(self.err(format!(
                "prefetch of `{buffer}` inside the kept-columns loop"
            ))),
        }
    }
}
