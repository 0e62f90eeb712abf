//! The backups pushes leave beside web.config, over real sshd: listed with
//! the push that made each and whether a rollback needs it, pruned to
//! exactly what was promised on every server (recorded once in the audit
//! log), a rollback of the latest push working after it, a server lost
//! half-way, a locked site, the inventory's retention; never a key in any
//! output (the backups hold the old keys).

mod support;

use farmkey::inventory::Inventory;
use farmkey::push::Sessions;
use farmkey::push::audit::{AuditAction, AuditLog, Outcome};
use farmkey::push::backups::{self, Ledger, PruneRule};
use farmkey::transport::ConnectOptions;
use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::time::SystemTime;
use support::sshd::{Options, SshFarm, demo_over_ssh};

const FLOWTIME: &str = "C:/inetpub/Cora/Flowtime/web.config";
const FLOWTIME_DIR: &str = "C:/inetpub/Cora/Flowtime";
const SERVERS: [&str; 3] = farmkey::demo::SERVERS;
/// An operator's own copies beside web.config, some named much as farmkey
/// names a backup: never farmkey's.
const OWN: [&str; 4] = [
    "web.config.bak",
    "web.old.farmkey.config",
    "web.20261126T112045Z.farmkey.config.bak",
    "web.20261126T112045Z-x.farmkey.config",
];

struct Farm {
    _demo: farmkey::demo::DemoFarm,
    farm: SshFarm,
    audit: PathBuf,
    /// Every output of the binary, checked for key text at the end.
    said: std::cell::RefCell<String>,
}

fn farm() -> Farm {
    let (demo, farm) = demo_over_ssh(Options::default());
    let audit = farm.home.path().join("audit.jsonl");
    Farm {
        _demo: demo,
        farm,
        audit,
        said: Default::default(),
    }
}

impl Farm {
    /// Runs the binary with the farm's headless arguments (`--batch`, the
    /// audit log, the inventory): exit code and standard output.
    fn run(&self, args: &[&str]) -> (i32, String) {
        let extra = self.farm.headless_args(&self.audit);
        self.run_with(args, &extra)
    }

    fn run_with(&self, args: &[&str], extra: &[String]) -> (i32, String) {
        let out = self.farm.farmkey().args(args).args(extra).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        self.said.borrow_mut().push_str(&stdout);
        self.said.borrow_mut().push_str(&stderr);
        (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
    }

    /// Pushes fresh keys to Flowtime; the push's id.
    fn push(&self) -> String {
        let (code, out) = self.run(&["push", "--site", "Flowtime", "--generate", "--yes"]);
        assert_eq!(code, 0, "{out}");
        push_id(&out)
    }

    fn rollback(&self) -> String {
        let (code, out) = self.run(&["rollback", "--site", "Flowtime", "--yes"]);
        assert_eq!(code, 0, "{out}");
        out
    }

    fn dir(&self, server: &str) -> PathBuf {
        self.farm.server(server).file(FLOWTIME_DIR)
    }

    /// The names in Flowtime's folder of `server` that end in `.config`
    /// or are the operator's own copies, sorted (web.config itself left
    /// out).
    fn names(&self, server: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.dir(server))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n != "web.config" && n.to_ascii_lowercase().starts_with("web."))
            .collect();
        v.sort();
        v
    }

    /// farmkey's backups of Flowtime's web.config on `server`, sorted
    /// (not the operator's own files, [`OWN`]).
    fn backups(&self, server: &str) -> Vec<String> {
        self.names(server)
            .into_iter()
            .filter(|n| n.ends_with(".farmkey.config") && !OWN.contains(&n.as_str()))
            .collect()
    }

    fn log(&self) -> AuditLog {
        AuditLog::new(self.audit.clone())
    }

    /// Every key written in a configuration file or backup of the farm:
    /// what must never be printed.
    fn keys(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for s in SERVERS {
            for e in fs::read_dir(self.dir(s)).unwrap() {
                let text = fs::read_to_string(e.unwrap().path()).unwrap_or_default();
                for attr in ["validationKey=\"", "decryptionKey=\""] {
                    for part in text.split(attr).skip(1) {
                        let key = part.split('"').next().unwrap_or_default();
                        if key.len() >= 16 {
                            out.insert(key.to_string());
                        }
                    }
                }
            }
        }
        out
    }

    fn assert_no_key_text(&self, keys: &BTreeSet<String>) {
        let said = self.said.borrow();
        for k in keys {
            assert!(!said.contains(k.as_str()), "a key was printed");
        }
    }
}

/// `Push <id> to Flowtime: ...`, the plan's first line.
fn push_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Push "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no push id in {out}"))
        .to_string()
}

/// `farmkey backups --format json`, parsed: per server, (backup name,
/// push, needed by).
fn listed(f: &Farm) -> Vec<(String, String, Option<String>, Option<String>)> {
    let (code, out) = f.run(&["backups", "--site", "Flowtime", "--format", "json"]);
    assert_eq!(code, 0, "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["unread"], serde_json::json!([]), "{out}");
    let mut v: Vec<_> = doc["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let path = b["backup"].as_str().unwrap();
            (
                b["server"].as_str().unwrap().to_string(),
                path.rsplit('\\').next().unwrap().to_string(),
                b["push"].as_str().map(String::from),
                b["needed_by"].as_str().map(String::from),
            )
        })
        .collect();
    v.sort();
    v
}

/// The backup name a push with id `id` gives Flowtime's web.config (its
/// stamp is the id's time, the name's random part its own).
fn made_by(f: &Farm, server: &str, id: &str) -> String {
    let log = f.log().read_all().unwrap();
    let rec = log
        .iter()
        .find(|r| r.push_id == id && r.server == server && r.backup.is_some())
        .unwrap();
    rec.backup
        .as_deref()
        .unwrap()
        .rsplit('\\')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn backups_are_listed_pruned_to_what_was_promised_and_the_latest_push_still_rolls_back() {
    let f = farm();
    let a = f.push();
    let b = f.push();
    f.rollback();
    let before_c: Vec<Vec<u8>> = SERVERS
        .iter()
        .map(|s| fs::read(f.farm.server(s).file(FLOWTIME)).unwrap())
        .collect();
    let c = f.push();
    for s in SERVERS {
        assert_eq!(f.backups(s).len(), 3, "{s}: {:?}", f.names(s));
    }
    // An operator's own copies are never farmkey's; a file named as
    // farmkey names a backup, which no record names, is (of an unknown
    // push).
    let web01 = f.dir("web01");
    for n in OWN {
        fs::write(web01.join(n), "<configuration/>").unwrap();
    }
    let orphan = "web.20200101T000000Z-0badc0de.farmkey.config";
    fs::write(web01.join(orphan), "<configuration/>").unwrap();
    let keys = f.keys();

    // Listed: every backup, the push that made it, only c's needed.
    let list = listed(&f);
    let mut expected = Vec::new();
    for s in SERVERS {
        for id in [&a, &b, &c] {
            let needed = (id == &c).then(|| c.clone());
            expected.push((s.to_string(), made_by(&f, s, id), Some(id.clone()), needed));
        }
    }
    expected.push(("web01".into(), orphan.into(), None, None));
    expected.sort();
    assert_eq!(list, expected);
    let (code, table) = f.run(&["backups"]);
    assert_eq!(code, 0, "{table}");
    assert!(
        table.contains(&format!("needed by push {c}"))
            && table.contains("unknown push")
            && table.contains("10 backups (every server read)."),
        "{table}"
    );

    // Pruned to the newest of each file: c's, and nothing else of
    // farmkey's, on every server; the operator's files untouched.
    let (code, out) = f.run(&["prune", "--keep", "1", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("7 backup(s) removed; every folder read again holds what the plan said."),
        "{out}"
    );
    for s in SERVERS {
        assert_eq!(f.backups(s), [made_by(&f, s, &c)], "{s}");
    }
    let mut left = f.names("web01");
    left.retain(|n| OWN.contains(&n.as_str()));
    let mut own_sorted = OWN.map(String::from).to_vec();
    own_sorted.sort();
    assert_eq!(left, own_sorted);
    // One prune in the log, a record per backup removed.
    let log = f.log().read_all().unwrap();
    let pruned: Vec<_> = log
        .iter()
        .filter(|r| r.action == AuditAction::Prune)
        .collect();
    let ids: BTreeSet<&str> = pruned.iter().map(|r| r.push_id.as_str()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(pruned.iter().all(|r| r.outcome == Outcome::Removed));
    let mut removed: Vec<(String, String)> = pruned
        .iter()
        .map(|r| {
            let name = r.backup.as_deref().unwrap().rsplit('\\').next().unwrap();
            (r.server.clone(), name.to_string())
        })
        .collect();
    removed.sort();
    let mut promised: Vec<(String, String)> = SERVERS
        .iter()
        .flat_map(|s| [&a, &b].map(|id| (s.to_string(), made_by(&f, s, id))))
        .chain([("web01".to_string(), orphan.to_string())])
        .collect();
    promised.sort();
    assert_eq!(removed, promised);
    let audit = f.audit.to_str().unwrap().to_string();
    let (code, history) = f.run_with(&["history"], &["--audit".into(), audit]);
    assert_eq!(code, 0, "{history}");
    assert!(
        history.contains("(backups pruned)") && history.contains("prune     web01 removed"),
        "{history}"
    );

    // The backup c's rollback needs survives a rule that selects it.
    let (code, out) = f.run(&["prune", "--older-than", "0", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("kept: the rollback of push {c} needs it"))
            && out.contains("Nothing to remove."),
        "{out}"
    );
    for s in SERVERS {
        assert_eq!(f.backups(s).len(), 1, "{s}");
    }

    // And the rollback of c restores it.
    f.rollback();
    for (s, bytes) in SERVERS.iter().zip(&before_c) {
        assert_eq!(
            &fs::read(f.farm.server(s).file(FLOWTIME)).unwrap(),
            bytes,
            "{s}"
        );
    }
    f.assert_no_key_text(&keys);
}

#[test]
fn a_backup_the_latest_push_needs_goes_only_when_named_and_a_locked_site_is_left_alone() {
    let f = farm();
    let a = f.push();
    let b = f.push();
    let keys = f.keys();
    // A site no server hosts is named.
    let (code, out) = f.run(&["backups", "--site", "Flowtme"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("no site \"Flowtme\" on the servers read"),
        "{out}"
    );
    // --batch never asks: refused before any server is read.
    let (code, out) = f.run(&["prune", "--keep", "0"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--batch never asks: add --yes"), "{out}");
    // A name no backup has: refused, nothing removed.
    let (code, out) = f.run(&[
        "prune",
        "--keep",
        "0",
        "--also",
        "web.nothing.config",
        "--yes",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("--also web.nothing.config: no such backup found"),
        "{out}"
    );
    for s in SERVERS {
        assert_eq!(f.backups(s).len(), 2, "{s}");
    }

    // Another push's lock on web03: its backups are left alone, named,
    // and the prune says it is partial.
    let lock = f.dir("web03").join("web.farmkey-lock.config");
    fs::write(
        &lock,
        r#"{"push_id":"someone-else","site":"Flowtime","user":"op","host":"elsewhere","pid":1,"time":"2026-11-26T11:20:45Z"}"#,
    )
    .unwrap();
    let (code, out) = f.run(&["prune", "--older-than", "0", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("kept: the rollback of push {b} needs it"))
            && out.contains("left alone: the site is locked")
            && out.contains("(partial: see above)"),
        "{out}"
    );
    for s in ["web01", "web02"] {
        assert_eq!(f.backups(s), [made_by(&f, s, &b)], "{s}");
    }
    assert_eq!(f.backups("web03").len(), 2);
    let log = f.log().read_all().unwrap();
    assert!(log.iter().any(|r| {
        r.action == AuditAction::Prune
            && r.server == "web03"
            && r.outcome == Outcome::LeftAlone
            && r.backup
                .as_deref()
                .is_some_and(|p| p.ends_with(&made_by(&f, "web03", &a)))
    }));
    fs::remove_file(&lock).unwrap();

    // Named: removed although b's rollback needs it (and the rule still
    // takes a's on web03).
    let name = made_by(&f, "web01", &b);
    let (code, out) = f.run(&["prune", "--older-than", "0", "--also", &name, "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("remove (named)"), "{out}");
    for s in SERVERS {
        assert_eq!(f.backups(s), Vec::<String>::new(), "{s}");
    }

    // A server that does not answer is named, in the listing and the
    // prune, and the exit code says so.
    f.farm.server("web03").crash();
    let extra = support::headless_args(&f.farm.inventory_timeout(3), &f.audit);
    let (code, out) = f.run_with(&["backups"], &extra);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("web03: not read:") && out.contains("NOT read: web03"),
        "{out}"
    );
    let (code, out) = f.run_with(&["prune", "--keep", "0", "--yes"], &extra);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("web03: not read:") && out.contains("NOT read: web03"),
        "{out}"
    );
    f.assert_no_key_text(&keys);
}

fn opts() -> ConnectOptions {
    ConnectOptions {
        ssh_config: Some(PathBuf::from("/nonexistent/ssh_config")),
        ..Default::default()
    }
}

/// web02 dies once web01's backups are removed: web01 and web03 are
/// pruned, web02's removals are named as not made, and the log says
/// exactly that.
#[test]
fn a_prune_on_a_server_that_dies_half_way_is_partial_and_says_so() {
    let f = farm();
    let _a = f.push();
    let b = f.push();
    let inventory = Inventory::load(&f.farm.inventory_timeout(3)).unwrap();
    let records = f.log().read_all().unwrap();
    let mut listed = backups::list_all(&inventory.servers, &opts(), 4, Some("Flowtime"));
    let ledger = Ledger::new(&records);
    for s in &mut listed {
        ledger.annotate(s.result.as_mut().unwrap());
    }
    let plan = backups::plan_prune(listed, PruneRule::Keep(1), &[], SystemTime::now()).unwrap();
    assert_eq!(plan.removals().count(), 3);
    let mut sessions = Sessions::new(inventory.servers.clone(), opts());
    let outcome = backups::prune(&plan, &mut sessions, &f.log(), &mut |done| {
        if done.iter().any(|r| r.backup.server == "web01") {
            f.farm.server("web02").crash();
        }
    });
    assert!(!outcome.complete());
    let removed: Vec<&str> = outcome.removed().map(|b| b.server.as_str()).collect();
    assert_eq!(removed, ["web01", "web03"]);
    let failed: Vec<&str> = outcome.failed().map(|(b, _)| b.server.as_str()).collect();
    assert_eq!(failed, ["web02"]);
    for s in ["web01", "web03"] {
        assert_eq!(f.backups(s), [made_by(&f, s, &b)], "{s}");
    }
    assert_eq!(f.backups("web02").len(), 2);
    // No lock of the prune left anywhere (web02's was never taken).
    assert!(outcome.locks_left.is_empty());
    for s in SERVERS {
        assert!(!f.dir(s).join("web.farmkey-lock.config").exists(), "{s}");
    }
    let log = f.log().read_all().unwrap();
    let pruned: Vec<(&str, Outcome)> = log
        .iter()
        .filter(|r| r.action == AuditAction::Prune)
        .map(|r| (r.server.as_str(), r.outcome))
        .collect();
    assert_eq!(
        pruned,
        [
            ("web01", Outcome::Removed),
            ("web02", Outcome::Failed),
            ("web03", Outcome::Removed)
        ]
    );
}

/// `backup_keep = 1`: each push leaves only its own backup, and records
/// the prune; a push never removes the backup its own rollback needs.
#[test]
fn the_inventory_retention_prunes_after_each_push() {
    let f = farm();
    let defaults = f.farm.defaults().replace(
        "connect_timeout_secs = 3\n",
        "connect_timeout_secs = 20\nbackup_keep = 1\n",
    );
    let inventory = f.farm.inventory_with(&defaults, "");
    let extra = support::headless_args(&inventory, &f.audit);
    let push = |f: &Farm| {
        let (code, out) = f.run_with(
            &["push", "--site", "Flowtime", "--generate", "--yes"],
            &extra,
        );
        assert_eq!(code, 0, "{out}");
        (push_id(&out), out)
    };
    let (a, out) = push(&f);
    assert!(!out.contains("retention"), "nothing to remove yet: {out}");
    let (b, out) = push(&f);
    assert!(
        out.contains("retention (backup_keep): 3 older backup(s) removed"),
        "{out}"
    );
    for s in SERVERS {
        assert_eq!(f.backups(s), [made_by(&f, s, &b)], "{s}");
    }
    let log = f.log().read_all().unwrap();
    let pruned: Vec<_> = log
        .iter()
        .filter(|r| r.action == AuditAction::Prune)
        .collect();
    assert_eq!(pruned.len(), 3);
    assert!(
        pruned
            .iter()
            .all(|r| r.outcome == Outcome::Removed
                && r.message == format!("backup made by push {a}"))
    );
    // `backup_keep = 0` on web02 alone: the push's own backups stay all
    // the same (its rollback needs them); web01 and web03 keep one.
    let inventory = f.farm.inventory_with(&defaults, "");
    let text = fs::read_to_string(&inventory).unwrap().replacen(
        "name = \"web02\"\n",
        "name = \"web02\"\nbackup_keep = 0\n",
        1,
    );
    assert!(text.contains("backup_keep = 0"), "{text}");
    fs::write(&inventory, text).unwrap();
    let (c, out) = push(&f);
    assert!(
        out.contains("retention (backup_keep): 3 older backup(s) removed"),
        "{out}"
    );
    for s in SERVERS {
        assert_eq!(f.backups(s), [made_by(&f, s, &c)], "{s}");
    }
    // The push's own rollback still works.
    let (code, out) = f.run_with(&["rollback", "--site", "Flowtime", "--yes"], &extra);
    assert_eq!(code, 0, "{out}");
}
