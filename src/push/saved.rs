//! Saved plans: `farmkey push --save-plan FILE` writes what a push would
//! do, for a change board to read, and `farmkey apply FILE` runs it later
//! only if every file still reads as planned. The file holds hashes,
//! fingerprints and masked diffs, never key text; a tag over its content
//! makes an altered plan refused.

use super::audit::{PlanRef, local_user};
use super::diff::masked_diff;
use super::{Plan, PlanAction, PushRequest};
use crate::inventory::Server;
use crate::keys::{KeySet, sha256_hex};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The version of the file's layout; another is refused.
pub const FORMAT: u32 = 1;

/// A plan older than this asks before it is applied (`--max-age`).
pub const DEFAULT_MAX_AGE_DAYS: u64 = 7;

/// The plan as saved. Every value is covered by the tag; comments and
/// layout are not (they carry no meaning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: u32,
    /// The id the push had when planned (`apply` runs under a new push id
    /// and names this one in its audit records).
    pub id: String,
    pub site: String,
    /// Where the keys came from, as the plan said it.
    pub source: String,
    /// `user@host`.
    pub planned_by: String,
    /// RFC 3339, UTC.
    pub planned_at: String,
    pub farmkey_version: String,
    /// `--servers`, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_servers: Option<Vec<String>>,
    /// `--exclude`, as given.
    #[serde(default)]
    pub exclude: Vec<String>,
    pub keep_partial: bool,
    /// A handler-only plan: where it leaves the keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_left: Option<String>,
    pub sign_outs: SavedSignOuts,
    /// The key set written, by fingerprint; none for a handler-only plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_set: Option<SavedKeySet>,
    /// Every server of the push as the inventory named it.
    pub servers: Vec<SavedServer>,
    #[serde(default)]
    pub excluded: Vec<SavedExcluded>,
    pub files: Vec<SavedFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<Tag>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSignOuts {
    pub keep: Vec<String>,
    pub signed_out: Vec<String>,
    pub unknown: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedKeySet {
    pub fingerprint: String,
    pub validation_key: String,
    pub decryption_key: String,
    pub validation: String,
    pub decryption: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedServer {
    pub name: String,
    /// `host[:port]`, or the folder of a `local_root` server.
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedExcluded {
    pub server: String,
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SavedAction {
    Write,
    /// Already correct: locked and checked, not written.
    Unchanged,
}

impl fmt::Display for SavedAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SavedAction::Write => "written",
            SavedAction::Unchanged => "left unchanged",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedFile {
    pub server: String,
    pub file: String,
    pub action: SavedAction,
    /// SHA-256 of the bytes read; absent: the file did not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_read: Option<String>,
    /// SHA-256 of the bytes the push writes (`write` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_written: Option<String>,
    pub handler_swap: bool,
    #[serde(default)]
    pub changes: Vec<SavedChange>,
    /// The other files the site's configuration was read from on this
    /// server, checked as this one is.
    #[serde(default)]
    pub watched: Vec<SavedWatched>,
    /// The edit as a unified diff, every key shown by its fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedChange {
    pub what: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedWatched {
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

crate::spelled::spelled! {
    /// How the tag is made.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum TagKind {
        /// HMAC-SHA256 keyed by a key derived from the key set: only
        /// someone holding the keys can make it.
        HmacSha256 = "hmac-sha256",
        /// A plain SHA-256 of the content (a plan without keys): detects
        /// corruption and careless edits, not a deliberate forgery.
        Sha256 = "sha256",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub kind: TagKind,
    pub value: String,
}

/// Why a saved plan cannot be used as it is.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("not a farmkey plan: {0}")]
    Parse(String),
    #[error("plan format {found} is not the one this farmkey reads ({FORMAT})")]
    Format { found: u32 },
    #[error("it has no tag: it was not saved by farmkey push --save-plan")]
    Untagged,
    #[error(
        "it was altered since it was saved: its tag does not match its content (a plan with keys is tagged with them: save it again with `farmkey push --save-plan`)"
    )]
    Tampered,
    #[error("it writes keys: give them as when it was planned (--keys FILE or --adopt [SERVER])")]
    KeysNeeded,
    #[error("it writes no keys (handler only): give no keys")]
    KeysNotWanted,
    /// The keys given are not the plan's: which differ, by fingerprint.
    #[error(
        "the keys given are not the plan's: {}",
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    OtherKeys(Vec<KeyMismatch>),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// One part of the key set that differs from the plan's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMismatch {
    pub what: &'static str,
    pub planned: String,
    pub given: String,
}

impl fmt::Display for KeyMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = if self.what.ends_with("Key") {
            "fingerprint "
        } else {
            ""
        };
        write!(
            f,
            "{} {shown}{} planned, {} given",
            self.what, self.planned, self.given
        )
    }
}

/// What a key set looks like in a plan: fingerprints and names.
fn saved_keys(k: &KeySet) -> SavedKeySet {
    SavedKeySet {
        fingerprint: k.set_fingerprint(),
        validation_key: k.validation_key.fingerprint(),
        decryption_key: k.decryption_key.fingerprint(),
        validation: k.validation.to_string(),
        decryption: k.decryption.to_string(),
    }
}

/// The HMAC key for a key set's plans: SHA-256 over a label and the key
/// set (keys as ASP.NET compares them). Derived so that the tag is never
/// made with a key ASP.NET uses, and says nothing about it.
fn tag_key(k: &KeySet) -> zeroize::Zeroizing<Vec<u8>> {
    let mut h = Sha256::new();
    h.update(b"farmkey saved plan tag v1\0");
    for part in [
        k.validation_key.expose().to_ascii_uppercase(),
        k.decryption_key.expose().to_ascii_uppercase(),
        k.validation.to_string(),
        k.decryption.to_string(),
    ] {
        let part = zeroize::Zeroizing::new(part);
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    zeroize::Zeroizing::new(h.finalize().to_vec())
}

fn hmac(k: &KeySet, body: &[u8]) -> hmac::Hmac<Sha256> {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&tag_key(k))
        .expect("HMAC takes a key of any length");
    mac.update(body);
    mac
}

impl SavedPlan {
    /// `plan` as saved: planned by `planned_by` at `planned_at`, the
    /// servers' addresses from `inventory`. Untagged: see [`Self::seal`].
    pub fn of(
        plan: &Plan,
        req: &PushRequest,
        inventory: &[Server],
        planned_by: String,
        planned_at: String,
    ) -> SavedPlan {
        let sign_outs = plan.sign_outs();
        let mut names: Vec<&str> = plan.servers.iter().map(|s| s.server.as_str()).collect();
        names.dedup();
        let servers = names
            .iter()
            .map(|n| SavedServer {
                name: n.to_string(),
                address: inventory
                    .iter()
                    .find(|s| s.name == *n)
                    .map(Server::address)
                    .unwrap_or_default(),
            })
            .collect();
        let files = plan
            .servers
            .iter()
            .map(|s| {
                let write = s.action == PlanAction::Write;
                let edited = s.edited.as_ref().filter(|_| write);
                SavedFile {
                    server: s.server.clone(),
                    file: s.file.to_string(),
                    action: if write {
                        SavedAction::Write
                    } else {
                        SavedAction::Unchanged
                    },
                    sha256_read: s.scanned_sha256.clone(),
                    sha256_written: edited.map(|b| b.sha256()),
                    handler_swap: write && s.handler_swap,
                    changes: if write {
                        s.changes
                            .iter()
                            .map(|c| SavedChange {
                                what: c.what.to_string(),
                                before: c.before.clone(),
                                after: c.after.clone(),
                            })
                            .collect()
                    } else {
                        Vec::new()
                    },
                    watched: s
                        .watched
                        .iter()
                        .map(|(f, sha)| SavedWatched {
                            file: f.to_string(),
                            sha256: sha.clone(),
                        })
                        .collect(),
                    diff: edited.map(|after| {
                        masked_diff(
                            &format!("{}:{}", s.server, s.file),
                            s.original.as_deref().unwrap_or_default(),
                            after,
                        )
                    }),
                }
            })
            .collect();
        SavedPlan {
            format: FORMAT,
            id: plan.push_id.clone(),
            site: plan.site.clone(),
            source: plan.source.clone(),
            planned_by,
            planned_at,
            farmkey_version: env!("CARGO_PKG_VERSION").to_string(),
            only_servers: req.servers.clone(),
            exclude: req.exclude.clone(),
            keep_partial: req.keep_partial,
            keys_left: plan.keys_left.as_ref().map(ToString::to_string),
            sign_outs: SavedSignOuts {
                keep: sign_outs.keep,
                signed_out: sign_outs.signed_out,
                unknown: sign_outs.unknown,
            },
            key_set: plan.keys.as_ref().map(saved_keys),
            servers,
            excluded: plan
                .excluded
                .iter()
                .map(|e| SavedExcluded {
                    server: e.server.clone(),
                    why: e.to_string(),
                })
                .collect(),
            files,
            tag: None,
        }
    }

    /// Who plans now: `user@host`.
    pub fn planner() -> String {
        format!("{}@{}", local_user(), super::lock::host_name())
    }

    /// The content the tag covers: every value but the tag.
    fn body(&self) -> String {
        let mut body = self.clone();
        body.tag = None;
        toml::to_string(&body).expect("a plan serializes")
    }

    /// SHA-256 of the content: how the audit log names the plan.
    pub fn digest(&self) -> String {
        sha256_hex(self.body().as_bytes())
    }

    /// The plan tagged: with the key set it writes (`keys`, which must be
    /// the plan's), or a digest for a plan without keys.
    pub fn seal(mut self, keys: Option<&KeySet>) -> SavedPlan {
        use hmac::Mac;
        let body = self.body();
        self.tag = Some(match keys {
            Some(k) => Tag {
                kind: TagKind::HmacSha256,
                value: hex::encode(hmac(k, body.as_bytes()).finalize().into_bytes()),
            },
            None => Tag {
                kind: TagKind::Sha256,
                value: sha256_hex(body.as_bytes()),
            },
        });
        self
    }

    /// Whether `keys` are the plan's and its tag matches its content.
    pub fn check(&self, keys: Option<&KeySet>) -> Result<(), SavedPlanError> {
        use hmac::Mac;
        let tag = self.tag.as_ref().ok_or(SavedPlanError::Untagged)?;
        let body = self.body();
        match (&self.key_set, keys) {
            (Some(_), None) => return Err(SavedPlanError::KeysNeeded),
            (None, Some(_)) => return Err(SavedPlanError::KeysNotWanted),
            (Some(planned), Some(k)) => {
                let ok = tag.kind == TagKind::HmacSha256
                    && hex::decode(&tag.value)
                        .is_ok_and(|t| hmac(k, body.as_bytes()).verify_slice(&t).is_ok());
                if ok {
                    return Ok(());
                }
                // Named by fingerprint; equal fingerprints with a wrong
                // tag: the content was altered (or 32 bits collided).
                let mismatches = key_mismatches(planned, &saved_keys(k));
                if !mismatches.is_empty() {
                    return Err(SavedPlanError::OtherKeys(mismatches));
                }
                return Err(SavedPlanError::Tampered);
            }
            (None, None) => {
                if tag.kind != TagKind::Sha256 || tag.value != sha256_hex(body.as_bytes()) {
                    return Err(SavedPlanError::Tampered);
                }
            }
        }
        Ok(())
    }

    /// The file's text: a header for its reader, then the plan.
    pub fn to_text(&self) -> String {
        format!(
            "# farmkey saved plan: what `farmkey apply` will do, and nothing else.\n\
             # No key text: keys by fingerprint, files by SHA-256, diffs with keys masked.\n\
             # The tag covers every value below; an altered plan is refused.\n\n{}",
            toml::to_string(self).expect("a plan serializes")
        )
    }

    pub fn parse(text: &str) -> Result<SavedPlan, SavedPlanError> {
        #[derive(Deserialize)]
        struct Version {
            format: u32,
        }
        let v: Version =
            toml::from_str(text).map_err(|e| SavedPlanError::Parse(e.message().to_string()))?;
        if v.format != FORMAT {
            return Err(SavedPlanError::Format { found: v.format });
        }
        toml::from_str(text).map_err(|e| SavedPlanError::Parse(e.message().to_string()))
    }

    pub fn load(path: &Path) -> Result<SavedPlan, SavedPlanError> {
        SavedPlan::parse(&std::fs::read_to_string(path)?)
    }

    /// Writes the plan to `path` whole or not at all (a temporary file
    /// beside it, then linked or renamed into place). An existing file is
    /// kept unless `replace`: a plan on a change ticket is never
    /// overwritten by accident.
    pub fn write(&self, path: &Path, replace: bool) -> std::io::Result<()> {
        use std::io::Write;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".farmkey-plan")
            .tempfile_in(dir)?;
        tmp.write_all(self.to_text().as_bytes())?;
        tmp.as_file().sync_all()?;
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        if replace {
            tmp.persist(path).map_err(|e| e.error)?;
        } else {
            tmp.persist_noclobber(path).map_err(|e| e.error)?;
        }
        Ok(())
    }

    /// How the audit log names the plan read from `file`.
    pub fn reference(&self, file: &Path) -> PlanRef {
        PlanRef {
            file: file.display().to_string(),
            id: self.id.clone(),
            sha256: self.digest(),
        }
    }

    /// How long ago it was planned (zero if in the future; `None` if its
    /// time does not read).
    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        let at = humantime::parse_rfc3339(&self.planned_at).ok()?;
        Some(now.duration_since(at).unwrap_or_default())
    }

    /// The request that plans the same push again, keys from `source`.
    pub fn request(&self, source: super::KeySource, break_lock: bool) -> PushRequest {
        PushRequest {
            site: self.site.clone(),
            source,
            servers: self.only_servers.clone(),
            exclude: self.exclude.clone(),
            keep_partial: self.keep_partial,
            break_lock,
        }
    }

    /// Servers of the plan the inventory no longer has, or has at another
    /// address.
    pub fn inventory_changes(&self, inventory: &[Server]) -> Vec<Difference> {
        self.servers
            .iter()
            .filter_map(|s| match inventory.iter().find(|i| i.name == s.name) {
                None => Some(Difference::NotInInventory {
                    server: s.name.clone(),
                }),
                Some(i) if i.address() != s.address => Some(Difference::AddressChanged {
                    server: s.name.clone(),
                    planned: s.address.clone(),
                    now: i.address(),
                }),
                Some(_) => None,
            })
            .collect()
    }

    /// Everything `now`, the same push planned again from a fresh scan,
    /// does otherwise than this plan: each server and file that differs.
    /// None: `now` is this plan, byte for byte.
    pub fn differences(&self, now: &Plan) -> Vec<Difference> {
        let mut out = Vec::new();
        for (server, why) in &now.unread {
            out.push(Difference::Unread {
                server: server.clone(),
                why: why.to_string(),
            });
        }
        let found = |server: &str, file: &str| {
            now.servers
                .iter()
                .find(|s| s.server == server && s.file.to_string() == file)
        };
        for f in &self.files {
            let (server, file) = (f.server.clone(), f.file.clone());
            let Some(sp) = found(&f.server, &f.file) else {
                out.push(Difference::Dropped { server, file });
                continue;
            };
            if sp.scanned_sha256.is_some() && sp.scanned_sha256 == f.sha256_written {
                out.push(Difference::AlreadyWritten { server, file });
                continue;
            }
            if let Some(d) = Difference::of_hash(&server, &file, &f.sha256_read, &sp.scanned_sha256)
            {
                out.push(d);
                continue;
            }
            for w in &f.watched {
                let now_sha = sp
                    .watched
                    .iter()
                    .find(|(p, _)| p.to_string() == w.file)
                    .map(|(_, sha)| sha.clone());
                match now_sha {
                    None => out.push(Difference::Dropped {
                        server: server.clone(),
                        file: w.file.clone(),
                    }),
                    Some(sha) => out.extend(Difference::of_hash(&server, &w.file, &w.sha256, &sha)),
                }
            }
            for (p, _) in &sp.watched {
                let p = p.to_string();
                if !f.watched.iter().any(|w| w.file == p) {
                    out.push(Difference::NewFile {
                        server: server.clone(),
                        file: p,
                    });
                }
            }
            let now_action = match &sp.action {
                PlanAction::Write => SavedAction::Write,
                PlanAction::Unchanged => SavedAction::Unchanged,
                PlanAction::Blocked(why) => {
                    out.push(Difference::Blocked {
                        server,
                        file,
                        why: why.to_string(),
                    });
                    continue;
                }
            };
            if now_action != f.action {
                out.push(Difference::Action {
                    server,
                    file,
                    planned: f.action,
                    now: now_action,
                });
                continue;
            }
            let written = sp
                .edited
                .as_ref()
                .filter(|_| now_action == SavedAction::Write)
                .map(|b| b.sha256());
            if written != f.sha256_written {
                out.push(Difference::WrittenOtherwise {
                    server,
                    file,
                    planned: f.sha256_written.clone(),
                    now: written,
                });
            }
        }
        for sp in &now.servers {
            let file = sp.file.to_string();
            if !self
                .files
                .iter()
                .any(|f| f.server == sp.server && f.file == file)
            {
                out.push(Difference::NewFile {
                    server: sp.server.clone(),
                    file,
                });
            }
        }
        out
    }
}

/// Which parts of two key sets differ.
fn key_mismatches(planned: &SavedKeySet, given: &SavedKeySet) -> Vec<KeyMismatch> {
    [
        (
            "validationKey",
            &planned.validation_key,
            &given.validation_key,
        ),
        (
            "decryptionKey",
            &planned.decryption_key,
            &given.decryption_key,
        ),
        ("validation", &planned.validation, &given.validation),
        ("decryption", &planned.decryption, &given.decryption),
    ]
    .into_iter()
    .filter(|(_, p, g)| p != g)
    .map(|(what, p, g)| KeyMismatch {
        what,
        planned: p.clone(),
        given: g.clone(),
    })
    .collect()
}

/// One thing that is not as planned: the plan is not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    NotInInventory {
        server: String,
    },
    AddressChanged {
        server: String,
        planned: String,
        now: String,
    },
    /// The scan could not read it now.
    Unread {
        server: String,
        why: String,
    },
    Changed {
        server: String,
        file: String,
        planned: String,
        now: String,
    },
    Gone {
        server: String,
        file: String,
    },
    /// It holds what the plan writes: applied already.
    AlreadyWritten {
        server: String,
        file: String,
    },
    /// A file the plan found absent exists now.
    Appeared {
        server: String,
        file: String,
    },
    /// Part of the site's files now, not in the plan.
    NewFile {
        server: String,
        file: String,
    },
    /// In the plan, no longer part of the push.
    Dropped {
        server: String,
        file: String,
    },
    Blocked {
        server: String,
        file: String,
        why: String,
    },
    Action {
        server: String,
        file: String,
        planned: SavedAction,
        now: SavedAction,
    },
    /// Read as planned, but the edit would write other bytes (another
    /// farmkey version edits otherwise).
    WrittenOtherwise {
        server: String,
        file: String,
        planned: Option<String>,
        now: Option<String>,
    },
}

impl Difference {
    fn of_hash(
        server: &str,
        file: &str,
        planned: &Option<String>,
        now: &Option<String>,
    ) -> Option<Difference> {
        let (server, file) = (server.to_string(), file.to_string());
        match (planned, now) {
            (a, b) if a == b => None,
            (Some(_), None) => Some(Difference::Gone { server, file }),
            (None, Some(_)) => Some(Difference::Appeared { server, file }),
            (Some(p), Some(n)) => Some(Difference::Changed {
                server,
                file,
                planned: p.clone(),
                now: n.clone(),
            }),
            (None, None) => None,
        }
    }

    /// The server it concerns.
    pub fn server(&self) -> &str {
        match self {
            Difference::NotInInventory { server }
            | Difference::AddressChanged { server, .. }
            | Difference::Unread { server, .. }
            | Difference::Changed { server, .. }
            | Difference::Gone { server, .. }
            | Difference::AlreadyWritten { server, .. }
            | Difference::Appeared { server, .. }
            | Difference::NewFile { server, .. }
            | Difference::Dropped { server, .. }
            | Difference::Blocked { server, .. }
            | Difference::Action { server, .. }
            | Difference::WrittenOtherwise { server, .. } => server,
        }
    }
}

/// The first 12 hex digits of a SHA-256, for a line of text.
fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::NotInInventory { server } => {
                write!(f, "{server}: no longer in the inventory")
            }
            Difference::AddressChanged {
                server,
                planned,
                now,
            } => write!(
                f,
                "{server}: its address in the inventory changed ({planned} planned, {now} now)"
            ),
            Difference::Unread { server, why } => write!(f, "{server}: could not be read: {why}"),
            Difference::Changed {
                server,
                file,
                planned,
                now,
            } => write!(
                f,
                "{server} {file}: changed since the plan (SHA-256 {} planned, {} now)",
                short(planned),
                short(now)
            ),
            Difference::Gone { server, file } => write!(f, "{server} {file}: gone since the plan"),
            Difference::AlreadyWritten { server, file } => write!(
                f,
                "{server} {file}: holds what the plan writes already (applied before?)"
            ),
            Difference::Appeared { server, file } => write!(
                f,
                "{server} {file}: exists now; the plan found none (it would have created it)"
            ),
            Difference::NewFile { server, file } => write!(
                f,
                "{server} {file}: part of the site's files now, not in the plan"
            ),
            Difference::Dropped { server, file } => write!(
                f,
                "{server} {file}: in the plan, no longer part of the site's files"
            ),
            Difference::Blocked { server, file, why } => {
                write!(f, "{server} {file}: cannot be pushed now: {why}")
            }
            Difference::Action {
                server,
                file,
                planned,
                now,
            } => write!(f, "{server} {file}: planned to be {planned}, now {now}"),
            Difference::WrittenOtherwise {
                server,
                file,
                planned,
                now,
            } => write!(
                f,
                "{server} {file}: read as planned, but would now be written otherwise (SHA-256 {} planned, {} now)",
                planned.as_deref().map_or("none", short),
                now.as_deref().map_or("none", short)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Decryption, KeyText, Validation};

    fn keys(v: &str) -> KeySet {
        KeySet {
            validation_key: KeyText::new(v.repeat(128 / v.len())),
            decryption_key: KeyText::new("0123456789ABCDEF".repeat(4)),
            validation: Validation::HmacSha256,
            decryption: Decryption::Aes,
        }
    }

    fn plan(k: Option<&KeySet>) -> SavedPlan {
        SavedPlan {
            format: FORMAT,
            id: "20261207T042000-ab12".into(),
            site: "Flowtime".into(),
            source: "imported keys (HMACSHA256 + AES)".into(),
            planned_by: "alice@jump1".into(),
            planned_at: "2026-12-07T04:20:00Z".into(),
            farmkey_version: "0.1.0".into(),
            only_servers: None,
            exclude: vec!["web03".into()],
            keep_partial: false,
            keys_left: None,
            sign_outs: SavedSignOuts {
                keep: vec![],
                signed_out: vec!["web01".into(), "web02".into()],
                unknown: vec![],
            },
            key_set: k.map(saved_keys),
            servers: vec![SavedServer {
                name: "web01".into(),
                address: "10.0.0.11".into(),
            }],
            excluded: vec![SavedExcluded {
                server: "web03".into(),
                why: "by name".into(),
            }],
            files: vec![SavedFile {
                server: "web01".into(),
                file: "C:\\inetpub\\Flowtime\\web.config".into(),
                action: SavedAction::Write,
                sha256_read: Some("aa".repeat(32)),
                sha256_written: Some("bb".repeat(32)),
                handler_swap: true,
                changes: vec![SavedChange {
                    what: "validationKey".into(),
                    before: "1a2b3c4d".into(),
                    after: "5e6f7a8b".into(),
                }],
                watched: vec![],
                diff: Some("--- a\n+++ b\n-<machineKey validationKey=\"[key 1a2b3c4d]\" />\n+<machineKey validationKey=\"[key 5e6f7a8b]\" />\n".into()),
            }],
            tag: None,
        }
    }

    #[test]
    fn a_saved_plan_reads_back_as_written_and_its_tag_holds() {
        let k = keys("89ABCDEF");
        let p = plan(Some(&k)).seal(Some(&k));
        let text = p.to_text();
        let back = SavedPlan::parse(&text).unwrap();
        assert_eq!(back, p);
        back.check(Some(&k)).unwrap();
        assert_eq!(back.tag.as_ref().unwrap().kind, TagKind::HmacSha256);
        // Readable: the reviewer sees the site, the hashes and the diff.
        assert!(text.contains("site = \"Flowtime\""), "{text}");
        assert!(text.contains("[key 5e6f7a8b]"), "{text}");
        assert!(text.contains(&"aa".repeat(32)), "{text}");
    }

    #[test]
    fn no_key_text_is_in_the_file_in_any_spelling() {
        let k = keys("89ABCDEF");
        let text = plan(Some(&k)).seal(Some(&k)).to_text();
        for key in [&k.validation_key, &k.decryption_key] {
            let hex = key.expose();
            let raw = hex::decode(hex).unwrap();
            use base64::Engine;
            for spelled in [
                hex.to_ascii_uppercase(),
                hex.to_ascii_lowercase(),
                base64::engine::general_purpose::STANDARD.encode(&raw),
                // Any 16 hex digits of it.
                hex[..16].to_string(),
            ] {
                assert!(!text.contains(&spelled), "{spelled} in\n{text}");
            }
        }
    }

    #[test]
    fn a_changed_value_is_refused_as_altered_and_other_keys_are_named_by_fingerprint() {
        let k = keys("89ABCDEF");
        let sealed = plan(Some(&k)).seal(Some(&k));
        let text = sealed.to_text();
        // One byte of a hash, then the site.
        for (from, to) in [("\"aaaa", "\"baaa"), ("Flowtime", "Flowtimf")] {
            let altered = SavedPlan::parse(&text.replacen(from, to, 1)).unwrap();
            assert!(matches!(
                altered.check(Some(&k)),
                Err(SavedPlanError::Tampered)
            ));
        }
        // Re-tagged as a plan without keys: still refused.
        let mut forged = sealed.clone();
        forged.tag = plan(Some(&k)).seal(None).tag;
        assert!(matches!(
            forged.check(Some(&k)),
            Err(SavedPlanError::Tampered)
        ));
        let other = keys("76543210");
        let err = sealed.check(Some(&other)).unwrap_err();
        let said = err.to_string();
        assert!(
            said.contains(&format!(
                "validationKey fingerprint {} planned, {} given",
                k.validation_key.fingerprint(),
                other.validation_key.fingerprint()
            )),
            "{said}"
        );
        assert!(!said.contains("decryptionKey"), "{said}");
        assert!(matches!(
            sealed.check(None),
            Err(SavedPlanError::KeysNeeded)
        ));
    }

    #[test]
    fn a_plan_without_keys_is_tagged_with_a_digest_that_detects_changes() {
        let p = plan(None).seal(None);
        assert_eq!(p.tag.as_ref().unwrap().kind, TagKind::Sha256);
        p.check(None).unwrap();
        let altered = SavedPlan::parse(&p.to_text().replacen("web01", "web09", 1)).unwrap();
        assert!(matches!(altered.check(None), Err(SavedPlanError::Tampered)));
        let k = keys("89ABCDEF");
        assert!(matches!(
            p.check(Some(&k)),
            Err(SavedPlanError::KeysNotWanted)
        ));
    }

    #[test]
    fn another_format_or_no_tag_is_refused() {
        let k = keys("89ABCDEF");
        let text = plan(Some(&k)).seal(Some(&k)).to_text();
        let other = text.replacen("format = 1", "format = 2", 1);
        assert!(matches!(
            SavedPlan::parse(&other),
            Err(SavedPlanError::Format { found: 2 })
        ));
        assert!(matches!(
            SavedPlan::parse("site = 1"),
            Err(SavedPlanError::Parse(_))
        ));
        let untagged = plan(Some(&k));
        assert!(matches!(
            untagged.check(Some(&k)),
            Err(SavedPlanError::Untagged)
        ));
    }

    #[test]
    fn an_existing_file_is_kept_unless_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.toml");
        let p = plan(None).seal(None);
        p.write(&path, false).unwrap();
        assert_eq!(SavedPlan::load(&path).unwrap(), p);
        std::fs::write(&path, "kept").unwrap();
        let e = p.write(&path, false).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "kept");
        p.write(&path, true).unwrap();
        assert_eq!(SavedPlan::load(&path).unwrap(), p);
        // No temporary file left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_age_counts_from_the_planned_time() {
        let p = plan(None);
        let at = humantime::parse_rfc3339("2026-12-07T04:20:00Z").unwrap();
        let later = at + Duration::from_secs(8 * 86400);
        assert_eq!(p.age(later), Some(Duration::from_secs(8 * 86400)));
        assert_eq!(p.age(at - Duration::from_secs(5)), Some(Duration::ZERO));
    }

    #[test]
    fn differences_are_worded_with_server_and_file() {
        let d = Difference::Changed {
            server: "web02".into(),
            file: "C:\\inetpub\\Flowtime\\web.config".into(),
            planned: "aa".repeat(32),
            now: "bb".repeat(32),
        };
        assert_eq!(
            d.to_string(),
            "web02 C:\\inetpub\\Flowtime\\web.config: changed since the plan (SHA-256 aaaaaaaaaaaa planned, bbbbbbbbbbbb now)"
        );
        assert_eq!(d.server(), "web02");
    }
}
