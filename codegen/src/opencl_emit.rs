//! Lowering of a scheduled tir function to OpenCL C.
//!
//! # Kernels and launches
//! A function becomes an [`OpenClProgram`]: one source file with one or more
//! `__kernel`s, enqueued in order on an in-order queue. The function's top-level
//! statements (its *stages*: the init, compute and activation loop nests, nested
//! sequences flattened) are where
//! work-groups must wait for each other, and OpenCL has no grid-wide barrier, so:
//! - every top-level stage that contains a bound loop is its own kernel, with its own
//!   NDRange;
//! - consecutive stages without bound loops are merged into one kernel that runs as a
//!   **single work-item** (global size 1). A function with no bound loop at all is one
//!   single-work-item kernel: correct, but slow (no GPU parallelism at all).
//!
//! Kernel names are `grim_kernel_NAME` when there is one kernel, `grim_kernel_NAME_I`
//! (I = 0, 1, ...) otherwise. Every kernel takes every buffer as an argument, in the
//! order of [`OpenClProgram::args`]: the parameters (`__global float* restrict b_Y`,
//! `__global const int* restrict b_W_rows`, ...), then the temporaries.
//!
//! # What maps to what
//! | tir | OpenCL C |
//! |---|---|
//! | loop bound to `block_x/y/z` | `v = min + get_group_id(0/1/2)`; the number of groups along the axis is the loop's extent |
//! | loop bound to `thread_x/y/z` | `v = min + get_local_id(0/1/2)`; the local size along the axis is the largest extent bound to it in the kernel; a loop with a smaller extent gets the guard `if (get_local_id(a) < extent)` (none when sizes match) |
//! | global size | groups x local size, per axis (unused axes: 1) |
//! | serial / parallel loop | a plain `for` inside the work-item (`parallel` is *not* spread over work-items: bind the loop to get GPU parallelism) |
//! | unrolled loop | expanded, one copy per iteration |
//! | vectorized loop, constant extent multiple of 4, body of `f32` stores | 4 lanes at a time in `float4` (`half4` arithmetic with `opencl:fp16`, storage stays `f32`): `vload4`/`vstore4` for contiguous accesses, broadcasts, lane-wise packs otherwise; anything else a plain loop |
//! | function-level `alloc` (scope `local` or `global`) | a `__global` temporary buffer created by the host and zero-filled before each run (it spans kernels) |
//! | `alloc ... shared` | a `__local` array declared at kernel scope, zero-filled cooperatively, between barriers; legal only inside every block-bound loop of its kernel and outside every thread-bound loop |
//! | `alloc ... local` inside a kernel | a private array (`float b_t[n] = {0};`); an error when it encloses a bound loop (each work-item would have its own copy) |
//! | `alloc ... global` inside a kernel | a private array in a single-work-item kernel; an error in a kernel with bound loops |
//! | index arithmetic | `long`, with the IR's floor division and modulo (`grim_floordiv`/`grim_floormod`) |
//! | float `min`/`max`, `exp`, `tanh`, `sqrt`, `abs`, `sigmoid` | `fmin`/`fmax`, `exp`, `tanh`, `sqrt`, `fabs`, `grim_sigmoid` |
//!
//! # Synchronization and legality
//! The schedule's `bind` only proves that the iterations of the bound loop are
//! independent within its body; the emitter adds what a GPU needs on top:
//! - a loop bound to a block axis may only be enclosed (inside its kernel) by other
//!   block-bound loops, loops of constant extent 1, lets, ifs and allocations: work-groups cannot wait for each
//!   other between the iterations of an enclosing serial loop. Each block axis is bound
//!   by at most one loop per kernel.
//! - between two thread-bound loops nested in each other there may be no other loop,
//!   (other than of constant extent 1), and inside a thread-bound loop at most one statement of a sequence may contain
//!   thread-bound loops (a barrier there would be in divergent code);
//! - outside thread-bound loops, `barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE)`
//!   separates consecutive statements that contain thread-bound loops, and ends every
//!   iteration of a serial loop whose body contains one, unless every element such an
//!   iteration stores is owned by one work-item (see `iteration_barrier_needed`: the
//!   BCR and conv schedules of the tests need none);
//! - a store to a global buffer must be inside loops bound to every axis its kernel
//!   uses (otherwise every work-item would run it), a store to a shared buffer inside
//!   loops bound to every thread axis;
//! - bound extents must be positive constants (literal arithmetic such as `24 - 20`
//!   from a tail split is folded).
//!
//! Violations are [`CodegenError::Unsupported`] naming the loop (or buffer).

use crate::c_emit::float_lit;
use crate::error::CodegenError;
use crate::neon::{at_lane, lane_coeff};
use crate::target::Target;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use tir::verify::{type_of, BufferInfo, TypeEnv};
use tir::visit::expr_uses_var;
use tir::{
    BinOp, DType, Expr, ForKind, Function, Intrinsic, MemScope, ParamKind, ScalarType, Stmt, UnOp,
};

/// Where a kernel argument comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgSource {
    /// A parameter of the function, of this kind.
    Param(ParamKind),
    /// A function-level allocation: a device buffer zero-filled before every run.
    Temporary,
}

/// One buffer argument, passed to every kernel of the program in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelArg {
    /// The IR name (the OpenCL name is `b_NAME`).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Number of elements.
    pub len: usize,
    /// Parameter or temporary.
    pub source: ArgSource,
}

/// One kernel launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelLaunch {
    /// The `__kernel` function's name.
    pub name: String,
    /// Global work size per axis (groups x local size).
    pub global: [usize; 3],
    /// Local work size per axis.
    pub local: [usize; 3],
    /// True when no loop of the kernel is bound: it runs as one work-item.
    pub single_work_item: bool,
}

/// A function lowered to OpenCL C, with everything the host needs to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenClProgram {
    /// The function's name.
    pub function: String,
    /// The OpenCL C source.
    pub source: String,
    /// The kernels, in launch order.
    pub launches: Vec<KernelLaunch>,
    /// The buffer arguments of every kernel, in order.
    pub args: Vec<KernelArg>,
    /// True when the source needs `cl_khr_fp16`.
    pub fp16: bool,
}

/// The OpenCL helpers every generated file starts with.
pub fn prelude(fp16: bool) -> String {
    let mut s = String::new();
    if fp16 {
        s.push_str("#pragma OPENCL EXTENSION cl_khr_fp16 : enable\n");
    }
    s.push_str(
        r#"inline long grim_floordiv(long a, long b) {
  long q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q -= 1;
  return q;
}
inline long grim_floormod(long a, long b) {
  long m = a % b;
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}
inline long grim_min_i64(long a, long b) { return a < b ? a : b; }
inline long grim_max_i64(long a, long b) { return a > b ? a : b; }
inline float grim_sigmoid(float x) { return 1.0f / (1.0f + exp(-x)); }
"#,
    );
    if fp16 {
        s.push_str("inline half4 grim_sigmoid4(half4 x) { return (half4)(1.0h) / ((half4)(1.0h) + exp(-x)); }\n");
    } else {
        s.push_str(
            "inline float4 grim_sigmoid4(float4 x) { return (float4)(1.0f) / ((float4)(1.0f) + exp(-x)); }\n",
        );
    }
    s
}

fn buf(name: &str) -> String {
    format!("b_{name}")
}

fn var(name: &str) -> String {
    format!("v_{name}")
}

/// An OpenCL literal for an `i64` (a `long`).
pub fn int_lit(v: i64) -> String {
    if v == i64::MIN {
        "(-9223372036854775807L - 1)".into()
    } else if v < 0 {
        format!("({v}L)")
    } else {
        format!("{v}L")
    }
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1].saturating_mul(shape[k + 1]);
    }
    s
}

fn axis_of(kind: ForKind) -> Option<(bool, usize)> {
    match kind {
        ForKind::BlockX => Some((true, 0)),
        ForKind::BlockY => Some((true, 1)),
        ForKind::BlockZ => Some((true, 2)),
        ForKind::ThreadX => Some((false, 0)),
        ForKind::ThreadY => Some((false, 1)),
        ForKind::ThreadZ => Some((false, 2)),
        _ => None,
    }
}

/// The value of an integer expression made only of literals (`24 - 20`, as a tail
/// split writes it); `None` when it mentions a variable or a load.
pub fn const_int(e: &Expr) -> Option<i64> {
    match e {
        Expr::Int(v) => Some(*v),
        Expr::Binary(op, a, b) => {
            let (x, y) = (const_int(a)?, const_int(b)?);
            match op {
                BinOp::Add => x.checked_add(y),
                BinOp::Sub => x.checked_sub(y),
                BinOp::Mul => x.checked_mul(y),
                BinOp::Div if y != 0 => floor_div(x, y),
                BinOp::Mod if y != 0 => {
                    floor_div(x, y).and_then(|q| x.checked_sub(q.checked_mul(y)?))
                }
                BinOp::Min => Some(x.min(y)),
                BinOp::Max => Some(x.max(y)),
                _ => None,
            }
        }
        _ => None,
    }
}

fn floor_div(x: i64, y: i64) -> Option<i64> {
    let q = x.checked_div(y)?;
    Some(if x % y != 0 && ((x < 0) != (y < 0)) {
        q - 1
    } else {
        q
    })
}

fn unsupported(loop_name: &str, reason: impl Into<String>) -> CodegenError {
    CodegenError::Unsupported {
        loop_name: loop_name.to_string(),
        reason: reason.into(),
    }
}

fn contains_binding(s: &Stmt, threads_only: bool) -> bool {
    let mut found = false;
    tir::visit::for_each_stmt(s, &mut |s| {
        if let Stmt::For { kind, .. } = s {
            if let Some((block, _)) = axis_of(*kind) {
                found |= !(threads_only && block);
            }
        }
    });
    found
}

/// Where a buffer lives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Space {
    Global,
    Shared,
    Private,
}

#[derive(Clone)]
struct BufShape {
    name: String,
    dtype: DType,
    strides: Vec<usize>,
    space: Space,
}

/// The bound loops of one kernel: extents per axis.
#[derive(Default)]
struct Bindings {
    /// Block axis -> (loop, extent).
    blocks: [Option<(String, usize)>; 3],
    /// Thread axis -> largest extent.
    threads: [usize; 3],
}

fn collect_bindings(s: &Stmt, b: &mut Bindings) -> Result<(), CodegenError> {
    let mut err = None;
    tir::visit::for_each_stmt(s, &mut |s| {
        let Stmt::For {
            var, extent, kind, ..
        } = s
        else {
            return;
        };
        let Some((block, axis)) = axis_of(*kind) else {
            return;
        };
        if err.is_some() {
            return;
        }
        let n = match const_int(extent) {
            Some(n) if n >= 1 => n as usize,
            Some(n) => {
                err = Some(unsupported(
                    var,
                    format!(
                        "bound to {} with extent {n}; a bound extent must be at least 1",
                        kind.name()
                    ),
                ));
                return;
            }
            _ => {
                err = Some(unsupported(
                    var,
                    format!(
                        "bound to {} with the non-constant extent `{}`; the NDRange needs constant bound extents",
                        kind.name(),
                        tir::print_expr(extent)
                    ),
                ));
                return;
            }
        };
        if block {
            if let Some((other, _)) = &b.blocks[axis] {
                err = Some(unsupported(
                    var,
                    format!(
                        "loop `{other}` is already bound to {} in this kernel; one loop per block axis per kernel",
                        kind.name()
                    ),
                ));
                return;
            }
            b.blocks[axis] = Some((var.clone(), n));
        } else {
            b.threads[axis] = b.threads[axis].max(n);
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The OpenCL emitter's state for one kernel.
struct Emitter {
    out: String,
    indent: usize,
    env: TypeEnv,
    shapes: Vec<BufShape>,
    fresh: usize,
    fp16: bool,
    /// Kernel-scope `__local` declarations.
    shared_decls: Vec<String>,
    /// Axes the kernel binds: (block, axis).
    kernel_axes: BTreeSet<(bool, usize)>,
    /// Local size per axis.
    local: [usize; 3],
    /// Loops enclosing the current point, in this kernel: (name, kind).
    loops: Vec<(String, ForKind)>,
    /// Names of enclosing loops with the constant extent 1 (they cannot separate
    /// iterations of an inner bound loop).
    unit_loops: BTreeSet<String>,
    single_work_item: bool,
}

impl Emitter {
    fn line(&mut self, text: &str) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn fresh(&mut self, base: &str) -> String {
        self.fresh += 1;
        format!("t_{base}{}", self.fresh)
    }

    fn ty(&self, e: &Expr) -> Result<ScalarType, CodegenError> {
        Ok(type_of(e, &self.env)?)
    }

    fn shape(&self, name: &str) -> Result<&BufShape, CodegenError> {
        self.shapes
            .iter()
            .rev()
            .find(|b| b.name == name)
            .ok_or_else(|| unsupported(name, "unknown buffer"))
    }

    fn thread_depth(&self) -> usize {
        self.loops
            .iter()
            .filter(|(_, k)| matches!(axis_of(*k), Some((false, _))))
            .count()
    }

    fn enclosing_axes(&self) -> BTreeSet<(bool, usize)> {
        self.loops.iter().filter_map(|(_, k)| axis_of(*k)).collect()
    }

    fn innermost_loop(&self, fallback: &str) -> String {
        self.loops
            .last()
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| fallback.to_string())
    }

    fn flat_index(&self, buffer: &str, indices: &[Expr]) -> Result<String, CodegenError> {
        let strides = self.shape(buffer)?.strides.clone();
        if indices.is_empty() {
            return Ok("0".into());
        }
        let mut parts = Vec::new();
        for (i, s) in indices.iter().zip(strides) {
            let e = self.expr(i)?;
            parts.push(if s == 1 { e } else { format!("{e} * {s}") });
        }
        Ok(format!("({})", parts.join(" + ")))
    }

    /// A scalar OpenCL C expression for `e`.
    fn expr(&self, e: &Expr) -> Result<String, CodegenError> {
        Ok(match e {
            Expr::Int(v) => int_lit(*v),
            Expr::Float(v) => float_lit(*v),
            Expr::Bool(b) => (if *b { "1" } else { "0" }).to_string(),
            Expr::Var(n) => var(n),
            Expr::Binary(op, a, b) => {
                let ty = self.ty(a)?;
                let (x, y) = (self.expr(a)?, self.expr(b)?);
                match (op, ty) {
                    (BinOp::Div, ScalarType::Int) => format!("grim_floordiv({x}, {y})"),
                    (BinOp::Mod, _) => format!("grim_floormod({x}, {y})"),
                    (BinOp::Min, ScalarType::Int) => format!("grim_min_i64({x}, {y})"),
                    (BinOp::Max, ScalarType::Int) => format!("grim_max_i64({x}, {y})"),
                    (BinOp::Min, _) => format!("fmin({x}, {y})"),
                    (BinOp::Max, _) => format!("fmax({x}, {y})"),
                    (op, _) => format!("({x} {} {y})", op.symbol()),
                }
            }
            Expr::Unary(UnOp::Not, a) => format!("(!{})", self.expr(a)?),
            Expr::Select(c, a, b) => format!(
                "({} ? {} : {})",
                self.expr(c)?,
                self.expr(a)?,
                self.expr(b)?
            ),
            Expr::Cast(t, a) => {
                let x = self.expr(a)?;
                match t {
                    ScalarType::F32 => format!("((float){x})"),
                    ScalarType::Int => format!("((long){x})"),
                    ScalarType::Bool => format!("({x} != 0)"),
                }
            }
            Expr::Load { buffer, indices } => {
                let flat = self.flat_index(buffer, indices)?;
                match self.shape(buffer)?.dtype {
                    DType::F32 => format!("{}[{flat}]", buf(buffer)),
                    DType::I32 | DType::U8 => format!("((long){}[{flat}])", buf(buffer)),
                }
            }
            Expr::Call(f, args) => {
                let a = args
                    .first()
                    .map(|a| self.expr(a))
                    .transpose()?
                    .unwrap_or_else(|| "0.0f".into());
                format!("{}({a})", intrinsic_name(*f))
            }
        })
    }

    fn scalar_type(t: ScalarType) -> &'static str {
        match t {
            ScalarType::F32 => "float",
            ScalarType::Int | ScalarType::Bool => "long",
        }
    }

    fn barrier(&mut self) {
        self.line("barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);");
    }

    fn stmt(&mut self, s: &Stmt) -> Result<(), CodegenError> {
        match s {
            Stmt::Seq(items) => {
                let in_threads = self.thread_depth() > 0;
                let mut seen_thread_loop: Option<String> = None;
                for i in items {
                    if contains_binding(i, true) {
                        if let Some(prev) = &seen_thread_loop {
                            if in_threads {
                                let here = first_thread_loop(i).unwrap_or_default();
                                return Err(unsupported(
                                    &here,
                                    format!(
                                        "a sibling of thread-bound loop `{prev}` inside thread-bound loop `{}`: the barrier between them would be in divergent code",
                                        self.innermost_loop("?")
                                    ),
                                ));
                            }
                            self.barrier();
                        }
                        seen_thread_loop = first_thread_loop(i);
                    }
                    self.stmt(i)?;
                }
            }
            Stmt::Let {
                var: v,
                value,
                body,
            } => {
                let t = self.ty(value)?;
                let e = self.expr(value)?;
                self.line("{");
                self.indent += 1;
                self.line(&format!("const {} {} = {e};", Self::scalar_type(t), var(v)));
                self.env.push_var(v.clone(), t);
                let r = self.stmt(body);
                self.env.pop_var();
                r?;
                self.indent -= 1;
                self.line("}");
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                let c = self.expr(cond)?;
                self.line(&format!("if ({c}) {{"));
                self.indent += 1;
                self.stmt(then)?;
                self.indent -= 1;
                if let Some(o) = otherwise {
                    self.line("} else {");
                    self.indent += 1;
                    self.stmt(o)?;
                    self.indent -= 1;
                }
                self.line("}");
            }
            Stmt::Store {
                buffer,
                indices,
                value,
            } => {
                self.check_store(buffer)?;
                let flat = self.flat_index(buffer, indices)?;
                let v = self.expr(value)?;
                let v = match self.shape(buffer)?.dtype {
                    DType::F32 => v,
                    DType::I32 => format!("(int){v}"),
                    DType::U8 => format!("(uchar){v}"),
                };
                self.line(&format!("{}[{flat}] = {v};", buf(buffer)));
            }
            // A cache hint; OpenCL C's `prefetch` is left to the GPU's own caching.
            Stmt::Prefetch { buffer, indices } => {
                let flat = self.flat_index(buffer, indices)?;
                self.line(&format!(
                    "/* prefetch {}[{flat}] (a hint, not emitted) */",
                    buf(buffer)
                ));
            }
            Stmt::Allocate {
                name,
                dtype,
                shape,
                scope,
                body,
            } => self.allocate(name, *dtype, shape, *scope, body)?,
            Stmt::For {
                var: v,
                min,
                extent,
                kind,
                body,
            } => self.for_loop(v, min, extent, *kind, body)?,
        }
        Ok(())
    }

    /// Refuses stores that every work-item would run.
    fn check_store(&self, buffer: &str) -> Result<(), CodegenError> {
        let space = self.shape(buffer)?.space;
        let have = self.enclosing_axes();
        let need: Vec<(bool, usize)> = match space {
            Space::Private => return Ok(()),
            Space::Global => self.kernel_axes.iter().copied().collect(),
            Space::Shared => self.kernel_axes.iter().copied().filter(|a| !a.0).collect(),
        };
        if let Some(missing) = need.iter().find(|a| !have.contains(a)) {
            let axis = ["x", "y", "z"][missing.1];
            let kind = if missing.0 { "block" } else { "thread" };
            return Err(unsupported(
                &self.innermost_loop(buffer),
                format!(
                    "store to `{buffer}` is outside the loop bound to {kind}_{axis}: every work-item along that axis would run it"
                ),
            ));
        }
        Ok(())
    }

    fn allocate(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[usize],
        scope: MemScope,
        body: &Stmt,
    ) -> Result<(), CodegenError> {
        let n: usize = shape.iter().product::<usize>().max(1);
        let ty = cl_elem_type(dtype);
        let zero = match dtype {
            DType::F32 => "0.0f",
            DType::I32 | DType::U8 => "0",
        };
        let b = buf(name);
        let space = match scope {
            MemScope::Shared => {
                if let Some((l, _)) = self
                    .loops
                    .iter()
                    .find(|(_, k)| matches!(axis_of(*k), Some((false, _))))
                {
                    return Err(unsupported(
                        l,
                        format!("shared allocation `{name}` is inside this thread-bound loop; a `__local` array must be outside thread-bound loops"),
                    ));
                }
                let have = self.enclosing_axes();
                let blocks: Vec<(bool, usize)> =
                    self.kernel_axes.iter().copied().filter(|a| a.0).collect();
                if blocks.is_empty() {
                    return Err(unsupported(
                        &self.innermost_loop(name),
                        format!("shared allocation `{name}` is not inside any block-bound loop"),
                    ));
                }
                if let Some(missing) = blocks.iter().find(|a| !have.contains(a)) {
                    return Err(unsupported(
                        &self.innermost_loop(name),
                        format!(
                            "shared allocation `{name}` is outside the loop bound to block_{}",
                            ["x", "y", "z"][missing.1]
                        ),
                    ));
                }
                if self
                    .shared_decls
                    .iter()
                    .any(|d| d.contains(&format!(" {b}[")))
                {
                    return Err(unsupported(
                        name,
                        "two shared allocations with this name in one kernel",
                    ));
                }
                self.shared_decls.push(format!("__local {ty} {b}[{n}];"));
                // Zero-fill cooperatively (the IR's allocations start as zero).
                let z = self.fresh("z");
                self.barrier();
                self.line(&format!(
                    "for (long {z} = (long)(get_local_id(0) + get_local_size(0) * (get_local_id(1) + get_local_size(1) * get_local_id(2))); {z} < {n}; {z} += (long)(get_local_size(0) * get_local_size(1) * get_local_size(2))) {b}[{z}] = {zero};"
                ));
                self.barrier();
                Space::Shared
            }
            MemScope::Global if !self.single_work_item => {
                return Err(unsupported(
                    &self.innermost_loop(name),
                    format!("global allocation `{name}` inside a kernel with bound loops; allocate it at function level (it becomes a device buffer)"),
                ));
            }
            MemScope::Local | MemScope::Global => {
                if let Some(l) = first_bound_loop(body) {
                    return Err(unsupported(
                        &l,
                        format!("private allocation `{name}` encloses this bound loop: every work-item would get its own copy; allocate it inside the bound loops (or `shared`)"),
                    ));
                }
                Space::Private
            }
        };
        self.line("{");
        self.indent += 1;
        if space == Space::Private {
            self.line(&format!("{ty} {b}[{n}] = {{{zero}}};"));
        }
        self.shapes.push(BufShape {
            name: name.to_string(),
            dtype,
            strides: strides(shape),
            space,
        });
        self.env.push_buffer(BufferInfo {
            name: name.to_string(),
            dtype,
            rank: shape.len(),
            param_kind: None,
        });
        let r = self.stmt(body);
        self.env.pop_buffer();
        self.shapes.pop();
        r?;
        self.indent -= 1;
        self.line("}");
        Ok(())
    }

    fn for_loop(
        &mut self,
        v: &str,
        min: &Expr,
        extent: &Expr,
        kind: ForKind,
        body: &Stmt,
    ) -> Result<(), CodegenError> {
        if let Some((block, axis)) = axis_of(kind) {
            return self.bound_loop(v, min, extent, kind, block, axis, body);
        }
        let lo = self.expr(min)?;
        let ext = self.expr(extent)?;
        if kind == ForKind::Unrolled {
            let Expr::Int(n) = extent else {
                return Err(unsupported(v, "unrolled loop with a non-constant extent"));
            };
            let lo_name = self.fresh("lo");
            self.line("{");
            self.indent += 1;
            self.line(&format!("const long {lo_name} = {lo};"));
            self.env.push_var(v.to_string(), ScalarType::Int);
            self.loops.push((v.to_string(), kind));
            let mut r = Ok(());
            for k in 0..*n {
                self.line("{");
                self.indent += 1;
                self.line(&format!("const long {} = {lo_name} + {k};", var(v)));
                r = self.stmt(body);
                if r.is_err() {
                    break;
                }
                self.indent -= 1;
                self.line("}");
            }
            self.loops.pop();
            self.env.pop_var();
            r?;
            self.indent -= 1;
            self.line("}");
            return Ok(());
        }
        if kind == ForKind::Vectorized {
            self.env.push_var(v.to_string(), ScalarType::Int);
            let ok = self.vector_loop_ok(v, extent, body);
            self.env.pop_var();
            if ok {
                return self.vector_loop(v, min, extent, body);
            }
        }
        let unit = const_int(extent) == Some(1);
        if unit {
            self.unit_loops.insert(v.to_string());
        }
        let (lo_name, hi_name) = (self.fresh("lo"), self.fresh("hi"));
        self.line("{");
        self.indent += 1;
        self.line(&format!("const long {lo_name} = {lo};"));
        self.line(&format!("const long {hi_name} = {lo_name} + {ext};"));
        if kind == ForKind::Parallel {
            self.line("/* parallel: serial inside the work-item */");
        }
        let cv = var(v);
        self.line(&format!(
            "for (long {cv} = {lo_name}; {cv} < {hi_name}; ++{cv}) {{"
        ));
        self.indent += 1;
        self.env.push_var(v.to_string(), ScalarType::Int);
        self.loops.push((v.to_string(), kind));
        let needs_barrier = self.thread_depth() == 0
            && contains_binding(body, true)
            && self.iteration_barrier_needed(body);
        let r = self.stmt(body);
        if needs_barrier && r.is_ok() {
            self.barrier();
        }
        self.loops.pop();
        self.env.pop_var();
        if unit {
            self.unit_loops.remove(v);
        }
        r?;
        self.indent -= 1;
        self.line("}");
        self.indent -= 1;
        self.line("}");
        Ok(())
    }

    /// Must the work-items of a group wait for each other at the end of every
    /// iteration of a serial loop (outside thread-bound loops) with this body?
    ///
    /// Not when every iteration's accesses are owned by one work-item: each store to a
    /// global buffer has, for every thread-bound variable `t` around it, an index
    /// position `a·t + Σ bⱼ·uⱼ + c` where the `uⱼ` are loops inside `t`'s loop with
    /// constant extents spanning less than one step of `t` (`Σ |bⱼ|·(Eⱼ-1) < |a|`)
    /// and `c` mentions only block-bound variables; and every load of a buffer stored
    /// in the body is inside a thread-bound loop and uses the exact indices of such a
    /// store. Then no two work-items ever touch the same element of a stored buffer,
    /// in any iteration. Shared stores and allocations always need the barrier.
    fn iteration_barrier_needed(&self, body: &Stmt) -> bool {
        struct Walk<'a> {
            em: &'a Emitter,
            blocks: BTreeSet<String>,
            /// Loops inside the body: (var, constant extent, thread-bound).
            loops: Vec<(String, Option<i64>, bool)>,
            private: Vec<String>,
            stores: Vec<(String, Vec<Expr>)>,
            loads: Vec<(String, Vec<Expr>, bool)>,
            need: bool,
        }
        impl Walk<'_> {
            fn in_thread(&self) -> bool {
                self.loops.iter().any(|l| l.2)
            }
            fn loads_of(&mut self, e: &Expr) {
                let inside = self.in_thread();
                let mut found = Vec::new();
                tir::visit::for_each_load(e, &mut |b, idx| {
                    found.push((b.to_string(), idx.to_vec()))
                });
                for (b, idx) in found {
                    self.loads.push((b, idx, inside));
                }
            }
            fn owned(&self, indices: &[Expr]) -> bool {
                self.loops
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.2)
                    .all(|(ti, (t, _, _))| {
                        indices.iter().any(|e| {
                            let Some(terms) = affine(e) else {
                                return false;
                            };
                            let Some(a) = terms.get(t).copied().filter(|a| *a != 0) else {
                                return false;
                            };
                            let mut span = 0i64;
                            for (u, b) in &terms {
                                if u == t || self.blocks.contains(u) {
                                    continue;
                                }
                                let inner = self.loops[ti + 1..]
                                    .iter()
                                    .find(|l| &l.0 == u)
                                    .and_then(|l| l.1.filter(|_| !l.2));
                                match inner {
                                    Some(ext) if ext >= 1 => {
                                        span = span.saturating_add(
                                            b.saturating_abs().saturating_mul(ext - 1),
                                        )
                                    }
                                    _ => return false,
                                }
                            }
                            span < a.saturating_abs()
                        })
                    })
            }
            fn stmt(&mut self, s: &Stmt) {
                match s {
                    Stmt::Seq(items) => items.iter().for_each(|i| self.stmt(i)),
                    Stmt::Let { value, body, .. } => {
                        self.loads_of(value);
                        self.stmt(body);
                    }
                    Stmt::If {
                        cond,
                        then,
                        otherwise,
                    } => {
                        self.loads_of(cond);
                        self.stmt(then);
                        if let Some(o) = otherwise {
                            self.stmt(o);
                        }
                    }
                    Stmt::For {
                        var,
                        min,
                        extent,
                        kind,
                        body,
                    } => {
                        self.loads_of(min);
                        self.loads_of(extent);
                        let thread = matches!(axis_of(*kind), Some((false, _)));
                        self.loops.push((var.clone(), const_int(extent), thread));
                        self.stmt(body);
                        self.loops.pop();
                    }
                    Stmt::Allocate {
                        name, scope, body, ..
                    } => {
                        if *scope == MemScope::Shared {
                            self.need = true;
                        }
                        self.private.push(name.clone());
                        self.stmt(body);
                        self.private.pop();
                    }
                    Stmt::Store {
                        buffer,
                        indices,
                        value,
                    } => {
                        indices.iter().for_each(|i| self.loads_of(i));
                        self.loads_of(value);
                        if self.private.contains(buffer) {
                            return;
                        }
                        match self.em.shape(buffer).map(|b| b.space) {
                            Ok(Space::Private) => return,
                            Ok(Space::Global) => {}
                            _ => self.need = true,
                        }
                        if !self.in_thread() || !self.owned(indices) {
                            self.need = true;
                        }
                        self.stores.push((buffer.clone(), indices.clone()));
                    }
                    Stmt::Prefetch { indices, .. } => {
                        indices.iter().for_each(|i| self.loads_of(i));
                    }
                }
            }
        }
        let mut w = Walk {
            em: self,
            blocks: self
                .loops
                .iter()
                .filter(|(_, k)| matches!(axis_of(*k), Some((true, _))))
                .map(|(n, _)| n.clone())
                .collect(),
            loops: Vec::new(),
            private: Vec::new(),
            stores: Vec::new(),
            loads: Vec::new(),
            need: false,
        };
        w.stmt(body);
        if w.need {
            return true;
        }
        w.loads.iter().any(|(b, idx, inside)| {
            w.stores.iter().any(|(sb, _)| sb == b)
                && (!inside || !w.stores.iter().any(|(sb, si)| sb == b && si == idx))
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn bound_loop(
        &mut self,
        v: &str,
        min: &Expr,
        extent: &Expr,
        kind: ForKind,
        block: bool,
        axis: usize,
        body: &Stmt,
    ) -> Result<(), CodegenError> {
        if block {
            if let Some((l, k)) = self.loops.iter().find(|(l, k)| {
                !matches!(axis_of(*k), Some((true, _))) && !self.unit_loops.contains(l)
            }) {
                return Err(unsupported(
                    v,
                    format!(
                        "bound to {} inside the {} loop `{l}`: work-groups cannot wait for each other between its iterations; bind or reorder `{v}` outside it",
                        kind.name(),
                        k.name()
                    ),
                ));
            }
        } else if let Some(pos) = self
            .loops
            .iter()
            .position(|(_, k)| matches!(axis_of(*k), Some((false, _))))
        {
            if let Some((l, k)) = self.loops[pos..]
                .iter()
                .find(|(l, k)| axis_of(*k).is_none() && !self.unit_loops.contains(l))
            {
                return Err(unsupported(
                    v,
                    format!(
                        "bound to {} inside the {} loop `{l}`, itself inside a thread-bound loop: that would need a barrier in divergent code",
                        kind.name(),
                        k.name()
                    ),
                ));
            }
        }
        let Some(n) = const_int(extent) else {
            return Err(unsupported(
                v,
                format!("bound to {} with a non-constant extent", kind.name()),
            ));
        };
        let lo = self.expr(min)?;
        let id = if block {
            format!("get_group_id({axis})")
        } else {
            format!("get_local_id({axis})")
        };
        let guard = !block && (n as usize) < self.local[axis];
        self.line("{");
        self.indent += 1;
        self.line(&format!("const long {} = {lo} + (long){id};", var(v)));
        if guard {
            self.line(&format!("if ({id} < {n}) {{"));
            self.indent += 1;
        }
        self.env.push_var(v.to_string(), ScalarType::Int);
        self.loops.push((v.to_string(), kind));
        let r = self.stmt(body);
        self.loops.pop();
        self.env.pop_var();
        r?;
        if guard {
            self.indent -= 1;
            self.line("}");
        }
        self.indent -= 1;
        self.line("}");
        Ok(())
    }

    // ---- vector loops -------------------------------------------------------------

    fn vtype(&self) -> &'static str {
        if self.fp16 {
            "half4"
        } else {
            "float4"
        }
    }

    /// Can loop `v` be emitted four lanes at a time? (`v` is in the environment.)
    fn vector_loop_ok(&self, v: &str, extent: &Expr, body: &Stmt) -> bool {
        let Expr::Int(n) = extent else {
            return false;
        };
        if *n <= 0 || n % 4 != 0 {
            return false;
        }
        fn shape_ok(s: &Stmt, v: &str) -> bool {
            match s {
                Stmt::Seq(items) => items.iter().all(|i| shape_ok(i, v)),
                Stmt::Store { .. } => true,
                Stmt::Let { value, body, .. } => !expr_uses_var(value, v) && shape_ok(body, v),
                _ => false,
            }
        }
        if !shape_ok(body, v) {
            return false;
        }
        let mut ok = true;
        tir::visit::for_each_stmt(body, &mut |s| {
            if let Stmt::Store { buffer, .. } = s {
                ok &= self
                    .shape(buffer)
                    .map(|b| b.dtype == DType::F32)
                    .unwrap_or(false);
            }
        });
        ok
    }

    /// Coefficient of `v` in the flat index of `buffer[indices]`, when affine.
    fn flat_coeff(
        &self,
        buffer: &str,
        indices: &[Expr],
        v: &str,
    ) -> Result<Option<i64>, CodegenError> {
        let strides = self.shape(buffer)?.strides.clone();
        let mut total = 0i64;
        for (i, s) in indices.iter().zip(strides) {
            match lane_coeff(i, v) {
                Some(c) => total += c * s as i64,
                None => return Ok(None),
            }
        }
        Ok(Some(total))
    }

    fn scalar_to_lane(&self, s: String) -> String {
        if self.fp16 {
            format!("(half)({s})")
        } else {
            s
        }
    }

    fn vexpr(&self, e: &Expr, v: &str) -> Result<String, CodegenError> {
        let vt = self.vtype();
        if !expr_uses_var(e, v) {
            let x = self.scalar_to_lane(self.expr(e)?);
            return Ok(format!("(({vt})({x}))"));
        }
        let lanes = |em: &Emitter| -> Result<String, CodegenError> {
            let l: Vec<String> = (0..4)
                .map(|l| em.expr(&at_lane(e, v, l)).map(|s| em.scalar_to_lane(s)))
                .collect::<Result<_, _>>()?;
            Ok(format!("(({vt})({}))", l.join(", ")))
        };
        match e {
            Expr::Load { buffer, indices } if self.shape(buffer)?.dtype == DType::F32 => {
                match self.flat_coeff(buffer, indices, v)? {
                    Some(1) => {
                        let flat = self.flat_index(buffer, indices)?;
                        let l = format!("vload4(0, &{}[{flat}])", buf(buffer));
                        Ok(if self.fp16 {
                            format!("convert_half4({l})")
                        } else {
                            l
                        })
                    }
                    _ => lanes(self),
                }
            }
            Expr::Binary(op, a, b) if self.ty(a)? == ScalarType::F32 => {
                let (x, y) = (self.vexpr(a, v)?, self.vexpr(b, v)?);
                Ok(match op {
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
                        format!("({x} {} {y})", op.symbol())
                    }
                    BinOp::Min => format!("fmin({x}, {y})"),
                    BinOp::Max => format!("fmax({x}, {y})"),
                    _ => return lanes(self),
                })
            }
            Expr::Call(f, args) if args.len() == 1 => {
                let x = self.vexpr(&args[0], v)?;
                let name = match f {
                    Intrinsic::Sigmoid => "grim_sigmoid4",
                    other => intrinsic_name(*other),
                };
                Ok(format!("{name}({x})"))
            }
            _ => lanes(self),
        }
    }

    fn vector_loop(
        &mut self,
        v: &str,
        min: &Expr,
        extent: &Expr,
        body: &Stmt,
    ) -> Result<(), CodegenError> {
        let Expr::Int(n) = extent else {
            return Err(unsupported(v, "vector loop with a non-constant extent"));
        };
        let lo = self.expr(min)?;
        let g = self.fresh("lane");
        self.line("{");
        self.indent += 1;
        self.line(&format!("for (long {g} = 0; {g} < {n}; {g} += 4) {{"));
        self.indent += 1;
        self.line(&format!("const long {} = {lo} + {g};", var(v)));
        self.env.push_var(v.to_string(), ScalarType::Int);
        self.loops.push((v.to_string(), ForKind::Vectorized));
        let r = self.vector_body(body, v);
        self.loops.pop();
        self.env.pop_var();
        r?;
        self.indent -= 1;
        self.line("}");
        self.indent -= 1;
        self.line("}");
        Ok(())
    }

    fn vector_body(&mut self, s: &Stmt, v: &str) -> Result<(), CodegenError> {
        match s {
            Stmt::Seq(items) => {
                for i in items {
                    self.vector_body(i, v)?;
                }
                Ok(())
            }
            Stmt::Let {
                var: name,
                value,
                body,
            } => {
                let t = self.ty(value)?;
                let e = self.expr(value)?;
                self.line("{");
                self.indent += 1;
                self.line(&format!(
                    "const {} {} = {e};",
                    Self::scalar_type(t),
                    var(name)
                ));
                self.env.push_var(name.clone(), t);
                let r = self.vector_body(body, v);
                self.env.pop_var();
                r?;
                self.indent -= 1;
                self.line("}");
                Ok(())
            }
            Stmt::Store {
                buffer,
                indices,
                value,
            } => {
                self.check_store(buffer)?;
                let val = self.vexpr(value, v)?;
                let val = if self.fp16 {
                    format!("convert_float4({val})")
                } else {
                    val
                };
                match self.flat_coeff(buffer, indices, v)? {
                    Some(1) => {
                        let flat = self.flat_index(buffer, indices)?;
                        self.line(&format!("vstore4({val}, 0, &{}[{flat}]);", buf(buffer)));
                    }
                    _ => {
                        let t = self.fresh("vec");
                        self.line("{");
                        self.indent += 1;
                        self.line(&format!("const float4 {t} = {val};"));
                        for l in 0..4 {
                            let idx: Vec<Expr> = indices.iter().map(|i| at_lane(i, v, l)).collect();
                            let flat = self.flat_index(buffer, &idx)?;
                            self.line(&format!("{}[{flat}] = {t}.s{l};", buf(buffer)));
                        }
                        self.indent -= 1;
                        self.line("}");
                    }
                }
                Ok(())
            }
            _ => Err(unsupported(v, "statement not supported in a vector loop")),
        }
    }
}

fn intrinsic_name(f: Intrinsic) -> &'static str {
    match f {
        Intrinsic::Exp => "exp",
        Intrinsic::Tanh => "tanh",
        Intrinsic::Sigmoid => "grim_sigmoid",
        Intrinsic::Sqrt => "sqrt",
        Intrinsic::Abs => "fabs",
    }
}

fn first_bound_loop(s: &Stmt) -> Option<String> {
    let mut found = None;
    tir::visit::for_each_stmt(s, &mut |s| {
        if let Stmt::For { var, kind, .. } = s {
            if found.is_none() && kind.is_thread_binding() {
                found = Some(var.clone());
            }
        }
    });
    found
}

fn first_thread_loop(s: &Stmt) -> Option<String> {
    let mut found = None;
    tir::visit::for_each_stmt(s, &mut |s| {
        if let Stmt::For { var, kind, .. } = s {
            if found.is_none() && matches!(axis_of(*kind), Some((false, _))) {
                found = Some(var.clone());
            }
        }
    });
    found
}

/// `e` as `Σ coefficient·variable` (the constant term dropped); `None` when it is not
/// affine (a load, a product of variables, a division, ...).
fn affine(e: &Expr) -> Option<BTreeMap<String, i64>> {
    fn go(e: &Expr, scale: i64, out: &mut BTreeMap<String, i64>) -> Option<()> {
        match e {
            Expr::Int(_) => Some(()),
            Expr::Var(n) => {
                let c = out.entry(n.clone()).or_insert(0);
                *c = c.checked_add(scale)?;
                Some(())
            }
            Expr::Binary(BinOp::Add, a, b) => {
                go(a, scale, out)?;
                go(b, scale, out)
            }
            Expr::Binary(BinOp::Sub, a, b) => {
                go(a, scale, out)?;
                go(b, scale.checked_neg()?, out)
            }
            Expr::Binary(BinOp::Mul, a, b) => match (const_int(a), const_int(b)) {
                (Some(c), _) => go(b, scale.checked_mul(c)?, out),
                (_, Some(c)) => go(a, scale.checked_mul(c)?, out),
                _ => None,
            },
            e => const_int(e).map(|_| ()),
        }
    }
    let mut out = BTreeMap::new();
    go(e, 1, &mut out)?;
    out.retain(|_, c| *c != 0);
    Some(out)
}

/// The OpenCL C element type of a buffer of `dtype` (`float`, `int`, `uchar`).
fn cl_elem_type(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "float",
        DType::I32 => "int",
        DType::U8 => "uchar",
    }
}

/// The kernel's parameter list.
fn cl_params(args: &[KernelArg]) -> String {
    args.iter()
        .map(|a| {
            let ty = cl_elem_type(a.dtype);
            let cst = match a.source {
                ArgSource::Param(ParamKind::Output) | ArgSource::Temporary => "",
                ArgSource::Param(_) => "const ",
            };
            format!("__global {cst}{ty}* restrict {}", buf(&a.name))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Lowers `f` (scheduled) for `target` (an [`Target::OpenCl`]) to an OpenCL program
/// whose kernels are named after `name` (`grim_kernel_NAME`).
///
/// Errors: [`CodegenError::Verify`] for a malformed function,
/// [`CodegenError::Unsupported`] naming the loop for what a GPU cannot run as
/// scheduled (see the module docs), and for a non-OpenCL target.
pub fn emit_program(
    f: &Function,
    name: &str,
    target: &Target,
) -> Result<OpenClProgram, CodegenError> {
    let Target::OpenCl { fp16 } = target else {
        return Err(unsupported(
            &f.name,
            format!("the OpenCL emitter needs an `opencl` target, not `{target}`"),
        ));
    };
    let fp16 = *fp16;
    tir::verify(f)?;
    let ok_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok_name {
        return Err(unsupported(
            name,
            "kernel names may only contain ASCII letters, digits and `_`",
        ));
    }
    // Function-level allocations become temporaries.
    let mut args: Vec<KernelArg> = f
        .params
        .iter()
        .map(|p| KernelArg {
            name: p.name.clone(),
            dtype: p.dtype,
            len: p.len(),
            source: ArgSource::Param(p.kind),
        })
        .collect();
    let mut shapes: Vec<BufShape> = f
        .params
        .iter()
        .map(|p| BufShape {
            name: p.name.clone(),
            dtype: p.dtype,
            strides: strides(&p.shape),
            space: Space::Global,
        })
        .collect();
    let mut env = TypeEnv::for_function(f);
    let mut body = &f.body;
    while let Stmt::Allocate {
        name: an,
        dtype,
        shape,
        scope,
        body: inner,
    } = body
    {
        if *scope == MemScope::Shared {
            return Err(unsupported(
                an,
                format!(
                    "shared allocation `{an}` at function level is not inside any block-bound loop"
                ),
            ));
        }
        if args.iter().any(|a| &a.name == an) {
            return Err(unsupported(
                an,
                "allocation shadows a buffer of the same name",
            ));
        }
        args.push(KernelArg {
            name: an.clone(),
            dtype: *dtype,
            len: shape.iter().product::<usize>().max(1),
            source: ArgSource::Temporary,
        });
        shapes.push(BufShape {
            name: an.clone(),
            dtype: *dtype,
            strides: strides(shape),
            space: Space::Global,
        });
        env.push_buffer(BufferInfo {
            name: an.clone(),
            dtype: *dtype,
            rank: shape.len(),
            param_kind: None,
        });
        body = inner;
    }
    // Stages: the top-level statements, nested sequences flattened (a tail split
    // leaves `{main loop; tail loop}` as one item).
    fn flatten<'s>(s: &'s Stmt, out: &mut Vec<&'s Stmt>) {
        match s {
            Stmt::Seq(items) => items.iter().for_each(|i| flatten(i, out)),
            s => out.push(s),
        }
    }
    let mut stages: Vec<&Stmt> = Vec::new();
    flatten(body, &mut stages);
    // Group stages into kernels: bound stages alone, unbound runs merged.
    let mut groups: Vec<Vec<&Stmt>> = Vec::new();
    let mut last_bound = true;
    for s in stages {
        let bound = contains_binding(s, false);
        if bound || last_bound {
            groups.push(vec![s]);
        } else if let Some(g) = groups.last_mut() {
            g.push(s);
        }
        last_bound = bound;
    }
    let params = cl_params(&args);
    let mut source = prelude(fp16);
    let mut launches = Vec::new();
    let many = groups.len() > 1;
    for (gi, group) in groups.iter().enumerate() {
        let mut bindings = Bindings::default();
        for s in group {
            collect_bindings(s, &mut bindings)?;
        }
        let single =
            bindings.blocks.iter().all(|b| b.is_none()) && bindings.threads.iter().all(|t| *t == 0);
        let mut kernel_axes = BTreeSet::new();
        let mut groups_n = [1usize; 3];
        let mut local = [1usize; 3];
        for a in 0..3 {
            if let Some((_, n)) = &bindings.blocks[a] {
                kernel_axes.insert((true, a));
                groups_n[a] = *n;
            }
            if bindings.threads[a] > 0 {
                kernel_axes.insert((false, a));
                local[a] = bindings.threads[a];
            }
        }
        let kname = if many {
            format!("grim_kernel_{name}_{gi}")
        } else {
            format!("grim_kernel_{name}")
        };
        let mut em = Emitter {
            out: String::new(),
            indent: 1,
            env: env.clone(),
            shapes: shapes.clone(),
            fresh: 0,
            fp16,
            shared_decls: Vec::new(),
            kernel_axes,
            local,
            loops: Vec::new(),
            unit_loops: BTreeSet::new(),
            single_work_item: single,
        };
        for s in group {
            em.stmt(s)?;
        }
        let _ = writeln!(
            source,
            "\n/* {}: kernel {gi} of {} */",
            f.name,
            groups.len()
        );
        if single {
            source.push_str("/* no bound loop: runs as a single work-item */\n");
            let _ = writeln!(
                source,
                "__kernel __attribute__((reqd_work_group_size(1, 1, 1)))"
            );
        } else {
            let _ = writeln!(
                source,
                "__kernel __attribute__((reqd_work_group_size({}, {}, {})))",
                local[0], local[1], local[2]
            );
        }
        let _ = writeln!(source, "void {kname}({params}) {{");
        for d in &em.shared_decls {
            let _ = writeln!(source, "  {d}");
        }
        source.push_str(&em.out);
        source.push_str("}\n");
        let mut global = [1usize; 3];
        for a in 0..3 {
            global[a] = groups_n[a] * local[a];
        }
        launches.push(KernelLaunch {
            name: kname,
            global,
            local,
            single_work_item: single,
        });
    }
    Ok(OpenClProgram {
        function: f.name.clone(),
        source,
        launches,
        args,
        fp16,
    })
}

/// Checks OpenCL C `source` with `clang -x cl -cl-std=CL2.0 -fsyntax-only -Werror`
/// (with the default OpenCL header and `cl_khr_fp16` enabled), for kernels that the
/// local OpenCL device cannot build (fp16 on pocl's CPU device).
pub fn clang_syntax_check(source: &str, dir: &std::path::Path) -> Result<(), CodegenError> {
    let io = |source| CodegenError::Io {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let path = dir.join("kernel.cl");
    std::fs::write(&path, source).map_err(|source| CodegenError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let out = std::process::Command::new("clang")
        .args([
            "-x",
            "cl",
            "-cl-std=CL2.0",
            "-Xclang",
            "-finclude-default-header",
            "-Xclang",
            "-cl-ext=+cl_khr_fp16",
            "-fsyntax-only",
            "-Werror",
        ])
        .arg(&path)
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CodegenError::MissingTool {
                program: "clang".into(),
                package: "clang".into(),
            })
        }
        Err(source) => {
            return Err(CodegenError::Io {
                path: "clang".into(),
                source,
            })
        }
    };
    if out.status.success() {
        Ok(())
    } else {
        Err(CodegenError::BuildFailed {
            program: "clang -x cl -fsyntax-only".into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn const_int_folds_literal_arithmetic_only() {
        let e = tir::parse_expr("24 - 20").unwrap();
        assert_eq!(const_int(&e), Some(4));
        assert_eq!(
            const_int(&tir::parse_expr("(0 - 7) / 2").unwrap()),
            Some(-4)
        );
        assert_eq!(const_int(&tir::parse_expr("(0 - 7) % 2").unwrap()), Some(1));
        assert_eq!(
            const_int(&tir::parse_expr("min(3, 9) * 2").unwrap()),
            Some(6)
        );
        assert_eq!(const_int(&tir::parse_expr("n - 1").unwrap()), None);
        assert_eq!(const_int(&tir::parse_expr("5 / 0").unwrap()), None);
    }

    #[test]
    fn affine_forms() {
        let a = affine(&tir::parse_expr("n_0 * 4 + n_1 - 2 * k + 3").unwrap()).unwrap();
        let want: BTreeMap<String, i64> = [
            ("n_0".to_string(), 4),
            ("n_1".to_string(), 1),
            ("k".to_string(), -2),
        ]
        .into_iter()
        .collect();
        assert_eq!(a, want);
        assert!(affine(&tir::parse_expr("a * b").unwrap()).is_none());
        assert!(affine(&tir::parse_expr("a / 2").unwrap()).is_none());
    }

    #[test]
    fn int_literals_are_long() {
        assert_eq!(int_lit(5), "5L");
        assert_eq!(int_lit(-5), "(-5L)");
        assert_eq!(int_lit(i64::MIN), "(-9223372036854775807L - 1)");
    }

    #[test]
    fn non_opencl_target_is_refused() {
        let f = tir::parse_function(
            "fn f(X: in f32[4], Y: out f32[4]) {\n  for (i, 0, 4) {\n    Y[i] = X[i];\n  }\n}\n",
        )
        .unwrap();
        let e = emit_program(&f, "f", &Target::Host)
            .unwrap_err()
            .to_string();
        assert!(e.contains("opencl"), "{e}");
        let e = emit_program(&f, "a-b", &Target::OpenCl { fp16: false })
            .unwrap_err()
            .to_string();
        assert!(e.contains("kernel names"), "{e}");
    }
}
