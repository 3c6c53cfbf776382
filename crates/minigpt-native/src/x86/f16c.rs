//! f16 ↔ f32 with F16C, eight values per instruction: [`crate::dtype::widen`] and
//! [`crate::dtype::narrow`] call in here when the CPU has it, and attention reads f16 KV
//! caches through [`f16x8`].

use std::arch::x86_64::*;

/// Widens `src` into `dst` with F16C and returns true, or returns false (touching nothing)
/// when the engine does not run SIMD code ([`super::simd`]).
///
/// # Panics
/// When the lengths differ.
pub fn widen(src: &[half::f16], dst: &mut [f32]) -> bool {
    assert_eq!(src.len(), dst.len(), "widen: lengths differ");
    if !super::simd() {
        return false;
    }
    // SAFETY: the CPU has F16C (checked by `simd`).
    unsafe { widen_f16c(src, dst) };
    true
}

/// Narrows `src` into `dst` with F16C (round to nearest even) and returns true, or returns
/// false (touching nothing) when the engine does not run SIMD code ([`super::simd`]).
///
/// # Panics
/// When the lengths differ.
pub fn narrow(src: &[f32], dst: &mut [half::f16]) -> bool {
    assert_eq!(src.len(), dst.len(), "narrow: lengths differ");
    if !super::simd() {
        return false;
    }
    // SAFETY: the CPU has F16C (checked by `simd`).
    unsafe { narrow_f16c(src, dst) };
    true
}

/// Eight f16 values widened with F16C.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C (`x86::simd()`); `p` must point at eight readable
/// values.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn f16x8(p: *const half::f16) -> [f32; 8] {
    // SAFETY: eight readable values (16 bytes) at `p` (the caller's contract).
    let h = unsafe { _mm_loadu_si128(p.cast()) };
    // SAFETY: `__m256` and `[f32; 8]` have the same size, and every bit pattern is valid
    // for both.
    unsafe { std::mem::transmute::<__m256, [f32; 8]>(_mm256_cvtph_ps(h)) }
}

/// [`widen`]'s loop.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C; `src.len() == dst.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn widen_f16c(src: &[half::f16], dst: &mut [f32]) {
    let whole = src.len() / 8 * 8;
    for (s, d) in src[..whole].chunks_exact(8).zip(dst.chunks_exact_mut(8)) {
        // SAFETY: `s` and `d` are chunks of eight values each.
        unsafe {
            let h = _mm_loadu_si128(s.as_ptr().cast());
            _mm256_storeu_ps(d.as_mut_ptr(), _mm256_cvtph_ps(h));
        }
    }
    for (d, s) in dst[whole..].iter_mut().zip(&src[whole..]) {
        *d = s.to_f32();
    }
}

/// [`narrow`]'s loop.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C; `src.len() == dst.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn narrow_f16c(src: &[f32], dst: &mut [half::f16]) {
    let whole = src.len() / 8 * 8;
    for (s, d) in src[..whole].chunks_exact(8).zip(dst.chunks_exact_mut(8)) {
        // SAFETY: `s` and `d` are chunks of eight values each.
        unsafe {
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(s.as_ptr()));
            _mm_storeu_si128(d.as_mut_ptr().cast(), h);
        }
    }
    for (d, s) in dst[whole..].iter_mut().zip(&src[whole..]) {
        *d = half::f16::from_f32(*s);
    }
}
