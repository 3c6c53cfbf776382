//! [`GptLm`]: a loaded GPT behind `minigpt-decode`'s [`LanguageModel`] trait, on one of two
//! engines, each an adapter of its own with its own state:
//!
//! - [`BurnLm`] (`burn.rs`): the Burn module on a Burn device, left-padded batches and one
//!   shared KV cache;
//! - [`NativeLm`] (`native.rs`): minigpt's native CPU engine (`minigpt-native`), one KV cache
//!   per row.
//!
//! Context: every token is predicted from exactly the most recent `n_positions` tokens
//! (nanoGPT's `idx[:, -block_size:]`); both adapters slide that window over rows longer than
//! the context. [`GptLm`] adds the [`ContextPolicy`]: with [`ContextPolicy::Refuse`] it turns
//! away prompts longer than the context and stops rows when they fill it.

mod burn;
mod engine;
mod native;

use ::burn::tensor::Device;
pub use burn::BurnLm;
use engine::check_context;
pub use engine::{ContextPolicy, GptEngine};
use minigpt_decode::{Hidden, LanguageModel, Logits};
pub use native::NativeLm;

use crate::config::GptConfig;
use crate::device::Target;
use crate::error::ModelError;
use crate::gpt::Gpt;
use crate::pack_cache::PackCache;

/// A loaded GPT, ready to decode and score, on the engine its loader picked.
pub struct GptLm {
    /// Its hyper-parameters.
    pub config: GptConfig,
    /// How rows longer than the context are handled.
    pub policy: ContextPolicy,
    /// Ids from here up to `vocab_size` have no text in the tokenizer (a vocabulary padded past
    /// it, as nanoGPT's 50304): generation never picks them (their logits are −∞).
    pub text_vocab: Option<usize>,
    engine: Box<dyn GptEngine + Send>,
}

impl GptLm {
    /// Wraps a model on a Burn device.
    pub fn new(model: Gpt, config: GptConfig, device: Device) -> Self {
        let engine = BurnLm::new(model, config.clone(), device);
        Self::with_engine(Box::new(engine), config)
    }

    /// Wraps an engine adapter (its configuration is `config`).
    pub fn with_engine(engine: Box<dyn GptEngine + Send>, config: GptConfig) -> Self {
        Self {
            config,
            policy: ContextPolicy::Sliding,
            text_vocab: None,
            engine,
        }
    }

    /// Loads a Hugging Face directory onto a Burn `device`.
    pub fn load(dir: &std::path::Path, device: &Device) -> Result<Self, ModelError> {
        let (config, model) = crate::checkpoint::load_dir(dir, device)?;
        Ok(Self::new(model, config, device.clone()))
    }

    /// Loads a Hugging Face directory for `target`: onto a Burn device, or memory-mapped and
    /// packed straight into the native engine.
    pub fn load_to(dir: &std::path::Path, target: &Target) -> Result<Self, ModelError> {
        Self::load_cached(dir, target, None)
    }

    /// [`GptLm::load_to`], where the native engine maps its packed weights from `cache` when
    /// they are there, and stores them there when they are not (see [`PackCache`]).
    pub fn load_cached(
        dir: &std::path::Path,
        target: &Target,
        cache: Option<&PackCache>,
    ) -> Result<Self, ModelError> {
        match target {
            Target::Burn(device) => Self::load(dir, device),
            Target::Native(dtype) => {
                let (config, net) = crate::native_load::load_native_dir(dir, *dtype, cache)?;
                Ok(Self::packed(net, config))
            }
        }
    }

    /// Finishes any work loading left to the background (the native engine's move of mapped
    /// weights into huge pages), so that what follows runs at full speed.
    pub fn settle(&self) {
        self.engine.settle();
    }

    /// Builds a model for `target` from the bytes of a safetensors file (`path` is only for
    /// messages): a Burn module, or packed straight into the native engine.
    pub fn from_bytes(
        config: GptConfig,
        bytes: &[u8],
        path: &std::path::Path,
        target: &Target,
    ) -> Result<Self, ModelError> {
        Ok(match target {
            Target::Burn(device) => {
                let model = crate::checkpoint::load_weights(&config, bytes, path, device, false)?;
                Self::new(model, config, device.clone())
            }
            Target::Native(dtype) => {
                let net =
                    crate::native_load::native_from_bytes(&config, bytes, path, *dtype, None)?;
                Self::packed(net, config)
            }
        })
    }

    /// Wraps a model already packed for the native engine (`config` is its configuration).
    pub fn packed(net: minigpt_native::NativeGpt, config: GptConfig) -> Self {
        let engine = NativeLm::new(net, config.clone());
        Self::with_engine(Box::new(engine), config)
    }

    /// A second handle on the same loaded weights (not a copy of them), with its own decoding
    /// state and the default context policy.
    pub fn share(&self) -> Self {
        Self::with_engine(self.engine.share(), self.config.clone())
    }

    /// The Burn module, unless the native engine runs the model.
    pub fn model(&self) -> Option<&Gpt> {
        self.engine.model()
    }

    /// Log-probability of each `targets[i]` given `ids[..=i]`, for `i >= first`, in one
    /// uncached forward pass (`ids` at most `n_positions` long).
    pub fn window_logprobs(&self, ids: &[u32], targets: &[u32], first: usize) -> Vec<f64> {
        self.engine.window_logprobs(ids, targets, first)
    }

    /// Full logits `[t, vocab]` of one sequence (at most `n_positions` long), uncached.
    pub fn sequence_logits(&self, ids: &[u32]) -> Vec<f32> {
        self.engine.sequence_logits(ids)
    }
}

impl GptLm {
    /// `logits` with the ids past [`GptLm::text_vocab`] at −∞.
    fn mask_textless(&self, mut logits: Logits) -> Logits {
        if let Some(n) = self.text_vocab.filter(|&n| n < logits.vocab) {
            let v = logits.vocab;
            for row in logits.data.chunks_exact_mut(v) {
                row[n..].fill(f32::NEG_INFINITY);
            }
        }
        logits
    }
}

impl LanguageModel for GptLm {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn context_len(&self) -> usize {
        self.config.n_positions
    }

    fn batch_invariant(&self) -> bool {
        self.engine.batch_invariant()
    }

    fn for_each_row(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        self.engine.for_each_row(n, f)
    }

    fn max_row_len(&self) -> Option<usize> {
        match self.policy {
            ContextPolicy::Sliding | ContextPolicy::Shift => None,
            ContextPolicy::Refuse => Some(self.config.n_positions),
        }
    }

    fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<Logits, minigpt_decode::ModelError> {
        // The engine checks the prompts themselves; the context policy is this wrapper's.
        check_context(&self.config, self.policy, prompts)?;
        self.engine.set_policy(self.policy)?;
        let logits = self.engine.prefill(prompts)?;
        Ok(self.mask_textless(logits))
    }

    fn step(&mut self, tokens: &[u32]) -> Result<Logits, minigpt_decode::ModelError> {
        let logits = self.engine.step(tokens)?;
        Ok(self.mask_textless(logits))
    }

    fn retain(&mut self, rows: &[usize]) -> Result<(), minigpt_decode::ModelError> {
        self.engine.retain(rows)
    }

    fn step_join(
        &mut self,
        tokens: &[u32],
        prompts: &[Vec<u32>],
    ) -> Result<Logits, minigpt_decode::ModelError> {
        check_context(&self.config, self.policy, prompts)?;
        let logits = self.engine.step_join(tokens, prompts)?;
        Ok(self.mask_textless(logits))
    }

    fn record_hidden(&mut self, on: bool) -> Result<(), minigpt_decode::ModelError> {
        self.engine.record_hidden(on)
    }

    fn last_hidden(&self) -> Option<&Hidden> {
        self.engine.last_hidden()
    }
}
