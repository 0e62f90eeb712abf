//! The console's state and how messages change it. No I/O here: what the
//! outside world must do comes back as [`Effect`]s.

use super::symbols::Symbols;
use super::theme::Theme;
use crate::analysis::{
    FarmReport, Finding, Instance, Selection, Severity, SiteReport, analyze, analyze_against,
};
use crate::disclosed::DisclosedKeys;
use crate::farm::ScanEvent;
use crate::inventory::Server;
use crate::keys::{DecryptionAlg, KeyText, ValidationAlg};
use crate::push::apply::{Progress, PushOutcome};
use crate::push::{KeySource, Plan, PlanAction, PushRequest, Verdict, exclusion_effect};
use crate::scan::{ServerFailure, ServerScan, Stage};
use crate::transport::{HostKeyDecision, HostKeyQuestion, SecretQuestion};
use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};
use secrecy::SecretString;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant, SystemTime};
use zeroize::Zeroizing;

/// How long revealed keys stay on screen.
pub const REVEAL_FOR: Duration = Duration::from_secs(10);

/// Everything that reaches the event loop.
pub enum Msg {
    Input(Event),
    Scan {
        generation: u64,
        event: ScanEvent,
    },
    Ask(Ask),
    /// A push plan is ready (or could not be made); `go` starts or cancels it.
    Planned {
        result: Result<Plan, String>,
        go: Option<Sender<bool>>,
    },
    PushProgress(Progress),
    PushDone(Result<PushOutcome, String>),
    Tick,
}

/// A question from a connection worker, with where to send the answer.
pub enum Ask {
    Secret {
        question: SecretQuestion,
        reply: Sender<Option<SecretString>>,
    },
    HostKey {
        question: HostKeyQuestion,
        reply: Sender<Option<HostKeyDecision>>,
    },
}

/// What the runtime must do after an update.
#[derive(Debug)]
pub enum Effect {
    /// Scan these servers (indices) under this generation.
    Scan {
        servers: Vec<usize>,
        generation: u64,
    },
    /// Read the files and plan a push; the answer comes as `Msg::Planned`.
    Plan(PushRequest),
    /// Ask the running push to stop between steps and undo what it did.
    InterruptPush,
}

/// A way to choose the key set, as offered in the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChoice {
    Adopt {
        server: String,
        group: char,
        servers: usize,
    },
    Generate(ValidationAlg, DecryptionAlg),
    Import,
    HandlerOnly,
    /// A key set in use whose keys are publicly disclosed: shown, but a
    /// push of it is refused.
    AdoptDisclosed {
        server: String,
        group: char,
    },
}

impl KeyChoice {
    pub fn label(&self) -> String {
        match self {
            KeyChoice::Adopt {
                server,
                group,
                servers,
            } => format!(
                "Adopt key set {group} from {server} (its {servers} server{} keep{} signed-in users)",
                if *servers == 1 { "" } else { "s" },
                if *servers == 1 { "s its" } else { " their" }
            ),
            KeyChoice::Generate(v, d) => {
                let why = if *v == ValidationAlg::Sha1 {
                    "the vendor's choice"
                } else {
                    "the DISA IIS 10 STIG asks for it"
                };
                format!("Generate new keys: {} + {} ({why})", v.name(), d.name())
            }
            KeyChoice::Import => "Import a <machineKey> element (paste it)".into(),
            KeyChoice::HandlerOnly => "Only fix the session-token handler (DPAPI)".into(),
            KeyChoice::AdoptDisclosed { server, group } => {
                format!("Adopt key set {group} from {server}: refused, its keys are public")
            }
        }
    }

    /// Offered, but refused when chosen.
    pub fn disabled(&self) -> bool {
        matches!(self, KeyChoice::AdoptDisclosed { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Matrix,
    Servers,
    Findings,
    Log,
    Detail,
}

impl Screen {
    pub const TABS: [Screen; 4] = [
        Screen::Matrix,
        Screen::Servers,
        Screen::Findings,
        Screen::Log,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Matrix => "Matrix",
            Screen::Servers => "Servers",
            Screen::Findings => "Findings",
            Screen::Log => "Log",
            Screen::Detail => "Detail",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    Connecting,
    Reading,
    Done,
}

pub struct ServerRow {
    pub server: Server,
    pub phase: Phase,
    /// Results of older scans of this server are ignored.
    pub generation: u64,
    pub started: Option<Instant>,
    pub scan: Option<ServerScan>,
}

impl ServerRow {
    pub fn ok(&self) -> Option<bool> {
        self.scan.as_ref().map(|s| s.result.is_ok())
    }

    pub fn error(&self) -> Option<String> {
        self.scan
            .as_ref()
            .and_then(|s| s.result.as_ref().err().map(|e| e.to_string()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone)]
pub struct LogEntry {
    pub at: SystemTime,
    pub level: Level,
    pub text: String,
}

/// A modal question or message. Buttons are listed Cancel first: it is the
/// default of every dialog that could change something.
pub enum Dialog {
    HostKey {
        question: HostKeyQuestion,
        reply: Sender<Option<HostKeyDecision>>,
        focus: usize,
    },
    Secret {
        question: SecretQuestion,
        input: Zeroizing<String>,
        reply: Sender<Option<SecretString>>,
    },
    Message {
        title: String,
        text: String,
        danger: bool,
    },
    ConfirmReveal {
        site: String,
        server: String,
        focus: usize,
    },
    Revealed {
        site: String,
        server: String,
        validation_key: KeyText,
        decryption_key: KeyText,
        until: Instant,
    },
    ChooseKeys {
        site: String,
        choices: Vec<KeyChoice>,
        focus: usize,
    },
    Paste {
        site: String,
        text: Zeroizing<String>,
    },
    Planning {
        site: String,
    },
    ConfirmPush {
        plan: Box<Plan>,
        go: Sender<bool>,
        focus: usize,
    },
    /// A plan that cannot be pushed as it is: why, and what may be done.
    Blocked {
        plan: Box<Plan>,
        offer: Offer,
        focus: usize,
    },
    Pushing {
        site: String,
        lines: Vec<(String, String)>,
        /// The latest stage of the whole push (locks, rollback...).
        note: Option<String>,
        /// Set once the operator asked to stop.
        interrupting: bool,
    },
}

/// What a blocked plan lets the operator do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// Plan again without these servers (they cannot be reached or read).
    Exclude(Vec<String>),
    /// Plan again, breaking the locks shown.
    BreakLock,
    Nothing,
}

impl Dialog {
    pub fn buttons(&self) -> &'static [&'static str] {
        match self {
            Dialog::HostKey { .. } => &["Refuse", "Accept once", "Accept and store"],
            Dialog::ConfirmReveal { .. } => &["Cancel", "Reveal"],
            Dialog::Secret { .. } => &["Cancel", "OK"],
            Dialog::Message { .. } | Dialog::Revealed { .. } => &["OK"],
            Dialog::ChooseKeys { .. } => &["Cancel", "Choose"],
            Dialog::Paste { .. } => &["Cancel", "Use these keys"],
            Dialog::ConfirmPush { .. } => &["Cancel", "Push"],
            Dialog::Blocked { offer, .. } => match offer {
                Offer::Exclude(_) => &["Cancel", "Leave out and plan again"],
                Offer::BreakLock => &["Cancel", "Break the lock and plan again"],
                Offer::Nothing => &["OK"],
            },
            Dialog::Planning { .. } | Dialog::Pushing { .. } => &[],
        }
    }
}

/// Actions that reach the outside world go through one place, where
/// --read-only is enforced.
#[derive(Debug, Clone)]
pub enum Action {
    RescanAll,
    RescanServer(usize),
    Reveal {
        site: String,
        server: String,
    },
    /// Open the key choice for a push to this site.
    ChoosePush {
        site: String,
    },
    /// Read the files and plan the push.
    PlanPush(PushRequest),
    /// Start (true) or cancel (false) a planned push.
    StartPush {
        go: Sender<bool>,
        start: bool,
    },
    /// Stop the running push between steps; it undoes what it changed.
    InterruptPush,
}

impl Action {
    /// Would it change a server? Such actions are refused under --read-only.
    pub fn changes_servers(&self) -> bool {
        match self {
            Action::ChoosePush { .. } | Action::PlanPush(_) => true,
            Action::StartPush { start, .. } => *start,
            Action::RescanAll
            | Action::RescanServer(_)
            | Action::Reveal { .. }
            | Action::InterruptPush => false,
        }
    }
}

pub struct App {
    pub title: String,
    pub servers: Vec<ServerRow>,
    pub report: FarmReport,
    pub selection: Selection,
    /// The lists of publicly disclosed keys the analysis checks.
    pub disclosed: DisclosedKeys,
    pub screen: Screen,
    /// The screen Esc returns to from the detail view.
    pub back: Screen,
    pub matrix_row: usize,
    /// 0: the site as a whole; k: the k-th visible server.
    pub matrix_col: usize,
    pub servers_row: usize,
    pub findings_row: usize,
    pub findings_worst_first: bool,
    pub log_offset: usize,
    pub detail_scroll: u16,
    pub detail: Option<(String, Option<String>)>,
    pub filter: String,
    pub filter_editing: bool,
    pub help: bool,
    pub dialogs: Vec<Dialog>,
    pub log: Vec<LogEntry>,
    pub read_only: bool,
    pub theme: Theme,
    pub symbols: Symbols,
    pub tick: u64,
    pub generation: u64,
    /// A short message in the footer, until it expires.
    pub flash: Option<(String, Instant)>,
    /// Scan results arrived since the analysis was last made.
    pub stale: bool,
    /// The operator has moved the matrix selection: it then follows its
    /// site when the order changes; before, it stays on the first row.
    pub cursor_moved: bool,
    /// The request of the plan being made or shown, to plan it again with
    /// servers left out or a lock broken.
    pub push_request: Option<PushRequest>,
    pub quit: bool,
}

/// How long a footer message stays.
pub const FLASH_FOR: Duration = Duration::from_secs(4);

impl App {
    pub fn new(
        title: String,
        servers: Vec<Server>,
        theme: Theme,
        symbols: Symbols,
        read_only: bool,
    ) -> App {
        let rows = servers
            .into_iter()
            .map(|server| ServerRow {
                server,
                phase: Phase::Waiting,
                generation: 0,
                started: None,
                scan: None,
            })
            .collect();
        let mut app = App {
            title,
            servers: rows,
            report: analyze([], &Selection::default()),
            selection: Selection::default(),
            disclosed: DisclosedKeys::shipped(),
            screen: Screen::Matrix,
            back: Screen::Matrix,
            matrix_row: 0,
            matrix_col: 0,
            servers_row: 0,
            findings_row: 0,
            findings_worst_first: true,
            log_offset: 0,
            detail_scroll: 0,
            detail: None,
            filter: String::new(),
            filter_editing: false,
            help: false,
            dialogs: Vec::new(),
            log: Vec::new(),
            read_only,
            theme,
            symbols,
            tick: 0,
            generation: 0,
            flash: None,
            stale: false,
            cursor_moved: false,
            push_request: None,
            quit: false,
        };
        app.recompute();
        app
    }

    pub fn log(&mut self, level: Level, text: impl Into<String>) {
        self.log.push(LogEntry {
            at: SystemTime::now(),
            level,
            text: text.into(),
        });
    }

    /// Says something in the footer for a few seconds (and in the log).
    pub fn flash(&mut self, text: impl Into<String>) {
        let text = text.into();
        self.log(Level::Info, text.clone());
        self.flash = Some((text, Instant::now() + FLASH_FOR));
    }

    /// Checks keys against these lists (the shipped one and the operator's).
    pub fn set_disclosed(&mut self, disclosed: DisclosedKeys) {
        self.disclosed = disclosed;
        self.recompute();
    }

    /// Brings the analysis up to date with the results received; the event
    /// loop calls it before drawing, and every key sees it done.
    pub fn settle(&mut self) {
        if self.stale {
            self.recompute();
        }
    }

    /// The analysis is recomputed when results change, never per frame.
    fn recompute(&mut self) {
        let selected = self.selected_site().map(|s| s.site.clone());
        let scans = self.servers.iter().filter_map(|r| r.scan.as_ref());
        self.report = analyze_against(scans, &self.selection, &self.disclosed);
        self.stale = false;
        // Sites with a publicly disclosed key come first, then those out of
        // step, the worst first, so they are seen.
        let rank = |s: &SiteReport| {
            (
                !s.has_disclosed_key(),
                s.consistent(),
                std::cmp::Reverse(s.worst()),
                s.site.to_lowercase(),
            )
        };
        self.report.sites.sort_by_key(rank);
        let visible = self.visible_sites();
        let keep = selected
            .filter(|_| self.cursor_moved)
            .and_then(|name| visible.iter().position(|s| s.site == name));
        let row = match (keep, self.cursor_moved) {
            (Some(row), _) => row,
            (None, true) => self.matrix_row,
            (None, false) => 0,
        };
        self.matrix_row = row.min(visible.len().saturating_sub(1));
    }

    // ---- what the views show ----

    fn filter_lc(&self) -> String {
        self.filter.to_lowercase()
    }

    /// Sites shown: those matching the filter, or all when none does.
    pub fn visible_sites(&self) -> Vec<&SiteReport> {
        let f = self.filter_lc();
        let matching: Vec<&SiteReport> = self
            .report
            .sites
            .iter()
            .filter(|s| f.is_empty() || s.site.to_lowercase().contains(&f))
            .collect();
        if matching.is_empty() && !f.is_empty() && self.servers_matching_filter() {
            return self.report.sites.iter().collect();
        }
        matching
    }

    fn servers_matching_filter(&self) -> bool {
        let f = self.filter_lc();
        self.servers
            .iter()
            .any(|r| r.server.name.to_lowercase().contains(&f))
    }

    /// Server indices shown: those matching the filter, or all when none does.
    pub fn visible_servers(&self) -> Vec<usize> {
        let f = self.filter_lc();
        let matching: Vec<usize> = (0..self.servers.len())
            .filter(|&i| f.is_empty() || self.servers[i].server.name.to_lowercase().contains(&f))
            .collect();
        if matching.is_empty() {
            (0..self.servers.len()).collect()
        } else {
            matching
        }
    }

    pub fn selected_site(&self) -> Option<&SiteReport> {
        self.visible_sites().get(self.matrix_row).copied()
    }

    pub fn selected_server(&self) -> Option<usize> {
        if self.matrix_col == 0 {
            return None;
        }
        self.visible_servers().get(self.matrix_col - 1).copied()
    }

    /// Findings across the farm, in the chosen order.
    pub fn sorted_findings(&self) -> Vec<&Finding> {
        let f = self.filter_lc();
        let mut all: Vec<&Finding> = self
            .report
            .all_findings()
            .filter(|x| {
                f.is_empty()
                    || x.site.as_deref().unwrap_or("").to_lowercase().contains(&f)
                    || x.servers.iter().any(|s| s.to_lowercase().contains(&f))
                    || x.code.name().contains(&f)
            })
            .collect();
        // Stable sorts: report order within a severity, a disclosed key
        // the most urgent of errors.
        if self.findings_worst_first {
            all.sort_by_key(|x| std::cmp::Reverse(x.urgency()));
        } else {
            all.sort_by_key(|x| x.urgency());
        }
        all
    }

    pub fn instance(&self, site: &str, server: &str) -> Option<&Instance> {
        self.report.site(site)?.instance(server)
    }

    pub fn scanning(&self) -> usize {
        self.servers
            .iter()
            .filter(|r| r.phase != Phase::Done)
            .count()
    }

    pub fn spinner(&self) -> &'static str {
        let frames = self.symbols.spinner;
        frames[(self.tick as usize) % frames.len()]
    }

    // ---- updates ----

    /// Starts the first scan of every server.
    pub fn start(&mut self) -> Vec<Effect> {
        self.perform(Action::RescanAll)
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        if !matches!(msg, Msg::Scan { .. } | Msg::Tick) {
            self.settle();
        }
        match msg {
            Msg::Tick => {
                self.tick = self.tick.wrapping_add(1);
                if self
                    .flash
                    .as_ref()
                    .is_some_and(|(_, until)| Instant::now() >= *until)
                {
                    self.flash = None;
                }
                if let Some(Dialog::Revealed { until, .. }) = self.dialogs.last()
                    && Instant::now() >= *until
                {
                    self.dialogs.pop();
                }
                Vec::new()
            }
            Msg::Scan { generation, event } => {
                self.on_scan(generation, event);
                Vec::new()
            }
            Msg::Ask(ask) => {
                // Questions wait behind what is on screen.
                self.dialogs.insert(
                    0,
                    match ask {
                        Ask::Secret { question, reply } => Dialog::Secret {
                            question,
                            input: Zeroizing::new(String::new()),
                            reply,
                        },
                        Ask::HostKey { question, reply } => Dialog::HostKey {
                            question,
                            reply,
                            focus: 0,
                        },
                    },
                );
                Vec::new()
            }
            Msg::Planned { result, go } => {
                self.dialogs
                    .retain(|d| !matches!(d, Dialog::Planning { .. }));
                match (result, go) {
                    (Ok(plan), go) if !plan.blocked().is_empty() => {
                        if let Some(go) = go {
                            let _ = go.send(false);
                        }
                        self.log(
                            Level::Warn,
                            format!("plan {} blocked: nothing is written", plan.push_id),
                        );
                        let unreadable = plan.blocked_servers();
                        let offer = if !unreadable.is_empty() {
                            Offer::Exclude(unreadable)
                        } else if plan.locks_held().iter().all(|h| !h.alive_here()) {
                            Offer::BreakLock
                        } else {
                            Offer::Nothing
                        };
                        self.dialogs.push(Dialog::Blocked {
                            plan: Box::new(plan),
                            offer,
                            focus: 0,
                        });
                    }
                    (Ok(plan), Some(go)) if plan.writes() > 0 => {
                        self.log(
                            Level::Info,
                            format!(
                                "plan {} ready: {} server(s) to write",
                                plan.push_id,
                                plan.writes()
                            ),
                        );
                        self.dialogs.push(Dialog::ConfirmPush {
                            plan: Box::new(plan),
                            go,
                            focus: 0,
                        });
                    }
                    (Ok(plan), go) => {
                        if let Some(go) = go {
                            let _ = go.send(false);
                        }
                        let text = plan.to_string();
                        self.dialogs.push(Dialog::Message {
                            title: format!("Nothing to write on {}", plan.site),
                            text,
                            danger: false,
                        });
                    }
                    (Err(e), _) => {
                        self.log(Level::Error, format!("no plan: {e}"));
                        self.dialogs.push(Dialog::Message {
                            title: "Cannot plan the push".into(),
                            text: e,
                            danger: true,
                        });
                    }
                }
                Vec::new()
            }
            Msg::PushProgress(p) => {
                let (server, status) = match &p {
                    Progress::Step { server, step } => {
                        (server.clone(), format!("{} {step}", self.spinner()))
                    }
                    Progress::Done(r) => (r.server.clone(), r.outcome.to_string()),
                    Progress::Note(text) => {
                        self.log(Level::Info, format!("push: {text}"));
                        if let Some(Dialog::Pushing { note, .. }) = self.dialogs.last_mut() {
                            *note = Some(text.clone());
                        }
                        return Vec::new();
                    }
                };
                if let Progress::Done(r) = &p {
                    let level = if r.outcome.recorded().is_fine() {
                        Level::Info
                    } else {
                        Level::Error
                    };
                    self.log(level, format!("push {}: {}", r.server, r.outcome));
                }
                if let Some(Dialog::Pushing { lines, .. }) = self.dialogs.last_mut() {
                    match lines.iter_mut().find(|(s, _)| *s == server) {
                        Some(line) => line.1 = status,
                        None => lines.push((server, status)),
                    }
                }
                Vec::new()
            }
            Msg::PushDone(result) => {
                self.dialogs
                    .retain(|d| !matches!(d, Dialog::Pushing { .. }));
                let (title, text, danger) = match result {
                    Ok(outcome) => {
                        let mut text = outcome
                            .results
                            .iter()
                            .map(|r| format!("{}: {}", r.server, r.outcome))
                            .collect::<Vec<_>>()
                            .join("\n");
                        text.push_str(&format!("\n\n{}", outcome.summary()));
                        for e in &outcome.audit_errors {
                            text.push_str(&format!("\nThe audit log did not take a record: {e}"));
                        }
                        self.log(
                            if outcome.success() {
                                Level::Info
                            } else {
                                Level::Error
                            },
                            outcome.summary(),
                        );
                        let title = match (outcome.verdict(), outcome.interrupted) {
                            (Verdict::InStep, _) => "Push done".to_string(),
                            (Verdict::AsBefore, Some(r)) => {
                                format!("Push interrupted ({r}): rolled back")
                            }
                            (Verdict::AsBefore, None) => "Push not made".to_string(),
                            (Verdict::OutOfStep, _) => "Push left the site OUT OF STEP".to_string(),
                        };
                        (title, text, !outcome.success())
                    }
                    Err(e) => {
                        self.log(Level::Error, format!("push not started: {e}"));
                        ("Push not started".to_string(), e, true)
                    }
                };
                self.dialogs.push(Dialog::Message {
                    title,
                    text,
                    danger,
                });
                // Show the farm as it now is.
                self.perform(Action::RescanAll)
            }
            Msg::Input(Event::Key(key)) if key.kind != KeyEventKind::Release => self.on_key(key),
            Msg::Input(Event::Paste(text)) => {
                if let Some(Dialog::Paste { text: buffer, .. }) = self.dialogs.last_mut() {
                    buffer.push_str(&text);
                } else if let Some(Dialog::Secret { input, .. }) = self.dialogs.last_mut() {
                    input.push_str(text.trim_end_matches(['\r', '\n']));
                } else if self.filter_editing {
                    self.filter.push_str(&text);
                }
                Vec::new()
            }
            Msg::Input(Event::Mouse(m)) if self.dialogs.is_empty() => {
                // Only with --mouse: the wheel moves the selection.
                let code = match m.kind {
                    MouseEventKind::ScrollUp => KeyCode::Up,
                    MouseEventKind::ScrollDown => KeyCode::Down,
                    _ => return Vec::new(),
                };
                self.on_screen_key(KeyEvent::new(code, KeyModifiers::NONE))
            }
            Msg::Input(_) => Vec::new(),
        }
    }

    fn on_scan(&mut self, generation: u64, event: ScanEvent) {
        let (index, stage, scan) = match event {
            ScanEvent::Stage { index, stage } => (index, Some(stage), None),
            ScanEvent::Finished { index, scan } => (index, None, Some(scan)),
        };
        let Some(row) = self.servers.get_mut(index) else {
            return;
        };
        if row.generation != generation {
            return; // a result of a scan since replaced
        }
        if let Some(stage) = stage {
            row.phase = match stage {
                Stage::Connecting => Phase::Connecting,
                Stage::Reading => Phase::Reading,
            };
            return;
        }
        let scan = *scan.expect("finished events carry a scan");
        row.phase = Phase::Done;
        let name = row.server.name.clone();
        let (level, text) = match &scan.result {
            Ok(c) => (
                Level::Info,
                format!(
                    "{name}: read {} applications in {:.2}s",
                    c.apps.len(),
                    scan.elapsed.as_secs_f64()
                ),
            ),
            Err(e) => (Level::Error, format!("{name}: {e}")),
        };
        if let Err(ServerFailure::HostKeyChanged(msg)) = &scan.result {
            self.dialogs.push(Dialog::Message {
                title: format!("{name}: host key changed, refused"),
                text: msg.clone(),
                danger: true,
            });
        }
        self.servers[index].scan = Some(scan);
        self.log(level, text);
        // Results of many servers arriving together make one analysis.
        self.stale = true;
    }

    /// The one place where actions reach the outside world.
    pub fn perform(&mut self, action: Action) -> Vec<Effect> {
        if self.read_only && action.changes_servers() {
            self.log(Level::Warn, "refused a push: farmkey runs --read-only");
            self.dialogs.push(Dialog::Message {
                title: "Read-only".into(),
                text:
                    "farmkey was started with --read-only: nothing on the servers can be changed."
                        .into(),
                danger: false,
            });
            return Vec::new();
        }
        match action {
            Action::RescanAll => {
                let all: Vec<usize> = (0..self.servers.len()).collect();
                self.rescan(all)
            }
            Action::RescanServer(i) => self.rescan(vec![i]),
            Action::ChoosePush { site } => {
                let choices = self.key_choices(&site);
                self.dialogs.push(Dialog::ChooseKeys {
                    site,
                    choices,
                    focus: 0,
                });
                Vec::new()
            }
            Action::PlanPush(request) => {
                self.log(Level::Info, format!("planning a push to {}", request.site));
                self.push_request = Some(request.clone());
                self.dialogs.push(Dialog::Planning {
                    site: request.site.clone(),
                });
                vec![Effect::Plan(request)]
            }
            Action::StartPush { go, start } => {
                let _ = go.send(start);
                Vec::new()
            }
            Action::InterruptPush => {
                let mut asked = false;
                if let Some(Dialog::Pushing { interrupting, .. }) = self
                    .dialogs
                    .iter_mut()
                    .rev()
                    .find(|d| matches!(d, Dialog::Pushing { .. }))
                {
                    asked = !*interrupting;
                    *interrupting = true;
                }
                if !asked {
                    return Vec::new();
                }
                self.log(
                    Level::Warn,
                    "push interrupted: finishing the server in progress, then rolling back",
                );
                vec![Effect::InterruptPush]
            }
            Action::Reveal { site, server } => {
                let keys = self.instance(&site, &server).and_then(|i| {
                    let (v, d) = i.keys.as_ref()?;
                    Some((v.key()?.clone(), d.key()?.clone()))
                });
                match keys {
                    Some((v, d)) => {
                        self.log(
                            Level::Warn,
                            format!("keys of {site} on {server} shown on screen"),
                        );
                        self.dialogs.push(Dialog::Revealed {
                            site,
                            server,
                            validation_key: v,
                            decryption_key: d,
                            until: Instant::now() + REVEAL_FOR,
                        });
                    }
                    None => self.dialogs.push(Dialog::Message {
                        title: "Nothing to reveal".into(),
                        text: format!("{site} on {server} has no explicit, readable key pair."),
                        danger: false,
                    }),
                }
                Vec::new()
            }
        }
    }

    fn rescan(&mut self, indices: Vec<usize>) -> Vec<Effect> {
        self.generation += 1;
        let generation = self.generation;
        for &i in &indices {
            if let Some(row) = self.servers.get_mut(i) {
                row.generation = generation;
                row.phase = Phase::Waiting;
                row.started = Some(Instant::now());
            }
        }
        let names: Vec<String> = indices
            .iter()
            .filter_map(|&i| self.servers.get(i).map(|r| r.server.name.clone()))
            .collect();
        self.log(Level::Info, format!("scanning {}", names.join(", ")));
        vec![Effect::Scan {
            servers: indices,
            generation,
        }]
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl_c {
            // A push is never left half-way: Ctrl-C stops it between steps,
            // and it undoes what it changed.
            if self.pushing() {
                return self.perform(Action::InterruptPush);
            }
            self.quit_now();
            return Vec::new();
        }
        if !self.dialogs.is_empty() {
            return self.on_dialog_key(key);
        }
        if self.help {
            self.help = false;
            return Vec::new();
        }
        if self.filter_editing {
            match key.code {
                KeyCode::Enter => self.filter_editing = false,
                KeyCode::Esc => {
                    self.filter.clear();
                    self.filter_editing = false;
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            self.clamp_cursors();
            return Vec::new();
        }
        match key.code {
            KeyCode::Char('q') => {
                self.quit_now();
                Vec::new()
            }
            KeyCode::Char('?') => {
                self.help = true;
                Vec::new()
            }
            KeyCode::Char('/') => {
                self.filter_editing = true;
                Vec::new()
            }
            KeyCode::Esc => {
                if self.screen == Screen::Detail {
                    self.screen = self.back;
                } else {
                    self.filter.clear();
                    self.clamp_cursors();
                }
                Vec::new()
            }
            KeyCode::Tab => {
                self.cycle_screen(1);
                Vec::new()
            }
            KeyCode::BackTab => {
                self.cycle_screen(-1);
                Vec::new()
            }
            KeyCode::Char(c @ '1'..='4') => {
                self.screen = Screen::TABS[(c as u8 - b'1') as usize];
                Vec::new()
            }
            KeyCode::Char('r') => self.perform(Action::RescanAll),
            KeyCode::Char('R') => match self.focused_server() {
                Some(i) => self.perform(Action::RescanServer(i)),
                None => {
                    self.flash("select a server (a column of the matrix, or a row of Servers) to rescan it");
                    Vec::new()
                }
            },
            KeyCode::Char('a') => {
                self.selection.all_sites = !self.selection.all_sites;
                self.recompute();
                Vec::new()
            }
            _ => self.on_screen_key(key),
        }
    }

    fn quit_now(&mut self) {
        // Answer every pending question so no worker waits forever.
        for d in self.dialogs.drain(..) {
            match d {
                Dialog::Secret { reply, .. } => {
                    let _ = reply.send(None);
                }
                Dialog::HostKey { reply, .. } => {
                    let _ = reply.send(None);
                }
                _ => {}
            }
        }
        self.quit = true;
    }

    fn focused_server(&self) -> Option<usize> {
        match self.screen {
            Screen::Servers => Some(self.servers_row),
            Screen::Matrix | Screen::Detail => self.selected_server(),
            _ => None,
        }
    }

    fn cycle_screen(&mut self, step: isize) {
        let current = Screen::TABS
            .iter()
            .position(|s| *s == self.screen)
            .unwrap_or(0) as isize;
        let n = Screen::TABS.len() as isize;
        self.screen = Screen::TABS[((current + step).rem_euclid(n)) as usize];
    }

    fn clamp_cursors(&mut self) {
        let rows = self.visible_sites().len();
        self.matrix_row = self.matrix_row.min(rows.saturating_sub(1));
        self.matrix_col = self.matrix_col.min(self.visible_servers().len());
        self.findings_row = self
            .findings_row
            .min(self.sorted_findings().len().saturating_sub(1));
    }

    fn on_screen_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let (up, down, left, right) = (
            matches!(key.code, KeyCode::Up | KeyCode::Char('k')),
            matches!(key.code, KeyCode::Down | KeyCode::Char('j')),
            matches!(key.code, KeyCode::Left | KeyCode::Char('h')),
            matches!(key.code, KeyCode::Right | KeyCode::Char('l')),
        );
        let page = matches!(key.code, KeyCode::PageDown);
        let page_up = matches!(key.code, KeyCode::PageUp);
        let top = matches!(key.code, KeyCode::Char('g') | KeyCode::Home);
        let bottom = matches!(key.code, KeyCode::Char('G') | KeyCode::End);
        let step = |cur: usize, len: usize| -> usize {
            let last = len.saturating_sub(1);
            if top {
                0
            } else if bottom {
                last
            } else if up {
                cur.saturating_sub(1)
            } else if down {
                (cur + 1).min(last)
            } else if page {
                (cur + 10).min(last)
            } else if page_up {
                cur.saturating_sub(10)
            } else {
                cur
            }
        };
        match self.screen {
            Screen::Matrix => {
                let rows = self.visible_sites().len();
                let row = step(self.matrix_row, rows);
                self.cursor_moved |= row != self.matrix_row;
                self.matrix_row = row;
                let cols = self.visible_servers().len();
                if left {
                    self.matrix_col = self.matrix_col.saturating_sub(1);
                } else if right {
                    self.matrix_col = (self.matrix_col + 1).min(cols);
                }
                match key.code {
                    KeyCode::Enter => self.open_detail(),
                    KeyCode::Char('v') => self.ask_reveal(),
                    KeyCode::Char('p') => {
                        if let Some(site) = self.selected_site().map(|s| s.site.clone()) {
                            return self.perform(Action::ChoosePush { site });
                        }
                    }
                    _ => {}
                }
            }
            Screen::Servers => self.servers_row = step(self.servers_row, self.servers.len()),
            Screen::Findings => {
                let n = self.sorted_findings().len();
                self.findings_row = step(self.findings_row, n);
                match key.code {
                    KeyCode::Char('s') => self.findings_worst_first = !self.findings_worst_first,
                    KeyCode::Enter => self.jump_to_finding_site(),
                    _ => {}
                }
            }
            Screen::Log => {
                let n = self.log.len();
                // offset counts lines up from the newest
                self.log_offset = if top {
                    n.saturating_sub(1)
                } else if bottom {
                    0
                } else if up {
                    (self.log_offset + 1).min(n.saturating_sub(1))
                } else if down {
                    self.log_offset.saturating_sub(1)
                } else if page_up {
                    (self.log_offset + 10).min(n.saturating_sub(1))
                } else if page {
                    self.log_offset.saturating_sub(10)
                } else {
                    self.log_offset
                };
            }
            Screen::Detail => {
                if up {
                    self.detail_scroll = self.detail_scroll.saturating_sub(1);
                } else if down {
                    self.detail_scroll = (self.detail_scroll + 1).min(self.detail_len());
                } else if top {
                    self.detail_scroll = 0;
                } else if key.code == KeyCode::Char('v') {
                    self.ask_reveal();
                } else if key.code == KeyCode::Char('p')
                    && let Some((site, _)) = self.detail.clone()
                {
                    return self.perform(Action::ChoosePush { site });
                }
            }
        }
        Vec::new()
    }

    /// The ways to choose the keys for a push to `site`: adopting each key
    /// set in use (most used first), generating, importing, and the handler
    /// swap alone when a server needs it. Where a key is publicly disclosed,
    /// generating comes first and its sets are shown refused, last.
    fn key_choices(&self, site: &str) -> Vec<KeyChoice> {
        let mut out = Vec::new();
        if let Some(report) = self.report.site(site) {
            let mut groups: Vec<(char, String, usize, bool)> = Vec::new();
            for inst in &report.instances {
                if let Some(g) = inst.key_group {
                    match groups.iter_mut().find(|(l, _, _, _)| *l == g) {
                        Some((_, _, n, _)) => *n += 1,
                        None => groups.push((g, inst.server.clone(), 1, inst.is_disclosed())),
                    }
                }
            }
            groups.sort_by_key(|(g, _, _, _)| *g);
            let generate = [
                KeyChoice::Generate(ValidationAlg::Sha1, DecryptionAlg::Aes),
                KeyChoice::Generate(ValidationAlg::HmacSha256, DecryptionAlg::Aes),
            ];
            let disclosed = report.has_disclosed_key();
            if disclosed {
                out.extend(generate.clone());
            }
            for (group, server, servers, _) in groups.iter().filter(|g| !g.3) {
                out.push(KeyChoice::Adopt {
                    server: server.clone(),
                    group: *group,
                    servers: *servers,
                });
            }
            if !disclosed {
                out.extend(generate);
            }
            out.push(KeyChoice::Import);
            if report
                .findings
                .iter()
                .any(|f| f.code == crate::analysis::Code::DpapiSessionTokens)
            {
                out.push(KeyChoice::HandlerOnly);
            }
            for (group, server, _, _) in groups.into_iter().filter(|g| g.3) {
                out.push(KeyChoice::AdoptDisclosed { server, group });
            }
        }
        out
    }

    fn plan_request(site: String, source: KeySource) -> PushRequest {
        PushRequest::new(site, source)
    }

    /// A push is running (its progress dialog is open).
    pub fn pushing(&self) -> bool {
        self.dialogs
            .iter()
            .any(|d| matches!(d, Dialog::Pushing { .. }))
    }

    /// Closes a blocked plan; `again`: plan once more, leaving out the
    /// servers that blocked it, or breaking the locks shown.
    fn replan_blocked(&mut self, again: bool) -> Vec<Effect> {
        let Some(Dialog::Blocked { offer, .. }) = self.dialogs.pop() else {
            return Vec::new();
        };
        let Some(mut request) = self.push_request.clone().filter(|_| again) else {
            return Vec::new();
        };
        match offer {
            Offer::Exclude(servers) => {
                for s in &servers {
                    self.log(
                        Level::Warn,
                        format!(
                            "{s} left out of the push to {}: {}",
                            request.site,
                            exclusion_effect(s)
                        ),
                    );
                }
                request.exclude.extend(servers);
            }
            Offer::BreakLock => request.break_lock = true,
            Offer::Nothing => return Vec::new(),
        }
        self.perform(Action::PlanPush(request))
    }

    /// About how many lines the detail view has, to stop scrolling past them.
    fn detail_len(&self) -> u16 {
        let Some((site, server)) = &self.detail else {
            return 0;
        };
        let Some(site) = self.report.site(site) else {
            return 0;
        };
        let instances = if server.is_some() {
            1
        } else {
            site.instances.len() + site.absent_on.len()
        };
        (4 + instances * 18 + site.findings.len() * 3) as u16
    }

    fn open_detail(&mut self) {
        let Some(site) = self.selected_site().map(|s| s.site.clone()) else {
            return;
        };
        let server = self
            .selected_server()
            .map(|i| self.servers[i].server.name.clone());
        self.detail = Some((site, server));
        self.detail_scroll = 0;
        self.back = self.screen;
        self.screen = Screen::Detail;
    }

    fn jump_to_finding_site(&mut self) {
        let Some(site) = self
            .sorted_findings()
            .get(self.findings_row)
            .and_then(|f| f.site.clone())
        else {
            return;
        };
        self.filter.clear();
        if let Some(row) = self.visible_sites().iter().position(|s| s.site == site) {
            self.matrix_row = row;
            self.cursor_moved = true;
            self.matrix_col = 0;
            self.screen = Screen::Matrix;
        }
    }

    fn ask_reveal(&mut self) {
        let site = match (&self.screen, &self.detail) {
            (Screen::Detail, Some((site, Some(server)))) => Some((site.clone(), server.clone())),
            (Screen::Matrix, _) => self.selected_site().map(|s| s.site.clone()).zip(
                self.selected_server()
                    .map(|i| self.servers[i].server.name.clone()),
            ),
            _ => None,
        };
        match site {
            Some((site, server)) => self.dialogs.push(Dialog::ConfirmReveal {
                site,
                server,
                focus: 0,
            }),
            None => {
                self.flash("select a site on one server (a cell of the matrix) to reveal its keys")
            }
        }
    }

    fn on_dialog_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Some(dialog) = self.dialogs.last_mut() else {
            return Vec::new();
        };
        let buttons = dialog.buttons().len();
        match dialog {
            Dialog::Revealed { .. } => {
                self.dialogs.pop(); // any key hides the keys
            }
            Dialog::Message { .. } => {
                if matches!(
                    key.code,
                    KeyCode::Enter | KeyCode::Esc | KeyCode::Char(' ') | KeyCode::Char('q')
                ) {
                    self.dialogs.pop();
                }
            }
            Dialog::Secret { input, .. } => match key.code {
                KeyCode::Enter => {
                    if let Some(Dialog::Secret { input, reply, .. }) = self.dialogs.pop() {
                        let _ = reply.send(Some(SecretString::from(input.as_str().to_string())));
                    }
                }
                KeyCode::Esc => {
                    if let Some(Dialog::Secret { reply, .. }) = self.dialogs.pop() {
                        let _ = reply.send(None);
                    }
                }
                KeyCode::Backspace => {
                    input.pop();
                }
                KeyCode::Char(c) => input.push(c),
                _ => {}
            },
            Dialog::Pushing { .. } => {
                if matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) {
                    return self.perform(Action::InterruptPush);
                }
            }
            Dialog::Planning { .. } => {} // wait for the worker
            Dialog::Blocked { focus, .. } => match key.code {
                KeyCode::Left | KeyCode::Char('h') | KeyCode::BackTab => {
                    *focus = focus.saturating_sub(1)
                }
                KeyCode::Right | KeyCode::Char('l') | KeyCode::Tab => {
                    *focus = (*focus + 1).min(buttons - 1)
                }
                KeyCode::Esc => {
                    self.dialogs.pop();
                }
                KeyCode::Enter | KeyCode::Char(' ') => {
                    let again = *focus == 1;
                    return self.replan_blocked(again);
                }
                _ => {}
            },
            Dialog::ChooseKeys { focus, choices, .. } => match key.code {
                KeyCode::Up | KeyCode::Char('k') => *focus = focus.saturating_sub(1),
                KeyCode::Down | KeyCode::Char('j') => {
                    *focus = (*focus + 1).min(choices.len().saturating_sub(1))
                }
                KeyCode::Esc => {
                    self.dialogs.pop();
                }
                KeyCode::Enter => {
                    if let Some(Dialog::ChooseKeys {
                        site,
                        choices,
                        focus,
                    }) = self.dialogs.pop()
                    {
                        return self.choose(site, choices[focus].clone());
                    }
                }
                _ => {}
            },
            Dialog::Paste { text, .. } => match key.code {
                KeyCode::Esc => {
                    self.dialogs.pop();
                }
                KeyCode::Enter
                    if key.modifiers.contains(KeyModifiers::ALT)
                        || text.trim_end().ends_with('>') =>
                {
                    if let Some(Dialog::Paste { site, text }) = self.dialogs.pop() {
                        let keys = crate::config::import::key_set_from_xml(&text)
                            .map_err(|e| e.to_string())
                            .and_then(|set| {
                                crate::push::refuse_disclosed(
                                    &set,
                                    "the pasted keys",
                                    &self.report.disclosed,
                                )
                                .map_err(|e| e.to_string())?;
                                Ok(set)
                            });
                        return match keys {
                            Ok(set) => self.perform(Action::PlanPush(Self::plan_request(
                                site,
                                KeySource::Import(set),
                            ))),
                            Err(e) => {
                                self.log(Level::Warn, format!("pasted keys refused: {e}"));
                                self.dialogs.push(Dialog::Message {
                                    title: "These keys cannot be used".into(),
                                    text: e,
                                    danger: true,
                                });
                                Vec::new()
                            }
                        };
                    }
                }
                KeyCode::Enter => text.push('\n'),
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) => text.push(c),
                _ => {}
            },
            Dialog::ConfirmPush { focus, .. } => match key.code {
                KeyCode::Left | KeyCode::Char('h') | KeyCode::BackTab => {
                    *focus = focus.saturating_sub(1)
                }
                KeyCode::Right | KeyCode::Char('l') | KeyCode::Tab => *focus = (*focus + 1).min(1),
                KeyCode::Esc => return self.decide_push(false),
                KeyCode::Enter | KeyCode::Char(' ') => {
                    let start = *focus == 1;
                    return self.decide_push(start);
                }
                _ => {}
            },
            Dialog::HostKey { focus, .. } | Dialog::ConfirmReveal { focus, .. } => match key.code {
                KeyCode::Left | KeyCode::Char('h') | KeyCode::BackTab => {
                    *focus = focus.saturating_sub(1)
                }
                KeyCode::Right | KeyCode::Char('l') | KeyCode::Tab => {
                    *focus = (*focus + 1).min(buttons - 1)
                }
                KeyCode::Esc => return self.close_choice(0),
                KeyCode::Enter | KeyCode::Char(' ') => {
                    let f = *focus;
                    return self.close_choice(f);
                }
                _ => {}
            },
        }
        Vec::new()
    }

    fn choose(&mut self, site: String, choice: KeyChoice) -> Vec<Effect> {
        let source = match choice {
            // The plan refuses it, with the reason, as it refuses any
            // disclosed key.
            KeyChoice::Adopt { server, .. } | KeyChoice::AdoptDisclosed { server, .. } => {
                KeySource::Adopt(Some(server))
            }
            KeyChoice::Generate(validation, decryption) => KeySource::Generate {
                validation,
                decryption,
            },
            KeyChoice::HandlerOnly => KeySource::HandlerOnly,
            KeyChoice::Import => {
                self.dialogs.push(Dialog::Paste {
                    site,
                    text: Zeroizing::new(String::new()),
                });
                return Vec::new();
            }
        };
        self.perform(Action::PlanPush(Self::plan_request(site, source)))
    }

    /// Closes the push confirmation: start the push or drop the plan.
    fn decide_push(&mut self, start: bool) -> Vec<Effect> {
        let Some(Dialog::ConfirmPush { plan, go, .. }) = self.dialogs.pop() else {
            return Vec::new();
        };
        if !start {
            self.log(
                Level::Info,
                format!("push {} cancelled: nothing was written", plan.push_id),
            );
            let _ = go.send(false);
            return Vec::new();
        }
        let lines = plan
            .servers
            .iter()
            .map(|s| {
                let status = match &s.action {
                    PlanAction::Write => "waiting".to_string(),
                    PlanAction::Unchanged => "unchanged".to_string(),
                    PlanAction::Blocked(why) => format!("cannot be pushed: {why}"),
                };
                (s.server.clone(), status)
            })
            .collect();
        self.log(
            Level::Warn,
            format!("push {} to {} started", plan.push_id, plan.site),
        );
        self.dialogs.push(Dialog::Pushing {
            site: plan.site.clone(),
            lines,
            note: None,
            interrupting: false,
        });
        self.perform(Action::StartPush { go, start: true })
    }

    /// Closes a choice dialog with button `choice` (0 is Cancel/Refuse).
    fn close_choice(&mut self, choice: usize) -> Vec<Effect> {
        match self.dialogs.pop() {
            Some(Dialog::HostKey {
                question, reply, ..
            }) => {
                let decision = [
                    HostKeyDecision::Refuse,
                    HostKeyDecision::AcceptOnce,
                    HostKeyDecision::AcceptAndStore,
                ][choice];
                self.log(
                    if decision == HostKeyDecision::Refuse {
                        Level::Warn
                    } else {
                        Level::Info
                    },
                    format!(
                        "{}: host key {} {:?}",
                        question.server, question.fingerprint, decision
                    ),
                );
                let _ = reply.send(Some(decision));
                Vec::new()
            }
            Some(Dialog::ConfirmReveal { site, server, .. }) if choice == 1 => {
                self.perform(Action::Reveal { site, server })
            }
            _ => Vec::new(),
        }
    }

    /// Shortest text for a worst severity, for row marks.
    pub fn severity_symbol(&self, s: Option<Severity>) -> &'static str {
        match s {
            Some(Severity::Error) => self.symbols.error,
            Some(Severity::Warning) => self.symbols.warning,
            Some(Severity::Info) => self.symbols.info,
            None => self.symbols.ok,
        }
    }
}
