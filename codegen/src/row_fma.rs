//! AVX-512 and AVX2 code for the multiply-adds of BCR rows in padded lanes.
//!
//! [`schedule::primitive::bcr::vectorize_rows`] (unmasked) pads an entry's kept rows to
//! a vector width `W` (zeros in the values past the kept rows) and leaves the loop
//!
//! ```text
//! vectorized for (i, 0, W) {
//!   acc[a + i] = acc[a + i] + VAL[b + i] * x;
//! }
//! ```
//!
//! with `x` (the entry's input) free of `i`. GCC usually turns the plain loop into a
//! broadcast and whole-vector multiply-adds, but not always: where the sums then go
//! into a block-row window ([`crate::avx512::try_emit_window_add`], whose intrinsics
//! read the accumulator) and the input is read from the input vector directly (no
//! load-redundancy elimination: a GRU's matrices), GCC 12 vectorized the enclosing
//! kept-columns loop instead, reading each column's input with a `vgatherdps` of one
//! repeated index (GRU 256 at 90%, 32x32 blocks, 16 padded lanes, windowed, AMD Zen 3:
//! 21-24 us, against 5.9 us with this module). Here each 16 lanes (8 when `W` is 8)
//! are one broadcast, one whole load and one fused multiply-add, in intrinsics, under
//! `#if defined(__AVX512F__)`, an AVX2 branch of 8-lane registers, and the plain loop
//! for other machines. Every lane the plain loop reads is read, and no other: the
//! padded values are elements of the buffer.

use crate::avx2;
use crate::avx512_masked::{masked_fma_c, x86_lanes_ok};
use crate::c_emit::Emitter;
use crate::error::CodegenError;
use tir::{Expr, Stmt};

/// Emits the loop `for (v, min, extent) vectorized { body }` with whole-vector
/// intrinsics when it has the shape above, `min` is 0, `extent` is 8 or a multiple of
/// 16, both buffers are `f32` and both indices have coefficient 1 in `v`; `None`
/// otherwise (the caller emits the plain loop).
pub(crate) fn try_emit_whole_fma(
    em: &mut Emitter<'_>,
    v: &str,
    min: &Expr,
    extent: &Expr,
    body: &Stmt,
    plain: &mut dyn FnMut(&mut Emitter<'_>) -> Result<(), CodegenError>,
) -> Result<Option<()>, CodegenError> {
    let Some(c) = masked_fma_c(em, v, min, extent, body, x86_lanes_ok, true)? else {
        return Ok(None);
    };
    let (acc, val, acc_at, val_at, scale, w) =
        (&c.acc, &c.val, &c.acc_at, &c.val_at, &c.scale, c.width);
    let emit = |em: &mut Emitter<'_>, width: i64, ps: &str, si: &str| {
        em.line("{");
        em.indent += 1;
        let x = em.fresh("scale");
        em.line(&format!("const {si} {x} = {ps}_set1_ps({scale});"));
        for q in 0..w / width {
            let o = width * q;
            em.line(&format!(
                "{ps}_storeu_ps(&{acc}[{acc_at} + {o}], {ps}_fmadd_ps({ps}_loadu_ps(&{val}[{val_at} + {o}]), {x}, {ps}_loadu_ps(&{acc}[{acc_at} + {o}])));"
            ));
        }
        em.indent -= 1;
        em.line("}");
    };
    em.line("#if defined(__AVX512F__) && defined(__AVX512VL__)");
    if w == 8 {
        emit(em, 8, "_mm256", "__m256");
    } else {
        emit(em, 16, "_mm512", "__m512");
    }
    em.line(avx2::CONDITION);
    emit(em, 8, "_mm256", "__m256");
    em.line("#else");
    plain(em)?;
    em.line("#endif");
    Ok(Some(()))
}
