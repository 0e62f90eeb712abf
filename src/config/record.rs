//! Configuration files as records of the chain ASP.NET reads: the file and
//! how its `<location path>` values are read (BaseConfigurationRecord's
//! NormalizeLocationSubPath), values with the file and line they came from,
//! and the mistakes for which ASP.NET refuses a file (or one of its
//! `<location>` levels) before it applies any value.

use super::problem::{ConfigProblem, LocationFault, LocationPathFault, PathsFrom, Problem};
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
    Implied(Implication),
}

/// The setting that implies a value no file sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Implication {
    /// `<httpRuntime targetFramework="4.5">` or later implies
    /// compatibilityMode Framework45; `shown` is its value as farmkey
    /// shows it, `source` where it is set.
    TargetFramework { shown: String, source: Box<Source> },
}

impl fmt::Display for Implication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Implication::TargetFramework { shown, source } => {
                write!(f, "<httpRuntime targetFramework=\"{shown}\"> in {source}")
            }
        }
    }
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
pub enum ChainLevel {
    /// The application's own web.config.
    Own,
    /// The file the application's own `configSource` names for the section.
    OwnConfigSource,
    /// A level above the application (machine.config, the root web.config,
    /// a parent application's web.config, with their `<location>` blocks
    /// and configSource files): a push never writes there.
    Parent,
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

/// A `<location path>` as BaseConfigurationRecord.NormalizeLocationSubPath
/// reads it: `None` (no path, `""`, `"."`) is the file's own level; white
/// space or `\`, `.`, `/` at either end, or `\ ? : * " < > |` anywhere,
/// is refused. Nothing is trimmed or rewritten: `Site/` is no `Site`.
pub fn location_sub_path(path: Option<&str>) -> Result<Option<&str>, LocationPathFault> {
    let p = match path {
        None | Some("" | ".") => return Ok(None),
        Some(p) => p,
    };
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_whitespace() || "\\./".contains(c));
    if edge(p.chars().next()) {
        return Err(LocationPathFault::FirstCharacter);
    }
    if edge(p.chars().next_back()) {
        return Err(LocationPathFault::LastCharacter);
    }
    if p.contains(['\\', '?', ':', '*', '"', '<', '>', '|']) {
        return Err(LocationPathFault::Character);
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
    let refused = |problem| ConfigProblem {
        file: file.path.clone(),
        problem,
    };
    let root = doc.root();
    if doc.name(root) != "configuration" {
        return Err(refused(Problem::NotConfigurationRoot {
            element: doc.name(root).to_string(),
        }));
    }
    for attr in doc.attrs(root) {
        let (name, value) = (doc.attr_name(attr), doc.attr_value(attr));
        if name == "xmlns" && value == CONFIGURATION_NAMESPACE {
            continue;
        }
        return Err(refused(Problem::RootAttribute {
            line: line_of(file, root),
            name: name.to_string(),
            value: value.into_owned(),
        }));
    }
    // Only the first element of <configuration> may be <configSections>
    // (ScanFactories reads it there; ScanSectionsRecursive refuses any other).
    let first = doc.children(root).first().copied();
    if let Some(late) = doc
        .element_ids()
        .find(|&id| doc.name(id) == "configSections" && id != root && Some(id) != first)
    {
        return Err(refused(Problem::ConfigSectionsNotFirst {
            line: line_of(file, late),
        }));
    }
    if let Some(nested) = doc
        .element_ids()
        .find(|&id| doc.name(id) == "location" && doc.parent(id).is_some_and(|p| p != root))
    {
        return Err(refused(Problem::NestedLocation {
            line: line_of(file, nested),
        }));
    }
    for loc in doc.children_named(root, "location") {
        if let Some((name, value, fault)) = location_attribute_fault(doc, loc) {
            return Err(refused(Problem::LocationAttribute {
                line: line_of(file, loc),
                name,
                value,
                fault,
            }));
        }
        let path = doc.attr(loc, "path");
        let line = line_of(file, loc);
        match location_sub_path(path.as_deref()) {
            Err(fault) => {
                return Err(refused(Problem::LocationPath {
                    line,
                    path: path.unwrap_or_default().into_owned(),
                    fault,
                    paths_from: if matches!(scope, Scope::Machine) {
                        PathsFrom::Machine
                    } else {
                        PathsFrom::App
                    },
                }));
            }
            // VSWhidbey 535595: machine.config and the root web.config may
            // not keep their own level from the applications below.
            Ok(None)
                if matches!(scope, Scope::Machine)
                    && doc.attr(loc, "inheritInChildApplications").as_deref() == Some("false") =>
            {
                return Err(refused(Problem::InheritAtMachineLevel {
                    line,
                    path: path.map(|p| p.into_owned()),
                }));
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

/// The one namespace `<configuration xmlns>` may name
/// (BaseConfigurationRecord.ScanFactories).
pub const CONFIGURATION_NAMESPACE: &str = "http://schemas.microsoft.com/.NetConfiguration/v2.0";

/// The first attribute of a `<location>` ScanLocationSection refuses (its
/// name and value as written), and why.
pub fn location_attribute_fault(
    doc: &Document,
    loc: ElemId,
) -> Option<(String, String, LocationFault)> {
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
            return Some((name.to_string(), value.into_owned(), fault));
        }
    }
    None
}

/// The section groups of .NET 4's machine.config (and System.Web.Extensions'
/// declarations): elements that hold sections and may appear more than once
/// at one level. The groups the chain's files declare (machine.config's
/// first) are added to these.
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
pub fn declared_groups(doc: &Document) -> Vec<String> {
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
/// sections are counted together (`groups`: the groups declared by the
/// files of the chain so far, this one included). The file's own level (the root, and
/// `<location>` without a path, `""` or `"."`) is checked as
/// ScanSectionsRecursive does and fails every application that reads the
/// file; `<location>` paths equal without regard to case
/// (ResolveLocationSections) fail the applications that use one of them
/// (`applying`: the containers that apply to the application read).
pub(super) fn unique_sections(
    file: &ConfigFile,
    applying: &[ElemId],
    groups: &[String],
) -> Result<(), ConfigProblem> {
    let doc = &file.doc;
    let root = doc.root();
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
        let lines = [line_of(file, *first), line_of(file, *elem)];
        let section = doc.name(*elem).to_string();
        let problem = match level {
            None => Problem::TwiceAtFileLevel { section, lines },
            Some(_) if applying.contains(first_container) || applying.contains(container) => {
                Problem::TwiceForLocation {
                    section,
                    path: doc
                        .attr(*container, "path")
                        .unwrap_or_default()
                        .into_owned(),
                    lines,
                }
            }
            Some(_) => continue,
        };
        return Err(ConfigProblem {
            file: file.path.clone(),
            problem,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::FileBytes;

    #[test]
    fn location_attributes_as_scan_location_section_reads_them() {
        let fault = |attrs: &str| {
            let xml = format!("<configuration><location {attrs}/></configuration>");
            let doc = Document::parse(FileBytes::new(xml.into_bytes())).unwrap();
            let loc = doc.children(doc.root())[0];
            location_attribute_fault(&doc, loc)
        };
        let f = |n: &str, v: &str, fault| Some((n.to_string(), v.to_string(), fault));
        assert_eq!(
            fault(r#"path="a" allowOverride="false" inheritInChildApplications="true""#),
            None
        );
        assert_eq!(fault(r#"overrideMode="Inherit""#), None);
        assert_eq!(
            fault(r#"allowOverride="False""#),
            f("allowOverride", "False", LocationFault::NotBoolean)
        );
        assert_eq!(
            fault(r#"inheritInChildApplications=" false""#),
            f(
                "inheritInChildApplications",
                " false",
                LocationFault::NotBoolean
            )
        );
        assert_eq!(
            fault(r#"overrideMode="deny""#),
            f("overrideMode", "deny", LocationFault::NotOverrideMode)
        );
        assert_eq!(
            fault(r#"overrideMode="Deny" allowOverride="false""#),
            f("allowOverride", "false", LocationFault::Both)
        );
        assert_eq!(
            fault(r#"Path="a""#),
            f("Path", "a", LocationFault::Unrecognized),
            "names are case-sensitive"
        );
    }

    #[test]
    fn location_paths_as_asp_net_reads_them() {
        let first = Err(LocationPathFault::FirstCharacter);
        let last = Err(LocationPathFault::LastCharacter);
        let inner = Err(LocationPathFault::Character);
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
