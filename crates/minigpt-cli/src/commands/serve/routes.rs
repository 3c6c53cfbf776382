//! The HTTP routes: `/v1/completions` (whole or streamed as server-sent events), `/v1/models`,
//! `/v1/strategies`, `/health`; errors as OpenAI's error object.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{Method, StatusCode, Uri};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use minigpt_decode::{BuildContext, FinishReason, StopStrings};
use minigpt_tokenizer::StreamDecoder;
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use super::ServerState;
use super::api::{Checked, Choice, Completion, CompletionRequest, Logprobs, Usage, check};
use super::engine::{Event, Job, JobRow, Load};

/// An error as OpenAI sends it, with its status.
pub struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let kind = match status {
            StatusCode::NOT_FOUND => "not_found_error",
            StatusCode::SERVICE_UNAVAILABLE => "server_overloaded",
            s if s.is_server_error() => "server_error",
            _ => "invalid_request_error",
        };
        Self {
            status,
            message: message.into(),
            kind,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"message": self.message, "type": self.kind, "param": null, "code": null}});
        (self.status, Json(body)).into_response()
    }
}

/// The routes, for the 404 and 405 messages.
const ROUTES: &str =
    "GET / (the playground), POST /v1/completions, GET /v1/models, GET /v1/strategies, GET /health";

/// Any other path: a 404 as OpenAI's error object, naming the routes.
pub async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route {method} {}: this server has {ROUTES}", uri.path()),
    )
}

/// A known path with the wrong method: a 405 as OpenAI's error object.
pub async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} does not take {method}: this server has {ROUTES}",
            uri.path()
        ),
    )
}

/// `GET /health`.
pub async fn health(State(s): State<Arc<ServerState>>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "model": s.model_name,
        "running_rows": s.load.running.load(Ordering::Relaxed),
        "requests": s.load.requests.load(Ordering::Relaxed),
    }))
}

/// `GET /v1/models`.
pub async fn models(State(s): State<Arc<ServerState>>) -> Json<serde_json::Value> {
    Json(json!({
        "object": "list",
        "data": [{"id": s.model_name, "object": "model", "created": s.started, "owned_by": "minigpt"}],
    }))
}

/// `GET /v1/strategies`: the built-in strategies, each with its chain and file text.
pub async fn strategies(State(s): State<Arc<ServerState>>) -> Json<serde_json::Value> {
    let tok = s.tok.clone();
    let encode = move |t: &str| tok.encode(t).unwrap_or_default();
    let cx = BuildContext {
        encode: Some(&encode),
    };
    let data: Vec<serde_json::Value> = minigpt_decode::BUILTIN_STRATEGIES
        .iter()
        .filter_map(|(name, text)| {
            let st = minigpt_decode::Strategy::builtin(name, &s.registry, &cx)?.ok()?;
            Some(json!({
                "name": name,
                "description": st.description,
                "chain": st.chain(&s.registry, &cx).ok(),
                "search": st.is_search(),
                "toml": text,
            }))
        })
        .collect();
    Json(json!({"object": "list", "data": data}))
}

/// Counts a request from acceptance until its response (or stream) is dropped.
struct Admitted(Arc<Load>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.requests.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `POST /v1/completions`.
pub async fn completions(
    State(s): State<Arc<ServerState>>,
    body: Result<Json<CompletionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| {
        let status = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError::new(status, e.body_text())
    })?;
    let (reply, rx, admitted, streaming) = submit(&s, req)?;
    if streaming {
        Ok(stream(reply, rx, admitted).into_response())
    } else {
        whole(reply, rx, admitted)
            .await
            .map(IntoResponse::into_response)
    }
}

/// Checks a request, admits it and hands its rows to the decoding thread (no await: the
/// strategy's build context is not `Send`).
fn submit(
    s: &ServerState,
    req: CompletionRequest,
) -> Result<(Reply, UnboundedReceiver<Event>, Admitted, bool), ApiError> {
    if let Some(m) = &req.model
        && m != &s.model_name
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "the model {m:?} does not exist: this server serves {:?} (GET /v1/models)",
                s.model_name
            ),
        ));
    }
    let tok = s.tok.clone();
    let encode = |t: &str| tok.encode(t).map_err(|e| format!("prompt: {e}"));
    let decode = |ids: &[u32]| tok.decode(ids);
    let cx_encode = |t: &str| tok.encode(t).unwrap_or_default();
    let cx = BuildContext {
        encode: Some(&cx_encode),
    };
    let c = check(req, &encode, &decode, s.vocab, &s.limits, &s.registry, &cx)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    let score_prompt = c.echo && c.logprobs.is_some();
    if score_prompt && let Some(p) = c.prompts.iter().find(|p| p.ids.len() > s.context) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "echo with logprobs scores the prompt in one window: this prompt has {} tokens, more than the model's {} positions",
                p.ids.len(),
                s.context
            ),
        ));
    }
    // Admission: running and queued requests together.
    let before = s.load.requests.fetch_add(1, Ordering::Relaxed);
    let admitted = Admitted(s.load.clone());
    if before >= s.max_requests {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the server is busy ({before} requests running or queued; --max-batch and --max-queue): retry later"
            ),
        ));
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let bytes_tok = tok.clone();
    let stop = Arc::new(StopStrings::new(
        c.stop.clone(),
        Arc::new(move |t| bytes_tok.decode_bytes(&[t])),
    ));
    let mut rows = vec![];
    for (i, p) in c.prompts.iter().enumerate() {
        for j in 0..c.n {
            let pipeline = c
                .strategy
                .pipeline(&s.registry, &cx)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
            rows.push(JobRow {
                index: i * c.n + j,
                prompt: p.ids.clone(),
                pipeline,
                seed: c.seed.wrapping_add(j as u64),
                max_tokens: c.max_tokens,
                stop: stop.clone(),
                logprobs: c.logprobs,
                score_prompt,
            });
        }
    }
    let job = Job {
        rows,
        eos_token_id: s.eos,
        events: tx,
    };
    s.jobs
        .lock()
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the engine is gone"))?
        .send(job)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the engine stopped"))?;
    let id = format!("cmpl-{:x}", c.seed ^ now());
    Ok((Reply::new(s, &c, id), rx, admitted, c.stream))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One choice being written.
struct ChoiceText {
    decoder: StreamDecoder,
    /// The generated text so far (after `echo`'s prompt).
    text: String,
    /// Bytes of `text` already sent (streaming).
    sent: usize,
    /// Where the generated text starts in `text` (after an echoed prompt).
    from: usize,
    tokens: usize,
    logprobs: Logprobs,
    finish: Option<&'static str>,
}

/// A response being assembled from the decoding thread's events.
struct Reply {
    id: String,
    created: u64,
    model: String,
    tok: Arc<dyn minigpt_tokenizer::Tokenizer>,
    stop: Vec<String>,
    want_logprobs: bool,
    include_usage: bool,
    prompt_tokens: usize,
    choices: Vec<ChoiceText>,
}

impl Reply {
    fn new(s: &ServerState, c: &Checked, id: String) -> Self {
        let choices = c
            .prompts
            .iter()
            .flat_map(|p| (0..c.n).map(move |_| p))
            .map(|p| ChoiceText {
                decoder: StreamDecoder::new(),
                text: if c.echo {
                    p.text.clone()
                } else {
                    String::new()
                },
                sent: 0,
                from: if c.echo { p.text.len() } else { 0 },
                tokens: 0,
                logprobs: Logprobs::default(),
                finish: None,
            })
            .collect();
        Self {
            id,
            created: now(),
            model: s.model_name.clone(),
            tok: s.tok.clone(),
            stop: c.stop.clone(),
            want_logprobs: c.logprobs.is_some(),
            include_usage: c.include_usage,
            prompt_tokens: c.prompts.iter().map(|p| p.ids.len()).sum(),
            choices,
        }
    }

    /// Applies one event: the choice it concerns and how many entries it added to that
    /// choice's `logprobs`; `Err` for a failed request.
    fn apply(&mut self, event: Event) -> Result<(usize, usize), String> {
        match event {
            Event::Prompt {
                index,
                tokens,
                steps,
            } => {
                let tok = self.tok.clone();
                let lp = &mut self.choices[index].logprobs;
                let mut offset = 0;
                for (j, &t) in tokens.iter().enumerate() {
                    let piece = tok.decode(&[t]);
                    lp.text_offset.push(offset);
                    offset += piece.len();
                    lp.tokens.push(piece);
                    // The first token has no context to be predicted from: null, as OpenAI's.
                    let step = j.checked_sub(1).map(|i| &steps[i]);
                    lp.token_logprobs.push(step.map(|s| s.logprob));
                    lp.entropy.push(step.map(|s| s.entropy));
                    lp.top_logprobs.push(step.map(|s| {
                        s.top
                            .iter()
                            .map(|&(t, lp)| (tok.decode(&[t]), lp))
                            .collect()
                    }));
                }
                Ok((index, tokens.len()))
            }
            Event::Token {
                index,
                token,
                logprob,
                entropy,
                top,
            } => {
                let tok = self.tok.clone();
                let c = &mut self.choices[index];
                c.tokens += 1;
                let piece = c.decoder.push(tok.as_ref(), token);
                if self.want_logprobs {
                    let offset = c.text.len();
                    c.logprobs.tokens.push(tok.decode(&[token]));
                    c.logprobs.token_logprobs.push(Some(logprob));
                    let alts: BTreeMap<String, f64> =
                        top.iter().map(|&(t, lp)| (tok.decode(&[t]), lp)).collect();
                    c.logprobs.top_logprobs.push(Some(alts));
                    c.logprobs.text_offset.push(offset);
                    c.logprobs.entropy.push(Some(entropy));
                }
                c.text.push_str(&piece);
                Ok((index, usize::from(self.want_logprobs)))
            }
            Event::Done { index, finish } => {
                let c = &mut self.choices[index];
                let rest = c.decoder.finish();
                c.text.push_str(&rest);
                c.finish = Some(match finish {
                    FinishReason::Stop | FinishReason::Eos => "stop",
                    _ => "length",
                });
                // OpenAI's text ends before the stop string.
                if let Some(cut) = self
                    .stop
                    .iter()
                    .filter_map(|st| {
                        let from = c.sent.max(c.from).min(c.text.len());
                        c.text[from..].find(st.as_str()).map(|i| i + from)
                    })
                    .min()
                {
                    c.text.truncate(cut);
                }
                Ok((index, 0))
            }
            Event::Failed(e) => Err(e),
        }
    }

    fn done(&self) -> bool {
        self.choices.iter().all(|c| c.finish.is_some())
    }

    fn usage(&self) -> Usage {
        let completion_tokens = self.choices.iter().map(|c| c.tokens).sum();
        Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens,
            total_tokens: self.prompt_tokens + completion_tokens,
        }
    }

    /// The text of choice `index` that can be sent now: all of it once finished, else all but
    /// the tail that could still begin a stop string.
    fn sendable(&mut self, index: usize) -> String {
        let hold = self.stop.iter().map(|s| s.len()).max().unwrap_or(1) - 1;
        let c = &mut self.choices[index];
        let mut end = if c.finish.is_some() {
            c.text.len()
        } else {
            c.text.len().saturating_sub(hold)
        };
        while !c.text.is_char_boundary(end) {
            end -= 1;
        }
        let piece = c.text[c.sent.min(end)..end].to_string();
        c.sent = c.sent.max(end);
        piece
    }

    fn chunk(&self, choices: Vec<Choice>, usage: Option<Usage>) -> Completion {
        Completion {
            id: self.id.clone(),
            object: "text_completion",
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
        }
    }
}

async fn whole(
    mut reply: Reply,
    mut rx: UnboundedReceiver<Event>,
    _admitted: Admitted,
) -> Result<Json<Completion>, ApiError> {
    while !reply.done() {
        let Some(event) = rx.recv().await else {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the engine stopped",
            ));
        };
        reply
            .apply(event)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    }
    let want = reply.want_logprobs;
    let usage = reply.usage();
    let choices = reply
        .choices
        .iter_mut()
        .enumerate()
        .map(|(index, c)| Choice {
            text: std::mem::take(&mut c.text),
            index,
            logprobs: want.then(|| std::mem::take(&mut c.logprobs)),
            finish_reason: c.finish,
        })
        .collect();
    Ok(Json(reply.chunk(choices, Some(usage))))
}

/// Server-sent events: a chunk per token (text held back only where a stop string could
/// begin), a last chunk per choice with its finish reason, the usage when asked, `[DONE]`.
fn stream(
    reply: Reply,
    rx: UnboundedReceiver<Event>,
    admitted: Admitted,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let state = (reply, rx, admitted, false);
    let events = stream::unfold(state, |(mut reply, mut rx, admitted, ended)| async move {
        if ended {
            return None;
        }
        if reply.done() {
            let mut out = String::new();
            if reply.include_usage {
                let usage = reply.usage();
                let chunk = reply.chunk(vec![], Some(usage));
                out = serde_json::to_string(&chunk).unwrap_or_default();
            }
            let ev = if out.is_empty() {
                SseEvent::default().data("[DONE]")
            } else {
                // The usage chunk, then [DONE] on the next turn.
                let ev = SseEvent::default().data(out);
                reply.include_usage = false;
                return Some((Ok(ev), (reply, rx, admitted, false)));
            };
            return Some((Ok(ev), (reply, rx, admitted, true)));
        }
        let event = rx.recv().await;
        let Some(event) = event else {
            let err = json!({"error": {"message": "the engine stopped", "type": "server_error"}});
            return Some((
                Ok(SseEvent::default().data(err.to_string())),
                (reply, rx, admitted, true),
            ));
        };
        let want = reply.want_logprobs;
        match reply.apply(event) {
            Err(e) => {
                let err = json!({"error": {"message": e, "type": "invalid_request_error"}});
                Some((
                    Ok(SseEvent::default().data(err.to_string())),
                    (reply, rx, admitted, true),
                ))
            }
            Ok((index, new)) => {
                let text = reply.sendable(index);
                let c = &mut reply.choices[index];
                let logprobs = (want && new > 0).then(|| {
                    let lp = &c.logprobs;
                    let from = lp.tokens.len() - new;
                    Logprobs {
                        tokens: lp.tokens[from..].to_vec(),
                        token_logprobs: lp.token_logprobs[from..].to_vec(),
                        top_logprobs: lp.top_logprobs[from..].to_vec(),
                        text_offset: lp.text_offset[from..].to_vec(),
                        entropy: lp.entropy[from..].to_vec(),
                    }
                });
                let choice = Choice {
                    text,
                    index,
                    logprobs,
                    finish_reason: c.finish,
                };
                let chunk = reply.chunk(vec![choice], None);
                let data = serde_json::to_string(&chunk).unwrap_or_default();
                Some((
                    Ok(SseEvent::default().data(data)),
                    (reply, rx, admitted, false),
                ))
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
