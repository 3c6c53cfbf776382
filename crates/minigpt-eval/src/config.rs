//! The sweep config (`configs/sweep.toml`; the README's "Experiments"): what to generate and with what.

use std::path::{Path, PathBuf};

use minigpt_hub::ModelSource;
use serde::{Deserialize, Serialize};

pub use crate::batch_size::BatchSize;
pub use crate::prompt_set::Prompts;

/// A config that cannot be used; the message names the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Name, seed and sizes.
    pub experiment: Experiment,
    /// The model that generates (default: the built-in one).
    #[serde(default)]
    pub model: ModelRef,
    /// An optional second model that scores every continuation (`judge_perplexity`).
    #[serde(default)]
    pub judge: Option<ModelRef>,
    /// The prompts.
    pub prompts: Prompts,
    /// The grid.
    pub sweep: Sweep,
    /// The config file's folder (relative paths start there).
    #[serde(skip)]
    pub base: PathBuf,
}

/// `[experiment]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Names the output folder `experiments/runs/<name>`.
    pub name: String,
    /// Every row's sampling seed derives from it.
    pub seed: u64,
    /// Generations per prompt × strategy × temperature.
    #[serde(default = "one")]
    pub samples: usize,
    /// Tokens per continuation (at most). With `max_new_chars` it may be left out: the cap is
    /// then `max_new_chars` tokens.
    #[serde(default)]
    pub max_new_tokens: usize,
    /// A length budget in characters, the same whatever the tokenizer: a continuation stops at
    /// the first token that reaches it and its text is cut there (what an eval compares).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_new_chars: Option<usize>,
    /// Rows generated together: a number, or `"auto"` (the default; see [`BatchSize`]).
    #[serde(default)]
    pub batch_size: BatchSize,
    /// How rows longer than the model's context are fed: `slide` (the default: an exact
    /// window of the last `n_positions` tokens, recomputed at every token) or `shift` (on
    /// `cpu`: a full row restarts on its last `n_positions / 2` tokens and goes on cached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

impl Experiment {
    /// The most tokens a continuation may have: `max_new_tokens`, or `max_new_chars` when only
    /// the budget is given.
    pub fn token_cap(&self) -> usize {
        match (self.max_new_tokens, self.max_new_chars) {
            (0, Some(chars)) => chars,
            (tokens, _) => tokens,
        }
    }
}

fn one() -> usize {
    1
}

/// `[model]` / `[judge]`: a model directory (relative to the config file), a Hugging Face
/// repo id, or, without `path`, the built-in model.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    /// A model directory in Hugging Face layout (relative to the config file), or a Hugging
    /// Face repo id (`gpt2`, `openai-community/gpt2-medium@main`).
    #[serde(default)]
    pub path: Option<String>,
    /// Compute device: `cpu` (minigpt's own kernels), or Burn's `flex`, `ndarray`, `wgpu`.
    #[serde(default = "cpu")]
    pub device: String,
    /// Weight storage type on `cpu`: `f32`, `f16` or `bf16`.
    #[serde(default = "f32")]
    pub dtype: String,
    /// What `path` names, decided when the config is loaded (`None`: the built-in model).
    #[serde(skip)]
    pub source: Option<ModelSource>,
}

impl ModelRef {
    /// Decides what `path` names, relative paths taken from `base`.
    pub fn resolve(&mut self, base: &Path) {
        self.source = self.path.as_deref().map(|p| ModelSource::parse(p, base));
    }
}

fn cpu() -> String {
    "cpu".into()
}

fn f32() -> String {
    "f32".into()
}

impl Default for ModelRef {
    /// The built-in model on `cpu` in f32 (what an absent `[model]` or `[candidate]` means).
    fn default() -> Self {
        Self {
            path: None,
            device: cpu(),
            dtype: f32(),
            source: None,
        }
    }
}

/// `[sweep]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Temperatures for the sampling strategies (deterministic ones run once, without).
    pub temperatures: Vec<f64>,
    /// Strategy names (files `<strategies_dir>/<name>.toml`) or paths to strategy files.
    pub strategies: Vec<String>,
    /// Where strategy names are looked up, relative to the config file.
    #[serde(default = "decode_dir")]
    pub strategies_dir: PathBuf,
}

fn decode_dir() -> PathBuf {
    PathBuf::from("decode")
}

impl SweepConfig {
    /// Reads and checks a config; relative paths become relative to its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let at = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{at}: cannot read the config: {e}")))?;
        let mut cfg: Self = toml::from_str(&text)
            .map_err(|e| ConfigError(format!("{at}: {}", e.message().replace('\n', " "))))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        cfg.model.resolve(base);
        if let Some(j) = cfg.judge.as_mut() {
            j.resolve(base);
        }
        if let Some(p) = cfg.prompts.file.as_mut() {
            rebase(p);
        }
        if let Some(p) = cfg.prompts.corpus.as_mut() {
            rebase(p);
        }
        rebase(&mut cfg.sweep.strategies_dir);
        cfg.base = base.to_path_buf();
        cfg.validate()
            .map_err(|m| ConfigError(format!("{at}: {m}")))?;
        Ok(cfg)
    }

    /// Checks values; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let e = &self.experiment;
        if e.name.trim().is_empty()
            || e.name.contains(['/', '\\'])
            || e.name == "."
            || e.name == ".."
        {
            return Err(format!(
                "experiment.name must be a plain folder name (got {:?})",
                e.name
            ));
        }
        if e.samples == 0 {
            return Err("experiment.samples must be at least 1".into());
        }
        if e.batch_size == BatchSize::Rows(0) {
            return Err("experiment.batch_size must be at least 1, or \"auto\"".into());
        }
        if let Some(c) = &e.context
            && c != "slide"
            && c != "shift"
        {
            return Err(format!(
                "experiment.context must be \"slide\" or \"shift\" (got {c:?})"
            ));
        }
        if e.context.as_deref() == Some("shift") && self.model.device != "cpu" {
            return Err(format!(
                "experiment.context = \"shift\" runs on model.device = \"cpu\" only (got {:?}): use \"slide\" there",
                self.model.device
            ));
        }
        if e.max_new_chars == Some(0) {
            return Err("experiment.max_new_chars must be at least 1".into());
        }
        if e.token_cap() == 0 {
            return Err(
                "experiment.max_new_tokens must be at least 1 (or give experiment.max_new_chars, a budget in characters)"
                    .into(),
            );
        }
        self.prompts.validate()?;
        if self.sweep.strategies.is_empty() {
            return Err("sweep.strategies is empty: name at least one strategy".into());
        }
        for (i, s) in self.sweep.strategies.iter().enumerate() {
            if self.sweep.strategies[..i].contains(s) {
                return Err(format!("sweep.strategies lists {s:?} twice"));
            }
        }
        for &t in &self.sweep.temperatures {
            if !(t.is_finite() && t > 0.0) {
                return Err(format!(
                    "sweep.temperatures: every temperature must be > 0 (got {t}); greedy is a strategy"
                ));
            }
        }
        for (i, t) in self.sweep.temperatures.iter().enumerate() {
            if self.sweep.temperatures[..i].contains(t) {
                return Err(format!("sweep.temperatures lists {t} twice"));
            }
        }
        Ok(())
    }

    /// The prompts, in order (`\n` in a prompt file line is a line break).
    pub fn prompt_texts(&self) -> Result<Vec<String>, ConfigError> {
        Ok(self.prompt_set()?.prompts)
    }

    /// The prompts and their human continuations, if the config gives them.
    pub fn prompt_set(&self) -> Result<crate::prompt_set::PromptSet, ConfigError> {
        crate::prompt_set::PromptSet::load(&self.prompts, self.experiment.seed).map_err(ConfigError)
    }

    /// The strategy file of a `sweep.strategies` entry: a name in `strategies_dir`, or a path
    /// ending in `.toml` (relative to the config's folder).
    pub fn strategy_path(&self, entry: &str) -> PathBuf {
        if entry.ends_with(".toml") {
            self.base.join(entry)
        } else {
            self.sweep.strategies_dir.join(format!("{entry}.toml"))
        }
    }
}

/// Dotted names of the keys whose values differ between two JSON objects.
pub fn differing_keys(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    let mut keys = vec![];
    diff("", a, b, &mut keys);
    keys
}

fn diff(prefix: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                let null = serde_json::Value::Null;
                diff(
                    &name,
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        _ if a != b => out.push(prefix.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_model_table_means_the_built_in_model_on_cpu() {
        let cfg: SweepConfig = toml::from_str(
            "[experiment]\nname = \"x\"\nseed = 1\nmax_new_tokens = 4\n[prompts]\nitems = [\"a\"]\n[sweep]\ntemperatures = [1.0]\nstrategies = [\"greedy\"]\n",
        )
        .unwrap();
        assert_eq!(
            cfg.model,
            ModelRef {
                path: None,
                device: "cpu".into(),
                dtype: "f32".into(),
                source: None,
            }
        );
        assert_eq!(cfg.experiment.samples, 1);
        assert_eq!(cfg.experiment.batch_size, BatchSize::Auto);
        assert!(cfg.validate().is_ok());
    }
}
