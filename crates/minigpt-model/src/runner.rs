//! [`GptLm`]: the model behind `minigpt-decode`'s [`LanguageModel`] trait, with a KV cache,
//! left-padded batches and exact context cropping.
//!
//! Batches: prompts of different lengths are left-padded to a common width. Every row gets its
//! own position ids (its first real token is position 0) and a mask that hides the padding, so a
//! row's logits do not depend on its neighbours. Padding queries attend only to themselves, which
//! keeps their (unused) activations finite.
//!
//! Context: every token is predicted from exactly the most recent `n_positions` tokens
//! (nanoGPT's `idx[:, -block_size:]`). While the longest row fits, steps use the cache; when the
//! cache is full but every row still fits (the longest row has finished), the cache is rebuilt
//! from the rows' histories; once a row is longer than the context, each step runs the model on
//! each row's last `n_positions` tokens, because learned absolute positions shift with the window.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use minigpt_decode::{Hidden, LanguageModel, Logits};

use crate::cache::KvCache;
use crate::config::GptConfig;
use crate::device::Target;
use crate::error::ModelError;
use crate::gpt::Gpt;
use minigpt_native::{DType, NativeGpt, SeqCache, Want};

/// What happens to rows longer than the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContextPolicy {
    /// Slide an exact window of the last `n_positions` tokens (the default).
    #[default]
    Sliding,
    /// Refuse prompts longer than the context and stop rows when they fill it.
    Refuse,
}

/// A loaded GPT with its device, ready to decode.
pub struct GptLm {
    net: Net,
    /// Its hyper-parameters.
    pub config: GptConfig,
    /// Where the Burn network runs (Burn's flex for the native engine, which uses none).
    pub device: Device,
    /// How rows longer than the context are handled.
    pub policy: ContextPolicy,
    batch: Option<Batch>,
    /// The native engine's rows: each one's history and cache.
    rows: Vec<(Vec<u32>, SeqCache)>,
    /// Copy each call's final hidden states to the host (contrastive search).
    record_hidden: bool,
    hidden: Option<Hidden>,
}

/// The network behind a [`GptLm`].
enum Net {
    /// A Burn module on `GptLm::device`.
    Burn(Box<Gpt>),
    /// Packed weights on minigpt's own CPU kernels.
    Native(Box<NativeGpt>),
}

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

impl GptLm {
    /// Wraps a model.
    pub fn new(model: Gpt, config: GptConfig, device: Device) -> Self {
        Self::with_net(Net::Burn(Box::new(model)), config, device)
    }

    /// Packs a model's weights for the native CPU engine, in `dtype` (the Burn module is
    /// dropped).
    pub fn native(model: Gpt, config: GptConfig, dtype: DType) -> Self {
        let net = crate::native_weights::to_native(model, &config, dtype);
        Self::with_net(Net::Native(Box::new(net)), config, Device::flex())
    }

    /// Wraps a model for `target`: a Burn device, or the native engine. The model must be on
    /// the target's device (Burn's flex for the native engine).
    pub fn on(model: Gpt, config: GptConfig, target: &Target) -> Self {
        match target {
            Target::Burn(device) => Self::new(model, config, device.clone()),
            Target::Native(dtype) => Self::native(model, config, *dtype),
        }
    }

    fn with_net(net: Net, config: GptConfig, device: Device) -> Self {
        Self {
            net,
            config,
            device,
            policy: ContextPolicy::Sliding,
            batch: None,
            rows: Vec::new(),
            record_hidden: false,
            hidden: None,
        }
    }

    /// Loads a Hugging Face directory onto `device`.
    pub fn load(dir: &std::path::Path, device: &Device) -> Result<Self, ModelError> {
        let (config, model) = crate::checkpoint::load_dir(dir, device)?;
        Ok(Self::new(model, config, device.clone()))
    }

    /// Loads a Hugging Face directory for `target`.
    pub fn load_to(dir: &std::path::Path, target: &Target) -> Result<Self, ModelError> {
        let (config, model) = crate::checkpoint::load_dir(dir, &target.device())?;
        Ok(Self::on(model, config, target))
    }

    /// The Burn module, unless the native engine runs the model.
    pub fn model(&self) -> Option<&Gpt> {
        match &self.net {
            Net::Burn(m) => Some(m),
            Net::Native(_) => None,
        }
    }

    fn burn(&self) -> &Gpt {
        match &self.net {
            Net::Burn(m) => m,
            Net::Native(_) => unreachable!("the Burn path of a native model"),
        }
    }

    fn check_ids(&self, ids: &[u32]) -> Result<(), ModelError> {
        match ids.iter().find(|&&t| t as usize >= self.config.vocab_size) {
            Some(t) => Err(ModelError::Input(format!(
                "token id {t} is outside the model's vocabulary of {}",
                self.config.vocab_size
            ))),
            None => Ok(()),
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
                data: crate::to_host(hidden.clone()),
                rows: b,
                positions: t,
                dim: c,
            });
        }
        let last = hidden.narrow(1, t - 1, 1); // [b, 1, c]
        let logits = self
            .burn()
            .logits(last)
            .reshape([b * self.config.vocab_size]);
        let data = crate::to_host(logits);
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
                .burn()
                .forward(p.ids, p.positions, mask, Some(&mut cache));
            (h, Some((cache, p.pads)))
        } else {
            (self.burn().forward(p.ids, p.positions, mask, None), None)
        };
        let logits = self.last_logits(hidden);
        self.batch = Some(Batch { rows, cache });
        logits
    }

    /// Log-probability of each `targets[i]` given `ids[..=i]`, for `i >= first`, in one
    /// uncached forward pass (`ids` at most `n_positions` long).
    pub fn window_logprobs(&self, ids: &[u32], targets: &[u32], first: usize) -> Vec<f64> {
        let t = ids.len();
        if let Net::Native(net) = &self.net {
            let logits = native_logits(net, ids, first);
            let v = self.config.vocab_size;
            return logits
                .chunks_exact(v)
                .zip(&targets[first..t])
                .map(|(row, &target)| minigpt_decode::dist::log_prob(row, target as usize))
                .collect();
        }
        let p = self.pad(&[ids]);
        let hidden = self.burn().forward(p.ids, p.positions, None, None); // [1, t, c]
        let count = t - first;
        let logits = self.burn().logits(hidden.narrow(1, first, count)); // [1, count, v]
        let lp = log_softmax(logits, 2);
        let idx: Vec<i32> = targets[first..t].iter().map(|&x| x as i32).collect();
        let idx = Tensor::<3, Int>::from_data(TensorData::new(idx, [1, count, 1]), &self.device);
        let picked = lp.gather(2, idx).reshape([count]);
        let v = crate::to_host(picked);
        v.into_iter().map(f64::from).collect()
    }

    /// Full logits `[t, vocab]` of one sequence (at most `n_positions` long), uncached.
    pub fn sequence_logits(&self, ids: &[u32]) -> Vec<f32> {
        if let Net::Native(net) = &self.net {
            return native_logits(net, ids, 0);
        }
        let p = self.pad(&[ids]);
        let hidden = self.burn().forward(p.ids, p.positions, None, None);
        let logits = self.burn().logits(hidden);
        crate::to_host(logits)
    }

    /// Native engine: brings every row's cache up to date with its history (a row longer
    /// than the context restarts on its last `n_positions` tokens) and returns the next-token
    /// logits of every row.
    fn native_advance(&mut self) -> Logits {
        let Net::Native(net) = &self.net else {
            unreachable!("native_advance on a Burn model")
        };
        let n = self.config.n_positions;
        let mut seqs: Vec<(&mut SeqCache, &[u32])> = self
            .rows
            .iter_mut()
            .map(|(row, cache)| {
                let feed = if row.len() <= n {
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
        let width = lens.iter().copied().max().unwrap_or(0);
        let hidden = net.forward(&mut seqs, want);
        let c = self.config.n_embd;
        let last = if self.record_hidden {
            // Left-pad every row to the widest feed, as the Burn path reports it.
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
            self.hidden = Some(Hidden {
                data,
                rows: lens.len(),
                positions: width,
                dim: c,
            });
            last
        } else {
            hidden
        };
        Logits {
            data: net.logits(&last),
            vocab: self.config.vocab_size,
        }
    }
}

/// Native engine: logits of positions `first..` of one sequence (at most `n_positions` long).
fn native_logits(net: &NativeGpt, ids: &[u32], first: usize) -> Vec<f32> {
    let mut cache = net.new_cache();
    let hidden = net.forward(&mut [(&mut cache, ids)], Want::All);
    let c = hidden.len() / ids.len().max(1);
    net.logits(&hidden[first * c..])
}

/// A step needs one token per live row.
fn one_per_row(tokens: &[u32], live: usize) -> Result<(), ModelError> {
    if tokens.len() == live {
        return Ok(());
    }
    Err(ModelError::Input(format!(
        "{} tokens for {live} live rows",
        tokens.len()
    )))
}

impl LanguageModel for GptLm {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn context_len(&self) -> usize {
        self.config.n_positions
    }

    fn batch_invariant(&self) -> bool {
        // The native engine's kernels compute each row alone (see `minigpt_native::matmul`); Burn's
        // padded batches differ in the last bits.
        matches!(self.net, Net::Native(_))
    }

    fn max_row_len(&self) -> Option<usize> {
        match self.policy {
            ContextPolicy::Sliding => None,
            ContextPolicy::Refuse => Some(self.config.n_positions),
        }
    }

    fn prefill(&mut self, prompts: &[Vec<u32>]) -> Result<Logits, minigpt_decode::ModelError> {
        let n = self.config.n_positions;
        for (i, p) in prompts.iter().enumerate() {
            if p.is_empty() {
                return Err(ModelError::Input(format!("prompt {i} is empty")).into());
            }
            self.check_ids(p)?;
            if self.policy == ContextPolicy::Refuse && p.len() > n {
                return Err(ModelError::Input(format!(
                    "the prompt has {} tokens but the model sees at most {n} (n_positions); \
                     shorten it, or allow cropping (leave out --no-crop)",
                    p.len()
                ))
                .into());
            }
        }
        if let Net::Native(net) = &self.net {
            // The last batch's caches are reused (cleared): fresh ones would fault in every
            // page they touch again.
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
                        None => net.new_cache(),
                    };
                    (p.clone(), cache)
                })
                .collect();
            return Ok(self.native_advance());
        }
        self.batch = Some(Batch {
            rows: prompts.to_vec(),
            cache: None,
        });
        Ok(self.rebuild())
    }

    fn step(&mut self, tokens: &[u32]) -> Result<Logits, minigpt_decode::ModelError> {
        self.check_ids(tokens)?;
        if matches!(self.net, Net::Native(_)) {
            one_per_row(tokens, self.rows.len())?;
            for ((row, _), &t) in self.rows.iter_mut().zip(tokens) {
                row.push(t);
            }
            return Ok(self.native_advance());
        }
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
        let hidden = self.burn().forward(ids, pos, mask, Some(&mut cache));
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
        if matches!(self.net, Net::Native(_)) {
            if let Some(&bad) = rows.iter().find(|&&r| r >= self.rows.len()) {
                return Err(ModelError::Input(format!("row {bad} does not exist")).into());
            }
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
            return Ok(());
        }
        let device = self.device.clone();
        let batch = self
            .batch
            .as_mut()
            .ok_or_else(|| ModelError::Input("retain before prefill".into()))?;
        if let Some(&bad) = rows.iter().find(|&&r| r >= batch.rows.len()) {
            return Err(ModelError::Input(format!("row {bad} does not exist")).into());
        }
        batch.rows = rows.iter().map(|&r| batch.rows[r].clone()).collect();
        if let Some((cache, pads)) = batch.cache.as_mut() {
            cache.retain(rows, &device);
            *pads = rows.iter().map(|&r| pads[r]).collect();
        }
        Ok(())
    }
}
