//! The console's state and how messages change it. No I/O here: what the
//! outside world must do comes back as [`Effect`]s, and every action that
//! could reach a server goes through [`App::perform`], where --read-only is
//! enforced. What each screen and dialog does with a key lives in its own
//! module (`screens/`, `dialogs/`, `push_flow`); this one routes.

use super::dialogs::message::Message;
use super::dialogs::reveal::Revealed;
use super::dialogs::rollback::Rollback;
use super::dialogs::{self, Activity, Dialog, Shown};
use super::help::{Help, HelpState};
use super::model::{Action, Data, Filter, HistoryData, LogLevel, Phase, ServerRow, Work};
use super::push_flow::PushFlow;
use super::screens::{ScreenId, ScreenReply, Screens};
use super::symbols::Symbols;
use super::theme::Theme;
use super::ui::{self, Ui};
use crate::analysis::{Selection, SiteReport, analyze, analyze_while_reading};
use crate::config::apphost::Components;
use crate::disclosed::DisclosedKeys;
use crate::farm::ScanEvent;
use crate::inventory::Server;
use crate::push::PushRequest;
use crate::push::audit::AuditRecord;
use crate::push::history::PastPush;
use crate::scan::{ScanStage, ServerFailure};
use crate::transport::{HostKeyDecision, HostKeyQuestion, SecretQuestion};
use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect, Size};
use secrecy::SecretString;
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// Everything that reaches the event loop.
pub enum Msg {
    Input(Event),
    Scan {
        generation: u64,
        event: ScanEvent,
    },
    Ask(Ask),
    Work(Work),
    /// The audit log, read and grouped into pushes (oldest first).
    History {
        path: PathBuf,
        result: Result<Vec<PastPush>, std::io::Error>,
    },
    /// The backups of a site on every server, read and matched to the
    /// audit log.
    Backups {
        site: Option<String>,
        servers: Vec<crate::push::backups::ServerBackups>,
    },
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
    /// Read the files and plan a push; the answer comes as `Work::Planned`.
    Plan(PushRequest),
    /// Ask the running push to stop between steps and undo what it did.
    InterruptPush,
    /// Read the audit log; the answer comes as `Msg::History`.
    LoadHistory,
    /// Read a site's backups on every server; the answer comes as
    /// `Msg::Backups`.
    LoadBackups(Option<String>),
    /// Read the locks of the servers a rollback of these records would
    /// restore; the answer comes as `Work::RollbackLocks`.
    CheckRollback(Vec<AuditRecord>),
    /// Restore what a past push changed; the answer comes as `Work`.
    Rollback {
        records: Vec<AuditRecord>,
        break_lock: bool,
    },
}

pub struct App {
    pub data: Data,
    pub ui: Ui,
    pub screen: ScreenId,
    /// Where Esc goes back to, the last on top: the screens left by Enter
    /// (a site of the Findings on the Matrix, a site's Detail). A number
    /// key or Tab starts afresh.
    pub back: Vec<ScreenId>,
    pub screens: Screens,
    /// The help, while it is shown.
    pub help: Option<Help>,
    /// Modal dialogs; the last is on top.
    pub dialogs: Vec<Shown>,
    pub read_only: bool,
    pub generation: u64,
    /// A short message in the footer, until it expires.
    pub flash: Option<(String, Instant)>,
    /// The terminal's size, as last reported: pages are fitted to it.
    pub size: Size,
    /// Scan results arrived since the analysis was last made.
    stale: bool,
    /// Something drawn may have changed since the last frame: the event
    /// loop draws only then, so an idle console sends nothing.
    pub dirty: bool,
    pub quit: bool,
}

fn ctrl_c(key: &KeyEvent) -> bool {
    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL)
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
                jumps: Vec::new(),
            })
            .collect();
        let mut app = App {
            data: Data {
                title,
                servers: rows,
                report: analyze([], &Selection::default()),
                selection: Selection::default(),
                disclosed: DisclosedKeys::shipped(),
                filter: Filter::default(),
                log: Vec::new(),
                history: HistoryData::default(),
                changed: true,
            },
            ui: Ui {
                theme,
                symbols,
                tick: 0,
            },
            screen: ScreenId::Matrix,
            back: Vec::new(),
            screens: Screens::default(),
            help: None,
            dialogs: Vec::new(),
            read_only,
            generation: 0,
            flash: None,
            // Until the terminal's is known (the runtime says it first).
            size: Size::new(ui::MIN_WIDTH, ui::MIN_HEIGHT),
            stale: true,
            dirty: true,
            quit: false,
        };
        app.settle();
        app
    }

    pub fn log(&mut self, level: LogLevel, text: impl Into<String>) {
        self.data.log(level, text);
    }

    /// Says something in the footer for a few seconds (and in the log).
    pub fn flash(&mut self, text: impl Into<String>) {
        let text = text.into();
        self.log(LogLevel::Info, text.clone());
        self.flash = Some((text, Instant::now() + FLASH_FOR));
    }

    /// Checks keys against these lists (the shipped one and the operator's).
    pub fn set_disclosed(&mut self, disclosed: DisclosedKeys) {
        self.data.disclosed = disclosed;
        self.stale = true;
        self.settle();
    }

    /// The inventory's `[components]`.
    pub fn set_components(&mut self, components: Components) {
        self.data.selection.components = components;
        self.stale = true;
        self.settle();
    }

    /// Brings the analysis and the rows of the screen shown up to date,
    /// and fits it to the terminal (a page's scroll within its lines); the
    /// event loop calls it before drawing, and every key sees it done.
    pub fn settle(&mut self) {
        if self.stale {
            self.recompute();
        }
        if std::mem::take(&mut self.data.changed) {
            self.screens.data_changed();
        }
        self.screens.refresh(self.screen, &self.data);
        let body = ui::body(self.size, self.read_only);
        self.screens
            .get_mut(self.screen)
            .fit(body, &self.data, &self.ui);
        let frame = Rect::from((Position::ORIGIN, self.size));
        if let Some(d) = self.dialogs.last_mut() {
            d.fit(frame, &self.ui);
        }
        let state = self.help_state();
        if let Some(help) = &mut self.help {
            help.fit(frame, &self.ui, &state);
        }
    }

    /// What the help says of this session.
    pub fn help_state(&self) -> HelpState {
        HelpState {
            read_only: self.read_only,
            all_sites: self.data.selection.all_sites,
        }
    }

    /// The terminal's size changed (or is first known).
    pub fn resize(&mut self, size: Size) {
        self.size = size;
        self.settle();
    }

    /// The analysis is recomputed when results change, never per frame.
    fn recompute(&mut self) {
        let d = &mut self.data;
        let scans = d.servers.iter().filter_map(|r| r.scan.as_ref());
        // A server never read yet may host any site: none is in step
        // before it is read.
        let pending: Vec<String> = d
            .servers
            .iter()
            .filter(|r| r.scan.is_none())
            .map(|r| r.server.name.clone())
            .collect();
        d.report = analyze_while_reading(scans, &pending, &d.selection, &d.disclosed);
        // Sites with a publicly disclosed key come first, then those out of
        // step, the worst first, then those not verified, so they are seen.
        let rank = |s: &SiteReport| {
            (
                !s.has_disclosed_key(),
                s.verdict(),
                std::cmp::Reverse(s.worst()),
                s.site.to_lowercase(),
            )
        };
        d.report.sites.sort_by_key(rank);
        d.changed = true;
        self.stale = false;
    }

    /// Which long operation a dialog shows, if any.
    pub fn activity(&self) -> Activity {
        self.dialogs
            .iter()
            .map(|d| d.dialog.activity())
            .find(|a| *a != Activity::Idle)
            .unwrap_or(Activity::Idle)
    }

    /// Something shown moves by itself: a spinner (a scan, the audit log
    /// read, a dialog waiting for a worker) or a countdown.
    pub fn animating(&self) -> bool {
        self.data.scanning() > 0
            || self.data.history.loading
            || self.dialogs.iter().any(|d| d.dialog.ticking())
    }

    /// A push is running (its progress dialog is open).
    pub fn pushing(&self) -> bool {
        self.activity() == Activity::Pushing
    }

    /// A push or a rollback runs: the console does not close under it.
    pub fn working(&self) -> bool {
        self.activity() != Activity::Idle
    }

    /// Opens a dialog on top.
    pub fn open(&mut self, dialog: Box<dyn Dialog>) {
        self.dialogs.push(Shown::new(dialog));
    }

    /// A worker's question waits behind what the operator is looking at,
    /// so that no key meant for that answers it.
    fn ask(&mut self, dialog: Box<dyn Dialog>) {
        self.dialogs.insert(0, Shown::new(dialog));
        self.surface_questions();
    }

    /// Questions come on top of a dialog that waits for a worker: that
    /// worker may be the one asking, or wait for its turn to ask (workers
    /// take turns with questions), so the question must be answered first.
    fn surface_questions(&mut self) {
        while self.dialogs.last().is_some_and(|d| d.dialog.waiting()) {
            let Some(i) = self.dialogs.iter().position(|d| d.dialog.question()) else {
                break;
            };
            let question = self.dialogs.remove(i);
            self.dialogs.push(question);
        }
    }

    // ---- updates ----

    /// Starts the first scan of every server.
    pub fn start(&mut self) -> Vec<Effect> {
        self.perform(Action::RescanAll)
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        // Results of many servers arriving together make one analysis,
        // made before the next key or frame.
        let batched = matches!(msg, Msg::Scan { .. } | Msg::Tick);
        // Every message but a tick changes what is drawn, or may.
        self.dirty |= !matches!(msg, Msg::Tick);
        if !batched {
            self.settle();
        }
        let effects = match msg {
            Msg::Tick => {
                // The spinner turns only while something runs; a tick
                // otherwise redraws only what it ends (a flash, a dialog).
                if self.animating() {
                    self.ui.tick = self.ui.tick.wrapping_add(1);
                    self.dirty = true;
                }
                if self
                    .flash
                    .as_ref()
                    .is_some_and(|(_, until)| Instant::now() >= *until)
                {
                    self.flash = None;
                    self.dirty = true;
                }
                let open = self.dialogs.len();
                self.dialogs.retain_mut(|d| !d.dialog.expired());
                self.dirty |= self.dialogs.len() != open;
                Vec::new()
            }
            Msg::Scan { generation, event } => {
                self.on_scan(generation, event);
                Vec::new()
            }
            Msg::Ask(Ask::Secret { question, reply }) => {
                self.ask(Box::new(dialogs::secret::Secret::new(question, reply)));
                Vec::new()
            }
            Msg::Ask(Ask::HostKey { question, reply }) => {
                // One dialog lists every host asked about.
                match self.dialogs.iter_mut().find_map(|d| d.dialog.host_keys()) {
                    Some(open) => {
                        open.add(question, reply);
                        self.data.changed = true;
                    }
                    None => self.ask(Box::new(dialogs::host_key::HostKeys::new(question, reply))),
                }
                Vec::new()
            }
            Msg::Work(work) => self.on_work(work),
            Msg::Backups { site, servers } => {
                let b = &mut self.data.history.backups;
                // An answer to an earlier question is not this one's.
                if b.site == site {
                    b.servers = servers;
                    b.loading = false;
                    self.data.changed = true;
                }
                Vec::new()
            }
            Msg::History { path, result } => {
                let h = &mut self.data.history;
                h.path = Some(path);
                h.loading = false;
                match result {
                    Ok(list) => {
                        h.pushes = list;
                        h.error = None;
                    }
                    Err(e) => h.error = Some(e),
                }
                self.data.changed = true;
                Vec::new()
            }
            // Only the size is drawn: nothing may act unseen but q and
            // Ctrl-C, which the screen offers.
            Msg::Input(event) if !ui::fits(self.size) && !matches!(event, Event::Resize(..)) => {
                match event {
                    Event::Key(key)
                        if key.kind != KeyEventKind::Release
                            && (ctrl_c(&key) || key.code == KeyCode::Char('q')) =>
                    {
                        self.stop()
                    }
                    _ => Vec::new(),
                }
            }
            Msg::Input(Event::Key(key)) if key.kind != KeyEventKind::Release => self.on_key(key),
            Msg::Input(Event::Paste(text)) => {
                if let Some(d) = self.dialogs.last_mut() {
                    d.dialog.on_paste(&text);
                } else if self.data.filter.editing {
                    self.data.filter.push_str(&text);
                    self.data.changed = true;
                }
                Vec::new()
            }
            Msg::Input(Event::Mouse(m)) => self.on_mouse(m),
            Msg::Input(Event::Resize(width, height)) => {
                self.resize(Size::new(width, height));
                Vec::new()
            }
            Msg::Input(_) => Vec::new(),
        };
        if !batched {
            self.settle();
        }
        self.surface_questions();
        effects
    }

    /// Only with --mouse: the wheel scrolls what is on top (the help, a
    /// dialog, or the screen's selection); a click on a tab shows it, one
    /// on a row of a list selects it.
    fn on_mouse(&mut self, m: MouseEvent) -> Vec<Effect> {
        let code = match m.kind {
            MouseEventKind::ScrollUp => KeyCode::Up,
            MouseEventKind::ScrollDown => KeyCode::Down,
            MouseEventKind::Down(MouseButton::Left) => return self.click(m.column, m.row),
            _ => return Vec::new(),
        };
        let key = KeyEvent::new(code, KeyModifiers::NONE);
        if let Some(d) = self.dialogs.last_mut() {
            d.scroll(&key);
        } else if let Some(help) = &mut self.help {
            help.on_key(&key);
        } else {
            return self.on_screen_key(&key);
        }
        Vec::new()
    }

    fn click(&mut self, x: u16, y: u16) -> Vec<Effect> {
        // What is on top takes the keys; a click behind it does nothing.
        if !self.dialogs.is_empty() || self.help.is_some() || self.data.filter.editing {
            return Vec::new();
        }
        let [_, _, tabs, body, _] =
            ui::areas(Rect::from((Position::ORIGIN, self.size)), self.read_only);
        if y == tabs.y {
            return match ScreenId::tab_at(x) {
                Some(screen) => self.show(screen),
                None => Vec::new(),
            };
        }
        if body.contains(Position::new(x, y)) {
            self.screens.get_mut(self.screen).click(y, body, &self.data);
        }
        Vec::new()
    }

    /// A worker's report goes to the dialog that shows its work.
    fn on_work(&mut self, work: Work) -> Vec<Effect> {
        // After a push or a rollback: the farm and the history as they now are.
        let after = matches!(work, Work::PushDone(_) | Work::RollbackDone(_));
        let mut effects = Vec::new();
        if let Some(i) = self.dialogs.iter().rposition(|d| d.dialog.takes(&work)) {
            let reply = self.dialogs[i].dialog.on_work(work, &mut self.data);
            effects = self.dialog_reply(i, reply);
        }
        if after {
            effects.extend(self.perform(Action::RescanAll));
            effects.extend(self.perform(Action::LoadHistory));
        }
        effects
    }

    fn on_scan(&mut self, generation: u64, event: ScanEvent) {
        let (index, stage, scan) = match event {
            ScanEvent::ScanStage { index, stage } => (index, Some(stage), None),
            ScanEvent::Finished { index, scan } => (index, None, Some(scan)),
            ScanEvent::Notes(notes) => {
                for note in notes {
                    self.log(LogLevel::Warn, note.to_string());
                }
                return;
            }
        };
        let Some(row) = self.data.servers.get_mut(index) else {
            return;
        };
        if row.generation != generation {
            return; // a result of a scan since replaced
        }
        self.data.changed = true;
        if let Some(stage) = stage {
            row.phase = match stage {
                ScanStage::Connecting => Phase::Connecting,
                ScanStage::Reading => Phase::Reading,
            };
            return;
        }
        let scan = *scan.expect("finished events carry a scan");
        row.phase = Phase::Done;
        let name = row.server.name.clone();
        let (level, text) = match &scan.result {
            Ok(c) => (
                LogLevel::Info,
                format!(
                    "{name}: read {} applications in {:.2}s",
                    c.apps.len(),
                    scan.elapsed.as_secs_f64()
                ),
            ),
            Err(e) => (LogLevel::Error, format!("{name}: {e}")),
        };
        if let Err(ServerFailure::HostKeyChanged(e)) = &scan.result {
            self.open(Box::new(Message::new(
                format!("{name}: host key changed, refused"),
                e.to_string(),
                true,
            )));
        }
        self.data.servers[index].scan = Some(scan);
        self.log(level, text);
        self.stale = true;
    }

    /// The one place where actions reach the outside world.
    pub fn perform(&mut self, action: Action) -> Vec<Effect> {
        self.try_perform(action).unwrap_or_default()
    }

    /// `None` when --read-only refused the action.
    fn try_perform(&mut self, action: Action) -> Option<Vec<Effect>> {
        if self.read_only && action.changes_servers() {
            self.log(
                LogLevel::Warn,
                format!("refused {}: farmkey runs --read-only", action.what()),
            );
            self.open(Box::new(Message::new(
                "Read-only",
                "farmkey was started with --read-only: nothing on the servers can be changed.",
                false,
            )));
            return None;
        }
        Some(match action {
            Action::RescanAll => {
                let all: Vec<usize> = (0..self.data.servers.len()).collect();
                self.rescan(all)
            }
            Action::RescanServer(i) => self.rescan(vec![i]),
            Action::ChoosePush { site } => {
                self.open(Box::new(PushFlow::new(site, &self.data.report)));
                Vec::new()
            }
            Action::PlanPush(request) => {
                self.log(
                    LogLevel::Info,
                    format!("planning a push to {}", request.site),
                );
                vec![Effect::Plan(request)]
            }
            Action::StartPush { go, start } => {
                let _ = go.send(start);
                Vec::new()
            }
            Action::InterruptPush => {
                self.log(
                    LogLevel::Warn,
                    "push interrupted: finishing the server in progress, then rolling back",
                );
                vec![Effect::InterruptPush]
            }
            Action::Reveal { site, server } => {
                self.reveal(site, server);
                Vec::new()
            }
            Action::LoadHistory => {
                self.data.history.loading = true;
                self.data.changed = true;
                vec![Effect::LoadHistory]
            }
            Action::LoadBackups { site } => {
                let b = &mut self.data.history.backups;
                b.site = site.clone();
                b.servers.clear();
                b.loading = true;
                self.data.changed = true;
                vec![Effect::LoadBackups(site)]
            }
            Action::ChooseRollback { push_id } => {
                let push = self.data.history.pushes.iter().find(|p| p.id == push_id);
                match push.map(|p| (p.site().to_string(), p.to_roll_back())) {
                    Some((site, targets)) if !targets.is_empty() => {
                        self.open(Box::new(Rollback::new(push_id, site, targets.clone())));
                        return Some(vec![Effect::CheckRollback(targets)]);
                    }
                    _ => self.open(Box::new(Message::new(
                        "Nothing to roll back",
                        format!(
                            "Every change of push {push_id} was already rolled back, or it changed nothing."
                        ),
                        false,
                    ))),
                }
                Vec::new()
            }
            Action::Rollback {
                push_id,
                site,
                records,
                break_lock,
            } => {
                self.log(
                    LogLevel::Info,
                    format!("rolling back push {push_id} to {site}"),
                );
                vec![Effect::Rollback {
                    records,
                    break_lock,
                }]
            }
        })
    }

    fn reveal(&mut self, site: String, server: String) {
        let keys = self
            .data
            .report
            .site(&site)
            .and_then(|s| s.instance(&server))
            .and_then(|i| {
                let (v, d) = i.keys.as_ref()?;
                Some((v.key()?.clone(), d.key()?.clone()))
            });
        match keys {
            Some((v, d)) => {
                self.log(
                    LogLevel::Warn,
                    format!("keys of {site} on {server} shown on screen"),
                );
                self.open(Box::new(Revealed::new(site, server, v, d)));
            }
            None => self.open(Box::new(Message::new(
                "Nothing to reveal",
                format!("{site} on {server} has no explicit, readable key pair."),
                false,
            ))),
        }
    }

    fn rescan(&mut self, indices: Vec<usize>) -> Vec<Effect> {
        self.generation += 1;
        let generation = self.generation;
        for &i in &indices {
            if let Some(row) = self.data.servers.get_mut(i) {
                row.generation = generation;
                row.phase = Phase::Waiting;
                row.started = Some(Instant::now());
            }
        }
        let names: Vec<String> = indices
            .iter()
            .filter_map(|&i| self.data.servers.get(i).map(|r| r.server.name.clone()))
            .collect();
        self.log(LogLevel::Info, format!("scanning {}", names.join(", ")));
        vec![Effect::Scan {
            servers: indices,
            generation,
        }]
    }

    /// Asks the running push to stop between steps (Ctrl-C, a signal).
    pub fn interrupt_push(&mut self) -> Vec<Effect> {
        let asked = self.dialogs.iter_mut().any(|d| d.dialog.interrupt());
        if asked {
            self.perform(Action::InterruptPush)
        } else {
            Vec::new()
        }
    }

    /// Ctrl-C (and q while the terminal is too small): quits, but a push
    /// is never left half-way: it is stopped between steps, and it undoes
    /// what it changed. A rollback ends first.
    fn stop(&mut self) -> Vec<Effect> {
        match self.activity() {
            Activity::Pushing => self.interrupt_push(),
            Activity::RollingBack => {
                self.flash("a rollback is running: the console closes once it ends");
                Vec::new()
            }
            Activity::Idle => {
                self.quit_now();
                Vec::new()
            }
        }
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if ctrl_c(&key) {
            return self.stop();
        }
        if let Some(top) = self.dialogs.len().checked_sub(1) {
            let reply = self.dialogs[top].on_key(&key, &mut self.data, &self.ui);
            return self.dialog_reply(top, reply);
        }
        if let Some(help) = &mut self.help {
            if !help.on_key(&key) {
                self.help = None;
            }
            return Vec::new();
        }
        if self.data.filter.editing {
            let filter = &mut self.data.filter;
            match key.code {
                KeyCode::Enter => filter.editing = false,
                KeyCode::Esc => {
                    filter.clear();
                    filter.editing = false;
                }
                KeyCode::Backspace => filter.pop(),
                KeyCode::Char(c) => filter.push_str(c.encode_utf8(&mut [0; 4])),
                _ => {}
            }
            self.data.changed = true;
            return Vec::new();
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::F(10) => {
                self.quit_now();
                Vec::new()
            }
            KeyCode::Char('?') | KeyCode::F(1) => {
                self.help = Some(Help::default());
                Vec::new()
            }
            // The Detail shows one site: there is nothing to filter.
            KeyCode::Char('/') if self.screen != ScreenId::Detail => {
                self.data.filter.editing = true;
                Vec::new()
            }
            KeyCode::Tab => self.show(self.cycled(1)),
            KeyCode::BackTab => self.show(self.cycled(-1)),
            KeyCode::Char(c @ '1'..='5') => self.show(ScreenId::TABS[(c as u8 - b'1') as usize]),
            KeyCode::Char('r') | KeyCode::F(5) => self.perform(Action::RescanAll),
            KeyCode::Char('R') => match self.screens.get(self.screen).focused_server(&self.data) {
                Some(i) => self.perform(Action::RescanServer(i)),
                None => {
                    self.flash("select a server (a column of the matrix, or a row of Servers) to rescan it");
                    Vec::new()
                }
            },
            KeyCode::Char('a') => {
                self.data.selection.all_sites = !self.data.selection.all_sites;
                self.stale = true;
                Vec::new()
            }
            _ => self.on_screen_key(&key),
        }
    }

    fn on_screen_key(&mut self, key: &KeyEvent) -> Vec<Effect> {
        let reply = self.screens.get_mut(self.screen).on_key(key, &self.data);
        match reply {
            ScreenReply::Done => Vec::new(),
            ScreenReply::Unhandled => {
                if key.code == KeyCode::Esc && !self.data.filter.is_empty() {
                    self.data.filter.clear();
                    self.data.changed = true;
                } else if key.code == KeyCode::Esc
                    && let Some(screen) = self.back.pop()
                {
                    return self.show_again(screen);
                }
                Vec::new()
            }
            ScreenReply::Act(action) => self.perform(action),
            ScreenReply::Open(dialog) => {
                self.open(dialog);
                Vec::new()
            }
            ScreenReply::Flash(text) => {
                self.flash(text);
                Vec::new()
            }
            ScreenReply::Detail { site, server } => {
                self.screens.detail.open(site, server);
                self.back.push(self.screen);
                self.screen = ScreenId::Detail;
                Vec::new()
            }
            ScreenReply::Back => {
                let screen = self.back.pop();
                self.show_again(screen.unwrap_or(ScreenId::Matrix))
            }
            ScreenReply::ShowSite(site) => {
                self.data.filter.clear();
                self.data.changed = true;
                self.settle();
                self.screens.refresh(ScreenId::Matrix, &self.data);
                if self.screens.matrix.select_site(&self.data, &site) {
                    if self.screen != ScreenId::Matrix {
                        self.back.push(self.screen);
                    }
                    self.screen = ScreenId::Matrix;
                }
                Vec::new()
            }
        }
    }

    /// Applies what dialog `i` asked.
    fn dialog_reply(&mut self, i: usize, reply: dialogs::DialogReply) -> Vec<Effect> {
        match reply {
            dialogs::DialogReply::Stay => Vec::new(),
            dialogs::DialogReply::Close => {
                self.dialogs.remove(i);
                Vec::new()
            }
            dialogs::DialogReply::CloseAnd(action) => {
                self.dialogs.remove(i);
                self.perform(action)
            }
            dialogs::DialogReply::Act(action) => match self.try_perform(action) {
                Some(effects) => effects,
                None => {
                    // Refused: the dialog that asked ends (the refusal is
                    // shown on top of it, so it is still at `i`).
                    self.dialogs.remove(i);
                    Vec::new()
                }
            },
        }
    }

    /// Shows a screen, a fresh navigation (nothing to go back to).
    fn show(&mut self, screen: ScreenId) -> Vec<Effect> {
        self.back.clear();
        self.show_again(screen)
    }

    /// Shows a screen, the back stack kept; the history is read again each
    /// time it is shown.
    fn show_again(&mut self, screen: ScreenId) -> Vec<Effect> {
        self.screen = screen;
        if screen == ScreenId::History {
            return self.perform(Action::LoadHistory);
        }
        Vec::new()
    }

    /// The tab `step` tabs away from the current one (the detail counts as
    /// the screen it was opened from).
    fn cycled(&self, step: isize) -> ScreenId {
        let tabs = ScreenId::TABS;
        let current = match self.screen {
            ScreenId::Detail => self.back.last().copied().unwrap_or(ScreenId::Matrix),
            s => s,
        };
        let at = tabs.iter().position(|s| *s == current).unwrap_or(0) as isize;
        tabs[(at + step).rem_euclid(tabs.len() as isize) as usize]
    }

    fn quit_now(&mut self) {
        // Answer every pending question so no worker waits forever.
        for mut d in self.dialogs.drain(..) {
            d.dialog.abandon();
        }
        self.quit = true;
    }
}
