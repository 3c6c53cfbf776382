//! The packed-weight matrix multiply: `out = a · w + bias`, f32 activations times f32, f16 or
//! bf16 weights, f32 accumulation, split over the thread team by panels of output columns.
//!
//! **Every output element is computed by the same sequence of floating-point operations
//! whatever the number of rows, the row's place in the batch or the thread that runs it**:
//! `out[r][j]` is one fused multiply-add chain over `k` in order, then `+ bias[j]`. So a row's
//! logits are bit-identical alone, in any batch, in a prefill or in a cached step. The
//! micro-kernels ([`Kernel`]: AVX-512, AVX2, portable `f32::mul_add`) are all exactly rounded
//! fused multiply-adds in the same order, so they agree to the bit too (the `kernels` test
//! runs each one the CPU has against the portable one).

// Unsafe code: raw pointers into the left-hand side and the packed panels for the micro-
// kernels, and one output pointer shared by the threads, each writing its own panels.
#![allow(unsafe_code)]

use std::sync::OnceLock;

use crate::dtype::DType;
use crate::math::add_into;
use crate::pack::{MR, PANEL, Packed};

/// Which micro-kernels a multiply runs on (attention takes the same choice: `attention::attend_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Plain Rust (`f32::mul_add`), on any CPU.
    Portable,
    /// AVX2 + FMA + F16C (x86-64).
    Avx2,
    /// AVX-512F (x86-64).
    Avx512,
}

impl Kernel {
    /// Every kernel, portable first.
    pub const ALL: [Self; 3] = [Self::Portable, Self::Avx2, Self::Avx512];

    /// The kernel [`matmul`] uses, chosen once: the widest the CPU has, unless an environment
    /// variable narrows it (`MINIGPT_NO_SIMD`: portable; `MINIGPT_NO_AVX512`: AVX2 at most).
    pub fn detected() -> Self {
        static KERNEL: OnceLock<Kernel> = OnceLock::new();
        *KERNEL.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            if crate::x86::simd() {
                let no_avx512 = std::env::var_os("MINIGPT_NO_AVX512").is_some();
                return if crate::x86::has_avx512() && !no_avx512 {
                    Self::Avx512
                } else {
                    Self::Avx2
                };
            }
            Self::Portable
        })
    }

    /// Whether this CPU can run the kernel (whatever the environment variables say).
    pub fn supported(self) -> bool {
        match self {
            Self::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => crate::x86::has_avx2(),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => crate::x86::has_avx512(),
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx2 | Self::Avx512 => false,
        }
    }

    /// Whether a multiply of `m` rows packs them for the AVX2 tiles (three or more rows;
    /// `MINIGPT_NO_PACK` turns packing off, for comparisons).
    fn packs(self, m: usize) -> bool {
        static NO_PACK: OnceLock<bool> = OnceLock::new();
        self == Self::Avx2
            && m > 2
            && !*NO_PACK.get_or_init(|| std::env::var_os("MINIGPT_NO_PACK").is_some())
    }
}

/// A raw output pointer shared by the threads of one multiply; each writes its own columns.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: the threads of `matmul_then` write disjoint column ranges (whole panels) of the
// output, which the caller lends mutably for the whole multiply.
unsafe impl Send for Out {}
// SAFETY: as above.
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
/// element-wise activation such as [`crate::math::gelu_tanh`], run by the threads of the
/// multiply while the values are in cache instead of in a pass of its own).
pub fn matmul_then(
    a: &[f32],
    m: usize,
    w: &Packed,
    bias: Option<&[f32]>,
    then: Option<fn(&mut [f32])>,
    out: &mut [f32],
) {
    matmul_with(Kernel::detected(), a, m, w, bias, then, out);
}

/// [`matmul_then`] on a given micro-kernel (tests and benchmarks compare kernels with it).
///
/// # Panics
/// When the CPU cannot run `kernel` ([`Kernel::supported`]), or on buffers of the wrong size.
pub fn matmul_with(
    kernel: Kernel,
    a: &[f32],
    m: usize,
    w: &Packed,
    bias: Option<&[f32]>,
    then: Option<fn(&mut [f32])>,
    out: &mut [f32],
) {
    assert!(
        kernel.supported(),
        "this CPU cannot run the {kernel:?} kernel"
    );
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
    // (see `x86::avx2::pack_rows`).
    let mut packed = PACKED_A.with_borrow_mut(std::mem::take);
    let pack = kernel.packs(m);
    let a: &[f32] = if pack {
        #[cfg(target_arch = "x86_64")]
        crate::x86::avx2::pack_rows(&a[..m * k], k, &mut packed);
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
                // SAFETY: `a` holds rows `row..row + rows` of `k` values (`m · k` values, packed
                // or not, checked above); the kernel is supported (checked above).
                unsafe {
                    panel_tile(
                        kernel,
                        a.as_ptr().add(row * k),
                        k,
                        rows,
                        pack,
                        w,
                        p,
                        &mut tile,
                    )
                };
                let col = p * PANEL;
                let cols = PANEL.min(n - col);
                for (r, t) in tile.iter().enumerate().take(rows) {
                    // SAFETY: `(row + r) · n + col + cols ≤ m · n ≤ out.len()` (checked
                    // above); columns of panel `p` are written by this thread only, and
                    // `out` is borrowed mutably for the whole multiply.
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
    let team = crate::team::team();
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

/// One register tile: `rows` (≤ MR) rows of `a` times panel `p`, on `kernel`.
///
/// # Safety
/// `a` must point at `rows` rows of `lda` readable values each (or, `packed`, the groups of
/// `x86::avx2::pack_rows`); the CPU must support `kernel`.
#[allow(clippy::too_many_arguments)]
unsafe fn panel_tile(
    kernel: Kernel,
    a: *const f32,
    lda: usize,
    rows: usize,
    packed: bool,
    w: &Packed,
    p: usize,
    out: &mut [[f32; PANEL]; MR],
) {
    let k = w.k;
    #[cfg(target_arch = "x86_64")]
    {
        use crate::x86::{BF16, F16, F32, avx2, avx512};
        // Panel `p`: `k` rows of PANEL values in the stored type, at its buffer's address.
        let (wide, half) = w.panel_ptrs(p);
        match kernel {
            Kernel::Avx512 => {
                // SAFETY: the CPU has AVX-512F (the caller's contract); `a` as the caller
                // vouches; panel `p` holds `k` rows of PANEL values of the dtype's buffer.
                unsafe {
                    match w.dtype() {
                        DType::F32 => avx512::tile::<F32>(a, lda, rows, wide, k, out),
                        DType::F16 => avx512::tile::<F16>(a, lda, rows, half, k, out),
                        DType::BF16 => avx512::tile::<BF16>(a, lda, rows, half, k, out),
                    }
                }
                return;
            }
            Kernel::Avx2 => {
                // SAFETY: the CPU has AVX2, FMA and F16C (the caller's contract); `a` as the
                // caller vouches; panel `p` holds `k` rows of PANEL values of the dtype's
                // buffer.
                unsafe {
                    match w.dtype() {
                        DType::F32 => avx2::tile::<F32>(a, lda, rows, packed, wide, k, out),
                        DType::F16 => avx2::tile::<F16>(a, lda, rows, packed, half, k, out),
                        DType::BF16 => avx2::tile::<BF16>(a, lda, rows, packed, half, k, out),
                    }
                }
                return;
            }
            Kernel::Portable => {}
        }
    }
    let _ = (kernel, packed); // the portable tile reads `a` unpacked (it is never packed for it)
    let panel = w.panel(p);
    for (r, acc) in out.iter_mut().enumerate().take(rows) {
        *acc = [0.0; PANEL];
        for kk in 0..k {
            // SAFETY: `r < rows` and `kk < k ≤ lda`: one of the values the caller vouches for.
            let x = unsafe { *a.add(r * lda + kk) };
            for (lane, v) in acc.iter_mut().enumerate() {
                *v = x.mul_add(panel.get(kk * PANEL + lane), *v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values as values;

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
}

/// Every micro-kernel this CPU can run gives the portable kernel's bits (they are the same
/// fused multiply-add chains), for every weight type and for batches that take each tiling
/// path: one and two rows, passes of six, packed groups, several k-blocks. A kernel the CPU
/// lacks is not exercised; its test then says so on stderr (written past the test harness's
/// capture, so it shows without `--nocapture`) instead of passing silently.
#[cfg(test)]
mod kernel_tests {
    use std::io::Write;

    use super::{Kernel, matmul_with};
    use crate::DType;
    use crate::math::gelu_tanh;
    use crate::pack::Packed;
    use crate::test_values as values;

    /// Runs `kernel` against the portable kernel on every shape and dtype, or reports that the
    /// CPU cannot run it. Returns the number of products compared.
    fn same_bits_as_portable(kernel: Kernel, name: &str) -> usize {
        if !kernel.supported() {
            let msg = format!(
                "{name} not available on this CPU: the {name} kernels were not exercised \
                 (only checked where the CPU supports them)"
            );
            // Past the harness's capture (it only captures `print!`/`eprint!`), so it is seen.
            let _ = writeln!(std::io::stderr(), "note: {msg}");
            return 0;
        }
        let mut compared = 0;
        for m in (1..=14).chain([25, 40]) {
            for &(k, n) in &[(7usize, 5usize), (33, 40), (128, 77), (300, 70)] {
                let a = values(m * k, 1 + m as u64);
                let w = values(k * n, 2);
                let bias = values(n, 3);
                for dtype in [DType::F32, DType::F16, DType::BF16] {
                    let p = Packed::from_rows(&w, k, n, dtype);
                    let thens = [None, Some(gelu_tanh as fn(&mut [f32]))];
                    for (then, bias) in thens.into_iter().zip([Some(&bias[..]), None]) {
                        // One past the output must stay untouched (a partial last panel).
                        let mut want = vec![f32::NAN; m * n + 1];
                        let mut got = vec![f32::NAN; m * n + 1];
                        matmul_with(Kernel::Portable, &a, m, &p, bias, then, &mut want);
                        matmul_with(kernel, &a, m, &p, bias, then, &mut got);
                        assert!(got[m * n].is_nan(), "{name}: wrote past the output");
                        let same = want
                            .iter()
                            .zip(&got)
                            .all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(
                            same,
                            "{name}: {m}x{k}x{n} {dtype:?}: bits differ from portable"
                        );
                        compared += 1;
                    }
                }
            }
        }
        compared
    }

    #[test]
    fn avx2_kernels_give_the_portable_bits_where_the_cpu_has_avx2() {
        let n = same_bits_as_portable(Kernel::Avx2, "AVX2");
        if n > 0 {
            let _ = writeln!(
                std::io::stderr(),
                "note: AVX2 tiles: {n} products compared bit for bit with the portable kernel"
            );
        }
        let _ = writeln!(
            std::io::stderr(),
            "note: this CPU runs the {:?} kernel (supported: {:?})",
            Kernel::detected(),
            Kernel::ALL
                .iter()
                .filter(|k| k.supported())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn avx512_kernels_give_the_portable_bits_where_the_cpu_has_avx512() {
        let n = same_bits_as_portable(Kernel::Avx512, "AVX-512");
        if n > 0 {
            let _ = writeln!(
                std::io::stderr(),
                "note: AVX-512 tiles: {n} products compared bit for bit with the portable kernel"
            );
        }
    }
}
