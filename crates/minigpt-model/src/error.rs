//! Errors of model loading, saving and running.

use std::path::{Path, PathBuf};

/// Everything that can go wrong with a model directory or a device.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The model directory does not exist.
    #[error(
        "model directory {0} does not exist: pass --model DIR with config.json and model.safetensors"
    )]
    NoModelDir(PathBuf),
    /// `config.json` is malformed or describes an unsupported architecture.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `model.safetensors` is not a valid safetensors file or lacks a parameter.
    #[error("{path}: {reason}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A device name that is not compiled in.
    #[error("unknown device {0:?}: use flex, ndarray or wgpu")]
    UnknownDevice(String),
    /// A prompt the model cannot take.
    #[error("{0}")]
    Input(String),
}

impl ModelError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
