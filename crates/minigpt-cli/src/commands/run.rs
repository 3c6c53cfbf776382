//! `minigpt run`: the experiment runner, and `minigpt merge` for sharded runs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use minigpt_decode::{BuildContext, Registry};
use minigpt_eval::runner::{self, Judge, Plan};
use minigpt_eval::{SweepConfig, grid};
use minigpt_model::{GptLm, score};
use minigpt_tokenizer::Tokenizer;
use serde_json::json;

use crate::cli::{MergeArgs, RunArgs};
use crate::interrupt::Interrupted;

/// A second model that scores continuations (`judge_perplexity`). The prompt and the
/// continuation are encoded separately with the judge's tokenizer and joined.
struct GptJudge {
    lm: GptLm,
    tok: Arc<dyn Tokenizer>,
}

impl Judge for GptJudge {
    fn perplexity(&mut self, prompt: &str, continuation: &str) -> Result<Option<f64>, String> {
        let p = self.tok.encode(prompt).map_err(|e| e.to_string())?;
        let c = self.tok.encode(continuation).map_err(|e| e.to_string())?;
        if c.is_empty() || p.is_empty() {
            return Ok(None);
        }
        let all: Vec<u32> = p.iter().chain(&c).copied().collect();
        let s = score(&self.lm, &all, (self.lm.config.n_positions / 2).max(1));
        let lp = &s.logprobs[p.len() - 1..];
        Ok(Some((-lp.iter().sum::<f64>() / lp.len() as f64).exp()))
    }
}

/// UTC time as RFC 3339 (`2026-11-27T19:05:00Z`), without a date crate.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn meta(device: &str, started: &str) -> serde_json::Value {
    json!({
        "minigpt_version": env!("CARGO_PKG_VERSION"),
        "burn_version": "0.22.1",
        "git_commit": option_env!("MINIGPT_GIT_COMMIT").unwrap_or("unknown"),
        "device": device,
        "threads": minigpt_model::native::threads(),
        "started": started,
        "command": std::env::args().collect::<Vec<_>>().join(" "),
    })
}

/// Runs `minigpt run`.
pub fn run(args: RunArgs) -> Result<()> {
    // Everything is checked before the output folder is created.
    let cfg = SweepConfig::load(&args.config)?;
    let shard = args
        .shard
        .as_deref()
        .map(grid::parse_shard)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let prompts = cfg
        .prompt_texts()
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;
    let (mut lm, tok) = crate::load::load_at(
        cfg.model.path.as_deref(),
        &cfg.model.device,
        &cfg.model.dtype,
    )
    .with_context(|| format!("{}: [model]", args.config.display()))?;
    let mut judge = match &cfg.judge {
        Some(j) => {
            let (jlm, jtok) = crate::load::load_at(j.path.as_deref(), &j.device, &j.dtype)
                .with_context(|| format!("{}: [judge]", args.config.display()))?;
            Some(GptJudge { lm: jlm, tok: jtok })
        }
        None => None,
    };
    let registry = Registry::builtin();
    let encode = |s: &str| tok.encode(s).unwrap_or_default();
    let cx = BuildContext {
        encode: Some(&encode),
    };
    let strategies = runner::load_strategies(&cfg, &args.config, &registry, &cx)?;
    let model_name = crate::load::short_name(cfg.model.path.as_deref());
    let judge_name = cfg
        .judge
        .as_ref()
        .map(|j| crate::load::short_name(j.path.as_deref()));
    let plan = Plan::new(
        cfg.clone(),
        &model_name,
        judge_name.as_deref(),
        prompts,
        &strategies,
        &registry,
        &cx,
        shard,
    )?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("experiments/runs").join(&cfg.experiment.name));
    let started = utc_now();
    let meta = meta(&cfg.model.device, &started);
    let done = runner::prepare(&plan, &out, args.force, &meta)?;
    let outcome = generate_rows(
        &plan,
        &out,
        &done,
        &mut lm,
        tok.as_ref(),
        &registry,
        &cx,
        judge.as_mut(),
    )?;
    let finished = utc_now();
    runner::write_run_json(
        &plan,
        &out,
        &meta,
        (!outcome.interrupted).then_some(&finished),
    )?;
    eprintln!(
        "{} {} rows ({} generated now in {} model batches, {} already there) in {}: generations.csv, summary.csv, plots/",
        if outcome.interrupted {
            "interrupted after"
        } else {
            "done:"
        },
        outcome.generated + outcome.skipped,
        outcome.generated,
        outcome.batches,
        outcome.skipped,
        out.display()
    );
    if outcome.interrupted {
        return Err(Interrupted("run the same command again to finish the remaining rows").into());
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn generate_rows(
    plan: &Plan,
    out: &Path,
    done: &std::collections::HashSet<runner::Key>,
    lm: &mut GptLm,
    tok: &dyn Tokenizer,
    registry: &Registry,
    cx: &BuildContext<'_>,
    judge: Option<&mut GptJudge>,
) -> Result<runner::Outcome> {
    crate::interrupt::install().context("cannot install the Ctrl-C handler")?;
    let bar = ProgressBar::new(plan.rows.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} rows | {msg} | ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let plain = !std::io::stderr().is_terminal();
    let mut last_line = 0usize;
    let eos = lm.config.eos_token_id.or(tok.eos_token_id());
    let outcome = runner::run(
        plan,
        out,
        done,
        lm,
        tok,
        eos,
        registry,
        cx,
        judge.map(|j| j as &mut dyn Judge),
        |p| {
            bar.set_position(p.rows_done as u64);
            let rate = p.tokens as f64 / p.seconds.max(1e-9);
            bar.set_message(format!("{rate:.0} tokens/s"));
            // Without a terminal, a line per tenth of the grid.
            let tenth = (p.rows_done * 10) / p.rows_total.max(1);
            if plain && tenth > last_line {
                last_line = tenth;
                eprintln!(
                    "{}/{} rows, {rate:.0} tokens/s, {:.0} s",
                    p.rows_done, p.rows_total, p.seconds
                );
            }
        },
        &crate::interrupt::requested,
    )?;
    bar.finish_and_clear();
    Ok(outcome)
}

/// Runs `minigpt merge`.
pub fn merge(args: MergeArgs) -> Result<()> {
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

/// Runs `minigpt eval`.
pub fn eval(args: crate::cli::EvalArgs) -> Result<()> {
    use minigpt_eval::compare::{EvalConfig, write_comparison};
    let cfg = EvalConfig::load(&args.config)?;
    let at = args.config.display().to_string();
    let prompts = cfg
        .sweep_for(false)
        .prompt_texts()
        .map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
    let heldout = cfg
        .heldout_text()
        .map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
    let registry = Registry::builtin();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("experiments/runs").join(&cfg.experiment.name));
    let baseline_dir = cfg.baseline.path.clone().unwrap_or_default();
    let baseline_name = crate::load::short_name(Some(&baseline_dir));
    // Load and check everything before the first file is written.
    let mut sides = vec![];
    for is_baseline in [false, true] {
        let sweep = cfg.sweep_for(is_baseline);
        let (lm, tok) = crate::load::load_at(
            sweep.model.path.as_deref(),
            &sweep.model.device,
            &sweep.model.dtype,
        )
        .with_context(|| {
            format!(
                "{at}: [{}]",
                if is_baseline { "baseline" } else { "candidate" }
            )
        })?;
        let (jlm, jtok) = crate::load::load_at(
            Some(&baseline_dir),
            &cfg.baseline.device,
            &cfg.baseline.dtype,
        )
        .with_context(|| format!("{at}: [baseline]"))?;
        let name = crate::load::short_name(sweep.model.path.as_deref());
        sides.push((
            is_baseline,
            sweep,
            lm,
            tok,
            GptJudge { lm: jlm, tok: jtok },
            name,
        ));
    }
    if sides[0].5 == sides[1].5 {
        bail!(
            "{at}: the candidate and the baseline are both named {:?}: give them folders with different names",
            sides[0].5
        );
    }
    let mut plans = vec![];
    for (_, sweep, _, tok, _, name) in &sides {
        let encode = |s: &str| tok.encode(s).unwrap_or_default();
        let cx = BuildContext {
            encode: Some(&encode),
        };
        let strategies = runner::load_strategies(sweep, &args.config, &registry, &cx)?;
        plans.push(Plan::new(
            sweep.clone(),
            name,
            Some(&baseline_name),
            prompts.clone(),
            &strategies,
            &registry,
            &cx,
            None,
        )?);
    }
    let started = utc_now();
    for ((is_baseline, sweep, lm, tok, judge, _), plan) in sides.iter_mut().zip(&plans) {
        let dir = out.join(if *is_baseline {
            "baseline"
        } else {
            "candidate"
        });
        let meta = meta(&sweep.model.device, &started);
        let done = runner::prepare(plan, &dir, args.force, &meta)?;
        eprintln!(
            "{}: {}",
            if *is_baseline {
                "baseline"
            } else {
                "candidate"
            },
            plan.model_name
        );
        let encode = |s: &str| tok.encode(s).unwrap_or_default();
        let cx = BuildContext {
            encode: Some(&encode),
        };
        let outcome = generate_rows(
            plan,
            &dir,
            &done,
            lm,
            tok.as_ref(),
            &registry,
            &cx,
            Some(judge),
        )?;
        runner::write_run_json(
            plan,
            &dir,
            &meta,
            (!outcome.interrupted).then_some(&utc_now()),
        )?;
        if outcome.interrupted {
            return Err(Interrupted("interrupted: run the same command again to finish").into());
        }
    }
    // Bits per byte of both models on the held-out text.
    let mut bpb_rows = String::from("model,tokens,bytes,bits_per_byte,stride\n");
    let mut bpb = serde_json::Map::new();
    if let Some(text) = &heldout {
        for (_, _, lm, tok, _, name) in &sides {
            let ids = tok.encode(text)?;
            if ids.len() < 2 {
                bail!("{at}: heldout: the text is too short to score");
            }
            let stride = (lm.config.n_positions / 2).max(1);
            let s = score(lm, &ids, stride);
            let bytes = tok.decode_bytes(&ids[1..]).len();
            let v = s.bits_per_byte(bytes);
            bpb_rows.push_str(&minigpt_eval::csv::record(&[
                name.clone(),
                ids.len().to_string(),
                bytes.to_string(),
                format!("{v}"),
                stride.to_string(),
            ]));
            bpb.insert(name.clone(), json!(v));
            eprintln!(
                "{name}: {v:.4} bits per byte on the held-out text ({} tokens)",
                ids.len()
            );
        }
        runner::atomic_write(&out.join("bits_per_byte.csv"), bpb_rows.as_bytes())?;
    }
    write_comparison(&out, &out.join("candidate"), &out.join("baseline"))?;
    eprintln!(
        "done: {} (comparison.csv, bits_per_byte.csv, plots/; each model's run in candidate/ and baseline/)",
        out.display()
    );
    Ok(())
}
