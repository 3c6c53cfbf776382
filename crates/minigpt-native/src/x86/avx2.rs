//! The AVX2 + FMA matrix-multiply micro-kernels (sixteen 8-lane ymm registers), and the
//! packing of the left-hand side they read when a batch has three or more rows.

use std::arch::x86_64::*;

use super::{AHEAD, Elem};
use crate::pack::{MR, PANEL};

/// Panel rows per k-block when several passes share a panel: 128 rows of 32 f32 columns =
/// 16 KiB, half of L1.
const KB: usize = 128;

/// Packs `a` (`m` rows of `k`) for [`tile`]'s `packed` mode: groups of six rows (the last
/// one shorter), each group `[k][rows]` at the offset of its first row (`row · k`). A pass
/// then broadcasts its rows' values for one k step from one pointer at constant offsets,
/// instead of computing six row addresses per step (the frontend, not the FMA units, limited
/// the six-row pass).
pub fn pack_rows(a: &[f32], k: usize, out: &mut Vec<f32>) {
    let m = a.len() / k;
    out.resize(m * k, 0.0);
    // One copy loop per group size: a loop over a run-time number of rows was measurably
    // slower, on the calling thread while the others waited (PERFORMANCE.md).
    fn rows<const R: usize>(src: &[f32], k: usize, dst: &mut [f32]) {
        let src: [&[f32]; R] = std::array::from_fn(|r| &src[r * k..(r + 1) * k]);
        for (kk, dst) in dst.chunks_exact_mut(R).enumerate() {
            for (d, src) in dst.iter_mut().zip(&src) {
                *d = src[kk];
            }
        }
    }
    let group = |(src, dst): (&[f32], &mut [f32])| match src.len() / k {
        6 => rows::<6>(src, k, dst),
        5 => rows::<5>(src, k, dst),
        4 => rows::<4>(src, k, dst),
        3 => rows::<3>(src, k, dst),
        2 => rows::<2>(src, k, dst),
        _ => rows::<1>(src, k, dst),
    };
    // A prefill's activations are megabytes: every thread copies.
    let mut pieces: Vec<_> = a.chunks(6 * k).zip(out.chunks_mut(6 * k)).collect();
    if m * k >= 1 << 18 {
        crate::team::team().for_each_mut(&mut pieces, |p| group((p.0, &mut *p.1)));
    } else {
        pieces.into_iter().for_each(group);
    }
}

/// `rows` (≤ MR) rows of `a` times one panel, into `out`; `packed`: `a` is laid out by
/// [`pack_rows`].
///
/// The tiling of one panel over sixteen ymm registers: one or two rows take the whole
/// 32-column panel at once (4 or 8 accumulators, the weight stream read once: batch-1 decode
/// is memory-bound). More rows go in passes of six rows over one 16-column half of the panel
/// (6 × 2 accumulators + 2 weight vectors + a broadcast = 15 registers; three rows over the
/// whole panel need 17, and LLVM then spilled two accumulators to the stack on every k step).
/// The panel goes in blocks of `KB` of its k rows (16 KiB of f32), so every pass after the
/// first reads the block from L1; each pass resumes its accumulators from `out`, so every
/// output is still one FMA chain over k in order (the same bits as a single pass, whatever the
/// batch). Measurements behind these choices: PERFORMANCE.md, "AVX2 tiles".
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C; `a` must hold `rows` rows of `lda` readable values
/// (packed: `rows · k` values per group, see [`pack_rows`]); `b` must point at `k` panel rows
/// of [`PANEL`] readable values.
pub unsafe fn tile<E: Elem>(
    a: *const f32,
    lda: usize,
    rows: usize,
    packed: bool,
    b: *const E::T,
    k: usize,
    out: &mut [[f32; PANEL]; MR],
) {
    // SAFETY: the caller's contract is `avx2_tile`'s.
    unsafe {
        if packed {
            avx2_tile::<E, true>(a, lda, rows, b, k, out);
        } else {
            avx2_tile::<E, false>(a, lda, rows, b, k, out);
        }
    }
}

/// [`tile`] for one layout of `a`.
///
/// # Safety
/// As [`tile`].
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn avx2_tile<E: Elem, const PACKED: bool>(
    a: *const f32,
    lda: usize,
    rows: usize,
    b: *const E::T,
    k: usize,
    out: &mut [[f32; PANEL]; MR],
) {
    let row_bytes = PANEL * std::mem::size_of::<E::T>();
    let o = out.as_mut_ptr().cast::<f32>();
    if rows <= 2 {
        // One pass: prefetch `AHEAD` bytes down the stream, two lines per f32 row.
        let pf = b.cast::<i8>().wrapping_add(AHEAD);
        // SAFETY: `a`, `b` as the caller vouches; `o` is `out`, MR rows of PANEL values.
        unsafe {
            if rows == 1 {
                tile256::<E, 1, 4, PACKED>(a, lda, b, k, o, false, pf, row_bytes);
            } else {
                tile256::<E, 2, 4, PACKED>(a, lda, b, k, o, false, pf, row_bytes);
            }
        }
        return;
    }
    // Passes: six rows over each half while six are left (12 accumulators each), then the
    // rest: one or two rows over the whole panel, three to five over each half. Eight rows:
    // 6 + 6 + 2 × 4 accumulators (as 4 + 4 + 4 + 4, every pass had only the eight
    // accumulators that just cover the FMA latency).
    let mut plan = [(0usize, 0usize, 0usize); 6]; // (first row, rows, half or 2 = all)
    let mut calls = 0;
    let mut push = |row, n, half| {
        plan[calls] = (row, n, half);
        calls += 1;
    };
    for g in 0..rows / 6 {
        push(6 * g, 6, 0);
        push(6 * g, 6, 1);
    }
    let (row, rest) = (rows / 6 * 6, rows % 6);
    match rest {
        0 => {}
        1 | 2 => push(row, rest, 2),
        _ => {
            push(row, rest, 0);
            push(row, rest, 1);
        }
    }
    let plan = &plan[..calls];
    let mut k0 = 0;
    while k0 < k {
        let kn = KB.min(k - k0);
        // SAFETY: `k0 < k`: panel row `k0` is among the `k` rows at `b`.
        let b = unsafe { b.add(k0 * PANEL) };
        // Every call prefetches its share of the next block, so the stream keeps flowing
        // while the later calls compute from L1.
        let next = b.cast::<i8>().wrapping_add(kn * row_bytes);
        let (share, stride) = (kn * row_bytes / calls, row_bytes / calls);
        let resume = k0 > 0;
        for (call, &(row, n, half)) in plan.iter().enumerate() {
            // A packed group of `n` rows holds `n` values per k step.
            // SAFETY: `row < rows` and `k0 < k`: inside the rows the caller vouches for.
            let a = unsafe { a.add(row * lda + if PACKED { k0 * n } else { k0 }) };
            let col = 16 * (half & 1);
            // SAFETY: `col` is 0 or 16, inside a panel row; `row < rows ≤ MR` rows of `out`.
            let (b, o) = unsafe { (b.add(col), o.add(row * PANEL + col)) };
            let pf = next.wrapping_add(call * share);
            macro_rules! pass {
                ($r:literal, $c:literal) => {
                    // SAFETY: the pass reads rows `row..row + $r` of `a` (`kn` k steps of
                    // the vouched-for `k`), `kn` panel rows of `8·$c` columns from `col`
                    // (16 or 32 columns fit the panel), and writes rows `row..row + $r` of
                    // `out` (`row + $r ≤ rows ≤ MR`); prefetches never fault.
                    unsafe { tile256::<E, $r, $c, PACKED>(a, lda, b, kn, o, resume, pf, stride) }
                };
            }
            match (n, half) {
                (1, 2) => pass!(1, 4),
                (_, 2) => pass!(2, 4),
                (3, _) => pass!(3, 2),
                (4, _) => pass!(4, 2),
                (5, _) => pass!(5, 2),
                _ => pass!(6, 2),
            }
        }
        k0 += kn;
    }
}

/// `R` rows of `a` times `8·C` columns of a panel (`b` at the first of them; panel rows
/// `PANEL` apart), into `out` (rows `PANEL` apart), starting from `out`'s values when
/// `resume`; prefetches `stride` bytes per k row from `pf`. `a` holds the rows `lda` apart,
/// or `PACKED`: `[k][R]`.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C; `a`: `R` rows of `lda` values (or `k · R` packed
/// values), `k` of them read; `b`: `k` panel rows of `8·C` readable values; `out`: `R` rows
/// of `8·C` writable values.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile256<E: Elem, const R: usize, const C: usize, const PACKED: bool>(
    a: *const f32,
    lda: usize,
    b: *const E::T,
    k: usize,
    out: *mut f32,
    resume: bool,
    pf: *const i8,
    stride: usize,
) {
    let mut acc = [[_mm256_setzero_ps(); C]; R];
    if resume {
        for (r, acc) in acc.iter_mut().enumerate() {
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `r < R`, `8j + 8 ≤ 8·C`: inside `out`'s `R` rows of `8·C` values.
                *acc = unsafe { _mm256_loadu_ps(out.add(r * PANEL + 8 * j)) };
            }
        }
    }
    let (mut p, mut f) = (b, pf);
    for kk in 0..k {
        // `stride` bytes of the stream ahead per k row, one prefetch per cache line (a
        // prefetch is a hint: it never faults, whatever the address).
        _mm_prefetch::<_MM_HINT_T1>(f);
        if stride > 64 {
            _mm_prefetch::<_MM_HINT_T1>(f.wrapping_add(64));
        }
        let mut w = [_mm256_setzero_ps(); C];
        for (j, w) in w.iter_mut().enumerate() {
            // SAFETY: `p` is panel row `kk < k`, which has `8·C` readable values from `b`.
            *w = unsafe { E::load8(p.add(8 * j)) };
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let at = if PACKED { kk * R + r } else { r * lda + kk };
            // SAFETY: `r < R` and `kk < k`: one of the values of `a` the caller vouches for.
            let x = _mm256_broadcast_ss(unsafe { &*a.add(at) });
            for (acc, w) in acc.iter_mut().zip(&w) {
                *acc = _mm256_fmadd_ps(x, *w, *acc);
            }
        }
        // Wrapping: after the last row `p` may point past the buffer (in a second-half pass,
        // 16 values past it), which `add` may not; it is never read there.
        p = p.wrapping_add(PANEL);
        f = f.wrapping_add(stride);
    }
    for (r, acc) in acc.iter().enumerate() {
        for (j, acc) in acc.iter().enumerate() {
            // SAFETY: `r < R`, `8j + 8 ≤ 8·C`: inside `out`'s `R` rows of `8·C` values.
            unsafe { _mm256_storeu_ps(out.add(r * PANEL + 8 * j), *acc) };
        }
    }
}
