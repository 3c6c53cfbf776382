//! `top_p` (nucleus): keep the smallest set of most likely tokens whose mass reaches p.

use std::fmt;

use super::check;
use crate::dist::{mask_where, softmax};
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "top_p",
    kind: PluginKind::Processor,
    description: "Nucleus: keep the most likely tokens until their mass reaches p; the crossing token is kept (Holtzman et al. 2020).",
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
}

impl TopP {
    /// Mass `p` in (0, 1].
    pub fn new(p: f64) -> Result<Self, String> {
        check("p", p, p > 0.0 && p <= 1.0, "in (0, 1]")?;
        Ok(Self { p })
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

/// Keeps tokens in `order` until their mass reaches `mass`; masks the rest.
pub(crate) fn keep_until_mass(logits: &mut [f32], probs: &[f64], order: &[usize], mass: f64) {
    let mut acc = 0.0;
    let mut keep = vec![false; logits.len()];
    for &i in order {
        keep[i] = true;
        acc += probs[i];
        if acc >= mass {
            break;
        }
    }
    mask_where(logits, |i| !keep[i]);
}

impl LogitsProcessor for TopP {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, _: &StepContext<'_>, logits: &mut [f32]) {
        if self.p >= 1.0 {
            return;
        }
        let probs = softmax(logits);
        let mut order: Vec<usize> = (0..logits.len()).filter(|&i| probs[i] > 0.0).collect();
        // Most likely first; equal probabilities by token id.
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        keep_until_mass(logits, &probs, &order, self.p);
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
