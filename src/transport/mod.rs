//! How farmkey reaches a server's files: a local folder holding a copy of
//! its drives, or SFTP over SSH. Every path is a [`RemotePath`].

pub mod local;
pub mod ssh;

use crate::bytes::FileBytes;
use crate::paths::RemotePath;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("{path}: no such file or folder")]
    NotFound { path: RemotePath },
    #[error("{path}: permission denied")]
    PermissionDenied { path: RemotePath },
    #[error("{path}: {message}")]
    Io { path: RemotePath, message: String },
    #[error("{path}: refused: {reason}")]
    Refused { path: String, reason: String },
    #[error("{path}: already exists")]
    Exists { path: RemotePath },
    /// Something other than a regular file where farmkey would replace or
    /// remove one: never touched.
    #[error("{path} is {kind}: farmkey never replaces or removes it")]
    NotAFile { path: RemotePath, kind: NotAFile },
    #[error("{path}: no space left on the server's disk")]
    NoSpace { path: RemotePath },
    #[error("{path}: the server's file system is read-only")]
    ReadOnly { path: RemotePath },
    /// Larger than the inventory's `max_config_bytes`: not read.
    #[error(
        "{path}: {}, more than max_config_bytes = {max} allows: not read",
        size_text(*size)
    )]
    TooLarge {
        path: RemotePath,
        size: u64,
        max: u64,
    },
    /// Refused again and again as a file another process holds open would
    /// be (Windows answers a sharing violation with a bare "failure"):
    /// given up after the tries of `push::retry`.
    #[error(
        "{path}{}: still refused after {tries} tries over {:.1} s: another process may hold {} open (ASP.NET reading it, an antivirus scanner); the server's last answer: {last}",
        with.as_ref().map(|w| format!(" (replacing it with {w})")).unwrap_or_default(),
        *waited_ms as f64 / 1000.0,
        if with.is_some() { "either" } else { "it" }
    )]
    Held {
        path: RemotePath,
        /// The file put in its place, for a rename refused: either may be
        /// the one held.
        with: Option<Box<RemotePath>>,
        tries: u32,
        waited_ms: u32,
        last: String,
    },
    #[error("the server does not support {0}")]
    Unsupported(&'static str),
    #[error("connection lost: {0}")]
    Disconnected(String),
}

impl TransportError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, TransportError::NotFound { .. })
    }

    /// The session is gone: no later call on this transport can succeed.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TransportError::Disconnected(_))
    }
}

/// `226000000 bytes (226.0 MB)`, for messages about sizes.
pub fn size_text(bytes: u64) -> String {
    if bytes < 100_000 {
        format!("{bytes} bytes")
    } else {
        format!("{bytes} bytes ({:.1} MB)", bytes as f64 / 1e6)
    }
}

/// What a name is, as `lstat` sees it (a final link not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileKind {
    #[default]
    Regular,
    Directory,
    /// A symbolic link (`S_IFLNK`). Win32-OpenSSH shows only reparse
    /// points tagged IO_REPARSE_TAG_SYMLINK so (see [`Transport::lstat`]).
    Symlink,
    /// A device, pipe or socket.
    Other,
}

impl FileKind {
    /// From the `S_IFMT` bits of a POSIX mode, as SFTP sends it.
    pub fn from_mode(mode: u32) -> FileKind {
        match mode & 0o170_000 {
            0o100_000 => FileKind::Regular,
            0o040_000 => FileKind::Directory,
            0o120_000 => FileKind::Symlink,
            _ => FileKind::Other,
        }
    }
}

/// What stands where a configuration file is expected and is not a
/// regular file: read as IIS reads it (through a link), never replaced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum NotAFile {
    /// A symbolic link to a file that exists: IIS reads the target.
    Link {
        target: Option<String>,
    },
    /// A symbolic link to nothing: IIS cannot read it (OpenSSH answers
    /// "no such file" for it, as for a missing file).
    DanglingLink {
        target: Option<String>,
    },
    /// A symbolic link that leads back to itself (ELOOP).
    LinkLoop {
        target: Option<String>,
    },
    Folder,
    /// A device, pipe, socket or other special file.
    Special,
}

impl NotAFile {
    /// Whether IIS can read what it leads to.
    pub fn readable(&self) -> bool {
        matches!(self, NotAFile::Link { .. })
    }
}

impl std::fmt::Display for NotAFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let to = |t: &Option<String>| t.as_ref().map(|t| format!(" to {t}")).unwrap_or_default();
        match self {
            NotAFile::Link { target } => write!(f, "a symbolic link{}", to(target)),
            NotAFile::DanglingLink { target } => {
                write!(f, "a symbolic link{}, which does not exist", to(target))
            }
            NotAFile::LinkLoop { target } => {
                write!(f, "a symbolic link{} that loops back on itself", to(target))
            }
            NotAFile::Folder => write!(f, "a folder"),
            NotAFile::Special => write!(f, "not a regular file (a device, pipe or socket)"),
        }
    }
}

/// Where a symbolic link ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEnd {
    Exists,
    Dangling,
    Loop,
}

/// What stands at `path` when it is not a regular file; `Ok(None)` for a
/// regular file or nothing at all. A link is followed as IIS follows it
/// to tell a link to a file from a dangling one and a loop.
pub fn not_a_file(
    t: &mut dyn Transport,
    path: &RemotePath,
) -> Result<Option<NotAFile>, TransportError> {
    let Some(st) = t.lstat(path)? else {
        return Ok(None);
    };
    Ok(match st.kind {
        FileKind::Regular => None,
        FileKind::Directory => Some(NotAFile::Folder),
        FileKind::Other => Some(NotAFile::Special),
        FileKind::Symlink => {
            let target = t.readlink(path).ok();
            Some(match t.link_end(path)? {
                LinkEnd::Exists => NotAFile::Link { target },
                LinkEnd::Dangling => NotAFile::DanglingLink { target },
                LinkEnd::Loop => NotAFile::LinkLoop { target },
            })
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStat {
    pub size: u64,
    pub kind: FileKind,
    /// Seconds since the Unix epoch, when the server tells.
    pub modified: Option<u64>,
    /// Permission bits (`0o640`), owner and group, when the server tells.
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// The file has Windows' read-only attribute, which refuses a rename
    /// onto it and its deletion: Win32-OpenSSH shows it as a mode without
    /// the owner-write bit (`file_attr_to_st_mode`, contrib/win32/
    /// win32compat/misc.c); a `local_root` copy of a drive as a file no
    /// one may write. Never set on a POSIX server, where a file's mode
    /// does not stop its replacement.
    pub read_only: bool,
}

impl FileStat {
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Directory
    }
}

/// The attributes farmkey gives a file it creates, on servers that apply
/// POSIX modes (see [`honours_modes`]); the default sends nothing, and
/// the server applies its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NewFile {
    /// Permission bits, set exactly (not reduced by the server's umask).
    /// The file is owner-only while it is written, whatever they are.
    pub mode: Option<u32>,
    /// Owner and group, set where the account may (a refusal is not an
    /// error: the file stays the account's).
    pub owner: Option<(u32, u32)>,
}

impl NewFile {
    /// Only the account that wrote it can read it: backups and staged
    /// copies hold keys.
    pub const OWNER_ONLY: NewFile = NewFile {
        mode: Some(0o600),
        owner: None,
    };
}

/// Whether a server applies POSIX file modes. OpenSSH for Windows does
/// not: files take their folder's inherited ACL, and a mode sent only
/// toggles the read-only attribute, so farmkey never sends one there.
pub fn honours_modes(banner: Option<&str>) -> bool {
    !banner.is_some_and(|b| b.contains("OpenSSH_for_Windows"))
}

/// A file read by [`Transport::gather`], with what `lstat` says of its
/// name when the transport asked it together with the read.
#[derive(Debug)]
pub struct Fetched {
    pub read: Result<FileBytes, TransportError>,
    /// `None`: not asked (the caller asks when it needs it).
    pub lstat: Option<Result<Option<FileStat>, TransportError>>,
}

/// A folder's entries, or why it could not be listed.
pub type Listing = Result<Vec<DirEntry>, TransportError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
}

/// The file operations farmkey needs from a server, all of which OpenSSH for
/// Windows offers over SFTP.
pub trait Transport: Send {
    /// Shown in messages: `local ./lab`, `sftp svc@10.0.0.11:22`.
    fn describe(&self) -> String;

    fn read(&mut self, path: &RemotePath) -> Result<FileBytes, TransportError>;

    /// Reads several files; transports that can overlap requests override it.
    fn read_many(&mut self, paths: &[RemotePath]) -> Vec<Result<FileBytes, TransportError>> {
        paths.iter().map(|p| self.read(p)).collect()
    }

    /// Reads `files` and lists `folders`: over SSH every request in flight
    /// together, each file's `lstat` with its read, so that a scan pays
    /// two round trips for all of them (see README, Performance).
    fn gather(
        &mut self,
        files: &[RemotePath],
        folders: &[RemotePath],
    ) -> (Vec<Fetched>, Vec<Listing>) {
        let read = self
            .read_many(files)
            .into_iter()
            .map(|read| Fetched { read, lstat: None });
        let read = read.collect();
        (read, folders.iter().map(|d| self.list(d)).collect())
    }

    /// `Ok(None)` when the path does not exist (a dangling link or a
    /// loop too: OpenSSH's sftp-server answers ENOENT and ELOOP alike).
    fn stat(&mut self, path: &RemotePath) -> Result<Option<FileStat>, TransportError>;

    /// As [`Transport::stat`], but a final symbolic link is the link
    /// itself ([`FileKind::Symlink`]). Win32-OpenSSH shows a reparse point
    /// as a link only when it is a symbolic link; a junction or any other
    /// reparse point looks like the folder or file it stands for
    /// (contrib/win32/win32compat/fileio.c fileio_stat_or_lstat_internal:
    /// S_IFLNK only when fileio_readlink, which refuses any tag but
    /// IO_REPARSE_TAG_SYMLINK, succeeds).
    fn lstat(&mut self, path: &RemotePath) -> Result<Option<FileStat>, TransportError>;

    /// What a symbolic link holds, as the server spells it.
    fn readlink(&mut self, path: &RemotePath) -> Result<String, TransportError>;

    /// Where the symbolic link at `path` ends.
    fn link_end(&mut self, path: &RemotePath) -> Result<LinkEnd, TransportError>;

    /// Refuses to read files larger than `max_bytes` from now on
    /// ([`TransportError::TooLarge`]); never more than that is read.
    fn set_read_limit(&mut self, max_bytes: u64);

    /// Creates `path` as a new file holding `bytes`, only if nothing exists
    /// there: an existing file, folder or link (even a dangling one) fails
    /// with [`TransportError::Exists`] and is never followed or touched.
    /// Every file farmkey writes (locks, backups, staged copies) is made
    /// this way, so that it never writes through a name it did not just
    /// create; there is no other way to write. `new` says what mode and
    /// owner the file gets ([`NewFile::default`]: none sent). When writing
    /// fails after the file was created, the partial file is left for the
    /// caller (who created it) to remove.
    fn create_new(
        &mut self,
        path: &RemotePath,
        bytes: &[u8],
        new: &NewFile,
    ) -> Result<(), TransportError>;

    /// Gives a file this push created the mode and owner `new` asks (none
    /// sent for [`NewFile::default`]): a staged copy stays owner-only until
    /// it is verified and takes `web.config`'s mode just before the swap.
    /// A refused owner is not an error (the file stays the account's); a
    /// refused mode is. Set on an open handle, never through a link put at
    /// the name: [`TransportError::NotAFile`] then.
    fn set_attrs(&mut self, path: &RemotePath, new: &NewFile) -> Result<(), TransportError>;

    /// Renames; fails with [`TransportError::Exists`] if `to` exists (SFTP's
    /// own rename semantics).
    fn rename(&mut self, from: &RemotePath, to: &RemotePath) -> Result<(), TransportError>;

    /// Renames over an existing file in one step (`posix-rename@openssh.com`),
    /// or [`TransportError::Unsupported`].
    fn replace(&mut self, from: &RemotePath, to: &RemotePath) -> Result<(), TransportError>;

    fn remove(&mut self, path: &RemotePath) -> Result<(), TransportError>;

    fn list(&mut self, dir: &RemotePath) -> Result<Vec<DirEntry>, TransportError>;

    /// The server's SSH identification (`SSH-2.0-OpenSSH_for_Windows_8.1`),
    /// when there is one: some server versions need handling of their own.
    fn banner(&self) -> Option<String> {
        None
    }
}

/// What replacing a file with `posix-rename@openssh.com` does on a server,
/// known from its SSH banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaceBehaviour {
    /// One atomic step (OpenSSH on POSIX; Win32-OpenSSH 8.6 and later use
    /// `MoveFileExW(MOVEFILE_REPLACE_EXISTING)`).
    Atomic,
    /// Win32-OpenSSH before 8.6 (7.7 and 8.1 ship with Windows): deletes
    /// the target, then renames; the file is briefly absent, and renaming a
    /// file onto its own name deletes it (Win32-OpenSSH #1849).
    DeleteThenRename { version: String },
}

impl ReplaceBehaviour {
    pub fn from_banner(banner: Option<&str>) -> ReplaceBehaviour {
        let Some(rest) = banner.and_then(|b| b.split("OpenSSH_for_Windows_").nth(1)) else {
            return ReplaceBehaviour::Atomic;
        };
        let version: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect();
        let mut parts = version.split('.').map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse::<u32>()
                .ok()
        });
        let (major, minor) = (parts.next().flatten(), parts.next().flatten().unwrap_or(0));
        match major {
            Some(m) if (m, minor) >= (8, 6) => ReplaceBehaviour::Atomic,
            // Unknown or older: assume the unsafe behaviour.
            _ => ReplaceBehaviour::DeleteThenRename {
                version: format!("OpenSSH_for_Windows_{version}"),
            },
        }
    }
}

/// Finds a path the way Windows would, without regard to case, when the exact
/// spelling does not exist (copies of Windows drives on case-sensitive file
/// systems, and test servers). `Ok(None)` if nothing matches.
pub fn find_case_insensitive(
    t: &mut dyn Transport,
    path: &RemotePath,
) -> Result<Option<RemotePath>, TransportError> {
    let mut cur = RemotePath::parse(path.drive()).expect("a drive is a path");
    for segment in path.segments() {
        let exact = cur.join(segment).map_err(|e| TransportError::Refused {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        if t.stat(&exact)?.is_some() {
            cur = exact;
            continue;
        }
        let entries = match t.list(&cur) {
            Ok(e) => e,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(found) = entries
            .iter()
            .find(|e| crate::paths::same_name(&e.name, segment))
        else {
            return Ok(None);
        };
        cur = cur.join(&found.name).map_err(|e| TransportError::Refused {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(Some(cur))
}

/// Debug builds only: with `FARMKEY_TEST_STEPS` set, each step of
/// reaching and reading a server is written to standard error with the
/// milliseconds since the first step, so that a test behind a
/// delaying proxy counts the round trips of each (tests/ssh.rs).
pub(crate) fn step(who: &str, what: &str) {
    #[cfg(debug_assertions)]
    {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let start = *START.get_or_init(std::time::Instant::now);
        if std::env::var_os("FARMKEY_TEST_STEPS").is_some() {
            eprintln!(
                "farmkey-step\t{who}\t{what}\t{:.1}",
                start.elapsed().as_secs_f64() * 1000.0
            );
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = (who, what);
}

thread_local! {
    /// Time this thread spent waiting for the operator.
    static WAITED: std::cell::Cell<std::time::Duration> = const { std::cell::Cell::new(std::time::Duration::ZERO) };
}

/// Runs `f`, a question to the operator or the wait for a turn to ask one,
/// counting its time as the operator's, not the server's.
pub(crate) fn waiting_for_operator<T>(f: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    let out = f();
    WAITED.with(|w| w.set(w.get() + start.elapsed()));
    out
}

/// Time this thread has spent waiting for the operator, in all: a scan's
/// time is its span less what this grew by meanwhile.
pub fn operator_wait() -> std::time::Duration {
    WAITED.with(|w| w.get())
}

/// Questions a connection may need a person to answer. The headless command
/// line asks on the terminal; the console shows dialogs.
pub trait Prompter: Send + Sync {
    /// A passphrase or password; `None` when the person cancels.
    fn secret(&self, question: &SecretQuestion) -> Option<secrecy::SecretString>;

    /// Whether to trust a host key that `known_hosts` does not hold; `None`
    /// when this prompter does not ask such questions (the connection is
    /// then refused with the fingerprint and advice).
    fn unknown_host(&self, question: &HostKeyQuestion) -> Option<HostKeyDecision>;

    /// Whether host key questions of several connections may wait for
    /// their answers at once (the console gathers them in one dialog); a
    /// terminal asks them one after another.
    fn asks_host_keys_together(&self) -> bool {
        false
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretQuestion {
    Passphrase {
        server: String,
        key: std::path::PathBuf,
    },
    Password {
        server: String,
        user: String,
        host: String,
    },
}

impl SecretQuestion {
    pub fn prompt(&self) -> String {
        match self {
            SecretQuestion::Passphrase { server, key } => {
                format!("[{server}] passphrase for key {}: ", key.display())
            }
            SecretQuestion::Password { server, user, host } => {
                format!("[{server}] password for {user}@{host}: ")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeyQuestion {
    pub server: String,
    /// `host` or `[host]:port`, as known_hosts writes it.
    pub host: String,
    pub key_type: String,
    /// `SHA256:...`, as OpenSSH shows it.
    pub fingerprint: String,
    pub known_hosts: std::path::PathBuf,
    /// Key types already stored for this host (a different type was offered).
    pub other_types: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyDecision {
    Refuse,
    AcceptOnce,
    AcceptAndStore,
}

/// How servers were reached, worth telling though nothing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReachNote {
    /// A jump host took fewer sessions than farmkey wanted to open to it;
    /// the servers behind it shared those it took.
    #[error(
        "{hop} accepted {accepted} of {wanted} sessions; the servers behind it went through {} (the next was refused: {reason})",
        if *accepted == 1 { "that one" } else { "those" }
    )]
    FewerJumpSessions {
        hop: String,
        accepted: usize,
        wanted: usize,
        reason: String,
    },
}

/// How to open connections.
#[derive(Clone)]
pub struct ConnectOptions {
    /// Never ask anything; fail clearly instead.
    pub batch: bool,
    /// Trust unknown host keys on first use and store them.
    pub accept_new: bool,
    pub prompter: Option<std::sync::Arc<dyn Prompter>>,
    /// `~/.ssh/config` unless set.
    pub ssh_config: Option<std::path::PathBuf>,
    /// Passphrases and passwords given this run, so a farm of servers with
    /// one service account asks once.
    pub secrets: std::sync::Arc<ssh::SecretCache>,
    /// Sessions to jump hosts, shared by every server behind them.
    pub jumps: std::sync::Arc<ssh::jump::JumpPool>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            batch: true,
            accept_new: false,
            prompter: None,
            ssh_config: None,
            secrets: Default::default(),
            jumps: Default::default(),
        }
    }
}

/// Descriptors one open session may hold: its socket and the clone
/// farmkey keeps to watch it, and a socket pair's end behind a jump host.
const FDS_PER_SESSION: u64 = 3;
/// Descriptors kept for everything else: standard streams, the audit log,
/// files being read, jump host sessions.
const FDS_RESERVED: u64 = 32;

/// Raises the soft limit of open files to the hard limit (once, at
/// start): a push holds a session on every server of a site.
pub fn raise_open_files_limit() {
    #[cfg(unix)]
    // SAFETY: getrlimit and setrlimit on a valid struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// How many sessions may be open at once under the open-files limit: a
/// farm larger than that is scanned and pushed with fewer open at a time
/// (paced), never refused for want of descriptors.
pub fn session_budget() -> usize {
    #[cfg(unix)]
    {
        // SAFETY: getrlimit on a valid struct.
        let soft = unsafe {
            let mut lim: libc::rlimit = std::mem::zeroed();
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return usize::MAX;
            }
            lim.rlim_cur
        };
        if soft == libc::RLIM_INFINITY {
            return usize::MAX;
        }
        (soft.saturating_sub(FDS_RESERVED) / FDS_PER_SESSION).max(1) as usize
    }
    #[cfg(not(unix))]
    usize::MAX
}

/// Opens the transport an inventory entry describes.
pub fn connect(
    server: &crate::inventory::Server,
    opts: &ConnectOptions,
) -> Result<Box<dyn Transport>, ssh::ConnectError> {
    match &server.target {
        crate::inventory::Target::Local { root } => {
            if !root.is_dir() {
                return Err(ssh::ConnectError::LocalRoot(root.clone()));
            }
            let mut t = local::LocalTransport::new(root);
            t.set_read_limit(server.max_config_bytes);
            Ok(Box::new(t))
        }
        crate::inventory::Target::Ssh { host, settings } => {
            let mut t = ssh::SshTransport::connect(&server.name, host, settings, opts)?;
            t.set_read_limit(server.max_config_bytes);
            Ok(Box::new(t))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ReplaceBehaviour, honours_modes, size_text};

    #[test]
    fn windows_servers_are_never_sent_a_mode() {
        assert!(!honours_modes(Some("SSH-2.0-OpenSSH_for_Windows_8.1")));
        assert!(!honours_modes(Some("SSH-2.0-OpenSSH_for_Windows_9.5p1")));
        assert!(honours_modes(Some(
            "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"
        )));
        assert!(honours_modes(None));
        assert_eq!(size_text(512), "512 bytes");
        assert_eq!(size_text(226_000_000), "226000000 bytes (226.0 MB)");
    }

    #[test]
    fn windows_openssh_before_8_6_replaces_by_delete_then_rename() {
        let b = |s: &str| ReplaceBehaviour::from_banner(Some(s));
        assert_eq!(
            b("SSH-2.0-OpenSSH_for_Windows_8.1"),
            ReplaceBehaviour::DeleteThenRename {
                version: "OpenSSH_for_Windows_8.1".into()
            }
        );
        assert!(matches!(
            b("SSH-2.0-OpenSSH_for_Windows_7.7"),
            ReplaceBehaviour::DeleteThenRename { .. }
        ));
        assert_eq!(
            b("SSH-2.0-OpenSSH_for_Windows_8.6"),
            ReplaceBehaviour::Atomic
        );
        assert_eq!(
            b("SSH-2.0-OpenSSH_for_Windows_9.5"),
            ReplaceBehaviour::Atomic
        );
        assert_eq!(
            b("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"),
            ReplaceBehaviour::Atomic
        );
        assert_eq!(
            ReplaceBehaviour::from_banner(None),
            ReplaceBehaviour::Atomic
        );
    }
}
