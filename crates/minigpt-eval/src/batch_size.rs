//! `[experiment] batch_size`: a fixed number of rows per model batch, or `"auto"` (the
//! default), which [`BatchSize::choose`] turns into a number once the model is loaded.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most rows `auto` puts in one batch. Past 64 the native engine gains little per row on
/// the shipped model (24687 tokens/s at 64 against 20931 at 16, `minigpt bench --batch 16,64`),
/// while a batch's memory keeps growing.
pub const AUTO_CAP: usize = 64;

/// Rows generated together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchSize {
    /// The largest batch up to [`AUTO_CAP`] whose memory estimate fits, on a model whose rows
    /// do not depend on their batch; one row otherwise.
    #[default]
    Auto,
    /// This many rows.
    Rows(usize),
}

/// What `auto` chose and why, for the run's header line and `run.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// Rows per model batch.
    pub rows: usize,
    /// Why `auto` chose `rows` (`None` for a fixed `batch_size`).
    pub why: Option<String>,
}

impl BatchSize {
    /// The rows per batch: a fixed size as given; for `auto`, on a batch-invariant model, the
    /// largest size up to [`AUTO_CAP`] that `fits`, and on any other model one row (rows batched
    /// there change with their batch's padding, so the texts would depend on the batch size).
    /// `fits` is monotone: a batch that fits fits with fewer rows too.
    pub fn choose(self, batch_invariant: bool, fits: impl Fn(usize) -> bool) -> Chosen {
        match self {
            Self::Rows(rows) => Chosen { rows, why: None },
            Self::Auto if !batch_invariant => Chosen {
                rows: 1,
                why: Some(
                    "this device's batched rows depend on their batch's padding; set a number \
                     to batch anyway"
                        .into(),
                ),
            },
            Self::Auto => {
                // Binary search for the largest size that fits (at least 1: a single row that
                // does not fit is refused by the memory check that follows).
                let (mut lo, mut hi) = (1, AUTO_CAP);
                while lo < hi {
                    let mid = (lo + hi).div_ceil(2);
                    if fits(mid) {
                        lo = mid;
                    } else {
                        hi = mid - 1;
                    }
                }
                let why = if lo == AUTO_CAP {
                    format!("the cap of {AUTO_CAP}")
                } else {
                    "the most whose memory estimate fits in half the available memory".to_string()
                };
                Chosen {
                    rows: lo,
                    why: Some(why),
                }
            }
        }
    }
}

impl fmt::Display for BatchSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "\"auto\""),
            Self::Rows(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for BatchSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => s.serialize_str("auto"),
            Self::Rows(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for BatchSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = BatchSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a number of rows (1 or more) or \"auto\"")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<BatchSize, E> {
                usize::try_from(n)
                    .map(BatchSize::Rows)
                    .map_err(|_| E::custom(format!("batch_size {n} is too large")))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<BatchSize, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!(
                        "batch_size must be 1 or more, or \"auto\" (got {n})"
                    ))),
                }
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<BatchSize, E> {
                if s == "auto" {
                    Ok(BatchSize::Auto)
                } else {
                    Err(E::custom(format!(
                        "batch_size must be a number of rows or \"auto\" (got {s:?})"
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Serialize)]
    struct T {
        #[serde(default)]
        b: BatchSize,
    }

    #[test]
    fn reads_and_writes_a_number_or_auto() {
        let t: T = toml::from_str("b = 8").unwrap();
        assert_eq!(t.b, BatchSize::Rows(8));
        let t: T = toml::from_str("b = \"auto\"").unwrap();
        assert_eq!(t.b, BatchSize::Auto);
        let t: T = toml::from_str("").unwrap();
        assert_eq!(t.b, BatchSize::Auto);
        assert_eq!(
            serde_json::to_string(&T {
                b: BatchSize::Rows(3)
            })
            .unwrap(),
            r#"{"b":3}"#
        );
        assert_eq!(
            serde_json::to_string(&T { b: BatchSize::Auto }).unwrap(),
            r#"{"b":"auto"}"#
        );
        for bad in ["b = \"big\"", "b = -2", "b = 1.5"] {
            let e = toml::from_str::<T>(bad).err().expect(bad).to_string();
            assert!(e.contains("\"auto\""), "{bad}: {e}");
        }
    }

    #[test]
    fn auto_takes_the_largest_batch_that_fits_up_to_the_cap() {
        // Fits up to 23 rows: auto picks 23; everything fits: the cap.
        let c = BatchSize::Auto.choose(true, |b| b <= 23);
        assert_eq!(c.rows, 23);
        assert!(c.why.unwrap().contains("memory"));
        let c = BatchSize::Auto.choose(true, |_| true);
        assert_eq!(c.rows, AUTO_CAP);
        assert!(c.why.unwrap().contains("cap"));
        // Nothing fits: one row (which the memory check then refuses with its fix).
        assert_eq!(BatchSize::Auto.choose(true, |_| false).rows, 1);
        // Every size from 1 to the cap is found exactly.
        for n in 1..=AUTO_CAP {
            assert_eq!(BatchSize::Auto.choose(true, |b| b <= n).rows, n);
        }
        // A model whose rows depend on their batch stays at one row, and says why.
        let c = BatchSize::Auto.choose(false, |_| true);
        assert_eq!(c.rows, 1);
        assert!(c.why.unwrap().contains("padding"));
        // A fixed size is kept whatever fits.
        assert_eq!(
            BatchSize::Rows(100).choose(false, |_| false),
            Chosen {
                rows: 100,
                why: None
            }
        );
    }
}
