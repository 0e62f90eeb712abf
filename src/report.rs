//! `scan` output: a table for people, JSON for programs. Keys appear as
//! fingerprints only; the table shows what servers sent through
//! [`escape`](crate::safe_text::escape), the JSON exactly.

use crate::analysis::{FarmReport, Finding, Instance, SiteReport, SiteVerdict};
use crate::config::machine_key::KeyState;
use crate::config::record::Sourced;
use crate::keys::{KeyPurpose, mask_key_text};
use crate::safe_text::escape;
use serde::Serialize;
use std::borrow::Cow;
use std::fmt::Write as _;

/// The JSON of `scan --format json`, serialised straight from the report
/// (a `serde_json::Value` tree of a large farm costs several times its size).
#[derive(Serialize)]
struct JsonReport<'a> {
    servers: &'a [crate::analysis::ServerStatus],
    sites: Vec<JsonSite<'a>>,
    findings: Vec<JsonFinding<'a>>,
}

#[derive(Serialize)]
struct JsonSite<'a> {
    site: &'a str,
    component: Option<&'static str>,
    /// Null when a server that may host it was not read.
    consistent: Option<bool>,
    absent_on: &'a [String],
    unverified_on: Vec<&'a str>,
    instances: Vec<JsonInstance<'a>>,
    findings: Vec<JsonFinding<'a>>,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    code: crate::analysis::Code,
    severity: crate::analysis::Severity,
    servers: &'a [String],
    message: &'a str,
    /// The registry's remedy for the code.
    remedy: &'static str,
}

#[derive(Serialize)]
struct JsonKey<'a> {
    state: &'static str,
    fingerprint: Option<String>,
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    modifiers: &'a [String],
    /// On a list of publicly disclosed keys.
    disclosed: bool,
}

#[derive(Serialize)]
struct JsonInstance<'a> {
    server: &'a str,
    config_path: Option<String>,
    config_sha256: Option<&'a str>,
    app_pool: &'a str,
    /// The pool's `managedRuntimeVersion`: `v4.0`, `v2.0`, or empty for No
    /// Managed Code (no ASP.NET: the machine key fields are null).
    managed_runtime: &'a str,
    bitness: &'static str,
    site_id: Option<&'a str>,
    physical_path: &'a str,
    key_group: Option<String>,
    validation: Option<Cow<'a, str>>,
    decryption: Option<Cow<'a, str>>,
    compatibility_mode: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    validation_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decryption_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compatibility_mode_source: Option<String>,
    validation_key: Option<JsonKey<'a>>,
    decryption_key: Option<JsonKey<'a>>,
    session_token_handler: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_token_handler_source: Option<String>,
    target_framework: Option<&'a str>,
    encrypted_sections: &'a [crate::config::effective::EncryptedSection],
    /// Files of its configuration that are symbolic links (IIS reads the
    /// target; a push never replaces them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<JsonLink<'a>>,
    error: Option<String>,
}

/// `{"path": "C:\\...\\web.config", "kind": "link", "target": "..."}`.
#[derive(Serialize)]
struct JsonLink<'a> {
    path: String,
    #[serde(flatten)]
    link: &'a crate::transport::NotAFile,
}

fn key_json<'a>(
    state: &'a KeyState,
    source: &Sourced<crate::keys::KeyText>,
    disclosed: bool,
) -> JsonKey<'a> {
    JsonKey {
        state: state.name(),
        fingerprint: state.fingerprint(),
        source: source.source.to_string(),
        reason: match state {
            KeyState::Invalid { reason } => Some(reason.to_string()),
            _ => None,
        },
        modifiers: state.modifiers(),
        disclosed,
    }
}

fn instance_json(i: &Instance) -> JsonInstance<'_> {
    let eff = i.effective.as_ref().ok().filter(|_| i.app.runs_clr());
    let mk = eff.map(|e| &e.machine_key);
    let keys = i.keys.as_ref().zip(mk);
    JsonInstance {
        server: &i.server,
        config_path: i.config_path.as_ref().map(|p| p.to_string()),
        config_sha256: i.config_sha256.as_deref(),
        app_pool: &i.app.app_pool,
        managed_runtime: &i.app.runtime,
        bitness: i.app.bitness(),
        site_id: i.app.site_id.as_deref(),
        physical_path: &i.app.physical_path_raw,
        key_group: i.key_group.map(|c| c.to_string()),
        // Exact, but a key pasted into one of them (ASP.NET refuses it)
        // only as its fingerprint.
        validation: mk
            .and_then(|m| m.validation.value())
            .map(|v| mask_key_text(v)),
        decryption: mk
            .and_then(|m| m.decryption.value())
            .map(|v| mask_key_text(v)),
        compatibility_mode: mk
            .and_then(|m| m.compatibility_mode.value())
            .map(|v| mask_key_text(v)),
        validation_source: mk.map(|m| m.validation.source.to_string()),
        decryption_source: mk.map(|m| m.decryption.source.to_string()),
        compatibility_mode_source: mk.map(|m| m.compatibility_mode.source.to_string()),
        validation_key: keys.map(|((v, _), m)| {
            key_json(
                v,
                &m.validation_key,
                i.disclosed_key(KeyPurpose::Validation),
            )
        }),
        decryption_key: keys.map(|((_, d), m)| {
            key_json(
                d,
                &m.decryption_key,
                i.disclosed_key(KeyPurpose::Decryption),
            )
        }),
        session_token_handler: eff.map(|e| e.handler.state.name()),
        session_token_handler_source: eff
            .and_then(|e| e.handler.source.as_ref().map(|p| p.to_string())),
        target_framework: eff
            .and_then(|e| e.target_framework.as_ref())
            .and_then(|t| t.value())
            .map(String::as_str),
        encrypted_sections: eff.map_or(&[], |e| &e.encrypted_sections),
        links: i
            .links
            .iter()
            .map(|(path, link)| JsonLink {
                path: path.to_string(),
                link,
            })
            .collect(),
        error: i.effective.as_ref().err().map(|p| p.to_string()),
    }
}

fn finding_json(f: &Finding) -> JsonFinding<'_> {
    JsonFinding {
        code: f.code,
        severity: f.severity,
        servers: &f.servers,
        message: &f.message,
        remedy: f.code.rule().remedy,
    }
}

fn site_json(s: &SiteReport) -> JsonSite<'_> {
    JsonSite {
        site: &s.site,
        component: s.component.map(|c| c.name()),
        consistent: s.consistent(),
        absent_on: &s.absent_on,
        unverified_on: s.unverified_on().collect(),
        instances: s.instances.iter().map(instance_json).collect(),
        findings: s.findings.iter().map(finding_json).collect(),
    }
}

/// Writes the JSON contract of `farmkey scan --format json`.
pub fn write_json(report: &FarmReport, out: impl std::io::Write) -> serde_json::Result<()> {
    let json = JsonReport {
        servers: &report.servers,
        sites: report.sites.iter().map(site_json).collect(),
        findings: report.findings.iter().map(finding_json).collect(),
    };
    serde_json::to_writer_pretty(out, &json)
}

/// Short text of a key's state for tables: its fingerprint or what it is.
pub fn key_cell(state: &KeyState) -> String {
    match state {
        KeyState::Explicit { key, modifiers } if modifiers.is_empty() => key.fingerprint(),
        KeyState::Explicit { key, .. } => format!("{}+iso", key.fingerprint()),
        KeyState::AutoGenerate { .. } => "auto".into(),
        KeyState::Encrypted => "encrypted".into(),
        KeyState::Invalid { .. } => "invalid".into(),
    }
}

/// Columns of cells, each made safe for a terminal (escapes are wider than
/// what they replace, so before the widths are taken).
fn render_table(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| escape(c).into_owned()).collect())
        .collect();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    // A row's last cell is not padded, so a long one (a reason) does not
    // widen its column.
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter(|r| c + 1 < r.len())
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The table of `farmkey scan` for people.
pub fn to_table(report: &FarmReport) -> String {
    let mut out = String::new();
    let mut rows = vec![vec![
        "SERVER".to_string(),
        "ADDRESS".into(),
        "STATE".into(),
        "TIME".into(),
    ]];
    for s in &report.servers {
        let state = match (&s.error, s.reachable) {
            (None, _) => "ok".to_string(),
            (Some(e), true) => format!("unreadable: {e}"),
            (Some(e), false) => format!("unreachable: {e}"),
        };
        rows.push(vec![
            s.name.clone(),
            s.address.clone(),
            state,
            format!("{:.2}s", s.elapsed_ms as f64 / 1000.0),
        ]);
    }
    out.push_str(&render_table(&rows));
    out.push('\n');

    if report.sites.is_empty() && report.servers.iter().all(|s| s.error.is_some()) {
        // Nothing was looked at: "no sites found" would be read as none there.
        out.push_str("No site was verified: no server could be read.\n");
    } else if report.sites.is_empty() {
        out.push_str("No Cora sites found (use --all-sites to list every IIS application).\n");
    } else {
        let mut rows = vec![
            [
                "SITE",
                "SERVER",
                "SET",
                "VALIDATIONKEY",
                "DECRYPTIONKEY",
                "VALIDATION",
                "DECRYPTION",
                "COMPATIBILITY",
                "HANDLER",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for site in &report.sites {
            let mark = match site.verdict() {
                SiteVerdict::InStep => "",
                SiteVerdict::Drifted => " !",
                SiteVerdict::Unverified => " ?",
            };
            for (n, i) in site.instances.iter().enumerate() {
                let name = if n == 0 {
                    format!("{}{mark}", site.site)
                } else {
                    String::new()
                };
                let mut row = vec![name, i.server.clone()];
                match &i.effective {
                    Ok(e) => {
                        let mk = &e.machine_key;
                        let cell = |state: &KeyState, purpose| {
                            let text = key_cell(state);
                            if i.disclosed_key(purpose) {
                                format!("{text} DISCLOSED")
                            } else {
                                text
                            }
                        };
                        row.extend([
                            i.key_group.map_or("-".into(), |c| c.to_string()),
                            i.keys
                                .as_ref()
                                .map_or_else(String::new, |k| cell(&k.0, KeyPurpose::Validation)),
                            i.keys
                                .as_ref()
                                .map_or_else(String::new, |k| cell(&k.1, KeyPurpose::Decryption)),
                            mk.validation.shown().to_string(),
                            mk.decryption.shown().to_string(),
                            mk.compatibility_mode.shown().to_string(),
                            e.handler.state.name().to_string(),
                        ]);
                    }
                    Err(_) => row.extend(["-", "unreadable"].map(String::from)),
                }
                rows.push(row);
            }
            for absent in &site.absent_on {
                rows.push(vec![
                    String::new(),
                    absent.clone(),
                    "-".into(),
                    "(site absent)".into(),
                ]);
            }
            // Servers not read at all: each may host the site.
            for u in site
                .unverified
                .iter()
                .filter(|u| site.instance(&u.server).is_none())
            {
                rows.push(vec![
                    String::new(),
                    u.server.clone(),
                    "-".into(),
                    format!("(not read: {})", u.why),
                ]);
            }
        }
        out.push_str(&render_table(&rows));
    }

    let findings: Vec<&Finding> = report.all_findings().collect();
    out.push('\n');
    if findings.is_empty() {
        out.push_str("No findings: every site is in step.\n");
    } else {
        out.push_str("FINDINGS\n");
        let mut sorted = findings;
        sorted.sort_by_key(|f| std::cmp::Reverse(f.urgency()));
        for f in sorted {
            let _ = writeln!(
                out,
                "{:<8} {:<28} {:<24} {}",
                f.severity.name(),
                f.code.name(),
                escape(f.site.as_deref().unwrap_or("(farm)")),
                escape(&f.servers.join(", "))
            );
            let _ = writeln!(out, "         {}", escape(&f.message));
        }
    }
    out
}
