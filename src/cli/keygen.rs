//! `farmkey keygen`: the one command whose output is a key.

use super::{KeyFormat, KeygenArgs, exit};
use crate::keys::KeySet;
use std::io::Write;
use std::process::ExitCode;

pub fn run(args: &KeygenArgs) -> ExitCode {
    let set = match KeySet::generate(args.validation.clone(), args.decryption.clone()) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "farmkey: {e}");
            return ExitCode::from(exit::FINDINGS);
        }
    };
    let text = match args.format {
        KeyFormat::Xml => set.to_xml_element(),
        KeyFormat::Json => serde_json::json!({
                "validation": set.validation,
                "decryption": set.decryption,
                "validationKey": set.validation_key.expose(),
                "decryptionKey": set.decryption_key.expose(),
                "validationKeyFingerprint": set.validation_key.fingerprint(),
            "decryptionKeyFingerprint": set.decryption_key.fingerprint(),
        })
        .to_string(),
    };
    match super::write_stdout(format!("{text}\n").as_bytes()) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(code) => code,
    }
}
