//! A Win32-OpenSSH stand-in: an SSH server in this process (russh) whose
//! SFTP subsystem answers as `sftp-server.c` and `contrib/win32/win32compat`
//! of PowerShell/openssh-portable do at 7.7, 8.1, 8.6 and 9.5, over a
//! folder holding the server's drives (`C:`, `D:`).
//!
//! Why not a real sshd: the banner (`SSH-2.0-OpenSSH_for_Windows_8.1`) is
//! hashed into the key exchange, and farmkey decides how a swap behaves from
//! it; a Linux sshd cannot present another one. Why hand-written SFTP: every
//! status code and message, the extensions each version advertises and the
//! order of the steps inside a rename are what is being modelled, and SFTP
//! v3 is a dozen packet types.
//!
//! Every behaviour cites the source it follows as `openssh-portable TAG
//! FILE:LINE function`. Where the path leaves openssh-portable for the C
//! runtime (`_wunlink`, `_wrename`, `_wchmod`) or the Win32 API, the mapping
//! of Win32 errors to errno is the UCRT's (`__acrt_errno_map_os_error`:
//! ERROR_ACCESS_DENIED and ERROR_SHARING_VIOLATION to EACCES,
//! ERROR_ALREADY_EXISTS and ERROR_FILE_EXISTS to EEXIST).
//!
//! A file is read-only (FILE_ATTRIBUTE_READONLY) when its owner-write bit
//! is clear in the folder; the stand-in enforces it (the tests run as root).
//! Fault switches, shared with the test: files held open by another process
//! for a number of tries, a connection dropped in the middle of a swap with
//! the server away for a while, a slow server, a full disk; and counters of
//! the requests served.

#![allow(dead_code)]

use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId};
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The Win32-OpenSSH releases modelled (the tags of PowerShell/openssh-portable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WinVersion {
    /// v7.7.2.0: the build in Windows Server 2019 and Windows 10 1809.
    V7_7,
    /// v8.1.0.0: the build in Windows Server 2022 and Windows 11.
    V8_1,
    /// v8.6.0.0: the first whose posix-rename is atomic.
    V8_6,
    /// v9.5.0.0.
    V9_5,
}

impl WinVersion {
    pub const ALL: [WinVersion; 4] = [
        WinVersion::V7_7,
        WinVersion::V8_1,
        WinVersion::V8_6,
        WinVersion::V9_5,
    ];

    pub fn number(self) -> &'static str {
        match self {
            WinVersion::V7_7 => "7.7",
            WinVersion::V8_1 => "8.1",
            WinVersion::V8_6 => "8.6",
            WinVersion::V9_5 => "9.5",
        }
    }

    /// The identification string sshd sends: `SSH-2.0-` SSH_VERSION
    /// (openssh-portable v7.7.2.0 sshd.c:385, v8.1.0.0 kex.c:1181, v9.5.0.0
    /// kex.c:1357), `OpenSSH_for_Windows_8.1` at v8.1.0.0 version.h:3.
    pub fn banner(self) -> String {
        format!("SSH-2.0-OpenSSH_for_Windows_{}", self.number())
    }

    /// posix-rename is MoveFileExW(MOVEFILE_REPLACE_EXISTING) from 8.6
    /// (commit 106db2b "Make w32_rename() Atomic For Files").
    pub fn atomic_rename(self) -> bool {
        self >= WinVersion::V8_6
    }

    /// The extensions SSH_FXP_VERSION advertises, in order.
    pub fn extensions(self) -> Vec<(&'static str, &'static str)> {
        let mut v = vec![
            // openssh-portable v7.7.2.0 sftp-server.c:656 process_init
            ("posix-rename@openssh.com", "1"),
            ("statvfs@openssh.com", "2"),
        ];
        if self < WinVersion::V8_6 {
            // openssh-portable v8.1.0.0 sftp-server.c:666 process_init;
            // from v8.6.0.0 sftp-server.c:706 it is `#ifndef WINDOWS`.
            v.push(("fstatvfs@openssh.com", "2"));
        }
        v.push(("hardlink@openssh.com", "1"));
        v.push(("fsync@openssh.com", "1"));
        if self >= WinVersion::V8_1 {
            // openssh-portable v8.1.0.0 sftp-server.c:674 process_init
            v.push(("lsetstat@openssh.com", "1"));
        }
        if self >= WinVersion::V8_6 {
            // openssh-portable v8.6.0.0 sftp-server.c:712 process_init
            v.push(("limits@openssh.com", "1"));
        }
        if self >= WinVersion::V9_5 {
            // openssh-portable v9.5.0.0 sftp-server.c:742 process_init
            // (users-groups-by-id is `#ifndef WINDOWS`, :745)
            v.push(("expand-path@openssh.com", "1"));
            v.push(("copy-data", "1"));
            v.push(("home-directory", "1"));
        }
        v
    }
}

// SFTP v3 (draft-ietf-secsh-filexfer-02) packet types and codes.
const FXP_INIT: u8 = 1;
const FXP_VERSION: u8 = 2;
const FXP_OPEN: u8 = 3;
const FXP_CLOSE: u8 = 4;
const FXP_READ: u8 = 5;
const FXP_WRITE: u8 = 6;
const FXP_LSTAT: u8 = 7;
const FXP_FSTAT: u8 = 8;
const FXP_SETSTAT: u8 = 9;
const FXP_FSETSTAT: u8 = 10;
const FXP_OPENDIR: u8 = 11;
const FXP_READDIR: u8 = 12;
const FXP_REMOVE: u8 = 13;
const FXP_MKDIR: u8 = 14;
const FXP_RMDIR: u8 = 15;
const FXP_REALPATH: u8 = 16;
const FXP_STAT: u8 = 17;
const FXP_RENAME: u8 = 18;
const FXP_READLINK: u8 = 19;
const FXP_STATUS: u8 = 101;
const FXP_HANDLE: u8 = 102;
const FXP_DATA: u8 = 103;
const FXP_NAME: u8 = 104;
const FXP_ATTRS: u8 = 105;
const FXP_EXTENDED: u8 = 200;
const FXP_EXTENDED_REPLY: u8 = 201;

const FX_OK: u32 = 0;
const FX_EOF: u32 = 1;
const FX_NO_SUCH_FILE: u32 = 2;
const FX_PERMISSION_DENIED: u32 = 3;
const FX_FAILURE: u32 = 4;
const FX_BAD_MESSAGE: u32 = 5;
const FX_OP_UNSUPPORTED: u32 = 8;

const ATTR_SIZE: u32 = 1;
const ATTR_UIDGID: u32 = 2;
const ATTR_PERMISSIONS: u32 = 4;
const ATTR_ACMODTIME: u32 = 8;
const ATTR_EXTENDED: u32 = 0x8000_0000;

const FXF_READ: u32 = 1;
const FXF_WRITE: u32 = 2;
const FXF_APPEND: u32 = 4;
const FXF_CREAT: u32 = 8;
const FXF_TRUNC: u32 = 0x10;
const FXF_EXCL: u32 = 0x20;

/// openssh-portable v8.1.0.0 sftp-server.c:497 status_to_message (the same
/// table at every tag: v9.5.0.0 sftp-server.c:541).
fn status_message(code: u32) -> &'static str {
    match code {
        0 => "Success",
        1 => "End of file",
        2 => "No such file",
        3 => "Permission denied",
        4 => "Failure",
        5 => "Bad message",
        6 => "No connection",
        7 => "Connection lost",
        8 => "Operation unsupported",
        _ => "Unknown error",
    }
}

/// The Win32 errors the modelled calls fail with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Win32 {
    FileNotFound,
    PathNotFound,
    AccessDenied,
    SharingViolation,
    /// ERROR_FILE_EXISTS (80): CreateFileW(CREATE_NEW).
    FileExists,
    /// ERROR_ALREADY_EXISTS (183): CreateHardLinkW, MoveFileExW.
    AlreadyExists,
    DiskFull,
    /// ERROR_CANT_RESOLVE_FILENAME (1921): CreateFileW through a symbolic
    /// link that loops.
    CantResolveFilename,
}

/// A Win32 error through win32compat's own mapping, then sftp-server's:
/// openssh-portable v8.1.0.0 contrib/win32/win32compat/fileio.c:87
/// errno_from_Win32Error (unlisted errors pass through as their number)
/// and sftp-server.c:187 errno_to_portable (anything but ENOENT, EACCES and
/// a few others is SSH2_FX_FAILURE). So a sharing violation (32), an
/// existing name (80 is EEXIST, 183 passes through) and a full disk (112)
/// all end as "Failure".
fn via_win32compat(e: Win32) -> u32 {
    match e {
        Win32::FileNotFound | Win32::PathNotFound => FX_NO_SUCH_FILE,
        Win32::AccessDenied => FX_PERMISSION_DENIED,
        Win32::SharingViolation
        | Win32::FileExists
        | Win32::AlreadyExists
        | Win32::DiskFull
        | Win32::CantResolveFilename => FX_FAILURE,
    }
}

/// A Win32 error through the C runtime (`_wunlink`, `_wrename`, `_wchmod`),
/// then errno_to_portable (openssh-portable v8.1.0.0 sftp-server.c:187):
/// the UCRT maps a sharing violation to EACCES, so it reads "Permission
/// denied" here, and an existing name to EEXIST ("Failure").
fn via_crt(e: Win32) -> u32 {
    match e {
        Win32::FileNotFound | Win32::PathNotFound => FX_NO_SUCH_FILE,
        Win32::AccessDenied | Win32::SharingViolation => FX_PERMISSION_DENIED,
        Win32::FileExists | Win32::AlreadyExists | Win32::DiskFull | Win32::CantResolveFilename => {
            FX_FAILURE
        }
    }
}

/// A file another process holds open (System.Configuration reads with
/// FileShare.Read; an antivirus scanner): deleting it, or renaming it or
/// onto it, fails with ERROR_SHARING_VIOLATION while tries are left.
struct Hold {
    /// A Windows path (`/C:/inetpub/Flowtime/web.config`), `*` and `?`
    /// allowed, matched without regard to case.
    pattern: wildmatch::WildMatch,
    /// The one file held: the first the pattern matched.
    file: Option<String>,
    tries: u32,
}

/// What a test can change and watch while the server runs.
#[derive(Default)]
struct Faults {
    holds: Vec<Hold>,
    /// Sharing violations served.
    refused: u32,
    /// Added before every reply.
    slow: Duration,
    /// At the next posix-rename: drop every connection (on 7.7 and 8.1,
    /// after the delete, before the rename) and refuse new ones this long.
    drop_at_swap: Option<Duration>,
    /// New connections are closed unanswered until then.
    away_until: Option<Instant>,
    /// Bumped when the server "restarts": sessions of an older epoch end.
    epoch: u64,
    disk_full: bool,
    /// Requests served, by name (`open`, `read`, `posix-rename`, ...).
    requests: HashMap<&'static str, u64>,
}

struct Shared {
    version: WinVersion,
    /// Holds `C:` (and `D:`).
    root: PathBuf,
    client_key: russh::keys::PublicKey,
    faults: Mutex<Faults>,
    /// Files the stand-in itself holds open (by handle), with their count:
    /// sftp-server opens with no FILE_SHARE_DELETE (openssh-portable
    /// v8.1.0.0 contrib/win32/win32compat/fileio.c:331 createFile_flags_setup),
    /// so a file open in a session cannot be renamed or deleted meanwhile.
    open: Mutex<HashMap<PathBuf, u32>>,
}

/// One stand-in server on 127.0.0.1.
pub struct WinServer {
    pub name: String,
    pub version: WinVersion,
    pub port: u16,
    /// The folder holding `C:`.
    pub root: PathBuf,
    /// `ssh-ed25519 AAAA...`
    pub host_key: String,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

impl WinServer {
    /// Serves a copy of `tree` (a folder holding `C:`) at `version`, letting
    /// in the holder of `client_pub` (`ssh-ed25519 AAAA...`).
    pub fn start(name: &str, tree: &Path, version: WinVersion, client_pub: &str) -> WinServer {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("drives");
        crate::support::copy_tree(tree, &root);
        let key_path = dir.path().join("host_ed25519");
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&key_path)
            .output()
            .expect("ssh-keygen (openssh-client)");
        assert!(out.status.success(), "ssh-keygen failed");
        let host_key: String = fs::read_to_string(key_path.with_extension("pub"))
            .unwrap()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let key = russh::keys::load_secret_key(&key_path, None).unwrap();
        let client_key =
            russh::keys::parse_public_key_base64(client_pub.split_whitespace().nth(1).unwrap())
                .unwrap();
        let shared = Arc::new(Shared {
            version,
            root: root.clone(),
            client_key,
            faults: Mutex::new(Faults::default()),
            open: Mutex::new(HashMap::new()),
        });
        let config = Arc::new(russh::server::Config {
            server_id: russh::SshId::Standard(version.banner().into()),
            keys: vec![key],
            auth_rejection_time: Duration::from_millis(10),
            inactivity_timeout: Some(Duration::from_secs(120)),
            nodelay: true,
            ..Default::default()
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let accept_shared = shared.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (away, epoch) = {
                    let f = accept_shared.faults.lock().unwrap();
                    (f.away_until.is_some_and(|t| Instant::now() < t), f.epoch)
                };
                if away {
                    // The service is restarting: nobody answers.
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let handler = Connection {
                    shared: accept_shared.clone(),
                    epoch,
                    sftp: HashMap::new(),
                    handles: HashMap::new(),
                    next_handle: 0,
                };
                let config = config.clone();
                tokio::spawn(async move {
                    if let Ok(running) = russh::server::run_stream(config, stream, handler).await {
                        let _ = running.await;
                    }
                });
            }
        });
        WinServer {
            name: name.to_string(),
            version,
            port,
            root,
            host_key,
            shared,
            runtime: Some(runtime),
            _dir: dir,
        }
    }

    /// The file in the server's folder for a Windows path (`C:/x/web.config`).
    pub fn file(&self, windows_path: &str) -> PathBuf {
        self.root
            .join(windows_path.replace('\\', "/").trim_start_matches('/'))
    }

    /// Another process holds the first file matching `pattern` (a Windows
    /// path, `*` allowed, any case) that is deleted or renamed, open for
    /// that and the next attempts, `tries` in all (`u32::MAX`: for good).
    pub fn hold(&self, pattern: &str, tries: u32) {
        self.shared.faults.lock().unwrap().holds.push(Hold {
            pattern: wildmatch::WildMatch::new(&pattern.to_lowercase()),
            file: None,
            tries,
        });
    }

    /// Lets go of every held file.
    pub fn release(&self) {
        self.shared.faults.lock().unwrap().holds.clear();
    }

    /// How many sharing violations were served.
    pub fn refusals(&self) -> u32 {
        self.shared.faults.lock().unwrap().refused
    }

    /// Every reply waits this long first.
    pub fn slow(&self, delay: Duration) {
        self.shared.faults.lock().unwrap().slow = delay;
    }

    /// At the next posix-rename, the connection drops (7.7 and 8.1: after
    /// the target was deleted, before the rename) and the server answers no
    /// one for `away`.
    pub fn drop_at_swap(&self, away: Duration) {
        self.shared.faults.lock().unwrap().drop_at_swap = Some(away);
    }

    /// Whether the armed [`WinServer::drop_at_swap`] happened.
    pub fn dropped(&self) -> bool {
        let f = self.shared.faults.lock().unwrap();
        f.drop_at_swap.is_none() && f.epoch > 0
    }

    pub fn disk_full(&self, full: bool) {
        self.shared.faults.lock().unwrap().disk_full = full;
    }

    /// Requests of one kind served so far (`read`, `open`, `posix-rename`).
    pub fn requests(&self, kind: &str) -> u64 {
        *self
            .shared
            .faults
            .lock()
            .unwrap()
            .requests
            .get(kind)
            .unwrap_or(&0)
    }

    pub fn reset_requests(&self) {
        self.shared.faults.lock().unwrap().requests.clear();
    }

    /// Sets or clears the read-only attribute of a file.
    pub fn set_read_only(&self, windows_path: &str, read_only: bool) {
        let p = self.file(windows_path);
        let mode = fs::metadata(&p).unwrap().permissions().mode();
        let mode = if read_only {
            mode & !0o222
        } else {
            mode | 0o200
        };
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
}

impl Drop for WinServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// One SSH connection.
struct Connection {
    shared: Arc<Shared>,
    epoch: u64,
    /// The channels running the SFTP subsystem (each its own sftp-server
    /// process on Windows), with the bytes of packets not yet complete.
    sftp: HashMap<ChannelId, Vec<u8>>,
    handles: HashMap<u32, OpenHandle>,
    next_handle: u32,
}

enum OpenHandle {
    File {
        file: fs::File,
        path: PathBuf,
        writable: bool,
    },
    Dir {
        path: PathBuf,
        done: bool,
    },
}

/// Why a connection ends: the server went away.
#[derive(Debug)]
struct Dropped;

impl From<russh::Error> for Dropped {
    fn from(_: russh::Error) -> Dropped {
        Dropped
    }
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the stand-in dropped the connection")
    }
}

impl russh::server::Handler for Connection {
    type Error = Dropped;

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(
            if key.public_key.key_data() == self.shared.client_key.key_data() {
                Auth::Accept
            } else {
                Auth::reject()
            },
        )
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name == "sftp" {
            self.sftp.insert(channel, Vec::new());
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(inbox) = self.sftp.get_mut(&channel) else {
            return Ok(());
        };
        inbox.extend_from_slice(data);
        loop {
            let Some(inbox) = self.sftp.get_mut(&channel) else {
                return Ok(());
            };
            if inbox.len() < 4 {
                break;
            }
            let len = u32::from_be_bytes(inbox[..4].try_into().unwrap()) as usize;
            if inbox.len() < 4 + len {
                break;
            }
            let packet: Vec<u8> = inbox.drain(..4 + len).skip(4).collect();
            let (slow, epoch) = {
                let f = self.shared.faults.lock().unwrap();
                (f.slow, f.epoch)
            };
            if epoch != self.epoch {
                return Err(Dropped);
            }
            if !slow.is_zero() {
                tokio::time::sleep(slow).await;
            }
            let reply = self.serve(&packet)?;
            if !reply.is_empty() {
                session.data(channel, reply)?;
            }
        }
        Ok(())
    }
}

/// Reads SFTP fields.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn u32(&mut self) -> Option<u32> {
        let b = self.0.get(..4)?;
        self.0 = &self.0[4..];
        Some(u32::from_be_bytes(b.try_into().unwrap()))
    }
    fn u64(&mut self) -> Option<u64> {
        Some((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }
    fn bytes(&mut self) -> Option<&[u8]> {
        let n = self.u32()? as usize;
        let b = self.0.get(..n)?;
        self.0 = &self.0[n..];
        Some(b)
    }
    fn string(&mut self) -> Option<String> {
        self.bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
    fn attrs(&mut self) -> Option<Attrs> {
        let flags = self.u32()?;
        let mut a = Attrs {
            flags,
            ..Default::default()
        };
        if flags & ATTR_SIZE != 0 {
            a.size = self.u64()?;
        }
        if flags & ATTR_UIDGID != 0 {
            a.uid = self.u32()?;
            a.gid = self.u32()?;
        }
        if flags & ATTR_PERMISSIONS != 0 {
            a.perm = self.u32()?;
        }
        if flags & ATTR_ACMODTIME != 0 {
            a.atime = self.u32()?;
            a.mtime = self.u32()?;
        }
        if flags & ATTR_EXTENDED != 0 {
            for _ in 0..self.u32()? {
                self.bytes()?;
                self.bytes()?;
            }
        }
        Some(a)
    }
}

#[derive(Default, Clone, Copy)]
struct Attrs {
    flags: u32,
    size: u64,
    uid: u32,
    gid: u32,
    perm: u32,
    atime: u32,
    mtime: u32,
}

/// An SFTP reply being built.
struct Out(Vec<u8>);

impl Out {
    fn new(kind: u8, id: u32) -> Out {
        let mut o = Out(vec![0, 0, 0, 0, kind]);
        o.u32(id);
        o
    }
    fn u32(&mut self, v: u32) -> &mut Out {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Out {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Out {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
        self
    }
    fn attrs(&mut self, a: &Attrs) -> &mut Out {
        self.u32(a.flags);
        if a.flags & ATTR_SIZE != 0 {
            self.u64(a.size);
        }
        if a.flags & ATTR_UIDGID != 0 {
            self.u32(a.uid).u32(a.gid);
        }
        if a.flags & ATTR_PERMISSIONS != 0 {
            self.u32(a.perm);
        }
        if a.flags & ATTR_ACMODTIME != 0 {
            self.u32(a.atime).u32(a.mtime);
        }
        self
    }
    fn done(mut self) -> Vec<u8> {
        let len = (self.0.len() - 4) as u32;
        self.0[..4].copy_from_slice(&len.to_be_bytes());
        self.0
    }
}

/// openssh-portable v8.1.0.0 sftp-server.c:515 send_status: code, message,
/// empty language tag.
fn status(id: u32, code: u32) -> Vec<u8> {
    let mut o = Out::new(FXP_STATUS, id);
    o.u32(code)
        .bytes(status_message(code).as_bytes())
        .bytes(b"");
    o.done()
}

/// A path as the Windows server sees it, found in the server's folder.
struct Found {
    /// In the folder: the stored case of every existing component.
    real: PathBuf,
    /// The same with the last component as sent: the name a rename gives.
    sent: PathBuf,
    exists: bool,
}

/// Case-insensitive equality of names as NTFS compares them (its upcase
/// table; lower-casing is the same for the names tests use).
fn same_name(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

/// openssh-portable v8.1.0.0 contrib/win32/win32compat/misc.c:953 realpath:
/// `/C:/x` loses its first slash, `_wfullpath` takes `/` and `\` alike,
/// drops `.`, resolves `..` and, as GetFullPathNameW does, drops a single
/// trailing period of each component and every trailing dot and space of
/// the last one. The case stays as sent (no file is looked at). Returns
/// the drive (`C:`) and the components.
pub fn windows_path(path: &str) -> (String, Vec<String>) {
    let unified = path.replace('\\', "/");
    let (drive, rest) = match unified.strip_prefix('/').unwrap_or(&unified) {
        p if p.len() >= 2 && p.as_bytes()[1] == b':' && p.as_bytes()[0].is_ascii_alphabetic() => {
            (p[..2].to_ascii_uppercase(), p[2..].to_string())
        }
        // A path without a drive is on the current drive.
        _ => ("C:".to_string(), unified.clone()),
    };
    let mut parts: Vec<String> = Vec::new();
    for seg in rest.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            // A segment ending in one period loses it ("File path formats
            // on Windows", Microsoft's documentation of the normalisation).
            s if s.ends_with('.') && !s.ends_with("..") => parts.push(s[..s.len() - 1].to_string()),
            s => parts.push(s.to_string()),
        }
    }
    if let Some(last) = parts.last_mut() {
        let trimmed = last.trim_end_matches(['.', ' ']).to_string();
        if trimmed.is_empty() {
            parts.pop();
        } else {
            *last = trimmed;
        }
    }
    (drive, parts)
}

impl Shared {
    /// Finds `path` in the folder without regard to case (NTFS keeps the
    /// case a name was created with and finds it in any case).
    fn find(&self, path: &str) -> Result<Found, Win32> {
        let (drive, parts) = windows_path(path);
        let mut real = self.root.join(&drive);
        if !real.is_dir() {
            return Err(Win32::PathNotFound);
        }
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if !real.is_dir() {
                return Err(Win32::PathNotFound);
            }
            let exact = real.join(part);
            let hit = if fs::symlink_metadata(&exact).is_ok() {
                Some(exact)
            } else {
                fs::read_dir(&real)
                    .map_err(|_| Win32::PathNotFound)?
                    .flatten()
                    .find(|e| same_name(&e.file_name().to_string_lossy(), part))
                    .map(|e| e.path())
            };
            match hit {
                Some(p) => real = p,
                None if last => {
                    return Ok(Found {
                        real: real.join(part),
                        sent: real.join(part),
                        exists: false,
                    });
                }
                None => return Err(Win32::PathNotFound),
            }
        }
        let sent = match (real.parent(), parts.last()) {
            (Some(dir), Some(name)) => dir.join(name),
            _ => real.clone(),
        };
        Ok(Found {
            real,
            sent,
            exists: true,
        })
    }

    fn existing(&self, path: &str) -> Result<PathBuf, Win32> {
        let f = self.find(path)?;
        if f.exists {
            Ok(f.real)
        } else {
            Err(Win32::FileNotFound)
        }
    }

    /// The Windows path of a file in the folder, for matching holds.
    fn windows_name(&self, real: &Path) -> String {
        let rel = real.strip_prefix(&self.root).unwrap_or(real);
        format!("/{}", rel.to_string_lossy()).to_lowercase()
    }

    /// Opening `real` with DELETE access (a delete, a rename of it or onto
    /// it): refused while another process or one of the server's own
    /// handles holds it, each refusal using up one try of a hold.
    fn delete_access(&self, real: &Path) -> Result<(), Win32> {
        if self.open.lock().unwrap().get(real).is_some_and(|n| *n > 0) {
            return Err(Win32::SharingViolation);
        }
        let name = self.windows_name(real);
        let mut f = self.faults.lock().unwrap();
        let Some(hold) = f.holds.iter_mut().find(|h| {
            h.tries > 0
                && match &h.file {
                    Some(held) => *held == name,
                    None => h.pattern.matches(&name),
                }
        }) else {
            return Ok(());
        };
        hold.file = Some(name);
        if hold.tries != u32::MAX {
            hold.tries -= 1;
        }
        f.refused += 1;
        Err(Win32::SharingViolation)
    }

    /// Why CreateFileW fails through a symbolic link that leads nowhere:
    /// a dangling one is ERROR_FILE_NOT_FOUND ("No such file"), one that
    /// loops ERROR_CANT_RESOLVE_FILENAME, which errno_from_Win32Error
    /// (contrib/win32/win32compat/fileio.c) passes through as its number
    /// and errno_to_portable (sftp-server.c) answers as "Failure". `None`
    /// when `real` is no link or leads to something.
    fn broken_link(real: &Path) -> Option<Win32> {
        if !fs::symlink_metadata(real).is_ok_and(|m| m.file_type().is_symlink()) {
            return None;
        }
        match fs::metadata(real) {
            Ok(_) => None,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Some(Win32::CantResolveFilename),
            Err(_) => Some(Win32::FileNotFound),
        }
    }

    fn read_only(real: &Path) -> bool {
        fs::metadata(real).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o200 == 0)
    }

    /// DeleteFileW (through `_wunlink`): a folder or a read-only file is
    /// ERROR_ACCESS_DENIED, a held one ERROR_SHARING_VIOLATION.
    fn delete_file(&self, real: &Path) -> Result<(), Win32> {
        let meta = fs::symlink_metadata(real).map_err(|_| Win32::FileNotFound)?;
        if meta.is_dir() || Self::read_only(real) {
            return Err(Win32::AccessDenied);
        }
        self.delete_access(real)?;
        fs::remove_file(real).map_err(|_| Win32::AccessDenied)
    }

    /// The attributes sftp-server sends for a file: openssh-portable
    /// v8.1.0.0 contrib/win32/win32compat/fileio.c:798
    /// fileio_stat_or_lstat_internal (uid and gid 0) and misc.c:653
    /// file_attr_to_st_mode (the write bit only without
    /// FILE_ATTRIBUTE_READONLY; "others" get the owner's bits where the
    /// ACL lets Everyone read, as here).
    fn attrs(real: &Path) -> Option<Attrs> {
        let m = fs::metadata(real).ok()?;
        let perm = if m.is_dir() {
            0o040_000 | 0o755
        } else if m.permissions().mode() & 0o200 == 0 {
            0o100_000 | 0o444
        } else {
            0o100_000 | 0o644
        };
        Some(Attrs {
            flags: ATTR_SIZE | ATTR_UIDGID | ATTR_PERMISSIONS | ATTR_ACMODTIME,
            size: if m.is_dir() { 0 } else { m.len() },
            uid: 0,
            gid: 0,
            perm,
            atime: m.atime() as u32,
            mtime: m.mtime() as u32,
        })
    }
}

impl Connection {
    /// One request, one reply; `Err` drops the connection.
    fn serve(&mut self, packet: &[u8]) -> Result<Vec<u8>, Dropped> {
        let mut r = Reader(packet);
        let kind = r.u8().ok_or(Dropped)?;
        if kind == FXP_INIT {
            return Ok(self.init());
        }
        let id = r.u32().ok_or(Dropped)?;
        let name = match kind {
            FXP_OPEN => "open",
            FXP_CLOSE => "close",
            FXP_READ => "read",
            FXP_WRITE => "write",
            FXP_LSTAT => "lstat",
            FXP_FSTAT => "fstat",
            FXP_SETSTAT => "setstat",
            FXP_FSETSTAT => "fsetstat",
            FXP_OPENDIR => "opendir",
            FXP_READDIR => "readdir",
            FXP_REMOVE => "remove",
            FXP_MKDIR => "mkdir",
            FXP_RMDIR => "rmdir",
            FXP_REALPATH => "realpath",
            FXP_STAT => "stat",
            FXP_RENAME => "rename",
            FXP_READLINK => "readlink",
            FXP_EXTENDED => "extended",
            _ => "other",
        };
        *self
            .shared
            .faults
            .lock()
            .unwrap()
            .requests
            .entry(name)
            .or_default() += 1;
        let reply = match kind {
            FXP_OPEN => self.open(id, &mut r),
            FXP_CLOSE => self.close(id, &mut r),
            FXP_READ => self.read(id, &mut r),
            FXP_WRITE => self.write(id, &mut r),
            FXP_STAT => self.stat(id, &mut r),
            FXP_LSTAT => self.lstat(id, &mut r),
            FXP_READLINK => self.readlink(id, &mut r),
            FXP_FSTAT => self.fstat(id, &mut r),
            FXP_SETSTAT => self.setstat(id, &mut r, false),
            FXP_FSETSTAT => self.setstat(id, &mut r, true),
            FXP_OPENDIR => self.opendir(id, &mut r),
            FXP_READDIR => self.readdir(id, &mut r),
            FXP_REMOVE => self.remove(id, &mut r),
            FXP_MKDIR => self.mkdir(id, &mut r),
            FXP_RMDIR => self.rmdir(id, &mut r),
            FXP_REALPATH => self.realpath(id, &mut r),
            FXP_RENAME => self.rename(id, &mut r),
            FXP_EXTENDED => return self.extended(id, &mut r),
            // openssh-portable v8.1.0.0 sftp-server.c:1532 process: an
            // unknown type is logged and not answered.
            _ => return Ok(Vec::new()),
        };
        Ok(reply.unwrap_or_else(|| status(id, FX_BAD_MESSAGE)))
    }

    /// openssh-portable v8.1.0.0 sftp-server.c:647 process_init: version 3
    /// and the extensions of [`WinVersion::extensions`].
    fn init(&self) -> Vec<u8> {
        let mut o = Out(vec![0, 0, 0, 0, FXP_VERSION]);
        o.u32(3);
        for (name, version) in self.shared.version.extensions() {
            o.bytes(name.as_bytes()).bytes(version.as_bytes());
        }
        o.done()
    }

    fn handle_reply(&mut self, id: u32, h: OpenHandle) -> Vec<u8> {
        let n = self.next_handle;
        self.next_handle += 1;
        if let OpenHandle::File { path, .. } = &h {
            *self
                .shared
                .open
                .lock()
                .unwrap()
                .entry(path.clone())
                .or_default() += 1;
        }
        self.handles.insert(n, h);
        let mut o = Out::new(FXP_HANDLE, id);
        o.bytes(&n.to_be_bytes());
        o.done()
    }

    fn handle_of(r: &mut Reader) -> Option<u32> {
        let b = r.bytes()?;
        Some(u32::from_be_bytes(b.try_into().ok()?))
    }

    /// openssh-portable v8.1.0.0 sftp-server.c:682 process_open: the mode
    /// sent is not used (:707, `open(name, flags, USHRT_MAX)`: the file
    /// inherits its folder's ACL); contrib/win32/win32compat/fileio.c:298
    /// createFile_flags_setup maps CREAT|EXCL to CREATE_NEW, CREAT|TRUNC to
    /// CREATE_ALWAYS, CREAT to OPEN_ALWAYS, TRUNC to TRUNCATE_EXISTING;
    /// fileio.c:442 fileio_open passes CreateFileW's error through
    /// errno_from_Win32Error.
    fn open(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let path = r.string()?;
        let pflags = r.u32()?;
        let _ignored_mode = r.attrs()?;
        let fail = |e: Win32| Some(status(id, via_win32compat(e)));
        let found = match self.shared.find(&path) {
            Ok(f) => f,
            Err(e) => return fail(e),
        };
        let write = pflags & (FXF_WRITE | FXF_APPEND) != 0;
        let create = pflags & FXF_CREAT != 0;
        if found.exists && pflags & FXF_EXCL == 0 {
            // CreateFileW follows a link (no FILE_FLAG_OPEN_REPARSE_POINT).
            if let Some(e) = Shared::broken_link(&found.real) {
                return fail(e);
            }
        }
        if found.exists {
            if pflags & FXF_EXCL != 0 && create {
                // CREATE_NEW onto any name that matches in any case.
                return fail(Win32::FileExists);
            }
            if write && Shared::read_only(&found.real) {
                return fail(Win32::AccessDenied);
            }
            if fs::metadata(&found.real).is_ok_and(|m| m.is_dir()) && write {
                return fail(Win32::AccessDenied);
            }
        } else if !create {
            return fail(Win32::FileNotFound);
        }
        let file = fs::OpenOptions::new()
            .read(pflags & FXF_READ != 0 || !write)
            .write(write)
            .create(create)
            .truncate(pflags & FXF_TRUNC != 0)
            .open(&found.real);
        match file {
            Ok(file) => {
                if !found.exists {
                    // Created writable: the folder's inherited ACL, no
                    // read-only attribute whatever mode was sent.
                    let _ = fs::set_permissions(&found.real, fs::Permissions::from_mode(0o644));
                }
                Some(self.handle_reply(
                    id,
                    OpenHandle::File {
                        file,
                        path: found.real,
                        writable: write,
                    },
                ))
            }
            Err(_) => fail(Win32::AccessDenied),
        }
    }

    fn close(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let h = Self::handle_of(r)?;
        match self.handles.remove(&h) {
            Some(OpenHandle::File { path, .. }) => {
                let mut open = self.shared.open.lock().unwrap();
                if let Some(n) = open.get_mut(&path) {
                    *n -= 1;
                    if *n == 0 {
                        open.remove(&path);
                    }
                }
                Some(status(id, FX_OK))
            }
            Some(OpenHandle::Dir { .. }) => Some(status(id, FX_OK)),
            // openssh-portable v8.1.0.0 sftp-server.c:729 process_close:
            // handle_close (:424) of a bad handle is -1 with EBADF, which
            // errno_to_portable makes NO_SUCH_FILE.
            None => Some(status(id, FX_NO_SUCH_FILE)),
        }
    }

    /// openssh-portable v8.1.0.0 sftp-server.c:744 process_read: at most
    /// 64 KiB a request, EOF at the end.
    fn read(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let h = Self::handle_of(r)?;
        let offset = r.u64()?;
        let len = r.u32()?.min(64 * 1024) as usize;
        let Some(OpenHandle::File { file, .. }) = self.handles.get(&h) else {
            return Some(status(id, FX_FAILURE));
        };
        let mut buf = vec![0u8; len];
        match file.read_at(&mut buf, offset) {
            Ok(0) => Some(status(id, FX_EOF)),
            Ok(n) => {
                let mut o = Out::new(FXP_DATA, id);
                o.bytes(&buf[..n]);
                Some(o.done())
            }
            Err(_) => Some(status(id, FX_FAILURE)),
        }
    }

    /// openssh-portable v8.1.0.0 contrib/win32/win32compat/fileio.c:678
    /// fileio_write: a write that fails (ERROR_DISK_FULL) goes through
    /// errno_from_Win32Error, "Failure".
    fn write(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let h = Self::handle_of(r)?;
        let offset = r.u64()?;
        let data = r.bytes()?;
        if self.shared.faults.lock().unwrap().disk_full {
            return Some(status(id, via_win32compat(Win32::DiskFull)));
        }
        let Some(OpenHandle::File { file, writable, .. }) = self.handles.get(&h) else {
            return Some(status(id, FX_FAILURE));
        };
        if !*writable {
            return Some(status(id, via_win32compat(Win32::AccessDenied)));
        }
        Some(match file.write_all_at(data, offset) {
            Ok(()) => status(id, FX_OK),
            Err(_) => status(id, FX_FAILURE),
        })
    }

    /// An SSH_FXP_NAME reply of one name (REALPATH, READLINK): the name
    /// as its long name too, no attributes.
    fn one_name(id: u32, name: &str) -> Vec<u8> {
        let mut o = Out::new(FXP_NAME, id);
        o.u32(1)
            .bytes(name.as_bytes())
            .bytes(name.as_bytes())
            .attrs(&Attrs::default());
        o.done()
    }

    fn attrs_reply(id: u32, a: Option<Attrs>) -> Vec<u8> {
        match a {
            Some(a) => {
                let mut o = Out::new(FXP_ATTRS, id);
                o.attrs(&a);
                o.done()
            }
            None => status(id, FX_NO_SUCH_FILE),
        }
    }

    /// openssh-portable v8.1.0.0 contrib/win32/win32compat/fileio.c:798
    /// fileio_stat_or_lstat_internal: GetFileAttributesExW's error through
    /// errno_from_Win32Error.
    fn stat(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let path = r.string()?;
        Some(match self.shared.existing(&path) {
            Ok(real) => match Shared::broken_link(&real) {
                // The link's target opened with CreateFileW: its error.
                Some(e) => status(id, via_win32compat(e)),
                None => Self::attrs_reply(id, Shared::attrs(&real)),
            },
            Err(e) => status(id, via_win32compat(e)),
        })
    }

    /// openssh-portable v8.1.0.0 sftp-server.c:860 process_lstat, through
    /// contrib/win32/win32compat/fileio.c:889 fileio_lstat and :798
    /// fileio_stat_or_lstat_internal(do_lstat = 1): GetFileAttributesExW
    /// on the name itself; a reparse point that fileio_readlink reads (a
    /// symbolic link, IO_REPARSE_TAG_SYMLINK) is S_IFLNK in place of the
    /// other type bits ("link type supercedes other file type bits"), with
    /// the link's own size (0) and times. The same at v9.5.0.0
    /// (fileio.c:866). Any other reparse point shows as a file or folder.
    fn lstat(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let path = r.string()?;
        let real = match self.shared.existing(&path) {
            Ok(real) => real,
            Err(e) => return Some(status(id, via_win32compat(e))),
        };
        let m = match fs::symlink_metadata(&real) {
            Ok(m) if m.file_type().is_symlink() => m,
            _ => return Some(Self::attrs_reply(id, Shared::attrs(&real))),
        };
        Some(Self::attrs_reply(
            id,
            Some(Attrs {
                flags: ATTR_SIZE | ATTR_UIDGID | ATTR_PERMISSIONS | ATTR_ACMODTIME,
                size: 0,
                uid: 0,
                gid: 0,
                perm: 0o120_000 | 0o644,
                atime: m.atime() as u32,
                mtime: m.mtime() as u32,
            }),
        ))
    }

    /// openssh-portable v8.1.0.0 sftp-server.c:1261 process_readlink,
    /// through contrib/win32/win32compat/fileio.c fileio_readlink: the
    /// link's PrintName with forward slashes, `/` put before an absolute
    /// one (`C:\x` is `/C:/x`); a reparse point that is no symbolic link
    /// is EINVAL ("Bad message").
    fn readlink(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let path = r.string()?;
        let real = match self.shared.existing(&path) {
            Ok(real) => real,
            Err(e) => return Some(status(id, via_win32compat(e))),
        };
        let Ok(target) = fs::read_link(&real) else {
            return Some(status(id, FX_BAD_MESSAGE));
        };
        // A link in the served tree to a file in it: as Windows names it.
        let name = match target.strip_prefix(&self.shared.root) {
            Ok(rel) => format!("/{}", rel.to_string_lossy()),
            Err(_) => target.to_string_lossy().replace('\\', "/"),
        };
        Some(Self::one_name(id, &name))
    }

    fn fstat(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let h = Self::handle_of(r)?;
        Some(match self.handles.get(&h) {
            Some(OpenHandle::File { path, .. }) => Self::attrs_reply(id, Shared::attrs(path)),
            _ => status(id, FX_FAILURE),
        })
    }

    /// openssh-portable v8.1.0.0 sftp-server.c:916 process_setstat (and
    /// :963 process_fsetstat, which uses chmod by name on Windows: no
    /// HAVE_FCHMOD, :992): size, then permissions, then times, then owner;
    /// each failure sets the status. The mode only toggles the read-only
    /// attribute (contrib/win32/win32compat/misc.c:566 w32_chmod,
    /// `_wchmod`: owner-write clear means read-only); an owner is refused
    /// (misc.c:583 w32_chown: EOPNOTSUPP, "Failure").
    fn setstat(&mut self, id: u32, r: &mut Reader, by_handle: bool) -> Option<Vec<u8>> {
        let real = if by_handle {
            let h = Self::handle_of(r)?;
            match self.handles.get(&h) {
                Some(OpenHandle::File { path, .. }) => path.clone(),
                _ => return Some(status(id, FX_FAILURE)),
            }
        } else {
            let path = r.string()?;
            match self.shared.existing(&path) {
                Ok(p) => p,
                Err(e) => return Some(status(id, via_win32compat(e))),
            }
        };
        let a = r.attrs()?;
        let mut code = FX_OK;
        if a.flags & ATTR_SIZE != 0 {
            let ok = !Shared::read_only(&real)
                && fs::OpenOptions::new()
                    .write(true)
                    .open(&real)
                    .and_then(|f| f.set_len(a.size))
                    .is_ok();
            if !ok {
                code = via_crt(Win32::AccessDenied);
            }
        }
        if a.flags & ATTR_PERMISSIONS != 0 {
            let mode = fs::metadata(&real).map(|m| m.permissions().mode()).ok();
            if let Some(mode) = mode {
                let new = if a.perm & 0o200 != 0 {
                    mode | 0o200
                } else {
                    mode & !0o222
                };
                let _ = fs::set_permissions(&real, fs::Permissions::from_mode(new));
            }
        }
        if a.flags & ATTR_UIDGID != 0 {
            code = FX_FAILURE;
        }
        Some(status(id, code))
    }

    /// openssh-portable v8.1.0.0 sftp-server.c:1028 process_opendir and
    /// :1058 process_readdir (up to 100 names a reply, :1095), over
    /// contrib/win32/win32compat/win32_dirent.c:228 readdir, which skips
    /// `.` and `..` (:249); names come in their stored case.
    fn opendir(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let path = r.string()?;
        Some(match self.shared.existing(&path) {
            Ok(real) if real.is_dir() => self.handle_reply(
                id,
                OpenHandle::Dir {
                    path: real,
                    done: false,
                },
            ),
            Ok(_) => status(id, FX_NO_SUCH_FILE),
            Err(e) => status(id, via_win32compat(e)),
        })
    }

    fn readdir(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let h = Self::handle_of(r)?;
        let Some(OpenHandle::Dir { path, done }) = self.handles.get_mut(&h) else {
            return Some(status(id, FX_FAILURE));
        };
        if *done {
            return Some(status(id, FX_EOF));
        }
        *done = true;
        let mut names: Vec<(String, Attrs)> = Vec::new();
        let mut entries: Vec<_> = fs::read_dir(&*path).ok()?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            if let Some(a) = Shared::attrs(&e.path()) {
                names.push((e.file_name().to_string_lossy().into_owned(), a));
            }
        }
        let mut o = Out::new(FXP_NAME, id);
        o.u32(names.len() as u32);
        for (name, a) in &names {
            // sftp-server.c:1093: ls_file makes the long name (its owner
            // and date are not modelled).
            let long = format!(
                "{}rw-r--r--    1 owner    group    {:>8} Jan  1 00:00 {name}",
                if a.perm & 0o040_000 != 0 { 'd' } else { '-' },
                a.size
            );
            o.bytes(name.as_bytes()).bytes(long.as_bytes()).attrs(a);
        }
        Some(o.done())
    }

    /// openssh-portable v8.1.0.0 sftp-server.c:1114 process_remove:
    /// unlink, which is contrib/win32/win32compat/misc.c:782 w32_unlink,
    /// `_wunlink`: a read-only or held file is EACCES, "Permission denied".
    fn remove(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let path = r.string()?;
        let result = self
            .shared
            .existing(&path)
            .and_then(|real| self.shared.delete_file(&real));
        Some(match result {
            Ok(()) => status(id, FX_OK),
            Err(e) => status(id, via_crt(e)),
        })
    }

    /// openssh-portable v8.1.0.0 contrib/win32/win32compat/misc.c:874
    /// w32_mkdir (`_wmkdir`: an existing name is EEXIST, "Failure").
    fn mkdir(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let path = r.string()?;
        let _ = r.attrs()?;
        Some(match self.shared.find(&path) {
            Ok(f) if f.exists => status(id, via_crt(Win32::AlreadyExists)),
            Ok(f) => match fs::create_dir(&f.real) {
                Ok(()) => status(id, FX_OK),
                Err(_) => status(id, FX_FAILURE),
            },
            Err(e) => status(id, via_crt(e)),
        })
    }

    /// openssh-portable v8.1.0.0 contrib/win32/win32compat/misc.c:795
    /// w32_rmdir (`_wrmdir`).
    fn rmdir(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let path = r.string()?;
        Some(match self.shared.existing(&path) {
            Ok(real) => match fs::remove_dir(&real) {
                Ok(()) => status(id, FX_OK),
                Err(_) => status(id, via_crt(Win32::AccessDenied)),
            },
            Err(e) => status(id, via_crt(e)),
        })
    }

    /// openssh-portable v8.1.0.0 sftp-server.c:1169 process_realpath
    /// (:1186, the Windows `realpath`, contrib/win32/win32compat/misc.c:953): the path as sent, normalised, with
    /// forward slashes; no file is looked at, so the case stays as sent.
    fn realpath(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let path = r.string()?;
        let (drive, parts) = if path.is_empty() || path == "." {
            // The session's directory: this stand-in's home is C:\.
            ("C:".to_string(), Vec::new())
        } else {
            windows_path(&path)
        };
        let name = format!("/{drive}/{}", parts.join("/"));
        Some(Self::one_name(id, &name))
    }

    /// openssh-portable v8.1.0.0 sftp-server.c:1201 process_rename: a
    /// regular file is linked to the new name, then unlinked from the old
    /// (:1218). CreateHardLinkW onto an existing name (in any case) is
    /// ERROR_ALREADY_EXISTS, which errno_from_Win32Error passes through:
    /// "Failure" (contrib/win32/win32compat/fileio.c:1317 fileio_link).
    /// If the old name cannot be unlinked (read-only, held), the new link
    /// is unlinked again (:1246), which fails for the same reason.
    fn rename(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let old = r.string()?;
        let new = r.string()?;
        let s = &self.shared;
        let old_real = match s.existing(&old) {
            Ok(p) => p,
            Err(e) => return Some(status(id, via_win32compat(e))),
        };
        let new_found = match s.find(&new) {
            Ok(f) => f,
            Err(e) => return Some(status(id, via_win32compat(e))),
        };
        if old_real.is_dir() {
            if new_found.exists {
                return Some(status(id, FX_FAILURE));
            }
            return Some(match fs::rename(&old_real, &new_found.real) {
                Ok(()) => status(id, FX_OK),
                Err(_) => status(id, FX_FAILURE),
            });
        }
        if new_found.exists {
            return Some(status(id, via_win32compat(Win32::AlreadyExists)));
        }
        if fs::hard_link(&old_real, &new_found.real).is_err() {
            return Some(status(id, FX_FAILURE));
        }
        Some(match s.delete_file(&old_real) {
            Ok(()) => status(id, FX_OK),
            Err(e) => {
                // The spare link shares the file's attribute and its holder.
                let _ = s.delete_file(&new_found.real);
                status(id, via_crt(e))
            }
        })
    }

    fn extended(&mut self, id: u32, r: &mut Reader) -> Result<Vec<u8>, Dropped> {
        let Some(name) = r.string() else {
            return Ok(status(id, FX_BAD_MESSAGE));
        };
        let advertised = self
            .shared
            .version
            .extensions()
            .iter()
            .any(|(n, _)| *n == name);
        *self
            .shared
            .faults
            .lock()
            .unwrap()
            .requests
            .entry(match name.as_str() {
                "posix-rename@openssh.com" => "posix-rename",
                "statvfs@openssh.com" => "statvfs",
                "fsync@openssh.com" => "fsync",
                _ => "other-extended",
            })
            .or_default() += 1;
        let reply = match name.as_str() {
            _ if !advertised => None,
            "posix-rename@openssh.com" => return self.posix_rename(id, r),
            "statvfs@openssh.com" => self.statvfs(id, r),
            // FlushFileBuffers on the handle: nothing to wait for here.
            "fsync@openssh.com" => Some(status(id, FX_OK)),
            "hardlink@openssh.com" => self.hardlink(id, r),
            "lsetstat@openssh.com" => self.setstat(id, r, false),
            // Advertised but not used by farmkey: the stand-in does not
            // model them and says so.
            _ => None,
        };
        // openssh-portable v8.1.0.0 sftp-server.c:1450 process_extended:
        // an unknown request is SSH2_FX_OP_UNSUPPORTED (:1468).
        Ok(reply.unwrap_or_else(|| status(id, FX_OP_UNSUPPORTED)))
    }

    /// openssh-portable v8.1.0.0 sftp-server.c:1306
    /// process_extended_posix_rename: `rename`, which is w32_rename.
    ///
    /// Before 8.6 (v8.1.0.0 contrib/win32/win32compat/misc.c:735
    /// w32_rename; v7.7.2.0 misc.c:670 the same, looking at the target
    /// only): when both are files, the target is deleted (its failure
    /// ignored), then `_wrename` moves the file, which fails if the target
    /// is still there (EEXIST, "Failure") or the source is held (EACCES,
    /// "Permission denied", the target already gone).
    ///
    /// From 8.6 (v8.6.0.0 misc.c:732 w32_rename, commit 106db2b):
    /// MoveFileExW(MOVEFILE_REPLACE_EXISTING) in one step; its error goes
    /// through errno_from_Win32Error: a read-only target is
    /// ERROR_ACCESS_DENIED ("Permission denied"), a held source or target
    /// a sharing violation ("Failure").
    fn posix_rename(&mut self, id: u32, r: &mut Reader) -> Result<Vec<u8>, Dropped> {
        let (Some(old), Some(new)) = (r.string(), r.string()) else {
            return Ok(status(id, FX_BAD_MESSAGE));
        };
        let s = self.shared.clone();
        let drop_now = |s: &Shared| -> bool {
            let mut f = s.faults.lock().unwrap();
            match f.drop_at_swap.take() {
                Some(away) => {
                    f.away_until = Some(Instant::now() + away);
                    f.epoch += 1;
                    true
                }
                None => false,
            }
        };
        let old_found = s.find(&old);
        let new_found = s.find(&new);
        if s.version.atomic_rename() {
            if drop_now(&s) {
                return Err(Dropped);
            }
            let (old_real, new_found) = match (old_found, new_found) {
                (Err(e), _) | (_, Err(e)) => return Ok(status(id, via_win32compat(e))),
                (Ok(o), Ok(n)) if o.exists => (o.real, n),
                _ => return Ok(status(id, via_win32compat(Win32::FileNotFound))),
            };
            if let Err(e) = s.delete_access(&old_real) {
                return Ok(status(id, via_win32compat(e)));
            }
            if new_found.exists && old_real != new_found.real {
                if new_found.real.is_dir() || Shared::read_only(&new_found.real) {
                    return Ok(status(id, via_win32compat(Win32::AccessDenied)));
                }
                if let Err(e) = s.delete_access(&new_found.real) {
                    return Ok(status(id, via_win32compat(e)));
                }
            }
            // The file takes the name as sent (NTFS replaces the old entry).
            let moved = fs::rename(&old_real, &new_found.real)
                .and_then(|()| fs::rename(&new_found.real, &new_found.sent));
            return Ok(match moved {
                Ok(()) => status(id, FX_OK),
                Err(_) => status(id, FX_FAILURE),
            });
        }
        // 7.7 and 8.1: delete, then rename.
        if let (Ok(o), Ok(n)) = (&old_found, &new_found)
            && n.exists
            && n.real.is_file()
            && (o.exists && o.real.is_file() || s.version == WinVersion::V7_7)
        {
            let _ignored = s.delete_file(&n.real);
        }
        if drop_now(&s) {
            return Err(Dropped);
        }
        // `_wrename`: MoveFileExW without REPLACE_EXISTING, errors mapped
        // by the C runtime.
        let old_real = match s.find(&old) {
            Ok(f) if f.exists => f.real,
            Ok(_) => return Ok(status(id, via_crt(Win32::FileNotFound))),
            Err(e) => return Ok(status(id, via_crt(e))),
        };
        let new_found = match s.find(&new) {
            Ok(f) => f,
            Err(e) => return Ok(status(id, via_crt(e))),
        };
        if new_found.exists {
            return Ok(status(id, via_crt(Win32::AlreadyExists)));
        }
        if let Err(e) = s.delete_access(&old_real) {
            return Ok(status(id, via_crt(e)));
        }
        Ok(match fs::rename(&old_real, &new_found.real) {
            Ok(()) => status(id, FX_OK),
            Err(_) => status(id, FX_FAILURE),
        })
    }

    /// openssh-portable v8.1.0.0 sftp-server.c:1325
    /// process_extended_statvfs, contrib/win32/win32compat/misc.c:1142
    /// statvfs: GetDiskFreeSpaceW's numbers, `f_flag = 0` (a read-only
    /// volume is never flagged).
    fn statvfs(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let path = r.string()?;
        if let Err(e) = self.shared.existing(&path) {
            return Some(status(id, via_win32compat(e)));
        }
        let full = self.shared.faults.lock().unwrap().disk_full;
        let free = if full { 0 } else { 1 << 20 };
        let mut o = Out::new(FXP_EXTENDED_REPLY, id);
        o.u64(4096) // f_bsize
            .u64(4096) // f_frsize
            .u64(1 << 24) // f_blocks
            .u64(free) // f_bfree
            .u64(free) // f_bavail
            .u64(u64::MAX) // f_files (-1)
            .u64(u64::MAX) // f_ffree
            .u64(u64::MAX) // f_favail
            .u64(0) // f_fsid
            .u64(0) // f_flag
            .u64(259); // f_namemax (PATH_MAX - 1)
        Some(o.done())
    }

    /// openssh-portable v8.1.0.0 sftp-server.c:1364
    /// process_extended_hardlink: `link`, which is
    /// contrib/win32/win32compat/fileio.c:1317 fileio_link (CreateHardLinkW).
    fn hardlink(&mut self, id: u32, r: &mut Reader) -> Option<Vec<u8>> {
        let old = r.string()?;
        let new = r.string()?;
        let s = &self.shared;
        let old_real = match s.existing(&old) {
            Ok(p) => p,
            Err(e) => return Some(status(id, via_win32compat(e))),
        };
        Some(match s.find(&new) {
            Ok(f) if f.exists => status(id, via_win32compat(Win32::AlreadyExists)),
            Ok(f) => match fs::hard_link(&old_real, &f.real) {
                Ok(()) => status(id, FX_OK),
                Err(_) => status(id, FX_FAILURE),
            },
            Err(e) => status(id, via_win32compat(e)),
        })
    }
}

/// Several stand-in servers and a client side: a HOME with a key and a
/// known_hosts that trusts them.
pub struct WinFarm {
    pub servers: Vec<WinServer>,
    pub home: tempfile::TempDir,
    pub identity: PathBuf,
    pub known_hosts: PathBuf,
}

impl WinFarm {
    /// One server per (name, folder holding the drives), all at `version`.
    pub fn start(trees: &[(String, PathBuf)], version: WinVersion) -> WinFarm {
        let home = tempfile::tempdir().unwrap();
        let ssh_dir = home.path().join(".ssh");
        fs::create_dir_all(&ssh_dir).unwrap();
        fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700)).unwrap();
        let identity = ssh_dir.join("farm_ed25519");
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "farmkey-test", "-f"])
            .arg(&identity)
            .output()
            .expect("ssh-keygen (openssh-client)");
        assert!(out.status.success());
        let client_pub = fs::read_to_string(identity.with_extension("pub")).unwrap();
        let servers: Vec<WinServer> = trees
            .iter()
            .map(|(name, tree)| WinServer::start(name, tree, version, &client_pub))
            .collect();
        let known_hosts = ssh_dir.join("known_hosts");
        let kh: String = servers
            .iter()
            .map(|s| format!("[127.0.0.1]:{} {}\n", s.port, s.host_key))
            .collect();
        fs::write(&known_hosts, kh).unwrap();
        WinFarm {
            servers,
            home,
            identity,
            known_hosts,
        }
    }

    pub fn server(&self, name: &str) -> &WinServer {
        self.servers.iter().find(|s| s.name == name).unwrap()
    }

    /// An inventory of every server, connections waiting `secs` for an
    /// answer.
    pub fn inventory(&self, secs: u64) -> PathBuf {
        let mut text = format!(
            "[defaults]\nuser = \"farmkeytest\"\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\nconnect_timeout_secs = {secs}\n",
            self.identity.display(),
            self.known_hosts.display()
        );
        for s in &self.servers {
            text.push_str(&format!(
                "\n[[servers]]\nname = \"{}\"\nhost = \"127.0.0.1\"\nport = {}\n",
                s.name, s.port
            ));
        }
        let path = self.home.path().join("farmkey.toml");
        fs::write(&path, text).unwrap();
        path
    }

    /// `--batch`, no ssh config, the audit log, an inventory patient
    /// enough (20 s) for a loaded machine.
    pub fn headless_args(&self, audit: &Path) -> Vec<String> {
        crate::support::headless_args(&self.inventory(20), audit)
    }

    /// No ssh config, the inventory: what a scan takes.
    pub fn scan_args(&self) -> Vec<String> {
        let inv = self.inventory(20);
        ["--ssh-config", "/nonexistent", "-i", inv.to_str().unwrap()]
            .map(String::from)
            .to_vec()
    }

    /// The farmkey binary with HOME the farm's client home.
    pub fn farmkey(&self) -> assert_cmd::Command {
        let mut cmd =
            assert_cmd::Command::from_std(crate::support::farmkey_command(self.home.path()));
        cmd.timeout(Duration::from_secs(120));
        cmd
    }
}
