//! Unified diffs of planned edits, with every key replaced by its fingerprint.

use crate::keys::fingerprint;

/// Replaces every run of 32 or more hex digits (a key, or part of one) with
/// `[key <fingerprint>]`.
pub fn mask_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 32 {
            out.push_str(&format!("[key {}]", fingerprint(run)));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The unified diff of one file, keys masked (UTF-16 files as their text,
/// so that no key escapes the mask between NUL bytes).
pub fn masked_diff(path: &str, before: &[u8], after: &[u8]) -> String {
    let text_of = crate::config::xml::text_of;
    let old = mask_keys(&text_of(before));
    let new = mask_keys(&text_of(after));
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(2)
        .header(
            &format!("{path} (now)"),
            &format!("{path} (after the push)"),
        )
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_fingerprints() {
        let key = "ab".repeat(32);
        let masked = mask_keys(&format!(
            "<machineKey validationKey=\"{key}\" validation=\"SHA1\"/> deadbeef"
        ));
        assert!(!masked.contains(&key));
        assert!(masked.contains(&format!("[key {}]", fingerprint(&key))));
        assert!(masked.contains("deadbeef"), "short hex stays: {masked}");
        let d = masked_diff(
            "C:\\web.config",
            b"<a>\n</a>\n",
            format!("<a>\n<m k=\"{key}\"/>\n</a>\n").as_bytes(),
        );
        assert!(d.contains("+<m k=\"[key ") && !d.contains(&key), "{d}");
        // A UTF-16 file: masked as its text.
        let utf16 = |t: &str| {
            let mut b = vec![0xFF, 0xFE];
            b.extend(t.encode_utf16().flat_map(u16::to_le_bytes));
            b
        };
        let d = masked_diff(
            "C:\\web.config",
            &utf16("<a>\n</a>\n"),
            &utf16(&format!("<a>\n<m k=\"{key}\"/>\n</a>\n")),
        );
        assert!(d.contains("+<m k=\"[key ") && !d.contains('\0'), "{d}");
        assert!(!d.contains(&key[..8]), "{d}");
    }
}
