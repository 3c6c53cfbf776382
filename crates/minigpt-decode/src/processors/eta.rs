//! `eta`: entropy-dependent truncation (Hewitt et al. 2022).

use std::fmt;

use super::{Num, check};
use crate::dist::{fast_stats, lse_entropy_fast, mask_below, mask_below_banded};
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "eta",
    kind: PluginKind::Processor,
    description: "Eta sampling: drop tokens with p < min(eta, sqrt(eta) * exp(-H)) (Hewitt et al. 2022).",
    ties: "when no token reaches the cutoff, every token tied at the top stays (transformers' min_tokens_to_keep = 1)",
    reference: "transformers EtaLogitsWarper; the cutoff test is made in logit space in f64",
    params: &[ParamInfo {
        name: "eta",
        ty: "float in (0, 1)",
        default: None,
    }],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    eta: f64,
}

/// Eta truncation.
#[derive(Debug, Clone)]
pub struct Eta {
    eta: f64,
}

impl Eta {
    /// `eta` in (0, 1).
    pub fn new(eta: f64) -> Result<Self, String> {
        check("eta", eta, eta > 0.0 && eta < 1.0, "in (0, 1)")?;
        Ok(Self { eta })
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table, _: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(Eta::new(p.eta)?))
}

impl fmt::Display for Eta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "eta({})", Num(self.eta))
    }
}

impl LogitsProcessor for Eta {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, _: &StepContext<'_>, logits: &mut [f32]) {
        // p_i < min(η, √η·e^−H) ⇔ l_i − logsumexp < ln of it. Float32 exps with error
        // bounds decide every token outside a narrow band; a token inside it sends the row
        // through the f64 computation.
        let threshold = |lse: f64, h: f64| lse + self.eta.min(self.eta.sqrt() * (-h).exp()).ln();
        let f = fast_stats(logits);
        let (t, err) = (threshold(f.lse, f.h), f.lse_err + f.h_err);
        if !mask_below_banded(logits, t - err, t + err) {
            let (_, lse, h) = lse_entropy_fast(logits);
            mask_below(logits, threshold(lse, h));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::{NEG, apply};

    #[test]
    fn exact_survivors() {
        // p = 0.7, 0.2, 0.1: H = 0.8018, exp(-H) = 0.4485.
        let l = [0.7f32.ln(), 0.2f32.ln(), 0.1f32.ln()];
        let run = |e: f64, l: &[f32]| apply(&mut Eta::new(e).unwrap(), l, &[], 0);
        // eta = 0.15: min(0.15, 0.387 * 0.4485 = 0.174) = 0.15 drops 0.1.
        assert_eq!(run(0.15, &l), [l[0], l[1], NEG]);
        // eta = 0.3: min(0.3, 0.548 * 0.4485 = 0.246) = 0.246 drops 0.2 and 0.1.
        assert_eq!(run(0.3, &l), [l[0], NEG, NEG]);
        // Uniform over 4: H = ln 4, threshold = min(0.5, 0.707 / 4 = 0.177) < 0.25: all stay.
        assert_eq!(run(0.5, &[0.0; 4]), [0.0; 4]);
        assert_eq!(run(0.5, &[NEG, 0.0]), [NEG, 0.0]);
        assert_eq!(run(0.9, &[1.0]), [1.0]);
        assert!(Eta::new(0.0).is_err());
    }
}
