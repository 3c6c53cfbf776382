//! Experiments over decoding strategies: the metrics of generated text (design.md §6), the
//! sweep runner and its CSV outputs, the comparison against a baseline model, plots.

pub mod metrics;
