//! What every end-to-end test uses: the repository's paths, the binary, temp folders.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/fixtures`.
pub fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

/// The binary with `args`, not yet run, keeping packed weights in this test process's own
/// cache folder (under the system temp dir, not the user's `~/.cache`).
pub fn command(args: &[&str]) -> Command {
    static CACHE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        std::env::temp_dir().join(format!("minigpt-test-cache-{}", std::process::id()))
    });
    let mut c = Command::new(env!("CARGO_BIN_EXE_minigpt"));
    c.args(args).env("MINIGPT_CACHE_DIR", cache);
    c
}

/// Runs the binary with `args`.
pub fn minigpt(args: &[&str]) -> Output {
    command(args).output().expect("the binary runs")
}

/// Runs the binary with `args` and checks that it succeeded.
pub fn minigpt_ok(args: &[&str]) -> Output {
    let out = minigpt(args);
    assert!(
        out.status.success(),
        "{args:?}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The JSON object a successful run printed.
pub fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// A fresh folder, removed when the guard drops (also when the test fails).
pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("minigpt-test-{name}-"))
        .tempdir()
        .unwrap()
}

/// Sends Ctrl-C's signal (SIGINT) to a child, as the shell does (through kill(1): no unsafe
/// code in the tests).
pub fn ctrl_c(child: &std::process::Child) {
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}
