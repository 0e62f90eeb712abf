//! Connection settings for one host: the inventory first, then
//! `~/.ssh/config` (read with the ssh2-config crate), then OpenSSH's defaults.

use super::ConnectError;
use crate::inventory::{SshSettings, expand_tilde};
use ssh2_config::{ParseRule, SshConfig};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything needed to open one SSH connection.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    let params = load(&config_path)?.query(host);
    let host_name = params
        .host_name
        .map(|h| h.replace("%h", host))
        .unwrap_or_else(|| host.to_string());
    let mut identity_files: Vec<PathBuf> = Vec::new();
    identity_files.extend(settings.identity_file.as_deref().map(expand_tilde));
    for f in params.identity_file.unwrap_or_default() {
        let f = expand_tilde(&f);
        if !identity_files.contains(&f) {
            identity_files.push(f);
        }
    }
    Ok(Resolved {
        alias: host.to_string(),
        host_name,
        port: settings.port.or(params.port).unwrap_or(22),
        user: settings
            .user
            .clone()
            .or(params.user)
            .unwrap_or_else(local_user),
        identity_files,
        known_hosts: settings
            .known_hosts
            .as_deref()
            .map(expand_tilde)
            .unwrap_or_else(|| expand_tilde(Path::new("~/.ssh/known_hosts"))),
        connect_timeout: settings
            .connect_timeout
            .or(params.connect_timeout)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
    })
}

/// `farmkey import-ssh-config`: an inventory for the concrete `Host` entries
/// of an OpenSSH configuration whose names match `pattern` (`*` and `?`).
pub fn import(config_path: &Path, pattern: Option<&str>) -> Result<String, ConnectError> {
    let config = load(config_path)?;
    let matcher = pattern.map(wildmatch::WildMatch::new);
    let mut out = format!(
        "# farmkey inventory generated from {}\n# Connection settings stay in that file; the inventory may override them.\n",
        config_path.display()
    );
    let mut seen: Vec<String> = Vec::new();
    for host in config.get_hosts() {
        for clause in &host.pattern {
            let alias = &clause.pattern;
            let concrete = !clause.negated && !alias.contains(['*', '?', '!']);
            let wanted = matcher.as_ref().is_none_or(|m| m.matches(alias));
            if !concrete || !wanted || seen.contains(alias) {
                continue;
            }
            seen.push(alias.clone());
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
            out.push_str(&format!(
                "\n[[servers]]\nname = {}\nhost = {}{}\n",
                toml_string(alias),
                toml_string(alias),
                if notes.is_empty() {
                    String::new()
                } else {
                    format!("  # {}", notes.join(", "))
                }
            ));
        }
    }
    if seen.is_empty() {
        return Err(ConnectError::Config(format!(
            "{}: no Host entry{} to import",
            config_path.display(),
            pattern.map_or(String::new(), |p| format!(" matches {p:?}"))
        )));
    }
    Ok(out)
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "Host web01 web02\n    HostName 10.0.0.%h\n    User svc-ops\n    Port 2222\n    IdentityFile ~/.ssh/farm_ed25519\n    ConnectTimeout 3\n\nHost *.corp\n    User corp\n\nHost !bad *\n    IdentityFile ~/.ssh/id_other\n";

    fn write_config() -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), CONFIG).unwrap();
        f
    }

    #[test]
    fn inventory_wins_over_ssh_config() {
        let f = write_config();
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

    #[test]
    fn imports_concrete_hosts_only() {
        let f = write_config();
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
