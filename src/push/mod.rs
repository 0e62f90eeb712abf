//! Pushing one key set to a site on every server that hosts it: the plan,
//! then per server re-read, edit, backup, stage, swap, verify, and restore
//! on failure; servers already changed are rolled back when one fails.

pub mod apply;
pub mod audit;
pub mod diff;
pub mod disclosed;
pub mod plan;
pub mod sessions;

use crate::keys::{DecryptionAlg, KeySet, ValidationAlg};
use crate::paths::RemotePath;
use std::fmt;

pub use apply::{PushOutcome, ServerOutcome, ServerResult, apply};
pub use disclosed::refuse_disclosed;
pub use plan::{PlanError, build_plan};
pub use sessions::Sessions;

/// Where the key set comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Fresh keys from the OS CSPRNG.
    Generate {
        validation: ValidationAlg,
        decryption: DecryptionAlg,
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
    /// Only these servers (default: every server hosting the site).
    pub servers: Option<Vec<String>>,
    /// Keep servers already changed when a later one fails.
    pub keep_partial: bool,
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
    /// Already correct: not written.
    Unchanged,
    /// Cannot be pushed; the reason says why.
    Skip(String),
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
    pub action: PlanAction,
    /// Key fingerprints before and after (validation, decryption).
    pub fingerprints_before: (Option<String>, Option<String>),
    pub fingerprints_after: (Option<String>, Option<String>),
    /// The bytes read while planning and what they become (for diffs).
    pub original: Option<crate::bytes::FileBytes>,
    pub edited: Option<crate::bytes::FileBytes>,
    pub identity_declared_above: bool,
}

/// Everything that will be done, shown before anything is written.
#[derive(Debug, Clone)]
pub struct Plan {
    pub push_id: String,
    /// UTC stamp in backup names: `20261126T112045Z`.
    pub stamp: String,
    pub site: String,
    pub source: String,
    pub keys: Option<KeySet>,
    pub set_fingerprint: Option<String>,
    pub servers: Vec<ServerPlan>,
    /// Servers that could not be read: the site may be there too.
    pub unread: Vec<String>,
    pub keep_partial: bool,
}

impl Plan {
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

/// Whether an effective configuration already holds exactly this key set,
/// algorithms spelled as ASP.NET accepts them (a `sha1` gets rewritten).
pub(crate) fn same_keys(eff: &crate::config::effective::Effective, keys: &KeySet) -> bool {
    let mk = &eff.machine_key;
    let key_ok = |state: crate::config::effective::KeyState, want: &crate::keys::KeyText| {
        state.key().is_some_and(|k| k.same_key(want)) && state.modifiers().is_empty()
    };
    key_ok(mk.validation_key_state(), &keys.validation_key)
        && key_ok(mk.decryption_key_state(), &keys.decryption_key)
        && mk.validation.value() == Some(&keys.validation)
        && mk.decryption.value() == Some(&keys.decryption)
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

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Push {} to {}: {}", self.push_id, self.site, self.source)?;
        if let Some(fp) = &self.set_fingerprint {
            writeln!(f, "Key set {fp} (fingerprints only; keys are never shown)")?;
        }
        for s in &self.servers {
            match &s.action {
                PlanAction::Unchanged => {
                    writeln!(
                        f,
                        "  {:<10} unchanged: already correct, not written",
                        s.server
                    )?;
                }
                PlanAction::Skip(why) => writeln!(f, "  {:<10} skipped: {why}", s.server)?,
                PlanAction::Write => {
                    writeln!(f, "  {:<10} {}", s.server, s.file)?;
                    for c in &s.changes {
                        let same = if c.before == c.after {
                            "  (unchanged)"
                        } else {
                            ""
                        };
                        writeln!(
                            f,
                            "  {:<10}   {:<14} {} -> {}{same}",
                            "", c.what, c.before, c.after
                        )?;
                    }
                    if s.handler_swap {
                        writeln!(
                            f,
                            "  {:<10}   {:<14} MachineKeySessionSecurityTokenHandler swap added",
                            "", "session tokens"
                        )?;
                    }
                    let backup = if s.scanned_sha256.is_some() {
                        s.backup.to_string()
                    } else {
                        "(none: the file is created)".to_string()
                    };
                    writeln!(f, "  {:<10}   {:<14} {backup}", "", "backup")?;
                }
            }
        }
        for u in &self.unread {
            writeln!(
                f,
                "  {u:<10} not read by the scan: if it hosts {}, it is not pushed",
                self.site
            )?;
        }
        if self.writes() > 0 {
            writeln!(
                f,
                "Saving web.config restarts the application on {} server{}: in-process sessions there are lost once.",
                self.writes(),
                if self.writes() == 1 { "" } else { "s" }
            )?;
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
    }
}
