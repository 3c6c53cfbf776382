//! [`NativeLm`]: minigpt's native CPU engine (`minigpt-native`) behind [`LanguageModel`].
//!
//! Each row has its own history and KV cache (no padding, no masks), so a row's logits are
//! bit-identical alone, in any batch, and cached or not. A row longer than the context
//! restarts its cache on its last `n_positions` tokens at every step.

use std::sync::Arc;

use minigpt_decode::{Hidden, LanguageModel, Logits};
use minigpt_native::{NativeGpt, SeqCache, Want};

use super::engine::{ContextPolicy, GptEngine, check_ids, check_prompts, check_rows, one_per_row};
use crate::config::GptConfig;

/// The native engine's packed model, with the rows being decoded.
pub struct NativeLm {
    /// The packed weights, shared with every [`GptEngine::share`]d copy.
    net: Arc<NativeGpt>,
    config: GptConfig,
    /// Every live row: its token history and its cache.
    rows: Vec<(Vec<u32>, SeqCache)>,
    /// Copy each call's final hidden states out (contrastive search).
    record_hidden: bool,
    hidden: Option<Hidden>,
    /// Slide an exact window, or shift the cache ([`ContextPolicy::Shift`]).
    shift: bool,
}

impl NativeLm {
    /// Wraps a packed model; `config` is the model's (its `vocab_size`, `n_embd` and
    /// `n_positions` must be the packed model's).
    pub fn new(net: NativeGpt, config: GptConfig) -> Self {
        assert!(
            net.vocab_size() == config.vocab_size
                && net.config().n_embd == config.n_embd
                && net.config().n_positions == config.n_positions,
            "the packed model does not match its configuration"
        );
        Self {
            net: Arc::new(net),
            config,
            rows: Vec::new(),
            record_hidden: false,
            hidden: None,
            shift: false,
        }
    }

    /// Logits of positions `first..` of one sequence (at most `n_positions` long).
    fn logits_from(&self, ids: &[u32], first: usize) -> Vec<f32> {
        let mut cache = self.net.new_cache();
        let hidden = self.net.forward(&mut [(&mut cache, ids)], Want::All);
        let c = hidden.len() / ids.len().max(1);
        self.net.logits(&hidden[first * c..])
    }

    /// Brings every row's cache up to date with its history and returns the next-token logits
    /// of every row. Sliding, a row longer than the context restarts on its last `n_positions`
    /// tokens at every step; shifting, a row restarts on its last `n_positions / 2` tokens when
    /// its cache is full. (A prefill finds every cache empty, a step brings one new token.)
    fn advance(&mut self) -> Logits {
        let n = self.config.n_positions;
        let shift = self.shift;
        let mut seqs: Vec<(&mut SeqCache, &[u32])> = self
            .rows
            .iter_mut()
            .map(|(row, cache)| {
                let feed = if shift {
                    let new = if cache.is_empty() {
                        row.len().min(n)
                    } else {
                        1
                    };
                    if cache.len() + new <= n {
                        &row[row.len() - new..]
                    } else {
                        cache.clear();
                        &row[row.len() - (n / 2).max(1)..]
                    }
                } else if row.len() <= n {
                    &row[cache.len()..]
                } else {
                    cache.clear();
                    &row[row.len() - n..]
                };
                (cache, feed)
            })
            .collect();
        let want = if self.record_hidden {
            Want::All
        } else {
            Want::Last
        };
        let lens: Vec<usize> = seqs.iter().map(|(_, f)| f.len()).collect();
        let hidden = self.net.forward(&mut seqs, want);
        let last = if self.record_hidden {
            let (all, last) = padded_hidden(&hidden, &lens, self.config.n_embd);
            self.hidden = Some(all);
            last
        } else {
            hidden
        };
        Logits {
            data: self.net.logits(&last),
            vocab: self.config.vocab_size,
        }
    }
}

/// Every new position's hidden states (rows fed `lens` tokens, one after another) left-padded
/// to the widest feed, as the Burn adapter reports them, and each row's last one.
fn padded_hidden(hidden: &[f32], lens: &[usize], c: usize) -> (Hidden, Vec<f32>) {
    let width = lens.iter().copied().max().unwrap_or(0);
    let mut data = vec![0f32; lens.len() * width * c];
    let mut last = Vec::with_capacity(lens.len() * c);
    let mut at = 0;
    for (r, &len) in lens.iter().enumerate() {
        let src = &hidden[at * c..(at + len) * c];
        let start = (r * width + width - len) * c;
        data[start..start + len * c].copy_from_slice(src);
        last.extend_from_slice(&src[(len - 1) * c..]);
        at += len;
    }
    let all = Hidden {
        data,
        rows: lens.len(),
        positions: width,
        dim: c,
    };
    (all, last)
}

impl GptEngine for NativeLm {
    fn settle(&self) {
        self.net.settle();
    }

    fn set_policy(&mut self, policy: ContextPolicy) -> Result<(), crate::error::ModelError> {
        self.shift = policy == ContextPolicy::Shift;
        Ok(())
    }

    fn share(&self) -> Box<dyn GptEngine + Send> {
        Box::new(Self {
            net: Arc::clone(&self.net),
            config: self.config.clone(),
            rows: Vec::new(),
            record_hidden: false,
            hidden: None,
            shift: false,
        })
    }

    fn window_logprobs(&self, ids: &[u32], targets: &[u32], first: usize) -> Vec<f64> {
        let logits = self.logits_from(ids, first);
        logits
            .chunks_exact(self.config.vocab_size)
            .zip(&targets[first..ids.len()])
            .map(|(row, &target)| minigpt_decode::dist::log_prob(row, target as usize))
            .collect()
    }

    fn sequence_logits(&self, ids: &[u32]) -> Vec<f32> {
        self.logits_from(ids, 0)
    }
}

impl LanguageModel for NativeLm {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn context_len(&self) -> usize {
        self.config.n_positions
    }

    fn batch_invariant(&self) -> bool {
        // The engine's kernels compute each row alone (see `minigpt_native::matmul`).
        true
    }

    fn for_each_row(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        minigpt_native::for_each(n, f)
    }

    fn max_row_len(&self) -> Option<usize> {
        None
    }

    fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<Logits, minigpt_decode::ModelError> {
        check_prompts(&self.config, prompts)?;
        // The last batch's caches are reused (cleared): fresh ones would fault in every page
        // they touch again.
        let mut spare: Vec<SeqCache> = std::mem::take(&mut self.rows)
            .into_iter()
            .map(|(_, cache)| cache)
            .collect();
        self.rows = prompts
            .iter()
            .map(|p| {
                let cache = match spare.pop() {
                    Some(mut c) => {
                        c.clear();
                        c
                    }
                    None => self.net.new_cache(),
                };
                (p.clone(), cache)
            })
            .collect();
        Ok(self.advance())
    }

    fn step(&mut self, tokens: &[u32]) -> Result<Logits, minigpt_decode::ModelError> {
        check_ids(&self.config, tokens)?;
        one_per_row(tokens, self.rows.len())?;
        for ((row, _), &t) in self.rows.iter_mut().zip(tokens) {
            row.push(t);
        }
        Ok(self.advance())
    }

    fn step_join(
        &mut self,
        tokens: &[u32],
        prompts: &[Vec<u32>],
    ) -> Result<Logits, minigpt_decode::ModelError> {
        check_ids(&self.config, tokens)?;
        one_per_row(tokens, self.rows.len())?;
        if !prompts.is_empty() {
            check_prompts(&self.config, prompts)?;
        }
        for ((row, _), &t) in self.rows.iter_mut().zip(tokens) {
            row.push(t);
        }
        // New rows start with empty caches: one forward pass brings each live row one token
        // and each new row its whole prompt, every row computed as it would be alone.
        for p in prompts {
            self.rows.push((p.clone(), self.net.new_cache()));
        }
        Ok(self.advance())
    }

    fn record_hidden(&mut self, on: bool) -> Result<(), minigpt_decode::ModelError> {
        self.record_hidden = on;
        self.hidden = None;
        Ok(())
    }

    fn last_hidden(&self) -> Option<&Hidden> {
        self.hidden.as_ref()
    }

    fn retain(&mut self, rows: &[usize]) -> Result<(), minigpt_decode::ModelError> {
        check_rows(rows, self.rows.len())?;
        // A row kept twice (beam search) is copied; its last use takes it.
        let mut uses = vec![0usize; self.rows.len()];
        rows.iter().for_each(|&r| uses[r] += 1);
        let mut old: Vec<Option<(Vec<u32>, SeqCache)>> = std::mem::take(&mut self.rows)
            .into_iter()
            .map(Some)
            .collect();
        self.rows = rows
            .iter()
            .map(|&r| {
                uses[r] -= 1;
                let row = if uses[r] == 0 {
                    old[r].take()
                } else {
                    old[r].clone()
                };
                row.expect("each row is taken on its last use only")
            })
            .collect();
        Ok(())
    }
}
