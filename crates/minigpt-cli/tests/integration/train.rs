//! `minigpt train` end to end, one process per run (Burn's random generator is process-wide):
//! a run stopped and resumed from its checkpoint reproduces the uninterrupted run's losses
//! exactly, and the saved model directory loads back for generation with identical logits.

use std::path::Path;

use crate::util::{command, minigpt_ok, temp_dir};

/// A folder with a corpus and a training config, removed when the guard drops.
fn setup(name: &str) -> tempfile::TempDir {
    let guard = temp_dir(&format!("train-{name}"));
    let dir = guard.path();
    let text = "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east.\n\n\
                JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?\n\n"
        .repeat(20);
    std::fs::write(dir.join("corpus.txt"), text).unwrap();
    std::fs::write(
        dir.join("train.toml"),
        r#"
        [data]
        path = "corpus.txt"
        [model]
        n_layer = 2
        n_head = 2
        n_embd = 32
        block_size = 16
        dropout = 0.1
        [train]
        batch_size = 8
        max_steps = 30
        learning_rate = 0.01
        min_lr = 0.001
        warmup_steps = 5
        weight_decay = 0.1
        grad_clip = 1.0
        eval_interval = 10
        eval_batches = 4
        seed = 7
        [output]
        dir = "out"
        checkpoint_interval = 10
        "#,
    )
    .unwrap();
    guard
}

fn train(dir: &Path, extra: &[&str]) {
    let cfg = dir.join("train.toml").display().to_string();
    let mut args = vec!["train", "--config", cfg.as_str()];
    args.extend_from_slice(extra);
    minigpt_ok(&args);
}

#[test]
fn stopped_and_resumed_run_equals_the_uninterrupted_one() {
    let whole_guard = setup("whole");
    let whole = whole_guard.path().to_path_buf();
    train(&whole, &[]);
    let parts_guard = setup("parts");
    let parts = parts_guard.path().to_path_buf();
    // Stop mid-interval (after step 13): the checkpoint is written at the stop.
    train(&parts, &["--stop-after", "13"]);
    let log = std::fs::read_to_string(parts.join("out/training_log.csv")).unwrap();
    assert_eq!(log.lines().count(), 14, "{log}");
    train(&parts, &["--resume"]);
    let a = std::fs::read_to_string(whole.join("out/training_log.csv")).unwrap();
    let b = std::fs::read_to_string(parts.join("out/training_log.csv")).unwrap();
    assert_eq!(a.lines().count(), 31);
    assert_eq!(a, b, "the resumed run's losses differ");
    assert_eq!(
        std::fs::read(whole.join("out/model.safetensors")).unwrap(),
        std::fs::read(parts.join("out/model.safetensors")).unwrap()
    );

    // The model directory generates with its character vocabulary, and scoring it gives the
    // same log-probabilities as its checkpoint copy (saved separately, loaded separately).
    for d in [whole.join("out"), whole.join("out/checkpoint")] {
        let m = d.display().to_string();
        let out = command(&[
            "score",
            "--model",
            &m,
            "--text",
            "ROMEO:\nBut soft",
            "--json",
        ])
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(d.join("score.json"), &out.stdout).unwrap();
    }
    assert_eq!(
        std::fs::read(whole.join("out/score.json")).unwrap(),
        std::fs::read(whole.join("out/checkpoint/score.json")).unwrap()
    );
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_exits_130() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir_guard = setup("sigint");
    let dir = dir_guard.path().to_path_buf();
    let cfg_path = dir.join("train.toml");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(
        &cfg_path,
        cfg.replace("max_steps = 30", "max_steps = 1000000"),
    )
    .unwrap();
    let mut child = command(&["train", "--config", &cfg_path.display().to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Without a terminal, every evaluation prints a line: interrupt after the first.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("step 10/1000000 |"), "{first}");
    crate::util::ctrl_c(&child);
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    let last = rest.last().unwrap();
    assert!(
        last.starts_with("stopped after step ") && last.ends_with("continue with --resume"),
        "{last}"
    );
    let step: usize = last["stopped after step ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((10..1_000_000).contains(&step), "{last}");
    let state = std::fs::read_to_string(dir.join("out/checkpoint/state.json")).unwrap();
    assert!(state.starts_with(&format!("{{\"step\":{step},")), "{state}");
    let log = std::fs::read_to_string(dir.join("out/training_log.csv")).unwrap();
    assert_eq!(log.lines().count(), step + 1);
}

/// A folder's training run is not lost or mixed by accident: --resume without a checkpoint,
/// a new run over a finished one without --force, and a resume whose shapes or corpus changed
/// each exit 2 naming what to do; --force starts over.
#[test]
fn training_runs_are_not_overwritten_or_resumed_under_another_config() {
    let guard = setup("lineage");
    let dir = guard.path().to_path_buf();
    let cfg_path = dir.join("train.toml");
    let cfg = cfg_path.display().to_string();
    let refused = |args: &[&str], needles: &[&str]| {
        let out = command(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        for n in needles {
            assert!(err.contains(n), "{err:?} lacks {n:?}");
        }
    };
    refused(
        &["train", "--config", &cfg, "--resume"],
        &["no checkpoint", "drop --resume"],
    );
    assert!(
        !dir.join("out").exists(),
        "a refused resume created the output folder"
    );
    train(&dir, &["--stop-after", "12"]);
    refused(
        &["train", "--config", &cfg],
        &["already holds", "--resume", "--force"],
    );
    // Another width, then another corpus (so another vocabulary): the resume is refused.
    let base = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(&cfg_path, base.replace("n_embd = 32", "n_embd = 64")).unwrap();
    refused(&["train", "--config", &cfg, "--resume"], &["model.n_embd"]);
    std::fs::write(&cfg_path, &base).unwrap();
    let corpus = std::fs::read_to_string(dir.join("corpus.txt")).unwrap();
    std::fs::write(dir.join("corpus.txt"), corpus.replace("Romeo", "Tybalt")).unwrap();
    refused(
        &["train", "--config", &cfg, "--resume"],
        &["data.path (its content)", "the corpus's vocabulary"],
    );
    // --force starts over on the new corpus and finishes; a resume of the same config then
    // finds nothing left to do but is allowed.
    train(&dir, &["--force"]);
    let log = std::fs::read_to_string(dir.join("out/training_log.csv")).unwrap();
    assert_eq!(log.lines().count(), 31);
    train(&dir, &["--resume"]);
}

#[test]
fn bad_training_inputs_exit_2_with_one_line() {
    let dir_guard = setup("bad");
    let dir = dir_guard.path().to_path_buf();
    let cfg_path = dir.join("train.toml");
    let base = std::fs::read_to_string(&cfg_path).unwrap();
    let run = |text: &str, needle: &str| {
        std::fs::write(&cfg_path, text).unwrap();
        let out = command(&["train", "--config", &cfg_path.display().to_string()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    };
    run(&base.replace("corpus.txt", "nope.txt"), "nope.txt");
    run(&base.replace("n_embd = 32", "n_embd = 31"), "divisible");
    run(
        &base.replace("block_size = 16", "block_size = 5000"),
        "too short",
    );
    run(
        &base.replace("n_layer = 2", "n_layer = 2\nn_layers = 3"),
        "n_layers",
    );
    // Shapes whose training state would not fit in memory: refused before any allocation.
    run(
        &base.replace("n_embd = 32", "n_embd = 1000000"),
        "lower train.batch_size, model.n_embd",
    );
    run(
        &base.replace("batch_size = 8", "batch_size = 100000000"),
        "lower train.batch_size, model.n_embd",
    );
    // A learning rate that makes the loss diverge stops the run naming the step.
    run(
        &base.replace("learning_rate = 0.01", "learning_rate = 1e30"),
        "training diverged at step",
    );
    // --require-gpu with training on the CPU: refused before the output folder exists.
    let _ = std::fs::remove_dir_all(dir.join("out"));
    std::fs::write(&cfg_path, &base).unwrap();
    let out = command(&[
        "train",
        "--config",
        &cfg_path.display().to_string(),
        "--require-gpu",
    ])
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("train.device: --require-gpu"), "{err}");
    assert!(!dir.join("out").exists(), "nothing written");
    std::fs::write(dir.join("out"), "a file, not a folder").unwrap();
    run(&base, "output folder");
    let out = command(&["train", "--config", "/nonexistent/train.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/train.toml"));
}
