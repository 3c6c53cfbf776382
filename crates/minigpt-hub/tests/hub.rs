//! `fetch` against a fake Hub on 127.0.0.1: first download, reuse from the cache with the
//! server gone, offline misses, missing repositories and revisions, server errors, a dropped
//! connection resumed by the next run, truncated and corrupted bodies, redirects of renamed
//! repositories, the token, and repositories minigpt cannot run.

use std::path::Path;

use minigpt_hub::fake::{FakeHub, Fault};
use minigpt_hub::{HubError, RepoId, Settings, fetch};

const CONFIG: &str = r#"{"model_type": "gpt2", "n_embd": 8}"#;

/// Bytes that differ everywhere (so a flipped or missing byte changes the sha256).
fn weights(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn repo_files(weights_len: usize) -> Vec<(String, Vec<u8>)> {
    vec![
        ("config.json".into(), CONFIG.as_bytes().to_vec()),
        ("tokenizer.json".into(), b"{\"model\": {}}".to_vec()),
        ("README.md".into(), b"# a model".to_vec()),
        ("model.safetensors".into(), weights(weights_len)),
    ]
}

fn settings(hub: &FakeHub, cache: &Path) -> Settings {
    let mut s = Settings::from_vars(|_| None);
    s.cache = cache.to_path_buf();
    s.endpoint = hub.endpoint();
    s.retries = 0;
    s
}

fn id(spec: &str) -> RepoId {
    RepoId::parse(spec).unwrap()
}

/// Files of the cache under a final name (not `.part`, hf-hub's partial download, nor `.lock`), relative.
fn final_files(cache: &Path) -> Vec<String> {
    let mut out = vec![];
    let mut stack = vec![cache.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(cache).unwrap().display().to_string();
                if !rel.ends_with(".part") && !rel.ends_with(".lock") {
                    out.push(rel);
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn downloads_once_then_serves_from_the_cache_with_the_server_gone() {
    let cache = tempfile::tempdir().unwrap();
    let hub = FakeHub::start();
    let sha = hub.add_repo("gpt2", repo_files(300_000));
    let s = settings(&hub, cache.path());
    let got = fetch(&id("gpt2"), &s).unwrap();
    assert_eq!(got.commit, sha);
    assert_eq!(
        got.downloaded,
        ["config.json", "tokenizer.json", "model.safetensors"]
    );
    assert_eq!(
        got.dir,
        cache.path().join(format!("models--gpt2/snapshots/{sha}"))
    );
    assert_eq!(
        std::fs::read(got.dir.join("model.safetensors")).unwrap(),
        weights(300_000)
    );
    assert_eq!(
        std::fs::read_to_string(got.dir.join("config.json")).unwrap(),
        CONFIG
    );
    assert!(
        !got.dir.join("README.md").exists(),
        "only the files minigpt needs"
    );
    // The layout huggingface_hub reads: refs/main names the commit, blobs by etag.
    let refs = std::fs::read_to_string(cache.path().join("models--gpt2/refs/main")).unwrap();
    assert_eq!(refs, sha);
    let blob = std::fs::canonicalize(got.dir.join("model.safetensors")).unwrap();
    assert_eq!(blob.parent().unwrap().file_name().unwrap(), "blobs");
    // No token: no Authorization header.
    let requests = hub.requests();
    assert!(
        requests
            .iter()
            .all(|r| !r.headers.contains_key("authorization"))
    );
    // The weights came through the content host with Range requests.
    assert!(requests.iter().any(|r| r.line.starts_with("GET /cdn/")
        && r.headers.get("range").map(String::as_str) == Some("bytes=0-")));

    drop(hub);
    let again = fetch(&id("gpt2"), &s).unwrap();
    assert_eq!((again.dir, again.downloaded), (got.dir, vec![]));
}

#[test]
fn offline_uses_only_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let hub = FakeHub::start();
    hub.add_repo("gpt2", repo_files(1000));
    let mut s = settings(&hub, cache.path());
    s.offline = true;
    let err = fetch(&id("gpt2"), &s).unwrap_err();
    assert!(matches!(err, HubError::OfflineMiss { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("HF_HUB_OFFLINE=1") && msg.contains("minigpt download gpt2"),
        "{msg}"
    );
    assert!(hub.requests().is_empty(), "offline sent requests");
    s.offline = false;
    fetch(&id("gpt2"), &s).unwrap();
    s.offline = true;
    let got = fetch(&id("gpt2"), &s).unwrap();
    assert!(got.downloaded.is_empty());
}

#[test]
fn missing_repositories_revisions_and_server_errors_are_named() {
    let cache = tempfile::tempdir().unwrap();
    let hub = FakeHub::start();
    let sha = hub.add_repo("gpt2", repo_files(1000));
    let s = settings(&hub, cache.path());
    let err = fetch(&id("nobody/nothing"), &s).unwrap_err();
    assert!(matches!(err, HubError::NotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("nobody/nothing: no such model repository on http://127.0.0.1:")
    );
    let err = fetch(&id("gpt2@v9"), &s).unwrap_err();
    assert!(matches!(err, HubError::RevisionNotFound { .. }), "{err}");
    assert!(err.to_string().contains("revision v9 not found"), "{err}");
    // A commit is a revision.
    let got = fetch(&id(&format!("gpt2@{sha}")), &s).unwrap();
    assert_eq!(got.commit, sha);
    hub.fault(Fault::Status(500));
    let err = fetch(&id("gpt2@main"), &s).unwrap_err();
    assert!(matches!(err, HubError::Http { status: 500, .. }), "{err}");
}

#[test]
fn a_dropped_connection_resumes_on_the_next_run() {
    let cache = tempfile::tempdir().unwrap();
    let hub = FakeHub::start();
    let sha = hub.add_repo("gpt2", repo_files(500_000));
    let s = settings(&hub, cache.path());
    hub.fault(Fault::DropAfter {
        file: "model.safetensors".into(),
        bytes: 200_000,
        times: 1,
    });
    let err = fetch(&id("gpt2"), &s).unwrap_err();
    assert!(matches!(err, HubError::Network { .. }), "{err}");
    assert!(err.to_string().contains("run the command again"), "{err}");
    let left = final_files(cache.path());
    let blobs = left.iter().filter(|f| f.contains("/blobs/")).count();
    assert!(
        blobs == 2 && !left.iter().any(|f| f.ends_with("model.safetensors")),
        "a partial file under its final name: {left:?}"
    );
    let got = fetch(&id("gpt2"), &s).unwrap();
    assert_eq!(got.commit, sha);
    assert_eq!(
        std::fs::read(got.dir.join("model.safetensors")).unwrap(),
        weights(500_000)
    );
    // The second download asked only for the rest.
    let ranges: Vec<String> = hub
        .requests()
        .iter()
        .filter(|r| r.line.starts_with("GET /cdn/"))
        .filter_map(|r| r.headers.get("range").cloned())
        .collect();
    assert!(ranges.iter().any(|r| r == "bytes=200000-"), "{ranges:?}");
}

#[test]
fn retries_resume_within_one_run() {
    let cache = tempfile::tempdir().unwrap();
    let hub = FakeHub::start();
    hub.add_repo("gpt2", repo_files(400_000));
    let mut s = settings(&hub, cache.path());
    s.retries = 2;
    hub.fault(Fault::DropAfter {
        file: "model.safetensors".into(),
        bytes: 100_000,
        times: 2,
    });
    let got = fetch(&id("gpt2"), &s).unwrap();
    assert_eq!(
        std::fs::read(got.dir.join("model.safetensors")).unwrap(),
        weights(400_000)
    );
}

#[test]
fn short_or_corrupt_bodies_leave_nothing_under_a_final_name() {
    for fault in ["short", "wrong"] {
        let cache = tempfile::tempdir().unwrap();
        let hub = FakeHub::start();
        hub.add_repo("gpt2", repo_files(100_000));
        let file = "model.safetensors".to_string();
        hub.fault(if fault == "short" {
            Fault::ShortBody { file }
        } else {
            Fault::WrongBytes { file }
        });
        let s = settings(&hub, cache.path());
        let err = fetch(&id("gpt2"), &s).unwrap_err();
        assert!(matches!(err, HubError::Corrupt { .. }), "{fault}: {err}");
        // config.json and tokenizer.json made it; the weights neither as a snapshot file nor
        // as a blob.
        let left = final_files(cache.path());
        let blobs = left.iter().filter(|f| f.contains("/blobs/")).count();
        assert!(
            blobs == 2 && !left.iter().any(|f| f.ends_with("model.safetensors")),
            "{fault}: {left:?}"
        );
        assert!(!cache.path().join("models--gpt2/refs/main").exists());
        hub.heal();
        let got = fetch(&id("gpt2"), &s).unwrap();
        assert_eq!(
            std::fs::read(got.dir.join("model.safetensors")).unwrap(),
            weights(100_000)
        );
    }
}

#[test]
fn renamed_repositories_redirect_and_the_token_is_sent_when_set() {
    let cache = tempfile::tempdir().unwrap();
    let hub = FakeHub::start();
    hub.add_repo("openai-community/gpt2", repo_files(5000));
    hub.alias("gpt2", "openai-community/gpt2");
    let mut s = settings(&hub, cache.path());
    s.token = Some("hf_secret".into());
    let got = fetch(&id("gpt2"), &s).unwrap();
    assert_eq!(
        std::fs::read(got.dir.join("model.safetensors")).unwrap(),
        weights(5000)
    );
    let requests = hub.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.line.starts_with("GET /openai-community/gpt2/resolve/"))
    );
    for r in requests.iter().filter(|r| !r.line.starts_with("GET /cdn/")) {
        assert_eq!(
            r.headers.get("authorization").map(String::as_str),
            Some("Bearer hf_secret"),
            "{}",
            r.line
        );
    }
}

#[test]
fn repositories_minigpt_cannot_run_are_refused_before_their_weights() {
    let cache = tempfile::tempdir().unwrap();
    let hub = FakeHub::start();
    hub.add_repo(
        "old/bin-only",
        vec![
            ("config.json".into(), CONFIG.as_bytes().to_vec()),
            ("pytorch_model.bin".into(), weights(1000)),
        ],
    );
    hub.add_repo(
        "meta/llama",
        vec![
            ("config.json".into(), br#"{"model_type": "llama"}"#.to_vec()),
            ("model.safetensors".into(), weights(1000)),
        ],
    );
    let s = settings(&hub, cache.path());
    let err = fetch(&id("old/bin-only"), &s).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("old/bin-only: has only pytorch_model.bin"),
        "{err}"
    );
    let err = fetch(&id("meta/llama"), &s).unwrap_err();
    assert!(
        err.to_string().starts_with("meta/llama: is a llama model"),
        "{err}"
    );
    assert!(
        !hub.requests()
            .iter()
            .any(|r| r.line.contains("model.safetensors")
                || r.line.contains("pytorch_model.bin")
                || r.line.starts_with("GET /cdn/")),
        "weights were requested"
    );
}
