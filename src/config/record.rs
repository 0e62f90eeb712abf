//! Configuration files as records of the chain ASP.NET reads: the file and
//! how its `<location path>` values are read (BaseConfigurationRecord's
//! NormalizeLocationSubPath), values with the file and line they came from,
//! and the mistakes for which ASP.NET refuses a file (or one of its
//! `<location>` levels) before it applies any value.

use super::xml::{Document, ElemId};
use crate::keys::mask_key_text;
use crate::paths::RemotePath;
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;

/// A parsed configuration file and where it lives.
#[derive(Debug)]
pub struct ConfigFile {
    pub path: RemotePath,
    pub doc: Document,
}

/// How a file's `<location path>` values are read, and what of it counts.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// machine.config, the root web.config: paths start with the site name.
    Machine,
    /// applicationHost.config: paths as for `Machine`, but ASP.NET never
    /// reads this file; only IIS's `system.webServer/modules` count, and a
    /// `<machineKey>` or `<system.identityModel>` there is reported ignored.
    ApplicationHost,
    /// The web.config of the application with this id (`Site/app`): paths
    /// are relative to it.
    App(&'a str),
}

#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    pub file: &'a ConfigFile,
    pub scope: Scope<'a>,
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default of the section.
    Default,
    File(RemotePath),
    /// Not written anywhere, but implied by another setting.
    Implied(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("(default)"),
            Source::File(p) => write!(f, "{p}"),
            Source::Implied(why) => write!(f, "(implied by {why})"),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone)]
pub enum Setting<T> {
    Value(T),
    /// Set in an encrypted section: the value cannot be read.
    Encrypted,
}

#[derive(Debug, Clone)]
pub struct Sourced<T> {
    pub setting: Setting<T>,
    pub source: Source,
    /// Line of the element that set it, when a file did.
    pub line: Option<usize>,
}

impl<T> Sourced<T> {
    pub(super) fn default_value(value: T) -> Self {
        Sourced {
            setting: Setting::Value(value),
            source: Source::Default,
            line: None,
        }
    }

    pub fn value(&self) -> Option<&T> {
        match &self.setting {
            Setting::Value(v) => Some(v),
            Setting::Encrypted => None,
        }
    }

    /// `C:\site\web.config line 4`, or the source alone.
    pub fn located(&self) -> String {
        match self.line {
            Some(line) => format!("{} line {line}", self.source),
            None => self.source.to_string(),
        }
    }
}

impl Sourced<String> {
    /// The value for display: `(encrypted)` when unreadable, and a key
    /// pasted into it (`validation="<key>"`) as its fingerprint.
    pub fn shown(&self) -> Cow<'_, str> {
        self.value()
            .map_or(Cow::Borrowed("(encrypted)"), |v| mask_key_text(v))
    }
}

/// Where in the chain an element is, as a push sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The application's own web.config.
    Own,
    /// The file the application's own `configSource` names for the section.
    OwnConfigSource,
    /// A level above the application (machine.config, the root web.config,
    /// a parent application's web.config, with their `<location>` blocks
    /// and configSource files): a push never writes there.
    Parent,
}

/// A configuration the runtime itself would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigProblem {
    pub file: RemotePath,
    pub message: String,
}

pub(crate) fn line_of(file: &ConfigFile, id: ElemId) -> usize {
    file.doc.line_of(file.doc.element(id).start_tag().start)
}

/// A `<location path>` of applicationHost.config: `a/b/` and `\a\b` are
/// `a/b`; `.` and empty are empty.
fn iis_location(path: &str) -> String {
    let p = path.trim().replace('\\', "/");
    let p = p.trim_matches('/');
    if p == "." {
        String::new()
    } else {
        p.to_string()
    }
}

/// Why ASP.NET refuses a `<location path>`, and the name of its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadLocationPath {
    pub why: &'static str,
    pub resource: &'static str,
}

/// A `<location path>` as BaseConfigurationRecord.NormalizeLocationSubPath
/// reads it: `None` (no path, `""`, `"."`) is the file's own level; white
/// space or `\`, `.`, `/` at either end, or `\ ? : * " < > |` anywhere,
/// is refused. Nothing is trimmed or rewritten: `Site/` is no `Site`.
pub fn location_sub_path(path: Option<&str>) -> Result<Option<&str>, BadLocationPath> {
    let p = match path {
        None | Some("" | ".") => return Ok(None),
        Some(p) => p,
    };
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_whitespace() || "\\./".contains(c));
    if edge(p.chars().next()) {
        return Err(BadLocationPath {
            why: "begins with white space or with '\\', '.' or '/'",
            resource: "Config_location_path_invalid_first_character",
        });
    }
    if edge(p.chars().next_back()) {
        return Err(BadLocationPath {
            why: "ends with white space or with '\\', '.' or '/'",
            resource: "Config_location_path_invalid_last_character",
        });
    }
    if p.contains(['\\', '?', ':', '*', '"', '<', '>', '|']) {
        return Err(BadLocationPath {
            why: "contains one of \\ ? : * \" < > |",
            resource: "Config_location_path_invalid_character",
        });
    }
    Ok(Some(p))
}

fn depth(path: &str) -> usize {
    if path.is_empty() {
        0
    } else {
        path.split('/').count()
    }
}

fn same_path(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn is_below(target: &str, base: &str) -> bool {
    target.len() > base.len()
        && target.as_bytes()[base.len()] == b'/'
        && target[..base.len()].eq_ignore_ascii_case(base)
}

/// The elements of a file whose sections apply to `target`, in the order the
/// runtime applies them: the file's own level, then `<location>` blocks from
/// the least to the most specific path.
pub fn containers(doc: &Document, scope: Scope<'_>, target: &str) -> Vec<ElemId> {
    containers_by_depth(doc, scope, target)
        .into_iter()
        .map(|(_, id)| id)
        .collect()
}

/// [`containers`] with the depth of the path each one is for (0: the file's
/// own level in machine.config and the root web.config; the segments of
/// the path, plus one, for the others): a lock a container sets binds the
/// deeper containers of its file.
pub fn containers_by_depth(doc: &Document, scope: Scope<'_>, target: &str) -> Vec<(usize, ElemId)> {
    let root = doc.root();
    let mut found: Vec<(usize, ElemId)> = vec![(0, root)];
    for loc in doc.children_named(root, "location") {
        let path = doc.attr(loc, "path");
        let rel = match scope {
            // IIS reads this file, with rules of its own.
            Scope::ApplicationHost => iis_location(path.as_deref().unwrap_or_default()),
            // A path ASP.NET refuses fails the whole file (file_refused).
            _ => match location_sub_path(path.as_deref()) {
                Ok(rel) => rel.unwrap_or_default().to_string(),
                Err(_) => continue,
            },
        };
        let inherit = !doc
            .attr(loc, "inheritInChildApplications")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
        let full = match scope {
            Scope::Machine | Scope::ApplicationHost => rel,
            Scope::App(app) if rel.is_empty() => app.to_string(),
            Scope::App(app) => format!("{app}/{rel}"),
        };
        let applies = match (scope, full.is_empty()) {
            (Scope::Machine | Scope::ApplicationHost, true) => true,
            _ => same_path(&full, target) || (inherit && is_below(target, &full)),
        };
        if applies {
            found.push((1 + depth(&full), loc));
        }
    }
    found.sort_by_key(|&(d, _)| d); // stable: document order within a depth
    found
}

/// A `<location>` for which ASP.NET refuses the whole file (a global error
/// of BaseConfigurationRecord.ScanLocationSection): every application that
/// reads the file fails, whatever path it has.
pub fn file_refused(file: &ConfigFile, scope: Scope<'_>) -> Result<(), ConfigProblem> {
    if matches!(scope, Scope::ApplicationHost) {
        return Ok(());
    }
    let doc = &file.doc;
    // No final full stop: the finding goes on after it.
    let refused = |loc: ElemId, tag: String, why: String, advice: &str| ConfigProblem {
        file: file.path.clone(),
        message: format!(
            "{tag} at line {}: {why}; ASP.NET refuses the whole file, so every application that reads it fails to start. {advice}",
            line_of(file, loc)
        ),
    };
    let root = doc.root();
    if doc.name(root) != "configuration" {
        return Err(refused(
            root,
            format!("<{}>", bounded(doc.name(root))),
            "the root element is not <configuration> (Config_file_doesnt_have_root_configuration)"
                .into(),
            "Make <configuration> the file's root element",
        ));
    }
    for attr in doc.attrs(root) {
        let (name, value) = (doc.attr_name(attr), doc.attr_value(attr));
        let why = match name {
            "xmlns" if value == CONFIGURATION_NAMESPACE => continue,
            "xmlns" => format!(
                "the only namespace ASP.NET accepts there is {CONFIGURATION_NAMESPACE} (Config_namespace_invalid)"
            ),
            _ => {
                "<configuration> has no such attribute (Config_base_unrecognized_attribute)".into()
            }
        };
        return Err(refused(
            root,
            format!(
                "<configuration {}=\"{}\">",
                bounded(name),
                bounded(&mask_key_text(&value))
            ),
            why,
            "Remove the attribute",
        ));
    }
    for loc in doc.children_named(root, "location") {
        if let Some((attr, fault)) = location_attribute_fault(doc, loc) {
            return Err(refused(
                loc,
                format!("<location {attr}>"),
                fault.why(),
                fault.advice(),
            ));
        }
        let path = doc.attr(loc, "path");
        let shown = || bounded(&mask_key_text(path.as_deref().unwrap_or_default()));
        match location_sub_path(path.as_deref()) {
            Err(bad) => {
                return Err(refused(
                    loc,
                    format!("<location path=\"{}\">", shown()),
                    format!("the path {} ({})", bad.why, bad.resource),
                    if matches!(scope, Scope::Machine) {
                        "Write the site's name, then the application's path, separated by '/' (\"Flowtime/api\"), with nothing before or after"
                    } else {
                        "Write the path below this application, separated by '/' (\"api/v2\"), with nothing before or after"
                    },
                ));
            }
            // VSWhidbey 535595: machine.config and the root web.config may
            // not keep their own level from the applications below.
            Ok(None)
                if matches!(scope, Scope::Machine)
                    && doc.attr(loc, "inheritInChildApplications").as_deref() == Some("false") =>
            {
                let path = match &path {
                    Some(_) => format!("path=\"{}\" ", shown()),
                    None => String::new(),
                };
                return Err(refused(
                    loc,
                    format!("<location {path}inheritInChildApplications=\"false\">"),
                    "machine.config and the root web.config may not keep their own level from the applications below (Location_invalid_inheritInChildApplications_in_machine_or_root_web_config)".into(),
                    "Remove inheritInChildApplications, or name a site in path",
                ));
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

/// The one namespace `<configuration xmlns>` may name
/// (BaseConfigurationRecord.ScanFactories).
pub const CONFIGURATION_NAMESPACE: &str = "http://schemas.microsoft.com/.NetConfiguration/v2.0";

/// What is wrong with an attribute of `<location>`: ScanLocationSection
/// reads `path`, `allowOverride`, `overrideMode` and
/// `inheritInChildApplications`, exactly spelled, and records anything else
/// as a global error (the whole file is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationFault {
    /// An attribute `<location>` does not have (`allowOveride`, `AllowOverride`).
    Unrecognized,
    /// `allowOverride` or `inheritInChildApplications` not exactly `true`
    /// or `false` (XmlUtil.VerifyAndGetBooleanAttribute).
    NotBoolean,
    /// `overrideMode` not exactly `Inherit`, `Allow` or `Deny`
    /// (OverrideModeSetting.ParseOverrideModeXmlValue).
    NotOverrideMode,
    /// `allowOverride` and `overrideMode` on one `<location>`.
    Both,
}

impl LocationFault {
    fn why(&self) -> String {
        match self {
            LocationFault::Unrecognized => "<location> has no such attribute; it takes path, allowOverride, overrideMode and inheritInChildApplications, spelled exactly so (Config_base_unrecognized_attribute)".into(),
            LocationFault::NotBoolean => "the value must be exactly \"true\" or \"false\" (Config_invalid_boolean_attribute)".into(),
            LocationFault::NotOverrideMode => "the value must be exactly Inherit, Allow or Deny (Config_section_override_mode_attribute_invalid)".into(),
            LocationFault::Both => "allowOverride and overrideMode may not both be set on one <location> (Invalid_override_mode_declaration)".into(),
        }
    }

    fn advice(&self) -> &'static str {
        match self {
            LocationFault::Unrecognized => "Correct the attribute's name, or remove it",
            LocationFault::NotBoolean | LocationFault::NotOverrideMode => "Correct the value",
            LocationFault::Both => "Keep one of them",
        }
    }
}

/// The first attribute of a `<location>` ScanLocationSection refuses, shown
/// as written (`allowOverride="False"`), and why.
pub fn location_attribute_fault(doc: &Document, loc: ElemId) -> Option<(String, LocationFault)> {
    let mut lock_attr = false;
    for attr in doc.attrs(loc) {
        let (name, value) = (doc.attr_name(attr), doc.attr_value(attr));
        let fault = match name {
            "path" => None,
            "allowOverride" | "overrideMode" if lock_attr => Some(LocationFault::Both),
            "allowOverride" | "inheritInChildApplications"
                if value != "true" && value != "false" =>
            {
                Some(LocationFault::NotBoolean)
            }
            "overrideMode" if !["Inherit", "Allow", "Deny"].contains(&value.as_ref()) => {
                Some(LocationFault::NotOverrideMode)
            }
            "allowOverride" | "overrideMode" | "inheritInChildApplications" => None,
            _ => Some(LocationFault::Unrecognized),
        };
        lock_attr |= matches!(name, "allowOverride" | "overrideMode");
        if let Some(fault) = fault {
            let shown = format!("{}=\"{}\"", bounded(name), bounded(&mask_key_text(&value)));
            return Some((shown, fault));
        }
    }
    None
}

/// A value quoted from a file in a message, cut after 40 characters:
/// enough to recognise a typo, never a page of pasted text.
pub fn bounded(value: &str) -> String {
    const SHOWN: usize = 40;
    match value.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}

/// The section groups of .NET 4's machine.config (and System.Web.Extensions'
/// declarations): elements that hold sections and may appear more than once
/// at one level. Groups a file declares itself are added to these.
const KNOWN_GROUPS: [&str; 13] = [
    "system.web",
    "system.web/caching",
    "system.net",
    "system.net/mailSettings",
    "system.runtime.caching",
    "system.runtime.serialization",
    "system.serviceModel",
    "system.serviceModel.activation",
    "system.transactions",
    "system.xml.serialization",
    "system.web.extensions",
    "system.web.extensions/scripting",
    "system.web.extensions/scripting/webServices",
];

/// The section groups a file's `<configSections>` declares, as config keys
/// (`system.web/caching`).
fn declared_groups(doc: &Document) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<(ElemId, String)> = doc
        .children_named(doc.root(), "configSections")
        .map(|c| (c, String::new()))
        .collect();
    while let Some((parent, prefix)) = stack.pop() {
        for group in doc.children_named(parent, "sectionGroup") {
            if let Some(name) = doc.attr(group, "name") {
                let key = format!("{prefix}{name}");
                stack.push((group, format!("{key}/")));
                out.push(key);
            }
        }
    }
    out
}

/// A section set twice at one level: ASP.NET refuses it
/// (Config_sections_must_be_unique), whatever the section, read by farmkey
/// or not; a section group (`<system.web>`) may appear more than once, its
/// sections are counted together. The file's own level (the root, and
/// `<location>` without a path, `""` or `"."`) is checked as
/// ScanSectionsRecursive does and fails every application that reads the
/// file; `<location>` paths equal without regard to case
/// (ResolveLocationSections) fail the applications that use one of them
/// (`applying`: the containers that apply to the application read).
pub(super) fn unique_sections(file: &ConfigFile, applying: &[ElemId]) -> Result<(), ConfigProblem> {
    let doc = &file.doc;
    let root = doc.root();
    let groups = declared_groups(doc);
    let is_group = |key: &str| KNOWN_GROUPS.contains(&key) || groups.iter().any(|g| g == key);
    let mut levels: Vec<(Option<String>, ElemId)> = vec![(None, root)];
    for loc in doc.children_named(root, "location") {
        if let Ok(sub) = location_sub_path(doc.attr(loc, "path").as_deref()) {
            levels.push((sub.map(str::to_lowercase), loc));
        }
    }
    // Every section element with its level and config key.
    let mut sections: Vec<(&Option<String>, String, ElemId, ElemId)> = Vec::new();
    for (level, container) in &levels {
        let mut stack: Vec<(ElemId, String)> = vec![(*container, String::new())];
        while let Some((parent, prefix)) = stack.pop() {
            for &elem in doc.children(parent) {
                let name = doc.name(elem);
                if prefix.is_empty() && matches!(name, "location" | "configSections") {
                    continue;
                }
                let key = format!("{prefix}{name}");
                if is_group(&key) {
                    stack.push((elem, format!("{key}/")));
                } else {
                    sections.push((level, key, *container, elem));
                }
            }
        }
    }
    // Element ids are in document order: the first of a pair comes first.
    sections.sort_by_key(|&(_, _, _, elem)| elem);
    for (i, (level, key, container, elem)) in sections.iter().enumerate() {
        let Some((_, _, first_container, first)) = sections[..i]
            .iter()
            .find(|(l, k, _, _)| l == level && k == key)
        else {
            continue;
        };
        let name = doc.name(*elem);
        let (a, b) = (line_of(file, *first), line_of(file, *elem));
        let message = match level {
            None => format!(
                "<{name}> is set twice at the file's own level (lines {a} and {b}; a <location> without a path, or with path \"\" or \".\", is that level too); ASP.NET refuses this (Config_sections_must_be_unique), so every application that reads the file fails to start"
            ),
            Some(_) if applying.contains(first_container) || applying.contains(container) => {
                format!(
                    "<{name}> is set twice for <location path=\"{}\"> (lines {a} and {b}; paths compare without regard to case); ASP.NET refuses this (Config_sections_must_be_unique), so the applications at that path fail to start",
                    bounded(&mask_key_text(
                        &doc.attr(*container, "path").unwrap_or_default()
                    ))
                )
            }
            Some(_) => continue,
        };
        return Err(ConfigProblem {
            file: file.path.clone(),
            message,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::FileBytes;

    #[test]
    fn location_paths_as_asp_net_reads_them() {
        let first = Err(BadLocationPath {
            why: "begins with white space or with '\\', '.' or '/'",
            resource: "Config_location_path_invalid_first_character",
        });
        let last = Err(BadLocationPath {
            why: "ends with white space or with '\\', '.' or '/'",
            resource: "Config_location_path_invalid_last_character",
        });
        let inner = Err(BadLocationPath {
            why: "contains one of \\ ? : * \" < > |",
            resource: "Config_location_path_invalid_character",
        });
        for (path, read) in [
            (None, Ok(None)),
            (Some(""), Ok(None)),
            (Some("."), Ok(None)),
            (Some("Flowtime"), Ok(Some("Flowtime"))),
            (
                Some("Default Web Site/api"),
                Ok(Some("Default Web Site/api")),
            ),
            (Some("Flowtime/"), last),
            (Some("Flowtime\\"), last),
            (Some("Flowtime."), last),
            (Some("Flowtime "), last),
            (Some("/Flowtime"), first),
            (Some("\\Flowtime"), first),
            (Some(" Flowtime"), first),
            (Some("./api"), first),
            (Some(".."), first),
            (Some("  "), first),
            (Some("Flowtime\\api"), inner),
            (Some("C:/inetpub"), inner),
            (Some("a?b"), inner),
        ] {
            assert_eq!(location_sub_path(path), read, "{path:?}");
        }
    }

    #[test]
    fn location_matching() {
        let doc = Document::parse(FileBytes::new(
            br#"<configuration><location path="Default Web Site/App"/><location path=""/><location path="Default Web Site" inheritInChildApplications="false"/><location path="Other"/></configuration>"#.to_vec(),
        )).unwrap();
        assert_eq!(
            containers(&doc, Scope::Machine, "default web site/app").len(),
            3
        );
        assert_eq!(
            containers(&doc, Scope::Machine, "Default Web Site").len(),
            3
        );
        assert_eq!(
            containers(&doc, Scope::Machine, "Default Web Site/App/Sub").len(),
            3
        );
    }
}
