//! `minigpt strategies`: every registered plugin, then the strategy files of a directory.

use anyhow::Result;
use minigpt_decode::{BuildContext, PluginKind, Registry, Strategy};

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
    ] {
        println!("{title}");
        for p in registry.plugins().filter(|p| p.kind == kind) {
            println!("  {:<20} {}", p.name, p.description);
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
    println!(
        "Strategy files in {} (use with --strategy FILE):",
        args.configs.display()
    );
    for f in files {
        match Strategy::load(&f, &registry, &BuildContext::default()) {
            Ok(s) => {
                let chain = s.pipeline(&registry, &BuildContext::default())?;
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
