//! `scan` output: a table for people, JSON for programs. Keys appear as
//! fingerprints only.

use crate::analysis::{FarmReport, Finding, Instance, SiteReport};
use crate::config::effective::{KeyState, Sourced};
use serde_json::{Value, json};
use std::fmt::Write as _;

fn key_json(state: &KeyState, source: &Sourced<crate::keys::KeyText>) -> Value {
    let mut v = json!({
        "state": state.name(),
        "fingerprint": state.fingerprint(),
        "source": source.source.to_string(),
    });
    if let KeyState::Invalid { reason } = state {
        v["reason"] = json!(reason);
    }
    if !state.modifiers().is_empty() {
        v["modifiers"] = json!(state.modifiers());
    }
    v
}

fn instance_json(i: &Instance) -> Value {
    let mut v = json!({
        "server": i.server,
        "config_path": i.config_path.as_ref().map(|p| p.to_string()),
        "config_sha256": i.config_sha256,
        "app_pool": i.app.app_pool,
        "bitness": i.app.bitness(),
        "site_id": i.app.site_id,
        "physical_path": i.app.physical_path_raw,
        "key_group": i.key_group.map(|c| c.to_string()),
    });
    match &i.effective {
        Ok(e) => {
            let mk = &e.machine_key;
            v["validation"] = json!(mk.validation.value());
            v["decryption"] = json!(mk.decryption.value());
            v["compatibility_mode"] = json!(mk.compatibility_mode.value());
            v["validation_source"] = json!(mk.validation.source.to_string());
            v["decryption_source"] = json!(mk.decryption.source.to_string());
            v["compatibility_mode_source"] = json!(mk.compatibility_mode.source.to_string());
            if let Some((vk, dk)) = &i.keys {
                v["validation_key"] = key_json(vk, &mk.validation_key);
                v["decryption_key"] = key_json(dk, &mk.decryption_key);
            }
            v["session_token_handler"] = json!(e.handler.state.name());
            v["session_token_handler_source"] =
                json!(e.handler.source.as_ref().map(|p| p.to_string()));
            v["target_framework"] = json!(e.target_framework.as_ref().and_then(|t| t.value()));
            v["encrypted_sections"] = json!(e.encrypted_sections);
            v["error"] = Value::Null;
        }
        Err(p) => {
            for k in [
                "validation",
                "decryption",
                "compatibility_mode",
                "validation_key",
                "decryption_key",
                "session_token_handler",
            ] {
                v[k] = Value::Null;
            }
            v["error"] = json!(p.to_string());
        }
    }
    v
}

fn finding_json(f: &Finding) -> Value {
    json!({
        "code": f.code,
        "severity": f.severity,
        "servers": f.servers,
        "message": f.message,
    })
}

fn site_json(s: &SiteReport) -> Value {
    json!({
        "site": s.site,
        "component": s.component.map(|c| c.name()),
        "consistent": s.consistent(),
        "absent_on": s.absent_on,
        "instances": s.instances.iter().map(instance_json).collect::<Vec<_>>(),
        "findings": s.findings.iter().map(finding_json).collect::<Vec<_>>(),
    })
}

/// The JSON contract of `farmkey scan --format json`.
pub fn to_json(report: &FarmReport) -> Value {
    json!({
        "servers": report.servers,
        "sites": report.sites.iter().map(site_json).collect::<Vec<_>>(),
        "findings": report.findings.iter().map(finding_json).collect::<Vec<_>>(),
    })
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

fn render_table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
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

    if report.sites.is_empty() {
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
            let mark = if site.consistent() { "" } else { " !" };
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
                        row.extend([
                            i.key_group.map_or("-".into(), |c| c.to_string()),
                            i.keys.as_ref().map_or_else(String::new, |k| key_cell(&k.0)),
                            i.keys.as_ref().map_or_else(String::new, |k| key_cell(&k.1)),
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
        sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
        for f in sorted {
            let _ = writeln!(
                out,
                "{:<8} {:<28} {:<24} {}",
                f.severity.name(),
                f.code.name(),
                f.site.as_deref().unwrap_or("(farm)"),
                f.servers.join(", ")
            );
            let _ = writeln!(out, "         {}", f.message);
        }
    }
    out
}
