//! `summary.csv`: one row per model × strategy × temperature, with pooled metrics (the
//! README's "Experiments") and the means of the per-row metrics.

use std::collections::{BTreeMap, HashMap};

use crate::bootstrap::{CellStats, Interval};
use crate::error::RunError;
use crate::mauve::{MauveParams, mauve};
use crate::metrics;
use crate::records::{FeatureRecord, Keyed};
use crate::row::{GenerationRow, HUMAN, RowKey, SummaryRow};

/// The mean of the values, `None` for none.
pub fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The rows of each (model, strategy, temperature) cell, cells in order of first appearance.
fn cells(records: &[GenerationRow]) -> Vec<Vec<&GenerationRow>> {
    let mut order: Vec<(&str, &str, Option<u64>)> = vec![];
    let mut groups: BTreeMap<(&str, &str, Option<u64>), Vec<&GenerationRow>> = BTreeMap::new();
    for r in records {
        let k = (
            r.model.as_str(),
            r.strategy.as_str(),
            r.temperature.map(f64::to_bits),
        );
        if !groups.contains_key(&k) {
            order.push(k);
        }
        groups.entry(k).or_default().push(r);
    }
    order
        .into_iter()
        .map(|k| groups.remove(&k).expect("every key has rows"))
        .collect()
}

/// One summary row per (model, strategy, temperature), in order of first appearance.
pub fn summarize(records: &[GenerationRow]) -> Vec<SummaryRow> {
    cells(records).iter().map(|c| summarize_cell(c)).collect()
}

/// A line of `summary.csv`: the cell's row and the 95 % bootstrap interval of each of its
/// metrics (timings excluded), named as the metric.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryLine {
    /// The metrics.
    pub row: SummaryRow,
    /// `(metric, interval)` in the order of [`CellStats::metrics`]; `None` where the metric
    /// has no value.
    pub intervals: Vec<(String, Option<Interval>)>,
}

impl SummaryLine {
    /// A line without intervals (a summary read back from its file).
    pub fn without_intervals(row: SummaryRow) -> Self {
        Self {
            row,
            intervals: vec![],
        }
    }

    /// The interval of a metric, if it has one.
    pub fn interval(&self, metric: &str) -> Option<Interval> {
        self.intervals
            .iter()
            .find(|(n, _)| n == metric)
            .and_then(|(_, i)| *i)
    }
}

/// [`summarize`] with each cell's bootstrap intervals over prompts ([`crate::bootstrap`]).
pub fn summarize_lines(records: &[GenerationRow]) -> Vec<SummaryLine> {
    cells(records)
        .iter()
        .map(|c| SummaryLine {
            row: summarize_cell(c),
            intervals: CellStats::new(c, c[0].temperature.is_none()).intervals(),
        })
        .collect()
}

/// Sets each generated cell's `mauve` (and `mauve_features`) from the rows' feature records:
/// the cell's texts against the human continuations, with the reference algorithm's defaults
/// ([`MauveParams::default`]). Only records of the given rows count (a kill can leave records
/// of rows the CSV lacks), and a cell stays empty unless every one of its rows and every human
/// row has a record from one feature model (a folder begun before features were recorded, or
/// extended with `--force` under another judge, gets no mixed or partial MAUVE).
pub fn add_mauve(
    lines: &mut [SummaryLine],
    generations: &[GenerationRow],
    human: &[GenerationRow],
    features: &[FeatureRecord],
) -> Result<(), RunError> {
    let by_key: HashMap<RowKey, &FeatureRecord> = features.iter().map(|f| (f.key(), f)).collect();
    // All of the rows' records, if each has one from one feature model.
    let records_of = |rows: &[&GenerationRow]| -> Option<Vec<&FeatureRecord>> {
        let recs: Vec<&FeatureRecord> = rows
            .iter()
            .map(|r| by_key.get(&r.key()).copied())
            .collect::<Option<_>>()?;
        let model = &recs.first()?.feature_model;
        recs.iter()
            .all(|f| &f.feature_model == model)
            .then_some(recs)
    };
    let Some(human) = records_of(&human.iter().collect::<Vec<_>>()) else {
        return Ok(());
    };
    let model = human[0].feature_model.clone();
    let q: Vec<Vec<f32>> = human.iter().map(|f| f.features.clone()).collect();
    for line in lines.iter_mut().filter(|l| l.row.model != HUMAN) {
        let r = &line.row;
        let cell = RowKey::new(&r.model, 0, &r.strategy, r.temperature, 0);
        let rows: Vec<&GenerationRow> = generations
            .iter()
            .filter(|g| g.key().cell() == cell.cell())
            .collect();
        let Some(recs) = records_of(&rows) else {
            continue;
        };
        if recs[0].feature_model != model {
            continue;
        }
        let p: Vec<Vec<f32>> = recs.iter().map(|f| f.features.clone()).collect();
        let m = mauve(&p, &q, &MauveParams::default()).map_err(|e| {
            RunError(format!(
                "MAUVE of {} / {} at temperature {}: {e}",
                r.model,
                r.strategy,
                crate::row::format_num(r.temperature)
            ))
        })?;
        line.row.mauve = Some(m.mauve);
        line.row.mauve_features = model.clone();
    }
    Ok(())
}

/// The summary of one cell's rows (at least one).
fn summarize_cell(rows: &[&GenerationRow]) -> SummaryRow {
    let words: Vec<Vec<&str>> = rows.iter().map(|r| metrics::words(&r.text)).collect();
    let p = metrics::pooled(&words);
    // Self-BLEU within each prompt's continuations, averaged over all of them; not for a
    // deterministic strategy (no temperature), whose samples of a prompt are one text.
    let deterministic = rows[0].temperature.is_none();
    let mut by_prompt: BTreeMap<usize, Vec<Vec<&str>>> = BTreeMap::new();
    for (r, w) in rows.iter().zip(&words) {
        by_prompt.entry(r.prompt_id).or_default().push(w.clone());
    }
    let mut bleu_sum = 0.0;
    let mut bleu_n = 0usize;
    for group in by_prompt.values().filter(|_| !deterministic) {
        if let Some(b) = metrics::self_bleu4(group) {
            bleu_sum += b * group.len() as f64;
            bleu_n += group.len();
        }
    }
    // Across prompts: the cell's first texts (at most metrics::SELF_BLEU_ACROSS_TEXTS: the cost grows
    // with their square).
    let k = rows.len().min(metrics::SELF_BLEU_ACROSS_TEXTS);
    let prompt_of: Vec<usize> = rows[..k].iter().map(|r| r.prompt_id).collect();
    let self_bleu4_across = metrics::self_bleu4_across(&words[..k], &prompt_of);
    let n = rows.len() as f64;
    let loops = rows
        .iter()
        .filter(|r| metrics::ends_in_loop(&r.text))
        .count();
    let eos = rows.iter().filter(|r| r.finish_reason == "eos").count();
    // Means of each per-row metric over the rows that have it, by column name.
    let per_row: Vec<_> = rows.iter().map(|r| r.metrics()).collect();
    let m = |name: &str| {
        let vals: Vec<f64> = per_row
            .iter()
            .flat_map(|r| r.iter().filter(|(n, _)| *n == name).filter_map(|(_, v)| *v))
            .collect();
        mean(&vals)
    };
    let first = rows[0];
    SummaryRow {
        model: first.model.clone(),
        strategy: first.strategy.clone(),
        temperature: first.temperature,
        rows: rows.len(),
        pooled_rep_2: p.rep[0],
        pooled_rep_3: p.rep[1],
        pooled_rep_4: p.rep[2],
        pooled_diversity: p.diversity,
        pooled_distinct_1: p.distinct[0],
        pooled_distinct_2: p.distinct[1],
        self_bleu4: (bleu_n > 0).then(|| bleu_sum / bleu_n as f64),
        self_bleu4_across,
        zipf: metrics::zipf_coefficient(&words),
        mauve: None,
        loop_share: Some(loops as f64 / n),
        eos_share: Some(eos as f64 / n),
        mean_n_tokens: m("n_tokens"),
        mean_rep_2: m("rep_2"),
        mean_rep_3: m("rep_3"),
        mean_rep_4: m("rep_4"),
        mean_diversity: m("diversity"),
        mean_distinct_1: m("distinct_1"),
        mean_distinct_2: m("distinct_2"),
        mean_repetition_rate: m("repetition_rate"),
        mean_holtzman_repeats: m("holtzman_repeats"),
        mean_mean_logprob: m("mean_logprob"),
        mean_perplexity: m("perplexity"),
        mean_mean_entropy: m("mean_entropy"),
        mean_mean_sampling_entropy: m("mean_sampling_entropy"),
        mean_judge_perplexity: m("judge_perplexity"),
        mean_coherence: m("coherence"),
        mean_seconds: m("seconds"),
        mean_tokens_per_s: m("tokens_per_s"),
        mauve_features: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bootstrap's metrics of a cell drawn once (every prompt weight 1) are the summary's.
    #[test]
    fn unit_weights_give_the_summary_values() {
        let texts = [
            "the cat sat on the mat the cat sat on the mat the cat sat on the mat",
            "we go we go we go we go we go we go we go",
            "to be or not to be that is the question",
            "all the world is a stage and all the men",
        ];
        let mut rows = vec![];
        for (i, t) in texts.iter().enumerate() {
            let mut r = row(
                i / 2,
                "s",
                Some(0.8),
                t,
                if i == 1 { "eos" } else { "length" },
            );
            r.rep_2 = metrics::rep_n(&metrics::words(t), 2);
            r.holtzman_repeats = Some((i % 2) as f64);
            rows.push(r);
        }
        let summary = &summarize(&rows)[0];
        let refs: Vec<&GenerationRow> = rows.iter().collect();
        let stats = CellStats::new(&refs, false);
        let got = stats.metrics(&vec![1; stats.prompts()]);
        // MAUVE is the run's (from features), not a resampled cell's.
        let want: Vec<_> = summary
            .metrics()
            .into_iter()
            .filter(|(n, _)| *n != "mauve")
            .collect();
        assert_eq!(got.len(), want.len());
        for ((gn, g), (wn, w)) in got.iter().zip(want) {
            assert_eq!(gn, wn);
            match (g, w) {
                (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{gn}"),
                (a, b) => assert_eq!(*a, b, "{gn}"),
            }
        }
        let intervals = stats.intervals();
        let iv = intervals
            .iter()
            .find(|(n, _)| n == "pooled_rep_2")
            .unwrap()
            .1
            .unwrap();
        let point = summary.pooled_rep_2.unwrap();
        assert!(
            iv.lo <= point && point <= iv.hi && iv.lo < iv.hi,
            "{iv:?} around {point}"
        );
        assert!(
            intervals.iter().all(|(n, _)| n != "mean_seconds"),
            "no interval for timings"
        );
    }

    /// A deterministic strategy's samples of a prompt are copies: no Self-BLEU within a
    /// prompt (it would be 1), and across prompts the copies change nothing.
    #[test]
    fn deterministic_cells_have_self_bleu_across_prompts_only() {
        let (a, b) = ("the king is dead and gone", "the queen is here and well");
        let copies = vec![
            row(0, "greedy", None, a, "length"),
            row(0, "greedy", None, a, "length"),
            row(1, "greedy", None, b, "length"),
            row(1, "greedy", None, b, "length"),
        ];
        let once = vec![
            row(0, "greedy", None, a, "length"),
            row(1, "greedy", None, b, "length"),
        ];
        let (s, s1) = (&summarize(&copies)[0], &summarize(&once)[0]);
        assert_eq!(s.self_bleu4, None);
        let across = s.self_bleu4_across.unwrap();
        assert_eq!(Some(across), s1.self_bleu4_across);
        assert!(across > 0.0 && across < 1.0, "{across}");
        // The same texts as a sampling cell: within a prompt, copies score 1.
        let sampled: Vec<_> = copies
            .iter()
            .map(|r| GenerationRow {
                temperature: Some(1.0),
                ..r.clone()
            })
            .collect();
        assert_eq!(summarize(&sampled)[0].self_bleu4, Some(1.0));
    }

    fn row(
        prompt: usize,
        strategy: &str,
        t: Option<f64>,
        text: &str,
        finish: &str,
    ) -> GenerationRow {
        GenerationRow {
            model: "m".into(),
            prompt_id: prompt,
            strategy: strategy.into(),
            temperature: t,
            sample: 0,
            seed: 0,
            prompt: String::new(),
            text: text.into(),
            n_tokens: text.len(),
            finish_reason: finish.into(),
            rep_2: None,
            rep_3: None,
            rep_4: None,
            diversity: None,
            distinct_1: None,
            distinct_2: None,
            repetition_rate: None,
            holtzman_repeats: None,
            mean_logprob: None,
            perplexity: None,
            mean_entropy: None,
            mean_sampling_entropy: None,
            judge_perplexity: None,
            coherence: None,
            seconds: 0.5,
            tokens_per_s: None,
        }
    }

    #[test]
    fn cells_pool_their_rows_and_self_bleu_stays_within_a_prompt() {
        let loop_text = "we go we go we go we go we go we go";
        let recs = vec![
            row(0, "s", Some(1.0), "a b c d", "length"),
            row(0, "s", Some(1.0), "a b c d", "eos"),
            row(1, "s", Some(1.0), "x y z w", "length"),
            row(1, "s", Some(1.0), loop_text, "length"),
            row(0, "greedy", None, "a b", "length"),
        ];
        let out = summarize(&recs);
        assert_eq!(out.len(), 2, "two cells, in order of appearance");
        let s = &out[0];
        assert_eq!(
            (s.model.as_str(), s.strategy.as_str(), s.temperature, s.rows),
            ("m", "s", Some(1.0), 4)
        );
        // Self-BLEU: prompt 0's two identical texts score 1 each; prompt 1's two texts share
        // no word, 0 each: mean over the four texts 0.5 (not 1 from comparing across prompts).
        assert_eq!(s.self_bleu4, Some(0.5));
        assert_eq!(s.loop_share, Some(0.25));
        assert_eq!(s.eos_share, Some(0.25));
        // Pooled rep-2: bigrams per text 3, 3, 3, 11 (unique 3, 3, 3, 2) → 1 − 11/20.
        let rep2 = s.pooled_rep_2.unwrap();
        assert!((rep2 - 100.0 * (1.0 - 11.0 / 20.0)).abs() < 1e-9);
        // Means of per-row columns: n_tokens here is the text length.
        let n = s.mean_n_tokens.unwrap();
        assert!((n - (7.0 + 7.0 + 7.0 + 35.0) / 4.0).abs() < 1e-12);
        assert_eq!(s.mean_seconds, Some(0.5));
        assert_eq!(s.mean_judge_perplexity, None);
        // Across prompts: each text against the other prompt's two.
        let w = metrics::words;
        let texts = [w("a b c d"), w("a b c d"), w("x y z w"), w(loop_text)];
        let want = metrics::self_bleu4_across(&texts, &[0, 0, 1, 1]);
        assert!(want.is_some());
        assert_eq!(s.self_bleu4_across, want);
        // One text: no Self-BLEU, no rep-3.
        assert_eq!(out[1].self_bleu4, None);
        assert_eq!(out[1].self_bleu4_across, None, "no other prompt");
        assert_eq!(out[1].pooled_rep_3, None);
        assert_eq!(out[1].temperature, None);
    }

    /// MAUVE counts the given rows' records only, and only when every row of the cell and
    /// every human row has one from one feature model.
    #[test]
    fn mauve_uses_complete_records_of_the_rows_only() {
        let gens: Vec<GenerationRow> = (0..4)
            .map(|i| row(i, "s", Some(1.0), "a b", "length"))
            .collect();
        let human: Vec<GenerationRow> = (0..4)
            .map(|i| GenerationRow {
                model: HUMAN.into(),
                strategy: HUMAN.into(),
                temperature: None,
                ..row(i, HUMAN, None, "c d", "length")
            })
            .collect();
        let rec =
            |r: &GenerationRow, fm: &str, x: f32| FeatureRecord::of(r, fm, vec![x, 1.0 - x, 0.5]);
        let mut feats: Vec<FeatureRecord> = gens
            .iter()
            .enumerate()
            .map(|(i, r)| rec(r, "f", i as f32 / 4.0))
            .chain(
                human
                    .iter()
                    .enumerate()
                    .map(|(i, r)| rec(r, "f", 0.9 - i as f32 / 8.0)),
            )
            .collect();
        let mauve_of = |feats: &[FeatureRecord]| {
            let mut lines = summarize_lines(&gens);
            add_mauve(&mut lines, &gens, &human, feats).unwrap();
            (lines[0].row.mauve, lines[0].row.mauve_features.clone())
        };
        let (full, named) = mauve_of(&feats);
        assert!(full.is_some_and(|m| (0.0..=1.0).contains(&m)));
        assert_eq!(named, "f");
        // A stray record (a row of another sample the CSV lacks) changes nothing.
        let mut stray = gens[0].clone();
        stray.sample = 7;
        feats.push(rec(&stray, "f", 0.0));
        assert_eq!(mauve_of(&feats), (full, "f".to_string()));
        // A row without its record, or records of another feature model: no MAUVE.
        let missing: Vec<FeatureRecord> = feats[1..].to_vec();
        assert_eq!(mauve_of(&missing), (None, String::new()));
        let mut mixed = feats.clone();
        mixed[2] = rec(&gens[2], "g", 0.5);
        assert_eq!(mauve_of(&mixed), (None, String::new()));
        // No human records: no MAUVE.
        assert_eq!(mauve_of(&feats[..4]), (None, String::new()));
    }
}
