//! `typical_p`: locally typical sampling (Meister et al. 2023).

use std::fmt;

use super::check;
use crate::dist::max_logit;
use crate::mass_cut::MassCut;
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, params};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "typical_p",
    kind: PluginKind::Processor,
    description: "Locally typical: sort by |-log p - H| ascending and keep until the mass reaches p, with every token as close as the crossing one (Meister et al. 2023).",
    ties: "every token tied with the crossing token's distance is kept (as transformers)",
    reference: "transformers TypicalLogitsWarper",
    params: &[ParamInfo {
        name: "p",
        ty: "float in (0, 1]",
        default: None,
    }],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    p: f64,
}

/// Typical-set filter.
#[derive(Debug, Clone)]
pub struct TypicalP {
    mass: f64,
    cut: MassCut,
}

impl TypicalP {
    /// Mass in (0, 1].
    pub fn new(mass: f64) -> Result<Self, String> {
        check("p", mass, mass > 0.0 && mass <= 1.0, "in (0, 1]")?;
        Ok(Self {
            mass,
            cut: MassCut::default(),
        })
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table, _: &BuildContext<'_>) -> Result<Box<dyn LogitsProcessor>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(TypicalP::new(p.p)?))
}

impl fmt::Display for TypicalP {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "typical_p({})", self.mass)
    }
}

impl LogitsProcessor for TypicalP {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn process(&mut self, _: &StepContext<'_>, logits: &mut [f32]) {
        if self.mass >= 1.0 {
            return;
        }
        // −log p_i − H = (logsumexp − l_i) − H = a − l_i, with a = logsumexp − H the mean logit
        // under the softmax: the order is by |a − l_i|.
        let max = max_logit(logits);
        if max == f32::NEG_INFINITY {
            return;
        }
        let max = max as f64;
        let Some((ka, delta)) = self.cut.typical(logits, max, self.mass) else {
            return;
        };
        // The logits with |(max − l) − ka| ≤ δ (in f64) form an interval of float32 values:
        // find its ends once, then mask with f32 compares (vectorised).
        let (lo, hi) = within(max, ka, delta);
        for l in logits.iter_mut() {
            *l = if *l < lo || *l > hi {
                f32::NEG_INFINITY
            } else {
                *l
            };
        }
    }
}

/// The float32 interval `[lo, hi]` of values `l` with `|(max − l) − ka| ≤ δ` computed in
/// f64 (not empty: the caller's crossing token is in it). The predicate is monotone on each
/// side of `max − ka`, so the ends are found by stepping a few ulps from a first guess.
fn within(max: f64, ka: f64, delta: f64) -> (f32, f32) {
    let ok = |l: f32| ((max - l as f64) - ka).abs() <= delta;
    let centre = max - ka;
    let mut hi = (centre + delta) as f32;
    while !ok(hi) && hi > f32::NEG_INFINITY {
        hi = hi.next_down();
    }
    while hi < f32::INFINITY && ok(hi.next_up()) {
        hi = hi.next_up();
    }
    let mut lo = (centre - delta) as f32;
    while !ok(lo) && lo < f32::INFINITY {
        lo = lo.next_up();
    }
    while lo > f32::NEG_INFINITY && ok(lo.next_down()) {
        lo = lo.next_down();
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::{NEG, apply};

    #[test]
    fn exact_survivors() {
        // p = 0.7, 0.2, 0.1: H = 0.8018; |-ln p - H| = 0.445, 0.808, 1.501.
        let l = [0.7f32.ln(), 0.2f32.ln(), 0.1f32.ln()];
        let run = |m: f64, l: &[f32]| apply(&mut TypicalP::new(m).unwrap(), l, &[], 0);
        assert_eq!(run(0.5, &l), [l[0], NEG, NEG]);
        assert_eq!(run(0.8, &l), [l[0], l[1], NEG]);
        assert_eq!(run(0.95, &l), l);
        // p = 0.4, 0.3, 0.3 (H = 1.0889): the 0.3s (|1.204 - H| = 0.115) are closer than 0.4
        // (|0.916 - H| = 0.173), so mass 0.5 keeps both 0.3s and drops the most likely token.
        let l2 = [0.4f32.ln(), 0.3f32.ln(), 0.3f32.ln()];
        assert_eq!(run(0.5, &l2), [NEG, l2[1], l2[2]]);
        // Ties with the crossing token stay (transformers): all four of [1, 1, 1, 1] at 0.5.
        assert_eq!(run(0.5, &[1.0; 4]), [1.0; 4]);
        assert_eq!(run(0.2, &[1.0, 1.0, NEG]), [1.0, 1.0, NEG]);
        assert_eq!(run(0.2, &[0.0]), [0.0]);
        assert!(TypicalP::new(0.0).is_err());
    }

    #[test]
    fn the_interval_is_exact() {
        let mut rng = crate::Rng::new(4);
        for _ in 0..5000 {
            let max = ((rng.next_f64() - 0.5) * 40.0) as f32 as f64;
            let ka = rng.next_f64() * 10.0;
            let k = rng.next_f64() * 5.0;
            let d = |l: f32| ((max - l as f64) - ka).abs();
            let (lo, hi) = within(max, ka, k);
            for l in [lo, hi] {
                assert!(d(l) <= k);
            }
            assert!(d(lo.next_down()) > k);
            assert!(d(hi.next_up()) > k);
        }
    }
}
