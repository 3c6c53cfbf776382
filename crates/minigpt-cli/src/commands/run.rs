//! `minigpt run`: the experiment runner.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use minigpt_decode::{BuildContext, Registry};
use minigpt_eval::run_dir::utc_now;
use minigpt_eval::{Generator, Judge, Outcome, Plan, RunDir, SweepConfig, grid, scheduler};
use minigpt_model::{ContextPolicy, GptLm};
use minigpt_tokenizer::Tokenizer;

use super::run_info::meta;
use crate::cli::RunArgs;
use crate::interrupt::Interrupted;
use minigpt_model::GptJudge;

/// Runs `minigpt run`.
pub fn run(args: RunArgs) -> Result<()> {
    // Everything is checked before the output folder is created.
    let cfg = SweepConfig::load(&args.config)?;
    let shard = match (args.shard.as_deref(), args.shards) {
        (Some("auto"), shards) => Some(
            scheduler::shard_from_env(shards, &|name| std::env::var(name).ok())
                .map_err(anyhow::Error::msg)?,
        ),
        (Some(_), Some(_)) | (None, Some(_)) => {
            anyhow::bail!("--shards N goes with --shard auto (a K/N shard names its count)")
        }
        (Some(s), None) => Some(grid::parse_shard(s).map_err(anyhow::Error::msg)?),
        (None, None) => None,
    };
    let out = match (&args.out, shard) {
        (Some(out), Some(sh)) => match out.to_str() {
            Some(s) => PathBuf::from(scheduler::fill_shard(s, sh)),
            None => out.clone(),
        },
        (Some(out), None) if out.to_string_lossy().contains("{shard") => anyhow::bail!(
            "--out {}: {{shard}} and {{shards}} need a sharded run (--shard K/N or auto)",
            out.display()
        ),
        (Some(out), None) => out.clone(),
        (None, Some((k, n))) => PathBuf::from("experiments/runs")
            .join(&cfg.experiment.name)
            .join(format!("shard-{k}-of-{n}")),
        (None, None) => PathBuf::from("experiments/runs").join(&cfg.experiment.name),
    };
    if let (Some("auto"), Some((k, n))) = (args.shard.as_deref(), shard) {
        eprintln!(
            "shard {k}/{n} (from the scheduler's variables) into {}",
            out.display()
        );
    }
    let prompts = cfg
        .prompt_set()
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;
    let (mut lm, tok) = crate::load::load_at(
        cfg.model.source.as_ref(),
        &cfg.model.device,
        &cfg.model.dtype,
    )
    .with_context(|| format!("{}: [model]", args.config.display()))?;
    if let Some(c) = &cfg.experiment.context {
        lm.policy = ContextPolicy::parse(c).expect("checked when the config was loaded");
    }
    let batch_size = crate::load::batch_size(&lm, cfg.experiment.batch_size, &args.config)?;
    let mut judge = match &cfg.judge {
        Some(j) => {
            let (jlm, jtok) = crate::load::load_at(j.source.as_ref(), &j.device, &j.dtype)
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
    let model_name = crate::load::short_name(cfg.model.source.as_ref());
    let judge_name = cfg
        .judge
        .as_ref()
        .map(|j| crate::load::short_name(j.source.as_ref()));
    let mut plan = Plan::new(
        cfg.clone(),
        &args.config,
        &model_name,
        judge_name.as_deref(),
        prompts,
        &registry,
        &cx,
        shard,
    )?;
    let judge_sha = cfg
        .judge
        .as_ref()
        .map(|j| crate::load::files_sha256(j.source.as_ref()))
        .transpose()?;
    plan.batch_size = batch_size;
    plan.pin_files(
        &crate::load::files_sha256(cfg.model.source.as_ref())?,
        judge_sha.as_deref(),
    );
    let meta = meta(&cfg.model.device, &utc_now());
    let outcome = run_sweep(
        &plan,
        &RunDir::new(&out),
        args.force,
        &meta,
        &mut lm,
        tok.as_ref(),
        &registry,
        &cx,
        judge.as_mut(),
    )?;
    if outcome.interrupted {
        // Said before the summary line, even when the batch stopped before the poller looked.
        crate::interrupt::requested();
    }
    // The files written, as the folder holds them.
    let files = if plan.references.is_some() {
        "generations.csv, human.csv, tokens.jsonl, features.jsonl, summary.csv, plots/, report.html"
    } else {
        "generations.csv, tokens.jsonl, summary.csv, plots/, report.html"
    };
    eprintln!(
        "{} {} rows ({} generated now in {} model batches, {} already there) in {}: {files}",
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
    crate::commands::report::write_and_say(&out)?;
    if outcome.interrupted {
        return Err(Interrupted("run the same command again to finish the remaining rows").into());
    }
    Ok(())
}

/// Runs a plan in a folder with a progress bar (or, without a terminal, a line per tenth of
/// the grid), stopping between batches on Ctrl-C.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_sweep(
    plan: &Plan,
    out: &RunDir,
    force: bool,
    meta: &serde_json::Value,
    lm: &mut GptLm,
    tok: &dyn Tokenizer,
    registry: &Registry,
    cx: &BuildContext<'_>,
    judge: Option<&mut GptJudge>,
) -> Result<Outcome> {
    crate::interrupt::install().context("cannot install the Ctrl-C handler")?;
    let bar = ProgressBar::new(plan.rows.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} rows | {msg} | ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let plain = !std::io::stderr().is_terminal();
    let mut last_line = 0usize;
    let eos = lm.config.eos_token_id.or(tok.eos_token_id());
    let generator = Generator {
        model: lm,
        tokenizer: tok,
        eos_token_id: eos,
        registry,
        cx,
        judge: judge.map(|j| j as &mut dyn Judge),
        cancel: Some(crate::interrupt::flag()),
    };
    let outcome = minigpt_eval::sweep::run(
        plan,
        out,
        force,
        meta,
        generator,
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
