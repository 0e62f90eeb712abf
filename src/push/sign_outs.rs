//! Who stays signed in after a push. ASP.NET protects forms tickets,
//! ViewState and anti-forgery tokens with the machine key, its validation
//! and decryption algorithms and its compatibility mode, and WIF session
//! cookies with the session-token handler's protection: where any of these
//! changes on a server, what it protected before no longer reads there,
//! and its users sign in again. A push never writes `compatibilityMode`
//! (the plan's edit leaves it as it is), so it changes on no server.

use super::plan::{adopt, key_changes};
use super::{Change, KeySource, Plan, PlanAction, ServerPlan};
use crate::analysis::{FarmReport, Instance};

/// What a push does to the signed-in users of the servers it covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignOuts {
    /// Servers whose users keep their sign-ins: nothing that protects
    /// them changes there.
    pub keep: Vec<String>,
    /// Servers whose users are signed out.
    pub signed_out: Vec<String>,
    /// Servers whose configuration could not be read: not known.
    pub unknown: Vec<String>,
}

impl SignOuts {
    /// Every server of the push signs its users out (new keys, say).
    pub fn everyone(&self) -> bool {
        self.keep.is_empty() && self.unknown.is_empty() && !self.signed_out.is_empty()
    }

    fn add(&mut self, server: &str, fate: Option<bool>) {
        let list = match fate {
            Some(true) => &mut self.signed_out,
            Some(false) => &mut self.keep,
            None => &mut self.unknown,
        };
        if !list.iter().any(|s| s == server) {
            list.push(server.to_string());
        }
    }

    /// A server is in one list: signed out by one of its files, else not
    /// known where one of them is not, else kept.
    fn settle(mut self) -> SignOuts {
        let out = self.signed_out.clone();
        self.unknown.retain(|s| !out.contains(s));
        let unknown = self.unknown.clone();
        self.keep
            .retain(|s| !out.contains(s) && !unknown.contains(s));
        self
    }
}

/// A change of a key or an algorithm: what protected values depend on.
fn protects(c: &Change) -> bool {
    match c.what {
        "validationKey" | "decryptionKey" => c.before != c.after,
        // Names as ASP.NET reads them (the case of `SHA1` aside, a
        // refused spelling starts no application at all).
        "validation" | "decryption" => !c.before.trim().eq_ignore_ascii_case(c.after.trim()),
        _ => false,
    }
}

impl ServerPlan {
    /// Whether writing this file signs the server's users out: a key or
    /// an algorithm changes, or session tokens move from DPAPI to the
    /// machine key (a DPAPI-protected cookie no longer reads). `None`:
    /// the file could not be read, so it is not known.
    pub fn signs_out(&self) -> Option<bool> {
        if self.changes.iter().any(protects) || self.handler_swap {
            return Some(true);
        }
        match &self.action {
            PlanAction::Blocked(_) if self.changes.is_empty() => None,
            _ => Some(false),
        }
    }
}

impl Plan {
    /// Who keeps their sign-ins and who is signed out if the plan runs:
    /// the servers it covers (those left out keep their keys, as
    /// [`super::exclusion_effect`] says).
    pub fn sign_outs(&self) -> SignOuts {
        let mut out = SignOuts::default();
        for s in &self.servers {
            out.add(&s.server, s.signs_out());
        }
        for (server, _) in &self.unread {
            out.add(server, None);
        }
        out.settle()
    }
}

/// What a server signs out when `source` is pushed to it, as the plan
/// will compute it; `None` for keys not known before the plan (pasted).
fn instance_fate(inst: &Instance, source: &SignOutSource) -> Option<bool> {
    let eff = inst.effective.as_ref().ok()?;
    let swap = eff.handler.needs_swap();
    Some(match source {
        SignOutSource::Fresh => true,
        SignOutSource::Keys(k) => swap || key_changes(inst, eff, k).iter().any(protects),
        SignOutSource::HandlerOnly => swap,
    })
}

enum SignOutSource {
    /// New random keys: no server holds them.
    Fresh,
    Keys(Box<crate::keys::KeySet>),
    HandlerOnly,
}

/// Who keeps their sign-ins if `source` is pushed to every server of
/// `site`, from the scan, before any plan is made (a choice of keys says
/// what it will do): the same comparison the plan makes. `None` where it
/// cannot be known yet: keys to be pasted, a key set that cannot be
/// adopted (the plan says why), a site not in the report.
pub fn preview(report: &FarmReport, site: &str, source: &KeySource) -> Option<SignOuts> {
    let site = report.site(site)?;
    let source = match source {
        KeySource::Generate { .. } => SignOutSource::Fresh,
        KeySource::Adopt(server) => {
            SignOutSource::Keys(Box::new(adopt(site, server.as_deref()).ok()?.0))
        }
        KeySource::Import(k) => SignOutSource::Keys(Box::new(k.clone())),
        KeySource::HandlerOnly => SignOutSource::HandlerOnly,
    };
    let mut out = SignOuts::default();
    for inst in &site.instances {
        out.add(&inst.server, instance_fate(inst, &source));
    }
    for s in report.servers.iter().filter(|s| s.error.is_some()) {
        out.add(&s.name, None);
    }
    Some(out.settle())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::RemotePath;

    fn server_plan(server: &str, changes: Vec<Change>, action: PlanAction) -> ServerPlan {
        let file = RemotePath::parse("C:/inetpub/Flowtime/web.config").unwrap();
        ServerPlan {
            server: server.into(),
            file: file.clone(),
            scanned_sha256: None,
            changes,
            handler_swap: false,
            backup: file.clone(),
            staged: file.clone(),
            lock: file,
            lock_holder: None,
            lock_claims: Vec::new(),
            replace: crate::transport::ReplaceBehaviour::Atomic,
            action,
            fingerprints_before: Default::default(),
            fingerprints_after: Default::default(),
            original: None,
            edited: None,
            identity_declared_above: false,
            watched: Vec::new(),
        }
    }

    fn change(what: &'static str, before: &str, after: &str) -> Change {
        Change {
            what,
            before: before.into(),
            after: after.into(),
        }
    }

    fn same_keys(validation: (&str, &str)) -> Vec<Change> {
        vec![
            change("validationKey", "507f8fce", "507f8fce"),
            change("decryptionKey", "1a2b3c4d", "1a2b3c4d"),
            change("validation", validation.0, validation.1),
            change("decryption", "AES", "AES"),
        ]
    }

    #[test]
    fn a_plan_changing_an_algorithm_on_one_server_signs_that_server_out() {
        let plan = |servers| Plan {
            push_id: "p".into(),
            stamp: "s".into(),
            site: "Flowtime".into(),
            source: "adopt set A from web01".into(),
            keys: None,
            set_fingerprint: None,
            servers,
            unread: vec![(
                "web04".into(),
                crate::scan::ServerFailure::Unreachable(crate::scan::Unreachable::WorkerStopped),
            )],
            excluded: Vec::new(),
            keep_partial: false,
            break_lock: false,
            keys_left: None,
            saved: None,
        };
        let p = plan(vec![
            server_plan("web01", same_keys(("SHA1", "SHA1")), PlanAction::Unchanged),
            // Same keys, another validation algorithm: signed out.
            server_plan(
                "web02",
                same_keys(("HMACSHA256", "SHA1")),
                PlanAction::Write,
            ),
            // Only the spelling's case: ASP.NET reads the same algorithm.
            server_plan("web03", same_keys(("sha1", "SHA1")), PlanAction::Write),
        ]);
        assert_eq!(
            p.sign_outs(),
            SignOuts {
                keep: vec!["web01".into(), "web03".into()],
                signed_out: vec!["web02".into()],
                unknown: vec!["web04".into()],
            }
        );
        assert!(!p.sign_outs().everyone());

        // web02's web.config keeps its keys, its configSource file gets
        // another algorithm: web02 is signed out, once.
        let mut source = server_plan(
            "web02",
            same_keys(("SHA1", "HMACSHA256")),
            PlanAction::Write,
        );
        source.file = RemotePath::parse("C:/inetpub/Flowtime/machineKey.config").unwrap();
        let p = plan(vec![
            server_plan("web02", same_keys(("SHA1", "SHA1")), PlanAction::Write),
            source,
        ]);
        let s = p.sign_outs();
        assert_eq!(
            (s.keep.len(), s.signed_out.as_slice()),
            (0, &["web02".to_string()][..])
        );

        // A new key on each: everyone.
        let mut other = same_keys(("SHA1", "SHA1"));
        other[0] = change("validationKey", "507f8fce", "99aa00bb");
        let mut swap = server_plan("web02", same_keys(("SHA1", "SHA1")), PlanAction::Write);
        swap.handler_swap = true;
        let mut p = plan(vec![server_plan("web01", other, PlanAction::Write), swap]);
        p.unread.clear();
        let s = p.sign_outs();
        assert_eq!(s.signed_out, ["web01", "web02"]);
        assert!(s.everyone(), "{s:?}");
    }

    #[test]
    fn the_menu_preview_is_the_plans_comparison_on_the_demo_farm() {
        let demo = crate::demo::DemoFarm::new().unwrap();
        let scans = crate::farm::scan_all(
            &demo.inventory.servers,
            crate::transport::ConnectOptions::default(),
            3,
        );
        let report = crate::analysis::analyze(&scans, &Default::default());
        let adopt_a = preview(&report, "Flowtime", &KeySource::Adopt(Some("web01".into())))
            .expect("set A can be adopted");
        assert_eq!(adopt_a.keep, ["web01", "web02"], "{adopt_a:?}");
        assert_eq!(adopt_a.signed_out, ["web03"], "{adopt_a:?}");
        let generate = preview(
            &report,
            "Flowtime",
            &KeySource::Generate {
                validation: crate::keys::Validation::Sha1,
                decryption: crate::keys::Decryption::Aes,
            },
        )
        .unwrap();
        assert!(generate.everyone(), "{generate:?}");
        // web03's Process TOGO keeps its session tokens under DPAPI: the
        // swap signs its users out, the others keep theirs.
        let handler = preview(&report, "Process TOGO", &KeySource::HandlerOnly).unwrap();
        assert_eq!(handler.signed_out, ["web03"], "{handler:?}");
        assert_eq!(handler.keep, ["web01", "web02"], "{handler:?}");
    }
}
