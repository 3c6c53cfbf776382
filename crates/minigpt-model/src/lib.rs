//! GPT-2 on Burn: the architecture, a KV cache, batched decoding behind `minigpt-decode`'s
//! `LanguageModel` trait, scoring, and Hugging Face checkpoint I/O.

pub mod atomic_write;
pub mod cache;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod error;
pub mod gpt;
pub mod judge;
pub mod lm;
pub mod memory;
mod native_load;
pub mod pack_cache;
pub mod score;
mod tensor_index;

pub use atomic_write::write_atomic;
pub use checkpoint::{
    CONFIG_FILE, WEIGHTS_FILE, load_dir, load_dir_with, load_weights, save_dir, to_safetensors,
};
pub use config::{ACTIVATIONS, GptConfig};
pub use device::{Adapter, DEVICE_NAMES, Target, adapter, parse_device, parse_target};
pub use error::ModelError;
pub use gpt::Gpt;
pub use judge::GptJudge;
pub use lm::{BurnLm, ContextPolicy, GptEngine, GptLm, NativeLm};
pub use minigpt_native::{DType, NativeGpt};
pub use pack_cache::PackCache;
pub use score::{Score, continuation_perplexity, score};

/// Copies a tensor to the host as f32 values (one device read).
pub(crate) fn to_host<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .expect("a float tensor reads back as f32")
}
