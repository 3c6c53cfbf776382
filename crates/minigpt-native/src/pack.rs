//! [`Packed`]: a weight matrix laid out once, at load time, for the matrix multiply.
//!
//! Panel `p` holds rows `0..k` of columns `32p..32p+32`, contiguous, so a multiply streams
//! each weight once from memory (batch-1 decode is bound by memory bandwidth) and reuses it
//! for every row of the batch from registers (batched decode and prefill are bound by
//! arithmetic).

use crate::buffer::Buf;
use crate::dtype::DType;

/// Columns per packed panel (two 16-lane or four 8-lane registers).
pub const PANEL: usize = 32;
/// Rows per register tile (24 of AVX-512's 32 registers accumulate).
pub(crate) const MR: usize = 12;

/// A `[k, n]` weight matrix in panels of [`PANEL`] columns (the last one zero-padded).
#[derive(Debug)]
pub struct Packed {
    /// Input features (rows).
    pub k: usize,
    /// Output features (columns).
    pub n: usize,
    dtype: DType,
    /// The values when `dtype` is f32 (else empty).
    pub(crate) wide: Buf<f32>,
    /// The values' bits when `dtype` is f16 or bf16 (else empty).
    pub(crate) half: Buf<u16>,
}

impl Packed {
    /// Packs the matrix whose element `(row, col)` is `at(row, col)`.
    pub fn new(k: usize, n: usize, dtype: DType, at: impl Fn(usize, usize) -> f32) -> Self {
        let panels = n.div_ceil(PANEL);
        let value = |i: usize| {
            let (p, rest) = (i / (k * PANEL), i % (k * PANEL));
            let (row, lane) = (rest / PANEL, rest % PANEL);
            let col = p * PANEL + lane;
            if col < n { at(row, col) } else { 0.0 }
        };
        let len = panels * k * PANEL;
        let (wide, half) = match dtype {
            DType::F32 => (Buf::new(len, value), Buf::empty()),
            DType::F16 => (
                Buf::empty(),
                Buf::new(len, |i| half::f16::from_f32(value(i)).to_bits()),
            ),
            DType::BF16 => (
                Buf::empty(),
                Buf::new(len, |i| half::bf16::from_f32(value(i)).to_bits()),
            ),
        };
        Self {
            k,
            n,
            dtype,
            wide,
            half,
        }
    }

    /// Packs a row-major `[k, n]` slice.
    pub fn from_rows(w: &[f32], k: usize, n: usize, dtype: DType) -> Self {
        assert_eq!(w.len(), k * n, "weight of the wrong size");
        Self::new(k, n, dtype, |r, c| w[r * n + c])
    }

    /// The stored type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Bytes of packed weights.
    pub fn bytes(&self) -> usize {
        self.wide.len() * 4 + self.half.len() * 2
    }

    /// Element `(row, col)` as stored (after rounding to the storage type).
    pub fn get(&self, row: usize, col: usize) -> f32 {
        self.at((col / PANEL * self.k + row) * PANEL + col % PANEL)
    }

    /// The stored element at index `i` of the packed layout, as f32.
    pub(crate) fn at(&self, i: usize) -> f32 {
        match self.dtype {
            DType::F32 => self.wide[i],
            DType::F16 => half::f16::from_bits(self.half[i]).to_f32(),
            DType::BF16 => half::bf16::from_bits(self.half[i]).to_f32(),
        }
    }

    /// Column `col` (all `k` rows) into `out`.
    pub fn column(&self, col: usize, out: &mut [f32]) {
        for (row, o) in out.iter_mut().enumerate().take(self.k) {
            *o = self.get(row, col);
        }
    }

    /// Panels of [`PANEL`] columns.
    pub(crate) fn panels(&self) -> usize {
        self.n.div_ceil(PANEL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values as values;

    #[test]
    fn packed_get_returns_the_rounded_weight() {
        let w = values(5 * 20, 6);
        let p = Packed::from_rows(&w, 5, 20, DType::F32);
        assert_eq!(p.get(3, 17), w[3 * 20 + 17]);
        let h = Packed::from_rows(&w, 5, 20, DType::F16);
        assert_eq!(h.get(4, 19), half::f16::from_f32(w[4 * 20 + 19]).to_f32());
        let b = Packed::from_rows(&w, 5, 20, DType::BF16);
        assert_eq!(b.get(0, 0), half::bf16::from_f32(w[0]).to_f32());
    }
}
