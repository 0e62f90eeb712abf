//! The push pipeline's errors, as types: what callers decide on is a
//! variant, never the words of a message. Their texts name the server and
//! file at fault, and never a key.

use super::interrupt::StopReason;
use super::lock::{Holder, LockError};
pub use super::sessions::SessionError;
use crate::config::editor::EditError;
use crate::config::locks::{Lock, Locked};
use crate::config::machine_key::RefusedElement;
use crate::config::problem::SourcePathFault;
use crate::config::wif::{HandlerReason, HandlerState, WifFault};
use crate::config::xml::XmlError;
use crate::paths::RemotePath;
use crate::scan::{FileProblem, ServerFailure};
use crate::transport::TransportError;
use std::fmt;

/// Why a written file is not what the plan asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Read(ServerFailure),
    #[error("{0} is no longer in applicationHost.config")]
    SiteGone(String),
    #[error("{0}")]
    Unreadable(FileProblem),
    #[error("the effective machine key is not the one pushed (a file above may override it)")]
    KeysDiffer,
    #[error("the session-token handler is {0}")]
    Handler(HandlerState),
}

/// Why a step of the push on one server failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Session(SessionError),
    #[error("{0}")]
    Transport(#[from] TransportError),
    #[error("the plan has no new content")]
    NoContent,
    /// Someone else wrote the file since the plan read it.
    #[error("{0} changed since the plan: someone else wrote it; left as it is")]
    ChangedSincePlan(RemotePath),
    /// The file swapped in does not hold the bytes written.
    #[error("{0} does not read back as written (someone else wrote it?)")]
    ReadBack(RemotePath),
    #[error("{0}")]
    Verify(#[from] VerifyError),
    /// The audit log did not take the intent.
    #[error("{0}")]
    Audit(String),
    /// The site's lock on the server is no longer this push's (moved by a
    /// stalled breaker, then taken by another push, or removed): the
    /// server is not written.
    #[error("{}", lock_lost(lock, now.as_deref()))]
    LockLost {
        lock: RemotePath,
        now: Option<Box<Holder>>,
    },
}

fn lock_lost(lock: &RemotePath, now: Option<&Holder>) -> String {
    match now {
        Some(h) => match h.push_id() {
            Some(id) => format!("the lock was taken by push {id}, not written ({h})"),
            None => format!("the lock is no longer this push's, not written ({h})"),
        },
        None => format!(
            "the lock {lock} is gone (removed by hand or broken by another push), not written"
        ),
    }
}

impl StepError {
    /// The session is gone: no later call on it can succeed.
    pub fn is_disconnected(&self) -> bool {
        match self {
            StepError::Session(_) => true,
            StepError::Transport(e) => e.is_disconnected(),
            _ => false,
        }
    }
}

/// Why a push did not start writing: nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushRefusal {
    /// The plan is blocked: each server, and why.
    #[error(
        "the push is blocked ({})",
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Blocked(Vec<Block>),
    #[error("interrupted by {0} before anything was written")]
    Interrupted(StopReason),
    #[error("cannot lock {server}: {error}")]
    Unreachable { server: String, error: SessionError },
    #[error("{0}")]
    Lock(LockError),
    #[error("cannot re-read {file} on {server}: {error}")]
    Reread {
        server: String,
        file: RemotePath,
        error: StepError,
    },
    /// A file changed between the plan and the locks.
    #[error(
        "{server}'s {file} changed since the plan (another push or someone else wrote it); scan again"
    )]
    Changed { server: String, file: RemotePath },
}

/// One server that keeps the push from going ahead, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub server: String,
    pub reason: BlockReason,
}

/// Why a server cannot be pushed as planned. One variant per reason, its
/// facts as fields; the sentence is [`fmt::Display`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockReason {
    /// The scan could not read the server: it may host the site.
    Unread { error: ServerFailure, site: String },
    /// The site's configuration on the server cannot be read.
    ConfigUnreadable(FileProblem),
    /// The application's physical path is not one farmkey can write to.
    PathNotWritable { physical_path: String },
    /// A handler-only push cannot fix what makes WIF refuse the section.
    HandlerFault(Box<WifFault>),
    /// A handler of the application's own: never replaced.
    CustomHandler(Box<HandlerReason>),
    /// No session to the server while planning.
    Connect(SessionError),
    /// The lock file beside web.config cannot be read.
    LockUnreadable(TransportError),
    /// The lock's folder cannot be listed for claims a push left behind.
    LockClaimsUnlisted(TransportError),
    /// Another push holds the site's lock on the server.
    Locked(Box<Holder>),
    /// A level above locks what the push writes.
    LockedAbove {
        locked: Locked,
        lock: Box<Lock>,
        file: RemotePath,
    },
    /// The WIF configuration in use is at a level a push never writes.
    SwapAbove {
        tag: String,
        line: usize,
        at: RemotePath,
        file: RemotePath,
    },
    /// A `<machineKey>` ASP.NET refuses, at a level a push never writes.
    RefusedAbove {
        refused: Box<RefusedElement>,
        file: RemotePath,
    },
    /// A file of the push cannot be read now.
    Unreadable {
        file: RemotePath,
        error: TransportError,
    },
    /// A file of the push is a link (even one to a file), a dangling link,
    /// a loop or no file at all: a push renames onto a name, which would put
    /// a copy in a link's place.
    NotAFile {
        file: RemotePath,
        kind: crate::transport::NotAFile,
    },
    /// A file of the push changed since the scan.
    ChangedSinceScan { file: RemotePath },
    /// A file of the push is not XML the editor can read.
    NotXml { file: RemotePath, error: XmlError },
    /// A `configSource` names no file ASP.NET would read.
    ConfigSource {
        file: RemotePath,
        line: usize,
        fault: SourcePathFault,
    },
    /// The file a `configSource` names does not exist.
    ConfigSourceMissing {
        file: RemotePath,
        named_in: RemotePath,
    },
    /// The file has Windows' read-only attribute.
    ReadOnly { file: RemotePath },
    /// The editor refuses to change the file.
    EditRefused { file: RemotePath, error: EditError },
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use BlockReason as R;
        match self {
            R::Unread { error, site } => write!(
                f,
                "could not be read by the scan ({error}); it may host {site}"
            ),
            R::ConfigUnreadable(p) => write!(f, "its configuration cannot be read: {p}"),
            R::PathNotWritable { physical_path } => write!(
                f,
                "its physical path {physical_path:?} is not a path farmkey can write to"
            ),
            R::HandlerFault(fault) => write!(f, "{fault}: correct it first"),
            R::CustomHandler(reason) => write!(
                f,
                "{reason}: farmkey does not replace a handler of the application's own"
            ),
            R::Connect(e) => write!(f, "cannot connect: {e}"),
            R::LockUnreadable(e) => write!(f, "cannot read its lock file: {e}"),
            R::LockClaimsUnlisted(e) => write!(f, "cannot look for claims of its lock: {e}"),
            R::Locked(h) => write!(f, "{h}"),
            R::LockedAbove { locked, lock, file } => write!(
                f,
                "{locked} is locked at a parent level by {lock}: ASP.NET refuses it in {file}; it has to be set in {} (or the lock lifted there)",
                lock.file
            ),
            R::SwapAbove {
                tag,
                line,
                at,
                file,
            } => write!(
                f,
                "the {tag} WIF uses is at line {line} of {at}, a level a push does not write: the handler swap has to be added there (the same element in {file} would make WIF fail at start-up, ID7029)"
            ),
            R::RefusedAbove { refused, file } => write!(
                f,
                "<machineKey> at line {} of {} is one ASP.NET refuses ({}): the application does not start whatever {file} says; correct it there first (a push never writes a parent level)",
                refused.line,
                refused.file,
                refused.fault.resource()
            ),
            R::Unreadable { file, error } => write!(f, "cannot read {file}: {error}"),
            R::NotAFile { file, kind } => {
                write!(f, "{file} is {kind}: farmkey never replaces or removes it")
            }
            R::ChangedSinceScan { file } => write!(f, "{file} changed since the scan; scan again"),
            R::NotXml { file, error } => write!(f, "{file}: {error}"),
            R::ConfigSource { file, line, fault } => {
                write!(f, "{file}: the configSource at line {line} {fault}")
            }
            R::ConfigSourceMissing { file, named_in } => write!(
                f,
                "{file}, named by configSource in {named_in}, does not exist"
            ),
            R::ReadOnly { file } => write!(
                f,
                "{file} is read-only (its read-only attribute is set): Windows refuses to replace it; clear it (attrib -r \"{file}\") and scan again"
            ),
            R::EditRefused { file, error } => write!(f, "{file}: {error}"),
        }
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.server, self.reason)
    }
}
