//! minigpt's native CPU engine: GPT-2 inference on its own kernels, with weights packed once
//! at load time in f32, f16 or bf16. `minigpt-model` runs it for `--device cpu`: it packs a
//! safetensors file (memory-mapped: [`MappedFile`], or in memory) through a [`WeightSource`]
//! (this crate uses no tensor library).
//!
//! Why not Burn's `flex` for inference: see `PERFORMANCE.md`. Training stays on Burn (it needs
//! autodiff); Burn's `flex`, `ndarray` and `wgpu` devices remain available for inference and
//! are the parity reference for this engine (`minigpt-model`'s `tests/integration/parity.rs`).
//!
//! **A row's logits are bit-identical alone, in any batch, and in a prefill or a cached
//! step**: each sequence has its own KV cache ([`SeqCache`]), and every kernel computes a row's
//! values with the same operations whatever the batch ([`matmul`]'s module documentation).
//!
//! Layout: [`NativeGpt`] ([`model`]) and its [`forward`](NativeGpt::forward) pass
//! (`forward.rs`), on the kernels: [`matmul`] over [`pack`]ed weights, [`attention`], the
//! element-wise [`math`], f16 conversions in [`dtype`]; x86-64 SIMD in `x86/`, the thread team
//! in `team.rs`; packed-weights files in `packed_file.rs`, read in place and moved into huge
//! pages in the background (`settle.rs`). Unsafe code is allowed only in `buffer.rs`, `mapped.rs`, `matmul.rs`,
//! `attention.rs`, `math.rs`, `team.rs` and `x86/`. Measurements behind the design: `PERFORMANCE.md`.

pub mod attention;
mod buffer;
mod cache;
pub mod dtype;
mod forward;
mod key_layout;
mod mapped;
pub mod math;
pub mod matmul;
pub mod model;
pub mod pack;
mod packed_file;
mod settle;
mod source;
mod team;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use cache::SeqCache;
pub use dtype::DType;
pub use forward::Want;
pub use mapped::MappedFile;
pub use matmul::Kernel;
pub use model::{Config, NativeGpt, Sizes};
pub use packed_file::{Opened, PackedHeader};
pub use source::{Elements, WeightSource};

/// Threads the engine's parallel loops run on (`RAYON_NUM_THREADS`, else one per core).
pub fn threads() -> usize {
    team::team().threads()
}

/// Calls `f(i)` for every `i < n` on the engine's threads (the caller's included) and returns
/// when all are done; items are claimed one at a time. For work between forward passes (the
/// rows' decoding chains), so it shares the engine's threads instead of starting a pool.
pub fn for_each(n: usize, f: &(dyn Fn(usize) + Sync)) {
    team::team().run(n, f)
}

/// `v` resized to `n` values (contents unspecified: every caller overwrites them).
pub(crate) fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.resize(n, 0.0);
    &mut v[..n]
}

/// Deterministic pseudo-random values in [-1, 1), for tests.
#[cfg(test)]
pub(crate) fn test_values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

#[cfg(test)]
thread_local! {
    /// Set by [`on_portable_build`]: this thread's element-wise functions take their portable
    /// build.
    static PORTABLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread's element-wise functions must take their portable build (tests only).
#[cfg(test)]
pub(crate) fn portable_forced() -> bool {
    PORTABLE.get()
}

/// Whether this thread's element-wise functions must take their portable build (tests only).
#[cfg(not(test))]
#[inline(always)]
pub(crate) const fn portable_forced() -> bool {
    false
}

/// Runs `f` with this thread's element-wise functions on their portable build (for tests that
/// compare it with the SIMD build).
#[cfg(test)]
pub(crate) fn on_portable_build<R>(f: impl FnOnce() -> R) -> R {
    PORTABLE.set(true);
    let r = f();
    PORTABLE.set(false);
    r
}

/// Whether the engine runs its AVX2 + FMA + F16C code, for tests that say what they covered.
#[cfg(test)]
pub(crate) fn x86_simd_for_tests() -> bool {
    #[cfg(target_arch = "x86_64")]
    return x86::simd();
    #[cfg(not(target_arch = "x86_64"))]
    false
}
