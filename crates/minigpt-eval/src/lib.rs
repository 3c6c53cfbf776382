//! Experiments over decoding strategies: the metrics of generated text (defined in the README's
//! "Experiments" section), the sweep and its run folders (typed CSV rows, summaries, plots),
//! merging shards, and the comparison of a candidate with a baseline.
//!
//! Modules depend on each other in one direction: `row` and `metrics` are leaves; `config`
//! reads `prompt_set` (the prompts and their human continuations); `summary`
//! and `plot` read rows; `run_dir` owns the folder and its files (`run_lock` its lock); `sweep`, `merge` and
//! `compare` work through `run_dir`.

pub mod batch_size;
pub mod bootstrap;
pub mod compare;
pub mod config;
pub mod error;
pub mod grid;
pub mod mauve;
pub mod merge;
pub mod metric_info;
pub mod metrics;
pub mod plot;
pub mod prompt_set;
pub mod records;
pub mod report;
pub mod row;
pub mod run_dir;
pub mod run_lock;
pub mod scheduler;
pub mod summary;
pub mod sweep;

pub use config::{ConfigError, SweepConfig};
pub use error::RunError;
pub use row::{GenerationRow, RowKey, SummaryRow};
pub use run_dir::RunDir;
pub use sweep::{Generator, Judge, Outcome, Plan, Progress};
