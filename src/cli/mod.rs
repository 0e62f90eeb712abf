//! The command line: argument definitions and the headless commands.

mod console;
mod disclosed;
mod keygen;
mod prompt;
mod push;
mod scan;

use crate::analysis::Selection;
use crate::farm::DEFAULT_JOBS;
use crate::inventory::Inventory;
use crate::keys::{DecryptionAlg, ValidationAlg};
use crate::transport::ConnectOptions;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

pub use prompt::TerminalPrompter;

/// Exit codes shared by every command.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FINDINGS: u8 = 1;
    pub const USAGE: u8 = 2;
}

#[derive(Parser, Debug)]
#[command(
    name = "farmkey",
    version,
    about = "Keep ASP.NET machine keys in step across the servers of an IIS web farm",
    long_about = "Keep ASP.NET machine keys in step across the servers of an IIS web farm.\n\nWithout a subcommand, opens the console on the inventory (default ./farmkey.toml).\nStart with `farmkey demo` to see it on a built-in demo farm."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub console: ConsoleArgs,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ConsoleArgs {
    /// The inventory file
    #[arg(long, short = 'i', global = true, default_value = "farmkey.toml")]
    pub inventory: PathBuf,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Console theme: default, mono, light, high-contrast, nord, or a TOML file
    #[arg(long, global = true, value_name = "NAME|PATH")]
    pub theme: Option<String>,
    /// ASCII symbols only, for terminals without Unicode
    #[arg(long, global = true)]
    pub ascii: bool,
    /// Disable every action that would change a server
    #[arg(long, global = true)]
    pub read_only: bool,
    /// Write the session log to this file
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Let the mouse wheel scroll (off by default, so the terminal keeps text selection)
    #[arg(long, global = true)]
    pub mouse: bool,
    /// The audit log (default $XDG_STATE_HOME/farmkey/audit.jsonl)
    #[arg(long, global = true, value_name = "FILE")]
    pub audit: Option<PathBuf>,
    #[command(flatten)]
    pub disclosed: DisclosedListArg,
}

/// Lists of publicly disclosed keys checked besides the shipped one.
#[derive(Args, Debug, Clone, Default)]
pub struct DisclosedListArg {
    /// Also check keys against this list of publicly disclosed keys (SHA-256
    /// hashes in the CSV format of Microsoft's MachineKeys.csv); repeatable
    #[arg(
        id = "disclosed_list",
        long = "disclosed-list",
        global = true,
        value_name = "FILE"
    )]
    pub files: Vec<PathBuf>,
}

impl DisclosedListArg {
    /// The shipped list and the given files; a file that cannot be used is
    /// reported (file and line) and ends the command with exit code 2.
    pub fn load(&self) -> Result<crate::disclosed::DisclosedKeys, ExitCode> {
        crate::disclosed::DisclosedKeys::with_lists(&self.files)
            .map_err(|e| usage_error(format!("--disclosed-list {e}")))
    }
}

#[derive(Args, Debug, Clone, Default)]
pub struct ConnectArgs {
    /// Never prompt for passwords, passphrases or host keys; fail clearly instead
    #[arg(long, global = true)]
    pub batch: bool,
    /// Trust unknown host keys on first use and store them in known_hosts
    /// (like StrictHostKeyChecking=accept-new)
    #[arg(long, global = true)]
    pub accept_new: bool,
    /// Servers read at once
    #[arg(long, short = 'j', global = true, default_value_t = DEFAULT_JOBS, value_parser = parse_jobs)]
    pub jobs: usize,
    /// OpenSSH client configuration to honour (default ~/.ssh/config)
    #[arg(long, global = true, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
}

impl ConnectArgs {
    /// Connection options for the headless commands: questions go to the
    /// terminal, if there is one and --batch is not given.
    pub fn headless_options(&self) -> ConnectOptions {
        let prompter = (!self.batch)
            .then(TerminalPrompter::open)
            .flatten()
            .map(|p| std::sync::Arc::new(p) as std::sync::Arc<dyn crate::transport::Prompter>);
        ConnectOptions {
            batch: self.batch,
            accept_new: self.accept_new,
            prompter,
            ssh_config: self.ssh_config.clone(),
            secrets: Default::default(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the console on a built-in demo farm (three servers, realistic drift)
    Demo,
    /// Read every server and report machine-key drift (exit 0: in step, 1: findings, 2: bad usage)
    Scan(ScanArgs),
    /// Print a fresh <machineKey> from the operating system's random generator
    Keygen(KeygenArgs),
    /// Print an inventory for the Host entries of ~/.ssh/config
    ImportSshConfig(ImportArgs),
    /// Bring one site into step: plan, confirm, then write server by server with backup, verification and rollback
    Push(PushArgs),
    /// List past pushes from the audit log
    History(HistoryArgs),
    /// Restore the backups of a push, if the files still hold what it wrote
    Rollback(RollbackArgs),
    /// Show the lists of publicly disclosed keys that scan, push and the console check (and validate --disclosed-list files)
    Disclosed,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("key_source").args(["generate", "adopt", "keys", "handler_only"]).required(true)))]
pub struct PushArgs {
    /// The site (`Site` or `Site/app`)
    #[arg(long)]
    pub site: String,
    /// Generate a fresh key set
    #[arg(long)]
    pub generate: bool,
    /// Validation algorithm for --generate (SHA1 is the vendor's; the DISA STIG asks for HMACSHA256+)
    #[arg(long, value_enum, default_value = "SHA1", requires = "generate")]
    pub validation: ValidationAlg,
    /// Decryption algorithm for --generate
    #[arg(long, value_enum, default_value = "AES", requires = "generate")]
    pub decryption: DecryptionAlg,
    /// Adopt the key set of SERVER (default: the set most servers share)
    #[arg(long, value_name = "SERVER", num_args = 0..=1, default_missing_value = "")]
    pub adopt: Option<String>,
    /// Import the <machineKey> element of FILE
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
    /// Only these servers (comma-separated)
    #[arg(long, value_delimiter = ',')]
    pub servers: Option<Vec<String>>,
    /// Only the session-token handler swap
    #[arg(long)]
    pub handler_only: bool,
    /// Print the plan and the diff of each file (keys masked); write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Apply without asking
    #[arg(long)]
    pub yes: bool,
    /// Keep servers already changed when a later one fails (default: roll them back)
    #[arg(long)]
    pub keep_partial: bool,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Only pushes of this site
    #[arg(long)]
    pub site: Option<String>,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// The site whose push to undo
    #[arg(long)]
    pub site: String,
    /// The push (default: the site's latest push that changed something)
    #[arg(long, value_name = "ID")]
    pub push: Option<String>,
    /// Restore without asking
    #[arg(long)]
    pub yes: bool,
}

#[derive(Args, Debug)]
pub struct SiteArgs {
    /// Show only this site (`Site` or `Site/app`); repeatable
    #[arg(long = "site", value_name = "NAME")]
    pub sites: Vec<String>,
    /// Show every IIS application, not only the Cora components
    #[arg(long)]
    pub all_sites: bool,
}

impl SiteArgs {
    pub fn selection(&self) -> Selection {
        Selection {
            all_sites: self.all_sites,
            sites: self.sites.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: ScanFormat,
    #[command(flatten)]
    pub sites: SiteArgs,
    /// Scan the embedded demo farm instead of an inventory
    #[arg(long)]
    pub demo: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyFormat {
    Xml,
    Json,
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    #[arg(long, value_enum, default_value = "SHA1")]
    pub validation: ValidationAlg,
    #[arg(long, value_enum, default_value = "AES")]
    pub decryption: DecryptionAlg,
    #[arg(long, value_enum, default_value = "xml")]
    pub format: KeyFormat,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Only Host entries whose name matches this pattern (`*` and `?`)
    #[arg(long = "match", value_name = "PATTERN")]
    pub pattern: Option<String>,
}

fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Ok(n),
        _ => Err("expected a number of servers from 1 to 256".into()),
    }
}

/// Prints an error for the operator and returns the usage exit code.
pub fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("farmkey: {message}");
    ExitCode::from(exit::USAGE)
}

pub fn load_inventory(path: &std::path::Path) -> Result<Inventory, ExitCode> {
    Inventory::load(path).map_err(|e| {
        let hint = if e.line.is_none() && !path.exists() {
            " (give one with --inventory FILE, write one with `farmkey import-ssh-config`, or try `farmkey demo`)"
        } else {
            ""
        };
        usage_error(format!("{e}{hint}"))
    })
}

/// Runs a headless command.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Some(Command::Scan(args)) => scan::run(&cli.console, &args),
        Some(Command::Keygen(args)) => keygen::run(&args),
        Some(Command::ImportSshConfig(args)) => {
            let path = cli
                .console
                .connect
                .ssh_config
                .clone()
                .unwrap_or_else(crate::transport::ssh::config::default_ssh_config);
            match crate::transport::ssh::config::import(&path, args.pattern.as_deref()) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::from(exit::OK)
                }
                Err(e) => usage_error(e),
            }
        }
        Some(Command::Demo) => console::run_demo(&cli.console),
        Some(Command::Push(args)) => push::run_push(&cli.console, &args),
        Some(Command::History(args)) => push::run_history(&cli.console, &args),
        Some(Command::Rollback(args)) => push::run_rollback(&cli.console, &args),
        Some(Command::Disclosed) => disclosed::run(&cli.console.disclosed),
        None => console::run_inventory(&cli.console),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
