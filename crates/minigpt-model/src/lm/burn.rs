//! [`BurnLm`]: the Burn module behind [`LanguageModel`], on any Burn device.
//!
//! Batches: prompts of different lengths are left-padded to a common width. Every row gets its
//! own position ids (its first real token is position 0) and a mask that hides the padding, so a
//! row's logits do not depend on its neighbours (up to the last bits: padded batches run other
//! shapes). Padding queries attend only to themselves, which keeps their (unused) activations
//! finite.
//!
//! Context: while the longest row fits, steps use the cache; when the cache is full but every
//! row still fits (the longest row has finished), the cache is rebuilt from the rows' histories;
//! once a row is longer than the context, each step runs the model on each row's last
//! `n_positions` tokens, because learned absolute positions shift with the window.

use ::burn::tensor::activation::log_softmax;
use ::burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use minigpt_decode::{Hidden, LanguageModel, Logits};

use super::engine::{GptEngine, check_ids, check_prompts, check_rows, one_per_row};
use crate::cache::KvCache;
use crate::config::GptConfig;
use crate::error::ModelError;
use crate::gpt::Gpt;
use crate::to_host;

/// A Burn module on its device, with the state of the batch being decoded.
pub struct BurnLm {
    model: Gpt,
    config: GptConfig,
    device: Device,
    /// The batch being decoded, after a prefill.
    batch: Option<Batch>,
    /// Copy each call's final hidden states to the host (contrastive search).
    record_hidden: bool,
    hidden: Option<Hidden>,
}

/// The rows being decoded.
struct Batch {
    /// Full token history of every live row.
    rows: Vec<Vec<u32>>,
    /// The cache and each row's left padding in it; `None` while sliding.
    cache: Option<(KvCache, Vec<usize>)>,
}

/// A left-padded batch, ready for the device.
struct Padded {
    ids: Tensor<2, Int>,
    positions: Tensor<2, Int>,
    pads: Vec<usize>,
    width: usize,
}

impl BurnLm {
    /// Wraps a model that lives on `device`.
    pub fn new(model: Gpt, config: GptConfig, device: Device) -> Self {
        Self {
            model,
            config,
            device,
            batch: None,
            record_hidden: false,
            hidden: None,
        }
    }

    /// Left-pads `rows` (each already at most `n_positions` long).
    fn pad(&self, rows: &[&[u32]]) -> Padded {
        let width = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let b = rows.len();
        let mut ids = Vec::with_capacity(b * width);
        let mut positions = Vec::with_capacity(b * width);
        let mut pads = Vec::with_capacity(b);
        for r in rows {
            let pad = width - r.len();
            pads.push(pad);
            ids.extend(std::iter::repeat_n(0i32, pad).chain(r.iter().map(|&t| t as i32)));
            positions.extend((0..width).map(|j| j.saturating_sub(pad) as i32));
        }
        Padded {
            ids: Tensor::from_data(TensorData::new(ids, [b, width]), &self.device),
            positions: Tensor::from_data(TensorData::new(positions, [b, width]), &self.device),
            pads,
            width,
        }
    }

    /// The attention mask for `t_q` new queries against `t_k` keys of rows with these left
    /// pads (true = may not attend), or `None` when no row is padded (plain causal attention).
    fn mask(&self, pads: &[usize], t_q: usize, t_k: usize) -> Option<Tensor<4, Bool>> {
        if pads.iter().all(|&p| p == 0) {
            return None;
        }
        let mut m = Vec::with_capacity(pads.len() * t_q * t_k);
        for &pad in pads {
            for i in 0..t_q {
                let q = t_k - t_q + i; // the query's own column
                m.extend((0..t_k).map(|j| j > q || (j < pad && j != q)));
            }
        }
        let b = pads.len();
        let mask = Tensor::<4, Bool>::from_data(TensorData::new(m, [b, 1, t_q, t_k]), &self.device);
        Some(mask.expand([b, self.config.n_head, t_q, t_k]))
    }

    /// Next-token logits of the last column, `[b, vocab]` on the host (and the hidden states,
    /// when recording).
    fn last_logits(&mut self, hidden: Tensor<3>) -> Logits {
        let [b, t, c] = hidden.dims();
        if self.record_hidden {
            self.hidden = Some(Hidden {
                data: to_host(hidden.clone()),
                rows: b,
                positions: t,
                dim: c,
            });
        }
        let last = hidden.narrow(1, t - 1, 1); // [b, 1, c]
        let logits = self
            .model
            .logits(last)
            .reshape([b * self.config.vocab_size]);
        let data = to_host(logits);
        debug_assert_eq!(c, self.config.n_embd);
        Logits {
            data,
            vocab: self.config.vocab_size,
        }
    }

    /// Runs the rows from scratch: cached when they all fit, else on their last windows.
    fn rebuild(&mut self) -> Logits {
        let Some(batch) = self.batch.as_mut() else {
            return Logits {
                data: vec![],
                vocab: self.config.vocab_size,
            };
        };
        let n = self.config.n_positions;
        let rows = std::mem::take(&mut batch.rows);
        let fits = rows.iter().all(|r| r.len() <= n);
        let windows: Vec<&[u32]> = rows
            .iter()
            .map(|r| &r[r.len().saturating_sub(n)..])
            .collect();
        let p = self.pad(&windows);
        let mask = self.mask(&p.pads, p.width, p.width);
        let cfg = &self.config;
        let (hidden, cache) = if fits {
            let mut cache = KvCache::new(
                cfg.n_layer,
                rows.len(),
                cfg.n_head,
                n,
                cfg.head_dim(),
                &self.device,
            );
            let h = self
                .model
                .forward(p.ids, p.positions, mask, Some(&mut cache));
            (h, Some((cache, p.pads)))
        } else {
            (self.model.forward(p.ids, p.positions, mask, None), None)
        };
        let logits = self.last_logits(hidden);
        self.batch = Some(Batch { rows, cache });
        logits
    }
}

impl GptEngine for BurnLm {
    fn share(&self) -> Box<dyn GptEngine + Send> {
        // Cloning a Burn module clones its tensors' handles, not their data.
        Box::new(Self::new(
            self.model.clone(),
            self.config.clone(),
            self.device.clone(),
        ))
    }

    fn window_logprobs(&self, ids: &[u32], targets: &[u32], first: usize) -> Vec<f64> {
        let t = ids.len();
        let p = self.pad(&[ids]);
        let hidden = self.model.forward(p.ids, p.positions, None, None); // [1, t, c]
        let count = t - first;
        let logits = self.model.logits(hidden.narrow(1, first, count)); // [1, count, v]
        let lp = log_softmax(logits, 2);
        let idx: Vec<i32> = targets[first..t].iter().map(|&x| x as i32).collect();
        let idx = Tensor::<3, Int>::from_data(TensorData::new(idx, [1, count, 1]), &self.device);
        let picked = lp.gather(2, idx).reshape([count]);
        let v = to_host(picked);
        v.into_iter().map(f64::from).collect()
    }

    fn sequence_logits(&self, ids: &[u32]) -> Vec<f32> {
        let p = self.pad(&[ids]);
        let hidden = self.model.forward(p.ids, p.positions, None, None);
        let logits = self.model.logits(hidden);
        to_host(logits)
    }

    fn model(&self) -> Option<&Gpt> {
        Some(&self.model)
    }
}

impl LanguageModel for BurnLm {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn context_len(&self) -> usize {
        self.config.n_positions
    }

    fn max_row_len(&self) -> Option<usize> {
        None
    }

    fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<Logits, minigpt_decode::ModelError> {
        check_prompts(&self.config, prompts)?;
        self.batch = Some(Batch {
            rows: prompts.to_vec(),
            cache: None,
        });
        Ok(self.rebuild())
    }

    fn step(&mut self, tokens: &[u32]) -> Result<Logits, minigpt_decode::ModelError> {
        check_ids(&self.config, tokens)?;
        let batch = self
            .batch
            .as_mut()
            .ok_or_else(|| ModelError::Input("step before prefill".into()))?;
        one_per_row(tokens, batch.rows.len())?;
        for (r, &t) in batch.rows.iter_mut().zip(tokens) {
            r.push(t);
        }
        // The cache is used while it has room (every row then fits the context).
        let Some((mut cache, pads)) = batch.cache.take().filter(|(c, _)| c.len() < c.capacity())
        else {
            return Ok(self.rebuild());
        };
        let b = tokens.len();
        let ids: Vec<i32> = tokens.iter().map(|&t| t as i32).collect();
        // The new token's position is the number of real tokens before it.
        let pos: Vec<i32> = batch.rows.iter().map(|r| (r.len() - 1) as i32).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, 1]), &self.device);
        let pos = Tensor::<2, Int>::from_data(TensorData::new(pos, [b, 1]), &self.device);
        let mask = self.mask(&pads, 1, cache.len() + 1);
        let hidden = self.model.forward(ids, pos, mask, Some(&mut cache));
        let logits = self.last_logits(hidden);
        if let Some(batch) = self.batch.as_mut() {
            batch.cache = Some((cache, pads));
        }
        Ok(logits)
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
        let device = self.device.clone();
        let batch = self
            .batch
            .as_mut()
            .ok_or_else(|| ModelError::Input("retain before prefill".into()))?;
        check_rows(rows, batch.rows.len())?;
        batch.rows = rows.iter().map(|&r| batch.rows[r].clone()).collect();
        if let Some((cache, pads)) = batch.cache.as_mut() {
            cache.retain(rows, &device);
            *pads = rows.iter().map(|&r| pads[r]).collect();
        }
        Ok(())
    }
}
