//! Rolling back a push of the History screen: what would be restored,
//! asked first (Cancel is the default); the rollback runs on a worker with
//! the checks of `farmkey rollback` (a file changed since the push is left
//! alone and named, each server locked while it is restored, a cut-short
//! push found by its intent record); the result, server by server (or,
//! when the audit log cannot take its records, why it did not start). A
//! server refused because a push that no longer runs left its lock may be
//! rolled back again, breaking that lock.

use super::{Activity, Button, Buttons, Dialog, DialogReply, View, button_keys};
use crate::console::model::{Action, Data, LogLevel, Work};
use crate::console::theme::StyleKey;
use crate::console::ui::{KeyHelp, Ui};
use crate::push::apply::{LockedOut, RollbackError, RollbackResult};
use crate::push::audit::AuditRecord;
use crate::push::history::{file_label, restored_from};
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::text::Line;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackButton {
    Cancel,
    RollBack,
    /// Every server, a lock a push that no longer runs holds broken.
    BreakLock,
}

impl Button for RollbackButton {
    fn label(self) -> &'static str {
        match self {
            RollbackButton::Cancel => "Cancel",
            RollbackButton::RollBack => "Roll back",
            RollbackButton::BreakLock => "Break the lock and roll back",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoneButton {
    Ok,
    BreakLock,
}

impl Button for DoneButton {
    fn label(self) -> &'static str {
        match self {
            DoneButton::Ok => "OK",
            DoneButton::BreakLock => "Break the lock and roll back again",
        }
    }
}

/// Per file of a server (server, file), its result once it has one.
type Lines = Vec<(String, String, Option<RollbackResult>)>;

/// Sets the line of `server`'s `file`, added at the end when it has none.
fn set_line(lines: &mut Lines, server: &str, file: &str, result: Option<RollbackResult>) {
    match lines
        .iter_mut()
        .find(|(s, f, _)| s == server && f.eq_ignore_ascii_case(file))
    {
        Some(line) => line.2 = result,
        None => lines.push((server.to_string(), file.to_string(), result)),
    }
}

enum RollbackStage {
    /// The servers' locks being read, before anything is asked.
    Checking,
    Confirm {
        /// The servers another push holds: left out of the rollback.
        locked: Vec<LockedOut>,
        /// Some server is free to be rolled back.
        free: bool,
        buttons: Buttons<RollbackButton>,
    },
    Running {
        lines: Lines,
    },
    Done {
        results: Vec<RollbackResult>,
        /// The servers refused because of a lock that may be broken.
        retry: Vec<AuditRecord>,
        buttons: Buttons<DoneButton>,
    },
    /// Refused before any server was touched: why (the audit log, named).
    NotStarted {
        why: String,
        buttons: Buttons<DoneButton>,
    },
}

pub struct Rollback {
    push_id: String,
    site: String,
    /// What this push changed and was not rolled back since.
    targets: Vec<AuditRecord>,
    stage: RollbackStage,
}

impl Rollback {
    pub fn new(push_id: String, site: String, targets: Vec<AuditRecord>) -> Rollback {
        Rollback {
            push_id,
            site,
            targets,
            stage: RollbackStage::Checking,
        }
    }

    /// The locks read: what can be rolled back is asked; a lock a push
    /// that no longer runs holds may be broken.
    fn checked(&mut self, locked: Vec<LockedOut>) {
        let free = self
            .targets
            .iter()
            .any(|t| !locked.iter().any(|l| l.server == t.server));
        let stale = locked.iter().any(|l| !l.holder.alive_here());
        use RollbackButton::{BreakLock, Cancel, RollBack};
        let buttons = Buttons::new(match (free, stale) {
            (true, false) => &[Cancel, RollBack],
            (true, true) => &[Cancel, RollBack, BreakLock],
            (false, true) => &[Cancel, BreakLock],
            (false, false) => &[Cancel],
        });
        self.stage = RollbackStage::Confirm {
            locked,
            free,
            buttons,
        };
    }

    /// Rolls back `records`. Run again (a lock broken), it keeps the
    /// results of the servers it does not run again: the push is judged on
    /// all of them.
    fn run(&mut self, records: Vec<AuditRecord>, break_lock: bool) -> DialogReply {
        let earlier = match &mut self.stage {
            RollbackStage::Done { results, .. } => std::mem::take(results),
            _ => Vec::new(),
        };
        let mut lines: Lines = earlier
            .into_iter()
            .map(|r| (r.server.clone(), r.file.clone(), Some(r)))
            .collect();
        for r in &records {
            set_line(&mut lines, &r.server, &r.file, None);
        }
        self.stage = RollbackStage::Running { lines };
        DialogReply::Act(Action::Rollback {
            push_id: self.push_id.clone(),
            site: self.site.clone(),
            records,
            break_lock,
        })
    }

    /// The worker's results, merged by file into those the dialog already
    /// shows: an earlier run's.
    fn done(&mut self, results: Vec<RollbackResult>) {
        let mut lines = match &mut self.stage {
            RollbackStage::Running { lines } => std::mem::take(lines),
            _ => Vec::new(),
        };
        for r in results {
            let (server, file) = (r.server.clone(), r.file.clone());
            set_line(&mut lines, &server, &file, Some(r));
        }
        let results: Vec<RollbackResult> = lines.into_iter().filter_map(|(_, _, r)| r).collect();
        let retry: Vec<AuditRecord> = results
            .iter()
            .filter(|r| {
                r.result
                    .as_ref()
                    .err()
                    .and_then(|e| e.breakable_lock())
                    .is_some()
            })
            .filter_map(|r| self.targets.iter().find(|t| r.is_for(t)))
            .cloned()
            .collect();
        let buttons = Buttons::new(if retry.is_empty() {
            &[DoneButton::Ok]
        } else {
            &[DoneButton::Ok, DoneButton::BreakLock]
        });
        self.stage = RollbackStage::Done {
            results,
            retry,
            buttons,
        };
    }
}

/// A server's result, as one line.
fn result_text(result: &Result<crate::push::apply::RolledBack, RollbackError>) -> String {
    match result {
        Ok(done) => format!("{}{done}", done.headline()),
        // The facts: what the console offers for a lock is said below them.
        Err(e) => format!("refused: {e}"),
    }
}

impl Dialog for Rollback {
    fn view(&self, ui: &Ui) -> View {
        let (id, site) = (&self.push_id, &self.site);
        match &self.stage {
            RollbackStage::Checking => View {
                title: format!("Rollback of push {id}"),
                body: vec![Line::raw(format!(
                    "{} Reading the locks of the servers push {id} changed...",
                    ui.spinner()
                ))],
                danger: true,
                buttons: None,
            },
            RollbackStage::Confirm {
                locked,
                free,
                buttons,
            } => {
                let mut body = vec![
                    Line::raw(format!("Restore the backups of push {id} to {site} on:")),
                    Line::raw(""),
                ];
                for r in &self.targets {
                    body.push(Line::raw(format!("{}: {}", r.server, r.file)));
                    body.push(Line::styled(
                        format!("  {}", restored_from(r)),
                        ui.style(StyleKey::TextDim),
                    ));
                }
                body.push(Line::raw(""));
                if !locked.is_empty() {
                    body.push(Line::styled(
                        "Left alone, locked:",
                        ui.style(StyleKey::Warning),
                    ));
                    for l in locked {
                        body.push(Line::styled(
                            format!("  {}", l.holder),
                            ui.style(StyleKey::Warning),
                        ));
                    }
                    if !free {
                        body.push(Line::raw(format!(
                            "Nothing can be rolled back now: every server push {id} changed is locked by another push."
                        )));
                    }
                    if locked.iter().any(|l| !l.holder.alive_here()) {
                        body.push(Line::styled(
                            "Break the lock only if that push no longer runs.",
                            ui.style(StyleKey::Warning),
                        ));
                    }
                    body.push(Line::raw(""));
                }
                body.push(Line::raw(
                    "A file that changed since the push is left alone and named. Each server is locked while it is restored.",
                ));
                body.push(Line::styled(
                    "Saving web.config restarts the application on each server restored.",
                    ui.style(StyleKey::Warning),
                ));
                View {
                    title: format!("Roll back push {id}?"),
                    body,
                    danger: true,
                    buttons: buttons.view(),
                }
            }
            RollbackStage::Running { lines } => {
                let mut body: Vec<Line> = lines
                    .iter()
                    .map(|(server, file, result)| {
                        let who = file_label(&self.targets, server, file);
                        Line::raw(match result {
                            Some(r) => format!("{who:<12} {}", result_text(&r.result)),
                            None => format!("{who:<12} {} restoring", ui.spinner()),
                        })
                    })
                    .collect();
                body.push(Line::raw(""));
                body.push(Line::styled(
                    "A rollback is not interrupted: each server is restored or left as it is.",
                    ui.style(StyleKey::TextDim),
                ));
                View {
                    title: format!("Rolling back push {id}"),
                    body,
                    danger: true,
                    buttons: None,
                }
            }
            RollbackStage::NotStarted { why, buttons } => View {
                title: "Rollback not started".to_string(),
                body: vec![
                    Line::raw(format!("Push {id} to {site} was not rolled back: {why}.")),
                    Line::raw(""),
                    Line::raw(
                        "A rollback is only made with its audit record: give a writable log with --audit FILE.",
                    ),
                ],
                danger: true,
                buttons: buttons.view(),
            },
            RollbackStage::Done {
                results,
                retry,
                buttons,
            } => {
                // Servers, not files: a server's files are refused together.
                let mut refused_on: Vec<&str> = Vec::new();
                for r in results.iter().filter(|r| r.result.is_err()) {
                    if !refused_on.contains(&r.server.as_str()) {
                        refused_on.push(&r.server);
                    }
                }
                let refused = refused_on.len();
                let mut body: Vec<Line> = results
                    .iter()
                    .map(|r| {
                        let style = if r.result.is_ok() {
                            StyleKey::Text
                        } else {
                            StyleKey::Warning
                        };
                        let who = file_label(&self.targets, &r.server, &r.file);
                        Line::styled(
                            format!("{who:<12} {}", result_text(&r.result)),
                            ui.style(style),
                        )
                    })
                    .collect();
                body.push(Line::raw(""));
                body.push(Line::raw(if refused == 0 {
                    format!(
                        "Push {id} rolled back: every server it changed holds its original bytes again."
                    )
                } else {
                    format!("Push {id} NOT fully rolled back: {refused} server(s) refused.")
                }));
                for r in results {
                    if let Some(h) = r.result.as_ref().err().and_then(|e| e.breakable_lock())
                        && retry.iter().any(|t| r.is_for(t))
                    {
                        body.push(Line::styled(
                            format!("Break the lock only if that push no longer runs: {h}."),
                            ui.style(StyleKey::Warning),
                        ));
                    }
                }
                View {
                    title: if refused == 0 {
                        format!("Push {id} rolled back")
                    } else {
                        format!("Push {id} NOT fully rolled back")
                    },
                    body,
                    danger: refused > 0,
                    buttons: buttons.view(),
                }
            }
        }
    }

    fn on_key(&mut self, key: &KeyEvent, data: &mut Data) -> DialogReply {
        match &mut self.stage {
            RollbackStage::Checking if key.code == KeyCode::Esc => DialogReply::Close,
            RollbackStage::Checking => DialogReply::Stay,
            RollbackStage::Confirm {
                locked, buttons, ..
            } => match buttons.on_key(key) {
                None => DialogReply::Stay,
                Some(RollbackButton::Cancel) => {
                    data.log(
                        LogLevel::Info,
                        format!(
                            "rollback of push {} cancelled: nothing was written",
                            self.push_id
                        ),
                    );
                    DialogReply::Close
                }
                Some(RollbackButton::RollBack) => {
                    data.log(
                        LogLevel::Warn,
                        format!("rollback of push {} to {} started", self.push_id, self.site),
                    );
                    let locked = std::mem::take(locked);
                    let holder = |server: &str| locked.iter().find(|l| l.server == server);
                    let free = self
                        .targets
                        .iter()
                        .filter(|t| holder(&t.server).is_none())
                        .cloned()
                        .collect();
                    let reply = self.run(free, false);
                    // A server left alone is refused for its lock, as the
                    // rollback would: breaking it is offered at the end.
                    if let RollbackStage::Running { lines } = &mut self.stage {
                        for t in &self.targets {
                            if let Some(l) = holder(&t.server) {
                                let refused = RollbackResult {
                                    server: t.server.clone(),
                                    file: t.file.clone(),
                                    result: Err(RollbackError::Locked(Box::new(l.holder.clone()))),
                                };
                                set_line(lines, &t.server, &t.file, Some(refused));
                            }
                        }
                    }
                    reply
                }
                Some(RollbackButton::BreakLock) => {
                    data.log(
                        LogLevel::Warn,
                        format!(
                            "rollback of push {} to {} started, breaking the stale lock",
                            self.push_id, self.site
                        ),
                    );
                    self.run(self.targets.clone(), true)
                }
            },
            RollbackStage::Running { .. } => DialogReply::Stay,
            RollbackStage::NotStarted { buttons, .. } => match buttons.on_key(key) {
                None => DialogReply::Stay,
                Some(_) => DialogReply::Close,
            },
            RollbackStage::Done { retry, buttons, .. } => match buttons.on_key(key) {
                None => DialogReply::Stay,
                Some(DoneButton::Ok) => DialogReply::Close,
                Some(DoneButton::BreakLock) => {
                    let records = std::mem::take(retry);
                    data.log(
                        LogLevel::Warn,
                        format!(
                            "rollback of push {}: breaking the stale lock on {}",
                            self.push_id,
                            records
                                .iter()
                                .map(|r| r.server.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    self.run(records, true)
                }
            },
        }
    }

    fn takes(&self, work: &Work) -> bool {
        matches!(
            work,
            Work::RollbackLocks(_) | Work::RollbackProgress(_) | Work::RollbackDone(_)
        )
    }

    fn on_work(&mut self, work: Work, data: &mut Data) -> DialogReply {
        match work {
            Work::RollbackLocks(locked) => self.checked(locked),
            Work::RollbackProgress(done) => {
                let level = if done.result.is_ok() {
                    LogLevel::Info
                } else {
                    LogLevel::Error
                };
                data.log(
                    level,
                    format!(
                        "rollback of push {}: {} {}",
                        self.push_id,
                        file_label(&self.targets, &done.server, &done.file),
                        result_text(&done.result)
                    ),
                );
                if let RollbackStage::Running { lines } = &mut self.stage {
                    let (server, file) = (done.server.clone(), done.file.clone());
                    set_line(lines, &server, &file, Some(done));
                }
            }
            Work::RollbackDone(Ok(results)) => self.done(results),
            Work::RollbackDone(Err(e)) => {
                let why = format!("{e}; nothing was attempted");
                data.log(
                    LogLevel::Error,
                    format!("rollback of push {} not started: {why}", self.push_id),
                );
                self.stage = RollbackStage::NotStarted {
                    why,
                    buttons: Buttons::new(&[DoneButton::Ok]),
                };
            }
            Work::Planned { .. } | Work::PushProgress(_) | Work::PushDone(_) => {}
        }
        DialogReply::Stay
    }

    fn keys(&self, ui: &Ui) -> Vec<KeyHelp> {
        match &self.stage {
            RollbackStage::Checking => vec![("Esc", "cancel")],
            RollbackStage::Confirm { .. } => button_keys(ui),
            RollbackStage::Running { .. } => vec![("", "working...")],
            RollbackStage::Done { retry, .. } if !retry.is_empty() => button_keys(ui),
            RollbackStage::Done { .. } | RollbackStage::NotStarted { .. } => {
                vec![("Enter", "close")]
            }
        }
    }

    fn waiting(&self) -> bool {
        matches!(self.stage, RollbackStage::Running { .. })
    }

    fn activity(&self) -> Activity {
        match self.stage {
            RollbackStage::Running { .. } => Activity::RollingBack,
            _ => Activity::Idle,
        }
    }
}
