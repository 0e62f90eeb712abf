//! farmkey over SSH against real OpenSSH servers on loopback.

mod support;

use farmkey::analysis::{FarmReport, NotRead, Selection, SiteVerdict, analyze};
use farmkey::farm::scan_all;
use farmkey::inventory::Inventory;
use farmkey::transport::{
    ConnectOptions, HostKeyDecision, HostKeyQuestion, Prompter, SecretQuestion,
};
use predicates::prelude::PredicateBooleanExt;
use secrecy::SecretString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::sshd::{Options, SshFarm, demo_over_ssh};
use support::*;

fn no_ssh_config() -> ConnectOptions {
    ConnectOptions {
        ssh_config: Some(PathBuf::from("/nonexistent/ssh_config")),
        ..Default::default()
    }
}

/// `farmkey scan --format json` as a process, in the farm's client home.
fn scan_json(
    farm: &SshFarm,
    args: &[&str],
    inventory: &Path,
    env: &[(&str, &Path)],
) -> (i32, serde_json::Value) {
    let mut cmd = farm.farmkey();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .args(["scan", "--format", "json", "--ssh-config", "/nonexistent"])
        .args(args)
        .arg("-i")
        .arg(inventory)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

fn scan_with(inventory: &Path, opts: ConnectOptions, selection: &Selection) -> FarmReport {
    let inv = Inventory::load(inventory).unwrap();
    analyze(&scan_all(&inv.servers, opts, 16), selection)
}

fn assert_all_reachable(report: &FarmReport) {
    assert!(
        report.servers.iter().all(|s| s.reachable),
        "{:?}",
        report.servers
    );
}

/// Site, server, key group and fingerprints of every instance.
fn instances(report: &FarmReport) -> Vec<String> {
    report
        .sites
        .iter()
        .flat_map(|s| {
            s.instances.iter().map(move |i| {
                let eff = i.effective.as_ref().map_err(|e| e.to_string());
                let keys = eff.as_ref().map(|e| {
                    (
                        e.machine_key.validation_key_state().fingerprint(),
                        e.machine_key.decryption_key_state().fingerprint(),
                        e.handler.state.name(),
                        e.machine_key.validation_key.source.to_string(),
                    )
                });
                format!("{} {} {:?} {:?}", s.site, i.server, i.key_group, keys)
            })
        })
        .collect()
}

#[test]
fn drift_over_ssh_matches_the_same_farm_read_locally() {
    let (demo, farm) = demo_over_ssh(Options::default());
    let local = scan_inventory(&demo.inventory.path, &all_sites());
    let remote = scan_with(&farm.inventory(""), no_ssh_config(), &all_sites());
    assert!(
        remote
            .servers
            .iter()
            .all(|s| s.reachable && s.error.is_none()),
        "{:?}\n{}",
        remote.servers,
        farm.logs()
    );
    assert_eq!(finding_rows(&remote), finding_rows(&local));
    assert_eq!(instances(&remote), instances(&local));
    // D: drive and "Program Files" with a space were read over SFTP.
    let admin = remote.site("Sequence Administration").unwrap();
    assert_eq!(
        admin.instances[0].config_path.as_ref().unwrap().to_string(),
        "D:\\Cora\\Administration\\web.config"
    );
    let togo = remote.site("Process TOGO").unwrap();
    assert!(togo.instances[0].effective.is_ok());
}

#[test]
fn unknown_host_is_refused_with_its_fingerprint_then_accepted_with_accept_new() {
    let (_demo, farm) = demo_over_ssh(Options {
        trust_host_keys: false,
        ..Default::default()
    });
    let inv = farm.inventory("");
    let (code, json) = scan_json(&farm, &[], &inv, &[]);
    assert_eq!(code, 1);
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 3);
    let web01 = farm.server("web01");
    let expected_fp = {
        let o = std::process::Command::new("ssh-keygen")
            .args(["-lf", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        o.stdin
            .as_ref()
            .unwrap()
            .write_all(web01.host_key.as_bytes())
            .unwrap();
        let out = o.wait_with_output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    let msg = findings[0]["message"].as_str().unwrap();
    assert_eq!(findings[0]["code"], "unreachable");
    assert!(
        msg.contains(&expected_fp),
        "{msg} should hold {expected_fp}"
    );
    assert!(
        msg.contains("--accept-new") && msg.contains("not in"),
        "{msg}"
    );
    assert!(
        !farm.known_hosts.exists() || fs::read_to_string(&farm.known_hosts).unwrap().is_empty()
    );

    let (_, json) = scan_json(&farm, &["--accept-new"], &inv, &[]);
    assert!(
        json["servers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["reachable"] == true),
        "{json}"
    );
    let stored = fs::read_to_string(&farm.known_hosts).unwrap();
    for s in &farm.servers {
        assert!(
            stored.contains(&format!("[127.0.0.1]:{} {}", s.port, s.host_key)),
            "{stored}"
        );
    }
    // Stored keys now match without --accept-new.
    farm.farmkey()
        .args(["scan", "--ssh-config", "/nonexistent", "-i"])
        .arg(&inv)
        .assert()
        .code(1)
        .stdout(predicates::str::contains("unreachable").not());
}

#[test]
fn a_changed_host_key_is_refused_and_never_replaced() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let web02 = farm.server("web02");
    // Store another key for web02, as if it had been reinstalled.
    let other = farm.home.path().join("other_key");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    let other_pub = fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_pub: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    let kh = fs::read_to_string(&farm.known_hosts)
        .unwrap()
        .replace(&web02.host_key, &other_pub.join(" "));
    fs::write(&farm.known_hosts, &kh).unwrap();

    let report = scan_with(
        &farm.inventory(""),
        ConnectOptions {
            accept_new: true,
            ..no_ssh_config()
        },
        &Selection::default(),
    );
    let web02_status = report.servers.iter().find(|s| s.name == "web02").unwrap();
    assert!(!web02_status.reachable);
    let err = web02_status.error.as_ref().unwrap().to_string();
    assert!(
        err.contains("HAS CHANGED") && err.contains("man-in-the-middle"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(&farm.known_hosts).unwrap(),
        kh,
        "known_hosts must not change"
    );
    assert!(
        report
            .servers
            .iter()
            .filter(|s| s.name != "web02")
            .all(|s| s.reachable)
    );
    // Refused, not merely unreachable: every site unverified on it, saying so.
    assert!(!report.sites.is_empty());
    for site in &report.sites {
        assert_ne!(site.verdict(), SiteVerdict::InStep, "{}", site.site);
        let why = &site
            .unverified
            .iter()
            .find(|u| u.server == "web02")
            .unwrap()
            .why;
        assert!(
            matches!(
                why,
                NotRead::HostKeyRefused(e)
                    if matches!(**e, farmkey::transport::ssh::ConnectError::HostKeyChanged { .. })
            ),
            "{why:?}"
        );
        assert!(
            why.to_string().starts_with("host key refused: WARNING"),
            "{why}"
        );
    }
}

#[test]
fn hashed_known_hosts_entries_match() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let status = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&farm.known_hosts)
        .output()
        .unwrap();
    assert!(status.status.success());
    let kh = fs::read_to_string(&farm.known_hosts).unwrap();
    assert!(kh.starts_with("|1|") && !kh.contains("127.0.0.1"), "{kh}");
    let report = scan_with(&farm.inventory(""), no_ssh_config(), &Selection::default());
    assert_all_reachable(&report);
}

#[test]
fn a_stored_rsa_key_is_preferred_over_a_newer_ed25519_one() {
    let (_demo, farm) = demo_over_ssh(Options {
        rsa_known_only: true,
        ..Default::default()
    });
    assert!(
        fs::read_to_string(&farm.known_hosts)
            .unwrap()
            .contains("ssh-rsa")
    );
    let report = scan_with(&farm.inventory(""), no_ssh_config(), &Selection::default());
    assert_all_reachable(&report);
}

#[test]
fn closed_port_and_frozen_server_are_unreachable_within_the_timeout() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    farm.server("web03").freeze();
    let closed = support::sshd::free_port();
    let inv = farm.inventory(&format!(
        "\n[[servers]]\nname = \"web04\"\nhost = \"127.0.0.1\"\nport = {closed}\n"
    ));
    let start = Instant::now();
    let report = scan_with(&inv, no_ssh_config(), &Selection::default());
    let took = start.elapsed();
    farm.server("web03").thaw();
    // connect_timeout_secs = 3 in the harness inventory
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let status = |n: &str| report.servers.iter().find(|s| s.name == n).unwrap().clone();
    assert!(status("web01").reachable && status("web02").reachable);
    let frozen = status("web03");
    assert!(!frozen.reachable);
    assert!(
        frozen
            .error
            .as_ref()
            .unwrap()
            .to_string()
            .contains("within 3s"),
        "{:?}",
        frozen.error
    );
    let refused = status("web04");
    assert!(
        refused
            .error
            .as_ref()
            .unwrap()
            .to_string()
            .contains("connection refused"),
        "{:?}",
        refused.error
    );
    let unreachable: Vec<_> = finding_rows(&report)
        .into_iter()
        .filter(|r| r.0 == "unreachable")
        .collect();
    assert_eq!(
        unreachable,
        vec![
            row("unreachable", "error", "(farm)", "web03"),
            row("unreachable", "error", "(farm)", "web04")
        ]
    );
    // The other servers' sites are reported normally, none in step: the
    // server that timed out and the one that refused may host each.
    assert_eq!(report.site("Flowtime").unwrap().instances.len(), 2);
    for site in &report.sites {
        assert_ne!(site.verdict(), SiteVerdict::InStep, "{}", site.site);
        assert_eq!(
            site.unverified_on().collect::<Vec<_>>(),
            ["web03", "web04"],
            "{}",
            site.site
        );
    }
}

/// A farm in step over SSH until one sshd goes away: then no site is
/// consistent, each is unverified on it, and `scan` exits 1.
#[test]
fn a_server_whose_sshd_is_gone_leaves_every_site_unverified() {
    let fixture = farm_fixture("consistent");
    let mut farm = SshFarm::from_fixture(&fixture, &["web01", "web02"], Options::default());
    let inv = farm.inventory("");
    let (code, json) = scan_json(&farm, &[], &inv, &[]);
    assert_eq!(code, 0, "{json}");
    for site in json["sites"].as_array().unwrap() {
        assert_eq!(site["consistent"], true, "{site}");
    }

    farm.server_mut("web02").kill();
    let (code, json) = scan_json(&farm, &[], &inv, &[]);
    assert_eq!(code, 1, "{json}");
    assert_eq!(json["servers"][1]["reachable"], false);
    let sites = json["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 2, "{json}");
    for site in sites {
        assert_eq!(site["consistent"], serde_json::Value::Null, "{site}");
        assert_eq!(
            site["unverified_on"],
            serde_json::json!(["web02"]),
            "{site}"
        );
    }
    let report = scan_with(&inv, no_ssh_config(), &Selection::default());
    for site in &report.sites {
        assert_eq!(site.verdict(), SiteVerdict::Unverified, "{}", site.site);
        assert!(
            matches!(&site.unverified[0].why, NotRead::Unreachable(why) if why.to_string().contains("connection refused")),
            "{:?}",
            site.unverified
        );
    }
}

#[test]
fn dns_failure_has_its_own_message() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let inv = farm.inventory("\n[[servers]]\nname = \"ghost\"\nhost = \"no-such-host.invalid\"\n");
    let report = scan_with(&inv, no_ssh_config(), &Selection::default());
    let ghost = report.servers.iter().find(|s| s.name == "ghost").unwrap();
    assert!(
        ghost
            .error
            .as_ref()
            .unwrap()
            .to_string()
            .contains("cannot resolve host name \"no-such-host.invalid\""),
        "{:?}",
        ghost.error
    );
}

#[test]
fn a_wrong_key_names_what_was_tried_and_what_the_server_offered() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let wrong = farm.home.path().join("wrong_key");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&wrong)
        .status()
        .unwrap();
    let defaults = farm.defaults().replace(
        &farm.identity.display().to_string(),
        &wrong.display().to_string(),
    );
    let inv = farm.inventory_with(&defaults, "");
    let (_, json) = scan_json(&farm, &["--batch"], &inv, &[]);
    let err = json["servers"][0]["error"].as_str().unwrap();
    assert!(
        err.starts_with("authentication failed for farmkeytest@[127.0.0.1]:"),
        "{err}"
    );
    assert!(
        err.contains("key ~/wrong_key (refused)") || err.contains("wrong_key (refused)"),
        "{err}"
    );
    assert!(err.contains("the server offered publickey"), "{err}");
    assert!(
        !err.to_lowercase().contains("password ("),
        "no password method was offered: {err}"
    );
}

#[test]
fn an_unreadable_file_is_reported_for_its_server_only() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let file = farm
        .server("web02")
        .file("C:/inetpub/Cora/Flowtime/web.config");
    fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let report = scan_with(&farm.inventory(""), no_ssh_config(), &Selection::default());
    let site = report.site("Flowtime").unwrap();
    let unreadable: Vec<_> = site
        .findings
        .iter()
        .filter(|f| f.code.name() == "unreadable")
        .collect();
    assert_eq!(unreadable.len(), 1);
    assert_eq!(unreadable[0].servers, ["web02"]);
    assert!(
        unreadable[0]
            .message
            .contains("C:\\inetpub\\Cora\\Flowtime\\web.config: permission denied"),
        "{}",
        unreadable[0].message
    );
    assert!(site.instance("web01").unwrap().effective.is_ok());
}

#[test]
fn ssh_config_aliases_resolve() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let mut config = String::new();
    let mut inv = format!(
        "[defaults]\nknown_hosts = \"{}\"\n",
        farm.known_hosts.display()
    );
    for s in &farm.servers {
        config.push_str(&format!(
            "Host {n}.farm\n    HostName 127.0.0.1\n    Port {p}\n    User {u}\n    IdentityFile {id}\n    ConnectTimeout 3\n\n",
            n = s.name,
            p = s.port,
            u = support::sshd::USER,
            id = farm.identity.display()
        ));
        inv.push_str(&format!(
            "\n[[servers]]\nname = \"{n}\"\nhost = \"{n}.farm\"\n",
            n = s.name
        ));
    }
    let config_path = farm.home.path().join(".ssh").join("config");
    fs::write(&config_path, &config).unwrap();
    let inv_path = farm.home.path().join("alias.toml");
    fs::write(&inv_path, inv).unwrap();
    // The binary reads ~/.ssh/config of its HOME.
    farm.farmkey()
        .args(["scan", "--batch", "-i"])
        .arg(&inv_path)
        .assert()
        .code(1)
        .stdout(predicates::str::contains("key-mismatch"))
        .stdout(predicates::str::contains("unreachable").not());
    // import-ssh-config writes an inventory for those aliases.
    let out = farm
        .farmkey()
        .args(["import-ssh-config", "--match", "*.farm"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("[[servers]]").count(), 3, "{text}");
    assert!(
        text.contains("name = \"web01.farm\"\nhost = \"web01.farm\""),
        "{text}"
    );
}

#[test]
fn agent_authentication_with_a_real_ssh_agent() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let sock = farm.home.path().join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // An unrelated key first: every identity must be tried, not only the first.
    let decoy = farm.home.path().join("decoy");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&decoy)
        .status()
        .unwrap();
    for key in [&decoy, &farm.identity] {
        let ok = std::process::Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &sock)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }
    // The inventory names no key and the key file is gone: only the agent can log in.
    let moved = farm.home.path().join("moved_key");
    fs::rename(&farm.identity, &moved).unwrap();
    let defaults = format!(
        "[defaults]\nuser = \"{}\"\nknown_hosts = \"{}\"\nconnect_timeout_secs = 3\n",
        support::sshd::USER,
        farm.known_hosts.display()
    );
    let inv = farm.inventory_with(&defaults, "");
    let (_, json) = scan_json(
        &farm,
        &["--batch"],
        &inv,
        &[("SSH_AUTH_SOCK", sock.as_path())],
    );
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(
        json["servers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["reachable"] == true),
        "{json}"
    );
    // Without the agent the same inventory fails, and says what it tried.
    let (_, json) = scan_json(&farm, &["--batch"], &inv, &[]);
    let err = json["servers"][0]["error"].as_str().unwrap();
    assert!(err.contains("tried nothing usable"), "{err}");
}

/// Answers questions from a script and records them.
struct Scripted {
    answers: Mutex<Vec<&'static str>>,
    asked: Mutex<Vec<String>>,
}

impl Prompter for Scripted {
    fn secret(&self, q: &SecretQuestion) -> Option<SecretString> {
        self.asked.lock().unwrap().push(q.prompt());
        let mut a = self.answers.lock().unwrap();
        (!a.is_empty()).then(|| SecretString::from(a.remove(0).to_string()))
    }
    fn unknown_host(&self, _q: &HostKeyQuestion) -> Option<HostKeyDecision> {
        Some(HostKeyDecision::Refuse)
    }
}

#[test]
fn passwords_are_asked_once_for_a_farm_and_wrong_ones_say_so() {
    let (_demo, farm) = demo_over_ssh(Options {
        password_auth: true,
        ..Default::default()
    });
    let defaults = format!(
        "[defaults]\nuser = \"{}\"\nidentity_file = \"/nonexistent/key\"\nknown_hosts = \"{}\"\nconnect_timeout_secs = 3\n",
        support::sshd::USER,
        farm.known_hosts.display()
    );
    let inv = farm.inventory_with(&defaults, "");
    let prompter = Arc::new(Scripted {
        answers: Mutex::new(vec![support::sshd::password()]),
        asked: Mutex::new(vec![]),
    });
    let opts = ConnectOptions {
        batch: false,
        prompter: Some(prompter.clone()),
        ..no_ssh_config()
    };
    let report = scan_with(&inv, opts, &Selection::default());
    assert_all_reachable(&report);
    let asked = prompter.asked.lock().unwrap().clone();
    assert_eq!(
        asked.len(),
        1,
        "one service account, one question: {asked:?}"
    );
    assert!(
        asked[0].contains("password for farmkeytest@127.0.0.1"),
        "{asked:?}"
    );

    let wrong = Arc::new(Scripted {
        answers: Mutex::new(vec!["nope", "nope", "nope"]),
        asked: Mutex::new(vec![]),
    });
    let inv_one = farm.inventory_with(&defaults, "");
    let inv_one = {
        // Only the first server, to count its questions.
        let text = fs::read_to_string(&inv_one).unwrap();
        let first: String = text
            .split("\n[[servers]]")
            .take(2)
            .collect::<Vec<_>>()
            .join("\n[[servers]]");
        let p = farm.home.path().join("one.toml");
        fs::write(&p, first).unwrap();
        p
    };
    let report = scan_with(
        &inv_one,
        ConnectOptions {
            batch: false,
            prompter: Some(wrong.clone()),
            ..no_ssh_config()
        },
        &Selection::default(),
    );
    let err = report.servers[0].error.clone().unwrap().to_string();
    assert!(err.contains("password (rejected 3 times)"), "{err}");
    assert!(
        err.contains("key /nonexistent/key (file not found)"),
        "{err}"
    );
    assert!(!err.contains("nope"));
    assert_eq!(wrong.asked.lock().unwrap().len(), 3);

    // --batch never asks.
    let report = scan_with(&inv_one, no_ssh_config(), &Selection::default());
    let err = report.servers[0].error.clone().unwrap().to_string();
    assert!(err.contains("password (not asked: --batch)"), "{err}");
}

#[test]
fn passphrase_protected_keys_are_asked_for_once() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    // Re-protect the client key with a passphrase.
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-p", "-N", "correct horse", "-P", "", "-f"])
        .arg(&farm.identity)
        .status()
        .unwrap();
    assert!(status.success());
    let inv = farm.inventory("");
    let prompter = Arc::new(Scripted {
        answers: Mutex::new(vec!["wrong", "correct horse"]),
        asked: Mutex::new(vec![]),
    });
    let report = scan_with(
        &inv,
        ConnectOptions {
            batch: false,
            prompter: Some(prompter.clone()),
            ..no_ssh_config()
        },
        &Selection::default(),
    );
    assert_all_reachable(&report);
    let asked = prompter.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[0].contains("passphrase for key"), "{asked:?}");

    let report = scan_with(&inv, no_ssh_config(), &Selection::default());
    let err = report.servers[0].error.clone().unwrap().to_string();
    assert!(
        err.contains("farm_ed25519 (needs a passphrase, not asked: --batch)"),
        "{err}"
    );
}

#[test]
fn mixed_case_paths_and_unc_physical_paths() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    // web01's folder is spelled differently from applicationHost.config.
    let server = farm.server("web01");
    fs::rename(
        server.root.join("C:/inetpub/Cora/Flowtime"),
        server.root.join("C:/inetpub/Cora/FLOWTIME"),
    )
    .unwrap();
    // web02's Process TOGO lives on a file share.
    let apphost = farm
        .server("web02")
        .file("C:/Windows/System32/inetsrv/config/applicationHost.config");
    let text = fs::read_to_string(&apphost).unwrap().replace(
        "%ProgramFiles%\\PNMsoft\\Process TOGO",
        "\\\\fileserver\\cora\\Process TOGO",
    );
    assert!(text.contains("fileserver"));
    fs::write(&apphost, text).unwrap();
    let report = scan_with(&farm.inventory(""), no_ssh_config(), &Selection::default());
    let flowtime = report.site("Flowtime").unwrap().instance("web01").unwrap();
    let eff = flowtime.effective.as_ref().unwrap();
    assert_eq!(
        eff.machine_key.validation_key.source.to_string(),
        "C:\\inetpub\\Cora\\FLOWTIME\\web.config"
    );
    let togo = report.site("Process TOGO").unwrap();
    let f = togo
        .findings
        .iter()
        .find(|f| f.code.name() == "unreadable")
        .unwrap();
    assert_eq!(f.servers, ["web02"]);
    assert!(f.message.contains("UNC path"), "{}", f.message);
}

#[test]
fn pipelined_reads_return_exactly_the_bytes_of_every_file() {
    use farmkey::paths::RemotePath;
    use farmkey::transport::Transport;
    use farmkey::transport::ssh::SshTransport;
    let (_demo, farm) = demo_over_ssh(Options::default());
    let server = farm.server("web01");
    // Files of every size around libssh2's read-ahead, a missing one and a
    // forbidden one, in one batch.
    let dir = server.root.join("C:/big");
    fs::create_dir_all(&dir).unwrap();
    let mut names = Vec::new();
    for (i, size) in [
        0usize, 1, 29_999, 30_000, 30_001, 262_144, 262_145, 700_001, 1_600_000,
    ]
    .iter()
    .enumerate()
    {
        let bytes: Vec<u8> = (0..*size).map(|k| (k * 7 + i) as u8).collect();
        let name = format!("f{i}.bin");
        fs::write(dir.join(&name), bytes).unwrap();
        names.push(name);
    }
    fs::write(dir.join("secret.bin"), b"x").unwrap();
    fs::set_permissions(
        dir.join("secret.bin"),
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .unwrap();
    let uid = std::process::Command::new("id")
        .args(["-u", support::sshd::USER])
        .output()
        .unwrap();
    let uid: u32 = String::from_utf8_lossy(&uid.stdout).trim().parse().unwrap();
    for e in fs::read_dir(&dir).unwrap() {
        std::os::unix::fs::chown(e.unwrap().path(), Some(uid), None).unwrap();
    }
    let mut paths: Vec<RemotePath> = names
        .iter()
        .map(|n| RemotePath::parse(&format!("/C:/big/{n}")).unwrap())
        .collect();
    paths.insert(3, RemotePath::parse("/C:/big/missing.bin").unwrap());
    paths.insert(6, RemotePath::parse("/C:/big/secret.bin").unwrap());
    let inv = Inventory::load(&farm.inventory("")).unwrap();
    let farmkey::inventory::Target::Ssh { host, settings } = &inv.servers[0].target else {
        panic!()
    };
    let mut t = SshTransport::connect("web01", host, settings, &no_ssh_config()).unwrap();
    for round in 0..15 {
        let results = t.read_many(&paths);
        for (p, r) in paths.iter().zip(&results) {
            let local = server.root.join(&p.as_sftp()[1..]);
            match p.file_name().unwrap() {
                "missing.bin" => assert!(r.as_ref().unwrap_err().is_not_found(), "{r:?}"),
                "secret.bin" => assert!(
                    matches!(
                        r,
                        Err(farmkey::transport::TransportError::PermissionDenied { .. })
                    ),
                    "{r:?}"
                ),
                _ => assert_eq!(
                    &r.as_ref().unwrap()[..],
                    &fs::read(&local).unwrap()[..],
                    "round {round}: {p:?}"
                ),
            }
        }
    }
    // The session is still usable for ordinary calls afterwards.
    assert!(t.stat(&paths[0]).unwrap().is_some());
}

/// Sections kept in other files (a second round of reads, only on the
/// servers that name some) and UTF-16 files read over SFTP as locally.
#[test]
fn config_source_and_utf16_farms_over_ssh_match_local() {
    for name in ["config-source", "utf16", "locks"] {
        let fixture = farm_fixture(name);
        let farm = SshFarm::from_fixture(&fixture, &["web01", "web02"], Options::default());
        let local = scan_inventory(&fixture.join("farmkey.toml"), &all_sites());
        let remote = scan_with(&farm.inventory(""), no_ssh_config(), &all_sites());
        assert_all_reachable(&remote);
        assert_eq!(finding_rows(&remote), finding_rows(&local), "{name}");
        assert_eq!(instances(&remote), instances(&local), "{name}");
        let messages = |r: &FarmReport| -> Vec<String> {
            r.all_findings().map(|f| f.message.clone()).collect()
        };
        assert_eq!(messages(&remote), messages(&local), "{name}");
    }
}

#[test]
fn create_new_is_exclusive_never_follows_links_and_sends_only_the_mode_asked() {
    use farmkey::paths::RemotePath;
    use farmkey::transport::ssh::SshTransport;
    use farmkey::transport::{NewFile, Transport, TransportError};
    // With the server's umask at 0, a file created without a mode gets the
    // server's own default (0666); one created with a mode keeps it.
    let (_demo, farm) = demo_over_ssh(Options {
        sftp_flags: " -u 0000",
        ..Options::default()
    });
    let server = farm.server("web01");
    let inv = Inventory::load(&farm.inventory("")).unwrap();
    let farmkey::inventory::Target::Ssh { host, settings } = &inv.servers[0].target else {
        panic!()
    };
    let mut t = SshTransport::connect("web01", host, settings, &no_ssh_config()).unwrap();
    assert!(
        t.banner().is_some_and(|b| b.starts_with("SSH-2.0-OpenSSH")),
        "{:?}",
        t.banner()
    );
    let p = RemotePath::parse("/C:/inetpub/new.farmkey-lock.config").unwrap();
    t.create_new(&p, b"first", &NewFile::default()).unwrap();
    let err = t
        .create_new(&p, b"second", &NewFile::OWNER_ONLY)
        .unwrap_err();
    assert!(matches!(err, TransportError::Exists { .. }), "{err}");
    assert_eq!(&t.read(&p).unwrap()[..], b"first");
    // A dangling link is neither followed nor replaced.
    let local = server.root.join("C:/inetpub");
    std::os::unix::fs::symlink("/C:/inetpub/target.config", local.join("link.config")).unwrap();
    let link = RemotePath::parse("/C:/inetpub/link.config").unwrap();
    let err = t.create_new(&link, b"x", &NewFile::OWNER_ONLY).unwrap_err();
    assert!(matches!(err, TransportError::Exists { .. }), "{err}");
    assert!(!local.join("target.config").exists());
    // No attributes go with a plain open: the server applies its own
    // default mode. A mode asked is set exactly (0640, not the 0666 the
    // umask would leave), and the owner where the account may: this one
    // may not give files away, so the file stays its own.
    let me = fs::metadata(local.join("new.farmkey-lock.config")).unwrap();
    let staged = NewFile {
        mode: Some(0o640),
        owner: Some((0, 0)),
    };
    for (name, new) in [
        ("backup.config", NewFile::OWNER_ONLY),
        ("staged.config", staged),
    ] {
        let path = RemotePath::parse(&format!("/C:/inetpub/{name}")).unwrap();
        t.create_new(&path, b"keys", &new).unwrap();
        let st = t.stat(&path).unwrap().unwrap();
        assert_eq!((st.uid, st.gid), (Some(me.uid()), Some(me.gid())));
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for (name, want) in [
        ("new.farmkey-lock.config", 0o666),
        ("backup.config", 0o600),
        ("staged.config", 0o640),
    ] {
        let mode = fs::metadata(local.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, want, "{name}: {mode:o}");
        let st = t
            .stat(&RemotePath::parse(&format!("/C:/inetpub/{name}")).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(st.mode, Some(want), "{name}");
    }
}

/// Publicly disclosed keys read over SFTP wherever they are set (machine
/// and root web.config of both bitnesses, `<location>`, web.config, a
/// configSource file): the same findings, messages and JSON as locally.
#[test]
fn disclosed_keys_over_ssh_match_local() {
    let fixture = farm_fixture("disclosed");
    let farm = SshFarm::from_fixture(&fixture, &["web01", "web02"], Options::default());
    let local = scan_inventory(&fixture.join("farmkey.toml"), &all_sites());
    let remote = scan_with(&farm.inventory(""), no_ssh_config(), &all_sites());
    assert_all_reachable(&remote);
    assert_eq!(finding_rows(&remote), finding_rows(&local));
    assert_eq!(instances(&remote), instances(&local));
    let messages =
        |r: &FarmReport| -> Vec<String> { r.all_findings().map(|f| f.message.clone()).collect() };
    assert_eq!(messages(&remote), messages(&local));
    let disclosed: Vec<&str> = remote
        .sites
        .iter()
        .filter(|s| {
            s.findings
                .first()
                .is_some_and(|f| f.code.name() == "disclosed-key")
        })
        .map(|s| s.site.as_str())
        .collect();
    assert_eq!(
        disclosed,
        [
            "Default Web Site",
            "Flowtime",
            "Process TOGO",
            "Reports",
            "Sequence Administration"
        ]
    );

    // The process: exit 1, the key flags in the JSON, no key text.
    let inv = farm.inventory("");
    let (code, json) = scan_json(&farm, &["--all-sites"], &inv, &[]);
    assert_eq!(code, 1);
    assert_no_farm_key("disclosed", &json.to_string());
    let togo = json["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["site"] == "Process TOGO")
        .unwrap();
    assert_eq!(togo["consistent"], false);
    assert_eq!(togo["findings"][0]["code"], "disclosed-key");
    assert_eq!(togo["instances"][1]["decryption_key"]["disclosed"], true);
}

/// Small configuration files are read in few SFTP requests each (an
/// open, the read, one or two that find the end, a close), not some 35
/// (libssh2 asks four times a read's buffer ahead): a server that takes
/// 20 ms per request answers a scan of a few files within a second. Counted in the SFTP server's own log (`-l
/// DEBUG3`, to the syslog socket in its chroot, which the test reads).
#[test]
fn small_files_are_read_in_few_requests() {
    use farmkey::paths::RemotePath;
    use farmkey::transport::Transport;
    use farmkey::transport::ssh::SshTransport;
    let (_demo, farm) = demo_over_ssh(Options {
        sftp_flags: " -l DEBUG3",
        log_level: "DEBUG3",
        ..Options::default()
    });
    let server = farm.server("web01");
    let dev = server.root.join("dev");
    fs::create_dir_all(&dev).unwrap();
    let syslog = std::os::unix::net::UnixDatagram::bind(dev.join("log")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dev.join("log"), fs::Permissions::from_mode(0o666)).unwrap();
    // Read all along: a full socket would hold the server up.
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = syslog.recv(&mut buf) {
            sink.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    let inv = Inventory::load(&farm.inventory("")).unwrap();
    let farmkey::inventory::Target::Ssh { host, settings } = &inv.servers[0].target else {
        panic!()
    };
    let mut t = SshTransport::connect("web01", host, settings, &no_ssh_config()).unwrap();
    let files = [
        "C:/inetpub/Cora/Flowtime/web.config",
        "C:/Windows/System32/inetsrv/config/applicationHost.config",
    ];
    let paths: Vec<RemotePath> = files
        .iter()
        .map(|f| RemotePath::parse(f).unwrap())
        .collect();
    let want: Vec<Vec<u8>> = files
        .iter()
        .map(|f| fs::read(server.file(f)).unwrap())
        .collect();
    // Requests logged up to now, once every handle is closed; one per
    // request, by its first line.
    let requests = || {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let lines = log.lock().unwrap().clone();
            let opened = lines
                .iter()
                .filter(|l| l.contains(": request ") && l.contains(": open "))
                .count();
            let closed = lines
                .iter()
                .filter(|l| l.contains(": close handle"))
                .count();
            if (opened > 0 && opened == closed) || Instant::now() > deadline {
                log.lock().unwrap().clear();
                return lines
                    .into_iter()
                    .filter(|l| l.contains(": request ") && !l.contains(": sent "))
                    .collect::<Vec<_>>();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let reads = |r: &[String]| r.iter().filter(|l| l.contains(": read \"")).count();

    assert_eq!(&t.read(&paths[0]).unwrap()[..], &want[0][..]);
    let one = requests();
    assert!(reads(&one) <= 3 && one.len() <= 5, "{}", one.join("\n"));

    let many = t.read_many(&paths);
    for (got, want) in many.iter().zip(&want) {
        assert_eq!(&got.as_ref().unwrap()[..], &want[..]);
    }
    let two = requests();
    assert!(reads(&two) <= 6 && two.len() <= 10, "{}", two.join("\n"));
}

#[test]
fn a_lock_or_a_lock_claim_left_beside_a_web_config_is_reported_over_sftp() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let dir = |s: &str| farm.server(s).file("C:/inetpub/Cora/Flowtime");
    fs::write(dir("web01").join("web.farmkey-lock.config"), b"{}").unwrap();
    fs::write(
        dir("web03").join("web.farmkey-lock.20261126T112045Z-ab12.claim.config"),
        b"{}",
    )
    .unwrap();
    let report = scan_with(&farm.inventory(""), no_ssh_config(), &Selection::default());
    assert_all_reachable(&report);
    let site = report.site("Flowtime").unwrap();
    let left: Vec<_> = site
        .findings
        .iter()
        .filter(|f| f.code.name() == "lock-left")
        .map(|f| (f.servers.clone(), f.severity.name(), f.message.clone()))
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(
        (left[0].0.as_slice(), left[0].1),
        (&["web01".to_string()][..], "info")
    );
    assert!(
        left[0].2.contains(
            "a push's lock C:\\inetpub\\Cora\\Flowtime\\web.farmkey-lock.config is there"
        ),
        "{}",
        left[0].2
    );
    assert_eq!(left[1].0, ["web03"]);
    assert!(
        left[1].2.contains(
            "C:\\inetpub\\Cora\\Flowtime\\web.farmkey-lock.20261126T112045Z-ab12.claim.config is a lock claim"
        ),
        "{}",
        left[1].2
    );
    // The command line's JSON names both.
    let (_, json) = scan_json(&farm, &[], &farm.inventory(""), &[]);
    assert_eq!(
        json.to_string().matches("\"lock-left\"").count(),
        2,
        "{json}"
    );
}

/// A scan of one demo server behind a proxy that holds every chunk 400
/// ms each way: the round trips of each step (debug builds write the
/// steps with FARMKEY_TEST_STEPS), printed as README "Performance"
/// counts them (12; the floor is 13 without TCP, which the proxy answers
/// itself). Held to at most 14: the time a busy machine adds (key
/// exchange, process start) must not fail it, so up to 2.2 s of it is
/// allowed, while a file or a folder read one after the other (9 or 16
/// more round trips, as before) still fails it.
#[test]
fn a_scan_of_one_server_takes_the_floors_round_trips() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let server = farm.server("web01");
    let one_way = Duration::from_millis(400);
    let proxy = support::proxy::DelayProxy::start(server.port, one_way);
    farm.trust(proxy.port, &server.host_key);
    let inventory = farm.home.path().join("slow.toml");
    fs::write(
        &inventory,
        format!(
            "{}\n[[servers]]\nname = \"slow\"\nhost = \"127.0.0.1\"\nport = {}\n",
            farm.defaults()
                .replace("connect_timeout_secs = 3", "connect_timeout_secs = 30"),
            proxy.port
        ),
    )
    .unwrap();
    let out = farm
        .farmkey()
        .env("FARMKEY_TEST_STEPS", "1")
        .args(["scan", "--format", "json", "--batch", "--ssh-config"])
        .arg("/nonexistent")
        .arg("-i")
        .arg(&inventory)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["servers"][0]["reachable"], true, "{json}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let steps: Vec<(String, f64)> = stderr
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.strip_prefix("farmkey-step\t")?.split('\t').collect();
            Some((f[1].to_string(), f[2].parse().ok()?))
        })
        .collect();
    assert_eq!(
        steps.first().map(|s| s.0.as_str()),
        Some("start"),
        "{stderr}"
    );
    assert_eq!(steps.last().map(|s| s.0.as_str()), Some("read"), "{stderr}");
    // Each step's time less what the machine adds (CPU, scheduling): a
    // round trip is 800 ms here, a step's own work far less.
    let round_trips = |ms: f64| (ms / 800.0 + 0.25).floor() as u32;
    let mut table = String::new();
    for pair in steps.windows(2) {
        let ms = pair[1].1 - pair[0].1;
        table.push_str(&format!(
            "{:>3}  {:>6.0} ms  {}\n",
            round_trips(ms),
            ms,
            pair[1].0
        ));
    }
    let total = steps.last().unwrap().1 - steps[0].1;
    println!("{table}{:>3}  {total:>6.0} ms  in all", round_trips(total));
    assert!(round_trips(total) <= 14, "{table}");
}

/// `gather`: folders of every size around sftp-server's 100 names per
/// READDIR listed whole, a missing one as not found, each file read with
/// what `lstat` says of its name (a link as a link), all in one batch.
#[test]
fn gathered_folders_are_listed_whole_and_files_come_with_their_lstat() {
    use farmkey::paths::RemotePath;
    use farmkey::transport::ssh::SshTransport;
    use farmkey::transport::{FileKind, Transport};
    let (_demo, farm) = demo_over_ssh(Options::default());
    let server = farm.server("web01");
    let mut folders = Vec::new();
    let mut want: Vec<Vec<String>> = Vec::new();
    for n in [0usize, 1, 98, 99, 100, 101, 250] {
        let dir = server.root.join(format!("C:/many/d{n}"));
        fs::create_dir_all(&dir).unwrap();
        let mut names: Vec<String> = (0..n).map(|i| format!("web.{i:03}.config")).collect();
        for name in &names {
            fs::write(dir.join(name), b"<configuration/>").unwrap();
        }
        names.sort();
        want.push(names);
        folders.push(RemotePath::parse(&format!("/C:/many/d{n}")).unwrap());
    }
    folders.push(RemotePath::parse("/C:/many/none").unwrap());
    // Relative: the server's root is not the client's.
    std::os::unix::fs::symlink("d1/web.000.config", server.root.join("C:/many/link.config"))
        .unwrap();
    let files = [
        RemotePath::parse("/C:/many/d1/web.000.config").unwrap(),
        RemotePath::parse("/C:/many/link.config").unwrap(),
        RemotePath::parse("/C:/many/missing.config").unwrap(),
    ];
    let inv = Inventory::load(&farm.inventory("")).unwrap();
    let farmkey::inventory::Target::Ssh { host, settings } = &inv.servers[0].target else {
        panic!()
    };
    let mut t = SshTransport::connect("web01", host, settings, &no_ssh_config()).unwrap();
    for _ in 0..3 {
        let (fetched, lists) = t.gather(&files, &folders);
        for (list, want) in lists.iter().zip(&want) {
            let names: Vec<String> = list
                .as_ref()
                .unwrap()
                .iter()
                .map(|e| e.name.clone())
                .collect();
            assert_eq!(&names, want);
        }
        assert!(lists.last().unwrap().as_ref().unwrap_err().is_not_found());
        assert_eq!(&fetched[0].read.as_ref().unwrap()[..], b"<configuration/>");
        let kind = |i: usize| {
            fetched[i]
                .lstat
                .as_ref()
                .unwrap()
                .as_ref()
                .unwrap()
                .map(|s| s.kind)
        };
        assert_eq!(kind(0), Some(FileKind::Regular));
        assert_eq!(&fetched[1].read.as_ref().unwrap()[..], b"<configuration/>");
        assert_eq!(kind(1), Some(FileKind::Symlink));
        assert!(fetched[2].read.as_ref().unwrap_err().is_not_found());
        assert_eq!(kind(2), None);
        // The session goes on: the closes not waited for were read.
        assert!(t.stat(&files[0]).unwrap().is_some());
    }
}

/// OpenSSH on Linux compares names with their case, IIS does not: a
/// web.config stored as `WEB.Config` is found through its folder's
/// listing and read, and the scan says the same as before but for the
/// spelling; one that is gone is missing, not an error.
#[test]
fn a_file_stored_in_another_case_is_found_and_one_gone_is_missing() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let before = instances(&scan_with(
        &farm.inventory(""),
        no_ssh_config(),
        &Selection::default(),
    ));
    let dir = farm.server("web01").file("C:/inetpub/Cora/Flowtime");
    fs::rename(dir.join("web.config"), dir.join("WEB.Config")).unwrap();
    let report = scan_with(&farm.inventory(""), no_ssh_config(), &Selection::default());
    assert_all_reachable(&report);
    let after: Vec<String> = instances(&report)
        .into_iter()
        .map(|i| i.replace("WEB.Config", "web.config"))
        .collect();
    assert_eq!(after, before);
    assert!(instances(&report).iter().any(|i| i.contains("WEB.Config")));

    fs::remove_file(dir.join("WEB.Config")).unwrap();
    let report = scan_with(&farm.inventory(""), no_ssh_config(), &Selection::default());
    assert_all_reachable(&report);
    let flowtime = report.site("Flowtime").unwrap();
    let web01 = flowtime
        .instances
        .iter()
        .find(|i| i.server == "web01")
        .unwrap();
    assert!(web01.effective.is_ok(), "{:?}", web01.effective);
}
