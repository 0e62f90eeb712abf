//! `farmkey push`, `farmkey history`, `farmkey rollback`.

use super::wording::{AskError, KeySourceError, refusal, remedies};
use super::{
    ApplyArgs, AuditArg, HistoryArgs, PushArgs, RollbackArgs, exit, load_inventory, usage_error,
};
use crate::analysis::{Selection, analyze_against};
use crate::config::import::key_set_from_xml;
use crate::disclosed::DisclosedKeys;
use crate::farm::scan_all;
use crate::inventory::Server;
use crate::keys::KeySet;
use crate::push::apply::{Progress, locked_out, rollback_push};
use crate::push::audit::{AuditLog, AuditRecord};
use crate::push::diff::masked_diff;
use crate::push::history::{
    file_label, logged_site, other_spellings, pushes, restored_from, rollback_text,
};
use crate::push::saved::{SavedPlan, SavedPlanError};
use crate::push::{
    Interrupt, KeySource, Plan, PlanAction, PlanVerdict, PushOutcome, PushRequest, PushVerdict,
    Sessions, StopReason, and_list, apply, build_plan, refuse_disclosed,
};
use crate::safe_text::escape;
use std::io::{BufRead, Write};
use std::process::ExitCode;

pub(super) fn audit_log(audit: &AuditArg) -> AuditLog {
    AuditLog::new(audit.path())
}

/// The log's records, its notes (records cut off, skipped) on standard
/// error; the exit code when it cannot be read.
pub(super) fn read_records(audit: &AuditLog) -> Result<Vec<AuditRecord>, ExitCode> {
    let read = audit.read().map_err(usage_error)?;
    for note in &read.notes {
        let _ = writeln!(std::io::stderr(), "farmkey: {}", escape(note));
    }
    Ok(read.records)
}

/// Asks `question` on the terminal: `Err` with the exit code where the
/// answer is no (said as the last line) or there is no terminal.
fn ask(out: &mut Out, question: &str) -> Result<(), ExitCode> {
    match confirm(question) {
        Ok(true) => Ok(()),
        Ok(false) => {
            out.last("Cancelled: nothing was written.");
            Err(ExitCode::from(exit::FINDINGS))
        }
        Err(e) => Err(usage_error(e)),
    }
}

/// Asks on the controlling terminal; `Err` when there is none.
pub(super) fn confirm(question: &str) -> Result<bool, AskError> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| AskError::NoTerminal)?;
    let mut out = tty.try_clone()?;
    write!(out, "{} [y/N] ", escape(question))?;
    out.flush()?;
    let mut answer = String::new();
    std::io::BufReader::new(tty).read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn key_source(args: &PushArgs, disclosed: &DisclosedKeys) -> Result<KeySource, KeySourceError> {
    if args.handler_only {
        return Ok(KeySource::HandlerOnly);
    }
    if args.generate {
        return Ok(KeySource::Generate {
            validation: args.validation.clone(),
            decryption: args.decryption.clone(),
        });
    }
    if let Some(server) = &args.adopt {
        return Ok(KeySource::Adopt(
            (!server.is_empty()).then(|| server.clone()),
        ));
    }
    if let Some(path) = &args.keys {
        return Ok(KeySource::Import(read_keys(path, disclosed)?));
    }
    Err(KeySourceError::NoneChosen)
}

/// The `<machineKey>` of a `--keys` file.
fn read_keys(path: &std::path::Path, disclosed: &DisclosedKeys) -> Result<KeySet, KeySourceError> {
    let text = std::fs::read_to_string(path).map_err(|error| KeySourceError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let keys = key_set_from_xml(&text).map_err(|error| KeySourceError::Import {
        path: path.to_path_buf(),
        error,
    })?;
    // Refused before the farm is read: nothing to scan for.
    refuse_disclosed(&keys, &format!("--keys {}", path.display()), disclosed)
        .map_err(KeySourceError::Disclosed)?;
    Ok(keys)
}

/// Standard output that never panics: a closed output (`| head -1`) is
/// noted, asks a running push to stop between steps, and the last line goes
/// to standard error instead. Every line is made safe for a terminal: names
/// and messages come from servers.
pub(super) struct Out {
    stop: Interrupt,
    closed: bool,
}

impl Out {
    pub(super) fn new(stop: Interrupt) -> Out {
        Out {
            stop,
            closed: false,
        }
    }

    pub(super) fn line(&mut self, text: &str) {
        if self.closed {
            return;
        }
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{}", escape(text))
            .and_then(|()| out.flush())
            .is_err()
        {
            self.closed = true;
            self.stop.request(StopReason::OutputClosed);
        }
    }

    fn text(&mut self, text: &str) {
        for l in text.lines() {
            self.line(l);
        }
    }

    /// The verdict: seen on standard output, or on standard error when
    /// nobody reads the output any more.
    pub(super) fn last(&mut self, text: &str) {
        self.line(text);
        if self.closed {
            let _ = writeln!(std::io::stderr(), "farmkey: {}", escape(text));
        }
    }
}

/// SIGINT, SIGTERM, SIGHUP (the operator's session dropping) and every
/// other signal that ends a process by default ask the push to stop
/// between steps instead of killing it half-way.
fn catch_signals(stop: &Interrupt) {
    crate::push::interrupt::catch(stop);
}

/// Exit code of a push: 0 in step, 1 as it was, 3 out of step.
pub(super) fn push_exit_code(outcome: &PushOutcome) -> u8 {
    match outcome.verdict() {
        PushVerdict::InStep => exit::OK,
        PushVerdict::AsBefore => exit::FINDINGS,
        PushVerdict::OutOfStep => exit::OUT_OF_STEP,
    }
}

/// Scans every server and plans `request` over fresh sessions (those the
/// push then runs on).
fn scan_and_plan(
    inventory: &crate::inventory::Inventory,
    farm: &super::FarmArgs,
    jobs: usize,
    disclosed: &DisclosedKeys,
    request: &PushRequest,
) -> Result<(Plan, Sessions), crate::push::PlanError> {
    let opts = farm.connect.headless_options();
    let scans = scan_all(&inventory.servers, opts.clone(), jobs);
    let report = analyze_against(
        &scans,
        &Selection {
            all_sites: true,
            sites: vec![],
            components: inventory.components.clone(),
        },
        disclosed,
    );
    let mut sessions = Sessions::new(inventory.servers.clone(), opts);
    let plan = build_plan(request, &report, &mut sessions)?;
    Ok((plan, sessions))
}

/// The plan, who is signed out, and what to do about what blocks it.
fn show_plan(out: &mut Out, plan: &Plan) {
    out.text(&plan.to_string());
    let verdict = plan.verdict();
    if verdict != PlanVerdict::NothingToWrite {
        out.line(&sign_ins(&plan.sign_outs()));
    }
    if let Some(text) = remedies(&verdict.remedies()) {
        out.line(&text);
    }
}

/// Why a plan is not run: blocked, or nothing to write; the last line
/// (`then` added) and the exit code.
fn not_run(plan: &Plan, then: &str) -> Option<(String, u8)> {
    let verdict = plan.verdict();
    let blocked = verdict.blocking_servers();
    if !blocked.is_empty() {
        return Some((
            format!(
                "Push {} NOT made: blocked by {}; nothing was written.{then}",
                plan.push_id,
                and_list(&blocked)
            ),
            exit::FINDINGS,
        ));
    }
    if verdict != PlanVerdict::NothingToWrite {
        return None;
    }
    if let Some(keys) = plan.keys_left.as_ref().filter(|k| !k.in_step()) {
        return Some((
            format!(
                "Nothing to write: the session-token handler of {site} is already correct on every server of the push, but its keys are OUT OF STEP: {keys}. A handler-only push writes no keys: push new ones with `farmkey push --site \"{site}\" --generate`.{then}",
                site = plan.site
            ),
            exit::OUT_OF_STEP,
        ));
    }
    Some((
        format!(
            "Nothing to write: {} is already correct on every server of the push.{then}",
            plan.site
        ),
        exit::OK,
    ))
}

/// Asks (unless `yes`), then applies `plan` with its lock, backups,
/// verification, rollback and audit records, saying each server's outcome.
fn confirm_and_apply(
    out: &mut Out,
    stop: &Interrupt,
    plan: &Plan,
    sessions: &mut Sessions,
    audit: &AuditLog,
    servers: &[Server],
    yes: bool,
) -> ExitCode {
    if let Some((last, code)) = not_run(plan, "") {
        out.last(&last);
        return ExitCode::from(code);
    }
    if !yes {
        let question = format!("Write {} on {} server(s)?", plan.site, plan.writes());
        if let Err(code) = ask(out, &question) {
            return code;
        }
    }
    // From the first lock on, an interruption is honoured between steps.
    catch_signals(stop);
    let mut show = |p: Progress| match p {
        Progress::Done(r) => out.line(&format!(
            "  {:<10} {}",
            plan.label(&r.server, &r.file),
            r.outcome
        )),
        Progress::Note(n) => out.line(&format!("  ({n})")),
        Progress::Step { .. } => {}
    };
    let outcome = apply(plan, sessions, audit, stop, &mut show);
    for e in &outcome.audit_errors {
        let _ = writeln!(
            std::io::stderr(),
            "farmkey: the audit log did not take a record: {}",
            escape(e)
        );
    }
    if outcome.verdict() == PushVerdict::InStep {
        let keep = crate::push::backups::retention(plan, servers);
        let retained = crate::push::backups::retain(&plan.site, &keep, sessions, audit);
        if let Some(line) = retained.summary() {
            out.line(&format!("  ({line})"));
        }
    }
    out.last(&outcome.summary());
    ExitCode::from(push_exit_code(&outcome))
}

pub fn run_push(args: &PushArgs) -> ExitCode {
    let disclosed = match args.disclosed.load() {
        Ok(d) => d,
        Err(code) => return code,
    };
    let source = match key_source(args, &disclosed) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    if args.save_plan.is_some() && matches!(source, KeySource::Generate { .. }) {
        return usage_error(
            "--save-plan needs the keys it will push, since `farmkey apply` must be given the same ones: make a key file first (`farmkey keygen > keys.xml`, kept as a secret) and plan with --keys keys.xml",
        );
    }
    let inventory = match load_inventory(args.farm.inventory.as_deref()) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let audit = audit_log(&args.audit);
    // Saving a plan writes nothing on any server and records nothing.
    if !args.dry_run && args.save_plan.is_none() {
        if let Err(e) = audit.check_writable(None) {
            return usage_error(format!(
                "{e}; a push is only made with its audit record (--audit FILE)"
            ));
        }
        if args.farm.connect.batch && !args.yes {
            return usage_error(
                "--batch never asks: add --yes to apply, or --dry-run to see the plan",
            );
        }
    }
    let request = PushRequest {
        site: args.site.clone(),
        source,
        servers: args.servers.clone(),
        exclude: args.exclude.clone(),
        keep_partial: args.keep_partial,
        break_lock: args.break_lock,
    };
    let (plan, mut sessions) =
        match scan_and_plan(&inventory, &args.farm, args.jobs.jobs, &disclosed, &request) {
            Ok(p) => p,
            Err(e) => return usage_error(e),
        };
    let stop = Interrupt::new();
    let mut out = Out::new(stop.clone());
    show_plan(&mut out, &plan);
    if let Some(path) = &args.save_plan {
        return save_plan(&mut out, &plan, &request, &inventory, path, args.force);
    }
    let verdict = plan.verdict();
    let blocked = verdict.blocking_servers();
    if args.dry_run {
        for s in plan
            .servers
            .iter()
            .filter(|s| s.action == PlanAction::Write)
        {
            let before = s.original.as_deref().unwrap_or_default();
            let after = s.edited.as_deref().unwrap_or_default();
            out.line("");
            out.text(&masked_diff(
                &format!("{}:{}", s.server, s.file),
                before,
                after,
            ));
        }
        if blocked.is_empty() {
            out.last("Dry run: nothing was written.");
            return ExitCode::from(exit::OK);
        }
        out.last(&format!(
            "Dry run: nothing was written; the push is blocked by {}.",
            and_list(&blocked)
        ));
        return ExitCode::from(exit::FINDINGS);
    }
    confirm_and_apply(
        &mut out,
        &stop,
        &plan,
        &mut sessions,
        &audit,
        &inventory.servers,
        args.yes,
    )
}

/// `push --save-plan FILE`: the plan written to FILE, if a push would run
/// it; nothing written on any server, no lock taken.
fn save_plan(
    out: &mut Out,
    plan: &Plan,
    request: &PushRequest,
    inventory: &crate::inventory::Inventory,
    path: &std::path::Path,
    force: bool,
) -> ExitCode {
    if let Some((last, code)) = not_run(plan, " No plan saved.") {
        out.last(&last);
        return ExitCode::from(code);
    }
    let saved = SavedPlan::of(
        plan,
        request,
        &inventory.servers,
        SavedPlan::planner(),
        crate::push::audit::now(),
    )
    .seal(plan.keys.as_ref());
    if let Err(e) = saved.write(path, force) {
        let why = if e.kind() == std::io::ErrorKind::AlreadyExists {
            "it exists already: give another FILE, or --force to replace it".to_string()
        } else {
            e.to_string()
        };
        return usage_error(format!("--save-plan {}: {why}", path.display()));
    }
    let keys = if plan.keys.is_some() {
        " with the same keys (--keys FILE, or --adopt as planned)"
    } else {
        ""
    };
    out.last(&format!(
        "Plan {} saved to {}: nothing was written. Apply it with `farmkey apply {}`{keys}.",
        saved.id,
        path.display(),
        path.display()
    ));
    ExitCode::from(exit::OK)
}

/// The keys `farmkey apply` is given, checked against the plan before the
/// farm is read where they come from a file.
enum ApplyKeys {
    File(KeySet),
    Adopt(Option<String>),
    None,
}

pub fn run_apply(args: &ApplyArgs) -> ExitCode {
    let path = &args.plan;
    let named = |e: &dyn std::fmt::Display| format!("plan {}: {e}", path.display());
    let disclosed = match args.disclosed.load() {
        Ok(d) => d,
        Err(code) => return code,
    };
    let saved = match SavedPlan::load(path) {
        Ok(p) => p,
        Err(e) => return usage_error(named(&e)),
    };
    let keys = match (&args.keys, &args.adopt) {
        (Some(file), _) => match read_keys(file, &disclosed) {
            Ok(k) => ApplyKeys::File(k),
            Err(e) => return usage_error(e),
        },
        (None, Some(server)) => ApplyKeys::Adopt((!server.is_empty()).then(|| server.clone())),
        (None, None) => ApplyKeys::None,
    };
    // Keys from a file and a plan without keys are checked at once; the
    // adopted ones once the farm is read.
    let checked = match &keys {
        ApplyKeys::File(k) => saved.check(Some(k)),
        ApplyKeys::None => saved.check(None),
        ApplyKeys::Adopt(_) if saved.key_set.is_none() => Err(SavedPlanError::KeysNotWanted),
        ApplyKeys::Adopt(_) => Ok(()),
    };
    if let Err(e) = checked {
        return usage_error(named(&e));
    }
    let inventory = match load_inventory(args.farm.inventory.as_deref()) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let audit = audit_log(&args.audit);
    if let Err(e) = audit.check_writable(None) {
        return usage_error(format!(
            "{e}; a plan is only applied with its audit record (--audit FILE)"
        ));
    }
    if args.farm.connect.batch && !args.yes {
        return usage_error("--batch never asks: add --yes to apply the plan");
    }
    let stop = Interrupt::new();
    let mut out = Out::new(stop.clone());
    out.line(&format!(
        "Plan {} ({}): {} by {} at {}, farmkey {}",
        saved.id,
        path.display(),
        saved.site,
        saved.planned_by,
        saved.planned_at,
        saved.farmkey_version
    ));
    let max_age = std::time::Duration::from_secs(args.max_age_days.saturating_mul(86400));
    match saved.age(std::time::SystemTime::now()) {
        Some(age) if age <= max_age => {}
        age => {
            let how_old = age.map_or("of an unreadable time".to_string(), |a| {
                format!("{} day(s) old", a.as_secs() / 86400)
            });
            let said = format!(
                "Plan {} is {how_old}, older than {} day(s) (--max-age): the farm may have moved on since it was approved.",
                saved.id, args.max_age_days
            );
            if args.yes {
                out.line(&format!("{said} Applied all the same: --yes."));
            } else {
                out.line(&said);
                if let Err(code) = ask(&mut out, "Apply it all the same?") {
                    return code;
                }
            }
        }
    }
    let not_applied = |out: &mut Out, diffs: &[crate::push::saved::Difference]| {
        out.line(&format!("Not as planned in {}:", path.display()));
        for d in diffs {
            out.line(&format!("  {d}"));
        }
        let mut servers: Vec<&str> = diffs.iter().map(|d| d.server()).collect();
        servers.dedup();
        out.last(&format!(
            "Plan {} NOT applied: not as planned on {} (see above); nothing was written. Plan the push again (`farmkey push --save-plan`) and have it approved.",
            saved.id,
            and_list(&servers)
        ));
        ExitCode::from(exit::FINDINGS)
    };
    let moved = saved.inventory_changes(&inventory.servers);
    if !moved.is_empty() {
        return not_applied(&mut out, &moved);
    }
    let source = match &keys {
        ApplyKeys::File(k) => KeySource::Import(k.clone()),
        ApplyKeys::Adopt(server) => KeySource::Adopt(server.clone()),
        ApplyKeys::None => KeySource::HandlerOnly,
    };
    let request = saved.request(source, args.break_lock);
    let (mut plan, mut sessions) =
        match scan_and_plan(&inventory, &args.farm, args.jobs.jobs, &disclosed, &request) {
            Ok(p) => p,
            Err(e) => return usage_error(e),
        };
    if let ApplyKeys::Adopt(_) = keys
        && let Err(e) = saved.check(plan.keys.as_ref())
    {
        return usage_error(named(&e));
    }
    let diffs = saved.differences(&plan);
    if !diffs.is_empty() {
        return not_applied(&mut out, &diffs);
    }
    // Named absolutely: the log outlives the directory it was run in.
    plan.saved = Some(saved.reference(&std::fs::canonicalize(path).unwrap_or(path.clone())));
    show_plan(&mut out, &plan);
    confirm_and_apply(
        &mut out,
        &stop,
        &plan,
        &mut sessions,
        &audit,
        &inventory.servers,
        args.yes,
    )
}

pub fn run_history(args: &HistoryArgs) -> ExitCode {
    let audit = audit_log(&args.audit);
    let records = match read_records(&audit) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let site = match args.site.as_deref().map(|s| logged_site(&records, s)) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(_)) => return ambiguous_site(&records, args.site.as_deref().unwrap_or_default()),
    };
    let mut out = Out::new(Interrupt::new());
    let list = pushes(&records, site);
    if list.is_empty() {
        out.last(&format!("No pushes recorded in {}.", audit.path.display()));
        return ExitCode::from(exit::OK);
    }
    // Newest first, as the console's History lists them.
    let list: Vec<_> = if args.oldest_first {
        list
    } else {
        list.into_iter().rev().collect()
    };
    for push in list {
        // The console's columns, in its order: time, user, site, key sets,
        // servers, where they stand; the id to name it to `rollback --push`.
        let servers = push.servers().len();
        out.line(&format!(
            "{}  {}  {}  {}  key sets {}  {servers} server{}: {}",
            push.id,
            push.time(),
            push.user(),
            push.site(),
            push.key_sets_text("→"),
            if servers == 1 { "" } else { "s" },
            push.outcome_summary()
        ));
        if push.is_prune() {
            for l in push.prune_lines() {
                out.line(&format!("    {:<9} {l}", "prune"));
            }
            continue;
        }
        if let Some(plan) = push.plan_text() {
            out.line(&format!("    {:<9} {plan}", "plan"));
        }
        let pushed: Vec<String> = push
            .pushed()
            .iter()
            .map(|r| format!("{} {}", push.label(r), push.pushed_text(r)))
            .collect();
        if !pushed.is_empty() {
            out.line(&format!("    {:<9} {}", "push", pushed.join(", ")));
        }
        let rolled: Vec<String> = push
            .rollbacks_shown()
            .into_iter()
            .map(|r| format!("{} {}", push.label(r), rollback_text(r)))
            .collect();
        if !rolled.is_empty() {
            out.line(&format!("    {:<9} {}", "rollback", rolled.join(", ")));
        }
        for (rec, copies) in push.left_behind() {
            out.line(&format!(
                "    {:<9} {} {} (`farmkey rollback` removes them)",
                "left",
                push.label(rec),
                copies.join(", ")
            ));
        }
    }
    ExitCode::from(exit::OK)
}

/// Who keeps their sign-ins if the plan runs, for the plan preview.
fn sign_ins(s: &crate::push::SignOuts) -> String {
    if s.everyone() {
        return "Signed-in users are signed out on every server of the push: they sign in again."
            .into();
    }
    let mut parts = Vec::new();
    if !s.keep.is_empty() {
        parts.push(format!("keep their sign-ins on {}", and_list(&s.keep)));
    }
    if !s.signed_out.is_empty() {
        parts.push(format!(
            "are signed out on {} (its keys, algorithms or session-token protection change)",
            and_list(&s.signed_out)
        ));
    }
    if !s.unknown.is_empty() {
        parts.push(format!(
            "may be signed out on {} (not read)",
            and_list(&s.unknown)
        ));
    }
    format!("Signed-in users {}.", parts.join("; "))
}

/// `--site` naming several sites of the log that differ only in case: as a
/// push says it of the scan ([`crate::push::PlanError::AmbiguousSite`]).
fn ambiguous_site(records: &[AuditRecord], site: &str) -> ExitCode {
    let quoted: Vec<String> = other_spellings(records, site)
        .iter()
        .map(|s| format!("{s:?}"))
        .collect();
    usage_error(format!(
        "{site:?} names several sites that differ only in case ({}): give the name exactly",
        quoted.join(", ")
    ))
}

pub fn run_rollback(args: &RollbackArgs) -> ExitCode {
    // Everything it needs is checked before it asks anything: the
    // inventory, the audit log read and writable, a way to ask.
    let inventory = match load_inventory(args.farm.inventory.as_deref()) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let audit = audit_log(&args.audit);
    let records = match read_records(&audit) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let site = match logged_site(&records, &args.site) {
        Ok(s) => s,
        Err(_) => return ambiguous_site(&records, &args.site),
    };
    let list = pushes(&records, Some(site));
    let chosen = match &args.push {
        Some(id) => list.into_iter().find(|p| p.id == *id),
        None => list
            .into_iter()
            .rev()
            .find(|p| !p.to_roll_back().is_empty()),
    };
    let Some(push) = chosen else {
        return usage_error(format!(
            "no push of {site}{} with applied changes in {}",
            args.push
                .as_deref()
                .map(|p| format!(" with id {p}"))
                .unwrap_or_default(),
            audit.path.display(),
        ));
    };
    let id = &push.id;
    let mut applied = push.to_roll_back();
    let mut out = Out::new(Interrupt::new());
    if applied.is_empty() {
        out.last(&format!(
            "Nothing to roll back: every file push {id} may have changed was already rolled back (or brought back by the push itself)."
        ));
        return ExitCode::from(exit::OK);
    }
    if !args.yes && args.farm.connect.batch {
        return usage_error("--batch never asks: add --yes to roll back");
    }
    // The locks are looked at before anyone is asked, over the sessions
    // the rollback then uses: a server another push holds is named and
    // left out of the question.
    let mut sessions = Sessions::new(
        inventory.servers.clone(),
        args.farm.connect.headless_options(),
    );
    let locked = locked_out(&applied, &mut sessions, args.break_lock);
    out.line(&format!(
        "Rollback of push {id} to {site}: restore the backups on"
    ));
    for r in &applied {
        out.line(&format!(
            "  {:<10} {} {}",
            r.server,
            r.file,
            restored_from(r)
        ));
    }
    if !locked.is_empty() {
        out.line("Left alone, locked:");
        for l in &locked {
            out.line(&format!("  {}", l.holder));
        }
        applied.retain(|r| !locked.iter().any(|l| l.server == r.server));
    }
    let skipped: Vec<&str> = locked.iter().map(|l| l.server.as_str()).collect();
    if applied.is_empty() {
        out.last(&format!(
            "Nothing rolled back: {} locked by another push (see above); roll back once it is done, or with --break-lock if its lock is stale.",
            and_list(&skipped)
        ));
        return ExitCode::from(exit::FINDINGS);
    }
    if let Err(e) = audit.check_writable(None) {
        return usage_error(e);
    }
    if !args.yes {
        let question = if skipped.is_empty() {
            "Restore these files?".to_string()
        } else {
            format!(
                "Restore these files? ({} left alone: locked)",
                and_list(&skipped)
            )
        };
        if let Err(code) = ask(&mut out, &question) {
            return code;
        }
    }
    // A signal is noted, never honoured: a rollback stopped half-way would
    // leave a server half restored (and its lock), and each file's restore
    // is bounded by its timeouts.
    let signals = Interrupt::new();
    catch_signals(&signals);
    let results = rollback_push(
        &applied,
        &mut sessions,
        &audit,
        args.break_lock,
        &mut |_| {},
    );
    // The servers left alone for their lock are not rolled back either.
    let mut refused: Vec<String> = skipped.iter().map(|s| s.to_string()).collect();
    for r in &results {
        let who = file_label(&applied, &r.server, &r.file);
        match &r.result {
            // Already restored counts: the push is undone there all the same.
            Ok(done) => out.line(&format!("  {who:<10} {}{done}", done.headline())),
            Err(e) => {
                out.line(&format!("  {who:<10} refused: {}", refusal(e)));
                refused.push(who);
            }
        }
    }
    let (mut last, code) = if refused.is_empty() {
        (
            format!(
                "Push {id} rolled back: every server it changed holds its original bytes again."
            ),
            exit::OK,
        )
    } else {
        (
            format!(
                "Push {id} NOT fully rolled back: {} refused (see above).",
                and_list(&refused)
            ),
            exit::FINDINGS,
        )
    };
    if let Some(r) = signals.reason() {
        last.push_str(&format!(
            " {r} came during the rollback, which was finished first."
        ));
    }
    out.last(&last);
    ExitCode::from(code)
}
