//! The storage type of packed weights, and f32 ↔ f16 conversion of slices (the KV cache of an
//! f16 or bf16 model is stored in f16).

/// Storage type of packed weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DType {
    /// 32-bit floats, as trained.
    #[default]
    F32,
    /// IEEE half precision (round to nearest even).
    F16,
    /// bfloat16 (round to nearest even).
    BF16,
}

impl DType {
    /// The names `--dtype` accepts.
    pub const NAMES: &'static [&'static str] = &["f32", "f16", "bf16"];

    /// Parses `f32`, `f16` or `bf16`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "f32" => Some(Self::F32),
            "f16" => Some(Self::F16),
            "bf16" => Some(Self::BF16),
            _ => None,
        }
    }

    /// Bytes per stored value.
    pub fn bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
        }
    }

    /// The name `--dtype` uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::BF16 => "bf16",
        }
    }
}

/// `dst = src` widened from f16, eight lanes at a time with F16C where the CPU has it
/// (`half`'s slice conversion paid a call per eight values: see PERFORMANCE.md).
pub fn widen(src: &[half::f16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "widen: lengths differ");
    #[cfg(target_arch = "x86_64")]
    if crate::x86::f16c::widen(src, dst) {
        return;
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s.to_f32();
    }
}

/// `dst = src` rounded to f16 (to nearest, ties to even, as `half::f16::from_f32`), eight
/// lanes at a time with F16C where the CPU has it (`from_f32` is a call per value: see
/// PERFORMANCE.md).
pub fn narrow(src: &[f32], dst: &mut [half::f16]) {
    assert_eq!(src.len(), dst.len(), "narrow: lengths differ");
    #[cfg(target_arch = "x86_64")]
    if crate::x86::f16c::narrow(src, dst) {
        return;
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d = half::f16::from_f32(*s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values as values;

    #[test]
    fn widen_matches_half() {
        let src: Vec<half::f16> = values(37, 13)
            .iter()
            .map(|&x| half::f16::from_f32(x * 1e3))
            .chain([
                half::f16::INFINITY,
                half::f16::NAN,
                half::f16::MIN_POSITIVE_SUBNORMAL,
            ])
            .collect();
        let mut dst = vec![0f32; src.len()];
        widen(&src, &mut dst);
        for (s, d) in src.iter().zip(&dst) {
            assert_eq!(s.to_f32().to_bits(), d.to_bits(), "{s}");
        }
        say_path("widen");
    }

    /// Says on stderr (past the harness's capture) which build a conversion test ran.
    fn say_path(what: &str) {
        use std::io::Write;
        let msg = if crate::x86_simd_for_tests() {
            format!("note: {what}: the F16C build compared with `half`")
        } else {
            format!(
                "note: {what}: F16C not available (or MINIGPT_NO_SIMD set): only the portable \
                 build was compared with `half`"
            )
        };
        let _ = writeln!(std::io::stderr(), "{msg}");
    }

    #[test]
    fn narrow_matches_half() {
        // The special values first, so the eight-lane path converts them.
        let src: Vec<f32> = [
            f32::NAN,
            f32::NEG_INFINITY,
            1e-7,     // a subnormal f16
            2049.0,   // halfway between f16 neighbours: ties to even
            6.0e-8,   // rounds to the smallest subnormal
            -65520.0, // rounds to −∞
        ]
        .into_iter()
        .chain(values(37, 14).iter().map(|&x| x * 7e4)) // some beyond f16's range
        .collect();
        let mut dst = vec![half::f16::ZERO; src.len()];
        narrow(&src, &mut dst);
        for (s, d) in src.iter().zip(&dst) {
            let want = half::f16::from_f32(*s);
            assert!(
                want.to_bits() == d.to_bits() || (want.is_nan() && d.is_nan()),
                "{s}: {d} vs {want}"
            );
        }
        say_path("narrow");
    }
}
