//! Merging the shard folders of one config into one run folder.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::config::differing_keys;
use crate::error::RunError;
use crate::records::{FeatureRecord, TokenRecord, in_row_order};
use crate::row::GenerationRow;
use crate::row::RowKey;
use crate::run_dir::{FEATURES, MergedPart, RUN_JSON, RunDir, RunInfo, TOKENS};

/// What a merge wrote.
#[derive(Debug, Clone, Copy)]
pub struct Merged {
    /// Rows in the merged folder.
    pub rows: usize,
    /// Rows in the whole grid.
    pub rows_in_grid: usize,
}

/// Merges the run folders `parts` (shards of one grid) into the new folder `out`: the rows of
/// all parts once each, in the grid's order, with `run.json` (finished at `finished`),
/// `summary.csv` and the plots. Refuses parts of different grids, naming the keys that differ.
pub fn merge(parts: &[PathBuf], out: &Path, finished: &str) -> Result<Merged, RunError> {
    if out.exists() {
        return Err(RunError(format!(
            "{} already exists: merge into a new folder",
            out.display()
        )));
    }
    let mut first: Option<RunInfo> = None;
    let mut merged_from = vec![];
    let mut rows: Vec<GenerationRow> = vec![];
    let mut seen = HashSet::new();
    let mut human: Vec<GenerationRow> = vec![];
    let mut tokens: Vec<TokenRecord> = vec![];
    let mut features: Vec<FeatureRecord> = vec![];
    // Each part is locked while it is read: a shard still running is refused, not half-merged.
    let mut _locks = vec![];
    let mut locked = HashSet::new();
    for dir in parts {
        let part = RunDir::new(dir);
        if !part.file(RUN_JSON).is_file() {
            return Err(RunError(format!(
                "{} is not a run folder (no run.json)",
                dir.display()
            )));
        }
        // (Once per folder: a part named twice would otherwise be held against itself.)
        let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        if locked.insert(canonical) {
            _locks.push(part.lock()?);
        }
        let info = part.read_info()?;
        if let Some(first) = &first {
            let keys = differing_keys(&first.grid, &info.grid);
            if !keys.is_empty() {
                return Err(RunError(format!(
                    "{} is a run of a different config than {} (differs in: {})",
                    dir.display(),
                    parts[0].display(),
                    keys.join(", ")
                )));
            }
        }
        merged_from.push(MergedPart {
            dir: dir.display().to_string(),
            shard: info.shard.clone(),
        });
        for row in part.read_generations()? {
            if seen.insert(row.key()) {
                rows.push(row);
            }
        }
        // Every shard scores all the human continuations (the same rows): keep the first.
        if human.is_empty() {
            human = part.read_human()?;
        }
        tokens.extend(part.read_tokens()?);
        features.extend(part.read_features()?);
        first.get_or_insert(info);
    }
    // Canonical order: the grid's (cells in order of first appearance, then prompt, sample).
    let mut cells: Vec<RowKey> = vec![];
    for r in &rows {
        let c = r.key();
        if !cells.iter().any(|x: &RowKey| x.cell() == c.cell()) {
            cells.push(c);
        }
    }
    rows.sort_by_cached_key(|r| {
        let k = r.key();
        (
            cells.iter().position(|c| c.cell() == k.cell()),
            r.prompt_id,
            r.sample,
        )
    });
    let mut info = first.unwrap_or_default();
    info.shard = None;
    info.merged_from = Some(merged_from);
    info.rows_in_this_run = rows.len();
    info.finished = Some(finished.to_string());
    let run = RunDir::new(out);
    let _lock = run.lock()?;
    run.write_generations(&rows)?;
    if !human.is_empty() {
        run.write_human(&human)?;
    }
    // The records in the merged rows' order, then the human rows'; the first part's copy of
    // each (reversed, since the last of a key wins).
    let all_rows = || rows.iter().chain(&human);
    let tokens = in_row_order(tokens.into_iter().rev(), all_rows());
    if !tokens.is_empty() {
        run.write_jsonl(TOKENS, &tokens)?;
    }
    let features = in_row_order(features.into_iter().rev(), all_rows());
    if !features.is_empty() {
        run.write_jsonl(FEATURES, &features)?;
    }
    run.write_info(&info)?;
    run.write_summary(&rows)?;
    Ok(Merged {
        rows: rows.len(),
        rows_in_grid: info.rows_in_grid,
    })
}
