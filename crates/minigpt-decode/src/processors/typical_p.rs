//! `typical_p`: locally typical sampling (Meister et al. 2023).

use std::fmt;

use super::check;
use crate::dist::lse_entropy_into;
use crate::mass_cut::MassCut;
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "typical_p",
    kind: PluginKind::Processor,
    description: "Locally typical: sort by |-log p - H| ascending and keep until the mass reaches p, with every token as close as the crossing one (Meister et al. 2023).",
    ties: "every token tied with the crossing token's distance is kept (as transformers)",
    reference: "transformers TypicalLogitsWarper",
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

/// Typical-set filter.
#[derive(Debug, Clone)]
pub struct TypicalP {
    mass: f64,
    exps: Vec<f64>,
    cut: MassCut,
}

impl TypicalP {
    /// Mass in (0, 1].
    pub fn new(mass: f64) -> Result<Self, String> {
        check("p", mass, mass > 0.0 && mass <= 1.0, "in (0, 1]")?;
        Ok(Self {
            mass,
            exps: Vec::new(),
            cut: MassCut::default(),
        })
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table, _: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(TypicalP::new(p.p)?))
}

impl fmt::Display for TypicalP {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "typical_p({})", self.mass)
    }
}

impl LogitsProcessor for TypicalP {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, _: &StepContext<'_>, logits: &mut [f32]) {
        if self.mass >= 1.0 {
            return;
        }
        // log Z and H in one pass; −log p_i − H = (logsumexp − l_i) − H, so the distance is
        // |a − l_i| with a = logsumexp − H.
        let (_, lse, h) = lse_entropy_into(logits, &mut self.exps);
        let a = lse - h;
        let key = |l: f32| (a - l as f64).abs();
        let exps = &self.exps;
        let mass = |i: usize, _| exps[i];
        let Some(c) = self.cut.find(logits, key, mass, self.mass) else {
            return;
        };
        for l in logits.iter_mut() {
            if (a - *l as f64).abs() > c.key {
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
        // p = 0.7, 0.2, 0.1: H = 0.8018; |-ln p - H| = 0.445, 0.808, 1.501.
        let l = [0.7f32.ln(), 0.2f32.ln(), 0.1f32.ln()];
        let run = |m: f64, l: &[f32]| apply(&mut TypicalP::new(m).unwrap(), l, &[], 0);
        assert_eq!(run(0.5, &l), [l[0], NEG, NEG]);
        assert_eq!(run(0.8, &l), [l[0], l[1], NEG]);
        assert_eq!(run(0.95, &l), l);
        // p = 0.4, 0.3, 0.3 (H = 1.0889): the 0.3s (|1.204 - H| = 0.115) are closer than 0.4
        // (|0.916 - H| = 0.173), so mass 0.5 keeps both 0.3s and drops the most likely token.
        let l2 = [0.4f32.ln(), 0.3f32.ln(), 0.3f32.ln()];
        assert_eq!(run(0.5, &l2), [NEG, l2[1], l2[2]]);
        // Ties with the crossing token stay (transformers): all four of [1, 1, 1, 1] at 0.5.
        assert_eq!(run(0.5, &[1.0; 4]), [1.0; 4]);
        assert_eq!(run(0.2, &[1.0, 1.0, NEG]), [1.0, 1.0, NEG]);
        assert_eq!(run(0.2, &[0.0]), [0.0]);
        assert!(TypicalP::new(0.0).is_err());
    }
}
