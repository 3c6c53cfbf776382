//! Token selection for the foundation loop: greedy, or temperature → top-k → top-p → multinomial.
//!
//! The order is Hugging Face's (`temperature`, `top_k`, `top_p` warpers, then a draw). The plugin
//! system replaces this fixed chain with user-ordered processors; the definitions stay the same.

use crate::rng::Rng;

/// A parameter that no sampler can use, with what is allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SamplingError {
    /// Temperature must be a finite number above zero.
    #[error(
        "temperature must be a finite number > 0 (got {0}); for deterministic decoding use --greedy"
    )]
    Temperature(f32),
    /// top-k must keep at least one token.
    #[error("top-k must be at least 1 (got 0); leave it out to keep every token")]
    TopK,
    /// top-p must lie in (0, 1].
    #[error("top-p must be in (0, 1] (got {0}); 1 keeps every token")]
    TopP(f32),
}

/// How the next token is chosen from the logits.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Take the most likely token; the other fields are ignored.
    pub greedy: bool,
    /// Divide the logits by this before filtering (> 0).
    pub temperature: f32,
    /// Keep only the `k` largest logits (ties at the boundary are kept).
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability mass is at least `p`.
    pub top_p: Option<f32>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            greedy: false,
            temperature: 1.0,
            top_k: None,
            top_p: None,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Self {
            greedy: true,
            ..Self::default()
        }
    }

    /// Checks every parameter, whether or not greedy ignores it.
    pub fn validate(&self) -> Result<(), SamplingError> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(SamplingError::Temperature(self.temperature));
        }
        if self.top_k == Some(0) {
            return Err(SamplingError::TopK);
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(SamplingError::TopP(p));
        }
        Ok(())
    }

    /// Chooses the next token from one row of raw logits (modified in place by the filters).
    pub fn select(&self, logits: &mut [f32], rng: &mut Rng) -> u32 {
        if self.greedy {
            return argmax(logits);
        }
        if self.temperature != 1.0 {
            let inv = 1.0 / self.temperature;
            logits.iter_mut().for_each(|l| *l *= inv);
        }
        if let Some(k) = self.top_k {
            top_k(logits, k);
        }
        if let Some(p) = self.top_p {
            top_p(logits, p);
        }
        multinomial(logits, rng)
    }
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

/// Keeps the `k` largest logits, and every logit equal to the k-th largest; masks the rest.
pub fn top_k(logits: &mut [f32], k: usize) {
    if k >= logits.len() {
        return;
    }
    let mut sorted: Vec<f32> = logits.to_vec();
    // k-th largest value: select_nth on the descending order.
    let (_, kth, _) = sorted.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let kth = *kth;
    for l in logits.iter_mut() {
        if *l < kth {
            *l = f32::NEG_INFINITY;
        }
    }
}

/// Keeps the smallest set of most likely tokens whose mass reaches `p` (the token that crosses
/// `p` is kept); masks the rest. Ties are broken by token id, lowest first.
pub fn top_p(logits: &mut [f32], p: f32) {
    if p >= 1.0 {
        return;
    }
    let probs = softmax(logits);
    let mut order: Vec<usize> = (0..logits.len()).filter(|&i| probs[i] > 0.0).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    let mut mass = 0.0f64;
    let mut keep = order.len();
    for (n, &i) in order.iter().enumerate() {
        mass += probs[i];
        if mass >= p as f64 {
            keep = n + 1;
            break;
        }
    }
    for &i in &order[keep..] {
        logits[i] = f32::NEG_INFINITY;
    }
}

/// Softmax in f64 (masked entries get 0). All-masked rows give all zeros.
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

/// log-softmax of one entry: `logits[i] - logsumexp(logits)`, in f64.
pub fn log_prob(logits: &[f32], i: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    logits[i] as f64 - max - sum.ln()
}

/// Draws a token from softmax(logits) with one uniform number from `rng`.
pub fn multinomial(logits: &[f32], rng: &mut Rng) -> u32 {
    let probs = softmax(logits);
    let u = rng.next_f64();
    let mut acc = 0.0;
    let mut last = None;
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            acc += p;
            last = Some(i);
            if u < acc {
                return i as u32;
            }
        }
    }
    // Rounding left `acc` just under 1 and `u` above it: the last possible token.
    last.map_or_else(|| argmax(logits), |i| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    const NEG: f32 = f32::NEG_INFINITY;

    #[test]
    fn argmax_first_on_ties_and_ignores_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5, 0.1]), 1);
        assert_eq!(argmax(&[NEG, NEG, -1.0]), 2);
    }

    #[test]
    fn top_k_keeps_boundary_ties() {
        let mut l = [1.0, 5.0, 3.0, 3.0, 0.0];
        top_k(&mut l, 2);
        assert_eq!(l, [NEG, 5.0, 3.0, 3.0, NEG]);
        let mut l = [2.0, 2.0, 2.0];
        top_k(&mut l, 1);
        assert_eq!(l, [2.0, 2.0, 2.0]);
        let mut l = [1.0, 2.0];
        top_k(&mut l, 5);
        assert_eq!(l, [1.0, 2.0]);
    }

    #[test]
    fn top_p_keeps_crossing_token() {
        // probs of ln([0.5, 0.3, 0.2]) are exactly 0.5, 0.3, 0.2.
        let base = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
        let mut l = base;
        top_p(&mut l, 0.6);
        assert_eq!(l, [base[0], base[1], NEG]);
        let mut l = base;
        top_p(&mut l, 0.4);
        assert_eq!(l, [base[0], NEG, NEG]);
        let mut l = base;
        top_p(&mut l, 0.85);
        assert_eq!(l, base);
        let mut l = base;
        top_p(&mut l, 1.0);
        assert_eq!(l, base);
    }

    #[test]
    fn validation_messages() {
        let p = SamplingParams {
            temperature: 0.0,
            ..Default::default()
        };
        assert!(p.validate().unwrap_err().to_string().contains("--greedy"));
        let p = SamplingParams {
            temperature: f32::NAN,
            ..Default::default()
        };
        assert!(p.validate().is_err());
        let p = SamplingParams {
            top_k: Some(0),
            ..Default::default()
        };
        assert_eq!(p.validate(), Err(SamplingError::TopK));
        for bad in [0.0, -0.1, 1.5, f32::NAN] {
            let p = SamplingParams {
                top_p: Some(bad),
                ..Default::default()
            };
            assert!(p.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn multinomial_matches_softmax_chi_square() {
        let logits = [0.0f32, 1.0, 2.0, -1.0, 0.5];
        let probs = softmax(&logits);
        let mut rng = Rng::new(42);
        let n = 10_000;
        let mut counts = [0usize; 5];
        for _ in 0..n {
            counts[multinomial(&logits, &mut rng) as usize] += 1;
        }
        let chi2: f64 = counts
            .iter()
            .zip(&probs)
            .map(|(&c, &p)| {
                let e = p * n as f64;
                (c as f64 - e).powi(2) / e
            })
            .sum();
        // 4 degrees of freedom: the 99.9% quantile is 18.47.
        assert!(chi2 < 18.47, "chi2 = {chi2}, counts = {counts:?}");
    }

    #[test]
    fn multinomial_never_picks_masked() {
        let logits = [NEG, 0.0, NEG];
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            assert_eq!(multinomial(&logits, &mut rng), 1);
        }
    }

    #[test]
    fn tiny_temperature_is_greedy() {
        let params = SamplingParams {
            temperature: 0.01,
            ..Default::default()
        };
        let mut rng = Rng::new(3);
        for _ in 0..100 {
            let mut l = [0.1f32, 0.4, 0.35, -2.0];
            assert_eq!(params.select(&mut l, &mut rng), 1);
        }
    }

    #[test]
    fn log_prob_of_uniform() {
        let l = [0.0f32; 4];
        assert!((log_prob(&l, 2) - (0.25f64).ln()).abs() < 1e-12);
    }
}
