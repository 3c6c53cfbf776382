//! `repetition_penalty` (Keskar et al. 2019, CTRL): make tokens already in the sequence less
//! likely.

use std::collections::HashSet;
use std::fmt;

use super::{Num, check_f32};
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "repetition_penalty",
    kind: PluginKind::Processor,
    description: "CTRL penalty: a seen token's positive logit is divided by theta, a negative one multiplied (prompt included).",
    ties: "",
    reference: "transformers RepetitionPenaltyLogitsProcessor; `window` is minigpt's (transformers sees the whole sequence)",
    params: &[
        ParamInfo {
            name: "penalty",
            ty: "float > 0 (theta; 1 = off)",
            default: None,
        },
        ParamInfo {
            name: "window",
            ty: "integer >= 0 (last tokens considered; 0 = all)",
            default: Some("0"),
        },
    ],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    penalty: f64,
    #[serde(default)]
    window: u64,
}

/// CTRL repetition penalty.
#[derive(Debug, Clone)]
pub struct RepetitionPenalty {
    theta: f32,
    window: usize,
}

impl RepetitionPenalty {
    /// Penalty `theta > 0` over the last `window` tokens (0 = the whole sequence).
    pub fn new(theta: f64, window: usize) -> Result<Self, String> {
        let theta = check_f32(
            "penalty",
            theta,
            theta > 0.0,
            "a number > 0 (1 = no penalty)",
        )?;
        Ok(Self { theta, window })
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table, _: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(RepetitionPenalty::new(
        p.penalty,
        p.window as usize,
    )?))
}

impl fmt::Display for RepetitionPenalty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.window == 0 {
            write!(f, "repetition_penalty({})", Num(self.theta))
        } else {
            write!(
                f,
                "repetition_penalty({}, window={})",
                Num(self.theta),
                self.window
            )
        }
    }
}

impl LogitsProcessor for RepetitionPenalty {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, cx: &StepContext<'_>, logits: &mut [f32]) {
        let from = if self.window == 0 {
            0
        } else {
            cx.tokens.len().saturating_sub(self.window)
        };
        let seen: HashSet<u32> = cx.tokens[from..].iter().copied().collect();
        for t in seen {
            if let Some(l) = logits.get_mut(t as usize) {
                *l = if *l > 0.0 {
                    *l / self.theta
                } else {
                    *l * self.theta
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::{NEG, apply};

    #[test]
    fn penalises_each_seen_token_once() {
        let mut p = RepetitionPenalty::new(2.0, 0).unwrap();
        // Tokens 1 (twice, in the prompt) and 2 were seen; 0 and 3 were not.
        let got = apply(&mut p, &[1.0, 4.0, -1.0, 3.0], &[1, 1, 2], 2);
        assert_eq!(got, [1.0, 2.0, -2.0, 3.0]);
        assert_eq!(apply(&mut p, &[0.0, NEG], &[0, 1], 0), [0.0, NEG]);
        let mut w = RepetitionPenalty::new(2.0, 1).unwrap();
        assert_eq!(apply(&mut w, &[2.0, 2.0, 2.0], &[0, 1], 0), [2.0, 1.0, 2.0]);
        assert_eq!(apply(&mut w, &[2.0], &[0], 0), [1.0]);
        assert!(RepetitionPenalty::new(0.0, 0).is_err());
    }
}
