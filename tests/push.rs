//! Pushing against real sshd servers: exact outcomes, byte-identity outside
//! the edit, backups, skips, failures mid-push, rollback, and no key in any
//! output. A fault-injecting wrapper adds cases on top.

mod support;

use farmkey::analysis::{FarmReport, Selection, analyze};
use farmkey::farm::scan_all;
use farmkey::inventory::Inventory;
use farmkey::keys::{DecryptionAlg, ValidationAlg};
use farmkey::push::apply::Progress;
use farmkey::push::audit::AuditLog;
use farmkey::push::{
    KeySource, PlanAction, PushRequest, ServerOutcome, Sessions, apply, build_plan,
};
use farmkey::transport::ConnectOptions;
use std::fs;
use std::path::{Path, PathBuf};
use support::sshd::{Options, SshFarm, demo_over_ssh};
use support::*;

const FLOWTIME: &str = "C:/inetpub/Cora/Flowtime/web.config";
const TOGO: &str = "C:/Program Files/PNMsoft/Process TOGO/web.config";

fn opts() -> ConnectOptions {
    ConnectOptions {
        ssh_config: Some(PathBuf::from("/nonexistent/ssh_config")),
        ..Default::default()
    }
}

struct Setup {
    _demo: farmkey::demo::DemoFarm,
    farm: SshFarm,
    inventory: Inventory,
    audit: AuditLog,
    _state: tempfile::TempDir,
}

fn setup() -> Setup {
    let (demo, farm) = demo_over_ssh(Options::default());
    let inventory = Inventory::load(&farm.inventory("")).unwrap();
    let state = tempfile::tempdir().unwrap();
    let audit = AuditLog::new(state.path().join("audit.jsonl"));
    Setup {
        _demo: demo,
        farm,
        inventory,
        audit,
        _state: state,
    }
}

impl Setup {
    fn report(&self) -> FarmReport {
        analyze(
            &scan_all(&self.inventory.servers, opts(), 8),
            &Selection {
                all_sites: true,
                sites: vec![],
            },
        )
    }

    fn sessions(&self) -> Sessions {
        Sessions::new(self.inventory.servers.clone(), opts())
    }

    fn file(&self, server: &str, path: &str) -> PathBuf {
        self.farm.server(server).file(path)
    }

    fn bytes(&self, server: &str, path: &str) -> Vec<u8> {
        fs::read(self.file(server, path)).unwrap()
    }

    /// The Flowtime web.config of every server.
    fn flowtime_files(&self) -> Vec<Vec<u8>> {
        farmkey::demo::SERVERS
            .iter()
            .map(|n| self.bytes(n, FLOWTIME))
            .collect()
    }

    /// Scans and plans a push, with the sessions that will apply it.
    fn plan(&self, req: PushRequest) -> (Sessions, farmkey::push::Plan) {
        let report = self.report();
        let mut sessions = self.sessions();
        let plan = build_plan(&req, &report, &mut sessions).unwrap();
        (sessions, plan)
    }

    /// Every file of every server, for before/after comparisons.
    fn all_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        self.farm
            .servers
            .iter()
            .flat_map(|s| snapshot_tree(&s.root))
            .collect()
    }
}

fn request(site: &str, source: KeySource) -> PushRequest {
    PushRequest {
        site: site.into(),
        source,
        servers: None,
        keep_partial: false,
    }
}

fn generate() -> KeySource {
    KeySource::Generate {
        validation: ValidationAlg::HmacSha256,
        decryption: DecryptionAlg::Aes,
    }
}

fn backups_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains(".farmkey")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_generated_push_brings_the_site_into_step_touching_nothing_else() {
    let s = setup();
    let before: Vec<Vec<u8>> = farmkey::demo::SERVERS
        .iter()
        .map(|n| s.bytes(n, FLOWTIME))
        .collect();
    let others_before: Vec<_> = s
        .all_files()
        .into_iter()
        .filter(|(p, _)| !p.ends_with("Flowtime/web.config"))
        .collect();
    let report = s.report();
    let mut sessions = s.sessions();
    let plan = build_plan(&request("Flowtime", generate()), &report, &mut sessions).unwrap();
    assert_eq!(plan.writes(), 3);
    let outcome = apply(&plan, &mut sessions, &s.audit, &mut |_| {});
    assert!(outcome.success(), "{outcome:?}");
    assert!(
        outcome
            .results
            .iter()
            .all(|r| r.outcome == ServerOutcome::Applied)
    );

    let after = s.report();
    let site = after.site("Flowtime").unwrap();
    assert!(site.findings.is_empty(), "{:?}", site.findings);
    assert!(site.instances.iter().all(|i| i.key_group == Some('A')));
    for (i, name) in farmkey::demo::SERVERS.iter().enumerate() {
        let now = s.bytes(name, FLOWTIME);
        edit_confined(&before[i], &now).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(now.starts_with(b"\xEF\xBB\xBF"), "BOM kept");
        assert!(
            !String::from_utf8_lossy(&now)
                .replace("\r\n", "")
                .contains('\n'),
            "CRLF kept"
        );
        let dir = s.file(name, FLOWTIME).parent().unwrap().to_path_buf();
        let backups = backups_in(&dir);
        assert_eq!(backups.len(), 1, "{backups:?}");
        let backup_name = backups[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert_eq!(backup_name, format!("web.{}.farmkey.config", plan.stamp));
        assert_eq!(
            fs::read(&backups[0]).unwrap(),
            before[i],
            "the backup holds the old bytes"
        );
    }
    // No other file of any server changed (backups aside).
    let others_after: Vec<_> = s
        .all_files()
        .into_iter()
        .filter(|(p, _)| {
            !p.ends_with("Flowtime/web.config") && !p.to_string_lossy().contains(".farmkey")
        })
        .collect();
    assert_eq!(others_before, others_after);
    // The audit log: one line per server, fingerprints only.
    let records = s.audit.read_all().unwrap();
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .all(|r| r.outcome == "applied" && r.action == "push" && r.push_id == plan.push_id)
    );
    assert_eq!(
        records[0].fingerprints_after.validation_key,
        plan.keys.as_ref().map(|k| k.validation_key.fingerprint())
    );
}

#[test]
fn adopting_leaves_the_adopted_server_untouched_and_fixes_the_handler() {
    let s = setup();
    let web01_before = s.bytes("web01", FLOWTIME);
    let togo_before: Vec<Vec<u8>> = farmkey::demo::SERVERS
        .iter()
        .map(|n| s.bytes(n, TOGO))
        .collect();
    let report = s.report();
    let mut sessions = s.sessions();
    let plan = build_plan(
        &request("Flowtime", KeySource::Adopt(None)),
        &report,
        &mut sessions,
    )
    .unwrap();
    assert!(
        plan.source.contains("adopt set A from web01"),
        "{}",
        plan.source
    );
    let actions: Vec<_> = plan.servers.iter().map(|p| p.action.clone()).collect();
    assert_eq!(
        actions,
        [
            PlanAction::Unchanged,
            PlanAction::Unchanged,
            PlanAction::Write
        ]
    );
    let outcome = apply(&plan, &mut sessions, &s.audit, &mut |_| {});
    assert!(outcome.success());
    assert_eq!(
        s.bytes("web01", FLOWTIME),
        web01_before,
        "the adopted server's file is untouched"
    );
    assert!(backups_in(s.file("web01", FLOWTIME).parent().unwrap()).is_empty());
    assert!(
        s.report()
            .site("Flowtime")
            .unwrap()
            .findings
            .iter()
            .all(|f| f.code.name() == "weak-validation")
    );

    // The handler swap alone, on Process TOGO.
    let report = s.report();
    let plan = build_plan(
        &request("Process TOGO", KeySource::HandlerOnly),
        &report,
        &mut sessions,
    )
    .unwrap();
    assert_eq!(plan.writes(), 1);
    assert!(plan.servers[2].handler_swap);
    let outcome = apply(&plan, &mut sessions, &s.audit, &mut |_| {});
    assert!(outcome.success());
    assert_eq!(s.bytes("web01", TOGO), togo_before[0]);
    edit_confined(&togo_before[2], &s.bytes("web03", TOGO)).unwrap();
    let site = s.report();
    let site = site.site("Process TOGO").unwrap();
    assert!(
        site.instances
            .iter()
            .all(|i| i.effective.as_ref().unwrap().handler.state.name() == "machinekey")
    );
    assert!(
        site.findings
            .iter()
            .all(|f| f.code.name() == "weak-validation"),
        "{:?}",
        site.findings
    );
}

#[test]
fn a_file_changed_after_the_scan_is_skipped_and_the_rest_rolled_back() {
    let s = setup();
    let original = s.flowtime_files();
    let (mut sessions, plan) = s.plan(request("Flowtime", generate()));
    // Someone edits web02 between the plan and the push.
    let edited = String::from_utf8(original[1].clone())
        .unwrap()
        .replace("Production", "Staging");
    fs::write(s.file("web02", FLOWTIME), &edited).unwrap();
    let outcome = apply(&plan, &mut sessions, &s.audit, &mut |_| {});
    assert!(!outcome.success());
    let by = |n: &str| {
        outcome
            .results
            .iter()
            .find(|r| r.server == n)
            .unwrap()
            .outcome
            .clone()
    };
    assert_eq!(by("web01"), ServerOutcome::RolledBack);
    assert!(
        matches!(by("web02"), ServerOutcome::Skipped(ref w) if w.contains("changed since the scan")),
        "{:?}",
        by("web02")
    );
    assert!(matches!(by("web03"), ServerOutcome::NotAttempted(_)));
    assert_eq!(
        s.bytes("web01", FLOWTIME),
        original[0],
        "web01 is back to its original bytes"
    );
    assert_eq!(
        s.bytes("web02", FLOWTIME),
        edited.as_bytes(),
        "the other edit is kept"
    );
    assert_eq!(s.bytes("web03", FLOWTIME), original[2]);
    assert!(
        outcome.summary().contains("rolled back"),
        "{}",
        outcome.summary()
    );
    let actions: Vec<(String, String)> = s
        .audit
        .read_all()
        .unwrap()
        .into_iter()
        .map(|r| (r.server, format!("{} {}", r.action, r.outcome)))
        .collect();
    assert_eq!(
        actions,
        [
            ("web01", "push applied"),
            ("web02", "push skipped"),
            ("web03", "push not-attempted"),
            ("web01", "rollback rolled-back"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}

#[test]
fn the_second_sshd_killed_mid_push_rolls_the_first_back_and_loses_nothing() {
    let s = setup();
    let original = s.flowtime_files();
    let (mut sessions, plan) = s.plan(request("Flowtime", generate()));
    assert_eq!(plan.writes(), 3);
    let web02 = s.farm.server("web02");
    let mut on_progress = |p: Progress| {
        if let Progress::Done(r) = &p
            && r.server == "web01"
        {
            web02.crash();
        }
    };
    let outcome = apply(&plan, &mut sessions, &s.audit, &mut on_progress);
    let by = |n: &str| {
        outcome
            .results
            .iter()
            .find(|r| r.server == n)
            .unwrap()
            .outcome
            .clone()
    };
    assert_eq!(by("web01"), ServerOutcome::RolledBack, "{outcome:?}");
    assert!(
        matches!(by("web02"), ServerOutcome::Failed { .. }),
        "{:?}",
        by("web02")
    );
    assert!(matches!(by("web03"), ServerOutcome::NotAttempted(_)));
    assert!(!outcome.success());
    let text: Vec<String> = outcome
        .results
        .iter()
        .map(|r| format!("{}: {}", r.server, r.outcome))
        .collect();
    assert!(
        text[0].contains("rolled back: original bytes restored"),
        "{text:?}"
    );
    assert!(
        text[1].contains("connection") || text[1].contains("stopped answering"),
        "{text:?}"
    );
    for (i, n) in farmkey::demo::SERVERS.iter().enumerate() {
        assert_eq!(
            s.bytes(n, FLOWTIME),
            original[i],
            "{n} holds its original bytes"
        );
    }
}

#[test]
fn a_server_without_write_permission_fails_cleanly_and_the_first_is_rolled_back() {
    let s = setup();
    let original: Vec<Vec<u8>> = farmkey::demo::SERVERS
        .iter()
        .map(|n| s.bytes(n, FLOWTIME))
        .collect();
    let dir = s.file("web02", FLOWTIME).parent().unwrap().to_path_buf();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    let report = s.report();
    let mut sessions = s.sessions();
    let plan = build_plan(&request("Flowtime", generate()), &report, &mut sessions).unwrap();
    let outcome = apply(&plan, &mut sessions, &s.audit, &mut |_| {});
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let by = |n: &str| {
        outcome
            .results
            .iter()
            .find(|r| r.server == n)
            .unwrap()
            .outcome
            .clone()
    };
    assert_eq!(by("web01"), ServerOutcome::RolledBack);
    match by("web02") {
        ServerOutcome::Failed { error, restore, .. } => {
            assert!(error.contains("permission denied"), "{error}");
            assert_eq!(restore, farmkey::push::apply::Restore::Untouched);
        }
        other => panic!("{other:?}"),
    }
    for (i, n) in farmkey::demo::SERVERS.iter().enumerate() {
        assert_eq!(s.bytes(n, FLOWTIME), original[i], "{n}");
    }
    assert!(backups_in(&dir).is_empty());
}

#[test]
fn headless_push_rollback_dry_run_and_no_key_anywhere() {
    let s = setup();
    let inv = s.farm.inventory("");
    let audit = s.farm.home.path().join("audit.jsonl");
    let run = |args: &[&str]| {
        let out = s
            .farm
            .farmkey()
            .args(args)
            .args([
                "--batch",
                "--ssh-config",
                "/nonexistent",
                "--audit",
                audit.to_str().unwrap(),
                "-i",
                inv.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let keys_in_farm = |s: &Setup| -> Vec<String> {
        let mut keys = Vec::new();
        for (_, bytes) in s.all_files() {
            for w in String::from_utf8_lossy(&bytes).split(|c: char| !c.is_ascii_hexdigit()) {
                if w.len() >= 32 && !keys.contains(&w.to_string()) {
                    keys.push(w.to_string());
                }
            }
        }
        keys
    };
    let mut outputs = String::new();

    // --dry-run writes nothing.
    let before = s.all_files();
    let (code, out) = run(&["push", "--site", "Flowtime", "--generate", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("+    <machineKey") || out.contains("[key "),
        "{out}"
    );
    assert!(out.contains("Dry run: nothing was written."));
    assert_eq!(s.all_files(), before, "a dry run changed a file");
    assert!(!audit.exists());
    outputs.push_str(&out);

    // --batch needs --yes.
    let (code, out) = run(&["push", "--site", "Flowtime", "--generate"]);
    assert_eq!(code, 2, "{out}");
    // Bad usage.
    assert_eq!(run(&["push", "--site", "Flowtime"]).0, 2);
    assert_eq!(run(&["push", "--site", "Nope", "--generate", "--yes"]).0, 2);
    assert_eq!(
        run(&["push", "--site", "Flowtime", "--adopt", "web09", "--yes"]).0,
        2
    );

    let original = s.bytes("web02", FLOWTIME);
    let (code, out) = run(&["push", "--site", "Flowtime", "--generate", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("applied and verified") && out.contains("in step on every targeted server"),
        "{out}"
    );
    outputs.push_str(&out);
    // history reads only the audit log: it takes no connection options.
    let out = s
        .farm
        .farmkey()
        .args(["history", "--site", "Flowtime", "--audit"])
        .arg(&audit)
        .output()
        .unwrap();
    let (code, out) = (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("web01 applied, web02 applied, web03 applied"),
        "{out}"
    );
    outputs.push_str(&out);

    let (code, out) = run(&["rollback", "--site", "Flowtime", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.matches("restored and verified").count() == 3, "{out}");
    assert_eq!(
        s.bytes("web02", FLOWTIME),
        original,
        "rollback restores the original bytes"
    );
    outputs.push_str(&out);

    // Push again, then change a file: rollback refuses that server.
    let (code, out) = run(&["push", "--site", "Flowtime", "--generate", "--yes"]);
    assert_eq!(code, 0, "{out}");
    outputs.push_str(&out);
    let path = s.file("web03", FLOWTIME);
    let changed = fs::read_to_string(&path)
        .unwrap()
        .replace("Production", "Hotfix");
    fs::write(&path, &changed).unwrap();
    let (code, out) = run(&["rollback", "--site", "Flowtime", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("web03") && out.contains("refused") && out.contains("changed since push"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        changed,
        "a changed file is never overwritten"
    );
    outputs.push_str(&out);

    // No key, old or new, in any output or in the audit log.
    let audit_text = fs::read_to_string(&audit).unwrap();
    let keys = keys_in_farm(&s);
    assert!(keys.len() >= 8, "{}", keys.len());
    for k in &keys {
        for text in [&outputs, &audit_text] {
            assert!(
                !text.to_uppercase().contains(&k.to_uppercase()[..32]),
                "a key leaked"
            );
        }
    }
}

/// A transport that fails one chosen operation, on top of a real one.
struct Faulty {
    inner: Box<dyn farmkey::transport::Transport>,
    fail: &'static str,
    after: usize,
    calls: usize,
}

impl farmkey::transport::Transport for Faulty {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn read(
        &mut self,
        p: &farmkey::paths::RemotePath,
    ) -> Result<farmkey::bytes::FileBytes, farmkey::transport::TransportError> {
        self.maybe("read", p)?;
        self.inner.read(p)
    }
    fn stat(
        &mut self,
        p: &farmkey::paths::RemotePath,
    ) -> Result<Option<farmkey::transport::FileStat>, farmkey::transport::TransportError> {
        self.inner.stat(p)
    }
    fn write(
        &mut self,
        p: &farmkey::paths::RemotePath,
        b: &[u8],
    ) -> Result<(), farmkey::transport::TransportError> {
        self.maybe("write", p)?;
        self.inner.write(p, b)
    }
    fn rename(
        &mut self,
        a: &farmkey::paths::RemotePath,
        b: &farmkey::paths::RemotePath,
    ) -> Result<(), farmkey::transport::TransportError> {
        self.maybe("rename", a)?;
        self.inner.rename(a, b)
    }
    fn replace(
        &mut self,
        a: &farmkey::paths::RemotePath,
        b: &farmkey::paths::RemotePath,
    ) -> Result<(), farmkey::transport::TransportError> {
        if self.fail == "no-posix-rename" {
            return Err(farmkey::transport::TransportError::Unsupported(
                "posix-rename@openssh.com",
            ));
        }
        self.maybe("replace", a)?;
        self.inner.replace(a, b)
    }
    fn remove(
        &mut self,
        p: &farmkey::paths::RemotePath,
    ) -> Result<(), farmkey::transport::TransportError> {
        self.inner.remove(p)
    }
    fn list(
        &mut self,
        p: &farmkey::paths::RemotePath,
    ) -> Result<Vec<farmkey::transport::DirEntry>, farmkey::transport::TransportError> {
        self.inner.list(p)
    }
}

impl Faulty {
    fn maybe(
        &mut self,
        op: &str,
        p: &farmkey::paths::RemotePath,
    ) -> Result<(), farmkey::transport::TransportError> {
        if op == self.fail {
            self.calls += 1;
            if self.calls == self.after {
                return Err(farmkey::transport::TransportError::Io {
                    path: p.clone(),
                    message: format!("injected {op} failure"),
                });
            }
        }
        Ok(())
    }
}

#[test]
fn injected_failures_at_each_step_restore_the_file() {
    // (operation, which call fails) on web02 of a local copy of the demo farm.
    for (fail, after) in [
        ("write", 1),
        ("write", 2),
        ("replace", 1),
        ("read", 4),
        ("read", 5),
        ("no-posix-rename", 0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let inv_path = farmkey::demo::lay_out(dir.path()).unwrap();
        let inv = Inventory::load(&inv_path).unwrap();
        let read = |n: &str| fs::read(dir.path().join(n).join(FLOWTIME)).unwrap();
        let original: Vec<Vec<u8>> = farmkey::demo::SERVERS.iter().map(|n| read(n)).collect();
        let report = analyze(&scan_all(&inv.servers, opts(), 3), &Selection::default());
        let mut sessions = Sessions::new(inv.servers.clone(), opts());
        let plan = build_plan(&request("Flowtime", generate()), &report, &mut sessions).unwrap();
        let inner = farmkey::transport::connect(&inv.servers[1], &opts()).unwrap();
        sessions.insert(
            "web02",
            Box::new(Faulty {
                inner,
                fail,
                after,
                calls: 0,
            }),
        );
        let audit = AuditLog::new(dir.path().join("audit.jsonl"));
        let outcome = apply(&plan, &mut sessions, &audit, &mut |_| {});
        let web02 = &outcome.results[1];
        if fail == "no-posix-rename" {
            // Without posix-rename the file is swapped by two renames.
            assert!(outcome.success(), "{outcome:?}");
            let left: Vec<_> = backups_in(&dir.path().join("web02/C:/inetpub/Cora/Flowtime"));
            assert_eq!(left.len(), 1, "only the backup remains: {left:?}");
            continue;
        }
        assert!(
            matches!(web02.outcome, ServerOutcome::Failed { .. }),
            "{fail}/{after}: {:?}",
            web02.outcome
        );
        assert_eq!(
            outcome.results[0].outcome,
            ServerOutcome::RolledBack,
            "{fail}/{after}"
        );
        for (i, n) in farmkey::demo::SERVERS.iter().enumerate() {
            assert_eq!(read(n), original[i], "{fail}/{after}: {n}");
        }
        // No staged or partial file is left behind, only whole backups.
        for n in farmkey::demo::SERVERS {
            for f in backups_in(&dir.path().join(n).join("C:/inetpub/Cora/Flowtime")) {
                let name = f.file_name().unwrap().to_string_lossy().to_string();
                assert!(
                    name.ends_with(".farmkey.config"),
                    "{fail}/{after}: {name} left behind"
                );
                assert_eq!(fs::read(&f).unwrap(), original[1], "{fail}/{after}: {name}");
            }
        }
    }
}

#[test]
fn keep_partial_leaves_the_servers_already_changed() {
    let s = setup();
    let dir = s.file("web02", FLOWTIME).parent().unwrap().to_path_buf();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    let report = s.report();
    let mut sessions = s.sessions();
    let mut req = request("Flowtime", generate());
    req.keep_partial = true;
    let plan = build_plan(&req, &report, &mut sessions).unwrap();
    let outcome = apply(&plan, &mut sessions, &s.audit, &mut |_| {});
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let names: Vec<&str> = outcome.results.iter().map(|r| r.outcome.name()).collect();
    assert_eq!(names, ["applied", "failed", "not-attempted"]);
    assert!(!outcome.success());
    assert!(
        s.audit
            .read_all()
            .unwrap()
            .iter()
            .all(|r| r.action == "push")
    );
}

#[test]
fn two_pushes_in_one_second_keep_both_backups() {
    let dir = tempfile::tempdir().unwrap();
    let inv = Inventory::load(&farmkey::demo::lay_out(dir.path()).unwrap()).unwrap();
    let audit = AuditLog::new(dir.path().join("audit.jsonl"));
    let first = fs::read(dir.path().join("web03").join(FLOWTIME)).unwrap();
    let mut stamps = Vec::new();
    for _ in 0..2 {
        let report = analyze(&scan_all(&inv.servers, opts(), 3), &Selection::default());
        let mut sessions = Sessions::new(inv.servers.clone(), opts());
        let plan = build_plan(&request("Flowtime", generate()), &report, &mut sessions).unwrap();
        let outcome = apply(&plan, &mut sessions, &audit, &mut |_| {});
        assert!(outcome.success(), "{outcome:?}");
        stamps.push(plan.servers[2].backup.clone());
    }
    assert_ne!(stamps[0], stamps[1]);
    let backups = backups_in(&dir.path().join("web03/C:/inetpub/Cora/Flowtime"));
    assert_eq!(backups.len(), 2, "{backups:?}");
    assert_eq!(
        fs::read(dir.path().join("web03").join(&stamps[0].as_sftp()[1..])).unwrap(),
        first
    );
}
