//! CPU kernels of the native engine: a packed-weight matrix multiply (f32, f16 or bf16 weights,
//! f32 activations and accumulation) and the element-wise functions a GPT-2 block needs.
//!
//! **Every output element is computed by the same sequence of floating-point operations
//! whatever the number of rows, the row's place in the batch or the thread that runs it**:
//! `out[r][j]` is one fused multiply-add chain over `k` in order, then `+ bias[j]`. So a row's
//! logits are bit-identical alone, in any batch, in a prefill or in a cached step. The SIMD
//! paths (`fma` intrinsics) and the portable path (`f32::mul_add`) are all exactly rounded
//! fused multiply-adds in the same order, so they agree too (no test compares them: one
//! process runs one path).
//!
//! Weights are packed once, at load time, into panels of [`PANEL`] columns: panel `p` holds
//! rows `0..k` of columns `32p..32p+32`, contiguous, so a multiply streams each weight once
//! from memory (batch-1 decode is bound by memory bandwidth) and reuses it for every row of the
//! batch from registers (batched decode and prefill are bound by arithmetic).

// SIMD intrinsics and one output pointer shared by threads: each block states its invariant.
#![allow(unsafe_code)]

/// Columns per packed panel (two 16-lane or four 8-lane registers).
pub const PANEL: usize = 32;
/// Rows per register tile (24 of AVX-512's 32 registers accumulate).
const MR: usize = 12;

/// Storage type of packed weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DType {
    /// 32-bit floats, as trained.
    #[default]
    F32,
    /// IEEE half precision (round to nearest even).
    F16,
    /// bfloat16 (round to nearest even).
    BF16,
}

impl DType {
    /// The names `--dtype` accepts.
    pub const NAMES: &'static [&'static str] = &["f32", "f16", "bf16"];

    /// Parses `f32`, `f16` or `bf16`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "f32" => Some(Self::F32),
            "f16" => Some(Self::F16),
            "bf16" => Some(Self::BF16),
            _ => None,
        }
    }

    /// The name `--dtype` uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::BF16 => "bf16",
        }
    }
}

/// A `[k, n]` weight matrix in panels of [`PANEL`] columns (the last one zero-padded).
#[derive(Debug)]
pub struct Packed {
    /// Input features (rows).
    pub k: usize,
    /// Output features (columns).
    pub n: usize,
    dtype: DType,
    wide: Buf<f32>,
    half: Buf<u16>,
}

impl Packed {
    /// Packs the matrix whose element `(row, col)` is `at(row, col)`.
    pub fn new(k: usize, n: usize, dtype: DType, at: impl Fn(usize, usize) -> f32) -> Self {
        let panels = n.div_ceil(PANEL);
        let value = |i: usize| {
            let (p, rest) = (i / (k * PANEL), i % (k * PANEL));
            let (row, lane) = (rest / PANEL, rest % PANEL);
            let col = p * PANEL + lane;
            if col < n { at(row, col) } else { 0.0 }
        };
        let len = panels * k * PANEL;
        let (wide, half) = match dtype {
            DType::F32 => (Buf::new(len, value), Buf::empty()),
            DType::F16 => (
                Buf::empty(),
                Buf::new(len, |i| half::f16::from_f32(value(i)).to_bits()),
            ),
            DType::BF16 => (
                Buf::empty(),
                Buf::new(len, |i| half::bf16::from_f32(value(i)).to_bits()),
            ),
        };
        Self {
            k,
            n,
            dtype,
            wide,
            half,
        }
    }

    /// Packs a row-major `[k, n]` slice.
    pub fn from_rows(w: &[f32], k: usize, n: usize, dtype: DType) -> Self {
        assert_eq!(w.len(), k * n, "weight of the wrong size");
        Self::new(k, n, dtype, |r, c| w[r * n + c])
    }

    /// The stored type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Bytes of packed weights.
    pub fn bytes(&self) -> usize {
        self.wide.len() * 4 + self.half.len() * 2
    }

    /// Element `(row, col)` as stored (after rounding to the storage type).
    pub fn get(&self, row: usize, col: usize) -> f32 {
        let i = (col / PANEL * self.k + row) * PANEL + col % PANEL;
        match self.dtype {
            DType::F32 => self.wide[i],
            DType::F16 => half::f16::from_bits(self.half[i]).to_f32(),
            DType::BF16 => half::bf16::from_bits(self.half[i]).to_f32(),
        }
    }

    /// Column `col` (all `k` rows) into `out`.
    pub fn column(&self, col: usize, out: &mut [f32]) {
        for (row, o) in out.iter_mut().enumerate().take(self.k) {
            *o = self.get(row, col);
        }
    }

    fn panels(&self) -> usize {
        self.n.div_ceil(PANEL)
    }
}

/// A read-only buffer of packed weights, aligned to 2 MiB and advised into transparent huge
/// pages where Linux offers them: a decode step streams every weight, and 4 KiB pages would
/// cost a TLB miss every 4 KiB (`examples/kernel_speed`: the 154 MB LM head streamed at 16–17
/// GB/s in 4 KiB pages, 27–32 GB/s in huge pages).
pub struct Buf<T: Copy> {
    ptr: std::ptr::NonNull<T>,
    len: usize,
    layout: std::alloc::Layout,
}

// SAFETY: `Buf` owns its memory like a `Box<[T]>` and is never written after construction.
unsafe impl<T: Copy + Send> Send for Buf<T> {}
unsafe impl<T: Copy + Sync> Sync for Buf<T> {}

impl<T: Copy> Buf<T> {
    const ALIGN: usize = 2 << 20;

    /// `len` values `f(i)`.
    fn new(len: usize, f: impl Fn(usize) -> T) -> Self {
        let bytes = len * std::mem::size_of::<T>();
        if bytes == 0 {
            return Self::empty();
        }
        let layout = std::alloc::Layout::from_size_align(bytes, Self::ALIGN.max(align_of::<T>()))
            .expect("weights fit the address space");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc(layout) }.cast::<T>();
        let Some(ptr) = std::ptr::NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        #[cfg(target_os = "linux")]
        if bytes >= Self::ALIGN {
            // SAFETY: the range is this allocation's own, 2 MiB aligned and not yet touched; the
            // advice changes how pages are backed, never their contents.
            unsafe {
                libc::madvise(raw.cast(), bytes, libc::MADV_HUGEPAGE);
            }
        }
        for i in 0..len {
            // SAFETY: `i < len`, inside the allocation; each slot is written once.
            unsafe { raw.add(i).write(f(i)) };
        }
        Self { ptr, len, layout }
    }

    fn empty() -> Self {
        Self {
            ptr: std::ptr::NonNull::dangling(),
            len: 0,
            layout: std::alloc::Layout::new::<()>(),
        }
    }

    fn as_ptr(&self) -> *const T {
        self.ptr.as_ptr()
    }
}

impl<T: Copy> std::ops::Deref for Buf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialised values live at `ptr` for as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for Buf<T> {
    fn drop(&mut self) {
        if self.layout.size() > 0 {
            // SAFETY: allocated in `new` with this layout.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) }
        }
    }
}

impl<T: Copy> std::fmt::Debug for Buf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buf({} values)", self.len)
    }
}

/// A raw output pointer shared by the threads of one multiply; each writes its own columns.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: the threads of `matmul` write disjoint column ranges of the output.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// The element at `i` (a method, so closures capture the whole `Send` wrapper).
    fn at(self, i: usize) -> *mut f32 {
        self.0.wrapping_add(i)
    }
}

/// `out[m, n] = a[m, k] · w + bias`, `a` row-major with row stride `k`.
pub fn matmul(a: &[f32], m: usize, w: &Packed, bias: Option<&[f32]>, out: &mut [f32]) {
    matmul_then(a, m, w, bias, None, out);
}

/// [`matmul`], then `then` applied to every output row's pieces as the tiles are stored (an
/// element-wise activation such as [`gelu_tanh`], run by the threads of the multiply while the
/// values are in cache instead of in a pass of its own).
pub fn matmul_then(
    a: &[f32],
    m: usize,
    w: &Packed,
    bias: Option<&[f32]>,
    then: Option<fn(&mut [f32])>,
    out: &mut [f32],
) {
    let (k, n) = (w.k, w.n);
    assert!(
        k > 0 && a.len() >= m * k && out.len() >= m * n,
        "matmul: empty weights or buffers too small"
    );
    if let Some(b) = bias {
        assert_eq!(b.len(), n, "matmul: bias of the wrong size");
    }
    let panels = w.panels();
    let dst = Out(out.as_mut_ptr());
    // The AVX2 tiles read several rows from `a` packed: groups of six rows, each `[k][rows]`
    // (see `simd::pack`).
    let mut packed = PACKED_A.with_borrow_mut(std::mem::take);
    #[cfg(target_arch = "x86_64")]
    let pack = simd::packs(m);
    #[cfg(not(target_arch = "x86_64"))]
    let pack = false;
    let a: &[f32] = if pack {
        simd::pack(&a[..m * k], k, &mut packed);
        &packed
    } else {
        a
    };
    let run = |range: std::ops::Range<usize>| {
        // Every tile call writes the rows it is given before they are read.
        let mut tile = [[0f32; PANEL]; MR];
        for p in range {
            let mut row = 0;
            while row < m {
                let rows = MR.min(m - row);
                // SAFETY: `a` holds rows `row..row + rows` of `k` values; the panel holds `k`
                // rows of `PANEL` values.
                unsafe { panel_tile(a.as_ptr().add(row * k), k, rows, pack, w, p, &mut tile) };
                let col = p * PANEL;
                let cols = PANEL.min(n - col);
                for (r, t) in tile.iter().enumerate().take(rows) {
                    // SAFETY: in bounds (checked above); columns of panel `p` are written by
                    // this thread only.
                    let o = unsafe {
                        std::slice::from_raw_parts_mut(dst.at((row + r) * n + col), cols)
                    };
                    match bias {
                        Some(b) => add_into(o, &t[..cols], &b[col..col + cols]),
                        None => o.copy_from_slice(&t[..cols]),
                    }
                    if let Some(f) = then {
                        f(o);
                    }
                }
                row += rows;
            }
        }
    };
    // Small products are not worth waking the team for.
    let team = crate::native::team::team();
    if m * k * n < 1 << 16 || team.threads() == 1 {
        run(0..panels);
    } else {
        let chunks = (team.threads() * 16).min(panels);
        team.run(chunks, |c| {
            run(c * panels / chunks..(c + 1) * panels / chunks)
        });
    }
    PACKED_A.with_borrow_mut(|p| *p = packed);
}

thread_local! {
    /// The calling thread's buffer for `matmul`'s packed left-hand side, reused.
    static PACKED_A: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One register tile: `rows` (≤ MR) rows of `a` times panel `p`.
///
/// # Safety
/// `a` must point at `rows` rows of `lda` readable values each.
unsafe fn panel_tile(
    a: *const f32,
    lda: usize,
    rows: usize,
    packed: bool,
    w: &Packed,
    p: usize,
    out: &mut [[f32; PANEL]; MR],
) {
    let k = w.k;
    let off = p * k * PANEL;
    #[cfg(target_arch = "x86_64")]
    if simd::available() {
        // SAFETY: the CPU has AVX2, FMA and F16C (checked); pointers as documented.
        unsafe {
            match w.dtype {
                DType::F32 => {
                    simd::tile::<simd::F32>(a, lda, rows, packed, w.wide.as_ptr().add(off), k, out)
                }
                DType::F16 => {
                    simd::tile::<simd::F16>(a, lda, rows, packed, w.half.as_ptr().add(off), k, out)
                }
                DType::BF16 => {
                    simd::tile::<simd::BF16>(a, lda, rows, packed, w.half.as_ptr().add(off), k, out)
                }
            }
        }
        return;
    }
    let b = |kk: usize, lane: usize| -> f32 {
        let i = off + kk * PANEL + lane;
        match w.dtype {
            DType::F32 => w.wide[i],
            DType::F16 => half::f16::from_bits(w.half[i]).to_f32(),
            DType::BF16 => half::bf16::from_bits(w.half[i]).to_f32(),
        }
    };
    for (r, acc) in out.iter_mut().enumerate().take(rows) {
        *acc = [0.0; PANEL];
        for kk in 0..k {
            // SAFETY: as documented.
            let x = unsafe { *a.add(r * lda + kk) };
            for (lane, v) in acc.iter_mut().enumerate() {
                *v = x.mul_add(b(kk, lane), *v);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    use super::{MR, PANEL};

    /// AVX2 + FMA + F16C, detected once (`MINIGPT_NO_SIMD` turns SIMD off, for tests).
    pub fn available() -> bool {
        static OK: OnceLock<bool> = OnceLock::new();
        *OK.get_or_init(|| {
            std::env::var_os("MINIGPT_NO_SIMD").is_none()
                && is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c")
        })
    }

    /// AVX-512F as well (`MINIGPT_NO_AVX512` keeps AVX2, for tests).
    pub fn avx512() -> bool {
        static OK: OnceLock<bool> = OnceLock::new();
        *OK.get_or_init(|| {
            available()
                && std::env::var_os("MINIGPT_NO_AVX512").is_none()
                && is_x86_feature_detected!("avx512f")
        })
    }

    /// Whether `matmul` packs `m` rows for [`tile`]: the AVX2 passes of three or more rows
    /// (`MINIGPT_NO_PACK` turns packing off, for comparisons).
    pub fn packs(m: usize) -> bool {
        static OK: OnceLock<bool> = OnceLock::new();
        m > 2
            && *OK.get_or_init(|| {
                available() && !avx512() && std::env::var_os("MINIGPT_NO_PACK").is_none()
            })
    }

    /// `a` (`m` rows of `k`) in groups of six rows (the last one shorter), each group
    /// `[k][rows]` at the offset of its first row (`row · k`): a pass broadcasts its rows'
    /// values for one k step from one pointer at constant offsets, instead of computing six
    /// row addresses per step (the frontend, not the FMA units, limited the six-row pass).
    pub fn pack(a: &[f32], k: usize, out: &mut Vec<f32>) {
        let m = a.len() / k;
        out.resize(m * k, 0.0);
        // One copy loop per group size (a loop over a run-time number of rows was 1.3 % of a
        // batch-8 decode's profile, on the calling thread while the others waited).
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
        // A prefill's activations are megabytes: both threads copy.
        let mut pieces: Vec<_> = a.chunks(6 * k).zip(out.chunks_mut(6 * k)).collect();
        if m * k >= 1 << 18 {
            crate::native::team::team().for_each_mut(&mut pieces, |p| group((p.0, &mut *p.1)));
        } else {
            pieces.into_iter().for_each(group);
        }
    }

    /// Bytes ahead of the weight stream to prefetch, into L2 (batch-1 decode of GPT-2-124M,
    /// medians of five interleaved runs: 22.6 ms/token at 512, 20.5 at 2048, 19.9 at 4096;
    /// 16 KiB was no better; the L2 hint gave batch 8 a few per cent over L1).
    const AHEAD: usize = 4096;

    /// Panel rows per k-block of the AVX2 tiles when several passes share a panel: 128 rows
    /// of 32 f32 columns = 16 KiB, half of L1.
    const KB: usize = 128;

    /// A stored weight type: loads as f32 lanes.
    pub trait Elem {
        type T;
        /// # Safety
        /// `p` must point at eight readable values; AVX2 and F16C must be available.
        unsafe fn load8(p: *const Self::T) -> __m256;
        /// # Safety
        /// `p` must point at sixteen readable values; AVX-512F must be available.
        unsafe fn load16(p: *const Self::T) -> __m512;
    }
    pub struct F32;
    pub struct F16;
    pub struct BF16;
    impl Elem for F32 {
        type T = f32;
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn load8(p: *const f32) -> __m256 {
            unsafe { _mm256_loadu_ps(p) }
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn load16(p: *const f32) -> __m512 {
            unsafe { _mm512_loadu_ps(p) }
        }
    }
    impl Elem for F16 {
        type T = u16;
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn load8(p: *const u16) -> __m256 {
            unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn load16(p: *const u16) -> __m512 {
            unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
        }
    }
    impl Elem for BF16 {
        type T = u16;
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn load8(p: *const u16) -> __m256 {
            unsafe {
                let wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast()));
                _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16))
            }
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn load16(p: *const u16) -> __m512 {
            unsafe {
                let wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(p.cast()));
                _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16))
            }
        }
    }

    /// `rows` (≤ MR) rows of `a` times one panel, into `out`.
    ///
    /// # Safety
    /// AVX2/FMA/F16C available; `a`: `rows` rows of `lda` values; `b`: `k` rows of `PANEL`.
    pub unsafe fn tile<E: Elem>(
        a: *const f32,
        lda: usize,
        rows: usize,
        packed: bool,
        b: *const E::T,
        k: usize,
        out: &mut [[f32; PANEL]; MR],
    ) {
        unsafe {
            if avx512() {
                macro_rules! by_rows {
                    ($($n:literal)*) => {
                        match rows {
                            $($n => tile512::<E, $n>(a, lda, b, k, out, 0),)*
                            _ => unreachable!("at most MR rows"),
                        }
                    };
                }
                by_rows!(1 2 3 4 5 6 7 8 9 10 11 12);
            } else {
                if packed {
                    avx2_tile::<E, true>(a, lda, rows, b, k, out);
                } else {
                    avx2_tile::<E, false>(a, lda, rows, b, k, out);
                }
            }
        }
    }

    /// Eight f16 values widened with F16C.
    ///
    /// # Safety
    /// F16C available; `p` points at eight readable values.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn f16x8(p: *const half::f16) -> [f32; 8] {
        // SAFETY: eight readable values; `__m256` and `[f32; 8]` have the same layout.
        unsafe { std::mem::transmute(_mm256_cvtph_ps(_mm_loadu_si128(p.cast()))) }
    }

    /// [`super::widen`] with F16C.
    ///
    /// # Safety
    /// F16C available; `src.len() == dst.len()`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn widen(src: &[half::f16], dst: &mut [f32]) {
        let whole = src.len() / 8 * 8;
        for (s, d) in src[..whole].chunks_exact(8).zip(dst.chunks_exact_mut(8)) {
            // SAFETY: eight values each side.
            unsafe {
                let h = _mm_loadu_si128(s.as_ptr().cast());
                _mm256_storeu_ps(d.as_mut_ptr(), _mm256_cvtph_ps(h));
            }
        }
        for (d, s) in dst[whole..].iter_mut().zip(&src[whole..]) {
            *d = s.to_f32();
        }
    }

    /// [`super::narrow`] with F16C.
    ///
    /// # Safety
    /// F16C available; `src.len() == dst.len()`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn narrow(src: &[f32], dst: &mut [half::f16]) {
        let whole = src.len() / 8 * 8;
        for (s, d) in src[..whole].chunks_exact(8).zip(dst.chunks_exact_mut(8)) {
            // SAFETY: eight values each side.
            unsafe {
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(s.as_ptr()));
                _mm_storeu_si128(d.as_mut_ptr().cast(), h);
            }
        }
        for (d, s) in dst[whole..].iter_mut().zip(&src[whole..]) {
            *d = half::f16::from_f32(*s);
        }
    }

    /// The AVX2 tiling of one panel. Sixteen ymm registers: one or two rows take the whole
    /// 32-column panel at once (4 or 8 accumulators, the weight stream read once: batch-1
    /// decode is memory-bound). More rows go in passes of six rows over one 16-column half
    /// of the panel (6 × 2 accumulators + 2 weight vectors + a broadcast = 15 registers;
    /// three rows over the whole panel need 17, and LLVM spilled two accumulators to the
    /// stack on every k step: 37 GFLOP/s on one core at 128 rows, 52 after, ~100 the FMA
    /// peak measured by a C loop of independent FMAs). The panel goes in blocks of `KB` of
    /// its k rows (16 KiB of f32), so every pass after the first reads the block from L1;
    /// each pass resumes its accumulators from `out`, so every output is still one FMA chain
    /// over k in order (the same bits as a single pass, whatever the batch). `PACKED`: `a`
    /// is laid out by [`pack`] (batches of three or more rows; the single-core best of
    /// `kernel_speed` was ~88 GFLOP/s with or without, batch-8 f16 decode interleaved 4 × 2
    /// runs: 283 → 283, 313 → 340, 276 → 318, 307 → 318 tokens/s).
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
        unsafe {
            if rows <= 2 {
                // One pass: prefetch `AHEAD` bytes down the stream, two lines per f32 row.
                let pf = b.cast::<i8>().wrapping_add(AHEAD);
                if rows == 1 {
                    tile256::<E, 1, 4, PACKED>(a, lda, b, k, o, false, pf, row_bytes);
                } else {
                    tile256::<E, 2, 4, PACKED>(a, lda, b, k, o, false, pf, row_bytes);
                }
                return;
            }
            // Passes: six rows over each half while six are left (12 accumulators each),
            // then the rest: one or two rows over the whole panel, three to five over each
            // half. Eight rows: 6 + 6 + 2 × 4 accumulators (as 4 + 4 + 4 + 4, every pass
            // had only the eight accumulators that just cover the FMA latency).
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
                let b = b.add(k0 * PANEL);
                // Every call prefetches its share of the next block, so the stream keeps
                // flowing while the later calls compute from L1.
                let next = b.cast::<i8>().wrapping_add(kn * row_bytes);
                let (share, stride) = (kn * row_bytes / calls, row_bytes / calls);
                let resume = k0 > 0;
                for (call, &(row, n, half)) in plan.iter().enumerate() {
                    // A packed group of `n` rows holds `n` values per k step.
                    let a = a.add(row * lda + if PACKED { k0 * n } else { k0 });
                    let col = 16 * (half & 1);
                    let (b, o) = (b.add(col), o.add(row * PANEL + col));
                    let pf = next.wrapping_add(call * share);
                    macro_rules! pass {
                        ($r:literal, $c:literal) => {
                            tile256::<E, $r, $c, PACKED>(a, lda, b, kn, o, resume, pf, stride)
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
    }

    /// `R` rows of `a` times `8·C` columns of a panel (`b` at the first of them; panel rows
    /// `PANEL` apart), into `out` (rows `PANEL` apart), starting from `out`'s values when
    /// `resume`; prefetches `stride` bytes per k row from `pf`. `a` holds the rows `lda`
    /// apart, or `PACKED`: `[k][R]`.
    ///
    /// # Safety
    /// AVX2/FMA/F16C available; `a`: `R` rows of `lda` values (or `k · R` packed values), `k`
    /// of them read; `b`: `k` panel rows of `8·C` readable values; `out`: `R` rows of `8·C`
    /// writable values.
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
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); C]; R];
            if resume {
                for (r, acc) in acc.iter_mut().enumerate() {
                    for (j, acc) in acc.iter_mut().enumerate() {
                        *acc = _mm256_loadu_ps(out.add(r * PANEL + 8 * j));
                    }
                }
            }
            let (mut p, mut f) = (b, pf);
            for kk in 0..k {
                // `stride` bytes of the stream ahead per k row, one prefetch per cache line.
                _mm_prefetch::<_MM_HINT_T1>(f);
                if stride > 64 {
                    _mm_prefetch::<_MM_HINT_T1>(f.wrapping_add(64));
                }
                let mut w = [_mm256_setzero_ps(); C];
                for (j, w) in w.iter_mut().enumerate() {
                    *w = E::load8(p.add(8 * j));
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let at = if PACKED { kk * R + r } else { r * lda + kk };
                    let x = _mm256_broadcast_ss(&*a.add(at));
                    for (acc, w) in acc.iter_mut().zip(&w) {
                        *acc = _mm256_fmadd_ps(x, *w, *acc);
                    }
                }
                p = p.add(PANEL);
                f = f.wrapping_add(stride);
            }
            for (r, acc) in acc.iter().enumerate() {
                for (j, acc) in acc.iter().enumerate() {
                    _mm256_storeu_ps(out.add(r * PANEL + 8 * j), *acc);
                }
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn tile512<E: Elem, const R: usize>(
        a: *const f32,
        lda: usize,
        b: *const E::T,
        k: usize,
        out: &mut [[f32; PANEL]; MR],
        first: usize,
    ) {
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; R];
            for kk in 0..k {
                let p = b.add(kk * PANEL);
                // One prefetch per cache line: a row of the panel is 128 bytes in f32.
                _mm_prefetch::<_MM_HINT_T1>(p.cast::<i8>().wrapping_add(AHEAD));
                if std::mem::size_of::<E::T>() == 4 {
                    _mm_prefetch::<_MM_HINT_T1>(p.cast::<i8>().wrapping_add(AHEAD + 64));
                }
                let w0 = E::load16(p);
                let w1 = E::load16(p.add(16));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*a.add(r * lda + kk));
                    acc[0] = _mm512_fmadd_ps(x, w0, acc[0]);
                    acc[1] = _mm512_fmadd_ps(x, w1, acc[1]);
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(out[first + r].as_mut_ptr(), acc[0]);
                _mm512_storeu_ps(out[first + r].as_mut_ptr().add(16), acc[1]);
            }
        }
    }
}

/// `dst = src` widened from f16, eight lanes at a time with F16C where the CPU has it
/// (`half`'s slice conversion paid a call per eight values: 8 % of a batch-8 f16 decode).
pub fn widen(src: &[half::f16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "widen: lengths differ");
    #[cfg(target_arch = "x86_64")]
    if simd::available() {
        // SAFETY: the CPU has F16C (checked); lengths are equal.
        unsafe { simd::widen(src, dst) };
        return;
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s.to_f32();
    }
}

/// `dst = src` rounded to f16 (to nearest, ties to even, as `half::f16::from_f32`), eight
/// lanes at a time with F16C where the CPU has it (`from_f32` per value, each a call, was
/// most of the KV-cache writes of an f16 decode step).
pub fn narrow(src: &[f32], dst: &mut [half::f16]) {
    assert_eq!(src.len(), dst.len(), "narrow: lengths differ");
    #[cfg(target_arch = "x86_64")]
    if simd::available() {
        // SAFETY: the CPU has F16C (checked); lengths are equal.
        unsafe { simd::narrow(src, dst) };
        return;
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d = half::f16::from_f32(*s);
    }
}

/// Runs `body` compiled for AVX2+FMA where the CPU has them, else as portable code: the same
/// source, so the same operations and the same results.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn fast($($arg: $ty),*) { body($($arg),*) }
                if simd::available() {
                    // SAFETY: the features were detected.
                    unsafe { fast($($arg),*) };
                    return;
                }
            }
            body($($arg),*)
        }
    };
}

/// `e^x` to about 2 ulp over the f32 range (Cephes' `expf` polynomial), written without
/// branches so loops over it vectorise.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    let x = x.clamp(-87.3, 88.7);
    // `t`'s low mantissa bits hold the integer `n` (in −126..=128): its bits give 2^n below
    // without a float-to-int conversion (Rust's saturating `as i32` compiled to a scalar
    // convert and two compares per lane, which kept the GELU and softmax loops from
    // vectorising).
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let y = p * (r * r) + r + 1.0;
    y * f32::from_bits(t.to_bits().wrapping_add(127) << 23)
}

/// `erf(x)`, Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_7) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    let y = 1.0 - poly * exp(-z * z);
    y.copysign(x)
}

multiversion! {
    /// GPT-2's tanh GELU in place, as `x·σ(2√(2/π)(x + 0.044715x³))` (the same function).
    pub fn gelu_tanh(x: &mut [f32]) {
        const C: f32 = 2.0 * 0.797_884_6;
        for v in x.iter_mut() {
            let u = C * (*v + 0.044_715 * *v * *v * *v);
            *v /= 1.0 + exp(-u);
        }
    }
}

multiversion! {
    /// The exact GELU `0.5·x·(1 + erf(x/√2))` in place.
    pub fn gelu_erf(x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

multiversion! {
    /// LayerNorm of one row: `out = (x − mean)/√(var + eps)·g + b` (biased variance).
    pub fn layer_norm(x: &[f32], g: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
        let n = x.len() as f32;
        let mean = sum8(x) / n;
        let mut sq = [0f32; 8];
        let chunks = x.chunks_exact(8);
        let tail: f32 = chunks.remainder().iter().map(|v| (v - mean) * (v - mean)).sum();
        for c in chunks {
            for (s, v) in sq.iter_mut().zip(c) {
                *s += (v - mean) * (v - mean);
            }
        }
        let var = (sq.iter().sum::<f32>() + tail) / n;
        let inv = 1.0 / (var + eps).sqrt();
        for (((o, v), g), b) in out.iter_mut().zip(x).zip(g).zip(b) {
            *o = (v - mean) * inv * g + b;
        }
    }
}

/// Sum in eight lanes (vectorises; a fixed order for a given length).
#[inline(always)]
fn sum8(x: &[f32]) -> f32 {
    let mut s = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (s, v) in s.iter_mut().zip(c) {
            *s += v;
        }
    }
    s.iter().sum::<f32>() + tail
}

/// A KV-cache element: f32, or f16 read with F16C inside attention's loops (no widened copy
/// of the cache: widening each head's keys and values into f32 buffers before attending was
/// 7 % of a batch-8 f16 decode step, more than the attention itself).
pub trait Cached: Copy {
    /// The eight values at `p` as f32, exactly.
    ///
    /// # Safety
    /// `p` points at eight readable values; with `F16C`, the CPU has F16C.
    unsafe fn lanes8<const F16C: bool>(p: *const Self) -> [f32; 8];
    /// One value as f32, exactly.
    fn scalar(self) -> f32;
}

impl Cached for f32 {
    #[inline(always)]
    unsafe fn lanes8<const F16C: bool>(p: *const f32) -> [f32; 8] {
        // SAFETY: as documented.
        unsafe { p.cast::<[f32; 8]>().read_unaligned() }
    }
    #[inline(always)]
    fn scalar(self) -> f32 {
        self
    }
}

impl Cached for half::f16 {
    #[inline(always)]
    unsafe fn lanes8<const F16C: bool>(p: *const half::f16) -> [f32; 8] {
        #[cfg(target_arch = "x86_64")]
        if F16C {
            // SAFETY: as documented.
            return unsafe { simd::f16x8(p) };
        }
        // SAFETY: as documented.
        std::array::from_fn(|i| unsafe { *p.add(i) }.to_f32())
    }
    #[inline(always)]
    fn scalar(self) -> f32 {
        self.to_f32()
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
    #[cfg(target_arch = "x86_64")]
    if simd::available() {
        #[target_feature(enable = "avx2,fma,f16c")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn fast<K: Cached>(
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
            // SAFETY: compiled with F16C, which the caller checked.
            unsafe {
                attend_with::<K, true>(q, stride, rows, d, len, keys, values, scale, scores, out)
            }
        }
        // SAFETY: the features were detected.
        unsafe { fast(q, stride, rows, d, len, keys, values, scale, scores, out) };
        return;
    }
    // SAFETY: no F16C asked for.
    unsafe { attend_with::<K, false>(q, stride, rows, d, len, keys, values, scale, scores, out) }
}

/// [`attend`]'s body.
///
/// # Safety
/// With `F16C`, the CPU must have F16C.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn attend_with<K: Cached, const F16C: bool>(
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
    // SAFETY (every block below): `F16C` as the caller vouches.
    if rows == 1 {
        // Eight blocks at a time, then four, two, one (a lone block is one chain of dependent
        // FMAs; blocks side by side are independent chains).
        let mut b = 0;
        while b + 8 <= blocks {
            unsafe { dots::<K, F16C, 1, 8>(q, stride, [0; 1], keys, d, b, scale, scores, width) };
            b += 8;
        }
        if b + 4 <= blocks {
            unsafe { dots::<K, F16C, 1, 4>(q, stride, [0; 1], keys, d, b, scale, scores, width) };
            b += 4;
        }
        if b + 2 <= blocks {
            unsafe { dots::<K, F16C, 1, 2>(q, stride, [0; 1], keys, d, b, scale, scores, width) };
            b += 2;
        }
        if b < blocks {
            unsafe { dots::<K, F16C, 1, 1>(q, stride, [0; 1], keys, d, b, scale, scores, width) };
        }
    } else {
        for r0 in (0..rows).step_by(4) {
            // A last group of fewer than four repeats its last query (not stored twice).
            let pick = [0, 1, 2, 3].map(|i| r0 + i.min(rows - 1 - r0));
            let mut b = 0;
            while b + 2 <= blocks {
                unsafe { dots::<K, F16C, 4, 2>(q, stride, pick, keys, d, b, scale, scores, width) };
                b += 2;
            }
            if b < blocks {
                unsafe { dots::<K, F16C, 4, 1>(q, stride, pick, keys, d, b, scale, scores, width) };
            }
        }
    }
    for r in 0..rows {
        let n = len + r;
        let s = &mut scores[r * width..r * width + n];
        let max = s.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        // Separate loops: exp vectorises, and the sum runs in eight lanes.
        for s in s.iter_mut() {
            *s = exp(*s - max);
        }
        let inv = 1.0 / sum8(s);
        for s in s.iter_mut() {
            *s *= inv;
        }
    }
    if d == 64 {
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

/// Scores of `R` queries (rows `pick` of `q`) against key blocks `b0..b0 + B`, times `scale`,
/// into `scores` (row stride `width`): `R·B` independent chains of eight lanes.
///
/// # Safety
/// With `F16C`, the CPU must have F16C.
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
    let qs = pick.map(|r| &q[r * stride..r * stride + d]);
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

/// Positions per block of the key cache.
pub const KEY_BLOCK: usize = 8;

/// Where dimension `dim` of position `pos` lives in one head's key blocks of `d` dimensions.
pub fn key_index(pos: usize, dim: usize, d: usize) -> usize {
    (pos / KEY_BLOCK * d + dim) * KEY_BLOCK + pos % KEY_BLOCK
}

multiversion! {
    /// `out = x + y`, compiled for AVX2 like the GELU that reads `out` next in `matmul_then`
    /// (the closure it replaces was baseline x86-64 code, storing 16 bytes at a time under
    /// GELU's 32-byte loads).
    pub fn add_into(out: &mut [f32], x: &[f32], y: &[f32]) {
        for ((o, &a), &b) in out.iter_mut().zip(x).zip(y) {
            *o = a + b;
        }
    }
}

multiversion! {
    /// `x += y`.
    pub fn add_assign(x: &mut [f32], y: &[f32]) {
        for (a, b) in x.iter_mut().zip(y) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn reference(a: &[f32], m: usize, k: usize, w: &[f32], n: usize, bias: &[f32]) -> Vec<f64> {
        let mut out = vec![0f64; m * n];
        for r in 0..m {
            for c in 0..n {
                let s: f64 = (0..k)
                    .map(|i| a[r * k + i] as f64 * w[i * n + c] as f64)
                    .sum();
                out[r * n + c] = s + bias[c] as f64;
            }
        }
        out
    }

    #[test]
    fn matmul_matches_f64_reference_for_every_shape_and_dtype() {
        for &(m, k, n) in &[
            (1, 7, 5),
            (3, 64, 17),
            (7, 33, 40),
            (13, 128, 100),
            (40, 96, 300),
            (8, 300, 70), // k in blocks of 128 and a remainder, three passes per block
        ] {
            let a = values(m * k, 1);
            let w = values(k * n, 2);
            let bias = values(n, 3);
            let want = reference(&a, m, k, &w, n, &bias);
            for (dtype, tol) in [(DType::F32, 1e-5), (DType::F16, 2e-2), (DType::BF16, 1e-1)] {
                let p = Packed::from_rows(&w, k, n, dtype);
                let mut out = vec![f32::NAN; m * n];
                matmul(&a, m, &p, Some(&bias), &mut out);
                let worst = out
                    .iter()
                    .zip(&want)
                    .map(|(&x, &y)| (x as f64 - y).abs())
                    .fold(0.0, f64::max);
                assert!(worst < tol, "{m}x{k}x{n} {dtype:?}: off by {worst}");
            }
        }
    }

    #[test]
    fn a_row_gives_the_same_bits_alone_and_in_any_batch() {
        // Fourteen rows: a tile of 12 (two packed groups of six) and a packed pair.
        let (k, n) = (200, 77);
        let a = values(14 * k, 4);
        let w = Packed::from_rows(&values(k * n, 5), k, n, DType::F32);
        let mut all = vec![0f32; 14 * n];
        matmul(&a, 14, &w, None, &mut all);
        for r in 0..14 {
            let mut one = vec![0f32; n];
            matmul(&a[r * k..(r + 1) * k], 1, &w, None, &mut one);
            assert_eq!(one, all[r * n..(r + 1) * n], "row {r}");
        }
    }

    #[test]
    fn packed_get_returns_the_rounded_weight() {
        let w = values(5 * 20, 6);
        let p = Packed::from_rows(&w, 5, 20, DType::F32);
        assert_eq!(p.get(3, 17), w[3 * 20 + 17]);
        let h = Packed::from_rows(&w, 5, 20, DType::F16);
        assert_eq!(h.get(4, 19), half::f16::from_f32(w[4 * 20 + 19]).to_f32());
        let b = Packed::from_rows(&w, 5, 20, DType::BF16);
        assert_eq!(b.get(0, 0), half::bf16::from_f32(w[0]).to_f32());
    }

    #[test]
    fn exp_erf_and_gelu_are_accurate() {
        for i in -2000..=2000 {
            let x = i as f32 * 0.04;
            let want = (x as f64).exp();
            let rel = ((exp(x) as f64 - want) / want).abs();
            assert!(rel < 3e-7, "exp({x}) off by {rel}");
        }
        let mut xs: Vec<f32> = (-800..=800).map(|i| i as f32 * 0.01).collect();
        let mut ys = xs.clone();
        gelu_erf(&mut xs);
        gelu_tanh(&mut ys);
        for (i, (g, t)) in xs.iter().zip(&ys).enumerate() {
            let x = (i as f64 - 800.0) * 0.01;
            let tanh_ref = 0.5
                * x
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh());
            assert!((*t as f64 - tanh_ref).abs() < 1e-6, "gelu_tanh({x})");
            // erf(x/√2) from its series is slow to converge; compare with the tanh form's
            // known distance from the exact GELU instead (below 1e-3 everywhere).
            assert!((*g as f64 - tanh_ref).abs() < 1e-3, "gelu_erf({x})");
        }
        // Exact values: Φ(1) = 0.841344746, Φ(−0.5) = 0.308537539.
        let mut v = [1.0f32, -0.5];
        gelu_erf(&mut v);
        assert!((v[0] as f64 - 0.841_344_746).abs() < 3e-7);
        assert!((v[1] as f64 - -0.5 * 0.308_537_539).abs() < 3e-7);
    }

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
    fn widen_matches_half() {
        let src: Vec<half::f16> = values(37, 13)
            .iter()
            .map(|&x| half::f16::from_f32(x * 1e3))
            .chain([
                half::f16::INFINITY,
                half::f16::NAN,
                half::f16::MIN_POSITIVE_SUBNORMAL,
            ])
            .collect();
        let mut dst = vec![0f32; src.len()];
        widen(&src, &mut dst);
        for (s, d) in src.iter().zip(&dst) {
            assert_eq!(s.to_f32().to_bits(), d.to_bits(), "{s}");
        }
    }

    #[test]
    fn narrow_matches_half() {
        // The special values first, so the eight-lane path converts them.
        let src: Vec<f32> = [
            f32::NAN,
            f32::NEG_INFINITY,
            1e-7,     // a subnormal f16
            2049.0,   // halfway between f16 neighbours: ties to even
            6.0e-8,   // rounds to the smallest subnormal
            -65520.0, // rounds to −∞
        ]
        .into_iter()
        .chain(values(37, 14).iter().map(|&x| x * 7e4)) // some beyond f16's range
        .collect();
        let mut dst = vec![half::f16::ZERO; src.len()];
        narrow(&src, &mut dst);
        for (s, d) in src.iter().zip(&dst) {
            let want = half::f16::from_f32(*s);
            assert!(
                want.to_bits() == d.to_bits() || (want.is_nan() && d.is_nan()),
                "{s}: {d} vs {want}"
            );
        }
    }

    #[test]
    fn layer_norm_normalises() {
        let x = values(37, 10);
        let g = values(37, 11);
        let b = values(37, 12);
        let mut out = vec![0f32; 37];
        layer_norm(&x, &g, &b, 1e-5, &mut out);
        let mean: f64 = x.iter().map(|&v| v as f64).sum::<f64>() / 37.0;
        let var: f64 = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 37.0;
        for i in 0..37 {
            let want = (x[i] as f64 - mean) / (var + 1e-5).sqrt() * g[i] as f64 + b[i] as f64;
            assert!((out[i] as f64 - want).abs() < 1e-5);
        }
    }
}
