//! The command line's sentences for what the domain decides: the remedies
//! of a blocked plan as options, and why a command cannot go on.

use crate::config::import::ImportError;
use crate::push::apply::RollbackError;
use crate::push::{PlanError, Remedy};
use std::path::PathBuf;

/// Why the command line could not ask the operator.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("no terminal to ask on: add --yes to apply without asking")]
    NoTerminal,
    #[error("{0}")]
    Terminal(#[from] std::io::Error),
}

/// Why the keys of `farmkey push` cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum KeySourceError {
    #[error("choose the keys: --generate, --adopt [SERVER], --keys FILE, or --handler-only")]
    NoneChosen,
    #[error("--keys {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("--keys {}: {error}", path.display())]
    Import { path: PathBuf, error: ImportError },
    /// A key of the file is publicly disclosed.
    #[error("{0}")]
    Disclosed(PlanError),
}

/// What the operator can do about a blocked plan, as options of
/// `farmkey push`; `None` when nothing is to be done but wait.
pub fn remedies(remedies: &[Remedy]) -> Option<String> {
    let mut excluded: Vec<String> = Vec::new();
    let (mut fix, mut break_lock, mut wait) = (false, false, false);
    for r in remedies {
        match r {
            Remedy::Exclude(server) => excluded.push(format!("--exclude {server}")),
            Remedy::FixFile(_) | Remedy::ScanAgain => fix = true,
            Remedy::BreakLock(_) => break_lock = true,
            Remedy::Wait(_) => wait = true,
        }
    }
    let mut text: Vec<String> = Vec::new();
    if !excluded.is_empty() {
        let first = if fix {
            "Fix what is named above and scan again, or leave"
        } else {
            "Leave"
        };
        let one = excluded.len() == 1;
        let (whom, who, keep) = if one {
            ("it", "it", "keeps its")
        } else {
            ("them", "they", "keep their")
        };
        text.push(format!(
            "{first} {whom} out by name ({}): {who} then {keep} old keys.",
            excluded.join(" ")
        ));
    }
    if break_lock {
        text.push(
            "A lock means another push of this site runs or was cut short: wait for it, or, if it no longer runs, break the lock (--break-lock).".into(),
        );
    }
    if wait {
        text.push(
            "A lock held by a push of this machine that still runs is never broken: wait for that push to end.".into(),
        );
    }
    (!text.is_empty()).then(|| text.join(" "))
}

/// Why a server was not rolled back, and, for a lock, how the command line
/// goes on: `--break-lock`, which never breaks the lock of a push of this
/// machine that still runs.
pub fn refusal(e: &RollbackError) -> String {
    if e.breakable_lock().is_some() {
        format!("{e}; if that push no longer runs, roll back with --break-lock")
    } else if e.locked_by().is_some() {
        format!("{e}; that push still runs on this machine: roll back once it has ended")
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::RemotePath;
    use crate::push::lock::{Holder, LockInfo};

    fn holder(host: &str) -> Box<Holder> {
        let mut info = LockInfo::mine("20261126T112045Z-ab12", "Flowtime");
        info.host = host.into();
        Box::new(Holder {
            server: "web02".into(),
            path: RemotePath::parse("C:\\inetpub\\Flowtime\\web.farmkey-lock.config").unwrap(),
            info: Some(info),
            modified: None,
        })
    }

    #[test]
    fn a_server_to_leave_out_is_named_as_the_option_that_does_it() {
        let file = RemotePath::parse("C:\\inetpub\\Flowtime\\web.config").unwrap();
        assert_eq!(
            remedies(&[Remedy::FixFile(file), Remedy::Exclude("web03".into())]).unwrap(),
            "Fix what is named above and scan again, or leave it out by name (--exclude web03): it then keeps its old keys."
        );
        assert_eq!(
            remedies(&[
                Remedy::Exclude("web03".into()),
                Remedy::Exclude("web04".into())
            ])
            .unwrap(),
            "Leave them out by name (--exclude web03 --exclude web04): they then keep their old keys."
        );
    }

    #[test]
    fn a_lock_offers_break_lock_only_where_it_can_be_broken() {
        assert_eq!(
            remedies(&[Remedy::BreakLock(holder("another-jump-host"))]).unwrap(),
            "A lock means another push of this site runs or was cut short: wait for it, or, if it no longer runs, break the lock (--break-lock)."
        );
        let wait = remedies(&[Remedy::Wait(holder("here"))]).unwrap();
        assert!(!wait.contains("--break-lock"), "{wait}");
        assert_eq!(
            wait,
            "A lock held by a push of this machine that still runs is never broken: wait for that push to end."
        );
        assert_eq!(remedies(&[]), None);
    }

    #[test]
    fn why_the_keys_or_an_answer_cannot_be_had_reads_as_said() {
        assert_eq!(
            KeySourceError::NoneChosen.to_string(),
            "choose the keys: --generate, --adopt [SERVER], --keys FILE, or --handler-only"
        );
        let read = KeySourceError::Read {
            path: "/tmp/keys.xml".into(),
            error: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(read.to_string(), "--keys /tmp/keys.xml: entity not found");
        let import = KeySourceError::Import {
            path: "/tmp/keys.xml".into(),
            error: ImportError::NoMachineKey,
        };
        assert_eq!(
            import.to_string(),
            "--keys /tmp/keys.xml: no <machineKey> element found"
        );
        assert_eq!(
            AskError::NoTerminal.to_string(),
            "no terminal to ask on: add --yes to apply without asking"
        );
    }

    fn locked(info: LockInfo) -> RollbackError {
        RollbackError::Locked(Box::new(Holder {
            server: "web01".into(),
            path: RemotePath::parse("C:\\inetpub\\Cora\\Flowtime\\web.farmkey-lock.config")
                .unwrap(),
            info: Some(info),
            modified: None,
        }))
    }

    /// The error holds the facts; the command line adds `--break-lock`
    /// only where that option can break the lock.
    #[test]
    fn a_lock_refusal_offers_break_lock_only_where_it_can_break_it() {
        let mut elsewhere = LockInfo::mine("20261126T112045Z-ab12", "Flowtime");
        elsewhere.host = "another-jump-host".into();
        let stale = locked(elsewhere);
        let unrecorded = RollbackError::Unrecorded {
            why: Box::new(stale.clone()),
            audit: crate::push::audit::NotAppended {
                log: "/var/log/audit.jsonl".into(),
                kind: std::io::ErrorKind::StorageFull,
                cause: "No space left on device".into(),
            },
        };
        for e in [&stale, &unrecorded] {
            assert!(!e.to_string().contains("--break-lock"), "{e}");
            assert!(
                refusal(e).ends_with("if that push no longer runs, roll back with --break-lock"),
                "{}",
                refusal(e)
            );
        }
        // This very process holds it: it still runs, and is never broken.
        let alive = locked(LockInfo::mine("20261126T112045Z-ab12", "Flowtime"));
        assert!(
            !refusal(&alive).contains("--break-lock")
                && refusal(&alive).contains("still runs on this machine"),
            "{}",
            refusal(&alive)
        );
        let other = RollbackError::Failed("no space left on the server's disk".into());
        assert_eq!(refusal(&other), other.to_string());
    }
}
