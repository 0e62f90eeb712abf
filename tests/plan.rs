//! Saved plans against real sshd servers: `farmkey push --save-plan` then
//! `farmkey apply`, run as the real binary on the demo farm. A plan is
//! applied only while every file reads as planned; an altered plan, other
//! keys, a changed or unreachable server are refused with nothing written.

mod support;

use farmkey::keys::{Decryption, KeySet, Validation, sha256_hex};
use farmkey::push::audit::{AuditAction, AuditLog};
use farmkey::push::saved::SavedPlan;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::pty::Pty;
use support::sshd::{Options, SshFarm, demo_over_ssh};
use support::*;

const FLOWTIME: &str = "C:/inetpub/Cora/Flowtime/web.config";
/// The file as the plan and the messages name it.
const FLOWTIME_SHOWN: &str = "C:\\inetpub\\Cora\\Flowtime\\web.config";
const SERVERS: [&str; 3] = farmkey::demo::SERVERS;

struct Setup {
    _demo: farmkey::demo::DemoFarm,
    farm: SshFarm,
    /// keys.xml, other-keys.xml, plan.toml, audit.jsonl
    dir: tempfile::TempDir,
    keys: KeySet,
}

fn key_file(path: &Path) -> KeySet {
    let keys = KeySet::generate(Validation::HmacSha256, Decryption::Aes).unwrap();
    fs::write(path, keys.to_xml_element()).unwrap();
    keys
}

fn setup() -> Setup {
    let (demo, farm) = demo_over_ssh(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(&dir.path().join("keys.xml"));
    Setup {
        _demo: demo,
        farm,
        dir,
        keys,
    }
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn plan_path(&self) -> PathBuf {
        self.path("plan.toml")
    }

    fn audit(&self) -> PathBuf {
        self.path("audit.jsonl")
    }

    /// `farmkey ARGS` headless on the farm: exit code, standard output and
    /// error.
    fn run(&self, args: &[&str]) -> (i32, String) {
        let out = self
            .farm
            .farmkey()
            .args(args)
            .args(self.farm.headless_args(&self.audit()))
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    fn save(&self) -> (i32, String) {
        let plan = self.plan_path();
        let keys = self.path("keys.xml");
        self.run(&[
            "push",
            "--site",
            "Flowtime",
            "--keys",
            keys.to_str().unwrap(),
            "--save-plan",
            plan.to_str().unwrap(),
        ])
    }

    fn apply_with(&self, keys: &str, extra: &[&str]) -> (i32, String) {
        let plan = self.plan_path();
        let keys = self.path(keys);
        let mut args = vec![
            "apply",
            plan.to_str().unwrap(),
            "--keys",
            keys.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn apply(&self) -> (i32, String) {
        self.apply_with("keys.xml", &["--yes"])
    }

    fn all_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        self.farm.all_files()
    }

    fn flowtime(&self, server: &str) -> PathBuf {
        self.farm.server(server).file(FLOWTIME)
    }

    fn records(&self) -> Vec<farmkey::push::audit::AuditRecord> {
        if !self.audit().exists() {
            return Vec::new();
        }
        AuditLog::new(self.audit()).read().unwrap().records
    }

    /// Saves the plan, checking that saving wrote nothing anywhere.
    fn saved(&self) -> SavedPlan {
        let before = self.all_files();
        let (code, out) = self.save();
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("saved to"), "{out}");
        assert_eq!(self.all_files(), before, "saving a plan changed a server");
        assert!(
            !self.audit().exists(),
            "saving a plan wrote an audit record"
        );
        SavedPlan::load(&self.plan_path()).unwrap()
    }

    /// Nothing written on any server and no audit record since `before`.
    fn assert_untouched(&self, before: &[(PathBuf, Vec<u8>)], out: &str) {
        assert_eq!(
            self.all_files(),
            before,
            "a refused apply changed a file\n{out}"
        );
        assert!(self.records().is_empty(), "{out}");
    }
}

/// Every spelling of a key's text: hex in either case, base64 of its bytes.
fn spellings(keys: &KeySet) -> Vec<String> {
    use base64::Engine;
    let mut out = Vec::new();
    for k in [&keys.validation_key, &keys.decryption_key] {
        let hex = k.expose();
        let raw = hex::decode(hex).unwrap();
        out.push(hex.to_ascii_uppercase());
        out.push(hex.to_ascii_lowercase());
        out.push(base64::engine::general_purpose::STANDARD.encode(&raw));
        out.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw));
        // Any part long enough to matter.
        out.push(hex[..16].to_ascii_uppercase());
        out.push(hex[hex.len() - 16..].to_ascii_lowercase());
    }
    out
}

fn assert_no_key_text(keys: &KeySet, text: &str, what: &str) {
    for s in spellings(keys) {
        assert!(!text.contains(&s), "key text {s} in {what}:\n{text}");
    }
}

#[test]
fn a_file_changed_on_one_server_after_the_plan_refuses_apply_naming_it_and_writes_nothing() {
    let s = setup();
    let saved = s.saved();
    let text = fs::read_to_string(s.plan_path()).unwrap();
    assert_no_key_text(&s.keys, &text, "the plan file");
    // The reviewer's file: site, every server, hashes, diffs, who and when.
    assert_eq!(saved.site, "Flowtime");
    assert_eq!(saved.planned_by.split('@').next(), Some("operator"));
    for n in SERVERS {
        let f = saved
            .files
            .iter()
            .find(|f| f.server == n && f.file == FLOWTIME_SHOWN)
            .unwrap_or_else(|| panic!("{n} not in\n{text}"));
        assert_eq!(
            f.sha256_read.as_deref(),
            Some(sha256_hex(&fs::read(s.flowtime(n)).unwrap()).as_str())
        );
        assert!(
            f.diff.as_deref().unwrap_or_default().contains("[key "),
            "{text}"
        );
    }
    assert_eq!(
        saved.key_set.as_ref().unwrap().fingerprint,
        s.keys.set_fingerprint()
    );

    // A hand edit on web02 after the change board approved the plan.
    let web02 = s.flowtime("web02");
    let mut bytes = fs::read(&web02).unwrap();
    bytes.extend_from_slice(b"<!-- edited by hand -->\r\n");
    fs::write(&web02, bytes).unwrap();
    let before = s.all_files();
    let (code, out) = s.apply();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("web02 {FLOWTIME_SHOWN}: changed since the plan")),
        "{out}"
    );
    assert!(!out.contains("web01 C:"), "{out}");
    assert!(
        last_line(&out).contains("NOT applied: not as planned on web02 (see above)"),
        "{out}"
    );
    s.assert_untouched(&before, &out);
    assert_no_key_text(&s.keys, &out, "the output");
}

fn last_line(text: &str) -> &str {
    text.trim_end().lines().last().unwrap_or_default()
}

#[test]
fn an_unreachable_server_or_one_moved_in_the_inventory_refuses_apply_naming_it() {
    let mut s = setup();
    s.saved();
    let before = s.all_files();
    s.farm.server_mut("web03").kill();
    let (code, out) = s.apply();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("web03: could not be read"), "{out}");
    s.assert_untouched(&before, &out);

    // The inventory now names web01 at another port: not the server the
    // plan was made for.
    let mut s = setup();
    s.saved();
    let before = s.all_files();
    let port = s.farm.server("web01").port;
    s.farm.server_mut("web01").port = port + 1;
    let (code, out) = s.apply();
    s.farm.server_mut("web01").port = port;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "web01: its address in the inventory changed (127.0.0.1:{port} planned, 127.0.0.1:{} now)",
            port + 1
        )),
        "{out}"
    );
    s.assert_untouched(&before, &out);
}

#[test]
fn a_plan_applied_unchanged_writes_what_it_said_and_is_named_in_the_audit_log() {
    let s = setup();
    let saved = s.saved();
    let (code, out) = s.apply();
    assert_eq!(code, 0, "{out}");
    assert!(
        last_line(&out).contains("Flowtime is in step on every server of the push"),
        "{out}"
    );
    assert_no_key_text(&s.keys, &out, "the output");
    // The bytes written are the ones the plan hashed.
    for f in &saved.files {
        let now = sha256_hex(&fs::read(s.flowtime(&f.server)).unwrap());
        assert_eq!(Some(now), f.sha256_written, "{}", f.server);
    }
    // In step, by a fresh scan.
    let report = scan_inventory(&s.farm.inventory_timeout(20), &all_sites());
    let site = report.site("Flowtime").unwrap();
    for n in SERVERS {
        assert_eq!(
            site.instance(n).unwrap().set_fingerprint.as_deref(),
            Some(s.keys.set_fingerprint().as_str()),
            "{n}"
        );
    }
    // One push, every record of it naming the plan (file and digest).
    let records = s.records();
    let mut ids: Vec<&str> = records.iter().map(|r| r.push_id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "{records:?}");
    let canonical = fs::canonicalize(s.plan_path()).unwrap();
    for r in &records {
        assert_eq!(r.action, AuditAction::Push);
        let p = r.plan.as_ref().expect("the record names the plan");
        assert_eq!(p.id, saved.id);
        assert_eq!(p.sha256, saved.digest());
        assert_eq!(Path::new(&p.file), canonical);
    }
    let out = s
        .farm
        .farmkey()
        .args(["history", "--audit", s.audit().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let history = String::from_utf8_lossy(&out.stdout);
    assert!(
        history.contains(&format!("plan      {} ({}", saved.id, canonical.display())),
        "{history}"
    );
    // Applied twice: refused, the files hold what it wrote already.
    let before = s.all_files();
    let (code, out) = s.apply();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("holds what the plan writes already"), "{out}");
    assert_eq!(s.all_files(), before);
}

#[test]
fn an_altered_plan_or_other_keys_are_refused_and_nothing_is_written() {
    let s = setup();
    let saved = s.saved();
    let text = fs::read_to_string(s.plan_path()).unwrap();
    let before = s.all_files();
    // One hex digit of a hash; then the site.
    let sha = saved.files[0].sha256_read.clone().unwrap();
    let flipped = format!(
        "{}{}",
        if sha.starts_with('0') { '1' } else { '0' },
        &sha[1..]
    );
    for (from, to) in [
        (sha.as_str(), flipped.as_str()),
        ("site = \"Flowtime\"", "site = \"Flowtimf\""),
    ] {
        fs::write(s.plan_path(), text.replacen(from, to, 1)).unwrap();
        let (code, out) = s.apply();
        assert_eq!(code, 2, "{out}");
        assert!(
            out.contains(&format!(
                "plan {}: it was altered since it was saved",
                s.plan_path().display()
            )),
            "{out}"
        );
        s.assert_untouched(&before, &out);
    }
    fs::write(s.plan_path(), &text).unwrap();

    // Keys other than the plan's: named by fingerprint, never shown.
    let other = key_file(&s.path("other-keys.xml"));
    let (code, out) = s.apply_with("other-keys.xml", &["--yes"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!(
            "the keys given are not the plan's: validationKey fingerprint {} planned, {} given; decryptionKey fingerprint {} planned, {} given",
            s.keys.validation_key.fingerprint(),
            other.validation_key.fingerprint(),
            s.keys.decryption_key.fingerprint(),
            other.decryption_key.fingerprint()
        )),
        "{out}"
    );
    assert_no_key_text(&other, &out, "the output");
    assert_no_key_text(&s.keys, &out, "the output");
    // No keys at all.
    let plan = s.plan_path();
    let (code, out) = s.run(&["apply", plan.to_str().unwrap(), "--yes"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("it writes keys: give them"), "{out}");
    s.assert_untouched(&before, &out);
}

#[test]
fn generated_keys_cannot_be_saved_and_an_existing_plan_is_kept() {
    let s = setup();
    let plan = s.plan_path();
    let (code, out) = s.run(&[
        "push",
        "--site",
        "Flowtime",
        "--generate",
        "--save-plan",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("farmkey keygen"), "{out}");
    assert!(!plan.exists());
    fs::write(&plan, "an earlier plan").unwrap();
    let (code, out) = s.save();
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("it exists already"), "{out}");
    assert_eq!(fs::read_to_string(&plan).unwrap(), "an earlier plan");
}

/// A plan planned `days` ago, re-tagged with its keys as farmkey would.
fn aged(s: &Setup, days: u64) {
    let mut p = SavedPlan::load(&s.plan_path()).unwrap();
    let at = std::time::SystemTime::now() - Duration::from_secs(days * 86400);
    p.planned_at = humantime::format_rfc3339_seconds(at).to_string();
    p.seal(Some(&s.keys)).write(&s.plan_path(), true).unwrap();
}

#[test]
fn an_old_plan_asks_before_it_is_applied() {
    let s = setup();
    s.saved();
    aged(&s, 10);
    let before = s.all_files();
    // On a terminal: asked, and "no" writes nothing.
    let plan = s.plan_path();
    let keys = s.path("keys.xml");
    let mut args = vec![
        "apply".to_string(),
        plan.to_str().unwrap().to_string(),
        "--keys".to_string(),
        keys.to_str().unwrap().to_string(),
    ];
    args.extend(s.farm.headless_args(&s.audit()));
    args.retain(|a| a != "--batch");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut pty = Pty::farmkey(&args, &[("USER", "operator")], 200, 50, s.farm.home.path());
    let t = Duration::from_secs(60);
    let screen = pty.wait_for("Apply it all the same?", t);
    assert!(
        screen.contains("is 10 day(s) old, older than 7 day(s) (--max-age)"),
        "{screen}"
    );
    pty.send("n\r");
    pty.wait_for("Cancelled: nothing was written.", t);
    assert_eq!(pty.wait_exit(t), 1);
    s.assert_untouched(&before, &pty.screen());

    // --batch never asks: refused without --yes.
    let (code, out) = s.apply_with("keys.xml", &[]);
    assert_eq!(code, 2, "{out}");
    s.assert_untouched(&before, &out);
    // A longer limit: no question, applied.
    let (code, out) = s.apply_with("keys.xml", &["--yes", "--max-age", "30"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("older than"), "{out}");
}

#[test]
fn adopted_keys_and_a_handler_only_plan_are_applied_as_planned() {
    let s = setup();
    let plan = s.plan_path();
    let plan = plan.to_str().unwrap();
    let (code, out) = s.run(&[
        "push",
        "--site",
        "Flowtime",
        "--adopt",
        "web01",
        "--save-plan",
        plan,
    ]);
    assert_eq!(code, 0, "{out}");
    let saved = SavedPlan::load(&s.plan_path()).unwrap();
    assert!(saved.source.contains("from web01"), "{}", saved.source);
    // Adopted again from the same server: the same set, applied.
    let (code, out) = s.run(&["apply", plan, "--adopt", "web01", "--yes"]);
    assert_eq!(code, 0, "{out}");
    for f in saved.files.iter().filter(|f| f.sha256_written.is_some()) {
        let now = sha256_hex(&fs::read(s.flowtime(&f.server)).unwrap());
        assert_eq!(Some(now), f.sha256_written, "{}", f.server);
    }

    // The handler swap alone: no keys, a digest for a tag.
    let togo = s.path("togo.toml");
    let togo = togo.to_str().unwrap();
    let (code, out) = s.run(&[
        "push",
        "--site",
        "Process TOGO",
        "--handler-only",
        "--save-plan",
        togo,
    ]);
    assert_eq!(code, 0, "{out}");
    let saved = SavedPlan::load(Path::new(togo)).unwrap();
    assert!(saved.key_set.is_none());
    assert_eq!(
        saved.tag.as_ref().map(|t| t.kind),
        Some(farmkey::push::saved::TagKind::Sha256)
    );
    let keys = s.path("keys.xml");
    let (code, out) = s.run(&["apply", togo, "--keys", keys.to_str().unwrap(), "--yes"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("it writes no keys (handler only)"), "{out}");
    let (code, out) = s.run(&["apply", togo, "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        last_line(&out).contains("Process TOGO is in step on every server of the push (1 written"),
        "{out}"
    );
    let written: Vec<_> = saved
        .files
        .iter()
        .filter(|f| f.sha256_written.is_some())
        .collect();
    assert_eq!(written.len(), 1, "{saved:?}");
    assert_eq!(written[0].server, "web03");
    let now = sha256_hex(
        &fs::read(
            s.farm
                .server("web03")
                .file("C:/Program Files/PNMsoft/Process TOGO/web.config"),
        )
        .unwrap(),
    );
    assert_eq!(Some(now), written[0].sha256_written.clone(), "{out}");
}
