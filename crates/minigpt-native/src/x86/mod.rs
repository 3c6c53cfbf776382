//! x86-64 SIMD: which features the CPU has, the loads of each packed weight type as f32
//! lanes, and the matrix-multiply micro-kernels ([`avx2`], [`avx512`]) and F16C conversions
//! ([`f16c`]) built on them.
//!
//! Everything here is `unsafe` code: intrinsics behind `#[target_feature]` and raw pointers
//! into the packed panels. The safe entry points ([`crate::matmul`], [`crate::dtype::widen`],
//! …) check the CPU's features before they call in.

// Unsafe code: intrinsics behind `#[target_feature]`, raw pointers into packed panels.
#![allow(unsafe_code)]

use std::arch::x86_64::*;
use std::sync::OnceLock;

pub mod avx2;
pub mod avx512;
pub mod avx512_attention;
pub mod f16c;

/// Whether the CPU has AVX2, FMA and F16C (the AVX2 kernels need all three), detected once.
pub fn has_avx2() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    })
}

/// Whether the CPU has AVX-512F as well as [`has_avx2`]'s features, detected once.
pub fn has_avx512() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| has_avx2() && is_x86_feature_detected!("avx512f"))
}

/// Whether the engine runs its SIMD code: the CPU has AVX2, FMA and F16C, and
/// `MINIGPT_NO_SIMD` is unset (tests set it to run the portable code).
pub fn simd() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| std::env::var_os("MINIGPT_NO_SIMD").is_none() && has_avx2())
}

/// A stored weight type: loads as f32 lanes (exactly: f16 and bf16 widen without rounding).
pub trait Elem {
    /// The stored value: `f32`, or the bits of an f16 or a bf16.
    type T;
    /// Eight values at `p` as f32 lanes.
    ///
    /// # Safety
    /// `p` must point at eight readable values; the CPU must have AVX2, FMA and F16C.
    unsafe fn load8(p: *const Self::T) -> __m256;
    /// Sixteen values at `p` as f32 lanes.
    ///
    /// # Safety
    /// `p` must point at sixteen readable values; the CPU must have AVX-512F.
    unsafe fn load16(p: *const Self::T) -> __m512;
}

/// f32 weights.
pub struct F32;
/// f16 weights (their bits).
pub struct F16;
/// bf16 weights (their bits).
pub struct BF16;

impl Elem for F32 {
    type T = f32;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(p: *const f32) -> __m256 {
        // SAFETY: eight readable values at `p` (the caller's contract).
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load16(p: *const f32) -> __m512 {
        // SAFETY: sixteen readable values at `p` (the caller's contract).
        unsafe { _mm512_loadu_ps(p) }
    }
}

impl Elem for F16 {
    type T = u16;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(p: *const u16) -> __m256 {
        // SAFETY: eight readable values (16 bytes) at `p` (the caller's contract).
        let h = unsafe { _mm_loadu_si128(p.cast()) };
        _mm256_cvtph_ps(h)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load16(p: *const u16) -> __m512 {
        // SAFETY: sixteen readable values (32 bytes) at `p` (the caller's contract).
        let h = unsafe { _mm256_loadu_si256(p.cast()) };
        _mm512_cvtph_ps(h)
    }
}

impl Elem for BF16 {
    type T = u16;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(p: *const u16) -> __m256 {
        // SAFETY: eight readable values (16 bytes) at `p` (the caller's contract).
        let h = unsafe { _mm_loadu_si128(p.cast()) };
        // A bf16 is the top half of an f32: widen to 32 bits and shift into place.
        let wide = _mm256_cvtepu16_epi32(h);
        _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16))
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load16(p: *const u16) -> __m512 {
        // SAFETY: sixteen readable values (32 bytes) at `p` (the caller's contract).
        let h = unsafe { _mm256_loadu_si256(p.cast()) };
        let wide = _mm512_cvtepu16_epi32(h);
        _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16))
    }
}

/// Bytes ahead of the weight stream to prefetch, into L2 (chosen by measurement: see
/// PERFORMANCE.md, "Prefetch distance"); [`ahead`] gives the AVX-512 tiles' distance.
pub const AHEAD: usize = 4096;

/// The AVX-512 tiles' prefetch distance at one or two rows (a batch-1 decode, which streams the
/// weights at memory speed) for weights of `size`-byte elements: [`AHEAD`], except f32 weights
/// on an Intel CPU, 2048 (batch-1 f32 decode 6–7 % faster on a Sapphire Rapids machine, f16
/// 6 % slower there; 2048 was 3 % slower than 4096 for f32 on the AMD EPYC where [`AHEAD`]
/// was chosen: PERFORMANCE.md, "Prefetch distance"). Larger tiles, compute-bound, keep
/// [`AHEAD`].
pub fn ahead(size: usize) -> usize {
    static INTEL: OnceLock<bool> = OnceLock::new();
    let intel = *INTEL.get_or_init(|| {
        let id = __cpuid(0);
        (id.ebx, id.edx, id.ecx) == (0x756e_6547, 0x4965_6e69, 0x6c65_746e) // "GenuineIntel"
    });
    if size == 4 && intel { 2048 } else { AHEAD }
}
