//! The command line: argument definitions and the headless commands.

mod backups;
mod console;
mod disclosed;
mod keygen;
mod prompt;
mod push;
mod scan;
mod wording;

use crate::analysis::Selection;
use crate::config::apphost::Components;
use crate::farm::DEFAULT_JOBS;
use crate::inventory::Inventory;
use crate::keys::{Decryption, Validation};
use crate::transport::ConnectOptions;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub use prompt::TerminalPrompter;

/// Exit codes shared by every command.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FINDINGS: u8 = 1;
    pub const USAGE: u8 = 2;
    /// A push left the site out of step (or cannot tell): see its last line.
    pub const OUT_OF_STEP: u8 = 3;

    /// Each code with what it means for each command, for the man page.
    pub const MEANINGS: &[(u8, &str)] = &[
        (
            OK,
            "Done. scan: every site was read on every server and is in step. push: the site is in step (or already was: nothing to write; or a dry run that nothing blocks; with --save-plan: the plan was saved). apply: the saved plan was applied and the site is in step. rollback: every file the push changed holds its original bytes again. backups: every server read. prune: every backup planned removed and its folder read again (or nothing to remove). The console and demo: closed with q. keygen, history, import-ssh-config, completions, man, disclosed: printed.",
        ),
        (
            FINDINGS,
            "scan: a finding, or a server not read. push: nothing changed (blocked, cancelled, or rolled back to where it was). apply: nothing changed: a server or file is not as planned (each is named), or as push. rollback: cancelled, or a file refused (not fully rolled back). backups: a server not read. prune: cancelled, or partial (a backup not removed, a site locked, a server not read). keygen: the random generator failed. The console and demo: closed by a signal while no push ran.",
        ),
        (
            USAGE,
            "Bad usage, or what the command needs (inventory, audit log, key file, disclosed list, saved plan) is missing or unreadable; the message names it. apply: the plan file was altered (its tag does not match), or the keys given are not the plan's.",
        ),
        (
            OUT_OF_STEP,
            "push and apply (and the console or demo, closed during a push): the site is left out of step, or whether it is cannot be told; its last line says which servers.",
        ),
    ];
}

#[derive(Parser, Debug)]
#[command(
    name = "farmkey",
    version,
    about = "Keep ASP.NET machine keys in step across the servers of an IIS web farm",
    long_about = "Keep ASP.NET machine keys in step across the servers of an IIS web farm.\n\nWithout a subcommand, opens the console on the inventory. Start with `farmkey demo` to see it on a built-in demo farm.",
    after_help = inventory_help(),
    // Options given before a subcommand are read after it (Cli::from_env),
    // never taken by the console and ignored.
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub console: ConsoleArgs,
}

/// Where the inventory is found, and its settings.
fn inventory_help() -> String {
    format!("{INVENTORY_HELP}\n\n{}", crate::inventory::settings_help())
}

const INVENTORY_HELP: &str = "The inventory is --inventory FILE, else the first of ./farmkey.toml, $FARMKEY_INVENTORY and $XDG_CONFIG_HOME/farmkey/farmkey.toml (~/.config/farmkey/farmkey.toml) that exists; a $FARMKEY_INVENTORY naming no file is an error. `farmkey import-ssh-config` writes one from ~/.ssh/config.";

/// The console: the farm, how to reach it, and how to show it.
#[derive(Args, Debug, Clone, Default)]
pub struct ConsoleArgs {
    #[command(flatten)]
    pub farm: FarmArgs,
    #[command(flatten)]
    pub jobs: JobsArg,
    #[command(flatten)]
    pub audit: AuditArg,
    #[command(flatten)]
    pub disclosed: DisclosedListArg,
    #[command(flatten)]
    pub display: DisplayArgs,
}

/// Options of the console alone.
#[derive(Args, Debug, Clone, Default)]
pub struct DisplayArgs {
    /// Console theme: default, mono, light, high-contrast, nord, or a TOML file
    #[arg(long, value_name = "NAME|PATH")]
    pub theme: Option<String>,
    /// ASCII symbols only, for terminals without Unicode
    #[arg(long)]
    pub ascii: bool,
    /// Disable every action that would change a server
    #[arg(long)]
    pub read_only: bool,
    /// Write the session log to this file
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Let the mouse wheel scroll and a click select a tab or a row (off by default, so the terminal keeps text selection)
    #[arg(long)]
    pub mouse: bool,
}

/// Where the farm is and how to reach its servers.
#[derive(Args, Debug, Clone, Default)]
pub struct FarmArgs {
    /// The inventory file [default: ./farmkey.toml, $FARMKEY_INVENTORY, $XDG_CONFIG_HOME/farmkey/farmkey.toml]
    #[arg(long, short = 'i', value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Args, Debug, Clone)]
pub struct JobsArg {
    /// Servers read at once (each waits on the network, not on this machine)
    #[arg(long, short = 'j', default_value_t = DEFAULT_JOBS, value_parser = parse_jobs)]
    pub jobs: usize,
}

impl Default for JobsArg {
    fn default() -> Self {
        JobsArg { jobs: DEFAULT_JOBS }
    }
}

#[derive(Args, Debug, Clone, Default)]
pub struct AuditArg {
    /// The audit log [default: $XDG_STATE_HOME/farmkey/audit.jsonl]
    #[arg(id = "audit", long = "audit", value_name = "FILE")]
    pub path: Option<PathBuf>,
}

impl AuditArg {
    pub fn path(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(crate::push::audit::default_path)
    }
}

/// Lists of publicly disclosed keys checked besides the shipped one.
#[derive(Args, Debug, Clone, Default)]
pub struct DisclosedListArg {
    /// Also check keys against this list of publicly disclosed keys (SHA-256
    /// hashes in the CSV format of Microsoft's MachineKeys.csv); repeatable
    #[arg(id = "disclosed_list", long = "disclosed-list", value_name = "FILE")]
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
    #[arg(long)]
    pub batch: bool,
    /// Trust unknown host keys on first use and store them in known_hosts
    /// (like StrictHostKeyChecking=accept-new)
    #[arg(long)]
    pub accept_new: bool,
    #[command(flatten)]
    pub ssh_config: SshConfigArg,
}

#[derive(Args, Debug, Clone, Default)]
pub struct SshConfigArg {
    /// OpenSSH client configuration to honour [default: ~/.ssh/config]
    #[arg(id = "ssh_config", long = "ssh-config", value_name = "FILE")]
    pub path: Option<PathBuf>,
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
            ssh_config: self.ssh_config.path.clone(),
            secrets: Default::default(),
            jumps: Default::default(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open the console on a built-in demo farm (three servers, realistic drift)
    Demo(DemoArgs),
    /// Read every server and report machine-key drift (exit 0: every site read and in step, 1: findings or a server not read, 2: bad usage)
    Scan(ScanArgs),
    /// Print a fresh <machineKey> from the operating system's random generator
    Keygen(KeygenArgs),
    /// Print an inventory for the Host entries of ~/.ssh/config
    ImportSshConfig(ImportArgs),
    /// Bring one site into step: plan, confirm, then write server by server with backup, verification and rollback
    Push(PushArgs),
    /// Run a plan saved by `push --save-plan`, only if every file still reads as planned
    Apply(ApplyArgs),
    /// List past pushes from the audit log
    History(HistoryArgs),
    /// Restore the backups of a push, if the files still hold what it wrote
    Rollback(RollbackArgs),
    /// Print a shell completion script (bash: `farmkey completions bash > /etc/bash_completion.d/farmkey`)
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into a folder
    Man(ManArgs),
    /// List the backups farmkey's pushes left beside each site's configuration files (they hold the OLD keys)
    Backups(BackupsArgs),
    /// Remove old backups: plan, confirm, remove under the site's lock, verify, record in the audit log
    Prune(PruneArgs),
    /// Show the lists of publicly disclosed keys that scan, push and the console check (and validate --disclosed-list files)
    Disclosed(DisclosedArgs),
}

#[derive(Args, Debug)]
pub struct DisclosedArgs {
    #[command(flatten)]
    pub disclosed: DisclosedListArg,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write farmkey.1 and a page per command (farmkey-scan.1, ...) into DIR
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The audit log [default: one of the demo's own, gone with it]
    #[arg(long = "audit", value_name = "FILE")]
    pub audit: Option<PathBuf>,
    #[command(flatten)]
    pub disclosed: DisclosedListArg,
    #[command(flatten)]
    pub display: DisplayArgs,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("key_source").args(["generate", "adopt", "keys", "handler_only"]).required(true)))]
pub struct PushArgs {
    #[command(flatten)]
    pub farm: FarmArgs,
    #[command(flatten)]
    pub jobs: JobsArg,
    #[command(flatten)]
    pub audit: AuditArg,
    #[command(flatten)]
    pub disclosed: DisclosedListArg,
    /// The site (`Site` or `Site/app`)
    #[arg(long)]
    pub site: String,
    /// Generate a fresh key set
    #[arg(long)]
    pub generate: bool,
    /// Validation algorithm for --generate (SHA1 is the vendor's; the DISA STIG asks for HMACSHA256+)
    #[arg(long, value_enum, default_value = "SHA1", requires = "generate")]
    pub validation: Validation,
    /// Decryption algorithm for --generate
    #[arg(long, value_enum, default_value = "AES", requires = "generate")]
    pub decryption: Decryption,
    /// Adopt the key set of SERVER (default: the set most servers share)
    #[arg(long, value_name = "SERVER", num_args = 0..=1, default_missing_value = "")]
    pub adopt: Option<String>,
    /// Import the <machineKey> element of FILE
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
    /// Only these servers (comma-separated); the others are left out
    #[arg(long, value_delimiter = ',')]
    pub servers: Option<Vec<String>>,
    /// Leave SERVER out of the push (repeatable, or comma-separated): it
    /// keeps its old keys, so users moved to it are signed out
    #[arg(long, value_name = "SERVER", value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Break the lock another push left on the site (shown with its owner
    /// and age), when that push no longer runs
    #[arg(long)]
    pub break_lock: bool,
    /// Only the session-token handler swap
    #[arg(long)]
    pub handler_only: bool,
    /// Print the plan and the diff of each file (keys masked); write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Apply without asking
    #[arg(long)]
    pub yes: bool,
    /// Keep servers already fully pushed when a later one fails (default: roll them back); a server half pushed is always rolled back
    #[arg(long)]
    pub keep_partial: bool,
    /// Write the plan to FILE for review and `farmkey apply`, instead of
    /// pushing (needs --keys, --adopt or --handler-only; no key text in it)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dry_run", "yes", "break_lock"])]
    pub save_plan: Option<PathBuf>,
    /// With --save-plan: replace FILE if it exists
    #[arg(long, requires = "save_plan")]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub farm: FarmArgs,
    #[command(flatten)]
    pub jobs: JobsArg,
    #[command(flatten)]
    pub audit: AuditArg,
    #[command(flatten)]
    pub disclosed: DisclosedListArg,
    /// The plan saved by `farmkey push --save-plan`
    #[arg(value_name = "FILE")]
    pub plan: PathBuf,
    /// The <machineKey> of FILE: the keys the plan was saved with
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
    /// Adopt the keys of SERVER again, as planned (default: the set most servers share)
    #[arg(long, value_name = "SERVER", num_args = 0..=1, default_missing_value = "", conflicts_with = "keys")]
    pub adopt: Option<String>,
    /// A plan older than DAYS asks before it is applied (--batch: refused without --yes)
    #[arg(long = "max-age", value_name = "DAYS", default_value_t = crate::push::saved::DEFAULT_MAX_AGE_DAYS)]
    pub max_age_days: u64,
    /// Apply without asking (an old plan too)
    #[arg(long)]
    pub yes: bool,
    /// Break the lock another push left on the site, when that push no longer runs
    #[arg(long)]
    pub break_lock: bool,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub audit: AuditArg,
    /// Only pushes of this site
    #[arg(long)]
    pub site: Option<String>,
    /// List the oldest push first (default: the newest, as the console's History)
    #[arg(long)]
    pub oldest_first: bool,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub farm: FarmArgs,
    #[command(flatten)]
    pub audit: AuditArg,
    /// The site whose push to undo
    #[arg(long)]
    pub site: String,
    /// The push (default: the site's latest push that changed something)
    #[arg(long, value_name = "ID")]
    pub push: Option<String>,
    /// Restore without asking
    #[arg(long)]
    pub yes: bool,
    /// Break a lock a push that no longer runs left on the site
    #[arg(long)]
    pub break_lock: bool,
}

/// Which backups `backups` and `prune` look at, and where.
#[derive(Args, Debug)]
pub struct BackupsScope {
    #[command(flatten)]
    pub farm: FarmArgs,
    #[command(flatten)]
    pub jobs: JobsArg,
    #[command(flatten)]
    pub audit: AuditArg,
    /// Only the backups of this site (`Site` or `Site/app`)
    #[arg(long)]
    pub site: Option<String>,
}

#[derive(Args, Debug)]
pub struct BackupsArgs {
    #[command(flatten)]
    pub scope: BackupsScope,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("rule").args(["keep", "older_than"]).required(true)))]
pub struct PruneArgs {
    #[command(flatten)]
    pub scope: BackupsScope,
    /// Keep the N newest backups of each file on each server
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// Remove the backups older than DAYS days (0: all)
    #[arg(long, value_name = "DAYS")]
    pub older_than: Option<u64>,
    /// Remove this backup too (file name or path, as `farmkey backups` lists it), even one the rollback of the latest push needs; repeatable
    #[arg(long, value_name = "FILE")]
    pub also: Vec<String>,
    /// Remove without asking
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
    /// The sites asked for, components recognised as `components` says.
    pub fn selection(&self, components: &Components) -> Selection {
        Selection {
            all_sites: self.all_sites,
            sites: self.sites.clone(),
            components: components.clone(),
        }
    }
}

/// How `backups` prints its list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    Table,
    Json,
    /// The Prometheus text format (OpenMetrics too), for the node exporter's textfile collector
    #[value(name = "openmetrics")]
    OpenMetrics,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    #[command(flatten)]
    pub farm: FarmArgs,
    #[command(flatten)]
    pub jobs: JobsArg,
    #[command(flatten)]
    pub disclosed: DisclosedListArg,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: ScanFormat,
    #[command(flatten)]
    pub sites: SiteArgs,
    /// Scan the embedded demo farm instead of an inventory
    #[arg(long)]
    pub demo: bool,
    /// The audit log whose last pushes --format openmetrics reports [default: $XDG_STATE_HOME/farmkey/audit.jsonl; none with --demo]
    #[arg(id = "audit", long = "audit", value_name = "FILE")]
    pub audit: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyFormat {
    Xml,
    Json,
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    #[arg(long, value_enum, default_value = "SHA1")]
    pub validation: Validation,
    #[arg(long, value_enum, default_value = "AES")]
    pub decryption: Decryption,
    #[arg(long, value_enum, default_value = "xml")]
    pub format: KeyFormat,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub ssh_config: SshConfigArg,
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

/// Prints an error for the operator and returns the usage exit code. The
/// message may quote what a server or a file said: it is made safe for a
/// terminal.
pub fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    let message = message.to_string();
    // Never panics, also with standard error closed.
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr(),
        format_args!("farmkey: {}\n", crate::safe_text::escape(&message)),
    );
    ExitCode::from(exit::USAGE)
}

/// Finds and loads the inventory: `--inventory` if given, else the first
/// of `./farmkey.toml`, `$FARMKEY_INVENTORY` and
/// `$XDG_CONFIG_HOME/farmkey/farmkey.toml` that exists. Errors are printed;
/// the exit code is returned.
pub fn load_inventory(given: Option<&Path>) -> Result<Inventory, ExitCode> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => {
            // Set but empty is a mistake (a script's unset variable), not
            // "look elsewhere".
            if std::env::var_os("FARMKEY_INVENTORY").is_some_and(|v| v.is_empty()) {
                return Err(usage_error(
                    "$FARMKEY_INVENTORY is set but empty: name the inventory file, or unset it",
                ));
            }
            let places = inventory_places();
            // A place named by the operator ($FARMKEY_INVENTORY) that holds
            // nothing is an error, wherever it comes in the order: quietly
            // reading another inventory could scan or push the wrong farm.
            let named = places
                .iter()
                .find_map(|(what, p)| p.as_ref().filter(|p| !what.is_empty() && !p.is_file()));
            if let Some(p) = named {
                return Err(usage_error(format!(
                    "$FARMKEY_INVENTORY names {}, which is not a file",
                    p.display()
                )));
            }
            match places
                .iter()
                .find_map(|(_, p)| p.as_ref().filter(|p| p.is_file()))
            {
                Some(p) => p.clone(),
                None => {
                    let looked: Vec<String> = places
                        .iter()
                        .map(|(what, p)| match p {
                            Some(p) => p.display().to_string(),
                            None => format!("{what} (not set)"),
                        })
                        .collect();
                    return Err(usage_error(format!(
                        "no inventory: looked for {}. Write one with `farmkey import-ssh-config > farmkey.toml` (from ~/.ssh/config), give one with --inventory FILE, or try `farmkey demo`",
                        looked.join(", ")
                    )));
                }
            }
        }
    };
    Inventory::load(&path).map_err(|e| {
        let hint = if e.line.is_none() && !path.exists() {
            " (write one with `farmkey import-ssh-config`, or try `farmkey demo`)"
        } else {
            ""
        };
        usage_error(format!("{e}{hint}"))
    })
}

/// Where an inventory is looked for when none is given, in order: how the
/// place is named (empty when the path says it) and the path, if any.
fn inventory_places() -> Vec<(&'static str, Option<PathBuf>)> {
    let env = std::env::var_os("FARMKEY_INVENTORY").map(PathBuf::from);
    let config = crate::inventory::xdg_dir("XDG_CONFIG_HOME", "~/.config")
        .join("farmkey")
        .join("farmkey.toml");
    vec![
        ("", Some(PathBuf::from("./farmkey.toml"))),
        ("$FARMKEY_INVENTORY", env),
        ("", Some(config)),
    ]
}

/// `farmkey completions SHELL` and `farmkey man`: generated from the
/// command definitions, so they cannot drift from them.
fn print_completions(shell: clap_complete::Shell) -> ExitCode {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "farmkey", &mut script);
    print_bytes(&script)
}

/// Writes to standard output without ever panicking: a closed pipe
/// (`| head`) is not an error of the command; another failure is one.
pub(super) fn write_stdout(bytes: &[u8]) -> Result<(), ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(usage_error(format!("cannot write to standard output: {e}")))
        }
        _ => Ok(()),
    }
}

/// Prints generated text; exit 0 unless standard output failed.
fn print_bytes(bytes: &[u8]) -> ExitCode {
    match write_stdout(bytes) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(code) => code,
    }
}

/// The sections of farmkey.1 clap does not make: the console's keys (from
/// the one key table) and every command's exit codes.
pub fn man_extra() -> String {
    let mut out = crate::console::keys::roff();
    out.push_str(".SH \"EXIT STATUS\"\n");
    for (code, means) in exit::MEANINGS {
        out.push_str(&format!(
            ".TP\n\\fB{code}\\fR\n{}\n",
            means.replace('-', "\\-")
        ));
    }
    out
}

/// farmkey.1: clap's page, then [`man_extra`].
fn man_page() -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    page.extend_from_slice(man_extra().as_bytes());
    Ok(page)
}

fn print_man(args: &ManArgs) -> ExitCode {
    let mut page = Vec::new();
    let done = match &args.dir {
        Some(dir) => clap_mangen::generate_to(Cli::command(), dir)
            .and_then(|()| man_page())
            .and_then(|page| std::fs::write(dir.join("farmkey.1"), page))
            .map_err(|e| format!("cannot write the manual pages into {}: {e}", dir.display())),
        None => man_page()
            .map(|p| page = p)
            .map_err(|e| format!("cannot render the manual page: {e}")),
    };
    match done {
        Ok(()) if args.dir.is_none() => print_bytes(&page),
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => usage_error(e),
    }
}

impl Cli {
    /// The command line of this process. Options written before the
    /// subcommand (`farmkey -i farm.toml scan`) are read as if written after
    /// it (`farmkey scan -i farm.toml`); one the subcommand does not take is
    /// refused as it would be there, naming it.
    pub fn from_env() -> Cli {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        match Cli::try_parse_from(&args) {
            Ok(cli) => cli,
            Err(e) => match options_after_subcommand(&args) {
                Some(moved) if e.kind() == clap::error::ErrorKind::ArgumentConflict => {
                    Cli::try_parse_from(moved).unwrap_or_else(|e| e.exit())
                }
                _ => e.exit(),
            },
        }
    }
}

/// `farmkey OPTIONS SUBCOMMAND REST` as `farmkey SUBCOMMAND OPTIONS REST`,
/// when a subcommand follows options.
fn options_after_subcommand(args: &[std::ffi::OsString]) -> Option<Vec<std::ffi::OsString>> {
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .flat_map(|c| {
            std::iter::once(c.get_name().to_string()).chain(c.get_all_aliases().map(String::from))
        })
        .collect();
    let at = args
        .iter()
        .skip(1)
        .position(|a| a.to_str().is_some_and(|a| names.iter().any(|n| n == a)))?
        + 1;
    if at == 1 {
        return None;
    }
    let mut moved = vec![args[0].clone(), args[at].clone()];
    moved.extend_from_slice(&args[1..at]);
    moved.extend_from_slice(&args[at + 1..]);
    Some(moved)
}

/// Runs a headless command.
pub fn run(cli: Cli) -> ExitCode {
    crate::transport::raise_open_files_limit();
    match cli.command {
        Some(Command::Scan(args)) => scan::run(&args),
        Some(Command::Keygen(args)) => keygen::run(&args),
        Some(Command::ImportSshConfig(args)) => {
            let path = args
                .ssh_config
                .path
                .clone()
                .unwrap_or_else(crate::transport::ssh::config::default_ssh_config);
            match crate::transport::ssh::config::import(&path, args.pattern.as_deref()) {
                Ok(text) => print_bytes(text.as_bytes()),
                Err(e) => usage_error(e),
            }
        }
        Some(Command::Demo(args)) => console::run_demo(&args),
        Some(Command::Push(args)) => push::run_push(&args),
        Some(Command::Apply(args)) => push::run_apply(&args),
        Some(Command::History(args)) => push::run_history(&args),
        Some(Command::Rollback(args)) => push::run_rollback(&args),
        Some(Command::Backups(args)) => backups::run_backups(&args),
        Some(Command::Prune(args)) => backups::run_prune(&args),
        Some(Command::Completions(args)) => print_completions(args.shell),
        Some(Command::Man(args)) => print_man(&args),
        Some(Command::Disclosed(args)) => disclosed::run(&args.disclosed),
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

    #[test]
    fn the_man_page_lists_the_console_keys_and_every_exit_code() {
        let page = String::from_utf8(super::man_page().unwrap()).unwrap();
        for doc in crate::console::keys::KEYS {
            let keys = doc
                .keys_text(&crate::console::symbols::ASCII)
                .replace('-', "\\-");
            assert!(
                page.contains(&format!("\\fB{keys}\\fR")),
                "{keys} not in the man page"
            );
        }
        for code in [
            super::exit::OK,
            super::exit::FINDINGS,
            super::exit::USAGE,
            super::exit::OUT_OF_STEP,
        ] {
            assert!(
                super::exit::MEANINGS.iter().any(|(c, _)| *c == code),
                "exit code {code} has no meaning in the man page"
            );
            assert!(page.contains(&format!(".TP\n\\fB{code}\\fR\n")), "{code}");
        }
        assert!(page.contains(".SH \"CONSOLE KEYS\"") && page.contains(".SH \"EXIT STATUS\""));
    }

    #[test]
    fn help_lists_every_inventory_setting() {
        use clap::CommandFactory;
        let help = super::Cli::command().render_long_help().to_string();
        for s in &crate::inventory::SETTINGS {
            let line = format!("  {:20}  {}", s.key, s.means);
            assert!(help.contains(&line), "{line:?} not in:\n{help}");
        }
    }
}
