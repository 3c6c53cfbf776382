//! Tokenizers: GPT-2 byte-level BPE and a character-level tokenizer, behind one trait, plus an
//! incremental decoder for streaming that never emits half a UTF-8 character.

mod bpe;
mod char_level;
mod stream;

pub use bpe::Gpt2Bpe;
pub use char_level::{CHAR_VOCAB_FILE, CharTokenizer};
pub use stream::StreamDecoder;

use std::path::{Path, PathBuf};

/// A tokenizer that could not be built or could not encode its input.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A tokenizer file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A tokenizer file is not in the expected format.
    #[error("{path} is not a valid tokenizer file: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The text holds a character the vocabulary does not have.
    #[error("character {0:?} is not in the model's character vocabulary")]
    UnknownChar(char),
    /// A model directory has no tokenizer and is not a GPT-2 model.
    #[error(
        "{0} has no tokenizer: add tokenizer.json (or vocab.json + merges.txt, or {CHAR_VOCAB_FILE})"
    )]
    Missing(PathBuf),
}

/// Text to token ids and back.
pub trait Tokenizer: Send + Sync {
    /// Token ids of `text`.
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError>;
    /// The raw bytes of a token sequence (may end inside a UTF-8 character).
    fn decode_bytes(&self, ids: &[u32]) -> Vec<u8>;
    /// Text of a token sequence; invalid UTF-8 becomes U+FFFD.
    fn decode(&self, ids: &[u32]) -> String {
        String::from_utf8_lossy(&self.decode_bytes(ids)).into_owned()
    }
    /// Number of token ids.
    fn vocab_size(&self) -> usize;
    /// The end-of-text token, if the vocabulary has one.
    fn eos_token_id(&self) -> Option<u32>;
}

/// Loads the tokenizer a model directory names: `tokenizer.json`, else `vocab.json` +
/// `merges.txt`, else the character vocabulary, else (for a GPT-2 vocabulary of 50257 ids) the
/// GPT-2 encoding built into `tiktoken-rs`.
pub fn load_from_dir(
    dir: &Path,
    model_vocab_size: usize,
) -> Result<Box<dyn Tokenizer>, TokenizerError> {
    let tj = dir.join("tokenizer.json");
    if tj.is_file() {
        return Ok(Box::new(Gpt2Bpe::from_tokenizer_json(&tj)?));
    }
    let (vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
    if vocab.is_file() && merges.is_file() {
        return Ok(Box::new(Gpt2Bpe::from_vocab_merges(&vocab, &merges)?));
    }
    // Half a BPE tokenizer is a broken folder, not a reason to fall back to GPT-2's.
    if let Some((have, lack)) = [(&vocab, &merges), (&merges, &vocab)]
        .into_iter()
        .find(|(have, lack)| have.is_file() && !lack.is_file())
    {
        return Err(TokenizerError::Format {
            path: have.to_path_buf(),
            reason: format!(
                "{} is missing beside it: a BPE tokenizer needs both files (or a tokenizer.json)",
                lack.file_name().unwrap_or_default().to_string_lossy()
            ),
        });
    }
    let chars = dir.join(CHAR_VOCAB_FILE);
    if chars.is_file() {
        return Ok(Box::new(CharTokenizer::load(&chars)?));
    }
    if model_vocab_size == bpe::GPT2_VOCAB_SIZE {
        return Ok(Box::new(Gpt2Bpe::builtin()));
    }
    Err(TokenizerError::Missing(dir.to_path_buf()))
}

pub(crate) fn read(path: &Path) -> Result<String, TokenizerError> {
    std::fs::read_to_string(path).map_err(|source| TokenizerError::Io {
        path: path.to_path_buf(),
        source,
    })
}
