//! `minigpt serve`: an OpenAI-compatible completions server (axum on tokio) over one decoding
//! thread that batches every request's rows continuously.

mod api;
mod engine;
mod playground;
mod routes;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use minigpt_decode::Registry;
use minigpt_model::Target;
use minigpt_tokenizer::Tokenizer;

use crate::cli::ServeArgs;
use api::Limits;
use engine::{Job, Load};

/// What every route sees.
pub struct ServerState {
    model_name: String,
    tok: Arc<dyn Tokenizer>,
    vocab: usize,
    /// The model's positions (`echo` with `logprobs` scores a prompt in one window).
    context: usize,
    eos: Option<u32>,
    limits: Limits,
    registry: Registry,
    /// The decoding thread's queue (std's sender is shared behind a lock: sends are rare and
    /// short).
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
    load: Arc<Load>,
    /// Requests running or queued before new ones get 503.
    max_requests: usize,
    started: u64,
}

/// Runs `minigpt serve` until Ctrl-C.
pub fn run(args: ServeArgs) -> Result<()> {
    if args.max_batch == 0 || args.max_queue == 0 || args.http_threads == 0 {
        bail!("--max-batch, --max-queue and --http-threads must be at least 1");
    }
    let target = crate::load::target(&args.model.device, &args.model.dtype)?;
    if !matches!(target, Target::Native(_)) {
        bail!(
            "minigpt serve runs on --device cpu: continuous batching needs the native engine, whose rows join a running batch"
        );
    }
    let (lm, tok) = crate::load::load(&args.model)?;
    let source = crate::load::source_of(&args.model);
    let state = build_state(&args, lm, tok, &crate::load::short_name(source.as_ref()));
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .with_context(|| format!("--host {} --port {}: not an address", args.host, args.port))?;
    // One HTTP thread by default: with a worker per core (tokio's default), the workers woke
    // on every streamed token and took cores from the model's threads mid-step
    // (PERFORMANCE.md, "The server's HTTP threads").
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.http_threads)
        .thread_name("minigpt-http")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}: is the port taken? pick another with --port"))?;
        let local = listener.local_addr()?;
        // The first line says where: tests and scripts read the port from it (--port 0).
        eprintln!(
            "serving {} on http://{local} (the playground at /; POST /v1/completions, GET /v1/models, /v1/strategies, /health); Ctrl-C stops",
            state.model_name
        );
        // Streams write one small event per token: without TCP_NODELAY, Nagle's algorithm
        // holds each until the client's (delayed) acknowledgement of the one before.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, router(state, args.max_body_bytes))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("the server failed")
    })
}

fn build_state(
    args: &ServeArgs,
    lm: minigpt_model::GptLm,
    tok: Arc<dyn Tokenizer>,
    name: &str,
) -> Arc<ServerState> {
    let (tx, rx) = std::sync::mpsc::channel();
    let load = Arc::new(Load::default());
    let eos = lm.config.eos_token_id.or(tok.eos_token_id());
    let vocab = lm.config.vocab_size;
    let context = lm.config.n_positions;
    let max_prompt_tokens = args.max_prompt_tokens;
    let engine_load = load.clone();
    let max_batch = args.max_batch;
    std::thread::Builder::new()
        .name("minigpt-decode".into())
        .spawn(move || engine::run(lm, rx, max_batch, engine_load))
        .expect("the decoding thread starts");
    Arc::new(ServerState {
        model_name: name.to_string(),
        tok,
        vocab,
        context,
        eos,
        limits: Limits {
            max_tokens: args.max_tokens,
            max_prompt_tokens,
            max_n: 16,
        },
        registry: Registry::builtin(),
        jobs: Mutex::new(tx),
        load,
        max_requests: args.max_batch + args.max_queue,
        started: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    })
}

fn router(state: Arc<ServerState>, max_body: usize) -> Router {
    Router::new()
        .route("/", get(playground::page))
        .route("/v1/completions", post(routes::completions))
        .route("/v1/models", get(routes::models))
        .route("/v1/strategies", get(routes::strategies))
        .route("/health", get(routes::health))
        .fallback(routes::no_route)
        .method_not_allowed_fallback(routes::wrong_method)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}
