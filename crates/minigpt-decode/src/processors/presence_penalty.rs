//! `presence_penalty` (OpenAI): subtract α from every token generated at least once.

use std::collections::HashSet;
use std::fmt;

use super::{Num, check_f32};
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "presence_penalty",
    kind: PluginKind::Processor,
    description: "l_i -= alpha if token i was generated so far (prompt not counted).",
    ties: "",
    reference: "llama.cpp llama_sampler_penalties_apply (penalty_present) over the generated tokens; llama.cpp counts its last penalty_last_n accepted tokens, prompt included",
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

/// Flat penalty on generated tokens.
#[derive(Debug, Clone)]
pub struct PresencePenalty {
    alpha: f32,
}

impl PresencePenalty {
    /// Penalty per distinct generated token (finite).
    pub fn new(alpha: f64) -> Result<Self, String> {
        let alpha = check_f32("alpha", alpha, true, "a finite number")?;
        Ok(Self { alpha })
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table, _: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(PresencePenalty::new(p.alpha)?))
}

impl fmt::Display for PresencePenalty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "presence_penalty({})", Num(self.alpha))
    }
}

impl LogitsProcessor for PresencePenalty {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, cx: &StepContext<'_>, logits: &mut [f32]) {
        let seen: HashSet<u32> = cx.generated().iter().copied().collect();
        for t in seen {
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
    fn once_per_distinct_generated_token() {
        let mut p = PresencePenalty::new(0.5).unwrap();
        let got = apply(&mut p, &[0.0, 0.0, 0.0, 0.0], &[3, 1, 1, 2], 1);
        assert_eq!(apply(&mut p, &[NEG, 1.0], &[1, 0, 1], 1), [NEG, 0.5]);
        assert_eq!(apply(&mut p, &[1.0], &[0, 0], 1), [0.5]);
        assert_eq!(got, [0.0, -0.5, -0.5, 0.0]);
    }
}
