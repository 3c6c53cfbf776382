//! One module per subcommand.

pub mod bench;
pub mod download;
pub mod eval;
pub mod generate;
pub mod merge;
pub mod report;
pub mod run;
pub mod run_info;
pub mod score;
pub mod serve;
pub mod strategies;
pub mod train;
