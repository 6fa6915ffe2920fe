//! AVX-512 code for the lane permutation of block-row windows on the host.
//!
//! [`schedule::primitive::bcr::window_block_rows`] adds every entry's row sums into a
//! window of a block row's outputs with a vectorized loop
//!
//! ```text
//! vectorized for (wk, 0, H) {
//!   let ws = SEL[e + wk];
//!   win[wk] = win[wk] + select(ws < L, acc[.., ws], 0.0);
//! }
//! ```
//!
//! which is a gather from a small local array: compilers emit it as a memory gather,
//! slower than the row-by-row scatter it replaces. With AVX-512 it is, per 16 rows of
//! the window, one load of the selectors, a compare (`ws < L`), one `vpermps` of the
//! entry's sums held in a register (`vpermt2ps` over two registers when `L` is 17 to
//! 32) and one masked add. Sums of up to 8 lanes are loaded as a 256-bit register and
//! cast to 512 bits, so 16 rows of the window are still one permutation (instead of
//! two 8-row halves in 256-bit registers: 3-8% on FC 2048 with 16x16 blocks). The C
//! is emitted under `#if defined(__AVX512F__)` with the plain loop in the `#else`
//! branch, so the same source still compiles (and computes the same) where AVX-512 is
//! missing. Any other shape returns `None` and is emitted
//! as usual. Selectors stored as bytes (`u8`, as windows store them) are widened by
//! the load itself (`vpmovzxbd`); `i32` selectors are loaded as they are.

use crate::avx2;
use crate::c_emit::{buf, Emitter};
use crate::error::CodegenError;
use crate::neon::lane_coeff;
use tir::visit::substitute_expr;
use tir::{BinOp, DType, Expr, Stmt};

/// The parts of a window loop's body.
struct WindowAdd<'s> {
    sel: &'s str,
    sel_index: &'s [Expr],
    win: &'s str,
    acc: &'s str,
    acc_index: &'s [Expr],
    ws: &'s str,
    lanes: i64,
}

fn match_window_add<'s>(v: &str, body: &'s Stmt) -> Option<WindowAdd<'s>> {
    let Stmt::Let {
        var: ws,
        value: Expr::Load {
            buffer: sel,
            indices: sel_index,
        },
        body,
    } = body
    else {
        return None;
    };
    let Stmt::Store {
        buffer: win,
        indices,
        value: Expr::Binary(BinOp::Add, old, term),
    } = &**body
    else {
        return None;
    };
    let at_v = [Expr::var(v)];
    if indices.as_slice() != at_v
        || !matches!(&**old, Expr::Load { buffer, indices } if buffer == win && indices.as_slice() == at_v)
    {
        return None;
    }
    let Expr::Select(cond, picked, zero) = &**term else {
        return None;
    };
    let (Expr::Binary(BinOp::Lt, a, l), Expr::Float(z)) = (&**cond, &**zero) else {
        return None;
    };
    let (Expr::Var(a), Expr::Int(lanes), true) = (&**a, &**l, *z == 0.0) else {
        return None;
    };
    let Expr::Load {
        buffer: acc,
        indices: acc_index,
    } = &**picked
    else {
        return None;
    };
    if a != ws || acc_index.last() != Some(&Expr::var(ws)) {
        return None;
    }
    Some(WindowAdd {
        sel,
        sel_index,
        win,
        acc,
        acc_index,
        ws,
        lanes: *lanes,
    })
}

/// Emits the window loop `for (v, min, extent) vectorized { body }` with AVX-512
/// intrinsics (and the plain loop for other machines) when it has the shape above,
/// `min` is 0, `extent` a multiple of 16 and `L` at most 32; `None` otherwise.
pub(crate) fn try_emit_window_add(
    em: &mut Emitter<'_>,
    v: &str,
    min: &Expr,
    extent: &Expr,
    body: &Stmt,
    plain: &mut dyn FnMut(&mut Emitter<'_>) -> Result<(), CodegenError>,
) -> Result<Option<()>, CodegenError> {
    let (Expr::Int(0), Expr::Int(h)) = (min, extent) else {
        return Ok(None);
    };
    let Some(w) = match_window_add(v, body) else {
        return Ok(None);
    };
    if *h % 16 != 0 || !(1..=32).contains(&w.lanes) {
        return Ok(None);
    }
    // Selectors: contiguous in the loop variable; the entry's sums: the last index is
    // the lane, the others free of it and of the loop.
    let sel_strides = em.shape(w.sel)?.strides.clone();
    let sel_dtype = em.shape(w.sel)?.dtype;
    if sel_dtype == DType::F32 {
        return Ok(None);
    }
    let mut sel_coeff = 0i64;
    for (i, s) in w.sel_index.iter().zip(&sel_strides) {
        match lane_coeff(i, v) {
            Some(c) => sel_coeff += c * *s as i64,
            None => return Ok(None),
        }
    }
    let acc_rest = &w.acc_index[..w.acc_index.len() - 1];
    if sel_coeff != 1
        || em.shape(w.acc)?.strides.last() != Some(&1)
        || acc_rest
            .iter()
            .any(|e| tir::visit::expr_uses_var(e, v) || tir::visit::expr_uses_var(e, w.ws))
    {
        return Ok(None);
    }
    let zero_v: Vec<Expr> = w
        .sel_index
        .iter()
        .map(|e| substitute_expr(e, v, &Expr::Int(0)))
        .collect();
    let sel_at = em.flat_index(w.sel, &zero_v)?;
    let mut acc0: Vec<Expr> = acc_rest.to_vec();
    acc0.push(Expr::Int(0));
    let acc_at = em.flat_index(w.acc, &acc0)?;
    let (sel_b, win_b, acc_b) = (buf(w.sel), buf(w.win), buf(w.acc));
    let lanes = w.lanes;
    // The window goes 16 rows at a time in 512-bit registers (window heights are
    // multiples of 16). Up to 8 lanes the sums are loaded as one 256-bit register (as
    // the vectorized loop that computed them wrote it: a wider load would stall on
    // store forwarding) and cast to 512 bits. The cast leaves the upper lanes
    // undefined, which is safe: a lane of the window is added only where its selector
    // is below `L` <= 8, and the permutation reads no other lane into it. (Widening
    // with zeros costs a register move per entry, 3-5% on FC 2048 with 16x16 blocks.)
    let (width, ps, si, mask) = (16i64, "_mm512", "__m512", "__mmask16");
    let narrow = lanes <= 8;
    let load = |at: String, n: i64| -> String {
        let whole = if narrow { 8 } else { width };
        let sums = if n >= whole {
            format!("_mm{}_loadu_ps(&{acc_b}[{at}])", whole * 32)
        } else {
            format!(
                "_mm{}_maskz_loadu_ps((__mmask{whole}){:#x}u, &{acc_b}[{at}])",
                whole * 32,
                (1u32 << n) - 1
            )
        };
        if narrow {
            format!("_mm512_castps256_ps512({sums})")
        } else {
            sums
        }
    };
    em.line("#if defined(__AVX512F__) && defined(__AVX512VL__)");
    em.line("{");
    em.indent += 1;
    let t0 = em.fresh("sums");
    em.line(&format!(
        "const {si} {t0} = {};",
        load(acc_at.clone(), lanes)
    ));
    let t1 = (lanes > width).then(|| em.fresh("sums"));
    if let Some(t1) = &t1 {
        em.line(&format!(
            "const {si} {t1} = {};",
            load(format!("{acc_at} + {width}"), lanes - width)
        ));
    }
    let lim = em.fresh("lanes");
    em.line(&format!("const {si}i {lim} = {ps}_set1_epi32({lanes});"));
    for q in 0..*h / width {
        let (s, k, p, o) = (
            em.fresh("sel"),
            em.fresh("keep"),
            em.fresh("perm"),
            width * q,
        );
        let sel_load = match sel_dtype {
            // One byte per selector, widened to 32-bit lanes by the load (vpmovzxbd).
            DType::U8 => format!(
                "_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)&{sel_b}[{sel_at} + {o}]))"
            ),
            _ => format!(
                "{ps}_loadu_si{}((const void*)&{sel_b}[{sel_at} + {o}])",
                width * 32
            ),
        };
        em.line(&format!("const {si}i {s} = {sel_load};"));
        em.line(&format!(
            "const {mask} {k} = {ps}_cmplt_epi32_mask({s}, {lim});"
        ));
        let perm = match &t1 {
            None => format!("{ps}_permutexvar_ps({s}, {t0})"),
            Some(t1) => format!("{ps}_permutex2var_ps({t0}, {s}, {t1})"),
        };
        em.line(&format!("const {si} {p} = {perm};"));
        em.line(&format!(
            "{ps}_storeu_ps(&{win_b}[{o}], {ps}_mask_add_ps({ps}_loadu_ps(&{win_b}[{o}]), {k}, {ps}_loadu_ps(&{win_b}[{o}]), {p}));"
        ));
    }
    em.indent -= 1;
    em.line("}");
    em.line(avx2::CONDITION);
    avx2::emit_window_add(
        em,
        &avx2::WindowAddC {
            sel: &sel_b,
            sel_at: &sel_at,
            sel_dtype,
            win: &win_b,
            sums: &acc_b,
            sums_at: &acc_at,
            lanes,
            height: *h,
        },
    );
    em.line("#else");
    plain(em)?;
    em.line("#endif");
    Ok(Some(()))
}
