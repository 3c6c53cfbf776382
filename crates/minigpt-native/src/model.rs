//! [`NativeGpt`]: GPT-2's weights packed for the engine, read from a [`WeightSource`] so that
//! the engine depends on no tensor library.

use crate::attention::KEY_BLOCK;
use crate::cache::SeqCache;
use crate::dtype::DType;
use crate::matmul::matmul;
use crate::pack::Packed;
use crate::settle::Settling;
use crate::source::WeightSource;

/// The hyper-parameters the engine needs (the rest follow from the weights' sizes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Attention heads per layer.
    pub n_head: usize,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// Context length (rows of the position embedding).
    pub n_positions: usize,
    /// LayerNorm's epsilon.
    pub layer_norm_epsilon: f32,
    /// The exact erf GELU (`gelu`) instead of GPT-2's tanh approximation (`gelu_new`).
    pub exact_gelu: bool,
}

/// The sizes [`NativeGpt::from_source`] needs besides [`Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Tokens in the vocabulary (rows of the token embedding).
    pub vocab: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Width of the MLP's hidden layer.
    pub n_inner: usize,
}

/// A linear layer: packed `[in, out]` weight and f32 bias.
#[derive(Debug)]
pub(crate) struct Linear {
    pub(crate) w: Packed,
    pub(crate) b: Vec<f32>,
}

impl Linear {
    /// Packs `{name}.weight` (`[d_in, d_out]`) and copies `{name}.bias` from `src`.
    fn from_source(
        src: &mut dyn WeightSource,
        name: &str,
        d_in: usize,
        d_out: usize,
        dtype: DType,
    ) -> Self {
        let w_name = format!("{name}.weight");
        let w = src.tensor(&w_name);
        assert_eq!(w.len(), d_in * d_out, "{w_name} has the wrong size");
        let w = Packed::from_elements(d_in, d_out, dtype, w, false);
        src.done(&w_name);
        Self {
            w,
            b: vector(src, &format!("{name}.bias"), d_out),
        }
    }
}

/// The named vector of `len` values, copied out of `src`.
fn vector(src: &mut dyn WeightSource, name: &str, len: usize) -> Vec<f32> {
    let v = src.tensor(name).to_vec();
    src.done(name);
    assert_eq!(v.len(), len, "{name} has the wrong size");
    v
}

/// A LayerNorm's scale and shift.
#[derive(Debug)]
pub(crate) struct Norm {
    pub(crate) g: Vec<f32>,
    pub(crate) b: Vec<f32>,
}

impl Norm {
    /// `{name}.weight` and `{name}.bias` (`width` values each) from `src`.
    fn from_source(src: &mut dyn WeightSource, name: &str, width: usize) -> Self {
        Self {
            g: vector(src, &format!("{name}.weight"), width),
            b: vector(src, &format!("{name}.bias"), width),
        }
    }
}

/// Causal self-attention's two projections.
#[derive(Debug)]
pub(crate) struct Attention {
    /// Queries, keys and values of all heads.
    pub(crate) c_attn: Linear,
    /// The output projection.
    pub(crate) c_proj: Linear,
}

/// The MLP's two layers (a GELU between).
#[derive(Debug)]
pub(crate) struct Mlp {
    pub(crate) c_fc: Linear,
    pub(crate) c_proj: Linear,
}

/// One pre-LayerNorm transformer block.
#[derive(Debug)]
pub(crate) struct Block {
    pub(crate) ln_1: Norm,
    pub(crate) attn: Attention,
    pub(crate) ln_2: Norm,
    pub(crate) mlp: Mlp,
}

/// GPT-2 with packed weights.
#[derive(Debug)]
pub struct NativeGpt {
    pub(crate) config: Config,
    /// The tied embedding as the head's `[n_embd, vocab]` matrix (column `t` = token `t`).
    pub(crate) wte: Packed,
    pub(crate) wpe: Vec<f32>,
    pub(crate) h: Vec<Block>,
    pub(crate) ln_f: Norm,
    /// The move of mapped weights into huge pages (models read from a packed-weights file).
    pub(crate) settling: Settling,
}

impl NativeGpt {
    /// Packs a GPT-2 of these `sizes`, reading each tensor from `src` (the token embedding,
    /// the largest, first) and telling `src` as soon as it is done with it.
    ///
    /// # Panics
    /// When a tensor's size does not match `config` and `sizes`, or `n_embd` is not a multiple
    /// of `n_head`.
    pub fn from_source(
        config: Config,
        sizes: Sizes,
        dtype: DType,
        src: &mut dyn WeightSource,
    ) -> Self {
        let Sizes {
            vocab,
            n_layer,
            n_inner,
        } = sizes;
        let c = config.n_embd;
        assert!(
            c > 0 && config.n_head > 0 && c.is_multiple_of(config.n_head),
            "n_embd must be a positive multiple of n_head"
        );
        let wte = src.tensor("wte.weight");
        assert_eq!(
            wte.len(),
            vocab * c,
            "the token embedding is not [vocab_size, n_embd]"
        );
        // The head's [n_embd, vocab] matrix: column t is token t's embedding.
        let wte = Packed::from_elements(c, vocab, dtype, wte, true);
        src.done("wte.weight");
        let wpe = vector(src, "wpe.weight", config.n_positions * c);
        let h = (0..n_layer)
            .map(|i| {
                let pre = format!("h.{i}");
                Block {
                    ln_1: Norm::from_source(src, &format!("{pre}.ln_1"), c),
                    attn: Attention {
                        c_attn: Linear::from_source(
                            src,
                            &format!("{pre}.attn.c_attn"),
                            c,
                            3 * c,
                            dtype,
                        ),
                        c_proj: Linear::from_source(
                            src,
                            &format!("{pre}.attn.c_proj"),
                            c,
                            c,
                            dtype,
                        ),
                    },
                    ln_2: Norm::from_source(src, &format!("{pre}.ln_2"), c),
                    mlp: Mlp {
                        c_fc: Linear::from_source(
                            src,
                            &format!("{pre}.mlp.c_fc"),
                            c,
                            n_inner,
                            dtype,
                        ),
                        c_proj: Linear::from_source(
                            src,
                            &format!("{pre}.mlp.c_proj"),
                            n_inner,
                            c,
                            dtype,
                        ),
                    },
                }
            })
            .collect();
        Self {
            config,
            wte,
            wpe,
            h,
            ln_f: Norm::from_source(src, "ln_f", c),
            settling: Settling::default(),
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.wte.n
    }

    /// The weights' storage type.
    pub fn dtype(&self) -> DType {
        self.wte.dtype()
    }

    /// An empty cache with room for the whole context (touched only as it fills).
    pub fn new_cache(&self) -> SeqCache {
        let values = self.cache_len() * self.config.n_embd;
        SeqCache::new(self.h.len(), values, self.dtype() != DType::F32)
    }

    /// Cached positions per head, rounded up to whole key blocks.
    pub(crate) fn cache_len(&self) -> usize {
        self.config.n_positions.next_multiple_of(KEY_BLOCK)
    }

    /// Logits `[rows, vocab]` of final hidden states `[rows, n_embd]` (the LM head: the tied
    /// token embedding).
    pub fn logits(&self, hidden: &[f32]) -> Vec<f32> {
        let m = hidden.len() / self.config.n_embd;
        let mut out = vec![0f32; m * self.wte.n];
        matmul(hidden, m, &self.wte, None, &mut out);
        // The first token is out: move mapped weights into huge pages, off the critical path.
        self.settling.start(|| self.settlers());
        out
    }

    /// True while some weights are read in place from a mapped packed-weights file
    /// ([`NativeGpt::from_packed`]): they move into huge pages (2 MiB, fewer TLB misses) on a
    /// background thread after the first logits, or at once with [`NativeGpt::settle`].
    pub fn is_mapped(&self) -> bool {
        self.matrices().any(Packed::is_mapped)
    }

    /// Moves any mapped weights into huge-page memory now and waits until they are there (for
    /// benchmarks that time steady-state steps).
    pub fn settle(&self) {
        self.settling.start(|| self.settlers());
        self.settling.wait();
    }

    /// Every packed matrix, the largest first.
    pub(crate) fn matrices(&self) -> impl Iterator<Item = &Packed> {
        std::iter::once(&self.wte).chain(self.h.iter().flat_map(|b| {
            [
                &b.attn.c_attn.w,
                &b.attn.c_proj.w,
                &b.mlp.c_fc.w,
                &b.mlp.c_proj.w,
            ]
        }))
    }

    /// Handles that settle the mapped matrices, in the order a step reads them (blocks first,
    /// the head last), so the next step's early layers speed up first.
    fn settlers(&self) -> Vec<crate::buffer::Settler> {
        let mut all: Vec<_> = self.matrices().filter_map(Packed::settler).collect();
        let first = 1.min(all.len());
        all.rotate_left(first);
        all
    }
}
