//! Connection settings for one host: the inventory first, then
//! `~/.ssh/config` (read with the ssh2-config crate), then OpenSSH's defaults.

use super::ConnectError;
use crate::inventory::{Jump, JumpHop, SshSettings};
use crate::paths::expand_tilde;
use ssh2_config::{HostParams, ParseRule, SshConfig};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Hops a chain of jump hosts may have, nested `ProxyJump`s included.
const MAX_HOPS: usize = 8;

/// Everything needed to open one SSH connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resolved {
    /// The name as the inventory gives it (perhaps a `Host` alias).
    pub alias: String,
    /// The name or address actually connected to.
    pub host_name: String,
    pub port: u16,
    pub user: String,
    /// Inventory `identity_file`, then `IdentityFile` entries, in order.
    pub identity_files: Vec<PathBuf>,
    pub known_hosts: PathBuf,
    pub connect_timeout: Duration,
    /// The jump hosts to pass through, first hop first (each with no
    /// `jumps` of its own); empty to connect directly.
    pub jumps: Vec<Resolved>,
}

impl Resolved {
    /// How known_hosts names this host: `host`, or `[host]:port` off port 22.
    pub fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.host_name.clone()
        } else {
            format!("[{}]:{}", self.host_name, self.port)
        }
    }

    /// How messages name a jump host: `jump host bastion (ops@[10.0.0.5]:2222)`.
    pub fn hop_label(&self) -> String {
        format!(
            "jump host {} ({}@{})",
            self.alias,
            self.user,
            self.known_hosts_name()
        )
    }
}

pub fn default_ssh_config() -> PathBuf {
    expand_tilde(Path::new("~/.ssh/config"))
}

/// Parses an OpenSSH client configuration; a missing file is an empty one.
pub fn load(path: &Path) -> Result<SshConfig, ConnectError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SshConfig::default()),
        Err(e) => {
            return Err(ConnectError::Config(format!("{}: {e}", path.display())));
        }
    };
    SshConfig::default()
        .parse(
            &mut BufReader::new(file),
            ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
        )
        .map_err(|e| ConnectError::Config(format!("{}: {e}", path.display())))
}

fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".to_string())
}

pub fn resolve(
    host: &str,
    settings: &SshSettings,
    ssh_config: Option<&Path>,
) -> Result<Resolved, ConnectError> {
    let config_path = ssh_config.map_or_else(default_ssh_config, Path::to_path_buf);
    let config = load(&config_path)?;
    let params = config.query(host);
    let mut identity_files: Vec<PathBuf> = Vec::new();
    identity_files.extend(settings.identity_file.as_deref().map(expand_tilde));
    add_identities(&mut identity_files, &params);
    let jump = match &settings.jump {
        Some(j) => Some(j.clone()),
        None => config_jump(&config_path, &config, host)?,
    };
    let jumps = match jump {
        Some(Jump::Via(hops)) => resolve_chain(
            &config,
            &config_path,
            &hops,
            settings,
            &mut vec![host.to_string()],
        )?,
        Some(Jump::Direct) | None => Vec::new(),
    };
    Ok(Resolved {
        alias: host.to_string(),
        host_name: host_name(host, &params),
        port: settings.port.or(params.port).unwrap_or(22),
        user: settings
            .user
            .clone()
            .or(params.user)
            .unwrap_or_else(local_user),
        identity_files,
        known_hosts: known_hosts(settings, &config, host),
        connect_timeout: settings
            .connect_timeout
            .or(params.connect_timeout)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        jumps,
    })
}

fn host_name(alias: &str, params: &HostParams) -> String {
    params
        .host_name
        .as_ref()
        .map(|h| h.replace("%h", alias))
        .unwrap_or_else(|| alias.to_string())
}

fn add_identities(list: &mut Vec<PathBuf>, params: &HostParams) {
    for f in params.identity_file.iter().flatten() {
        let f = expand_tilde(f);
        if !list.contains(&f) {
            list.push(f);
        }
    }
}

/// The known_hosts file of a host: the inventory's `known_hosts`, else the
/// first file of its `UserKnownHostsFile` (the one OpenSSH adds keys to),
/// else `~/.ssh/known_hosts`.
fn known_hosts(settings: &SshSettings, config: &SshConfig, host: &str) -> PathBuf {
    settings
        .known_hosts
        .as_deref()
        .map(expand_tilde)
        .or_else(|| user_known_hosts(config, host))
        .unwrap_or_else(|| expand_tilde(Path::new("~/.ssh/known_hosts")))
}

/// The first file of a host's `UserKnownHostsFile`, as OpenSSH takes it:
/// from the first of its entries that sets one.
fn user_known_hosts(config: &SshConfig, host: &str) -> Option<PathBuf> {
    config.intersecting_hosts(host).find_map(|entry| {
        let files = entry.params.unsupported_fields.get("userknownhostsfile")?;
        files.first().map(|f| expand_tilde(Path::new(f)))
    })
}

/// `ProxyJump` of a host's entries. As in OpenSSH the first `ProxyJump` or
/// `ProxyCommand` given wins; a `ProxyCommand` is refused rather than
/// ignored, since connecting directly would only time out.
fn config_jump(
    config_path: &Path,
    config: &SshConfig,
    host: &str,
) -> Result<Option<Jump>, ConnectError> {
    for entry in config.intersecting_hosts(host) {
        if let Some(list) = &entry.params.proxy_jump {
            return Jump::parse(&list.join(",")).map(Some).map_err(|e| {
                ConnectError::Config(format!(
                    "{}: ProxyJump of {host}: {e}",
                    config_path.display()
                ))
            });
        }
        match entry.params.unsupported_fields.get("proxycommand") {
            Some(args) if args.len() == 1 && args[0].eq_ignore_ascii_case("none") => {
                return Ok(None);
            }
            Some(_) => {
                return Err(ConnectError::Config(format!(
                    "{}: {host} is reached with a ProxyCommand, which farmkey does not run; write its jump host as ProxyJump there, or as `jump` in the inventory",
                    config_path.display()
                )));
            }
            None => {}
        }
    }
    Ok(None)
}

/// Resolves the hops of a chain as OpenSSH does: `ProxyJump a,b` reaches b
/// through a; each hop takes `HostName`, `User`, `Port`, `IdentityFile` and
/// `ConnectTimeout` from its own entry (user and port written in the chain
/// win), and the first hop's own `ProxyJump` is followed. The inventory's
/// `known_hosts` and `connect_timeout_secs` apply to every hop as to the
/// server, and its `identity_file` is tried after the hop's own keys.
fn resolve_chain(
    config: &SshConfig,
    config_path: &Path,
    hops: &[JumpHop],
    settings: &SshSettings,
    seen: &mut Vec<String>,
) -> Result<Vec<Resolved>, ConnectError> {
    let mut out = Vec::new();
    for (i, hop) in hops.iter().enumerate() {
        let params = config.query(&hop.host);
        if i == 0
            && let Some(Jump::Via(before)) = config_jump(config_path, config, &hop.host)?
        {
            if seen.contains(&hop.host) {
                return Err(ConnectError::Config(format!(
                    "{}: ProxyJump loops: {} is reached through itself (add `ProxyJump none` to its entry)",
                    config_path.display(),
                    hop.host
                )));
            }
            seen.push(hop.host.clone());
            out.extend(resolve_chain(config, config_path, &before, settings, seen)?);
        }
        let mut identity_files = Vec::new();
        add_identities(&mut identity_files, &params);
        if let Some(f) = settings.identity_file.as_deref().map(expand_tilde)
            && !identity_files.contains(&f)
        {
            identity_files.push(f);
        }
        out.push(Resolved {
            alias: hop.host.clone(),
            host_name: host_name(&hop.host, &params),
            port: hop.port.or(params.port).unwrap_or(22),
            user: hop.user.clone().or(params.user).unwrap_or_else(local_user),
            identity_files,
            known_hosts: known_hosts(settings, config, &hop.host),
            connect_timeout: settings
                .connect_timeout
                .or(params.connect_timeout)
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            jumps: Vec::new(),
        });
    }
    if out.len() > MAX_HOPS {
        return Err(ConnectError::Config(format!(
            "{}: more than {MAX_HOPS} jump hosts in a chain",
            config_path.display()
        )));
    }
    Ok(out)
}

/// `farmkey import-ssh-config`: an inventory for the concrete `Host` entries
/// of an OpenSSH configuration whose names match `pattern` (`*` and `?`).
pub fn import(config_path: &Path, pattern: Option<&str>) -> Result<String, ConnectError> {
    let config = load(config_path)?;
    let matcher = pattern.map(wildmatch::WildMatch::new);
    let mut concrete: Vec<String> = Vec::new();
    for host in config.get_hosts() {
        for clause in &host.pattern {
            let alias = &clause.pattern;
            if !clause.negated && !alias.contains(['*', '?', '!']) && !concrete.contains(alias) {
                concrete.push(alias.clone());
            }
        }
    }
    // Hosts that others go through are jump hosts, not web servers.
    let mut jump_hosts: Vec<String> = Vec::new();
    let mut pending = concrete.clone();
    while let Some(alias) = pending.pop() {
        if let Ok(Some(Jump::Via(hops))) = config_jump(config_path, &config, &alias) {
            for hop in hops {
                if !jump_hosts.contains(&hop.host) {
                    pending.push(hop.host.clone());
                    jump_hosts.push(hop.host);
                }
            }
        }
    }
    let mut out = format!(
        "# farmkey inventory generated from {}\n# Connection settings stay in that file; the inventory may override them.\n",
        config_path.display()
    );
    if *config_path != default_ssh_config() {
        // Names are resolved in the ssh configuration read at scan time.
        out.push_str(&format!(
            "# HostName, User, Port, IdentityFile, ConnectTimeout and ProxyJump are read from it by these names: give --ssh-config {} to scan, push and the console.\n",
            escape(&config_path.display().to_string())
        ));
    }
    let mut imported = 0;
    for alias in concrete
        .iter()
        .filter(|a| matcher.as_ref().is_none_or(|m| m.matches(a)))
    {
        if jump_hosts.contains(alias) {
            out.push_str(&format!(
                "\n# {}: a jump host (ProxyJump), not imported\n",
                escape(alias)
            ));
            continue;
        }
        imported += 1;
        let p = config.query(alias);
        let mut notes = Vec::new();
        if let Some(h) = &p.host_name {
            notes.push(format!("HostName {h}"));
        }
        if let Some(u) = &p.user {
            notes.push(format!("User {u}"));
        }
        if let Some(port) = p.port {
            notes.push(format!("Port {port}"));
        }
        // Kept in the inventory: the console adds keys it accepts there, and
        // it holds whatever the ssh configuration read at scan time says.
        let known_hosts = config
            .intersecting_hosts(alias)
            .find_map(|e| {
                e.params
                    .unsupported_fields
                    .get("userknownhostsfile")?
                    .first()
            })
            .map_or(String::new(), |f| {
                format!("known_hosts = {}\n", toml_string(f))
            });
        let jump = match config_jump(config_path, &config, alias) {
            Ok(Some(j @ Jump::Via(_))) => format!("jump = {}\n", toml_string(&j.to_string())),
            Ok(_) => String::new(),
            Err(ConnectError::Config(e)) => format!("# {}\n", escape(&e)),
            Err(e) => return Err(e),
        };
        out.push_str(&format!(
            "\n[[servers]]\nname = {}\nhost = {}{}\n{known_hosts}{jump}",
            toml_string(alias),
            toml_string(alias),
            if notes.is_empty() {
                String::new()
            } else {
                // Comments are free text: made safe, as TOML wants them.
                format!("  # {}", escape(&notes.join(", ")))
            }
        ));
    }
    if imported == 0 {
        return Err(ConnectError::Config(format!(
            "{}: no Host entry{} to import",
            config_path.display(),
            pattern.map_or(String::new(), |p| format!(" matches {p:?}"))
        )));
    }
    Ok(out)
}

use crate::safe_text::escape;

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "Host web01 web02\n    HostName 10.0.0.%h\n    User svc-ops\n    Port 2222\n    IdentityFile ~/.ssh/farm_ed25519\n    ConnectTimeout 3\n\nHost *.corp\n    User corp\n\nHost !bad *\n    IdentityFile ~/.ssh/id_other\n";

    fn config_file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn inventory_wins_over_ssh_config() {
        let f = config_file(CONFIG);
        let r = resolve("web01", &SshSettings::default(), Some(f.path())).unwrap();
        assert_eq!(r.host_name, "10.0.0.web01");
        assert_eq!((r.port, r.user.as_str()), (2222, "svc-ops"));
        assert_eq!(r.connect_timeout, Duration::from_secs(3));
        assert!(r.identity_files[0].ends_with(".ssh/farm_ed25519"));
        assert_eq!(r.known_hosts_name(), "[10.0.0.web01]:2222");

        let settings = SshSettings {
            user: Some("me".into()),
            port: Some(22),
            identity_file: Some("/keys/mine".into()),
            ..Default::default()
        };
        let r = resolve("web01", &settings, Some(f.path())).unwrap();
        assert_eq!((r.port, r.user.as_str()), (22, "me"));
        assert_eq!(r.identity_files[0], PathBuf::from("/keys/mine"));
        assert_eq!(r.known_hosts_name(), "10.0.0.web01");
    }

    const JUMPS: &str = "Host bastion\n    ProxyJump none\n    HostName 10.9.0.1\n    User jumper\n    Port 2200\n    IdentityFile ~/.ssh/jump_key\n    ConnectTimeout 4\n\nHost inner\n    HostName 10.9.1.1\n    ProxyJump bastion\n\nHost web01 web02\n    HostName %h.farm.local\n    ProxyJump ops@inner:2222\n\nHost direct\n    ProxyJump none\n\nHost old\n    ProxyCommand ssh -W %h:%p bastion\n\nHost loop\n    ProxyJump loop\n\nHost *\n    ProxyJump bastion\n";

    #[test]
    fn proxyjump_chains_resolve_like_openssh() {
        let f = config_file(JUMPS);
        let settings = SshSettings {
            identity_file: Some("/keys/farm".into()),
            connect_timeout: Some(Duration::from_secs(7)),
            ..Default::default()
        };
        let r = resolve("web01", &settings, Some(f.path())).unwrap();
        assert_eq!(r.host_name, "web01.farm.local");
        // `ProxyJump ops@inner:2222`: inner's own ProxyJump (bastion) comes first.
        let hops: Vec<String> = r
            .jumps
            .iter()
            .map(|h| format!("{}@{}:{}", h.user, h.host_name, h.port))
            .collect();
        assert_eq!(hops, ["jumper@10.9.0.1:2200", "ops@10.9.1.1:2222"]);
        let bastion = &r.jumps[0];
        assert!(bastion.identity_files[0].ends_with(".ssh/jump_key"));
        assert_eq!(bastion.identity_files[1], PathBuf::from("/keys/farm"));
        assert_eq!(bastion.connect_timeout, Duration::from_secs(7));
        assert_eq!(
            bastion.hop_label(),
            "jump host bastion (jumper@[10.9.0.1]:2200)"
        );
        assert!(r.jumps.iter().all(|h| h.jumps.is_empty()));

        // The inventory wins: a chain of its own, or none.
        let own = SshSettings {
            jump: Some(Jump::parse("a@gw:22,bastion").unwrap()),
            ..Default::default()
        };
        let r = resolve("web01", &own, Some(f.path())).unwrap();
        let names: Vec<&str> = r.jumps.iter().map(|h| h.alias.as_str()).collect();
        // gw's entry (Host *) says ProxyJump bastion: followed, as OpenSSH does for the first hop.
        assert_eq!(names, ["bastion", "gw", "bastion"]);
        let none = SshSettings {
            jump: Some(Jump::Direct),
            ..Default::default()
        };
        assert!(
            resolve("web01", &none, Some(f.path()))
                .unwrap()
                .jumps
                .is_empty()
        );
        assert!(
            resolve("direct", &SshSettings::default(), Some(f.path()))
                .unwrap()
                .jumps
                .is_empty()
        );

        let e = resolve("old", &SshSettings::default(), Some(f.path())).unwrap_err();
        assert!(e.to_string().contains("ProxyCommand"), "{e}");
        let e = resolve("loop", &SshSettings::default(), Some(f.path())).unwrap_err();
        assert!(e.to_string().contains("loops"), "{e}");
    }

    #[test]
    fn import_carries_proxyjump_and_leaves_jump_hosts_out() {
        let f = config_file(JUMPS);
        let out = import(f.path(), None).unwrap();
        assert!(
            out.contains("name = \"web01\"\nhost = \"web01\"  # HostName %h.farm.local\njump = \"ops@inner:2222\"\n"),
            "{out}"
        );
        assert!(
            out.contains("# bastion: a jump host (ProxyJump), not imported"),
            "{out}"
        );
        assert!(out.contains("# inner: a jump host"), "{out}");
        let inv = crate::inventory::Inventory::parse(Path::new("x.toml"), &out).unwrap();
        let names: Vec<&str> = inv.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["web01", "web02", "direct", "old"]);
        assert!(out.contains("name = \"old\"\nhost = \"old\"\n# "), "{out}");
        assert!(out.contains("which farmkey does not run"), "{out}");
        let crate::inventory::Target::Ssh { settings, .. } = &inv.servers[0].target else {
            panic!()
        };
        assert_eq!(settings.jump, Some(Jump::parse("ops@inner:2222").unwrap()));
    }

    #[test]
    fn user_known_hosts_file_is_honoured_and_imported() {
        let f = config_file(
            "Host web01\n    HostName 10.0.0.1\n    UserKnownHostsFile ~/.ssh/farm_hosts /etc/other\n\nHost web02\n    HostName 10.0.0.2\n",
        );
        let r = resolve("web01", &SshSettings::default(), Some(f.path())).unwrap();
        assert!(
            r.known_hosts.ends_with(".ssh/farm_hosts"),
            "{:?}",
            r.known_hosts
        );
        assert!(!r.known_hosts.starts_with("~"), "{:?}", r.known_hosts);
        let other = resolve("web02", &SshSettings::default(), Some(f.path())).unwrap();
        assert!(other.known_hosts.ends_with(".ssh/known_hosts"));
        // The inventory's own wins.
        let settings = SshSettings {
            known_hosts: Some("/mine".into()),
            ..Default::default()
        };
        let mine = resolve("web01", &settings, Some(f.path())).unwrap();
        assert_eq!(mine.known_hosts, PathBuf::from("/mine"));

        let out = import(f.path(), None).unwrap();
        assert!(
            out.contains(
                "host = \"web01\"  # HostName 10.0.0.1\nknown_hosts = \"~/.ssh/farm_hosts\"\n"
            ),
            "{out}"
        );
        assert!(out.contains("give --ssh-config "), "{out}");
        let inv = crate::inventory::Inventory::parse(Path::new("x.toml"), &out).unwrap();
        let crate::inventory::Target::Ssh { settings, .. } = &inv.servers[0].target else {
            panic!()
        };
        assert_eq!(
            settings.known_hosts,
            Some(PathBuf::from("~/.ssh/farm_hosts"))
        );
    }

    #[test]
    fn imports_concrete_hosts_only() {
        let f = config_file(CONFIG);
        let out = import(f.path(), None).unwrap();
        assert!(
            out.contains(
                "name = \"web01\"\nhost = \"web01\"  # HostName 10.0.0.%h, User svc-ops, Port 2222"
            ),
            "{out}"
        );
        assert!(out.contains("name = \"web02\""));
        assert!(!out.contains("corp"));
        let inv = crate::inventory::Inventory::parse(Path::new("x.toml"), &out).unwrap();
        assert_eq!(inv.servers.len(), 2);
        let only = import(f.path(), Some("*02")).unwrap();
        assert!(!only.contains("web01") && only.contains("web02"));
        assert!(import(f.path(), Some("db*")).is_err());
    }
}
