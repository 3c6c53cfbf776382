//! Built-in search strategies.

pub mod beam_search;
pub mod contrastive_search;
