//! A server's drives copied into a local folder: `/C:/x` is `<root>/C:/x`.

use super::{DirEntry, FileStat, Transport, TransportError};
use crate::bytes::FileBytes;
use crate::paths::RemotePath;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

pub struct LocalTransport {
    root: PathBuf,
    canonical_root: Option<PathBuf>,
}

impl LocalTransport {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let canonical_root = fs::canonicalize(&root).ok();
        LocalTransport {
            root,
            canonical_root,
        }
    }

    /// The local file behind a remote path; refuses paths that a link would
    /// carry outside the root.
    fn local(&self, path: &RemotePath) -> Result<PathBuf, TransportError> {
        let mut out = self.root.join(path.drive());
        for s in path.segments() {
            out.push(s);
        }
        // RemotePath has no `..`, but a symbolic link inside the copy could
        // still point elsewhere: check the deepest existing ancestor.
        let canonical_root = self
            .canonical_root
            .as_ref()
            .ok_or_else(|| TransportError::Io {
                path: path.clone(),
                message: format!("local root {} does not exist", self.root.display()),
            })?;
        let mut probe: &Path = &out;
        loop {
            if let Ok(real) = fs::canonicalize(probe) {
                if !real.starts_with(canonical_root) {
                    return Err(TransportError::Refused {
                        path: path.to_string(),
                        reason: format!("leads outside {}", self.root.display()),
                    });
                }
                break;
            }
            match probe.parent() {
                Some(p) => probe = p,
                None => break,
            }
        }
        Ok(out)
    }
}

fn map_err(path: &RemotePath, e: io::Error) -> TransportError {
    match e.kind() {
        io::ErrorKind::NotFound => TransportError::NotFound { path: path.clone() },
        io::ErrorKind::PermissionDenied => TransportError::PermissionDenied { path: path.clone() },
        io::ErrorKind::AlreadyExists => TransportError::Exists { path: path.clone() },
        _ => TransportError::Io {
            path: path.clone(),
            message: e.to_string(),
        },
    }
}

impl Transport for LocalTransport {
    fn describe(&self) -> String {
        format!("local {}", self.root.display())
    }

    fn read(&mut self, path: &RemotePath) -> Result<FileBytes, TransportError> {
        let local = self.local(path)?;
        if local.is_dir() {
            return Err(TransportError::Io {
                path: path.clone(),
                message: "is a folder".into(),
            });
        }
        fs::read(&local)
            .map(FileBytes::new)
            .map_err(|e| map_err(path, e))
    }

    fn stat(&mut self, path: &RemotePath) -> Result<Option<FileStat>, TransportError> {
        let local = self.local(path)?;
        match fs::metadata(&local) {
            Ok(m) => Ok(Some(FileStat {
                size: m.len(),
                is_dir: m.is_dir(),
                modified: m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_secs()),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(map_err(path, e)),
        }
    }

    fn write(&mut self, path: &RemotePath, bytes: &[u8]) -> Result<(), TransportError> {
        let local = self.local(path)?;
        let mut f = fs::File::create(&local).map_err(|e| map_err(path, e))?;
        f.write_all(bytes).map_err(|e| map_err(path, e))?;
        f.sync_all().map_err(|e| map_err(path, e))
    }

    fn create_new(&mut self, path: &RemotePath, bytes: &[u8]) -> Result<(), TransportError> {
        let local = self.local(path)?;
        // O_CREAT|O_EXCL: fails on anything there, a dangling link included.
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&local)
            .map_err(|e| map_err(path, e))?;
        f.write_all(bytes).map_err(|e| map_err(path, e))?;
        f.sync_all().map_err(|e| map_err(path, e))
    }

    fn rename(&mut self, from: &RemotePath, to: &RemotePath) -> Result<(), TransportError> {
        let (a, b) = (self.local(from)?, self.local(to)?);
        if b.exists() {
            return Err(TransportError::Exists { path: to.clone() });
        }
        fs::rename(a, b).map_err(|e| map_err(from, e))
    }

    fn replace(&mut self, from: &RemotePath, to: &RemotePath) -> Result<(), TransportError> {
        let (a, b) = (self.local(from)?, self.local(to)?);
        fs::rename(a, b).map_err(|e| map_err(from, e))
    }

    fn remove(&mut self, path: &RemotePath) -> Result<(), TransportError> {
        let local = self.local(path)?;
        fs::remove_file(local).map_err(|e| map_err(path, e))
    }

    fn list(&mut self, dir: &RemotePath) -> Result<Vec<DirEntry>, TransportError> {
        let local = self.local(dir)?;
        let mut out = Vec::new();
        for entry in fs::read_dir(local).map_err(|e| map_err(dir, e))? {
            let entry = entry.map_err(|e| map_err(dir, e))?;
            out.push(DirEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                is_dir: entry.file_type().is_ok_and(|t| t.is_dir()),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::find_case_insensitive;

    #[test]
    fn maps_drive_paths_under_the_root_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let drive = dir.path().join("C:").join("inetpub").join("Flowtime");
        fs::create_dir_all(&drive).unwrap();
        fs::write(drive.join("web.config"), b"<configuration/>").unwrap();
        let mut t = LocalTransport::new(dir.path());
        let p = RemotePath::parse("C:\\inetpub\\Flowtime\\web.config").unwrap();
        assert_eq!(&t.read(&p).unwrap()[..], b"<configuration/>");
        assert_eq!(t.stat(&p).unwrap().unwrap().size, 16);
        assert!(
            t.stat(&p.with_file_name("nope").unwrap())
                .unwrap()
                .is_none()
        );
        assert!(
            t.read(&p.with_file_name("nope").unwrap())
                .unwrap_err()
                .is_not_found()
        );

        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("C:").join("link")).unwrap();
        let err = t
            .read(&RemotePath::parse("/C:/link/x").unwrap())
            .unwrap_err();
        assert!(matches!(err, TransportError::Refused { .. }), "{err}");
    }

    #[test]
    fn rename_refuses_to_overwrite_but_replace_does() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("C:")).unwrap();
        let mut t = LocalTransport::new(dir.path());
        let a = RemotePath::parse("/C:/a").unwrap();
        let b = RemotePath::parse("/C:/b").unwrap();
        t.write(&a, b"1").unwrap();
        t.write(&b, b"2").unwrap();
        assert!(matches!(
            t.rename(&a, &b),
            Err(TransportError::Exists { .. })
        ));
        t.replace(&a, &b).unwrap();
        assert_eq!(&t.read(&b).unwrap()[..], b"1");
        assert!(t.stat(&a).unwrap().is_none());
        t.remove(&b).unwrap();
        assert!(
            t.list(&RemotePath::parse("/C:/").unwrap())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn create_new_never_replaces_or_follows() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("C:")).unwrap();
        let mut t = LocalTransport::new(dir.path());
        let a = RemotePath::parse("/C:/a.config").unwrap();
        t.create_new(&a, b"mine").unwrap();
        assert!(matches!(
            t.create_new(&a, b"again"),
            Err(TransportError::Exists { .. })
        ));
        assert_eq!(&t.read(&a).unwrap()[..], b"mine");
        // A dangling link is not followed: its target is not created.
        let target = dir.path().join("C:").join("elsewhere");
        std::os::unix::fs::symlink(&target, dir.path().join("C:").join("link.config")).unwrap();
        let link = RemotePath::parse("/C:/link.config").unwrap();
        assert!(matches!(
            t.create_new(&link, b"x"),
            Err(TransportError::Exists { .. })
        ));
        assert!(!target.exists());
    }

    #[test]
    fn finds_paths_without_regard_to_case() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("C:").join("InetPub").join("FlowTime")).unwrap();
        fs::write(dir.path().join("C:/InetPub/FlowTime/Web.config"), b"x").unwrap();
        let mut t = LocalTransport::new(dir.path());
        let asked = RemotePath::parse("c:\\inetpub\\flowtime\\web.config").unwrap();
        let found = find_case_insensitive(&mut t, &asked).unwrap().unwrap();
        assert_eq!(found.as_sftp(), "/C:/InetPub/FlowTime/Web.config");
        let missing = RemotePath::parse("/C:/inetpub/other/web.config").unwrap();
        assert_eq!(find_case_insensitive(&mut t, &missing).unwrap(), None);
    }
}
