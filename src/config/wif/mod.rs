//! How WIF protects an application's session tokens, decided once from its
//! whole configuration chain: which `<identityConfiguration>` is in use
//! (the scan judges it, the push puts the swap into it), whether the
//! application uses WIF at all, and what makes WIF refuse the configuration
//! at start-up. The rules WIF applies to single elements are in [`elements`].

pub mod elements;

use self::elements::{Modules, Verdict};
use super::apphost::Pipeline;
use super::record::{ConfigFile, Layer, Level, Scope, bounded, line_of};
use super::xml::{Document, ElemId};
use crate::paths::RemotePath;

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
    /// A WIF handler's `type` that does not resolve, or a second
    /// `<identityConfiguration>` or `<securityTokenHandlers>` of one name
    /// (ID7029): System.Configuration refuses the section as it reads it.
    Refused { file: RemotePath, line: usize },
}

/// An `<identityConfiguration>` element of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementAt {
    pub level: Level,
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
    /// A sentence for operators when the state needs explaining.
    pub detail: Option<String>,
    pub fault: Option<WifFault>,
    /// The configuration in use and where its element is.
    pub in_use: ConfigurationInUse,
}

impl Handler {
    /// Whether farmkey's handler swap is the fix: DPAPI, no session handler
    /// at all, or the swap's `remove` missing. A custom handler is never
    /// replaced.
    pub fn needs_swap(&self) -> bool {
        matches!(self.state, HandlerState::Dpapi | HandlerState::None)
            || matches!(self.fault, Some(WifFault::DuplicateHandler { .. }))
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
    pub(super) level: Level,
    pub(super) file: &'a ConfigFile,
    pub(super) elem: ElemId,
    /// The `<remove>` or `<clear/>` of a later section that dropped it.
    pub(super) dropped_by: Option<(&'a ConfigFile, ElemId)>,
}

/// What the chain says about WIF, gathered level by level.
#[derive(Default)]
pub(super) struct WifReading<'a> {
    /// The pool's pipeline: which module registration IIS loads.
    pub(super) pipeline: Pipeline,
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
    pub(super) markup: Option<(&'a ConfigFile, ElemId, String)>,
    /// A swap in a `<location>` of the chain's files whose path is not the
    /// application's: its file, `<identityConfiguration>` and path.
    pub(super) elsewhere: Option<(&'a ConfigFile, ElemId, String)>,
    pub(super) encrypted_in: Option<RemotePath>,
}

impl<'a> WifReading<'a> {
    /// Why the application uses WIF, if it does: a WIF section is set, or
    /// a WIF module is registered where the pool's pipeline loads modules.
    /// A declaration in `<configSections>` alone is not use: nothing reads
    /// a section because it is declared.
    fn used_because(&self) -> Option<String> {
        if let Some((file, section)) = &self.element_in {
            return Some(format!("<{section}> is set in {file}"));
        }
        let loaded = match self.pipeline {
            Pipeline::Integrated => &self.modules,
            Pipeline::Classic => &self.http_modules,
        };
        loaded
            .wif_module()
            .map(|(name, file)| format!("the {name} module is registered in {file}"))
    }

    /// Replays one `<system.identityModel>` on the configurations so far,
    /// as IdentityConfigurationElementCollection (an add/remove/clear
    /// collection keyed by `name`, starting with the levels above) does.
    pub(super) fn section(&mut self, level: Level, file: &'a ConfigFile, section: ElemId) {
        let doc = &file.doc;
        if self.markup.is_none()
            && let Some((e, why, known)) = elements::refused_markup(doc, section)
        {
            self.markup = Some((file, e, why.clause(known)));
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
            .find(|&ic| elements::judge(&elements::handlers_of(doc, ic)) == Verdict::MachineKey);
        if let Some(ic) = swap {
            let path = doc.attr(location, "path").unwrap_or_default().into_owned();
            self.elsewhere = Some((file, ic, path));
        }
    }
}

/// Where a swap sits that WIF does not read for the session cookie.
enum UnusedSwap<'a> {
    /// An `<identityConfiguration>` of another name than the one in use.
    NotNamed(&'a ConfigFile, ElemId),
    /// An `<identityConfiguration>` a later `<remove>` or `<clear/>`
    /// dropped.
    Dropped(&'a ConfigFile, ElemId, (&'a ConfigFile, ElemId)),
    /// A named `<securityTokenHandlers>` of the configuration in use.
    NamedCollection(&'a ConfigFile, ElemId),
    /// A `<securityTokenHandlers>` a later `<remove>` or `<clear/>` of the
    /// configuration in use dropped.
    DroppedCollection(&'a ConfigFile, ElemId, ElemId),
    /// A `<location>` for another path.
    Elsewhere(&'a ConfigFile, ElemId, &'a str),
}

impl UnusedSwap<'_> {
    /// The clause the handler's detail ends with.
    fn clause(&self) -> String {
        let at = |f: &ConfigFile, e: ElemId| format!("line {} of {}", line_of(f, e), f.path);
        let tag = |f: &ConfigFile, e: ElemId| {
            let name = elements::configuration_name(&f.doc, e);
            if name.is_empty() {
                "the unnamed <identityConfiguration>".to_string()
            } else {
                format!("<identityConfiguration name=\"{}\">", bounded(&name))
            }
        };
        let by = |f: &ConfigFile, e: ElemId| format!("<{}> ({})", f.doc.name(e), at(f, e));
        match *self {
            UnusedSwap::NotNamed(f, ic) => format!(
                "; the swap in {} ({}) is not used: no <federationConfiguration> names it",
                tag(f, ic),
                at(f, ic)
            ),
            UnusedSwap::Dropped(f, ic, (bf, b)) => format!(
                "; the swap in {} ({}) is not used: {} drops it",
                tag(f, ic),
                at(f, ic),
                by(bf, b)
            ),
            UnusedSwap::NamedCollection(f, c) => format!(
                "; the swap in <securityTokenHandlers name=\"{}\"> ({}) is not used: a named collection serves that usage only, and the SessionAuthenticationModule takes its handler from the unnamed one",
                bounded(&f.doc.attr(c, "name").unwrap_or_default()),
                at(f, c)
            ),
            UnusedSwap::DroppedCollection(f, c, b) => format!(
                "; the swap in the <securityTokenHandlers> at {} is not used: {} drops it",
                at(f, c),
                by(f, b)
            ),
            UnusedSwap::Elsewhere(f, ic, path) => format!(
                "; the swap in <location path=\"{}\"> ({}) does not apply to this application",
                bounded(path),
                at(f, ic)
            ),
        }
    }
}

/// Whether a collection, replayed on WIF's defaults, is the swap.
fn is_swap(doc: &Document, collection: ElemId) -> bool {
    let start = vec![elements::short_type_name(elements::SESSION_HANDLER)];
    elements::judge(&elements::replay_collection(doc, collection, start).0) == Verdict::MachineKey
}

/// The first swap WIF does not read for session cookies, looked for where
/// operators put it: the configuration in use's other collections, other
/// configurations, `<location>` blocks for other paths.
fn unused_swap<'a>(
    w: &'a WifReading<'a>,
    chosen: Option<&Configuration<'a>>,
    in_use: &str,
) -> Option<UnusedSwap<'a>> {
    let swap_in = |c: &Configuration<'_>| {
        elements::judge(&elements::handlers_of(&c.file.doc, c.elem)) == Verdict::MachineKey
    };
    let own = chosen.and_then(|c| {
        let doc = &c.file.doc;
        let sets = elements::handler_sets(doc, c.elem);
        sets.live
            .iter()
            .find(|&&h| !elements::is_default_collection(doc, h) && is_swap(doc, h))
            .map(|&h| UnusedSwap::NamedCollection(c.file, h))
            .or_else(|| {
                sets.dropped
                    .iter()
                    .find(|&&(h, _)| is_swap(doc, h))
                    .map(|&(h, by)| UnusedSwap::DroppedCollection(c.file, h, by))
            })
    });
    own.or_else(|| {
        w.configurations.iter().find_map(|c| {
            let name = elements::configuration_name(&c.file.doc, c.elem);
            match c.dropped_by {
                Some(by) if swap_in(c) => Some(UnusedSwap::Dropped(c.file, c.elem, by)),
                None if name != in_use && swap_in(c) => Some(UnusedSwap::NotNamed(c.file, c.elem)),
                _ => None,
            }
        })
    })
    .or_else(|| {
        w.elsewhere
            .as_ref()
            .map(|(f, ic, path)| UnusedSwap::Elsewhere(f, *ic, path))
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
    let handler = |state, source: Option<&RemotePath>, detail: Option<String>, fault| Handler {
        state,
        source: source.cloned(),
        detail,
        fault,
        in_use: in_use.clone(),
    };
    if let Some(file) = &w.encrypted_in {
        return handler(
            HandlerState::Encrypted,
            Some(file),
            Some("system.identityModel is encrypted; its handlers cannot be read".into()),
            None,
        );
    }
    let Some(why) = w.used_because() else {
        return handler(HandlerState::NotConfigured, None, None, None);
    };
    let at = |f: &ConfigFile, e: ElemId| format!("line {} of {}", line_of(f, e), f.path);
    // An element of a name the collection already holds, at this level or
    // one above: the section is refused as it is read.
    let repeated = w.repeated.map(|(second, first)| {
        let name = elements::configuration_name(&second.file.doc, second.elem);
        let named = if name.is_empty() {
            "a second unnamed <identityConfiguration>".to_string()
        } else {
            format!("a second <identityConfiguration name=\"{}\">", bounded(&name))
        };
        (
            second.file,
            second.elem,
            format!(
                "{named} ({}) while the one at {} is in effect; WIF throws ID7029 at start-up. Keep one, or drop the first with <remove name=\"{}\" /> (or <clear />) before the second",
                at(second.file, second.elem),
                at(first.file, first.elem),
                bounded(&name)
            ),
        )
    });
    // Markup System.Configuration refuses: the push writes nothing beside it.
    let refused_markup = |f: &'_ ConfigFile, e: ElemId, clause: &str| {
        format!(
            "<{}> ({}) is refused as System.Configuration reads <system.identityModel>: {clause}; WIF fails at start-up. Correct it by hand: farmkey writes nothing beside an element ASP.NET refuses",
            bounded(f.doc.name(e)),
            at(f, e)
        )
    };
    let markup = w
        .markup
        .as_ref()
        .map(|(f, e, clause)| (*f, *e, refused_markup(f, *e, clause)));
    // Faults in any configuration of the section, used or not: the runtime
    // reads all of them before it chooses one.
    let refused = markup.or(repeated).or_else(|| {
        w.configurations.iter().find_map(|c| {
            let (f, ic) = (c.file, c.elem);
            let doc = &f.doc;
            let markup = elements::refused_markup(doc, ic)
                .map(|(e, why, known)| (e, refused_markup(f, e, &why.clause(known))));
            let repeated = elements::repeated_collection(doc, ic)
                .map(|(c, name)| {
                    let named = if name.is_empty() {
                        "a second unnamed <securityTokenHandlers>".to_string()
                    } else {
                        format!("a second <securityTokenHandlers name=\"{}\">", bounded(&name))
                    };
                    (c, format!("{named} ({}) in one <identityConfiguration>; WIF throws ID7029 at start-up. Merge its entries into the first", at(f, c)))
                })
                .or_else(|| {
                    elements::unresolved_handler(doc, ic).map(|(e, why, qualified)| {
                        let type_ref = doc.attr(e, "type").unwrap_or_default();
                        (e, format!(
                            "<{} type=\"{}\"> ({}) names a type .NET cannot load: {why}; WIF refuses its configuration at start-up. Write the full name: {}",
                            doc.name(e),
                            bounded(&type_ref),
                            at(f, e),
                            qualified
                        ))
                    })
                });
            markup.or(repeated).map(|(e, detail)| (f, e, detail))
        })
    });
    if let Some((f, e, detail)) = refused {
        return handler(
            HandlerState::Invalid,
            Some(&f.path),
            Some(detail),
            Some(WifFault::Refused {
                file: f.path.clone(),
                line: line_of(f, e),
            }),
        );
    }
    // The trap: the swap sits where WIF does not look.
    let unused = unused_swap(w, chosen, &named.name)
        .map(|u| u.clause())
        .unwrap_or_default();
    let Some(&Configuration { file, elem: ic, .. }) = chosen else {
        if let Some((fc_file, fc)) = named.named_by {
            let line = line_of(fc_file, fc);
            return handler(
                HandlerState::Invalid,
                None,
                Some(format!(
                    "identityConfigurationName=\"{}\" (line {line} of {}) names no <identityConfiguration>; WIF throws ID7012 at start-up",
                    bounded(&named.name),
                    fc_file.path
                )),
                Some(WifFault::UnknownConfiguration {
                    name: named.name.clone(),
                    file: fc_file.path.clone(),
                    line,
                }),
            );
        }
        return handler(
            HandlerState::Dpapi,
            None,
            Some(format!(
                "the site uses WIF ({why}) but has no unnamed <identityConfiguration>, so WIF uses its defaults, whose SessionSecurityTokenHandler protects session tokens with DPAPI{unused}"
            )),
            None,
        );
    };
    let source = Some(&file.path);
    let line = line_of(file, ic);
    match elements::judge(&elements::handlers_of(&file.doc, ic)) {
        Verdict::MachineKey => handler(HandlerState::MachineKey, source, None, None),
        Verdict::Duplicate => handler(
            HandlerState::Invalid,
            source,
            Some(format!(
                "MachineKeySessionSecurityTokenHandler is added but SessionSecurityTokenHandler is not removed (<identityConfiguration> at line {line} of {}); WIF refuses two handlers for one token type at start-up",
                file.path
            )),
            Some(WifFault::DuplicateHandler {
                file: file.path.clone(),
                line,
            }),
        ),
        Verdict::Dpapi => handler(
            HandlerState::Dpapi,
            source,
            Some(format!(
                "session tokens use WIF's default SessionSecurityTokenHandler, protected with DPAPI{unused}"
            )),
            None,
        ),
        Verdict::NoHandler => handler(
            HandlerState::None,
            source,
            Some(format!(
                "the <identityConfiguration> at line {line} of {} leaves no handler for session tokens (SessionSecurityTokenHandler removed or cleared, MachineKeySessionSecurityTokenHandler not added), so the SessionAuthenticationModule can neither write nor read a session cookie and sign-in fails{unused}",
                file.path
            )),
            None,
        ),
        Verdict::Custom(type_ref) => handler(
            HandlerState::Custom,
            source,
            Some(format!(
                "session tokens go to <add type=\"{}\"> (<identityConfiguration> at line {line} of {}), a class farmkey cannot look into: derived from MachineKeySessionSecurityTokenHandler it reads cookies on every server with the same machine key, from SessionSecurityTokenHandler only on the server that wrote them (DPAPI), and if it handles no session tokens sign-in fails",
                bounded(&type_ref),
                file.path
            )),
            None,
        ),
    }
}
