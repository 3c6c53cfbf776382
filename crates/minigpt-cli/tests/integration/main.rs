//! End-to-end tests of the `minigpt` binary: one test binary (as ripgrep and uv do), one
//! module per area, helpers shared in `util`.

mod util;

mod cli;
mod cluster;
mod default_model;
mod hub;
mod report;
mod run;
mod serve;
mod train;
mod wgpu;
