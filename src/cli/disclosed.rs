//! `farmkey disclosed`: which lists of publicly disclosed keys are checked,
//! with the attribution the shipped list's licence asks for.

use super::{DisclosedListArg, exit};
use crate::disclosed::{self, ATTRIBUTION, SHIPPED_ROWS, SHIPPED_SOURCE};
use std::process::ExitCode;

pub fn run(args: &DisclosedListArg) -> ExitCode {
    let lists = match args.load() {
        Ok(l) => l,
        Err(code) => return code,
    };
    println!("Publicly disclosed machine keys checked by scan, push and the console:");
    println!(
        "  shipped  {} hashes of {} key pairs: {SHIPPED_SOURCE}",
        disclosed::shipped().len(),
        SHIPPED_ROWS
    );
    for l in &lists.lists {
        println!(
            "  extra    {}: {} hashes, {} not in the lists above",
            crate::safe_text::escape(&l.file.display().to_string()),
            l.hashes,
            l.new
        );
    }
    println!("  total    {} distinct hashes", lists.len());
    println!();
    println!(
        "A key is listed when the SHA-256 of its text (trimmed, without ,IsolateApps or \
,IsolateByAppId, upper-cased) is; the validationKey and the decryptionKey are checked \
separately. It is an exact-hash list: a key that is not listed may still be public. \
Keys in an encrypted <machineKey> cannot be checked. Add a newer list with \
--disclosed-list FILE (same CSV format as MachineKeys.csv)."
    );
    println!();
    println!("Third-party data: {ATTRIBUTION}");
    ExitCode::from(exit::OK)
}
