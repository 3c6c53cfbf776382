//! Loading a model and its tokenizer for a command: a model directory given with `--model`,
//! or the shipped model built into the binary.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use minigpt_model::{GptConfig, GptLm, load_weights, parse_target};
use minigpt_tokenizer::{CharTokenizer, Tokenizer};

use crate::cli::ModelArgs;

/// The default model: `models/minigpt-shakespeare/`, compiled into the binary so that every
/// command works offline, from any folder, with no `--model`.
pub mod builtin {
    /// How the default model is named in messages and JSON output.
    pub const NAME: &str = "minigpt-shakespeare (built in)";
    macro_rules! shipped {
        ($file:literal) => {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../models/minigpt-shakespeare/",
                $file
            )
        };
    }
    pub(super) const CONFIG: &str = include_str!(shipped!("config.json"));
    pub(super) const WEIGHTS: &[u8] = include_bytes!(shipped!("model.safetensors"));
    pub(super) const VOCAB: &str = include_str!(shipped!("char_vocab.json"));
}

/// The model's name for messages: its directory, or the built-in model's name.
pub fn model_name(args: &ModelArgs) -> String {
    args.model
        .as_ref()
        .map_or_else(|| builtin::NAME.to_string(), |d| d.display().to_string())
}

/// A short name for CSV columns: the directory's own name, or `minigpt-shakespeare`.
pub fn short_name(dir: Option<&Path>) -> String {
    match dir {
        None => "minigpt-shakespeare".into(),
        Some(d) => std::fs::canonicalize(d)
            .ok()
            .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| d.display().to_string()),
    }
}

/// The model on its device (without its tokenizer).
pub fn load_model(args: &ModelArgs) -> Result<GptLm> {
    load_model_at(args.model.as_deref(), &args.device, &args.dtype)
}

/// The model in `dir` (the built-in one for `None`) on `device`, weights in `dtype`.
pub fn load_model_at(dir: Option<&Path>, device: &str, dtype: &str) -> Result<GptLm> {
    let target = parse_target(device, dtype)?;
    Ok(match dir {
        Some(dir) => GptLm::load_to(dir, &target)?,
        None => {
            let path = Path::new(builtin::NAME);
            let config = GptConfig::from_json(builtin::CONFIG, path)?;
            let model = load_weights(&config, builtin::WEIGHTS, path, &target.device(), false)?;
            GptLm::on(model, config, &target)
        }
    })
}

/// The model on its device and its tokenizer.
pub fn load(args: &ModelArgs) -> Result<(GptLm, Arc<dyn Tokenizer>)> {
    load_at(args.model.as_deref(), &args.device, &args.dtype)
}

/// The model in `dir` (the built-in one for `None`) and its tokenizer.
pub fn load_at(
    dir: Option<&Path>,
    device: &str,
    dtype: &str,
) -> Result<(GptLm, Arc<dyn Tokenizer>)> {
    let lm = load_model_at(dir, device, dtype)?;
    let tok: Box<dyn Tokenizer> = match dir {
        Some(dir) => minigpt_tokenizer::load_from_dir(dir, lm.config.vocab_size)
            .with_context(|| format!("loading the tokenizer of {}", dir.display()))?,
        None => Box::new(CharTokenizer::from_json(
            builtin::VOCAB,
            Path::new(builtin::NAME),
        )?),
    };
    if tok.vocab_size() > lm.config.vocab_size {
        anyhow::bail!(
            "the tokenizer of {} has {} ids but the model only {} (vocab_size in config.json)",
            dir.map_or_else(|| builtin::NAME.to_string(), |d| d.display().to_string()),
            tok.vocab_size(),
            lm.config.vocab_size
        );
    }
    Ok((lm, Arc::from(tok)))
}
