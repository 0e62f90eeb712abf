//! Building the plan: which servers change, how, and the bytes they get.

use super::audit::Fingerprints;
use super::lock::{lock_path, read_holder};
use super::outcome::KeysLeft;
use super::{
    BlockReason, Change, Excluded, KeySource, LeftOut, Plan, PlanAction, PushRequest, ServerPlan,
    Sessions, file_stamp, random_hex, same_keys, sibling,
};
use crate::analysis::{FarmReport, Instance};
use crate::config::editor::{
    EditRequest, Home, SectionFile, edit_in, edit_section_file, empty_web_config, homes_in,
};
use crate::config::effective::Effective;
use crate::config::machine_key::ElementFault;
use crate::config::problem::bounded;
use crate::config::record::ChainLevel;
use crate::config::section::config_source_path;
use crate::config::wif::{HandlerState, WifFault};
use crate::keys::{KeySet, joined, set_fingerprint};
use crate::paths::RemotePath;
use crate::scan::ServerFailure;
use crate::transport::{ReplaceBehaviour, Transport};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0} is not a server of the inventory")]
    UnknownServer(String),
    /// No server read holds it; `unread`, not read, may.
    #[error(
        "no site {site:?} in the scan{} (ids are `Site` or `Site/app`; `farmkey scan --all-sites` lists them)",
        may_hold(unread)
    )]
    UnknownSite { site: String, unread: Vec<String> },
    #[error("{server} does not host {site} (it is on {hosts})")]
    NotHosting {
        server: String,
        site: String,
        hosts: String,
    },
    #[error("cannot adopt the keys of {server}: {why}")]
    Adopt { server: String, why: String },
    #[error("{0}")]
    Keys(String),
    /// Several sites are named so without regard to case.
    #[error("{asked:?} names several sites that differ only in case ({}): give the name exactly", names.join(", "))]
    AmbiguousSite { asked: String, names: Vec<String> },
    /// `--servers` and `--exclude` leave no server of the site.
    #[error("--servers and --exclude leave no server of {0} in the push")]
    NoServerLeft(String),
    /// A key of the set is publicly disclosed.
    #[error("{0}")]
    Disclosed(String),
}

/// `; web03 could not be read and may hold it` where a server was not read.
fn may_hold(unread: &[String]) -> String {
    if unread.is_empty() {
        return String::new();
    }
    format!(
        "; {} could not be read and may hold it",
        super::and_list(unread)
    )
}

pub(crate) fn adopt(
    site: &crate::analysis::SiteReport,
    server: Option<&str>,
) -> Result<(KeySet, String), PlanError> {
    let inst = match server {
        Some(name) => site.instance(name).ok_or_else(|| PlanError::Adopt {
            server: name.to_string(),
            why: format!("it does not host {}", site.site),
        })?,
        None => site
            .instances
            .iter()
            .find(|i| i.key_group == Some('A'))
            .ok_or_else(|| PlanError::Adopt {
                server: "(majority)".into(),
                why: "no server of this site has explicit keys; generate a set instead".into(),
            })?,
    };
    let fail = |why: &str| PlanError::Adopt {
        server: inst.server.clone(),
        why: why.to_string(),
    };
    let eff = inst.effective.as_ref().map_err(|e| fail(&e.to_string()))?;
    let (v, d) = inst
        .keys
        .as_ref()
        .ok_or_else(|| fail("its configuration could not be read"))?;
    let (Some(vk), Some(dk)) = (v.key(), d.key()) else {
        return Err(fail(
            "its keys are not explicit (auto-generated, encrypted or invalid)",
        ));
    };
    if !v.modifiers().is_empty() || !d.modifiers().is_empty() {
        return Err(fail("its keys carry IsolateApps/IsolateByAppId"));
    }
    let written =
        |s: &crate::config::record::Sourced<String>| s.value().cloned().unwrap_or_default();
    let set = KeySet::from_written(
        vk.clone(),
        dk.clone(),
        &written(&eff.machine_key.validation),
        &written(&eff.machine_key.decryption),
    )
    .map_err(|problems| fail(&joined(&problems)))?;
    let group = inst
        .key_group
        .map_or(String::new(), |g| format!("set {g} "));
    Ok((set, format!("adopt {group}from {}", inst.server)))
}

/// Plans a push from a scan's report, reading the current bytes of every
/// file to be written (and the lock beside it) through `sessions`.
///
/// Fail closed: every server that hosts the site, and every server the scan
/// could not read, is part of the push unless the request leaves it out by
/// name; one that cannot be pushed blocks the whole push.
pub fn build_plan(
    req: &PushRequest,
    report: &FarmReport,
    sessions: &mut Sessions,
) -> Result<Plan, PlanError> {
    let site = report.site(&req.site).ok_or_else(|| {
        let names: Vec<String> = report
            .sites_named(&req.site)
            .iter()
            .map(|s| format!("{:?}", s.site))
            .collect();
        if names.len() > 1 {
            PlanError::AmbiguousSite {
                asked: req.site.clone(),
                names,
            }
        } else {
            PlanError::UnknownSite {
                site: req.site.clone(),
                unread: report
                    .servers
                    .iter()
                    .filter(|s| s.error.is_some())
                    .map(|s| s.name.clone())
                    .collect(),
            }
        }
    })?;
    let hosts = || {
        site.instances
            .iter()
            .map(|i| i.server.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let known = |name: &str| {
        report
            .servers
            .iter()
            .any(|s| s.name.eq_ignore_ascii_case(name))
    };
    if let Some(name) = req.exclude.iter().find(|n| !known(n)) {
        return Err(PlanError::UnknownServer(name.clone()));
    }
    let unread_scan: Vec<(String, ServerFailure)> = report
        .servers
        .iter()
        .filter_map(|s| s.error.as_ref().map(|e| (s.name.clone(), e.clone())))
        .collect();
    for n in req.servers.iter().flatten() {
        let hosting = site
            .instances
            .iter()
            .any(|i| i.server.eq_ignore_ascii_case(n));
        let unread = unread_scan.iter().any(|(s, _)| s.eq_ignore_ascii_case(n));
        if !known(n) {
            return Err(PlanError::UnknownServer(n.clone()));
        }
        if !hosting && !unread {
            return Err(PlanError::NotHosting {
                server: n.clone(),
                site: site.site.clone(),
                hosts: hosts(),
            });
        }
    }
    let named = |list: &[String], name: &str| list.iter().any(|n| n.eq_ignore_ascii_case(name));
    // Why a server of the site is left out, if it is.
    let left_out = |name: &str| -> Option<LeftOut> {
        if named(&req.exclude, name) {
            Some(LeftOut::ByName)
        } else if req.servers.as_ref().is_some_and(|l| !named(l, name)) {
            Some(LeftOut::NotNamed)
        } else {
            None
        }
    };
    let mut excluded = Vec::new();
    let mut targets: Vec<&Instance> = Vec::new();
    for inst in &site.instances {
        match left_out(&inst.server) {
            Some(why) => excluded.push(Excluded {
                server: inst.server.clone(),
                why,
                unread: false,
            }),
            None => targets.push(inst),
        }
    }
    let mut unread = Vec::new();
    for (name, error) in unread_scan {
        match left_out(&name) {
            Some(why) => excluded.push(Excluded {
                server: name,
                why,
                unread: true,
            }),
            None => unread.push((name, error)),
        }
    }
    if targets.is_empty() && unread.is_empty() {
        return Err(PlanError::NoServerLeft(site.site.clone()));
    }

    let (keys, source) = match &req.source {
        KeySource::Generate {
            validation,
            decryption,
        } => (
            Some(
                KeySet::generate(validation.clone(), decryption.clone())
                    .map_err(|e| PlanError::Keys(e.to_string()))?,
            ),
            format!("generate new keys ({validation} + {decryption})"),
        ),
        KeySource::Adopt(server) => {
            let (set, what) = adopt(site, server.as_deref())?;
            (Some(set), what)
        }
        KeySource::Import(set) => {
            let problems = set.problems();
            if !problems.is_empty() {
                return Err(PlanError::Keys(joined(&problems)));
            }
            (
                Some(set.clone()),
                format!("imported keys ({} + {})", set.validation, set.decryption),
            )
        }
        KeySource::HandlerOnly => (None, "session-token handler swap only".to_string()),
    };
    if let Some(k) = &keys {
        super::refuse_disclosed(k, &source, &report.disclosed)?;
    }

    let stamp = file_stamp();
    let push_id = format!("{}-{}", &stamp[..16], random_hex(2));
    let keys_left = matches!(req.source, KeySource::HandlerOnly).then(|| KeysLeft::of(&targets));
    let mut servers = Vec::new();
    // Every server of the push connected at once, as a scan reads them.
    sessions.connect_all(&targets.iter().map(|i| i.server.clone()).collect::<Vec<_>>());
    for inst in targets {
        servers.extend(plan_server(inst, keys.as_ref(), &stamp, sessions));
    }
    Ok(Plan {
        push_id,
        stamp,
        site: site.site.clone(),
        source,
        set_fingerprint: keys
            .as_ref()
            .map(|k| set_fingerprint(&k.validation_key, &k.decryption_key)),
        keys,
        servers,
        unread,
        excluded,
        keep_partial: req.keep_partial,
        break_lock: req.break_lock,
        keys_left,
        saved: None,
    })
}

/// The attributes a push writes on `<machineKey>`.
const WRITTEN: [&str; 4] = ["validationKey", "decryptionKey", "validation", "decryption"];

/// Why a parent's lock forbids this push at the application's level.
/// A `<machineKey>` ASP.NET refuses in a file the push does not edit (a
/// parent level): new keys in web.config would not make the application
/// start, and a push never writes a parent level.
fn refused_elsewhere(eff: &Effective, inst: &Instance, file: &RemotePath) -> Option<BlockReason> {
    let own = |p: &RemotePath| {
        p.key() == file.key() || inst.external_sha256.iter().any(|(e, _)| e.key() == p.key())
    };
    let r = eff.machine_key.refused.iter().find(|r| !own(&r.file))?;
    Some(BlockReason::RefusedAbove {
        refused: Box::new(r.clone()),
        file: file.clone(),
    })
}

fn lock_refusal(
    eff: &Effective,
    set_keys: bool,
    swap: bool,
    file: &RemotePath,
) -> Option<BlockReason> {
    eff.locks.iter().find_map(|lock| {
        let locked = match lock.section {
            "machineKey" if set_keys => lock.refuses_attributes(&WRITTEN),
            "system.identityModel" if swap => lock.refuses(&[], &["identityConfiguration"]),
            _ => None,
        }?;
        Some(BlockReason::LockedAbove {
            locked,
            lock: Box::new(lock.clone()),
            file: file.clone(),
        })
    })
}

/// Why the swap cannot go where WIF reads it: the configuration in use is
/// at a level a push never writes, and an element of the same name in the
/// application's own file would make WIF throw ID7029 (a BasicMap
/// collection whose BaseAdd refuses a key it already holds, inherited ones
/// included: IdentityConfigurationElementCollection in the reference source).
fn swap_refusal(eff: &Effective, file: &RemotePath) -> Option<BlockReason> {
    let in_use = &eff.handler.in_use;
    let at = in_use
        .element
        .as_ref()
        .filter(|at| at.level == ChainLevel::Parent)?;
    Some(BlockReason::SwapAbove {
        tag: in_use.tag(),
        line: at.line,
        at: at.file.clone(),
        file: file.clone(),
    })
}

/// A sibling backup and staging name that no earlier push used.
fn free_names(t: &mut dyn Transport, sp: &mut ServerPlan, stamp: &str) {
    // Two pushes in one second: the second one's backup gets a suffix.
    let mut n = 1;
    while matches!(t.stat(&sp.backup), Ok(Some(_))) && n < 100 {
        n += 1;
        sp.backup = sibling(&sp.file, &format!("{stamp}-{n}"), "");
        sp.staged = sibling(&sp.file, &format!("{stamp}-{n}"), "-new");
    }
}

/// Why a file the push would write cannot be replaced: it has the
/// read-only attribute, which Windows honours even for an administrator
/// (a rename onto it, or its deletion, is refused). Found from the stat,
/// before anything is written anywhere.
fn read_only(t: &mut dyn Transport, file: &RemotePath) -> Option<BlockReason> {
    match t.stat(file) {
        Ok(Some(st)) if st.read_only => Some(BlockReason::ReadOnly { file: file.clone() }),
        _ => None,
    }
}

/// Reads a file as it is now; `Err` is why the server cannot be pushed.
/// Anything but a regular file (a link, even one to a file; a dangling one;
/// a loop) is refused: a push replaces a file by renaming onto its name,
/// which would put a copy in a link's place.
fn read_now(
    t: &mut dyn Transport,
    file: &RemotePath,
    scanned: &Option<String>,
) -> Result<Option<crate::bytes::FileBytes>, BlockReason> {
    match crate::transport::not_a_file(t, file) {
        Ok(None) => {}
        Ok(Some(kind)) => {
            return Err(BlockReason::NotAFile {
                file: file.clone(),
                kind,
            });
        }
        Err(error) => {
            return Err(BlockReason::Unreadable {
                file: file.clone(),
                error,
            });
        }
    }
    let original = match t.read(file) {
        Ok(b) => Some(b),
        Err(e) if e.is_not_found() => None,
        Err(error) => {
            return Err(BlockReason::Unreadable {
                file: file.clone(),
                error,
            });
        }
    };
    if original.as_ref().map(|b| b.sha256()) != *scanned {
        return Err(BlockReason::ChangedSinceScan { file: file.clone() });
    }
    Ok(original)
}

/// The plans of one server: its web.config, and the files its sections
/// are kept in (`configSource`) where the push edits those; the file that
/// takes the keys comes first, so that every step verifies a whole state.
/// Each plan watches the files the scan read that no plan writes.
fn plan_server(
    inst: &Instance,
    keys: Option<&KeySet>,
    stamp: &str,
    sessions: &mut Sessions,
) -> Vec<ServerPlan> {
    let mut plans = plan_files(inst, keys, stamp, sessions);
    let read = inst
        .config_path
        .iter()
        .map(|p| (p.clone(), inst.config_sha256.clone()))
        .chain(inst.external_sha256.iter().cloned());
    let watched: Vec<_> = read
        .filter(|(f, _)| !plans.iter().any(|p| p.file.key() == f.key()))
        .collect();
    for p in &mut plans {
        p.watched = watched.clone();
    }
    plans
}

/// The keys and algorithms of a server's `<machineKey>` before and after
/// `k` is written there: keys as fingerprints, algorithms by name.
pub(crate) fn key_changes(inst: &Instance, eff: &Effective, k: &KeySet) -> Vec<Change> {
    let mk = &eff.machine_key;
    let (v, d) = inst.keys.clone().unzip();
    let shown = |s: Option<crate::config::machine_key::KeyState>| {
        s.map_or("?".into(), |s| crate::report::key_cell(&s))
    };
    vec![
        Change {
            what: "validationKey",
            before: shown(v),
            after: k.validation_key.fingerprint(),
        },
        Change {
            what: "decryptionKey",
            before: shown(d),
            after: k.decryption_key.fingerprint(),
        },
        Change {
            what: "validation",
            before: mk.validation.shown().to_string(),
            after: k.validation.to_string(),
        },
        Change {
            what: "decryption",
            before: mk.decryption.shown().to_string(),
            after: k.decryption.to_string(),
        },
    ]
}

fn plan_files(
    inst: &Instance,
    keys: Option<&KeySet>,
    stamp: &str,
    sessions: &mut Sessions,
) -> Vec<ServerPlan> {
    let file = inst.config_path.clone().unwrap_or_else(|| {
        crate::paths::RemotePath::parse("/C:/web.config").expect("constant path")
    });
    let before = inst
        .keys
        .as_ref()
        .map_or_else(Fingerprints::default, |(v, d)| {
            Fingerprints::of(v, d, inst.set_fingerprint.clone())
        });
    let lock = lock_path(&file);
    let mut sp = ServerPlan {
        server: inst.server.clone(),
        backup: sibling(&file, stamp, ""),
        staged: sibling(&file, stamp, "-new"),
        file,
        scanned_sha256: inst.config_sha256.clone(),
        changes: Vec::new(),
        handler_swap: false,
        action: PlanAction::Unchanged,
        fingerprints_before: before.clone(),
        fingerprints_after: before,
        original: None,
        edited: None,
        identity_declared_above: inst.identity_declared_above,
        lock,
        lock_holder: None,
        lock_claims: Vec::new(),
        replace: ReplaceBehaviour::Atomic,
        watched: Vec::new(),
    };
    let eff = match (&inst.effective, &inst.config_path) {
        (Err(p), _) => {
            sp.action = PlanAction::Blocked(BlockReason::ConfigUnreadable(p.clone()));
            return vec![sp];
        }
        (Ok(_), None) => {
            sp.action = PlanAction::Blocked(BlockReason::PathNotWritable {
                physical_path: inst.app.physical_path_raw.clone(),
            });
            return vec![sp];
        }
        (Ok(e), Some(_)) => e,
    };
    let set_keys = keys.filter(|k| !same_keys(eff, k));
    sp.handler_swap = eff.handler.needs_swap();
    if let Some(k) = keys {
        sp.fingerprints_after = Fingerprints {
            validation_key: Some(k.validation_key.fingerprint()),
            decryption_key: Some(k.decryption_key.fingerprint()),
            key_set: Some(k.set_fingerprint()),
            ..Fingerprints::default()
        };
        sp.changes = key_changes(inst, eff, k);
    }
    if keys.is_some() {
        // What the push fixes in the element it edits: a name spelled in
        // another case is written correctly in its place.
        for r in &eff.machine_key.refused {
            if let ElementFault::UnrecognizedAttribute {
                name,
                meant: Some(meant),
            } = &r.fault
            {
                sp.changes.push(Change {
                    what: "attribute",
                    before: format!("{} (ASP.NET refuses it)", bounded(name)),
                    after: meant.to_string(),
                });
            }
        }
    }
    // A handler-only push cannot fix what makes WIF refuse the section.
    if keys.is_none()
        && let Some(fault @ (WifFault::UnknownConfiguration { .. } | WifFault::Refused { .. })) =
            eff.handler.fault()
    {
        sp.action = PlanAction::Blocked(BlockReason::HandlerFault(Box::new(fault.clone())));
        return vec![sp];
    }
    if keys.is_none()
        && eff.handler.state == HandlerState::Custom
        && let Some(reason) = &eff.handler.reason
    {
        sp.action = PlanAction::Blocked(BlockReason::CustomHandler(Box::new(reason.clone())));
        return vec![sp];
    }
    // Every server of the push is locked while it runs, the ones already
    // correct too: connect to each, learn how it replaces files, and look
    // for a lock another push holds.
    let t = match sessions.get(&inst.server) {
        Ok(t) => t,
        Err(e) => {
            sp.action = PlanAction::Blocked(BlockReason::Connect(e));
            return vec![sp];
        }
    };
    sp.replace = ReplaceBehaviour::from_banner(t.banner().as_deref());
    match read_holder(t, &inst.server, &sp.lock) {
        Ok(holder) => sp.lock_holder = holder,
        Err(e) => {
            sp.action = PlanAction::Blocked(BlockReason::LockUnreadable(e));
            return vec![sp];
        }
    }
    match super::lock::claims(t, &inst.server, &sp.lock) {
        Ok(claims) => sp.lock_claims = claims,
        Err(e) => {
            sp.action = PlanAction::Blocked(BlockReason::LockClaimsUnlisted(e));
            return vec![sp];
        }
    }
    if set_keys.is_none() && !sp.handler_swap {
        sp.action = PlanAction::Unchanged;
        return vec![sp];
    }
    let refusal = lock_refusal(eff, set_keys.is_some(), sp.handler_swap, &sp.file).or_else(|| {
        sp.handler_swap
            .then(|| swap_refusal(eff, &sp.file))
            .flatten()
    });
    let refusal = refusal.or_else(|| {
        set_keys
            .is_some()
            .then(|| refused_elsewhere(eff, inst, &sp.file))
            .flatten()
    });
    if let Some(why) = refusal {
        sp.action = PlanAction::Blocked(why);
        return vec![sp];
    }
    // Read the files as they are now, and edit them.
    free_names(t, &mut sp, stamp);
    let original = match read_now(t, &sp.file, &sp.scanned_sha256) {
        Ok(o) => o,
        Err(why) => {
            sp.action = PlanAction::Blocked(why);
            return vec![sp];
        }
    };
    let base = original.clone().unwrap_or_else(empty_web_config);
    // Parsed once, for where the sections live and for the edit.
    let doc = match crate::config::xml::Document::parse(base) {
        Ok(d) => d,
        Err(e) => {
            sp.action = PlanAction::Blocked(BlockReason::NotXml {
                file: sp.file.clone(),
                error: e,
            });
            return vec![sp];
        }
    };
    let in_use = &eff.handler.in_use;
    let [keys_file, swap_file] = section_files(&sp.file, &doc, eff);
    let keys_here = matches!(keys_file, Ok(None));
    let swap_here = matches!(swap_file, Ok(None));

    // The sections kept in other files: one plan each.
    let mut external = Vec::new();
    for (target, section, wanted) in [
        (keys_file, SectionFile::MachineKey, set_keys.is_some()),
        (
            swap_file,
            SectionFile::IdentityModel {
                in_use: in_use.name.clone(),
            },
            sp.handler_swap,
        ),
    ] {
        if !wanted {
            continue;
        }
        let path = match target {
            Ok(Some(path)) => path,
            Ok(None) => continue,
            Err(why) => {
                sp.action = PlanAction::Blocked(why);
                return vec![sp];
            }
        };
        let req = EditRequest {
            machine_key: set_keys
                .cloned()
                .filter(|_| section == SectionFile::MachineKey),
            handler_swap: section != SectionFile::MachineKey,
            ..Default::default()
        };
        external.push(plan_section_file(t, inst, &sp, path, &section, &req, stamp));
    }
    if let Some(skip) = external.iter().find_map(|e| match &e.action {
        PlanAction::Blocked(why) => Some(why.clone()),
        _ => None,
    }) {
        // One file of the server cannot be pushed: none is.
        sp.action = PlanAction::Blocked(skip);
        return vec![sp];
    }

    let req = EditRequest {
        machine_key: set_keys.cloned().filter(|_| keys_here),
        compatibility_mode: None,
        handler_swap: sp.handler_swap && swap_here,
        identity_in_use: in_use.name.clone(),
        identity_section_declared_above: sp.identity_declared_above,
    };
    let web_needed = req.machine_key.is_some() || req.handler_swap;
    if web_needed {
        match edit_in(&doc, &req) {
            Ok(_) if let Some(why) = read_only(t, &sp.file) => {
                sp.action = PlanAction::Blocked(why);
                return vec![sp];
            }
            Ok(out) if out.changed || original.is_none() => {
                sp.action = PlanAction::Write;
                sp.original = original;
                sp.edited = Some(out.bytes);
            }
            Ok(_) => sp.action = PlanAction::Unchanged,
            Err(error) => {
                sp.action = PlanAction::Blocked(BlockReason::EditRefused {
                    file: sp.file.clone(),
                    error,
                });
                return vec![sp];
            }
        }
    }
    if external.is_empty() {
        return vec![sp];
    }
    // What each file of the push does.
    sp.handler_swap = req.handler_swap;
    let mut out = external;
    if !keys_here {
        // The keys file first; the web.config holds no key change.
        sp.changes.clear();
        sp.fingerprints_before = sp.fingerprints_after.clone();
        if web_needed {
            out.push(sp);
        }
    } else if web_needed {
        out.insert(0, sp);
    }
    out
}

type SectionFileResult = Result<Option<RemotePath>, BlockReason>;

/// The file of each section the push edits, `<machineKey>` and then the
/// WIF section: `Ok(None)` in web.config `file` itself (parsed: `doc`),
/// `Ok(Some)` the file its `configSource` names, `Err` one farmkey cannot
/// follow. The keys' from this web.config; the swap's from the scan, which
/// found the configuration in use in the whole chain (a new unnamed one
/// goes where this file keeps the section).
fn section_files(
    file: &RemotePath,
    doc: &crate::config::xml::Document,
    eff: &Effective,
) -> [SectionFileResult; 2] {
    let homes = homes_in(doc);
    let home_file =
        |home: &Home| match home {
            Home::InFile => Ok(None),
            Home::ConfigSource { value, line } => config_source_path(file, value)
                .map(Some)
                .map_err(|fault| BlockReason::ConfigSource {
                    file: file.clone(),
                    line: *line,
                    fault,
                }),
        };
    let keys_file = home_file(&homes.machine_key);
    let swap_file = match &eff.handler.in_use.element {
        Some(at) => match at.level {
            ChainLevel::OwnConfigSource => Ok(Some(at.file.clone())),
            // A swap at a parent level is refused by the plan.
            ChainLevel::Own | ChainLevel::Parent => Ok(None),
        },
        None => home_file(&homes.identity_model),
    };
    [keys_file, swap_file]
}

/// The files a push may write for a site on one server, chosen as the plan
/// chooses them: its web.config, the files its `<machineKey>` and WIF
/// section are kept in (`configSource`), and its lock beside web.config. A
/// rollback writes nothing else, whatever an audit record says.
#[derive(Debug, Clone)]
pub struct SiteFiles {
    pub web_config: RemotePath,
    pub sections: Vec<RemotePath>,
    pub lock: RemotePath,
}

impl SiteFiles {
    /// Whether a push could have written `file`.
    pub fn writes(&self, file: &RemotePath) -> bool {
        std::iter::once(&self.web_config)
            .chain(&self.sections)
            .any(|f| f.key() == file.key())
    }
}

/// [`SiteFiles`] of a site as read now: its web.config `file` holding
/// `web` (`None`: there is none), its effective configuration `eff` when
/// it could be read (else only web.config itself).
pub fn site_files(
    file: &RemotePath,
    eff: Option<&Effective>,
    web: Option<crate::bytes::FileBytes>,
) -> SiteFiles {
    let doc = crate::config::xml::Document::parse(web.unwrap_or_else(empty_web_config));
    let sections = match (eff, doc) {
        (Some(eff), Ok(doc)) => section_files(file, &doc, eff)
            .into_iter()
            .filter_map(|f| f.ok().flatten())
            .collect(),
        _ => Vec::new(),
    };
    SiteFiles {
        web_config: file.clone(),
        sections,
        lock: lock_path(file),
    }
}

/// The plan of a file a section is kept in (`configSource`).
fn plan_section_file(
    t: &mut dyn Transport,
    inst: &Instance,
    web: &ServerPlan,
    path: RemotePath,
    section: &SectionFile,
    req: &EditRequest,
    stamp: &str,
) -> ServerPlan {
    let scanned = inst
        .external_sha256
        .iter()
        .find(|(p, _)| p.key() == path.key())
        .and_then(|(_, sha)| sha.clone());
    let is_keys = *section == SectionFile::MachineKey;
    let mut sp = ServerPlan {
        server: web.server.clone(),
        backup: sibling(&path, stamp, ""),
        staged: sibling(&path, stamp, "-new"),
        file: path,
        scanned_sha256: scanned,
        changes: if is_keys {
            web.changes.clone()
        } else {
            Vec::new()
        },
        handler_swap: !is_keys,
        action: PlanAction::Unchanged,
        fingerprints_before: if is_keys {
            web.fingerprints_before.clone()
        } else {
            web.fingerprints_after.clone()
        },
        fingerprints_after: web.fingerprints_after.clone(),
        original: None,
        edited: None,
        identity_declared_above: true,
        lock: web.lock.clone(),
        lock_holder: web.lock_holder.clone(),
        lock_claims: web.lock_claims.clone(),
        replace: web.replace.clone(),
        watched: Vec::new(),
    };
    free_names(t, &mut sp, stamp);
    let original = match read_now(t, &sp.file, &sp.scanned_sha256) {
        Ok(Some(o)) => o,
        Ok(None) => {
            sp.action = PlanAction::Blocked(BlockReason::ConfigSourceMissing {
                file: sp.file.clone(),
                named_in: web.file.clone(),
            });
            return sp;
        }
        Err(why) => {
            sp.action = PlanAction::Blocked(why);
            return sp;
        }
    };
    match edit_section_file(&original, section, req) {
        Ok(out)
            if out.changed
                && let Some(why) = read_only(t, &sp.file) =>
        {
            let _ = out;
            sp.action = PlanAction::Blocked(why);
        }
        Ok(out) if out.changed => {
            sp.action = PlanAction::Write;
            sp.original = Some(original);
            sp.edited = Some(out.bytes);
        }
        Ok(_) => sp.action = PlanAction::Unchanged,
        Err(error) => {
            sp.action = PlanAction::Blocked(BlockReason::EditRefused {
                file: sp.file.clone(),
                error,
            })
        }
    }
    sp
}
