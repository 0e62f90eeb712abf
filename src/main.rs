use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = farmkey::cli::Cli::from_env();
    farmkey::cli::run(cli)
}
