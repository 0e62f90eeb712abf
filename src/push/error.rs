//! The push pipeline's errors, as types: what callers decide on is a
//! variant, never the words of a message. Their texts name the server and
//! file at fault, and never a key.

use super::interrupt::StopReason;
use super::lock::LockError;
pub use super::sessions::SessionError;
use crate::config::wif::HandlerState;
use crate::paths::RemotePath;
use crate::scan::{FileProblem, ServerFailure};
use crate::transport::TransportError;

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
pub enum Refusal {
    /// The plan is blocked: each server, and why.
    #[error(
        "the push is blocked ({})",
        .0.iter().map(|(s, w)| format!("{s}: {w}")).collect::<Vec<_>>().join("; ")
    )]
    Blocked(Vec<(String, String)>),
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
