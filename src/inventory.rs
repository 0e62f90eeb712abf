//! The inventory: a TOML file that lists the servers of a farm.

use crate::config::apphost::{Component, Components, normalise_id};
use crate::paths::expand_tilde;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for InventoryError {}

/// Connection settings that `[defaults]` and each server may set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshSettings {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub connect_timeout: Option<Duration>,
    /// `jump`: the jump hosts to go through; wins over `ProxyJump` of
    /// `~/.ssh/config`.
    pub jump: Option<Jump>,
    /// `jump_sessions`: sessions at most to each jump host of the chain.
    pub jump_sessions: Option<usize>,
}

/// One hop of a jump chain: `[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JumpHop {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// Why a `jump` setting or `ProxyJump` value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JumpError {
    #[error("empty: give [user@]host[:port], a comma-separated chain, or \"none\"")]
    Empty,
    /// One hop of the chain, as written, is at fault.
    #[error("{item:?}: {fault}")]
    Hop { item: String, fault: HopFault },
}

/// What is wrong with one `[user@]host[:port]` hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HopFault {
    #[error("empty user name before @")]
    EmptyUser,
    #[error("expected :port after ]")]
    NoPortAfterBracket,
    #[error("missing ]")]
    UnclosedBracket,
    #[error("no host name")]
    NoHost,
    #[error("not a host name")]
    NotAHost,
    #[error("the port must be a number from 1 to 65535")]
    BadPort,
}

/// A `jump` setting or a `ProxyJump` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jump {
    /// `none`: connect directly, whatever else says otherwise.
    Direct,
    /// Through these hosts, the first one first.
    Via(Vec<JumpHop>),
}

impl Jump {
    /// Parses OpenSSH's `ProxyJump` syntax: `none`, or a comma-separated
    /// list of `[user@]host[:port]` or `ssh://[user@]host[:port]`, with
    /// `[...]` around an IPv6 address that has a port.
    pub fn parse(text: &str) -> Result<Jump, JumpError> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("none") {
            return Ok(Jump::Direct);
        }
        if text.is_empty() {
            return Err(JumpError::Empty);
        }
        text.split(',')
            .map(JumpHop::parse)
            .collect::<Result<_, _>>()
            .map(Jump::Via)
    }
}

impl JumpHop {
    fn parse(text: &str) -> Result<JumpHop, JumpError> {
        let item = text.trim();
        let bad = |fault| {
            Err(JumpError::Hop {
                item: item.to_string(),
                fault,
            })
        };
        let rest = item
            .strip_prefix("ssh://")
            .map_or(item, |r| r.trim_end_matches('/'));
        let (user, hostport) = match rest.rsplit_once('@') {
            Some(("", _)) => return bad(HopFault::EmptyUser),
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, rest),
        };
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            match bracketed.split_once(']') {
                Some((h, "")) => (h, None),
                Some((h, p)) => match p.strip_prefix(':') {
                    Some(p) => (h, Some(p)),
                    None => return bad(HopFault::NoPortAfterBracket),
                },
                None => return bad(HopFault::UnclosedBracket),
            }
        } else if hostport.matches(':').count() == 1 {
            let (h, p) = hostport.split_once(':').expect("one colon");
            (h, Some(p))
        } else {
            // No port, or a bare IPv6 address.
            (hostport, None)
        };
        if host.is_empty() {
            return bad(HopFault::NoHost);
        }
        if host
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '@')
        {
            return bad(HopFault::NotAHost);
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return bad(HopFault::BadPort),
            },
        };
        Ok(JumpHop {
            user,
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for JumpHop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        match self.port {
            Some(p) if self.host.contains(':') => write!(f, "[{}]:{p}", self.host),
            Some(p) => write!(f, "{}:{p}", self.host),
            None => write!(f, "{}", self.host),
        }
    }
}

impl std::fmt::Display for Jump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Jump::Direct => write!(f, "none"),
            Jump::Via(hops) => {
                let list: Vec<String> = hops.iter().map(ToString::to_string).collect();
                write!(f, "{}", list.join(","))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Reached over SSH; settings not given fall back to `~/.ssh/config`.
    Ssh { host: String, settings: SshSettings },
    /// A folder holding a copy of the server's drives.
    Local { root: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub name: String,
    pub target: Target,
    /// Configuration files larger than this are reported unreadable, with
    /// their size, and never read (`max_config_bytes`).
    pub max_config_bytes: u64,
    /// `backup_keep`: after a push of a site is applied and recorded, the
    /// newest this many backups of each file it wrote are kept on the
    /// server and the older ones removed (never the ones the push's own
    /// rollback needs). `None`: backups are kept until pruned.
    pub backup_keep: Option<usize>,
}

impl Server {
    /// `10.0.0.11` or `./lab`, for screens.
    pub fn address(&self) -> String {
        match &self.target {
            Target::Ssh { host, settings } => match settings.port {
                Some(p) if p != 22 => format!("{host}:{p}"),
                _ => host.clone(),
            },
            Target::Local { root } => root.display().to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub path: PathBuf,
    pub servers: Vec<Server>,
    /// `[components]`: the sites and applications of the components it
    /// names; the others are recognised by evidence.
    pub components: Components,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    connect_timeout_secs: Option<Spanned<u64>>,
    jump: Option<Spanned<String>>,
    max_config_bytes: Option<Spanned<u64>>,
    backup_keep: Option<Spanned<u64>>,
    jump_sessions: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    name: Spanned<String>,
    host: Option<Spanned<String>>,
    local_root: Option<Spanned<PathBuf>>,
    // The settings again rather than a flattened RawSettings: serde's
    // flatten loses the spans that errors point at.
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    connect_timeout_secs: Option<Spanned<u64>>,
    jump: Option<Spanned<String>>,
    max_config_bytes: Option<Spanned<u64>>,
    backup_keep: Option<Spanned<u64>>,
    jump_sessions: Option<Spanned<u64>>,
}

impl RawServer {
    fn settings(&self) -> RawSettings {
        RawSettings {
            user: self.user.clone(),
            port: self.port,
            identity_file: self.identity_file.clone(),
            known_hosts: self.known_hosts.clone(),
            connect_timeout_secs: self.connect_timeout_secs.clone(),
            jump: self.jump.clone(),
            max_config_bytes: self.max_config_bytes.clone(),
            backup_keep: self.backup_keep.clone(),
            jump_sessions: self.jump_sessions.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    #[serde(default)]
    defaults: RawSettings,
    #[serde(default)]
    servers: Vec<Spanned<RawServer>>,
    /// Component name to its sites or applications (`Site`, `Site/app`).
    #[serde(default)]
    components: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
}

impl Inventory {
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let fail = |message: String| InventoryError {
            file: path.to_path_buf(),
            line: None,
            message,
        };
        // The type first: reading a FIFO waits for a writer forever, and a
        // device or folder is never an inventory.
        let meta =
            std::fs::metadata(path).map_err(|e| fail(format!("cannot read the inventory: {e}")))?;
        if !meta.is_file() {
            return Err(fail(format!(
                "the inventory is {}, not a regular file",
                file_kind(&meta.file_type())
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail(format!("cannot read the inventory: {e}")))?;
        Inventory::parse(path, &text)
    }

    /// Parses inventory text; `path` names the file in errors and anchors
    /// relative `local_root` folders.
    pub fn parse(path: &Path, text: &str) -> Result<Inventory, InventoryError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let err = |offset: Option<usize>, message: String| InventoryError {
            file: path.to_path_buf(),
            line: offset.map(line_of),
            message,
        };
        // serde's flatten hides unknown keys from deny_unknown_fields, so
        // check the raw tables first to name the offending key.
        let table: toml::Table = toml::from_str(text)
            .map_err(|e| err(e.span().map(|s| s.start), e.message().to_string()))?;
        check_keys(&table, text, path)?;
        let raw: RawInventory = toml::from_str(text)
            .map_err(|e| err(e.span().map(|s| s.start), e.message().to_string()))?;

        let base = path.parent().unwrap_or(Path::new("."));
        let mut servers: Vec<Server> = Vec::new();
        let mut first_seen: Vec<(String, usize)> = Vec::new();
        for spanned in raw.servers {
            let at = spanned.span().start;
            let s = spanned.into_inner();
            let name_at = s.name.span().start;
            let name = s.name.get_ref().trim().to_string();
            if name.is_empty() {
                return Err(err(
                    Some(name_at),
                    "key `name`: a server needs a non-empty name".into(),
                ));
            }
            if let Some((_, first)) = first_seen
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&name))
            {
                return Err(err(
                    Some(name_at),
                    format!(
                        "key `name`: duplicate server name {name:?} (first used at line {first})"
                    ),
                ));
            }
            first_seen.push((name.clone(), line_of(name_at)));
            let own = s.settings();
            let settings = merge(&name, &raw.defaults, &own).map_err(|(o, m)| err(Some(o), m))?;
            let max_config_bytes =
                max_config_bytes(&raw.defaults, &own).map_err(|(o, m)| err(Some(o), m))?;
            let backup_keep = backup_keep(&raw.defaults, &own).map_err(|(o, m)| err(Some(o), m))?;
            let target = match (s.host, s.local_root) {
                (Some(h), None) => {
                    let host_at = h.span().start;
                    let host = h.into_inner().trim().to_string();
                    if host.is_empty() {
                        return Err(err(
                            Some(host_at),
                            format!("key `host`: server {name:?} has an empty host"),
                        ));
                    }
                    Target::Ssh { host, settings }
                }
                (None, Some(r)) => {
                    // A folder is read directly: a jump would be ignored.
                    if let Some(j) = &own.jump {
                        return Err(err(
                            Some(j.span().start),
                            format!(
                                "key `jump`: server {name:?} has `local_root`, which is read directly, not over SSH; remove `jump`"
                            ),
                        ));
                    }
                    Target::Local {
                        root: base.join(expand_tilde(r.get_ref())),
                    }
                }
                (Some(h), Some(_)) => {
                    return Err(err(
                        Some(h.span().start),
                        format!(
                            "server {name:?} has both `host` and `local_root`; give exactly one"
                        ),
                    ));
                }
                (None, None) => {
                    return Err(err(
                        Some(at),
                        format!(
                            "server {name:?} has neither `host` nor `local_root`; give exactly one"
                        ),
                    ));
                }
            };
            servers.push(Server {
                name,
                target,
                max_config_bytes,
                backup_keep,
            });
        }
        if servers.is_empty() {
            return Err(err(
                None,
                "no servers: add at least one [[servers]] table".into(),
            ));
        }
        let components = components(&raw.components).map_err(|(o, m)| err(Some(o), m))?;
        Ok(Inventory {
            path: path.to_path_buf(),
            servers,
            components,
        })
    }
}

/// What a file that is not a regular file is, for messages.
fn file_kind(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

/// `[components]`: known component names, non-empty lists of non-empty
/// ids, none listed twice.
fn components(
    raw: &BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
) -> Result<Components, (usize, String)> {
    let names: Vec<&str> = Component::ALL.iter().map(|c| c.name()).collect();
    let mut lists: Vec<(Component, Vec<String>)> = Vec::new();
    let mut keys: Vec<(&str, Component)> = Vec::new();
    let mut seen: Vec<(String, Component)> = Vec::new();
    // In file order, so that an error names the later of two entries.
    let mut entries: Vec<_> = raw.iter().collect();
    entries.sort_by_key(|(_, ids)| ids.span().start);
    for (key, ids) in entries {
        let at = ids.span().start;
        let Some(component) = Component::named(key) else {
            return Err((
                at,
                format!(
                    "[components]: unknown component {key:?}; expected one of: {}",
                    names.join(", ")
                ),
            ));
        };
        // `Flowtime` and `flowtime` are two TOML keys but one component:
        // merging their lists silently would hide a typo.
        if let Some((first, _)) = keys.iter().find(|(_, c)| *c == component) {
            return Err((
                at,
                format!(
                    "[components]: {first:?} and {key:?} both name {}; list its sites under one key",
                    component.name()
                ),
            ));
        }
        keys.push((key.as_str(), component));
        if ids.get_ref().is_empty() {
            return Err((
                at,
                format!(
                    "[components]: {key:?} lists no site; name its sites or applications (\"Site\" or \"Site/app\"), or remove the key to recognise it by its name"
                ),
            ));
        }
        let mut list = Vec::new();
        for id in ids.get_ref() {
            let text = id.get_ref().trim();
            // Compared as they will be matched: `Portal\\flow` is `portal/flow`.
            let key_of = normalise_id(text).to_lowercase();
            if key_of.is_empty() {
                return Err((
                    id.span().start,
                    format!("[components]: {key:?} lists an empty site name"),
                ));
            }
            if let Some((_, other)) = seen.iter().find(|(k, _)| *k == key_of) {
                let message = if *other == component {
                    format!(
                        "[components]: {text:?} is listed twice for {}",
                        component.name()
                    )
                } else {
                    format!(
                        "[components]: {text:?} is listed for {} and for {}; an application is one component",
                        other.name(),
                        component.name()
                    )
                };
                return Err((id.span().start, message));
            }
            seen.push((key_of, component));
            list.push(text.to_string());
        }
        lists.push((component, list));
    }
    Ok(Components::named(lists))
}

/// A setting of `[defaults]` and of each `[[servers]]` entry (which wins).
pub struct InventorySetting {
    pub key: &'static str,
    /// What it sets, for `--help`.
    pub means: &'static str,
}

/// Every setting, once: the keys the inventory takes (checked before it is
/// parsed), `--help`'s list, and what README's example must show (tests
/// below hold `RawSettings`, `RawServer` and README to it).
pub const SETTINGS: [InventorySetting; 9] = [
    InventorySetting {
        key: "user",
        means: "SSH user (else ~/.ssh/config's User, else yours)",
    },
    InventorySetting {
        key: "port",
        means: "SSH port (else ~/.ssh/config's Port, else 22)",
    },
    InventorySetting {
        key: "identity_file",
        means: "private key tried after ssh-agent's",
    },
    InventorySetting {
        key: "known_hosts",
        means: "host keys file (else UserKnownHostsFile, else ~/.ssh/known_hosts)",
    },
    InventorySetting {
        key: "connect_timeout_secs",
        means: "bound on connecting and on every SFTP call (else 10)",
    },
    InventorySetting {
        key: "jump",
        means: "jump host: \"user@host:port\", \"a,b\" a chain, \"none\" direct",
    },
    InventorySetting {
        key: "max_config_bytes",
        means: "largest configuration file read (else 16 MiB)",
    },
    InventorySetting {
        key: "backup_keep",
        means: "after a push, keep this many backups per file, prune older (else keep all)",
    },
    InventorySetting {
        key: "jump_sessions",
        means: "sessions at most to each jump host, 1 to 32 (else 8)",
    },
];

/// The keys of a server besides the settings.
const SERVER_KEYS: [&str; 3] = ["name", "host", "local_root"];

fn setting_keys() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().map(|s| s.key)
}

/// The settings as `--help` lists them.
pub fn settings_help() -> String {
    let width = setting_keys().map(str::len).max().unwrap_or(0);
    let mut out = String::from("Inventory settings, in [defaults] or a [[servers]] entry:");
    for s in &SETTINGS {
        out.push_str(&format!("\n  {:width$}  {}", s.key, s.means));
    }
    out
}

/// What a configuration file may weigh unless the inventory says otherwise
/// (`max_config_bytes`): real ones are kilobytes; a larger one is refused
/// from its size, never read.
pub const DEFAULT_MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;
/// The largest `max_config_bytes`: farmkey keeps positions in a file as
/// 32-bit numbers.
const MAX_CONFIG_BYTES_LIMIT: u64 = 1 << 30;

fn max_config_bytes(defaults: &RawSettings, own: &RawSettings) -> Result<u64, (usize, String)> {
    match own
        .max_config_bytes
        .as_ref()
        .or(defaults.max_config_bytes.as_ref())
    {
        None => Ok(DEFAULT_MAX_CONFIG_BYTES),
        Some(n) if (1024..=MAX_CONFIG_BYTES_LIMIT).contains(n.get_ref()) => Ok(*n.get_ref()),
        Some(n) => Err((
            n.span().start,
            format!(
                "key `max_config_bytes` must be from 1024 to {MAX_CONFIG_BYTES_LIMIT} (bytes; the default is {})",
                DEFAULT_MAX_CONFIG_BYTES
            ),
        )),
    }
}

/// The largest `backup_keep`: more backups than this beside one file is
/// no retention at all.
const BACKUP_KEEP_LIMIT: u64 = 1000;

fn backup_keep(
    defaults: &RawSettings,
    own: &RawSettings,
) -> Result<Option<usize>, (usize, String)> {
    match own.backup_keep.as_ref().or(defaults.backup_keep.as_ref()) {
        None => Ok(None),
        Some(n) if *n.get_ref() <= BACKUP_KEEP_LIMIT => Ok(Some(*n.get_ref() as usize)),
        Some(n) => Err((
            n.span().start,
            format!(
                "key `backup_keep` must be from 0 to {BACKUP_KEEP_LIMIT} (backups kept per file after a push)"
            ),
        )),
    }
}

fn check_keys(table: &toml::Table, text: &str, path: &Path) -> Result<(), InventoryError> {
    let unknown = |key: &str, section: &str, allowed: &[&str]| {
        // toml::Table keeps no spans; find the key's line in the text.
        let line = text
            .lines()
            .position(|l| {
                let l = l.trim_start();
                l.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
            .map(|i| i + 1);
        InventoryError {
            file: path.to_path_buf(),
            line,
            message: format!(
                "unknown key `{key}` in {section}; expected one of: {}",
                allowed.join(", ")
            ),
        }
    };
    for key in table.keys() {
        if !["defaults", "servers", "components"].contains(&key.as_str()) {
            return Err(unknown(
                key,
                "the inventory",
                &["defaults", "servers", "components"],
            ));
        }
    }
    let settings: Vec<&str> = setting_keys().collect();
    if let Some(toml::Value::Table(d)) = table.get("defaults")
        && let Some(k) = d.keys().find(|k| !settings.contains(&k.as_str()))
    {
        return Err(unknown(k, "[defaults]", &settings));
    }
    if let Some(toml::Value::Array(servers)) = table.get("servers") {
        let mut allowed = SERVER_KEYS.to_vec();
        allowed.extend(&settings);
        for s in servers {
            if let toml::Value::Table(t) = s
                && let Some(k) = t.keys().find(|k| !allowed.contains(&k.as_str()))
            {
                return Err(unknown(k, "[[servers]]", &allowed));
            }
        }
    }
    Ok(())
}

/// Sessions to one jump host unless the inventory says otherwise
/// (`jump_sessions`): under OpenSSH's `MaxStartups 10:30:100`, which drops
/// unauthenticated connections beyond 10 at once.
pub const DEFAULT_JUMP_SESSIONS: usize = 8;
/// The most `jump_sessions` may ask for.
const MAX_JUMP_SESSIONS: usize = 32;

/// The longest `connect_timeout_secs`: a server that has not answered in
/// ten minutes is down, and a larger number is a typo (milliseconds).
const MAX_TIMEOUT_SECS: u64 = 600;

fn merge(
    name: &str,
    defaults: &RawSettings,
    own: &RawSettings,
) -> Result<SshSettings, (usize, String)> {
    let timeout = own
        .connect_timeout_secs
        .as_ref()
        .or(defaults.connect_timeout_secs.as_ref());
    let connect_timeout = match timeout {
        Some(t) if !(1..=MAX_TIMEOUT_SECS).contains(t.get_ref()) => {
            // The server's own value, or the one it takes from [defaults].
            let block = if own.connect_timeout_secs.is_some() {
                format!("server {name:?}")
            } else {
                "[defaults]".to_string()
            };
            return Err((
                t.span().start,
                format!(
                    "key `connect_timeout_secs` in {block} must be from 1 to {MAX_TIMEOUT_SECS} (seconds)"
                ),
            ));
        }
        Some(t) => Some(Duration::from_secs(*t.get_ref())),
        None => None,
    };
    let jump = match own.jump.as_ref().or(defaults.jump.as_ref()) {
        Some(j) => Some(
            Jump::parse(j.get_ref()).map_err(|e| (j.span().start, format!("key `jump`: {e}")))?,
        ),
        None => None,
    };
    let jump_sessions = match own
        .jump_sessions
        .as_ref()
        .or(defaults.jump_sessions.as_ref())
    {
        Some(n) if (1..=MAX_JUMP_SESSIONS as u64).contains(n.get_ref()) => {
            Some(*n.get_ref() as usize)
        }
        Some(n) => {
            return Err((
                n.span().start,
                format!(
                    "key `jump_sessions` must be from 1 to {MAX_JUMP_SESSIONS} (sessions to each jump host; the default is {DEFAULT_JUMP_SESSIONS})"
                ),
            ));
        }
        None => None,
    };
    Ok(SshSettings {
        user: own.user.clone().or_else(|| defaults.user.clone()),
        port: own.port.or(defaults.port),
        identity_file: own
            .identity_file
            .clone()
            .or_else(|| defaults.identity_file.clone()),
        known_hosts: own
            .known_hosts
            .clone()
            .or_else(|| defaults.known_hosts.clone()),
        connect_timeout,
        jump,
        jump_sessions,
    })
}

/// An XDG base directory: `$VAR` when it is an absolute path, else
/// `fallback` (`~/...`).
pub fn xdg_dir(var: &str, fallback: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| expand_tilde(Path::new(fallback)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Inventory, InventoryError> {
        Inventory::parse(Path::new("/farm/farmkey.toml"), text)
    }

    /// The fields serde's error names for an unknown key of `T`.
    fn fields<T: serde::de::DeserializeOwned>() -> Vec<String> {
        let Err(e) = toml::from_str::<T>("not_a_key = 1") else {
            panic!("an unknown key is refused");
        };
        let message = e.message().to_string();
        let (_, list) = message
            .split_once("expected one of ")
            .unwrap_or_else(|| panic!("{message}"));
        list.split(", ")
            .map(|f| f.trim_matches('`').to_string())
            .collect()
    }

    #[test]
    fn the_settings_table_is_what_the_inventory_parses() {
        let keys: Vec<String> = setting_keys().map(String::from).collect();
        assert_eq!(fields::<RawSettings>(), keys);
        let mut server: Vec<String> = SERVER_KEYS.map(String::from).to_vec();
        server.extend(keys);
        assert_eq!(fields::<RawServer>(), server);
        // And every one of them is taken in both places.
        let every = SETTINGS
            .iter()
            .map(|s| match s.key {
                "user" => "user = \"ops\"".to_string(),
                "port" | "connect_timeout_secs" => format!("{} = 22", s.key),
                "max_config_bytes" => format!("{} = 4096", s.key),
                "backup_keep" => format!("{} = 2", s.key),
                "jump_sessions" => format!("{} = 4", s.key),
                k => format!("{k} = \"a\""),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let text =
            format!("[defaults]\n{every}\n[[servers]]\nname = \"a\"\nhost = \"h\"\n{every}\n");
        parse(&text).unwrap();
    }

    #[test]
    fn readme_shows_every_setting_in_an_inventory_that_parses() {
        let readme =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
                .unwrap();
        let section = &readme[readme
            .find("\n## Inventory\n")
            .expect("README has ## Inventory")..];
        let example = section
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("## Inventory opens with a TOML example");
        parse(example).unwrap_or_else(|e| panic!("README's example: {e}"));
        let shown: Vec<&str> = example
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
            .collect();
        for s in &SETTINGS {
            assert!(
                shown.contains(&s.key),
                "README's inventory example lacks `{}`",
                s.key
            );
        }
    }

    #[test]
    fn defaults_apply_and_servers_override() {
        let inv = parse(
            r#"
[defaults]
user = "svc-ops"
port = 22
connect_timeout_secs = 10

[[servers]]
name = "web01"
host = "10.0.0.11"

[[servers]]
name = "web02"
host = "10.0.0.12"
port = 2222
user = "other"

[[servers]]
name = "lab"
local_root = "./lab"
"#,
        )
        .unwrap();
        assert_eq!(inv.servers.len(), 3);
        let Target::Ssh { host, settings } = &inv.servers[0].target else {
            panic!()
        };
        assert_eq!(host, "10.0.0.11");
        assert_eq!(settings.user.as_deref(), Some("svc-ops"));
        assert_eq!(settings.connect_timeout, Some(Duration::from_secs(10)));
        let Target::Ssh { settings, .. } = &inv.servers[1].target else {
            panic!()
        };
        assert_eq!(
            (settings.port, settings.user.as_deref()),
            (Some(2222), Some("other"))
        );
        assert_eq!(inv.servers[1].address(), "10.0.0.12:2222");
        assert_eq!(inv.servers[0].max_config_bytes, DEFAULT_MAX_CONFIG_BYTES);
        assert_eq!(
            inv.servers[2].target,
            Target::Local {
                root: PathBuf::from("/farm/./lab")
            }
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = parse("[[servers]]\nname = \"a\"\nhots = \"x\"\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(
            e.to_string()
                .starts_with("/farm/farmkey.toml:3: unknown key `hots`"),
            "{e}"
        );

        let e = parse(
            "[[servers]]\nname = \"a\"\nhost = \"h\"\n[[servers]]\nname = \"A\"\nhost = \"h2\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(5));
        assert!(
            e.message.contains("duplicate server name") && e.message.contains("line 2"),
            "{e}"
        );

        let e = parse("[[servers]]\nname = \"a\"\nhost = \"h\"\nlocal_root = \"x\"\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("both `host` and `local_root`"), "{e}");

        let e = parse("[[servers]]\nname = \"a\"\n").unwrap_err();
        assert!(e.message.contains("neither"), "{e}");
        assert!(e.line.is_some());

        let e = parse("[[servers]]\nhost = \"h\"\n").unwrap_err();
        assert!(e.message.contains("name"), "{e}");

        let e = parse("[[servers]]\nname='a'\nhost='h'\nconnect_timeout_secs = 0\n").unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(
            e.message
                .contains("`connect_timeout_secs` in server \"a\" must be from 1 to 600"),
            "{e}"
        );
        let e = parse("[[servers]]\nname='a'\nhost='h'\nconnect_timeout_secs = 601\n").unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        let e =
            parse("[defaults]\nconnect_timeout_secs = 30000\n[[servers]]\nname='a'\nhost='h'\n")
                .unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(
            e.message
                .contains("`connect_timeout_secs` in [defaults] must be"),
            "{e}"
        );
        assert!(parse("[[servers]]\nname='a'\nhost='h'\nconnect_timeout_secs = 600\n").is_ok());

        // A folder is never reached through a jump host; [defaults] jump
        // is for the SSH servers beside it.
        let e = parse("[[servers]]\nname='lab'\nlocal_root='x'\njump='bastion'\n").unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(
            e.message.contains("server \"lab\" has `local_root`") && e.message.contains("jump"),
            "{e}"
        );
        assert!(parse("[defaults]\njump='b'\n[[servers]]\nname='lab'\nlocal_root='x'\n").is_ok());

        let e = parse("[defaults]\nport = 99999\n[[servers]]\nname='a'\nhost='h'\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");

        let e = parse("[defaults]\ntimeout = 3\n").unwrap_err();
        assert!(
            e.to_string()
                .contains(":2: unknown key `timeout` in [defaults]"),
            "{e}"
        );

        let e = parse("[[servers]]\nname='a'\nhost='h'\nmax_config_bytes = 10\n").unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("max_config_bytes"), "{e}");

        let e = parse("[[servers]\n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");

        assert!(parse("").unwrap_err().message.contains("no servers"));
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_refused_without_reading_them() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.toml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Reading the FIFO would wait for a writer forever.
        for (path, kind) in [
            (fifo.as_path(), "a FIFO"),
            (dir.path(), "a directory"),
            (Path::new("/dev/null"), "a device"),
        ] {
            let e = Inventory::load(path).unwrap_err();
            assert_eq!(e.file, path);
            assert!(e.message.contains(kind), "{e}");
        }
    }

    #[test]
    fn components_name_sites_and_applications() {
        let servers = "[[servers]]\nname = 'a'\nhost = 'h'\n";
        let inv = parse(&format!(
            "{servers}[components]\nFlowtime = [\"Flowtime\", \"Portal/flow\"]\n\"process togo\" = [\"TOGO\"]\n"
        ))
        .unwrap();
        assert_eq!(
            inv.components,
            Components::named([
                (
                    Component::Flowtime,
                    vec!["Flowtime".into(), "Portal/flow".into()]
                ),
                (Component::ProcessTogo, vec!["TOGO".into()]),
            ])
        );
        assert_eq!(parse(servers).unwrap().components, Components::default());

        let e = parse(&format!(
            "{servers}[components]\nAdmin = [\"Cora Admin\"]\n"
        ))
        .unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(
            e.message.contains("unknown component \"Admin\"")
                && e.message.contains("Flowtime, Administration, Process TOGO"),
            "{e}"
        );
        let e = parse(&format!("{servers}[components]\nFlowtime = []\n")).unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("lists no site"), "{e}");
        let e = parse(&format!(
            "{servers}[components]\nFlowtime = [\"Portal\"]\nAdministration = [\"x\", \" portal/ \"]\n"
        ))
        .unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
        assert!(
            e.message
                .contains("\"portal/\" is listed for Flowtime and for Administration"),
            "{e}"
        );
        // Two keys for one component, told apart only by case or spaces.
        let e = parse(&format!(
            "{servers}[components]\nFlowtime = [\"Portal\"]\nflowtime = [\"Flow\"]\n"
        ))
        .unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
        assert!(
            e.message.contains(
                "\"Flowtime\" and \"flowtime\" both name Flowtime; list its sites under one key"
            ),
            "{e}"
        );
        let e = parse(&format!(
            "{servers}[components]\n\"Process TOGO\" = [\"T\"]\nProcessTogo = [\"U\"]\n"
        ))
        .unwrap_err();
        assert!(
            e.message
                .contains("\"Process TOGO\" and \"ProcessTogo\" both name Process TOGO"),
            "{e}"
        );
        let e = parse(&format!(
            "{servers}[components]\nFlowtime = [\"Portal\", \"PORTAL\"]\n"
        ))
        .unwrap_err();
        assert!(
            e.message
                .contains("\"PORTAL\" is listed twice for Flowtime"),
            "{e}"
        );
        // One application, whatever its slashes.
        let e = parse(&format!(
            "{servers}[components]\nFlowtime = [\"Portal/flow\"]\nAdministration = [\"/portal\\\\FLOW/\"]\n"
        ))
        .unwrap_err();
        assert!(
            e.message
                .contains("is listed for Flowtime and for Administration"),
            "{e}"
        );
        let e = parse(&format!("{servers}[components]\nFlowtime = [\"/\"]\n")).unwrap_err();
        assert!(e.message.contains("empty site name"), "{e}");
        let e = parse(&format!("{servers}[component]\nFlowtime = [\"x\"]\n")).unwrap_err();
        assert!(e.message.contains("unknown key `component`"), "{e}");
    }

    #[test]
    fn jump_chains_parse_like_proxyjump() {
        let hop = |user: Option<&str>, host: &str, port: Option<u16>| JumpHop {
            user: user.map(str::to_string),
            host: host.into(),
            port,
        };
        assert_eq!(Jump::parse("none"), Ok(Jump::Direct));
        assert_eq!(
            Jump::parse("ops@bastion:2222, gw ,ssh://me@[::1]:22/,[fe80::1],::1"),
            Ok(Jump::Via(vec![
                hop(Some("ops"), "bastion", Some(2222)),
                hop(None, "gw", None),
                hop(Some("me"), "::1", Some(22)),
                hop(None, "fe80::1", None),
                hop(None, "::1", None),
            ]))
        );
        let chain = Jump::parse("ops@bastion:2222,gw,[::1]:22").unwrap();
        assert_eq!(chain.to_string(), "ops@bastion:2222,gw,[::1]:22");
        let hop = |item: &str, fault| JumpError::Hop {
            item: item.into(),
            fault,
        };
        for (bad, why) in [
            ("", JumpError::Empty),
            ("a,,b", hop("", HopFault::NoHost)),
            ("@h", hop("@h", HopFault::EmptyUser)),
            ("h:0", hop("h:0", HopFault::BadPort)),
            ("h:x", hop("h:x", HopFault::BadPort)),
            ("[::1", hop("[::1", HopFault::UnclosedBracket)),
            ("[::1]x", hop("[::1]x", HopFault::NoPortAfterBracket)),
            ("a b", hop("a b", HopFault::NotAHost)),
            ("u@", hop("u@", HopFault::NoHost)),
        ] {
            assert_eq!(Jump::parse(bad), Err(why), "{bad:?}");
        }
    }

    #[test]
    fn jump_errors_are_worded() {
        let hop = |fault| {
            JumpError::Hop {
                item: "h".into(),
                fault,
            }
            .to_string()
        };
        assert_eq!(
            JumpError::Empty.to_string(),
            "empty: give [user@]host[:port], a comma-separated chain, or \"none\""
        );
        assert_eq!(hop(HopFault::EmptyUser), "\"h\": empty user name before @");
        assert_eq!(
            hop(HopFault::NoPortAfterBracket),
            "\"h\": expected :port after ]"
        );
        assert_eq!(hop(HopFault::UnclosedBracket), "\"h\": missing ]");
        assert_eq!(hop(HopFault::NoHost), "\"h\": no host name");
        assert_eq!(hop(HopFault::NotAHost), "\"h\": not a host name");
        assert_eq!(
            hop(HopFault::BadPort),
            "\"h\": the port must be a number from 1 to 65535"
        );
    }

    #[test]
    fn the_size_cap_is_a_setting_that_servers_override() {
        let inv = parse(
            "[defaults]\nmax_config_bytes = 65536\n\n[[servers]]\nname = \"a\"\nhost = \"h\"\n\n[[servers]]\nname = \"b\"\nlocal_root = \"b\"\nmax_config_bytes = 1048576\n",
        )
        .unwrap();
        assert_eq!(inv.servers[0].max_config_bytes, 65536);
        assert_eq!(inv.servers[1].max_config_bytes, 1048576);
    }

    #[test]
    fn jump_is_a_setting_that_servers_override() {
        let inv = parse(
            "[defaults]\njump = \"ops@bastion:2222\"\n\n[[servers]]\nname = \"a\"\nhost = \"h\"\n\n[[servers]]\nname = \"b\"\nhost = \"h2\"\njump = \"none\"\n",
        )
        .unwrap();
        let jump = |i: usize| match &inv.servers[i].target {
            Target::Ssh { settings, .. } => settings.jump.clone(),
            _ => panic!(),
        };
        assert_eq!(jump(0).unwrap().to_string(), "ops@bastion:2222");
        assert_eq!(jump(1), Some(Jump::Direct));
        let e = parse("[[servers]]\nname = \"a\"\nhost = \"h\"\njump = \"bastion:99999\"\n")
            .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(
            e.message.starts_with("key `jump`: \"bastion:99999\""),
            "{e}"
        );
    }

    #[test]
    fn jump_sessions_is_a_bounded_setting_that_servers_override() {
        let inv = parse(
            "[defaults]
jump_sessions = 3

[[servers]]
name = \"a\"
host = \"h\"

[[servers]]
name = \"b\"
host = \"h2\"
jump_sessions = 1
",
        )
        .unwrap();
        let sessions = |i: usize| match &inv.servers[i].target {
            Target::Ssh { settings, .. } => settings.jump_sessions,
            _ => panic!(),
        };
        assert_eq!((sessions(0), sessions(1)), (Some(3), Some(1)));
        for bad in ["0", "33"] {
            let e = parse(&format!(
                "[[servers]]\nname = \"a\"\nhost = \"h\"\njump_sessions = {bad}\n"
            ))
            .unwrap_err();
            assert_eq!(e.line, Some(4), "{e}");
            assert!(
                e.message
                    .contains("`jump_sessions` must be from 1 to 32 (sessions to each jump host; the default is 8)"),
                "{e}"
            );
        }
    }
}
