//! Stop strings: text that ends a row once the generated text contains it.

use std::sync::Arc;

/// Text that ends a row as soon as the generated text contains it.
#[derive(Clone, Default)]
pub struct StopStrings {
    /// The strings (none: no stop strings).
    pub strings: Vec<String>,
    /// The bytes of one token (the tokenizer's), needed when `strings` is not empty.
    pub token_bytes: Option<Arc<dyn Fn(u32) -> Vec<u8> + Send + Sync>>,
}

impl std::fmt::Debug for StopStrings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.strings).finish()
    }
}

impl StopStrings {
    /// Stop strings decoded with `token_bytes`.
    pub fn new(
        strings: Vec<String>,
        token_bytes: Arc<dyn Fn(u32) -> Vec<u8> + Send + Sync>,
    ) -> Self {
        Self {
            strings,
            token_bytes: Some(token_bytes),
        }
    }

    /// True when `text` (the bytes generated so far, `added` of them just now) now contains a
    /// stop string that it did not contain before.
    pub(crate) fn hit(&self, text: &[u8], added: usize) -> bool {
        self.strings.iter().any(|s| {
            let s = s.as_bytes();
            // Only matches that end in the new bytes are new.
            let from = text.len().saturating_sub(added + s.len() - 1);
            !s.is_empty() && text[from..].windows(s.len()).any(|w| w == s)
        })
    }
}
