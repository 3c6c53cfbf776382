//! `minigpt eval`: a candidate model against a baseline (GPT-2) on the same prompts and
//! strategies. Each model's sweep is an ordinary run folder (`candidate/`, `baseline/`) whose
//! continuations the baseline judges; `comparison.csv` puts the two summaries side by side.

use std::path::{Path, PathBuf};

use minigpt_hub::ModelSource;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Experiment, ModelRef, Prompts, Sweep, SweepConfig};
use crate::error::RunError;
use crate::row::{BitsPerByteRow, SummaryRow, format_num};
use crate::run_dir::{RunDir, write_csv, write_records};
use crate::summary::SummaryLine;

/// The comparison of the two summaries.
pub const COMPARISON: &str = "comparison.csv";
/// Bits per byte of both models on the held-out text.
pub const BITS_PER_BYTE: &str = "bits_per_byte.csv";

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
pub const BASELINE_HELP: &str = "set baseline.path to a Hugging Face repo id (baseline.path = \"gpt2\", downloaded on first use) or to a GPT-2 directory with config.json, model.safetensors and the tokenizer (tokenizer.json, or vocab.json + merges.txt; without them the built-in GPT-2 vocabulary is used)";

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
        if cfg.experiment.max_new_chars.is_none() {
            return Err(ConfigError(format!(
                "{at}: experiment.max_new_chars is missing: an eval compares both models at the same length in characters (a character model writes one per token, GPT-2 about four), e.g. max_new_chars = 200"
            )));
        }
        cfg.candidate.resolve(&base);
        cfg.baseline.resolve(&base);
        if cfg.baseline.source.is_none() {
            return Err(ConfigError(format!(
                "{at}: baseline.path is missing: {BASELINE_HELP}"
            )));
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
        if let Some(p) = cfg.prompts.corpus.as_mut() {
            rebase(p);
        }
        if let Some(p) = cfg.prompts.file.as_mut() {
            rebase(p);
        }
        rebase(&mut cfg.sweep.strategies_dir);
        cfg.base = base;
        if let Some(ModelSource::Dir(dir)) = &cfg.baseline.source
            && !(dir.join("config.json").is_file() && dir.join("model.safetensors").is_file())
        {
            return Err(ConfigError(format!(
                "{at}: baseline.path {}: not a model directory: {BASELINE_HELP}",
                dir.display()
            )));
        }
        // Each model's sweep, its keys named as this file names them.
        for (side, baseline) in [("candidate", false), ("baseline", true)] {
            cfg.sweep_for(baseline).validate().map_err(|m| {
                ConfigError(format!(
                    "{at}: {}",
                    m.replace("model.device", &format!("{side}.device"))
                ))
            })?;
        }
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

/// Metrics compared, in `comparison.csv` order (summary column names): all but the timings.
pub fn compared_metrics() -> Vec<&'static str> {
    SummaryRow::default()
        .metrics()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|m| *m != "mean_seconds" && *m != "mean_tokens_per_s")
        .collect()
}

/// Writes `comparison.csv` in `out` from the two run folders' summaries: one row per strategy
/// × temperature of the candidate and, for each metric, the candidate's value, the baseline's,
/// their difference, and each side's 95 % bootstrap interval from its summary (empty where the
/// summary has none). Then the plots of both models' lines, with their intervals.
pub fn write_comparison(
    out: &Path,
    candidate: &RunDir,
    baseline: &RunDir,
    max_new_chars: Option<usize>,
) -> Result<(), RunError> {
    let (c, b) = (candidate.read_summary()?, baseline.read_summary()?);
    let metrics = compared_metrics();
    let mut header = vec![
        "strategy".to_string(),
        "temperature".into(),
        "candidate".into(),
        "baseline".into(),
        "max_new_chars".into(),
    ];
    for m in &metrics {
        header.extend(
            [
                "candidate",
                "baseline",
                "diff",
                "candidate_lo",
                "candidate_hi",
                "baseline_lo",
                "baseline_hi",
            ]
            .map(|side| format!("{m}_{side}")),
        );
    }
    let mut records = vec![];
    for cline in &c {
        let crow = &cline.row;
        let bline = b
            .iter()
            .find(|l| l.row.strategy == crow.strategy && l.row.temperature == crow.temperature);
        let brow = bline.map(|l| &l.row);
        let mut rec = vec![
            crow.strategy.clone(),
            format_num(crow.temperature),
            crow.model.clone(),
            brow.map(|r| r.model.clone()).unwrap_or_default(),
            max_new_chars.map(|n| n.to_string()).unwrap_or_default(),
        ];
        for m in &metrics {
            let cv = crow.metric(m).flatten();
            let bv = brow.and_then(|r| r.metric(m).flatten());
            rec.push(format_num(cv));
            rec.push(format_num(bv));
            rec.push(format_num(cv.zip(bv).map(|(x, y)| x - y)));
            for iv in [cline.interval(m), bline.and_then(|l| l.interval(m))] {
                rec.push(format_num(iv.map(|i| i.lo)));
                rec.push(format_num(iv.map(|i| i.hi)));
            }
        }
        records.push(rec);
    }
    write_records(&out.join(COMPARISON), &header, &records)?;
    // Plots with both models' lines.
    let lines: Vec<SummaryLine> = c.into_iter().chain(b).collect();
    RunDir::new(out).write_plots(&lines)
}

/// Writes `bits_per_byte.csv` in `out`.
pub fn write_bits_per_byte(out: &Path, rows: &[BitsPerByteRow]) -> Result<(), RunError> {
    write_csv(&out.join(BITS_PER_BYTE), rows)
}
