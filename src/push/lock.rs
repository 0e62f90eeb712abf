//! One writer per site: a lock file beside the site's `web.config`, made by
//! an exclusive create on every server before the first write and removed
//! at the end. Its name ends in `.config`, which IIS refuses to serve.

use crate::paths::RemotePath;
use crate::transport::{NewFile, Transport, TransportError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, SystemTime};

/// `web.config` → `web.farmkey-lock.config` beside it.
pub fn lock_path(file: &RemotePath) -> RemotePath {
    let name = file.file_name().unwrap_or("web.config");
    let stem = name.strip_suffix(".config").unwrap_or(name);
    file.with_file_name(&format!("{stem}.farmkey-lock.config"))
        .unwrap_or_else(|_| file.clone())
}

/// What a lock file holds: who is writing, from where, since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub push_id: String,
    pub site: String,
    pub user: String,
    pub host: String,
    pub pid: u32,
    /// RFC 3339, UTC.
    pub time: String,
}

impl LockInfo {
    /// A lock for this process, now.
    pub fn mine(push_id: &str, site: &str) -> LockInfo {
        LockInfo {
            push_id: push_id.to_string(),
            site: site.to_string(),
            user: super::audit::local_user(),
            host: host_name(),
            pid: std::process::id(),
            time: super::audit::now(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.extend_from_slice(b"\r\n");
        v
    }
}

/// A lock found on a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub server: String,
    pub path: RemotePath,
    /// `None` when the file is not a farmkey lock farmkey can read.
    pub info: Option<LockInfo>,
    /// When the file was last written (seconds since the epoch).
    pub modified: Option<u64>,
}

impl Holder {
    pub fn push_id(&self) -> Option<&str> {
        self.info.as_ref().map(|i| i.push_id.as_str())
    }

    /// How long the lock has been held.
    pub fn age(&self) -> Option<Duration> {
        let since = self
            .info
            .as_ref()
            .and_then(|i| humantime::parse_rfc3339(&i.time).ok())
            .or_else(|| {
                self.modified
                    .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
            })?;
        SystemTime::now().duration_since(since).ok()
    }

    /// Held by a farmkey process of this machine that still runs.
    pub fn alive_here(&self) -> bool {
        self.info
            .as_ref()
            .is_some_and(|i| i.host == host_name() && process_alive(i.pid))
    }

    /// Held by a farmkey process of this machine that has ended.
    pub fn dead_here(&self) -> bool {
        self.info
            .as_ref()
            .is_some_and(|i| i.host == host_name() && !process_alive(i.pid))
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let age = self.age().map_or_else(
            || "age unknown".to_string(),
            |d| format!("{} ago", age_text(d)),
        );
        match &self.info {
            Some(i) => {
                write!(
                    f,
                    "{} is locked by push {} of {} on {} (pid {}) since {} ({age})",
                    self.server, i.push_id, i.user, i.host, i.pid, i.time
                )?;
                if self.dead_here() {
                    f.write_str("; that process is no longer running: the lock is stale")?;
                }
                Ok(())
            }
            None => write!(
                f,
                "{} holds a lock file farmkey cannot read, {} ({age})",
                self.server, self.path
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    #[error("{0}")]
    Held(Box<Holder>),
    #[error("{0} (a push of this machine that still runs holds it; it is never broken)")]
    Alive(Box<Holder>),
    /// The exclusive create found something at the lock's name that
    /// reading does not find: a link to nothing. Trying again cannot help.
    #[error(
        "cannot take the lock on {server}: {path} is at the lock's name but is no file (a link whose target does not exist), and farmkey never writes through it: remove it, then push again"
    )]
    NotAFile { server: String, path: RemotePath },
    #[error("cannot take the lock {path}: {error}")]
    Transport {
        path: RemotePath,
        error: TransportError,
    },
}

impl LockError {
    pub fn is_disconnected(&self) -> bool {
        matches!(self, LockError::Transport { error, .. } if error.is_disconnected())
    }
}

/// Reads the lock at `path`; `Ok(None)` when there is none.
pub fn read_holder(
    t: &mut dyn Transport,
    server: &str,
    path: &RemotePath,
) -> Result<Option<Holder>, TransportError> {
    let bytes = match t.read(path) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let modified = t.stat(path).ok().flatten().and_then(|s| s.modified);
    Ok(Some(Holder {
        server: server.to_string(),
        path: path.clone(),
        info: serde_json::from_slice(&bytes).ok(),
        modified,
    }))
}

/// How the lock was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    Fresh,
    /// After breaking this stale lock, as the operator asked.
    Broke(Box<Holder>),
}

/// How many times `acquire` looks at a lock that is coming or going.
const LOOKS: u32 = 5;
/// The pause before looking again at a lock being written.
const LOOK_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Takes the lock at `path` by an exclusive create. A lock already there is
/// only broken when it is exactly `breakable` (the one the plan showed and
/// the operator asked to break) and no process of this machine holds it.
pub fn acquire(
    t: &mut dyn Transport,
    server: &str,
    path: &RemotePath,
    mine: &LockInfo,
    breakable: Option<&Holder>,
) -> Result<Taken, LockError> {
    let fail = |error| LockError::Transport {
        path: path.clone(),
        error,
    };
    // Another push may be releasing its lock right now (gone between the
    // create and the read), or be between its own create and write (an
    // empty lock for a moment): look again a few times before judging.
    let mut looks = 0;
    let holder = loop {
        looks += 1;
        let again = looks < LOOKS;
        match t.create_new(path, &mine.bytes(), &NewFile::default()) {
            Ok(()) => return Ok(Taken::Fresh),
            Err(TransportError::Exists { .. }) => {}
            Err(e) => {
                // Created, then not written (a full disk): an unreadable lock
                // would stop the next push. A lock someone holds is never removed.
                if !e.is_disconnected()
                    && matches!(read_holder(t, server, path), Ok(Some(h)) if h.info.is_none())
                {
                    let _ = t.remove(path);
                }
                return Err(fail(e));
            }
        }
        match read_holder(t, server, path).map_err(fail)? {
            Some(h) if h.info.is_none() && again => std::thread::sleep(LOOK_PAUSE),
            Some(h) => break h,
            None if again => {
                // Removed since the create (or removed and made again by
                // another push since the read): look again; a name that
                // stays there without a file is judged at the last look.
            }
            None => {
                // The name is listed: it is there, and no file (a dangling
                // link); not listed: locks coming and going all along.
                let name = path.file_name().unwrap_or_default();
                let listed =
                    path.parent()
                        .and_then(|dir| t.list(&dir).ok())
                        .is_some_and(|entries| {
                            entries
                                .iter()
                                .any(|e| crate::paths::same_name(&e.name, name))
                        });
                return Err(if listed {
                    LockError::NotAFile {
                        server: server.to_string(),
                        path: path.clone(),
                    }
                } else {
                    fail(TransportError::Io {
                        path: path.clone(),
                        message: "the lock vanished while farmkey read it; try again".into(),
                    })
                });
            }
        }
    };
    if holder.push_id() == Some(mine.push_id.as_str()) {
        return Ok(Taken::Fresh); // ours: taken before a reconnection
    }
    let allowed = breakable.is_some_and(|b| b.info == holder.info && b.modified == holder.modified);
    if !allowed {
        return Err(LockError::Held(Box::new(holder)));
    }
    if holder.alive_here() {
        return Err(LockError::Alive(Box::new(holder)));
    }
    t.remove(path).map_err(fail)?;
    match t.create_new(path, &mine.bytes(), &NewFile::default()) {
        Ok(()) => Ok(Taken::Broke(Box::new(holder))),
        Err(TransportError::Exists { .. }) => {
            let now = read_holder(t, server, path).map_err(fail)?;
            Err(LockError::Held(Box::new(now.unwrap_or(holder))))
        }
        Err(e) => Err(fail(e)),
    }
}

/// Why a lock of this push could not be removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// Someone broke it and took it: theirs now.
    #[error("left alone: it is no longer this push's ({0})")]
    NotOurs(Box<Holder>),
    #[error("{0}")]
    Transport(#[from] TransportError),
    #[error("{0}")]
    Session(#[from] super::sessions::SessionError),
}

/// Removes the lock if it is still this push's. `Ok` when no lock of this
/// push is left.
pub fn release(
    t: &mut dyn Transport,
    server: &str,
    path: &RemotePath,
    push_id: &str,
) -> Result<(), ReleaseError> {
    match read_holder(t, server, path)? {
        None => Ok(()),
        Some(h) if h.push_id() == Some(push_id) => match t.remove(path) {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        },
        Some(h) => Err(ReleaseError::NotOurs(Box::new(h))),
    }
}

/// `42s`, `5m`, `3h 20m`, `12d 4h`: precise enough to judge a lock.
fn age_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// This machine's name, as written in locks.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // or truncates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn process_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid as i32, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::local::LocalTransport;

    fn setup() -> (tempfile::TempDir, LocalTransport, RemotePath) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("C:/site")).unwrap();
        let t = LocalTransport::new(dir.path());
        let file = RemotePath::parse("C:\\site\\web.config").unwrap();
        (dir, t, lock_path(&file))
    }

    #[test]
    fn a_dangling_link_at_the_lock_name_is_named_and_left_alone() {
        let (dir, mut t, path) = setup();
        let link = dir.path().join("C:/site/web.farmkey-lock.config");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        let me = LockInfo::mine("p1", "Flowtime");
        let err = acquire(&mut t, "web01", &path, &me, None).unwrap_err();
        assert_eq!(
            err,
            LockError::NotAFile {
                server: "web01".into(),
                path: path.clone()
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("C:\\site\\web.farmkey-lock.config")
                && text.contains("link")
                && !text.contains("try again"),
            "{text}"
        );
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert!(!dir.path().join("nowhere").exists());
    }

    #[test]
    fn ages_are_short() {
        let t = |s| age_text(Duration::from_secs(s));
        assert_eq!(
            [
                t(5),
                t(300),
                t(3 * 3600 + 1200),
                t(12 * 86400 + 4 * 3600 + 7)
            ],
            ["5s", "5m", "3h 20m", "12d 4h"]
        );
    }

    #[test]
    fn the_lock_is_named_so_that_iis_does_not_serve_it() {
        let file = RemotePath::parse("C:\\inetpub\\Flowtime\\web.config").unwrap();
        assert_eq!(
            lock_path(&file).to_string(),
            "C:\\inetpub\\Flowtime\\web.farmkey-lock.config"
        );
    }

    #[test]
    fn a_second_push_is_refused_naming_the_holder_until_released() {
        let (_dir, mut t, path) = setup();
        let a = LockInfo::mine("p1", "Flowtime");
        let mut b = LockInfo::mine("p2", "Flowtime");
        assert_eq!(acquire(&mut t, "web01", &path, &a, None), Ok(Taken::Fresh));
        // Taking it again after a reconnection is not a conflict.
        assert_eq!(acquire(&mut t, "web01", &path, &a, None), Ok(Taken::Fresh));
        let err = acquire(&mut t, "web01", &path, &b, None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("web01 is locked by push p1 of") && text.contains("ago"),
            "{text}"
        );
        // Another push's lock is never released by this one.
        assert!(release(&mut t, "web01", &path, "p2").is_err());
        release(&mut t, "web01", &path, "p1").unwrap();
        release(&mut t, "web01", &path, "p1").unwrap();
        b.time = super::super::audit::now();
        assert_eq!(acquire(&mut t, "web01", &path, &b, None), Ok(Taken::Fresh));
    }

    #[test]
    fn a_stale_lock_is_broken_only_as_shown_and_never_a_live_one() {
        let (_dir, mut t, path) = setup();
        let mut stale = LockInfo::mine("old", "Flowtime");
        stale.host = "jump9".into();
        stale.time = "2020-01-01T00:00:00Z".into();
        t.create_new(&path, &stale.bytes(), &NewFile::default())
            .unwrap();
        let shown = read_holder(&mut t, "web01", &path).unwrap().unwrap();
        assert!(shown.to_string().contains("on jump9"), "{shown}");
        let me = LockInfo::mine("new", "Flowtime");
        // Not asked: refused.
        assert!(matches!(
            acquire(&mut t, "web01", &path, &me, None),
            Err(LockError::Held(_))
        ));
        // Asked, for the lock the plan showed: broken and taken.
        assert!(matches!(
            acquire(&mut t, "web01", &path, &me, Some(&shown)),
            Ok(Taken::Broke(_))
        ));
        release(&mut t, "web01", &path, "new").unwrap();
        // A lock of a process of this machine that still runs is never broken.
        let live = LockInfo::mine("live", "Flowtime");
        t.create_new(&path, &live.bytes(), &NewFile::default())
            .unwrap();
        let shown = read_holder(&mut t, "web01", &path).unwrap().unwrap();
        assert!(shown.alive_here());
        assert!(matches!(
            acquire(&mut t, "web01", &path, &me, Some(&shown)),
            Err(LockError::Alive(_))
        ));
    }
}
