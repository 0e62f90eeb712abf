//! `farmkey scan`: read every server, print drift, exit 0/1/2.

use super::{ScanArgs, ScanFormat, exit, load_inventory, usage_error};
use crate::analysis::analyze_against;
use crate::demo::DemoFarm;
use crate::farm::scan_all;
use crate::report;
use std::io::Write;
use std::process::ExitCode;

pub fn run(args: &ScanArgs) -> ExitCode {
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
    let jumps = opts.jumps.clone();
    let scans = scan_all(&inventory.servers, opts, args.jobs.jobs);
    let mut report = analyze_against(
        &scans,
        &args.sites.selection(&inventory.components),
        &disclosed,
    );
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
    }
    ExitCode::from(if report.needs_attention() {
        exit::FINDINGS
    } else {
        exit::OK
    })
}
