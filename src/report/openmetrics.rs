//! `scan --format openmetrics`: the scan as metrics for the node exporter's
//! textfile collector. What is written is valid both as the Prometheus text
//! format 0.0.4 (what the collector parses: `expfmt.TextParser` in
//! node_exporter's collector/textfile.go) and as OpenMetrics 1.0:
//!
//! - gauges only: a counter is `x_total` in OpenMetrics and may be `x` in
//!   0.0.4, so no counter reads the same in both;
//! - `# HELP` and `# TYPE` before each family, no `# UNIT` (not a line of
//!   0.0.4; the collector would take it for a comment, but a unit also binds
//!   the name's suffix in OpenMetrics);
//! - HELP texts hold no `\`, `"` nor line break: 0.0.4 escapes only `\\` and
//!   `\n` there and refuses any other escape (expfmt text_parse.go,
//!   `readTokenUntilNewline`), OpenMetrics wants `"` escaped (its ABNF:
//!   `normal-char` excludes DQUOTE and BS); a test holds every text to it;
//! - label values escape `\`, `"` and line feed, the same three in both
//!   (expfmt text_create.go `escapeWithDoubleQuote`, OpenMetrics
//!   `escaped-char`);
//! - no timestamp on any sample: the collector skips a whole file that has
//!   one (`hasTimestamps`, collector/textfile.go);
//! - `# EOF` last, which OpenMetrics requires and 0.0.4 reads as a comment.
//!
//! Labels name sites, components, servers, finding codes and kinds of
//! failure: never a key, a fingerprint, an address or a server's own words.

use crate::analysis::{FarmReport, RULES, SiteVerdict};
use crate::scan::{ServerFailure, Unreachable};
use crate::transport::ssh::ConnectError;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

/// A metric family: its name, its labels (in the order samples give their
/// values) and its HELP text.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

const SCAN_TIMESTAMP: Family = Family {
    name: "farmkey_scan_timestamp_seconds",
    labels: &[],
    help: "When the scan started, in seconds since the Unix epoch.",
};
const SCAN_DURATION: Family = Family {
    name: "farmkey_scan_duration_seconds",
    labels: &[],
    help: "How long the scan took: every server read and the analysis.",
};
const SERVER_READ: Family = Family {
    name: "farmkey_server_read",
    labels: &["server"],
    help: "1 if the IIS configuration of the server was read, 0 if not.",
};
const SERVERS_READ: Family = Family {
    name: "farmkey_servers_read",
    labels: &[],
    help: "Servers of the inventory whose IIS configuration was read.",
};
const SERVERS_NOT_READ: Family = Family {
    name: "farmkey_servers_not_read",
    labels: &["reason"],
    help: "Servers of the inventory not read, by kind of reason (every kind, 0 when none).",
};
const SITE_STATE: Family = Family {
    name: "farmkey_site_state",
    labels: &["site", "component", "state"],
    help: "1 for the state the site is in (in-step, unverified or drifted), 0 for the other two.",
};
const SITE_SERVERS_NOT_READ: Family = Family {
    name: "farmkey_site_servers_not_read",
    labels: &["site", "component"],
    help: "Servers that may host the site and whose configuration of it was not read.",
};
const FINDINGS: Family = Family {
    name: "farmkey_findings",
    labels: &["code", "severity"],
    help: "Findings of the scan by code and severity (every code, 0 when none).",
};
const LAST_PUSH: Family = Family {
    name: "farmkey_last_push_timestamp_seconds",
    labels: &["site"],
    help: "When the last push to the site that succeeded on every server started, from the audit log.",
};
const AUDIT_LOG_READABLE: Family = Family {
    name: "farmkey_audit_log_readable",
    labels: &[],
    help: "1 if the audit log was read or does not exist, 0 if it could not be read.",
};

/// Every family, in the order written (the README's table is made of it).
pub const FAMILIES: [Family; 10] = [
    SCAN_TIMESTAMP,
    SCAN_DURATION,
    SERVER_READ,
    SERVERS_READ,
    SERVERS_NOT_READ,
    SITE_STATE,
    SITE_SERVERS_NOT_READ,
    FINDINGS,
    LAST_PUSH,
    AUDIT_LOG_READABLE,
];

crate::spelled::spelled! {
    /// Why a server was not read, as the `reason` label says it: a kind,
    /// never the server's or the system's words (they hold addresses and
    /// host key fingerprints, and vary without bound).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum NotReadReason {
        ConnectRefused = "connect-refused",
        ConnectTimeout = "connect-timeout",
        Dns = "dns",
        Network = "network",
        Handshake = "handshake",
        HostKeyUnknown = "host-key-unknown",
        HostKeyChanged = "host-key-changed",
        HostKeyRevoked = "host-key-revoked",
        HostKeyRefused = "host-key-refused",
        KnownHostsWrite = "known-hosts-write",
        Auth = "auth",
        Sftp = "sftp",
        SshConfig = "ssh-config",
        LocalRoot = "local-root",
        JumpHost = "jump-host",
        SessionLost = "session-lost",
        WorkerStopped = "worker-stopped",
        IisConfigUnreadable = "iis-config-unreadable",
    }
}

impl NotReadReason {
    pub fn of(failure: &ServerFailure) -> NotReadReason {
        match failure {
            ServerFailure::Unreachable(Unreachable::Connect(e)) => Self::of_connect(e),
            ServerFailure::Unreachable(Unreachable::Lost(_)) => NotReadReason::SessionLost,
            ServerFailure::Unreachable(Unreachable::WorkerStopped) => NotReadReason::WorkerStopped,
            ServerFailure::HostKeyChanged(_) => NotReadReason::HostKeyChanged,
            ServerFailure::Unreadable(_) => NotReadReason::IisConfigUnreadable,
        }
    }

    fn of_connect(e: &ConnectError) -> NotReadReason {
        match e {
            ConnectError::LocalRoot(_) => NotReadReason::LocalRoot,
            ConnectError::Config(_) => NotReadReason::SshConfig,
            ConnectError::Dns { .. } => NotReadReason::Dns,
            ConnectError::Refused { .. } => NotReadReason::ConnectRefused,
            ConnectError::Timeout { .. } => NotReadReason::ConnectTimeout,
            ConnectError::Network { .. } => NotReadReason::Network,
            ConnectError::Handshake(_) => NotReadReason::Handshake,
            ConnectError::HostKeyUnknown { .. } => NotReadReason::HostKeyUnknown,
            ConnectError::HostKeyChanged { .. } => NotReadReason::HostKeyChanged,
            ConnectError::HostKeyRevoked { .. } => NotReadReason::HostKeyRevoked,
            ConnectError::HostKeyRefused { .. } => NotReadReason::HostKeyRefused,
            ConnectError::KnownHostsWrite { .. } => NotReadReason::KnownHostsWrite,
            ConnectError::Auth { .. } => NotReadReason::Auth,
            ConnectError::Sftp(_) => NotReadReason::Sftp,
            // A changed host key is the one failure of a hop worth its own
            // alert; the others are the hop's.
            e if e.is_host_key_changed() => NotReadReason::HostKeyChanged,
            ConnectError::Jump { .. }
            | ConnectError::JumpLost { .. }
            | ConnectError::JumpChannel { .. } => NotReadReason::JumpHost,
        }
    }
}

/// A site's state as the `state` label says it.
fn state_label(verdict: SiteVerdict) -> &'static str {
    match verdict {
        SiteVerdict::InStep => "in-step",
        SiteVerdict::Unverified => "unverified",
        SiteVerdict::Drifted => "drifted",
    }
}

/// The states in the order each site's samples give them.
const STATES: [SiteVerdict; 3] = [
    SiteVerdict::InStep,
    SiteVerdict::Unverified,
    SiteVerdict::Drifted,
];

/// What the audit log says for the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastPushes {
    /// Read (an absent log has no pushes): per site, when its last push
    /// that succeeded started.
    Read(HashMap<String, SystemTime>),
    /// It exists but could not be read: no push times, and
    /// `farmkey_audit_log_readable 0`.
    Unreadable,
}

/// When the scan ran and how long it took.
#[derive(Debug, Clone, Copy)]
pub struct ScanRun {
    pub started: SystemTime,
    pub took: Duration,
}

/// A label value as both formats read it: `\`, `"` and line feed escaped.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Seconds since the Unix epoch, to the millisecond (0 before it).
fn epoch_seconds(t: SystemTime) -> f64 {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    ms as f64 / 1000.0
}

/// The text being written: families one after the other, each whole.
struct Exposition {
    out: String,
}

impl Exposition {
    /// A family's HELP and TYPE lines and its samples, each a value per
    /// label of the family (an empty value leaves the label out: both
    /// formats read `x{a=""}` as `x`) and its value.
    fn family<'a>(
        &mut self,
        family: &Family,
        samples: impl IntoIterator<Item = (Vec<&'a str>, f64)>,
    ) {
        let _ = writeln!(self.out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(self.out, "# TYPE {} gauge", family.name);
        for (values, value) in samples {
            debug_assert_eq!(values.len(), family.labels.len(), "{}", family.name);
            debug_assert!(value.is_finite(), "{}", family.name);
            self.out.push_str(family.name);
            let labels: Vec<String> = family
                .labels
                .iter()
                .zip(&values)
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
                .collect();
            if !labels.is_empty() {
                let _ = write!(self.out, "{{{}}}", labels.join(","));
            }
            // Rust prints an f64 without exponent, as both formats read it.
            let _ = writeln!(self.out, " {value}");
        }
    }

    fn finish(mut self) -> String {
        self.out.push_str("# EOF\n");
        self.out
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The exposition of a scan: `report`, when and how long it ran, and the
/// last pushes of the audit log (only for the report's sites).
pub fn to_openmetrics(report: &FarmReport, run: ScanRun, pushes: &LastPushes) -> String {
    let mut x = Exposition { out: String::new() };
    x.family(&SCAN_TIMESTAMP, [(vec![], epoch_seconds(run.started))]);
    x.family(
        &SCAN_DURATION,
        [(vec![], run.took.as_millis() as f64 / 1000.0)],
    );
    x.family(
        &SERVER_READ,
        report
            .servers
            .iter()
            .map(|s| (vec![s.name.as_str()], flag(s.error.is_none()))),
    );
    let read = report.servers.iter().filter(|s| s.error.is_none()).count();
    x.family(&SERVERS_READ, [(vec![], read as f64)]);
    let reasons: Vec<NotReadReason> = report
        .servers
        .iter()
        .filter_map(|s| s.error.as_ref().map(NotReadReason::of))
        .collect();
    x.family(
        &SERVERS_NOT_READ,
        NotReadReason::ALL.iter().map(|r| {
            let n = reasons.iter().filter(|x| *x == r).count();
            (vec![r.name()], n as f64)
        }),
    );
    let component = |s: &crate::analysis::SiteReport| s.component.map_or("", |c| c.name());
    x.family(
        &SITE_STATE,
        report.sites.iter().flat_map(|s| {
            let verdict = s.verdict();
            STATES.iter().map(move |state| {
                (
                    vec![s.site.as_str(), component(s), state_label(*state)],
                    flag(verdict == *state),
                )
            })
        }),
    );
    x.family(
        &SITE_SERVERS_NOT_READ,
        report.sites.iter().map(|s| {
            (
                vec![s.site.as_str(), component(s)],
                s.unverified.len() as f64,
            )
        }),
    );
    x.family(
        &FINDINGS,
        RULES.iter().flat_map(|rule| {
            std::iter::once(rule.severity)
                .chain(rule.lesser.map(|(lesser, _)| lesser))
                .map(move |severity| {
                    let n = report
                        .all_findings()
                        .filter(|f| f.code == rule.code && f.severity == severity)
                        .count();
                    (vec![rule.code.name(), severity.name()], n as f64)
                })
        }),
    );
    let (times, readable) = match pushes {
        LastPushes::Read(times) => (Some(times), true),
        LastPushes::Unreadable => (None, false),
    };
    x.family(
        &LAST_PUSH,
        report.sites.iter().filter_map(|s| {
            let at = times?.get(&s.site)?;
            Some((vec![s.site.as_str()], epoch_seconds(*at)))
        }),
    );
    x.family(&AUDIT_LOG_READABLE, [(vec![], flag(readable))]);
    x.finish()
}

/// The README's table of the metrics, made from [`FAMILIES`].
pub fn metrics_table() -> String {
    let mut out = String::from("| metric | labels | meaning |\n|---|---|---|\n");
    for f in &FAMILIES {
        let labels = if f.labels.is_empty() {
            "-".to_string()
        } else {
            f.labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(out, "| `{}` | {labels} | {} |", f.name, f.help);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Code, Finding, ServerStatus, Severity, SiteReport, Unverified};
    use crate::disclosed::DisclosedKeys;

    #[test]
    fn label_values_escape_backslash_quote_and_line_feed_only() {
        assert_eq!(escape_label_value("Flowtime"), "Flowtime");
        assert_eq!(
            escape_label_value("C:\\inetpub\\\"x\"\nend"),
            "C:\\\\inetpub\\\\\\\"x\\\"\\nend"
        );
        // Other characters, control ones too, are valid as they are.
        assert_eq!(escape_label_value("a\tb\rc é"), "a\tb\rc é");
    }

    /// What both formats accept in a HELP text, names as the naming guide
    /// asks, and no family twice.
    #[test]
    fn families_are_valid_in_both_formats() {
        for (i, f) in FAMILIES.iter().enumerate() {
            assert!(
                !f.help.contains(['\\', '"', '\n']),
                "{}: a HELP text both formats read unescaped",
                f.name
            );
            assert!(f.name.starts_with("farmkey_"), "{}", f.name);
            assert!(
                f.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                f.name
            );
            // Suffixes OpenMetrics gives to other types.
            for suffix in ["_total", "_created", "_count", "_sum", "_bucket", "_info"] {
                assert!(!f.name.ends_with(suffix), "{}", f.name);
            }
            assert!(
                FAMILIES[i + 1..].iter().all(|g| g.name != f.name),
                "{} twice",
                f.name
            );
        }
    }

    fn server(name: &str, error: Option<ServerFailure>) -> ServerStatus {
        ServerStatus {
            name: name.into(),
            address: format!("{name}.corp:22"),
            reachable: error.is_none(),
            error,
            elapsed_ms: 10,
        }
    }

    fn site(name: &str, findings: Vec<Finding>, unverified: &[&str]) -> SiteReport {
        SiteReport {
            site: name.into(),
            component: None,
            instances: Vec::new(),
            absent_on: Vec::new(),
            unverified: unverified
                .iter()
                .map(|s| Unverified {
                    server: s.to_string(),
                    why: crate::analysis::NotRead::Pending,
                })
                .collect(),
            findings,
        }
    }

    fn finding(code: Code, severity: Severity, site: &str) -> Finding {
        Finding {
            code,
            severity,
            site: Some(site.into()),
            servers: vec!["web01".into()],
            message: "m".into(),
        }
    }

    fn report() -> FarmReport {
        let refused =
            ServerFailure::Unreachable(Unreachable::Connect(Box::new(ConnectError::Refused {
                addr: "10.0.0.3:22".into(),
            })));
        FarmReport {
            servers: vec![server("web01", None), server("web03", Some(refused))],
            sites: vec![
                site(
                    "Flow\"time\\\n",
                    vec![finding(Code::KeyMismatch, Severity::Error, "x")],
                    &[],
                ),
                site("Admin", Vec::new(), &["web03"]),
                site("Togo", Vec::new(), &[]),
            ],
            findings: Vec::new(),
            disclosed: DisclosedKeys::default(),
            notes: Vec::new(),
        }
    }

    fn lines_of<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .collect()
    }

    #[test]
    fn writes_every_family_with_help_and_type_and_ends_with_eof() {
        let started = SystemTime::UNIX_EPOCH + Duration::from_millis(1_765_000_000_250);
        let run = ScanRun {
            started,
            took: Duration::from_millis(1500),
        };
        let pushes = LastPushes::Read(HashMap::from([
            (
                "Admin".to_string(),
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000),
            ),
            (
                "Gone".to_string(),
                SystemTime::UNIX_EPOCH + Duration::from_secs(1),
            ),
        ]));
        let text = to_openmetrics(&report(), run, &pushes);
        assert!(text.ends_with("\n# EOF\n"), "{text}");
        for f in &FAMILIES {
            let help = format!("# HELP {} {}\n# TYPE {} gauge\n", f.name, f.help, f.name);
            assert!(text.contains(&help), "{}", f.name);
        }
        assert_eq!(
            lines_of(&text, "farmkey_scan_timestamp_seconds"),
            ["farmkey_scan_timestamp_seconds 1765000000.25"]
        );
        assert_eq!(
            lines_of(&text, "farmkey_scan_duration_seconds"),
            ["farmkey_scan_duration_seconds 1.5"]
        );
        assert_eq!(
            lines_of(&text, "farmkey_server_read"),
            [
                "farmkey_server_read{server=\"web01\"} 1",
                "farmkey_server_read{server=\"web03\"} 0"
            ]
        );
        assert_eq!(
            lines_of(&text, "farmkey_servers_read"),
            ["farmkey_servers_read 1"]
        );
        let not_read = lines_of(&text, "farmkey_servers_not_read");
        assert_eq!(not_read.len(), NotReadReason::ALL.len());
        assert!(not_read.contains(&"farmkey_servers_not_read{reason=\"connect-refused\"} 1"));
        assert!(not_read.contains(&"farmkey_servers_not_read{reason=\"dns\"} 0"));
        // The site's name escaped; no component label when none is known.
        assert_eq!(
            lines_of(&text, "farmkey_site_state"),
            [
                "farmkey_site_state{site=\"Flow\\\"time\\\\\\n\",state=\"in-step\"} 0",
                "farmkey_site_state{site=\"Flow\\\"time\\\\\\n\",state=\"unverified\"} 0",
                "farmkey_site_state{site=\"Flow\\\"time\\\\\\n\",state=\"drifted\"} 1",
                "farmkey_site_state{site=\"Admin\",state=\"in-step\"} 0",
                "farmkey_site_state{site=\"Admin\",state=\"unverified\"} 1",
                "farmkey_site_state{site=\"Admin\",state=\"drifted\"} 0",
                "farmkey_site_state{site=\"Togo\",state=\"in-step\"} 1",
                "farmkey_site_state{site=\"Togo\",state=\"unverified\"} 0",
                "farmkey_site_state{site=\"Togo\",state=\"drifted\"} 0",
            ]
        );
        assert!(text.contains("farmkey_site_servers_not_read{site=\"Admin\"} 1\n"));
        assert!(text.contains("farmkey_site_servers_not_read{site=\"Togo\"} 0\n"));
        // Every code, with each severity it can take.
        let findings = lines_of(&text, "farmkey_findings");
        let possible: usize = RULES
            .iter()
            .map(|r| 1 + usize::from(r.lesser.is_some()))
            .sum();
        assert_eq!(findings.len(), possible);
        assert!(findings.contains(&"farmkey_findings{code=\"key-mismatch\",severity=\"error\"} 1"));
        assert!(
            findings.contains(&"farmkey_findings{code=\"auto-generated\",severity=\"info\"} 0")
        );
        // Only sites of the scan.
        assert_eq!(
            lines_of(&text, "farmkey_last_push_timestamp_seconds"),
            ["farmkey_last_push_timestamp_seconds{site=\"Admin\"} 1764000000"]
        );
        assert_eq!(
            lines_of(&text, "farmkey_audit_log_readable"),
            ["farmkey_audit_log_readable 1"]
        );
        // Neither the address nor the system's words.
        assert!(
            !text.contains("10.0.0.3") && !text.contains("corp"),
            "{text}"
        );
    }

    #[test]
    fn an_unreadable_audit_log_has_no_push_times() {
        let run = ScanRun {
            started: SystemTime::now(),
            took: Duration::ZERO,
        };
        let text = to_openmetrics(&report(), run, &LastPushes::Unreadable);
        assert!(lines_of(&text, "farmkey_last_push_timestamp_seconds").is_empty());
        assert!(text.contains("# TYPE farmkey_last_push_timestamp_seconds gauge\n"));
        assert!(text.contains("\nfarmkey_audit_log_readable 0\n"));
    }

    #[test]
    fn each_failure_has_its_kind() {
        let connect = |e: ConnectError| {
            NotReadReason::of(&ServerFailure::Unreachable(Unreachable::Connect(Box::new(
                e,
            ))))
        };
        assert_eq!(
            connect(ConnectError::Timeout {
                addr: "a".into(),
                secs: 3
            }),
            NotReadReason::ConnectTimeout
        );
        let changed = ConnectError::HostKeyChanged {
            host: "h".into(),
            key_type: "ssh-ed25519".into(),
            fingerprint: "SHA256:x".into(),
            known_hosts: "/k".into(),
        };
        assert_eq!(
            connect(ConnectError::Jump {
                hop: "bastion".into(),
                error: Box::new(changed.clone()),
            }),
            NotReadReason::HostKeyChanged
        );
        assert_eq!(
            connect(ConnectError::Jump {
                hop: "bastion".into(),
                error: Box::new(ConnectError::Refused { addr: "b".into() }),
            }),
            NotReadReason::JumpHost
        );
        assert_eq!(
            NotReadReason::of(&ServerFailure::HostKeyChanged(Box::new(changed))),
            NotReadReason::HostKeyChanged
        );
        assert_eq!(
            NotReadReason::of(&ServerFailure::Unreachable(Unreachable::WorkerStopped)),
            NotReadReason::WorkerStopped
        );
    }
}
