//! The pushes of the audit log, and which of their changes a rollback
//! concerns. `farmkey history`, `farmkey rollback` and the console's
//! History screen read the log through this one module.

use super::audit::{AuditAction, AuditRecord, Outcome};
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// One push as the audit log tells it: every record of its id (its
/// intents, outcomes and later rollbacks), in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastPush {
    pub id: String,
    pub records: Vec<AuditRecord>,
}

impl PastPush {
    fn first(&self) -> &AuditRecord {
        &self.records[0]
    }

    pub fn site(&self) -> &str {
        &self.first().site
    }

    /// When it started (RFC 3339, UTC).
    pub fn time(&self) -> &str {
        &self.first().time
    }

    pub fn user(&self) -> &str {
        &self.first().user
    }

    /// The saved plan it ran (`farmkey apply`), as `farmkey history` and
    /// the History screen name it: `20261207T042412Z-c5d1 (plan.toml,
    /// SHA-256 6682659fe0be)`.
    pub fn plan_text(&self) -> Option<String> {
        let p = self.records.iter().find_map(|r| r.plan.as_ref())?;
        Some(format!(
            "{} ({}, SHA-256 {})",
            p.id,
            p.file,
            p.sha256.get(..12).unwrap_or(&p.sha256)
        ))
    }

    /// Per file of a server (a push may write a server's web.config and
    /// a `configSource` file), its last push record: the outcome, or only
    /// the intent when the push was cut short before recording one.
    pub fn pushed(&self) -> Vec<&AuditRecord> {
        let mut out: Vec<&AuditRecord> = Vec::new();
        for r in self
            .records
            .iter()
            .filter(|r| r.action == AuditAction::Push)
        {
            match out.iter_mut().find(|x| same_file(x, r)) {
                Some(x) => *x = r,
                None => out.push(r),
            }
        }
        out
    }

    /// Whether it is a prune of backups (`farmkey prune`, or a push's
    /// retention), not a push: its records name the backups removed.
    pub fn is_prune(&self) -> bool {
        self.records.iter().all(|r| r.action == AuditAction::Prune)
    }

    /// A prune's records as `farmkey history` says them: per server, the
    /// backups removed, then those not removed and why; nothing for a push.
    pub fn prune_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.is_prune() {
            return out;
        }
        for server in self.servers() {
            let of = |o: Outcome| -> Vec<&AuditRecord> {
                self.records
                    .iter()
                    .filter(|r| r.server == server && r.outcome == o)
                    .collect()
            };
            let removed: Vec<&str> = of(Outcome::Removed)
                .iter()
                .filter_map(|r| r.backup.as_deref())
                .collect();
            if !removed.is_empty() {
                out.push(format!("{server} removed {}", removed.join(", ")));
            }
            for r in self
                .records
                .iter()
                .filter(|r| r.server == server && r.outcome != Outcome::Removed)
            {
                out.push(format!(
                    "{server} NOT removed {} ({}): {}",
                    r.backup.as_deref().unwrap_or("?"),
                    r.outcome,
                    r.message
                ));
            }
        }
        out
    }

    /// Its rollbacks' records, in order.
    pub fn rollbacks(&self) -> impl Iterator<Item = &AuditRecord> {
        self.records
            .iter()
            .filter(|r| r.action == AuditAction::Rollback)
    }

    /// The rollbacks' records as `farmkey history` shows them: a start
    /// (`intent`) followed by an outcome of the file is left out, one with
    /// none after it is shown ([`rollback_text`]).
    pub fn rollbacks_shown(&self) -> Vec<&AuditRecord> {
        let rollbacks: Vec<&AuditRecord> = self.rollbacks().collect();
        rollbacks
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                r.outcome != Outcome::Intent
                    || !rollbacks[i + 1..].iter().any(|later| same_file(later, r))
            })
            .map(|(_, r)| *r)
            .collect()
    }

    /// Whether the last record of `rec`'s file says that a rollback
    /// started, and none says how it ended: the audit log did not take
    /// its outcome (a full disk), or it was killed. The file may hold its
    /// original bytes or what the push wrote: only a look tells
    /// (`farmkey rollback` looks, and restores it if it must).
    pub fn rollback_unrecorded(&self, rec: &AuditRecord) -> bool {
        self.records
            .iter()
            .rev()
            .find(|r| same_file(r, rec))
            .is_some_and(|r| r.action == AuditAction::Rollback && r.outcome == Outcome::Intent)
    }

    /// How `rec`, the last push record of its file, reads in history:
    /// [`pushed_text`], but never `applied` for a file a rollback started
    /// to restore since (its outcome not recorded).
    pub fn pushed_text(&self, rec: &AuditRecord) -> String {
        if self.rollback_unrecorded(rec) {
            format!("{UNRECORDED} ({} by the push)", pushed_text(rec.outcome))
        } else {
            pushed_text(rec.outcome)
        }
    }

    /// Where the file of `rec` (its last push record) stands now, for a
    /// view of the push server by server: [`PastPush::pushed_text`] until
    /// a rollback recorded how it ended; then `rolled-back (applied by the
    /// push)` where it restored the file, or the push's outcome with the
    /// rollback's (`applied (rollback: refused)`) where it did not.
    pub fn standing_text(&self, rec: &AuditRecord) -> String {
        match self.rollbacks_of(rec).last().map(|r| r.outcome) {
            Some(Outcome::RolledBack) => format!(
                "{} ({} by the push)",
                Outcome::RolledBack,
                pushed_text(rec.outcome)
            ),
            Some(o) if o != Outcome::Intent => {
                format!("{} (rollback: {o})", pushed_text(rec.outcome))
            }
            _ => self.pushed_text(rec),
        }
    }

    /// The rollbacks' records of the file of `rec`, in order.
    pub fn rollbacks_of<'a>(
        &'a self,
        rec: &'a AuditRecord,
    ) -> impl Iterator<Item = &'a AuditRecord> {
        self.rollbacks().filter(move |r| same_file(r, rec))
    }

    /// What a rollback restores: every file this push may have changed
    /// (its intent was recorded before the swap; older logs may hold an
    /// outcome alone) and that no rollback restored since, whatever its
    /// push outcome: applied, cut short after the intent, failed and not
    /// restored, not reachable again. Left out: a file the push itself
    /// found or brought back holding its original bytes. The rollback
    /// checks every file before it writes, so a file that holds its
    /// original bytes after all is left as it is.
    ///
    /// Each record is the file's last push record, with what the push
    /// wrote (SHA-256 and fingerprints) from its intent: a `failed` record
    /// keeps the bytes from before. It names the file, its backup and the
    /// lock, for the checks the rollback makes.
    pub fn to_roll_back(&self) -> Vec<AuditRecord> {
        let rolled_back = |rec: &AuditRecord| {
            self.rollbacks().any(|r| {
                r.outcome == Outcome::RolledBack && r.temporary.is_empty() && same_file(r, rec)
            })
        };
        let intent = |rec: &AuditRecord| {
            self.records.iter().rev().find(|r| {
                r.action == AuditAction::Push && r.outcome == Outcome::Intent && same_file(r, rec)
            })
        };
        self.pushed()
            .into_iter()
            .filter_map(|last| {
                let wrote = match (intent(last), last.outcome) {
                    (Some(i), _) => i,
                    (None, Outcome::Applied) => last,
                    // No intent: the push never came to the swap.
                    (None, _) => return None,
                };
                // The push's own restore found or made the original bytes
                // (and removed every copy it made beside the file).
                let restored = last.outcome == Outcome::Failed
                    && last.sha256_before.is_some()
                    && last.sha256_after == last.sha256_before
                    && last.temporary.is_empty();
                if restored || rolled_back(last) {
                    return None;
                }
                let mut target = last.clone();
                // Every copy it may have left: the intent names them all.
                for p in &wrote.temporary {
                    if !target
                        .temporary
                        .iter()
                        .any(|t| crate::paths::same_name(t, p))
                    {
                        target.temporary.push(p.clone());
                    }
                }
                target.sha256_after = wrote.sha256_after.clone();
                target.fingerprints_after = wrote.fingerprints_after.clone();
                target.backup = target.backup.or_else(|| wrote.backup.clone());
                target.lock = target.lock.or_else(|| wrote.lock.clone());
                Some(target)
            })
            .collect()
    }

    /// Per file of a server, where it stands after the push and its
    /// rollbacks: the outcome of its last record.
    pub fn standing(&self) -> Vec<(&AuditRecord, Outcome)> {
        let mut out: Vec<(&AuditRecord, Outcome)> = Vec::new();
        for r in &self.records {
            match out.iter_mut().find(|(x, _)| same_file(x, r)) {
                Some(x) => x.1 = r.outcome,
                None => out.push((r, r.outcome)),
            }
        }
        out
    }

    /// Per file, the copies beside it that are still there as far as the
    /// log knows: what the push could not remove, or, after a rollback
    /// that ran, what that rollback could not. A push cut short (its
    /// intent alone) is left out: which of its copies exist is not known
    /// until a rollback looks.
    pub fn left_behind(&self) -> Vec<(&AuditRecord, &[String])> {
        self.pushed()
            .into_iter()
            .filter(|rec| rec.outcome != Outcome::Intent)
            .filter_map(|rec| {
                let last = self
                    .rollbacks_of(rec)
                    .filter(|r| r.outcome == Outcome::RolledBack)
                    .last()
                    .unwrap_or(rec);
                (!last.temporary.is_empty()).then_some((rec, last.temporary.as_slice()))
            })
            .collect()
    }

    /// The servers it concerns, each once, in the order of its records.
    pub fn servers(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.records {
            if !out.contains(&r.server.as_str()) {
                out.push(&r.server);
            }
        }
        out
    }

    /// How a record's file is named to the operator (see [`file_label`]).
    pub fn label(&self, rec: &AuditRecord) -> String {
        file_label(&self.records, &rec.server, &rec.file)
    }

    /// The key sets the push found and the ones it wrote, each once, as
    /// fingerprints (a key set's when recorded, else the validationKey's),
    /// or what keys with none were (`auto`).
    pub fn key_sets(&self) -> (Vec<&str>, Vec<&str>) {
        let pushed = self.pushed();
        let sets = |before: bool| {
            let mut out: Vec<&str> = Vec::new();
            for r in &pushed {
                let fp = if before {
                    &r.fingerprints_before
                } else {
                    &r.fingerprints_after
                };
                if let Some(s) = fp.key_set.as_deref().or(fp.validation_text())
                    && !out.contains(&s)
                {
                    out.push(s);
                }
            }
            out
        };
        (sets(true), sets(false))
    }
}

impl PastPush {
    /// `507f8fce → 1a2b3c4d`: the key sets found and the one written, as
    /// the console's History and `farmkey history` say them (`2 sets` when
    /// servers differed, `(kept)` when nothing changed); `arrow` in the
    /// symbol set of the output.
    pub fn key_sets_text(&self, arrow: &str) -> String {
        if self.is_prune() {
            return "(backups pruned)".into();
        }
        let (before, after) = self.key_sets();
        let side = |sets: &[&str]| match sets {
            [] => "?".to_string(),
            [one] => one.to_string(),
            more => format!("{} sets", more.len()),
        };
        if before == after {
            format!("{} (kept)", side(&before))
        } else {
            format!("{} {arrow} {}", side(&before), side(&after))
        }
    }

    /// It ended applied or unchanged on every file it concerns and no
    /// rollback has undone it since: a push cut short, failed on a server
    /// or rolled back is not (what `farmkey_last_push_timestamp_seconds`
    /// counts).
    pub fn succeeded(&self) -> bool {
        let standing = self.standing();
        !standing.is_empty()
            && standing
                .iter()
                .all(|(_, o)| matches!(o, Outcome::Applied | Outcome::Unchanged))
    }

    /// `2 applied, 1 unchanged`: where the servers of the push stand.
    pub fn outcome_summary(&self) -> String {
        // A rollback's start with no outcome after it is not a push cut short.
        let mut counts: Vec<((Outcome, bool), usize)> = Vec::new();
        for (rec, o) in self.standing() {
            let key = (o, self.rollback_unrecorded(rec));
            match counts.iter_mut().find(|(x, _)| *x == key) {
                Some((_, n)) => *n += 1,
                None => counts.push((key, 1)),
            }
        }
        counts
            .iter()
            .map(|(o, n)| match o {
                (_, true) => format!("{n} rollback unrecorded"),
                (Outcome::Intent, false) => format!("{n} cut short"),
                (o, false) => format!("{n} {o}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How a file of a server is named to the operator among `records`
/// ([`super::file_label`]).
pub fn file_label(records: &[AuditRecord], server: &str, file: &str) -> String {
    super::file_label(
        records.iter().map(|r| (r.server.as_str(), r.file.as_str())),
        server,
        file,
    )
}

/// Whether two records are about the same file of the same server (for a
/// prune's, the same backup of it).
fn same_file(a: &AuditRecord, b: &AuditRecord) -> bool {
    let prune = a.action == AuditAction::Prune && b.action == AuditAction::Prune;
    a.server == b.server
        && crate::paths::same_name(&a.file, &b.file)
        && (!prune
            || crate::paths::same_name(
                a.backup.as_deref().unwrap_or_default(),
                b.backup.as_deref().unwrap_or_default(),
            ))
}

/// Pushes in the order they were made, each with its records; only those
/// of `site` when given, spelled exactly (two sites may differ only in
/// case, each its own: see [`other_spellings`]). Linear in the log: it
/// only grows.
pub fn pushes(records: &[AuditRecord], site: Option<&str>) -> Vec<PastPush> {
    let mut out: Vec<PastPush> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for r in records {
        if site.is_some_and(|s| r.site != s) {
            continue;
        }
        match index.entry(&r.push_id) {
            Entry::Occupied(at) => out[*at.get()].records.push(r.clone()),
            Entry::Vacant(slot) => {
                slot.insert(out.len());
                out.push(PastPush {
                    id: r.push_id.clone(),
                    records: vec![r.clone()],
                });
            }
        }
    }
    out
}

/// Per site of the log, its last push that [succeeded](PastPush::succeeded).
pub fn last_succeeded(records: &[AuditRecord]) -> HashMap<String, PastPush> {
    let mut out = HashMap::new();
    for push in pushes(records, None) {
        if push.succeeded() {
            out.insert(push.site().to_string(), push);
        }
    }
    out
}

/// The site of the log that `site` names, found as `push --site` finds one
/// in a scan ([`crate::analysis::FarmReport::site`]): spelled exactly, else
/// the one site of the log spelled so without regard to case; the
/// spellings when several are (give the name exactly). A site the log does
/// not know comes back as it was given.
pub fn logged_site<'a>(records: &'a [AuditRecord], site: &'a str) -> Result<&'a str, Vec<&'a str>> {
    if records.iter().any(|r| r.site == site) {
        return Ok(site);
    }
    match other_spellings(records, site).as_slice() {
        [] => Ok(site),
        [one] => Ok(one),
        several => Err(several.to_vec()),
    }
}

/// The sites of the log spelled like `site` but for case: what an
/// operator who typed `flowtime` may have meant.
pub fn other_spellings<'a>(records: &'a [AuditRecord], site: &str) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for r in records {
        if r.site != site && r.site.eq_ignore_ascii_case(site) && !out.contains(&r.site.as_str()) {
            out.push(&r.site);
        }
    }
    out
}

/// How a server's push record reads: its outcome, or, for an intent
/// alone, a push cut short before it recorded one.
pub fn pushed_text(outcome: Outcome) -> String {
    match outcome {
        Outcome::Intent => "intent (cut short: no outcome recorded)".to_string(),
        o => o.to_string(),
    }
}

/// Where a file stands when a rollback of it started and its outcome was
/// not recorded.
const UNRECORDED: &str = "unknown: a rollback started, its outcome not recorded";

/// How a rollback's record reads: its outcome, or, for its start alone,
/// that its outcome is not known.
pub fn rollback_text(r: &AuditRecord) -> String {
    match r.outcome {
        Outcome::Intent => UNRECORDED.to_string(),
        o => o.to_string(),
    }
}

/// What a rollback restores a record's file from: `from BACKUP`, or its
/// removal where the push created it; only maybe for a cut-short push.
pub fn restored_from(r: &AuditRecord) -> String {
    let from = r
        .backup
        .as_deref()
        .unwrap_or("(remove: the push created it)");
    let maybe = match r.outcome {
        Outcome::Intent => " (if the cut-short push changed it)",
        Outcome::Applied => "",
        // Failed and not restored, or not reachable again.
        _ => " (if it holds what the push wrote)",
    };
    format!("from {from}{maybe}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::audit::Fingerprints;

    fn rec(push: &str, server: &str, action: AuditAction, outcome: Outcome) -> AuditRecord {
        AuditRecord {
            time: "2026-11-26T11:20:45Z".into(),
            push_id: push.into(),
            action,
            user: "op".into(),
            server: server.into(),
            site: "Flowtime".into(),
            file: "C:\\inetpub\\Flowtime\\web.config".into(),
            sha256_before: Some("aa".into()),
            sha256_after: Some("bb".into()),
            fingerprints_before: Fingerprints {
                key_set: Some(format!("before{server}")),
                ..Default::default()
            },
            fingerprints_after: Fingerprints {
                key_set: Some("after".into()),
                ..Default::default()
            },
            backup: Some("C:\\inetpub\\Flowtime\\web.x.farmkey.config".into()),
            lock: None,
            temporary: Vec::new(),
            outcome,
            message: String::new(),
            plan: None,
        }
    }

    /// A push counts once every file ended applied or unchanged, until a
    /// rollback undoes it; cut short or failed on one server it never does.
    #[test]
    fn the_last_successful_push_of_each_site() {
        use AuditAction::*;
        use Outcome::*;
        let at = |mut r: AuditRecord, time: &str, site: &str| {
            r.time = time.into();
            r.site = site.into();
            r
        };
        let records = vec![
            at(
                rec("p1", "web01", Push, Applied),
                "2026-11-01T10:00:00Z",
                "Flowtime",
            ),
            at(
                rec("p1", "web02", Push, Unchanged),
                "2026-11-01T10:00:01Z",
                "Flowtime",
            ),
            // Failed on web02: not a success.
            at(
                rec("p2", "web01", Push, Applied),
                "2026-11-02T10:00:00Z",
                "Flowtime",
            ),
            at(
                rec("p2", "web02", Push, Failed),
                "2026-11-02T10:00:01Z",
                "Flowtime",
            ),
            // Cut short: its intent alone.
            at(
                rec("p3", "web01", Push, Intent),
                "2026-11-03T10:00:00Z",
                "Flowtime",
            ),
            at(
                rec("p4", "web01", Push, Applied),
                "2026-11-04T10:00:00Z",
                "Admin",
            ),
            // Applied, then rolled back: undone.
            at(
                rec("p5", "web01", Push, Applied),
                "2026-11-05T10:00:00Z",
                "Admin",
            ),
            at(
                rec("p5", "web01", Rollback, RolledBack),
                "2026-11-05T11:00:00Z",
                "Admin",
            ),
        ];
        let last = last_succeeded(&records);
        assert_eq!(last.len(), 2);
        assert_eq!(last["Flowtime"].id, "p1");
        assert_eq!(last["Flowtime"].time(), "2026-11-01T10:00:00Z");
        assert_eq!(last["Admin"].id, "p4");
        assert!(last_succeeded(&[]).is_empty());
    }

    #[test]
    fn copies_left_behind_are_the_last_word_of_the_push_or_its_rollback() {
        use AuditAction::*;
        use Outcome::*;
        let with = |mut r: AuditRecord, left: &[&str]| {
            r.temporary = left.iter().map(|s| s.to_string()).collect();
            r
        };
        let staged = "C:\\inetpub\\Flowtime\\web.x.farmkey-new.config";
        let aside = "C:\\inetpub\\Flowtime\\web.x.farmkey-old.config";
        let mut records = vec![
            // The intent names every copy the push may make: not a leftover.
            with(rec("p1", "web01", Push, Intent), &[staged, aside]),
            rec("p1", "web01", Push, Applied),
            with(rec("p1", "web02", Push, Intent), &[staged, aside]),
            with(rec("p1", "web02", Push, Failed), &[staged]),
            // Cut short: what it left is unknown until a rollback looks.
            with(rec("p1", "web03", Push, Intent), &[staged, aside]),
        ];
        let left = |records: &[AuditRecord]| {
            let p = &pushes(records, None)[0];
            p.left_behind()
                .into_iter()
                .map(|(r, c)| (r.server.clone(), c.to_vec()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            left(&records),
            [("web02".to_string(), vec![staged.to_string()])]
        );
        // A refused rollback removed nothing.
        records.push(with(
            rec("p1", "web02", Rollback, Refused),
            &[staged, aside],
        ));
        assert_eq!(
            left(&records),
            [("web02".to_string(), vec![staged.to_string()])]
        );
        // One that ran says what is still there.
        records.push(rec("p1", "web02", Rollback, RolledBack));
        assert!(left(&records).is_empty());
    }

    #[test]
    fn a_rollback_concerns_what_was_changed_and_not_rolled_back_since() {
        use AuditAction::*;
        use Outcome::*;
        let records = vec![
            rec("p1", "web01", Push, Intent),
            rec("p1", "web01", Push, Applied),
            rec("p1", "web02", Push, Unchanged),
            rec("p1", "web03", Push, Intent),
            rec("p2", "web01", Push, Intent),
            rec("p2", "web01", Push, Applied),
            rec("p2", "web01", Rollback, RolledBack),
        ];
        let list = pushes(&records, Some("Flowtime"));
        assert_eq!(list.len(), 2);
        // A site is spelled exactly: another that differs only in case is
        // another site, offered as another spelling.
        let mut other = rec("p3", "web01", Push, Applied);
        other.site = "FLOWTIME".into();
        let with_other = [records.clone(), vec![other]].concat();
        assert_eq!(pushes(&with_other, Some("Flowtime")).len(), 2);
        assert_eq!(pushes(&with_other, Some("FLOWTIME")).len(), 1);
        assert!(pushes(&with_other, Some("flowtime")).is_empty());
        assert_eq!(
            other_spellings(&with_other, "flowtime"),
            ["Flowtime", "FLOWTIME"]
        );
        assert_eq!(other_spellings(&with_other, "Flowtime"), ["FLOWTIME"]);
        let p1 = &list[0];
        assert_eq!(
            p1.pushed()
                .iter()
                .map(|r| (r.server.as_str(), r.outcome))
                .collect::<Vec<_>>(),
            [("web01", Applied), ("web02", Unchanged), ("web03", Intent)]
        );
        // web03 was cut short after its intent: it may have changed.
        let servers: Vec<String> = p1.to_roll_back().into_iter().map(|r| r.server).collect();
        assert_eq!(servers, ["web01", "web03"]);
        let (before, after) = p1.key_sets();
        assert_eq!(
            (before, after),
            (
                vec!["beforeweb01", "beforeweb02", "beforeweb03"],
                vec!["after"]
            )
        );
        let p2 = &list[1];
        assert!(p2.to_roll_back().is_empty(), "already rolled back");
        let standing: Vec<_> = p2
            .standing()
            .into_iter()
            .map(|(r, o)| (r.server.as_str(), o))
            .collect();
        assert_eq!(standing, [("web01", RolledBack)]);
        assert!(pushes(&records, Some("Process TOGO")).is_empty());
    }

    /// A file the push failed on and could not restore (a broken file, a
    /// missing backup, a server not reachable again) is rolled back like
    /// an applied one, with what the intent says the push wrote; one the
    /// push brought back itself is not.
    #[test]
    fn a_file_the_push_could_not_restore_is_rolled_back() {
        use AuditAction::*;
        use Outcome::*;
        let failed = |server: &str, after: Option<&str>| {
            let mut r = rec("p1", server, Push, Failed);
            r.sha256_after = after.map(str::to_string);
            r.fingerprints_after = r.fingerprints_before.clone();
            r
        };
        let records = vec![
            rec("p1", "web01", Push, Intent),
            rec("p1", "web01", Push, Applied),
            rec("p1", "web02", Push, Intent),
            // Not restored: what it holds is not known.
            failed("web02", None),
            rec("p1", "web03", Push, Intent),
            // Restored by the push itself: the bytes from before.
            failed("web03", Some("aa")),
            // No intent: failed before the swap.
            failed("web04", None),
            rec("p1", "web01", Rollback, RollbackFailed),
        ];
        let p1 = &pushes(&records, None)[0];
        let undo = p1.to_roll_back();
        let got: Vec<_> = undo
            .iter()
            .map(|r| (r.server.as_str(), r.outcome, r.sha256_after.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("web01", Applied, Some("bb")),
                ("web02", Failed, Some("bb"))
            ]
        );
        // The rollback's record of web02 says what it undoes: the keys the
        // intent wrote.
        assert_eq!(undo[1].fingerprints_after.key_set.as_deref(), Some("after"));
        assert!(restored_from(&undo[1]).ends_with("(if it holds what the push wrote)"));
    }

    #[test]
    fn a_server_whose_push_wrote_two_files_is_rolled_back_file_by_file() {
        use AuditAction::*;
        use Outcome::*;
        let keys_file = |mut r: AuditRecord| {
            r.file = "C:\\inetpub\\Flowtime\\App_Config\\keys.config".into();
            r
        };
        let records = vec![
            keys_file(rec("p1", "web02", Push, Intent)),
            keys_file(rec("p1", "web02", Push, Applied)),
            rec("p1", "web02", Push, Intent),
            rec("p1", "web02", Push, Applied),
            rec("p1", "web01", Push, Unchanged),
            rec("p1", "web02", Rollback, RolledBack),
        ];
        let p1 = &pushes(&records, None)[0];
        let pushed: Vec<_> = p1.pushed().iter().map(|r| p1.label(r)).collect();
        assert_eq!(pushed, ["web02 keys.config", "web02 web.config", "web01"]);
        // The web.config was rolled back; the keys file was not.
        let undo: Vec<_> = p1.to_roll_back().iter().map(|r| p1.label(r)).collect();
        assert_eq!(undo, ["web02 keys.config"]);
        assert_eq!(p1.servers(), ["web02", "web01"]);
        let standing: Vec<_> = p1
            .standing()
            .into_iter()
            .map(|(r, o)| (p1.label(r), o))
            .collect();
        assert_eq!(
            standing,
            [
                ("web02 keys.config".to_string(), Applied),
                ("web02 web.config".to_string(), RolledBack),
                ("web01".to_string(), Unchanged)
            ]
        );
    }

    /// A rollback whose outcome the audit log did not take: history never
    /// shows the file `applied`, says the outcome is unknown, and a
    /// rollback still looks at it; a start followed by its outcome is not
    /// shown.
    #[test]
    fn a_rollback_started_without_an_outcome_is_unknown_not_applied() {
        use AuditAction::*;
        use Outcome::*;
        let records = vec![
            rec("p1", "web01", Push, Intent),
            rec("p1", "web01", Push, Applied),
            rec("p1", "web02", Push, Intent),
            rec("p1", "web02", Push, Applied),
            rec("p1", "web01", Rollback, Intent),
            rec("p1", "web02", Rollback, Intent),
            rec("p1", "web02", Rollback, RolledBack),
        ];
        let p = &pushes(&records, None)[0];
        let pushed = p.pushed();
        let texts: Vec<String> = pushed.iter().map(|r| p.pushed_text(r)).collect();
        assert_eq!(
            texts,
            [
                "unknown: a rollback started, its outcome not recorded (applied by the push)",
                "applied"
            ]
        );
        let shown: Vec<(String, String)> = p
            .rollbacks_shown()
            .into_iter()
            .map(|r| (r.server.clone(), rollback_text(r)))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "web01".to_string(),
                    "unknown: a rollback started, its outcome not recorded".to_string()
                ),
                ("web02".to_string(), "rolled-back".to_string())
            ]
        );
        let again: Vec<String> = p.to_roll_back().into_iter().map(|r| r.server).collect();
        assert_eq!(again, ["web01"], "a rollback looks at it again");
        let standing: Vec<String> = pushed.iter().map(|r| p.standing_text(r)).collect();
        assert_eq!(
            standing,
            [
                "unknown: a rollback started, its outcome not recorded (applied by the push)",
                "rolled-back (applied by the push)"
            ],
            "the server view says where each file stands now"
        );
        assert!(p.rollback_unrecorded(pushed[0]) && !p.rollback_unrecorded(pushed[1]));
    }

    #[test]
    fn a_push_made_from_a_saved_plan_names_it_and_its_rollback_does_not() {
        let mut applied = rec("p1", "web01", AuditAction::Push, Outcome::Applied);
        applied.plan = Some(crate::push::audit::PlanRef {
            file: "/srv/cab/cab-1234.toml".into(),
            id: "20261207T042412Z-c5d1".into(),
            sha256: "d07c538e116c".repeat(5) + "abcd",
        });
        let mut records = vec![
            rec("p1", "web01", AuditAction::Push, Outcome::Intent),
            applied,
            rec("p1", "web01", AuditAction::Rollback, Outcome::RolledBack),
        ];
        let list = pushes(&records, None);
        assert_eq!(
            list[0].plan_text().as_deref(),
            Some("20261207T042412Z-c5d1 (/srv/cab/cab-1234.toml, SHA-256 d07c538e116c)")
        );
        records.retain(|r| r.plan.is_none());
        assert_eq!(pushes(&records, None)[0].plan_text(), None);
    }
}
