//! Merging the shard folders of one config into one run folder.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::differing_keys;
use crate::error::RunError;
use crate::grid::parse_shard;
use crate::records::{FeatureRecord, TokenRecord, in_row_order};
use crate::row::GenerationRow;
use crate::row::RowKey;
use crate::run_dir::{
    COMPLETE, Completion, FEATURES, MergedPart, RUN_JSON, RunDir, RunInfo, TOKENS, fingerprint,
    rfc3339,
};

/// What a merge wrote.
#[derive(Debug, Clone)]
pub struct Merged {
    /// Rows in the merged folder.
    pub rows: usize,
    /// Rows in the whole grid.
    pub rows_in_grid: usize,
    /// What was missing (with `allow_partial`): shards without a folder, and folders without a
    /// completion record, each with what it holds.
    pub missing: Vec<String>,
}

/// Merges the run folders `parts` (shards of one grid) into the new folder `out`: the rows of
/// all parts once each, in the grid's order, with `run.json` (finished at `finished`),
/// `summary.csv` and the plots. Refuses parts of different grids, naming the keys that differ.
///
/// Every part must be complete (its `complete.json` matching its grid), and the shards of a
/// sharded run all there (1..N of one N); otherwise the merge is refused with the missing and
/// incomplete shards by index, unless `allow_partial`, which merges what the parts hold and
/// reports what is missing in [`Merged::missing`]. Nothing is written before these checks.
pub fn merge(
    parts: &[PathBuf],
    out: &Path,
    finished: &str,
    allow_partial: bool,
) -> Result<Merged, RunError> {
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
    // Shards seen (K, N) and the parts that are not complete, as messages.
    let mut shards: Vec<(usize, usize, &PathBuf)> = vec![];
    let mut whole = false;
    let mut incomplete: Vec<String> = vec![];
    // The parts' earliest start and latest finish: the merged run's span, the same however
    // late or often the merge runs (the merge's own time is in its `complete.json`).
    let mut span: (Option<SystemTime>, Option<SystemTime>) = (None, None);
    let time = |t: Option<&str>| t.and_then(|t| humantime::parse_rfc3339(t).ok());
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
        let part_rows = part.read_generations()?;
        let complete = part.read_completion()?.is_some_and(|c: Completion| {
            c.fingerprint == fingerprint(&info.grid)
                && c.shard == info.shard
                && c.rows == info.rows_in_this_run
                && part_rows.len() >= c.rows
        });
        let shard = match &info.shard {
            Some(s) => Some(parse_shard(s).map_err(|_| {
                RunError(format!(
                    "{}: run.json has a malformed shard {s:?}",
                    dir.display()
                ))
            })?),
            None => None,
        };
        match shard {
            Some((k, n)) => shards.push((k, n, dir)),
            None => whole |= complete,
        }
        if !complete {
            let what = match shard {
                Some((k, n)) => format!("shard {k}/{n} in {}", dir.display()),
                None => dir.display().to_string(),
            };
            incomplete.push(format!(
                "{what} ({} of {} rows, no {COMPLETE})",
                part_rows.len(),
                info.rows_in_this_run
            ));
        }
        for row in part_rows {
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
        if let Some(t) = time(info.meta["started"].as_str()) {
            span.0 = Some(span.0.map_or(t, |s| s.min(t)));
        }
        if let Some(t) = time(info.finished.as_deref()) {
            span.1 = Some(span.1.map_or(t, |s| s.max(t)));
        }
        first.get_or_insert(info);
    }
    // Every shard of the run, each complete (a complete unsharded part holds them all).
    let mut missing = vec![];
    if !whole && let Some(&(_, n, first_dir)) = shards.first() {
        if let Some((_, other, dir)) = shards.iter().find(|(_, m, _)| *m != n) {
            return Err(RunError(format!(
                "{} is a shard of {other} but {} one of {n}: merge the shards of one split",
                dir.display(),
                first_dir.display()
            )));
        }
        let absent: Vec<String> = (1..=n)
            .filter(|k| !shards.iter().any(|(j, _, _)| j == k))
            .map(|k| k.to_string())
            .collect();
        if !absent.is_empty() {
            missing.push(format!(
                "shards {} of {n} (no folder given)",
                absent.join(", ")
            ));
        }
    }
    missing.extend(incomplete);
    if !missing.is_empty() && !allow_partial {
        return Err(RunError(format!(
            "cannot merge: missing {}: run them to the end (a rerun resumes its folder), or \
             pass --allow-partial to merge what there is",
            missing.join("; ")
        )));
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
    // Started when the first part started; finished when the last part finished, once every
    // part has (else at the merge).
    if let (Some(start), Some(obj)) = (span.0, info.meta.as_object_mut()) {
        obj.insert("started".into(), rfc3339(start).into());
    }
    info.finished = Some(match span.1 {
        Some(end) if missing.is_empty() => rfc3339(end),
        _ => finished.to_string(),
    });
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
    // A merge of every row of the grid is itself complete.
    if missing.is_empty() && rows.len() == info.rows_in_grid {
        run.write_completion(&Completion {
            fingerprint: fingerprint(&info.grid),
            shard: None,
            rows: rows.len(),
            finished: finished.to_string(),
        })?;
    }
    Ok(Merged {
        rows: rows.len(),
        rows_in_grid: info.rows_in_grid,
        missing,
    })
}
