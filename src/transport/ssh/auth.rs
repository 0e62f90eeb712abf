//! Authentication in the order OpenSSH users expect: the agent's
//! identities, configured identity files, the default keys, then password.

use super::config::Resolved;
use super::{ConnectError, SecretCache};
use crate::paths::expand_tilde;
use crate::transport::{ConnectOptions, SecretQuestion};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::ExposeSecret;
use ssh2::Session;
use std::path::{Path, PathBuf};

const PROMPT_TRIES: usize = 3;

/// Whether a private key file needs a passphrase.
pub fn key_is_encrypted(text: &str) -> bool {
    if text.contains("ENCRYPTED") {
        return true; // PEM "Proc-Type: 4,ENCRYPTED" and PKCS#8 "ENCRYPTED PRIVATE KEY"
    }
    let Some(body) = text
        .split("-----BEGIN OPENSSH PRIVATE KEY-----")
        .nth(1)
        .and_then(|b| b.split("-----END").next())
    else {
        return false;
    };
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let Ok(raw) = STANDARD.decode(compact) else {
        return false;
    };
    // "openssh-key-v1\0", then the cipher name as an SSH string.
    let rest = match raw.strip_prefix(b"openssh-key-v1\0".as_slice()) {
        Some(r) if r.len() >= 4 => r,
        _ => return false,
    };
    let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    rest.get(4..4 + len).is_some_and(|cipher| cipher != b"none")
}

fn short(path: &Path) -> String {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match home.as_ref().and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) => format!("~/{}", rest.display()),
        None => path.display().to_string(),
    }
}

/// Why a secret was not had from the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum NotAsked {
    #[error("not asked: --batch")]
    Batch,
    #[error("no terminal to ask on")]
    NoTerminal,
    #[error("cancelled")]
    Cancelled,
}

/// Why one way of authenticating did not get in; worded as the
/// parenthesis after the way in [`ConnectError::Auth`]'s list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum AuthError {
    /// libssh2's own words for an agent call that failed.
    #[error("{0}")]
    Agent(String),
    #[error("not reachable: {0}")]
    AgentUnreachable(String),
    #[error("holds no keys")]
    AgentEmpty,
    #[error("needs a passphrase, {0}")]
    NoPassphrase(NotAsked),
    #[error("refused")]
    Refused,
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("{0}")]
    NoPassword(NotAsked),
    #[error("rejected {0} time{s}", s = if *.0 == 1 { "" } else { "s" })]
    Rejected(usize),
}

/// Asks for a secret unless in batch mode or without a way to ask. The
/// caller holds the cache's turn.
fn ask(opts: &ConnectOptions, q: &SecretQuestion) -> Result<secrecy::SecretString, NotAsked> {
    if opts.batch {
        return Err(NotAsked::Batch);
    }
    let Some(prompter) = &opts.prompter else {
        return Err(NotAsked::NoTerminal);
    };
    crate::transport::waiting_for_operator(|| prompter.secret(q)).ok_or(NotAsked::Cancelled)
}

/// Parallel connections take turns with questions; while one asks, the
/// others wait, then first try what it learnt.
fn take_turn(cache: &SecretCache) -> std::sync::MutexGuard<'_, ()> {
    crate::transport::waiting_for_operator(|| {
        cache.asking.lock().unwrap_or_else(|p| p.into_inner())
    })
}

pub fn authenticate(
    session: &Session,
    server: &str,
    r: &Resolved,
    opts: &ConnectOptions,
) -> Result<(), ConnectError> {
    let user = &r.user;
    let candidates = key_candidates(r);
    // Asking which methods the server offers (a "none" request) costs a
    // round trip: the key the order below tries first is tried before,
    // when it needs no passphrase and no agent comes before it.
    let mut tried_first: Option<PathBuf> = None;
    if std::env::var_os("SSH_AUTH_SOCK").is_none()
        && let Some((key, _)) = candidates.iter().find(|(k, _)| k.exists())
        && let Ok(text) = std::fs::read_to_string(key)
        && !key_is_encrypted(&text)
    {
        if session.userauth_pubkey_file(user, None, key, None).is_ok() && session.authenticated() {
            return Ok(());
        }
        tried_first = Some(key.clone());
    }
    let offered = match session.auth_methods(user) {
        Ok(m) => m.to_string(),
        Err(_) if session.authenticated() => return Ok(()),
        Err(e) if super::is_timeout(&e) => {
            return Err(ConnectError::Handshake(format!(
                "authentication timed out after {}s",
                r.connect_timeout.as_secs()
            )));
        }
        Err(e) => {
            return Err(ConnectError::Handshake(format!(
                "asking for authentication methods: {e}"
            )));
        }
    };
    let mut tried: Vec<String> = Vec::new();

    if offered.split(',').any(|m| m == "publickey") {
        if std::env::var_os("SSH_AUTH_SOCK").is_some() {
            match agent_auth(session, user) {
                Ok(true) => return Ok(()),
                Ok(false) => tried.push("ssh-agent (no key accepted)".into()),
                Err(e) => tried.push(format!("ssh-agent ({e})")),
            }
        }
        for (key, configured) in candidates {
            if tried_first.as_ref() == Some(&key) {
                tried.push(format!("key {} (refused)", short(&key)));
                continue;
            }
            let text = match std::fs::read_to_string(&key) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if configured {
                        tried.push(format!("key {} (file not found)", short(&key)));
                    }
                    continue;
                }
                Err(e) => {
                    tried.push(format!("key {} (cannot read: {e})", short(&key)));
                    continue;
                }
            };
            if !key_is_encrypted(&text) {
                match session.userauth_pubkey_file(user, None, &key, None) {
                    Ok(()) if session.authenticated() => return Ok(()),
                    _ => tried.push(format!("key {} (refused)", short(&key))),
                }
                continue;
            }
            match passphrase_auth(session, server, user, &key, opts) {
                Ok(()) => return Ok(()),
                Err(why) => tried.push(format!("key {} ({why})", short(&key))),
            }
        }
    }

    let password_offered = offered.split(',').any(|m| m == "password");
    if password_offered {
        match password_auth(session, server, r, opts) {
            Ok(()) => return Ok(()),
            Err(why) => tried.push(format!("password ({why})")),
        }
    }
    Err(ConnectError::Auth {
        user: user.clone(),
        host: r.known_hosts_name(),
        tried,
        offered,
    })
}

/// The key files to try, in order: the configured ones (`true`), then
/// the default ones not configured.
fn key_candidates(r: &Resolved) -> Vec<(PathBuf, bool)> {
    let mut candidates: Vec<(PathBuf, bool)> =
        r.identity_files.iter().map(|p| (p.clone(), true)).collect();
    for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        let p = expand_tilde(&Path::new("~/.ssh").join(name));
        if !candidates.iter().any(|(c, _)| *c == p) {
            candidates.push((p, false));
        }
    }
    candidates
}

fn agent_auth(session: &Session, user: &str) -> Result<bool, AuthError> {
    let failed = |e: ssh2::Error| AuthError::Agent(e.message().to_string());
    let mut agent = session.agent().map_err(failed)?;
    agent
        .connect()
        .map_err(|e| AuthError::AgentUnreachable(e.message().to_string()))?;
    agent.list_identities().map_err(failed)?;
    let ids = agent.identities().map_err(failed)?;
    if ids.is_empty() {
        return Err(AuthError::AgentEmpty);
    }
    // libssh2's own agent auth tries only the first identity: try each.
    for id in &ids {
        if agent.userauth(user, id).is_ok() && session.authenticated() {
            let _ = agent.disconnect();
            return Ok(true);
        }
    }
    let _ = agent.disconnect();
    Ok(false)
}

fn passphrase_auth(
    session: &Session,
    server: &str,
    user: &str,
    key: &Path,
    opts: &ConnectOptions,
) -> Result<(), AuthError> {
    let cache = &opts.secrets;
    let _turn = take_turn(cache);
    if let Some(known) = cache.passphrase(key)
        && session
            .userauth_pubkey_file(user, None, key, Some(known.expose_secret()))
            .is_ok()
        && session.authenticated()
    {
        return Ok(());
    }
    let q = SecretQuestion::Passphrase {
        server: server.to_string(),
        key: key.to_path_buf(),
    };
    for _ in 0..PROMPT_TRIES {
        let pass = ask(opts, &q).map_err(AuthError::NoPassphrase)?;
        match session.userauth_pubkey_file(user, None, key, Some(pass.expose_secret())) {
            Ok(()) if session.authenticated() => {
                cache.remember_passphrase(key, pass);
                return Ok(());
            }
            // A wrong passphrase: the key file cannot be decrypted.
            Err(e) if e.code() == ssh2::ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_FILE) => {
                continue;
            }
            _ => return Err(AuthError::Refused),
        }
    }
    Err(AuthError::WrongPassphrase)
}

fn password_auth(
    session: &Session,
    server: &str,
    r: &Resolved,
    opts: &ConnectOptions,
) -> Result<(), AuthError> {
    let cache = &opts.secrets;
    let _turn = take_turn(cache);
    let account = format!("{}@{}", r.user, r.host_name);
    // A farm usually shares one service account: try the password this
    // user already gave for another server before asking again.
    for known in cache.passwords_for(&r.user) {
        if session
            .userauth_password(&r.user, known.expose_secret())
            .is_ok()
            && session.authenticated()
        {
            return Ok(());
        }
    }
    let q = SecretQuestion::Password {
        server: server.to_string(),
        user: r.user.clone(),
        host: r.host_name.clone(),
    };
    let mut rejected = 0;
    for _ in 0..PROMPT_TRIES {
        let pass = match ask(opts, &q) {
            Ok(p) => p,
            Err(why) if rejected == 0 => return Err(AuthError::NoPassword(why)),
            Err(_) => break,
        };
        if session
            .userauth_password(&r.user, pass.expose_secret())
            .is_ok()
            && session.authenticated()
        {
            cache.remember_password(&r.user, &account, pass);
            return Ok(());
        }
        rejected += 1;
    }
    Err(AuthError::Rejected(rejected))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each reason as the list of ways tried words it.
    #[test]
    fn auth_errors_are_worded() {
        for (why, text) in [
            (AuthError::Agent("boom".into()), "boom"),
            (
                AuthError::AgentUnreachable("no socket".into()),
                "not reachable: no socket",
            ),
            (AuthError::AgentEmpty, "holds no keys"),
            (
                AuthError::NoPassphrase(NotAsked::Batch),
                "needs a passphrase, not asked: --batch",
            ),
            (AuthError::Refused, "refused"),
            (AuthError::WrongPassphrase, "wrong passphrase"),
            (
                AuthError::NoPassword(NotAsked::NoTerminal),
                "no terminal to ask on",
            ),
            (AuthError::NoPassword(NotAsked::Cancelled), "cancelled"),
            (AuthError::Rejected(1), "rejected 1 time"),
            (AuthError::Rejected(3), "rejected 3 times"),
        ] {
            assert_eq!(why.to_string(), text);
        }
    }

    #[test]
    fn detects_encrypted_keys() {
        assert!(key_is_encrypted(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
        ));
        assert!(key_is_encrypted("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        let mut blob = b"openssh-key-v1\0".to_vec();
        blob.extend_from_slice(&10u32.to_be_bytes());
        blob.extend_from_slice(b"aes256-ctr");
        let enc = format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            STANDARD.encode(&blob)
        );
        assert!(key_is_encrypted(&enc));
        let mut plain = b"openssh-key-v1\0".to_vec();
        plain.extend_from_slice(&4u32.to_be_bytes());
        plain.extend_from_slice(b"none");
        let plain = format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            STANDARD.encode(&plain)
        );
        assert!(!key_is_encrypted(&plain));
    }
}
