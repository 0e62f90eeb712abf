//! Windows paths in the form OpenSSH for Windows serves them over SFTP:
//! `C:\inetpub\x\web.config` is `/C:/inetpub/x/web.config`; and `~` in
//! this machine's paths ([`expand_tilde`]).

use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("{0:?} is a UNC path; farmkey only reaches files on the server's own drives")]
    Unc(String),
    #[error("{0:?} is not an absolute path with a drive letter")]
    NotAbsolute(String),
    #[error("{0:?} climbs above its drive's root")]
    EscapesRoot(String),
    #[error("{path:?} uses the environment variable %{var}%, which farmkey does not know")]
    UnknownVariable { path: String, var: String },
}

/// An absolute path on a Windows server, normalised: drive letter upper-case,
/// no `.` or `..` components, no repeated separators. Two paths are equal
/// (and hash and order alike) as Windows compares names ([`RemotePath::key`]),
/// whatever their spelling: one comparison wherever server paths meet.
#[derive(Clone)]
pub struct RemotePath {
    /// SFTP form: `/C:/inetpub/x/web.config`.
    sftp: String,
}

impl PartialEq for RemotePath {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for RemotePath {}

impl std::hash::Hash for RemotePath {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialOrd for RemotePath {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RemotePath {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl RemotePath {
    /// Accepts `C:\a\b`, `C:/a/b` and `/C:/a/b`.
    pub fn parse(path: &str) -> Result<RemotePath, PathError> {
        let raw = path.trim();
        if raw.starts_with("\\\\") || raw.starts_with("//") {
            return Err(PathError::Unc(path.to_string()));
        }
        let unified = raw.replace('\\', "/");
        let rest = unified.strip_prefix('/').unwrap_or(&unified);
        let mut parts = rest.split('/');
        let drive = parts.next().unwrap_or("");
        let drive_ok = drive.len() == 2
            && drive.as_bytes()[0].is_ascii_alphabetic()
            && drive.as_bytes()[1] == b':';
        if !drive_ok {
            return Err(PathError::NotAbsolute(path.to_string()));
        }
        let mut segments: Vec<&str> = Vec::new();
        for part in parts {
            match part {
                "" | "." => {}
                ".." => {
                    if segments.pop().is_none() {
                        return Err(PathError::EscapesRoot(path.to_string()));
                    }
                }
                other => segments.push(other),
            }
        }
        let mut sftp = format!("/{}:", drive[..1].to_ascii_uppercase());
        if segments.is_empty() {
            sftp.push('/');
        }
        for s in segments {
            sftp.push('/');
            sftp.push_str(s);
        }
        Ok(RemotePath { sftp })
    }

    pub fn as_sftp(&self) -> &str {
        &self.sftp
    }

    /// `C:\inetpub\x\web.config`.
    pub fn to_windows(&self) -> String {
        let mut s = self.sftp[1..].replace('/', "\\");
        if s.len() == 2 {
            s.push('\\');
        }
        s
    }

    /// The path's components after the drive, e.g. `["inetpub", "x"]`.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.sftp[3..].split('/').filter(|s| !s.is_empty())
    }

    /// The drive, as `C:`.
    pub fn drive(&self) -> &str {
        &self.sftp[1..3]
    }

    /// Appends a relative path (either separator); refuses to climb out.
    pub fn join(&self, relative: &str) -> Result<RemotePath, PathError> {
        let rel = relative.replace('\\', "/");
        if rel.starts_with('/') || rel.contains(':') {
            return Err(PathError::NotAbsolute(relative.to_string()));
        }
        let joined = format!("{}/{}", self.sftp, rel);
        let out = RemotePath::parse(&joined)?;
        if !out.starts_with(self) {
            return Err(PathError::EscapesRoot(relative.to_string()));
        }
        Ok(out)
    }

    pub fn parent(&self) -> Option<RemotePath> {
        let idx = self.sftp.rfind('/')?;
        if idx <= 3 {
            return (self.sftp.len() > 4).then(|| RemotePath {
                sftp: self.sftp[..4].to_string(),
            });
        }
        Some(RemotePath {
            sftp: self.sftp[..idx].to_string(),
        })
    }

    pub fn file_name(&self) -> Option<&str> {
        self.segments().last()
    }

    /// Same parent folder, other file name.
    pub fn with_file_name(&self, name: &str) -> Result<RemotePath, PathError> {
        self.parent()
            .ok_or_else(|| PathError::NotAbsolute(self.sftp.clone()))?
            .join(name)
    }

    /// Path-prefix test, case-insensitive as Windows is.
    pub fn starts_with(&self, base: &RemotePath) -> bool {
        let (a, b) = (self.key(), base.key());
        a == b || a.starts_with(&format!("{}/", b.trim_end_matches('/')))
    }

    /// Key for maps and comparisons: the path as Windows compares it
    /// ([`windows_upcase`]).
    pub fn key(&self) -> String {
        windows_upcase(&self.sftp)
    }
}

impl fmt::Display for RemotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_windows())
    }
}

impl fmt::Debug for RemotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.sftp)
    }
}

impl Serialize for RemotePath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_windows())
    }
}

/// Environment variables as IIS expands them in `physicalPath`, looked up
/// without regard to case.
#[derive(Debug, Clone)]
pub struct WindowsEnv {
    vars: HashMap<String, String>,
}

impl Default for WindowsEnv {
    /// The values of a default Windows Server installation on drive C:.
    fn default() -> Self {
        let mut env = WindowsEnv {
            vars: HashMap::new(),
        };
        for (k, v) in [
            ("SystemDrive", "C:"),
            ("SystemRoot", "C:\\Windows"),
            ("windir", "C:\\Windows"),
            ("ProgramFiles", "C:\\Program Files"),
            ("ProgramW6432", "C:\\Program Files"),
            ("ProgramFiles(x86)", "C:\\Program Files (x86)"),
            ("CommonProgramFiles", "C:\\Program Files\\Common Files"),
            ("ProgramData", "C:\\ProgramData"),
            ("ALLUSERSPROFILE", "C:\\ProgramData"),
            ("PUBLIC", "C:\\Users\\Public"),
        ] {
            env.set(k, v);
        }
        env
    }
}

impl WindowsEnv {
    pub fn set(&mut self, name: &str, value: &str) {
        self.vars
            .insert(name.to_ascii_lowercase(), value.to_string());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Expands `%Var%` references; an unknown variable is an error.
    pub fn expand(&self, path: &str) -> Result<String, PathError> {
        let mut out = String::with_capacity(path.len());
        let mut rest = path;
        while let Some(start) = rest.find('%') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find('%') else {
                out.push_str(&rest[start..]);
                return Ok(out);
            };
            let name = &after[..end];
            match self.get(name) {
                Some(v) => out.push_str(v),
                None => {
                    return Err(PathError::UnknownVariable {
                        path: path.to_string(),
                        var: name.to_string(),
                    });
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The .NET Framework `Config` folder for a runtime and bitness.
    pub fn framework_config_dir(&self, runtime: &str, bits32: bool) -> RemotePath {
        let windir = self.get("windir").unwrap_or("C:\\Windows");
        let folder = if bits32 { "Framework" } else { "Framework64" };
        let version = if runtime.eq_ignore_ascii_case("v2.0") {
            "v2.0.50727"
        } else {
            "v4.0.30319"
        };
        let text = format!("{windir}\\Microsoft.NET\\{folder}\\{version}\\Config");
        RemotePath::parse(&text).unwrap_or_else(|_| {
            RemotePath::parse(&format!(
                "C:\\Windows\\Microsoft.NET\\{folder}\\{version}\\Config"
            ))
            .expect("constant path")
        })
    }
}

/// A name as NTFS compares names: each UTF-16 unit upcased by its own
/// table, one unit for one (Unicode's simple uppercase: `ä` is `Ä`, `ß`
/// stays `ß`); characters outside the Basic Multilingual Plane, two units
/// each, are compared as they are.
pub fn windows_upcase(name: &str) -> String {
    name.chars()
        .map(|c| {
            if (c as u32) > 0xFFFF {
                return c;
            }
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) if (u as u32) <= 0xFFFF => u,
                _ => c,
            }
        })
        .collect()
}

/// Whether two names (or paths) are the same name to Windows.
pub fn same_name(a: &str, b: &str) -> bool {
    windows_upcase(a) == windows_upcase(b)
}

/// `~/x` is `$HOME/x`, as in OpenSSH's files.
pub fn expand_tilde(p: &Path) -> PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(rest))
            .unwrap_or_else(|| p.to_path_buf()),
        Err(_) => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_equal_as_windows_compares_names() {
        use std::collections::HashSet;
        let a = RemotePath::parse("C:\\inetpub\\Flowtime\\Web.config").unwrap();
        let b = RemotePath::parse("/c:/INETPUB/flowtime/WEB.CONFIG").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.cmp(&b), std::cmp::Ordering::Equal);
        assert!(HashSet::from([a.clone()]).contains(&b));
        // Each keeps its spelling.
        assert_eq!(b.as_sftp(), "/C:/INETPUB/flowtime/WEB.CONFIG");
        // Beyond ASCII as NTFS upcases, and no further.
        let s = |p: &str| RemotePath::parse(p).unwrap();
        assert_eq!(s("/C:/Ärger/x"), s("/C:/äRGER/X"));
        assert_ne!(s("/C:/straße"), s("/C:/STRASSE"));
        assert_ne!(a, s("/C:/inetpub/Flowtime/web.config.bak"));
    }

    #[test]
    fn windows_and_sftp_forms_round_trip() {
        let p = RemotePath::parse("c:\\inetpub\\Flow time\\web.config").unwrap();
        assert_eq!(p.as_sftp(), "/C:/inetpub/Flow time/web.config");
        assert_eq!(p.to_windows(), "C:\\inetpub\\Flow time\\web.config");
        assert_eq!(
            RemotePath::parse("/D:/Cora//x/./y").unwrap().as_sftp(),
            "/D:/Cora/x/y"
        );
        assert_eq!(RemotePath::parse("C:\\").unwrap().as_sftp(), "/C:/");
        assert_eq!(RemotePath::parse("C:").unwrap().to_windows(), "C:\\");
        assert_eq!(p.file_name(), Some("web.config"));
        assert_eq!(p.parent().unwrap().as_sftp(), "/C:/inetpub/Flow time");
        assert_eq!(
            RemotePath::parse("/C:/x")
                .unwrap()
                .parent()
                .unwrap()
                .as_sftp(),
            "/C:/"
        );
        assert_eq!(RemotePath::parse("/C:/").unwrap().parent(), None);
    }

    #[test]
    fn refuses_unc_relative_and_escaping_paths() {
        assert!(matches!(
            RemotePath::parse("\\\\fileserver\\share\\web"),
            Err(PathError::Unc(_))
        ));
        assert!(matches!(
            RemotePath::parse("inetpub\\x"),
            Err(PathError::NotAbsolute(_))
        ));
        assert!(matches!(
            RemotePath::parse("/C:/../etc/passwd"),
            Err(PathError::EscapesRoot(_))
        ));
        assert_eq!(
            RemotePath::parse("C:\\a\\..\\b").unwrap().as_sftp(),
            "/C:/b"
        );
        let base = RemotePath::parse("/C:/inetpub").unwrap();
        assert!(base.join("../Windows").is_err());
        assert!(base.join("D:/x").is_err());
        assert_eq!(base.join("a\\b").unwrap().as_sftp(), "/C:/inetpub/a/b");
    }

    #[test]
    fn prefix_and_keys_ignore_case() {
        let a = RemotePath::parse("/C:/InetPub/Flowtime/web.config").unwrap();
        let b = RemotePath::parse("c:\\inetpub").unwrap();
        assert!(a.starts_with(&b));
        assert!(!RemotePath::parse("/C:/inetpub2").unwrap().starts_with(&b));
        assert_eq!(a.key(), "/C:/INETPUB/FLOWTIME/WEB.CONFIG");
        // As NTFS compares names: beyond ASCII too.
        assert_eq!(
            RemotePath::parse("C:/Übung/web.config").unwrap().key(),
            RemotePath::parse("c:/übung/WEB.config").unwrap().key()
        );
    }

    #[test]
    fn expands_variables_case_insensitively() {
        let env = WindowsEnv::default();
        assert_eq!(
            env.expand("%SYSTEMDRIVE%\\inetpub\\%WinDir%").unwrap(),
            "C:\\inetpub\\C:\\Windows"
        );
        assert_eq!(env.expand("50% off").unwrap(), "50% off");
        assert!(matches!(
            env.expand("%CoraHome%\\web"),
            Err(PathError::UnknownVariable { var, .. }) if var == "CoraHome"
        ));
        assert_eq!(
            env.framework_config_dir("v4.0", true).as_sftp(),
            "/C:/Windows/Microsoft.NET/Framework/v4.0.30319/Config"
        );
    }
}
