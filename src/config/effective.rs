//! The effective configuration of one application: the files of its chain
//! merged attribute by attribute, later wins, each value with the file it
//! came from (domain.md, "Where the effective value comes from"). Sections
//! kept in other files (`configSource`) are read from there, locks set by a
//! parent refuse what a lower level sets, and applicationHost.config, which
//! ASP.NET never reads, only counts for IIS's module registrations.

use super::locks::{self, Lock, LockViolation};
use super::section::{self, Section, SourceFiles, line_of, single_child};
use super::wif::{self, Modules, Verdict};
use super::xml::{Document, ElemId};
use crate::keys::{KeyPurpose, KeyText, MachineKeyEnum, mask_key_text};
use crate::paths::RemotePath;
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;

pub use super::wif::{
    IDENTITY_MODEL_SECTION_TYPE, MACHINE_KEY_HANDLER, MACHINE_KEY_HANDLER_TYPE, SESSION_HANDLER,
    SESSION_HANDLER_TYPE, short_type_name,
};

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
    fn default_value(value: T) -> Self {
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

/// The effective `<machineKey>` of an application.
#[derive(Debug, Clone)]
pub struct MachineKey {
    pub validation_key: Sourced<KeyText>,
    pub decryption_key: Sourced<KeyText>,
    /// As ASP.NET reads it: trimmed.
    pub validation: Sourced<String>,
    /// As ASP.NET reads it: trimmed.
    pub decryption: Sourced<String>,
    /// As written: ASP.NET does not trim it.
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

/// An enum attribute of `<machineKey>` written in a way ASP.NET refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    pub attribute: &'static str,
    /// As [`Sourced::shown`] shows it: a key pasted there is masked.
    pub value: String,
    /// `C:\site\web.config line 4`.
    pub at: String,
}

impl MachineKey {
    pub fn validation_key_state(&self) -> KeyState {
        self.key_state(KeyPurpose::Validation)
    }

    pub fn decryption_key_state(&self) -> KeyState {
        self.key_state(KeyPurpose::Decryption)
    }

    /// The validationKey or decryptionKey attribute, with its source.
    pub fn key(&self, purpose: KeyPurpose) -> &Sourced<KeyText> {
        match purpose {
            KeyPurpose::Validation => &self.validation_key,
            KeyPurpose::Decryption => &self.decryption_key,
        }
    }

    pub fn key_state(&self, purpose: KeyPurpose) -> KeyState {
        let key = self.key(purpose);
        let alg = match purpose {
            KeyPurpose::Validation => &self.validation,
            KeyPurpose::Decryption => &self.decryption,
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
                reason: format!("has an unknown modifier {:?}", mask_key_text(bad)),
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
        if !modifiers.is_empty()
            && self
                .compatibility_mode
                .value()
                .is_some_and(|c| c == "Framework45")
        {
            return KeyState::Invalid {
                reason: format!(
                    "carries {} on an explicit key, which compatibilityMode Framework45 rejects",
                    modifiers.join(",")
                ),
            };
        }
        KeyState::Explicit { key, modifiers }
    }

    fn enum_setting(&self, e: MachineKeyEnum) -> &Sourced<String> {
        match e {
            MachineKeyEnum::Validation => &self.validation,
            MachineKeyEnum::Decryption => &self.decryption,
            MachineKeyEnum::CompatibilityMode => &self.compatibility_mode,
        }
    }

    /// An enum value as ASP.NET accepts it; `None` when refused or unreadable.
    pub fn accepted(&self, e: MachineKeyEnum) -> Option<&str> {
        self.enum_setting(e)
            .value()
            .map(String::as_str)
            .filter(|v| e.accepts(v))
    }

    /// The enum values ASP.NET refuses (`validation="sha1"`): each stops
    /// the application.
    pub fn invalid_values(&self) -> Vec<InvalidValue> {
        MachineKeyEnum::ALL
            .into_iter()
            .filter_map(|e| {
                let s = self.enum_setting(e);
                let value = s.value()?;
                (!e.accepts(value)).then(|| InvalidValue {
                    attribute: e.attribute(),
                    value: s.shown().into_owned(),
                    at: s.located(),
                })
            })
            .collect()
    }

    /// `validation`, upper-cased for comparison; `None` when ASP.NET
    /// refuses it (it is then no algorithm at all).
    pub fn validation_normalised(&self) -> Option<String> {
        self.accepted(MachineKeyEnum::Validation)
            .map(|v| v.trim().to_ascii_uppercase())
    }

    /// `decryption`, upper-cased, with `Auto` read as the AES it means.
    pub fn decryption_normalised(&self) -> Option<String> {
        self.accepted(MachineKeyEnum::Decryption).map(|v| {
            let v = v.trim().to_ascii_uppercase();
            if v == "AUTO" { "AES".to_string() } else { v }
        })
    }

    pub fn is_encrypted(&self) -> bool {
        matches!(self.validation_key.setting, Setting::Encrypted)
            || matches!(self.decryption_key.setting, Setting::Encrypted)
    }
}

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EncryptedSection {
    pub section: &'static str,
    pub file: RemotePath,
}

/// A section written in applicationHost.config, which ASP.NET never reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoredSection {
    pub section: &'static str,
    pub file: RemotePath,
    pub line: usize,
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
    /// Sections in applicationHost.config that target the application.
    pub ignored: Vec<IgnoredSection>,
    /// Definitions a parent's lock refuses (the parent's values stay).
    pub locked: Vec<LockViolation>,
    /// The locks on the application's own level: what its web.config may
    /// not set.
    pub locks: Vec<Lock>,
}

/// A configuration the runtime itself would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigProblem {
    pub file: RemotePath,
    pub message: String,
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
    found.into_iter().map(|(_, id)| id).collect()
}

/// Whether a section element is protected by a provider.
pub fn is_encrypted(doc: &Document, section: ElemId) -> bool {
    doc.find_attr(section, "configProtectionProvider").is_some()
        || doc.child_named(section, "EncryptedData").is_some()
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
    wif::declares(doc, "system.identityModel")
}

/// What the chain says about WIF, gathered level by level.
#[derive(Default)]
struct WifReading<'a> {
    declared: Option<(RemotePath, &'static str)>,
    modules: Modules,
    http_modules: Modules,
    element_in: Option<(RemotePath, &'static str)>,
    services: Vec<(&'a ConfigFile, ElemId)>,
    /// Every `<identityConfiguration>`, in chain order, with its level.
    configurations: Vec<(Level, &'a ConfigFile, ElemId)>,
    encrypted_in: Option<RemotePath>,
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

/// Merges the layers for `target` (an application id, `Site/app`); the
/// files `configSource` names come from `sources`.
pub fn resolve(
    layers: &[Layer<'_>],
    target: &str,
    sources: &dyn SourceFiles,
) -> Result<Effective, ConfigProblem> {
    let mut m = Merge {
        target,
        sources,
        mk: MachineKey::default(),
        target_framework: None,
        encrypted_sections: Vec::new(),
        ignored: Vec::new(),
        locked: Vec::new(),
        locks: Vec::new(),
        own_locks: None,
        wif: WifReading::default(),
    };
    for layer in layers {
        m.layer(layer)?;
    }
    let Merge {
        mut mk,
        target_framework,
        encrypted_sections,
        ignored,
        locked,
        locks,
        own_locks,
        wif,
        ..
    } = m;

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
            line: None,
        };
    }

    let handler = judge_wif(&wif);
    Ok(Effective {
        machine_key: mk,
        target_framework,
        handler,
        encrypted_sections,
        identity_model_declared: identity_model_declared_in(layers),
        ignored,
        locked,
        locks: own_locks.unwrap_or(locks),
    })
}

struct Merge<'a, 's> {
    target: &'s str,
    sources: &'a dyn SourceFiles,
    mk: MachineKey,
    target_framework: Option<Sourced<String>>,
    encrypted_sections: Vec<EncryptedSection>,
    ignored: Vec<IgnoredSection>,
    locked: Vec<LockViolation>,
    /// Locks set by the levels read so far.
    locks: Vec<Lock>,
    /// The locks when the application's own level began.
    own_locks: Option<Vec<Lock>>,
    wif: WifReading<'a>,
}

impl<'a> Merge<'a, '_> {
    fn layer(&mut self, layer: &Layer<'a>) -> Result<(), ConfigProblem> {
        let file = layer.file;
        let own = matches!(layer.scope, Scope::App(id) if id.eq_ignore_ascii_case(self.target));
        if own && self.own_locks.is_none() {
            self.own_locks = Some(self.locks.clone());
        }
        let iis_only = matches!(layer.scope, Scope::ApplicationHost);
        if !iis_only
            && self.wif.declared.is_none()
            && let Some(section) = wif::declared_section(&file.doc)
        {
            self.wif.declared = Some((file.path.clone(), section));
        }
        // Locks bind the levels below this file, not this file itself.
        let mut new_locks = Vec::new();
        for container in containers(&file.doc, layer.scope, self.target) {
            if iis_only {
                self.ignored_sections(file, container)?;
            } else {
                self.system_web(file, container, &mut new_locks)?;
                self.identity_model(file, container, own, &mut new_locks)?;
            }
            if let Some(ws) = single_child(file, container, "system.webServer")?
                && let Some(s) = section::section(file, ws, "modules", self.sources)?
            {
                self.wif
                    .modules
                    .apply(&s.file.doc, s.elem, &s.file.path.to_string());
            }
        }
        self.locks.extend(new_locks);
        Ok(())
    }

    fn ignored_sections(
        &mut self,
        file: &ConfigFile,
        container: ElemId,
    ) -> Result<(), ConfigProblem> {
        let doc = &file.doc;
        if let Some(web) = single_child(file, container, "system.web")?
            && let Some(mk) = single_child(file, web, "machineKey")?
        {
            self.ignored.push(IgnoredSection {
                section: "machineKey",
                file: file.path.clone(),
                line: line_of(file, mk),
            });
        }
        for name in wif::SECTIONS {
            if let Some(im) = doc.child_named(container, name) {
                self.ignored.push(IgnoredSection {
                    section: name,
                    file: file.path.clone(),
                    line: line_of(file, im),
                });
            }
        }
        Ok(())
    }

    /// Checks a section against the locks of the levels above; a refused
    /// definition is recorded and not applied.
    fn admitted(&mut self, name: &'static str, s: &Section<'_>) -> bool {
        match locks::first_refusal(&self.locks, name, s) {
            Some((lock, what)) => {
                self.locked.push(LockViolation {
                    section: name,
                    file: s.file.path.clone(),
                    line: s.line(),
                    what,
                    lock: lock.clone(),
                });
                false
            }
            None => true,
        }
    }

    fn system_web(
        &mut self,
        file: &'a ConfigFile,
        container: ElemId,
        new_locks: &mut Vec<Lock>,
    ) -> Result<(), ConfigProblem> {
        let Some(web) = single_child(file, container, "system.web")? else {
            return Ok(());
        };
        if let Some(s) = section::section(file, web, "machineKey", self.sources)? {
            if self.admitted("machineKey", &s) {
                self.machine_key(&s);
            }
            new_locks.extend(locks::locks_set_by("machineKey", &s, file, container));
        }
        if let Some(s) = section::section(file, web, "httpRuntime", self.sources)?
            && let Some(tf) = s.file.doc.attr(s.elem, "targetFramework")
        {
            self.target_framework = Some(Sourced {
                setting: Setting::Value(tf.trim().to_string()),
                source: Source::File(s.file.path.clone()),
                line: Some(s.line()),
            });
        }
        if let Some(s) = section::section(file, web, "httpModules", self.sources)? {
            self.wif
                .http_modules
                .apply(&s.file.doc, s.elem, &s.file.path.to_string());
        }
        Ok(())
    }

    fn machine_key(&mut self, s: &Section<'_>) {
        let (doc, m) = (&s.file.doc, s.elem);
        let src = || Source::File(s.file.path.clone());
        let line = Some(s.line());
        let mk = &mut self.mk;
        if is_encrypted(doc, m) {
            for slot in [&mut mk.validation_key, &mut mk.decryption_key] {
                *slot = Sourced {
                    setting: Setting::Encrypted,
                    source: src(),
                    line,
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
                    line,
                };
            }
            self.encrypted_sections.push(EncryptedSection {
                section: "machineKey",
                file: s.file.path.clone(),
            });
        }
        let set_text = |slot: &mut Sourced<String>, name: &str, trim: bool| {
            if let Some(v) = doc.attr(m, name) {
                let v = if trim {
                    v.trim().to_string()
                } else {
                    v.into_owned()
                };
                *slot = Sourced {
                    setting: Setting::Value(v),
                    source: src(),
                    line,
                };
            }
        };
        set_text(&mut mk.validation, "validation", true);
        set_text(&mut mk.decryption, "decryption", true);
        set_text(&mut mk.compatibility_mode, "compatibilityMode", false);
        for (slot, name) in [
            (&mut mk.validation_key, "validationKey"),
            (&mut mk.decryption_key, "decryptionKey"),
        ] {
            if let Some(v) = doc.attr(m, name) {
                *slot = Sourced {
                    setting: Setting::Value(KeyText::new(v.into_owned())),
                    source: src(),
                    line,
                };
            }
        }
    }

    /// `own`: the file is the application's own web.config.
    fn identity_model(
        &mut self,
        file: &'a ConfigFile,
        container: ElemId,
        own: bool,
        new_locks: &mut Vec<Lock>,
    ) -> Result<(), ConfigProblem> {
        if let Some(s) = section::section(
            file,
            container,
            "system.identityModel.services",
            self.sources,
        )? {
            self.wif
                .element_in
                .get_or_insert((file.path.clone(), "system.identityModel.services"));
            if !is_encrypted(&s.file.doc, s.elem) {
                self.wif.services.push((s.file, s.elem));
            }
        }
        let Some(s) = section::section(file, container, "system.identityModel", self.sources)?
        else {
            return Ok(());
        };
        self.wif
            .element_in
            .get_or_insert((file.path.clone(), "system.identityModel"));
        let admitted = self.admitted("system.identityModel", &s);
        new_locks.extend(locks::locks_set_by(
            "system.identityModel",
            &s,
            file,
            container,
        ));
        if !admitted {
            return Ok(());
        }
        if is_encrypted(&s.file.doc, s.elem) {
            self.wif.encrypted_in = Some(s.file.path.clone());
            self.encrypted_sections.push(EncryptedSection {
                section: "system.identityModel",
                file: s.file.path.clone(),
            });
            return Ok(());
        }
        let level = match (own, std::ptr::eq(s.file, file)) {
            (false, _) => Level::Parent,
            (true, true) => Level::Own,
            (true, false) => Level::OwnConfigSource,
        };
        for ic in s.file.doc.children_named(s.elem, "identityConfiguration") {
            self.wif.configurations.push((level, s.file, ic));
        }
        Ok(())
    }
}

/// How WIF protects session tokens, from what the chain says about it.
fn judge_wif(w: &WifReading<'_>) -> Handler {
    let named = wif::identity_configuration_in_use(w.services.iter().map(|&(f, s)| (f, &f.doc, s)));
    let name_of = |&(_, f, ic): &(Level, &ConfigFile, ElemId)| wif::configuration_name(&f.doc, ic);
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
    // The trap: the swap sits in a configuration nothing uses.
    let unused_swap = w
        .configurations
        .iter()
        .filter(|c| name_of(c) != named.name)
        .find(|&&(_, f, ic)| wif::judge(&wif::handlers_of(&f.doc, ic)) == Verdict::MachineKey)
        .map(|&(_, f, ic)| {
            format!(
                "; the swap in <identityConfiguration name=\"{}\"> (line {} of {}) is not used: no <federationConfiguration> names it",
                wif::configuration_name(&f.doc, ic),
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
    match wif::judge(&wif::handlers_of(&file.doc, ic)) {
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

    /// Files named by configSource, by path.
    struct Files(Vec<ConfigFile>);

    impl SourceFiles for Files {
        fn external(&self, path: &RemotePath) -> section::External<'_> {
            match self.0.iter().find(|f| f.path.key() == path.key()) {
                Some(f) => section::External::Found(f),
                None => section::External::Missing,
            }
        }
    }

    /// The effective configuration of a web.config on its own.
    fn resolve_alone(f: &ConfigFile) -> Result<Effective, ConfigProblem> {
        resolve_with(f, &[])
    }

    fn resolve_with(f: &ConfigFile, external: &[(&str, &str)]) -> Result<Effective, ConfigProblem> {
        let files = Files(external.iter().map(|(p, x)| file(p, x)).collect());
        resolve(
            &[Layer {
                file: f,
                scope: Scope::App("S"),
            }],
            "S",
            &files,
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
        let api = resolve(&layers, "Flowtime/api", &section::NoSourceFiles).unwrap();
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

        let site_eff = resolve(&layers, "Flowtime", &section::NoSourceFiles).unwrap();
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
        assert_eq!(
            h(&add_only),
            HandlerState::Invalid,
            "two handlers: WIF throws"
        );
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
    fn wif_uses_the_configuration_its_default_federation_configuration_names() {
        let eff = |xml: &str| {
            resolve_alone(&file("/C:/site/web.config", xml))
                .unwrap()
                .handler
        };
        let swap = format!(
            "<securityTokenHandlers><remove type=\"{SESSION_HANDLER_TYPE}\"/><add type=\"{MACHINE_KEY_HANDLER_TYPE}\"/></securityTokenHandlers>"
        );
        let declared =
            "<configSections><section name=\"system.identityModel\" type=\"x\"/></configSections>";
        // Declared, nothing else: WIF's defaults, DPAPI.
        let h = eff(&format!("<configuration>{declared}</configuration>"));
        assert_eq!(h.state, HandlerState::Dpapi);
        assert!(h.detail.unwrap().contains("registered in <configSections>"));
        // The trap: the swap in a named configuration nothing names.
        let trap = format!(
            "<configuration>{declared}\n<system.identityModel>\n<identityConfiguration name=\"swap\">{swap}</identityConfiguration></system.identityModel></configuration>"
        );
        let h = eff(&trap);
        assert_eq!(h.state, HandlerState::Dpapi);
        let detail = h.detail.unwrap();
        assert!(
            detail.contains("name=\"swap\"> (line 3 of C:\\site\\web.config) is not used"),
            "{detail}"
        );
        // Named by the default federationConfiguration: used.
        let named = trap.replace(
            "</configuration>",
            "<system.identityModel.services><federationConfiguration identityConfigurationName=\"swap\"/></system.identityModel.services></configuration>",
        );
        assert_eq!(eff(&named).state, HandlerState::MachineKey);
        // A name that matches nothing: WIF throws ID7012.
        let unknown = named.replace(
            "identityConfigurationName=\"swap\"",
            "identityConfigurationName=\"Swap\"",
        );
        let h = eff(&unknown);
        assert_eq!(h.state, HandlerState::Invalid);
        assert!(
            matches!(h.fault, Some(WifFault::UnknownConfiguration { ref name, line: 3, .. }) if name == "Swap")
        );
        // A named federationConfiguration is not the default one.
        let other = trap.replace(
            "</configuration>",
            "<system.identityModel.services><federationConfiguration name=\"x\" identityConfigurationName=\"swap\"/></system.identityModel.services></configuration>",
        );
        assert_eq!(eff(&other).state, HandlerState::Dpapi);
        // No WIF at all.
        assert_eq!(
            eff("<configuration><system.web/></configuration>").state,
            HandlerState::NotConfigured
        );
        let module = "<configuration><system.web><httpModules><add name=\"WSFAM\" type=\"System.IdentityModel.Services.WSFederationAuthenticationModule\"/></httpModules></system.web></configuration>";
        assert_eq!(eff(module).state, HandlerState::Dpapi);
    }

    #[test]
    fn the_configuration_in_use_is_found_at_its_level() {
        let at = |eff: &Effective| {
            let u = &eff.handler.in_use;
            let e = u
                .element
                .as_ref()
                .map(|e| (e.level, e.file.to_string(), e.line));
            (u.name.clone(), e)
        };
        let root = file(
            "/C:/root/web.config",
            "<configuration>\n<location path=\"S\">\n<system.identityModel>\n<identityConfiguration name=\"P\"/></system.identityModel>\n<system.identityModel.services><federationConfiguration identityConfigurationName=\"C\"/></system.identityModel.services></location></configuration>",
        );
        // Named by a parent's <location>, defined in the site's own file.
        let own = file(
            "/C:/site/web.config",
            "<configuration>\n<system.identityModel>\n<identityConfiguration name=\"C\"/></system.identityModel></configuration>",
        );
        let files = [(root, Scope::Machine), (own, Scope::App("S"))];
        let eff = resolve(&layers_of(&files), "S", &section::NoSourceFiles).unwrap();
        assert_eq!(
            at(&eff),
            (
                "C".into(),
                Some((Level::Own, "C:\\site\\web.config".into(), 3))
            )
        );
        // Defined in the parent, named by the site.
        let [(root, _), _] = files;
        let naming = file(
            "/C:/site/web.config",
            "<configuration><system.identityModel.services><federationConfiguration identityConfigurationName=\"P\"/></system.identityModel.services></configuration>",
        );
        let files = [(root, Scope::Machine), (naming, Scope::App("S"))];
        let eff = resolve(&layers_of(&files), "S", &section::NoSourceFiles).unwrap();
        assert_eq!(
            at(&eff),
            (
                "P".into(),
                Some((Level::Parent, "C:\\root\\web.config".into(), 4))
            )
        );
        // Kept in the file the site's configSource names.
        let sourced = file(
            "/C:/site/web.config",
            "<configuration><system.identityModel configSource=\"im.config\"/></configuration>",
        );
        let eff = resolve_with(
            &sourced,
            &[(
                "/C:/site/im.config",
                "<system.identityModel>\n<identityConfiguration/></system.identityModel>",
            )],
        )
        .unwrap();
        assert_eq!(
            at(&eff),
            (
                String::new(),
                Some((Level::OwnConfigSource, "C:\\site\\im.config".into(), 2))
            )
        );
        // None at all: WIF's defaults.
        let eff = resolve_alone(&file(
            "/C:/site/web.config",
            "<configuration><system.identityModel/></configuration>",
        ))
        .unwrap();
        assert_eq!(at(&eff), (String::new(), None));
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
    fn sections_in_other_files_are_read_from_them() {
        let f = file(
            "/C:/site/web.config",
            "<configuration>\n<system.web>\n<machineKey configSource=\"App_Config\\mk.config\"/></system.web></configuration>",
        );
        let mk = format!(
            "<!-- keys -->\n<machineKey validationKey=\"{K1}\" decryptionKey=\"{K2}\" validation=\"SHA1\" decryption=\"AES\" />"
        );
        let eff = resolve_with(&f, &[("/C:/site/App_Config/mk.config", &mk)]).unwrap();
        let key = &eff.machine_key.validation_key;
        assert_eq!(key.source.to_string(), "C:\\site\\App_Config\\mk.config");
        assert_eq!(key.line, Some(2));
        assert!(key.value().unwrap().same_key(&KeyText::new(K1)));
        assert_eq!(eff.machine_key.validation.shown(), "SHA1");

        // Missing, or refused as ASP.NET refuses it: a problem, never defaults.
        let err = resolve_alone(&f).unwrap_err();
        assert!(
            err.message
                .contains("<machineKey configSource=\"App_Config\\mk.config\"> at line 3")
                && err.message.contains("does not exist"),
            "{err}"
        );
        for (value, why) in [
            ("..\\keys.config", "leaves the folder"),
            ("App_Config/mk.config", "'/'"),
            ("C:\\keys\\mk.config", "relative"),
        ] {
            let f = file(
                "/C:/site/web.config",
                &format!(
                    "<configuration><system.web><machineKey configSource=\"{value}\"/></system.web></configuration>"
                ),
            );
            let err = resolve_with(&f, &[("/C:/keys.config", &mk)]).unwrap_err();
            assert!(
                err.message.contains(why) && err.message.contains("ASP.NET refuses"),
                "{err}"
            );
        }
        let both = file(
            "/C:/site/web.config",
            "<configuration><system.web><machineKey configSource=\"mk.config\" validation=\"SHA1\"/></system.web></configuration>",
        );
        let err = resolve_with(&both, &[("/C:/site/mk.config", &mk)]).unwrap_err();
        assert!(err.message.contains("no other attribute"), "{err}");
        let wrong_root = resolve_with(
            &file("/C:/site/web.config", "<configuration><system.web><machineKey configSource=\"mk.config\"/></system.web></configuration>"),
            &[("/C:/site/mk.config", "<configuration/>")],
        )
        .unwrap_err();
        assert!(
            wrong_root
                .message
                .contains("root element is <configuration>"),
            "{wrong_root}"
        );
    }

    #[test]
    fn enum_values_are_case_sensitive() {
        let f = file(
            "/C:/site/web.config",
            &format!(
                "<configuration>\n<system.web>\n<machineKey validationKey=\"{K1}\" decryptionKey=\"{K2}\" validation=\"sha1\" decryption=\" AES \" compatibilityMode=\"Framework45 \"/></system.web></configuration>"
            ),
        );
        let mk = resolve_alone(&f).unwrap().machine_key;
        let bad = mk.invalid_values();
        assert_eq!(
            bad.iter()
                .map(|b| (b.attribute, b.value.as_str()))
                .collect::<Vec<_>>(),
            [
                ("validation", "sha1"),
                ("compatibilityMode", "Framework45 ")
            ]
        );
        assert_eq!(bad[0].at, "C:\\site\\web.config line 3");
        assert_eq!(
            mk.validation_normalised(),
            None,
            "sha1 is no algorithm at all"
        );
        assert_eq!(
            mk.decryption_normalised().as_deref(),
            Some("AES"),
            "validation and decryption are trimmed"
        );
    }

    fn layers_of<'a>(files: &'a [(ConfigFile, Scope<'a>)]) -> Vec<Layer<'a>> {
        files
            .iter()
            .map(|(file, scope)| Layer {
                file,
                scope: *scope,
            })
            .collect()
    }

    #[test]
    fn a_parent_lock_refuses_the_child_and_keeps_its_value() {
        let root = file(
            "/C:/Windows/Microsoft.NET/Framework64/v4.0.30319/Config/web.config",
            &format!(
                "<configuration>\n<location path=\"Flowtime\" allowOverride=\"false\">\n<system.web><machineKey validationKey=\"{K1}\" decryptionKey=\"{K1}\"/></system.web></location></configuration>"
            ),
        );
        let site = file(
            "/C:/inetpub/Flowtime/web.config",
            &format!(
                "<configuration>\n<system.web>\n<machineKey validationKey=\"{K2}\"/></system.web></configuration>"
            ),
        );
        let files = [(root, Scope::Machine), (site, Scope::App("Flowtime"))];
        let eff = resolve(&layers_of(&files), "Flowtime", &section::NoSourceFiles).unwrap();
        assert!(
            eff.machine_key
                .validation_key
                .value()
                .unwrap()
                .same_key(&KeyText::new(K1))
        );
        assert_eq!(eff.locked.len(), 1);
        let v = &eff.locked[0];
        assert_eq!((v.what.as_str(), v.line), ("<machineKey>", 3));
        assert_eq!(
            v.lock.to_string(),
            "allowOverride=\"false\" on the <location> at line 2 of C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\Config\\web.config"
        );
        assert_eq!(eff.locks.len(), 1, "the lock binds the site's own level");

        // Attribute locks refuse only what they name.
        let root = file(
            "/C:/root/web.config",
            "<configuration><system.web><machineKey lockAttributes=\"validation, decryption\" validation=\"SHA1\"/></system.web></configuration>",
        );
        let ok = file(
            "/C:/site/web.config",
            &format!(
                "<configuration><system.web><machineKey validationKey=\"{K2}\"/></system.web></configuration>"
            ),
        );
        let files = [(root, Scope::Machine), (ok, Scope::App("S"))];
        let eff = resolve(&layers_of(&files), "S", &section::NoSourceFiles).unwrap();
        assert!(eff.locked.is_empty());
        assert!(
            eff.machine_key
                .validation_key
                .value()
                .unwrap()
                .same_key(&KeyText::new(K2))
        );
        let root = file(
            "/C:/root/web.config",
            "<configuration><system.web><machineKey lockAllAttributesExcept=\"validation\"/></system.web></configuration>",
        );
        let child = file(
            "/C:/site/web.config",
            "<configuration><system.web><machineKey validation=\"SHA1\" decryption=\"AES\"/></system.web></configuration>",
        );
        let files = [(root, Scope::Machine), (child, Scope::App("S"))];
        let eff = resolve(&layers_of(&files), "S", &section::NoSourceFiles).unwrap();
        assert_eq!(eff.locked[0].what, "the attribute decryption");
        assert_eq!(
            eff.machine_key.validation.source,
            Source::Default,
            "the refused element is not applied"
        );
        // A lock in the same file binds only the levels below it.
        let own = file(
            "/C:/site/web.config",
            "<configuration><location path=\".\" allowOverride=\"false\"><system.web><machineKey validation=\"SHA1\"/></system.web></location></configuration>",
        );
        let eff = resolve_alone(&own).unwrap();
        assert!(eff.locked.is_empty() && eff.locks.is_empty());
        assert_eq!(eff.machine_key.validation.shown(), "SHA1");
    }

    #[test]
    fn application_host_is_not_read_by_asp_net() {
        let apphost = file(
            "/C:/Windows/System32/inetsrv/config/applicationHost.config",
            &format!(
                "<configuration>\n<location path=\"S\">\n<system.web><machineKey validationKey=\"{K1}\"/></system.web>\n<system.identityModel/>\n<system.webServer><modules><add name=\"SessionAuthenticationModule\" type=\"System.IdentityModel.Services.SessionAuthenticationModule, System.IdentityModel.Services\"/></modules></system.webServer></location></configuration>"
            ),
        );
        let files = [(apphost, Scope::ApplicationHost)];
        let eff = resolve(&layers_of(&files), "S", &section::NoSourceFiles).unwrap();
        assert_eq!(eff.machine_key.validation_key.source, Source::Default);
        assert_eq!(
            eff.ignored
                .iter()
                .map(|i| (i.section, i.line))
                .collect::<Vec<_>>(),
            [("machineKey", 3), ("system.identityModel", 4)]
        );
        // IIS does load the modules it registers: the site uses WIF.
        assert_eq!(eff.handler.state, HandlerState::Dpapi);
        assert!(
            eff.handler
                .detail
                .unwrap()
                .contains("SessionAuthenticationModule module is registered")
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
