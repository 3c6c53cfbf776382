//! Attention's AVX-512F kernels for a block of queries over an f32 cache (a prefill), head
//! size 64: scores of query pairs against key blocks, then the softmax-weighted values of
//! four queries at a time, sixteen lanes per instruction.
//!
//! Every score and every output is the same chain of fused multiply-adds, in the same order,
//! as in `crate::attention`'s eight-lane and portable builds (a score over the dimensions
//! in order from zero, then one multiply by the scale; an output over the positions in order
//! from zero), so all three give the same bits. The eight-lane build keeps two FMA pipes
//! busy with eight lanes each; these fill sixteen lanes and load each key block and value row
//! once per eight (scores) or four (values) queries. PERFORMANCE.md, "Prefill attention".

use std::arch::x86_64::*;

use crate::key_layout::KEY_BLOCK;

/// Head size of these kernels.
pub const D: usize = 64;

/// Query pairs per pass over the keys (eight queries).
const PAIRS: usize = 4;
/// Key blocks per step of a pass (four blocks of eight positions).
const BLOCKS: usize = 4;
/// Queries per pass over the values.
const QUERIES: usize = 4;

/// Scores of `rows` queries (query `r` at `q + r·stride`, [`D`] values) against key blocks
/// `0..blocks`, times `scale`, into `scores` (query `r`'s at `scores + r·width`). `pairs` is
/// scratch.
///
/// # Safety
/// The CPU must have AVX-512F; `q` must hold the `rows` queries; `keys` must hold `blocks`
/// key blocks of [`D`] × [`KEY_BLOCK`] values (`[block][dim][KEY_BLOCK]`); `scores` must have
/// room for `rows` rows of `width ≥ blocks · KEY_BLOCK` values.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn scores(
    q: *const f32,
    stride: usize,
    rows: usize,
    keys: *const f32,
    blocks: usize,
    scale: f32,
    scores: *mut f32,
    width: usize,
    pairs: &mut Vec<f32>,
) {
    // Query pairs side by side: for each pair and dimension, sixteen lanes holding the first
    // query's value eight times, then the second's. A last group repeats its last query.
    pairs.resize(PAIRS * D * 16, 0.0);
    for r0 in (0..rows).step_by(2 * PAIRS) {
        let pick: [usize; 2 * PAIRS] = std::array::from_fn(|i| r0 + i.min(rows - 1 - r0));
        for (p, pair) in pairs.chunks_exact_mut(D * 16).enumerate() {
            let (a, b) = (pick[2 * p], pick[2 * p + 1]);
            for (dim, lanes) in pair.chunks_exact_mut(16).enumerate() {
                // SAFETY: queries `a` and `b` are below `rows`, whose `D` values `q` holds;
                // `lanes` holds sixteen values. (Written with intrinsics: LLVM turned the
                // scalar loop into gathers, a quarter of the kernel's time at 512 positions.)
                unsafe {
                    let (x, y) = (*q.add(a * stride + dim), *q.add(b * stride + dim));
                    let both = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(x), _mm512_set1_ps(y));
                    _mm512_storeu_ps(lanes.as_mut_ptr(), both);
                }
            }
        }
        let qq = pairs.as_ptr();
        let mut b = 0;
        // SAFETY: blocks `b..b + B` are below `blocks`; `qq` holds PAIRS pairs; the picked
        // rows are below `rows`; the caller vouches for the rest.
        unsafe {
            while b + BLOCKS <= blocks {
                pair_scores::<BLOCKS>(qq, keys, b, pick, scale, scores, width);
                b += BLOCKS;
            }
            match blocks - b {
                3 => pair_scores::<3>(qq, keys, b, pick, scale, scores, width),
                2 => pair_scores::<2>(qq, keys, b, pick, scale, scores, width),
                1 => pair_scores::<1>(qq, keys, b, pick, scale, scores, width),
                _ => {}
            }
        }
    }
}

/// [`scores`] of the [`PAIRS`] query pairs in `qq` (rows `pick`) against key blocks
/// `b0..b0 + B`.
///
/// # Safety
/// As [`scores`], for those blocks and rows; `qq` holds `PAIRS · D · 16` values.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn pair_scores<const B: usize>(
    qq: *const f32,
    keys: *const f32,
    b0: usize,
    pick: [usize; 2 * PAIRS],
    scale: f32,
    scores: *mut f32,
    width: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); B]; PAIRS];
    for dim in 0..D {
        // SAFETY: key block `b0 + b` holds `D` rows of KEY_BLOCK = 8 values (the caller's
        // contract): eight values, the same in both halves.
        let k: [__m512; B] = std::array::from_fn(|b| unsafe {
            let at = keys.add(((b0 + b) * D + dim) * KEY_BLOCK);
            _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_loadu_pd(at.cast())))
        });
        for (p, acc) in acc.iter_mut().enumerate() {
            // SAFETY: pair `p < PAIRS`, dimension `dim < D`: sixteen of `qq`'s values.
            let x = unsafe { _mm512_loadu_ps(qq.add((p * D + dim) * 16)) };
            for (a, k) in acc.iter_mut().zip(&k) {
                *a = _mm512_fmadd_ps(x, *k, *a);
            }
        }
    }
    let s = _mm512_set1_ps(scale);
    for (p, acc) in acc.iter().enumerate() {
        for (b, a) in acc.iter().enumerate() {
            let v = _mm512_mul_ps(*a, s);
            let lo = _mm512_castps512_ps256(v);
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
            let col = (b0 + b) * KEY_BLOCK;
            // SAFETY: rows `pick` are below the caller's `rows`, and `col + 8 ≤ blocks · 8 ≤
            // width`: eight values of each row's scores.
            unsafe {
                _mm256_storeu_ps(scores.add(pick[2 * p] * width + col), lo);
                _mm256_storeu_ps(scores.add(pick[2 * p + 1] * width + col), hi);
            }
        }
    }
}

/// `out_r = Σ_j p_rj · v_j` over query `r`'s `len + r` positions, in order, for `rows`
/// queries: `p` holds query `r`'s weights at `p + r·width`, `values` position `j`'s [`D`]
/// values at `values + j·D`, and `out` receives query `r`'s at `out + r·D`.
///
/// # Safety
/// The CPU must have AVX-512F; `p` must hold `rows` rows of `width ≥ len + rows - 1` values,
/// `values` `len + rows - 1` positions, and `out` room for `rows · D` values.
#[target_feature(enable = "avx512f")]
pub unsafe fn weigh(
    p: *const f32,
    width: usize,
    values: *const f32,
    len: usize,
    rows: usize,
    out: *mut f32,
) {
    for r0 in (0..rows).step_by(QUERIES) {
        // SAFETY: queries `r0..r0 + G` are below `rows`; the rest is the caller's contract.
        unsafe {
            match (rows - r0).min(QUERIES) {
                4 => weigh_group::<4>(p, width, values, len, r0, out),
                3 => weigh_group::<3>(p, width, values, len, r0, out),
                2 => weigh_group::<2>(p, width, values, len, r0, out),
                _ => weigh_group::<1>(p, width, values, len, r0, out),
            }
        }
    }
}

/// [`weigh`] of queries `r0..r0 + G`: the positions all of them see with every value row
/// loaded once for the `G`, then each one's last few alone.
///
/// # Safety
/// As [`weigh`], with `r0 + G ≤ rows`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn weigh_group<const G: usize>(
    p: *const f32,
    width: usize,
    values: *const f32,
    len: usize,
    r0: usize,
    out: *mut f32,
) {
    let mut acc = [[_mm512_setzero_ps(); D / 16]; G];
    let common = len + r0;
    for j in 0..common {
        // SAFETY: position `j < len + rows - 1` holds `D` values.
        let v: [__m512; D / 16] =
            std::array::from_fn(|i| unsafe { _mm512_loadu_ps(values.add(j * D + i * 16)) });
        for (g, acc) in acc.iter_mut().enumerate() {
            // SAFETY: row `r0 + g < rows` of `p` holds `width > j` values.
            let x = _mm512_set1_ps(unsafe { *p.add((r0 + g) * width + j) });
            for (a, v) in acc.iter_mut().zip(&v) {
                *a = _mm512_fmadd_ps(x, *v, *a);
            }
        }
    }
    for (g, acc) in acc.iter_mut().enumerate() {
        // Query `r0 + g` sees `g` positions more than the group's first.
        for j in common..common + g {
            // SAFETY: `j < len + r0 + g ≤ len + rows - 1`: a position and a weight the caller
            // vouches for.
            let x = _mm512_set1_ps(unsafe { *p.add((r0 + g) * width + j) });
            for (i, a) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                let v = unsafe { _mm512_loadu_ps(values.add(j * D + i * 16)) };
                *a = _mm512_fmadd_ps(x, v, *a);
            }
        }
        for (i, a) in acc.iter().enumerate() {
            // SAFETY: row `r0 + g < rows` of `out` holds `D` values.
            unsafe { _mm512_storeu_ps(out.add((r0 + g) * D + i * 16), *a) };
        }
    }
}
