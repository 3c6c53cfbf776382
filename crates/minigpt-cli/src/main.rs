//! The `minigpt` binary: parse the command line, dispatch, and turn errors into one line and
//! exit code 2.

mod cli;
mod commands;
mod load;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Generate(args) => commands::generate::run(args),
        cli::Command::Score(args) => commands::score::run(args),
        cli::Command::Bench(args) => commands::bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of causes joined, newlines flattened.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}
