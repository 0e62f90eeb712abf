//! The `web.config` editor: sets `<machineKey>` and the session-token handler
//! swap by splicing bytes, so that every byte outside the edited elements
//! (BOM, line endings, indentation, quotes, comments, attribute order) stays
//! as it was.

use super::effective::{self, Effective};
use super::machine_key::{self, ElementFault};
use super::problem::{Problem, bounded};
use super::record::{ConfigFile, Layer, Scope, containers};
use super::section::{External, NoSourceFiles, SourceFiles, is_encrypted};
use super::wif::elements::{
    self, IDENTITY_MODEL_SECTION_TYPE, MACHINE_KEY_HANDLER_TYPE, SESSION_HANDLER,
    SESSION_HANDLER_TYPE, short_type_name,
};
use super::wif::{HandlerState, declares_identity_model};
use super::xml::{Document, ElemId, XmlError};
use crate::bytes::FileBytes;
use crate::keys::{CompatibilityMode, KeySet, KeySetProblem, MachineKeyEnum, joined};
use crate::paths::RemotePath;
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// What to change in one file.
#[derive(Debug, Clone, Default)]
pub struct EditRequest {
    pub machine_key: Option<KeySet>,
    /// Also set `compatibilityMode` (left alone when `None`).
    pub compatibility_mode: Option<CompatibilityMode>,
    /// Add the MachineKeySessionSecurityTokenHandler swap.
    pub handler_swap: bool,
    /// The `<identityConfiguration>` the swap goes into (empty: the unnamed
    /// one): the scan's choice from the whole chain
    /// ([`ConfigurationInUse`](super::wif::ConfigurationInUse)), which
    /// one file alone cannot tell.
    pub identity_in_use: String,
    /// `system.identityModel` is already registered by a file above this one
    /// (machine.config, root or parent web.config): registering it again
    /// would be an error.
    pub identity_section_declared_above: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    Xml(#[from] XmlError),
    #[error(
        "<machineKey> at line {line} is encrypted (configProtectionProvider); decrypt it on the server (aspnet_regiis -pdf) before farmkey can set keys"
    )]
    EncryptedMachineKey { line: usize },
    #[error(
        "<system.identityModel> at line {line} is encrypted; decrypt it on the server before farmkey can change its handlers"
    )]
    EncryptedIdentityModel { line: usize },
    #[error(
        "<{section}> at line {line} keeps its content in {source_file:?} (configSource); that file is the one to edit"
    )]
    ExternalSource {
        section: String,
        line: usize,
        source_file: String,
    },
    /// The `<machineKey>` to edit is one ASP.NET refuses, in a way farmkey
    /// does not fix by itself (it fixes an attribute spelled in another
    /// case in place).
    #[error(
        "<machineKey> at line {line} {}: ASP.NET refuses this element ({}); correct it on the server first (farmkey does not guess what was meant, nor writes beside it)",
        refused_element_text(.fault),
        .fault.resource()
    )]
    RefusedMachineKey { line: usize, fault: ElementFault },
    /// A handler entry of the collection the swap goes into that ASP.NET
    /// refuses: no `type` (`spelled`: the attribute in another case).
    #[error(
        "<{element}> at line {line} of <securityTokenHandlers> has no type attribute{}: ASP.NET refuses the section (Config_base_required_attribute_missing); correct it on the server first (farmkey does not write a swap beside it)",
        .spelled.as_ref().map(|s| format!(" ({s} is another attribute: names are case-sensitive)")).unwrap_or_default()
    )]
    UntypedHandler {
        line: usize,
        element: String,
        spelled: Option<String>,
    },
    /// A key set to write that ASP.NET would refuse.
    #[error("the key set is not usable: {}", joined(.0))]
    UnusableKeys(Vec<KeySetProblem>),
    /// A configSource file whose root is not the section it holds.
    #[error("its root element is <{found}> where ASP.NET expects <{expected}>")]
    WrongRoot {
        found: String,
        expected: &'static str,
    },
    /// A named configuration is never created: with no element of that
    /// name anywhere WIF throws ID7012, and with one in a parent level a
    /// second one throws ID7029; either way more than handlers would change.
    #[error(
        "<identityConfiguration name=\"{name}\"> is not in this file, and farmkey does not create a named configuration (identityConfigurationName naming no element makes WIF fail at start-up with ID7012)"
    )]
    NamedConfigurationElsewhere { name: String },
    #[error("the edited file does not read back as asked: {0}")]
    Verification(ReadBack),
}

/// How an edited file, read back as ASP.NET reads it, differs from what was
/// asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadBack {
    DoesNotParse(XmlError),
    /// ASP.NET refuses it.
    Refused(Problem),
    /// This `<machineKey>` attribute does not hold what was asked.
    Attribute(&'static str),
    /// The session-token handler is not the MachineKey one.
    Handler(HandlerState),
    /// The swap was asked, but `system.identityModel` is not registered.
    NotRegistered,
    /// The `<machineKey>` is still one ConfigurationElement refuses.
    RefusedElement {
        line: usize,
        fault: ElementFault,
    },
}

impl fmt::Display for ReadBack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadBack::DoesNotParse(e) => write!(f, "result does not parse: {e}"),
            ReadBack::Refused(problem) => write!(f, "{problem}"),
            ReadBack::Attribute(name) => f.write_str(name),
            ReadBack::Handler(state) => write!(f, "session-token handler is {}", state.name()),
            ReadBack::NotRegistered => {
                f.write_str("system.identityModel is not registered in <configSections>")
            }
            ReadBack::RefusedElement { line, fault } => write!(
                f,
                "<machineKey> at line {line} is still one ASP.NET refuses ({})",
                fault.resource()
            ),
        }
    }
}

fn refused_element_text(fault: &ElementFault) -> String {
    match fault {
        ElementFault::UnrecognizedAttribute {
            name,
            meant: Some(meant),
        } => format!(
            "has both {meant} and {}, which ASP.NET does not recognise (names are case-sensitive)",
            bounded(name)
        ),
        ElementFault::UnrecognizedAttribute { name, meant: None } => format!(
            "has the attribute {}, which <machineKey> does not have",
            bounded(name)
        ),
        ElementFault::UnrecognizedElement { name } => {
            format!(
                "holds the element <{}>, which it does not have",
                bounded(name)
            )
        }
        ElementFault::TextContent => "holds text".to_string(),
        ElementFault::InvalidLock {
            attribute,
            item: Some(item),
            ..
        } => format!(
            "has {attribute} naming {}, which it cannot lock",
            bounded(item)
        ),
        ElementFault::InvalidLock {
            attribute,
            item: None,
            ..
        } => format!("has an empty {attribute}"),
    }
}

/// The result of an edit.
#[derive(Debug, Clone)]
pub struct Edited {
    pub bytes: FileBytes,
    /// False when the file already held everything asked for.
    pub changed: bool,
}

/// A new, empty `web.config` in the style IIS Manager writes (BOM, CRLF),
/// for an application that has none yet.
pub fn empty_web_config() -> FileBytes {
    FileBytes::new(
        b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<configuration>\r\n</configuration>\r\n"
            .to_vec(),
    )
}

/// Where a web.config keeps a section of the application's own level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Home {
    /// In the file itself (or to be created there).
    InFile,
    /// In the file its `configSource` names (relative to the web.config).
    ConfigSource { value: String, line: usize },
}

/// Where a push's edits go, as the editor decides them for a web.config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Homes {
    pub machine_key: Home,
    pub identity_model: Home,
}

/// The sections a web.config edit would touch, and whether they live in it.
pub fn homes(bytes: &FileBytes) -> Result<Homes, EditError> {
    Ok(homes_in(&Document::parse(bytes.clone())?))
}

/// [`homes`] of a parsed web.config.
pub fn homes_in(doc: &Document) -> Homes {
    let ed = Splicer::new(doc);
    let home = |found: Option<ElemId>| match found {
        Some(el) => match doc.attr(el, "configSource") {
            Some(v) => Home::ConfigSource {
                value: v.into_owned(),
                line: ed.line(el),
            },
            None => Home::InFile,
        },
        None => Home::InFile,
    };
    Homes {
        machine_key: home(ed.machine_key().0),
        identity_model: home(ed.identity_model()),
    }
}

/// A key set ASP.NET would refuse is never written.
fn refuse_unusable(req: &EditRequest) -> Result<(), EditError> {
    match req.machine_key.as_ref().map(KeySet::problems) {
        Some(problems) if !problems.is_empty() => Err(EditError::UnusableKeys(problems)),
        _ => Ok(()),
    }
}

/// Applies `req` to a web.config's bytes. Nothing is returned unless the
/// result parses and reads back exactly as asked.
pub fn edit(bytes: &FileBytes, req: &EditRequest) -> Result<Edited, EditError> {
    edit_in(&Document::parse(bytes.clone())?, req)
}

/// [`edit`] of a parsed web.config (parsed once for [`homes_in`] and this).
pub fn edit_in(doc: &Document, req: &EditRequest) -> Result<Edited, EditError> {
    refuse_unusable(req)?;
    let mut ed = Splicer::new(doc);
    if let Some(keys) = &req.machine_key {
        ed.set_machine_key(keys, req.compatibility_mode)?;
    }
    if req.handler_swap {
        ed.add_handler_swap(&req.identity_in_use, req.identity_section_declared_above)?;
    }
    let out = ed.finish();
    // A UTF-8 file is its text; a UTF-16 one is compared as its bytes.
    let changed = match doc.encoding() {
        super::xml::TextEncoding::Utf8 { .. } => out[..] != doc.bytes()[..],
        _ => out[..] != doc.encode(doc.bytes().to_vec())[..],
    };
    verify_web_config(&out, req)?;
    Ok(Edited {
        bytes: out,
        changed,
    })
}

/// The sections a file named by `configSource` can hold for a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionFile {
    MachineKey,
    /// `system.identityModel`, with the name of the configuration in use
    /// (the scan's choice from the whole chain).
    IdentityModel {
        in_use: String,
    },
}

impl SectionFile {
    fn name(&self) -> &'static str {
        match self {
            SectionFile::MachineKey => "machineKey",
            SectionFile::IdentityModel { .. } => "system.identityModel",
        }
    }
}

/// Applies `req` to a file whose root is the section (the target of a
/// `configSource`), with the same promises as [`edit`].
pub fn edit_section_file(
    bytes: &FileBytes,
    section: &SectionFile,
    req: &EditRequest,
) -> Result<Edited, EditError> {
    refuse_unusable(req)?;
    let doc = Document::parse(bytes.clone())?;
    let root = doc.root();
    if doc.name(root) != section.name() {
        return Err(EditError::WrongRoot {
            found: doc.name(root).to_string(),
            expected: section.name(),
        });
    }
    let mut ed = Splicer::new(&doc);
    match section {
        SectionFile::MachineKey => {
            if let Some(keys) = &req.machine_key {
                ed.update_machine_key(root, keys, req.compatibility_mode)?;
            }
        }
        SectionFile::IdentityModel { in_use } => {
            if req.handler_swap {
                ed.swap_in_identity_model(root, in_use)?;
            }
        }
    }
    let out = ed.finish();
    let changed = out[..] != bytes[..];
    verify_section_file(&out, section, req)?;
    Ok(Edited {
        bytes: out,
        changed,
    })
}

/// A `<system.identityModel.services>` that names the configuration in use:
/// what the rest of the chain says, for reading one file back.
fn services_naming(in_use: &str) -> String {
    format!(
        "<system.identityModel.services><federationConfiguration identityConfigurationName=\"{}\"/></system.identityModel.services>",
        escape_attr(in_use, '"')
    )
}

/// The edited web.config read back as ASP.NET would read it, under a parent
/// that names the configuration in use (the file's own choice, if it makes
/// one, comes later and wins, as in the chain).
fn verify_web_config(bytes: &FileBytes, req: &EditRequest) -> Result<(), EditError> {
    let doc = Document::parse(bytes.clone())
        .map_err(|e| EditError::Verification(ReadBack::DoesNotParse(e)))?;
    let file = ConfigFile {
        path: RemotePath::parse("/C:/app/web.config").expect("constant path"),
        doc,
    };
    let parent = ConfigFile {
        path: RemotePath::parse("/C:/parent/web.config").expect("constant path"),
        doc: Document::parse(FileBytes::new(
            format!(
                "<configuration>{}</configuration>",
                services_naming(&req.identity_in_use)
            )
            .into_bytes(),
        ))?,
    };
    let layers = [
        Layer {
            file: &parent,
            scope: Scope::Machine,
        },
        Layer {
            file: &file,
            scope: Scope::App("app"),
        },
    ];
    // Sections kept in other files are edited (and checked) apart.
    let eff = read_back(&layers, &NoSourceFiles)?;
    check(&eff, req)?;
    if req.handler_swap
        && !req.identity_section_declared_above
        && eff.identity_model_declared.is_none()
    {
        return Err(EditError::Verification(ReadBack::NotRegistered));
    }
    Ok(())
}

/// An edited section file read back through a web.config that names it.
fn verify_section_file(
    bytes: &FileBytes,
    section: &SectionFile,
    req: &EditRequest,
) -> Result<(), EditError> {
    let doc = Document::parse(bytes.clone())
        .map_err(|e| EditError::Verification(ReadBack::DoesNotParse(e)))?;
    let external = ConfigFile {
        path: RemotePath::parse("/C:/app/section.config").expect("constant path"),
        doc,
    };
    let holder = match section {
        SectionFile::MachineKey => {
            "<configuration><system.web><machineKey configSource=\"section.config\"/></system.web></configuration>".to_string()
        }
        SectionFile::IdentityModel { in_use } => format!(
            "<configuration><system.identityModel configSource=\"section.config\"/>{}</configuration>",
            services_naming(in_use)
        ),
    };
    let web = ConfigFile {
        path: RemotePath::parse("/C:/app/web.config").expect("constant path"),
        doc: Document::parse(FileBytes::new(holder.into_bytes())).map_err(EditError::Xml)?,
    };
    struct Only<'f>(&'f ConfigFile);
    impl SourceFiles for Only<'_> {
        fn external(&self, _: &RemotePath) -> External<'_> {
            External::Found(self.0)
        }
    }
    let layers = [Layer {
        file: &web,
        scope: Scope::App("app"),
    }];
    check(&read_back(&layers, &Only(&external))?, req)
}

fn read_back(layers: &[Layer<'_>], sources: &dyn SourceFiles) -> Result<Effective, EditError> {
    effective::resolve(layers, "app", sources)
        .map_err(|e| EditError::Verification(ReadBack::Refused(e.problem)))
}

/// Whether an effective configuration says what the request asked.
fn check(eff: &Effective, req: &EditRequest) -> Result<(), EditError> {
    if let Some(keys) = &req.machine_key {
        let mk = &eff.machine_key;
        if let Some(r) = mk.refused.first() {
            return Err(EditError::Verification(ReadBack::RefusedElement {
                line: r.line,
                fault: r.fault.clone(),
            }));
        }
        let same_key = |got: Option<&crate::keys::KeyText>, want: &crate::keys::KeyText| {
            got.is_some_and(|g| g.expose() == want.expose())
        };
        if !same_key(mk.validation_key.value(), &keys.validation_key) {
            return Err(EditError::Verification(ReadBack::Attribute(
                "validationKey",
            )));
        }
        if !same_key(mk.decryption_key.value(), &keys.decryption_key) {
            return Err(EditError::Verification(ReadBack::Attribute(
                "decryptionKey",
            )));
        }
        if mk.validation.value() != Some(&keys.validation.to_string()) {
            return Err(EditError::Verification(ReadBack::Attribute("validation")));
        }
        if mk.decryption.value() != Some(&keys.decryption.to_string()) {
            return Err(EditError::Verification(ReadBack::Attribute("decryption")));
        }
        if let Some(mode) = &req.compatibility_mode
            && mk.compatibility_mode.value() != Some(&mode.to_string())
        {
            return Err(EditError::Verification(ReadBack::Attribute(
                "compatibilityMode",
            )));
        }
    }
    if req.handler_swap && eff.handler.state != HandlerState::MachineKey {
        return Err(EditError::Verification(ReadBack::Handler(
            eff.handler.state,
        )));
    }
    Ok(())
}

/// Collects non-overlapping replacements and applies them back to front.
struct Splicer<'d> {
    doc: &'d Document,
    edits: Vec<(Range<usize>, String)>,
    /// The file's line ending and indentation unit, learnt on first use
    /// (only edits that add lines need them).
    style: std::cell::OnceCell<(&'static str, String)>,
}

impl<'d> Splicer<'d> {
    fn new(doc: &'d Document) -> Self {
        Splicer {
            doc,
            edits: Vec::new(),
            style: std::cell::OnceCell::new(),
        }
    }

    fn style(&self) -> &(&'static str, String) {
        self.style.get_or_init(|| {
            let bytes = &self.doc.bytes()[..];
            let crlf = bytes.windows(2).filter(|w| w == b"\r\n").count();
            let lf = bytes.iter().filter(|&&b| b == b'\n').count();
            let nl = if crlf * 2 >= lf && crlf > 0 {
                "\r\n"
            } else {
                "\n"
            };
            (nl, indent_unit(self.doc))
        })
    }

    /// The file's line ending.
    fn nl(&self) -> &'static str {
        self.style().0
    }

    /// The file's indentation unit.
    fn unit(&self) -> &str {
        &self.style().1
    }

    /// The edited file, in the encoding of the original.
    fn finish(mut self) -> FileBytes {
        let mut out = self.doc.bytes().to_vec();
        self.edits
            .sort_by_key(|(r, _)| std::cmp::Reverse((r.start, r.end)));
        for (range, text) in self.edits {
            out.splice(range, text.into_bytes());
        }
        self.doc.encode(out)
    }

    fn line(&self, id: ElemId) -> usize {
        self.doc.line_of(self.doc.element(id).start_tag().start)
    }

    /// White space between the start of the element's line and its tag, if
    /// the tag starts its line.
    fn indent_of(&self, id: ElemId) -> Option<String> {
        let start = self.doc.element(id).start_tag().start;
        leading_blanks(&self.doc.bytes()[..], start, true)
            .map(|lead| String::from_utf8_lossy(lead).into_owned())
    }

    fn depth(&self, id: ElemId) -> usize {
        let mut d = 0;
        let mut cur = id;
        while let Some(p) = self.doc.parent(cur) {
            d += 1;
            cur = p;
        }
        d
    }

    fn own_indent(&self, id: ElemId) -> String {
        self.indent_of(id)
            .unwrap_or_else(|| self.unit().repeat(self.depth(id)))
    }

    /// The indentation a new child of `id` gets: that of its existing
    /// children, else one unit more than its own.
    fn child_indent(&self, id: ElemId) -> String {
        self.doc
            .children(id)
            .iter()
            .rev()
            .find_map(|&c| self.indent_of(c))
            .unwrap_or_else(|| format!("{}{}", self.own_indent(id), self.unit()))
    }

    /// Renders nested lines: each line is (relative depth, text).
    fn block(&self, base: &str, lines: &[(usize, String)]) -> String {
        lines
            .iter()
            .map(|(d, text)| format!("{base}{}{text}", self.unit().repeat(*d)))
            .collect::<Vec<_>>()
            .join(self.nl())
    }

    /// Adds a block of lines as the last child of `parent`.
    fn append_child(&mut self, parent: ElemId, lines: &[(usize, String)]) {
        let doc = self.doc;
        let el = doc.element(parent);
        let indent = self.child_indent(parent);
        let own = self.own_indent(parent);
        let block = self.block(&indent, lines);
        match el.end_tag() {
            None => {
                // <a/> becomes <a>\n  child\n</a>
                let tag = doc.text(el.start_tag());
                let open = tag.trim_end_matches("/>").trim_end();
                let text = format!(
                    "{open}>{nl}{block}{nl}{own}</{name}>",
                    nl = self.nl(),
                    name = doc.name(parent)
                );
                self.edits.push((el.start_tag(), text));
            }
            Some(end) => {
                let bytes = &doc.bytes()[..];
                let lead = leading_blanks(bytes, end.start, false);
                let line_start = end.start - lead.map_or(0, <[u8]>::len);
                let own_line = lead.is_some() && line_start > el.start_tag().end;
                if own_line {
                    self.edits
                        .push((line_start..line_start, format!("{block}{}", self.nl())));
                } else {
                    self.edits.push((
                        end.start..end.start,
                        format!("{nl}{block}{nl}{own}", nl = self.nl()),
                    ));
                }
            }
        }
    }

    /// Adds a block of lines as the first child of `parent`.
    fn prepend_child(&mut self, parent: ElemId, lines: &[(usize, String)]) {
        let el = self.doc.element(parent);
        if el.is_self_closing() {
            return self.append_child(parent, lines);
        }
        let block = self.block(&self.child_indent(parent), lines);
        let at = el.start_tag().end;
        self.edits.push((at..at, format!("{}{block}", self.nl())));
    }

    /// Inserts a block of lines just before the sibling element `before`.
    fn insert_before(&mut self, before: ElemId, lines: &[(usize, String)]) {
        let start = self.doc.element(before).start_tag().start;
        match self.indent_of(before) {
            Some(indent) => {
                // The tag's own indentation stays in front of the new block.
                let block = self.block(&indent, lines);
                let block = block.strip_prefix(indent.as_str()).unwrap_or(&block);
                self.edits
                    .push((start..start, format!("{block}{}{indent}", self.nl())));
            }
            None => {
                let block = self.block("", lines);
                self.edits.push((start..start, block));
            }
        }
    }

    /// Sets (or adds) attributes on an existing element.
    fn set_attrs(&mut self, id: ElemId, values: &[(&str, &str)]) {
        let doc = self.doc;
        let el = doc.element(id);
        let attrs = doc.attrs(id);
        let quote = attrs.first().map_or(b'"', |a| a.quote()) as char;
        let insert_at = attrs.last().map_or_else(
            || el.start_tag().start + 1 + doc.name(id).len(),
            |a| a.span().end,
        );
        let mut added = String::new();
        for (name, value) in values {
            match doc.find_attr(id, name) {
                Some(a) => {
                    if doc.attr_value(a) != *value {
                        let q = a.quote() as char;
                        self.edits.push((a.value_span(), escape_attr(value, q)));
                    }
                }
                None => added.push_str(&format!(
                    " {name}={quote}{}{quote}",
                    escape_attr(value, quote)
                )),
            }
        }
        if !added.is_empty() {
            self.edits.push((insert_at..insert_at, added));
        }
    }

    /// The containers of this file for the application itself (its own level
    /// and `<location path=".">` wrappers), in the order the runtime applies them.
    fn own_containers(&self) -> Vec<ElemId> {
        containers(self.doc, Scope::App("app"), "app")
    }

    /// Where new sections go: into the last `<location path=".">` wrapper if
    /// the file has one (it wraps the application's settings), else the root.
    fn new_section_home(&self) -> ElemId {
        *self.own_containers().last().unwrap_or(&self.doc.root())
    }

    fn refuse_config_source(&self, section: ElemId) -> Result<(), EditError> {
        if let Some(src) = self.doc.attr(section, "configSource") {
            return Err(EditError::ExternalSource {
                section: self.doc.name(section).to_string(),
                line: self.line(section),
                source_file: src.into_owned(),
            });
        }
        Ok(())
    }

    /// The `<machineKey>` ASP.NET reads last at the application's own level,
    /// and the last `<system.web>` there.
    fn machine_key(&self) -> (Option<ElemId>, Option<ElemId>) {
        let doc = self.doc;
        let mut existing = None;
        let mut web_home = None;
        for c in self.own_containers() {
            for web in doc.children_named(c, "system.web") {
                web_home = Some(web);
                if let Some(mk) = doc.child_named(web, "machineKey") {
                    existing = Some(mk);
                }
            }
        }
        (existing, web_home)
    }

    /// The last `<system.identityModel>` at the application's own level.
    fn identity_model(&self) -> Option<ElemId> {
        self.own_containers()
            .into_iter()
            .rev()
            .find_map(|c| self.doc.child_named(c, "system.identityModel"))
    }

    /// The last `<identityConfiguration>` of this name at the application's
    /// own level: the element the scan finds in this file.
    fn configuration_named(&self, name: &str) -> Option<ElemId> {
        let doc = self.doc;
        self.own_containers()
            .into_iter()
            .filter_map(|c| doc.child_named(c, "system.identityModel"))
            .flat_map(|im| doc.children_named(im, "identityConfiguration"))
            .filter(|&ic| elements::configuration_name(doc, ic) == name)
            .last()
    }

    fn machine_key_values<'k>(
        keys: &'k KeySet,
        compat: Option<Cow<'k, str>>,
    ) -> Vec<(&'static str, Cow<'k, str>)> {
        let mut values = vec![
            ("validationKey", keys.validation_key.expose().into()),
            ("decryptionKey", keys.decryption_key.expose().into()),
            ("validation", keys.validation.to_string().into()),
            ("decryption", keys.decryption.to_string().into()),
        ];
        if let Some(mode) = compat {
            values.push(("compatibilityMode", mode));
        }
        values
    }

    /// Sets the values on an existing `<machineKey>`; a `compatibilityMode`
    /// it keeps gets the spelling ASP.NET accepts (`framework45`).
    fn update_machine_key(
        &mut self,
        mk: ElemId,
        keys: &KeySet,
        compat: Option<CompatibilityMode>,
    ) -> Result<(), EditError> {
        if is_encrypted(self.doc, mk) {
            return Err(EditError::EncryptedMachineKey {
                line: self.line(mk),
            });
        }
        self.refuse_config_source(mk)?;
        let doc = self.doc;
        let line = self.line(mk);
        let refused = |fault: ElementFault| EditError::RefusedMachineKey { line, fault };
        // An attribute spelled in another case is fixed below; anything else
        // ASP.NET refuses here is left to the operator.
        if let Some(fault) = machine_key::element_faults(doc, mk).into_iter().find(|f| {
            !matches!(
                f,
                ElementFault::UnrecognizedAttribute { meant: Some(_), .. }
            )
        }) {
            return Err(refused(fault));
        }
        let e = MachineKeyEnum::CompatibilityMode;
        let respelled = match (compat, machine_key::attr_as_meant(doc, mk, e.attribute())) {
            (None, Some(v)) if !e.accepts(&v) => e.canonical(&v),
            _ => None,
        };
        let compat = compat
            .map(|m| Cow::Owned(m.to_string()))
            .or(respelled.map(Cow::Owned));
        let mut values = Self::machine_key_values(keys, compat);
        for a in doc.attrs(mk) {
            let name = doc.attr_name(a);
            if machine_key::ATTRIBUTES.contains(&name) {
                continue;
            }
            let Some(meant) = machine_key::meant_attribute(name) else {
                continue;
            };
            let exact_too = doc.find_attr(mk, meant).is_some();
            match values.iter().position(|(n, _)| *n == meant) {
                // The correctly spelled one gets the value; this one goes.
                Some(_) if exact_too => self.remove_attr(a.span()),
                // Written in its place, under its name: never a second one.
                Some(i) => {
                    let (_, value) = values.remove(i);
                    let q = a.quote() as char;
                    self.edits.push((
                        a.span(),
                        format!("{meant}={q}{}{q}", escape_attr(&value, q)),
                    ));
                }
                None if exact_too => {
                    return Err(refused(ElementFault::UnrecognizedAttribute {
                        name: name.to_string(),
                        meant: Some(meant),
                    }));
                }
                None => self.edits.push((a.name_span(), meant.to_string())),
            }
        }
        let values: Vec<(&str, &str)> = values.iter().map(|(n, v)| (*n, v.as_ref())).collect();
        self.set_attrs(mk, &values);
        Ok(())
    }

    /// Removes an attribute with the white space before it.
    fn remove_attr(&mut self, span: Range<usize>) {
        let before = &self.doc.bytes()[..span.start];
        let blanks = before
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        self.edits
            .push((span.start - blanks..span.end, String::new()));
    }

    fn set_machine_key(
        &mut self,
        keys: &KeySet,
        compat: Option<CompatibilityMode>,
    ) -> Result<(), EditError> {
        let doc = self.doc;
        let (existing, web_home) = self.machine_key();
        if let Some(web) = web_home {
            self.refuse_config_source(web)?;
        }
        // The element ASP.NET reads last wins; edit that one.
        if let Some(mk) = existing {
            return self.update_machine_key(mk, keys, compat);
        }
        let element = format!(
            "<machineKey {} />",
            Self::machine_key_values(keys, compat.map(|m| Cow::Owned(m.to_string())))
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_attr(v, '"')))
                .collect::<Vec<_>>()
                .join(" ")
        );
        // Prefer a <system.web> in the wrapper new sections go to.
        let home = self.new_section_home();
        let web_in_home = doc.child_named(home, "system.web").or(web_home);
        match web_in_home {
            Some(web) => self.append_child(web, &[(0, element)]),
            None => self.append_child(
                home,
                &[
                    (0, "<system.web>".into()),
                    (1, element),
                    (0, "</system.web>".into()),
                ],
            ),
        }
        Ok(())
    }

    fn handlers_block(d: usize) -> Vec<(usize, String)> {
        vec![
            (d, "<securityTokenHandlers>".to_string()),
            (d + 1, format!("<remove type=\"{SESSION_HANDLER_TYPE}\" />")),
            (
                d + 1,
                format!("<add type=\"{MACHINE_KEY_HANDLER_TYPE}\" />"),
            ),
            (d, "</securityTokenHandlers>".to_string()),
        ]
    }

    fn identity_configuration_block(in_use: &str, d: usize) -> Vec<(usize, String)> {
        let open = if in_use.is_empty() {
            "<identityConfiguration>".to_string()
        } else {
            format!(
                "<identityConfiguration name=\"{}\">",
                escape_attr(in_use, '"')
            )
        };
        let mut lines = vec![(d, open)];
        lines.extend(Self::handlers_block(d + 1));
        lines.push((d, "</identityConfiguration>".into()));
        lines
    }

    /// Puts the swap into an `<identityConfiguration>`.
    fn swap_into(&mut self, ic: ElemId) -> Result<(), EditError> {
        match elements::default_collections(self.doc, ic).last() {
            Some(h) => {
                self.refuse_untyped_entries(h)?;
                self.complete_handlers(h);
            }
            None => self.append_child(ic, &Self::handlers_block(0)),
        }
        Ok(())
    }

    /// An `<add>` or `<remove>` without `type` (spelled exactly: `Type` is
    /// another attribute) is one System.Configuration refuses
    /// (Config_base_required_attribute_missing): a swap beside it would
    /// leave the section refused, so the edit is refused with the line.
    fn refuse_untyped_entries(&self, handlers: ElemId) -> Result<(), EditError> {
        let doc = self.doc;
        for &entry in doc.children(handlers) {
            let name = doc.name(entry);
            if matches!(name, "add" | "remove") && doc.attr(entry, "type").is_none() {
                let spelled = doc
                    .attrs(entry)
                    .iter()
                    .map(|a| doc.attr_name(a))
                    .find(|a| a.eq_ignore_ascii_case("type"))
                    .map(str::to_string);
                return Err(EditError::UntypedHandler {
                    line: self.line(entry),
                    element: name.to_string(),
                    spelled,
                });
            }
        }
        Ok(())
    }

    fn not_here(in_use: &str) -> EditError {
        EditError::NamedConfigurationElsewhere {
            name: in_use.to_string(),
        }
    }

    /// Puts the swap into the configuration in use of a `<system.identityModel>`.
    fn swap_in_identity_model(&mut self, im: ElemId, in_use: &str) -> Result<(), EditError> {
        let doc = self.doc;
        if is_encrypted(doc, im) {
            return Err(EditError::EncryptedIdentityModel {
                line: self.line(im),
            });
        }
        self.refuse_config_source(im)?;
        let config = doc
            .children_named(im, "identityConfiguration")
            .filter(|&ic| elements::configuration_name(doc, ic) == in_use)
            .last();
        match config {
            Some(ic) => self.swap_into(ic)?,
            None if !in_use.is_empty() => return Err(Self::not_here(in_use)),
            None => self.append_child(im, &Self::identity_configuration_block(in_use, 0)),
        }
        Ok(())
    }

    fn add_handler_swap(&mut self, in_use: &str, declared_above: bool) -> Result<(), EditError> {
        let doc = self.doc;
        let root = doc.root();
        match (self.configuration_named(in_use), self.identity_model()) {
            // Found as the scan finds it, whichever own section holds it.
            (Some(ic), _) => self.swap_into(ic)?,
            (None, Some(im)) => self.swap_in_identity_model(im, in_use)?,
            (None, None) if !in_use.is_empty() => return Err(Self::not_here(in_use)),
            (None, None) => {
                let mut lines = vec![(0, "<system.identityModel>".to_string())];
                lines.extend(Self::identity_configuration_block("", 1));
                lines.push((0, "</system.identityModel>".into()));
                let home = self.new_section_home();
                self.append_child(home, &lines);
            }
        }

        if !declared_above && !declares_identity_model(doc) {
            let section = format!(
                "<section name=\"system.identityModel\" type=\"{IDENTITY_MODEL_SECTION_TYPE}\" />"
            );
            match doc.child_named(root, "configSections") {
                Some(cs) => self.append_child(cs, &[(0, section)]),
                // <configSections> must be the first child of <configuration>.
                None => self.prepend_child(
                    root,
                    &[
                        (0, "<configSections>".into()),
                        (1, section),
                        (0, "</configSections>".into()),
                    ],
                ),
            }
        }
        Ok(())
    }

    /// Adds whatever of the swap an existing `<securityTokenHandlers>` lacks.
    fn complete_handlers(&mut self, handlers: ElemId) {
        let doc = self.doc;
        let remove = format!("<remove type=\"{SESSION_HANDLER_TYPE}\" />");
        let add = format!("<add type=\"{MACHINE_KEY_HANDLER_TYPE}\" />");
        // Replay the collection as WIF builds it.
        let (set, first_machine_add) =
            elements::replay_collection(doc, handlers, vec![short_type_name(SESSION_HANDLER)]);
        let needs_remove = set.contains(&short_type_name(SESSION_HANDLER));
        let needs_add = !set.contains(&short_type_name(elements::MACHINE_KEY_HANDLER));
        match (needs_remove, needs_add, first_machine_add) {
            (true, false, Some(add_el)) => self.insert_before(add_el, &[(0, remove)]),
            (true, true, _) | (true, false, None) => self.append_child(
                handlers,
                &[(0, remove), (0, add)][..if needs_add { 2 } else { 1 }],
            ),
            (false, true, _) => self.append_child(handlers, &[(0, add)]),
            (false, false, _) => {}
        }
    }
}

fn escape_attr(value: &str, quote: char) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' if quote == '"' => out.push_str("&quot;"),
            '\'' if quote == '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The file's own indentation step: the most common difference between a
/// child's indentation and its parent's; two spaces when there is none.
/// The spaces and tabs between the start of its line and `start`, when
/// nothing else is there (`after_bom`: the byte order mark that starts a
/// file counts as nothing). Scans back over those blanks only, never to the
/// start of a long line: a one-line file of many elements stays linear.
fn leading_blanks(bytes: &[u8], start: usize, after_bom: bool) -> Option<&[u8]> {
    let mut i = start;
    while i > 0 && matches!(bytes[i - 1], b' ' | b'\t') {
        i -= 1;
    }
    let line_start = i == 0
        || bytes[i - 1] == b'\n'
        || (after_bom && i == UTF8_BOM.len() && bytes.starts_with(UTF8_BOM));
    line_start.then(|| &bytes[i..start])
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

fn indent_unit(doc: &Document) -> String {
    let bytes = &doc.bytes()[..];
    let indent = |start: usize| leading_blanks(bytes, start, false);
    let mut counts: Vec<(Vec<u8>, usize)> = Vec::new();
    let mut stack = vec![doc.root()];
    while let Some(id) = stack.pop() {
        let Some(parent_indent) = indent(doc.element(id).start_tag().start) else {
            stack.extend_from_slice(doc.children(id));
            continue;
        };
        for &child in doc.children(id) {
            if let Some(ci) = indent(doc.element(child).start_tag().start)
                && ci.len() > parent_indent.len()
                && ci.starts_with(parent_indent)
            {
                let step = ci[parent_indent.len()..].to_vec();
                match counts.iter_mut().find(|(s, _)| *s == step) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((step, 1)),
                }
            }
            stack.push(child);
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(s, _)| String::from_utf8_lossy(&s).into_owned())
        .unwrap_or_else(|| "  ".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::problem::{LocationPathFault, PathsFrom};
    use crate::keys::{Decryption, KeyText, Validation};

    fn keys() -> KeySet {
        KeySet {
            validation_key: KeyText::new("A".repeat(128)),
            decryption_key: KeyText::new("B".repeat(64)),
            validation: Validation::Sha1,
            decryption: Decryption::Aes,
        }
    }

    fn run(src: &str, req: &EditRequest) -> String {
        let out = edit(&FileBytes::new(src.as_bytes().to_vec()), req).unwrap();
        String::from_utf8(out.bytes.to_vec()).unwrap()
    }

    fn mk_req() -> EditRequest {
        EditRequest {
            machine_key: Some(keys()),
            ..Default::default()
        }
    }

    #[test]
    fn replaces_existing_attribute_values_in_place() {
        let src = "<configuration>\r\n  <system.web>\r\n    <machineKey decryption='Auto' validationKey='AutoGenerate,IsolateApps'   />\r\n  </system.web>\r\n</configuration>";
        let out = run(src, &mk_req());
        let want = format!(
            "<configuration>\r\n  <system.web>\r\n    <machineKey decryption='AES' validationKey='{}' decryptionKey='{}' validation='SHA1'   />\r\n  </system.web>\r\n</configuration>",
            "A".repeat(128),
            "B".repeat(64)
        );
        assert_eq!(out, want);
    }

    #[test]
    fn an_attribute_spelled_in_another_case_is_written_in_its_place() {
        // ConfigurationElement matches attribute names exactly: ASP.NET
        // refuses `ValidationKey`. The push writes validationKey there,
        // never a second attribute beside it.
        let src = "<configuration><system.web><machineKey ValidationKey=\"old\" Decryption='DES' ApplicationName=\"app\" compatibilityMode=\"Framework45\" /></system.web></configuration>";
        let out = run(src, &mk_req());
        let want = format!(
            "<configuration><system.web><machineKey validationKey=\"{}\" decryption='AES' applicationName=\"app\" compatibilityMode=\"Framework45\" decryptionKey=\"{}\" validation=\"SHA1\" /></system.web></configuration>",
            "A".repeat(128),
            "B".repeat(64)
        );
        assert_eq!(out, want);
        // Both spellings: the refused one goes, the other gets the value.
        let src = "<configuration><system.web><machineKey validationKey=\"old\" VALIDATIONKEY=\"older\" /></system.web></configuration>";
        let out = run(src, &mk_req());
        assert!(!out.contains("VALIDATIONKEY"), "{out}");
        assert_eq!(out.matches("validationKey=").count(), 1, "{out}");
        // A compatibilityMode it keeps, in another case, is respelled too.
        let src = "<configuration><system.web><machineKey CompatibilityMode=\"framework45\" /></system.web></configuration>";
        let out = run(src, &mk_req());
        assert!(
            out.contains("<machineKey compatibilityMode=\"Framework45\" "),
            "{out}"
        );
    }

    #[test]
    fn a_windows_1252_file_is_written_back_in_windows_1252() {
        let src = b"<?xml version=\"1.0\" encoding=\"windows-1252\"?>\r\n<configuration><!-- caf\xe9 \x80 --><system.web /></configuration>";
        let out = edit(&FileBytes::new(src.to_vec()), &mk_req()).unwrap();
        let bytes = out.bytes.to_vec();
        let at = bytes.windows(4).position(|w| w == b"<sys").unwrap();
        assert_eq!(&bytes[..at], &src[..at], "every byte before the edit kept");
        assert!(bytes.ends_with(b"</system.web></configuration>"));
        let text: String = bytes.iter().map(|&b| char::from(b)).collect();
        assert!(text.contains("<machineKey validationKey="), "{text}");
    }

    #[test]
    fn a_handler_entry_asp_net_refuses_gets_no_swap_beside_it() {
        let src = format!(
            "<configuration>\n<configSections><section name=\"system.identityModel\" type=\"x\" /></configSections>\n<system.identityModel><identityConfiguration><securityTokenHandlers>\n<add Type=\"{MACHINE_KEY_HANDLER_TYPE}\" />\n</securityTokenHandlers></identityConfiguration></system.identityModel></configuration>"
        );
        let req = EditRequest {
            handler_swap: true,
            ..Default::default()
        };
        let e = edit(&FileBytes::new(src.into_bytes()), &req)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("<add> at line 4 of <securityTokenHandlers> has no type attribute (Type is another attribute")
                && e.contains("Config_base_required_attribute_missing"),
            "{e}"
        );
    }

    #[test]
    fn a_machine_key_asp_net_refuses_otherwise_is_not_written() {
        let refused = |src: &str| {
            edit(&FileBytes::new(src.as_bytes().to_vec()), &mk_req())
                .expect_err(src)
                .to_string()
        };
        let e = refused(
            "<configuration>\n<system.web>\n<machineKey validationAlgorithm=\"HMACSHA256\" />\n</system.web>\n</configuration>",
        );
        assert!(
            e.contains("at line 3 has the attribute validationAlgorithm")
                && e.contains("Config_base_unrecognized_attribute"),
            "{e}"
        );
        let e = refused(
            "<configuration><system.web><machineKey><add /></machineKey></system.web></configuration>",
        );
        assert!(
            e.contains("<add>") && e.contains("Config_base_unrecognized_element_name"),
            "{e}"
        );
        let e = refused(
            "<configuration><system.web><machineKey>keys</machineKey></system.web></configuration>",
        );
        assert!(e.contains("Config_base_section_invalid_content"), "{e}");
        // Two values for one attribute the push does not write: which one?
        let e = refused(
            "<configuration><system.web><machineKey applicationName=\"a\" ApplicationName=\"b\" /></system.web></configuration>",
        );
        assert!(
            e.contains("both applicationName and ApplicationName"),
            "{e}"
        );
        // A comment inside is no content.
        run(
            "<configuration><system.web><machineKey validation=\"SHA1\"><!-- keys --></machineKey></system.web></configuration>",
            &mk_req(),
        );
    }

    #[test]
    fn creates_machine_key_with_the_files_own_indentation() {
        let src = "<configuration>\n\t<system.web>\n\t\t<compilation debug=\"false\" />\n\t</system.web>\n</configuration>\n";
        let out = run(src, &mk_req());
        assert!(out.starts_with("<configuration>\n\t<system.web>\n\t\t<compilation debug=\"false\" />\n\t\t<machineKey validationKey=\""), "{out}");
        assert!(
            out.ends_with("\" />\n\t</system.web>\n</configuration>\n"),
            "{out}"
        );
    }

    #[test]
    fn creates_system_web_inside_a_location_wrapper() {
        let src = "\u{FEFF}<configuration>\r\n    <location path=\".\" inheritInChildApplications=\"false\">\r\n        <appSettings />\r\n    </location>\r\n</configuration>";
        let out = run(src, &mk_req());
        assert!(out.starts_with("\u{FEFF}<configuration>\r\n    <location path=\".\" inheritInChildApplications=\"false\">\r\n        <appSettings />\r\n        <system.web>\r\n            <machineKey "), "{out}");
        assert!(
            out.ends_with(" />\r\n        </system.web>\r\n    </location>\r\n</configuration>"),
            "{out}"
        );
    }

    #[test]
    fn expands_self_closing_parents() {
        let out = run(
            "<configuration>\n  <system.web />\n</configuration>",
            &mk_req(),
        );
        assert!(
            out.starts_with("<configuration>\n  <system.web>\n    <machineKey "),
            "{out}"
        );
        assert!(
            out.ends_with(" />\n  </system.web>\n</configuration>"),
            "{out}"
        );
    }

    #[test]
    fn handler_swap_builds_what_is_missing_and_registers_the_section() {
        let src = "<configuration>\n  <system.web />\n</configuration>";
        let req = EditRequest {
            handler_swap: true,
            ..Default::default()
        };
        let out = run(src, &req);
        assert!(
            out.starts_with(
                "<configuration>\n  <configSections>\n    <section name=\"system.identityModel\""
            ),
            "{out}"
        );
        assert!(out.contains("\n  <system.identityModel>\n    <identityConfiguration>\n      <securityTokenHandlers>\n        <remove type=\"System.IdentityModel.Tokens.SessionSecurityTokenHandler"), "{out}");
        // Already registered above: not registered again.
        let req2 = EditRequest {
            identity_section_declared_above: true,
            ..req
        };
        assert!(!run(src, &req2).contains("configSections"));
    }

    #[test]
    fn handler_swap_reuses_existing_blocks() {
        let src = format!(
            "<configuration>\n  <configSections>\n    <section name=\"system.identityModel\" type=\"x\" />\n  </configSections>\n  <system.identityModel>\n    <identityConfiguration>\n      <audienceUris />\n      <securityTokenHandlers>\n        <add type=\"{MACHINE_KEY_HANDLER_TYPE}\" />\n      </securityTokenHandlers>\n    </identityConfiguration>\n  </system.identityModel>\n</configuration>"
        );
        let req = EditRequest {
            handler_swap: true,
            ..Default::default()
        };
        let out = run(&src, &req);
        let want = src.replace(
            "        <add type=",
            &format!("        <remove type=\"{SESSION_HANDLER_TYPE}\" />\n        <add type="),
        );
        assert_eq!(out, want);
        // Running it again changes nothing.
        let again = edit(&FileBytes::new(out.into_bytes()), &req).unwrap();
        assert!(!again.changed);
    }

    #[test]
    fn refuses_encrypted_utf16_and_malformed() {
        let enc = "<configuration><system.web><machineKey configProtectionProvider=\"Rsa\"><EncryptedData/></machineKey></system.web></configuration>";
        let err = edit(&FileBytes::new(enc.as_bytes().to_vec()), &mk_req()).unwrap_err();
        assert!(matches!(err, EditError::EncryptedMachineKey { line: 1 }));
        let bad = edit(&FileBytes::new(b"<configuration>".to_vec()), &mk_req()).unwrap_err();
        assert!(matches!(bad, EditError::Xml(_)));
        // UTF-16 bytes under a UTF-8 declaration: .NET cannot read it either.
        let lying = crate::config::xml::TextEncoding::Utf16 {
            big_endian: false,
            bom: true,
        }
        .encode(b"<?xml version=\"1.0\" encoding=\"utf-8\"?><configuration/>");
        let err = edit(&FileBytes::new(lying), &mk_req()).unwrap_err();
        assert!(
            matches!(err, EditError::Xml(XmlError::Encoding(_))),
            "{err}"
        );
        let ext = "<configuration><system.web><machineKey configSource=\"mk.config\"/></system.web></configuration>";
        assert!(matches!(
            edit(&FileBytes::new(ext.as_bytes().to_vec()), &mk_req()).unwrap_err(),
            EditError::ExternalSource { .. }
        ));
        // Files ASP.NET refuses are never written as if fixed.
        for (src, why) in [
            (
                "<configuration><system.web><machineKey/></system.web><location path=\".\"><system.web><machineKey/></system.web></location></configuration>",
                Problem::TwiceAtFileLevel {
                    section: "machineKey".into(),
                    lines: [1, 1],
                },
            ),
            (
                "<configuration><location path=\"api/\"/><system.web/></configuration>",
                Problem::LocationPath {
                    line: 1,
                    path: "api/".into(),
                    fault: LocationPathFault::LastCharacter,
                    paths_from: PathsFrom::App,
                },
            ),
        ] {
            assert_eq!(
                edit(&FileBytes::new(src.as_bytes().to_vec()), &mk_req()).unwrap_err(),
                EditError::Verification(ReadBack::Refused(why)),
                "{src}"
            );
        }
    }

    #[test]
    fn utf16_files_are_written_back_in_utf16() {
        use crate::config::xml::TextEncoding;
        let src = "<?xml version=\"1.0\" encoding=\"utf-16\"?>\r\n<configuration>\r\n  <!-- \u{e9}t\u{e9} \u{1F511} -->\r\n  <system.web>\r\n    <machineKey validation=\"SHA1\" />\r\n  </system.web>\r\n</configuration>\r\n";
        for big_endian in [false, true] {
            let enc = TextEncoding::Utf16 {
                big_endian,
                bom: true,
            };
            let out = edit(&FileBytes::new(enc.encode(src.as_bytes())), &mk_req()).unwrap();
            // The same edit on the same text, declared UTF-8 for the comparison.
            let want = run(&src.replace("utf-16", "utf-8"), &mk_req()).replace("utf-8", "utf-16");
            assert_eq!(&out.bytes[..], &enc.encode(want.as_bytes())[..]);
            let bom: &[u8] = if big_endian { b"\xFE\xFF" } else { b"\xFF\xFE" };
            assert!(out.bytes.starts_with(bom));
        }
    }

    #[test]
    fn writes_the_spelling_asp_net_accepts() {
        let mut k = keys();
        k.decryption = Decryption::Auto;
        let req = EditRequest {
            machine_key: Some(k),
            compatibility_mode: Some(CompatibilityMode::Framework45),
            ..Default::default()
        };
        let out = run(
            "<configuration><system.web><machineKey validation=\"sha1\"/></system.web></configuration>",
            &req,
        );
        assert!(
            out.contains("validation=\"SHA1\"") && out.contains("decryption=\"Auto\""),
            "{out}"
        );
        assert!(out.contains("compatibilityMode=\"Framework45\""), "{out}");
        let mut short = keys();
        short.decryption_key = KeyText::new("ABC");
        let req = EditRequest {
            machine_key: Some(short),
            ..Default::default()
        };
        let err = edit(&FileBytes::new(b"<configuration/>".to_vec()), &req).unwrap_err();
        assert!(
            matches!(&err, EditError::UnusableKeys(p) if p.len() == 1),
            "{err:?}"
        );
    }

    /// One check of each refusal's wording; the tests above compare values.
    #[test]
    fn refusals_are_worded_at_the_edge() {
        let unusable = EditError::UnusableKeys(vec![crate::keys::KeySetProblem::Key {
            purpose: crate::keys::KeyPurpose::Decryption,
            problem: crate::keys::KeyProblem::OddLength(3),
        }]);
        assert_eq!(
            unusable.to_string(),
            "the key set is not usable: decryptionKey has an odd number of hex characters (3)"
        );
        let root = EditError::WrongRoot {
            found: "configuration".into(),
            expected: "machineKey",
        };
        assert_eq!(
            root.to_string(),
            "its root element is <configuration> where ASP.NET expects <machineKey>"
        );
        let named = EditError::NamedConfigurationElsewhere {
            name: "main".into(),
        };
        assert_eq!(
            named.to_string(),
            "<identityConfiguration name=\"main\"> is not in this file, and farmkey does not create a named configuration (identityConfigurationName naming no element makes WIF fail at start-up with ID7012)"
        );
    }

    #[test]
    fn sections_kept_elsewhere_are_edited_in_their_file() {
        let web = FileBytes::new(
            b"<configuration>\n  <system.web>\n    <machineKey configSource=\"App_Config\\mk.config\" />\n  </system.web>\n</configuration>\n".to_vec(),
        );
        let h = homes(&web).unwrap();
        assert_eq!(
            h.machine_key,
            Home::ConfigSource {
                value: "App_Config\\mk.config".into(),
                line: 3
            }
        );
        assert_eq!(h.identity_model, Home::InFile);
        assert!(matches!(
            edit(&web, &mk_req()).unwrap_err(),
            EditError::ExternalSource { line: 3, .. }
        ));
        // The file itself: the root is the section.
        let ext = FileBytes::new(
            b"\xEF\xBB\xBF<!-- keys -->\r\n<machineKey validation=\"HMACSHA256\" />\r\n".to_vec(),
        );
        let out = edit_section_file(&ext, &SectionFile::MachineKey, &mk_req()).unwrap();
        let text = String::from_utf8(out.bytes.to_vec()).unwrap();
        assert!(
            text.starts_with(
                "\u{feff}<!-- keys -->\r\n<machineKey validation=\"SHA1\" validationKey=\""
            ),
            "{text}"
        );
        assert!(
            !edit_section_file(&out.bytes, &SectionFile::MachineKey, &mk_req())
                .unwrap()
                .changed
        );
        let wrong = edit_section_file(&web, &SectionFile::MachineKey, &mk_req()).unwrap_err();
        assert_eq!(
            wrong,
            EditError::WrongRoot {
                found: "configuration".into(),
                expected: "machineKey",
            }
        );
        // system.identityModel kept elsewhere, with a named configuration in use.
        let im = FileBytes::new(
            b"<system.identityModel>\n  <identityConfiguration name=\"main\">\n    <audienceUris />\n  </identityConfiguration>\n</system.identityModel>\n".to_vec(),
        );
        let swap = EditRequest {
            handler_swap: true,
            ..Default::default()
        };
        let section = SectionFile::IdentityModel {
            in_use: "main".into(),
        };
        let out = edit_section_file(&im, &section, &swap).unwrap();
        let text = String::from_utf8(out.bytes.to_vec()).unwrap();
        assert!(
            text.contains("    <audienceUris />\n    <securityTokenHandlers>\n      <remove type="),
            "{text}"
        );
        let none = SectionFile::IdentityModel {
            in_use: "other".into(),
        };
        let err = edit_section_file(&im, &none, &swap).unwrap_err();
        assert!(err.to_string().contains("ID7012"), "{err}");
    }

    /// The name the scan of a lone web.config decides, as a push passes it.
    fn scanned_in_use(src: &str) -> String {
        let file = ConfigFile {
            path: RemotePath::parse("/C:/app/web.config").unwrap(),
            doc: Document::parse(FileBytes::new(src.as_bytes().to_vec())).unwrap(),
        };
        let layers = [Layer {
            file: &file,
            scope: Scope::App("app"),
        }];
        let eff = effective::resolve(&layers, "app", &NoSourceFiles).unwrap();
        eff.handler.in_use.name
    }

    #[test]
    fn the_swap_goes_where_the_default_federation_configuration_points() {
        let src = "<configuration>\n  <configSections>\n    <section name=\"system.identityModel\" type=\"x\" />\n  </configSections>\n  <system.identityModel>\n    <identityConfiguration>\n      <audienceUris />\n    </identityConfiguration>\n    <identityConfiguration name=\"b\">\n      <audienceUris />\n    </identityConfiguration>\n  </system.identityModel>\n  <system.identityModel.services>\n    <federationConfiguration name=\"a\" />\n    <federationConfiguration identityConfigurationName=\"b\" />\n  </system.identityModel.services>\n</configuration>";
        let req = EditRequest {
            handler_swap: true,
            identity_in_use: scanned_in_use(src),
            ..Default::default()
        };
        assert_eq!(req.identity_in_use, "b");
        let out = run(src, &req);
        let b = out.find("name=\"b\"").unwrap();
        assert!(out[b..].contains("<securityTokenHandlers>"), "{out}");
        assert!(!out[..b].contains("<securityTokenHandlers>"), "{out}");
        let unknown = src.replace(
            "identityConfigurationName=\"b\"",
            "identityConfigurationName=\"c\"",
        );
        let req = EditRequest {
            identity_in_use: scanned_in_use(&unknown),
            ..req
        };
        let err = edit(&FileBytes::new(unknown.into_bytes()), &req).unwrap_err();
        assert!(err.to_string().contains("ID7012"), "{err}");
    }

    #[test]
    fn the_swap_goes_into_the_configuration_the_chain_names() {
        // The services section is elsewhere (configSource, or a parent
        // level): the file alone would say the unnamed configuration.
        let src = "<configuration>\n  <configSections>\n    <section name=\"system.identityModel\" type=\"x\" />\n  </configSections>\n  <system.identityModel>\n    <identityConfiguration name=\"Cora\">\n      <audienceUris />\n    </identityConfiguration>\n  </system.identityModel>\n  <system.identityModel.services configSource=\"services.config\" />\n</configuration>";
        assert_eq!(scanned_in_use(src), "");
        let req = EditRequest {
            handler_swap: true,
            identity_in_use: "Cora".into(),
            ..Default::default()
        };
        let out = run(src, &req);
        assert_eq!(
            out,
            src.replace(
                "      <audienceUris />\n",
                &format!(
                    "      <audienceUris />\n      <securityTokenHandlers>\n        <remove type=\"{SESSION_HANDLER_TYPE}\" />\n        <add type=\"{MACHINE_KEY_HANDLER_TYPE}\" />\n      </securityTokenHandlers>\n"
                )
            )
        );
        // The unnamed one is not what the chain uses: no unnamed element
        // is added, and the verification reads the named one.
        assert!(!out.contains("<identityConfiguration>"), "{out}");
        // A name this file does not hold is never created (ID7012 if none
        // exists anywhere, ID7029 if a parent holds it).
        let req = EditRequest {
            identity_in_use: "Elsewhere".into(),
            ..req
        };
        let err = edit(&FileBytes::new(src.as_bytes().to_vec()), &req).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("<identityConfiguration name=\"Elsewhere\"> is not in this file"),
            "{err}"
        );
    }

    #[test]
    fn refuses_an_unusable_key_set() {
        let mut bad = keys();
        bad.validation_key = KeyText::new("XYZ");
        let req = EditRequest {
            machine_key: Some(bad),
            ..Default::default()
        };
        let err = edit(&FileBytes::new(b"<configuration/>".to_vec()), &req).unwrap_err();
        assert!(err.to_string().contains("non-hex"), "{err}");
        assert!(!err.to_string().contains("XYZ"));
    }

    #[test]
    fn edits_the_empty_template_into_a_valid_file() {
        let req = EditRequest {
            machine_key: Some(keys()),
            handler_swap: true,
            ..Default::default()
        };
        let out = edit(&empty_web_config(), &req).unwrap();
        assert!(out.changed);
        assert!(out.bytes.starts_with(b"\xEF\xBB\xBF<?xml"));
        let text = String::from_utf8_lossy(&out.bytes);
        assert!(text.contains("\r\n  <configSections>\r\n"), "{text}");
        assert!(!text.replace("\r\n", "").contains('\n'));
    }
}
