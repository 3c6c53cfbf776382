//! `top_n_sigma` (Tang et al. 2024): keep logits within n standard deviations of the maximum.

use std::fmt;

use super::{Num, check};
use crate::dist::{mask_below, max_logit};
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "top_n_sigma",
    kind: PluginKind::Processor,
    description: "Keep logits >= max - n * std(finite logits) (Tang et al. 2024).",
    ties: "tokens exactly at max - n * std are kept",
    reference: "llama.cpp llama_sampler_top_n_sigma_apply; mean and std in f64 where llama.cpp accumulates in float",
    params: &[ParamInfo {
        name: "n",
        ty: "float > 0",
        default: None,
    }],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    n: f64,
}

/// Top-nσ filter.
#[derive(Debug, Clone)]
pub struct TopNSigma {
    n: f64,
}

impl TopNSigma {
    /// `n > 0` standard deviations.
    pub fn new(n: f64) -> Result<Self, String> {
        check("n", n, n > 0.0, "a number > 0")?;
        Ok(Self { n })
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table, _: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(TopNSigma::new(p.n)?))
}

impl fmt::Display for TopNSigma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "top_n_sigma({})", Num(self.n))
    }
}

impl LogitsProcessor for TopNSigma {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, _: &StepContext<'_>, logits: &mut [f32]) {
        // Two passes in f64 over the finite logits: mean and max, then the population
        // standard deviation (as llama.cpp, which accumulates in float).
        let (mut count, mut sum) = (0usize, 0.0f64);
        for &l in logits.iter() {
            if l != f32::NEG_INFINITY {
                count += 1;
                sum += l as f64;
            }
        }
        if count == 0 {
            return;
        }
        let mean = sum / count as f64;
        let mut acc = 0.0f64;
        for &l in logits.iter() {
            if l != f32::NEG_INFINITY {
                acc += (l as f64 - mean).powi(2);
            }
        }
        let std = (acc / count as f64).sqrt();
        let threshold = max_logit(logits) as f64 - self.n * std;
        mask_below(logits, threshold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::{NEG, apply};

    #[test]
    fn exact_survivors() {
        // [0, 1, 2, 3, 4]: mean 2, std sqrt(2) = 1.414; n = 1 keeps >= 2.586.
        let l = [0.0, 1.0, 2.0, 3.0, 4.0];
        let run = |n: f64, l: &[f32]| apply(&mut TopNSigma::new(n).unwrap(), l, &[], 0);
        assert_eq!(run(1.0, &l), [NEG, NEG, NEG, 3.0, 4.0]);
        assert_eq!(run(2.0, &l), [NEG, NEG, 2.0, 3.0, 4.0]);
        // −∞ entries are left out of the statistics: same as above.
        assert_eq!(
            run(1.0, &[0.0, NEG, 1.0, 2.0, 3.0, 4.0]),
            [NEG, NEG, NEG, NEG, 3.0, 4.0]
        );
        // All equal: std 0, everything equals the max.
        assert_eq!(run(1.0, &[2.0; 3]), [2.0; 3]);
        assert_eq!(run(1.0, &[5.0]), [5.0]);
        assert!(TopNSigma::new(0.0).is_err());
    }
}
