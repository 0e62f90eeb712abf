//! Applying a plan, one server after the other, never racing on one file:
//! re-read, back up, stage, swap, verify; restore on failure; roll back the
//! servers already changed when one fails.

use super::audit::{AuditLog, AuditRecord, Fingerprints, local_user, now};
use super::{Plan, PlanAction, ServerPlan, Sessions, sibling};
use crate::bytes::FileBytes;
use crate::config::effective::HandlerState;
use crate::paths::{RemotePath, WindowsEnv};
use crate::scan::read_server;
use crate::transport::{Transport, TransportError};
use std::fmt;

/// The step a server failed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Reread,
    Backup,
    Stage,
    Swap,
    Verify,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Reread => "re-reading the file",
            Step::Backup => "writing the backup",
            Step::Stage => "uploading the new file",
            Step::Swap => "swapping it into place",
            Step::Verify => "verifying the result",
        })
    }
}

/// What became of the file after a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restore {
    /// The file was never touched.
    Untouched,
    /// Restored from its backup and verified.
    Restored,
    /// Could not be restored: the reason, and where the backup is.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOutcome {
    Applied,
    Unchanged,
    Skipped(String),
    /// Not tried because an earlier server failed.
    NotAttempted(String),
    Failed {
        step: Step,
        error: String,
        restore: Restore,
    },
    /// Applied, then restored because another server failed.
    RolledBack,
    /// Applied, and could not be restored.
    RollbackFailed(String),
}

impl ServerOutcome {
    pub fn name(&self) -> &'static str {
        match self {
            ServerOutcome::Applied => "applied",
            ServerOutcome::Unchanged => "unchanged",
            ServerOutcome::Skipped(_) => "skipped",
            ServerOutcome::NotAttempted(_) => "not-attempted",
            ServerOutcome::Failed { .. } => "failed",
            ServerOutcome::RolledBack => "rolled-back",
            ServerOutcome::RollbackFailed(_) => "rollback-failed",
        }
    }
}

impl fmt::Display for ServerOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerOutcome::Applied => f.write_str("applied and verified"),
            ServerOutcome::Unchanged => f.write_str("unchanged (already correct)"),
            ServerOutcome::Skipped(why) => write!(f, "skipped: {why}"),
            ServerOutcome::NotAttempted(why) => write!(f, "not attempted: {why}"),
            ServerOutcome::Failed {
                step,
                error,
                restore,
            } => {
                write!(f, "FAILED {step}: {error}; ")?;
                match restore {
                    Restore::Untouched => f.write_str("web.config was not touched"),
                    Restore::Restored => {
                        f.write_str("web.config restored from its backup and verified")
                    }
                    Restore::Failed(why) => write!(f, "web.config could NOT be restored: {why}"),
                }
            }
            ServerOutcome::RolledBack => {
                f.write_str("rolled back: original bytes restored and verified")
            }
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

#[derive(Debug, Clone)]
pub struct PushOutcome {
    pub push_id: String,
    pub site: String,
    pub results: Vec<ServerResult>,
    /// Records the audit log could not take.
    pub audit_errors: Vec<String>,
}

impl PushOutcome {
    /// Every targeted server ends correct.
    pub fn success(&self) -> bool {
        self.results
            .iter()
            .all(|r| matches!(r.outcome, ServerOutcome::Applied | ServerOutcome::Unchanged))
    }

    pub fn summary(&self) -> String {
        let count = |n: &str| {
            self.results
                .iter()
                .filter(|r| r.outcome.name() == n)
                .count()
        };
        let rolled = count("rolled-back");
        let mut parts = vec![
            format!("{} applied", count("applied")),
            format!("{} unchanged", count("unchanged")),
        ];
        for (n, label) in [
            ("skipped", "skipped"),
            ("failed", "failed"),
            ("not-attempted", "not attempted"),
            ("rolled-back", "rolled back"),
            ("rollback-failed", "could not be rolled back"),
        ] {
            if count(n) > 0 {
                parts.push(format!("{} {label}", count(n)));
            }
        }
        let verdict = if self.success() {
            format!("{} is in step on every targeted server", self.site)
        } else if rolled > 0 {
            "the servers already changed were rolled back".to_string()
        } else {
            format!("{} is NOT in step", self.site)
        };
        format!("Push {}: {}; {verdict}.", self.push_id, parts.join(", "))
    }
}

/// Progress of a push, for live displays.
#[derive(Debug, Clone)]
pub enum Progress {
    Step { server: String, step: Step },
    Done(ServerResult),
}

fn read_opt(t: &mut dyn Transport, path: &RemotePath) -> Result<Option<FileBytes>, TransportError> {
    match t.read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` and reads them back.
fn write_checked(
    t: &mut dyn Transport,
    path: &RemotePath,
    bytes: &FileBytes,
) -> Result<(), String> {
    if t.stat(path).map_err(|e| e.to_string())?.is_some() {
        return Err(format!(
            "{path} already exists; farmkey never overwrites it"
        ));
    }
    let written = t
        .write(path, bytes)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            let back = t.read(path).map_err(|e| e.to_string())?;
            if back.sha256() != bytes.sha256() {
                return Err(format!("{path} does not read back as written"));
            }
            Ok(())
        });
    if written.is_err() {
        // The file is ours (it did not exist): leave no partial copy behind.
        let _ = t.remove(path);
    }
    written
}

/// Puts `staged` in the place of `file`: posix-rename where the server has
/// it; otherwise move the old file aside and the new one in, undoing the
/// first move if the second fails.
fn swap(
    t: &mut dyn Transport,
    staged: &RemotePath,
    file: &RemotePath,
    stamp: &str,
) -> Result<(), String> {
    match t.replace(staged, file) {
        Ok(()) => return Ok(()),
        Err(TransportError::Unsupported(_)) => {}
        Err(e) => return Err(e.to_string()),
    }
    if t.stat(file).map_err(|e| e.to_string())?.is_none() {
        return t.rename(staged, file).map_err(|e| e.to_string());
    }
    let aside = sibling(file, stamp, "-old");
    t.rename(file, &aside).map_err(|e| e.to_string())?;
    if let Err(e) = t.rename(staged, file) {
        let undo = t
            .rename(&aside, file)
            .map_err(|u| format!("; moving it back failed too: {u}"));
        return Err(format!("{e}{}", undo.err().unwrap_or_default()));
    }
    let _ = t.remove(&aside);
    Ok(())
}

/// Puts the original bytes back: from the backup, or by removing a file
/// the push created. Verifies the result.
fn restore(
    t: &mut dyn Transport,
    file: &RemotePath,
    backup: Option<&RemotePath>,
    original_sha: Option<&str>,
    stamp: &str,
) -> Result<(), String> {
    match (backup, original_sha) {
        (Some(backup), Some(sha)) => {
            let bytes = t
                .read(backup)
                .map_err(|e| format!("reading the backup: {e}"))?;
            if bytes.sha256() != sha {
                return Err(format!(
                    "the backup {backup} does not hold the original bytes"
                ));
            }
            let staged = sibling(file, stamp, "-restore");
            let _ = t.remove(&staged);
            write_checked(t, &staged, &bytes)?;
            swap(t, &staged, file, stamp)?;
            let now = t.read(file).map_err(|e| format!("reading back: {e}"))?;
            if now.sha256() != sha {
                return Err("web.config does not read back as the original".into());
            }
            Ok(())
        }
        _ => {
            // The push created the file: the original state is no file.
            match t.remove(file) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.to_string()),
            }
            match t.stat(file) {
                Ok(None) => Ok(()),
                Ok(Some(_)) => Err("web.config is still there".into()),
                Err(e) => Err(e.to_string()),
            }
        }
    }
}

/// Whether the server's effective configuration of the site is what the
/// plan asked for.
fn verify_effective(t: &mut dyn Transport, plan: &Plan, sp: &ServerPlan) -> Result<(), String> {
    let config = read_server(t, &WindowsEnv::default()).map_err(|e| e.to_string())?;
    let app = config
        .apps
        .iter()
        .find(|a| a.app.id.eq_ignore_ascii_case(&plan.site))
        .ok_or_else(|| format!("{} is no longer in applicationHost.config", plan.site))?;
    let eff = app.effective.as_ref().map_err(|e| e.to_string())?;
    if let Some(keys) = &plan.keys
        && !super::same_keys(eff, keys)
    {
        return Err(
            "the effective machine key is not the one pushed (a file above may override it)".into(),
        );
    }
    if sp.handler_swap && eff.handler.state != HandlerState::MachineKey {
        return Err(format!(
            "the session-token handler is {}",
            eff.handler.state.name()
        ));
    }
    Ok(())
}

enum Attempt {
    Done(String),
    Skip(String),
    Fail {
        step: Step,
        error: String,
        touched: bool,
    },
}

fn attempt(
    t: &mut dyn Transport,
    plan: &Plan,
    sp: &ServerPlan,
    progress: &mut dyn FnMut(Progress),
) -> Attempt {
    let mut step = |s: Step| {
        progress(Progress::Step {
            server: sp.server.clone(),
            step: s,
        })
    };
    let fail = |step: Step, error: String, touched: bool| Attempt::Fail {
        step,
        error,
        touched,
    };
    step(Step::Reread);
    let current = match read_opt(t, &sp.file) {
        Ok(c) => c,
        Err(e) => return fail(Step::Reread, e.to_string(), false),
    };
    if current.as_ref().map(|b| b.sha256()) != sp.scanned_sha256 {
        return Attempt::Skip(format!(
            "{} changed since the scan: someone else edited it",
            sp.file
        ));
    }
    let Some(new_bytes) = &sp.edited else {
        return fail(Step::Reread, "the plan has no new content".into(), false);
    };
    if let Some(old) = &current {
        step(Step::Backup);
        if let Err(e) = write_checked(t, &sp.backup, old) {
            return fail(Step::Backup, e, false);
        }
    }
    step(Step::Stage);
    if let Err(e) = write_checked(t, &sp.staged, new_bytes) {
        return fail(Step::Stage, e, false);
    }
    step(Step::Swap);
    if let Err(e) = swap(t, &sp.staged, &sp.file, &plan.stamp) {
        let _ = t.remove(&sp.staged);
        return fail(Step::Swap, e, true);
    }
    step(Step::Verify);
    match t.read(&sp.file) {
        Ok(b) if b.sha256() == new_bytes.sha256() => {}
        Ok(_) => {
            return fail(
                Step::Verify,
                "web.config does not read back as written".into(),
                true,
            );
        }
        Err(e) => return fail(Step::Verify, e.to_string(), true),
    }
    if let Err(e) = verify_effective(t, plan, sp) {
        return fail(Step::Verify, e, true);
    }
    Attempt::Done(new_bytes.sha256())
}

fn record(plan: &Plan, sp: &ServerPlan, action: &str, result: &ServerResult) -> AuditRecord {
    let message = match &result.outcome {
        ServerOutcome::Applied | ServerOutcome::Unchanged | ServerOutcome::RolledBack => {
            String::new()
        }
        other => other.to_string(),
    };
    let applied = matches!(result.outcome, ServerOutcome::Applied);
    AuditRecord {
        time: now(),
        push_id: plan.push_id.clone(),
        action: action.to_string(),
        user: local_user(),
        server: sp.server.clone(),
        site: plan.site.clone(),
        file: sp.file.to_string(),
        sha256_before: result.sha_before.clone(),
        sha256_after: result.sha_after.clone(),
        fingerprints_before: Fingerprints::from(&sp.fingerprints_before),
        fingerprints_after: if applied {
            Fingerprints::from(&sp.fingerprints_after)
        } else {
            Fingerprints::from(&sp.fingerprints_before)
        },
        backup: result.backup.as_ref().map(|b| b.to_string()),
        outcome: result.outcome.name().to_string(),
        message,
    }
}

/// Applies a plan. Every server's outcome goes to the audit log (and to
/// `progress` as it happens).
pub fn apply(
    plan: &Plan,
    sessions: &mut Sessions,
    audit: &AuditLog,
    progress: &mut dyn FnMut(Progress),
) -> PushOutcome {
    let mut results: Vec<ServerResult> = Vec::new();
    let mut stop: Option<String> = None;
    let mut audit_errors = Vec::new();
    let mut log = |rec: AuditRecord| {
        if let Err(e) = audit.append(&rec) {
            audit_errors.push(e.to_string());
        }
    };

    for sp in &plan.servers {
        let mut result = ServerResult {
            server: sp.server.clone(),
            file: sp.file.clone(),
            outcome: ServerOutcome::Unchanged,
            sha_before: sp.scanned_sha256.clone(),
            sha_after: sp.scanned_sha256.clone(),
            backup: None,
        };
        result.outcome = match (&sp.action, &stop) {
            (PlanAction::Unchanged, _) => ServerOutcome::Unchanged,
            (PlanAction::Skip(why), _) => ServerOutcome::Skipped(why.clone()),
            (PlanAction::Write, Some(why)) => ServerOutcome::NotAttempted(why.clone()),
            (PlanAction::Write, None) => {
                let outcome = match sessions.get(&sp.server) {
                    Err(e) => Attempt::Fail {
                        step: Step::Reread,
                        error: e,
                        touched: false,
                    },
                    Ok(t) => attempt(t, plan, sp, progress),
                };
                match outcome {
                    Attempt::Done(sha) => {
                        result.sha_after = Some(sha);
                        result.backup = sp.scanned_sha256.as_ref().map(|_| sp.backup.clone());
                        ServerOutcome::Applied
                    }
                    Attempt::Skip(why) => {
                        stop = Some(format!("{} was changed by someone else", sp.server));
                        ServerOutcome::Skipped(why)
                    }
                    Attempt::Fail {
                        step,
                        error,
                        touched,
                    } => {
                        stop = Some(format!("{} failed", sp.server));
                        let restore = if touched {
                            restore_server(sessions, sp, plan)
                        } else {
                            Restore::Untouched
                        };
                        if restore != Restore::Untouched {
                            result.backup = sp.scanned_sha256.as_ref().map(|_| sp.backup.clone());
                        }
                        ServerOutcome::Failed {
                            step,
                            error,
                            restore,
                        }
                    }
                }
            }
        };
        log(record(plan, sp, "push", &result));
        progress(Progress::Done(result.clone()));
        results.push(result);
    }

    if stop.is_some() && !plan.keep_partial {
        for (i, sp) in plan.servers.iter().enumerate() {
            if results[i].outcome != ServerOutcome::Applied {
                continue;
            }
            let written = results[i].sha_after.clone();
            let outcome = match sessions.get(&sp.server) {
                Err(e) => ServerOutcome::RollbackFailed(format!("cannot connect: {e}")),
                Ok(t) => match read_opt(t, &sp.file) {
                    Ok(now) if now.as_ref().map(|b| b.sha256()) != written => {
                        ServerOutcome::RollbackFailed(format!(
                            "{} changed since the push; left as it is",
                            sp.file
                        ))
                    }
                    Ok(_) => match restore(
                        t,
                        &sp.file,
                        Some(&sp.backup).filter(|_| sp.scanned_sha256.is_some()),
                        sp.scanned_sha256.as_deref(),
                        &plan.stamp,
                    ) {
                        Ok(()) => ServerOutcome::RolledBack,
                        Err(e) => ServerOutcome::RollbackFailed(format!(
                            "{e}; the backup is {}",
                            sp.backup
                        )),
                    },
                    Err(e) => ServerOutcome::RollbackFailed(e.to_string()),
                },
            };
            let r = &mut results[i];
            if outcome == ServerOutcome::RolledBack {
                r.sha_after = r.sha_before.clone();
            }
            r.outcome = outcome;
            let rec = record(plan, sp, "rollback", r);
            log(rec);
            progress(Progress::Done(r.clone()));
        }
    }

    PushOutcome {
        push_id: plan.push_id.clone(),
        site: plan.site.clone(),
        results,
        audit_errors,
    }
}

/// Restores one server after a failed attempt, reconnecting once if the
/// session broke.
fn restore_server(sessions: &mut Sessions, sp: &ServerPlan, plan: &Plan) -> Restore {
    let backup = sp.scanned_sha256.as_ref().map(|_| &sp.backup);
    let mut last = String::new();
    for attempt in 0..2 {
        if attempt == 1 {
            sessions.forget(&sp.server);
        }
        match sessions.get(&sp.server) {
            Ok(t) => match restore(
                t,
                &sp.file,
                backup,
                sp.scanned_sha256.as_deref(),
                &plan.stamp,
            ) {
                Ok(()) => return Restore::Restored,
                Err(e) => last = e,
            },
            Err(e) => last = format!("cannot reconnect: {e}"),
        }
    }
    let keep = match backup {
        Some(b) => format!("the original is kept in {b}"),
        None => "the file did not exist before the push".to_string(),
    };
    Restore::Failed(format!("{last}; {keep}"))
}

/// Restores the files a past push wrote, after checking that they still
/// hold what it wrote.
pub fn rollback_push(
    records: &[AuditRecord],
    sessions: &mut Sessions,
    audit: &AuditLog,
) -> Vec<(String, Result<(), String>)> {
    let mut out = Vec::new();
    for rec in records
        .iter()
        .filter(|r| r.action == "push" && r.outcome == "applied")
    {
        let result = (|| -> Result<(), String> {
            let file = RemotePath::parse(&rec.file).map_err(|e| e.to_string())?;
            let backup = match &rec.backup {
                Some(b) => Some(RemotePath::parse(b).map_err(|e| e.to_string())?),
                None => None,
            };
            let t = sessions.get(&rec.server)?;
            let now = read_opt(t, &file).map_err(|e| e.to_string())?;
            if now.as_ref().map(|b| b.sha256()) != rec.sha256_after {
                return Err(format!(
                    "{file} changed since push {} (it no longer holds what the push wrote); refusing to overwrite it",
                    rec.push_id
                ));
            }
            let stamp = super::utc_stamp();
            restore(
                t,
                &file,
                backup.as_ref(),
                rec.sha256_before.as_deref(),
                &stamp,
            )
        })();
        let mut line = rec.clone();
        line.time = now();
        line.action = "rollback".into();
        line.user = local_user();
        std::mem::swap(&mut line.sha256_before, &mut line.sha256_after);
        std::mem::swap(&mut line.fingerprints_before, &mut line.fingerprints_after);
        match &result {
            Ok(()) => {
                line.outcome = "rolled-back".into();
                line.message = String::new();
            }
            Err(e) => {
                line.outcome = "refused".into();
                line.message = e.clone();
                line.sha256_after = line.sha256_before.clone();
            }
        }
        let _ = audit.append(&line);
        out.push((rec.server.clone(), result));
    }
    out
}
