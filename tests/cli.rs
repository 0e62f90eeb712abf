//! The headless command line as a process: exit codes, output formats, bad
//! inventories, and no key in any output.

mod support;

use assert_cmd::Command;
use predicates::prelude::*;
use std::fs;
use support::*;

fn farmkey() -> Command {
    let mut cmd = Command::cargo_bin("farmkey").unwrap();
    // The table's layout follows $COLUMNS: tests set it where they mean to.
    cmd.env_remove("SSH_AUTH_SOCK")
        .env_remove("COLUMNS")
        .env("NO_COLOR", "1");
    cmd
}

/// Every hex run of 32+ characters in the fixture corpus: keys.
fn corpus_keys() -> Vec<String> {
    let mut keys = Vec::new();
    for (_, bytes) in snapshot_tree(&fixtures().join("farms")) {
        // UTF-16 files hold keys too.
        let utf16 = |be: bool| {
            let units: Vec<u16> = bytes[2..]
                .chunks_exact(2)
                .map(|c| {
                    if be {
                        u16::from_be_bytes([c[0], c[1]])
                    } else {
                        u16::from_le_bytes([c[0], c[1]])
                    }
                })
                .collect();
            String::from_utf16_lossy(&units)
        };
        let text = match bytes.get(..2) {
            Some([0xFF, 0xFE]) => utf16(false),
            Some([0xFE, 0xFF]) => utf16(true),
            _ => String::from_utf8_lossy(&bytes).into_owned(),
        };
        for word in text.split(|c: char| !c.is_ascii_hexdigit()) {
            if word.len() >= 32 && !keys.contains(&word.to_string()) {
                keys.push(word.to_string());
            }
        }
    }
    keys
}

fn assert_no_key(output: &[u8]) {
    let text = String::from_utf8_lossy(output);
    for key in corpus_keys() {
        for probe in [
            key.clone(),
            key.to_ascii_lowercase(),
            key.to_ascii_uppercase(),
        ] {
            assert!(
                !text.contains(&probe[..24]),
                "output holds key material: {}",
                &probe[..24]
            );
        }
    }
}

#[test]
fn scan_exit_codes_follow_the_findings() {
    let ok = farm_fixture("consistent").join("farmkey.toml");
    farmkey()
        .args(["scan", "-i"])
        .arg(&ok)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("weak-validation"));
    let drift = farm_fixture("root-keys").join("farmkey.toml");
    farmkey()
        .args(["scan", "-i"])
        .arg(&drift)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("key-mismatch"));
    farmkey()
        .args(["scan", "--format", "yaml"])
        .assert()
        .code(2);
    farmkey()
        .args(["scan", "--jobs", "0", "--demo"])
        .assert()
        .code(2);
}

#[test]
fn scan_table_shows_fingerprints_sources_and_advice() {
    for farm in [
        "root-keys",
        "invalid",
        "autogen",
        "malformed",
        "encrypted",
        "nested-apps",
        "apphost-keys",
        "wif",
        "case",
        "locks",
        "config-source",
        "utf16",
    ] {
        let out = farmkey()
            .args(["scan", "--all-sites", "-i"])
            .arg(farm_fixture(farm).join("farmkey.toml"))
            .output()
            .unwrap();
        assert_no_key(&out.stdout);
        assert_no_key(&out.stderr);
    }
    let out = farmkey()
        .args(["scan", "-i"])
        .arg(farm_fixture("root-keys").join("farmkey.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("SITE") && text.contains("VALIDATIONKEY"),
        "{text}"
    );
    assert!(
        text.contains("Flowtime !"),
        "inconsistent sites are marked: {text}"
    );
    assert!(text.contains("fafc5427"), "fingerprints shown: {text}");
    assert!(
        text.contains("FINDINGS") && text.contains("push one key set"),
        "{text}"
    );
}

#[test]
fn scan_json_follows_the_contract() {
    let out = farmkey()
        .args(["scan", "--format", "json", "--all-sites", "-i"])
        .arg(farm_fixture("malformed").join("farmkey.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_no_key(&out.stdout);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let servers = json["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3);
    for s in servers {
        assert!(s["name"].is_string() && s["reachable"].is_boolean());
        assert!(s.get("error").is_some());
    }
    assert!(
        servers[2]["error"]
            .as_str()
            .unwrap()
            .contains("applicationHost.config")
    );
    // A site's fields in the order README's contract shows them.
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let first_site = &text[text.find("\"sites\"").unwrap()..];
    let at = |field: &str| first_site.find(&format!("\"{field}\":")).unwrap();
    let order = [
        "site",
        "component",
        "consistent",
        "absent_on",
        "unverified_on",
        "instances",
    ];
    assert!(
        order.windows(2).all(|w| at(w[0]) < at(w[1])),
        "{first_site}"
    );
    let site = &json["sites"][0];
    assert_eq!(site["site"], "Flowtime");
    assert_eq!(site["component"], "Flowtime");
    // web02's web.config and web03's applicationHost.config are unreadable:
    // nothing read differs, and nobody can say it is in step.
    assert_eq!(site["consistent"], serde_json::Value::Null);
    assert_eq!(site["unverified_on"], serde_json::json!(["web02", "web03"]));
    let inst = &site["instances"][0];
    assert_eq!(inst["server"], "web01");
    assert_eq!(inst["config_path"], "C:\\inetpub\\Flowtime\\web.config");
    assert_eq!(inst["validation"], "SHA1");
    assert_eq!(inst["decryption"], "AES");
    assert_eq!(inst["compatibility_mode"], "Framework45");
    assert_eq!(inst["validation_key"]["state"], "explicit");
    assert_eq!(inst["validation_key"]["fingerprint"], "fafc5427");
    assert_eq!(
        inst["validation_key"]["source"],
        "C:\\inetpub\\Flowtime\\web.config"
    );
    assert_eq!(inst["decryption_key"]["state"], "explicit");
    assert_eq!(inst["session_token_handler"], "machinekey");
    let broken = &site["instances"][1];
    assert!(
        broken["error"]
            .as_str()
            .unwrap()
            .contains("not well-formed")
    );
    assert!(broken["validation_key"].is_null());
    let f = &site["findings"][0];
    assert_eq!(f["code"], "unreadable");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["servers"], serde_json::json!(["web02"]));
    assert!(f["message"].is_string());
    assert_eq!(
        f["remedy"],
        farmkey::analysis::Code::Unreadable.rule().remedy,
        "the registry's remedy"
    );
    assert_eq!(json["findings"][0]["code"], "unreadable");
    assert_eq!(json["findings"][0]["servers"], serde_json::json!(["web03"]));

    // Key states other than explicit carry no fingerprint.
    let out = farmkey()
        .args(["scan", "--format", "json", "-i"])
        .arg(farm_fixture("encrypted").join("farmkey.toml"))
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let enc = &json["sites"][0]["instances"][1]["validation_key"];
    assert_eq!(enc["state"], "encrypted");
    assert!(enc["fingerprint"].is_null());
}

#[test]
fn site_selection() {
    let inv = farm_fixture("consistent").join("farmkey.toml");
    let json = |args: &[&str]| -> serde_json::Value {
        let out = farmkey()
            .args(["scan", "--format", "json", "-i"])
            .arg(&inv)
            .args(args)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let sites = |v: &serde_json::Value| -> Vec<String> {
        v["sites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["site"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(sites(&json(&[])), ["Flowtime", "Sequence Administration"]);
    assert_eq!(sites(&json(&["--site", "flowtime"])), ["Flowtime"]);
    let missing = json(&["--site", "Nope"]);
    assert!(sites(&missing).is_empty());
    assert_eq!(missing["findings"][0]["code"], "site-missing");
    farmkey()
        .args(["scan", "--site", "Nope", "-i"])
        .arg(&inv)
        .assert()
        .code(1);
}

#[test]
fn bad_inventories_exit_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[[servers]]\nname = \"a\"\nhots = \"x\"\n",
            ":3: unknown key `hots`",
        ),
        (
            "[[servers]]\nname = \"a\"\nhost = \"h\"\n[[servers]]\nname = \"a\"\nhost = \"h\"\n",
            ":5: key `name`: duplicate server name \"a\"",
        ),
        (
            "[[servers]]\nname = \"a\"\nhost = \"h\"\nlocal_root = \"x\"\n",
            ":3: server \"a\" has both `host` and `local_root`",
        ),
        (
            "[[servers]]\nname = \"a\"\n",
            "has neither `host` nor `local_root`",
        ),
        (
            "[defaults]\nport = \"22\"\n[[servers]]\nname = \"a\"\nhost = \"h\"\n",
            ":2:",
        ),
        ("[[servers]\n", ":1:"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("inv{i}.toml"));
        fs::write(&path, text).unwrap();
        farmkey()
            .args(["scan", "-i"])
            .arg(&path)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(path.display().to_string()))
            .stderr(predicate::str::contains(*expected));
    }
    // A FIFO would block a reader forever: refused by its type, at once.
    let fifo = dir.path().join("fifo.toml");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    farmkey()
        .args(["scan", "-i"])
        .arg(&fifo)
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "{}: the inventory is a FIFO (named pipe), not a regular file",
            fifo.display()
        )));
    // Set but empty is not "unset", even with ./farmkey.toml present.
    fs::write(
        dir.path().join("farmkey.toml"),
        "[[servers]]\nname = \"a\"\nlocal_root = \"a\"\n",
    )
    .unwrap();
    farmkey()
        .current_dir(dir.path())
        .env("FARMKEY_INVENTORY", "")
        .arg("scan")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "$FARMKEY_INVENTORY is set but empty",
        ));
    farmkey()
        .current_dir(dir.path())
        .env("FARMKEY_INVENTORY", &fifo)
        .arg("scan")
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("which is not a file"));
    farmkey()
        .args(["scan", "-i", "/nonexistent/farmkey.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "/nonexistent/farmkey.toml: cannot read the inventory",
        ));
}

#[test]
fn a_missing_local_root_is_an_unreachable_server() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&farm_fixture("consistent"), dir.path());
    fs::write(
        dir.path().join("farmkey.toml"),
        "[[servers]]\nname = \"web01\"\nlocal_root = \"web01\"\n[[servers]]\nname = \"gone\"\nlocal_root = \"gone\"\n",
    )
    .unwrap();
    let out = farmkey()
        .args(["scan", "--format", "json", "-i"])
        .arg(dir.path().join("farmkey.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["servers"][1]["reachable"], false);
    assert!(
        json["servers"][1]["error"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    assert_eq!(json["findings"][0]["code"], "unreachable");
    assert_eq!(json["sites"][0]["instances"].as_array().unwrap().len(), 1);
    assert_eq!(json["sites"][0]["consistent"], serde_json::Value::Null);
    assert_eq!(
        json["sites"][0]["unverified_on"],
        serde_json::json!(["gone"])
    );
}

/// The consistent farm with a third server, `web03`, in the inventory.
fn farm_with_web03() -> tempfile::TempDir {
    let dir = farm_copy("consistent");
    let mut inv = fs::read_to_string(dir.path().join("farmkey.toml")).unwrap();
    inv.push_str("\n[[servers]]\nname = \"web03\"\nlocal_root = \"web03\"\n");
    fs::write(dir.path().join("farmkey.toml"), inv).unwrap();
    dir
}

/// The site of this name in `scan --format json`'s output.
fn site_json(json: &serde_json::Value, name: &str) -> serde_json::Value {
    json["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["site"] == name)
        .unwrap()
        .clone()
}

fn scan_of(dir: &std::path::Path, format: &str) -> (Option<i32>, String) {
    let out = farmkey()
        .args(["scan", "--format", format, "-i"])
        .arg(dir.join("farmkey.toml"))
        .output()
        .unwrap();
    assert_no_key(&out.stdout);
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn a_site_with_an_unread_server_is_never_consistent() {
    // web01 and web02 agree; web03 is not read: its folder is missing, then
    // its applicationHost.config is malformed.
    let dir = farm_with_web03();
    let apphost = "C:/Windows/System32/inetsrv/config/applicationHost.config";
    for (case, reason) in [
        ("missing", "unreachable: "),
        ("malformed", "its IIS configuration is unreadable: "),
    ] {
        if case == "malformed" {
            let file = dir.path().join("web03").join(apphost);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(&file, "<configuration><system.applicationHost>").unwrap();
        }
        let (code, text) = scan_of(dir.path(), "json");
        assert_eq!(code, Some(1), "{case}: not 0 while a server is unread");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let sites = json["sites"].as_array().unwrap();
        assert_eq!(sites.len(), 2, "{case}: {text}");
        for site in sites {
            assert_eq!(
                site["consistent"],
                serde_json::Value::Null,
                "{case}: {site}"
            );
            assert_eq!(
                site["unverified_on"],
                serde_json::json!(["web03"]),
                "{case}"
            );
            assert_eq!(site["absent_on"], serde_json::json!([]), "{case}");
        }

        let (code, text) = scan_of(dir.path(), "table");
        assert_eq!(code, Some(1));
        // The site marked, and web03's row under every site, with why.
        for site in ["Flowtime ?", "Sequence Administration ?"] {
            assert!(text.contains(site), "{case}: {text}");
        }
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.trim_start().starts_with("web03") && l.contains("(not read: "))
            .collect();
        assert_eq!(rows.len(), 2, "{case}: {text}");
        assert!(rows.iter().all(|r| r.contains(reason)), "{case}: {text}");
        assert!(!text.contains("every site is in step"), "{text}");
    }

    // Read again, the same farm is in step and exits 0.
    fs::remove_dir_all(dir.path().join("web03")).unwrap();
    copy_tree(&dir.path().join("web02"), &dir.path().join("web03"));
    let (code, text) = scan_of(dir.path(), "json");
    assert_eq!(code, Some(0), "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    for site in json["sites"].as_array().unwrap() {
        assert_eq!(site["consistent"], true);
        assert_eq!(site["unverified_on"], serde_json::json!([]));
    }
}

#[test]
fn site_selection_with_an_unread_server_never_says_consistent() {
    let dir = farm_with_web03();
    let scan = |args: &[&str]| -> (Option<i32>, serde_json::Value) {
        let out = farmkey()
            .args(["scan", "--format", "json", "-i"])
            .arg(dir.path().join("farmkey.toml"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            serde_json::from_slice(&out.stdout).unwrap(),
        )
    };
    for args in [&["--site", "flowtime"][..], &["--all-sites"]] {
        let (code, json) = scan(args);
        assert_eq!(code, Some(1), "{args:?}");
        let sites = json["sites"].as_array().unwrap();
        assert!(!sites.is_empty(), "{args:?}");
        for site in sites {
            assert_eq!(site["consistent"], serde_json::Value::Null, "{args:?}");
            assert_eq!(site["unverified_on"], serde_json::json!(["web03"]));
        }
    }
    // Named but on no server read: missing there, and web03 may hold it.
    let (code, json) = scan(&["--site", "Nope"]);
    assert_eq!(code, Some(1));
    assert_eq!(json["sites"], serde_json::json!([]));
    let missing = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "site-missing")
        .unwrap();
    assert_eq!(
        missing["message"],
        "no site or application named \"Nope\" exists on web01 and web02 (web03, not read, may hold it); check the name (ids are `Site` or `Site/app`)"
    );
}

#[test]
fn an_unreadable_site_is_unverified_on_its_server_only() {
    let dir = farm_copy("consistent");
    fs::write(
        dir.path().join("web02/C:/inetpub/Flowtime/web.config"),
        "<configuration><system.web>",
    )
    .unwrap();
    let (code, text) = scan_of(dir.path(), "json");
    assert_eq!(code, Some(1));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let site = |name: &str| site_json(&json, name);
    assert_eq!(site("Flowtime")["consistent"], serde_json::Value::Null);
    assert_eq!(
        site("Flowtime")["unverified_on"],
        serde_json::json!(["web02"])
    );
    assert_eq!(site("Sequence Administration")["consistent"], true);
}

/// Renames `Sequence Administration` (at `D:\Cora\Administration`) to
/// `Portal` and adds WSUS's site, on both servers.
fn farm_with_microsoft_sites(components: &str) -> tempfile::TempDir {
    let dir = farm_copy("consistent");
    for server in ["web01", "web02"] {
        let file = dir
            .path()
            .join(server)
            .join("C:/Windows/System32/inetsrv/config/applicationHost.config");
        let text = fs::read_to_string(&file)
            .unwrap()
            .replace("name=\"Sequence Administration\"", "name=\"Portal\"")
            .replace(
                "<applicationDefaults applicationPool",
                r#"<site name="WSUS Administration" id="9"><application path="/"><virtualDirectory path="/" physicalPath="C:\Program Files\Update Services\WebServices\Root" /></application></site>
      <applicationDefaults applicationPool"#,
            );
        fs::write(&file, text).unwrap();
    }
    let inv = dir.path().join("farmkey.toml");
    let mut text = fs::read_to_string(&inv).unwrap();
    text.push_str(components);
    fs::write(&inv, text).unwrap();
    dir
}

#[test]
fn components_are_recognised_by_evidence_or_named_by_the_inventory() {
    let shown = |components: &str| -> Vec<(String, String)> {
        let dir = farm_with_microsoft_sites(components);
        let (_, text) = scan_of(dir.path(), "json");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["sites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["site"].as_str().unwrap().to_string(),
                    s["component"].as_str().unwrap_or("-").to_string(),
                )
            })
            .collect()
    };
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    // WSUS's "Administration" is not Cora's; Portal is, by its folder.
    assert_eq!(
        shown(""),
        pairs(&[("Flowtime", "Flowtime"), ("Portal", "Administration")])
    );
    // Named in the inventory: exactly what it lists.
    assert_eq!(
        shown("\n[components]\nAdministration = [\"Cora Admin\"]\n"),
        pairs(&[("Flowtime", "Flowtime")])
    );
    assert_eq!(
        shown("\n[components]\n\"Process TOGO\" = [\"portal\"]\n"),
        pairs(&[("Flowtime", "Flowtime"), ("Portal", "Process TOGO")])
    );
    // A bad entry is an inventory error, named by file and line.
    let dir = farm_with_microsoft_sites("\n[components]\nAdmin = [\"Portal\"]\n");
    farmkey()
        .args(["scan", "-i"])
        .arg(dir.path().join("farmkey.toml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("farmkey.toml:"))
        .stderr(predicate::str::contains("unknown component \"Admin\""));
}

#[test]
fn a_components_entry_that_holds_nothing_is_a_finding_not_silence() {
    // A typo in the inventory: by evidence Flowtime would show; named,
    // it is exactly "Flowtme", which no server has.
    let dir = farm_with_microsoft_sites("\n[components]\nFlowtime = [\"Flowtme\"]\n");
    let (code, text) = scan_of(dir.path(), "json");
    assert_eq!(code, Some(1), "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let missing: Vec<&serde_json::Value> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "site-missing")
        .collect();
    assert_eq!(missing.len(), 1, "{text}");
    assert_eq!(missing[0]["servers"], serde_json::json!(["web01", "web02"]));
    assert!(
        missing[0]["message"].as_str().unwrap().contains(
            "the inventory's [components] lists \"Flowtme\" for Flowtime, but no site or application of that name exists on web01 and web02"
        ),
        "{text}"
    );
    // Spelled right, it holds the site and there is nothing to say.
    let dir = farm_with_microsoft_sites("\n[components]\nFlowtime = [\"flowtime\"]\n");
    let (code, text) = scan_of(dir.path(), "json");
    assert_eq!(code, Some(0), "{text}");

    // Two keys for one component: an inventory error naming both.
    let dir = farm_with_microsoft_sites(
        "\n[components]\nFlowtime = [\"Flowtime\"]\nflowtime = [\"Portal\"]\n",
    );
    farmkey()
        .args(["scan", "-i"])
        .arg(dir.path().join("farmkey.toml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("farmkey.toml:"))
        .stderr(predicate::str::contains(
            "\"Flowtime\" and \"flowtime\" both name Flowtime",
        ));
}

#[test]
fn a_farm_with_no_server_read_says_no_site_was_verified() {
    let dir = farm_copy("consistent");
    fs::remove_dir_all(dir.path().join("web01")).unwrap();
    fs::remove_dir_all(dir.path().join("web02")).unwrap();
    let (code, text) = scan_of(dir.path(), "table");
    assert_eq!(code, Some(1));
    assert!(
        text.contains("No site was verified: no server could be read."),
        "{text}"
    );
    assert!(!text.contains("No Cora sites found"), "{text}");
    // A push cannot say the site is not there: nobody looked.
    farmkey()
        .args([
            "push",
            "--site",
            "Flowtime",
            "--generate",
            "--dry-run",
            "-i",
        ])
        .arg(dir.path().join("farmkey.toml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no site \"Flowtime\" in the scan; web01 and web02 could not be read and may hold it",
        ));
}

#[test]
fn keygen_prints_fresh_iis_sized_keys() {
    let out = farmkey().arg("keygen").output().unwrap();
    assert!(out.status.success());
    let xml = String::from_utf8(out.stdout).unwrap();
    assert!(xml.starts_with("<machineKey validationKey=\""), "{xml}");
    assert!(xml.contains("validation=\"SHA1\" decryption=\"AES\""));
    let again = String::from_utf8(farmkey().arg("keygen").output().unwrap().stdout).unwrap();
    assert_ne!(xml, again);

    let out = farmkey()
        .args([
            "keygen",
            "--validation",
            "HMACSHA512",
            "--decryption",
            "3DES",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let vk = json["validationKey"].as_str().unwrap();
    let dk = json["decryptionKey"].as_str().unwrap();
    assert_eq!((vk.len(), dk.len()), (256, 48));
    assert!(
        vk.chars()
            .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))
    );
    assert_eq!(json["validation"], "HMACSHA512");
    assert_eq!(
        json["validationKeyFingerprint"],
        farmkey::keys::fingerprint(vk)
    );
    farmkey()
        .args(["keygen", "--validation", "MD5"])
        .assert()
        .code(2);
}

#[test]
fn demo_scan_runs_on_a_fresh_demo_farm() {
    farmkey()
        .args(["scan", "--demo"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("Flowtime"))
        .stdout(predicate::str::contains("Process TOGO"))
        .stdout(predicate::str::contains("dpapi-session-tokens"));
}

/// The dry run of a push to UTF-16 and configSource files: diffs as text,
/// every key (old and new) a fingerprint, nothing written.
#[test]
fn dry_runs_show_no_key_in_utf16_or_config_source_files() {
    for (farm, site) in [("utf16", "Flowtime"), ("config-source", "Flowtime")] {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&farm_fixture(farm), dir.path());
        let before = snapshot_tree(dir.path());
        let out = farmkey()
            .args(["push", "--site", site, "--generate", "--dry-run", "--audit"])
            .arg(dir.path().join("audit.jsonl"))
            .arg("-i")
            .arg(dir.path().join("farmkey.toml"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{farm}: {out:?}");
        let text = String::from_utf8(out.stdout.clone()).unwrap();
        assert_no_key(&out.stdout);
        assert!(!text.contains('\0'), "{farm}: {text}");
        let hex_run = text
            .split(|c: char| !c.is_ascii_hexdigit())
            .map(str::len)
            .max()
            .unwrap_or(0);
        assert!(hex_run < 32, "{farm}: a key in the output:\n{text}");
        assert!(
            text.contains("-    <machineKey validationKey=\"[key ")
                || text.contains("-<machineKey validationKey=\"[key "),
            "{farm}: {text}"
        );
        assert!(text.contains("Dry run: nothing was written."), "{text}");
        assert_eq!(snapshot_tree(dir.path()), before, "{farm}: nothing written");
    }
}

// ---- publicly disclosed keys ----

/// A list in the format of MachineKeys.csv holding the hashes of `keys`.
fn hash_list(path: &std::path::Path, keys: [&str; 2]) {
    fs::write(
        path,
        format!(
            "validationKey, decryptionKey\n{}, {}\n",
            hex::encode(farmkey::disclosed::key_hash(keys[0])),
            hex::encode(farmkey::disclosed::key_hash(keys[1]))
        ),
    )
    .unwrap();
}

#[test]
fn disclosed_keys_come_first_in_the_table_and_json() {
    let inv = farm_fixture("disclosed").join("farmkey.toml");
    let out = farmkey()
        .args(["scan", "--all-sites", "-i"])
        .arg(&inv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_no_key(&out.stdout);
    assert_no_key(&out.stderr);
    let text = String::from_utf8(out.stdout).unwrap();
    let findings: Vec<&str> = text
        .split("FINDINGS\n")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(' '))
        .collect();
    assert_eq!(findings.len(), 9, "{text}");
    assert!(
        findings[..5]
            .iter()
            .all(|l| l.starts_with("error    disclosed-key")),
        "{text}"
    );
    assert!(
        text.contains("51ef2ec8 DISCLOSED") && text.contains("Flowtime !"),
        "{text}"
    );

    let out = farmkey()
        .args(["scan", "--format", "json", "--all-sites", "-i"])
        .arg(&inv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_no_key(&out.stdout);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let site = |name: &str| site_json(&json, name);
    let flowtime = site("Flowtime");
    // The same key set on both servers, and still not consistent.
    assert_eq!(flowtime["consistent"], false);
    assert_eq!(flowtime["findings"].as_array().unwrap().len(), 1);
    assert_eq!(flowtime["findings"][0]["code"], "disclosed-key");
    assert_eq!(flowtime["findings"][0]["severity"], "error");
    assert_eq!(
        flowtime["findings"][0]["servers"],
        serde_json::json!(["web01", "web02"])
    );
    for inst in flowtime["instances"].as_array().unwrap() {
        assert_eq!(inst["key_group"], "A");
        assert_eq!(inst["validation_key"]["disclosed"], false);
        assert_eq!(inst["decryption_key"]["disclosed"], true);
        assert_eq!(inst["decryption_key"]["fingerprint"], "51ef2ec8");
    }
    assert_eq!(site("Reports")["findings"][0]["code"], "disclosed-key");
    assert_eq!(site("Intranet")["consistent"], true);
    assert_eq!(
        site("Vault")["instances"][0]["validation_key"]["disclosed"],
        false
    );
}

#[test]
fn the_disclosed_command_says_what_is_checked_and_validates_extra_lists() {
    let out = farmkey().arg("disclosed").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "shipped  {} hashes of 3713 key pairs",
            farmkey::disclosed::shipped().len()
        )),
        "{text}"
    );
    assert!(
        text.contains("\"MachineKeys.csv\" © Microsoft Corporation")
            && text.contains("CC BY 4.0")
            && text.contains("converted"),
        "the attribution the licence asks for: {text}"
    );
    assert!(text.contains("a key that is not listed may still be public"));

    let dir = tempfile::tempdir().unwrap();
    let fresh = farmkey::keys::KeySet::generate(
        farmkey::keys::Validation::Sha1,
        farmkey::keys::Decryption::Aes,
    )
    .unwrap();
    let (v, d) = (fresh.validation_key.expose(), fresh.decryption_key.expose());
    let list = dir.path().join("newer.csv");
    hash_list(&list, [v, d]);
    let out = farmkey()
        .args(["disclosed", "--disclosed-list"])
        .arg(&list)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "extra    {}: 2 hashes, 2 not in the lists above",
            list.display()
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "total    {} distinct hashes",
        farmkey::disclosed::shipped().len() + 2
    )));

    // A malformed list: file and line, exit 2, the bad field never echoed;
    // scan, push and the console refuse it the same way before any work.
    let bad = dir.path().join("bad.csv");
    fs::write(&bad, format!("validationKey, decryptionKey\n{v}, {d}\n")).unwrap();
    let inv = farm_fixture("disclosed").join("farmkey.toml");
    for args in [
        vec!["disclosed"],
        vec!["scan", "-i", inv.to_str().unwrap()],
        vec![
            "push",
            "--site",
            "Flowtime",
            "--generate",
            "--dry-run",
            "-i",
            inv.to_str().unwrap(),
        ],
        // The console, before it needs a terminal.
        vec!["-i", inv.to_str().unwrap()],
    ] {
        let out = farmkey()
            .args(&args)
            .arg("--disclosed-list")
            .arg(&bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains(&format!(
                "--disclosed-list {}:2: the validationKey column is not a SHA-256 hash (64 hex characters): 128 hex characters",
                bad.display()
            )),
            "{args:?}: {err}"
        );
        assert!(!err.contains(&v[..16]) && !err.contains(&d[..16]), "{err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing scanned");
    }
}

#[test]
fn pushes_of_disclosed_keys_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&farm_fixture("disclosed"), dir.path());
    let inv = dir.path().join("farmkey.toml");
    let audit = dir.path().join("audit.jsonl");
    let servers = || {
        [
            snapshot_tree(&dir.path().join("web01")),
            snapshot_tree(&dir.path().join("web02")),
        ]
    };
    let before = servers();
    let push = |args: &[&str]| {
        farmkey()
            .args(["push", "--yes", "--batch", "--audit"])
            .arg(&audit)
            .arg("-i")
            .arg(&inv)
            .args(args)
            .output()
            .unwrap()
    };
    // A fresh pair that only the operator's newer list holds.
    let fresh = farmkey::keys::KeySet::generate(
        farmkey::keys::Validation::HmacSha256,
        farmkey::keys::Decryption::Aes,
    )
    .unwrap();
    // Microsoft's "How To" sample decryption key with a fresh validation key
    // (the sample's validation key is 127 hex characters: refused anyway).
    let sample = dir.path().join("sample.xml");
    fs::write(
        &sample,
        format!(
            "<machineKey validationKey=\"{}\" decryptionKey=\"ABAA84D7EC4BB56D75D217CECFFB9628809BDB8BF91CFCD64568A145BE59719F\" validation=\"HMACSHA256\" decryption=\"AES\" />",
            fresh.validation_key.expose()
        ),
    )
    .unwrap();
    let fresh_xml = dir.path().join("fresh.xml");
    fs::write(&fresh_xml, fresh.to_xml_element()).unwrap();
    let newer = dir.path().join("newer.csv");
    hash_list(
        &newer,
        [fresh.validation_key.expose(), fresh.decryption_key.expose()],
    );
    let sample_arg = sample.to_str().unwrap().to_string();
    let fresh_arg = fresh_xml.to_str().unwrap().to_string();
    let newer_arg = newer.to_str().unwrap().to_string();
    let fresh_listed = format!(
        "its validationKey {} and decryptionKey {} are publicly disclosed",
        fresh.validation_key.fingerprint(),
        fresh.decryption_key.fingerprint()
    );
    for (args, why) in [
        (
            vec!["--site", "Flowtime", "--adopt"],
            "refused to push this key set (adopt set A from web01): its decryptionKey 51ef2ec8 is publicly disclosed",
        ),
        (
            vec!["--site", "Default Web Site", "--adopt", "web02"],
            "refused to push this key set (adopt set A from web02): its validationKey 1ab894ca and decryptionKey 5fdebde8 are publicly disclosed",
        ),
        (
            vec!["--site", "Intranet", "--keys", &sample_arg],
            "its decryptionKey 51ef2ec8 is publicly disclosed",
        ),
        (
            vec![
                "--site",
                "Intranet",
                "--keys",
                &fresh_arg,
                "--disclosed-list",
                &newer_arg,
            ],
            &fresh_listed,
        ),
    ] {
        let out = push(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8(out.stderr.clone()).unwrap();
        assert!(err.contains(why), "{args:?}: {err}");
        assert!(err.contains("Generate a new key set instead"), "{err}");
        assert_no_key(&out.stdout);
        assert_no_key(&out.stderr);
        assert!(!err.contains(&fresh.validation_key.expose()[..16]));
    }
    // The refused --keys of the sample is refused before any server is read.
    let out = push(&["--site", "Intranet", "--keys", &sample_arg]);
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains(&format!("(--keys {sample_arg})")),
    );
    assert!(out.stdout.is_empty());
    assert!(servers() == before, "a refused push wrote to a server");
    assert!(fs::read_to_string(&audit).unwrap_or_default().is_empty());

    // Two <machineKey> elements: which one is meant is the operator's call.
    let two = dir.path().join("two.xml");
    fs::write(
        &two,
        format!(
            "<configuration>\n  <system.web>\n    {}\n  </system.web>\n  <location path=\"x\">\n    {}\n  </location>\n</configuration>\n",
            fresh.to_xml_element(),
            fresh.to_xml_element()
        ),
    )
    .unwrap();
    let out = push(&["--site", "Intranet", "--keys", two.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(
        err.contains(&format!(
            "--keys {}: two <machineKey> elements, at lines 3 and 6",
            two.display()
        )),
        "{err}"
    );
    assert!(!err.contains(&fresh.validation_key.expose()[..16]));
    assert!(servers() == before, "a refused push wrote to a server");

    // Without the newer list the fresh set is accepted; generating always is.
    let out = push(&["--site", "Intranet", "--keys", &fresh_arg]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = push(&["--site", "Flowtime", "--generate"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = farmkey()
        .args(["scan", "--format", "json", "-i"])
        .arg(&inv)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let flowtime = json["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["site"] == "Flowtime")
        .unwrap();
    assert_eq!(flowtime["consistent"], true, "{flowtime}");
}

/// Standard output closed before a byte is written (`| head -0`, a reader
/// gone): every printing command ends without a panic, with the exit code
/// its work decides, and says nothing of the closed pipe.
#[test]
fn a_closed_output_never_panics_a_command() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("ssh_config"),
        "Host web01\n  HostName 10.0.0.11\n",
    )
    .unwrap();
    let ssh_config = dir.path().join("ssh_config");
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["keygen"], 0),
        (vec!["keygen", "--format", "json"], 0),
        (vec!["scan", "--demo"], 1),
        (vec!["scan", "--demo", "--format", "json"], 1),
        (vec!["disclosed"], 0),
        (vec!["completions", "bash"], 0),
        (vec!["man"], 0),
        (
            vec![
                "import-ssh-config",
                "--ssh-config",
                ssh_config.to_str().unwrap(),
            ],
            0,
        ),
    ];
    for (args, want) in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_farmkey"))
            .args(&args)
            .env_remove("SSH_AUTH_SOCK")
            .env("HOME", dir.path())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(want), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_no_key(&out.stderr);
    }
}

/// `--servers` and `--exclude` that leave no server of the site are a
/// usage error, never "already correct on every server of the push".
#[test]
fn a_handler_only_push_says_the_keys_it_left_out_of_step() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&farm_fixture("wif"), dir.path());
    // web01's decryptionKey becomes Microsoft's published sample: the two
    // servers' keys differ, and one is disclosed.
    let web01 = dir.path().join("web01/C:/inetpub/Flowtime/web.config");
    let text = fs::read_to_string(&web01).unwrap().replace(
        "5F6BDC2B4BA4D8EFC70C90A21ADAC05918622D4FAE332C2EEBD3FEB2A1062F91",
        "ABAA84D7EC4BB56D75D217CECFFB9628809BDB8BF91CFCD64568A145BE59719F",
    );
    fs::write(&web01, text).unwrap();
    let push = || {
        farmkey()
            .args([
                "push",
                "--site",
                "Flowtime",
                "--handler-only",
                "--yes",
                "--batch",
            ])
            .arg("--audit")
            .arg(dir.path().join("audit.jsonl"))
            .arg("-i")
            .arg(dir.path().join("farmkey.toml"))
            .output()
            .unwrap()
    };
    let out = push();
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    let last = stdout.lines().last().unwrap();
    assert!(
        last.contains("the session-token handler of Flowtime is in step on every server of the push (1 written, 1 already correct")
            && last.contains("but its keys are OUT OF STEP: they still differ (web01 set A, web02 set B); web01 uses a publicly disclosed key")
            && last.contains("This push wrote no keys"),
        "{last}"
    );
    assert!(!last.contains(": Flowtime is in step"), "{last}");
    assert_no_key(&out.stdout);
    // The handler is in step now, the keys are not: a second handler-only
    // push has nothing to write, and says so.
    let out = push();
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.lines().last().unwrap().starts_with(
            "Nothing to write: the session-token handler of Flowtime is already correct on every server of the push, but its keys are OUT OF STEP: they still differ"
        ),
        "{stdout}"
    );
    let scan = farmkey()
        .args(["scan", "--site", "Flowtime", "-i"])
        .arg(dir.path().join("farmkey.toml"))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&scan.stdout);
    assert!(!table.contains("dpapi-session-tokens"), "{table}");
    assert!(
        table.contains("key-mismatch") && table.contains("disclosed-key"),
        "{table}"
    );
}

#[test]
fn a_push_that_leaves_out_every_server_is_refused() {
    let inv = farm_fixture("consistent").join("farmkey.toml");
    let inv = inv.to_str().unwrap();
    for left_out in [
        vec!["--servers", "web01", "--exclude", "web01"],
        vec!["--exclude", "web01", "--exclude", "web02"],
    ] {
        let out = farmkey()
            .args([
                "push",
                "--site",
                "Flowtime",
                "--generate",
                "--dry-run",
                "-i",
                inv,
            ])
            .args(&left_out)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{left_out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains("--servers and --exclude leave no server of Flowtime in the push"),
            "{left_out:?}: {err}"
        );
    }
}

/// The plan preview says who keeps their sign-ins, as the console's push
/// menu does: adopting set A keeps web01's and web02's users signed in and
/// signs web03's out; new keys sign everyone out.
#[test]
fn the_plan_preview_says_who_is_signed_out() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = farmkey::demo::lay_out(dir.path()).unwrap();
    let preview = |how: &[&str]| {
        let out = farmkey()
            .args(["push", "--site", "Flowtime", "--dry-run", "--audit"])
            .arg(dir.path().join("audit.jsonl"))
            .arg("-i")
            .arg(&inventory)
            .args(how)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{how:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let adopt = preview(&["--adopt", "web01"]);
    assert!(
        adopt.contains(
            "Signed-in users keep their sign-ins on web01 and web02; are signed out on web03 ("
        ),
        "{adopt}"
    );
    let generate = preview(&["--generate"]);
    assert!(
        generate.contains(
            "Signed-in users are signed out on every server of the push: they sign in again."
        ),
        "{generate}"
    );
}

/// Lines of `text` wider than `width` characters.
fn wider_than(text: &str, width: usize) -> Vec<&str> {
    text.lines().filter(|l| l.chars().count() > width).collect()
}

#[test]
fn the_demo_scan_table_fits_80_columns_and_the_full_layout_is_kept_above() {
    let out = farmkey()
        .args(["scan", "--demo"])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(wider_than(&text, 80), Vec::<&str>::new(), "{text}");
    // Compact: each site on its own line, its servers below with the set.
    assert!(
        text.contains("KEY SET") && !text.contains("VALIDATIONKEY"),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "Flowtime !"), "{text}");
    let set_row = |l: &&str| {
        let cells: Vec<&str> = l.split_whitespace().collect();
        cells.len() >= 3
            && cells[0].starts_with("web")
            && cells[1].len() == 1
            && cells[2].len() == 8
            && cells[2].chars().all(|c| c.is_ascii_hexdigit())
    };
    assert!(text.lines().filter(set_row).count() >= 8, "{text}");
    // The findings, wrapped, still say all they said.
    assert!(text.contains("push one key set"), "{text}");

    // Wide enough, the full layout with a column per key.
    let out = farmkey()
        .args(["scan", "--demo"])
        .env("COLUMNS", "200")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("VALIDATIONKEY") && text.contains("KEY SET"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("Flowtime !  ")),
        "{text}"
    );
}

#[test]
fn the_key_set_fingerprint_is_in_the_table_and_the_json() {
    let dir = farm_copy("consistent");
    let (_, text) = scan_of(dir.path(), "json");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut seen = 0;
    let (_, table) = scan_of(dir.path(), "table");
    for site in json["sites"].as_array().unwrap() {
        for i in site["instances"].as_array().unwrap() {
            let (Some(group), Some(set)) = (i["key_group"].as_str(), i["key_set"].as_str()) else {
                continue;
            };
            assert_eq!(set.len(), 8, "{i}");
            // The table shows the same set beside the same server.
            let server = i["server"].as_str().unwrap();
            let shown = |l: &str| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                cells.windows(3).any(|w| w == [server, group, set])
            };
            assert!(
                table.lines().any(shown),
                "{group} {set} on {server} not in:\n{table}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 3, "{text}");
}

#[test]
fn a_long_error_never_widens_the_scan_table() {
    let dir = farm_with_web03();
    let long = "a-folder-with-a-name-long-enough-to-fill-a-line-on-its-own-".repeat(3);
    let inv = fs::read_to_string(dir.path().join("farmkey.toml"))
        .unwrap()
        .replace(
            "local_root = \"web03\"",
            &format!("local_root = \"{long}\""),
        );
    fs::write(dir.path().join("farmkey.toml"), inv).unwrap();
    for columns in [None, Some(80)] {
        let mut cmd = farmkey();
        cmd.args(["scan", "-i"])
            .arg(dir.path().join("farmkey.toml"));
        if let Some(c) = columns {
            cmd.env("COLUMNS", c.to_string());
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let text = String::from_utf8(out.stdout).unwrap();
        let (servers, rest) = text.split_once("\n\n").unwrap();
        let widest = columns.unwrap_or(120);
        assert_eq!(wider_than(servers, widest), Vec::<&str>::new(), "{text}");
        let web03 = servers.lines().find(|l| l.starts_with("web03")).unwrap();
        assert!(
            web03.contains("unreachable: ") && web03.ends_with('…'),
            "{web03}"
        );
        // The rows of the sites say why, cut too; the finding has it whole.
        for row in rest.lines().filter(|l| l.contains("(not read: ")) {
            assert!(row.chars().count() <= widest, "{row}");
        }
        let findings = &rest[rest.find("FINDINGS").unwrap()..];
        let unwrapped = findings.split_whitespace().collect::<String>();
        assert!(
            unwrapped.contains(&long),
            "the full text in the findings: {text}"
        );
    }
}

/// A farm of two local servers and an audit log, with a push of `--site`
/// each, in this order.
fn farm_with_pushes(sites: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = farm_copy("consistent");
    let audit = dir.path().join("audit.jsonl");
    for site in sites {
        let out = farmkey()
            .args([
                "push",
                "--yes",
                "--batch",
                "--generate",
                "--site",
                site,
                "--audit",
            ])
            .arg(&audit)
            .arg("-i")
            .arg(dir.path().join("farmkey.toml"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    (dir, audit)
}

#[test]
fn rollback_without_an_inventory_refuses_before_it_asks() {
    let (dir, audit) = farm_with_pushes(&["Flowtime"]);
    // No inventory anywhere: not given, none in the folder, the
    // environment or the configuration folder.
    let empty = tempfile::tempdir().unwrap();
    let out = farmkey()
        .current_dir(empty.path())
        .env_remove("FARMKEY_INVENTORY")
        .env("XDG_CONFIG_HOME", empty.path())
        .env("HOME", empty.path())
        .args(["rollback", "--site", "Flowtime", "--audit"])
        .arg(&audit)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stderr.contains("no inventory"), "{stderr}");
    assert!(
        !stdout.contains("Restore these files") && !stdout.contains("Rollback of push"),
        "nothing is offered before the inventory is found: {stdout}"
    );
    drop(dir);
}

#[test]
fn options_go_before_or_after_the_subcommand() {
    let dir = farm_copy("consistent");
    let inv = dir.path().join("farmkey.toml");
    let before = farmkey()
        .arg("-i")
        .arg(&inv)
        .args(["--jobs", "2", "scan", "--format", "json"])
        .output()
        .unwrap();
    let after = farmkey()
        .args(["scan", "--format", "json", "--jobs", "2", "-i"])
        .arg(&inv)
        .output()
        .unwrap();
    assert_eq!(before.status.code(), Some(0), "{before:?}");
    assert_eq!(after.status.code(), Some(0), "{after:?}");
    let sites = |out: &std::process::Output| {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["sites"].clone()
    };
    assert_eq!(sites(&before), sites(&after));
    // One the subcommand does not take is named, as it would be after it.
    let out = farmkey()
        .args(["--theme", "mono", "scan", "-i"])
        .arg(&inv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'--theme'") && stderr.contains("farmkey scan"),
        "{stderr}"
    );
}

#[test]
fn push_rollback_and_history_find_a_site_spelled_in_another_case_alike() {
    // push finds "flowtime" as the one site so spelled; rollback and
    // history find it in the log the same way.
    let (dir, audit) = farm_with_pushes(&["flowtime"]);
    let history = farmkey()
        .args(["history", "--site", "FLOWTIME", "--audit"])
        .arg(&audit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&history.stdout);
    assert!(text.contains("  Flowtime  key sets "), "{text}");
    let out = farmkey()
        .args([
            "rollback", "--yes", "--batch", "--site", "flowtime", "--audit",
        ])
        .arg(&audit)
        .arg("-i")
        .arg(dir.path().join("farmkey.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout.contains("Rollback of push") && stdout.contains("to Flowtime:"),
        "{stdout}"
    );
}

#[test]
fn history_lists_newest_first_with_key_sets_as_the_console_does() {
    let (_dir, audit) = farm_with_pushes(&["Flowtime", "Sequence Administration"]);
    let history = |extra: &[&str]| {
        let out = farmkey()
            .args(["history", "--audit"])
            .arg(&audit)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // The head line of each push: its site, in the order listed.
    let heads = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with(' '))
            .map(String::from)
            .collect()
    };
    let newest = heads(&history(&[]));
    assert_eq!(newest.len(), 2, "{newest:?}");
    assert!(
        newest[0].contains("  Sequence Administration  "),
        "{newest:?}"
    );
    assert!(newest[1].contains("  Flowtime  "), "{newest:?}");
    for head in &newest {
        // The console's columns: key sets found → written, servers, outcome.
        let (_, sets) = head.split_once("key sets ").unwrap();
        let (from, rest) = sets.split_once(" → ").unwrap();
        assert_eq!(from.len(), 8, "{head}");
        assert!(rest.starts_with(|c: char| c.is_ascii_hexdigit()), "{head}");
        assert!(head.ends_with("2 servers: 2 applied"), "{head}");
    }
    let oldest = heads(&history(&["--oldest-first"]));
    assert_eq!(oldest, newest.into_iter().rev().collect::<Vec<_>>());
}

#[test]
fn import_ssh_config_keeps_what_the_scan_needs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ssh_config");
    fs::write(
        &config,
        "Host bastion\n    HostName 10.9.0.1\n\nHost web01\n    HostName 10.0.0.1\n    User svc\n    Port 2222\n    IdentityFile ~/.ssh/farm\n    ConnectTimeout 4\n    ProxyJump bastion\n    UserKnownHostsFile ~/.ssh/farm_known_hosts\n",
    )
    .unwrap();
    let out = farmkey()
        .args(["import-ssh-config", "--ssh-config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("known_hosts = \"~/.ssh/farm_known_hosts\"\n")
            && text.contains("jump = \"bastion\"\n"),
        "{text}"
    );
    // The rest is read from that file by the alias: the inventory says to
    // give it, and names what it holds.
    assert!(
        text.contains(&format!("--ssh-config {}", config.display()))
            && text.contains("HostName 10.0.0.1, User svc, Port 2222"),
        "{text}"
    );
    let inv = farmkey::inventory::Inventory::parse(&dir.path().join("x.toml"), &text).unwrap();
    assert_eq!(
        inv.servers.len(),
        1,
        "the jump host is not a server: {text}"
    );
    // Resolved with that file, every setting is the configuration's.
    let farmkey::inventory::Target::Ssh { host, settings } = &inv.servers[0].target else {
        panic!("{text}")
    };
    let r = farmkey::transport::ssh::config::resolve(host, settings, Some(&config)).unwrap();
    assert_eq!(
        (r.host_name.as_str(), r.port, r.user.as_str()),
        ("10.0.0.1", 2222, "svc")
    );
    assert_eq!(r.connect_timeout, std::time::Duration::from_secs(4));
    assert!(r.identity_files[0].ends_with(".ssh/farm"));
    assert!(r.known_hosts.ends_with(".ssh/farm_known_hosts"));
    assert_eq!(r.jumps.len(), 1);
    assert_eq!(r.jumps[0].host_name, "10.9.0.1");
}
