//! The judge of a sweep (`judge_perplexity`): a GPT, usually GPT-2, that scores every
//! continuation with its own tokenizer through [`continuation_perplexity`].

use std::sync::Arc;

use minigpt_decode::{Judge, last_hidden_features};
use minigpt_tokenizer::Tokenizer;

use crate::lm::GptLm;
use crate::score::continuation_perplexity;

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

    fn features(&mut self, texts: &[(&str, &str)]) -> Result<Vec<Vec<f32>>, String> {
        let ids = texts
            .iter()
            .map(|(p, c)| {
                let mut ids = self.tok.encode(p).map_err(|e| e.to_string())?;
                ids.extend(self.tok.encode(c).map_err(|e| e.to_string())?);
                Ok(ids)
            })
            .collect::<Result<Vec<_>, String>>()?;
        last_hidden_features(&mut self.lm, &ids).map_err(|e| e.to_string())
    }
}
