//! A key set taken from a `<machineKey>` element: a file with the element
//! alone, a whole web.config, or text pasted into the console.

use super::xml::Document;
use crate::bytes::FileBytes;
use crate::keys::{KeySet, KeyText};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ImportError(pub String);

/// Reads and validates the one `<machineKey>` of `text`; two are refused
/// with their lines (which one is meant is the operator's call). Errors
/// never repeat the key text.
pub fn key_set_from_xml(text: &str) -> Result<KeySet, ImportError> {
    let trimmed = text.trim().trim_start_matches('\u{feff}');
    // Lines dropped by the trim, so line numbers are the file's.
    let lines_before = text[..text.len() - text.trim_start().len()]
        .matches('\n')
        .count();
    let doc = Document::parse(FileBytes::new(trimmed.as_bytes().to_vec())).map_err(|e| {
        ImportError(format!(
            "the text is not a well-formed <machineKey> element: {e}"
        ))
    })?;
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
        [] => return Err(ImportError("no <machineKey> element found".into())),
        [one] => one,
        [first, second, ..] => {
            return Err(ImportError(format!(
                "two <machineKey> elements, at lines {} and {}: keep only the one to push",
                line(first),
                line(second)
            )));
        }
    };
    if doc.find_attr(mk, "configProtectionProvider").is_some() {
        return Err(ImportError("the <machineKey> element is encrypted".into()));
    }
    let key = |name: &str| -> Result<KeyText, ImportError> {
        let value = doc
            .attr(mk, name)
            .ok_or_else(|| ImportError(format!("the <machineKey> element has no {name}")))?;
        let first = value.split(',').next().unwrap_or("").trim();
        if first.eq_ignore_ascii_case("AutoGenerate") {
            return Err(ImportError(format!(
                "{name} is AutoGenerate: import an element with explicit keys (farmkey keygen makes one)"
            )));
        }
        if value.contains(',') {
            return Err(ImportError(format!(
                "{name} carries a modifier (IsolateApps/IsolateByAppId); import the plain key"
            )));
        }
        Ok(KeyText::new(value.into_owned()))
    };
    let set = KeySet {
        validation_key: key("validationKey")?,
        decryption_key: key("decryptionKey")?,
        validation: doc
            .attr(mk, "validation")
            .map_or_else(|| "HMACSHA256".to_string(), |v| v.trim().to_string()),
        decryption: doc
            .attr(mk, "decryption")
            .map_or_else(|| "Auto".to_string(), |v| v.trim().to_string()),
    };
    let problems = set.problems();
    if !problems.is_empty() {
        return Err(ImportError(format!(
            "the imported keys are not usable: {}",
            problems.join("; ")
        )));
    }
    Ok(set)
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
        assert_eq!(set.validation, "HMACSHA256");
        assert_eq!(set.validation_key.expose(), v);
        let file = format!(
            "\u{feff}<?xml version=\"1.0\"?><configuration><system.web>{bare}</system.web></configuration>"
        );
        assert_eq!(key_set_from_xml(&file).unwrap().decryption_key.expose(), d);
        let no_algs = format!("<machineKey validationKey=\"{v}\" decryptionKey=\"{d}\"/>");
        let set = key_set_from_xml(&no_algs).unwrap();
        assert_eq!(
            (set.validation.as_str(), set.decryption.as_str()),
            ("HMACSHA256", "Auto")
        );
    }

    #[test]
    fn refuses_what_cannot_be_pushed_without_echoing_keys() {
        let v = "AB".repeat(64);
        for (text, expected) in [
            ("<machineKey validationKey=\"AutoGenerate,IsolateApps\" decryptionKey=\"AutoGenerate\"/>".to_string(), "AutoGenerate"),
            (format!("<machineKey validationKey=\"{v},IsolateApps\" decryptionKey=\"{v}\"/>"), "modifier"),
            (format!("<machineKey validationKey=\"{v}\" decryptionKey=\"XYZ\"/>"), "non-hex"),
            (format!("<machineKey validationKey=\"{v}\"/>"), "no decryptionKey"),
            ("<appSettings/>".to_string(), "no <machineKey>"),
            ("<machineKey validationKey=".to_string(), "not a well-formed"),
            (format!("\n\n<configuration>\n<machineKey validationKey=\"{v}\" decryptionKey=\"{v}\"/>\n<location>\n  <machineKey validationKey=\"{v}\" decryptionKey=\"{v}\"/>\n</location></configuration>"), "two <machineKey> elements, at lines 4 and 6"),
        ] {
            let err = key_set_from_xml(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(!err.contains(&v[..20]));
        }
    }
}
