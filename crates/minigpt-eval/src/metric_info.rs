//! One-line definitions of the summary's metrics, for readers of a report (the README's
//! "Experiments" section has the full ones).

/// The definition of a `summary.csv` metric column, `None` for a name that is not one.
pub fn definition(metric: &str) -> Option<&'static str> {
    let mean_of = |row: &str| -> Option<&'static str> {
        Some(match row {
            "n_tokens" => "Mean tokens generated per text.",
            "rep_2" => "Mean per text of rep-2: 100·(1 − unique word bigrams / bigrams).",
            "rep_3" => "Mean per text of rep-3: 100·(1 − unique word trigrams / trigrams).",
            "rep_4" => "Mean per text of rep-4: 100·(1 − unique word 4-grams / 4-grams).",
            "diversity" => "Mean per text of diversity: ∏ over n = 2..4 of (1 − rep-n/100).",
            "distinct_1" => "Mean per text of distinct-1: unique words / words.",
            "distinct_2" => "Mean per text of distinct-2: unique word bigrams / bigrams.",
            "repetition_rate" => {
                "Mean share of words already among the 32 words before them (prompt included)."
            }
            "holtzman_repeats" => {
                "Share of texts ending in repetition by Holtzman et al. 2020's check (tokens)."
            }
            "mean_logprob" => "Mean log-probability (nats) of the chosen tokens at temperature 1.",
            "perplexity" => "Mean per text of exp(−mean log-probability) under the model.",
            "mean_entropy" => "Mean entropy (nats) of the model's raw next-token distribution.",
            "mean_sampling_entropy" => {
                "Mean entropy (nats) of the distribution sampled from, after the processors."
            }
            "judge_perplexity" => {
                "Mean perplexity of the continuation given the prompt under the judge."
            }
            "coherence" => {
                "Mean judge log-probability per token of the continuation given the prompt (Su & Collier 2023)."
            }
            "seconds" => "Mean seconds from the batch's start to the text's last token.",
            "tokens_per_s" => "Mean tokens per second of the text's batch.",
            _ => return None,
        })
    };
    Some(match metric {
        "pooled_rep_2" => {
            "rep-2 over the cell's texts pooled: 100·(1 − unique / total word bigrams)."
        }
        "pooled_rep_3" => {
            "rep-3 over the cell's texts pooled: 100·(1 − unique / total word trigrams)."
        }
        "pooled_rep_4" => {
            "rep-4 over the cell's texts pooled: 100·(1 − unique / total word 4-grams)."
        }
        "pooled_diversity" => "SimCTG's diversity: ∏ over n = 2..4 of (1 − pooled rep-n/100).",
        "pooled_distinct_1" => "Unique words / words over the whole cell.",
        "pooled_distinct_2" => "Unique word bigrams / bigrams over the whole cell.",
        "self_bleu4" => "BLEU-4 of each text against the other samples of its prompt, averaged.",
        "self_bleu4_across" => {
            "BLEU-4 of each text against the texts of the other prompts, averaged."
        }
        "zipf" => "Zipf coefficient: −slope of log frequency against log rank of word types.",
        "mauve" => {
            "MAUVE of the cell's texts against the human continuations (1 = indistinguishable)."
        }
        "loop_share" => "Share of texts ending in a block repeated ≥ 3 times over ≥ 24 characters.",
        "eos_share" => "Share of texts that ended at the end-of-text token.",
        m => return m.strip_prefix("mean_").and_then(mean_of),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::SummaryRow;

    #[test]
    fn every_summary_metric_is_defined() {
        let metrics = SummaryRow::default().metrics();
        assert_eq!(metrics.len(), 29);
        for (name, _) in metrics {
            let d = definition(name).unwrap_or_else(|| panic!("{name} has no definition"));
            assert!(d.ends_with('.') && !d.contains('\n'), "{name}: {d}");
        }
        assert_eq!(definition("model"), None);
        assert_eq!(definition("mean_model"), None);
    }
}
