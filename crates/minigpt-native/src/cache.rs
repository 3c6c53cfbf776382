//! [`SeqCache`]: one sequence's keys and values, per layer and head.

use crate::dtype::{narrow, widen};

/// One sequence's keys and values, per layer and head: keys in blocks of eight positions
/// ([`crate::attention::key_index`]), values `[position][head_dim]`; allocated for the whole
/// context at once (zeroed pages the OS backs only as positions fill), so appending never
/// reallocates and each head's keys and values are contiguous streams. Stored in f32, or in
/// f16 when the weights are f16 or bf16 (half the bytes attention reads per token).
#[derive(Debug, Clone)]
pub struct SeqCache {
    pub(crate) k: Vec<Store>,
    pub(crate) v: Vec<Store>,
    pub(crate) len: usize,
}

/// One layer's keys or values.
#[derive(Debug, Clone)]
pub(crate) enum Store {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
}

impl SeqCache {
    /// An empty cache for `layers` layers of `values` values each (keys and values alike),
    /// in f16 when `half` is set.
    pub(crate) fn new(layers: usize, values: usize, half: bool) -> Self {
        let room = || {
            (0..layers)
                .map(|_| match half {
                    false => Store::F32(vec![0.0; values]),
                    true => Store::F16(vec![half::f16::ZERO; values]),
                })
                .collect()
        };
        Self {
            k: room(),
            v: room(),
            len: 0,
        }
    }

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

impl Store {
    /// Stores `xs` at `at`, `at + step`, `at + 2·step`, … (a value vector: step 1; a key:
    /// step [`crate::attention::KEY_BLOCK`], see [`crate::attention::key_index`]).
    pub(crate) fn put(&mut self, at: usize, step: usize, xs: &[f32]) {
        match self {
            Self::F32(v) if step == 1 => v[at..at + xs.len()].copy_from_slice(xs),
            Self::F32(v) => {
                for (d, &x) in v[at..].iter_mut().step_by(step).zip(xs) {
                    *d = x;
                }
            }
            Self::F16(v) if step == 1 => narrow(xs, &mut v[at..at + xs.len()]),
            Self::F16(v) => {
                let mut buf = [half::f16::ZERO; 64];
                for (i, xs) in xs.chunks(64).enumerate() {
                    let buf = &mut buf[..xs.len()];
                    narrow(xs, buf);
                    let dst = v[at + i * 64 * step..].iter_mut().step_by(step);
                    for (d, &x) in dst.zip(&*buf) {
                        *d = x;
                    }
                }
            }
        }
    }

    /// Sets the `n` values from `at` to zero.
    pub(crate) fn zero(&mut self, at: usize, n: usize) {
        match self {
            Self::F32(v) => v[at..at + n].fill(0.0),
            Self::F16(v) => v[at..at + n].fill(half::f16::ZERO),
        }
    }

    /// Values `range` as f32: borrowed, or converted into `buf`.
    pub(crate) fn read<'a>(
        &'a self,
        range: std::ops::Range<usize>,
        buf: &'a mut Vec<f32>,
    ) -> &'a [f32] {
        match self {
            Self::F32(v) => &v[range],
            Self::F16(v) => {
                let out = crate::sized(buf, range.len());
                widen(&v[range], out);
                out
            }
        }
    }
}
