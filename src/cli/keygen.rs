//! `farmkey keygen`: the one command whose output is a key.

use super::{KeyFormat, KeygenArgs, exit};
use crate::keys::KeySet;
use std::process::ExitCode;

pub fn run(args: &KeygenArgs) -> ExitCode {
    let set = match KeySet::generate(args.validation, args.decryption) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("farmkey: {e}");
            return ExitCode::from(exit::FINDINGS);
        }
    };
    match args.format {
        KeyFormat::Xml => println!("{}", set.to_xml_element()),
        KeyFormat::Json => println!(
            "{}",
            serde_json::json!({
                "validation": set.validation,
                "decryption": set.decryption,
                "validationKey": set.validation_key.expose(),
                "decryptionKey": set.decryption_key.expose(),
                "validationKeyFingerprint": set.validation_key.fingerprint(),
                "decryptionKeyFingerprint": set.decryption_key.fingerprint(),
            })
        ),
    }
    ExitCode::from(exit::OK)
}
