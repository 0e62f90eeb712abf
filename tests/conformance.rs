//! The conformance table: one row per branch of the .NET reference source
//! (and IIS) that decides which key, algorithm, compatibility mode or
//! session-token handler an application ends up with, or whether it starts.
//! Rows live in `tests/conformance/*.toml`; each names its source file and
//! function, the condition, what ASP.NET or WIF does and what farmkey
//! reports, and carries the farm that shows it. Every row is a test of its
//! own (`cargo test --test conformance ROW-ID`): the farm is laid out on
//! disk, scanned as `local_root` servers (and, for rows whose outcome the
//! transport could change, through real sshd servers too), and the scan's
//! JSON contract is checked against the row's expectation.
//!
//! A row that farmkey does not model yet says `modelled = false` and why:
//! its test passes while farmkey still answers otherwise than the source,
//! and fails the day it answers right, so the table never claims less (or
//! more) than is true. `tests/conformance/TABLE.md` is the table as people
//! read it, generated from the rows (`FARMKEY_BLESS=1` rewrites it), and the
//! README states its size; both are checked here.

mod support;

use libtest_mimic::{Arguments, Failed, Trial};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

const ROWS_DIR: &str = "tests/conformance";
const SITE: &str = "Flowtime";
const SERVERS: [&str; 3] = ["web01", "web02", "web03"];

/// Text a row's XML may name instead of spelling it out (`{{VK128}}`).
/// Keys are obviously fake test data.
const PLACEHOLDERS: &[(&str, &str)] = &[
    (
        "{{VK128}}",
        "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90",
    ),
    (
        "{{VK128B}}",
        "0F1E2D3C4B5A69788796A5B4C3D2E1F00F1E2D3C4B5A69788796A5B4C3D2E1F00F1E2D3C4B5A69788796A5B4C3D2E1F00F1E2D3C4B5A69788796A5B4C3D2E1F0",
    ),
    (
        "{{VK64}}",
        "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90",
    ),
    ("{{VK40}}", "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4"),
    (
        "{{DK64}}",
        "11223344556677889900AABBCCDDEEFF11223344556677889900AABBCCDDEEFF",
    ),
    (
        "{{DK64B}}",
        "FFEEDDCCBBAA00998877665544332211FFEEDDCCBBAA00998877665544332211",
    ),
    (
        "{{DK48}}",
        "11223344556677889900AABBCCDDEEFF1122334455667788",
    ),
    ("{{DK32}}", "11223344556677889900AABBCCDDEEFF"),
    ("{{DK16}}", "1122334455667788"),
    (
        "{{WIF_SECTIONS}}",
        r#"<section name="system.identityModel" type="System.IdentityModel.Configuration.SystemIdentityModelSection, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=B77A5C561934E089" />
    <section name="system.identityModel.services" type="System.IdentityModel.Services.Configuration.SystemIdentityModelServicesSection, System.IdentityModel.Services, Version=4.0.0.0, Culture=neutral, PublicKeyToken=B77A5C561934E089" />"#,
    ),
    (
        "{{SESSION_HANDLER}}",
        "System.IdentityModel.Tokens.SessionSecurityTokenHandler, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089",
    ),
    (
        "{{MACHINEKEY_HANDLER}}",
        "System.IdentityModel.Services.Tokens.MachineKeySessionSecurityTokenHandler, System.IdentityModel.Services, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089",
    ),
    (
        "{{MACHINE_KEY}}",
        r#"<machineKey validationKey="A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90" decryptionKey="11223344556677889900AABBCCDDEEFF11223344556677889900AABBCCDDEEFF" validation="HMACSHA256" decryption="AES" />"#,
    ),
    (
        "{{SAM}}",
        r#"<add name="SessionAuthenticationModule" type="System.IdentityModel.Services.SessionAuthenticationModule, System.IdentityModel.Services, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089" preCondition="managedHandler" />"#,
    ),
    (
        "{{SWAP}}",
        r#"<securityTokenHandlers>
        <remove type="System.IdentityModel.Tokens.SessionSecurityTokenHandler, System.IdentityModel, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089" />
        <add type="System.IdentityModel.Services.Tokens.MachineKeySessionSecurityTokenHandler, System.IdentityModel.Services, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089" />
      </securityTokenHandlers>"#,
    ),
];

const MACHINE_CONFIG: &str = r#"<?xml version="1.0" encoding="UTF-8" ?>
<configuration>
  <configSections>
    <sectionGroup name="system.web" type="System.Web.Configuration.SystemWebSectionGroup, System.Web, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b03f5f7f11d50a3a">
      <section name="machineKey" type="System.Web.Configuration.MachineKeySection, System.Web, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b03f5f7f11d50a3a" allowDefinition="MachineToApplication" />
    </sectionGroup>
  </configSections>
  <system.web>
    <processModel autoConfig="true" />
  </system.web>
</configuration>
"#;

const ROOT_WEB_CONFIG: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.web>
    <compilation>
      <assemblies>
        <remove assembly="*" />
      </assemblies>
    </compilation>
  </system.web>
</configuration>
"#;

/// `{{POOL}}` is the Flowtime pool's attributes, `{{SITES}}` the `<site>`
/// elements, `{{POOL_DEFAULTS}}` those of `<applicationPoolDefaults>`.
const APPHOST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<configuration>
  <system.applicationHost>
    <applicationPools>
      <add name="DefaultAppPool" />
      <add name="Flowtime" {{POOL}} />
      <applicationPoolDefaults {{POOL_DEFAULTS}} />
    </applicationPools>
    <sites>
      {{SITES}}
      <applicationDefaults applicationPool="DefaultAppPool" />
    </sites>
  </system.applicationHost>
</configuration>
"#;

const SITES: &str = r#"<site name="Flowtime" id="2">
        <application path="/" applicationPool="Flowtime">
          <virtualDirectory path="/" physicalPath="%SystemDrive%\inetpub\Flowtime" />
        </application>
      </site>"#;

const FRAMEWORK_CONFIG: [&str; 2] = [
    "C:/Windows/Microsoft.NET/Framework64/v4.0.30319/Config",
    "C:/Windows/Microsoft.NET/Framework/v4.0.30319/Config",
];
const APPHOST_PATH: &str = "C:/Windows/System32/inetsrv/config/applicationHost.config";
const SITE_WEB_CONFIG: &str = "C:/inetpub/Flowtime/web.config";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RowFile {
    #[serde(default)]
    row: Vec<Row>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    /// Unique across files: the test's name.
    id: String,
    /// Reference source file (`System.Web/Configuration/MachineKeySection.cs`),
    /// or the document for IIS behaviour.
    source: String,
    /// The function (or member) holding the branch.
    function: String,
    condition: String,
    /// What ASP.NET, WIF or IIS does.
    aspnet: String,
    /// What farmkey reports.
    farmkey: String,
    #[serde(default = "yes")]
    modelled: bool,
    /// Why a row is not modelled (required then).
    #[serde(default)]
    why: Option<String>,
    /// Also scan the farm through real sshd servers (case, encodings and
    /// file discovery over SFTP).
    #[serde(default)]
    ssh: bool,
    #[serde(default)]
    farm: Farm,
    expect: Expect,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Farm {
    /// How many servers (web01, web02, ...); 2 unless set.
    #[serde(default)]
    servers: Option<usize>,
    /// The site's `web.config` on every server (none when absent).
    #[serde(default)]
    web_config: Option<String>,
    /// The 64-bit (and, unless `root_web_config32` says otherwise, 32-bit)
    /// root web.config; the base one when absent.
    #[serde(default)]
    root_web_config: Option<String>,
    #[serde(default)]
    root_web_config32: Option<String>,
    #[serde(default)]
    machine_config: Option<String>,
    #[serde(default)]
    machine_config32: Option<String>,
    /// Attributes of the Flowtime pool's `<add>`.
    #[serde(default)]
    pool: Option<String>,
    #[serde(default)]
    pool_defaults: Option<String>,
    /// The `<site>` elements of applicationHost.config.
    #[serde(default)]
    sites: Option<String>,
    /// All of applicationHost.config.
    #[serde(default)]
    apphost: Option<String>,
    /// More files, by Windows path (`C:/inetpub/Flowtime/App_Config/x.config`).
    #[serde(default)]
    files: BTreeMap<String, String>,
    /// Files written as these bytes, hex (encodings, byte order marks).
    #[serde(default)]
    files_hex: BTreeMap<String, String>,
    /// Per server (`web02`): the same fields, replacing the farm's.
    #[serde(default)]
    server: BTreeMap<String, Box<Farm>>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// The site the row is about; `Flowtime` unless set.
    #[serde(default)]
    site: Option<String>,
    /// The codes of the site's findings as `code:severity`, exactly (any
    /// order, each once however many servers or files raise it).
    #[serde(default)]
    findings: Option<Vec<String>>,
    /// The farm-level findings as `code:severity`, exactly.
    #[serde(default)]
    farm_findings: Option<Vec<String>>,
    /// Words some finding of the site must contain (each, in any finding).
    #[serde(default)]
    message_contains: Vec<String>,
    /// Words no finding of the site may contain.
    #[serde(default)]
    message_lacks: Vec<String>,
    /// JSON `consistent`: true, false, or "null".
    #[serde(default)]
    consistent: Option<toml::Value>,
    /// The site is absent from the report (not an application, or not Cora).
    #[serde(default)]
    absent: bool,
    /// Per-instance JSON fields expected on every server, unless `server`
    /// says otherwise: `validation`, `decryption`, `compatibility_mode`,
    /// `validation_key` / `decryption_key` (their `state`),
    /// `session_token_handler`, `app_pool`, `bitness`, ... A string
    /// `"null"` means JSON null.
    #[serde(default)]
    instance: BTreeMap<String, String>,
    #[serde(default)]
    server: BTreeMap<String, BTreeMap<String, String>>,
}

fn expand(text: &str) -> String {
    let mut out = text.to_string();
    for (name, value) in PLACEHOLDERS {
        out = out.replace(name, value);
    }
    out
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    let clean: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&clean).unwrap_or_else(|e| panic!("files_hex: {e}"))
}

/// The files of one server: the base farm with the row's changes.
fn server_files(farm: &Farm, name: &str) -> BTreeMap<String, Vec<u8>> {
    let over = farm.server.get(name).map(|b| b.as_ref());
    let pick = |f: fn(&Farm) -> &Option<String>| -> Option<String> {
        over.and_then(|o| f(o).clone()).or_else(|| f(farm).clone())
    };
    let mut files = BTreeMap::new();
    let machine = pick(|f| &f.machine_config).unwrap_or_else(|| MACHINE_CONFIG.into());
    let machine32 = pick(|f| &f.machine_config32).unwrap_or_else(|| machine.clone());
    let root = pick(|f| &f.root_web_config).unwrap_or_else(|| ROOT_WEB_CONFIG.into());
    let root32 = pick(|f| &f.root_web_config32).unwrap_or_else(|| root.clone());
    for (dir, m, r) in [
        (FRAMEWORK_CONFIG[0], &machine, &root),
        (FRAMEWORK_CONFIG[1], &machine32, &root32),
    ] {
        files.insert(format!("{dir}/machine.config"), expand(m).into_bytes());
        files.insert(format!("{dir}/web.config"), expand(r).into_bytes());
    }
    let apphost = pick(|f| &f.apphost).unwrap_or_else(|| {
        APPHOST
            .replace(
                "{{POOL}}",
                &pick(|f| &f.pool).unwrap_or_else(|| r#"managedRuntimeVersion="v4.0""#.into()),
            )
            .replace(
                "{{POOL_DEFAULTS}}",
                &pick(|f| &f.pool_defaults)
                    .unwrap_or_else(|| r#"managedRuntimeVersion="v4.0""#.into()),
            )
            .replace(
                "{{SITES}}",
                &pick(|f| &f.sites).unwrap_or_else(|| SITES.into()),
            )
    });
    files.insert(APPHOST_PATH.into(), expand(&apphost).into_bytes());
    if let Some(web) = pick(|f| &f.web_config) {
        files.insert(SITE_WEB_CONFIG.into(), expand(&web).into_bytes());
    }
    for layer in [Some(farm), over].into_iter().flatten() {
        for (path, text) in &layer.files {
            files.insert(path.clone(), expand(text).into_bytes());
        }
        for (path, hex) in &layer.files_hex {
            files.insert(path.clone(), hex_bytes(hex));
        }
    }
    files
}

/// Lays the farm out under `dir` (one folder per server) and writes its
/// `local_root` inventory.
fn lay_out(farm: &Farm, dir: &Path) -> (PathBuf, Vec<(String, PathBuf)>) {
    let count = farm.servers.unwrap_or(2);
    assert!((1..=SERVERS.len()).contains(&count), "servers: 1 to 3");
    let mut inventory = String::new();
    let mut trees = Vec::new();
    for name in &SERVERS[..count] {
        let root = dir.join(name);
        for (path, bytes) in server_files(farm, name) {
            let file = root.join(path.trim_start_matches('/'));
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(&file, bytes).unwrap();
        }
        writeln!(
            inventory,
            "[[servers]]\nname = \"{name}\"\nlocal_root = \"{name}\"\n"
        )
        .unwrap();
        trees.push((name.to_string(), root));
    }
    let path = dir.join("farmkey.toml");
    fs::write(&path, inventory).unwrap();
    (path, trees)
}

fn report_json(report: &farmkey::analysis::FarmReport) -> Value {
    let mut out = Vec::new();
    farmkey::report::write_json(report, &mut out).unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn codes(findings: &Value) -> Vec<String> {
    let mut out: Vec<String> = findings
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            format!(
                "{}:{}",
                f["code"].as_str().unwrap_or("?"),
                f["severity"].as_str().unwrap_or("?")
            )
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn sorted(list: &[String]) -> Vec<String> {
    let mut out = list.to_vec();
    out.sort();
    out.dedup();
    out
}

/// A JSON field as the row writes it: strings bare, null as "null", the
/// key objects by their state.
fn field(instance: &Value, name: &str) -> String {
    let v = &instance[name];
    let v = match v {
        Value::Object(o) if o.contains_key("state") => &o["state"],
        other => other,
    };
    match v {
        Value::Null => "null".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every way the scan's JSON differs from the row's expectation.
fn mismatches(expect: &Expect, json: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(farm) = &expect.farm_findings {
        let got = codes(&json["findings"]);
        if got != sorted(farm) {
            out.push(format!(
                "farm findings {got:?}, expected {:?}",
                sorted(farm)
            ));
        }
    }
    let site_name = expect.site.as_deref().unwrap_or(SITE);
    let site = json["sites"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["site"] == site_name);
    let Some(site) = site else {
        if !expect.absent {
            out.push(format!("no site {site_name} in the report"));
        }
        return out;
    };
    if expect.absent {
        out.push(format!("site {site_name} is in the report"));
        return out;
    }
    if let Some(findings) = &expect.findings {
        let got = codes(&site["findings"]);
        if got != sorted(findings) {
            let messages: Vec<&str> = site["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["message"].as_str())
                .collect();
            out.push(format!(
                "findings {got:?}, expected {:?} ({messages:?})",
                sorted(findings)
            ));
        }
    }
    let messages: Vec<&str> = site["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["message"].as_str())
        .collect();
    for word in &expect.message_contains {
        if !messages.iter().any(|m| m.contains(word.as_str())) {
            out.push(format!("no finding says {word:?}: {messages:?}"));
        }
    }
    for word in &expect.message_lacks {
        if messages.iter().any(|m| m.contains(word.as_str())) {
            out.push(format!("a finding says {word:?}: {messages:?}"));
        }
    }
    if let Some(consistent) = &expect.consistent {
        let want = match consistent {
            toml::Value::Boolean(b) => Value::Bool(*b),
            toml::Value::String(s) if s == "null" => Value::Null,
            other => panic!("consistent: true, false or \"null\", not {other}"),
        };
        if site["consistent"] != want {
            out.push(format!(
                "consistent {}, expected {want}",
                site["consistent"]
            ));
        }
    }
    for instance in site["instances"].as_array().into_iter().flatten() {
        let server = instance["server"].as_str().unwrap_or("?");
        let mut wanted = expect.instance.clone();
        if let Some(more) = expect.server.get(server) {
            wanted.extend(more.clone());
        }
        for (name, want) in &wanted {
            let got = field(instance, name);
            if &got != want {
                out.push(format!("{server} {name} = {got:?}, expected {want:?}"));
            }
        }
    }
    out
}

fn check(row: &Row, json: &Value, how: &str) -> Result<(), Failed> {
    let wrong = mismatches(&row.expect, json);
    match (row.modelled, wrong.is_empty()) {
        (true, true) | (false, false) => Ok(()),
        (true, false) => Err(format!(
            "{} ({how}): farmkey does not answer as the row says:\n  {}",
            row.id,
            wrong.join("\n  ")
        )
        .into()),
        (false, true) => Err(format!(
            "{} ({how}): farmkey now answers as ASP.NET does: mark the row modelled",
            row.id
        )
        .into()),
    }
}

fn run_row(row: &Row) -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    let (inventory, trees) = lay_out(&row.farm, dir.path());
    let report = support::scan_inventory(&inventory, &support::all_sites());
    let local = report_json(&report);
    check(row, &local, "local_root")?;
    if row.ssh {
        let farm = support::sshd::SshFarm::start(&trees, support::sshd::Options::default());
        let inv = farmkey::inventory::Inventory::load(&farm.inventory("")).unwrap();
        let opts = farmkey::transport::ConnectOptions {
            ssh_config: Some(PathBuf::from("/nonexistent/ssh_config")),
            ..Default::default()
        };
        let scans = farmkey::farm::scan_all(&inv.servers, opts, 4);
        let report = farmkey::analysis::analyze(&scans, &support::all_sites());
        check(row, &report_json(&report), "over ssh")?;
    }
    Ok(())
}

fn load_rows() -> Vec<(String, Row)> {
    let mut files: Vec<PathBuf> = fs::read_dir(ROWS_DIR)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut rows = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let parsed: RowFile =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let area = file.file_stem().unwrap().to_string_lossy().to_string();
        rows.extend(parsed.row.into_iter().map(|r| (area.clone(), r)));
    }
    rows
}

/// The table as people read it.
fn table(rows: &[(String, Row)]) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let modelled = rows.iter().filter(|(_, r)| r.modelled).count();
    let mut out = format!(
        "# Conformance table\n\nGenerated from `tests/conformance/*.toml` by `tests/conformance.rs` \
         (`FARMKEY_BLESS=1 cargo test --test conformance` rewrites it). {}\n",
        summary(rows.len(), modelled)
    );
    let mut area = "";
    for (a, r) in rows {
        if a != area {
            area = a;
            write!(
                out,
                "\n## {area}\n\n| id | source, function | condition | ASP.NET / WIF / IIS | farmkey |\n|---|---|---|---|---|\n"
            )
            .unwrap();
        }
        let farmkey = if r.modelled {
            cell(&r.farmkey)
        } else {
            format!(
                "**not modelled**: {} ({})",
                cell(&r.farmkey),
                cell(r.why.as_deref().unwrap_or(""))
            )
        };
        writeln!(
            out,
            "| `{}` | `{}` {} | {} | {} | {} |",
            r.id,
            cell(&r.source),
            cell(&r.function),
            cell(&r.condition),
            cell(&r.aspnet),
            farmkey
        )
        .unwrap();
    }
    out
}

/// The sentence the README and the table carry.
fn summary(rows: usize, modelled: usize) -> String {
    format!("{rows} rows: {modelled} modelled, {} not.", rows - modelled)
}

fn table_trial(rows: &[(String, Row)]) -> Trial {
    let text = table(rows);
    let modelled = rows.iter().filter(|(_, r)| r.modelled).count();
    let line = summary(rows.len(), modelled);
    Trial::test("table-and-readme-agree-with-the-rows", move || {
        let path = Path::new(ROWS_DIR).join("TABLE.md");
        if std::env::var_os("FARMKEY_BLESS").is_some() {
            fs::write(&path, &text).unwrap();
        }
        if fs::read_to_string(&path).unwrap_or_default() != text {
            return Err("tests/conformance/TABLE.md is not the rows' table: run FARMKEY_BLESS=1 cargo test --test conformance".into());
        }
        let readme = fs::read_to_string("README.md").unwrap();
        if !readme.contains(&format!("Conformance table: {line}")) {
            return Err(format!("README.md does not say \"Conformance table: {line}\"").into());
        }
        Ok(())
    })
}

fn row_rules_trial(rows: &[(String, Row)]) -> Trial {
    let problems: Vec<String> = {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (_, r) in rows {
            if !seen.insert(r.id.clone()) {
                out.push(format!("{}: id used twice", r.id));
            }
            if !r.modelled && r.why.as_deref().is_none_or(str::is_empty) {
                out.push(format!("{}: not modelled without `why`", r.id));
            }
            let e = &r.expect;
            if e.findings.is_none()
                && e.farm_findings.is_none()
                && e.instance.is_empty()
                && e.server.is_empty()
                && e.consistent.is_none()
                && !e.absent
            {
                out.push(format!("{}: expects nothing", r.id));
            }
        }
        out
    };
    Trial::test("rows-are-well-formed", move || {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n").into())
        }
    })
}

fn main() {
    let args = Arguments::from_args();
    let rows = load_rows();
    let mut trials = vec![table_trial(&rows), row_rules_trial(&rows)];
    for (_, row) in rows {
        let name = row.id.clone();
        trials.push(Trial::test(name, move || run_row(&row)));
    }
    libtest_mimic::run(&args, trials).exit();
}
