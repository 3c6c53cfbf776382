//! `minigpt bench`: prefill and decode throughput on random prompts, best of N repeats.

use std::time::Instant;

use anyhow::{Result, bail};
use minigpt_decode::{LanguageModel, Rng, dist::argmax};

use crate::cli::BenchArgs;

/// Runs the command.
pub fn run(args: BenchArgs) -> Result<()> {
    let mut lm = crate::load::load_model(&args.model)?;
    // Time steady-state steps: weights mapped from the packed cache move into huge pages first.
    lm.settle();
    let n = lm.config.n_positions;
    if args.prompt_len == 0 || args.new_tokens == 0 || args.repeats == 0 {
        bail!("--prompt-len, --new-tokens and --repeats must be at least 1");
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
        println!(
            "{:>6} {:>14} {:>14} {:>16} {:>12}",
            "batch", "prefill tok/s", "decode tok/s", "ms/decode step", "TTFT ms"
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
        let next: Vec<u32> = (0..b).map(|i| argmax(logits.row(i))).collect();
        lm.step(&next).map_err(|e| anyhow::anyhow!("{e}"))?;
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
        let decode_tps = (b * args.new_tokens) as f64 / best_decode;
        let step_ms = best_decode * 1e3 / args.new_tokens as f64;
        if args.json {
            let v = serde_json::json!({
                "batch": b, "prompt_len": args.prompt_len, "new_tokens": args.new_tokens,
                "prefill_tokens_per_s": prefill_tps, "decode_tokens_per_s": decode_tps,
                "decode_ms_per_step": step_ms, "ttft_ms": best_prefill * 1e3,
                "device": args.model.device, "threads": threads,
            });
            println!("{v}");
        } else {
            println!(
                "{b:>6} {prefill_tps:>14.1} {decode_tps:>14.1} {step_ms:>16.2} {:>12.1}",
                best_prefill * 1e3
            );
        }
    }
    Ok(())
}
