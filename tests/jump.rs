//! Through jump hosts (ProxyJump) against real OpenSSH servers: the farm's
//! servers listen on 127.0.0.1 of a network namespace of their own, which
//! the test (and farmkey) cannot reach; only a bastion inside it can. A
//! relay carries connections from here to the bastion, as a route would.

mod support;

use farmkey::analysis::{Selection, analyze};
use farmkey::farm::scan_all;
use farmkey::inventory::Inventory;
use farmkey::scan::ServerScan;
use farmkey::transport::{
    ConnectOptions, HostKeyDecision, HostKeyQuestion, Prompter, SecretQuestion,
};
use secrecy::SecretString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::netns::{Netns, Relay};
use support::sshd::{Options, SshFarm, SshServer, USER, demo_over_ssh};
use support::*;

fn no_ssh_config() -> ConnectOptions {
    ConnectOptions {
        ssh_config: Some(PathBuf::from("/nonexistent/ssh_config")),
        ..Default::default()
    }
}

/// The demo farm served from inside `ns`.
fn hidden_farm(ns: &Arc<Netns>) -> (farmkey::demo::DemoFarm, SshFarm) {
    demo_over_ssh(Options {
        netns: Some(ns.clone()),
        ..Default::default()
    })
}

/// A bastion inside `ns`, reached from here through a relay, its host key
/// trusted unless `trusted` is false.
fn bastion(farm: &SshFarm, name: &str, ns: &Arc<Netns>, trusted: bool) -> (SshServer, Relay) {
    let b = farm.bastion(name, Some(ns), true);
    let relay = Relay::start(None, ns, b.port);
    if trusted {
        farm.trust(relay.port, &b.host_key);
    }
    (b, relay)
}

fn jump_to(relay: &Relay) -> String {
    format!("{USER}@127.0.0.1:{}", relay.port)
}

/// The farm's inventory with `jump` in its defaults.
fn inventory_via(farm: &SshFarm, jump: &str) -> PathBuf {
    farm.inventory_with(&format!("{}jump = \"{jump}\"\n", farm.defaults()), "")
}

fn scan(inventory: &Path, opts: ConnectOptions) -> Vec<ServerScan> {
    let inv = Inventory::load(inventory).unwrap();
    scan_all(&inv.servers, opts, 16)
}

fn error_of(scans: &[ServerScan], name: &str) -> String {
    match &scans.iter().find(|s| s.name == name).unwrap().result {
        Ok(_) => panic!("{name} was reached"),
        Err(e) => e.to_string(),
    }
}

/// Whether the bastion's log records a connection forwarded to `port`.
fn forwarded(bastion: &SshServer, port: u16) -> bool {
    let wanted = format!("target 127.0.0.1 port {port}");
    bastion
        .log()
        .lines()
        .any(|l| l.trim_end().ends_with(&wanted))
}

fn reached(scans: &[ServerScan], name: &str) -> bool {
    scans
        .iter()
        .find(|s| s.name == name)
        .unwrap()
        .result
        .is_ok()
}

/// `farmkey scan --format json` as a process in the farm's client home.
fn scan_json(farm: &SshFarm, inventory: &Path, args: &[&str]) -> serde_json::Value {
    let out = farm
        .farmkey()
        .args(["scan", "--format", "json", "--batch", "-i"])
        .arg(inventory)
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn all_reachable(json: &serde_json::Value) -> bool {
    json["servers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["reachable"] == true)
}

fn flowtime_codes(json: &serde_json::Value) -> Vec<String> {
    json["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["site"] == "Flowtime")
        .unwrap()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

/// Pushes Flowtime's majority key set to every server through whatever
/// route the inventory gives, and checks that the farm is in step after.
fn push_and_check(farm: &SshFarm, inventory: &Path, args: &[&str]) {
    let before = scan_json(farm, inventory, args);
    assert!(flowtime_codes(&before).contains(&"key-mismatch".to_string()));
    let web03 = farm
        .server("web03")
        .file("C:/inetpub/Cora/Flowtime/web.config");
    let web03_before = fs::read(&web03).unwrap();
    let out = farm
        .farmkey()
        .args([
            "push", "--site", "Flowtime", "--adopt", "--yes", "--batch", "-i",
        ])
        .arg(inventory)
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("in step on every server of the push"),
        "{text}"
    );
    assert_ne!(
        fs::read(&web03).unwrap(),
        web03_before,
        "web03 was not written"
    );
    let after = scan_json(farm, inventory, args);
    assert!(
        !flowtime_codes(&after).contains(&"key-mismatch".to_string()),
        "{after}"
    );
}

#[test]
fn scan_and_push_through_one_bastion_that_alone_reaches_the_servers() {
    let ns = Netns::new();
    let (demo, farm) = hidden_farm(&ns);
    let (gate, relay) = bastion(&farm, "gate", &ns, true);

    // Directly, nothing answers: the servers are not reachable from here.
    let direct = scan(&farm.inventory(""), no_ssh_config());
    assert!(
        direct.iter().all(|s| s.result.is_err()),
        "a server was reached directly"
    );

    // Through the bastion: the same findings as the same farm read locally.
    let inventory = inventory_via(&farm, &jump_to(&relay));
    let local = scan_inventory(&demo.inventory.path, &all_sites());
    let remote = analyze(&scan(&inventory, no_ssh_config()), &all_sites());
    assert!(
        remote.servers.iter().all(|s| s.reachable),
        "{:?}\n{}\n{}",
        remote.servers,
        gate.log(),
        farm.logs()
    );
    assert_eq!(finding_rows(&remote), finding_rows(&local));
    for s in &farm.servers {
        assert!(forwarded(&gate, s.port), "{}", gate.log());
    }

    // One session to the bastion served the three servers.
    let log_before = gate.log().matches("Accepted publickey").count();
    let json = scan_json(&farm, &inventory, &["--ssh-config", "/nonexistent"]);
    assert!(all_reachable(&json), "{json}");
    assert_eq!(
        gate.log().matches("Accepted publickey").count(),
        log_before + 1,
        "{}",
        gate.log()
    );

    push_and_check(&farm, &inventory, &["--ssh-config", "/nonexistent"]);
}

#[test]
fn scan_and_push_through_a_chain_of_two_from_the_ssh_config() {
    // outer holds the first hop; inner holds the second hop and the servers.
    let outer = Netns::new();
    let inner = Netns::new();
    let (_demo, farm) = hidden_farm(&inner);
    let hop1 = farm.bastion("hop1", Some(&outer), true);
    let to_hop1 = Relay::start(None, &outer, hop1.port);
    let hop2 = farm.bastion("hop2", Some(&inner), true);
    // hop2 is reachable only from inside outer, where hop1 runs.
    let to_hop2 = Relay::start(Some(&outer), &inner, hop2.port);
    farm.trust(to_hop1.port, &hop1.host_key);
    farm.trust(to_hop2.port, &hop2.host_key);

    // As an operator writes it: the servers jump through hop2, and hop2's
    // own entry says it is reached through hop1.
    let config = format!(
        "Host hop1\n    HostName 127.0.0.1\n    Port {p1}\n    User {USER}\n    IdentityFile {id}\n\n\
         Host hop2\n    HostName 127.0.0.1\n    Port {p2}\n    User {USER}\n    IdentityFile {id}\n    ProxyJump hop1\n\n\
         Host *.farm\n    HostName 127.0.0.1\n    ProxyJump hop2\n",
        p1 = to_hop1.port,
        p2 = to_hop2.port,
        id = farm.identity.display(),
    );
    fs::write(farm.home.path().join(".ssh").join("config"), config).unwrap();
    let mut inv = farm.defaults();
    for s in &farm.servers {
        inv.push_str(&format!(
            "\n[[servers]]\nname = \"{n}\"\nhost = \"{n}.farm\"\nport = {p}\n",
            n = s.name,
            p = s.port
        ));
    }
    let inventory = farm.home.path().join("chain.toml");
    fs::write(&inventory, inv).unwrap();

    let json = scan_json(&farm, &inventory, &[]);
    assert!(
        all_reachable(&json),
        "{json}\n{}\n{}",
        hop1.log(),
        hop2.log()
    );
    // hop1 is reached directly, hop2 only through hop1.
    assert_eq!(
        hop1.log().matches("Accepted publickey").count(),
        1,
        "{}",
        hop1.log()
    );
    assert_eq!(
        hop2.log().matches("Accepted publickey").count(),
        1,
        "{}",
        hop2.log()
    );

    // The same chain written in the inventory, without the ssh config.
    let written = farm.inventory_with(
        &format!(
            "{}jump = \"{},{}\"\n",
            farm.defaults(),
            jump_to(&to_hop1),
            jump_to(&to_hop2)
        ),
        "",
    );
    let report = analyze(&scan(&written, no_ssh_config()), &Selection::default());
    assert!(
        report.servers.iter().all(|s| s.reachable),
        "{:?}",
        report.servers
    );

    push_and_check(&farm, &inventory, &[]);
}

/// Answers host-key questions with `answer` and records them.
struct HostKeyAnswers {
    answer: HostKeyDecision,
    asked: Mutex<Vec<HostKeyQuestion>>,
}

impl Prompter for HostKeyAnswers {
    fn secret(&self, _q: &SecretQuestion) -> Option<SecretString> {
        None
    }
    fn unknown_host(&self, q: &HostKeyQuestion) -> Option<HostKeyDecision> {
        self.asked.lock().unwrap().push(q.clone());
        Some(self.answer)
    }
}

#[test]
fn a_bastion_with_an_unknown_host_key_is_refused_asked_once_and_accepted() {
    let ns = Netns::new();
    let (_demo, farm) = hidden_farm(&ns);
    let (gate, relay) = bastion(&farm, "gate", &ns, false);
    let inventory = inventory_via(&farm, &jump_to(&relay));

    // Strict by default: every server is unreachable, and says why.
    let scans = scan(&inventory, no_ssh_config());
    for name in ["web01", "web02", "web03"] {
        let e = error_of(&scans, name);
        assert!(
            e.starts_with(&format!(
                "jump host 127.0.0.1 ({USER}@[127.0.0.1]:{}): host key of [127.0.0.1]:{} is not in",
                relay.port, relay.port
            )),
            "{e}"
        );
        assert!(e.contains("SHA256:") && e.contains("--accept-new"), "{e}");
    }

    // The console's dialog (a Prompter) is asked once for the three servers.
    for (answer, reachable) in [
        (HostKeyDecision::Refuse, false),
        (HostKeyDecision::AcceptOnce, true),
    ] {
        let prompter = Arc::new(HostKeyAnswers {
            answer,
            asked: Mutex::new(Vec::new()),
        });
        let opts = ConnectOptions {
            batch: false,
            prompter: Some(prompter.clone()),
            ..no_ssh_config()
        };
        let scans = scan(&inventory, opts);
        let asked = prompter.asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert_eq!(asked[0].server, "jump host 127.0.0.1");
        assert_eq!(asked[0].host, format!("[127.0.0.1]:{}", relay.port));
        assert!(
            scans.iter().all(|s| s.result.is_ok() == reachable),
            "{answer:?}"
        );
        if !reachable {
            assert!(error_of(&scans, "web02").contains("was refused"));
        }
    }
    assert!(
        !fs::read_to_string(&farm.known_hosts)
            .unwrap()
            .contains(&gate.host_key)
    );

    // --accept-new stores it, as for a server.
    let json = scan_json(
        &farm,
        &inventory,
        &["--accept-new", "--ssh-config", "/nonexistent"],
    );
    assert!(all_reachable(&json), "{json}");
    assert!(
        fs::read_to_string(&farm.known_hosts)
            .unwrap()
            .contains(&gate.host_key)
    );
}

#[test]
fn frozen_and_refusing_bastions_end_as_unreachable_naming_the_hop_within_the_timeout() {
    let ns = Netns::new();
    let (_demo, farm) = hidden_farm(&ns);
    let (_good, good) = bastion(&farm, "good", &ns, true);
    let (frozen, to_frozen) = bastion(&farm, "frozen", &ns, true);
    let no_forwarding = farm.bastion("walled", Some(&ns), false);
    let to_walled = Relay::start(None, &ns, no_forwarding.port);
    farm.trust(to_walled.port, &no_forwarding.host_key);
    // A bastion that does not know the client's key.
    let (locked, to_locked) = bastion(&farm, "locked", &ns, true);
    fs::write(locked.file("authorized_keys"), "").unwrap();
    let closed = support::netns::unique_port(None);
    frozen.freeze();

    let port = |n: &str| farm.server(n).port;
    let server = |name: &str, target: &str, jump: String| {
        format!(
            "\n[[servers]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {}\njump = \"{jump}\"\n",
            port(target)
        )
    };
    let mut inv = farm.defaults();
    inv.push_str(&server("web01", "web01", jump_to(&good)));
    inv.push_str(&server("web02", "web02", jump_to(&to_frozen)));
    inv.push_str(&server("web02b", "web02", jump_to(&to_frozen)));
    inv.push_str(&server("web03", "web03", jump_to(&to_walled)));
    inv.push_str(&server(
        "web03b",
        "web03",
        format!("{USER}@127.0.0.1:{closed}"),
    ));
    inv.push_str(&server("web03c", "web03", jump_to(&good)));
    inv.push_str(&server("web03d", "web03", jump_to(&to_locked)));
    let inventory = farm.home.path().join("mixed.toml");
    fs::write(&inventory, inv).unwrap();

    let start = Instant::now();
    let scans = scan(&inventory, no_ssh_config());
    let took = start.elapsed();
    frozen.thaw();
    // connect_timeout_secs = 3: the frozen bastion costs one timeout, shared.
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(reached(&scans, "web01") && reached(&scans, "web03c"));
    let elapsed = |n: &str| scans.iter().find(|s| s.name == n).unwrap().elapsed;
    // Servers behind the good bastion did not wait for the frozen one.
    assert!(
        elapsed("web01") < elapsed("web02"),
        "{:?} {:?}",
        elapsed("web01"),
        elapsed("web02")
    );

    let frozen_label = format!(
        "jump host 127.0.0.1 ({USER}@[127.0.0.1]:{})",
        to_frozen.port
    );
    for name in ["web02", "web02b"] {
        let e = error_of(&scans, name);
        assert!(e.starts_with(&frozen_label), "{e}");
        assert!(e.contains("within 3s"), "{e}");
    }
    let e = error_of(&scans, "web03");
    assert!(
        e.contains(&format!(
            "could not open a connection to 127.0.0.1:{}",
            port("web03")
        )) && e.contains("refuses to forward"),
        "{e}"
    );
    let e = error_of(&scans, "web03b");
    assert!(
        e.starts_with(&format!(
            "jump host 127.0.0.1 ({USER}@[127.0.0.1]:{closed}): connection refused"
        )),
        "{e}"
    );
    let report = analyze(&scans, &Selection::default());
    let unreachable: Vec<_> = finding_rows(&report)
        .into_iter()
        .filter(|r| r.0 == "unreachable")
        .map(|r| r.3)
        .collect();
    let e = error_of(&scans, "web03d");
    assert!(
        e.starts_with(&format!(
            "jump host 127.0.0.1 ({USER}@[127.0.0.1]:{}): authentication failed for {USER}@[127.0.0.1]:{}",
            to_locked.port, to_locked.port
        )),
        "{e}"
    );
    assert_eq!(
        unreachable,
        ["web02", "web02b", "web03", "web03b", "web03d"]
    );
}

#[test]
fn a_server_the_bastion_cannot_connect_to_does_not_hold_up_the_others() {
    let ns = Netns::new();
    let (_demo, farm) = hidden_farm(&ns);
    let (gate, relay) = bastion(&farm, "gate", &ns, true);
    // A listener whose backlog is full drops new connections silently, as
    // a firewall or a powered-off host does: the bastion's connect hangs.
    let black_hole = support::netns::unique_port(Some(&ns));
    let (_listener, _queued) = ns.run(|| {
        // SAFETY: a socket of our own, bound and listening with backlog 0.
        let fd = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            let addr = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: black_hole.to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
                },
                sin_zero: [0; 8],
            };
            assert_eq!(
                libc::bind(
                    fd,
                    &addr as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
                ),
                0
            );
            assert_eq!(libc::listen(fd, 0), 0);
            <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
        };
        // One connection fills a backlog of 0; later ones hang.
        let queued = std::net::TcpStream::connect(("127.0.0.1", black_hole)).unwrap();
        (fd, queued)
    });
    let timeout = 8;
    let defaults = farm.defaults().replace(
        "connect_timeout_secs = 3",
        &format!("connect_timeout_secs = {timeout}"),
    );
    let inventory = farm.inventory_with(
        &format!("{defaults}jump = \"{}\"\n", jump_to(&relay)),
        &format!("\n[[servers]]\nname = \"hole\"\nhost = \"127.0.0.1\"\nport = {black_hole}\n"),
    );
    let inv = Inventory::load(&inventory).unwrap();
    let opts = no_ssh_config();
    let (hole, rest): (Vec<_>, Vec<_>) = inv.servers.into_iter().partition(|s| s.name == "hole");

    // The hole's channel open goes first and hangs in the bastion's session...
    let first = {
        let opts = opts.clone();
        let hole = hole.clone();
        std::thread::spawn(move || {
            let scans = scan_all(&hole, opts, 1);
            (Instant::now(), scans)
        })
    };
    let mut waited = Instant::now();
    while !forwarded(&gate, black_hole) {
        assert!(waited.elapsed() < Duration::from_secs(20), "{}", gate.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    waited = Instant::now();
    // ...and the servers that come after it are read before it times out.
    let scans = scan_all(&rest, opts, 16);
    let rest_done = Instant::now();
    let (hole_done, hole_scan) = first.join().unwrap();
    assert!(
        scans.iter().all(|s| s.result.is_ok()),
        "{:?}",
        scans.iter().map(|s| &s.result).collect::<Vec<_>>()
    );
    assert!(
        rest_done < hole_done,
        "the others waited {:?}",
        rest_done - waited
    );
    let e = error_of(&hole_scan, "hole");
    assert!(
        e.contains(&format!(
            "could not open a connection to 127.0.0.1:{black_hole}: no answer within {timeout}s"
        )),
        "{e}"
    );
}

#[test]
fn a_bastion_that_freezes_after_serving_a_scan_fails_the_next_one_within_the_timeout() {
    let ns = Netns::new();
    let (_demo, farm) = hidden_farm(&ns);
    let (gate, relay) = bastion(&farm, "gate", &ns, true);
    let inventory = inventory_via(&farm, &jump_to(&relay));
    // One set of options, as the console keeps: the session to the bastion
    // stays open between scans.
    let opts = no_ssh_config();
    let first = scan(&inventory, opts.clone());
    assert!(first.iter().all(|s| s.result.is_ok()));
    gate.freeze();
    let start = Instant::now();
    let second = scan(&inventory, opts);
    let took = start.elapsed();
    gate.thaw();
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let label = format!("jump host 127.0.0.1 ({USER}@[127.0.0.1]:{})", relay.port);
    for name in ["web01", "web02", "web03"] {
        let e = error_of(&second, name);
        assert!(e.starts_with(&label) && e.contains("within 3s"), "{e}");
    }
}

#[test]
fn the_console_asks_about_an_unknown_bastion_once_and_reads_the_servers_behind_it() {
    use support::pty::{ENTER, Pty, RIGHT};
    let ns = Netns::new();
    let (_demo, farm) = hidden_farm(&ns);
    let (gate, relay) = bastion(&farm, "gate", &ns, false);
    let inventory = inventory_via(&farm, &jump_to(&relay));
    let t = Duration::from_secs(20);
    let mut p = Pty::farmkey(
        &[
            "-i",
            inventory.to_str().unwrap(),
            "--ssh-config",
            "/nonexistent",
        ],
        &[],
        100,
        30,
        farm.home.path(),
    );
    let s = p.wait_until("the bastion's host key dialog", t, |s| {
        s.contains("Unknown host key") && s.contains("jump host 127.0.0.1")
    });
    assert!(
        s.contains(&format!("[127.0.0.1]:{}", relay.port)) && s.contains("SHA256:"),
        "{s}"
    );
    // Accept and store: one question for the three servers behind it.
    p.send(RIGHT);
    p.send(RIGHT);
    p.send(ENTER);
    p.wait_for("servers 3 ok", t);
    p.send("q");
    p.wait_exit(t);
    assert!(
        fs::read_to_string(&farm.known_hosts)
            .unwrap()
            .contains(&gate.host_key)
    );
}

#[test]
fn large_files_cross_one_bastion_session_byte_for_byte_for_servers_in_parallel() {
    use farmkey::paths::RemotePath;
    let ns = Netns::new();
    let (_demo, farm) = hidden_farm(&ns);
    let (gate, relay) = bastion(&farm, "gate", &ns, true);
    let uid = std::process::Command::new("id")
        .args(["-u", USER])
        .output()
        .unwrap();
    let uid: u32 = String::from_utf8_lossy(&uid.stdout).trim().parse().unwrap();
    let sizes = [0usize, 1, 30_001, 65_536, 262_145, 1_600_000, 3_000_000];
    for (n, server) in farm.servers.iter().enumerate() {
        let dir = server.root.join("C:/big");
        fs::create_dir_all(&dir).unwrap();
        for (i, size) in sizes.iter().enumerate() {
            let bytes: Vec<u8> = (0..*size).map(|k| (k * 7 + i + n) as u8).collect();
            fs::write(dir.join(format!("f{i}.bin")), bytes).unwrap();
        }
        for path in [dir.clone()]
            .into_iter()
            .chain(fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()))
        {
            std::os::unix::fs::chown(path, Some(uid), None).unwrap();
        }
    }
    let paths: Vec<RemotePath> = (0..sizes.len())
        .map(|i| RemotePath::parse(&format!("/C:/big/f{i}.bin")).unwrap())
        .collect();
    let inventory = Inventory::load(&inventory_via(&farm, &jump_to(&relay))).unwrap();
    let opts = no_ssh_config();
    std::thread::scope(|s| {
        for server in &inventory.servers {
            let (opts, paths) = (&opts, &paths);
            let root = farm.server(&server.name).root.clone();
            s.spawn(move || {
                let mut t = farmkey::transport::connect(server, opts).unwrap();
                for round in 0..3 {
                    for (p, r) in paths.iter().zip(t.read_many(paths)) {
                        let local = fs::read(root.join(&p.as_sftp()[1..])).unwrap();
                        assert!(
                            r.unwrap()[..] == local[..],
                            "{} round {round}: {p}",
                            server.name
                        );
                    }
                }
                // Upward too: a large write, read back.
                let upload: Vec<u8> = (0..2_500_000usize).map(|k| (k * 13) as u8).collect();
                let target = RemotePath::parse("/C:/big/upload.bin").unwrap();
                t.create_new(&target, &upload, &Default::default()).unwrap();
                assert!(t.read(&target).unwrap()[..] == upload[..]);
                assert_eq!(fs::read(root.join("C:/big/upload.bin")).unwrap(), upload);
            });
        }
    });
    // All of it through one session.
    assert_eq!(
        gate.log().matches("Accepted publickey").count(),
        1,
        "{}",
        gate.log()
    );
}

#[test]
fn a_bastion_killed_mid_handshake_is_named_with_its_place_in_the_chain() {
    let ns = Netns::new();
    let (_demo, farm) = hidden_farm(&ns);
    let (mut gate, relay) = bastion(&farm, "gate", &ns, true);
    // A long timeout: the failure comes from the kill, never from a timeout.
    let defaults = farm
        .defaults()
        .replace("connect_timeout_secs = 3\n", "connect_timeout_secs = 60\n");
    let inventory = farm.inventory_with(&format!("{defaults}jump = \"{}\"\n", jump_to(&relay)), "");
    let port = farm.server("web01").port;
    // web01 sends no banner: its handshake waits, through the bastion.
    farm.server("web01").freeze();
    let web01: Vec<_> = Inventory::load(&inventory)
        .unwrap()
        .servers
        .into_iter()
        .filter(|s| s.name == "web01")
        .collect();
    let scanning = std::thread::spawn(move || scan_all(&web01, no_ssh_config(), 1));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !forwarded(&gate, port) {
        assert!(Instant::now() < deadline, "{}", gate.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = Instant::now();
    gate.kill();
    let scans = scanning.join().unwrap();
    farm.server("web01").thaw();
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "waited for a timeout"
    );
    let e = error_of(&scans, "web01");
    assert!(
        e.starts_with(&format!(
            "jump host 127.0.0.1 ({USER}@[127.0.0.1]:{}), hop 1 of 1 on the way to [127.0.0.1]:{port}, ended its session: ",
            relay.port
        )),
        "{e}"
    );
}

/// The Servers screen names the jump hosts a server is reached through.
#[test]
fn the_servers_screen_shows_the_jump_chain() {
    use support::pty::Pty;
    let ns = Netns::new();
    let (_demo, farm) = hidden_farm(&ns);
    let (_gate, relay) = bastion(&farm, "gate", &ns, true);
    let inventory = inventory_via(&farm, &jump_to(&relay));
    let t = Duration::from_secs(30);
    for (cols, rows) in [(80, 24), (60, 16)] {
        let mut p = Pty::farmkey(
            &[
                "-i",
                inventory.to_str().unwrap(),
                "--ssh-config",
                "/nonexistent",
            ],
            &[],
            cols,
            rows,
            farm.home.path(),
        );
        p.wait_for("servers 3 ok", t);
        p.send("2");
        let chain = format!("through 127.0.0.1 ({USER}@[127.0.0.1]:{})", relay.port);
        let s = p.wait_until("the Servers screen with the chain", t, |s| {
            s.contains("ADDRESS") && s.contains(&chain)
        });
        assert!(s.contains("web01"), "{cols}x{rows}: {s}");
        p.send("q");
        p.wait_exit(t);
    }
}

/// Servers of a wide farm, laid out from the demo farm's three in turn
/// (web03, web06, ... hold web03's keys, the odd one out of Flowtime).
const WIDE: usize = 20;
/// Sessions a jump host gets for [`WIDE`] servers read at once: one per
/// eight connections waiting for a channel.
const WIDE_LANES: usize = WIDE.div_ceil(8);
/// Each way between here and the first hop: the first session to it takes
/// seven round trips (at least 140 ms), long enough for every connection
/// of a scan to be waiting for a channel when it is up.
const HOP_DELAY: Duration = Duration::from_millis(10);

fn wide_farm() -> SshFarm {
    let demo = tempfile::tempdir().unwrap();
    farmkey::demo::lay_out(demo.path()).unwrap();
    let trees: Vec<(String, PathBuf)> = (0..WIDE)
        .map(|i| {
            (
                format!("web{:02}", i + 1),
                demo.path().join(farmkey::demo::SERVERS[i % 3]),
            )
        })
        .collect();
    SshFarm::start(&trees, Options::default())
}

/// The farm's inventory through `jump`, with a timeout that a loaded
/// machine does not reach, and `extra` in its defaults, as `name`.
fn wide_inventory(farm: &SshFarm, jump: &str, extra: &str, name: &str) -> PathBuf {
    let defaults = farm
        .defaults()
        .replace("connect_timeout_secs = 3\n", "connect_timeout_secs = 30\n");
    let written = farm.inventory_with(&format!("{defaults}jump = \"{jump}\"\n{extra}"), "");
    let path = farm.home.path().join(name);
    fs::rename(written, &path).unwrap();
    path
}

/// The `jump` to `gate` through `proxy` in front of it, its key trusted.
fn via(farm: &SshFarm, gate: &SshServer, proxy: &support::proxy::DelayProxy) -> String {
    farm.trust(proxy.port, &gate.host_key);
    format!("{USER}@127.0.0.1:{}", proxy.port)
}

/// Sessions the jump host has let in so far.
fn logins(hop: &SshServer) -> usize {
    hop.log().matches("Accepted publickey").count()
}

const NO_SSH_CONFIG: [&str; 2] = ["--ssh-config", "/nonexistent"];

#[test]
fn many_servers_behind_one_bastion_spread_over_several_sessions_and_a_push_takes_the_same() {
    let farm = wide_farm();
    let gate = farm.bastion("gate", None, true);
    let delayed = support::proxy::DelayProxy::start(gate.port, HOP_DELAY);
    let jump = via(&farm, &gate, &delayed);

    // The default --jobs reads all twenty at once: they share three
    // sessions to the bastion, nothing to note.
    let inventory = wide_inventory(&farm, &jump, "", "wide.toml");
    let json = scan_json(&farm, &inventory, &NO_SSH_CONFIG);
    assert!(all_reachable(&json), "{json}\n{}", gate.log());
    assert!(json.get("notes").is_none(), "{json}");
    assert_eq!(logins(&gate), WIDE_LANES, "{}", gate.log());
    for s in &farm.servers {
        assert!(forwarded(&gate, s.port), "{}: {}", s.name, gate.log());
    }

    // jump_sessions bounds them.
    let two = wide_inventory(&farm, &jump, "jump_sessions = 2\n", "two.toml");
    let before = logins(&gate);
    let json = scan_json(&farm, &two, &NO_SSH_CONFIG);
    assert!(all_reachable(&json), "{json}\n{}", gate.log());
    assert_eq!(logins(&gate) - before, 2, "{}", gate.log());

    // A push (its scan, then its own connection to every server) goes over
    // the sessions its scan opened: three processes (scan, push, scan),
    // three sessions each.
    let before = logins(&gate);
    push_and_check(&farm, &inventory, &NO_SSH_CONFIG);
    assert_eq!(logins(&gate) - before, 3 * WIDE_LANES, "{}", gate.log());
}

#[test]
fn a_bastion_that_refuses_more_sessions_keeps_those_it_took_and_the_scan_says_so() {
    let farm = wide_farm();
    let gate = farm.bastion("gate", None, true);
    // Two connections at a time get through; a third is closed at once.
    let limited = support::proxy::DelayProxy::admitting(gate.port, HOP_DELAY, 2);
    let inventory = wide_inventory(&farm, &via(&farm, &gate, &limited), "", "wide.toml");

    let json = scan_json(&farm, &inventory, &NO_SSH_CONFIG);
    assert!(all_reachable(&json), "{json}\n{}", gate.log());
    assert_eq!(logins(&gate), 2, "{}", gate.log());
    let notes = json["notes"].as_array().expect("a note");
    assert_eq!(notes.len(), 1, "{json}");
    let note = &notes[0];
    assert_eq!(note["code"], "fewer-jump-sessions", "{note}");
    assert_eq!(
        note["hop"],
        format!("jump host 127.0.0.1 ({USER}@[127.0.0.1]:{})", limited.port),
        "{note}"
    );
    assert_eq!(
        (note["accepted"].as_u64(), note["wanted"].as_u64()),
        (Some(2), Some(WIDE_LANES as u64)),
        "{note}"
    );
    let message = note["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "accepted 2 of {WIDE_LANES} sessions; the servers behind it went through those (the next was refused: "
        )),
        "{message}"
    );

    // Once a scan's sessions are closed, the proxy lets two in again.
    let closed = || {
        let until = Instant::now() + Duration::from_secs(30);
        while limited.open_connections() > 0 {
            assert!(Instant::now() < until, "a scan's sessions stay open");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // The console hears it before the last server's result.
    closed();
    let inv = Inventory::load(&inventory).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    farmkey::farm::spawn_scan(
        inv.servers.into_iter().enumerate().collect(),
        no_ssh_config(),
        farmkey::farm::DEFAULT_JOBS,
        tx,
        |e| e,
    );
    let (mut finished, mut heard) = (0, None);
    while finished < WIDE {
        match rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the scan goes on")
        {
            farmkey::farm::ScanEvent::Finished { .. } => finished += 1,
            farmkey::farm::ScanEvent::Notes(notes) => heard = Some((finished, notes)),
            farmkey::farm::ScanEvent::ScanStage { .. } => {}
        }
    }
    let (after, notes) = heard.expect("the scan's notes");
    assert_eq!(after, WIDE - 1, "the notes come before the last result");
    assert_eq!(notes.len(), 1, "{notes:?}");
    // Its reason is the refused connection's error, as this run saw it.
    let farmkey::transport::ReachNote::FewerJumpSessions {
        hop,
        accepted,
        wanted,
        ..
    } = &notes[0];
    assert_eq!(
        (hop.as_str(), *accepted, *wanted),
        (note["hop"].as_str().unwrap(), 2, WIDE_LANES),
        "{notes:?}"
    );

    // The table says it too, after the findings.
    closed();
    let out = farm
        .farmkey()
        .args(["scan", "--batch", "-i"])
        .arg(&inventory)
        .args(NO_SSH_CONFIG)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("\nnote: jump host 127.0.0.1"), "{table}");
    assert!(
        table.contains(&format!("accepted 2 of {WIDE_LANES} sessions")),
        "{table}"
    );
}

#[test]
fn a_bastion_whose_max_startups_drops_extra_sessions_serves_all_servers_through_those_it_took() {
    let farm = wide_farm();
    // OpenSSH drops every connection beyond one that has not logged in
    // yet (sshd.c, should_drop_connection and drop_connection): of the two
    // extra sessions, opened side by side, one gets in.
    let gate = farm.bastion_starting("gate", None, true, "1:100:1");
    let delayed = support::proxy::DelayProxy::start(gate.port, HOP_DELAY);
    let inventory = wide_inventory(&farm, &via(&farm, &gate, &delayed), "", "wide.toml");
    let json = scan_json(&farm, &inventory, &NO_SSH_CONFIG);
    assert!(all_reachable(&json), "{json}\n{}", gate.log());
    // sshd.c logs each one it drops.
    assert!(gate.log().contains("past MaxStartups"), "{}", gate.log());
    assert_eq!(logins(&gate), 2, "{}", gate.log());
    let note = &json["notes"][0];
    assert_eq!(
        (note["accepted"].as_u64(), note["wanted"].as_u64()),
        (Some(2), Some(WIDE_LANES as u64)),
        "{json}"
    );
}

#[test]
fn a_chain_of_two_takes_several_sessions_to_its_last_hop_through_one_to_its_first() {
    let farm = wide_farm();
    let hop1 = farm.bastion("hop1", None, true);
    let to_hop1 = support::proxy::DelayProxy::start(hop1.port, HOP_DELAY);
    // hop2 is reached from hop1 at its own port.
    let hop2 = farm.bastion("hop2", None, true);
    farm.trust(to_hop1.port, &hop1.host_key);
    farm.trust(hop2.port, &hop2.host_key);
    let chain = format!(
        "{USER}@127.0.0.1:{},{USER}@127.0.0.1:{}",
        to_hop1.port, hop2.port
    );
    let inventory = wide_inventory(&farm, &chain, "", "wide.toml");

    let json = scan_json(&farm, &inventory, &NO_SSH_CONFIG);
    assert!(
        all_reachable(&json),
        "{json}\n{}\n{}",
        hop1.log(),
        hop2.log()
    );
    assert!(json.get("notes").is_none(), "{json}");
    assert_eq!(logins(&hop2), WIDE_LANES, "{}", hop2.log());
    // hop2's sessions are channels of one session to hop1.
    assert_eq!(logins(&hop1), 1, "{}", hop1.log());
    for s in &farm.servers {
        assert!(forwarded(&hop2, s.port), "{}: {}", s.name, hop2.log());
    }
}
