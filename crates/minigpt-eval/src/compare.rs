//! `minigpt eval`: a candidate model against a baseline (GPT-2) on the same prompts and
//! strategies. Each model's sweep is an ordinary run folder (`candidate/`, `baseline/`) whose
//! continuations the baseline judges; `comparison.csv` puts the two summaries side by side.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Experiment, ModelRef, Prompts, Sweep, SweepConfig};
use crate::runner::{RunError, SUMMARY, atomic_write, opt};
use crate::summary::{MEANS, POOLED};

/// `configs/eval-gpt2.toml`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Name, seed and sizes (as in a sweep).
    pub experiment: Experiment,
    /// The model under evaluation (default: the built-in one).
    #[serde(default)]
    pub candidate: ModelRef,
    /// The reference model, also the judge of every continuation.
    pub baseline: ModelRef,
    /// The prompts.
    pub prompts: Prompts,
    /// The grid.
    pub sweep: Sweep,
    /// A text for bits per byte of both models.
    #[serde(default)]
    pub heldout: Option<Heldout>,
    /// The config file's folder.
    #[serde(skip)]
    pub base: PathBuf,
}

/// `[heldout]`: the last `fraction` of a text file (all of it by default).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Heldout {
    /// A UTF-8 text file (relative to the config file).
    pub file: PathBuf,
    /// Use only the end of the file: this share of its characters.
    #[serde(default = "whole")]
    pub fraction: f64,
}

fn whole() -> f64 {
    1.0
}

/// What a GPT-2 baseline directory needs, for the error when it is missing.
pub const BASELINE_HELP: &str = "a GPT-2 directory needs config.json, model.safetensors and the tokenizer (tokenizer.json, or vocab.json + merges.txt; without them the built-in GPT-2 vocabulary is used); they are usually downloaded from the Hugging Face `gpt2` repository (https://huggingface.co/gpt2), e.g. `huggingface-cli download gpt2 config.json model.safetensors tokenizer.json --local-dir DIR`, then set baseline.path = \"DIR\"";

impl EvalConfig {
    /// Reads and checks the config; relative paths become relative to its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let at = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{at}: cannot read the config: {e}")))?;
        let mut cfg: Self = toml::from_str(&text)
            .map_err(|e| ConfigError(format!("{at}: {}", e.message().replace('\n', " "))))?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = cfg.candidate.path.as_mut() {
            rebase(p);
        }
        match cfg.baseline.path.as_mut() {
            Some(p) => rebase(p),
            None => {
                return Err(ConfigError(format!(
                    "{at}: baseline.path is missing: {BASELINE_HELP}"
                )));
            }
        }
        if let Some(h) = cfg.heldout.as_mut() {
            rebase(&mut h.file);
            if !(h.fraction > 0.0 && h.fraction <= 1.0) {
                return Err(ConfigError(format!(
                    "{at}: heldout.fraction must be in (0, 1] (got {})",
                    h.fraction
                )));
            }
        }
        if let Some(p) = cfg.prompts.file.as_mut() {
            rebase(p);
        }
        rebase(&mut cfg.sweep.strategies_dir);
        cfg.base = base;
        let baseline = cfg.baseline.path.clone().unwrap_or_default();
        if !baseline.join("config.json").is_file() || !baseline.join("model.safetensors").is_file()
        {
            return Err(ConfigError(format!(
                "{at}: baseline.path {}: not a model directory: {BASELINE_HELP}",
                baseline.display()
            )));
        }
        cfg.sweep_for(false)
            .validate()
            .map_err(|m| ConfigError(format!("{at}: {m}")))?;
        Ok(cfg)
    }

    /// The sweep one model runs: `baseline` picks which; the baseline always judges.
    pub fn sweep_for(&self, baseline: bool) -> SweepConfig {
        SweepConfig {
            experiment: self.experiment.clone(),
            model: if baseline {
                self.baseline.clone()
            } else {
                self.candidate.clone()
            },
            judge: Some(self.baseline.clone()),
            prompts: self.prompts.clone(),
            sweep: self.sweep.clone(),
            base: self.base.clone(),
        }
    }

    /// The held-out text, if configured.
    pub fn heldout_text(&self) -> Result<Option<String>, ConfigError> {
        let Some(h) = &self.heldout else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(&h.file).map_err(|e| {
            ConfigError(format!(
                "heldout.file {}: cannot read it: {e}",
                h.file.display()
            ))
        })?;
        let chars: Vec<char> = text.chars().collect();
        let keep = ((chars.len() as f64) * h.fraction).round() as usize;
        Ok(Some(chars[chars.len() - keep..].iter().collect()))
    }
}

/// Metrics compared, in `comparison.csv` order (summary column names).
pub fn compared_metrics() -> Vec<String> {
    POOLED
        .iter()
        .map(|s| s.to_string())
        .chain(MEANS.iter().map(|s| format!("mean_{s}")))
        .filter(|m| m != "mean_seconds" && m != "mean_tokens_per_s")
        .collect()
}

/// Writes `comparison.csv` from the two summaries: one row per strategy × temperature and,
/// for each metric, the candidate's value, the baseline's and their difference.
pub fn write_comparison(out: &Path, candidate: &Path, baseline: &Path) -> Result<(), RunError> {
    let read = |dir: &Path| -> Result<Vec<Vec<String>>, RunError> {
        let p = dir.join(SUMMARY);
        let text = std::fs::read_to_string(&p)
            .map_err(|e| RunError(format!("cannot read {}: {e}", p.display())))?;
        let (recs, _) = crate::csv::parse(&text)
            .map_err(|e| RunError(format!("cannot parse {}: {e}", p.display())))?;
        Ok(recs)
    };
    let (c, b) = (read(candidate)?, read(baseline)?);
    let header = crate::summary::summary_columns();
    let idx = |m: &str| header.iter().position(|h| h == m);
    let metrics = compared_metrics();
    let mut cols = vec![
        "strategy".to_string(),
        "temperature".into(),
        "candidate".into(),
        "baseline".into(),
    ];
    for m in &metrics {
        cols.push(format!("{m}_candidate"));
        cols.push(format!("{m}_baseline"));
        cols.push(format!("{m}_diff"));
    }
    let mut text = crate::csv::record(&cols);
    for crow in c.iter().skip(1) {
        let brow = b
            .iter()
            .skip(1)
            .find(|r| r[1] == crow[1] && r[2] == crow[2]);
        let mut rec = vec![
            crow[1].clone(),
            crow[2].clone(),
            crow[0].clone(),
            brow.map(|r| r[0].clone()).unwrap_or_default(),
        ];
        for m in &metrics {
            let i = idx(m).expect("a summary column");
            let cv: Option<f64> = crow[i].parse().ok();
            let bv: Option<f64> = brow.and_then(|r| r[i].parse().ok());
            rec.push(opt(cv));
            rec.push(opt(bv));
            rec.push(opt(cv.zip(bv).map(|(x, y)| x - y)));
        }
        text.push_str(&crate::csv::record(&rec));
    }
    atomic_write(&out.join("comparison.csv"), text.as_bytes())?;
    // Plots with both models' lines.
    let mut rows: Vec<Vec<String>> = c.iter().skip(1).cloned().collect();
    rows.extend(b.iter().skip(1).cloned());
    crate::plot::write_plots(out, &header, &rows)
}
