//! The reference interpreter: every kernel grim generates is checked against it.
//!
//! [`run`] executes a [`Function`] on host [`Tensor`]s, one per parameter, passed by
//! name; `out` tensors are read and written in place. It first [`verify`]s the
//! function, then resolves it into an internal form (variables become slot indices,
//! buffers become storage indices with precomputed strides, expressions are split by
//! type so no value carries a run-time tag), then executes that.
//!
//! # Semantics
//! - `Int` is `i64` with *checked* arithmetic: overflow is an error. `/` and `%` are
//!   floor division and floor modulo (`-7 / 2 == -4`, `-7 % 2 == 1`, `7 % -2 == -1`);
//!   a zero divisor is an error.
//! - `F32` arithmetic is IEEE `f32`; `min`/`max` on `F32` are [`f32::min`]/[`f32::max`]
//!   (a NaN operand yields the other operand, like C's `fminf`/`fmaxf`); comparisons
//!   are IEEE (every comparison with NaN is false except `!=`). Intrinsics use
//!   [`Intrinsic::eval`].
//! - `select`, `&&` and `||` evaluate all their operands (no short circuit; an operand
//!   that errors, e.g. an out-of-bounds load, is an error even when its value is not
//!   needed). Guard a possibly out-of-bounds access with `if`, not with `&&`.
//! - Operands are evaluated left to right; a load or store evaluates all its indices,
//!   then checks each against its dimension (`0 <= i < dim`), then (for a store)
//!   evaluates the value.
//! - `for` evaluates `min` and `extent` once, then runs `var = min, ..., min + extent - 1`
//!   in order, whatever its [`ForKind`](crate::ForKind); an extent `<= 0` runs nothing.
//! - `alloc` makes a zero-filled buffer, visible in its body only, and fresh (zeroed
//!   again) each time the statement runs.
//! - Loads from `i32` buffers give `Int`; storing an `Int` to an `i32` buffer is an error
//!   unless it fits in `i32`.
//! - Casts: `F32 -> Int` truncates toward zero (NaN or out of `i64` range is an error),
//!   `Int -> F32` rounds to nearest (`as f32`), `Bool -> Int` gives 0 or 1, a cast to the
//!   operand's own type does nothing.
//! - Every statement executed (each loop iteration's body, each store, ...) costs one
//!   step, and running an `alloc` of `n` elements costs `n` more; past
//!   [`Interpreter::max_steps`] the run stops with [`InterpError::StepLimit`].
//! - On error the argument tensors are left unchanged: outputs are written back only
//!   when the whole function ran.
//!
//! The interpreter never panics, whatever the function or arguments: anything wrong is
//! an [`InterpError`]. (Functions nested deeper than [`MAX_NESTING`] levels are
//! rejected, which bounds its recursion.)

use crate::dtype::{DType, ScalarType};
use crate::expr::{BinOp, Expr, Intrinsic, UnOp};
use crate::function::{Function, ParamKind};
use crate::stmt::Stmt;
use crate::tensor::{Tensor, TensorData, TensorDataMut};
use crate::verify::{verify, VerifyError, MAX_NESTING};
use std::collections::BTreeMap;

/// Why the interpreter could not run a function to completion.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InterpError {
    /// The function is not well formed.
    #[error("function failed verification: {0}")]
    Verify(#[from] VerifyError),
    /// No tensor was passed for a parameter.
    #[error(
        "missing argument for parameter `{param}` (expected a {dtype} tensor of shape {shape:?})"
    )]
    MissingArg {
        /// The parameter.
        param: String,
        /// Its element type.
        dtype: DType,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A tensor was passed under a name that is not a parameter.
    #[error("unexpected argument `{name}`: the function has no parameter of that name")]
    UnexpectedArg {
        /// The argument's name.
        name: String,
    },
    /// A tensor whose element type or shape differs from its parameter's.
    #[error("argument `{param}`: expected a {expected_dtype} tensor of shape {expected_shape:?}, got a {actual_dtype} tensor of shape {actual_shape:?}")]
    ArgMismatch {
        /// The parameter.
        param: String,
        /// Its element type.
        expected_dtype: DType,
        /// Its shape.
        expected_shape: Vec<usize>,
        /// The tensor's element type.
        actual_dtype: DType,
        /// The tensor's shape.
        actual_shape: Vec<usize>,
    },
    /// A load or store outside its buffer.
    #[error("{access} `{buffer}`: index {index:?} is out of bounds for shape {shape:?}")]
    OutOfBounds {
        /// `"load from"`, `"store to"` or `"prefetch of"`.
        access: &'static str,
        /// The buffer.
        buffer: String,
        /// The index tuple.
        index: Vec<i64>,
        /// The buffer's shape.
        shape: Vec<usize>,
    },
    /// A load or store of a buffer that is not in scope (only without verification).
    #[error("unknown buffer `{name}`")]
    MissingBuffer {
        /// The buffer name.
        name: String,
    },
    /// A variable that is not in scope (only without verification).
    #[error("unbound variable `{name}`")]
    UnboundVar {
        /// The variable.
        name: String,
    },
    /// An ill-typed expression or statement (only without verification).
    #[error("type error: {detail}")]
    Type {
        /// What is wrong.
        detail: String,
    },
    /// Another structural problem: duplicate names, wrong index or argument count,
    /// store to a read-only parameter, oversized allocation (only without verification).
    #[error("malformed function: {detail}")]
    Malformed {
        /// What is wrong.
        detail: String,
    },
    /// `Int` arithmetic overflowed `i64`.
    #[error("integer overflow in {detail}")]
    IntOverflow {
        /// The operation, e.g. `9223372036854775807 + 1`.
        detail: String,
    },
    /// `Int` division or modulo by zero.
    #[error("integer division by zero in {detail}")]
    DivByZero {
        /// The operation, e.g. `7 / 0`.
        detail: String,
    },
    /// A cast of NaN or of an out-of-range float to `Int`.
    #[error("cannot cast {value} to int: NaN or out of range")]
    CastOutOfRange {
        /// The float.
        value: f32,
    },
    /// A store to an `i32` buffer of a value that does not fit in `i32`.
    #[error("store to `{buffer}`: value {value} does not fit in i32")]
    I32Overflow {
        /// The buffer.
        buffer: String,
        /// The value.
        value: i64,
    },
    /// More than [`Interpreter::max_steps`] steps.
    #[error("step limit of {limit} exceeded (runaway loop?)")]
    StepLimit {
        /// The limit.
        limit: u64,
    },
    /// An `alloc` larger than [`Interpreter::max_alloc_elems`], or that the host could
    /// not allocate.
    #[error("allocation `{name}` of {elems} elements exceeds the limit of {limit}")]
    AllocLimit {
        /// The allocation.
        name: String,
        /// Its element count.
        elems: usize,
        /// The limit.
        limit: usize,
    },
}

/// Runs `f` on `args` (one tensor per parameter, by name; outputs are updated in place)
/// with the default [`Interpreter`].
pub fn run(f: &Function, args: &mut BTreeMap<String, Tensor>) -> Result<(), InterpError> {
    Interpreter::default().run(f, args).map(|_| ())
}

/// Like [`run`], with a step limit of `max_steps` instead of the default.
pub fn run_with_limit(
    f: &Function,
    args: &mut BTreeMap<String, Tensor>,
    max_steps: u64,
) -> Result<(), InterpError> {
    Interpreter {
        max_steps,
        ..Interpreter::default()
    }
    .run(f, args)
    .map(|_| ())
}

/// Interpreter settings. [`Interpreter::default`] is what [`run`] uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    /// Most steps (statement executions, plus elements of allocations) one run may take.
    /// Default: 2 000 000 000.
    pub max_steps: u64,
    /// Most elements one `alloc` may have. Default: 2^27 (512 MiB of `f32`).
    pub max_alloc_elems: usize,
    /// Skips [`verify`]; the interpreter still rejects ill-formed functions with its own
    /// checks (as [`InterpError::Type`], [`InterpError::UnboundVar`], ...). For testing
    /// the interpreter itself. Default: false.
    pub skip_verify: bool,
}

impl Default for Interpreter {
    fn default() -> Interpreter {
        Interpreter {
            max_steps: 2_000_000_000,
            max_alloc_elems: 1 << 27,
            skip_verify: false,
        }
    }
}

/// What a successful run cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunStats {
    /// Steps taken (see [`Interpreter::max_steps`]).
    pub steps: u64,
}

impl Interpreter {
    /// The default settings.
    pub fn new() -> Interpreter {
        Interpreter::default()
    }

    /// These settings with the step limit set to `max_steps`.
    pub fn with_max_steps(self, max_steps: u64) -> Interpreter {
        Interpreter { max_steps, ..self }
    }

    /// Runs `f` on `args` (see [`run`]); returns the steps taken.
    ///
    /// Functions nested more than 64 levels deep run on a helper thread with a large
    /// stack, so that any nesting up to [`MAX_NESTING`] works whatever the caller's
    /// stack size and the optimisation level (the passes recurse once per level).
    pub fn run(
        &self,
        f: &Function,
        args: &mut BTreeMap<String, Tensor>,
    ) -> Result<RunStats, InterpError> {
        if !deeper_than(f, SHALLOW) {
            return self.run_here(f, args);
        }
        let on_helper = std::thread::scope(|s| {
            let helper = std::thread::Builder::new()
                .name("tir-interp".into())
                .stack_size(STACK_BYTES)
                .spawn_scoped(s, || self.run_here(f, args))
                .ok()?;
            // A panic would be a bug in the interpreter: pass it on unchanged.
            Some(
                helper
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            )
        });
        match on_helper {
            Some(r) => r,
            // No thread to be had: run here (fine for all but very deep functions).
            None => self.run_here(f, args),
        }
    }

    /// [`Interpreter::run`] on the current thread.
    fn run_here(
        &self,
        f: &Function,
        args: &mut BTreeMap<String, Tensor>,
    ) -> Result<RunStats, InterpError> {
        if !self.skip_verify {
            verify(f)?;
        }
        let prog = Compiler::compile(f)?;
        check_args(f, args)?;

        let mut m = Machine {
            prog: &prog,
            ints: vec![0; prog.n_int],
            floats: vec![0.0; prog.n_float],
            bools: vec![false; prog.n_bool],
            fmem: vec![Vec::new(); prog.n_fmem],
            imem: vec![Vec::new(); prog.n_imem],
            steps: 0,
            max_steps: self.max_steps,
            max_alloc: self.max_alloc_elems,
        };
        for b in prog.bufs.iter().filter(|b| b.param.is_some()) {
            let Some(t) = args.get(&b.name) else {
                return Err(missing(&b.name));
            };
            match (t.data(), b.dtype) {
                (TensorData::F32(v), DType::F32) => m.fmem[b.mem] = v.clone(),
                (TensorData::I32(v), DType::I32) => m.imem[b.mem] = v.clone(),
                (TensorData::U8(v), DType::U8) => {
                    m.imem[b.mem] = v.iter().map(|&x| i32::from(x)).collect()
                }
                _ => return Err(internal("argument dtype changed")),
            }
        }
        m.exec(&prog.body).map_err(|e| *e)?;

        for b in prog.bufs.iter() {
            if b.param != Some(ParamKind::Output) {
                continue;
            }
            let Some(t) = args.get_mut(&b.name) else {
                return Err(missing(&b.name));
            };
            let written = match (t.data_mut(), b.dtype) {
                (TensorDataMut::F32(dst), DType::F32) if dst.len() == m.fmem[b.mem].len() => {
                    dst.copy_from_slice(&m.fmem[b.mem]);
                    true
                }
                (TensorDataMut::I32(dst), DType::I32) if dst.len() == m.imem[b.mem].len() => {
                    dst.copy_from_slice(&m.imem[b.mem]);
                    true
                }
                (TensorDataMut::U8(dst), DType::U8) if dst.len() == m.imem[b.mem].len() => {
                    // Every store wrapped its value into 0..=255.
                    for (d, &v) in dst.iter_mut().zip(&m.imem[b.mem]) {
                        *d = v as u8;
                    }
                    true
                }
                _ => false,
            };
            if !written {
                return Err(internal("output storage changed size"));
            }
        }
        Ok(RunStats { steps: m.steps })
    }
}

/// Functions nested at most this deep run on the caller's thread.
const SHALLOW: usize = 64;

/// True when `f` nests expressions and statements more than `limit` levels deep (as
/// counted by [`MAX_NESTING`]). Recurses at most `limit + 1` levels, in small frames.
fn deeper_than(f: &Function, limit: usize) -> bool {
    fn expr(e: &Expr, budget: usize) -> bool {
        let Some(b) = budget.checked_sub(1) else {
            return true;
        };
        match e {
            Expr::Int(_) | Expr::Float(_) | Expr::Bool(_) | Expr::Var(_) => false,
            Expr::Binary(_, x, y) => expr(x, b) || expr(y, b),
            Expr::Unary(_, x) | Expr::Cast(_, x) => expr(x, b),
            Expr::Select(c, x, y) => expr(c, b) || expr(x, b) || expr(y, b),
            Expr::Load { indices: xs, .. } | Expr::Call(_, xs) => xs.iter().any(|x| expr(x, b)),
        }
    }
    fn stmt(s: &Stmt, budget: usize) -> bool {
        let Some(b) = budget.checked_sub(1) else {
            return true;
        };
        match s {
            Stmt::For {
                min, extent, body, ..
            } => expr(min, b) || expr(extent, b) || stmt(body, b),
            Stmt::Seq(items) => items.iter().any(|s| stmt(s, b)),
            Stmt::Let { value, body, .. } => expr(value, b) || stmt(body, b),
            Stmt::If {
                cond,
                then,
                otherwise,
            } => expr(cond, b) || stmt(then, b) || otherwise.as_ref().is_some_and(|o| stmt(o, b)),
            Stmt::Store { indices, value, .. } => {
                indices.iter().any(|x| expr(x, b)) || expr(value, b)
            }
            Stmt::Prefetch { indices, .. } => indices.iter().any(|x| expr(x, b)),
            Stmt::Allocate { body, .. } => stmt(body, b),
        }
    }
    stmt(&f.body, limit)
}

/// Stack size of the interpreter's helper thread: room for [`MAX_NESTING`] levels of
/// recursion in unoptimised builds, with a wide margin (only touched pages are used).
const STACK_BYTES: usize = 64 << 20;

fn missing(name: &str) -> InterpError {
    InterpError::MissingBuffer {
        name: name.to_string(),
    }
}

fn internal(what: &str) -> InterpError {
    InterpError::Malformed {
        detail: format!("internal interpreter error: {what}"),
    }
}

fn check_args(f: &Function, args: &BTreeMap<String, Tensor>) -> Result<(), InterpError> {
    for p in &f.params {
        let Some(t) = args.get(&p.name) else {
            return Err(InterpError::MissingArg {
                param: p.name.clone(),
                dtype: p.dtype,
                shape: p.shape.clone(),
            });
        };
        if t.dtype() != p.dtype || t.shape() != p.shape.as_slice() {
            return Err(InterpError::ArgMismatch {
                param: p.name.clone(),
                expected_dtype: p.dtype,
                expected_shape: p.shape.clone(),
                actual_dtype: t.dtype(),
                actual_shape: t.shape().to_vec(),
            });
        }
    }
    if let Some(name) = args.keys().find(|k| f.param(k).is_none()) {
        return Err(InterpError::UnexpectedArg { name: name.clone() });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// The resolved form.

/// A buffer of the resolved program: a parameter or an allocation.
struct BufMeta {
    name: String,
    dtype: DType,
    shape: Vec<usize>,
    /// Element count.
    len: usize,
    /// Index into `Machine::fmem` (f32) or `Machine::imem` (i32).
    mem: usize,
    /// The parameter's kind, `None` for an allocation.
    param: Option<ParamKind>,
}

struct Program {
    bufs: Vec<BufMeta>,
    n_int: usize,
    n_float: usize,
    n_bool: usize,
    n_fmem: usize,
    n_imem: usize,
    body: S,
}

/// A load or store site: for each dimension its index expression, its extent (as
/// `i64`, saturated) and its stride.
struct Access {
    buf: usize,
    mem: usize,
    dims: Box<[(IE, i64, usize)]>,
}

/// An `Int` expression.
enum IE {
    Const(i64),
    Var(usize),
    Add(Box<IE>, Box<IE>),
    Sub(Box<IE>, Box<IE>),
    Mul(Box<IE>, Box<IE>),
    Div(Box<IE>, Box<IE>),
    Mod(Box<IE>, Box<IE>),
    Min(Box<IE>, Box<IE>),
    Max(Box<IE>, Box<IE>),
    Load(Box<Access>),
    Select(Box<BE>, Box<IE>, Box<IE>),
    FromF(Box<FE>),
    FromB(Box<BE>),
}

/// An `F32` expression.
enum FE {
    Const(f32),
    Var(usize),
    Add(Box<FE>, Box<FE>),
    Sub(Box<FE>, Box<FE>),
    Mul(Box<FE>, Box<FE>),
    Div(Box<FE>, Box<FE>),
    Min(Box<FE>, Box<FE>),
    Max(Box<FE>, Box<FE>),
    Load(Box<Access>),
    Select(Box<BE>, Box<FE>, Box<FE>),
    FromI(Box<IE>),
    Call(Intrinsic, Box<FE>),
}

#[derive(Clone, Copy)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn apply<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
}

/// A `Bool` expression.
enum BE {
    Const(bool),
    Var(usize),
    CmpI(Cmp, Box<IE>, Box<IE>),
    CmpF(Cmp, Box<FE>, Box<FE>),
    And(Box<BE>, Box<BE>),
    Or(Box<BE>, Box<BE>),
    Not(Box<BE>),
    Select(Box<BE>, Box<BE>, Box<BE>),
}

/// A statement.
enum S {
    For {
        slot: usize,
        min: IE,
        extent: IE,
        body: Box<S>,
    },
    Seq(Vec<S>),
    LetI(usize, IE, Box<S>),
    LetF(usize, FE, Box<S>),
    LetB(usize, BE, Box<S>),
    If(BE, Box<S>, Option<Box<S>>),
    StoreF(Access, FE),
    StoreI(Access, IE),
    /// A prefetch: its indices are evaluated and checked, nothing is read.
    Touch(Access),
    Alloc(usize, Box<S>),
}

/// A resolved expression of some type.
enum CE {
    I(IE),
    F(FE),
    B(BE),
}

impl CE {
    fn ty(&self) -> ScalarType {
        match self {
            CE::I(_) => ScalarType::Int,
            CE::F(_) => ScalarType::F32,
            CE::B(_) => ScalarType::Bool,
        }
    }
}

#[derive(Clone, Copy)]
enum Slot {
    I(usize),
    F(usize),
    B(usize),
}

// ---------------------------------------------------------------------------------
// Resolution (with its own checks, so that it never panics on a function that was not
// verified).

struct Compiler<'f> {
    /// Current nesting of expressions and statements (at most [`MAX_NESTING`]).
    depth: usize,
    vars: Vec<(&'f str, Slot)>,
    scope: Vec<(&'f str, usize)>,
    bufs: Vec<BufMeta>,
    n_int: usize,
    n_float: usize,
    n_bool: usize,
    n_fmem: usize,
    n_imem: usize,
}

type CR<T> = Result<T, InterpError>;

fn type_err(detail: String) -> InterpError {
    InterpError::Type { detail }
}

fn malformed(detail: String) -> InterpError {
    InterpError::Malformed { detail }
}

impl<'f> Compiler<'f> {
    fn compile(f: &'f Function) -> CR<Program> {
        let mut c = Compiler {
            depth: 0,
            vars: Vec::new(),
            scope: Vec::new(),
            bufs: Vec::new(),
            n_int: 0,
            n_float: 0,
            n_bool: 0,
            n_fmem: 0,
            n_imem: 0,
        };
        for p in &f.params {
            if c.scope.iter().any(|&(n, _)| n == p.name) {
                return Err(malformed(format!("duplicate parameter `{}`", p.name)));
            }
            let id = c.new_buf(&p.name, p.dtype, &p.shape, Some(p.kind))?;
            c.scope.push((&p.name, id));
        }
        let body = c.stmt(&f.body)?;
        Ok(Program {
            bufs: c.bufs,
            n_int: c.n_int,
            n_float: c.n_float,
            n_bool: c.n_bool,
            n_fmem: c.n_fmem,
            n_imem: c.n_imem,
            body,
        })
    }

    fn new_buf(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[usize],
        param: Option<ParamKind>,
    ) -> CR<usize> {
        let len = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| malformed(format!("buffer `{name}` of shape {shape:?} is too large")))?;
        let counter = match dtype {
            DType::F32 => &mut self.n_fmem,
            // `u8` buffers live among the integer memories (values 0 to 255).
            DType::I32 | DType::U8 => &mut self.n_imem,
        };
        let mem = *counter;
        *counter += 1;
        self.bufs.push(BufMeta {
            name: name.to_string(),
            dtype,
            shape: shape.to_vec(),
            len,
            mem,
            param,
        });
        Ok(self.bufs.len() - 1)
    }

    fn new_slot(&mut self, ty: ScalarType) -> Slot {
        let (counter, mk): (&mut usize, fn(usize) -> Slot) = match ty {
            ScalarType::Int => (&mut self.n_int, Slot::I),
            ScalarType::F32 => (&mut self.n_float, Slot::F),
            ScalarType::Bool => (&mut self.n_bool, Slot::B),
        };
        *counter += 1;
        mk(*counter - 1)
    }

    fn buffer(&self, name: &str) -> CR<usize> {
        self.scope
            .iter()
            .rev()
            .find(|&&(n, _)| n == name)
            .map(|&(_, id)| id)
            .ok_or_else(|| missing(name))
    }

    fn access(&mut self, buffer: &str, indices: &'f [Expr]) -> CR<Access> {
        let buf = self.buffer(buffer)?;
        let rank = self.bufs[buf].shape.len();
        if indices.len() != rank {
            return Err(malformed(format!(
                "buffer `{buffer}` has rank {rank} but is accessed with {} indices",
                indices.len()
            )));
        }
        let shape = self.bufs[buf].shape.clone();
        let mut dims = Vec::with_capacity(rank);
        let mut stride = 1usize;
        let mut strides = vec![0usize; rank];
        for k in (0..rank).rev() {
            strides[k] = stride;
            stride = stride.wrapping_mul(shape[k]);
        }
        for (k, ix) in indices.iter().enumerate() {
            let e = self.int(ix, "an index")?;
            let dim = i64::try_from(shape[k]).unwrap_or(i64::MAX);
            dims.push((e, dim, strides[k]));
        }
        Ok(Access {
            buf,
            mem: self.bufs[buf].mem,
            dims: dims.into_boxed_slice(),
        })
    }

    fn int(&mut self, e: &'f Expr, what: &str) -> CR<IE> {
        match self.expr(e)? {
            CE::I(x) => Ok(x),
            other => Err(type_err(format!("{what} must be int, got {}", other.ty()))),
        }
    }

    fn float(&mut self, e: &'f Expr, what: &str) -> CR<FE> {
        match self.expr(e)? {
            CE::F(x) => Ok(x),
            other => Err(type_err(format!("{what} must be f32, got {}", other.ty()))),
        }
    }

    fn boolean(&mut self, e: &'f Expr, what: &str) -> CR<BE> {
        match self.expr(e)? {
            CE::B(x) => Ok(x),
            other => Err(type_err(format!("{what} must be bool, got {}", other.ty()))),
        }
    }

    /// Runs `k` one level deeper, failing past [`MAX_NESTING`].
    fn nested<T>(&mut self, k: impl FnOnce(&mut Self) -> CR<T>) -> CR<T> {
        if self.depth >= MAX_NESTING {
            return Err(malformed(format!(
                "nesting deeper than {MAX_NESTING} expressions and statements"
            )));
        }
        self.depth += 1;
        let r = k(self);
        self.depth -= 1;
        r
    }

    fn expr(&mut self, e: &'f Expr) -> CR<CE> {
        self.nested(|c| c.expr_inner(e))
    }

    fn expr_inner(&mut self, e: &'f Expr) -> CR<CE> {
        Ok(match e {
            Expr::Int(v) => CE::I(IE::Const(*v)),
            Expr::Float(v) => CE::F(FE::Const(*v)),
            Expr::Bool(v) => CE::B(BE::Const(*v)),
            Expr::Var(name) => {
                let Some(&(_, slot)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return Err(InterpError::UnboundVar { name: name.clone() });
                };
                match slot {
                    Slot::I(s) => CE::I(IE::Var(s)),
                    Slot::F(s) => CE::F(FE::Var(s)),
                    Slot::B(s) => CE::B(BE::Var(s)),
                }
            }
            Expr::Binary(op, a, b) => {
                let a = self.expr(a)?;
                let b = self.expr(b)?;
                binary(*op, a, b)?
            }
            Expr::Unary(UnOp::Not, a) => {
                CE::B(BE::Not(Box::new(self.boolean(a, "the operand of `!`")?)))
            }
            Expr::Select(c, a, b) => {
                let c = Box::new(self.boolean(c, "the condition of select")?);
                match (self.expr(a)?, self.expr(b)?) {
                    (CE::I(a), CE::I(b)) => CE::I(IE::Select(c, Box::new(a), Box::new(b))),
                    (CE::F(a), CE::F(b)) => CE::F(FE::Select(c, Box::new(a), Box::new(b))),
                    (CE::B(a), CE::B(b)) => CE::B(BE::Select(c, Box::new(a), Box::new(b))),
                    (a, b) => {
                        return Err(type_err(format!(
                            "select branches have types {} and {}",
                            a.ty(),
                            b.ty()
                        )))
                    }
                }
            }
            Expr::Cast(to, a) => match (self.expr(a)?, to) {
                (x, to) if x.ty() == *to => x,
                (CE::I(x), ScalarType::F32) => CE::F(FE::FromI(Box::new(x))),
                (CE::F(x), ScalarType::Int) => CE::I(IE::FromF(Box::new(x))),
                (CE::B(x), ScalarType::Int) => CE::I(IE::FromB(Box::new(x))),
                (x, to) => return Err(type_err(format!("cannot cast {} to {to}", x.ty()))),
            },
            Expr::Load { buffer, indices } => {
                let acc = Box::new(self.access(buffer, indices)?);
                match self.bufs[acc.buf].dtype {
                    DType::F32 => CE::F(FE::Load(acc)),
                    DType::I32 | DType::U8 => CE::I(IE::Load(acc)),
                }
            }
            Expr::Call(intr, args) => {
                let [arg] = args.as_slice() else {
                    return Err(malformed(format!(
                        "intrinsic `{}` takes 1 argument, got {}",
                        intr.name(),
                        args.len()
                    )));
                };
                CE::F(FE::Call(
                    *intr,
                    Box::new(self.float(arg, "an intrinsic's argument")?),
                ))
            }
        })
    }

    /// Resolves `body` with `name` bound to a fresh slot of type `ty`.
    fn bind<T>(
        &mut self,
        name: &'f str,
        ty: ScalarType,
        body: impl FnOnce(&mut Self) -> CR<T>,
    ) -> CR<(Slot, T)> {
        let slot = self.new_slot(ty);
        self.vars.push((name, slot));
        let r = body(self);
        self.vars.pop();
        Ok((slot, r?))
    }

    fn stmt(&mut self, s: &'f Stmt) -> CR<S> {
        self.nested(|c| c.stmt_inner(s))
    }

    fn stmt_inner(&mut self, s: &'f Stmt) -> CR<S> {
        Ok(match s {
            Stmt::For {
                var,
                min,
                extent,
                body,
                ..
            } => {
                let min = self.int(min, "a loop bound")?;
                let extent = self.int(extent, "a loop extent")?;
                let (slot, body) = self.bind(var, ScalarType::Int, |c| c.stmt(body))?;
                let Slot::I(slot) = slot else {
                    return Err(internal("loop slot"));
                };
                S::For {
                    slot,
                    min,
                    extent,
                    body: Box::new(body),
                }
            }
            Stmt::Seq(items) => S::Seq(items.iter().map(|s| self.stmt(s)).collect::<CR<_>>()?),
            Stmt::Let { var, value, body } => {
                let value = self.expr(value)?;
                let (slot, body) = self.bind(var, value.ty(), |c| c.stmt(body))?;
                let body = Box::new(body);
                match (slot, value) {
                    (Slot::I(s), CE::I(v)) => S::LetI(s, v, body),
                    (Slot::F(s), CE::F(v)) => S::LetF(s, v, body),
                    (Slot::B(s), CE::B(v)) => S::LetB(s, v, body),
                    _ => return Err(internal("let slot")),
                }
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                let cond = self.boolean(cond, "an if condition")?;
                let then = Box::new(self.stmt(then)?);
                let otherwise = match otherwise {
                    Some(o) => Some(Box::new(self.stmt(o)?)),
                    None => None,
                };
                S::If(cond, then, otherwise)
            }
            Stmt::Store {
                buffer,
                indices,
                value,
            } => {
                let acc = self.access(buffer, indices)?;
                let b = &self.bufs[acc.buf];
                if let Some(kind @ (ParamKind::Input | ParamKind::Weight)) = b.param {
                    return Err(malformed(format!(
                        "store to read-only {} parameter `{buffer}`",
                        kind.name()
                    )));
                }
                let dtype = b.dtype;
                match (dtype, self.expr(value)?) {
                    (DType::F32, CE::F(v)) => S::StoreF(acc, v),
                    (DType::I32, CE::I(v)) => S::StoreI(acc, v),
                    // Modulo 256 (floor), what C's conversion to `uint8_t` does.
                    (DType::U8, CE::I(v)) => {
                        S::StoreI(acc, IE::Mod(Box::new(v), Box::new(IE::Const(256))))
                    }
                    (d, v) => {
                        return Err(type_err(format!(
                            "stored value must be {} (buffer element type {d}), got {}",
                            d.scalar(),
                            v.ty()
                        )))
                    }
                }
            }
            Stmt::Prefetch { buffer, indices } => S::Touch(self.access(buffer, indices)?),
            Stmt::Allocate {
                name,
                dtype,
                shape,
                body,
                ..
            } => {
                if let Ok(prev) = self.buffer(name) {
                    let what = if self.bufs[prev].param.is_some() {
                        "a parameter"
                    } else {
                        "an enclosing allocation"
                    };
                    return Err(malformed(format!("allocation `{name}` shadows {what}")));
                }
                let id = self.new_buf(name, *dtype, shape, None)?;
                self.scope.push((name, id));
                let body = self.stmt(body);
                self.scope.pop();
                S::Alloc(id, Box::new(body?))
            }
        })
    }
}

fn binary(op: BinOp, a: CE, b: CE) -> CR<CE> {
    fn bx<T>(x: T) -> Box<T> {
        Box::new(x)
    }
    let cmp = match op {
        BinOp::Eq => Some(Cmp::Eq),
        BinOp::Ne => Some(Cmp::Ne),
        BinOp::Lt => Some(Cmp::Lt),
        BinOp::Le => Some(Cmp::Le),
        BinOp::Gt => Some(Cmp::Gt),
        BinOp::Ge => Some(Cmp::Ge),
        _ => None,
    };
    Ok(match (op, a, b) {
        (_, CE::I(a), CE::I(b)) if cmp.is_some() => {
            CE::B(BE::CmpI(cmp.unwrap_or(Cmp::Eq), bx(a), bx(b)))
        }
        (_, CE::F(a), CE::F(b)) if cmp.is_some() => {
            CE::B(BE::CmpF(cmp.unwrap_or(Cmp::Eq), bx(a), bx(b)))
        }
        (BinOp::Add, CE::I(a), CE::I(b)) => CE::I(IE::Add(bx(a), bx(b))),
        (BinOp::Sub, CE::I(a), CE::I(b)) => CE::I(IE::Sub(bx(a), bx(b))),
        (BinOp::Mul, CE::I(a), CE::I(b)) => CE::I(IE::Mul(bx(a), bx(b))),
        (BinOp::Div, CE::I(a), CE::I(b)) => CE::I(IE::Div(bx(a), bx(b))),
        (BinOp::Mod, CE::I(a), CE::I(b)) => CE::I(IE::Mod(bx(a), bx(b))),
        (BinOp::Min, CE::I(a), CE::I(b)) => CE::I(IE::Min(bx(a), bx(b))),
        (BinOp::Max, CE::I(a), CE::I(b)) => CE::I(IE::Max(bx(a), bx(b))),
        (BinOp::Add, CE::F(a), CE::F(b)) => CE::F(FE::Add(bx(a), bx(b))),
        (BinOp::Sub, CE::F(a), CE::F(b)) => CE::F(FE::Sub(bx(a), bx(b))),
        (BinOp::Mul, CE::F(a), CE::F(b)) => CE::F(FE::Mul(bx(a), bx(b))),
        (BinOp::Div, CE::F(a), CE::F(b)) => CE::F(FE::Div(bx(a), bx(b))),
        (BinOp::Min, CE::F(a), CE::F(b)) => CE::F(FE::Min(bx(a), bx(b))),
        (BinOp::Max, CE::F(a), CE::F(b)) => CE::F(FE::Max(bx(a), bx(b))),
        (BinOp::And, CE::B(a), CE::B(b)) => CE::B(BE::And(bx(a), bx(b))),
        (BinOp::Or, CE::B(a), CE::B(b)) => CE::B(BE::Or(bx(a), bx(b))),
        (op, a, b) => {
            return Err(type_err(format!(
                "operator `{}` does not apply to {} and {}",
                op.symbol(),
                a.ty(),
                b.ty()
            )))
        }
    })
}

// ---------------------------------------------------------------------------------
// Execution.

/// Errors are boxed so that results stay two words wide on the hot path.
type R<T> = Result<T, Box<InterpError>>;

struct Machine<'p> {
    prog: &'p Program,
    ints: Vec<i64>,
    floats: Vec<f32>,
    bools: Vec<bool>,
    fmem: Vec<Vec<f32>>,
    imem: Vec<Vec<i32>>,
    steps: u64,
    max_steps: u64,
    max_alloc: usize,
}

const LOAD: &str = "load from";
const STORE: &str = "store to";
const PREFETCH: &str = "prefetch of";

#[cold]
#[inline(never)]
fn overflow(a: i64, op: &str, b: i64) -> Box<InterpError> {
    Box::new(InterpError::IntOverflow {
        detail: format!("{a} {op} {b}"),
    })
}

#[cold]
#[inline(never)]
fn div_zero(a: i64, op: &str) -> Box<InterpError> {
    Box::new(InterpError::DivByZero {
        detail: format!("{a} {op} 0"),
    })
}

/// Floor division (tir's `/` on `Int`); `None` on a zero divisor or overflow.
pub fn floor_div(a: i64, b: i64) -> Option<i64> {
    let q = a.checked_div(b)?;
    // `checked_div` truncates toward zero; step down when the exact quotient is
    // negative and not an integer.
    if a % b != 0 && ((a < 0) != (b < 0)) {
        Some(q - 1)
    } else {
        Some(q)
    }
}

/// Floor modulo (tir's `%` on `Int`; the result has the sign of `b`); `None` on a zero
/// divisor.
pub fn floor_mod(a: i64, b: i64) -> Option<i64> {
    if b == 0 {
        return None;
    }
    let r = a.wrapping_rem(b); // only i64::MIN % -1 wraps, and its remainder is 0
    if r != 0 && ((r < 0) != (b < 0)) {
        Some(r + b)
    } else {
        Some(r)
    }
}

/// `F32 -> Int`: truncation toward zero, `None` for NaN or out of `i64` range.
fn f32_to_int(x: f32) -> Option<i64> {
    const LIM: f32 = 9_223_372_036_854_775_808.0; // 2^63, exact in f32
    (-LIM..LIM).contains(&x).then_some(x as i64)
}

impl<'p> Machine<'p> {
    /// The element offset of an access, after evaluating and checking every index.
    #[inline]
    fn offset(&self, a: &Access, access: &'static str) -> R<usize> {
        let mut off = 0usize;
        for (e, dim, stride) in a.dims.iter() {
            // Plain variables and constants are the common indices: skip the call.
            let v = match e {
                IE::Var(s) => self.ints[*s],
                IE::Const(c) => *c,
                _ => self.ei(e)?,
            };
            if v < 0 || v >= *dim {
                return Err(self.out_of_bounds(a, access));
            }
            off = off.wrapping_add((v as usize).wrapping_mul(*stride));
        }
        Ok(off)
    }

    /// The error for an access found out of bounds: re-evaluates every index (they are
    /// pure) to report the whole tuple, or the error of a later index.
    #[cold]
    #[inline(never)]
    fn out_of_bounds(&self, a: &Access, access: &'static str) -> Box<InterpError> {
        let mut index = Vec::with_capacity(a.dims.len());
        for (e, _, _) in a.dims.iter() {
            match self.ei(e) {
                Ok(v) => index.push(v),
                Err(err) => return err,
            }
        }
        let b = &self.prog.bufs[a.buf];
        Box::new(InterpError::OutOfBounds {
            access,
            buffer: b.name.clone(),
            index,
            shape: b.shape.clone(),
        })
    }

    /// An offset that passed the bounds checks but not the buffer's length: cannot
    /// happen while the resolved program's invariants hold.
    #[cold]
    #[inline(never)]
    fn bad_offset(&self) -> Box<InterpError> {
        Box::new(internal("offset outside buffer"))
    }

    fn ei(&self, e: &IE) -> R<i64> {
        Ok(match e {
            IE::Const(c) => *c,
            IE::Var(s) => self.ints[*s],
            IE::Add(a, b) => {
                let (x, y) = (self.ei(a)?, self.ei(b)?);
                x.checked_add(y).ok_or_else(|| overflow(x, "+", y))?
            }
            IE::Sub(a, b) => {
                let (x, y) = (self.ei(a)?, self.ei(b)?);
                x.checked_sub(y).ok_or_else(|| overflow(x, "-", y))?
            }
            IE::Mul(a, b) => {
                let (x, y) = (self.ei(a)?, self.ei(b)?);
                x.checked_mul(y).ok_or_else(|| overflow(x, "*", y))?
            }
            IE::Div(a, b) => {
                let (x, y) = (self.ei(a)?, self.ei(b)?);
                if y == 0 {
                    return Err(div_zero(x, "/"));
                }
                floor_div(x, y).ok_or_else(|| overflow(x, "/", y))?
            }
            IE::Mod(a, b) => {
                let (x, y) = (self.ei(a)?, self.ei(b)?);
                floor_mod(x, y).ok_or_else(|| div_zero(x, "%"))?
            }
            IE::Min(a, b) => self.ei(a)?.min(self.ei(b)?),
            IE::Max(a, b) => self.ei(a)?.max(self.ei(b)?),
            IE::Load(acc) => {
                let off = self.offset(acc, LOAD)?;
                match self.imem[acc.mem].get(off) {
                    Some(&v) => i64::from(v),
                    None => return Err(self.bad_offset()),
                }
            }
            // Only the picked branch is evaluated, as C's and OpenCL's `?:`.
            IE::Select(c, a, b) => {
                if self.eb(c)? {
                    self.ei(a)?
                } else {
                    self.ei(b)?
                }
            }
            IE::FromF(a) => {
                let x = self.ef(a)?;
                f32_to_int(x).ok_or_else(|| Box::new(InterpError::CastOutOfRange { value: x }))?
            }
            IE::FromB(a) => i64::from(self.eb(a)?),
        })
    }

    #[inline]
    fn load_f(&self, acc: &Access) -> R<f32> {
        let off = self.offset(acc, LOAD)?;
        match self.fmem[acc.mem].get(off) {
            Some(&v) => Ok(v),
            None => Err(self.bad_offset()),
        }
    }

    /// [`Machine::ef`] with loads, constants and variables handled inline (the
    /// common operands of arithmetic).
    #[inline]
    fn ef_leaf(&self, e: &FE) -> R<f32> {
        match e {
            FE::Load(acc) => self.load_f(acc),
            FE::Const(c) => Ok(*c),
            FE::Var(s) => Ok(self.floats[*s]),
            _ => self.ef(e),
        }
    }

    fn ef(&self, e: &FE) -> R<f32> {
        Ok(match e {
            FE::Const(c) => *c,
            FE::Var(s) => self.floats[*s],
            FE::Add(a, b) => self.ef_leaf(a)? + self.ef_leaf(b)?,
            FE::Sub(a, b) => self.ef_leaf(a)? - self.ef_leaf(b)?,
            FE::Mul(a, b) => self.ef_leaf(a)? * self.ef_leaf(b)?,
            FE::Div(a, b) => self.ef_leaf(a)? / self.ef_leaf(b)?,
            FE::Min(a, b) => self.ef_leaf(a)?.min(self.ef_leaf(b)?),
            FE::Max(a, b) => self.ef_leaf(a)?.max(self.ef_leaf(b)?),
            FE::Load(acc) => self.load_f(acc)?,
            // Only the picked branch is evaluated, as C's and OpenCL's `?:`.
            FE::Select(c, a, b) => {
                if self.eb(c)? {
                    self.ef(a)?
                } else {
                    self.ef(b)?
                }
            }
            FE::FromI(a) => self.ei(a)? as f32,
            FE::Call(intr, a) => intr.eval(self.ef(a)?),
        })
    }

    fn eb(&self, e: &BE) -> R<bool> {
        Ok(match e {
            BE::Const(c) => *c,
            BE::Var(s) => self.bools[*s],
            BE::CmpI(op, a, b) => op.apply(self.ei(a)?, self.ei(b)?),
            BE::CmpF(op, a, b) => op.apply(self.ef(a)?, self.ef(b)?),
            // Both operands are evaluated: no short circuit.
            BE::And(a, b) => {
                let (x, y) = (self.eb(a)?, self.eb(b)?);
                x && y
            }
            BE::Or(a, b) => {
                let (x, y) = (self.eb(a)?, self.eb(b)?);
                x || y
            }
            BE::Not(a) => !self.eb(a)?,
            // Only the picked branch is evaluated, as C's and OpenCL's `?:`.
            BE::Select(c, a, b) => {
                if self.eb(c)? {
                    self.eb(a)?
                } else {
                    self.eb(b)?
                }
            }
        })
    }

    #[cold]
    #[inline(never)]
    fn step_limit(&self) -> Box<InterpError> {
        Box::new(InterpError::StepLimit {
            limit: self.max_steps,
        })
    }

    fn exec(&mut self, s: &'p S) -> R<()> {
        self.steps += 1;
        if self.steps > self.max_steps {
            return Err(self.step_limit());
        }
        match s {
            S::For {
                slot,
                min,
                extent,
                body,
            } => {
                let lo = self.ei(min)?;
                let n = self.ei(extent)?;
                if n <= 0 {
                    return Ok(());
                }
                let hi = lo
                    .checked_add(n - 1)
                    .ok_or_else(|| overflow(lo, "+", n - 1))?;
                for v in lo..=hi {
                    self.ints[*slot] = v;
                    self.exec(body)?;
                }
            }
            S::Seq(items) => {
                for s in items {
                    self.exec(s)?;
                }
            }
            S::LetI(slot, value, body) => {
                self.ints[*slot] = self.ei(value)?;
                self.exec(body)?;
            }
            S::LetF(slot, value, body) => {
                self.floats[*slot] = self.ef(value)?;
                self.exec(body)?;
            }
            S::LetB(slot, value, body) => {
                self.bools[*slot] = self.eb(value)?;
                self.exec(body)?;
            }
            S::If(cond, then, otherwise) => {
                if self.eb(cond)? {
                    self.exec(then)?;
                } else if let Some(o) = otherwise {
                    self.exec(o)?;
                }
            }
            S::Touch(acc) => {
                self.offset(acc, PREFETCH)?;
            }
            S::StoreF(acc, value) => {
                let off = self.offset(acc, STORE)?;
                let v = self.ef(value)?;
                match self.fmem[acc.mem].get_mut(off) {
                    Some(dst) => *dst = v,
                    None => return Err(self.bad_offset()),
                }
            }
            S::StoreI(acc, value) => {
                let off = self.offset(acc, STORE)?;
                let v = self.ei(value)?;
                let Ok(v32) = i32::try_from(v) else {
                    return Err(Box::new(InterpError::I32Overflow {
                        buffer: self.prog.bufs[acc.buf].name.clone(),
                        value: v,
                    }));
                };
                match self.imem[acc.mem].get_mut(off) {
                    Some(dst) => *dst = v32,
                    None => return Err(self.bad_offset()),
                }
            }
            S::Alloc(id, body) => {
                self.alloc(*id)?;
                self.exec(body)?;
            }
        }
        Ok(())
    }

    /// Gives allocation `id` fresh zeroed storage.
    fn alloc(&mut self, id: usize) -> R<()> {
        let prog = self.prog;
        let b = &prog.bufs[id];
        let limit = self.max_alloc;
        let too_big = || {
            Box::new(InterpError::AllocLimit {
                name: b.name.clone(),
                elems: b.len,
                limit,
            })
        };
        if b.len > limit {
            return Err(too_big());
        }
        self.steps = self.steps.saturating_add(b.len as u64);
        if self.steps > self.max_steps {
            return Err(self.step_limit());
        }
        match b.dtype {
            DType::F32 => {
                let m = &mut self.fmem[b.mem];
                m.clear();
                m.try_reserve(b.len).map_err(|_| too_big())?;
                m.resize(b.len, 0.0);
            }
            DType::I32 | DType::U8 => {
                let m = &mut self.imem[b.mem];
                m.clear();
                m.try_reserve(b.len).map_err(|_| too_big())?;
                m.resize(b.len, 0);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Floor division and modulo by exact rational arithmetic on small values.
    #[test]
    fn floor_div_mod_small() {
        for a in -50i64..=50 {
            for b in -9i64..=9 {
                if b == 0 {
                    assert_eq!(floor_div(a, b), None);
                    assert_eq!(floor_mod(a, b), None);
                    continue;
                }
                let q = floor_div(a, b).unwrap();
                let r = floor_mod(a, b).unwrap();
                // q is the largest integer with q * b <= a (b > 0) or q * b >= a (b < 0).
                assert_eq!(q * b + r, a, "{a} {b}");
                assert!(r == 0 || (r < 0) == (b < 0), "{a} % {b} = {r}");
                assert!(r.abs() < b.abs(), "{a} % {b} = {r}");
            }
        }
    }

    #[test]
    fn floor_div_mod_extremes() {
        assert_eq!(floor_div(i64::MIN, -1), None);
        assert_eq!(floor_mod(i64::MIN, -1), Some(0));
        assert_eq!(floor_div(i64::MIN, 1), Some(i64::MIN));
        assert_eq!(floor_div(i64::MAX, -1), Some(-i64::MAX));
        assert_eq!(floor_div(i64::MIN, 2), Some(i64::MIN / 2));
        assert_eq!(floor_div(i64::MAX, 2), Some(i64::MAX / 2));
        assert_eq!(floor_div(-1, i64::MAX), Some(-1));
        assert_eq!(floor_mod(-1, i64::MAX), Some(i64::MAX - 1));
        assert_eq!(floor_mod(i64::MAX, i64::MIN), Some(-1));
        assert_eq!(floor_div(i64::MAX, i64::MIN), Some(-1));
    }

    #[test]
    fn float_to_int() {
        assert_eq!(f32_to_int(2.9), Some(2));
        assert_eq!(f32_to_int(-2.9), Some(-2));
        assert_eq!(f32_to_int(-0.0), Some(0));
        assert_eq!(f32_to_int(-9_223_372_036_854_775_808.0), Some(i64::MIN));
        assert_eq!(f32_to_int(9_223_372_036_854_775_808.0), None);
        // The largest f32 below 2^63.
        assert_eq!(
            f32_to_int(9_223_371_487_098_961_920.0),
            Some(9_223_371_487_098_961_920)
        );
        assert_eq!(f32_to_int(f32::NAN), None);
        assert_eq!(f32_to_int(f32::NEG_INFINITY), None);
    }

    #[test]
    fn nesting_measure() {
        let f = |body| Function {
            name: "f".into(),
            params: vec![],
            body,
        };
        // store (1) > `1 + 2` (2) > literals (3).
        let s = Stmt::store("O", vec![], Expr::Int(1) + Expr::Int(2));
        assert!(!deeper_than(&f(s.clone()), 3));
        assert!(deeper_than(&f(s.clone()), 2));
        let s = Stmt::let_("x", Expr::Int(0), s);
        assert!(!deeper_than(&f(s.clone()), 4));
        assert!(deeper_than(&f(s), 3));
    }
}
