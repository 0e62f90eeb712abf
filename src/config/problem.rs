//! What ASP.NET refuses in a configuration file before it applies a value,
//! as values, and the one place they are worded. `record` and `section`
//! find them; the scan, the editor's read-back and the push report them.

use crate::keys::mask_key_text;
use crate::paths::RemotePath;
use std::fmt;

/// A configuration the runtime itself would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct ConfigProblem {
    pub file: RemotePath,
    pub problem: Problem,
}

/// Which kind of file a `<location path>` is read in, for the advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathsFrom {
    /// machine.config or the root web.config: paths start with the site.
    Machine,
    /// An application's web.config: paths below the application.
    App,
}

/// Why ASP.NET refuses a file (every application that reads it), one of its
/// `<location>` levels (the applications at that path), or a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A `<location path>` NormalizeLocationSubPath refuses: the whole file.
    LocationPath {
        line: usize,
        /// As written.
        path: String,
        fault: LocationPathFault,
        paths_from: PathsFrom,
    },
    /// `inheritInChildApplications="false"` on the own level of
    /// machine.config or the root web.config (VSWhidbey 535595).
    InheritAtMachineLevel { line: usize, path: Option<String> },
    /// The root element is not `<configuration>`
    /// (Config_file_doesnt_have_root_configuration): the whole file.
    NotConfigurationRoot { element: String },
    /// An attribute of `<configuration>` ScanFactories refuses: an `xmlns`
    /// other than [`CONFIGURATION_NAMESPACE`] (Config_namespace_invalid),
    /// anything else (Config_base_unrecognized_attribute). The whole file.
    RootAttribute {
        line: usize,
        name: String,
        value: String,
    },
    /// The `<section>` declaring a section farmkey reads is one
    /// System.Configuration refuses (ScanFactoriesRecursive): reading the
    /// section fails, so the applications that read the file do.
    Declaration {
        /// The config key (`system.web/machineKey`).
        section: &'static str,
        line: usize,
        fault: DeclarationFault,
    },
    /// A `<configSections>` that is not the first element of
    /// `<configuration>`, or a second one
    /// (Config_client_config_too_many_configsections_elements): the file.
    ConfigSectionsNotFirst { line: usize },
    /// A `<location>` inside another element than `<configuration>`
    /// (Config_location_location_not_allowed): the whole file.
    NestedLocation { line: usize },
    /// An attribute of `<location>` ScanLocationSection refuses, as
    /// written: a global error, the whole file.
    LocationAttribute {
        line: usize,
        name: String,
        value: String,
        fault: LocationFault,
    },
    /// A section twice at the file's own level
    /// (Config_sections_must_be_unique): the whole file.
    TwiceAtFileLevel { section: String, lines: [usize; 2] },
    /// A section twice for one `<location path>` (paths compare without
    /// regard to case): the applications at that path.
    TwiceForLocation {
        section: String,
        /// The path as written on the second `<location>`.
        path: String,
        lines: [usize; 2],
    },
    /// One element twice under one parent.
    TwiceInOnePlace { element: String, lines: [usize; 2] },
    /// A `configSource` ASP.NET refuses.
    ConfigSource {
        section: String,
        value: String,
        line: usize,
        fault: ConfigSourceFault,
    },
    /// The file a `configSource` names has another root than the section.
    WrongRoot {
        named_in: RemotePath,
        named_at: usize,
        root: String,
        expected: String,
    },
    /// The file a `configSource` names cannot be read (`why`: as the
    /// transport put it).
    SourceUnreadable {
        named_in: RemotePath,
        named_at: usize,
        why: String,
    },
}

/// The one namespace `<configuration xmlns>` may name
/// (BaseConfigurationRecord.ScanFactories).
pub const CONFIGURATION_NAMESPACE: &str = "http://schemas.microsoft.com/.NetConfiguration/v2.0";

/// What is wrong with an attribute of `<location>`: ScanLocationSection
/// reads `path`, `allowOverride`, `overrideMode` and
/// `inheritInChildApplications`, exactly spelled, and records anything else
/// as a global error (the whole file is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocationFault {
    /// An attribute `<location>` does not have (`allowOveride`, `AllowOverride`).
    Unrecognized,
    /// `allowOverride` or `inheritInChildApplications` not exactly `true`
    /// or `false` (XmlUtil.VerifyAndGetBooleanAttribute).
    NotBoolean,
    /// `overrideMode` not exactly `Inherit`, `Allow` or `Deny`
    /// (OverrideModeSetting.ParseOverrideModeXmlValue).
    NotOverrideMode,
    /// `allowOverride` and `overrideMode` on one `<location>`.
    Both,
}

/// Why System.Configuration refuses a section's declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclarationFault {
    /// An attribute whose value it does not accept, as written
    /// (`allowDefinition="machineOnly"`; `resource`: its message).
    Value {
        attribute: String,
        value: String,
        resource: &'static str,
    },
    /// Declared again below the file that first declares it, with another
    /// class or other attributes (Config_tag_name_already_defined).
    Redeclared {
        first: RemotePath,
        first_line: usize,
    },
}

/// Why ASP.NET refuses a `<location path>` (BaseConfigurationRecord.
/// NormalizeLocationSubPath), by the name of its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocationPathFault {
    /// Config_location_path_invalid_first_character.
    FirstCharacter,
    /// Config_location_path_invalid_last_character.
    LastCharacter,
    /// Config_location_path_invalid_character.
    Character,
}

/// Why ASP.NET refuses a `configSource` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSourceFault {
    /// The element has other attributes.
    OtherAttribute,
    /// The element has child elements.
    NotEmpty,
    Path(SourcePathFault),
    /// The file it names does not exist.
    Missing(RemotePath),
}

/// Why a `configSource` value names no file ASP.NET would read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourcePathFault {
    EmptyOrSpaced,
    Slash,
    NotRelative,
    NoFolder,
    /// It climbs out of the declaring file's folder `dir`.
    LeavesFolder {
        dir: RemotePath,
    },
}

/// A value quoted from a file in a message, cut after 40 characters:
/// enough to recognise a typo, never a page of pasted text.
pub fn bounded(value: &str) -> String {
    const SHOWN: usize = 40;
    match value.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}

/// A `<location path>` as quoted: a key pasted there masked, cut short.
fn quoted_path(path: &str) -> String {
    bounded(&mask_key_text(path))
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No final full stop: a finding goes on after it.
        const WHOLE_FILE: &str =
            "ASP.NET refuses the whole file, so every application that reads it fails to start";
        match self {
            Problem::LocationPath {
                line,
                path,
                fault,
                paths_from,
            } => write!(
                f,
                "<location path=\"{}\"> at line {line}: the path {fault}; {WHOLE_FILE}. {}",
                quoted_path(path),
                match paths_from {
                    PathsFrom::Machine => {
                        "Write the site's name, then the application's path, separated by '/' (\"Flowtime/api\"), with nothing before or after"
                    }
                    PathsFrom::App => {
                        "Write the path below this application, separated by '/' (\"api/v2\"), with nothing before or after"
                    }
                }
            ),
            Problem::InheritAtMachineLevel { line, path } => {
                f.write_str("<location ")?;
                if let Some(path) = path {
                    write!(f, "path=\"{}\" ", quoted_path(path))?;
                }
                write!(
                    f,
                    "inheritInChildApplications=\"false\"> at line {line}: machine.config and the root web.config may not keep their own level from the applications below (Location_invalid_inheritInChildApplications_in_machine_or_root_web_config); {WHOLE_FILE}. Remove inheritInChildApplications, or name a site in path"
                )
            }
            Problem::NotConfigurationRoot { element } => write!(
                f,
                "the root element is <{}>, not <configuration> (Config_file_doesnt_have_root_configuration); {WHOLE_FILE}. Make <configuration> the file's root element",
                bounded(element)
            ),
            Problem::Declaration {
                section,
                line,
                fault,
            } => match fault {
                DeclarationFault::Value {
                    attribute,
                    value,
                    resource,
                } => write!(
                    f,
                    "the <section> declaring {section} at line {line} has {}=\"{}\", a value it does not accept ({resource}); reading {section} fails, so the applications that read this file do not start. Correct the value",
                    bounded(attribute),
                    quoted_path(value)
                ),
                DeclarationFault::Redeclared { first, first_line } => write!(
                    f,
                    "the <section> at line {line} declares {section} again, with another type or other attributes than its declaration at line {first_line} of {first} (Config_tag_name_already_defined); reading {section} fails, so the applications that read this file do not start. Remove the declaration, or make it the same"
                ),
            },
            Problem::ConfigSectionsNotFirst { line } => write!(
                f,
                "<configSections> at line {line} is not the first element of <configuration>, or not the only one (Config_client_config_too_many_configsections_elements); {WHOLE_FILE}. Move it first, into one <configSections>"
            ),
            Problem::NestedLocation { line } => write!(
                f,
                "<location> at line {line} is inside another element; <location> may only stand directly in <configuration> (Config_location_location_not_allowed); {WHOLE_FILE}. Move it up"
            ),
            Problem::RootAttribute { line, name, value } => {
                let why = if name == "xmlns" {
                    format!(
                        "the only namespace ASP.NET accepts there is {CONFIGURATION_NAMESPACE} (Config_namespace_invalid)"
                    )
                } else {
                    "<configuration> has no such attribute (Config_base_unrecognized_attribute)"
                        .to_string()
                };
                write!(
                    f,
                    "<configuration {}=\"{}\"> at line {line}: {why}; {WHOLE_FILE}. Remove the attribute",
                    bounded(name),
                    quoted_path(value)
                )
            }
            Problem::LocationAttribute {
                line,
                name,
                value,
                fault,
            } => {
                let (why, advice) = match fault {
                    LocationFault::Unrecognized => (
                        "<location> has no such attribute; it takes path, allowOverride, overrideMode and inheritInChildApplications, spelled exactly so (Config_base_unrecognized_attribute)",
                        "Correct the attribute's name, or remove it",
                    ),
                    LocationFault::NotBoolean => (
                        "the value must be exactly \"true\" or \"false\" (Config_invalid_boolean_attribute)",
                        "Correct the value",
                    ),
                    LocationFault::NotOverrideMode => (
                        "the value must be exactly Inherit, Allow or Deny (Config_section_override_mode_attribute_invalid)",
                        "Correct the value",
                    ),
                    LocationFault::Both => (
                        "allowOverride and overrideMode may not both be set on one <location> (Invalid_override_mode_declaration)",
                        "Keep one of them",
                    ),
                };
                write!(
                    f,
                    "<location {}=\"{}\"> at line {line}: {why}; {WHOLE_FILE}. {advice}",
                    bounded(name),
                    quoted_path(value)
                )
            }
            Problem::TwiceAtFileLevel {
                section,
                lines: [a, b],
            } => write!(
                f,
                "<{section}> is set twice at the file's own level (lines {a} and {b}; a <location> without a path, or with path \"\" or \".\", is that level too); ASP.NET refuses this (Config_sections_must_be_unique), so every application that reads the file fails to start"
            ),
            Problem::TwiceForLocation {
                section,
                path,
                lines: [a, b],
            } => write!(
                f,
                "<{section}> is set twice for <location path=\"{}\"> (lines {a} and {b}; paths compare without regard to case); ASP.NET refuses this (Config_sections_must_be_unique), so the applications at that path fail to start",
                quoted_path(path)
            ),
            Problem::TwiceInOnePlace {
                element,
                lines: [a, b],
            } => write!(
                f,
                "<{element}> appears twice in one place (lines {a} and {b}); ASP.NET refuses this file"
            ),
            Problem::ConfigSource {
                section,
                value,
                line,
                fault,
            } => write!(
                f,
                "<{section} configSource=\"{value}\"> at line {line}: {fault}; ASP.NET refuses this"
            ),
            Problem::WrongRoot {
                named_in,
                named_at,
                root,
                expected,
            } => write!(
                f,
                "named by configSource at line {named_at} of {named_in}, its root element is <{root}> where ASP.NET expects <{expected}>"
            ),
            Problem::SourceUnreadable {
                named_in,
                named_at,
                why,
            } => write!(
                f,
                "named by configSource at line {named_at} of {named_in}: {why}"
            ),
        }
    }
}

impl fmt::Display for LocationPathFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LocationPathFault::FirstCharacter => {
                "begins with white space or with '\\', '.' or '/' (Config_location_path_invalid_first_character)"
            }
            LocationPathFault::LastCharacter => {
                "ends with white space or with '\\', '.' or '/' (Config_location_path_invalid_last_character)"
            }
            LocationPathFault::Character => {
                "contains one of \\ ? : * \" < > | (Config_location_path_invalid_character)"
            }
        })
    }
}

impl fmt::Display for ConfigSourceFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSourceFault::OtherAttribute => {
                f.write_str("an element with configSource must have no other attribute")
            }
            ConfigSourceFault::NotEmpty => {
                f.write_str("an element with configSource must be empty")
            }
            ConfigSourceFault::Path(why) => write!(f, "the path {why}"),
            ConfigSourceFault::Missing(path) => write!(f, "{path} does not exist"),
        }
    }
}

impl fmt::Display for SourcePathFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourcePathFault::EmptyOrSpaced => f.write_str("is empty or has white space around it"),
            SourcePathFault::Slash => f.write_str("contains '/' (use '\\')"),
            SourcePathFault::NotRelative => f.write_str("is not a relative path"),
            SourcePathFault::NoFolder => f.write_str("has no folder to be relative to"),
            SourcePathFault::LeavesFolder { dir } => write!(
                f,
                "leaves the folder {dir} of the file that names it (it must name a file there or below)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> RemotePath {
        RemotePath::parse(p).unwrap()
    }

    #[test]
    fn a_refused_location_path_is_worded_with_advice_for_its_file() {
        let problem = |paths_from| Problem::LocationPath {
            line: 2,
            path: "Other/".into(),
            fault: LocationPathFault::LastCharacter,
            paths_from,
        };
        assert_eq!(
            problem(PathsFrom::Machine).to_string(),
            "<location path=\"Other/\"> at line 2: the path ends with white space or with '\\', '.' or '/' (Config_location_path_invalid_last_character); ASP.NET refuses the whole file, so every application that reads it fails to start. Write the site's name, then the application's path, separated by '/' (\"Flowtime/api\"), with nothing before or after"
        );
        assert!(problem(PathsFrom::App).to_string().ends_with(
            "Write the path below this application, separated by '/' (\"api/v2\"), with nothing before or after"
        ));
    }

    #[test]
    fn location_path_faults_are_worded() {
        assert_eq!(
            LocationPathFault::FirstCharacter.to_string(),
            "begins with white space or with '\\', '.' or '/' (Config_location_path_invalid_first_character)"
        );
        assert_eq!(
            LocationPathFault::Character.to_string(),
            "contains one of \\ ? : * \" < > | (Config_location_path_invalid_character)"
        );
    }

    #[test]
    fn a_quoted_path_is_masked_and_cut() {
        let key = "A".repeat(64);
        let problem = Problem::TwiceForLocation {
            section: "machineKey".into(),
            path: key.clone(),
            lines: [3, 4],
        };
        let text = problem.to_string();
        assert!(!text.contains(&key) && text.contains("[key "), "{text}");
    }

    #[test]
    fn inherit_at_machine_level_is_worded() {
        let problem = |path: Option<&str>| Problem::InheritAtMachineLevel {
            line: 2,
            path: path.map(str::to_string),
        };
        assert_eq!(
            problem(None).to_string(),
            "<location inheritInChildApplications=\"false\"> at line 2: machine.config and the root web.config may not keep their own level from the applications below (Location_invalid_inheritInChildApplications_in_machine_or_root_web_config); ASP.NET refuses the whole file, so every application that reads it fails to start. Remove inheritInChildApplications, or name a site in path"
        );
        assert!(
            problem(Some(".")).to_string().starts_with(
                "<location path=\".\" inheritInChildApplications=\"false\"> at line 2"
            )
        );
    }

    #[test]
    fn sections_set_twice_are_worded() {
        assert_eq!(
            Problem::TwiceAtFileLevel {
                section: "machineKey".into(),
                lines: [2, 3]
            }
            .to_string(),
            "<machineKey> is set twice at the file's own level (lines 2 and 3; a <location> without a path, or with path \"\" or \".\", is that level too); ASP.NET refuses this (Config_sections_must_be_unique), so every application that reads the file fails to start"
        );
        assert_eq!(
            Problem::TwiceForLocation {
                section: "machineKey".into(),
                path: "API".into(),
                lines: [3, 4]
            }
            .to_string(),
            "<machineKey> is set twice for <location path=\"API\"> (lines 3 and 4; paths compare without regard to case); ASP.NET refuses this (Config_sections_must_be_unique), so the applications at that path fail to start"
        );
        assert_eq!(
            Problem::TwiceInOnePlace {
                element: "machineKey".into(),
                lines: [2, 3]
            }
            .to_string(),
            "<machineKey> appears twice in one place (lines 2 and 3); ASP.NET refuses this file"
        );
    }

    #[test]
    fn config_source_problems_are_worded() {
        let problem = |fault| Problem::ConfigSource {
            section: "machineKey".into(),
            value: "mk.config".into(),
            line: 3,
            fault,
        };
        for (fault, why) in [
            (
                ConfigSourceFault::OtherAttribute,
                "an element with configSource must have no other attribute",
            ),
            (
                ConfigSourceFault::NotEmpty,
                "an element with configSource must be empty",
            ),
            (
                ConfigSourceFault::Missing(path("C:\\site\\mk.config")),
                "C:\\site\\mk.config does not exist",
            ),
            (
                ConfigSourceFault::Path(SourcePathFault::EmptyOrSpaced),
                "the path is empty or has white space around it",
            ),
            (
                ConfigSourceFault::Path(SourcePathFault::Slash),
                "the path contains '/' (use '\\')",
            ),
            (
                ConfigSourceFault::Path(SourcePathFault::NotRelative),
                "the path is not a relative path",
            ),
            (
                ConfigSourceFault::Path(SourcePathFault::NoFolder),
                "the path has no folder to be relative to",
            ),
            (
                ConfigSourceFault::Path(SourcePathFault::LeavesFolder {
                    dir: path("C:\\site"),
                }),
                "the path leaves the folder C:\\site of the file that names it (it must name a file there or below)",
            ),
        ] {
            assert_eq!(
                problem(fault).to_string(),
                format!(
                    "<machineKey configSource=\"mk.config\"> at line 3: {why}; ASP.NET refuses this"
                )
            );
        }
        assert_eq!(
            Problem::WrongRoot {
                named_in: path("C:\\site\\web.config"),
                named_at: 3,
                root: "configuration".into(),
                expected: "machineKey".into()
            }
            .to_string(),
            "named by configSource at line 3 of C:\\site\\web.config, its root element is <configuration> where ASP.NET expects <machineKey>"
        );
        assert_eq!(
            Problem::SourceUnreadable {
                named_in: path("C:\\site\\web.config"),
                named_at: 3,
                why: "permission denied".into()
            }
            .to_string(),
            "named by configSource at line 3 of C:\\site\\web.config: permission denied"
        );
    }
}
