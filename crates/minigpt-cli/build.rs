//! Records the git commit the binary was built from (for `run.json`), or nothing outside a
//! git checkout.

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let git = root.join(".git");
    // Only paths that exist: a missing one would rerun this script (and rebuild the crate)
    // on every build.
    println!("cargo:rerun-if-changed=build.rs");
    for p in [git.join("HEAD"), git.join("refs"), git.join("packed-refs")] {
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(c) = commit {
        println!("cargo:rustc-env=MINIGPT_GIT_COMMIT={c}");
    }
}
