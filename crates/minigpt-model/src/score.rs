//! Scoring a text: per-token log-probabilities, perplexity and bits per byte.

use crate::runner::GptLm;

/// How well the model predicts a token sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The scored token ids.
    pub tokens: Vec<u32>,
    /// `log p(tokens[i + 1] | tokens[..=i])` in nats, one per token after the first.
    pub logprobs: Vec<f64>,
    /// `exp(-mean(logprobs))`.
    pub perplexity: f64,
}

impl Score {
    /// Total negative log-likelihood in nats.
    pub fn nll(&self) -> f64 {
        -self.logprobs.iter().sum::<f64>()
    }

    /// Bits per byte over `bytes` bytes of predicted text (the bytes of every token after the
    /// first): `nll / ln 2 / bytes`.
    pub fn bits_per_byte(&self, bytes: usize) -> f64 {
        self.nll() / std::f64::consts::LN_2 / bytes as f64
    }
}

/// Scores `tokens` (at least two). Texts longer than the context are read in windows of
/// `n_positions` tokens whose ends advance by `stride`: each token is scored once, by the first
/// window that reaches it, so it sees at least `n_positions - stride + 1` tokens of context.
/// `stride = 1` predicts every token from exactly the `n_positions` tokens before it.
pub fn score(lm: &GptLm, tokens: &[u32], stride: usize) -> Score {
    let n = lm.config.n_positions;
    let t = tokens.len();
    let stride = stride.clamp(1, n);
    let mut logprobs = Vec::with_capacity(t.saturating_sub(1));
    let mut next = 1; // the first target not yet scored
    let mut end = 0; // input windows are tokens[end - n .. end], predicting up to tokens[end]
    while next < t {
        end = if next == 1 { n } else { end + stride }.min(t - 1);
        let start = end.saturating_sub(n);
        let lp = lm.window_logprobs(
            &tokens[start..end],
            &tokens[start + 1..=end],
            next - 1 - start,
        );
        logprobs.extend(lp);
        next = end + 1;
    }
    let mean = logprobs.iter().sum::<f64>() / logprobs.len().max(1) as f64;
    Score {
        tokens: tokens.to_vec(),
        logprobs,
        perplexity: (-mean).exp(),
    }
}
