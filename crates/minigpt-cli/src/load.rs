//! Loading a model and its tokenizer for a command: a model directory or Hugging Face repo id
//! given with `--model` or a config, or the shipped model built into the binary.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use minigpt_decode::LanguageModel;
use minigpt_eval::config::BatchSize;
use minigpt_hub::{ModelSource, Settings};
use minigpt_model::{GptConfig, GptLm, PackCache, Target, parse_target};
use minigpt_tokenizer::{CharTokenizer, Tokenizer};

use crate::cli::ModelArgs;

/// The default model: `models/minigpt-shakespeare/`, compiled into the binary so that every
/// command works offline, from any folder, with no `--model`.
pub mod builtin {
    /// How the default model is named in messages and JSON output.
    pub const NAME: &str = "minigpt-shakespeare (built in)";
    macro_rules! shipped {
        ($file:literal) => {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../models/minigpt-shakespeare/",
                $file
            )
        };
    }
    pub(super) const CONFIG: &str = include_str!(shipped!("config.json"));
    pub(super) const WEIGHTS: &[u8] = include_bytes!(shipped!("model.safetensors"));
    pub(super) const VOCAB: &str = include_str!(shipped!("char_vocab.json"));
}

/// `--require-gpu`, set once by `main` before the command runs: every model must run on a
/// `wgpu` adapter that is a GPU.
static REQUIRE_GPU: AtomicBool = AtomicBool::new(false);

/// Turns `--require-gpu` on for this process.
pub fn set_require_gpu(on: bool) {
    REQUIRE_GPU.store(on, Ordering::Relaxed);
}

/// The target `device` and `dtype` name, after the GPU check: a `wgpu` device names its adapter
/// on stderr (once per process) and warns when that is a CPU software rasteriser; under
/// `--require-gpu` that, or any other device, is an error.
pub fn target(device: &str, dtype: &str) -> Result<Target> {
    static NAMED: AtomicBool = AtomicBool::new(false);
    let target = parse_target(device, dtype)?;
    let require = REQUIRE_GPU.load(Ordering::Relaxed);
    let adapter = match &target {
        Target::Burn(d) => minigpt_model::adapter(d),
        Target::Native(_) => None,
    };
    match adapter {
        None if require => bail!(
            "--require-gpu, but this model runs on device {device}: use --device wgpu \
             (device = \"wgpu\" in a config), or drop --require-gpu"
        ),
        None => {}
        Some(a) if a.software && require => bail!(
            "--require-gpu, but the wgpu adapter is {}, a CPU software rasteriser: install \
             the GPU's Vulkan driver, or drop --require-gpu",
            a.name
        ),
        Some(a) if !NAMED.swap(true, Ordering::Relaxed) => {
            if a.software {
                eprintln!(
                    "warning: --device wgpu runs on {}, a CPU software rasteriser, not a GPU: \
                     --device cpu is faster (--require-gpu makes this an error)",
                    a.name
                );
            } else {
                eprintln!("wgpu adapter: {}", a.name);
            }
        }
        Some(_) => {}
    }
    Ok(target)
}

/// What `--model` names (`None`: the built-in model): a folder when one exists at that path,
/// else a Hugging Face repo id.
pub fn source_of(args: &ModelArgs) -> Option<ModelSource> {
    args.model
        .as_deref()
        .map(|spec| ModelSource::parse(spec, Path::new("")))
}

/// The model's name for messages: its folder or repository, or the built-in model's name.
pub fn model_name(source: Option<&ModelSource>) -> String {
    source.map_or_else(|| builtin::NAME.to_string(), ToString::to_string)
}

/// A short name for CSV columns: the folder's or repository's own name, or
/// `minigpt-shakespeare`.
pub fn short_name(source: Option<&ModelSource>) -> String {
    source.map_or_else(|| "minigpt-shakespeare".into(), ModelSource::short_name)
}

/// The folder holding a model: the folder itself, or the repository's snapshot in the Hugging
/// Face cache, downloaded first when it is not there (a progress bar on a terminal).
pub fn model_dir(source: &ModelSource) -> Result<PathBuf> {
    match source {
        ModelSource::Dir(dir) => Ok(dir.clone()),
        ModelSource::Hub(repo) => {
            let mut settings = Settings::from_env();
            settings.progress_bar = std::io::stderr().is_terminal();
            Ok(minigpt_hub::fetch(repo, &settings)?.dir)
        }
    }
}

/// The model on its device (without its tokenizer).
pub fn load_model(args: &ModelArgs) -> Result<GptLm> {
    load_model_at(source_of(args).as_ref(), &args.device, &args.dtype)
}

/// The model `source` names (the built-in one for `None`) on `device`, weights in `dtype`.
pub fn load_model_at(source: Option<&ModelSource>, device: &str, dtype: &str) -> Result<GptLm> {
    let target = target(device, dtype)?;
    let dir = source.map(model_dir).transpose()?;
    model_in(dir.as_deref(), &target)
}

fn model_in(dir: Option<&Path>, target: &minigpt_model::Target) -> Result<GptLm> {
    Ok(match dir {
        Some(dir) => GptLm::load_cached(dir, target, PackCache::from_env().as_ref())?,
        None => {
            let path = Path::new(builtin::NAME);
            let config = GptConfig::from_json(builtin::CONFIG, path)?;
            GptLm::from_bytes(config, builtin::WEIGHTS, path, target)?
        }
    })
}

/// Files of a model folder that determine what it computes, hashed in this order when present.
const CONTENT_FILES: [&str; 6] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "char_vocab.json",
];

/// SHA-256 (hex) of the model's content: each of [`CONTENT_FILES`] in its folder (name, length,
/// bytes), or the built-in model's config, weights and vocabulary. A run's fingerprint holds
/// it, so a folder retrained in place or another snapshot of a repository is another grid.
/// Streams each file (GPT-2's 548 MB take about 2 s).
pub fn files_sha256(source: Option<&ModelSource>) -> Result<String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let part = |h: &mut sha2::Sha256, name: &str, len: u64| {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update(len.to_le_bytes());
    };
    match source.map(model_dir).transpose()? {
        None => {
            for (name, bytes) in [
                ("config.json", builtin::CONFIG.as_bytes()),
                ("model.safetensors", builtin::WEIGHTS),
                ("char_vocab.json", builtin::VOCAB.as_bytes()),
            ] {
                part(&mut h, name, bytes.len() as u64);
                h.update(bytes);
            }
        }
        Some(dir) => {
            for name in CONTENT_FILES {
                let path = dir.join(name);
                let Ok(mut file) = std::fs::File::open(&path) else {
                    continue;
                };
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                part(&mut h, name, len);
                std::io::copy(&mut file, &mut h)
                    .with_context(|| format!("reading {}", path.display()))?;
            }
        }
    }
    Ok(format!("{:x}", h.finalize()))
}

/// The rows per model batch of a sweep on `lm`: `batch_size` as given, or what `"auto"` picks
/// (the largest batch up to 64 whose memory estimate fits in half the available memory, on a
/// batch-invariant model; one row otherwise), said on stderr with the reason. Refuses a batch
/// of full-context rows that would not fit in memory (`config` names the file in the message).
pub fn batch_size(lm: &GptLm, batch_size: BatchSize, config: &Path) -> Result<usize> {
    let bytes =
        |b: usize| minigpt_model::memory::inference_bytes(&lm.config, b, lm.config.n_positions);
    let free = minigpt_model::memory::available_bytes();
    let chosen = batch_size.choose(lm.batch_invariant(), |b| {
        free.is_none_or(|free| bytes(b) <= u128::from(free) / 2)
    });
    if let Some(why) = &chosen.why {
        eprintln!(
            "experiment.batch_size = \"auto\": {} row{} per model batch ({why})",
            chosen.rows,
            if chosen.rows == 1 { "" } else { "s" }
        );
    }
    minigpt_model::memory::check_fits(
        &format!(
            "{}: a batch of {} rows of {} tokens",
            config.display(),
            chosen.rows,
            lm.config.n_positions
        ),
        bytes(chosen.rows),
        "lower experiment.batch_size",
    )
    .map_err(anyhow::Error::msg)?;
    Ok(chosen.rows)
}

/// The model on its device and its tokenizer.
pub fn load(args: &ModelArgs) -> Result<(GptLm, Arc<dyn Tokenizer>)> {
    load_at(source_of(args).as_ref(), &args.device, &args.dtype)
}

/// The model `source` names (the built-in one for `None`) and its tokenizer.
pub fn load_at(
    source: Option<&ModelSource>,
    device: &str,
    dtype: &str,
) -> Result<(GptLm, Arc<dyn Tokenizer>)> {
    let target = target(device, dtype)?;
    let dir = source.map(model_dir).transpose()?;
    let mut lm = model_in(dir.as_deref(), &target)?;
    let tok: Box<dyn Tokenizer> = match &dir {
        Some(dir) => minigpt_tokenizer::load_from_dir(dir, lm.config.vocab_size)
            .with_context(|| format!("loading the tokenizer of {}", model_name(source)))?,
        None => Box::new(CharTokenizer::from_json(
            builtin::VOCAB,
            Path::new(builtin::NAME),
        )?),
    };
    if tok.vocab_size() > lm.config.vocab_size {
        anyhow::bail!(
            "the tokenizer of {} has {} ids but the model only {} (vocab_size in config.json)",
            model_name(source),
            tok.vocab_size(),
            lm.config.vocab_size
        );
    }
    if tok.vocab_size() < lm.config.vocab_size {
        lm.text_vocab = Some(tok.vocab_size());
    }
    Ok((lm, Arc::from(tok)))
}
