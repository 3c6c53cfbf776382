//! The corpus as token ids, split into training and held-out parts, and seeded batches.

use std::path::Path;

use minigpt_decode::Rng;
use minigpt_tokenizer::{CharTokenizer, Tokenizer};

use crate::error::TrainError;

/// A tokenised corpus: the first part trains, the last `val_fraction` validates.
#[derive(Debug)]
pub struct Corpus {
    /// The character vocabulary of the whole text.
    pub tokenizer: CharTokenizer,
    /// Training ids.
    pub train: Vec<u32>,
    /// Held-out ids (the end of the text).
    pub val: Vec<u32>,
}

impl Corpus {
    /// Reads a UTF-8 file and splits it.
    pub fn load(path: &Path, val_fraction: f64, block_size: usize) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            TrainError::Config(format!("cannot read the corpus {}: {e}", path.display()))
        })?;
        Self::from_text(&text, val_fraction, block_size)
            .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))
    }

    /// Splits a text; both parts must hold at least one block plus its target.
    pub fn from_text(text: &str, val_fraction: f64, block_size: usize) -> Result<Self, String> {
        let tokenizer = CharTokenizer::from_text(text);
        let ids = tokenizer.encode(text).map_err(|e| e.to_string())?;
        let n_val = ((ids.len() as f64) * val_fraction).round() as usize;
        let split = ids.len() - n_val;
        let (train, val) = (ids[..split].to_vec(), ids[split..].to_vec());
        let need = block_size + 1;
        if train.len() < need || val.len() < need {
            return Err(format!(
                "the corpus is too short: {} characters split into {} for training and {} held out, \
                 but each part needs at least block_size + 1 = {need}",
                ids.len(),
                train.len(),
                val.len()
            ));
        }
        Ok(Self {
            tokenizer,
            train,
            val,
        })
    }
}

/// `batch` random windows of `block + 1` tokens from `ids`, as inputs and next-token targets
/// (row-major `[batch, block]`). The windows depend only on `(seed, stream, step)`, so a resumed
/// run reads exactly the batches of an uninterrupted one.
pub fn batch(
    ids: &[u32],
    batch: usize,
    block: usize,
    seed: u64,
    stream: u64,
    step: u64,
) -> (Vec<i32>, Vec<i32>) {
    let mut rng = Rng::new(
        seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03),
    );
    let starts = ids.len() - block; // windows ids[s..s + block + 1] with s < len - block
    let mut x = Vec::with_capacity(batch * block);
    let mut y = Vec::with_capacity(batch * block);
    for _ in 0..batch {
        let s = (rng.next_u64() % starts as u64) as usize;
        x.extend(ids[s..s + block].iter().map(|&t| t as i32));
        y.extend(ids[s + 1..s + block + 1].iter().map(|&t| t as i32));
    }
    (x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_batches() {
        let text = "abcdefghij".repeat(10); // 100 chars
        let c = Corpus::from_text(&text, 0.1, 8).unwrap();
        assert_eq!((c.train.len(), c.val.len()), (90, 10));
        assert_eq!(c.tokenizer.vocab_size(), 10);
        let (x, y) = batch(&c.train, 4, 8, 1, 0, 5);
        assert_eq!((x.len(), y.len()), (32, 32));
        // Targets are the inputs shifted by one ("abc..." cycles, so id + 1 mod 10).
        for (a, b) in x.iter().zip(&y) {
            assert_eq!((*a + 1) % 10, *b);
        }
        assert_eq!(batch(&c.train, 4, 8, 1, 0, 5), (x.clone(), y.clone()));
        assert_ne!(batch(&c.train, 4, 8, 1, 0, 6).0, x);
        assert!(
            Corpus::from_text("short", 0.1, 8)
                .unwrap_err()
                .contains("too short")
        );
    }
}
