//! The audit log: one JSON line per server per action, fingerprints only.

use super::Interrupt;
use crate::config::machine_key::KeyState;
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `$XDG_STATE_HOME/farmkey/audit.jsonl`, else `~/.local/state/farmkey/audit.jsonl`.
pub fn default_path() -> PathBuf {
    crate::inventory::xdg_dir("XDG_STATE_HOME", "~/.local/state")
        .join("farmkey")
        .join("audit.jsonl")
}

/// Key fingerprints: each key's, and the key set's (as the console's
/// matrix shows it). Records written before the set was recorded lack it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprints {
    #[serde(rename = "validationKey")]
    pub validation_key: Option<String>,
    #[serde(rename = "decryptionKey")]
    pub decryption_key: Option<String>,
    #[serde(rename = "keySet", default, skip_serializing_if = "Option::is_none")]
    pub key_set: Option<String>,
    /// What a key with no fingerprint was: `auto`, `encrypted`, `invalid`
    /// (as the matrix and the plan say it). Older records lack it.
    #[serde(
        rename = "validationKeyState",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub validation_state: Option<String>,
    #[serde(
        rename = "decryptionKeyState",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub decryption_state: Option<String>,
}

impl Fingerprints {
    /// A site's keys as found: fingerprints of explicit keys, what the
    /// others are.
    pub fn of(validation: &KeyState, decryption: &KeyState, key_set: Option<String>) -> Self {
        let state = |k: &KeyState| {
            k.fingerprint()
                .is_none()
                .then(|| crate::report::key_cell(k))
        };
        Fingerprints {
            validation_key: validation.fingerprint(),
            decryption_key: decryption.fingerprint(),
            key_set,
            validation_state: state(validation),
            decryption_state: state(decryption),
        }
    }

    /// The validationKey as the operator reads it: its fingerprint, or
    /// what it was (`auto`); `None` in older records of a key that had no
    /// fingerprint.
    pub fn validation_text(&self) -> Option<&str> {
        self.validation_key
            .as_deref()
            .or(self.validation_state.as_deref())
    }

    pub fn decryption_text(&self) -> Option<&str> {
        self.decryption_key
            .as_deref()
            .or(self.decryption_state.as_deref())
    }
}

crate::spelled::spelled! {
    /// What a record is about.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum AuditAction {
        Push = "push",
        Rollback = "rollback",
        /// Backups removed by `farmkey prune` (or a push's retention).
        Prune = "prune",
    }
}

crate::spelled::spelled! {
    /// How a step on one server ended.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Outcome {
        /// Written and flushed before the swap: the push may change the file.
        Intent = "intent",
        Applied = "applied",
        Unchanged = "unchanged",
        NotAttempted = "not-attempted",
        Failed = "failed",
        RolledBack = "rolled-back",
        LeftAlone = "left-alone",
        RollbackFailed = "rollback-failed",
        Refused = "refused",
        /// A backup a prune removed.
        Removed = "removed",
    }
}

impl Outcome {
    /// The server holds what it should: nothing for the operator to do.
    pub fn is_fine(self) -> bool {
        matches!(
            self,
            Outcome::Applied | Outcome::Unchanged | Outcome::RolledBack | Outcome::Removed
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub time: String,
    pub push_id: String,
    pub action: AuditAction,
    pub user: String,
    pub server: String,
    pub site: String,
    pub file: String,
    pub sha256_before: Option<String>,
    pub sha256_after: Option<String>,
    pub fingerprints_before: Fingerprints,
    pub fingerprints_after: Fingerprints,
    pub backup: Option<String>,
    /// The server's lock for the site that the push held (beside the
    /// application's web.config, also when `file` is a `configSource`
    /// file): a rollback takes the same one. Older records lack it: their
    /// lock was beside `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// Copies the push makes beside `file` (staged copy, restore copy, the
    /// original moved aside): in an intent, every one it may leave if cut
    /// short; in an outcome, those it could not remove. A rollback removes
    /// them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub temporary: Vec<String>,
    /// `intent` (written and flushed before the swap), then `applied`,
    /// `unchanged`, `not-attempted`, `failed`; for rollbacks `rolled-back`,
    /// `left-alone`, `rollback-failed`, `refused`.
    pub outcome: Outcome,
    pub message: String,
    /// The saved plan the push ran (`farmkey apply`); none for a push
    /// planned and made at once, and in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanRef>,
}

/// A saved plan as the audit log names it: its file as given to `farmkey
/// apply`, its id, and the SHA-256 of its content (what was approved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRef {
    pub file: String,
    pub id: String,
    pub sha256: String,
}

/// Who runs farmkey: `$USER`, `$LOGNAME`, else the numeric uid.
pub fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            let status = std::fs::read_to_string("/proc/self/status").ok()?;
            let uid = status
                .lines()
                .find(|l| l.starts_with("Uid:"))?
                .split_whitespace()
                .nth(1)?
                .to_string();
            Some(format!("uid {uid}"))
        })
        .unwrap_or_else(|| "unknown".to_string())
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// How long farmkey waits for another farmkey's lock on the audit log
/// (each holds it only while it appends a line or reads the log): a
/// process that holds it longer is not a farmkey appending, and nothing
/// waits for it without end.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct AuditLog {
    pub path: PathBuf,
}

/// Why the audit log did not take a record: the log, the io error's kind
/// and the system's words for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit log {}: {cause}", log.display())]
pub struct NotAppended {
    pub log: PathBuf,
    pub kind: io::ErrorKind,
    pub cause: String,
}

impl NotAppended {
    /// `e` as [`AuditLog::append`] returned it (most name the log already).
    pub fn new(log: &Path, e: &io::Error) -> NotAppended {
        let text = e.to_string();
        let named = format!("audit log {}: ", log.display());
        NotAppended {
            log: log.to_path_buf(),
            kind: e.kind(),
            cause: text.strip_prefix(&named).unwrap_or(&text).to_string(),
        }
    }
}

impl AuditLog {
    pub fn new(path: PathBuf) -> AuditLog {
        AuditLog { path }
    }

    /// Before a push or a rollback touches any server: opens the log for
    /// appending (created owner-only, its folder 0700), refuses one others
    /// could have written, takes its lock (waiting at most [`LOCK_WAIT`],
    /// and not after `stop` is asked) and reads it back whole. A log with a
    /// line that is not a record (but for one cut off) is refused, naming
    /// the line: a rollback could not read what the push appends to it.
    pub fn check_writable(&self, stop: Option<&Interrupt>) -> io::Result<()> {
        let f = self.open()?;
        self.lock(&f, LogLock::Exclusive, stop)?;
        let mut reader = io::BufReader::new(&f);
        reader.seek(SeekFrom::Start(0)).map_err(|e| self.named(e))?;
        self.parse(reader).map(|_| ())
    }

    /// An error about the log, naming it (every error does).
    fn named(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("audit log {}: {e}", self.path.display()))
    }

    fn open(&self) -> io::Result<fs::File> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            fs::create_dir_all(dir).map_err(|e| self.named(e))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| self.named(e))?;
        }
        // Read too: `append` looks at the last byte.
        let mut options = OpenOptions::new();
        options.read(true).append(true);
        let f = match options
            .clone()
            .create_new(true)
            .mode(0o600)
            .open(&self.path)
        {
            // Ours: owner-only whatever the umask (the mode at the open is
            // reduced by it, fchmod is not).
            Ok(f) => {
                f.set_permissions(fs::Permissions::from_mode(0o600))
                    .map_err(|e| self.named(e))?;
                f
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                options.open(&self.path).map_err(|e| self.named(e))?
            }
            Err(e) => return Err(self.named(e)),
        };
        self.trusted(&f)?;
        Ok(f)
    }

    /// The log as it is, `None` when there is none.
    fn open_to_read(&self) -> io::Result<Option<fs::File>> {
        let f = match fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.named(e)),
        };
        self.trusted(&f)?;
        Ok(Some(f))
    }

    /// Refuses a log someone else could have written: a rollback takes
    /// its records as input. As OpenSSH refuses a private key whose
    /// "permissions are too open" (`sshkey_perm_ok`, authfile.c), and a
    /// file with "bad ownership or modes" (`safe_path`, misc.c). Only
    /// regular files: a device (`/dev/null`) keeps no records to trust.
    fn trusted(&self, f: &fs::File) -> io::Result<()> {
        let meta = f.metadata().map_err(|e| self.named(e))?;
        if !meta.is_file() {
            return Ok(());
        }
        let me = unsafe { libc::geteuid() };
        let path = self.path.display();
        if meta.uid() != me {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "audit log {path}: bad ownership: it belongs to uid {}, not to uid {me} who runs farmkey; a rollback takes its records as input, so farmkey will not use it: use a log of your own (--audit FILE), or have it given to you (chown)",
                    meta.uid()
                ),
            ));
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "audit log {path}: permissions {mode:04o} are too open: it is required that the audit log is not writable by group or others (a rollback takes its records as input), so farmkey will not use it: chmod go-w {path}, once you have checked its records"
                ),
            ));
        }
        Ok(())
    }

    /// Takes the log's lock, trying for at most [`LOCK_WAIT`]: an error
    /// naming the log and the process that holds it (when the system says)
    /// after that, or once `stop` is asked.
    fn lock(&self, f: &fs::File, kind: LogLock, stop: Option<&Interrupt>) -> io::Result<()> {
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            let tried = match kind {
                LogLock::Exclusive => f.try_lock(),
                LogLock::Shared => f.try_lock_shared(),
            };
            match tried {
                Ok(()) => return Ok(()),
                Err(fs::TryLockError::Error(e)) => {
                    return lock_or_go_on(Err(e)).map_err(|e| self.named(e));
                }
                Err(fs::TryLockError::WouldBlock) => {}
            }
            let holder = || {
                f.metadata()
                    .ok()
                    .and_then(|m| lock_holder(&m))
                    .map(|h| format!(" (held by {h})"))
                    .unwrap_or_default()
            };
            if let Some(why) = stop.and_then(Interrupt::reason) {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    format!(
                        "audit log {}: waiting for its lock{}, stopped by {why}",
                        self.path.display(),
                        holder()
                    ),
                ));
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "audit log {}: locked by another process{} for more than {} s; farmkey appends to it only under its lock: try again once that process has ended",
                        self.path.display(),
                        holder(),
                        LOCK_WAIT.as_secs()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Adds a record, whole or not at all: a write or flush that fails (a
    /// full disk) is cut back off, which needs no space, so the log never
    /// ends with part of a record. Locked while it writes (waiting at most
    /// [`LOCK_WAIT`]): another farmkey appending to the same log is never
    /// cut off with it.
    pub fn append(&self, record: &AuditRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut f = self.open()?;
        self.lock(&f, LogLock::Exclusive, None)?;
        let meta = f.metadata().map_err(|e| self.named(e))?;
        let len = meta.len();
        // A record cut off by a crash or a power loss: ours starts on a
        // line of its own, and `read` skips that one.
        if meta.is_file() && len > 0 {
            let mut last = [0u8];
            f.seek(SeekFrom::End(-1))
                .and_then(|_| f.read_exact(&mut last))
                .map_err(|e| self.named(e))?;
            if last != *b"\n" {
                line.insert(0, b'\n');
            }
        }
        let Err(e) = f.write_all(&line).and_then(|()| f.sync_data()) else {
            return Ok(());
        };
        // Not for /dev/full and its kind: they keep nothing.
        if meta.is_file()
            && let Err(t) = f.set_len(len).and_then(|()| f.sync_data())
        {
            return Err(self.named(io::Error::new(
                e.kind(),
                format!("{e}; cutting the part written back off failed too: {t}"),
            )));
        }
        Err(self.named(e))
    }

    /// Every record; lines that do not parse are reported with their
    /// number, but for records cut off, which are skipped.
    pub fn read_all(&self) -> io::Result<Vec<AuditRecord>> {
        self.read().map(|r| r.records)
    }

    /// Every record, and a note for each record cut off and skipped: a
    /// write that never completed (a crash, a power loss, or a full disk
    /// before `append` cut its part off). Nothing relied on it: a push
    /// swaps a file only once its intent is written whole. Any other line
    /// that does not parse is an error naming it. A log others could have
    /// written is refused, as [`AuditLog::check_writable`] refuses it.
    pub fn read(&self) -> io::Result<Records> {
        let Some(f) = self.open_to_read()? else {
            return Ok(Records::default());
        };
        // Never a record being appended taken for one cut off.
        self.lock(&f, LogLock::Shared, None)?;
        self.parse(io::BufReader::new(f))
    }

    fn parse(&self, mut reader: impl BufRead) -> io::Result<Records> {
        let mut out = Records::default();
        let mut line = Vec::new();
        for n in 1.. {
            line.clear();
            reader.read_until(b'\n', &mut line).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("audit log {}:{n}: {e}", self.path.display()),
                )
            })?;
            if line.is_empty() {
                break;
            }
            let whole = line.ends_with(b"\n");
            let text = line.trim_ascii_end();
            if text.trim_ascii_start().is_empty() {
                continue;
            }
            match serde_json::from_slice(text) {
                Ok(rec) => out.records.push(rec),
                Err(_) if !whole || cut_off(text) => out.notes.push(format!(
                    "{}:{n}: a record cut off (a full disk or a crash), skipped",
                    self.path.display()
                )),
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}:{n}: not an audit record: {e}", self.path.display()),
                    ));
                }
            }
        }
        Ok(out)
    }
}

#[derive(Clone, Copy)]
enum LogLock {
    Shared,
    Exclusive,
}

/// Who holds a lock on the file `meta` describes, as `/proc/locks` says
/// (`1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF`): `pid 4242 (flock)`.
fn lock_holder(meta: &fs::Metadata) -> Option<String> {
    let dev = meta.dev();
    let file = format!(
        "{:02x}:{:02x}:{}",
        libc::major(dev),
        libc::minor(dev),
        meta.ino()
    );
    let locks = fs::read_to_string("/proc/locks").ok()?;
    let pid = locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // Waiters (`1: -> FLOCK ...`) hold nothing.
        (f.get(5) == Some(&file.as_str()) && f.get(1) != Some(&"->"))
            .then(|| f.get(4)?.parse::<i32>().ok().filter(|p| *p > 0))
            .flatten()
    })?;
    let name = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let name = name.trim();
    Some(if name.is_empty() {
        format!("pid {pid}")
    } else {
        format!("pid {pid} ({name})")
    })
}

/// A file system without locks (some network ones) still keeps the log:
/// only two farmkeys appending at the same instant could then meet.
fn lock_or_go_on(locked: io::Result<()>) -> io::Result<()> {
    match locked {
        Err(e) if e.kind() == io::ErrorKind::Unsupported => Ok(()),
        other => other,
    }
}

/// What the audit log holds.
#[derive(Debug, Default)]
pub struct Records {
    pub records: Vec<AuditRecord>,
    /// `audit.jsonl:17: a record cut off (a full disk or a crash), skipped`
    pub notes: Vec<String>,
}

/// The start of a record and nothing else: JSON that ends too soon, maybe
/// followed by the zeros a file system can leave after a power loss.
fn cut_off(line: &[u8]) -> bool {
    let end = line.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let start = &line[..end];
    start.is_empty()
        || (start.starts_with(b"{")
            && serde_json::from_slice::<serde::de::IgnoredAny>(start).is_err_and(|e| e.is_eof()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(push: &str, site: &str, outcome: Outcome) -> AuditRecord {
        AuditRecord {
            time: now(),
            push_id: push.into(),
            action: AuditAction::Push,
            user: "op".into(),
            server: "web01".into(),
            site: site.into(),
            file: "C:\\web.config".into(),
            sha256_before: None,
            sha256_after: Some("ab".into()),
            fingerprints_before: Fingerprints::default(),
            fingerprints_after: Fingerprints::default(),
            backup: None,
            lock: None,
            temporary: Vec::new(),
            outcome,
            message: String::new(),
            plan: None,
        }
    }

    /// The log is named once, whether or not the io error named it.
    #[test]
    fn a_record_not_appended_names_the_log_and_the_cause() {
        let log = Path::new("/var/log/farmkey/audit.jsonl");
        let named = io::Error::new(
            io::ErrorKind::StorageFull,
            "audit log /var/log/farmkey/audit.jsonl: No space left on device",
        );
        let bare = io::Error::new(io::ErrorKind::StorageFull, "No space left on device");
        for e in [named, bare] {
            let why = NotAppended::new(log, &e);
            assert_eq!(why.kind, io::ErrorKind::StorageFull);
            assert_eq!(why.log, log);
            assert_eq!(
                why.to_string(),
                "audit log /var/log/farmkey/audit.jsonl: No space left on device"
            );
        }
    }

    #[test]
    fn appends_reads_and_groups_records() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("state").join("farmkey").join("audit.jsonl"));
        log.check_writable(None).unwrap();
        log.append(&record("p1", "Flowtime", Outcome::Applied))
            .unwrap();
        log.append(&record("p2", "Process TOGO", Outcome::Applied))
            .unwrap();
        log.append(&record("p1", "Flowtime", Outcome::Unchanged))
            .unwrap();
        let all = log.read_all().unwrap();
        assert_eq!(all.len(), 3);
        // The vocabulary is written as it always was.
        let text = std::fs::read_to_string(&log.path).unwrap();
        assert!(
            text.contains(r#""action":"push""#) && text.contains(r#""outcome":"unchanged""#),
            "{text}"
        );
        assert!(
            !text.contains("keySet"),
            "no key set recorded: none written"
        );
        std::fs::write(&log.path, "{not json}\n").unwrap();
        let err = log.read_all().unwrap_err().to_string();
        assert!(err.contains("audit.jsonl:1:"), "{err}");
    }

    #[test]
    fn every_error_names_the_log() {
        let dir = tempfile::tempdir().unwrap();
        // A full disk: the record is refused, naming the file.
        let full = dir.path().join("audit.jsonl");
        std::os::unix::fs::symlink("/dev/full", &full).unwrap();
        let err = AuditLog::new(full.clone())
            .append(&record("p1", "Flowtime", Outcome::Intent))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("audit log {}: ", full.display()))
                && err.contains("No space left"),
            "{err}"
        );
        // A folder where the log should be, and a log that is not UTF-8.
        let folder = dir.path().join("folder.jsonl");
        std::fs::create_dir(&folder).unwrap();
        for e in [
            AuditLog::new(folder.clone())
                .check_writable(None)
                .unwrap_err(),
            AuditLog::new(folder.clone()).read_all().unwrap_err(),
        ] {
            assert!(e.to_string().contains(&folder.display().to_string()), "{e}");
        }
        let binary = dir.path().join("binary.jsonl");
        std::fs::write(&binary, b"\xff\xfe\n").unwrap();
        let e = AuditLog::new(binary.clone()).read_all().unwrap_err();
        assert!(
            e.to_string().contains(&format!("{}:1:", binary.display())),
            "{e}"
        );
        // Its folder cannot be made.
        let blocked = dir.path().join("file-not-dir");
        std::fs::write(&blocked, b"").unwrap();
        let e = AuditLog::new(blocked.join("audit.jsonl"))
            .check_writable(None)
            .unwrap_err();
        assert!(e.to_string().contains("file-not-dir"), "{e}");
    }

    /// `n` records appended to a fresh log, and the bytes of one more.
    fn log_with(n: usize) -> (tempfile::TempDir, AuditLog, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("audit.jsonl"));
        for i in 0..n {
            log.append(&record(&format!("p{i}"), "Flowtime", Outcome::Applied))
                .unwrap();
        }
        let mut next = record("late", "Flowtime", Outcome::Intent);
        next.message = "café".into();
        let bytes = serde_json::to_vec(&next).unwrap();
        (dir, log, bytes)
    }

    fn add(log: &AuditLog, bytes: &[u8]) {
        let mut f = OpenOptions::new().append(true).open(&log.path).unwrap();
        f.write_all(bytes).unwrap();
    }

    fn ids(records: &[AuditRecord]) -> Vec<&str> {
        records.iter().map(|r| r.push_id.as_str()).collect()
    }

    #[test]
    fn a_record_cut_off_at_the_end_is_skipped_with_a_note() {
        let (_dir, log, bytes) = log_with(2);
        let e_acute = bytes.windows(2).position(|w| w == "é".as_bytes()).unwrap();
        // Cut anywhere: in a name, in a character, after the last brace
        // but before the newline; or only the zeros of a power loss.
        for cut in [
            &bytes[..1],
            &bytes[..40],
            &bytes[..e_acute + 1],
            &bytes[..bytes.len() - 1],
            b"\0\0\0\0",
        ] {
            let kept = fs::read(&log.path).unwrap();
            add(&log, cut);
            let read = log.read().unwrap();
            assert_eq!(ids(&read.records), ["p0", "p1"]);
            assert_eq!(
                read.notes,
                [format!(
                    "{}:3: a record cut off (a full disk or a crash), skipped",
                    log.path.display()
                )]
            );
            fs::write(&log.path, kept).unwrap();
        }
        // Whole but for its newline: a record.
        add(&log, &bytes);
        let read = log.read().unwrap();
        assert_eq!(ids(&read.records), ["p0", "p1", "late"]);
        assert!(read.notes.is_empty());
    }

    #[test]
    fn a_record_cut_off_mid_file_is_skipped_other_lines_still_fail() {
        let (_dir, log, bytes) = log_with(1);
        let e_acute = bytes.windows(2).position(|w| w == "é".as_bytes()).unwrap();
        add(&log, &bytes[..60]);
        add(&log, b"\n");
        add(&log, &bytes[..e_acute + 1]);
        add(&log, b"\0\0\n\0\0\0\n");
        log.append(&record("p9", "Flowtime", Outcome::Applied))
            .unwrap();
        let read = log.read().unwrap();
        assert_eq!(ids(&read.records), ["p0", "p9"]);
        let lines: Vec<String> = read
            .notes
            .iter()
            .map(|n| n.rsplit_once(".jsonl:").unwrap().1.to_string())
            .collect();
        assert_eq!(
            lines,
            [2, 3, 4].map(|n| format!("{n}: a record cut off (a full disk or a crash), skipped"))
        );
        // Anything else in the middle is not taken for a cut-off record.
        let whole = fs::read(&log.path).unwrap();
        for garbage in [
            &b"{not json}"[..],
            b"{\"time\":\"2026\"}",
            b"not json {",
            b"[{\"time\":",
            b"\xff\xfe",
        ] {
            let mut text = garbage.to_vec();
            text.push(b'\n');
            text.extend_from_slice(&whole);
            fs::write(&log.path, text).unwrap();
            let err = log.read().unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{}:1: not an audit record", log.path.display())),
                "{err}"
            );
        }
    }

    #[test]
    fn an_append_after_a_cut_off_record_starts_a_line_of_its_own() {
        let (_dir, log, bytes) = log_with(1);
        add(&log, &bytes[..100]);
        log.append(&record("p1", "Flowtime", Outcome::Applied))
            .unwrap();
        log.append(&record("p2", "Flowtime", Outcome::Applied))
            .unwrap();
        let read = log.read().unwrap();
        assert_eq!(ids(&read.records), ["p0", "p1", "p2"]);
        assert_eq!(read.notes.len(), 1, "{:?}", read.notes);
        let text = fs::read(&log.path).unwrap();
        assert_eq!(
            text.split(|&b| b == b'\n').count(),
            5,
            "ends with a newline"
        );
        assert!(text.ends_with(b"\n"));
    }

    /// Made owner-only whatever the umask (here none at all, as in the
    /// report: a world-writable log), and the mode of an existing one is
    /// never changed.
    #[test]
    fn a_new_log_is_owner_only_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("state").join("audit.jsonl"));
        // Process-wide: restored at once, before anything is asserted.
        let old = unsafe { libc::umask(0o000) };
        let made = log.check_writable(None);
        unsafe { libc::umask(old) };
        made.unwrap();
        let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&log.path), 0o600);
        assert_eq!(mode(log.path.parent().unwrap()), 0o700);
        // A umask that would leave the owner without write (0400): still 0600.
        let other = AuditLog::new(dir.path().join("other.jsonl"));
        let old = unsafe { libc::umask(0o277) };
        let made = other.append(&record("p1", "Flowtime", Outcome::Applied));
        unsafe { libc::umask(old) };
        made.unwrap();
        assert_eq!(mode(&other.path), 0o600);
        fs::set_permissions(&other.path, fs::Permissions::from_mode(0o644)).unwrap();
        other
            .append(&record("p2", "Flowtime", Outcome::Applied))
            .unwrap();
        assert_eq!(
            mode(&other.path),
            0o644,
            "readable by others is the operator's choice"
        );
    }

    /// A log group or others can write, or someone else's, is refused by
    /// every use (push, rollback, history), naming it and what to do.
    #[test]
    fn a_log_others_could_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, log, _) = log_with(1);
        let before = fs::read(&log.path).unwrap();
        for mode in [0o666, 0o620, 0o602] {
            fs::set_permissions(&log.path, fs::Permissions::from_mode(mode)).unwrap();
            let path = log.path.display().to_string();
            for e in [
                log.check_writable(None).unwrap_err(),
                log.append(&record("p9", "Flowtime", Outcome::Intent))
                    .unwrap_err(),
                log.read().unwrap_err(),
            ] {
                assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
                assert_eq!(
                    e.to_string(),
                    format!(
                        "audit log {path}: permissions {mode:04o} are too open: it is required that the audit log is not writable by group or others (a rollback takes its records as input), so farmkey will not use it: chmod go-w {path}, once you have checked its records"
                    )
                );
            }
        }
        assert_eq!(fs::read(&log.path).unwrap(), before, "nothing appended");
        // Someone else's (the tests run as root: chown works).
        fs::set_permissions(&log.path, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&log.path, Some(4242), None).unwrap();
        let e = log.read().unwrap_err().to_string();
        assert!(
            e.contains("bad ownership: it belongs to uid 4242, not to uid ")
                && e.contains(&log.path.display().to_string()),
            "{e}"
        );
        assert!(log.check_writable(None).is_err());
    }

    /// A push does not append to a log a rollback could not read back: a
    /// line that is not a record refuses it, naming the line; a record cut
    /// off at the end (a crash) does not.
    #[test]
    fn a_push_refuses_a_log_it_could_not_read_back() {
        let (_dir, log, bytes) = log_with(2);
        add(&log, &bytes[..50]);
        log.check_writable(None).unwrap();
        let (_dir, log, _) = log_with(2);
        add(&log, b"{\"push_id\": \"edited\"}\n");
        log.append(&record("p3", "Flowtime", Outcome::Applied))
            .unwrap();
        let e = log.check_writable(None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(
            e.to_string()
                .starts_with(&format!("{}:3: not an audit record", log.path.display())),
            "{e}"
        );
    }

    /// Another process holding the log's lock (`flock`, util-linux): each
    /// use waits at most [`LOCK_WAIT`], then ends naming the log and the
    /// holder; a request to stop ends the wait at once.
    #[test]
    fn a_log_locked_by_another_process_is_waited_for_a_bounded_time() {
        let (_dir, log, _) = log_with(1);
        let ready = log.path.with_extension("ready");
        // Without a fork: the process that holds it is the one killed.
        let mut holder = std::process::Command::new("flock")
            .arg("--no-fork")
            .arg(&log.path)
            .args(["sh", "-c"])
            .arg(format!("touch '{}'; exec sleep 60", ready.display()))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "flock never took the lock");
            std::thread::sleep(Duration::from_millis(10));
        }
        let stop = Interrupt::new();
        stop.request(super::super::StopReason::Signal(libc::SIGQUIT));
        let started = Instant::now();
        let e = log.check_writable(Some(&stop)).unwrap_err();
        assert!(started.elapsed() < LOCK_WAIT, "{:?}", started.elapsed());
        assert_eq!(e.kind(), io::ErrorKind::Interrupted, "{e}");
        assert!(e.to_string().ends_with("stopped by SIGQUIT"), "{e}");
        let started = Instant::now();
        let e = log
            .append(&record("p2", "Flowtime", Outcome::Intent))
            .unwrap_err();
        let waited = started.elapsed();
        assert!(
            waited >= LOCK_WAIT && waited < LOCK_WAIT + Duration::from_secs(20),
            "{waited:?}"
        );
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        let e = e.to_string();
        assert!(
            e.starts_with(&format!(
                "audit log {}: locked by another process (held by pid {} (sleep)) for more than 10 s",
                log.path.display(),
                holder.id()
            )),
            "{e}"
        );
        let _ = holder.kill();
        let _ = holder.wait();
        assert_eq!(
            ids(&log.read().unwrap().records),
            ["p0"],
            "nothing appended"
        );
    }
}
