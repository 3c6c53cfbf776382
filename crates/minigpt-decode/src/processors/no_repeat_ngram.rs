//! `no_repeat_ngram`: forbid any token that would repeat an n-gram of the sequence.

use std::fmt;

use crate::dist::{has_finite, max_logit};
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "no_repeat_ngram",
    kind: PluginKind::Processor,
    description: "Forbid tokens that would complete an n-gram already in the sequence, prompt included (Paulus et al. 2018).",
    ties: "",
    reference: "transformers NoRepeatNGramLogitsProcessor; when every token left would be banned, the ones tied at the top stay (transformers leaves no finite logit)",
    params: &[ParamInfo {
        name: "n",
        ty: "integer >= 1",
        default: None,
    }],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    n: i64,
}

/// n-gram blocking.
#[derive(Debug, Clone)]
pub struct NoRepeatNgram {
    n: usize,
    banned: Vec<(u32, f32)>,
}

impl NoRepeatNgram {
    /// Block repeats of `n`-grams, `n >= 1`.
    pub fn new(n: i64) -> Result<Self, String> {
        if n < 1 {
            return Err(format!("n must be an integer >= 1 (got {n})"));
        }
        Ok(Self {
            n: n as usize,
            banned: Vec::new(),
        })
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table, _: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(NoRepeatNgram::new(p.n)?))
}

impl fmt::Display for NoRepeatNgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no_repeat_ngram({})", self.n)
    }
}

impl LogitsProcessor for NoRepeatNgram {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, cx: &StepContext<'_>, logits: &mut [f32]) {
        let t = cx.tokens;
        let n = self.n;
        if t.len() + 1 < n {
            return;
        }
        // The last n - 1 tokens; every earlier occurrence bans the token that followed it.
        // O(history): only banned tokens are touched (their values kept for the rule below).
        let prefix = &t[t.len() + 1 - n..];
        let best = max_logit(logits);
        self.banned.clear();
        for w in t.windows(n) {
            if &w[..n - 1] == prefix
                && let Some(l) = logits.get_mut(w[n - 1] as usize)
                && *l != f32::NEG_INFINITY
            {
                self.banned.push((w[n - 1], *l));
                *l = f32::NEG_INFINITY;
            }
        }
        if !self.banned.is_empty() && !has_finite(logits) {
            // Every token left was banned: the ones tied at the top stay.
            for &(t, l) in &self.banned {
                if l == best {
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
    fn exact_survivors() {
        let mut p = NoRepeatNgram::new(2).unwrap();
        // Sequence 1 2 3 1: after "1" came "2", so 2 is banned.
        assert_eq!(
            apply(&mut p, &[0.0; 4], &[1, 2, 3, 1], 2),
            [0.0, 0.0, NEG, 0.0]
        );
        // Sequence 1 2 1 3 1: after "1" came 2 and 3.
        assert_eq!(
            apply(&mut p, &[0.0; 4], &[1, 2, 1, 3, 1], 5),
            [0.0, 0.0, NEG, NEG]
        );
        let mut three = NoRepeatNgram::new(3).unwrap();
        assert_eq!(
            apply(&mut three, &[0.0; 4], &[1, 2, 3, 1, 2], 0),
            [0.0, 0.0, 0.0, NEG]
        );
        assert_eq!(apply(&mut three, &[0.0; 4], &[1], 0), [0.0; 4]);
        // n = 1 bans everything seen; when that is every token, the most likely one stays.
        let mut one = NoRepeatNgram::new(1).unwrap();
        assert_eq!(apply(&mut one, &[0.5, 1.0], &[0, 1], 0), [NEG, 1.0]);
        assert_eq!(apply(&mut one, &[0.5], &[0], 0), [0.5]);
        // −∞ entries stay −∞; the best finite token survives a full ban.
        assert_eq!(
            apply(&mut one, &[NEG, 0.3, 0.1], &[1, 2], 0),
            [NEG, 0.3, NEG]
        );
        assert!(NoRepeatNgram::new(0).is_err());
    }
}
