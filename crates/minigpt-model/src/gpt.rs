//! GPT-2 (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners"), read top
//! to bottom in forward order, with parameter names matching Hugging Face's checkpoint.
//!
//! token + learned position embeddings → n_layer × [x + attn(ln_1(x)); x + mlp(ln_2(x))] →
//! ln_f → logits against the token embedding (tied LM head).

use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::tensor::activation::{gelu, sigmoid};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Int, Tensor};

use crate::cache::{KvCache, LayerCache};
use crate::config::GptConfig;

/// The whole model: embeddings, blocks, final LayerNorm (the head reuses `wte`).
#[derive(Module, Debug)]
pub struct Gpt {
    /// Token embedding `[vocab_size, n_embd]`, also the LM head.
    pub wte: Embedding,
    /// Position embedding `[n_positions, n_embd]`.
    pub wpe: Embedding,
    /// Embedding dropout (training only).
    pub drop: Dropout,
    /// The transformer blocks.
    pub h: Vec<Block>,
    /// Final LayerNorm.
    pub ln_f: LayerNorm,
}

/// One pre-LayerNorm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    /// LayerNorm before attention.
    pub ln_1: LayerNorm,
    /// Causal self-attention.
    pub attn: Attention,
    /// LayerNorm before the MLP.
    pub ln_2: LayerNorm,
    /// Feed-forward network.
    pub mlp: Mlp,
}

/// Causal multi-head self-attention with fused QKV (`c_attn`).
#[derive(Module, Debug)]
pub struct Attention {
    /// `[n_embd, 3 n_embd]`: queries, keys and values of all heads in one matmul.
    pub c_attn: Linear,
    /// `[n_embd, n_embd]` output projection.
    pub c_proj: Linear,
    /// Residual dropout (training only).
    pub resid_drop: Dropout,
    /// Number of heads.
    pub n_head: usize,
}

/// Two-layer MLP with a GELU between.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Exact erf GELU (`gelu`) instead of GPT-2's tanh approximation (`gelu_new`).
    pub exact_gelu: bool,
    /// `[n_embd, n_inner]`.
    pub c_fc: Linear,
    /// `[n_inner, n_embd]`.
    pub c_proj: Linear,
    /// Residual dropout (training only).
    pub drop: Dropout,
}

fn layer_norm(cfg: &GptConfig, device: &Device) -> LayerNorm {
    LayerNormConfig::new(cfg.n_embd)
        .with_epsilon(cfg.layer_norm_epsilon)
        .init(device)
}

fn linear(d_in: usize, d_out: usize, std: f64, device: &Device) -> Linear {
    let mut l = LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    l.bias = Some(Initializer::Zeros.init([d_out], device));
    l
}

impl Gpt {
    /// A freshly initialised model as GPT-2 initialises it: N(0, 0.02) weights, residual
    /// projections scaled by 1/√(2 n_layer), zero biases, unit LayerNorms. Dropout is active
    /// only when `train` is set.
    pub fn init(cfg: &GptConfig, device: &Device, train: bool) -> Self {
        let std = 0.02;
        let proj_std = std / (2.0 * cfg.n_layer as f64).sqrt();
        let p = |prob: f64| DropoutConfig::new(if train { prob } else { 0.0 }).init();
        let embedding = |n: usize| {
            EmbeddingConfig::new(n, cfg.n_embd)
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device)
        };
        let h = (0..cfg.n_layer)
            .map(|_| Block {
                ln_1: layer_norm(cfg, device),
                attn: Attention {
                    c_attn: linear(cfg.n_embd, 3 * cfg.n_embd, std, device),
                    c_proj: linear(cfg.n_embd, cfg.n_embd, proj_std, device),
                    resid_drop: p(cfg.resid_pdrop),
                    n_head: cfg.n_head,
                },
                ln_2: layer_norm(cfg, device),
                mlp: Mlp {
                    exact_gelu: cfg.exact_gelu(),
                    c_fc: linear(cfg.n_embd, cfg.inner(), std, device),
                    c_proj: linear(cfg.inner(), cfg.n_embd, proj_std, device),
                    drop: p(cfg.resid_pdrop),
                },
            })
            .collect();
        Self {
            wte: embedding(cfg.vocab_size),
            wpe: embedding(cfg.n_positions),
            drop: p(cfg.embd_pdrop),
            h,
            ln_f: layer_norm(cfg, device),
        }
    }

    /// Hidden states after `ln_f`.
    ///
    /// `mask` (true = may not attend) is needed only for left-padded batches; without it the
    /// attention is causal, aligned bottom-right so that new queries see every cached key.
    /// With a `cache`, the new keys and values are appended to it.
    ///
    /// # Shapes
    /// - ids, positions: `[batch, t]`
    /// - mask: `[batch, n_head, t, cached + t]`
    /// - output: `[batch, t, n_embd]`
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        positions: Tensor<2, Int>,
        mask: Option<Tensor<4, Bool>>,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        let x = self.wte.forward(ids) + self.wpe.forward(positions); // [b, t, c]
        let mut x = self.drop.forward(x);
        for (i, block) in self.h.iter().enumerate() {
            let layer = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = block.forward(x, mask.clone(), layer);
        }
        self.ln_f.forward(x)
    }

    /// Logits of hidden states against the tied token embedding.
    ///
    /// # Shapes
    /// - hidden: `[batch, t, n_embd]`
    /// - output: `[batch, t, vocab_size]`
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        let [b, t, c] = hidden.dims();
        let wte = self.wte.weight.val(); // [v, c]
        let [v, _] = wte.dims();
        // A 2-D matmul against the transposed view: a 3-D one copies the whole table each call.
        let logits = hidden.reshape([b * t, c]).matmul(wte.transpose()); // [b t, v]
        logits.reshape([b, t, v])
    }
}

impl Block {
    fn forward(
        &self,
        x: Tensor<3>,
        mask: Option<Tensor<4, Bool>>,
        cache: Option<&mut LayerCache>,
    ) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.ln_1.forward(x), mask, cache);
        x.clone() + self.mlp.forward(self.ln_2.forward(x))
    }
}

impl Attention {
    fn forward(
        &self,
        x: Tensor<3>,
        mask: Option<Tensor<4, Bool>>,
        cache: Option<&mut LayerCache>,
    ) -> Tensor<3> {
        let [b, t, c] = x.dims();
        let hd = c / self.n_head;
        let qkv = self.c_attn.forward(x); // [b, t, 3c]
        let heads = |i: usize| {
            qkv.clone()
                .narrow(2, i * c, c)
                .reshape([b, t, self.n_head, hd])
                .swap_dims(1, 2) // [b, n_head, t, hd]
        };
        let (q, k, v) = (heads(0), heads(1), heads(2));
        let (k, v) = match cache {
            Some(layer) => layer.append(k, v), // [b, n_head, cached + t, hd]
            None => (k, v),
        };
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: mask.is_none(),
        };
        let y = attention(q, k, v, mask, None, options); // [b, n_head, t, hd]
        let y = y.swap_dims(1, 2).reshape([b, t, c]);
        self.resid_drop.forward(self.c_proj.forward(y))
    }
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self.c_fc.forward(x);
        let x = if self.exact_gelu {
            gelu(x)
        } else {
            gelu_tanh(x)
        };
        self.drop.forward(self.c_proj.forward(x))
    }
}

/// GPT-2's tanh GELU, `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, written as the identical
/// `x·σ(2√(2/π)·(x + 0.044715·x³))`: Burn's `gelu_approximate` calls scalar `powf` and `tanh`
/// per element (a fifth of a training step on flex), while `σ` is one fused op with a fused
/// backward and the cube is two multiplications.
fn gelu_tanh(x: Tensor<3>) -> Tensor<3> {
    const TWO_SQRT_2_OVER_PI: f64 = 2.0 * 0.797_884_560_802_865_4;
    let cube = x.clone() * x.clone() * x.clone();
    let inner = (x.clone() + cube * 0.044715) * TWO_SQRT_2_OVER_PI;
    x * sigmoid(inner)
}
