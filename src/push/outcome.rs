//! What a push did: per server, and where the site stands in the end, with
//! the last line that says so.

use super::and_list;
use super::audit::Outcome;
use super::error::{PushRefusal, StepError};
use super::interrupt::StopReason;
use crate::paths::RemotePath;
use std::fmt;

/// The step a server failed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Reread,
    Backup,
    Stage,
    Audit,
    Swap,
    Verify,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Reread => "re-reading the file",
            Step::Backup => "writing the backup",
            Step::Stage => "uploading the new file",
            Step::Audit => "recording it in the audit log",
            Step::Swap => "swapping it into place",
            Step::Verify => "verifying the result",
        })
    }
}

/// What became of the file after a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restore {
    /// It holds its original bytes: the change never landed.
    Untouched,
    /// Restored from its backup and verified.
    Restored,
    /// It holds bytes this push did not write: left as it is.
    LeftAlone(Foreign),
    /// Could not be restored: the reason, and where the backup is.
    Failed(String),
}

/// Why a server of the push was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAttempted {
    /// Refused before the first write (blocked, locked, changed).
    NotStarted,
    /// Stopped between servers.
    Interrupted(StopReason),
    /// Stopped after its copies were made, before its swap.
    BeforeSwap(StopReason),
    /// A server before it failed.
    EarlierFailed,
}

impl fmt::Display for NotAttempted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotAttempted::NotStarted => f.write_str("the push did not start"),
            NotAttempted::Interrupted(r) => write!(f, "interrupted by {r}"),
            NotAttempted::BeforeSwap(r) => write!(f, "interrupted by {r} before its swap"),
            NotAttempted::EarlierFailed => f.write_str("an earlier step of the push failed"),
        }
    }
}

/// Why a file the push wrote is not the push's to bring back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Foreign {
    /// It holds other bytes (the first 12 hex digits of their SHA-256).
    Changed { sha256: String },
    /// It is gone, and not by this push's swap.
    Removed,
    /// It changed while farmkey restored it.
    ChangedDuringRestore,
    /// It is no regular file now (a link, even to what the push wrote):
    /// someone else put it there, and restoring or removing it would turn
    /// a link into a file or delete what it is.
    NotAFile(Box<(RemotePath, crate::transport::NotAFile)>),
}

impl fmt::Display for Foreign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Foreign::Changed { sha256 } => write!(
                f,
                "it holds bytes this push did not write (sha256 {sha256}…): someone else changed it"
            ),
            Foreign::Removed => f.write_str("it was removed by someone else"),
            Foreign::ChangedDuringRestore => {
                f.write_str("it changed while farmkey restored it: someone else writes it")
            }
            Foreign::NotAFile(at) => {
                let (path, kind) = at.as_ref();
                write!(f, "{path} is {kind}: farmkey never replaces or removes it")
            }
        }
    }
}

/// A file farmkey made beside a configuration file and could not remove,
/// and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub path: RemotePath,
    pub why: String,
}

impl Leftover {
    pub fn new(path: &RemotePath, why: String) -> Leftover {
        Leftover {
            path: path.clone(),
            why,
        }
    }
}

/// A file a push made on a server and could not remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftBehind {
    pub server: String,
    pub path: RemotePath,
    pub kind: LeftKind,
    /// Why it could not be removed.
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftKind {
    /// The push's lock: the server did not answer again (or another push
    /// took the lock).
    Lock,
    /// The push's lock, on a server that answers, in a folder farmkey's
    /// account may no longer change (read-only, permission denied).
    LockInReadOnlyFolder,
    /// A staged copy, a restore copy, or the original moved aside:
    /// `farmkey rollback` removes it.
    Copy,
}

impl fmt::Display for LeftBehind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (server, path, why) = (&self.server, &self.path, &self.why);
        match self.kind {
            LeftKind::Lock | LeftKind::LockInReadOnlyFolder => {
                write!(f, "the lock {path} on {server} ({why})")
            }
            LeftKind::Copy => write!(f, "{path} on {server} ({why})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOutcome {
    Applied,
    Unchanged,
    /// Not tried: the push was refused, or stopped before this server.
    NotAttempted(NotAttempted),
    Failed {
        step: Step,
        error: StepError,
        /// The file the restore concerns (named in the text).
        file: RemotePath,
        restore: Restore,
    },
    /// Applied, then restored because the push did not complete.
    RolledBack,
    /// Applied, then found holding bytes this push did not write: left alone.
    LeftAlone(Foreign),
    /// Applied, and could not be restored.
    RollbackFailed(String),
}

impl ServerOutcome {
    /// As the audit log records it.
    pub fn recorded(&self) -> Outcome {
        match self {
            ServerOutcome::Applied => Outcome::Applied,
            ServerOutcome::Unchanged => Outcome::Unchanged,
            ServerOutcome::NotAttempted(_) => Outcome::NotAttempted,
            ServerOutcome::Failed { .. } => Outcome::Failed,
            ServerOutcome::RolledBack => Outcome::RolledBack,
            ServerOutcome::LeftAlone(_) => Outcome::LeftAlone,
            ServerOutcome::RollbackFailed(_) => Outcome::RollbackFailed,
        }
    }

    /// What its audit record says besides the outcome: nothing when the
    /// server ended as asked (applied, or rolled back), else this text.
    pub fn audit_message(&self) -> String {
        match self {
            ServerOutcome::Applied | ServerOutcome::RolledBack => String::new(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for ServerOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerOutcome::Applied => f.write_str("applied and verified"),
            ServerOutcome::Unchanged => f.write_str("unchanged (already correct)"),
            ServerOutcome::NotAttempted(why) => write!(f, "not attempted: {why}"),
            ServerOutcome::Failed {
                step,
                error,
                file,
                restore,
            } => {
                let name = file.file_name().unwrap_or("the file");
                write!(f, "FAILED {step}: {error}; {name} ")?;
                match restore {
                    Restore::Untouched => f.write_str("holds its original bytes"),
                    Restore::Restored => f.write_str("restored from its backup and verified"),
                    Restore::LeftAlone(why) => write!(f, "left as it is: {why}"),
                    Restore::Failed(why) => write!(f, "could NOT be restored: {why}"),
                }
            }
            ServerOutcome::RolledBack => {
                f.write_str("rolled back: original bytes restored and verified")
            }
            ServerOutcome::LeftAlone(why) => write!(f, "NOT rolled back: {why}"),
            ServerOutcome::RollbackFailed(why) => write!(f, "ROLLBACK FAILED: {why}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerResult {
    pub server: String,
    pub file: RemotePath,
    pub outcome: ServerOutcome,
    pub sha_before: Option<String>,
    pub sha_after: Option<String>,
    pub backup: Option<RemotePath>,
}

/// What a server of the push holds at the end, re-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalState {
    /// The bytes this push wrote.
    Pushed,
    /// Its bytes from before the push.
    Original,
    /// A server the plan left unchanged, still holding what was planned.
    Correct,
    /// Bytes this push did not write, in this file (the one the plan wrote,
    /// or another it read).
    Foreign(RemotePath),
    /// Could not be re-read, and this push never wrote it: it holds what
    /// it held before (its original bytes, or the correct ones).
    NotWritten(StepError),
    /// Could not be re-read after this push wrote it.
    Unknown(StepError),
}

/// Where a push that writes no keys (`--handler-only`) leaves them: as
/// the scan found them on the servers of the push.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysLeft {
    /// Each server's key set (its letter), when they are not one set;
    /// `None` for keys that are not explicit (generated per server).
    pub differ: Vec<(String, Option<char>)>,
    /// Servers with a publicly disclosed key.
    pub disclosed_on: Vec<String>,
}

impl KeysLeft {
    /// The keys of these instances, as scanned.
    pub fn of(instances: &[&crate::analysis::Instance]) -> KeysLeft {
        let groups: Vec<(String, Option<char>)> = instances
            .iter()
            .map(|i| (i.server.clone(), i.key_group))
            .collect();
        let one_set = groups.windows(2).all(|w| w[0].1 == w[1].1)
            && (groups.len() < 2 || groups.iter().all(|(_, g)| g.is_some()));
        KeysLeft {
            differ: if one_set { Vec::new() } else { groups },
            disclosed_on: instances
                .iter()
                .filter(|i| i.is_disclosed())
                .map(|i| i.server.clone())
                .collect(),
        }
    }

    pub fn in_step(&self) -> bool {
        self.differ.is_empty() && self.disclosed_on.is_empty()
    }
}

impl fmt::Display for KeysLeft {
    /// Why they are not in step: `they still differ (web01 set A, web02
    /// set B); web01 uses a publicly disclosed key`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.differ.is_empty() {
            let sets: Vec<String> = self
                .differ
                .iter()
                .map(|(s, g)| match g {
                    Some(l) => format!("{s} set {l}"),
                    None => format!("{s} no explicit keys"),
                })
                .collect();
            parts.push(format!("they still differ ({})", sets.join(", ")));
        }
        if !self.disclosed_on.is_empty() {
            let verb = if self.disclosed_on.len() == 1 {
                "uses"
            } else {
                "use"
            };
            parts.push(format!(
                "{} {verb} a publicly disclosed key",
                and_list(&self.disclosed_on)
            ));
        }
        f.write_str(&parts.join("; "))
    }
}

/// Where the site stands after a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushVerdict {
    /// Every server of the push holds the new configuration.
    InStep,
    /// Every server holds what it held before: nothing changed.
    AsBefore,
    /// Anything else: some servers changed, or cannot be told.
    OutOfStep,
}

#[derive(Debug, Clone)]
pub struct PushOutcome {
    pub push_id: String,
    pub site: String,
    pub results: Vec<ServerResult>,
    /// Records the audit log could not take.
    pub audit_errors: Vec<String>,
    /// Why the push did not start writing (blocked plan, lock held, a file
    /// changed since the plan, interrupted before the first write).
    pub refused: Option<PushRefusal>,
    /// The interruption the push honoured, if any.
    pub interrupted: Option<StopReason>,
    /// Lock files and copies the push made and could not remove (a server
    /// not reached again, a copy another process holds open), with why.
    pub leftovers: Vec<LeftBehind>,
    /// Every server of the push as re-read at the end.
    pub final_state: Vec<(String, FinalState)>,
    /// Servers left out by name.
    pub excluded: Vec<String>,
    pub keep_partial: bool,
    /// A push that writes no keys: the keys it left as they were.
    pub keys_left: Option<KeysLeft>,
}

impl PushOutcome {
    /// Where the site stands: out of step when the push wrote what it
    /// planned but left keys that are not in step (`--handler-only`).
    pub fn verdict(&self) -> PushVerdict {
        match self.written() {
            PushVerdict::InStep if self.keys_not_in_step().is_some() => PushVerdict::OutOfStep,
            v => v,
        }
    }

    fn keys_not_in_step(&self) -> Option<&KeysLeft> {
        self.keys_left.as_ref().filter(|k| !k.in_step())
    }

    /// Where what the push wrote stands.
    fn written(&self) -> PushVerdict {
        if self.refused.is_some() || self.final_state.is_empty() {
            return PushVerdict::AsBefore;
        }
        let all = |ok: fn(&FinalState) -> bool| self.final_state.iter().all(|(_, s)| ok(s));
        // A server this push never wrote counts as it was when it could
        // not be reached again; any other failure to read it (a file made
        // a folder, access refused) leaves its state unknown.
        let was = |s: &FinalState| match s {
            FinalState::Original | FinalState::Correct => true,
            FinalState::NotWritten(e) => e.is_disconnected(),
            _ => false,
        };
        if all(|s| matches!(s, FinalState::Pushed | FinalState::Correct)) {
            PushVerdict::InStep
        } else if all(was) {
            PushVerdict::AsBefore
        } else {
            PushVerdict::OutOfStep
        }
    }

    /// Every server of the push ends correct.
    pub fn success(&self) -> bool {
        self.verdict() == PushVerdict::InStep
    }

    /// How a result's file is named to the operator ([`super::file_label`]).
    pub fn label(&self, r: &ServerResult) -> String {
        let files: Vec<(&str, String)> = self
            .results
            .iter()
            .map(|r| (r.server.as_str(), r.file.to_string()))
            .collect();
        super::file_label(
            files.iter().map(|(s, f)| (*s, f.as_str())),
            &r.server,
            &r.file.to_string(),
        )
    }

    fn servers_where(&self, pred: impl Fn(&ServerOutcome) -> bool) -> Vec<String> {
        self.results
            .iter()
            .filter(|r| pred(&r.outcome))
            .map(|r| self.label(r))
            .collect()
    }

    fn final_where(&self, pred: impl Fn(&FinalState) -> bool) -> Vec<&str> {
        self.final_state
            .iter()
            .filter(|(_, s)| pred(s))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Why the push did not complete, in a few words.
    fn why_not(&self) -> String {
        if let Some(r) = &self.refused {
            return r.to_string();
        }
        let mut why = Vec::new();
        if let Some(r) = self.interrupted {
            why.push(format!("interrupted by {r}"));
        }
        for r in &self.results {
            if let ServerOutcome::Failed { step, error, .. } = &r.outcome {
                why.push(format!("{} failed {step}: {error}", self.label(r)));
            }
        }
        if !self.audit_errors.is_empty() && why.is_empty() {
            why.push("the audit log could not take a record".into());
        }
        why.join("; ")
    }

    /// The last line: where the site stands, and what to do.
    pub fn summary(&self) -> String {
        let id = &self.push_id;
        let site = &self.site;
        let mut line = match self.written() {
            PushVerdict::InStep => {
                let written = self.servers_where(|o| *o == ServerOutcome::Applied).len();
                let correct = self.servers_where(|o| *o == ServerOutcome::Unchanged).len();
                let counts = format!(
                    "{written} written, {correct} already correct; re-read from each server"
                );
                let mut s = match self.keys_not_in_step() {
                    None => format!(
                        "Push {id}: {site} is in step on every server of the push ({counts})."
                    ),
                    Some(keys) => format!(
                        "Push {id}: the session-token handler of {site} is in step on every server of the push ({counts}), but its keys are OUT OF STEP: {keys}. This push wrote no keys: push new ones with `farmkey push --site \"{site}\" --generate`."
                    ),
                };
                if let Some(r) = self.interrupted {
                    s.push_str(&format!(" {r} came after the last server was written."));
                }
                s
            }
            PushVerdict::AsBefore => {
                let rolled = self.servers_where(|o| *o == ServerOutcome::RolledBack);
                let mut s = format!(
                    "Push {id} NOT made: {}; {site} is as it was",
                    self.why_not()
                );
                let unread: Vec<&str> =
                    self.final_where(|s| matches!(s, FinalState::NotWritten(_)));
                if self.refused.is_some() {
                    s.push_str(": nothing was written.");
                } else if rolled.is_empty() {
                    s.push_str(" on every server (re-read from each");
                } else {
                    s.push_str(&format!(
                        " on every server: {} rolled back (re-read from each",
                        and_list(&rolled)
                    ));
                }
                if self.refused.is_none() {
                    if unread.is_empty() {
                        s.push_str(").");
                    } else {
                        s.push_str(&format!(
                            " but {}, which could not be reached again; this push never wrote there).",
                            and_list(&unread)
                        ));
                    }
                }
                s
            }
            PushVerdict::OutOfStep => {
                let mut parts = Vec::new();
                let pushed = self.final_where(|s| *s == FinalState::Pushed);
                if !pushed.is_empty() {
                    parts.push(format!("{} hold the new configuration", and_list(&pushed)));
                }
                let old = self.final_where(|s| *s == FinalState::Original);
                if !old.is_empty() {
                    parts.push(format!("{} the one from before", and_list(&old)));
                }
                for (n, s) in &self.final_state {
                    match s {
                        FinalState::Foreign(file) => parts.push(format!(
                            "{n} a {} farmkey did not write (someone else changed {file}; left alone)",
                            file.file_name().unwrap_or_default()
                        )),
                        FinalState::Unknown(e) => {
                            parts.push(format!("{n} could not be re-read ({e})"))
                        }
                        FinalState::NotWritten(e) => parts.push(format!(
                            "{n} could not be re-read ({e}), but this push never wrote it"
                        )),
                        _ => {}
                    }
                }
                let advice = if self.keep_partial && self.interrupted.is_none() {
                    format!(
                        "--keep-partial kept the servers already changed; fix the cause and push again, or undo with `farmkey rollback --site \"{site}\" --push {id}`"
                    )
                } else {
                    format!(
                        "check those servers, then push again or undo with `farmkey rollback --site \"{site}\" --push {id}`"
                    )
                };
                let why = self.why_not();
                let why = if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({why})")
                };
                format!(
                    "Push {id}: {site} is OUT OF STEP{why}: {}. Users moved between these servers are signed out: {advice}.",
                    parts.join("; ")
                )
            }
        };
        if !self.excluded.is_empty() {
            line.push_str(&format!(
                " Left out by name: {} (not pushed).",
                and_list(&self.excluded)
            ));
        }
        if !self.leftovers.is_empty() {
            let items: Vec<String> = self.leftovers.iter().map(|l| l.to_string()).collect();
            line.push_str(&format!(" Left behind: {}.", items.join("; ")));
            if self.leftovers.iter().any(|l| l.kind == LeftKind::Copy) {
                line.push_str(&format!(
                    " `farmkey rollback --site \"{site}\" --push {id}` removes the copies once the server lets it (they may hold keys)."
                ));
            }
            if self.leftovers.iter().any(|l| l.kind == LeftKind::Lock) {
                line.push_str(
                    " Remove a lock once the server answers and no push of the site runs (or break it: --break-lock).",
                );
            }
            if self
                .leftovers
                .iter()
                .any(|l| l.kind == LeftKind::LockInReadOnlyFolder)
            {
                line.push_str(
                    " The server answers, but its lock's folder is read-only to farmkey's account: remove the lock there as an account that may, once no push of the site runs.",
                );
            }
        }
        line
    }
}

/// Progress of a push, for live displays.
#[derive(Debug, Clone)]
pub enum Progress {
    Step {
        server: String,
        file: RemotePath,
        step: Step,
    },
    Done(ServerResult),
    /// A stage of the whole push (locks, rollback, re-reading).
    Note(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One check of each sentence; everything else asserts on the values.
    #[test]
    fn why_a_file_is_left_alone_and_a_server_not_written_read_as_said() {
        let said = |f: Foreign| f.to_string();
        assert_eq!(
            said(Foreign::Changed {
                sha256: "77aa01234567".into()
            }),
            "it holds bytes this push did not write (sha256 77aa01234567…): someone else changed it"
        );
        assert_eq!(said(Foreign::Removed), "it was removed by someone else");
        assert_eq!(
            said(Foreign::ChangedDuringRestore),
            "it changed while farmkey restored it: someone else writes it"
        );
        let said = |n: NotAttempted| ServerOutcome::NotAttempted(n).to_string();
        assert_eq!(
            said(NotAttempted::NotStarted),
            "not attempted: the push did not start"
        );
        assert_eq!(
            said(NotAttempted::EarlierFailed),
            "not attempted: an earlier step of the push failed"
        );
        let r = StopReason::Operator;
        assert_eq!(
            said(NotAttempted::Interrupted(r)),
            format!("not attempted: interrupted by {r}")
        );
        assert_eq!(
            said(NotAttempted::BeforeSwap(r)),
            format!("not attempted: interrupted by {r} before its swap")
        );
    }
}
