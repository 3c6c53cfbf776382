//! [`NativeGpt`]: GPT-2's weights packed for the engine, built from plain host weights
//! ([`Weights`]) so that the engine depends on no tensor library.

use crate::attention::KEY_BLOCK;
use crate::cache::SeqCache;
use crate::dtype::DType;
use crate::matmul::matmul;
use crate::pack::Packed;

/// The hyper-parameters the engine needs (the rest follow from the weights' sizes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Attention heads per layer.
    pub n_head: usize,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// Context length (rows of the position embedding).
    pub n_positions: usize,
    /// LayerNorm's epsilon.
    pub layer_norm_epsilon: f32,
    /// The exact erf GELU (`gelu`) instead of GPT-2's tanh approximation (`gelu_new`).
    pub exact_gelu: bool,
}

/// GPT-2's weights as row-major f32 values, named as in Hugging Face's checkpoints.
#[derive(Debug, Clone)]
pub struct Weights {
    /// Token embedding `[vocab_size, n_embd]`, also the LM head (tied).
    pub wte: Vec<f32>,
    /// Position embedding `[n_positions, n_embd]`.
    pub wpe: Vec<f32>,
    /// The transformer blocks, first to last.
    pub h: Vec<BlockWeights>,
    /// The final LayerNorm.
    pub ln_f: NormWeights,
}

/// One transformer block's weights.
#[derive(Debug, Clone)]
pub struct BlockWeights {
    /// LayerNorm before attention.
    pub ln_1: NormWeights,
    /// Attention's fused query, key and value projection `[n_embd, 3 n_embd]`.
    pub attn_c_attn: LinearWeights,
    /// Attention's output projection `[n_embd, n_embd]`.
    pub attn_c_proj: LinearWeights,
    /// LayerNorm before the MLP.
    pub ln_2: NormWeights,
    /// The MLP's first layer `[n_embd, n_inner]`.
    pub mlp_c_fc: LinearWeights,
    /// The MLP's second layer `[n_inner, n_embd]`.
    pub mlp_c_proj: LinearWeights,
}

/// A linear layer `y = x · weight + bias`.
#[derive(Debug, Clone)]
pub struct LinearWeights {
    /// Input features.
    pub d_in: usize,
    /// Output features.
    pub d_out: usize,
    /// `[d_in, d_out]`, row-major.
    pub weight: Vec<f32>,
    /// `d_out` values (zeros for a layer without bias).
    pub bias: Vec<f32>,
}

/// A LayerNorm's scale and shift (`n_embd` values each).
#[derive(Debug, Clone)]
pub struct NormWeights {
    /// Scale (`gamma`).
    pub gamma: Vec<f32>,
    /// Shift (`beta`; zeros for a LayerNorm without one).
    pub beta: Vec<f32>,
}

/// A linear layer: packed `[in, out]` weight and f32 bias.
#[derive(Debug)]
pub(crate) struct Linear {
    pub(crate) w: Packed,
    pub(crate) b: Vec<f32>,
}

impl Linear {
    fn pack(l: LinearWeights, dtype: DType) -> Self {
        assert_eq!(l.bias.len(), l.d_out, "a bias of the wrong size");
        Self {
            w: Packed::from_rows(&l.weight, l.d_in, l.d_out, dtype),
            b: l.bias,
        }
    }
}

/// A LayerNorm's scale and shift.
#[derive(Debug)]
pub(crate) struct Norm {
    pub(crate) g: Vec<f32>,
    pub(crate) b: Vec<f32>,
}

impl Norm {
    fn new(n: NormWeights, width: usize) -> Self {
        assert!(
            n.gamma.len() == width && n.beta.len() == width,
            "a LayerNorm of the wrong size"
        );
        Self {
            g: n.gamma,
            b: n.beta,
        }
    }
}

/// Causal self-attention's two projections.
#[derive(Debug)]
pub(crate) struct Attention {
    /// Queries, keys and values of all heads.
    pub(crate) c_attn: Linear,
    /// The output projection.
    pub(crate) c_proj: Linear,
}

/// The MLP's two layers (a GELU between).
#[derive(Debug)]
pub(crate) struct Mlp {
    pub(crate) c_fc: Linear,
    pub(crate) c_proj: Linear,
}

/// One pre-LayerNorm transformer block.
#[derive(Debug)]
pub(crate) struct Block {
    pub(crate) ln_1: Norm,
    pub(crate) attn: Attention,
    pub(crate) ln_2: Norm,
    pub(crate) mlp: Mlp,
}

/// GPT-2 with packed weights.
#[derive(Debug)]
pub struct NativeGpt {
    pub(crate) config: Config,
    /// The tied embedding as the head's `[n_embd, vocab]` matrix (column `t` = token `t`).
    pub(crate) wte: Packed,
    pub(crate) wpe: Vec<f32>,
    pub(crate) h: Vec<Block>,
    pub(crate) ln_f: Norm,
}

impl NativeGpt {
    /// Packs `weights` in `dtype` (biases, LayerNorms and the position embedding stay f32).
    /// Each block's host copy is dropped as soon as it is packed.
    ///
    /// # Panics
    /// When a weight's size does not match `config` (or `n_embd` is not a multiple of
    /// `n_head`).
    pub fn new(config: Config, weights: Weights, dtype: DType) -> Self {
        let c = config.n_embd;
        assert!(
            c > 0 && config.n_head > 0 && c.is_multiple_of(config.n_head),
            "n_embd must be a positive multiple of n_head"
        );
        let Weights { wte, wpe, h, ln_f } = weights;
        assert!(
            !wte.is_empty() && wte.len().is_multiple_of(c),
            "the token embedding is not [vocab_size, n_embd]"
        );
        assert_eq!(
            wpe.len(),
            config.n_positions * c,
            "the position embedding is not [n_positions, n_embd]"
        );
        let vocab = wte.len() / c;
        let blocks = h
            .into_iter()
            .map(|b| Block {
                ln_1: Norm::new(b.ln_1, c),
                attn: Attention {
                    c_attn: Linear::pack(b.attn_c_attn, dtype),
                    c_proj: Linear::pack(b.attn_c_proj, dtype),
                },
                ln_2: Norm::new(b.ln_2, c),
                mlp: Mlp {
                    c_fc: Linear::pack(b.mlp_c_fc, dtype),
                    c_proj: Linear::pack(b.mlp_c_proj, dtype),
                },
            })
            .collect();
        Self {
            config,
            wte: Packed::new(c, vocab, dtype, |r, t| wte[t * c + r]),
            wpe,
            h: blocks,
            ln_f: Norm::new(ln_f, c),
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.wte.n
    }

    /// The weights' storage type.
    pub fn dtype(&self) -> DType {
        self.wte.dtype()
    }

    /// An empty cache with room for the whole context (touched only as it fills).
    pub fn new_cache(&self) -> SeqCache {
        let values = self.cache_len() * self.config.n_embd;
        SeqCache::new(self.h.len(), values, self.dtype() != DType::F32)
    }

    /// Cached positions per head, rounded up to whole key blocks.
    pub(crate) fn cache_len(&self) -> usize {
        self.config.n_positions.next_multiple_of(KEY_BLOCK)
    }

    /// Logits `[rows, vocab]` of final hidden states `[rows, n_embd]` (the LM head: the tied
    /// token embedding).
    pub fn logits(&self, hidden: &[f32]) -> Vec<f32> {
        let m = hidden.len() / self.config.n_embd;
        let mut out = vec![0f32; m * self.wte.n];
        matmul(hidden, m, &self.wte, None, &mut out);
        out
    }
}
