//! [`ModelSource`]: what a `--model` flag or a config's `path` names, a folder or a Hub
//! repository.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::repo_id::RepoId;

/// A model named by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A model folder in Hugging Face layout.
    Dir(PathBuf),
    /// A Hugging Face Hub repository, fetched into the cache on first use.
    Hub(RepoId),
}

impl ModelSource {
    /// What `spec` names, relative paths taken from `base`: an existing path is a folder; else
    /// a valid repo id (`gpt2`, `openai-community/gpt2-medium@main`) is a Hub repository; else
    /// it is a folder (that does not exist, which loading reports).
    pub fn parse(spec: &str, base: &Path) -> Self {
        let path = base.join(spec);
        if path.exists() {
            return Self::Dir(path);
        }
        match RepoId::parse(spec) {
            Some(repo) => Self::Hub(repo),
            None => Self::Dir(path),
        }
    }

    /// A short name for tables and folder names: the folder's own name, or the repository's
    /// (`gpt2-medium` for `openai-community/gpt2-medium`).
    pub fn short_name(&self) -> String {
        match self {
            Self::Dir(d) => std::fs::canonicalize(d)
                .ok()
                .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| d.display().to_string()),
            Self::Hub(r) => r.short_name().to_string(),
        }
    }
}

impl fmt::Display for ModelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir(d) => write!(f, "{}", d.display()),
            Self::Hub(r) => write!(f, "{r}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_that_exists_wins_over_a_repo_id() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("gpt2")).unwrap();
        assert_eq!(
            ModelSource::parse("gpt2", dir.path()),
            ModelSource::Dir(dir.path().join("gpt2"))
        );
        let hub = ModelSource::parse("openai-community/gpt2-medium", dir.path());
        assert_eq!(
            hub,
            ModelSource::Hub(RepoId::parse("openai-community/gpt2-medium").unwrap())
        );
        assert_eq!(hub.short_name(), "gpt2-medium");
        assert_eq!(
            ModelSource::parse("../missing/dir", dir.path()),
            ModelSource::Dir(dir.path().join("../missing/dir"))
        );
        assert_eq!(ModelSource::parse("gpt2", dir.path()).short_name(), "gpt2");
    }
}
