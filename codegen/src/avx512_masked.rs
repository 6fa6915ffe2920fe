//! AVX-512 code for the masked multiply-adds of BCR rows on the host.
//!
//! [`schedule::primitive::bcr::vectorize_rows`] (masked) turns an entry's kept rows
//! into lanes padded to a vector width `W`, with a loop
//!
//! ```text
//! vectorized for (i, 0, W) {
//!   acc[a + i] = acc[a + i] + select(i < n, VAL[b + i], 0.0) * x;
//! }
//! ```
//!
//! where `n` (the entry's kept rows) and `x` (its input) do not depend on `i` (with
//! rows over several vectors the condition is `r + i < n`, `r` the vector's first
//! row). The plain loop reads `VAL` only in the first `n` lanes, so a compiler may not load the
//! whole vector (lanes past `n` can lie past the end of the values), and GCC builds it
//! from `n` scalar loads and inserts: for a 5x5 entry, 25 loads and 20 shuffles where 5
//! masked loads do. With AVX-512 each 16 lanes (8 when `W` is 8) are one zero-masked
//! load (`vmovups {k}{z}`, which reads nothing past the mask), a broadcast of `x` and a
//! fused multiply-add: FC 2048 at 90% with 16x16 blocks 59.7 -> 53.3 us (a tuned
//! trace, old and new code alternating, medians of five runs). The C is emitted under `#if defined(__AVX512F__)` with the
//! plain loop in the `#else` branch; any other shape returns `None`.

use crate::avx2;
use crate::c_emit::{buf, Emitter};
use crate::error::CodegenError;
use crate::neon::{flat_coeff, lane_coeff};
use tir::visit::{expr_loads_buffer, expr_uses_var, substitute_expr};
use tir::{BinOp, DType, Expr, Stmt};

/// The parts of a (masked) multiply-add loop's body.
struct MaskedFma<'s> {
    acc: &'s str,
    acc_index: &'s [Expr],
    val: &'s str,
    val_index: &'s [Expr],
    /// The kept lanes (masked loads), or `None` for whole vectors (padded rows).
    kept: Option<Expr>,
    scale: &'s Expr,
}

/// `select(r + v < n, VAL[..], 0.0)` with `r` and `n` free of `v` (`r` is the first
/// row of a vector when the rows span several): the buffer, its indices and the
/// number of kept lanes, `n - r`.
fn match_masked_load<'s>(v: &str, e: &'s Expr) -> Option<(&'s str, &'s [Expr], Expr)> {
    let Expr::Select(cond, picked, zero) = e else {
        return None;
    };
    let (Expr::Binary(BinOp::Lt, lane, n), Expr::Float(z)) = (&**cond, &**zero) else {
        return None;
    };
    if lane_coeff(lane, v) != Some(1) || *z != 0.0 || expr_uses_var(n, v) {
        return None;
    }
    let Expr::Load { buffer, indices } = &**picked else {
        return None;
    };
    let kept = match substitute_expr(lane, v, &Expr::Int(0)) {
        Expr::Int(0) => (**n).clone(),
        first => Expr::Binary(BinOp::Sub, n.clone(), Box::new(first)),
    };
    Some((buffer, indices, kept))
}

/// A load of `VAL[..]` whose index uses `v` (a whole vector of padded rows): its
/// buffer and indices.
fn match_whole_load<'s>(v: &str, e: &'s Expr) -> Option<(&'s str, &'s [Expr], Option<Expr>)> {
    match e {
        Expr::Load { buffer, indices } if indices.iter().any(|i| expr_uses_var(i, v)) => {
            Some((buffer, indices, None))
        }
        _ => None,
    }
}

/// The masked multiply-add `acc[a + i] = acc[a + i] + select(i < n, VAL[b + i], 0.0) *
/// x`, or with `whole` the unmasked `acc[a + i] = acc[a + i] + VAL[b + i] * x` of
/// padded rows, with `x` free of the lane variable `v`.
fn match_masked_fma<'s>(v: &str, body: &'s Stmt, whole: bool) -> Option<MaskedFma<'s>> {
    let Stmt::Store {
        buffer: acc,
        indices: acc_index,
        value: Expr::Binary(BinOp::Add, old, term),
    } = body
    else {
        return None;
    };
    if !matches!(&**old, Expr::Load { buffer, indices } if buffer == acc && indices == acc_index) {
        return None;
    }
    let Expr::Binary(BinOp::Mul, a, b) = &**term else {
        return None;
    };
    let lane_load = |e: &'s Expr| {
        if whole {
            match_whole_load(v, e)
        } else {
            match_masked_load(v, e).map(|(b, i, n)| (b, i, Some(n)))
        }
    };
    let (masked, scale) = match (lane_load(a), lane_load(b)) {
        (Some(m), None) => (m, &**b),
        (None, Some(m)) => (m, &**a),
        _ => return None,
    };
    let (val, val_index, kept) = masked;
    // One buffer on both sides, or an input read from the accumulator, could carry
    // values from lane to lane in the plain loop; the vector form would not.
    let reads_acc = |e: &Expr| expr_loads_buffer(e, acc);
    if expr_uses_var(scale, v)
        || val == acc.as_str()
        || reads_acc(scale)
        || val_index.iter().any(reads_acc)
        || kept.as_ref().is_some_and(reads_acc)
    {
        return None;
    }
    Some(MaskedFma {
        acc,
        acc_index,
        val,
        val_index,
        kept,
        scale,
    })
}

/// The lane counts the x86 forms take: 8 (one AVX register) or a multiple of 16 (whole
/// AVX-512 registers, or pairs of AVX ones).
pub(crate) fn x86_lanes_ok(w: i64) -> bool {
    w == 8 || (w > 0 && w % 16 == 0)
}

/// Where a masked multiply-add reads and writes, as C expressions: what
/// [`masked_fma_c`] finds, what the AVX-512, AVX2 and NEON forms emit.
pub(crate) struct MaskedFmaC {
    /// The accumulator (C name).
    pub acc: String,
    /// Flat index of the accumulator's lane 0.
    pub acc_at: String,
    /// The values (C name).
    pub val: String,
    /// Flat index of the values' lane 0.
    pub val_at: String,
    /// The number of kept lanes (a C expression; the width for whole vectors).
    pub kept: String,
    /// The input every lane is multiplied by (a C expression).
    pub scale: String,
    /// Elements of the values' buffer: loads that end within it read whole vectors.
    pub val_len: usize,
    /// Lanes.
    pub width: i64,
}

/// The C pieces of the masked multiply-add loop `for (v, min, extent) vectorized {
/// body }` (with `whole`, the unmasked one of padded rows) when it has the shape above,
/// `min` is 0, `extent` a constant that `width_ok` accepts, both buffers are `f32` and
/// both indices have coefficient 1 in `v`; `None` otherwise. Shared by the AVX-512,
/// AVX2 and NEON forms and [`crate::row_fma`].
pub(crate) fn masked_fma_c(
    em: &mut Emitter<'_>,
    v: &str,
    min: &Expr,
    extent: &Expr,
    body: &Stmt,
    width_ok: impl Fn(i64) -> bool,
    whole: bool,
) -> Result<Option<MaskedFmaC>, CodegenError> {
    let (Expr::Int(0), Expr::Int(w)) = (min, extent) else {
        return Ok(None);
    };
    let Some(m) = match_masked_fma(v, body, whole) else {
        return Ok(None);
    };
    let kept = m.kept.clone().unwrap_or(Expr::Int(*w));
    if !width_ok(*w) {
        return Ok(None);
    }
    for b in [m.acc, m.val] {
        if em.shape(b)?.dtype != DType::F32 {
            return Ok(None);
        }
    }
    if flat_coeff(em, m.acc, m.acc_index, v)? != Some(1)
        || flat_coeff(em, m.val, m.val_index, v)? != Some(1)
    {
        return Ok(None);
    }
    let at_zero = |idx: &[Expr]| -> Vec<Expr> {
        idx.iter()
            .map(|e| substitute_expr(e, v, &Expr::Int(0)))
            .collect()
    };
    Ok(Some(MaskedFmaC {
        acc_at: em.flat_index(m.acc, &at_zero(m.acc_index))?,
        val_at: em.flat_index(m.val, &at_zero(m.val_index))?,
        kept: em.expr(&kept)?,
        scale: em.expr(m.scale)?,
        acc: buf(m.acc),
        val: buf(m.val),
        val_len: em.shape(m.val)?.len,
        width: *w,
    }))
}

/// Emits the loop `for (v, min, extent) vectorized { body }` with AVX-512 masked
/// loads, an AVX2 branch and the plain loop for other machines when it has the shape
/// above, `min` is 0, `extent` is 8 or a multiple of 16, both buffers are `f32` and
/// both indices have coefficient 1 in `v`; `None` otherwise.
pub(crate) fn try_emit_masked_fma(
    em: &mut Emitter<'_>,
    v: &str,
    min: &Expr,
    extent: &Expr,
    body: &Stmt,
    plain: &mut dyn FnMut(&mut Emitter<'_>) -> Result<(), CodegenError>,
) -> Result<Option<()>, CodegenError> {
    let Some(c) = masked_fma_c(em, v, min, extent, body, x86_lanes_ok, false)? else {
        return Ok(None);
    };
    let w = &c.width;
    let (acc_b, val_b, acc_at, val_at, kept, scale) =
        (&c.acc, &c.val, &c.acc_at, &c.val_at, &c.kept, &c.scale);
    let (width, ps, si, mask, ones) = if *w == 8 {
        (8i64, "_mm256", "__m256", "__mmask8", "0xffu")
    } else {
        (16, "_mm512", "__m512", "__mmask16", "0xffffu")
    };
    em.line("#if defined(__AVX512F__) && defined(__AVX512VL__)");
    em.line("{");
    em.indent += 1;
    let (n, x) = (em.fresh("kept"), em.fresh("scale"));
    em.line(&format!("const int64_t {n} = {kept};"));
    em.line(&format!("const {si} {x} = {ps}_set1_ps({scale});"));
    for q in 0..*w / width {
        let (k, o) = (em.fresh("mask"), width * q);
        // Lanes o .. o + width of the entry, the first n - o of them kept.
        em.line(&format!(
            "const {mask} {k} = ({mask})({n} - {o} >= {width} ? {ones} : ({n} - {o} <= 0 ? 0u : (1u << ({n} - {o})) - 1u));"
        ));
        em.line(&format!(
            "{ps}_storeu_ps(&{acc_b}[{acc_at} + {o}], {ps}_fmadd_ps({ps}_maskz_loadu_ps({k}, &{val_b}[{val_at} + {o}]), {x}, {ps}_loadu_ps(&{acc_b}[{acc_at} + {o}])));"
        ));
    }
    em.indent -= 1;
    em.line("}");
    em.line(avx2::CONDITION);
    avx2::emit_masked_fma(em, &c);
    em.line("#else");
    plain(em)?;
    em.line("#endif");
    Ok(Some(()))
}
