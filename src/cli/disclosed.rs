//! `farmkey disclosed`: which lists of publicly disclosed keys are checked,
//! with the attribution the shipped list's licence asks for.

use super::{DisclosedListArg, exit};
use crate::disclosed::{self, ATTRIBUTION, SHIPPED_ROWS, SHIPPED_SOURCE};
use std::fmt::Write;
use std::process::ExitCode;

pub fn run(args: &DisclosedListArg) -> ExitCode {
    let lists = match args.load() {
        Ok(l) => l,
        Err(code) => return code,
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Publicly disclosed machine keys checked by scan, push and the console:"
    );
    let _ = writeln!(
        out,
        "  shipped  {} hashes of {} key pairs: {SHIPPED_SOURCE}",
        disclosed::shipped().len(),
        SHIPPED_ROWS
    );
    for l in &lists.lists {
        let _ = writeln!(
            out,
            "  extra    {}: {} hashes, {} not in the lists above",
            crate::safe_text::escape(&l.file.display().to_string()),
            l.hashes,
            l.new
        );
    }
    let _ = writeln!(out, "  total    {} distinct hashes", lists.len());
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "A key is listed when the SHA-256 of its text (trimmed, without ,IsolateApps or \
,IsolateByAppId, upper-cased) is; the validationKey and the decryptionKey are checked \
separately. It is an exact-hash list: a key that is not listed may still be public. \
Keys in an encrypted <machineKey> cannot be checked. Add a newer list with \
--disclosed-list FILE (same CSV format as MachineKeys.csv)."
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "Third-party data: {ATTRIBUTION}");
    match super::write_stdout(out.as_bytes()) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(code) => code,
    }
}
