//! The console's workers: planning and applying a push, rolling one back,
//! reading the audit log. Each runs on a thread of its own and reports over
//! the event loop's channel; the UI thread only sees messages.

use super::app::Msg;
use super::model::Work;
use crate::analysis::FarmReport;
use crate::inventory::Server;
use crate::push::apply::{locked_out, rollback_push};
use crate::push::audit::{AuditLog, AuditRecord};
use crate::push::history::pushes;
use crate::push::{Interrupt, PushRequest, Sessions, apply, build_plan};
use crate::transport::ConnectOptions;
use std::sync::mpsc::{Sender, channel};

/// Plans a push; the same sessions then apply it if the operator confirms
/// (the plan's dialog sends on `go`).
pub fn spawn_push(
    request: PushRequest,
    report: FarmReport,
    servers: Vec<Server>,
    connect: ConnectOptions,
    audit: AuditLog,
    tx: Sender<Msg>,
    stop: Interrupt,
) {
    std::thread::spawn(move || {
        let send = |work: Work| tx.send(Msg::Work(work)).is_ok();
        let keep_of = servers.clone();
        let mut sessions = Sessions::new(servers, connect);
        let plan = match build_plan(&request, &report, &mut sessions) {
            Ok(p) => p,
            Err(e) => {
                send(Work::Planned {
                    result: Err(e),
                    go: None,
                });
                return;
            }
        };
        let (go, decision) = channel();
        if !send(Work::Planned {
            result: Ok(Box::new(plan.clone())),
            go: Some(go),
        }) {
            return;
        }
        if decision.recv() != Ok(true) {
            return;
        }
        if let Err(e) = audit.check_writable(Some(&stop)) {
            send(Work::PushDone(Err(e)));
            return;
        }
        let mut progress = |p| {
            send(Work::PushProgress(p));
        };
        let outcome = apply(&plan, &mut sessions, &audit, &stop, &mut progress);
        // The inventory's retention, once the push is in step and recorded.
        if outcome.verdict() == crate::push::PushVerdict::InStep {
            let keep = crate::push::backups::retention(&plan, &keep_of);
            let retained = crate::push::backups::retain(&plan.site, &keep, &mut sessions, &audit);
            if let Some(line) = retained.summary() {
                progress(crate::push::apply::Progress::Note(line));
            }
        }
        send(Work::PushDone(Ok(outcome)));
    });
}

/// Restores what a past push changed, with `farmkey rollback`'s checks.
pub fn spawn_rollback(
    records: Vec<AuditRecord>,
    break_lock: bool,
    servers: Vec<Server>,
    connect: ConnectOptions,
    audit: AuditLog,
    tx: Sender<Msg>,
) {
    std::thread::spawn(move || {
        let send = |work: Work| {
            let _ = tx.send(Msg::Work(work));
        };
        // A rollback is only made with its audit record: without one it
        // does not start, and no server is touched.
        if let Err(e) = audit.check_writable(None) {
            send(Work::RollbackDone(Err(e)));
            return;
        }
        let mut sessions = Sessions::new(servers, connect);
        let results = rollback_push(&records, &mut sessions, &audit, break_lock, &mut |r| {
            send(Work::RollbackProgress(r.clone()))
        });
        send(Work::RollbackDone(Ok(results)));
    });
}

/// Reads the locks of the servers a rollback of `records` would restore,
/// before the operator is asked (`farmkey rollback`'s look).
pub fn check_rollback(
    records: Vec<AuditRecord>,
    servers: Vec<Server>,
    connect: ConnectOptions,
    tx: Sender<Msg>,
) {
    std::thread::spawn(move || {
        let mut sessions = Sessions::new(servers, connect);
        let locked = locked_out(&records, &mut sessions, false);
        let _ = tx.send(Msg::Work(Work::RollbackLocks(locked)));
    });
}

/// Reads the backups of `site` (every site: `None`) on every server, each
/// on a session of its own, and matches them to the audit log.
pub fn load_backups(
    site: Option<String>,
    servers: Vec<Server>,
    connect: ConnectOptions,
    jobs: usize,
    audit: AuditLog,
    tx: Sender<Msg>,
) {
    use crate::push::backups::{Ledger, list_all};
    std::thread::spawn(move || {
        // A log that cannot be read leaves the push of each backup unknown;
        // the History says why it could not be read.
        let ledger = Ledger::new(&audit.read_all().unwrap_or_default());
        let mut found = list_all(&servers, &connect, jobs, site.as_deref());
        for s in &mut found {
            if let Ok(b) = &mut s.result {
                ledger.annotate(b);
            }
        }
        let _ = tx.send(Msg::Backups {
            site,
            servers: found,
        });
    });
}

/// Reads the audit log and groups it into pushes (a local file, but
/// possibly a large one: not on the UI thread).
pub fn load_history(audit: AuditLog, tx: Sender<Msg>) {
    std::thread::spawn(move || {
        let result = audit.read_all().map(|records| pushes(&records, None));
        let _ = tx.send(Msg::History {
            path: audit.path.clone(),
            result,
        });
    });
}
