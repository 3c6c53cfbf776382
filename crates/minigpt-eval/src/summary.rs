//! `summary.csv`: one row per model × strategy × temperature, pooled metrics (the README's "Experiments")
//! and the means of the per-row columns; and the plots of each against temperature.

use std::collections::BTreeMap;
use std::path::Path;

use crate::metrics;
use crate::runner::{COLUMNS, GENERATIONS, RunError, SUMMARY, atomic_write, read_generations};

/// Per-row columns whose mean over the cell's rows the summary reports (under the same name).
pub const MEANS: [&str; 15] = [
    "n_tokens",
    "rep_2",
    "rep_3",
    "rep_4",
    "diversity",
    "distinct_1",
    "distinct_2",
    "repetition_rate",
    "mean_logprob",
    "perplexity",
    "mean_entropy",
    "mean_sampling_entropy",
    "judge_perplexity",
    "seconds",
    "tokens_per_s",
];

/// Pooled metrics, before the means.
pub const POOLED: [&str; 10] = [
    "pooled_rep_2",
    "pooled_rep_3",
    "pooled_rep_4",
    "pooled_diversity",
    "pooled_distinct_1",
    "pooled_distinct_2",
    "self_bleu4",
    "zipf",
    "loop_share",
    "eos_share",
];

/// The summary's header.
pub fn summary_columns() -> Vec<String> {
    let mut c: Vec<String> = ["model", "strategy", "temperature", "rows"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    c.extend(POOLED.iter().map(|s| s.to_string()));
    c.extend(MEANS.iter().map(|s| format!("mean_{s}")));
    c
}

fn col(name: &str) -> usize {
    COLUMNS
        .iter()
        .position(|c| *c == name)
        .expect("a generations column")
}

use crate::runner::opt;

/// One summary row per (model, strategy, temperature), in order of first appearance.
pub fn summarize(records: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut order: Vec<(String, String, String)> = vec![];
    let mut groups: BTreeMap<(String, String, String), Vec<&Vec<String>>> = BTreeMap::new();
    for r in records {
        let k = (r[0].clone(), r[2].clone(), r[3].clone());
        if !groups.contains_key(&k) {
            order.push(k.clone());
        }
        groups.entry(k).or_default().push(r);
    }
    let (text, prompt_id, finish) = (col("text"), col("prompt_id"), col("finish_reason"));
    order
        .into_iter()
        .map(|k| {
            let rows = &groups[&k];
            let words: Vec<Vec<&str>> = rows.iter().map(|r| metrics::words(&r[text])).collect();
            let p = metrics::pooled(&words);
            // Self-BLEU within each prompt's continuations, averaged over all of them.
            let mut by_prompt: BTreeMap<&str, Vec<Vec<&str>>> = BTreeMap::new();
            for (r, w) in rows.iter().zip(&words) {
                by_prompt.entry(&r[prompt_id]).or_default().push(w.clone());
            }
            let mut bleu_sum = 0.0;
            let mut bleu_n = 0usize;
            for group in by_prompt.values() {
                if let Some(b) = metrics::self_bleu4(group) {
                    bleu_sum += b * group.len() as f64;
                    bleu_n += group.len();
                }
            }
            let self_bleu = (bleu_n > 0).then(|| bleu_sum / bleu_n as f64);
            let n = rows.len() as f64;
            let loops = rows
                .iter()
                .filter(|r| metrics::ends_in_loop(&r[text]))
                .count();
            let eos = rows.iter().filter(|r| r[finish] == "eos").count();
            let mut out = vec![k.0, k.1, k.2, rows.len().to_string()];
            out.extend([
                opt(p.rep[0]),
                opt(p.rep[1]),
                opt(p.rep[2]),
                opt(p.diversity),
                opt(p.distinct[0]),
                opt(p.distinct[1]),
                opt(self_bleu),
                opt(metrics::zipf_coefficient(&words)),
                opt(Some(loops as f64 / n)),
                opt(Some(eos as f64 / n)),
            ]);
            for m in MEANS {
                let c = col(m);
                let vals: Vec<f64> = rows.iter().filter_map(|r| r[c].parse().ok()).collect();
                out.push(opt(crate::runner::mean(&vals)));
            }
            out
        })
        .collect()
}

/// Rewrites `summary.csv` and the plots of a run folder from its `generations.csv`.
pub fn write_summary(out: &Path) -> Result<(), RunError> {
    let records = read_generations(&out.join(GENERATIONS), false)?;
    let rows = summarize(&records);
    let mut text = crate::csv::record(&summary_columns());
    for r in &rows {
        text.push_str(&crate::csv::record(r));
    }
    atomic_write(&out.join(SUMMARY), text.as_bytes())?;
    crate::plot::write_plots(out, &summary_columns(), &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        model: &str,
        prompt: &str,
        strategy: &str,
        t: &str,
        text: &str,
        finish: &str,
    ) -> Vec<String> {
        let mut r = vec![String::new(); COLUMNS.len()];
        r[0] = model.into();
        r[col("prompt_id")] = prompt.into();
        r[col("strategy")] = strategy.into();
        r[col("temperature")] = t.into();
        r[col("text")] = text.into();
        r[col("finish_reason")] = finish.into();
        r[col("n_tokens")] = text.len().to_string();
        r
    }

    #[test]
    fn cells_pool_their_rows_and_self_bleu_stays_within_a_prompt() {
        let loop_text = "we go we go we go we go we go we go";
        let recs = vec![
            row("m", "0", "s", "1", "a b c d", "length"),
            row("m", "0", "s", "1", "a b c d", "eos"),
            row("m", "1", "s", "1", "x y z w", "length"),
            row("m", "1", "s", "1", loop_text, "length"),
            row("m", "0", "greedy", "", "a b", "length"),
        ];
        let out = summarize(&recs);
        assert_eq!(out.len(), 2, "two cells, in order of appearance");
        let h = summary_columns();
        let get =
            |r: &Vec<String>, name: &str| r[h.iter().position(|c| c == name).unwrap()].clone();
        let s = &out[0];
        assert_eq!(&s[..4], ["m", "s", "1", "4"]);
        // Self-BLEU: prompt 0's two identical texts score 1 each; prompt 1's two texts share
        // no word, 0 each: mean over the four texts 0.5 (not 1 from comparing across prompts).
        assert_eq!(get(s, "self_bleu4"), "0.5");
        assert_eq!(get(s, "loop_share"), "0.25");
        assert_eq!(get(s, "eos_share"), "0.25");
        // Pooled rep-2: bigrams per text 3, 3, 3, 11 (unique 3, 3, 3, 2) → 1 − 11/20.
        let rep2: f64 = get(s, "pooled_rep_2").parse().unwrap();
        assert!((rep2 - 100.0 * (1.0 - 11.0 / 20.0)).abs() < 1e-9);
        // Means of per-row columns: n_tokens here is the text length.
        let n: f64 = get(s, "mean_n_tokens").parse().unwrap();
        assert!((n - (7.0 + 7.0 + 7.0 + 35.0) / 4.0).abs() < 1e-12);
        assert_eq!(get(s, "mean_judge_perplexity"), "");
        // One text: no Self-BLEU, no rep-3.
        assert_eq!(get(&out[1], "self_bleu4"), "");
        assert_eq!(get(&out[1], "pooled_rep_3"), "");
    }
}
