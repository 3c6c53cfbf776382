//! `top_p` (nucleus): keep the smallest set of most likely tokens whose mass reaches p.

use std::fmt;

use super::check;
use crate::dist::{count_in, max_logit};
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
    ids: Vec<u32>,
    vals: Vec<f32>,
}

impl TopP {
    /// Mass `p` in (0, 1].
    pub fn new(p: f64) -> Result<Self, String> {
        check("p", p, p > 0.0 && p <= 1.0, "in (0, 1]")?;
        Ok(Self {
            p,
            cut: MassCut::default(),
            ids: Vec::new(),
            vals: Vec::new(),
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

impl TopP {
    /// The crossing token of `logits` (an index into it).
    fn crossing(&mut self, logits: &[f32], max: f64) -> Option<usize> {
        // Key: how far below the maximum (f64, exact for f32 inputs); mass exp(l − max).
        let c = self.cut.below_max(logits, max, self.p)?;
        Some(c.token as usize)
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
        let max = max_logit(logits) as f64;
        let finite = logits.len() - count_in(logits, f32::NEG_INFINITY, f32::MIN);
        // A row that a filter left sparse (top_k first) is cut on its finite tokens alone.
        let (cut, token) = if finite * 8 < logits.len() {
            let mut ids = std::mem::take(&mut self.ids);
            let mut vals = std::mem::take(&mut self.vals);
            ids.clear();
            vals.clear();
            for (i, &l) in logits.iter().enumerate() {
                if l != f32::NEG_INFINITY {
                    ids.push(i as u32);
                    vals.push(l);
                }
            }
            let at = self.crossing(&vals, max);
            let out = at.map(|c| (vals[c], ids[c] as usize));
            (self.ids, self.vals) = (ids, vals);
            match out {
                Some(o) => o,
                None => return,
            }
        } else {
            match self.crossing(logits, max) {
                Some(c) => (logits[c], c),
                None => return,
            }
        };
        // Keep what sorts before the crossing token (by logit, then id) and the token itself:
        // its key is max − l in f64, exact, so equal keys are equal logits.
        // Branch-free selects, so the pass vectorises.
        let mut ties = 0u32;
        for l in logits.iter_mut() {
            ties += (*l == cut) as u32;
            *l = if *l < cut { f32::NEG_INFINITY } else { *l };
        }
        if ties > 1 {
            for l in &mut logits[token + 1..] {
                if *l == cut {
                    *l = f32::NEG_INFINITY;
                }
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
