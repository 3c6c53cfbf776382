//! `logit_bias`: add a fixed bias to chosen tokens (−inf bans them).

use std::collections::BTreeMap;
use std::fmt;

use crate::dist::mask_where;
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params, resolve_token};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "logit_bias",
    kind: PluginKind::Processor,
    description: "Add a bias to given tokens: keys are token ids (\"50256\") or text that encodes to one token (\" the\"); -inf bans.",
    params: &[ParamInfo {
        name: "bias",
        ty: "table of token -> float",
        default: None,
    }],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    bias: BTreeMap<String, f64>,
}

/// Fixed per-token biases.
#[derive(Debug, Clone)]
pub struct LogitBias {
    bias: Vec<(u32, f32)>,
}

impl LogitBias {
    /// Biases by token id (NaN refused).
    pub fn new(bias: Vec<(u32, f32)>) -> Result<Self, String> {
        if let Some((t, _)) = bias.iter().find(|(_, b)| b.is_nan()) {
            return Err(format!("the bias of token {t} is NaN"));
        }
        Ok(Self { bias })
    }
}

/// Builds it from a TOML table; text keys need the context's tokenizer.
pub fn build(t: &toml::Table, cx: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    let mut bias = Vec::with_capacity(p.bias.len());
    for (key, b) in p.bias {
        bias.push((resolve_token(&key, cx)?, b as f32));
    }
    Ok(Box::new(LogitBias::new(bias)?))
}

impl fmt::Display for LogitBias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.bias.iter().map(|(t, b)| format!("{t}:{b}")).collect();
        write!(f, "logit_bias({})", parts.join(", "))
    }
}

impl LogitsProcessor for LogitBias {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, _: &StepContext<'_>, logits: &mut [f32]) {
        let before = logits.to_vec();
        for &(t, b) in &self.bias {
            if let Some(l) = logits.get_mut(t as usize) {
                *l += b;
            }
        }
        if logits.iter().all(|l| *l == f32::NEG_INFINITY) {
            // Everything banned: keep the token that was most likely before the bias.
            logits.copy_from_slice(&before);
            mask_where(logits, |_| true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::{NEG, apply};

    #[test]
    fn adds_bias_and_never_empties() {
        let mut p = LogitBias::new(vec![(1, 2.0), (2, NEG), (9, 1.0)]).unwrap();
        assert_eq!(apply(&mut p, &[0.0, 0.0, 0.0], &[], 0), [0.0, 2.0, NEG]);
        let mut ban = LogitBias::new(vec![(0, NEG), (1, NEG)]).unwrap();
        assert_eq!(apply(&mut ban, &[1.0, 3.0], &[], 0), [NEG, 3.0]);
        assert_eq!(apply(&mut ban, &[2.0], &[], 0), [2.0]);
        let cx = BuildContext::default();
        let t = toml::toml! { bias = { "7" = -1.5 } };
        assert_eq!(build(&t, &cx).unwrap().to_string(), "logit_bias(7:-1.5)");
        let e = build(&toml::toml! { bias = { " the" = 1.0 } }, &cx)
            .err()
            .unwrap();
        assert!(e.contains("no tokenizer"), "{e}");
        let enc = |s: &str| -> Vec<u32> { s.bytes().map(u32::from).collect() };
        let cx = BuildContext { encode: Some(&enc) };
        assert_eq!(
            build(&toml::toml! { bias = { "A" = 1.0 } }, &cx)
                .unwrap()
                .to_string(),
            "logit_bias(65:1)"
        );
        assert!(
            build(&toml::toml! { bias = { "AB" = 1.0 } }, &cx)
                .err()
                .unwrap()
                .contains("2 tokens")
        );
    }
}
