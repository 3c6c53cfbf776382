//! How a head's keys lie in the KV cache: blocks of [`KEY_BLOCK`] positions, dimension-major
//! within a block, so attention computes eight scores in one pass with no horizontal sums.
//! (Its own file: both attention builds, `crate::attention` and
//! `crate::x86::avx512_attention`, read this layout.)

/// Positions per block of the key cache.
pub const KEY_BLOCK: usize = 8;

/// Where dimension `dim` of position `pos` lives in one head's key blocks of `d` dimensions.
pub fn key_index(pos: usize, dim: usize, d: usize) -> usize {
    (pos / KEY_BLOCK * d + dim) * KEY_BLOCK + pos % KEY_BLOCK
}
