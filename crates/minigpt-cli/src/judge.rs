//! The judge of a sweep (`judge_perplexity`): a second model, usually GPT-2, that scores every
//! continuation with its own tokenizer. The scoring is the model crate's
//! [`continuation_perplexity`]; this is the adapter to the runner's [`Judge`].

use std::sync::Arc;

use minigpt_eval::Judge;
use minigpt_model::{GptLm, continuation_perplexity};
use minigpt_tokenizer::Tokenizer;

/// A loaded judge model and its tokenizer. The prompt and the continuation are encoded
/// separately and joined.
pub struct GptJudge {
    /// The model.
    pub lm: GptLm,
    /// Its tokenizer.
    pub tok: Arc<dyn Tokenizer>,
}

impl Judge for GptJudge {
    fn perplexity(&mut self, prompt: &str, continuation: &str) -> Result<Option<f64>, String> {
        let p = self.tok.encode(prompt).map_err(|e| e.to_string())?;
        let c = self.tok.encode(continuation).map_err(|e| e.to_string())?;
        Ok(continuation_perplexity(&self.lm, &p, &c))
    }
}
