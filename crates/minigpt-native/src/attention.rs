//! The attention kernel: [`attend`], softmax-weighted values of a block of queries of one head
//! against that head's cached keys and values (f32, or f16 widened exactly as it is read).
//!
//! Unsafe code here: the F16C loads of an f16 cache, the AVX2 intrinsics of the score loop, and
//! the unchecked query and key-block reads inside it; `attend` checks the CPU and the buffer
//! sizes once, before the loops.

// Unsafe code: F16C loads of an f16 cache, AVX2 intrinsics and unchecked reads in the score
// loop.
#![allow(unsafe_code)]

pub use crate::key_layout::{KEY_BLOCK, key_index};
use crate::math::{exp, max32, sum8};
use crate::matmul::Kernel;

/// A KV-cache element: f32, or f16 read with F16C inside attention's loops (no widened copy
/// of the cache: widening each head's keys and values into f32 buffers before attending cost
/// more than the attention itself, PERFORMANCE.md).
pub trait Cached: Copy {
    /// The eight values at `p` as f32, exactly.
    ///
    /// # Safety
    /// `p` points at eight readable values; with `F16C`, the CPU has AVX2, FMA and F16C
    /// (`x86::simd()`).
    unsafe fn lanes8<const F16C: bool>(p: *const Self) -> [f32; 8];
    /// One value as f32, exactly.
    fn scalar(self) -> f32;
    /// The values as f32 when they are f32 already (the AVX-512 kernels read only those).
    fn as_f32(values: &[Self]) -> Option<&[f32]>;
}

impl Cached for f32 {
    #[inline(always)]
    unsafe fn lanes8<const F16C: bool>(p: *const f32) -> [f32; 8] {
        // SAFETY: eight readable values at `p` (the caller's contract); unaligned read.
        unsafe { p.cast::<[f32; 8]>().read_unaligned() }
    }
    #[inline(always)]
    fn scalar(self) -> f32 {
        self
    }
    fn as_f32(values: &[f32]) -> Option<&[f32]> {
        Some(values)
    }
}

impl Cached for half::f16 {
    #[inline(always)]
    unsafe fn lanes8<const F16C: bool>(p: *const half::f16) -> [f32; 8] {
        #[cfg(target_arch = "x86_64")]
        if F16C {
            // SAFETY: the CPU has AVX2, FMA and F16C and eight values are readable at `p` (the
            // caller's contract).
            return unsafe { crate::x86::f16c::f16x8(p) };
        }
        // SAFETY: `i < 8`: one of the eight readable values at `p` (the caller's contract).
        std::array::from_fn(|i| unsafe { *p.add(i) }.to_f32())
    }
    #[inline(always)]
    fn scalar(self) -> f32 {
        self.to_f32()
    }
    fn as_f32(_: &[half::f16]) -> Option<&[f32]> {
        None
    }
}

/// `rows` queries of one head at consecutive positions, the first seeing `len` cached
/// positions (query `r` sees `len + r`): `out_r = softmax(q_r·Kᵀ·scale)·V`.
///
/// Query `r` is `q[r·stride..][..d]` and its output `out[r·d..][..d]`. `keys` holds the
/// head's keys in blocks of [`KEY_BLOCK`] positions, dimension-major within a block
/// (`[block][dim][KEY_BLOCK]`, see [`key_index`]), so eight scores come out of one pass with
/// no horizontal sums; `values` holds position `j`'s vector at `j·d .. (j+1)·d`. `scores` is
/// scratch of at least `rows` × (`len + rows - 1` rounded up to a block). Keys and values are
/// f32 or f16 ([`Cached`]: f16 is widened exactly as it is read, so both give the same bits
/// for the same values).
///
/// Every score is one fused multiply-add chain over the dimensions in order, and every
/// output one chain over the positions in order, so a query's result has the same bits
/// alone (decode) or among others (prefill). Independent chains fill the FMA pipes: eight
/// key blocks for one query, two blocks × four queries for several (each key block then
/// loaded once per four queries instead of once per query). Compiled for AVX2+FMA+F16C where
/// the CPU has them, else as portable code (the same operations).
#[allow(clippy::too_many_arguments)]
pub fn attend<K: Cached>(
    q: &[f32],
    stride: usize,
    rows: usize,
    d: usize,
    len: usize,
    keys: &[K],
    values: &[K],
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    attend_on(
        Kernel::detected(),
        q,
        stride,
        rows,
        d,
        len,
        keys,
        values,
        scale,
        scores,
        out,
    );
}

/// [`attend`] on a given build: `Portable`, `Avx2` (AVX2+FMA+F16C, eight lanes), or `Avx512`
/// (the AVX2 build, with sixteen-lane kernels for a block of queries over an f32 cache of
/// head size 64: [`crate::x86::avx512_attention`]). All give the same bits; tests compare
/// them.
///
/// # Panics
/// When the CPU cannot run `kernel` ([`Kernel::supported`]), or on buffers too small.
#[allow(clippy::too_many_arguments)]
pub fn attend_on<K: Cached>(
    kernel: Kernel,
    q: &[f32],
    stride: usize,
    rows: usize,
    d: usize,
    len: usize,
    keys: &[K],
    values: &[K],
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    assert!(
        kernel.supported(),
        "this CPU cannot run the {kernel:?} kernel"
    );
    #[cfg(target_arch = "x86_64")]
    if kernel != Kernel::Portable {
        #[target_feature(enable = "avx2,fma,f16c")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn fast<K: Cached>(
            zmm: bool,
            q: &[f32],
            stride: usize,
            rows: usize,
            d: usize,
            len: usize,
            keys: &[K],
            values: &[K],
            scale: f32,
            scores: &mut [f32],
            out: &mut [f32],
        ) {
            // SAFETY: `fast` is compiled with F16C, which its caller checked, and `zmm` is
            // as its caller checked.
            unsafe {
                attend_with::<K, true>(
                    zmm, q, stride, rows, d, len, keys, values, scale, scores, out,
                )
            }
        }
        let zmm = kernel == Kernel::Avx512;
        // SAFETY: the CPU has AVX2, FMA and F16C, and AVX-512F with `zmm` (`supported`).
        unsafe {
            fast(
                zmm, q, stride, rows, d, len, keys, values, scale, scores, out,
            )
        };
        return;
    }
    // SAFETY: without F16C or `zmm`, `attend_with` has no requirement on the CPU.
    unsafe {
        attend_with::<K, false>(
            false, q, stride, rows, d, len, keys, values, scale, scores, out,
        )
    }
}

/// [`attend`]'s body.
///
/// # Safety
/// With `F16C`, the CPU must have F16C; with `zmm`, AVX-512F.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn attend_with<K: Cached, const F16C: bool>(
    zmm: bool,
    q: &[f32],
    stride: usize,
    rows: usize,
    d: usize,
    len: usize,
    keys: &[K],
    values: &[K],
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let blocks = (len + rows - 1).div_ceil(KEY_BLOCK);
    let width = blocks * KEY_BLOCK;
    assert!(
        rows >= 1
            && q.len() >= (rows - 1) * stride + d
            && out.len() >= rows * d
            && keys.len() >= width * d
            && values.len() >= (len + rows - 1) * d
            && scores.len() >= rows * width,
        "attend: buffers too small"
    );
    // A block of queries over an f32 cache of head size 64 takes the sixteen-lane kernels.
    #[cfg(target_arch = "x86_64")]
    let wide = match (
        zmm && rows > 1 && d == crate::x86::avx512_attention::D,
        K::as_f32(keys),
        K::as_f32(values),
    ) {
        (true, Some(k), Some(v)) => Some((k, v)),
        _ => None,
    };
    #[cfg(not(target_arch = "x86_64"))]
    let wide: Option<(&[f32], &[f32])> = {
        let _ = zmm;
        None
    };
    // The blocks passed to `dots` are below `blocks`, whose keys `keys` holds (asserted
    // above; `dots` checks again); `F16C` is as the caller vouches.
    if let Some((keys, _)) = wide {
        #[cfg(target_arch = "x86_64")]
        PAIRS.with_borrow_mut(|pairs| {
            // SAFETY: AVX-512F with `zmm` (the caller's contract); `q` holds `rows` queries of
            // `d` = 64 values at `stride`, `keys` `blocks` key blocks, and `scores` `rows`
            // rows of `width = blocks · KEY_BLOCK` (asserted above).
            unsafe {
                crate::x86::avx512_attention::scores(
                    q.as_ptr(),
                    stride,
                    rows,
                    keys.as_ptr(),
                    blocks,
                    scale,
                    scores.as_mut_ptr(),
                    width,
                    pairs,
                )
            }
        });
    } else if rows == 1 {
        // Eight blocks at a time, then four, two, one (a lone block is one chain of dependent
        // FMAs; blocks side by side are independent chains).
        let mut b = 0;
        while b + 8 <= blocks {
            // SAFETY: see above: key blocks in range, F16C as vouched.
            unsafe { dots::<K, F16C, 1, 8>(q, stride, [0; 1], keys, d, b, scale, scores, width) };
            b += 8;
        }
        // The last one to seven blocks side by side too: in groups of four, two and one, each
        // group waited out its own chain of `d` dependent FMAs.
        macro_rules! rest {
            ($($n:literal)*) => {
                match blocks - b {
                    0 => {}
                    // SAFETY: see above: key blocks in range, F16C as vouched.
                    $($n => unsafe {
                        dots::<K, F16C, 1, $n>(q, stride, [0; 1], keys, d, b, scale, scores, width)
                    },)*
                    _ => unreachable!("fewer than eight blocks remain"),
                }
            };
        }
        rest!(1 2 3 4 5 6 7);
    } else {
        for r0 in (0..rows).step_by(4) {
            // A last group of fewer than four repeats its last query (not stored twice).
            let pick = [0, 1, 2, 3].map(|i| r0 + i.min(rows - 1 - r0));
            let mut b = 0;
            while b + 2 <= blocks {
                // SAFETY: see above: key blocks in range, F16C as vouched.
                unsafe { dots::<K, F16C, 4, 2>(q, stride, pick, keys, d, b, scale, scores, width) };
                b += 2;
            }
            if b < blocks {
                // SAFETY: see above: key blocks in range, F16C as vouched.
                unsafe { dots::<K, F16C, 4, 1>(q, stride, pick, keys, d, b, scale, scores, width) };
            }
        }
    }
    softmax(scores, width, len, rows);
    if let Some((_, values)) = wide {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F with `zmm` (the caller's contract); `scores` holds `rows` rows of
        // `width ≥ len + rows - 1`, `values` `len + rows - 1` positions of 64 values, and
        // `out` `rows · 64` (asserted above).
        unsafe {
            crate::x86::avx512_attention::weigh(
                scores.as_ptr(),
                width,
                values.as_ptr(),
                len,
                rows,
                out.as_mut_ptr(),
            )
        };
    } else if d == 64 {
        // SAFETY: F16C as the caller vouches (`weigh` reads `values` by slices, checked).
        unsafe { weigh::<K, F16C, 64>(scores, width, values, len, rows, out) };
    } else {
        for (r, o) in out.chunks_exact_mut(d).take(rows).enumerate() {
            o.fill(0.0);
            for (&p, v) in scores[r * width..r * width + len + r]
                .iter()
                .zip(values.chunks_exact(d))
            {
                for (o, &v) in o.iter_mut().zip(v) {
                    *o = p.mul_add(v.scalar(), *o);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
thread_local! {
    /// Scratch of the AVX-512 scores: query pairs side by side, reused.
    static PAIRS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Each query's scores in place of its weights: `softmax` over query `r`'s `len + r`
/// positions, of `rows` rows of `width` (inlined into each build of `attend`).
#[inline(always)]
fn softmax(scores: &mut [f32], width: usize, len: usize, rows: usize) {
    for r in 0..rows {
        let n = len + r;
        let s = &mut scores[r * width..r * width + n];
        let max = max32(s);
        // Separate loops: exp vectorises, and the sum runs in eight lanes.
        for s in s.iter_mut() {
            *s = exp(*s - max);
        }
        let inv = 1.0 / sum8(s);
        for s in s.iter_mut() {
            *s *= inv;
        }
    }
}

/// Scores of `R` queries (rows `pick` of `q`) against key blocks `b0..b0 + B`, times `scale`,
/// into `scores` (row stride `width`): `R·B` independent chains of eight lanes.
///
/// # Safety
/// With `F16C`, the CPU must have AVX2, FMA and F16C (`x86::simd()`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn dots<K: Cached, const F16C: bool, const R: usize, const B: usize>(
    q: &[f32],
    stride: usize,
    pick: [usize; R],
    keys: &[K],
    d: usize,
    b0: usize,
    scale: f32,
    scores: &mut [f32],
    width: usize,
) {
    assert!(
        (b0 + B) * d * KEY_BLOCK <= keys.len(),
        "dots: key blocks out of range"
    );
    let keys = keys.as_ptr();
    let qs = pick.map(|r| &q[r * stride..][..d]);
    // The same chains in ymm registers: written with arrays of lanes, as below, the compiler
    // stored every accumulator to the stack on every step (one store per block and dimension,
    // which bounded the loop on store throughput instead of FMA latency).
    #[cfg(target_arch = "x86_64")]
    if F16C {
        use std::arch::x86_64::*;
        // SAFETY: with `F16C`, the CPU has AVX2, FMA and F16C (the caller's contract); the
        // loop reads `dim < d` values of each query (sliced above) and key blocks in range
        // (checked above), and each score row holds `B` blocks from `b0` (`width` apart).
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); B]; R];
            for dim in 0..d {
                for (acc, q) in acc.iter_mut().zip(&qs) {
                    let x = _mm256_set1_ps(*q.get_unchecked(dim));
                    for (b, acc) in acc.iter_mut().enumerate() {
                        let kv = K::lanes8::<F16C>(keys.add(((b0 + b) * d + dim) * KEY_BLOCK));
                        *acc = _mm256_fmadd_ps(x, _mm256_loadu_ps(kv.as_ptr()), *acc);
                    }
                }
            }
            let scale = _mm256_set1_ps(scale);
            for (r, acc) in pick.iter().zip(&acc) {
                for (b, &acc) in acc.iter().enumerate() {
                    let s = &mut scores[r * width + (b0 + b) * KEY_BLOCK..][..KEY_BLOCK];
                    _mm256_storeu_ps(s.as_mut_ptr(), _mm256_mul_ps(acc, scale));
                }
            }
        }
        return;
    }
    let mut acc = [[[0f32; KEY_BLOCK]; B]; R];
    for dim in 0..d {
        for (acc, q) in acc.iter_mut().zip(&qs) {
            let x = q[dim];
            for (b, acc) in acc.iter_mut().enumerate() {
                // SAFETY: block `b0 + b` is among the `keys.len() / (KEY_BLOCK · d)` blocks
                // (checked above); F16C as the caller vouches.
                let kv = unsafe { K::lanes8::<F16C>(keys.add(((b0 + b) * d + dim) * KEY_BLOCK)) };
                for (a, k) in acc.iter_mut().zip(kv) {
                    *a = x.mul_add(k, *a);
                }
            }
        }
    }
    for (r, acc) in pick.iter().zip(&acc) {
        for (b, acc) in acc.iter().enumerate() {
            let s = &mut scores[r * width + (b0 + b) * KEY_BLOCK..][..KEY_BLOCK];
            for (s, &a) in s.iter_mut().zip(acc) {
                *s = a * scale;
            }
        }
    }
}

/// `out_r = Σ_j p_rj · v_j` over query `r`'s positions, in order, for head size `D`: the
/// positions go in chunks of 64 (16 KiB of values at D = 64, in L1) that every query reads in
/// turn, each query's running sum in registers within a chunk and in `out` between chunks.
///
/// # Safety
/// With `F16C`, the CPU must have F16C.
#[inline(always)]
unsafe fn weigh<K: Cached, const F16C: bool, const D: usize>(
    p: &[f32],
    width: usize,
    values: &[K],
    len: usize,
    rows: usize,
    out: &mut [f32],
) {
    const CHUNK: usize = 64;
    let out = &mut out[..rows * D];
    out.fill(0.0);
    for j0 in (0..len + rows - 1).step_by(CHUNK) {
        for (r, sum) in out.chunks_exact_mut(D).enumerate() {
            let j1 = (j0 + CHUNK).min(len + r);
            if j1 <= j0 {
                continue;
            }
            let mut o: [f32; D] = (&*sum).try_into().expect("D values");
            for (&p, v) in p[r * width + j0..r * width + j1]
                .iter()
                .zip(values[j0 * D..j1 * D].chunks_exact(D))
            {
                for (o, v) in o.chunks_exact_mut(8).zip(v.chunks_exact(8)) {
                    // SAFETY: eight values; F16C as the caller vouches.
                    let v = unsafe { K::lanes8::<F16C>(v.as_ptr()) };
                    for (o, v) in o.iter_mut().zip(v) {
                        *o = p.mul_add(v, *o);
                    }
                }
            }
            sum.copy_from_slice(&o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::widen;
    use crate::test_values as values;

    #[test]
    fn attend_is_softmax_weighted_values_alone_or_in_blocks() {
        // Head sizes on the generic path (12, 13) and the 64 one; one query, and blocks of
        // queries (a prefill) across key blocks, with a partial last group of four.
        for (d, len, rows) in [
            (12usize, 11usize, 1usize),
            (13, 9, 1),
            (64, 70, 1),
            (64, 5, 19),
            (13, 3, 6),
        ] {
            let seen = len + rows - 1;
            let width = seen.next_multiple_of(KEY_BLOCK);
            let stride = d + 3;
            let q = values(rows * stride, 7);
            let k = values(seen * d, 8); // position j's key at j·d
            let vals = values(seen * d, 9);
            let mut keys = vec![f32::NAN; width * d]; // unused slots must not matter
            for j in 0..seen {
                for i in 0..d {
                    keys[key_index(j, i, d)] = k[j * d + i];
                }
            }
            let mut scores = vec![0f32; rows * width];
            let mut out = vec![0f32; rows * d];
            attend(
                &q,
                stride,
                rows,
                d,
                len,
                &keys,
                &vals,
                0.5,
                &mut scores,
                &mut out,
            );
            for r in 0..rows {
                let (q, n) = (&q[r * stride..r * stride + d], len + r);
                let s: Vec<f64> = (0..n)
                    .map(|j| {
                        (0..d)
                            .map(|i| q[i] as f64 * k[j * d + i] as f64)
                            .sum::<f64>()
                            * 0.5
                    })
                    .collect();
                let z: f64 = s.iter().map(|x| x.exp()).sum();
                let got = &out[r * d..(r + 1) * d];
                for i in 0..d {
                    let want: f64 = (0..n)
                        .map(|j| s[j].exp() / z * vals[j * d + i] as f64)
                        .sum();
                    assert!((got[i] as f64 - want).abs() < 1e-6, "{} vs {want}", got[i]);
                }
                // The same query alone (a decode step) gives the same bits.
                let w = n.next_multiple_of(KEY_BLOCK);
                let mut alone = vec![0f32; d];
                let mut scratch = vec![0f32; w];
                attend(
                    q,
                    d,
                    1,
                    d,
                    n,
                    &keys[..w * d],
                    &vals[..n * d],
                    0.5,
                    &mut scratch,
                    &mut alone,
                );
                assert!(
                    alone == got,
                    "d {d}, row {r} of {rows}: alone differs from the block"
                );
            }
        }
    }

    #[test]
    fn attend_reads_an_f16_cache_as_its_widened_copy() {
        // Keys and values read as f16 inside the loops (decode) give the bits of attending
        // over their f32 widening (prefill's path): one query and blocks, 8-4-2-1 key-block
        // groups (len 120 = 15 blocks), head sizes 64 and 13.
        for (d, len, rows) in [
            (64usize, 120usize, 1usize),
            (64, 3, 1),
            (13, 41, 1),
            (64, 9, 7),
        ] {
            let seen = len + rows - 1;
            let width = seen.next_multiple_of(KEY_BLOCK);
            let q = values(rows * d, 11);
            let keys: Vec<half::f16> = values(width * d, 12)
                .into_iter()
                .map(half::f16::from_f32)
                .collect();
            let vals: Vec<half::f16> = values(seen * d, 13)
                .into_iter()
                .map(half::f16::from_f32)
                .collect();
            let (mut wide_k, mut wide_v) = (vec![0f32; keys.len()], vec![0f32; vals.len()]);
            widen(&keys, &mut wide_k);
            widen(&vals, &mut wide_v);
            let mut scores = vec![0f32; rows * width];
            let (mut half_out, mut wide_out) = (vec![0f32; rows * d], vec![1f32; rows * d]);
            attend(
                &q,
                d,
                rows,
                d,
                len,
                &keys,
                &vals,
                0.3,
                &mut scores,
                &mut half_out,
            );
            attend(
                &q,
                d,
                rows,
                d,
                len,
                &wide_k,
                &wide_v,
                0.3,
                &mut scores,
                &mut wide_out,
            );
            assert!(half_out == wide_out, "d {d}, len {len}, rows {rows}");
            // And both are attention: the first query against an f64 reference.
            let s: Vec<f64> = (0..len)
                .map(|j| {
                    (0..d)
                        .map(|i| q[i] as f64 * wide_k[key_index(j, i, d)] as f64)
                        .sum::<f64>()
                        * 0.3
                })
                .collect();
            let z: f64 = s.iter().map(|x| x.exp()).sum();
            for i in 0..d {
                let want: f64 = (0..len)
                    .map(|j| s[j].exp() / z * wide_v[j * d + i] as f64)
                    .sum();
                assert!(
                    (half_out[i] as f64 - want).abs() < 1e-6,
                    "{} vs {want}",
                    half_out[i]
                );
            }
        }
    }

    #[test]
    fn attend_on_simd_gives_the_portable_bits() {
        // Every build the CPU has must give the portable build's bits, for f32 and f16
        // caches: the AVX2+FMA+F16C build, and the AVX-512 kernels for blocks of queries over
        // an f32 cache of head size 64 (query groups of eight and four with partial last
        // groups, key blocks in steps of four with every remainder).
        use std::io::Write;
        let cases = [
            (64usize, 120usize, 1usize),
            (64, 9, 7),
            (13, 41, 5),
            (64, 1, 2),
            (64, 30, 16),
            (64, 57, 13),
            (64, 100, 9),
            (64, 8, 3),
            (64, 250, 16),
            // One query: every count of key blocks past the groups of eight (0 to 7).
            (64, 64, 1),
            (64, 9, 1),
            (13, 20, 1),
            (64, 25, 1),
            (64, 33, 1),
            (64, 41, 1),
            (64, 55, 1),
        ];
        let mut covered = Vec::new();
        for kernel in [Kernel::Avx2, Kernel::Avx512] {
            if !kernel.supported() || !crate::x86_simd_for_tests() {
                // Past the harness's capture, so it shows without `--nocapture`.
                let _ = writeln!(
                    std::io::stderr(),
                    "note: this CPU lacks the {kernel:?} build of attention (or MINIGPT_NO_SIMD \
                     is set): it was not exercised"
                );
                continue;
            }
            for (d, len, rows) in cases {
                let seen = len + rows - 1;
                let width = seen.next_multiple_of(KEY_BLOCK);
                let q = values(rows * d, 21);
                let keys = values(width * d, 22);
                let vals = values(seen * d, 23);
                let keys16: Vec<half::f16> = keys.iter().map(|&x| half::f16::from_f32(x)).collect();
                let vals16: Vec<half::f16> = vals.iter().map(|&x| half::f16::from_f32(x)).collect();
                let mut scores = vec![0f32; rows * width];
                let (mut simd, mut portable) = (vec![0f32; rows * d], vec![1f32; rows * d]);
                let at = |k| format!("{kernel:?}, {k}, d {d}, len {len}, rows {rows}");
                attend_on(
                    kernel,
                    &q,
                    d,
                    rows,
                    d,
                    len,
                    &keys,
                    &vals,
                    0.3,
                    &mut scores,
                    &mut simd,
                );
                let f32_scores = scores.clone();
                attend_on(
                    Kernel::Portable,
                    &q,
                    d,
                    rows,
                    d,
                    len,
                    &keys,
                    &vals,
                    0.3,
                    &mut scores,
                    &mut portable,
                );
                assert!(simd == portable, "{}", at("f32"));
                // The weights too, over the positions each query sees.
                for r in 0..rows {
                    let n = r * width..r * width + len + r;
                    assert!(
                        f32_scores[n.clone()] == scores[n],
                        "{} row {r}",
                        at("f32 weights")
                    );
                }
                attend_on(
                    kernel,
                    &q,
                    d,
                    rows,
                    d,
                    len,
                    &keys16,
                    &vals16,
                    0.3,
                    &mut scores,
                    &mut simd,
                );
                attend_on(
                    Kernel::Portable,
                    &q,
                    d,
                    rows,
                    d,
                    len,
                    &keys16,
                    &vals16,
                    0.3,
                    &mut scores,
                    &mut portable,
                );
                assert!(simd == portable, "{}", at("f16"));
            }
            covered.push(format!("{kernel:?}"));
        }
        if !covered.is_empty() {
            let _ = writeln!(
                std::io::stderr(),
                "note: attention's {} build(s): {} cases each (f32 and f16 caches) compared bit \
                 for bit with the portable build",
                covered.join(" and "),
                2 * cases.len()
            );
        }
    }
}
