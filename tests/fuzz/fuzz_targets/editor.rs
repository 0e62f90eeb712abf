//! The editor must never panic, whatever bytes a server returns, and what
//! it returns must parse.
#![no_main]

use farmkey::bytes::FileBytes;
use farmkey::config::editor::{EditRequest, edit};
use farmkey::config::xml::Document;
use farmkey::keys::{KeySet, KeyText};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else { return };
    let req = EditRequest {
        machine_key: (flags & 1 != 0).then(|| KeySet {
            validation_key: KeyText::new("AB".repeat(64)),
            decryption_key: KeyText::new("CD".repeat(32)),
            validation: "SHA1".into(),
            decryption: "AES".into(),
        }),
        compatibility_mode: (flags & 2 != 0).then(|| "Framework45".to_string()),
        handler_swap: flags & 4 != 0,
        identity_in_use: String::new(),
        identity_section_declared_above: flags & 8 != 0,
    };
    if let Ok(out) = edit(&FileBytes::new(body.to_vec()), &req) {
        assert!(Document::parse(out.bytes).is_ok());
    }
});
