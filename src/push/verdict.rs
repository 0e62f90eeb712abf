//! Whether a plan may go ahead, decided once: ready, nothing to write, or
//! blocked, each block a typed reason with the remedies it allows. The
//! front ends word the remedies (the command line as options, the console
//! as buttons); neither decides again.

use super::error::{Block, BlockReason};
use super::lock::Holder;
use super::{Plan, PlanAction};
use crate::paths::RemotePath;

/// What a plan allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanVerdict {
    /// Something to write, nothing in the way.
    Ready,
    /// Every server of the push is already correct.
    NothingToWrite,
    /// Nothing is written while any of these stands.
    Blocked(Vec<Block>),
}

impl PlanVerdict {
    /// The blocks, none when the plan may go ahead.
    pub fn blocks(&self) -> &[Block] {
        match self {
            PlanVerdict::Blocked(b) => b,
            _ => &[],
        }
    }

    /// The servers that block, each once, in the plan's order.
    pub fn blocking_servers(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for b in self.blocks() {
            if !out.contains(&b.server.as_str()) {
                out.push(&b.server);
            }
        }
        out
    }

    /// Every remedy the blocks allow, each once.
    pub fn remedies(&self) -> Vec<Remedy> {
        let mut out: Vec<Remedy> = Vec::new();
        for r in self.blocks().iter().flat_map(Block::remedies) {
            if !out.contains(&r) {
                out.push(r);
            }
        }
        out
    }
}

/// What the operator can do about a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remedy {
    /// Leave the server out: it keeps its keys.
    Exclude(String),
    /// Break a lock whose push no longer runs.
    BreakLock(Box<Holder>),
    /// Wait for the push that holds the lock: it still runs on this
    /// machine, and is never broken.
    Wait(Box<Holder>),
    /// Correct this file, then scan again.
    FixFile(RemotePath),
    /// Scan again (the server may answer, the file changed since).
    ScanAgain,
}

impl Block {
    /// The remedies this block allows, the likeliest first.
    pub fn remedies(&self) -> Vec<Remedy> {
        use BlockReason as R;
        let exclude = Remedy::Exclude(self.server.clone());
        let fix = |file: &RemotePath| vec![Remedy::FixFile(file.clone()), exclude.clone()];
        match &self.reason {
            R::Locked(h) if h.alive_here() => vec![Remedy::Wait(h.clone())],
            R::Locked(h) => vec![Remedy::BreakLock(h.clone())],
            // It may answer, or the file change, by the next scan.
            R::Unread { .. }
            | R::Connect(_)
            | R::LockUnreadable(_)
            | R::LockClaimsUnlisted(_)
            | R::Unreadable { .. }
            | R::ChangedSinceScan { .. } => vec![Remedy::ScanAgain, exclude],
            R::ConfigUnreadable(p) => match RemotePath::parse(&p.path) {
                Ok(file) => fix(&file),
                Err(_) => vec![exclude],
            },
            R::LockedAbove { lock, .. } => fix(&lock.file),
            R::SwapAbove { at, .. } => fix(at),
            R::RefusedAbove { refused, .. } => fix(&refused.file),
            R::ConfigSourceMissing { named_in, .. } => fix(named_in),
            R::PathNotWritable { .. } | R::HandlerFault(_) | R::CustomHandler(_) => vec![exclude],
            R::NotXml { file, .. }
            | R::ConfigSource { file, .. }
            | R::ReadOnly { file }
            | R::NotAFile { file, .. }
            | R::EditRefused { file, .. } => fix(file),
        }
    }
}

impl Plan {
    /// Whether the plan may go ahead: the one place that decides it.
    /// A server that cannot be pushed or was not read blocks, and so does a
    /// lock another push holds, unless the operator asked to break it and
    /// no push of this machine that still runs holds it.
    pub fn verdict(&self) -> PlanVerdict {
        let mut blocks: Vec<Block> = Vec::new();
        for s in &self.servers {
            let reason = match (&s.action, &s.lock_holder) {
                (PlanAction::Blocked(why), _) => why.clone(),
                (_, Some(h)) if !self.break_lock || h.alive_here() => {
                    BlockReason::Locked(Box::new(h.clone()))
                }
                _ => continue,
            };
            let block = Block {
                server: s.server.clone(),
                reason,
            };
            // A server's files share its lock: it blocks once.
            if !blocks.contains(&block) {
                blocks.push(block);
            }
        }
        blocks.extend(self.unread.iter().map(|(server, error)| Block {
            server: server.clone(),
            reason: BlockReason::Unread {
                error: error.clone(),
                site: self.site.clone(),
            },
        }));
        if !blocks.is_empty() {
            PlanVerdict::Blocked(blocks)
        } else if self.writes() == 0 {
            PlanVerdict::NothingToWrite
        } else {
            PlanVerdict::Ready
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::lock::LockInfo;
    use crate::scan::FileProblem;
    use crate::transport::TransportError;

    fn path(p: &str) -> RemotePath {
        RemotePath::parse(p).unwrap()
    }

    fn refused() -> crate::scan::ServerFailure {
        crate::scan::ServerFailure::Unreachable(crate::scan::Unreachable::Connect(Box::new(
            crate::transport::ssh::ConnectError::Refused {
                addr: "10.0.0.2:22".into(),
            },
        )))
    }

    fn holder(host: &str) -> Box<Holder> {
        let mut info = LockInfo::mine("20261126T112045Z-ab12", "Flowtime");
        info.host = host.into();
        Box::new(Holder {
            server: "web02".into(),
            path: path("C:\\inetpub\\Flowtime\\web.farmkey-lock.config"),
            info: Some(info),
            modified: None,
        })
    }

    fn block(reason: BlockReason) -> Block {
        Block {
            server: "web02".into(),
            reason,
        }
    }

    /// A lock of a push of this machine that still runs is only waited
    /// for; any other may be broken on request.
    #[test]
    fn a_lock_is_broken_only_where_its_push_no_longer_runs() {
        let stale = holder("another-jump-host");
        assert_eq!(
            block(BlockReason::Locked(stale.clone())).remedies(),
            vec![Remedy::BreakLock(stale)]
        );
        // This very process holds it.
        let alive = Box::new(Holder {
            info: Some(LockInfo::mine("20261126T112045Z-ab12", "Flowtime")),
            ..*holder("here")
        });
        assert!(alive.alive_here());
        assert_eq!(
            block(BlockReason::Locked(alive.clone())).remedies(),
            vec![Remedy::Wait(alive)]
        );
    }

    #[test]
    fn a_file_at_fault_is_named_as_the_one_to_fix_and_the_server_may_be_left_out() {
        let web = path("C:\\inetpub\\Flowtime\\web.config");
        assert_eq!(
            block(BlockReason::ReadOnly { file: web.clone() }).remedies(),
            vec![
                Remedy::FixFile(web.clone()),
                Remedy::Exclude("web02".into())
            ]
        );
        assert_eq!(
            block(BlockReason::ChangedSinceScan { file: web }).remedies(),
            vec![Remedy::ScanAgain, Remedy::Exclude("web02".into())]
        );
        let unread = BlockReason::Unread {
            error: refused(),
            site: "Flowtime".into(),
        };
        assert_eq!(
            block(unread).remedies(),
            vec![Remedy::ScanAgain, Remedy::Exclude("web02".into())]
        );
    }

    /// The verdict's remedies, each once, in the order of the blocks.
    #[test]
    fn remedies_are_gathered_once() {
        let web = path("C:\\inetpub\\Flowtime\\web.config");
        let v = PlanVerdict::Blocked(vec![
            block(BlockReason::ReadOnly { file: web.clone() }),
            block(BlockReason::ChangedSinceScan { file: web.clone() }),
        ]);
        assert_eq!(v.blocking_servers(), vec!["web02"]);
        assert_eq!(
            v.remedies(),
            vec![
                Remedy::FixFile(web),
                Remedy::Exclude("web02".into()),
                Remedy::ScanAgain
            ]
        );
        assert!(PlanVerdict::Ready.remedies().is_empty());
        assert!(PlanVerdict::NothingToWrite.blocks().is_empty());
    }

    /// One check of each reason's wording (the others assert on values).
    #[test]
    fn each_reason_reads_as_a_sentence_naming_what_is_at_fault() {
        let web = path("C:\\inetpub\\Flowtime\\web.config");
        let keys = path("C:\\inetpub\\Flowtime\\keys.config");
        let cases: Vec<(BlockReason, &str)> = vec![
            (
                BlockReason::Unread {
                    error: refused(),
                    site: "Flowtime".into(),
                },
                "could not be read by the scan (connection refused by 10.0.0.2:22 (is sshd running and listening on that port?)); it may host Flowtime",
            ),
            (
                BlockReason::ConfigUnreadable(FileProblem {
                    path: "C:\\inetpub\\Flowtime\\web.config".into(),
                    fault: Box::new(crate::scan::FileFault::Xml(
                        crate::config::xml::XmlError::Encoding("not XML".into()),
                    )),
                }),
                "its configuration cannot be read: C:\\inetpub\\Flowtime\\web.config: not XML",
            ),
            (
                BlockReason::PathNotWritable {
                    physical_path: "\\\\nas\\share".into(),
                },
                "its physical path \"\\\\\\\\nas\\\\share\" is not a path farmkey can write to",
            ),
            (
                BlockReason::LockUnreadable(TransportError::NotFound { path: web.clone() }),
                "cannot read its lock file: ",
            ),
            (
                BlockReason::Unreadable {
                    file: web.clone(),
                    error: TransportError::NotFound { path: web.clone() },
                },
                "cannot read C:\\inetpub\\Flowtime\\web.config: ",
            ),
            (
                BlockReason::ChangedSinceScan { file: web.clone() },
                "C:\\inetpub\\Flowtime\\web.config changed since the scan; scan again",
            ),
            (
                BlockReason::ConfigSourceMissing {
                    file: keys,
                    named_in: web.clone(),
                },
                "C:\\inetpub\\Flowtime\\keys.config, named by configSource in C:\\inetpub\\Flowtime\\web.config, does not exist",
            ),
            (
                BlockReason::ReadOnly { file: web },
                "C:\\inetpub\\Flowtime\\web.config is read-only (its read-only attribute is set): Windows refuses to replace it; clear it (attrib -r \"C:\\inetpub\\Flowtime\\web.config\") and scan again",
            ),
            (
                BlockReason::Locked(holder("jump9")),
                "web02 is locked by push 20261126T112045Z-ab12",
            ),
        ];
        for (reason, text) in cases {
            let said = reason.to_string();
            assert!(said.starts_with(text), "{said}\n  wanted {text}");
        }
    }
}
