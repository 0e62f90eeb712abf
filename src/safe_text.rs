//! Text that did not come from farmkey, made safe for a terminal.
//!
//! Site names, paths and attribute values come from servers an attacker
//! may control. Printed as they are, a control character starts an escape
//! sequence (OSC 52 writes the operator's clipboard, `ESC[2J` clears the
//! screen, OSC 0 sets the window title), and a bidirectional override or an
//! invisible character makes text read other than it is. Every printer of
//! the command line passes such text through [`escape`] (or
//! [`escape_lines`]), which shows those characters as visible escapes;
//! the console drops them ([`is_unsafe`]). JSON output is exact: it has its
//! own escaping.

use std::borrow::Cow;

/// Whether a character must not reach a terminal as it is: C0 and C1
/// control characters and DEL, and invisible formatting characters that
/// reorder, hide or break text: bidirectional marks, embeddings, overrides
/// and isolates, zero-width characters, line and paragraph separators, the
/// byte order mark, interlinear annotations, tag characters.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1F}' | '\u{7F}'..='\u{9F}'
        | '\u{AD}' // soft hyphen
        | '\u{61C}' // Arabic letter mark
        | '\u{180E}' // Mongolian vowel separator
        | '\u{200B}'..='\u{200F}' // zero-width characters, LRM, RLM
        | '\u{2028}'..='\u{202E}' // line and paragraph separators, LRE..RLO
        | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, LRI..PDI
        | '\u{FEFF}' // zero-width no-break space
        | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
        | '\u{E0000}'..='\u{E007F}' // tag characters
    )
}

/// One line of text that did not come from farmkey, made safe to print:
/// every unsafe character (a line break too) becomes a visible escape, `\n`,
/// `\t`, `\x1b` or `\u{202e}`. Safe text comes back as it is.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_keeping(text, false)
}

/// Several lines of such text: each line made safe as [`escape`] does, the
/// line breaks (`\n`, and the `\r` of a `\r\n`) and tabs kept.
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    escape_keeping(text, true)
}

fn escape_keeping(text: &str, lines: bool) -> Cow<'_, str> {
    let kept = |i: usize, c: char| {
        lines
            && match c {
                '\n' | '\t' => true,
                '\r' => text[i + 1..].starts_with('\n'),
                _ => false,
            }
    };
    if !text
        .char_indices()
        .any(|(i, c)| is_unsafe(c) && !kept(i, c))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (i, c) in text.char_indices() {
        if !is_unsafe(c) || kept(i, c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_become_visible_and_plain_text_stays() {
        let hostile = "Flow\u{1b}]52;c;cm0gLXJmIH4=\u{7}time\u{1b}[2J\u{1b}]0;pwned\u{9c}";
        let safe = escape(hostile);
        assert_eq!(
            safe,
            "Flow\\x1b]52;c;cm0gLXJmIH4=\\x07time\\x1b[2J\\x1b]0;pwned\\u{9c}"
        );
        assert!(!safe.chars().any(is_unsafe));
        assert_eq!(
            escape("gro\u{202e}txt.exe\u{2066}"),
            "gro\\u{202e}txt.exe\\u{2066}"
        );
        assert_eq!(escape("a\nb\tc\r"), "a\\nb\\tc\\r");
        assert_eq!(escape("a\u{7f}\u{200b}b"), "a\\x7f\\u{200b}b");
        for plain in [
            "C:\\inetpub\\Flow time\\web.config",
            "Process TOGO",
            "Ünïcödé ✓ 名前",
        ] {
            assert!(matches!(escape(plain), Cow::Borrowed(_)), "{plain}");
        }
    }

    #[test]
    fn lines_keep_their_breaks_and_tabs() {
        let text = "one\r\n\ttwo\u{1b}[2J\nthree\rover\n";
        assert_eq!(escape_lines(text), "one\r\n\ttwo\\x1b[2J\nthree\\rover\n");
        assert!(matches!(escape_lines("a\r\nb\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn nothing_unsafe_survives_any_input() {
        for c in (0u32..0x11_0000).filter_map(char::from_u32) {
            let s = format!("x{c}y");
            for out in [escape(&s), escape_lines(&s)] {
                assert!(
                    !out.chars()
                        .any(|c| is_unsafe(c) && !matches!(c, '\n' | '\t')),
                    "{c:?}"
                );
            }
            assert!(!escape(&s).chars().any(is_unsafe), "{c:?}");
        }
    }
}
