//! The AVX-512F matrix-multiply micro-kernel: 32 zmm registers hold up to [`MR`] rows × one
//! 32-column panel (two 16-lane accumulators per row).

use std::arch::x86_64::*;

use super::{Elem, ahead};
use crate::pack::{MR, PANEL};

/// `rows` (≤ MR) rows of `a` times one panel, into `out`.
///
/// # Safety
/// The CPU must have AVX-512F (and, for the f16 loads, F16C); `a` must hold `rows` rows of
/// `lda` readable values; `b` must point at `k` panel rows of [`PANEL`] readable values.
pub unsafe fn tile<E: Elem>(
    a: *const f32,
    lda: usize,
    rows: usize,
    b: *const E::T,
    k: usize,
    out: &mut [[f32; PANEL]; MR],
) {
    macro_rules! by_rows {
        ($($n:literal)*) => {
            match rows {
                // SAFETY: the caller's contract, with `R = rows ≤ MR` rows of `out`.
                $($n => unsafe { tile512::<E, $n>(a, lda, b, k, out) },)*
                _ => panic!("at most MR rows per tile"),
            }
        };
    }
    by_rows!(1 2 3 4 5 6 7 8 9 10 11 12);
}

/// `R` rows of `a` times one panel, into `out`'s first `R` rows.
///
/// # Safety
/// As [`tile`], with `rows = R`.
#[target_feature(enable = "avx512f")]
unsafe fn tile512<E: Elem, const R: usize>(
    a: *const f32,
    lda: usize,
    b: *const E::T,
    k: usize,
    out: &mut [[f32; PANEL]; MR],
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    // One or two rows stream the weights at memory speed: their distance is tuned apart.
    let ahead = if R <= 2 {
        ahead(std::mem::size_of::<E::T>())
    } else {
        super::AHEAD
    };
    for kk in 0..k {
        // SAFETY: panel row `kk < k` of the `k` rows at `b`.
        let p = unsafe { b.add(kk * PANEL) };
        // One prefetch per cache line: a row of the panel is 128 bytes in f32 (a prefetch is
        // a hint: it never faults, whatever the address).
        _mm_prefetch::<_MM_HINT_T1>(p.cast::<i8>().wrapping_add(ahead));
        if std::mem::size_of::<E::T>() == 4 {
            _mm_prefetch::<_MM_HINT_T1>(p.cast::<i8>().wrapping_add(ahead + 64));
        }
        // SAFETY: a panel row holds PANEL = 32 readable values: two loads of sixteen.
        let (w0, w1) = unsafe { (E::load16(p), E::load16(p.add(16))) };
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: `r < R` rows and `kk < k` values of `a` the caller vouches for.
            let x = _mm512_set1_ps(unsafe { *a.add(r * lda + kk) });
            acc[0] = _mm512_fmadd_ps(x, w0, acc[0]);
            acc[1] = _mm512_fmadd_ps(x, w1, acc[1]);
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: row `r < R ≤ MR` of `out` holds PANEL = 32 values: two stores of sixteen.
        unsafe {
            _mm512_storeu_ps(out[r].as_mut_ptr(), acc[0]);
            _mm512_storeu_ps(out[r].as_mut_ptr().add(16), acc[1]);
        }
    }
}
