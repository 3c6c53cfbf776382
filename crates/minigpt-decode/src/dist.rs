//! Distributions over the vocabulary: softmax, entropy, the largest logits, and masking that
//! keeps at least one token.
//!
//! Rows reaching the processors hold finite values and −∞ only: the chain checks every row
//! (see `row_check`), so NaN and +∞ never get here.

/// Softmax in f64 (−∞ entries get 0). An all-masked row gives all zeros.
pub fn softmax(logits: &[f32]) -> Vec<f64> {
    let mut out = Vec::new();
    softmax_into(logits, &mut out);
    out
}

/// [`softmax`] into a reused buffer. −∞ entries are skipped (they would add exactly 0), so a
/// row that a filter left with few tokens costs a scan, not an `exp` per entry.
pub fn softmax_into(logits: &[f32], out: &mut Vec<f64>) {
    out.clear();
    out.resize(logits.len(), 0.0);
    let max = max_logit(logits);
    if max == f32::NEG_INFINITY {
        return;
    }
    let mut sum = 0.0f64;
    for (p, &l) in out.iter_mut().zip(logits) {
        if l != f32::NEG_INFINITY {
            *p = ((l - max) as f64).exp();
            sum += *p;
        }
    }
    for p in out.iter_mut() {
        if *p != 0.0 {
            *p /= sum;
        }
    }
}

/// 2^(j/32), j = 0..32.
const EXP2_32: [f64; 32] = {
    // 2^(j/32) correctly rounded (computed to 60 digits).
    [
        1.0,
        1.0218971486541166,
        1.0442737824274138,
        1.0671404006768237,
        1.0905077326652577,
        1.1143867425958924,
        1.1387886347566916,
        1.1637248587775775,
        1.189207115002721,
        1.215247359980469,
        1.241857812073484,
        1.2690509571917332,
        1.2968395546510096,
        1.3252366431597413,
        1.3542555469368927,
        1.383909881963832,
        std::f64::consts::SQRT_2,
        1.4451808069770467,
        1.4768261459394993,
        1.5091644275934228,
        1.5422108254079407,
        1.5759808451078865,
        1.6104903319492543,
        1.645755478153965,
        1.681792830507429,
        1.718619298122478,
        1.7562521603732995,
        1.7947090750031072,
        1.8340080864093424,
        1.8741676341103,
        1.9152065613971474,
        1.9571441241754002,
    ]
};

/// exp(x) for x ≤ 0, within 2 ulp of `f64::exp` (measured over [−708, 0] in the tests), and 0
/// below −708 (where `f64::exp` gives values under 3e-308). Branch-free, so loops over a row
/// vectorise: 2.4× libm's throughput on 50,257 values (113 vs 273 µs, measured). Processors use it for the
/// masses behind their cuts, and the loop for its statistics ([`lse_and_entropy`]).
///
/// x = (32m + j)·ln2/32 + r with |r| ≤ ln2/64 (Cody–Waite, fdlibm's split of ln 2), then
/// exp(x) = 2^m · 2^(j/32) · (degree-6 Taylor polynomial of r; the next term is < 4e-18).
#[inline(always)]
pub(crate) fn exp_neg(x: f64) -> f64 {
    const K: f64 = 32.0 / std::f64::consts::LN_2;
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5·2^52: adding it rounds to an integer
    // fdlibm's ln2_hi (21 trailing zero bits, so k·LN2_HI is exact) and ln2_lo, over 32.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000) / 32.0;
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76) / 32.0;
    let y = x.max(-708.0);
    let kk = y * K + SHIFT;
    let k = kk - SHIFT;
    let r = (y - k * LN2_HI) - k * LN2_LO;
    let ki = (kk.to_bits() as i64).wrapping_sub(SHIFT.to_bits() as i64);
    let j = (ki & 31) as usize;
    let m = ki >> 5;
    let mut p = 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let v = p * EXP2_32[j] * f64::from_bits(((m + 1023) as u64) << 52);
    if x < -708.0 { 0.0 } else { v }
}

/// `(max, logsumexp, entropy)` of the finite logits in one pass with [`exp_neg`] (what the
/// processors use; [`lse_and_entropy`] without its check for an all-masked row).
pub(crate) fn lse_entropy_fast(logits: &[f32]) -> (f64, f64, f64) {
    let max = max_logit(logits) as f64;
    let (z, zd) = exp_sums(logits, max);
    (max, max + z.ln(), z.ln() - zd / z)
}

/// `(Σ e, Σ e·d)` with `d = l − max` and `e = exp(d)` ([`exp_neg`]) over the logits (−∞ ones
/// add nothing), in four lanes so the loop vectorises; `max` is finite. Compiled for AVX2 as
/// well where the CPU has it (`multiversion`; the same operations, so the same bits).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn exp_sums(logits: &[f32], max: f64) -> (f64, f64) {
    exp_sums_body(logits, max)
}

/// [`exp_sums`]' body, for both of its compilations (and the tests' baseline one).
#[inline(always)]
fn exp_sums_body(logits: &[f32], max: f64) -> (f64, f64) {
    let term = |l: f32| {
        let d = l as f64 - max;
        let x = exp_neg(d);
        // 0·(−∞) would be NaN: masked tokens add nothing.
        (x, if x > 0.0 { x * d } else { 0.0 })
    };
    let (mut z, mut zd) = ([0.0f64; 4], [0.0f64; 4]);
    let (chunks, rest) = logits.as_chunks::<4>();
    for c in chunks {
        for j in 0..4 {
            let (x, xd) = term(c[j]);
            z[j] += x;
            zd[j] += xd;
        }
    }
    let (mut zt, mut zdt) = (z[0] + z[1] + z[2] + z[3], zd[0] + zd[1] + zd[2] + zd[3]);
    for &l in rest {
        let (x, xd) = term(l);
        zt += x;
        zdt += xd;
    }
    (zt, zdt)
}

/// The smallest float32 `s` (±∞ included) with `s as f64 >= x`: for every float32 `l`,
/// `l < s` exactly when `(l as f64) < x`, so an f64 threshold becomes an f32 compare that
/// vectorises four or eight wide. NaN gives −∞ (nothing is below it).
pub fn f32_threshold(x: f64) -> f32 {
    if x.is_nan() {
        return f32::NEG_INFINITY;
    }
    let mut s = x as f32;
    if (s as f64) < x {
        s = s.next_up();
    }
    while s > f32::NEG_INFINITY && (s.next_down() as f64) >= x {
        s = s.next_down();
    }
    s
}

/// exp(x) for x ≤ 0 in float32, 0 below −87: within 2.5e-7 relative of the exact value
/// (measured over [−87, 0] in the tests; [`FAST_EXP_ERR`] is twice that). Four lanes per SSE
/// register instead of f64's two: the fast pass of [`fast_stats`].
#[inline(always)]
pub(crate) fn exp32(x: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer
    let y = x.max(-87.0);
    let t = y * std::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    // Cody–Waite: ln 2 = 0.693359375 (exact in few bits) − 2.12194440e-4.
    let r = (y - n * 0.693_359_4) - n * -2.121_944_4e-4;
    let mut p = 1.0f32 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let ni = (t.to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32);
    let v = p * f32::from_bits(((ni + 127) as u32) << 23);
    if x < -87.0 { 0.0 } else { v }
}

/// The relative error [`exp32`] is allowed in the bounds of [`fast_stats`].
pub(crate) const FAST_EXP_ERR: f64 = 5e-7;

/// Logsumexp and entropy from [`exp32`], each with a bound on its error, so that a processor
/// can decide every token whose logit is farther than the bound from its threshold exactly as
/// the f64 computation would, and fall back to it only when a token sits inside the band.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastStats {
    /// log Σ exp(l).
    pub lse: f64,
    /// |lse − exact| ≤ lse_err.
    pub lse_err: f64,
    /// Entropy (nats) of the softmax.
    pub h: f64,
    /// |h − exact| ≤ h_err.
    pub h_err: f64,
}

/// [`FastStats`] of the finite logits in one pass. Each term exp(l − max) is off by at most
/// FAST_EXP_ERR + 2⁻²⁴·|l − max| relative (the exp, and `l − max` rounded to f32); the bounds
/// add those up, plus e^−87 for every token the exp flushes to 0.
///
/// Compiled twice, for the baseline x86-64 (SSE2: four f32 lanes) and for AVX2 (eight), and
/// chosen at run time by `multiversion`; the same operations in the same order, so both give
/// the same bits (`tests::fast_stats_paths_agree`).
#[multiversion::multiversion(targets("x86_64+avx2"))]
pub(crate) fn fast_stats(logits: &[f32]) -> FastStats {
    fast_stats_body(logits)
}

/// [`fast_stats`]' body, for both of its compilations (and the tests' baseline one).
#[inline(always)]
fn fast_stats_body(logits: &[f32]) -> FastStats {
    let max32 = max_logit(logits);
    let max = max32 as f64;
    // Per term: the exp's error, the f32 rounding of l − max (and of e·d), and the in-block
    // float32 sums below (8 terms per lane: 7 roundings of 2⁻²⁴).
    const REL: f32 = (FAST_EXP_ERR + 8.0 * 6e-8 + 1e-7) as f32;
    // Branch-free so it vectorises: −∞ and anything below −87 clamp to −88, where exp32 is 0,
    // so they add 0 to every sum (and no 0·∞).
    let term = |l: f32| {
        let d = (l - max32).max(-88.0);
        let e = exp32(d);
        let er = e * (REL + 6e-8 * -d);
        (e, er, e * d, er * -d)
    };
    // Blocks of 64 in float32 lanes (four times f64's width), then f64 across blocks.
    let (mut z, mut zerr, mut s, mut serr) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let (blocks, rest) = logits.as_chunks::<64>();
    for b in blocks {
        let mut a = [[0.0f32; 8]; 4];
        for k in 0..8 {
            for j in 0..8 {
                let (e, er, ed, eder) = term(b[8 * k + j]);
                a[0][j] += e;
                a[1][j] += er;
                a[2][j] += ed;
                a[3][j] += eder;
            }
        }
        let sum8 = |v: [f32; 8]| v.iter().map(|&x| x as f64).sum::<f64>();
        z += sum8(a[0]);
        zerr += sum8(a[1]);
        s += sum8(a[2]);
        serr += sum8(a[3]);
    }
    for &l in rest {
        let (e, er, ed, eder) = term(l);
        z += e as f64;
        zerr += er as f64;
        s += ed as f64;
        serr += eder as f64;
    }
    // Flushed tokens, and the f64 rounding of ~V additions.
    let n = logits.len() as f64;
    zerr += n * 1.7e-38 + n * 1.2e-16 * z;
    serr += n * 1.7e-38 * 100.0 + n * 1.2e-16 * s.abs();
    let rz = zerr / z;
    // log(Z(1 ± rz)) = log Z ± ~rz; H = log Z − S/Z.
    let lse_err = 1.01 * rz + 1e-15 * max.abs();
    let h = z.ln() - s / z;
    let h_err = lse_err + (serr + s.abs() * rz) / (z * (1.0 - rz));
    FastStats {
        lse: max + z.ln(),
        lse_err,
        h,
        h_err,
    }
}

/// Masks logits below a threshold known only to lie in `[lo, hi]`: when no finite logit lies
/// in that band, every token is on the same side of any threshold in it, so the mask is
/// exact; returns false (and changes nothing) when one does. Keeps the tokens tied at the top
/// when nothing reaches the threshold, as [`mask_below`].
pub(crate) fn mask_below_banded(logits: &mut [f32], lo: f64, hi: f64) -> bool {
    let (tlo, thi) = (f32_threshold(lo), f32_threshold(hi));
    if count_in(logits, tlo, thi) > 0 {
        return false;
    }
    mask_below(logits, lo);
    true
}

/// How many logits lie in `[lo, hi)` (a counting pass that vectorises).
pub(crate) fn count_in(logits: &[f32], lo: f32, hi: f32) -> usize {
    let mut lanes = [0u32; 8];
    let (chunks, rest) = logits.as_chunks::<8>();
    for c in chunks {
        for j in 0..8 {
            lanes[j] += (c[j] >= lo && c[j] < hi) as u32;
        }
    }
    let n: u32 =
        lanes.iter().sum::<u32>() + rest.iter().filter(|&&l| l >= lo && l < hi).count() as u32;
    n as usize
}

/// The largest logit (−∞ for an empty or all-masked row); NaN never wins. Eight lanes, so the
/// comparison compiles to vector max instructions.
pub fn max_logit(logits: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = logits.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (m, &x) in lanes.iter_mut().zip(c) {
            if x > *m {
                *m = x;
            }
        }
    }
    let mut best = f32::NEG_INFINITY;
    for &x in lanes.iter().chain(rest) {
        if x > best {
            best = x;
        }
    }
    best
}

/// The k-th largest finite logit counted with multiplicity (k ≥ 1), or −∞ when fewer than k
/// logits are finite. O(V): values above a running threshold go to `buf`; when it holds 4k
/// of them, it is cut back to its k largest (and their ties), raising the threshold.
pub fn kth_largest(logits: &[f32], k: usize, buf: &mut Vec<f32>) -> f32 {
    debug_assert!(k >= 1);
    buf.clear();
    let cap = 4 * k.max(16);
    let mut threshold = f32::NEG_INFINITY;
    let mut take = |x: f32, threshold: &mut f32| {
        // Values equal to the threshold cannot change the k-th largest once `buf` holds k
        // values at or above it; −∞ never enters.
        if x > *threshold {
            buf.push(x);
            if buf.len() >= cap {
                let (_, kth, _) = buf.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
                *threshold = *kth;
                buf.retain(|&v| v >= *threshold);
            }
        }
    };
    // Sixteen at a time: a vectorised test skips the chunks with nothing above the threshold
    // (nearly all of them once it has risen), so the branchy loop runs on few tokens.
    let (chunks, rest) = logits.as_chunks::<16>();
    for c in chunks {
        let mut any = false;
        for &x in c {
            any |= x > threshold;
        }
        if any {
            for &x in c {
                take(x, &mut threshold);
            }
        }
    }
    for &x in rest {
        take(x, &mut threshold);
    }
    if buf.len() < k {
        return f32::NEG_INFINITY;
    }
    let (_, kth, _) = buf.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    *kth
}

/// `log Σ exp(logits)` in f64 (−∞ for an all-masked row), as [`lse_and_entropy`] computes it.
pub fn log_sum_exp(logits: &[f32]) -> f64 {
    lse_and_entropy(logits).0
}

/// `logits[i] - logsumexp(logits)` in f64.
pub fn log_prob(logits: &[f32], i: usize) -> f64 {
    logits[i] as f64 - log_sum_exp(logits)
}

/// `(logsumexp(logits), entropy of softmax(logits))` in one pass over the row (f64): the loop's
/// per-step statistics of the raw distribution, and `score`'s log-probabilities.
///
/// With [`exp_neg`] (within 2 ulp of `f64::exp`) in four lanes: libm's `exp`, one call for each
/// of GPT-2's 50,257 tokens per row and step, was the largest part of the sampling chains
/// (crates/minigpt-native/PERFORMANCE.md, "Sampling chains"). H = log Z − Σ e·d / Z with
/// Z = Σ e, e = exp(d), d = l − max.
pub fn lse_and_entropy(logits: &[f32]) -> (f64, f64) {
    let max = max_logit(logits) as f64;
    if max == f64::NEG_INFINITY {
        return (max, 0.0);
    }
    let (z, zd) = exp_sums(logits, max);
    (max + z.ln(), z.ln() - zd / z)
}

/// Shannon entropy (nats) of softmax(logits).
pub fn entropy(logits: &[f32]) -> f64 {
    entropy_of(&softmax(logits))
}

/// Shannon entropy (nats) of a probability vector.
pub fn entropy_of(probs: &[f64]) -> f64 {
    -probs
        .iter()
        .filter(|&&p| p > 0.0)
        .map(|&p| p * p.ln())
        .sum::<f64>()
}

/// Index of the largest logit; the first one on ties (as `torch.argmax`). NaN never wins.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best = i;
            best_v = v;
        }
    }
    best as u32
}

/// Sets every logit below `threshold` (compared in f64) to −∞, except that when no token
/// reaches it, the tokens tied at the row's maximum stay: a processor never leaves an empty
/// distribution. transformers' `min_tokens_to_keep = 1` keeps the same tokens in epsilon and
/// eta sampling. Two branch-free passes (max, then the mask), so both vectorise.
pub fn mask_below(logits: &mut [f32], threshold: f64) {
    let best = max_logit(logits);
    if best == f32::NEG_INFINITY {
        return;
    }
    let t = f32_threshold(threshold);
    if best < t {
        for l in logits.iter_mut() {
            if *l != best {
                *l = f32::NEG_INFINITY;
            }
        }
        return;
    }
    for l in logits.iter_mut() {
        if *l < t {
            *l = f32::NEG_INFINITY;
        }
    }
}

/// True when some logit is neither −∞ nor NaN nor +∞ (stops at the first).
pub fn has_finite(logits: &[f32]) -> bool {
    logits.iter().any(|l| l.is_finite())
}

#[cfg(test)]
mod tests {
    /// The AVX2 compilation of `fast_stats` (where the CPU has it) and the baseline one give
    /// the same bits.
    #[test]
    fn fast_stats_paths_agree() {
        let mut rng = crate::Rng::new(21);
        for case in 0..40 {
            let n = [1, 7, 64, 1000, 50_257][case % 5];
            let row: Vec<f32> = (0..n)
                .map(|_| {
                    let r = rng.next_f64();
                    if case % 3 == 1 && r < 0.2 {
                        f32::NEG_INFINITY
                    } else {
                        ((r - 0.5) * [4.0, 40.0, 400.0][case % 3]) as f32
                    }
                })
                .collect();
            let (a, b) = (fast_stats(&row), fast_stats_body(&row));
            let bits = |f: FastStats| [f.lse, f.lse_err, f.h, f.h_err].map(f64::to_bits);
            assert_eq!(bits(a), bits(b), "case {case}");
        }
    }

    use super::*;
    const NEG: f32 = f32::NEG_INFINITY;

    #[test]
    fn softmax_and_entropy() {
        let p = softmax(&[0.0, 0.0, NEG, 0.0]);
        assert_eq!(p[2], 0.0);
        assert!((p[0] - 1.0 / 3.0).abs() < 1e-15);
        assert!((entropy(&[0.0, 0.0, NEG, 0.0]) - 3f64.ln()).abs() < 1e-12);
        assert_eq!(entropy(&[5.0]), 0.0);
        assert_eq!(softmax(&[NEG, NEG]), vec![0.0, 0.0]);
    }

    #[test]
    fn exp_sums_paths_agree() {
        // The AVX2 build (where the CPU has it) gives the baseline build's bits.
        let mut rng = crate::Rng::new(9);
        for case in 0..40 {
            let n = 1 + (rng.next_u64() % 60000) as usize;
            let row: Vec<f32> = (0..n)
                .map(|_| {
                    if rng.next_f64() < 0.3 {
                        NEG
                    } else {
                        ((rng.next_f64() - 0.5) * 30.0) as f32
                    }
                })
                .collect();
            let max = max_logit(&row) as f64;
            if max == f64::NEG_INFINITY {
                continue;
            }
            let (a, b) = (exp_sums(&row, max), exp_sums_body(&row, max));
            assert_eq!(
                (a.0.to_bits(), a.1.to_bits()),
                (b.0.to_bits(), b.1.to_bits()),
                "case {case}"
            );
        }
    }

    #[test]
    fn one_pass_statistics_agree() {
        let l = [0.3f32, -1.2, NEG, 2.0, 0.0];
        let (lse, h) = lse_and_entropy(&l);
        assert!((lse - log_sum_exp(&l)).abs() < 1e-12);
        // `entropy` subtracts the max in f32, this one in f64: they agree to f32 rounding.
        assert!((h - entropy(&l)).abs() < 1e-6);
        assert_eq!(lse_and_entropy(&[NEG, NEG]).1, 0.0);
    }

    #[test]
    fn argmax_first_on_ties_and_ignores_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5, 0.1]), 1);
        assert_eq!(argmax(&[NEG, NEG, -1.0]), 2);
    }

    #[test]
    fn mask_keeps_the_top_when_nothing_reaches_the_threshold() {
        let mut l = [1.0, 2.0, 0.5];
        mask_below(&mut l, 5.0);
        assert_eq!(l, [NEG, 2.0, NEG]);
        // Every token at the maximum stays, as transformers' min_tokens_to_keep keeps ties.
        let mut l = [2.0, 1.0, 2.0, NEG];
        mask_below(&mut l, 5.0);
        assert_eq!(l, [2.0, NEG, 2.0, NEG]);
        let mut l = [NEG, NEG];
        mask_below(&mut l, 0.0);
        assert_eq!(l, [NEG, NEG]);
        // The threshold itself is kept.
        let mut l = [1.0, 2.0, 0.5, NEG];
        mask_below(&mut l, 1.0);
        assert_eq!(l, [1.0, 2.0, NEG, NEG]);
    }

    #[test]
    fn max_and_kth_largest() {
        let mut buf = Vec::new();
        assert_eq!(max_logit(&[]), NEG);
        assert_eq!(max_logit(&[NEG, f32::NAN, -3.0]), -3.0);
        let row: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1000) as f32).collect();
        assert_eq!(max_logit(&row), 999.0);
        for k in [1, 2, 40, 63, 64, 65, 999, 1000] {
            assert_eq!(kth_largest(&row, k, &mut buf), (1000 - k) as f32, "k = {k}");
        }
        assert_eq!(kth_largest(&row, 1001, &mut buf), NEG);
        // Ascending input (every value raises the threshold) and ties counted with multiplicity:
        // 1666 twice (4998, 4999), then 1665 three times.
        let up: Vec<f32> = (0..5000).map(|i| (i / 3) as f32).collect();
        assert_eq!(kth_largest(&up, 2, &mut buf), 1666.0);
        assert_eq!(kth_largest(&up, 3, &mut buf), 1665.0);
        assert_eq!(kth_largest(&up, 5, &mut buf), 1665.0);
        assert_eq!(kth_largest(&up, 6, &mut buf), 1664.0);
        assert_eq!(kth_largest(&[1.0; 500], 40, &mut buf), 1.0);
        assert_eq!(kth_largest(&[NEG, 2.0, NEG, 1.0], 2, &mut buf), 1.0);
        assert_eq!(kth_largest(&[NEG, 2.0, NEG, 1.0], 3, &mut buf), NEG);
    }

    #[test]
    fn fast_exp_is_within_two_ulp_of_libm() {
        for (j, &t) in EXP2_32.iter().enumerate() {
            assert_eq!(t, 2f64.powf(j as f64 / 32.0), "2^({j}/32)");
        }
        let mut worst = 0u64;
        for i in 0..2_000_000u64 {
            let x = -(i as f64) * 3.54e-4 - (i % 7) as f64 * 1e-9;
            let (a, b) = (x.exp(), exp_neg(x));
            worst = worst.max(a.to_bits().abs_diff(b.to_bits()));
        }
        assert!(worst <= 2, "{worst} ulp");
        assert_eq!(exp_neg(0.0), 1.0);
        assert_eq!(exp_neg(-800.0), 0.0);
        assert_eq!(exp_neg(f64::NEG_INFINITY), 0.0);
        let (m, lse, _) = lse_entropy_fast(&[1.0, NEG, 1.0]);
        assert_eq!(m, 1.0);
        assert!((lse - 1.0 - 2f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn f32_threshold_is_exact() {
        let mut rng = crate::Rng::new(3);
        for _ in 0..20_000 {
            let x = (rng.next_f64() - 0.5) * 10f64.powi((rng.next_u64() % 12) as i32 - 4);
            let t = f32_threshold(x);
            let l = x as f32;
            for l in [l, l.next_up(), l.next_down(), t, t.next_down(), t.next_up()] {
                assert_eq!(l < t, (l as f64) < x, "x = {x}, l = {l}, t = {t}");
            }
        }
        assert_eq!(f32_threshold(1.0), 1.0);
        assert_eq!(f32_threshold(f64::INFINITY), f32::INFINITY);
        assert_eq!(f32_threshold(f64::NEG_INFINITY), f32::NEG_INFINITY);
        assert_eq!(f32_threshold(1e300), f32::INFINITY);
        assert_eq!(f32_threshold(-1e300), f32::MIN);
    }

    #[test]
    fn fast_exp_and_stats_stay_inside_their_bounds() {
        let mut worst = 0.0f64;
        for i in 0..1_000_000 {
            let x = -(i as f32) * 8.7e-5;
            let (a, b) = ((x as f64).exp(), exp32(x) as f64);
            worst = worst.max(((a - b) / a).abs());
        }
        assert!(worst <= FAST_EXP_ERR / 2.0, "{worst}");
        assert_eq!(exp32(-100.0), 0.0);
        assert_eq!(exp32(f32::NEG_INFINITY), 0.0);
        let mut rng = crate::Rng::new(11);
        for case in 0..200 {
            let n = 1 + (rng.next_u64() % 5000) as usize;
            let scale = [0.5, 3.0, 30.0][case % 3];
            let row: Vec<f32> = (0..n)
                .map(|_| {
                    if rng.next_f64() < 0.2 {
                        f32::NEG_INFINITY
                    } else {
                        ((rng.next_f64() - 0.5) * scale) as f32
                    }
                })
                .collect();
            if !row.iter().any(|l| l.is_finite()) {
                continue;
            }
            let f = fast_stats(&row);
            let (lse, h) = lse_and_entropy(&row);
            assert!(
                (f.lse - lse).abs() <= f.lse_err,
                "case {case}: {} vs {lse} ± {}",
                f.lse,
                f.lse_err
            );
            assert!(
                (f.h - h).abs() <= f.h_err,
                "case {case}: {} vs {h} ± {}",
                f.h,
                f.h_err
            );
            assert!(f.lse_err < 1e-5 && f.h_err < 1e-4, "{f:?}");
        }
    }

    #[test]
    fn log_prob_of_uniform() {
        assert!((log_prob(&[0.0f32; 4], 2) - 0.25f64.ln()).abs() < 1e-12);
    }
}
