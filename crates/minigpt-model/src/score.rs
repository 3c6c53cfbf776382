//! Scoring a text: per-token log-probabilities, perplexity and bits per byte.

use crate::lm::GptLm;

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

/// Perplexity of `continuation` after `prompt` (token ids of one tokenizer, scored as one
/// sequence with a stride of half the context): exp of the mean negative log-probability of
/// the continuation's tokens. `None` when either part is empty. The judge of a sweep
/// (`judge_perplexity`) uses it.
pub fn continuation_perplexity(lm: &GptLm, prompt: &[u32], continuation: &[u32]) -> Option<f64> {
    if prompt.is_empty() || continuation.is_empty() {
        return None;
    }
    let all: Vec<u32> = prompt.iter().chain(continuation).copied().collect();
    let s = score(lm, &all, (lm.config.n_positions / 2).max(1));
    let lp = &s.logprobs[prompt.len() - 1..];
    Some((-lp.iter().sum::<f64>() / lp.len() as f64).exp())
}
