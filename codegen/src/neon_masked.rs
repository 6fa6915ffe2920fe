//! NEON code for the masked multiply-adds of BCR rows on `aarch64-neon`.
//!
//! The loop [`crate::avx512_masked`] describes (an entry's kept rows in lanes padded
//! to a vector width, lanes past the kept count reading nothing) has no masked load on
//! NEON, and [`crate::neon`] computed its `select` lane by lane: four scalar loads and
//! inserts per vector. Here each 4 lanes are one `vld1q_f32` and-ed with the lane mask
//! (`vcltq_s32` of the lane numbers and the kept count) where the 4 lanes lie within
//! the values' buffer, and `grim_load4_first` (the kept lanes one by one, the rest
//! zero) only where they would not (the last entries), then one `vfmaq_f32`.

use crate::avx512_masked::masked_fma_c;
use crate::c_emit::Emitter;
use crate::error::CodegenError;
use tir::{Expr, Stmt};

/// Emits the masked multiply-add loop `for (v, min, extent) vectorized { body }` with
/// NEON intrinsics when it has the shape of [`crate::avx512_masked`] and `extent` is a
/// multiple of 4; `None` otherwise.
pub(crate) fn try_emit_masked_fma(
    em: &mut Emitter<'_>,
    v: &str,
    min: &Expr,
    extent: &Expr,
    body: &Stmt,
) -> Result<Option<()>, CodegenError> {
    let Some(c) = masked_fma_c(em, v, min, extent, body, |w| w > 0 && w % 4 == 0, false)? else {
        return Ok(None);
    };
    em.line("{");
    em.indent += 1;
    let (n, x, lane) = (em.fresh("kept"), em.fresh("scale"), em.fresh("lane"));
    em.line(&format!("const int64_t {n} = {};", c.kept));
    em.line(&format!(
        "const float32x4_t {x} = vdupq_n_f32({});",
        c.scale
    ));
    em.line(&format!("const int32x4_t {lane} = {{0, 1, 2, 3}};"));
    for q in 0..c.width / 4 {
        let (k, vals, o) = (em.fresh("mask"), em.fresh("vals"), 4 * q);
        let left = format!("{n} - {o}");
        em.line(&format!(
            "const uint32x4_t {k} = vcltq_s32({lane}, vdupq_n_s32((int32_t)({left} > 4 ? 4 : ({left} < 0 ? 0 : {left}))));"
        ));
        em.line(&format!(
            "const float32x4_t {vals} = ({val_at} + {o} + 4 <= {len}LL) ? vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(vld1q_f32(&{val}[{val_at} + {o}])), {k})) : grim_load4_first(&{val}[{val_at} + {o}], {left});",
            val = c.val,
            val_at = c.val_at,
            len = c.val_len
        ));
        em.line(&format!(
            "vst1q_f32(&{acc}[{acc_at} + {o}], vfmaq_f32(vld1q_f32(&{acc}[{acc_at} + {o}]), {vals}, {x}));",
            acc = c.acc,
            acc_at = c.acc_at
        ));
    }
    em.indent -= 1;
    em.line("}");
    Ok(Some(()))
}
