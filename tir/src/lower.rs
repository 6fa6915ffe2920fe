//! Lowering of every workload kind to a default loop nest: naive, obviously correct,
//! and the starting point every schedule transforms.
//!
//! BCR weights are lowered with their index arrays as explicit `i32` buffers, so the
//! sparse structure is visible to every pass (nothing hides in an opaque call). For a
//! weight named `W`, only the non-empty blocks are stored, in grid row-major order:
//!
//! | buffer | shape | contents |
//! |---|---|---|
//! | `W_row_ptr` | `[nb + 1]` | block `b`'s kept rows are `W_rows[W_row_ptr[b] .. W_row_ptr[b+1]]` |
//! | `W_rows` | `[Σ kept rows]` | global row indices of the kept rows, ascending within a block |
//! | `W_col_ptr` | `[nb + 1]` | block `b`'s kept columns are `W_cols[W_col_ptr[b] .. W_col_ptr[b+1]]` |
//! | `W_cols` | `[Σ kept cols]` | global column indices of the kept columns |
//! | `W_val_ptr` | `[nb + 1]` | block `b`'s values start at `W_val[W_val_ptr[b]]` |
//! | `W_val` | `[nnz]` | each block's dense kept-rows x kept-cols values, row-major |
//!
//! The BCR matmul `Y[M,N] += W[M,K] · X[K,N]` is then
//!
//! ```text
//! for (b, 0, nb) {
//!   let r0 = W_row_ptr[b];
//!   let c0 = W_col_ptr[b];
//!   let v0 = W_val_ptr[b];
//!   let nc = W_col_ptr[b + 1] - c0;
//!   for (i, 0, W_row_ptr[b + 1] - r0) {
//!     let row = W_rows[r0 + i];
//!     for (j, 0, nc) {
//!       let col = W_cols[c0 + j];
//!       let w = W_val[v0 + i * nc + j];
//!       for (n, 0, N) {
//!         Y[row, n] = Y[row, n] + w * X[col, n];
//! ...
//! ```

use crate::bcr::BcrMatrix;
use crate::expr::{Expr, Intrinsic};
use crate::function::{Function, Param, ParamKind};
use crate::spec::{Activation, Conv2dSpec, FcSpec, RnnCell, RnnSpec};
use crate::stmt::{MemScope, Stmt};
use crate::tensor::Tensor;
use crate::DType;

/// A weight matrix as the lowering sees it: dense, or BCR with its flattened arrays.
pub(crate) enum WeightRef<'a> {
    /// A dense `rows x cols` buffer named `name`.
    Dense {
        name: &'a str,
        rows: usize,
        cols: usize,
    },
    /// A BCR matrix with `blocks` non-empty blocks whose arrays are named
    /// `name_row_ptr`, `name_rows`, ... (see the module docs).
    Bcr { name: &'a str, blocks: usize },
}

/// The flattened arrays of a BCR matrix's non-empty blocks (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct BcrArrays {
    /// Number of non-empty blocks.
    pub blocks: usize,
    /// `[blocks + 1]` offsets into `rows`.
    pub row_ptr: Vec<i32>,
    /// Global kept-row indices.
    pub rows: Vec<i32>,
    /// `[blocks + 1]` offsets into `cols`.
    pub col_ptr: Vec<i32>,
    /// Global kept-column indices.
    pub cols: Vec<i32>,
    /// `[blocks + 1]` offsets into `values`.
    pub val_ptr: Vec<i32>,
    /// Kept values.
    pub values: Vec<f32>,
}

/// The error returned when a BCR matrix is too large for 32-bit index arrays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("BCR matrix too large for i32 index arrays ({0} entries)")]
pub struct IndexOverflow(pub usize);

fn to_i32(v: usize) -> Result<i32, IndexOverflow> {
    i32::try_from(v).map_err(|_| IndexOverflow(v))
}

impl BcrArrays {
    /// Flattens the non-empty blocks of `m`.
    pub fn from_matrix(m: &BcrMatrix) -> Result<BcrArrays, IndexOverflow> {
        let mut a = BcrArrays {
            blocks: 0,
            row_ptr: vec![0],
            rows: Vec::new(),
            col_ptr: vec![0],
            cols: Vec::new(),
            val_ptr: vec![0],
            values: Vec::new(),
        };
        let (grid_rows, grid_cols) = m.grid();
        for br in 0..grid_rows {
            for bc in 0..grid_cols {
                let block = m.block_at(br, bc);
                if block.values.is_empty() {
                    continue;
                }
                let (row0, col0, _, _) = m.block_extent(br, bc);
                for r in &block.kept_rows {
                    a.rows.push(to_i32(row0 + *r as usize)?);
                }
                for c in &block.kept_cols {
                    a.cols.push(to_i32(col0 + *c as usize)?);
                }
                a.values.extend_from_slice(&block.values);
                a.row_ptr.push(to_i32(a.rows.len())?);
                a.col_ptr.push(to_i32(a.cols.len())?);
                a.val_ptr.push(to_i32(a.values.len())?);
                a.blocks += 1;
            }
        }
        Ok(a)
    }

    /// The weight parameters and their data, for a matrix named `name`.
    pub fn params(&self, name: &str) -> Result<Vec<(Param, Tensor)>, IndexOverflow> {
        let ints = |suffix: &str, v: &Vec<i32>| {
            let p = Param::new(
                format!("{name}_{suffix}"),
                ParamKind::Weight,
                DType::I32,
                vec![v.len()],
            );
            let t = Tensor::i32(vec![v.len()], v.clone()).map_err(|e| IndexOverflow(e.actual))?;
            Ok((p, t))
        };
        let vals = Tensor::f32(vec![self.values.len()], self.values.clone())
            .map_err(|e| IndexOverflow(e.actual))?;
        Ok(vec![
            ints("row_ptr", &self.row_ptr)?,
            ints("rows", &self.rows)?,
            ints("col_ptr", &self.col_ptr)?,
            ints("cols", &self.cols)?,
            ints("val_ptr", &self.val_ptr)?,
            (
                Param::new(
                    format!("{name}_val"),
                    ParamKind::Weight,
                    DType::F32,
                    vec![self.values.len()],
                ),
                vals,
            ),
        ])
    }
}

fn v(name: &str) -> Expr {
    Expr::var(name)
}

fn int(x: usize) -> Expr {
    Expr::Int(x as i64)
}

fn ld(buf: &str, idx: Vec<Expr>) -> Expr {
    Expr::load(buf, idx)
}

fn seq(items: Vec<Stmt>) -> Stmt {
    if items.len() == 1 {
        items.into_iter().next().unwrap_or(Stmt::Seq(Vec::new()))
    } else {
        Stmt::Seq(items)
    }
}

/// `act(x)` as an expression.
pub(crate) fn activation(act: Activation, x: Expr) -> Expr {
    match act {
        Activation::None => x,
        Activation::Relu => x.max(Expr::Float(0.0)),
        Activation::Sigmoid => Expr::call(Intrinsic::Sigmoid, x),
        Activation::Tanh => Expr::call(Intrinsic::Tanh, x),
    }
}

/// The name of loop or let variable `base` in the stage with prefix `p`: `base` for
/// the main stage (empty prefix), `p_base` otherwise. Lowering gives every loop of a
/// function a distinct name, so schedules can address loops by name.
fn nm(p: &str, base: &str) -> String {
    if p.is_empty() {
        base.to_string()
    } else {
        format!("{p}_{base}")
    }
}

/// `for (p_m, 0, rows) for (p_n, 0, cols) body`.
fn for_2d(p: &str, rows: usize, cols: usize, body: Stmt) -> Stmt {
    Stmt::serial(
        nm(p, "m"),
        int(rows),
        Stmt::serial(nm(p, "n"), int(cols), body),
    )
}

/// `out[m, n] = bias[m]` (or `0.0` without a bias) over a `rows x cols` buffer.
fn init_rows(p: &str, out: &str, rows: usize, cols: usize, bias: Option<&str>) -> Stmt {
    let (m, n) = (v(&nm(p, "m")), v(&nm(p, "n")));
    let value = match bias {
        Some(b) => ld(b, vec![m.clone()]),
        None => Expr::Float(0.0),
    };
    for_2d(p, rows, cols, Stmt::store(out, vec![m, n], value))
}

/// `out[m, n] = act(out[m, n])` over a `rows x cols` buffer, or nothing for `none`.
fn apply_act(p: &str, out: &str, rows: usize, cols: usize, act: Activation) -> Option<Stmt> {
    if act == Activation::None {
        return None;
    }
    let idx = vec![v(&nm(p, "m")), v(&nm(p, "n"))];
    let x = ld(out, idx.clone());
    Some(for_2d(
        p,
        rows,
        cols,
        Stmt::store(out, idx, activation(act, x)),
    ))
}

/// `out[r, n] += W[r, c] * input[c, n]` for a 2-D `out` (`rows x n`) and `input`
/// (`cols x n`); `out` must be initialised. Loop names get the prefix `p`.
pub(crate) fn matmul_accumulate(
    p: &str,
    out: &str,
    input: &str,
    w: &WeightRef<'_>,
    n: usize,
) -> Stmt {
    let name = |x: &str| nm(p, x);
    let var = |x: &str| v(&nm(p, x));
    match w {
        WeightRef::Dense {
            name: wn,
            rows,
            cols,
        } => {
            let acc = ld(out, vec![var("m"), var("n")])
                + ld(wn, vec![var("m"), var("k")]) * ld(input, vec![var("k"), var("n")]);
            Stmt::serial(
                name("m"),
                int(*rows),
                Stmt::serial(
                    name("n"),
                    int(n),
                    Stmt::serial(
                        name("k"),
                        int(*cols),
                        Stmt::store(out, vec![var("m"), var("n")], acc),
                    ),
                ),
            )
        }
        WeightRef::Bcr { name: wn, blocks } => {
            let idx = vec![var("row"), var("n")];
            let acc = ld(out, idx.clone()) + var("w") * ld(input, vec![var("col"), var("n")]);
            let inner = Stmt::serial(name("n"), int(n), Stmt::store(out, idx, acc));
            bcr_block_loops(p, wn, *blocks, inner)
        }
    }
}

/// The loops over a BCR matrix's blocks, kept rows and kept columns, binding `row`,
/// `col` (global indices) and `w` (the value) around `inner` (names prefixed by `p`).
fn bcr_block_loops(p: &str, wname: &str, blocks: usize, inner: Stmt) -> Stmt {
    let arr = |s: &str| format!("{wname}_{s}");
    let name = |x: &str| nm(p, x);
    let var = |x: &str| v(&nm(p, x));
    let b1 = var("b") + int(1);
    let per_col = Stmt::let_(
        name("col"),
        ld(&arr("cols"), vec![var("c0") + var("j")]),
        Stmt::let_(
            name("w"),
            ld(
                &arr("val"),
                vec![var("v0") + var("i") * var("nc") + var("j")],
            ),
            inner,
        ),
    );
    let per_row = Stmt::let_(
        name("row"),
        ld(&arr("rows"), vec![var("r0") + var("i")]),
        Stmt::serial(name("j"), var("nc"), per_col),
    );
    let body = Stmt::let_(
        name("r0"),
        ld(&arr("row_ptr"), vec![var("b")]),
        Stmt::let_(
            name("c0"),
            ld(&arr("col_ptr"), vec![var("b")]),
            Stmt::let_(
                name("v0"),
                ld(&arr("val_ptr"), vec![var("b")]),
                Stmt::let_(
                    name("nc"),
                    ld(&arr("col_ptr"), vec![b1.clone()]) - var("c0"),
                    Stmt::serial(
                        name("i"),
                        ld(&arr("row_ptr"), vec![b1]) - var("r0"),
                        per_row,
                    ),
                ),
            ),
        ),
    );
    Stmt::serial(name("b"), int(blocks), body)
}

/// Parameters (with data for weights) and the body of a lowered workload.
pub(crate) struct Lowered {
    pub params: Vec<Param>,
    pub data: Vec<(String, Tensor)>,
    pub body: Stmt,
}

impl Lowered {
    fn new() -> Lowered {
        Lowered {
            params: Vec::new(),
            data: Vec::new(),
            body: Stmt::Seq(Vec::new()),
        }
    }

    fn input(&mut self, name: &str, shape: Vec<usize>) {
        self.params
            .push(Param::new(name, ParamKind::Input, DType::F32, shape));
    }

    fn output(&mut self, name: &str, shape: Vec<usize>) {
        self.params
            .push(Param::new(name, ParamKind::Output, DType::F32, shape));
    }

    fn weight(&mut self, name: &str, t: Tensor) {
        self.params.push(Param::new(
            name,
            ParamKind::Weight,
            DType::F32,
            t.shape().to_vec(),
        ));
        self.data.push((name.to_string(), t));
    }

    /// Adds the BCR arrays of `m` as weights; returns the number of non-empty blocks.
    fn bcr(&mut self, name: &str, m: &BcrMatrix) -> Result<usize, IndexOverflow> {
        let arrays = BcrArrays::from_matrix(m)?;
        for (p, t) in arrays.params(name)? {
            self.data.push((p.name.clone(), t));
            self.params.push(p);
        }
        Ok(arrays.blocks)
    }

    /// Adds the weight matrix's parameters and returns how the loops refer to it.
    fn matrix<'a>(
        &mut self,
        name: &'a str,
        w: &'a WeightData,
    ) -> Result<WeightRef<'a>, IndexOverflow> {
        match w {
            WeightData::Dense(m) => {
                let t = Tensor::f32(vec![m.rows(), m.cols()], m.data().to_vec())
                    .map_err(|e| IndexOverflow(e.actual))?;
                self.weight(name, t);
                Ok(WeightRef::Dense {
                    name,
                    rows: m.rows(),
                    cols: m.cols(),
                })
            }
            WeightData::Bcr(b) => {
                let blocks = self.bcr(name, b)?;
                Ok(WeightRef::Bcr { name, blocks })
            }
        }
    }

    pub fn into_function(self, name: &str) -> (Function, Vec<(String, Tensor)>) {
        (
            Function {
                name: name.to_string(),
                params: self.params,
                body: self.body,
            },
            self.data,
        )
    }
}

/// A weight matrix's data as generated for a workload.
pub enum WeightData {
    /// Dense.
    Dense(crate::Matrix),
    /// BCR-pruned.
    Bcr(BcrMatrix),
}

fn vec_tensor(v: &[f32]) -> Result<Tensor, IndexOverflow> {
    Tensor::f32(vec![v.len()], v.to_vec()).map_err(|e| IndexOverflow(e.actual))
}

/// FC: `Y[M,N] = act(W · X + B)`. Params: `X` in, weights (`W` or `W_*`), `B`, `Y` out.
pub(crate) fn lower_fc(
    s: &FcSpec,
    w: &WeightData,
    bias: Option<&[f32]>,
) -> Result<Lowered, IndexOverflow> {
    let mut l = Lowered::new();
    l.input("X", vec![s.k, s.n]);
    let wref = l.matrix("W", w)?;
    if let Some(b) = bias {
        l.weight("B", vec_tensor(b)?);
    }
    l.output("Y", vec![s.m, s.n]);
    let mut body = vec![
        init_rows("init", "Y", s.m, s.n, bias.map(|_| "B")),
        matmul_accumulate("", "Y", "X", &wref, s.n),
    ];
    body.extend(apply_act("act", "Y", s.m, s.n, s.act));
    l.body = seq(body);
    Ok(l)
}

/// Input height/width index of output position `o` and kernel tap `t`.
fn conv_index(o: &str, t: &str, stride: usize, pad: usize, dilation: usize) -> Expr {
    let mut e = if stride == 1 {
        v(o)
    } else {
        v(o) * int(stride)
    };
    if dilation == 1 {
        e = e + v(t);
    } else {
        e = e + v(t) * int(dilation);
    }
    if pad > 0 {
        e = e - int(pad);
    }
    e
}

/// Name of the zero-padded copy of the input of a conv with padding.
pub const PADDED_INPUT: &str = "Xp";

/// The innermost conv update `Y[nb, o, oh, ow] += w * X[nb, c, ih, iw]` over all
/// images and output positions. With padding it reads the zero-padded copy
/// [`PADDED_INPUT`] (see [`pad_input`]) at `ih + pad`, `iw + pad`, so the update has no
/// bounds check and its output-position loop is a plain, vectorizable stream.
fn conv_update(s: &Conv2dSpec, o: Expr, c: Expr, w: Expr) -> Stmt {
    let (oh, ow) = (s.out_h().unwrap_or(0), s.out_w().unwrap_or(0));
    let y_idx = vec![v("nb"), o, v("oh"), v("ow")];
    let input = if s.pad > 0 { PADDED_INPUT } else { "X" };
    let x = ld(input, vec![v("nb"), c, v("ih"), v("iw")]);
    let update = Stmt::store("Y", y_idx.clone(), ld("Y", y_idx) + w * x);
    let body = Stmt::let_(
        "ih",
        conv_index("oh", "ky", s.stride, 0, s.dilation),
        Stmt::let_(
            "iw",
            conv_index("ow", "kx", s.stride, 0, s.dilation),
            update,
        ),
    );
    Stmt::serial(
        "nb",
        int(s.batch),
        Stmt::serial("oh", int(oh), Stmt::serial("ow", int(ow), body)),
    )
}

/// The stage that copies the input `X[B, C, H, W]` into the middle of the zero
/// buffer [`PADDED_INPUT`]`[B, C, H + 2 pad, W + 2 pad]`; the border stays zero (an
/// allocation starts zeroed).
fn pad_input(s: &Conv2dSpec) -> Stmt {
    let p = s.pad;
    let (h, w) = (v("pad_h") - int(p), v("pad_w") - int(p));
    let inside = h
        .clone()
        .ge(int(0))
        .and(h.clone().lt(int(s.h)))
        .and(w.clone().ge(int(0)))
        .and(w.clone().lt(int(s.w)));
    let copy = Stmt::store(
        PADDED_INPUT,
        vec![v("pad_nb"), v("pad_c"), v("pad_h"), v("pad_w")],
        ld("X", vec![v("pad_nb"), v("pad_c"), h, w]),
    );
    Stmt::serial(
        "pad_nb",
        int(s.batch),
        Stmt::serial(
            "pad_c",
            int(s.c),
            Stmt::serial(
                "pad_h",
                int(s.h + 2 * p),
                Stmt::serial("pad_w", int(s.w + 2 * p), Stmt::if_(inside, copy)),
            ),
        ),
    )
}

/// Conv2d (NCHW): `Y[B,O,OH,OW] = act(conv(X, W) + bias)`. Dense weights have shape
/// `[O, C, kh, kw]`; BCR weights are the `O x (C·kh·kw)` matrix.
pub(crate) fn lower_conv2d(
    s: &Conv2dSpec,
    w: &WeightData,
    bias: Option<&[f32]>,
) -> Result<Lowered, IndexOverflow> {
    let (oh, ow) = (s.out_h().unwrap_or(0), s.out_w().unwrap_or(0));
    let mut l = Lowered::new();
    l.input("X", vec![s.batch, s.c, s.h, s.w]);
    let compute = match w {
        WeightData::Dense(m) => {
            let t = Tensor::f32(vec![s.o, s.c, s.kh, s.kw], m.data().to_vec())
                .map_err(|e| IndexOverflow(e.actual))?;
            l.weight("W", t);
            let wv = ld("W", vec![v("o"), v("c"), v("ky"), v("kx")]);
            let update = conv_update(s, v("o"), v("c"), wv);
            Stmt::serial(
                "o",
                int(s.o),
                Stmt::serial(
                    "c",
                    int(s.c),
                    Stmt::serial("ky", int(s.kh), Stmt::serial("kx", int(s.kw), update)),
                ),
            )
        }
        WeightData::Bcr(b) => {
            let nb = l.bcr("W", b)?;
            let taps = s.kh * s.kw;
            let update = conv_update(s, v("row"), v("c"), v("w"));
            let decoded = Stmt::let_(
                "c",
                v("col") / int(taps),
                Stmt::let_(
                    "ky",
                    v("col") / int(s.kw) % int(s.kh),
                    Stmt::let_("kx", v("col") % int(s.kw), update),
                ),
            );
            bcr_block_loops("", "W", nb, decoded)
        }
    };
    if let Some(b) = bias {
        l.weight("B", vec_tensor(b)?);
    }
    l.output("Y", vec![s.batch, s.o, oh, ow]);
    let idx = |p: &str| {
        vec![
            v(&nm(p, "nb")),
            v(&nm(p, "o")),
            v(&nm(p, "oh")),
            v(&nm(p, "ow")),
        ]
    };
    let init_value = match bias {
        Some(_) => ld("B", vec![v("init_o")]),
        None => Expr::Float(0.0),
    };
    let nest4 = |p: &str, body: Stmt| {
        Stmt::serial(
            nm(p, "nb"),
            int(s.batch),
            Stmt::serial(
                nm(p, "o"),
                int(s.o),
                Stmt::serial(
                    nm(p, "oh"),
                    int(oh),
                    Stmt::serial(nm(p, "ow"), int(ow), body),
                ),
            ),
        )
    };
    let mut body = vec![
        nest4("init", Stmt::store("Y", idx("init"), init_value)),
        compute,
    ];
    if s.act != Activation::None {
        let y = ld("Y", idx("act"));
        body.push(nest4(
            "act",
            Stmt::store("Y", idx("act"), activation(s.act, y)),
        ));
    }
    l.body = if s.pad > 0 {
        body.insert(0, pad_input(s));
        Stmt::Allocate {
            name: PADDED_INPUT.into(),
            dtype: DType::F32,
            shape: vec![s.batch, s.c, s.h + 2 * s.pad, s.w + 2 * s.pad],
            scope: MemScope::Global,
            body: Box::new(seq(body)),
        }
    } else {
        seq(body)
    };
    Ok(l)
}

/// One GRU or LSTM step. Params: `x [input, batch]`, `h_prev [hidden, batch]`
/// (`c_prev` for LSTM), weights `W_ih`, `W_hh` (or their BCR arrays), `b_ih`, `b_hh`,
/// outputs `h_next` (and `c_next`). Gate pre-activations go to local buffers
/// `gi = W_ih·x + b_ih` and `gh = W_hh·h + b_hh` of shape `[gates·hidden, batch]`.
pub(crate) fn lower_rnn(
    s: &RnnSpec,
    w_ih: &WeightData,
    w_hh: &WeightData,
    b_ih: &[f32],
    b_hh: &[f32],
) -> Result<Lowered, IndexOverflow> {
    let rows = s.cell.gates() * s.hidden;
    let (hid, batch) = (s.hidden, s.batch);
    let mut l = Lowered::new();
    l.input("x", vec![s.input, batch]);
    l.input("h_prev", vec![hid, batch]);
    if s.cell == RnnCell::Lstm {
        l.input("c_prev", vec![hid, batch]);
    }
    let ih = l.matrix("W_ih", w_ih)?;
    let hh = l.matrix("W_hh", w_hh)?;
    l.weight("b_ih", vec_tensor(b_ih)?);
    l.weight("b_hh", vec_tensor(b_hh)?);
    l.output("h_next", vec![hid, batch]);
    if s.cell == RnnCell::Lstm {
        l.output("c_next", vec![hid, batch]);
    }
    // Gate g of unit j: gi[g*hidden + j, n].
    let gate = |buf: &str, g: usize| {
        let row = if g == 0 {
            v("j")
        } else {
            int(g * hid) + v("j")
        };
        ld(buf, vec![row, v("n")])
    };
    let sig = |e: Expr| Expr::call(Intrinsic::Sigmoid, e);
    let tanh = |e: Expr| Expr::call(Intrinsic::Tanh, e);
    let jn = || vec![v("j"), v("n")];
    let cell = match s.cell {
        RnnCell::Gru => Stmt::let_(
            "r",
            sig(gate("gi", 0) + gate("gh", 0)),
            Stmt::let_(
                "z",
                sig(gate("gi", 1) + gate("gh", 1)),
                Stmt::let_(
                    "cand",
                    tanh(gate("gi", 2) + v("r") * gate("gh", 2)),
                    Stmt::store(
                        "h_next",
                        jn(),
                        (Expr::Float(1.0) - v("z")) * v("cand") + v("z") * ld("h_prev", jn()),
                    ),
                ),
            ),
        ),
        RnnCell::Lstm => Stmt::let_(
            "ig",
            sig(gate("gi", 0) + gate("gh", 0)),
            Stmt::let_(
                "fg",
                sig(gate("gi", 1) + gate("gh", 1)),
                Stmt::let_(
                    "gg",
                    tanh(gate("gi", 2) + gate("gh", 2)),
                    Stmt::let_(
                        "og",
                        sig(gate("gi", 3) + gate("gh", 3)),
                        Stmt::let_(
                            "cn",
                            v("fg") * ld("c_prev", jn()) + v("ig") * v("gg"),
                            Stmt::Seq(vec![
                                Stmt::store("c_next", jn(), v("cn")),
                                Stmt::store("h_next", jn(), v("og") * tanh(v("cn"))),
                            ]),
                        ),
                    ),
                ),
            ),
        ),
    };
    let pointwise = Stmt::serial("j", int(hid), Stmt::serial("n", int(batch), cell));
    let inner = Stmt::Seq(vec![
        init_rows("gi_init", "gi", rows, batch, Some("b_ih")),
        init_rows("gh_init", "gh", rows, batch, Some("b_hh")),
        matmul_accumulate("gi", "gi", "x", &ih, batch),
        matmul_accumulate("gh", "gh", "h_prev", &hh, batch),
        pointwise,
    ]);
    let alloc = |name: &str, body: Stmt| Stmt::Allocate {
        name: name.to_string(),
        dtype: DType::F32,
        shape: vec![rows, batch],
        scope: MemScope::Global,
        body: Box::new(body),
    };
    l.body = alloc("gi", alloc("gh", inner));
    Ok(l)
}

/// Bias add: `Y[m, n] = X[m, n] + B[m]`.
pub(crate) fn lower_bias_add(m: usize, n: usize, bias: &[f32]) -> Result<Lowered, IndexOverflow> {
    let mut l = Lowered::new();
    l.input("X", vec![m, n]);
    l.weight("B", vec_tensor(bias)?);
    l.output("Y", vec![m, n]);
    let value = ld("X", vec![v("m"), v("n")]) + ld("B", vec![v("m")]);
    l.body = for_2d("", m, n, Stmt::store("Y", vec![v("m"), v("n")], value));
    Ok(l)
}

/// Activation: `Y[m, n] = act(X[m, n])`.
pub(crate) fn lower_activation(act: Activation, m: usize, n: usize) -> Lowered {
    let mut l = Lowered::new();
    l.input("X", vec![m, n]);
    l.output("Y", vec![m, n]);
    let value = activation(act, ld("X", vec![v("m"), v("n")]));
    l.body = for_2d("", m, n, Stmt::store("Y", vec![v("m"), v("n")], value));
    l
}
