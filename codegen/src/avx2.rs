//! AVX2 code for the block-row window's lane permutation and the rows' masked
//! multiply-adds, on hosts without AVX-512.
//!
//! [`crate::avx512`] and [`crate::avx512_masked`] match the two loops of a windowed BCR
//! kernel and emit them with AVX-512 intrinsics under `#if defined(__AVX512F__)`.
//! Without AVX-512 (AMD Zen 1-3, most Intel client cores) the `#else` branch used to
//! be the plain loop: a gather from a local array for the window, and scalar loads and
//! inserts for the masked rows (on an AMD EPYC Zen 1 host, FC 2048 at 90% with 16x16
//! blocks: windowed 1220 us, masked rows 270 us; with this branch 205 and 157 us; Zen
//! 1 splits 256-bit permutations in two, so there the unwindowed forms still win).
//! This module emits the same two loops in 256-bit registers, as an
//! `#elif defined(__AVX2__) && defined(__FMA__)` branch between the two:
//!
//! - window: per 8 rows, the selectors (bytes widened by `vpmovzxbd`, or `i32`), one
//!   `vpermps` per 8 lanes of the entry's sums (up to 4 registers for 32 lanes), the
//!   right register picked by bits 3 and 4 of the selector (`vblendvps` on the bit
//!   shifted into the sign), the rows whose selector is at or above `L` zeroed by a
//!   compare mask, and one add into the window;
//! - masked multiply-add: per 8 lanes, a whole load and-ed with the mask (from
//!   comparing the lane numbers with the kept count) where the 8 lanes lie within the
//!   values' buffer, else `vmaskmovps` (which, like AVX-512's zero-masked load, reads
//!   nothing past the mask: the last entries), a broadcast and a fused multiply-add.
//!
//! The callers have checked the shapes (window heights multiples of 16, `L <= 32`,
//! rows in 8 or a multiple of 16 lanes); the plain loop stays in the `#else` branch.

use crate::avx512_masked::MaskedFmaC;
use crate::c_emit::Emitter;
use tir::DType;

/// The C condition under which this module's branch is compiled.
pub(crate) const CONDITION: &str = "#elif defined(__AVX2__) && defined(__FMA__)";

/// Where a window add reads and writes, as C expressions (see [`crate::avx512`]).
pub(crate) struct WindowAddC<'a> {
    /// The selectors' buffer (C name), their flat index for row 0 and their type.
    pub sel: &'a str,
    /// Flat index of row 0's selector.
    pub sel_at: &'a str,
    /// `U8` or `I32`.
    pub sel_dtype: DType,
    /// The window's buffer (C name); rows `0..height`.
    pub win: &'a str,
    /// The entry's sums (C name) and the flat index of lane 0.
    pub sums: &'a str,
    /// Flat index of the sums' lane 0.
    pub sums_at: &'a str,
    /// Lanes of the sums, 1 to 32.
    pub lanes: i64,
    /// Window rows, a multiple of 8.
    pub height: i64,
}

/// A 256-bit load of `n` (1 to 8) floats at `&buf[at]`: whole, or masked so nothing
/// past them is read.
fn load_floats(buf: &str, at: &str, n: i64) -> String {
    if n >= 8 {
        format!("_mm256_loadu_ps(&{buf}[{at}])")
    } else {
        let mask: Vec<&str> = (0..8).map(|i| if i < n { "-1" } else { "0" }).collect();
        format!(
            "_mm256_maskload_ps(&{buf}[{at}], _mm256_setr_epi32({}))",
            mask.join(", ")
        )
    }
}

/// Emits the AVX2 window add (inside braces; the caller writes [`CONDITION`] first).
pub(crate) fn emit_window_add(em: &mut Emitter<'_>, w: &WindowAddC<'_>) {
    em.line("{");
    em.indent += 1;
    let regs = (w.lanes + 7) / 8;
    let sums: Vec<String> = (0..regs)
        .map(|r| {
            let t = em.fresh("sums");
            let at = if r == 0 {
                w.sums_at.to_string()
            } else {
                format!("{} + {}", w.sums_at, 8 * r)
            };
            em.line(&format!(
                "const __m256 {t} = {};",
                load_floats(w.sums, &at, (w.lanes - 8 * r).min(8))
            ));
            t
        })
        .collect();
    let lim = em.fresh("lanes");
    em.line(&format!(
        "const __m256i {lim} = _mm256_set1_epi32({});",
        w.lanes
    ));
    for q in 0..w.height / 8 {
        let o = 8 * q;
        let s = em.fresh("sel");
        let sel_load = match w.sel_dtype {
            DType::U8 => format!(
                "_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)&{}[{} + {o}]))",
                w.sel, w.sel_at
            ),
            _ => format!(
                "_mm256_loadu_si256((const __m256i*)&{}[{} + {o}])",
                w.sel, w.sel_at
            ),
        };
        em.line(&format!("const __m256i {s} = {sel_load};"));
        // One permutation per register of sums (each reads the selector's low 3 bits).
        let perms: Vec<String> = sums
            .iter()
            .map(|t| {
                let p = em.fresh("perm");
                em.line(&format!(
                    "const __m256 {p} = _mm256_permutevar8x32_ps({t}, {s});"
                ));
                p
            })
            .collect();
        // Pick the register by bit 3, then bit 4, of the selector (shifted into the
        // sign bit, which `vblendvps` reads).
        let mut level = perms;
        let mut bit = 3;
        while level.len() > 1 {
            let b = em.fresh("bit");
            em.line(&format!(
                "const __m256 {b} = _mm256_castsi256_ps(_mm256_slli_epi32({s}, {}));",
                31 - bit
            ));
            let next: Vec<String> = level
                .chunks(2)
                .map(|pair| {
                    if let [lo, hi] = pair {
                        let p = em.fresh("pick");
                        em.line(&format!(
                            "const __m256 {p} = _mm256_blendv_ps({lo}, {hi}, {b});"
                        ));
                        p
                    } else {
                        // An odd last register: selectors that would pick its missing
                        // partner are at or above `L` and zeroed below.
                        pair[0].clone()
                    }
                })
                .collect();
            level = next;
            bit += 1;
        }
        let keep = em.fresh("keep");
        em.line(&format!(
            "const __m256 {keep} = _mm256_castsi256_ps(_mm256_cmpgt_epi32({lim}, {s}));"
        ));
        em.line(&format!(
            "_mm256_storeu_ps(&{win}[{o}], _mm256_add_ps(_mm256_loadu_ps(&{win}[{o}]), _mm256_and_ps({}, {keep})));",
            level[0],
            win = w.win
        ));
    }
    em.indent -= 1;
    em.line("}");
}

/// Emits the AVX2 masked multiply-add (inside braces; the caller writes
/// [`CONDITION`] first).
pub(crate) fn emit_masked_fma(em: &mut Emitter<'_>, m: &MaskedFmaC) {
    em.line("{");
    em.indent += 1;
    let (n, x, iota) = (em.fresh("kept"), em.fresh("scale"), em.fresh("lane"));
    em.line(&format!("const int64_t {n} = {};", m.kept));
    em.line(&format!("const __m256 {x} = _mm256_set1_ps({});", m.scale));
    em.line(&format!(
        "const __m256i {iota} = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);"
    ));
    for q in 0..m.width / 8 {
        let (k, o) = (em.fresh("mask"), 8 * q);
        // Lanes o .. o + 8 of the entry, the first n - o of them kept (the count is
        // clamped so the 32-bit compare sees it whole).
        em.line(&format!(
            "const __m256i {k} = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)({n} - {o} > 8 ? 8 : ({n} - {o} < 0 ? 0 : {n} - {o}))), {iota});"
        ));
        // A whole load and the mask where the 8 lanes lie within the buffer, the
        // masked load only at its end: `vmaskmovps` is slow on AMD Zen (GRU 256 at 90%
        // with 16x16 blocks, windowed: 54 us with masked loads only, 30 us so).
        let v = em.fresh("vals");
        em.line(&format!(
            "const __m256 {v} = ({val_at} + {o} + 8 <= {len}LL) ? _mm256_and_ps(_mm256_loadu_ps(&{val}[{val_at} + {o}]), _mm256_castsi256_ps({k})) : _mm256_maskload_ps(&{val}[{val_at} + {o}], {k});",
            val = m.val,
            val_at = m.val_at,
            len = m.val_len
        ));
        em.line(&format!(
            "_mm256_storeu_ps(&{acc}[{acc_at} + {o}], _mm256_fmadd_ps({v}, {x}, _mm256_loadu_ps(&{acc}[{acc_at} + {o}])));",
            acc = m.acc,
            acc_at = m.acc_at,
        ));
    }
    em.indent -= 1;
    em.line("}");
}
