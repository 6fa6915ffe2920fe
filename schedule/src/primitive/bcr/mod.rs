//! The BCR primitives (issue 4, the point of GRIM): they know the flattened BCR arrays
//! of a weight `W` (see [`tir::lower`]) and the block loop nest lowering builds over
//! them, and transform both the *data* (index arrays and values, which may change
//! shape) and the loops.
//!
//! | primitive | file | what it does |
//! |---|---|---|
//! | [`reorder_rows`] | `row_reorder.rs` | merges the blocks of a block column that keep the same columns into one *group* (row reordering) |
//! | [`reorder_columns`] | `column_reorder.rs` | permutes the input's rows (the weight's columns) through a gather stage |
//! | [`eliminate_redundant_loads`] | `lre.rs` | loads a group's input values once into a local buffer reused by every row |
//! | [`tile_blocks`], [`partition_block_rows`] | `tiling.rs` | rows / output columns per inner kernel; an outer loop over disjoint row ranges that is proven parallel from the data |
//! | [`vectorize_rows`] | `row_vectorize.rs` | computes an entry's kept rows a vector of lanes at a time, values stored column-major and padded |
//! | [`window_block_rows`] | `row_window.rs` | keeps a block row's outputs in registers; each entry's row sums are added by one lane permutation instead of a scatter |
//! | [`partition_output_rows`] | `output_rows.rs` | a parallel loop over parts of a conv's output rows around the block loop (convs with few block rows) |
//! | [`register_tile`] | `register_tile.rs` | keeps a few kept rows times a row of output positions in registers over an entry's kept columns (convs, FC with N > 1) |
//! | [`tabulate_column_decoding`] | `column_decode.rs` | decodes each kept column (a conv's channel and taps) once per entry into a table instead of at every use |
//! | [`prefetch_values`] | `prefetch.rs` | each entry prefetches the value cache lines of an entry some bytes ahead |
//! | [`specialize_offsets`] | `specialize.rs` | when every entry has the same shape, replaces the loaded entry offsets and counts by constants |
//!
//! Every primitive takes the weight name (`W`, `W_ih`, `W_hh`), finds the block loop
//! `for (b, 0, nb) { let r0 = W_row_ptr[b]; let c0 = W_col_ptr[b]; let v0 =
//! W_val_ptr[b]; let nc = W_col_ptr[b + 1] - c0; ... }` (any prefix, e.g. `gi_b`), and
//! checks the data of the six arrays (offsets start at 0, never decrease, end at the
//! array lengths, values laid out block after block). A weight that is unknown, dense,
//! or whose arrays or loops are not in that form is refused with an error naming it.
//!
//! A suggested order, which every combination in the tests follows or checks:
//! `reorder_rows` -> `reorder_columns` -> `eliminate_redundant_loads` ->
//! `vectorize_rows` (instead of `tile_blocks`, which it excludes) -> `partition_block_rows`
//! -> `window_block_rows` (after `vectorize_rows`) -> `register_tile` (instead of
//! `vectorize_rows` and `tile_blocks`, for outputs with several positions) -> `tile_blocks` ->
//! `tabulate_column_decoding` -> `prefetch_values` -> `specialize_offsets`
//! -> generic loop primitives.

mod column_decode;
mod column_reorder;
mod lre;
mod output_rows;
mod prefetch;
mod register_tile;
mod row_reorder;
mod row_vectorize;
mod row_window;
mod specialize;
mod tiling;
mod version;

pub use column_decode::tabulate_column_decoding;
pub use column_reorder::{reorder_columns, ColumnOrder};
pub use lre::eliminate_redundant_loads;
pub use output_rows::{partition_output_rows, OUTPUT_ROWS};
pub use prefetch::{prefetch_values, CACHE_LINE_BYTES, MAX_PREFETCH_LINES};
pub use register_tile::{register_tile, MAX_TILE};
pub use row_reorder::{reorder_rows, RowOrder};
pub use row_vectorize::{vectorize_rows, vectorize_rows_masked, MAX_ROW_ACC};
pub use row_window::{window_block_rows, MAX_WINDOW, WINDOW_STEP};
pub use specialize::{specialize_offsets, uniform_entry_shape};
pub use tiling::{partition_block_rows, tile_blocks};
pub use version::{version_column_counts, version_counts, MAX_UNROLLED, MAX_VERSIONS};

use crate::error::ScheduleError;
use crate::loops::parts;
use crate::primitive::State;
use std::collections::BTreeMap;
use tir::visit::for_each_stmt;
use tir::{DType, Expr, ForKind, Function, ParamKind, Stmt, Tensor};

/// Suffixes of the six flattened arrays of a BCR weight.
pub const ARRAY_SUFFIXES: [&str; 6] = ["row_ptr", "rows", "col_ptr", "cols", "val_ptr", "val"];

/// The flattened BCR arrays of one weight (see [`tir::lower`]); `nb = row_ptr.len() - 1`
/// entries are groups of rows sharing one column set (blocks, before row reordering).
#[derive(Debug, Clone, PartialEq)]
pub struct BcrData {
    /// `[nb + 1]` offsets into `rows`.
    pub row_ptr: Vec<i32>,
    /// Global row (output position) of every kept row.
    pub rows: Vec<i32>,
    /// `[nb + 1]` offsets into `cols`.
    pub col_ptr: Vec<i32>,
    /// Global column of every kept column.
    pub cols: Vec<i32>,
    /// `[nb + 1]` offsets into `val`.
    pub val_ptr: Vec<i32>,
    /// Values, each entry's dense rows x cols sub-matrix row-major.
    pub val: Vec<f32>,
}

impl BcrData {
    /// Number of entries (blocks or groups).
    pub fn len(&self) -> usize {
        self.row_ptr.len().saturating_sub(1)
    }

    /// True when no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Kept rows of entry `b`.
    pub fn rows_of(&self, b: usize) -> &[i32] {
        &self.rows[self.row_ptr[b] as usize..self.row_ptr[b + 1] as usize]
    }

    /// Kept columns of entry `b`.
    pub fn cols_of(&self, b: usize) -> &[i32] {
        &self.cols[self.col_ptr[b] as usize..self.col_ptr[b + 1] as usize]
    }

    /// Values of entry `b` (rows x cols, row-major).
    pub fn vals_of(&self, b: usize) -> &[f32] {
        &self.val[self.val_ptr[b] as usize..self.val_ptr[b + 1] as usize]
    }

    /// Builds arrays from entries `(rows, cols, values)`.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (Vec<i32>, &'a [i32], Vec<f32>)>,
    ) -> Result<BcrData, String> {
        let mut d = BcrData {
            row_ptr: vec![0],
            rows: Vec::new(),
            col_ptr: vec![0],
            cols: Vec::new(),
            val_ptr: vec![0],
            val: Vec::new(),
        };
        let to_i32 = |n: usize| i32::try_from(n).map_err(|_| format!("{n} overflows i32"));
        for (rows, cols, vals) in entries {
            d.rows.extend_from_slice(&rows);
            d.cols.extend_from_slice(cols);
            d.val.extend_from_slice(&vals);
            d.row_ptr.push(to_i32(d.rows.len())?);
            d.col_ptr.push(to_i32(d.cols.len())?);
            d.val_ptr.push(to_i32(d.val.len())?);
        }
        Ok(d)
    }

    /// Checks the invariants every primitive relies on; with `padded`, an entry's values may also be the
    /// column-major, row-padded layout [`vectorize_rows`] writes (`nc * nrp` values,
    /// `nrp >= nr`), for primitives that move entries without reading their values.
    fn validate_layout(&self, padded: bool) -> Result<(), String> {
        let nb = self.len();
        if self.row_ptr.is_empty() {
            return Err("row_ptr is empty (it needs nb + 1 entries)".into());
        }
        for (name, ptr, len) in [
            ("row_ptr", &self.row_ptr, self.rows.len()),
            ("col_ptr", &self.col_ptr, self.cols.len()),
            ("val_ptr", &self.val_ptr, self.val.len()),
        ] {
            if ptr.len() != nb + 1 {
                return Err(format!(
                    "{name} has {} entries, expected {} like row_ptr",
                    ptr.len(),
                    nb + 1
                ));
            }
            if ptr[0] != 0 || ptr.windows(2).any(|w| w[1] < w[0]) || ptr[nb] as usize != len {
                return Err(format!(
                    "{name} must start at 0, never decrease and end at {len}"
                ));
            }
        }
        for b in 0..nb {
            let (r, c) = (self.rows_of(b).len(), self.cols_of(b).len());
            let v = (self.val_ptr[b + 1] - self.val_ptr[b]) as usize;
            let padded_ok = padded
                && (if c == 0 {
                    v == 0
                } else {
                    v.is_multiple_of(c) && v / c >= r
                });
            if v != r * c && !padded_ok {
                return Err(format!(
                    "entry {b} keeps {r} rows x {c} cols but has {v} values (after \
                     vectorize_rows the values are padded: primitives that read them as \
                     row-major entries must come before it)"
                ));
            }
        }
        if self.rows.iter().chain(&self.cols).any(|x| *x < 0) {
            return Err("negative row or column index".into());
        }
        Ok(())
    }

    /// Largest number of kept columns of an entry (at least 1).
    pub fn max_cols(&self) -> usize {
        (0..self.len())
            .map(|b| self.cols_of(b).len())
            .max()
            .unwrap_or(1)
            .max(1)
    }
}

/// The number of entries (blocks, or groups after [`reorder_rows`]) of weight `weight`
/// in `weights`, or `None` when its `_row_ptr` array is missing.
pub fn group_count(weights: &BTreeMap<String, Tensor>, weight: &str) -> Option<usize> {
    weights
        .get(&format!("{weight}_row_ptr"))
        .map(|t| t.len().saturating_sub(1))
}

/// Reads and validates the six arrays of `weight`.
pub(crate) fn read_data(
    state: &State,
    weight: &str,
    p: &'static str,
) -> Result<BcrData, ScheduleError> {
    let d = read_data_layout(state, weight, p, false)?;
    // Row vectorization stores the values column-major; when no row was padded (the
    // lanes divide every entry's rows, or masked lanes) the counts cannot tell.
    let val = format!("{weight}_val");
    let mut vectorized = false;
    for_each_stmt(&state.func.body, &mut |s| {
        if let Stmt::For {
            kind: ForKind::Vectorized,
            body,
            ..
        } = s
        {
            for_each_stmt(body, &mut |t| {
                vectorized |= tir::visit::stmt_exprs(t)
                    .iter()
                    .any(|e| tir::visit::expr_loads_buffer(e, &val));
            });
        }
    });
    if vectorized {
        return Err(ScheduleError::illegal(
            p,
            weight,
            format!(
                "the values of `{weight}` are read in a vectorized loop (after vectorize_rows \
                 the values are column-major, padded or masked): primitives that read them as \
                 row-major entries must come before it"
            ),
        ));
    }
    Ok(d)
}

/// [`read_data`] that also accepts the padded values of [`vectorize_rows`].
pub(crate) fn read_data_layout(
    state: &State,
    weight: &str,
    p: &'static str,
    padded: bool,
) -> Result<BcrData, ScheduleError> {
    let err = |r: String| ScheduleError::illegal(p, weight, r);
    let arr = |s: &str| format!("{weight}_{s}");
    if state.func.param(&arr("row_ptr")).is_none() {
        return Err(err(match state.func.param(weight) {
            Some(_) => format!("weight `{weight}` is dense, not BCR (no `{weight}_row_ptr` array)"),
            None => format!(
                "unknown weight `{weight}`: the function has no BCR arrays `{weight}_row_ptr`, `{weight}_rows`, ..."
            ),
        }));
    }
    let ints = |s: &str| -> Result<Vec<i32>, ScheduleError> {
        let n = arr(s);
        match state.func.param(&n) {
            Some(pm) if pm.kind == ParamKind::Weight && pm.dtype == DType::I32 => {}
            _ => return Err(err(format!("`{n}` is not an i32 weight parameter"))),
        }
        state
            .weights
            .get(&n)
            .and_then(|t| t.as_i32())
            .map(<[i32]>::to_vec)
            .ok_or_else(|| err(format!("no i32 data bound to `{n}`")))
    };
    let vn = arr("val");
    let val = match state.func.param(&vn) {
        Some(pm) if pm.kind == ParamKind::Weight && pm.dtype == DType::F32 => state
            .weights
            .get(&vn)
            .and_then(|t| t.as_f32())
            .map(<[f32]>::to_vec)
            .ok_or_else(|| err(format!("no f32 data bound to `{vn}`")))?,
        _ => return Err(err(format!("`{vn}` is not an f32 weight parameter"))),
    };
    let d = BcrData {
        row_ptr: ints("row_ptr")?,
        rows: ints("rows")?,
        col_ptr: ints("col_ptr")?,
        cols: ints("cols")?,
        val_ptr: ints("val_ptr")?,
        val,
    };
    d.validate_layout(padded)
        .map_err(|r| err(format!("BCR arrays are malformed: {r}")))?;
    Ok(d)
}

/// Binds `tensor` to weight parameter `name` (adding the parameter before the first
/// output when it is new) and sets the parameter's shape to the tensor's.
pub(crate) fn set_weight(state: &mut State, name: &str, tensor: Tensor) {
    let dtype = tensor.dtype();
    let shape = tensor.shape().to_vec();
    match state.func.params.iter_mut().find(|p| p.name == name) {
        Some(p) => p.shape = shape,
        None => {
            let at = state
                .func
                .params
                .iter()
                .position(|p| p.kind == ParamKind::Output)
                .unwrap_or(state.func.params.len());
            state
                .func
                .params
                .insert(at, tir::Param::new(name, ParamKind::Weight, dtype, shape));
        }
    }
    state.weights.insert(name.to_string(), tensor);
}

/// Writes the six arrays of `weight` back (shapes follow the data).
pub(crate) fn write_data(
    state: &mut State,
    weight: &str,
    d: &BcrData,
    p: &'static str,
) -> Result<(), ScheduleError> {
    let err = |e: tir::tensor::ShapeMismatch| ScheduleError::illegal(p, weight, e.to_string());
    for (s, v) in [
        ("row_ptr", &d.row_ptr),
        ("rows", &d.rows),
        ("col_ptr", &d.col_ptr),
        ("cols", &d.cols),
        ("val_ptr", &d.val_ptr),
    ] {
        let t = Tensor::i32(vec![v.len()], v.clone()).map_err(err)?;
        set_weight(state, &format!("{weight}_{s}"), t);
    }
    let t = Tensor::f32(vec![d.val.len()], d.val.clone()).map_err(err)?;
    set_weight(state, &format!("{weight}_val"), t);
    Ok(())
}

/// The block loop of a weight and the names its header binds.
#[derive(Debug, Clone)]
pub(crate) struct BlockLoop {
    /// Loop variable (`b`, `gi_b`).
    pub var: String,
    /// Lower bound.
    pub min: Expr,
    /// Extent.
    pub extent: Expr,
    /// `r0` (first kept row of the entry in `rows`).
    pub r0: String,
    /// `c0` (first kept column of the entry in `cols`).
    pub c0: String,
    /// `v0` (first value of the entry in `val`).
    pub v0: String,
    /// `nc` (kept columns of the entry).
    pub nc: String,
    /// The statement under the four header lets.
    pub rest: Stmt,
    /// The loop's whole body (the header lets and `rest`).
    pub body: Stmt,
}

impl BlockLoop {
    /// The prefix of the nest's names: `b` -> ``, `gi_b` -> `gi_`.
    pub fn prefix(&self) -> &str {
        self.var.strip_suffix('b').unwrap_or("")
    }
}

fn is_load_of_var(e: &Expr, buffer: &str, var: &str) -> bool {
    matches!(e, Expr::Load { buffer: b, indices } if b == buffer
        && matches!(indices.as_slice(), [Expr::Var(v)] if v == var))
}

fn match_block_loop(s: &Stmt, weight: &str) -> Option<BlockLoop> {
    let l = parts(s)?;
    let arr = |x: &str| format!("{weight}_{x}");
    let Stmt::Let {
        var: r0,
        value: v1,
        body: b1,
    } = l.body
    else {
        return None;
    };
    if !is_load_of_var(v1, &arr("row_ptr"), l.var) {
        return None;
    }
    let Stmt::Let {
        var: c0,
        value: v2,
        body: b2,
    } = &**b1
    else {
        return None;
    };
    let Stmt::Let {
        var: v0,
        value: v3,
        body: b3,
    } = &**b2
    else {
        return None;
    };
    let Stmt::Let {
        var: nc,
        body: rest,
        ..
    } = &**b3
    else {
        return None;
    };
    if !is_load_of_var(v2, &arr("col_ptr"), l.var) || !is_load_of_var(v3, &arr("val_ptr"), l.var) {
        return None;
    }
    Some(BlockLoop {
        var: l.var.to_string(),
        min: l.min.clone(),
        extent: l.extent.clone(),
        r0: r0.clone(),
        c0: c0.clone(),
        v0: v0.clone(),
        nc: nc.clone(),
        rest: (**rest).clone(),
        body: l.body.clone(),
    })
}

/// Finds the block loop of `weight` (after checking its data with [`read_data`]).
pub(crate) fn find_block_loop(
    func: &Function,
    weight: &str,
    p: &'static str,
) -> Result<BlockLoop, ScheduleError> {
    let mut found: Vec<BlockLoop> = Vec::new();
    for_each_stmt(&func.body, &mut |s| {
        if let Some(b) = match_block_loop(s, weight) {
            found.push(b);
        }
    });
    match found.len() {
        1 if version::is_versioned(&found[0].rest, &found[0].nc) => Err(ScheduleError::illegal(
            p,
            weight,
            format!(
                "the entry body of `{weight}` is versioned by kept-column count \
                 (version_column_counts); apply the other BCR primitives before it"
            ),
        )),
        1 => Ok(found.remove(0)),
        0 if !loads_anywhere(&func.body, &format!("{weight}_row_ptr"))
            && loads_anywhere(&func.body, &format!("{weight}_rows")) =>
        {
            Err(ScheduleError::illegal(
                p,
                weight,
                format!(
                    "the block loop of `{weight}` reads `{weight}_rows` but no longer loads \
                     `{weight}_row_ptr`: its offsets were specialized (specialize_offsets); \
                     apply the other BCR primitives before it"
                ),
            ))
        }
        0 if !lets_loading(&func.body, &format!("{weight}_row_ptr")).is_empty() => {
            Err(ScheduleError::illegal(
                p,
                weight,
                format!(
                    "the block loop of `{weight}` was split or restructured: the header \
                     `let r0 = {weight}_row_ptr[b]` no longer sits directly in a loop over `b`; \
                     apply BCR primitives before splitting the block loop"
                ),
            ))
        }
        0 => Err(ScheduleError::illegal(
            p,
            weight,
            format!(
                "function is not in BCR form: no block loop over `{weight}` \
                 (expected `for (b, ...) {{ let r0 = {weight}_row_ptr[b]; let c0 = {weight}_col_ptr[b]; \
                 let v0 = {weight}_val_ptr[b]; let nc = ...; ...`)"
            ),
        )),
        n => Err(ScheduleError::illegal(
            p,
            weight,
            format!("{n} block loops over `{weight}`; expected exactly one"),
        )),
    }
}

/// An entry's kept-rows loop as lowered: `for (i, 0, nr) serial { let row =
/// W_rows[r0 + i]; for (j, ..) { .. } }`, found in a block loop's body.
pub(crate) struct RowsLoop<'s> {
    /// Its variable.
    pub var: String,
    /// Its extent (`W_row_ptr[b + 1] - r0`).
    pub extent: &'s Expr,
    /// The name the row is bound to.
    pub row: &'s str,
    /// The `let row` body: the kept-columns loop.
    pub body: &'s Stmt,
    /// The kept-columns loop's parts.
    pub j: crate::loops::LoopParts<'s>,
}

/// Finds the one kept-rows loop of `weight` in `bl` (errors name the weight;
/// `before` says what the primitive must precede, e.g. "vectorize rows before
/// tile_blocks").
pub(crate) fn rows_loop<'s>(
    bl: &'s BlockLoop,
    weight: &str,
    primitive: &'static str,
    before: &str,
) -> Result<RowsLoop<'s>, ScheduleError> {
    let err = |r: String| ScheduleError::illegal(primitive, weight, r);
    let row_ptr = format!("{weight}_row_ptr");
    let mut found: Vec<&Stmt> = Vec::new();
    for_each_stmt(&bl.rest, &mut |s| {
        if let Stmt::For { extent, .. } = s {
            if tir::visit::expr_loads_buffer(extent, &row_ptr) {
                found.push(s);
            }
        }
    });
    let [stmt] = found.as_slice() else {
        return Err(err(format!(
            "expected one loop over an entry's kept rows (extent `{row_ptr}[b + 1] - r0`), found {}: \
             {before}, and only once",
            found.len()
        )));
    };
    let i_loop = parts(stmt).ok_or_else(|| err("internal: not a loop".into()))?;
    if crate::loops::const_int(i_loop.min) != Some(0) || i_loop.kind != ForKind::Serial {
        return Err(err(format!(
            "the rows loop `{}` must be serial and start at 0",
            i_loop.var
        )));
    }
    let i = i_loop.var.to_string();
    let rows_arr = format!("{weight}_rows");
    let must = || {
        err(format!(
            "the rows loop `{i}` must start with `let row = {rows_arr}[r0 + {i}]`"
        ))
    };
    let Stmt::Let {
        var: row,
        value,
        body,
    } = i_loop.body
    else {
        return Err(must());
    };
    if *value != Expr::load(&rows_arr, vec![Expr::var(&bl.r0) + Expr::var(&i)]) {
        return Err(must());
    }
    let j = parts(body).ok_or_else(|| {
        err(format!(
            "the body of the rows loop `{i}` must be the kept-columns loop (was it row-vectorized?)"
        ))
    })?;
    Ok(RowsLoop {
        var: i,
        extent: i_loop.extent,
        row,
        body,
        j,
    })
}

impl RowsLoop<'_> {
    /// The first name bound inside the rows loop (its variable, and anything the
    /// kept-columns loop binds but the row and the loops named in `allowed`) that the
    /// update's indices `idx` use: an update whose indices use one is not a row's sum.
    pub(crate) fn inner_name_in(&self, idx: &[Expr], allowed: &[&str]) -> Option<String> {
        tir::visit::bound_names(self.body)
            .into_iter()
            .filter(|n| n != self.row && !allowed.contains(&n.as_str()))
            .chain([self.var.clone()])
            .find(|n| idx.iter().any(|e| tir::visit::expr_uses_var(e, n)))
    }
}

/// Rebuilds the block loop of `weight` (found by [`find_block_loop`]) as `f(loop)`.
pub(crate) fn replace_block_loop(
    func: &mut Function,
    bl: &BlockLoop,
    p: &'static str,
    f: impl FnOnce(&Stmt) -> Result<Stmt, ScheduleError>,
) -> Result<(), ScheduleError> {
    let mut f = Some(f);
    func.body = crate::loops::replace_loop(&func.body, &bl.var, p, &mut |s| match f.take() {
        Some(f) => f(s),
        None => Ok(s.clone()),
    })?;
    Ok(())
}

/// Rebuilds the block loop's header lets around a new `rest`.
pub(crate) fn with_rest(block_loop: &Stmt, rest: Stmt) -> Stmt {
    fn go(s: &Stmt, depth: usize, rest: Stmt) -> Stmt {
        match s {
            Stmt::Let { var, value, body } if depth > 0 => {
                Stmt::let_(var.clone(), value.clone(), go(body, depth - 1, rest))
            }
            _ => rest,
        }
    }
    match block_loop {
        Stmt::For {
            var,
            min,
            extent,
            kind,
            body,
        } => Stmt::for_(
            var.clone(),
            min.clone(),
            extent.clone(),
            *kind,
            go(body, 4, rest),
        ),
        other => other.clone(),
    }
}

/// Applies `f` bottom-up to every expression of `e`.
pub(crate) fn map_expr(e: &Expr, f: &mut dyn FnMut(Expr) -> Expr) -> Expr {
    let out = match e {
        Expr::Int(_) | Expr::Float(_) | Expr::Bool(_) | Expr::Var(_) => e.clone(),
        Expr::Binary(op, a, b) => Expr::binary(*op, map_expr(a, f), map_expr(b, f)),
        Expr::Unary(op, a) => Expr::Unary(*op, Box::new(map_expr(a, f))),
        Expr::Select(c, a, b) => Expr::select(map_expr(c, f), map_expr(a, f), map_expr(b, f)),
        Expr::Cast(t, a) => Expr::cast(*t, map_expr(a, f)),
        Expr::Load { buffer, indices } => Expr::Load {
            buffer: buffer.clone(),
            indices: indices.iter().map(|i| map_expr(i, f)).collect(),
        },
        Expr::Call(c, args) => Expr::Call(*c, args.iter().map(|a| map_expr(a, f)).collect()),
    };
    f(out)
}

/// Applies [`map_expr`] with `f` to every expression held anywhere in `s`.
pub(crate) fn map_stmt_exprs(s: &Stmt, f: &mut dyn FnMut(Expr) -> Expr) -> Stmt {
    match s {
        Stmt::For {
            var,
            min,
            extent,
            kind,
            body,
        } => Stmt::for_(
            var.clone(),
            map_expr(min, f),
            map_expr(extent, f),
            *kind,
            map_stmt_exprs(body, f),
        ),
        Stmt::Seq(items) => Stmt::Seq(items.iter().map(|i| map_stmt_exprs(i, f)).collect()),
        Stmt::Let { var, value, body } => {
            Stmt::let_(var.clone(), map_expr(value, f), map_stmt_exprs(body, f))
        }
        Stmt::If {
            cond,
            then,
            otherwise,
        } => Stmt::If {
            cond: map_expr(cond, f),
            then: Box::new(map_stmt_exprs(then, f)),
            otherwise: otherwise.as_ref().map(|o| Box::new(map_stmt_exprs(o, f))),
        },
        Stmt::Store {
            buffer,
            indices,
            value,
        } => Stmt::Store {
            buffer: buffer.clone(),
            indices: indices.iter().map(|i| map_expr(i, f)).collect(),
            value: map_expr(value, f),
        },
        Stmt::Prefetch { buffer, indices } => Stmt::Prefetch {
            buffer: buffer.clone(),
            indices: indices.iter().map(|i| map_expr(i, f)).collect(),
        },
        Stmt::Allocate {
            name,
            dtype,
            shape,
            scope,
            body,
        } => Stmt::Allocate {
            name: name.clone(),
            dtype: *dtype,
            shape: shape.clone(),
            scope: *scope,
            body: Box::new(map_stmt_exprs(body, f)),
        },
    }
}

/// Every name `func` uses: variables bound anywhere in its body, parameters and
/// allocated buffers (what a new name must differ from).
pub(crate) fn taken_names(func: &Function) -> Vec<String> {
    tir::visit::bound_names(&func.body)
        .into_iter()
        .chain(func.params.iter().map(|p| p.name.clone()))
        .chain(allocated_in(&func.body))
        .collect()
}

/// Checks that every store in `body` to a buffer not allocated in it, and every load
/// of such a buffer, has an index for which `is_key` holds at one fixed position per
/// buffer (so iterations with different keys touch different elements); `Err` names
/// the first buffer that has not.
pub(crate) fn outputs_indexed_by(
    body: &Stmt,
    is_key: &dyn Fn(&Expr) -> bool,
) -> Result<(), String> {
    let local = allocated_in(body);
    // Buffer -> candidate positions holding a key in every access.
    let mut positions: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut bad: Option<String> = None;
    for_each_stmt(body, &mut |s| {
        if let Stmt::Store {
            buffer, indices, ..
        } = s
        {
            if !local.contains(buffer) {
                let here: Vec<usize> = (0..indices.len())
                    .filter(|k| is_key(&indices[*k]))
                    .collect();
                let e = positions
                    .entry(buffer.clone())
                    .or_insert_with(|| here.clone());
                e.retain(|k| here.contains(k));
                if e.is_empty() && bad.is_none() {
                    bad = Some(buffer.clone());
                }
            }
        }
    });
    for_each_stmt(body, &mut |s| {
        for e in tir::visit::stmt_exprs(s) {
            tir::visit::for_each_load(e, &mut |b, idx| {
                if let Some(pos) = positions.get_mut(b) {
                    pos.retain(|k| idx.get(*k).is_some_and(is_key));
                    if pos.is_empty() && bad.is_none() {
                        bad = Some(b.to_string());
                    }
                }
            });
        }
    });
    match bad {
        None => Ok(()),
        Some(b) => Err(b),
    }
}

/// True when a non-serial loop encloses loop `name`.
pub(crate) fn in_parallel(s: &Stmt, name: &str) -> bool {
    let mut found = false;
    for_each_stmt(s, &mut |st| {
        if let Stmt::For {
            var, kind, body, ..
        } = st
        {
            if *kind != tir::ForKind::Serial
                && var != name
                && crate::loops::find_loop(body, name).is_some()
            {
                found = true;
            }
        }
    });
    found
}

/// Names of the buffers allocated inside `s`.
pub(crate) fn allocated_in(s: &Stmt) -> Vec<String> {
    let mut out = Vec::new();
    for_each_stmt(s, &mut |st| {
        if let Stmt::Allocate { name, .. } = st {
            out.push(name.clone());
        }
    });
    out
}

/// True when some expression of `s` loads from `buffer`.
fn loads_anywhere(s: &Stmt, buffer: &str) -> bool {
    let mut found = false;
    for_each_stmt(s, &mut |st| {
        found |= tir::visit::stmt_exprs(st)
            .into_iter()
            .any(|e| tir::visit::expr_loads_buffer(e, buffer));
    });
    found
}

/// Variables bound by a `let` whose value loads from `buffer`, with the let statement.
pub(crate) fn lets_loading<'s>(s: &'s Stmt, buffer: &str) -> Vec<&'s Stmt> {
    let mut out = Vec::new();
    for_each_stmt(s, &mut |st| {
        if let Stmt::Let { value, .. } = st {
            if matches!(value, Expr::Load { buffer: b, .. } if b == buffer) {
                out.push(st);
            }
        }
    });
    out
}
