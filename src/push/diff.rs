//! Unified diffs of planned edits, with every key replaced by its
//! fingerprint where it stands in the file, whatever its spelling.

use crate::bytes::FileBytes;
use crate::config::xml::Document;
use crate::keys::{fingerprint, mask_key_text};
use std::ops::Range;

/// The attributes whose values are keys.
fn is_key_attribute(element: &str, attribute: &str) -> bool {
    element.eq_ignore_ascii_case("machineKey")
        && ["validationKey", "decryptionKey"]
            .iter()
            .any(|k| attribute.eq_ignore_ascii_case(k))
}

/// What stands for a key value: `[key 1a2b3c4d]` (its fingerprint, as the
/// plan shows it) with its `,IsolateApps` kept; `AutoGenerate` and an empty
/// value, which hold no secret, as they are.
fn placeholder(value: &str) -> String {
    let mut parts = value.split(',');
    let base = parts.next().unwrap_or("").trim();
    let modifiers: Vec<&str> = parts.map(str::trim).collect();
    let known = modifiers
        .iter()
        .all(|m| m.eq_ignore_ascii_case("IsolateApps") || m.eq_ignore_ascii_case("IsolateByAppId"));
    if known && (base.is_empty() || base.eq_ignore_ascii_case("AutoGenerate")) {
        return value.to_string();
    }
    if !known {
        return format!("[key {}]", fingerprint(value));
    }
    let mut out = format!("[key {}]", fingerprint(base));
    for m in modifiers {
        out.push(',');
        out.push_str(m);
    }
    out
}

/// The value spans of the key attributes of a parsed document, with what
/// replaces each.
fn key_spans(doc: &Document) -> Vec<(Range<usize>, String)> {
    let mut spans = Vec::new();
    for id in doc.element_ids() {
        for a in doc.attrs(id) {
            if is_key_attribute(doc.name(id), doc.attr_name(a)) {
                spans.push((a.value_span(), placeholder(&doc.attr_value(a))));
            }
        }
    }
    spans
}

/// Key attributes of text that does not parse (a paste in progress): from
/// the attribute's name to its closing quote, or to the end of the text.
fn key_spans_unparsed(text: &str) -> Vec<(Range<usize>, String)> {
    let lower = text.to_ascii_lowercase();
    let b = lower.as_bytes();
    let mut spans = Vec::new();
    for name in ["validationkey", "decryptionkey"] {
        for (at, _) in lower.match_indices(name) {
            let mut i = at + name.len();
            let skip = |i: &mut usize| {
                while *i < b.len() && b[*i].is_ascii_whitespace() {
                    *i += 1;
                }
            };
            skip(&mut i);
            if b.get(i) != Some(&b'=') {
                continue;
            }
            i += 1;
            skip(&mut i);
            let Some(&quote @ (b'"' | b'\'')) = b.get(i) else {
                continue;
            };
            let start = i + 1;
            let end = lower[start..]
                .find(quote as char)
                .map_or(text.len(), |n| start + n);
            let raw = &text[start..end];
            let value = quick_xml::escape::unescape(raw).unwrap_or_else(|_| raw.into());
            spans.push((start..end, placeholder(&value)));
        }
    }
    spans.sort_by_key(|(r, _)| r.start);
    spans
}

/// Replaces the spans, and masks runs of 32 or more hex digits in the
/// text between them (a key pasted into a comment), however spelled.
fn splice(text: &str, mut spans: Vec<(Range<usize>, String)>) -> String {
    spans.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (r, with) in spans {
        if r.start < at {
            continue;
        }
        out.push_str(&mask_key_text(&text[at..r.start]));
        out.push_str(&with);
        at = r.end;
    }
    out.push_str(&mask_key_text(&text[at..]));
    out
}

/// Masks the keys of a configuration text (a file, or an element being
/// pasted): every `validationKey` and `decryptionKey` value of a
/// `<machineKey>`, found where it stands in the parsed text, becomes
/// `[key <fingerprint>]`, however it is spelled (character references,
/// entities); never by matching key text. Text that does not parse is
/// masked from each such attribute's name to its closing quote.
pub fn mask_keys(text: &str) -> String {
    match Document::parse(FileBytes::new(text.as_bytes().to_vec())) {
        Ok(doc) => splice(doc.text(0..doc.bytes().len()), key_spans(&doc)),
        Err(_) => splice(text, key_spans_unparsed(text)),
    }
}

/// A file's text with its keys masked; UTF-16 files as their text, so that
/// no key escapes the mask between NUL bytes.
fn masked_file(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    match Document::parse(FileBytes::new(bytes.to_vec())) {
        Ok(doc) => splice(doc.text(0..doc.bytes().len()), key_spans(&doc)),
        Err(e) => {
            format!("(not shown: {e}; farmkey cannot tell where the keys of such a file are)\n")
        }
    }
}

/// The unified diff of one file, keys masked, made safe for a terminal
/// (the file comes from a server).
pub fn masked_diff(path: &str, before: &[u8], after: &[u8]) -> String {
    let old = masked_file(before);
    let new = masked_file(after);
    let diff = similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(2)
        .header(
            &format!("{path} (now)"),
            &format!("{path} (after the push)"),
        )
        .to_string();
    crate::safe_text::escape_lines(&diff).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_fingerprints() {
        let key = "ab".repeat(32);
        let masked = mask_keys(&format!(
            "<machineKey validationKey=\"{key}\" validation=\"SHA1\"/>"
        ));
        assert!(!masked.contains(&key));
        assert!(masked.contains(&format!("[key {}]", fingerprint(&key))));
        let d = masked_diff(
            "C:\\web.config",
            b"<a>\n</a>\n",
            format!("<a>\n<machineKey validationKey=\"{key}\"/>\n</a>\n").as_bytes(),
        );
        assert!(
            d.contains("+<machineKey validationKey=\"[key ") && !d.contains(&key),
            "{d}"
        );
        // A UTF-16 file: masked as its text.
        let utf16 = |t: &str| {
            let mut b = vec![0xFF, 0xFE];
            b.extend(t.encode_utf16().flat_map(u16::to_le_bytes));
            b
        };
        let d = masked_diff(
            "C:\\web.config",
            &utf16("<a>\n</a>\n"),
            &utf16(&format!(
                "<a>\n<machineKey decryptionKey=\"{key}\"/>\n</a>\n"
            )),
        );
        assert!(
            d.contains("+<machineKey decryptionKey=\"[key ") && !d.contains('\0'),
            "{d}"
        );
        assert!(!d.contains(&key[..8]), "{d}");
    }

    #[test]
    fn a_key_is_masked_however_it_is_spelled() {
        let key = "1A".repeat(32);
        let fp = fingerprint(&key);
        // Character references, decimal and hex, split by entities, with a
        // modifier and white space: one fingerprint, no key text.
        let refs: String = key.chars().map(|c| format!("&#x{:x};", c as u32)).collect();
        let dec: String = key
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 3 == 0 {
                    format!("&#{};", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect();
        for spelled in [refs.clone(), dec, format!(" {}&#10;", &key.to_lowercase())] {
            let text = format!(
                "<configuration><system.web><machineKey validationKey='{spelled}' decryptionKey=\"{spelled},IsolateApps\" /></system.web></configuration>"
            );
            let masked = mask_keys(&text);
            assert_eq!(
                masked.matches(&format!("[key {fp}]")).count(),
                2,
                "{masked}"
            );
            assert!(
                masked.contains(&format!("[key {fp}],IsolateApps")),
                "{masked}"
            );
            for leaked in [&key[..16], &key.to_lowercase()[..16], "&#"] {
                assert!(!masked.contains(leaked), "{leaked}: {masked}");
            }
        }
        // No secret: shown.
        let auto = mask_keys("<machineKey validationKey=\"AutoGenerate,IsolateApps\"/>");
        assert!(auto.contains("\"AutoGenerate,IsolateApps\""), "{auto}");
        // A paste in progress does not parse: masked from the name on.
        let partial = format!(
            "<machineKey ValidationKey = \"{refs}\" decryptionKey='{}",
            &key[..20]
        );
        let masked = mask_keys(&partial);
        assert!(
            !masked.contains("&#x") && !masked.contains(&key[..20]),
            "{masked}"
        );
        assert!(masked.contains(&format!("[key {fp}]")), "{masked}");
        // A key in a comment is caught by the second net.
        let comment = mask_keys(&format!("<a><!-- old: {key} --></a>"));
        assert!(!comment.contains(&key), "{comment}");
        // Also when spelled with references there (comments are not parsed).
        let comment = mask_keys(&format!("<a><!-- validationKey=\"{refs}\" --></a>"));
        assert_eq!(
            comment,
            format!("<a><!-- validationKey=\"[key {fp}]\" --></a>"),
        );
    }

    #[test]
    fn a_diff_is_safe_for_a_terminal() {
        let d = masked_diff(
            "web01:C:\\web.config",
            b"<a x=\"1\"/>\n",
            "<a x=\"\x1b]52;c;Zm9v\x07\u{202e}\"/>\n".as_bytes(),
        );
        assert!(!d.contains('\x1b') && !d.contains('\u{202e}'), "{d:?}");
        assert!(d.contains("\\x1b]52;c;Zm9v\\x07\\u{202e}"), "{d}");
        let broken = masked_diff("f", b"<a/>\n", b"<a>");
        assert!(
            broken.contains("(not shown: not well-formed XML"),
            "{broken}"
        );
    }
}
