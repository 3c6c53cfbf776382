//! `minigpt score`: how well the model predicts a text.

use anyhow::{Context, Result, bail};
use minigpt_model::score;

use crate::cli::ScoreArgs;

/// Runs the command.
pub fn run(args: ScoreArgs) -> Result<()> {
    let text = match (&args.text, &args.file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read {} (a UTF-8 text file)", f.display()))?,
        (None, None) => bail!("pass --text TEXT or --file FILE"),
    };
    if args.stride == Some(0) {
        bail!("--stride must be at least 1");
    }
    let (lm, tok) = crate::load::load(&args.model)?;
    let context = match &args.prompt {
        Some(p) if p.is_empty() => bail!("--prompt is empty: give some text, or leave it out"),
        Some(p) => tok.encode(p)?,
        None => vec![],
    };
    let scored = tok.encode(&text)?;
    if !context.is_empty() && scored.is_empty() {
        bail!("the text is empty: give some text to score after --prompt");
    }
    let tokens: Vec<u32> = context.iter().chain(&scored).copied().collect();
    if tokens.len() < 2 {
        bail!(
            "the text has {} token(s); scoring needs at least two (the first is only context)",
            tokens.len()
        );
    }
    let stride = args.stride.unwrap_or(lm.config.n_positions / 2).max(1);
    let mut s = score(&lm, &tokens, stride);
    if !context.is_empty() {
        // Only the text's tokens, each predicted after the prompt and the text before it.
        s.logprobs.drain(..context.len() - 1);
        s.tokens = scored;
        let mean = s.logprobs.iter().sum::<f64>() / s.logprobs.len() as f64;
        s.perplexity = (-mean).exp();
    }
    let first = if context.is_empty() { 1 } else { 0 };
    let bytes = tok.decode_bytes(&s.tokens[first..]).len();
    let bpb = s.bits_per_byte(bytes);
    if args.json {
        let v = serde_json::json!({
            "tokens": s.tokens,
            "logprobs": s.logprobs,
            "perplexity": s.perplexity,
            "bits_per_byte": bpb,
            "stride": stride,
        });
        println!("{v}");
    } else {
        println!("tokens:        {}", s.tokens.len());
        // Past the context, each window advances `stride` tokens: the figures depend on it.
        if tokens.len() > lm.config.n_positions {
            println!(
                "context:       windows of {} tokens advancing {stride} (--stride 1 gives every token a full window)",
                lm.config.n_positions
            );
        }
        println!("perplexity:    {:.4}", s.perplexity);
        println!("bits per byte: {bpb:.4}");
        println!(
            "mean logprob:  {:.4} nats",
            -s.nll() / s.logprobs.len() as f64
        );
    }
    Ok(())
}
