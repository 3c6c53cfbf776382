//! `top_p` (nucleus): keep the smallest set of most likely tokens whose mass reaches p.

use std::fmt;

use super::check;
use crate::dist::{exp_neg, max_logit};
use crate::mass_cut::MassCut;
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "top_p",
    kind: PluginKind::Processor,
    description: "Nucleus: keep the most likely tokens until their mass reaches p; the crossing token is kept (Holtzman et al. 2020).",
    ties: "tokens tied with the crossing token are kept lowest id first, up to the crossing (transformers' choice among them follows its sort order; the count is the same)",
    reference: "transformers TopPLogitsWarper",
    params: &[ParamInfo {
        name: "p",
        ty: "float in (0, 1]",
        default: None,
    }],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    p: f64,
}

/// Nucleus filter.
#[derive(Debug, Clone)]
pub struct TopP {
    p: f64,
    cut: MassCut,
}

impl TopP {
    /// Mass `p` in (0, 1].
    pub fn new(p: f64) -> Result<Self, String> {
        check("p", p, p > 0.0 && p <= 1.0, "in (0, 1]")?;
        Ok(Self {
            p,
            cut: MassCut::default(),
        })
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table, _: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(TopP::new(p.p)?))
}

impl fmt::Display for TopP {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "top_p({})", self.p)
    }
}

impl LogitsProcessor for TopP {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, _: &StepContext<'_>, logits: &mut [f32]) {
        if self.p >= 1.0 {
            return;
        }
        // Key: how far below the maximum (f64, exact for f32 inputs); mass: exp(−key).
        let max = max_logit(logits) as f64;
        let key = |l: f32| max - l as f64;
        let mass = |_, l: f32| exp_neg(l as f64 - max);
        let Some(c) = self.cut.find(logits, key, mass, self.p) else {
            return;
        };
        // Keep what sorts before the crossing token (by key, then id) and the token itself.
        for (i, l) in logits.iter_mut().enumerate() {
            let k = max - *l as f64;
            if k > c.key || (k == c.key && i as u32 > c.token) {
                *l = f32::NEG_INFINITY;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::{NEG, apply};

    #[test]
    fn exact_survivors() {
        // ln of exact probabilities 0.5, 0.3, 0.2.
        let l = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
        let run = |p: f64, l: &[f32]| apply(&mut TopP::new(p).unwrap(), l, &[], 0);
        assert_eq!(run(0.6, &l), [l[0], l[1], NEG]);
        assert_eq!(run(0.4, &l), [l[0], NEG, NEG]);
        assert_eq!(run(0.85, &l), l);
        assert_eq!(run(1.0, &l), l);
        // All equal: 0.5 of four equal tokens keeps the two lowest ids.
        assert_eq!(run(0.5, &[1.0; 4]), [1.0, 1.0, NEG, NEG]);
        assert_eq!(run(0.3, &[NEG, 2.0, NEG]), [NEG, 2.0, NEG]);
        assert_eq!(run(0.1, &[4.0]), [4.0]);
        for bad in [0.0, 1.5, -0.1, f64::NAN] {
            assert!(TopP::new(bad).unwrap_err().contains("(0, 1]"));
        }
    }
}
