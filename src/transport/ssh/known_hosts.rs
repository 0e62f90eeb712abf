//! Host keys checked against OpenSSH's own `known_hosts` file, strictly.
//!
//! libssh2 matches host names (plain, hashed `|1|...`, `[host]:port`) but,
//! asked through the ssh2 crate, compares a key with every key stored for the
//! host whatever its type. So lines are grouped by key type, and each group
//! is consulted only for keys of its own type.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};
use ssh2::{CheckResult, HostKeyType, KnownHostFileKind, Session};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// `SHA256:...` as OpenSSH prints it.
pub fn fingerprint(key: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(key)))
}

/// The name known_hosts uses for a key type.
pub fn type_name(t: HostKeyType) -> &'static str {
    match t {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

/// The libssh2 host-key methods that produce a key of a stored type.
fn methods_for(stored_type: &str) -> &'static [&'static str] {
    match stored_type {
        "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
        "ssh-ed25519" => &["ssh-ed25519"],
        "ecdsa-sha2-nistp256" => &["ecdsa-sha2-nistp256"],
        "ecdsa-sha2-nistp384" => &["ecdsa-sha2-nistp384"],
        "ecdsa-sha2-nistp521" => &["ecdsa-sha2-nistp521"],
        "ssh-dss" => &["ssh-dss"],
        _ => &[],
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyVerdict {
    Match,
    /// A key of this type is stored for the host and differs.
    Changed,
    /// The key is listed under `@revoked`.
    Revoked,
    /// Nothing of this type is stored for the host; `other_types` are.
    Unknown {
        other_types: Vec<String>,
    },
}

/// The lines of a known_hosts file, grouped by key type.
pub struct KnownHostsFile {
    pub path: PathBuf,
    groups: Vec<(String, Vec<String>)>,
    revoked: Vec<String>,
}

impl KnownHostsFile {
    /// Reads the file; a missing file holds nothing.
    pub fn load(path: &Path) -> io::Result<KnownHostsFile> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let mut file = KnownHostsFile {
            path: path.to_path_buf(),
            groups: Vec::new(),
            revoked: Vec::new(),
        };
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields[0] == "@revoked" {
                if let Some(key) = fields.get(3) {
                    file.revoked.push((*key).to_string());
                }
                continue;
            }
            if fields[0].starts_with('@') || fields.len() < 3 {
                continue; // @cert-authority and malformed lines
            }
            let key_type = fields[1].to_string();
            match file.groups.iter_mut().find(|(t, _)| *t == key_type) {
                Some((_, lines)) => lines.push(line.to_string()),
                None => file.groups.push((key_type, vec![line.to_string()])),
            }
        }
        Ok(file)
    }

    /// Checks `host`:`port` against the lines of one key type.
    fn check_group(
        &self,
        session: &Session,
        key_type: &str,
        host: &str,
        port: u16,
        key: &[u8],
    ) -> CheckResult {
        let Some((_, lines)) = self.groups.iter().find(|(t, _)| t == key_type) else {
            return CheckResult::NotFound;
        };
        let Ok(mut kh) = session.known_hosts() else {
            return CheckResult::Failure;
        };
        for line in lines {
            // A line libssh2 cannot parse (a newer key type) is skipped, as
            // OpenSSH skips what it does not know.
            let _ = kh.read_str(line, KnownHostFileKind::OpenSSH);
        }
        kh.check_port(host, port, key)
    }

    /// Key types stored for the host, in file order.
    pub fn stored_types(&self, session: &Session, host: &str, port: u16) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(t, _)| {
                // A key that cannot match gives Mismatch exactly when the host is listed.
                matches!(
                    self.check_group(session, t, host, port, b"\0"),
                    CheckResult::Mismatch
                )
            })
            .map(|(t, _)| t.clone())
            .collect()
    }

    pub fn check(
        &self,
        session: &Session,
        host: &str,
        port: u16,
        key: &[u8],
        key_type: &str,
    ) -> HostKeyVerdict {
        let encoded = STANDARD.encode(key);
        if self.revoked.contains(&encoded) {
            return HostKeyVerdict::Revoked;
        }
        match self.check_group(session, key_type, host, port, key) {
            CheckResult::Match => HostKeyVerdict::Match,
            CheckResult::Mismatch => HostKeyVerdict::Changed,
            CheckResult::NotFound | CheckResult::Failure => HostKeyVerdict::Unknown {
                other_types: self
                    .stored_types(session, host, port)
                    .into_iter()
                    .filter(|t| t != key_type)
                    .collect(),
            },
        }
    }

    /// Host-key methods in the order to offer them: those of the types
    /// already stored first, so that a server with several keys presents
    /// one that can be checked.
    pub fn preference(&self, session: &Session, host: &str, port: u16) -> Option<String> {
        let supported = session.supported_algs(ssh2::MethodType::HostKey).ok()?;
        let stored = self.stored_types(session, host, port);
        if stored.is_empty() {
            return None;
        }
        let mut order: Vec<&str> = Vec::new();
        for t in &stored {
            for m in methods_for(t) {
                if supported.contains(m) && !order.contains(m) {
                    order.push(m);
                }
            }
        }
        for m in &supported {
            if !order.contains(m) {
                order.push(m);
            }
        }
        Some(order.join(","))
    }
}

static APPEND_LOCK: Mutex<()> = Mutex::new(());

/// Appends a host key the way `StrictHostKeyChecking=accept-new` does.
pub fn append(path: &Path, host: &str, key_type: &str, key: &[u8]) -> io::Result<()> {
    let _guard = APPEND_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    }
    let needs_newline = fs::read(path)
        .map(|b| !b.is_empty() && !b.ends_with(b"\n"))
        .unwrap_or(false);
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let line = format!(
        "{}{host} {key_type} {}\n",
        if needs_newline { "\n" } else { "" },
        STANDARD.encode(key)
    );
    f.write_all(line.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_openssh_style() {
        // sha256("") in unpadded base64
        assert_eq!(
            fingerprint(b""),
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }

    #[test]
    fn groups_lines_by_type_and_keeps_revoked() {
        let f = tempfile::NamedTempFile::new().unwrap();
        fs::write(
            f.path(),
            "# comment\nweb01 ssh-ed25519 AAAA\n[web02]:2222 ssh-rsa BBBB\n@revoked * ssh-rsa CCCC\n@cert-authority * ssh-rsa DDDD\n|1|salt|hash ssh-ed25519 EEEE\n",
        )
        .unwrap();
        let kh = KnownHostsFile::load(f.path()).unwrap();
        assert_eq!(kh.groups.len(), 2);
        assert_eq!(kh.groups[0].1.len(), 2);
        assert_eq!(kh.revoked, vec!["CCCC".to_string()]);
        assert!(
            KnownHostsFile::load(Path::new("/nonexistent/kh"))
                .unwrap()
                .groups
                .is_empty()
        );
    }

    #[test]
    fn append_adds_a_line_and_creates_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".ssh").join("known_hosts");
        append(&path, "[127.0.0.1]:2222", "ssh-ed25519", b"key").unwrap();
        append(&path, "host", "ssh-rsa", b"k2").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "[127.0.0.1]:2222 ssh-ed25519 a2V5\nhost ssh-rsa azI=\n"
        );
    }
}
