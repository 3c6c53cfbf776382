//! [`Packed`]: a weight matrix laid out once, at load time, for the matrix multiply.
//!
//! Panel `p` holds rows `0..k` of columns `32p..32p+32`, contiguous, so a multiply streams
//! each weight once from memory (batch-1 decode is bound by memory bandwidth) and reuses it
//! for every row of the batch from registers (batched decode and prefill are bound by
//! arithmetic).

use std::sync::Arc;

use crate::buffer::{Buf, Settler, bytes_of};
use crate::dtype::DType;
use crate::mapped::MappedFile;
use crate::source::Elements;

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

    /// Packs the `[k, n]` matrix held by `e`: row-major (element `(row, col)` at
    /// `row * n + col`), or with `transposed`, column-major (at `col * k + row`: the tied
    /// head, whose column `t` is row `t` of the token embedding). Each panel is read with one
    /// conversion loop per source run and packed on the engine's threads: packing GPT-2 124M
    /// this way takes a fraction of what a per-element closure does (PERFORMANCE.md, "Load").
    pub fn from_elements(
        k: usize,
        n: usize,
        dtype: DType,
        e: Elements<'_>,
        transposed: bool,
    ) -> Self {
        assert_eq!(e.len(), k * n, "weight of the wrong size");
        let panel_len = k * PANEL;
        let len = n.div_ceil(PANEL) * panel_len;
        // Panel `p` in f32: row r's lanes at r * PANEL, zeros past column n.
        let panel = |p: usize, out: &mut Vec<f32>| {
            out.resize(panel_len, 0.0);
            let (c0, cols) = (p * PANEL, PANEL.min(n - p * PANEL));
            if transposed {
                let mut column = vec![0f32; k];
                for j in 0..cols {
                    e.read((c0 + j) * k, &mut column);
                    for (r, &v) in column.iter().enumerate() {
                        out[r * PANEL + j] = v;
                    }
                }
            } else {
                for r in 0..k {
                    e.read(r * n + c0, &mut out[r * PANEL..r * PANEL + cols]);
                }
            }
        };
        let (wide, half) = match dtype {
            DType::F32 => (
                Buf::from_chunks(len, panel_len, |p, out| panel(p, out)),
                Buf::empty(),
            ),
            DType::F16 | DType::BF16 => {
                let half = Buf::from_chunks(len, panel_len, |p, out: &mut Vec<u16>| {
                    let mut wide = Vec::with_capacity(panel_len);
                    panel(p, &mut wide);
                    out.extend(wide.iter().map(|&v| match dtype {
                        DType::F16 => half::f16::from_f32(v).to_bits(),
                        _ => half::bf16::from_f32(v).to_bits(),
                    }));
                });
                (Buf::empty(), half)
            }
        };
        Self {
            k,
            n,
            dtype,
            wide,
            half,
        }
    }

    /// The `[k, n]` matrix whose packed values (as [`Packed::raw_bytes`] gives them) lie in
    /// `map` at `offset`, read in place until settled; `None` when they do not fit the map or
    /// are misaligned.
    pub(crate) fn mapped(
        k: usize,
        n: usize,
        dtype: DType,
        map: &Arc<MappedFile>,
        offset: usize,
    ) -> Option<Self> {
        let len = Self::packed_len(k, n);
        // Whole panels of about 2 MiB per segment: a kernel reads a panel from one address.
        let panel = k * PANEL;
        let seg = ((2 << 20) / (panel * dtype.bytes())).max(1) * panel;
        let (wide, half) = match dtype {
            DType::F32 => (Buf::mapped(map, offset, len, seg)?, Buf::empty()),
            DType::F16 | DType::BF16 => (Buf::empty(), Buf::mapped(map, offset, len, seg)?),
        };
        Some(Self {
            k,
            n,
            dtype,
            wide,
            half,
        })
    }

    /// Values in the packed layout of a `[k, n]` matrix (whole panels).
    pub(crate) fn packed_len(k: usize, n: usize) -> usize {
        n.div_ceil(PANEL) * k * PANEL
    }

    /// The packed values' bytes in memory order, a segment at a time (for a packed-weights
    /// file).
    pub(crate) fn raw_bytes(&self) -> Vec<&[u8]> {
        match self.dtype {
            DType::F32 => self.wide.segments().map(bytes_of).collect(),
            DType::F16 | DType::BF16 => self.half.segments().map(bytes_of).collect(),
        }
    }

    /// Where panel `p`'s `k * PANEL` values are read from now: `(f32, 16-bit)` addresses, the
    /// stored type's one valid for the panel (for as long as `self` lives), the other null.
    #[inline]
    pub(crate) fn panel_ptrs(&self, p: usize) -> (*const f32, *const u16) {
        let off = p * self.k * PANEL;
        match self.dtype {
            DType::F32 => (self.wide.ptr(off), std::ptr::null()),
            DType::F16 | DType::BF16 => (std::ptr::null(), self.half.ptr(off)),
        }
    }

    /// True while the values are read in place from a mapped file.
    pub(crate) fn is_mapped(&self) -> bool {
        self.wide.is_mapped() || self.half.is_mapped()
    }

    /// A handle that moves mapped values into a huge-page allocation, if they are mapped.
    pub(crate) fn settler(&self) -> Option<Settler> {
        self.wide.settler().or_else(|| self.half.settler())
    }

    /// Packs a row-major `[k, n]` slice.
    pub fn from_rows(w: &[f32], k: usize, n: usize, dtype: DType) -> Self {
        Self::from_elements(k, n, dtype, Elements::F32(w), false)
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
            DType::F32 => self.wide.get(i),
            DType::F16 => half::f16::from_bits(self.half.get(i)).to_f32(),
            DType::BF16 => half::bf16::from_bits(self.half.get(i)).to_f32(),
        }
    }

    /// Panel `p`'s `k * PANEL` values as stored (for the portable kernel: one address lookup
    /// per panel, not per value).
    pub(crate) fn panel(&self, p: usize) -> PanelValues<'_> {
        let (off, len) = (p * self.k * PANEL, self.k * PANEL);
        match self.dtype {
            DType::F32 => PanelValues::F32(self.wide.slice(off, len)),
            DType::F16 => PanelValues::F16(self.half.slice(off, len)),
            DType::BF16 => PanelValues::BF16(self.half.slice(off, len)),
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

/// One panel's values in their stored type.
pub(crate) enum PanelValues<'a> {
    F32(&'a [f32]),
    F16(&'a [u16]),
    BF16(&'a [u16]),
}

impl PanelValues<'_> {
    /// Value `i` of the panel, as f32.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> f32 {
        match self {
            Self::F32(v) => v[i],
            Self::F16(v) => half::f16::from_bits(v[i]).to_f32(),
            Self::BF16(v) => half::bf16::from_bits(v[i]).to_f32(),
        }
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

    /// The panel-wise packer gives exactly the per-element one's values, for every stored
    /// type, both layouts and sizes that leave a partial panel.
    #[test]
    fn from_elements_packs_as_new_does() {
        for (k, n) in [(5, 20), (7, 70), (3, 32), (64, 100)] {
            let w = values(k * n, 9);
            let le32: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
            let le16: Vec<u8> = w
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect();
            let leb16: Vec<u8> = w
                .iter()
                .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                .collect();
            let sources = [
                Elements::F32(&w),
                Elements::F32Le(&le32),
                Elements::F16Le(&le16),
                Elements::BF16Le(&leb16),
            ];
            for e in sources {
                for dtype in [DType::F32, DType::F16, DType::BF16] {
                    for transposed in [false, true] {
                        let want = if transposed {
                            Packed::new(k, n, dtype, |r, c| e.get(c * k + r))
                        } else {
                            Packed::new(k, n, dtype, |r, c| e.get(r * n + c))
                        };
                        let got = Packed::from_elements(k, n, dtype, e, transposed);
                        assert_eq!(
                            got.wide.to_vec(),
                            want.wide.to_vec(),
                            "{k}x{n} {dtype:?} {transposed}"
                        );
                        assert_eq!(
                            got.half.to_vec(),
                            want.half.to_vec(),
                            "{k}x{n} {dtype:?} {transposed}"
                        );
                    }
                }
            }
        }
    }
}
