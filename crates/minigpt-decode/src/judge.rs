//! The judge of generated text: a second model that scores each continuation given its prompt
//! (a sweep's `judge_perplexity`). It sees text, not token ids: the judge may use another
//! tokenizer than the model that wrote the text.

/// Scores continuations with a second model.
pub trait Judge {
    /// Perplexity of `continuation` given `prompt`; `None` for an empty continuation.
    fn perplexity(&mut self, prompt: &str, continuation: &str) -> Result<Option<f64>, String>;
    /// MAUVE's features of each `(prompt, continuation)` text: the final-layer hidden state at
    /// its last token ([`crate::last_hidden_features`]).
    fn features(&mut self, texts: &[(&str, &str)]) -> Result<Vec<Vec<f32>>, String>;
}
