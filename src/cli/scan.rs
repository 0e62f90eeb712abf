//! `farmkey scan`: read every server, print drift, exit 0/1/2.

use super::{ScanArgs, ScanFormat, exit, load_inventory, usage_error};
use crate::analysis::analyze_against;
use crate::demo::DemoFarm;
use crate::farm::scan_all;
use crate::push::audit::AuditLog;
use crate::push::history::last_succeeded;
use crate::report;
use crate::report::openmetrics::{LastPushes, ScanRun};
use crate::safe_text::escape;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

pub fn run(args: &ScanArgs) -> ExitCode {
    // Never silently ignored: only the metrics read the audit log.
    if args.audit.is_some() && args.format != ScanFormat::OpenMetrics {
        return usage_error("--audit applies to --format openmetrics only (the last push times)");
    }
    let disclosed = match args.disclosed.load() {
        Ok(d) => d,
        Err(code) => return code,
    };
    let demo;
    let inventory = if args.demo {
        demo = match DemoFarm::new() {
            Ok(d) => d,
            Err(e) => return usage_error(e),
        };
        demo.inventory.clone()
    } else {
        match load_inventory(args.farm.inventory.as_deref()) {
            Ok(i) => i,
            Err(code) => return code,
        }
    };
    let opts = args.farm.connect.headless_options();
    let started = (SystemTime::now(), Instant::now());
    let jumps = opts.jumps.clone();
    let scans = scan_all(&inventory.servers, opts, args.jobs.jobs);
    let mut report = analyze_against(
        &scans,
        &args.sites.selection(&inventory.components),
        &disclosed,
    );
    let run = ScanRun {
        started: started.0,
        took: started.1.elapsed(),
    };
    report.notes = jumps.notes();
    match args.format {
        ScanFormat::Table => {
            if let Err(code) =
                super::write_stdout(report::to_table(&report, report::output_width()).as_bytes())
            {
                return code;
            }
        }
        ScanFormat::Json => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            // A closed pipe (`| head`) is not an error of the scan.
            let _ = report::write_json(&report, &mut out);
            let _ = writeln!(out);
        }
        ScanFormat::OpenMetrics => {
            // The demo's farm is not the one the default log's pushes were to.
            let audit = args
                .audit
                .clone()
                .or_else(|| (!args.demo).then(crate::push::audit::default_path));
            let pushes = last_pushes(audit.as_deref());
            // Printed whole whatever the findings: a timer publishes it on
            // exit 0 and 1 alike.
            if let Err(code) = super::write_stdout(
                report::openmetrics::to_openmetrics(&report, run, &pushes).as_bytes(),
            ) {
                return code;
            }
        }
    }
    ExitCode::from(if report.needs_attention() {
        exit::FINDINGS
    } else {
        exit::OK
    })
}

/// When each site's last push that succeeded started, from the audit log at
/// `path` (none: no log, no pushes). A log that cannot be read is said on
/// standard error and in the metrics, and the scan goes on: drift is still
/// worth reporting.
fn last_pushes(path: Option<&Path>) -> LastPushes {
    let Some(path) = path else {
        return LastPushes::Read(Default::default());
    };
    let read = match AuditLog::new(path.to_path_buf()).read() {
        Ok(read) => read,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "farmkey: {} (farmkey_audit_log_readable 0, no push times)",
                escape(&e.to_string())
            );
            return LastPushes::Unreadable;
        }
    };
    for note in &read.notes {
        let _ = writeln!(std::io::stderr(), "farmkey: {}", escape(note));
    }
    LastPushes::Read(
        last_succeeded(&read.records)
            .into_iter()
            .filter_map(|(site, push)| Some((site, humantime::parse_rfc3339(push.time()).ok()?)))
            .collect(),
    )
}
