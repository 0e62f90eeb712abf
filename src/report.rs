//! `scan` output: a table for people, JSON for programs, metrics for
//! monitoring ([`openmetrics`]). Keys appear as
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

pub mod openmetrics;

/// The JSON of `scan --format json`, serialised straight from the report
/// (a `serde_json::Value` tree of a large farm costs several times its size).
#[derive(Serialize)]
struct JsonReport<'a> {
    servers: &'a [crate::analysis::ServerStatus],
    sites: Vec<JsonSite<'a>>,
    findings: Vec<JsonFinding<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<JsonNote<'a>>,
}

/// A [`ReachNote`](crate::transport::ReachNote): its fields, and its
/// sentence as `message`.
#[derive(Serialize)]
struct JsonNote<'a> {
    code: &'static str,
    hop: &'a str,
    accepted: usize,
    wanted: usize,
    message: String,
}

fn note_json(note: &crate::transport::ReachNote) -> JsonNote<'_> {
    match note {
        crate::transport::ReachNote::FewerJumpSessions {
            hop,
            accepted,
            wanted,
            ..
        } => JsonNote {
            code: "fewer-jump-sessions",
            hop,
            accepted: *accepted,
            wanted: *wanted,
            message: note.to_string(),
        },
    }
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
    /// The fingerprint of the key set (both keys), as the console's matrix
    /// and the `scan` table show it beside the group letter; null unless
    /// both keys are explicit.
    key_set: Option<&'a str>,
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
        key_set: i.set_fingerprint.as_deref(),
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
        notes: report.notes.iter().map(note_json).collect(),
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

/// The width below which the full table gives way to the compact one, when
/// the terminal's width is known: `$COLUMNS` if set, else the width of the
/// terminal on standard output. Unknown (a pipe) keeps the full layout.
pub fn output_width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        crossterm::terminal::size()
            .ok()
            .map(|(w, _)| usize::from(w))
    } else {
        None
    }
}

/// Widest a server's state gets when the width is unknown: a long error is
/// cut (its full text is in the findings).
const STATE_WIDTH: usize = 60;

/// Narrowest room a state is cut to, however narrow the terminal.
const STATE_MIN: usize = 16;

/// Where a finding's message starts, under its head.
const FINDING_INDENT: usize = 9;

/// Widest an address gets (a local root can be a long path).
const ADDRESS_WIDTH: usize = 32;

/// Cuts `text` to its last `max` characters, the cut marked with `…` (the
/// end of a path is the part that tells servers apart).
fn cut_start(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let tail: String = text.chars().skip(n - max.saturating_sub(1)).collect();
    format!("…{tail}")
}

/// Cuts `text` to `max` characters, the cut marked with `…`.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Words of `text` in lines of at most `width` characters, the lines after
/// the first indented by `indent` spaces (a word longer than a line stays
/// whole).
fn wrap(text: &str, width: usize, indent: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let room = width.saturating_sub(if out.is_empty() { 0 } else { indent });
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > room {
            if !out.is_empty() {
                out.push_str(&" ".repeat(indent));
            }
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !out.is_empty() {
        out.push_str(&" ".repeat(indent));
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// The key set of an instance as the console's matrix names it: its letter
/// and fingerprint (`A 1d780cca`), else what its keys are (`auto`).
fn key_set_cell(i: &Instance) -> String {
    match (i.key_group, &i.set_fingerprint) {
        (Some(g), Some(fp)) => format!("{g} {fp}"),
        _ => match &i.keys {
            Some((v, d)) => {
                let (v, d) = (key_cell(v), key_cell(d));
                if v == d { v } else { format!("{v}/{d}") }
            }
            None => "-".into(),
        },
    }
}

/// The rows of the sites table: the full layout (a column per key and
/// attribute) or the compact one (each site on a line of its own, its
/// servers below it, the key set for the two keys). A reason a server was
/// not read is cut to `reason` characters (the findings have it whole).
fn site_rows(report: &FarmReport, compact: bool, reason: usize) -> Vec<Vec<String>> {
    let header: &[&str] = if compact {
        &[
            "SERVER",
            "KEY SET",
            "VALIDATION",
            "DECRYPTION",
            "COMPAT",
            "HANDLER",
        ]
    } else {
        &[
            "SITE",
            "SERVER",
            "KEY SET",
            "VALIDATIONKEY",
            "DECRYPTIONKEY",
            "VALIDATION",
            "DECRYPTION",
            "COMPATIBILITY",
            "HANDLER",
        ]
    };
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for site in &report.sites {
        let mark = match site.verdict() {
            SiteVerdict::InStep => "",
            SiteVerdict::Drifted => " !",
            SiteVerdict::Unverified => " ?",
        };
        let title = format!("{}{mark}", site.site);
        // A row for a server: the site's name leads the first in the full
        // layout; in the compact one the site has its own line.
        let mut first = true;
        let mut lead = |server: &str| -> Vec<String> {
            if compact {
                vec![format!("  {server}")]
            } else {
                let name = if first { title.clone() } else { String::new() };
                first = false;
                vec![name, server.to_string()]
            }
        };
        if compact {
            rows.push(vec![title.clone()]);
        }
        for i in &site.instances {
            let mut row = lead(&i.server);
            match &i.effective {
                Ok(e) => {
                    let mk = &e.machine_key;
                    let disclosed = |purpose| {
                        if i.disclosed_key(purpose) {
                            " DISCLOSED"
                        } else {
                            ""
                        }
                    };
                    let any_disclosed = if i.disclosed_key(KeyPurpose::Validation)
                        || i.disclosed_key(KeyPurpose::Decryption)
                    {
                        " DISCLOSED"
                    } else {
                        ""
                    };
                    if compact {
                        row.push(format!("{}{any_disclosed}", key_set_cell(i)));
                    } else {
                        let cell = |k: &KeyState, purpose| {
                            format!("{}{}", key_cell(k), disclosed(purpose))
                        };
                        row.extend([
                            key_set_cell(i),
                            i.keys
                                .as_ref()
                                .map_or_else(String::new, |k| cell(&k.0, KeyPurpose::Validation)),
                            i.keys
                                .as_ref()
                                .map_or_else(String::new, |k| cell(&k.1, KeyPurpose::Decryption)),
                        ]);
                    }
                    row.extend([
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
            let mut row = lead(absent);
            row.extend(["-", "(site absent)"].map(String::from));
            rows.push(row);
        }
        // Servers not read at all: each may host the site.
        for u in site
            .unverified
            .iter()
            .filter(|u| site.instance(&u.server).is_none())
        {
            let mut row = lead(&u.server);
            row.extend([
                "-".to_string(),
                cut(&format!("(not read: {})", u.why), reason),
            ]);
            rows.push(row);
        }
    }
    rows
}

/// The table of `farmkey scan` for people: the full layout where it fits
/// `width` (or the width is unknown), else a compact one (a line per site,
/// its servers below it, the key set without the two keys' fingerprints).
pub fn to_table(report: &FarmReport, width: Option<usize>) -> String {
    let mut out = String::new();
    let mut rows = vec![vec![
        "SERVER".to_string(),
        "ADDRESS".into(),
        "TIME".into(),
        "STATE".into(),
    ]];
    for s in &report.servers {
        rows.push(vec![
            s.name.clone(),
            cut_start(&escape(&s.address), ADDRESS_WIDTH),
            format!("{:.2}s", s.elapsed_ms as f64 / 1000.0),
            String::new(),
        ]);
    }
    // The state comes last and is cut to the room left, so a long error
    // never widens the table; the findings carry its full text.
    let used = render_table(&rows)
        .lines()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    let room = width.map_or(STATE_WIDTH, |w| w.saturating_sub(used + 2).max(STATE_MIN));
    for (row, s) in rows.iter_mut().skip(1).zip(&report.servers) {
        let state = match (&s.error, s.reachable) {
            (None, _) => "ok".to_string(),
            (Some(e), true) => format!("unreadable: {}", escape(&e.to_string())),
            (Some(e), false) => format!("unreachable: {}", escape(&e.to_string())),
        };
        row[3] = cut(&state, room);
    }
    out.push_str(&render_table(&rows));
    out.push('\n');

    if report.sites.is_empty() && report.servers.iter().all(|s| s.error.is_some()) {
        // Nothing was looked at: "no sites found" would be read as none there.
        out.push_str("No site was verified: no server could be read.\n");
    } else if report.sites.is_empty() {
        out.push_str("No Cora sites found (use --all-sites to list every IIS application).\n");
    } else {
        let fits = |t: &str| width.is_none_or(|w| t.lines().all(|l| l.chars().count() <= w));
        let reason = width.map_or(STATE_WIDTH, |w| w.saturating_sub(30).max(STATE_MIN));
        let full = render_table(&site_rows(report, false, reason));
        if fits(&full) {
            out.push_str(&full);
        } else {
            out.push_str(&render_table(&site_rows(report, true, reason)));
        }
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
            let head = format!(
                "{:<8} {:<28} {:<24} {}",
                f.severity.name(),
                f.code.name(),
                escape(f.site.as_deref().unwrap_or("(farm)")),
                escape(&f.servers.join(", "))
            );
            let message = escape(&f.message);
            match width {
                // Words wrapped to the terminal, the message under its head.
                Some(w) => {
                    if head.chars().count() <= w {
                        let _ = writeln!(out, "{head}");
                    } else {
                        // The servers go under a head that would not fit.
                        let _ = writeln!(
                            out,
                            "{:<8} {:<28} {}",
                            f.severity.name(),
                            f.code.name(),
                            escape(f.site.as_deref().unwrap_or("(farm)"))
                        );
                        let servers = format!("on {}", escape(&f.servers.join(", ")));
                        for line in wrap(&servers, w.saturating_sub(FINDING_INDENT), 0).lines() {
                            let _ = writeln!(out, "{:FINDING_INDENT$}{line}", "");
                        }
                    }
                    for line in wrap(&message, w.saturating_sub(FINDING_INDENT), 0).lines() {
                        let _ = writeln!(out, "{:FINDING_INDENT$}{line}", "");
                    }
                }
                None => {
                    let _ = writeln!(out, "{head}\n{:FINDING_INDENT$}{message}", "");
                }
            }
        }
    }
    for note in &report.notes {
        let text = format!("note: {}", escape(&note.to_string()));
        let _ = match width {
            Some(w) => writeln!(out, "\n{}", wrap(&text, w, FINDING_INDENT).trim_end()),
            None => writeln!(out, "\n{text}"),
        };
    }
    out
}
