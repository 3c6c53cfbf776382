//! `temperature`: logits / t.

use std::fmt;

use super::{Num, check_f32};
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "temperature",
    kind: PluginKind::Processor,
    description: "Divide the logits by t: t < 1 sharpens, t > 1 flattens.",
    ties: "",
    reference: "transformers TemperatureLogitsWarper; multiplies by 1/t in float32, within 1 ulp of its division",
    params: &[ParamInfo {
        name: "t",
        ty: "float > 0 (float32's range)",
        default: Some("1.0"),
    }],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "one")]
    t: f64,
}
fn one() -> f64 {
    1.0
}

/// Divides logits by `t`.
#[derive(Debug, Clone)]
pub struct Temperature {
    t: f32,
}

impl Temperature {
    /// Temperature `t` (finite, > 0).
    pub fn new(t: f64) -> Result<Self, String> {
        let t = check_f32(
            "t",
            t,
            t > 0.0,
            "a number > 0 (for deterministic decoding use the greedy selector)",
        )?;
        Ok(Self { t })
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table, _: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(Temperature::new(p.t)?))
}

impl fmt::Display for Temperature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "temperature({})", Num(self.t))
    }
}

impl LogitsProcessor for Temperature {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, _: &StepContext<'_>, logits: &mut [f32]) {
        let inv = 1.0 / self.t;
        logits.iter_mut().for_each(|l| *l *= inv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::{NEG, apply};

    #[test]
    fn divides_and_keeps_masks() {
        let mut t = Temperature::new(0.5).unwrap();
        assert_eq!(
            apply(&mut t, &[1.0, -2.0, NEG, 0.0], &[], 0),
            [2.0, -4.0, NEG, 0.0]
        );
        assert_eq!(apply(&mut t, &[3.0], &[], 0), [6.0]);
        assert_eq!(apply(&mut t, &[1.5; 3], &[], 0), [3.0; 3]);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Temperature::new(bad).is_err());
        }
        assert!(
            build(&toml::toml! { t = 0.0 }, &BuildContext::default())
                .unwrap_err()
                .contains("greedy")
        );
    }

    #[test]
    fn refuses_values_that_float32_turns_into_0_or_inf() {
        // 1e-39 is subnormal in f32 (1/t = inf), 1e39 overflows: both refused with the range.
        for bad in [1e-39, 1e39, 1e-300] {
            let e = Temperature::new(bad).unwrap_err();
            assert!(
                e.contains("does not fit float32") && e.contains("3.4e38"),
                "{e}"
            );
        }
        for ok in [1.2e-38, 3.4e38, 1e-30] {
            assert!(Temperature::new(ok).is_ok(), "{ok}");
        }
        use crate::processors::{frequency_penalty, presence_penalty, repetition_penalty};
        for bad in [1e-39, 1e39] {
            assert!(repetition_penalty::RepetitionPenalty::new(bad, 0).is_err());
            assert!(frequency_penalty::FrequencyPenalty::new(-bad).is_err());
            assert!(presence_penalty::PresencePenalty::new(bad).is_err());
        }
        assert!(frequency_penalty::FrequencyPenalty::new(0.0).is_ok());
    }
}
