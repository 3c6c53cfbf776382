//! Decoding: the model seen through a batched trait, logits processors and token selectors as
//! plugins composed into user-ordered chains, strategy files, and the generation loop.
//!
//! This crate has no Burn dependency: every piece is tested against tiny table-driven fake models.

pub mod batch;
pub mod builtin;
pub mod builtin_strategies;
pub mod cancel;
pub mod dist;
pub mod features;
pub mod forced;
pub mod generate;
pub mod generation;
pub mod judge;
mod mass_cut;
pub mod model;
pub mod pipeline;
pub mod processor;
pub mod processors;
pub mod registry;
pub mod rng;
pub mod row_check;
pub mod search;
pub mod searches;
pub mod selector;
pub mod selectors;
pub mod stop;
pub mod strategy;

pub use batch::{Accepted, Batch, NewRow};
pub use builtin_strategies::{BUILTIN_STRATEGIES, builtin_strategy_names, builtin_strategy_text};
pub use cancel::Cancelled;
pub use features::last_hidden_features;
pub use forced::{ForcedScore, score_forced};
pub use generate::{GenerateRequest, decode, generate};
pub use generation::{FinishReason, Generation};
pub use judge::Judge;
pub use model::{Hidden, LanguageModel, Logits, ModelError};
pub use pipeline::Pipeline;
pub use processor::{LogitsProcessor, StepContext};
pub use registry::{BuildContext, ParamInfo, PluginInfo, PluginKind, Registry};
pub use rng::Rng;
pub use row_check::{RowProblem, UnusableRow};
pub use search::{SearchRequest, SearchStrategy};
pub use selector::{Choice, TokenSelector};
pub use stop::StopStrings;
pub use strategy::{Decoding, Last, PluginSpec, Strategy, StrategyError};
