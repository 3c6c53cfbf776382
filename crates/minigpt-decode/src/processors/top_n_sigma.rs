//! `top_n_sigma` (Tang et al. 2024): keep logits within n standard deviations of the maximum.

use std::fmt;

use super::check;
use crate::dist::mask_where;
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "top_n_sigma",
    kind: PluginKind::Processor,
    description: "Keep logits >= max - n * std(finite logits) (Tang et al. 2024).",
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
        write!(f, "top_n_sigma({})", self.n)
    }
}

impl LogitsProcessor for TopNSigma {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, _: &StepContext<'_>, logits: &mut [f32]) {
        let finite: Vec<f64> = logits
            .iter()
            .filter(|l| l.is_finite())
            .map(|&l| l as f64)
            .collect();
        if finite.is_empty() {
            return;
        }
        let count = finite.len() as f64;
        let mean = finite.iter().sum::<f64>() / count;
        // Population standard deviation, as llama.cpp.
        let std = (finite.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / count).sqrt();
        let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let threshold = max - self.n * std;
        let values = logits.to_vec();
        mask_where(logits, |i| (values[i] as f64) < threshold);
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
