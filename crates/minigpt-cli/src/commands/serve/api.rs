//! The OpenAI completions API as minigpt serves it: the request, checked field by field with
//! the CLI's messages, turned into a decoding chain; and the response objects.

use std::collections::BTreeMap;

use minigpt_decode::processors::Num;
use minigpt_decode::{BuildContext, Last, PluginSpec, Registry, Strategy};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Server limits, from the command line.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_tokens: usize,
    pub max_prompt_tokens: usize,
    pub max_n: usize,
}

/// `POST /v1/completions`: OpenAI's fields, and minigpt's `strategy`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletionRequest {
    pub model: Option<String>,
    pub prompt: Option<Prompt>,
    pub max_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub n: Option<i64>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub logprobs: Option<i64>,
    #[serde(default)]
    pub echo: bool,
    pub stop: Option<Stop>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub logit_bias: Option<BTreeMap<String, f64>>,
    pub seed: Option<i64>,
    /// Accepted, as OpenAI's clients send it; not used.
    #[allow(dead_code)]
    pub user: Option<String>,
    pub best_of: Option<i64>,
    pub suffix: Option<String>,
    /// minigpt: a decoding chain in the strategy files' schema (as JSON), or a strategy's name.
    pub strategy: Option<Value>,
}

/// `stream_options`.
#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// `prompt`: a text, several, or token ids.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Texts(Vec<String>),
    Ids(Vec<u32>),
    IdLists(Vec<Vec<u32>>),
}

/// `stop`: one string or up to four.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

/// A checked request: everything the decoding thread and the response need.
pub struct Checked {
    pub prompts: Vec<PromptIds>,
    pub n: usize,
    pub max_tokens: usize,
    pub stop: Vec<String>,
    pub logprobs: Option<usize>,
    pub echo: bool,
    pub stream: bool,
    pub include_usage: bool,
    pub seed: u64,
    pub strategy: Strategy,
}

/// One prompt: its text (for `echo`) and ids.
pub struct PromptIds {
    pub text: String,
    pub ids: Vec<u32>,
}

/// Checks a request against the model and the limits; the error is the 400 message.
pub fn check(
    mut req: CompletionRequest,
    encode: &dyn Fn(&str) -> Result<Vec<u32>, String>,
    decode: &dyn Fn(&[u32]) -> String,
    vocab: usize,
    limits: &Limits,
    registry: &Registry,
    cx: &BuildContext<'_>,
) -> Result<Checked, String> {
    if req.suffix.is_some() {
        return Err("suffix is not supported: minigpt's models only continue text".into());
    }
    if req.best_of.is_some_and(|b| b != 1) {
        return Err("best_of is not supported: ask for n choices instead".into());
    }
    let texts: Vec<PromptIds> = match req.prompt.take() {
        None => return Err("prompt is required: give a string or a list of strings".into()),
        Some(Prompt::Text(t)) => vec![text_prompt(t, encode)?],
        Some(Prompt::Texts(ts)) => ts
            .into_iter()
            .map(|t| text_prompt(t, encode))
            .collect::<Result<_, _>>()?,
        Some(Prompt::Ids(ids)) => vec![id_prompt(ids, vocab, decode)?],
        Some(Prompt::IdLists(lists)) => lists
            .into_iter()
            .map(|ids| id_prompt(ids, vocab, decode))
            .collect::<Result<_, _>>()?,
    };
    if texts.is_empty() {
        return Err("prompt is an empty list: give at least one prompt".into());
    }
    for p in &texts {
        if p.ids.len() > limits.max_prompt_tokens {
            return Err(format!(
                "prompt has {} tokens, more than this server's limit of {} (--max-prompt-tokens)",
                p.ids.len(),
                limits.max_prompt_tokens
            ));
        }
    }
    let max_tokens = int(
        "max_tokens",
        req.max_tokens.unwrap_or(16),
        0,
        limits.max_tokens,
    )?;
    let n = int("n", req.n.unwrap_or(1), 1, limits.max_n)?;
    let logprobs = req
        .logprobs
        .map(|k| int("logprobs", k, 0, 20))
        .transpose()?;
    let stop = match req.stop.take() {
        None => vec![],
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    if stop.len() > 4 {
        return Err(format!("stop has {} strings: give at most 4", stop.len()));
    }
    if stop.iter().any(String::is_empty) {
        return Err("stop holds an empty string, which would match everywhere: remove it".into());
    }
    let seed = match req.seed {
        Some(s) => s as u64,
        None => crate::commands::generate::clock_seed(),
    };
    if let Some(t) = req.temperature
        && !(t.is_finite() && t >= 0.0)
    {
        return Err(format!(
            "temperature must be a finite number >= 0 (got {t}); 0 means greedy decoding"
        ));
    }
    let strategy = match &req.strategy {
        Some(spec) => {
            let others = [
                ("top_p", req.top_p.is_some()),
                ("presence_penalty", req.presence_penalty.is_some()),
                ("frequency_penalty", req.frequency_penalty.is_some()),
                ("logit_bias", req.logit_bias.is_some()),
            ];
            if let Some((field, _)) = others.iter().find(|(_, on)| *on) {
                return Err(format!(
                    "{field} cannot be combined with strategy: put it in the strategy (only temperature applies on top)"
                ));
            }
            let s = named_or_inline(spec, registry, cx)?;
            if s.is_search() {
                return Err(format!(
                    "strategy {} is a search: the server streams sampling strategies only",
                    s.name
                ));
            }
            match req.temperature {
                Some(t) if t > 0.0 && !s.is_deterministic() => s.with_temperature(t),
                _ => s,
            }
        }
        None => from_fields(&req, registry, cx)?,
    };
    strategy
        .check_vocab(registry, cx, vocab)
        .map_err(|e| e.to_string())?;
    Ok(Checked {
        prompts: texts,
        n,
        max_tokens,
        stop,
        logprobs,
        echo: req.echo,
        stream: req.stream,
        include_usage: req.stream_options.as_ref().is_some_and(|o| o.include_usage),
        seed,
        strategy,
    })
}

fn text_prompt(
    text: String,
    encode: &dyn Fn(&str) -> Result<Vec<u32>, String>,
) -> Result<PromptIds, String> {
    let ids = encode(&text)?;
    if ids.is_empty() {
        return Err("prompt is empty: give some text".into());
    }
    Ok(PromptIds { text, ids })
}

fn id_prompt(
    ids: Vec<u32>,
    vocab: usize,
    decode: &dyn Fn(&[u32]) -> String,
) -> Result<PromptIds, String> {
    if ids.is_empty() {
        return Err("prompt is an empty list of token ids: give at least one".into());
    }
    if let Some(&bad) = ids.iter().find(|&&t| t as usize >= vocab) {
        return Err(format!(
            "prompt holds token id {bad}, outside the model's vocabulary of {vocab}"
        ));
    }
    Ok(PromptIds {
        text: decode(&ids),
        ids,
    })
}

fn int(field: &str, v: i64, lo: usize, hi: usize) -> Result<usize, String> {
    if v < lo as i64 || v > hi as i64 {
        return Err(format!("{field} must be in {lo}..={hi} (got {v})"));
    }
    Ok(v as usize)
}

/// `strategy`: a built-in strategy's name (the files of `configs/decode`), a strategy file's
/// TOML text (a string holding `=`, which no name does), or a chain as a JSON object.
fn named_or_inline(
    spec: &Value,
    registry: &Registry,
    cx: &BuildContext<'_>,
) -> Result<Strategy, String> {
    match spec {
        Value::String(text) if text.contains('=') => {
            Strategy::parse("request", "the request's strategy", text, registry, cx)
                .map_err(|e| e.to_string())
        }
        Value::String(name) => match Strategy::builtin(name, registry, cx) {
            Some(s) => s.map_err(|e| e.to_string()),
            None => Err(format!(
                "strategy {name:?}: no such strategy (GET /v1/strategies lists them)"
            )),
        },
        Value::Object(_) => {
            let table: toml::Table = serde_json::from_value(spec.clone())
                .map_err(|e| format!("strategy: not a strategy table: {e}"))?;
            let text = toml::to_string(&table).map_err(|e| format!("strategy: {e}"))?;
            Strategy::parse("request", "the request's strategy", &text, registry, cx)
                .map_err(|e| e.to_string())
        }
        _ => Err(
            "strategy must be a strategy's name, a strategy file's TOML text or a chain as a JSON object"
                .into(),
        ),
    }
}

/// The chain OpenAI's fields describe, in this order: `logit_bias -> presence_penalty ->
/// frequency_penalty -> temperature -> top_p -> multinomial` (each only when given, and not at
/// its neutral value), or `greedy` at temperature 0.
fn from_fields(
    req: &CompletionRequest,
    registry: &Registry,
    cx: &BuildContext<'_>,
) -> Result<Strategy, String> {
    let mut processors = vec![];
    let mut add = |field: &str, value: String, name: &str, params: toml::Table| {
        registry
            .processor(name, &params, cx)
            .map_err(|e| format!("{field} {value}: {e}"))?;
        processors.push(PluginSpec::new(name, params));
        Ok::<(), String>(())
    };
    let one = |key: &str, v: toml::Value| {
        let mut t = toml::Table::new();
        t.insert(key.into(), v);
        t
    };
    if let Some(bias) = &req.logit_bias
        && !bias.is_empty()
    {
        for (k, &v) in bias {
            if k.parse::<u32>().is_err() {
                return Err(format!("logit_bias key {k:?} is not a token id"));
            }
            if !(-100.0..=100.0).contains(&v) {
                return Err(format!(
                    "logit_bias for token {k} must be in [-100, 100] (got {v})"
                ));
            }
        }
        let table: toml::Table = bias
            .iter()
            .map(|(k, &v)| (k.clone(), toml::Value::Float(v)))
            .collect();
        add(
            "logit_bias",
            format!("{bias:?}"),
            "logit_bias",
            one("bias", toml::Value::Table(table)),
        )?;
    }
    for (field, name, v) in [
        ("presence_penalty", "presence_penalty", req.presence_penalty),
        (
            "frequency_penalty",
            "frequency_penalty",
            req.frequency_penalty,
        ),
    ] {
        if let Some(a) = v {
            if !(a.is_finite() && (-2.0..=2.0).contains(&a)) {
                return Err(format!("{field} must be in [-2, 2] (got {a})"));
            }
            if a != 0.0 {
                add(
                    field,
                    Num(a).to_string(),
                    name,
                    one("alpha", toml::Value::Float(a)),
                )?;
            }
        }
    }
    let t = req.temperature.unwrap_or(1.0);
    let greedy = t == 0.0;
    if !greedy && t != 1.0 {
        add(
            "temperature",
            Num(t).to_string(),
            "temperature",
            one("t", toml::Value::Float(t)),
        )?;
    }
    if let Some(p) = req.top_p {
        if !(p > 0.0 && p <= 1.0) {
            return Err(format!("top_p must be in (0, 1] (got {p})"));
        }
        if !greedy && p < 1.0 {
            add(
                "top_p",
                Num(p).to_string(),
                "top_p",
                one("p", toml::Value::Float(p)),
            )?;
        }
    }
    let selector = if greedy { "greedy" } else { "multinomial" };
    Ok(Strategy {
        name: "request".into(),
        description: "the request's fields".into(),
        processors,
        last: Last::Selector(PluginSpec::new(selector, toml::Table::new())),
    })
}

/// OpenAI's `logprobs` object of a choice, and minigpt's `entropy`: the entropy (nats) of the
/// model's distribution at each token's step (`null` for an echoed prompt's first token, which
/// nothing predicts, as its log-probability).
#[derive(Debug, Default, Serialize)]
pub struct Logprobs {
    pub tokens: Vec<String>,
    pub token_logprobs: Vec<Option<f64>>,
    pub top_logprobs: Vec<Option<BTreeMap<String, f64>>>,
    pub text_offset: Vec<usize>,
    pub entropy: Vec<Option<f64>>,
}

/// One choice of a response (or of a stream chunk).
#[derive(Debug, Serialize)]
pub struct Choice {
    pub text: String,
    pub index: usize,
    pub logprobs: Option<Logprobs>,
    pub finish_reason: Option<&'static str>,
}

/// Token counts.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

/// A completion, or one chunk of a stream.
#[derive(Debug, Serialize)]
pub struct Completion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}
