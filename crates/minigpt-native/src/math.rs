//! Element-wise functions of a GPT-2 block: `exp`, `erf`, the two GELUs, LayerNorm, and the
//! residual additions. Each is written once and compiled twice ([`multiversion!`]): for
//! AVX2 + FMA where the CPU has them, and as portable code. The same source gives the same
//! operations, so the same results.

// Unsafe code: only `multiversion!`'s call of the AVX2 build after checking the CPU.
#![allow(unsafe_code)]

/// Defines `fn $name`, which runs `body` compiled for AVX2 + FMA where the CPU has them
/// (and `MINIGPT_NO_SIMD` is unset), else as portable code.
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
                fn fast($($arg: $ty),*) { body($($arg),*) }
                if crate::x86::simd() && !crate::portable_forced() {
                    // SAFETY: the CPU has AVX2 and FMA (checked by `simd`), the features
                    // `fast` is compiled for; it is otherwise safe code.
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

/// The largest value, in 32 lanes (vectorises into four independent chains; a fold from one
/// end was a chain of dependent scalar compares, 4 cycles a value, and one eight-lane chain
/// still waited on each compare). A maximum is exact in any order, so this is the fold's
/// value.
#[inline(always)]
pub(crate) fn max32(x: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; 32];
    let chunks = x.chunks_exact(32);
    let rest = chunks.remainder();
    for c in chunks {
        for (m, &v) in m.iter_mut().zip(c) {
            *m = m.max(v);
        }
    }
    // The 32 lanes to eight, then short rows (a prefill's first positions) in eight lanes,
    // then one by one.
    let mut m: [f32; 8] = std::array::from_fn(|i| m[i].max(m[i + 8]).max(m[i + 16].max(m[i + 24])));
    let eights = rest.chunks_exact(8);
    let tail = eights
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for c in eights {
        for (m, &v) in m.iter_mut().zip(c) {
            *m = m.max(v);
        }
    }
    m.iter().fold(tail, |a, &b| a.max(b))
}

/// Sum in eight lanes (vectorises; a fixed order for a given length).
#[inline(always)]
pub(crate) fn sum8(x: &[f32]) -> f32 {
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
    /// `x += y` (the residual connection).
    pub fn add_assign(x: &mut [f32], y: &[f32]) {
        for (a, b) in x.iter_mut().zip(y) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values as values;

    #[test]
    fn max32_is_the_largest_value_at_every_length() {
        // Lengths around the 32- and 8-lane chunks, the largest value at every place.
        for n in [1usize, 7, 8, 9, 31, 32, 33, 40, 63, 64, 100] {
            let v = values(n, n as u64);
            for at in 0..n {
                let mut x = v.clone();
                x[at] = 10.0;
                assert_eq!(max32(&x), 10.0, "n {n}, largest at {at}");
            }
            let want = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(max32(&v), want, "n {n}");
        }
        assert_eq!(max32(&[]), f32::NEG_INFINITY);
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
    fn simd_builds_give_the_portable_bits() {
        // Each element-wise function's AVX2 + FMA build against its portable build, bit for
        // bit, on lengths around the eight-lane chunks and values across GELU's range.
        use std::io::Write;
        if !crate::x86_simd_for_tests() {
            let _ = writeln!(
                std::io::stderr(),
                "note: AVX2/FMA not available (or MINIGPT_NO_SIMD set): the SIMD builds of \
                 gelu_tanh, gelu_erf, layer_norm, add_into and add_assign were not exercised"
            );
            return;
        }
        let mut cases = 0;
        for (n, seed) in [
            (1usize, 1u64),
            (7, 2),
            (8, 3),
            (9, 4),
            (31, 5),
            (256, 6),
            (1027, 7),
        ] {
            let x: Vec<f32> = values(n, seed).iter().map(|v| v * 12.0).collect();
            let (g, b) = (values(n, seed + 10), values(n, seed + 20));
            let both = |f: &dyn Fn() -> Vec<f32>| (f(), crate::on_portable_build(f));
            let cmp = |name: &str, (simd, portable): (Vec<f32>, Vec<f32>)| {
                let same = simd
                    .iter()
                    .zip(&portable)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{name}, {n} values: the SIMD build's bits differ");
            };
            cmp(
                "gelu_tanh",
                both(&|| {
                    let mut v = x.clone();
                    gelu_tanh(&mut v);
                    v
                }),
            );
            cmp(
                "gelu_erf",
                both(&|| {
                    let mut v = x.clone();
                    gelu_erf(&mut v);
                    v
                }),
            );
            cmp(
                "layer_norm",
                both(&|| {
                    let mut o = vec![0f32; n];
                    layer_norm(&x, &g, &b, 1e-5, &mut o);
                    o
                }),
            );
            cmp(
                "add_into",
                both(&|| {
                    let mut o = vec![0f32; n];
                    add_into(&mut o, &x, &g);
                    o
                }),
            );
            cmp(
                "add_assign",
                both(&|| {
                    let mut o = x.clone();
                    add_assign(&mut o, &b);
                    o
                }),
            );
            cases += 5;
        }
        let _ = writeln!(
            std::io::stderr(),
            "note: AVX2+FMA builds of gelu_tanh, gelu_erf, layer_norm, add_into and add_assign: \
             {cases} cases compared bit for bit with the portable build"
        );
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
