//! `farmkey scan --format openmetrics` as a process, read by the real
//! checkers: promtool (Debian's prometheus package; what it accepts the node
//! exporter's textfile collector parses) and the OpenMetrics parser of the
//! Prometheus Python client. tests/run installs both. Also the shipped
//! alert rules (`promtool check rules`, `promtool test rules`), the publish
//! script and units, all as the README shows them.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;
use support::sshd::{Options, demo_over_ssh, free_port};
use support::*;

const INSTALL: &str = "run tests/run (as root it installs Debian's prometheus and python3-prometheus-client packages)";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn farmkey_bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_farmkey"));
    cmd.env_remove("SSH_AUTH_SOCK").env_remove("COLUMNS");
    cmd
}

/// `promtool ARGS` with `stdin`: its exit code and everything it printed.
fn promtool(args: &[&str], stdin: &[u8]) -> (Option<i32>, String) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("promtool cannot be run ({e}): {INSTALL}"));
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), printed)
}

/// `promtool check metrics` accepts it with no lint problem (it prints
/// each problem and exits 3).
fn assert_promtool_accepts(text: &str) {
    let (code, printed) = promtool(&["check", "metrics"], text.as_bytes());
    assert_eq!(code, Some(0), "promtool check metrics:\n{printed}\n{text}");
    assert!(
        printed.trim().is_empty(),
        "promtool check metrics printed problems:\n{printed}"
    );
}

/// One sample: its name, labels and value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples as the Prometheus Python client's OpenMetrics parser reads
/// them (it refuses text without `# EOF`, a sample with a timestamp is
/// refused here): every family a gauge.
fn openmetrics_samples(text: &str) -> Vec<Sample> {
    const READ: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    if family.type != "gauge":
        sys.exit("%s is a %s" % (family.name, family.type))
    for s in family.samples:
        if s.timestamp is not None:
            sys.exit("%s has a timestamp" % s.name)
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    use std::io::Write;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", READ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("/usr/bin/python3 cannot be run ({e}): {INSTALL}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("No module named 'prometheus_client'"),
        "the Prometheus Python client is missing: {INSTALL}"
    );
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused it: {err}\n{text}"
    );
    let rows: Vec<(String, BTreeMap<String, String>, f64)> =
        serde_json::from_slice(&out.stdout).unwrap();
    rows.into_iter()
        .map(|(name, labels, value)| Sample {
            name,
            labels,
            value,
        })
        .collect()
}

/// Checked by both and read: the samples.
fn checked(text: &str) -> Vec<Sample> {
    assert!(text.ends_with("\n# EOF\n"), "{text}");
    assert_promtool_accepts(text);
    openmetrics_samples(text)
}

/// The value of the one sample of `name` with these labels (among others).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
    found.first().map(|s| s.value)
}

/// `farmkey scan --format FORMAT ARGS...` by `cmd`: its exit code, standard
/// output and standard error.
fn run_scan(
    mut cmd: Command,
    format: &str,
    args: &[&std::ffi::OsStr],
) -> (Option<i32>, String, String) {
    let out = cmd
        .args(["scan", "--format", format])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What the metrics must say of the scan `json` reports (the same farm,
/// scanned the same way): each site's state and unread servers, the
/// servers read, the findings by code and severity.
fn assert_agrees_with_json(samples: &[Sample], json: &serde_json::Value) {
    for site in json["sites"].as_array().unwrap() {
        let name = site["site"].as_str().unwrap();
        let state = match site["consistent"].as_bool() {
            Some(true) => "in-step",
            Some(false) => "drifted",
            None => "unverified",
        };
        for s in ["in-step", "unverified", "drifted"] {
            assert_eq!(
                value(
                    samples,
                    "farmkey_site_state",
                    &[("site", name), ("state", s)]
                ),
                Some(if s == state { 1.0 } else { 0.0 }),
                "{name} {s}"
            );
        }
        let unverified = site["unverified_on"].as_array().unwrap().len();
        assert_eq!(
            value(samples, "farmkey_site_servers_not_read", &[("site", name)]),
            Some(unverified as f64),
            "{name}"
        );
    }
    let servers = json["servers"].as_array().unwrap();
    for s in servers {
        let name = s["name"].as_str().unwrap();
        let read = if s["error"].is_null() { 1.0 } else { 0.0 };
        assert_eq!(
            value(samples, "farmkey_server_read", &[("server", name)]),
            Some(read),
            "{name}"
        );
    }
    let read = servers.iter().filter(|s| s["error"].is_null()).count();
    assert_eq!(
        value(samples, "farmkey_servers_read", &[]),
        Some(read as f64)
    );
    let not_read: f64 = samples
        .iter()
        .filter(|s| s.name == "farmkey_servers_not_read")
        .map(|s| s.value)
        .sum();
    assert_eq!(not_read as usize, servers.len() - read);
    // Every finding of the JSON, counted by code and severity.
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    let farm = json["findings"].as_array().unwrap().iter();
    let sites = json["sites"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["findings"].as_array().unwrap().iter());
    for f in farm.chain(sites) {
        let key = (
            f["code"].as_str().unwrap().to_string(),
            f["severity"].as_str().unwrap().to_string(),
        );
        *counts.entry(key).or_default() += 1;
    }
    for s in samples.iter().filter(|s| s.name == "farmkey_findings") {
        let key = (s.labels["code"].clone(), s.labels["severity"].clone());
        assert_eq!(
            s.value as usize,
            counts.remove(&key).unwrap_or(0),
            "{key:?}"
        );
    }
    assert!(counts.is_empty(), "findings with no sample: {counts:?}");
}

/// Every hex run of 8+ characters in the JSON's strings (fingerprints of
/// keys and key sets, files' SHA-256) and of 32+ in `files` (keys).
fn secrets(json: &serde_json::Value, files: &[PathBuf]) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => {
                for w in s.split(|c: char| !c.is_ascii_hexdigit()) {
                    // Not a number: a fingerprint has a letter, or the
                    // check below would match timestamps by chance.
                    if w.len() >= 8 && w.chars().any(|c| c.is_ascii_alphabetic()) {
                        out.push(w.to_ascii_lowercase());
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(json, &mut out);
    let fingerprints = out.len();
    assert!(
        fingerprints > 0,
        "the JSON holds no fingerprint to look for"
    );
    for f in files {
        let text = String::from_utf8_lossy(&fs::read(f).unwrap()).into_owned();
        for w in text.split(|c: char| !c.is_ascii_hexdigit()) {
            if w.len() >= 32 {
                out.push(w.to_ascii_lowercase());
            }
        }
    }
    assert!(out.len() > fingerprints, "no key found in the farm's files");
    out
}

/// The text without the samples' values (numbers, which a fingerprint of
/// digits alone could match by chance): names, labels, HELP texts.
fn names_and_labels(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with('#') {
                l
            } else {
                l.rsplit_once(' ').map_or(l, |(head, _)| head)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        .to_ascii_lowercase()
}

fn assert_no_secret(text: &str, secrets: &[String]) {
    let text = names_and_labels(text);
    for s in secrets {
        assert!(!text.contains(s.as_str()), "the metrics hold {s}:\n{text}");
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    snapshot_tree(dir).into_iter().map(|(p, _)| p).collect()
}

#[test]
fn demo_farm_metrics_pass_both_checkers_and_say_what_the_scan_says() {
    // The demo farm laid out here (its keys are new each time): both scans
    // and the look for keys in its files see the same one.
    let demo = farmkey::demo::DemoFarm::new().unwrap();
    let inventory = demo.path().join("farmkey.toml");
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("audit.jsonl");
    let (code, text, stderr) = run_scan(
        farmkey_bin(),
        "openmetrics",
        &[
            "-i".as_ref(),
            inventory.as_os_str(),
            "--audit".as_ref(),
            absent.as_os_str(),
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let samples = checked(&text);
    let (_, json, _) = run_scan(
        farmkey_bin(),
        "json",
        &["-i".as_ref(), inventory.as_os_str()],
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_agrees_with_json(&samples, &json);
    // The demo's Flowtime differs among its servers.
    assert_eq!(
        value(
            &samples,
            "farmkey_site_state",
            &[
                ("site", "Flowtime"),
                ("component", "Flowtime"),
                ("state", "drifted")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "farmkey_findings",
            &[("code", "key-mismatch"), ("severity", "error")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&samples, "farmkey_servers_read", &[]), Some(3.0));
    // No audit log: no push times, and not an error.
    assert!(!absent.exists());
    assert!(
        samples
            .iter()
            .all(|s| s.name != "farmkey_last_push_timestamp_seconds")
    );
    assert_eq!(
        value(&samples, "farmkey_audit_log_readable", &[]),
        Some(1.0)
    );
    // When it ran.
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let at = value(&samples, "farmkey_scan_timestamp_seconds", &[]).unwrap();
    assert!(at <= now && now - at < 600.0, "{at} vs {now}");
    let took = value(&samples, "farmkey_scan_duration_seconds", &[]).unwrap();
    assert!((0.0..600.0).contains(&took), "{took}");

    assert_no_secret(&text, &secrets(&json, &files_under(demo.path())));
}

/// A log others could write is refused: said on standard error and in the
/// metrics, the scan printed whole with its own exit code.
#[test]
fn an_audit_log_farmkey_cannot_read_is_a_metric_not_a_failed_scan() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    fs::write(&audit, "").unwrap();
    fs::set_permissions(&audit, fs::Permissions::from_mode(0o666)).unwrap();
    let (code, text, stderr) = run_scan(
        farmkey_bin(),
        "openmetrics",
        &["--demo".as_ref(), "--audit".as_ref(), audit.as_os_str()],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&audit.display().to_string()) && stderr.contains("too open"),
        "{stderr}"
    );
    let samples = checked(&text);
    assert_eq!(
        value(&samples, "farmkey_audit_log_readable", &[]),
        Some(0.0)
    );
    assert!(
        value(
            &samples,
            "farmkey_site_state",
            &[("site", "Flowtime"), ("state", "drifted")]
        ) == Some(1.0)
    );
}

/// Only the metrics read the audit log: `--audit` with another format is
/// refused, not ignored.
#[test]
fn audit_is_refused_with_the_other_formats() {
    for format in ["table", "json"] {
        let (code, stdout, stderr) = run_scan(
            farmkey_bin(),
            format,
            &[
                "--demo".as_ref(),
                "--audit".as_ref(),
                "/tmp/audit.jsonl".as_ref(),
            ],
        );
        assert_eq!(code, Some(2), "{format}: {stderr}");
        assert!(stdout.is_empty(), "{format}: {stdout}");
        assert!(
            stderr.contains("--format openmetrics"),
            "{format}: {stderr}"
        );
    }
}

/// Over real sshd: a push to Flowtime, then a scan with a fourth server
/// whose port is closed.
#[test]
fn ssh_farm_with_an_unreachable_server_and_a_past_push() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let audit = farm.home.path().join("audit.jsonl");
    let before = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let push = farm
        .farmkey()
        .args(farm.push_flowtime_args(&audit))
        .output()
        .unwrap();
    assert_eq!(
        push.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&push.stdout),
        String::from_utf8_lossy(&push.stderr)
    );
    let after = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let closed = free_port();
    // Patient connections (a loaded machine is not a server that does not
    // answer); the closed port refuses at once.
    let defaults = farm
        .defaults()
        .replace("connect_timeout_secs = 3\n", "connect_timeout_secs = 20\n");
    let inventory = farm.inventory_with(
        &defaults,
        &format!("\n[[servers]]\nname = \"web04\"\nhost = \"127.0.0.1\"\nport = {closed}\n"),
    );
    let args = headless_args(&inventory, &audit);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    // The JSON takes no audit log.
    let json_args: Vec<&std::ffi::OsStr> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| **a != "--audit" && (*i == 0 || args[i - 1] != "--audit"))
        .map(|(_, a)| *a)
        .collect();
    let scan = |format: &str| {
        let args = if format == "json" { &json_args } else { &args };
        run_scan(farm.farmkey_process(), format, args)
    };
    let (code, text, stderr) = scan("openmetrics");
    assert_eq!(code, Some(1), "{stderr}\n{}", farm.logs());
    let samples = checked(&text);
    let (_, json, _) = scan("json");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_agrees_with_json(&samples, &json);

    assert_eq!(
        value(&samples, "farmkey_server_read", &[("server", "web04")]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &samples,
            "farmkey_servers_not_read",
            &[("reason", "connect-refused")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&samples, "farmkey_servers_read", &[]), Some(3.0));
    assert_eq!(
        value(
            &samples,
            "farmkey_findings",
            &[("code", "unreachable"), ("severity", "error")]
        ),
        Some(1.0)
    );
    // Pushed in step, but web04 may host it: unverified, not drifted.
    assert_eq!(
        value(
            &samples,
            "farmkey_site_state",
            &[("site", "Flowtime"), ("state", "unverified")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "farmkey_site_servers_not_read",
            &[("site", "Flowtime")]
        ),
        Some(1.0)
    );
    // The push, from the audit log; no other site was pushed.
    let pushed = value(
        &samples,
        "farmkey_last_push_timestamp_seconds",
        &[("site", "Flowtime")],
    )
    .expect("Flowtime's push time");
    assert!(
        (before as f64..=after as f64).contains(&pushed),
        "{pushed} not within {before}..{after}"
    );
    assert_eq!(
        samples
            .iter()
            .filter(|s| s.name == "farmkey_last_push_timestamp_seconds")
            .count(),
        1
    );
    // Neither the keys now on the servers (those pushed and the others)
    // nor any fingerprint or hash the JSON shows.
    let files: Vec<PathBuf> = farm
        .servers
        .iter()
        .flat_map(|s| files_under(&s.root))
        .collect();
    assert_no_secret(&text, &secrets(&json, &files));
    assert!(!text.contains("127.0.0.1") && !text.contains(&closed.to_string()));
}

/// A file the README shows whole (the fenced block after
/// `<!-- file: NAME -->`): operators copy it from there, so the README is
/// its one source and the tests run that copy.
fn readme_file(name: &str) -> String {
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    let marker = format!("<!-- file: {name} -->\n");
    let at = readme
        .find(&marker)
        .unwrap_or_else(|| panic!("README.md has no {marker}"))
        + marker.len();
    assert!(
        readme[at..].starts_with("```"),
        "{name}: no fence after its marker"
    );
    let open = readme[at..].find('\n').unwrap() + at + 1;
    let close = readme[open..].find("\n```\n").expect("the fence closes") + open + 1;
    readme[open..close].to_string()
}

#[test]
fn the_alert_rules_are_valid_and_fire_as_the_readme_says() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("farmkey-alerts.yml"),
        readme_file("farmkey-alerts.yml"),
    )
    .unwrap();
    fs::copy(
        repo().join("tests/monitoring/farmkey-alerts.test.yml"),
        dir.path().join("farmkey-alerts.test.yml"),
    )
    .unwrap();
    for args in [
        &["check", "rules", "farmkey-alerts.yml"][..],
        &["test", "rules", "farmkey-alerts.test.yml"][..],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("promtool cannot be run ({e}): {INSTALL}"));
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The README's systemd units are what systemd reads: sections and keys
/// where it wants them, and the service runs the script the README shows.
#[test]
fn the_readme_units_run_the_readme_script() {
    let service = readme_file("farmkey-metrics.service");
    let timer = readme_file("farmkey-metrics.timer");
    assert!(service.contains("[Service]\nType=oneshot\n"), "{service}");
    assert!(
        service.contains("ExecStart=/usr/local/bin/farmkey-metrics "),
        "{service}"
    );
    assert!(service.contains("SuccessExitStatus=1\n"), "{service}");
    assert!(timer.contains("[Timer]\nOnCalendar=*:0/15\n"), "{timer}");
    assert!(readme_file("farmkey-metrics").starts_with("#!/bin/sh\n"));
}

/// The README's farmkey-metrics publishes the scan whole on exit 0 and 1,
/// and keeps the last one (no temporary file left) on exit 2.
#[test]
fn the_publish_script_replaces_the_file_only_after_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("farmkey.prom");
    let bin = tempfile::tempdir().unwrap();
    let script = bin.path().join("farmkey-metrics");
    fs::write(&script, readme_file("farmkey-metrics")).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let publish = |args: &[&str]| {
        let o = Command::new(&script)
            .arg(&out)
            .args(args)
            .env("FARMKEY", env!("CARGO_BIN_EXE_farmkey"))
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let absent = dir.path().join("no-audit.jsonl");
    let (code, stderr) = publish(&["--demo", "--audit", absent.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    let published = fs::read_to_string(&out).unwrap();
    checked(&published);
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let (code, stderr) = publish(&["-i", "/nonexistent/farmkey.toml"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/farmkey.toml"), "{stderr}");
    assert_eq!(fs::read_to_string(&out).unwrap(), published);
    let left: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("farmkey.prom")]);
}

/// The README's table of the metrics is the one the code writes.
/// `FARMKEY_BLESS=1` rewrites the README from it.
#[test]
fn the_readme_shows_the_metrics_as_they_are() {
    let path = repo().join("README.md");
    let mut readme = fs::read_to_string(&path).unwrap();
    let mut differ: Vec<String> = Vec::new();
    let table = farmkey::report::openmetrics::metrics_table();
    let start = readme
        .find("\n| metric | labels | meaning |\n")
        .expect("README.md has the metrics table")
        + 1;
    let end = start + readme[start..].find("\n\n").expect("the table ends") + 1;
    if readme[start..end] != table {
        differ.push("the metrics table".into());
        readme.replace_range(start..end, &table);
    }
    if differ.is_empty() {
        return;
    }
    if std::env::var_os("FARMKEY_BLESS").is_some() {
        fs::write(&path, readme).unwrap();
    } else {
        panic!(
            "README.md's copies of {differ:?} differ from what they copy: run FARMKEY_BLESS=1 cargo test --test metrics readme"
        );
    }
}
