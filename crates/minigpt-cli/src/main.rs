//! The `minigpt` binary: parse the command line, dispatch, and turn errors into one line and
//! exit code 2.

mod chain;
mod cli;
mod commands;
mod interrupt;
mod load;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `minigpt` alone: the help is the useful answer.
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{}", one_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    load::set_require_gpu(cli.require_gpu);
    let result = match cli.command {
        cli::Command::Generate(args) => commands::generate::run(args),
        cli::Command::Score(args) => commands::score::run(args),
        cli::Command::Strategies(args) => commands::strategies::run(args),
        cli::Command::Train(args) => commands::train::run(args),
        cli::Command::Run(args) => commands::run::run(args),
        cli::Command::Merge(args) => commands::merge::run(args),
        cli::Command::Report(args) => commands::report::run(args),
        cli::Command::Serve(args) => commands::serve::run(args),
        cli::Command::Eval(args) => commands::eval::run(args),
        cli::Command::Bench(args) => commands::bench::run(args),
        cli::Command::Download(args) => commands::download::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<interrupt::Interrupted>().is_some() => {
            // Stopped by Ctrl-C after saving its work: the command's note, then 130.
            let note = e.to_string();
            if !note.is_empty() {
                eprintln!("{note}");
            }
            ExitCode::from(interrupt::EXIT_INTERRUPTED)
        }
        Err(e) => {
            // One line: the chain of causes joined, newlines flattened.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

/// A clap error on one line: the message and its hints, without the usage block.
fn one_line(rendered: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let mut in_usage = false;
    for line in rendered.lines().map(str::trim) {
        if line.starts_with("Usage:") {
            in_usage = true;
            continue;
        }
        if line.is_empty() {
            in_usage = false;
            continue;
        }
        if !in_usage && !line.starts_with("For more information") {
            parts.push(line);
        }
    }
    format!("{} (see --help)", parts.join(" "))
}
