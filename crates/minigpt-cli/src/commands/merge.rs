//! `minigpt merge`: shard folders of one config into one run folder.

use anyhow::Result;
use minigpt_eval::merge::merge;
use minigpt_eval::run_dir::utc_now;

use crate::cli::MergeArgs;

/// Runs `minigpt merge`.
pub fn run(args: MergeArgs) -> Result<()> {
    let merged = merge(&args.parts, &args.out, &utc_now(), args.allow_partial)?;
    let missing = merged.rows_in_grid.saturating_sub(merged.rows);
    eprintln!(
        "merged {} rows{} into {}",
        merged.rows,
        if missing > 0 {
            format!(
                " ({missing} of the grid's {} are missing)",
                merged.rows_in_grid
            )
        } else {
            String::new()
        },
        args.out.display()
    );
    for what in &merged.missing {
        eprintln!("missing: {what}");
    }
    crate::commands::report::write_and_say(&args.out)
}
