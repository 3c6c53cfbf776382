//! The model crate's integration tests: one test binary, one module per area.

mod checkpoint;
mod family;
mod pack_cache;
mod parity;
