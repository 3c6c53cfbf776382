//! `minigpt serve` on an ephemeral loopback port, driven over HTTP: every route and error
//! status, server-sent events, log-probabilities against `minigpt score`, sampled text against
//! `minigpt generate` with the same seed, rows decoded concurrently against the same requests
//! alone, the queue limit, and a disconnected stream freeing its rows.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{command, minigpt_ok};

/// A server process, stopped on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `minigpt serve --port 0 ARGS` and reads its address from the first line.
fn serve(args: &[&str]) -> Server {
    let mut all = vec!["serve", "--port", "0"];
    all.extend_from_slice(args);
    let mut child = command(&all)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let base = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    // Keep draining stderr so the server never blocks on it.
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = err.read_to_string(&mut sink);
    });
    Server {
        child,
        base: format!("http://{base}"),
    }
}

impl Server {
    fn get(&self, path: &str) -> (u16, Value) {
        reply(ureq::get(&format!("{}{path}", self.base)).call())
    }

    fn post(&self, body: &Value) -> (u16, Value) {
        self.post_raw(&body.to_string())
    }

    fn post_raw(&self, body: &str) -> (u16, Value) {
        reply(
            ureq::post(&format!("{}/v1/completions", self.base))
                .set("Content-Type", "application/json")
                .send_string(body),
        )
    }

    /// A streamed completion's `data:` payloads, in order.
    fn stream(&self, body: &Value) -> Vec<String> {
        let r = ureq::post(&format!("{}/v1/completions", self.base))
            .set("Content-Type", "application/json")
            .send_string(&body.to_string())
            .unwrap();
        assert_eq!(r.header("content-type"), Some("text/event-stream"));
        let mut out = vec![];
        for line in BufReader::new(r.into_reader()).lines() {
            let line = line.unwrap();
            if let Some(data) = line.strip_prefix("data: ") {
                out.push(data.to_string());
            } else {
                assert!(line.is_empty() || line.starts_with(':'), "{line:?}");
            }
        }
        out
    }
}

fn reply(r: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    let r = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = r.status();
    let text = r.into_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

fn text(v: &Value, i: usize) -> String {
    v["choices"][i]["text"].as_str().unwrap().to_string()
}

#[test]
fn routes_errors_streams_and_references() {
    let s = serve(&[]);
    let (st, health) = s.get("/health");
    assert_eq!((st, health["status"].as_str()), (200, Some("ok")));
    let (st, models) = s.get("/v1/models");
    assert_eq!(st, 200);
    assert_eq!(models["data"][0]["id"], "minigpt-shakespeare");
    let (_, strategies) = s.get("/v1/strategies");
    let names: Vec<&str> = strategies["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"top_p_0.9") && names.contains(&"min_p_0.05"),
        "{names:?}"
    );

    // A sampled completion equals `minigpt generate` with the same seed and temperature.
    let prompt = "ROMEO:\nBut soft";
    let body = json!({"prompt": prompt, "max_tokens": 40, "temperature": 0.8, "seed": 7});
    let (st, v) = s.post(&body);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["object"], "text_completion");
    let got = text(&v, 0);
    let cli = generate_json(prompt, &["--temperature", "0.8", "--seed", "7"]);
    assert_eq!(got, cli["text"].as_str().unwrap());
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 40);
    assert_eq!(v["usage"]["prompt_tokens"], prompt.chars().count());
    assert_eq!(v["usage"]["total_tokens"], 40 + prompt.chars().count());

    // Log-probabilities: each chosen token's equals `minigpt score --prompt --text`'s, and the
    // top alternatives are ordered, the chosen one among them when it is likely enough.
    let (_, v) =
        s.post(&json!({"prompt": prompt, "max_tokens": 30, "temperature": 0, "logprobs": 5}));
    let lp = &v["choices"][0]["logprobs"];
    let greedy = text(&v, 0);
    let score = crate::util::json(&minigpt_ok(&[
        "score", "--prompt", prompt, "--text", &greedy, "--json",
    ]));
    let want = score["logprobs"].as_array().unwrap();
    let have = lp["token_logprobs"].as_array().unwrap();
    assert_eq!(have.len(), 30);
    for (i, (h, w)) in have.iter().zip(want).enumerate() {
        let (h, w) = (h.as_f64().unwrap(), w.as_f64().unwrap());
        assert!((h - w).abs() < 1e-5, "token {i}: {h} vs {w}");
    }
    for (i, top) in lp["top_logprobs"].as_array().unwrap().iter().enumerate() {
        let top = top.as_object().unwrap();
        assert!(top.len() <= 5 && !top.is_empty());
        // Greedy: the chosen token is the most likely one.
        let best = top
            .values()
            .map(|x| x.as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        assert!((best - have[i].as_f64().unwrap()).abs() < 1e-9, "step {i}");
        // minigpt's `entropy` lies between what the top 5 and the rest of the 65 tokens allow:
        // the rest, of mass r, each no likelier than the 5th, adds at least r * -ln(p5) and at
        // most r * ln(60 / r) (spread evenly).
        let p: Vec<f64> = top.values().map(|x| x.as_f64().unwrap().exp()).collect();
        let p5 = p.iter().copied().fold(1.0, f64::min);
        let r = (1.0 - p.iter().sum::<f64>()).max(0.0);
        let known: f64 = p.iter().map(|p| -p * p.ln()).sum();
        let h = lp["entropy"][i].as_f64().unwrap();
        let lo = known + r * -p5.ln();
        let hi = known + if r > 0.0 { r * (60.0 / r).ln() } else { 0.0 };
        assert!(
            lo - 1e-9 <= h && h <= hi + 1e-9,
            "step {i}: {lo} <= {h} <= {hi}"
        );
    }
    let tokens: String = lp["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tokens, greedy);

    // echo with logprobs (how evaluation harnesses score a text): the prompt's tokens first,
    // the first with null, the others with `minigpt score`'s log-probabilities; then the
    // generated ones. With max_tokens 0, only the prompt. Streamed: the prompt's in the first
    // chunk.
    let whole = format!("{prompt}{}", &greedy[..10]);
    let (st, v) = s.post(&json!({"prompt": whole, "max_tokens": 0, "echo": true, "logprobs": 3}));
    assert_eq!(st, 200, "{v}");
    let lp = &v["choices"][0]["logprobs"];
    assert_eq!(text(&v, 0), whole);
    let scored = crate::util::json(&minigpt_ok(&["score", "--text", &whole, "--json"]));
    let want = scored["logprobs"].as_array().unwrap();
    let have = lp["token_logprobs"].as_array().unwrap();
    assert_eq!(have.len(), whole.chars().count());
    assert_eq!(
        (have[0].clone(), lp["top_logprobs"][0].clone()),
        (Value::Null, Value::Null)
    );
    for (i, (h, w)) in have[1..].iter().zip(want).enumerate() {
        let (h, w) = (h.as_f64().unwrap(), w.as_f64().unwrap());
        assert!((h - w).abs() < 1e-5, "prompt token {}: {h} vs {w}", i + 1);
    }
    // The greedy continuation's tokens are each the most likely at their step.
    let start = prompt.chars().count();
    for i in start..have.len() {
        let top = lp["top_logprobs"][i].as_object().unwrap();
        let best = top
            .iter()
            .max_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap()))
            .unwrap()
            .0;
        assert_eq!(best, lp["tokens"][i].as_str().unwrap(), "position {i}");
    }
    let offsets: Vec<u64> = lp["text_offset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_u64().unwrap())
        .collect();
    assert_eq!(offsets, (0..whole.len() as u64).collect::<Vec<_>>());
    let chunks = s.stream(&json!({"prompt": prompt, "max_tokens": 3, "echo": true,
                                  "logprobs": 1, "temperature": 0, "stream": true}));
    let first: Value = serde_json::from_str(&chunks[0]).unwrap();
    assert_eq!(first["choices"][0]["text"], prompt);
    assert_eq!(
        first["choices"][0]["logprobs"]["tokens"]
            .as_array()
            .unwrap()
            .len(),
        prompt.chars().count()
    );
    let long = "x".repeat(200);
    let (st, e) = s.post(&json!({"prompt": long, "max_tokens": 1, "echo": true, "logprobs": 1}));
    assert_eq!(st, 400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("128 positions"),
        "{e}"
    );

    // Streaming: one chunk per token, text equal to the whole response, then [DONE].
    let body = json!({"prompt": prompt, "max_tokens": 25, "temperature": 0.9, "seed": 3, "n": 2,
                      "stream": true, "stream_options": {"include_usage": true}});
    let chunks = s.stream(&body);
    assert_eq!(chunks.last().map(String::as_str), Some("[DONE]"));
    let mut streamed = [String::new(), String::new()];
    let mut finished = 0;
    let mut usage = None;
    for c in &chunks[..chunks.len() - 1] {
        let v: Value = serde_json::from_str(c).unwrap();
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            usage = Some(u.clone());
            continue;
        }
        let ch = &v["choices"][0];
        streamed[ch["index"].as_u64().unwrap() as usize].push_str(ch["text"].as_str().unwrap());
        finished += ch["finish_reason"].is_string() as usize;
    }
    assert_eq!(finished, 2);
    assert_eq!(usage.unwrap()["completion_tokens"], 50);
    let mut whole_body = body.clone();
    whole_body["stream"] = json!(false);
    whole_body.as_object_mut().unwrap().remove("stream_options");
    let (_, whole) = s.post(&whole_body);
    assert_eq!(streamed[0], text(&whole, 0));
    assert_eq!(streamed[1], text(&whole, 1));
    assert_ne!(streamed[0], streamed[1], "n choices have their own seeds");

    // Stop strings end the text before them, streamed or not.
    // (Greedy from "ROMEO:\n" writes "I will not so, the senators of the state,\n...".)
    let stop =
        json!({"prompt": "ROMEO:\n", "max_tokens": 200, "temperature": 0, "stop": ["\n\n", ","]});
    let (_, v) = s.post(&stop);
    let t = text(&v, 0);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(t, "I will not so");
    let mut st_body = stop.clone();
    st_body["stream"] = json!(true);
    let chunks = s.stream(&st_body);
    let joined: String = chunks[..chunks.len() - 1]
        .iter()
        .map(|c| {
            let v: Value = serde_json::from_str(c).unwrap();
            v["choices"][0]["text"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(joined, t);

    // A strategy by name and as JSON.
    let (st, v) =
        s.post(&json!({"prompt": prompt, "max_tokens": 5, "strategy": "min_p_0.05", "seed": 1}));
    assert_eq!(st, 200, "{v}");
    let chain =
        json!({"processors": [{"name": "top_k", "k": 1}], "selector": {"name": "multinomial"}});
    let (_, a) = s.post(&json!({"prompt": prompt, "max_tokens": 20, "strategy": chain, "seed": 5}));
    assert_eq!(text(&a, 0), greedy[..20], "top-1 sampling is greedy");
    // ... and as a strategy file's TOML text, checked as a file is.
    let toml = "[[processors]]\nname = \"top_k\"\nk = 1\n[selector]\nname = \"multinomial\"\n";
    let (_, a) = s.post(&json!({"prompt": prompt, "max_tokens": 20, "strategy": toml, "seed": 9}));
    assert_eq!(text(&a, 0), greedy[..20], "top-1 sampling is greedy");
    let (st, e) = s.post(&json!({"prompt": prompt, "strategy": "[selector]\nname = \"nope\""}));
    assert_eq!(st, 400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("nope"),
        "{e}"
    );

    // echo puts the prompt first; a prompt of token ids is the same prompt; a logit bias of
    // +100 on one token makes greedy write only it; penalties are accepted.
    let (_, e) =
        s.post(&json!({"prompt": prompt, "max_tokens": 20, "temperature": 0, "echo": true}));
    assert_eq!(text(&e, 0), format!("{prompt}{}", &greedy[..20]));
    let ids = crate::util::json(&minigpt_ok(&["score", "--text", prompt, "--json"]))["tokens"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(ids.len(), prompt.chars().count());
    let (_, by_ids) = s.post(&json!({"prompt": ids, "max_tokens": 20, "temperature": 0}));
    assert_eq!(text(&by_ids, 0), greedy[..20]);
    let z = ids[0].as_u64().unwrap();
    let (_, biased) = s.post(&json!({"prompt": prompt, "max_tokens": 6, "temperature": 0,
                                     "logit_bias": {z.to_string(): 100}}));
    let first = prompt.chars().next().unwrap().to_string();
    assert_eq!(text(&biased, 0), first.repeat(6));
    let (st, _) = s.post(
        &json!({"prompt": prompt, "max_tokens": 6, "presence_penalty": 1.5,
                                  "frequency_penalty": 0.5, "top_p": 0.9, "seed": 2}),
    );
    assert_eq!(st, 200);

    // Errors: OpenAI's error object with the right status, messages as the CLI's.
    let err = |body: &str, status: u16, needle: &str| {
        let (st, v) = s.post_raw(body);
        assert_eq!(st, status, "{body}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{body}: {msg:?} lacks {needle:?}");
    };
    err(
        r#"{"prompt": "a", "temperature": -1}"#,
        400,
        "temperature must be a finite number >= 0",
    );
    err(
        r#"{"prompt": "a", "top_p": 1.5}"#,
        400,
        "top_p must be in (0, 1]",
    );
    err(r#"{"prompt": "a", "n": 0}"#, 400, "n must be in 1..=16");
    err(
        r#"{"prompt": "a", "logprobs": 21}"#,
        400,
        "logprobs must be in 0..=20",
    );
    err(
        r#"{"prompt": "a", "max_tokens": 100000}"#,
        400,
        "max_tokens must be in 0..=4096",
    );
    err(r#"{"prompt": "a", "stop": ""}"#, 400, "empty string");
    err(r#"{"prompt": "a", "temprature": 1}"#, 400, "temprature");
    err(
        r#"{"prompt": "a", "strategy": "nope"}"#,
        400,
        "no such strategy",
    );
    err(
        r#"{"prompt": "a", "strategy": "beam_4"}"#,
        400,
        "is a search",
    );
    err(
        r#"{"prompt": "a", "strategy": "top_p_0.9", "top_p": 0.5}"#,
        400,
        "cannot be combined",
    );
    err(
        r#"{"prompt": "a", "logit_bias": {"99999": 5}}"#,
        400,
        "99999",
    );
    err(r#"{"prompt": "{"}"#, 400, "");
    err(r#"{"max_tokens": 3}"#, 400, "prompt is required");
    err(r#"{"prompt": "<"}"#, 400, "prompt");
    err(
        r#"{"prompt": "a", "model": "gpt-4"}"#,
        404,
        "does not exist",
    );
    // Other paths and methods: OpenAI's error object too, naming the routes.
    let (st, e) = s.get("/v1/chat/completions");
    assert_eq!(st, 404);
    let m = e["error"]["message"].as_str().unwrap();
    assert!(m.contains("no route GET /v1/chat/completions") && m.contains("POST /v1/completions"));
    let (st, e) = s.get("/v1/completions");
    assert_eq!(st, 405);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not take GET")
    );
}

/// Limits of 0 are refused before the model loads or the port opens: one line, exit 2.
#[test]
fn zero_limits_are_refused_in_one_line() {
    for flag in ["--max-batch", "--max-queue", "--http-threads"] {
        let out = crate::util::minigpt(&["serve", "--port", "0", flag, "0"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} 0: {err}");
        assert!(out.stdout.is_empty(), "{flag} 0 wrote to stdout");
        assert_eq!(err.lines().count(), 1, "{flag} 0: {err}");
        assert!(
            err.contains(flag) && err.contains("at least 1"),
            "{flag} 0: {err}"
        );
    }
}

/// Rows of concurrent requests, joining and leaving one batch, sample exactly what each request
/// samples alone; a full queue answers 503; a client that leaves mid-stream frees its rows.
#[test]
fn concurrent_requests_equal_requests_alone_and_limits_hold() {
    // Two HTTP threads here (one elsewhere): streams written from either give the same tokens.
    let s = serve(&[
        "--max-batch",
        "6",
        "--max-queue",
        "4",
        "--max-tokens",
        "200000",
        "--http-threads",
        "2",
    ]);
    let prompts = ["ROMEO:", "JULIET:\nO", "First Citizen:\n", "KING"];
    let body = |i: usize| {
        json!({"prompt": prompts[i % 4],
               "max_tokens": 20 + 7 * i, "temperature": 0.7 + 0.1 * (i % 3) as f64,
               "top_p": 0.95, "seed": 100 + i, "n": 1 + i % 2})
    };
    let alone: Vec<Value> = (0..8).map(|i| s.post(&body(i)).1).collect();
    let together: Vec<Value> = std::thread::scope(|scope| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let s = &s;
                scope.spawn(move || {
                    std::thread::sleep(Duration::from_millis(3 * i as u64));
                    s.post(&body(i)).1
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for i in 0..8 {
        for c in 0..alone[i]["choices"].as_array().unwrap().len() {
            assert_eq!(
                text(&together[i], c),
                text(&alone[i], c),
                "request {i}, choice {c}"
            );
        }
    }
    // Ten endless streams (200,000 tokens: over a minute each at this model's speed) hold the
    // 6 rows and fill the 4 places of the queue: the next request is refused.
    let long =
        json!({"prompt": "ROMEO:", "max_tokens": 200000, "temperature": 1.0, "stream": true});
    let mut held = vec![];
    for _ in 0..10 {
        let r = ureq::post(&format!("{}/v1/completions", s.base))
            .set("Content-Type", "application/json")
            .send_string(&long.to_string())
            .unwrap();
        held.push(BufReader::new(r.into_reader()));
    }
    let (st, v) = s.post(&json!({"prompt": "a", "max_tokens": 1}));
    assert_eq!(st, 503, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("busy"));
    // Rows join at the next step boundary.
    let t0 = Instant::now();
    loop {
        let (_, h) = s.get("/health");
        if h["running_rows"] == 6 {
            assert_eq!(h["requests"], 10);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{h}");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The running streams send tokens, the waiting ones keep-alive comments.
    for r in &mut held {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("data: ") || line == ":\n", "{line:?}");
    }
    // Hang up: the rows are freed at the next steps, long before they could finish.
    drop(held);
    let t0 = Instant::now();
    loop {
        let (_, h) = s.get("/health");
        if h["running_rows"] == 0 && h["requests"] == 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "rows not freed: {h}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // And the server still answers.
    let (st, _) = s.post(&json!({"prompt": "a", "max_tokens": 2}));
    assert_eq!(st, 200);
}

/// The python of a venv with the official `openai` package: `MINIGPT_OPENAI_PYTHON`, or the
/// venv `.ci/run` makes under the system temp dir; `None` (with a note) when neither exists
/// and CI did not ask for it.
fn openai_python() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("MINIGPT_OPENAI_PYTHON") {
        return Some(p.into());
    }
    let venv = std::env::temp_dir().join("minigpt-openai-venv/bin/python");
    if venv.exists() {
        return Some(venv);
    }
    eprintln!(
        "no openai client here: the openai test is skipped (python3 -m venv {0}; {0}/bin/pip install openai; or set MINIGPT_OPENAI_PYTHON)",
        std::env::temp_dir().join("minigpt-openai-venv").display()
    );
    None
}

/// The official `openai` client as a real client: a completion, a stream and logprobs, held
/// to `minigpt generate` and `minigpt score`.
#[test]
fn the_openai_client_completes_streams_and_reads_logprobs() {
    let Some(python) = openai_python() else {
        return;
    };
    let s = serve(&[]);
    let url = format!("{}/v1", s.base);
    let v = crate::util::script_json(&python, "openai_check.py", &[url.as_ref()]);
    eprintln!("openai {}", v["openai_version"]);
    let prompt = "ROMEO:\nBut soft";
    let cli = generate_json(prompt, &["--temperature", "0.8", "--seed", "7"]);
    assert_eq!(v["text"], cli["text"]);
    assert_eq!(v["streamed"], cli["text"]);
    assert_eq!(v["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 40);
    let score = crate::util::json(&minigpt_ok(&[
        "score",
        "--prompt",
        prompt,
        "--text",
        v["greedy"].as_str().unwrap(),
        "--json",
    ]));
    let (have, want) = (
        v["token_logprobs"].as_array().unwrap(),
        score["logprobs"].as_array().unwrap(),
    );
    assert_eq!(have.len(), 30);
    for (h, w) in have.iter().zip(want) {
        assert!((h.as_f64().unwrap() - w.as_f64().unwrap()).abs() < 1e-5);
    }
    assert_eq!(v["top_logprobs"][0].as_object().unwrap().len(), 3);
    assert_eq!(v["error"]["status"], 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("top_p must be in (0, 1]")
    );
}

/// The playground (`GET /`) in headless Chromium, driven by `scripts/playground_check.py`: a
/// typed prompt, four columns (a preset, the greedy preset, a chain as JSON, a chain that is
/// not JSON) run side by side, and a click on a token. What the page shows is held to the
/// server's own answers to the same requests and to `minigpt generate`.
#[test]
fn the_playground_streams_strategies_side_by_side_in_chromium() {
    let s = serve(&[]);
    let r = ureq::get(&format!("{}/", s.base)).call().unwrap();
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = r.into_string().unwrap();
    assert!(page.contains("<title>minigpt playground</title>"));
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http") && !page.contains("@import"),
        "the page loads no external assets"
    );
    if !crate::util::browser_here() {
        return;
    }
    let dir = crate::util::temp_dir("playground");
    let shot = dir.path().join("playground.png");
    let seen = crate::util::script_json(
        "python3",
        "playground_check.py",
        &[s.base.as_ref(), shot.as_os_str()],
    );
    eprintln!("playground: {}", seen["columns"]);
    assert_eq!(seen["console_errors"], json!([]));
    assert_eq!(seen["network_requests"], json!([]));
    assert_eq!(seen["initial_columns"], 2);
    assert_eq!(seen["columns_set"], json!(["top_p_0.9", "greedy", "", ""]));
    assert_eq!(seen["add_disabled_at_4"], true);
    let presets = seen["presets"].as_array().unwrap();
    assert!(presets.contains(&json!("min_p_0.05")) && !presets.contains(&json!("beam_4")));
    let prompt = "ROMEO:\n";
    assert_eq!(seen["prompt"], prompt);
    let cols = seen["columns"].as_array().unwrap();

    // Each column's text is the server's answer to the same request made directly.
    let chain =
        json!({"processors": [{"name": "top_k", "k": 5}], "selector": {"name": "multinomial"}});
    let direct = |strategy: Value| {
        let (st, v) = s.post(&json!({"prompt": prompt, "max_tokens": 40, "seed": 7,
                                     "logprobs": 10, "strategy": strategy}));
        assert_eq!(st, 200, "{v}");
        v
    };
    let top_p = direct(json!("top_p_0.9"));
    for (i, want) in [(0, text(&top_p, 0)), (2, text(&direct(chain), 0))] {
        let c = &cols[i];
        assert_eq!(
            (c["state"].as_str(), c["tokens"].as_u64()),
            (Some("done"), Some(40))
        );
        assert_eq!(c["shaded"], 40, "every token shaded");
        assert_eq!(c["prompt"], prompt);
        assert_eq!(c["text"].as_str().unwrap(), want, "column {i}");
    }
    // The greedy column is `minigpt generate --greedy`.
    let cli = generate_json(prompt, &["--greedy"]);
    assert_eq!(cols[1]["state"], "done");
    assert_eq!(cols[1]["text"], cli["text"]);
    // The chain that is not JSON: an error in its column, no request.
    assert_eq!(cols[3]["state"], "error");
    assert!(
        cols[3]["info"]
            .as_str()
            .unwrap()
            .contains("the chain is not valid JSON"),
        "{}",
        cols[3]["info"]
    );
    // A token's shade title is its probability.
    let lp0 = top_p["choices"][0]["logprobs"]["token_logprobs"][0]
        .as_f64()
        .unwrap();
    assert_eq!(
        cols[0]["titles"][0].as_str().unwrap(),
        format!("p = {}", fmt_p(lp0.exp()))
    );

    // The third token's detail: the ten most likely tokens, most likely first, their
    // probabilities and the step's entropy as the API reports them; the chosen one marked.
    let d = &seen["detail"];
    assert_eq!(d["hidden"], false);
    assert_eq!(d["picked"], 1);
    let lp = &top_p["choices"][0]["logprobs"];
    let mut want: Vec<f64> = lp["top_logprobs"][2]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap().exp())
        .collect();
    want.sort_by(|a, b| b.total_cmp(a));
    let rows = d["rows"].as_array().unwrap();
    assert_eq!(want.len(), 10);
    for (i, w) in want.iter().enumerate() {
        assert_eq!(rows[i]["cells"][2].as_str().unwrap(), fmt_p(*w), "row {i}");
    }
    let chosen = lp["tokens"][2].as_str().unwrap();
    assert_eq!(
        d["title"].as_str().unwrap(),
        format!("step 3: {}", serde_json::to_string(chosen).unwrap())
    );
    assert_eq!(
        rows.iter().filter(|r| r["chosen"] == true).count(),
        1,
        "{rows:?}"
    );
    let entropy = lp["entropy"][2].as_f64().unwrap();
    assert!(
        d["meta"]
            .as_str()
            .unwrap()
            .contains(&format!("entropy {entropy:.3} nats")),
        "{}",
        d["meta"]
    );
    // Stop: the long run's three requests end early, and the server frees their rows.
    assert_eq!(seen["before_stop"], true);
    assert_eq!(seen["stop_disabled"], true);
    let stopped = seen["stopped"]
        .as_array()
        .expect("the columns settle after Stop");
    let states: Vec<&str> = stopped
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["stopped", "stopped", "stopped", "error"],
        "{stopped:?}"
    );
    let n = stopped[0]["tokens"].as_u64().unwrap();
    assert!((5..4000).contains(&n), "{n} tokens before Stop");
    // Nothing left running once the page has stopped (rows leave at the next step).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, h) = s.get("/health");
        let held = (h["running_rows"].as_u64(), h["requests"].as_u64());
        if held == (Some(0), Some(0)) {
            break;
        }
        assert!(Instant::now() < deadline, "still held after Stop: {h}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The playground's probability format: three decimals from 0.01, else one significant digit
/// in exponent form (JavaScript's `toFixed(3)` and `toExponential(1)`).
fn fmt_p(p: f64) -> String {
    if p >= 0.01 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

/// `minigpt generate --prompt PROMPT --max-new-tokens 40 EXTRA... --json`.
fn generate_json(prompt: &str, extra: &[&str]) -> Value {
    let mut args = vec!["generate", "--prompt", prompt, "--max-new-tokens", "40"];
    args.extend_from_slice(extra);
    args.push("--json");
    crate::util::json(&minigpt_ok(&args))
}
