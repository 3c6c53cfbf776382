//! Experiments over decoding strategies: the metrics of generated text (defined in the README's
//! "Experiments" section), the sweep runner and its CSV outputs, summaries, plots.

pub mod compare;
pub mod config;
pub mod csv;
pub mod grid;
pub mod metrics;
pub mod plot;
pub mod runner;
pub mod summary;

pub use config::{ConfigError, SweepConfig};
pub use runner::{Judge, Outcome, Plan, Progress, RunError};
