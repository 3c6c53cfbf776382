//! [`NativeGpt`]: GPT-2's weights packed for the engine, built from plain host weights
//! ([`Weights`]) so that the engine depends on no tensor library.

use crate::attention::KEY_BLOCK;
use crate::cache::SeqCache;
use crate::dtype::DType;
use crate::matmul::matmul;
use crate::pack::Packed;
use crate::source::{Elements, WeightSource};

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

/// The sizes [`NativeGpt::from_source`] needs besides [`Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Tokens in the vocabulary (rows of the token embedding).
    pub vocab: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Width of the MLP's hidden layer.
    pub n_inner: usize,
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
    /// Packs `{name}.weight` (`[d_in, d_out]`) and copies `{name}.bias` from `src`.
    fn from_source(
        src: &mut dyn WeightSource,
        name: &str,
        d_in: usize,
        d_out: usize,
        dtype: DType,
    ) -> Self {
        let w_name = format!("{name}.weight");
        let w = src.tensor(&w_name);
        assert_eq!(w.len(), d_in * d_out, "{w_name} has the wrong size");
        let w = Packed::from_elements(d_in, d_out, dtype, w, false);
        src.done(&w_name);
        Self {
            w,
            b: vector(src, &format!("{name}.bias"), d_out),
        }
    }
}

/// The named vector of `len` values, copied out of `src`.
fn vector(src: &mut dyn WeightSource, name: &str, len: usize) -> Vec<f32> {
    let v = src.tensor(name).to_vec();
    src.done(name);
    assert_eq!(v.len(), len, "{name} has the wrong size");
    v
}

/// A LayerNorm's scale and shift.
#[derive(Debug)]
pub(crate) struct Norm {
    pub(crate) g: Vec<f32>,
    pub(crate) b: Vec<f32>,
}

impl Norm {
    /// `{name}.weight` and `{name}.bias` (`width` values each) from `src`.
    fn from_source(src: &mut dyn WeightSource, name: &str, width: usize) -> Self {
        Self {
            g: vector(src, &format!("{name}.weight"), width),
            b: vector(src, &format!("{name}.bias"), width),
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
    ///
    /// # Panics
    /// When a weight's size does not match `config` (or `n_embd` is not a multiple of
    /// `n_head`).
    pub fn new(config: Config, weights: Weights, dtype: DType) -> Self {
        let c = config.n_embd;
        assert!(
            c > 0 && !weights.wte.is_empty() && weights.wte.len().is_multiple_of(c),
            "the token embedding is not [vocab_size, n_embd]"
        );
        let sizes = Sizes {
            vocab: weights.wte.len() / c,
            n_layer: weights.h.len(),
            n_inner: weights.h.first().map_or(4 * c, |b| b.mlp_c_fc.d_out),
        };
        Self::from_source(config, sizes, dtype, &mut InMemory(weights))
    }

    /// Packs a GPT-2 of these `sizes`, reading each tensor from `src` (the token embedding,
    /// the largest, first) and telling `src` as soon as it is done with it.
    ///
    /// # Panics
    /// When a tensor's size does not match `config` and `sizes`, or `n_embd` is not a multiple
    /// of `n_head`.
    pub fn from_source(
        config: Config,
        sizes: Sizes,
        dtype: DType,
        src: &mut dyn WeightSource,
    ) -> Self {
        let Sizes {
            vocab,
            n_layer,
            n_inner,
        } = sizes;
        let c = config.n_embd;
        assert!(
            c > 0 && config.n_head > 0 && c.is_multiple_of(config.n_head),
            "n_embd must be a positive multiple of n_head"
        );
        let wte = src.tensor("wte.weight");
        assert_eq!(
            wte.len(),
            vocab * c,
            "the token embedding is not [vocab_size, n_embd]"
        );
        // The head's [n_embd, vocab] matrix: column t is token t's embedding.
        let wte = Packed::from_elements(c, vocab, dtype, wte, true);
        src.done("wte.weight");
        let wpe = vector(src, "wpe.weight", config.n_positions * c);
        let h = (0..n_layer)
            .map(|i| {
                let pre = format!("h.{i}");
                Block {
                    ln_1: Norm::from_source(src, &format!("{pre}.ln_1"), c),
                    attn: Attention {
                        c_attn: Linear::from_source(
                            src,
                            &format!("{pre}.attn.c_attn"),
                            c,
                            3 * c,
                            dtype,
                        ),
                        c_proj: Linear::from_source(
                            src,
                            &format!("{pre}.attn.c_proj"),
                            c,
                            c,
                            dtype,
                        ),
                    },
                    ln_2: Norm::from_source(src, &format!("{pre}.ln_2"), c),
                    mlp: Mlp {
                        c_fc: Linear::from_source(
                            src,
                            &format!("{pre}.mlp.c_fc"),
                            c,
                            n_inner,
                            dtype,
                        ),
                        c_proj: Linear::from_source(
                            src,
                            &format!("{pre}.mlp.c_proj"),
                            n_inner,
                            c,
                            dtype,
                        ),
                    },
                }
            })
            .collect();
        Self {
            config,
            wte,
            wpe,
            h,
            ln_f: Norm::from_source(src, "ln_f", c),
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

/// [`Weights`] as a [`WeightSource`].
struct InMemory(Weights);

impl WeightSource for InMemory {
    fn tensor(&mut self, name: &str) -> Elements<'_> {
        let w = &self.0;
        let values: &[f32] = match name {
            "wte.weight" => &w.wte,
            "wpe.weight" => &w.wpe,
            "ln_f.weight" => &w.ln_f.gamma,
            "ln_f.bias" => &w.ln_f.beta,
            _ => {
                let rest = name
                    .strip_prefix("h.")
                    .unwrap_or_else(|| panic!("no tensor {name}"));
                let (i, leaf) = rest
                    .split_once('.')
                    .unwrap_or_else(|| panic!("no tensor {name}"));
                let b = &w.h[i
                    .parse::<usize>()
                    .unwrap_or_else(|_| panic!("no tensor {name}"))];
                match leaf {
                    "ln_1.weight" => &b.ln_1.gamma,
                    "ln_1.bias" => &b.ln_1.beta,
                    "ln_2.weight" => &b.ln_2.gamma,
                    "ln_2.bias" => &b.ln_2.beta,
                    "attn.c_attn.weight" => &b.attn_c_attn.weight,
                    "attn.c_attn.bias" => &b.attn_c_attn.bias,
                    "attn.c_proj.weight" => &b.attn_c_proj.weight,
                    "attn.c_proj.bias" => &b.attn_c_proj.bias,
                    "mlp.c_fc.weight" => &b.mlp_c_fc.weight,
                    "mlp.c_fc.bias" => &b.mlp_c_fc.bias,
                    "mlp.c_proj.weight" => &b.mlp_c_proj.weight,
                    "mlp.c_proj.bias" => &b.mlp_c_proj.bias,
                    _ => panic!("no tensor {name}"),
                }
            }
        };
        Elements::F32(values)
    }
}
