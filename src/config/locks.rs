//! Locks a parent level puts on a section for every level below it, as
//! System.Configuration enforces them: `<location allowOverride="false">`
//! (or `overrideMode="Deny"`) locks the sections it holds
//! (BaseConfigurationRecord: "Config_section_locked"); `lockItem`,
//! `lockAttributes`, `lockAllAttributesExcept`, `lockElements` and
//! `lockAllElementsExcept` on a section element lock it, or some of its
//! attributes or child elements (ConfigurationElement.DeserializeElement:
//! "Config_base_element_locked", "Config_base_attribute_locked"). A lower
//! level that sets what is locked is a configuration error: the application
//! does not start.

use super::problem::DeclarationFault;
use super::record::{ConfigFile, line_of};
use super::section::Section;
use super::xml::{Document, ElemId};
use crate::paths::RemotePath;
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockKind {
    /// `allowOverride="false"` / `overrideMode="Deny"` on a `<location>`.
    Location(&'static str),
    /// `overrideModeDefault="Deny"` on the section's declaration: every
    /// level below the declaring file is locked unless an explicit
    /// `overrideMode="Allow"` (or `allowOverride="true"`) above it unlocks
    /// it (BaseConfigurationRecord.ResolveOverrideModeFromParent).
    Default,
    /// `allowDefinition` on the declaration keeps the section above the
    /// application (WebConfigurationHost.VerifyDefinitionAllowed).
    Definition(AllowDefinition),
    /// `allowLocation="false"` on the declaration: no `<location path>`
    /// may hold the section (Config_section_cannot_be_used_in_location).
    NoLocation,
    /// `lockItem="true"`.
    Item,
    Attributes(Vec<String>),
    AllAttributesExcept(Vec<String>),
    Elements(Vec<String>),
    AllElementsExcept(Vec<String>),
}

/// Where `allowDefinition` lets a section be set (ConfigurationAllowDefinition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowDefinition {
    /// machine.config's own level (Config_allow_definition_error_machine).
    MachineOnly,
    /// machine.config and the root web.config, their own levels
    /// (Config_allow_definition_error_webroot).
    MachineToWebRoot,
    /// Up to the application's own level: every file farmkey reads for it.
    MachineToApplication,
    Everywhere,
}

impl AllowDefinition {
    /// As written in the declaration (the names compare exactly;
    /// BaseConfigurationRecord.AllowDefinitionToEnum).
    pub fn parse(value: &str) -> Option<AllowDefinition> {
        Some(match value {
            "MachineOnly" => AllowDefinition::MachineOnly,
            "MachineToWebRoot" => AllowDefinition::MachineToWebRoot,
            "MachineToApplication" => AllowDefinition::MachineToApplication,
            "Everywhere" => AllowDefinition::Everywhere,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            AllowDefinition::MachineOnly => "MachineOnly",
            AllowDefinition::MachineToWebRoot => "MachineToWebRoot",
            AllowDefinition::MachineToApplication => "MachineToApplication",
            AllowDefinition::Everywhere => "Everywhere",
        }
    }

    /// The resource name of the error for a definition it does not allow.
    pub fn resource(self) -> &'static str {
        match self {
            AllowDefinition::MachineOnly => "Config_allow_definition_error_machine",
            AllowDefinition::MachineToWebRoot => "Config_allow_definition_error_webroot",
            _ => "Config_allow_definition_error_application",
        }
    }

    /// Whether a definition at this level is allowed.
    pub fn allows(self, level: DefinitionLevel) -> bool {
        match self {
            AllowDefinition::MachineOnly => level == DefinitionLevel::Machine,
            AllowDefinition::MachineToWebRoot => level != DefinitionLevel::Site,
            AllowDefinition::MachineToApplication | AllowDefinition::Everywhere => true,
        }
    }
}

/// The configuration path a definition is for, as allowDefinition sees it:
/// a `<location path>` in machine.config is for the site's path, not
/// machine.config's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefinitionLevel {
    Machine,
    RootWebConfig,
    /// A site or application path (or below).
    Site,
}

/// How a section's declaration (`<configSections>`) restricts where it is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    pub file: RemotePath,
    pub line: usize,
    pub override_mode_default_deny: bool,
    pub allow_definition: AllowDefinition,
    pub allow_location: bool,
    /// `type` as written.
    pub type_name: String,
    /// The other attributes as written, by name.
    pub attributes: Vec<(String, String)>,
}

impl Declaration {
    /// An attribute value ScanFactoriesRecursive refuses.
    pub fn value_fault(&self) -> Option<DeclarationFault> {
        self.attributes.iter().find_map(|(name, value)| {
            let resource = match name.as_str() {
                "allowDefinition" if AllowDefinition::parse(value).is_none() => {
                    "Config_section_allow_definition_attribute_invalid"
                }
                "allowExeDefinition"
                    if ![
                        "MachineOnly",
                        "MachineToApplication",
                        "MachineToRoamingUser",
                        "MachineToLocalUser",
                    ]
                    .contains(&value.as_str()) =>
                {
                    "Config_section_allow_exe_definition_attribute_invalid"
                }
                "overrideModeDefault"
                    if !["Inherit", "Allow", "Deny"].contains(&value.as_str()) =>
                {
                    "Config_section_override_mode_attribute_invalid"
                }
                "allowLocation" | "restartOnExternalChanges" | "requirePermission"
                    if value != "true" && value != "false" =>
                {
                    "Config_invalid_boolean_attribute"
                }
                _ => return None,
            };
            Some(DeclarationFault::Value {
                attribute: name.clone(),
                value: value.clone(),
                resource,
            })
        })
    }

    /// Whether a lower file's declaration of the section is the same as
    /// this one (FactoryRecord.IsEquivalentSectionFactory): the same
    /// restrictions (overrideModeDefault is not one) and the same class. Assembly names are not compared: two
    /// spellings of one assembly load one type, which farmkey cannot tell
    /// from two assemblies.
    pub fn equivalent(&self, other: &Declaration) -> bool {
        let class = |t: &str| t.split(',').next().unwrap_or("").trim().to_string();
        // As read, with the defaults of the unwritten ones.
        let restrictions = |d: &Declaration| {
            let get = |name: &str, default: &'static str| {
                d.attributes
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(default.to_string(), |(_, v)| v.clone())
            };
            (
                d.allow_definition,
                d.allow_location,
                get("allowExeDefinition", "MachineToApplication"),
                get("restartOnExternalChanges", "true"),
                get("requirePermission", "true"),
            )
        };
        class(&self.type_name) == class(&other.type_name)
            && restrictions(self) == restrictions(other)
    }
}

/// The `<section>` declaring `key` (`system.web/machineKey`,
/// `system.identityModel`) in a file's `<configSections>`, if it is there.
pub fn declaration(file: &ConfigFile, key: &str) -> Option<Declaration> {
    let doc = &file.doc;
    let (groups, name) = match key.rsplit_once('/') {
        Some((g, n)) => (g.split('/').collect::<Vec<_>>(), n),
        None => (Vec::new(), key),
    };
    let mut parent = doc.child_named(doc.root(), "configSections")?;
    for g in groups {
        parent = doc
            .children_named(parent, "sectionGroup")
            .find(|e| doc.attr(*e, "name").as_deref() == Some(g))?;
    }
    let section = doc
        .children_named(parent, "section")
        .find(|e| doc.attr(*e, "name").as_deref() == Some(name))?;
    let attr = |n: &str| doc.attr(section, n);
    let attributes = doc
        .attrs(section)
        .iter()
        .map(|a| (doc.attr_name(a).to_string(), doc.attr_value(a).into_owned()))
        .filter(|(n, _)| n != "name" && n != "type")
        .collect();
    Some(Declaration {
        type_name: attr("type").unwrap_or_default().into_owned(),
        attributes,
        file: file.path.clone(),
        line: line_of(file, section),
        override_mode_default_deny: attr("overrideModeDefault").as_deref() == Some("Deny"),
        allow_definition: attr("allowDefinition")
            .and_then(|v| AllowDefinition::parse(&v))
            .unwrap_or(AllowDefinition::Everywhere),
        allow_location: attr("allowLocation").as_deref() != Some("false"),
    })
}

/// One lock on a section, and where it is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub section: &'static str,
    pub file: RemotePath,
    pub line: usize,
    pub kind: LockKind,
}

/// The attributes that control locks themselves: never refused.
pub const LOCK_ATTRIBUTES: [&str; 5] = [
    "lockItem",
    "lockAttributes",
    "lockAllAttributesExcept",
    "lockElements",
    "lockAllElementsExcept",
];

/// What of a definition a lock refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locked {
    /// The whole section.
    Section(&'static str),
    Attribute(String),
    Element(String),
}

impl fmt::Display for Locked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Locked::Section(s) => write!(f, "<{s}>"),
            Locked::Attribute(a) => write!(f, "the attribute {a}"),
            Locked::Element(e) => write!(f, "the element <{e}>"),
        }
    }
}

impl Lock {
    /// What of a definition this lock refuses (`None`: it is allowed).
    pub fn refuses(&self, attributes: &[&str], children: &[&str]) -> Option<Locked> {
        let listed = |list: &[String], name: &str| list.iter().any(|l| l == name || l == "*");
        let attribute = |a: &&str| Locked::Attribute(a.to_string());
        let element = |c: &&str| Locked::Element(c.to_string());
        match &self.kind {
            LockKind::Location(_)
            | LockKind::Item
            | LockKind::Default
            | LockKind::Definition(_)
            | LockKind::NoLocation => Some(Locked::Section(self.section)),
            LockKind::Attributes(list) => {
                attributes.iter().find(|a| listed(list, a)).map(attribute)
            }
            LockKind::AllAttributesExcept(list) => attributes
                .iter()
                .find(|a| !list.iter().any(|l| l == *a))
                .map(attribute),
            LockKind::Elements(list) => children.iter().find(|c| listed(list, c)).map(element),
            LockKind::AllElementsExcept(list) => children
                .iter()
                .find(|c| !list.iter().any(|l| l == *c))
                .map(element),
        }
    }

    /// Whether the lock refuses a definition setting these attributes.
    pub fn refuses_attributes(&self, attributes: &[&str]) -> Option<Locked> {
        self.refuses(attributes, &[])
    }
}

impl fmt::Display for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |l: &[String]| l.join(",");
        match &self.kind {
            LockKind::Location(attr) => write!(f, "{attr} on the <location> at line {}", self.line),
            LockKind::Item => write!(f, "lockItem=\"true\" at line {}", self.line),
            LockKind::Default => write!(
                f,
                "overrideModeDefault=\"Deny\" (Config_section_locked) on its <section> declaration at line {}",
                self.line
            ),
            LockKind::Definition(d) => write!(
                f,
                "allowDefinition=\"{}\" ({}) on its <section> declaration at line {}",
                d.name(),
                d.resource(),
                self.line
            ),
            LockKind::NoLocation => write!(
                f,
                "allowLocation=\"false\" (no <location path> may hold it: Config_section_cannot_be_used_in_location) on its <section> declaration at line {}",
                self.line
            ),
            LockKind::Attributes(l) => {
                write!(f, "lockAttributes=\"{}\" at line {}", list(l), self.line)
            }
            LockKind::AllAttributesExcept(l) => {
                write!(
                    f,
                    "lockAllAttributesExcept=\"{}\" at line {}",
                    list(l),
                    self.line
                )
            }
            LockKind::Elements(l) => {
                write!(f, "lockElements=\"{}\" at line {}", list(l), self.line)
            }
            LockKind::AllElementsExcept(l) => {
                write!(
                    f,
                    "lockAllElementsExcept=\"{}\" at line {}",
                    list(l),
                    self.line
                )
            }
        }?;
        write!(f, " of {}", self.file)
    }
}

/// A lower level setting what a parent locked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockViolation {
    pub section: &'static str,
    pub file: RemotePath,
    pub line: usize,
    /// What is refused: `<machineKey>`, `the attribute validationKey`.
    #[serde(serialize_with = "as_text")]
    pub what: Locked,
    #[serde(serialize_with = "as_text")]
    pub lock: Lock,
}

fn as_text<T: fmt::Display, S: serde::Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// Whether a `<location>` locks the sections it holds, and with what.
pub fn location_lock(doc: &Document, container: ElemId) -> Option<&'static str> {
    if doc.name(container) != "location" {
        return None;
    }
    // Exact spellings: XmlUtil.VerifyAndGetBooleanAttribute and
    // OverrideModeSetting.ParseOverrideModeXmlValue are case-sensitive.
    if doc.attr(container, "allowOverride").as_deref() == Some("false") {
        Some("allowOverride=\"false\"")
    } else if doc.attr(container, "overrideMode").as_deref() == Some("Deny") {
        Some("overrideMode=\"Deny\"")
    } else {
        None
    }
}

/// Whether a `<location>` explicitly allows the sections it holds to be
/// set below it (`overrideMode="Allow"`, `allowOverride="true"`).
pub fn location_allows(doc: &Document, container: ElemId) -> bool {
    doc.name(container) == "location"
        && (doc.attr(container, "allowOverride").as_deref() == Some("true")
            || doc.attr(container, "overrideMode").as_deref() == Some("Allow"))
}

/// The locks a section sets for the levels below it: its `<location>`'s,
/// then those on its element.
pub fn locks_set_by(
    section_name: &'static str,
    section: &Section<'_>,
    container_file: &ConfigFile,
    container: ElemId,
) -> Vec<Lock> {
    let mut out = Vec::new();
    if let Some(attr) = location_lock(&container_file.doc, container) {
        out.push(Lock {
            section: section_name,
            file: container_file.path.clone(),
            line: line_of(container_file, container),
            kind: LockKind::Location(attr),
        });
    }
    let (file, elem) = (section.file, section.elem);
    let doc = &file.doc;
    let lock = |kind| Lock {
        section: section_name,
        file: file.path.clone(),
        line: line_of(file, elem),
        kind,
    };
    // ConfigurationElement.ParseLockedAttributes splits every list on
    // ',', ':' and ';'.
    let list = |name: &str| -> Option<Vec<String>> {
        let v = doc.attr(elem, name)?;
        let items: Vec<String> = v
            .split([',', ':', ';'])
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        (!items.is_empty()).then_some(items)
    };
    if doc
        .attr(elem, "lockItem")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        out.push(lock(LockKind::Item));
    }
    if let Some(l) = list("lockAttributes") {
        out.push(lock(LockKind::Attributes(l)));
    }
    if let Some(l) = list("lockAllAttributesExcept") {
        out.push(lock(LockKind::AllAttributesExcept(l)));
    }
    if let Some(l) = list("lockElements") {
        out.push(lock(LockKind::Elements(l)));
    }
    if let Some(l) = list("lockAllElementsExcept") {
        out.push(lock(LockKind::AllElementsExcept(l)));
    }
    out
}

/// The attributes and child elements a section's content sets, as locks see
/// them (the lock attributes themselves excluded).
pub fn definition_of(doc: &Document, elem: ElemId) -> (Vec<&str>, Vec<&str>) {
    let attrs = doc
        .attrs(elem)
        .iter()
        .map(|a| doc.attr_name(a))
        .filter(|a| !LOCK_ATTRIBUTES.contains(a))
        .collect();
    let children = doc.children(elem).iter().map(|&c| doc.name(c)).collect();
    (attrs, children)
}

/// The first lock that refuses a section's definition, with what it refuses.
pub fn first_refusal<'l>(
    locks: &'l [Lock],
    section_name: &str,
    section: &Section<'_>,
) -> Option<(&'l Lock, Locked)> {
    let (attrs, children) = definition_of(&section.file.doc, section.elem);
    locks
        .iter()
        .filter(|l| l.section == section_name)
        .find_map(|l| l.refuses(&attrs, &children).map(|what| (l, what)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(kind: LockKind) -> Lock {
        Lock {
            section: "machineKey",
            file: RemotePath::parse("C:\\root\\web.config").unwrap(),
            line: 4,
            kind,
        }
    }

    #[test]
    fn a_declaration_restricts_where_its_section_is_set() {
        let file = ConfigFile {
            path: RemotePath::parse("C:\\Windows\\machine.config").unwrap(),
            doc: Document::parse(crate::bytes::FileBytes::new(
                br#"<configuration>
<configSections>
<sectionGroup name="system.web">
<section name="machineKey" type="T" allowDefinition="MachineToWebRoot" overrideModeDefault="Deny" allowLocation="false" />
</sectionGroup>
<section name="system.identityModel" type="U" allowDefinition="machineOnly" />
</configSections>
</configuration>"#
                    .to_vec(),
            ))
            .unwrap(),
        };
        let mk = declaration(&file, "system.web/machineKey").unwrap();
        assert_eq!(mk.line, 4);
        assert!(mk.override_mode_default_deny && !mk.allow_location);
        assert_eq!(mk.allow_definition, AllowDefinition::MachineToWebRoot);
        let d = mk.allow_definition;
        assert!(d.allows(DefinitionLevel::Machine) && d.allows(DefinitionLevel::RootWebConfig));
        assert!(!d.allows(DefinitionLevel::Site));
        assert!(!AllowDefinition::MachineOnly.allows(DefinitionLevel::RootWebConfig));
        // A value spelled otherwise is no restriction farmkey reads.
        let im = declaration(&file, "system.identityModel").unwrap();
        assert_eq!(im.allow_definition, AllowDefinition::Everywhere);
        assert!(
            declaration(&file, "machineKey").is_none(),
            "outside its group"
        );
    }

    #[test]
    fn what_each_lock_refuses() {
        let attrs = ["validation", "validationKey"];
        assert_eq!(
            lock(LockKind::Location("allowOverride=\"false\"")).refuses(&[], &[]),
            Some(Locked::Section("machineKey")),
            "a locked section refuses even an empty element"
        );
        assert_eq!(
            lock(LockKind::Attributes(vec!["validationKey".into()])).refuses(&attrs, &[]),
            Some(Locked::Attribute("validationKey".into()))
        );
        assert_eq!(
            lock(LockKind::Attributes(vec!["decryptionKey".into()])).refuses(&attrs, &[]),
            None
        );
        assert!(
            lock(LockKind::Attributes(vec!["*".into()]))
                .refuses(&attrs, &[])
                .is_some()
        );
        assert_eq!(
            lock(LockKind::AllAttributesExcept(vec!["validation".into()])).refuses(&attrs, &[]),
            Some(Locked::Attribute("validationKey".into()))
        );
        assert_eq!(
            lock(LockKind::Elements(vec!["identityConfiguration".into()]))
                .refuses(&[], &["identityConfiguration"]),
            Some(Locked::Element("identityConfiguration".into()))
        );
        assert_eq!(
            lock(LockKind::Attributes(vec!["validationKey".into()])).to_string(),
            "lockAttributes=\"validationKey\" at line 4 of C:\\root\\web.config"
        );
    }

    #[test]
    fn what_a_lock_refuses_is_worded() {
        assert_eq!(Locked::Section("machineKey").to_string(), "<machineKey>");
        assert_eq!(
            Locked::Attribute("validationKey".into()).to_string(),
            "the attribute validationKey"
        );
        assert_eq!(
            Locked::Element("identityConfiguration".into()).to_string(),
            "the element <identityConfiguration>"
        );
    }
}
