//! `minigpt strategies`: every registered plugin, then the strategies: built-in ones and the
//! files of a directory, each marked with where it comes from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use minigpt_decode::{
    BUILTIN_STRATEGIES, BuildContext, PluginKind, Registry, Strategy, builtin_strategy_text,
};

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
    // Every strategy is checked against the model it would run on (the shipped one unless
    // --model names another): text tokens (logit_bias keys, dry breakers) through its
    // tokenizer, token ids, beams and candidates against its vocabulary.
    let (lm, tok) = crate::load::load(&args.model)?;
    let vocab = lm.config.vocab_size;
    let encode = |s: &str| tok.encode(s).unwrap_or_default();
    let cx = BuildContext {
        encode: Some(&encode),
    };
    // The files of the directory, by name (none when it is not a directory).
    let mut files: BTreeMap<String, PathBuf> = std::fs::read_dir(&args.configs)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .filter_map(|p| Some((p.file_stem()?.to_string_lossy().into_owned(), p)))
                .collect()
        })
        .unwrap_or_default();
    let mut names: Vec<String> = BUILTIN_STRATEGIES
        .iter()
        .map(|(n, _)| n.to_string())
        .chain(files.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    println!(
        "Strategies, checked against {} (use with --strategy NAME or in sweep.strategies; a file in a config's strategies_dir comes before the built-in of its name):",
        crate::load::model_name(crate::load::source_of(&args.model).as_ref())
    );
    for name in names {
        let file = files.remove(&name);
        let builtin = builtin_strategy_text(&name);
        let source = match (&file, builtin) {
            (None, _) => "built-in".to_string(),
            (Some(f), None) => format!("file {}", f.display()),
            (Some(f), Some(text)) => {
                if std::fs::read_to_string(f).is_ok_and(|t| t == text) {
                    format!("built-in (same as {})", f.display())
                } else {
                    format!("file {} (differs from the built-in)", f.display())
                }
            }
        };
        let loaded = match &file {
            Some(f) => Strategy::load(f, &registry, &cx),
            None => Strategy::builtin(&name, &registry, &cx).expect("a built-in name"),
        }
        .and_then(|s| s.check_vocab(&registry, &cx, vocab).map(|()| s));
        match loaded {
            Ok(s) => {
                let chain = s.chain(&registry, &cx)?;
                println!("  {:<24} {}", name, s.description);
                println!("  {:<24}   {chain}", "");
                println!("  {:<24}   {source}", "");
            }
            Err(e) => println!("  {name:<24} invalid ({source}): {e}"),
        }
    }
    if !args.configs.is_dir() {
        println!(
            "(no strategy files listed: {} is not a directory)",
            args.configs.display()
        );
    }
    Ok(())
}
