//! SFTP over SSH to OpenSSH for Windows, with the ssh2 crate (libssh2).
//! One session per server, every blocking call bounded by a timeout.

pub mod auth;
pub mod config;
pub mod jump;
pub mod known_hosts;
mod pipe;

use super::{
    ConnectOptions, DirEntry, FileKind, FileStat, HostKeyDecision, HostKeyQuestion, LinkEnd,
    NewFile, Transport, TransportError,
};
use crate::bytes::FileBytes;
use crate::inventory::SshSettings;
use crate::paths::RemotePath;
use secrecy::SecretString;
use ssh2::{ErrorCode, Session, Sftp};

/// libssh2's generic error code, which libssh2-sys does not name.
const LIBSSH2_ERROR_SOCKET_NONE: std::ffi::c_int = -1;

/// SFTP status codes (draft-ietf-secsh-filexfer), by name.
/// (12 and up are of later drafts, which some servers send.)
mod fx {
    pub use libssh2_sys::{
        LIBSSH2_FX_FAILURE as FAILURE, LIBSSH2_FX_FILE_ALREADY_EXISTS as FILE_ALREADY_EXISTS,
        LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM as NO_SPACE_ON_FILESYSTEM,
        LIBSSH2_FX_NO_SUCH_FILE as NO_SUCH_FILE, LIBSSH2_FX_NO_SUCH_PATH as NO_SUCH_PATH,
        LIBSSH2_FX_OP_UNSUPPORTED as OP_UNSUPPORTED,
        LIBSSH2_FX_PERMISSION_DENIED as PERMISSION_DENIED,
        LIBSSH2_FX_QUOTA_EXCEEDED as QUOTA_EXCEEDED, LIBSSH2_FX_WRITE_PROTECT as WRITE_PROTECT,
    };
}
use std::collections::HashMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why a connection could not be opened. Messages name the server side at
/// fault and never hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("local root {} does not exist or is not a folder", .0.display())]
    LocalRoot(PathBuf),
    #[error("ssh configuration: {0}")]
    Config(String),
    #[error("cannot resolve host name {host:?}: {message}")]
    Dns { host: String, message: String },
    #[error("connection refused by {addr} (is sshd running and listening on that port?)")]
    Refused { addr: String },
    #[error("no answer from {addr} within {secs}s (connect_timeout_secs)")]
    Timeout { addr: String, secs: u64 },
    #[error("cannot connect to {addr}: {message}")]
    Network { addr: String, message: String },
    #[error("SSH handshake failed: {0}")]
    Handshake(String),
    #[error(
        "host key of {host} is not in {}: {key_type} key {fingerprint}{}. Check the fingerprint with the server's administrator (ssh-keygen -lf on the server), then scan again with --accept-new to trust it on first use and store it",
        known_hosts.display(),
        if other_types.is_empty() { String::new() } else { format!(" (keys of another type are stored: {})", other_types.join(", ")) }
    )]
    HostKeyUnknown {
        host: String,
        key_type: String,
        fingerprint: String,
        known_hosts: PathBuf,
        other_types: Vec<String>,
    },
    #[error(
        "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for {host}: it now presents {key_type} key {fingerprint}, which differs from the key stored in {}. Someone could be intercepting the connection (man-in-the-middle), or the server was reinstalled. farmkey refuses to connect and never replaces a stored key; if the change is expected, remove the old key (ssh-keygen -R '{host}' -f {}) and verify the new fingerprint",
        known_hosts.display(), known_hosts.display()
    )]
    HostKeyChanged {
        host: String,
        key_type: String,
        fingerprint: String,
        known_hosts: PathBuf,
    },
    #[error("host key of {host} ({fingerprint}) is revoked in {}", known_hosts.display())]
    HostKeyRevoked {
        host: String,
        fingerprint: String,
        known_hosts: PathBuf,
    },
    #[error("host key of {host} ({fingerprint}) was refused")]
    HostKeyRefused { host: String, fingerprint: String },
    #[error("cannot store the host key in {}: {message}", path.display())]
    KnownHostsWrite { path: PathBuf, message: String },
    #[error(
        "authentication failed for {user}@{host}: tried {}; the server offered {offered}",
        if tried.is_empty() { "nothing usable".to_string() } else { tried.join(", ") }
    )]
    Auth {
        user: String,
        host: String,
        tried: Vec<String>,
        offered: String,
    },
    #[error("the SFTP subsystem did not start: {0} (is `Subsystem sftp` enabled in sshd_config?)")]
    Sftp(String),
    /// A jump host could not be reached or logged in to.
    #[error("{hop}: {error}")]
    Jump {
        hop: String,
        error: Box<ConnectError>,
    },
    /// The session of a jump host on the way ended while the server behind
    /// it was being connected (the jump host died or was cut off).
    #[error("{hop}, hop {place} of {of} on the way to {target}, ended its session: {error}")]
    JumpLost {
        hop: String,
        place: usize,
        of: usize,
        target: String,
        error: Box<ConnectError>,
    },
    /// A jump host did not open the connection to the next hop or server.
    #[error("{hop} could not open a connection to {target}: {reason}")]
    JumpChannel {
        hop: String,
        target: String,
        reason: String,
    },
}

impl ConnectError {
    /// A stored host key differs, here or at a jump host on the way.
    pub fn is_host_key_changed(&self) -> bool {
        match self {
            ConnectError::HostKeyChanged { .. } => true,
            ConnectError::Jump { error, .. } | ConnectError::JumpLost { error, .. } => {
                error.is_host_key_changed()
            }
            _ => false,
        }
    }
}

/// Passphrases and passwords given during this run, in memory only.
#[derive(Default)]
pub struct SecretCache {
    passphrases: Mutex<HashMap<PathBuf, SecretString>>,
    passwords: Mutex<Vec<(String, String, SecretString)>>,
    /// Held while a question is on screen, so that questions from parallel
    /// connections come one at a time.
    pub(crate) asking: Mutex<()>,
}

impl SecretCache {
    fn passphrase(&self, key: &Path) -> Option<SecretString> {
        self.passphrases.lock().ok()?.get(key).cloned()
    }

    fn remember_passphrase(&self, key: &Path, pass: SecretString) {
        if let Ok(mut m) = self.passphrases.lock() {
            m.insert(key.to_path_buf(), pass);
        }
    }

    fn passwords_for(&self, user: &str) -> Vec<SecretString> {
        self.passwords
            .lock()
            .map(|v| {
                v.iter()
                    .filter(|(u, _, _)| u == user)
                    .map(|(_, _, p)| p.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn remember_password(&self, user: &str, account: &str, pass: SecretString) {
        if let Ok(mut v) = self.passwords.lock()
            && !v.iter().any(|(_, a, _)| a == account)
        {
            v.push((user.to_string(), account.to_string(), pass));
        }
    }
}

/// A second SFTP handle opened straight through libssh2, because the ssh2
/// crate does not expose `posix-rename@openssh.com`.
struct RawSftp(*mut libssh2_sys::LIBSSH2_SFTP);

// The pointer is only used while holding the session's lock.
unsafe impl Send for RawSftp {}

unsafe extern "C" {
    fn libssh2_sftp_open_ex_r(
        sftp: *mut libssh2_sys::LIBSSH2_SFTP,
        filename: *const std::ffi::c_char,
        filename_len: libc::size_t,
        flags: std::ffi::c_ulong,
        mode: std::ffi::c_long,
        open_type: std::ffi::c_int,
        attrs: *mut libssh2_sys::LIBSSH2_SFTP_ATTRIBUTES,
    ) -> *mut libssh2_sys::LIBSSH2_SFTP_HANDLE;
    fn libssh2_sftp_posix_rename_ex(
        sftp: *mut libssh2_sys::LIBSSH2_SFTP,
        source: *const std::ffi::c_char,
        source_len: libc::size_t,
        dest: *const std::ffi::c_char,
        dest_len: libc::size_t,
    ) -> std::ffi::c_int;
    fn libssh2_sftp_statvfs(
        sftp: *mut libssh2_sys::LIBSSH2_SFTP,
        path: *const std::ffi::c_char,
        path_len: libc::size_t,
        st: *mut libssh2_sys::LIBSSH2_SFTP_STATVFS,
    ) -> std::ffi::c_int;
}

/// What an SFTP status means for `path`.
fn status_error(path: &RemotePath, code: i32) -> TransportError {
    use fx::*;
    match code {
        NO_SUCH_FILE | NO_SUCH_PATH => TransportError::NotFound { path: path.clone() },
        PERMISSION_DENIED => TransportError::PermissionDenied { path: path.clone() },
        FILE_ALREADY_EXISTS => TransportError::Exists { path: path.clone() },
        OP_UNSUPPORTED => TransportError::Unsupported("this SFTP operation"),
        WRITE_PROTECT => TransportError::ReadOnly { path: path.clone() },
        NO_SPACE_ON_FILESYSTEM | QUOTA_EXCEEDED => TransportError::NoSpace { path: path.clone() },
        FAILURE => TransportError::Io {
            path: path.clone(),
            message: "the server answered \"failure\" (SFTP status 4)".into(),
        },
        code => TransportError::Io {
            path: path.clone(),
            message: format!("SFTP status {code}"),
        },
    }
}

/// The second SFTP channel, opened on first use. Call with the session's
/// lock held.
unsafe fn raw_channel(
    slot: &mut Option<RawSftp>,
    session_ptr: *mut libssh2_sys::LIBSSH2_SESSION,
) -> Result<*mut libssh2_sys::LIBSSH2_SFTP, TransportError> {
    if slot.is_none() {
        let raw = unsafe { libssh2_sys::libssh2_sftp_init(session_ptr) };
        if raw.is_null() {
            return Err(TransportError::Disconnected(
                "cannot open a second SFTP channel".into(),
            ));
        }
        *slot = Some(RawSftp(raw));
    }
    Ok(slot.as_ref().map_or(std::ptr::null_mut(), |r| r.0))
}

pub struct SshTransport {
    describe: String,
    /// The server's identification string, read at the handshake.
    banner: Option<String>,
    /// The session's socket (TCP, or a socket pair through a jump host), to
    /// wait on while requests are in flight.
    socket: OwnedFd,
    timeout: std::time::Duration,
    /// Files larger than this are not read.
    max_read: u64,
    raw_sftp: Option<RawSftp>,
    /// Everything that reads (see [`pipe`]).
    pipe: pipe::Pipe,
    /// libssh2's SFTP, for what writes: opened on first use, so that a
    /// scan opens one SFTP channel only.
    sftp: Option<Sftp>,
    session: Session,
}

impl Drop for SshTransport {
    fn drop(&mut self) {
        if let Some(raw) = self.raw_sftp.take() {
            let _guard = self.session.raw();
            unsafe {
                libssh2_sys::libssh2_sftp_shutdown(raw.0);
            }
        }
    }
}

fn tcp_connect(r: &config::Resolved) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<_> = (r.host_name.as_str(), r.port)
        .to_socket_addrs()
        .map_err(|e| ConnectError::Dns {
            host: r.host_name.clone(),
            message: e.to_string(),
        })?
        .collect();
    let mut last = ConnectError::Dns {
        host: r.host_name.clone(),
        message: "no addresses".into(),
    };
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, r.connect_timeout) {
            Ok(s) => return Ok(s),
            Err(e) => {
                last = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => ConnectError::Refused {
                        addr: addr.to_string(),
                    },
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                        ConnectError::Timeout {
                            addr: addr.to_string(),
                            secs: r.connect_timeout.as_secs(),
                        }
                    }
                    _ => ConnectError::Network {
                        addr: addr.to_string(),
                        message: e.to_string(),
                    },
                }
            }
        }
    }
    Err(last)
}

fn is_timeout(e: &ssh2::Error) -> bool {
    e.code() == ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_TIMEOUT)
}

/// A session over `stream`, handshaken, host key verified, authenticated:
/// the same for a server and for a jump host. `who` names it in questions.
/// Returns the session and a handle on its socket.
fn start_session(
    who: &str,
    r: &config::Resolved,
    stream: OwnedFd,
    opts: &ConnectOptions,
) -> Result<(Session, OwnedFd), ConnectError> {
    let socket = stream.try_clone().map_err(|e| ConnectError::Network {
        addr: r.known_hosts_name(),
        message: e.to_string(),
    })?;
    let secs = r.connect_timeout.as_secs();
    let mut session = Session::new().map_err(|e| ConnectError::Handshake(e.to_string()))?;
    session.set_timeout(r.connect_timeout.as_millis().min(u32::MAX as u128) as u32);
    session.set_tcp_stream(stream);

    let known = known_hosts::KnownHostsFile::load(&r.known_hosts)
        .map_err(|e| ConnectError::Config(format!("{}: {e}", r.known_hosts.display())))?;
    if let Some(pref) = known.preference(&session, &r.host_name, r.port) {
        let _ = session.method_pref(ssh2::MethodType::HostKey, &pref);
    }
    session.handshake().map_err(|e| {
        if is_timeout(&e) {
            ConnectError::Handshake(format!(
                "{}:{} did not complete the handshake within {secs}s (server hung or overloaded?)",
                r.host_name, r.port
            ))
        } else {
            ConnectError::Handshake(format!("{}:{}: {}", r.host_name, r.port, e.message()))
        }
    })?;
    super::step(who, "banners and key exchange");
    verify_host_key(&session, who, r, &known, opts)?;
    auth::authenticate(&session, who, r, opts)?;
    super::step(who, "service request and authentication");
    Ok((session, socket))
}

/// The stream to a server: straight over TCP, or through its jump hosts.
fn open_stream(
    r: &config::Resolved,
    jump_sessions: usize,
    opts: &ConnectOptions,
) -> Result<OwnedFd, ConnectError> {
    if r.jumps.is_empty() {
        let tcp = tcp_connect(r)?;
        let _ = tcp.set_nodelay(true);
        return Ok(tcp.into());
    }
    opts.jumps
        .open(
            &r.jumps,
            &r.host_name,
            r.port,
            r.connect_timeout,
            jump_sessions,
            opts,
        )
        .map(OwnedFd::from)
}

impl SshTransport {
    pub fn connect(
        server: &str,
        host: &str,
        settings: &SshSettings,
        opts: &ConnectOptions,
    ) -> Result<SshTransport, ConnectError> {
        let r = config::resolve(host, settings, opts.ssh_config.as_deref())?;
        let jump_sessions = settings
            .jump_sessions
            .unwrap_or(crate::inventory::DEFAULT_JUMP_SESSIONS);
        super::step(server, "start");
        let stream = open_stream(&r, jump_sessions, opts)?;
        super::step(
            server,
            "connected (TCP, or a channel through the jump hosts)",
        );
        let (session, socket) = start_session(server, &r, stream, opts).map_err(|e| {
            // Named by the hop that failed, not by what the server's end saw.
            match opts.jumps.lost_hop(&r.jumps) {
                Some(i) => ConnectError::JumpLost {
                    hop: r.jumps[i].hop_label(),
                    place: i + 1,
                    of: r.jumps.len(),
                    target: r.known_hosts_name(),
                    error: Box::new(e),
                },
                None => e,
            }
        })?;
        session.set_keepalive(false, 15);
        let wire = pipe::Wire {
            session: &session,
            socket: &socket,
            timeout: r.connect_timeout,
        };
        let pipe = pipe::Pipe::open(server, wire).map_err(ConnectError::Sftp)?;
        Ok(SshTransport {
            describe: format!("sftp {}@{}", r.user, r.known_hosts_name()),
            banner: session.banner().map(str::to_string),
            socket,
            timeout: r.connect_timeout,
            max_read: crate::inventory::DEFAULT_MAX_CONFIG_BYTES,
            raw_sftp: None,
            pipe,
            sftp: None,
            session,
        })
    }

    fn err(&self, path: &RemotePath, e: ssh2::Error) -> TransportError {
        match e.code() {
            ErrorCode::SFTP(code) => status_error(path, code),
            ErrorCode::Session(_) if is_timeout(&e) => {
                TransportError::Disconnected("the server stopped answering (timeout)".into())
            }
            ErrorCode::Session(_) => TransportError::Disconnected(e.message().to_string()),
        }
    }

    /// libssh2's SFTP channel, opened on first use.
    fn lib(&mut self) -> Result<&Sftp, TransportError> {
        if self.sftp.is_none() {
            let sftp = self.session.sftp().map_err(|e| {
                TransportError::Disconnected(format!("cannot open an SFTP channel: {e}"))
            })?;
            self.sftp = Some(sftp);
        }
        Ok(self.sftp.as_ref().expect("opened above"))
    }

    /// Requests through [`pipe`], all in flight together.
    fn ask(&mut self, asks: &[pipe::Query<'_>]) -> Result<Vec<pipe::Reply>, TransportError> {
        self.keepalive();
        let wire = pipe::Wire {
            session: &self.session,
            socket: &self.socket,
            timeout: self.timeout,
        };
        self.pipe.exchange(wire, asks)
    }

    /// Before anything is written, renamed or removed through libssh2's
    /// channels: every file [`pipe`] read is closed (see [`pipe::Pipe::settle`]).
    fn settle(&mut self) -> Result<(), TransportError> {
        let wire = pipe::Wire {
            session: &self.session,
            socket: &self.socket,
            timeout: self.timeout,
        };
        self.pipe.settle(wire)
    }

    /// `stat` or `lstat` as the server answered it; `Ok(None)`: no such file.
    fn stat_raw(
        &mut self,
        path: &RemotePath,
        follow: bool,
    ) -> Result<Option<ssh2::FileStat>, TransportError> {
        let name = path.as_sftp();
        let ask = if follow {
            pipe::Query::Stat(name)
        } else {
            pipe::Query::Lstat(name)
        };
        let answer = self.ask(&[ask])?.pop().expect("one answer");
        pipe::stat_answer(path, answer)
    }

    /// Reads through [`pipe::gather`], limits and errors as farmkey words them.
    fn gather_raw(
        &mut self,
        files: &[RemotePath],
        lstat: bool,
        folders: &[RemotePath],
    ) -> (Vec<super::Fetched>, Vec<super::Listing>) {
        self.keepalive();
        let wire = pipe::Wire {
            session: &self.session,
            socket: &self.socket,
            timeout: self.timeout,
        };
        let got = pipe::gather(&mut self.pipe, wire, files, lstat, folders, self.max_read);
        let (reads, lists) = match got {
            Ok(got) => (got.files, got.folders),
            Err(e) => {
                let fail = |_| super::Fetched {
                    read: Err(e.clone()),
                    lstat: None,
                };
                return (
                    files.iter().map(fail).collect(),
                    folders.iter().map(|_| Err(e.clone())).collect(),
                );
            }
        };
        let mut fetched = Vec::with_capacity(files.len());
        for (path, r) in files.iter().zip(reads) {
            let lstat = r
                .lstat
                .map(|st| st.map(|st| st.map(|st| self.file_stat(st))));
            let read = match r.too_large {
                Some(size) => Err(self.too_large(path, size)),
                None => r.bytes.map(FileBytes::new),
            };
            fetched.push(super::Fetched { read, lstat });
        }
        let lists = lists
            .into_iter()
            .map(|l| {
                l.map(|names| {
                    let mut out: Vec<DirEntry> = names
                        .into_iter()
                        .filter(|(name, _)| name != "." && name != "..")
                        .map(|(name, st)| DirEntry {
                            name,
                            is_dir: st.is_dir(),
                        })
                        .collect();
                    out.sort_by(|a, b| a.name.cmp(&b.name));
                    out
                })
            })
            .collect();
        (fetched, lists)
    }

    fn keepalive(&self) {
        let _ = self.session.keepalive_send();
    }

    /// Opens `path` for writing with `flags` and writes `bytes`. File
    /// attributes are sent only as `new` asks (the ssh2 crate's open always
    /// sends a mode, which Windows servers turn into the read-only
    /// attribute): with a mode, the file is opened owner-only, written,
    /// then given its owner (where the account may) and exact mode.
    fn write_raw(
        &mut self,
        path: &RemotePath,
        bytes: &[u8],
        flags: std::ffi::c_ulong,
        new: &NewFile,
    ) -> Result<(), TransportError> {
        self.settle()?;
        let name = std::ffi::CString::new(path.as_sftp()).map_err(|_| TransportError::Refused {
            path: path.to_string(),
            reason: "NUL in path".into(),
        })?;
        let guard = self.session.raw();
        let session_ptr =
            &*guard as *const libssh2_sys::LIBSSH2_SESSION as *mut libssh2_sys::LIBSSH2_SESSION;
        // SAFETY: the session's lock is held for every libssh2 call below,
        // and the handle is closed before it is released.
        let status = unsafe {
            let raw = raw_channel(&mut self.raw_sftp, session_ptr)?;
            let last = |rc: std::ffi::c_int| -> i32 {
                if rc == libssh2_sys::LIBSSH2_ERROR_SFTP_PROTOCOL {
                    libssh2_sys::libssh2_sftp_last_error(raw) as i32
                } else {
                    rc
                }
            };
            // No attribute flags unless a mode is asked: nothing but the
            // open flags is sent.
            let mut attrs: libssh2_sys::LIBSSH2_SFTP_ATTRIBUTES = std::mem::zeroed();
            let open_mode = if new.mode.is_some() {
                attrs.flags = libssh2_sys::LIBSSH2_SFTP_ATTR_PERMISSIONS;
                0o600
            } else {
                0
            };
            let handle = libssh2_sftp_open_ex_r(
                raw,
                name.as_ptr(),
                name.as_bytes().len(),
                flags,
                open_mode,
                libssh2_sys::LIBSSH2_SFTP_OPENFILE,
                &mut attrs,
            );
            if handle.is_null() {
                Err((
                    last(libssh2_sys::libssh2_session_last_errno(session_ptr)),
                    true,
                ))
            } else {
                let mut rest = bytes;
                let mut failed = None;
                while !rest.is_empty() {
                    let n = libssh2_sys::libssh2_sftp_write(
                        handle,
                        rest.as_ptr() as *const std::ffi::c_char,
                        rest.len(),
                    );
                    if n <= 0 {
                        failed = Some(last(n as std::ffi::c_int));
                        break;
                    }
                    rest = &rest[n as usize..];
                }
                if failed.is_none() {
                    // fsync@openssh.com where offered; its absence is not an error.
                    let _ = libssh2_sys::libssh2_sftp_fsync(handle);
                    let set = |flags, fill: &dyn Fn(&mut libssh2_sys::LIBSSH2_SFTP_ATTRIBUTES)| {
                        let mut a: libssh2_sys::LIBSSH2_SFTP_ATTRIBUTES = std::mem::zeroed();
                        a.flags = flags;
                        fill(&mut a);
                        libssh2_sys::libssh2_sftp_fstat_ex(handle, &mut a, 1)
                    };
                    if let Some((uid, gid)) = new.owner {
                        // Refused unless the account may give files away:
                        // the file then stays its own.
                        let _ = set(libssh2_sys::LIBSSH2_SFTP_ATTR_UIDGID, &|a| {
                            a.uid = uid as std::ffi::c_ulong;
                            a.gid = gid as std::ffi::c_ulong;
                        });
                    }
                    if let Some(mode) = new.mode {
                        // Exact, unlike a mode at the open (the server's umask).
                        let rc = set(libssh2_sys::LIBSSH2_SFTP_ATTR_PERMISSIONS, &|a| {
                            a.permissions = mode as std::ffi::c_ulong;
                        });
                        if rc != 0 {
                            failed = Some(last(rc));
                        }
                    }
                }
                let closed = libssh2_sys::libssh2_sftp_close_handle(handle);
                match (failed, closed) {
                    (Some(code), _) => Err((code, false)),
                    (None, 0) => Ok(()),
                    (None, rc) => Err((last(rc), false)),
                }
            }
        };
        drop(guard);
        // `opening`: the open failed (nothing was created); else the file
        // was created and a write failed.
        status.map_err(|(code, opening)| match self.raw_error(path, code) {
            // OpenSSH reports an existing file under O_EXCL as a plain
            // failure: look whether something is there.
            TransportError::Io { .. }
                if opening
                    && flags & libssh2_sys::LIBSSH2_FXF_EXCL != 0
                    && matches!(self.stat_raw(path, false), Ok(Some(_))) =>
            {
                TransportError::Exists { path: path.clone() }
            }
            // OpenSSH answers a full disk or a read-only file system with
            // a plain failure too: ask the file system.
            TransportError::Io { .. } if code == fx::FAILURE => {
                self.why_not_written(path, bytes.len() as u64)
            }
            other => other,
        })
    }

    /// Why the server failed a write without saying (`statvfs@openssh.com`
    /// on the folder): a read-only file system, no space left, or just
    /// "failure" when it cannot tell.
    fn why_not_written(&mut self, path: &RemotePath, wanted: u64) -> TransportError {
        let failure = status_error(path, fx::FAILURE);
        let Some(folder) = path.parent() else {
            return failure;
        };
        let Ok(name) = std::ffi::CString::new(folder.as_sftp()) else {
            return failure;
        };
        let guard = self.session.raw();
        let session_ptr =
            &*guard as *const libssh2_sys::LIBSSH2_SESSION as *mut libssh2_sys::LIBSSH2_SESSION;
        // SAFETY: the session's lock is held for the call; `st` is valid.
        let st = unsafe {
            let Ok(raw) = raw_channel(&mut self.raw_sftp, session_ptr) else {
                return failure;
            };
            let mut st: libssh2_sys::LIBSSH2_SFTP_STATVFS = std::mem::zeroed();
            let rc = libssh2_sftp_statvfs(raw, name.as_ptr(), name.as_bytes().len(), &mut st);
            (rc == 0).then_some(st)
        };
        drop(guard);
        const ST_RDONLY: u64 = 0x1;
        match st {
            Some(st) if st.f_flag & ST_RDONLY != 0 => {
                TransportError::ReadOnly { path: path.clone() }
            }
            Some(st) if st.f_bavail.saturating_mul(st.f_frsize.max(1)) < wanted.max(1) => {
                TransportError::NoSpace { path: path.clone() }
            }
            _ => failure,
        }
    }

    /// A libssh2 return code or SFTP status from the raw channel.
    fn raw_error(&self, path: &RemotePath, code: i32) -> TransportError {
        match code {
            libssh2_sys::LIBSSH2_ERROR_TIMEOUT => {
                TransportError::Disconnected("the server stopped answering (timeout)".into())
            }
            code if code < 0 => TransportError::Disconnected(format!("libssh2 error {code}")),
            code => status_error(path, code),
        }
    }

    fn posix_rename(&mut self, from: &RemotePath, to: &RemotePath) -> Result<(), TransportError> {
        self.settle()?;
        let src = std::ffi::CString::new(from.as_sftp()).map_err(|_| TransportError::Refused {
            path: from.to_string(),
            reason: "NUL in path".into(),
        })?;
        let dst = std::ffi::CString::new(to.as_sftp()).map_err(|_| TransportError::Refused {
            path: to.to_string(),
            reason: "NUL in path".into(),
        })?;
        let guard = self.session.raw();
        let session_ptr =
            &*guard as *const libssh2_sys::LIBSSH2_SESSION as *mut libssh2_sys::LIBSSH2_SESSION;
        let rc = unsafe {
            let raw = raw_channel(&mut self.raw_sftp, session_ptr)?;
            let rc = libssh2_sftp_posix_rename_ex(
                raw,
                src.as_ptr(),
                src.as_bytes().len(),
                dst.as_ptr(),
                dst.as_bytes().len(),
            );
            if rc == libssh2_sys::LIBSSH2_ERROR_SFTP_PROTOCOL {
                libssh2_sys::libssh2_sftp_last_error(raw) as i32
            } else {
                rc
            }
        };
        drop(guard);
        match rc {
            0 => Ok(()),
            // libssh2 answers "unsupported" when the server did not announce
            // it (older versions with their generic error)
            LIBSSH2_ERROR_SOCKET_NONE | fx::OP_UNSUPPORTED => {
                Err(TransportError::Unsupported("posix-rename@openssh.com"))
            }
            fx::NO_SUCH_FILE | fx::NO_SUCH_PATH => {
                Err(TransportError::NotFound { path: from.clone() })
            }
            fx::PERMISSION_DENIED => Err(TransportError::PermissionDenied { path: to.clone() }),
            libssh2_sys::LIBSSH2_ERROR_TIMEOUT => Err(TransportError::Disconnected(
                "the server stopped answering (timeout)".into(),
            )),
            code if code < 0 => Err(TransportError::Disconnected(format!(
                "libssh2 error {code}"
            ))),
            code => Err(match status_error(to, code) {
                TransportError::Io { path, message } => TransportError::Io {
                    path,
                    message: format!("posix-rename failed: {message}"),
                },
                other => other,
            }),
        }
    }

    /// A stat or lstat answer as farmkey keeps it.
    fn file_stat(&self, st: ssh2::FileStat) -> FileStat {
        let kind = st.perm.map_or(FileKind::Regular, FileKind::from_mode);
        FileStat {
            size: st.size.unwrap_or(0),
            kind,
            modified: st.mtime,
            mode: st.perm.map(|p| p & 0o7777),
            uid: st.uid,
            gid: st.gid,
            read_only: kind == FileKind::Regular
                && !super::honours_modes(self.banner.as_deref())
                && st.perm.is_some_and(|p| p & 0o200 == 0),
        }
    }

    /// A file found larger than the read limit, with its size when known.
    fn too_large(&mut self, path: &RemotePath, size: Option<u64>) -> TransportError {
        let size = match size {
            Some(size) => Some(size),
            None => self
                .stat_raw(path, true)
                .ok()
                .flatten()
                .and_then(|s| s.size),
        };
        TransportError::TooLarge {
            path: path.clone(),
            size: size.unwrap_or(self.max_read + 1).max(self.max_read + 1),
            max: self.max_read,
        }
    }
}

impl Transport for SshTransport {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn read_many(&mut self, paths: &[RemotePath]) -> Vec<Result<FileBytes, TransportError>> {
        let (files, _) = self.gather_raw(paths, false, &[]);
        files.into_iter().map(|f| f.read).collect()
    }

    fn gather(
        &mut self,
        files: &[RemotePath],
        folders: &[RemotePath],
    ) -> (Vec<super::Fetched>, Vec<super::Listing>) {
        self.gather_raw(files, true, folders)
    }

    fn read(&mut self, path: &RemotePath) -> Result<FileBytes, TransportError> {
        let (mut files, _) = self.gather_raw(std::slice::from_ref(path), false, &[]);
        files.pop().expect("one file").read
    }

    fn stat(&mut self, path: &RemotePath) -> Result<Option<FileStat>, TransportError> {
        Ok(self.stat_raw(path, true)?.map(|st| self.file_stat(st)))
    }

    fn lstat(&mut self, path: &RemotePath) -> Result<Option<FileStat>, TransportError> {
        Ok(self.stat_raw(path, false)?.map(|st| self.file_stat(st)))
    }

    fn readlink(&mut self, path: &RemotePath) -> Result<String, TransportError> {
        match self.ask(&[pipe::Query::ReadLink(path.as_sftp())])?.pop() {
            Some(pipe::Reply::Name(mut names)) if !names.is_empty() => Ok(names.remove(0).0),
            Some(pipe::Reply::Status(code)) => Err(status_error(path, code as i32)),
            _ => Err(TransportError::Disconnected(
                "an SFTP answer of the wrong type to a readlink".into(),
            )),
        }
    }

    /// OpenSSH's sftp-server answers "no such file" for a dangling link and a loop
    /// alike (errno_to_portable maps ENOENT and ELOOP to
    /// SSH2_FX_NO_SUCH_FILE): the links are followed here, one by one, to
    /// tell them apart.
    fn link_end(&mut self, path: &RemotePath) -> Result<LinkEnd, TransportError> {
        // Win32-OpenSSH answers "Failure" for a loop (CreateFileW's
        // ERROR_CANT_RESOLVE_FILENAME passed through): the chain tells.
        match self.stat(path) {
            Ok(Some(_)) => return Ok(LinkEnd::Exists),
            Err(e) if e.is_disconnected() => return Err(e),
            Ok(None) | Err(_) => {}
        }
        let mut seen: Vec<String> = Vec::new();
        let mut cur = path.as_sftp().to_string();
        // Linux's MAXSYMLINKS: more links than this is a loop to the kernel.
        for _ in 0..40 {
            let at = |asks: Vec<pipe::Reply>| asks.into_iter().next().expect("one answer");
            let answer = at(self.ask(&[pipe::Query::Lstat(&cur)])?);
            let Some(st) = pipe::stat_answer(path, answer)? else {
                return Ok(LinkEnd::Dangling);
            };
            if st.file_type() != ssh2::FileType::Symlink {
                // Not there for `stat`, yet something is: as dangling.
                return Ok(LinkEnd::Dangling);
            }
            if seen.contains(&cur) {
                return Ok(LinkEnd::Loop);
            }
            let target = match at(self.ask(&[pipe::Query::ReadLink(&cur)])?) {
                pipe::Reply::Name(names) if !names.is_empty() => names[0].0.clone(),
                pipe::Reply::Status(code) => return Err(status_error(path, code as i32)),
                _ => {
                    return Err(TransportError::Disconnected(
                        "an SFTP answer of the wrong type to a readlink".into(),
                    ));
                }
            };
            seen.push(cur.clone());
            let here = std::path::Path::new(&cur);
            let target = std::path::Path::new(&target);
            cur = match here.parent() {
                Some(dir) if target.is_relative() => dir.join(target),
                _ => target.to_path_buf(),
            }
            .to_string_lossy()
            .into_owned();
        }
        Ok(LinkEnd::Loop)
    }

    fn set_read_limit(&mut self, max_bytes: u64) {
        self.max_read = max_bytes;
    }

    fn create_new(
        &mut self,
        path: &RemotePath,
        bytes: &[u8],
        new: &NewFile,
    ) -> Result<(), TransportError> {
        self.keepalive();
        use libssh2_sys::{LIBSSH2_FXF_CREAT, LIBSSH2_FXF_EXCL, LIBSSH2_FXF_WRITE};
        // O_CREAT|O_EXCL on OpenSSH, CREATE_NEW on Windows: never follows
        // or replaces what is there.
        self.write_raw(
            path,
            bytes,
            LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL,
            new,
        )
    }

    fn banner(&self) -> Option<String> {
        self.banner.clone()
    }

    /// On an open handle (FSETSTAT: `fchmod`/`fchown` of its descriptor,
    /// sftp-server.c process_fsetstat), so that a link put at the name
    /// after the open is never followed. SFTP's OPEN itself follows links
    /// (process_open: open(2) without O_NOFOLLOW): the name is looked at
    /// first without following, and the handle must be the file it showed.
    fn set_attrs(&mut self, path: &RemotePath, new: &NewFile) -> Result<(), TransportError> {
        if new.mode.is_none() && new.owner.is_none() {
            return Ok(());
        }
        self.keepalive();
        self.settle()?;
        let at = Path::new(path.as_sftp());
        let seen = self
            .stat_raw(path, false)?
            .ok_or_else(|| TransportError::NotFound { path: path.clone() })?;
        if seen.perm.map_or(FileKind::Regular, FileKind::from_mode) != FileKind::Regular
            && let Some(kind) = super::not_a_file(self, path)?
        {
            return Err(TransportError::NotAFile {
                path: path.clone(),
                kind,
            });
        }
        let opened = self
            .lib()?
            .open_mode(at, ssh2::OpenFlags::READ, 0, ssh2::OpenType::File);
        let mut file = opened.map_err(|e| self.err(path, e))?;
        let opened = file.stat().map_err(|e| self.err(path, e))?;
        let same = |s: &ssh2::FileStat| (s.size, s.uid, s.gid, s.perm, s.mtime);
        if same(&opened) != same(&seen) {
            // Replaced between the look and the open: what was opened is
            // another file (a link's target), never given the attributes.
            return Err(TransportError::NotAFile {
                path: path.clone(),
                kind: super::NotAFile::Link { target: None },
            });
        }
        let stat = |uid: Option<u32>, gid: Option<u32>, perm: Option<u32>| ssh2::FileStat {
            size: None,
            uid,
            gid,
            perm,
            atime: None,
            mtime: None,
        };
        if let Some((uid, gid)) = new.owner {
            // Refused unless the account may give files away: the file
            // then stays its own.
            let _ = file.setstat(stat(Some(uid), Some(gid), None));
        }
        if let Some(mode) = new.mode {
            file.setstat(stat(None, None, Some(mode)))
                .map_err(|e| self.err(path, e))?;
        }
        Ok(())
    }

    fn rename(&mut self, from: &RemotePath, to: &RemotePath) -> Result<(), TransportError> {
        self.settle()?;
        if self.stat(to)?.is_some() {
            return Err(TransportError::Exists { path: to.clone() });
        }
        let renamed = self.lib()?.rename(
            Path::new(from.as_sftp()),
            Path::new(to.as_sftp()),
            Some(ssh2::RenameFlags::empty()),
        );
        renamed.map_err(|e| self.err(from, e))
    }

    fn replace(&mut self, from: &RemotePath, to: &RemotePath) -> Result<(), TransportError> {
        self.keepalive();
        self.posix_rename(from, to)
    }

    fn remove(&mut self, path: &RemotePath) -> Result<(), TransportError> {
        self.settle()?;
        self.keepalive();
        let removed = self.lib()?.unlink(Path::new(path.as_sftp()));
        removed.map_err(|e| self.err(path, e))
    }

    fn list(&mut self, dir: &RemotePath) -> Result<Vec<DirEntry>, TransportError> {
        let (_, mut lists) = self.gather_raw(&[], false, std::slice::from_ref(dir));
        lists.pop().expect("one folder")
    }
}

fn verify_host_key(
    session: &Session,
    server: &str,
    r: &config::Resolved,
    known: &known_hosts::KnownHostsFile,
    opts: &ConnectOptions,
) -> Result<(), ConnectError> {
    let (key, key_type) = session
        .host_key()
        .ok_or_else(|| ConnectError::Handshake("the server sent no host key".into()))?;
    let type_name = known_hosts::type_name(key_type).to_string();
    let fingerprint = known_hosts::fingerprint(key);
    let host = r.known_hosts_name();
    match known.check(session, &r.host_name, r.port, key, &type_name) {
        known_hosts::HostKeyVerdict::Match => Ok(()),
        known_hosts::HostKeyVerdict::Revoked => Err(ConnectError::HostKeyRevoked {
            host,
            fingerprint,
            known_hosts: r.known_hosts.clone(),
        }),
        known_hosts::HostKeyVerdict::Changed => Err(ConnectError::HostKeyChanged {
            host,
            key_type: type_name,
            fingerprint,
            known_hosts: r.known_hosts.clone(),
        }),
        known_hosts::HostKeyVerdict::Unknown { other_types } => {
            let asked = match (opts.accept_new, opts.batch, &opts.prompter) {
                (true, _, _) => Some(HostKeyDecision::AcceptAndStore),
                (false, false, Some(p)) => crate::transport::waiting_for_operator(|| {
                    let _turn = (!p.asks_host_keys_together()).then(|| {
                        opts.secrets
                            .asking
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                    });
                    p.unknown_host(&HostKeyQuestion {
                        server: server.to_string(),
                        host: host.clone(),
                        key_type: type_name.clone(),
                        fingerprint: fingerprint.clone(),
                        known_hosts: r.known_hosts.clone(),
                        other_types: other_types.clone(),
                    })
                }),
                _ => None,
            };
            let Some(decision) = asked else {
                return Err(ConnectError::HostKeyUnknown {
                    host,
                    key_type: type_name,
                    fingerprint,
                    known_hosts: r.known_hosts.clone(),
                    other_types,
                });
            };
            match decision {
                HostKeyDecision::Refuse => Err(ConnectError::HostKeyRefused { host, fingerprint }),
                HostKeyDecision::AcceptOnce => Ok(()),
                HostKeyDecision::AcceptAndStore => {
                    known_hosts::append(&r.known_hosts, &host, &type_name, key).map_err(|e| {
                        ConnectError::KnownHostsWrite {
                            path: r.known_hosts.clone(),
                            message: e.to_string(),
                        }
                    })
                }
            }
        }
    }
}
