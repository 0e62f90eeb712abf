//! One writer per site: a lock file beside the site's `web.config`, made by
//! an exclusive create on every server before the first write and removed
//! at the end. Its name ends in `.config`, which IIS refuses to serve.
//!
//! A stale lock is broken by claiming it: renamed to a name of this push's
//! own ([`claim_path`]), checked to be the lock the plan showed, then the
//! lock is taken by an exclusive create and the claim removed. SFTP has no
//! compare-and-swap; the rename is the one step only one push can win:
//! `process_rename` (sftp-server.c, Win32-OpenSSH's too) answers
//! NO_SUCH_FILE when the name is gone, and renames a file by `link` then
//! `unlink` of the old name, so of two renames racing, the one whose unlink
//! finds the name gone fails and removes its own new link. The claim name
//! is new, so the rename never replaces anything: `w32_rename`
//! (contrib/win32/win32compat/misc.c, v8.1) deletes an existing target,
//! and 8.6 and later replace it.

use crate::paths::RemotePath;
use crate::transport::{NewFile, Transport, TransportError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

pub use crate::lock_names::{claim_path, is_claim_of, lock_path};

/// The claims of `lock` in its folder: locks a push was breaking when it
/// stopped (or is breaking right now), each with the lock it moved there.
/// Never a lock themselves, never ignored: the plan names them.
pub fn claims(
    t: &mut dyn Transport,
    server: &str,
    lock: &RemotePath,
) -> Result<Vec<Holder>, TransportError> {
    let Some(dir) = lock.parent() else {
        return Ok(Vec::new());
    };
    let entries = match t.list(&dir) {
        Ok(e) => e,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in entries
        .iter()
        .filter(|e| !e.is_dir && is_claim_of(lock, &e.name))
    {
        let Ok(path) = lock.with_file_name(&e.name) else {
            continue;
        };
        if let Some(h) = read_holder(t, server, &path)? {
            out.push(h);
        }
    }
    Ok(out)
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
    /// When the process started: clock ticks since boot (`/proc/PID/stat`
    /// field 22), so that a pid reused by another process is not taken for
    /// the holder. Absent in locks of older farmkey versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
    /// The machine's boot time (`btime` of `/proc/stat`, seconds since the
    /// epoch): ticks since boot mean nothing after a reboot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<u64>,
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
            started: process_start(std::process::id()),
            boot: boot_time(),
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
        self.here() == Some(Process::Running)
    }

    /// Held by a farmkey process of this machine that has ended.
    pub fn dead_here(&self) -> bool {
        matches!(self.here(), Some(Process::Ended | Process::Reused))
    }

    /// The holding process, when the lock was made on this machine.
    fn here(&self) -> Option<Process> {
        let i = self.info.as_ref().filter(|i| i.host == host_name())?;
        Some(process_state(i))
    }
}

/// What became of the process that made a lock of this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Process {
    Running,
    Ended,
    /// Its pid now belongs to a process started at another time.
    Reused,
}

/// A lock without a start time (older farmkey) is judged by its pid alone.
fn process_state(i: &LockInfo) -> Process {
    if !process_alive(i.pid) {
        return Process::Ended;
    }
    let Some(started) = i.started else {
        return Process::Running;
    };
    // Another boot: the ticks of the two are not comparable, and the
    // process that made the lock ended with the old boot. A second of
    // slack: the kernel derives btime from the clock.
    let same_boot = match (i.boot, boot_time()) {
        (Some(then), Some(now)) => then.abs_diff(now) <= 1,
        _ => true,
    };
    match process_start(i.pid) {
        Some(now) if same_boot && now == started => Process::Running,
        // Gone between the two looks, or another process.
        Some(_) => Process::Reused,
        None if process_alive(i.pid) => Process::Running,
        None => Process::Ended,
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
                match self.here() {
                    Some(Process::Ended) => {
                        f.write_str("; that process is no longer running: the lock is stale")?
                    }
                    Some(Process::Reused) => f.write_str(
                        "; that process is no longer running (its pid now belongs to a process started later): the lock is stale",
                    )?,
                    _ => {}
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
    /// Breaking the stale lock moved another push's fresh lock to this
    /// push's claim name, and a third push took the lock name before it
    /// could be put back: it is left at the claim name, never removed.
    #[error(
        "cannot take the lock on {server}: breaking the stale lock moved the lock of push {moved} to {claim}, and {now} before it could be put back; that push no longer holds the lock: stop it, then remove {claim}"
    )]
    Displaced {
        server: String,
        claim: RemotePath,
        moved: String,
        now: Box<Holder>,
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
const LOOK_PAUSE: Duration = Duration::from_millis(100);
/// How long a push that lost the claim of a stale lock waits for the
/// winner's lock to appear, and any push for a lock another push has
/// created to be written.
const TAKER_WAIT: Duration = Duration::from_secs(10);

/// The same lock: what the plan showed is what is there.
fn same_lock(a: &Holder, b: &Holder) -> bool {
    a.info == b.info && a.modified == b.modified
}

/// Takes the lock at `path` by an exclusive create. A lock already there is
/// only broken when it is exactly `breakable` (the one the plan showed and
/// the operator asked to break) and no process of this machine holds it;
/// of several pushes breaking it at once, one takes the lock and the others
/// are refused naming it ([`LockError::Held`]).
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
    let mut being_written: Option<Instant> = None;
    let mut holder = loop {
        looks += 1;
        let again = looks < LOOKS;
        // Asked to break a lock: it is looked at before anything is made,
        // so that a push never takes the name while another has the stale
        // lock claimed and is about to take it (or to put back a lock it
        // moved by mistake).
        if looks == 1 && breakable.is_some() {
            match read_holder(t, server, path).map_err(fail)? {
                Some(h) if h.info.is_some() => break h,
                Some(_) => {}
                // Claimed by another push (this push's own claim is the
                // stale lock it broke in a session lost half-way).
                None if claims(t, server, path).map_err(fail)?.iter().any(|c| {
                    c.path != claim_path(path, &mine.push_id)
                        && breakable.is_some_and(|b| same_lock(b, c))
                }) =>
                {
                    break await_taker(t, server, path)?;
                }
                // Gone (removed by hand): taken fresh.
                None => {}
            }
        }
        match t.create_new(path, &mine.bytes(), &NewFile::default()) {
            // A claim of this push left by a session lost half-way through
            // a break: the stale lock it broke.
            Ok(()) if breakable.is_some() => {
                return Ok(own_claim(t, server, path, mine)?
                    .map_or(Taken::Fresh, |h| Taken::Broke(Box::new(h))));
            }
            Ok(()) => return Ok(Taken::Fresh),
            Err(TransportError::Exists { .. }) => {}
            // OpenSSH answers an exclusive create of an existing file with
            // a bare failure, told from others by looking whether a file
            // is there (SshTransport::create_new): a lock claimed or
            // released in between has left it nothing to find.
            Err(TransportError::Io { .. })
                if again && matches!(read_holder(t, server, path), Ok(None)) =>
            {
                if breakable.is_some() {
                    break await_taker(t, server, path)?;
                }
                continue;
            }
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
            // Another push between its create and its write: waited for
            // by the clock, not by looks, since a busy server can take
            // longer than a few looks between the two.
            Some(h)
                if h.info.is_none()
                    && (again || being_written.is_some_and(|d| Instant::now() < d)) =>
            {
                being_written.get_or_insert(Instant::now() + TAKER_WAIT);
                looks = looks.min(LOOKS - 1);
                std::thread::sleep(LOOK_PAUSE);
            }
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
    for _ in 0..LOOKS {
        if holder.push_id() == Some(mine.push_id.as_str()) {
            // Ours: taken before a reconnection, perhaps by breaking one.
            let broke = match breakable {
                Some(_) => own_claim(t, server, path, mine)?,
                None => None,
            };
            return Ok(broke.map_or(Taken::Fresh, |h| Taken::Broke(Box::new(h))));
        }
        // Read, then gone before its stat: claimed by another push.
        if holder.modified.is_none()
            && breakable.is_some_and(|b| b.info == holder.info && b.modified.is_some())
        {
            holder = await_taker(t, server, path)?;
            continue;
        }
        let allowed = breakable.is_some_and(|b| same_lock(b, &holder));
        // The stale lock read, then broken and the lock taken by another
        // push before the stat: the time is the new lock's. Looked at again.
        if !allowed && breakable.is_some_and(|b| b.info == holder.info) {
            holder = match read_holder(t, server, path).map_err(fail)? {
                Some(h) => h,
                None => await_taker(t, server, path)?,
            };
            continue;
        }
        if !allowed {
            return Err(LockError::Held(Box::new(holder)));
        }
        if holder.alive_here() {
            return Err(LockError::Alive(Box::new(holder)));
        }
        match break_stale(t, server, path, mine, holder)? {
            Ok(taken) => return Ok(taken),
            // Another push claimed it first: the lock is the one it takes.
            Err(()) => holder = await_taker(t, server, path)?,
        }
    }
    Err(LockError::Held(Box::new(holder)))
}

/// Breaks `stale` and takes the lock in its place; `Err(())` when another
/// push claimed it first. Every step is one SFTP request that fails rather
/// than undo another push's: the rename to this push's claim name (only one
/// push moves the lock), the exclusive create (only one push makes it).
fn break_stale(
    t: &mut dyn Transport,
    server: &str,
    path: &RemotePath,
    mine: &LockInfo,
    stale: Holder,
) -> Result<Result<Taken, ()>, LockError> {
    let fail = |p: &RemotePath, error| LockError::Transport {
        path: p.clone(),
        error,
    };
    let claim = claim_path(path, &mine.push_id);
    match t.rename(path, &claim) {
        Ok(()) => {}
        Err(e) if e.is_not_found() => return Ok(Err(())),
        Err(e) => return Err(fail(path, e)),
    }
    // What was moved: the lock shown, or one another push took since it
    // was read (it broke the stale one first): that one is put back.
    match read_holder(t, server, &claim).map_err(|e| fail(&claim, e))? {
        Some(moved) if same_lock(&moved, &stale) => {}
        Some(moved) => {
            return Err(match t.rename(&claim, path) {
                Ok(()) => LockError::Held(Box::new(Holder {
                    path: path.clone(),
                    ..moved
                })),
                Err(TransportError::Exists { .. }) => {
                    let now = read_holder(t, server, path).ok().flatten();
                    LockError::Displaced {
                        server: server.to_string(),
                        claim: claim.clone(),
                        moved: moved.push_id().unwrap_or("(unreadable)").to_string(),
                        now: Box::new(now.unwrap_or(moved)),
                    }
                }
                Err(e) => fail(&claim, e),
            });
        }
        None => return Ok(Err(())),
    }
    match t.create_new(path, &mine.bytes(), &NewFile::default()) {
        Ok(()) => {}
        Err(TransportError::Exists { .. }) => {
            // A push that found the name empty took it: the stale lock is
            // broken as asked, and the lock is that push's.
            t.remove(&claim).map_err(|e| fail(&claim, e))?;
            return match read_holder(t, server, path).map_err(|e| fail(path, e))? {
                Some(h) => Err(LockError::Held(Box::new(h))),
                None => Ok(Err(())),
            };
        }
        Err(e) => {
            // Nothing of this push's is left: the stale lock goes back.
            if !e.is_disconnected() {
                if matches!(read_holder(t, server, path), Ok(Some(h)) if h.info.is_none()) {
                    let _ = t.remove(path);
                }
                let _ = t.rename(&claim, path);
            }
            return Err(fail(path, e));
        }
    }
    match t.remove(&claim) {
        Ok(()) => Ok(Ok(Taken::Broke(Box::new(stale)))),
        Err(e) if e.is_not_found() => Ok(Ok(Taken::Broke(Box::new(stale)))),
        // Taken again on a fresh session, which removes the claim.
        Err(e) if e.is_disconnected() => Err(fail(&claim, e)),
        Err(e) => {
            let _ = t.remove(path);
            Err(fail(&claim, e))
        }
    }
}

/// This push's claim, removed: the stale lock it broke in a session lost
/// half-way.
fn own_claim(
    t: &mut dyn Transport,
    server: &str,
    path: &RemotePath,
    mine: &LockInfo,
) -> Result<Option<Holder>, LockError> {
    let claim = claim_path(path, &mine.push_id);
    let fail = |error| LockError::Transport {
        path: claim.clone(),
        error,
    };
    let Some(h) = read_holder(t, server, &claim).map_err(fail)? else {
        return Ok(None);
    };
    match t.remove(&claim) {
        Ok(()) => Ok(Some(h)),
        Err(e) if e.is_not_found() => Ok(Some(h)),
        Err(e) => Err(fail(e)),
    }
}

/// The lock another push takes after claiming the stale one. The name
/// stays empty meanwhile, and is never created then: a push that moved a
/// fresh lock by mistake may be putting it back.
fn await_taker(
    t: &mut dyn Transport,
    server: &str,
    path: &RemotePath,
) -> Result<Holder, LockError> {
    let deadline = std::time::Instant::now() + TAKER_WAIT;
    loop {
        let found = read_holder(t, server, path).map_err(|error| LockError::Transport {
            path: path.clone(),
            error,
        })?;
        let last = std::time::Instant::now() >= deadline;
        match found {
            Some(h) if h.info.is_some() || last => return Ok(h),
            None if last => {
                return Err(LockError::Transport {
                    path: path.clone(),
                    error: TransportError::Io {
                        path: path.clone(),
                        message: "another push claimed the stale lock and has not taken the lock (its claim beside it is named by the next plan); try again".into(),
                    },
                });
            }
            _ => std::thread::sleep(LOOK_PAUSE / 4),
        }
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

impl ReleaseError {
    /// The server answered, and refused the removal: the lock's folder is
    /// read-only to farmkey's account (not a server out of reach).
    pub fn folder_read_only(&self) -> bool {
        matches!(
            self,
            ReleaseError::Transport(
                TransportError::ReadOnly { .. } | TransportError::PermissionDenied { .. }
            )
        )
    }
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
pub fn age_text(d: Duration) -> String {
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

/// When process `pid` started, in clock ticks since boot: field 22 of
/// `/proc/PID/stat` (proc(5)); `None` where there is no such file.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields are counted from the last `)`, which is followed by field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// The machine's boot time, seconds since the epoch (`btime`, /proc/stat).
fn boot_time() -> Option<u64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
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

    /// Runs `hook` on the inner transport before the `nth` call of `op`.
    type Hook = Box<dyn FnOnce(&mut LocalTransport) + Send>;

    struct Interleave {
        inner: LocalTransport,
        op: &'static str,
        calls: u32,
        /// Each hook runs before the call of `op` of its number (1-based).
        hooks: Vec<(u32, Hook)>,
    }

    impl Interleave {
        /// A local transport on `root` running `hooks` before the calls of
        /// `op` they are numbered for.
        fn on(root: &std::path::Path, op: &'static str, hooks: Vec<(u32, Hook)>) -> Interleave {
            Interleave {
                inner: LocalTransport::new(root),
                op,
                calls: 0,
                hooks,
            }
        }

        fn at(&mut self, op: &str) {
            if op == self.op {
                self.calls += 1;
                if let Some(at) = self.hooks.iter().position(|(n, _)| *n == self.calls) {
                    let (_, h) = self.hooks.remove(at);
                    h(&mut self.inner);
                }
            }
        }
    }

    impl Transport for Interleave {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        fn read(&mut self, p: &RemotePath) -> Result<crate::bytes::FileBytes, TransportError> {
            self.inner.read(p)
        }
        fn stat(
            &mut self,
            p: &RemotePath,
        ) -> Result<Option<crate::transport::FileStat>, TransportError> {
            self.at("stat");
            self.inner.stat(p)
        }
        fn lstat(
            &mut self,
            p: &RemotePath,
        ) -> Result<Option<crate::transport::FileStat>, TransportError> {
            self.inner.lstat(p)
        }
        fn readlink(&mut self, p: &RemotePath) -> Result<String, TransportError> {
            self.inner.readlink(p)
        }
        fn link_end(
            &mut self,
            p: &RemotePath,
        ) -> Result<crate::transport::LinkEnd, TransportError> {
            self.inner.link_end(p)
        }
        fn set_attrs(&mut self, p: &RemotePath, n: &NewFile) -> Result<(), TransportError> {
            self.inner.set_attrs(p, n)
        }
        fn set_read_limit(&mut self, m: u64) {
            self.inner.set_read_limit(m)
        }
        fn create_new(
            &mut self,
            p: &RemotePath,
            b: &[u8],
            n: &NewFile,
        ) -> Result<(), TransportError> {
            self.at("create_new");
            self.inner.create_new(p, b, n)
        }
        fn rename(&mut self, a: &RemotePath, b: &RemotePath) -> Result<(), TransportError> {
            self.at("rename");
            self.inner.rename(a, b)
        }
        fn replace(&mut self, a: &RemotePath, b: &RemotePath) -> Result<(), TransportError> {
            panic!("a lock is never replaced: {a} {b}")
        }
        fn remove(&mut self, p: &RemotePath) -> Result<(), TransportError> {
            self.inner.remove(p)
        }
        fn list(
            &mut self,
            d: &RemotePath,
        ) -> Result<Vec<crate::transport::DirEntry>, TransportError> {
            self.inner.list(d)
        }
    }

    /// A lock another push has created and not yet written (an empty file)
    /// is waited for by the clock: still empty after more than `LOOKS`
    /// looks, then written, it is named as that push's lock, never as a
    /// lock farmkey cannot read (seen on a busy machine before).
    #[test]
    fn a_lock_written_slowly_is_waited_for_and_named() {
        let (dir, _t, path) = setup();
        let (p, other) = (path.clone(), LockInfo::mine("slow", "Flowtime"));
        let write: Hook = Box::new(move |t: &mut LocalTransport| {
            t.remove(&p).unwrap();
            t.create_new(&p, &other.bytes(), &NewFile::default())
                .unwrap();
        });
        let mut t = Interleave::on(dir.path(), "stat", vec![(2 * LOOKS, write)]);
        t.create_new(&path, b"", &NewFile::default()).unwrap();
        let me = LockInfo::mine("me", "Flowtime");
        match acquire(&mut t, "web01", &path, &me, None) {
            Err(LockError::Held(h)) => assert_eq!(h.push_id(), Some("slow")),
            other => panic!("{other:?}"),
        }
    }

    /// Another push, `id`, breaks the lock `shown` at `path` and takes it.
    fn breaks(path: &RemotePath, shown: &Holder, id: &'static str) -> Hook {
        let (path, shown) = (path.clone(), shown.clone());
        Box::new(move |t: &mut LocalTransport| {
            let other = LockInfo::mine(id, "Flowtime");
            assert!(matches!(
                acquire(t, "web01", &path, &other, Some(&shown)),
                Ok(Taken::Broke(_))
            ));
        })
    }

    fn stale_lock(t: &mut dyn Transport, path: &RemotePath, id: &str) -> Holder {
        let mut stale = LockInfo::mine(id, "Flowtime");
        stale.host = "jump9".into();
        stale.time = "2020-01-01T00:00:00Z".into();
        t.create_new(path, &stale.bytes(), &NewFile::default())
            .unwrap();
        read_holder(t, "web01", path).unwrap().unwrap()
    }

    fn names(dir: &tempfile::TempDir) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.path().join("C:/site"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_push_that_claims_a_lock_taken_since_puts_it_back_and_names_its_holder() {
        let (dir, mut t, path) = setup();
        let shown = stale_lock(&mut t, &path, "old");
        let b = LockInfo::mine("b", "Flowtime");
        // A breaks and takes it between B's read and B's rename: B moves
        // A's fresh lock, sees it is not the one shown, and puts it back.
        let mut tb = Interleave::on(dir.path(), "rename", vec![(1, breaks(&path, &shown, "a"))]);
        let err = acquire(&mut tb, "web01", &path, &b, Some(&shown)).unwrap_err();
        let LockError::Held(h) = err else {
            panic!("{err:?}")
        };
        assert_eq!((h.push_id(), &h.path), (Some("a"), &path));
        let now = read_holder(&mut t, "web01", &path).unwrap().unwrap();
        assert_eq!(now.push_id(), Some("a"));
        assert_eq!(names(&dir), ["web.farmkey-lock.config"]);
    }

    #[test]
    fn a_stale_lock_broken_and_taken_between_its_read_and_its_stat_is_looked_at_again() {
        let (dir, mut t, path) = setup();
        stale_lock(&mut t, &path, "old");
        std::fs::File::options()
            .write(true)
            .open(dir.path().join("C:/site/web.farmkey-lock.config"))
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000))
            .unwrap();
        let shown = read_holder(&mut t, "web01", &path).unwrap().unwrap();
        let b = LockInfo::mine("b", "Flowtime");
        // B reads the stale lock; A breaks it and takes the lock before
        // B's stat, which then gives the time of A's lock: B must not take
        // the stale lock's text with A's time for another lock.
        let mut tb = Interleave::on(dir.path(), "stat", vec![(1, breaks(&path, &shown, "a"))]);
        let err = acquire(&mut tb, "web01", &path, &b, Some(&shown)).unwrap_err();
        let LockError::Held(h) = err else {
            panic!("{err:?}")
        };
        assert_eq!(h.push_id(), Some("a"));
        assert_eq!(names(&dir), ["web.farmkey-lock.config"]);
    }

    #[test]
    fn a_push_whose_claim_finds_the_lock_gone_is_refused_naming_the_winner() {
        let (dir, mut t, path) = setup();
        let shown = stale_lock(&mut t, &path, "old");
        let a = LockInfo::mine("a", "Flowtime");
        let b = LockInfo::mine("b", "Flowtime");
        // A claims it just before B's rename, and takes the lock a moment
        // later: B's rename finds nothing, and B waits for the winner.
        let (p2, s2, root) = (path.clone(), shown.clone(), dir.path().to_path_buf());
        let mut tb = Interleave::on(
            dir.path(),
            "rename",
            vec![(
                1,
                Box::new(move |t: &mut LocalTransport| {
                    let claim = claim_path(&p2, "a");
                    t.rename(&p2, &claim).unwrap();
                    let mut t2 = LocalTransport::new(root);
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(50));
                        assert!(matches!(
                            acquire(&mut t2, "web01", &p2, &a, Some(&s2)),
                            Ok(Taken::Broke(_))
                        ));
                    });
                }),
            )],
        );
        let err = acquire(&mut tb, "web01", &path, &b, Some(&shown)).unwrap_err();
        assert!(
            matches!(&err, LockError::Held(h) if h.push_id() == Some("a")),
            "{err:?}"
        );
        // A removes its claim once its lock is made.
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while names(&dir).len() > 1 && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(names(&dir), ["web.farmkey-lock.config"]);
    }

    #[test]
    fn a_breaker_that_finds_the_lock_claimed_never_takes_the_name_and_names_the_winner() {
        let (dir, mut t, path) = setup();
        let shown = stale_lock(&mut t, &path, "old");
        // A has claimed the stale lock and takes the lock a moment later.
        t.rename(&path, &claim_path(&path, "a")).unwrap();
        let (p2, s2, root) = (path.clone(), shown.clone(), dir.path().to_path_buf());
        let a = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let mine = LockInfo::mine("a", "Flowtime");
            acquire(
                &mut LocalTransport::new(root),
                "web01",
                &p2,
                &mine,
                Some(&s2),
            )
        });
        let b = LockInfo::mine("b", "Flowtime");
        let err = acquire(&mut t, "web01", &path, &b, Some(&shown)).unwrap_err();
        assert!(
            matches!(&err, LockError::Held(h) if h.push_id() == Some("a")),
            "{err:?}"
        );
        assert!(matches!(a.join().unwrap(), Ok(Taken::Broke(h)) if h.info == shown.info));
        assert_eq!(names(&dir), ["web.farmkey-lock.config"]);
    }

    #[test]
    fn a_moved_lock_that_cannot_be_put_back_is_left_at_the_claim_and_named() {
        let (dir, mut t, path) = setup();
        let shown = stale_lock(&mut t, &path, "old");
        let p3 = path.clone();
        let mut tb = Interleave::on(
            dir.path(),
            "rename",
            vec![
                // A breaks and takes it before B's rename, which moves A's lock.
                (1, breaks(&path, &shown, "a")),
                // C, whose plan saw no lock, takes the name before B puts it back.
                (
                    2,
                    Box::new(move |t: &mut LocalTransport| {
                        let c = LockInfo::mine("c", "Flowtime");
                        assert_eq!(acquire(t, "web01", &p3, &c, None), Ok(Taken::Fresh));
                    }),
                ),
            ],
        );
        let b = LockInfo::mine("b", "Flowtime");
        let err = acquire(&mut tb, "web01", &path, &b, Some(&shown)).unwrap_err();
        let claim = claim_path(&path, "b");
        assert!(
            matches!(&err, LockError::Displaced { claim: c, moved, now, .. }
                if *c == claim && moved == "a" && now.push_id() == Some("c")),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("web.farmkey-lock.b.claim.config") && text.contains("push a"),
            "{text}"
        );
        // A's lock is kept, at the claim: never removed.
        let kept = read_holder(&mut t, "web01", &claim).unwrap().unwrap();
        assert_eq!(kept.push_id(), Some("a"));
    }

    #[test]
    fn a_push_that_claims_but_meets_a_fresh_lock_is_refused_and_leaves_no_claim() {
        let (dir, mut t, path) = setup();
        let shown = stale_lock(&mut t, &path, "old");
        let b = LockInfo::mine("b", "Flowtime");
        let c = LockInfo::mine("c", "Flowtime");
        // C, whose plan saw no lock, creates it after B's claim.
        let p2 = path.clone();
        let mut tb = Interleave::on(
            dir.path(),
            "create_new",
            vec![(
                1,
                Box::new(move |t: &mut LocalTransport| {
                    assert_eq!(acquire(t, "web01", &p2, &c, None), Ok(Taken::Fresh));
                }),
            )],
        );
        let err = acquire(&mut tb, "web01", &path, &b, Some(&shown)).unwrap_err();
        assert!(
            matches!(&err, LockError::Held(h) if h.push_id() == Some("c")),
            "{err:?}"
        );
        assert_eq!(names(&dir), ["web.farmkey-lock.config"]);
    }

    #[test]
    fn a_claim_left_by_a_stopped_push_is_named_and_never_taken_for_the_lock() {
        let (dir, mut t, path) = setup();
        let shown = stale_lock(&mut t, &path, "old");
        // Stopped between its claim and its create.
        t.rename(&path, &claim_path(&path, "20261126T112045-ab12"))
            .unwrap();
        assert_eq!(read_holder(&mut t, "web01", &path).unwrap(), None);
        let left = claims(&mut t, "web01", &path).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].info, shown.info);
        assert_eq!(
            left[0].path.to_string(),
            "C:\\site\\web.farmkey-lock.20261126T112045-ab12.claim.config"
        );
        let me = LockInfo::mine("new", "Flowtime");
        assert_eq!(acquire(&mut t, "web01", &path, &me, None), Ok(Taken::Fresh));
        assert_eq!(claims(&mut t, "web01", &path).unwrap().len(), 1);
        assert_eq!(names(&dir).len(), 2);
        // A breaker's own claim left by a lost session is removed when it
        // takes the lock again.
        release(&mut t, "web01", &path, "new").unwrap();
        let shown = stale_lock(&mut t, &path, "old2");
        t.rename(&path, &claim_path(&path, "new")).unwrap();
        assert!(matches!(
            acquire(&mut t, "web01", &path, &me, Some(&shown)),
            Ok(Taken::Broke(h)) if h.info == shown.info
        ));
        assert_eq!(claims(&mut t, "web01", &path).unwrap().len(), 1);
    }

    #[test]
    fn a_pid_reused_by_another_process_makes_the_lock_stale() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let started = process_start(pid).expect("the child's start time");
        let mut info = LockInfo::mine("p1", "Flowtime");
        info.pid = pid;
        let holder = |info: &LockInfo| Holder {
            server: "web01".into(),
            path: RemotePath::parse("C:\\site\\web.farmkey-lock.config").unwrap(),
            info: Some(info.clone()),
            modified: None,
        };
        info.started = Some(started);
        assert!(holder(&info).alive_here());
        // The pid, but a process started at another time.
        info.started = Some(started + 1);
        let h = holder(&info);
        assert!(!h.alive_here() && h.dead_here());
        assert!(
            h.to_string()
                .contains("its pid now belongs to a process started later"),
            "{h}"
        );
        // A lock of an older farmkey, without a start time: the pid alone.
        info.started = None;
        assert!(holder(&info).alive_here());
        // Another boot: never the same process.
        info.started = Some(started);
        info.boot = boot_time().map(|b| b - 3600);
        assert!(holder(&info).dead_here());
        child.kill().unwrap();
        child.wait().unwrap();
        info.boot = boot_time();
        assert!(holder(&info).dead_here());
        // Old lock files read.
        let old = br#"{"push_id":"p","site":"s","user":"u","host":"h","pid":1,"time":"2020-01-01T00:00:00Z"}"#;
        let parsed: LockInfo = serde_json::from_slice(old).unwrap();
        assert_eq!((parsed.started, parsed.boot), (None, None));
    }
}
