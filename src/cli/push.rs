//! `farmkey push`, `farmkey history`, `farmkey rollback`.

use super::{ConsoleArgs, HistoryArgs, PushArgs, RollbackArgs, exit, load_inventory, usage_error};
use crate::analysis::{Selection, analyze_against};
use crate::config::import::key_set_from_xml;
use crate::disclosed::DisclosedKeys;
use crate::farm::scan_all;
use crate::push::apply::{Progress, rollback_push};
use crate::push::audit::{AuditLog, default_path, pushes};
use crate::push::diff::masked_diff;
use crate::push::{
    KeySource, PlanAction, PushRequest, Sessions, apply, build_plan, refuse_disclosed,
};
use std::io::{BufRead, Write};
use std::process::ExitCode;

fn audit_log(args: &ConsoleArgs) -> AuditLog {
    AuditLog::new(args.audit.clone().unwrap_or_else(default_path))
}

/// Asks on the controlling terminal; `Err` when there is none.
fn confirm(question: &str) -> Result<bool, String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| "no terminal to ask on: add --yes to apply without asking".to_string())?;
    let mut out = tty.try_clone().map_err(|e| e.to_string())?;
    write!(out, "{question} [y/N] ").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    let mut answer = String::new();
    std::io::BufReader::new(tty)
        .read_line(&mut answer)
        .map_err(|e| e.to_string())?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn key_source(args: &PushArgs, disclosed: &DisclosedKeys) -> Result<KeySource, String> {
    if args.handler_only {
        return Ok(KeySource::HandlerOnly);
    }
    if args.generate {
        return Ok(KeySource::Generate {
            validation: args.validation,
            decryption: args.decryption,
        });
    }
    if let Some(server) = &args.adopt {
        return Ok(KeySource::Adopt(
            (!server.is_empty()).then(|| server.clone()),
        ));
    }
    if let Some(path) = &args.keys {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("--keys {}: {e}", path.display()))?;
        let keys =
            key_set_from_xml(&text).map_err(|e| format!("--keys {}: {e}", path.display()))?;
        // Refused before the farm is read: nothing to scan for.
        refuse_disclosed(&keys, &format!("--keys {}", path.display()), disclosed)
            .map_err(|e| e.to_string())?;
        return Ok(KeySource::Import(keys));
    }
    Err("choose the keys: --generate, --adopt [SERVER], --keys FILE, or --handler-only".into())
}

pub fn run_push(console: &ConsoleArgs, args: &PushArgs) -> ExitCode {
    let disclosed = match console.disclosed.load() {
        Ok(d) => d,
        Err(code) => return code,
    };
    let source = match key_source(args, &disclosed) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let inventory = match load_inventory(&console.inventory) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let audit = audit_log(console);
    if !args.dry_run {
        if let Err(e) = audit.check_writable() {
            return usage_error(format!(
                "{e}; a push is only made with its audit record (--audit FILE)"
            ));
        }
        if console.connect.batch && !args.yes {
            return usage_error(
                "--batch never asks: add --yes to apply, or --dry-run to see the plan",
            );
        }
    }
    let opts = console.connect.headless_options();
    let scans = scan_all(&inventory.servers, opts.clone(), console.connect.jobs);
    let report = analyze_against(
        &scans,
        &Selection {
            all_sites: true,
            sites: vec![],
        },
        &disclosed,
    );
    let request = PushRequest {
        site: args.site.clone(),
        source,
        servers: args.servers.clone(),
        keep_partial: args.keep_partial,
    };
    let mut sessions = Sessions::new(inventory.servers.clone(), opts);
    let plan = match build_plan(&request, &report, &mut sessions) {
        Ok(p) => p,
        Err(e) => return usage_error(e),
    };
    print!("{plan}");
    let skipped = plan
        .servers
        .iter()
        .any(|s| matches!(s.action, PlanAction::Skip(_)));
    if args.dry_run {
        for s in plan
            .servers
            .iter()
            .filter(|s| s.action == PlanAction::Write)
        {
            let before = s.original.as_deref().unwrap_or_default();
            let after = s.edited.as_deref().unwrap_or_default();
            println!(
                "\n{}",
                masked_diff(&format!("{}:{}", s.server, s.file), before, after)
            );
        }
        println!("Dry run: nothing was written.");
        return ExitCode::from(if skipped { exit::FINDINGS } else { exit::OK });
    }
    if plan.writes() == 0 {
        println!("Nothing to write.");
        return ExitCode::from(if skipped { exit::FINDINGS } else { exit::OK });
    }
    if !args.yes {
        let question = format!("Write {} on {} server(s)?", plan.site, plan.writes());
        match confirm(&question) {
            Ok(true) => {}
            Ok(false) => {
                println!("Cancelled: nothing was written.");
                return ExitCode::from(exit::FINDINGS);
            }
            Err(e) => return usage_error(e),
        }
    }
    let mut show = |p: Progress| {
        if let Progress::Done(r) = p {
            println!("  {:<10} {}", r.server, r.outcome);
        }
    };
    let outcome = apply(&plan, &mut sessions, &audit, &mut show);
    println!("{}", outcome.summary());
    for e in &outcome.audit_errors {
        eprintln!("farmkey: the audit log did not take a record: {e}");
    }
    ExitCode::from(if outcome.success() {
        exit::OK
    } else {
        exit::FINDINGS
    })
}

pub fn run_history(console: &ConsoleArgs, args: &HistoryArgs) -> ExitCode {
    let audit = audit_log(console);
    let records = match audit.read_all() {
        Ok(r) => r,
        Err(e) => return usage_error(e),
    };
    let list = pushes(&records, args.site.as_deref());
    if list.is_empty() {
        println!("No pushes recorded in {}.", audit.path.display());
        return ExitCode::from(exit::OK);
    }
    for (id, recs) in list {
        let first = &recs[0];
        println!("{id}  {}  {}  {}", first.time, first.user, first.site);
        for action in ["push", "rollback"] {
            let servers: Vec<String> = recs
                .iter()
                .filter(|r| r.action == action)
                .map(|r| format!("{} {}", r.server, r.outcome))
                .collect();
            if !servers.is_empty() {
                println!("    {action:<9} {}", servers.join(", "));
            }
        }
    }
    ExitCode::from(exit::OK)
}

pub fn run_rollback(console: &ConsoleArgs, args: &RollbackArgs) -> ExitCode {
    let audit = audit_log(console);
    let records = match audit.read_all() {
        Ok(r) => r,
        Err(e) => return usage_error(e),
    };
    let list = pushes(&records, Some(&args.site));
    let chosen = match &args.push {
        Some(id) => list.into_iter().find(|(p, _)| p == id),
        None => list.into_iter().rev().find(|(_, recs)| {
            recs.iter().any(|r| {
                r.action == "push"
                    && r.outcome == "applied"
                    && !recs.iter().any(|x| {
                        x.action == "rollback" && x.outcome == "rolled-back" && x.server == r.server
                    })
            })
        }),
    };
    let Some((id, recs)) = chosen else {
        return usage_error(format!(
            "no push of {}{} with applied changes in {}",
            args.site,
            args.push
                .as_deref()
                .map(|p| format!(" with id {p}"))
                .unwrap_or_default(),
            audit.path.display()
        ));
    };
    let rolled_back = |server: &str| {
        recs.iter()
            .any(|r| r.action == "rollback" && r.outcome == "rolled-back" && r.server == server)
    };
    let applied: Vec<_> = recs
        .iter()
        .filter(|r| r.action == "push" && r.outcome == "applied" && !rolled_back(&r.server))
        .cloned()
        .collect();
    println!(
        "Rollback of push {id} to {}: restore the backups on",
        args.site
    );
    for r in &applied {
        println!(
            "  {:<10} {} from {}",
            r.server,
            r.file,
            r.backup
                .as_deref()
                .unwrap_or("(remove: the push created it)")
        );
    }
    if applied.is_empty() {
        println!("Nothing to roll back: every change of push {id} was already rolled back.");
        return ExitCode::from(exit::OK);
    }
    if let Err(e) = audit.check_writable() {
        return usage_error(e);
    }
    if !args.yes {
        if console.connect.batch {
            return usage_error("--batch never asks: add --yes to roll back");
        }
        match confirm("Restore these files?") {
            Ok(true) => {}
            Ok(false) => {
                println!("Cancelled: nothing was written.");
                return ExitCode::from(exit::FINDINGS);
            }
            Err(e) => return usage_error(e),
        }
    }
    let inventory = match load_inventory(&console.inventory) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let mut sessions = Sessions::new(
        inventory.servers.clone(),
        console.connect.headless_options(),
    );
    let results = rollback_push(&applied, &mut sessions, &audit);
    let mut ok = true;
    for (server, r) in &results {
        match r {
            Ok(()) => println!("  {server:<10} restored and verified"),
            Err(e) => {
                ok = false;
                println!("  {server:<10} refused: {e}");
            }
        }
    }
    ExitCode::from(if ok { exit::OK } else { exit::FINDINGS })
}
