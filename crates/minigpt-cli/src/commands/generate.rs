//! `minigpt generate`: continue one prompt (streamed, or as JSON); with no `--prompt`, continue
//! prompts read line by line, at an interactive prompt on a terminal or as JSON lines through
//! a pipe.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use minigpt_decode::{BuildContext, FinishReason, GenerateRequest, Registry, StopStrings, decode};
use minigpt_model::{ContextPolicy, GptLm};
use minigpt_tokenizer::{StreamDecoder, Tokenizer};

use crate::cli::GenerateArgs;

/// Runs the command.
pub fn run(args: GenerateArgs) -> Result<()> {
    if args.prompt.as_ref().is_some_and(String::is_empty) {
        bail!("the prompt is empty: pass some text with --prompt");
    }
    if args.prompt.is_some() && args.interactive {
        bail!("--prompt and --interactive do not go together: drop --prompt to type prompts");
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
    if args.no_crop {
        lm.policy = ContextPolicy::Refuse;
    }
    let mut session = Session {
        lm,
        tok,
        registry,
        args,
    };
    // Checked once here, so a bad strategy stops before any prompt is read.
    let chain = session.chain()?;
    if session.args.show_chain {
        eprintln!("{chain}");
    }
    match session.args.prompt.clone() {
        Some(prompt) => session.single(&prompt),
        None if session.args.interactive || std::io::stdin().is_terminal() => session.interactive(),
        None => session.json_lines(),
    }
}

/// The model, its tokenizer and the settings prompts are continued with.
struct Session {
    lm: GptLm,
    tok: Arc<dyn Tokenizer>,
    registry: Registry,
    args: GenerateArgs,
}

/// One continuation.
struct Outcome {
    text: String,
    tokens: Vec<u32>,
    finish: FinishReason,
    seed: u64,
    seconds: f64,
    chain: String,
}

impl Session {
    /// The chain the settings build, checked against the model, as text.
    fn chain(&self) -> Result<String> {
        let encode = |s: &str| self.tok.encode(s).unwrap_or_default();
        let cx = BuildContext {
            encode: Some(&encode),
        };
        let strategy = crate::chain::strategy(&self.args, &self.registry, &cx)?;
        strategy.check_vocab(&self.registry, &cx, self.lm.config.vocab_size)?;
        // Beam and contrastive search decode whole hypotheses with their own stopping rules.
        if strategy.is_search() && (!self.args.stop.is_empty() || self.args.no_crop) {
            let flag = if self.args.no_crop {
                "--no-crop"
            } else {
                "--stop"
            };
            bail!(
                "{flag} applies to sampling strategies, not to {} (a search): drop {flag} or pick a sampling strategy",
                strategy.name
            );
        }
        Ok(strategy.chain(&self.registry, &cx)?)
    }

    /// Continues `prompt`; `on_text` receives the text as it is decoded.
    fn continue_prompt(&mut self, prompt: &str, mut on_text: impl FnMut(&str)) -> Result<Outcome> {
        let tok = self.tok.clone();
        let encode = |s: &str| tok.encode(s).unwrap_or_default();
        let cx = BuildContext {
            encode: Some(&encode),
        };
        let strategy = crate::chain::strategy(&self.args, &self.registry, &cx)?;
        let chain = strategy.chain(&self.registry, &cx)?;
        let mut decoding = strategy.build(&self.registry, &cx, 1)?;
        let ids = tok.encode(prompt)?;
        if ids.is_empty() {
            bail!("the prompt encodes to no tokens: give some text");
        }
        let seed = self.args.seed.unwrap_or_else(clock_seed);
        let req = GenerateRequest {
            prompts: vec![ids],
            max_new_tokens: self.args.max_new_tokens,
            seeds: vec![seed],
            eos_token_id: self.lm.config.eos_token_id.or(tok.eos_token_id()),
            ignore_eos: self.args.ignore_eos,
            stop: StopStrings::new(self.args.stop.clone(), {
                let tok = tok.clone();
                Arc::new(move |t| tok.decode_bytes(&[t]))
            }),
            max_new_chars: None,
            cancel: None,
        };
        let start = Instant::now();
        let mut stream = StreamDecoder::new();
        let out = decode(&mut self.lm, &req, &mut decoding, |_, t| {
            on_text(&stream.push(tok.as_ref(), t));
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        on_text(&stream.finish());
        let g = &out[0];
        Ok(Outcome {
            text: tok.decode(&g.tokens),
            tokens: g.tokens.clone(),
            finish: g.finish_reason,
            seed,
            seconds: start.elapsed().as_secs_f64(),
            chain,
        })
    }

    /// `--prompt`: the text streamed to stdout (or one JSON object with `--json`).
    fn single(&mut self, prompt: &str) -> Result<()> {
        let json = self.args.json;
        let mut stdout = std::io::stdout().lock();
        let mut write_err = None;
        let o = self.continue_prompt(prompt, |piece| {
            if !json
                && write_err.is_none()
                && let Err(e) = stdout
                    .write_all(piece.as_bytes())
                    .and_then(|_| stdout.flush())
            {
                write_err = Some(e);
            }
        })?;
        if json {
            writeln!(stdout, "{}", json_of(prompt, &o))?;
            return Ok(());
        }
        if let Some(e) = write_err {
            // A closed pipe (`| head`) is not an error worth a message.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
        writeln!(stdout)?;
        eprintln!("{}", status(&o));
        Ok(())
    }

    /// No `--prompt`, stdin not a terminal: one prompt per line in, one JSON line out (a line
    /// the model cannot take gets `{"prompt", "error"}` and the next line is read).
    fn json_lines(&mut self) -> Result<()> {
        let stdin = std::io::stdin();
        let mut stdout = std::io::stdout().lock();
        for line in stdin.lock().lines() {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            let v = match self.continue_prompt(&line, |_| {}) {
                Ok(o) => json_of(&line, &o),
                Err(e) => serde_json::json!({"prompt": line, "error": format!("{e:#}")}),
            };
            writeln!(stdout, "{v}")?;
            stdout.flush()?;
        }
        Ok(())
    }

    /// On a terminal: read a prompt or a command, stream the continuation, repeat.
    fn interactive(&mut self) -> Result<()> {
        eprintln!("{HELP}");
        let stdin = std::io::stdin();
        let mut lines = stdin.lock().lines();
        loop {
            eprint!("> ");
            let Some(line) = lines.next() else {
                eprintln!();
                return Ok(());
            };
            let line = line?;
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            if let Some(cmd) = line.strip_prefix('/') {
                match self.command(cmd) {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(e) => eprintln!("error: {e:#}"),
                }
                continue;
            }
            let mut stdout = std::io::stdout().lock();
            let result = self.continue_prompt(line, |piece| {
                let _ = stdout.write_all(piece.as_bytes());
                let _ = stdout.flush();
            });
            let _ = writeln!(stdout);
            match result {
                Ok(o) => eprintln!("{}", status(&o)),
                Err(e) => eprintln!("error: {e:#}"),
            }
        }
    }

    /// An interactive command (without its `/`); `Ok(true)` to quit. A setting that does not
    /// build a valid chain is refused and the previous one kept.
    fn command(&mut self, cmd: &str) -> Result<bool> {
        let mut words = cmd.split_whitespace();
        let name = words.next().unwrap_or("");
        let rest: Vec<&str> = words.collect();
        let before = self.args.clone();
        match (name, rest.as_slice()) {
            ("quit" | "exit" | "q", []) => return Ok(true),
            ("help" | "h" | "show", []) => {}
            ("strategy", [file]) => {
                self.args.strategy = (*file != "none").then(|| (*file).into());
                if self.args.strategy.is_some() {
                    // A strategy file carries its own chain: the simple flags are cleared.
                    (self.args.greedy, self.args.top_k, self.args.top_p) = (false, None, None);
                    (self.args.min_p, self.args.repetition_penalty) = (None, None);
                }
            }
            ("set", [key, value]) => self.set(key, value)?,
            _ => bail!("unknown command /{cmd}: /help lists the commands"),
        }
        let chain = match self.chain() {
            Ok(chain) => chain,
            Err(e) => {
                self.args = before;
                return Err(e);
            }
        };
        match name {
            "help" | "h" => eprintln!("{HELP}"),
            _ => eprintln!("{}", self.settings(&chain)),
        }
        Ok(false)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let a = &mut self.args;
        let int = |v: &str| -> Result<u64> {
            v.parse()
                .map_err(|_| anyhow::anyhow!("/set {key} {v}: not a whole number"))
        };
        // `none` or `off` unsets an optional setting.
        let off = matches!(value, "none" | "off");
        let opt_num = || -> Result<Option<f32>> {
            if off {
                return Ok(None);
            }
            let v = value
                .parse()
                .map_err(|_| anyhow::anyhow!("/set {key} {value}: not a number"))?;
            Ok(Some(v))
        };
        let opt_int = || (!off).then(|| int(value)).transpose();
        match key.replace('-', "_").as_str() {
            "temperature" => a.temperature = opt_num()?,
            "top_k" => a.top_k = opt_int()?.map(|k| k as usize),
            "top_p" => a.top_p = opt_num()?,
            "min_p" => a.min_p = opt_num()?,
            "repetition_penalty" => a.repetition_penalty = opt_num()?,
            "max_new_tokens" => a.max_new_tokens = int(value)? as usize,
            "seed" => a.seed = opt_int()?,
            "greedy" => a.greedy = matches!(value, "on" | "true" | "1"),
            _ => bail!(
                "/set {key}: unknown setting (temperature, top_k, top_p, min_p, repetition_penalty, max_new_tokens, seed, greedy)"
            ),
        }
        Ok(())
    }

    /// The settings, with `chain` (the chain they build) first.
    fn settings(&self, chain: &str) -> String {
        let a = &self.args;
        format!(
            "chain: {chain} | max_new_tokens {} | seed {}",
            a.max_new_tokens,
            a.seed.map_or("random".into(), |s| s.to_string())
        )
    }
}

const HELP: &str = "Type a prompt and press Enter to continue it. Commands:
  /set temperature 0.7   (also top_k, top_p, min_p, repetition_penalty, max_new_tokens, seed, greedy on|off; `none` unsets)
  /strategy FILE|NAME    a strategy file or built-in strategy (`/strategy none`: back to the settings)
  /show                  the current chain and settings
  /help, /quit           (Ctrl-D quits too)";

fn json_of(prompt: &str, o: &Outcome) -> serde_json::Value {
    serde_json::json!({
        "prompt": prompt,
        "text": o.text,
        "tokens": o.tokens,
        "finish_reason": o.finish.as_str(),
        "seed": o.seed,
        "seconds": o.seconds,
        "chain": o.chain,
    })
}

fn status(o: &Outcome) -> String {
    format!(
        "[{} tokens in {:.2} s, {:.1} tokens/s, seed {}, finish: {}]",
        o.tokens.len(),
        o.seconds,
        o.tokens.len() as f64 / o.seconds.max(1e-9),
        o.seed,
        o.finish.as_str()
    )
}

pub(crate) fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64 % 1_000_000_007)
}
