//! `dry` ("don't repeat yourself", p-e-w; as in llama.cpp and text-generation-webui): penalise
//! the token that would extend a repetition of an earlier sequence, exponentially in its length.
//!
//! For every earlier occurrence of the last token, the match length is how many tokens before
//! it equal the tokens before the end, plus one; the token that followed that occurrence gets
//! the longest such length L. Tokens with L >= allowed_length lose
//! multiplier * base^(L - allowed_length) from their logit. Sequence breakers stop matches.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::check;
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params, resolve_token};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "dry",
    kind: PluginKind::Processor,
    description: "DRY: subtract multiplier * base^(L - allowed_length) from tokens that would extend a repeated sequence of length L.",
    params: &[
        ParamInfo {
            name: "multiplier",
            ty: "float >= 0",
            default: Some("0.8"),
        },
        ParamInfo {
            name: "base",
            ty: "float >= 1",
            default: Some("1.75"),
        },
        ParamInfo {
            name: "allowed_length",
            ty: "integer >= 1",
            default: Some("2"),
        },
        ParamInfo {
            name: "penalty_last_n",
            ty: "integer >= 0 (0 = whole sequence)",
            default: Some("0"),
        },
        ParamInfo {
            name: "breakers",
            ty: "array of tokens (ids or single-token text)",
            default: Some("[\"\\n\", \":\", \"\\\"\", \"*\"]"),
        },
    ],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "default_multiplier")]
    multiplier: f64,
    #[serde(default = "default_base")]
    base: f64,
    #[serde(default = "default_allowed")]
    allowed_length: i64,
    #[serde(default)]
    penalty_last_n: u64,
    #[serde(default = "default_breakers")]
    breakers: Vec<String>,
}
fn default_multiplier() -> f64 {
    0.8
}
fn default_base() -> f64 {
    1.75
}
fn default_allowed() -> i64 {
    2
}
fn default_breakers() -> Vec<String> {
    ["\n", ":", "\"", "*"].map(String::from).to_vec()
}

/// The DRY penalty.
#[derive(Debug, Clone)]
pub struct Dry {
    multiplier: f64,
    base: f64,
    allowed_length: usize,
    last_n: usize,
    breakers: HashSet<u32>,
}

impl Dry {
    /// Checks and stores the parameters (`last_n = 0`: the whole sequence).
    pub fn new(
        multiplier: f64,
        base: f64,
        allowed_length: i64,
        last_n: usize,
        breakers: HashSet<u32>,
    ) -> Result<Self, String> {
        check("multiplier", multiplier, multiplier >= 0.0, "a number >= 0")?;
        check("base", base, base >= 1.0, "a number >= 1")?;
        if allowed_length < 1 {
            return Err(format!(
                "allowed_length must be an integer >= 1 (got {allowed_length})"
            ));
        }
        Ok(Self {
            multiplier,
            base,
            allowed_length: allowed_length as usize,
            last_n,
            breakers,
        })
    }

    /// Longest match length per token that would extend a repetition.
    fn match_lengths(&self, t: &[u32]) -> HashMap<u32, usize> {
        let mut out = HashMap::new();
        let n = t.len();
        let Some(&last) = t.last() else { return out };
        if self.breakers.contains(&last) {
            return out;
        }
        for i in 0..n - 1 {
            if t[i] != last || self.breakers.contains(&t[i + 1]) {
                continue;
            }
            let next = t[i + 1];
            let mut len = 1;
            while len <= i {
                let j = i - len;
                if t[j] != t[n - 1 - len] || self.breakers.contains(&t[j]) {
                    break;
                }
                len += 1;
            }
            let e = out.entry(next).or_insert(0);
            *e = (*e).max(len);
        }
        out
    }
}

/// Builds it from a TOML table; text breakers need the context's tokenizer.
pub fn build(t: &toml::Table, cx: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    let mut breakers = HashSet::new();
    for b in &p.breakers {
        breakers.insert(resolve_token(b, cx).map_err(|e| format!("breakers: {e}"))?);
    }
    Ok(Box::new(Dry::new(
        p.multiplier,
        p.base,
        p.allowed_length,
        p.penalty_last_n as usize,
        breakers,
    )?))
}

impl fmt::Display for Dry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dry(multiplier={}, base={}, allowed_length={})",
            self.multiplier, self.base, self.allowed_length
        )
    }
}

impl LogitsProcessor for Dry {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn process(&mut self, cx: &StepContext<'_>, logits: &mut [f32]) {
        if self.multiplier == 0.0 {
            return;
        }
        let from = if self.last_n == 0 {
            0
        } else {
            cx.tokens.len().saturating_sub(self.last_n)
        };
        for (tok, len) in self.match_lengths(&cx.tokens[from..]) {
            if len >= self.allowed_length
                && let Some(l) = logits.get_mut(tok as usize)
            {
                let penalty = self.multiplier * self.base.powi((len - self.allowed_length) as i32);
                *l -= penalty as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::apply;

    fn dry(breakers: &[u32]) -> Dry {
        Dry::new(1.0, 2.0, 2, 0, breakers.iter().copied().collect()).unwrap()
    }

    #[test]
    fn hand_counted_match_lengths() {
        // 1 2 3 4 | 1 2 3: the sequence "1 2 3" repeats; the next 4 would make it 4 long.
        let t = [1, 2, 3, 4, 1, 2, 3];
        assert_eq!(dry(&[]).match_lengths(&t), HashMap::from([(4, 3)]));
        // Penalty for L = 3, allowed 2: 1 * 2^(3-2) = 2.
        assert_eq!(
            apply(&mut dry(&[]), &[0.0; 6], &t, 0),
            [0.0, 0.0, 0.0, 0.0, -2.0, 0.0]
        );
        // A breaker inside the earlier copy stops the match: 2 is a breaker, so only "3" matches.
        assert_eq!(dry(&[2]).match_lengths(&t), HashMap::from([(4, 1)]));
        assert_eq!(apply(&mut dry(&[2]), &[0.0; 6], &t, 0), [0.0; 6]);
        // Two earlier occurrences of the last token: each follower gets its own length.
        let t = [5, 1, 9, 1, 7, 5, 1];
        assert_eq!(dry(&[]).match_lengths(&t), HashMap::from([(9, 2), (7, 1)]));
        // The last token is a breaker: no penalty at all.
        assert!(dry(&[1]).match_lengths(&t).is_empty());
    }

    #[test]
    fn window_and_validation() {
        let t = [1, 2, 3, 4, 1, 2, 3];
        let mut w = Dry::new(1.0, 2.0, 2, 4, HashSet::new()).unwrap();
        // Only "4 1 2 3" is seen: no earlier 3.
        assert_eq!(apply(&mut w, &[0.0; 6], &t, 0), [0.0; 6]);
        assert!(Dry::new(1.0, 0.5, 2, 0, HashSet::new()).is_err());
        assert!(Dry::new(1.0, 2.0, 0, 0, HashSet::new()).is_err());
        let e = build(&toml::toml! { multiplier = 0.8 }, &BuildContext::default())
            .err()
            .unwrap();
        assert!(e.contains("breakers") && e.contains("no tokenizer"), "{e}");
        let ok = build(
            &toml::toml! { breakers = ["198", "25"] },
            &BuildContext::default(),
        )
        .unwrap();
        assert_eq!(
            ok.to_string(),
            "dry(multiplier=0.8, base=1.75, allowed_length=2)"
        );
    }
}
