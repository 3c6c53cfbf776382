//! The logits-processor plugin: one step of the user's chain, applied to one row's logits.

use std::fmt;

/// What a processor may look at besides the logits.
#[derive(Debug, Clone, Copy)]
pub struct StepContext<'a> {
    /// The row's tokens so far: prompt, then generated.
    pub tokens: &'a [u32],
    /// How many of `tokens` are the prompt.
    pub prompt_len: usize,
    /// The model's end-of-sequence token, if any.
    pub eos_token_id: Option<u32>,
    /// The row's seed, for processors that draw random numbers of their own (`xtc`): they
    /// seed a private stream from it, so the selector's draws do not depend on them.
    pub seed: u64,
}

impl<'a> StepContext<'a> {
    /// Tokens generated so far.
    pub fn generated(&self) -> &'a [u32] {
        &self.tokens[self.prompt_len..]
    }

    /// Number of tokens generated so far (the index of the step being decided).
    pub fn step(&self) -> usize {
        self.tokens.len() - self.prompt_len
    }
}

/// Rewrites one row of logits: scales, penalises, or masks with −∞. It always leaves at least
/// one finite logit. One instance serves one row, so it may keep per-row state.
///
/// `Display` shows the processor as it appears in a chain, e.g. `top_p(0.9)`.
pub trait LogitsProcessor: fmt::Display + Send {
    /// Registry name.
    fn name(&self) -> &'static str;
    /// Rewrites `logits` in place.
    fn process(&mut self, ctx: &StepContext<'_>, logits: &mut [f32]);
    /// Called with the token that was chosen.
    fn accept(&mut self, _token: u32) {}
    /// Forgets per-row state.
    fn reset(&mut self) {}
    /// Refuses settings that do not fit a vocabulary of `vocab` tokens (token ids beyond it),
    /// checked before decoding starts.
    fn check_vocab(&self, _vocab: usize) -> Result<(), String> {
        Ok(())
    }
}

impl fmt::Debug for dyn LogitsProcessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
