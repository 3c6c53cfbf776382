//! The forward pass: the stages of a GPT-2 block, named as in `minigpt-model`'s `gpt.rs`.
//!
//! token + position embeddings → per block `x += attn(ln_1(x)); x += mlp(ln_2(x))` →
//! `ln_f` → (separately, [`NativeGpt::logits`]) the tied LM head.
//!
//! Each sequence has its own KV cache (no left padding, no masks): rows of a batch share only
//! the weight reads of the matrix multiplies, and every kernel computes a row's values with the
//! same operations whatever the batch, so a row's hidden states are bit-identical alone, in
//! any batch, and in a prefill or a cached step.

use std::sync::OnceLock;

use crate::attention::{KEY_BLOCK, attend, key_index};
use crate::cache::{SeqCache, Store};
use crate::math::{add_assign, gelu_erf, gelu_tanh, layer_norm};
use crate::matmul::{matmul, matmul_then};
use crate::model::{Attention, Block, Linear, Mlp, NativeGpt, Norm};
use crate::pack::Packed;
use crate::sized;
use crate::team::team;

/// Which final hidden states a forward pass returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The last new position of each sequence: `[sequences, n_embd]`.
    Last,
    /// Every new position, sequence after sequence: `[new positions, n_embd]`.
    All,
}

/// Queries of one sequence and head per attention work item (a prefill's keys and values are
/// loaded once per block instead of once per query).
const QUERY_BLOCK: usize = 16;

/// Sequences per thread from which a small model's forward pass splits the batch between
/// the threads ([`SPLIT_BYTES`]).
const SPLIT_ROWS: usize = 4;

/// Weights (bytes) up to which a batch splits between the threads instead of splitting each
/// loop: then every thread reads all the weights, which for a model this small stay in cache.
const SPLIT_BYTES: usize = 32 << 20;

/// Query-key pairs (over all heads) from which attention runs on the thread team.
const THREADED_PAIRS: usize = 1024;

thread_local! {
    /// Per-thread attention scratch: scores, and f16 keys and values widened to f32.
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 3]> = const {
        std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new()])
    };
    /// Per-thread activations of a forward pass, reused: fresh multi-megabyte buffers for
    /// every prefill cost a page fault per 4 KiB (PERFORMANCE.md, "Reused buffers").
    static WORK: std::cell::RefCell<[Vec<f32>; 5]> = const {
        std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()])
    };
}

/// A forward pass's sequences: each one's cache and new tokens.
type Seqs<'c, 't> = [(&'c mut SeqCache, &'t [u32])];

/// The new tokens of a forward pass and how attention splits them into work.
struct Plan {
    /// Every new token, sequence after sequence: (sequence, position).
    tokens: Vec<(usize, usize)>,
    /// Attention work: (first token, queries, head), head-major so each thread keeps a few
    /// heads' keys and values in cache; a sequence's new tokens go [`QUERY_BLOCK`] at a time,
    /// sharing every key and value load (prefill), a decode step's one by one.
    items: Vec<(usize, usize, usize)>,
    /// Query-key pairs of one layer, over all heads.
    pairs: usize,
}

/// The activations of a forward pass of `m` new tokens.
struct Activations<'a> {
    /// The residual stream `[m, n_embd]`.
    x: &'a mut [f32],
    /// `[m, n_embd]`: a LayerNorm's output, a projection's output, or attention's heads
    /// (head-major).
    h: &'a mut [f32],
    /// Queries, keys and values `[m, 3 n_embd]`.
    qkv: &'a mut [f32],
    /// Attention's output, token-major `[m, n_embd]`.
    y: &'a mut [f32],
    /// The MLP's inner activations `[m, n_inner]`.
    u: &'a mut [f32],
}

impl NativeGpt {
    /// Runs each sequence's new tokens after its cached positions, appending to its cache,
    /// and returns the final hidden states (after `ln_f`) that `want` asks for.
    ///
    /// Callers keep every sequence within the context (`cache.len() + tokens.len()` at most
    /// `n_positions`).
    pub fn forward(&self, seqs: &mut [(&mut SeqCache, &[u32])], want: Want) -> Vec<f32> {
        match self.split_threads(seqs.len()) {
            Some(threads) => self.forward_split(seqs, want, threads),
            None => self.forward_here(seqs, want),
        }
    }

    /// The threads a forward pass of `n` sequences splits them between, if it does: at least
    /// [`SPLIT_ROWS`] a thread, on a model of at most [`SPLIT_BYTES`] of weights, unless
    /// `MINIGPT_NO_SPLIT` is set (for comparisons). PERFORMANCE.md, "Batch scaling on a small
    /// model".
    fn split_threads(&self, n: usize) -> Option<usize> {
        static NO_SPLIT: OnceLock<bool> = OnceLock::new();
        let threads = team().threads();
        let off = *NO_SPLIT.get_or_init(|| std::env::var_os("MINIGPT_NO_SPLIT").is_some());
        let small = || self.matrices().map(Packed::bytes).sum::<usize>() <= SPLIT_BYTES;
        (threads > 1 && !off && n >= SPLIT_ROWS * threads && small()).then_some(threads)
    }

    /// [`NativeGpt::forward`] with the sequences in `threads` groups, each group's whole pass
    /// on one thread (its loops run alone there): no barrier between the stages of a step.
    fn forward_split(&self, seqs: &mut Seqs<'_, '_>, want: Want, threads: usize) -> Vec<f32> {
        let total: usize = seqs.iter().map(|(_, t)| t.len()).sum();
        let mut groups = Vec::with_capacity(threads);
        let mut rest = seqs;
        let mut done = 0;
        for g in 1..=threads {
            // Contiguous groups of about equal new tokens.
            let goal = total * g / threads;
            let mut take = 0;
            let mut sum = done;
            while take < rest.len() && (sum < goal || g == threads) {
                sum += rest[take].1.len();
                take += 1;
            }
            done = sum;
            let (group, tail) = std::mem::take(&mut rest).split_at_mut(take);
            rest = tail;
            groups.push((group, Vec::new()));
        }
        team().for_each_mut(&mut groups, |(group, out)| {
            if !group.is_empty() {
                *out = self.forward_here(group, want);
            }
        });
        groups.into_iter().flat_map(|(_, out)| out).collect()
    }

    /// [`NativeGpt::forward`] on the calling thread and the team.
    fn forward_here(&self, seqs: &mut Seqs<'_, '_>, want: Want) -> Vec<f32> {
        let c = self.config.n_embd;
        let plan = self.plan(seqs);
        let m = plan.tokens.len();
        let inner = self.h.first().map_or(0, |b| b.mlp.c_fc.w.n);
        let mut work = WORK.with_borrow_mut(std::mem::take);
        let [xb, hb, qb, yb, ub] = &mut work;
        let mut a = Activations {
            x: sized(xb, m * c),
            h: sized(hb, m * c),
            qkv: sized(qb, m * 3 * c),
            y: sized(yb, m * c),
            u: sized(ub, m * inner),
        };
        self.embed(seqs, &plan, a.x);
        for (l, block) in self.h.iter().enumerate() {
            self.block(l, block, seqs, &plan, &mut a);
        }
        for (cache, tokens) in seqs.iter_mut() {
            cache.len += tokens.len();
        }
        let out = self.ln_f(a.x, &wanted_rows(seqs, want, m));
        WORK.with_borrow_mut(|w| *w = work);
        out
    }

    /// The new tokens and the attention work items.
    fn plan(&self, seqs: &Seqs<'_, '_>) -> Plan {
        let mut tokens = Vec::new();
        for (s, (cache, new)) in seqs.iter().enumerate() {
            assert!(
                cache.len + new.len() <= self.config.n_positions,
                "a sequence longer than the context reached the engine"
            );
            tokens.extend((0..new.len()).map(|j| (s, cache.len + j)));
        }
        let n_head = self.config.n_head;
        let mut items = Vec::new();
        for head in 0..n_head {
            let mut tok = 0;
            for (_, new) in seqs.iter() {
                for first in (0..new.len()).step_by(QUERY_BLOCK) {
                    items.push((tok + first, QUERY_BLOCK.min(new.len() - first), head));
                }
                tok += new.len();
            }
        }
        let pairs = tokens.iter().map(|&(_, pos)| pos + 1).sum::<usize>() * n_head;
        Plan {
            tokens,
            items,
            pairs,
        }
    }

    /// `x = wte[token] + wpe[position]` for every new token.
    fn embed(&self, seqs: &Seqs<'_, '_>, plan: &Plan, x: &mut [f32]) {
        let c = self.config.n_embd;
        let ids = seqs.iter().flat_map(|(_, t)| t.iter());
        for ((row, &(_, pos)), &t) in x.chunks_exact_mut(c).zip(&plan.tokens).zip(ids) {
            self.wte.column(t as usize, row);
            add_assign(row, &self.wpe[pos * c..(pos + 1) * c]);
        }
    }

    /// Block `l`: `x += attn(ln_1(x)); x += mlp(ln_2(x))`.
    fn block(
        &self,
        l: usize,
        block: &Block,
        seqs: &mut Seqs<'_, '_>,
        plan: &Plan,
        a: &mut Activations<'_>,
    ) {
        self.ln(a.x, &block.ln_1, a.h);
        self.attn(l, &block.attn, seqs, plan, a);
        add_assign(a.x, a.h);
        self.ln(a.x, &block.ln_2, a.h);
        self.mlp(&block.mlp, plan.tokens.len(), a);
        add_assign(a.x, a.h);
    }

    /// A LayerNorm of every row of `x` into `out` (rows on the team when there are many).
    fn ln(&self, x: &[f32], n: &Norm, out: &mut [f32]) {
        let c = self.config.n_embd;
        let eps = self.config.layer_norm_epsilon;
        let one = |(o, x): (&mut [f32], &[f32])| layer_norm(x, &n.g, &n.b, eps, o);
        if x.len() > 8 * c {
            let mut rows: Vec<_> = out.chunks_mut(c).zip(x.chunks(c)).collect();
            team().for_each_mut(&mut rows, |(o, x)| one((o, x)));
        } else {
            out.chunks_mut(c).zip(x.chunks(c)).for_each(one);
        }
    }

    /// Causal self-attention of layer `l` on `a.h` (the output of `ln_1`), output into `a.h`:
    /// `c_attn`, this layer's keys and values into the caches, attention per head, `c_proj`.
    fn attn(
        &self,
        l: usize,
        attn: &Attention,
        seqs: &mut Seqs<'_, '_>,
        plan: &Plan,
        a: &mut Activations<'_>,
    ) {
        let m = plan.tokens.len();
        linear(a.h, m, &attn.c_attn, a.qkv);
        self.append_keys_values(l, seqs, a.qkv);
        self.attention(l, seqs, plan, a.qkv, a.h, a.y);
        linear(a.y, m, &attn.c_proj, a.h);
    }

    /// Writes layer `l`'s new keys and values (from `qkv`) into each sequence's cache,
    /// sequences in parallel (a key's dimensions go to as many cache lines, mostly cold, so
    /// these writes are worth spreading: PERFORMANCE.md, "KV-cache writes").
    fn append_keys_values(&self, l: usize, seqs: &mut Seqs<'_, '_>, qkv: &[f32]) {
        let c = self.config.n_embd;
        let n_head = self.config.n_head;
        let hd = c / n_head;
        let cap = self.cache_len();
        let mut first = 0;
        let mut puts: Vec<_> = seqs
            .iter_mut()
            .map(|(cache, tokens)| {
                let rows = &qkv[first * 3 * c..(first + tokens.len()) * 3 * c];
                first += tokens.len();
                (&mut **cache, rows)
            })
            .collect();
        let put = |(cache, rows): &mut (&mut SeqCache, &[f32])| {
            for (pos, row) in (cache.len..).zip(rows.chunks_exact(3 * c)) {
                for head in 0..n_head {
                    let (src, base) = (c + head * hd, head * cap * hd);
                    if pos % KEY_BLOCK == 0 {
                        // A new key block is written whole first: attention reads all eight
                        // lanes of the block's last groups, and a block may straddle a page, so
                        // without this the next page was first read (the zero page) and then
                        // written (a copy-on-write fault with a TLB flush on every core):
                        // PERFORMANCE.md, "KV-cache writes".
                        cache.k[l].zero(base + key_index(pos, 0, hd), KEY_BLOCK * hd);
                    }
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
    }

    /// `softmax(q·kᵀ / √head_dim)·v` of every new token and head of layer `l` (queries from
    /// `qkv`, keys and values from the caches), into `y` token-major; `heads` is scratch for
    /// the outputs head-major (`[head][token][head_dim]`: each work item's rows are one
    /// contiguous piece).
    fn attention(
        &self,
        l: usize,
        seqs: &Seqs<'_, '_>,
        plan: &Plan,
        qkv: &[f32],
        heads: &mut [f32],
        y: &mut [f32],
    ) {
        let c = self.config.n_embd;
        let hd = c / self.config.n_head;
        let m = plan.tokens.len();
        let cap = self.cache_len();
        let scale = 1.0 / (hd as f32).sqrt();
        let caches: Vec<&SeqCache> = seqs.iter().map(|(cache, _)| &**cache).collect();
        let (tokens, caches) = (&plan.tokens, &caches);
        let attend_item = |(item, out): &mut (&(usize, usize, usize), &mut [f32])| {
            let (tok, rows, head) = **item;
            let (s, pos) = tokens[tok];
            let (at, len) = (head * cap * hd, pos + 1);
            let seen = len + rows - 1;
            SCRATCH.with_borrow_mut(|[scores, kbuf, vbuf]| {
                let width = seen.next_multiple_of(KEY_BLOCK);
                let scores = sized(scores, rows * width);
                let q = &qkv[tok * 3 * c + head * hd..(tok + rows - 1) * 3 * c + (head + 1) * hd];
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
        let mut rest = &mut heads[..];
        let mut work: Vec<_> = plan
            .items
            .iter()
            .map(|item| {
                let (out, tail) = std::mem::take(&mut rest).split_at_mut(item.1 * hd);
                rest = tail;
                (item, out)
            })
            .collect();
        // Threads pay off from about a thousand query-key pairs.
        if plan.pairs >= THREADED_PAIRS {
            team().for_each_mut(&mut work, attend_item);
        } else {
            work.iter_mut().for_each(attend_item);
        }
        for (head, part) in heads.chunks_exact(m * hd).enumerate() {
            for (row, o) in y.chunks_exact_mut(c).zip(part.chunks_exact(hd)) {
                row[head * hd..(head + 1) * hd].copy_from_slice(o);
            }
        }
    }

    /// The MLP on `a.h` (the output of `ln_2`), output into `a.h`: `c_fc` with the GELU
    /// applied as its tiles are stored, then `c_proj`.
    fn mlp(&self, mlp: &Mlp, m: usize, a: &mut Activations<'_>) {
        let gelu = if self.config.exact_gelu {
            gelu_erf
        } else {
            gelu_tanh
        };
        matmul_then(a.h, m, &mlp.c_fc.w, Some(&mlp.c_fc.b), Some(gelu), a.u);
        linear(a.u, m, &mlp.c_proj, a.h);
    }

    /// The final LayerNorm of rows `rows` of `x`.
    fn ln_f(&self, x: &[f32], rows: &[usize]) -> Vec<f32> {
        let c = self.config.n_embd;
        let mut out = vec![0f32; rows.len() * c];
        for (o, &r) in out.chunks_exact_mut(c).zip(rows) {
            layer_norm(
                &x[r * c..(r + 1) * c],
                &self.ln_f.g,
                &self.ln_f.b,
                self.config.layer_norm_epsilon,
                o,
            );
        }
        out
    }
}

/// `out = x · w + b` for `m` rows.
fn linear(x: &[f32], m: usize, l: &Linear, out: &mut [f32]) {
    matmul(x, m, &l.w, Some(&l.b), out);
}

/// The rows (of the `m` new tokens) whose final hidden states `want` asks for.
fn wanted_rows(seqs: &Seqs<'_, '_>, want: Want, m: usize) -> Vec<usize> {
    match want {
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
    }
}
