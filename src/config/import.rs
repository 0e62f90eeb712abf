//! A key set taken from a `<machineKey>` element: a file with the element
//! alone, a whole web.config, or text pasted into the console.

use super::xml::{Document, XmlError};
use crate::bytes::FileBytes;
use crate::keys::{Decryption, KeyPurpose, KeySet, KeySetProblem, KeyText, Validation, joined};

/// Why a key set cannot be imported. Never holds key text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("the text is not a well-formed <machineKey> element: {0}")]
    NotWellFormed(XmlError),
    #[error("no <machineKey> element found")]
    NoMachineKey,
    /// Which one is meant is the operator's call: lines are the file's.
    #[error("two <machineKey> elements, at lines {0} and {1}: keep only the one to push")]
    TwoMachineKeys(usize, usize),
    #[error("the <machineKey> element is encrypted")]
    Encrypted,
    #[error("the <machineKey> element has no {}", .0.attribute())]
    NoKey(KeyPurpose),
    #[error(
        "{} is AutoGenerate: import an element with explicit keys (farmkey keygen makes one)",
        .0.attribute()
    )]
    AutoGenerate(KeyPurpose),
    #[error(
        "{} carries a modifier (IsolateApps/IsolateByAppId); import the plain key",
        .0.attribute()
    )]
    Modifier(KeyPurpose),
    #[error("the imported keys are not usable: {}", joined(.0))]
    Unusable(Vec<KeySetProblem>),
}

/// Reads and validates the one `<machineKey>` of `text`; two are refused
/// with their lines (which one is meant is the operator's call). Errors
/// never repeat the key text.
pub fn key_set_from_xml(text: &str) -> Result<KeySet, ImportError> {
    let trimmed = text.trim().trim_start_matches('\u{feff}');
    // Lines dropped by the trim, so line numbers are the file's.
    let lines_before = text[..text.len() - text.trim_start().len()]
        .matches('\n')
        .count();
    let doc = Document::parse(FileBytes::new(trimmed.as_bytes().to_vec()))
        .map_err(ImportError::NotWellFormed)?;
    let mut stack = vec![doc.root()];
    let mut found = Vec::new();
    while let Some(id) = stack.pop() {
        if doc.name(id) == "machineKey" {
            found.push(id);
            if found.len() == 2 {
                break;
            }
        }
        stack.extend(doc.children(id).iter().rev());
    }
    let line = |id| lines_before + doc.line_of(doc.element(id).start_tag().start);
    let mk = match found[..] {
        [] => return Err(ImportError::NoMachineKey),
        [one] => one,
        [first, second, ..] => return Err(ImportError::TwoMachineKeys(line(first), line(second))),
    };
    if doc.find_attr(mk, "configProtectionProvider").is_some() {
        return Err(ImportError::Encrypted);
    }
    let key = |purpose: KeyPurpose| -> Result<KeyText, ImportError> {
        let value = doc
            .attr(mk, purpose.attribute())
            .ok_or(ImportError::NoKey(purpose))?;
        let first = value.split(',').next().unwrap_or("").trim();
        if first.eq_ignore_ascii_case("AutoGenerate") {
            return Err(ImportError::AutoGenerate(purpose));
        }
        if value.contains(',') {
            return Err(ImportError::Modifier(purpose));
        }
        Ok(KeyText::new(value.into_owned()))
    };
    // ASP.NET's defaults where the element names no algorithm.
    let alg = |name: &str, default: String| doc.attr(mk, name).map_or(default, |v| v.into_owned());
    KeySet::from_written(
        key(KeyPurpose::Validation)?,
        key(KeyPurpose::Decryption)?,
        &alg("validation", Validation::HmacSha256.to_string()),
        &alg("decryption", Decryption::Auto.to_string()),
    )
    .map_err(ImportError::Unusable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_bare_element_or_a_whole_file() {
        let v = "AB".repeat(64);
        let d = "CD".repeat(32);
        let bare = format!(
            "  <machineKey validationKey=\"{v}\" decryptionKey=\"{d}\" validation=\"HMACSHA256\" decryption=\"AES\" />\n"
        );
        let set = key_set_from_xml(&bare).unwrap();
        assert_eq!(set.validation, Validation::HmacSha256);
        assert_eq!(set.validation_key.expose(), v);
        let file = format!(
            "\u{feff}<?xml version=\"1.0\"?><configuration><system.web>{bare}</system.web></configuration>"
        );
        assert_eq!(key_set_from_xml(&file).unwrap().decryption_key.expose(), d);
        let no_algs = format!("<machineKey validationKey=\"{v}\" decryptionKey=\"{d}\"/>");
        let set = key_set_from_xml(&no_algs).unwrap();
        assert_eq!(
            (set.validation, set.decryption),
            (Validation::HmacSha256, Decryption::Auto)
        );
    }

    #[test]
    fn refuses_what_cannot_be_pushed_without_echoing_keys() {
        use crate::keys::KeyProblem;
        let v = "AB".repeat(64);
        for (text, expected, wording) in [
            (
                "<machineKey validationKey=\"AutoGenerate,IsolateApps\" decryptionKey=\"AutoGenerate\"/>".to_string(),
                ImportError::AutoGenerate(KeyPurpose::Validation),
                "validationKey is AutoGenerate: import an element with explicit keys (farmkey keygen makes one)",
            ),
            (
                format!("<machineKey validationKey=\"{v},IsolateApps\" decryptionKey=\"{v}\"/>"),
                ImportError::Modifier(KeyPurpose::Validation),
                "validationKey carries a modifier (IsolateApps/IsolateByAppId); import the plain key",
            ),
            (
                format!("<machineKey validationKey=\"{v}\" decryptionKey=\"XYZ\"/>"),
                ImportError::Unusable(vec![KeySetProblem::Key {
                    purpose: KeyPurpose::Decryption,
                    problem: KeyProblem::NonHex('X'),
                }]),
                "the imported keys are not usable: decryptionKey contains a non-hex character 'X'",
            ),
            (
                format!("<machineKey validationKey=\"{v}\"/>"),
                ImportError::NoKey(KeyPurpose::Decryption),
                "the <machineKey> element has no decryptionKey",
            ),
            (
                "<appSettings/>".to_string(),
                ImportError::NoMachineKey,
                "no <machineKey> element found",
            ),
            (
                "<machineKey validationKey=\"AB\" configProtectionProvider=\"RsaProtectedConfigurationProvider\"/>".to_string(),
                ImportError::Encrypted,
                "the <machineKey> element is encrypted",
            ),
            (
                format!("\n\n<configuration>\n<machineKey validationKey=\"{v}\" decryptionKey=\"{v}\"/>\n<location>\n  <machineKey validationKey=\"{v}\" decryptionKey=\"{v}\"/>\n</location></configuration>"),
                ImportError::TwoMachineKeys(4, 6),
                "two <machineKey> elements, at lines 4 and 6: keep only the one to push",
            ),
        ] {
            let err = key_set_from_xml(&text).unwrap_err();
            assert_eq!(err, expected, "{text}");
            assert_eq!(err.to_string(), wording);
            assert!(!err.to_string().contains(&v[..20]));
        }
        let err = key_set_from_xml("<machineKey validationKey=").unwrap_err();
        assert!(matches!(err, ImportError::NotWellFormed(_)), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("the text is not a well-formed <machineKey> element: ")
        );
    }
}
