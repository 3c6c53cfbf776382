//! `minigpt download`: a Hub repository's files into the Hugging Face cache, and its folder
//! printed.

use std::io::IsTerminal;

use anyhow::{Result, bail};
use minigpt_hub::{RepoId, Settings, fetch};

use crate::cli::DownloadArgs;

/// Runs the command.
pub fn run(args: DownloadArgs) -> Result<()> {
    let Some(repo) = RepoId::parse(&args.repo) else {
        bail!(
            "{:?} is not a Hugging Face repo id: write name or owner/name, optionally @revision (e.g. gpt2, openai-community/gpt2-medium@main)",
            args.repo
        );
    };
    let mut settings = Settings::from_env();
    settings.progress_bar = std::io::stderr().is_terminal();
    let got = fetch(&repo, &settings)?;
    if got.downloaded.is_empty() {
        eprintln!("{repo}: already in the cache (commit {})", got.commit);
    } else {
        eprintln!(
            "{repo}: downloaded {} (commit {})",
            got.downloaded.join(", "),
            got.commit
        );
    }
    println!("{}", got.dir.display());
    Ok(())
}
