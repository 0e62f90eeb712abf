//! The one check that keeps a publicly disclosed key off every server:
//! whatever the key set's source (generated, adopted, a file, a paste),
//! headless and console alike.

use super::PlanError;
use crate::disclosed::DisclosedKeys;
use crate::keys::KeySet;

/// Refuses `keys` when either key is on one of `lists`; `what` says where
/// the set came from ("adopt set A from web01", "--keys keys.xml").
pub fn refuse_disclosed(keys: &KeySet, what: &str, lists: &DisclosedKeys) -> Result<(), PlanError> {
    let listed: Vec<String> = [
        ("validationKey", &keys.validation_key),
        ("decryptionKey", &keys.decryption_key),
    ]
    .into_iter()
    .filter(|(_, k)| lists.is_disclosed(k.expose()))
    .map(|(name, k)| format!("{name} {}", k.fingerprint()))
    .collect();
    if listed.is_empty() {
        return Ok(());
    }
    Err(PlanError::Disclosed(format!(
        "refused to push this key set ({what}): its {} {} publicly disclosed (on the list of machine keys published online and used in attacks), so anyone could forge the ViewState and cookies it protects. Generate a new key set instead (farmkey push --generate, or \"Generate new keys\" in the console).",
        listed.join(" and "),
        if listed.len() == 1 { "is" } else { "are" }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Decryption, KeyText, Validation};

    #[test]
    fn a_set_with_a_listed_key_is_refused_by_fingerprint_only() {
        let lists = DisclosedKeys::shipped();
        let fresh = KeySet::generate(Validation::Sha1, Decryption::Aes).unwrap();
        assert_eq!(refuse_disclosed(&fresh, "new keys", &lists), Ok(()));
        // Microsoft's sample decryption key ("How To: Configure MachineKey
        // in ASP.NET 2.0") with a fresh validation key.
        let sample = "ABAA84D7EC4BB56D75D217CECFFB9628809BDB8BF91CFCD64568A145BE59719F";
        let set = KeySet {
            decryption_key: KeyText::new(sample.to_lowercase()),
            ..fresh.clone()
        };
        let e = refuse_disclosed(&set, "the pasted keys", &lists)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("refused to push this key set (the pasted keys): its decryptionKey 51ef2ec8 is publicly disclosed"),
            "{e}"
        );
        assert!(!e.contains(&sample[..16]) && !e.contains(&sample[..16].to_lowercase()));
        assert!(!e.contains(&fresh.validation_key.expose()[..16]));
    }
}
