//! `minigpt strategies`: every registered plugin, then the strategy files of a directory.

use anyhow::Result;
use minigpt_decode::{BuildContext, PluginKind, Registry, Strategy};
use minigpt_tokenizer::{Gpt2Bpe, Tokenizer};

use crate::cli::StrategiesArgs;

/// Runs the command.
pub fn run(args: StrategiesArgs) -> Result<()> {
    let registry = Registry::builtin();
    for (kind, title) in [
        (
            PluginKind::Processor,
            "Logits processors (any number, applied in the order written):",
        ),
        (PluginKind::Selector, "Selectors (exactly one, last):"),
        (
            PluginKind::Search,
            "Search strategies (instead of a selector, in [search]):",
        ),
    ] {
        println!("{title}");
        for p in registry.plugins().filter(|p| p.kind == kind) {
            println!("  {:<20} {}", p.name, p.description);
            if !p.ties.is_empty() {
                println!("  {:<20}   ties: {}", "", p.ties);
            }
            if !p.reference.is_empty() {
                println!("  {:<20}   tested against: {}", "", p.reference);
            }
            for param in p.params {
                let default = param
                    .default
                    .map_or_else(|| "required".to_string(), |d| format!("default {d}"));
                println!("  {:<20}   {} = {} ({default})", "", param.name, param.ty);
            }
        }
        println!();
    }
    let mut files: Vec<_> = match std::fs::read_dir(&args.configs) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(_) => {
            println!(
                "(no strategy files: {} is not a directory)",
                args.configs.display()
            );
            return Ok(());
        }
    };
    files.sort();
    // Text tokens in strategy files (logit_bias keys, dry breakers) are resolved with GPT-2's
    // vocabulary for this listing; `generate` uses the model's own tokenizer.
    let gpt2 = Gpt2Bpe::builtin();
    let encode = |s: &str| gpt2.encode(s).unwrap_or_default();
    let cx = BuildContext {
        encode: Some(&encode),
    };
    println!(
        "Strategy files in {} (use with --strategy FILE):",
        args.configs.display()
    );
    for f in files {
        match Strategy::load(&f, &registry, &cx) {
            Ok(s) => {
                let chain = s.chain(&registry, &cx)?;
                println!("  {:<24} {}", s.name, s.description);
                println!("  {:<24}   {chain}", "");
            }
            Err(e) => println!(
                "  {:<24} invalid: {e}",
                f.file_stem().unwrap_or_default().to_string_lossy()
            ),
        }
    }
    Ok(())
}
