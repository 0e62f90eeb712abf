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
