//! `xtc` ("exclude top choices", llama.cpp): with some probability, drop every token above a
//! probability threshold except the least likely of them.

use std::fmt;

use super::check;
use crate::dist::{count_in, f32_threshold, fast_stats, lse_entropy_fast};
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};
use crate::rng::Rng;

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "xtc",
    kind: PluginKind::Processor,
    description: "Exclude top choices (llama.cpp): with the given probability, drop all tokens with p >= threshold but the least likely of them.",
    ties: "among tokens tied as the least likely above the threshold, the highest id stays (llama.cpp's choice follows its sort order; the count is the same)",
    reference: "llama.cpp llama_sample_xtc_apply; only tokens with p > 0 count as above the threshold; acts when its draw u < probability (llama.cpp: u <= probability)",
    params: &[
        ParamInfo {
            name: "threshold",
            ty: "float in [0, 0.5]",
            default: Some("0.1"),
        },
        ParamInfo {
            name: "probability",
            ty: "float in [0, 1]",
            default: Some("0.5"),
        },
    ],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "default_threshold")]
    threshold: f64,
    #[serde(default = "default_probability")]
    probability: f64,
}
fn default_threshold() -> f64 {
    0.1
}
fn default_probability() -> f64 {
    0.5
}

/// XTC with its own random stream (seeded from the row's seed on first use).
#[derive(Debug, Clone)]
pub struct Xtc {
    threshold: f64,
    probability: f64,
    rng: Option<Rng>,
}

/// Salt that separates XTC's stream from the selector's.
const SALT: u64 = 0x5854_435F_5854_435F;

impl Xtc {
    /// Threshold in [0, 0.5] (above 0.5 at most one token can pass, so XTC would never act)
    /// and probability in [0, 1].
    pub fn new(threshold: f64, probability: f64) -> Result<Self, String> {
        check(
            "threshold",
            threshold,
            (0.0..=0.5).contains(&threshold),
            "in [0, 0.5]",
        )?;
        check(
            "probability",
            probability,
            (0.0..=1.0).contains(&probability),
            "in [0, 1]",
        )?;
        Ok(Self {
            threshold,
            probability,
            rng: None,
        })
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table, _: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(Xtc::new(p.threshold, p.probability)?))
}

impl fmt::Display for Xtc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "xtc(threshold={}, probability={})",
            self.threshold, self.probability
        )
    }
}

impl LogitsProcessor for Xtc {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn process(&mut self, cx: &StepContext<'_>, logits: &mut [f32]) {
        let rng = self.rng.get_or_insert_with(|| Rng::new(cx.seed ^ SALT));
        // One draw per step, acting or not, so the stream does not depend on the logits.
        if rng.next_f64() >= self.probability {
            return;
        }
        // p_i ≥ threshold ⇔ l_i ≥ logsumexp + ln threshold, and p_i > 0: a token whose
        // probability underflows (below e^−708, where the processors' exp gives 0) is never
        // "above", even at threshold 0. Float32 exps with an error bound place every token
        // outside a narrow band around that line; a token inside it sends the row through the
        // f64 computation. Then two passes of float32 compares.
        let floor = self.threshold.ln().max(-708.0);
        let f = fast_stats(logits);
        let (lo, hi) = (
            f32_threshold(f.lse + floor - f.lse_err),
            f32_threshold(f.lse + floor + f.lse_err),
        );
        let line = if count_in(logits, lo, hi) > 0 {
            let (_, lse, _) = lse_entropy_fast(logits);
            f32_threshold(lse + floor)
        } else {
            lo
        };
        // `line` is finite or +∞ (`floor` ≥ −708), so −∞ is never above it.
        if count_in(logits, line, f32::INFINITY) < 2 {
            return;
        }
        // The least likely token above the line (the highest id on ties) stays.
        let mut lanes = [f32::INFINITY; 8];
        let (chunks, rest) = logits.as_chunks::<8>();
        for c in chunks {
            for j in 0..8 {
                let above = if c[j] >= line { c[j] } else { f32::INFINITY };
                lanes[j] = if above < lanes[j] { above } else { lanes[j] };
            }
        }
        let least = lanes
            .iter()
            .chain(rest.iter().filter(|&&l| l >= line))
            .fold(f32::INFINITY, |m, &l| if l < m { l } else { m });
        let keep = logits.iter().rposition(|&l| l == least).unwrap_or(0);
        let kept = logits[keep];
        // Mask everything above the line (a branch-free select, so it vectorises), then put
        // the kept token back.
        for l in logits.iter_mut() {
            *l = if *l >= line { f32::NEG_INFINITY } else { *l };
        }
        logits[keep] = kept;
    }

    fn reset(&mut self) {
        self.rng = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::{NEG, apply};

    #[test]
    fn drops_all_top_choices_but_the_least_likely() {
        // p = 0.5, 0.3, 0.15, 0.05; threshold 0.1: tokens 0, 1, 2 are above, 2 is kept.
        let l = [0.5f32.ln(), 0.3f32.ln(), 0.15f32.ln(), 0.05f32.ln()];
        let mut always = Xtc::new(0.1, 1.0).unwrap();
        assert_eq!(apply(&mut always, &l, &[], 0), [NEG, NEG, l[2], l[3]]);
        let mut never = Xtc::new(0.1, 0.0).unwrap();
        assert_eq!(apply(&mut never, &l, &[], 0), l);
        // Only one token above the threshold: nothing to exclude.
        let mut high = Xtc::new(0.4, 1.0).unwrap();
        assert_eq!(apply(&mut high, &l, &[], 0), l);
        // All equal (0.25 each): the highest id is kept.
        assert_eq!(apply(&mut always, &[1.0; 4], &[], 0), [NEG, NEG, NEG, 1.0]);
        assert_eq!(apply(&mut always, &[0.0], &[], 0), [0.0]);
        // −∞ entries are never above the threshold.
        assert_eq!(
            apply(&mut always, &[0.0, NEG, 0.0], &[], 0),
            [NEG, NEG, 0.0]
        );
        assert!(Xtc::new(0.6, 0.5).is_err());
    }

    #[test]
    fn acts_with_the_given_probability() {
        let l = [0.0f32, 0.0, -5.0];
        let mut x = Xtc::new(0.1, 0.3).unwrap();
        let n = 10_000;
        let acted = (0..n)
            .filter(|_| apply(&mut x, &l, &[], 0)[0] == NEG)
            .count();
        // Binomial(10000, 0.3): sd = 45.8; 5 sd either side.
        assert!((acted as f64 - 3000.0).abs() < 230.0, "{acted}");
    }
}
