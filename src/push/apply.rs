//! Applying a plan, one server after the other, never racing on one file.
//!
//! A push refuses to start when its plan is blocked. Otherwise it takes the
//! lock of every server of the site, checks under the locks that no file
//! changed since the plan, then per server: re-read, back up, stage, record
//! the intent in the audit log, swap, verify, record the outcome. A server
//! that fails is restored (only if it still holds what this push wrote);
//! the servers already changed are rolled back when one fails, the audit
//! log fails, or the push is interrupted. The locks are released and every
//! file is re-read before the result is reported.

use super::audit::{self, AuditLog, AuditRecord, local_user, now};
use super::error::{PushRefusal, StepError, VerifyError};
use super::interrupt::{Interrupt, StopReason};
use super::lock::{self, LockInfo, Taken};
use super::plan::SiteFiles;
use super::retry::{self, Reached};
use super::undo::{
    Settled, Undo, check_server, create_checked, private, read_held, read_opt, replacing,
    settle_server, swap, undo_for,
};
use super::{Plan, PlanAction, ServerPlan, Sessions, sibling};
use crate::config::wif::HandlerState;
use crate::paths::{RemotePath, WindowsEnv};
use crate::scan::read_server;
use crate::transport::{Transport, TransportError, not_a_file};

pub use super::outcome::{
    FinalState, Foreign, LeftBehind, LeftKind, Leftover, NotAttempted, Progress, PushOutcome,
    PushVerdict, Restore, ServerOutcome, ServerResult, Step,
};

/// Whether the server's effective configuration of the site is what the
/// plan asked for.
fn verify_effective(
    t: &mut dyn Transport,
    plan: &Plan,
    sp: &ServerPlan,
) -> Result<(), VerifyError> {
    let config = read_server(t, &WindowsEnv::default()).map_err(VerifyError::Read)?;
    let app = config
        .apps
        .iter()
        // Exactly: two sites may differ only in case, each its own.
        .find(|a| a.app.id == plan.site)
        .ok_or_else(|| VerifyError::SiteGone(plan.site.clone()))?;
    let eff = app
        .effective
        .as_ref()
        .map_err(|e| VerifyError::Unreadable(e.clone()))?;
    if let Some(keys) = &plan.keys
        && !super::same_keys(eff, keys)
    {
        return Err(VerifyError::KeysDiffer);
    }
    if sp.handler_swap && eff.handler.state != HandlerState::MachineKey {
        return Err(VerifyError::Handler(eff.handler.state));
    }
    Ok(())
}

/// Debug builds only: `FARMKEY_TEST_PAUSE=POINT[:SERVER]` and
/// `FARMKEY_TEST_PAUSE_DIR=DIR` hold a real farmkey process at one step of
/// a push: it creates `DIR/ready` and waits (at most a minute) for
/// `DIR/go`, so that an end-to-end test can signal it, close its output or
/// change a file at exactly that step. Points: `start` (before the locks),
/// `staged:SERVER` (its staged copy verified and its intent recorded,
/// before the copy takes the original's mode and is swapped in),
/// `swapped:SERVER` (after the swap, before its verification and outcome
/// record), `verifying:SERVER` (its verification reported begun),
/// `applied:SERVER` (after its outcome record, before it is
/// reported); in a rollback, `rollback:SERVER` (the server locked, before
/// its files are checked and restored) and `restored:SERVER` (its files
/// restored and its lock released, before their outcome is recorded) and
/// `waiting:SERVER` (it meets another rollback's lock there, before it
/// waits for it). While a push is held, it creates
/// `DIR/stopping` once a stop is asked, so that the test knows a signal
/// was taken before it lets it go on.
fn test_pause(point: &str, server: Option<&str>, stop: &Interrupt) {
    #[cfg(debug_assertions)]
    {
        use std::path::PathBuf;
        use std::time::{Duration, Instant};
        let (Some(want), Some(dir)) = (
            std::env::var_os("FARMKEY_TEST_PAUSE"),
            std::env::var_os("FARMKEY_TEST_PAUSE_DIR"),
        ) else {
            return;
        };
        let here = match server {
            Some(s) => format!("{point}:{s}"),
            None => point.to_string(),
        };
        if want.to_string_lossy() != here {
            return;
        }
        let dir = PathBuf::from(dir);
        let _ = std::fs::write(dir.join("ready"), b"");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !dir.join("go").exists() && Instant::now() < deadline {
            if stop.reason().is_some() && !dir.join("stopping").exists() {
                let _ = std::fs::write(dir.join("stopping"), b"");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = (point, server, stop);
}

enum ServerAttempt {
    /// Applied and verified.
    Done,
    /// Failed before anything changed; whatever it created is removed.
    Untouched { step: Step, error: StepError },
    /// Stopped before the swap; whatever it created is removed.
    Interrupted(StopReason),
    /// The intent could not be recorded; nothing changed.
    AuditFailed(String),
    /// Failed at or after the swap, or lost the session on the way: the
    /// file must be settled.
    Touched {
        step: Step,
        error: StepError,
        swapped: bool,
        broken: bool,
    },
}

fn record(
    plan: &Plan,
    sp: &ServerPlan,
    action: audit::AuditAction,
    outcome: audit::Outcome,
    message: String,
    sha_after: Option<String>,
    applied: bool,
) -> AuditRecord {
    AuditRecord {
        time: now(),
        push_id: plan.push_id.clone(),
        action,
        user: local_user(),
        server: sp.server.clone(),
        site: plan.site.clone(),
        file: sp.file.to_string(),
        sha256_before: sp.scanned_sha256.clone(),
        sha256_after: sha_after,
        fingerprints_before: sp.fingerprints_before.clone(),
        fingerprints_after: if applied {
            sp.fingerprints_after.clone()
        } else {
            sp.fingerprints_before.clone()
        },
        backup: sp.scanned_sha256.as_ref().map(|_| sp.backup.to_string()),
        lock: Some(sp.lock.to_string()),
        temporary: Vec::new(),
        outcome,
        message,
        plan: plan.saved.clone(),
    }
}

/// Removes the copies an attempt made before its swap; one that cannot
/// be removed (held open) goes to `left`.
fn remove_made(t: &mut dyn Transport, made: &[&RemotePath], left: &mut Vec<Leftover>) {
    for p in made {
        if let Err(e) = retry::remove_held(t, p) {
            left.push(Leftover::new(p, e.to_string()));
        }
    }
}

/// One server: re-read, back up, stage, record the intent, swap, verify.
/// Copies it made and could not remove go to `left`.
fn attempt(
    t: &mut dyn Transport,
    plan: &Plan,
    sp: &ServerPlan,
    audit: &AuditLog,
    stop: &Interrupt,
    progress: &mut dyn FnMut(Progress),
    left: &mut Vec<Leftover>,
) -> ServerAttempt {
    let step = |progress: &mut dyn FnMut(Progress), s: Step| {
        progress(Progress::Step {
            server: sp.server.clone(),
            file: sp.file.clone(),
            step: s,
        })
    };
    let Some(new_bytes) = &sp.edited else {
        return ServerAttempt::Untouched {
            step: Step::Reread,
            error: StepError::NoContent,
        };
    };
    // Failed before the swap: the file is untouched; remove what this
    // attempt created, unless the session is gone (then settle does).
    let before_swap = |t: &mut dyn Transport,
                       step: Step,
                       e: StepError,
                       made: &[&RemotePath],
                       left: &mut Vec<Leftover>| {
        if e.is_disconnected() {
            return ServerAttempt::Touched {
                step,
                error: e,
                swapped: false,
                broken: true,
            };
        }
        remove_made(t, made, left);
        ServerAttempt::Untouched { step, error: e }
    };
    step(progress, Step::Reread);
    let current = match read_opt(t, &sp.file) {
        Ok(c) => c,
        // Nothing was created yet, whatever became of the session.
        Err(e) => {
            return ServerAttempt::Untouched {
                step: Step::Reread,
                error: e.into(),
            };
        }
    };
    if current.as_ref().map(|b| b.sha256()) != sp.scanned_sha256 {
        return ServerAttempt::Untouched {
            step: Step::Reread,
            error: StepError::ChangedSincePlan(sp.file.clone()),
        };
    }
    // The backup and the staged copy hold keys: owner-only. The staged
    // copy takes the original's mode and owner just before the swap.
    let attrs = match replacing(t, &sp.file) {
        Ok(a) => a,
        Err(e) => return before_swap(t, Step::Reread, e.into(), &[], left),
    };
    let owner_only = private(t);
    let mut made: Vec<&RemotePath> = Vec::new();
    if let Err(e) = lock_still_mine(t, plan, sp) {
        return before_swap(t, Step::Backup, e, &made, left);
    }
    if let Some(old) = &current {
        step(progress, Step::Backup);
        if let Err(e) = create_checked(t, &sp.backup, old, &owner_only) {
            return before_swap(t, Step::Backup, e.into(), &made, left);
        }
        made.push(&sp.backup);
    }
    step(progress, Step::Stage);
    if let Err(e) = create_checked(t, &sp.staged, new_bytes, &owner_only) {
        return before_swap(t, Step::Stage, e.into(), &made, left);
    }
    made.push(&sp.staged);
    if let Some(reason) = stop.reason() {
        remove_made(t, &made, left);
        return ServerAttempt::Interrupted(reason);
    }
    // The last look before the swap: a link put in the file's place since
    // the plan (which refused one) is never renamed over.
    match not_a_file(t, &sp.file) {
        Ok(None) => {}
        Ok(Some(kind)) => {
            let e = TransportError::NotAFile {
                path: sp.file.clone(),
                kind,
            };
            return before_swap(t, Step::Swap, e.into(), &made, left);
        }
        Err(e) => return before_swap(t, Step::Swap, e.into(), &made, left),
    }
    // The intent, flushed before the swap: `rollback` always finds what a
    // push may have changed.
    step(progress, Step::Audit);
    let mut intent = record(
        plan,
        sp,
        audit::AuditAction::Push,
        audit::Outcome::Intent,
        String::new(),
        Some(new_bytes.sha256()),
        true,
    );
    intent.temporary = temporaries(plan, sp)
        .iter()
        .map(ToString::to_string)
        .collect();
    if let Err(e) = audit.append(&intent) {
        remove_made(t, &made, left);
        return ServerAttempt::AuditFailed(e.to_string());
    }
    test_pause("staged", Some(&sp.server), stop);
    step(progress, Step::Swap);
    // Verified and recorded: only now may the copy be readable by others.
    if let Err(e) = t.set_attrs(&sp.staged, &attrs) {
        return before_swap(t, Step::Swap, e.into(), &made, left);
    }
    if let Some((uid, gid)) = attrs.owner
        && let Ok(Some(st)) = t.stat(&sp.staged)
        && st.uid.zip(st.gid) != Some((uid, gid))
    {
        progress(Progress::Note(format!(
            "{}: the new {} is owned by uid {} gid {}, not uid {uid} gid {gid} as the original (this account may not give files away)",
            sp.server,
            sp.file,
            st.uid.unwrap_or_default(),
            st.gid.unwrap_or_default()
        )));
    }
    // Looked at again last: the lock may have changed hands since the
    // first write.
    if let Err(e) = lock_still_mine(t, plan, sp) {
        return before_swap(t, Step::Swap, e, &made, left);
    }
    if let Err(e) = swap(t, &sp.staged, &sp.file, &aside(plan, sp)) {
        return ServerAttempt::Touched {
            step: Step::Swap,
            broken: e.is_disconnected(),
            error: e.into(),
            swapped: true,
        };
    }
    test_pause("swapped", Some(&sp.server), stop);
    // Mandatory, also where the swap is not atomic.
    step(progress, Step::Verify);
    test_pause("verifying", Some(&sp.server), stop);
    let touched = |error: StepError, broken: bool| ServerAttempt::Touched {
        step: Step::Verify,
        error,
        swapped: true,
        broken,
    };
    match read_held(t, &sp.file) {
        Ok(b) if b.sha256() == new_bytes.sha256() => {}
        Ok(_) => return touched(StepError::ReadBack(sp.file.clone()), false),
        Err(e) => {
            let broken = e.is_disconnected();
            return touched(e.into(), broken);
        }
    }
    if let Err(e) = verify_effective(t, plan, sp) {
        return touched(e.into(), false);
    }
    ServerAttempt::Done
}

/// The server's lock is still this push's. SFTP has no compare-and-swap
/// (lock.rs): a breaker that stalled may have moved it and another push
/// taken it since; a server whose lock changed hands is never written.
fn lock_still_mine(t: &mut dyn Transport, plan: &Plan, sp: &ServerPlan) -> Result<(), StepError> {
    match lock::read_holder(t, &sp.server, &sp.lock)? {
        Some(h) if h.push_id() == Some(plan.push_id.as_str()) => Ok(()),
        now => Err(StepError::LockLost {
            lock: sp.lock.clone(),
            now: now.map(Box::new),
        }),
    }
}

/// Where the swap moves the old file on servers without posix-rename.
fn aside(plan: &Plan, sp: &ServerPlan) -> RemotePath {
    sibling(&sp.file, &plan.stamp, "-old")
}

/// The copies a push may make beside a server's file, other than its
/// backup: the staged copy, the restore copy, the original moved aside.
pub(super) fn temporaries(plan: &Plan, sp: &ServerPlan) -> [RemotePath; 3] {
    [
        sp.staged.clone(),
        sibling(&sp.file, &plan.stamp, "-restore"),
        aside(plan, sp),
    ]
}

/// A push in progress.
struct Run<'a> {
    plan: &'a Plan,
    sessions: &'a mut Sessions,
    audit: &'a AuditLog,
    stop: &'a Interrupt,
    progress: &'a mut dyn FnMut(Progress),
    results: Vec<ServerResult>,
    audit_errors: Vec<String>,
    /// Servers (indices) whose lock this push holds.
    locked: Vec<usize>,
    /// Servers (indices) where a swap onto web.config was issued.
    swapped: Vec<bool>,
    leftovers: Vec<LeftBehind>,
}

impl Run<'_> {
    /// Indices of the servers the push covers.
    fn targets(&self) -> Vec<usize> {
        (0..self.plan.servers.len())
            .filter(|&i| {
                matches!(
                    self.plan.servers[i].action,
                    PlanAction::Write | PlanAction::Unchanged
                )
            })
            .collect()
    }

    fn note(&mut self, text: String) {
        (self.progress)(Progress::Note(text));
    }

    fn log(&mut self, rec: &AuditRecord) -> bool {
        match self.audit.append(rec) {
            Ok(()) => true,
            Err(e) => {
                self.audit_errors.push(e.to_string());
                false
            }
        }
    }

    /// Runs `op` on a server ([`retry::on_server`]).
    fn on_server<T>(
        &mut self,
        server: &str,
        op: impl FnMut(&mut dyn Transport) -> Result<T, TransportError>,
    ) -> Result<T, StepError> {
        retry::on_server(self.sessions, server, false, op).map_err(|e| match e {
            Reached::Session(e) => StepError::Session(e),
            Reached::Op(e) => StepError::Transport(e),
        })
    }

    /// Copies left beside a server's file, for the last line.
    fn left_behind(&mut self, server: &str, left: Vec<Leftover>) {
        self.leftovers.extend(left.into_iter().map(|l| LeftBehind {
            server: server.to_string(),
            path: l.path,
            kind: LeftKind::Copy,
            why: l.why,
        }));
    }

    fn refuse(mut self, why: PushRefusal, interrupted: Option<StopReason>) -> PushOutcome {
        for r in &mut self.results {
            if r.outcome != ServerOutcome::Unchanged {
                r.outcome = ServerOutcome::NotAttempted(NotAttempted::NotStarted);
            }
        }
        self.release_locks();
        let mut out = self.finish(Vec::new(), interrupted);
        out.refused = Some(why);
        out
    }

    fn take_locks(&mut self) -> Result<(), PushRefusal> {
        let plan = self.plan;
        let mine = LockInfo::mine(&plan.push_id, &plan.site);
        for i in self.targets() {
            if let Some(r) = self.stop.reason() {
                return Err(PushRefusal::Interrupted(r));
            }
            let sp = &plan.servers[i];
            // The plans of one server share its lock.
            if self.locked.iter().any(|&j| {
                let held = &plan.servers[j];
                held.server == sp.server && held.lock.key() == sp.lock.key()
            }) {
                continue;
            }
            let breakable = sp.lock_holder.as_ref().filter(|_| plan.break_lock);
            let taken = retry::on_server(self.sessions, &sp.server, false, |t| {
                lock::acquire(t, &sp.server, &sp.lock, &mine, breakable)
            });
            match taken {
                Ok(how) => {
                    self.locked.push(i);
                    if let Taken::Broke(h) = how {
                        self.note(format!("{}: broke the stale lock ({h})", sp.server));
                    }
                }
                Err(Reached::Session(error)) => {
                    return Err(PushRefusal::Unreachable {
                        server: sp.server.clone(),
                        error,
                    });
                }
                Err(Reached::Op(e)) => return Err(PushRefusal::Lock(e)),
            }
        }
        Ok(())
    }

    fn release_locks(&mut self) {
        let plan = self.plan;
        for i in std::mem::take(&mut self.locked) {
            let sp = &plan.servers[i];
            if let Err(e) = release_lock(self.sessions, &sp.server, &sp.lock, &plan.push_id) {
                self.leftovers.push(LeftBehind {
                    server: sp.server.clone(),
                    path: sp.lock.clone(),
                    kind: if e.folder_read_only() {
                        LeftKind::LockInReadOnlyFolder
                    } else {
                        LeftKind::Lock
                    },
                    why: e.to_string(),
                });
            }
        }
    }

    /// Under the locks: every file still holds what the plan read, the
    /// ones the push writes and the ones it only read.
    fn check_unchanged(&mut self) -> Result<(), PushRefusal> {
        let plan = self.plan;
        for i in self.targets() {
            let sp = &plan.servers[i];
            let files = std::iter::once((&sp.file, &sp.scanned_sha256))
                .chain(sp.watched.iter().map(|(f, sha)| (f, sha)));
            for (file, scanned) in files {
                let now = self
                    .on_server(&sp.server, |t| read_opt(t, file))
                    .map_err(|error| PushRefusal::Reread {
                        server: sp.server.clone(),
                        file: file.clone(),
                        error,
                    })?;
                if now.map(|b| b.sha256()) != *scanned {
                    return Err(PushRefusal::Changed {
                        server: sp.server.clone(),
                        file: file.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// A file the plan of server `i` only read that holds other bytes than
    /// the scan read (or is gone).
    fn watched_changed(&mut self, i: usize) -> Result<Option<RemotePath>, StepError> {
        let sp = &self.plan.servers[i];
        for (file, scanned) in &sp.watched {
            let now = self.on_server(&sp.server, |t| read_opt(t, file))?;
            if now.map(|b| b.sha256()) != *scanned {
                return Ok(Some(file.clone()));
            }
        }
        Ok(None)
    }

    /// Pushes one server, settles it if it failed half-way, records and
    /// reports its outcome.
    fn push_server(&mut self, i: usize) -> ServerOutcome {
        let plan = self.plan;
        let sp = &plan.servers[i];
        let written = sp.edited.as_ref().map(|b| b.sha256());
        let mut left = Vec::new();
        let attempted = match self.sessions.get(&sp.server) {
            Err(e) => ServerAttempt::Untouched {
                step: Step::Reread,
                error: StepError::Session(e),
            },
            Ok(t) => attempt(
                t,
                plan,
                sp,
                self.audit,
                self.stop,
                &mut *self.progress,
                &mut left,
            ),
        };
        if matches!(
            attempted,
            ServerAttempt::Done | ServerAttempt::Touched { swapped: true, .. }
        ) {
            self.swapped[i] = true;
        }
        // Another's now: never released (removed) by this push.
        if matches!(
            attempted,
            ServerAttempt::Untouched {
                error: StepError::LockLost { .. },
                ..
            }
        ) {
            self.locked.retain(|&j| {
                let held = &plan.servers[j];
                !(held.server == sp.server && held.lock.key() == sp.lock.key())
            });
        }
        let (outcome, sha_after) = match attempted {
            ServerAttempt::Done => (ServerOutcome::Applied, written.clone()),
            ServerAttempt::Untouched { step, error } => (
                ServerOutcome::Failed {
                    step,
                    error,
                    file: sp.file.clone(),
                    restore: Restore::Untouched,
                },
                sp.scanned_sha256.clone(),
            ),
            ServerAttempt::Interrupted(r) => (
                ServerOutcome::NotAttempted(NotAttempted::BeforeSwap(r)),
                sp.scanned_sha256.clone(),
            ),
            ServerAttempt::AuditFailed(e) => {
                self.audit_errors.push(e.clone());
                (
                    ServerOutcome::Failed {
                        step: Step::Audit,
                        error: StepError::Audit(e),
                        file: sp.file.clone(),
                        restore: Restore::Untouched,
                    },
                    sp.scanned_sha256.clone(),
                )
            }
            ServerAttempt::Touched {
                step,
                error,
                swapped,
                broken,
            } => {
                let undo = undo_for(plan, sp, written.as_deref());
                let Settled {
                    mut restore,
                    left: also,
                } = settle_server(self.sessions, &sp.server, &undo, broken, swapped);
                left.extend(also);
                if !swapped && let Restore::Failed(why) = &restore {
                    // web.config was never swapped: only copies may remain.
                    if sp.scanned_sha256.is_some() {
                        left.push(Leftover::new(&sp.backup, format!("maybe; {why}")));
                    }
                    restore = Restore::Untouched;
                }
                let after = match &restore {
                    Restore::Untouched | Restore::Restored => sp.scanned_sha256.clone(),
                    _ => None,
                };
                (
                    ServerOutcome::Failed {
                        step,
                        error,
                        file: sp.file.clone(),
                        restore,
                    },
                    after,
                )
            }
        };
        let mut rec = record(
            plan,
            sp,
            audit::AuditAction::Push,
            outcome.recorded(),
            outcome.audit_message(),
            sha_after.clone(),
            outcome == ServerOutcome::Applied,
        );
        rec.temporary = left.iter().map(|l| l.path.to_string()).collect();
        self.left_behind(&sp.server, left);
        let r = &mut self.results[i];
        r.outcome = outcome;
        r.sha_after = sha_after;
        if !matches!(
            r.outcome,
            ServerOutcome::NotAttempted(_)
                | ServerOutcome::Failed {
                    restore: Restore::Untouched,
                    ..
                }
        ) {
            r.backup = sp.scanned_sha256.as_ref().map(|_| sp.backup.clone());
        }
        // The outcome is recorded before it is reported: a push is only made
        // with its audit record.
        self.log(&rec);
        test_pause("applied", Some(&sp.server), self.stop);
        let result = self.results[i].clone();
        (self.progress)(Progress::Done(result.clone()));
        result.outcome
    }

    /// Rolls back the files this push changed: all of them, or with
    /// `--keep-partial` those of a server left half-pushed (another of its
    /// files not written), so that every server ends whole either way.
    fn roll_back(&mut self, keep_partial: bool) {
        let plan = self.plan;
        let half_pushed = |results: &[ServerResult], server: &str| {
            plan.servers.iter().zip(results).any(|(sp, r)| {
                sp.server == server
                    && sp.action == PlanAction::Write
                    && r.outcome != ServerOutcome::Applied
            })
        };
        for i in 0..plan.servers.len() {
            if self.results[i].outcome != ServerOutcome::Applied {
                continue;
            }
            if keep_partial && !half_pushed(&self.results, &plan.servers[i].server) {
                continue;
            }
            let sp = &plan.servers[i];
            self.note(format!("rolling back {}", sp.server));
            let written = self.results[i].sha_after.clone();
            // That a rollback starts, before it writes: should its outcome
            // not be recorded, history does not take the file for applied.
            // Not a condition: a push that must roll back does.
            self.log(&record(
                plan,
                sp,
                audit::AuditAction::Rollback,
                audit::Outcome::Intent,
                String::new(),
                written.clone(),
                true,
            ));
            let undo = undo_for(plan, sp, written.as_deref());
            let settled = settle_server(self.sessions, &sp.server, &undo, false, false);
            let outcome = match settled.restore {
                Restore::Untouched | Restore::Restored => ServerOutcome::RolledBack,
                Restore::LeftAlone(why) => ServerOutcome::LeftAlone(why),
                Restore::Failed(why) => ServerOutcome::RollbackFailed(why),
            };
            let rolled = outcome == ServerOutcome::RolledBack;
            let after = if rolled {
                sp.scanned_sha256.clone()
            } else {
                written
            };
            let mut rec = record(
                plan,
                sp,
                audit::AuditAction::Rollback,
                outcome.recorded(),
                outcome.audit_message(),
                after.clone(),
                !rolled,
            );
            rec.temporary = settled.left.iter().map(|l| l.path.to_string()).collect();
            self.left_behind(&sp.server, settled.left);
            let r = &mut self.results[i];
            r.outcome = outcome;
            r.sha_after = after;
            self.log(&rec);
            let result = self.results[i].clone();
            (self.progress)(Progress::Done(result));
        }
    }

    /// Re-reads every server of the push.
    fn final_state(&mut self) -> Vec<(String, FinalState)> {
        let plan = self.plan;
        let mut out = Vec::new();
        for i in self.targets() {
            let sp = &plan.servers[i];
            let written = sp.edited.as_ref().map(|b| b.sha256());
            let read = self
                .on_server(&sp.server, |t| read_opt(t, &sp.file))
                .and_then(|now| Ok((now, self.watched_changed(i)?)));
            let state = match read {
                // Never written here: unreachable, it holds what it held;
                // unreadable otherwise, it is unknown (the verdict says so).
                Err(e) if !self.swapped[i] => FinalState::NotWritten(e),
                Err(e) => FinalState::Unknown(e),
                Ok((_, Some(changed))) => FinalState::Foreign(changed),
                Ok((now, None)) => {
                    let now = now.map(|b| b.sha256());
                    match sp.action {
                        PlanAction::Unchanged if now == sp.scanned_sha256 => FinalState::Correct,
                        PlanAction::Write if now.is_some() && now == written => FinalState::Pushed,
                        PlanAction::Write if now == sp.scanned_sha256 => FinalState::Original,
                        _ => FinalState::Foreign(sp.file.clone()),
                    }
                }
            };
            out.push((plan.label(&sp.server, &sp.file), state));
        }
        out
    }

    fn finish(
        self,
        final_state: Vec<(String, FinalState)>,
        interrupted: Option<StopReason>,
    ) -> PushOutcome {
        PushOutcome {
            push_id: self.plan.push_id.clone(),
            site: self.plan.site.clone(),
            results: self.results,
            audit_errors: self.audit_errors,
            refused: None,
            interrupted,
            leftovers: self.leftovers,
            final_state,
            excluded: self
                .plan
                .excluded
                .iter()
                .map(|e| e.server.clone())
                .collect(),
            keep_partial: self.plan.keep_partial,
            keys_left: self.plan.keys_left.clone(),
        }
    }
}

/// Applies a plan. Every server's intent and outcome go to the audit log
/// (and to `progress` as they happen); `stop` is honoured between steps.
pub fn apply(
    plan: &Plan,
    sessions: &mut Sessions,
    audit: &AuditLog,
    stop: &Interrupt,
    progress: &mut dyn FnMut(Progress),
) -> PushOutcome {
    let results = plan
        .servers
        .iter()
        .map(|sp| ServerResult {
            server: sp.server.clone(),
            file: sp.file.clone(),
            outcome: match sp.action {
                PlanAction::Unchanged => ServerOutcome::Unchanged,
                _ => ServerOutcome::NotAttempted(NotAttempted::NotStarted),
            },
            sha_before: sp.scanned_sha256.clone(),
            sha_after: sp.scanned_sha256.clone(),
            backup: None,
        })
        .collect();
    let mut run = Run {
        plan,
        sessions,
        audit,
        stop,
        progress,
        results,
        audit_errors: Vec::new(),
        locked: Vec::new(),
        swapped: vec![false; plan.servers.len()],
        leftovers: Vec::new(),
    };
    if let super::PlanVerdict::Blocked(blocks) = plan.verdict() {
        return run.refuse(PushRefusal::Blocked(blocks), None);
    }
    test_pause("start", None, stop);
    if let Some(r) = stop.reason() {
        return run.refuse(PushRefusal::Interrupted(r), Some(r));
    }
    run.note(format!("locking {} on every server of the push", plan.site));
    if let Err(why) = run.take_locks() {
        return run.refuse(why, stop.reason());
    }
    if let Err(why) = run.check_unchanged() {
        return run.refuse(why, stop.reason());
    }
    if let Some(r) = stop.reason() {
        return run.refuse(PushRefusal::Interrupted(r), Some(r));
    }

    let mut halted = false;
    for i in 0..plan.servers.len() {
        if plan.servers[i].action != PlanAction::Write {
            continue;
        }
        if halted {
            let why = match stop.reason() {
                Some(r) => NotAttempted::Interrupted(r),
                None => NotAttempted::EarlierFailed,
            };
            run.results[i].outcome = ServerOutcome::NotAttempted(why);
            let rec = record(
                plan,
                &plan.servers[i],
                audit::AuditAction::Push,
                audit::Outcome::NotAttempted,
                run.results[i].outcome.audit_message(),
                plan.servers[i].scanned_sha256.clone(),
                false,
            );
            run.log(&rec);
            continue;
        }
        let outcome = run.push_server(i);
        // Checked after the server is reported: a closed output shows here.
        halted = outcome != ServerOutcome::Applied
            || !run.audit_errors.is_empty()
            || stop.reason().is_some();
    }
    let interrupted = stop.reason().filter(|_| halted);
    if halted {
        run.roll_back(plan.keep_partial);
    }
    run.note("releasing the locks and re-reading every server".into());
    run.release_locks();
    let final_state = run.final_state();
    let late = stop.reason().filter(|_| !halted);
    run.finish(final_state, interrupted.or(late))
}

/// Removes a lock of `id` from a server ([`retry::on_server`]).
fn release_lock(
    sessions: &mut Sessions,
    server: &str,
    path: &RemotePath,
    id: &str,
) -> Result<(), lock::ReleaseError> {
    retry::on_server(sessions, server, false, |t| {
        lock::release(t, server, path, id)
    })
    .map_err(|e| match e {
        Reached::Session(e) => e.into(),
        Reached::Op(e) => e,
    })
}

/// A server a rollback restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    /// The stale lock it broke to do so, as asked.
    pub broke: Option<Box<lock::Holder>>,
    /// Why the audit log did not take the rollback's record (it names the log).
    pub unrecorded: Option<audit::NotAppended>,
    /// Copies beside the file that could not be removed (held open).
    pub left: Vec<Leftover>,
    /// The file already held its original bytes when the rollback looked
    /// (under the server's lock): another rollback restored it, or the push
    /// never changed it. Nothing was written.
    pub already: bool,
}

impl RolledBack {
    /// What became of the file, as the rollback's line says it; its
    /// notes ([`std::fmt::Display`]) follow.
    pub fn headline(&self) -> &'static str {
        if self.already {
            "already holds its original bytes (restored by another rollback, or never changed by the push)"
        } else {
            "restored and verified"
        }
    }
}

/// Reads as a note after [`RolledBack::headline`].
impl std::fmt::Display for RolledBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(h) = &self.broke {
            write!(f, " (broke the stale lock: {h})")?;
        }
        if let Some(e) = &self.unrecorded {
            write!(f, "; but the audit log did not take its record: {e}")?;
        }
        if !self.left.is_empty() {
            let left: Vec<String> = self
                .left
                .iter()
                .map(|l| format!("{} ({})", l.path, l.why))
                .collect();
            write!(
                f,
                "; left behind: {} (roll back again once nothing holds it open)",
                left.join("; ")
            )?;
        }
        Ok(())
    }
}

/// Why a server was not rolled back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackError {
    /// The audit record names a path farmkey does not write to.
    #[error("{0}")]
    Path(#[from] crate::paths::PathError),
    #[error("{0}")]
    Connect(super::error::SessionError),
    #[error("{0}")]
    ReadLock(TransportError),
    /// Another push holds the lock, and breaking it was not asked. The
    /// facts only: each front end says how it breaks a lock (see
    /// [`RollbackError::breakable_lock`]).
    #[error("{0}")]
    Locked(Box<lock::Holder>),
    #[error("{0}")]
    Lock(lock::LockError),
    /// The file holds bytes the push did not write: left alone.
    #[error("{file} changed since push {push_id} ({why}); refusing to overwrite it")]
    Changed {
        file: RemotePath,
        push_id: String,
        why: Foreign,
    },
    /// Another file of the server must be left alone (or could not be
    /// read): this one is kept as it is too, so that the server never
    /// holds some files from before the push and some from it.
    #[error(
        "not restored, as another file of this server is not: {0} (a server's files are restored together or not at all)"
    )]
    Withheld(Box<RollbackError>),
    /// The restore itself failed: why, and where the original is.
    #[error("{0}")]
    Failed(String),
    #[error("restored, but its lock {path} is left: {error}")]
    LockLeft {
        path: RemotePath,
        error: lock::ReleaseError,
    },
    /// The record names what no push of its site makes on the server as
    /// it is now: refused, never written (a record is input, not orders).
    #[error("{0}")]
    Untrusted(Untrusted),
    /// Which files a push of the site writes on the server could not be
    /// found (its configuration read again): nothing restored there.
    #[error("cannot tell which files a push of {site} writes on this server: {why}")]
    Undiscovered { site: String, why: String },
    /// Another record of the push names what no push makes: no server is
    /// restored until the log is checked.
    #[error(
        "not restored: another record of this push cannot be trusted ({0}); no server is restored until the audit log is checked"
    )]
    Distrusted(Box<RollbackError>),
    /// The audit log did not take the record that the rollback starts:
    /// the server is not written (a rollback is only made with its record).
    #[error(
        "not restored: the audit log did not take the record that the rollback starts ({0}); a rollback writes a server only once that is recorded"
    )]
    StartUnrecorded(audit::NotAppended),
    /// Refused, and the audit log did not take the record saying so.
    #[error("{why}; and the audit log did not take its record: {audit}")]
    Unrecorded {
        why: Box<RollbackError>,
        audit: audit::NotAppended,
    },
}

impl RollbackError {
    /// The lock of another push that refused the server, if one did.
    pub fn locked_by(&self) -> Option<&lock::Holder> {
        match self {
            RollbackError::Locked(h) => Some(h),
            RollbackError::Unrecorded { why, .. } => why.locked_by(),
            _ => None,
        }
    }

    /// A lock the operator may break: any but one of a push of this machine
    /// that still runs (a lock of another machine is offered too: only the
    /// operator can tell whether that push still runs).
    pub fn breakable_lock(&self) -> Option<&lock::Holder> {
        self.locked_by().filter(|h| !h.alive_here())
    }
}

/// What an audit record names that no push of its site makes on the
/// server as it is now (its configuration read again), by field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    #[error(
        "the audit record names {file}, which no push of {site} writes on this server (it writes {writes}): refused; the record may have been edited"
    )]
    File {
        file: String,
        site: String,
        writes: String,
    },
    #[error(
        "the audit record names {backup} as the backup of {file}, not a name farmkey gives a backup (beside the file: web.<stamp>.farmkey.config): refused; the record may have been edited"
    )]
    Backup { backup: String, file: String },
    #[error(
        "the audit record names {lock} as the lock of {file}; a push of the site takes {expected}: refused; the record may have been edited"
    )]
    Lock {
        lock: String,
        file: String,
        expected: String,
    },
    #[error(
        "the audit record names {copy} as a copy left beside {file}, not a name farmkey gives one: refused; the record may have been edited"
    )]
    Copy { copy: String, file: String },
}

/// One file of a rollback, as it ended.
#[derive(Debug, Clone)]
pub struct RollbackResult {
    pub server: String,
    /// The file as the audit record names it.
    pub file: String,
    pub result: Result<RolledBack, RollbackError>,
}

impl RollbackResult {
    /// Whether it is the result of `rec`'s file.
    pub fn is_for(&self, rec: &AuditRecord) -> bool {
        self.server == rec.server && crate::paths::same_name(&self.file, &rec.file)
    }
}

/// A rollback's lock id: the whole stamp, random part included, so that
/// two rollbacks started in the same second never take each other's lock
/// for their own.
fn rollback_id(stamp: &str) -> String {
    format!("{ROLLBACK_PREFIX}{stamp}")
}

const ROLLBACK_PREFIX: &str = "rollback-";

/// How long a rollback waits for a server another rollback holds: it
/// restores a server's files, each bounded by the connect and I/O
/// timeouts.
const ROLLBACK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// One file of a rollback, its paths parsed from its record.
struct RollbackTarget<'a> {
    rec: &'a AuditRecord,
    file: RemotePath,
    backup: Option<RemotePath>,
    lock: RemotePath,
    /// The push's copies beside the file, removed with the restore. Only
    /// names of the push's own making (beside the file, `.farmkey`) are
    /// ever removed.
    temporary: Vec<RemotePath>,
}

impl<'a> RollbackTarget<'a> {
    fn parse(rec: &'a AuditRecord) -> Result<RollbackTarget<'a>, RollbackError> {
        let file = RemotePath::parse(&rec.file)?;
        let backup = rec.backup.as_deref().map(RemotePath::parse).transpose()?;
        let lock = match &rec.lock {
            Some(l) => RemotePath::parse(l)?,
            None => lock::lock_path(&file),
        };
        let temporary = rec
            .temporary
            .iter()
            .map(|p| RemotePath::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RollbackTarget {
            rec,
            file,
            backup,
            lock,
            temporary,
        })
    }

    fn undo(&self, stamp: &str) -> Undo<'_> {
        Undo {
            file: &self.file,
            backup: self.backup.as_ref(),
            original: self.rec.sha256_before.as_deref(),
            written: self.rec.sha256_after.as_deref(),
            leftovers: self.temporary.clone(),
            restore: sibling(&self.file, stamp, "-restore"),
            aside: sibling(&self.file, stamp, "-old"),
        }
    }

    /// Refuses what no push of the site makes on the server as it is now
    /// (`files`): the file, its backup, its lock, the copies beside it.
    fn trusted(&self, files: &SiteFiles) -> Result<(), Untrusted> {
        let file = || self.rec.file.clone();
        if !files.writes(&self.file) {
            let writes: Vec<String> = std::iter::once(&files.web_config)
                .chain(&files.sections)
                .map(ToString::to_string)
                .collect();
            return Err(Untrusted::File {
                file: file(),
                site: self.rec.site.clone(),
                writes: super::and_list(&writes),
            });
        }
        if let Some(b) = &self.backup
            && !is_backup_of(&self.file, b)
        {
            return Err(Untrusted::Backup {
                backup: b.to_string(),
                file: file(),
            });
        }
        // Older records name no lock: theirs was beside the file.
        let lock_ok = self.lock.key() == files.lock.key()
            || (self.rec.lock.is_none() && self.lock.key() == lock::lock_path(&self.file).key());
        if !lock_ok {
            return Err(Untrusted::Lock {
                lock: self.lock.to_string(),
                file: file(),
                expected: files.lock.to_string(),
            });
        }
        if let Some(c) = self
            .temporary
            .iter()
            .find(|p| !is_temporary_of(&self.file, p))
        {
            return Err(Untrusted::Copy {
                copy: c.to_string(),
                file: file(),
            });
        }
        Ok(())
    }

    /// A push that did not record the file as applied (cut short after
    /// its intent, failed and not restored) may have left it missing half
    /// way through its swap (delete, then rename, on Win32-OpenSSH before
    /// 8.6): then a missing file is its doing. An applied file was
    /// verified: missing, someone else removed it.
    fn swap_unfinished(&self) -> bool {
        self.rec.outcome != audit::Outcome::Applied
    }
}

/// Whether `p` is a copy a push makes beside `file`
/// (`web.<stamp>.farmkey-new.config`, `-restore`, `-old`), never the file,
/// its backup or anything else: a record is read back from a log.
fn is_temporary_of(file: &RemotePath, p: &RemotePath) -> bool {
    let Some((name, stem)) = beside(file, p) else {
        return false;
    };
    name.starts_with(&format!("{stem}."))
        && ["-NEW", "-RESTORE", "-OLD"]
            .iter()
            .any(|s| name.ends_with(&format!(".FARMKEY{s}.CONFIG")))
}

/// Whether `p` is a backup a push makes of `file`: beside it,
/// `web.<stamp>.farmkey.config`, the stamp as [`super::file_stamp`] makes
/// it (`20261126T112045Z-3fa9c1d2`, with `-2` when a second push in the
/// same second took the name; older records have no random part).
pub(crate) fn is_backup_of(file: &RemotePath, p: &RemotePath) -> bool {
    let Some((name, stem)) = beside(file, p) else {
        return false;
    };
    name.strip_prefix(&format!("{stem}."))
        .and_then(|n| n.strip_suffix(".FARMKEY.CONFIG"))
        .is_some_and(is_stamp)
}

/// When `p` is in `file`'s folder: `p`'s name and `file`'s without
/// `.config`, both upper-cased as NTFS compares names (`WEB`).
fn beside(file: &RemotePath, p: &RemotePath) -> Option<(String, String)> {
    let (dir, pdir) = (file.parent()?, p.parent()?);
    if dir.key() != pdir.key() {
        return None;
    }
    let name = crate::paths::windows_upcase(p.file_name().unwrap_or_default());
    let stem = crate::paths::windows_upcase(file.file_name().unwrap_or("web.config"));
    let stem = stem.strip_suffix(".CONFIG").unwrap_or(&stem).to_string();
    Some((name, stem))
}

/// `20261126T112045Z`, then maybe `-3FA9C1D2` (the random part; hex in
/// either case), then maybe `-2`.
fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    let time = b.len() >= 16
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8].eq_ignore_ascii_case(&b'T')
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15].eq_ignore_ascii_case(&b'Z');
    if !time {
        return false;
    }
    let mut rest = &s[16..];
    if let Some(r) = rest.strip_prefix('-')
        && r.len() >= 8
        && r.as_bytes()[..8].iter().all(u8::is_ascii_hexdigit)
        && (r.len() == 8 || r.as_bytes()[8] == b'-')
    {
        rest = &r[8..];
    }
    match rest.strip_prefix('-') {
        None => rest.is_empty(),
        Some(n) => (1..=3).contains(&n.len()) && n.bytes().all(|c| c.is_ascii_digit()),
    }
}

/// The files a push of `site` writes on `server` as it is now: its
/// configuration read again, as the scan reads it, and the plan's choice
/// ([`super::plan::site_files`]).
fn discover(sessions: &mut Sessions, server: &str, site: &str) -> Result<SiteFiles, RollbackError> {
    enum Discovery {
        Scan(crate::scan::ServerFailure),
        Read(TransportError),
        Gone,
    }
    impl retry::Lost for Discovery {
        fn is_lost(&self) -> bool {
            matches!(self, Discovery::Read(e) if e.is_disconnected())
        }
    }
    let found = retry::on_server(sessions, server, false, |t| {
        let config = read_server(t, &WindowsEnv::default()).map_err(Discovery::Scan)?;
        // Exactly: two sites may differ only in case, each its own.
        let Some(app) = config.apps.into_iter().find(|a| a.app.id == site) else {
            return Err(Discovery::Gone);
        };
        let Some(file) = app.web_config else {
            return Err(Discovery::Gone);
        };
        let web = read_opt(t, &file).map_err(Discovery::Read)?;
        Ok(super::plan::site_files(
            &file,
            app.effective.as_ref().ok(),
            web,
        ))
    });
    found.map_err(|e| match e {
        Reached::Session(e) => RollbackError::Connect(e),
        Reached::Op(f) => RollbackError::Undiscovered {
            site: site.to_string(),
            why: match f {
                Discovery::Scan(e) => e.to_string(),
                Discovery::Read(e) => e.to_string(),
                Discovery::Gone => {
                    "the server has no such site (or no path farmkey writes to) now".to_string()
                }
            },
        },
    })
}

/// Takes a server's lock for a rollback; breaks the one found there when
/// `break_lock` (never one of a process of this machine that still runs).
fn take_rollback_lock(
    sessions: &mut Sessions,
    server: &str,
    path: &RemotePath,
    mine: &LockInfo,
    break_lock: bool,
) -> Result<Option<Box<lock::Holder>>, RollbackError> {
    enum Taking {
        Read(TransportError),
        Lock(lock::LockError),
    }
    impl retry::Lost for Taking {
        fn is_lost(&self) -> bool {
            match self {
                Taking::Read(e) => e.is_disconnected(),
                Taking::Lock(e) => e.is_disconnected(),
            }
        }
    }
    // Another rollback (of this push or another of the site) holds it: it
    // restores the server within its own timeouts, then this one looks at
    // what it left. Waited for, a bounded time.
    let deadline = std::time::Instant::now() + ROLLBACK_WAIT;
    let mut waited = false;
    let taken = loop {
        let taken = retry::on_server(sessions, server, false, |t| {
            let found = if break_lock {
                lock::read_holder(t, server, path).map_err(Taking::Read)?
            } else {
                None
            };
            lock::acquire(t, server, path, mine, found.as_ref()).map_err(Taking::Lock)
        });
        match &taken {
            Err(Reached::Op(Taking::Lock(lock::LockError::Held(h))))
                if h.push_id()
                    .is_some_and(|id| id.starts_with(ROLLBACK_PREFIX))
                    && std::time::Instant::now() < deadline =>
            {
                if !std::mem::replace(&mut waited, true) {
                    test_pause("waiting", Some(server), &Interrupt::new());
                }
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            _ => break taken,
        }
    };
    let taken = taken.map_err(|e| match e {
        Reached::Session(e) => RollbackError::Connect(e),
        Reached::Op(Taking::Read(e)) => RollbackError::ReadLock(e),
        Reached::Op(Taking::Lock(lock::LockError::Held(h))) if !break_lock => {
            RollbackError::Locked(h)
        }
        Reached::Op(Taking::Lock(e)) => RollbackError::Lock(e),
    })?;
    Ok(match taken {
        Taken::Broke(h) => Some(h),
        Taken::Fresh => None,
    })
}

/// Rolls back one server's files (`recs`, in order), all or none: under
/// the server's lock, every file is checked before any is written, and
/// one that must be left alone (changed since the push) or cannot be read
/// keeps the others as they are too, so that the server never holds some
/// files from before the push and some from it. One result per record.
fn roll_back_server(
    sessions: &mut Sessions,
    server: &str,
    recs: &[&AuditRecord],
    id: &str,
    stamp: &str,
    break_lock: bool,
    start: &mut dyn FnMut() -> Result<(), audit::NotAppended>,
) -> Vec<Result<RolledBack, RollbackError>> {
    let all = |e: RollbackError| recs.iter().map(|_| Err(e.clone())).collect();
    // The file at `at` is refused for `why`: the others are kept as they
    // are for it.
    let withheld = |at: usize, why: RollbackError| -> Vec<_> {
        (0..recs.len())
            .map(|i| {
                Err(if i == at {
                    why.clone()
                } else {
                    RollbackError::Withheld(Box::new(why.clone()))
                })
            })
            .collect()
    };
    let mut targets = Vec::new();
    for (i, rec) in recs.iter().enumerate() {
        match RollbackTarget::parse(rec) {
            Ok(t) => targets.push(t),
            Err(e) => return withheld(i, e),
        }
    }
    let Some(first) = targets.first() else {
        return Vec::new();
    };
    let mine = LockInfo::mine(id, &first.rec.site);
    // The server's locks (one, unless older records name none), each with
    // the stale lock broken to take it.
    let mut held: Vec<(RemotePath, Option<Box<lock::Holder>>)> = Vec::new();
    // Released on a fresh session when the one in hand broke.
    let release = |sessions: &mut Sessions, held: &[(RemotePath, Option<Box<lock::Holder>>)]| {
        held.iter()
            .map(|(path, _)| release_lock(sessions, server, path, id))
            .collect::<Vec<_>>()
    };
    for t in &targets {
        if held.iter().any(|(l, _)| l.key() == t.lock.key()) {
            continue;
        }
        match take_rollback_lock(sessions, server, &t.lock, &mine, break_lock) {
            Ok(broke) => held.push((t.lock.clone(), broke)),
            Err(e) => {
                let released = release(sessions, &held);
                return with_locks_left(all(e), &held, released);
            }
        }
    }
    test_pause("rollback", Some(server), &Interrupt::new());
    let undos: Vec<Undo> = targets.iter().map(|t| t.undo(stamp)).collect();
    for (i, (t, undo)) in targets.iter().zip(&undos).enumerate() {
        let why = match check_server(sessions, server, undo, t.swap_unfinished()) {
            Ok(None) => continue,
            Ok(Some(why)) => RollbackError::Changed {
                file: t.file.clone(),
                push_id: t.rec.push_id.clone(),
                why,
            },
            Err(e) => RollbackError::Failed(format!("cannot read {}: {e}", t.file)),
        };
        let released = release(sessions, &held);
        return with_locks_left(withheld(i, why), &held, released);
    }
    // Recorded before anything is written, or nothing is.
    if let Err(e) = start() {
        let released = release(sessions, &held);
        return with_locks_left(all(RollbackError::StartUnrecorded(e)), &held, released);
    }
    let settled: Vec<Settled> = targets
        .iter()
        .zip(&undos)
        .map(|(t, undo)| settle_server(sessions, server, undo, false, t.swap_unfinished()))
        .collect();
    let released = release(sessions, &held);
    test_pause("restored", Some(server), &Interrupt::new());
    let mut broke_noted = vec![false; held.len()];
    targets
        .iter()
        .zip(settled)
        .map(|(t, Settled { restore, left })| {
            let already = matches!(restore, Restore::Untouched);
            match restore {
                Restore::Restored | Restore::Untouched => {}
                Restore::LeftAlone(why) => {
                    return Err(RollbackError::Changed {
                        file: t.file.clone(),
                        push_id: t.rec.push_id.clone(),
                        why,
                    });
                }
                Restore::Failed(why) if left.is_empty() => {
                    return Err(RollbackError::Failed(why));
                }
                Restore::Failed(why) => {
                    let left: Vec<String> = left
                        .iter()
                        .map(|l| format!("{} ({})", l.path, l.why))
                        .collect();
                    return Err(RollbackError::Failed(format!(
                        "{why}; left behind: {}",
                        left.join("; ")
                    )));
                }
            }
            let at = held
                .iter()
                .position(|(l, _)| l.key() == t.lock.key())
                .expect("every file's lock is held");
            // The lock broken is said once, with the first file under it.
            let broke = (!std::mem::replace(&mut broke_noted[at], true))
                .then(|| held[at].1.clone())
                .flatten();
            match &released[at] {
                Ok(()) => Ok(RolledBack {
                    broke,
                    unrecorded: None,
                    left,
                    already,
                }),
                Err(error) => Err(RollbackError::LockLeft {
                    path: t.lock.clone(),
                    error: error.clone(),
                }),
            }
        })
        .collect()
}

/// A server's files refused before any was restored: a lock of the
/// rollback that could not be released is named with each reason, never
/// left unsaid (the next push would meet it).
fn with_locks_left(
    results: Vec<Result<RolledBack, RollbackError>>,
    held: &[(RemotePath, Option<Box<lock::Holder>>)],
    released: Vec<Result<(), lock::ReleaseError>>,
) -> Vec<Result<RolledBack, RollbackError>> {
    let left: Vec<String> = held
        .iter()
        .zip(&released)
        .filter_map(|((path, _), r)| r.as_ref().err().map(|e| format!("{path} ({e})")))
        .collect();
    if left.is_empty() {
        return results;
    }
    results
        .into_iter()
        .map(|r| {
            r.map_err(|e| {
                RollbackError::Failed(format!(
                    "{e}; the lock {} was not removed: remove it once no push of the site runs",
                    left.join(", ")
                ))
            })
        })
        .collect()
}

/// A rollback's record of `rec`'s file: from what the push wrote to the
/// original.
fn rollback_line(rec: &AuditRecord, outcome: audit::Outcome, message: String) -> AuditRecord {
    let mut line = rec.clone();
    line.time = now();
    line.action = audit::AuditAction::Rollback;
    line.user = local_user();
    std::mem::swap(&mut line.sha256_before, &mut line.sha256_after);
    std::mem::swap(&mut line.fingerprints_before, &mut line.fingerprints_after);
    line.outcome = outcome;
    line.message = message;
    // A rollback is no part of the plan the push ran.
    line.plan = None;
    line
}

/// Why a rollback leaves a server alone before anyone is asked: a lock
/// it cannot take (another push holds it; a stale one is broken only with
/// `break_lock`). A lock another rollback holds is waited for, as
/// [`rollback_push`] does, so it keeps nothing back.
#[derive(Debug, Clone)]
pub struct LockedOut {
    pub server: String,
    pub holder: lock::Holder,
}

/// Reads the lock beside each file `records` would restore, server by
/// server, over `sessions` (the rollback goes on with them), changing
/// nothing: the servers a rollback cannot restore now. A server whose
/// lock cannot be read is left to [`rollback_push`], which says why.
pub fn locked_out(
    records: &[AuditRecord],
    sessions: &mut Sessions,
    break_lock: bool,
) -> Vec<LockedOut> {
    let mut out: Vec<LockedOut> = Vec::new();
    let mut looked: Vec<(String, String)> = Vec::new();
    for rec in records {
        if out.iter().any(|l| l.server == rec.server) {
            continue;
        }
        let Ok(file) = RemotePath::parse(&rec.file) else {
            continue;
        };
        let path = lock::lock_path(&file);
        let key = (rec.server.clone(), path.key());
        if looked.contains(&key) {
            continue;
        }
        looked.push(key);
        let found = retry::on_server(sessions, &rec.server, false, |t| {
            lock::read_holder(t, &rec.server, &path)
        });
        let Ok(Some(holder)) = found else {
            continue;
        };
        let rollback = holder
            .push_id()
            .is_some_and(|id| id.starts_with(ROLLBACK_PREFIX));
        let breakable = break_lock && holder.info.is_some() && !holder.alive_here();
        if !rollback && !breakable {
            out.push(LockedOut {
                server: rec.server.clone(),
                holder,
            });
        }
    }
    out
}

/// Restores the files a past push may have changed (see
/// [`super::history::PastPush::to_roll_back`]), server by server: each
/// server is locked, all its files are checked to hold what the push wrote
/// (or their original bytes, then left as they are) before any is written,
/// and a file changed since keeps all the server's files as they are; the
/// other servers go on. `break_lock` breaks a lock found on a server unless
/// a process of this machine that still runs holds it (what was broken is
/// in the result). Each file's result is recorded in the audit log and
/// goes to `progress` once its server has ended. Not interruptible: each
/// file's restore is bounded (connect and I/O timeouts), and a rollback
/// stopped half-way would leave a server half restored.
pub fn rollback_push(
    records: &[AuditRecord],
    sessions: &mut Sessions,
    audit: &AuditLog,
    break_lock: bool,
    progress: &mut dyn FnMut(&RollbackResult),
) -> Vec<RollbackResult> {
    let mut out = Vec::new();
    let stamp = super::file_stamp();
    let id = rollback_id(&stamp);
    let mut servers: Vec<&str> = Vec::new();
    for r in records {
        if !servers.contains(&r.server.as_str()) {
            servers.push(&r.server);
        }
    }
    // Every record is checked first against what a push of its site
    // writes on its server now: one that names anything else refuses the
    // whole rollback before any server is locked or written.
    let mut found: Vec<Option<RollbackError>> = vec![None; records.len()];
    let mut discovered: Vec<(&str, &str, Result<SiteFiles, RollbackError>)> = Vec::new();
    for (i, rec) in records.iter().enumerate() {
        let at = match discovered
            .iter()
            .position(|(s, site, _)| *s == rec.server && *site == rec.site)
        {
            Some(at) => at,
            None => {
                let files = discover(sessions, &rec.server, &rec.site);
                discovered.push((&rec.server, &rec.site, files));
                discovered.len() - 1
            }
        };
        found[i] = match (&discovered[at].2, RollbackTarget::parse(rec)) {
            (Err(e), _) => Some(e.clone()),
            (_, Err(e)) => Some(e),
            (Ok(files), Ok(t)) => t.trusted(files).err().map(RollbackError::Untrusted),
        };
    }
    let distrust = found
        .iter()
        .flatten()
        .find(|e| matches!(e, RollbackError::Untrusted(_) | RollbackError::Path(_)))
        .cloned();
    for server in servers {
        let at: Vec<usize> = (0..records.len())
            .filter(|&i| records[i].server == server)
            .collect();
        let recs: Vec<&AuditRecord> = at.iter().map(|&i| &records[i]).collect();
        let first = at.iter().find_map(|&i| found[i].clone());
        let results: Vec<Result<RolledBack, RollbackError>> = match (&distrust, first) {
            (Some(d), _) => at
                .iter()
                .map(|&i| match &found[i] {
                    Some(e @ (RollbackError::Untrusted(_) | RollbackError::Path(_))) => {
                        Err(e.clone())
                    }
                    _ => Err(RollbackError::Distrusted(Box::new(d.clone()))),
                })
                .collect(),
            // Not reached or not read: the server is left as it is.
            (None, Some(e)) => at
                .iter()
                .map(|&i| {
                    Err(found[i]
                        .clone()
                        .unwrap_or_else(|| RollbackError::Withheld(Box::new(e.clone()))))
                })
                .collect(),
            (None, None) => {
                let mut start = || {
                    recs.iter().try_for_each(|rec| {
                        audit
                            .append(&rollback_line(rec, audit::Outcome::Intent, String::new()))
                            .map_err(|e| audit::NotAppended::new(&audit.path, &e))
                    })
                };
                roll_back_server(sessions, server, &recs, &id, &stamp, break_lock, &mut start)
            }
        };
        for (rec, result) in recs.into_iter().zip(results) {
            let line = match &result {
                Ok(done) => {
                    let mut line = rollback_line(rec, audit::Outcome::RolledBack, String::new());
                    // What is still there, for the next rollback.
                    line.temporary = done.left.iter().map(|l| l.path.to_string()).collect();
                    line
                }
                Err(e) => {
                    let mut line = rollback_line(rec, audit::Outcome::Refused, e.to_string());
                    line.sha256_after = line.sha256_before.clone();
                    line
                }
            };
            // Not silent: the operator learns which record is missing, and where.
            let result = match (audit.append(&line), result) {
                (Ok(()), r) => r,
                (Err(e), Ok(done)) => Ok(RolledBack {
                    unrecorded: Some(audit::NotAppended::new(&audit.path, &e)),
                    ..done
                }),
                (Err(e), Err(why)) => Err(RollbackError::Unrecorded {
                    why: Box::new(why),
                    audit: audit::NotAppended::new(&audit.path, &e),
                }),
            };
            let done = RollbackResult {
                server: rec.server.clone(),
                file: rec.file.clone(),
                result,
            };
            progress(&done);
            out.push(done);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two rollbacks started in the same second have lock ids of their
    /// own: one never takes the other's lock for its own.
    #[test]
    fn two_rollbacks_in_one_second_never_share_a_lock_id() {
        let (a, b) = loop {
            let (a, b) = (super::super::file_stamp(), super::super::file_stamp());
            // The same second (the stamps may straddle one).
            if a[..16] == b[..16] {
                break (a, b);
            }
        };
        assert_ne!(rollback_id(&a), rollback_id(&b));
        assert!(rollback_id(&a).starts_with(&format!("rollback-{}", &a[..16])));
    }

    /// Only names a push gives a backup, beside the file, are taken from
    /// a record: any spelling of the case, old stamps and `-2` too.
    #[test]
    fn a_backup_is_one_farmkey_names_beside_the_file() {
        let file = RemotePath::parse("C:\\inetpub\\Cora\\Flowtime\\web.config").unwrap();
        let made = sibling(&file, &super::super::file_stamp(), "");
        assert!(is_backup_of(&file, &made), "{made}");
        for ok in [
            "C:\\inetpub\\Cora\\Flowtime\\web.20261126T112045Z-3fa9c1d2.farmkey.config",
            "c:/INETPUB/cora/flowtime/WEB.20261126t112045z-3FA9C1D2-2.FARMKEY.CONFIG",
            "C:\\inetpub\\Cora\\Flowtime\\web.20261126T112045Z.farmkey.config",
            "C:\\inetpub\\Cora\\Flowtime\\web.20261126T112045Z-12.farmkey.config",
        ] {
            assert!(is_backup_of(&file, &RemotePath::parse(ok).unwrap()), "{ok}");
        }
        for bad in [
            "C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config",
            "C:\\inetpub\\Cora\\Flowtime\\web.config",
            "D:\\Cora\\Administration\\web.20261126T112045Z-3fa9c1d2.farmkey.config",
            "C:\\inetpub\\Cora\\Flowtime\\web.20261126T112045Z-3fa9c1d2.farmkey-new.config",
            "C:\\inetpub\\Cora\\Flowtime\\web.20261126T112045Z-3fa9c1d2-x.farmkey.config",
            "C:\\inetpub\\Cora\\Flowtime\\web.2026112T112045Z.farmkey.config",
            "C:\\inetpub\\Cora\\Flowtime\\web.anything.farmkey.config",
            "C:\\inetpub\\Cora\\Flowtime\\App_Config\\web.20261126T112045Z.farmkey.config",
        ] {
            assert!(
                !is_backup_of(&file, &RemotePath::parse(bad).unwrap()),
                "{bad}"
            );
        }
    }
}
