//! The file operations of a push on one server: exclusive copies read back,
//! the swap, and bringing a file back to its original bytes, only when it
//! still holds what the push wrote.

use super::outcome::{Foreign, Leftover, Restore};
use super::{Plan, ServerPlan, Sessions, retry, sibling};
use crate::bytes::FileBytes;
use crate::paths::RemotePath;
use crate::transport::{NewFile, Transport, TransportError, honours_modes, not_a_file};

/// Reads a file, `None` when there is none. A read refused as a held
/// file would be (a process that has it open for writing) is tried again
/// ([`retry::held`]).
pub(super) fn read_opt(
    t: &mut dyn Transport,
    path: &RemotePath,
) -> Result<Option<FileBytes>, TransportError> {
    retry::held(
        t,
        path,
        |t| match t.read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        },
        |_| Ok(None),
    )
    .map(retry::Held::into_inner)
}

/// Reads a file that must be there, as [`read_opt`].
pub(super) fn read_held(
    t: &mut dyn Transport,
    path: &RemotePath,
) -> Result<FileBytes, TransportError> {
    read_opt(t, path)?.ok_or_else(|| TransportError::NotFound { path: path.clone() })
}

/// What a copy holding keys gets where the server applies modes:
/// owner-only (backups). Nothing is sent to a Windows server.
pub(super) fn private(t: &dyn Transport) -> NewFile {
    if honours_modes(t.banner().as_deref()) {
        NewFile::OWNER_ONLY
    } else {
        NewFile::default()
    }
}

/// What the file that takes the place of `file` gets where the server
/// applies modes: the mode and owner `file` has now (the original's, or
/// what this push gave it from the original), owner-only when there is no
/// such file. Nothing is sent to a Windows server (the file takes its
/// folder's inherited ACL there).
pub(super) fn replacing(
    t: &mut dyn Transport,
    file: &RemotePath,
) -> Result<NewFile, TransportError> {
    if !honours_modes(t.banner().as_deref()) {
        return Ok(NewFile::default());
    }
    Ok(match t.stat(file)? {
        Some(st) => NewFile {
            mode: st.mode.or(NewFile::OWNER_ONLY.mode),
            owner: st.uid.zip(st.gid),
        },
        None => NewFile::OWNER_ONLY,
    })
}

/// Creates `path` (it must not exist) with `bytes` and reads them back. A
/// file this created is removed again when that fails.
pub(super) fn create_checked(
    t: &mut dyn Transport,
    path: &RemotePath,
    bytes: &FileBytes,
    new: &NewFile,
) -> Result<(), TransportError> {
    match t.create_new(path, bytes, new) {
        Ok(()) => {}
        // Not ours: never touched.
        Err(e @ TransportError::Exists { .. }) => return Err(e),
        Err(e) => {
            let _ = t.remove(path);
            return Err(e);
        }
    }
    let back = read_held(t, path).and_then(|back| {
        if back.sha256() == bytes.sha256() {
            Ok(())
        } else {
            Err(TransportError::Io {
                path: path.clone(),
                message: "does not read back as written".into(),
            })
        }
    });
    if back.is_err() {
        let _ = t.remove(path);
    }
    back
}

/// Puts `staged` in the place of `file`: posix-rename where the server has
/// it; otherwise move the old file aside and the new one in, undoing the
/// first move if the second fails. Never renames a file onto its own name
/// (on Win32-OpenSSH before 8.6 that deletes it). A rename refused as a
/// held file would be is tried again ([`retry::held`]), after a look at
/// what the refused one left: a staged copy gone was renamed (the caller
/// verifies what `file` holds); on Win32-OpenSSH before 8.6, a `file`
/// deleted by a rename that then failed is what the next try renames onto.
pub(super) fn swap(
    t: &mut dyn Transport,
    staged: &RemotePath,
    file: &RemotePath,
    aside: &RemotePath,
) -> Result<(), TransportError> {
    if staged.key() == file.key() {
        return Err(TransportError::Refused {
            path: file.to_string(),
            reason: "farmkey never renames a file onto its own name".into(),
        });
    }
    // A link (or anything but a file) in the file's place is never renamed
    // over: that would turn it into a file.
    if let Some(kind) = not_a_file(t, file)? {
        return Err(TransportError::NotAFile {
            path: file.clone(),
            kind,
        });
    }
    let moved = |from: &RemotePath| {
        let from = from.clone();
        move |t: &mut dyn Transport| Ok(t.stat(&from)?.is_none().then_some(()))
    };
    // A refused rename names both files: either may be the one held.
    let both = |from: &RemotePath| {
        let from = from.clone();
        move |e: TransportError| match e {
            TransportError::Held {
                path,
                tries,
                waited_ms,
                last,
                ..
            } => TransportError::Held {
                path,
                with: Some(Box::new(from.clone())),
                tries,
                waited_ms,
                last,
            },
            e => e,
        }
    };
    match retry::held(t, file, |t| t.replace(staged, file), moved(staged)).map_err(both(staged)) {
        Ok(_) => return Ok(()),
        Err(TransportError::Unsupported(_)) => {}
        // Made read-only since the plan (which refuses one): said so.
        Err(e @ TransportError::Held { .. })
            if t.stat(file).ok().flatten().is_some_and(|st| st.read_only) =>
        {
            return Err(TransportError::Refused {
                path: file.to_string(),
                reason: format!(
                    "the file is read-only (its read-only attribute is set): Windows refuses to replace it ({e})"
                ),
            });
        }
        Err(e) => return Err(e),
    }
    if t.stat(file)?.is_none() {
        return retry::held(t, file, |t| t.rename(staged, file), moved(staged))
            .map(|_| ())
            .map_err(both(staged));
    }
    retry::held(t, file, |t| t.rename(file, aside), moved(file))?;
    if let Err(e) =
        retry::held(t, file, |t| t.rename(staged, file), moved(staged)).map_err(both(staged))
    {
        if e.is_disconnected() {
            return Err(e);
        }
        return match retry::held(t, file, |t| t.rename(aside, file), moved(aside)) {
            Ok(_) => Err(e),
            Err(u) => Err(TransportError::Io {
                path: file.clone(),
                message: format!("{e}; moving the original back failed too: {u}"),
            }),
        };
    }
    let _ = retry::remove_held(t, aside);
    Ok(())
}

/// What farmkey knows of one server's file when it must undo a change.
pub(super) struct Undo<'a> {
    pub(super) file: &'a RemotePath,
    /// The backup, when the file existed before.
    pub(super) backup: Option<&'a RemotePath>,
    /// SHA-256 before the push (`None`: there was no file).
    pub(super) original: Option<&'a str>,
    /// SHA-256 of what the push wrote.
    pub(super) written: Option<&'a str>,
    /// Copies farmkey may have left beside the file: removed first, so that
    /// none can land late (a rename a broken session still carries out).
    pub(super) leftovers: Vec<RemotePath>,
    /// Names for the restore's own staged copy and for the old file moved
    /// aside (servers without posix-rename; it holds the original bytes,
    /// so it goes only once the file is settled).
    pub(super) restore: RemotePath,
    pub(super) aside: RemotePath,
}

/// How a file was settled, and the copies left beside it.
pub(super) struct Settled {
    pub(super) restore: Restore,
    pub(super) left: Vec<Leftover>,
}

impl Undo<'_> {
    fn keep_note(&self) -> String {
        match self.backup {
            Some(b) => format!("the original is kept in {b}"),
            None => "the file did not exist before the push".to_string(),
        }
    }

    /// The file's name, as messages give it.
    fn name(&self) -> &str {
        self.file.file_name().unwrap_or("the file")
    }

    /// Why a file that holds `now` (its SHA-256, `None`: no file) must be
    /// left alone; `None` when it holds its original bytes or what the
    /// push wrote (or is missing after the push's own swap: `swapped`).
    fn foreign(&self, now: Option<&str>, swapped: bool) -> Option<Foreign> {
        if now == self.original {
            return None;
        }
        let ours = match (now, self.written) {
            (Some(n), Some(w)) => n == w,
            (None, _) => swapped && self.original.is_some(),
            _ => false,
        };
        if ours {
            return None;
        }
        Some(match now {
            Some(sha) => Foreign::Changed {
                sha256: sha[..12.min(sha.len())].to_string(),
            },
            None => Foreign::Removed,
        })
    }

    /// Why the file must be left alone when it is no regular file: a push
    /// writes only files, so a link there (even to a file holding what
    /// the push wrote) was put there by someone else, and restoring or
    /// removing it would turn it into a file or delete what it is.
    fn not_a_file(&self, t: &mut dyn Transport) -> Result<Option<Foreign>, TransportError> {
        Ok(not_a_file(t, self.file)?
            .map(|kind| Foreign::NotAFile(Box::new((self.file.clone(), kind)))))
    }

    /// Reads the file and says why it must be left alone, if it must
    /// (see [`Undo::foreign`]); changes nothing.
    fn look(
        &self,
        t: &mut dyn Transport,
        swapped: bool,
    ) -> Result<Option<Foreign>, TransportError> {
        if let Some(why) = self.not_a_file(t)? {
            return Ok(Some(why));
        }
        let now = read_opt(t, self.file)?.map(|b| b.sha256());
        Ok(self.foreign(now.as_deref(), swapped))
    }

    /// Brings the file back to its original bytes if it holds what the push
    /// wrote (or is missing after the push's own swap); leaves anything
    /// else alone. `swapped`: a swap onto the file was attempted, so a
    /// missing file is this push's doing. The file comes first: the copies
    /// beside it are removed before (so that none can land late: a rename
    /// a broken session still carries out) where they can be at once, and
    /// after, held ones tried again; one that cannot be removed never keeps
    /// the file from being put back (held open, no one can rename it
    /// either), and is named in `left`.
    pub(super) fn settle(
        &self,
        t: &mut dyn Transport,
        swapped: &mut bool,
    ) -> Result<Settled, TransportError> {
        for name in self.leftovers.iter().chain([&self.restore]) {
            match t.remove(name) {
                Err(e) if e.is_disconnected() => return Err(e),
                _ => {}
            }
        }
        let restore = self.settle_file(t, swapped)?;
        let mut cleanup: Vec<&RemotePath> = self.leftovers.iter().chain([&self.restore]).collect();
        // The old file moved aside holds the original bytes: it goes only
        // once the file is settled.
        if !matches!(restore, Restore::Failed(_)) {
            cleanup.push(&self.aside);
        }
        let mut left: Vec<Leftover> = cleanup
            .into_iter()
            .filter_map(|name| {
                retry::remove_held(t, name)
                    .err()
                    .map(|e| Leftover::new(name, e.to_string()))
            })
            .collect();
        if matches!(restore, Restore::Failed(_)) && matches!(t.stat(&self.aside), Ok(Some(_))) {
            left.push(Leftover::new(
                &self.aside,
                "the original, kept while the file is not restored".into(),
            ));
        }
        Ok(Settled { restore, left })
    }

    fn settle_file(
        &self,
        t: &mut dyn Transport,
        swapped: &mut bool,
    ) -> Result<Restore, TransportError> {
        if let Some(why) = self.not_a_file(t)? {
            return Ok(Restore::LeftAlone(why));
        }
        let now = read_opt(t, self.file)?.map(|b| b.sha256());
        if now.as_deref() == self.original {
            return Ok(Restore::Untouched);
        }
        if let Some(why) = self.foreign(now.as_deref(), *swapped) {
            return Ok(Restore::LeftAlone(why));
        }
        let name = self.name();
        let Some(original) = self.original else {
            // The push created the file: its original state is no file.
            match retry::remove_held(t, self.file) {
                Ok(()) => {}
                Err(e) if e.is_disconnected() => return Err(e),
                Err(e) => return Ok(Restore::Failed(e.to_string())),
            }
            return Ok(match t.stat(self.file)? {
                None => Restore::Restored,
                Some(_) => Restore::Failed(format!("{name} is still there")),
            });
        };
        let Some(backup) = self.backup else {
            return Ok(Restore::Failed("no backup was made".into()));
        };
        let bytes = match read_held(t, backup) {
            Ok(b) => b,
            Err(e) if e.is_disconnected() => return Err(e),
            Err(e) => return Ok(Restore::Failed(format!("reading the backup: {e}"))),
        };
        if bytes.sha256() != original {
            return Ok(Restore::Failed(format!(
                "the backup {backup} does not hold the original bytes"
            )));
        }
        // The file now holds what this push wrote, with the original's mode
        // and owner: the restored file gets them again.
        let attrs = replacing(t, self.file)?;
        if let Err(e) = create_checked(t, &self.restore, &bytes, &attrs) {
            return if e.is_disconnected() {
                Err(e)
            } else {
                Ok(Restore::Failed(e.to_string()))
            };
        }
        // A last look right before the swap: only what this push wrote is
        // ever replaced.
        let again = read_opt(t, self.file)?.map(|b| b.sha256());
        if again != now {
            let _ = t.remove(&self.restore);
            return Ok(Restore::LeftAlone(Foreign::ChangedDuringRestore));
        }
        *swapped = true;
        if let Err(e) = swap(t, &self.restore, self.file, &self.aside) {
            if e.is_disconnected() {
                return Err(e);
            }
            let _ = t.remove(&self.restore);
            return Ok(Restore::Failed(e.to_string()));
        }
        let back = read_held(t, self.file)?;
        if back.sha256() != original {
            return Ok(Restore::Failed(format!(
                "{name} does not read back as the original"
            )));
        }
        Ok(Restore::Restored)
    }
}

/// Settles a server, reconnecting when its session broke: a fresh session
/// (bounded attempts) before declaring failure. `swapped`: a swap onto the
/// file was already attempted.
pub(super) fn settle_server(
    sessions: &mut Sessions,
    server: &str,
    undo: &Undo,
    broken: bool,
    mut swapped: bool,
) -> Settled {
    match retry::on_server(sessions, server, broken, |t| undo.settle(t, &mut swapped)) {
        Ok(Settled {
            restore: Restore::Failed(why),
            left,
        }) => Settled {
            restore: Restore::Failed(format!("{why}; {}", undo.keep_note())),
            left,
        },
        Ok(s) => s,
        Err(last) => Settled {
            restore: Restore::Failed(format!("{last}; {}", undo.keep_note())),
            // Not reached: every copy it may have left is named.
            left: undo
                .leftovers
                .iter()
                .chain([&undo.restore, &undo.aside])
                .map(|p| Leftover::new(p, format!("maybe; {last}")))
                .collect(),
        },
    }
}

/// Whether a server's file may be settled, before any file of the server
/// is: `Ok(None)` when it holds its original bytes or what the push wrote,
/// `Ok(Some(why))` when it must be left alone, `Err` when it could not be
/// read. Reconnects like [`settle_server`].
pub(super) fn check_server(
    sessions: &mut Sessions,
    server: &str,
    undo: &Undo,
    swapped: bool,
) -> Result<Option<Foreign>, retry::Reached<TransportError>> {
    retry::on_server(sessions, server, false, |t| undo.look(t, swapped))
}

pub(super) fn undo_for<'a>(plan: &Plan, sp: &'a ServerPlan, written: Option<&'a str>) -> Undo<'a> {
    Undo {
        file: &sp.file,
        backup: sp.scanned_sha256.as_ref().map(|_| &sp.backup),
        original: sp.scanned_sha256.as_deref(),
        written,
        leftovers: vec![sp.staged.clone()],
        restore: sibling(&sp.file, &plan.stamp, "-restore"),
        aside: sibling(&sp.file, &plan.stamp, "-old"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::local::LocalTransport;

    /// On Win32-OpenSSH before 8.6 a rename onto the same name deletes the
    /// file: the swap refuses it before asking the server anything, in any
    /// spelling of the name.
    #[test]
    fn a_file_is_never_renamed_onto_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("C:/site")).unwrap();
        std::fs::write(dir.path().join("C:/site/web.config"), b"<configuration/>").unwrap();
        let mut t = LocalTransport::new(dir.path());
        let file = RemotePath::parse("C:\\site\\web.config").unwrap();
        let same = RemotePath::parse("c:/SITE/Web.Config").unwrap();
        let aside = RemotePath::parse("C:\\site\\web.old.config").unwrap();
        let e = swap(&mut t, &same, &file, &aside).unwrap_err();
        assert!(matches!(e, TransportError::Refused { .. }), "{e}");
        assert_eq!(
            std::fs::read(dir.path().join("C:/site/web.config")).unwrap(),
            b"<configuration/>"
        );
        assert!(!dir.path().join("C:/site/web.old.config").exists());
    }
}
