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

/// Last-layer hidden states (after the final LayerNorm) of the positions a call processed,
/// row-major `[rows, positions, dim]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Hidden {
    /// `rows * positions * dim` values.
    pub data: Vec<f32>,
    /// Rows of the call.
    pub rows: usize,
    /// Positions per row (left padding included for a padded prefill).
    pub positions: usize,
    /// Hidden size.
    pub dim: usize,
}

impl Hidden {
    /// The vector of `row` at `position`.
    pub fn at(&self, row: usize, position: usize) -> &[f32] {
        let start = (row * self.positions + position) * self.dim;
        &self.data[start..start + self.dim]
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

    /// True when a row's logits are bit-identical whatever else is in its batch (and however
    /// its prompt was split between prefill and steps): callers may then batch rows freely
    /// without changing any result.
    fn batch_invariant(&self) -> bool {
        false
    }

    /// Starts a new batch with one prompt per row (any lengths, none empty) and returns the
    /// next-token logits of every row.
    fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<Logits, ModelError>;

    /// Appends `tokens[i]` to live row `i` and returns the next-token logits of every live row.
    fn step(&mut self, tokens: &[u32]) -> Result<Logits, ModelError>;

    /// Appends `tokens[i]` to live row `i`, then starts one row per prompt after the live rows,
    /// in one call, and returns the next-token logits of every row (the live ones, then the
    /// new ones): rows join a running batch (continuous batching). Models that cannot add rows
    /// to a running batch refuse unless `prompts` is empty.
    fn step_join(&mut self, tokens: &[u32], prompts: &[Vec<u32>]) -> Result<Logits, ModelError> {
        if prompts.is_empty() {
            self.step(tokens)
        } else {
            Err("this model cannot add rows to a running batch (minigpt's cpu device can)".into())
        }
    }

    /// Keeps the given live rows in the given order (indices into the current rows); an index
    /// may repeat, which duplicates the row (beam search).
    fn retain(&mut self, rows: &[usize]) -> Result<(), ModelError>;

    /// Starts (or stops) recording hidden states for [`LanguageModel::last_hidden`]; strategies
    /// that compare representations (contrastive search) need it. Models that cannot expose
    /// them say so.
    fn record_hidden(&mut self, on: bool) -> Result<(), ModelError> {
        if on {
            Err("this model does not expose hidden states".into())
        } else {
            Ok(())
        }
    }

    /// Hidden states of the positions processed by the last `prefill` or `step`, when recording.
    fn last_hidden(&self) -> Option<&Hidden> {
        None
    }

    /// Calls `f(i)` for every `i < n` and returns when all are done: on the model's own threads
    /// where it has them (the rows' decoding chains run there between steps), by default one
    /// after another on this thread.
    fn for_each_row(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        (0..n).for_each(f)
    }
}
