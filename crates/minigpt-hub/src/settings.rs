//! [`Settings`]: where the cache is, which server to ask, with which token, and whether the
//! network may be used, read from the environment as Python's `huggingface_hub` reads it.

use std::path::PathBuf;

/// The Hub's address when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How models are fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The cache folder (`HF_HUB_CACHE`, else `$HF_HOME/hub`, else
    /// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`).
    pub cache: PathBuf,
    /// The server (`HF_ENDPOINT`, else `https://huggingface.co`), without a trailing `/`.
    pub endpoint: String,
    /// The access token (`HF_TOKEN`, else the file `HF_TOKEN_PATH` or `$HF_HOME/token`), sent
    /// only when there is one.
    pub token: Option<String>,
    /// `HF_HUB_OFFLINE` is `1`, `ON`, `YES` or `TRUE`: only the cache is used.
    pub offline: bool,
    /// Draw a progress bar (on a terminal); otherwise one line per downloaded file.
    pub progress_bar: bool,
    /// Times a broken transfer is retried within one run, each retry resuming where the last
    /// stopped (2).
    pub retries: usize,
}

impl Settings {
    /// The settings the environment gives.
    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// The settings these variables give (`var` answers for one variable).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let cache = var("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| {
                var("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("."))
                    .join(".cache")
            });
            cache.join("huggingface")
        });
        let cache = var("HF_HUB_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join("hub"));
        let token_file = var("HF_TOKEN_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join("token"));
        let token = var("HF_TOKEN")
            .or_else(|| std::fs::read_to_string(token_file).ok())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let endpoint = var("HF_ENDPOINT")
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
            .trim_end_matches('/')
            .to_string();
        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| {
            matches!(v.to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE")
        });
        Self {
            cache,
            endpoint,
            token,
            offline,
            progress_bar: false,
            retries: 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn with(vars: &[(&str, &str)]) -> Settings {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn follows_huggingface_hub_defaults_and_overrides() {
        let s = with(&[("HOME", "/home/u")]);
        assert_eq!(s.cache, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert_eq!(s.endpoint, "https://huggingface.co");
        assert_eq!((s.token, s.offline), (None, false));
        let s = with(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg")]);
        assert_eq!(s.cache, PathBuf::from("/xdg/huggingface/hub"));
        let s = with(&[("HF_HOME", "/hf"), ("HF_ENDPOINT", "http://127.0.0.1:9/")]);
        assert_eq!(s.cache, PathBuf::from("/hf/hub"));
        assert_eq!(s.endpoint, "http://127.0.0.1:9");
        let s = with(&[
            ("HF_HOME", "/hf"),
            ("HF_HUB_CACHE", "/c"),
            ("HF_TOKEN", " t \n"),
        ]);
        assert_eq!(s.cache, PathBuf::from("/c"));
        assert_eq!(s.token.as_deref(), Some("t"));
        for (v, off) in [
            ("1", true),
            ("true", true),
            ("ON", true),
            ("0", false),
            ("no", false),
        ] {
            assert_eq!(with(&[("HF_HUB_OFFLINE", v)]).offline, off, "{v}");
        }
    }

    #[test]
    fn reads_the_token_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "hf_abc\n").unwrap();
        let home = dir.path().display().to_string();
        assert_eq!(with(&[("HF_HOME", &home)]).token.as_deref(), Some("hf_abc"));
        // HF_TOKEN wins over the file.
        let s = with(&[("HF_HOME", &home), ("HF_TOKEN", "hf_env")]);
        assert_eq!(s.token.as_deref(), Some("hf_env"));
    }
}
