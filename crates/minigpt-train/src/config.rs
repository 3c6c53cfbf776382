//! `configs/train-*.toml`: what to train on, how big, and how long.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::TrainError;

/// A training run, as written in TOML.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The corpus.
    pub data: DataConfig,
    /// Model size.
    pub model: ModelConfig,
    /// Optimisation.
    pub train: OptimConfig,
    /// Where results go.
    pub output: OutputConfig,
}

/// The corpus.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A UTF-8 text file (relative paths are relative to the config file).
    pub path: PathBuf,
    /// Share of the text, taken from its end, held out for validation.
    #[serde(default = "tenth")]
    pub val_fraction: f64,
}

/// Model size (GPT-2 architecture).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads (must divide `n_embd`).
    pub n_head: usize,
    /// Residual width.
    pub n_embd: usize,
    /// Context length in tokens.
    pub block_size: usize,
    /// Dropout on embeddings and residual branches.
    #[serde(default)]
    pub dropout: f64,
    /// MLP activation by its `transformers` name: `gelu` (exact, nanoGPT's; the default) or
    /// `gelu_new` (GPT-2's tanh approximation).
    #[serde(default = "default_activation")]
    pub activation: String,
}

fn default_activation() -> String {
    "gelu".into()
}

/// Optimisation settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// Sequences per step.
    pub batch_size: usize,
    /// Optimizer steps.
    pub max_steps: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Learning rate at the end of the cosine decay.
    #[serde(default)]
    pub min_lr: f64,
    /// Steps of linear warm-up from 0.
    #[serde(default)]
    pub warmup_steps: usize,
    /// AdamW weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// AdamW β₂.
    #[serde(default = "beta2")]
    pub beta2: f64,
    /// Gradient-norm clipping (0 = off).
    #[serde(default)]
    pub grad_clip: f64,
    /// Evaluate every this many steps (and at the end).
    #[serde(default = "hundred")]
    pub eval_interval: usize,
    /// Batches per evaluation.
    #[serde(default = "twenty")]
    pub eval_batches: usize,
    /// Seed of the data order, the initialisation and dropout.
    #[serde(default)]
    pub seed: u64,
    /// `flex`, `ndarray` or `wgpu`.
    #[serde(default = "flex")]
    pub device: String,
}

/// Where results go.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// The model directory (Hugging Face layout) and `training_log.csv`.
    pub dir: PathBuf,
    /// Save a resumable checkpoint every this many steps (0 = only at the end).
    #[serde(default)]
    pub checkpoint_interval: usize,
}

fn tenth() -> f64 {
    0.1
}
fn beta2() -> f64 {
    0.99
}
fn hundred() -> usize {
    100
}
fn twenty() -> usize {
    20
}
fn flex() -> String {
    "flex".into()
}

impl TrainConfig {
    /// Reads and checks a config file; relative paths become relative to its folder.
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TrainError::Config(format!("{}: cannot read: {e}", path.display())))?;
        let mut cfg: Self = toml::from_str(&text).map_err(|e| {
            TrainError::Config(format!(
                "{}: {}",
                path.display(),
                e.message().replace('\n', " ")
            ))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        if cfg.data.path.is_relative() {
            cfg.data.path = base.join(&cfg.data.path);
        }
        if cfg.output.dir.is_relative() {
            cfg.output.dir = base.join(&cfg.output.dir);
        }
        cfg.validate()
            .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
        Ok(cfg)
    }

    /// Checks ranges and relations between fields.
    pub fn validate(&self) -> Result<(), String> {
        let m = &self.model;
        for (name, v) in [
            ("model.n_layer", m.n_layer),
            ("model.n_head", m.n_head),
            ("model.n_embd", m.n_embd),
            ("model.block_size", m.block_size),
            ("train.batch_size", self.train.batch_size),
            ("train.max_steps", self.train.max_steps),
            ("train.eval_interval", self.train.eval_interval),
            ("train.eval_batches", self.train.eval_batches),
        ] {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if !m.n_embd.is_multiple_of(m.n_head) {
            return Err(format!(
                "model.n_embd ({}) must be divisible by model.n_head ({})",
                m.n_embd, m.n_head
            ));
        }
        if !minigpt_model::ACTIVATIONS.contains(&m.activation.as_str()) {
            return Err(format!(
                "model.activation {:?} is not supported (use one of {})",
                m.activation,
                minigpt_model::ACTIVATIONS.join(", ")
            ));
        }
        if !(0.0..1.0).contains(&m.dropout) {
            return Err(format!(
                "model.dropout must be in [0, 1) (got {})",
                m.dropout
            ));
        }
        let t = &self.train;
        if !(t.learning_rate.is_finite() && t.learning_rate > 0.0) {
            return Err(format!(
                "train.learning_rate must be > 0 (got {})",
                t.learning_rate
            ));
        }
        if !(t.min_lr >= 0.0 && t.min_lr <= t.learning_rate) {
            return Err(format!(
                "train.min_lr must be in [0, learning_rate] (got {})",
                t.min_lr
            ));
        }
        if !(0.0..1.0).contains(&t.beta2) {
            return Err(format!("train.beta2 must be in [0, 1) (got {})", t.beta2));
        }
        if !(t.weight_decay >= 0.0 && t.grad_clip >= 0.0) {
            return Err("train.weight_decay and train.grad_clip must be >= 0".into());
        }
        if !(self.data.val_fraction > 0.0 && self.data.val_fraction < 1.0) {
            return Err(format!(
                "data.val_fraction must be in (0, 1) (got {})",
                self.data.val_fraction
            ));
        }
        Ok(())
    }
}
