//! How WIF protects an application's session tokens, decided once from its
//! whole configuration chain: which `<identityConfiguration>` is in use
//! (the scan judges it, the push puts the swap into it), whether the
//! application uses WIF at all, and what makes WIF refuse the configuration
//! at start-up. The rules WIF applies to single elements are in [`elements`].

pub mod elements;

use self::elements::{Modules, Unresolvable, Verdict};
use super::problem::bounded;
use super::record::{ConfigFile, Layer, Level, Scope, line_of};
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
    /// A session handler's `type` that .NET cannot load.
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
        }
    }
}

/// Why the application uses WIF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsesWif {
    /// `<system.identityModel>` or `<system.identityModel.services>` is set.
    Element {
        section: &'static str,
        file: RemotePath,
    },
    /// The SAM or WSFAM module is registered (`file`: where it is added).
    Module { name: String, file: String },
    /// A WIF section is registered in `<configSections>`.
    Declared {
        section: &'static str,
        file: RemotePath,
    },
}

impl fmt::Display for UsesWif {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsesWif::Element { section, file } => write!(f, "<{section}> is set in {file}"),
            UsesWif::Module { name, file } => {
                write!(f, "the {name} module is registered in {file}")
            }
            UsesWif::Declared { section, file } => {
                write!(f, "{section} is registered in <configSections> of {file}")
            }
        }
    }
}

/// The swap, written in an `<identityConfiguration>` that nothing uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusedSwap {
    pub name: String,
    pub file: RemotePath,
    pub line: usize,
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
    /// SessionSecurityTokenHandler removed, the MachineKey one not added.
    HandlerRemoved { unused_swap: Option<UnusedSwap> },
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
            HandlerReason::HandlerRemoved { unused_swap } => {
                f.write_str(
                    "SessionSecurityTokenHandler is removed but MachineKeySessionSecurityTokenHandler is not added",
                )?;
                unused_swap
            }
        };
        match unused_swap {
            Some(UnusedSwap { name, file, line }) => write!(
                f,
                "; the swap in <identityConfiguration name=\"{name}\"> (line {line} of {file}) is not used: no <federationConfiguration> names it"
            ),
            None => Ok(()),
        }
    }
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

    /// Whether farmkey's handler swap is the fix: DPAPI, or the swap's
    /// `remove` missing.
    pub fn needs_swap(&self) -> bool {
        self.state == HandlerState::Dpapi
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
    fn used_because(&self) -> Option<UsesWif> {
        if let Some((file, section)) = &self.element_in {
            return Some(UsesWif::Element {
                section,
                file: file.clone(),
            });
        }
        if let Some((name, file)) = self
            .modules
            .wif_module()
            .or_else(|| self.http_modules.wif_module())
        {
            return Some(UsesWif::Module {
                name: name.to_string(),
                file: file.to_string(),
            });
        }
        self.declared
            .as_ref()
            .map(|(file, section)| UsesWif::Declared {
                section,
                file: file.clone(),
            })
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
    // Faults in any configuration of the section, used or not: the runtime
    // reads all of them before it chooses one.
    let refused = w.configurations.iter().find_map(|&(_, f, ic)| {
        let doc = &f.doc;
        elements::repeated_collection(doc, ic)
            .map(|(c, name)| (c, SectionRefusal::RepeatedCollection { name }))
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
    // The trap: the swap sits in a configuration nothing uses.
    let unused_swap = w
        .configurations
        .iter()
        .filter(|c| name_of(c) != named.name)
        .find(|&&(_, f, ic)| {
            elements::judge(&elements::handlers_of(&f.doc, ic)) == Verdict::MachineKey
        })
        .map(|&(_, f, ic)| UnusedSwap {
            name: elements::configuration_name(&f.doc, ic),
            file: f.path.clone(),
            line: line_of(f, ic),
        });
    let Some(&(_, file, ic)) = chosen else {
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
    match elements::judge(&elements::handlers_of(&file.doc, ic)) {
        Verdict::MachineKey => handler(HandlerState::MachineKey, source, None),
        Verdict::Duplicate => fault(
            HandlerState::Invalid,
            source,
            WifFault::DuplicateHandler {
                file: file.path.clone(),
                line: line_of(file, ic),
            },
        ),
        Verdict::Dpapi => handler(
            HandlerState::Dpapi,
            source,
            Some(HandlerReason::DefaultHandler { unused_swap }),
        ),
        Verdict::NoHandler => handler(
            HandlerState::Dpapi,
            source,
            Some(HandlerReason::HandlerRemoved { unused_swap }),
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
        let declared = UsesWif::Declared {
            section: "system.identityModel",
            file: web(),
        };
        assert_eq!(
            declared.to_string(),
            "system.identityModel is registered in <configSections> of C:\\site\\web.config"
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
        let unused = UnusedSwap {
            name: "swap".into(),
            file: web(),
            line: 3,
        };
        assert_eq!(
            HandlerReason::DefaultHandler { unused_swap: None }.to_string(),
            "session tokens use WIF's default SessionSecurityTokenHandler, protected with DPAPI"
        );
        assert_eq!(
            HandlerReason::DefaultHandler {
                unused_swap: Some(unused)
            }
            .to_string(),
            "session tokens use WIF's default SessionSecurityTokenHandler, protected with DPAPI; the swap in <identityConfiguration name=\"swap\"> (line 3 of C:\\site\\web.config) is not used: no <federationConfiguration> names it"
        );
    }

    #[test]
    fn a_removed_handler_is_worded() {
        assert_eq!(
            HandlerReason::HandlerRemoved { unused_swap: None }.to_string(),
            "SessionSecurityTokenHandler is removed but MachineKeySessionSecurityTokenHandler is not added"
        );
    }
}
