//! The sweep: every row of the grid generated into a run folder's `generations.csv`
//! (appended batch by batch, resumable), then `summary.csv`, the plots and `run.json`.
//! [`Plan::new`] resolves and checks everything without touching a file; [`run`] does the rest.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

pub use minigpt_decode::Judge;
use minigpt_decode::{
    BuildContext, Cancelled, Decoding, GenerateRequest, Generation, LanguageModel, Last, Registry,
    StopStrings, Strategy, decode, last_hidden_features, score_forced,
};
use minigpt_tokenizer::Tokenizer;
use serde_json::{Value, json};

use crate::config::{BatchSize, SweepConfig};
use crate::error::RunError;
use crate::grid::{Cell, RowRef, cells, row_seed, rows, shard};
use crate::metrics;
use crate::prompt_set::PromptSet;
use crate::records::{FeatureRecord, TokenRecord, in_row_order};
use crate::row::HUMAN;
use crate::row::{GenerationRow, RowKey};
use crate::run_dir::{Completion, FEATURES, RunDir, RunInfo, TOKENS, fingerprint, utc_now};
use crate::summary::mean;

/// Words before a continuation word that `repetition_rate` looks at.
pub const REPETITION_WINDOW: usize = 32;

/// Everything a run does, resolved and checked before any file is written.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The config.
    pub config: SweepConfig,
    /// The `model` column.
    pub model_name: String,
    /// The prompts (`prompt_id` indexes them).
    pub prompts: Vec<String>,
    /// The human continuation of each prompt, when the config gives them (`human.csv` and the
    /// summary's `human` row).
    pub references: Option<Vec<String>>,
    /// The grid's cells.
    pub cells: Vec<Cell>,
    /// The rows this process runs (all, or one shard), in canonical order.
    pub rows: Vec<RowRef>,
    /// Rows in the whole grid.
    pub grid_rows: usize,
    /// `(k, n)` for `--shard k/n`.
    pub shard: Option<(usize, usize)>,
    /// The model MAUVE's features come from: the judge if there is one, else the model.
    pub feature_model: String,
    /// What determines the generated rows: a run folder only takes rows of an equal one.
    pub fingerprint: Value,
    /// Rows per model batch: the config's number; for `"auto"`, one until the caller sets what
    /// [`crate::config::BatchSize::choose`] picks for the loaded model (recorded in `run.json`).
    pub batch_size: usize,
}

/// Loads the strategies a config names; errors name the config and the entry. A name is a
/// file `<strategies_dir>/<name>.toml` when there is one, else the built-in strategy of that
/// name; an entry ending in `.toml` is a file.
fn load_strategies(
    cfg: &SweepConfig,
    config_path: &Path,
    registry: &Registry,
    cx: &BuildContext<'_>,
) -> Result<Vec<(String, Strategy)>, RunError> {
    cfg.sweep
        .strategies
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let path = cfg.strategy_path(entry);
            let at = |e: minigpt_decode::StrategyError| {
                RunError(format!(
                    "{}: sweep.strategies[{i}]: {e}",
                    config_path.display()
                ))
            };
            let name = entry.trim_end_matches(".toml").to_string();
            if path.is_file() {
                return Ok((name, Strategy::load(&path, registry, cx).map_err(at)?));
            }
            if !entry.ends_with(".toml")
                && let Some(s) = Strategy::builtin(entry, registry, cx)
            {
                return Ok((name, s.map_err(at)?));
            }
            Err(RunError(if entry.ends_with(".toml") {
                format!(
                    "{}: sweep.strategies[{i}] = {entry:?}: no strategy file {}",
                    config_path.display(),
                    path.display(),
                )
            } else {
                format!(
                    "{}: sweep.strategies[{i}] = {entry:?}: no strategy file {} and no built-in strategy of that name (built-in: {}; `minigpt strategies` lists them)",
                    config_path.display(),
                    path.display(),
                    minigpt_decode::builtin_strategy_names()
                )
            }))
        })
        .collect()
}

/// The most rows one run's grid may have (its row list and key set are held in memory: about
/// 100 bytes a row).
pub const MAX_GRID_ROWS: usize = 10_000_000;

impl Plan {
    /// Resolves a config into its grid: loads the strategies it names (`config_path` is for
    /// errors), builds the cells and rows (all, or shard `k` of `n`) and the fingerprint.
    /// `judge_name` is part of the fingerprint. Writes nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: SweepConfig,
        config_path: &Path,
        model_name: &str,
        judge_name: Option<&str>,
        prompt_set: PromptSet,
        registry: &Registry,
        cx: &BuildContext<'_>,
        shard_of: Option<(usize, usize)>,
    ) -> Result<Self, RunError> {
        let PromptSet {
            prompts,
            references,
        } = prompt_set;
        let strategies = &load_strategies(&config, config_path, registry, cx)?;
        if config.sweep.temperatures.is_empty()
            && strategies.iter().any(|(_, s)| !s.is_deterministic())
        {
            return Err(RunError(
                "sweep.temperatures is empty but a sampling strategy is listed: give at least one temperature".into(),
            ));
        }
        let cells = cells(strategies, &config.sweep.temperatures);
        // The grid's size, checked before anything is allocated for it.
        let samples = config.experiment.samples;
        cells
            .len()
            .checked_mul(prompts.len())
            .and_then(|n| n.checked_mul(samples))
            .filter(|&n| n <= MAX_GRID_ROWS)
            .ok_or_else(|| {
                RunError(format!(
                    "the grid is {} cells × {} prompts × {samples} samples, more than the {MAX_GRID_ROWS} rows one run holds: lower experiment.samples or split the prompts or strategies into several configs",
                    cells.len(),
                    prompts.len()
                ))
            })?;
        let all = rows(cells.len(), prompts.len(), samples);
        let grid_rows = all.len();
        let rows = match shard_of {
            Some((k, n)) => shard(&all, k, n),
            None => all,
        };
        // Each strategy's chain and every parameter its file gives (a chain's text shows only
        // the main ones): two files of one name with other parameters are different grids.
        let mut chains = serde_json::Map::new();
        for (name, s) in strategies {
            let chain = s.chain(registry, cx).map_err(|e| RunError(e.to_string()))?;
            let (Last::Selector(last) | Last::Search(last)) = &s.last;
            let plugins: Vec<Value> = s
                .processors
                .iter()
                .chain([last])
                .map(|p| json!({ "name": p.name, "params": p.params }))
                .collect();
            chains.insert(name.clone(), json!({ "chain": chain, "plugins": plugins }));
        }
        let e = &config.experiment;
        // Named like the config's keys, so a refusal can name what changed.
        let mut experiment = json!({
            "seed": e.seed,
            "samples": e.samples,
            "max_new_tokens": e.token_cap(),
        });
        if let Some(chars) = e.max_new_chars {
            experiment["max_new_chars"] = json!(chars);
        }
        if let Some(c) = &e.context {
            experiment["context"] = json!(c);
        }
        let mut fingerprint = json!({
            "experiment": experiment,
            "model": model_name,
            "model_device": config.model.device,
            "model_dtype": config.model.dtype,
            "judge": judge_name,
            "judge_device": config.judge.as_ref().map(|j| &j.device),
            "judge_dtype": config.judge.as_ref().map(|j| &j.dtype),
            "prompts": prompts,
            "sweep": {
                "temperatures": config.sweep.temperatures,
                "strategies": chains,
            },
        });
        if let Some(r) = &references {
            fingerprint["references"] = json!(r);
        }
        let batch_size = match config.experiment.batch_size {
            BatchSize::Rows(n) => n,
            BatchSize::Auto => 1,
        };
        Ok(Self {
            config,
            model_name: model_name.to_string(),
            prompts,
            references,
            cells,
            rows,
            grid_rows,
            shard: shard_of,
            feature_model: judge_name.unwrap_or(model_name).to_string(),
            fingerprint,
            batch_size,
        })
    }

    /// Adds the content hashes of the model's files (weights, config and tokenizer) and the
    /// judge's to the fingerprint (the CLI hashes them): a folder of the same name retrained
    /// in place, or another snapshot of a repository, is another grid.
    pub fn pin_files(&mut self, model_sha256: &str, judge_sha256: Option<&str>) {
        self.fingerprint["model_files_sha256"] = json!(model_sha256);
        self.fingerprint["judge_files_sha256"] = json!(judge_sha256);
    }

    /// The key of a row.
    pub fn key(&self, r: &RowRef) -> RowKey {
        let c = &self.cells[r.cell];
        RowKey::new(
            &self.model_name,
            r.prompt,
            &c.strategy,
            c.temperature,
            r.sample,
        )
    }

    /// `run.json` of this plan: `meta` describes the process; `finished` is the end time.
    pub fn info(&self, meta: &Value, finished: Option<String>) -> RunInfo {
        RunInfo {
            config: json!(self.config),
            finished,
            batch_size: Some(self.batch_size),
            grid: self.fingerprint.clone(),
            merged_from: None,
            meta: meta.clone(),
            rows_in_grid: self.grid_rows,
            rows_in_this_run: self.rows.len(),
            shard: self.shard.map(|(k, n)| format!("{k}/{n}")),
        }
    }
}

/// Reported after every batch.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Rows of this process's grid (or shard) finished, including earlier runs'.
    pub rows_done: usize,
    /// Rows of this process's grid (or shard).
    pub rows_total: usize,
    /// Tokens generated by this invocation.
    pub tokens: usize,
    /// Seconds since this invocation started generating.
    pub seconds: f64,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Rows generated now.
    pub generated: usize,
    /// Rows found finished in the folder.
    pub skipped: usize,
    /// True when `stop` asked to end early (the rows written are kept; run again to finish).
    pub interrupted: bool,
    /// Model batches run.
    pub batches: usize,
}

/// The row of one generation.
#[allow(clippy::too_many_arguments)]
fn generation_row(
    plan: &Plan,
    r: &RowRef,
    seed: u64,
    text: &str,
    g: &Generation,
    judge_perplexity: Option<f64>,
    seconds: f64,
) -> GenerationRow {
    let cell = &plan.cells[r.cell];
    GenerationRow {
        model: plan.model_name.clone(),
        prompt_id: r.prompt,
        strategy: cell.strategy.clone(),
        temperature: cell.temperature,
        sample: r.sample,
        seed,
        finish_reason: g.finish_reason.as_str().to_string(),
        seconds,
        tokens_per_s: (seconds > 0.0).then(|| g.tokens.len() as f64 / seconds),
        ..text_row(&plan.prompts[r.prompt], text, g, judge_perplexity)
    }
}

/// The metrics of a continuation `text` of `prompt` whose tokens and per-token figures are
/// `g` (identity fields left empty).
fn text_row(
    prompt: &str,
    text: &str,
    g: &Generation,
    judge_perplexity: Option<f64>,
) -> GenerationRow {
    let words = metrics::words(text);
    let prompt_words = metrics::words(prompt);
    let mean_logprob = mean(&g.logprobs);
    GenerationRow {
        prompt: prompt.to_string(),
        text: text.to_string(),
        n_tokens: g.tokens.len(),
        rep_2: metrics::rep_n(&words, 2),
        rep_3: metrics::rep_n(&words, 3),
        rep_4: metrics::rep_n(&words, 4),
        diversity: metrics::diversity(&words),
        distinct_1: metrics::distinct_n(&words, 1),
        distinct_2: metrics::distinct_n(&words, 2),
        repetition_rate: metrics::repetition_rate(&prompt_words, &words, REPETITION_WINDOW),
        // The generation's tokens exclude the end-of-text token already.
        holtzman_repeats: (!g.tokens.is_empty()).then(|| {
            f64::from(u8::from(
                metrics::holtzman_repetition(&g.tokens, None).is_some(),
            ))
        }),
        mean_logprob,
        perplexity: mean_logprob.map(|m| (-m).exp()),
        mean_entropy: mean(&g.entropies),
        mean_sampling_entropy: mean(&g.sampling_entropies),
        judge_perplexity,
        coherence: judge_perplexity.map(|p| -p.ln()),
        ..GenerationRow::default()
    }
}

/// One row per prompt for its human continuation (cut to the run's character budget), with
/// every metric computed as for a generated text: the text metrics from its words, Holtzman's
/// repetition from its tokens under the model's tokenizer, log-probabilities and entropies from
/// the model reading it token by token ([`score_forced`]), and the judge's perplexity.
fn human_rows<'j>(
    plan: &Plan,
    references: &[String],
    prompt_ids: &[Vec<u32>],
    model: &mut dyn LanguageModel,
    tokenizer: &dyn Tokenizer,
    mut judge: Option<&mut (dyn Judge + 'j)>,
) -> Result<(Vec<GenerationRow>, Vec<TokenRecord>), RunError> {
    let budget = plan.config.experiment.max_new_chars;
    let texts: Vec<String> = references
        .iter()
        .map(|r| cut_to_budget(r.clone(), budget))
        .collect();
    let ids: Vec<Vec<u32>> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            tokenizer
                .encode(t)
                .map_err(|e| RunError(format!("the reference of prompt {i}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    // Within the context: the model reads at most `context_len` positions per row anyway, and
    // a prompt plus its continuation longer than that would slide.
    let scores = score_forced(model, prompt_ids, &ids)
        .map_err(|e| RunError(format!("scoring the human continuations: {e}")))?;
    let mut out = Vec::with_capacity(texts.len());
    let mut token_records = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        let judged = match judge.as_deref_mut() {
            Some(j) => j
                .perplexity(&plan.prompts[i], text)
                .map_err(|e| RunError(format!("judge: {e}")))?,
            None => None,
        };
        let g = Generation {
            tokens: ids[i].clone(),
            logprobs: scores[i].logprobs.clone(),
            entropies: scores[i].entropies.clone(),
            sampling_entropies: vec![],
            sampling_logprobs: vec![],
            finish_reason: minigpt_decode::FinishReason::Length,
        };
        let mut row = text_row(&plan.prompts[i], text, &g, judged);
        row.model = HUMAN.into();
        row.strategy = HUMAN.into();
        row.prompt_id = i;
        row.finish_reason = "reference".into();
        token_records.push(TokenRecord::of(
            &row,
            &g.tokens,
            token_texts(tokenizer, &g.tokens),
            &g.logprobs,
            &[],
            &g.entropies,
        ));
        out.push(row);
    }
    Ok((out, token_records))
}

/// Each token's text: its bytes as UTF-8 (a character split across tokens shows as U+FFFD).
fn token_texts(tokenizer: &dyn Tokenizer, ids: &[u32]) -> Vec<String> {
    ids.iter()
        .map(|&t| String::from_utf8_lossy(&tokenizer.decode_bytes(&[t])).into_owned())
        .collect()
}

/// MAUVE's features of `rows`' texts (prompt, then continuation) from the plan's feature model:
/// the judge when there is one, else the generating model.
fn features<'j>(
    plan: &Plan,
    rows: &[GenerationRow],
    model: &mut dyn LanguageModel,
    tokenizer: &dyn Tokenizer,
    judge: Option<&mut (dyn Judge + 'j)>,
) -> Result<Vec<FeatureRecord>, RunError> {
    let vectors = match judge {
        Some(j) => {
            let texts: Vec<(&str, &str)> = rows
                .iter()
                .map(|r| (r.prompt.as_str(), r.text.as_str()))
                .collect();
            j.features(&texts)
                .map_err(|e| RunError(format!("judge: MAUVE features: {e}")))?
        }
        None => {
            let ids = rows
                .iter()
                .map(|r| {
                    let mut ids = tokenizer.encode(&r.prompt)?;
                    ids.extend(tokenizer.encode(&r.text)?);
                    Ok(ids)
                })
                .collect::<Result<Vec<_>, minigpt_tokenizer::TokenizerError>>()
                .map_err(|e| RunError(format!("MAUVE features: {e}")))?;
            last_hidden_features(model, &ids)
                .map_err(|e| RunError(format!("MAUVE features: {e}")))?
        }
    };
    // A non-finite value would be written as JSON null and could not be read back.
    if let Some((r, _)) = rows
        .iter()
        .zip(&vectors)
        .find(|(_, v)| v.iter().any(|x| !x.is_finite()))
    {
        return Err(RunError(format!(
            "MAUVE features of {} / {} at temperature {}, prompt {}, sample {}: the hidden state of {} is not finite (NaN or infinite); check the model's weights or use --dtype f32",
            r.model,
            r.strategy,
            crate::row::format_num(r.temperature),
            r.prompt_id,
            r.sample,
            plan.feature_model
        )));
    }
    Ok(rows
        .iter()
        .zip(vectors)
        .map(|(r, v)| FeatureRecord::of(r, &plan.feature_model, v))
        .collect())
}

/// `text` cut to its first `budget` characters (whole when there is no budget): the token that
/// reached the budget may carry characters past it.
fn cut_to_budget(text: String, budget: Option<usize>) -> String {
    match budget {
        Some(n) => match text.char_indices().nth(n) {
            Some((at, _)) => text[..at].to_string(),
            None => text,
        },
        None => text,
    }
}

/// What generates a run's rows: the model and its tokenizer, the plugins, and the judge.
pub struct Generator<'a> {
    /// The model.
    pub model: &'a mut dyn LanguageModel,
    /// Its tokenizer.
    pub tokenizer: &'a dyn Tokenizer,
    /// The end-of-text token, if the model has one.
    pub eos_token_id: Option<u32>,
    /// The plugins strategies are built from.
    pub registry: &'a Registry,
    /// What plugins may use to build (the tokenizer's encoder).
    pub cx: &'a BuildContext<'a>,
    /// Scores each continuation (`judge_perplexity`), if the config has a judge.
    pub judge: Option<&'a mut dyn Judge>,
    /// Set on Ctrl-C: a sampling batch stops within one step and is not written (the run is
    /// interrupted as if `stop` had been seen between batches).
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Runs `plan` in the folder `out`: opens it ([`RunDir::prepare`]: a new folder, or a resumed
/// run of the same grid; another grid is refused unless `force`), generates every unfinished
/// row a batch at a time, each batch's rows appended in one write and flushed as soon as it
/// is done (a kill loses at most the batch in flight), then writes the summary, the plots and
/// `run.json` (with `meta`, the process's description, and the end time unless stopped).
/// `stop` is polled between batches; `on_progress` hears after each.
pub fn run(
    plan: &Plan,
    out: &RunDir,
    force: bool,
    meta: &Value,
    generator: Generator<'_>,
    mut on_progress: impl FnMut(&Progress),
    stop: &dyn Fn() -> bool,
) -> Result<Outcome, RunError> {
    // The prompts and references under the model's tokenizer, checked before the folder is
    // touched: a character the vocabulary lacks must not leave a folder behind.
    let prompt_ids = encode_prompts(plan, generator.tokenizer)?;
    let vocab = generator.model.vocab_size();
    for cell in &plan.cells {
        cell.built
            .check_vocab(generator.registry, generator.cx, vocab)
            .map_err(|e| RunError(e.to_string()))?;
    }
    let (done, _lock) = out.prepare(&plan.info(meta, None), force)?;
    let outcome = generate(
        plan,
        out,
        &done,
        &prompt_ids,
        generator,
        &mut on_progress,
        stop,
    )?;
    let finished = (!outcome.interrupted).then(utc_now);
    let info = plan.info(meta, finished.clone());
    out.write_info(&info)?;
    // Last: the record that the folder holds every row of its part.
    if let Some(finished) = finished
        && outcome.generated + outcome.skipped == plan.rows.len()
    {
        out.write_completion(&Completion {
            fingerprint: fingerprint(&info.grid),
            shard: info.shard.clone(),
            rows: plan.rows.len(),
            finished,
        })?;
    }
    Ok(outcome)
}

/// Each prompt's token ids (none may be empty); each reference is encoded too, so that one the
/// tokenizer cannot read fails here, naming its prompt.
fn encode_prompts(plan: &Plan, tokenizer: &dyn Tokenizer) -> Result<Vec<Vec<u32>>, RunError> {
    let budget = plan.config.experiment.max_new_chars;
    for (i, r) in plan.references.iter().flatten().enumerate() {
        tokenizer
            .encode(&cut_to_budget(r.clone(), budget))
            .map_err(|e| RunError(format!("the reference of prompt {i}: {e}")))?;
    }
    plan.prompts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let ids = tokenizer
                .encode(p)
                .map_err(|e| RunError(format!("prompt {i}: {e}")))?;
            if ids.is_empty() {
                return Err(RunError(format!("prompt {i} encodes to no tokens")));
            }
            Ok(ids)
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn generate(
    plan: &Plan,
    out: &RunDir,
    done: &HashSet<RowKey>,
    prompt_ids: &[Vec<u32>],
    generator: Generator<'_>,
    on_progress: &mut impl FnMut(&Progress),
    stop: &dyn Fn() -> bool,
) -> Result<Outcome, RunError> {
    let Generator {
        model,
        tokenizer,
        eos_token_id,
        registry,
        cx,
        mut judge,
        cancel,
    } = generator;
    let mut file = out.appender()?;
    // A character budget needs each token's bytes: a table built once from the tokenizer.
    let budget = plan.config.experiment.max_new_chars;
    let token_bytes = budget.map(|_| {
        let table: Vec<Vec<u8>> = (0..model.vocab_size() as u32)
            .map(|t| tokenizer.decode_bytes(&[t]))
            .collect();
        Arc::new(move |t: u32| table.get(t as usize).cloned().unwrap_or_default())
            as Arc<dyn Fn(u32) -> Vec<u8> + Send + Sync>
    });
    // Batches are fixed slices of each cell's rows in grid order (whatever this process runs):
    // a batch holds the same rows in every run, resumed or sharded, so every row sees exactly
    // the same arithmetic. A batch with any wanted row is generated whole; only its wanted
    // rows (this shard's, not yet written) are written.
    let mine: HashSet<RowRef> = plan.rows.iter().copied().collect();
    let all = rows(
        plan.cells.len(),
        plan.prompts.len(),
        plan.config.experiment.samples,
    );
    let per_cell = plan.prompts.len() * plan.config.experiment.samples;
    let want = |r: &RowRef| mine.contains(r) && !done.contains(&plan.key(r));
    let batch_size = plan.batch_size;
    let mut batches: Vec<(Vec<RowRef>, Vec<bool>)> = vec![];
    let mut pending = 0;
    // A model whose rows do not depend on their batch (the native engine) gets full batches of
    // wanted rows only, rows of every sampling cell packed together in grid order, so a sweep
    // runs at batch throughput; searches decode one prompt at a time and keep per-cell batches.
    let packed = model.batch_invariant();
    if packed {
        let is_search = |r: &RowRef| plan.cells[r.cell].built.is_search();
        let (search, sample): (Vec<RowRef>, Vec<RowRef>) =
            all.iter().copied().filter(|r| want(r)).partition(is_search);
        pending = search.len() + sample.len();
        for chunk in sample.chunks(batch_size) {
            batches.push((chunk.to_vec(), vec![true; chunk.len()]));
        }
        for cell_rows in search.chunk_by(|a, b| a.cell == b.cell) {
            for chunk in cell_rows.chunks(batch_size) {
                batches.push((chunk.to_vec(), vec![true; chunk.len()]));
            }
        }
    } else {
        for cell_rows in all.chunks(per_cell.max(1)) {
            for chunk in cell_rows.chunks(batch_size) {
                let wanted: Vec<bool> = chunk.iter().map(want).collect();
                let n = wanted.iter().filter(|&&w| w).count();
                if n > 0 {
                    pending += n;
                    batches.push((chunk.to_vec(), wanted));
                }
            }
        }
    }
    let skipped = plan.rows.len() - pending;
    let mut progress = Progress {
        rows_done: skipped,
        rows_total: plan.rows.len(),
        tokens: 0,
        seconds: 0.0,
    };
    on_progress(&progress);
    let started = Instant::now();
    let mut generated = 0;
    let mut interrupted = false;
    let mut batches_run = 0;
    for (batch, wanted) in batches {
        if stop() {
            interrupted = true;
            break;
        }
        let cell = &plan.cells[batch[0].cell];
        let seeds: Vec<u64> = batch
            .iter()
            .map(|r| {
                let cell = &plan.cells[r.cell];
                row_seed(
                    plan.config.experiment.seed,
                    r.prompt,
                    &cell.strategy,
                    cell.temperature,
                    r.sample,
                )
            })
            .collect();
        let req = GenerateRequest {
            prompts: batch.iter().map(|r| prompt_ids[r.prompt].clone()).collect(),
            max_new_tokens: plan.config.experiment.token_cap(),
            seeds: seeds.clone(),
            eos_token_id,
            max_new_chars: budget,
            stop: StopStrings {
                strings: vec![],
                token_bytes: token_bytes.clone(),
            },
            cancel: cancel.clone(),
            ..Default::default()
        };
        let mut decoding = if cell.built.is_search() {
            cell.built.build(registry, cx, batch.len())
        } else {
            // One pipeline per row, from the row's own cell (packed batches mix cells).
            batch
                .iter()
                .map(|r| plan.cells[r.cell].built.pipeline(registry, cx))
                .collect::<Result<_, _>>()
                .map(Decoding::Sample)
        }
        .map_err(|e| RunError(e.to_string()))?;
        let t0 = Instant::now();
        let mut last_token_at = vec![0.0f64; batch.len()];
        let gens = match decode(model, &req, &mut decoding, |row, _| {
            last_token_at[row] = t0.elapsed().as_secs_f64();
        }) {
            Ok(gens) => gens,
            // Cancelled mid-batch: nothing of it is written, as when stopped between batches.
            Err(e) if e.is::<Cancelled>() => {
                interrupted = true;
                break;
            }
            Err(e) => return Err(RunError(format!("generation failed: {e}"))),
        };
        let batch_seconds = t0.elapsed().as_secs_f64();
        let mut chunk = vec![];
        let mut token_records = vec![];
        for (i, (r, g)) in batch.iter().zip(&gens).enumerate() {
            if !wanted[i] {
                continue;
            }
            let text = cut_to_budget(tokenizer.decode(&g.tokens), budget);
            let judged = match judge.as_deref_mut() {
                Some(j) => j
                    .perplexity(&plan.prompts[r.prompt], &text)
                    .map_err(|e| RunError(format!("judge: {e}")))?,
                None => None,
            };
            let secs = if g.tokens.is_empty() {
                batch_seconds
            } else {
                last_token_at[i]
            };
            let row = generation_row(plan, r, seeds[i], &text, g, judged, secs);
            token_records.push(TokenRecord::of(
                &row,
                &g.tokens,
                token_texts(tokenizer, &g.tokens),
                &g.logprobs,
                &g.sampling_logprobs,
                &g.entropies,
            ));
            chunk.push(row);
            progress.tokens += g.tokens.len();
        }
        // The batch's records, then its rows: a row in the CSV always has its records.
        out.append_jsonl(TOKENS, &token_records)?;
        if plan.references.is_some() {
            let feats = features(plan, &chunk, model, tokenizer, judge.as_deref_mut())?;
            out.append_jsonl(FEATURES, &feats)?;
        }
        // One write per batch, each record complete.
        file.append(&chunk)?;
        let written = chunk.len();
        generated += written;
        batches_run += 1;
        progress.rows_done += written;
        progress.seconds = started.elapsed().as_secs_f64();
        on_progress(&progress);
    }
    file.finish()?;
    let mut human = vec![];
    if let (Some(refs), false) = (&plan.references, interrupted) {
        let (rows, tokens) = human_rows(
            plan,
            refs,
            prompt_ids,
            model,
            tokenizer,
            judge.as_deref_mut(),
        )?;
        let feats = features(plan, &rows, model, tokenizer, judge)?;
        // The human rows' records before the rows: a folder with human.csv has them.
        out.append_jsonl(TOKENS, &tokens)?;
        out.append_jsonl(FEATURES, &feats)?;
        out.write_human(&rows)?;
        human = rows;
    }
    let mut records = out.read_generations()?;
    if packed && !interrupted {
        // Packed batches append rows out of grid order: put a finished run back in it.
        let order: HashMap<RowKey, usize> = all
            .iter()
            .enumerate()
            .map(|(i, r)| (plan.key(r), i))
            .collect();
        let at = |rec: &GenerationRow| order.get(&rec.key()).map_or((0, 0), |&i| (1, i));
        if !records.is_sorted_by_key(at) {
            records.sort_by_cached_key(at); // stable: rows of other grids (--force) stay first
            out.write_generations(&records)?;
        }
    }
    if !interrupted {
        // One record per row, in the CSV's order, then the human rows' records (the last
        // appended of each key: the ones just computed).
        let all_rows = || records.iter().chain(&human);
        out.write_jsonl(TOKENS, &in_row_order(out.read_tokens()?, all_rows()))?;
        if plan.references.is_some() {
            out.write_jsonl(FEATURES, &in_row_order(out.read_features()?, all_rows()))?;
        }
    }
    out.write_summary(&records)?;
    Ok(Outcome {
        generated,
        skipped,
        interrupted,
        batches: batches_run,
    })
}
