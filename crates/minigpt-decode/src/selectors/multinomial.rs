//! `multinomial`: a draw from softmax(logits).

use std::fmt;

use crate::dist::{exp_neg, max_logit};
use crate::registry::{PluginInfo, PluginKind, params};
use crate::rng::Rng;
use crate::selector::{Choice, TokenSelector};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "multinomial",
    kind: PluginKind::Selector,
    description: "Draw a token from softmax(logits) with the row's seeded RNG.",
    ties: "",
    reference: "torch.multinomial over the softmax; the draw inverts the CDF in token-id order with the row's seeded RNG",
    params: &[],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {}

/// Sampling selector (reused buffers: one instance serves one row).
#[derive(Debug, Clone, Default)]
pub struct Multinomial {
    /// The finite tokens, ascending, and their probabilities.
    ids: Vec<u32>,
    probs: Vec<f64>,
}

/// Builds it from a TOML table (no parameters).
pub fn build(t: &toml::Table) -> Result<Box<dyn TokenSelector>, String> {
    let _: Params = params(t)?;
    Ok(Box::new(Multinomial::default()))
}

/// Draws an index from `probs` with one uniform number: the first index whose cumulative
/// probability exceeds it.
pub fn draw(probs: &[f64], rng: &mut Rng) -> Option<usize> {
    let u = rng.next_f64();
    let mut acc = 0.0;
    let mut last = None;
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            acc += p;
            last = Some(i);
            if u < acc {
                return Some(i);
            }
        }
    }
    // Rounding left the sum just under 1 and `u` above it.
    last
}

/// The finite tokens of `logits` (ascending, into `ids`), their `exp(l − max)` (into `probs`),
/// and `(Σ e, Σ e·d)` with `d = l − max`. Compiled for AVX2 as well where the CPU has it
/// (`multiversion`: the same operations in the same order, so both give the same bits).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn exp_terms(logits: &[f32], max: f32, ids: &mut Vec<u32>, probs: &mut Vec<f64>) -> (f64, f64) {
    exp_terms_body(logits, max, ids, probs)
}

/// [`exp_terms`]' body, for both of its compilations (and the tests' baseline one).
#[inline(always)]
fn exp_terms_body(
    logits: &[f32],
    max: f32,
    ids: &mut Vec<u32>,
    probs: &mut Vec<f64>,
) -> (f64, f64) {
    // e = exp(d) and e·d for d = l − max: −∞ gives exactly 0 to both, and an underflowed e adds
    // nothing (−p·ln p → 0; 0·(−∞) would be NaN).
    let term = |l: f32| {
        let d = (l - max) as f64;
        let e = exp_neg(d);
        (e, if e > 0.0 { e * d } else { 0.0 })
    };
    // Sixteen tokens at a time, the sums kept in sixteen lanes; a chunk that a filter left all
    // −∞ is skipped after a vectorised test.
    let (mut z, mut zd) = ([0.0f64; 16], [0.0f64; 16]);
    let (chunks, rest) = logits.as_chunks::<16>();
    for (ci, c) in chunks.iter().enumerate() {
        let mut finite = 0;
        for &l in c {
            finite += usize::from(l != f32::NEG_INFINITY);
        }
        if finite == 0 {
            continue;
        }
        let mut e = [0.0f64; 16];
        for j in 0..16 {
            let (x, xd) = term(c[j]);
            e[j] = x;
            z[j] += x;
            zd[j] += xd;
        }
        if finite == 16 {
            ids.extend(ci as u32 * 16..ci as u32 * 16 + 16);
            probs.extend_from_slice(&e);
        } else {
            for j in 0..16 {
                if c[j] != f32::NEG_INFINITY {
                    ids.push((ci * 16 + j) as u32);
                    probs.push(e[j]);
                }
            }
        }
    }
    let (mut sum, mut sum_ed) = (z.iter().sum::<f64>(), zd.iter().sum::<f64>());
    let at = logits.len() - rest.len();
    for (j, &l) in rest.iter().enumerate() {
        if l != f32::NEG_INFINITY {
            let (x, xd) = term(l);
            ids.push((at + j) as u32);
            probs.push(x);
            sum += x;
            sum_ed += xd;
        }
    }
    (sum, sum_ed)
}

impl fmt::Display for Multinomial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("multinomial")
    }
}

impl TokenSelector for Multinomial {
    fn name(&self) -> &'static str {
        INFO.name
    }
    fn select(&mut self, logits: &mut [f32], rng: &mut Rng) -> Choice {
        // The softmax over the finite tokens only, in token order, without passes over the rest
        // of a row that a filter left sparse. `exp_neg` (within 2 ulp of libm's `exp`, no call
        // per token), and the entropy as log Z − Σ e·d / Z instead of a logarithm per token
        // (crates/minigpt-native/PERFORMANCE.md, "Sampling chains").
        let max = max_logit(logits);
        self.ids.clear();
        self.probs.clear();
        let (sum, sum_ed) = exp_terms(logits, max, &mut self.ids, &mut self.probs);
        let inv = 1.0 / sum;
        self.probs.iter_mut().for_each(|p| *p *= inv);
        // The pipeline guarantees a finite logit, so `draw` finds one (the maximum has p > 0).
        let at = draw(&self.probs, rng).unwrap_or(0);
        let entropy = (sum.ln() - sum_ed / sum).max(0.0);
        Choice {
            token: self.ids[at],
            entropy,
            logprob: self.probs[at].ln(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_terms_paths_agree_and_match_libm() {
        // The AVX2 build (where the CPU has it) gives the baseline build's bits, on rows with
        // −∞ runs (whole skipped chunks, mixed chunks, a tail); each term is within 2 ulp of
        // libm's exp and the sums match a plain f64 sum.
        let mut rng = Rng::new(5);
        for case in 0..60 {
            let n = 1 + (rng.next_u64() % 3000) as usize;
            let logits: Vec<f32> = (0..n)
                .map(|i| {
                    if (i / 40) % 3 == 1 || rng.next_f64() < 0.1 {
                        f32::NEG_INFINITY
                    } else {
                        ((rng.next_f64() - 0.5) * 40.0) as f32
                    }
                })
                .collect();
            let max = crate::dist::max_logit(&logits);
            if max == f32::NEG_INFINITY {
                continue;
            }
            let (mut ids, mut probs) = (vec![], vec![]);
            let fast = exp_terms(&logits, max, &mut ids, &mut probs);
            let (mut ids0, mut probs0) = (vec![], vec![]);
            let base = exp_terms_body(&logits, max, &mut ids0, &mut probs0);
            assert_eq!(ids, ids0, "case {case}");
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&probs), bits(&probs0), "case {case}");
            assert_eq!(
                (fast.0.to_bits(), fast.1.to_bits()),
                (base.0.to_bits(), base.1.to_bits())
            );
            let want: Vec<u32> = (0..n as u32)
                .filter(|&i| logits[i as usize] != f32::NEG_INFINITY)
                .collect();
            assert_eq!(ids, want, "case {case}");
            let (mut z, mut zd) = (0.0f64, 0.0f64);
            for (&i, &e) in ids.iter().zip(&probs) {
                let d = (logits[i as usize] - max) as f64;
                let libm = d.exp();
                assert!(
                    (e - libm).abs() <= 4.5e-16 * libm,
                    "case {case}: {e} vs {libm}"
                );
                z += libm;
                zd += libm * d;
            }
            assert!((fast.0 - z).abs() <= 1e-13 * z, "case {case}");
            assert!(
                (fast.1 - zd).abs() <= 1e-12 * zd.abs().max(1.0),
                "case {case}"
            );
        }
    }

    #[test]
    fn chi_square_against_softmax() {
        let logits = [0.0f32, 1.0, 2.0, -1.0, 0.5];
        let probs = crate::dist::softmax(&logits);
        let mut rng = Rng::new(42);
        let n = 10_000;
        let mut counts = [0usize; 5];
        for _ in 0..n {
            counts[Multinomial::default()
                .select(&mut logits.clone(), &mut rng)
                .token as usize] += 1;
        }
        let chi2: f64 = counts
            .iter()
            .zip(&probs)
            .map(|(&c, &p)| (c as f64 - p * n as f64).powi(2) / (p * n as f64))
            .sum();
        // 4 degrees of freedom: the 99.9 % quantile is 18.47.
        assert!(chi2 < 18.47, "chi2 = {chi2}, counts = {counts:?}");
    }

    #[test]
    fn never_picks_masked_and_reports_entropy() {
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            let c = Multinomial::default()
                .select(&mut [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY], &mut rng);
            assert_eq!(
                c,
                Choice {
                    token: 1,
                    entropy: 0.0,
                    logprob: 0.0
                }
            );
        }
        let c = Multinomial::default().select(&mut [0.0, 0.0], &mut rng);
        assert!((c.entropy - 2f64.ln()).abs() < 1e-12);
        assert!((c.logprob - 0.5f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn same_seed_same_tokens() {
        let logits = [0.3f32, 0.1, 0.9, 0.2];
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..50)
                .map(|_| {
                    Multinomial::default()
                        .select(&mut logits.clone(), &mut rng)
                        .token
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
