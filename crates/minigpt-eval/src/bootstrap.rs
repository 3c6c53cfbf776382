//! Uncertainty of a cell's metrics: a 95 % percentile bootstrap over prompts. Each of
//! [`RESAMPLES`] resamples draws the cell's prompts with replacement (each prompt brings all
//! its samples), recomputes every pooled and mean metric on the drawn texts, and the interval
//! is the 2.5th and 97.5th percentiles of those values (linear interpolation between order
//! statistics, numpy's default). Prompts, not texts, are resampled: a prompt's samples are not
//! independent of each other.
//!
//! The draws: a xoshiro256++ stream ([`Rng`]) seeded with [`SEED`] for every cell (common random
//! numbers: two cells over the same prompts see the same resamples); prompt `k` of a resample
//! is the `(next_u64() mod P)`-th of the cell's `P` prompts in increasing id order.
//! `scripts/bootstrap_reference.py` follows the same rules in numpy (the test fixture).
//!
//! Per resample, each metric is recomputed from per-text statistics gathered once: n-gram
//! counts and ids, word ids, flags and per-row values. Self-BLEU scores are per text and fixed:
//! within a prompt, a text's references move with it; across prompts, each text keeps its
//! score against the whole cell (a resample that drew a prompt twice would otherwise compare
//! copies with each other).

use std::collections::{BTreeMap, HashMap};

use minigpt_decode::Rng;

use crate::metrics;
use crate::row::GenerationRow;

/// Resamples per interval.
pub const RESAMPLES: usize = 1000;
/// The seed of every cell's resamples.
pub const SEED: u64 = 0x000B_0075_78A9;

/// A 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The 2.5th percentile.
    pub lo: f64,
    /// The 97.5th percentile.
    pub hi: f64,
}

/// The `q`-quantile (`0 ≤ q ≤ 1`) of sorted values, interpolating linearly between the order
/// statistics around position `q·(n − 1)` (numpy's default `linear` method).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    match sorted.get(i + 1) {
        Some(&next) if frac > 0.0 => sorted[i] + (next - sorted[i]) * frac,
        _ => sorted[i],
    }
}

/// The percentile bootstrap interval of `stat` over `prompts` prompts: `stat` gets each
/// resample as a count per prompt (how often it was drawn) and returns its value, or `None`
/// when the resample has none. `None` when no resample has a value.
pub fn interval(
    prompts: usize,
    resamples: usize,
    seed: u64,
    mut stat: impl FnMut(&[usize]) -> Option<f64>,
) -> Option<Interval> {
    if prompts == 0 {
        return None;
    }
    let mut rng = Rng::new(seed);
    let mut counts = vec![0usize; prompts];
    let mut values = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        counts.fill(0);
        for _ in 0..prompts {
            counts[(rng.next_u64() % prompts as u64) as usize] += 1;
        }
        values.extend(stat(&counts).filter(|v| v.is_finite()));
    }
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(Interval {
        lo: quantile(&values, 0.025),
        hi: quantile(&values, 0.975),
    })
}

/// What one text contributes to its cell's metrics.
struct TextStats {
    /// Index of its prompt among the cell's prompts.
    prompt: usize,
    /// (unique, total) word n-grams for n = 2, 3, 4.
    rep: [(usize, usize); 3],
    /// Ids of its word n-grams for n = 1, 2 (ids shared across the cell).
    ngrams: [Vec<u32>; 2],
    /// Ids of its words.
    words: Vec<u32>,
    /// Self-BLEU against the other samples of its prompt, and against the other prompts.
    bleu_within: Option<f64>,
    bleu_across: Option<f64>,
    /// Ends in a loop; ended at end-of-text.
    in_loop: bool,
    eos: bool,
    /// The per-row metrics the summary averages.
    per_row: Vec<(&'static str, Option<f64>)>,
}

/// A cell's texts reduced to what its metrics need, to recompute them for any resample.
pub struct CellStats {
    texts: Vec<TextStats>,
    prompts: usize,
    /// Distinct n-gram ids for n = 1, 2, and word ids.
    ids: [usize; 3],
}

impl CellStats {
    /// The statistics of one cell's rows (at least one). `deterministic`: the strategy has no
    /// temperature (no Self-BLEU within a prompt).
    pub fn new(rows: &[&GenerationRow], deterministic: bool) -> Self {
        let words: Vec<Vec<&str>> = rows.iter().map(|r| metrics::words(&r.text)).collect();
        let prompt_ids: BTreeMap<usize, usize> = rows
            .iter()
            .map(|r| r.prompt_id)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p, i))
            .collect();
        let mut ngram_ids: [HashMap<&[&str], u32>; 2] = [HashMap::new(), HashMap::new()];
        let mut word_ids: HashMap<&str, u32> = HashMap::new();
        let prompt_of: Vec<usize> = rows.iter().map(|r| r.prompt_id).collect();
        let k = rows.len().min(metrics::SELF_BLEU_ACROSS_TEXTS);
        let mut texts = Vec::with_capacity(rows.len());
        for (i, (r, w)) in rows.iter().zip(&words).enumerate() {
            let ngrams = [1usize, 2].map(|n| {
                let ids = &mut ngram_ids[n - 1];
                if w.len() < n {
                    return vec![];
                }
                w.windows(n)
                    .map(|g| {
                        let next = ids.len() as u32;
                        *ids.entry(g).or_insert(next)
                    })
                    .collect()
            });
            let word_list = w
                .iter()
                .map(|x| {
                    let next = word_ids.len() as u32;
                    *word_ids.entry(x).or_insert(next)
                })
                .collect();
            let others = |same: bool| -> Vec<&[&str]> {
                (0..rows.len())
                    .filter(|&j| j != i && (prompt_of[j] == prompt_of[i]) == same)
                    .filter(|&j| same || j < k)
                    .map(|j| words[j].as_slice())
                    .collect()
            };
            let within = others(true);
            let across = others(false);
            texts.push(TextStats {
                prompt: prompt_ids[&r.prompt_id],
                rep: [2, 3, 4].map(|n| metrics::ngram_counts(w, n)),
                ngrams,
                words: word_list,
                bleu_within: (!deterministic && !within.is_empty())
                    .then(|| metrics::bleu4(w, &within)),
                bleu_across: (i < k && !across.is_empty()).then(|| metrics::bleu4(w, &across)),
                in_loop: metrics::ends_in_loop(&r.text),
                eos: r.finish_reason == "eos",
                per_row: r.metrics().to_vec(),
            });
        }
        Self {
            texts,
            prompts: prompt_ids.len(),
            ids: [ngram_ids[0].len(), ngram_ids[1].len(), word_ids.len()],
        }
    }

    /// Prompts in the cell.
    pub fn prompts(&self) -> usize {
        self.prompts
    }

    /// The cell's pooled metrics and per-row means (named as in `summary.csv`) when prompt `p`
    /// counts `weights[p]` times. With every weight 1 they are the summary's values.
    pub fn metrics(&self, weights: &[usize]) -> Vec<(String, Option<f64>)> {
        let w = |t: &TextStats| weights[t.prompt];
        let drawn = || self.texts.iter().filter(move |t| weights[t.prompt] > 0);
        let mut out: Vec<(String, Option<f64>)> = vec![];
        let rep: [Option<f64>; 3] = std::array::from_fn(|n| {
            let (u, t) = drawn().fold((0, 0), |a, x| {
                (a.0 + w(x) * x.rep[n].0, a.1 + w(x) * x.rep[n].1)
            });
            (t > 0).then(|| 100.0 * (1.0 - u as f64 / t as f64))
        });
        for (n, r) in rep.iter().enumerate() {
            out.push((format!("pooled_rep_{}", n + 2), *r));
        }
        let diversity = rep
            .iter()
            .try_fold(1.0, |acc, r| r.map(|r| acc * (1.0 - r / 100.0)));
        out.push(("pooled_diversity".into(), diversity));
        for n in 0..2 {
            let mut seen = vec![false; self.ids[n]];
            let (mut unique, mut total) = (0usize, 0usize);
            for t in drawn() {
                total += w(t) * t.ngrams[n].len();
                for &g in &t.ngrams[n] {
                    if !std::mem::replace(&mut seen[g as usize], true) {
                        unique += 1;
                    }
                }
            }
            let v = (total > 0).then(|| unique as f64 / total as f64);
            out.push((format!("pooled_distinct_{}", n + 1), v));
        }
        let weighted_mean = |f: &dyn Fn(&TextStats) -> Option<f64>| {
            let (sum, n) = drawn().fold((0.0, 0usize), |a, t| match f(t) {
                Some(v) => (a.0 + w(t) as f64 * v, a.1 + w(t)),
                None => a,
            });
            (n > 0).then(|| sum / n as f64)
        };
        out.push(("self_bleu4".into(), weighted_mean(&|t| t.bleu_within)));
        out.push((
            "self_bleu4_across".into(),
            weighted_mean(&|t| t.bleu_across),
        ));
        let mut counts = vec![0usize; self.ids[2]];
        for t in drawn() {
            for &x in &t.words {
                counts[x as usize] += w(t);
            }
        }
        let freqs: Vec<usize> = counts.into_iter().filter(|&c| c > 0).collect();
        out.push(("zipf".into(), metrics::zipf_of_counts(freqs)));
        let flag = |f: fn(&TextStats) -> bool| weighted_mean(&|t| Some(f64::from(u8::from(f(t)))));
        out.push(("loop_share".into(), flag(|t| t.in_loop)));
        out.push(("eos_share".into(), flag(|t| t.eos)));
        if let Some(first) = self.texts.first() {
            for (i, (name, _)) in first.per_row.iter().enumerate() {
                out.push((format!("mean_{name}"), weighted_mean(&|t| t.per_row[i].1)));
            }
        }
        out
    }

    /// The 95 % bootstrap interval of every metric [`CellStats::metrics`] gives (timings
    /// excluded), in its order; `None` for a metric with no value in any resample, and for
    /// the metrics that count distinct types across the cell ([`TYPE_COUNTS`]).
    pub fn intervals(&self) -> Vec<(String, Option<Interval>)> {
        let names: Vec<String> = self
            .metrics(&vec![1; self.prompts])
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| !TIMINGS.contains(&n.as_str()))
            .collect();
        // One pass over the resamples for all metrics.
        let mut values: Vec<Vec<f64>> = vec![vec![]; names.len()];
        let _ = interval(self.prompts, RESAMPLES, SEED, |weights| {
            let all = self.metrics(weights);
            for (slot, name) in names.iter().enumerate() {
                if let Some((_, Some(v))) = all.iter().find(|(n, _)| n == name)
                    && v.is_finite()
                {
                    values[slot].push(*v);
                }
            }
            None
        });
        names
            .into_iter()
            .zip(values)
            .map(|(name, mut v)| {
                if v.is_empty() || TYPE_COUNTS.contains(&name.as_str()) {
                    return (name, None);
                }
                v.sort_by(f64::total_cmp);
                let iv = Interval {
                    lo: quantile(&v, 0.025),
                    hi: quantile(&v, 0.975),
                };
                (name, Some(iv))
            })
            .collect()
    }
}

/// Metrics that count distinct word types or n-grams across the whole cell: a resample that
/// draws a prompt twice holds its texts twice, which adds tokens but no types, so resampled
/// values fall far below the cell's (in the shipped sweep, pooled distinct-2 0.974 against a
/// resampled 95 % range of 0.49–0.79). A percentile interval would not cover the estimate;
/// they get none.
pub const TYPE_COUNTS: [&str; 3] = ["pooled_distinct_1", "pooled_distinct_2", "zipf"];

/// Summary columns that measure the machine, not the text: no interval.
pub const TIMINGS: [&str; 2] = ["mean_seconds", "mean_tokens_per_s"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 8.0);
        assert_eq!(quantile(&v, 0.5), 3.0); // position 1.5
        assert!((quantile(&v, 0.025) - 1.075).abs() < 1e-12); // position 0.075
        assert_eq!(quantile(&[5.0], 0.975), 5.0);
    }
}
