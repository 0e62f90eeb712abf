//! How a push, a restore and a rollback try again, decided here once: a
//! file another process holds open for a moment, and a server whose
//! session broke.
//!
//! Held files: Windows refuses to rename, replace or delete a file that
//! another process has open without `FILE_SHARE_DELETE` (ASP.NET reading
//! web.config, an antivirus scanner). Win32-OpenSSH answers that sharing
//! violation with a bare `SSH2_FX_FAILURE` (ERROR_SHARING_VIOLATION is not
//! in `errno_from_Win32Error`, contrib/win32/win32compat/fileio.c) and a
//! REMOVE of a held file with "Permission denied". Such a refusal is tried
//! [`HELD_TRIES`] times in all, with pauses of 100, 200, 400 and 800 ms
//! (1.5 s), as Web Deploy retries a locked file; the caller re-checks the
//! file's state before each further try, since "failure" says nothing of
//! what happened.
//!
//! Lost servers: a server whose session broke is looked for again, on a
//! fresh session, until
//! [`RECONNECT_FACTOR`](super::sessions::RECONNECT_FACTOR) times its
//! connect timeout has passed (long enough for its SSH service to
//! restart), with pauses from 250 ms doubling up to 2 s; one operation gets
//! at most [`SESSIONS_PER_OP`] sessions. A server looked for that long in
//! vain is tried only once more by each later step of the same push, so
//! that one server gone for good costs the wait once. That window
//! ([`Reconnect`](super::sessions::Reconnect)) lives with [`Sessions`],
//! which applies it, below this module and `push::lock`.

use super::sessions::{SessionError, Sessions};
use crate::paths::RemotePath;
use crate::transport::{Transport, TransportError};
use std::time::Duration;

/// How many times a refusal that may be a held file is tried, in all.
pub const HELD_TRIES: u32 = 5;

/// The pause after the `tried`-th refusal (1-based): 100 ms, doubling.
pub fn held_pause(tried: u32) -> Duration {
    Duration::from_millis(100 << tried.saturating_sub(1).min(4))
}

/// The whole wait of a held file given up: the sum of the pauses.
pub fn held_wait() -> Duration {
    (1..HELD_TRIES).map(held_pause).sum()
}

/// Whether a refusal may be a file another process holds open (a sharing
/// violation is "failure" on Windows; a held file's REMOVE "permission
/// denied"). Nothing else is tried again.
pub fn maybe_held(e: &TransportError) -> bool {
    matches!(
        e,
        TransportError::Io { .. } | TransportError::PermissionDenied { .. }
    )
}

/// What a held-file retry ends with.
pub enum Held<T> {
    /// The operation succeeded (at some try).
    Done(T),
    /// The re-check before a try found nothing left to do: `T` says what it found.
    Settled(T),
}

impl<T> Held<T> {
    pub fn into_inner(self) -> T {
        match self {
            Held::Done(v) | Held::Settled(v) => v,
        }
    }
}

/// Runs `op` up to [`HELD_TRIES`] times while it is refused as a held
/// file would be. Before each further try `recheck` looks at the state:
/// `Some(v)` ends it (the operation half-happened or is no longer needed).
/// Given up, the error names `path` and says so ([`TransportError::Held`])
/// with the server's last answer.
pub fn held<T>(
    t: &mut dyn Transport,
    path: &RemotePath,
    mut op: impl FnMut(&mut dyn Transport) -> Result<T, TransportError>,
    mut recheck: impl FnMut(&mut dyn Transport) -> Result<Option<T>, TransportError>,
) -> Result<Held<T>, TransportError> {
    let mut tried = 0;
    loop {
        tried += 1;
        let e = match op(t) {
            Ok(v) => return Ok(Held::Done(v)),
            Err(e) if maybe_held(&e) => e,
            Err(e) => return Err(e),
        };
        if tried >= HELD_TRIES {
            return Err(TransportError::Held {
                path: path.clone(),
                with: None,
                tries: tried,
                waited_ms: held_wait().as_millis() as u32,
                last: e.to_string(),
            });
        }
        std::thread::sleep(held_pause(tried));
        if let Some(v) = recheck(t)? {
            return Ok(Held::Settled(v));
        }
    }
}

/// Removes `path` (gone already is fine), trying a held file again.
pub fn remove_held(t: &mut dyn Transport, path: &RemotePath) -> Result<(), TransportError> {
    held(
        t,
        path,
        |t| match t.remove(path) {
            Err(e) if e.is_not_found() => Ok(()),
            r => r,
        },
        |t| Ok(t.stat(path)?.is_none().then_some(())),
    )
    .map(Held::into_inner)
}

/// Sessions one operation may use: the one in hand and fresh ones.
pub const SESSIONS_PER_OP: u32 = 3;

/// Why an operation could not be run on a server: no session could be
/// had, or the operation failed (not for a lost session, or on each of
/// the sessions it was given).
#[derive(Debug)]
pub enum Reached<E> {
    Session(SessionError),
    Op(E),
}

impl<E: std::fmt::Display> std::fmt::Display for Reached<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reached::Session(e) => write!(f, "{e}"),
            Reached::Op(e) => write!(f, "{e}"),
        }
    }
}

/// An error that may say the session is gone.
pub trait Lost {
    fn is_lost(&self) -> bool;
}

impl Lost for TransportError {
    fn is_lost(&self) -> bool {
        self.is_disconnected()
    }
}

impl Lost for super::lock::LockError {
    fn is_lost(&self) -> bool {
        self.is_disconnected()
    }
}

impl Lost for super::lock::ReleaseError {
    fn is_lost(&self) -> bool {
        match self {
            super::lock::ReleaseError::Transport(e) => e.is_disconnected(),
            super::lock::ReleaseError::Session(_) => true,
            super::lock::ReleaseError::NotOurs(_) => false,
        }
    }
}

/// Runs `op` on a server: on its session (a fresh one when `broken`), and
/// again on a fresh session when the session breaks under it, at most
/// [`SESSIONS_PER_OP`] sessions in all; a fresh session is looked for as
/// [`Reconnect`](super::sessions::Reconnect) says. The one way farmkey tries a server again.
pub fn on_server<T, E: Lost>(
    sessions: &mut Sessions,
    server: &str,
    mut broken: bool,
    mut op: impl FnMut(&mut dyn Transport) -> Result<T, E>,
) -> Result<T, Reached<E>> {
    let mut used = 0;
    loop {
        used += 1;
        let t = if broken {
            sessions.reconnect(server)
        } else {
            sessions.get(server)
        };
        let t = match t {
            Ok(t) => t,
            // A first connection that fails is looked for once more.
            Err(e) if !broken && used < SESSIONS_PER_OP => {
                let _ = e;
                broken = true;
                continue;
            }
            Err(e) => return Err(Reached::Session(e)),
        };
        match op(t) {
            Ok(v) => return Ok(v),
            Err(e) if e.is_lost() && used < SESSIONS_PER_OP => broken = true,
            Err(e) => return Err(Reached::Op(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::sessions::{LOCAL_WINDOW, Reconnect};
    use super::*;
    use crate::inventory::{Server, Target};
    use crate::transport::local::LocalTransport;

    #[test]
    fn a_held_file_is_tried_five_times_over_one_and_a_half_seconds() {
        assert_eq!(
            (1..HELD_TRIES).map(held_pause).collect::<Vec<_>>(),
            [100, 200, 400, 800].map(Duration::from_millis)
        );
        assert_eq!(held_wait(), Duration::from_millis(1500));
        let p = RemotePath::parse("C:\\site\\web.config").unwrap();
        let mut calls = 0;
        let dir = tempfile::tempdir().unwrap();
        let mut t = LocalTransport::new(dir.path());
        let e = held(
            &mut t,
            &p,
            |_| -> Result<(), _> {
                calls += 1;
                Err(TransportError::Io {
                    path: p.clone(),
                    message: "the server answered \"failure\" (SFTP status 4)".into(),
                })
            },
            |_| Ok(None),
        )
        .map(|_| ())
        .unwrap_err();
        assert_eq!(calls, HELD_TRIES);
        let text = e.to_string();
        assert!(
            text.contains("C:\\site\\web.config")
                && text.contains("5 tries")
                && text.contains("another process")
                && text.contains("failure"),
            "{text}"
        );
    }

    /// A lost server is looked for twice its connect timeout (10 s unless
    /// the inventory says otherwise), a local folder for a second.
    #[test]
    fn a_lost_server_is_looked_for_as_long_as_its_connect_timeout_allows() {
        use crate::inventory::SshSettings;
        let ssh = |timeout: Option<u64>| Server {
            name: "web01".into(),
            target: Target::Ssh {
                host: "10.0.0.11".into(),
                settings: SshSettings {
                    connect_timeout: timeout.map(Duration::from_secs),
                    ..Default::default()
                },
            },
            max_config_bytes: 1,
            backup_keep: None,
        };
        let secs = |s: &Server| Reconnect::for_server(s).window.as_secs();
        assert_eq!(secs(&ssh(Some(3))), 6);
        assert_eq!(secs(&ssh(None)), 20);
        let local = Server {
            name: "lab".into(),
            target: Target::Local {
                root: "./lab".into(),
            },
            max_config_bytes: 1,
            backup_keep: None,
        };
        assert_eq!(secs(&local), 1);
        let r = Reconnect::for_server(&ssh(None));
        assert_eq!(
            (1..=6).map(|n| r.pause(n).as_millis()).collect::<Vec<_>>(),
            [0, 250, 500, 1000, 2000, 2000]
        );
    }

    /// Looked for a whole window in vain, a server is tried once by the
    /// later steps of the same push: a server gone for good costs the wait
    /// once.
    #[test]
    fn a_server_looked_for_in_vain_is_tried_once_after() {
        let dir = tempfile::tempdir().unwrap();
        let server = Server {
            name: "lab".into(),
            target: Target::Local {
                root: dir.path().join("gone"),
            },
            max_config_bytes: 1,
            backup_keep: None,
        };
        let mut sessions = Sessions::new(vec![server], Default::default());
        let start = std::time::Instant::now();
        let e = sessions.reconnect("lab").map(|_| ()).unwrap_err();
        assert!(start.elapsed() >= LOCAL_WINDOW, "{e}");
        let SessionError::Reconnect { attempts, .. } = e else {
            panic!("{e}")
        };
        assert!(attempts > 1);
        let e = sessions.reconnect("lab").map(|_| ()).unwrap_err();
        assert!(
            matches!(e, SessionError::Reconnect { attempts: 1, .. }),
            "{e}"
        );
        // Back: found, and looked for in full again the next time.
        std::fs::create_dir(dir.path().join("gone")).unwrap();
        assert!(sessions.reconnect("lab").is_ok());
    }

    #[test]
    fn a_recheck_ends_the_retry_and_other_errors_are_not_retried() {
        let p = RemotePath::parse("C:\\site\\web.config").unwrap();
        let mut calls = 0;
        let dir = tempfile::tempdir().unwrap();
        let mut t = LocalTransport::new(dir.path());
        let r = held(
            &mut t,
            &p,
            |_| -> Result<u8, _> {
                calls += 1;
                Err(TransportError::PermissionDenied { path: p.clone() })
            },
            |_| Ok(Some(7)),
        )
        .unwrap();
        assert!(matches!(r, Held::Settled(7)));
        assert_eq!(calls, 1);
        let mut calls = 0;
        let e = held(
            &mut t,
            &p,
            |_| -> Result<(), _> {
                calls += 1;
                Err(TransportError::Disconnected("gone".into()))
            },
            |_| Ok(None),
        )
        .map(|_| ())
        .unwrap_err();
        assert!(e.is_disconnected());
        assert_eq!(calls, 1);
    }
}
