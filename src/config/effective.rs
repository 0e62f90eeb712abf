//! The effective configuration of one application: the files of its chain
//! merged attribute by attribute, later wins, each value with the file it
//! came from (README, "How values are found"). Sections
//! kept in other files (`configSource`) are read from there, locks set by a
//! parent refuse what a lower level sets, and applicationHost.config, which
//! ASP.NET never reads, only counts for IIS's module registrations.

use super::apphost::PipelineMode;
use super::locks::{self, Declaration, DefinitionLevel, Lock, LockKind, LockViolation, Locked};
use super::machine_key::{self, Clr, MachineKey, RefusedElement};
use super::problem::{ConfigProblem, DeclarationFault, Problem};
use super::record::{
    ChainLevel, ConfigFile, Layer, Scope, Setting, Source, Sourced, containers_by_depth,
    declared_groups, file_refused, line_of, location_sub_path, unique_sections,
};
use super::section::{self, Section, SourceFiles, is_encrypted, single_child};
use super::wif::elements;
use super::wif::{Handler, HandlerState, WifReading, identity_model_declared_in, judge_wif};
use super::xml::ElemId;
use crate::keys::KeyText;
use crate::paths::RemotePath;
use serde::Serialize;

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
    /// The settings IIS refuses in this integrated pool (HTTP 500.22 to
    /// 500.24), each where the chain first sets it.
    pub integrated_mode: Vec<IntegratedModeConfig>,
}

/// An ASP.NET setting that does not apply in the Integrated pipeline, in a
/// pool whose `<system.webServer><validation
/// validateIntegratedModeConfiguration>` is not `false`: IIS's
/// ConfigurationValidationModule answers every request with an error
/// (IIS configuration reference, "Validation <validation>").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegratedModeConfig {
    pub setting: IntegratedSetting,
    pub file: RemotePath,
    pub line: usize,
}

/// What IIS's integrated-mode validation refuses, and the error it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegratedSetting {
    /// `<system.web><httpModules>` adds a module: HTTP 500.22.
    HttpModules,
    /// `<system.web><httpHandlers>` adds a handler: HTTP 500.23.
    HttpHandlers,
    /// `<system.web><identity impersonate="true">`: HTTP 500.24.
    Impersonation,
}

impl IntegratedSetting {
    /// The HTTP status IIS answers (500.22, 500.23, 500.24).
    pub fn status(self) -> &'static str {
        match self {
            IntegratedSetting::HttpModules => "500.22",
            IntegratedSetting::HttpHandlers => "500.23",
            IntegratedSetting::Impersonation => "500.24",
        }
    }
}

/// Merges the layers for `target` (an application id, `Site/app`) of a
/// pool in the integrated pipeline; the files `configSource` names come
/// from `sources`.
pub fn resolve(
    layers: &[Layer<'_>],
    target: &str,
    sources: &dyn SourceFiles,
) -> Result<Effective, ConfigProblem> {
    resolve_in(layers, target, sources, PipelineMode::Integrated, Clr::V4)
}

/// [`resolve`] for an application whose pool runs `pipeline` (which decides
/// the module registration IIS loads) and loads `clr`.
pub fn resolve_in(
    layers: &[Layer<'_>],
    target: &str,
    sources: &dyn SourceFiles,
    pipeline: PipelineMode,
    clr: Clr,
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
        wif: WifReading {
            pipeline,
            ..WifReading::default()
        },
        declarations: Vec::new(),
        groups: Vec::new(),
        here: (DefinitionLevel::Site, false),
        app_level: false,
        integrated_found: Vec::new(),
        impersonate: None,
        validate_integrated: true,
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
        mut integrated_found,
        impersonate,
        validate_integrated,
        ..
    } = m;

    mk.run_on(clr);
    if let Some(tf) = &target_framework {
        mk.imply_compatibility_mode(tf);
    }
    let handler = judge_wif(&wif);
    mk.protect_api = handler.state == HandlerState::MachineKey;
    Ok(Effective {
        machine_key: mk,
        target_framework,
        handler,
        encrypted_sections,
        identity_model_declared: identity_model_declared_in(layers),
        ignored,
        locked,
        locks: own_locks.unwrap_or(locks),
        integrated_mode: {
            // Impersonation counts as the chain leaves it (a lower level may
            // turn it off); registrations as the first one adds them.
            integrated_found.extend(impersonate.filter(|(on, _)| *on).map(|(_, found)| found));
            if pipeline == PipelineMode::Integrated && validate_integrated {
                integrated_found
            } else {
                Vec::new()
            }
        },
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
    /// The declarations of the sections farmkey checks, from the file that
    /// declares them first (the declaration level).
    declarations: Vec<(&'static str, Declaration)>,
    /// The section groups the files read so far declare.
    groups: Vec<String>,
    /// The level the container being read defines sections for, and
    /// whether it is a `<location>` with a path.
    here: (DefinitionLevel, bool),
    /// Whether the layer being read is a web.config of the site (IIS
    /// checks those; the framework's own files register modules too).
    app_level: bool,
    /// The first web.config `<httpModules>` that adds a module and the
    /// first `<httpHandlers>` that adds a handler.
    integrated_found: Vec<IntegratedModeConfig>,
    /// The last `<identity impersonate>` of the site's web.config files:
    /// whether it is on, and where.
    impersonate: Option<(bool, IntegratedModeConfig)>,
    /// `system.webServer/validation@validateIntegratedModeConfiguration`
    /// as the chain leaves it (true unless set).
    validate_integrated: bool,
}

/// The sections whose declarations restrict where they are set, by config key.
const DECLARED: [(&str, &str); 2] = [
    ("machineKey", "system.web/machineKey"),
    ("system.identityModel", "system.identityModel"),
];

impl<'a> Merge<'a, '_> {
    fn layer(&mut self, layer: &Layer<'a>) -> Result<(), ConfigProblem> {
        let file = layer.file;
        let own = matches!(layer.scope, Scope::App(id) if id.eq_ignore_ascii_case(self.target));
        let iis_only = matches!(layer.scope, Scope::ApplicationHost);
        self.app_level = matches!(layer.scope, Scope::App(_));
        // Locks bind the levels below this file (and its deeper
        // <location> blocks), not its own level.
        let mut new_locks = Vec::new();
        if !iis_only {
            for (name, key) in DECLARED {
                let Some(d) = locks::declaration(file, key) else {
                    continue;
                };
                let refused = |fault| ConfigProblem {
                    file: file.path.clone(),
                    problem: Problem::Declaration {
                        section: key,
                        line: d.line,
                        fault,
                    },
                };
                if let Some(fault) = d.value_fault() {
                    return Err(refused(fault));
                }
                if let Some((_, first)) = self.declarations.iter().find(|(n, _)| *n == name) {
                    if !first.equivalent(&d) {
                        return Err(refused(DeclarationFault::Redeclared {
                            first: first.file.clone(),
                            first_line: first.line,
                        }));
                    }
                    continue;
                }
                {
                    if d.override_mode_default_deny {
                        new_locks.push(Lock {
                            section: name,
                            file: d.file.clone(),
                            line: d.line,
                            kind: LockKind::Default,
                        });
                    }
                    self.declarations.push((name, d));
                }
            }
        }
        if own && self.own_locks.is_none() {
            let mut own_locks = self.locks.clone();
            // What the declaration keeps out of an application's web.config.
            own_locks.extend(
                self.declarations
                    .iter()
                    .filter(|(_, d)| !d.allow_definition.allows(DefinitionLevel::Site))
                    .map(|(name, d)| Lock {
                        section: name,
                        file: d.file.clone(),
                        line: d.line,
                        kind: LockKind::Definition(d.allow_definition),
                    }),
            );
            self.own_locks = Some(own_locks);
        }
        file_refused(file, layer.scope)?;
        let containers = containers_by_depth(&file.doc, layer.scope, self.target);
        if !iis_only {
            let ids: Vec<ElemId> = containers.iter().map(|&(_, id)| id).collect();
            self.groups.extend(declared_groups(&file.doc));
            unique_sections(file, &ids, &self.groups)?;
            for loc in file.doc.children_named(file.doc.root(), "location") {
                if !ids.contains(&loc) {
                    self.wif.location_elsewhere(file, loc);
                }
            }
        }
        let is_machine_config = file
            .path
            .file_name()
            .is_some_and(|n| n.eq_ignore_ascii_case("machine.config"));
        let mut file_locks: Vec<(usize, Lock)> = Vec::new();
        for (depth, container) in containers {
            let doc = &file.doc;
            let with_path = doc.name(container) == "location"
                && !matches!(
                    location_sub_path(doc.attr(container, "path").as_deref()),
                    Ok(None)
                );
            self.here = match layer.scope {
                _ if with_path => (DefinitionLevel::Site, true),
                Scope::Machine if is_machine_config => (DefinitionLevel::Machine, false),
                Scope::Machine => (DefinitionLevel::RootWebConfig, false),
                _ => (DefinitionLevel::Site, false),
            };
            // Locks a shallower container of this file sets bind this one.
            let before = self.locks.len();
            self.locks.extend(
                file_locks
                    .iter()
                    .filter(|(d, _)| *d < depth)
                    .map(|(_, l)| l.clone()),
            );
            let mut set_here = Vec::new();
            let read = if iis_only {
                self.ignored_sections(file, container)
            } else {
                self.system_web(file, container, &mut set_here)
                    .and_then(|()| self.identity_model(file, container, own, &mut set_here))
            };
            self.locks.truncate(before);
            read?;
            // An explicit overrideMode="Allow" for the section wins over its
            // declaration's overrideModeDefault="Deny" for the levels below
            // (not for its own: a level the default locks cannot unlock itself).
            if locks::location_allows(doc, container) {
                for name in self.sections_held(file, container) {
                    let default = |l: &Lock| l.section == name && l.kind == LockKind::Default;
                    self.locks.retain(|l| !default(l));
                    new_locks.retain(|l| !default(l));
                }
            }
            file_locks.extend(set_here.into_iter().map(|l| (depth, l)));
            if let Some(ws) = single_child(file, container, "system.webServer")?
                && let Some(v) = file.doc.child_named(ws, "validation")
                && let Some(on) = file.doc.attr(v, "validateIntegratedModeConfiguration")
            {
                self.validate_integrated = !on.trim().eq_ignore_ascii_case("false");
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
        self.locks.extend(file_locks.into_iter().map(|(_, l)| l));
        Ok(())
    }

    /// The sections of [`DECLARED`] a container holds.
    fn sections_held(&self, file: &ConfigFile, container: ElemId) -> Vec<&'static str> {
        let doc = &file.doc;
        DECLARED
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| match *name {
                "machineKey" => doc
                    .children_named(container, "system.web")
                    .any(|w| doc.child_named(w, "machineKey").is_some()),
                other => doc.child_named(container, other).is_some(),
            })
            .collect()
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
        for name in elements::SECTIONS {
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
        // Where the declaration does not let the section be set at all.
        let (level, with_path) = self.here;
        let by_declaration = self
            .declarations
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, d)| {
                let kind = if !d.allow_definition.allows(level) {
                    LockKind::Definition(d.allow_definition)
                } else if !d.allow_location && with_path {
                    LockKind::NoLocation
                } else {
                    return None;
                };
                Some(Lock {
                    section: name,
                    file: d.file.clone(),
                    line: d.line,
                    kind,
                })
            })
            .map(|lock| (lock, Locked::Section(name)));
        let refusal = by_declaration.or_else(|| {
            locks::first_refusal(&self.locks, name, s).map(|(l, what)| (l.clone(), what))
        });
        match refusal {
            Some((lock, what)) => {
                self.locked.push(LockViolation {
                    section: name,
                    file: s.file.path.clone(),
                    line: s.line(),
                    what,
                    lock,
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
        // A group may appear more than once at a level; each section in
        // only one of them (unique_sections checked that).
        let groups: Vec<ElemId> = file.doc.children_named(container, "system.web").collect();
        for web in groups {
            self.system_web_group(file, container, web, new_locks)?;
        }
        Ok(())
    }

    fn system_web_group(
        &mut self,
        file: &'a ConfigFile,
        container: ElemId,
        web: ElemId,
        new_locks: &mut Vec<Lock>,
    ) -> Result<(), ConfigProblem> {
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
            if s.file.doc.children_named(s.elem, "add").next().is_some() {
                self.integrated(IntegratedSetting::HttpModules, &s.file.path, s.line());
            }
            self.wif
                .http_modules
                .apply(&s.file.doc, s.elem, &s.file.path.to_string());
        }
        if let Some(h) = single_child(file, web, "httpHandlers")?
            && file.doc.children_named(h, "add").next().is_some()
        {
            self.integrated(
                IntegratedSetting::HttpHandlers,
                &file.path,
                line_of(file, h),
            );
        }
        if self.app_level
            && let Some(id) = single_child(file, web, "identity")?
            && let Some(on) = file.doc.attr(id, "impersonate")
        {
            let found = IntegratedModeConfig {
                setting: IntegratedSetting::Impersonation,
                file: file.path.clone(),
                line: line_of(file, id),
            };
            self.impersonate = Some((on.trim().eq_ignore_ascii_case("true"), found));
        }
        Ok(())
    }

    /// Notes the first registration of `setting` in a web.config of the site
    /// (IIS checks those; the framework's own files register modules too).
    fn integrated(&mut self, setting: IntegratedSetting, file: &RemotePath, line: usize) {
        if self.app_level && !self.integrated_found.iter().any(|f| f.setting == setting) {
            self.integrated_found.push(IntegratedModeConfig {
                setting,
                file: file.clone(),
                line,
            });
        }
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
                &mut mk.data_protector_type,
                &mut mk.application_name,
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
        if !is_encrypted(doc, m) {
            mk.refused.extend(
                machine_key::element_faults(doc, m)
                    .into_iter()
                    .map(|fault| RefusedElement {
                        file: s.file.path.clone(),
                        line: s.line(),
                        fault,
                    }),
            );
        }
        // A refused element is compared as meant (`ValidationKey` as
        // validationKey); the finding says ASP.NET refuses it.
        let set_text = |slot: &mut Sourced<String>, name: &str, trim: bool| {
            if let Some(v) = machine_key::attr_as_meant(doc, m, name) {
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
        set_text(&mut mk.data_protector_type, "dataProtectorType", true);
        set_text(&mut mk.application_name, "applicationName", true);
        for (slot, name) in [
            (&mut mk.validation_key, "validationKey"),
            (&mut mk.decryption_key, "decryptionKey"),
        ] {
            if let Some(v) = machine_key::attr_as_meant(doc, m, name) {
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
            (false, _) => ChainLevel::Parent,
            (true, true) => ChainLevel::Own,
            (true, false) => ChainLevel::OwnConfigSource,
        };
        self.wif.section(level, s.file, s.elem);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::FileBytes;
    use crate::config::locks::Locked;
    use crate::config::machine_key::{Decryption, EnumRefusal, InvalidValue, ModeOrigin};
    use crate::config::record::Implication;

    fn implied_by(target_framework: &str) -> ModeOrigin {
        ModeOrigin::Implied(Implication::TargetFramework {
            shown: target_framework.into(),
            source: Box::new(Source::File(
                RemotePath::parse("/C:/site/web.config").unwrap(),
            )),
        })
    }
    use crate::config::problem::{
        ConfigSourceFault, LocationPathFault, PathsFrom, Problem, SourcePathFault,
    };
    use crate::config::wif::elements::{
        MACHINE_KEY_HANDLER_TYPE, SESSION_HANDLER_TYPE, Unresolvable,
    };
    use crate::config::wif::{
        HandlerReason, HandlerState, SectionRefusal, UnusedSwap, UsesWif, WifFault,
    };
    use crate::config::xml::Document;

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
            <remove type="System.IdentityModel.Tokens.SessionSecurityTokenHandler,System.IdentityModel,Version=4.0.0.0,Culture=neutral,PublicKeyToken=b77a5c561934e089" />
            <add type=" System.IdentityModel.Services.Tokens.MachineKeySessionSecurityTokenHandler , system.identitymodel.services, Version = 4.0.0.0 , Culture=Neutral, PublicKeyToken=B77A5C561934E089 " />
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

    /// The handler and its detail for a configuration whose unnamed
    /// `<identityConfiguration>` holds `handlers`.
    fn with_handlers(handlers: &str) -> Handler {
        let xml = format!(
            "<configuration>\n<system.identityModel>\n<identityConfiguration>\n{handlers}\n</identityConfiguration>\n</system.identityModel>\n</configuration>"
        );
        resolve_alone(&file("/C:/site/web.config", &xml))
            .unwrap()
            .handler
    }

    #[test]
    fn a_handler_type_that_dotnet_cannot_load_is_invalid() {
        let swap = |remove: &str, add: &str| {
            with_handlers(&format!(
                "<securityTokenHandlers>\n<remove type=\"{remove}\" />\n<add type=\"{add}\" />\n</securityTokenHandlers>"
            ))
        };
        let refused = |h: Handler| {
            assert_eq!(h.state, HandlerState::Invalid);
            let Some(WifFault::Refused { line, why, .. }) = h.fault().cloned() else {
                panic!("{:?}", h.reason)
            };
            (line, why)
        };
        let full_add = MACHINE_KEY_HANDLER_TYPE;
        let full_remove = SESSION_HANDLER_TYPE;
        let lower =
            full_remove.replace("System.IdentityModel.Tokens", "system.identitymodel.tokens");
        assert_eq!(
            refused(swap(&lower, full_add)),
            (
                5,
                SectionRefusal::UnloadableType {
                    element: "remove".into(),
                    type_ref: lower.clone(),
                    why: Unresolvable::Case {
                        written: "system.identitymodel.tokens.SessionSecurityTokenHandler".into(),
                        full: "System.IdentityModel.Tokens.SessionSecurityTokenHandler",
                    },
                    qualified: SESSION_HANDLER_TYPE,
                }
            )
        );
        let why = |remove: &str, add: &str| match refused(swap(remove, add)).1 {
            SectionRefusal::UnloadableType { why, .. } => why,
            other => panic!("{other:?}"),
        };
        let session = "System.IdentityModel.Tokens.SessionSecurityTokenHandler";
        let machine = "System.IdentityModel.Services.Tokens.MachineKeySessionSecurityTokenHandler";
        let services = "System.IdentityModel.Services";
        assert_eq!(
            why(
                "SessionSecurityTokenHandler, System.IdentityModel",
                full_add
            ),
            Unresolvable::NoSuchType {
                written: "SessionSecurityTokenHandler".into(),
                full: session
            }
        );
        assert_eq!(
            why(full_remove, machine),
            Unresolvable::NoAssembly {
                full: machine,
                home: services
            }
        );
        assert_eq!(
            why(
                full_remove,
                &full_add.replace(".Services, Version", ", Version")
            ),
            Unresolvable::OtherAssembly {
                full: machine,
                home: services,
                named: "System.IdentityModel".into()
            }
        );
        assert_eq!(
            why(full_remove, &format!("{machine}, {services}")),
            Unresolvable::PartialName {
                named: services.into(),
                part: "Version",
                home: services
            }
        );
        assert_eq!(
            why(full_remove, &full_add.replace("4.0.0.0", "4.5.0.0")),
            Unresolvable::OtherPart {
                home: services,
                part: "Version",
                value: "4.5.0.0".into(),
                want: "4.0.0.0"
            }
        );
        assert_eq!(
            why(
                "System.IdentityModel.Services.Tokens.SessionSecurityTokenHandler, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089",
                full_add
            ),
            Unresolvable::NoSuchType {
                written: "System.IdentityModel.Services.Tokens.SessionSecurityTokenHandler".into(),
                full: session
            }
        );
        // Read in a named collection too: the whole section is read.
        let named = with_handlers(&format!(
            "<securityTokenHandlers name=\"ActAs\"><add type=\"MachineKeySessionSecurityTokenHandler\"/></securityTokenHandlers><securityTokenHandlers><remove type=\"{full_remove}\"/><add type=\"{full_add}\"/></securityTokenHandlers>"
        ));
        assert_eq!(named.state, HandlerState::Invalid);
        // A custom handler of the same class name is not checked, and
        // farmkey cannot tell how it protects session tokens.
        let custom = swap(
            full_remove,
            "Contoso.Security.MachineKeySessionSecurityTokenHandler, Contoso.Security",
        );
        assert_eq!((custom.state, custom.fault()), (HandlerState::Custom, None));
    }

    #[test]
    fn two_collections_of_one_name_are_id7029() {
        let swap = format!(
            "<securityTokenHandlers>\n<remove type=\"{SESSION_HANDLER_TYPE}\" />\n<add type=\"{MACHINE_KEY_HANDLER_TYPE}\" />\n</securityTokenHandlers>"
        );
        let h = with_handlers(&format!(
            "{swap}\n<securityTokenHandlers>\n</securityTokenHandlers>"
        ));
        let repeated = |h: Handler| match h.fault() {
            Some(WifFault::Refused {
                line,
                why: SectionRefusal::RepeatedCollection { name },
                ..
            }) => (*line, name.clone()),
            other => panic!("{other:?}"),
        };
        assert_eq!(h.state, HandlerState::Invalid);
        assert_eq!(repeated(h), (8, String::new()));
        let named = with_handlers(&format!(
            "{swap}\n<securityTokenHandlers name=\"ActAs\"/>\n<securityTokenHandlers name=\"ActAs\"/>"
        ));
        assert_eq!(repeated(named), (9, "ActAs".to_string()));
        let distinct = with_handlers(&format!("{swap}\n<securityTokenHandlers name=\"ActAs\"/>"));
        assert_eq!(distinct.state, HandlerState::MachineKey);
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
        // Declared, nothing else: nothing reads the section.
        let h = eff(&format!("<configuration>{declared}</configuration>"));
        assert_eq!((h.state, h.reason), (HandlerState::NotConfigured, None));
        // The trap: the swap in a named configuration nothing names.
        let trap = format!(
            "<configuration>{declared}\n<system.identityModel>\n<identityConfiguration name=\"swap\">{swap}</identityConfiguration></system.identityModel></configuration>"
        );
        let h = eff(&trap);
        assert_eq!(h.state, HandlerState::Dpapi);
        let Some(HandlerReason::Defaults {
            unused_swap: Some(unused),
            ..
        }) = h.reason
        else {
            panic!("{:?}", h.reason)
        };
        assert!(
            matches!(&unused, UnusedSwap::NotNamed { name, line: 3, .. } if name == "swap"),
            "{unused:?}"
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
            matches!(h.fault(), Some(WifFault::UnknownConfiguration { name, line: 3, .. }) if name == "Swap")
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
        // A module counts where the pool's pipeline loads modules.
        let module = "<configuration><system.web><httpModules><add name=\"WSFAM\" type=\"System.IdentityModel.Services.WSFederationAuthenticationModule\"/></httpModules></system.web></configuration>";
        assert_eq!(eff(module).state, HandlerState::NotConfigured);
        let f = file("/C:/site/web.config", module);
        let layers = [Layer {
            file: &f,
            scope: Scope::App("S"),
        }];
        let classic = resolve_in(
            &layers,
            "S",
            &section::NoSourceFiles,
            PipelineMode::Classic,
            Clr::V4,
        );
        assert_eq!(classic.unwrap().handler.state, HandlerState::Dpapi);
    }

    #[test]
    fn http_modules_in_an_integrated_pool_answer_500_22() {
        let module = "<configuration>\n<system.web><httpModules><add name=\"M\" type=\"A.M\"/></httpModules></system.web></configuration>";
        let run = |root: &str, site: &str, pipeline| {
            let r = file(MACHINE, root);
            let f = file("/C:/site/web.config", site);
            let layers = [
                Layer {
                    file: &r,
                    scope: Scope::Machine,
                },
                Layer {
                    file: &f,
                    scope: Scope::App("S"),
                },
            ];
            resolve_in(&layers, "S", &section::NoSourceFiles, pipeline, Clr::V4)
                .unwrap()
                .integrated_mode
        };
        let empty = "<configuration/>";
        let found = run(empty, module, PipelineMode::Integrated);
        assert_eq!(
            found
                .iter()
                .map(|f| (f.setting, f.file.to_string(), f.line))
                .collect::<Vec<_>>(),
            [(
                IntegratedSetting::HttpModules,
                "C:\\site\\web.config".to_string(),
                2
            )]
        );
        // Classic mode reads httpModules: no 500.22.
        assert_eq!(run(empty, module, PipelineMode::Classic), []);
        // The validation switched off, here or above (applicationHost.config
        // or the framework's files).
        let off = "<configuration><system.webServer><validation validateIntegratedModeConfiguration=\"false\"/></system.webServer></configuration>";
        assert_eq!(run(off, module, PipelineMode::Integrated), []);
        let both = module.replace(
            "</configuration>",
            "<system.webServer><validation validateIntegratedModeConfiguration=\"False\"/></system.webServer></configuration>",
        );
        assert_eq!(run(empty, &both, PipelineMode::Integrated), []);
        // The framework's own registrations are not the site's.
        assert_eq!(run(module, empty, PipelineMode::Integrated), []);
        // A section that only removes adds nothing.
        let remove = "<configuration><system.web><httpModules><remove name=\"M\"/></httpModules></system.web></configuration>";
        assert_eq!(run(empty, remove, PipelineMode::Integrated), []);
    }

    #[test]
    fn http_handlers_and_impersonation_in_an_integrated_pool_answer_500_23_and_500_24() {
        let run = |site: &str, pipeline| {
            let f = file("/C:/site/web.config", site);
            let layers = [Layer {
                file: &f,
                scope: Scope::App("S"),
            }];
            resolve_in(&layers, "S", &section::NoSourceFiles, pipeline, Clr::V4)
                .unwrap()
                .integrated_mode
                .iter()
                .map(|f| (f.setting.status(), f.line))
                .collect::<Vec<_>>()
        };
        let both = "<configuration>\n<system.web>\n<httpHandlers><add verb=\"*\" path=\"x.axd\" type=\"A.H\"/></httpHandlers>\n<identity impersonate=\"true\"/>\n</system.web></configuration>";
        assert_eq!(
            run(both, PipelineMode::Integrated),
            [("500.23", 3), ("500.24", 4)]
        );
        assert_eq!(run(both, PipelineMode::Classic), []);
        // Impersonation as the chain leaves it: turned off below, no error.
        let off = "<configuration><system.web><identity impersonate=\"false\"/></system.web></configuration>";
        assert_eq!(run(off, PipelineMode::Integrated), []);
        let empty_handlers = "<configuration><system.web><httpHandlers><clear/></httpHandlers></system.web></configuration>";
        assert_eq!(run(empty_handlers, PipelineMode::Integrated), []);
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
                Some((ChainLevel::Own, "C:\\site\\web.config".into(), 3))
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
                Some((ChainLevel::Parent, "C:\\root\\web.config".into(), 4))
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
                Some((ChainLevel::OwnConfigSource, "C:\\site\\im.config".into(), 2))
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
        let implied = &eff.machine_key.compatibility_mode.source;
        assert_eq!(
            implied,
            &Source::Implied(Implication::TargetFramework {
                shown: "4.7.2".into(),
                source: Box::new(Source::File(
                    RemotePath::parse("/C:/site/web.config").unwrap()
                )),
            })
        );
        assert_eq!(
            implied.to_string(),
            "(implied by <httpRuntime targetFramework=\"4.7.2\"> in C:\\site\\web.config)"
        );
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
        let web = RemotePath::parse("C:\\site\\web.config").unwrap();
        let refused = |value: &str, fault| ConfigProblem {
            file: web.clone(),
            problem: Problem::ConfigSource {
                section: "machineKey".into(),
                value: value.into(),
                line: 3,
                fault,
            },
        };
        assert_eq!(
            resolve_alone(&f).unwrap_err(),
            refused(
                "App_Config\\mk.config",
                ConfigSourceFault::Missing(
                    RemotePath::parse("C:\\site\\App_Config\\mk.config").unwrap()
                )
            )
        );
        for (value, why) in [
            (
                "..\\keys.config",
                SourcePathFault::LeavesFolder {
                    dir: RemotePath::parse("C:\\site").unwrap(),
                },
            ),
            ("App_Config/mk.config", SourcePathFault::Slash),
            ("C:\\keys\\mk.config", SourcePathFault::NotRelative),
        ] {
            let f = file(
                "/C:/site/web.config",
                &format!(
                    "<configuration>\n<system.web>\n<machineKey configSource=\"{value}\"/></system.web></configuration>"
                ),
            );
            assert_eq!(
                resolve_with(&f, &[("/C:/keys.config", &mk)]).unwrap_err(),
                refused(value, ConfigSourceFault::Path(why))
            );
        }
        let both = file(
            "/C:/site/web.config",
            "<configuration>\n<system.web>\n<machineKey configSource=\"mk.config\" validation=\"SHA1\"/></system.web></configuration>",
        );
        assert_eq!(
            resolve_with(&both, &[("/C:/site/mk.config", &mk)]).unwrap_err(),
            refused("mk.config", ConfigSourceFault::OtherAttribute)
        );
        let wrong_root = resolve_with(
            &file("/C:/site/web.config", "<configuration>\n<system.web>\n<machineKey configSource=\"mk.config\"/></system.web></configuration>"),
            &[("/C:/site/mk.config", "<configuration/>")],
        )
        .unwrap_err();
        assert_eq!(
            wrong_root,
            ConfigProblem {
                file: RemotePath::parse("C:\\site\\mk.config").unwrap(),
                problem: Problem::WrongRoot {
                    named_in: web.clone(),
                    named_at: 3,
                    root: "configuration".into(),
                    expected: "machineKey".into()
                }
            }
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
        assert_eq!(mk.validation_alg(), None, "sha1 is no algorithm at all");
        assert_eq!(
            mk.decryption_alg(),
            Some(Decryption::Aes),
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
        assert_eq!((&v.what, v.line), (&Locked::Section("machineKey"), 3));
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
        assert_eq!(eff.locked[0].what, Locked::Attribute("decryption".into()));
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
    fn lock_lists_split_on_commas_colons_and_semicolons() {
        let locked = |root_mk: &str, site_mk: &str| {
            let files = [
                (
                    file(
                        "/C:/root/web.config",
                        &format!(
                            "<configuration>\n<system.web>\n{root_mk}</system.web></configuration>"
                        ),
                    ),
                    Scope::Machine,
                ),
                (
                    file(
                        "/C:/site/web.config",
                        &format!(
                            "<configuration><system.web>{site_mk}</system.web></configuration>"
                        ),
                    ),
                    Scope::App("S"),
                ),
            ];
            let eff = resolve(&layers_of(&files), "S", &section::NoSourceFiles).unwrap();
            eff.locked
                .iter()
                .map(|v| (v.what.clone(), v.lock.to_string()))
                .collect::<Vec<_>>()
        };
        let keys = format!("<machineKey decryptionKey=\"{K2}\"/>");
        assert_eq!(
            locked(
                r#"<machineKey lockAttributes="validationKey;decryptionKey"/>"#,
                &keys
            ),
            [(
                Locked::Attribute("decryptionKey".into()),
                "lockAttributes=\"validationKey,decryptionKey\" at line 3 of C:\\root\\web.config"
                    .to_string()
            )]
        );
        assert_eq!(
            locked(
                r#"<machineKey lockAttributes=" validation : decryptionKey "/>"#,
                &keys
            )
            .len(),
            1
        );
        assert_eq!(
            locked(
                r#"<machineKey lockAllAttributesExcept="validationKey;decryptionKey"/>"#,
                &keys
            ),
            []
        );
        assert_eq!(
            locked(
                r#"<machineKey lockAllAttributesExcept="validation:validationKey"/>"#,
                &keys
            )[0]
            .0,
            Locked::Attribute("decryptionKey".into())
        );
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
        let Some(HandlerReason::Defaults {
            uses: UsesWif::Module { name, .. },
            ..
        }) = eff.handler.reason
        else {
            panic!("{:?}", eff.handler.reason)
        };
        assert_eq!(name, "SessionAuthenticationModule");
    }

    #[test]
    fn duplicate_sections_are_a_problem() {
        let f = file(
            "/C:/site/web.config",
            "<configuration><system.web>\n<machineKey/>\n<machineKey/></system.web></configuration>",
        );
        assert_eq!(
            resolve_alone(&f).unwrap_err().problem,
            Problem::TwiceAtFileLevel {
                section: "machineKey".into(),
                lines: [2, 3]
            }
        );
        // A group may repeat (ScanSectionsRecursive checks sections only);
        // its sections count together.
        let groups = file(
            "/C:/site/web.config",
            "<configuration>\n<system.web><httpRuntime targetFramework=\"4.8\"/></system.web>\n<system.web><machineKey validation=\"SHA1\"/></system.web></configuration>",
        );
        let eff = resolve_alone(&groups).unwrap();
        assert_eq!(eff.machine_key.validation.value().unwrap(), "SHA1");
        assert!(eff.target_framework.is_some());
        let twice = file(
            "/C:/site/web.config",
            "<configuration>\n<appSettings/>\n<system.web><machineKey/></system.web>\n<system.web><machineKey/></system.web>\n<appSettings/></configuration>",
        );
        assert_eq!(
            resolve_alone(&twice).unwrap_err().problem,
            Problem::TwiceAtFileLevel {
                section: "machineKey".into(),
                lines: [3, 4]
            },
            "the first repeat in document order, across groups"
        );
        let unread = file(
            "/C:/site/web.config",
            "<configuration>\n<appSettings/>\n<appSettings/></configuration>",
        );
        assert_eq!(
            resolve_alone(&unread).unwrap_err().problem,
            Problem::TwiceAtFileLevel {
                section: "appSettings".into(),
                lines: [2, 3]
            },
            "a section farmkey does not read is refused too"
        );
    }

    #[test]
    fn framework45_refuses_md5_3des_and_aes_validation() {
        let refused = |body: &str| {
            let f = file(
                "/C:/site/web.config",
                &format!("<configuration>\n<system.web>\n{body}</system.web></configuration>"),
            );
            resolve_alone(&f).unwrap().machine_key.invalid_values()
        };
        assert_eq!(
            refused(r#"<machineKey validation="MD5" compatibilityMode="Framework45"/>"#),
            [InvalidValue {
                attribute: "validation",
                value: "MD5".into(),
                at: "C:\\site\\web.config line 3".into(),
                refusal: EnumRefusal::Framework45 {
                    mode: ModeOrigin::Set {
                        at: "C:\\site\\web.config line 3".into()
                    }
                },
            }]
        );
        assert_eq!(
            refused("<httpRuntime targetFramework=\"4.5\"/>\n<machineKey validation=\" 3DES \"/>"),
            [InvalidValue {
                attribute: "validation",
                value: "3DES".into(),
                at: "C:\\site\\web.config line 4".into(),
                refusal: EnumRefusal::Framework45 {
                    mode: implied_by("4.5")
                },
            }],
            "validation is trimmed; targetFramework 4.5 and up implies Framework45"
        );
        assert_eq!(
            refused(r#"<httpRuntime targetFramework="4.8"/><machineKey validation="AES"/>"#)[0]
                .refusal,
            EnumRefusal::Framework45 {
                mode: implied_by("4.8")
            }
        );
        assert_eq!(
            implied_by("4.8").to_string(),
            "implied by <httpRuntime targetFramework=\"4.8\"> in C:\\site\\web.config"
        );
        assert_eq!(
            ModeOrigin::Set {
                at: "C:\\site\\web.config line 3".into()
            }
            .to_string(),
            "set in C:\\site\\web.config line 3"
        );
        for fine in [
            r#"<machineKey validation="AES"/>"#,
            r#"<machineKey validation="MD5" compatibilityMode="Framework20SP2"/>"#,
            r#"<httpRuntime targetFramework="4.0"/><machineKey validation="3DES"/>"#,
            r#"<httpRuntime targetFramework="4.8"/><machineKey validation="MD5" compatibilityMode="Framework20SP1"/>"#,
            r#"<machineKey validation="SHA1" compatibilityMode="Framework45"/>"#,
            r#"<machineKey validation="HMACSHA512" compatibilityMode="Framework45"/>"#,
            // A keyed hash by name; `alg:MD5` (no key) is refused.
            r#"<machineKey validation="alg:HMACMD5" compatibilityMode="Framework45"/>"#,
            r#"<httpRuntime targetFramework="4.8"/>"#,
        ] {
            assert_eq!(refused(fine), [], "{fine}");
        }
        // A misspelled mode is refused itself, not read as Framework45.
        assert_eq!(
            refused(r#"<machineKey validation="MD5" compatibilityMode="framework45"/>"#)
                .iter()
                .map(|v| (v.attribute, v.refusal.clone()))
                .collect::<Vec<_>>(),
            [("compatibilityMode", EnumRefusal::Spelling)]
        );
    }

    const MACHINE: &str = "/C:/Windows/Microsoft.NET/Framework64/v4.0.30319/Config/machine.config";

    /// The site's application `S` and its child `S/api`, read through a
    /// machine-level file and the site's web.config.
    fn resolve_both(machine: &str, site: &str) -> [Result<Effective, ConfigProblem>; 2] {
        let files = [
            (file(MACHINE, machine), Scope::Machine),
            (file("/C:/site/web.config", site), Scope::App("S")),
        ];
        let layers = layers_of(&files);
        ["S", "S/api"].map(|target| resolve(&layers, target, &section::NoSourceFiles))
    }

    fn problems(results: [Result<Effective, ConfigProblem>; 2]) -> [Option<ConfigProblem>; 2] {
        results.map(|r| r.err())
    }

    fn at(file: &str, problem: Problem) -> Option<ConfigProblem> {
        Some(ConfigProblem {
            file: RemotePath::parse(file).unwrap(),
            problem,
        })
    }

    #[test]
    fn a_refused_location_fails_every_application_that_reads_the_file() {
        let empty = "<configuration/>";
        let bad = at(
            MACHINE,
            Problem::LocationPath {
                line: 2,
                path: "Other/".into(),
                fault: LocationPathFault::LastCharacter,
                paths_from: PathsFrom::Machine,
            },
        );
        // Whatever site it names.
        assert_eq!(
            problems(resolve_both(
                "<configuration>\n<location path=\"Other/\"/></configuration>",
                empty
            )),
            [bad.clone(), bad]
        );
        let dot = at(
            MACHINE,
            Problem::InheritAtMachineLevel {
                line: 2,
                path: Some(".".into()),
            },
        );
        assert_eq!(
            problems(resolve_both(
                "<configuration>\n<location path=\".\" inheritInChildApplications=\"false\"/></configuration>",
                empty
            )),
            [dot.clone(), dot]
        );
        let none =
            "<configuration>\n<location inheritInChildApplications=\"false\"/></configuration>";
        assert_eq!(
            problems(resolve_both(none, empty))[0],
            at(
                MACHINE,
                Problem::InheritAtMachineLevel {
                    line: 2,
                    path: None
                }
            )
        );
        // Allowed: naming a site, any other spelling of the value (which
        // farmkey does not judge), and the same <location> in a web.config.
        for ok in [
            "<location path=\"S\" inheritInChildApplications=\"false\"/>",
            "<location path=\".\" inheritInChildApplications=\"true\"/>",
            "<location path=\"\"/>",
        ] {
            let machine = format!("<configuration>{ok}</configuration>");
            assert_eq!(
                problems(resolve_both(&machine, empty)),
                [None, None],
                "{ok}"
            );
        }
        assert_eq!(
            problems(resolve_both(
                empty,
                "<configuration><location path=\".\" inheritInChildApplications=\"false\"/></configuration>"
            )),
            [None, None]
        );
        // In a web.config, the applications that read it fail.
        let site = at(
            "/C:/site/web.config",
            Problem::LocationPath {
                line: 2,
                path: "/api".into(),
                fault: LocationPathFault::FirstCharacter,
                paths_from: PathsFrom::App,
            },
        );
        assert_eq!(
            problems(resolve_both(
                empty,
                "<configuration>\n<location path=\"/api\"/></configuration>",
            )),
            [site.clone(), site]
        );
    }

    #[test]
    fn a_section_is_set_once_per_level() {
        let mk =
            |key: &str| format!("<system.web><machineKey validationKey=\"{key}\"/></system.web>");
        let site = |body: String| format!("<configuration>\n{body}</configuration>");
        let web = "/C:/site/web.config";
        let file_level = |section: &str, lines| {
            at(
                web,
                Problem::TwiceAtFileLevel {
                    section: section.into(),
                    lines,
                },
            )
        };
        for (why, body) in [
            (
                "the file's level and <location path=\".\">",
                format!("{}\n<location path=\".\">{}</location>", mk(K1), mk(K2)),
            ),
            (
                "\".\" and \"\" are one level, whatever inheritInChildApplications says",
                format!(
                    "<location path=\".\">{}</location>\n<location path=\"\" inheritInChildApplications=\"false\">{}</location>",
                    mk(K1),
                    mk(K2)
                ),
            ),
            (
                "sections count, not the groups holding them",
                format!("{}\n{}", mk(K1), mk(K2)),
            ),
        ] {
            assert_eq!(
                problems(resolve_both("<configuration/>", &site(body))),
                [
                    file_level("machineKey", [2, 3]),
                    file_level("machineKey", [2, 3])
                ],
                "{why}: every application of the file"
            );
        }
        // A <location> without a path is the file's level too.
        let wif =
            site("<system.identityModel/>\n<location><system.identityModel/></location>".into());
        assert_eq!(
            problems(resolve_both("<configuration/>", &wif))[0],
            file_level("system.identityModel", [2, 3])
        );
        // Paths equal without regard to case: the applications at that
        // path fail, not the site above them.
        let api = site(format!(
            "{}\n<location path=\"api\">{}</location>\n<location path=\"API\">{}</location>",
            mk(K1),
            mk(K2),
            mk(K2)
        ));
        assert_eq!(
            problems(resolve_both("<configuration/>", &api)),
            [
                None,
                at(
                    web,
                    Problem::TwiceForLocation {
                        section: "machineKey".into(),
                        path: "API".into(),
                        lines: [3, 4]
                    }
                )
            ]
        );
        // In machine.config, for a site.
        let machine = format!(
            "<configuration>\n<location path=\"S\">{}</location>\n<location path=\"s\">{}</location></configuration>",
            mk(K1),
            mk(K2)
        );
        let for_s = at(
            MACHINE,
            Problem::TwiceForLocation {
                section: "machineKey".into(),
                path: "s".into(),
                lines: [2, 3],
            },
        );
        assert_eq!(
            problems(resolve_both(&machine, "<configuration/>")),
            [for_s.clone(), for_s],
            "inherited by the application below"
        );
        // One section at each level is fine, and so are other sections.
        let fine = site(format!(
            "{}\n<location path=\"api\">{}</location>\n<location path=\"api\"><system.web><httpRuntime/></system.web></location>",
            mk(K1),
            mk(K2)
        ));
        assert_eq!(
            problems(resolve_both("<configuration/>", &fine)),
            [None, None]
        );
    }
}
