//! What decoding returns for each row: its tokens, their scores, and why it stopped.

/// Why a row stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// `max_new_tokens` reached.
    Length,
    /// The model chose its end-of-sequence token (not included in the output).
    Eos,
    /// The generated text came to contain one of the stop strings.
    Stop,
    /// The row filled the model's context and the model does not slide its window.
    Context,
}

impl FinishReason {
    /// The lower-case name written to JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Length => "length",
            Self::Eos => "eos",
            Self::Stop => "stop",
            Self::Context => "context",
        }
    }
}

/// One row's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// Generated token ids (the end-of-sequence token is not included).
    pub tokens: Vec<u32>,
    /// Per generated token: its log-probability under the raw model distribution.
    pub logprobs: Vec<f64>,
    /// Per step: entropy (nats) of the raw next-token distribution.
    pub entropies: Vec<f64>,
    /// Per step: entropy of the distribution the token was actually drawn from.
    pub sampling_entropies: Vec<f64>,
    /// Per generated token: its log-probability under the distribution it was drawn from (after
    /// the processors); 0 for a deterministic choice (greedy, searches).
    pub sampling_logprobs: Vec<f64>,
    /// Why the row stopped.
    pub finish_reason: FinishReason,
}
