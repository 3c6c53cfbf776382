//! Distributions over the vocabulary: softmax, entropy, and masking that keeps one token.

/// Softmax in f64 (−∞ entries get 0). An all-masked row gives all zeros.
pub fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY || max.is_nan() {
        return vec![0.0; logits.len()];
    }
    let mut out: Vec<f64> = logits.iter().map(|&l| ((l - max) as f64).exp()).collect();
    let sum: f64 = out.iter().sum();
    out.iter_mut().for_each(|p| *p /= sum);
    out
}

/// `log Σ exp(logits)` in f64 (−∞ for an all-masked row).
pub fn log_sum_exp(logits: &[f32]) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    if max == f64::NEG_INFINITY {
        return max;
    }
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    max + sum.ln()
}

/// `logits[i] - logsumexp(logits)` in f64.
pub fn log_prob(logits: &[f32], i: usize) -> f64 {
    logits[i] as f64 - log_sum_exp(logits)
}

/// `(logsumexp(logits), entropy of softmax(logits))` in one pass over the row (f64): the loop's
/// per-step statistics of the raw distribution.
pub fn lse_and_entropy(logits: &[f32]) -> (f64, f64) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    if max == f64::NEG_INFINITY {
        return (max, 0.0);
    }
    let (mut z, mut zl) = (0.0f64, 0.0f64);
    for &l in logits.iter().filter(|l| l.is_finite()) {
        let d = l as f64 - max;
        let e = d.exp();
        z += e;
        zl += e * d;
    }
    // H = log Z - E[l - max] with Z = Σ exp(l - max).
    (max + z.ln(), z.ln() - zl / z)
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

/// Sets `logits[i] = −∞` wherever `drop(i)` holds, except that the most likely token is kept
/// when every token would go: a processor never leaves an empty distribution.
pub fn mask_where(logits: &mut [f32], mut drop: impl FnMut(usize) -> bool) {
    if logits.is_empty() {
        return;
    }
    let best = argmax(logits) as usize;
    let best_value = logits[best];
    let mut kept_any = false;
    for (i, l) in logits.iter_mut().enumerate() {
        if drop(i) {
            *l = f32::NEG_INFINITY;
        } else if *l > f32::NEG_INFINITY {
            kept_any = true;
        }
    }
    if !kept_any {
        logits[best] = best_value;
    }
}

#[cfg(test)]
mod tests {
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
    fn mask_keeps_one() {
        let mut l = [1.0, 2.0, 0.5];
        mask_where(&mut l, |_| true);
        assert_eq!(l, [NEG, 2.0, NEG]);
        let mut l = [1.0, 2.0, 0.5];
        mask_where(&mut l, |i| i == 1);
        assert_eq!(l, [1.0, NEG, 0.5]);
    }

    #[test]
    fn log_prob_of_uniform() {
        assert!((log_prob(&[0.0f32; 4], 2) - 0.25f64.ln()).abs() < 1e-12);
    }
}
