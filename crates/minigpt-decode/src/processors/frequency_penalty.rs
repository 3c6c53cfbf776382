//! `frequency_penalty` (OpenAI): subtract α times each token's count among the generated tokens.

use std::fmt;

use super::{Num, check_f32};
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "frequency_penalty",
    kind: PluginKind::Processor,
    description: "l_i -= alpha * c_i, c_i = how often token i was generated so far (prompt not counted).",
    ties: "",
    reference: "llama.cpp llama_sampler_penalties_apply (penalty_freq) over the generated tokens; llama.cpp counts its last penalty_last_n accepted tokens, prompt included",
    params: &[ParamInfo {
        name: "alpha",
        ty: "float",
        default: None,
    }],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    alpha: f64,
}

/// Count-proportional penalty.
#[derive(Debug, Clone)]
pub struct FrequencyPenalty {
    alpha: f32,
}

impl FrequencyPenalty {
    /// Penalty per occurrence (finite; negative values encourage repetition).
    pub fn new(alpha: f64) -> Result<Self, String> {
        let alpha = check_f32("alpha", alpha, true, "a finite number")?;
        Ok(Self { alpha })
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table, _: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(FrequencyPenalty::new(p.alpha)?))
}

impl fmt::Display for FrequencyPenalty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frequency_penalty({})", Num(self.alpha))
    }
}

impl LogitsProcessor for FrequencyPenalty {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, cx: &StepContext<'_>, logits: &mut [f32]) {
        for &t in cx.generated() {
            if let Some(l) = logits.get_mut(t as usize) {
                *l -= self.alpha;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::{NEG, apply};

    #[test]
    fn counts_generated_tokens_only() {
        let mut p = FrequencyPenalty::new(0.5).unwrap();
        // Prompt [3]; generated [1, 1, 2].
        let got = apply(&mut p, &[0.0, 0.0, 0.0, 0.0, NEG], &[3, 1, 1, 2], 1);
        assert_eq!(got, [0.0, -1.0, -0.5, 0.0, NEG]);
        assert_eq!(apply(&mut p, &[1.0], &[0, 0], 1), [0.5]);
        assert!(FrequencyPenalty::new(f64::NAN).is_err());
    }
}
