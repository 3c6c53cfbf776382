//! What every end-to-end test uses: the repository's paths, the binary, temp folders.

use std::path::{Path, PathBuf};
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

/// An eval of the tiny character model against `baseline`: 2 prompts, greedy and top-p, 2
/// samples of 24 characters, and half of a held-out text it writes into `dir`.
pub fn tiny_eval_config(dir: &Path, baseline: &Path) -> String {
    std::fs::write(
        dir.join("heldout.txt"),
        "to be, or not to be: that is it.\n".repeat(30),
    )
    .unwrap();
    format!(
        r#"
[experiment]
name = "e"
seed = 3
samples = 2
max_new_chars = 24
[candidate]
path = "{}"
[baseline]
path = "{}"
[prompts]
items = ["TORIA:", "to be"]
[sweep]
temperatures = [1.0]
strategies = ["greedy", "top_p_0.9"]
strategies_dir = "{}"
[heldout]
file = "heldout.txt"
fraction = 0.5
"#,
        fixtures().join("tiny-char-gelu").display(),
        baseline.display(),
        root().join("configs/decode").display()
    )
}

/// False (with a note) when chromium is missing and CI did not ask for it (`.ci/run` installs
/// chromium and sets `MINIGPT_REQUIRE_BROWSER=1`).
pub fn browser_here() -> bool {
    if std::env::var_os("MINIGPT_REQUIRE_BROWSER").is_some() {
        return true;
    }
    let found = Path::new("/usr/bin/chromium").exists();
    if !found {
        eprintln!(
            "no chromium here: the browser checks are skipped (apt-get install chromium, or set \
             MINIGPT_REQUIRE_BROWSER=1 to make a missing browser fail)"
        );
    }
    found
}

/// Runs `python scripts/SCRIPT ARGS...` (a check script that prints one JSON object) and
/// returns what it printed; a failing script fails the test with its exit code and stderr.
pub fn script_json(
    python: impl AsRef<std::ffi::OsStr>,
    script: &str,
    args: &[&std::ffi::OsStr],
) -> serde_json::Value {
    let out = Command::new(python)
        .arg(root().join("scripts").join(script))
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{script} failed (exit {:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{script} printed no JSON object: {e}"))
}
