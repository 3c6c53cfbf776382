//! The rows of a run folder's CSV files, as typed structs read and written with the `csv`
//! crate: column order is field order, and numbers are written the way the README's
//! "Experiments" section describes (shortest round-trip decimal, `-0` as `0`, empty for none).

use serde::{Deserialize, Serialize, Serializer};

/// The `model` and `strategy` of the rows of human continuations (`human.csv`).
pub const HUMAN: &str = "human";

/// One generated continuation: a line of `generations.csv`. The first five fields identify
/// the row ([`RowKey`]); the README's "Experiments" section defines each metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerationRow {
    /// The model's short name.
    pub model: String,
    /// Index of the prompt in the config's prompt list.
    pub prompt_id: usize,
    /// The strategy's name.
    pub strategy: String,
    /// The temperature; empty for deterministic strategies.
    #[serde(serialize_with = "num")]
    pub temperature: Option<f64>,
    /// Which sample of the (prompt, strategy, temperature) cell.
    pub sample: usize,
    /// The row's sampling seed.
    pub seed: u64,
    /// The prompt text.
    pub prompt: String,
    /// The continuation text.
    pub text: String,
    /// Tokens generated.
    pub n_tokens: usize,
    /// `length`, `eos` or `stop`.
    pub finish_reason: String,
    /// Share of repeated word bigrams, in percent.
    #[serde(serialize_with = "num")]
    pub rep_2: Option<f64>,
    /// Share of repeated word trigrams, in percent.
    #[serde(serialize_with = "num")]
    pub rep_3: Option<f64>,
    /// Share of repeated word 4-grams, in percent.
    #[serde(serialize_with = "num")]
    pub rep_4: Option<f64>,
    /// Product of (1 − rep-n/100) over n = 2, 3, 4.
    #[serde(serialize_with = "num")]
    pub diversity: Option<f64>,
    /// Distinct unigrams ÷ unigrams.
    #[serde(serialize_with = "num")]
    pub distinct_1: Option<f64>,
    /// Distinct bigrams ÷ bigrams.
    #[serde(serialize_with = "num")]
    pub distinct_2: Option<f64>,
    /// Share of words that repeat one of the 32 words before them (the sweep's window).
    #[serde(serialize_with = "num")]
    pub repetition_rate: Option<f64>,
    /// 1 when the generated tokens end in repetition by Holtzman et al. 2020's check
    /// ([`crate::metrics::holtzman_repetition`]), else 0; empty for no tokens.
    #[serde(serialize_with = "num")]
    pub holtzman_repeats: Option<f64>,
    /// Mean log-probability of the chosen tokens under the model.
    #[serde(serialize_with = "num")]
    pub mean_logprob: Option<f64>,
    /// exp(−mean_logprob).
    #[serde(serialize_with = "num")]
    pub perplexity: Option<f64>,
    /// Mean entropy of the model's distribution, in nats.
    #[serde(serialize_with = "num")]
    pub mean_entropy: Option<f64>,
    /// Mean entropy of the distribution sampled from (after the processors), in nats.
    #[serde(serialize_with = "num")]
    pub mean_sampling_entropy: Option<f64>,
    /// Perplexity of the continuation under the judge model.
    #[serde(serialize_with = "num")]
    pub judge_perplexity: Option<f64>,
    /// Coherence (Su & Collier 2023): the mean log-probability per token of the continuation
    /// given the prompt under the judge, `−ln judge_perplexity`.
    #[serde(serialize_with = "num")]
    pub coherence: Option<f64>,
    /// Seconds from the batch's start to the row's last token.
    #[serde(serialize_with = "fixed4")]
    pub seconds: f64,
    /// Tokens ÷ seconds; empty when no time passed.
    #[serde(serialize_with = "fixed2")]
    pub tokens_per_s: Option<f64>,
}

/// What identifies a generated row: equal keys are the same row of a grid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowKey {
    /// The model's short name.
    pub model: String,
    /// The prompt's index.
    pub prompt_id: usize,
    /// The strategy's name.
    pub strategy: String,
    /// The temperature's bits (exact: the CSV's decimal reads back to the same `f64`).
    pub temperature: Option<u64>,
    /// The sample's index.
    pub sample: usize,
}

impl RowKey {
    /// The key of a row of `model` × `strategy` × `temperature` × prompt × sample.
    pub fn new(
        model: &str,
        prompt_id: usize,
        strategy: &str,
        temperature: Option<f64>,
        sample: usize,
    ) -> Self {
        Self {
            model: model.to_string(),
            prompt_id,
            strategy: strategy.to_string(),
            temperature: temperature.map(f64::to_bits),
            sample,
        }
    }

    /// The cell: model, strategy, temperature.
    pub fn cell(&self) -> (&str, &str, Option<u64>) {
        (&self.model, &self.strategy, self.temperature)
    }
}

impl GenerationRow {
    /// The row's identity.
    pub fn key(&self) -> RowKey {
        RowKey::new(
            &self.model,
            self.prompt_id,
            &self.strategy,
            self.temperature,
            self.sample,
        )
    }

    /// The per-row metrics a summary averages, named as the columns.
    pub fn metrics(&self) -> [(&'static str, Option<f64>); 17] {
        [
            ("n_tokens", Some(self.n_tokens as f64)),
            ("rep_2", self.rep_2),
            ("rep_3", self.rep_3),
            ("rep_4", self.rep_4),
            ("diversity", self.diversity),
            ("distinct_1", self.distinct_1),
            ("distinct_2", self.distinct_2),
            ("repetition_rate", self.repetition_rate),
            ("holtzman_repeats", self.holtzman_repeats),
            ("mean_logprob", self.mean_logprob),
            ("perplexity", self.perplexity),
            ("mean_entropy", self.mean_entropy),
            ("mean_sampling_entropy", self.mean_sampling_entropy),
            ("judge_perplexity", self.judge_perplexity),
            ("coherence", self.coherence),
            ("seconds", Some(self.seconds)),
            ("tokens_per_s", self.tokens_per_s),
        ]
    }
}

/// One model × strategy × temperature: a line of `summary.csv`. Pooled metrics come first,
/// then the means of the per-row metrics ([`GenerationRow::metrics`]) as `mean_<name>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// The model's short name.
    pub model: String,
    /// The strategy's name.
    pub strategy: String,
    /// The temperature; empty for deterministic strategies.
    #[serde(serialize_with = "num")]
    pub temperature: Option<f64>,
    /// Rows in the cell.
    pub rows: usize,
    /// rep-2 over all the cell's texts pooled.
    #[serde(serialize_with = "num")]
    pub pooled_rep_2: Option<f64>,
    /// rep-3, pooled.
    #[serde(serialize_with = "num")]
    pub pooled_rep_3: Option<f64>,
    /// rep-4, pooled.
    #[serde(serialize_with = "num")]
    pub pooled_rep_4: Option<f64>,
    /// Diversity, pooled.
    #[serde(serialize_with = "num")]
    pub pooled_diversity: Option<f64>,
    /// distinct-1, pooled.
    #[serde(serialize_with = "num")]
    pub pooled_distinct_1: Option<f64>,
    /// distinct-2, pooled.
    #[serde(serialize_with = "num")]
    pub pooled_distinct_2: Option<f64>,
    /// Self-BLEU-4 within each prompt's continuations, averaged; empty for deterministic
    /// strategies (one text per prompt).
    #[serde(serialize_with = "num")]
    pub self_bleu4: Option<f64>,
    /// Self-BLEU-4 of each text against the texts of the other prompts, averaged.
    #[serde(serialize_with = "num")]
    pub self_bleu4_across: Option<f64>,
    /// Zipf coefficient of the pooled texts.
    #[serde(serialize_with = "num")]
    pub zipf: Option<f64>,
    /// MAUVE of the cell's texts against the human continuations of the same prompts
    /// ([`crate::mauve`]); empty without references.
    #[serde(serialize_with = "num")]
    pub mauve: Option<f64>,
    /// Share of rows that end in a loop.
    #[serde(serialize_with = "num")]
    pub loop_share: Option<f64>,
    /// Share of rows that ended at the end-of-text token.
    #[serde(serialize_with = "num")]
    pub eos_share: Option<f64>,
    /// Mean of [`GenerationRow::n_tokens`].
    #[serde(serialize_with = "num")]
    pub mean_n_tokens: Option<f64>,
    /// Mean of [`GenerationRow::rep_2`].
    #[serde(serialize_with = "num")]
    pub mean_rep_2: Option<f64>,
    /// Mean of [`GenerationRow::rep_3`].
    #[serde(serialize_with = "num")]
    pub mean_rep_3: Option<f64>,
    /// Mean of [`GenerationRow::rep_4`].
    #[serde(serialize_with = "num")]
    pub mean_rep_4: Option<f64>,
    /// Mean of [`GenerationRow::diversity`].
    #[serde(serialize_with = "num")]
    pub mean_diversity: Option<f64>,
    /// Mean of [`GenerationRow::distinct_1`].
    #[serde(serialize_with = "num")]
    pub mean_distinct_1: Option<f64>,
    /// Mean of [`GenerationRow::distinct_2`].
    #[serde(serialize_with = "num")]
    pub mean_distinct_2: Option<f64>,
    /// Mean of [`GenerationRow::repetition_rate`].
    #[serde(serialize_with = "num")]
    pub mean_repetition_rate: Option<f64>,
    /// Mean of [`GenerationRow::holtzman_repeats`]: the share of texts that repeat.
    #[serde(serialize_with = "num")]
    pub mean_holtzman_repeats: Option<f64>,
    /// Mean of [`GenerationRow::mean_logprob`].
    #[serde(serialize_with = "num")]
    pub mean_mean_logprob: Option<f64>,
    /// Mean of [`GenerationRow::perplexity`].
    #[serde(serialize_with = "num")]
    pub mean_perplexity: Option<f64>,
    /// Mean of [`GenerationRow::mean_entropy`].
    #[serde(serialize_with = "num")]
    pub mean_mean_entropy: Option<f64>,
    /// Mean of [`GenerationRow::mean_sampling_entropy`].
    #[serde(serialize_with = "num")]
    pub mean_mean_sampling_entropy: Option<f64>,
    /// Mean of [`GenerationRow::judge_perplexity`].
    #[serde(serialize_with = "num")]
    pub mean_judge_perplexity: Option<f64>,
    /// Mean of [`GenerationRow::coherence`].
    #[serde(serialize_with = "num")]
    pub mean_coherence: Option<f64>,
    /// Mean of [`GenerationRow::seconds`].
    #[serde(serialize_with = "num")]
    pub mean_seconds: Option<f64>,
    /// Mean of [`GenerationRow::tokens_per_s`].
    #[serde(serialize_with = "num")]
    pub mean_tokens_per_s: Option<f64>,
    /// The model whose hidden states are MAUVE's features: the judge, else the generating model.
    pub mauve_features: String,
}

impl SummaryRow {
    /// Every metric of the row, named as its column: pooled ones, then the means.
    pub fn metrics(&self) -> [(&'static str, Option<f64>); 29] {
        [
            ("pooled_rep_2", self.pooled_rep_2),
            ("pooled_rep_3", self.pooled_rep_3),
            ("pooled_rep_4", self.pooled_rep_4),
            ("pooled_diversity", self.pooled_diversity),
            ("pooled_distinct_1", self.pooled_distinct_1),
            ("pooled_distinct_2", self.pooled_distinct_2),
            ("self_bleu4", self.self_bleu4),
            ("self_bleu4_across", self.self_bleu4_across),
            ("zipf", self.zipf),
            ("mauve", self.mauve),
            ("loop_share", self.loop_share),
            ("eos_share", self.eos_share),
            ("mean_n_tokens", self.mean_n_tokens),
            ("mean_rep_2", self.mean_rep_2),
            ("mean_rep_3", self.mean_rep_3),
            ("mean_rep_4", self.mean_rep_4),
            ("mean_diversity", self.mean_diversity),
            ("mean_distinct_1", self.mean_distinct_1),
            ("mean_distinct_2", self.mean_distinct_2),
            ("mean_repetition_rate", self.mean_repetition_rate),
            ("mean_holtzman_repeats", self.mean_holtzman_repeats),
            ("mean_mean_logprob", self.mean_mean_logprob),
            ("mean_perplexity", self.mean_perplexity),
            ("mean_mean_entropy", self.mean_mean_entropy),
            (
                "mean_mean_sampling_entropy",
                self.mean_mean_sampling_entropy,
            ),
            ("mean_judge_perplexity", self.mean_judge_perplexity),
            ("mean_coherence", self.mean_coherence),
            ("mean_seconds", self.mean_seconds),
            ("mean_tokens_per_s", self.mean_tokens_per_s),
        ]
    }

    /// The metric of that column name, if the row has such a column.
    pub fn metric(&self, name: &str) -> Option<Option<f64>> {
        self.metrics()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

/// One model's bits per byte on the held-out text: a line of `bits_per_byte.csv`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BitsPerByteRow {
    /// The model's short name.
    pub model: String,
    /// Tokens of the text under the model's tokenizer.
    pub tokens: usize,
    /// UTF-8 bytes of the scored tokens.
    pub bytes: usize,
    /// Bits per byte.
    #[serde(serialize_with = "num")]
    pub bits_per_byte: Option<f64>,
    /// The scoring window's stride, in tokens.
    pub stride: usize,
}

/// A number as the CSVs write it: shortest round-trip decimal, `-0` as `0`, empty for none.
pub fn format_num(v: Option<f64>) -> String {
    v.map_or_else(String::new, |x| format!("{}", x + 0.0))
}

fn num<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_num(*v))
}

fn fixed4<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:.4}"))
}

fn fixed2<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.map_or_else(String::new, |x| format!("{x:.2}")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn numbers_print_shortest_and_none_is_empty() {
        assert_eq!(format_num(Some(0.5)), "0.5");
        assert_eq!(format_num(Some(1.0)), "1");
        assert_eq!(format_num(Some(-0.0)), "0");
        assert_eq!(format_num(Some(1e-7)), "0.0000001");
        assert_eq!(format_num(Some(0.1 + 0.2)), "0.30000000000000004");
        assert_eq!(format_num(None), "");
    }

    #[test]
    fn the_summary_lists_every_per_row_metric_as_a_mean() {
        let per_row: Vec<String> = sample_row()
            .metrics()
            .iter()
            .map(|(n, _)| format!("mean_{n}"))
            .collect();
        let summary = [
            "pooled_rep_2",
            "pooled_rep_3",
            "pooled_rep_4",
            "pooled_diversity",
            "pooled_distinct_1",
            "pooled_distinct_2",
            "self_bleu4",
            "self_bleu4_across",
            "zipf",
            "mauve",
            "loop_share",
            "eos_share",
        ]
        .into_iter()
        .map(String::from)
        .chain(per_row)
        .collect::<Vec<_>>();
        let ours: Vec<&str> = SummaryRow::default()
            .metrics()
            .iter()
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(ours, summary);
    }

    pub(crate) fn sample_row() -> GenerationRow {
        GenerationRow {
            model: "m".into(),
            prompt_id: 3,
            strategy: "top_p_0.9".into(),
            temperature: Some(0.8),
            sample: 1,
            seed: 42,
            prompt: "ROMEO:".into(),
            text: "a \"quoted\", two\r\nlines".into(),
            n_tokens: 5,
            finish_reason: "length".into(),
            rep_2: Some(0.0),
            rep_3: None,
            rep_4: None,
            diversity: Some(-0.0),
            distinct_1: Some(0.75),
            distinct_2: Some(1.0),
            repetition_rate: Some(0.1 + 0.2),
            holtzman_repeats: Some(1.0),
            mean_logprob: Some(-1.5),
            perplexity: Some(4.4816890703380645),
            mean_entropy: Some(2.0),
            mean_sampling_entropy: Some(1.25),
            judge_perplexity: None,
            coherence: None,
            seconds: 0.12345,
            tokens_per_s: Some(40.5),
        }
    }

    #[test]
    fn a_row_writes_the_documented_spellings_and_reads_back() {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(vec![]);
        w.serialize(sample_row()).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let mut lines = text.splitn(2, '\n');
        assert_eq!(
            lines.next().unwrap(),
            "model,prompt_id,strategy,temperature,sample,seed,prompt,text,n_tokens,finish_reason,rep_2,rep_3,rep_4,diversity,distinct_1,distinct_2,repetition_rate,holtzman_repeats,mean_logprob,perplexity,mean_entropy,mean_sampling_entropy,judge_perplexity,coherence,seconds,tokens_per_s"
        );
        assert_eq!(
            lines.next().unwrap(),
            "m,3,top_p_0.9,0.8,1,42,ROMEO:,\"a \"\"quoted\"\", two\r\nlines\",5,length,0,,,0,0.75,1,0.30000000000000004,1,-1.5,4.4816890703380645,2,1.25,,,0.1235,40.50\n"
        );
        let back: GenerationRow = csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .next()
            .unwrap()
            .unwrap();
        let mut want = sample_row();
        want.seconds = 0.1235; // written with four decimals
        want.diversity = Some(0.0);
        assert_eq!(back, want);
        assert_eq!(back.key(), sample_row().key());
    }
}
