//! Per-row records beside `generations.csv`, one JSON object per line, keyed like its rows:
//! `tokens.jsonl` (each token's id, text, log-probabilities and entropy) and `features.jsonl`
//! (each text's MAUVE feature vector). Both are appended batch by batch before the batch's CSV
//! rows, so a row in the CSV always has its records; a kill may leave records of rows the CSV
//! lacks, or a torn last line, which reading skips and a finished run rewrites away.

use serde::{Deserialize, Serialize};

use crate::row::{GenerationRow, HUMAN, RowKey};

/// The key of the row a record belongs to, its fields named as `generations.csv`'s columns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordKey {
    /// The row's `model`.
    pub model: String,
    /// The row's `prompt_id`.
    pub prompt_id: usize,
    /// The row's `strategy`.
    pub strategy: String,
    /// The row's `temperature`.
    pub temperature: Option<f64>,
    /// The row's `sample`.
    pub sample: usize,
}

impl RecordKey {
    /// The key of `row`.
    pub fn of(row: &GenerationRow) -> Self {
        Self {
            model: row.model.clone(),
            prompt_id: row.prompt_id,
            strategy: row.strategy.clone(),
            temperature: row.temperature,
            sample: row.sample,
        }
    }

    /// Whether the record is of a human continuation.
    pub fn is_human(&self) -> bool {
        self.model == HUMAN && self.strategy == HUMAN
    }
}

/// The per-token records of one row: a line of `tokens.jsonl`. The arrays run in step, one
/// entry per generated token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The row (its key fields, flattened into the record).
    #[serde(flatten)]
    pub row: RecordKey,
    /// Token ids.
    pub ids: Vec<u32>,
    /// Each token's text (its bytes as UTF-8, a split character's bytes shown as U+FFFD).
    pub texts: Vec<String>,
    /// Log-probability of each token under the model's raw distribution (temperature 1).
    pub logprobs: Vec<f32>,
    /// Log-probability of each token under the distribution it was drawn from (after the
    /// strategy's processors); 0 for a deterministic choice, empty for human text.
    pub sampled_logprobs: Vec<f32>,
    /// Entropy (nats) of the model's raw distribution at each step.
    pub entropies: Vec<f32>,
}

/// A text's MAUVE feature vector: a line of `features.jsonl`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureRecord {
    /// The row (its key fields, flattened into the record).
    #[serde(flatten)]
    pub row: RecordKey,
    /// The model the features come from.
    pub feature_model: String,
    /// Its final-layer hidden state (after the last LayerNorm) at the text's last token.
    pub features: Vec<f32>,
}

/// A record keyed like a row of `generations.csv`.
pub trait Keyed {
    /// The row's identity.
    fn key(&self) -> RowKey;
}

impl Keyed for TokenRecord {
    fn key(&self) -> RowKey {
        self.row.key()
    }
}

impl Keyed for FeatureRecord {
    fn key(&self) -> RowKey {
        self.row.key()
    }
}

impl Keyed for RecordKey {
    fn key(&self) -> RowKey {
        RowKey::new(
            &self.model,
            self.prompt_id,
            &self.strategy,
            self.temperature,
            self.sample,
        )
    }
}

impl TokenRecord {
    /// The record of `row`'s tokens.
    pub fn of(
        row: &GenerationRow,
        ids: &[u32],
        texts: Vec<String>,
        logprobs: &[f64],
        sampled_logprobs: &[f64],
        entropies: &[f64],
    ) -> Self {
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect();
        TokenRecord {
            row: RecordKey::of(row),
            ids: ids.to_vec(),
            texts,
            logprobs: f32s(logprobs),
            sampled_logprobs: f32s(sampled_logprobs),
            entropies: f32s(entropies),
        }
    }
}

impl FeatureRecord {
    /// The record of `row`'s features from `feature_model`.
    pub fn of(row: &GenerationRow, feature_model: &str, features: Vec<f32>) -> Self {
        FeatureRecord {
            row: RecordKey::of(row),
            feature_model: feature_model.to_string(),
            features,
        }
    }
}

/// `records` in the order of `rows`, one per row (the last of a key wins); records of other
/// rows (a batch cut short by a kill before its CSV write) are dropped.
pub fn in_row_order<'r, T: Keyed>(
    records: impl IntoIterator<Item = T>,
    rows: impl IntoIterator<Item = &'r GenerationRow>,
) -> Vec<T> {
    let mut by_key: std::collections::HashMap<RowKey, T> =
        records.into_iter().map(|r| (r.key(), r)).collect();
    rows.into_iter()
        .filter_map(|r| by_key.remove(&r.key()))
        .collect()
}
