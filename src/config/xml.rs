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

/// Byte positions are kept as `u32` (a file over 4 GiB is refused): a
/// file of many small elements then takes a few times its size in memory,
/// not ten.
type Pos = u32;
const NO_POS: Pos = Pos::MAX;

fn range(start: Pos, end: Pos) -> Range<usize> {
    start as usize..end as usize
}

#[derive(Debug, Clone)]
pub struct Attr {
    name: Pos,
    name_end: Pos,
    value: Pos,
    value_end: Pos,
    quote: u8,
}

impl Attr {
    /// The whole `name="value"` text.
    pub fn span(&self) -> Range<usize> {
        range(self.name, self.value_end + 1)
    }

    /// The raw value between the quotes (still escaped).
    pub fn value_span(&self) -> Range<usize> {
        range(self.value, self.value_end)
    }

    pub fn quote(&self) -> u8 {
        self.quote
    }

    pub fn name_span(&self) -> Range<usize> {
        range(self.name, self.name_end)
    }
}

#[derive(Debug, Clone)]
pub struct Element {
    start: Pos,
    start_end: Pos,
    /// `NO_POS` for a self-closing element.
    end: Pos,
    end_end: Pos,
    /// The name follows the `<` of the start tag.
    name_len: Pos,
    /// Its attributes in the document's list.
    first_attr: Pos,
    attr_count: Pos,
    parent: Pos,
}

impl Element {
    /// `<name ...>` or `<name ... />`.
    pub fn start_tag(&self) -> Range<usize> {
        range(self.start, self.start_end)
    }

    /// `</name>`; `None` for a self-closing element.
    pub fn end_tag(&self) -> Option<Range<usize>> {
        (self.end != NO_POS).then(|| range(self.end, self.end_end))
    }

    /// From the `<` of the start tag to the `>` of the end tag.
    pub fn outer(&self) -> Range<usize> {
        let end = self.end_tag().map_or(self.start_end, |e| e.end as Pos);
        range(self.start, end)
    }

    pub fn is_self_closing(&self) -> bool {
        self.end == NO_POS
    }

    pub fn parent(&self) -> Option<ElemId> {
        (self.parent != NO_POS).then_some(self.parent as ElemId)
    }

    pub fn name_span(&self) -> Range<usize> {
        range(self.start + 1, self.start + 1 + self.name_len)
    }

    fn attrs(&self) -> Range<usize> {
        range(self.first_attr, self.first_attr + self.attr_count)
    }
}

/// How a file's text is stored, as .NET's XML reader detects it: from the
/// byte order mark, else from the first character (`<` in UTF-16), else
/// UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8 {
        bom: bool,
    },
    Utf16 {
        big_endian: bool,
        bom: bool,
    },
    /// A single-byte code page the XML declaration names (no byte order
    /// mark): .NET's XmlTextReader switches to it, so farmkey does too.
    Legacy(CodePage),
}

/// The legacy code pages farmkey reads: what Notepad's "ANSI" writes on a
/// Western European Windows, and Latin-1. Every byte maps to one character
/// and back, so an edit leaves every other byte as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePage {
    Windows1252,
    Latin1,
}

/// Windows-1252's characters for 0x80..=0x9F (the five bytes it leaves
/// undefined map to the control characters of the same value, as .NET's
/// code page 1252 does).
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}', '\u{178}',
];

impl CodePage {
    /// The code page an `encoding` name means (.NET compares names without
    /// regard to case).
    fn named(name: &str) -> Option<CodePage> {
        let n = name.trim().to_ascii_lowercase();
        match n.as_str() {
            "windows-1252" | "cp1252" | "x-ansi" => Some(CodePage::Windows1252),
            "iso-8859-1" | "iso_8859-1" | "iso_8859-1:1987" | "latin1" | "l1" | "cp819"
            | "ibm819" | "csisolatin1" | "iso-ir-100" => Some(CodePage::Latin1),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CodePage::Windows1252 => "windows-1252",
            CodePage::Latin1 => "ISO-8859-1",
        }
    }

    fn decode(self, byte: u8) -> char {
        match (self, byte) {
            (CodePage::Windows1252, 0x80..=0x9F) => CP1252_HIGH[usize::from(byte - 0x80)],
            _ => char::from(byte),
        }
    }

    /// `None` for a character the code page does not have.
    fn encode(self, c: char) -> Option<u8> {
        if let Some(i) = CP1252_HIGH.iter().position(|&h| h == c)
            && self == CodePage::Windows1252
        {
            return u8::try_from(0x80 + i).ok();
        }
        match u8::try_from(u32::from(c)) {
            Ok(b) if self == CodePage::Windows1252 && (0x80..=0x9F).contains(&b) => None,
            Ok(b) => Some(b),
            Err(_) => None,
        }
    }
}

/// The `encoding` of an XML declaration at the start of ASCII-compatible
/// bytes, if there is one.
fn declared_encoding(bytes: &[u8]) -> Option<&str> {
    let head = bytes.get(..bytes.len().min(200))?;
    let decl = head.strip_prefix(b"<?xml")?;
    let end = decl.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&decl[..end]).ok()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let value = &rest[1..];
    value.find(quote).map(|e| &value[..e])
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
            _ if !bytes.starts_with(UTF8_BOM) => {
                match declared_encoding(bytes).and_then(CodePage::named) {
                    Some(page) => TextEncoding::Legacy(page),
                    None => TextEncoding::Utf8 { bom: false },
                }
            }
            _ => TextEncoding::Utf8 { bom: true },
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
            TextEncoding::Legacy(page) => page.name().to_string(),
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
            TextEncoding::Legacy(page) => CodePage::named(&d) == Some(page),
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
            // The text came from these bytes and edits add ASCII: every
            // character maps back ('?' would only stand for one that cannot).
            TextEncoding::Legacy(page) => String::from_utf8_lossy(text)
                .chars()
                .map(|c| page.encode(c).unwrap_or(b'?'))
                .collect(),
        }
    }

    /// The UTF-8 text of a file in this encoding (UTF-8 files as they are).
    fn decode(self, bytes: &FileBytes) -> Result<FileBytes, XmlError> {
        let (big_endian, bom) = match self {
            TextEncoding::Utf8 { .. } => return Ok(bytes.clone()),
            TextEncoding::Legacy(page) => {
                let text: String = bytes.iter().map(|&b| page.decode(b)).collect();
                return Ok(FileBytes::new(text.into_bytes()));
            }
            TextEncoding::Utf16 { big_endian, bom } => (big_endian, bom),
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

/// A parsed configuration file.
pub struct Document {
    /// The text as UTF-8: the file itself unless it is UTF-16. Every span
    /// points into these bytes.
    bytes: FileBytes,
    encoding: TextEncoding,
    /// Elements in document order; names and attributes point into
    /// `bytes` and one shared list, so that a file of many elements costs
    /// few allocations.
    elements: Vec<Element>,
    attrs: Vec<Attr>,
    /// The children of element `i` are `children[child_starts[i]..child_starts[i + 1]]`.
    children: Vec<ElemId>,
    child_starts: Vec<usize>,
    root: ElemId,
    /// Lines begun before every [`LINE_STRIDE`] bytes, made on the first
    /// [`Document::line_of`]: a line number costs at most one stride, so
    /// naming the lines of many elements stays linear.
    lines_at: std::sync::OnceLock<Vec<usize>>,
}

/// Bytes between two entries of [`Document::lines_at`].
const LINE_STRIDE: usize = 4096;

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
        let (children, child_starts) = children_lists(&parsed.elements);
        Ok(Document {
            bytes: text,
            encoding,
            elements: parsed.elements,
            attrs: parsed.attrs,
            children,
            child_starts,
            root: parsed.root,
            lines_at: std::sync::OnceLock::new(),
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
            TextEncoding::Legacy(_) => false,
        }
    }

    pub fn root(&self) -> ElemId {
        self.root
    }

    /// Every element, in document order.
    pub fn element_ids(&self) -> Range<ElemId> {
        0..self.elements.len()
    }

    pub fn element(&self, id: ElemId) -> &Element {
        &self.elements[id]
    }

    pub fn name(&self, id: ElemId) -> &str {
        self.text(self.elements[id].name_span())
    }

    /// The attributes of an element, in the order written.
    pub fn attrs(&self, id: ElemId) -> &[Attr] {
        &self.attrs[self.elements[id].attrs()]
    }

    pub fn attr_name(&self, attr: &Attr) -> &str {
        self.text(attr.name_span())
    }

    pub fn parent(&self, id: ElemId) -> Option<ElemId> {
        self.elements[id].parent()
    }

    pub fn children(&self, id: ElemId) -> &[ElemId] {
        &self.children[self.child_starts[id]..self.child_starts[id + 1]]
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
            .filter(move |&c| self.name(c) == name)
    }

    pub fn child_named(&self, id: ElemId, name: &str) -> Option<ElemId> {
        self.children_named(id, name).next()
    }

    pub fn find_attr(&self, id: ElemId, name: &str) -> Option<&Attr> {
        self.attrs(id).iter().find(|a| self.attr_name(a) == name)
    }

    /// An attribute's value as the XML parser of .NET sees it: entities
    /// resolved and white space normalised.
    pub fn attr(&self, id: ElemId, name: &str) -> Option<Cow<'_, str>> {
        let attr = self.find_attr(id, name)?;
        Some(self.attr_value(attr))
    }

    pub fn attr_value(&self, attr: &Attr) -> Cow<'_, str> {
        let raw = self.text(attr.value_span());
        let a = Attribute {
            key: QName(self.attr_name(attr)),
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
        let bytes = &self.bytes[..];
        let offset = offset.min(bytes.len());
        let table = self.lines_at.get_or_init(|| {
            let mut newlines = 0;
            let mut table = Vec::with_capacity(bytes.len() / LINE_STRIDE + 2);
            table.push(0);
            for chunk in bytes.chunks(LINE_STRIDE) {
                newlines += chunk.iter().filter(|&&b| b == b'\n').count();
                table.push(newlines);
            }
            table
        });
        let stride = offset / LINE_STRIDE;
        let from = stride * LINE_STRIDE;
        table[stride] + bytes[from..offset].iter().filter(|&&b| b == b'\n').count() + 1
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

/// Every parse error is made here: quick-xml's messages quote the file
/// (an entity's name, a closing tag), which may be a key.
fn malformed(bytes: &[u8], offset: usize, message: impl Into<String>) -> XmlError {
    let (line, column) = line_col(bytes, offset);
    let message = message.into();
    XmlError::Malformed {
        line,
        column,
        message: crate::keys::mask_key_text(&message).into_owned(),
    }
}

/// Offset of `inner` inside `outer`, when `inner` borrows from it.
fn offset_in(outer: &[u8], inner: &[u8]) -> Option<usize> {
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    (start + inner.len() <= outer.len()).then_some(start)
}

/// What parsing finds, before the children lists are made.
struct Parsed {
    elements: Vec<Element>,
    attrs: Vec<Attr>,
    root: ElemId,
}

/// Every element's children in document order, as one list and where each
/// element's part of it starts (elements come in document order, so a
/// counting pass and a filling pass make it).
fn children_lists(elements: &[Element]) -> (Vec<ElemId>, Vec<usize>) {
    let mut starts = vec![0usize; elements.len() + 1];
    for e in elements {
        if let Some(p) = e.parent() {
            starts[p + 1] += 1;
        }
    }
    for i in 0..elements.len() {
        starts[i + 1] += starts[i];
    }
    let mut next = starts.clone();
    let mut children = vec![0; starts[elements.len()]];
    for (id, e) in elements.iter().enumerate() {
        if let Some(p) = e.parent() {
            children[next[p]] = id;
            next[p] += 1;
        }
    }
    (children, starts)
}

/// Whether two attributes of one element share a name: pairwise for a
/// few, by hashing for many (an element of 100,000 attributes must not
/// take quadratic time).
fn duplicate_attr<'b>(bytes: &'b [u8], attrs: &[Attr]) -> Option<&'b [u8]> {
    let name = |a: &Attr| &bytes[a.name_span()];
    if attrs.len() <= 16 {
        for (i, a) in attrs.iter().enumerate() {
            if attrs[..i].iter().any(|b| name(a) == name(b)) {
                return Some(name(a));
            }
        }
        return None;
    }
    let mut seen = std::collections::HashSet::with_capacity(attrs.len());
    attrs.iter().map(name).find(|n| !seen.insert(*n))
}

fn parse_elements(bytes: &[u8], encoding: TextEncoding) -> Result<Parsed, XmlError> {
    if bytes.len() >= NO_POS as usize {
        return Err(XmlError::Encoding(format!(
            "the file is {} bytes: farmkey reads configuration files below 4 GiB",
            bytes.len()
        )));
    }
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

    // Room for every element and attribute at once (each has its `<` or
    // its `=`), so that the lists of a large file are never copied while
    // they grow; room not used is never touched.
    let (tags, equals) = count_tags_and_equals(body);
    let mut elements: Vec<Element> = Vec::with_capacity(tags);
    let mut attrs: Vec<Attr> = Vec::with_capacity(equals);
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
                let pos = |at: usize| (body_start + at) as Pos;
                let first_attr = attrs.len();
                // Duplicates are found below, in linear time.
                for a in e.attributes().with_checks(false) {
                    let a = a.map_err(|err| malformed(bytes, tag.start, err.to_string()))?;
                    let key = a.key.as_ref();
                    let key_at = offset_in(body, key.as_bytes())
                        .ok_or_else(|| malformed(bytes, tag.start, "attribute position unknown"))?;
                    let value_at = offset_in(body, a.value.as_bytes())
                        .ok_or_else(|| malformed(bytes, tag.start, "attribute position unknown"))?;
                    let value_end = value_at + a.value.len();
                    let quote = body.get(value_end).copied().unwrap_or(b'"');
                    // Only a reference can make a value fail.
                    if a.value.contains('&')
                        && let Err(err) = a.normalized_value(XmlVersion::Implicit1_0)
                    {
                        return Err(malformed(
                            bytes,
                            body_start + value_at,
                            format!("bad reference in attribute {}: {err}", a_name(&a)),
                        ));
                    }
                    attrs.push(Attr {
                        name: pos(key_at),
                        name_end: pos(key_at + key.len()),
                        value: pos(value_at),
                        value_end: pos(value_end),
                        quote,
                    });
                }
                if let Some(dup) = duplicate_attr(bytes, &attrs[first_attr..]) {
                    return Err(malformed(
                        bytes,
                        tag.start,
                        format!("attribute {} is given twice", String::from_utf8_lossy(dup)),
                    ));
                }
                let id = elements.len();
                let parent = stack.last().copied();
                elements.push(Element {
                    start: pos(before),
                    start_end: pos(after),
                    end: NO_POS,
                    end_end: NO_POS,
                    name_len: e.name().as_ref().len() as Pos,
                    first_attr: first_attr as Pos,
                    attr_count: (attrs.len() - first_attr) as Pos,
                    parent: parent.map_or(NO_POS, |p| p as Pos),
                });
                if parent.is_none() {
                    root = Some(id);
                }
                if !self_closing {
                    stack.push(id);
                }
            }
            Event::End(_) => {
                let id = stack.pop().ok_or_else(|| {
                    malformed(bytes, tag.start, "closing tag without opening tag")
                })?;
                elements[id].end = tag.start as Pos;
                elements[id].end_end = tag.end as Pos;
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
                    let declared = crate::keys::mask_key_text(&declared).into_owned();
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
            format!(
                "element <{}> is never closed",
                String::from_utf8_lossy(&bytes[elements[open].name_span()])
            ),
        ));
    }
    let root = root.ok_or_else(|| malformed(bytes, bytes.len(), "no root element"))?;
    Ok(Parsed {
        elements,
        attrs,
        root,
    })
}

/// How many `<` and `=` a text holds, in one pass (small counters per
/// block, which the compiler turns into vector instructions).
fn count_tags_and_equals(text: &[u8]) -> (usize, usize) {
    let (mut tags, mut equals) = (0, 0);
    for block in text.chunks(255) {
        let (t, e) = block.iter().fold((0u8, 0u8), |(t, e), &b| {
            (t + u8::from(b == b'<'), e + u8::from(b == b'='))
        });
        tags += usize::from(t);
        equals += usize::from(e);
    }
    (tags, equals)
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
        assert!(doc.text(e.start_tag()).starts_with("<machineKey"));
        assert!(doc.text(e.start_tag()).ends_with("/>"));
        let a = doc.find_attr(mk, "validationKey").unwrap();
        assert_eq!(doc.text(a.value_span()), "AB&amp;");
        assert_eq!(a.quote(), b'\'');
        assert_eq!(doc.text(a.span()), "validationKey='AB&amp;'");
        assert_eq!(doc.attr(mk, "validationKey").unwrap(), "AB&");
        assert_eq!(
            doc.text(doc.element(sw).end_tag().unwrap()),
            "</system.web>"
        );
        assert_eq!(doc.path_of(mk), "configuration/system.web/machineKey");
        assert_eq!(doc.line_of(e.start_tag().start), 4);
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
            assert_eq!(doc.line_of(doc.element(mk).start_tag().start), 3);
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
    fn a_repeated_attribute_is_refused_among_few_or_many() {
        for count in [3, 40] {
            let mut src = String::from("<a");
            for i in 0..count {
                src.push_str(&format!(" k{i}=\"{i}\""));
            }
            assert!(parse(&format!("{src}/>")).is_ok());
            let err = parse(&format!("{src} k1=\"again\"/>")).unwrap_err();
            assert!(
                err.to_string().contains("attribute k1 is given twice"),
                "{err}"
            );
        }
    }

    #[test]
    fn names_and_children_are_read_from_the_text() {
        let doc = parse("<r><a x='1'/><b><c/></b><a/></r>").unwrap();
        let kids: Vec<&str> = doc
            .children(doc.root())
            .iter()
            .map(|&c| doc.name(c))
            .collect();
        assert_eq!(kids, ["a", "b", "a"]);
        let b = doc.child_named(doc.root(), "b").unwrap();
        let c = doc.children(b)[0];
        assert_eq!((doc.name(c), doc.parent(c)), ("c", Some(b)));
        let a = doc.child_named(doc.root(), "a").unwrap();
        assert_eq!(doc.attrs(a).len(), 1);
        assert_eq!(doc.attr_name(&doc.attrs(a)[0]), "x");
        assert!(doc.children(c).is_empty() && doc.element(c).is_self_closing());
    }

    #[test]
    fn line_numbers_hold_across_strides() {
        let mut src = String::from("<a>");
        for i in 0..3000 {
            src.push_str(if i % 3 == 0 { "\n<b/>" } else { "<c/>" });
        }
        src.push_str("</a>");
        let doc = parse(&src).unwrap();
        for offset in [0, 1, 4095, 4096, 4097, 8191, 8192, src.len() - 1, src.len()] {
            let naive = src.as_bytes()[..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            assert_eq!(doc.line_of(offset), naive, "offset {offset}");
        }
    }

    #[test]
    fn parse_errors_never_quote_a_key() {
        let key = "A1B2C3D4E5F6".repeat(11);
        for text in [
            format!("<a><m validationKey=\"x&A{key};\"/></a>"),
            format!("<system.web><m/></A{key}>"),
            format!("<a {key}=\"1\" {key}=\"2\"/>"),
            format!("<a><{key}>"),
        ] {
            let err = parse(&text).unwrap_err().to_string();
            assert!(!err.contains(&key[..16]), "{err}");
            assert!(err.contains("[key "), "{err}");
        }
        // A UTF-16 file whose declaration names a "key" as its encoding.
        let mut utf16 = vec![0xFF, 0xFE];
        let text = format!("<?xml version=\"1.0\" encoding=\"{key}\"?><a/>");
        utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let err = Document::parse(FileBytes::new(utf16))
            .unwrap_err()
            .to_string();
        assert!(!err.contains(&key[..16]) && err.contains("[key "), "{err}");
    }

    #[test]
    fn error_positions_are_lines_of_the_file() {
        let err = parse("<a>\n  <b>\n</a>\n").unwrap_err();
        match err {
            XmlError::Malformed { line, .. } => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn legacy_code_pages_are_read_as_dotnet_reads_them() {
        // Notepad's "ANSI" on a Western European Windows: windows-1252,
        // declared so. 0x80 is the euro sign there, U+0080 in Latin-1.
        let mut bytes =
            b"<?xml version=\"1.0\" encoding=\"Windows-1252\"?>\n<configuration><!-- caf\xe9 \x80 \x81 --><a v=\"\xe9\"/></configuration>"
                .to_vec();
        let doc = Document::parse(FileBytes::new(bytes.clone())).unwrap();
        assert_eq!(doc.encoding(), TextEncoding::Legacy(CodePage::Windows1252));
        let text = String::from_utf8(doc.bytes().to_vec()).unwrap();
        assert!(text.contains("café € \u{81}"), "{text}");
        let a = doc.children(doc.root())[0];
        assert_eq!(doc.attr(a, "v").as_deref(), Some("é"));
        // Back to the same bytes: an edit changes nothing else.
        assert_eq!(&doc.encode(doc.bytes().to_vec())[..], &bytes[..]);
        bytes.splice(30..42, b"iso-8859-1".iter().copied());
        let doc = Document::parse(FileBytes::new(bytes.clone())).unwrap();
        assert_eq!(doc.encoding(), TextEncoding::Legacy(CodePage::Latin1));
        assert!(
            String::from_utf8(doc.bytes().to_vec())
                .unwrap()
                .contains("café \u{80}")
        );
        assert_eq!(&doc.encode(doc.bytes().to_vec())[..], &bytes[..]);
        // Without the declaration the bytes are UTF-8, and these are not.
        let plain = b"<configuration><!-- caf\xe9 --></configuration>".to_vec();
        assert!(Document::parse(FileBytes::new(plain)).is_err());
    }
}
