//! farmkey against Win32-OpenSSH as it behaves at 7.7, 8.1, 8.6 and 9.5:
//! the stand-in of `support/winssh.rs` (real SSH on loopback, SFTP answered
//! as openssh-portable's sftp-server and win32compat do), the real binary.
//!
//! Each scenario runs at every version. A push must end with every server
//! as it was or fully pushed, its last line and exit code saying which,
//! and nothing left beside `web.config` but its backups.

mod support;
#[path = "support/winssh.rs"]
mod winssh;

use farmkey::paths::RemotePath;
use farmkey::transport::ssh::SshTransport;
use farmkey::transport::{ConnectOptions, Transport, TransportError};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::pty::{DOWN, ENTER, Pty, RIGHT};
use winssh::{WinFarm, WinServer, WinVersion};

const FLOWTIME: &str = "C:/inetpub/Cora/Flowtime/web.config";
const FLOWTIME_DIR: &str = "C:/inetpub/Cora/Flowtime";
const APPHOST: &str = "C:/Windows/System32/inetsrv/config/applicationHost.config";
/// The staged copy of a Flowtime push, whatever its stamp.
const STAGED: &str = "/C:/inetpub/Cora/Flowtime/web.*.farmkey-new.config";
const SERVERS: [&str; 3] = ["web01", "web02", "web03"];

/// The demo farm (three servers, Flowtime on each) behind stand-ins at
/// `version`.
struct Setup {
    _demo: farmkey::demo::DemoFarm,
    farm: WinFarm,
    audit: PathBuf,
    version: WinVersion,
}

fn setup(version: WinVersion) -> Setup {
    setup_with(version, |_| {})
}

/// With `prepare` run on the server folders before the servers start.
fn setup_with(version: WinVersion, prepare: impl Fn(&Path)) -> Setup {
    let demo = farmkey::demo::DemoFarm::new().unwrap();
    prepare(demo.path());
    let trees: Vec<(String, PathBuf)> = SERVERS
        .iter()
        .map(|s| (s.to_string(), demo.path().join(s)))
        .collect();
    let farm = WinFarm::start(&trees, version);
    let audit = farm.home.path().join("audit.jsonl");
    Setup {
        _demo: demo,
        farm,
        audit,
        version,
    }
}

impl Setup {
    fn server(&self, name: &str) -> &WinServer {
        self.farm.server(name)
    }

    /// A farmkey command on the farm: (exit code, stdout then stderr).
    fn run(&self, args: &[&str]) -> (i32, String) {
        self.run_with(args, &self.farm.headless_args(&self.audit))
    }

    fn run_with(&self, args: &[&str], extra: &[String]) -> (i32, String) {
        let out = self.farm.farmkey().args(args).args(extra).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        support::assert_no_key(&text, &self.all_keys());
        (out.status.code().unwrap_or(-1), text)
    }

    /// `farmkey history --site Flowtime`'s standard output.
    fn history(&self) -> String {
        let out = self
            .farm
            .farmkey()
            .args(["history", "--site", "Flowtime", "--audit"])
            .arg(&self.audit)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn push(&self) -> (i32, String) {
        self.run(&["push", "--site", "Flowtime", "--generate", "--yes"])
    }

    /// Every server's Flowtime web.config (`None`: missing).
    fn flowtime(&self) -> Vec<Option<Vec<u8>>> {
        SERVERS
            .iter()
            .map(|s| fs::read(self.server(s).file(FLOWTIME)).ok())
            .collect()
    }

    /// Names beside a server's web.config that farmkey made and must not
    /// leave: staged and restore copies, files moved aside, locks (backups
    /// end in `.farmkey.config`).
    fn leftovers(&self, server: &str) -> Vec<String> {
        let dir = self.server(server).file(FLOWTIME_DIR);
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".farmkey") && !n.ends_with(".farmkey.config"))
            .collect();
        v.sort();
        v
    }

    /// Nothing beside any server's web.config but its backups.
    fn assert_no_leftovers(&self) {
        for name in SERVERS {
            let left = self.leftovers(name);
            assert!(left.is_empty(), "{:?}: {name} {left:?}", self.version);
        }
    }

    /// Every hex run of 32+ characters in the servers' files: their keys,
    /// old and new.
    fn all_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for s in &self.farm.servers {
            for (_, bytes) in support::snapshot_tree(&s.root) {
                for w in String::from_utf8_lossy(&bytes).split(|c: char| !c.is_ascii_hexdigit()) {
                    if w.len() >= 32 && !keys.contains(&w.to_ascii_uppercase()) {
                        keys.push(w.to_ascii_uppercase());
                    }
                }
            }
        }
        keys
    }

    /// The push's contract: every server as it was (exit 1, "as it was")
    /// or every one pushed (exit 0, "in step"); web.config on every server;
    /// nothing left beside it but backups and what the last line names.
    fn assert_all_or_nothing(&self, before: &[Option<Vec<u8>>], code: i32, out: &str) {
        let v = self.version.number();
        let last = last_line(out);
        let now = self.flowtime();
        for (i, s) in SERVERS.iter().enumerate() {
            assert!(now[i].is_some(), "{v}: {s} left without web.config:\n{out}");
            let left = self.leftovers(s);
            assert!(
                left.iter().all(|n| last.contains(n.as_str())),
                "{v}: {s} has {left:?} left, not named in the last line:\n{out}"
            );
        }
        match code {
            0 => {
                assert!(last.contains("in step"), "{v}:\n{out}");
                for (i, s) in SERVERS.iter().enumerate() {
                    assert_ne!(now[i], before[i], "{v}: {s} not pushed:\n{out}");
                }
                assert!(now[0] == now[1] && now[1] == now[2], "{v}: not in step");
            }
            1 => {
                // Rolled back, or blocked at the plan before any write.
                assert!(
                    last.contains("NOT made")
                        && (last.contains("as it was") || last.contains("nothing was written")),
                    "{v}:\n{out}"
                );
                assert_eq!(now, before, "{v}: exit 1 but a server changed:\n{out}");
            }
            _ => panic!("{v}: neither as it was nor pushed (exit {code}):\n{out}"),
        }
    }
}

impl Setup {
    /// When a push left copies beside web.config, `farmkey rollback`
    /// removes them: every server as it was, nothing left but backups.
    fn assert_rollback_cleans_up(&self, before: &[Option<Vec<u8>>]) {
        let v = self.version;
        if SERVERS.iter().all(|s| self.leftovers(s).is_empty()) {
            return;
        }
        let (code, out) = self.run(&["rollback", "--site", "Flowtime", "--yes"]);
        assert!(code == 0, "{v:?}: rollback exit {code}:\n{out}");
        assert_eq!(self.flowtime(), before, "{v:?}:\n{out}");
        for name in SERVERS {
            let left = self.leftovers(name);
            assert!(
                left.is_empty(),
                "{v:?}: rollback left {name} {left:?}:\n{out}"
            );
        }
    }
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

/// Runs `scenario` at every version, each on a farm of its own, in
/// parallel: the versions fail separately and name themselves.
fn each_version(scenario: impl Fn(WinVersion) + Sync) {
    let scenario = &scenario;
    std::thread::scope(|scope| {
        let runs: Vec<_> = WinVersion::ALL
            .iter()
            .map(|&v| (v, scope.spawn(move || scenario(v))))
            .collect();
        let failed: Vec<String> = runs
            .into_iter()
            .filter_map(|(v, h)| h.join().err().map(|_| v.number().to_string()))
            .collect();
        assert!(failed.is_empty(), "failed at {failed:?} (see above)");
    });
}

/// Says whether the text names a file held open by another process.
fn names_a_held_file(out: &str) -> bool {
    let l = out.to_lowercase();
    [
        "in use",
        "held open",
        "another process",
        "sharing violation",
    ]
    .iter()
    .any(|w| l.contains(w))
}

// ---------------------------------------------------------------------
// The stand-in itself, through farmkey's own SSH transport.

fn connect(s: &Setup, name: &str) -> SshTransport {
    let inv = farmkey::inventory::Inventory::load(&s.farm.inventory(20)).unwrap();
    let server = inv.servers.iter().find(|x| x.name == name).unwrap();
    let farmkey::inventory::Target::Ssh { host, settings } = &server.target else {
        panic!()
    };
    let opts = ConnectOptions {
        ssh_config: Some(PathBuf::from("/nonexistent/ssh_config")),
        ..Default::default()
    };
    SshTransport::connect(name, host, settings, &opts).unwrap()
}

fn rp(p: &str) -> RemotePath {
    RemotePath::parse(p).unwrap()
}

#[test]
fn the_stand_in_answers_as_win32_openssh_does() {
    each_version(|v| {
        let s = setup(v);
        let mut t = connect(&s, "web01");
        let server = s.server("web01");
        assert_eq!(t.banner().as_deref(), Some(v.banner().as_str()));
        // Any case finds the file; the listing keeps the stored case.
        let shouted = rp("C:/INETPUB/cora/FLOWTIME/Web.Config");
        let st = t.stat(&shouted).unwrap().expect("found in any case");
        assert!(!st.is_dir());
        // No owner on Windows; the write bit is the read-only attribute.
        assert_eq!((st.uid, st.gid, st.mode), (Some(0), Some(0), Some(0o644)));
        let names: Vec<String> = t
            .list(&rp(FLOWTIME_DIR))
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(names.contains(&"web.config".to_string()), "{names:?}");
        assert_eq!(
            &*t.read(&shouted).unwrap(),
            fs::read(server.file(FLOWTIME)).unwrap().as_slice()
        );
        // An exclusive create fails on a name that matches in another case
        // (the server says only "Failure"; farmkey looks and finds it).
        let err = t
            .create_new(&shouted, b"x", &Default::default())
            .unwrap_err();
        assert!(matches!(err, TransportError::Exists { .. }), "{v:?}: {err}");
        // A plain rename never replaces.
        let a = rp("C:/inetpub/Cora/Flowtime/a.config");
        t.create_new(&a, b"a", &Default::default()).unwrap();
        let err = t.rename(&a, &shouted).unwrap_err();
        assert!(matches!(err, TransportError::Exists { .. }), "{v:?}: {err}");
        // A read-only file cannot be deleted or replaced, and says so
        // only as "permission denied" or "failure".
        server.set_read_only(FLOWTIME, true);
        let st = t.stat(&shouted).unwrap().unwrap();
        assert_eq!(st.mode, Some(0o444));
        let err = t.remove(&shouted).unwrap_err();
        assert!(
            matches!(err, TransportError::PermissionDenied { .. }),
            "{v:?}: {err}"
        );
        let err = t.replace(&a, &shouted).unwrap_err();
        if v.atomic_rename() {
            // MoveFileExW: ERROR_ACCESS_DENIED.
            assert!(
                matches!(err, TransportError::PermissionDenied { .. }),
                "{v:?}: {err}"
            );
        } else {
            // The delete fails (ignored), `_wrename` finds the target: EEXIST.
            assert!(err.to_string().contains("failure"), "{v:?}: {err}");
        }
        assert!(server.file(FLOWTIME).exists());
        server.set_read_only(FLOWTIME, false);
        // Held by another process: a replace fails while it is held.
        server.hold(WEB_CONFIG, 1);
        let err = t.replace(&a, &shouted).unwrap_err();
        assert!(err.to_string().contains("failure"), "{v:?}: {err}");
        assert_eq!(server.refusals(), 1);
        assert!(server.file(FLOWTIME).exists(), "{v:?}");
        // Let go: the replace works; the file takes the name as sent
        // (farmkey always sends the name it found).
        t.replace(&a, &shouted).unwrap();
        let sent = server.file("C:/inetpub/Cora/Flowtime/Web.Config");
        assert_eq!(fs::read(&sent).unwrap(), b"a");
        assert!(!server.file("C:/inetpub/Cora/Flowtime/a.config").exists());
        fs::rename(&sent, server.file(FLOWTIME)).unwrap();
        // A held source: 8.6 and later fail whole; before, the target is
        // deleted first and the rename then fails.
        let b = rp("C:/inetpub/Cora/Flowtime/b.config");
        t.create_new(&b, b"b", &Default::default()).unwrap();
        server.hold("/C:/inetpub/Cora/Flowtime/b.config", 1);
        let err = t.replace(&b, &shouted).unwrap_err();
        if v.atomic_rename() {
            assert!(err.to_string().contains("failure"), "{v:?}: {err}");
            assert!(server.file(FLOWTIME).exists());
        } else {
            assert!(
                matches!(err, TransportError::PermissionDenied { .. }),
                "{v:?}: {err}"
            );
            assert!(!server.file(FLOWTIME).exists(), "{v:?}: deleted first");
        }
        // Trailing dots and spaces are not part of a name; backslashes
        // separate as slashes do.
        t.replace(&b, &shouted).unwrap();
        let dotted = rp("C:/inetpub/Cora/Flowtime/web.config. .");
        assert!(t.stat(&dotted).unwrap().is_some(), "{v:?}");
        let back = rp(r"C:\inetpub\Cora\Flowtime\web.config");
        assert!(t.stat(&back).unwrap().is_some(), "{v:?}");
        // A full disk: the write fails with a bare "Failure"; statvfs tells
        // why.
        server.disk_full(true);
        let err = t
            .create_new(
                &rp("C:/inetpub/Cora/Flowtime/c.config"),
                b"c",
                &Default::default(),
            )
            .unwrap_err();
        assert!(
            matches!(err, TransportError::NoSpace { .. }),
            "{v:?}: {err}"
        );
        assert!(server.requests("statvfs") > 0);
    });
}

#[test]
fn the_stand_in_normalises_paths_as_win32_openssh_realpath_does() {
    let w = |p: &str| {
        let (drive, parts) = winssh::windows_path(p);
        format!("{drive}/{}", parts.join("/"))
    };
    assert_eq!(
        w("/C:/inetpub/Flowtime/web.config"),
        "C:/inetpub/Flowtime/web.config"
    );
    assert_eq!(
        w(r"/c:\inetpub\Flowtime\Web.config"),
        "C:/inetpub/Flowtime/Web.config"
    );
    assert_eq!(
        w("/C:/inetpub/./x/../Flowtime/web.config. . "),
        "C:/inetpub/Flowtime/web.config"
    );
    // A folder loses one trailing period; only the last component loses
    // every trailing dot and space.
    assert_eq!(w("/D:/Cora./web.config"), "D:/Cora/web.config");
    assert_eq!(w("/D:/Cora. /web.config"), "D:/Cora. /web.config");
    // No drive: the current one.
    assert_eq!(w("/inetpub"), "C:/inetpub");
}

// ---------------------------------------------------------------------
// Scans.

#[test]
fn a_scan_over_sftp_finds_what_a_local_copy_finds_names_in_any_case_included() {
    each_version(|v| {
        // web02's files as Visual Studio and an old installer spelled them.
        let s = setup_with(v, |demo| {
            let web02 = demo.join("web02");
            fs::rename(
                web02.join(FLOWTIME),
                web02.join("C:/inetpub/Cora/Flowtime/Web.config"),
            )
            .unwrap();
            fs::rename(
                web02.join(APPHOST),
                web02.join("C:/Windows/System32/inetsrv/config/APPLICATIONHOST.CONFIG"),
            )
            .unwrap();
        });
        let scan = |inventory: &Path| {
            let out = s
                .farm
                .farmkey()
                .args(["scan", "--format", "json", "--all-sites", "--batch"])
                .args(["--ssh-config", "/nonexistent", "-i"])
                .arg(inventory)
                .output()
                .unwrap();
            let json: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{v:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
            (out.status.code(), json)
        };
        let over_sftp = scan(&s.farm.inventory(20));
        let local_inv = s.farm.home.path().join("local.toml");
        let text: String = s
            .farm
            .servers
            .iter()
            .map(|x| {
                format!(
                    "[[servers]]\nname = \"{}\"\nlocal_root = \"{}\"\n",
                    x.name,
                    x.root.display()
                )
            })
            .collect();
        fs::write(&local_inv, text).unwrap();
        let local = scan(&local_inv);
        assert_eq!(over_sftp.0, local.0, "{v:?}");
        let (a, b) = (without_sources(over_sftp.1), without_sources(local.1));
        let (pa, pb) = (
            serde_json::to_string_pretty(&a).unwrap(),
            serde_json::to_string_pretty(&b).unwrap(),
        );
        let differ: Vec<_> = pa.lines().zip(pb.lines()).filter(|(x, y)| x != y).collect();
        assert!(
            differ.is_empty() && pa.lines().count() == pb.lines().count(),
            "{v:?}: the scans differ (SFTP, local): {differ:#?}"
        );
        // web02's files are stored in their other case, and were read.
        let web02 = &s.server("web02").root;
        assert!(web02.join("C:/inetpub/Cora/Flowtime/Web.config").exists());
        assert!(!web02.join(FLOWTIME).exists());
        assert_eq!(
            pa.matches(r#""config_path": "C:\\inetpub\\Cora\\Flowtime\\web.config""#)
                .count(),
            3,
            "{v:?}: {pa}"
        );
        assert!(
            !pa.contains("unreachable") && !pa.contains("unreadable"),
            "{v:?}: {pa}"
        );
    });
}

/// A scan's JSON without what names how a server was reached.
fn without_sources(mut v: serde_json::Value) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for k in ["address", "elapsed_ms"] {
                    m.remove(k);
                }
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

// ---------------------------------------------------------------------
// Pushes.

#[test]
fn push_history_and_rollback_at_each_version() {
    each_version(|v| {
        let s = setup(v);
        let before = s.flowtime();
        let scan_flowtime = || {
            s.run_with(
                &["scan", "--site", "Flowtime", "--format", "json", "--batch"],
                &s.farm.scan_args(),
            )
            .1
        };
        // web03 has a key of its own.
        let scan = scan_flowtime();
        assert!(scan.contains("key-mismatch"), "{v:?}: {scan}");
        let (code, out) = s.push();
        assert_eq!(code, 0, "{v:?}:\n{out}");
        assert!(out.contains("applied and verified"), "{v:?}:\n{out}");
        if v.atomic_rename() {
            assert!(!out.contains("absent for a moment"), "{v:?}:\n{out}");
        } else {
            assert!(out.contains("absent for a moment"), "{v:?}:\n{out}");
        }
        s.assert_all_or_nothing(&before, code, &out);
        for (i, name) in SERVERS.iter().enumerate() {
            let now = s.flowtime()[i].clone().unwrap();
            support::edit_confined(before[i].as_ref().unwrap(), &now).unwrap();
            assert!(
                s.leftovers(name).is_empty(),
                "{v:?}: {:?}",
                s.leftovers(name)
            );
            // One swap per server.
            assert_eq!(s.server(name).requests("posix-rename"), 1, "{v:?} {name}");
        }
        // The scan now finds Flowtime's keys alike.
        let scan = scan_flowtime();
        assert!(
            !scan.contains("key-mismatch") && scan.contains("\"reachable\": true"),
            "{v:?}: {scan}"
        );

        let history = s.history();
        assert!(
            history.contains("web01 applied, web02 applied, web03 applied"),
            "{v:?}: {history}"
        );

        let (code, out) = s.run(&["rollback", "--site", "Flowtime", "--yes"]);
        assert_eq!(code, 0, "{v:?}:\n{out}");
        assert_eq!(
            out.matches("restored and verified").count(),
            3,
            "{v:?}:\n{out}"
        );
        assert_eq!(s.flowtime(), before, "{v:?}");
        s.assert_no_leftovers();
    });
}

/// Another process holds `held` on web02 for `tries` attempts.
const WEB_CONFIG: &str = "/C:/inetpub/Cora/Flowtime/web.config";

fn held_for_three_tries(v: WinVersion, held: &str) {
    let s = setup(v);
    let before = s.flowtime();
    s.server("web02").hold(held, 3);
    let (code, out) = s.push();
    assert_eq!(code, 0, "{v:?} {held}:\n{out}");
    assert_eq!(s.server("web02").refusals(), 3, "{v:?} {held}:\n{out}");
    s.assert_all_or_nothing(&before, code, &out);
    s.assert_no_leftovers();
}

fn held_for_good(v: WinVersion, held: &str) {
    let s = setup(v);
    let before = s.flowtime();
    s.server("web02").hold(held, u32::MAX);
    let (code, out) = s.push();
    assert!(s.server("web02").refusals() > 0, "{v:?} {held}");
    assert_eq!(code, 1, "{v:?} {held}:\n{out}");
    s.assert_all_or_nothing(&before, code, &out);
    let last = last_line(&out);
    assert!(
        last.contains("web02") && names_a_held_file(last) && last.contains("web."),
        "{v:?} {held}: the last line names the server, the file and the cause:\n{out}"
    );
    // Once let go, nothing is left but what the last line names, and a
    // rollback removes that.
    s.server("web02").release();
    let left = s.leftovers("web02");
    for name in SERVERS {
        let left = s.leftovers(name);
        assert!(
            left.iter().all(|n| last.contains(n.as_str())),
            "{v:?} {held}: {name} {left:?}:\n{out}"
        );
    }
    // `history` tells what happened, copies left included.
    let history = s.history();
    assert!(
        history.contains("web02 failed") && history.contains("web01 rolled-back"),
        "{v:?} {held}: {history}"
    );
    assert_eq!(
        history.contains("left      web02"),
        !left.is_empty(),
        "{v:?} {held}: {left:?}\n{history}"
    );
    assert!(
        left.iter().all(|n| history.contains(n.as_str())),
        "{v:?} {held}: {history}"
    );
    s.assert_rollback_cleans_up(&before);
    assert!(
        !s.history().contains("left  "),
        "{v:?} {held}: {}",
        s.history()
    );
}

#[test]
fn a_web_config_held_open_for_three_tries_is_pushed_in_step() {
    each_version(|v| held_for_three_tries(v, WEB_CONFIG));
}

#[test]
fn a_staged_copy_held_open_for_three_tries_is_pushed_in_step() {
    each_version(|v| held_for_three_tries(v, STAGED));
}

#[test]
fn a_web_config_held_open_for_good_leaves_the_farm_as_it_was_and_says_why() {
    each_version(|v| held_for_good(v, WEB_CONFIG));
}

#[test]
fn a_staged_copy_held_open_for_good_leaves_no_server_without_web_config() {
    each_version(|v| held_for_good(v, STAGED));
}

#[test]
fn a_connection_dropped_between_the_delete_and_the_rename_ends_whole() {
    each_version(|v| {
        let s = setup(v);
        let before = s.flowtime();
        // Away for as long as a service restart on a loaded machine.
        s.server("web02").drop_at_swap(Duration::from_secs(3));
        let (code, out) = s.push();
        assert!(s.server("web02").dropped(), "{v:?}: the fault never fired");
        s.assert_all_or_nothing(&before, code, &out);
        assert!(
            !out.contains("someone else") && !out.contains("changed since"),
            "{v:?}: farmkey's own swap is not someone else's write:\n{out}"
        );
        if code == 1 {
            s.assert_rollback_cleans_up(&before);
        }
    });
}

/// A push, then its rollback while another process holds web02's
/// web.config for `tries` attempts.
fn rollback_held(v: WinVersion, tries: u32) {
    let s = setup(v);
    let before = s.flowtime();
    let (code, out) = s.push();
    assert_eq!(code, 0, "{v:?}:\n{out}");
    let pushed = s.flowtime();
    s.server("web02").hold(WEB_CONFIG, tries);
    let (code, out) = s.run(&["rollback", "--site", "Flowtime", "--yes"]);
    if tries == u32::MAX {
        assert_ne!(code, 0, "{v:?}:\n{out}");
        assert!(s.server("web02").refusals() > 0, "{v:?}");
        let last = last_line(&out);
        assert!(
            last.contains("web02") && names_a_held_file(&out) && out.contains("web.config"),
            "{v:?}: names the server, the file and the cause:\n{out}"
        );
        // web02 keeps what the push wrote, whole; the others are restored.
        let now = s.flowtime();
        assert_eq!(now[1], pushed[1], "{v:?}: web02 changed:\n{out}");
        assert_eq!(
            (&now[0], &now[2]),
            (&before[0], &before[2]),
            "{v:?}:\n{out}"
        );
        s.server("web02").release();
        for name in SERVERS {
            let left = s.leftovers(name);
            assert!(
                left.iter().all(|n| last.contains(n.as_str())),
                "{v:?}: {name} {left:?} not named:\n{out}"
            );
        }
        // Let go, the next rollback finishes it.
        let (code, out) = s.run(&["rollback", "--site", "Flowtime", "--yes"]);
        assert_eq!(code, 0, "{v:?}:\n{out}");
    } else {
        assert_eq!(s.server("web02").refusals(), tries, "{v:?}");
        assert_eq!(code, 0, "{v:?}:\n{out}");
    }
    assert_eq!(s.flowtime(), before, "{v:?}");
    s.assert_no_leftovers();
}

#[test]
fn a_rename_refused_once_during_a_rollback_is_tried_again() {
    // ASP.NET reads the swapped file just as the rollback swaps it back.
    each_version(|v| rollback_held(v, 1));
}

#[test]
fn a_rollback_refused_for_good_by_a_held_file_names_it_and_can_be_run_again() {
    each_version(|v| rollback_held(v, u32::MAX));
}

#[test]
fn a_read_only_web_config_stops_the_push_before_any_server_is_written() {
    each_version(|v| {
        let s = setup(v);
        let before = s.flowtime();
        s.server("web02").set_read_only(FLOWTIME, true);
        let (code, out) = s.push();
        assert_eq!(code, 1, "{v:?}:\n{out}");
        s.assert_all_or_nothing(&before, code, &out);
        assert!(
            out.contains("web02") && out.contains("read-only"),
            "{v:?}: names the server and the read-only attribute:\n{out}"
        );
        for name in SERVERS {
            assert_eq!(
                s.server(name).requests("posix-rename"),
                0,
                "{v:?}: {name} was written (its application restarted) before the read-only file was found:\n{out}"
            );
        }
    });
}

#[test]
fn a_full_disk_is_named_and_the_farm_stays_as_it_was() {
    each_version(|v| {
        let s = setup(v);
        let before = s.flowtime();
        s.server("web02").disk_full(true);
        let (code, out) = s.push();
        assert_eq!(code, 1, "{v:?}:\n{out}");
        s.assert_all_or_nothing(&before, code, &out);
        assert!(out.contains("no space left"), "{v:?}:\n{out}");
        s.assert_no_leftovers();
    });
}

#[test]
fn a_slow_server_that_answers_every_request_is_pushed() {
    each_version(|v| {
        let s = setup(v);
        let before = s.flowtime();
        // 20 ms a request, connections that wait 3 s for an answer.
        s.server("web02").slow(Duration::from_millis(20));
        let inv = s.farm.inventory(3);
        let mut args = s.farm.headless_args(&s.audit);
        let at = args.iter().position(|a| a == "-i").unwrap();
        args[at + 1] = inv.display().to_string();
        let (code, out) = s.run_with(
            &["push", "--site", "Flowtime", "--generate", "--yes"],
            &args,
        );
        assert!(!out.contains("stopped answering"), "{v:?}:\n{out}");
        assert_eq!(code, 0, "{v:?}:\n{out}");
        s.assert_all_or_nothing(&before, code, &out);
    });
}

#[test]
fn a_small_file_is_read_in_a_few_requests() {
    // Every configuration file of the demo farm is far smaller than what
    // one READ may carry (64 KiB at sftp-server, process_read): its data
    // and the end of file take two; each request more is a round trip
    // more to a distant server.
    each_version(|v| {
        let s = setup(v);
        let (code, out) = s.run_with(&["scan", "--all-sites", "--batch"], &s.farm.scan_args());
        assert!(code == 0 || code == 1, "{v:?}: {out}");
        let server = s.server("web01");
        let (opens, reads) = (server.requests("open"), server.requests("read"));
        assert!(opens > 0, "{v:?}");
        assert!(
            reads <= 3 * opens,
            "{v:?}: {reads} READ requests for {opens} small files:\n{out}"
        );
    });
}

// ---------------------------------------------------------------------
// The console.

impl Setup {
    /// The console on the farm, `cols` x `rows`, through the push of new
    /// keys to Flowtime up to its confirmation: the push is under way.
    fn console_push(&self, cols: u16, rows: u16, t: Duration) -> Pty {
        let inv = self.farm.inventory(20);
        let mut p = Pty::farmkey(
            &[
                "-i",
                inv.to_str().unwrap(),
                "--ssh-config",
                "/nonexistent",
                "--audit",
                self.audit.to_str().unwrap(),
            ],
            &[],
            cols,
            rows,
            self.farm.home.path(),
        );
        p.wait_for("servers 3 ok", t);
        p.send("p");
        p.wait_for("Push to Flowtime", t);
        p.send(DOWN);
        p.send(DOWN);
        p.wait_until("generate selected", t, |s| {
            s.lines().any(|l| l.contains("▶ Generate new keys: SHA1"))
        });
        p.send(ENTER);
        p.wait_for("Confirm push", t);
        p.send("G");
        p.wait_for("sessions there are lost once", t);
        p.send(RIGHT);
        p.send(ENTER);
        p
    }
}

#[test]
fn the_console_pushes_to_windows_servers_at_each_version() {
    const T: Duration = Duration::from_secs(20);
    each_version(|v| {
        let s = setup(v);
        let before = s.flowtime();
        let mut p = s.console_push(120, 40, T);
        let screen = p.wait_for("Push done", T);
        assert_eq!(
            screen.matches("applied and verified").count(),
            3,
            "{v:?}: {screen}"
        );
        p.send(ENTER);
        p.wait_until("Flowtime in step", T, |s| s.contains("✓ Flowtime"));
        p.send("q");
        p.wait_exit(T);
        let now = s.flowtime();
        for (i, name) in SERVERS.iter().enumerate() {
            assert_ne!(now[i], before[i], "{v:?}: {name}");
            assert!(s.leftovers(name).is_empty(), "{v:?}");
        }
        assert!(now[0] == now[1] && now[1] == now[2], "{v:?}");
    });
}

/// Before 8.6 a swap deletes web.config first: a web.config another
/// process holds for good is refused at every try, and the console's
/// push ends in a dialog naming the server, the file and the cause, the
/// farm as it was.
#[test]
fn the_console_names_a_web_config_held_for_good_at_8_1() {
    const T: Duration = Duration::from_secs(30);
    let s = setup(WinVersion::V8_1);
    let before = s.flowtime();
    s.server("web02").hold(WEB_CONFIG, u32::MAX);
    let mut p = s.console_push(160, 50, T);
    let screen = p.wait_for("Push not made", T);
    for said in [
        "web02: FAILED swapping",
        "C:\\inetpub\\Cora\\Flowtime\\web.config",
        "another process may hold",
        "Flowtime is as it was on",
    ] {
        assert!(screen.contains(said), "the dialog says {said:?}:\n{screen}");
    }
    p.send(ENTER);
    p.wait_until("the dialog closed", T, |s| !s.contains("Push not made"));
    p.send("q");
    p.wait_exit(T);
    assert!(s.server("web02").refusals() > 0);
    assert_eq!(s.flowtime(), before, "the farm as it was");
    for name in SERVERS {
        assert!(
            s.leftovers(name).is_empty(),
            "{name}: {:?}",
            s.leftovers(name)
        );
    }
}

/// Links on Win32-OpenSSH: LSTAT shows a symbolic link as S_IFLNK and
/// READLINK gives its target as `/C:/...` (fileio.c
/// fileio_stat_or_lstat_internal, fileio_readlink); STAT and a read follow
/// it, answering "No such file" for a dangling one and "Failure" for a
/// loop (ERROR_CANT_RESOLVE_FILENAME passed through). farmkey tells the
/// three apart, and a push refuses each, naming it; nothing is written.
#[test]
fn links_are_told_apart_and_never_replaced_on_windows_servers() {
    use farmkey::transport::{FileKind, NotAFile, not_a_file};
    each_version(|v| {
        let s = setup(v);
        let file = |srv: &str| s.server(srv).file(FLOWTIME);
        // web01: a link to the file beside it (an absolute target).
        let real = file("web01").with_file_name("web.real.config");
        fs::rename(file("web01"), &real).unwrap();
        std::os::unix::fs::symlink(&real, file("web01")).unwrap();
        // web02: a link to nothing; web03: a link to itself.
        fs::remove_file(file("web02")).unwrap();
        std::os::unix::fs::symlink("gone.config", file("web02")).unwrap();
        fs::remove_file(file("web03")).unwrap();
        std::os::unix::fs::symlink("web.config", file("web03")).unwrap();
        let bytes = fs::read(&real).unwrap();

        let flowtime = rp(FLOWTIME);
        let mut t = connect(&s, "web01");
        let l = t.lstat(&flowtime).unwrap().unwrap();
        assert_eq!((l.kind, l.size), (FileKind::Symlink, 0), "{v:?}");
        assert_eq!(t.stat(&flowtime).unwrap().unwrap().kind, FileKind::Regular);
        assert_eq!(&*t.read(&flowtime).unwrap(), bytes.as_slice());
        let target = "/C:/inetpub/Cora/Flowtime/web.real.config".to_string();
        assert_eq!(t.readlink(&flowtime).unwrap(), target);
        assert_eq!(
            not_a_file(&mut t, &flowtime).unwrap(),
            Some(NotAFile::Link {
                target: Some(target)
            })
        );
        let mut t = connect(&s, "web02");
        assert_eq!(t.stat(&flowtime).unwrap(), None, "{v:?}");
        assert!(t.read(&flowtime).unwrap_err().is_not_found());
        assert_eq!(
            not_a_file(&mut t, &flowtime).unwrap(),
            Some(NotAFile::DanglingLink {
                target: Some("gone.config".into())
            })
        );
        let mut t = connect(&s, "web03");
        let err = t.stat(&flowtime).unwrap_err();
        assert!(err.to_string().contains("\"failure\""), "{v:?}: {err}");
        assert_eq!(
            not_a_file(&mut t, &flowtime).unwrap(),
            Some(NotAFile::LinkLoop {
                target: Some("web.config".into())
            })
        );
        drop(t);

        let (code, out) = s.run(&["push", "--site", "Flowtime", "--generate", "--yes"]);
        assert_eq!(code, 1, "{v:?}: {out}");
        for (srv, what) in [
            (
                "web01",
                "is a symbolic link to /C:/inetpub/Cora/Flowtime/web.real.config",
            ),
            (
                "web02",
                "a symbolic link to gone.config, which does not exist",
            ),
            (
                "web03",
                "a symbolic link to web.config that loops back on itself",
            ),
        ] {
            assert!(
                out.lines().any(|l| l.trim_start().starts_with(srv)
                    && l.contains("CANNOT BE PUSHED")
                    && l.contains(what)),
                "{v:?} {srv}: {out}"
            );
        }
        assert_eq!(fs::read_link(file("web01")).unwrap(), real);
        assert_eq!(fs::read(&real).unwrap(), bytes);
        assert_eq!(
            fs::read_link(file("web02")).unwrap(),
            Path::new("gone.config")
        );
        assert_eq!(
            fs::read_link(file("web03")).unwrap(),
            Path::new("web.config")
        );
        assert_eq!(s.server("web01").requests("rename"), 0);
    });
}

/// A read-only backup stays on Windows: sftp-server's process_remove
/// (openssh-portable v9.5.0.0 sftp-server.c:1202) calls unlink, which is
/// contrib/win32/win32compat/misc.c:783 w32_unlink, `_wunlink`: DeleteFileW
/// refuses a file with FILE_ATTRIBUTE_READONLY (ERROR_ACCESS_DENIED, EACCES,
/// "permission denied"), where Linux removes it from a folder it may write.
/// The prune names it with its server, removes the others, says it is
/// partial, and records it as not removed.
#[test]
fn prune_reports_a_read_only_backup_on_windows_as_not_removed() {
    each_version(|v| {
        let s = setup(v);
        let mut ids = Vec::new();
        for _ in 0..2 {
            let (code, out) = s.push();
            assert_eq!(code, 0, "{v:?}:\n{out}");
            let id = out.lines().find_map(|l| l.strip_prefix("Push ")).unwrap();
            ids.push(id.split_whitespace().next().unwrap().to_string());
        }
        let backups = |server: &str| {
            let mut v: Vec<String> = fs::read_dir(s.server(server).file(FLOWTIME_DIR))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".farmkey.config"))
                .collect();
            v.sort();
            v
        };
        // The first push's (two pushes may share a second: the log says).
        let log = farmkey::push::audit::AuditLog::new(s.audit.clone());
        let records = log.read_all().unwrap();
        let oldest = records
            .iter()
            .find_map(|r| {
                (r.push_id == ids[0] && r.server == "web02")
                    .then(|| r.backup.clone())
                    .flatten()
            })
            .unwrap();
        let oldest = oldest.rsplit('\\').next().unwrap().to_string();
        assert!(backups("web02").contains(&oldest), "{v:?}");
        s.server("web02")
            .set_read_only(&format!("{FLOWTIME_DIR}/{oldest}"), true);
        let (code, out) = s.run(&["prune", "--keep", "1", "--yes"]);
        assert_eq!(code, 1, "{v:?}:\n{out}");
        assert!(
            out.lines().any(|l| l.contains("web02")
                && l.contains(&oldest)
                && l.contains("NOT removed")
                && l.contains("permission denied"))
                && out.contains("(partial: see above)"),
            "{v:?}:\n{out}"
        );
        for server in ["web01", "web03"] {
            assert_eq!(backups(server).len(), 1, "{v:?}: {server}");
        }
        assert_eq!(backups("web02").len(), 2, "{v:?}");
        let log = farmkey::push::audit::AuditLog::new(s.audit.clone())
            .read_all()
            .unwrap();
        let web02: Vec<_> = log
            .iter()
            .filter(|r| r.action == farmkey::push::audit::AuditAction::Prune && r.server == "web02")
            .map(|r| r.outcome)
            .collect();
        assert_eq!(web02, [farmkey::push::audit::Outcome::Failed], "{v:?}");
    });
}
