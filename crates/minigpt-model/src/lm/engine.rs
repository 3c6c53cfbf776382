//! What both engine adapters share: the [`GptEngine`] trait, the [`ContextPolicy`], and the
//! checks of the decoding calls' arguments.

use minigpt_decode::LanguageModel;

use crate::config::GptConfig;
use crate::error::ModelError;
use crate::gpt::Gpt;

/// What happens to rows longer than the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContextPolicy {
    /// Slide an exact window of the last `n_positions` tokens (the default).
    #[default]
    Sliding,
    /// Refuse prompts longer than the context and stop rows when they fill it.
    Refuse,
    /// Keep the KV cache and shift it (the native engine only): a row that fills the context
    /// restarts on its last `n_positions / 2` tokens and goes on cached, so each token sees
    /// between half and all of the context instead of exactly all of it, at about twice the
    /// cost of a cached step instead of a whole window's per token. A prompt longer than the
    /// context starts on its last `n_positions` tokens.
    Shift,
}

impl ContextPolicy {
    /// The policy a config names: `slide` (exact, the default), `shift` or `refuse`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "slide" => Some(Self::Sliding),
            "shift" => Some(Self::Shift),
            "refuse" => Some(Self::Refuse),
            _ => None,
        }
    }
}

/// What an engine adapter offers besides decoding: uncached scoring of one sequence.
pub trait GptEngine: LanguageModel {
    /// Log-probability of each `targets[i]` given `ids[..=i]`, for `i >= first`, in one
    /// uncached forward pass (`ids` at most `n_positions` long).
    fn window_logprobs(&self, ids: &[u32], targets: &[u32], first: usize) -> Vec<f64>;

    /// Full logits `[t, vocab]` of one sequence (at most `n_positions` long), uncached.
    fn sequence_logits(&self, ids: &[u32]) -> Vec<f32>;

    /// A second adapter on the same weights (shared, not copied), with no decoding state:
    /// one loaded model can generate and judge.
    fn share(&self) -> Box<dyn GptEngine + Send>;

    /// Finishes work loading left to the background (nothing, unless the engine says so).
    fn settle(&self) {}

    /// Sets how rows longer than the context are fed (before a prefill). Engines that cannot
    /// shift their cache refuse [`ContextPolicy::Shift`].
    fn set_policy(&mut self, policy: ContextPolicy) -> Result<(), ModelError> {
        match policy {
            ContextPolicy::Shift => Err(ModelError::Input(
                "context = \"shift\" runs on --device cpu only (this engine slides its window)"
                    .into(),
            )),
            _ => Ok(()),
        }
    }

    /// The Burn module, when this engine runs one.
    fn model(&self) -> Option<&Gpt> {
        None
    }
}

/// Every id must be inside the vocabulary.
pub(super) fn check_ids(config: &GptConfig, ids: &[u32]) -> Result<(), ModelError> {
    match ids.iter().find(|&&t| t as usize >= config.vocab_size) {
        Some(t) => Err(ModelError::Input(format!(
            "token id {t} is outside the model's vocabulary of {}",
            config.vocab_size
        ))),
        None => Ok(()),
    }
}

/// Prompts must be non-empty and inside the vocabulary (every engine checks this).
pub(super) fn check_prompts(config: &GptConfig, prompts: &[Vec<u32>]) -> Result<(), ModelError> {
    for (i, p) in prompts.iter().enumerate() {
        if p.is_empty() {
            return Err(ModelError::Input(format!("prompt {i} is empty")));
        }
        check_ids(config, p)?;
    }
    Ok(())
}

/// Under [`ContextPolicy::Refuse`], prompts must fit the context.
pub(super) fn check_context(
    config: &GptConfig,
    policy: ContextPolicy,
    prompts: &[Vec<u32>],
) -> Result<(), ModelError> {
    let n = config.n_positions;
    match prompts.iter().find(|p| p.len() > n) {
        Some(p) if policy == ContextPolicy::Refuse => Err(ModelError::Input(format!(
            "the prompt has {} tokens but the model sees at most {n} (n_positions); \
             shorten it, or allow cropping (leave out --no-crop)",
            p.len()
        ))),
        _ => Ok(()),
    }
}

/// A step needs one token per live row.
pub(super) fn one_per_row(tokens: &[u32], live: usize) -> Result<(), ModelError> {
    if tokens.len() == live {
        return Ok(());
    }
    Err(ModelError::Input(format!(
        "{} tokens for {live} live rows",
        tokens.len()
    )))
}

/// Rows `rows` must exist among `live` rows.
pub(super) fn check_rows(rows: &[usize], live: usize) -> Result<(), ModelError> {
    match rows.iter().find(|&&r| r >= live) {
        Some(bad) => Err(ModelError::Input(format!("row {bad} does not exist"))),
        None => Ok(()),
    }
}
