//! Built-in logits processors, one per file. Definitions use p = softmax(current logits).

pub mod dry;
pub mod epsilon;
pub mod eta;
pub mod frequency_penalty;
pub mod logit_bias;
pub mod min_new_tokens;
pub mod min_p;
pub mod no_repeat_ngram;
pub mod presence_penalty;
pub mod repetition_penalty;
pub mod temperature;
pub mod top_k;
pub mod top_n_sigma;
pub mod top_p;
pub mod typical_p;
pub mod xtc;

/// Runs a processor on hand-made logits (tests only).
#[cfg(test)]
pub(crate) fn apply(
    p: &mut dyn crate::processor::LogitsProcessor,
    logits: &[f32],
    tokens: &[u32],
    prompt_len: usize,
) -> Vec<f32> {
    let mut l = logits.to_vec();
    let cx = crate::processor::StepContext {
        tokens,
        prompt_len,
        eos_token_id: Some(0),
        seed: 7,
    };
    p.process(&cx, &mut l);
    l
}

/// −∞, for tests.
#[cfg(test)]
pub(crate) const NEG: f32 = f32::NEG_INFINITY;

/// A finite float parameter in a range, or a message naming it and the range.
pub(crate) fn check(name: &str, v: f64, ok: bool, range: &str) -> Result<(), String> {
    if v.is_finite() && ok {
        Ok(())
    } else {
        Err(format!("{name} must be {range} (got {})", Num(v)))
    }
}

/// The range of magnitudes that survive the conversion to f32: 0, or a normal f32.
pub(crate) const F32_RANGE: &str =
    "a value whose magnitude is in [1.2e-38, 3.4e38] (float32's normal range), or 0";

/// Like [`check`], for a parameter applied in f32: a value that f32 would turn into 0, a
/// subnormal or ±∞ (1e-39, 1e39) is refused with the range, instead of silently becoming 0
/// or ∞.
pub(crate) fn check_f32(name: &str, v: f64, ok: bool, range: &str) -> Result<f32, String> {
    check(name, v, ok, range)?;
    let f = v as f32;
    if v != 0.0 && !f.is_normal() {
        return Err(format!(
            "{name} = {} does not fit float32, in which it is applied: use {F32_RANGE}",
            Num(v)
        ));
    }
    Ok(f)
}

/// A float parameter as a chain shows it: as written for ordinary magnitudes (`0.8`), in
/// exponent form beyond them (`3e38`, `1e-30`) instead of dozens of digits.
pub struct Num<T>(pub T);

impl<T: Copy + Into<f64> + std::fmt::Display + std::fmt::LowerExp> std::fmt::Display for Num<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v: f64 = self.0.into();
        if v != 0.0 && v.is_finite() && !(1e-4..1e16).contains(&v.abs()) {
            write!(f, "{:e}", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}
