//! `farmkey backups` and `farmkey prune`.

use super::push::{Out, audit_log, confirm, read_records};
use super::{BackupsArgs, BackupsScope, ListFormat, PruneArgs, exit, load_inventory, usage_error};
use crate::inventory::Inventory;
use crate::push::audit::{AuditLog, AuditRecord};
use crate::push::backups::{
    self, Backup, COLUMNS, Decision, Ledger, NotRemoved, PrunePlan, PruneRule, ServerBackups,
};
use crate::push::{Interrupt, Sessions, and_list};
use crate::transport::ConnectOptions;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// The inventory, the audit log and its records `backups` and `prune`
/// start from.
fn load(scope: &BackupsScope) -> Result<(Inventory, AuditLog, Vec<AuditRecord>), ExitCode> {
    let inventory = load_inventory(scope.farm.inventory.as_deref())?;
    let audit = audit_log(&scope.audit);
    let records = read_records(&audit)?;
    Ok((inventory, audit, records))
}

/// Every server's backups, the audit log's part filled in; a `--site`
/// that no server read hosts is an error.
fn listed(
    scope: &BackupsScope,
    inventory: &Inventory,
    records: &[AuditRecord],
    opts: &ConnectOptions,
) -> Result<Vec<ServerBackups>, ExitCode> {
    let site = scope.site.as_deref();
    let ledger = Ledger::new(records);
    let mut all = backups::list_all(&inventory.servers, opts, scope.jobs.jobs, site);
    for s in &mut all {
        if let Ok(b) = &mut s.result {
            ledger.annotate(b);
        }
    }
    match no_such_site(site, &all) {
        Some(code) => Err(code),
        None => Ok(all),
    }
}

/// `--site` naming a site no server read hosts: the error, else `None`.
fn no_such_site(site: Option<&str>, all: &[ServerBackups]) -> Option<ExitCode> {
    let site = site?;
    let read: Vec<&ServerBackups> = all.iter().filter(|s| s.result.is_ok()).collect();
    if read.is_empty() || read.iter().any(|s| s.hosts_site) {
        return None;
    }
    let unread: Vec<&str> = all
        .iter()
        .filter(|s| s.result.is_err())
        .map(|s| s.server.as_str())
        .collect();
    let may = if unread.is_empty() {
        String::new()
    } else {
        format!("; {} could not be read and may hold it", and_list(&unread))
    };
    Some(usage_error(format!(
        "no site {site:?} on the servers read{may} (ids are `Site` or `Site/app`; `farmkey scan --all-sites` lists them)"
    )))
}

/// Rows of a table, each column as wide as its widest cell.
fn table(rows: &[Vec<String>]) -> Vec<String> {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            r.iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        })
        .collect()
}

fn unread_line(server: &str, why: &impl std::fmt::Display) -> String {
    format!("{server}: not read: {why}")
}

pub fn run_backups(args: &BackupsArgs) -> ExitCode {
    let scope = &args.scope;
    let (inventory, _, records) = match load(scope) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let opts = scope.farm.connect.headless_options();
    let all = match listed(scope, &inventory, &records, &opts) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let now = SystemTime::now();
    let unread: Vec<&str> = all
        .iter()
        .filter(|s| s.result.is_err())
        .map(|s| s.server.as_str())
        .collect();
    let mut out = Out::new(Interrupt::new());
    match args.format {
        ListFormat::Json => {
            let found: Vec<serde_json::Value> = all
                .iter()
                .filter_map(|s| s.result.as_ref().ok())
                .flatten()
                .map(|b| {
                    serde_json::json!({
                        "server": b.server,
                        "site": b.site,
                        "file": b.file.to_string(),
                        "backup": b.path.to_string(),
                        "made": b.made.map(|m| humantime::format_rfc3339_seconds(m).to_string()),
                        "age_secs": b.age(now).map(|a| a.as_secs()),
                        "size": b.size,
                        "push": b.push,
                        "needed_by": b.needed_by,
                    })
                })
                .collect();
            let failed: Vec<serde_json::Value> =
                all.iter()
                    .filter_map(|s| {
                        s.result.as_ref().err().map(
                            |e| serde_json::json!({"server": s.server, "error": e.to_string()}),
                        )
                    })
                    .collect();
            let doc = serde_json::json!({"backups": found, "unread": failed});
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            if let Err(code) = super::write_stdout(format!("{text}\n").as_bytes()) {
                return code;
            }
        }
        ListFormat::Table => {
            let mut sites: Vec<&str> = all
                .iter()
                .filter_map(|s| s.result.as_ref().ok())
                .flatten()
                .map(|b| b.site.as_str())
                .collect();
            sites.sort_unstable();
            sites.dedup();
            for site in &sites {
                out.line(&format!("{site}:"));
                let mut rows = vec![COLUMNS.iter().map(|c| c.to_string()).collect()];
                rows.extend(
                    all.iter()
                        .filter_map(|s| s.result.as_ref().ok())
                        .flatten()
                        .filter(|b| b.site == *site)
                        .map(|b| b.cells(now).to_vec()),
                );
                for l in table(&rows) {
                    out.line(&format!("  {l}"));
                }
            }
            for s in &all {
                if let Err(e) = &s.result {
                    out.line(&unread_line(&s.server, e));
                }
            }
            let count = all
                .iter()
                .filter_map(|s| s.result.as_ref().ok())
                .map(Vec::len)
                .sum::<usize>();
            let mut last = match count {
                0 => "No backups found".to_string(),
                1 => "1 backup".to_string(),
                n => format!("{n} backups"),
            };
            if unread.is_empty() {
                last.push_str(" (every server read).");
            } else {
                last.push_str(&format!(
                    "; NOT read: {} (their backups are not listed).",
                    and_list(&unread)
                ));
            }
            out.last(&last);
        }
    }
    ExitCode::from(if unread.is_empty() {
        exit::OK
    } else {
        exit::FINDINGS
    })
}

/// How the plan says what becomes of a backup.
fn decision_text(d: &Decision) -> String {
    match d {
        Decision::Remove { named: false } => "remove".into(),
        Decision::Remove { named: true } => "remove (named)".into(),
        Decision::Keep => "keep".into(),
        Decision::Needed { push } => format!("kept: the rollback of push {push} needs it"),
    }
}

fn plan_lines(plan: &PrunePlan, now: SystemTime) -> Vec<String> {
    let mut out = vec![format!("Prune {}:", plan.id)];
    let mut rows: Vec<Vec<String>> = vec![{
        let mut h: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
        h.insert(0, "PLAN".into());
        h
    }];
    for (b, d) in &plan.items {
        let mut row = b.cells(now).to_vec();
        row.insert(0, decision_text(d));
        rows.push(row);
    }
    out.extend(table(&rows).into_iter().map(|l| format!("  {l}")));
    for (server, e) in &plan.unread {
        out.push(format!(
            "{}; its backups are left as they are",
            unread_line(server, e)
        ));
    }
    out
}

/// Why a backup was not removed, after its server and path.
fn not_removed_text(e: &NotRemoved) -> String {
    match e {
        NotRemoved::Locked(h) => format!("left alone: the site is locked: {h}"),
        NotRemoved::NoLock(e) => format!("not removed: the site's lock could not be taken: {e}"),
        e => format!("NOT removed: {e}"),
    }
}

pub fn run_prune(args: &PruneArgs) -> ExitCode {
    if args.scope.farm.connect.batch && !args.yes {
        return usage_error("--batch never asks: add --yes to remove the backups");
    }
    let rule = match (args.keep, args.older_than) {
        (Some(n), _) => PruneRule::Keep(n),
        (None, Some(days)) => PruneRule::OlderThan(Duration::from_secs(days * 86_400)),
        (None, None) => return usage_error("give --keep N or --older-than DAYS"),
    };
    let scope = &args.scope;
    let (inventory, audit, records) = match load(scope) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if let Err(e) = audit.check_writable(None) {
        return usage_error(format!(
            "{e}; a prune is only made with its audit record (--audit FILE)"
        ));
    }
    let opts = scope.farm.connect.headless_options();
    let all = match listed(scope, &inventory, &records, &opts) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let now = SystemTime::now();
    let plan = match backups::plan_prune(all, rule, &args.also, now) {
        Ok(p) => p,
        Err(unknown) => {
            return usage_error(format!(
                "--also {}: no such backup found (name one `farmkey backups` lists, by its file name or its path)",
                and_list(&unknown)
            ));
        }
    };
    let mut out = Out::new(Interrupt::new());
    for l in plan_lines(&plan, now) {
        out.line(&l);
    }
    let unread: Vec<&str> = plan.unread.iter().map(|(s, _)| s.as_str()).collect();
    let removals: Vec<&Backup> = plan.removals().collect();
    if removals.is_empty() {
        if unread.is_empty() {
            out.last("Nothing to remove.");
            return ExitCode::from(exit::OK);
        }
        out.last(&format!(
            "Nothing to remove on the servers read; NOT read: {}.",
            and_list(&unread)
        ));
        return ExitCode::from(exit::FINDINGS);
    }
    let mut servers: Vec<&str> = removals.iter().map(|b| b.server.as_str()).collect();
    servers.dedup();
    if !args.yes {
        let question = format!(
            "Remove {} backup(s) on {}?",
            removals.len(),
            and_list(&servers)
        );
        match confirm(&question) {
            Ok(true) => {}
            Ok(false) => {
                out.last("Cancelled: nothing was removed.");
                return ExitCode::from(exit::FINDINGS);
            }
            Err(e) => return usage_error(e),
        }
    }
    // A signal is noted, never honoured: each site's removals are bounded
    // by the timeouts, and a prune stopped half-way would leave its lock.
    let signals = Interrupt::new();
    crate::push::interrupt::catch(&signals);
    let mut sessions = Sessions::new(inventory.servers.clone(), opts);
    let outcome = backups::prune(&plan, &mut sessions, &audit, &mut |done| {
        for r in done {
            let what = match &r.result {
                Ok(()) => "removed".to_string(),
                Err(e) => not_removed_text(e),
            };
            out.line(&format!(
                "  {:<10} {} {what}",
                r.backup.server, r.backup.path
            ));
        }
    });
    for b in &outcome.kept_gone {
        out.line(&format!(
            "  {:<10} {} was to be kept and is gone (removed by someone else?)",
            b.server, b.path
        ));
    }
    for (server, lock) in &outcome.locks_left {
        out.line(&format!(
            "  {server:<10} {lock}: the prune's lock may be left there (the server was lost): a push of the site refuses until it is broken with --break-lock"
        ));
    }
    for e in &outcome.audit_errors {
        let _ = std::io::Write::write_fmt(
            &mut std::io::stderr(),
            format_args!(
                "farmkey: the audit log did not take a record: {}\n",
                crate::safe_text::escape(e)
            ),
        );
    }
    let removed = outcome.removed().count();
    let failed: Vec<String> = outcome
        .failed()
        .map(|(b, _)| format!("{} {}", b.server, b.path))
        .collect();
    let mut last = format!("Prune {}: {removed} backup(s) removed", plan.id);
    let partial = !outcome.complete() || !unread.is_empty();
    if !failed.is_empty() {
        last.push_str(&format!("; NOT removed: {}", and_list(&failed)));
    }
    if !unread.is_empty() {
        last.push_str(&format!("; NOT read: {}", and_list(&unread)));
    }
    last.push_str(if partial {
        " (partial: see above)."
    } else {
        "; every folder read again holds what the plan said."
    });
    if let Some(r) = signals.reason() {
        last.push_str(&format!(
            " {r} came during the prune, which was finished first."
        ));
    }
    out.last(&last);
    ExitCode::from(if partial { exit::FINDINGS } else { exit::OK })
}
