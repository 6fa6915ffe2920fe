//! Block-row windows: a block row's outputs stay in a few vector registers while its
//! entries are computed, and each entry's row sums are added into them by one lane
//! permutation instead of being scattered row by row.
//!
//! After [`super::vectorize_rows`] an entry's kept-row sums sit in the lanes of a small
//! accumulator, and the lowered kernel scatters them: per kept row a load of its index,
//! a load of the output, an add and a store, about 40 instructions for the 10 kept rows
//! of a 32x32 block at 90%, more than its 10 vector multiply-adds. The rows an entry
//! can keep all lie in its block row, so the outputs of a whole block row fit a window
//! of `H` (16 to 64) values. With the window in registers, an entry's contribution is
//! `window[k] += acc[sel[b][k]]` for every row `k` of the window (`sel` names the lane
//! that holds row `k`, or none), which on AVX-512 is one `vpermps` and one masked add
//! per 16 rows (see `codegen`'s C emitter), and the window is added to the output once
//! per block row. On FC 2048 at 90% (32x32 blocks, 16 masked lanes, host, 1 thread, a
//! hand-written model of this code): 44.5 us scattered, 31 us windowed.

use super::{find_block_loop, partition_block_rows, read_data_layout, set_weight, BcrData};
use crate::error::ScheduleError;
use crate::loops::{const_int, fresh_name, parts, replace_loop};
use crate::primitive::State;
use tir::visit::{bound_names, expr_uses_var, for_each_stmt, substitute_expr};
use tir::{DType, Expr, ForKind, Function, MemScope, Stmt, Tensor};

const P: &str = "window_block_rows";

/// Window heights are multiples of this (one AVX-512 register of f32).
pub const WINDOW_STEP: i64 = 16;

/// Largest window, in rows (four AVX-512 registers).
pub const MAX_WINDOW: i64 = 64;

/// Block-row windows for weight `weight`, after [`super::vectorize_rows`] (or
/// [`super::vectorize_rows_masked`]) with at least as many lanes as any entry keeps
/// rows (so one chunk holds an entry's rows). When the rows are not partitioned yet,
/// [`partition_block_rows`] is applied first and its loop kept serial (apply
/// `partition_block_rows` before this primitive for a parallel one). The partition
/// loop becomes
///
/// ```text
/// for (brow, 0, np) {
///   alloc win: f32[H] local {
///     for (b, W_brow_ptr[brow], ..) { ...; for (i_o, 0, 1) { alloc row_acc: f32[1, L] local {
///       for (j, 0, nc) { ..vectorized multiply-adds.. }
///       for (wk, 0, H) vectorized { let ws = W_wsel[b * H + wk];
///         win[wk] = win[wk] + select(ws < L, row_acc[0, ws], 0.0); } } } }
///     for (wk_o, 0, H) vectorized { let row = W_wbase[brow] + wk_o; Y[row, 0] = Y[row, 0] + win[wk_o]; }
///   }
/// }
/// ```
///
/// replacing the per-row scatter. New data: `W_wbase: i32[np]`, the first output row
/// of each partition's window (its lowest kept row rounded down to a multiple of `H`,
/// moved down to fit the output), and `W_wsel: u8[nb * H]`, for every entry and window
/// row the lane holding that row's sum, or `L` for a row the entry does not keep. `H`
/// is the smallest multiple of [`WINDOW_STEP`] whose aligned windows hold every
/// partition's rows. A parallel partition loop stays parallel: windows of different
/// partitions must then not overlap (checked on the data).
///
/// Measured (FC 2048x2048 at 90%, host, 1 thread, `grim-tune check`, load-redundancy
/// elimination, masked lanes, windows, specialized offsets, against the same without
/// windows and 4 padded lanes): 16x16 blocks (8 lanes) 70 -> 48 us, 32x32 (16 lanes)
/// 44 -> 34 us, 64x16 (32 lanes) 46.6 -> 37.4 us.
///
/// The sums are reassociated (each block row's partial sums are added to the output
/// once), so results agree with the scattered kernel up to floating-point rounding.
///
/// Errors (naming the weight): not BCR; no row-vectorized scatter (apply
/// `vectorize_rows` first; and only once); an entry keeps more rows than the lanes;
/// the accumulator holds more than one output position per row (a matrix-matrix
/// product or a conv); a partition spans more than [`MAX_WINDOW`] rows; the output has
/// fewer rows than a window; parallel windows overlap.
pub fn window_block_rows(state: &mut State, weight: &str) -> Result<Vec<String>, ScheduleError> {
    let err = |r: String| ScheduleError::illegal(P, weight, r);
    let wsel = format!("{weight}_wsel");
    let wbase = format!("{weight}_wbase");
    let brow_ptr = format!("{weight}_brow_ptr");
    if state.func.param(&wsel).is_some() {
        return Err(err(format!("the rows of `{weight}` already have windows")));
    }
    // The scatter is checked before partitioning, so that its errors name the cause.
    let bl = find_block_loop(&state.func, weight, P)?;
    find_scatter(&bl.rest, weight).map_err(err)?;
    let mut loops = Vec::new();
    if state.func.param(&brow_ptr).is_none() {
        // Partitioned here, the loop stays serial: parallelism is partition_block_rows's
        // to give (a parallel region costs a fork even with one thread).
        let made = partition_block_rows(state, weight)?;
        for l in &made {
            state.func.body = replace_loop(&state.func.body, l, P, &mut |s| {
                let p = parts(s).ok_or_else(|| err("internal: not a loop".into()))?;
                Ok(Stmt::for_(
                    p.var,
                    p.min.clone(),
                    p.extent.clone(),
                    ForKind::Serial,
                    p.body.clone(),
                ))
            })?;
        }
        loops.extend(made);
    }
    let d = read_data_layout(state, weight, P, true)?;
    let bl = find_block_loop(&state.func, weight, P)?;
    let sc = find_scatter(&bl.rest, weight).map_err(err)?;
    let brow = match &bl.min {
        Expr::Load { buffer, indices } if *buffer == brow_ptr => match indices.as_slice() {
            [Expr::Var(v)] => v.clone(),
            _ => None.ok_or_else(|| err(partition_moved(&brow_ptr)))?,
        },
        _ => return Err(err(partition_moved(&brow_ptr))),
    };
    let brow_loop = crate::loops::find_loop(&state.func.body, &brow)
        .and_then(parts)
        .ok_or_else(|| err(partition_moved(&brow_ptr)))?;
    let parallel = brow_loop.kind == ForKind::Parallel;
    let lanes = sc.lanes;
    if let Some(b) = (0..d.len()).find(|b| d.rows_of(*b).len() as i64 > lanes) {
        return Err(err(format!(
            "entry {b} keeps {} rows, more than the {lanes} lanes of its accumulator: \
             vectorize the rows by at least as many lanes as an entry keeps rows",
            d.rows_of(b).len()
        )));
    }
    let out_rows = buffer_extent(&state.func, &sc.out, sc.row_pos)
        .ok_or_else(|| err(format!("internal: no shape for the output `{}`", sc.out)))?;
    let ptr = state
        .weights
        .get(&brow_ptr)
        .and_then(|t| t.as_i32())
        .map(<[i32]>::to_vec)
        .ok_or_else(|| err(format!("no i32 data bound to `{brow_ptr}`")))?;
    let windows = Windows::fit(&d, &ptr, out_rows, parallel).map_err(err)?;
    let h = windows.height;

    // Data: the window bases and, per entry and window row, the lane holding the row,
    // one byte each (lanes <= 64, so the lane and the "not kept" value `L` fit): the
    // selectors are streamed once per entry, and as `i32` they were more bytes than
    // the kept values of a 16x16 block's 5x5 entry.
    let byte = |v: i64| u8::try_from(v).map_err(|_| err(format!("lane {v} does not fit a byte")));
    let mut sel = vec![byte(lanes)?; d.len() * h as usize];
    for (p, base) in windows.bases.iter().enumerate() {
        for b in ptr[p] as usize..ptr[p + 1] as usize {
            for (lane, r) in d.rows_of(b).iter().enumerate() {
                sel[b * h as usize + (r - base) as usize] = byte(lane as i64)?;
            }
        }
    }
    let to_err = |e: tir::tensor::ShapeMismatch| err(e.to_string());
    let sel_t = Tensor::u8(vec![sel.len()], sel).map_err(to_err)?;
    let base_t = Tensor::i32(vec![windows.bases.len()], windows.bases.clone()).map_err(to_err)?;

    // Code.
    let mut taken = bound_names(&state.func.body);
    let mut fresh = |base: String| {
        let n = fresh_name(&base, &taken);
        taken.push(n.clone());
        n
    };
    let prefix = bl.prefix().to_string();
    let win = fresh(format!("{prefix}win"));
    let wk = fresh(format!("{prefix}wk"));
    let ws = fresh(format!("{prefix}ws"));
    let wk_o = fresh(format!("{prefix}wk_o"));
    let wrow = fresh(format!("{prefix}wrow"));
    let mut acc_idx: Vec<Expr> = vec![Expr::Int(0); sc.acc_rank - 1];
    acc_idx.push(Expr::var(&ws));
    let expand = Stmt::for_(
        &wk,
        Expr::Int(0),
        Expr::Int(h),
        ForKind::Vectorized,
        Stmt::let_(
            &ws,
            Expr::load(
                &wsel,
                vec![Expr::var(&bl.var) * Expr::Int(h) + Expr::var(&wk)],
            ),
            Stmt::store(
                &win,
                vec![Expr::var(&wk)],
                Expr::load(&win, vec![Expr::var(&wk)])
                    + Expr::Select(
                        Box::new(Expr::var(&ws).lt(Expr::Int(lanes))),
                        Box::new(Expr::load(&sc.acc, acc_idx)),
                        Box::new(Expr::Float(0.0)),
                    ),
            ),
        ),
    );
    let mut out_idx: Vec<Expr> = sc
        .idx
        .iter()
        .map(|e| {
            sc.unit_loops
                .iter()
                .fold(e.clone(), |e, n| substitute_expr(&e, n, &Expr::Int(0)))
        })
        .collect();
    out_idx[sc.row_pos] = Expr::var(&wrow);
    // Vectorized: the window's rows are consecutive outputs (4% on a GRU step with
    // 16x16 blocks, 96 windows per call: GCC left the serial loop as 16 lane
    // extractions and scalar adds).
    let write_back = Stmt::for_(
        &wk_o,
        Expr::Int(0),
        Expr::Int(h),
        ForKind::Vectorized,
        Stmt::let_(
            &wrow,
            Expr::load(&wbase, vec![Expr::var(&brow)]) + Expr::var(&wk_o),
            Stmt::store(
                &sc.out,
                out_idx.clone(),
                Expr::load(&sc.out, out_idx) + Expr::load(&win, vec![Expr::var(&wk_o)]),
            ),
        ),
    );
    let mut replaced = false;
    state.func.body = replace_loop(&state.func.body, &brow, P, &mut |s| {
        let l = parts(s).ok_or_else(|| err("internal: not a loop".into()))?;
        let inner = replace_scatter(l.body, &sc.acc, &expand, &mut replaced);
        // Every entry keeps at most `L` rows (checked above), so the loop over an
        // entry's chunks of `L` rows runs at most once: with a constant extent the C
        // compiler keeps the accumulator in registers where the row count is not a
        // constant (blocks of different shapes: an FC 256x1152 in 16x16 blocks at 75%,
        // 16 masked lanes, entries versioned by column count, 13.5 -> 8.5 us by hand).
        // An entry without rows then runs it once with every lane masked off, and its
        // selectors add nothing.
        let inner = single_chunk(&inner, &sc.acc);
        Ok(Stmt::for_(
            l.var,
            l.min.clone(),
            l.extent.clone(),
            l.kind,
            Stmt::Allocate {
                name: win.clone(),
                dtype: DType::F32,
                shape: vec![h as usize],
                scope: MemScope::Local,
                body: Box::new(Stmt::Seq(vec![inner, write_back.clone()])),
            },
        ))
    })?;
    if !replaced {
        return Err(err("internal: the scatter vanished".into()));
    }
    set_weight(state, &wsel, sel_t);
    set_weight(state, &wbase, base_t);
    loops.extend([wk, wk_o]);
    Ok(loops)
}

/// `s` with the loop directly around the allocation of `acc` (the chunks of an
/// entry's rows) running once, when its extent is not a constant already.
fn single_chunk(s: &Stmt, acc: &str) -> Stmt {
    tir::visit::map_stmt(s, &mut |st| {
        let l = parts(st)?;
        let chunks = matches!(l.body, Stmt::Allocate { name, .. } if name == acc);
        (chunks && const_int(l.extent).is_none())
            .then(|| Stmt::for_(l.var, l.min.clone(), Expr::Int(1), l.kind, l.body.clone()))
    })
}

fn partition_moved(brow_ptr: &str) -> String {
    format!(
        "the block loop must run from `{brow_ptr}[brow]` directly inside the partition loop \
         (was the partitioned nest restructured?)"
    )
}

/// The scatter of a row-vectorized entry: `alloc acc { ..; for (i_s, 0, L) { if (..) {
/// let row = W_rows[..]; for (n_s, 0, 1) .. { OUT[idx] = OUT[idx] + acc[n_s.., i_s]; }
/// } } }`.
struct Scatter {
    acc: String,
    acc_rank: usize,
    lanes: i64,
    out: String,
    idx: Vec<Expr>,
    row_pos: usize,
    unit_loops: Vec<String>,
}

fn find_scatter(rest: &Stmt, weight: &str) -> Result<Scatter, String> {
    let rows_arr = format!("{weight}_rows");
    let mut found: Vec<Result<Scatter, String>> = Vec::new();
    for_each_stmt(rest, &mut |s| {
        if let Stmt::Allocate {
            name, shape, body, ..
        } = s
        {
            if let Stmt::Seq(items) = &**body {
                if let [_, last] = items.as_slice() {
                    if let Some(r) = match_scatter(name, shape, last, &rows_arr) {
                        found.push(r);
                    }
                }
            }
        }
    });
    match found.len() {
        0 => Err(format!(
            "no row-vectorized scatter of `{weight}` (an accumulator whose lanes are added into \
             the output row by row): apply vectorize_rows first, and window the rows once"
        )),
        1 => found.remove(0),
        n => Err(format!(
            "{n} row-vectorized scatters of `{weight}`; expected one"
        )),
    }
}

/// `Some` when `scatter` is a lane loop loading rows from `rows_arr`: `Ok` with its
/// parts, or `Err` why it cannot get a window.
fn match_scatter(
    acc: &str,
    shape: &[usize],
    scatter: &Stmt,
    rows_arr: &str,
) -> Option<Result<Scatter, String>> {
    let l = parts(scatter)?;
    let lanes = const_int(l.extent)?;
    let Stmt::If {
        then,
        otherwise: None,
        ..
    } = l.body
    else {
        return None;
    };
    let Stmt::Let {
        var: row,
        value: Expr::Load { buffer, .. },
        body,
    } = &**then
    else {
        return None;
    };
    if buffer != rows_arr {
        return None;
    }
    let mut nest = &**body;
    let mut unit_loops = Vec::new();
    while let Some(n) = parts(nest) {
        if const_int(n.extent) != Some(1) {
            return Some(Err(format!(
                "the accumulator holds {} output positions per row (loop `{}`): windows \
                 take one (a matrix-vector product)",
                shape[..shape.len().saturating_sub(1)]
                    .iter()
                    .product::<usize>(),
                n.var
            )));
        }
        unit_loops.push(n.var.to_string());
        nest = n.body;
    }
    let Stmt::Store {
        buffer: out,
        indices: idx,
        value: Expr::Binary(tir::BinOp::Add, _, term),
    } = nest
    else {
        return None;
    };
    if !matches!(&**term, Expr::Load { buffer, .. } if buffer == acc) {
        return None;
    }
    let row_pos = idx.iter().position(|e| *e == Expr::var(row))?;
    if idx
        .iter()
        .enumerate()
        .any(|(k, e)| k != row_pos && expr_uses_var(e, row))
    {
        return Some(Err(format!(
            "the output `{out}` is indexed by the row at more than one position"
        )));
    }
    if shape.last().copied() != Some(lanes as usize) {
        return None;
    }
    Some(Ok(Scatter {
        acc: acc.to_string(),
        acc_rank: shape.len(),
        lanes,
        out: out.clone(),
        idx: idx.clone(),
        row_pos,
        unit_loops,
    }))
}

/// Rebuilds `s` with the scatter (last statement of allocation `acc`) replaced by
/// `expand`.
fn replace_scatter(s: &Stmt, acc: &str, expand: &Stmt, done: &mut bool) -> Stmt {
    tir::visit::map_stmt(s, &mut |st| match st {
        Stmt::Allocate {
            name,
            dtype,
            shape,
            scope,
            body,
        } if name == acc => match &**body {
            Stmt::Seq(items) if items.len() == 2 => {
                *done = true;
                Some(Stmt::Allocate {
                    name: name.clone(),
                    dtype: *dtype,
                    shape: shape.clone(),
                    scope: *scope,
                    body: Box::new(Stmt::Seq(vec![items[0].clone(), expand.clone()])),
                })
            }
            _ => None,
        },
        _ => None,
    })
}

/// Extent of dimension `dim` of buffer `name`: a parameter or an allocation.
fn buffer_extent(func: &Function, name: &str, dim: usize) -> Option<i64> {
    if let Some(p) = func.param(name) {
        return p.shape.get(dim).map(|e| *e as i64);
    }
    let mut found = None;
    for_each_stmt(&func.body, &mut |s| {
        if let Stmt::Allocate { name: n, shape, .. } = s {
            if n == name {
                found = shape.get(dim).map(|e| *e as i64);
            }
        }
    });
    found
}

/// The windows of a partitioned weight: one height, one first row per partition.
struct Windows {
    height: i64,
    bases: Vec<i32>,
}

impl Windows {
    /// The smallest height (a multiple of [`WINDOW_STEP`], at most [`MAX_WINDOW`])
    /// whose aligned windows hold every partition's rows, the bases moved down to fit
    /// `out_rows`; with `parallel`, windows of different partitions must not overlap.
    fn fit(d: &BcrData, ptr: &[i32], out_rows: i64, parallel: bool) -> Result<Windows, String> {
        let spans: Vec<Option<(i32, i32)>> = ptr
            .windows(2)
            .map(|w| {
                let rows = (w[0] as usize..w[1] as usize).flat_map(|b| d.rows_of(b).iter());
                let (lo, hi) =
                    rows.fold((i32::MAX, i32::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
                (lo <= hi).then_some((lo, hi))
            })
            .collect();
        if spans.iter().all(Option::is_none) {
            return Err("it keeps no rows".into());
        }
        let widest = spans
            .iter()
            .flatten()
            .map(|(lo, hi)| hi - lo + 1)
            .max()
            .unwrap_or(1);
        let height = (1..=MAX_WINDOW / WINDOW_STEP)
            .map(|k| k * WINDOW_STEP)
            .find(|h| {
                spans.iter().flatten().all(|(lo, hi)| {
                    let base = i64::from(*lo) / h * h;
                    i64::from(*hi) < base + h
                })
            })
            .ok_or_else(|| {
                format!(
                    "a partition spans {widest} rows (or its rows straddle every aligned \
                     window): windows hold at most {MAX_WINDOW}"
                )
            })?;
        if out_rows < height {
            return Err(format!(
                "the output has {out_rows} rows, fewer than a window of {height}"
            ));
        }
        let bases: Vec<i32> = spans
            .iter()
            .map(|s| {
                let lo = i64::from(s.map_or(0, |(lo, _)| lo));
                (lo / height * height).min(out_rows - height) as i32
            })
            .collect();
        // A partition without rows (only empty entries) adds zeros to its window.
        for (p, s) in spans.iter().enumerate() {
            if let Some((lo, hi)) = s {
                if i64::from(*lo) < i64::from(bases[p])
                    || i64::from(*hi) >= i64::from(bases[p]) + height
                {
                    return Err(format!(
                        "rows {lo}..={hi} of partition {p} do not fit its window at row {} \
                         (the output has {out_rows} rows)",
                        bases[p]
                    ));
                }
            }
        }
        if parallel {
            let mut sorted: Vec<i64> = bases.iter().map(|b| i64::from(*b)).collect();
            sorted.sort_unstable();
            if let Some(w) = sorted.windows(2).find(|w| w[0] + height > w[1]) {
                return Err(format!(
                    "the windows at rows {} and {} overlap ({height} rows each) and the \
                     partition loop is parallel",
                    w[0], w[1]
                ));
            }
        }
        Ok(Windows { height, bases })
    }
}
