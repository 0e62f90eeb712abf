//! A read-only element tree over a configuration file that remembers where
//! every tag and attribute sits in the original bytes, so that the editor can
//! splice new bytes in and leave every other byte alone.
//!
//! Parsing is quick-xml's; this module adds the byte positions and the
//! well-formedness checks quick-xml leaves to its callers (a single root,
//! nothing left open at the end, known entities only). UTF-16 files are
//! parsed as their UTF-8 transcoding, and edits are encoded back into
//! UTF-16: the two are the same text, so every byte outside an edit comes
//! back as it was.

use crate::bytes::FileBytes;
use quick_xml::XmlVersion;
use quick_xml::events::Event;
use quick_xml::events::attributes::Attribute;
use quick_xml::name::QName;
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

pub type ElemId = usize;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why a file could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The bytes are not in the encoding they claim (or no text at all).
    #[error("{0}")]
    Encoding(String),
    #[error("the file is empty")]
    Empty,
    #[error("not well-formed XML at line {line}, column {column}: {message}")]
    Malformed {
        line: usize,
        column: usize,
        message: String,
    },
}

#[derive(Debug, Clone)]
pub struct Attr {
    pub name: String,
    /// The whole `name="value"` text.
    pub span: Range<usize>,
    /// The raw value between the quotes (still escaped).
    pub value_span: Range<usize>,
    pub quote: u8,
}

#[derive(Debug, Clone)]
pub struct Element {
    pub name: String,
    /// `<name ...>` or `<name ... />`.
    pub start_tag: Range<usize>,
    /// `</name>`; `None` for a self-closing element.
    pub end_tag: Option<Range<usize>>,
    pub attrs: Vec<Attr>,
    pub children: Vec<ElemId>,
    pub parent: Option<ElemId>,
}

impl Element {
    /// From the `<` of the start tag to the `>` of the end tag.
    pub fn outer(&self) -> Range<usize> {
        let end = self.end_tag.as_ref().map_or(self.start_tag.end, |e| e.end);
        self.start_tag.start..end
    }

    pub fn is_self_closing(&self) -> bool {
        self.end_tag.is_none()
    }
}

/// How a file's text is stored, as .NET's XML reader detects it: from the
/// byte order mark, else from the first character (`<` in UTF-16), else
/// UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8 { bom: bool },
    Utf16 { big_endian: bool, bom: bool },
}

impl TextEncoding {
    pub fn detect(bytes: &[u8]) -> TextEncoding {
        match bytes {
            [0xFF, 0xFE, ..] => TextEncoding::Utf16 {
                big_endian: false,
                bom: true,
            },
            [0xFE, 0xFF, ..] => TextEncoding::Utf16 {
                big_endian: true,
                bom: true,
            },
            [b'<', 0, ..] => TextEncoding::Utf16 {
                big_endian: false,
                bom: false,
            },
            [0, b'<', ..] => TextEncoding::Utf16 {
                big_endian: true,
                bom: false,
            },
            _ => TextEncoding::Utf8 {
                bom: bytes.starts_with(UTF8_BOM),
            },
        }
    }

    /// For messages: `UTF-16 (little-endian, with byte order mark)`.
    pub fn describe(self) -> String {
        match self {
            TextEncoding::Utf8 { bom } => {
                format!(
                    "UTF-8 ({} byte order mark)",
                    if bom { "with" } else { "no" }
                )
            }
            TextEncoding::Utf16 { big_endian, bom } => format!(
                "UTF-16 ({}-endian, {} byte order mark)",
                if big_endian { "big" } else { "little" },
                if bom { "with" } else { "no" }
            ),
        }
    }

    /// Whether an XML declaration's `encoding` agrees with the bytes, as
    /// .NET's XmlTextReader decides: a UTF-16 name needs UTF-16 bytes
    /// (else "there is no Unicode byte order mark"), and UTF-16 bytes
    /// declared as anything else are decoded as that, which cannot work.
    fn agrees_with(self, declared: &str) -> bool {
        let d = declared.trim().to_ascii_lowercase();
        let either = ["utf-16", "ucs-2", "iso-10646-ucs-2"];
        match self {
            TextEncoding::Utf8 { .. } => {
                !either.contains(&d.as_str())
                    && !["unicode", "utf-16le", "utf-16be", "unicodefffe"].contains(&d.as_str())
            }
            TextEncoding::Utf16 { big_endian, .. } => {
                let own: &[&str] = if big_endian {
                    &["utf-16be", "unicodefffe"]
                } else {
                    &["utf-16le", "unicode"]
                };
                either.contains(&d.as_str()) || own.contains(&d.as_str())
            }
        }
    }

    /// The text (UTF-8) as bytes of this encoding, byte order mark included.
    pub fn encode(self, text: &[u8]) -> Vec<u8> {
        match self {
            TextEncoding::Utf8 { .. } => text.to_vec(),
            TextEncoding::Utf16 { big_endian, bom } => {
                let text = String::from_utf8_lossy(text);
                let mut out = Vec::with_capacity(text.len() * 2 + 2);
                let units = bom
                    .then_some(0xFEFF_u16)
                    .into_iter()
                    .chain(text.encode_utf16());
                for unit in units {
                    out.extend(if big_endian {
                        unit.to_be_bytes()
                    } else {
                        unit.to_le_bytes()
                    });
                }
                out
            }
        }
    }

    /// The UTF-8 text of a file in this encoding (UTF-8 files as they are).
    fn decode(self, bytes: &FileBytes) -> Result<FileBytes, XmlError> {
        let TextEncoding::Utf16 { big_endian, bom } = self else {
            return Ok(bytes.clone());
        };
        let body = &bytes[if bom { 2 } else { 0 }..];
        if !body.len().is_multiple_of(2) {
            return Err(XmlError::Encoding(format!(
                "the file is {} but has an odd number of bytes",
                self.describe()
            )));
        }
        let units = body.chunks_exact(2).map(|c| {
            let pair = [c[0], c[1]];
            if big_endian {
                u16::from_be_bytes(pair)
            } else {
                u16::from_le_bytes(pair)
            }
        });
        let mut text = String::with_capacity(body.len());
        for (i, c) in char::decode_utf16(units).enumerate() {
            match c {
                Ok(c) => text.push(c),
                Err(_) => {
                    return Err(XmlError::Encoding(format!(
                        "the file is {} but holds an unpaired surrogate at character {}",
                        self.describe(),
                        i + 1
                    )));
                }
            }
        }
        Ok(FileBytes::new(text.into_bytes()))
    }
}

/// A file's text for people (diffs), whatever its encoding; bytes that do
/// not decode become U+FFFD, never raw digits between NULs.
pub fn text_of(bytes: &[u8]) -> String {
    let encoding = TextEncoding::detect(bytes);
    match encoding.decode(&FileBytes::new(bytes.to_vec())) {
        Ok(text) => String::from_utf8_lossy(&text).into_owned(),
        Err(_) => match encoding {
            TextEncoding::Utf16 { big_endian, bom } => {
                let body = &bytes[if bom { 2 } else { 0 }..];
                let units: Vec<u16> = body
                    .chunks_exact(2)
                    .map(|c| {
                        let pair = [c[0], c[1]];
                        if big_endian {
                            u16::from_be_bytes(pair)
                        } else {
                            u16::from_le_bytes(pair)
                        }
                    })
                    .collect();
                String::from_utf16_lossy(&units)
            }
            TextEncoding::Utf8 { .. } => String::from_utf8_lossy(bytes).into_owned(),
        },
    }
}

/// A parsed configuration file.
pub struct Document {
    /// The text as UTF-8: the file itself unless it is UTF-16. Every span
    /// points into these bytes.
    bytes: FileBytes,
    encoding: TextEncoding,
    elements: Vec<Element>,
    root: ElemId,
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Document({} elements, {:?})",
            self.elements.len(),
            self.bytes
        )
    }
}

impl Document {
    pub fn parse(bytes: FileBytes) -> Result<Document, XmlError> {
        let encoding = TextEncoding::detect(&bytes);
        let text = encoding.decode(&bytes)?;
        let parsed = parse_elements(&text, encoding)?;
        Ok(Document {
            bytes: text,
            encoding,
            elements: parsed.0,
            root: parsed.1,
        })
    }

    /// The text as UTF-8 (see [`Document::encode`] for the file's bytes).
    pub fn bytes(&self) -> &FileBytes {
        &self.bytes
    }

    pub fn encoding(&self) -> TextEncoding {
        self.encoding
    }

    /// Edited text (UTF-8, spliced from [`Document::bytes`]) as the bytes
    /// of a file in this document's encoding.
    pub fn encode(&self, text: Vec<u8>) -> FileBytes {
        match self.encoding {
            TextEncoding::Utf8 { .. } => FileBytes::new(text),
            other => FileBytes::new(other.encode(&text)),
        }
    }

    pub fn has_bom(&self) -> bool {
        match self.encoding {
            TextEncoding::Utf8 { bom } | TextEncoding::Utf16 { bom, .. } => bom,
        }
    }

    pub fn root(&self) -> ElemId {
        self.root
    }

    pub fn element(&self, id: ElemId) -> &Element {
        &self.elements[id]
    }

    pub fn name(&self, id: ElemId) -> &str {
        &self.elements[id].name
    }

    pub fn parent(&self, id: ElemId) -> Option<ElemId> {
        self.elements[id].parent
    }

    pub fn children(&self, id: ElemId) -> &[ElemId] {
        &self.elements[id].children
    }

    /// Child elements with this name, in document order.
    pub fn children_named<'a>(
        &'a self,
        id: ElemId,
        name: &'a str,
    ) -> impl Iterator<Item = ElemId> + 'a {
        self.children(id)
            .iter()
            .copied()
            .filter(move |&c| self.elements[c].name == name)
    }

    pub fn child_named(&self, id: ElemId, name: &str) -> Option<ElemId> {
        self.children_named(id, name).next()
    }

    pub fn find_attr(&self, id: ElemId, name: &str) -> Option<&Attr> {
        self.elements[id].attrs.iter().find(|a| a.name == name)
    }

    /// An attribute's value as the XML parser of .NET sees it: entities
    /// resolved and white space normalised.
    pub fn attr(&self, id: ElemId, name: &str) -> Option<Cow<'_, str>> {
        let attr = self.find_attr(id, name)?;
        Some(self.attr_value(attr))
    }

    pub fn attr_value(&self, attr: &Attr) -> Cow<'_, str> {
        let raw = self.text(attr.value_span.clone());
        let a = Attribute {
            key: QName(&attr.name),
            value: Cow::Borrowed(raw),
        };
        // Entities were checked while parsing, so this cannot fail.
        match a.normalized_value(XmlVersion::Implicit1_0) {
            Ok(Cow::Borrowed(_)) | Err(_) => Cow::Borrowed(raw),
            Ok(Cow::Owned(s)) => Cow::Owned(s),
        }
    }

    /// The text of a byte range that parsing proved to be UTF-8.
    pub fn text(&self, range: Range<usize>) -> &str {
        std::str::from_utf8(&self.bytes[range]).unwrap_or("")
    }

    /// 1-based line of a byte offset, for messages.
    pub fn line_of(&self, offset: usize) -> usize {
        line_col(&self.bytes, offset).0
    }

    /// Elements from the root down to `id`, as names: `configuration/system.web`.
    pub fn path_of(&self, id: ElemId) -> String {
        let mut names = vec![self.name(id)];
        let mut cur = id;
        while let Some(p) = self.parent(cur) {
            names.push(self.name(p));
            cur = p;
        }
        names.reverse();
        names.join("/")
    }
}

fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

fn malformed(bytes: &[u8], offset: usize, message: impl Into<String>) -> XmlError {
    let (line, column) = line_col(bytes, offset);
    XmlError::Malformed {
        line,
        column,
        message: message.into(),
    }
}

/// Offset of `inner` inside `outer`, when `inner` borrows from it.
fn offset_in(outer: &[u8], inner: &[u8]) -> Option<usize> {
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    (start + inner.len() <= outer.len()).then_some(start)
}

fn parse_elements(
    bytes: &[u8],
    encoding: TextEncoding,
) -> Result<(Vec<Element>, ElemId), XmlError> {
    let body_start = if bytes.starts_with(UTF8_BOM) { 3 } else { 0 };
    let body = &bytes[body_start..];
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(XmlError::Empty);
    }
    if let Err(e) = std::str::from_utf8(body) {
        return Err(malformed(
            bytes,
            body_start + e.valid_up_to(),
            "invalid UTF-8 byte sequence",
        ));
    }

    let mut reader = quick_xml::Reader::from_reader(body);
    let cfg = reader.config_mut();
    cfg.check_end_names = true;
    cfg.check_comments = true;
    cfg.expand_empty_elements = false;
    cfg.trim_text(false);

    let mut elements: Vec<Element> = Vec::new();
    let mut stack: Vec<ElemId> = Vec::new();
    let mut root: Option<ElemId> = None;

    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| {
            let at = reader.error_position() as usize;
            malformed(bytes, body_start + at, e.to_string())
        })?;
        let after = reader.buffer_position() as usize;
        let tag = body_start + before..body_start + after;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let self_closing = matches!(event, Event::Empty(_));
                if stack.is_empty() && root.is_some() {
                    return Err(malformed(bytes, tag.start, "more than one root element"));
                }
                let name = e.name().as_ref().to_string();
                let mut attrs = Vec::new();
                for a in e.attributes().with_checks(true) {
                    let a = a.map_err(|err| malformed(bytes, tag.start, err.to_string()))?;
                    let key_at = offset_in(body, a.key.as_ref().as_bytes())
                        .ok_or_else(|| malformed(bytes, tag.start, "attribute position unknown"))?;
                    let value_at = offset_in(body, a.value.as_bytes())
                        .ok_or_else(|| malformed(bytes, tag.start, "attribute position unknown"))?;
                    let value_end = value_at + a.value.len();
                    let quote = body.get(value_end).copied().unwrap_or(b'"');
                    if let Err(err) = a.normalized_value(XmlVersion::Implicit1_0) {
                        return Err(malformed(
                            bytes,
                            body_start + value_at,
                            format!("bad reference in attribute {}: {err}", a_name(&a)),
                        ));
                    }
                    attrs.push(Attr {
                        name: a_name(&a),
                        span: body_start + key_at..body_start + value_end + 1,
                        value_span: body_start + value_at..body_start + value_end,
                        quote,
                    });
                }
                let id = elements.len();
                let parent = stack.last().copied();
                elements.push(Element {
                    name,
                    start_tag: tag,
                    end_tag: None,
                    attrs,
                    children: Vec::new(),
                    parent,
                });
                match parent {
                    Some(p) => elements[p].children.push(id),
                    None => root = Some(id),
                }
                if !self_closing {
                    stack.push(id);
                }
            }
            Event::End(_) => {
                let id = stack.pop().ok_or_else(|| {
                    malformed(bytes, tag.start, "closing tag without opening tag")
                })?;
                elements[id].end_tag = Some(tag);
            }
            Event::Text(ref t) => {
                if stack.is_empty() && !t.bytes().all(|b| b.is_ascii_whitespace()) {
                    return Err(malformed(bytes, tag.start, "text outside the root element"));
                }
            }
            Event::CData(_) => {
                if stack.is_empty() {
                    return Err(malformed(
                        bytes,
                        tag.start,
                        "CDATA outside the root element",
                    ));
                }
            }
            Event::GeneralRef(ref r) => {
                if stack.is_empty() {
                    return Err(malformed(
                        bytes,
                        tag.start,
                        "reference outside the root element",
                    ));
                }
                let known = match r.is_char_ref() {
                    true => matches!(r.resolve_char_ref(), Ok(Some(_))),
                    false => matches!(&**r, "amp" | "lt" | "gt" | "quot" | "apos"),
                };
                if !known {
                    return Err(malformed(bytes, tag.start, "unknown entity reference"));
                }
            }
            Event::Decl(ref d) => {
                if let Some(Ok(declared)) = d.encoding() {
                    let declared = declared.into_owned();
                    if !encoding.agrees_with(&declared) {
                        return Err(XmlError::Encoding(format!(
                            "the file is {} but its XML declaration says encoding=\"{declared}\"; .NET cannot read it either (save it again in the declared encoding, or correct the declaration)",
                            encoding.describe()
                        )));
                    }
                }
            }
            Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(&open) = stack.last() {
        return Err(malformed(
            bytes,
            bytes.len(),
            format!("element <{}> is never closed", elements[open].name),
        ));
    }
    let root = root.ok_or_else(|| malformed(bytes, bytes.len(), "no root element"))?;
    Ok((elements, root))
}

fn a_name(a: &Attribute<'_>) -> String {
    a.key.as_ref().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Document, XmlError> {
        Document::parse(FileBytes::new(s.as_bytes().to_vec()))
    }

    #[test]
    fn spans_point_at_tags_and_values() {
        let src = "\u{FEFF}<?xml version=\"1.0\"?>\r\n<configuration>\r\n  <system.web>\r\n    <machineKey validationKey='AB&amp;' decryption=\"AES\"/>\r\n  </system.web>\r\n</configuration>\r\n";
        let doc = parse(src).unwrap();
        assert!(doc.has_bom());
        let root = doc.root();
        assert_eq!(doc.name(root), "configuration");
        let sw = doc.child_named(root, "system.web").unwrap();
        let mk = doc.child_named(sw, "machineKey").unwrap();
        let e = doc.element(mk);
        assert!(e.is_self_closing());
        assert!(doc.text(e.start_tag.clone()).starts_with("<machineKey"));
        assert!(doc.text(e.start_tag.clone()).ends_with("/>"));
        let a = doc.find_attr(mk, "validationKey").unwrap();
        assert_eq!(doc.text(a.value_span.clone()), "AB&amp;");
        assert_eq!(a.quote, b'\'');
        assert_eq!(doc.text(a.span.clone()), "validationKey='AB&amp;'");
        assert_eq!(doc.attr(mk, "validationKey").unwrap(), "AB&");
        assert_eq!(
            doc.text(doc.element(sw).end_tag.clone().unwrap()),
            "</system.web>"
        );
        assert_eq!(doc.path_of(mk), "configuration/system.web/machineKey");
        assert_eq!(doc.line_of(e.start_tag.start), 4);
    }

    #[test]
    fn rejects_what_is_not_well_formed() {
        for (src, what) in [
            ("<a><b></a>", "line 1"),
            ("<a>", "never closed"),
            ("<a/><b/>", "more than one root"),
            ("<a x='1' x='2'/>", "line 1"),
            ("<a>&nbsp;</a>", "unknown entity"),
            ("<a x='&bogus;'/>", "bad reference"),
            ("text<a/>", "outside the root"),
            ("   ", "empty"),
        ] {
            let err = parse(src).unwrap_err().to_string();
            assert!(err.contains(what), "{src:?}: {err}");
        }
    }

    fn utf16(text: &str, big_endian: bool, bom: bool) -> FileBytes {
        FileBytes::new(TextEncoding::Utf16 { big_endian, bom }.encode(text.as_bytes()))
    }

    #[test]
    fn utf16_is_read_as_its_text_and_encoded_back() {
        let src = "<?xml version=\"1.0\" encoding=\"utf-16\"?>\r\n<configuration>\r\n  <system.web><machineKey validation=\"SHA1\" /></system.web>\r\n</configuration>\r\n";
        for (big_endian, bom) in [(false, true), (true, true), (false, false), (true, false)] {
            let raw = utf16(src, big_endian, bom);
            let doc = Document::parse(raw.clone()).unwrap();
            assert_eq!(doc.encoding(), TextEncoding::Utf16 { big_endian, bom });
            assert_eq!(&doc.bytes()[..], src.as_bytes());
            let web = doc.child_named(doc.root(), "system.web").unwrap();
            let mk = doc.child_named(web, "machineKey").unwrap();
            assert_eq!(doc.attr(mk, "validation").unwrap(), "SHA1");
            assert_eq!(doc.line_of(doc.element(mk).start_tag.start), 3);
            assert_eq!(
                doc.encode(doc.bytes().to_vec()),
                raw,
                "round trip is byte-identical"
            );
        }
        // No declaration at all is fine too; "unicode" means little-endian.
        assert!(Document::parse(utf16("<a/>", true, true)).is_ok());
        assert!(
            Document::parse(utf16(
                "<?xml version=\"1.0\" encoding=\"unicode\"?><a/>",
                false,
                true
            ))
            .is_ok()
        );
    }

    #[test]
    fn bytes_that_contradict_the_declaration_are_refused() {
        let says_utf8 = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration/>";
        let err = Document::parse(utf16(says_utf8, false, true)).unwrap_err();
        assert!(
            matches!(&err, XmlError::Encoding(m) if m.contains("UTF-16 (little-endian, with byte order mark)") && m.contains("encoding=\"utf-8\"")),
            "{err}"
        );
        let says_utf16 = "<?xml version=\"1.0\" encoding=\"utf-16\"?><configuration/>";
        let err = parse(says_utf16).unwrap_err();
        assert!(
            matches!(&err, XmlError::Encoding(m) if m.contains("UTF-8")),
            "{err}"
        );
        let err = Document::parse(utf16(
            "<?xml version=\"1.0\" encoding=\"unicode\"?><a/>",
            true,
            true,
        ))
        .unwrap_err();
        assert!(matches!(err, XmlError::Encoding(_)));
        let odd = FileBytes::new(b"\xFF\xFE<\0a\0/\0>".to_vec());
        assert!(
            matches!(Document::parse(odd).unwrap_err(), XmlError::Encoding(m) if m.contains("odd"))
        );
        let lone = FileBytes::new(b"\xFF\xFE<\0a\0\x00\xD8/\0>\0".to_vec());
        assert!(
            matches!(Document::parse(lone).unwrap_err(), XmlError::Encoding(m) if m.contains("surrogate"))
        );
    }

    #[test]
    fn error_positions_are_lines_of_the_file() {
        let err = parse("<a>\n  <b>\n</a>\n").unwrap_err();
        match err {
            XmlError::Malformed { line, .. } => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
    }
}
