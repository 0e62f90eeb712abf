//! How WIF protects an application's session tokens, decided once from its
//! whole configuration chain: which `<identityConfiguration>` is in use
//! (the scan judges it, the push puts the swap into it), whether the
//! application uses WIF at all, and what makes WIF refuse the configuration
//! at start-up. The rules WIF applies to single elements are in [`elements`].

pub mod elements;

use self::elements::{Modules, Refused, TokenProtection, Unresolvable};
use super::apphost::PipelineMode;
use super::problem::bounded;
use super::record::{ChainLevel, ConfigFile, Layer, Scope, line_of};
use super::xml::{Document, ElemId};
use crate::paths::RemotePath;
use std::fmt;

crate::spelled::spelled! {
    /// How WIF protects session tokens.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum HandlerState {
        /// MachineKeySessionSecurityTokenHandler added, SessionSecurityTokenHandler removed.
        MachineKey = "machinekey",
        /// The site uses WIF and the configuration in use keeps the DPAPI
        /// handler (or is WIF's defaults): readable on one machine only.
        Dpapi = "dpapi",
        /// The site does not use WIF.
        NotConfigured = "not-configured",
        /// `system.identityModel` is encrypted.
        Encrypted = "encrypted",
        /// WIF refuses the configuration at start-up (see [`Handler::fault`]).
        Invalid = "invalid",
        /// The collection the SAM uses has no handler for session tokens:
        /// it can neither write nor read a session cookie.
        None = "none",
        /// Only a handler of the application's own class can handle session
        /// tokens: how (or whether) it does is in its assembly.
        Custom = "custom",
    }
}

/// A WIF configuration that makes the application fail at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WifFault {
    /// `identityConfigurationName` names no `<identityConfiguration>` (ID7012).
    UnknownConfiguration {
        name: String,
        file: RemotePath,
        line: usize,
    },
    /// The swap's `add` without its `remove`: two handlers for session tokens.
    DuplicateHandler { file: RemotePath, line: usize },
    /// System.Configuration refuses the section as it reads it.
    Refused {
        file: RemotePath,
        line: usize,
        why: SectionRefusal,
    },
}

/// Why System.Configuration refuses `<system.identityModel>` as it reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionRefusal {
    /// A second `<securityTokenHandlers>` of one name in one
    /// `<identityConfiguration>` (ID7029); `name` is empty for unnamed ones.
    RepeatedCollection { name: String },
    /// An `<identityConfiguration>` of a name one in effect already has, at
    /// this level or one above (ID7029): where that one is.
    RepeatedConfiguration {
        name: String,
        first_file: RemotePath,
        first_line: usize,
    },
    /// Markup System.Configuration does not know (the element at fault,
    /// and the names it, or its parent, takes).
    Markup {
        element: String,
        why: Refused,
        known: &'static [&'static str],
    },
    /// A WIF handler's `type` that .NET cannot load.
    UnloadableType {
        /// `add` or `remove`.
        element: String,
        type_ref: String,
        why: Unresolvable,
        /// The name that loads.
        qualified: &'static str,
    },
}

impl fmt::Display for WifFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WifFault::UnknownConfiguration { name, file, line } => write!(
                f,
                "identityConfigurationName=\"{name}\" (line {line} of {file}) names no <identityConfiguration>; WIF throws ID7012 at start-up"
            ),
            WifFault::DuplicateHandler { file, line } => write!(
                f,
                "MachineKeySessionSecurityTokenHandler is added but SessionSecurityTokenHandler is not removed (<identityConfiguration> at line {line} of {file}); WIF refuses two handlers for one token type at start-up"
            ),
            WifFault::Refused {
                file,
                line,
                why: SectionRefusal::RepeatedCollection { name },
            } => {
                if name.is_empty() {
                    f.write_str("a second unnamed <securityTokenHandlers>")?;
                } else {
                    write!(f, "a second <securityTokenHandlers name=\"{name}\">")?;
                }
                write!(
                    f,
                    " (line {line} of {file}) in one <identityConfiguration>; WIF throws ID7029 at start-up. Merge its entries into the first"
                )
            }
            WifFault::Refused {
                file,
                line,
                why:
                    SectionRefusal::UnloadableType {
                        element,
                        type_ref,
                        why,
                        qualified,
                    },
            } => write!(
                f,
                "<{element} type=\"{}\"> (line {line} of {file}) names a type .NET cannot load: {why}; WIF refuses its configuration at start-up. Write the full name: {qualified}",
                bounded(type_ref)
            ),
            WifFault::Refused {
                file,
                line,
                why:
                    SectionRefusal::RepeatedConfiguration {
                        name,
                        first_file,
                        first_line,
                    },
            } => {
                if name.is_empty() {
                    f.write_str("a second unnamed <identityConfiguration>")?;
                } else {
                    write!(
                        f,
                        "a second <identityConfiguration name=\"{}\">",
                        bounded(name)
                    )?;
                }
                write!(
                    f,
                    " (line {line} of {file}) while the one at line {first_line} of {first_file} is in effect; WIF throws ID7029 at start-up. Keep one, or drop the first with <remove name=\"{}\" /> (or <clear />) before the second",
                    bounded(name)
                )
            }
            WifFault::Refused {
                file,
                line,
                why:
                    SectionRefusal::Markup {
                        element,
                        why,
                        known,
                    },
            } => write!(
                f,
                "<{}> (line {line} of {file}) is refused as System.Configuration reads <system.identityModel>: {}; WIF fails at start-up. Correct it by hand: farmkey writes nothing beside an element ASP.NET refuses",
                bounded(element),
                why.clause(known)
            ),
        }
    }
}

/// Why the application uses WIF: a WIF section is set, or a WIF module is
/// registered where the pool's pipeline loads modules. A declaration in
/// `<configSections>` alone is not use: nothing reads a section for being
/// declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsesWif {
    /// `<system.identityModel>` or `<system.identityModel.services>` is set.
    Element {
        section: &'static str,
        file: RemotePath,
    },
    /// The SAM or WSFAM module is registered (`file`: where it is added).
    Module { name: String, file: String },
}

impl fmt::Display for UsesWif {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsesWif::Element { section, file } => write!(f, "<{section}> is set in {file}"),
            UsesWif::Module { name, file } => {
                write!(f, "the {name} module is registered in {file}")
            }
        }
    }
}

/// A swap (SessionSecurityTokenHandler removed, the MachineKey one added)
/// written where WIF does not look for the session cookie's handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnusedSwap {
    /// In an `<identityConfiguration>` of another name than the one in use.
    NotNamed {
        name: String,
        file: RemotePath,
        line: usize,
    },
    /// In an `<identityConfiguration>` a later `<remove>` or `<clear/>`
    /// (`by`, at `by_line` of `by_file`) dropped.
    Dropped {
        name: String,
        file: RemotePath,
        line: usize,
        by: String,
        by_file: RemotePath,
        by_line: usize,
    },
    /// In a named `<securityTokenHandlers>` of the configuration in use.
    NamedCollection {
        name: String,
        file: RemotePath,
        line: usize,
    },
    /// In a `<securityTokenHandlers>` of the configuration in use that a
    /// later `<remove>` or `<clear/>` dropped.
    DroppedCollection {
        file: RemotePath,
        line: usize,
        by: String,
        by_line: usize,
    },
    /// In a `<location>` for another path.
    Elsewhere {
        path: String,
        file: RemotePath,
        line: usize,
    },
}

impl fmt::Display for UnusedSwap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = |name: &str| {
            if name.is_empty() {
                "the unnamed <identityConfiguration>".to_string()
            } else {
                format!("<identityConfiguration name=\"{}\">", bounded(name))
            }
        };
        match self {
            UnusedSwap::NotNamed { name, file, line } => write!(
                f,
                "; the swap in {} (line {line} of {file}) is not used: no <federationConfiguration> names it",
                tag(name)
            ),
            UnusedSwap::Dropped {
                name,
                file,
                line,
                by,
                by_file,
                by_line,
            } => write!(
                f,
                "; the swap in {} (line {line} of {file}) is not used: <{by}> (line {by_line} of {by_file}) drops it",
                tag(name)
            ),
            UnusedSwap::NamedCollection { name, file, line } => write!(
                f,
                "; the swap in <securityTokenHandlers name=\"{}\"> (line {line} of {file}) is not used: a named collection serves that usage only, and the SessionAuthenticationModule takes its handler from the unnamed one",
                bounded(name)
            ),
            UnusedSwap::DroppedCollection {
                file,
                line,
                by,
                by_line,
            } => write!(
                f,
                "; the swap in the <securityTokenHandlers> at line {line} of {file} is not used: <{by}> (line {by_line}) drops it"
            ),
            UnusedSwap::Elsewhere { path, file, line } => write!(
                f,
                "; the swap in <location path=\"{}\"> (line {line} of {file}) does not apply to this application",
                bounded(path)
            ),
        }
    }
}

/// Why the handler state is what it is, where it needs explaining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerReason {
    /// `system.identityModel` is encrypted.
    Encrypted,
    /// The site uses WIF but has no unnamed `<identityConfiguration>`:
    /// WIF's defaults, with the DPAPI handler.
    Defaults {
        uses: UsesWif,
        unused_swap: Option<UnusedSwap>,
    },
    /// The configuration in use keeps WIF's default (DPAPI) handler.
    DefaultHandler { unused_swap: Option<UnusedSwap> },
    /// The configuration in use (at `line` of `file`) leaves no handler for
    /// session tokens.
    NoHandler {
        file: RemotePath,
        line: usize,
        unused_swap: Option<UnusedSwap>,
    },
    /// Only a handler of the application's own class (`type_ref`) is left
    /// for session tokens, in the configuration at `line` of `file`.
    Custom {
        type_ref: String,
        file: RemotePath,
        line: usize,
    },
    /// WIF refuses the configuration at start-up.
    Fault(WifFault),
}

impl fmt::Display for HandlerReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unused_swap = match self {
            HandlerReason::Encrypted => {
                return f
                    .write_str("system.identityModel is encrypted; its handlers cannot be read");
            }
            HandlerReason::Fault(fault) => return write!(f, "{fault}"),
            HandlerReason::Custom {
                type_ref,
                file,
                line,
            } => {
                return write!(
                    f,
                    "session tokens go to <add type=\"{}\"> (<identityConfiguration> at line {line} of {file}), a class farmkey cannot look into: derived from MachineKeySessionSecurityTokenHandler it reads cookies on every server with the same machine key, from SessionSecurityTokenHandler only on the server that wrote them (DPAPI), and if it handles no session tokens sign-in fails",
                    bounded(type_ref)
                );
            }
            HandlerReason::Defaults { uses, unused_swap } => {
                write!(
                    f,
                    "the site uses WIF ({uses}) but has no unnamed <identityConfiguration>, so WIF uses its defaults, whose SessionSecurityTokenHandler protects session tokens with DPAPI"
                )?;
                unused_swap
            }
            HandlerReason::DefaultHandler { unused_swap } => {
                f.write_str(
                    "session tokens use WIF's default SessionSecurityTokenHandler, protected with DPAPI",
                )?;
                unused_swap
            }
            HandlerReason::NoHandler {
                file,
                line,
                unused_swap,
            } => {
                write!(
                    f,
                    "the <identityConfiguration> at line {line} of {file} leaves no handler for session tokens (SessionSecurityTokenHandler removed or cleared, MachineKeySessionSecurityTokenHandler not added), so the SessionAuthenticationModule can neither write nor read a session cookie and sign-in fails"
                )?;
                unused_swap
            }
        };
        match unused_swap {
            Some(unused) => write!(f, "{unused}"),
            None => Ok(()),
        }
    }
}

/// An `<identityConfiguration>` element of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementAt {
    pub level: ChainLevel,
    pub file: RemotePath,
    pub line: usize,
}

/// The `<identityConfiguration>` WIF uses, decided once from the whole
/// chain (every `<system.identityModel.services>` and every
/// `<identityConfiguration>` of every level): the scan judges it and the
/// push puts the swap into it, so that both always mean the same one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigurationInUse {
    /// Its name; empty for the unnamed one.
    pub name: String,
    /// Its element; `None` when there is none (WIF's defaults for the
    /// unnamed one, ID7012 for a name).
    pub element: Option<ElementAt>,
}

impl ConfigurationInUse {
    /// `<identityConfiguration name="Cora">`, or the unnamed
    /// `<identityConfiguration>`.
    pub fn tag(&self) -> String {
        if self.name.is_empty() {
            "unnamed <identityConfiguration>".into()
        } else {
            format!("<identityConfiguration name=\"{}\">", self.name)
        }
    }
}

#[derive(Debug, Clone)]
pub struct Handler {
    pub state: HandlerState,
    /// The file that holds the configuration in use.
    pub source: Option<RemotePath>,
    /// Why the state is what it is, where it needs explaining.
    pub reason: Option<HandlerReason>,
    /// The configuration in use and where its element is.
    pub in_use: ConfigurationInUse,
}

impl Handler {
    /// What makes WIF refuse the configuration, if anything does.
    pub fn fault(&self) -> Option<&WifFault> {
        match &self.reason {
            Some(HandlerReason::Fault(fault)) => Some(fault),
            _ => None,
        }
    }

    /// Whether farmkey's handler swap is the fix: DPAPI, no session handler
    /// at all, or the swap's `remove` missing. A custom handler is never
    /// replaced.
    pub fn needs_swap(&self) -> bool {
        matches!(self.state, HandlerState::Dpapi | HandlerState::None)
            || matches!(self.fault(), Some(WifFault::DuplicateHandler { .. }))
    }
}

/// The last file of the chain that registers `system.identityModel` in its
/// `<configSections>` (applicationHost.config does not count).
pub fn identity_model_declared_in(layers: &[Layer<'_>]) -> Option<RemotePath> {
    layers
        .iter()
        .rev()
        .filter(|layer| !matches!(layer.scope, Scope::ApplicationHost))
        .find(|layer| declares_identity_model(&layer.file.doc))
        .map(|layer| layer.file.path.clone())
}

/// Whether a file's `<configSections>` registers `system.identityModel`.
pub fn declares_identity_model(doc: &Document) -> bool {
    elements::declares(doc, "system.identityModel")
}

/// An `<identityConfiguration>` as the chain's `<system.identityModel>`
/// sections leave it.
#[derive(Clone, Copy)]
pub(super) struct Configuration<'a> {
    pub(super) level: ChainLevel,
    pub(super) file: &'a ConfigFile,
    pub(super) elem: ElemId,
    /// The `<remove>` or `<clear/>` of a later section that dropped it.
    pub(super) dropped_by: Option<(&'a ConfigFile, ElemId)>,
}

/// What the chain says about WIF, gathered level by level.
#[derive(Default)]
pub(super) struct WifReading<'a> {
    /// The pool's pipeline: which module registration IIS loads.
    pub(super) pipeline: PipelineMode,
    pub(super) modules: Modules,
    pub(super) http_modules: Modules,
    pub(super) element_in: Option<(RemotePath, &'static str)>,
    pub(super) services: Vec<(&'a ConfigFile, ElemId)>,
    /// Every `<identityConfiguration>` of the chain, in chain order, the
    /// dropped ones too (the runtime reads them all).
    pub(super) configurations: Vec<Configuration<'a>>,
    /// The first `<identityConfiguration>` whose name a live one already
    /// has (ID7029), and that one.
    pub(super) repeated: Option<(Configuration<'a>, Configuration<'a>)>,
    /// The first element of a `<system.identityModel>` section's own
    /// collection that System.Configuration refuses, and why.
    pub(super) markup: Option<(&'a ConfigFile, ElemId, SectionRefusal)>,
    /// A swap in a `<location>` of the chain's files whose path is not the
    /// application's: its file, `<identityConfiguration>` and path.
    pub(super) elsewhere: Option<(&'a ConfigFile, ElemId, String)>,
    pub(super) encrypted_in: Option<RemotePath>,
}

impl<'a> WifReading<'a> {
    /// Why the application uses WIF, if it does.
    fn used_because(&self) -> Option<UsesWif> {
        if let Some((file, section)) = &self.element_in {
            return Some(UsesWif::Element {
                section,
                file: file.clone(),
            });
        }
        let loaded = match self.pipeline {
            PipelineMode::Integrated => &self.modules,
            PipelineMode::Classic => &self.http_modules,
        };
        loaded.wif_module().map(|(name, file)| UsesWif::Module {
            name: name.to_string(),
            file: file.to_string(),
        })
    }

    /// Replays one `<system.identityModel>` on the configurations so far,
    /// as IdentityConfigurationElementCollection (an add/remove/clear
    /// collection keyed by `name`, starting with the levels above) does.
    pub(super) fn section(&mut self, level: ChainLevel, file: &'a ConfigFile, section: ElemId) {
        let doc = &file.doc;
        if self.markup.is_none()
            && let Some((e, why, known)) = elements::refused_markup(doc, section)
        {
            let element = doc.name(e).to_string();
            self.markup = Some((
                file,
                e,
                SectionRefusal::Markup {
                    element,
                    why,
                    known,
                },
            ));
        }
        let name = |c: &Configuration<'_>| elements::configuration_name(&c.file.doc, c.elem);
        for &child in doc.children(section) {
            match doc.name(child) {
                "identityConfiguration" => {
                    let added = Configuration {
                        level,
                        file,
                        elem: child,
                        dropped_by: None,
                    };
                    if self.repeated.is_none()
                        && let Some(first) = self
                            .configurations
                            .iter()
                            .find(|c| c.dropped_by.is_none() && name(c) == name(&added))
                    {
                        self.repeated = Some((added, *first));
                    }
                    self.configurations.push(added);
                }
                "remove" => {
                    let gone = doc.attr(child, "name").unwrap_or_default().into_owned();
                    for c in &mut self.configurations {
                        if c.dropped_by.is_none() && name(c) == gone {
                            c.dropped_by = Some((file, child));
                        }
                    }
                }
                "clear" => {
                    for c in &mut self.configurations {
                        c.dropped_by.get_or_insert((file, child));
                    }
                }
                _ => {}
            }
        }
    }

    /// Notes a swap in a `<location>` whose path is not the application's.
    pub(super) fn location_elsewhere(&mut self, file: &'a ConfigFile, location: ElemId) {
        let doc = &file.doc;
        if self.elsewhere.is_some() {
            return;
        }
        let swap = doc
            .children_named(location, "system.identityModel")
            .flat_map(|im| doc.children_named(im, "identityConfiguration"))
            .find(|&ic| {
                elements::judge(&elements::handlers_of(doc, ic)) == TokenProtection::MachineKey
            });
        if let Some(ic) = swap {
            let path = doc.attr(location, "path").unwrap_or_default().into_owned();
            self.elsewhere = Some((file, ic, path));
        }
    }
}

/// Whether a collection, replayed on WIF's defaults, is the swap.
fn is_swap(doc: &Document, collection: ElemId) -> bool {
    let start = vec![elements::short_type_name(elements::SESSION_HANDLER)];
    elements::judge(&elements::replay_collection(doc, collection, start).0)
        == TokenProtection::MachineKey
}

/// The first swap WIF does not read for session cookies, looked for where
/// operators put it: the configuration in use's other collections, other
/// configurations, `<location>` blocks for other paths.
fn unused_swap(
    w: &WifReading<'_>,
    chosen: Option<&Configuration<'_>>,
    in_use: &str,
) -> Option<UnusedSwap> {
    let swap_in = |c: &Configuration<'_>| {
        elements::judge(&elements::handlers_of(&c.file.doc, c.elem)) == TokenProtection::MachineKey
    };
    let line = |f: &ConfigFile, e: ElemId| line_of(f, e);
    let own = chosen.and_then(|c| {
        let doc = &c.file.doc;
        let sets = elements::handler_sets(doc, c.elem);
        sets.live
            .iter()
            .find(|&&h| !elements::is_default_collection(doc, h) && is_swap(doc, h))
            .map(|&h| UnusedSwap::NamedCollection {
                name: doc.attr(h, "name").unwrap_or_default().into_owned(),
                file: c.file.path.clone(),
                line: line(c.file, h),
            })
            .or_else(|| {
                sets.dropped
                    .iter()
                    .find(|&&(h, _)| is_swap(doc, h))
                    .map(|&(h, by)| UnusedSwap::DroppedCollection {
                        file: c.file.path.clone(),
                        line: line(c.file, h),
                        by: doc.name(by).to_string(),
                        by_line: line(c.file, by),
                    })
            })
    });
    own.or_else(|| {
        w.configurations.iter().find_map(|c| {
            let name = elements::configuration_name(&c.file.doc, c.elem);
            let (file, at) = (c.file.path.clone(), line(c.file, c.elem));
            match c.dropped_by {
                Some((by_file, by)) if swap_in(c) => Some(UnusedSwap::Dropped {
                    name,
                    file,
                    line: at,
                    by: by_file.doc.name(by).to_string(),
                    by_file: by_file.path.clone(),
                    by_line: line(by_file, by),
                }),
                None if name != in_use && swap_in(c) => Some(UnusedSwap::NotNamed {
                    name,
                    file,
                    line: at,
                }),
                _ => None,
            }
        })
    })
    .or_else(|| {
        w.elsewhere
            .as_ref()
            .map(|&(f, ic, ref path)| UnusedSwap::Elsewhere {
                path: path.clone(),
                file: f.path.clone(),
                line: line(f, ic),
            })
    })
}

/// How WIF protects session tokens, from what the chain says about it.
pub(super) fn judge_wif(w: &WifReading<'_>) -> Handler {
    let named =
        elements::identity_configuration_in_use(w.services.iter().map(|&(f, s)| (f, &f.doc, s)));
    let chosen = w.configurations.iter().rev().find(|c| {
        c.dropped_by.is_none() && elements::configuration_name(&c.file.doc, c.elem) == named.name
    });
    let in_use = ConfigurationInUse {
        name: named.name.clone(),
        element: chosen.map(|c| ElementAt {
            level: c.level,
            file: c.file.path.clone(),
            line: line_of(c.file, c.elem),
        }),
    };
    let handler = |state, source: Option<&RemotePath>, reason| Handler {
        state,
        source: source.cloned(),
        reason,
        in_use: in_use.clone(),
    };
    let fault = |state, source, fault| handler(state, source, Some(HandlerReason::Fault(fault)));
    if let Some(file) = &w.encrypted_in {
        return handler(
            HandlerState::Encrypted,
            Some(file),
            Some(HandlerReason::Encrypted),
        );
    }
    let Some(uses) = w.used_because() else {
        return handler(HandlerState::NotConfigured, None, None);
    };
    // Markup the section's own collection refuses, then an element of a
    // name already in effect (this level or one above).
    let section_fault = w.markup.clone().or_else(|| {
        w.repeated.map(|(second, first)| {
            (
                second.file,
                second.elem,
                SectionRefusal::RepeatedConfiguration {
                    name: elements::configuration_name(&second.file.doc, second.elem),
                    first_file: first.file.path.clone(),
                    first_line: line_of(first.file, first.elem),
                },
            )
        })
    });
    // Faults in any configuration of the section, used or not: the runtime
    // reads all of them before it chooses one.
    let refused = section_fault.or_else(|| {
        w.configurations.iter().find_map(|c| {
            let (f, ic) = (c.file, c.elem);
            let doc = &f.doc;
            elements::refused_markup(doc, ic)
                .map(|(e, why, known)| {
                    let element = doc.name(e).to_string();
                    (
                        e,
                        SectionRefusal::Markup {
                            element,
                            why,
                            known,
                        },
                    )
                })
                .or_else(|| {
                    elements::repeated_collection(doc, ic)
                        .map(|(c, name)| (c, SectionRefusal::RepeatedCollection { name }))
                })
                .or_else(|| {
                    elements::unresolved_handler(doc, ic).map(|(e, why, qualified)| {
                        let refusal = SectionRefusal::UnloadableType {
                            element: doc.name(e).to_string(),
                            type_ref: doc.attr(e, "type").unwrap_or_default().into_owned(),
                            why,
                            qualified,
                        };
                        (e, refusal)
                    })
                })
                .map(|(e, why)| (f, e, why))
        })
    });
    if let Some((f, e, why)) = refused {
        return fault(
            HandlerState::Invalid,
            Some(&f.path),
            WifFault::Refused {
                file: f.path.clone(),
                line: line_of(f, e),
                why,
            },
        );
    }
    // The trap: the swap sits where WIF does not look.
    let unused_swap = unused_swap(w, chosen, &named.name);
    let Some(&Configuration { file, elem: ic, .. }) = chosen else {
        if let Some((fc_file, fc)) = named.named_by {
            return fault(
                HandlerState::Invalid,
                None,
                WifFault::UnknownConfiguration {
                    name: named.name.clone(),
                    file: fc_file.path.clone(),
                    line: line_of(fc_file, fc),
                },
            );
        }
        return handler(
            HandlerState::Dpapi,
            None,
            Some(HandlerReason::Defaults { uses, unused_swap }),
        );
    };
    let source = Some(&file.path);
    let line = line_of(file, ic);
    match elements::judge(&elements::handlers_of(&file.doc, ic)) {
        TokenProtection::MachineKey => handler(HandlerState::MachineKey, source, None),
        TokenProtection::Duplicate => fault(
            HandlerState::Invalid,
            source,
            WifFault::DuplicateHandler {
                file: file.path.clone(),
                line,
            },
        ),
        TokenProtection::Dpapi => handler(
            HandlerState::Dpapi,
            source,
            Some(HandlerReason::DefaultHandler { unused_swap }),
        ),
        TokenProtection::NoHandler => handler(
            HandlerState::None,
            source,
            Some(HandlerReason::NoHandler {
                file: file.path.clone(),
                line,
                unused_swap,
            }),
        ),
        TokenProtection::Custom(type_ref) => handler(
            HandlerState::Custom,
            source,
            Some(HandlerReason::Custom {
                type_ref,
                file: file.path.clone(),
                line,
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> RemotePath {
        RemotePath::parse("C:\\site\\web.config").unwrap()
    }

    #[test]
    fn an_unknown_configuration_is_worded() {
        let fault = WifFault::UnknownConfiguration {
            name: "Swap".into(),
            file: web(),
            line: 3,
        };
        assert_eq!(
            fault.to_string(),
            "identityConfigurationName=\"Swap\" (line 3 of C:\\site\\web.config) names no <identityConfiguration>; WIF throws ID7012 at start-up"
        );
    }

    #[test]
    fn a_duplicate_handler_is_worded() {
        let fault = WifFault::DuplicateHandler {
            file: web(),
            line: 4,
        };
        assert_eq!(
            fault.to_string(),
            "MachineKeySessionSecurityTokenHandler is added but SessionSecurityTokenHandler is not removed (<identityConfiguration> at line 4 of C:\\site\\web.config); WIF refuses two handlers for one token type at start-up"
        );
    }

    #[test]
    fn a_repeated_collection_is_worded() {
        let fault = |name: &str| WifFault::Refused {
            file: web(),
            line: 8,
            why: SectionRefusal::RepeatedCollection { name: name.into() },
        };
        assert_eq!(
            fault("").to_string(),
            "a second unnamed <securityTokenHandlers> (line 8 of C:\\site\\web.config) in one <identityConfiguration>; WIF throws ID7029 at start-up. Merge its entries into the first"
        );
        assert_eq!(
            fault("ActAs").to_string(),
            "a second <securityTokenHandlers name=\"ActAs\"> (line 8 of C:\\site\\web.config) in one <identityConfiguration>; WIF throws ID7029 at start-up. Merge its entries into the first"
        );
    }

    #[test]
    fn an_unloadable_type_is_worded_with_the_type_cut() {
        let fault = WifFault::Refused {
            file: web(),
            line: 5,
            why: SectionRefusal::UnloadableType {
                element: "remove".into(),
                type_ref:
                    "system.identitymodel.tokens.SessionSecurityTokenHandler, System.IdentityModel"
                        .into(),
                why: Unresolvable::Case {
                    written: "system.identitymodel.tokens.SessionSecurityTokenHandler".into(),
                    full: "System.IdentityModel.Tokens.SessionSecurityTokenHandler",
                },
                qualified: elements::SESSION_HANDLER_TYPE,
            },
        };
        assert_eq!(
            fault.to_string(),
            "<remove type=\"system.identitymodel.tokens.SessionSecur…\"> (line 5 of C:\\site\\web.config) names a type .NET cannot load: type names are case-sensitive: \"system.identitymodel.tokens.SessionSecurityTokenHandler\" is not \"System.IdentityModel.Tokens.SessionSecurityTokenHandler\"; WIF refuses its configuration at start-up. Write the full name: System.IdentityModel.Tokens.SessionSecurityTokenHandler, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089"
        );
    }

    #[test]
    fn why_an_application_uses_wif_is_worded() {
        let element = UsesWif::Element {
            section: "system.identityModel",
            file: web(),
        };
        assert_eq!(
            element.to_string(),
            "<system.identityModel> is set in C:\\site\\web.config"
        );
        let module = UsesWif::Module {
            name: "SessionAuthenticationModule".into(),
            file: "C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config".into(),
        };
        assert_eq!(
            module.to_string(),
            "the SessionAuthenticationModule module is registered in C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config"
        );
    }

    #[test]
    fn an_encrypted_section_is_worded() {
        assert_eq!(
            HandlerReason::Encrypted.to_string(),
            "system.identityModel is encrypted; its handlers cannot be read"
        );
    }

    #[test]
    fn wifs_defaults_are_worded() {
        let reason = HandlerReason::Defaults {
            uses: UsesWif::Element {
                section: "system.identityModel",
                file: web(),
            },
            unused_swap: None,
        };
        assert_eq!(
            reason.to_string(),
            "the site uses WIF (<system.identityModel> is set in C:\\site\\web.config) but has no unnamed <identityConfiguration>, so WIF uses its defaults, whose SessionSecurityTokenHandler protects session tokens with DPAPI"
        );
    }

    #[test]
    fn the_default_handler_is_worded_with_an_unused_swap() {
        assert_eq!(
            HandlerReason::DefaultHandler { unused_swap: None }.to_string(),
            "session tokens use WIF's default SessionSecurityTokenHandler, protected with DPAPI"
        );
        let with = |unused| {
            HandlerReason::DefaultHandler {
            unused_swap: Some(unused),
        }
        .to_string()
        .replace(
            "session tokens use WIF's default SessionSecurityTokenHandler, protected with DPAPI",
            "",
        )
        };
        assert_eq!(
            with(UnusedSwap::NotNamed {
                name: "swap".into(),
                file: web(),
                line: 3
            }),
            "; the swap in <identityConfiguration name=\"swap\"> (line 3 of C:\\site\\web.config) is not used: no <federationConfiguration> names it"
        );
        assert_eq!(
            with(UnusedSwap::Dropped {
                name: String::new(),
                file: web(),
                line: 3,
                by: "clear".into(),
                by_file: web(),
                by_line: 9
            }),
            "; the swap in the unnamed <identityConfiguration> (line 3 of C:\\site\\web.config) is not used: <clear> (line 9 of C:\\site\\web.config) drops it"
        );
        assert_eq!(
            with(UnusedSwap::NamedCollection {
                name: "ActAs".into(),
                file: web(),
                line: 4
            }),
            "; the swap in <securityTokenHandlers name=\"ActAs\"> (line 4 of C:\\site\\web.config) is not used: a named collection serves that usage only, and the SessionAuthenticationModule takes its handler from the unnamed one"
        );
        assert_eq!(
            with(UnusedSwap::DroppedCollection {
                file: web(),
                line: 4,
                by: "remove".into(),
                by_line: 8
            }),
            "; the swap in the <securityTokenHandlers> at line 4 of C:\\site\\web.config is not used: <remove> (line 8) drops it"
        );
        assert_eq!(
            with(UnusedSwap::Elsewhere {
                path: "Other".into(),
                file: web(),
                line: 10
            }),
            "; the swap in <location path=\"Other\"> (line 10 of C:\\site\\web.config) does not apply to this application"
        );
    }

    #[test]
    fn no_handler_and_a_custom_handler_are_worded() {
        assert_eq!(
            HandlerReason::NoHandler {
                file: web(),
                line: 5,
                unused_swap: None
            }
            .to_string(),
            "the <identityConfiguration> at line 5 of C:\\site\\web.config leaves no handler for session tokens (SessionSecurityTokenHandler removed or cleared, MachineKeySessionSecurityTokenHandler not added), so the SessionAuthenticationModule can neither write nor read a session cookie and sign-in fails"
        );
        assert!(
            HandlerReason::Custom {
                type_ref: "Contoso.H, Contoso".into(),
                file: web(),
                line: 5
            }
            .to_string()
            .starts_with("session tokens go to <add type=\"Contoso.H, Contoso\"> (<identityConfiguration> at line 5 of C:\\site\\web.config), a class farmkey cannot look into")
        );
    }

    #[test]
    fn a_repeated_configuration_and_refused_markup_are_worded() {
        let fault = |why| WifFault::Refused {
            file: web(),
            line: 4,
            why,
        };
        assert_eq!(
            fault(SectionRefusal::RepeatedConfiguration {
                name: String::new(),
                first_file: RemotePath::parse("C:\\root\\web.config").unwrap(),
                first_line: 7
            })
            .to_string(),
            "a second unnamed <identityConfiguration> (line 4 of C:\\site\\web.config) while the one at line 7 of C:\\root\\web.config is in effect; WIF throws ID7029 at start-up. Keep one, or drop the first with <remove name=\"\" /> (or <clear />) before the second"
        );
        assert_eq!(
            fault(SectionRefusal::Markup {
                element: "Add".into(),
                why: Refused::Element("Add".into()),
                known: &["add", "remove", "clear"]
            })
            .to_string(),
            "<Add> (line 4 of C:\\site\\web.config) is refused as System.Configuration reads <system.identityModel>: no element of that name is known there (names are case-sensitive: it is \"add\"): Config_base_unrecognized_element; WIF fails at start-up. Correct it by hand: farmkey writes nothing beside an element ASP.NET refuses"
        );
    }
}
