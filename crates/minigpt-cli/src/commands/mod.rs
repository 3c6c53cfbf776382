//! One module per subcommand.

pub mod bench;
pub mod generate;
pub mod run;
pub mod score;
pub mod strategies;
pub mod train;
