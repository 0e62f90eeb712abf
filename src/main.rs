use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = farmkey::cli::Cli::parse();
    farmkey::cli::run(cli)
}
