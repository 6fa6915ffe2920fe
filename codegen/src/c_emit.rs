//! Lowering of a scheduled tir function to C.
//!
//! Every IR name is prefixed in C (`b_` for buffers, `v_` for variables) so no name
//! can clash with a C keyword or the runtime. Index arithmetic is `int64_t` with the
//! IR's floor division and modulo (`grim_floordiv`/`grim_floormod`); floats are
//! `float`; `min`/`max` on floats are `grim_fminf`/`grim_fmaxf` (`fminf`/`fmaxf`, as in the
//! interpreter, written so that GCC vectorizes them). `exp`,
//! `tanh` and `sigmoid` are the prelude's `grim_expf`/`grim_tanhf`/`grim_sigmoid`:
//! polynomials without libm calls (within 1.2e-7 and 2.2e-7 relative of `expf` and
//! `tanhf`), so that loops calling them vectorize (a GRU step's gates: hidden 1024 at
//! 90%, 72 -> 54 us; hidden 256, 8.3 -> 4.0 us). Their clamp and tanh's choice of
//! range are bit selects, not `?:`: GCC 12 does not if-convert those under its default
//! `-ftrapping-math` and left the loops scalar ("control flow in loop"; GRU 256 at 90%
//! with 32x32 blocks on an AMD Zen 1 host 18.8 -> 12.4 us, 16x16 22.6 -> 15.0 us; on
//! aarch64 137k -> 93k instructions per step).
//!
//! Loop kinds: `serial` is a plain `for`; `parallel` gets `#pragma omp parallel for`;
//! `unrolled` is expanded, one copy per iteration; `vectorized` uses NEON intrinsics
//! on `aarch64-neon` when the body is a set of float stores (see [`crate::neon`]) and
//! otherwise a `#pragma omp simd` loop that the compiler vectorizes; on other C targets
//! the lane permutation of block-row windows and the masked multiply-adds of BCR rows
//! are AVX-512 intrinsics where the compiler targets AVX-512 (see [`crate::avx512`] and
//! [`crate::avx512_masked`]). GPU thread bindings cannot be expressed in C and are an
//! error naming the loop.

use crate::error::CodegenError;
use crate::target::Target;
use crate::{avx512, avx512_masked, row_fma};
use crate::{neon, neon_masked};
use std::fmt::Write as _;
use tir::verify::{type_of, BufferInfo, TypeEnv};
use tir::{BinOp, DType, Expr, ForKind, Function, Intrinsic, ParamKind, ScalarType, Stmt, UnOp};

/// Largest local allocation (in elements) placed on the stack; larger ones use
/// `calloc` (once, and kept, where [`crate::scratch::reusable_across_calls`] allows).
pub const MAX_STACK_ELEMS: usize = 16 * 1024;

/// The C helpers every generated file starts with.
pub fn prelude(target: &Target) -> String {
    let mut s = String::from(
        "#include <stdint.h>\n#include <stddef.h>\n#include <stdlib.h>\n#include <string.h>\n#include <math.h>\n#include <stdatomic.h>\n",
    );
    if target.neon() {
        s.push_str("#include <arm_neon.h>\n");
    } else {
        // Block-row windows permute lanes with AVX-512 or AVX2 where the compiler
        // targets them.
        s.push_str(
            "#if defined(__AVX512F__) || defined(__AVX2__)\n#include <immintrin.h>\n#endif\n",
        );
    }
    s.push_str(
        r#"
static inline int64_t grim_floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q -= 1;
  return q;
}
static inline int64_t grim_floormod(int64_t a, int64_t b) {
  int64_t m = a % b;
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}
static inline int64_t grim_min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t grim_max_i64(int64_t a, int64_t b) { return a > b ? a : b; }
/* `first ? a : b` as a bit select: GCC 12 does not if-convert `?:` on floats under its
   default -ftrapping-math ("control flow in loop"), which left every loop calling the
   helpers below scalar. */
static inline float grim_pick(int first, float a, float b) {
  uint32_t ab, bb;
  memcpy(&ab, &a, sizeof ab);
  memcpy(&bb, &b, sizeof bb);
  const uint32_t m = 0u - (uint32_t)first;
  const uint32_t rb = (ab & m) | (bb & ~m);
  float r;
  memcpy(&r, &rb, sizeof r);
  return r;
}
/* exp without a libm call, so loops calling it vectorize: x = n ln2 + r with n from the
   1.5 * 2^23 rounding trick, e^r by Cephes' expf polynomial, 2^n in the exponent bits;
   within 1.2e-7 relative of expf on [-87, 88] (inputs are clamped there). */
static inline float grim_expf(float x) {
  /* The clamp as bit selects (NaN stays NaN, as with `?:`). */
  x = grim_pick(x < -87.0f, -87.0f, grim_pick(x > 88.0f, 88.0f, x));
  const float t = x * 1.44269504088896341f + 12582912.0f;
  const float n = t - 12582912.0f;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  int32_t ti;
  memcpy(&ti, &t, sizeof ti);
  const int32_t bits = (ti - 0x4B400000 + 127) * 8388608;
  float s;
  memcpy(&s, &bits, sizeof s);
  return e * s;
}
/* tanh from grim_expf above |x| = 0.625, Cephes' tanhf polynomial below (no
   cancellation near 0); within 2.2e-7 relative of tanhf. */
static inline float grim_tanhf(float x) {
  const float a = fabsf(x);
  const float big = copysignf(1.0f - 2.0f / (grim_expf(2.0f * a) + 1.0f), x);
  const float z = x * x;
  const float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z
      + 1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
  /* Both computed, one picked by a bit select (vectorizes; see grim_pick). */
  return grim_pick(a > 0.625f, big, small);
}
static inline float grim_sigmoid(float x) { return 1.0f / (1.0f + grim_expf(-x)); }
/* fmaxf and fminf (a NaN operand yields the other one) as bit selects: GCC 12 does not
   vectorize loops calling fmaxf/fminf on x86 ("no vectype"), which left every ReLU
   and max-pooling loop scalar there. */
static inline float grim_fmaxf(float a, float b) { return grim_pick(a > b || b != b, a, b); }
static inline float grim_fminf(float a, float b) { return grim_pick(a < b || b != b, a, b); }
"#,
    );
    if target.neon() {
        s.push_str(
            r#"static inline float32x4_t grim_pack4(float a, float b, float c, float d) {
  float t[4] = {a, b, c, d};
  return vld1q_f32(t);
}
/* The first n (at most 4) floats at p, zeros after them; reads nothing past them. */
static inline float32x4_t grim_load4_first(const float* p, int64_t n) {
  float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int64_t i = 0; i < n && i < 4; i++) t[i] = p[i];
  return vld1q_f32(t);
}
"#,
        );
    }
    s
}

/// The C name of buffer `name`.
pub fn buf(name: &str) -> String {
    format!("b_{name}")
}

/// The C name of variable `name`.
pub fn var(name: &str) -> String {
    format!("v_{name}")
}

/// The C name of the kernel function for `kernel`.
pub fn kernel_symbol(kernel: &str) -> String {
    format!("grim_kernel_{kernel}")
}

/// The C element type of a buffer of `dtype` (`float`, `int32_t`, `uint8_t`).
pub fn c_elem_type(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "float",
        DType::I32 => "int32_t",
        DType::U8 => "uint8_t",
    }
}

/// The C parameter list of `f` (`float* restrict b_Y, const int32_t* restrict ...`).
pub fn c_params(f: &Function) -> String {
    f.params
        .iter()
        .map(|p| {
            let ty = c_elem_type(p.dtype);
            let cst = if p.kind == ParamKind::Output {
                ""
            } else {
                "const "
            };
            format!("{cst}{ty}* restrict {}", buf(&p.name))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A buffer in scope with its row-major strides.
#[derive(Clone)]
pub(crate) struct BufShape {
    pub name: String,
    pub dtype: DType,
    pub strides: Vec<usize>,
    /// Elements in all (the product of the shape).
    pub len: usize,
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1].saturating_mul(shape[k + 1]);
    }
    s
}

/// The C emitter's state.
pub(crate) struct Emitter<'t> {
    pub target: &'t Target,
    pub out: String,
    pub indent: usize,
    pub env: TypeEnv,
    pub shapes: Vec<BufShape>,
    /// Counter for fresh C temporaries.
    pub fresh: usize,
    /// Number of enclosing `omp parallel for` loops: inside one, a failed heap
    /// allocation cannot `return` (leaving an OpenMP structured block is invalid C).
    pub parallel_depth: usize,
    /// For every variable in scope (innermost last, beside `env`), whether it is known
    /// to be non-negative (see [`Emitter::non_negative`]).
    pub signs: Vec<(String, bool)>,
    /// The `i32` parameters whose elements are known non-negative: the kept-row and
    /// kept-column indices of BCR weights (`W_rows`, `W_cols` beside a `W_row_ptr`),
    /// which [`tir::BcrMatrix`] checks to lie in `0..extent`.
    pub non_negative_buffers: Vec<String>,
}

impl<'t> Emitter<'t> {
    /// Brings `name` of type `t` into scope; `value` (its value, or a loop's first
    /// value) says whether it is known non-negative.
    pub fn bind(&mut self, name: &str, t: ScalarType, value: &Expr) {
        let known = t == ScalarType::Int && self.non_negative(value);
        self.env.push_var(name.to_string(), t);
        self.signs.push((name.to_string(), known));
    }

    /// Ends the innermost [`Emitter::bind`].
    pub fn unbind(&mut self) {
        self.env.pop_var();
        self.signs.pop();
    }

    /// Whether the integer expression `e` is non-negative on every run: literals,
    /// variables bound to such values (loop variables by their first value), sums,
    /// products, minima and maxima of such, their floor quotients and remainders by a
    /// positive literal, and loads of one-byte or BCR row/column index buffers. Used to
    /// emit C's `/` and `%` (a multiply and shift for a constant divisor) instead of the
    /// floor forms' sign checks: a conv's kept column index split into channel and
    /// kernel offsets (`col / 9`, `col / 3 % 3`, `col % 3`) per kept column and output
    /// row (conv 3x3 64->64 56x56 90%, 32x32 tiles: 5-8% faster hand-edited, 1-5% as
    /// generated, on a loaded machine).
    pub fn non_negative(&self, e: &Expr) -> bool {
        match e {
            Expr::Int(v) => *v >= 0,
            Expr::Var(n) => self
                .signs
                .iter()
                .rev()
                .find(|(b, _)| b == n)
                .is_some_and(|(_, known)| *known),
            Expr::Binary(BinOp::Add | BinOp::Mul | BinOp::Min | BinOp::Max, a, b) => {
                self.non_negative(a) && self.non_negative(b)
            }
            Expr::Binary(BinOp::Div | BinOp::Mod, a, b) => {
                matches!(**b, Expr::Int(d) if d > 0) && self.non_negative(a)
            }
            Expr::Cast(ScalarType::Int, a) => self.non_negative(a),
            Expr::Load { buffer, .. } => {
                matches!(self.shape(buffer).map(|s| s.dtype), Ok(DType::U8))
                    || self.non_negative_buffers.iter().any(|b| b == buffer)
            }
            _ => false,
        }
    }

    pub fn line(&mut self, text: &str) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    pub fn fresh(&mut self, base: &str) -> String {
        self.fresh += 1;
        format!("t_{base}{}", self.fresh)
    }

    pub fn ty(&self, e: &Expr) -> Result<ScalarType, CodegenError> {
        Ok(type_of(e, &self.env)?)
    }

    pub fn shape(&self, name: &str) -> Result<&BufShape, CodegenError> {
        self.shapes
            .iter()
            .rev()
            .find(|b| b.name == name)
            .ok_or_else(|| CodegenError::Unsupported {
                loop_name: name.to_string(),
                reason: "unknown buffer".into(),
            })
    }

    /// The flat (row-major) index of an access, as a C expression.
    pub fn flat_index(&self, buffer: &str, indices: &[Expr]) -> Result<String, CodegenError> {
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

    /// A scalar C expression for `e`.
    pub fn expr(&self, e: &Expr) -> Result<String, CodegenError> {
        Ok(match e {
            Expr::Int(v) => int_lit(*v),
            Expr::Float(v) => float_lit(*v),
            Expr::Bool(b) => (if *b { "1" } else { "0" }).to_string(),
            Expr::Var(n) => var(n),
            Expr::Binary(op, a, b) => {
                let ty = self.ty(a)?;
                let (x, y) = (self.expr(a)?, self.expr(b)?);
                match (op, ty) {
                    (BinOp::Div | BinOp::Mod, ScalarType::Int)
                        if matches!(**b, Expr::Int(d) if d > 0) && self.non_negative(a) =>
                    {
                        format!("({x} {} {y})", op.symbol())
                    }
                    (BinOp::Div, ScalarType::Int) => format!("grim_floordiv({x}, {y})"),
                    (BinOp::Mod, _) => format!("grim_floormod({x}, {y})"),
                    (BinOp::Min, ScalarType::Int) => format!("grim_min_i64({x}, {y})"),
                    (BinOp::Max, ScalarType::Int) => format!("grim_max_i64({x}, {y})"),
                    (BinOp::Min, _) => format!("grim_fminf({x}, {y})"),
                    (BinOp::Max, _) => format!("grim_fmaxf({x}, {y})"),
                    (op, _) => format!("({x} {} {y})", op.symbol()),
                }
            }
            Expr::Unary(UnOp::Not, a) => format!("(!{})", self.expr(a)?),
            Expr::Select(c, a, b) => {
                format!(
                    "({} ? {} : {})",
                    self.expr(c)?,
                    self.expr(a)?,
                    self.expr(b)?
                )
            }
            Expr::Cast(t, a) => {
                let x = self.expr(a)?;
                match t {
                    ScalarType::F32 => format!("((float){x})"),
                    ScalarType::Int => format!("((int64_t){x})"),
                    ScalarType::Bool => format!("({x} != 0)"),
                }
            }
            Expr::Load { buffer, indices } => {
                let flat = self.flat_index(buffer, indices)?;
                match self.shape(buffer)?.dtype {
                    DType::F32 => format!("{}[{flat}]", buf(buffer)),
                    DType::I32 | DType::U8 => format!("((int64_t){}[{flat}])", buf(buffer)),
                }
            }
            Expr::Call(f, args) => {
                let a = args
                    .first()
                    .map(|a| self.expr(a))
                    .transpose()?
                    .unwrap_or_else(|| "0.0f".into());
                let name = match f {
                    Intrinsic::Exp => "grim_expf",
                    Intrinsic::Tanh => "grim_tanhf",
                    Intrinsic::Sigmoid => "grim_sigmoid",
                    Intrinsic::Sqrt => "sqrtf",
                    Intrinsic::Abs => "fabsf",
                };
                format!("{name}({a})")
            }
        })
    }

    fn c_type(t: ScalarType) -> &'static str {
        match t {
            ScalarType::F32 => "float",
            ScalarType::Int | ScalarType::Bool => "int64_t",
        }
    }

    /// Emits a statement.
    pub fn stmt(&mut self, s: &Stmt) -> Result<(), CodegenError> {
        match s {
            Stmt::Seq(items) => {
                for i in items {
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
                self.line(&format!("const {} {} = {e};", Self::c_type(t), var(v)));
                self.bind(v, t, value);
                let r = self.stmt(body);
                self.unbind();
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
                let flat = self.flat_index(buffer, indices)?;
                let v = self.expr(value)?;
                let v = match self.shape(buffer)?.dtype {
                    DType::F32 => v,
                    DType::I32 => format!("(int32_t){v}"),
                    DType::U8 => format!("(uint8_t){v}"),
                };
                self.line(&format!("{}[{flat}] = {v};", buf(buffer)));
            }
            Stmt::Prefetch { buffer, indices } => {
                let flat = self.flat_index(buffer, indices)?;
                self.line(&format!("__builtin_prefetch(&{}[{flat}]);", buf(buffer)));
            }
            Stmt::Allocate {
                name,
                dtype,
                shape,
                body,
                ..
            } => {
                let n: usize = shape.iter().product();
                let ty = c_elem_type(*dtype);
                let b = buf(name);
                self.line("{");
                self.indent += 1;
                let heap = n > MAX_STACK_ELEMS;
                // A heap buffer that every call leaves as a fresh zeroed one would is
                // allocated once and kept (`scratch`); a call that finds it in use by
                // another thread allocates its own.
                let kept = heap
                    && self.parallel_depth == 0
                    && crate::scratch::reusable_across_calls(name, body);
                if kept {
                    self.line(&format!("static {ty}* grim_kept_{b} = NULL;"));
                    self.line(&format!(
                        "static atomic_flag grim_busy_{b} = ATOMIC_FLAG_INIT;"
                    ));
                    self.line(&format!(
                        "const int grim_own_{b} = !atomic_flag_test_and_set(&grim_busy_{b});"
                    ));
                    self.line(&format!("{ty}* {b} = grim_own_{b} ? grim_kept_{b} : NULL;"));
                    self.line(&format!(
                        "if (!{b}) {b} = ({ty}*)calloc({n}, sizeof({ty}));"
                    ));
                    self.line(&format!(
                        "if (!{b}) {{ if (grim_own_{b}) atomic_flag_clear(&grim_busy_{b}); return 1; }}"
                    ));
                    self.line(&format!("if (grim_own_{b}) grim_kept_{b} = {b};"));
                } else if heap {
                    self.line(&format!("{ty}* {b} = ({ty}*)calloc({n}, sizeof({ty}));"));
                    if self.parallel_depth > 0 {
                        self.line(&format!("if (!{b}) abort();"));
                    } else {
                        self.line(&format!("if (!{b}) return 1;"));
                    }
                } else {
                    // 64-byte aligned: whole cache lines and vectors, and the same
                    // path through the zeroing `memset` wherever the stack lies.
                    self.line(&format!("_Alignas(64) {ty} {b}[{}] = {{0}};", n.max(1)));
                }
                self.shapes.push(BufShape {
                    name: name.clone(),
                    dtype: *dtype,
                    strides: strides(shape),
                    len: shape.iter().product(),
                });
                self.env.push_buffer(BufferInfo {
                    name: name.clone(),
                    dtype: *dtype,
                    rank: shape.len(),
                    param_kind: None,
                });
                let r = self.stmt(body);
                self.env.pop_buffer();
                self.shapes.pop();
                r?;
                if kept {
                    self.line(&format!(
                        "if (grim_own_{b}) atomic_flag_clear(&grim_busy_{b}); else free({b});"
                    ));
                } else if heap {
                    self.line(&format!("free({b});"));
                }
                self.indent -= 1;
                self.line("}");
            }
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

    fn for_loop(
        &mut self,
        v: &str,
        min: &Expr,
        extent: &Expr,
        kind: ForKind,
        body: &Stmt,
    ) -> Result<(), CodegenError> {
        if kind.is_thread_binding() {
            return Err(CodegenError::Unsupported {
                loop_name: v.to_string(),
                reason: format!(
                    "bound to the GPU axis {}; thread bindings need an OpenCL target",
                    kind.name()
                ),
            });
        }
        if kind == ForKind::Unrolled {
            let lo = self.expr(min)?;
            let Expr::Int(n) = extent else {
                return Err(CodegenError::Unsupported {
                    loop_name: v.to_string(),
                    reason: "unrolled loop with a non-constant extent".into(),
                });
            };
            let lo_name = self.fresh("lo");
            self.line("{");
            self.indent += 1;
            self.line(&format!("const int64_t {lo_name} = {lo};"));
            self.bind(v, ScalarType::Int, min);
            for k in 0..*n {
                self.line("{");
                self.indent += 1;
                self.line(&format!("const int64_t {} = {lo_name} + {k};", var(v)));
                let r = self.stmt(body);
                if r.is_err() {
                    self.unbind();
                }
                r?;
                self.indent -= 1;
                self.line("}");
            }
            self.unbind();
            self.indent -= 1;
            self.line("}");
            return Ok(());
        }
        if kind == ForKind::Vectorized && self.target.neon() {
            if let Some(()) = neon_masked::try_emit_masked_fma(self, v, min, extent, body)? {
                return Ok(());
            }
            if let Some(()) = neon::try_emit_vector_loop(self, v, min, extent, body)? {
                return Ok(());
            }
        }
        if kind == ForKind::Vectorized && !self.target.neon() {
            let mut plain = |em: &mut Emitter<'_>| em.plain_loop(v, min, extent, kind, body);
            if let Some(()) = avx512::try_emit_window_add(self, v, min, extent, body, &mut plain)? {
                return Ok(());
            }
            if let Some(()) =
                avx512_masked::try_emit_masked_fma(self, v, min, extent, body, &mut plain)?
            {
                return Ok(());
            }
            if let Some(()) = row_fma::try_emit_whole_fma(self, v, min, extent, body, &mut plain)? {
                return Ok(());
            }
        }
        self.plain_loop(v, min, extent, kind, body)
    }

    /// A `for` loop in C (`parallel` and `vectorized` as OpenMP pragmas).
    fn plain_loop(
        &mut self,
        v: &str,
        min: &Expr,
        extent: &Expr,
        kind: ForKind,
        body: &Stmt,
    ) -> Result<(), CodegenError> {
        let lo = self.expr(min)?;
        let ext = self.expr(extent)?;
        let (lo_name, hi_name) = (self.fresh("lo"), self.fresh("hi"));
        self.line("{");
        self.indent += 1;
        self.line(&format!("const int64_t {lo_name} = {lo};"));
        self.line(&format!("const int64_t {hi_name} = {lo_name} + {ext};"));
        match kind {
            ForKind::Parallel => self.line("#pragma omp parallel for schedule(static)"),
            ForKind::Vectorized => self.line("#pragma omp simd"),
            _ => {}
        }
        let cv = var(v);
        self.line(&format!(
            "for (int64_t {cv} = {lo_name}; {cv} < {hi_name}; ++{cv}) {{"
        ));
        self.indent += 1;
        self.bind(v, ScalarType::Int, min);
        let parallel = kind == ForKind::Parallel;
        self.parallel_depth += usize::from(parallel);
        let r = self.stmt(body);
        self.parallel_depth -= usize::from(parallel);
        self.unbind();
        r?;
        self.indent -= 1;
        self.line("}");
        self.indent -= 1;
        self.line("}");
        Ok(())
    }
}

/// The kept-row and kept-column index parameters (`W_rows`, `W_cols`, `i32`) of every
/// BCR weight `W` of `f` (one with a `W_row_ptr` parameter): their elements lie in
/// `0..M` and `0..K` ([`tir::BcrMatrix`] checks them when it is built; row and column
/// reordering only permute them).
fn bcr_index_buffers(f: &Function) -> Vec<String> {
    let is_i32 = |name: &str| {
        f.params
            .iter()
            .any(|p| p.name == name && p.dtype == DType::I32 && p.kind == ParamKind::Weight)
    };
    f.params
        .iter()
        .filter_map(|p| p.name.strip_suffix("_row_ptr"))
        .flat_map(|w| [format!("{w}_rows"), format!("{w}_cols")])
        .filter(|n| is_i32(n))
        .collect()
}

/// A C literal for an `i64`.
pub fn int_lit(v: i64) -> String {
    if v == i64::MIN {
        "(-9223372036854775807LL - 1)".into()
    } else if v < 0 {
        format!("({v}LL)")
    } else {
        format!("{v}LL")
    }
}

/// A C literal for an `f32`.
pub fn float_lit(v: f32) -> String {
    if v.is_nan() {
        "NAN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "INFINITY" } else { "(-INFINITY)" }.into()
    } else {
        let s = format!("{v:?}f");
        if v.is_sign_negative() {
            format!("({s})")
        } else {
            s
        }
    }
}

/// Emits the C function `int grim_kernel_<kernel>(params)` for `f` (returns 0, or 1
/// when a heap allocation fails).
pub fn emit_kernel(f: &Function, kernel: &str, target: &Target) -> Result<String, CodegenError> {
    if target.opencl() {
        return Err(CodegenError::Unsupported {
            loop_name: f.name.clone(),
            reason: format!("the C emitter cannot target `{target}`: use codegen::opencl_emit"),
        });
    }
    tir::verify(f)?;
    let mut em = Emitter {
        target,
        out: String::new(),
        indent: 1,
        env: TypeEnv::for_function(f),
        shapes: f
            .params
            .iter()
            .map(|p| BufShape {
                name: p.name.clone(),
                dtype: p.dtype,
                strides: strides(&p.shape),
                len: p.shape.iter().product(),
            })
            .collect(),
        fresh: 0,
        parallel_depth: 0,
        signs: Vec::new(),
        non_negative_buffers: bcr_index_buffers(f),
    };
    em.stmt(&f.body)?;
    let mut s = String::new();
    let _ = writeln!(s, "/* {} */", f.name);
    let _ = writeln!(s, "int {}({}) {{", kernel_symbol(kernel), c_params(f));
    s.push_str(&em.out);
    s.push_str("  return 0;\n}\n");
    Ok(s)
}
