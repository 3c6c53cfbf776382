//! `minigpt train`: a progress bar over `minigpt_train::train`.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use minigpt_train::{TrainConfig, train};

use crate::cli::TrainArgs;

/// Runs the command.
pub fn run(args: TrainArgs) -> Result<()> {
    let cfg = TrainConfig::load(&args.config)?;
    let bar = ProgressBar::new(cfg.train.max_steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} step {pos}/{len} | {msg} | ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut last_val = None;
    let mut this_run = 0;
    let summary = train(&cfg, args.resume, |p| {
        if p.val_loss.is_some() {
            last_val = p.val_loss;
        }
        bar.set_position(p.step as u64);
        let val = last_val.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
        bar.set_message(format!(
            "train {:.4} | val {val} | lr {:.2e} | {:.0} tok/s",
            p.train_loss, p.lr, p.tokens_per_s
        ));
        this_run += 1;
        args.stop_after.is_none_or(|n| this_run < n)
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
