//! NEON code for vectorized loops on `aarch64-neon`.
//!
//! A vectorized loop whose extent is a constant multiple of 4 and whose body is a
//! sequence of `f32` stores (optionally inside `let`s of values that do not depend on
//! the loop variable) is emitted four lanes at a time:
//! - a load whose flat index has coefficient 1 in the loop variable is `vld1q_f32`,
//!   coefficient 0 is a broadcast (`vdupq_n_f32`), anything else a 4-lane gather;
//! - `+ - * /`, `min`, `max` are `vaddq/vsubq/vmulq/vdivq/vminnmq/vmaxnmq_f32`, and
//!   `a + b * c` is the fused `vfmaq_f32(a, b, c)`;
//! - other float expressions (intrinsics, selects, casts) are computed lane by lane
//!   and packed;
//! - a store with coefficient 1 is `vst1q_f32`, otherwise four lane stores.
//!
//! Anything else falls back to the scalar `#pragma omp simd` loop (returns `None`).

use crate::c_emit::{buf, var, Emitter};
use crate::error::CodegenError;
use tir::visit::{expr_uses_var, substitute_expr};
use tir::{BinOp, DType, Expr, ScalarType, Stmt};

/// Coefficient of `v` in `e` when `e` is affine in `v` (other terms free of `v`).
pub(crate) fn lane_coeff(e: &Expr, v: &str) -> Option<i64> {
    if !expr_uses_var(e, v) {
        return Some(0);
    }
    match e {
        Expr::Var(n) if n == v => Some(1),
        Expr::Binary(BinOp::Add, a, b) => Some(lane_coeff(a, v)? + lane_coeff(b, v)?),
        Expr::Binary(BinOp::Sub, a, b) => Some(lane_coeff(a, v)? - lane_coeff(b, v)?),
        Expr::Binary(BinOp::Mul, a, b) => match (&**a, &**b) {
            (x, Expr::Int(c)) | (Expr::Int(c), x) => Some(lane_coeff(x, v)? * c),
            _ => None,
        },
        _ => None,
    }
}

/// Coefficient of `v` in the flat index of `buffer[indices]` (`None`: not affine).
pub(crate) fn flat_coeff(
    em: &Emitter<'_>,
    buffer: &str,
    indices: &[Expr],
    v: &str,
) -> Result<Option<i64>, CodegenError> {
    let strides = em.shape(buffer)?.strides.clone();
    let mut total = 0i64;
    for (i, s) in indices.iter().zip(strides) {
        match lane_coeff(i, v) {
            Some(c) => total += c * s as i64,
            None => return Ok(None),
        }
    }
    Ok(Some(total))
}

/// Can the body be emitted with NEON? Collects the statements in order.
fn vectorizable<'s>(s: &'s Stmt, v: &str, out: &mut Vec<&'s Stmt>) -> bool {
    match s {
        Stmt::Seq(items) => items.iter().all(|i| vectorizable(i, v, out)),
        Stmt::Store { .. } => {
            out.push(s);
            true
        }
        Stmt::Let { value, body, .. } if !expr_uses_var(value, v) => {
            out.push(s);
            vectorizable(body, v, &mut Vec::new())
        }
        _ => false,
    }
}

/// The value of `e` for lane `l` (the loop variable replaced by `v + l`).
pub(crate) fn at_lane(e: &Expr, v: &str, l: i64) -> Expr {
    if l == 0 {
        e.clone()
    } else {
        substitute_expr(e, v, &(Expr::var(v) + Expr::Int(l)))
    }
}

fn vexpr(em: &Emitter<'_>, e: &Expr, v: &str) -> Result<String, CodegenError> {
    if !expr_uses_var(e, v) {
        return Ok(format!("vdupq_n_f32({})", em.expr(e)?));
    }
    let lanes = |em: &Emitter<'_>| -> Result<String, CodegenError> {
        let l: Vec<String> = (0..4)
            .map(|l| em.expr(&at_lane(e, v, l)))
            .collect::<Result<_, _>>()?;
        Ok(format!("grim_pack4({})", l.join(", ")))
    };
    match e {
        Expr::Load { buffer, indices } => match flat_coeff(em, buffer, indices, v)? {
            Some(1) => {
                let flat = em.flat_index(buffer, indices)?;
                Ok(format!("vld1q_f32(&{}[{flat}])", buf(buffer)))
            }
            _ => lanes(em),
        },
        Expr::Binary(op, a, b) if em.ty(a)? == ScalarType::F32 => {
            let f = match op {
                BinOp::Add => {
                    // a + b * c  ->  fma
                    if let Expr::Binary(BinOp::Mul, x, y) = &**b {
                        return Ok(format!(
                            "vfmaq_f32({}, {}, {})",
                            vexpr(em, a, v)?,
                            vexpr(em, x, v)?,
                            vexpr(em, y, v)?
                        ));
                    }
                    if let Expr::Binary(BinOp::Mul, x, y) = &**a {
                        return Ok(format!(
                            "vfmaq_f32({}, {}, {})",
                            vexpr(em, b, v)?,
                            vexpr(em, x, v)?,
                            vexpr(em, y, v)?
                        ));
                    }
                    "vaddq_f32"
                }
                BinOp::Sub => "vsubq_f32",
                BinOp::Mul => "vmulq_f32",
                BinOp::Div => "vdivq_f32",
                BinOp::Min => "vminnmq_f32",
                BinOp::Max => "vmaxnmq_f32",
                _ => return lanes(em),
            };
            Ok(format!("{f}({}, {})", vexpr(em, a, v)?, vexpr(em, b, v)?))
        }
        _ => lanes(em),
    }
}

/// Emits `for v in [min, min+extent)` four lanes at a time, or returns `None` when the
/// loop is not in the supported form (the caller then emits a scalar loop).
pub(crate) fn try_emit_vector_loop(
    em: &mut Emitter<'_>,
    v: &str,
    min: &Expr,
    extent: &Expr,
    body: &Stmt,
) -> Result<Option<()>, CodegenError> {
    let Expr::Int(n) = extent else {
        return Ok(None);
    };
    if *n <= 0 || n % 4 != 0 {
        return Ok(None);
    }
    let mut stmts = Vec::new();
    if !vectorizable(body, v, &mut stmts) {
        return Ok(None);
    }
    // Every store must be to an f32 buffer.
    let mut ok = true;
    tir::visit::for_each_stmt(body, &mut |s| {
        if let Stmt::Store { buffer, .. } = s {
            ok &= em
                .shape(buffer)
                .map(|b| b.dtype == DType::F32)
                .unwrap_or(false);
        }
    });
    if !ok {
        return Ok(None);
    }
    let lo = em.expr(min)?;
    let g = em.fresh("lane");
    em.line("{");
    em.indent += 1;
    em.line(&format!("for (int64_t {g} = 0; {g} < {n}; {g} += 4) {{"));
    em.indent += 1;
    em.line(&format!("const int64_t {} = {lo} + {g};", var(v)));
    em.bind(v, ScalarType::Int, min);
    let r = emit_body(em, body, v);
    em.unbind();
    r?;
    em.indent -= 1;
    em.line("}");
    em.indent -= 1;
    em.line("}");
    Ok(Some(()))
}

fn emit_body(em: &mut Emitter<'_>, s: &Stmt, v: &str) -> Result<(), CodegenError> {
    match s {
        Stmt::Seq(items) => {
            for i in items {
                emit_body(em, i, v)?;
            }
            Ok(())
        }
        Stmt::Let {
            var: name,
            value,
            body,
        } => {
            let t = em.ty(value)?;
            let e = em.expr(value)?;
            let ct = if t == ScalarType::F32 {
                "float"
            } else {
                "int64_t"
            };
            em.line("{");
            em.indent += 1;
            em.line(&format!("const {ct} {} = {e};", var(name)));
            em.bind(name, t, value);
            let r = emit_body(em, body, v);
            em.unbind();
            r?;
            em.indent -= 1;
            em.line("}");
            Ok(())
        }
        Stmt::Store {
            buffer,
            indices,
            value,
        } => {
            let val = vexpr(em, value, v)?;
            match flat_coeff(em, buffer, indices, v)? {
                Some(1) => {
                    let flat = em.flat_index(buffer, indices)?;
                    em.line(&format!("vst1q_f32(&{}[{flat}], {val});", buf(buffer)));
                }
                _ => {
                    let t = em.fresh("vec");
                    em.line("{");
                    em.indent += 1;
                    em.line(&format!("const float32x4_t {t} = {val};"));
                    for l in 0..4 {
                        let idx: Vec<Expr> = indices.iter().map(|i| at_lane(i, v, l)).collect();
                        let flat = em.flat_index(buffer, &idx)?;
                        em.line(&format!(
                            "{}[{flat}] = vgetq_lane_f32({t}, {l});",
                            buf(buffer)
                        ));
                    }
                    em.indent -= 1;
                    em.line("}");
                }
            }
            Ok(())
        }
        _ => Err(CodegenError::Unsupported {
            loop_name: v.to_string(),
            reason: "statement not supported in a NEON loop".into(),
        }),
    }
}
