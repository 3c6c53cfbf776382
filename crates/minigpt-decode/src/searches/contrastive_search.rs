//! `contrastive_search` (Su et al. 2022, "A Contrastive Framework for Neural Text Generation"),
//! as Hugging Face implements it: among the k most likely next tokens (after the chain's
//! processors), choose the one maximising
//! `(1 − α) · p(v) − α · max_j cos(h_v, h_j)`, where `h_v` is the model's last hidden state
//! with `v` appended and `h_j` runs over the hidden states of every earlier position.
//! Ties go to the more likely candidate (then the lower id).

use std::fmt;

use crate::cancel::{self, Cancelled};
use crate::dist::{entropy, log_prob, softmax};
use crate::generation::{FinishReason, Generation};
use crate::model::{LanguageModel, Logits, ModelError};
use crate::processor::{LogitsProcessor, StepContext};
use crate::registry::{ParamInfo, PluginInfo, PluginKind, params};
use crate::row_check::{UnusableRow, process_checked};
use crate::search::{SearchRequest, SearchStrategy, chain_text};

/// Registry entry.
pub const INFO: PluginInfo = PluginInfo {
    name: "contrastive_search",
    kind: PluginKind::Search,
    description: "Contrastive search: top-k candidates scored by (1-alpha) p(v) - alpha max cos(h_v, h_context) (Su et al. 2022).",
    ties: "candidates tied in score go to the more likely, then the lower id",
    reference: "transformers contrastive search (Su et al. 2022)",
    params: &[
        ParamInfo {
            name: "top_k",
            ty: "integer >= 1",
            default: Some("4"),
        },
        ParamInfo {
            name: "penalty_alpha",
            ty: "float in [0, 1]",
            default: Some("0.6"),
        },
    ],
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "four")]
    top_k: i64,
    #[serde(default = "alpha")]
    penalty_alpha: f64,
}
fn four() -> i64 {
    4
}
fn alpha() -> f64 {
    0.6
}

/// Contrastive search settings.
#[derive(Debug, Clone)]
pub struct ContrastiveSearch {
    k: usize,
    alpha: f64,
}

impl ContrastiveSearch {
    /// `k >= 1` candidates, degeneration penalty weight `alpha` in [0, 1].
    pub fn new(k: i64, alpha: f64) -> Result<Self, String> {
        if k < 1 {
            return Err(format!("top_k must be an integer >= 1 (got {k})"));
        }
        if !(0.0..=1.0).contains(&alpha) {
            return Err(format!("penalty_alpha must be in [0, 1] (got {alpha})"));
        }
        Ok(Self {
            k: k as usize,
            alpha,
        })
    }
}

/// Builds it from a TOML table.
pub fn build(t: &toml::Table) -> Result<Box<dyn SearchStrategy>, String> {
    let p: Params = params(t)?;
    Ok(Box::new(ContrastiveSearch::new(p.top_k, p.penalty_alpha)?))
}

impl fmt::Display for ContrastiveSearch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "contrastive_search(top_k={}, penalty_alpha={})",
            self.k, self.alpha
        )
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        dot += x as f64 * y as f64;
        na += x as f64 * x as f64;
        nb += y as f64 * y as f64;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

impl SearchStrategy for ContrastiveSearch {
    fn check_vocab(&self, vocab: usize) -> Result<(), String> {
        if self.k > vocab {
            return Err(format!(
                "top_k = {} is more than the vocabulary's {vocab} tokens: at most {vocab}",
                self.k
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
        let eos = req.eos_token_id.filter(|_| !req.ignore_eos);
        let mut g = Generation {
            tokens: vec![],
            logprobs: vec![],
            entropies: vec![],
            sampling_entropies: vec![],
            sampling_logprobs: vec![],
            finish_reason: FinishReason::Length,
        };
        if req.max_new_tokens == 0 {
            return Ok(vec![g]);
        }
        model.record_hidden(true)?;
        let mut logits = model.prefill(&[req.prompt.to_vec()])?;
        let h = model
            .last_hidden()
            .ok_or("the model recorded no hidden states")?;
        // Hidden states of every position seen so far.
        let mut context: Vec<Vec<f32>> = (0..h.positions).map(|p| h.at(0, p).to_vec()).collect();
        let mut seq = req.prompt.to_vec();
        for _ in 0..req.max_new_tokens {
            let raw = logits.row(0).to_vec();
            let mut processed = raw.clone();
            let cx = StepContext {
                tokens: &seq,
                prompt_len: req.prompt.len(),
                eos_token_id: eos,
                seed: req.seed,
            };
            if let Err((at, problem)) = process_checked(processors, &cx, &mut processed) {
                model.record_hidden(false)?;
                let chain = chain_text(processors, self);
                let step = g.tokens.len();
                return Err(Box::new(UnusableRow::new(
                    chain, processors, at, problem, step,
                )));
            }
            let probs = softmax(&processed);
            let mut ids: Vec<usize> = (0..probs.len()).filter(|&i| probs[i] > 0.0).collect();
            ids.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
            ids.truncate(self.k);
            let cand: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
            if cancel::is_set(req.cancel) {
                model.record_hidden(false)?;
                return Err(Box::new(Cancelled));
            }
            model.retain(&vec![0; cand.len()])?;
            let next = model.step(&cand)?;
            let hidden = model
                .last_hidden()
                .ok_or("the model recorded no hidden states")?;
            let mut best = 0;
            let mut best_score = f64::NEG_INFINITY;
            for (j, &v) in ids.iter().enumerate() {
                let hv = hidden.at(j, hidden.positions - 1);
                let penalty = context
                    .iter()
                    .map(|c| cosine(hv, c))
                    .fold(f64::NEG_INFINITY, f64::max);
                let score = (1.0 - self.alpha) * probs[v] - self.alpha * penalty;
                if score > best_score {
                    best = j;
                    best_score = score;
                }
            }
            let tok = cand[best];
            context.push(hidden.at(best, hidden.positions - 1).to_vec());
            model.retain(&[best])?;
            logits = Logits {
                data: next.row(best).to_vec(),
                vocab: next.vocab,
            };
            if eos == Some(tok) {
                g.finish_reason = FinishReason::Eos;
                break;
            }
            g.tokens.push(tok);
            g.logprobs.push(log_prob(&raw, tok as usize));
            g.entropies.push(entropy(&raw));
            g.sampling_entropies.push(0.0);
            g.sampling_logprobs.push(0.0);
            seq.push(tok);
        }
        model.record_hidden(false)?;
        Ok(vec![g])
    }
}
