//! Training minigpt's GPT from scratch (nanoGPT's recipe) on Burn autodiff: character-level
//! data, AdamW with linear warm-up then cosine decay, gradient clipping, dropout, a held-out
//! split, periodic evaluation, a CSV log, and checkpoints that resume exactly.

pub mod config;
pub mod data;
pub mod error;
mod optimizer;
pub mod plot;
pub mod trainer;

pub use config::TrainConfig;
pub use data::Corpus;
pub use error::TrainError;
pub use trainer::{Progress, TrainSummary, lr_at, train};
