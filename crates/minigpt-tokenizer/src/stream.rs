//! Streaming decode: turn tokens into text as they arrive without splitting a UTF-8 character.

use crate::Tokenizer;

/// Accumulates token bytes and hands out only complete UTF-8 text.
///
/// A byte-level BPE token may end in the middle of a multi-byte character (emoji, CJK); the
/// decoder keeps such a tail until the next token completes it.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
}

impl StreamDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one token and returns the text that is now complete (possibly empty).
    pub fn push(&mut self, tokenizer: &dyn Tokenizer, token: u32) -> String {
        self.pending
            .extend_from_slice(&tokenizer.decode_bytes(&[token]));
        self.take_complete()
    }

    /// Returns whatever is left, with an incomplete tail shown as U+FFFD.
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }

    fn take_complete(&mut self) -> String {
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // Invalid bytes that no continuation can fix: show them as U+FFFD.
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..valid + bad);
                        }
                        // An incomplete character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TokenizerError;

    /// One byte per token.
    struct Bytes;
    impl Tokenizer for Bytes {
        fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
            Ok(text.bytes().map(u32::from).collect())
        }
        fn decode_bytes(&self, ids: &[u32]) -> Vec<u8> {
            ids.iter().map(|&i| i as u8).collect()
        }
        fn vocab_size(&self) -> usize {
            256
        }
        fn eos_token_id(&self) -> Option<u32> {
            None
        }
    }

    #[test]
    fn never_splits_a_character() {
        let text = "a€😀b日";
        let ids = Bytes.encode(text).unwrap();
        let mut d = StreamDecoder::new();
        let mut pieces = vec![];
        for &i in &ids {
            pieces.push(d.push(&Bytes, i));
        }
        assert_eq!(pieces.concat(), text);
        assert_eq!(d.finish(), "");
        // "€" is 3 bytes: nothing is printed until its last byte arrives.
        assert_eq!(pieces[1], "");
        assert_eq!(pieces[2], "");
        assert_eq!(pieces[3], "€");
    }

    #[test]
    fn invalid_bytes_become_replacement_chars() {
        let mut d = StreamDecoder::new();
        assert_eq!(d.push(&Bytes, 0xFF), "\u{FFFD}");
        assert_eq!(d.push(&Bytes, 0xE2), "");
        assert_eq!(d.finish(), "\u{FFFD}");
    }
}
