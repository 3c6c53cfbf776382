//! `beam_search`, with Hugging Face transformers' (v5) definitions.
//!
//! Each step, every running beam's next-token log-probabilities (log-softmax of the raw logits,
//! then the chain's processors) are added to the beam's score (the sum of its log-probabilities);
//! the best 2·`num_beams` candidates over all beams are kept, in order. A candidate *stops* when
//! its token is EOS or it reaches `max_new_tokens`. The best `num_beams` non-stopping candidates
//! run on. Stopping candidates among the best `num_beams` become finished hypotheses with score
//! `sum_logprobs / generated_len ^ length_penalty` (`generated_len` counts the EOS token); at
//! most `num_beams` finished hypotheses are kept, the best ones.
//!
//! Stopping (`early_stopping`): `true` ends the search as soon as `num_beams` hypotheses are
//! finished. `false` ends it once they are, and the best running beam, scored at its current
//! length (`best / cur_len ^ length_penalty`), cannot beat the worst finished one — a heuristic
//! when `length_penalty > 0`, as in transformers. The search also ends when no beam can run.
//! The result is the best `num_return_sequences` finished hypotheses.

use std::fmt;

use crate::cancel::{self, Cancelled};
use crate::dist::lse_and_entropy;
use crate::generation::{FinishReason, Generation};
use crate::model::{LanguageModel, ModelError};
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{ParamInfo, PluginInfo, PluginKind, params};
use crate::row_check::{UnusableRow, check_row, process_checked};
use crate::search::{SearchRequest, SearchStrategy, chain_text};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "beam_search",
    kind: PluginKind::Search,
    description: "Beam search with Hugging Face's length penalty and early stopping.",
    ties: "candidates tied in score go by beam, then token id",
    reference: "transformers beam search (v5)",
    params: &[
        ParamInfo {
            name: "num_beams",
            ty: "integer >= 1",
            default: Some("4"),
        },
        ParamInfo {
            name: "length_penalty",
            ty: "float (score = sum logprob / len^length_penalty)",
            default: Some("1.0"),
        },
        ParamInfo {
            name: "early_stopping",
            ty: "bool",
            default: Some("false"),
        },
        ParamInfo {
            name: "num_return_sequences",
            ty: "integer in [1, num_beams]",
            default: Some("1"),
        },
    ],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "four")]
    num_beams: i64,
    #[serde(default = "one_f")]
    length_penalty: f64,
    #[serde(default)]
    early_stopping: bool,
    #[serde(default = "one_i")]
    num_return_sequences: i64,
}
fn four() -> i64 {
    4
}
fn one_f() -> f64 {
    1.0
}
fn one_i() -> i64 {
    1
}

/// Beam search settings.
#[derive(Debug, Clone)]
pub struct BeamSearch {
    num_beams: usize,
    length_penalty: f64,
    early_stopping: bool,
    num_return_sequences: usize,
}

impl BeamSearch {
    /// Checks and stores the settings.
    pub fn new(
        num_beams: i64,
        length_penalty: f64,
        early_stopping: bool,
        num_return_sequences: i64,
    ) -> Result<Self, String> {
        if num_beams < 1 {
            return Err(format!(
                "num_beams must be an integer >= 1 (got {num_beams})"
            ));
        }
        if !length_penalty.is_finite() {
            return Err(format!(
                "length_penalty must be a finite number (got {length_penalty})"
            ));
        }
        if num_return_sequences < 1 || num_return_sequences > num_beams {
            return Err(format!(
                "num_return_sequences must be in [1, num_beams = {num_beams}] (got {num_return_sequences})"
            ));
        }
        Ok(Self {
            num_beams: num_beams as usize,
            length_penalty,
            early_stopping,
            num_return_sequences: num_return_sequences as usize,
        })
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table) -> Result<Box<dyn SearchStrategy>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(BeamSearch::new(
        p.num_beams,
        p.length_penalty,
        p.early_stopping,
        p.num_return_sequences,
    )?))
}

impl fmt::Display for BeamSearch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "beam_search(num_beams={}, length_penalty={}, early_stopping={})",
            self.num_beams, self.length_penalty, self.early_stopping
        )
    }
}

/// A hypothesis: generated tokens, the sum of their processed log-probabilities, and per-token
/// raw statistics.
#[derive(Debug, Clone)]
struct Beam {
    tokens: Vec<u32>,
    score: f64,
    logprobs: Vec<f64>,
    entropies: Vec<f64>,
}

impl Beam {
    fn extend(&self, token: u32, score: f64, raw_logprob: f64, raw_entropy: f64) -> Self {
        let mut b = self.clone();
        b.tokens.push(token);
        b.score = score;
        b.logprobs.push(raw_logprob);
        b.entropies.push(raw_entropy);
        b
    }

    fn into_generation(self, finish_reason: FinishReason, drop_last: bool) -> Generation {
        let mut g = Generation {
            sampling_entropies: vec![0.0; self.tokens.len()],
            sampling_logprobs: vec![0.0; self.tokens.len()],
            tokens: self.tokens,
            logprobs: self.logprobs,
            entropies: self.entropies,
            finish_reason,
        };
        if drop_last {
            // The EOS token is not part of the text (as in the sampling loop).
            g.tokens.pop();
            g.logprobs.pop();
            g.entropies.pop();
            g.sampling_entropies.pop();
            g.sampling_logprobs.pop();
        }
        g
    }
}

impl SearchStrategy for BeamSearch {
    fn check_vocab(&self, vocab: usize) -> Result<(), String> {
        if self.num_beams > vocab {
            return Err(format!(
                "num_beams = {} is more than the vocabulary's {vocab} tokens: at most {vocab}",
                self.num_beams
            ));
        }
        Ok(())
    }
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn search(
        &mut self,
        model: &mut dyn LanguageModel,
        req: &SearchRequest<'_>,
        processors: &mut [Box<dyn LogitsProcessor>],
    ) -> Result<Vec<Generation>, ModelError> {
        let nb = self.num_beams;
        let eos = req.eos_token_id.filter(|_| !req.ignore_eos);
        if req.max_new_tokens == 0 {
            let empty = Beam {
                tokens: vec![],
                score: 0.0,
                logprobs: vec![],
                entropies: vec![],
            };
            return Ok(vec![empty.into_generation(FinishReason::Length, false)]);
        }
        let mut logits = model.prefill(&[req.prompt.to_vec()])?;
        let mut running = vec![Beam {
            tokens: vec![],
            score: 0.0,
            logprobs: vec![],
            entropies: vec![],
        }];
        // Finished hypotheses with their normalised scores, best first, at most `nb`.
        let mut finished: Vec<(f64, Beam, bool)> = Vec::new();
        let mut improvable = true;
        let mut seq = Vec::new();
        for step in 0..req.max_new_tokens {
            let gen_len = step + 1;
            // (score, beam, token, raw logprob, raw entropy)
            let mut cands: Vec<(f64, usize, u32, f64, f64)> = Vec::new();
            for (bi, beam) in running.iter().enumerate() {
                let raw = logits.row(bi);
                if let Err(problem) = check_row(raw) {
                    let chain = chain_text(processors, self);
                    return Err(Box::new(UnusableRow::new(
                        chain, processors, None, problem, step,
                    )));
                }
                let (lse, h) = lse_and_entropy(raw);
                let mut lp: Vec<f32> = raw.iter().map(|&l| (l as f64 - lse) as f32).collect();
                seq.clear();
                seq.extend_from_slice(req.prompt);
                seq.extend_from_slice(&beam.tokens);
                let cx = StepContext {
                    tokens: &seq,
                    prompt_len: req.prompt.len(),
                    eos_token_id: eos,
                    seed: req.seed,
                };
                if let Err((at, problem)) = process_checked(processors, &cx, &mut lp) {
                    let chain = chain_text(processors, self);
                    return Err(Box::new(UnusableRow::new(
                        chain, processors, at, problem, step,
                    )));
                }
                for (v, &l) in lp.iter().enumerate() {
                    if l.is_finite() {
                        cands.push((beam.score + l as f64, bi, v as u32, raw[v] as f64 - lse, h));
                    }
                }
            }
            cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            cands.truncate(2 * nb);
            let stops = |tok: u32| eos == Some(tok) || gen_len == req.max_new_tokens;
            let can_add = improvable && !(self.early_stopping && finished.len() == nb);
            let mut next = Vec::with_capacity(nb);
            for (rank, &(score, bi, tok, raw_lp, h)) in cands.iter().enumerate() {
                let beam = running[bi].extend(tok, score, raw_lp, h);
                if stops(tok) {
                    if rank < nb && can_add {
                        let norm = score / (gen_len as f64).powf(self.length_penalty);
                        let by_eos = eos == Some(tok);
                        finished.push((norm, beam, by_eos));
                    }
                } else if next.len() < nb {
                    next.push((bi, beam));
                }
            }
            finished.sort_by(|a, b| b.0.total_cmp(&a.0));
            finished.truncate(nb);
            if finished.len() == nb {
                let worst = finished[nb - 1].0;
                let best_running = next
                    .first()
                    .map(|(_, b)| b.score / (gen_len as f64).powf(self.length_penalty));
                if best_running.is_none_or(|s| s <= worst) {
                    improvable = false;
                }
            }
            let done =
                next.is_empty() || !improvable || (self.early_stopping && finished.len() == nb);
            if done {
                break;
            }
            let rows: Vec<usize> = next.iter().map(|(bi, _)| *bi).collect();
            let toks: Vec<u32> = next
                .iter()
                .map(|(_, b)| *b.tokens.last().unwrap_or(&0))
                .collect();
            running = next.into_iter().map(|(_, b)| b).collect();
            if cancel::is_set(req.cancel) {
                return Err(Box::new(Cancelled));
            }
            model.retain(&rows)?;
            logits = model.step(&toks)?;
        }
        let out: Vec<Generation> = finished
            .into_iter()
            .take(self.num_return_sequences)
            .map(|(_, b, by_eos)| {
                let reason = if by_eos {
                    FinishReason::Eos
                } else {
                    FinishReason::Length
                };
                b.into_generation(reason, by_eos)
            })
            .collect();
        if out.is_empty() {
            return Err("beam search finished no hypothesis".into());
        }
        Ok(out)
    }
}
