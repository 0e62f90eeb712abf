//! The terminal console: an event loop fed by an input thread and by
//! workers over one channel. State and updates in [`app`]; each screen in
//! [`screens`], each dialog in [`dialogs`], a push in [`push_flow`], all
//! reading and asking through [`model`]; the frame around them in [`view`];
//! the workers in [`workers`]. The terminal is restored on exit, on error
//! and on panic.

pub mod app;
pub mod dialogs;
pub mod help;
pub mod keys;
pub mod model;
pub mod push_flow;
pub mod screens;
pub mod symbols;
pub mod theme;
pub mod ui;
pub mod view;
mod workers;

use crate::farm;
use crate::inventory::Server;
use crate::push::audit::AuditLog;
use crate::push::{Interrupt, PushOutcome, StopReason};
use crate::transport::{
    ConnectOptions, HostKeyDecision, HostKeyQuestion, Prompter, SecretQuestion,
};
use app::{App, Ask, Effect, Msg};
use model::Work;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{
    self, DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use ratatui::crossterm::terminal::{
    BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen, LeaveAlternateScreen,
    disable_raw_mode, enable_raw_mode,
};
use ratatui::crossterm::{cursor, execute};
use secrecy::SecretString;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use theme::Theme;

const TICK: Duration = Duration::from_millis(100);

pub struct ConsoleOptions {
    pub title: String,
    pub servers: Vec<Server>,
    /// How the inventory's Cora components are recognised.
    pub components: crate::config::apphost::Components,
    pub theme: Theme,
    pub ascii: bool,
    pub read_only: bool,
    pub mouse: bool,
    pub log_file: Option<PathBuf>,
    pub connect: ConnectOptions,
    pub jobs: usize,
    /// Where pushes are recorded.
    pub audit: PathBuf,
    /// The lists of publicly disclosed keys checked.
    pub disclosed: crate::disclosed::DisclosedKeys,
}

/// Questions from connection workers become dialogs; the worker waits for
/// the operator's answer.
struct ConsolePrompter {
    tx: Mutex<Sender<Msg>>,
    /// Host keys (host, fingerprint) the operator refused.
    refused: Mutex<Vec<(String, String)>>,
}

impl ConsolePrompter {
    fn ask<T>(&self, make: impl FnOnce(Sender<Option<T>>) -> Ask) -> Option<T> {
        let (reply, answer) = channel();
        self.tx.lock().ok()?.send(Msg::Ask(make(reply))).ok()?;
        answer.recv().ok().flatten()
    }
}

impl Prompter for ConsolePrompter {
    fn secret(&self, question: &SecretQuestion) -> Option<SecretString> {
        self.ask(|reply| Ask::Secret {
            question: question.clone(),
            reply,
        })
    }

    fn unknown_host(&self, question: &HostKeyQuestion) -> Option<HostKeyDecision> {
        let key = (question.host.clone(), question.fingerprint.clone());
        let refused = |r: &Mutex<Vec<(String, String)>>| {
            r.lock().map(|list| list.contains(&key)).unwrap_or(false)
        };
        // A key refused once stays refused for the session: a rescan or a
        // push does not ask again.
        if refused(&self.refused) {
            return Some(HostKeyDecision::Refuse);
        }
        let decision = self
            .ask(|reply| Ask::HostKey {
                question: question.clone(),
                reply,
            })
            .unwrap_or(HostKeyDecision::Refuse);
        if decision == HostKeyDecision::Refuse
            && let Ok(mut list) = self.refused.lock()
        {
            list.push(key);
        }
        Some(decision)
    }

    fn asks_host_keys_together(&self) -> bool {
        true
    }
}

/// The jump hosts a server is reached through, as its connection resolves
/// them (the inventory's `jump`, else `ProxyJump`); none where that fails
/// (the connection then says why).
fn jump_chain(
    server: &crate::inventory::Server,
    ssh_config: Option<&std::path::Path>,
) -> Vec<String> {
    let crate::inventory::Target::Ssh { host, settings } = &server.target else {
        return Vec::new();
    };
    crate::transport::ssh::config::resolve(host, settings, ssh_config)
        .map(|r| {
            r.jumps
                .iter()
                .map(|h| format!("{} ({}@{})", h.alias, h.user, h.known_hosts_name()))
                .collect()
        })
        .unwrap_or_default()
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
}

/// Puts the terminal back however the console ends.
struct TerminalGuard;

impl TerminalGuard {
    fn enter(mouse: bool) -> io::Result<TerminalGuard> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        enable_raw_mode()?;
        let mut out = io::stdout();
        execute!(
            out,
            EnterAlternateScreen,
            EnableBracketedPaste,
            cursor::Hide
        )?;
        if mouse {
            execute!(out, EnableMouseCapture)?;
        }
        Ok(TerminalGuard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn spawn_input(tx: Sender<Msg>) {
    std::thread::spawn(move || {
        while let Ok(ev) = event::read() {
            if tx.send(Msg::Input(ev)).is_err() {
                break;
            }
        }
    });
}

fn run_effects(
    effects: Vec<Effect>,
    app: &App,
    opts: &ConsoleOptions,
    connect: &ConnectOptions,
    tx: &Sender<Msg>,
    push_stop: &Interrupt,
) {
    let servers = || app.data.servers.iter().map(|r| r.server.clone()).collect();
    let audit = || AuditLog::new(opts.audit.clone());
    for effect in effects {
        match effect {
            Effect::Scan {
                servers,
                generation,
            } => {
                let list = servers
                    .into_iter()
                    .filter_map(|i| app.data.servers.get(i).map(|r| (i, r.server.clone())))
                    .collect();
                farm::spawn_scan(list, connect.clone(), opts.jobs, tx.clone(), move |event| {
                    Msg::Scan { generation, event }
                });
            }
            Effect::Plan(request) => {
                // One push at a time (the dialogs are modal): a new plan
                // starts with no stop asked.
                push_stop.reset();
                workers::spawn_push(
                    request,
                    app.data.report.clone(),
                    servers(),
                    connect.clone(),
                    audit(),
                    tx.clone(),
                    push_stop.clone(),
                )
            }
            Effect::InterruptPush => push_stop.request(StopReason::Operator),
            Effect::LoadHistory => workers::load_history(audit(), tx.clone()),
            Effect::LoadBackups(site) => workers::load_backups(
                site,
                servers(),
                connect.clone(),
                opts.jobs,
                audit(),
                tx.clone(),
            ),
            Effect::CheckRollback(records) => {
                workers::check_rollback(records, servers(), connect.clone(), tx.clone())
            }
            Effect::Rollback {
                records,
                break_lock,
            } => workers::spawn_rollback(
                records,
                break_lock,
                servers(),
                connect.clone(),
                audit(),
                tx.clone(),
            ),
        }
    }
}

fn write_log(file: &mut Option<File>, app: &App, written: &mut usize) {
    if let Some(f) = file {
        for e in &app.data.log[*written..] {
            // Read later on a terminal: what servers said is made safe.
            let _ = writeln!(
                f,
                "{} {:?} {}",
                humantime::format_rfc3339_seconds(e.at),
                e.level,
                crate::safe_text::escape(&e.text)
            );
        }
    }
    *written = app.data.log.len();
}

/// Draws one frame as a synchronized update (DEC mode 2026): terminals that
/// know it (tmux, kitty, WezTerm, Windows Terminal...) show the frame whole,
/// never half-drawn over a slow link; others ignore the two sequences.
fn draw_frame(terminal: &mut Terminal<CrosstermBackend<io::Stdout>>, app: &App) -> io::Result<()> {
    execute!(terminal.backend_mut(), BeginSynchronizedUpdate)?;
    let drawn = terminal
        .draw(|f| {
            view::draw(f, app);
            scrub(f.buffer_mut());
        })
        .map(|_| ());
    execute!(terminal.backend_mut(), EndSynchronizedUpdate)?;
    drawn
}

/// No cell of a frame holds a character that is unsafe on a terminal
/// (names and values come from servers). ratatui already drops control
/// characters and zero-width ones; this holds whatever a widget does.
fn scrub(buf: &mut ratatui::buffer::Buffer) {
    for cell in buf.content.iter_mut() {
        if cell.symbol().chars().any(crate::safe_text::is_unsafe) {
            let kept: String = cell
                .symbol()
                .chars()
                .filter(|&c| !crate::safe_text::is_unsafe(c))
                .collect();
            cell.set_symbol(if kept.is_empty() { " " } else { &kept });
        }
    }
}

/// How the console ended, beyond the operator quitting.
#[derive(Debug, Default)]
pub struct ConsoleEnd {
    /// A signal (SIGINT, SIGTERM, SIGHUP) closed the console.
    pub signal: Option<StopReason>,
    /// The push that signal interrupted, as it ended.
    pub push: Option<PushOutcome>,
}

/// Runs the console until the operator quits or a signal closes it. A
/// push running then is stopped between steps and rolled back first.
pub fn run(opts: ConsoleOptions) -> io::Result<ConsoleEnd> {
    let mut log_file = match &opts.log_file {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| io::Error::new(e.kind(), format!("--log {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let (tx, rx): (Sender<Msg>, Receiver<Msg>) = channel();
    let mut connect = opts.connect.clone();
    connect.batch = false;
    connect.prompter = Some(Arc::new(ConsolePrompter {
        tx: Mutex::new(tx.clone()),
        refused: Mutex::new(Vec::new()),
    }));

    let symbols = if opts.ascii {
        symbols::ASCII
    } else {
        symbols::UNICODE
    };
    let mut app = App::new(
        opts.title.clone(),
        opts.servers.clone(),
        opts.theme.clone(),
        symbols,
        opts.read_only,
    );
    app.set_disclosed(opts.disclosed.clone());
    app.set_components(opts.components.clone());
    for row in &mut app.data.servers {
        row.jumps = jump_chain(&row.server, connect.ssh_config.as_deref());
    }
    if opts.read_only {
        app.log(
            model::LogLevel::Info,
            "read-only session: no action can change a server",
        );
    }

    // SIGINT, SIGTERM, SIGHUP (the operator's session dropping) and every
    // other signal that ends a process by default close the console in
    // order, never in the middle of a push.
    let signals = Interrupt::new();
    crate::push::interrupt::catch(&signals);
    let push_stop = Interrupt::new();
    let mut end = ConsoleEnd::default();

    let guard = TerminalGuard::enter(opts.mouse)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    app.resize(terminal.size()?);
    spawn_input(tx.clone());
    let effects = app.start();
    run_effects(effects, &app, &opts, &connect, &tx, &push_stop);

    let mut written = 0;
    let mut last_tick = Instant::now();
    // Once the terminal is gone, a running push still ends before the
    // console does; nothing is drawn any more.
    let mut terminal_gone = false;
    let result = loop {
        app.settle();
        if let Some(sig) = signals.reason()
            && end.signal.is_none()
        {
            end.signal = Some(sig);
            app.log(model::LogLevel::Warn, format!("{sig}: closing the console"));
            app.dirty = true;
            if app.pushing() {
                // The signal is the reason given; the dialog shows it is
                // being honoured.
                push_stop.request(sig);
                let effects = app.interrupt_push();
                run_effects(effects, &app, &opts, &connect, &tx, &push_stop);
            }
        }
        // A running rollback is never interrupted: the console waits for it.
        if end.signal.is_some() && !app.working() {
            break Ok(());
        }
        if !terminal_gone
            && std::mem::take(&mut app.dirty)
            && let Err(e) = draw_frame(&mut terminal, &app)
        {
            if !app.working() {
                break Err(e);
            }
            terminal_gone = true;
            push_stop.request(end.signal.unwrap_or(StopReason::Signal(libc::SIGHUP)));
        }
        // Lets the tests check that a panic restores the terminal.
        #[cfg(debug_assertions)]
        if std::env::var_os("FARMKEY_TEST_PANIC").is_some() {
            panic!("FARMKEY_TEST_PANIC is set");
        }
        let wait = TICK.saturating_sub(last_tick.elapsed());
        let first = match rx.recv_timeout(wait) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break Ok(()),
        };
        let mut effects = Vec::new();
        for msg in first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
        {
            if let Msg::Work(Work::PushDone(Ok(outcome))) = &msg
                && (end.signal.is_some() || terminal_gone)
            {
                end.push = Some(outcome.clone());
            }
            effects.extend(app.update(msg));
        }
        if last_tick.elapsed() >= TICK {
            effects.extend(app.update(Msg::Tick));
            last_tick = Instant::now();
        }
        if end.signal.is_some() || terminal_gone {
            // Closing: start nothing new (the rescan after a push, say).
            effects.retain(|e| matches!(e, Effect::InterruptPush));
        }
        run_effects(effects, &app, &opts, &connect, &tx, &push_stop);
        write_log(&mut log_file, &app, &mut written);
        if terminal_gone && !app.working() {
            break Ok(());
        }
        if app.quit {
            break Ok(());
        }
    };
    drop(terminal);
    drop(guard);
    result.map(|()| end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_host_key_is_not_asked_about_again() {
        let (tx, rx) = channel();
        let prompter = ConsolePrompter {
            tx: Mutex::new(tx),
            refused: Mutex::new(Vec::new()),
        };
        let question = |fingerprint: &str| HostKeyQuestion {
            server: "web01".into(),
            host: "[127.0.0.1]:2222".into(),
            key_type: "ssh-ed25519".into(),
            fingerprint: fingerprint.into(),
            known_hosts: "/k".into(),
            other_types: Vec::new(),
        };
        // The operator refuses the first question, and accepts any later one.
        let operator = std::thread::spawn(move || {
            let mut asked = 0;
            while let Ok(Msg::Ask(Ask::HostKey { reply, .. })) = rx.recv() {
                let answer = if asked == 0 {
                    HostKeyDecision::Refuse
                } else {
                    HostKeyDecision::AcceptOnce
                };
                asked += 1;
                let _ = reply.send(Some(answer));
            }
            asked
        });
        let a = question("SHA256:aaa");
        assert_eq!(prompter.unknown_host(&a), Some(HostKeyDecision::Refuse));
        // Refused without a question; another key of the host is asked.
        assert_eq!(prompter.unknown_host(&a), Some(HostKeyDecision::Refuse));
        let b = question("SHA256:bbb");
        assert_eq!(prompter.unknown_host(&b), Some(HostKeyDecision::AcceptOnce));
        assert!(prompter.asks_host_keys_together());
        drop(prompter);
        assert_eq!(operator.join().unwrap(), 2);
    }
}
