//! Hostile servers and careless files: every test feeds one and checks
//! what reaches the terminal, the disk and the exit code. No key text may
//! appear in any output, log, audit record or file outside a server's own
//! folder in any of them.
//!
//! The items of the issue, in order: terminal escapes in names, paths and
//! values; keys spelled with character references; the modes and owners
//! of files that hold keys; links planted where a push writes; files too
//! large, or too long on one line; full and read-only disks, the audit
//! log's errors, site names that differ only in case; and after them, sites
//! and applications named twice, and key text quoted from files.

mod support;

use farmkey::analysis::{Selection, analyze};
use farmkey::farm::scan_all;
use farmkey::inventory::Inventory;
use farmkey::keys::{Decryption, KeySet, Validation, fingerprint};
use farmkey::paths::RemotePath;
use farmkey::push::apply::{Restore, Step};
use farmkey::push::audit::AuditLog;
use farmkey::push::{
    Interrupt, KeySource, Plan, PushOutcome, PushRequest, PushVerdict, ServerOutcome, Sessions,
    apply, build_plan,
};
use farmkey::transport::{
    ConnectOptions, DirEntry, FileStat, LinkEnd, NewFile, Transport, TransportError,
};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::pty::Pty;
use support::sshd::{Options, SshFarm, demo_over_ssh};
use support::*;

const FLOWTIME: &str = "C:/inetpub/Cora/Flowtime/web.config";
const FLOWTIME_DIR: &str = "C:/inetpub/Cora/Flowtime";
const SERVERS: [&str; 3] = farmkey::demo::SERVERS;

/// The demo farm in a folder, with the key sets it was made with: every
/// test checks that none of their text leaks.
struct Farm {
    dir: tempfile::TempDir,
    keys: Vec<String>,
}

fn farm() -> Farm {
    let dir = tempfile::tempdir().unwrap();
    let mut keys = Vec::new();
    farmkey::demo::lay_out_with(dir.path(), |_| {
        let set = KeySet::generate(Validation::Sha1, Decryption::Aes).unwrap();
        keys.push(set.validation_key.expose().to_string());
        keys.push(set.decryption_key.expose().to_string());
        Ok(set)
    })
    .unwrap();
    Farm { dir, keys }
}

impl Farm {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn inventory(&self) -> PathBuf {
        self.path().join("farmkey.toml")
    }

    fn file(&self, server: &str, rel: &str) -> PathBuf {
        self.path().join(server).join(rel)
    }

    fn edit(&self, server: &str, rel: &str, f: impl FnOnce(String) -> String) {
        let p = self.file(server, rel);
        let text = fs::read_to_string(&p).unwrap();
        fs::write(&p, f(text)).unwrap();
    }

    fn audit(&self) -> PathBuf {
        self.path().join("state").join("audit.jsonl")
    }

    /// `farmkey COMMAND ARGS`, with the farm's inventory and audit log.
    fn run(&self, command: &str, args: &[&str]) -> Out {
        let mut cmd = farmkey_command(self.path());
        cmd.arg(command);
        if command != "history" {
            cmd.arg("--inventory").arg(self.inventory());
        }
        if matches!(command, "push" | "rollback" | "history") {
            cmd.arg("--audit").arg(self.audit());
        }
        if command == "push" || command == "scan" {
            cmd.arg("--batch");
        }
        let out = cmd.args(args).output().unwrap();
        let out = Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.assert_no_key(&out.stdout);
        self.assert_no_key(&out.stderr);
        out
    }

    fn report(&self) -> farmkey::analysis::FarmReport {
        let inv = Inventory::load(&self.inventory()).unwrap();
        analyze(
            &scan_all(&inv.servers, ConnectOptions::default(), 3),
            &Selection {
                all_sites: true,
                sites: vec![],
                ..Default::default()
            },
        )
    }

    fn sessions(&self) -> Sessions {
        let inv = Inventory::load(&self.inventory()).unwrap();
        Sessions::new(inv.servers, ConnectOptions::default())
    }

    fn plan(&self, site: &str) -> (Sessions, Plan) {
        let mut sessions = self.sessions();
        let plan = build_plan(&request(site), &self.report(), &mut sessions).unwrap();
        (sessions, plan)
    }

    /// The console on the farm, in a pseudo-terminal, and its session log.
    fn console(&self, cols: u16, rows: u16) -> (Pty, PathBuf) {
        let log = self.path().join("session.log");
        let inventory = self.inventory();
        let args = [
            "--inventory",
            inventory.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
        ];
        (Pty::farmkey(&args, &[], cols, rows, self.path()), log)
    }

    /// No key of the farm in `text`, in any case.
    fn assert_no_key(&self, text: &str) {
        no_key(&self.keys, text);
    }

    /// The audit log holds no key either.
    fn assert_clean_audit(&self) {
        if let Ok(text) = fs::read_to_string(self.audit()) {
            self.assert_no_key(&text);
        }
    }
}

fn no_key(keys: &[String], text: &str) {
    let upper = text.to_ascii_uppercase();
    for key in keys {
        let probe = key.to_ascii_uppercase();
        assert!(
            !upper.contains(&probe[..16]),
            "key material in the output: {}",
            &probe[..16]
        );
    }
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn request(site: &str) -> PushRequest {
    PushRequest::new(
        site,
        KeySource::Generate {
            validation: Validation::HmacSha256,
            decryption: Decryption::Aes,
        },
    )
}

fn apply_plan(plan: &Plan, sessions: &mut Sessions, audit: &Path) -> PushOutcome {
    apply(
        plan,
        sessions,
        &AuditLog::new(audit.to_path_buf()),
        &Interrupt::new(),
        &mut |_| {},
    )
}

/// Files farmkey leaves beside web.config: only backups may stay.
fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".farmkey") && !n.ends_with(".farmkey.config"))
        .collect()
}

fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".farmkey.config"))
        .collect();
    v.sort();
    v
}

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

// ---------------------------------------------------------------------
// 1. Terminal escapes.

/// OSC 52 (writes the clipboard), a screen clear, OSC 0 (the window title)
/// and a right-to-left override, in one site name.
const HOSTILE: &str = "\u{1b}]52;c;SEVMTE8=\u{7}\u{1b}[2J\u{1b}]0;pwned\u{7}\u{202e}gpj.exe\u{9b}";

/// What must never reach a terminal raw.
fn assert_terminal_safe(what: &str, text: &str) {
    for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
        assert!(
            !text.contains(bad),
            "{what}: {bad:?} reached the terminal:\n{text}"
        );
    }
}

/// A farm whose Flowtime site is named `Flowtime` + [`HOSTILE`] on every
/// server, whose physical path on web02 holds a right-to-left override, and
/// whose web03 spells `validation` with escapes (ASP.NET refuses it: the
/// finding quotes it).
fn hostile_farm() -> (Farm, String) {
    let f = farm();
    let name = format!("Flowtime{HOSTILE}");
    for s in SERVERS {
        f.edit(
            s,
            "C:/Windows/System32/inetsrv/config/applicationHost.config",
            |t| t.replace("<site name=\"Flowtime\"", &format!("<site name=\"{name}\"")),
        );
    }
    let odd = "Flow\u{202e}time";
    fs::rename(
        f.file("web02", FLOWTIME_DIR),
        f.file("web02", &format!("C:/inetpub/Cora/{odd}")),
    )
    .unwrap();
    f.edit(
        "web02",
        "C:/Windows/System32/inetsrv/config/applicationHost.config",
        |t| t.replace("inetpub\\Cora\\Flowtime", &format!("inetpub\\Cora\\{odd}")),
    );
    f.edit("web03", FLOWTIME, |t| {
        t.replace(
            "validation=\"SHA1\"",
            "validation=\"SHA1\u{1b}]0;pwned\u{7}\"",
        )
    });
    (f, name)
}

#[test]
fn escapes_from_servers_never_reach_the_terminal_and_json_stays_exact() {
    let (f, name) = hostile_farm();
    let scan = f.run("scan", &[]);
    assert_eq!(scan.code, Some(1), "{scan:?}");
    assert_terminal_safe("scan", &scan.stdout);
    assert!(
        scan.stdout.contains(
            "Flowtime\\x1b]52;c;SEVMTE8=\\x07\\x1b[2J\\x1b]0;pwned\\x07\\u{202e}gpj.exe\\u{9b}"
        ),
        "shown as visible escapes:\n{}",
        scan.stdout
    );
    assert!(
        scan.stdout.contains("invalid-config") && scan.stdout.contains("SHA1\\x1b]0;pwned\\x07"),
        "the finding quotes the value, escaped:\n{}",
        scan.stdout
    );

    // JSON is for programs: exact, with JSON's own escaping.
    let json = f.run("scan", &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let sites: Vec<&str> = v["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["site"].as_str().unwrap())
        .collect();
    assert!(sites.contains(&name.as_str()), "{sites:?}");
    assert!(!json.stdout.contains('\u{1b}'), "escaped by JSON");

    // The plan, the dry-run diff, the push, history and rollback.
    let dry = f.run("push", &["--site", &name, "--generate", "--dry-run"]);
    assert_eq!(dry.code, Some(0), "{dry:?}");
    assert_terminal_safe("dry run", &dry.stdout);
    assert!(
        dry.stdout.contains("Push ") && dry.stdout.contains("\\u{202e}"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("+++ web03:"), "{}", dry.stdout);
    let push = f.run("push", &["--site", &name, "--generate", "--yes"]);
    assert_eq!(push.code, Some(0), "{push:?}");
    assert_terminal_safe("push", &push.stdout);
    assert_terminal_safe("push", &push.stderr);
    let history = f.run("history", &[]);
    assert_eq!(history.code, Some(0), "{history:?}");
    assert_terminal_safe("history", &history.stdout);
    assert!(
        history.stdout.contains("Flowtime\\x1b]52"),
        "{}",
        history.stdout
    );
    let rollback = f.run("rollback", &["--site", &name, "--yes", "--batch"]);
    assert_eq!(rollback.code, Some(0), "{rollback:?}");
    assert_terminal_safe("rollback", &rollback.stdout);
    assert_terminal_safe("rollback", &rollback.stderr);

    // Error messages quote what they were given: escaped too.
    let err = f.run(
        "push",
        &["--site", "Nope\u{1b}]0;x\u{7}", "--generate", "--dry-run"],
    );
    assert_eq!(err.code, Some(2), "{err:?}");
    assert_terminal_safe("error", &err.stderr);
    let keys = f.path().join("keys.xml");
    let set = KeySet::generate(Validation::Sha1, Decryption::Aes).unwrap();
    fs::write(
        &keys,
        set.to_xml_element()
            .replace("validation=\"SHA1\"", "validation=\"SHA1\u{1b}[2J\""),
    )
    .unwrap();
    let err = f.run(
        "push",
        &[
            "--site",
            &name,
            "--keys",
            keys.to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert_eq!(err.code, Some(2), "{err:?}");
    assert_terminal_safe("error", &err.stderr);
    assert!(err.stderr.contains("[2J"), "{}", err.stderr);
    no_key(
        &[
            set.validation_key.expose().to_string(),
            set.decryption_key.expose().to_string(),
        ],
        &err.stderr,
    );
    f.assert_clean_audit();
}

#[test]
fn the_console_shows_hostile_names_without_their_escapes() {
    let (f, _) = hostile_farm();
    let (mut p, log) = f.console(120, 30);
    // The escape characters are dropped; the rest is text (a terminal
    // given ESC ] 52 would have taken the rest as a command, not shown it).
    p.wait_until(
        "the hostile site, shown as text",
        Duration::from_secs(20),
        |s| s.contains("servers 3 ok") && s.contains("Flowtime]52;c;SEVMTE8="),
    );
    p.send("q");
    assert_eq!(p.wait_exit(Duration::from_secs(20)), 0);
    let raw = p.output();
    for bad in ["\u{1b}]52", "\u{1b}]0;pwned", "\u{7}", "\u{202e}", "\u{9b}"] {
        assert!(!raw.contains(bad), "{bad:?} reached the terminal");
    }
    f.assert_no_key(&raw);
    let logged = fs::read_to_string(&log).unwrap_or_default();
    assert_terminal_safe("session log", &logged);
}

// ---------------------------------------------------------------------
// 2. Keys spelled with character references.

#[test]
fn a_key_spelled_with_character_references_is_masked_in_the_dry_run() {
    let f = farm();
    // web01's Flowtime keys as hexadecimal references; web02's with every
    // other character a decimal reference and an entity-split tail.
    let mut spelled = Vec::new();
    for (server, style) in [("web01", 0), ("web02", 1)] {
        f.edit(server, FLOWTIME, |t| {
            let mut t = t;
            for attr in ["validationKey", "decryptionKey"] {
                let at = t.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
                let end = at + t[at..].find('"').unwrap();
                let key = t[at..end].to_string();
                let refs: String = key
                    .chars()
                    .enumerate()
                    .map(|(i, c)| match style {
                        0 => format!("&#x{:x};", c as u32),
                        _ if i % 2 == 0 => format!("&#{};", c as u32),
                        _ => c.to_string(),
                    })
                    .collect();
                spelled.push((key.clone(), refs.clone()));
                t.replace_range(at..end, &refs);
            }
            t
        });
    }
    // web03 keeps an old key in a comment, spelled with references.
    let old = KeySet::generate(Validation::Sha1, Decryption::Aes).unwrap();
    let old = old.validation_key.expose().to_string();
    let old_refs = hex_refs(&old);
    f.edit("web03", FLOWTIME, |t| {
        t.replacen(
            "<machineKey",
            &format!("<!-- previous: validationKey=\"{old_refs}\" -->\n<machineKey"),
            1,
        )
    });
    // farmkey reads them as the keys they are.
    let scan = f.run("scan", &["--format", "json"]);
    for (key, _) in &spelled {
        assert!(
            scan.stdout.contains(&fingerprint(key)),
            "fingerprint of a spelled key: {}",
            scan.stdout
        );
    }
    let dry = f.run("push", &["--site", "Flowtime", "--generate", "--dry-run"]);
    assert_eq!(dry.code, Some(0), "{dry:?}");
    for (key, refs) in &spelled {
        assert!(!dry.stdout.contains(refs.as_str()), "{}", dry.stdout);
        assert!(
            dry.stdout.contains(&format!("[key {}]", fingerprint(key))),
            "{}",
            dry.stdout
        );
        no_key(std::slice::from_ref(key), &dry.stdout);
    }
    assert!(!dry.stdout.contains("&#"), "{}", dry.stdout);
    // The comment is masked by what it means: the old key's fingerprint.
    assert!(
        dry.stdout.contains(&format!(
            "<!-- previous: validationKey=\"[key {}]\" -->",
            fingerprint(&old)
        )),
        "{}",
        dry.stdout
    );
    no_key(std::slice::from_ref(&old), &dry.stdout);
    f.assert_clean_audit();
}

/// A key spelled as hexadecimal character references, one per digit.
fn hex_refs(key: &str) -> String {
    key.chars().map(|c| format!("&#x{:x};", c as u32)).collect()
}

#[test]
fn key_text_quoted_from_files_never_reaches_any_output() {
    let f = farm();
    let admin = "D:/Cora/Administration/web.config";
    let read = |server: &str, rel: &str, attr: &str| {
        attr_in(&fs::read_to_string(f.file(server, rel)).unwrap(), attr)
    };
    // web01: a validationKey pasted into validation=, and a decryptionKey
    // after AutoGenerate as if it were a modifier.
    let (vk1, dk1) = (
        read("web01", FLOWTIME, "validationKey"),
        read("web01", FLOWTIME, "decryptionKey"),
    );
    f.edit("web01", FLOWTIME, |t| {
        t.replace("validation=\"SHA1\"", &format!("validation=\"{vk1}\""))
            .replace(&dk1, &format!("AutoGenerate,{dk1}"))
    });
    // web02: a key in an unknown entity (quick-xml quotes its name).
    let vk2 = read("web02", FLOWTIME, "validationKey");
    f.edit("web02", FLOWTIME, |t| {
        t.replace(&vk2, &format!("x&A{vk2};"))
    });
    // web03: a key as a closing tag, and one spelled with references in
    // decryption=.
    let dk3 = read("web03", admin, "decryptionKey");
    f.edit("web03", admin, |t| {
        t.replace("</system.web>", &format!("</A{dk3}>"))
    });
    let dk3f = read("web03", FLOWTIME, "decryptionKey");
    f.edit("web03", FLOWTIME, |t| {
        t.replace(
            "decryption=\"AES\"",
            &format!("decryption=\"{}\"", hex_refs(&dk3f)),
        )
    });
    let spelled: Vec<String> = f
        .keys
        .iter()
        .map(|k| hex_refs(k)[..48].to_string())
        .collect();
    let clean = |what: &str, text: &str| {
        f.assert_no_key(text);
        for refs in &spelled {
            assert!(!text.contains(refs.as_str()), "{what}: {text}");
        }
    };

    let table = f.run("scan", &[]);
    assert_eq!(table.code, Some(1), "{table:?}");
    clean("scan", &table.stdout);
    // Still useful: what is wrong, where, and which key it is.
    for expected in [
        format!("<machineKey validation=\"[key {}]\">", fingerprint(&vk1)),
        format!("unknown modifier \"[key {}]\"", fingerprint(&dk1)),
        format!("<machineKey decryption=\"[key {}]\">", fingerprint(&dk3f)),
        "unrecognized entity `[key ".to_string(),
        "but `</[key ".to_string(),
    ] {
        assert!(
            table.stdout.contains(&expected),
            "{expected}\n{}",
            table.stdout
        );
    }
    let json = f.run("scan", &["--format", "json"]);
    clean("json", &json.stdout);
    let dry = f.run("push", &["--site", "Flowtime", "--generate", "--dry-run"]);
    clean("dry run", &dry.stdout);
    clean("dry run", &dry.stderr);

    // The console, and its session log.
    let (mut p, log) = f.console(200, 50);
    p.wait_until("the scan", Duration::from_secs(20), |s| {
        s.contains("servers 3 ok")
    });
    p.send("q");
    assert_eq!(p.wait_exit(Duration::from_secs(20)), 0);
    clean("console", &p.output());
    let logged = fs::read_to_string(&log).unwrap();
    assert!(!logged.is_empty());
    clean("session log", &logged);
}

// ---------------------------------------------------------------------
// 3. The files that hold keys: modes and owners.

#[test]
fn local_pushes_keep_the_mode_and_owner_and_backups_are_owner_only() {
    assert_eq!(unsafe { libc::geteuid() }, 0, "these tests run as root");
    let f = farm();
    let web = f.file("web01", FLOWTIME);
    fs::set_permissions(&web, fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&web, Some(4321), Some(4322)).unwrap();
    let push = f.run("push", &["--site", "Flowtime", "--generate", "--yes"]);
    assert_eq!(push.code, Some(0), "{push:?}");
    let after = fs::metadata(&web).unwrap();
    assert_eq!(
        (after.mode() & 0o7777, after.uid(), after.gid()),
        (0o640, 4321, 4322)
    );
    for s in SERVERS {
        let dir = f.file(s, FLOWTIME_DIR);
        let b = backups(&dir);
        assert_eq!(b.len(), 1, "{s}");
        assert_eq!(mode_of(&b[0]), 0o600, "{s}: the backup is owner-only");
        assert_eq!(leftovers(&dir), Vec::<String>::new());
    }
    // Rollback puts the original back with its mode and owner.
    let back = f.run("rollback", &["--site", "Flowtime", "--yes", "--batch"]);
    assert_eq!(back.code, Some(0), "{back:?}");
    let restored = fs::metadata(&web).unwrap();
    assert_eq!(
        (restored.mode() & 0o7777, restored.uid(), restored.gid()),
        (0o640, 4321, 4322)
    );
    f.assert_clean_audit();
}

/// A copy holding keys (not the lock) that is readable by others, in `dir`.
fn open_to_others(dir: &Path) -> Vec<(String, u32)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.to_string_lossy();
            name.contains(".farmkey") && !name.contains("farmkey-lock")
        })
        .map(|p| (p.display().to_string(), mode_of(&p)))
        .filter(|(_, mode)| mode & 0o077 != 0)
        .collect()
}

/// `farmkey push` of Flowtime held just before web01's swap: its copy
/// staged, verified and recorded.
fn held_staged(farm: &SshFarm, audit: &Path) -> (std::process::Child, Pause) {
    let mut cmd = farm.farmkey_process();
    cmd.args(farm.push_flowtime_args(audit))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let pause = Pause::new("staged:web01");
    pause.set(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    pause.wait(|| child.try_wait().unwrap().is_some());
    (child, pause)
}

/// The staged copies in `dir`.
fn staged_in(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".farmkey-new"))
        .collect()
}

#[test]
fn staged_copies_stay_owner_only_until_the_swap_over_sftp() {
    // Umask 0: a mode farmkey did not set would be 0666.
    let (_demo, farm) = demo_over_ssh(Options {
        sftp_flags: " -u 0000",
        ..Options::default()
    });
    let web = farm.server("web01").file(FLOWTIME);
    let dir = farm.server("web01").file(FLOWTIME_DIR);
    fs::set_permissions(&web, fs::Permissions::from_mode(0o640)).unwrap();
    let audit = farm.home.path().join("audit.jsonl");
    let held = || held_staged(&farm, &audit);
    let staged = || staged_in(&dir);

    // Held just before the swap: verified and recorded, still owner-only.
    let (child, pause) = held();
    let copies = staged();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(mode_of(&copies[0]), 0o600);
    assert_eq!(open_to_others(&dir), vec![]);
    pause.go();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(mode_of(&web), 0o640, "web.config keeps its mode");
    assert_eq!(open_to_others(&dir), vec![]);

    // The mode cannot be given (the copy taken by root meanwhile): web01
    // fails before its swap, its staged copy removed, nothing changed.
    let before = fs::read(&web).unwrap();
    let (child, pause) = held();
    let copies = staged();
    std::os::unix::fs::chown(&copies[0], Some(0), Some(0)).unwrap();
    pause.go();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("web01"), "{stdout}");
    assert_eq!(fs::read(&web).unwrap(), before);
    assert_eq!(mode_of(&web), 0o640);
    assert_eq!(staged(), Vec::<PathBuf>::new());
    assert_eq!(open_to_others(&dir), vec![]);

    // Killed there: the copy it leaves holds the new keys, owner-only.
    let (mut child, _pause) = held();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(staged().len(), 1);
    assert_eq!(open_to_others(&dir), vec![]);
    assert_eq!(fs::read(&web).unwrap(), before);
}

#[test]
fn a_link_put_at_the_staged_copy_before_its_mode_is_set_is_never_followed_over_sftp() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let web = farm.server("web01").file(FLOWTIME);
    let dir = farm.server("web01").file(FLOWTIME_DIR);
    fs::set_permissions(&web, fs::Permissions::from_mode(0o644)).unwrap();
    let before = fs::read(&web).unwrap();
    // A file of the SFTP account's own, owner-only: setstat by name would
    // open it to others.
    let victim = dir.join("victim.txt");
    fs::write(&victim, b"private").unwrap();
    let owner = fs::metadata(&web).unwrap();
    std::os::unix::fs::chown(&victim, Some(owner.uid()), Some(owner.gid())).unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    let audit = farm.home.path().join("audit.jsonl");
    let (child, pause) = held_staged(&farm, &audit);
    let staged = staged_in(&dir);
    assert_eq!(staged.len(), 1, "{staged:?}");
    fs::remove_file(&staged[0]).unwrap();
    std::os::unix::fs::symlink("victim.txt", &staged[0]).unwrap();
    pause.go();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("is a symbolic link to victim.txt"),
        "{stdout}"
    );
    assert_eq!(mode_of(&victim), 0o600, "the link was followed");
    assert_eq!(fs::read(&victim).unwrap(), b"private");
    assert!(!fs::symlink_metadata(&web).unwrap().is_symlink());
    assert_eq!(fs::read(&web).unwrap(), before);
    assert_eq!(mode_of(&web), 0o644);
}

/// A transport that presents another banner (a Windows server's).
struct Banner(Box<dyn Transport>, &'static str);

impl Transport for Banner {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn read(&mut self, p: &RemotePath) -> Result<farmkey::bytes::FileBytes, TransportError> {
        self.0.read(p)
    }
    fn stat(&mut self, p: &RemotePath) -> Result<Option<FileStat>, TransportError> {
        self.0.stat(p)
    }
    fn lstat(&mut self, p: &RemotePath) -> Result<Option<FileStat>, TransportError> {
        self.0.lstat(p)
    }
    fn readlink(&mut self, p: &RemotePath) -> Result<String, TransportError> {
        self.0.readlink(p)
    }
    fn link_end(&mut self, p: &RemotePath) -> Result<LinkEnd, TransportError> {
        self.0.link_end(p)
    }
    fn set_read_limit(&mut self, max: u64) {
        self.0.set_read_limit(max)
    }
    fn create_new(&mut self, p: &RemotePath, b: &[u8], n: &NewFile) -> Result<(), TransportError> {
        self.0.create_new(p, b, n)
    }
    fn set_attrs(&mut self, p: &RemotePath, n: &NewFile) -> Result<(), TransportError> {
        self.0.set_attrs(p, n)
    }
    fn rename(&mut self, a: &RemotePath, b: &RemotePath) -> Result<(), TransportError> {
        self.0.rename(a, b)
    }
    fn replace(&mut self, a: &RemotePath, b: &RemotePath) -> Result<(), TransportError> {
        self.0.replace(a, b)
    }
    fn remove(&mut self, p: &RemotePath) -> Result<(), TransportError> {
        self.0.remove(p)
    }
    fn list(&mut self, p: &RemotePath) -> Result<Vec<DirEntry>, TransportError> {
        self.0.list(p)
    }
    fn banner(&self) -> Option<String> {
        Some(self.1.to_string())
    }
}

#[test]
fn over_sftp_modes_are_kept_on_linux_servers_and_never_sent_to_windows_ones() {
    let demo = farmkey::demo::DemoFarm::new().unwrap();
    let trees: Vec<(String, PathBuf)> = SERVERS
        .iter()
        .map(|s| (s.to_string(), demo.path().join(s)))
        .collect();
    // The SFTP server's umask is 0: whatever farmkey does not set is 0666.
    let farm = SshFarm::start(
        &trees,
        Options {
            sftp_flags: " -u 0000",
            ..Options::default()
        },
    );
    let file = |s: &str, rel: &str| farm.server(s).file(rel);
    fs::set_permissions(file("web01", FLOWTIME), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(file("web02", FLOWTIME), fs::Permissions::from_mode(0o644)).unwrap();
    let inv = Inventory::load(&farm.inventory_timeout(20)).unwrap();
    let opts = ConnectOptions {
        ssh_config: Some(PathBuf::from("/nonexistent/ssh_config")),
        ..Default::default()
    };
    let report = analyze(
        &scan_all(&inv.servers, opts.clone(), 3),
        &Selection {
            all_sites: true,
            sites: vec![],
            ..Default::default()
        },
    );
    let mut sessions = Sessions::new(inv.servers.clone(), opts.clone());
    // web03 says it is OpenSSH for Windows.
    let web03 = inv.servers.iter().find(|s| s.name == "web03").unwrap();
    let inner = farmkey::transport::connect(web03, &opts).unwrap();
    sessions.insert(
        "web03",
        Box::new(Banner(inner, "SSH-2.0-OpenSSH_for_Windows_9.5")),
    );
    let plan = build_plan(&request("Flowtime"), &report, &mut sessions).unwrap();
    let state = tempfile::tempdir().unwrap();
    let audit = state.path().join("audit.jsonl");
    let outcome = apply_plan(&plan, &mut sessions, &audit);
    assert!(outcome.success(), "{}", outcome.summary());
    assert_eq!(mode_of(&file("web01", FLOWTIME)), 0o600);
    assert_eq!(mode_of(&file("web02", FLOWTIME)), 0o644);
    assert_eq!(
        mode_of(&file("web03", FLOWTIME)),
        0o666,
        "no mode sent to a Windows server: the server's own default"
    );
    for (s, backup_mode) in [("web01", 0o600), ("web02", 0o600), ("web03", 0o666)] {
        let b = backups(&file(s, FLOWTIME_DIR));
        assert_eq!(mode_of(&b[0]), backup_mode, "{s}");
    }
    // Rolled back: the original mode again (and nothing sent to web03).
    let records = AuditLog::new(audit.clone()).read_all().unwrap();
    let applied: Vec<_> = records
        .into_iter()
        .filter(|r| r.outcome == farmkey::push::audit::Outcome::Applied)
        .collect();
    let results = farmkey::push::apply::rollback_push(
        &applied,
        &mut sessions,
        &AuditLog::new(audit.clone()),
        false,
        &mut |_| {},
    );
    assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");
    assert_eq!(mode_of(&file("web01", FLOWTIME)), 0o600);
    assert_eq!(mode_of(&file("web02", FLOWTIME)), 0o644);
    assert_eq!(mode_of(&file("web03", FLOWTIME)), 0o666);
}

// ---------------------------------------------------------------------
// 4. Writes never leave the server's folder.

#[test]
fn a_link_planted_at_a_backup_or_staged_name_takes_no_write_outside() {
    for target in ["backup", "staged"] {
        let f = farm();
        let outside = tempfile::tempdir().unwrap();
        let original = fs::read(f.file("web02", FLOWTIME)).unwrap();
        let (mut sessions, plan) = f.plan("Flowtime");
        // The names are not predictable: the plan is the only way to know them.
        let sp = plan.servers.iter().find(|s| s.server == "web02").unwrap();
        let name = if target == "backup" {
            &sp.backup
        } else {
            &sp.staged
        };
        assert!(name.file_name().unwrap().len() > "web.20261126T112045Z.farmkey.config".len());
        let planted = f.path().join("web02").join(&name.as_sftp()[1..]);
        std::os::unix::fs::symlink(outside.path().join("stolen.config"), &planted).unwrap();
        let outcome = apply_plan(&plan, &mut sessions, &f.audit());
        let want = if target == "backup" {
            Step::Backup
        } else {
            Step::Stage
        };
        match by(&outcome, "web02") {
            ServerOutcome::Failed {
                step,
                restore,
                error,
                ..
            } => {
                assert_eq!((*step, restore), (want, &Restore::Untouched), "{error}");
                assert!(error.to_string().contains("already exists"), "{error}");
            }
            other => panic!("{target}: {other:?}"),
        }
        assert_eq!(
            outcome.verdict(),
            PushVerdict::AsBefore,
            "{}",
            outcome.summary()
        );
        assert_eq!(*by(&outcome, "web01"), ServerOutcome::RolledBack);
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0, "{target}");
        assert_eq!(fs::read(f.file("web02", FLOWTIME)).unwrap(), original);
        // The planted link is left as it was, not followed, not removed.
        assert!(fs::symlink_metadata(&planted).unwrap().is_symlink());
        f.assert_no_key(&outcome.summary());
        f.assert_clean_audit();
    }
}

#[test]
fn a_site_folder_linked_outside_the_root_is_never_read_or_written() {
    let f = farm();
    let outside = tempfile::tempdir().unwrap();
    // web02's Flowtime folder is a link to a copy of it elsewhere.
    let dir = f.file("web02", FLOWTIME_DIR);
    copy_tree(&dir, outside.path());
    fs::remove_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(outside.path(), &dir).unwrap();
    let before = snapshot_tree(outside.path());
    let scan = f.run("scan", &[]);
    assert_eq!(scan.code, Some(1), "{scan:?}");
    assert!(scan.stdout.contains("leads outside"), "{}", scan.stdout);
    let push = f.run("push", &["--site", "Flowtime", "--generate", "--yes"]);
    assert_eq!(push.code, Some(1), "{push:?}");
    assert!(
        push.stdout.contains("web02      CANNOT BE PUSHED")
            && push.stdout.contains("leads outside"),
        "{}",
        push.stdout
    );
    assert_eq!(
        snapshot_tree(outside.path()),
        before,
        "nothing written outside"
    );

    // Swapped in after the plan: the push re-reads, and refuses.
    let f = farm();
    let dir = f.file("web02", FLOWTIME_DIR);
    let (mut sessions, plan) = f.plan("Flowtime");
    let outside = tempfile::tempdir().unwrap();
    copy_tree(&dir, outside.path());
    fs::rename(&dir, f.file("web02", "C:/inetpub/Cora/moved")).unwrap();
    std::os::unix::fs::symlink(outside.path(), &dir).unwrap();
    let before = snapshot_tree(outside.path());
    let outcome = apply_plan(&plan, &mut sessions, &f.audit());
    assert_eq!(
        outcome.verdict(),
        PushVerdict::AsBefore,
        "{}",
        outcome.summary()
    );
    // Its lock would land outside: the push stops before anything is written.
    assert!(
        outcome.refused.as_ref().is_some_and(|r| {
            let r = r.to_string();
            r.contains("web.farmkey-lock.config") && r.contains("leads outside")
        }),
        "{}",
        outcome.summary()
    );
    assert_eq!(
        snapshot_tree(outside.path()),
        before,
        "nothing written outside"
    );
    f.assert_clean_audit();
}

#[test]
fn a_link_at_the_lock_name_stops_the_push_before_anything_is_written() {
    let f = farm();
    let outside = tempfile::tempdir().unwrap();
    let lock = f.file("web03", "C:/inetpub/Cora/Flowtime/web.farmkey-lock.config");
    std::os::unix::fs::symlink(outside.path().join("lock"), &lock).unwrap();
    let before: Vec<_> = SERVERS
        .iter()
        .map(|s| fs::read(f.file(s, FLOWTIME)).unwrap())
        .collect();
    let push = f.run("push", &["--site", "Flowtime", "--generate", "--yes"]);
    assert_eq!(push.code, Some(1), "{push:?}");
    assert!(push.stdout.contains("NOT made"), "{}", push.stdout);
    // Named as what it is: trying again cannot help.
    let all = format!("{}{}", push.stdout, push.stderr);
    assert!(
        all.contains("cannot take the lock on web03")
            && all.contains("C:\\inetpub\\Cora\\Flowtime\\web.farmkey-lock.config is at the lock's name but is no file")
            && !all.contains("try again"),
        "{push:?}"
    );
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    for (i, s) in SERVERS.iter().enumerate() {
        assert_eq!(fs::read(f.file(s, FLOWTIME)).unwrap(), before[i], "{s}");
        assert!(backups(&f.file(s, FLOWTIME_DIR)).is_empty(), "{s}");
    }
    assert!(
        fs::symlink_metadata(&lock).unwrap().is_symlink(),
        "left alone"
    );
}

// ---------------------------------------------------------------------
// 5. No file stops the tool.

#[test]
fn a_long_one_line_web_config_is_planned_and_pushed() {
    let f = farm();
    // 60,000 elements on one line before the <machineKey>.
    f.edit("web01", FLOWTIME, |t| {
        let adds: String = (0..60_000)
            .map(|i| format!("<add key=\"k{i}\" value=\"v\" />"))
            .collect();
        t.replace("\r\n", "")
            .replace("<appSettings>", &format!("<appSettings>{adds}"))
    });
    let dry = f.run("push", &["--site", "Flowtime", "--generate", "--dry-run"]);
    assert_eq!(dry.code, Some(0), "{dry:?}");
    let push = f.run("push", &["--site", "Flowtime", "--generate", "--yes"]);
    assert_eq!(push.code, Some(0), "{push:?}");
    let after = fs::read_to_string(f.file("web01", FLOWTIME)).unwrap();
    assert_eq!(after.lines().count(), 1);
    assert_eq!(after.matches("<add key=").count(), 60_001);
}

#[test]
fn a_file_above_the_size_cap_is_unreadable_with_its_size_and_never_read() {
    let f = farm();
    // A sparse 226 MB web.config: reading it would take that much memory.
    fs::OpenOptions::new()
        .write(true)
        .open(f.file("web02", FLOWTIME))
        .unwrap()
        .set_len(226_000_000)
        .unwrap();
    let scan = f.run("scan", &[]);
    assert_eq!(scan.code, Some(1), "{scan:?}");
    assert!(
        scan.stdout.contains("unreadable")
            && scan.stdout.contains("C:\\inetpub\\Cora\\Flowtime\\web.config: 226000000 bytes (226.0 MB), more than max_config_bytes = 16777216 allows: not read"),
        "{}",
        scan.stdout
    );
    let push = f.run("push", &["--site", "Flowtime", "--generate", "--yes"]);
    assert_eq!(push.code, Some(1), "{push:?}");
    assert!(
        push.stdout.contains("web02      CANNOT BE PUSHED"),
        "{}",
        push.stdout
    );
    // The cap is the inventory's to set.
    let inv = fs::read_to_string(f.inventory()).unwrap();
    fs::write(
        f.inventory(),
        format!("[defaults]\nmax_config_bytes = 1024\n{inv}"),
    )
    .unwrap();
    let scan = f.run("scan", &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&scan.stdout).unwrap();
    // applicationHost.config itself is larger than that: no server is read.
    let errors: Vec<&str> = v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["error"].as_str())
        .collect();
    assert_eq!(errors.len(), 3, "{}", scan.stdout);
    assert!(
        errors.iter().all(|e| e.contains("applicationHost.config")
            && e.contains("more than max_config_bytes = 1024 allows")),
        "{errors:?}"
    );
}

#[test]
fn over_sftp_a_file_above_the_cap_is_named_and_the_others_are_read() {
    let demo = farmkey::demo::DemoFarm::new().unwrap();
    let big = demo.path().join("web02").join(FLOWTIME);
    let text = fs::read_to_string(&big).unwrap();
    let padding = "<!-- padding -->".repeat(10_000);
    fs::write(
        &big,
        text.replace("<appSettings>", &format!("<appSettings>{padding}")),
    )
    .unwrap();
    let trees: Vec<(String, PathBuf)> = SERVERS
        .iter()
        .map(|s| (s.to_string(), demo.path().join(s)))
        .collect();
    let farm = SshFarm::start(&trees, Options::default());
    let defaults = format!("{}max_config_bytes = 65536\n", farm.defaults());
    let inv = farm.inventory_with(&defaults, "");
    let out = farm
        .farmkey()
        .args(["scan", "--batch", "--ssh-config", "/nonexistent", "-i"])
        .arg(&inv)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "web.config: 162049 bytes (0.2 MB), more than max_config_bytes = 65536 allows: not read"
        ),
        "{stdout}"
    );
    // Every server was read, and web02's other sites.
    let ok = stdout
        .lines()
        .filter(|l| l.starts_with("web0") && l.split_whitespace().last() == Some("ok"))
        .count();
    assert_eq!(ok, 3, "{stdout}");
    let togo_web02 = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Process TOGO"))
        .find(|l| l.contains("web02"))
        .unwrap_or("");
    assert!(!togo_web02.contains("unreadable"), "{stdout}");
}

// ---------------------------------------------------------------------
// 6. Honest errors.

/// A tmpfs over a folder, holding what the folder held; unmounted when
/// dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn over(dir: &Path, bytes: u64) -> Tmpfs {
        let files: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| (p.clone(), fs::read(&p).unwrap()))
            .collect();
        let meta = fs::metadata(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!(
                "size={bytes},mode=0755,uid={},gid={}",
                meta.uid(),
                meta.gid()
            ))
            .arg("farmkey-test")
            .arg(dir)
            .status()
            .expect("mount");
        assert!(status.success(), "these tests mount a tmpfs and need root");
        for (p, b) in files {
            fs::write(&p, b).unwrap();
            std::os::unix::fs::chown(&p, Some(meta.uid()), Some(meta.gid())).unwrap();
        }
        Tmpfs(dir.to_path_buf())
    }

    /// Fills it, leaving `left` bytes free.
    fn fill(&self, left: u64) {
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let c = std::ffi::CString::new(self.0.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
        let free = st.f_bavail * st.f_frsize;
        fs::write(self.0.join("filler"), vec![0u8; (free - left) as usize]).unwrap();
    }

    fn read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_or_read_only_disk_on_a_server_is_named_as_such() {
    let demo = farmkey::demo::DemoFarm::new().unwrap();
    let trees: Vec<(String, PathBuf)> = SERVERS
        .iter()
        .map(|s| (s.to_string(), demo.path().join(s)))
        .collect();
    let farm = SshFarm::start(&trees, Options::default());
    let dir = |s: &str| farm.server(s).file(FLOWTIME_DIR);
    // web02's site folder has room for the lock, not for a backup.
    let full = Tmpfs::over(&dir("web02"), 64 * 1024);
    full.fill(4096);
    // web03's is read-only.
    let ro = Tmpfs::over(&dir("web03"), 64 * 1024);
    ro.read_only();
    let audit = farm.home.path().join("audit.jsonl");
    let before: Vec<Vec<u8>> = SERVERS
        .iter()
        .map(|s| fs::read(farm.server(s).file(FLOWTIME)).unwrap())
        .collect();
    let push = |args: &[&str]| {
        let out = farm
            .farmkey()
            .args(farm.push_flowtime_args(&audit))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, stdout) = push(&["--servers", "web01,web02"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("no space left on the server's disk")
            && !stdout.contains("connection lost"),
        "{stdout}"
    );
    let (code, stdout) = push(&["--servers", "web01,web03"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("the server's file system is read-only")
            && !stdout.contains("connection lost"),
        "{stdout}"
    );
    for (i, s) in SERVERS.iter().enumerate() {
        assert_eq!(
            fs::read(farm.server(s).file(FLOWTIME)).unwrap(),
            before[i],
            "{s}"
        );
        assert_eq!(leftovers(&dir(s)), Vec::<String>::new(), "{s}");
    }
    drop(ro);
    drop(full);
}

#[test]
fn a_full_local_disk_is_named_as_such() {
    let f = farm();
    let full = Tmpfs::over(&f.file("web01", FLOWTIME_DIR), 64 * 1024);
    full.fill(0);
    let before = fs::read(f.file("web01", FLOWTIME)).unwrap();
    let push = f.run("push", &["--site", "Flowtime", "--generate", "--yes"]);
    assert_eq!(push.code, Some(1), "{push:?}");
    assert!(
        push.stdout
            .contains("web.farmkey-lock.config: no space left on the server's disk"),
        "{}",
        push.stdout
    );
    assert_eq!(fs::read(f.file("web01", FLOWTIME)).unwrap(), before);
    drop(full);
}

/// The audit log on a full disk (a 64k tmpfs): the push stops with the log
/// as it was, never part of a record; once there is room again `history`,
/// another push and `rollback` go on, also past a record a crash cut off.
#[test]
fn a_full_audit_disk_leaves_no_part_of_a_record_and_history_and_rollback_go_on() {
    let f = farm();
    let state = f.audit().parent().unwrap().to_path_buf();
    fs::create_dir_all(&state).unwrap();
    let disk = Tmpfs::over(&state, 64 * 1024);
    let push = || f.run("push", &["--site", "Flowtime", "--generate", "--yes"]);
    let files = || -> Vec<Vec<u8>> {
        SERVERS
            .iter()
            .map(|s| fs::read(f.file(s, FLOWTIME)).unwrap())
            .collect()
    };
    let first = push();
    assert_eq!(first.code, Some(0), "{first:?}");
    let pushed = files();
    // Room for the first 100 bytes of the next record, not all of it: the
    // log padded (a blank line) to 100 bytes short of a page, and the disk
    // filled.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let len = fs::metadata(f.audit()).unwrap().len();
    let pad = (2 * page - 100 - len % page) % page;
    if pad > 0 {
        let mut blank = vec![b' '; pad as usize - 1];
        blank.push(b'\n');
        fs::OpenOptions::new()
            .append(true)
            .open(f.audit())
            .unwrap()
            .write_all(&blank)
            .unwrap();
    }
    let before = fs::read(f.audit()).unwrap();
    disk.fill(0);
    let full = push();
    assert_eq!(full.code, Some(1), "{full:?}");
    assert!(
        full.stdout.contains("FAILED recording it in the audit log")
            && full.stderr.contains("No space left"),
        "{full:?}"
    );
    assert_eq!(files(), pushed);
    let after = fs::read(f.audit()).unwrap();
    assert!(
        after == before,
        "the log as it was, not with {:?}",
        String::from_utf8_lossy(after.get(before.len()..).unwrap_or_default())
    );

    // Room again: the history reads, with no note.
    fs::remove_file(state.join("filler")).unwrap();
    let history = f.run("history", &[]);
    assert_eq!(history.code, Some(0), "{history:?}");
    assert!(
        history.stdout.contains("Flowtime") && history.stderr.is_empty(),
        "{history:?}"
    );

    // A record a crash cut off: skipped, named, and written past.
    let log = fs::read(f.audit()).unwrap();
    let line = log.iter().filter(|&&b| b == b'\n').count() + 1;
    fs::OpenOptions::new()
        .append(true)
        .open(f.audit())
        .unwrap()
        .write_all(&log[..150])
        .unwrap();
    let note = format!("audit.jsonl:{line}: a record cut off (a full disk or a crash), skipped");
    let history = f.run("history", &[]);
    assert_eq!(history.code, Some(0), "{history:?}");
    assert!(history.stderr.contains(&note), "{history:?}");
    let again = push();
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_ne!(files(), pushed);
    let rollback = f.run("rollback", &["--site", "Flowtime", "--yes"]);
    assert_eq!(rollback.code, Some(0), "{rollback:?}");
    assert!(rollback.stderr.contains(&note), "{rollback:?}");
    assert_eq!(files(), pushed);
    let history = f.run("history", &[]);
    assert_eq!(history.code, Some(0), "{history:?}");
    assert!(
        history.stderr.contains(&note) && history.stdout.matches("Flowtime").count() == 2,
        "{history:?}"
    );
    f.assert_clean_audit();
    drop(disk);
}

#[test]
fn audit_log_errors_name_the_log() {
    let f = farm();
    // A push whose log is a folder: refused before anything, naming it.
    fs::create_dir_all(f.audit()).unwrap();
    let push = f.run("push", &["--site", "Flowtime", "--generate", "--yes"]);
    assert_eq!(push.code, Some(2), "{push:?}");
    assert!(
        push.stderr
            .contains(&format!("audit log {}", f.audit().display())),
        "{}",
        push.stderr
    );
    let history = f.run("history", &[]);
    assert_eq!(history.code, Some(2), "{history:?}");
    assert!(
        history
            .stderr
            .contains(&format!("audit log {}", f.audit().display())),
        "{}",
        history.stderr
    );
    // Full while the push runs: the message names it too.
    fs::remove_dir(f.audit()).unwrap();
    let (mut sessions, plan) = f.plan("Flowtime");
    std::os::unix::fs::symlink("/dev/full", f.audit()).unwrap();
    let outcome = apply_plan(&plan, &mut sessions, &f.audit());
    assert_eq!(outcome.verdict(), PushVerdict::AsBefore);
    assert!(
        outcome
            .audit_errors
            .iter()
            .all(|e| e.starts_with(&format!("audit log {}: ", f.audit().display()))),
        "{:?}",
        outcome.audit_errors
    );
    assert!(!outcome.audit_errors.is_empty());
}

#[test]
fn sites_whose_names_differ_only_in_case_are_both_shown() {
    let f = farm();
    // web01 holds Flowtime twice, the second spelled FLOWTIME.
    f.edit(
        "web01",
        "C:/Windows/System32/inetsrv/config/applicationHost.config",
        |t| {
            t.replace(
                "<site name=\"Sequence Administration\" id=\"3\">",
                "<site name=\"FLOWTIME\" id=\"9\">\n<application path=\"/\" applicationPool=\"Flowtime\"><virtualDirectory path=\"/\" physicalPath=\"%SystemDrive%\\inetpub\\Cora\\Flowtime\" /></application></site>\n<site name=\"Sequence Administration\" id=\"3\">",
            )
        },
    );
    let scan = f.run("scan", &["--format", "json"]);
    assert_eq!(scan.code, Some(1), "{scan:?}");
    let v: serde_json::Value = serde_json::from_str(&scan.stdout).unwrap();
    let site = |name: &str| {
        v["sites"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["site"] == name)
            .cloned()
    };
    let upper = site("FLOWTIME").expect("FLOWTIME is shown");
    let mixed = site("Flowtime").expect("Flowtime is shown");
    for s in [&upper, &mixed] {
        assert!(
            s["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["code"] == "duplicate-site-name" && f["servers"][0] == "web01"),
            "{s}"
        );
    }
    let table = f.run("scan", &[]);
    assert!(
        table.stdout.contains("FLOWTIME") && table.stdout.contains("duplicate-site-name"),
        "{}",
        table.stdout
    );
    // A push must name one exactly.
    let vague = f.run("push", &["--site", "flowtime", "--generate", "--dry-run"]);
    assert_eq!(vague.code, Some(2), "{vague:?}");
    assert!(
        vague.stderr.contains("differ only in case"),
        "{}",
        vague.stderr
    );
    let exact = f.run("push", &["--site", "FLOWTIME", "--generate", "--dry-run"]);
    assert_eq!(exact.code, Some(0), "{exact:?}");
    assert!(
        exact.stdout.contains("Push ") && exact.stdout.contains("FLOWTIME"),
        "{}",
        exact.stdout
    );
}

// ---------------------------------------------------------------------
// Sites and applications named twice: each read from its own entry, or
// reported; never another's keys, never a panic.

const APPHOST: &str = "C:/Windows/System32/inetsrv/config/applicationHost.config";

/// The value of the first `attr="…"` of a text.
fn attr_in(text: &str, attr: &str) -> String {
    let at = text.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
    text[at..at + text[at..].find('"').unwrap()].to_string()
}

impl Farm {
    /// A folder on `server` whose web.config is Flowtime's with a key set of
    /// its own, which joins the keys no output may show.
    fn own_folder(&mut self, server: &str, dir: &str) -> KeySet {
        let set = KeySet::generate(Validation::Sha1, Decryption::Aes).unwrap();
        let text = fs::read_to_string(self.file(server, FLOWTIME)).unwrap();
        let text = text
            .replace(
                &attr_in(&text, "validationKey"),
                set.validation_key.expose(),
            )
            .replace(
                &attr_in(&text, "decryptionKey"),
                set.decryption_key.expose(),
            );
        fs::create_dir_all(self.file(server, dir)).unwrap();
        fs::write(self.file(server, &format!("{dir}/web.config")), text).unwrap();
        self.keys.push(set.validation_key.expose().to_string());
        self.keys.push(set.decryption_key.expose().to_string());
        set
    }

    /// `xml` put into a server's applicationHost.config after `after`.
    fn add_to_apphost(&self, server: &str, after: &str, xml: &str) {
        self.edit(server, APPHOST, |t| {
            assert!(t.contains(after), "{after}");
            t.replacen(after, &format!("{after}\n{xml}"), 1)
        });
    }

    /// The fingerprint of a key attribute of a file of a server.
    fn key_fingerprint(&self, server: &str, rel: &str, attr: &str) -> String {
        fingerprint(&attr_in(
            &fs::read_to_string(self.file(server, rel)).unwrap(),
            attr,
        ))
    }
}

/// The JSON instance of `site` on `server`.
fn instance<'a>(v: &'a serde_json::Value, site: &str, server: &str) -> &'a serde_json::Value {
    v["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["site"] == site)
        .unwrap_or_else(|| panic!("{site} is shown"))["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["server"] == server)
        .unwrap_or_else(|| panic!("{site} on {server}"))
}

/// A scan that ends normally: every server read, no panic.
fn scan_json(f: &Farm) -> serde_json::Value {
    let scan = f.run("scan", &["--format", "json", "--all-sites"]);
    assert_eq!(scan.code, Some(1), "{scan:?}");
    assert!(!scan.stderr.contains("panicked"), "{scan:?}");
    let v: serde_json::Value = serde_json::from_str(&scan.stdout).unwrap();
    for s in v["servers"].as_array().unwrap() {
        assert_eq!(s["error"], serde_json::Value::Null, "{s}");
    }
    v
}

#[test]
fn a_site_named_again_in_another_case_is_read_from_its_own_entry() {
    let mut f = farm();
    // web01: FLOWTIME in a folder of its own, with keys of its own; web03:
    // FLOWTIME in Sequence Administration's folder, read anyway.
    let upper = f.own_folder("web01", "D:/Cora/Upper");
    let admin = "D:/Cora/Administration/web.config";
    for (server, folder) in [
        ("web01", "D:\\Cora\\Upper"),
        ("web03", "D:\\Cora\\Administration"),
    ] {
        f.add_to_apphost(
            server,
            "<sites>",
            &format!(
                "<site name=\"FLOWTIME\" id=\"9\"><application path=\"/\" applicationPool=\"Flowtime\"><virtualDirectory path=\"/\" physicalPath=\"{folder}\" /></application></site>"
            ),
        );
    }
    let v = scan_json(&f);
    let key = |site, server| instance(&v, site, server)["validation_key"]["fingerprint"].clone();
    assert_eq!(key("FLOWTIME", "web01"), upper.validation_key.fingerprint());
    assert_eq!(
        instance(&v, "FLOWTIME", "web01")["config_path"],
        "D:\\Cora\\Upper\\web.config"
    );
    assert_eq!(
        key("FLOWTIME", "web03"),
        f.key_fingerprint("web03", admin, "validationKey")
    );
    for server in SERVERS {
        assert_eq!(
            key("Flowtime", server),
            f.key_fingerprint(server, FLOWTIME, "validationKey"),
            "{server}"
        );
    }
    // The push writes each site's own file.
    let dry = f.run("push", &["--site", "FLOWTIME", "--generate", "--dry-run"]);
    assert_eq!(dry.code, Some(0), "{dry:?}");
    assert!(
        dry.stdout.contains("D:\\Cora\\Upper\\web.config")
            && dry.stdout.contains("D:\\Cora\\Administration\\web.config")
            && !dry.stdout.contains("inetpub\\Cora\\Flowtime")
            && dry.stdout.contains(&format!(
                "validationKey  {} ->",
                upper.validation_key.fingerprint()
            )),
        "{}",
        dry.stdout
    );
    // Pushed for real, each is verified on its own entry (FLOWTIME comes
    // first in applicationHost.config and is not mistaken for Flowtime).
    let upper_before = fs::read(f.file("web01", "D:/Cora/Upper/web.config")).unwrap();
    let push = f.run("push", &["--site", "Flowtime", "--generate", "--yes"]);
    assert_eq!(push.code, Some(0), "{push:?}");
    assert_eq!(
        fs::read(f.file("web01", "D:/Cora/Upper/web.config")).unwrap(),
        upper_before,
        "FLOWTIME untouched"
    );
    let v = scan_json(&f);
    let key = |site, server| instance(&v, site, server)["validation_key"]["fingerprint"].clone();
    let pushed = key("Flowtime", "web01");
    assert_ne!(pushed, upper.validation_key.fingerprint());
    for server in SERVERS {
        assert_eq!(key("Flowtime", server), pushed, "{server}");
    }
    assert_eq!(key("FLOWTIME", "web01"), upper.validation_key.fingerprint());
    // Rolled back by its exact name: the push of Flowtime, not of FLOWTIME.
    let push = f.run("push", &["--site", "FLOWTIME", "--generate", "--yes"]);
    assert_eq!(push.code, Some(0), "{push:?}");
    let back = f.run("rollback", &["--site", "Flowtime", "--yes"]);
    assert_eq!(back.code, Some(0), "{back:?}");
    let v = scan_json(&f);
    let key = |site, server| instance(&v, site, server)["validation_key"]["fingerprint"].clone();
    assert_ne!(key("FLOWTIME", "web01"), upper.validation_key.fingerprint());
    for server in SERVERS {
        assert_eq!(
            key("Flowtime", server),
            f.key_fingerprint(server, FLOWTIME, "validationKey"),
            "{server}"
        );
    }
}

#[test]
fn a_site_name_given_twice_is_reported_and_never_mixed() {
    let mut f = farm();
    let second = f.own_folder("web01", "D:/Cora/Second");
    f.add_to_apphost(
        "web01",
        "<sites>",
        "<site name=\"Flowtime\" id=\"9\"><application path=\"/\" applicationPool=\"Flowtime\"><virtualDirectory path=\"/\" physicalPath=\"D:\\Cora\\Second\" /></application></site>",
    );
    let v = scan_json(&f);
    let web01 = instance(&v, "Flowtime", "web01");
    let error = web01["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("applicationHost.config")
            && error.contains("\"Flowtime\" is defined 2 times (site ids 9, 2)"),
        "{web01}"
    );
    assert_eq!(web01["validation_key"], serde_json::Value::Null);
    for server in ["web02", "web03"] {
        assert_eq!(
            instance(&v, "Flowtime", server)["validation_key"]["fingerprint"],
            f.key_fingerprint(server, FLOWTIME, "validationKey")
        );
    }
    let table = f.run("scan", &[]);
    assert!(
        !table.stdout.contains(&second.validation_key.fingerprint())
            && table.stdout.contains("unreadable")
            && table.stdout.contains("defined 2 times"),
        "{}",
        table.stdout
    );
    // A push is blocked on web01, naming why; nothing is written.
    let before = fs::read(f.file("web01", FLOWTIME)).unwrap();
    let push = f.run("push", &["--site", "Flowtime", "--generate", "--yes"]);
    assert_eq!(push.code, Some(1), "{push:?}");
    assert!(
        push.stdout.contains("CANNOT BE PUSHED") && push.stdout.contains("defined 2 times"),
        "{push:?}"
    );
    assert_eq!(fs::read(f.file("web01", FLOWTIME)).unwrap(), before);
    assert!(backups(&f.file("web01", "D:/Cora/Second")).is_empty());
}

#[test]
fn an_application_path_given_twice_in_a_site_is_reported_and_never_mixed() {
    let mut f = farm();
    let mut planted = Vec::new();
    let mut xml = String::new();
    for (path, dir) in [
        ("/App", "AppUpper"),
        ("/app", "AppLower"),
        ("/APP/api", "AppApi"),
    ] {
        planted.push(f.own_folder("web01", &format!("D:/Cora/{dir}")));
        xml.push_str(&format!(
            "<application path=\"{path}\"><virtualDirectory path=\"/\" physicalPath=\"D:\\Cora\\{dir}\" /></application>"
        ));
    }
    f.add_to_apphost("web01", "<site name=\"Flowtime\" id=\"2\">", &xml);
    let v = scan_json(&f);
    for app in ["Flowtime/App", "Flowtime/app", "Flowtime/APP/api"] {
        let i = instance(&v, app, "web01");
        let error = i["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("applicationHost.config")
                && error.contains(
                    "holds the application path /App more than once (\"/App\", \"/app\")"
                ),
            "{app}: {i}"
        );
        assert_eq!(i["validation_key"], serde_json::Value::Null, "{app}");
    }
    // The site's root is unaffected.
    assert_eq!(
        instance(&v, "Flowtime", "web01")["validation_key"]["fingerprint"],
        f.key_fingerprint("web01", FLOWTIME, "validationKey")
    );
    let table = f.run("scan", &["--all-sites"]);
    for set in &planted {
        assert!(
            !table.stdout.contains(&set.validation_key.fingerprint()),
            "{}",
            table.stdout
        );
    }
    let dry = f.run(
        "push",
        &["--site", "Flowtime/app", "--generate", "--dry-run"],
    );
    assert_eq!(dry.code, Some(1), "{dry:?}");
    assert!(
        dry.stdout.contains("CANNOT BE PUSHED") && dry.stdout.contains("more than once"),
        "{dry:?}"
    );
}

// ---------------------------------------------------------------------
// 7. Links and other non-files are never replaced.

/// Flowtime's web.config as three kinds of link, in the server folders
/// `dir` gives: on web01 a link to the file beside it (what IIS reads),
/// on web02 a link to nothing, on web03 a link to itself. The targets are
/// relative, so that they hold inside sshd's chroot too.
fn plant_links(dir: impl Fn(&str) -> PathBuf) {
    let d = dir("web01");
    fs::rename(d.join("web.config"), d.join("web.real.config")).unwrap();
    std::os::unix::fs::symlink("web.real.config", d.join("web.config")).unwrap();
    let d = dir("web02");
    fs::remove_file(d.join("web.config")).unwrap();
    std::os::unix::fs::symlink("gone.config", d.join("web.config")).unwrap();
    let d = dir("web03");
    fs::remove_file(d.join("web.config")).unwrap();
    std::os::unix::fs::symlink("web.config", d.join("web.config")).unwrap();
}

/// The links and the file behind web01's, exactly as planted; no copy
/// made beside them.
fn links_intact(dir: impl Fn(&str) -> PathBuf, real: &[u8]) {
    for (s, target) in [
        ("web01", "web.real.config"),
        ("web02", "gone.config"),
        ("web03", "web.config"),
    ] {
        let d = dir(s);
        assert_eq!(
            fs::read_link(d.join("web.config")).unwrap(),
            Path::new(target),
            "{s}"
        );
        assert!(backups(&d).is_empty(), "{s}: {:?}", backups(&d));
        let names: Vec<String> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("farmkey"))
            .collect();
        assert!(names.is_empty(), "{s}: {names:?}");
    }
    assert_eq!(
        fs::read(dir("web01").join("web.real.config")).unwrap(),
        real
    );
    assert!(!dir("web02").join("gone.config").exists());
}

/// What `scan --format json` and `push --generate` say of the three links.
fn check_links_scan_and_push(scan: &Out, push: &Out) {
    assert_eq!(scan.code, Some(1), "{scan:?}");
    let v: serde_json::Value = serde_json::from_str(&scan.stdout).unwrap();
    let site = v["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["site"] == "Flowtime")
        .unwrap();
    // Unreadable, not "missing": unverified there, never auto-generated.
    assert_eq!(site["unverified_on"], serde_json::json!(["web02", "web03"]));
    assert!(site["consistent"].is_null(), "{site}");
    let findings = site["findings"].as_array().unwrap();
    let of = |code: &str| -> Vec<String> {
        findings
            .iter()
            .filter(|f| f["code"] == code)
            .map(|f| f["message"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(of("auto-generated").is_empty(), "{findings:?}");
    let unreadable = of("unreadable").join("\n");
    assert!(
        unreadable.contains("web.config: a symbolic link to gone.config, which does not exist")
            && unreadable
                .contains("web.config: a symbolic link to web.config that loops back on itself"),
        "{unreadable}"
    );
    let link = of("config-link");
    assert_eq!(link.len(), 1, "{findings:?}");
    assert!(
        link[0].contains("on web01")
            && link[0].contains(
                "C:\\inetpub\\Cora\\Flowtime\\web.config is a symbolic link to web.real.config"
            ),
        "{}",
        link[0]
    );
    let web01 = site["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["server"] == "web01")
        .unwrap();
    assert_eq!(
        web01["links"],
        serde_json::json!([{
            "path": "C:\\inetpub\\Cora\\Flowtime\\web.config",
            "kind": "link",
            "target": "web.real.config"
        }])
    );
    // The key IIS reads through the link is the one compared.
    assert_eq!(web01["validation_key"]["state"], "explicit", "{web01}");

    assert_eq!(push.code, Some(1), "{push:?}");
    let out = format!("{}{}", push.stdout, push.stderr);
    for (server, what) in [
        ("web01", "is a symbolic link to web.real.config"),
        (
            "web02",
            "a symbolic link to gone.config, which does not exist",
        ),
        (
            "web03",
            "a symbolic link to web.config that loops back on itself",
        ),
    ] {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(server) && l.contains("CANNOT BE PUSHED"))
            .unwrap_or_else(|| panic!("{server} not blocked: {out}"));
        assert!(
            line.contains("C:\\inetpub\\Cora\\Flowtime\\web.config") && line.contains(what),
            "{line}"
        );
    }
}

#[test]
fn links_at_web_config_are_read_through_or_named_and_never_replaced() {
    let f = farm();
    let dir = |s: &str| f.file(s, FLOWTIME_DIR);
    plant_links(dir);
    let real = fs::read(dir("web01").join("web.real.config")).unwrap();
    let scan = f.run("scan", &["--format", "json"]);
    let push = f.run("push", &["--site", "Flowtime", "--generate", "--yes"]);
    check_links_scan_and_push(&scan, &push);
    links_intact(dir, &real);
}

#[test]
fn over_sftp_links_at_web_config_are_read_through_or_named_and_never_replaced() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let dir = |s: &str| farm.server(s).file(FLOWTIME_DIR);
    plant_links(dir);
    let real = fs::read(dir("web01").join("web.real.config")).unwrap();
    let home = tempfile::tempdir().unwrap();
    let audit = home.path().join("audit.jsonl");
    let run = |args: Vec<String>| {
        let out = farm.farmkey().args(args).output().unwrap();
        Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let mut scan_args: Vec<String> = ["scan", "--format", "json"].map(String::from).to_vec();
    scan_args.extend(
        farm.headless_args(&audit)
            .into_iter()
            .filter(|a| a != "--audit" && a != audit.to_str().unwrap()),
    );
    let scan = run(scan_args);
    let push = run(farm.push_flowtime_args(&audit));
    check_links_scan_and_push(&scan, &push);
    links_intact(dir, &real);
}

/// A rollback never turns a link into a file, nor removes one: web.config
/// made a link (to a file holding exactly what the push wrote) after the
/// push is left alone and named.
#[test]
fn a_rollback_leaves_a_web_config_that_became_a_link_alone() {
    let f = farm();
    let originals: Vec<Vec<u8>> = ["web02", "web03"]
        .iter()
        .map(|s| fs::read(f.file(s, FLOWTIME)).unwrap())
        .collect();
    let push = f.run("push", &["--site", "Flowtime", "--generate", "--yes"]);
    assert_eq!(push.code, Some(0), "{push:?}");
    let d = f.file("web01", FLOWTIME_DIR);
    let written = fs::read(d.join("web.config")).unwrap();
    fs::rename(d.join("web.config"), d.join("web.linked.config")).unwrap();
    std::os::unix::fs::symlink("web.linked.config", d.join("web.config")).unwrap();
    let rollback = f.run("rollback", &["--site", "Flowtime", "--yes"]);
    assert_ne!(rollback.code, Some(0), "{rollback:?}");
    let out = format!("{}{}", rollback.stdout, rollback.stderr);
    assert!(
        out.contains("web01")
            && out.contains(
                "C:\\inetpub\\Cora\\Flowtime\\web.config is a symbolic link to web.linked.config"
            ),
        "{out}"
    );
    assert_eq!(
        fs::read_link(d.join("web.config")).unwrap(),
        Path::new("web.linked.config")
    );
    assert_eq!(fs::read(d.join("web.linked.config")).unwrap(), written);
    // The other servers are rolled back.
    for (s, before) in ["web02", "web03"].iter().zip(&originals) {
        assert_eq!(&fs::read(f.file(s, FLOWTIME)).unwrap(), before, "{s}");
    }
}
