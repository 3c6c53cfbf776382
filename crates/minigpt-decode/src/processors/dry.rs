//! `dry` ("don't repeat yourself", p-e-w; as in llama.cpp and text-generation-webui): penalise
//! the token that would extend a repetition of an earlier sequence, exponentially in its length.
//!
//! For every earlier position, the match length is how many tokens ending there equal the
//! tokens at the end of the sequence (a suffix that repeats); the token that followed that
//! position gets the longest such length L. Tokens with L >= allowed_length lose
//! multiplier * base^(L - allowed_length) from their logit. Sequence breakers stop matches, and
//! are never penalised themselves. As llama.cpp: the lengths come from a Z-algorithm over the
//! reversed sequence (O(n)), and the exponent is clamped at 88.7228391 / ln(base) (truncated),
//! so the penalty stays below float32's maximum for multiplier <= 1.

use std::collections::{HashMap, HashSet};

use super::{Num, check_f32};
use std::fmt;

use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params, resolve_token};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "dry",
    kind: PluginKind::Processor,
    description: "DRY: subtract multiplier * base^(L - allowed_length) from tokens that would extend a repeated sequence of length L.",
    ties: "",
    reference: "llama.cpp llama_sampler_dry_apply with single-token breakers and its exponent clamp; penalty_last_n = 0 means the whole sequence (llama.cpp: -1); a penalty past float32's range is capped at 3.4e38 (llama.cpp's float would overflow when multiplier > 1)",
    params: &[
        ParamInfo {
            name: "multiplier",
            ty: "float >= 0 (float32's range)",
            default: Some("0.8"),
        },
        ParamInfo {
            name: "base",
            ty: "float >= 1 (float32's range)",
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
            ty: "array of tokens (ids or single-token text; text the vocabulary cannot write is skipped)",
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
    /// The clamp on the exponent (0: none, for bases too close to 1 to overflow).
    max_exponent: i32,
    z: Vec<usize>,
    lengths: HashMap<u32, usize>,
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
        check_f32("multiplier", multiplier, multiplier >= 0.0, "a number >= 0")?;
        let base32 = check_f32("base", base, base >= 1.0, "a number >= 1")?;
        if allowed_length < 1 {
            return Err(format!(
                "allowed_length must be an integer >= 1 (got {allowed_length})"
            ));
        }
        // llama.cpp: `max_exponent = FLOAT_MAX_LOG / std::log(dry_base)` in float, truncated,
        // with FLOAT_MAX_LOG = 88.7228391f (the same float as 88.72284),
        // when dry_base > 1.000001.
        let max_exponent = if base32 > 1.000001 {
            (88.722_84_f32 / base32.ln()) as i32
        } else {
            0
        };
        Ok(Self {
            multiplier,
            base,
            allowed_length: allowed_length as usize,
            last_n,
            breakers,
            max_exponent,
            z: Vec::new(),
            lengths: HashMap::new(),
        })
    }

    /// Fills `self.lengths`: for each token that would extend a repetition of at least
    /// `allowed_length` tokens, the longest such repetition (llama.cpp's steps 1-3).
    fn match_lengths(&mut self, t: &[u32]) {
        self.lengths.clear();
        let n = t.len();
        if n <= self.allowed_length {
            return;
        }
        // Step 1: a repetition cannot reach past the most recent breaker.
        let limit = (0..n)
            .find(|&i| self.breakers.contains(&t[n - 1 - i]))
            .unwrap_or(n);
        if limit < self.allowed_length {
            return;
        }
        // Step 2: z[k] = how many tokens ending k positions before the end equal the tokens
        // at the end (the Z-function of the reversed sequence).
        reversed_z(t, &mut self.z);
        let z = &self.z;
        // Step 3: the token after the earlier copy would extend it.
        for k in 1..n {
            let len = z[k].min(limit);
            if len >= self.allowed_length {
                let next = t[n - k];
                let e = self.lengths.entry(next).or_insert(0);
                *e = (*e).max(len);
            }
        }
    }

    /// The penalty for a repetition of `len >= allowed_length` tokens, in float32.
    fn penalty(&self, len: usize) -> f32 {
        let mut exponent = (len - self.allowed_length).min(i32::MAX as usize) as i32;
        if self.max_exponent > 0 && exponent > self.max_exponent {
            exponent = self.max_exponent;
        }
        // As llama.cpp (`std::pow(float, int)` is computed in double). With multiplier > 1
        // llama.cpp's float would overflow to +inf; the cap keeps the logit finite.
        let p = (self.multiplier * self.base.powi(exponent)) as f32;
        p.min(f32::MAX)
    }
}

/// Fills `z` with the Z-function of `t` reversed: `z[k]` = how many tokens ending `k` positions
/// before the end equal the tokens at the end. Returns the token comparisons made, at most
/// `2 n`: the Z-algorithm is linear where a direct count is quadratic on repetitive text.
fn reversed_z(t: &[u32], z: &mut Vec<usize>) -> usize {
    let n = t.len();
    let at = |i: usize| t[n - 1 - i];
    z.clear();
    z.resize(n, 0);
    let (mut lt, mut rt, mut compared) = (0usize, 0usize, 0usize);
    for k in 1..n {
        let mut len = if k < rt { z[k - lt].min(rt - k) } else { 0 };
        while k + len < n {
            compared += 1;
            if at(len) != at(k + len) {
                break;
            }
            len += 1;
        }
        if k + len > rt {
            lt = k;
            rt = k + len;
        }
        z[k] = len;
    }
    compared
}

/// The breakers' token ids. A text the vocabulary cannot write (no token for it, as `"` in the
/// shipped character model) can never break a match: it is left out, not an error.
fn breaker_ids(breakers: &[String], cx: &BuildContext<'_>) -> Result<HashSet<u32>, String> {
    let mut ids = HashSet::new();
    for b in breakers {
        if b.parse::<u32>().is_err() && cx.encode.is_some_and(|enc| enc(b).is_empty()) {
            continue;
        }
        ids.insert(resolve_token(b, cx).map_err(|e| format!("breakers: {e}"))?);
    }
    Ok(ids)
}

/// Builds it from a TOML table; text breakers need the context's tokenizer.
pub fn build(t: &toml::Table, cx: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    let breakers = breaker_ids(&p.breakers, cx)?;
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
            Num(self.multiplier),
            Num(self.base),
            self.allowed_length
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
        self.match_lengths(&cx.tokens[from..]);
        for (&tok, &len) in &self.lengths {
            if !self.breakers.contains(&tok)
                && let Some(l) = logits.get_mut(tok as usize)
            {
                *l -= self.penalty(len);
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

    /// Match lengths of at least 1 (allowed_length 1), breakers applied.
    fn lengths(breakers: &[u32], t: &[u32]) -> HashMap<u32, usize> {
        let mut d = Dry::new(1.0, 2.0, 1, 0, breakers.iter().copied().collect()).unwrap();
        d.match_lengths(t);
        d.lengths
            .into_iter()
            .filter(|(tok, _)| !breakers.contains(tok))
            .collect()
    }

    #[test]
    fn hand_counted_match_lengths() {
        // 1 2 3 4 | 1 2 3: the sequence "1 2 3" repeats; the next 4 would make it 4 long.
        let t = [1, 2, 3, 4, 1, 2, 3];
        assert_eq!(lengths(&[], &t), HashMap::from([(4, 3)]));
        // Penalty for L = 3, allowed 2: 1 * 2^(3-2) = 2.
        assert_eq!(
            apply(&mut dry(&[]), &[0.0; 6], &t, 0),
            [0.0, 0.0, 0.0, 0.0, -2.0, 0.0]
        );
        // A breaker inside the earlier copy stops the match: 2 is a breaker, so only "3" matches.
        assert_eq!(lengths(&[2], &t), HashMap::from([(4, 1)]));
        assert_eq!(apply(&mut dry(&[2]), &[0.0; 6], &t, 0), [0.0; 6]);
        // Two earlier occurrences of the last token: each follower gets its own length.
        let t = [5, 1, 9, 1, 7, 5, 1];
        assert_eq!(lengths(&[], &t), HashMap::from([(9, 2), (7, 1)]));
        // The last token is a breaker: no penalty at all.
        assert!(lengths(&[1], &t).is_empty());
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

    #[test]
    fn z_algorithm_is_linear_on_repetitive_text() {
        // A direct count compares ~n²/2 tokens on one repeated token; the Z-algorithm at most
        // 2n on any text (here 64k tokens: repeated, periodic, and pseudo-random).
        let n = 1 << 16;
        let mut x = 1u64;
        let texts: [Vec<u32>; 3] = [
            vec![7; n],
            (0..n as u32).map(|i| i % 5).collect(),
            (0..n)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (x >> 61) as u32
                })
                .collect(),
        ];
        let mut z = Vec::new();
        for t in &texts {
            let compared = reversed_z(t, &mut z);
            assert!(compared <= 2 * n, "{compared} comparisons for {n} tokens");
        }
        // The repeated token: every earlier position matches all the way to the start.
        reversed_z(&texts[0], &mut z);
        assert!((1..n).all(|k| z[k] == n - k));
    }

    #[test]
    fn z_algorithm_matches_the_direct_count() {
        // The direct O(n²) definition: for each earlier position, the common suffix length.
        fn direct(t: &[u32], breakers: &[u32]) -> HashMap<u32, usize> {
            let n = t.len();
            let limit = (0..n)
                .find(|&i| breakers.contains(&t[n - 1 - i]))
                .unwrap_or(n);
            let mut out = HashMap::new();
            for end in 0..n - 1 {
                let mut len = 0;
                while len <= end && t[end - len] == t[n - 1 - len] {
                    len += 1;
                }
                let len = len.min(limit);
                let next = t[end + 1];
                if len >= 1 && !breakers.contains(&next) {
                    let e = out.entry(next).or_insert(0);
                    *e = (*e).max(len);
                }
            }
            out
        }
        let mut rng = crate::Rng::new(9);
        for case in 0..400 {
            let n = 2 + (rng.next_u64() % 60) as usize;
            let alphabet = 1 + (rng.next_u64() % 4) as u32;
            let t: Vec<u32> = (0..n)
                .map(|_| (rng.next_u64() % alphabet as u64) as u32)
                .collect();
            let breakers: Vec<u32> = if case % 3 == 0 { vec![0] } else { vec![] };
            assert_eq!(lengths(&breakers, &t), direct(&t, &breakers), "{t:?}");
        }
    }

    #[test]
    fn long_repeats_keep_a_finite_penalty() {
        // A 30-token block repeated: the current repeat is ~300 tokens past allowed_length.
        let block: Vec<u32> = (1..=30).collect();
        let t: Vec<u32> = block.iter().cycle().take(330).copied().collect();
        let mut d = Dry::new(0.8, 1.75, 2, 0, HashSet::new()).unwrap();
        // 88.7228391 / ln 1.75 = 158.5: the exponent stops at 158.
        assert_eq!(d.max_exponent, 158);
        let out = apply(&mut d, &[0.0; 40], &t, 0);
        let expected = -(0.8 * 1.75f64.powi(158)) as f32;
        assert_eq!(out[1], expected);
        assert!(out[1].is_finite() && out.iter().all(|l| l.is_finite()));
        // With multiplier > 1 the float32 penalty is capped at f32::MAX instead of +inf.
        let mut big = Dry::new(4.0, 1.75, 2, 0, HashSet::new()).unwrap();
        assert_eq!(apply(&mut big, &[0.0; 40], &t, 0)[1], -f32::MAX);
        assert!(Dry::new(1e39, 1.75, 2, 0, HashSet::new()).is_err());
        assert!(Dry::new(0.8, 1e39, 2, 0, HashSet::new()).is_err());
    }

    /// Text breakers the vocabulary cannot write are skipped; ids and one-token texts are
    /// kept; a text of two tokens is still an error.
    #[test]
    fn breakers_the_vocabulary_cannot_write_are_skipped() {
        let enc = |s: &str| -> Vec<u32> {
            match s {
                "\n" => vec![0],
                ":" => vec![7],
                "ab" => vec![1, 2],
                _ => vec![],
            }
        };
        let cx = BuildContext { encode: Some(&enc) };
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ids = breaker_ids(&list(&["\n", ":", "\"", "*", "5"]), &cx).unwrap();
        assert_eq!(ids, [0, 7, 5].into_iter().collect());
        let err = breaker_ids(&list(&["ab"]), &cx).err().unwrap();
        assert!(err.contains("encodes to 2 tokens"), "{err}");
    }
}
