//! Built-in token selectors.

pub mod greedy;
pub mod mirostat_v2;
pub mod multinomial;
