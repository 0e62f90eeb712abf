//! Windows Identity Foundation as it decides which handler protects the
//! session cookie (System.IdentityModel.Configuration in the reference
//! source; the `<federationConfiguration>` schema in Microsoft's docs):
//!
//! - the SAM and WSFAM read the default (unnamed) `<federationConfiguration>`;
//!   its `identityConfigurationName` names the `<identityConfiguration>` in
//!   use, the unnamed one when absent;
//! - a name that matches no element throws ID7012
//!   (IdentityConfigurationElementCollection.GetElement);
//! - no element at all means WIF's defaults
//!   (IdentityConfiguration.LoadConfiguration(null)), whose handler
//!   collection holds the DPAPI `SessionSecurityTokenHandler`; so does the
//!   start of every `<securityTokenHandlers>` (its Init);
//! - two handlers for one token type make the collection throw.
//!
//! The verdict on the chain ([`super`]) chooses the configuration in use through
//! [`identity_configuration_in_use`], once, from the whole chain; the push
//! hands that choice to the editor, which never works it out from one file.

use crate::config::problem::bounded;
use crate::config::xml::{Document, ElemId};
use std::fmt;

pub const SESSION_HANDLER: &str = "SessionSecurityTokenHandler";
pub const MACHINE_KEY_HANDLER: &str = "MachineKeySessionSecurityTokenHandler";
pub const SESSION_HANDLER_TYPE: &str = "System.IdentityModel.Tokens.SessionSecurityTokenHandler, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089";
pub const MACHINE_KEY_HANDLER_TYPE: &str = "System.IdentityModel.Services.Tokens.MachineKeySessionSecurityTokenHandler, System.IdentityModel.Services, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089";
pub const IDENTITY_MODEL_SECTION_TYPE: &str = "System.IdentityModel.Configuration.SystemIdentityModelSection, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=B77A5C561934E089";

/// The WIF sections a `<configSections>` can register.
pub const SECTIONS: [&str; 2] = ["system.identityModel", "system.identityModel.services"];

/// The modules that make an application use WIF when registered.
const MODULES: [&str; 2] = [
    "sessionauthenticationmodule",
    "wsfederationauthenticationmodule",
];

/// The class name of a type reference, ignoring namespace, assembly
/// qualifiers, white space and case.
pub fn short_type_name(type_ref: &str) -> String {
    let before_comma = type_ref.split(',').next().unwrap_or("");
    let compact: String = before_comma
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    compact
        .rsplit('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Whether a file's `<configSections>` registers this section.
pub fn declares(doc: &Document, section: &str) -> bool {
    doc.child_named(doc.root(), "configSections")
        .is_some_and(|cs| {
            doc.children_named(cs, "section")
                .any(|s| doc.attr(s, "name").is_some_and(|n| n.trim() == section))
        })
}

/// A modules collection (`system.webServer/modules`, `system.web/httpModules`)
/// replayed level by level: `add`, `remove` and `clear` by name.
#[derive(Debug, Clone, Default)]
pub struct Modules {
    /// (name, short type name, where it was added), names compared without
    /// regard to case.
    entries: Vec<(String, String, String)>,
}

impl Modules {
    /// Applies one level's collection; `origin` names its file in messages.
    pub fn apply(&mut self, doc: &Document, collection: ElemId, origin: &str) {
        for &entry in doc.children(collection) {
            let name = doc
                .attr(entry, "name")
                .unwrap_or_default()
                .trim()
                .to_string();
            match doc.name(entry) {
                "clear" => self.entries.clear(),
                "remove" => self
                    .entries
                    .retain(|(n, _, _)| !n.eq_ignore_ascii_case(&name)),
                "add" => {
                    let ty = short_type_name(&doc.attr(entry, "type").unwrap_or_default());
                    self.entries
                        .retain(|(n, _, _)| !n.eq_ignore_ascii_case(&name));
                    self.entries.push((name, ty, origin.to_string()));
                }
                _ => {}
            }
        }
    }

    /// A registered WIF module: its name and the file that adds it.
    pub fn wif_module(&self) -> Option<(&str, &str)> {
        self.entries
            .iter()
            .find(|(_, ty, _)| MODULES.contains(&ty.as_str()))
            .map(|(n, _, origin)| (n.as_str(), origin.as_str()))
    }
}

/// The default `<federationConfiguration>` of a services section: the one
/// without a name.
pub fn default_federation(doc: &Document, services: ElemId) -> Option<ElemId> {
    doc.children_named(services, "federationConfiguration")
        .filter(|&fc| doc.attr(fc, "name").is_none_or(|n| n.is_empty()))
        .last()
}

/// The `<identityConfiguration>` the SAM and WSFAM use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InUse<T> {
    /// Its name; empty for the unnamed one.
    pub name: String,
    /// The `<federationConfiguration>` that names it, when one does.
    pub named_by: Option<(T, ElemId)>,
}

/// Chooses the configuration in use from the `system.identityModel.services`
/// sections that apply, in the order the runtime applies them: the last
/// default `<federationConfiguration>` decides. `T` tags where each section
/// comes from.
pub fn identity_configuration_in_use<'a, T: Copy>(
    services: impl IntoIterator<Item = (T, &'a Document, ElemId)>,
) -> InUse<T> {
    let mut in_use = InUse {
        name: String::new(),
        named_by: None,
    };
    for (tag, doc, section) in services {
        if let Some(fc) = default_federation(doc, section) {
            in_use = match doc.attr(fc, "identityConfigurationName") {
                Some(n) if !n.is_empty() => InUse {
                    name: n.into_owned(),
                    named_by: Some((tag, fc)),
                },
                _ => InUse {
                    name: String::new(),
                    named_by: None,
                },
            };
        }
    }
    in_use
}

/// The name of an `<identityConfiguration>`; empty when unnamed.
pub fn configuration_name(doc: &Document, ic: ElemId) -> String {
    doc.attr(ic, "name").unwrap_or_default().into_owned()
}

/// The `<securityTokenHandlers>` collections of a configuration as
/// System.Configuration builds its set of them: each is keyed by its
/// `name`, and `<remove name>` and `<clear/>` among them drop the ones
/// before (the set is an add/remove/clear collection, whose add element
/// SecurityTokenHandlerSetElementCollection names `securityTokenHandlers`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandlerSets {
    /// The collections left, in order.
    pub live: Vec<ElemId>,
    /// The first collection whose name an earlier live one has (ID7029).
    pub repeated: Option<(ElemId, String)>,
    /// Collections a later `<remove>` or `<clear/>` dropped, with that
    /// element.
    pub dropped: Vec<(ElemId, ElemId)>,
}

pub fn handler_sets(doc: &Document, ic: ElemId) -> HandlerSets {
    let mut sets = HandlerSets::default();
    let name = |e: ElemId| doc.attr(e, "name").unwrap_or_default().into_owned();
    for &child in doc.children(ic) {
        match doc.name(child) {
            "securityTokenHandlers" => {
                if sets.repeated.is_none() && sets.live.iter().any(|&c| name(c) == name(child)) {
                    sets.repeated = Some((child, name(child)));
                }
                sets.live.push(child);
            }
            "remove" => {
                let gone = name(child);
                let (out, keep): (Vec<ElemId>, Vec<ElemId>) =
                    sets.live.iter().partition(|&&c| name(c) == gone);
                sets.dropped.extend(out.into_iter().map(|c| (c, child)));
                sets.live = keep;
            }
            "clear" => {
                sets.dropped.extend(sets.live.drain(..).map(|c| (c, child)));
            }
            _ => {}
        }
    }
    sets
}

/// Whether a collection is the default one: LoadHandlers takes a name that
/// is null or empty (compared exactly: `name=" "` is a named collection).
pub fn is_default_collection(doc: &Document, collection: ElemId) -> bool {
    doc.attr(collection, "name").is_none_or(|n| n.is_empty())
}

/// The live default `<securityTokenHandlers>` of a configuration: named
/// ones serve other usages (ActAs, OnBehalfOf ...), never the SAM.
pub fn default_collections(doc: &Document, ic: ElemId) -> impl Iterator<Item = ElemId> + '_ {
    handler_sets(doc, ic)
        .live
        .into_iter()
        .filter(move |&h| is_default_collection(doc, h))
}

/// WIF's own handler classes (System.IdentityModel's Tokens folder in the
/// reference source, and the MachineKey one of System.IdentityModel.Services):
/// full type name, class, assembly, and the name farmkey writes. Their
/// `type` is checked as .NET loads it; a handler of any other class is the
/// application's own.
const KNOWN: [(&str, &str, &str, &str); 9] = [
    (
        "System.IdentityModel.Tokens.SessionSecurityTokenHandler",
        SESSION_HANDLER,
        "System.IdentityModel",
        SESSION_HANDLER_TYPE,
    ),
    (
        "System.IdentityModel.Services.Tokens.MachineKeySessionSecurityTokenHandler",
        MACHINE_KEY_HANDLER,
        "System.IdentityModel.Services",
        MACHINE_KEY_HANDLER_TYPE,
    ),
    (
        "System.IdentityModel.Tokens.SamlSecurityTokenHandler",
        "SamlSecurityTokenHandler",
        "System.IdentityModel",
        "System.IdentityModel.Tokens.SamlSecurityTokenHandler, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089",
    ),
    (
        "System.IdentityModel.Tokens.Saml2SecurityTokenHandler",
        "Saml2SecurityTokenHandler",
        "System.IdentityModel",
        "System.IdentityModel.Tokens.Saml2SecurityTokenHandler, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089",
    ),
    (
        "System.IdentityModel.Tokens.WindowsUserNameSecurityTokenHandler",
        "WindowsUserNameSecurityTokenHandler",
        "System.IdentityModel",
        "System.IdentityModel.Tokens.WindowsUserNameSecurityTokenHandler, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089",
    ),
    (
        "System.IdentityModel.Tokens.X509SecurityTokenHandler",
        "X509SecurityTokenHandler",
        "System.IdentityModel",
        "System.IdentityModel.Tokens.X509SecurityTokenHandler, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089",
    ),
    (
        "System.IdentityModel.Tokens.KerberosSecurityTokenHandler",
        "KerberosSecurityTokenHandler",
        "System.IdentityModel",
        "System.IdentityModel.Tokens.KerberosSecurityTokenHandler, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089",
    ),
    (
        "System.IdentityModel.Tokens.RsaSecurityTokenHandler",
        "RsaSecurityTokenHandler",
        "System.IdentityModel",
        "System.IdentityModel.Tokens.RsaSecurityTokenHandler, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089",
    ),
    (
        "System.IdentityModel.Tokens.EncryptedSecurityTokenHandler",
        "EncryptedSecurityTokenHandler",
        "System.IdentityModel",
        "System.IdentityModel.Tokens.EncryptedSecurityTokenHandler, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089",
    ),
];

/// A handler's `type` as WIF resolves it: CustomTypeElement's
/// TypeNameConverter calls Type.GetType (type names case-sensitive, an
/// unqualified name looked up in mscorlib and System.Configuration only),
/// and a partial assembly name is looked up in the application's folder,
/// never in the GAC that holds WIF. A name that does not resolve makes the
/// collection throw while the section is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerType {
    /// One of WIF's handlers, keyed by [`short_type_name`].
    Known(String),
    /// A type farmkey cannot check (the application's own, or one of WIF's
    /// not in the reference source), keyed by its text.
    Other(String),
    /// A WIF handler's name that does not resolve: why, and the name that
    /// does.
    Unresolved {
        why: Unresolvable,
        qualified: &'static str,
    },
}

/// Whether a replayed handler is the application's own class: WIF's are
/// keyed by their short name, and the rest of WIF's namespace is no session
/// handler farmkey needs to know.
fn is_custom(key: &str) -> bool {
    !KNOWN.iter().any(|k| short_type_name(k.1) == key)
        && !key.trim_start().starts_with("System.IdentityModel.")
}

impl HandlerType {
    fn key(self) -> Option<String> {
        match self {
            HandlerType::Known(k) | HandlerType::Other(k) => Some(k),
            HandlerType::Unresolved { .. } => None,
        }
    }
}

/// Why .NET cannot load a session handler's type name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolvable {
    /// The full name in another case: type names are case-sensitive.
    Case { written: String, full: &'static str },
    /// Another namespace or class.
    NoSuchType { written: String, full: &'static str },
    /// No assembly named: only mscorlib and System.Configuration are searched.
    NoAssembly {
        full: &'static str,
        home: &'static str,
    },
    /// Another assembly named than the one that holds the type.
    OtherAssembly {
        full: &'static str,
        home: &'static str,
        named: String,
    },
    /// A part (Version, Culture, PublicKeyToken) of the assembly name
    /// missing: a partial name is looked up in the bin folder only.
    PartialName {
        named: String,
        part: &'static str,
        home: &'static str,
    },
    /// A part of the assembly name with another value than WIF's.
    OtherPart {
        home: &'static str,
        part: &'static str,
        value: String,
        want: &'static str,
    },
}

impl fmt::Display for Unresolvable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unresolvable::Case { written, full } => write!(
                f,
                "type names are case-sensitive: \"{written}\" is not \"{full}\""
            ),
            Unresolvable::NoSuchType { written, full } => {
                write!(f, "there is no type \"{written}\"; the class is \"{full}\"")
            }
            Unresolvable::NoAssembly { full, home } => write!(
                f,
                "no assembly is named, so .NET looks for \"{full}\" only in mscorlib and System.Configuration; it is in {home}"
            ),
            Unresolvable::OtherAssembly { full, home, named } => {
                write!(f, "\"{full}\" is in the assembly {home}, not \"{named}\"")
            }
            Unresolvable::PartialName { named, part, home } => write!(
                f,
                "the assembly name \"{named}\" lacks {part}: .NET looks for an assembly named in part only in the application's bin folder, not in the GAC that holds {home}"
            ),
            Unresolvable::OtherPart {
                home,
                part,
                value,
                want,
            } => write!(
                f,
                "there is no {home} with {part}={value}; it is {part}={want}"
            ),
        }
    }
}

pub fn resolve_handler_type(type_ref: &str) -> HandlerType {
    let (type_name, assembly) = match type_ref.split_once(',') {
        Some((t, a)) => (t.trim(), Some(a)),
        None => (type_ref.trim(), None),
    };
    let mut parts = assembly.map(|a| a.split(',').map(str::trim));
    let simple = parts.as_mut().and_then(Iterator::next).unwrap_or("");
    let class = type_name.rsplit('.').next().unwrap_or("").trim();
    let namespace = type_name.get(..type_name.len() - class.len()).unwrap_or("");
    let Some(&(full, _, home, qualified)) = KNOWN.iter().find(|(_, c, home, _)| {
        class.eq_ignore_ascii_case(c)
            && (assembly.is_none()
                || simple.eq_ignore_ascii_case(home)
                || KNOWN.iter().any(|k| simple.eq_ignore_ascii_case(k.2))
                || namespace
                    .to_ascii_lowercase()
                    .starts_with("system.identitymodel"))
    }) else {
        return HandlerType::Other(type_ref.trim().to_string());
    };
    let unresolved = |why| HandlerType::Unresolved { why, qualified };
    if type_name != full {
        let written = type_name.to_string();
        return unresolved(if type_name.eq_ignore_ascii_case(full) {
            Unresolvable::Case { written, full }
        } else {
            Unresolvable::NoSuchType { written, full }
        });
    }
    let Some(parts) = parts else {
        return unresolved(Unresolvable::NoAssembly { full, home });
    };
    if !simple.eq_ignore_ascii_case(home) {
        return unresolved(Unresolvable::OtherAssembly {
            full,
            home,
            named: simple.to_string(),
        });
    }
    let expected = [
        ("Version", "4.0.0.0"),
        ("Culture", "neutral"),
        ("PublicKeyToken", "b77a5c561934e089"),
    ];
    let pairs: Vec<(&str, &str)> = parts
        .filter_map(|p| p.split_once('=').map(|(k, v)| (k.trim(), v.trim())))
        .collect();
    for (part, want) in expected {
        match pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(part)) {
            None => {
                return unresolved(Unresolvable::PartialName {
                    named: simple.to_string(),
                    part,
                    home,
                });
            }
            Some((_, v)) if !v.eq_ignore_ascii_case(want) => {
                return unresolved(Unresolvable::OtherPart {
                    home,
                    part,
                    value: v.to_string(),
                    want,
                });
            }
            Some(_) => {}
        }
    }
    HandlerType::Known(short_type_name(full))
}

/// The first `add` or `remove` of a configuration's collections (named ones
/// too: the whole section is read) whose WIF handler does not resolve:
/// why, and the name that does.
pub fn unresolved_handler(
    doc: &Document,
    ic: ElemId,
) -> Option<(ElemId, Unresolvable, &'static str)> {
    doc.children_named(ic, "securityTokenHandlers")
        .flat_map(|c| doc.children(c).iter().copied())
        .filter(|&e| matches!(doc.name(e), "add" | "remove"))
        .find_map(
            |e| match resolve_handler_type(&doc.attr(e, "type").unwrap_or_default()) {
                HandlerType::Unresolved { why, qualified } => Some((e, why, qualified)),
                _ => None,
            },
        )
}

/// The child elements `<identityConfiguration>` knows
/// (IdentityConfigurationElement's properties, and its default collection's
/// `securityTokenHandlers`, `remove` and `clear`).
const IDENTITY_CONFIGURATION_CHILDREN: [&str; 13] = [
    "audienceUris",
    "caches",
    "certificateValidation",
    "claimsAuthenticationManager",
    "claimsAuthorizationManager",
    "issuerNameRegistry",
    "issuerTokenResolver",
    "serviceTokenResolver",
    "tokenReplayDetection",
    "applicationService",
    "securityTokenHandlers",
    "remove",
    "clear",
];

/// Attributes every configuration element takes (ConfigurationElement's
/// lock attributes), and namespace declarations.
fn is_reserved_attribute(name: &str) -> bool {
    matches!(
        name,
        "lockAttributes"
            | "lockAllAttributesExcept"
            | "lockElements"
            | "lockAllElementsExcept"
            | "lockItem"
    ) || name == "xmlns"
        || name.starts_with("xmlns:")
}

/// Why System.Configuration refuses an element as it reads it: the
/// resource name of its exception, and what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Config_base_unrecognized_element (names compare exactly).
    Element(String),
    /// Config_base_unrecognized_attribute.
    Attribute(String),
    /// Config_base_required_attribute_missing.
    Missing(&'static str),
}

impl Refused {
    /// The clause for messages; `known` is what the element takes, to
    /// name a spelling that differs only in case.
    pub fn clause(&self, known: &[&str]) -> String {
        let case = |name: &str| {
            known
                .iter()
                .find(|k| k.eq_ignore_ascii_case(name))
                .map(|k| format!(" (names are case-sensitive: it is \"{k}\")"))
                .unwrap_or_default()
        };
        match self {
            Refused::Element(name) => format!(
                "no element of that name is known there{}: Config_base_unrecognized_element",
                case(name)
            ),
            Refused::Attribute(name) => format!(
                "the attribute {} is not one it takes{}: Config_base_unrecognized_attribute",
                bounded(name),
                case(name)
            ),
            Refused::Missing(name) => {
                format!("it lacks the attribute {name}: Config_base_required_attribute_missing")
            }
        }
    }
}

/// The first element of a `<system.identityModel>`'s collections, or of an
/// `<identityConfiguration>`'s handler collections, that System.Configuration
/// refuses as it reads the section: the element at fault, why, and the
/// names that element (or its parent, for an unknown child) takes. A
/// handler's `<add>` is a CustomTypeElement, which ignores attributes and
/// children it does not know; `<remove>` is read by its key only, and
/// `<clear/>` takes no attribute.
pub fn refused_markup(
    doc: &Document,
    parent: ElemId,
) -> Option<(ElemId, Refused, &'static [&'static str])> {
    let attrs = |e: ElemId| {
        doc.attrs(e)
            .iter()
            .map(|a| doc.attr_name(a).to_string())
            .filter(|n| !is_reserved_attribute(n))
            .collect::<Vec<_>>()
    };
    let only = |e: ElemId, allowed: &'static [&'static str]| {
        attrs(e)
            .into_iter()
            .find(|n| !allowed.contains(&n.as_str()))
            .map(|n| (e, Refused::Attribute(n), allowed))
    };
    // `<clear/>` refuses every attribute, the lock attributes too.
    let bare = |e: ElemId| {
        doc.attrs(e)
            .first()
            .map(|a| (e, Refused::Attribute(doc.attr_name(a).to_string()), NONE))
    };
    let required = |e: ElemId, name: &'static str, known: &'static [&'static str]| {
        doc.find_attr(e, name)
            .is_none()
            .then_some((e, Refused::Missing(name), known))
    };
    let children = |e: ElemId, known: &'static [&'static str]| {
        doc.children(e)
            .iter()
            .find(|&&c| !known.contains(&doc.name(c)))
            .map(|&c| (c, Refused::Element(doc.name(c).to_string()), known))
    };
    const SECTION: &[&str] = &["identityConfiguration", "remove", "clear"];
    const NAME: &[&str] = &["name"];
    const TYPE: &[&str] = &["type"];
    const NONE: &[&str] = &[];
    const HANDLERS: &[&str] = &[
        "add",
        "remove",
        "clear",
        "securityTokenHandlerConfiguration",
    ];
    let is_section = doc.name(parent) != "identityConfiguration";
    let known: &'static [&'static str] = if is_section {
        SECTION
    } else {
        &IDENTITY_CONFIGURATION_CHILDREN
    };
    if let Some(bad) = children(parent, known) {
        return Some(bad);
    }
    for &child in doc.children(parent) {
        let bad = match doc.name(child) {
            "remove" => only(child, NAME),
            "clear" => bare(child),
            "securityTokenHandlers" => only(child, NAME)
                .or_else(|| children(child, HANDLERS))
                .or_else(|| {
                    doc.children(child)
                        .iter()
                        .find_map(|&entry| match doc.name(entry) {
                            "add" => required(entry, "type", TYPE),
                            "remove" => required(entry, "type", TYPE).or_else(|| only(entry, TYPE)),
                            "clear" => bare(entry),
                            _ => None,
                        })
                }),
            _ => None,
        };
        if bad.is_some() {
            return bad;
        }
    }
    None
}

/// A second `<securityTokenHandlers>` with the name of an earlier one (the
/// unnamed ones included) in one configuration, no `<remove>` or `<clear/>`
/// between them: WIF throws ID7029
/// (SecurityTokenHandlerSetElementCollection.BaseAdd). Names compare
/// exactly, as the collection's keys do.
pub fn repeated_collection(doc: &Document, ic: ElemId) -> Option<(ElemId, String)> {
    handler_sets(doc, ic).repeated
}

/// The handlers after one collection's `clear`/`remove`/`add` on `start`,
/// and its first `add` of the MachineKey handler. Entries are keyed by the
/// type they resolve to; one that does not resolve is skipped (see
/// [`unresolved_handler`]).
pub fn replay_collection(
    doc: &Document,
    collection: ElemId,
    mut handlers: Vec<String>,
) -> (Vec<String>, Option<ElemId>) {
    let machine = short_type_name(MACHINE_KEY_HANDLER);
    let mut first_machine_add = None;
    for &entry in doc.children(collection) {
        let ty = resolve_handler_type(&doc.attr(entry, "type").unwrap_or_default()).key();
        match (doc.name(entry), ty) {
            ("clear", _) => handlers.clear(),
            ("remove", Some(ty)) => handlers.retain(|h| *h != ty),
            ("add", Some(ty)) => {
                if ty == machine && first_machine_add.is_none() {
                    first_machine_add = Some(entry);
                }
                if !handlers.contains(&ty) {
                    handlers.push(ty);
                }
            }
            _ => {}
        }
    }
    (handlers, first_machine_add)
}

/// The handlers an `<identityConfiguration>` ends with, starting from WIF's
/// default collection (of which only the session handler matters here).
pub fn handlers_of(doc: &Document, ic: ElemId) -> Vec<String> {
    default_collections(doc, ic).fold(vec![short_type_name(SESSION_HANDLER)], |set, c| {
        replay_collection(doc, c, set).0
    })
}

/// What protects session tokens with a set of handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenProtection {
    /// The swap: MachineKeySessionSecurityTokenHandler alone.
    MachineKey,
    /// Both session handlers: WIF throws at start-up.
    Duplicate,
    /// The default DPAPI handler.
    Dpapi,
    /// Neither, and no handler of the application's own: the SAM finds no
    /// handler for session tokens.
    NoHandler,
    /// Neither, but a handler of the application's own class (its `type`):
    /// whether it handles session tokens, and how, is in its assembly.
    Custom(String),
}

pub fn judge(handlers: &[String]) -> TokenProtection {
    let has = |h: &str| handlers.contains(&short_type_name(h));
    match (has(MACHINE_KEY_HANDLER), has(SESSION_HANDLER)) {
        (true, false) => TokenProtection::MachineKey,
        (true, true) => TokenProtection::Duplicate,
        (false, true) => TokenProtection::Dpapi,
        (false, false) => match handlers.iter().find(|h| is_custom(h)) {
            Some(custom) => TokenProtection::Custom(custom.clone()),
            None => TokenProtection::NoHandler,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::FileBytes;

    fn doc(xml: &str) -> Document {
        Document::parse(FileBytes::new(xml.as_bytes().to_vec())).unwrap()
    }

    #[test]
    fn the_default_federation_configuration_names_the_one_in_use() {
        let d = doc(
            r#"<s><federationConfiguration name="other" identityConfigurationName="x"/><federationConfiguration identityConfigurationName="swap"/></s>"#,
        );
        let in_use = identity_configuration_in_use([((), &d, d.root())]);
        assert_eq!(in_use.name, "swap");
        assert!(in_use.named_by.is_some());
        let unnamed =
            doc(r#"<s><federationConfiguration name="only" identityConfigurationName="x"/></s>"#);
        let in_use = identity_configuration_in_use([((), &unnamed, unnamed.root())]);
        assert_eq!(
            in_use.name, "",
            "a named federationConfiguration is not the default"
        );
        // A later level's default element decides, attribute or not.
        let later = doc("<s><federationConfiguration/></s>");
        let in_use = identity_configuration_in_use([(1, &d, d.root()), (2, &later, later.root())]);
        assert_eq!((in_use.name.as_str(), in_use.named_by), ("", None));
    }

    #[test]
    fn handlers_replay_on_the_default_collection() {
        let d = doc(&format!(
            r#"<ic><securityTokenHandlers name="ActAs"><clear/></securityTokenHandlers><securityTokenHandlers><add type="{MACHINE_KEY_HANDLER_TYPE}"/></securityTokenHandlers></ic>"#
        ));
        assert_eq!(
            judge(&handlers_of(&d, d.root())),
            TokenProtection::Duplicate
        );
        let swap = doc(&format!(
            r#"<ic><securityTokenHandlers><remove type="{SESSION_HANDLER_TYPE}"/><add type="{MACHINE_KEY_HANDLER_TYPE}"/></securityTokenHandlers></ic>"#
        ));
        assert_eq!(
            judge(&handlers_of(&swap, swap.root())),
            TokenProtection::MachineKey
        );
        assert_eq!(
            judge(&handlers_of(&doc("<ic/>"), 0)),
            TokenProtection::Dpapi
        );
        let cleared = doc("<ic><securityTokenHandlers><clear/></securityTokenHandlers></ic>");
        assert_eq!(
            judge(&handlers_of(&cleared, cleared.root())),
            TokenProtection::NoHandler
        );
    }

    #[test]
    fn handler_sets_are_an_add_remove_clear_collection_keyed_by_exact_name() {
        let d = doc(
            r#"<ic><securityTokenHandlers/><remove name=""/><securityTokenHandlers/><securityTokenHandlers name=" "/><clear/><securityTokenHandlers name="ActAs"/></ic>"#,
        );
        let sets = handler_sets(&d, d.root());
        assert_eq!(sets.repeated, None, "the remove drops the first");
        assert_eq!(sets.live.len(), 1);
        assert_eq!(sets.dropped.len(), 3);
        assert_eq!(default_collections(&d, d.root()).count(), 0);
        let blank = doc(r#"<ic><securityTokenHandlers name=" "/><securityTokenHandlers/></ic>"#);
        assert_eq!(repeated_collection(&blank, blank.root()), None);
        assert_eq!(default_collections(&blank, blank.root()).count(), 1);
        let twice = doc("<ic><securityTokenHandlers/><securityTokenHandlers name=\"\"/></ic>");
        assert!(repeated_collection(&twice, twice.root()).is_some());
    }

    #[test]
    fn a_collection_without_session_handlers_is_none_or_custom() {
        let judged = |adds: &str| {
            let d = doc(&format!(
                r#"<ic><securityTokenHandlers><clear/>{adds}</securityTokenHandlers></ic>"#
            ));
            judge(&handlers_of(&d, d.root()))
        };
        assert_eq!(judged(""), TokenProtection::NoHandler);
        // WIF's own handlers handle no session tokens.
        assert_eq!(
            judged(
                r#"<add type="System.IdentityModel.Tokens.Saml2SecurityTokenHandler, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089"/>"#
            ),
            TokenProtection::NoHandler
        );
        assert_eq!(
            judged(r#"<add type="Contoso.CoraHandler, Contoso"/>"#),
            TokenProtection::Custom("Contoso.CoraHandler, Contoso".into())
        );
        assert!(matches!(
            resolve_handler_type("System.IdentityModel.Tokens.X509SecurityTokenHandler"),
            HandlerType::Unresolved { qualified: q, .. } if q.starts_with("System.IdentityModel.Tokens.X509SecurityTokenHandler, System.IdentityModel, Version=4.0.0.0")
        ));
    }

    #[test]
    fn markup_system_configuration_refuses_is_found() {
        let refused = |xml: &str| {
            let d = doc(xml);
            refused_markup(&d, d.root())
                .map(|(e, why, known)| (d.name(e).to_string(), why.clause(known)))
        };
        let ic = |handlers: &str| {
            refused(&format!(
                "<identityConfiguration><securityTokenHandlers>{handlers}</securityTokenHandlers></identityConfiguration>"
            ))
        };
        assert_eq!(
            ic(r#"<clear/><add type="T" description="kept for the handler"><x/></add>"#),
            None
        );
        let (at, why) = ic(r#"<Add type="T"/>"#).unwrap();
        assert_eq!(at, "Add");
        assert!(
            why.contains("it is \"add\"") && why.ends_with("Config_base_unrecognized_element"),
            "{why}"
        );
        let (_, why) = ic(r#"<add Type="T"/>"#).unwrap();
        assert!(
            why.ends_with("Config_base_required_attribute_missing"),
            "{why}"
        );
        let (_, why) = ic(r#"<remove type="T" lockItem="true" name="x"/>"#).unwrap();
        assert!(
            why.contains("the attribute name ")
                && why.ends_with("Config_base_unrecognized_attribute"),
            "{why}"
        );
        assert!(ic(r#"<clear name="all"/>"#).is_some());
        assert!(ic(r#"<clear lockItem="true"/>"#).is_some());
        assert!(
            refused(r#"<identityConfiguration><SecurityTokenHandlers/></identityConfiguration>"#)
                .is_some()
        );
        assert!(refused(r#"<identityConfiguration><audienceUris/><remove name="x"/><clear/></identityConfiguration>"#).is_none());
        // The section's own collection.
        assert!(refused(r#"<system.identityModel><clear/><remove name=""/><identityConfiguration/></system.identityModel>"#).is_none());
        assert!(
            refused(r#"<system.identityModel><IdentityConfiguration/></system.identityModel>"#)
                .is_some()
        );
    }

    #[test]
    fn modules_replay_by_name() {
        let d = doc(
            r#"<m><add name="SessionAuthenticationModule" type="System.IdentityModel.Services.SessionAuthenticationModule, System.IdentityModel.Services"/></m>"#,
        );
        let mut m = Modules::default();
        m.apply(&d, d.root(), "a");
        assert_eq!(m.wif_module(), Some(("SessionAuthenticationModule", "a")));
        let removed = doc(r#"<m><remove name="sessionauthenticationmodule"/></m>"#);
        m.apply(&removed, removed.root(), "b");
        assert_eq!(m.wif_module(), None);
        assert_eq!(
            short_type_name(" System.A.B . SessionSecurityTokenHandler , X"),
            "sessionsecuritytokenhandler"
        );
    }

    #[test]
    fn why_a_type_does_not_load_is_worded() {
        let full = "System.IdentityModel.Services.Tokens.MachineKeySessionSecurityTokenHandler";
        let home = "System.IdentityModel.Services";
        for (why, wording) in [
            (
                Unresolvable::Case {
                    written: full.to_lowercase(),
                    full,
                },
                "type names are case-sensitive: \"system.identitymodel.services.tokens.machinekeysessionsecuritytokenhandler\" is not \"System.IdentityModel.Services.Tokens.MachineKeySessionSecurityTokenHandler\"",
            ),
            (
                Unresolvable::NoSuchType {
                    written: "MachineKeySessionSecurityTokenHandler".into(),
                    full,
                },
                "there is no type \"MachineKeySessionSecurityTokenHandler\"; the class is \"System.IdentityModel.Services.Tokens.MachineKeySessionSecurityTokenHandler\"",
            ),
            (
                Unresolvable::NoAssembly { full, home },
                "no assembly is named, so .NET looks for \"System.IdentityModel.Services.Tokens.MachineKeySessionSecurityTokenHandler\" only in mscorlib and System.Configuration; it is in System.IdentityModel.Services",
            ),
            (
                Unresolvable::OtherAssembly {
                    full,
                    home,
                    named: "System.IdentityModel".into(),
                },
                "\"System.IdentityModel.Services.Tokens.MachineKeySessionSecurityTokenHandler\" is in the assembly System.IdentityModel.Services, not \"System.IdentityModel\"",
            ),
            (
                Unresolvable::PartialName {
                    named: home.into(),
                    part: "Version",
                    home,
                },
                "the assembly name \"System.IdentityModel.Services\" lacks Version: .NET looks for an assembly named in part only in the application's bin folder, not in the GAC that holds System.IdentityModel.Services",
            ),
            (
                Unresolvable::OtherPart {
                    home,
                    part: "Version",
                    value: "4.5.0.0".into(),
                    want: "4.0.0.0",
                },
                "there is no System.IdentityModel.Services with Version=4.5.0.0; it is Version=4.0.0.0",
            ),
        ] {
            assert_eq!(why.to_string(), wording);
        }
    }
}
