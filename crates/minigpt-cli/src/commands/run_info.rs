//! What `run.json` records about the process that wrote a run: versions, device, threads,
//! command, and times (UTC, RFC 3339).

use std::time::SystemTime;

use serde_json::json;

/// UTC time now as RFC 3339 to the second (`2026-11-27T19:05:00Z`).
pub fn utc_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The `run.json` fields about this process.
pub fn meta(device: &str, started: &str) -> serde_json::Value {
    json!({
        "minigpt_version": env!("CARGO_PKG_VERSION"),
        "burn_version": "0.22.1",
        "git_commit": option_env!("MINIGPT_GIT_COMMIT").unwrap_or("unknown"),
        "device": device,
        "threads": minigpt_model::native::threads(),
        "started": started,
        "command": std::env::args().collect::<Vec<_>>().join(" "),
    })
}
