//! Pushing one key set to a site on every server that hosts it: the plan
//! (fail closed: every server of the site, or none), a lock on every
//! server, then per server re-read, backup, stage, swap, verify, and restore
//! on failure; servers already changed are rolled back when one fails or
//! the push is interrupted; the result is re-read from every server.

pub mod apply;
pub mod audit;
pub mod backups;
pub mod diff;
pub mod disclosed;
pub mod error;
pub mod history;
pub mod interrupt;
pub mod lock;
pub mod outcome;
pub mod plan;
pub mod retry;
pub mod saved;
pub mod sessions;
pub mod sign_outs;
mod undo;
pub mod verdict;

use crate::keys::{Decryption, KeySet, Validation};
use crate::paths::RemotePath;
use crate::safe_text::escape;
use crate::transport::ReplaceBehaviour;
use std::fmt;

pub use apply::apply;
pub use disclosed::refuse_disclosed;
pub use error::{Block, BlockReason, PushRefusal, SessionError, StepError, VerifyError};
pub use interrupt::{Interrupt, StopReason};
pub use outcome::{KeysLeft, PushOutcome, PushVerdict, ServerOutcome, ServerResult};
pub use plan::{PlanError, build_plan};
pub use sessions::Sessions;
pub use sign_outs::SignOuts;
pub use verdict::{PlanVerdict, Remedy};

/// Where the key set comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Fresh keys from the OS CSPRNG.
    Generate {
        validation: Validation,
        decryption: Decryption,
    },
    /// The set a server already uses; `None`: the one most servers share.
    Adopt(Option<String>),
    /// A `<machineKey>` element given by the operator.
    Import(KeySet),
    /// No keys: only the session-token handler swap.
    HandlerOnly,
}

#[derive(Debug, Clone)]
pub struct PushRequest {
    pub site: String,
    pub source: KeySource,
    /// Only these servers (default: every server hosting the site, and
    /// every server that could not be read).
    pub servers: Option<Vec<String>>,
    /// Servers left out by name.
    pub exclude: Vec<String>,
    /// Keep servers already changed when a later one fails.
    pub keep_partial: bool,
    /// Break the locks the plan shows (left by a push that no longer runs).
    pub break_lock: bool,
}

impl PushRequest {
    /// Every server of the site, nothing left out, no lock broken.
    pub fn new(site: impl Into<String>, source: KeySource) -> PushRequest {
        PushRequest {
            site: site.into(),
            source,
            servers: None,
            exclude: Vec::new(),
            keep_partial: false,
            break_lock: false,
        }
    }
}

/// One attribute before and after, as fingerprints or algorithm names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub what: &'static str,
    pub before: String,
    pub after: String,
}

/// What the plan does with one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanAction {
    Write,
    /// Already correct: not written (but locked and checked, so that no
    /// one changes it while the others are written).
    Unchanged,
    /// Cannot be pushed, for the reason given: nothing is written anywhere
    /// until it can, or the operator leaves it out by name.
    Blocked(BlockReason),
}

#[derive(Debug, Clone)]
pub struct ServerPlan {
    pub server: String,
    pub file: RemotePath,
    /// SHA-256 of the file at scan time; `None` when it did not exist.
    pub scanned_sha256: Option<String>,
    pub changes: Vec<Change>,
    pub handler_swap: bool,
    pub backup: RemotePath,
    pub staged: RemotePath,
    /// The server's lock for this site, beside the application's
    /// web.config whichever file is written (one lock per server, so that
    /// two pushes of the site always meet), and the lock found there while
    /// planning.
    pub lock: RemotePath,
    pub lock_holder: Option<lock::Holder>,
    /// Claims of the lock found while planning ([`lock::claims`]): a push
    /// that stopped while breaking a lock left each, holding the lock it
    /// broke. Not a lock: named, never removed by another push.
    pub lock_claims: Vec<lock::Holder>,
    /// How the server replaces a file (from its SSH banner).
    pub replace: ReplaceBehaviour,
    pub action: PlanAction,
    /// Key fingerprints before and after.
    pub fingerprints_before: audit::Fingerprints,
    pub fingerprints_after: audit::Fingerprints,
    /// The bytes read while planning and what they become (for diffs).
    pub original: Option<crate::bytes::FileBytes>,
    pub edited: Option<crate::bytes::FileBytes>,
    pub identity_declared_above: bool,
    /// The other files the site's keys and handler were read from on this
    /// server (its web.config, `configSource` files) that no plan of the
    /// server writes, with their SHA-256 at scan time: checked under the
    /// lock and again at the end, as `file` is.
    pub watched: Vec<(RemotePath, Option<String>)>,
}

/// Why a server is left out of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftOut {
    /// `--exclude`, or the console's Leave out.
    ByName,
    /// `--servers` names others.
    NotNamed,
}

/// A server left out of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    pub server: String,
    pub why: LeftOut,
    /// The scan could not read it either.
    pub unread: bool,
}

impl fmt::Display for Excluded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.why {
            LeftOut::ByName => "by name",
            LeftOut::NotNamed => "not among the servers named",
        })?;
        if self.unread {
            f.write_str("; the scan could not read it")?;
        }
        Ok(())
    }
}

/// Everything that will be done, shown before anything is written.
#[derive(Debug, Clone)]
pub struct Plan {
    pub push_id: String,
    /// In the names of the files the push makes: the UTC time and a random
    /// part (`20261126T112045Z-3fa9c1d2`), so that no one can plant a link
    /// or a file at a name before the push creates it.
    pub stamp: String,
    pub site: String,
    pub source: String,
    pub keys: Option<KeySet>,
    pub set_fingerprint: Option<String>,
    pub servers: Vec<ServerPlan>,
    /// Servers the scan could not read (the site may be there too), with
    /// the reason: they block the push unless left out by name.
    pub unread: Vec<(String, crate::scan::ServerFailure)>,
    /// Servers left out, and why they are out.
    pub excluded: Vec<Excluded>,
    pub keep_partial: bool,
    /// The operator asked to break the locks shown.
    pub break_lock: bool,
    /// A push that writes no keys: where it leaves them.
    pub keys_left: Option<outcome::KeysLeft>,
    /// The saved plan this push runs (`farmkey apply`), named in its
    /// audit records.
    pub saved: Option<audit::PlanRef>,
}

impl Plan {
    /// How a file of a server of the plan is named to the operator
    /// ([`file_label`]).
    pub fn label(&self, server: &str, file: &RemotePath) -> String {
        let files: Vec<(&str, String)> = self
            .servers
            .iter()
            .map(|s| (s.server.as_str(), s.file.to_string()))
            .collect();
        file_label(
            files.iter().map(|(s, f)| (*s, f.as_str())),
            server,
            &file.to_string(),
        )
    }

    /// Servers with at least one file to write.
    pub fn writes(&self) -> usize {
        let mut names: Vec<&str> = self
            .servers
            .iter()
            .filter(|s| s.action == PlanAction::Write)
            .map(|s| s.server.as_str())
            .collect();
        names.dedup();
        names.len()
    }
}

/// `a`, `a and b`, `a, b and c`.
pub(crate) fn and_list<S: AsRef<str>>(names: &[S]) -> String {
    let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// What leaving a server out means for the people using the site.
pub fn exclusion_effect(server: &str) -> String {
    format!(
        "it keeps its current keys: users the load balancer moves between {server} and the other servers get a CryptographicException (signed out) until it has the same keys"
    )
}

/// Whether an effective configuration already holds exactly this key set,
/// algorithms spelled as ASP.NET accepts them (a `sha1` gets rewritten).
pub(crate) fn same_keys(eff: &crate::config::effective::Effective, keys: &KeySet) -> bool {
    let mk = &eff.machine_key;
    let key_ok = |state: crate::config::machine_key::KeyState, want: &crate::keys::KeyText| {
        state.key().is_some_and(|k| k.same_key(want)) && state.modifiers().is_empty()
    };
    // An element ASP.NET refuses is never already correct.
    mk.refused.is_empty()
        && key_ok(mk.validation_key_state(), &keys.validation_key)
        && key_ok(mk.decryption_key_state(), &keys.decryption_key)
        // Names compare exactly: ASP.NET refuses `sha1`, so a file holding
        // it is not already correct.
        && mk
            .validation
            .value()
            .is_some_and(|v| Validation::parse(v).is_ok_and(|v| v == keys.validation))
        && mk
            .decryption
            .value()
            .is_some_and(|v| Decryption::parse(v).is_ok_and(|d| d == keys.decryption))
}

/// How a file of a server is named to the operator among `files` (server,
/// file) of one push: the server alone, or with the file's name where the
/// push concerns several files of that server (its web.config and a
/// `configSource` file).
pub fn file_label<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
    server: &str,
    file: &str,
) -> String {
    let several = files
        .into_iter()
        .any(|(s, f)| s == server && !crate::paths::same_name(f, file));
    if several {
        let name = file.rsplit(['\\', '/']).next().unwrap_or(file);
        format!("{server} {name}")
    } else {
        server.to_string()
    }
}

/// `web.config` → `web.<stamp>.farmkey<suffix>.config` beside it.
pub fn sibling(file: &RemotePath, stamp: &str, suffix: &str) -> RemotePath {
    let name = file.file_name().unwrap_or("web.config");
    let stem = name.strip_suffix(".config").unwrap_or(name);
    file.with_file_name(&format!("{stem}.{stamp}.farmkey{suffix}.config"))
        .unwrap_or_else(|_| file.clone())
}

/// `20261126T112045Z` for now.
pub fn utc_stamp() -> String {
    let t = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    t.replace(['-', ':'], "")
}

/// `bytes` random bytes from the OS CSPRNG, as hex.
pub(crate) fn random_hex(bytes: usize) -> String {
    use rand::TryRng;
    let mut b = vec![0u8; bytes];
    let _ = rand::rngs::SysRng.try_fill_bytes(&mut b);
    hex::encode(b)
}

/// For the names of the files a push or a rollback makes beside a
/// configuration file: `20261126T112045Z-3fa9c1d2` (time, then 32 random
/// bits that cannot be guessed ahead).
pub fn file_stamp() -> String {
    format!("{}-{}", utc_stamp(), random_hex(4))
}

impl Plan {
    /// The plan as lines of text, each marked when it needs the operator's
    /// attention (a server that cannot be pushed, a lock, why nothing is
    /// written, the restart). The remedies are not in it: each front end
    /// words them as it offers them.
    pub fn lines(&self) -> Vec<(bool, String)> {
        let verdict = self.verdict();
        let blocks = verdict.blocks();
        let mut out: Vec<(bool, String)> = Vec::new();
        // Names, paths and values from servers are made safe for a
        // terminal, line by line: none can start a line of its own either.
        let mut say =
            |attention: bool, text: String| out.push((attention, escape(&text).into_owned()));
        say(
            false,
            format!("Push {} to {}: {}", self.push_id, self.site, self.source),
        );
        if let Some(fp) = &self.set_fingerprint {
            say(
                false,
                format!("Key set {fp} (fingerprints only; keys are never shown)"),
            );
        }
        for s in &self.servers {
            match &s.action {
                PlanAction::Unchanged => say(
                    false,
                    format!("  {:<10} unchanged: already correct, not written", s.server),
                ),
                PlanAction::Blocked(why) => {
                    say(true, format!("  {:<10} CANNOT BE PUSHED: {why}", s.server))
                }
                PlanAction::Write => {
                    say(false, format!("  {:<10} {}", s.server, s.file));
                    for c in &s.changes {
                        let same = if c.before == c.after {
                            "  (unchanged)"
                        } else {
                            ""
                        };
                        say(
                            false,
                            format!(
                                "  {:<10}   {:<14} {} -> {}{same}",
                                "", c.what, c.before, c.after
                            ),
                        );
                    }
                    if s.handler_swap {
                        say(
                            false,
                            format!(
                                "  {:<10}   {:<14} MachineKeySessionSecurityTokenHandler swap added",
                                "", "session tokens"
                            ),
                        );
                    }
                    let backup = if s.scanned_sha256.is_some() {
                        s.backup.to_string()
                    } else {
                        "(none: the file is created)".to_string()
                    };
                    say(false, format!("  {:<10}   {:<14} {backup}", "", "backup"));
                }
            }
            if let ReplaceBehaviour::DeleteThenRename { version } = &s.replace
                && s.action != PlanAction::Unchanged
            {
                say(
                    false,
                    format!(
                        "  {:<10}   {:<14} {version} replaces a file by deleting it, then renaming: web.config is absent for a moment (not atomic); farmkey verifies it after the swap",
                        "", "swap"
                    ),
                );
            }
            for c in &s.lock_claims {
                let what = c.info.as_ref().map_or_else(
                    || "a file farmkey cannot read".to_string(),
                    |i| format!("the lock of push {} of {} on {}", i.push_id, i.user, i.host),
                );
                say(
                    true,
                    format!(
                        "  {:<10}   {:<14} {}: left by a push that stopped while breaking a lock; it holds {what} and is no lock: remove it once no push of the site runs",
                        "", "lock claim", c.path
                    ),
                );
            }
            if let Some(h) = &s.lock_holder {
                // Worded by the verdict's remedy for the lock, if it blocks.
                let remedy = blocks
                    .iter()
                    .filter(|b| b.server == s.server && matches!(b.reason, BlockReason::Locked(_)))
                    .flat_map(|b| b.remedies())
                    .next();
                match remedy {
                    Some(Remedy::Wait(_)) => say(
                        true,
                        format!(
                            "  {:<10}   {:<14} {h} (a push of this machine that still runs: never broken)",
                            "", "LOCKED"
                        ),
                    ),
                    Some(_) => say(true, format!("  {:<10}   {:<14} {h}", "", "LOCKED")),
                    None => say(
                        false,
                        format!("  {:<10}   {:<14} {h}: broken, as asked", "", "lock"),
                    ),
                }
            }
        }
        for b in blocks
            .iter()
            .filter(|b| matches!(b.reason, BlockReason::Unread { .. }))
        {
            say(
                true,
                format!("  {:<10} CANNOT BE PUSHED: {}", b.server, b.reason),
            );
        }
        for e in &self.excluded {
            say(
                false,
                format!(
                    "  {:<10} left out ({e}): {}",
                    e.server,
                    exclusion_effect(&e.server)
                ),
            );
        }
        if let PlanVerdict::Blocked(_) = &verdict {
            // What to do about it is the front end's to word (options,
            // buttons).
            say(
                true,
                format!(
                    "Blocked: nothing is written while {} cannot be pushed.",
                    and_list(&verdict.blocking_servers())
                ),
            );
        } else if verdict == PlanVerdict::Ready {
            say(
                true,
                format!(
                    "Saving web.config restarts the application on {} server{}: in-process sessions there are lost once.",
                    self.writes(),
                    if self.writes() == 1 { "" } else { "s" }
                ),
            );
        }
        out
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (_, line) in self.lines() {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_keep_the_config_extension() {
        let f = RemotePath::parse("C:\\inetpub\\Flowtime\\web.config").unwrap();
        assert_eq!(
            sibling(&f, "20261126T112045Z", "").to_string(),
            "C:\\inetpub\\Flowtime\\web.20261126T112045Z.farmkey.config"
        );
        assert_eq!(
            sibling(&f, "20261126T112045Z", "-new").file_name(),
            Some("web.20261126T112045Z.farmkey-new.config")
        );
        let stamp = utc_stamp();
        assert_eq!(stamp.len(), 16, "{stamp}");
        assert!(stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T');
        let (a, b) = (file_stamp(), file_stamp());
        assert!(a.starts_with(&stamp[..8]) && a.len() == 25, "{a}");
        assert_ne!(a[17..], b[17..], "the random part differs");
    }
}
