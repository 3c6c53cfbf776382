//! `logit_bias`: add a fixed bias to chosen tokens (−inf bans them).

use std::collections::BTreeMap;
use std::fmt;

use super::{Num, check_f32};
use crate::dist::has_finite;
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params, resolve_token};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "logit_bias",
    kind: PluginKind::Processor,
    description: "Add a bias to given tokens: keys are token ids (\"50256\") or text that encodes to one token (\" the\"); -inf bans.",
    ties: "",
    reference: "transformers SequenceBiasLogitsProcessor with one-token sequences; when the biases ban every token left, the ones most likely before the bias stay (transformers leaves no finite logit)",
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
    before: Vec<f32>,
}

impl LogitBias {
    /// Biases by token id: each token once; a finite bias within float32's range, or −∞ to
    /// ban the token.
    pub fn new(bias: Vec<(u32, f64)>) -> Result<Self, String> {
        let mut out = Vec::with_capacity(bias.len());
        for (i, &(t, b)) in bias.iter().enumerate() {
            if bias[..i].iter().any(|&(u, _)| u == t) {
                return Err(format!("token {t} has two biases: give each token once"));
            }
            let b = if b == f64::NEG_INFINITY {
                f32::NEG_INFINITY
            } else {
                check_f32(
                    &format!("the bias of token {t}"),
                    b,
                    true,
                    "a finite number, or -inf to ban the token",
                )?
            };
            out.push((t, b));
        }
        Ok(Self {
            bias: out,
            before: Vec::new(),
        })
    }
}

/// Builds it from a TOML table; text keys need the context's tokenizer.
pub fn build(t: &toml::Table, cx: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    let mut bias = Vec::with_capacity(p.bias.len());
    let mut keys: Vec<(u32, &str)> = Vec::with_capacity(p.bias.len());
    for (key, &b) in &p.bias {
        let id = resolve_token(key, cx)?;
        if let Some((_, other)) = keys.iter().find(|(t, _)| *t == id) {
            return Err(format!(
                "bias keys {other:?} and {key:?} both name token {id}: give each token once"
            ));
        }
        keys.push((id, key));
        bias.push((id, b));
    }
    Ok(Box::new(LogitBias::new(bias)?))
}

impl fmt::Display for LogitBias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .bias
            .iter()
            .map(|(t, b)| format!("{t}:{}", Num(*b)))
            .collect();
        write!(f, "logit_bias({})", parts.join(", "))
    }
}

impl LogitsProcessor for LogitBias {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn check_vocab(&self, vocab: usize) -> Result<(), String> {
        match self.bias.iter().find(|&&(t, _)| t as usize >= vocab) {
            Some((t, _)) => Err(format!(
                "logit_bias: token id {t} is outside the vocabulary (ids 0..{})",
                vocab.saturating_sub(1)
            )),
            None => Ok(()),
        }
    }
    fn process(&mut self, _: &StepContext<'_>, logits: &mut [f32]) {
        self.before.clear();
        for &(t, b) in &self.bias {
            match logits.get_mut(t as usize) {
                Some(l) => {
                    self.before.push(*l);
                    *l += b;
                }
                None => self.before.push(f32::NEG_INFINITY),
            }
        }
        if self.bias.iter().any(|&(_, b)| b < 0.0) && !has_finite(logits) {
            // The biases banned every token left: the ones most likely before them stay.
            let best = self
                .before
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            for (&(t, _), &l) in self.bias.iter().zip(&self.before) {
                if l == best && l != f32::NEG_INFINITY {
                    logits[t as usize] = l;
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
    fn adds_bias_and_never_empties() {
        let neg = f64::NEG_INFINITY;
        let mut p = LogitBias::new(vec![(1, 2.0), (2, neg), (9, 1.0)]).unwrap();
        assert_eq!(apply(&mut p, &[0.0, 0.0, 0.0], &[], 0), [0.0, 2.0, NEG]);
        let mut ban = LogitBias::new(vec![(0, neg), (1, neg)]).unwrap();
        assert_eq!(apply(&mut ban, &[1.0, 3.0], &[], 0), [NEG, 3.0]);
        assert_eq!(apply(&mut ban, &[2.0], &[], 0), [2.0]);
        // Ties at the top before the bias all stay.
        assert_eq!(apply(&mut ban, &[3.0, 3.0, NEG], &[], 0), [3.0, 3.0, NEG]);
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

    #[test]
    fn refuses_duplicates_and_values_outside_float32() {
        let e = LogitBias::new(vec![(3, 1.0), (3, 2.0)]).unwrap_err();
        assert!(e.contains("token 3 has two biases"), "{e}");
        // An id key and a text key naming the same token.
        let enc = |s: &str| -> Vec<u32> { s.bytes().map(u32::from).collect() };
        let cx = BuildContext { encode: Some(&enc) };
        let e = build(&toml::toml! { bias = { "65" = 1.0, "A" = 2.0 } }, &cx)
            .err()
            .unwrap();
        assert!(
            e.contains("\"65\"") && e.contains("\"A\"") && e.contains("token 65"),
            "{e}"
        );
        for bad in [1e39, -1e39, 1e-39, f64::INFINITY, f64::NAN] {
            assert!(LogitBias::new(vec![(0, bad)]).is_err(), "{bad}");
        }
        assert!(LogitBias::new(vec![(0, 3e38), (1, 0.0), (2, -1e-30)]).is_ok());
    }
}
