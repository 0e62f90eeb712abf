//! The engine against the fixture corpus: exact findings for every farm,
//! values traced to their files, and the editor's promises on every
//! web.config of the corpus.

mod support;

use farmkey::analysis::Selection;
use farmkey::bytes::FileBytes;
use farmkey::config::editor::{EditError, EditRequest, edit};
use farmkey::config::effective::Source;
use farmkey::keys::{DecryptionAlg, KeySet, ValidationAlg};
use std::fs;
use std::path::{Path, PathBuf};
use support::*;

fn findings_of(farm: &str) -> Vec<(String, String, String, String)> {
    finding_rows(&scan_inventory(
        &farm_fixture(farm).join("farmkey.toml"),
        &all_sites(),
    ))
}

#[test]
fn consistent_farm_with_bom_crlf_and_lower_case_hex() {
    assert_eq!(
        findings_of("consistent"),
        vec![
            row("weak-validation", "info", "Flowtime", "web01,web02"),
            row(
                "weak-validation",
                "info",
                "Sequence Administration",
                "web01,web02"
            ),
        ]
    );
    let report = scan_inventory(
        &farm_fixture("consistent").join("farmkey.toml"),
        &all_sites(),
    );
    assert!(report.sites.iter().all(|s| s.consistent()));
    assert!(!report.has_problems());
}

#[test]
fn keys_in_the_root_web_config_only() {
    let report = scan_inventory(
        &farm_fixture("root-keys").join("farmkey.toml"),
        &all_sites(),
    );
    assert_eq!(
        finding_rows(&report),
        vec![
            row("key-mismatch", "error", "Flowtime", "web01,web02,web03"),
            row("weak-validation", "info", "Flowtime", "web01,web02,web03"),
        ]
    );
    let site = report.site("Flowtime").unwrap();
    let web03 = site.instance("web03").unwrap();
    let mk = &web03.effective.as_ref().unwrap().machine_key;
    assert_eq!(
        mk.validation_key.source.to_string(),
        "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\Config\\web.config"
    );
    assert_eq!(
        [
            site.instances[0].key_group,
            site.instances[1].key_group,
            web03.key_group
        ],
        [Some('A'), Some('A'), Some('B')]
    );
    let message = &site.findings[0].message;
    assert!(
        message.contains("set A") && message.contains("on web01 and web02"),
        "{message}"
    );
}

/// applicationHost.config is IIS's own configuration: ASP.NET never reads
/// it, so the key web01 keeps there is ignored and web01 makes up its own.
#[test]
fn keys_in_location_blocks_of_apphost_and_root_web_config() {
    let report = scan_inventory(
        &farm_fixture("location-keys").join("farmkey.toml"),
        &all_sites(),
    );
    assert_eq!(
        finding_rows(&report),
        vec![
            row("algorithm-mismatch", "error", "Flowtime", "web01,web02"),
            row("apphost-ignored", "warning", "Flowtime", "web01"),
            row("auto-generated", "error", "Flowtime", "web01"),
            row("weak-validation", "info", "Flowtime", "web02"),
        ]
    );
    let site = report.site("Flowtime").unwrap();
    let source = |server: &str| {
        site.instance(server)
            .unwrap()
            .effective
            .as_ref()
            .unwrap()
            .machine_key
            .validation_key
            .source
            .to_string()
    };
    assert_eq!(source("web01"), "(default)");
    assert_eq!(
        source("web02"),
        "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\Config\\web.config"
    );
    let ignored = site
        .findings
        .iter()
        .find(|f| f.code.name() == "apphost-ignored")
        .unwrap();
    assert!(
        ignored.message.contains(
            "<machineKey> in C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config (line 20) is ignored"
        ),
        "{}",
        ignored.message
    );
}

#[test]
fn nested_applications_inherit_and_override() {
    let report = scan_inventory(
        &farm_fixture("nested-apps").join("farmkey.toml"),
        &all_sites(),
    );
    assert_eq!(
        finding_rows(&report),
        vec![
            row("key-mismatch", "error", "Flowtime/api", "web01,web02"),
            row("weak-validation", "info", "Flowtime", "web01,web02"),
            row("weak-validation", "info", "Flowtime/api", "web01,web02"),
        ]
    );
    let api = report.site("Flowtime/api").unwrap();
    let inherited = api.instance("web01").unwrap().effective.as_ref().unwrap();
    assert_eq!(
        inherited.machine_key.validation_key.source.to_string(),
        "C:\\inetpub\\Flowtime\\web.config",
        "the child application inherits its site's key"
    );
    let own = api.instance("web02").unwrap().effective.as_ref().unwrap();
    assert_eq!(
        own.machine_key.validation_key.source.to_string(),
        "D:\\Cora\\FlowtimeApi\\web.config"
    );
    assert_eq!(
        own.machine_key.decryption_key.source.to_string(),
        "C:\\inetpub\\Flowtime\\web.config"
    );
}

#[test]
fn autogenerate_with_and_without_isolate_apps() {
    assert_eq!(
        findings_of("autogen"),
        vec![
            row("auto-generated", "error", "Flowtime", "web01,web02"),
            row(
                "isolate-modifier",
                "warning",
                "Sequence Administration",
                "web01,web02,web03"
            ),
            row(
                "weak-validation",
                "info",
                "Sequence Administration",
                "web01,web02,web03"
            ),
        ]
    );
}

#[test]
fn encrypted_section_cannot_be_compared() {
    let report = scan_inventory(
        &farm_fixture("encrypted").join("farmkey.toml"),
        &all_sites(),
    );
    assert_eq!(
        finding_rows(&report),
        vec![
            row("encrypted-section", "warning", "Flowtime", "web02"),
            row("weak-validation", "info", "Flowtime", "web01"),
        ]
    );
    let eff = report
        .site("Flowtime")
        .unwrap()
        .instance("web02")
        .unwrap()
        .effective
        .as_ref()
        .unwrap();
    assert!(eff.machine_key.is_encrypted());
    assert_eq!(eff.encrypted_sections[0].section, "machineKey");
}

#[test]
fn a_32_bit_pool_reads_the_32_bit_framework_folder() {
    let report = scan_inventory(&farm_fixture("bitness").join("farmkey.toml"), &all_sites());
    assert_eq!(
        finding_rows(&report),
        vec![row(
            "weak-validation",
            "info",
            "Sequence Administration",
            "web01,web02"
        )]
    );
    let inst = report
        .site("Sequence Administration")
        .unwrap()
        .instance("web01")
        .unwrap();
    assert!(inst.app.bits32);
    assert_eq!(
        inst.effective
            .as_ref()
            .unwrap()
            .machine_key
            .validation_key
            .source
            .to_string(),
        "C:\\Windows\\Microsoft.NET\\Framework\\v4.0.30319\\Config\\web.config"
    );
}

#[test]
fn site_on_one_server_and_a_missing_handler_swap() {
    assert_eq!(
        findings_of("one-server-site"),
        vec![
            row("dpapi-session-tokens", "error", "Flowtime", "web02"),
            row("site-missing", "warning", "Process TOGO", "web02"),
            row("weak-validation", "info", "Flowtime", "web01,web02"),
            row("weak-validation", "info", "Process TOGO", "web01"),
        ]
    );
}

#[test]
fn malformed_files_are_unreadable_and_named() {
    let report = scan_inventory(
        &farm_fixture("malformed").join("farmkey.toml"),
        &all_sites(),
    );
    assert_eq!(
        finding_rows(&report),
        vec![
            row("unreadable", "error", "(farm)", "web03"),
            row("unreadable", "error", "Flowtime", "web02"),
            row("weak-validation", "info", "Flowtime", "web01"),
        ]
    );
    let site_finding = &report.site("Flowtime").unwrap().findings[0];
    assert!(
        site_finding
            .message
            .contains("C:\\inetpub\\Flowtime\\web.config: not well-formed XML at line 21"),
        "{}",
        site_finding.message
    );
    let farm_finding = &report.findings[0];
    assert!(
        farm_finding
            .message
            .contains("applicationHost.config: not well-formed XML at line 16"),
        "{}",
        farm_finding.message
    );
    let web03 = report.servers.iter().find(|s| s.name == "web03").unwrap();
    assert!(web03.reachable && web03.error.is_some());
}

#[test]
fn a_missing_web_config_inherits_the_defaults() {
    assert_eq!(
        findings_of("missing-webconfig"),
        vec![
            row("auto-generated", "error", "Flowtime", "web02"),
            row(
                "compatibility-mode-mismatch",
                "error",
                "Flowtime",
                "web01,web02"
            ),
            row(
                "target-framework-mismatch",
                "warning",
                "Flowtime",
                "web01,web02"
            ),
        ]
    );
}

#[test]
fn invalid_keys_and_algorithm_mismatches() {
    let report = scan_inventory(&farm_fixture("invalid").join("farmkey.toml"), &all_sites());
    assert_eq!(
        finding_rows(&report),
        vec![
            row("algorithm-mismatch", "error", "Flowtime", "web01,web02"),
            row(
                "compatibility-mode-mismatch",
                "error",
                "Flowtime",
                "web01,web02"
            ),
            row("invalid-key", "error", "Flowtime", "web01"),
            row("invalid-key", "error", "Flowtime", "web01"),
            row(
                "target-framework-mismatch",
                "warning",
                "Flowtime",
                "web01,web02"
            ),
            row("weak-validation", "info", "Flowtime", "web01,web02"),
        ]
    );
    let messages: Vec<&str> = report.sites[0]
        .findings
        .iter()
        .map(|f| f.message.as_str())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("validationKey") && m.contains("SHA1 needs at least 40"))
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("decryptionKey") && m.contains("non-hex character 'Z'"))
    );
}

#[test]
fn by_default_only_cora_components_are_reported() {
    let demo = farmkey::demo::DemoFarm::new().unwrap();
    let cora = scan_inventory(&demo.inventory.path, &Selection::default());
    let names: Vec<&str> = cora.sites.iter().map(|s| s.site.as_str()).collect();
    assert_eq!(
        names,
        ["Flowtime", "Process TOGO", "Sequence Administration"]
    );
    let every = scan_inventory(&demo.inventory.path, &all_sites());
    assert!(every.site("Default Web Site").is_some());
    let one = scan_inventory(
        &demo.inventory.path,
        &Selection {
            all_sites: false,
            sites: vec!["process togo".into()],
        },
    );
    assert_eq!(one.sites.len(), 1);
    assert_eq!(one.sites[0].site, "Process TOGO");
}

#[test]
fn the_demo_farm_has_the_advertised_drift() {
    let demo = farmkey::demo::DemoFarm::new().unwrap();
    let report = scan_inventory(&demo.inventory.path, &Selection::default());
    let codes: Vec<(String, String)> = finding_rows(&report)
        .into_iter()
        .filter(|r| r.1 != "info")
        .map(|r| (r.0, r.2))
        .collect();
    assert_eq!(
        codes,
        [
            ("algorithm-mismatch", "Sequence Administration"),
            ("auto-generated", "Sequence Administration"),
            ("dpapi-session-tokens", "Process TOGO"),
            ("key-mismatch", "Flowtime"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    // Keys are made fresh for every demo farm.
    let other = farmkey::demo::DemoFarm::new().unwrap();
    let again = scan_inventory(&other.inventory.path, &Selection::default());
    let fp = |r: &farmkey::analysis::FarmReport| r.sites[0].instances[0].set_fingerprint.clone();
    assert_ne!(fp(&report), fp(&again));
}

// ---- the editor on every web.config of the corpus ----

fn all_web_configs() -> Vec<PathBuf> {
    snapshot_tree(&fixtures().join("farms"))
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.file_name().is_some_and(|n| n == "web.config"))
        .filter(|p| !p.to_string_lossy().contains("Microsoft.NET"))
        .collect()
}

fn key_set() -> KeySet {
    KeySet::generate(ValidationAlg::HmacSha256, DecryptionAlg::Aes).unwrap()
}

fn lone_lf(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
        .count()
}

#[test]
fn editor_keeps_every_byte_outside_the_edit_on_every_fixture() {
    let configs = all_web_configs();
    assert!(
        configs.len() > 20,
        "the corpus has {} web.config files",
        configs.len()
    );
    let mut edited_count = 0;
    for path in configs {
        let original = fs::read(&path).unwrap();
        let req = EditRequest {
            machine_key: Some(key_set()),
            handler_swap: true,
            ..Default::default()
        };
        match edit(&FileBytes::new(original.clone()), &req) {
            Ok(out) => {
                edited_count += 1;
                assert!(out.changed);
                edit_confined(&original, &out.bytes)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert_eq!(
                    out.bytes.starts_with(b"\xEF\xBB\xBF"),
                    original.starts_with(b"\xEF\xBB\xBF")
                );
                let crlf = original.windows(2).any(|w| w == b"\r\n");
                if crlf {
                    assert_eq!(
                        lone_lf(&out.bytes),
                        lone_lf(&original),
                        "{}: new lines must be CRLF",
                        path.display()
                    );
                } else {
                    assert!(!out.bytes.windows(2).any(|w| w == b"\r\n"));
                }
                // Editing the result again changes nothing.
                let again = edit(&out.bytes, &req).unwrap();
                assert!(!again.changed, "{}", path.display());
            }
            Err(EditError::EncryptedMachineKey { .. }) => {
                assert!(
                    path.to_string_lossy().contains("encrypted"),
                    "{}",
                    path.display()
                );
            }
            Err(EditError::Xml(_)) => {
                assert!(
                    path.to_string_lossy().contains("malformed"),
                    "{}",
                    path.display()
                );
            }
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
    assert!(edited_count > 20);
}

/// Edits the web.config of `site` on every server the way a push would,
/// creating it where missing.
fn fix_site(farm_dir: &Path, site: &str, keys: &KeySet) {
    let report = scan_inventory(&farm_dir.join("farmkey.toml"), &all_sites());
    let site = report.site(site).unwrap();
    for inst in &site.instances {
        let path = inst.config_path.as_ref().unwrap();
        let local = farm_dir.join(&inst.server).join(&path.as_sftp()[1..]);
        let before = fs::read(&local)
            .map(FileBytes::new)
            .unwrap_or_else(|_| farmkey::config::editor::empty_web_config());
        let req = EditRequest {
            machine_key: Some(keys.clone()),
            compatibility_mode: Some("Framework45".into()),
            handler_swap: true,
            identity_section_declared_above: inst.identity_declared_above,
        };
        let out = edit(&before, &req).unwrap();
        fs::create_dir_all(local.parent().unwrap()).unwrap();
        fs::write(&local, &*out.bytes).unwrap();
    }
}

#[test]
fn scanning_an_edited_farm_finds_nothing_left_to_fix() {
    for (farm, site) in [
        ("root-keys", "Flowtime"),
        ("nested-apps", "Flowtime/api"),
        ("autogen", "Flowtime"),
        ("autogen", "Sequence Administration"),
        ("one-server-site", "Flowtime"),
        ("missing-webconfig", "Flowtime"),
        ("invalid", "Flowtime"),
    ] {
        let dir = farm_copy(farm);
        let keys = key_set();
        fix_site(dir.path(), site, &keys);
        let report = scan_inventory(&dir.path().join("farmkey.toml"), &all_sites());
        let left: Vec<_> = report
            .site(site)
            .unwrap()
            .findings
            .iter()
            .filter(|f| f.code.name() != "target-framework-mismatch")
            .map(|f| f.code.name())
            .collect();
        assert!(left.is_empty(), "{farm}/{site}: {left:?}");
        for inst in &report.site(site).unwrap().instances {
            let eff = inst.effective.as_ref().unwrap();
            assert_eq!(
                eff.handler.state.name(),
                "machinekey",
                "{farm}/{site} on {}",
                inst.server
            );
            assert!(matches!(
                eff.machine_key.validation_key.source,
                Source::File(_)
            ));
            assert!(
                eff.machine_key
                    .validation_key
                    .value()
                    .unwrap()
                    .same_key(&keys.validation_key)
            );
        }
    }
}

#[test]
fn the_confinement_check_catches_a_changed_byte() {
    let before =
        b"<configuration>\n  <appSettings>x</appSettings>\n  <system.web/>\n</configuration>\n";
    let changed =
        b"<configuration>\n  <appSettings>y</appSettings>\n  <system.web/>\n</configuration>\n";
    assert!(edit_confined(before, changed).is_err());
    let inserted = b"<configuration>\n  <appSettings>x</appSettings>\n  <new/>\n  <system.web/>\n</configuration>\n";
    assert!(edit_confined(before, inserted).is_ok());
    let grown = b"<configuration>\n  <appSettings>x</appSettings>\n  <system.web>\n  </system.web>\n</configuration>\n";
    assert!(edit_confined(before, grown).is_ok());
}
