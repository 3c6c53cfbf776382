//! `multinomial`: a draw from softmax(logits).

use std::fmt;

use crate::dist::max_logit;
use crate::registry::{PluginInfo, PluginKind, params};
use crate::rng::Rng;
use crate::selector::{Choice, TokenSelector};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "multinomial",
    kind: PluginKind::Selector,
    description: "Draw a token from softmax(logits) with the row's seeded RNG.",
    ties: "",
    reference: "torch.multinomial over the softmax; the draw inverts the CDF in token-id order with the row's seeded RNG",
    params: &[],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {}

/// Sampling selector (reused buffers: one instance serves one row).
#[derive(Debug, Clone, Default)]
pub struct Multinomial {
    /// The finite tokens, ascending, and their probabilities.
    ids: Vec<u32>,
    probs: Vec<f64>,
}

/// Builds it from a TOML table (no parameters).
pub fn build(t: &toml::Table) -> Result<Box<dyn TokenSelector>, String> {
    let _: Params = params(t)?;
    Ok(Box::new(Multinomial::default()))
}

/// Draws an index from `probs` with one uniform number: the first index whose cumulative
/// probability exceeds it.
pub fn draw(probs: &[f64], rng: &mut Rng) -> Option<usize> {
    let u = rng.next_f64();
    let mut acc = 0.0;
    let mut last = None;
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            acc += p;
            last = Some(i);
            if u < acc {
                return Some(i);
            }
        }
    }
    // Rounding left the sum just under 1 and `u` above it.
    last
}

impl fmt::Display for Multinomial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("multinomial")
    }
}

impl TokenSelector for Multinomial {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn select(&mut self, logits: &mut [f32], rng: &mut Rng) -> Choice {
        // The softmax over the finite tokens only, in token order: the same arithmetic (and
        // bits) as `dist::softmax` and `dist::entropy_of` over the whole row, whose −∞ entries
        // add exactly 0, without passes over the rest of a row that a filter left sparse.
        let max = max_logit(logits);
        self.ids.clear();
        self.probs.clear();
        let mut sum = 0.0f64;
        let mut take = |i: usize, l: f32| {
            if l != f32::NEG_INFINITY {
                let e = ((l - max) as f64).exp();
                self.ids.push(i as u32);
                self.probs.push(e);
                sum += e;
            }
        };
        // Sixteen at a time: a vectorised test skips the chunks a filter left all −∞.
        let (chunks, rest) = logits.as_chunks::<16>();
        for (ci, c) in chunks.iter().enumerate() {
            let mut any = false;
            for &l in c {
                any |= l != f32::NEG_INFINITY;
            }
            if any {
                for (j, &l) in c.iter().enumerate() {
                    take(ci * 16 + j, l);
                }
            }
        }
        let at = logits.len() - rest.len();
        for (j, &l) in rest.iter().enumerate() {
            take(at + j, l);
        }
        self.probs.iter_mut().for_each(|p| *p /= sum);
        // The pipeline guarantees a finite logit, so `draw` finds one (the maximum has p > 0).
        let at = draw(&self.probs, rng).unwrap_or(0);
        let entropy = -self
            .probs
            .iter()
            .filter(|&&p| p > 0.0)
            .map(|&p| p * p.ln())
            .sum::<f64>();
        Choice {
            token: self.ids[at],
            entropy,
            logprob: self.probs[at].ln(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chi_square_against_softmax() {
        let logits = [0.0f32, 1.0, 2.0, -1.0, 0.5];
        let probs = crate::dist::softmax(&logits);
        let mut rng = Rng::new(42);
        let n = 10_000;
        let mut counts = [0usize; 5];
        for _ in 0..n {
            counts[Multinomial::default()
                .select(&mut logits.clone(), &mut rng)
                .token as usize] += 1;
        }
        let chi2: f64 = counts
            .iter()
            .zip(&probs)
            .map(|(&c, &p)| (c as f64 - p * n as f64).powi(2) / (p * n as f64))
            .sum();
        // 4 degrees of freedom: the 99.9 % quantile is 18.47.
        assert!(chi2 < 18.47, "chi2 = {chi2}, counts = {counts:?}");
    }

    #[test]
    fn never_picks_masked_and_reports_entropy() {
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            let c = Multinomial::default()
                .select(&mut [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY], &mut rng);
            assert_eq!(
                c,
                Choice {
                    token: 1,
                    entropy: 0.0,
                    logprob: 0.0
                }
            );
        }
        let c = Multinomial::default().select(&mut [0.0, 0.0], &mut rng);
        assert!((c.entropy - 2f64.ln()).abs() < 1e-12);
        assert!((c.logprob - 0.5f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn same_seed_same_tokens() {
        let logits = [0.3f32, 0.1, 0.9, 0.2];
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..50)
                .map(|_| {
                    Multinomial::default()
                        .select(&mut logits.clone(), &mut rng)
                        .token
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
