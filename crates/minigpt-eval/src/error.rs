//! The error of a run, a merge or an evaluation that cannot start or finish.

use std::path::Path;

/// A run that cannot start or finish; the message says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunError(pub String);

impl RunError {
    /// "cannot `what` `path`: `e`".
    pub fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> Self {
        Self(format!("cannot {what} {}: {e}", path.display()))
    }
}
