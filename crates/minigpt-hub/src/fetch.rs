//! [`fetch`]: a repository's GPT-2 files in the Hugging Face cache, downloaded when missing.
//!
//! The cache layout, the download (a `.part` file resumed with a Range request, then
//! renamed to its blob) and the lock are `hf-hub`'s. This module decides which files are needed,
//! pins them all to one commit, refuses repositories minigpt cannot run before their weights
//! are downloaded, checks each download's size and sha256, and turns failures into
//! [`HubError`]s.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};
use sha2::{Digest, Sha256};

use crate::error::HubError;
use crate::progress::Tracker;
use crate::repo_id::RepoId;
use crate::settings::Settings;

/// The model's configuration.
pub const CONFIG: &str = "config.json";
/// The weights, the one format minigpt reads.
pub const WEIGHTS: &str = "model.safetensors";
const TOKENIZER_JSON: &str = "tokenizer.json";
const VOCAB: &str = "vocab.json";
const MERGES: &str = "merges.txt";
/// What the repository's file list is called in messages.
const LISTING: &str = "the repository's file list";

/// A repository's files in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The snapshot folder: `config.json`, `model.safetensors` and the tokenizer files.
    pub dir: PathBuf,
    /// The commit the files come from.
    pub commit: String,
    /// Files downloaded by this call (empty when all came from the cache).
    pub downloaded: Vec<String>,
}

/// The files of `repo` that minigpt needs, from the cache or downloaded into it.
///
/// From the cache without any request when `config.json` and `model.safetensors` are there
/// (downloads fetch the weights last, so the tokenizer files came before them). Otherwise
/// (unless offline) the repository's file list is read at `repo`'s revision, and every file is
/// downloaded at that list's commit.
pub fn fetch(repo: &RepoId, settings: &Settings) -> Result<Fetched, HubError> {
    let cache = Cache::new(settings.cache.clone());
    let named = Repo::with_revision(
        repo.id.clone(),
        RepoType::Model,
        repo.revision_or_main().to_string(),
    );
    let cached = cache.repo(named.clone());
    match (cached.get(CONFIG), cached.get(WEIGHTS)) {
        (Some(config), Some(_)) => {
            let dir = parent(&config);
            return Ok(Fetched {
                commit: commit_of(&dir),
                dir,
                downloaded: vec![],
            });
        }
        (config, _) if settings.offline => {
            let file = if config.is_none() { CONFIG } else { WEIGHTS };
            return Err(HubError::OfflineMiss {
                repo: repo.to_string(),
                file: file.into(),
                cache: settings.cache.clone(),
            });
        }
        _ => {}
    }
    let ctx = Ctx { repo, settings };
    let api = ApiBuilder::from_cache(cache.clone())
        .with_endpoint(settings.endpoint.clone())
        .with_token(settings.token.clone())
        .with_progress(false)
        .with_retries(settings.retries)
        .build()
        .map_err(|e| ctx.error(e, "the client"))?;
    let info = api
        .repo(named.clone())
        .info()
        .map_err(|e| ctx.error(e, LISTING))?;
    let files: BTreeSet<&str> = info.siblings.iter().map(|s| s.rfilename.as_str()).collect();
    let unsupported = |reason: String| HubError::Unsupported {
        repo: repo.to_string(),
        reason,
    };
    if !files.contains(WEIGHTS) {
        let reason = if files.contains("pytorch_model.bin") {
            "has only pytorch_model.bin, and minigpt reads model.safetensors: use a revision with \
             one (the Hub's conversion bot opens such pull requests), or convert it with \
             transformers' save_pretrained(dir, safe_serialization=True) and pass the folder"
                .to_string()
        } else if files.iter().any(|f| f.ends_with(".safetensors")) {
            "holds its weights in several .safetensors shards; minigpt reads one model.safetensors"
                .to_string()
        } else {
            "has no model.safetensors: it is not a model minigpt can run".to_string()
        };
        return Err(unsupported(reason));
    }
    if !files.contains(CONFIG) {
        return Err(unsupported("has no config.json".into()));
    }
    let pinned = Repo::with_revision(repo.id.clone(), RepoType::Model, info.sha.clone());
    let mut wanted = vec![CONFIG];
    if files.contains(TOKENIZER_JSON) {
        wanted.push(TOKENIZER_JSON);
    } else if files.contains(VOCAB) && files.contains(MERGES) {
        wanted.extend([VOCAB, MERGES]);
    }
    wanted.push(WEIGHTS);
    let mut downloaded = vec![];
    let mut dir = None;
    for file in wanted {
        let (path, fresh) = ctx.file(&api, &cache, &pinned, file)?;
        if fresh {
            downloaded.push(file.to_string());
        }
        if file == CONFIG {
            check_architecture(&path).map_err(unsupported)?;
            dir = Some(parent(&path));
        }
    }
    // The name asked for now points at this commit, so the next lookup needs no network.
    cache
        .repo(named)
        .create_ref(&info.sha)
        .map_err(|e| ctx.cache_error(&settings.cache, e))?;
    Ok(Fetched {
        dir: dir.unwrap_or_else(|| settings.cache.clone()),
        commit: info.sha,
        downloaded,
    })
}

/// A GPT-2 configuration, or why not.
fn check_architecture(config: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(config).map_err(|e| format!("config.json: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("config.json is not JSON: {e}"))?;
    match v.get("model_type").and_then(|t| t.as_str()) {
        Some("gpt2") => Ok(()),
        other => Err(format!(
            "is a {} model (model_type in config.json); minigpt runs the GPT-2 architecture \
             (gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2 and other GPT2LMHeadModel \
             checkpoints)",
            other.unwrap_or("model without a model_type")
        )),
    }
}

/// The folder holding `file`.
fn parent(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The commit of a snapshot folder (its name).
fn commit_of(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One fetch's repository and settings, for messages.
struct Ctx<'a> {
    repo: &'a RepoId,
    settings: &'a Settings,
}

impl Ctx<'_> {
    /// `file` at the pinned commit: from the cache, or downloaded and checked (`true`).
    fn file(
        &self,
        api: &Api,
        cache: &Cache,
        pinned: &Repo,
        file: &str,
    ) -> Result<(PathBuf, bool), HubError> {
        if let Some(path) = cache.repo(pinned.clone()).get(file) {
            return Ok((path, false));
        }
        let label = format!("{}/{file}", self.repo.id);
        let (tracker, expected) = Tracker::new(label, self.settings.progress_bar);
        let pointer = api
            .repo(pinned.clone())
            .download_with_progress(file, tracker)
            .map_err(|e| self.error(e, file))?;
        self.verify(&pointer, file, expected.get())?;
        Ok((pointer, true))
    }

    /// Checks a downloaded file's size against the announced one and, when its blob is named
    /// by a sha256 (the Hub's LFS files), its contents; removes it when either fails.
    fn verify(&self, pointer: &Path, file: &str, expected: Option<u64>) -> Result<(), HubError> {
        let blob = std::fs::canonicalize(pointer).map_err(|e| self.cache_error(pointer, e))?;
        let corrupt = |reason: String| {
            let _ = std::fs::remove_file(pointer);
            let _ = std::fs::remove_file(&blob);
            HubError::Corrupt {
                repo: self.repo.to_string(),
                file: file.to_string(),
                reason,
            }
        };
        let size = std::fs::metadata(&blob)
            .map_err(|e| self.cache_error(&blob, e))?
            .len();
        if let Some(want) = expected
            && want != size
        {
            return Err(corrupt(format!(
                "{size} bytes where the server announced {want}"
            )));
        }
        let name = commit_of(&blob);
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let got = sha256_file(&blob).map_err(|e| self.cache_error(&blob, e))?;
            if !got.eq_ignore_ascii_case(&name) {
                return Err(corrupt(format!("sha256 {got} where the Hub gives {name}")));
            }
        }
        Ok(())
    }

    /// An `hf-hub` error as a [`HubError`]; `what` is the file or request.
    fn error(&self, e: ApiError, what: &str) -> HubError {
        let repo = self.repo.to_string();
        let endpoint = self.settings.endpoint.clone();
        let network = |reason: String| HubError::Network {
            repo: repo.clone(),
            endpoint: endpoint.clone(),
            what: what.to_string(),
            reason,
        };
        match e {
            ApiError::TooManyRetries(inner) => self.error(*inner, what),
            ApiError::RequestError(e) => match *e {
                ureq::Error::Status(status, response) => {
                    let code = response.header("x-error-code").unwrap_or("").to_string();
                    match (status, code.as_str()) {
                        (_, "RevisionNotFound") => HubError::RevisionNotFound {
                            repo: self.repo.id.clone(),
                            revision: self.repo.revision_or_main().to_string(),
                            endpoint,
                        },
                        (_, "RepoNotFound") => HubError::NotFound { repo, endpoint },
                        (404, _) if what == LISTING => HubError::NotFound { repo, endpoint },
                        (401 | 403, _) => HubError::Unauthorized {
                            repo,
                            endpoint,
                            status,
                        },
                        _ => HubError::Http {
                            repo,
                            endpoint,
                            status,
                            what: what.to_string(),
                        },
                    }
                }
                ureq::Error::Transport(t) => network(t.to_string()),
            },
            ApiError::IoError(io) => match io.kind() {
                std::io::ErrorKind::PermissionDenied
                | std::io::ErrorKind::ReadOnlyFilesystem
                | std::io::ErrorKind::StorageFull => self.cache_error(&self.settings.cache, io),
                _ => network(io.to_string()),
            },
            ApiError::LockAcquisition(path) => HubError::Cache {
                repo,
                path,
                reason: "another process is downloading this file; wait for it, or remove the \
                         .lock file if none is"
                    .into(),
            },
            ApiError::InvalidResume => HubError::Corrupt {
                repo,
                file: what.to_string(),
                reason: "the partial download is longer than the file; remove its .part \
                         file in the cache"
                    .into(),
            },
            other => network(other.to_string()),
        }
    }

    fn cache_error(&self, path: &Path, e: impl std::fmt::Display) -> HubError {
        HubError::Cache {
            repo: self.repo.to_string(),
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }
}

/// The lowercase hex sha256 of a file's contents.
fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
