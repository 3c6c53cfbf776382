//! Stopping decoding from outside: a flag another thread sets (Ctrl-C), checked before every
//! model step by the sampling loop and the searches.

use std::sync::atomic::{AtomicBool, Ordering};

/// Decoding stopped because its cancel flag was set; the rows are unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("decoding was cancelled")]
pub struct Cancelled;

/// Whether `flag` is given and set.
pub fn is_set(flag: Option<&AtomicBool>) -> bool {
    flag.is_some_and(|c| c.load(Ordering::SeqCst))
}
