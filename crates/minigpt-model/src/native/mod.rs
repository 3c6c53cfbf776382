//! The native CPU engine (`--device cpu`): GPT-2 inference on minigpt's own kernels
//! ([`kernels`]), with weights packed once at load time in f32, f16 or bf16.
//!
//! Why not Burn's `flex` for inference: a batch-1 decode step is 49 matrix-vector products that
//! must stream every weight from memory at full bandwidth, and flex's GEMV on a transposed
//! right-hand side (the tied LM head) and its per-op dispatch leave about half the bandwidth
//! unused (measured with Burn 0.22). Training stays on Burn (it needs autodiff); Burn's
//! `flex`, `ndarray` and `wgpu` devices remain available for inference and are the parity
//! reference for this engine.
//!
//! Each sequence has its own KV cache (no left padding, no masks): rows of a batch share only
//! the weight reads of the matrix multiplies, and every kernel computes a row's values with the
//! same operations whatever the batch, so **a row's logits are bit-identical alone, in any
//! batch, and in a prefill or a cached step**.

pub mod kernels;
mod team;

pub use kernels::DType;
use kernels::{
    KEY_BLOCK, Packed, add_assign, attend, gelu_erf, gelu_tanh, key_index, layer_norm, matmul,
    matmul_then,
};
use team::team;

use crate::config::GptConfig;
use crate::gpt::Gpt;
use crate::to_host as host;

/// A linear layer: packed `[in, out]` weight and f32 bias.
#[derive(Debug)]
struct Lin {
    w: Packed,
    b: Vec<f32>,
}

#[derive(Debug)]
struct Norm {
    g: Vec<f32>,
    b: Vec<f32>,
}

#[derive(Debug)]
struct Block {
    ln_1: Norm,
    c_attn: Lin,
    attn_proj: Lin,
    ln_2: Norm,
    c_fc: Lin,
    mlp_proj: Lin,
}

/// GPT-2 with packed weights.
#[derive(Debug)]
pub struct NativeGpt {
    n_head: usize,
    n_embd: usize,
    n_positions: usize,
    eps: f32,
    exact_gelu: bool,
    /// The tied embedding as the head's `[n_embd, vocab]` matrix (column `t` = token `t`).
    wte: Packed,
    wpe: Vec<f32>,
    blocks: Vec<Block>,
    ln_f: Norm,
}

/// One sequence's keys and values, per layer and head: keys in blocks of eight positions
/// ([`kernels::key_index`]), values `[position][head_dim]`; allocated for the whole context at
/// once (zeroed pages the OS backs only as positions fill), so appending never reallocates and
/// each head's keys and values are contiguous streams. Stored in f32, or in f16 when the
/// weights are f16 or bf16 (half the bytes attention reads per token).
#[derive(Debug, Clone)]
pub struct SeqCache {
    k: Vec<Store>,
    v: Vec<Store>,
    len: usize,
}

/// One layer's keys or values.
#[derive(Debug, Clone)]
enum Store {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
}

impl Store {
    /// Stores `xs` at `at`, `at + step`, `at + 2·step`, … (a value vector: step 1; a key:
    /// step [`KEY_BLOCK`], see [`key_index`]).
    fn put(&mut self, at: usize, step: usize, xs: &[f32]) {
        match self {
            Self::F32(v) if step == 1 => v[at..at + xs.len()].copy_from_slice(xs),
            Self::F32(v) => {
                for (d, &x) in v[at..].iter_mut().step_by(step).zip(xs) {
                    *d = x;
                }
            }
            Self::F16(v) if step == 1 => kernels::narrow(xs, &mut v[at..at + xs.len()]),
            Self::F16(v) => {
                let mut buf = [half::f16::ZERO; 64];
                for (i, xs) in xs.chunks(64).enumerate() {
                    let buf = &mut buf[..xs.len()];
                    kernels::narrow(xs, buf);
                    let dst = v[at + i * 64 * step..].iter_mut().step_by(step);
                    for (d, &x) in dst.zip(&*buf) {
                        *d = x;
                    }
                }
            }
        }
    }

    /// Values `range` as f32: borrowed, or converted into `buf`.
    fn read<'a>(&'a self, range: std::ops::Range<usize>, buf: &'a mut Vec<f32>) -> &'a [f32] {
        match self {
            Self::F32(v) => &v[range],
            Self::F16(v) => {
                let out = sized(buf, range.len());
                kernels::widen(&v[range], out);
                out
            }
        }
    }
}

thread_local! {
    /// Per-thread attention scratch: scores, and f16 keys and values widened to f32.
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 3]> = const {
        std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new()])
    };
    /// Per-thread activations of a forward pass, reused: fresh multi-megabyte buffers for
    /// every prefill cost a page fault per 4 KiB (the kernel's page clearing was 12 % of a
    /// 512-token prefill's profile before these buffers and the KV caches were reused, 7 %
    /// after the buffers alone).
    static WORK: std::cell::RefCell<[Vec<f32>; 5]> = const {
        std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()])
    };
}

/// Threads the engine's parallel loops run on (`RAYON_NUM_THREADS`, else one per core).
pub fn threads() -> usize {
    team().threads()
}

/// Queries of one sequence and head per attention work item (a prefill's keys and values are
/// loaded once per block instead of once per query).
const QUERY_BLOCK: usize = 16;

/// `v` resized to `n` values (contents unspecified: every caller overwrites them).
fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.resize(n, 0.0);
    &mut v[..n]
}

impl SeqCache {
    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every position (keeping the memory).
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// Which final hidden states a forward pass returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The last new position of each sequence: `[sequences, n_embd]`.
    Last,
    /// Every new position, sequence after sequence: `[new positions, n_embd]`.
    All,
}

impl NativeGpt {
    /// Packs a Burn model's weights (read from its device once).
    pub fn from_model(model: &Gpt, cfg: &GptConfig, dtype: DType) -> Self {
        let c = cfg.n_embd;
        let lin = |l: &burn::nn::Linear| {
            let [k, n] = l.weight.val().dims();
            let w = host(l.weight.val());
            let b = l
                .bias
                .as_ref()
                .map_or_else(|| vec![0.0; n], |b| host(b.val()));
            Lin {
                w: Packed::from_rows(&w, k, n, dtype),
                b,
            }
        };
        let norm = |n: &burn::nn::LayerNorm| Norm {
            g: host(n.gamma.val()),
            b: n.beta
                .as_ref()
                .map_or_else(|| vec![0.0; c], |b| host(b.val())),
        };
        let wte = host(model.wte.weight.val()); // [vocab, c]
        let blocks = model
            .h
            .iter()
            .map(|b| Block {
                ln_1: norm(&b.ln_1),
                c_attn: lin(&b.attn.c_attn),
                attn_proj: lin(&b.attn.c_proj),
                ln_2: norm(&b.ln_2),
                c_fc: lin(&b.mlp.c_fc),
                mlp_proj: lin(&b.mlp.c_proj),
            })
            .collect();
        Self {
            n_head: cfg.n_head,
            n_embd: c,
            n_positions: cfg.n_positions,
            eps: cfg.layer_norm_epsilon as f32,
            exact_gelu: cfg.exact_gelu(),
            wte: Packed::new(c, cfg.vocab_size, dtype, |r, t| wte[t * c + r]),
            wpe: host(model.wpe.weight.val()),
            blocks,
            ln_f: norm(&model.ln_f),
        }
    }

    /// The weights' storage type.
    pub fn dtype(&self) -> DType {
        self.wte.dtype()
    }

    /// An empty cache with room for the whole context (touched only as it fills).
    pub fn new_cache(&self) -> SeqCache {
        let n = self.cache_len() * self.n_embd;
        let room = || {
            (0..self.blocks.len())
                .map(|_| match self.dtype() {
                    DType::F32 => Store::F32(vec![0.0; n]),
                    DType::F16 | DType::BF16 => Store::F16(vec![half::f16::ZERO; n]),
                })
                .collect()
        };
        SeqCache {
            k: room(),
            v: room(),
            len: 0,
        }
    }

    /// Runs each sequence's new tokens after its cached positions, appending to its cache,
    /// and returns the final hidden states (after `ln_f`) that `want` asks for.
    ///
    /// Callers keep every sequence within the context (`cache.len() + tokens.len()` at most
    /// `n_positions`).
    pub fn forward(&self, seqs: &mut [(&mut SeqCache, &[u32])], want: Want) -> Vec<f32> {
        let c = self.n_embd;
        // Every new token: (sequence, position).
        let mut meta = Vec::new();
        for (s, (cache, tokens)) in seqs.iter().enumerate() {
            assert!(
                cache.len + tokens.len() <= self.n_positions,
                "a sequence longer than the context reached the engine"
            );
            meta.extend((0..tokens.len()).map(|j| (s, cache.len + j)));
        }
        let m = meta.len();
        let mut work = WORK.with_borrow_mut(std::mem::take);
        let [xb, hb, qb, yb, ub] = &mut work;
        let inner = self.blocks.first().map_or(0, |b| b.c_fc.w.n);
        let (x, h, qkv, y, u) = (
            sized(xb, m * c),
            sized(hb, m * c),
            sized(qb, m * 3 * c),
            sized(yb, m * c),
            sized(ub, m * inner),
        );
        let tokens = seqs.iter().flat_map(|(_, t)| t.iter());
        for ((row, &(_, pos)), &t) in x.chunks_exact_mut(c).zip(&meta).zip(tokens) {
            self.wte.column(t as usize, row);
            add_assign(row, &self.wpe[pos * c..(pos + 1) * c]);
        }
        let hd = c / self.n_head;
        let scale = 1.0 / (hd as f32).sqrt();
        // Attention work: (first token, queries, head), head-major so each thread keeps a few
        // heads' keys and values in cache; a sequence's new tokens go `QUERY_BLOCK` at a time,
        // sharing every key and value load (prefill), a decode step's one by one.
        let mut items = Vec::new();
        for head in 0..self.n_head {
            let mut tok = 0;
            for (_, tokens) in seqs.iter() {
                for first in (0..tokens.len()).step_by(QUERY_BLOCK) {
                    items.push((tok + first, QUERY_BLOCK.min(tokens.len() - first), head));
                }
                tok += tokens.len();
            }
        }
        for (l, block) in self.blocks.iter().enumerate() {
            self.norm_rows(x, &block.ln_1, h);
            matmul(h, m, &block.c_attn.w, Some(&block.c_attn.b), qkv);
            let cap = self.cache_len();
            // Keys and values into each sequence's cache, sequences in parallel (a key's
            // dimensions go to as many cache lines, mostly cold: on the calling thread alone,
            // with the helper waiting, these writes were ~2 % of a batch-8 f16 decode profile).
            let mut first = 0;
            let mut puts: Vec<_> = seqs
                .iter_mut()
                .map(|(cache, tokens)| {
                    let rows = &qkv[first * 3 * c..(first + tokens.len()) * 3 * c];
                    first += tokens.len();
                    (&mut **cache, rows)
                })
                .collect();
            let n_head = self.n_head;
            let put = |(cache, rows): &mut (&mut SeqCache, &[f32])| {
                for (pos, row) in (cache.len..).zip(rows.chunks_exact(3 * c)) {
                    for head in 0..n_head {
                        let (src, base) = (c + head * hd, head * cap * hd);
                        let key = &row[src..src + hd];
                        cache.k[l].put(base + key_index(pos, 0, hd), KEY_BLOCK, key);
                        cache.v[l].put(base + pos * hd, 1, &row[c + src..c + src + hd]);
                    }
                }
            };
            if puts.len() > 1 {
                team().for_each_mut(&mut puts, put);
            } else {
                puts.iter_mut().for_each(put);
            }
            let caches: Vec<&SeqCache> = seqs.iter().map(|(cache, _)| &**cache).collect();
            let (qkv, caches) = (&*qkv, &caches);
            let attend_item = |(item, out): &mut (&(usize, usize, usize), &mut [f32])| {
                let (tok, rows, head) = **item;
                let (s, pos) = meta[tok];
                let (at, len) = (head * cap * hd, pos + 1);
                let seen = len + rows - 1;
                SCRATCH.with_borrow_mut(|[scores, kbuf, vbuf]| {
                    let width = seen.next_multiple_of(KEY_BLOCK);
                    let scores = sized(scores, rows * width);
                    let q =
                        &qkv[tok * 3 * c + head * hd..(tok + rows - 1) * 3 * c + (head + 1) * hd];
                    let (ks, vs) = (at..at + width * hd, at..at + seen * hd);
                    match (&caches[s].k[l], &caches[s].v[l]) {
                        // A decode step reads an f16 cache as it goes; a block of queries
                        // (prefill) reads every key and value once per four or more queries,
                        // so it widens them once instead.
                        (Store::F16(k), Store::F16(v)) if rows == 1 => {
                            attend(q, 3 * c, rows, hd, len, &k[ks], &v[vs], scale, scores, out)
                        }
                        (k, v) => {
                            let (keys, values) = (k.read(ks, kbuf), v.read(vs, vbuf));
                            attend(q, 3 * c, rows, hd, len, keys, values, scale, scores, out)
                        }
                    }
                });
            };
            // Outputs head-major into `h` (`[head][token][hd]`: each item's rows are one
            // contiguous piece), then token-major into `y`.
            let mut rest = &mut h[..];
            let mut work: Vec<_> = items
                .iter()
                .map(|item| {
                    let (out, tail) = std::mem::take(&mut rest).split_at_mut(item.1 * hd);
                    rest = tail;
                    (item, out)
                })
                .collect();
            // Threads pay off from about a thousand query-key pairs.
            let pairs: usize = meta.iter().map(|&(_, pos)| pos + 1).sum::<usize>() * n_head;
            if pairs >= 1024 {
                team().for_each_mut(&mut work, attend_item);
            } else {
                work.iter_mut().for_each(attend_item);
            }
            for (head, part) in h.chunks_exact(m * hd).enumerate() {
                for (row, o) in y.chunks_exact_mut(c).zip(part.chunks_exact(hd)) {
                    row[head * hd..(head + 1) * hd].copy_from_slice(o);
                }
            }
            matmul(y, m, &block.attn_proj.w, Some(&block.attn_proj.b), h);
            add_assign(x, h);
            self.norm_rows(x, &block.ln_2, h);
            let gelu = if self.exact_gelu { gelu_erf } else { gelu_tanh };
            matmul_then(h, m, &block.c_fc.w, Some(&block.c_fc.b), Some(gelu), u);
            matmul(u, m, &block.mlp_proj.w, Some(&block.mlp_proj.b), h);
            add_assign(x, h);
        }
        for (cache, tokens) in seqs.iter_mut() {
            cache.len += tokens.len();
        }
        let rows: Vec<usize> = match want {
            Want::All => (0..m).collect(),
            Want::Last => {
                let mut end = 0;
                seqs.iter()
                    .map(|(_, t)| {
                        end += t.len();
                        end - 1
                    })
                    .collect()
            }
        };
        let mut out = vec![0f32; rows.len() * c];
        for (o, &r) in out.chunks_exact_mut(c).zip(&rows) {
            layer_norm(
                &x[r * c..(r + 1) * c],
                &self.ln_f.g,
                &self.ln_f.b,
                self.eps,
                o,
            );
        }
        WORK.with_borrow_mut(|w| *w = work);
        out
    }

    /// Cached positions per head, rounded up to whole key blocks.
    fn cache_len(&self) -> usize {
        self.n_positions.next_multiple_of(KEY_BLOCK)
    }

    fn norm_rows(&self, x: &[f32], n: &Norm, out: &mut [f32]) {
        let c = self.n_embd;
        let one = |(o, x): (&mut [f32], &[f32])| layer_norm(x, &n.g, &n.b, self.eps, o);
        if x.len() > 8 * c {
            let mut rows: Vec<_> = out.chunks_mut(c).zip(x.chunks(c)).collect();
            team().for_each_mut(&mut rows, |(o, x)| one((o, x)));
        } else {
            out.chunks_mut(c).zip(x.chunks(c)).for_each(one);
        }
    }

    /// Logits `[rows, vocab]` of final hidden states `[rows, n_embd]`.
    pub fn logits(&self, hidden: &[f32]) -> Vec<f32> {
        let m = hidden.len() / self.n_embd;
        let mut out = vec![0f32; m * self.wte.n];
        matmul(hidden, m, &self.wte, None, &mut out);
        out
    }
}
