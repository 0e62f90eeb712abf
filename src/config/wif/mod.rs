//! How WIF protects an application's session tokens, decided once from its
//! whole configuration chain: which `<identityConfiguration>` is in use
//! (the scan judges it, the push puts the swap into it), whether the
//! application uses WIF at all, and what makes WIF refuse the configuration
//! at start-up. The rules WIF applies to single elements are in [`elements`].

pub mod elements;

use self::elements::{Modules, Verdict};
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
    /// A session handler's `type` that does not resolve, or a second
    /// `<securityTokenHandlers>` of one name (ID7029): System.Configuration
    /// refuses the section as it reads it.
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
    /// Whether farmkey's handler swap is the fix: DPAPI, or the swap's
    /// `remove` missing.
    pub fn needs_swap(&self) -> bool {
        self.state == HandlerState::Dpapi
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

/// What the chain says about WIF, gathered level by level.
#[derive(Default)]
pub(super) struct WifReading<'a> {
    pub(super) declared: Option<(RemotePath, &'static str)>,
    pub(super) modules: Modules,
    pub(super) http_modules: Modules,
    pub(super) element_in: Option<(RemotePath, &'static str)>,
    pub(super) services: Vec<(&'a ConfigFile, ElemId)>,
    /// Every `<identityConfiguration>`, in chain order, with its level.
    pub(super) configurations: Vec<(Level, &'a ConfigFile, ElemId)>,
    pub(super) encrypted_in: Option<RemotePath>,
}

impl WifReading<'_> {
    /// Why the application uses WIF, if it does.
    fn used_because(&self) -> Option<String> {
        if let Some((file, section)) = &self.element_in {
            return Some(format!("<{section}> is set in {file}"));
        }
        if let Some((name, file)) = self
            .modules
            .wif_module()
            .or_else(|| self.http_modules.wif_module())
        {
            return Some(format!("the {name} module is registered in {file}"));
        }
        self.declared
            .as_ref()
            .map(|(file, section)| format!("{section} is registered in <configSections> of {file}"))
    }
}

/// How WIF protects session tokens, from what the chain says about it.
pub(super) fn judge_wif(w: &WifReading<'_>) -> Handler {
    let named =
        elements::identity_configuration_in_use(w.services.iter().map(|&(f, s)| (f, &f.doc, s)));
    let name_of =
        |&(_, f, ic): &(Level, &ConfigFile, ElemId)| elements::configuration_name(&f.doc, ic);
    let chosen = w
        .configurations
        .iter()
        .rev()
        .find(|c| name_of(c) == named.name);
    let in_use = ConfigurationInUse {
        name: named.name.clone(),
        element: chosen.map(|&(level, f, ic)| ElementAt {
            level,
            file: f.path.clone(),
            line: line_of(f, ic),
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
    // Faults in any configuration of the section, used or not: the runtime
    // reads all of them before it chooses one.
    let refused = w.configurations.iter().find_map(|&(_, f, ic)| {
        let doc = &f.doc;
        let at = |e| format!("line {} of {}", line_of(f, e), f.path);
        elements::repeated_collection(doc, ic)
            .map(|(c, name)| {
                let named = if name.is_empty() {
                    "a second unnamed <securityTokenHandlers>".to_string()
                } else {
                    format!("a second <securityTokenHandlers name=\"{name}\">")
                };
                (c, format!("{named} ({}) in one <identityConfiguration>; WIF throws ID7029 at start-up. Merge its entries into the first", at(c)))
            })
            .or_else(|| {
                elements::unresolved_handler(doc, ic).map(|(e, why, qualified)| {
                    let type_ref = doc.attr(e, "type").unwrap_or_default();
                    (e, format!(
                        "<{} type=\"{}\"> ({}) names a type .NET cannot load: {why}; WIF refuses its configuration at start-up. Write the full name: {}",
                        doc.name(e),
                        bounded(&type_ref),
                        at(e),
                        qualified
                    ))
                })
            })
            .map(|(e, detail)| (f, e, detail))
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
    // The trap: the swap sits in a configuration nothing uses.
    let unused_swap = w
        .configurations
        .iter()
        .filter(|c| name_of(c) != named.name)
        .find(|&&(_, f, ic)| elements::judge(&elements::handlers_of(&f.doc, ic)) == Verdict::MachineKey)
        .map(|&(_, f, ic)| {
            format!(
                "; the swap in <identityConfiguration name=\"{}\"> (line {} of {}) is not used: no <federationConfiguration> names it",
                elements::configuration_name(&f.doc, ic),
                line_of(f, ic),
                f.path
            )
        })
        .unwrap_or_default();
    let Some(&(_, file, ic)) = chosen else {
        if let Some((fc_file, fc)) = named.named_by {
            let line = line_of(fc_file, fc);
            return handler(
                HandlerState::Invalid,
                None,
                Some(format!(
                    "identityConfigurationName=\"{}\" (line {line} of {}) names no <identityConfiguration>; WIF throws ID7012 at start-up",
                    named.name, fc_file.path
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
                "the site uses WIF ({why}) but has no unnamed <identityConfiguration>, so WIF uses its defaults, whose SessionSecurityTokenHandler protects session tokens with DPAPI{unused_swap}"
            )),
            None,
        );
    };
    let source = Some(&file.path);
    match elements::judge(&elements::handlers_of(&file.doc, ic)) {
        Verdict::MachineKey => handler(HandlerState::MachineKey, source, None, None),
        Verdict::Duplicate => {
            let line = line_of(file, ic);
            handler(
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
            )
        }
        Verdict::Dpapi => handler(
            HandlerState::Dpapi,
            source,
            Some(format!(
                "session tokens use WIF's default SessionSecurityTokenHandler, protected with DPAPI{unused_swap}"
            )),
            None,
        ),
        Verdict::NoHandler => handler(
            HandlerState::Dpapi,
            source,
            Some(format!(
                "SessionSecurityTokenHandler is removed but MachineKeySessionSecurityTokenHandler is not added{unused_swap}"
            )),
            None,
        ),
    }
}
