//! The console's shared model: the farm as the screens read it ([`Data`]),
//! the actions they ask for ([`Action`]) and what the workers report
//! ([`Work`]). Screens, dialogs and the push flow import it; [`app`]
//! (above them all) owns and updates it.
//!
//! [`app`]: super::app

use crate::analysis::{FarmReport, Selection};
use crate::disclosed::DisclosedKeys;
use crate::inventory::Server;
use crate::push::apply::{LockedOut, Progress, PushOutcome, RollbackResult};
use crate::push::audit::AuditRecord;
use crate::push::history::PastPush;
use crate::push::{Plan, PlanError, PushRequest};
use crate::scan::ServerScan;
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::time::{Instant, SystemTime};

/// What the push and rollback workers report, to the dialog that shows
/// them.
pub enum Work {
    /// A push plan is ready (or could not be made); `go` starts or cancels it.
    Planned {
        result: Result<Box<Plan>, PlanError>,
        go: Option<Sender<bool>>,
    },
    PushProgress(Progress),
    /// The push ended; `Err`: it did not start (its audit record could not
    /// be written).
    PushDone(Result<PushOutcome, std::io::Error>),
    /// The locks of the servers a rollback would restore, read before it
    /// is asked: the servers another push holds.
    RollbackLocks(Vec<LockedOut>),
    RollbackProgress(RollbackResult),
    /// The rollback ended; `Err`: it did not start (the audit log cannot
    /// take its records), and no server was touched.
    RollbackDone(Result<Vec<RollbackResult>, std::io::Error>),
}

/// Actions that reach the outside world go through one place, where
/// --read-only is enforced.
#[derive(Debug)]
pub enum Action {
    RescanAll,
    RescanServer(usize),
    Reveal {
        site: String,
        server: String,
    },
    /// Open the push to this site (the key choice first).
    ChoosePush {
        site: String,
    },
    /// Read the files and plan the push.
    PlanPush(PushRequest),
    /// Start (true) or cancel (false) a planned push.
    StartPush {
        go: Sender<bool>,
        start: bool,
    },
    /// Stop the running push between steps; it undoes what it changed.
    InterruptPush,
    LoadHistory,
    /// Read the backups of a site (every site: `None`) on every server;
    /// the answer comes as `Msg::Backups`.
    LoadBackups {
        site: Option<String>,
    },
    /// Open the rollback of a push of the audit log (a confirmation first).
    ChooseRollback {
        push_id: String,
    },
    /// Restore what a push changed.
    Rollback {
        push_id: String,
        site: String,
        records: Vec<AuditRecord>,
        break_lock: bool,
    },
}

impl Action {
    /// Would it change a server? Such actions are refused under --read-only.
    pub fn changes_servers(&self) -> bool {
        match self {
            Action::ChoosePush { .. }
            | Action::PlanPush(_)
            | Action::ChooseRollback { .. }
            | Action::Rollback { .. } => true,
            Action::StartPush { start, .. } => *start,
            Action::RescanAll
            | Action::RescanServer(_)
            | Action::Reveal { .. }
            | Action::InterruptPush
            | Action::LoadHistory
            | Action::LoadBackups { .. } => false,
        }
    }

    pub(super) fn what(&self) -> &'static str {
        match self {
            Action::ChooseRollback { .. } | Action::Rollback { .. } => "a rollback",
            _ => "a push",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    Connecting,
    Reading,
    Done,
}

pub struct ServerRow {
    pub server: Server,
    pub phase: Phase,
    /// Results of older scans of this server are ignored.
    pub generation: u64,
    pub started: Option<Instant>,
    pub scan: Option<ServerScan>,
    /// The jump hosts it is reached through, first hop first:
    /// `bastion (ops@10.0.0.5:2222)`.
    pub jumps: Vec<String>,
}

impl ServerRow {
    pub fn ok(&self) -> Option<bool> {
        self.scan.as_ref().map(|s| s.result.is_ok())
    }

    pub fn error(&self) -> Option<String> {
        self.scan
            .as_ref()
            .and_then(|s| s.result.as_ref().err().map(|e| e.to_string()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone)]
pub struct LogEntry {
    pub at: SystemTime,
    pub level: LogLevel,
    pub text: String,
}

/// The filter (`/`): a substring, matched without regard to case.
#[derive(Debug, Default)]
pub struct Filter {
    text: String,
    lower: String,
    pub editing: bool,
}

impl Filter {
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Whether `s` contains the filter (always, when there is none).
    pub fn matches(&self, s: &str) -> bool {
        self.lower.is_empty() || s.to_lowercase().contains(&self.lower)
    }

    pub(super) fn set(&mut self, text: String) {
        self.lower = text.to_lowercase();
        self.text = text;
    }

    pub(super) fn push_str(&mut self, s: &str) {
        let mut text = std::mem::take(&mut self.text);
        text.push_str(s);
        self.set(text);
    }

    pub(super) fn pop(&mut self) {
        let mut text = std::mem::take(&mut self.text);
        text.pop();
        self.set(text);
    }

    pub(super) fn clear(&mut self) {
        self.set(String::new());
    }
}

/// The pushes of the audit log, as last read.
#[derive(Debug, Default)]
pub struct HistoryData {
    pub path: Option<PathBuf>,
    /// Oldest first, as the log holds them.
    pub pushes: Vec<PastPush>,
    /// Why the log could not be read (its error names the log).
    pub error: Option<std::io::Error>,
    pub loading: bool,
    /// The backups last read for the History's backups view.
    pub backups: BackupsData,
}

/// The backups of a site on every server, as last read.
#[derive(Debug, Default)]
pub struct BackupsData {
    /// The site asked for (`None`: every site).
    pub site: Option<String>,
    pub servers: Vec<crate::push::backups::ServerBackups>,
    pub loading: bool,
}

/// What the screens read: the farm as scanned and analysed, the filter,
/// the session log and the audit history. Dialogs may log to it.
pub struct Data {
    pub title: String,
    pub servers: Vec<ServerRow>,
    pub report: FarmReport,
    pub selection: Selection,
    /// The lists of publicly disclosed keys the analysis checks.
    pub disclosed: DisclosedKeys,
    pub filter: Filter,
    pub log: Vec<LogEntry>,
    pub history: HistoryData,
    /// Changed since the screens built their rows.
    pub(super) changed: bool,
}

impl Data {
    pub fn log(&mut self, level: LogLevel, text: impl Into<String>) {
        self.log.push(LogEntry {
            at: SystemTime::now(),
            level,
            text: text.into(),
        });
        self.changed = true;
    }

    pub fn scanning(&self) -> usize {
        self.servers
            .iter()
            .filter(|r| r.phase != Phase::Done)
            .count()
    }
}
