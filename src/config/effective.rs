//! The effective configuration of one application: the files of its chain
//! merged attribute by attribute, later wins, each value with the file it
//! came from (domain.md, "Where the effective value comes from").

use super::xml::{Document, ElemId};
use crate::keys::{KeyPurpose, KeyText};
use crate::paths::RemotePath;
use serde::Serialize;
use std::fmt;

/// A parsed configuration file and where it lives.
#[derive(Debug)]
pub struct ConfigFile {
    pub path: RemotePath,
    pub doc: Document,
}

/// How a file's `<location path>` values are read.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// machine.config, the root web.config, applicationHost.config: paths
    /// start with the site name.
    Machine,
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
}

impl<T> Sourced<T> {
    fn default_value(value: T) -> Self {
        Sourced {
            setting: Setting::Value(value),
            source: Source::Default,
        }
    }

    pub fn value(&self) -> Option<&T> {
        match &self.setting {
            Setting::Value(v) => Some(v),
            Setting::Encrypted => None,
        }
    }
}

impl Sourced<String> {
    /// The value for display: `(encrypted)` when unreadable.
    pub fn shown(&self) -> &str {
        self.value().map_or("(encrypted)", String::as_str)
    }
}

/// The effective `<machineKey>` of an application.
#[derive(Debug, Clone)]
pub struct MachineKey {
    pub validation_key: Sourced<KeyText>,
    pub decryption_key: Sourced<KeyText>,
    pub validation: Sourced<String>,
    pub decryption: Sourced<String>,
    pub compatibility_mode: Sourced<String>,
}

impl Default for MachineKey {
    fn default() -> Self {
        MachineKey {
            validation_key: Sourced::default_value(KeyText::new("AutoGenerate,IsolateApps")),
            decryption_key: Sourced::default_value(KeyText::new("AutoGenerate,IsolateApps")),
            validation: Sourced::default_value("HMACSHA256".into()),
            decryption: Sourced::default_value("Auto".into()),
            compatibility_mode: Sourced::default_value("Framework20SP1".into()),
        }
    }
}

/// What a key attribute holds, judged as the runtime would.
#[derive(Debug, Clone)]
pub enum KeyState {
    Explicit {
        key: KeyText,
        modifiers: Vec<String>,
    },
    AutoGenerate {
        modifiers: Vec<String>,
    },
    Encrypted,
    Invalid {
        reason: String,
    },
}

impl KeyState {
    pub fn name(&self) -> &'static str {
        match self {
            KeyState::Explicit { .. } => "explicit",
            KeyState::AutoGenerate { .. } => "autogenerate",
            KeyState::Encrypted => "encrypted",
            KeyState::Invalid { .. } => "invalid",
        }
    }

    pub fn fingerprint(&self) -> Option<String> {
        match self {
            KeyState::Explicit { key, .. } => Some(key.fingerprint()),
            _ => None,
        }
    }

    pub fn key(&self) -> Option<&KeyText> {
        match self {
            KeyState::Explicit { key, .. } => Some(key),
            _ => None,
        }
    }

    pub fn modifiers(&self) -> &[String] {
        match self {
            KeyState::Explicit { modifiers, .. } | KeyState::AutoGenerate { modifiers } => {
                modifiers
            }
            _ => &[],
        }
    }
}

impl MachineKey {
    pub fn validation_key_state(&self) -> KeyState {
        self.key_state(KeyPurpose::Validation)
    }

    pub fn decryption_key_state(&self) -> KeyState {
        self.key_state(KeyPurpose::Decryption)
    }

    pub fn key_state(&self, purpose: KeyPurpose) -> KeyState {
        let (key, alg) = match purpose {
            KeyPurpose::Validation => (&self.validation_key, &self.validation),
            KeyPurpose::Decryption => (&self.decryption_key, &self.decryption),
        };
        let Setting::Value(text) = &key.setting else {
            return KeyState::Encrypted;
        };
        let mut parts = text.expose().split(',').map(str::trim);
        let base = parts.next().unwrap_or("");
        let modifiers: Vec<String> = parts.map(str::to_string).collect();
        if let Some(bad) = modifiers.iter().find(|m| {
            !m.eq_ignore_ascii_case("IsolateApps") && !m.eq_ignore_ascii_case("IsolateByAppId")
        }) {
            return KeyState::Invalid {
                reason: format!("has an unknown modifier {bad:?}"),
            };
        }
        if base.eq_ignore_ascii_case("AutoGenerate") {
            return KeyState::AutoGenerate { modifiers };
        }
        let key = KeyText::new(base);
        let alg_name = alg.value().map_or("", String::as_str);
        if let Some(reason) = key.problem(purpose, alg_name) {
            return KeyState::Invalid { reason };
        }
        let compat = self.compatibility_mode.value().map_or("", String::as_str);
        if !modifiers.is_empty() && compat.eq_ignore_ascii_case("Framework45") {
            return KeyState::Invalid {
                reason: format!(
                    "carries {} on an explicit key, which compatibilityMode Framework45 rejects",
                    modifiers.join(",")
                ),
            };
        }
        KeyState::Explicit { key, modifiers }
    }

    /// `validation`, upper-cased for comparison.
    pub fn validation_normalised(&self) -> Option<String> {
        self.validation
            .value()
            .map(|v| v.trim().to_ascii_uppercase())
    }

    /// `decryption`, upper-cased, with `Auto` read as the AES it means.
    pub fn decryption_normalised(&self) -> Option<String> {
        self.decryption.value().map(|v| {
            let v = v.trim().to_ascii_uppercase();
            if v == "AUTO" { "AES".to_string() } else { v }
        })
    }

    pub fn is_encrypted(&self) -> bool {
        matches!(self.validation_key.setting, Setting::Encrypted)
            || matches!(self.decryption_key.setting, Setting::Encrypted)
    }
}

/// How WIF protects session tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HandlerState {
    /// MachineKeySessionSecurityTokenHandler added, SessionSecurityTokenHandler removed.
    #[serde(rename = "machinekey")]
    MachineKey,
    /// An identityConfiguration without that swap: DPAPI, readable on one machine only.
    Dpapi,
    /// No identityConfiguration in effect.
    NotConfigured,
    /// `system.identityModel` is encrypted.
    Encrypted,
}

impl HandlerState {
    pub fn name(self) -> &'static str {
        match self {
            HandlerState::MachineKey => "machinekey",
            HandlerState::Dpapi => "dpapi",
            HandlerState::NotConfigured => "not-configured",
            HandlerState::Encrypted => "encrypted",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Handler {
    pub state: HandlerState,
    /// The file that last shaped the active identityConfiguration.
    pub source: Option<RemotePath>,
    /// A sentence for operators when the state needs explaining.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EncryptedSection {
    pub section: &'static str,
    pub file: RemotePath,
}

/// Everything farmkey reads from an application's configuration chain.
#[derive(Debug, Clone)]
pub struct Effective {
    pub machine_key: MachineKey,
    pub target_framework: Option<Sourced<String>>,
    pub handler: Handler,
    pub encrypted_sections: Vec<EncryptedSection>,
    /// Where `system.identityModel` is registered in `<configSections>`.
    pub identity_model_declared: Option<RemotePath>,
}

/// A configuration the runtime itself would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigProblem {
    pub file: RemotePath,
    pub message: String,
}

pub const SESSION_HANDLER: &str = "SessionSecurityTokenHandler";
pub const MACHINE_KEY_HANDLER: &str = "MachineKeySessionSecurityTokenHandler";
pub const SESSION_HANDLER_TYPE: &str = "System.IdentityModel.Tokens.SessionSecurityTokenHandler, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089";
pub const MACHINE_KEY_HANDLER_TYPE: &str = "System.IdentityModel.Services.Tokens.MachineKeySessionSecurityTokenHandler, System.IdentityModel.Services, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089";
pub const IDENTITY_MODEL_SECTION_TYPE: &str = "System.IdentityModel.Configuration.SystemIdentityModelSection, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=B77A5C561934E089";

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

/// `a/b/` and `\a\b` are `a/b`; `.` and empty are empty.
fn normalise_location(path: &str) -> String {
    let p = path.trim().replace('\\', "/");
    let p = p.trim_matches('/');
    if p == "." {
        String::new()
    } else {
        p.to_string()
    }
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
    let root = doc.root();
    let mut found: Vec<(usize, ElemId)> = vec![(0, root)];
    for loc in doc.children_named(root, "location") {
        let rel = normalise_location(&doc.attr(loc, "path").unwrap_or_default());
        let inherit = !doc
            .attr(loc, "inheritInChildApplications")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
        let full = match scope {
            Scope::Machine => rel,
            Scope::App(app) if rel.is_empty() => app.to_string(),
            Scope::App(app) => format!("{app}/{rel}"),
        };
        let applies = match (scope, full.is_empty()) {
            (Scope::Machine, true) => true,
            _ => same_path(&full, target) || (inherit && is_below(target, &full)),
        };
        if applies {
            found.push((1 + depth(&full), loc));
        }
    }
    found.sort_by_key(|&(d, _)| d); // stable: document order within a depth
    found.into_iter().map(|(_, id)| id).collect()
}

/// Whether a section element is protected by a provider.
pub fn is_encrypted(doc: &Document, section: ElemId) -> bool {
    doc.find_attr(section, "configProtectionProvider").is_some()
        || doc.child_named(section, "EncryptedData").is_some()
}

/// The only child named `name`, or a problem when the runtime would see two.
fn single_child(
    file: &ConfigFile,
    parent: ElemId,
    name: &str,
) -> Result<Option<ElemId>, ConfigProblem> {
    let doc = &file.doc;
    let mut it = doc.children_named(parent, name);
    let first = it.next();
    if let (Some(a), Some(b)) = (first, it.next()) {
        return Err(ConfigProblem {
            file: file.path.clone(),
            message: format!(
                "<{name}> appears twice in one place (lines {} and {}); ASP.NET refuses this file",
                doc.line_of(doc.element(a).start_tag.start),
                doc.line_of(doc.element(b).start_tag.start)
            ),
        });
    }
    Ok(first)
}

/// A section kept in another file (`configSource`) is not read: say so
/// rather than report the values of the levels around it.
fn refuse_config_source(file: &ConfigFile, section: ElemId) -> Result<(), ConfigProblem> {
    let doc = &file.doc;
    match doc.attr(section, "configSource") {
        Some(src) => Err(ConfigProblem {
            file: file.path.clone(),
            message: format!(
                "<{}> at line {} keeps its content in {:?} (configSource), which farmkey does not read",
                doc.name(section),
                doc.line_of(doc.element(section).start_tag.start),
                src.as_ref()
            ),
        }),
        None => Ok(()),
    }
}

#[derive(Debug, Default)]
struct IdentityConfig {
    name: String,
    handlers: Vec<String>,
    source: Option<RemotePath>,
}

/// The last file of the chain that registers `system.identityModel` in its
/// `<configSections>`.
pub fn identity_model_declared_in(layers: &[Layer<'_>]) -> Option<RemotePath> {
    layers
        .iter()
        .rev()
        .find(|layer| declares_identity_model(&layer.file.doc))
        .map(|layer| layer.file.path.clone())
}

/// Whether a file's `<configSections>` registers `system.identityModel`.
pub fn declares_identity_model(doc: &Document) -> bool {
    doc.child_named(doc.root(), "configSections")
        .is_some_and(|cs| {
            doc.children_named(cs, "section").any(|s| {
                doc.attr(s, "name")
                    .is_some_and(|n| n.trim() == "system.identityModel")
            })
        })
}

/// Merges the layers for `target` (an application id, `Site/app`).
pub fn resolve(layers: &[Layer<'_>], target: &str) -> Result<Effective, ConfigProblem> {
    let mut mk = MachineKey::default();
    let mut target_framework: Option<Sourced<String>> = None;
    let mut encrypted_sections = Vec::new();
    let identity_model_declared = identity_model_declared_in(layers);
    let mut identity_encrypted: Option<RemotePath> = None;
    let mut identities: Vec<IdentityConfig> = Vec::new();
    let mut active_identity = String::new();

    for layer in layers {
        let file = layer.file;
        let doc = &file.doc;
        let src = || Source::File(file.path.clone());
        for container in containers(doc, layer.scope, target) {
            if let Some(web) = single_child(file, container, "system.web")? {
                if let Some(m) = single_child(file, web, "machineKey")? {
                    refuse_config_source(file, m)?;
                    if is_encrypted(doc, m) {
                        for slot in [&mut mk.validation_key, &mut mk.decryption_key] {
                            *slot = Sourced {
                                setting: Setting::Encrypted,
                                source: src(),
                            };
                        }
                        for slot in [
                            &mut mk.validation,
                            &mut mk.decryption,
                            &mut mk.compatibility_mode,
                        ] {
                            *slot = Sourced {
                                setting: Setting::Encrypted,
                                source: src(),
                            };
                        }
                        encrypted_sections.push(EncryptedSection {
                            section: "machineKey",
                            file: file.path.clone(),
                        });
                    }
                    let set_text = |slot: &mut Sourced<String>, name: &str| {
                        if let Some(v) = doc.attr(m, name) {
                            *slot = Sourced {
                                setting: Setting::Value(v.trim().to_string()),
                                source: src(),
                            };
                        }
                    };
                    set_text(&mut mk.validation, "validation");
                    set_text(&mut mk.decryption, "decryption");
                    set_text(&mut mk.compatibility_mode, "compatibilityMode");
                    for (slot, name) in [
                        (&mut mk.validation_key, "validationKey"),
                        (&mut mk.decryption_key, "decryptionKey"),
                    ] {
                        if let Some(v) = doc.attr(m, name) {
                            *slot = Sourced {
                                setting: Setting::Value(KeyText::new(v.into_owned())),
                                source: src(),
                            };
                        }
                    }
                }
                if let Some(rt) = single_child(file, web, "httpRuntime")?
                    && let Some(tf) = doc.attr(rt, "targetFramework")
                {
                    target_framework = Some(Sourced {
                        setting: Setting::Value(tf.trim().to_string()),
                        source: src(),
                    });
                }
            }
            if let Some(services) = single_child(file, container, "system.identityModel.services")?
                && let Some(fc) = doc
                    .children_named(services, "federationConfiguration")
                    .find(|&fc| doc.attr(fc, "name").is_none_or(|n| n.trim().is_empty()))
                && let Some(name) = doc.attr(fc, "identityConfigurationName")
            {
                active_identity = name.trim().to_string();
            }
            let Some(im) = single_child(file, container, "system.identityModel")? else {
                continue;
            };
            refuse_config_source(file, im)?;
            if is_encrypted(doc, im) {
                identity_encrypted = Some(file.path.clone());
                encrypted_sections.push(EncryptedSection {
                    section: "system.identityModel",
                    file: file.path.clone(),
                });
                continue;
            }
            for ic in doc.children_named(im, "identityConfiguration") {
                let name = doc.attr(ic, "name").unwrap_or_default().trim().to_string();
                let idx = match identities.iter().position(|c| c.name == name) {
                    Some(i) => i,
                    None => {
                        identities.push(IdentityConfig {
                            name,
                            // WIF's default collection includes the DPAPI handler.
                            handlers: vec![short_type_name(SESSION_HANDLER)],
                            source: None,
                        });
                        identities.len() - 1
                    }
                };
                let config = &mut identities[idx];
                config.source = Some(file.path.clone());
                for sth in doc.children_named(ic, "securityTokenHandlers") {
                    if doc.attr(sth, "name").is_some_and(|n| !n.trim().is_empty()) {
                        continue; // named collections serve other token types
                    }
                    for &entry in doc.children(sth) {
                        let ty = short_type_name(&doc.attr(entry, "type").unwrap_or_default());
                        match doc.name(entry) {
                            "clear" => config.handlers.clear(),
                            "remove" => config.handlers.retain(|h| *h != ty),
                            "add" if !config.handlers.contains(&ty) => config.handlers.push(ty),
                            _ => {}
                        }
                    }
                }
            }
        }
    }

    if matches!(mk.compatibility_mode.source, Source::Default)
        && let Some(tf) = &target_framework
        && tf.value().is_some_and(|v| framework_at_least_45(v))
    {
        mk.compatibility_mode = Sourced {
            setting: Setting::Value("Framework45".into()),
            source: Source::Implied(format!(
                "<httpRuntime targetFramework=\"{}\"> in {}",
                tf.shown(),
                tf.source
            )),
        };
    }

    let handler = if let Some(file) = identity_encrypted {
        Handler {
            state: HandlerState::Encrypted,
            source: Some(file),
            detail: Some("system.identityModel is encrypted; its handlers cannot be read".into()),
        }
    } else {
        judge_handlers(&identities, &active_identity)
    };

    Ok(Effective {
        machine_key: mk,
        target_framework,
        handler,
        encrypted_sections,
        identity_model_declared,
    })
}

fn judge_handlers(identities: &[IdentityConfig], active: &str) -> Handler {
    let Some(config) = identities.iter().find(|c| c.name == active) else {
        return Handler {
            state: HandlerState::NotConfigured,
            source: None,
            detail: None,
        };
    };
    let session = short_type_name(SESSION_HANDLER);
    let machine = short_type_name(MACHINE_KEY_HANDLER);
    let has_session = config.handlers.contains(&session);
    let has_machine = config.handlers.contains(&machine);
    let (state, detail) = match (has_machine, has_session) {
        (true, false) => (HandlerState::MachineKey, None),
        (true, true) => (
            HandlerState::Dpapi,
            Some("MachineKeySessionSecurityTokenHandler is added but SessionSecurityTokenHandler is not removed; WIF refuses two handlers for one token type".to_string()),
        ),
        (false, true) => (
            HandlerState::Dpapi,
            Some("session tokens use WIF's default SessionSecurityTokenHandler, protected with DPAPI".to_string()),
        ),
        (false, false) => (
            HandlerState::Dpapi,
            Some("SessionSecurityTokenHandler is removed but MachineKeySessionSecurityTokenHandler is not added".to_string()),
        ),
    };
    Handler {
        state,
        source: config.source.clone(),
        detail,
    }
}

/// `4.5`, `4.7.2`, `4.8` are; `4.0`, `2.0` are not.
fn framework_at_least_45(v: &str) -> bool {
    let mut parts = v.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= (4, 5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::FileBytes;

    fn file(path: &str, xml: &str) -> ConfigFile {
        ConfigFile {
            path: RemotePath::parse(path).unwrap(),
            doc: Document::parse(FileBytes::new(xml.as_bytes().to_vec())).unwrap(),
        }
    }

    /// The effective configuration of a web.config on its own.
    fn resolve_alone(f: &ConfigFile) -> Result<Effective, ConfigProblem> {
        resolve(
            &[Layer {
                file: f,
                scope: Scope::App("S"),
            }],
            "S",
        )
    }

    const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const K2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn later_layers_win_attribute_by_attribute() {
        let root = file(
            "/C:/Windows/Microsoft.NET/Framework64/v4.0.30319/Config/web.config",
            &format!(
                r#"<configuration><system.web><machineKey validationKey="{K1}" decryptionKey="{K1}" validation="SHA1" decryption="AES"/></system.web>
              <location path="Flowtime/api"><system.web><machineKey decryptionKey="{K2}"/></system.web></location></configuration>"#
            ),
        );
        let site = file(
            "/C:/inetpub/Flowtime/web.config",
            r#"<configuration><location path="." inheritInChildApplications="false"><system.web><machineKey validation="HMACSHA256"/></system.web></location></configuration>"#,
        );
        let layers = [
            Layer {
                file: &root,
                scope: Scope::Machine,
            },
            Layer {
                file: &site,
                scope: Scope::App("Flowtime"),
            },
        ];
        let api = resolve(&layers, "Flowtime/api").unwrap();
        let mk = &api.machine_key;
        assert_eq!(
            mk.validation.shown(),
            "SHA1",
            "location '.' with inherit=false stays in the site"
        );
        assert_eq!(mk.validation.source, Source::File(root.path.clone()));
        assert!(
            mk.decryption_key
                .value()
                .unwrap()
                .same_key(&KeyText::new(K2))
        );
        assert_eq!(mk.compatibility_mode.source, Source::Default);

        let site_eff = resolve(&layers, "Flowtime").unwrap();
        assert_eq!(site_eff.machine_key.validation.shown(), "HMACSHA256");
        assert_eq!(
            site_eff.machine_key.validation.source,
            Source::File(site.path.clone())
        );
        assert!(
            site_eff
                .machine_key
                .decryption_key
                .value()
                .unwrap()
                .same_key(&KeyText::new(K1))
        );
    }

    #[test]
    fn key_states() {
        let mut mk = MachineKey::default();
        assert!(
            matches!(mk.validation_key_state(), KeyState::AutoGenerate { ref modifiers } if modifiers == &["IsolateApps"])
        );
        mk.validation_key.setting = Setting::Value(KeyText::new(format!("{K1},IsolateApps")));
        assert!(
            matches!(mk.validation_key_state(), KeyState::Explicit { ref modifiers, .. } if modifiers.len() == 1)
        );
        mk.compatibility_mode.setting = Setting::Value("Framework45".into());
        assert!(matches!(
            mk.validation_key_state(),
            KeyState::Invalid { .. }
        ));
        mk.validation_key.setting = Setting::Value(KeyText::new("XYZ"));
        let KeyState::Invalid { reason } = mk.validation_key_state() else {
            panic!()
        };
        assert!(reason.contains("non-hex"));
        mk.decryption_key.setting = Setting::Encrypted;
        assert!(matches!(mk.decryption_key_state(), KeyState::Encrypted));
    }

    #[test]
    fn handler_states() {
        let h = |xml: &str| {
            let f = file("/C:/site/web.config", xml);
            resolve_alone(&f).unwrap().handler.state
        };
        assert_eq!(h("<configuration/>"), HandlerState::NotConfigured);
        assert_eq!(
            h(
                "<configuration><system.identityModel><identityConfiguration><audienceUris/></identityConfiguration></system.identityModel></configuration>"
            ),
            HandlerState::Dpapi
        );
        let swapped = r#"<configuration><system.identityModel><identityConfiguration><securityTokenHandlers>
            <remove type="System.IdentityModel.Tokens.SessionSecurityTokenHandler,System.IdentityModel" />
            <add type=" System.IdentityModel.Services.Tokens.MachineKeySessionSecurityTokenHandler , System.IdentityModel.Services, Version=4.0.0.0" />
            </securityTokenHandlers></identityConfiguration></system.identityModel></configuration>"#.to_string();
        assert_eq!(h(&swapped), HandlerState::MachineKey);
        let add_only = format!(
            r#"<configuration><system.identityModel><identityConfiguration><securityTokenHandlers><add type="{MACHINE_KEY_HANDLER_TYPE}"/></securityTokenHandlers></identityConfiguration></system.identityModel></configuration>"#
        );
        assert_eq!(h(&add_only), HandlerState::Dpapi);
        let cleared = format!(
            r#"<configuration><system.identityModel><identityConfiguration><securityTokenHandlers><clear/><add type="{MACHINE_KEY_HANDLER_TYPE}"/></securityTokenHandlers></identityConfiguration></system.identityModel></configuration>"#
        );
        assert_eq!(h(&cleared), HandlerState::MachineKey);
        assert_eq!(
            h(
                r#"<configuration><system.identityModel configProtectionProvider="Rsa"><EncryptedData/></system.identityModel></configuration>"#
            ),
            HandlerState::Encrypted
        );
    }

    #[test]
    fn target_framework_implies_framework45() {
        let f = file(
            "/C:/site/web.config",
            r#"<configuration><system.web><httpRuntime targetFramework="4.7.2"/></system.web></configuration>"#,
        );
        let eff = resolve_alone(&f).unwrap();
        assert_eq!(eff.machine_key.compatibility_mode.shown(), "Framework45");
        assert!(matches!(
            eff.machine_key.compatibility_mode.source,
            Source::Implied(_)
        ));
        assert_eq!(eff.target_framework.unwrap().shown(), "4.7.2");
    }

    #[test]
    fn encrypted_machine_key_hides_values() {
        let f = file(
            "/C:/site/web.config",
            r#"<configuration><system.web><machineKey configProtectionProvider="RsaProtectedConfigurationProvider"><EncryptedData/></machineKey></system.web></configuration>"#,
        );
        let eff = resolve_alone(&f).unwrap();
        assert!(eff.machine_key.is_encrypted());
        assert_eq!(eff.machine_key.validation.shown(), "(encrypted)");
        assert_eq!(eff.encrypted_sections.len(), 1);
    }

    #[test]
    fn sections_in_other_files_are_a_problem_not_defaults() {
        let f = file(
            "/C:/site/web.config",
            "<configuration>\n<system.web>\n<machineKey configSource=\"mk.config\"/></system.web></configuration>",
        );
        let err = resolve_alone(&f).unwrap_err();
        assert!(
            err.message.contains("<machineKey> at line 3") && err.message.contains("mk.config"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_sections_are_a_problem() {
        let f = file(
            "/C:/site/web.config",
            "<configuration><system.web>\n<machineKey/>\n<machineKey/></system.web></configuration>",
        );
        let err = resolve_alone(&f).unwrap_err();
        assert!(err.message.contains("lines 2 and 3"), "{err}");
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
        assert_eq!(
            short_type_name(" System.A.B . SessionSecurityTokenHandler , X"),
            "sessionsecuritytokenhandler"
        );
    }
}
