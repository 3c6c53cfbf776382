//! Key/value cache: one preallocated `[batch, n_head, capacity, head_dim]` buffer per layer,
//! written in place (no per-token reallocation), read through a view of the filled part.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// Keys and values of one layer.
#[derive(Debug)]
pub struct LayerCache {
    k: Tensor<4>,
    v: Tensor<4>,
    len: usize,
}

/// The cache of every layer, with the number of filled positions.
#[derive(Debug)]
pub struct KvCache {
    /// One entry per block.
    pub layers: Vec<LayerCache>,
}

impl KvCache {
    /// An empty cache for `batch` rows of up to `capacity` positions.
    pub fn new(
        n_layer: usize,
        batch: usize,
        n_head: usize,
        capacity: usize,
        head_dim: usize,
        device: &Device,
    ) -> Self {
        let layers = (0..n_layer)
            .map(|_| LayerCache {
                k: Tensor::zeros([batch, n_head, capacity, head_dim], device),
                v: Tensor::zeros([batch, n_head, capacity, head_dim], device),
                len: 0,
            })
            .collect();
        Self { layers }
    }

    /// Filled positions.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |l| l.len)
    }

    /// True before the first append.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Positions the buffers can hold.
    pub fn capacity(&self) -> usize {
        self.layers.first().map_or(0, |l| l.k.dims()[2])
    }

    /// Keeps only the given batch rows, in order.
    pub fn retain(&mut self, rows: &[usize], device: &Device) {
        let idx: Vec<i32> = rows.iter().map(|&r| r as i32).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [rows.len()]), device);
        for l in &mut self.layers {
            l.k = l.k.clone().select(0, idx.clone());
            l.v = l.v.clone().select(0, idx.clone());
        }
    }
}

impl LayerCache {
    /// Writes `t` new positions and returns views of all filled positions.
    ///
    /// # Shapes
    /// - k, v: `[batch, n_head, t, head_dim]`
    /// - output: `[batch, n_head, len + t, head_dim]` each
    pub fn append(&mut self, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let [b, h, t, d] = k.dims();
        let (start, end) = (self.len, self.len + t);
        assert!(
            end <= self.k.dims()[2],
            "KV cache overflow: the caller must rebuild first"
        );
        // The buffers have a single owner here, so the writes happen in place.
        self.k
            .inplace(|c| c.slice_assign([0..b, 0..h, start..end, 0..d], k));
        self.v
            .inplace(|c| c.slice_assign([0..b, 0..h, start..end, 0..d], v));
        self.len = end;
        (
            self.k.clone().slice([0..b, 0..h, 0..end, 0..d]),
            self.v.clone().slice([0..b, 0..h, 0..end, 0..d]),
        )
    }
}
