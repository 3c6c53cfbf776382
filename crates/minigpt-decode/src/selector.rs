//! The token-selector plugin: the one final choice at the end of a chain.

use std::fmt;

use crate::rng::Rng;

/// The chosen token and the entropy (nats) of the distribution it was drawn from
/// (0 for a deterministic choice).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// The token.
    pub token: u32,
    /// Entropy of the distribution actually sampled from.
    pub entropy: f64,
    /// Log-probability of the token under that distribution (0 for a deterministic choice).
    pub logprob: f64,
}

/// Picks one token from processed logits, using the row's own RNG. One instance serves one
/// row, so it may keep state (mirostat's μ).
///
/// A selector runs inside a [`Pipeline`](crate::Pipeline), which hands it only rows with at
/// least one finite logit and no NaN or +∞ (anything else ends the generation with an
/// [`UnusableRow`](crate::row_check::UnusableRow) error before the selector is called).
pub trait TokenSelector: fmt::Display + Send {
    /// Registry name.
    fn name(&self) -> &'static str;
    /// Chooses from `logits` (which it may overwrite).
    fn select(&mut self, logits: &mut [f32], rng: &mut Rng) -> Choice;
    /// Forgets per-row state.
    fn reset(&mut self) {}
}

impl fmt::Debug for dyn TokenSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
