//! Decoding: the model seen through a batched trait, token selection, and the generation loop.
//!
//! This crate has no Burn dependency: every piece is tested against tiny table-driven fake models.

pub mod generate;
pub mod model;
pub mod rng;
pub mod sampling;

pub use generate::{FinishReason, GenerateRequest, Generation, generate};
pub use model::{LanguageModel, Logits, ModelError};
pub use rng::Rng;
pub use sampling::{SamplingError, SamplingParams};
