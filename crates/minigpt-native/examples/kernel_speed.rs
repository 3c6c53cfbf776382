//! Speed of the native engine's matrix multiply at GPT-2-small shapes: GB/s of weights at
//! batch 1 and GFLOP/s at larger batches, best of repeated runs.
//! `cargo run --release -p minigpt-native --example kernel_speed [-- M...]`.

use std::time::Instant;

use minigpt_native::DType;
use minigpt_native::matmul::matmul;
use minigpt_native::pack::Packed;

fn main() {
    // Batch sizes from the command line (`-- 16 64`), or the defaults.
    let ms: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let ms = if ms.is_empty() {
        vec![1, 8, 128, 512]
    } else {
        ms
    };
    let shapes = [(768, 2304), (768, 3072), (3072, 768), (768, 50257)];
    for dtype in [DType::F32, DType::F16] {
        for &(k, n) in &shapes {
            let w = Packed::new(k, n, dtype, |r, c| ((r * 31 + c * 17) % 97) as f32 * 1e-3);
            for &m in &ms {
                let a: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1).collect();
                let mut out = vec![0f32; m * n];
                matmul(&a, m, &w, None, &mut out);
                // Best of the repeats: this machine's neighbours add noise, never speed.
                let reps = (2e9 / (m * k * n) as f64).clamp(5.0, 200.0) as usize;
                let mut s = f64::INFINITY;
                for _ in 0..reps {
                    let t = Instant::now();
                    matmul(&a, m, &w, None, &mut out);
                    s = s.min(t.elapsed().as_secs_f64());
                }
                println!(
                    "{:>4} m={m:<4} k={k:<5} n={n:<6} {:8.3} ms  {:6.1} GB/s  {:6.1} GFLOP/s",
                    dtype.name(),
                    s * 1e3,
                    w.bytes() as f64 / s / 1e9,
                    2.0 * (m * k * n) as f64 / s / 1e9
                );
            }
        }
    }
}
