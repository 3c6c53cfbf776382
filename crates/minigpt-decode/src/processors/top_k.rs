//! `top_k`: keep the k largest logits (ties at the boundary kept).

use std::fmt;

use crate::dist::kth_largest;
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "top_k",
    kind: PluginKind::Processor,
    description: "Keep the k largest logits; tokens tied with the k-th are kept too (Fan et al. 2018).",
    ties: "every token tied with the k-th largest logit is kept (as transformers)",
    reference: "transformers TopKLogitsWarper",
    params: &[ParamInfo {
        name: "k",
        ty: "integer >= 1",
        default: None,
    }],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    k: i64,
}

/// Keeps the `k` largest logits.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    buf: Vec<f32>,
}

impl TopK {
    /// Keep `k >= 1` tokens.
    pub fn new(k: i64) -> Result<Self, String> {
        if k < 1 {
            return Err(format!("k must be an integer >= 1 (got {k})"));
        }
        Ok(Self {
            k: k as usize,
            buf: Vec::new(),
        })
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table, _: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(TopK::new(p.k)?))
}

impl fmt::Display for TopK {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "top_k({})", self.k)
    }
}

impl LogitsProcessor for TopK {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, _: &StepContext<'_>, logits: &mut [f32]) {
        if self.k >= logits.len() {
            return;
        }
        // O(V): the k-th largest value, then one pass (ties with it stay).
        let kth = kth_largest(logits, self.k, &mut self.buf);
        for l in logits.iter_mut() {
            if *l < kth {
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
        let mut p = TopK::new(2).unwrap();
        assert_eq!(
            apply(&mut p, &[1.0, 5.0, 3.0, 3.0, 0.0], &[], 0),
            [NEG, 5.0, 3.0, 3.0, NEG]
        );
        assert_eq!(apply(&mut p, &[2.0, 2.0, 2.0], &[], 0), [2.0, 2.0, 2.0]);
        assert_eq!(
            apply(&mut p, &[NEG, 1.0, NEG, 0.5, 0.2], &[], 0),
            [NEG, 1.0, NEG, 0.5, NEG]
        );
        assert_eq!(apply(&mut p, &[7.0], &[], 0), [7.0]);
        let mut one = TopK::new(1).unwrap();
        assert_eq!(apply(&mut one, &[NEG, NEG, 0.1], &[], 0), [NEG, NEG, 0.1]);
        assert!(TopK::new(0).is_err());
        assert!(build(&toml::toml! { k = 2.5 }, &BuildContext::default()).is_err());
    }
}
