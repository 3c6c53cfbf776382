//! The sweep runner: generates every row of the grid into `generations.csv` (appended and
//! flushed row by row, resumable), then writes `summary.csv`, `run.json` and the plots.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use minigpt_decode::{
    BuildContext, Decoding, GenerateRequest, Generation, LanguageModel, Registry, Strategy, decode,
};
use minigpt_tokenizer::Tokenizer;
use serde_json::{Value, json};

use crate::config::{SweepConfig, differing_keys};
use crate::grid::{Cell, RowRef, cells, row_seed, rows, shard, temperature_str};
use crate::metrics;

/// Columns of `generations.csv`, in order (the README's "Experiments" defines each; the first eight identify the row).
pub const COLUMNS: [&str; 24] = [
    "model",
    "prompt_id",
    "strategy",
    "temperature",
    "sample",
    "seed",
    "prompt",
    "text",
    "n_tokens",
    "finish_reason",
    "rep_2",
    "rep_3",
    "rep_4",
    "diversity",
    "distinct_1",
    "distinct_2",
    "repetition_rate",
    "mean_logprob",
    "perplexity",
    "mean_entropy",
    "mean_sampling_entropy",
    "judge_perplexity",
    "seconds",
    "tokens_per_s",
];

/// Words before a continuation word that `repetition_rate` looks at.
pub const REPETITION_WINDOW: usize = 32;

/// The file names of a run folder.
pub const GENERATIONS: &str = "generations.csv";
/// See [`GENERATIONS`].
pub const SUMMARY: &str = "summary.csv";
/// See [`GENERATIONS`].
pub const RUN_JSON: &str = "run.json";

/// A run that cannot start or finish; the message says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunError(pub String);

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> RunError {
    RunError(format!("cannot {what} {}: {e}", path.display()))
}

/// Scores continuations with a second model (`judge_perplexity`).
pub trait Judge {
    /// Perplexity of `continuation` given `prompt`; `None` for an empty continuation.
    fn perplexity(&mut self, prompt: &str, continuation: &str) -> Result<Option<f64>, String>;
}

/// Everything a run does, resolved and checked before any file is written.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The config.
    pub config: SweepConfig,
    /// The `model` column.
    pub model_name: String,
    /// The prompts (`prompt_id` indexes them).
    pub prompts: Vec<String>,
    /// The grid's cells.
    pub cells: Vec<Cell>,
    /// The rows this process runs (all, or one shard), in canonical order.
    pub rows: Vec<RowRef>,
    /// Rows in the whole grid.
    pub grid_rows: usize,
    /// `(k, n)` for `--shard k/n`.
    pub shard: Option<(usize, usize)>,
    /// What determines the generated rows: a run folder only takes rows of an equal one.
    pub fingerprint: Value,
}

/// Loads the strategies a config names; errors name the config and the entry. A name is a
/// file `<strategies_dir>/<name>.toml` when there is one, else the built-in strategy of that
/// name; an entry ending in `.toml` is a file.
pub fn load_strategies(
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

impl Plan {
    /// Builds the grid. `judge_name` is part of the fingerprint.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: SweepConfig,
        model_name: &str,
        judge_name: Option<&str>,
        prompts: Vec<String>,
        strategies: &[(String, Strategy)],
        registry: &Registry,
        cx: &BuildContext<'_>,
        shard_of: Option<(usize, usize)>,
    ) -> Result<Self, RunError> {
        if config.sweep.temperatures.is_empty()
            && strategies.iter().any(|(_, s)| !s.is_deterministic())
        {
            return Err(RunError(
                "sweep.temperatures is empty but a sampling strategy is listed: give at least one temperature".into(),
            ));
        }
        let cells = cells(strategies, &config.sweep.temperatures);
        let all = rows(cells.len(), prompts.len(), config.experiment.samples);
        let grid_rows = all.len();
        let rows = match shard_of {
            Some((k, n)) => shard(&all, k, n),
            None => all,
        };
        let mut chains = serde_json::Map::new();
        for (name, s) in strategies {
            let chain = s.chain(registry, cx).map_err(|e| RunError(e.to_string()))?;
            chains.insert(name.clone(), Value::String(chain));
        }
        let e = &config.experiment;
        // Named like the config's keys, so a refusal can name what changed.
        let fingerprint = json!({
            "experiment": {
                "seed": e.seed,
                "samples": e.samples,
                "max_new_tokens": e.max_new_tokens,
            },
            "model": model_name,
            "judge": judge_name,
            "prompts": prompts,
            "sweep": {
                "temperatures": config.sweep.temperatures,
                "strategies": chains,
            },
        });
        Ok(Self {
            config,
            model_name: model_name.to_string(),
            prompts,
            cells,
            rows,
            grid_rows,
            shard: shard_of,
            fingerprint,
        })
    }

    /// The key of a row: model, prompt id, strategy, temperature, sample.
    pub fn key(&self, r: &RowRef) -> Key {
        let c = &self.cells[r.cell];
        (
            self.model_name.clone(),
            r.prompt.to_string(),
            c.strategy.clone(),
            temperature_str(c.temperature),
            r.sample.to_string(),
        )
    }
}

/// `(model, prompt_id, strategy, temperature, sample)` as written in the CSV.
pub type Key = (String, String, String, String, String);

/// The key of a CSV record.
pub fn record_key(rec: &[String]) -> Key {
    (
        rec[0].clone(),
        rec[1].clone(),
        rec[2].clone(),
        rec[3].clone(),
        rec[4].clone(),
    )
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

/// Reads the records of a run folder's `generations.csv`, cutting a torn last record off the
/// file. Checks the header.
pub fn read_generations(path: &Path, repair: bool) -> Result<Vec<Vec<String>>, RunError> {
    let text = std::fs::read_to_string(path).map_err(|e| io("read", path, e))?;
    let (mut records, complete) = crate::csv::parse(&text).map_err(|e| io("parse", path, e))?;
    if complete < text.len() && repair {
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| io("repair", path, e))?;
        f.set_len(complete as u64)
            .map_err(|e| io("repair", path, e))?;
    }
    if records.is_empty() || records[0] != COLUMNS {
        return Err(RunError(format!(
            "{}: not a minigpt generations file (its header differs); use another --out folder",
            path.display()
        )));
    }
    records.remove(0);
    if let Some(bad) = records.iter().position(|r| r.len() != COLUMNS.len()) {
        return Err(RunError(format!(
            "{}: record {} has {} fields, not {}",
            path.display(),
            bad + 1,
            records[bad].len(),
            COLUMNS.len()
        )));
    }
    Ok(records)
}

/// Prepares the output folder: a new one is created with `run.json` and the CSV header; an
/// existing run of the same fingerprint is resumed; a different one is refused (naming the
/// keys) unless `force`. Returns the keys already finished.
pub fn prepare(
    plan: &Plan,
    out: &Path,
    force: bool,
    meta: &Value,
) -> Result<HashSet<Key>, RunError> {
    let run_json = out.join(RUN_JSON);
    let gens = out.join(GENERATIONS);
    if out.exists() {
        if !run_json.is_file() {
            let empty = std::fs::read_dir(out)
                .map_err(|e| io("read", out, e))?
                .next()
                .is_none();
            if !empty {
                return Err(RunError(format!(
                    "{} exists and is not a minigpt run folder (no run.json): choose another --out",
                    out.display()
                )));
            }
        } else {
            let old: Value = serde_json::from_str(
                &std::fs::read_to_string(&run_json).map_err(|e| io("read", &run_json, e))?,
            )
            .map_err(|e| io("parse", &run_json, e))?;
            let keys = differing_keys(&old["grid"], &plan.fingerprint);
            if !keys.is_empty() && !force {
                return Err(RunError(format!(
                    "{} holds a run of a different config (differs in: {}): use another --out, or --force to add to it",
                    out.display(),
                    keys.join(", ")
                )));
            }
        }
    }
    std::fs::create_dir_all(out).map_err(|e| io("create", out, e))?;
    write_run_json(plan, out, meta, None)?;
    let mut done = HashSet::new();
    if gens.is_file() {
        for rec in read_generations(&gens, true)? {
            done.insert(record_key(&rec));
        }
    } else {
        let header = crate::csv::record(&COLUMNS);
        atomic_write(&gens, header.as_bytes())?;
    }
    Ok(done)
}

/// Writes `run.json`: the resolved config, the grid fingerprint, `meta` (versions, device,
/// start time...) and, when finished, the end time.
pub fn write_run_json(
    plan: &Plan,
    out: &Path,
    meta: &Value,
    finished: Option<&str>,
) -> Result<(), RunError> {
    let v = json!({
        "config": plan.config,
        "grid": plan.fingerprint,
        "shard": plan.shard.map(|(k, n)| format!("{k}/{n}")),
        "rows_in_grid": plan.grid_rows,
        "rows_in_this_run": plan.rows.len(),
        "meta": meta,
        "finished": finished,
    });
    let text = serde_json::to_string_pretty(&v).map_err(|e| io("encode", out, e))?;
    atomic_write(&out.join(RUN_JSON), text.as_bytes())
}

/// Writes a file atomically and durably with `atomic-write-file` (a temporary sibling, fsync,
/// rename, fsync of the folder): a crash leaves the old file or the new one, never a torn one.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
    let write = || -> std::io::Result<()> {
        let mut file = atomic_write_file::AtomicWriteFile::open(path)?;
        file.write_all(bytes)?;
        file.commit()
    };
    write().map_err(|e| io("write", path, e))
}

/// A number as the CSVs write it: shortest round-trip decimal, `-0` as `0`, empty for none.
pub fn opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, |x| format!("{}", x + 0.0))
}

/// The mean of the values, `None` for none.
pub(crate) fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The CSV fields of one generated row.
#[allow(clippy::too_many_arguments)]
pub fn row_fields(
    plan: &Plan,
    r: &RowRef,
    seed: u64,
    text: &str,
    g: &Generation,
    judge_perplexity: Option<f64>,
    seconds: f64,
) -> Vec<String> {
    let cell = &plan.cells[r.cell];
    let prompt = &plan.prompts[r.prompt];
    let words = metrics::words(text);
    let prompt_words = metrics::words(prompt);
    let mean_logprob = mean(&g.logprobs);
    vec![
        plan.model_name.clone(),
        r.prompt.to_string(),
        cell.strategy.clone(),
        temperature_str(cell.temperature),
        r.sample.to_string(),
        seed.to_string(),
        prompt.clone(),
        text.to_string(),
        g.tokens.len().to_string(),
        g.finish_reason.as_str().to_string(),
        opt(metrics::rep_n(&words, 2)),
        opt(metrics::rep_n(&words, 3)),
        opt(metrics::rep_n(&words, 4)),
        opt(metrics::diversity(&words)),
        opt(metrics::distinct_n(&words, 1)),
        opt(metrics::distinct_n(&words, 2)),
        opt(metrics::repetition_rate(
            &prompt_words,
            &words,
            REPETITION_WINDOW,
        )),
        opt(mean_logprob),
        opt(mean_logprob.map(|m| (-m).exp())),
        opt(mean(&g.entropies)),
        opt(mean(&g.sampling_entropies)),
        opt(judge_perplexity),
        format!("{seconds:.4}"),
        if seconds > 0.0 {
            format!("{:.2}", g.tokens.len() as f64 / seconds)
        } else {
            String::new()
        },
    ]
}

/// Generates every unfinished row of `plan` into `out`, a batch (rows of one cell) at a time,
/// the batch's rows appended in one write and flushed as soon as it is done (a kill loses at
/// most the batch in flight; a torn last record is cut off by the next run). `stop` is polled between
/// batches. Writes the summary and plots at the end (also when stopped).
#[allow(clippy::too_many_arguments)]
pub fn run(
    plan: &Plan,
    out: &Path,
    done: &HashSet<Key>,
    model: &mut dyn LanguageModel,
    tokenizer: &dyn Tokenizer,
    eos_token_id: Option<u32>,
    registry: &Registry,
    cx: &BuildContext<'_>,
    mut judge: Option<&mut dyn Judge>,
    mut on_progress: impl FnMut(&Progress),
    stop: &dyn Fn() -> bool,
) -> Result<Outcome, RunError> {
    let gens_path = out.join(GENERATIONS);
    let mut file = OpenOptions::new()
        .append(true)
        .open(&gens_path)
        .map_err(|e| io("open", &gens_path, e))?;
    let prompt_ids: Vec<Vec<u32>> = plan
        .prompts
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
        .collect::<Result<_, _>>()?;
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
    let batch_size = plan.config.experiment.batch_size;
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
            max_new_tokens: plan.config.experiment.max_new_tokens,
            seeds: seeds.clone(),
            eos_token_id,
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
        let gens = decode(model, &req, &mut decoding, |row, _| {
            last_token_at[row] = t0.elapsed().as_secs_f64();
        })
        .map_err(|e| RunError(format!("generation failed: {e}")))?;
        let batch_seconds = t0.elapsed().as_secs_f64();
        let mut chunk = String::new();
        let mut written = 0;
        for (i, (r, g)) in batch.iter().zip(&gens).enumerate() {
            if !wanted[i] {
                continue;
            }
            written += 1;
            let text = tokenizer.decode(&g.tokens);
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
            let fields = row_fields(plan, r, seeds[i], &text, g, judged, secs);
            chunk.push_str(&crate::csv::record(&fields));
            progress.tokens += g.tokens.len();
        }
        // One write per batch, each record complete: a kill leaves whole rows and at most a
        // torn tail, which the next run cuts off.
        file.write_all(chunk.as_bytes())
            .and_then(|_| file.flush())
            .map_err(|e| io("append to", &gens_path, e))?;
        generated += written;
        batches_run += 1;
        progress.rows_done += written;
        progress.seconds = started.elapsed().as_secs_f64();
        on_progress(&progress);
    }
    file.sync_all().map_err(|e| io("sync", &gens_path, e))?;
    drop(file);
    if packed && !interrupted {
        // Packed batches append rows out of grid order: put a finished run back in it.
        let order: HashMap<Key, usize> = all
            .iter()
            .enumerate()
            .map(|(i, r)| (plan.key(r), i))
            .collect();
        let mut records = read_generations(&gens_path, false)?;
        let at = |rec: &Vec<String>| order.get(&record_key(rec)).map_or((0, 0), |&i| (1, i));
        if !records.is_sorted_by_key(at) {
            records.sort_by_key(at); // stable: rows of other grids (--force) stay first
            let mut text = crate::csv::record(&COLUMNS);
            for r in &records {
                text.push_str(&crate::csv::record(r));
            }
            atomic_write(&gens_path, text.as_bytes())?;
        }
    }
    crate::summary::write_summary(out)?;
    Ok(Outcome {
        generated,
        skipped,
        interrupted,
        batches: batches_run,
    })
}
