//! Training on a tiny text the test writes: the loss falls and the outputs are complete; bad
//! configs are clear errors. (Exact resume is tested through the CLI, one process per run:
//! Burn's random generator is process-wide.)

use std::path::PathBuf;

use minigpt_train::{TrainConfig, train};

/// A folder with a corpus, removed when the guard drops, and a config training into it.
fn setup(
    name: &str,
    max_steps: usize,
    checkpoint_interval: usize,
) -> (tempfile::TempDir, PathBuf, TrainConfig) {
    let guard = tempfile::Builder::new()
        .prefix(&format!("minigpt-train-{name}-"))
        .tempdir()
        .unwrap();
    let dir = guard.path().to_path_buf();
    let text = "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east.\n\n\
                JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?\n\n"
        .repeat(20);
    std::fs::write(dir.join("corpus.txt"), text).unwrap();
    let toml = format!(
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
        max_steps = {max_steps}
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
        checkpoint_interval = {checkpoint_interval}
        "#
    );
    let path = dir.join("train.toml");
    std::fs::write(&path, toml).unwrap();
    let cfg = TrainConfig::load(&path).unwrap();
    (guard, dir, cfg)
}

#[test]
fn loss_falls_well_below_a_uniform_guess() {
    let (_guard, dir, cfg) = setup("falls", 60, 0);
    let s = train(&cfg, false, false, |_| true).unwrap();
    let vocab = 33f64; // distinct characters of the text above
    let first = s.train_losses[0];
    let last = s.val_losses.last().unwrap().1;
    assert!(
        (first - vocab.ln()).abs() < 0.5,
        "starts near ln V: {first}"
    );
    assert!(
        last < 0.6 * vocab.ln(),
        "held-out loss {last} after 60 steps"
    );
    // The model directory is complete and loads for inference with the character vocabulary.
    for f in [
        "config.json",
        "model.safetensors",
        "char_vocab.json",
        "training_log.csv",
        "loss_curve.svg",
    ] {
        assert!(dir.join("out").join(f).is_file(), "{f}");
    }
    let log = std::fs::read_to_string(dir.join("out/training_log.csv")).unwrap();
    assert_eq!(log.lines().count(), 61);
    // The saved model loads back with the trained model's logits, bit for bit.
    let device = minigpt_model::parse_device("flex").unwrap();
    let gcfg = minigpt_train::trainer::model_config(&cfg, 33);
    let trained = minigpt_model::GptLm::new(s.model, gcfg, device.clone());
    let loaded = minigpt_model::GptLm::load(&dir.join("out"), &device).unwrap();
    let ids: Vec<u32> = (0..16).map(|i| (i * 7 % 33) as u32).collect();
    assert_eq!(trained.sequence_logits(&ids), loaded.sequence_logits(&ids));
    assert!(log.starts_with("step,train_loss,val_loss,lr\n1,"));
}

#[test]
fn bad_configs_are_clear_errors() {
    let (_guard, dir, _) = setup("bad", 10, 0);
    let path = dir.join("train.toml");
    let base = std::fs::read_to_string(&path).unwrap();
    let check = |text: String, needle: &str| {
        std::fs::write(&path, text).unwrap();
        let e = match TrainConfig::load(&path) {
            Err(e) => e.to_string(),
            Ok(cfg) => train(&cfg, false, false, |_| true)
                .expect_err("must fail")
                .to_string(),
        };
        assert!(e.contains(needle), "{e:?} lacks {needle:?}");
    };
    check(base.replace("n_embd = 32", "n_embd = 33"), "divisible");
    check(
        base.replace("corpus.txt", "missing.txt"),
        "cannot read the corpus",
    );
    check(
        base.replace("block_size = 16", "block_size = 4000"),
        "too short",
    );
    check(
        base.replace("dropout = 0.1", "dropout = 0.1\nactivation = \"relu\""),
        "model.activation \"relu\" is not supported (use one of gelu_new, gelu_pytorch_tanh, gelu)",
    );
    check(
        base.replace("seed = 7", "seed = 7\nsede = 1"),
        "unknown field `sede`",
    );
    std::fs::write(dir.join("out"), "a file where the output folder should be").unwrap();
    check(base.clone(), "output folder");
}
