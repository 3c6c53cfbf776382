//! The decoding chain of `generate`: a strategy file or built-in strategy, or the simple flags
//! in canonical order.

use std::path::Path;

use anyhow::{Result, bail};
use minigpt_decode::processors::Num;
use minigpt_decode::{BuildContext, Last, PluginSpec, Registry, Strategy};

use crate::cli::GenerateArgs;

/// The strategy the flags ask for. Simple flags build
/// `repetition_penalty -> temperature -> top_k -> top_p -> min_p -> multinomial` (each step only
/// when given; `--greedy` ends in `greedy` instead and ignores the sampling flags).
pub fn strategy(
    args: &GenerateArgs,
    registry: &Registry,
    cx: &BuildContext<'_>,
) -> Result<Strategy> {
    if let Some(t) = args.temperature
        && !(t.is_finite() && t > 0.0)
    {
        bail!(
            "--temperature must be a finite number > 0 (got {t}); for deterministic decoding use --greedy"
        );
    }
    if let Some(path) = &args.strategy {
        let others = [
            ("--greedy", args.greedy),
            ("--top-k", args.top_k.is_some()),
            ("--top-p", args.top_p.is_some()),
            ("--min-p", args.min_p.is_some()),
            ("--repetition-penalty", args.repetition_penalty.is_some()),
        ];
        if let Some((flag, _)) = others.iter().find(|(_, on)| *on) {
            bail!(
                "{flag} cannot be combined with --strategy: put it in the strategy file (only --temperature applies on top)"
            );
        }
        return load_at(path, args.temperature.map(f64::from), registry, cx);
    }
    let mut processors = Vec::new();
    let mut add = |flag: &str, value: String, name: &str, params: toml::Table| -> Result<()> {
        if let Err(e) = registry.processor(name, &params, cx) {
            bail!("{flag} {value}: {e}");
        }
        processors.push(PluginSpec::new(name, params));
        Ok(())
    };
    if !args.greedy {
        if let Some(r) = args.repetition_penalty {
            add(
                "--repetition-penalty",
                Num(r).to_string(),
                "repetition_penalty",
                table("penalty", float(r)),
            )?;
        }
        if let Some(t) = args.temperature {
            add(
                "--temperature",
                Num(t).to_string(),
                "temperature",
                table("t", float(t)),
            )?;
        }
        if let Some(k) = args.top_k {
            if k == 0 {
                bail!("--top-k must be at least 1 (got 0); leave it out to keep every token");
            }
            add(
                "--top-k",
                k.to_string(),
                "top_k",
                table("k", toml::Value::Integer(k as i64)),
            )?;
        }
        if let Some(p) = args.top_p {
            add("--top-p", Num(p).to_string(), "top_p", table("p", float(p)))?;
        }
        if let Some(m) = args.min_p {
            add("--min-p", Num(m).to_string(), "min_p", table("p", float(m)))?;
        }
    } else if let Some(k) = args.top_k.filter(|&k| k == 0) {
        bail!("--top-k must be at least 1 (got {k})");
    } else if let Some(p) = args.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
        bail!("--top-p must be in (0, 1] (got {p})");
    }
    let selector = if args.greedy { "greedy" } else { "multinomial" };
    let description = if args.greedy {
        "greedy (flags)"
    } else {
        "sampling (flags)"
    };
    Ok(Strategy {
        name: "flags".into(),
        description: description.into(),
        processors,
        last: Last::Selector(PluginSpec::new(selector, toml::Table::new())),
    })
}

fn table(key: &str, value: toml::Value) -> toml::Table {
    let mut t = toml::Table::new();
    t.insert(key.into(), value);
    t
}

/// An f32 flag as the TOML float the user typed (0.9, not 0.899999976).
fn float(v: f32) -> toml::Value {
    toml::Value::Float(v.to_string().parse().unwrap_or(v as f64))
}

/// `--strategy` at `--temperature` when one is given (a deterministic strategy ignores it).
pub fn load_at(
    path: &Path,
    temperature: Option<f64>,
    registry: &Registry,
    cx: &BuildContext<'_>,
) -> Result<Strategy> {
    let s = load(path, registry, cx)?;
    Ok(match temperature {
        Some(t) if !s.is_deterministic() => s.with_temperature(t),
        _ => s,
    })
}

/// `--strategy`: a file when one exists at that path, else a built-in strategy of that name
/// (a path-like value, ending in `.toml` or with a folder, is always a file).
fn load(path: &Path, registry: &Registry, cx: &BuildContext<'_>) -> Result<Strategy> {
    let path_like = path.extension().is_some_and(|x| x == "toml") || path.components().count() > 1;
    if !path.exists() && !path_like {
        let name = path.to_string_lossy();
        return match Strategy::builtin(&name, registry, cx) {
            Some(s) => Ok(s?),
            None => bail!(
                "--strategy {name}: no such file, and no built-in strategy of that name (built-in: {}; `minigpt strategies` lists them)",
                minigpt_decode::builtin_strategy_names()
            ),
        };
    }
    Ok(Strategy::load(path, registry, cx)?)
}
