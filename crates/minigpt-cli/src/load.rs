//! Loading a model directory and its tokenizer for a command.

use std::sync::Arc;

use anyhow::{Context, Result};
use minigpt_model::{GptLm, parse_device};
use minigpt_tokenizer::Tokenizer;

use crate::cli::ModelArgs;

/// The model on its device and the tokenizer its directory names.
pub fn load(args: &ModelArgs) -> Result<(GptLm, Arc<dyn Tokenizer>)> {
    let device = parse_device(&args.device)?;
    let lm = GptLm::load(&args.model, &device)?;
    let tok = minigpt_tokenizer::load_from_dir(&args.model, lm.config.vocab_size)
        .with_context(|| format!("loading the tokenizer of {}", args.model.display()))?;
    if tok.vocab_size() > lm.config.vocab_size {
        anyhow::bail!(
            "the tokenizer of {} has {} ids but the model only {} (vocab_size in config.json)",
            args.model.display(),
            tok.vocab_size(),
            lm.config.vocab_size
        );
    }
    Ok((lm, Arc::from(tok)))
}
