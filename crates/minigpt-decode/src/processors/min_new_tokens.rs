//! `min_new_tokens`: forbid the end-of-sequence token before n tokens have been generated.

use std::fmt;

use crate::dist::has_finite;
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "min_new_tokens",
    kind: PluginKind::Processor,
    description: "Forbid the end-of-sequence token until n tokens have been generated.",
    ties: "",
    reference: "transformers MinNewTokensLengthLogitsProcessor; when EOS is the only token left, it stays (transformers leaves no finite logit)",
    params: &[ParamInfo {
        name: "n",
        ty: "integer >= 0",
        default: None,
    }],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    n: u64,
}

/// EOS ban for the first `n` steps.
#[derive(Debug, Clone)]
pub struct MinNewTokens {
    n: usize,
}

impl MinNewTokens {
    /// At least `n` tokens before EOS.
    pub fn new(n: usize) -> Self {
        Self { n }
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table, _: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(MinNewTokens::new(p.n as usize)))
}

impl fmt::Display for MinNewTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "min_new_tokens({})", self.n)
    }
}

impl LogitsProcessor for MinNewTokens {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, cx: &StepContext<'_>, logits: &mut [f32]) {
        if let Some(eos) = cx.eos_token_id
            && cx.step() < self.n
            && let Some(l) = logits.get_mut(eos as usize)
        {
            let before = std::mem::replace(l, f32::NEG_INFINITY);
            if !has_finite(logits) {
                // EOS was the only token left: it stays.
                logits[eos as usize] = before;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::{NEG, apply};

    #[test]
    fn bans_eos_until_n() {
        // The test context's EOS is token 0; prompt [5], generated [1].
        let mut p = MinNewTokens::new(2);
        assert_eq!(apply(&mut p, &[3.0, 1.0], &[5, 1], 1), [NEG, 1.0]);
        assert_eq!(apply(&mut p, &[3.0, 1.0], &[5, 1, 1], 1), [3.0, 1.0]);
        // A one-token vocabulary of just EOS keeps it.
        assert_eq!(apply(&mut p, &[3.0], &[5], 1), [3.0]);
        assert!(build(&toml::toml! { n = -1 }, &BuildContext::default()).is_err());
    }
}
