//! `summary.csv`: one row per model × strategy × temperature, with pooled metrics (the
//! README's "Experiments") and the means of the per-row metrics.

use std::collections::BTreeMap;

use crate::metrics;
use crate::row::{GenerationRow, SummaryRow};

/// The mean of the values, `None` for none.
pub fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// One summary row per (model, strategy, temperature), in order of first appearance.
pub fn summarize(records: &[GenerationRow]) -> Vec<SummaryRow> {
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
        .map(|k| summarize_cell(&groups[&k]))
        .collect()
}

/// The summary of one cell's rows (at least one).
fn summarize_cell(rows: &[&GenerationRow]) -> SummaryRow {
    let words: Vec<Vec<&str>> = rows.iter().map(|r| metrics::words(&r.text)).collect();
    let p = metrics::pooled(&words);
    // Self-BLEU within each prompt's continuations, averaged over all of them.
    let mut by_prompt: BTreeMap<usize, Vec<Vec<&str>>> = BTreeMap::new();
    for (r, w) in rows.iter().zip(&words) {
        by_prompt.entry(r.prompt_id).or_default().push(w.clone());
    }
    let mut bleu_sum = 0.0;
    let mut bleu_n = 0usize;
    for group in by_prompt.values() {
        if let Some(b) = metrics::self_bleu4(group) {
            bleu_sum += b * group.len() as f64;
            bleu_n += group.len();
        }
    }
    let n = rows.len() as f64;
    let loops = rows
        .iter()
        .filter(|r| metrics::ends_in_loop(&r.text))
        .count();
    let eos = rows.iter().filter(|r| r.finish_reason == "eos").count();
    // Means of each per-row metric over the rows that have it.
    let per_row: Vec<_> = rows.iter().map(|r| r.metrics()).collect();
    let m = |i: usize| {
        let vals: Vec<f64> = per_row.iter().filter_map(|r| r[i].1).collect();
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
        zipf: metrics::zipf_coefficient(&words),
        loop_share: Some(loops as f64 / n),
        eos_share: Some(eos as f64 / n),
        mean_n_tokens: m(0),
        mean_rep_2: m(1),
        mean_rep_3: m(2),
        mean_rep_4: m(3),
        mean_diversity: m(4),
        mean_distinct_1: m(5),
        mean_distinct_2: m(6),
        mean_repetition_rate: m(7),
        mean_mean_logprob: m(8),
        mean_perplexity: m(9),
        mean_mean_entropy: m(10),
        mean_mean_sampling_entropy: m(11),
        mean_judge_perplexity: m(12),
        mean_seconds: m(13),
        mean_tokens_per_s: m(14),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            mean_logprob: None,
            perplexity: None,
            mean_entropy: None,
            mean_sampling_entropy: None,
            judge_perplexity: None,
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
        // One text: no Self-BLEU, no rep-3.
        assert_eq!(out[1].self_bleu4, None);
        assert_eq!(out[1].pooled_rep_3, None);
        assert_eq!(out[1].temperature, None);
    }
}
