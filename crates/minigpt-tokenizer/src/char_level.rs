//! Character-level tokenizer: one id per Unicode scalar of a fixed vocabulary (nanoGPT's
//! `shakespeare_char`), saved beside the model as JSON.

use std::collections::HashMap;
use std::path::Path;

use crate::{Tokenizer, TokenizerError, read};

/// File name of the character vocabulary in a model directory.
pub const CHAR_VOCAB_FILE: &str = "char_vocab.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct CharVocabFile {
    /// The characters, in id order.
    chars: Vec<String>,
    #[serde(default)]
    eos_token_id: Option<u32>,
}

/// Maps each character of a fixed vocabulary to its index.
#[derive(Debug, Clone)]
pub struct CharTokenizer {
    chars: Vec<char>,
    index: HashMap<char, u32>,
    eos: Option<u32>,
}

impl CharTokenizer {
    /// The sorted set of characters of `text` (nanoGPT's `sorted(set(text))`).
    pub fn from_text(text: &str) -> Self {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Self::from_chars(chars, None)
    }

    fn from_chars(chars: Vec<char>, eos: Option<u32>) -> Self {
        let index = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u32))
            .collect();
        Self { chars, index, eos }
    }

    /// Reads a vocabulary written by [`CharTokenizer::save`].
    pub fn load(path: &Path) -> Result<Self, TokenizerError> {
        Self::from_json(&read(path)?, path)
    }

    /// Parses the text of a vocabulary file (`path` is only for messages).
    pub fn from_json(text: &str, path: &Path) -> Result<Self, TokenizerError> {
        let bad = |reason: String| TokenizerError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let file: CharVocabFile = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut chars = Vec::with_capacity(file.chars.len());
        for s in &file.chars {
            let mut it = s.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => chars.push(c),
                _ => return Err(bad(format!("entry {s:?} is not a single character"))),
            }
        }
        let t = Self::from_chars(chars, file.eos_token_id);
        if t.index.len() != t.chars.len() {
            return Err(bad("a character appears twice".into()));
        }
        Ok(t)
    }

    /// Writes the vocabulary as JSON.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let file = CharVocabFile {
            chars: self.chars.iter().map(|c| c.to_string()).collect(),
            eos_token_id: self.eos,
        };
        std::fs::write(path, serde_json::to_string_pretty(&file)?)
    }
}

impl Tokenizer for CharTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        text.chars()
            .map(|c| {
                self.index
                    .get(&c)
                    .copied()
                    .ok_or(TokenizerError::UnknownChar(c))
            })
            .collect()
    }

    fn decode_bytes(&self, ids: &[u32]) -> Vec<u8> {
        let mut s = String::new();
        for &i in ids {
            s.push(self.chars.get(i as usize).copied().unwrap_or('\u{FFFD}'));
        }
        s.into_bytes()
    }

    fn vocab_size(&self) -> usize {
        self.chars.len()
    }

    fn eos_token_id(&self) -> Option<u32> {
        self.eos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_vocab_round_trip_and_unknown_char() {
        let t = CharTokenizer::from_text("hello, world\n");
        assert_eq!(t.vocab_size(), 10); // "\n ,dehlorw"
        assert_eq!(t.encode("\n").unwrap(), vec![0]);
        assert_eq!(t.encode("w").unwrap(), vec![9]);
        let ids = t.encode("hello world").unwrap();
        assert_eq!(t.decode(&ids), "hello world");
        assert!(matches!(
            t.encode("hi"),
            Err(TokenizerError::UnknownChar('i'))
        ));
    }

    #[test]
    fn save_and_load() {
        let guard = tempfile::tempdir().unwrap();
        let dir = guard.path();
        let p = dir.join(CHAR_VOCAB_FILE);
        let t = CharTokenizer::from_text("Zoë: ça va?\n");
        t.save(&p).unwrap();
        let u = CharTokenizer::load(&p).unwrap();
        assert_eq!(u.chars, t.chars);
        std::fs::write(&p, r#"{"chars": ["ab"]}"#).unwrap();
        assert!(
            CharTokenizer::load(&p)
                .unwrap_err()
                .to_string()
                .contains("single character")
        );
    }
}
