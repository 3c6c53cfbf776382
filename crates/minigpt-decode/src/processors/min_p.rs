//! `min_p`: drop tokens whose probability is below m times the top probability.

use std::fmt;

use super::{Num, check};
use crate::dist::max_logit;
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "min_p",
    kind: PluginKind::Processor,
    description: "Drop tokens whose probability is below p times the top probability (Nguyen et al. 2024).",
    ties: "tokens exactly at the threshold are kept (p >= m * p_max, as transformers)",
    reference: "transformers MinPLogitsWarper; the test p_i < m * p_max is made as l_i - l_max < ln m in f64",
    params: &[ParamInfo {
        name: "p",
        ty: "float in [0, 1]",
        default: None,
    }],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    p: f64,
}

/// Min-p filter.
#[derive(Debug, Clone)]
pub struct MinP {
    m: f64,
}

impl MinP {
    /// Relative threshold `m` in [0, 1].
    pub fn new(m: f64) -> Result<Self, String> {
        check("p", m, (0.0..=1.0).contains(&m), "in [0, 1]")?;
        Ok(Self { m })
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table, _: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(MinP::new(p.p)?))
}

impl fmt::Display for MinP {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "min_p({})", Num(self.m))
    }
}

impl LogitsProcessor for MinP {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, _: &StepContext<'_>, logits: &mut [f32]) {
        // p_i < m·p_max ⇔ l_i − l_max < ln m: no softmax needed (m = 0 keeps every token; the
        // maximum itself always stays).
        let threshold = max_logit(logits) as f64 + self.m.ln();
        for l in logits.iter_mut() {
            if (*l as f64) < threshold {
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
        // probabilities 0.5, 0.3, 0.2: m = 0.5 keeps p >= 0.25.
        let l = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
        let run = |m: f64, l: &[f32]| apply(&mut MinP::new(m).unwrap(), l, &[], 0);
        assert_eq!(run(0.5, &l), [l[0], l[1], NEG]);
        assert_eq!(run(0.0, &l), l);
        assert_eq!(run(1.0, &l), [l[0], NEG, NEG]);
        assert_eq!(run(1.0, &[3.0, 3.0, 1.0]), [3.0, 3.0, NEG]);
        assert_eq!(run(0.9, &[NEG, 0.0, NEG]), [NEG, 0.0, NEG]);
        assert_eq!(run(1.0, &[2.0]), [2.0]);
        assert_eq!(run(0.5, &[2.0; 3]), [2.0; 3]);
        assert!(MinP::new(1.1).is_err());
    }
}
