//! `minigpt train`: a progress bar over `minigpt_train::train`.

use std::io::IsTerminal;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use minigpt_train::{TrainConfig, train};

use crate::cli::TrainArgs;

/// Runs the command.
pub fn run(args: TrainArgs) -> Result<()> {
    let cfg = TrainConfig::load(&args.config)?;
    crate::load::target(&cfg.train.device, "f32")
        .with_context(|| format!("{}: train.device", args.config.display()))?;
    let started = Instant::now();
    crate::interrupt::install().context("cannot install the Ctrl-C handler")?;
    let bar = ProgressBar::new(cfg.train.max_steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} step {pos}/{len} | {msg} | ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Without a terminal (a background run with its output in a log) the bar draws nothing:
    // print one line per evaluation instead.
    let plain = !std::io::stderr().is_terminal();
    let mut last_val = None;
    let mut this_run = 0;
    let summary = train(&cfg, args.resume, args.force, |p| {
        if let Some(v) = p.val_loss {
            last_val = Some(v);
            if plain {
                eprintln!(
                    "step {}/{} | train {:.4} | val {v:.4} | lr {:.2e} | {:.0} tok/s | {:.0} s",
                    p.step,
                    p.max_steps,
                    p.train_loss,
                    p.lr,
                    p.tokens_per_s,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        bar.set_position(p.step as u64);
        let val = last_val.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
        bar.set_message(format!(
            "train {:.4} | val {val} | lr {:.2e} | {:.0} tok/s",
            p.train_loss, p.lr, p.tokens_per_s
        ));
        this_run += 1;
        !crate::interrupt::requested() && args.stop_after.is_none_or(|n| this_run < n)
    })?;
    bar.finish();
    let val = summary.val_losses.last().map_or_else(
        || "not evaluated yet".to_string(),
        |v| format!("{:.4}", v.1),
    );
    if summary.stopped {
        eprintln!(
            "stopped after step {} (val loss {val}); a checkpoint is in {}: continue with --resume",
            summary.train_losses.len(),
            cfg.output.dir.join("checkpoint").display()
        );
        if crate::interrupt::requested() {
            return Err(crate::interrupt::Interrupted("").into());
        }
    } else {
        eprintln!(
            "done: {} steps, final val loss {val} nats/token, {:.1} s; model in {}",
            summary.train_losses.len(),
            summary.seconds,
            cfg.output.dir.display()
        );
    }
    Ok(())
}
