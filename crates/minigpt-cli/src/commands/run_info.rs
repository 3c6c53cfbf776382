//! What `run.json` records about the process that wrote a run: versions, device, threads,
//! command, and times (UTC, RFC 3339).

use serde_json::json;

/// The `run.json` fields about this process.
pub fn meta(device: &str, started: &str) -> serde_json::Value {
    json!({
        "minigpt_version": env!("CARGO_PKG_VERSION"),
        "burn_version": "0.22.1",
        "git_commit": option_env!("MINIGPT_GIT_COMMIT").unwrap_or("unknown"),
        "device": device,
        "threads": minigpt_native::threads(),
        "started": started,
        "command": std::env::args().collect::<Vec<_>>().join(" "),
    })
}
