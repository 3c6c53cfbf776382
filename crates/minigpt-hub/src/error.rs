//! [`HubError`]: why a model could not be had from the Hub, in one line that names the
//! repository and what to do.

use std::path::PathBuf;

/// A failed resolve or download.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// No such repository (or no access to it).
    #[error(
        "{repo}: no such model repository on {endpoint} (nor a folder of that name here): check the id, or set HF_TOKEN for a private or gated repository"
    )]
    NotFound {
        /// The repository.
        repo: String,
        /// The server asked.
        endpoint: String,
    },
    /// The repository exists, the revision does not.
    #[error(
        "{repo}: revision {revision} not found on {endpoint}: name a branch, tag or commit of the repository"
    )]
    RevisionNotFound {
        /// The repository.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The server asked.
        endpoint: String,
    },
    /// 401 or 403.
    #[error(
        "{repo}: {endpoint} refused access ({status}): set HF_TOKEN to a token that may read it"
    )]
    Unauthorized {
        /// The repository.
        repo: String,
        /// The server asked.
        endpoint: String,
        /// The HTTP status.
        status: u16,
    },
    /// Another HTTP failure (a 5xx, say).
    #[error("{repo}: {endpoint} answered HTTP {status} for {what}: try again later")]
    Http {
        /// The repository.
        repo: String,
        /// The server asked.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// What was asked for.
        what: String,
    },
    /// The server could not be reached, or a transfer broke off.
    #[error(
        "{repo}: cannot download {what} from {endpoint} ({reason}): check the network and run the command again (a partial file resumes), or set HF_HUB_OFFLINE=1 to use only the cache"
    )]
    Network {
        /// The repository.
        repo: String,
        /// The server asked.
        endpoint: String,
        /// What was asked for.
        what: String,
        /// The transport's message.
        reason: String,
    },
    /// `HF_HUB_OFFLINE=1` and the cache lacks a file.
    #[error(
        "{repo}: {file} is not in the Hugging Face cache {cache} and HF_HUB_OFFLINE=1 forbids downloading: unset HF_HUB_OFFLINE, or run `minigpt download {repo}` where there is network"
    )]
    OfflineMiss {
        /// The repository.
        repo: String,
        /// The missing file.
        file: String,
        /// The cache searched.
        cache: PathBuf,
    },
    /// The repository holds no weights minigpt reads.
    #[error("{repo}: {reason}")]
    Unsupported {
        /// The repository.
        repo: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A downloaded file failed its check and was removed.
    #[error(
        "{repo}: the download of {file} is corrupt ({reason}) and was removed: run the command again"
    )]
    Corrupt {
        /// The repository.
        repo: String,
        /// The file.
        file: String,
        /// Size or checksum.
        reason: String,
    },
    /// The cache could not be written or read.
    #[error(
        "{repo}: cannot use the Hugging Face cache at {path} ({reason}): set HF_HUB_CACHE to a writable folder"
    )]
    Cache {
        /// The repository.
        repo: String,
        /// The path involved.
        path: PathBuf,
        /// The system's message.
        reason: String,
    },
}
