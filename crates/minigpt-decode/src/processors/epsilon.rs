//! `epsilon`: drop tokens with probability below ε (Hewitt et al. 2022).

use std::fmt;

use super::{Num, check};
use crate::dist::{fast_stats, lse_entropy_fast, mask_below, mask_below_banded};
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "epsilon",
    kind: PluginKind::Processor,
    description: "Truncation sampling: drop tokens with p < epsilon; the most likely token always stays (Hewitt et al. 2022).",
    ties: "when no token reaches epsilon, every token tied at the top stays (transformers' min_tokens_to_keep = 1)",
    reference: "transformers EpsilonLogitsWarper; the test p_i < epsilon is made as l_i - logsumexp < ln epsilon in f64",
    params: &[ParamInfo {
        name: "epsilon",
        ty: "float in [0, 1)",
        default: None,
    }],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    epsilon: f64,
}

/// Absolute probability floor.
#[derive(Debug, Clone)]
pub struct Epsilon {
    eps: f64,
}

impl Epsilon {
    /// Floor `eps` in [0, 1).
    pub fn new(eps: f64) -> Result<Self, String> {
        check("epsilon", eps, (0.0..1.0).contains(&eps), "in [0, 1)")?;
        Ok(Self { eps })
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table, _: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(Epsilon::new(p.epsilon)?))
}

impl fmt::Display for Epsilon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "epsilon({})", Num(self.eps))
    }
}

impl LogitsProcessor for Epsilon {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, _: &StepContext<'_>, logits: &mut [f32]) {
        // p_i < ε ⇔ l_i − logsumexp < ln ε (f64).
        // Float32 exps with an error bound decide every token outside a narrow band; a token
        // inside it sends the row through the f64 computation.
        let f = fast_stats(logits);
        let t = f.lse + self.eps.ln();
        if !mask_below_banded(logits, t - f.lse_err, t + f.lse_err) {
            let (_, lse, _) = lse_entropy_fast(logits);
            mask_below(logits, lse + self.eps.ln());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::{NEG, apply};

    #[test]
    fn exact_survivors() {
        let l = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
        let run = |e: f64, l: &[f32]| apply(&mut Epsilon::new(e).unwrap(), l, &[], 0);
        assert_eq!(run(0.25, &l), [l[0], l[1], NEG]);
        assert_eq!(run(0.0, &l), l);
        // Nothing reaches 0.9: the most likely token stays.
        assert_eq!(run(0.9, &l), [l[0], NEG, NEG]);
        // Four equal tokens (0.25 each) all pass 0.25, all fail 0.3 except the first kept.
        assert_eq!(run(0.25, &[1.0; 4]), [1.0; 4]);
        assert_eq!(run(0.3, &[1.0; 4]), [1.0; 4]);
        assert_eq!(run(0.5, &[NEG, 1.0]), [NEG, 1.0]);
        assert_eq!(run(0.5, &[3.0]), [3.0]);
        assert!(Epsilon::new(1.0).is_err());
    }
}
