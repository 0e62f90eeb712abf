//! Sections as ASP.NET finds them: the element in the file, or the root of
//! the file its `configSource` names. The rules are System.Configuration's
//! (BaseConfigurationRecord.NormalizeConfigSource and LoadConfigSource,
//! InternalConfigHost.StaticGetStreamNameForConfigSource): a relative path
//! without `/`, in the declaring file's folder or below it, on an element
//! with no other attribute and no child element, naming a file whose root
//! is the section element.

use super::problem::{ConfigProblem, ConfigSourceFault, Problem, SourcePathFault};
use super::record::{ConfigFile, line_of};
use super::xml::{Document, ElemId};
use crate::paths::RemotePath;

/// The sections whose `configSource` farmkey follows: every section it reads.
pub const FOLLOWED: [&str; 6] = [
    "machineKey",
    "httpRuntime",
    "httpModules",
    "modules",
    "system.identityModel",
    "system.identityModel.services",
];

/// A file a `configSource` names, as the reader of the chain has it.
pub enum External<'a> {
    Found(&'a ConfigFile),
    Missing,
    Unreadable(String),
    /// Not read on purpose: the section is left out.
    NotRead,
}

/// Where the files named by `configSource` come from.
pub trait SourceFiles {
    fn external(&self, path: &RemotePath) -> External<'_>;
}

/// No external file is read: sections kept elsewhere are left out (the
/// editor checks its own file this way; the other file is edited apart).
pub struct NoSourceFiles;

impl SourceFiles for NoSourceFiles {
    fn external(&self, _: &RemotePath) -> External<'_> {
        External::NotRead
    }
}

/// A section's content and where it is declared.
#[derive(Debug, Clone, Copy)]
pub struct Section<'a> {
    /// The file holding the content: the configSource file, if any.
    pub file: &'a ConfigFile,
    pub elem: ElemId,
    /// The file and element that declare the section in the chain.
    pub declared_in: &'a ConfigFile,
    pub declared_at: ElemId,
}

impl Section<'_> {
    /// Line of the content's start tag in its file.
    pub fn line(&self) -> usize {
        line_of(self.file, self.elem)
    }

    /// Line of the declaring element in the chain file.
    pub fn declared_line(&self) -> usize {
        line_of(self.declared_in, self.declared_at)
    }
}

/// Whether a section element is protected by a provider.
pub fn is_encrypted(doc: &Document, section: ElemId) -> bool {
    doc.find_attr(section, "configProtectionProvider").is_some()
        || doc.child_named(section, "EncryptedData").is_some()
}

/// The file a `configSource` value names, or why ASP.NET refuses it.
pub fn config_source_path(
    declaring: &RemotePath,
    value: &str,
) -> Result<RemotePath, SourcePathFault> {
    if value.is_empty() || value.trim() != value {
        return Err(SourcePathFault::EmptyOrSpaced);
    }
    if value.contains('/') {
        return Err(SourcePathFault::Slash);
    }
    if value.starts_with('\\') || value.contains(':') {
        return Err(SourcePathFault::NotRelative);
    }
    let dir = declaring.parent().ok_or(SourcePathFault::NoFolder)?;
    dir.join(value)
        .map_err(|_| SourcePathFault::LeavesFolder { dir: dir.clone() })
}

/// Every `configSource` of a file's followed sections that names a usable
/// path (the others are refused when the section is read).
pub fn config_sources(file: &ConfigFile) -> Vec<RemotePath> {
    let doc = &file.doc;
    let mut out = Vec::new();
    let mut stack = vec![doc.root()];
    while let Some(id) = stack.pop() {
        stack.extend_from_slice(doc.children(id));
        if !FOLLOWED.contains(&doc.name(id)) {
            continue;
        }
        if let Some(p) = doc
            .attr(id, "configSource")
            .and_then(|v| config_source_path(&file.path, &v).ok())
        {
            out.push(p);
        }
    }
    out
}

/// The only child named `name`, or a problem when the runtime would see two.
pub(crate) fn single_child(
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
            problem: Problem::TwiceInOnePlace {
                element: name.to_string(),
                lines: [line_of(file, a), line_of(file, b)],
            },
        });
    }
    Ok(first)
}

/// The section `name` under `parent`, following `configSource`. `Ok(None)`
/// when the file does not set it (or its external file is not read).
pub fn section<'a>(
    file: &'a ConfigFile,
    parent: ElemId,
    name: &str,
    sources: &'a dyn SourceFiles,
) -> Result<Option<Section<'a>>, ConfigProblem> {
    let Some(elem) = single_child(file, parent, name)? else {
        return Ok(None);
    };
    let here = Section {
        file,
        elem,
        declared_in: file,
        declared_at: elem,
    };
    let doc = &file.doc;
    let Some(value) = doc.attr(elem, "configSource") else {
        return Ok(Some(here));
    };
    let refuse = |fault| ConfigProblem {
        file: file.path.clone(),
        problem: Problem::ConfigSource {
            section: name.to_string(),
            value: value.to_string(),
            line: here.declared_line(),
            fault,
        },
    };
    if doc.attrs(elem).len() != 1 {
        return Err(refuse(ConfigSourceFault::OtherAttribute));
    }
    if !doc.children(elem).is_empty() {
        return Err(refuse(ConfigSourceFault::NotEmpty));
    }
    let path = config_source_path(&file.path, &value)
        .map_err(|why| refuse(ConfigSourceFault::Path(why)))?;
    match sources.external(&path) {
        External::Found(ext) => {
            let root = ext.doc.root();
            if ext.doc.name(root) != name {
                return Err(ConfigProblem {
                    file: ext.path.clone(),
                    problem: Problem::WrongRoot {
                        named_in: file.path.clone(),
                        named_at: here.declared_line(),
                        root: ext.doc.name(root).to_string(),
                        expected: name.to_string(),
                    },
                });
            }
            Ok(Some(Section {
                file: ext,
                elem: root,
                declared_in: file,
                declared_at: elem,
            }))
        }
        External::Missing => Err(refuse(ConfigSourceFault::Missing(path))),
        External::Unreadable(why) => Err(ConfigProblem {
            file: path,
            problem: Problem::SourceUnreadable {
                named_in: file.path.clone(),
                named_at: here.declared_line(),
                why,
            },
        }),
        External::NotRead => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_source_paths_follow_asp_net() {
        let web = RemotePath::parse("C:\\inetpub\\Flowtime\\web.config").unwrap();
        let ok = |v: &str| config_source_path(&web, v).map(|p| p.to_string());
        assert_eq!(
            ok("App_Config\\MachineKey.config").unwrap(),
            "C:\\inetpub\\Flowtime\\App_Config\\MachineKey.config"
        );
        assert_eq!(ok("mk.config").unwrap(), "C:\\inetpub\\Flowtime\\mk.config");
        assert_eq!(
            ok("a\\..\\mk.config").unwrap(),
            "C:\\inetpub\\Flowtime\\mk.config",
            "climbing back into the folder is fine"
        );
        assert_eq!(
            ok("..\\keys.config"),
            Err(SourcePathFault::LeavesFolder {
                dir: RemotePath::parse("C:\\inetpub\\Flowtime").unwrap()
            })
        );
        assert_eq!(ok("App_Config/mk.config"), Err(SourcePathFault::Slash));
        assert_eq!(ok("C:\\keys\\mk.config"), Err(SourcePathFault::NotRelative));
        assert_eq!(ok("\\keys\\mk.config"), Err(SourcePathFault::NotRelative));
        assert_eq!(ok(" mk.config"), Err(SourcePathFault::EmptyOrSpaced));
        assert_eq!(ok(""), Err(SourcePathFault::EmptyOrSpaced));
    }
}
