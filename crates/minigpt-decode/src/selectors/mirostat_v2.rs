//! `mirostat_v2` (Basu et al. 2021, "Mirostat: a neural text decoding algorithm that directly
//! controls perplexity"), as llama.cpp implements it: keep the tokens whose surprise
//! −log₂ p is at most μ, renormalise, draw, then move μ by −η·(observed surprise − τ).

use std::fmt;

use crate::dist::{argmax, entropy_of, exp_neg, max_logit};
use crate::registry::{ParamInfo, PluginInfo, PluginKind, params};
use crate::rng::Rng;
use crate::selector::{Choice, TokenSelector};
use crate::selectors::multinomial::draw;

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "mirostat_v2",
    kind: PluginKind::Selector,
    description: "Mirostat 2.0: sample from tokens with surprise <= mu, steering mu towards the target surprise tau.",
    ties: "when no token's surprise is <= mu, the most likely token alone, lowest id on ties",
    reference: "llama.cpp llama_sampler_mirostat_v2_apply; mu in f64; the draw inverts the CDF in token-id order (llama.cpp: in sorted order)",
    params: &[
        ParamInfo {
            name: "tau",
            ty: "float > 0 (target surprise, bits)",
            default: Some("5.0"),
        },
        ParamInfo {
            name: "eta",
            ty: "float > 0 (learning rate)",
            default: Some("0.1"),
        },
    ],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "default_tau")]
    tau: f64,
    #[serde(default = "default_eta")]
    eta: f64,
}

fn default_tau() -> f64 {
    5.0
}
fn default_eta() -> f64 {
    0.1
}

/// Mirostat 2.0 with its per-row μ.
#[derive(Debug, Clone)]
pub struct MirostatV2 {
    tau: f64,
    eta: f64,
    mu: f64,
    probs: Vec<f64>,
}

impl MirostatV2 {
    /// A selector with target surprise `tau` (bits) and learning rate `eta`; μ starts at 2τ.
    pub fn new(tau: f64, eta: f64) -> Result<Self, String> {
        if !(tau.is_finite() && tau > 0.0) {
            return Err(format!("tau must be a finite number > 0 (got {tau})"));
        }
        if !(eta.is_finite() && eta > 0.0) {
            return Err(format!("eta must be a finite number > 0 (got {eta})"));
        }
        Ok(Self {
            tau,
            eta,
            mu: 2.0 * tau,
            probs: Vec::new(),
        })
    }

    /// The current maximum surprise μ (bits).
    pub fn mu(&self) -> f64 {
        self.mu
    }

    /// Sets μ (bits), e.g. to resume a row.
    pub fn set_mu(&mut self, mu: f64) {
        self.mu = mu;
    }

    /// The distribution the next draw uses, into `probs` (indexed by token): the tokens whose
    /// surprise −log₂ p is at most μ (the most likely token alone, lowest id, when none is),
    /// renormalised; 0 elsewhere. One `exp` per finite logit.
    pub fn truncated(&self, logits: &[f32], probs: &mut Vec<f64>) {
        probs.clear();
        probs.resize(logits.len(), 0.0);
        let max = max_logit(logits) as f64;
        let mut z = 0.0f64;
        for (p, &l) in probs.iter_mut().zip(logits) {
            if l != f32::NEG_INFINITY {
                *p = exp_neg(l as f64 - max);
                z += *p;
            }
        }
        // −log₂ p_i ≤ μ ⇔ l_i − logsumexp ≥ −μ·ln 2 (f64).
        let threshold = max + z.ln() - self.mu * std::f64::consts::LN_2;
        let mut kept = 0.0f64;
        for (p, &l) in probs.iter_mut().zip(logits) {
            if (l as f64) < threshold {
                *p = 0.0;
            } else {
                kept += *p;
            }
        }
        if kept == 0.0 {
            // Nothing is unsurprising enough: the most likely token alone (llama.cpp keeps
            // the first of its sorted array).
            probs[argmax(logits) as usize] = 1.0;
        } else {
            probs.iter_mut().for_each(|p| *p /= kept);
        }
    }

    /// Moves μ after drawing a token of (renormalised) probability `p`:
    /// μ ← μ − η·(−log₂ p − τ).
    pub fn observe(&mut self, p: f64) {
        self.mu -= self.eta * (-p.log2() - self.tau);
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table) -> Result<Box<dyn TokenSelector>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(MirostatV2::new(p.tau, p.eta)?))
}

impl fmt::Display for MirostatV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mirostat_v2(tau={}, eta={})", self.tau, self.eta)
    }
}

impl TokenSelector for MirostatV2 {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn select(&mut self, logits: &mut [f32], rng: &mut Rng) -> Choice {
        let mut probs = std::mem::take(&mut self.probs);
        self.truncated(logits, &mut probs);
        let token = draw(&probs, rng).unwrap_or_else(|| argmax(logits) as usize);
        self.observe(probs[token]);
        let entropy = entropy_of(&probs);
        let logprob = probs[token].ln();
        self.probs = probs;
        Choice {
            token: token as u32,
            entropy,
            logprob,
        }
    }

    fn reset(&mut self) {
        self.mu = 2.0 * self.tau;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ln of [0.5, 0.25, 0.125, 0.125]: surprises of 1, 2, 3 and 3 bits.
    fn logits() -> [f32; 4] {
        [0.5f32.ln(), 0.25f32.ln(), 0.125f32.ln(), 0.125f32.ln()]
    }

    #[test]
    fn hand_worked_mu_trajectory() {
        // tau = 0.75: mu starts at 1.5, so only token 0 (1 bit) survives; its renormalised
        // surprise is 0, so mu grows by eta * tau = 0.075 per step until it passes 2 bits.
        let mut m = MirostatV2::new(0.75, 0.1).unwrap();
        let mut rng = Rng::new(9);
        for step in 1..=7 {
            let c = m.select(&mut logits(), &mut rng);
            assert_eq!(
                c,
                Choice {
                    token: 0,
                    entropy: 0.0,
                    logprob: 0.0
                }
            );
            assert!((m.mu() - (1.5 + 0.075 * step as f64)).abs() < 1e-12);
        }
        // mu = 2.025: tokens 0 and 1 survive, renormalised to 2/3 and 1/3.
        let c = m.select(&mut logits(), &mut rng);
        let h = -(2.0f64 / 3.0 * (2.0f64 / 3.0).ln() + 1.0 / 3.0 * (1.0f64 / 3.0).ln());
        // The logits are f32 logarithms: probabilities are exact to ~1e-7.
        assert!((c.entropy - h).abs() < 1e-6);
        let observed = if c.token == 0 {
            -(2.0f64 / 3.0).log2()
        } else {
            3f64.log2()
        };
        assert!((m.mu() - (2.025 - 0.1 * (observed - 0.75))).abs() < 1e-6);
        m.reset();
        assert_eq!(m.mu(), 1.5);
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(
            build(&toml::toml! { tau = 0.0 })
                .unwrap_err()
                .contains("tau")
        );
        assert!(
            build(&toml::toml! { eta = -1.0 })
                .unwrap_err()
                .contains("eta")
        );
        assert!(
            build(&toml::toml! { tua = 1.0 })
                .unwrap_err()
                .contains("unknown field")
        );
        assert!(build(&toml::toml! { tau = "high" }).is_err());
    }
}
