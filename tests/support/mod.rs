//! Shared helpers of the end-to-end tests.
#![allow(dead_code)]

pub mod netns;
pub mod proxy;
pub mod pty;
pub mod sshd;

use farmkey::analysis::{FarmReport, Selection, analyze};
use farmkey::farm::scan_all;
use farmkey::inventory::Inventory;
use farmkey::transport::ConnectOptions;
use std::fs;
use std::path::{Path, PathBuf};

/// The farmkey binary with a clean environment: HOME as given, PATH kept,
/// USER `operator` (the user audit records name), no agent.
pub fn farmkey_command(home: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_farmkey"));
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("USER", "operator");
    cmd
}

/// How a server of a push ended.
pub fn by<'a>(
    outcome: &'a farmkey::push::PushOutcome,
    server: &str,
) -> &'a farmkey::push::apply::ServerOutcome {
    &outcome
        .results
        .iter()
        .find(|r| r.server == server)
        .unwrap()
        .outcome
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

pub fn farm_fixture(name: &str) -> PathBuf {
    fixtures().join("farms").join(name)
}

/// Copies a folder tree.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A private copy of a fixture farm, for tests that change files.
pub fn farm_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&farm_fixture(name), dir.path());
    dir
}

/// What a headless command needs against SSH servers: `--batch`, no ssh
/// config, the audit log and the inventory.
pub fn headless_args(inventory: &Path, audit: &Path) -> Vec<String> {
    [
        "--batch",
        "--ssh-config",
        "/nonexistent",
        "--audit",
        audit.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

pub fn scan_inventory(inventory: &Path, selection: &Selection) -> FarmReport {
    let inv = Inventory::load(inventory).unwrap();
    let scans = scan_all(&inv.servers, ConnectOptions::default(), 4);
    analyze(&scans, selection)
}

pub fn all_sites() -> Selection {
    Selection {
        all_sites: true,
        sites: vec![],
        ..Default::default()
    }
}

/// Every site of the farm whose `farmkey.toml` is in `dir`, scanned and
/// analysed.
pub fn scan_farm(dir: &Path) -> FarmReport {
    scan_inventory(&dir.join("farmkey.toml"), &all_sites())
}

/// Every site of a farm of the fixture corpus, scanned and analysed.
pub fn scan_fixture(farm: &str) -> FarmReport {
    scan_farm(&farm_fixture(farm))
}

/// (code, severity, site or "(farm)", servers) of every finding, sorted.
pub fn finding_rows(report: &FarmReport) -> Vec<(String, String, String, String)> {
    let mut rows: Vec<_> = report
        .all_findings()
        .map(|f| {
            (
                f.code.name().to_string(),
                f.severity.name().to_string(),
                f.site.clone().unwrap_or_else(|| "(farm)".into()),
                f.servers.join(","),
            )
        })
        .collect();
    rows.sort();
    rows
}

pub fn row(
    code: &str,
    severity: &str,
    site: &str,
    servers: &str,
) -> (String, String, String, String) {
    (code.into(), severity.into(), site.into(), servers.into())
}

/// Every file under a folder, with its bytes (links followed; a dangling
/// one or a loop left out).
pub fn snapshot_tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let mut entries: Vec<_> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if fs::metadata(&p).is_ok() {
                out.push((p.clone(), fs::read(&p).unwrap()));
            } else {
                // Only a link that leads nowhere has no bytes to read.
                assert!(fs::symlink_metadata(&p).unwrap().is_symlink(), "{p:?}");
            }
        }
    }
    walk(dir, &mut out);
    out
}

/// Checks that an edit touched nothing but what the editor may touch: every
/// changed run of lines either only gained text (the old lines are a
/// subsequence of the new ones) or holds the start tag of a `<machineKey>`
/// or of a self-closing element (attributes set, or an end tag grown).
pub fn edit_confined(original: &[u8], edited: &[u8]) -> Result<(), String> {
    use farmkey::bytes::FileBytes;
    use farmkey::config::xml::Document;
    let doc = Document::parse(FileBytes::new(original.to_vec())).map_err(|e| e.to_string())?;
    let mut allowed = Vec::new();
    let mut stack = vec![doc.root()];
    while let Some(id) = stack.pop() {
        let el = doc.element(id);
        if doc.name(id) == "machineKey" || el.is_self_closing() {
            allowed.push(el.start_tag());
        }
        stack.extend_from_slice(doc.children(id));
    }
    let old = std::str::from_utf8(original).map_err(|e| e.to_string())?;
    let new = std::str::from_utf8(edited).map_err(|e| e.to_string())?;
    let line_starts = |t: &str| {
        let mut v = vec![0];
        v.extend(t.match_indices('\n').map(|(i, _)| i + 1));
        v.push(t.len());
        v
    };
    let (os, ns) = (line_starts(old), line_starts(new));
    let span = |starts: &[usize], r: std::ops::Range<usize>| {
        starts[r.start]..starts[r.end.min(starts.len() - 1)]
    };
    for op in similar::TextDiff::from_lines(old, new).ops() {
        if !matches!(
            op.tag(),
            similar::DiffTag::Delete | similar::DiffTag::Replace
        ) {
            continue;
        }
        let o = span(&os, op.old_range());
        let n = span(&ns, op.new_range());
        let mut rest = new[n.clone()].chars();
        let only_gained = old[o.clone()].chars().all(|c| rest.any(|d| d == c));
        let rewritable = allowed.iter().any(|a| a.start < o.end && o.start < a.end);
        if !only_gained && !rewritable {
            return Err(format!(
                "changed outside the edited elements: {:?} became {:?}",
                &old[o], &new[n]
            ));
        }
    }
    Ok(())
}

/// Holds a real farmkey process at one step of a push (its debug-build
/// hook `FARMKEY_TEST_PAUSE`): the test waits until it is there, acts
/// (signals it, closes its output, changes a file), then lets it go on.
pub struct Pause {
    point: String,
    dir: tempfile::TempDir,
}

impl Pause {
    /// `start`, `swapped:SERVER`, `verifying:SERVER` or `applied:SERVER`
    /// (the points of src/push/apply.rs).
    pub fn new(point: &str) -> Pause {
        Pause {
            point: point.to_string(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The environment that sets the hook.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("FARMKEY_TEST_PAUSE".into(), self.point.clone()),
            (
                "FARMKEY_TEST_PAUSE_DIR".into(),
                self.dir.path().display().to_string(),
            ),
        ]
    }

    pub fn set(&self, cmd: &mut std::process::Command) {
        cmd.envs(self.env());
    }

    /// Waits until the process is held there; `ended` tells whether it
    /// ended instead.
    pub fn wait(&self, mut ended: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !self.dir.path().join("ready").exists() {
            assert!(!ended(), "farmkey ended before {}", self.point);
            assert!(
                std::time::Instant::now() < deadline,
                "farmkey did not reach {}",
                self.point
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Waits until the held process has taken a request to stop (a
    /// signal): it then stops at its next step, whatever the timing.
    pub fn wait_stopping(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !self.dir.path().join("stopping").exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the stop request was not taken at {}",
                self.point
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    pub fn go(&self) {
        fs::write(self.dir.path().join("go"), b"").unwrap();
    }
}

/// A farmkey lock left by a push of another machine, years ago.
pub const STALE_LOCK: &str = r#"{"push_id":"20200101T000000Z-dead","site":"Flowtime","user":"alice","host":"jump9","pid":4242,"time":"2020-01-01T00:00:00Z"}"#;

/// Every hex run of 32+ characters in a fixture farm's files, upper-cased:
/// its keys.
pub fn farm_keys(farm: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for (_, bytes) in snapshot_tree(&farm_fixture(farm)) {
        for word in String::from_utf8_lossy(&bytes).split(|c: char| !c.is_ascii_hexdigit()) {
            if word.len() >= 32 && !keys.contains(&word.to_ascii_uppercase()) {
                keys.push(word.to_ascii_uppercase());
            }
        }
    }
    keys
}

/// No key of a fixture farm, in any case, in `text`: fingerprints only.
pub fn assert_no_farm_key(farm: &str, text: &str) {
    assert_no_key(text, &farm_keys(farm));
}

/// None of `keys` (upper-case hex), in any case, in `text`.
pub fn assert_no_key(text: &str, keys: &[String]) {
    let upper = text.to_ascii_uppercase();
    for key in keys {
        assert!(
            !upper.contains(&key[..24]),
            "key material in the output: {}",
            &key[..24]
        );
    }
}
