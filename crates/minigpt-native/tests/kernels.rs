//! Every matrix-multiply micro-kernel this CPU can run gives the portable kernel's bits (they
//! are the same fused multiply-add chains), for every weight type and for batches that take
//! each tiling path: one and two rows, passes of six, packed groups, several k-blocks.
//!
//! A kernel the CPU lacks is not exercised; its test then says so on stderr (written past the
//! test harness's capture, so it shows without `--nocapture`) instead of passing silently.

use std::io::Write;

use minigpt_native::math::gelu_tanh;
use minigpt_native::matmul::matmul_with;
use minigpt_native::pack::Packed;
use minigpt_native::{DType, Kernel};

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
        eprintln!("{msg}");
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
                for then in [None, Some(gelu_tanh as fn(&mut [f32]))] {
                    let mut want = vec![f32::NAN; m * n];
                    let mut got = vec![f32::NAN; m * n];
                    matmul_with(Kernel::Portable, &a, m, &p, Some(&bias), then, &mut want);
                    matmul_with(kernel, &a, m, &p, Some(&bias), then, &mut got);
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
    eprintln!("AVX2: {n} products compared with the portable kernel");
}

#[test]
fn avx512_kernels_give_the_portable_bits_where_the_cpu_has_avx512() {
    let n = same_bits_as_portable(Kernel::Avx512, "AVX-512");
    eprintln!("AVX-512: {n} products compared with the portable kernel");
}

#[test]
fn the_detected_kernel_is_one_the_cpu_supports() {
    let k = Kernel::detected();
    assert!(k.supported(), "{k:?}");
    let _ = writeln!(
        std::io::stderr(),
        "note: this CPU runs the {k:?} kernel (supported: {:?})",
        Kernel::ALL
            .iter()
            .filter(|k| k.supported())
            .collect::<Vec<_>>()
    );
}
