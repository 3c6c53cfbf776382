//! The language model as the decoding loop sees it: batched prefill and one-token steps.

/// Errors a model reports to the loop (device failures, inputs it cannot take).
pub type ModelError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Next-token logits for a batch, row-major `[batch, vocab]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Logits {
    /// `batch * vocab` values.
    pub data: Vec<f32>,
    /// Vocabulary size (row length).
    pub vocab: usize,
}

impl Logits {
    /// Number of rows.
    pub fn batch(&self) -> usize {
        self.data.len().checked_div(self.vocab).unwrap_or(0)
    }

    /// The logits of row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.vocab..(i + 1) * self.vocab]
    }
}

/// A causal language model that decodes a batch of rows together.
///
/// The model owns each row's history: `prefill` starts a batch, `step` appends one token to every
/// live row, `retain` drops finished rows. How the model handles rows longer than its context
/// (sliding window, refusing) is its own business; [`LanguageModel::max_row_len`] tells the loop
/// where a row must stop.
pub trait LanguageModel {
    /// Vocabulary size (length of each logits row).
    fn vocab_size(&self) -> usize;

    /// The number of positions the model sees at once (`n_positions`).
    fn context_len(&self) -> usize;

    /// Longest row (prompt plus generated tokens) this model can continue, or `None` when it
    /// slides its window over arbitrarily long rows.
    fn max_row_len(&self) -> Option<usize>;

    /// Starts a new batch with one prompt per row (any lengths, none empty) and returns the
    /// next-token logits of every row.
    fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<Logits, ModelError>;

    /// Appends `tokens[i]` to live row `i` and returns the next-token logits of every live row.
    fn step(&mut self, tokens: &[u32]) -> Result<Logits, ModelError>;

    /// Keeps only the given live rows, in the given order (indices into the current rows).
    fn retain(&mut self, rows: &[usize]) -> Result<(), ModelError>;
}
