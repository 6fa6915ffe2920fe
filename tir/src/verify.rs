//! The semantic verifier: checks that a [`Function`] is well formed.
//!
//! A function is well formed when
//! - its parameter names are unique;
//! - every variable is bound by an enclosing `for` or `let` (lexical scoping; an inner
//!   binding shadows an outer one of the same name);
//! - every load and store names a parameter or an enclosing `alloc`, with one index per
//!   dimension; an `alloc` may not reuse the name of a parameter or of an enclosing
//!   `alloc` (sibling allocations may share a name), and its element count must fit in
//!   `usize`;
//! - types are consistent (see [`BinOp`] and [`type_of`]): arithmetic on two `Int` or
//!   two `F32` operands, `%` on `Int` only, comparisons of two `Int` or two `F32`
//!   operands give `Bool`, `&&`, `||` and `!` take `Bool`; `select` has a `Bool`
//!   condition and branches of one type; intrinsics take one `F32` argument; indices and
//!   `for` bounds are `Int`; `if` conditions are `Bool`; a stored value has the scalar
//!   type of the buffer's element type; casts go `Int -> F32`, `F32 -> Int`,
//!   `Bool -> Int`, or from a type to itself (a no-op);
//! - no store writes to an `in` or `weight` parameter;
//! - expressions and statements nest at most [`MAX_NESTING`] deep.
//!
//! Errors say what is wrong and where, as a path of enclosing constructs such as
//! ``function `fc` > for loop `b` > store to `Y` > index 1``.

use crate::dtype::{DType, ScalarType};
use crate::expr::{BinOp, Expr, Intrinsic, UnOp};
use crate::function::{Function, ParamKind};
use crate::stmt::Stmt;

/// Why a function is not well formed. Every variant but [`VerifyError::DuplicateParam`]
/// carries `at`, the path to the offending construct.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Two parameters share a name.
    #[error("duplicate parameter `{name}`")]
    DuplicateParam {
        /// The repeated name.
        name: String,
    },
    /// An `alloc` reuses the name of a parameter or of an enclosing `alloc`.
    #[error("allocation `{name}` shadows {shadowed} of the same name (in {at})")]
    DuplicateBuffer {
        /// The allocation's name.
        name: String,
        /// What it shadows: `"a parameter"` or `"an enclosing allocation"`.
        shadowed: &'static str,
        /// Where.
        at: String,
    },
    /// An `alloc` whose element count overflows `usize`.
    #[error("allocation `{name}` of shape {shape:?} is too large (in {at})")]
    AllocTooLarge {
        /// The allocation's name.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
        /// Where.
        at: String,
    },
    /// A variable that no enclosing `for` or `let` binds.
    #[error("unbound variable `{name}` (in {at})")]
    UnboundVar {
        /// The variable.
        name: String,
        /// Where.
        at: String,
    },
    /// A load or store of a buffer that is neither a parameter nor an enclosing `alloc`.
    #[error("unknown buffer `{name}` (in {at})")]
    UnknownBuffer {
        /// The buffer name.
        name: String,
        /// Where.
        at: String,
    },
    /// A load or store with the wrong number of indices.
    #[error(
        "buffer `{buffer}` has rank {expected} but is accessed with {actual} indices (in {at})"
    )]
    RankMismatch {
        /// The buffer.
        buffer: String,
        /// Its rank.
        expected: usize,
        /// Indices given.
        actual: usize,
        /// Where.
        at: String,
    },
    /// An intrinsic called with other than one argument.
    #[error("intrinsic `{intrinsic}` takes 1 argument, got {actual} (in {at})")]
    BadArity {
        /// The intrinsic's name.
        intrinsic: &'static str,
        /// Arguments given.
        actual: usize,
        /// Where.
        at: String,
    },
    /// A type rule is broken; `detail` says which.
    #[error("type error: {detail} (in {at})")]
    Type {
        /// What is wrong, e.g. ``operands of `+` have types int and f32``.
        detail: String,
        /// Where.
        at: String,
    },
    /// Expressions and statements nested deeper than [`MAX_NESTING`].
    #[error("nesting deeper than {limit} expressions and statements (in {at})")]
    TooDeep {
        /// The limit, [`MAX_NESTING`].
        limit: usize,
        /// Where.
        at: String,
    },
    /// A store to an `in` or `weight` parameter.
    #[error("store to read-only {kind} parameter `{buffer}` (in {at})")]
    ReadOnlyStore {
        /// The parameter.
        buffer: String,
        /// Its kind (`in` or `weight`).
        kind: &'static str,
        /// Where.
        at: String,
    },
}

/// The deepest nesting of expressions and statements a well-formed function may have
/// (counting each expression and statement on the way from the body to a leaf; the
/// items of a `Seq` are one level below it). Real kernels nest a few dozen levels; the
/// limit keeps recursive passes over the IR, this verifier included, within a 2 MiB
/// thread stack even in unoptimised builds.
pub const MAX_NESTING: usize = 512;

/// What the verifier knows about a buffer in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferInfo {
    /// Name used by loads and stores.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Number of dimensions.
    pub rank: usize,
    /// The parameter kind, or `None` for a local allocation.
    pub param_kind: Option<ParamKind>,
}

impl BufferInfo {
    /// True when stores to the buffer are allowed (outputs and local allocations).
    pub fn writable(&self) -> bool {
        matches!(self.param_kind, None | Some(ParamKind::Output))
    }
}

/// The variables and buffers in scope at some point of a function, innermost last.
///
/// Used by [`type_of`]; build one with [`TypeEnv::for_function`] and extend it with
/// [`TypeEnv::push_var`] / [`TypeEnv::push_buffer`] as you descend into a body.
#[derive(Debug, Clone, Default)]
pub struct TypeEnv {
    vars: Vec<(String, ScalarType)>,
    buffers: Vec<BufferInfo>,
}

impl TypeEnv {
    /// An empty environment: no variable, no buffer.
    pub fn new() -> TypeEnv {
        TypeEnv::default()
    }

    /// The environment at the top of `f`'s body: its parameters, no variable.
    pub fn for_function(f: &Function) -> TypeEnv {
        TypeEnv {
            vars: Vec::new(),
            buffers: f
                .params
                .iter()
                .map(|p| BufferInfo {
                    name: p.name.clone(),
                    dtype: p.dtype,
                    rank: p.shape.len(),
                    param_kind: Some(p.kind),
                })
                .collect(),
        }
    }

    /// Binds `name` to a value of type `ty`, shadowing any outer binding.
    pub fn push_var(&mut self, name: impl Into<String>, ty: ScalarType) {
        self.vars.push((name.into(), ty));
    }

    /// Removes the innermost variable binding.
    pub fn pop_var(&mut self) {
        self.vars.pop();
    }

    /// Brings a buffer into scope.
    pub fn push_buffer(&mut self, info: BufferInfo) {
        self.buffers.push(info);
    }

    /// Removes the innermost buffer.
    pub fn pop_buffer(&mut self) {
        self.buffers.pop();
    }

    /// The type of the innermost binding of `name`.
    pub fn var(&self, name: &str) -> Option<ScalarType> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|&(_, t)| t)
    }

    /// The innermost buffer called `name`.
    pub fn buffer(&self, name: &str) -> Option<&BufferInfo> {
        self.buffers.iter().rev().find(|b| b.name == name)
    }
}

/// Checks that `f` is well formed (see the [module docs](self)).
pub fn verify(f: &Function) -> Result<(), VerifyError> {
    for (i, p) in f.params.iter().enumerate() {
        if f.params[..i].iter().any(|q| q.name == p.name) {
            return Err(VerifyError::DuplicateParam {
                name: p.name.clone(),
            });
        }
    }
    let mut cx = Checker {
        env: TypeEnv::for_function(f),
        path: vec![format!("function `{}`", f.name)],
        depth: 0,
    };
    cx.stmt(&f.body)
}

/// The type of `e` in `env`, checking the type rules of every sub-expression.
///
/// Errors carry the path from `e` down to the offending sub-expression (e.g.
/// ``expression > load from `X` > index 0``).
pub fn type_of(e: &Expr, env: &TypeEnv) -> Result<ScalarType, VerifyError> {
    let mut cx = Checker {
        env: env.clone(),
        path: vec!["expression".to_string()],
        depth: 0,
    };
    cx.expr(e)
}

/// True when `Cast(to, e)` is allowed for an `e` of type `from`.
pub fn cast_allowed(from: ScalarType, to: ScalarType) -> bool {
    use ScalarType::*;
    from == to || matches!((from, to), (Int, F32) | (F32, Int) | (Bool, Int))
}

/// The result type of `a op b` for operands of types `a` and `b`, or `None` when the
/// operator does not apply to them.
pub fn binary_result(op: BinOp, a: ScalarType, b: ScalarType) -> Option<ScalarType> {
    use ScalarType::*;
    if a != b {
        return None;
    }
    match op {
        BinOp::And | BinOp::Or => (a == Bool).then_some(Bool),
        BinOp::Mod => (a == Int).then_some(Int),
        _ if op.is_comparison() => (a != Bool).then_some(Bool),
        _ => (a != Bool).then_some(a),
    }
}

struct Checker {
    env: TypeEnv,
    path: Vec<String>,
    /// Current nesting of expressions and statements.
    depth: usize,
}

impl Checker {
    fn at(&self) -> String {
        self.path.join(" > ")
    }

    fn type_err(&self, detail: String) -> VerifyError {
        VerifyError::Type {
            detail,
            at: self.at(),
        }
    }

    /// Runs `k` with `frame` pushed onto the path.
    fn within<T>(&mut self, frame: String, k: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(frame);
        let r = k(self);
        self.path.pop();
        r
    }

    /// Checks that `e` has type `want`; `what` names it in the error.
    fn expect(&mut self, e: &Expr, want: ScalarType, what: &str) -> Result<(), VerifyError> {
        let got = self.expr(e)?;
        if got != want {
            return Err(self.type_err(format!("{what} must be {want}, got {got}")));
        }
        Ok(())
    }

    /// Checks the buffer and indices of a load or store; returns the buffer's info.
    fn access(&mut self, buffer: &str, indices: &[Expr]) -> Result<BufferInfo, VerifyError> {
        let Some(info) = self.env.buffer(buffer).cloned() else {
            return Err(VerifyError::UnknownBuffer {
                name: buffer.to_string(),
                at: self.at(),
            });
        };
        if indices.len() != info.rank {
            return Err(VerifyError::RankMismatch {
                buffer: buffer.to_string(),
                expected: info.rank,
                actual: indices.len(),
                at: self.at(),
            });
        }
        for (k, ix) in indices.iter().enumerate() {
            self.within(format!("index {k}"), |cx| {
                cx.expect(ix, ScalarType::Int, "an index")
            })?;
        }
        Ok(info)
    }

    /// Runs `k` one level deeper, failing past [`MAX_NESTING`].
    fn nested<T>(
        &mut self,
        k: impl FnOnce(&mut Self) -> Result<T, VerifyError>,
    ) -> Result<T, VerifyError> {
        if self.depth >= MAX_NESTING {
            return Err(VerifyError::TooDeep {
                limit: MAX_NESTING,
                at: self.at(),
            });
        }
        self.depth += 1;
        let r = k(self);
        self.depth -= 1;
        r
    }

    fn expr(&mut self, e: &Expr) -> Result<ScalarType, VerifyError> {
        self.nested(|cx| cx.expr_inner(e))
    }

    fn expr_inner(&mut self, e: &Expr) -> Result<ScalarType, VerifyError> {
        use ScalarType::*;
        match e {
            Expr::Int(_) => Ok(Int),
            Expr::Float(_) => Ok(F32),
            Expr::Bool(_) => Ok(Bool),
            Expr::Var(name) => self.env.var(name).ok_or_else(|| VerifyError::UnboundVar {
                name: name.clone(),
                at: self.at(),
            }),
            Expr::Binary(op, a, b) => {
                let ta = self.expr(a)?;
                let tb = self.expr(b)?;
                binary_result(*op, ta, tb).ok_or_else(|| {
                    self.type_err(format!(
                        "operator `{}` does not apply to {ta} and {tb}",
                        op.symbol()
                    ))
                })
            }
            Expr::Unary(UnOp::Not, a) => {
                self.expect(a, Bool, "the operand of `!`")?;
                Ok(Bool)
            }
            Expr::Select(c, a, b) => self.within("select".into(), |cx| {
                cx.expect(c, Bool, "the condition of select")?;
                let ta = cx.expr(a)?;
                let tb = cx.expr(b)?;
                if ta != tb {
                    return Err(cx.type_err(format!("select branches have types {ta} and {tb}")));
                }
                Ok(ta)
            }),
            Expr::Cast(to, a) => {
                let from = self.expr(a)?;
                if !cast_allowed(from, *to) {
                    return Err(self.type_err(format!("cannot cast {from} to {to}")));
                }
                Ok(*to)
            }
            Expr::Load { buffer, indices } => self
                .within(format!("load from `{buffer}`"), |cx| {
                    cx.access(buffer, indices)
                })
                .map(|info| info.dtype.scalar()),
            Expr::Call(intr, args) => self.call(*intr, args),
        }
    }

    fn call(&mut self, intr: Intrinsic, args: &[Expr]) -> Result<ScalarType, VerifyError> {
        self.within(format!("call to `{}`", intr.name()), |cx| {
            if args.len() != 1 {
                return Err(VerifyError::BadArity {
                    intrinsic: intr.name(),
                    actual: args.len(),
                    at: cx.at(),
                });
            }
            cx.expect(&args[0], ScalarType::F32, "the argument")?;
            Ok(ScalarType::F32)
        })
    }

    fn stmt(&mut self, s: &Stmt) -> Result<(), VerifyError> {
        self.nested(|cx| cx.stmt_inner(s))
    }

    fn stmt_inner(&mut self, s: &Stmt) -> Result<(), VerifyError> {
        use ScalarType::*;
        match s {
            Stmt::For {
                var,
                min,
                extent,
                body,
                ..
            } => self.within(format!("for loop `{var}`"), |cx| {
                cx.within("min".into(), |cx| cx.expect(min, Int, "a loop bound"))?;
                cx.within("extent".into(), |cx| {
                    cx.expect(extent, Int, "a loop extent")
                })?;
                cx.env.push_var(var.clone(), Int);
                let r = cx.stmt(body);
                cx.env.pop_var();
                r
            }),
            Stmt::Seq(items) => items.iter().try_for_each(|s| self.stmt(s)),
            Stmt::Let { var, value, body } => self.within(format!("let `{var}`"), |cx| {
                let ty = cx.within("value".into(), |cx| cx.expr(value))?;
                cx.env.push_var(var.clone(), ty);
                let r = cx.stmt(body);
                cx.env.pop_var();
                r
            }),
            Stmt::If {
                cond,
                then,
                otherwise,
            } => self.within("if".into(), |cx| {
                cx.within("condition".into(), |cx| {
                    cx.expect(cond, Bool, "an if condition")
                })?;
                cx.within("then".into(), |cx| cx.stmt(then))?;
                if let Some(o) = otherwise {
                    cx.within("else".into(), |cx| cx.stmt(o))?;
                }
                Ok(())
            }),
            Stmt::Store {
                buffer,
                indices,
                value,
            } => self.within(format!("store to `{buffer}`"), |cx| {
                let info = cx.access(buffer, indices)?;
                if !info.writable() {
                    let kind = info.param_kind.map_or("local", |k| k.name());
                    return Err(VerifyError::ReadOnlyStore {
                        buffer: buffer.clone(),
                        kind,
                        at: cx.at(),
                    });
                }
                let want = info.dtype.scalar();
                cx.within("value".into(), |cx| {
                    let got = cx.expr(value)?;
                    if got != want {
                        return Err(cx.type_err(format!(
                            "stored value must be {want} (buffer element type {}), got {got}",
                            info.dtype
                        )));
                    }
                    Ok(())
                })
            }),
            Stmt::Prefetch { buffer, indices } => self
                .within(format!("prefetch of `{buffer}`"), |cx| {
                    cx.access(buffer, indices).map(|_| ())
                }),
            Stmt::Allocate {
                name,
                dtype,
                shape,
                body,
                ..
            } => self.within(format!("alloc `{name}`"), |cx| {
                if let Some(prev) = cx.env.buffer(name) {
                    return Err(VerifyError::DuplicateBuffer {
                        name: name.clone(),
                        shadowed: if prev.param_kind.is_some() {
                            "a parameter"
                        } else {
                            "an enclosing allocation"
                        },
                        at: cx.at(),
                    });
                }
                if shape
                    .iter()
                    .try_fold(1usize, |n, &d| n.checked_mul(d))
                    .is_none()
                {
                    return Err(VerifyError::AllocTooLarge {
                        name: name.clone(),
                        shape: shape.clone(),
                        at: cx.at(),
                    });
                }
                cx.env.push_buffer(BufferInfo {
                    name: name.clone(),
                    dtype: *dtype,
                    rank: shape.len(),
                    param_kind: None,
                });
                let r = cx.stmt(body);
                cx.env.pop_buffer();
                r
            }),
        }
    }
}
