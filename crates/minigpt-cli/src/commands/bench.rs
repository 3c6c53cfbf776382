//! `minigpt bench`: prefill and decode throughput on random prompts, best of N repeats.

use std::time::Instant;

use anyhow::{Result, bail};
use minigpt_decode::{
    BuildContext, GenerateRequest, LanguageModel, Registry, Rng, Strategy, dist::argmax, generate,
};

use crate::cli::BenchArgs;

/// Runs the command.
pub fn run(args: BenchArgs) -> Result<()> {
    // The strategy is checked before the model loads.
    let registry = Registry::builtin();
    let cx = BuildContext::default();
    let strategy = args
        .strategy
        .as_deref()
        .map(|p| sampling_strategy(p, args.temperature, &registry, &cx))
        .transpose()?;
    let mut lm = crate::load::load_model(&args.model)?;
    // Time steady-state steps: weights mapped from the packed cache move into huge pages first.
    lm.settle();
    let n = lm.config.n_positions;
    if args.prompt_len == 0 || args.repeats == 0 {
        bail!("--prompt-len and --repeats must be at least 1");
    }
    if args.new_tokens == 0 && strategy.is_some() {
        bail!("--strategy needs --new-tokens of at least 1");
    }
    if args.prompt_len + args.new_tokens > n {
        bail!(
            "--prompt-len + --new-tokens = {} exceeds the context ({n}); the benchmark measures cached decoding",
            args.prompt_len + args.new_tokens
        );
    }
    if args.batch.contains(&0) {
        bail!("batch sizes must be at least 1");
    }
    for &b in &args.batch {
        minigpt_model::memory::check_fits(
            &format!("--batch {b}"),
            minigpt_model::memory::inference_bytes(
                &lm.config,
                b,
                args.prompt_len + args.new_tokens,
            ),
            "use a smaller --batch or --prompt-len",
        )
        .map_err(anyhow::Error::msg)?;
    }
    if let Some(s) = &strategy {
        s.check_vocab(&registry, &cx, lm.config.vocab_size)?;
    }
    let threads = minigpt_native::threads();
    if !args.json {
        println!(
            "model {} ({} layers, n_embd {}, vocab {}), device {}, {threads} threads, prompt {} tokens, {} decode steps, best of {}",
            crate::load::model_name(crate::load::source_of(&args.model).as_ref()),
            lm.config.n_layer,
            lm.config.n_embd,
            lm.config.vocab_size,
            args.model.device,
            args.prompt_len,
            args.new_tokens,
            args.repeats
        );
        if let Some(s) = &strategy {
            println!(
                "sample tok/s: {} new tokens per row through {} (prefill, steps, chains and each token's statistics), seeds 0..batch",
                args.new_tokens, s.name
            );
        }
        println!(
            "{:>6} {:>14} {:>14} {:>16} {:>12}{}",
            "batch",
            "prefill tok/s",
            "decode tok/s",
            "ms/decode step",
            "TTFT ms",
            if strategy.is_some() {
                format!(" {:>14}", "sample tok/s")
            } else {
                String::new()
            }
        );
    }
    let vocab = lm.config.vocab_size as u64;
    let mut rng = Rng::new(0);
    for &b in &args.batch {
        let prompts: Vec<Vec<u32>> = (0..b)
            .map(|_| {
                (0..args.prompt_len)
                    .map(|_| (rng.next_u64() % vocab) as u32)
                    .collect()
            })
            .collect();
        // Warm-up: lazy initialisation, allocator, thread pool.
        let logits = lm.prefill(&prompts).map_err(|e| anyhow::anyhow!("{e}"))?;
        if args.new_tokens > 0 {
            let next: Vec<u32> = (0..b).map(|i| argmax(logits.row(i))).collect();
            lm.step(&next).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let (mut best_prefill, mut best_decode) = (f64::MAX, f64::MAX);
        for _ in 0..args.repeats {
            let t0 = Instant::now();
            let mut logits = lm.prefill(&prompts).map_err(|e| anyhow::anyhow!("{e}"))?;
            best_prefill = best_prefill.min(t0.elapsed().as_secs_f64());
            let t1 = Instant::now();
            for _ in 0..args.new_tokens {
                let next: Vec<u32> = (0..b).map(|i| argmax(logits.row(i))).collect();
                logits = lm.step(&next).map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            best_decode = best_decode.min(t1.elapsed().as_secs_f64());
        }
        let prefill_tps = (b * args.prompt_len) as f64 / best_prefill;
        // No decode figures for a prefill-only run (`--new-tokens 0`).
        let decoded = args.new_tokens > 0;
        let decode_tps = decoded.then(|| (b * args.new_tokens) as f64 / best_decode);
        let step_ms = decoded.then(|| best_decode * 1e3 / args.new_tokens as f64);
        let sample_tps = match &strategy {
            Some(s) => Some(sample_seconds(&mut lm, s, &registry, &cx, &prompts, &args)?)
                .map(|t| (b * args.new_tokens) as f64 / t),
            None => None,
        };
        if args.json {
            let mut v = serde_json::json!({
                "batch": b, "prompt_len": args.prompt_len, "new_tokens": args.new_tokens,
                "prefill_tokens_per_s": prefill_tps, "decode_tokens_per_s": decode_tps,
                "decode_ms_per_step": step_ms, "ttft_ms": best_prefill * 1e3,
                "device": args.model.device, "threads": threads,
            });
            if let (Some(t), Some(s)) = (sample_tps, &strategy) {
                v["sample_tokens_per_s"] = t.into();
                v["strategy"] = s.name.clone().into();
            }
            println!("{v}");
        } else {
            let or_dash = |v: Option<f64>, p: usize| v.map_or("—".into(), |v| format!("{v:.p$}"));
            println!(
                "{b:>6} {prefill_tps:>14.1} {:>14} {:>16} {:>12.1}{}",
                or_dash(decode_tps, 1),
                or_dash(step_ms, 2),
                best_prefill * 1e3,
                sample_tps.map_or(String::new(), |t| format!(" {t:>14.1}"))
            );
        }
    }
    Ok(())
}

/// The `--strategy` to sample with (at `--temperature` when given); a search is refused.
fn sampling_strategy(
    path: &std::path::Path,
    temperature: Option<f64>,
    registry: &Registry,
    cx: &BuildContext<'_>,
) -> Result<Strategy> {
    if let Some(t) = temperature
        && !(t.is_finite() && t > 0.0)
    {
        bail!("--temperature must be a finite number > 0 (got {t})");
    }
    let s = crate::chain::load_at(path, temperature, registry, cx)?;
    if s.is_search() {
        bail!(
            "--strategy {}: {} is a search, which decodes one prompt at a time; bench a sampling strategy",
            path.display(),
            s.name
        );
    }
    Ok(s)
}

/// The best of `--repeats` generations of `--new-tokens` per prompt through `strategy` (after
/// one warm-up), end of text ignored: seconds from the prefill to the last row's last token.
fn sample_seconds(
    lm: &mut minigpt_model::GptLm,
    strategy: &Strategy,
    registry: &Registry,
    cx: &BuildContext<'_>,
    prompts: &[Vec<u32>],
    args: &BenchArgs,
) -> Result<f64> {
    let req = GenerateRequest {
        prompts: prompts.to_vec(),
        max_new_tokens: args.new_tokens,
        seeds: (0..prompts.len() as u64).collect(),
        eos_token_id: None,
        ignore_eos: true,
        stop: Default::default(),
        max_new_chars: None,
        cancel: None,
    };
    let mut best = f64::MAX;
    for i in 0..=args.repeats {
        let mut pipelines = strategy.pipelines(registry, cx, prompts.len())?;
        let t = Instant::now();
        let out =
            generate(lm, &req, &mut pipelines, |_, _| {}).map_err(|e| anyhow::anyhow!("{e}"))?;
        let seconds = t.elapsed().as_secs_f64();
        if out.iter().any(|g| g.tokens.len() != args.new_tokens) {
            bail!("a row stopped before --new-tokens");
        }
        // The first run warms up.
        if i > 0 {
            best = best.min(seconds);
        }
    }
    Ok(best)
}
