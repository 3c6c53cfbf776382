//! Model hyper-parameters, read from and written to Hugging Face's `config.json` (`GPT2Config`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// GPT-2 hyper-parameters with Hugging Face's field names, so `config.json` round-trips. A
/// key that is absent takes `GPT2Config`'s default, as in transformers; the legacy `n_ctx` is
/// ignored, as transformers ignores it (`n_positions` is the context).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GptConfig {
    /// Number of token ids.
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    /// Context length: the number of learned positions.
    #[serde(default = "default_positions")]
    pub n_positions: usize,
    /// Width of the residual stream.
    #[serde(default = "default_embd")]
    pub n_embd: usize,
    /// Number of transformer blocks.
    #[serde(default = "default_twelve")]
    pub n_layer: usize,
    /// Attention heads per block (`n_embd` must be divisible by it).
    #[serde(default = "default_twelve")]
    pub n_head: usize,
    /// Hidden width of the MLP; `None` means `4 * n_embd`.
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// Begin-of-sequence token id.
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token id (generation stops on it).
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    /// Activation of the MLP: GPT-2's tanh GELU (`gelu_new`, alias `gelu_pytorch_tanh`) or the
    /// exact erf GELU (`gelu`, nanoGPT's `nn.GELU()`; minigpt's training default, because
    /// Burn runs it as one fused kernel forward and backward).
    #[serde(default = "default_act")]
    pub activation_function: String,
    /// Dropout on embeddings (training only).
    #[serde(default)]
    pub embd_pdrop: f64,
    /// Dropout on attention weights (training only).
    #[serde(default)]
    pub attn_pdrop: f64,
    /// Dropout on residual branches (training only).
    #[serde(default)]
    pub resid_pdrop: f64,
    /// Always `gpt2`: lets `transformers` pick `GPT2LMHeadModel`.
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// Architecture switches of `GPT2Config` that minigpt does not implement; read so that a
    /// checkpoint using them is refused instead of silently mis-computed.
    #[serde(default = "yes", skip_serializing)]
    pub scale_attn_weights: bool,
    #[serde(default, skip_serializing)]
    #[allow(missing_docs)]
    pub scale_attn_by_inverse_layer_idx: bool,
    #[serde(default, skip_serializing)]
    #[allow(missing_docs)]
    pub reorder_and_upcast_attn: bool,
    #[serde(default, skip_serializing)]
    #[allow(missing_docs)]
    pub add_cross_attention: bool,
    #[serde(default = "yes", skip_serializing)]
    #[allow(missing_docs)]
    pub tie_word_embeddings: bool,
}

/// The MLP activations minigpt implements, by their `transformers` names.
pub const ACTIVATIONS: [&str; 3] = ["gelu_new", "gelu_pytorch_tanh", "gelu"];

impl GptConfig {
    /// The native engine's hyper-parameters for this model.
    pub fn native_config(&self) -> minigpt_native::Config {
        minigpt_native::Config {
            n_head: self.n_head,
            n_embd: self.n_embd,
            n_positions: self.n_positions,
            layer_norm_epsilon: self.layer_norm_epsilon as f32,
            exact_gelu: self.exact_gelu(),
        }
    }

    /// The native engine's sizes for this model.
    pub fn native_sizes(&self) -> minigpt_native::Sizes {
        minigpt_native::Sizes {
            vocab: self.vocab_size,
            n_layer: self.n_layer,
            n_inner: self.inner(),
        }
    }
}

impl GptConfig {
    /// True when the MLP uses the exact erf GELU rather than GPT-2's tanh approximation.
    pub fn exact_gelu(&self) -> bool {
        self.activation_function == "gelu"
    }
}

fn default_eps() -> f64 {
    1e-5
}
fn default_act() -> String {
    "gelu_new".into()
}
// GPT2Config's defaults (GPT-2 124M).
fn default_vocab() -> usize {
    50257
}
fn default_positions() -> usize {
    1024
}
fn default_embd() -> usize {
    768
}
fn default_twelve() -> usize {
    12
}

fn default_model_type() -> String {
    "gpt2".into()
}
fn yes() -> bool {
    true
}

impl GptConfig {
    /// GPT-2 small (124M): transformers' default `GPT2Config`.
    pub fn gpt2_small() -> Self {
        Self::new(50257, 1024, 768, 12, 12)
    }

    /// A config with the given sizes and GPT-2's defaults for everything else.
    pub fn new(
        vocab_size: usize,
        n_positions: usize,
        n_embd: usize,
        n_layer: usize,
        n_head: usize,
    ) -> Self {
        Self {
            vocab_size,
            n_positions,
            n_embd,
            n_layer,
            n_head,
            n_inner: None,
            layer_norm_epsilon: 1e-5,
            bos_token_id: None,
            eos_token_id: None,
            activation_function: default_act(),
            embd_pdrop: 0.0,
            attn_pdrop: 0.0,
            resid_pdrop: 0.0,
            model_type: default_model_type(),
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            reorder_and_upcast_attn: false,
            add_cross_attention: false,
            tie_word_embeddings: true,
        }
    }

    /// Hidden width of the MLP.
    pub fn inner(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// Checks that minigpt can build and run this architecture.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_embd", self.n_embd),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
        ] {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.model_type != "gpt2" {
            return Err(format!(
                "model_type {:?} is not supported: minigpt runs GPT-2 models (model_type \"gpt2\")",
                self.model_type
            ));
        }
        for (name, id) in [
            ("eos_token_id", self.eos_token_id),
            ("bos_token_id", self.bos_token_id),
        ] {
            if let Some(id) = id.filter(|&id| id as usize >= self.vocab_size) {
                return Err(format!(
                    "{name} {id} is outside the vocabulary (vocab_size {}): ids run 0..{}",
                    self.vocab_size,
                    self.vocab_size - 1
                ));
            }
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon > 0.0) {
            return Err(format!(
                "layer_norm_epsilon must be a positive finite number (got {}); GPT-2 uses 1e-5",
                self.layer_norm_epsilon
            ));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(format!(
                "n_embd ({}) must be divisible by n_head ({})",
                self.n_embd, self.n_head
            ));
        }
        if !ACTIVATIONS.contains(&self.activation_function.as_str()) {
            return Err(format!(
                "activation_function {:?} is not supported (use one of {})",
                self.activation_function,
                ACTIVATIONS.join(", ")
            ));
        }
        let unsupported = [
            ("scale_attn_weights = false", !self.scale_attn_weights),
            (
                "scale_attn_by_inverse_layer_idx = true",
                self.scale_attn_by_inverse_layer_idx,
            ),
            (
                "reorder_and_upcast_attn = true",
                self.reorder_and_upcast_attn,
            ),
            ("add_cross_attention = true", self.add_cross_attention),
            ("tie_word_embeddings = false", !self.tie_word_embeddings),
        ];
        if let Some((what, _)) = unsupported.iter().find(|(_, on)| *on) {
            return Err(format!("{what} is not supported by minigpt's GPT-2"));
        }
        Ok(())
    }

    /// Reads and validates `config.json`.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        Self::from_json(&text, path)
    }

    /// Parses and validates the text of a `config.json` (`path` is only for messages).
    pub fn from_json(text: &str, path: &Path) -> Result<Self, ModelError> {
        let cfg: Self = serde_json::from_str(text).map_err(|e| ModelError::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        cfg.validate().map_err(|reason| ModelError::Config {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(cfg)
    }

    /// Writes `config.json` in Hugging Face's format (with `architectures`), atomically.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let mut v = serde_json::to_value(self).map_err(|e| ModelError::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        v["architectures"] = serde_json::json!(["GPT2LMHeadModel"]);
        let text = serde_json::to_string_pretty(&v).unwrap_or_default();
        crate::atomic_write::write_atomic(path, (text + "\n").as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_transformers_config_and_refuses_unsupported() {
        let json = r#"{"activation_function":"gelu_new","n_embd":32,"n_head":4,"n_layer":2,
            "n_positions":64,"vocab_size":100,"n_inner":null,"resid_pdrop":0.1,"summary_type":"cls_index"}"#;
        let c: GptConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.inner(), 128);
        assert_eq!(c.head_dim(), 8);
        assert!(c.validate().is_ok());
        let mut bad = c.clone();
        bad.n_head = 5;
        assert!(bad.validate().unwrap_err().contains("divisible"));
        let mut bad = c.clone();
        bad.activation_function = "relu".into();
        assert!(bad.validate().unwrap_err().contains("gelu_new"));
        let mut bad = c.clone();
        bad.tie_word_embeddings = false;
        assert!(bad.validate().is_err());
        // Another architecture, ids beyond the vocabulary, a LayerNorm epsilon that is not a
        // positive number: each refused, naming the key.
        let mut bad = c.clone();
        bad.model_type = "llama".into();
        assert!(bad.validate().unwrap_err().contains("model_type \"llama\""));
        let mut bad = c.clone();
        bad.eos_token_id = Some(100);
        assert!(bad.validate().unwrap_err().contains("eos_token_id 100"));
        bad.eos_token_id = Some(99);
        assert!(bad.validate().is_ok());
        for eps in [-1e-5, 0.0, f64::NAN, f64::INFINITY] {
            let mut bad = c.clone();
            bad.layer_norm_epsilon = eps;
            assert!(
                bad.validate().unwrap_err().contains("layer_norm_epsilon"),
                "{eps}"
            );
        }
    }
}
