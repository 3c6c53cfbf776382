//! `minigpt eval`: one sweep on a candidate and on a GPT-2 baseline, judged by the baseline,
//! compared side by side.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use minigpt_decode::{BuildContext, Registry};
use minigpt_eval::compare::{EvalConfig, write_bits_per_byte, write_comparison};
use minigpt_eval::row::BitsPerByteRow;
use minigpt_eval::run_dir::utc_now;
use minigpt_eval::{Plan, RunDir};
use minigpt_model::{ContextPolicy, score};

use super::run::run_sweep;
use super::run_info::meta;
use crate::cli::EvalArgs;
use crate::interrupt::Interrupted;
use minigpt_model::GptJudge;

/// Runs `minigpt eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let cfg = EvalConfig::load(&args.config)?;
    let at = args.config.display().to_string();
    let prompts = cfg
        .sweep_for(false)
        .prompt_set()
        .map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
    let heldout = cfg
        .heldout_text()
        .map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
    let registry = Registry::builtin();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("experiments/runs").join(&cfg.experiment.name));
    // Load and check everything before the first file is written. The baseline is loaded
    // once: it generates its side's rows and, through a second handle on the same weights,
    // judges both sides' rows.
    let (jlm, jtok) = crate::load::load_at(
        cfg.baseline.source.as_ref(),
        &cfg.baseline.device,
        &cfg.baseline.dtype,
    )
    .with_context(|| format!("{at}: [baseline]"))?;
    let mut judge = GptJudge { lm: jlm, tok: jtok };
    let mut sides = vec![];
    for is_baseline in [false, true] {
        let sweep = cfg.sweep_for(is_baseline);
        let (mut lm, tok) = if is_baseline {
            (judge.lm.share(), judge.tok.clone())
        } else {
            crate::load::load_at(
                sweep.model.source.as_ref(),
                &sweep.model.device,
                &sweep.model.dtype,
            )
            .with_context(|| format!("{at}: [candidate]"))?
        };
        if let Some(c) = &sweep.experiment.context {
            lm.policy = ContextPolicy::parse(c).expect("checked when the config was loaded");
        }
        let batch_size = crate::load::batch_size(&lm, sweep.experiment.batch_size, &args.config)?;
        let name = crate::load::short_name(sweep.model.source.as_ref());
        sides.push(Side {
            is_baseline,
            sweep,
            lm,
            tok,
            name,
            batch_size,
        });
    }
    if sides[0].name == sides[1].name {
        bail!(
            "{at}: the candidate and the baseline are both named {:?}: give them folders with different names",
            sides[0].name
        );
    }
    // The held-out text under each model's tokenizer, checked before anything is written.
    let mut heldout_ids = vec![];
    if let Some(text) = &heldout {
        for side in &sides {
            let ids = side
                .tok
                .encode(text)
                .map_err(|e| anyhow::anyhow!("{at}: heldout.file under {}: {e}", side.name))?;
            if ids.len() < 2 {
                bail!(
                    "{at}: heldout.file is too short to score: {} tokens under {} (at least 2): give a longer text or a larger heldout.fraction",
                    ids.len(),
                    side.name
                );
            }
            heldout_ids.push(ids);
        }
    }
    let baseline_name = crate::load::short_name(cfg.baseline.source.as_ref());
    let baseline_sha = crate::load::files_sha256(cfg.baseline.source.as_ref())?;
    let mut plans = vec![];
    for Side {
        sweep,
        tok,
        name,
        batch_size,
        ..
    } in &sides
    {
        let encode = |s: &str| tok.encode(s).unwrap_or_default();
        let cx = BuildContext {
            encode: Some(&encode),
        };
        let mut plan = Plan::new(
            sweep.clone(),
            &args.config,
            name,
            Some(&baseline_name),
            prompts.clone(),
            &registry,
            &cx,
            None,
        )?;
        plan.batch_size = *batch_size;
        plan.pin_files(
            &crate::load::files_sha256(sweep.model.source.as_ref())?,
            Some(&baseline_sha),
        );
        plans.push(plan);
    }
    let started = utc_now();
    for (side, plan) in sides.iter_mut().zip(&plans) {
        let Side {
            is_baseline,
            sweep,
            lm,
            tok,
            ..
        } = side;
        let dir = RunDir::new(out.join(side_dir(*is_baseline)));
        let meta = meta(&sweep.model.device, &started);
        eprintln!("{}: {}", side_dir(*is_baseline), plan.model_name);
        let encode = |s: &str| tok.encode(s).unwrap_or_default();
        let cx = BuildContext {
            encode: Some(&encode),
        };
        let outcome = run_sweep(
            plan,
            &dir,
            args.force,
            &meta,
            lm,
            tok.as_ref(),
            &registry,
            &cx,
            Some(&mut judge),
        )?;
        if outcome.interrupted {
            return Err(Interrupted("interrupted: run the same command again to finish").into());
        }
    }
    // Bits per byte of both models on the held-out text.
    let mut bpb_rows = vec![];
    for (Side { lm, tok, name, .. }, ids) in sides.iter().zip(&heldout_ids) {
        let stride = (lm.config.n_positions / 2).max(1);
        let s = score(lm, ids, stride);
        let bytes = tok.decode_bytes(&ids[1..]).len();
        let v = s.bits_per_byte(bytes);
        bpb_rows.push(BitsPerByteRow {
            model: name.clone(),
            tokens: ids.len(),
            bytes,
            bits_per_byte: Some(v),
            stride,
        });
        eprintln!(
            "{name}: {v:.4} bits per byte on the held-out text ({} tokens)",
            ids.len()
        );
    }
    if !bpb_rows.is_empty() {
        write_bits_per_byte(&out, &bpb_rows)?;
    }
    write_comparison(
        &out,
        &RunDir::new(out.join(side_dir(false))),
        &RunDir::new(out.join(side_dir(true))),
        cfg.experiment.max_new_chars,
    )?;
    // The files written, as the folder holds them.
    let bpb = if bpb_rows.is_empty() {
        ""
    } else {
        "bits_per_byte.csv, "
    };
    eprintln!(
        "done: {} (comparison.csv, {bpb}plots/, report.html; each model's run in candidate/ and baseline/)",
        out.display()
    );
    crate::commands::report::write_and_say(&out)
}

/// One model of the evaluation, loaded.
struct Side {
    is_baseline: bool,
    sweep: minigpt_eval::SweepConfig,
    lm: minigpt_model::GptLm,
    tok: std::sync::Arc<dyn minigpt_tokenizer::Tokenizer>,
    name: String,
    /// Rows per model batch (`experiment.batch_size`, `auto` resolved for this side's model).
    batch_size: usize,
}

/// The folder of one side's run (and its name in messages) inside the evaluation's folder.
fn side_dir(baseline: bool) -> &'static str {
    if baseline { "baseline" } else { "candidate" }
}
