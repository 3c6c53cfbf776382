//! GPT-2 byte-level BPE (Radford et al. 2019): bytes are mapped to printable characters, the
//! text is split by GPT-2's pre-tokenizer regex, and each piece is merged by rank.

use std::collections::HashMap;
use std::path::Path;

use fancy_regex::Regex;

use crate::{Tokenizer, TokenizerError, read};

/// Number of ids in GPT-2's vocabulary (50000 merges + 256 bytes + `<|endoftext|>`).
pub(crate) const GPT2_VOCAB_SIZE: usize = 50257;
const ENDOFTEXT: &str = "<|endoftext|>";
/// GPT-2's pre-tokenizer (`encoder.py`), as used by Hugging Face's `ByteLevel`.
const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// A GPT-2 byte-level BPE tokenizer.
pub struct Gpt2Bpe {
    inner: Inner,
}

enum Inner {
    /// `r50k_base` from `tiktoken-rs` (GPT-2's own vocabulary, compiled into the binary).
    Builtin(&'static tiktoken_rs::CoreBPE),
    /// Vocabulary and merges read from files.
    Merges(Box<MergesBpe>),
}

struct MergesBpe {
    encoder: HashMap<String, u32>,
    decoder: HashMap<u32, Vec<u8>>,
    ranks: HashMap<(String, String), u32>,
    specials: Vec<(String, u32)>,
    regex: Regex,
    byte_to_char: [char; 256],
    vocab_size: usize,
    eos: Option<u32>,
}

/// GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the rest to U+0100 onwards.
fn bytes_to_unicode() -> [char; 256] {
    let mut table = ['\0'; 256];
    let printable = |b: u32| {
        (u32::from(b'!')..=u32::from(b'~')).contains(&b)
            || (0xA1..=0xAC).contains(&b)
            || (0xAE..=0xFF).contains(&b)
    };
    let mut n = 0;
    for b in 0..256u32 {
        table[b as usize] = if printable(b) {
            char::from_u32(b).unwrap_or('\0')
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('\0')
        };
    }
    table
}

impl Gpt2Bpe {
    /// GPT-2's own vocabulary, built into the binary (no files needed).
    pub fn builtin() -> Self {
        Self {
            inner: Inner::Builtin(tiktoken_rs::r50k_base_singleton()),
        }
    }

    /// Reads a Hugging Face `tokenizer.json` whose model is byte-level BPE.
    pub fn from_tokenizer_json(path: &Path) -> Result<Self, TokenizerError> {
        let bad = |reason: String| TokenizerError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_str(&read(path)?).map_err(|e| bad(e.to_string()))?;
        let model = &v["model"];
        if model["type"].as_str() != Some("BPE") {
            return Err(bad(format!(
                "model type is {}, only byte-level BPE is supported",
                model["type"]
            )));
        }
        let vocab: HashMap<String, u32> = serde_json::from_value(model["vocab"].clone())
            .map_err(|e| bad(format!("model.vocab: {e}")))?;
        let merges_v = model["merges"]
            .as_array()
            .ok_or_else(|| bad("model.merges is missing".into()))?;
        let mut merges = Vec::with_capacity(merges_v.len());
        for m in merges_v {
            // "a b" (tokenizers < 0.20) or ["a", "b"] (newer).
            let pair = match m {
                serde_json::Value::String(s) => s
                    .split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string())),
                serde_json::Value::Array(a) if a.len() == 2 => {
                    match (a[0].as_str(), a[1].as_str()) {
                        (Some(x), Some(y)) => Some((x.to_string(), y.to_string())),
                        _ => None,
                    }
                }
                _ => None,
            };
            merges.push(pair.ok_or_else(|| bad(format!("bad merge entry {m}")))?);
        }
        let mut specials = Vec::new();
        if let Some(added) = v["added_tokens"].as_array() {
            for t in added {
                if let (Some(id), Some(content)) = (t["id"].as_u64(), t["content"].as_str()) {
                    specials.push((content.to_string(), id as u32));
                }
            }
        }
        MergesBpe::new(vocab, merges, specials).map(Self::merges)
    }

    /// Reads GPT-2's original `vocab.json` (a.k.a. `encoder.json`) and `merges.txt` (`vocab.bpe`).
    pub fn from_vocab_merges(vocab: &Path, merges: &Path) -> Result<Self, TokenizerError> {
        let enc: HashMap<String, u32> =
            serde_json::from_str(&read(vocab)?).map_err(|e| TokenizerError::Format {
                path: vocab.to_path_buf(),
                reason: e.to_string(),
            })?;
        let text = read(merges)?;
        let mut pairs = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.starts_with("#version") || line.trim().is_empty() {
                continue;
            }
            let (a, b) = line.split_once(' ').ok_or_else(|| TokenizerError::Format {
                path: merges.to_path_buf(),
                reason: format!("line {} is not two symbols separated by a space", n + 1),
            })?;
            pairs.push((a.to_string(), b.to_string()));
        }
        let specials = enc
            .get(ENDOFTEXT)
            .map(|&id| vec![(ENDOFTEXT.to_string(), id)])
            .unwrap_or_default();
        MergesBpe::new(enc, pairs, specials).map(Self::merges)
    }

    fn merges(m: MergesBpe) -> Self {
        Self {
            inner: Inner::Merges(Box::new(m)),
        }
    }
}

impl MergesBpe {
    fn new(
        encoder: HashMap<String, u32>,
        merges: Vec<(String, String)>,
        specials: Vec<(String, u32)>,
    ) -> Result<Self, TokenizerError> {
        let byte_to_char = bytes_to_unicode();
        let mut char_to_byte = HashMap::new();
        for (b, &c) in byte_to_char.iter().enumerate() {
            char_to_byte.insert(c, b as u8);
        }
        let mut decoder = HashMap::with_capacity(encoder.len() + specials.len());
        for (sym, &id) in &encoder {
            // A symbol is a string of byte-characters; anything else (a special) is its UTF-8.
            let bytes: Option<Vec<u8>> =
                sym.chars().map(|c| char_to_byte.get(&c).copied()).collect();
            decoder.insert(id, bytes.unwrap_or_else(|| sym.as_bytes().to_vec()));
        }
        for (s, id) in &specials {
            decoder.insert(*id, s.as_bytes().to_vec());
        }
        let ranks = merges
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p, i as u32))
            .collect();
        let vocab_size = decoder.keys().max().map_or(0, |&m| m as usize + 1);
        let eos = specials
            .iter()
            .find(|(s, _)| s == ENDOFTEXT)
            .map(|&(_, id)| id);
        let regex = Regex::new(GPT2_PATTERN).expect("GPT-2 pattern compiles");
        // Longest specials first so that one that contains another wins.
        let mut specials = specials;
        specials.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        Ok(Self {
            encoder,
            decoder,
            ranks,
            specials,
            regex,
            byte_to_char,
            vocab_size,
            eos,
        })
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            // The earliest special token (longest first at the same position).
            let next = self
                .specials
                .iter()
                .filter_map(|(s, id)| rest.find(s.as_str()).map(|at| (at, s.len(), *id)))
                .min_by_key(|&(at, len, _)| (at, std::cmp::Reverse(len)));
            match next {
                Some((at, len, id)) => {
                    self.encode_ordinary(&rest[..at], &mut out)?;
                    out.push(id);
                    rest = &rest[at + len..];
                }
                None => {
                    self.encode_ordinary(rest, &mut out)?;
                    break;
                }
            }
        }
        Ok(out)
    }

    fn encode_ordinary(&self, text: &str, out: &mut Vec<u32>) -> Result<(), TokenizerError> {
        for m in self.regex.find_iter(text) {
            let piece = m.map_err(|e| TokenizerError::Format {
                path: "<pre-tokenizer>".into(),
                reason: e.to_string(),
            })?;
            let symbols: Vec<String> = piece
                .as_str()
                .bytes()
                .map(|b| self.byte_to_char[b as usize].to_string())
                .collect();
            for sym in self.bpe(symbols) {
                // Every byte is in a byte-level vocabulary; a vocabulary missing one is malformed.
                let id = self
                    .encoder
                    .get(&sym)
                    .ok_or_else(|| TokenizerError::Format {
                        path: "<vocabulary>".into(),
                        reason: format!("symbol {sym:?} has no id"),
                    })?;
                out.push(*id);
            }
        }
        Ok(())
    }

    /// Merges the lowest-ranked adjacent pair (all its occurrences, left to right) until no pair
    /// has a rank: GPT-2's `encoder.py`.
    fn bpe(&self, mut word: Vec<String>) -> Vec<String> {
        while word.len() > 1 {
            let best = word
                .windows(2)
                .filter_map(|w| self.ranks.get(&(w[0].clone(), w[1].clone())))
                .min();
            let Some(&rank) = best else { break };
            let mut merged = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if i + 1 < word.len()
                    && self.ranks.get(&(word[i].clone(), word[i + 1].clone())) == Some(&rank)
                {
                    merged.push(format!("{}{}", word[i], word[i + 1]));
                    i += 2;
                } else {
                    merged.push(std::mem::take(&mut word[i]));
                    i += 1;
                }
            }
            word = merged;
        }
        word
    }
}

impl Tokenizer for Gpt2Bpe {
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        match &self.inner {
            Inner::Builtin(bpe) => Ok(bpe.encode_with_special_tokens(text)),
            Inner::Merges(m) => m.encode(text),
        }
    }

    fn decode_bytes(&self, ids: &[u32]) -> Vec<u8> {
        match &self.inner {
            Inner::Builtin(bpe) => ids
                .iter()
                .flat_map(|&i| {
                    bpe.decode_bytes(&[i])
                        .unwrap_or_else(|_| "\u{FFFD}".as_bytes().to_vec())
                })
                .collect(),
            Inner::Merges(m) => ids
                .iter()
                .flat_map(|i| {
                    m.decoder
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| "\u{FFFD}".as_bytes().to_vec())
                })
                .collect(),
        }
    }

    fn vocab_size(&self) -> usize {
        match &self.inner {
            Inner::Builtin(_) => GPT2_VOCAB_SIZE,
            Inner::Merges(m) => m.vocab_size,
        }
    }

    fn eos_token_id(&self) -> Option<u32> {
        match &self.inner {
            Inner::Builtin(_) => Some(GPT2_VOCAB_SIZE as u32 - 1),
            Inner::Merges(m) => m.eos,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_matches_gpt2() {
        let t = bytes_to_unicode();
        assert_eq!(t[b'!' as usize], '!');
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[0], 'Ā');
        let mut all: Vec<char> = t.to_vec();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 256);
    }

    #[test]
    fn builtin_known_ids() {
        let t = Gpt2Bpe::builtin();
        // "Hello world" in GPT-2 is [15496, 995]; "<|endoftext|>" is 50256.
        assert_eq!(t.encode("Hello world").unwrap(), vec![15496, 995]);
        assert_eq!(t.encode("<|endoftext|>").unwrap(), vec![50256]);
        assert_eq!(t.decode(&[15496, 995]), "Hello world");
    }
}
