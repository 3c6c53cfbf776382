//! The training loop.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer, OptimizerRecord};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use minigpt_model::{Gpt, GptConfig, load_weights, parse_device, to_safetensors};
use minigpt_tokenizer::{CHAR_VOCAB_FILE, Tokenizer};

use crate::config::{OptimConfig, TrainConfig};
use crate::data::{Corpus, batch};
use crate::error::TrainError;
use crate::optimizer::optimizer;

/// Reported after every step.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Steps done.
    pub step: usize,
    /// Steps in the run.
    pub max_steps: usize,
    /// This step's training loss (nats per token).
    pub train_loss: f64,
    /// Held-out loss, on evaluation steps.
    pub val_loss: Option<f64>,
    /// Learning rate of this step.
    pub lr: f64,
    /// Training tokens per second since the run (or resume) started.
    pub tokens_per_s: f64,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// True when the progress callback asked to stop before `max_steps` (a checkpoint was
    /// saved; `--resume` continues).
    pub stopped: bool,
    /// The trained model, for inference (no autodiff, no dropout).
    pub model: Gpt,
    /// Every step's training loss, from step 1.
    pub train_losses: Vec<f64>,
    /// `(step, held-out loss)` at each evaluation.
    pub val_losses: Vec<(usize, f64)>,
    /// Wall time of this invocation.
    pub seconds: f64,
}

/// Learning rate at 0-based `step`: linear warm-up to `learning_rate`, then cosine decay to
/// `min_lr` at `max_steps` (nanoGPT's schedule).
pub fn lr_at(t: &OptimConfig, step: usize) -> f64 {
    if step < t.warmup_steps {
        return t.learning_rate * (step + 1) as f64 / (t.warmup_steps + 1) as f64;
    }
    if step >= t.max_steps || t.max_steps == t.warmup_steps {
        return t.min_lr;
    }
    let ratio = (step - t.warmup_steps) as f64 / (t.max_steps - t.warmup_steps) as f64;
    let coeff = 0.5 * (1.0 + (std::f64::consts::PI * ratio).cos());
    t.min_lr + coeff * (t.learning_rate - t.min_lr)
}

/// What a checkpoint holds besides weights and optimizer state.
#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    step: usize,
    train_losses: Vec<f64>,
    val_losses: Vec<(usize, f64)>,
    lrs: Vec<f64>,
    /// What a resume must keep (absent in checkpoints of older versions).
    #[serde(default)]
    lineage: Option<Lineage>,
}

/// What a checkpoint shares with any config that may resume it: the model's shapes and the
/// data (whose characters are the vocabulary). Steps, learning rates and intervals may change.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Lineage {
    n_layer: usize,
    n_head: usize,
    n_embd: usize,
    block_size: usize,
    vocab_size: usize,
    activation: String,
    /// SHA-256 of the corpus file.
    corpus_sha256: String,
    val_fraction: f64,
}

impl Lineage {
    fn of(cfg: &TrainConfig, vocab_size: usize, corpus_sha256: String) -> Self {
        let m = &cfg.model;
        Self {
            n_layer: m.n_layer,
            n_head: m.n_head,
            n_embd: m.n_embd,
            block_size: m.block_size,
            vocab_size,
            activation: m.activation.clone(),
            corpus_sha256,
            val_fraction: cfg.data.val_fraction,
        }
    }

    /// The config keys whose values differ from `other`'s.
    fn differing(&self, other: &Self) -> Vec<&'static str> {
        [
            ("model.n_layer", self.n_layer != other.n_layer),
            ("model.n_head", self.n_head != other.n_head),
            ("model.n_embd", self.n_embd != other.n_embd),
            ("model.block_size", self.block_size != other.block_size),
            ("model.activation", self.activation != other.activation),
            (
                "the corpus's vocabulary",
                self.vocab_size != other.vocab_size,
            ),
            (
                "data.path (its content)",
                self.corpus_sha256 != other.corpus_sha256,
            ),
            ("data.val_fraction", self.val_fraction != other.val_fraction),
        ]
        .into_iter()
        .filter(|(_, d)| *d)
        .map(|(k, _)| k)
        .collect()
    }
}

const CHECKPOINT_DIR: &str = "checkpoint";
const LOG_FILE: &str = "training_log.csv";
/// The loss curve, rewritten with the log.
pub const PLOT_FILE: &str = "loss_curve.svg";

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io(format!("cannot {what} {}: {e}", path.display()))
}

/// Mean cross-entropy (nats) of next-token logits `[n, v]` against `targets` `[n]`.
fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [n, _] = logits.dims();
    let picked = log_softmax(logits, 1).gather(1, targets.reshape([n, 1])); // [n, 1]
    picked.mean().neg()
}

/// Loss of one batch `(x, y)` of `[b, t]` ids.
fn batch_loss(
    model: &Gpt,
    x: Vec<i32>,
    y: Vec<i32>,
    b: usize,
    t: usize,
    device: &Device,
) -> Tensor<1> {
    let ids = Tensor::<2, Int>::from_data(TensorData::new(x, [b, t]), device);
    let pos: Vec<i32> = (0..b).flat_map(|_| 0..t as i32).collect();
    let pos = Tensor::<2, Int>::from_data(TensorData::new(pos, [b, t]), device);
    let targets = Tensor::<1, Int>::from_data(TensorData::new(y, [b * t]), device);
    let logits = model.logits(model.forward(ids, pos, None, None)); // [b, t, v]
    let v = logits.dims()[2];
    cross_entropy(logits.reshape([b * t, v]), targets)
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data()
        .iter::<f32>()
        .next()
        .map_or(f64::NAN, f64::from)
}

/// Mean held-out loss over a fixed set of `eval_batches` batches.
fn evaluate(model: &Gpt, corpus: &Corpus, cfg: &TrainConfig, device: &Device) -> f64 {
    let (b, t) = (cfg.train.batch_size, cfg.model.block_size);
    let mut sum = 0.0;
    for i in 0..cfg.train.eval_batches {
        let (x, y) = batch(&corpus.val, b, t, cfg.train.seed, 1, i as u64);
        sum += scalar(batch_loss(model, x, y, b, t, device));
    }
    sum / cfg.train.eval_batches as f64
}

/// The model's config for this run.
pub fn model_config(cfg: &TrainConfig, vocab: usize) -> GptConfig {
    let m = &cfg.model;
    let mut g = GptConfig::new(vocab, m.block_size, m.n_embd, m.n_layer, m.n_head);
    g.embd_pdrop = m.dropout;
    g.resid_pdrop = m.dropout;
    g.attn_pdrop = 0.0;
    g.activation_function = m.activation.clone();
    g
}

/// Trains as `cfg` says; with `resume`, continues from `output.dir/checkpoint` when it exists.
/// Writes the model directory (config.json, model.safetensors, char_vocab.json,
/// training_log.csv) at the end and a checkpoint every `checkpoint_interval` steps.
/// `on_progress` is called after every step; returning `false` stops the run after saving a
/// checkpoint (Ctrl-C).
pub fn train(
    cfg: &TrainConfig,
    resume: bool,
    force: bool,
    mut on_progress: impl FnMut(&Progress) -> bool,
) -> Result<TrainSummary, TrainError> {
    let started = Instant::now();
    let out = &cfg.output.dir;
    let ckpt = out.join(CHECKPOINT_DIR);
    let has_checkpoint = ckpt.join("state.json").is_file();
    if resume && !has_checkpoint {
        return Err(TrainError::Config(format!(
            "--resume: {} holds no checkpoint to continue: drop --resume to start a new run",
            ckpt.display()
        )));
    }
    if !resume && !force && (has_checkpoint || out.join("model.safetensors").is_file()) {
        return Err(TrainError::Config(format!(
            "{} already holds a training run: continue it with --resume, or start over with --force (which replaces it)",
            out.display()
        )));
    }
    let corpus = Corpus::load(&cfg.data.path, cfg.data.val_fraction, cfg.model.block_size)?;
    let gcfg = model_config(cfg, corpus.tokenizer.vocab_size());
    minigpt_model::memory::check_fits(
        &format!(
            "training {} layers of width {} on batches of {} × {} tokens",
            gcfg.n_layer, gcfg.n_embd, cfg.train.batch_size, gcfg.n_positions
        ),
        minigpt_model::memory::training_bytes(&gcfg, cfg.train.batch_size),
        "lower train.batch_size, model.n_embd, model.n_layer or model.block_size",
    )
    .map_err(TrainError::Config)?;
    let corpus_sha256 = {
        use sha2::Digest;
        let bytes = std::fs::read(&cfg.data.path).map_err(|e| io("read", &cfg.data.path, e))?;
        format!("{:x}", sha2::Sha256::digest(&bytes))
    };
    let lineage = Lineage::of(cfg, corpus.tokenizer.vocab_size(), corpus_sha256);
    std::fs::create_dir_all(out).map_err(|e| io("create the output folder", out, e))?;
    let probe = out.join(".minigpt-write-test");
    std::fs::write(&probe, b"").map_err(|e| io("write to the output folder", out, e))?;
    let _ = std::fs::remove_file(&probe);
    let plain = parse_device(&cfg.train.device)?;
    let device = plain.clone().autodiff();
    let weights_path = PathBuf::from("<init>");
    let (mut model, mut optim, mut state) = if resume {
        // The checkpoint's lineage first: loading it under other shapes would fail obscurely.
        let text = std::fs::read_to_string(ckpt.join("state.json"))
            .map_err(|e| io("read", &ckpt.join("state.json"), e))?;
        let state: State =
            serde_json::from_str(&text).map_err(|e| io("parse", &ckpt.join("state.json"), e))?;
        if let Some(old) = &state.lineage {
            let keys = old.differing(&lineage);
            if !keys.is_empty() {
                return Err(TrainError::Config(format!(
                    "--resume: the checkpoint in {} was trained with another {}: restore the config and corpus, or start over with --force (without --resume)",
                    ckpt.display(),
                    keys.join(", ")
                )));
            }
        }
        let (_, model) = minigpt_model::load_dir_with(&ckpt, &device, true)?;
        let record = OptimizerRecord::load(ckpt.join("optimizer.bpk"))
            .map_err(|e| io("read", &ckpt.join("optimizer.bpk"), format!("{e:?}")))?;
        let optim = optimizer(&cfg.train, &plain).load_record(record);
        let state = State {
            lineage: Some(lineage),
            ..state
        };
        (model, optim, state)
    } else {
        device.seed(cfg.train.seed);
        let fresh = Gpt::init(&gcfg, &device, true);
        // Reload through safetensors so parameter ids derive from names, as after a resume.
        let model = load_weights(
            &gcfg,
            &to_safetensors(&fresh)?,
            &weights_path,
            &device,
            true,
        )?;
        let state = State {
            step: 0,
            train_losses: vec![],
            val_losses: vec![],
            lrs: vec![],
            lineage: Some(lineage),
        };
        (model, optimizer(&cfg.train, &plain), state)
    };
    let (b, t) = (cfg.train.batch_size, cfg.model.block_size);
    let loop_start = Instant::now();
    let first_step = state.step;
    for step in first_step..cfg.train.max_steps {
        // Dropout masks depend on (seed, step) only: a resumed run draws the same ones.
        device.seed(cfg.train.seed ^ (step as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
        let (x, y) = batch(&corpus.train, b, t, cfg.train.seed, 0, step as u64);
        let loss = batch_loss(&model, x, y, b, t, &device);
        let loss_value = scalar(loss.clone());
        // A diverged run stops before the update: the last checkpoint stays the last good one.
        if !loss_value.is_finite() {
            let kept = if ckpt.join("state.json").is_file() {
                format!("the checkpoint in {} is kept", ckpt.display())
            } else {
                "no checkpoint was written yet".to_string()
            };
            return Err(TrainError::Config(format!(
                "training diverged at step {}: the loss is {loss_value}; {kept}: lower train.learning_rate or train.grad_clip and start over with --force",
                step + 1
            )));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = lr_at(&cfg.train, step);
        model = optim.step(lr, model, grads);
        state.step = step + 1;
        state.train_losses.push(loss_value);
        state.lrs.push(lr);
        let is_eval =
            state.step % cfg.train.eval_interval == 0 || state.step == cfg.train.max_steps;
        let val_loss = is_eval.then(|| evaluate(&model.valid(), &corpus, cfg, &plain));
        if let Some(v) = val_loss {
            state.val_losses.push((state.step, v));
        }
        let done_tokens = (state.step - first_step) * b * t;
        let go_on = on_progress(&Progress {
            step: state.step,
            max_steps: cfg.train.max_steps,
            train_loss: loss_value,
            val_loss,
            lr,
            tokens_per_s: done_tokens as f64 / loop_start.elapsed().as_secs_f64().max(1e-9),
        });
        if !go_on && state.step < cfg.train.max_steps {
            save_checkpoint(&model, &optim, &gcfg, &state, &corpus, &ckpt)?;
            write_log(&state, &out.join(LOG_FILE))?;
            return Ok(TrainSummary {
                stopped: true,
                model: model.valid(),
                train_losses: state.train_losses,
                val_losses: state.val_losses,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        let interval = cfg.output.checkpoint_interval;
        if interval > 0 && state.step % interval == 0 && state.step < cfg.train.max_steps {
            save_checkpoint(&model, &optim, &gcfg, &state, &corpus, &ckpt)?;
            write_log(&state, &out.join(LOG_FILE))?;
        }
    }
    save_checkpoint(&model, &optim, &gcfg, &state, &corpus, &ckpt)?;
    minigpt_model::save_dir(&model.valid(), &gcfg, out)?;
    corpus
        .tokenizer
        .save(&out.join(CHAR_VOCAB_FILE))
        .map_err(|e| io("write", &out.join(CHAR_VOCAB_FILE), e))?;
    write_log(&state, &out.join(LOG_FILE))?;
    Ok(TrainSummary {
        stopped: false,
        model: model.valid(),
        train_losses: state.train_losses,
        val_losses: state.val_losses,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn save_checkpoint(
    model: &Gpt,
    optim: &ModuleOptimizer,
    gcfg: &GptConfig,
    state: &State,
    corpus: &Corpus,
    dir: &Path,
) -> Result<(), TrainError> {
    // Write a complete new checkpoint beside the old one, then swap: a kill leaves one whole.
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    minigpt_model::save_dir(&model.valid(), gcfg, &tmp)?;
    let vocab = tmp.join(CHAR_VOCAB_FILE);
    corpus
        .tokenizer
        .save(&vocab)
        .map_err(|e| io("write", &vocab, e))?;
    optim
        .to_record()
        .save(tmp.join("optimizer.bpk"))
        .map_err(|e| io("write", &tmp.join("optimizer.bpk"), format!("{e:?}")))?;
    let json = serde_json::to_string(state).map_err(|e| io("encode", dir, e))?;
    std::fs::write(tmp.join("state.json"), json).map_err(|e| io("write", &tmp, e))?;
    let old = dir.with_extension("old");
    let _ = std::fs::remove_dir_all(&old);
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| io("replace", dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| io("replace", dir, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn write_log(state: &State, path: &Path) -> Result<(), TrainError> {
    let mut s = String::from("step,train_loss,val_loss,lr\n");
    let mut val = state.val_losses.iter().peekable();
    for (i, (loss, lr)) in state.train_losses.iter().zip(&state.lrs).enumerate() {
        let step = i + 1;
        let v = match val.peek() {
            Some(&&(s, v)) if s == step => {
                val.next();
                format!("{v:.6}")
            }
            _ => String::new(),
        };
        s.push_str(&format!("{step},{loss:.6},{v},{lr:.8}\n"));
    }
    minigpt_model::write_atomic(path, s.as_bytes())?;
    let svg = crate::plot::loss_curve_svg(
        "minigpt training: loss per step and on the held-out split",
        &state.train_losses,
        &state.val_losses,
    );
    minigpt_model::write_atomic(&path.with_file_name(PLOT_FILE), svg.as_bytes())?;
    Ok(())
}
