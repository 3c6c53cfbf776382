//! The decoding crate's integration tests: one test binary, one module per area.

mod custom_plugin;
mod fuzz;
mod reference;
mod search;
mod strategy;
mod unusable_rows;
