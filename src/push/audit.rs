//! The audit log: one JSON line per server per action, fingerprints only.

use crate::config::machine_key::KeyState;
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

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
    pub enum Action {
        Push = "push",
        Rollback = "rollback",
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
    }
}

impl Outcome {
    /// The server holds what it should: nothing for the operator to do.
    pub fn is_fine(self) -> bool {
        matches!(
            self,
            Outcome::Applied | Outcome::Unchanged | Outcome::RolledBack
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub time: String,
    pub push_id: String,
    pub action: Action,
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
    /// `intent` (written and flushed before the swap), then `applied`,
    /// `unchanged`, `not-attempted`, `failed`; for rollbacks `rolled-back`,
    /// `left-alone`, `rollback-failed`, `refused`.
    pub outcome: Outcome,
    pub message: String,
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

#[derive(Debug, Clone)]
pub struct AuditLog {
    pub path: PathBuf,
}

impl AuditLog {
    pub fn new(path: PathBuf) -> AuditLog {
        AuditLog { path }
    }

    /// Opens the file for appending, creating its folder (0700): a push does
    /// not start when its record cannot be kept.
    pub fn check_writable(&self) -> io::Result<()> {
        self.open().map(|_| ())
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
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                    .map_err(|e| self.named(e))?;
            }
        }
        // Read too: `append` looks at the last byte.
        OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.named(e))
    }

    /// Adds a record, whole or not at all: a write or flush that fails (a
    /// full disk) is cut back off, which needs no space, so the log never
    /// ends with part of a record. Locked while it writes: another farmkey
    /// appending to the same log is never cut off with it.
    pub fn append(&self, record: &AuditRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut f = self.open()?;
        lock_or_go_on(f.lock()).map_err(|e| self.named(e))?;
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
    /// that does not parse is an error naming it.
    pub fn read(&self) -> io::Result<Records> {
        let f = match fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Records::default()),
            Err(e) => return Err(self.named(e)),
        };
        // Never a record being appended taken for one cut off.
        lock_or_go_on(f.lock_shared()).map_err(|e| self.named(e))?;
        let mut reader = io::BufReader::new(f);
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
            action: Action::Push,
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
            outcome,
            message: String::new(),
        }
    }

    #[test]
    fn appends_reads_and_groups_records() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("state").join("farmkey").join("audit.jsonl"));
        log.check_writable().unwrap();
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
            AuditLog::new(folder.clone()).check_writable().unwrap_err(),
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
            .check_writable()
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
}
