//! `minigpt report`: `report.html` of a run or eval folder.

use std::path::Path;

use anyhow::{Result, bail};
use minigpt_eval::report::{is_eval, write_report};
use minigpt_eval::run_dir::RUN_JSON;

use crate::cli::ReportArgs;

/// Runs `minigpt report`.
pub fn run(args: ReportArgs) -> Result<()> {
    let dir = &args.dir;
    if !dir.join(RUN_JSON).exists() && !is_eval(dir) {
        bail!(
            "{} is not a run folder (no {RUN_JSON}, nor candidate/ and baseline/): give a folder written by minigpt run, merge or eval",
            dir.display()
        );
    }
    write_and_say(dir)
}

/// Writes the folder's report and says where (run, merge and eval call it when they finish).
pub fn write_and_say(dir: &Path) -> Result<()> {
    let path = write_report(dir)?;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "report: {} ({:.1} MB; open it in a browser, it needs no network)",
        path.display(),
        size as f64 / 1e6
    );
    Ok(())
}
