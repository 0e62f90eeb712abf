//! A server's drives copied into a local folder: `/C:/x` is `<root>/C:/x`.
//!
//! Nothing is written outside the root: every write goes through the folder
//! it lands in, opened first and checked to lie below the root (by walking
//! up its `..` entries, so that a link swapped in between a check and the
//! write cannot redirect it), and names within that folder are created,
//! renamed and removed without following links.

use super::{DirEntry, FileKind, FileStat, LinkEnd, NewFile, Transport, TransportError};
use crate::bytes::FileBytes;
use crate::paths::RemotePath;
use std::ffi::{CStr, CString};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

pub struct LocalTransport {
    root: PathBuf,
    canonical_root: Option<PathBuf>,
    /// Device and inode of the root, to recognise it from below.
    root_id: Option<(u64, u64)>,
    max_read: u64,
}

impl LocalTransport {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let canonical_root = fs::canonicalize(&root).ok();
        let root_id = fs::metadata(&root).ok().map(|m| (m.dev(), m.ino()));
        LocalTransport {
            root,
            canonical_root,
            root_id,
            max_read: crate::inventory::DEFAULT_MAX_CONFIG_BYTES,
        }
    }

    fn outside(&self, path: &RemotePath) -> TransportError {
        TransportError::Refused {
            path: path.to_string(),
            reason: format!("leads outside {}", self.root.display()),
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
                    return Err(self.outside(path));
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

    /// The folder that holds `path`, opened and found to lie below the
    /// root, and the name of `path` in it: writes go through these, never
    /// through a path a link could carry elsewhere.
    fn parent_of(&self, path: &RemotePath) -> Result<(File, CString), TransportError> {
        let local = self.local(path)?;
        let (Some(parent), Some(name)) = (local.parent(), local.file_name()) else {
            return Err(TransportError::Refused {
                path: path.to_string(),
                reason: "not a file name".into(),
            });
        };
        let dir = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(parent)
            .map_err(|e| map_err(path, e))?;
        if !self.is_inside(&dir).map_err(|e| map_err(path, e))? {
            return Err(self.outside(path));
        }
        let name = CString::new(name.as_bytes()).map_err(|_| TransportError::Refused {
            path: path.to_string(),
            reason: "NUL in the name".into(),
        })?;
        Ok((dir, name))
    }

    /// Whether an open folder is the root or below it: up its `..`
    /// entries until the root (inside) or the top of the file system.
    fn is_inside(&self, dir: &File) -> io::Result<bool> {
        let Some(root) = self.root_id else {
            return Ok(false);
        };
        let id = |f: &File| f.metadata().map(|m| (m.dev(), m.ino()));
        let mut cur = dir.try_clone()?;
        let mut here = id(&cur)?;
        // Deeper than any real copy of a drive; a loop cannot occur.
        for _ in 0..4096 {
            if here == root {
                return Ok(true);
            }
            let up = openat(&cur, c"..", libc::O_DIRECTORY | libc::O_RDONLY, 0)?;
            let above = id(&up)?;
            if above == here {
                return Ok(false);
            }
            (cur, here) = (up, above);
        }
        Ok(false)
    }
}

/// `openat(2)`, close-on-exec.
fn openat(dir: &File, name: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<File> {
    // SAFETY: a valid folder descriptor and a NUL-terminated name; the new
    // descriptor is owned by the File returned.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is not owned elsewhere.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn map_err(path: &RemotePath, e: io::Error) -> TransportError {
    match (e.kind(), e.raw_os_error()) {
        (io::ErrorKind::NotFound, _) => TransportError::NotFound { path: path.clone() },
        (io::ErrorKind::PermissionDenied, _) => {
            TransportError::PermissionDenied { path: path.clone() }
        }
        (io::ErrorKind::AlreadyExists, _) => TransportError::Exists { path: path.clone() },
        (_, Some(libc::ENOSPC | libc::EDQUOT)) => TransportError::NoSpace { path: path.clone() },
        (_, Some(libc::EROFS)) => TransportError::ReadOnly { path: path.clone() },
        _ => TransportError::Io {
            path: path.clone(),
            message: e.to_string(),
        },
    }
}

/// A file's stat, a link's own when `m` is from `symlink_metadata`.
fn file_stat(m: &fs::Metadata) -> FileStat {
    let t = m.file_type();
    let kind = if t.is_file() {
        FileKind::Regular
    } else if t.is_dir() {
        FileKind::Directory
    } else if t.is_symlink() {
        FileKind::Symlink
    } else {
        FileKind::Other
    };
    FileStat {
        size: m.len(),
        kind,
        modified: m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
        mode: Some(m.mode() & 0o7777),
        uid: Some(m.uid()),
        gid: Some(m.gid()),
        read_only: kind == FileKind::Regular && m.mode() & 0o222 == 0,
    }
}

impl LocalTransport {
    /// The local name of `path`, its folder checked to lie below the root
    /// but its last part not followed (a link to outside is itself inside).
    fn unfollowed(&self, path: &RemotePath) -> Result<PathBuf, TransportError> {
        match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) => Ok(self.local(&dir)?.join(name)),
            _ => self.local(path),
        }
    }

    /// `path` as it is spelled in its folder, when only another spelling
    /// of its name is there: a copy of a Windows drive keeps Windows' rule
    /// that a file name is one name in any case ([`crate::paths::same_name`]),
    /// so that a read, an exclusive create, a rename, a lock or a removal
    /// meets the file Windows would. `path` itself otherwise. (`stat` is
    /// exact: [`crate::transport::find_case_insensitive`] learns real
    /// spellings from it.)
    fn spelled(&mut self, path: &RemotePath) -> Result<RemotePath, TransportError> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(path.clone());
        };
        if fs::symlink_metadata(self.local(path)?).is_ok() {
            return Ok(path.clone());
        }
        let entries = match self.list(&dir) {
            Ok(e) => e,
            Err(_) => return Ok(path.clone()),
        };
        Ok(entries
            .iter()
            .find(|e| crate::paths::same_name(&e.name, name))
            .and_then(|e| dir.join(&e.name).ok())
            .unwrap_or_else(|| path.clone()))
    }
}

impl Transport for LocalTransport {
    fn describe(&self) -> String {
        format!("local {}", self.root.display())
    }

    fn read(&mut self, path: &RemotePath) -> Result<FileBytes, TransportError> {
        let spelled = self.spelled(path)?;
        let local = self.local(&spelled)?;
        let mut f = File::open(&local).map_err(|e| match e.raw_os_error() {
            // As sftp-server answers (errno_to_portable): a loop reads as
            // missing; `not_a_file` tells it from a missing file.
            Some(libc::ELOOP) => TransportError::NotFound { path: path.clone() },
            _ => map_err(path, e),
        })?;
        let meta = f.metadata().map_err(|e| map_err(path, e))?;
        if meta.is_dir() {
            return Err(TransportError::Io {
                path: path.clone(),
                message: "is a folder".into(),
            });
        }
        let too_large = |size| TransportError::TooLarge {
            path: path.clone(),
            size,
            max: self.max_read,
        };
        // The size first; and never more than the limit, whatever it says.
        if meta.len() > self.max_read {
            return Err(too_large(meta.len()));
        }
        let mut buf = Vec::with_capacity(meta.len() as usize);
        let read = (&mut f)
            .take(self.max_read + 1)
            .read_to_end(&mut buf)
            .map_err(|e| map_err(path, e));
        let bytes = FileBytes::new(buf);
        read?;
        if bytes.len() as u64 > self.max_read {
            return Err(too_large(
                f.metadata().map_or(bytes.len() as u64, |m| m.len()),
            ));
        }
        Ok(bytes)
    }

    // Exact: `find_case_insensitive` learns spellings from it.
    fn stat(&mut self, path: &RemotePath) -> Result<Option<FileStat>, TransportError> {
        let local = self.local(path)?;
        match fs::metadata(&local) {
            Ok(m) => Ok(Some(file_stat(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            // A loop reads as missing, as over SFTP; `link_end` tells it.
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Ok(None),
            Err(e) => Err(map_err(path, e)),
        }
    }

    fn lstat(&mut self, path: &RemotePath) -> Result<Option<FileStat>, TransportError> {
        match fs::symlink_metadata(self.unfollowed(path)?) {
            Ok(m) => Ok(Some(file_stat(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(map_err(path, e)),
        }
    }

    fn readlink(&mut self, path: &RemotePath) -> Result<String, TransportError> {
        let target = fs::read_link(self.unfollowed(path)?).map_err(|e| map_err(path, e))?;
        // Inside the copy: as the server's path (`/C:/x`).
        let inside = [Some(&self.root), self.canonical_root.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|r| target.strip_prefix(r).ok());
        Ok(match inside {
            Some(rel) => format!("/{}", rel.display()),
            None => target.display().to_string(),
        })
    }

    fn link_end(&mut self, path: &RemotePath) -> Result<LinkEnd, TransportError> {
        // `local` refuses a link that leads outside the root.
        match fs::metadata(self.local(path)?) {
            Ok(_) => Ok(LinkEnd::Exists),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Ok(LinkEnd::Loop),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(LinkEnd::Dangling),
            Err(e) => Err(map_err(path, e)),
        }
    }

    fn set_read_limit(&mut self, max_bytes: u64) {
        self.max_read = max_bytes;
    }

    fn create_new(
        &mut self,
        path: &RemotePath,
        bytes: &[u8],
        new: &NewFile,
    ) -> Result<(), TransportError> {
        if self.spelled(path)?.as_sftp() != path.as_sftp() {
            return Err(TransportError::Exists { path: path.clone() });
        }
        let (dir, name) = self.parent_of(path)?;
        // O_CREAT|O_EXCL|O_NOFOLLOW: fails on anything there, a dangling
        // link included; owner-only while written when a mode is asked.
        let mode = if new.mode.is_some() { 0o600 } else { 0o666 };
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let mut f = openat(&dir, &name, flags, mode).map_err(|e| map_err(path, e))?;
        f.write_all(bytes).map_err(|e| map_err(path, e))?;
        f.sync_all().map_err(|e| map_err(path, e))?;
        if let Some((uid, gid)) = new.owner {
            // Only where this account may give files away; else it stays its own.
            // SAFETY: a valid descriptor.
            let _ = check(unsafe { libc::fchown(f.as_raw_fd(), uid, gid) });
        }
        if let Some(mode) = new.mode {
            // SAFETY: a valid descriptor.
            check(unsafe { libc::fchmod(f.as_raw_fd(), mode as libc::mode_t) })
                .map_err(|e| map_err(path, e))?;
        }
        Ok(())
    }

    fn set_attrs(&mut self, path: &RemotePath, new: &NewFile) -> Result<(), TransportError> {
        if new.mode.is_none() && new.owner.is_none() {
            return Ok(());
        }
        let path = &self.spelled(path)?;
        let (dir, name) = self.parent_of(path)?;
        // Never through a link; non-blocking should something else be there.
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
        let f = openat(&dir, &name, flags, 0).map_err(|e| map_err(path, e))?;
        if let Some((uid, gid)) = new.owner {
            // SAFETY: a valid descriptor.
            let _ = check(unsafe { libc::fchown(f.as_raw_fd(), uid, gid) });
        }
        if let Some(mode) = new.mode {
            // SAFETY: a valid descriptor.
            check(unsafe { libc::fchmod(f.as_raw_fd(), mode as libc::mode_t) })
                .map_err(|e| map_err(path, e))?;
        }
        Ok(())
    }

    fn rename(&mut self, from: &RemotePath, to: &RemotePath) -> Result<(), TransportError> {
        let from = &self.spelled(from)?;
        if self.spelled(to)?.as_sftp() != to.as_sftp() {
            return Err(TransportError::Exists { path: to.clone() });
        }
        let ((a_dir, a), (b_dir, b)) = (self.parent_of(from)?, self.parent_of(to)?);
        // SAFETY: valid folder descriptors and NUL-terminated names.
        let rc = unsafe {
            libc::renameat2(
                a_dir.as_raw_fd(),
                a.as_ptr(),
                b_dir.as_raw_fd(),
                b.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        match check(rc) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(TransportError::Exists { path: to.clone() })
            }
            // File systems without RENAME_NOREPLACE: look first.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                if self.stat(to)?.is_some() {
                    return Err(TransportError::Exists { path: to.clone() });
                }
                self.replace(from, to)
            }
            Err(e) => Err(map_err(from, e)),
        }
    }

    fn replace(&mut self, from: &RemotePath, to: &RemotePath) -> Result<(), TransportError> {
        let (from, to) = (&self.spelled(from)?, &self.spelled(to)?);
        let ((a_dir, a), (b_dir, b)) = (self.parent_of(from)?, self.parent_of(to)?);
        // SAFETY: valid folder descriptors and NUL-terminated names.
        check(unsafe {
            libc::renameat(a_dir.as_raw_fd(), a.as_ptr(), b_dir.as_raw_fd(), b.as_ptr())
        })
        .map_err(|e| map_err(from, e))
    }

    fn remove(&mut self, path: &RemotePath) -> Result<(), TransportError> {
        let path = &self.spelled(path)?;
        let (dir, name) = self.parent_of(path)?;
        // SAFETY: a valid folder descriptor and a NUL-terminated name.
        check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) })
            .map_err(|e| map_err(path, e))
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

    /// lstat sees a link itself, even one that leads outside the root;
    /// following it (`link_end`, a read) is refused as before.
    #[test]
    fn links_are_seen_as_links_and_never_followed_outside_the_root() {
        use crate::transport::{NotAFile, not_a_file};
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret.config"), b"<configuration/>").unwrap();
        let site = dir.path().join("C:").join("site");
        fs::create_dir_all(&site).unwrap();
        fs::write(site.join("real.config"), b"<configuration/>").unwrap();
        let link = |name: &str, to: &Path| std::os::unix::fs::symlink(to, site.join(name)).unwrap();
        link("inside.config", Path::new("real.config"));
        link("absolute.config", &site.join("real.config"));
        link("dangling.config", Path::new("gone.config"));
        link("loop.config", Path::new("loop.config"));
        link("escape.config", &outside.path().join("secret.config"));
        let mut t = LocalTransport::new(dir.path());
        let p = |n: &str| RemotePath::parse(&format!("C:\\site\\{n}")).unwrap();
        for n in [
            "inside.config",
            "dangling.config",
            "loop.config",
            "escape.config",
        ] {
            assert_eq!(
                t.lstat(&p(n)).unwrap().unwrap().kind,
                FileKind::Symlink,
                "{n}"
            );
        }
        assert_eq!(
            t.lstat(&p("real.config")).unwrap().unwrap().kind,
            FileKind::Regular
        );
        assert_eq!(t.lstat(&p("none.config")).unwrap(), None);
        let target = |s: &str| Some(s.to_string());
        assert_eq!(
            not_a_file(&mut t, &p("inside.config")).unwrap(),
            Some(NotAFile::Link {
                target: target("real.config")
            })
        );
        // An absolute target inside the copy is named as the server's path.
        assert_eq!(
            not_a_file(&mut t, &p("absolute.config")).unwrap(),
            Some(NotAFile::Link {
                target: target("/C:/site/real.config")
            })
        );
        assert_eq!(
            not_a_file(&mut t, &p("dangling.config")).unwrap(),
            Some(NotAFile::DanglingLink {
                target: target("gone.config")
            })
        );
        assert_eq!(
            not_a_file(&mut t, &p("loop.config")).unwrap(),
            Some(NotAFile::LinkLoop {
                target: target("loop.config")
            })
        );
        // A loop reads as missing, as over SFTP.
        assert!(t.read(&p("loop.config")).unwrap_err().is_not_found());
        for e in [
            not_a_file(&mut t, &p("escape.config")).unwrap_err(),
            t.read(&p("escape.config")).unwrap_err(),
            t.stat(&p("escape.config")).unwrap_err(),
        ] {
            assert!(matches!(e, TransportError::Refused { .. }), "{e}");
        }
        assert_eq!(not_a_file(&mut t, &p("real.config")).unwrap(), None);
        assert_eq!(not_a_file(&mut t, &p("none.config")).unwrap(), None);
    }

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
        t.create_new(&a, b"1", &NewFile::default()).unwrap();
        t.create_new(&b, b"2", &NewFile::default()).unwrap();
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
        t.create_new(&a, b"mine", &NewFile::default()).unwrap();
        assert!(matches!(
            t.create_new(&a, b"again", &NewFile::default()),
            Err(TransportError::Exists { .. })
        ));
        assert_eq!(&t.read(&a).unwrap()[..], b"mine");
        // A dangling link is not followed: its target is not created.
        let target = dir.path().join("C:").join("elsewhere");
        std::os::unix::fs::symlink(&target, dir.path().join("C:").join("link.config")).unwrap();
        let link = RemotePath::parse("/C:/link.config").unwrap();
        assert!(matches!(
            t.create_new(&link, b"x", &NewFile::OWNER_ONLY),
            Err(TransportError::Exists { .. })
        ));
        assert!(!target.exists());
    }

    #[test]
    fn nothing_is_written_through_a_folder_that_leads_outside() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("C:/site")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("C:/linked")).unwrap();
        let mut t = LocalTransport::new(dir.path());
        let through = RemotePath::parse("/C:/linked/web.farmkey.config").unwrap();
        let err = t
            .create_new(&through, b"keys", &NewFile::OWNER_ONLY)
            .unwrap_err();
        assert!(matches!(err, TransportError::Refused { .. }), "{err}");
        let inside = RemotePath::parse("/C:/site/a.config").unwrap();
        t.create_new(&inside, b"x", &NewFile::default()).unwrap();
        for (from, to) in [(&inside, &through), (&through, &inside)] {
            assert!(matches!(
                t.rename(from, to),
                Err(TransportError::Refused { .. })
            ));
            assert!(matches!(
                t.replace(from, to),
                Err(TransportError::Refused { .. })
            ));
        }
        assert!(matches!(
            t.remove(&through),
            Err(TransportError::Refused { .. })
        ));
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
        // The folder a write lands in is what is checked, not its path: a
        // folder opened outside is outside, whatever name led to it.
        let opened = File::open(outside.path()).unwrap();
        assert!(!t.is_inside(&opened).unwrap());
        let opened = File::open(dir.path().join("C:/site")).unwrap();
        assert!(t.is_inside(&opened).unwrap());
    }

    #[test]
    fn new_files_get_the_mode_asked_and_are_owner_only_meanwhile() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("C:")).unwrap();
        let mut t = LocalTransport::new(dir.path());
        let mode = |t: &mut LocalTransport, name: &str, new: NewFile| {
            let p = RemotePath::parse(&format!("/C:/{name}")).unwrap();
            t.create_new(&p, b"x", &new).unwrap();
            let st = t.stat(&p).unwrap().unwrap();
            assert_eq!(
                fs::metadata(dir.path().join("C:").join(name))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o7777,
                st.mode.unwrap()
            );
            st.mode.unwrap()
        };
        assert_eq!(mode(&mut t, "backup", NewFile::OWNER_ONLY), 0o600);
        let exact = NewFile {
            mode: Some(0o664),
            owner: None,
        };
        assert_eq!(
            mode(&mut t, "staged", exact),
            0o664,
            "not reduced by the umask"
        );
        let umask = mode(&mut t, "lock", NewFile::default());
        assert_eq!(umask & 0o600, 0o600, "{umask:o}");
    }

    #[test]
    fn files_above_the_limit_are_refused_from_their_size() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("C:")).unwrap();
        fs::write(dir.path().join("C:/big.config"), vec![b'<'; 4096]).unwrap();
        fs::write(dir.path().join("C:/fits.config"), vec![b'<'; 1024]).unwrap();
        let mut t = LocalTransport::new(dir.path());
        t.set_read_limit(1024);
        let big = RemotePath::parse("/C:/big.config").unwrap();
        let err = t.read(&big).unwrap_err();
        assert_eq!(
            err,
            TransportError::TooLarge {
                path: big,
                size: 4096,
                max: 1024
            }
        );
        assert!(
            err.to_string()
                .contains("4096 bytes, more than max_config_bytes = 1024 allows: not read"),
            "{err}"
        );
        let fits = RemotePath::parse("/C:/fits.config").unwrap();
        assert_eq!(t.read(&fits).unwrap().len(), 1024);
    }

    #[test]
    fn a_full_or_read_only_disk_is_named_as_such() {
        let p = RemotePath::parse("/C:/web.farmkey.config").unwrap();
        let e = |code| map_err(&p, io::Error::from_raw_os_error(code)).to_string();
        assert_eq!(
            e(libc::ENOSPC),
            "C:\\web.farmkey.config: no space left on the server's disk"
        );
        assert_eq!(
            e(libc::EROFS),
            "C:\\web.farmkey.config: the server's file system is read-only"
        );
    }

    /// As on Windows, a name is one name in any case (NTFS upcases each
    /// UTF-16 unit): an exclusive create or a rename onto another spelling
    /// meets the file there; reading, replacing and removing reach it.
    #[test]
    fn a_name_in_another_case_is_the_same_file_as_on_windows() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("C:/site")).unwrap();
        fs::write(dir.path().join("C:/site/web.farmkey-lock.config"), b"held").unwrap();
        fs::write(dir.path().join("C:/site/Ä.config"), b"a").unwrap();
        let mut t = LocalTransport::new(dir.path());
        let p = |s: &str| RemotePath::parse(s).unwrap();
        let other = p("C:/site/WEB.Farmkey-Lock.CONFIG");
        let e = t
            .create_new(&other, b"mine", &NewFile::default())
            .unwrap_err();
        assert!(matches!(e, TransportError::Exists { .. }), "{e}");
        assert_eq!(&t.read(&other).unwrap()[..], b"held");
        assert_eq!(&t.read(&p("C:/site/ä.config")).unwrap()[..], b"a");
        fs::write(dir.path().join("C:/site/new.config"), b"new").unwrap();
        let e = t
            .rename(&p("C:/site/new.config"), &p("C:/site/ä.CONFIG"))
            .unwrap_err();
        assert!(matches!(e, TransportError::Exists { .. }), "{e}");
        t.replace(&p("C:/site/new.config"), &p("C:/site/ä.CONFIG"))
            .unwrap();
        assert_eq!(
            fs::read(dir.path().join("C:/site/Ä.config")).unwrap(),
            b"new"
        );
        t.remove(&other).unwrap();
        assert!(!dir.path().join("C:/site/web.farmkey-lock.config").exists());
        // Outside the Basic Multilingual Plane, Windows compares as is.
        assert!(!crate::paths::same_name("\u{10428}", "\u{10400}"));
        assert!(crate::paths::same_name("straße", "STRAßE"));
        let names: Vec<String> = fs::read_dir(dir.path().join("C:/site"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["Ä.config"]);
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
