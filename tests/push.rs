//! Pushing against real sshd servers: exact outcomes, byte-identity outside
//! the edit, backups, failures mid-push, rollback, and no key in any
//! output. A fault-injecting wrapper adds cases on top; the interruption
//! and concurrency cases run the real binary.

mod support;

use farmkey::analysis::{Code, FarmReport, Selection, analyze};
use farmkey::farm::scan_all;
use farmkey::inventory::Inventory;
use farmkey::keys::{Decryption, Validation};
use farmkey::paths::RemotePath;
use farmkey::push::apply::{FinalState, Foreign, NotAttempted, Progress, Restore, Step};
use farmkey::push::audit::{AuditAction, AuditLog};
use farmkey::push::lock::LockError;
use farmkey::push::{
    BlockReason, Interrupt, KeySource, Plan, PlanAction, PlanVerdict, PushOutcome, PushRefusal,
    PushRequest, PushVerdict, Remedy, ServerOutcome, Sessions, apply, build_plan,
};
use farmkey::transport::{
    ConnectOptions, DirEntry, FileStat, LinkEnd, NewFile, Transport, TransportError,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::sshd::{Options, SshFarm, demo_over_ssh};
use support::*;

const FLOWTIME: &str = "C:/inetpub/Cora/Flowtime/web.config";
const FLOWTIME_DIR: &str = "C:/inetpub/Cora/Flowtime";
const TOGO: &str = "C:/Program Files/PNMsoft/Process TOGO/web.config";
const TOGO_IDENTITY: &str = "C:/Program Files/PNMsoft/Process TOGO/App_Config/identity.config";
const SERVERS: [&str; 3] = farmkey::demo::SERVERS;

fn opts() -> ConnectOptions {
    ConnectOptions {
        ssh_config: Some(PathBuf::from("/nonexistent/ssh_config")),
        ..Default::default()
    }
}

fn request(site: &str, source: KeySource) -> PushRequest {
    PushRequest::new(site, source)
}

fn generate() -> KeySource {
    KeySource::Generate {
        validation: Validation::HmacSha256,
        decryption: Decryption::Aes,
    }
}

fn run(plan: &Plan, sessions: &mut Sessions, audit: &AuditLog) -> PushOutcome {
    apply(plan, sessions, audit, &Interrupt::new(), &mut |_| {})
}

/// Applies `plan`, running `then` once web01 is applied and reported.
fn run_then(
    plan: &Plan,
    sessions: &mut Sessions,
    audit: &AuditLog,
    mut then: impl FnMut(),
) -> PushOutcome {
    apply(plan, sessions, audit, &Interrupt::new(), &mut |p| {
        if let Progress::Done(r) = &p
            && r.server == "web01"
            && r.outcome == ServerOutcome::Applied
        {
            then();
        }
    })
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

/// Files farmkey must never leave behind: staged copies, restore copies,
/// files moved aside, locks (backups end in `.farmkey.config`).
fn leftovers_in(dir: &Path) -> Vec<String> {
    backups_in(dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .filter(|n| !n.ends_with(".farmkey.config"))
        .collect()
}

/// The demo farm behind three sshd.
struct Setup {
    _demo: farmkey::demo::DemoFarm,
    farm: SshFarm,
    inventory: Inventory,
    audit: AuditLog,
    _state: tempfile::TempDir,
}

/// Connections wait this long: a loaded machine is not a server that does
/// not answer (which the plan would rightly refuse to push around).
const PATIENT_SECS: u64 = 20;

fn setup() -> Setup {
    setup_waiting(PATIENT_SECS)
}

/// With connections that give up after `secs`.
fn setup_waiting(secs: u64) -> Setup {
    let (demo, farm) = demo_over_ssh(Options::default());
    let inventory = Inventory::load(&farm.inventory_timeout(secs)).unwrap();
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

/// Every site of the inventory's servers, scanned and analysed.
fn report_of(inventory: &Inventory) -> FarmReport {
    analyze(&scan_all(&inventory.servers, opts(), 8), &all_sites())
}

impl Setup {
    /// The audit log the real binary is given (`--audit`) in these tests.
    fn binary_audit(&self) -> PathBuf {
        self.farm.home.path().join("audit.jsonl")
    }

    fn report(&self) -> FarmReport {
        report_of(&self.inventory)
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
        SERVERS.iter().map(|n| self.bytes(n, FLOWTIME)).collect()
    }

    /// Scans and plans a push, with the sessions that will apply it.
    fn plan(&self, req: PushRequest) -> (Sessions, Plan) {
        let report = self.report();
        let mut sessions = self.sessions();
        let plan = build_plan(&req, &report, &mut sessions).unwrap();
        (sessions, plan)
    }

    /// Every file of every server, for before/after comparisons.
    fn all_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        self.farm.all_files()
    }

    /// No staged, restore, aside or lock file on any server.
    fn assert_clean(&self) {
        for n in SERVERS {
            let dir = self.file(n, FLOWTIME_DIR);
            assert_eq!(leftovers_in(&dir), Vec::<String>::new(), "{n}");
        }
    }

    /// The Flowtime key set fingerprint of every server, as scanned.
    fn key_sets(&self) -> Vec<Option<String>> {
        let report = self.report();
        let site = report.site("Flowtime").unwrap();
        SERVERS
            .iter()
            .map(|n| site.instance(n).unwrap().set_fingerprint.clone())
            .collect()
    }
}

/// web02 failed at its swap and was restored; every server holds its
/// original bytes, the push says so, and nothing is left behind.
fn assert_web02_swap_failed_and_restored(l: &Local, outcome: &PushOutcome, original: &[Vec<u8>]) {
    match by(outcome, "web02") {
        ServerOutcome::Failed { step, restore, .. } => {
            assert_eq!((*step, restore), (Step::Swap, &Restore::Restored));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(l.originals(), original);
    assert_eq!(outcome.verdict(), PushVerdict::AsBefore);
    l.assert_clean();
}

/// The demo farm laid out locally (fast, for the wrapper's cases).
struct Local {
    dir: tempfile::TempDir,
    inv: Inventory,
    audit: AuditLog,
}

fn local() -> Local {
    let dir = tempfile::tempdir().unwrap();
    let inv = Inventory::load(&farmkey::demo::lay_out(dir.path()).unwrap()).unwrap();
    let audit = AuditLog::new(dir.path().join("audit.jsonl"));
    Local { dir, inv, audit }
}

impl Local {
    fn path(&self, server: &str) -> PathBuf {
        self.dir.path().join(server).join(FLOWTIME)
    }

    fn read(&self, server: &str) -> Vec<u8> {
        fs::read(self.path(server)).unwrap()
    }

    fn originals(&self) -> Vec<Vec<u8>> {
        SERVERS.iter().map(|n| self.read(n)).collect()
    }

    fn report(&self) -> FarmReport {
        analyze(
            &scan_all(&self.inv.servers, opts(), 3),
            &Selection::default(),
        )
    }

    fn sessions(&self) -> Sessions {
        Sessions::new(self.inv.servers.clone(), opts())
    }

    /// web02 behind `wrap` from the plan on (so that its banner counts).
    fn plan_with(&self, wrap: Faulty, req: PushRequest) -> (Sessions, Plan) {
        let mut sessions = self.sessions();
        sessions.insert("web02", Box::new(wrap));
        let plan = build_plan(&req, &self.report(), &mut sessions).unwrap();
        (sessions, plan)
    }

    fn transport(&self, server: &str) -> Box<dyn Transport> {
        let s = self.inv.servers.iter().find(|s| s.name == server).unwrap();
        farmkey::transport::connect(s, &opts()).unwrap()
    }

    fn assert_clean(&self) {
        for n in SERVERS {
            let dir = self.path(n).parent().unwrap().to_path_buf();
            assert_eq!(leftovers_in(&dir), Vec::<String>::new(), "{n}");
        }
    }
}

type Before = Box<dyn FnMut(&str, &RemotePath) -> Result<(), TransportError> + Send>;
type After = Box<dyn FnMut(&str, &RemotePath) + Send>;

/// A transport on top of a real one that injects faults: `before` runs
/// ahead of every operation (its error is what the operation returns),
/// `after` after every successful one. It can also present a banner and
/// replace files the way Win32-OpenSSH before 8.6 does.
struct Faulty {
    inner: Box<dyn Transport>,
    before: Before,
    after: After,
    banner: Option<String>,
    /// posix-rename as Win32-OpenSSH 8.1: delete the target, then rename
    /// (`replace-rename` is the moment between the two).
    delete_then_rename: bool,
    /// Set when a rename onto the file's own name was asked (which deletes
    /// the file on those servers).
    renamed_onto_itself: Arc<AtomicBool>,
}

impl Faulty {
    fn new(inner: Box<dyn Transport>) -> Faulty {
        Faulty {
            inner,
            before: Box::new(|_, _| Ok(())),
            after: Box::new(|_, _| {}),
            banner: None,
            delete_then_rename: false,
            renamed_onto_itself: Arc::default(),
        }
    }

    fn failing(inner: Box<dyn Transport>, before: Before) -> Faulty {
        Faulty {
            before,
            ..Faulty::new(inner)
        }
    }

    fn op<T>(
        &mut self,
        name: &str,
        p: &RemotePath,
        f: impl FnOnce(&mut dyn Transport) -> Result<T, TransportError>,
    ) -> Result<T, TransportError> {
        (self.before)(name, p)?;
        let r = f(self.inner.as_mut());
        if r.is_ok() {
            (self.after)(name, p);
        }
        r
    }
}

/// Fails the `nth` call of `op` on a path containing `within`.
fn fail_nth(op: &'static str, within: &'static str, nth: usize, error: MakeError) -> Before {
    fail_calls(op, within, nth, 1, error)
}

/// Fails `count` calls of `op` on a path containing `within` from the
/// `from`th on.
fn fail_calls(
    op: &'static str,
    within: &'static str,
    from: usize,
    count: usize,
    error: MakeError,
) -> Before {
    let mut n = 0;
    Box::new(move |o, p| {
        if o == op && p.as_sftp().contains(within) {
            n += 1;
            if (from..from + count).contains(&n) {
                return Err(error(p));
            }
        }
        Ok(())
    })
}

type MakeError = fn(&RemotePath) -> TransportError;

fn injected(p: &RemotePath) -> TransportError {
    TransportError::Io {
        path: p.clone(),
        message: "injected failure".into(),
    }
}

fn full(p: &RemotePath) -> TransportError {
    TransportError::NoSpace { path: p.clone() }
}

fn lost(_: &RemotePath) -> TransportError {
    TransportError::Disconnected("injected: connection lost".into())
}

impl Transport for Faulty {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn read(&mut self, p: &RemotePath) -> Result<farmkey::bytes::FileBytes, TransportError> {
        self.op("read", p, |t| t.read(p))
    }
    fn stat(&mut self, p: &RemotePath) -> Result<Option<FileStat>, TransportError> {
        self.op("stat", p, |t| t.stat(p))
    }
    fn lstat(&mut self, p: &RemotePath) -> Result<Option<FileStat>, TransportError> {
        self.op("lstat", p, |t| t.lstat(p))
    }
    fn readlink(&mut self, p: &RemotePath) -> Result<String, TransportError> {
        self.op("readlink", p, |t| t.readlink(p))
    }
    fn link_end(&mut self, p: &RemotePath) -> Result<LinkEnd, TransportError> {
        self.op("link_end", p, |t| t.link_end(p))
    }
    fn set_read_limit(&mut self, max_bytes: u64) {
        self.inner.set_read_limit(max_bytes)
    }
    fn create_new(
        &mut self,
        p: &RemotePath,
        b: &[u8],
        new: &NewFile,
    ) -> Result<(), TransportError> {
        self.op("create_new", p, |t| t.create_new(p, b, new))
    }
    fn set_attrs(&mut self, p: &RemotePath, new: &NewFile) -> Result<(), TransportError> {
        self.op("set_attrs", p, |t| t.set_attrs(p, new))
    }
    fn rename(&mut self, a: &RemotePath, b: &RemotePath) -> Result<(), TransportError> {
        self.op("rename", a, |t| t.rename(a, b))
    }
    fn replace(&mut self, a: &RemotePath, b: &RemotePath) -> Result<(), TransportError> {
        if !self.delete_then_rename {
            return self.op("replace", a, |t| t.replace(a, b));
        }
        (self.before)("replace", a)?;
        if a.key() == b.key() {
            // Win32-OpenSSH #1849: the file is gone.
            self.renamed_onto_itself.store(true, Ordering::SeqCst);
            return self.inner.remove(b);
        }
        match self.inner.remove(b) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        (self.before)("replace-rename", a)?;
        self.inner.rename(a, b)?;
        (self.after)("replace", a);
        Ok(())
    }
    fn remove(&mut self, p: &RemotePath) -> Result<(), TransportError> {
        self.op("remove", p, |t| t.remove(p))
    }
    fn list(&mut self, p: &RemotePath) -> Result<Vec<DirEntry>, TransportError> {
        self.op("list", p, |t| t.list(p))
    }
    fn banner(&self) -> Option<String> {
        self.banner.clone().or_else(|| self.inner.banner())
    }
}

// ---------------------------------------------------------------------
// The push as it should go, and the plan.

#[test]
fn a_generated_push_brings_the_site_into_step_touching_nothing_else() {
    let s = setup();
    let before = s.flowtime_files();
    let others_before: Vec<_> = s
        .all_files()
        .into_iter()
        .filter(|(p, _)| !p.ends_with("Flowtime/web.config"))
        .collect();
    let (mut sessions, plan) = s.plan(request("Flowtime", generate()));
    assert_eq!(plan.writes(), 3);
    assert_eq!(plan.verdict(), PlanVerdict::Ready, "{plan}");
    let outcome = run(&plan, &mut sessions, &s.audit);
    assert!(outcome.success(), "{outcome:?}");
    assert!(
        outcome
            .results
            .iter()
            .all(|r| r.outcome == ServerOutcome::Applied)
    );
    assert!(
        outcome
            .final_state
            .iter()
            .all(|(_, f)| *f == FinalState::Pushed),
        "re-read from every server: {:?}",
        outcome.final_state
    );
    assert!(
        outcome
            .summary()
            .contains("Flowtime is in step on every server"),
        "{}",
        outcome.summary()
    );

    let after = s.report();
    let site = after.site("Flowtime").unwrap();
    assert!(site.findings.is_empty(), "{:?}", site.findings);
    assert!(site.instances.iter().all(|i| i.key_group == Some('A')));
    for (i, name) in SERVERS.iter().enumerate() {
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
        assert_eq!(backups.len(), 1, "only the backup remains: {backups:?}");
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
    // The audit log: per server the intent, then the outcome; fingerprints only.
    let records = s.audit.read_all().unwrap();
    let outcomes: Vec<(String, String)> = records
        .iter()
        .map(|r| (r.server.clone(), r.outcome.to_string()))
        .collect();
    let expected: Vec<(String, String)> = SERVERS
        .iter()
        .flat_map(|n| {
            [
                (n.to_string(), "intent".into()),
                (n.to_string(), "applied".into()),
            ]
        })
        .collect();
    assert_eq!(outcomes, expected);
    assert!(
        records
            .iter()
            .all(|r| r.action == AuditAction::Push && r.push_id == plan.push_id)
    );
    assert_eq!(
        records[1].fingerprints_after.validation_key,
        plan.keys.as_ref().map(|k| k.validation_key.fingerprint())
    );
}

#[test]
fn adopting_leaves_the_adopted_server_untouched_and_fixes_the_handler() {
    let s = setup();
    let web01_before = s.bytes("web01", FLOWTIME);
    let togo_before: Vec<Vec<u8>> = SERVERS.iter().map(|n| s.bytes(n, TOGO)).collect();
    let (mut sessions, plan) = s.plan(request("Flowtime", KeySource::Adopt(None)));
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
    let outcome = run(&plan, &mut sessions, &s.audit);
    assert!(outcome.success(), "{}", outcome.summary());
    assert_eq!(
        outcome
            .final_state
            .iter()
            .map(|(_, f)| f.clone())
            .collect::<Vec<_>>(),
        [FinalState::Correct, FinalState::Correct, FinalState::Pushed]
    );
    assert_eq!(
        s.bytes("web01", FLOWTIME),
        web01_before,
        "the adopted server's file is untouched"
    );
    assert!(backups_in(s.file("web01", FLOWTIME).parent().unwrap()).is_empty());
    s.assert_clean();
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
    let outcome = run(&plan, &mut sessions, &s.audit);
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
fn a_file_changed_after_the_plan_stops_the_push_before_anything_is_written() {
    let s = setup();
    let original = s.flowtime_files();
    let (mut sessions, plan) = s.plan(request("Flowtime", generate()));
    // Someone edits web02 between the plan and the push.
    let edited = String::from_utf8(original[1].clone())
        .unwrap()
        .replace("Production", "Staging");
    fs::write(s.file("web02", FLOWTIME), &edited).unwrap();
    let outcome = run(&plan, &mut sessions, &s.audit);
    assert_eq!(outcome.verdict(), PushVerdict::AsBefore);
    let refused = outcome.refused.clone().unwrap();
    assert!(
        matches!(&refused, PushRefusal::Changed { server, .. } if server == "web02"),
        "{refused}"
    );
    assert!(refused.to_string().contains("changed since the plan"));
    assert!(outcome.summary().contains("nothing was written"));
    assert_eq!(s.bytes("web01", FLOWTIME), original[0]);
    assert_eq!(s.bytes("web02", FLOWTIME), edited.as_bytes());
    assert_eq!(s.bytes("web03", FLOWTIME), original[2]);
    s.assert_clean();
    assert!(s.audit.read_all().unwrap().is_empty());
}

// ---------------------------------------------------------------------
// Row 1: fail closed.

#[test]
fn an_unreachable_server_or_a_changed_host_key_blocks_the_push_until_left_out_by_name() {
    let mut s = setup();
    let original = s.flowtime_files();
    s.farm.server_mut("web03").kill();
    let (mut sessions, plan) = s.plan(request("Flowtime", generate()));
    let verdict = plan.verdict();
    let blocks = verdict.blocks();
    assert_eq!(blocks.len(), 1, "{plan}");
    assert_eq!(blocks[0].server, "web03");
    assert!(
        matches!(&blocks[0].reason, BlockReason::Unread { site, .. } if site == "Flowtime"),
        "{verdict:?}"
    );
    assert_eq!(
        verdict.remedies(),
        vec![Remedy::ScanAgain, Remedy::Exclude("web03".into())]
    );
    let text = plan.to_string();
    assert!(
        text.contains("web03      CANNOT BE PUSHED: could not be read by the scan"),
        "{text}"
    );
    assert!(text.contains("Blocked: nothing is written"), "{text}");
    let outcome = run(&plan, &mut sessions, &s.audit);
    assert_eq!(outcome.verdict(), PushVerdict::AsBefore);
    assert!(
        matches!(&outcome.refused, Some(PushRefusal::Blocked(b)) if b[0].server == "web03"),
        "{outcome:?}"
    );
    assert_eq!(s.bytes("web01", FLOWTIME), original[0]);
    assert_eq!(s.bytes("web02", FLOWTIME), original[1]);
    s.assert_clean();

    // Named, it is left out, and the plan says what that means.
    let mut req = request("Flowtime", generate());
    req.exclude = vec!["web03".into()];
    let (mut sessions, plan) = s.plan(req);
    assert_eq!(plan.verdict(), PlanVerdict::Ready, "{plan}");
    let text = plan.to_string();
    assert!(
        text.contains("web03      left out (by name; the scan could not read it)")
            && text.contains("signed out"),
        "{text}"
    );
    let outcome = run(&plan, &mut sessions, &s.audit);
    assert!(outcome.success(), "{}", outcome.summary());
    assert!(outcome.summary().contains("Left out by name: web03"));
    assert_ne!(s.bytes("web01", FLOWTIME), original[0]);

    // A changed host key blocks too.
    let s = setup();
    let kh = fs::read_to_string(&s.farm.known_hosts).unwrap();
    let port = s.farm.server("web02").port;
    let other = s.farm.server("web01").host_key.clone();
    let changed: String = kh
        .lines()
        .map(|l| {
            if l.starts_with(&format!("[127.0.0.1]:{port} ")) {
                format!("[127.0.0.1]:{port} {other}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    fs::write(&s.farm.known_hosts, changed).unwrap();
    let (_sessions, plan) = s.plan(request("Flowtime", generate()));
    let verdict = plan.verdict();
    let blocks = verdict.blocks();
    assert!(
        blocks.len() == 1
            && blocks[0].server == "web02"
            && matches!(blocks[0].reason, BlockReason::Unread { .. })
            && blocks[0]
                .reason
                .to_string()
                .contains("HOST IDENTIFICATION HAS CHANGED"),
        "{verdict:?}"
    );
}

// ---------------------------------------------------------------------
// Row 2 and item 2: one pusher per site.

#[test]
fn a_lock_held_by_another_push_blocks_and_a_stale_one_is_broken_only_on_request() {
    let s = setup();
    let original = s.flowtime_files();
    let lock = s.file("web02", "C:/inetpub/Cora/Flowtime/web.farmkey-lock.config");
    let stale = STALE_LOCK;
    fs::write(&lock, stale).unwrap();
    let (mut sessions, plan) = s.plan(request("Flowtime", generate()));
    let text = plan.to_string();
    assert!(
        text.contains("LOCKED")
            && text.contains(
                "web02 is locked by push 20200101T000000Z-dead of alice on jump9 (pid 4242)"
            )
            && text.contains("ago"),
        "{text}"
    );
    // Stale: the one remedy is breaking it (the front ends word it).
    assert!(
        matches!(plan.verdict().remedies().as_slice(), [Remedy::BreakLock(h)] if h.server == "web02"),
        "{:?}",
        plan.verdict()
    );
    let outcome = run(&plan, &mut sessions, &s.audit);
    assert_eq!(outcome.verdict(), PushVerdict::AsBefore);
    assert_eq!(s.flowtime_files(), original);
    assert_eq!(
        fs::read_to_string(&lock).unwrap(),
        stale,
        "never broken unasked"
    );

    let mut req = request("Flowtime", generate());
    req.break_lock = true;
    let (mut sessions, plan) = s.plan(req);
    assert_eq!(plan.verdict(), PlanVerdict::Ready);
    assert!(plan.to_string().contains("broken, as asked"), "{plan}");
    let mut notes = Vec::new();
    let outcome = apply(
        &plan,
        &mut sessions,
        &s.audit,
        &Interrupt::new(),
        &mut |p| {
            if let Progress::Note(n) = p {
                notes.push(n)
            }
        },
    );
    assert!(outcome.success(), "{}", outcome.summary());
    assert!(
        notes.iter().any(|n| n.contains("broke the stale lock")),
        "{notes:?}"
    );
    s.assert_clean();

    // A lock taken after the plan (another push started since) is never
    // broken, even with --break-lock: the push stops before writing.
    let before = s.flowtime_files();
    let mut req = request("Flowtime", generate());
    req.break_lock = true;
    let (mut sessions, plan) = s.plan(req);
    let other = stale
        .replace("dead", "live")
        .replace("2020-01-01", "2030-01-01");
    fs::write(&lock, &other).unwrap();
    let outcome = run(&plan, &mut sessions, &s.audit);
    let refused = outcome.refused.clone().unwrap();
    assert!(
        matches!(&refused, PushRefusal::Lock(LockError::Held(h))
            if h.push_id() == Some("20200101T000000Z-live")),
        "{refused}"
    );
    assert_eq!(s.flowtime_files(), before);
    assert_eq!(fs::read_to_string(&lock).unwrap(), other);
    fs::remove_file(&lock).unwrap();
    s.assert_clean();
}

// ---------------------------------------------------------------------
// Failures mid-push.

#[test]
fn the_second_sshd_killed_mid_push_rolls_the_first_back_and_loses_nothing() {
    let s = setup();
    let original = s.flowtime_files();
    let (mut sessions, plan) = s.plan(request("Flowtime", generate()));
    assert_eq!(plan.writes(), 3);
    let web02 = s.farm.server("web02");
    let outcome = run_then(&plan, &mut sessions, &s.audit, || {
        web02.crash();
    });
    assert_eq!(
        *by(&outcome, "web01"),
        ServerOutcome::RolledBack,
        "{outcome:?}"
    );
    match by(&outcome, "web02") {
        ServerOutcome::Failed { error, restore, .. } => {
            assert!(error.is_disconnected(), "{error}");
            assert_eq!(*restore, Restore::Untouched);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        by(&outcome, "web03"),
        ServerOutcome::NotAttempted(_)
    ));
    // Nothing changed, and farmkey says so; web02 could not be re-read, but
    // it was never written; its lock could not be removed, and that is said.
    assert_eq!(
        outcome.verdict(),
        PushVerdict::AsBefore,
        "{}",
        outcome.summary()
    );
    let summary = outcome.summary();
    assert!(
        summary.contains("web01 rolled back")
            && summary.contains("web02, which could not be reached"),
        "{summary}"
    );
    assert!(
        summary.contains("web.farmkey-lock.config on web02"),
        "{summary}"
    );
    for (i, n) in SERVERS.iter().enumerate() {
        assert_eq!(
            s.bytes(n, FLOWTIME),
            original[i],
            "{n} holds its original bytes"
        );
    }
    for n in ["web01", "web03"] {
        assert!(leftovers_in(&s.file(n, FLOWTIME_DIR)).is_empty(), "{n}");
    }
}

#[test]
fn a_server_without_write_permission_stops_the_push_before_anything_is_written() {
    let s = setup();
    let original = s.flowtime_files();
    let dir = s.file("web02", FLOWTIME_DIR);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    let (mut sessions, plan) = s.plan(request("Flowtime", generate()));
    let outcome = run(&plan, &mut sessions, &s.audit);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let refused = outcome.refused.clone().unwrap();
    assert!(
        matches!(
            &refused,
            PushRefusal::Lock(LockError::Transport {
                error: TransportError::PermissionDenied { .. },
                ..
            })
        ),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("web.farmkey-lock.config"),
        "{refused}"
    );
    assert_eq!(s.flowtime_files(), original);
    s.assert_clean();
}

#[test]
fn injected_failures_at_each_step_restore_the_file_and_leave_nothing_behind() {
    // (operation, on a path containing, which call fails, how many in a
    // row, the error) on web02. A plain "failure" of a rename or a read may
    // be a held file: tried again five times (see the held-file tests); a
    // full disk is not.
    let cases: [(&str, &str, usize, usize, MakeError, Step); 8] = [
        (
            "create_new",
            ".farmkey.config",
            1,
            1,
            injected,
            Step::Backup,
        ),
        ("create_new", "-new.config", 1, 1, injected, Step::Stage),
        ("create_new", "-new.config", 1, 1, lost, Step::Stage),
        ("replace", "-new", 1, 1, full, Step::Swap),
        ("replace", "-new", 1, 1, lost, Step::Swap),
        // web.config is read by the plan, by the check under the locks, by
        // the re-read (3rd), then by the verification (4th).
        ("read", "Flowtime/web.config", 3, 5, injected, Step::Reread),
        ("read", "Flowtime/web.config", 4, 5, injected, Step::Verify),
        ("read", "Flowtime/web.config", 4, 1, lost, Step::Verify),
    ];
    for (op, within, nth, count, error, step) in cases {
        let l = local();
        let original = l.originals();
        let wrap = Faulty::failing(
            l.transport("web02"),
            fail_calls(op, within, nth, count, error),
        );
        let (mut sessions, plan) = l.plan_with(wrap, request("Flowtime", generate()));
        let outcome = run(&plan, &mut sessions, &l.audit);
        let case = format!("{op} {within} #{nth}");
        match by(&outcome, "web02") {
            ServerOutcome::Failed { step: got, .. } => assert_eq!(*got, step, "{case}"),
            other => panic!("{case}: {other:?}"),
        }
        assert_eq!(*by(&outcome, "web01"), ServerOutcome::RolledBack, "{case}");
        assert_eq!(
            outcome.verdict(),
            PushVerdict::AsBefore,
            "{case}: {}",
            outcome.summary()
        );
        for (i, n) in SERVERS.iter().enumerate() {
            assert_eq!(l.read(n), original[i], "{case}: {n}");
            for f in backups_in(l.path(n).parent().unwrap()) {
                assert_eq!(fs::read(&f).unwrap(), original[i], "{case}: {f:?}");
            }
        }
        l.assert_clean();
    }
}

#[test]
fn without_posix_rename_the_swap_takes_two_renames() {
    let l = local();
    let wrap = Faulty::failing(
        l.transport("web02"),
        Box::new(|op, _| match op {
            "replace" => Err(TransportError::Unsupported("posix-rename@openssh.com")),
            _ => Ok(()),
        }),
    );
    let (mut sessions, plan) = l.plan_with(wrap, request("Flowtime", generate()));
    let outcome = run(&plan, &mut sessions, &l.audit);
    assert!(outcome.success(), "{}", outcome.summary());
    let left = backups_in(l.path("web02").parent().unwrap());
    assert_eq!(left.len(), 1, "only the backup remains: {left:?}");
    l.assert_clean();

    // The connection is lost between the two renames: web.config is
    // missing, the original moved aside; it is restored, nothing is left.
    let l = local();
    let original = l.originals();
    let mut renames = fail_nth("rename", "-new", 1, lost);
    let wrap = Faulty::failing(
        l.transport("web02"),
        Box::new(move |op, p| match op {
            "replace" => Err(TransportError::Unsupported("posix-rename@openssh.com")),
            _ => renames(op, p),
        }),
    );
    let (mut sessions, plan) = l.plan_with(wrap, request("Flowtime", generate()));
    let outcome = run(&plan, &mut sessions, &l.audit);
    assert_web02_swap_failed_and_restored(&l, &outcome, &original);
}

#[test]
fn keep_partial_leaves_the_servers_already_changed_and_says_so() {
    let l = local();
    let wrap = Faulty::failing(
        l.transport("web02"),
        fail_nth("create_new", "-new.config", 1, injected),
    );
    let mut req = request("Flowtime", generate());
    req.keep_partial = true;
    let (mut sessions, plan) = l.plan_with(wrap, req);
    let outcome = run(&plan, &mut sessions, &l.audit);
    let names: Vec<&str> = outcome
        .results
        .iter()
        .map(|r| r.outcome.recorded().name())
        .collect();
    assert_eq!(names, ["applied", "failed", "not-attempted"]);
    assert_eq!(outcome.verdict(), PushVerdict::OutOfStep);
    let summary = outcome.summary();
    assert!(
        summary.contains("OUT OF STEP")
            && summary.contains("web01 hold the new configuration")
            && summary.contains("--keep-partial"),
        "{summary}"
    );
    assert!(
        l.audit
            .read_all()
            .unwrap()
            .iter()
            .all(|r| r.action == AuditAction::Push)
    );
    l.assert_clean();
}

#[test]
fn two_pushes_in_one_second_keep_both_backups() {
    let l = local();
    let first = l.read("web03");
    let mut stamps = Vec::new();
    for _ in 0..2 {
        let mut sessions = l.sessions();
        let plan =
            build_plan(&request("Flowtime", generate()), &l.report(), &mut sessions).unwrap();
        let outcome = run(&plan, &mut sessions, &l.audit);
        assert!(outcome.success(), "{outcome:?}");
        stamps.push(plan.servers[2].backup.clone());
    }
    assert_ne!(stamps[0], stamps[1]);
    let backups = backups_in(l.path("web03").parent().unwrap());
    assert_eq!(backups.len(), 2, "{backups:?}");
    assert_eq!(
        fs::read(l.dir.path().join("web03").join(&stamps[0].as_sftp()[1..])).unwrap(),
        first
    );
}

// ---------------------------------------------------------------------
// Row 3: restore only what the push wrote.

#[test]
fn someone_elses_write_between_the_swap_and_its_verification_is_left_alone() {
    let s = setup();
    let original = s.flowtime_files();
    let theirs = String::from_utf8(original[1].clone())
        .unwrap()
        .replace("Production", "Deployed by someone else");
    let target = s.file("web02", FLOWTIME);
    let inner = farmkey::transport::connect(&s.inventory.servers[1], &opts()).unwrap();
    let mut wrap = Faulty::new(inner);
    let (t2, theirs2) = (target.clone(), theirs.clone());
    // A deploy lands right after farmkey's swap.
    wrap.after = Box::new(move |op, _| {
        if op == "replace" {
            fs::write(&t2, &theirs2).unwrap();
        }
    });
    let mut sessions = s.sessions();
    sessions.insert("web02", Box::new(wrap));
    let plan = build_plan(&request("Flowtime", generate()), &s.report(), &mut sessions).unwrap();
    let outcome = run(&plan, &mut sessions, &s.audit);
    match by(&outcome, "web02") {
        ServerOutcome::Failed { step, restore, .. } => {
            assert_eq!(*step, Step::Verify);
            assert!(
                matches!(restore, Restore::LeftAlone(Foreign::Changed { .. })),
                "{restore:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(*by(&outcome, "web01"), ServerOutcome::RolledBack);
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        theirs,
        "their file is kept"
    );
    assert_eq!(s.bytes("web01", FLOWTIME), original[0]);
    assert_eq!(s.bytes("web03", FLOWTIME), original[2]);
    assert_eq!(outcome.verdict(), PushVerdict::OutOfStep);
    let summary = outcome.summary();
    assert!(
        summary.contains("web02 a web.config farmkey did not write"),
        "{summary}"
    );
    s.assert_clean();
}

/// A file that read at the plan and no longer reads at the end (replaced by
/// a folder mid-push) is not "as it was": the push says out of step and
/// why it could not read it, instead of calling the server unreachable and
/// untouched.
#[test]
fn a_file_replaced_by_a_folder_mid_push_is_never_called_as_it_was() {
    let l = local();
    let web03 = l.path("web03");
    let mut sessions = l.sessions();
    let plan = build_plan(&request("Flowtime", generate()), &l.report(), &mut sessions).unwrap();
    let outcome = apply(
        &plan,
        &mut sessions,
        &l.audit,
        &Interrupt::new(),
        &mut |p| {
            if let Progress::Done(r) = p
                && r.server == "web01"
                && r.outcome == ServerOutcome::Applied
            {
                fs::remove_file(&web03).unwrap();
                fs::create_dir(&web03).unwrap();
            }
        },
    );
    assert_eq!(
        outcome.verdict(),
        PushVerdict::OutOfStep,
        "{}",
        outcome.summary()
    );
    assert!(
        outcome
            .final_state
            .iter()
            .any(|(n, s)| n == "web03" && matches!(s, FinalState::NotWritten(_))),
        "{:?}",
        outcome.final_state
    );
    let summary = outcome.summary();
    assert!(
        summary.contains("web03 could not be re-read (")
            && summary.contains("is a folder), but this push never wrote it")
            && !summary.contains("as it was"),
        "{summary}"
    );
}

/// A rollback refused on a server (its file cannot be read) whose lock then
/// cannot be removed either (someone took it meanwhile) names that lock:
/// the next push would meet it.
#[test]
fn a_rollback_lock_left_behind_is_named() {
    let l = local();
    let mut sessions = l.sessions();
    let plan = build_plan(&request("Flowtime", generate()), &l.report(), &mut sessions).unwrap();
    assert!(run(&plan, &mut sessions, &l.audit).success());
    let records = l.audit.read_all().unwrap();
    let targets = farmkey::push::history::pushes(&records, Some("Flowtime"))[0].to_roll_back();
    let lock = l
        .dir
        .path()
        .join("web02")
        .join(FLOWTIME_DIR)
        .join("web.farmkey-lock.config");
    let taken = lock.clone();
    let wrap = Faulty::failing(
        l.transport("web02"),
        Box::new(move |op, p| {
            // Once the rollback holds the lock (its look at the site's
            // files, before, reads it fine).
            if op == "read" && p.as_sftp().ends_with("Flowtime/web.config") && taken.exists() {
                fs::write(&taken, STALE_LOCK).unwrap();
                return Err(injected(p));
            }
            Ok(())
        }),
    );
    let mut sessions = l.sessions();
    sessions.insert("web02", Box::new(wrap));
    let results =
        farmkey::push::apply::rollback_push(&targets, &mut sessions, &l.audit, false, &mut |_| {});
    let web02 = results.iter().find(|r| r.server == "web02").unwrap();
    let why = web02.result.as_ref().unwrap_err().to_string();
    assert!(
        why.contains("cannot read")
            && why.contains(
                "the lock C:\\inetpub\\Cora\\Flowtime\\web.farmkey-lock.config (left alone: it is no longer this push's"
            ),
        "{why}"
    );
    assert_eq!(fs::read_to_string(&lock).unwrap(), STALE_LOCK);
}

/// The automatic rollback of a server already pushed checks its file too:
/// a deploy that lands on web01 after its swap, before the push is stopped,
/// is kept, and the push says the site is out of step.
#[test]
fn the_rollback_of_a_pushed_server_leaves_someone_elses_write_alone() {
    let s = setup();
    let original = s.flowtime_files();
    let theirs = String::from_utf8(original[0].clone())
        .unwrap()
        .replace("Production", "Deployed by someone else");
    let web01 = s.file("web01", FLOWTIME);
    let (mut sessions, plan) = s.plan(request("Flowtime", generate()));
    let stop = Interrupt::new();
    let outcome = apply(&plan, &mut sessions, &s.audit, &stop, &mut |p| {
        if let Progress::Done(r) = p
            && r.server == "web01"
            && r.outcome == ServerOutcome::Applied
        {
            fs::write(&web01, &theirs).unwrap();
            stop.request(farmkey::push::StopReason::Operator);
        }
    });
    assert!(
        matches!(
            by(&outcome, "web01"),
            ServerOutcome::LeftAlone(Foreign::Changed { .. })
        ),
        "{:?}",
        by(&outcome, "web01")
    );
    assert_eq!(
        fs::read_to_string(&web01).unwrap(),
        theirs,
        "their file is kept"
    );
    assert_eq!(s.flowtime_files()[1..], original[1..]);
    assert_eq!(outcome.verdict(), PushVerdict::OutOfStep);
    let summary = outcome.summary();
    assert!(summary.contains("OUT OF STEP"), "{summary}");
    let rolled: Vec<_> = audit_outcomes(&s.audit.path)
        .into_iter()
        .filter(|(_, action, _)| action == "rollback")
        .collect();
    let rollback = |o: &str| ("web01".to_string(), "rollback".to_string(), o.to_string());
    assert_eq!(rolled, [rollback("intent"), rollback("left-alone")]);
    s.assert_clean();
}

// ---------------------------------------------------------------------
// Row 6: the audit log.

#[test]
fn the_audit_log_filling_up_stops_the_push_and_rolls_back() {
    let s = setup();
    let original = s.flowtime_files();
    let (mut sessions, plan) = s.plan(request("Flowtime", generate()));
    let path = s.audit.path.clone();
    // After web01, the audit log's disk is full.
    let outcome = run_then(&plan, &mut sessions, &s.audit, || {
        fs::rename(&path, path.with_extension("kept")).unwrap();
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    });
    match by(&outcome, "web02") {
        ServerOutcome::Failed { step, restore, .. } => {
            assert_eq!((*step, restore), (Step::Audit, &Restore::Untouched));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(*by(&outcome, "web01"), ServerOutcome::RolledBack);
    assert!(!outcome.audit_errors.is_empty());
    assert_eq!(
        outcome.verdict(),
        PushVerdict::AsBefore,
        "{}",
        outcome.summary()
    );
    assert_eq!(s.flowtime_files(), original);
    s.assert_clean();
    // What the log took before the disk filled: web01's intent and outcome.
    let kept = AuditLog::new(path.with_extension("kept"))
        .read_all()
        .unwrap();
    let kept: Vec<_> = kept
        .iter()
        .map(|r| (r.server.as_str(), r.outcome.name()))
        .collect();
    assert_eq!(kept, [("web01", "intent"), ("web01", "applied")]);

    // Full from the start: not a single write.
    let (mut sessions, plan) = s.plan(request("Flowtime", generate()));
    let outcome = run(&plan, &mut sessions, &AuditLog::new("/dev/full".into()));
    assert_eq!(outcome.verdict(), PushVerdict::AsBefore);
    assert!(matches!(
        by(&outcome, "web01"),
        ServerOutcome::Failed {
            step: Step::Audit,
            ..
        }
    ));
    assert_eq!(s.flowtime_files(), original);
    s.assert_clean();
}

// ---------------------------------------------------------------------
// Row 7: rollback reconnects.

#[test]
fn the_rollback_reconnects_to_a_server_whose_session_dropped() {
    let s = setup();
    let original = s.flowtime_files();
    let inner = farmkey::transport::connect(&s.inventory.servers[1], &opts()).unwrap();
    let wrap = Faulty::failing(inner, fail_nth("create_new", "-new.config", 1, injected));
    let mut sessions = s.sessions();
    sessions.insert("web02", Box::new(wrap));
    let plan = build_plan(&request("Flowtime", generate()), &s.report(), &mut sessions).unwrap();
    let web01 = s.farm.server("web01");
    let mut killed = Vec::new();
    let outcome = run_then(&plan, &mut sessions, &s.audit, || {
        // web01's session drops; the server itself stays up.
        killed = web01.signal_sessions(libc::SIGKILL);
    });
    assert!(!killed.is_empty(), "a session was killed");
    assert_eq!(
        *by(&outcome, "web01"),
        ServerOutcome::RolledBack,
        "{}",
        outcome.summary()
    );
    assert_eq!(outcome.verdict(), PushVerdict::AsBefore);
    assert_eq!(s.flowtime_files(), original);
    s.assert_clean();
}

// ---------------------------------------------------------------------
// Row 8: a rename still under way when the connection breaks.

fn wait_gone(pids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids
        .iter()
        .any(|p| Path::new(&format!("/proc/{p}")).exists())
    {
        assert!(Instant::now() < deadline, "processes {pids:?} did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_rename_the_server_carries_out_late_cannot_land_the_new_file() {
    // The frozen session is given up after 3 s.
    let s = setup_waiting(3);
    let original = s.flowtime_files();
    let inner = farmkey::transport::connect(&s.inventory.servers[1], &opts()).unwrap();
    let frozen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let web02 = s.farm.server("web02");
    let (pids, tree) = (frozen.clone(), web02.session_tree());
    assert!(!tree.is_empty());
    // The server's session stops answering just as the rename is sent: the
    // client times out, the server would carry the rename out later.
    let wrap = Faulty::failing(
        inner,
        Box::new(move |op, _| {
            if op == "replace" {
                for &p in &tree {
                    unsafe { libc::kill(p, libc::SIGSTOP) };
                }
                pids.lock().unwrap().extend(tree.iter().copied());
            }
            Ok(())
        }),
    );
    let mut sessions = s.sessions();
    sessions.insert("web02", Box::new(wrap));
    let plan = build_plan(&request("Flowtime", generate()), &s.report(), &mut sessions).unwrap();
    let outcome = run(&plan, &mut sessions, &s.audit);
    match by(&outcome, "web02") {
        ServerOutcome::Failed { step, restore, .. } => {
            assert_eq!(*step, Step::Swap);
            assert_eq!(*restore, Restore::Untouched, "the rename had not landed");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(*by(&outcome, "web01"), ServerOutcome::RolledBack);
    // The old session wakes up and carries out its rename: the staged file
    // is gone, so nothing lands.
    let frozen = frozen.lock().unwrap().clone();
    for &p in &frozen {
        unsafe { libc::kill(p, libc::SIGCONT) };
    }
    wait_gone(&frozen);
    assert_eq!(s.flowtime_files(), original);
    s.assert_clean();
    assert_eq!(
        outcome.verdict(),
        PushVerdict::AsBefore,
        "{}",
        outcome.summary()
    );
}

/// A read-only web.config (Windows refuses to replace it) is found at the
/// plan, from the stat, with its own message: nothing is written anywhere.
#[test]
fn a_read_only_web_config_is_refused_at_the_plan() {
    use std::os::unix::fs::PermissionsExt;
    let l = local();
    let before: Vec<_> = snapshot_tree(l.dir.path());
    fs::set_permissions(l.path("web02"), fs::Permissions::from_mode(0o444)).unwrap();
    let mut sessions = l.sessions();
    let plan = build_plan(&request("Flowtime", generate()), &l.report(), &mut sessions).unwrap();
    let web02 = plan.servers.iter().find(|s| s.server == "web02").unwrap();
    match &web02.action {
        PlanAction::Blocked(why @ BlockReason::ReadOnly { file }) => {
            assert_eq!(file.to_string(), "C:\\inetpub\\Cora\\Flowtime\\web.config");
            assert!(why.to_string().contains("attrib -r"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    let outcome = run(&plan, &mut sessions, &l.audit);
    assert!(outcome.refused.is_some(), "{}", outcome.summary());
    assert!(
        outcome.summary().contains("is read-only"),
        "{}",
        outcome.summary()
    );
    fs::set_permissions(l.path("web02"), fs::Permissions::from_mode(0o644)).unwrap();
    let after: Vec<_> = snapshot_tree(l.dir.path())
        .into_iter()
        .filter(|(p, _)| !p.ends_with("audit.jsonl"))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(p, _)| !p.ends_with("audit.jsonl"))
        .collect();
    assert_eq!(after, before);
}

/// Made read-only after the plan: the refused swap says "read-only", not
/// "failure", and the farm ends as it was.
#[test]
fn a_web_config_made_read_only_after_the_plan_is_named_so_at_the_swap() {
    use std::os::unix::fs::PermissionsExt;
    let l = local();
    let original = l.originals();
    let held = held_open(&["replace"], "-new", None, Arc::default(), Arc::default());
    let (mut sessions, plan) = l.plan_with(windows_8_1(&l, held), request("Flowtime", generate()));
    fs::set_permissions(l.path("web02"), fs::Permissions::from_mode(0o444)).unwrap();
    let outcome = run(&plan, &mut sessions, &l.audit);
    fs::set_permissions(l.path("web02"), fs::Permissions::from_mode(0o644)).unwrap();
    match by(&outcome, "web02") {
        ServerOutcome::Failed { step, error, .. } => {
            assert_eq!(*step, Step::Swap);
            assert!(
                error.to_string().contains("the file is read-only"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(l.originals(), original);
    assert_eq!(outcome.verdict(), PushVerdict::AsBefore);
    l.assert_clean();
}

/// A rollback whose rename is refused as a held file (ASP.NET reading the
/// pushed web.config) tries again, and restores.
#[test]
fn a_rollback_refused_by_a_held_file_tries_again() {
    let l = local();
    let original = l.originals();
    let mut sessions = l.sessions();
    let plan = build_plan(&request("Flowtime", generate()), &l.report(), &mut sessions).unwrap();
    assert!(run(&plan, &mut sessions, &l.audit).success());
    let records = l.audit.read_all().unwrap();
    let targets = farmkey::push::history::pushes(&records, Some("Flowtime"))[0].to_roll_back();
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let held = held_open(
        &["replace"],
        "-restore",
        Some(2),
        Arc::default(),
        refused.clone(),
    );
    let mut sessions = l.sessions();
    sessions.insert(
        "web02",
        Box::new(Faulty::failing(l.transport("web02"), held)),
    );
    let results =
        farmkey::push::apply::rollback_push(&targets, &mut sessions, &l.audit, false, &mut |_| {});
    assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");
    assert_eq!(refused.load(Ordering::SeqCst), 2);
    assert_eq!(l.originals(), original);
    l.assert_clean();
}

/// A server lost between the delete and the rename of 8.1's posix-rename
/// (its sshd crashed, web.config deleted) that comes back 2 s later, as a
/// restarted service does: farmkey looks for it again for as long as its
/// connect timeout allows (twice 3 s), finds it, and puts web.config back.
#[test]
fn a_server_lost_mid_swap_that_comes_back_gets_its_web_config_back() {
    let s = setup_waiting(3);
    let original = s.flowtime_files();
    let web02 = s.farm.server("web02");
    let inner = farmkey::transport::connect(&s.inventory.servers[1], &opts()).unwrap();
    let (listener, tree) = (web02.pid() as i32, web02.session_tree());
    assert!(!tree.is_empty());
    let restart = std::sync::Mutex::new(Some(web02.restart_command()));
    let back: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<Child>>>> = Arc::default();
    let started = back.clone();
    let mut wrap = Faulty::failing(
        inner,
        Box::new(move |op, _| {
            if op == "replace-rename"
                && let Some(mut cmd) = restart.lock().unwrap().take()
            {
                for &p in tree.iter().chain([&listener]) {
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
                *started.lock().unwrap() = Some(std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(2));
                    cmd.spawn().unwrap()
                }));
                return Err(lost(&RemotePath::parse("C:/").unwrap()));
            }
            Ok(())
        }),
    );
    wrap.banner = Some("SSH-2.0-OpenSSH_for_Windows_8.1".into());
    wrap.delete_then_rename = true;
    let mut sessions = s.sessions();
    sessions.insert("web02", Box::new(wrap));
    let plan = build_plan(&request("Flowtime", generate()), &s.report(), &mut sessions).unwrap();
    let outcome = run(&plan, &mut sessions, &s.audit);
    drop(sessions);
    let mut sshd = back.lock().unwrap().take().unwrap().join().unwrap();
    match by(&outcome, "web02") {
        ServerOutcome::Failed { step, restore, .. } => {
            assert_eq!((*step, restore), (Step::Swap, &Restore::Restored));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(*by(&outcome, "web01"), ServerOutcome::RolledBack);
    assert_eq!(s.flowtime_files(), original);
    s.assert_clean();
    assert_eq!(
        outcome.verdict(),
        PushVerdict::AsBefore,
        "{}",
        outcome.summary()
    );
    let _ = sshd.kill();
    let _ = sshd.wait();
}

// ---------------------------------------------------------------------
// Item 8: Windows servers whose posix-rename deletes first.

#[test]
fn openssh_for_windows_8_1_replaces_by_delete_then_rename_and_is_verified() {
    // Succeeds: said in the plan, verified after the swap.
    let l = local();
    let mut wrap = Faulty::new(l.transport("web02"));
    wrap.banner = Some("SSH-2.0-OpenSSH_for_Windows_8.1".into());
    wrap.delete_then_rename = true;
    let onto_itself = wrap.renamed_onto_itself.clone();
    let (mut sessions, plan) = l.plan_with(wrap, request("Flowtime", generate()));
    let text = plan.to_string();
    assert!(
        text.contains("OpenSSH_for_Windows_8.1 replaces a file by deleting it")
            && text.matches("not atomic").count() == 1,
        "{text}"
    );
    let mut steps = Vec::new();
    let outcome = apply(
        &plan,
        &mut sessions,
        &l.audit,
        &Interrupt::new(),
        &mut |p| {
            if let Progress::Step { server, step, .. } = p
                && server == "web02"
            {
                steps.push(step)
            }
        },
    );
    assert!(outcome.success(), "{}", outcome.summary());
    assert!(steps.ends_with(&[Step::Swap, Step::Verify]), "{steps:?}");
    assert!(!onto_itself.load(Ordering::SeqCst));
    l.assert_clean();

    // The connection breaks between the delete and the rename: web.config
    // is missing; it is restored from the backup.
    let l = local();
    let original = l.originals();
    let mut wrap = Faulty::failing(
        l.transport("web02"),
        fail_nth("replace-rename", "-new", 1, lost),
    );
    wrap.banner = Some("SSH-2.0-OpenSSH_for_Windows_8.1".into());
    wrap.delete_then_rename = true;
    let (mut sessions, plan) = l.plan_with(wrap, request("Flowtime", generate()));
    let outcome = run(&plan, &mut sessions, &l.audit);
    assert_web02_swap_failed_and_restored(&l, &outcome, &original);
}

// ---------------------------------------------------------------------
// Files another process holds open (ASP.NET reading web.config, an
// antivirus scanner reading the staged copy), as Win32-OpenSSH answers:
// a rename refused with a bare "Failure" (ERROR_SHARING_VIOLATION is not
// in errno_from_Win32Error, contrib/win32/win32compat/fileio.c), a REMOVE
// with "Permission denied".

fn sharing_violation(op: &str, p: &RemotePath) -> TransportError {
    if op == "remove" {
        TransportError::PermissionDenied { path: p.clone() }
    } else {
        TransportError::Io {
            path: p.clone(),
            message: "the server answered \"failure\" (SFTP status 4)".into(),
        }
    }
}

/// Refuses `ops` on paths containing `within` as a held file: `tries`
/// times, or (`None`) until `released` is set. Counts the refusals.
fn held_open(
    ops: &'static [&'static str],
    within: &'static str,
    tries: Option<usize>,
    released: Arc<AtomicBool>,
    refused: Arc<std::sync::atomic::AtomicUsize>,
) -> Before {
    Box::new(move |op, p| {
        let holding = match tries {
            Some(n) => refused.load(Ordering::SeqCst) < n,
            None => !released.load(Ordering::SeqCst),
        };
        if holding && ops.contains(&op) && p.as_sftp().contains(within) {
            refused.fetch_add(1, Ordering::SeqCst);
            return Err(sharing_violation(op, p));
        }
        Ok(())
    })
}

/// web02 as Win32-OpenSSH 8.1, with `held` refusing what it holds.
fn windows_8_1(l: &Local, held: Before) -> Faulty {
    let mut wrap = Faulty::failing(l.transport("web02"), held);
    wrap.banner = Some("SSH-2.0-OpenSSH_for_Windows_8.1".into());
    wrap.delete_then_rename = true;
    wrap
}

/// What is held, and the operations of 8.1's posix-rename it refuses.
const HELD: [(&str, &[&str]); 2] = [
    ("web.config", &["replace"]),
    ("staged copy", &["replace-rename"]),
];

/// A web.config held open refuses the delete that starts 8.1's
/// posix-rename; a held staged copy lets web.config be deleted and then
/// refuses the rename (web.config missing). Held for three tries, the
/// push goes on and ends in step, nothing left behind.
#[test]
fn a_file_held_open_for_three_tries_is_tried_again_and_the_push_ends_in_step() {
    for (what, ops) in HELD {
        let l = local();
        let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let held = held_open(ops, "-new", Some(3), Arc::default(), refused.clone());
        let (mut sessions, plan) =
            l.plan_with(windows_8_1(&l, held), request("Flowtime", generate()));
        let outcome = run(&plan, &mut sessions, &l.audit);
        assert!(outcome.success(), "{what}: {}", outcome.summary());
        assert_eq!(refused.load(Ordering::SeqCst), 3, "{what}");
        assert_eq!(*by(&outcome, "web02"), ServerOutcome::Applied, "{what}");
        l.assert_clean();
    }
}

/// The swapped web.config read back while a scanner holds it for writing
/// (refused twice): the verification tries again and the push succeeds.
#[test]
fn a_verification_read_refused_by_a_held_file_tries_again() {
    let l = local();
    // The plan, the check under the locks, the re-read, then the
    // verification (4th and 5th refused).
    let held = fail_calls("read", "Flowtime/web.config", 4, 2, |p| {
        sharing_violation("read", p)
    });
    let (mut sessions, plan) = l.plan_with(windows_8_1(&l, held), request("Flowtime", generate()));
    let outcome = run(&plan, &mut sessions, &l.audit);
    assert!(outcome.success(), "{}", outcome.summary());
    l.assert_clean();
}

/// Held for longer than the tries: the farm ends as it was, web02 with its
/// web.config (never without it, though 8.1 deleted it before the refused
/// rename), and the last line names the server, the file and the cause.
#[test]
fn a_file_held_open_for_longer_leaves_the_farm_as_it_was_and_says_why() {
    for (what, ops) in HELD {
        let l = local();
        let original = l.originals();
        let held = held_open(ops, "-new", None, Arc::default(), Arc::default());
        let (mut sessions, plan) =
            l.plan_with(windows_8_1(&l, held), request("Flowtime", generate()));
        let outcome = run(&plan, &mut sessions, &l.audit);
        // A held web.config was never deleted; behind a held staged copy
        // 8.1 deleted it, and it was put back.
        let restore = if what == "web.config" {
            Restore::Untouched
        } else {
            Restore::Restored
        };
        match by(&outcome, "web02") {
            ServerOutcome::Failed {
                step, restore: r, ..
            } => {
                assert_eq!((*step, r), (Step::Swap, &restore), "{what}");
            }
            other => panic!("{what}: {other:?}"),
        }
        assert_eq!(*by(&outcome, "web01"), ServerOutcome::RolledBack, "{what}");
        assert_eq!(l.originals(), original, "{what}");
        assert_eq!(outcome.verdict(), PushVerdict::AsBefore, "{what}");
        l.assert_clean();
        let summary = outcome.summary();
        assert!(
            summary.contains("web02 failed swapping it into place")
                && summary.contains("Flowtime\\web.config (replacing it with ")
                && summary.contains("farmkey-new.config): still refused after 5 tries over 1.5 s: another process may hold either open"),
            "{what}: {summary}"
        );
    }
}

/// A staged copy held open for good: web.config is put back first (the
/// copy's removal, refused, never stops that), the copy is named in the
/// last line, and `rollback` removes it once it is let go.
#[test]
fn a_staged_copy_held_open_is_named_and_removed_by_rollback() {
    let l = local();
    let original = l.originals();
    let released = Arc::new(AtomicBool::new(false));
    let held = held_open(
        &["replace-rename", "rename", "remove"],
        "-new",
        None,
        released.clone(),
        Arc::default(),
    );
    let (mut sessions, plan) = l.plan_with(windows_8_1(&l, held), request("Flowtime", generate()));
    let staged = plan
        .servers
        .iter()
        .find(|s| s.server == "web02")
        .unwrap()
        .staged
        .clone();
    let outcome = run(&plan, &mut sessions, &l.audit);
    match by(&outcome, "web02") {
        ServerOutcome::Failed { step, restore, .. } => {
            assert_eq!((*step, restore), (Step::Swap, &Restore::Restored));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(l.originals(), original, "no server without its web.config");
    assert_eq!(outcome.verdict(), PushVerdict::AsBefore);
    let summary = outcome.summary();
    let id = &plan.push_id;
    assert!(
        summary.contains(&format!("Left behind: {staged} on web02 ("))
            && summary.contains(&format!(
                "`farmkey rollback --site \"Flowtime\" --push {id}` removes the copies"
            )),
        "{summary}"
    );
    let dir = l.path("web02").parent().unwrap().to_path_buf();
    assert_eq!(
        leftovers_in(&dir),
        [staged.file_name().unwrap().to_string()]
    );

    released.store(true, Ordering::SeqCst);
    let records = l.audit.read_all().unwrap();
    let targets = farmkey::push::history::pushes(&records, Some("Flowtime"))[0].to_roll_back();
    assert!(targets.iter().any(|r| r.server == "web02"), "{targets:?}");
    let results =
        farmkey::push::apply::rollback_push(&targets, &mut sessions, &l.audit, false, &mut |_| {});
    assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");
    assert_eq!(l.originals(), original);
    l.assert_clean();
    let records = l.audit.read_all().unwrap();
    assert!(
        farmkey::push::history::pushes(&records, Some("Flowtime"))[0]
            .to_roll_back()
            .is_empty()
    );
}

// ---------------------------------------------------------------------
// The command line, as processes.

/// `farmkey push --site Flowtime --generate --yes` on the farm, held at
/// `point` (piped output); wait for it with [`reach`].
fn spawn_push_paused(farm: &SshFarm, audit: &Path, point: &str) -> (Child, Pause) {
    let mut cmd = farm.farmkey_process();
    cmd.args(farm.push_flowtime_args(audit))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let pause = pause_at(&mut cmd, point);
    (cmd.spawn().unwrap(), pause)
}

/// A `Pause` set on `cmd`.
fn pause_at(cmd: &mut std::process::Command, point: &str) -> Pause {
    let p = Pause::new(point);
    p.set(cmd);
    p
}

/// Waits for `child` to reach `pause`.
fn reach(pause: &Pause, child: &mut Child) {
    pause.wait(|| child.try_wait().unwrap().is_some());
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or("")
}

#[test]
fn headless_push_rollback_dry_run_and_no_key_anywhere() {
    let s = setup();
    let audit = s.binary_audit();
    let run = |args: &[&str]| {
        let out = s
            .farm
            .farmkey()
            .args(args)
            .args(s.farm.headless_args(&audit))
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
    let (code, out) = run(&[
        "push",
        "--site",
        "Flowtime",
        "--generate",
        "--exclude",
        "web09",
        "--yes",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("web09 is not a server of the inventory"),
        "{out}"
    );

    let original = s.bytes("web02", FLOWTIME);
    let (code, out) = run(&["push", "--site", "Flowtime", "--generate", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("applied and verified"), "{out}");
    assert!(
        last_line(&out).contains("Flowtime is in step on every server of the push (3 written"),
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
    s.assert_clean();

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
    s.assert_clean();

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

#[test]
fn headless_an_unreachable_server_exits_1_with_the_plan_saying_why() {
    let mut s = setup();
    let audit = s.binary_audit();
    let original = s.flowtime_files();
    s.farm.server_mut("web03").kill();
    let out = s
        .farm
        .farmkey_process()
        .args(s.farm.push_flowtime_args(&audit))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("web03      CANNOT BE PUSHED: could not be read by the scan")
            && stdout.contains("connection refused"),
        "{stdout}"
    );
    // The remedy as the option that takes it.
    assert!(
        stdout.contains("leave it out by name (--exclude web03): it then keeps its old keys."),
        "{stdout}"
    );
    assert!(
        last_line(&stdout).contains("NOT made: blocked by web03; nothing was written"),
        "{stdout}"
    );
    assert_eq!(s.flowtime_files()[..2], original[..2]);
    let mut args = s.farm.push_flowtime_args(&audit);
    args.extend(["--exclude".to_string(), "web03".to_string()]);
    let out = s.farm.farmkey_process().args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("web03      left out")
            && last_line(&stdout).contains("Left out by name: web03"),
        "{stdout}"
    );
}

#[test]
fn headless_only_values_asp_net_accepts_are_written() {
    let s = setup();
    let audit = s.binary_audit();
    let before = s.all_files();
    let v = "0123456789ABCDEF".repeat(8);
    let d = "FEDCBA9876543210".repeat(4);
    for (validation, decryption, why) in [
        (
            "BOGUS",
            "AES",
            "validation=\"BOGUS\" is not a value ASP.NET accepts",
        ),
        ("", "", "validation is empty"),
        ("sha1", "AES", "write \"SHA1\""),
        ("SHA1", "aes", "write \"AES\""),
        ("SHA1", "3DES", "farmkey writes 3DES keys of 48 only"),
    ] {
        let file = s.farm.home.path().join("keys.xml");
        fs::write(
            &file,
            format!(
                "<machineKey validationKey=\"{v}\" decryptionKey=\"{d}\" validation=\"{validation}\" decryption=\"{decryption}\" />"
            ),
        )
        .unwrap();
        let mut args: Vec<String> = ["push", "--site", "Flowtime", "--yes", "--keys"]
            .map(String::from)
            .to_vec();
        args.push(file.to_str().unwrap().into());
        args.extend(s.farm.headless_args(&audit));
        let out = s.farm.farmkey_process().args(args).output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{validation}/{decryption}: {stderr}"
        );
        assert!(stdout.is_empty(), "no plan: {stdout}");
        assert!(stderr.contains(why), "{stderr}");
        assert!(!stderr.contains(&v[..32]));
    }
    // Adopting a server whose spelling ASP.NET refuses is refused too.
    let path = s.file("web01", FLOWTIME);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("validation=\"SHA1\""));
    fs::write(
        &path,
        text.replace("validation=\"SHA1\"", "validation=\"sha1\""),
    )
    .unwrap();
    let mut args: Vec<String> = ["push", "--site", "Flowtime", "--yes", "--adopt", "web01"]
        .map(String::from)
        .to_vec();
    args.extend(s.farm.headless_args(&audit));
    let out = s.farm.farmkey_process().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("case-sensitive"), "{stderr}");
    fs::write(&path, text).unwrap();
    assert_eq!(s.all_files(), before);
    assert!(!audit.exists() || fs::read_to_string(&audit).unwrap().is_empty());
}

#[test]
fn headless_a_stale_lock_is_shown_and_broken_only_with_break_lock() {
    let s = setup();
    let audit = s.binary_audit();
    let original = s.flowtime_files();
    let lock = s.file("web01", "C:/inetpub/Cora/Flowtime/web.farmkey-lock.config");
    fs::write(&lock, STALE_LOCK).unwrap();
    let out = s
        .farm
        .farmkey_process()
        .args(s.farm.push_flowtime_args(&audit))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("web01 is locked by push 20200101T000000Z-dead of alice on jump9")
            && stdout.contains("ago")
            && last_line(&stdout).contains("NOT made: blocked by web01"),
        "{stdout}"
    );
    assert_eq!(s.flowtime_files(), original);
    assert!(lock.exists());
    let mut args = s.farm.push_flowtime_args(&audit);
    args.push("--break-lock".into());
    let out = s.farm.farmkey_process().args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("broke the stale lock"), "{stdout}");
    s.assert_clean();
}

/// The key set a push's plan announces.
fn key_set_of(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Key set "))
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
}

#[test]
fn two_operators_pushing_the_same_site_at_once_never_split_it() {
    let s = setup();
    let audit = s.binary_audit();
    for trial in 0..3 {
        let before = s.flowtime_files();
        let mut runs = Vec::new();
        for _ in 0..2 {
            runs.push(spawn_push_paused(&s.farm, &audit, "start"));
        }
        // Both have planned from the same files; let them race for the locks.
        let outs = race(runs);
        let winners: Vec<&(i32, String)> = outs.iter().filter(|(c, _)| *c == 0).collect();
        assert!(winners.len() <= 1, "trial {trial}: {outs:?}");
        let sets = s.key_sets();
        match winners.first() {
            Some((_, out)) => {
                let set = key_set_of(out);
                assert!(set.is_some());
                assert!(
                    sets.iter().all(|k| *k == set),
                    "trial {trial}: {sets:?} vs {set:?}"
                );
            }
            None => assert_eq!(s.flowtime_files(), before, "trial {trial}"),
        }
        for (code, out) in &outs {
            if *code != 0 {
                assert_eq!(*code, 1, "trial {trial}: {out}");
                let last = last_line(out);
                assert!(
                    last.contains("NOT made")
                        && (last.contains("is locked by push")
                            || last.contains("changed since the plan")),
                    "trial {trial}: {out}"
                );
            }
        }
        s.assert_clean();
    }
}

/// Two pushes meet at a lock at the very moment one of them releases it
/// (gone between the other's create and read) or makes it (there, but not
/// written yet): the lock is looked at again, not judged on that instant.
#[test]
fn a_lock_coming_or_going_is_looked_at_again() {
    use farmkey::push::lock::{LockInfo, Taken, acquire};
    let l = local();
    let path = RemotePath::parse("C:\\inetpub\\Cora\\Flowtime\\web.farmkey-lock.config").unwrap();
    let on_disk = l
        .dir
        .path()
        .join("web02")
        .join(format!("{FLOWTIME_DIR}/web.farmkey-lock.config"));
    let mine = LockInfo::mine("20261127T000000Z-mine", "Flowtime");

    // Released by its push right after our create failed on it.
    fs::write(&on_disk, STALE_LOCK).unwrap();
    let gone = on_disk.clone();
    let mut released = false;
    let mut t = Faulty::failing(
        l.transport("web02"),
        Box::new(move |op, p| {
            if op == "read" && p.as_sftp().ends_with("lock.config") && !released {
                released = true;
                fs::remove_file(&gone).unwrap();
            }
            Ok(())
        }),
    );
    let taken = acquire(&mut t, "web02", &path, &mine, None).unwrap();
    assert_eq!(taken, Taken::Fresh);
    assert!(
        fs::read_to_string(&on_disk)
            .unwrap()
            .contains("20261127T000000Z-mine")
    );
    fs::remove_file(&on_disk).unwrap();

    // Made by another push that has not written it yet when we read it.
    fs::write(&on_disk, "").unwrap();
    let (filled, mut written) = (on_disk.clone(), false);
    let mut t = Faulty::new(l.transport("web02"));
    t.after = Box::new(move |op, p| {
        if op == "read" && p.as_sftp().ends_with("lock.config") && !written {
            written = true;
            fs::write(&filled, STALE_LOCK).unwrap();
        }
    });
    match acquire(&mut t, "web02", &path, &mine, None) {
        Err(LockError::Held(h)) => assert!(
            h.to_string()
                .contains("web02 is locked by push 20200101T000000Z-dead of alice"),
            "{h}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(fs::read_to_string(&on_disk).unwrap(), STALE_LOCK);
}

fn audit_outcomes(audit: &Path) -> Vec<(String, String, String)> {
    AuditLog::new(audit.to_path_buf())
        .read_all()
        .unwrap()
        .into_iter()
        .map(|r| (r.server, r.action.to_string(), r.outcome.to_string()))
        .collect()
}

/// The signals an operator's session sends: Ctrl-C, kill, the terminal
/// going away; and others whose default action ends a process (Ctrl-\,
/// a stray `kill -USR1`, an alarm).
const SIGNALS: [(i32, &str); 6] = [
    (libc::SIGINT, "SIGINT"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGALRM, "SIGALRM"),
];

#[test]
fn a_signal_between_a_swap_and_its_record_rolls_back_and_says_so() {
    let s = setup();
    let original = s.flowtime_files();
    for (sig, name) in SIGNALS {
        let audit = s.farm.home.path().join(format!("audit-{name}.jsonl"));
        let (mut child, pause) = spawn_push_paused(&s.farm, &audit, "swapped:web01");
        reach(&pause, &mut child);
        unsafe { libc::kill(child.id() as i32, sig) };
        pause.wait_stopping();
        pause.go();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{name}: {stdout}");
        let last = last_line(&stdout);
        assert!(
            last.contains(&format!("interrupted by {name}"))
                && last.contains("Flowtime is as it was on every server: web01 rolled back"),
            "{name}: {stdout}"
        );
        assert_eq!(s.flowtime_files(), original, "{name}");
        s.assert_clean();
        let rows = audit_outcomes(&audit);
        let rows: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                ("web01", "push", "intent"),
                ("web01", "push", "applied"),
                ("web02", "push", "not-attempted"),
                ("web03", "push", "not-attempted"),
                ("web01", "rollback", "intent"),
                ("web01", "rollback", "rolled-back"),
            ],
            "{name}"
        );
    }
}

#[test]
fn a_closed_output_mid_push_never_panics_and_rolls_back() {
    let s = setup();
    let audit = s.binary_audit();
    let original = s.flowtime_files();
    // What `| head -1` does, at a known moment: the reader takes the first
    // line and goes away once web01 is written, before its line is printed.
    let (mut child, pause) = spawn_push_paused(&s.farm, &audit, "applied:web01");
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut reader, &mut first).unwrap();
    assert!(first.starts_with("Push "), "{first}");
    reach(&pause, &mut child);
    drop(reader);
    pause.go();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = last_line(&stderr);
    assert!(
        last.contains("interrupted by the closing of standard output")
            && last.contains("Flowtime is as it was on every server: web01 rolled back"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(s.flowtime_files(), original);
    s.assert_clean();
}

#[test]
fn farmkey_push_piped_into_head_ends_consistent_and_says_so() {
    // The literal pipeline: wherever head happens to go away (during the
    // plan, or mid-push), the site ends as it was or fully pushed, and the
    // exit code and last line say which.
    let s = setup();
    let audit = s.binary_audit();
    let original = s.flowtime_files();
    let args: Vec<String> = s
        .farm
        .push_flowtime_args(&audit)
        .iter()
        .map(|a| format!("'{a}'"))
        .collect();
    let line = format!(
        "'{}' {} | head -1; exit ${{PIPESTATUS[0]}}",
        env!("CARGO_BIN_EXE_farmkey"),
        args.join(" ")
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &line])
        .env_clear()
        .env("HOME", s.farm.home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("USER", "operator")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.starts_with("Push "), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let sets = s.key_sets();
    match out.status.code() {
        Some(0) => {
            assert!(
                sets.iter().all(|k| k.is_some() && *k == sets[0]),
                "{sets:?}"
            );
            assert_ne!(s.flowtime_files(), original);
        }
        Some(1) => {
            assert_eq!(s.flowtime_files(), original, "{stderr}");
            assert!(last_line(&stderr).contains("as it was"), "{stderr}");
        }
        other => panic!("exit {other:?}: {stderr}"),
    }
    s.assert_clean();
}

/// A push of Flowtime killed (SIGKILL: nothing can be honoured) at
/// `point`; its audit log.
/// `farmkey push --site Flowtime --generate --yes`, made: its audit log.
fn pushed(s: &Setup) -> PathBuf {
    let audit = s.binary_audit();
    let out = s
        .farm
        .farmkey_process()
        .args(s.farm.push_flowtime_args(&audit))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    audit
}

fn push_killed_at(s: &Setup, point: &str) -> PathBuf {
    let audit = s.binary_audit();
    let (mut child, pause) = spawn_push_paused(&s.farm, &audit, point);
    reach(&pause, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    audit
}

/// `farmkey rollback` looks at every server's lock before it asks: with
/// each server held by another push it asks nothing (run with no terminal
/// and stdin closed, a question would fail otherwise), names the holder
/// and exits 1; with one held, that one is named and left alone, and the
/// others are rolled back.
#[test]
fn rollback_looks_at_the_locks_before_it_asks() {
    use std::os::unix::process::CommandExt;
    let s = setup();
    let original = s.flowtime_files();
    let audit = s.farm.home.path().join("audit.jsonl");
    let out = s
        .farm
        .farmkey_process()
        .args(s.farm.push_flowtime_args(&audit))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let pushed = s.flowtime_files();
    assert_ne!(pushed, original);
    let lock = serde_json::json!({
        "push_id": "20261126T112045Z-3fa9c1d2", "site": "Default Web Site/Flowtime",
        "user": "alice", "host": "jump9", "pid": 4242, "time": "2026-11-26T11:20:45Z",
    })
    .to_string();
    let servers = ["web01", "web02", "web03"];
    let lock_of = |server: &str| s.file(server, "C:/inetpub/Cora/Flowtime/web.farmkey-lock.config");
    for server in servers {
        fs::write(lock_of(server), &lock).unwrap();
    }
    let rollback = || {
        // Not --batch (which refuses to ask before anything): the look at
        // the locks is what keeps the question from being asked.
        let args = s.farm.headless_args(&audit);
        let mut cmd = s.farm.farmkey_process();
        cmd.args(["rollback", "--site", "Flowtime"])
            .args(args.iter().filter(|a| *a != "--batch"))
            .stdin(Stdio::null());
        // No controlling terminal: a question could not be asked.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, text) = rollback();
    assert_eq!(code, Some(1), "{text}");
    for server in servers {
        assert!(
            text.contains(&format!(
                "{server} is locked by push 20261126T112045Z-3fa9c1d2 of alice on jump9"
            )),
            "{text}"
        );
    }
    assert!(
        !text.contains("Restore these files?")
            && last_line(&text).starts_with("Nothing rolled back: web01, web02 and web03 locked"),
        "{text}"
    );
    assert_eq!(s.flowtime_files(), pushed, "nothing written");

    // web02 still held: named and left alone, the others rolled back
    // (--yes: the question is not what this part checks).
    fs::remove_file(lock_of("web01")).unwrap();
    fs::remove_file(lock_of("web03")).unwrap();
    let out = s
        .farm
        .farmkey()
        .args(["rollback", "--site", "Flowtime", "--yes"])
        .args(s.farm.headless_args(&audit))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Left alone, locked:\n  web02 is locked by push 20261126T112045Z-3fa9c1d2")
            && text.contains("web01      restored and verified")
            && text.contains("web03      restored and verified")
            && last_line(&text).contains("NOT fully rolled back: web02"),
        "{text}"
    );
    let now = s.flowtime_files();
    assert_eq!(
        [&now[0], &now[1], &now[2]],
        [&original[0], &pushed[1], &original[2]]
    );
    assert_eq!(
        fs::read_to_string(lock_of("web02")).unwrap(),
        lock,
        "never touched"
    );
}

#[test]
fn rollback_finds_a_push_cut_short_after_its_intent() {
    // A push killed (SIGKILL: nothing can be honoured) right after web01's
    // swap: only the intent is recorded; `farmkey rollback` finds it.
    let s = setup();
    let original = s.flowtime_files();
    let audit = push_killed_at(&s, "swapped:web01");
    assert_ne!(s.bytes("web01", FLOWTIME), original[0]);
    let lock = s.file("web01", "C:/inetpub/Cora/Flowtime/web.farmkey-lock.config");
    assert!(lock.exists(), "the killed push's lock stays");
    let history = s
        .farm
        .farmkey()
        .args(["history", "--audit"])
        .arg(&audit)
        .output()
        .unwrap();
    let history = String::from_utf8_lossy(&history.stdout);
    assert!(history.contains("web01 intent (cut short"), "{history}");
    // The lock of the dead push of this machine is stale: the rollback is
    // refused by it, and says how to go on.
    let rollback = |extra: &[&str]| {
        let out = s
            .farm
            .farmkey()
            .args(["rollback", "--site", "Flowtime", "--yes"])
            .args(extra)
            .args(s.farm.headless_args(&audit))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, text) = rollback(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("no longer running: the lock is stale") && text.contains("--break-lock"),
        "{text}"
    );
    assert_ne!(s.bytes("web01", FLOWTIME), original[0]);
    let (code, text) = rollback(&["--break-lock"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("web01      restored and verified (broke the stale lock"),
        "{text}"
    );
    assert_eq!(s.flowtime_files(), original);
    // Its other locks stay until broken on request: the next push shows
    // them as stale and goes on only with --break-lock.
    let out = s
        .farm
        .farmkey_process()
        .args(s.farm.push_flowtime_args(&audit))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .matches("no longer running: the lock is stale")
            .count()
            == 2
            && last_line(&stdout).contains("blocked by web02 and web03"),
        "{stdout}"
    );
    let mut args = s.farm.push_flowtime_args(&audit);
    args.push("--break-lock".into());
    let out = s.farm.farmkey_process().args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    s.assert_clean();
}

#[test]
fn headless_someone_elses_write_mid_push_is_kept_and_the_exit_code_says_out_of_step() {
    let s = setup();
    let audit = s.binary_audit();
    let original = s.flowtime_files();
    let (mut child, pause) = spawn_push_paused(&s.farm, &audit, "swapped:web02");
    reach(&pause, &mut child);
    // A deploy writes web02 between farmkey's swap and its verification.
    let theirs = String::from_utf8(original[1].clone())
        .unwrap()
        .replace("Production", "Deployed meanwhile");
    fs::write(s.file("web02", FLOWTIME), &theirs).unwrap();
    pause.go();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("web02      FAILED verifying the result")
            && stdout.contains("web.config left as it is")
            && stdout.contains("web01      rolled back"),
        "{stdout}"
    );
    let last = last_line(&stdout);
    assert!(
        last.contains("Flowtime is OUT OF STEP")
            && last.contains("web02 a web.config farmkey did not write"),
        "{stdout}"
    );
    assert_eq!(s.bytes("web01", FLOWTIME), original[0]);
    assert_eq!(
        fs::read_to_string(s.file("web02", FLOWTIME)).unwrap(),
        theirs
    );
    assert_eq!(s.bytes("web03", FLOWTIME), original[2]);
    s.assert_clean();
}

#[test]
fn headless_a_full_audit_disk_mid_push_stops_and_rolls_back() {
    let s = setup();
    let audit = s.binary_audit();
    let original = s.flowtime_files();
    let (mut child, pause) = spawn_push_paused(&s.farm, &audit, "applied:web01");
    reach(&pause, &mut child);
    fs::rename(&audit, audit.with_extension("kept")).unwrap();
    std::os::unix::fs::symlink("/dev/full", &audit).unwrap();
    pause.go();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("web02      FAILED recording it in the audit log")
            && last_line(&stdout)
                .contains("Flowtime is as it was on every server: web01 rolled back"),
        "{stdout}"
    );
    assert!(
        stderr.contains("the audit log did not take a record") && stderr.contains("No space left"),
        "{stderr}"
    );
    assert_eq!(s.flowtime_files(), original);
    s.assert_clean();
}

/// The `config-source` fixture farm (web01, web02) over SSH, with an
/// audit log of its own.
struct SourceFarm {
    farm: SshFarm,
    inventory: Inventory,
    audit: AuditLog,
    _state: tempfile::TempDir,
}

impl SourceFarm {
    fn new() -> SourceFarm {
        let farm = SshFarm::from_fixture(
            &farm_fixture("config-source"),
            &["web01", "web02"],
            Options::default(),
        );
        let inventory = Inventory::load(&farm.inventory("")).unwrap();
        let state = tempfile::tempdir().unwrap();
        let audit = AuditLog::new(state.path().join("audit.jsonl"));
        SourceFarm {
            farm,
            inventory,
            audit,
            _state: state,
        }
    }

    fn report(&self) -> FarmReport {
        report_of(&self.inventory)
    }

    fn sessions(&self) -> Sessions {
        Sessions::new(self.inventory.servers.clone(), opts())
    }

    fn read(&self, server: &str, path: &str) -> Vec<u8> {
        fs::read(self.farm.server(server).file(path)).unwrap()
    }

    /// A server's Process TOGO web.config and identity.config (the
    /// `configSource` file of system.identityModel).
    fn togo_files(&self, server: &str) -> [Vec<u8>; 2] {
        [self.read(server, TOGO), self.read(server, TOGO_IDENTITY)]
    }

    /// `farmkey ARGS` with this farm's audit log, and its inventory for
    /// the commands that reach servers (`history` reads only the log).
    fn farmkey(&self, args: &[&str]) -> (bool, String) {
        let mut cmd = self.farm.farmkey();
        cmd.args(args).arg("--audit").arg(&self.audit.path);
        if args.first() != Some(&"history") {
            cmd.args(["--ssh-config", "/nonexistent", "-i"])
                .arg(self.farm.inventory(""));
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }
}

/// A `<machineKey configSource>`: the push backs up, stages, swaps and
/// verifies the file the key is kept in, and rolls it back byte for byte.
#[test]
fn a_key_kept_in_a_config_source_file_is_pushed_and_rolled_back_there() {
    const WEB: &str = "C:/inetpub/Flowtime/web.config";
    const KEYS: &str = "C:/inetpub/Flowtime/App_Config/MachineKey.config";
    let sf = SourceFarm::new();
    let (farm, inventory, audit) = (&sf.farm, &sf.inventory, &sf.audit);
    let report = || sf.report();
    let read = |server: &str, path: &str| sf.read(server, path);
    let keys_before = [read("web01", KEYS), read("web02", KEYS)];
    let webs = [read("web01", WEB), read("web02", WEB)];

    // Someone edits web02's key file between the plan and the push.
    let mut sessions = Sessions::new(inventory.servers.clone(), opts());
    let plan = build_plan(&request("Flowtime", generate()), &report(), &mut sessions).unwrap();
    let files: Vec<String> = plan.servers.iter().map(|p| p.file.to_string()).collect();
    assert_eq!(
        files,
        ["C:\\inetpub\\Flowtime\\App_Config\\MachineKey.config"; 2]
    );
    let edited = String::from_utf8(keys_before[1].clone())
        .unwrap()
        .replace("kept out of", "kept apart from");
    fs::write(farm.server("web02").file(KEYS), &edited).unwrap();
    let outcome = apply(&plan, &mut sessions, audit, &Interrupt::new(), &mut |_| {});
    assert_eq!(outcome.verdict(), PushVerdict::AsBefore);
    let refused = outcome.refused.clone().unwrap();
    assert!(
        matches!(&refused, PushRefusal::Changed { server, .. } if server == "web02"),
        "{refused}"
    );
    assert_eq!(read("web01", KEYS), keys_before[0], "never written");
    assert_eq!(read("web02", KEYS), edited.as_bytes());
    assert_eq!([read("web01", WEB), read("web02", WEB)], webs);

    // Planned again, it goes through, and web.config is never touched.
    let mut sessions = Sessions::new(inventory.servers.clone(), opts());
    let plan = build_plan(&request("Flowtime", generate()), &report(), &mut sessions).unwrap();
    let outcome = apply(&plan, &mut sessions, audit, &Interrupt::new(), &mut |_| {});
    assert!(outcome.success(), "{}", outcome.summary());
    assert_eq!([read("web01", WEB), read("web02", WEB)], webs);
    let dir = farm
        .server("web01")
        .file(KEYS)
        .parent()
        .unwrap()
        .to_path_buf();
    // One backup (the refused push wrote none), beside the key file,
    // holding the original bytes.
    let backups = backups_in(&dir);
    assert_eq!(backups.len(), 1, "{backups:?}");
    for b in &backups {
        assert_eq!(fs::read(b).unwrap(), keys_before[0]);
        let name = b.file_name().unwrap().to_string_lossy();
        assert!(name.starts_with("MachineKey.") && name.ends_with(".farmkey.config"));
    }
    let after = report();
    let flowtime = after.site("Flowtime").unwrap();
    assert!(
        flowtime.consistent() == Some(true),
        "{:?}",
        flowtime.findings
    );
    for inst in &flowtime.instances {
        let source = &inst
            .effective
            .as_ref()
            .unwrap()
            .machine_key
            .validation_key
            .source;
        assert_eq!(
            source.to_string(),
            "C:\\inetpub\\Flowtime\\App_Config\\MachineKey.config"
        );
    }
    let records = audit.read_all().unwrap();
    assert!(
        records
            .iter()
            .all(|r| r.file == "C:\\inetpub\\Flowtime\\App_Config\\MachineKey.config"),
        "{:?}",
        records.iter().map(|r| &r.file).collect::<Vec<_>>()
    );

    // `farmkey rollback` restores the key files byte for byte, and leaves
    // web.config alone.
    let (ok, text) = sf.farmkey(&["rollback", "--site", "Flowtime", "--yes"]);
    assert!(ok, "{text}");
    assert_eq!(text.matches("restored and verified").count(), 2, "{text}");
    assert_eq!(read("web01", KEYS), keys_before[0]);
    assert_eq!(read("web02", KEYS), edited.as_bytes());
    assert_eq!([read("web01", WEB), read("web02", WEB)], webs);
}

/// Two operators push a site whose keys are kept in a `configSource` file,
/// each adopting another server's keys: each push leaves one server
/// unchanged and writes the other's key file. They meet at one lock per
/// server (beside web.config, whichever file is written), every file a plan
/// read is checked under the lock and at the end (the key file of a server
/// left unchanged too), so the site is never split with a claim of "in step".
#[test]
fn pushes_of_a_config_source_site_meet_at_one_lock_and_never_split_it() {
    const KEYS: &str = "C:/inetpub/Flowtime/App_Config/MachineKey.config";
    const LOCK: &str = "C:/inetpub/Flowtime/web.farmkey-lock.config";
    let sf = SourceFarm::new();
    let keys_before = [sf.read("web01", KEYS), sf.read("web02", KEYS)];
    let adopt = |server: &str, sessions: &mut Sessions| {
        let req = request("Flowtime", KeySource::Adopt(Some(server.into())));
        build_plan(&req, &sf.report(), sessions).unwrap()
    };
    let actions = |plan: &Plan| -> Vec<(String, String, PlanAction)> {
        plan.servers
            .iter()
            .map(|sp| {
                assert_eq!(
                    sp.lock.to_string(),
                    "C:\\inetpub\\Flowtime\\web.farmkey-lock.config"
                );
                let file = sp.file.to_string();
                let name = file.rsplit('\\').next().unwrap().to_string();
                (sp.server.clone(), name, sp.action.clone())
            })
            .collect()
    };

    // Someone else writes web01's key file while a push that leaves web01
    // unchanged writes web02: the end's re-read sees it.
    let mut sessions = sf.sessions();
    let plan = adopt("web01", &mut sessions);
    assert_eq!(
        actions(&plan),
        [
            ("web01".into(), "web.config".into(), PlanAction::Unchanged),
            (
                "web02".into(),
                "MachineKey.config".into(),
                PlanAction::Write
            ),
        ]
    );
    let foreign = String::from_utf8(keys_before[0].clone())
        .unwrap()
        .replace("kept out of", "kept apart from");
    assert_ne!(foreign.as_bytes(), keys_before[0]);
    let web01_keys = sf.farm.server("web01").file(KEYS);
    let outcome = apply(
        &plan,
        &mut sessions,
        &sf.audit,
        &Interrupt::new(),
        &mut |p| {
            if let Progress::Done(r) = p
                && r.server == "web02"
            {
                fs::write(&web01_keys, &foreign).unwrap();
            }
        },
    );
    assert_eq!(
        outcome.verdict(),
        PushVerdict::OutOfStep,
        "{}",
        outcome.summary()
    );
    assert!(
        outcome.final_state.iter().any(|(n, s)| n == "web01"
            && matches!(s, FinalState::Foreign(f) if f.to_string().ends_with("MachineKey.config"))),
        "{:?}",
        outcome.final_state
    );
    let summary = outcome.summary();
    assert!(
        summary.contains("web01 a MachineKey.config farmkey did not write (someone else changed C:\\inetpub\\Flowtime\\App_Config\\MachineKey.config"),
        "{summary}"
    );
    // Back to the fixture's files for the two operators.
    fs::write(&web01_keys, &keys_before[0]).unwrap();
    fs::write(sf.farm.server("web02").file(KEYS), &keys_before[1]).unwrap();

    // Both plan from the same files.
    let (mut sa, mut sb) = (sf.sessions(), sf.sessions());
    let plan_a = adopt("web01", &mut sa);
    let plan_b = adopt("web02", &mut sb);
    assert_eq!(
        actions(&plan_b),
        [
            (
                "web01".into(),
                "MachineKey.config".into(),
                PlanAction::Write
            ),
            ("web02".into(), "web.config".into(), PlanAction::Unchanged),
        ]
    );

    // While B holds web02 (which it leaves unchanged), A cannot write
    // web02's key file.
    let lock = sf.farm.server("web02").file(LOCK);
    let held = STALE_LOCK
        .replace("dead", "live")
        .replace("2020-01-01", "2030-01-01");
    fs::write(&lock, &held).unwrap();
    let outcome = apply(&plan_a, &mut sa, &sf.audit, &Interrupt::new(), &mut |_| {});
    assert_eq!(
        outcome.verdict(),
        PushVerdict::AsBefore,
        "{}",
        outcome.summary()
    );
    assert!(
        matches!(&outcome.refused, Some(PushRefusal::Lock(_))),
        "{:?}",
        outcome.refused
    );
    assert_eq!(
        [sf.read("web01", KEYS), sf.read("web02", KEYS)],
        keys_before
    );
    fs::remove_file(&lock).unwrap();

    // A goes through; B, planned before, finds the key file of web02 (a
    // server it leaves unchanged) changed and writes nothing.
    let outcome = apply(&plan_a, &mut sa, &sf.audit, &Interrupt::new(), &mut |_| {});
    assert!(outcome.success(), "{}", outcome.summary());
    let after_a = [sf.read("web01", KEYS), sf.read("web02", KEYS)];
    let outcome = apply(&plan_b, &mut sb, &sf.audit, &Interrupt::new(), &mut |_| {});
    assert_eq!(
        outcome.verdict(),
        PushVerdict::AsBefore,
        "{}",
        outcome.summary()
    );
    assert!(
        matches!(&outcome.refused, Some(PushRefusal::Changed { server, file })
            if server == "web02" && file.to_string().ends_with("MachineKey.config")),
        "{:?}",
        outcome.refused
    );
    assert_eq!([sf.read("web01", KEYS), sf.read("web02", KEYS)], after_a);
    let report = sf.report();
    let flowtime = report.site("Flowtime").unwrap();
    assert!(
        flowtime.consistent() == Some(true),
        "{:?}",
        flowtime.findings
    );
}

/// `--keep-partial` keeps the servers already pushed, never a server half
/// pushed: stopped between web02's two files, web01 keeps the new keys and
/// web02's first file is rolled back, so that each server ends whole.
#[test]
fn keep_partial_never_keeps_a_server_half_pushed() {
    const WEB: &str = "C:/Program Files/PNMsoft/Process TOGO/web.config";
    const IDENTITY: &str = "C:/Program Files/PNMsoft/Process TOGO/App_Config/identity.config";
    let sf = SourceFarm::new();
    let files = |server: &str| [sf.read(server, WEB), sf.read(server, IDENTITY)];
    let before = [files("web01"), files("web02")];
    let mut req = request("Process TOGO", generate());
    req.keep_partial = true;
    let mut sessions = sf.sessions();
    let plan = build_plan(&req, &sf.report(), &mut sessions).unwrap();
    let stop = Interrupt::new();
    let outcome = apply(&plan, &mut sessions, &sf.audit, &stop, &mut |p| {
        if let Progress::Done(r) = p
            && r.server == "web02"
            && r.file.to_string().ends_with("web.config")
        {
            stop.request(farmkey::push::StopReason::Operator);
        }
    });
    let outcomes: Vec<(String, ServerOutcome)> = outcome
        .results
        .iter()
        .map(|r| (outcome.label(r), r.outcome.clone()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("web01".to_string(), ServerOutcome::Applied),
            ("web02 web.config".to_string(), ServerOutcome::RolledBack),
            (
                "web02 identity.config".to_string(),
                ServerOutcome::NotAttempted(NotAttempted::Interrupted(
                    farmkey::push::StopReason::Operator
                ))
            ),
        ]
    );
    assert_ne!(files("web01")[0], before[0][0], "web01 kept, as asked");
    assert_eq!(files("web02"), before[1], "web02 whole, as before");
    assert_eq!(outcome.verdict(), PushVerdict::OutOfStep);
}

/// A push that writes two files of one server (the keys in web.config, the
/// handler in the `configSource` file of system.identityModel) is recorded,
/// shown and rolled back file by file.
#[test]
fn a_push_of_two_files_on_a_server_is_rolled_back_file_by_file() {
    let sf = SourceFarm::new();
    let files = |server: &str| sf.togo_files(server);
    let before = [files("web01"), files("web02")];
    let (ok, text) = sf.farmkey(&["push", "--site", "Process TOGO", "--generate", "--yes"]);
    assert!(ok, "{text}");
    for line in [
        "web02 web.config applied and verified",
        "web02 identity.config applied and verified",
    ] {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == line),
            "{line}: {text}"
        );
    }
    let records = sf.audit.read_all().unwrap();
    let applied: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r.outcome == farmkey::push::audit::Outcome::Applied)
        .map(|r| (r.server.as_str(), r.file.rsplit('\\').next().unwrap()))
        .collect();
    assert!(
        applied.contains(&("web02", "web.config"))
            && applied.contains(&("web02", "identity.config")),
        "{applied:?}"
    );
    assert_ne!(files("web02"), before[1]);
    let (ok, text) = sf.farmkey(&["history", "--site", "Process TOGO"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("web02 web.config applied") && text.contains("web02 identity.config applied"),
        "{text}"
    );

    let (ok, text) = sf.farmkey(&["rollback", "--site", "Process TOGO", "--yes"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("web02 identity.config restored and verified"),
        "{text}"
    );
    assert_eq!([files("web01"), files("web02")], before, "{text}");
    let (_, text) = sf.farmkey(&["rollback", "--site", "Process TOGO", "--yes"]);
    assert!(
        text.contains("no push of Process TOGO with applied changes"),
        "{text}"
    );
}

/// A push whose verification fails on web02 (its applicationHost.config
/// broken meanwhile) and whose restore fails too (its backup moved away)
/// names the file it could not restore (the `configSource` file, not
/// web.config) and advises `farmkey rollback --push ID`; once the backup is
/// back, that command restores it, and leaves web01 (rolled back by the
/// push) alone.
#[test]
fn a_file_the_push_could_not_restore_is_named_and_restored_by_the_advised_rollback() {
    const KEYS: &str = "C:/inetpub/Flowtime/App_Config/MachineKey.config";
    const KEYS_DIR: &str = "C:/inetpub/Flowtime/App_Config";
    const HOST: &str = "C:/Windows/System32/inetsrv/config/applicationHost.config";
    let sf = SourceFarm::new();
    let before = [sf.read("web01", KEYS), sf.read("web02", KEYS)];
    let (mut child, pause) = spawn_push_paused(&sf.farm, &sf.audit.path, "swapped:web02");
    reach(&pause, &mut child);
    let host = sf.farm.server("web02").file(HOST);
    let host_bytes = fs::read(&host).unwrap();
    fs::write(&host, "<configuration><system.applicationHost>").unwrap();
    let dir = sf.farm.server("web02").file(KEYS_DIR);
    let backup = match backups_in(&dir).as_slice() {
        [b] => b.clone(),
        other => panic!("{other:?}"),
    };
    let away = tempfile::tempdir().unwrap();
    let moved = away.path().join("backup");
    fs::rename(&backup, &moved).unwrap();
    pause.go();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("MachineKey.config could NOT be restored")
            && !stdout.contains("web.config could NOT"),
        "{stdout}"
    );
    let id = sf.audit.read_all().unwrap()[0].push_id.clone();
    assert!(
        last_line(&stdout).contains(&format!(
            "undo with `farmkey rollback --site \"Flowtime\" --push {id}`"
        )),
        "{stdout}"
    );
    assert_eq!(sf.read("web01", KEYS), before[0], "rolled back by the push");
    assert_ne!(sf.read("web02", KEYS), before[1]);

    fs::write(&host, &host_bytes).unwrap();
    fs::rename(&moved, &backup).unwrap();
    let (ok, text) = sf.farmkey(&["rollback", "--site", "Flowtime", "--push", &id, "--yes"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("web02      restored and verified") && !text.contains("web01"),
        "{text}"
    );
    assert_eq!([sf.read("web01", KEYS), sf.read("web02", KEYS)], before);
    for server in ["web01", "web02"] {
        for d in [KEYS_DIR, "C:/inetpub/Flowtime"] {
            let dir = sf.farm.server(server).file(d);
            assert_eq!(leftovers_in(&dir), Vec::<String>::new(), "{server} {d}");
        }
    }
    let (ok, text) = sf.farmkey(&["rollback", "--site", "Flowtime", "--push", &id, "--yes"]);
    assert!(ok && text.contains("Nothing to roll back"), "{text}");
}

/// A rollback is made server by server: when one of web02's two files was
/// changed by someone since the push, neither is restored (the changed one
/// named on both lines), so web02 is never left half rolled back; web01
/// goes on.
#[test]
fn a_server_with_a_file_changed_since_the_push_is_not_rolled_back_at_all() {
    let sf = SourceFarm::new();
    let files = |server: &str| sf.togo_files(server);
    let before = [files("web01"), files("web02")];
    let (ok, text) = sf.farmkey(&["push", "--site", "Process TOGO", "--generate", "--yes"]);
    assert!(ok, "{text}");
    let pushed = files("web02");
    assert_ne!(pushed, before[1]);
    let mut theirs = pushed[1].clone();
    theirs.extend_from_slice(b"<!-- deployed meanwhile -->\r\n");
    fs::write(sf.farm.server("web02").file(TOGO_IDENTITY), &theirs).unwrap();

    let (ok, text) = sf.farmkey(&["rollback", "--site", "Process TOGO", "--yes"]);
    assert!(!ok, "{text}");
    let line = |label: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("{label}: {text}"))
            .to_string()
    };
    let changed =
        "C:\\Program Files\\PNMsoft\\Process TOGO\\App_Config\\identity.config changed since push";
    let web = line("web02 web.config ");
    assert!(
        web.contains("refused: not restored, as another file of this server is not")
            && web.contains(changed),
        "{text}"
    );
    assert!(
        line("web02 identity.config ").contains(&format!("refused: {changed}")),
        "{text}"
    );
    assert!(text.contains("web01      restored and verified"), "{text}");
    assert!(
        last_line(&text)
            .contains("NOT fully rolled back: web02 web.config and web02 identity.config refused"),
        "{text}"
    );
    assert_eq!(files("web01"), before[0]);
    assert_eq!(files("web02"), [pushed[0].clone(), theirs]);
    let dir = sf
        .farm
        .server("web02")
        .file("C:/Program Files/PNMsoft/Process TOGO");
    assert_eq!(
        leftovers_in(&dir),
        Vec::<String>::new(),
        "the lock is released"
    );
    let refused = sf
        .audit
        .read_all()
        .unwrap()
        .into_iter()
        .filter(|r| r.action == AuditAction::Rollback && r.server == "web02")
        .map(|r| r.outcome.to_string())
        .collect::<Vec<_>>();
    assert_eq!(refused, ["refused", "refused"]);
}

/// A signal of [`SIGNALS`] while `farmkey rollback` restores a server is
/// noted, not honoured: the rollback is finished (no restore copy or lock
/// left), its last line says the signal came, and the exit code is the
/// rollback's.
#[test]
fn a_signal_during_a_rollback_is_noted_and_the_rollback_finished() {
    let s = setup();
    let original = s.flowtime_files();
    for (sig, name) in SIGNALS {
        let audit = s.farm.home.path().join(format!("audit-{name}.jsonl"));
        let out = s
            .farm
            .farmkey_process()
            .args(s.farm.push_flowtime_args(&audit))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}");
        assert_ne!(s.flowtime_files(), original, "{name}");
        let mut cmd = s.farm.farmkey_process();
        cmd.args(["rollback", "--site", "Flowtime", "--yes"])
            .args(s.farm.headless_args(&audit))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let pause = pause_at(&mut cmd, "rollback:web02");
        let mut child = cmd.spawn().unwrap();
        reach(&pause, &mut child);
        // Pending once kill returns: taken before the process looks for
        // `go`, whichever runs first.
        unsafe { libc::kill(child.id() as i32, sig) };
        pause.go();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{name}: {stdout}");
        let last = last_line(&stdout);
        assert!(
            last.contains("rolled back: every server it changed holds its original bytes again")
                && last.contains(name)
                && last.ends_with("came during the rollback, which was finished first."),
            "{name}: {stdout}"
        );
        assert_eq!(s.flowtime_files(), original, "{name}");
        s.assert_clean();
    }
}

/// A push killed half-way through a swap that deletes, then renames
/// (Win32-OpenSSH before 8.6) leaves the file missing: its intent record
/// lets `farmkey rollback` put it back from its backup. A file the push
/// applied and verified that is missing since is someone else's doing,
/// and is left alone.
#[test]
fn rollback_puts_back_a_file_a_push_cut_short_left_missing() {
    let s = setup();
    let original = s.flowtime_files();
    let audit = push_killed_at(&s, "swapped:web02");
    // web01 applied and verified, then removed by someone; web02 cut short
    // between the delete and the rename.
    fs::remove_file(s.file("web01", FLOWTIME)).unwrap();
    fs::remove_file(s.file("web02", FLOWTIME)).unwrap();
    let out = s
        .farm
        .farmkey()
        .args(["rollback", "--site", "Flowtime", "--yes", "--break-lock"])
        .args(s.farm.headless_args(&audit))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("web02      restored and verified")
            && stdout.contains("web01      refused:")
            && stdout.contains("it was removed by someone else"),
        "{stdout}"
    );
    assert!(!s.file("web01", FLOWTIME).exists());
    assert_eq!(s.bytes("web02", FLOWTIME), original[1]);
    assert_eq!(s.bytes("web03", FLOWTIME), original[2]);
}

/// A `<machineKey>` ASP.NET refuses as it reads it (ConfigurationElement:
/// attribute names are case-sensitive, unknown ones are errors): the plan
/// writes the attribute spelled in another case correctly in its place,
/// never a second one beside it, and refuses, with the reason, what it
/// cannot fix without guessing. The scan calls both invalid-config.
#[test]
fn a_machine_key_asp_net_refuses_is_fixed_in_place_or_refused_never_doubled() {
    let l = local();
    let rewrite = |server: &str, from: &str, to: &str| {
        let text = String::from_utf8(l.read(server)).unwrap();
        assert!(text.contains(from));
        fs::write(l.path(server), text.replacen(from, to, 1)).unwrap();
    };
    rewrite(
        "web01",
        "<machineKey validationKey=",
        "<machineKey ValidationKey=",
    );
    rewrite(
        "web02",
        "<machineKey validationKey=",
        "<machineKey validationAlgorithm=\"HMACSHA256\" validationKey=",
    );
    let report = l.report();
    let site = report.site("Flowtime").unwrap();
    let invalid: Vec<&str> = site
        .findings
        .iter()
        .filter(|f| f.code == Code::InvalidConfig)
        .map(|f| f.message.as_str())
        .collect();
    assert!(
        invalid.iter().any(|m| m.contains("web01")
            && m.contains("ValidationKey")
            && m.contains("Config_base_unrecognized_attribute")),
        "{invalid:?}"
    );
    assert!(
        invalid
            .iter()
            .any(|m| m.contains("web02") && m.contains("validationAlgorithm")),
        "{invalid:?}"
    );

    let mut sessions = l.sessions();
    let plan = build_plan(&request("Flowtime", generate()), &report, &mut sessions).unwrap();
    let text = plan.to_string();
    let web01 = plan.servers.iter().find(|s| s.server == "web01").unwrap();
    assert_eq!(web01.action, PlanAction::Write, "{text}");
    assert!(
        text.contains("ValidationKey (ASP.NET refuses it) -> validationKey"),
        "{text}"
    );
    let edited = String::from_utf8(web01.edited.as_ref().unwrap().to_vec()).unwrap();
    assert!(!edited.contains("ValidationKey"), "{edited}");
    assert_eq!(edited.matches("validationKey=").count(), 1, "{edited}");
    let verdict = plan.verdict();
    let why = &verdict
        .blocks()
        .iter()
        .find(|b| b.server == "web02")
        .expect("web02 refused")
        .reason;
    let text = why.to_string();
    assert!(
        matches!(why, BlockReason::EditRefused { .. })
            && text.contains("validationAlgorithm")
            && text.contains("Config_base_unrecognized_attribute"),
        "{why:?}"
    );

    // Pushed where it can be (web02 left out): web01 reads back without a
    // finding of its own.
    let mut req = request("Flowtime", generate());
    req.exclude = vec!["web02".into()];
    let mut sessions = l.sessions();
    let plan = build_plan(&req, &l.report(), &mut sessions).unwrap();
    let outcome = run(&plan, &mut sessions, &l.audit);
    assert!(outcome.success(), "{}", outcome.summary());
    let after = l.report();
    let site = after.site("Flowtime").unwrap();
    assert!(
        site.findings
            .iter()
            .filter(|f| f.code == Code::InvalidConfig)
            .all(|f| !f.servers.contains(&"web01".to_string())),
        "{:?}",
        site.findings
    );
}

/// A web.config made a link after the plan (to a copy holding the very
/// bytes the plan read, so every re-read passes) is found by the last look
/// before the swap: that server is refused, named, and the push ends with
/// every server as it was; the link and its target are untouched.
#[test]
fn a_link_put_in_place_after_the_plan_is_never_swapped_over() {
    let s = setup();
    let audit = s.binary_audit();
    let file = |srv: &str| s.farm.server(srv).file(FLOWTIME);
    let before: Vec<Vec<u8>> = ["web01", "web02", "web03"]
        .iter()
        .map(|srv| fs::read(file(srv)).unwrap())
        .collect();
    let (mut child, pause) = spawn_push_paused(&s.farm, &audit, "start");
    reach(&pause, &mut child);
    let web02 = file("web02");
    let copy = web02.with_file_name("web.copy.config");
    fs::rename(&web02, &copy).unwrap();
    std::os::unix::fs::symlink("web.copy.config", &web02).unwrap();
    pause.go();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(
            "C:\\inetpub\\Cora\\Flowtime\\web.config is a symbolic link to web.copy.config: farmkey never replaces or removes it"
        ),
        "{text}"
    );
    assert_eq!(fs::read_link(&web02).unwrap(), Path::new("web.copy.config"));
    assert_eq!(fs::read(&copy).unwrap(), before[1]);
    for (srv, bytes) in ["web01", "web03"].iter().zip([&before[0], &before[2]]) {
        assert_eq!(&fs::read(file(srv)).unwrap(), bytes, "{srv}: {text}");
    }
    let names: Vec<String> = fs::read_dir(web02.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("farmkey-new"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

/// `servers` sshd, each serving a copy of the demo's web01.
fn farm_of(servers: usize) -> (farmkey::demo::DemoFarm, SshFarm) {
    let demo = farmkey::demo::DemoFarm::new().unwrap();
    let trees: Vec<(String, PathBuf)> = (1..=servers)
        .map(|i| (format!("web{i:02}"), demo.path().join("web01")))
        .collect();
    let farm = SshFarm::start(&trees, Options::default());
    (demo, farm)
}

/// `farmkey push --site Flowtime --generate` under an open-files limit
/// (`prlimit --nofile=SOFT:HARD`).
fn push_limited(farm: &SshFarm, audit: &Path, limit: &str) -> std::process::Command {
    let farmkey = farm.farmkey_process();
    let mut cmd = std::process::Command::new("prlimit");
    cmd.arg(format!("--nofile={limit}"))
        .arg(farmkey.get_program())
        .args(farm.push_flowtime_args(audit))
        .env_clear()
        .envs(farmkey.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(farmkey.get_current_dir().unwrap_or(Path::new(".")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn a_farm_larger_than_the_open_files_limit_is_pushed_paced() {
    let (_demo, farm) = farm_of(24);
    let audit = farm.home.path().join("audit.jsonl");
    let flowtime = |i: usize| fs::read(farm.server(&format!("web{i:02}")).file(FLOWTIME)).unwrap();
    let before: Vec<Vec<u8>> = (1..=24).map(flowtime).collect();
    // 48 descriptors, hard limit too: 24 sessions held at once do not fit.
    let out = push_limited(&farm, &audit, "48:48").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        last_line(&stdout).contains("Flowtime is in step on every server of the push (24 written"),
        "{stdout}"
    );
    for i in 1..=24 {
        assert_ne!(flowtime(i), before[i - 1], "web{i:02}");
        assert_eq!(flowtime(i), flowtime(1), "web{i:02}");
        assert_eq!(
            leftovers_in(&farm.server(&format!("web{i:02}")).file(FLOWTIME_DIR)),
            Vec::<String>::new()
        );
    }

    // A soft limit below the hard one is raised to it at start.
    let mut cmd = push_limited(&farm, &audit, "48:4096");
    let pause = pause_at(&mut cmd, "start");
    let mut child = cmd.spawn().unwrap();
    reach(&pause, &mut child);
    let limits = fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    pause.go();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        open_files.split_whitespace().collect::<Vec<_>>()[3..5],
        ["4096", "4096"],
        "{limits}"
    );
}

/// The push's lock on a server that answers but whose folder became
/// read-only to farmkey's account is named as such, never as a server out
/// of reach.
#[test]
fn a_lock_left_in_a_read_only_folder_is_named_as_such() {
    use std::os::unix::fs::PermissionsExt;
    let s = setup();
    let dir = s.file("web01", FLOWTIME_DIR);
    let mode = fs::metadata(&dir).unwrap().permissions().mode();
    let (mut sessions, plan) = s.plan(request("Flowtime", generate()));
    let outcome = apply(
        &plan,
        &mut sessions,
        &s.audit,
        &Interrupt::new(),
        &mut |p| {
            if let Progress::Note(n) = p
                && n.starts_with("releasing the locks")
            {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
            }
        },
    );
    fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
    let summary = outcome.summary();
    assert!(outcome.success(), "{summary}");
    assert!(
        summary.contains("the lock C:\\inetpub\\Cora\\Flowtime\\web.farmkey-lock.config on web01")
            && summary.contains("its lock's folder is read-only to farmkey's account")
            && !summary.contains("once the server answers"),
        "{summary}"
    );
    assert!(dir.join("web.farmkey-lock.config").exists());
}

/// A claim a push left when it stopped while breaking a lock is named by
/// the next plan, and is no lock: it blocks nothing and is left alone.
#[test]
fn a_lock_claim_left_behind_is_named_by_the_plan_and_never_taken_for_a_lock() {
    let s = setup();
    let claim = s.file(
        "web01",
        "C:/inetpub/Cora/Flowtime/web.farmkey-lock.20200101T000000-ab12.claim.config",
    );
    fs::write(&claim, STALE_LOCK).unwrap();
    let (_sessions, plan) = s.plan(request("Flowtime", generate()));
    let text = plan.to_string();
    assert_eq!(plan.verdict(), PlanVerdict::Ready, "{text}");
    assert!(
        text.contains("C:\\inetpub\\Cora\\Flowtime\\web.farmkey-lock.20200101T000000-ab12.claim.config: left by a push that stopped while breaking a lock; it holds the lock of push 20200101T000000Z-dead of alice on jump9"),
        "{text}"
    );
    assert_eq!(fs::read_to_string(&claim).unwrap(), STALE_LOCK);
}

/// Real pushes asked to break one stale lock, let go at once: one takes it
/// and ends in step; the others exit 1 having written nothing, and no lock
/// or claim is left.
#[test]
fn pushes_breaking_one_stale_lock_at_once_leave_one_holder() {
    let s = setup();
    let audit = s.binary_audit();
    let lock = s.file("web01", "C:/inetpub/Cora/Flowtime/web.farmkey-lock.config");
    for trial in 0..3 {
        fs::write(&lock, STALE_LOCK).unwrap();
        let runs: Vec<(Child, Pause)> = (0..3)
            .map(|_| {
                let mut cmd = s.farm.farmkey_process();
                cmd.args(s.farm.push_flowtime_args(&audit))
                    .arg("--break-lock")
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                let pause = pause_at(&mut cmd, "start");
                (cmd.spawn().unwrap(), pause)
            })
            .collect();
        // All have planned, each to break the lock it was shown.
        let outs = race(runs);
        let winners: Vec<&(i32, String)> = outs.iter().filter(|(c, _)| *c == 0).collect();
        assert_eq!(winners.len(), 1, "trial {trial}: {outs:?}");
        let won = &winners[0].1;
        assert!(won.contains("broke the stale lock"), "trial {trial}: {won}");
        let id = last_line(won)
            .strip_prefix("Push ")
            .and_then(|l| l.split(':').next())
            .unwrap()
            .to_string();
        let set = key_set_of(won);
        assert!(set.is_some());
        assert!(
            s.key_sets().iter().all(|k| *k == set),
            "trial {trial}: {:?} vs {set:?}",
            s.key_sets()
        );
        for (code, out) in outs.iter().filter(|(c, _)| *c != 0) {
            assert_eq!(*code, 1, "trial {trial}: {out}");
            let last = last_line(out);
            assert!(
                last.contains("NOT made")
                    && last.contains("nothing was written")
                    && (last.contains(&format!("is locked by push {id}"))
                        || last.contains("changed since the plan")),
                "trial {trial}: winner {id}: {out}"
            );
        }
        s.assert_clean();
    }
}

/// The audit log is checked before any server is touched: a log others
/// could write, one with a line that is not a record, and one another
/// process keeps locked (`flock`, util-linux) each end the push with
/// exit 2 and a message naming the log (and the lock's holder), in a
/// bounded time, every file of the farm as it was and no lock left.
#[test]
fn headless_a_push_checks_its_audit_log_before_touching_a_server() {
    use std::os::unix::fs::PermissionsExt;
    let s = setup();
    let before = s.all_files();
    let audit = s.binary_audit();
    let push = || {
        let out = s
            .farm
            .farmkey_process()
            .args(s.farm.push_flowtime_args(&audit))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    fs::write(&audit, "").unwrap();
    fs::set_permissions(&audit, fs::Permissions::from_mode(0o666)).unwrap();
    let (code, out) = push();
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(&format!(
            "audit log {}: permissions 0666 are too open",
            audit.display()
        )) && out.contains("chmod go-w"),
        "{out}"
    );
    assert_eq!(s.all_files(), before);

    fs::set_permissions(&audit, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&audit, "{\"push_id\": \"edited by hand\"}\n").unwrap();
    let (code, out) = push();
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(&format!("{}:1: not an audit record", audit.display())),
        "{out}"
    );
    assert_eq!(s.all_files(), before);

    fs::write(&audit, "").unwrap();
    let ready = s.farm.home.path().join("flock-ready");
    let mut holder = std::process::Command::new("flock")
        .arg("--no-fork")
        .arg(&audit)
        .args(["sh", "-c"])
        .arg(format!("touch '{}'; exec sleep 120", ready.display()))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "flock never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let (code, out) = push();
    let took = started.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(&format!(
            "audit log {}: locked by another process (held by pid {} (sleep)) for more than 10 s",
            audit.display(),
            holder.id()
        )),
        "{out}"
    );
    assert!(
        took >= farmkey::push::audit::LOCK_WAIT && took < Duration::from_secs(60),
        "{took:?}"
    );
    assert_eq!(s.all_files(), before, "no server touched, no lock left");
    assert_eq!(fs::read(&audit).unwrap(), b"", "nothing recorded");
    // Once let go, the push goes through.
    let (code, out) = push();
    assert_eq!(code, Some(0), "{out}");
    s.assert_clean();
}

/// A rollback takes audit records as input, not orders: a record edited
/// to name applicationHost.config (with its current hash), another site's
/// web.config, a path with `..`, a backup that is not one farmkey makes,
/// or a lock elsewhere is refused and named, exit 1, and no server is
/// written (the others' records are sound: they are not restored either).
#[test]
fn headless_a_rollback_writes_only_what_a_push_of_the_site_writes() {
    const HOST: &str = "C:/Windows/System32/inetsrv/config/applicationHost.config";
    const ADMIN: &str = "D:/Cora/Administration/web.config";
    let s = setup();
    let audit = pushed(&s);
    let pushed = s.all_files();
    let log = fs::read_to_string(&audit).unwrap();
    let sha =
        |server: &str, path: &str| farmkey::bytes::FileBytes::from(s.bytes(server, path)).sha256();
    let host_sha = sha("web02", HOST);
    let admin_sha = sha("web02", ADMIN);
    // Each edit of web02's applied record, and what the refusal names.
    type Edit<'a> = (&'a str, Box<dyn Fn(&mut serde_json::Value)>, &'a str);
    let edits: Vec<Edit> = vec![
        (
            "applicationHost.config",
            Box::new(move |r| {
                r["file"] = HOST.replace('/', "\\").into();
                r["sha256_after"] = host_sha.clone().into();
            }),
            "names C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config, which no push of Flowtime writes on this server (it writes C:\\inetpub\\Cora\\Flowtime\\web.config)",
        ),
        (
            "another site",
            Box::new(move |r| {
                r["file"] = ADMIN.replace('/', "\\").into();
                r["sha256_after"] = admin_sha.clone().into();
            }),
            "names D:\\Cora\\Administration\\web.config, which no push of Flowtime writes",
        ),
        (
            "..",
            Box::new(|r| r["file"] = "C:\\inetpub\\Cora\\Flowtime\\..\\..\\web.config".into()),
            "C:\\inetpub\\Cora\\Flowtime\\..\\..\\web.config",
        ),
        (
            "backup",
            Box::new(|r| r["backup"] = HOST.replace('/', "\\").into()),
            "as the backup of C:\\inetpub\\Cora\\Flowtime\\web.config, not a name farmkey gives a backup",
        ),
        (
            "lock",
            Box::new(|r| r["lock"] = "C:\\Windows\\win.ini".into()),
            "names C:\\Windows\\win.ini as the lock of C:\\inetpub\\Cora\\Flowtime\\web.config",
        ),
    ];
    for (what, edit, named) in edits {
        let edited: Vec<String> = log
            .lines()
            .map(|l| {
                let mut r: serde_json::Value = serde_json::from_str(l).unwrap();
                if r["server"] == "web02" && r["outcome"] == "applied" {
                    edit(&mut r);
                }
                r.to_string()
            })
            .collect();
        fs::write(&audit, edited.join("\n") + "\n").unwrap();
        let out = s
            .farm
            .farmkey()
            .args(["rollback", "--site", "Flowtime", "--yes"])
            .args(s.farm.headless_args(&audit))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {text}");
        assert!(
            text.contains("web02") && text.contains("refused: ") && text.contains(named),
            "{what}: {text}"
        );
        assert!(
            text.contains("web01")
                && text.contains("another record of this push cannot be trusted"),
            "{what}: {text}"
        );
        assert!(
            last_line(&text).contains("NOT fully rolled back"),
            "{what}: {text}"
        );
        assert_eq!(s.all_files(), pushed, "{what}: nothing written");
    }
    // The log as the push wrote it: the rollback goes through.
    fs::write(&audit, &log).unwrap();
    let out = s
        .farm
        .farmkey()
        .args(["rollback", "--site", "Flowtime", "--yes"])
        .args(s.farm.headless_args(&audit))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    s.assert_clean();
}

/// A rollback whose outcome record the audit log does not take (its disk
/// full once web02 is restored): `history` never shows web02 `applied`
/// but says a rollback started and its outcome is unknown; a second
/// rollback looks at it and finds it restored.
#[test]
fn headless_history_tells_a_rollback_it_could_not_record() {
    let s = setup();
    let original = s.flowtime_files();
    let audit = pushed(&s);
    let mut cmd = s.farm.farmkey_process();
    cmd.args(["rollback", "--site", "Flowtime", "--yes"])
        .args(s.farm.headless_args(&audit))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let pause = pause_at(&mut cmd, "restored:web02");
    let mut child = cmd.spawn().unwrap();
    reach(&pause, &mut child);
    // The disk fills: the log is kept aside, /dev/full takes its place.
    let kept = audit.with_extension("kept");
    fs::rename(&audit, &kept).unwrap();
    std::os::unix::fs::symlink("/dev/full", &audit).unwrap();
    pause.go();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "web02      restored and verified; but the audit log did not take its record"
        ),
        "{stdout}"
    );
    // web03 is not written: the log does not take that its rollback starts.
    assert!(
        stdout.contains("web03      refused: not restored: the audit log did not take the record that the rollback starts"),
        "{stdout}"
    );
    assert_eq!(s.flowtime_files()[..2], original[..2]);
    assert_ne!(s.flowtime_files()[2], original[2]);
    fs::remove_file(&audit).unwrap();
    fs::rename(&kept, &audit).unwrap();
    let history = || {
        let out = s
            .farm
            .farmkey()
            .args(["history", "--site", "Flowtime", "--audit"])
            .arg(&audit)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let text = history();
    assert!(
        text.contains(
            "push      web01 applied, web02 unknown: a rollback started, its outcome not recorded (applied by the push), web03 applied"
        ) && text.contains(
            "rollback  web01 rolled-back, web02 unknown: a rollback started, its outcome not recorded"
        ),
        "{text}"
    );
    // web02 and web03 are looked at again: web02 holds its original bytes.
    let out = s
        .farm
        .farmkey()
        .args(["rollback", "--site", "Flowtime", "--yes"])
        .args(s.farm.headless_args(&audit))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("web02      already holds its original bytes")
            && stdout.contains("web03      restored and verified"),
        "{stdout}"
    );
    assert_eq!(s.flowtime_files(), original);
    assert!(
        history().contains("rollback  web01 rolled-back, web02 rolled-back, web03 rolled-back"),
        "{}",
        history()
    );
    s.assert_clean();
}

/// Two `farmkey rollback` of one push at once: the second waits for the
/// server the first holds, finds what it restored, and says so; together
/// they restore everything, each server once, and both exit 0.
#[test]
fn headless_two_rollbacks_at_once_report_truthfully() {
    let s = setup();
    let original = s.flowtime_files();
    let audit = pushed(&s);
    let rollback = || {
        let mut cmd = s.farm.farmkey_process();
        cmd.args(["rollback", "--site", "Flowtime", "--yes"])
            .args(s.farm.headless_args(&audit))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    // The first holds web01; the second meets its lock there.
    let mut first = rollback();
    let first_pause = pause_at(&mut first, "rollback:web01");
    let mut first = first.spawn().unwrap();
    reach(&first_pause, &mut first);
    let mut second = rollback();
    let second_pause = pause_at(&mut second, "waiting:web01");
    let mut second = second.spawn().unwrap();
    reach(&second_pause, &mut second);
    first_pause.go();
    second_pause.go();
    let first = first.wait_with_output().unwrap();
    let second = second.wait_with_output().unwrap();
    let a = String::from_utf8_lossy(&first.stdout).to_string();
    let b = String::from_utf8_lossy(&second.stdout).to_string();
    assert_eq!(first.status.code(), Some(0), "{a}\n{b}");
    assert_eq!(second.status.code(), Some(0), "{a}\n{b}");
    for server in SERVERS {
        let restored = [&a, &b]
            .iter()
            .filter(|t| t.contains(&format!("{server:<10} restored and verified")))
            .count();
        let already = [&a, &b]
            .iter()
            .filter(|t| t.contains(&format!("{server:<10} already holds its original bytes")))
            .count();
        assert_eq!((restored, already), (1, 1), "{server}: {a}\n{b}");
    }
    assert!(
        b.contains("web01      already holds") && b.contains("web02      already holds"),
        "{b}"
    );
    for t in [&a, &b] {
        assert!(
            last_line(t)
                .contains("rolled back: every server it changed holds its original bytes again"),
            "{t}"
        );
    }
    assert_eq!(s.flowtime_files(), original);
    s.assert_clean();
}

#[test]
fn a_lock_taken_by_another_push_mid_push_stops_that_server_and_rolls_back() {
    // SFTP has no compare-and-swap: a breaker that stalled can move this
    // push's lock and a third push take it. Played here by replacing
    // web02's lock with another push's while this one is held, before
    // web02's first write and between its staging and its swap.
    let s = setup();
    let original = s.flowtime_files();
    let lock = s
        .farm
        .server("web02")
        .file(FLOWTIME)
        .with_file_name("web.farmkey-lock.config");
    let other = farmkey::push::lock::LockInfo {
        push_id: "20261207T000000Z-othr".into(),
        site: "Flowtime".into(),
        user: "bob".into(),
        host: "elsewhere".into(),
        pid: 4242,
        time: "2026-12-07T00:00:00Z".into(),
        started: None,
        boot: None,
    };
    for (point, web02) in [
        ("applied:web01", ("web02", "push", "failed")),
        ("staged:web02", ("web02", "push", "intent")),
    ] {
        let audit = s.farm.home.path().join(format!("audit-{point}.jsonl"));
        let (mut child, pause) = spawn_push_paused(&s.farm, &audit, point);
        reach(&pause, &mut child);
        let mine = fs::read(&lock).unwrap();
        assert!(
            String::from_utf8_lossy(&mine).contains("\"pid\""),
            "{point}"
        );
        fs::remove_file(&lock).unwrap();
        fs::write(&lock, serde_json::to_vec(&other).unwrap()).unwrap();
        pause.go();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{point}: {stdout}");
        let last = last_line(&stdout);
        assert!(
            last.contains("web02 failed")
                && last.contains("the lock was taken by push 20261207T000000Z-othr")
                && last.contains("Flowtime is as it was on every server: web01 rolled back"),
            "{point}: {stdout}"
        );
        assert_eq!(s.flowtime_files(), original, "{point}");
        // The other push's lock is never removed by this one.
        assert_eq!(
            serde_json::from_slice::<farmkey::push::lock::LockInfo>(&fs::read(&lock).unwrap())
                .unwrap(),
            other,
            "{point}"
        );
        fs::remove_file(&lock).unwrap();
        s.assert_clean();
        let rows = audit_outcomes(&audit);
        assert!(
            rows.iter()
                .any(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()) == web02),
            "{point}: {rows:?}"
        );
        assert!(
            rows.iter()
                .any(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())
                    == ("web01", "rollback", "rolled-back")),
            "{point}: {rows:?}"
        );
        assert!(!stdout.contains("Left behind"), "{point}: {stdout}");
    }
}

/// Lets binaries held at their pause go at once (each has planned), and
/// gathers their exit codes and standard output.
fn race(mut runs: Vec<(Child, Pause)>) -> Vec<(i32, String)> {
    for (child, pause) in &mut runs {
        reach(pause, child);
    }
    for (_, pause) in &runs {
        pause.go();
    }
    runs.into_iter()
        .map(|(child, _)| {
            let out = child.wait_with_output().unwrap();
            (
                out.status.code().unwrap(),
                String::from_utf8_lossy(&out.stdout).to_string(),
            )
        })
        .collect()
}
