//! Speed of the attention kernel on each build the CPU has, at prefill and decode shapes of
//! head size 64: a block of `rows` queries against `len` cached positions, best of repeats.
//! `cargo run --release -p minigpt-native --example attention_speed`.

use std::time::Instant;

use minigpt_native::Kernel;
use minigpt_native::attention::{KEY_BLOCK, attend_on};

fn main() {
    let d = 64;
    for (len, rows) in [
        (1usize, 16usize),
        (64, 16),
        (512, 16),
        (1009, 16),
        (9, 1),
        (33, 1),
        (55, 1),
        (100, 1),
        (1000, 1),
    ] {
        let seen = len + rows - 1;
        let width = seen.next_multiple_of(KEY_BLOCK);
        let value = |i: usize| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5;
        let q: Vec<f32> = (0..rows * d).map(value).collect();
        let keys: Vec<f32> = (0..width * d).map(|i| value(i + 1)).collect();
        let vals: Vec<f32> = (0..seen * d).map(|i| value(i + 2)).collect();
        let mut scores = vec![0f32; rows * width];
        let mut out = vec![0f32; rows * d];
        let mut line = format!("len {len:>5} rows {rows:>2}");
        // The portable build is the reference, not a speed path (it calls libm for every FMA
        // where the target has no FMA).
        let only = std::env::args().nth(1);
        for kernel in [Kernel::Avx2, Kernel::Avx512].into_iter().filter(|k| {
            k.supported()
                && only
                    .as_ref()
                    .is_none_or(|o| o.eq_ignore_ascii_case(&format!("{k:?}")))
        }) {
            let mut run = || {
                attend_on(
                    kernel,
                    &q,
                    d,
                    rows,
                    d,
                    len,
                    &keys,
                    &vals,
                    0.125,
                    &mut scores,
                    &mut out,
                )
            };
            run();
            let pairs = rows * len + rows * (rows - 1) / 2;
            let reps = (2e7 / pairs as f64).clamp(20.0, 100_000.0) as usize;
            let mut best = f64::INFINITY;
            for _ in 0..5 {
                let t = Instant::now();
                for _ in 0..reps {
                    run();
                }
                best = best.min(t.elapsed().as_secs_f64() / reps as f64);
            }
            line += &format!(
                "   {kernel:?} {:8.2} µs {:6.2} ns/pair",
                best * 1e6,
                best * 1e9 / pairs as f64
            );
        }
        println!("{line}");
    }
}
