//! The Burn module's weights as the native engine's plain host weights: the one place where
//! `minigpt-native` (which knows no Burn types) meets the Burn model.

use minigpt_native::{BlockWeights, DType, LinearWeights, NativeGpt, NormWeights, Weights};

use crate::config::GptConfig;
use crate::gpt::Gpt;
use crate::to_host;

/// The engine's hyper-parameters for `config`.
pub(crate) fn native_config(config: &GptConfig) -> minigpt_native::Config {
    minigpt_native::Config {
        n_head: config.n_head,
        n_embd: config.n_embd,
        n_positions: config.n_positions,
        layer_norm_epsilon: config.layer_norm_epsilon as f32,
        exact_gelu: config.exact_gelu(),
    }
}

/// Copies `model`'s weights to the host as f32 (one device read each), dropping each block's
/// tensors once copied.
fn native_weights(model: Gpt, config: &GptConfig) -> Weights {
    let c = config.n_embd;
    let linear = |l: &burn::nn::Linear| {
        let [d_in, d_out] = l.weight.val().dims();
        LinearWeights {
            d_in,
            d_out,
            weight: to_host(l.weight.val()),
            bias: l
                .bias
                .as_ref()
                .map_or_else(|| vec![0.0; d_out], |b| to_host(b.val())),
        }
    };
    let norm = |n: &burn::nn::LayerNorm| NormWeights {
        gamma: to_host(n.gamma.val()),
        beta: n
            .beta
            .as_ref()
            .map_or_else(|| vec![0.0; c], |b| to_host(b.val())),
    };
    let Gpt {
        wte, wpe, h, ln_f, ..
    } = model;
    Weights {
        wte: to_host(wte.weight.val()),
        wpe: to_host(wpe.weight.val()),
        h: h.into_iter()
            .map(|b| BlockWeights {
                ln_1: norm(&b.ln_1),
                attn_c_attn: linear(&b.attn.c_attn),
                attn_c_proj: linear(&b.attn.c_proj),
                ln_2: norm(&b.ln_2),
                mlp_c_fc: linear(&b.mlp.c_fc),
                mlp_c_proj: linear(&b.mlp.c_proj),
            })
            .collect(),
        ln_f: norm(&ln_f),
    }
}

/// Packs `model` for the native engine in `dtype` (the Burn module is consumed).
pub fn to_native(model: Gpt, config: &GptConfig, dtype: DType) -> NativeGpt {
    NativeGpt::new(native_config(config), native_weights(model, config), dtype)
}
