//! Models from the Hugging Face Hub. A repo id (`gpt2`, `openai-community/gpt2-medium`,
//! `distilbert/distilgpt2@main`) resolves to a folder of the standard Hugging Face cache
//! holding `config.json`, `model.safetensors` and the tokenizer files, downloaded with the
//! `hf-hub` crate on first use and shared with Python's `huggingface_hub`.
//!
//! The environment is read as `huggingface_hub` reads it: `HF_HOME`, `HF_HUB_CACHE`,
//! `HF_ENDPOINT`, `HF_TOKEN` (or the token file) and `HF_HUB_OFFLINE`.

mod error;
#[cfg(feature = "fake-hub")]
pub mod fake;
mod fetch;
mod model_source;
mod progress;
mod repo_id;
mod settings;

pub use error::HubError;
pub use fetch::{CONFIG, Fetched, WEIGHTS, fetch};
pub use model_source::ModelSource;
pub use repo_id::RepoId;
pub use settings::Settings;
