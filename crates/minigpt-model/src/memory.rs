//! Memory estimates checked before large allocations, so that an absurd size is a one-line
//! error instead of an abort or an OOM kill: a batch's KV cache and activations, a training
//! run's parameters, optimizer state and activations, against the memory the system has left.
//! The estimates aim at the order of magnitude (they catch a 100 000-row batch, not a 10 %
//! overshoot).

use crate::config::GptConfig;

/// Bytes the system can still give, if known: Linux's `MemAvailable`. Read from
/// `/proc/meminfo` directly: a crate such as `sysinfo` would bring a whole system inventory for
/// this one number.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// f32 bytes of `n` values.
fn f32s(n: u128) -> u128 {
    n.saturating_mul(4)
}

/// Decoding `batch` rows of up to `positions` tokens: the KV cache (2 × layers × rows ×
/// positions × width, f32), the widest per-token activation (the MLP's 4 × width) over a
/// prefill, and a step's logits.
pub fn inference_bytes(cfg: &GptConfig, batch: usize, positions: usize) -> u128 {
    let (b, t) = (batch as u128, positions as u128);
    let (l, c, v) = (
        cfg.n_layer as u128,
        cfg.n_embd as u128,
        cfg.vocab_size as u128,
    );
    let kv = f32s(2 * l * b * t * c);
    let activations = f32s(b * t * cfg.inner() as u128);
    kv.saturating_add(activations)
        .saturating_add(f32s(b.saturating_mul(v)))
}

/// Training with AdamW in f32: 16 bytes a parameter (weights, gradients, two moments), plus the
/// activations kept for the backward pass, per layer b·s·h·(34 + 5·a·s/h) values (Korthikanti et
/// al. 2022, "Reducing Activation Recomputation", for 16-bit values; doubled here for f32),
/// plus the logits and their gradient.
pub fn training_bytes(cfg: &GptConfig, batch: usize) -> u128 {
    let (b, t) = (batch as u128, cfg.n_positions as u128);
    let (l, c, v, a) = (
        cfg.n_layer as u128,
        cfg.n_embd as u128,
        cfg.vocab_size as u128,
        cfg.n_head as u128,
    );
    let params = l * 12 * c * c + (v + t) * c;
    let per_layer = (b * t * c).saturating_mul(34).saturating_mul(2)
        + (b * t * t * a).saturating_mul(5).saturating_mul(2);
    params
        .saturating_mul(16)
        .saturating_add(per_layer.saturating_mul(l))
        .saturating_add(f32s(2 * b * t * v))
}

/// Refuses `bytes` for `what` when it exceeds the available memory, saying how to lower it.
/// Passes when the available memory is unknown.
pub fn check_fits(what: &str, bytes: u128, fix: &str) -> Result<(), String> {
    match available_bytes() {
        Some(free) if bytes > u128::from(free) => Err(format!(
            "{what} needs about {} but {} is available: {fix}",
            human(bytes),
            human(u128::from(free))
        )),
        _ => Ok(()),
    }
}

/// `bytes` in GB or MB.
fn human(bytes: u128) -> String {
    let gb = bytes as f64 / 1e9;
    if gb >= 1.0 {
        format!("{gb:.1} GB")
    } else {
        format!("{:.0} MB", bytes as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GPT-2 124M: the KV cache of one 1024-token row is 2 × 12 × 1024 × 768 × 4 bytes =
    /// 75.5 MB; training at batch 8 needs 16 × 124.4M bytes of parameter state and gigabytes of
    /// activations.
    #[test]
    fn estimates_for_gpt2() {
        let g = GptConfig::new(50257, 1024, 768, 12, 12);
        let one = inference_bytes(&g, 1, 1024);
        let kv = 2 * 12 * 1024 * 768 * 4;
        assert!(one >= kv && one < kv + 20_000_000, "{one}");
        assert_eq!(inference_bytes(&g, 2, 1024), 2 * one);
        let params: u128 = 12 * 12 * 768 * 768 + (50257 + 1024) * 768;
        assert!((124_000_000..125_000_000).contains(&params));
        let train = training_bytes(&g, 8);
        assert!(train > 16 * params + 5_000_000_000, "{train}");
        // Absurd sizes saturate instead of overflowing, and do not fit.
        let huge = GptConfig::new(1000, 1024, 1_000_000, 12, 8);
        assert!(training_bytes(&huge, 100_000_000) > 1u128 << 64);
        assert!(
            check_fits("x", u128::MAX, "lower it")
                .unwrap_err()
                .contains("lower it")
        );
        assert!(check_fits("x", 1, "lower it").is_ok());
    }
}
