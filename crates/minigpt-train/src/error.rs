//! The error of a training run.

use minigpt_model::ModelError;

/// A run that cannot start or continue.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The config or the corpus is unusable.
    #[error("{0}")]
    Config(String),
    /// Loading or saving the model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Writing outputs failed.
    #[error("{0}")]
    Io(String),
}
