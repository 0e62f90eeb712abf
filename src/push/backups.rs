//! The backups pushes leave beside the files they write
//! (`web.<stamp>.farmkey.config`): found by name on each server, matched to
//! the audit log (which push made each, which one a rollback still needs),
//! and pruned under the site's lock with a record in the log.
//!
//! Only a name farmkey gives a backup, beside a file a push of the site
//! writes ([`super::apply::is_backup_of`]: the stem of that file, a stamp
//! as [`super::file_stamp`] makes it, `.farmkey.config`) is ever listed or
//! removed: an operator's own copies (`web.config.bak`, `web.old.config`)
//! are never farmkey's.

use super::apply::is_backup_of;
use super::audit::{AuditAction, AuditLog, AuditRecord, Fingerprints, Outcome};
use super::history::pushes;
use super::lock::{self, LockError, LockInfo};
use super::sessions::Sessions;
use crate::inventory::Server;
use crate::paths::{RemotePath, WindowsEnv};
use crate::scan::{FileFault, FileProblem, ServerFailure, Unreachable, read_server};
use crate::transport::{self, ConnectOptions, DirEntry, Transport, TransportError};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// One backup found on a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub server: String,
    /// The application (`Site` or `Site/app`) whose file it backs up.
    pub site: String,
    /// The file it is a backup of (web.config or a `configSource` file).
    pub file: RemotePath,
    pub path: RemotePath,
    /// The site's lock on this server, taken while backups are removed.
    pub lock: RemotePath,
    pub size: Option<u64>,
    /// When the push made it: the stamp in its name (UTC), else the
    /// server's modification time.
    pub made: Option<SystemTime>,
    /// The push the audit log says made it; `None`: the log does not name
    /// it (another log, or records gone): still farmkey's by its name.
    pub push: Option<String>,
    /// The push whose rollback restores from it: the latest push of its
    /// site that changed something and was not rolled back.
    pub needed_by: Option<String>,
    /// Where the push that made it comes in the audit log: of two pushes
    /// in one second (their stamps equal to the second), the later one's
    /// backup is the newer.
    pub logged_at: Option<usize>,
}

impl Backup {
    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        self.made.and_then(|m| now.duration_since(m).ok())
    }

    /// The columns `farmkey backups` and the console's History show, in
    /// [`COLUMNS`] order (never its content: it holds old keys).
    pub fn cells(&self, now: SystemTime) -> [String; 6] {
        [
            self.server.clone(),
            self.path.to_string(),
            self.age(now).map_or_else(|| "?".into(), lock::age_text),
            self.size
                .map_or_else(|| "?".into(), crate::transport::size_text),
            self.push.clone().unwrap_or_else(|| UNKNOWN_PUSH.into()),
            needed_text(self.needed_by.as_deref()),
        ]
    }

    /// The file name, the way the operator names it to `prune --also`.
    pub fn name(&self) -> &str {
        self.path.file_name().unwrap_or_default()
    }
}

/// The headers of [`Backup::cells`].
pub const COLUMNS: [&str; 6] = ["SERVER", "BACKUP", "AGE", "SIZE", "MADE BY", "ROLLBACK"];

/// A backup the audit log names no push for: another log's, or its
/// records are gone; farmkey's all the same by its name.
pub const UNKNOWN_PUSH: &str = "unknown push";

/// Whether a rollback needs a backup, as the listing says it.
pub fn needed_text(push: Option<&str>) -> String {
    match push {
        Some(p) => format!("needed by push {p}"),
        None => "not needed".into(),
    }
}

/// The backups of one server, or why it could not be read.
#[derive(Debug, Clone)]
pub struct ServerBackups {
    pub server: String,
    /// The server hosts the site asked for (or none was asked for).
    pub hosts_site: bool,
    pub result: Result<Vec<Backup>, ServerFailure>,
}

/// Whether `app` is the site asked for: spelled exactly, else the one
/// spelled so without regard to case (as `push --site` finds one).
fn chosen<'a>(ids: &[&'a str], site: &str) -> Option<&'a str> {
    if let Some(id) = ids.iter().find(|id| **id == site) {
        return Some(id);
    }
    let mut like = ids.iter().filter(|id| id.eq_ignore_ascii_case(site));
    match (like.next(), like.next()) {
        (Some(id), None) => Some(id),
        _ => None,
    }
}

/// The backups on one server of every site (or of `site`), as its
/// configuration says now: beside each application's web.config and the
/// files its sections are kept in. One listing per folder; one stat per
/// backup (its size). The audit log's part ([`Ledger::annotate`]) is not
/// filled in. With it, whether the server hosts `site` (when asked).
pub fn list_server(
    t: &mut dyn Transport,
    server: &str,
    site: Option<&str>,
) -> Result<(Vec<Backup>, bool), ServerFailure> {
    let config = read_server(t, &WindowsEnv::default())?;
    let ids: Vec<&str> = config.apps.iter().map(|a| a.app.id.as_str()).collect();
    let wanted = site.map(|s| chosen(&ids, s));
    let hosts = wanted.is_none_or(|w| w.is_some());
    let lost = |e: TransportError| ServerFailure::Unreachable(Unreachable::Lost(Box::new(e)));
    let mut listed: HashMap<String, Vec<DirEntry>> = HashMap::new();
    let mut out: Vec<Backup> = Vec::new();
    for app in &config.apps {
        if wanted.is_some_and(|w| w != Some(app.app.id.as_str())) {
            continue;
        }
        let Some(web) = &app.web_config else {
            continue;
        };
        let files =
            std::iter::once(web.clone()).chain(app.external_sha256.iter().map(|(p, _)| p.clone()));
        for file in files {
            let Some(dir) = file.parent() else { continue };
            let entries = match listed.entry(dir.key()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(match t.list(&dir) {
                    Ok(e) => e,
                    Err(e) if e.is_not_found() => Vec::new(),
                    Err(e) if e.is_disconnected() => return Err(lost(e)),
                    Err(e) => {
                        return Err(ServerFailure::Unreadable(FileProblem {
                            path: dir.to_string(),
                            fault: Box::new(FileFault::Transport(e)),
                        }));
                    }
                }),
            };
            for e in entries.iter().filter(|e| !e.is_dir) {
                let Ok(path) = file.with_file_name(&e.name) else {
                    continue;
                };
                if !is_backup_of(&file, &path) || out.iter().any(|b| b.path.key() == path.key()) {
                    continue;
                }
                let stat = match t.stat(&path) {
                    Ok(s) => s,
                    Err(e) if e.is_disconnected() => return Err(lost(e)),
                    Err(_) => None,
                };
                out.push(Backup {
                    server: server.to_string(),
                    site: app.app.id.clone(),
                    made: stamp_time(&file, &path).or_else(|| {
                        stat.and_then(|s| s.modified)
                            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
                    }),
                    size: stat.map(|s| s.size),
                    file: file.clone(),
                    lock: lock::lock_path(web),
                    path,
                    push: None,
                    needed_by: None,
                    logged_at: None,
                });
            }
        }
    }
    out.sort_by(|a, b| {
        (a.site.as_str(), a.file.key(), a.made)
            .cmp(&(b.site.as_str(), b.file.key(), b.made))
            .then_with(|| a.path.key().cmp(&b.path.key()))
    });
    Ok((out, hosts))
}

/// The time in a backup's name (`web.20261126T112045Z-3fa9c1d2.farmkey.config`).
fn stamp_time(file: &RemotePath, backup: &RemotePath) -> Option<SystemTime> {
    let stem_len = file.file_name()?.len().checked_sub(".config".len())?;
    let name = backup.file_name()?;
    let s = name.get(stem_len + 1..stem_len + 17)?;
    let text = format!(
        "{}-{}-{}T{}:{}:{}Z",
        s.get(0..4)?,
        s.get(4..6)?,
        s.get(6..8)?,
        s.get(9..11)?,
        s.get(11..13)?,
        s.get(13..15)?
    );
    humantime::parse_rfc3339(&text).ok()
}

/// Every server's backups, read at once on at most `jobs` threads (each
/// server on a session of its own, closed when it is read), in inventory
/// order.
pub fn list_all(
    servers: &[Server],
    opts: &ConnectOptions,
    jobs: usize,
    site: Option<&str>,
) -> Vec<ServerBackups> {
    opts.jumps.forget_failures();
    let jobs = jobs.min(transport::session_budget());
    crate::farm::on_each(servers, jobs, |server| {
        let result = match transport::connect(server, opts) {
            Ok(mut t) => {
                let r = list_server(t.as_mut(), &server.name, site);
                // Teardown of a session can block: never a reader.
                std::thread::spawn(move || drop(t));
                r
            }
            Err(e) if e.is_host_key_changed() => Err(ServerFailure::HostKeyChanged(Box::new(e))),
            Err(e) => Err(ServerFailure::Unreachable(Unreachable::Connect(Box::new(
                e,
            )))),
        };
        ServerBackups {
            server: server.name.clone(),
            hosts_site: result.as_ref().is_ok_and(|(_, h)| *h),
            result: result.map(|(b, _)| b),
        }
    })
}

/// What the audit log says of backups: which push made each, and which
/// ones a rollback needs.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// (server, backup's key) → the push that made it.
    made: HashMap<(String, String), (String, usize)>,
    /// (server, backup's key) → the push whose rollback restores from it.
    needed: HashMap<(String, String), String>,
}

fn entry(server: &str, backup: &str) -> Option<(String, String)> {
    Some((server.to_string(), RemotePath::parse(backup).ok()?.key()))
}

impl Ledger {
    pub fn new(records: &[AuditRecord]) -> Ledger {
        let mut ledger = Ledger::default();
        for (i, r) in records.iter().enumerate() {
            if r.action != AuditAction::Push {
                continue;
            }
            if let Some(k) = r.backup.as_deref().and_then(|b| entry(&r.server, b)) {
                ledger
                    .made
                    .entry(k)
                    .or_insert_with(|| (r.push_id.clone(), i));
            }
        }
        // Per site, the push `farmkey rollback` undoes by default: its
        // latest that changed something and was not rolled back.
        let mut sites: Vec<&str> = records.iter().map(|r| r.site.as_str()).collect();
        sites.sort_unstable();
        sites.dedup();
        for site in sites {
            let Some(latest) = pushes(records, Some(site))
                .into_iter()
                .rev()
                .find(|p| !p.to_roll_back().is_empty())
            else {
                continue;
            };
            for r in latest.to_roll_back() {
                if let Some(k) = r.backup.as_deref().and_then(|b| entry(&r.server, b)) {
                    ledger.needed.insert(k, latest.id.clone());
                }
            }
        }
        ledger
    }

    /// Fills in the push that made each backup and the one that needs it.
    pub fn annotate(&self, backups: &mut [Backup]) {
        for b in backups.iter_mut() {
            let k = (b.server.clone(), b.path.key());
            let made = self.made.get(&k);
            b.push = made.map(|(id, _)| id.clone());
            b.logged_at = made.map(|(_, i)| *i);
            b.needed_by = self.needed.get(&k).cloned();
        }
        backups.sort_by(|a, b| {
            (a.site.as_str(), a.file.key(), a.made, a.logged_at)
                .cmp(&(b.site.as_str(), b.file.key(), b.made, b.logged_at))
                .then_with(|| a.path.key().cmp(&b.path.key()))
        });
    }
}

/// Which backups a prune removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneRule {
    /// The `n` newest backups of each file on each server are kept.
    Keep(usize),
    /// Backups older than this are removed.
    OlderThan(Duration),
}

/// What a prune does with one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Removed: the rule selects it, or the operator named it.
    Remove { named: bool },
    /// Kept: the rule does not select it.
    Keep,
    /// Kept although the rule selects it: the rollback of this push
    /// restores from it (name it to remove it all the same).
    Needed { push: String },
}

/// A prune's plan: every backup found with what becomes of it, and the
/// servers that could not be read.
#[derive(Debug, Clone)]
pub struct PrunePlan {
    pub id: String,
    pub items: Vec<(Backup, Decision)>,
    pub unread: Vec<(String, ServerFailure)>,
}

impl PrunePlan {
    pub fn removals(&self) -> impl Iterator<Item = &Backup> {
        self.items
            .iter()
            .filter(|(_, d)| matches!(d, Decision::Remove { .. }))
            .map(|(b, _)| b)
    }
}

/// `name` names `b`: its file name or its whole path, compared as NTFS
/// compares names.
pub fn names(b: &Backup, name: &str) -> bool {
    let up = crate::paths::windows_upcase;
    up(name) == up(b.name()) || RemotePath::parse(name).is_ok_and(|p| p.key() == b.path.key())
}

/// The backups of one file of one server: each one's time, place in the
/// log and key.
type Ranked = Vec<(Option<SystemTime>, Option<usize>, String)>;

/// Plans a prune of `listed` (annotated) by `rule`, removing `also` (names
/// or paths) whatever the rule and the rollback say. `Err` names what of
/// `also` is no backup found.
pub fn plan_prune(
    listed: Vec<ServerBackups>,
    rule: PruneRule,
    also: &[String],
    now: SystemTime,
) -> Result<PrunePlan, Vec<String>> {
    let mut items: Vec<(Backup, Decision)> = Vec::new();
    let mut unread = Vec::new();
    for s in listed {
        match s.result {
            Ok(b) => items.extend(b.into_iter().map(|b| (b, Decision::Keep))),
            Err(e) => unread.push((s.server, e)),
        }
    }
    let unknown: Vec<String> = also
        .iter()
        .filter(|n| !items.iter().any(|(b, _)| names(b, n)))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    // Newest first within each file of each server.
    let mut rank: HashMap<(String, String), Ranked> = HashMap::new();
    for (b, _) in &items {
        rank.entry((b.server.clone(), b.file.key()))
            .or_default()
            .push((b.made, b.logged_at, b.path.key()));
    }
    for list in rank.values_mut() {
        list.sort_by(|a, b| b.cmp(a));
    }
    for (b, d) in &mut items {
        let selected = match rule {
            PruneRule::Keep(n) => {
                let list = &rank[&(b.server.clone(), b.file.key())];
                list.iter()
                    .position(|(_, _, k)| *k == b.path.key())
                    .unwrap_or(0)
                    >= n
            }
            // A backup of unknown age is never taken for an old one.
            PruneRule::OlderThan(d) => b.age(now).is_some_and(|a| a >= d),
        };
        let named = also.iter().any(|n| names(b, n));
        *d = if named {
            Decision::Remove { named: true }
        } else if !selected {
            Decision::Keep
        } else if let Some(push) = &b.needed_by {
            Decision::Needed { push: push.clone() }
        } else {
            Decision::Remove { named: false }
        };
    }
    Ok(PrunePlan {
        id: prune_id(),
        items,
        unread,
    })
}

/// `prune-20261126T112045Z-3fa9c1d2`: the prune's id in the log and in
/// the locks it takes.
pub fn prune_id() -> String {
    format!("prune-{}", super::file_stamp())
}

/// Why a backup was not removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotRemoved {
    /// The server refused or failed the removal (a read-only file on
    /// Windows, permissions, a lost connection).
    #[error("{0}")]
    Refused(TransportError),
    /// Removed as the server said, but still there when the folder was
    /// read again.
    #[error("still there when its folder was read again")]
    StillThere,
    /// Another push or prune holds the site's lock: the site was left alone.
    #[error("{0}")]
    Locked(Box<lock::Holder>),
    /// The site's lock could not be taken.
    #[error("{0}")]
    NoLock(LockError),
    /// No session to the server.
    #[error("{0}")]
    NoSession(super::sessions::SessionError),
}

impl NotRemoved {
    fn outcome(&self) -> Outcome {
        match self {
            NotRemoved::Locked(_) => Outcome::LeftAlone,
            _ => Outcome::Failed,
        }
    }
}

/// How the removal of one backup ended.
#[derive(Debug, Clone)]
pub struct Removal {
    pub backup: Backup,
    pub result: Result<(), NotRemoved>,
}

/// What a prune did.
#[derive(Debug, Clone, Default)]
pub struct PruneOutcome {
    pub removals: Vec<Removal>,
    /// Backups kept that were gone when their folder was read again
    /// (removed by someone else meanwhile).
    pub kept_gone: Vec<Backup>,
    /// The audit log did not take these records.
    pub audit_errors: Vec<String>,
    /// Site locks the prune took and could not remove (a server lost):
    /// a push of the site is refused until it is broken (`--break-lock`).
    pub locks_left: Vec<(String, RemotePath)>,
}

impl PruneOutcome {
    pub fn complete(&self) -> bool {
        self.removals.iter().all(|r| r.result.is_ok())
            && self.kept_gone.is_empty()
            && self.locks_left.is_empty()
    }

    pub fn removed(&self) -> impl Iterator<Item = &Backup> {
        self.removals
            .iter()
            .filter(|r| r.result.is_ok())
            .map(|r| &r.backup)
    }

    pub fn failed(&self) -> impl Iterator<Item = (&Backup, &NotRemoved)> {
        self.removals
            .iter()
            .filter_map(|r| r.result.as_ref().err().map(|e| (&r.backup, e)))
    }
}

/// Removes the plan's removals, server by server and site by site under
/// the site's lock, reads each folder again to verify (removed ones gone,
/// kept ones there), and appends one record per backup to `audit` (the
/// prune's id, the backup, `removed`, `failed` or `left-alone`, and why).
/// `done` is told each server's removals as they end.
pub fn prune(
    plan: &PrunePlan,
    sessions: &mut Sessions,
    audit: &AuditLog,
    done: &mut dyn FnMut(&[Removal]),
) -> PruneOutcome {
    let mut out = PruneOutcome::default();
    let mut servers: Vec<&str> = plan.removals().map(|b| b.server.as_str()).collect();
    servers.dedup();
    for server in servers {
        let mut removals = prune_server(plan, server, sessions, &mut out.locks_left);
        verify(plan, server, sessions, &mut removals, &mut out.kept_gone);
        for r in &removals {
            if let Err(e) = audit.append(&record(&plan.id, r)) {
                out.audit_errors.push(e.to_string());
            }
        }
        done(&removals);
        out.removals.extend(removals);
    }
    out
}

fn prune_server(
    plan: &PrunePlan,
    server: &str,
    sessions: &mut Sessions,
    locks_left: &mut Vec<(String, RemotePath)>,
) -> Vec<Removal> {
    let mine: Vec<&Backup> = plan.removals().filter(|b| b.server == server).collect();
    let mut sites: Vec<&str> = mine.iter().map(|b| b.site.as_str()).collect();
    sites.dedup();
    let mut out = Vec::new();
    for site in sites {
        let of_site: Vec<&Backup> = mine.iter().copied().filter(|b| b.site == site).collect();
        let fail_all = |why: NotRemoved, out: &mut Vec<Removal>| {
            out.extend(of_site.iter().map(|b| Removal {
                backup: (*b).clone(),
                result: Err(why.clone()),
            }));
        };
        let t = match sessions.get(server) {
            Ok(t) => t,
            Err(e) => {
                fail_all(NotRemoved::NoSession(e), &mut out);
                continue;
            }
        };
        let lock_path = &of_site[0].lock;
        let me = LockInfo::mine(&plan.id, site);
        match lock::acquire(t, server, lock_path, &me, None) {
            Ok(_) => {}
            Err(LockError::Held(h)) => {
                fail_all(NotRemoved::Locked(h), &mut out);
                continue;
            }
            Err(e) => {
                let lost = e.is_disconnected();
                fail_all(NotRemoved::NoLock(e), &mut out);
                if lost {
                    sessions.forget(server);
                }
                continue;
            }
        }
        let mut lost = false;
        for b in &of_site {
            let result = if lost {
                Err(NotRemoved::Refused(TransportError::Disconnected(
                    "the connection was lost before this removal".into(),
                )))
            } else {
                match t.remove(&b.path) {
                    Ok(()) => Ok(()),
                    // Gone already: what the prune wants.
                    Err(e) if e.is_not_found() => Ok(()),
                    Err(e) => {
                        lost = e.is_disconnected();
                        Err(NotRemoved::Refused(e))
                    }
                }
            };
            out.push(Removal {
                backup: (*b).clone(),
                result,
            });
        }
        if lost {
            // Once more on a fresh session: a lock left would hold off
            // every push of the site until broken.
            sessions.forget(server);
        }
        let released = sessions
            .get(server)
            .map_err(|_| ())
            .and_then(|t| lock::release(t, server, lock_path, &plan.id).map_err(|_| ()));
        if released.is_err() {
            locks_left.push((server.to_string(), lock_path.clone()));
        }
    }
    out
}

/// Reads each folder of `server`'s removals again: a removal the server
/// acknowledged whose file is still there is a failure; a backup kept that
/// is gone is noted. A server lost since is not read (its removals say so).
fn verify(
    plan: &PrunePlan,
    server: &str,
    sessions: &mut Sessions,
    removals: &mut [Removal],
    kept_gone: &mut Vec<Backup>,
) {
    if removals.iter().any(|r| {
        matches!(&r.result, Err(NotRemoved::Refused(e)) if e.is_disconnected())
            || matches!(&r.result, Err(NotRemoved::NoSession(_)))
    }) {
        return;
    }
    let Ok(t) = sessions.get(server) else { return };
    let mut listed: HashMap<String, Option<Vec<DirEntry>>> = HashMap::new();
    let mut there = |t: &mut dyn Transport, p: &RemotePath| -> Option<bool> {
        let dir = p.parent()?;
        let entries = listed
            .entry(dir.key())
            .or_insert_with(|| t.list(&dir).ok())
            .as_ref()?;
        let name = crate::paths::windows_upcase(p.file_name()?);
        Some(
            entries
                .iter()
                .any(|e| crate::paths::windows_upcase(&e.name) == name),
        )
    };
    for r in removals.iter_mut() {
        if r.result.is_ok() && there(t, &r.backup.path) == Some(true) {
            r.result = Err(NotRemoved::StillThere);
        }
    }
    for (b, d) in &plan.items {
        if b.server == server
            && !matches!(d, Decision::Remove { .. })
            && there(t, &b.path) == Some(false)
        {
            kept_gone.push(b.clone());
        }
    }
}

/// The audit record of one backup's removal: no key, no content; the
/// backup, the file it backed up, the lock, how it ended and why.
fn record(id: &str, r: &Removal) -> AuditRecord {
    let b = &r.backup;
    AuditRecord {
        time: super::audit::now(),
        push_id: id.to_string(),
        action: AuditAction::Prune,
        user: super::audit::local_user(),
        server: b.server.clone(),
        site: b.site.clone(),
        file: b.file.to_string(),
        sha256_before: None,
        sha256_after: None,
        fingerprints_before: Fingerprints::default(),
        fingerprints_after: Fingerprints::default(),
        backup: Some(b.path.to_string()),
        lock: Some(b.lock.to_string()),
        temporary: Vec::new(),
        plan: None,
        outcome: match &r.result {
            Ok(()) => Outcome::Removed,
            Err(e) => e.outcome(),
        },
        message: match &r.result {
            Ok(()) => match &b.push {
                Some(p) => format!("backup made by push {p}"),
                None => "backup of an unknown push".into(),
            },
            Err(e) => e.to_string(),
        },
    }
}

/// A push's retention: what it removed, or why it could not look.
#[derive(Debug)]
pub enum Retained {
    /// The inventory sets no `backup_keep` for any server of the push.
    Off,
    /// The audit log could not be read: nothing was removed.
    NoLog(String),
    Pruned {
        plan: PrunePlan,
        outcome: PruneOutcome,
    },
}

impl Retained {
    /// One line for the operator, `None` when retention is off or had
    /// nothing to remove.
    pub fn summary(&self) -> Option<String> {
        match self {
            Retained::Off => None,
            Retained::NoLog(e) => Some(format!(
                "retention (backup_keep) not applied: {e}; no backup was removed"
            )),
            Retained::Pruned { plan, outcome } => {
                let removed = outcome.removed().count();
                let failed: Vec<String> = outcome
                    .failed()
                    .map(|(b, e)| format!("{} {}: {e}", b.server, b.path))
                    .collect();
                let unread: Vec<&str> = plan.unread.iter().map(|(s, _)| s.as_str()).collect();
                if removed == 0
                    && failed.is_empty()
                    && unread.is_empty()
                    && outcome.locks_left.is_empty()
                {
                    return None;
                }
                let mut s = format!(
                    "retention (backup_keep): {removed} older backup(s) removed ({})",
                    plan.id
                );
                if !failed.is_empty() {
                    s.push_str(&format!("; NOT removed: {}", failed.join("; ")));
                }
                for (server, lock) in &outcome.locks_left {
                    s.push_str(&format!(
                        "; its lock {lock} may be left on {server} (break it with --break-lock)"
                    ));
                }
                if !unread.is_empty() {
                    s.push_str(&format!("; not looked at: {}", super::and_list(&unread)));
                }
                Some(s)
            }
        }
    }
}

/// The servers of `plan` whose inventory entry sets `backup_keep`, with it.
pub fn retention(plan: &super::Plan, servers: &[Server]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for sp in &plan.servers {
        let keep = servers
            .iter()
            .find(|s| s.name == sp.server)
            .and_then(|s| s.backup_keep);
        if let Some(n) = keep
            && !out.iter().any(|(s, _)| *s == sp.server)
        {
            out.push((sp.server.clone(), n));
        }
    }
    out
}

/// After a push of `site` was applied and recorded: on each of `servers`
/// (the push's, each with its `backup_keep`) the site's backups beyond the
/// newest `keep` of each file are removed, as `farmkey prune --keep` would
/// (under the site's lock, verified, recorded), over the push's sessions.
/// The backups the push's own rollback needs are never removed: the log
/// names it the site's latest push.
pub fn retain(
    site: &str,
    servers: &[(String, usize)],
    sessions: &mut Sessions,
    audit: &AuditLog,
) -> Retained {
    if servers.is_empty() {
        return Retained::Off;
    }
    let records = match audit.read() {
        Ok(r) => r.records,
        Err(e) => return Retained::NoLog(e.to_string()),
    };
    let ledger = Ledger::new(&records);
    let now = SystemTime::now();
    let mut plan = PrunePlan {
        id: prune_id(),
        items: Vec::new(),
        unread: Vec::new(),
    };
    for (server, keep) in servers {
        use super::sessions::SessionError;
        let mut result = match sessions.get(server) {
            Ok(t) => list_server(t, server, Some(site)).map(|(b, _)| b),
            Err(SessionError::Connect(c) | SessionError::Reconnect { last: c, .. }) => {
                Err(ServerFailure::Unreachable(Unreachable::Connect(c)))
            }
            Err(SessionError::NotInInventory(_)) => continue,
        };
        if let Ok(b) = &mut result {
            ledger.annotate(b);
        }
        let listed = vec![ServerBackups {
            server: server.clone(),
            hosts_site: true,
            result,
        }];
        if let Ok(p) = plan_prune(listed, PruneRule::Keep(*keep), &[], now) {
            plan.items.extend(p.items);
            plan.unread.extend(p.unread);
        }
    }
    let outcome = prune(&plan, sessions, audit, &mut |_| {});
    Retained::Pruned { plan, outcome }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::local::LocalTransport;

    const DIR: &str = "C:\\inetpub\\Cora\\Flowtime";

    fn path(name: &str) -> RemotePath {
        RemotePath::parse(&format!("{DIR}\\{name}")).unwrap()
    }

    fn backup(server: &str, stamp: &str, needed: Option<&str>) -> Backup {
        let file = path("web.config");
        let p = path(&format!("web.{stamp}.farmkey.config"));
        Backup {
            server: server.into(),
            site: "Flowtime".into(),
            made: stamp_time(&file, &p),
            file: file.clone(),
            lock: lock::lock_path(&file),
            path: p,
            size: Some(10),
            push: None,
            needed_by: needed.map(String::from),
            logged_at: None,
        }
    }

    fn server(name: &str, b: Vec<Backup>) -> ServerBackups {
        ServerBackups {
            server: name.into(),
            hosts_site: true,
            result: Ok(b),
        }
    }

    fn decisions(plan: &PrunePlan) -> Vec<(String, String, Decision)> {
        plan.items
            .iter()
            .map(|(b, d)| (b.server.clone(), b.name().to_string(), d.clone()))
            .collect()
    }

    fn t(stamp: &str) -> String {
        format!("web.{stamp}.farmkey.config")
    }

    #[test]
    fn the_time_of_a_backup_is_the_stamp_in_its_name() {
        let file = path("web.config");
        let made = stamp_time(&file, &path("web.20261126T112045Z-3fa9c1d2.farmkey.config"));
        assert_eq!(
            made,
            Some(humantime::parse_rfc3339("2026-11-26T11:20:45Z").unwrap())
        );
        let section = path("identity.config");
        assert!(stamp_time(&section, &path("identity.20261126T112045Z.farmkey.config")).is_some());
        assert_eq!(stamp_time(&file, &path("web.x.farmkey.config")), None);
    }

    /// The newest `n` of each file of each server are kept; a backup the
    /// latest push's rollback needs is kept whatever the rule, unless
    /// named; a name that is no backup found is refused.
    #[test]
    fn a_prune_keeps_what_the_rule_and_the_rollback_say() {
        let (a, b, c) = (
            "20261101T000000Z-00000001",
            "20261102T000000Z-00000002",
            "20261103T000000Z-00000003",
        );
        let listed = || {
            vec![
                server(
                    "web01",
                    vec![
                        backup("web01", a, None),
                        backup("web01", b, None),
                        backup("web01", c, Some("p3")),
                    ],
                ),
                server("web02", vec![backup("web02", a, Some("p1"))]),
                ServerBackups {
                    server: "web03".into(),
                    hosts_site: false,
                    result: Err(ServerFailure::Unreachable(Unreachable::WorkerStopped)),
                },
            ]
        };
        let now = humantime::parse_rfc3339("2026-11-04T00:00:00Z").unwrap();
        let plan = plan_prune(listed(), PruneRule::Keep(1), &[], now).unwrap();
        let remove = Decision::Remove { named: false };
        assert_eq!(
            decisions(&plan),
            [
                ("web01".into(), t(a), remove.clone()),
                ("web01".into(), t(b), remove.clone()),
                ("web01".into(), t(c), Decision::Keep),
                ("web02".into(), t(a), Decision::Keep),
            ]
        );
        assert_eq!(plan.unread.len(), 1);
        // Older than two days: a and b; web02's a is needed by p1.
        let plan = plan_prune(
            listed(),
            PruneRule::OlderThan(Duration::from_secs(2 * 86_400)),
            &[],
            now,
        )
        .unwrap();
        assert_eq!(
            decisions(&plan),
            [
                ("web01".into(), t(a), remove.clone()),
                ("web01".into(), t(b), remove.clone()),
                ("web01".into(), t(c), Decision::Keep),
                ("web02".into(), t(a), Decision::Needed { push: "p1".into() }),
            ]
        );
        // Named, in any case, by name or path: removed wherever it is.
        let named = [t(a).to_uppercase()];
        let plan = plan_prune(listed(), PruneRule::Keep(5), &named, now).unwrap();
        let gone: Vec<(String, String)> = plan
            .removals()
            .map(|b| (b.server.clone(), b.name().to_string()))
            .collect();
        assert_eq!(gone, [("web01".into(), t(a)), ("web02".into(), t(a))]);
        let full = [format!("{DIR}\\{}", t(c))];
        assert_eq!(
            plan_prune(listed(), PruneRule::Keep(5), &full, now)
                .unwrap()
                .removals()
                .count(),
            1
        );
        let err =
            plan_prune(listed(), PruneRule::Keep(0), &["web.config".into()], now).unwrap_err();
        assert_eq!(err, ["web.config"]);
        // Two pushes in one second: the log's order says which is newer.
        let (x, y) = ("20261103T000000Z-ffffffff", "20261103T000000Z-00000000");
        let mut older = backup("web01", x, None);
        older.logged_at = Some(1);
        let mut newer = backup("web01", y, None);
        newer.logged_at = Some(7);
        let plan = plan_prune(
            vec![server("web01", vec![newer, older])],
            PruneRule::Keep(1),
            &[],
            now,
        )
        .unwrap();
        let gone: Vec<&str> = plan.removals().map(Backup::name).collect();
        assert_eq!(gone, [t(x)]);
    }

    /// Which push made a backup, and the one whose rollback needs it: the
    /// site's latest push that changed something and was not rolled back.
    #[test]
    fn the_ledger_names_the_maker_and_the_push_a_rollback_needs() {
        use super::super::audit::Fingerprints;
        let rec = |id: &str, action: AuditAction, outcome: Outcome, stamp: &str| AuditRecord {
            time: "2026-11-26T11:20:45Z".into(),
            push_id: id.into(),
            action,
            user: "op".into(),
            server: "web01".into(),
            site: "Flowtime".into(),
            file: format!("{DIR}\\web.config"),
            sha256_before: Some("aa".into()),
            sha256_after: Some("bb".into()),
            fingerprints_before: Fingerprints::default(),
            fingerprints_after: Fingerprints::default(),
            backup: Some(format!("{DIR}\\{}", t(stamp))),
            lock: None,
            temporary: Vec::new(),
            plan: None,
            outcome,
            message: String::new(),
        };
        let (s1, s2) = ("20261101T000000Z-00000001", "20261102T000000Z-00000002");
        let push = AuditAction::Push;
        let mut records = vec![
            rec("p1", push, Outcome::Intent, s1),
            rec("p1", push, Outcome::Applied, s1),
            rec("p2", push, Outcome::Intent, s2),
            rec("p2", push, Outcome::Applied, s2),
        ];
        let mut found = vec![backup("web01", s1, None), backup("web01", s2, None)];
        Ledger::new(&records).annotate(&mut found);
        let seen = |f: &[Backup]| -> Vec<(Option<String>, Option<String>)> {
            f.iter()
                .map(|b| (b.push.clone(), b.needed_by.clone()))
                .collect()
        };
        assert_eq!(
            seen(&found),
            [
                (Some("p1".into()), None),
                (Some("p2".into()), Some("p2".into()))
            ]
        );
        // p2 rolled back: p1's rollback is the one `farmkey rollback` does.
        records.push(rec("p2", AuditAction::Rollback, Outcome::RolledBack, s2));
        Ledger::new(&records).annotate(&mut found);
        assert_eq!(
            seen(&found),
            [
                (Some("p1".into()), Some("p1".into())),
                (Some("p2".into()), None)
            ]
        );
    }

    /// Only names farmkey gives a backup, beside a file a push writes, are
    /// listed; an operator's own copies never are.
    #[test]
    fn only_farmkeys_backups_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        crate::demo::lay_out(dir.path()).unwrap();
        let folder = dir.path().join("web01").join("C:/inetpub/Cora/Flowtime");
        for name in [
            "web.20261126T112045Z-3fa9c1d2.farmkey.config",
            "WEB.20261126T112046Z.FARMKEY.CONFIG",
            "web.config.bak",
            "web.old.farmkey.config",
            "web.20261126T112045Z-3fa9c1d2.farmkey-new.config",
            "web.farmkey-lock.config",
            "other.20261126T112045Z.farmkey.config",
        ] {
            std::fs::write(folder.join(name), "<configuration/>").unwrap();
        }
        let mut t = LocalTransport::new(dir.path().join("web01"));
        let (found, hosts) = list_server(&mut t, "web01", Some("flowtime")).unwrap();
        assert!(hosts);
        let names: Vec<&str> = found.iter().map(Backup::name).collect();
        assert_eq!(
            names,
            [
                "web.20261126T112045Z-3fa9c1d2.farmkey.config",
                "WEB.20261126T112046Z.FARMKEY.CONFIG"
            ]
        );
        assert!(
            found
                .iter()
                .all(|b| b.site == "Flowtime" && b.size == Some(16))
        );
        let (found, hosts) = list_server(&mut t, "web01", Some("Sequence Administration")).unwrap();
        assert!(found.is_empty() && hosts);
        let (found, hosts) = list_server(&mut t, "web01", Some("Flowtme")).unwrap();
        assert!(found.is_empty() && !hosts);
    }
}
