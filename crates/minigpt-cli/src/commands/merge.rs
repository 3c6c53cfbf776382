//! `minigpt merge`: shard folders of one config into one run folder.

use anyhow::{Context, Result, bail};
use minigpt_eval::runner;
use serde_json::json;

use super::run_info::utc_now;
use crate::cli::MergeArgs;

/// Runs `minigpt merge`.
pub fn run(args: MergeArgs) -> Result<()> {
    if args.out.exists() {
        bail!(
            "{} already exists: merge into a new folder",
            args.out.display()
        );
    }
    let mut grid_json: Option<serde_json::Value> = None;
    let mut run_json: Option<serde_json::Value> = None;
    let mut records: Vec<Vec<String>> = vec![];
    let mut seen = std::collections::HashSet::new();
    let mut shards = vec![];
    for dir in &args.parts {
        let rj = dir.join(runner::RUN_JSON);
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&rj)
                .with_context(|| format!("{} is not a run folder (no run.json)", dir.display()))?,
        )
        .with_context(|| format!("cannot parse {}", rj.display()))?;
        match &grid_json {
            None => grid_json = Some(v["grid"].clone()),
            Some(g) => {
                let keys = minigpt_eval::config::differing_keys(g, &v["grid"]);
                if !keys.is_empty() {
                    bail!(
                        "{} is a run of a different config than {} (differs in: {})",
                        dir.display(),
                        args.parts[0].display(),
                        keys.join(", ")
                    );
                }
            }
        }
        shards.push(v["shard"].clone());
        if run_json.is_none() {
            run_json = Some(v);
        }
        for rec in runner::read_generations(&dir.join(runner::GENERATIONS), false)? {
            if seen.insert(runner::record_key(&rec)) {
                records.push(rec);
            }
        }
    }
    // Canonical order: the grid's (cell order as first seen, then prompt id, then sample).
    let mut cell_order: Vec<(String, String, String)> = vec![];
    for r in &records {
        let c = (r[0].clone(), r[2].clone(), r[3].clone());
        if !cell_order.contains(&c) {
            cell_order.push(c);
        }
    }
    let pos = |r: &Vec<String>| {
        let c = (r[0].clone(), r[2].clone(), r[3].clone());
        (
            cell_order
                .iter()
                .position(|x| *x == c)
                .unwrap_or(usize::MAX),
            r[1].parse::<usize>().unwrap_or(usize::MAX),
            r[4].parse::<usize>().unwrap_or(usize::MAX),
        )
    };
    records.sort_by_key(pos);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut text = minigpt_eval::csv::record(&runner::COLUMNS);
    for r in &records {
        text.push_str(&minigpt_eval::csv::record(r));
    }
    runner::atomic_write(&args.out.join(runner::GENERATIONS), text.as_bytes())?;
    let mut v = run_json.unwrap_or_default();
    v["shard"] = serde_json::Value::Null;
    v["merged_from"] = json!(
        args.parts
            .iter()
            .zip(&shards)
            .map(|(p, s)| json!({"dir": p.display().to_string(), "shard": s}))
            .collect::<Vec<_>>()
    );
    v["rows_in_this_run"] = json!(records.len());
    v["finished"] = json!(utc_now());
    runner::atomic_write(
        &args.out.join(runner::RUN_JSON),
        serde_json::to_string_pretty(&v)?.as_bytes(),
    )?;
    minigpt_eval::summary::write_summary(&args.out)?;
    let total = v["rows_in_grid"].as_u64().unwrap_or(0) as usize;
    eprintln!(
        "merged {} rows{} into {}",
        records.len(),
        if total > records.len() {
            format!(
                " ({} of the grid's {total} are missing)",
                total - records.len()
            )
        } else {
            String::new()
        },
        args.out.display()
    );
    Ok(())
}
