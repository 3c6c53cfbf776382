//! `minigpt generate`: continue one prompt, streaming or as JSON.

use std::io::Write;
use std::time::Instant;

use anyhow::{Result, bail};
use std::sync::Arc;

use minigpt_decode::{BuildContext, GenerateRequest, Registry, StopStrings, decode};
use minigpt_model::ContextPolicy;
use minigpt_tokenizer::StreamDecoder;

use crate::cli::GenerateArgs;

/// Runs the command.
pub fn run(args: GenerateArgs) -> Result<()> {
    if args.prompt.is_empty() {
        bail!("the prompt is empty: pass some text with --prompt");
    }
    if args.stop.iter().any(String::is_empty) {
        bail!("--stop \"\" would stop before the first token: give a non-empty text");
    }
    let registry = Registry::builtin();
    // Flags are checked before the model loads, so a typo costs no load time. (A strategy
    // file may need the tokenizer, for logit_bias keys given as text: it is checked after.)
    if args.strategy.is_none() {
        crate::chain::strategy(&args, &registry, &BuildContext::default())?;
    }
    let (mut lm, tok) = crate::load::load(&args.model)?;
    let encode = |s: &str| tok.encode(s).unwrap_or_default();
    let cx = BuildContext {
        encode: Some(&encode),
    };
    let strategy = crate::chain::strategy(&args, &registry, &cx)?;
    strategy.check_vocab(&registry, &cx, lm.config.vocab_size)?;
    // Beam and contrastive search decode whole hypotheses with their own stopping rules.
    if strategy.is_search() && (!args.stop.is_empty() || args.no_crop) {
        let flag = if args.no_crop { "--no-crop" } else { "--stop" };
        bail!(
            "{flag} applies to sampling strategies, not to {} (a search): drop {flag} or pick a sampling strategy",
            strategy.name
        );
    }
    let chain = strategy.chain(&registry, &cx)?;
    let mut decoding = strategy.build(&registry, &cx, 1)?;
    if args.show_chain {
        eprintln!("{chain}");
    }
    if args.no_crop {
        lm.policy = ContextPolicy::Refuse;
    }
    let prompt = tok.encode(&args.prompt)?;
    if prompt.is_empty() {
        bail!("the prompt encodes to no tokens: pass some text with --prompt");
    }
    let seed = args.seed.unwrap_or_else(clock_seed);
    let req = GenerateRequest {
        prompts: vec![prompt],
        max_new_tokens: args.max_new_tokens,
        seeds: vec![seed],
        eos_token_id: lm.config.eos_token_id.or(tok.eos_token_id()),
        ignore_eos: args.ignore_eos,
        stop: StopStrings::new(args.stop.clone(), {
            let tok = tok.clone();
            Arc::new(move |t| tok.decode_bytes(&[t]))
        }),
        max_new_chars: None,
        cancel: None,
    };
    let start = Instant::now();
    let mut stdout = std::io::stdout().lock();
    let mut stream = StreamDecoder::new();
    let mut write_err = None;
    let out = decode(&mut lm, &req, &mut decoding, |_, t| {
        if !args.json && write_err.is_none() {
            let piece = stream.push(tok.as_ref(), t);
            if let Err(e) = stdout
                .write_all(piece.as_bytes())
                .and_then(|_| stdout.flush())
            {
                write_err = Some(e);
            }
        }
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let seconds = start.elapsed().as_secs_f64();
    let g = &out[0];
    if args.json {
        let v = serde_json::json!({
            "prompt": args.prompt,
            "text": tok.decode(&g.tokens),
            "tokens": g.tokens,
            "finish_reason": g.finish_reason.as_str(),
            "seed": seed,
            "seconds": seconds,
            "chain": chain,
        });
        writeln!(stdout, "{v}")?;
    } else {
        if let Some(e) = write_err {
            // A closed pipe (`| head`) is not an error worth a message.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
        writeln!(stdout, "{}", stream.finish())?;
        eprintln!(
            "[{} tokens in {:.2} s, {:.1} tokens/s, seed {seed}, finish: {}]",
            g.tokens.len(),
            seconds,
            g.tokens.len() as f64 / seconds.max(1e-9),
            g.finish_reason.as_str()
        );
    }
    Ok(())
}

pub(crate) fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64 % 1_000_000_007)
}
