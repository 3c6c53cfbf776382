//! The server's decoding thread: one [`Batch`] on the model that every request's rows join at
//! a step boundary and leave when they finish (continuous batching). A request whose client
//! went away (its event channel closed) loses its rows at the next step.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use minigpt_decode::dist::lse_and_entropy;
use minigpt_decode::{Batch, FinishReason, NewRow, Pipeline, StopStrings};
use minigpt_model::GptLm;
use tokio::sync::mpsc::UnboundedSender;

/// One row of a request: a prompt and one of its `n` choices.
pub struct JobRow {
    /// The choice's index in the response.
    pub index: usize,
    pub prompt: Vec<u32>,
    pub pipeline: Pipeline,
    pub seed: u64,
    pub max_tokens: usize,
    pub stop: Arc<StopStrings>,
    /// Alternatives to report per token (`logprobs`), if any.
    pub logprobs: Option<usize>,
    /// `echo` with `logprobs`: report the prompt's own tokens first (an [`Event::Prompt`]).
    pub score_prompt: bool,
}

/// A request for the decoding thread.
pub struct Job {
    pub rows: Vec<JobRow>,
    pub eos_token_id: Option<u32>,
    /// Where the rows' tokens go; a closed channel (the client left) frees the rows.
    pub events: UnboundedSender<Event>,
}

/// What the decoding thread reports.
#[derive(Debug)]
pub enum Event {
    /// A token of choice `index`: its raw log-probability, the entropy of the model's
    /// distribution at that step (nats), and the top alternatives when asked for.
    Token {
        index: usize,
        token: u32,
        logprob: f64,
        entropy: f64,
        top: Vec<(u32, f64)>,
    },
    /// The prompt of choice `index` scored (`echo` with `logprobs`): its tokens, and for each
    /// token after the first its log-probability, the entropy of its step and the top
    /// alternatives.
    Prompt {
        index: usize,
        tokens: Vec<u32>,
        steps: Vec<Step>,
    },
    /// Choice `index` is complete.
    Done { index: usize, finish: FinishReason },
    /// Decoding failed for this request (a row the chain could not handle).
    Failed(String),
}

/// One scored position of a prompt.
#[derive(Debug, Clone)]
pub struct Step {
    pub logprob: f64,
    pub entropy: f64,
    pub top: Vec<(u32, f64)>,
}

/// Scores `prompt` in one uncached forward pass (the batch's caches are untouched): each token
/// after the first given the ones before it.
fn score_prompt(lm: &GptLm, prompt: &[u32], k: usize) -> Vec<Step> {
    let vocab = lm.config.vocab_size;
    let logits = lm.sequence_logits(prompt);
    logits
        .chunks_exact(vocab)
        .zip(&prompt[1..])
        .map(|(row, &next)| {
            let (lse, entropy) = lse_and_entropy(row);
            Step {
                logprob: row[next as usize] as f64 - lse,
                entropy,
                top: top_k(row, lse, k),
            }
        })
        .collect()
}

/// Rows decoding and waiting, shared with the HTTP side for `/health` and the queue limit.
#[derive(Debug, Default)]
pub struct Load {
    /// Rows in the model's batch.
    pub running: AtomicUsize,
    /// Requests accepted and not yet finished.
    pub requests: AtomicUsize,
}

struct Owner {
    events: UnboundedSender<Event>,
    index: usize,
    logprobs: Option<usize>,
}

/// Runs until the job channel closes: admits waiting rows while the batch holds fewer than
/// `max_batch`, steps, and reports every token.
pub fn run(mut lm: GptLm, jobs: Receiver<Job>, max_batch: usize, load: Arc<Load>) {
    let mut batch: Batch = Batch::new();
    let mut owners: HashMap<usize, Owner> = HashMap::new();
    let mut waiting: VecDeque<(NewRow, Owner)> = VecDeque::new();
    let mut next_id = 0usize;
    loop {
        // Take new jobs: wait for one when idle, else only what has arrived.
        let mut take = |job: Job, lm: &GptLm, waiting: &mut VecDeque<(NewRow, Owner)>| {
            // `echo` with `logprobs`: the prompts' scores first. A request's `n` choices of one
            // prompt come one after another, so each prompt is scored once.
            let mut scored: Option<(&[u32], Vec<Step>)> = None;
            for r in job.rows.iter().filter(|r| r.score_prompt) {
                let steps = match scored.take() {
                    Some((p, steps)) if p == r.prompt.as_slice() => steps,
                    _ => score_prompt(lm, &r.prompt, r.logprobs.unwrap_or(0)),
                };
                let _ = job.events.send(Event::Prompt {
                    index: r.index,
                    tokens: r.prompt.clone(),
                    steps: steps.clone(),
                });
                scored = Some((&r.prompt, steps));
            }
            for r in job.rows {
                let row = NewRow {
                    id: next_id,
                    prompt: r.prompt,
                    pipeline: r.pipeline,
                    seed: r.seed,
                    max_new_tokens: r.max_tokens,
                    eos_token_id: job.eos_token_id,
                    ignore_eos: false,
                    stop: r.stop,
                    max_new_chars: None,
                };
                next_id += 1;
                let owner = Owner {
                    events: job.events.clone(),
                    index: r.index,
                    logprobs: r.logprobs,
                };
                waiting.push_back((row, owner));
            }
        };
        if batch.is_empty() && waiting.is_empty() {
            match jobs.recv_timeout(Duration::from_millis(200)) {
                Ok(job) => take(job, &lm, &mut waiting),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        while let Ok(job) = jobs.try_recv() {
            take(job, &lm, &mut waiting);
        }
        // Clients gone: their rows leave, decoding or waiting.
        waiting.retain(|(_, o)| !o.events.is_closed());
        let gone = |id: usize| owners.get(&id).is_none_or(|o| o.events.is_closed());
        if let Err(e) = batch.remove(&mut lm, gone) {
            fail_all(&mut batch, &mut owners, &e.to_string());
            continue;
        }
        owners.retain(|_, o| !o.events.is_closed());
        while batch.len() < max_batch
            && let Some((row, owner)) = waiting.pop_front()
        {
            let id = row.id;
            owners.insert(id, owner);
            if let Err(e) = batch.add(row)
                && let Some(o) = owners.remove(&id)
            {
                let _ = o.events.send(Event::Failed(e.to_string()));
            }
        }
        load.running.store(batch.len(), Ordering::Relaxed);
        let step = (|| -> Result<(), minigpt_decode::ModelError> {
            for (id, g) in batch.advance(&mut lm)? {
                finish(&mut owners, id, g.finish_reason);
            }
            let mut reports = vec![];
            let done = batch.select(&mut lm, |a| {
                let Some(o) = owners.get(&a.id) else { return };
                let top = o.logprobs.map_or_else(Vec::new, |k| top_k(a.raw, a.lse, k));
                reports.push((
                    a.id,
                    Event::Token {
                        index: o.index,
                        token: a.token,
                        logprob: a.raw[a.token as usize] as f64 - a.lse,
                        entropy: a.entropy,
                        top,
                    },
                ));
            })?;
            for (id, event) in reports {
                if let Some(o) = owners.get(&id) {
                    let _ = o.events.send(event);
                }
            }
            for (id, g) in done {
                finish(&mut owners, id, g.finish_reason);
            }
            Ok(())
        })();
        if let Err(e) = step {
            fail_all(&mut batch, &mut owners, &e.to_string());
        }
        load.running.store(batch.len(), Ordering::Relaxed);
    }
}

fn finish(owners: &mut HashMap<usize, Owner>, id: usize, finish: FinishReason) {
    if let Some(o) = owners.remove(&id) {
        let _ = o.events.send(Event::Done {
            index: o.index,
            finish,
        });
    }
}

/// A failed step leaves the batch unusable: every row in it fails, and the next request starts
/// a fresh batch.
fn fail_all(batch: &mut Batch, owners: &mut HashMap<usize, Owner>, message: &str) {
    for id in batch.ids().collect::<Vec<_>>() {
        if let Some(o) = owners.remove(&id) {
            let _ = o.events.send(Event::Failed(message.to_string()));
        }
    }
    *batch = Batch::new();
}

/// The `k` most likely tokens of a row of raw logits with their log-probabilities, most likely
/// first (ties by lower id).
fn top_k(raw: &[f32], lse: f64, k: usize) -> Vec<(u32, f64)> {
    let mut ids: Vec<u32> = (0..raw.len() as u32).collect();
    let k = k.min(ids.len());
    let by = |a: &u32, b: &u32| raw[*b as usize].total_cmp(&raw[*a as usize]).then(a.cmp(b));
    if k < ids.len() {
        ids.select_nth_unstable_by(k, by);
        ids.truncate(k);
    }
    ids.sort_by(by);
    ids.into_iter()
        .map(|t| (t, raw[t as usize] as f64 - lse))
        .collect()
}
