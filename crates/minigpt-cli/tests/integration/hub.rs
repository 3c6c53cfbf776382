//! Models named by Hugging Face repo id, served by a fake Hub on 127.0.0.1 (`HF_ENDPOINT`)
//! into a temporary cache (`HF_HUB_CACHE`): `download`, `generate --model gpt2` giving what the
//! same files give from a folder, reuse with the server gone, offline misses, missing
//! repositories, server errors, and `eval` with `gpt2` as its baseline.

use std::path::Path;
use std::process::{Command, Output};

use minigpt_hub::fake::{FakeHub, Fault};

use crate::util::{command, fixtures, minigpt_ok, temp_dir};

/// The tiny GPT-2 fixture (GPT-2's vocabulary, random weights) as a Hub repository.
fn serve_tiny_gpt2(hub: &FakeHub, id: &str) -> String {
    let dir = fixtures().join("tiny-gpt2");
    let file = |n: &str| (n.to_string(), std::fs::read(dir.join(n)).unwrap());
    hub.add_repo(id, vec![file("config.json"), file("model.safetensors")])
}

/// The binary with the Hub settings pointing at `hub` (or at a closed port) and `cache`.
fn with_hub(args: &[&str], endpoint: &str, cache: &Path) -> Command {
    let mut c = command(args);
    c.env("HF_ENDPOINT", endpoint)
        .env("HF_HUB_CACHE", cache)
        .env("HF_HOME", cache.join("home"))
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE");
    c
}

fn run(c: &mut Command) -> Output {
    c.output().expect("the binary runs")
}

/// `minigpt eval --config cfg --out out` against `hub`, which must succeed.
fn eval_ok(cfg: &Path, out: &Path, hub: &FakeHub, cache: &Path) {
    let args = [
        "eval",
        "--config",
        &cfg.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]
    .map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&mut with_hub(&args, &hub.endpoint(), cache));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Exit 2 with one line on stderr containing every needle, and nothing on stdout.
fn fails_with(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());
    for n in needles {
        assert!(err.contains(n), "{err:?} lacks {n:?}");
    }
}

#[test]
fn download_then_generate_by_repo_id_as_from_the_folder() {
    let cache = temp_dir("hub-cache");
    let hub = FakeHub::start();
    let sha = serve_tiny_gpt2(&hub, "gpt2");
    let out = run(&mut with_hub(
        &["download", "gpt2"],
        &hub.endpoint(),
        cache.path(),
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        Path::new(dir.trim()),
        cache.path().join(format!("models--gpt2/snapshots/{sha}"))
    );
    assert_eq!(
        std::fs::read(Path::new(dir.trim()).join("model.safetensors")).unwrap(),
        std::fs::read(fixtures().join("tiny-gpt2/model.safetensors")).unwrap()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("downloading gpt2/model.safetensors"), "{err}");

    // With the server gone, the cache serves; the text is the folder's, token for token.
    drop(hub);
    let args = |model: &str| {
        vec![
            "generate".to_string(),
            "--model".into(),
            model.into(),
            "--prompt".into(),
            "The meaning of life is".into(),
            "--max-new-tokens".into(),
            "12".into(),
            "--greedy".into(),
            "--json".into(),
        ]
    };
    let by_id = args("gpt2");
    let by_id: Vec<&str> = by_id.iter().map(String::as_str).collect();
    let gen_hub = run(&mut with_hub(&by_id, "http://127.0.0.1:9", cache.path()));
    assert!(
        gen_hub.status.success(),
        "{}",
        String::from_utf8_lossy(&gen_hub.stderr)
    );
    let folder = fixtures().join("tiny-gpt2").display().to_string();
    let by_dir = args(&folder);
    let by_dir: Vec<&str> = by_dir.iter().map(String::as_str).collect();
    let gen_dir = minigpt_ok(&by_dir);
    let ids = |o: &Output| {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["tokens"].clone()
    };
    assert_eq!(ids(&gen_hub), ids(&gen_dir));
    assert!(ids(&gen_hub).as_array().is_some_and(|a| a.len() == 12));
}

#[test]
fn hub_failures_exit_2_with_one_line() {
    let cache = temp_dir("hub-fail");
    let hub = FakeHub::start();
    serve_tiny_gpt2(&hub, "gpt2");
    let endpoint = hub.endpoint();
    let generate = |model: &str| {
        vec![
            "generate",
            "--model",
            model,
            "--prompt",
            "Hi",
            "--max-new-tokens",
            "2",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let go = |args: Vec<String>, c: &mut dyn FnMut(&mut Command)| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = with_hub(&args, &endpoint, cache.path());
        c(&mut cmd);
        run(&mut cmd)
    };
    // A repository that is not there.
    let out = go(generate("nobody/nothing"), &mut |_| {});
    fails_with(&out, &["nobody/nothing", "no such model repository"]);
    // Offline, and not in the cache.
    let out = go(generate("gpt2"), &mut |c| {
        c.env("HF_HUB_OFFLINE", "1");
    });
    fails_with(&out, &["gpt2", "HF_HUB_OFFLINE=1", "minigpt download gpt2"]);
    // The server fails.
    hub.fault(Fault::Status(500));
    let out = go(generate("gpt2"), &mut |_| {});
    fails_with(&out, &["gpt2", "HTTP 500", "try again later"]);
    // No server at all.
    let out = run(&mut with_hub(
        &["download", "gpt2"],
        "http://127.0.0.1:9",
        cache.path(),
    ));
    fails_with(&out, &["gpt2", "cannot download", "HF_HUB_OFFLINE=1"]);
    // Not a repo id.
    let out = go(vec!["download".into(), "../x".into()], &mut |_| {});
    fails_with(&out, &["not a Hugging Face repo id"]);
}

#[test]
fn eval_runs_with_gpt2_named_by_repo_id() {
    let d = temp_dir("hub-eval");
    let cache = d.path().join("cache");
    let hub = FakeHub::start();
    serve_tiny_gpt2(&hub, "gpt2");
    std::fs::write(
        d.path().join("heldout.txt"),
        "to be, or not to be.\n".repeat(20),
    )
    .unwrap();
    let cfg = d.path().join("eval.toml");
    std::fs::write(
        &cfg,
        r#"
[experiment]
name = "e"
seed = 3
samples = 1
max_new_chars = 12
[baseline]
path = "gpt2"
[prompts]
items = ["ROMEO:", "to be"]
[sweep]
temperatures = [1.0]
strategies = ["greedy"]
[heldout]
file = "heldout.txt"
"#,
    )
    .unwrap();
    let out_dir = d.path().join("out");
    eval_ok(&cfg, &out_dir, &hub, &cache);
    let cmp = std::fs::read_to_string(out_dir.join("comparison.csv")).unwrap();
    let second = cmp.lines().nth(1).unwrap();
    assert!(
        second.starts_with("greedy,,minigpt-shakespeare,gpt2,"),
        "{cmp}"
    );
    assert!(out_dir.join("baseline/generations.csv").is_file());
}

/// The shipped `configs/eval-gpt2.toml`, unedited, on a clean cache: `gpt2` comes from the
/// (fake) Hub on first use, the held-out text from `data/`.
#[test]
fn the_shipped_eval_config_runs_unedited() {
    let d = temp_dir("hub-eval-shipped");
    let hub = FakeHub::start();
    serve_tiny_gpt2(&hub, "gpt2");
    let out_dir = d.path().join("out");
    let cfg = crate::util::root().join("configs/eval-gpt2.toml");
    eval_ok(&cfg, &out_dir, &hub, &d.path().join("cache"));
    let cmp = std::fs::read_to_string(out_dir.join("comparison.csv")).unwrap();
    // 5 strategies: greedy once, the 4 sampling ones at 4 temperatures.
    assert_eq!(cmp.lines().count(), 1 + 1 + 4 * 4, "{cmp}");
    assert!(
        cmp.lines()
            .skip(1)
            .all(|l| l.contains(",minigpt-shakespeare,gpt2,200,")),
        "{cmp}"
    );
    let bpb = std::fs::read_to_string(out_dir.join("bits_per_byte.csv")).unwrap();
    assert_eq!(bpb.lines().count(), 3, "{bpb}");
}
