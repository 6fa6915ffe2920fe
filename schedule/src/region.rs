//! Region analysis for the cache and compute-location primitives: which box of a
//! buffer does one iteration of a loop body touch?
//!
//! Every access of the buffer inside the body is read, after inlining the `let`s bound
//! inside the body, as `Σ aᵥ·v + c + offset` per index position, where the `v` are
//! loops of the body with constant bounds, `c` a constant and `offset` an expression
//! of variables bound outside the body (identical for every access in that
//! position). The box of a position is then `offset + [lo, hi]`, with `lo`/`hi` the
//! extremes of `Σ aᵥ·v + c` over the loop ranges. Anything else (an index loading
//! through an index buffer, a product of two loop variables, a loop with a
//! data-dependent extent) is reported with the reason.

use std::collections::BTreeMap;
use tir::visit::{expr_uses_var, for_each_load, stmt_exprs};
use tir::{print_expr, BinOp, Expr, Function, Stmt};

/// One index position read as `Σ coef·var + constant + Σ sign·term`.
#[derive(Debug, Clone, PartialEq)]
pub struct AffineIndex {
    /// Coefficients of the loop variables bound inside the region.
    pub coefs: BTreeMap<String, i64>,
    /// The constant part.
    pub constant: i64,
    /// The invariant terms (variables bound outside), with their signs.
    pub offset: Vec<(i64, Expr)>,
}

impl AffineIndex {
    /// A key identifying the offset (the printed terms, sorted).
    pub fn offset_key(&self) -> Vec<(i64, String)> {
        let mut k: Vec<(i64, String)> = self
            .offset
            .iter()
            .map(|(s, e)| (*s, print_expr(e)))
            .collect();
        k.sort();
        k
    }

    /// The offset as an expression (`0` when empty).
    pub fn offset_expr(&self) -> Expr {
        let mut out = Expr::Int(0);
        for (s, e) in &self.offset {
            out = if *s >= 0 {
                crate::loops::add(out, e.clone())
            } else {
                out - e.clone()
            };
        }
        out
    }

    /// `Σ coef·var + constant + shift` as an expression (the offset left out).
    pub fn relative_expr(&self, shift: i64) -> Expr {
        let mut out = Expr::Int(0);
        for (v, a) in &self.coefs {
            out = crate::loops::add(out, crate::loops::mul(Expr::Int(*a), Expr::var(v)));
        }
        crate::loops::add(out, Expr::Int(self.constant + shift))
    }
}

/// Reads `e` as an affine index over the `inner` variables.
pub fn affine_index(e: &Expr, inner: &[String]) -> Option<AffineIndex> {
    let invariant = !inner.iter().any(|n| expr_uses_var(e, n));
    match e {
        Expr::Int(c) => Some(AffineIndex {
            coefs: BTreeMap::new(),
            constant: *c,
            offset: Vec::new(),
        }),
        Expr::Var(n) if inner.contains(n) => Some(AffineIndex {
            coefs: BTreeMap::from([(n.clone(), 1)]),
            constant: 0,
            offset: Vec::new(),
        }),
        Expr::Binary(op @ (BinOp::Add | BinOp::Sub), a, b) => {
            let mut fa = affine_index(a, inner)?;
            let fb = affine_index(b, inner)?;
            let sign = if *op == BinOp::Add { 1 } else { -1 };
            for (k, v) in fb.coefs {
                *fa.coefs.entry(k).or_insert(0) += sign * v;
            }
            fa.coefs.retain(|_, v| *v != 0);
            fa.constant = fa.constant.checked_add(sign * fb.constant)?;
            fa.offset
                .extend(fb.offset.into_iter().map(|(s, t)| (s * sign, t)));
            Some(fa)
        }
        Expr::Binary(BinOp::Mul, a, b) if !invariant => {
            let (x, c) = match (&**a, &**b) {
                (x, Expr::Int(c)) | (Expr::Int(c), x) => (x, *c),
                _ => return None,
            };
            let f = affine_index(x, inner)?;
            let mut coefs: BTreeMap<String, i64> =
                f.coefs.into_iter().map(|(k, v)| (k, v * c)).collect();
            coefs.retain(|_, v| *v != 0);
            Some(AffineIndex {
                coefs,
                constant: f.constant.checked_mul(c)?,
                offset: f
                    .offset
                    .into_iter()
                    .map(|(s, t)| (s, crate::loops::mul(t, Expr::Int(c))))
                    .collect(),
            })
        }
        _ if invariant => Some(AffineIndex {
            coefs: BTreeMap::new(),
            constant: 0,
            offset: vec![(1, e.clone())],
        }),
        _ => None,
    }
}

/// Maps an access's indices to the buffer and indices that replace it.
pub type AccessMap = dyn Fn(&[Expr]) -> (String, Vec<Expr>);

/// Loop bounds `(min, extent)` by loop name, `None` when not both constant.
pub type LoopBounds = Vec<(String, Option<(i64, i64)>)>;

/// An access of the analysed buffer: its indices with the inner `let`s inlined.
#[derive(Debug, Clone)]
pub struct Access {
    /// True for a store.
    pub is_store: bool,
    /// Indices as written.
    pub indices: Vec<Expr>,
    /// Indices with the `let`s bound inside the region inlined.
    pub resolved: Vec<Expr>,
    /// Whether an `if` inside the region encloses the access.
    pub guarded: bool,
}

/// Loops (with constant bounds, or `None`) and accesses of `buffer` in a body.
#[derive(Debug, Clone, Default)]
pub struct Accesses {
    /// Loop variables bound in the body, with `(min, extent)` when both are constant.
    pub loops: BTreeMap<String, Option<(i64, i64)>>,
    /// Every load and store of the buffer.
    pub accesses: Vec<Access>,
    /// Variables bound by `let` in the body.
    pub lets: Vec<String>,
}

fn resolve(e: &Expr, lets: &[(String, Expr)]) -> Expr {
    let mut out = e.clone();
    for (v, val) in lets.iter().rev() {
        if expr_uses_var(&out, v) {
            out = tir::visit::substitute_expr(&out, v, val);
        }
    }
    out
}

/// Collects the loops of `body` and the accesses of `buffer` in it.
pub fn collect(body: &Stmt, buffer: &str) -> Accesses {
    let mut acc = Accesses::default();
    walk(body, buffer, &mut Vec::new(), false, &mut acc);
    acc
}

fn walk(s: &Stmt, buffer: &str, lets: &mut Vec<(String, Expr)>, guarded: bool, acc: &mut Accesses) {
    for e in stmt_exprs(s) {
        for_each_load(e, &mut |b, idx| {
            if b == buffer {
                acc.accesses.push(Access {
                    is_store: false,
                    indices: idx.to_vec(),
                    resolved: idx.iter().map(|i| resolve(i, lets)).collect(),
                    guarded,
                });
            }
        });
    }
    match s {
        Stmt::For {
            var,
            min,
            extent,
            body,
            ..
        } => {
            match (min, extent) {
                (Expr::Int(a), Expr::Int(e)) => {
                    acc.loops.insert(var.clone(), Some((*a, *e)));
                    walk(body, buffer, lets, guarded, acc);
                }
                (_, Expr::Int(e)) => {
                    // `var` runs over `min + [0, e)`: read it as `min + var'`.
                    acc.loops.insert(var.clone(), Some((0, *e)));
                    let shifted = resolve(min, lets) + Expr::var(var);
                    lets.push((var.clone(), shifted));
                    walk(body, buffer, lets, guarded, acc);
                    lets.pop();
                }
                _ => {
                    acc.loops.insert(var.clone(), None);
                    walk(body, buffer, lets, guarded, acc);
                }
            }
        }
        Stmt::Seq(items) => {
            for i in items {
                walk(i, buffer, lets, guarded, acc);
            }
        }
        Stmt::Let { var, value, body } => {
            acc.lets.push(var.clone());
            let v = resolve(value, lets);
            lets.push((var.clone(), v));
            walk(body, buffer, lets, guarded, acc);
            lets.pop();
        }
        Stmt::If {
            then, otherwise, ..
        } => {
            walk(then, buffer, lets, true, acc);
            if let Some(o) = otherwise {
                walk(o, buffer, lets, true, acc);
            }
        }
        Stmt::Store {
            buffer: b, indices, ..
        } => {
            if b == buffer {
                acc.accesses.push(Access {
                    is_store: true,
                    indices: indices.clone(),
                    resolved: indices.iter().map(|i| resolve(i, lets)).collect(),
                    guarded,
                });
            }
        }
        // A prefetch reads nothing (its indices' own loads are collected above).
        Stmt::Prefetch { .. } => {}
        Stmt::Allocate { body, .. } => walk(body, buffer, lets, guarded, acc),
    }
}

/// The box of one index position: `offset + [lo, hi]`.
#[derive(Debug, Clone)]
pub struct Dim {
    /// The common offset (variables bound outside the region).
    pub offset: AffineIndex,
    /// Smallest relative index.
    pub lo: i64,
    /// Largest relative index.
    pub hi: i64,
}

impl Dim {
    /// Number of elements in this position (`hi - lo + 1`).
    pub fn extent(&self) -> i64 {
        self.hi.saturating_sub(self.lo).saturating_add(1)
    }

    /// `offset + lo`: the first index of the box as an expression.
    pub fn base(&self) -> Expr {
        crate::loops::add(self.offset.offset_expr(), Expr::Int(self.lo))
    }
}

/// The region of a buffer an iteration touches, with each access's affine forms.
#[derive(Debug, Clone)]
pub struct Region {
    /// One box per index position.
    pub dims: Vec<Dim>,
    /// The accesses, each with its affine indices.
    pub forms: Vec<(Access, Vec<AffineIndex>)>,
    /// Loops of the body.
    pub loops: BTreeMap<String, Option<(i64, i64)>>,
}

/// Computes the region of `buffer` that one execution of `body` touches. `Ok(None)`
/// when the body does not access it.
pub fn region(body: &Stmt, buffer: &str) -> Result<Option<Region>, String> {
    let acc = collect(body, buffer);
    if acc.accesses.is_empty() {
        return Ok(None);
    }
    let inner: Vec<String> = acc.loops.keys().cloned().collect();
    let mut forms = Vec::new();
    let mut dims: Vec<Dim> = Vec::new();
    for a in &acc.accesses {
        let mut fs = Vec::new();
        for (d, (orig, idx)) in a.indices.iter().zip(&a.resolved).enumerate() {
            for l in &acc.lets {
                if expr_uses_var(idx, l) {
                    return Err(format!(
                        "index `{}` of `{buffer}` depends on `{l}`, bound by a let inside the loop",
                        print_expr(orig)
                    ));
                }
            }
            let mut loads_inner = false;
            for_each_load(idx, &mut |_, ii| {
                loads_inner |= ii.iter().any(|i| inner.iter().any(|n| expr_uses_var(i, n)))
            });
            let f = match affine_index(idx, &inner) {
                Some(f) if !loads_inner => f,
                _ => {
                    return Err(format!(
                        "index `{}` of `{buffer}` is not an affine function of the loops inside (an indirect or non-linear index)",
                        print_expr(orig)
                    ))
                }
            };
            let (mut lo, mut hi) = (f.constant, f.constant);
            for (v, a) in &f.coefs {
                let Some(Some((min, ext))) = acc.loops.get(v) else {
                    return Err(format!(
                        "index `{}` of `{buffer}` uses loop `{v}`, whose bounds are not constant",
                        print_expr(orig)
                    ));
                };
                if *ext <= 0 {
                    continue;
                }
                let (x, y) = (
                    a.saturating_mul(*min),
                    a.saturating_mul(min.saturating_add(ext - 1)),
                );
                lo = lo.saturating_add(x.min(y));
                hi = hi.saturating_add(x.max(y));
            }
            match dims.get_mut(d) {
                None => dims.push(Dim {
                    offset: f.clone(),
                    lo,
                    hi,
                }),
                Some(dim) => {
                    if dim.offset.offset_key() != f.offset_key() {
                        return Err(format!(
                            "accesses of `{buffer}` have different offsets in index position {d} (`{}` and `{}`)",
                            print_expr(&dim.offset.offset_expr()),
                            print_expr(&f.offset_expr())
                        ));
                    }
                    dim.lo = dim.lo.min(lo);
                    dim.hi = dim.hi.max(hi);
                }
            }
            fs.push(f);
        }
        forms.push((a.clone(), fs));
    }
    for d in &mut dims {
        d.offset.coefs.clear();
        d.offset.constant = 0;
    }
    Ok(Some(Region {
        dims,
        forms,
        loops: acc.loops,
    }))
}

/// The shape of buffer `name`: a parameter of `func` or an `alloc` in its body.
pub fn buffer_shape(func: &Function, name: &str) -> Option<Vec<usize>> {
    if let Some(p) = func.param(name) {
        return Some(p.shape.clone());
    }
    let mut out = None;
    tir::visit::for_each_stmt(&func.body, &mut |s| {
        if let Stmt::Allocate { name: n, shape, .. } = s {
            if n == name && out.is_none() {
                out = Some(shape.clone());
            }
        }
    });
    out
}

/// Rewrites every access (load or store) of `from` in `s` through `f(indices)`,
/// giving `(new buffer, new indices)`.
pub fn rewrite_accesses(s: &Stmt, from: &str, f: &AccessMap) -> Stmt {
    let re = |e: &Expr| rewrite_expr(e, from, f);
    match s {
        Stmt::For {
            var,
            min,
            extent,
            kind,
            body,
        } => Stmt::For {
            var: var.clone(),
            min: re(min),
            extent: re(extent),
            kind: *kind,
            body: Box::new(rewrite_accesses(body, from, f)),
        },
        Stmt::Seq(items) => Stmt::Seq(items.iter().map(|i| rewrite_accesses(i, from, f)).collect()),
        Stmt::Let { var, value, body } => Stmt::Let {
            var: var.clone(),
            value: re(value),
            body: Box::new(rewrite_accesses(body, from, f)),
        },
        Stmt::If {
            cond,
            then,
            otherwise,
        } => Stmt::If {
            cond: re(cond),
            then: Box::new(rewrite_accesses(then, from, f)),
            otherwise: otherwise
                .as_ref()
                .map(|o| Box::new(rewrite_accesses(o, from, f))),
        },
        Stmt::Store {
            buffer,
            indices,
            value,
        } => {
            let indices: Vec<Expr> = indices.iter().map(re).collect();
            let value = re(value);
            if buffer == from {
                let (b, idx) = f(&indices);
                Stmt::Store {
                    buffer: b,
                    indices: idx,
                    value,
                }
            } else {
                Stmt::Store {
                    buffer: buffer.clone(),
                    indices,
                    value,
                }
            }
        }
        // A prefetch of `from` keeps naming it (a hint about the original buffer,
        // which still exists).
        Stmt::Prefetch { buffer, indices } => Stmt::Prefetch {
            buffer: buffer.clone(),
            indices: indices.iter().map(re).collect(),
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
            body: Box::new(rewrite_accesses(body, from, f)),
        },
    }
}

/// Rewrites every load of `from` in `e` (see [`rewrite_accesses`]); when `f` gives
/// an expression-valued replacement use [`replace_loads`].
pub fn rewrite_expr(e: &Expr, from: &str, f: &AccessMap) -> Expr {
    replace_loads(e, from, &|idx| {
        let (b, i) = f(idx);
        Expr::load(b, i)
    })
}

/// Replaces every load of `from` in `e` by `f(rewritten indices)`.
pub fn replace_loads(e: &Expr, from: &str, f: &dyn Fn(&[Expr]) -> Expr) -> Expr {
    let r = |x: &Expr| replace_loads(x, from, f);
    match e {
        Expr::Int(_) | Expr::Float(_) | Expr::Bool(_) | Expr::Var(_) => e.clone(),
        Expr::Binary(op, a, b) => Expr::binary(*op, r(a), r(b)),
        Expr::Unary(op, a) => Expr::Unary(*op, Box::new(r(a))),
        Expr::Select(c, a, b) => Expr::select(r(c), r(a), r(b)),
        Expr::Cast(t, a) => Expr::cast(*t, r(a)),
        Expr::Call(i, args) => Expr::Call(*i, args.iter().map(r).collect()),
        Expr::Load { buffer, indices } => {
            let idx: Vec<Expr> = indices.iter().map(r).collect();
            if buffer == from {
                f(&idx)
            } else {
                Expr::load(buffer.clone(), idx)
            }
        }
    }
}

/// Replaces every load of `from` in the expressions of `s` (see [`replace_loads`]).
pub fn replace_loads_stmt(s: &Stmt, from: &str, f: &dyn Fn(&[Expr]) -> Expr) -> Stmt {
    let re = |e: &Expr| replace_loads(e, from, f);
    match s {
        Stmt::For {
            var,
            min,
            extent,
            kind,
            body,
        } => Stmt::For {
            var: var.clone(),
            min: re(min),
            extent: re(extent),
            kind: *kind,
            body: Box::new(replace_loads_stmt(body, from, f)),
        },
        Stmt::Seq(items) => Stmt::Seq(
            items
                .iter()
                .map(|i| replace_loads_stmt(i, from, f))
                .collect(),
        ),
        Stmt::Let { var, value, body } => Stmt::Let {
            var: var.clone(),
            value: re(value),
            body: Box::new(replace_loads_stmt(body, from, f)),
        },
        Stmt::If {
            cond,
            then,
            otherwise,
        } => Stmt::If {
            cond: re(cond),
            then: Box::new(replace_loads_stmt(then, from, f)),
            otherwise: otherwise
                .as_ref()
                .map(|o| Box::new(replace_loads_stmt(o, from, f))),
        },
        Stmt::Store {
            buffer,
            indices,
            value,
        } => Stmt::Store {
            buffer: buffer.clone(),
            indices: indices.iter().map(re).collect(),
            value: re(value),
        },
        Stmt::Prefetch { buffer, indices } => Stmt::Prefetch {
            buffer: buffer.clone(),
            indices: indices.iter().map(re).collect(),
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
            body: Box::new(replace_loads_stmt(body, from, f)),
        },
    }
}

/// True when `s` writes `buffer`.
pub fn writes(s: &Stmt, buffer: &str) -> bool {
    let mut w = false;
    tir::visit::for_each_stmt(s, &mut |st| {
        if let Stmt::Store { buffer: b, .. } = st {
            w |= b == buffer;
        }
    });
    w
}

/// True when `s` loads `buffer`.
pub fn reads(s: &Stmt, buffer: &str) -> bool {
    let mut r = false;
    tir::visit::for_each_stmt(s, &mut |st| {
        for e in stmt_exprs(st) {
            r |= tir::visit::expr_loads_buffer(e, buffer);
        }
    });
    r
}

/// Buffers `s` writes.
pub fn written_buffers(s: &Stmt) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    tir::visit::for_each_stmt(s, &mut |st| {
        if let Stmt::Store { buffer, .. } = st {
            if !out.contains(buffer) {
                out.push(buffer.clone());
            }
        }
    });
    out
}

/// Buffers `e` loads.
pub fn loaded_buffers(e: &Expr) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for_each_load(e, &mut |b, _| {
        if !out.iter().any(|o| o == b) {
            out.push(b.to_string());
        }
    });
    out
}
