//! Register tiles: a few kept rows times a row of output positions, summed in registers
//! over an entry's kept columns.
//!
//! When every kept weight updates many output positions (a conv's output plane, an
//! FC's N > 1 columns), the lowered kernel runs, for each kept row and kept column, a
//! pass over all positions: `Y[row, p] += w * X[col, p]`, which loads and stores the
//! output once per term (conv 3x3 64->64 56x56 at 90%, 32x32 blocks: 0.74 ms, 15 GMAC/s
//! on this machine's AVX-512 core, whose peak is about 58). A register tile turns the
//! loops inside out: for `R` kept rows and one row of output positions (the innermost
//! position loop, `ow` or `n`), the partial sums stay in `R x E` registers while the
//! kept columns stream by; each input vector loaded is used by `R` multiply-adds, and
//! the output is loaded and stored once per tile. Hand-written first (standalone C,
//! the conv above): 5 rows x 56 positions 0.38 ms, 2 rows 0.47 ms, the lowered loop
//! 0.66 ms; a local array swept by a loop that is not unrolled into single vectors
//! stays in memory (3 ms), so the positions are cut into unrolled pieces of `lanes`.

use super::{find_block_loop, read_data, rows_loop};
use crate::error::ScheduleError;
use crate::loops::{const_int, fresh_name, replace_loop};
use crate::primitive::loop_transformation::rename_loops;
use crate::primitive::State;
use tir::visit::{bound_names, expr_loads_buffer, expr_uses_var, substitute_expr};
use tir::{BinOp, DType, Expr, ForKind, MemScope, Stmt};

const P: &str = "register_tile";

/// Largest tile, in elements (`rows` times the innermost position loop's extent):
/// 32 AVX-512 registers hold 512 floats, and the loads need some.
pub const MAX_TILE: usize = 384;

/// One statement of the chain between the kept-columns loop and the update.
enum Link {
    Let(String, Expr),
    Loop(String, i64, ForKind),
}

/// Register tiling of weight `weight`: `rows` kept rows (1 to 16) at a time, the
/// innermost loop around the update (extent `E`, from 0, constant) in pieces of
/// `lanes` (1 to 64). The last `E mod lanes` positions, after at least one full piece,
/// are a full piece over positions `E - lanes .. E` summed into `lanes` more columns of
/// the tile, of which the writeback takes the last `E mod lanes` (the tile is
/// `(E / lanes + 1) * lanes` wide); a narrow piece of `E mod lanes` when `E < lanes` or
/// the wider tile would pass [`MAX_TILE`]. The kept-rows loop
///
/// ```text
/// for (i, 0, nr) { let row = W_rows[r0 + i];
///   for (j, 0, nc) { <lets>; for (p1, 0, D1) { .. for (pk, 0, E) { <lets>;
///     OUT[idx] = OUT[idx] + e; } } } }
/// ```
///
/// becomes (`i` replaced by `i_o * R + i_r`; the loops `p1..pk-1` hoisted out of the
/// kept-columns loop)
///
/// ```text
/// let nr = W_row_ptr[b + 1] - r0;
/// for (i_o, 0, nr / R) { for (p1, 0, D1) { .. alloc acc: f32[R, (E / L + 1) * L] local {
///   for (j, 0, nc) { for (i_r, 0, R) unrolled { <lets>;
///     for (i_p, 0, E / L) unrolled { for (i_l, 0, L) vectorized { let pk = i_p * L + i_l;
///       <lets>; acc[i_r, pk] = acc[i_r, pk] + e; } }
///     for (i_l, 0, L) vectorized { let pk = E - L + i_l;
///       <lets>; acc[i_r, E / L * L + i_l] = acc[i_r, E / L * L + i_l] + e; } } }
///   for (i_r, 0, R) unrolled { let row = W_rows[r0 + i_o * R + i_r];
///     for (pk, 0, E / L * L) vectorized { OUT[idx] = OUT[idx] + acc[i_r, pk]; }
///     for (a, 0, E mod L) vectorized { let pk = E / L * L + a;
///       OUT[idx] = OUT[idx] + acc[i_r, E / L * L + L - E mod L + a]; } } } } }
/// for (i_t, nr / R * R, nr mod R) { the same with one row }
/// ```
///
/// The data is unchanged. Each output's sum over an entry's kept columns is formed in
/// the tile and added once (reassociated, as [`super::vectorize_rows`] does), so
/// results agree with the lowered kernel up to floating-point rounding.
///
/// Errors (naming the weight; the schedule is unchanged): not BCR; `rows` or `lanes`
/// out of range; the rows loop is not as lowered (tiled, vectorized, already
/// register-tiled); anything but lets and constant loops between the kept column and
/// the update, or no loop of more than one iteration (one output position per row:
/// FC with N = 1, GRU and LSTM steps, where [`super::vectorize_rows`] applies); a let, the update's term or a condition using the row; the
/// update's indices using a name bound inside the rows loop other than the row and
/// the position loops; a tile over [`MAX_TILE`] elements.
pub fn register_tile(
    state: &mut State,
    weight: &str,
    rows: i64,
    lanes: i64,
) -> Result<Vec<String>, ScheduleError> {
    read_data(state, weight, P)?;
    let bl = find_block_loop(&state.func, weight, P)?;
    let err = |r: String| ScheduleError::illegal(P, weight, r);
    if !(1..=16).contains(&rows) {
        return Err(err(format!("rows must be between 1 and 16, got {rows}")));
    }
    if !(1..=64).contains(&lanes) {
        return Err(err(format!("lanes must be between 1 and 64, got {lanes}")));
    }
    let rl = rows_loop(&bl, weight, P, "register-tile before tile_blocks")?;
    let (i, row, j_loop) = (rl.var.clone(), rl.row, &rl.j);
    let rows_arr = format!("{weight}_rows");
    if const_int(j_loop.min) != Some(0) {
        return Err(err(format!(
            "the kept-columns loop `{}` must start at 0",
            j_loop.var
        )));
    }
    if expr_uses_var(j_loop.extent, &i) || expr_uses_var(j_loop.extent, row) {
        return Err(err(format!(
            "the extent of the kept-columns loop `{}` depends on the row",
            j_loop.var
        )));
    }

    // The chain from the kept-columns loop down to the update.
    let mut chain: Vec<Link> = Vec::new();
    let mut cur = j_loop.body;
    let (out, idx, value) = loop {
        match cur {
            Stmt::Let { var, value, body } => {
                chain.push(Link::Let(var.clone(), value.clone()));
                cur = body;
            }
            Stmt::For {
                var,
                min,
                extent,
                kind,
                body,
            } => match (const_int(min), const_int(extent)) {
                (Some(0), Some(e)) if e > 0 => {
                    chain.push(Link::Loop(var.clone(), e, *kind));
                    cur = body;
                }
                _ => {
                    return Err(err(format!(
                        "loop `{var}` inside the kept-columns loop must run from 0 over a constant extent"
                    )))
                }
            },
            Stmt::Store {
                buffer,
                indices,
                value,
            } => break (buffer.clone(), indices.clone(), value.clone()),
            _ => {
                return Err(err(
                    "only lets and constant loops may sit between the kept-columns loop and the \
                     update (an if, a sequence or an allocation does not)"
                        .into(),
                ))
            }
        }
    };
    let term = match &value {
        Expr::Binary(BinOp::Add, a, e) if matches!(&**a, Expr::Load { buffer: b, indices: ix } if *b == out && *ix == idx) => {
            (**e).clone()
        }
        _ => {
            return Err(err(format!(
                "the store to `{out}` is not an update `{out}[..] = {out}[..] + e`"
            )))
        }
    };
    if expr_loads_buffer(&term, &out) {
        return Err(err(format!("the update's term reads `{out}` itself")));
    }
    let Some(inner) = chain.iter().rposition(|l| matches!(l, Link::Loop(..))) else {
        return Err(err(
            "no loop over output positions around the update (N = 1: vectorize rows instead)"
                .into(),
        ));
    };
    let Link::Loop(pk, extent, _) = &chain[inner] else {
        return Err(err("internal: not a loop".into()));
    };
    let positions: i64 = chain
        .iter()
        .map(|l| match l {
            Link::Loop(_, e, _) => *e,
            Link::Let(..) => 1,
        })
        .product();
    if positions == 1 {
        return Err(err(
            "no loop over output positions around the update, only loops of one iteration \
             (N = 1: vectorize rows instead)"
                .into(),
        ));
    }
    let (pk, extent) = (pk.clone(), *extent);
    for l in &chain {
        if let Link::Let(v, e) = l {
            if expr_uses_var(e, row) || expr_loads_buffer(e, &out) {
                return Err(err(format!(
                    "`let {v}` in the kept-columns loop depends on the row or reads `{out}`"
                )));
            }
        }
    }
    if expr_uses_var(&term, row) {
        return Err(err(format!("the update's term uses the row `{row}`")));
    }
    let position_loops: Vec<&str> = chain
        .iter()
        .filter_map(|l| match l {
            Link::Loop(v, ..) => Some(v.as_str()),
            Link::Let(..) => None,
        })
        .collect();
    if let Some(n) = rl.inner_name_in(&idx, &position_loops) {
        return Err(err(format!(
            "the update's indices use `{n}`, bound inside the rows loop: only the row and the \
             position loops may appear there"
        )));
    }
    let tile = (rows as usize).saturating_mul(extent as usize);
    if tile > MAX_TILE {
        return Err(err(format!(
            "a tile of {rows} rows x {extent} positions (`{pk}`) is {tile} elements, over \
             {MAX_TILE}: take fewer rows or split `{pk}` first"
        )));
    }

    let mut taken = bound_names(&state.func.body);
    let mut fresh = |base: String| {
        let n = fresh_name(&base, &taken);
        taken.push(n.clone());
        n
    };
    let names = Names {
        io: fresh(format!("{i}_o")),
        ir: fresh(format!("{i}_r")),
        ip: fresh(format!("{i}_p")),
        il: fresh(format!("{i}_l")),
        il_tail: fresh(format!("{i}_lt")),
        add: fresh(format!("{pk}_a")),
        it: fresh(format!("{i}_t")),
        nr: fresh(format!("{}nr", bl.prefix())),
        acc: fresh(format!("{}tile", bl.prefix())),
        acc_rest: fresh(format!("{}tile_t", bl.prefix())),
    };
    let shape = Shape {
        chain: &chain,
        inner,
        pk: &pk,
        extent,
        lanes,
        j: j_loop.var,
        j_extent: j_loop.extent,
        j_kind: j_loop.kind,
        i: &i,
        row,
        rows_arr: &rows_arr,
        r0: &bl.r0,
        out: &out,
        idx: &idx,
        term: &term,
    };
    let nr = Expr::var(&names.nr);
    let full = Expr::binary(BinOp::Div, nr.clone(), Expr::Int(rows));
    let main = Stmt::serial(
        &names.io,
        full.clone(),
        shape.tile(
            Expr::var(&names.io) * Expr::Int(rows),
            rows,
            &names,
            &names.acc,
        ),
    );
    let mut body = vec![main];
    if rows > 1 {
        let rest = Stmt::for_(
            &names.it,
            full * Expr::Int(rows),
            Expr::binary(BinOp::Mod, nr, Expr::Int(rows)),
            ForKind::Serial,
            shape.tile(Expr::var(&names.it), 1, &names, &names.acc_rest),
        );
        // The rest repeats the position loops and the tile's loops: fresh names.
        let mut rest_taken = taken.clone();
        rest_taken.extend(bound_names(&body[0]));
        let renamed = match &rest {
            Stmt::For {
                var,
                min,
                extent,
                kind,
                body: b,
            } => Stmt::for_(
                var.clone(),
                min.clone(),
                extent.clone(),
                *kind,
                rename_loops(b, "_t", &rest_taken),
            ),
            other => other.clone(),
        };
        body.push(renamed);
    }
    let replacement = Stmt::let_(&names.nr, rl.extent.clone(), Stmt::Seq(body));
    state.func.body = replace_loop(&state.func.body, &i, P, &mut |_| Ok(replacement.clone()))?;
    Ok(vec![names.io, names.ir, names.ip, names.il])
}

/// Names of the binders and buffers the rewrite creates.
struct Names {
    io: String,
    ir: String,
    ip: String,
    il: String,
    il_tail: String,
    add: String,
    it: String,
    nr: String,
    acc: String,
    acc_rest: String,
}

/// What the rewrite needs of the matched loop nest.
struct Shape<'a> {
    chain: &'a [Link],
    inner: usize,
    pk: &'a str,
    extent: i64,
    lanes: i64,
    j: &'a str,
    j_extent: &'a Expr,
    j_kind: ForKind,
    i: &'a str,
    row: &'a str,
    rows_arr: &'a str,
    r0: &'a str,
    out: &'a str,
    idx: &'a [Expr],
    term: &'a Expr,
}

impl Shape<'_> {
    /// The position loops, the tile's allocation, its kept-columns loop and its add,
    /// for `rows` kept rows starting at entry row `first` (rows `first + i_r`).
    fn tile(&self, first: Expr, rows: i64, n: &Names, acc: &str) -> Stmt {
        let entry_row = first + Expr::var(&n.ir);
        let subst_i = |e: &Expr| substitute_expr(e, self.i, &entry_row);
        let acc_at = |p: Expr| vec![Expr::var(&n.ir), p];
        // The innermost position loop's body: its lets, then the accumulation of
        // position `pos` into the tile's column `slot`.
        let lane_body = |pos: Expr, slot: Expr| -> Stmt {
            let mut s = Stmt::store(
                acc,
                acc_at(slot.clone()),
                Expr::load(acc, acc_at(slot)) + subst_i(self.term),
            );
            for l in self.chain[self.inner + 1..].iter().rev() {
                if let Link::Let(v, e) = l {
                    s = Stmt::let_(v.clone(), subst_i(e), s);
                }
            }
            Stmt::let_(self.pk, pos, s)
        };
        let pieces = self.extent / self.lanes;
        let tail = self.extent % self.lanes;
        // A tail shorter than a piece, after at least one full piece, is computed as a
        // full piece over the last `lanes` positions (overlapping the piece before it)
        // into its own `lanes` columns of the tile, of which the writeback takes the
        // last `tail`: every vector operation is as wide as the others and every load
        // stays in bounds. A narrow tail makes the compiler mix vector widths (conv 3x3
        // 64->64 56x56 at 90%, 32x32 blocks, 5 rows x 16 lanes: an 8-lane tail per 56
        // positions; each weight broadcast twice, once per width: 549 us as generated,
        // 355 us with the overlapping piece, on this machine's AVX-512 core). Not when
        // the wider tile would pass `MAX_TILE`.
        let overlap = pieces > 0
            && tail > 0
            && (rows as usize).saturating_mul(((pieces + 1) * self.lanes) as usize) <= MAX_TILE;
        let tile_width = if overlap {
            (pieces + 1) * self.lanes
        } else {
            self.extent
        };
        let mut per_row = Vec::new();
        if pieces > 0 {
            per_row.push(Stmt::for_(
                &n.ip,
                Expr::Int(0),
                Expr::Int(pieces),
                ForKind::Unrolled,
                Stmt::for_(
                    &n.il,
                    Expr::Int(0),
                    Expr::Int(self.lanes),
                    ForKind::Vectorized,
                    {
                        let pos = Expr::var(&n.ip) * Expr::Int(self.lanes) + Expr::var(&n.il);
                        lane_body(pos.clone(), pos)
                    },
                ),
            ));
        }
        if overlap {
            let il = &n.il_tail;
            per_row.push(Stmt::for_(
                il,
                Expr::Int(0),
                Expr::Int(self.lanes),
                ForKind::Vectorized,
                lane_body(
                    Expr::Int(self.extent - self.lanes) + Expr::var(il),
                    Expr::Int(pieces * self.lanes) + Expr::var(il),
                ),
            ));
        } else if tail > 0 {
            let il = &n.il_tail;
            let pos = Expr::Int(pieces * self.lanes) + Expr::var(il);
            per_row.push(Stmt::for_(
                il,
                Expr::Int(0),
                Expr::Int(tail),
                ForKind::Vectorized,
                lane_body(pos.clone(), pos),
            ));
        }
        // The lets before the innermost position loop, in order: those that depend on
        // the entry row (the value, and lets using it) inside the row loop, the others
        // (the column's position in the input) once per column, so the unrolled rows
        // share one input load.
        let mut row_stmt = if per_row.len() == 1 {
            per_row.remove(0)
        } else {
            Stmt::Seq(per_row)
        };
        let outer_lets: Vec<(&String, &Expr)> = self.chain[..self.inner]
            .iter()
            .filter_map(|l| match l {
                Link::Let(v, e) => Some((v, e)),
                Link::Loop(..) => None,
            })
            .collect();
        let mut per_entry_row: Vec<&str> = vec![self.i];
        for (v, e) in &outer_lets {
            if per_entry_row.iter().any(|d| expr_uses_var(e, d)) {
                per_entry_row.push(v.as_str());
            }
        }
        for (v, e) in outer_lets.iter().rev() {
            if per_entry_row.contains(&v.as_str()) {
                row_stmt = Stmt::let_((*v).clone(), subst_i(e), row_stmt);
            }
        }
        let mut column_stmt = Stmt::for_(
            &n.ir,
            Expr::Int(0),
            Expr::Int(rows),
            ForKind::Unrolled,
            row_stmt,
        );
        for (v, e) in outer_lets.iter().rev() {
            if !per_entry_row.contains(&v.as_str()) {
                column_stmt = Stmt::let_((*v).clone(), (*e).clone(), column_stmt);
            }
        }
        let columns = Stmt::for_(
            self.j,
            Expr::Int(0),
            self.j_extent.clone(),
            self.j_kind,
            column_stmt,
        );
        // The writeback: positions `[first, first + count)` from the tile's columns
        // starting at `slot`.
        let add_loop = |first: i64, count: i64, slot: i64| -> Stmt {
            let offset = |at: i64| match at {
                0 => Expr::var(&n.add),
                _ => Expr::Int(at) + Expr::var(&n.add),
            };
            let pos = offset(first);
            let add_idx: Vec<Expr> = self
                .idx
                .iter()
                .map(|e| substitute_expr(e, self.pk, &pos))
                .collect();
            Stmt::for_(
                &n.add,
                Expr::Int(0),
                Expr::Int(count),
                ForKind::Vectorized,
                Stmt::store(
                    self.out,
                    add_idx.clone(),
                    Expr::load(self.out, add_idx) + Expr::load(acc, acc_at(offset(slot))),
                ),
            )
        };
        let writeback = if overlap {
            let body = pieces * self.lanes;
            Stmt::Seq(vec![
                add_loop(0, body, 0),
                add_loop(body, tail, body + self.lanes - tail),
            ])
        } else {
            add_loop(0, self.extent, 0)
        };
        let add = Stmt::for_(
            &n.ir,
            Expr::Int(0),
            Expr::Int(rows),
            ForKind::Unrolled,
            Stmt::let_(
                self.row,
                Expr::load(self.rows_arr, vec![Expr::var(self.r0) + entry_row.clone()]),
                writeback,
            ),
        );
        let mut s = Stmt::Allocate {
            name: acc.to_string(),
            dtype: DType::F32,
            shape: vec![rows as usize, tile_width as usize],
            scope: MemScope::Local,
            body: Box::new(Stmt::Seq(vec![columns, add])),
        };
        // The outer position loops around the tile.
        for l in self.chain[..self.inner].iter().rev() {
            if let Link::Loop(v, e, kind) = l {
                s = Stmt::for_(v.clone(), Expr::Int(0), Expr::Int(*e), *kind, s);
            }
        }
        s
    }
}
