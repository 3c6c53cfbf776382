//! The search-strategy plugin: whole-sequence searches that drive the model themselves
//! (beam search, contrastive search) instead of choosing one token per row.

use std::fmt;
use std::sync::atomic::AtomicBool;

use crate::generation::Generation;
use crate::model::{LanguageModel, ModelError};
use crate::processor::LogitsProcessor;

/// One prompt to search from.
#[derive(Debug, Clone, Copy)]
pub struct SearchRequest<'a> {
    /// Prompt token ids (not empty).
    pub prompt: &'a [u32],
    /// Upper bound on generated tokens.
    pub max_new_tokens: usize,
    /// Token that ends a hypothesis, if any.
    pub eos_token_id: Option<u32>,
    /// Keep going past the end-of-sequence token.
    pub ignore_eos: bool,
    /// The row's seed (searches here are deterministic; kept for plugins that sample).
    pub seed: u64,
    /// Checked before every model step: once set, the search stops with
    /// [`Cancelled`](crate::Cancelled).
    pub cancel: Option<&'a AtomicBool>,
}

/// A whole-sequence search. `processors` (the strategy's chain, possibly empty) rewrite each
/// hypothesis' next-token scores before the search uses them.
pub trait SearchStrategy: fmt::Display + Send {
    /// Registry name.
    fn name(&self) -> &'static str;
    /// Runs the search; returns the hypotheses it keeps, best first (at least one).
    fn search(
        &mut self,
        model: &mut dyn LanguageModel,
        req: &SearchRequest<'_>,
        processors: &mut [Box<dyn LogitsProcessor>],
    ) -> Result<Vec<Generation>, ModelError>;
    /// Refuses settings that do not fit a vocabulary of `vocab` tokens (more beams or
    /// candidates than tokens), checked before decoding starts.
    fn check_vocab(&self, _vocab: usize) -> Result<(), String> {
        Ok(())
    }
}

impl fmt::Debug for dyn SearchStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A search's chain as text: `logits -> top_k(40) -> beam_search(...)`.
pub fn chain_text(processors: &[Box<dyn LogitsProcessor>], search: &dyn SearchStrategy) -> String {
    let mut s = String::from("logits");
    for p in processors {
        s.push_str(&format!(" -> {p}"));
    }
    format!("{s} -> {search}")
}
