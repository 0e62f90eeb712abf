//! Console rendering with ratatui's TestBackend, against snapshot files:
//! 80x24 and 120x40, default and mono themes. Snapshots hold screens (and,
//! in the styled ones, styles): fingerprints only, never a key.

mod support;

use farmkey::console::app::{App, Ask, Msg};
use farmkey::console::dialogs::message::Message;
use farmkey::console::symbols;
use farmkey::console::theme::Theme;
use farmkey::console::{ui, view};
use farmkey::farm::{ScanEvent, scan_all};
use farmkey::inventory::Inventory;
use farmkey::keys::{KeySet, KeyText};
use farmkey::push::apply::Foreign;
use farmkey::push::history::pushes;
use farmkey::transport::{ConnectOptions, HostKeyQuestion, SecretQuestion};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use std::path::PathBuf;
use std::sync::mpsc::channel;
use std::time::Duration;
use support::assert_no_farm_key;

/// The demo farm with fixed, obviously fake keys, so that fingerprints are
/// the same every run.
fn fixed_demo() -> (tempfile::TempDir, Inventory) {
    let dir = tempfile::tempdir().unwrap();
    let inv = farmkey::demo::lay_out_with(dir.path(), |name| {
        let fill = |c: char, n: usize| KeyText::new(c.to_string().repeat(n));
        let c = match name {
            "FLOWTIME" => 'A',
            "FLOWTIME_WEB03" => 'B',
            "ADMIN" => 'C',
            _ => 'D',
        };
        Ok(KeySet {
            validation_key: fill(c, 128),
            decryption_key: fill(c, 64),
            validation: farmkey::keys::Validation::Sha1,
            decryption: farmkey::keys::Decryption::Aes,
        })
    })
    .unwrap();
    let inv = Inventory::load(&inv).unwrap();
    (dir, inv)
}

fn app(theme: &str) -> (tempfile::TempDir, App) {
    let (dir, inv) = fixed_demo();
    let app = console_on("demo farm", &inv, theme, inv.servers.len());
    (dir, app)
}

/// A console on `inv` that has the scans of its first `read` servers.
fn console_on(title: &str, inv: &Inventory, theme: &str, read: usize) -> App {
    let mut app = App::new(
        title.into(),
        inv.servers.clone(),
        Theme::built_in(theme, false).unwrap(),
        symbols::UNICODE,
        false,
    );
    app.start();
    for (index, mut scan) in scan_all(&inv.servers, ConnectOptions::default(), 3)
        .into_iter()
        .enumerate()
        .take(read)
    {
        scan.elapsed = Duration::from_millis(120 + 10 * index as u64);
        app.update(Msg::Scan {
            generation: 1,
            event: ScanEvent::Finished {
                index,
                scan: Box::new(scan),
            },
        });
    }
    // The terminal most tests draw it on, as the runtime says first.
    resize(&mut app, 80, 24);
    app
}

fn key(app: &mut App, code: KeyCode) {
    app.update(Msg::Input(Event::Key(KeyEvent::new(
        code,
        KeyModifiers::NONE,
    ))));
}

/// `u` on the History: the servers' locks are read first (a worker's
/// effect), then the confirmation asks; here no lock is held.
fn ask_rollback(a: &mut App) {
    use farmkey::console::app::Effect;
    use farmkey::console::model::Work;
    let effects = keys(a, "u");
    assert!(
        matches!(&effects[..], [Effect::CheckRollback(_)]),
        "only the locks are read before the confirmation: {effects:?}"
    );
    a.update(Msg::Work(Work::RollbackLocks(Vec::new())));
}

fn render(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, app)).unwrap();
    t
}

/// Text snapshots for reading; styled snapshots to catch theme regressions.
/// The console is told each terminal's size first, as the runtime does.
fn snap(name: &str, app: &mut App) {
    for (w, h) in [(80, 24), (120, 40)] {
        resize(app, w, h);
        let t = render(app, w, h);
        let text = format!("{}", t.backend());
        assert!(!text.contains(&"A".repeat(40)), "a key reached the screen");
        insta::assert_snapshot!(format!("{name}_{w}x{h}_{}", app.ui.theme.name), text);
        if w == 80 {
            insta::assert_debug_snapshot!(
                format!("{name}_{w}x{h}_{}_styled", app.ui.theme.name),
                t.backend().buffer()
            );
        }
    }
}

fn both_themes(name: &str, prepare: impl Fn(&mut App)) {
    for theme in ["default", "mono"] {
        let (_dir, mut a) = app(theme);
        prepare(&mut a);
        snap(name, &mut a);
    }
}

#[test]
fn matrix_with_drift() {
    both_themes("matrix", |_| {});
}

#[test]
fn matrix_cell_selected() {
    both_themes("matrix_cell", |a| {
        key(a, KeyCode::Down);
        key(a, KeyCode::Right);
        key(a, KeyCode::Right);
    });
}

#[test]
fn detail_of_a_site_on_every_server() {
    both_themes("detail_site", |a| key(a, KeyCode::Enter));
}

#[test]
fn detail_of_a_site_on_one_server() {
    both_themes("detail_server", |a| {
        key(a, KeyCode::Right);
        key(a, KeyCode::Right);
        key(a, KeyCode::Right);
        key(a, KeyCode::Enter);
    });
}

#[test]
fn findings_screen() {
    both_themes("findings", |a| key(a, KeyCode::Char('3')));
}

#[test]
fn help_overlay() {
    both_themes("help", |a| key(a, KeyCode::Char('?')));
}

#[test]
fn host_key_dialog() {
    // Two connections ask: one dialog lists both.
    both_themes("dialog_hostkey", |a| {
        for (server, host, fingerprint) in [
            (
                "web04",
                "[10.0.0.14]:22",
                "SHA256:Xk2m6n0QeJrq8u1v4y7B9c3D5f7H9j1L3n5P7r9T1v3",
            ),
            (
                "web05",
                "10.0.0.15",
                "SHA256:Qa1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1",
            ),
        ] {
            let (reply, _rx) = channel();
            std::mem::forget(_rx);
            a.update(Msg::Ask(Ask::HostKey {
                question: HostKeyQuestion {
                    server: server.into(),
                    host: host.into(),
                    key_type: "ssh-ed25519".into(),
                    fingerprint: fingerprint.into(),
                    known_hosts: PathBuf::from("/home/op/.ssh/known_hosts"),
                    other_types: vec![],
                },
                reply,
            }));
        }
    });
}

#[test]
fn password_dialog_masks_input() {
    both_themes("dialog_password", |a| {
        let (reply, _rx) = channel();
        std::mem::forget(_rx);
        a.update(Msg::Ask(Ask::Secret {
            question: SecretQuestion::Password {
                server: "web01".into(),
                user: "svc-ops".into(),
                host: "10.0.0.11".into(),
            },
            reply,
        }));
        for c in "hunter2".chars() {
            key(a, KeyCode::Char(c));
        }
    });
    let (_dir, mut a) = app("default");
    let (reply, _rx) = channel();
    a.update(Msg::Ask(Ask::Secret {
        question: SecretQuestion::Passphrase {
            server: "web01".into(),
            key: "/k".into(),
        },
        reply,
    }));
    for c in "hunter2".chars() {
        key(&mut a, KeyCode::Char(c));
    }
    assert!(!format!("{}", render(&a, 80, 24).backend()).contains("hunter2"));
}

#[test]
fn error_and_reveal_confirmation_dialogs() {
    both_themes("dialog_message", |a| {
        a.open(Box::new(Message::new(
            "web02: host key changed, refused",
            "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for [10.0.0.12]:22: it now presents ssh-ed25519 key SHA256:abc. farmkey refuses to connect.",
            true,
        )));
    });
    both_themes("dialog_reveal", |a| {
        key(a, KeyCode::Right);
        key(a, KeyCode::Char('v'));
    });
}

#[test]
fn push_key_choice_dialog() {
    both_themes("dialog_push_choice", |a| {
        key(a, KeyCode::Char('p'));
    });
}

/// Each choice of keys says who keeps their sign-ins, from the plan it
/// makes: adopting set A keeps web01's and web02's (they hold it, with
/// the same algorithms) and signs web03's out; new keys sign everyone out.
#[test]
fn each_push_choice_says_who_is_signed_out() {
    for (w, h) in [(80, 24), (60, 16)] {
        let (_dir, mut a) = app("default");
        resize(&mut a, w, h);
        key(&mut a, KeyCode::Char('p'));
        let text = format!("{}", render(&a, w, h).backend());
        let lines: Vec<&str> = text.lines().collect();
        let after = |choice: &str| {
            let i = lines
                .iter()
                .position(|l| l.contains(choice))
                .unwrap_or_else(|| panic!("{choice} at {w}x{h}:\n{text}"));
            lines.get(i + 1).copied().unwrap_or("")
        };
        assert!(
            after("Adopt key set A from web01")
                .contains("sign-ins kept: web01, web02; signed out: web03"),
            "{w}x{h}:\n{text}"
        );
        assert!(
            after("Generate new keys: SHA1 + AES").contains("everyone is signed out"),
            "{w}x{h}:\n{text}"
        );
        assert!(!text.contains("signed-in users)"), "{w}x{h}:\n{text}");
    }
}

/// A tick redraws only while something moves (a scan's spinner); idle,
/// only a message, a key or a resize does.
#[test]
fn a_tick_redraws_only_while_something_runs() {
    let (_dir, mut a) = app("default");
    a.dirty = false;
    a.update(Msg::Tick);
    assert!(!a.dirty, "an idle tick asked for a frame");
    key(&mut a, KeyCode::Char('2'));
    assert!(a.dirty, "a key draws");
    let (_dir, inv) = fixed_demo();
    // web03 still being read: its spinner turns.
    let mut scanning = console_on("demo farm", &inv, "default", 2);
    scanning.dirty = false;
    scanning.update(Msg::Tick);
    assert!(scanning.dirty, "a tick while scanning draws the spinner");
}

#[test]
fn read_only_banner() {
    let (_dir, inv) = fixed_demo();
    let a = App::new(
        "demo farm".into(),
        inv.servers,
        Theme::built_in("default", false).unwrap(),
        symbols::ASCII,
        true,
    );
    let text = format!("{}", render(&a, 80, 24).backend());
    assert!(text.contains("READ-ONLY"), "{text}");
    insta::assert_snapshot!("read_only_scanning_ascii", text);
}

#[test]
fn too_small() {
    for theme in ["default", "mono"] {
        let (_dir, a) = app(theme);
        let t = render(&a, 50, 12);
        let text = format!("{}", t.backend());
        assert!(text.contains("Terminal too small"), "{text}");
        insta::assert_snapshot!(format!("too_small_{theme}"), text);
    }
}

/// The fixture farm whose sites use Microsoft's published sample keys,
/// every IIS application shown.
fn disclosed_app(theme: &str, symbols: symbols::Symbols) -> App {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/farms/disclosed/farmkey.toml");
    scanned_app("disclosed farm", &path, theme, symbols)
}

/// The console on the farm of `inventory`, every server scanned, every IIS
/// application shown.
fn scanned_app(
    title: &str,
    inventory: &std::path::Path,
    theme: &str,
    symbols: symbols::Symbols,
) -> App {
    let inv = Inventory::load(inventory).unwrap();
    let mut app = App::new(
        title.into(),
        inv.servers.clone(),
        Theme::built_in(theme, false).unwrap(),
        symbols,
        false,
    );
    app.start();
    for (index, mut scan) in scan_all(&inv.servers, ConnectOptions::default(), 2)
        .into_iter()
        .enumerate()
    {
        scan.elapsed = Duration::from_millis(100);
        app.update(Msg::Scan {
            generation: 1,
            event: ScanEvent::Finished {
                index,
                scan: Box::new(scan),
            },
        });
    }
    key(&mut app, KeyCode::Char('a'));
    app
}

#[test]
fn a_disclosed_key_has_its_own_mark_and_comes_first() {
    for theme in ["default", "mono"] {
        let mut a = disclosed_app(theme, symbols::UNICODE);
        assert_no_farm_key("disclosed", &format!("{}", render(&a, 120, 40).backend()));
        snap("disclosed_matrix", &mut a);
    }
    let mut a = disclosed_app("default", symbols::ASCII);
    let text = format!("{}", render(&a, 80, 24).backend());
    assert!(text.contains("P Default Web Site"), "{text}");
    insta::assert_snapshot!("disclosed_matrix_80x24_ascii", text);
    // Findings: the disclosed keys first.
    key(&mut a, KeyCode::Char('3'));
    let text = format!("{}", render(&a, 120, 40).backend());
    assert_no_farm_key("disclosed", &text);
    insta::assert_snapshot!("disclosed_findings_120x40_ascii", text);
}

#[test]
fn the_push_choice_for_a_disclosed_key_offers_generation_first() {
    both_themes_of("disclosed_push_choice", |theme| {
        let mut a = disclosed_app(theme, symbols::UNICODE);
        key(&mut a, KeyCode::Char('p'));
        a
    });
}

fn both_themes_of(name: &str, make: impl Fn(&str) -> App) {
    for theme in ["default", "mono"] {
        let mut a = make(theme);
        assert_no_farm_key("disclosed", &format!("{}", render(&a, 120, 40).backend()));
        snap(name, &mut a);
    }
}

/// Types keys as an operator would.
fn keys(app: &mut App, text: &str) -> Vec<farmkey::console::app::Effect> {
    let mut effects = Vec::new();
    for c in text.chars() {
        let code = match c {
            '\n' => KeyCode::Enter,
            '\u{1b}' => KeyCode::Esc,
            '↓' => KeyCode::Down,
            '↑' => KeyCode::Up,
            '→' => KeyCode::Right,
            c => KeyCode::Char(c),
        };
        effects.extend(app.update(Msg::Input(Event::Key(KeyEvent::new(
            code,
            KeyModifiers::NONE,
        )))));
    }
    effects
}

/// The Servers screen filtered to web03: the cursor cannot leave the rows
/// shown, so Down keeps web03, its panel shows web03, and `R` rescans
/// web03 (it used to select the hidden web02, show it, and rescan it).
#[test]
fn the_servers_screen_filtered_keeps_the_cursor_on_a_row_shown() {
    use farmkey::console::app::Effect;
    let (_dir, mut a) = app("default");
    // Addresses as an inventory of SSH servers has them (the demo's are
    // temporary folders).
    for (i, row) in a.data.servers.iter_mut().enumerate() {
        row.server.target = farmkey::inventory::Target::Ssh {
            host: format!("10.0.0.{}", 11 + i),
            settings: Default::default(),
        };
    }
    keys(&mut a, "2/web03\n↓↓");
    assert_eq!(a.screens.servers.selected(), Some(2));
    let text = format!("{}", render(&a, 80, 24).backend());
    let shown: Vec<&str> = text.lines().filter(|l| l.contains("web0")).collect();
    assert!(
        shown
            .iter()
            .all(|l| !l.contains("web01") && !l.contains("web02")),
        "{text}"
    );
    assert!(text.contains("web03 via 10.0.0.13"), "{text}");
    insta::assert_snapshot!("servers_filtered_80x24_default", text);
    let effects = keys(&mut a, "R");
    assert!(
        matches!(&effects[..], [Effect::Scan { servers, .. }] if servers == &[2]),
        "{effects:?}"
    );
    // Up stays on the only row too.
    keys(&mut a, "↑");
    assert_eq!(a.screens.servers.selected(), Some(2));
}

/// An audit log with three pushes: one rolled back on one server and
/// refused on another, one cut short after its intent, one applied.
/// A rollback's result for the Flowtime web.config of `server` (the file
/// `audit_records` names).
fn rolled(
    server: &str,
    result: Result<farmkey::push::apply::RolledBack, farmkey::push::apply::RollbackError>,
) -> farmkey::push::apply::RollbackResult {
    farmkey::push::apply::RollbackResult {
        server: server.into(),
        file: "C:\\inetpub\\Cora\\Flowtime\\web.config".into(),
        result,
    }
}

fn audit_records() -> Vec<farmkey::push::audit::AuditRecord> {
    use farmkey::push::audit::{AuditAction, AuditRecord, Fingerprints, Outcome};
    let fp = |v: &str, d: &str, set: &str| Fingerprints {
        validation_key: Some(v.into()),
        decryption_key: Some(d.into()),
        key_set: Some(set.into()),
        ..Fingerprints::default()
    };
    let rec = |time: &str,
               id: &str,
               site: &str,
               server: &str,
               action: AuditAction,
               outcome: Outcome,
               message: &str| AuditRecord {
        time: time.into(),
        push_id: id.into(),
        action,
        user: "alice".into(),
        server: server.into(),
        site: site.into(),
        file: format!("C:\\inetpub\\Cora\\{site}\\web.config"),
        sha256_before: Some("1f2e3d4c5b6a79881f2e3d4c".into()),
        sha256_after: Some("9a8b7c6d5e4f30219a8b7c6d".into()),
        fingerprints_before: if server == "web03" {
            fp("ec2715e0", "5e1298ac", "6ff92548")
        } else {
            fp("cf5c41db", "ca62f488", "507f8fce")
        },
        fingerprints_after: fp("0b1c2d3e", "4f5a6b7c", "1a2b3c4d"),
        backup: Some(format!(
            "C:\\inetpub\\Cora\\{site}\\web.20261126T112045Z.farmkey.config"
        )),
        lock: None,
        temporary: Vec::new(),
        outcome,
        message: message.into(),
        plan: None,
    };
    use AuditAction::*;
    use Outcome::*;
    let p1 = "20261126T112045Z-ab12";
    let p2 = "20261127T090000Z-cd34";
    let p3 = "20261128T141500Z-ef56";
    vec![
        rec(
            "2026-11-26T11:20:45Z",
            p1,
            "Flowtime",
            "web01",
            Push,
            Intent,
            "",
        ),
        rec(
            "2026-11-26T11:20:46Z",
            p1,
            "Flowtime",
            "web01",
            Push,
            Applied,
            "",
        ),
        rec(
            "2026-11-26T11:20:48Z",
            p1,
            "Flowtime",
            "web03",
            Push,
            Intent,
            "",
        ),
        rec(
            "2026-11-26T11:20:49Z",
            p1,
            "Flowtime",
            "web03",
            Push,
            Applied,
            "",
        ),
        rec(
            "2026-11-26T12:00:00Z",
            p1,
            "Flowtime",
            "web01",
            Rollback,
            RolledBack,
            "",
        ),
        rec(
            "2026-11-26T12:00:01Z",
            p1,
            "Flowtime",
            "web03",
            Rollback,
            Refused,
            "C:\\inetpub\\Cora\\Flowtime\\web.config changed since push 20261126T112045Z-ab12 (it holds bytes this push did not write (sha256 77aa…): someone else changed it); refusing to overwrite it",
        ),
        rec(
            "2026-11-27T09:00:00Z",
            p2,
            "Process TOGO",
            "web03",
            Push,
            Intent,
            "",
        ),
        rec(
            "2026-11-28T14:15:00Z",
            p3,
            "Flowtime",
            "web03",
            Push,
            Intent,
            "",
        ),
        rec(
            "2026-11-28T14:15:01Z",
            p3,
            "Flowtime",
            "web03",
            Push,
            Applied,
            "",
        ),
    ]
}

fn with_history(a: &mut App) {
    keys(a, "5");
    a.update(Msg::History {
        path: PathBuf::from("/home/op/.local/state/farmkey/audit.jsonl"),
        result: Ok(pushes(&audit_records(), None)),
    });
}

/// A push that wrote two files of a server (its web.config and a
/// `configSource` key file) is shown and rolled back file by file: each
/// file its own line, its own result.
#[test]
fn a_push_of_two_files_on_a_server_is_rolled_back_file_by_file() {
    use farmkey::console::app::Effect;
    use farmkey::console::model::Work;
    use farmkey::push::apply::{RollbackError, RolledBack};
    const KEYS: &str = "C:\\inetpub\\Cora\\Flowtime\\App_Config\\keys.config";
    let (_dir, mut a) = app("default");
    let mut records = audit_records();
    let newest: Vec<_> = records
        .iter()
        .filter(|r| r.push_id == "20261128T141500Z-ef56")
        .cloned()
        .collect();
    for mut r in newest {
        r.file = KEYS.into();
        records.push(r);
    }
    keys(&mut a, "5");
    a.update(Msg::History {
        path: PathBuf::from("/home/op/.local/state/farmkey/audit.jsonl"),
        result: Ok(pushes(&records, None)),
    });
    let text = format!("{}", render(&a, 120, 40).backend());
    assert!(
        text.contains("u rolls back web03 web.config, web03 keys.config"),
        "{text}"
    );
    ask_rollback(&mut a);
    let effects = keys(&mut a, "→\n");
    assert!(
        matches!(&effects[..], [Effect::Rollback { records, .. }] if records.len() == 2),
        "{effects:?}"
    );
    let keys_result = farmkey::push::apply::RollbackResult {
        file: KEYS.into(),
        ..rolled(
            "web03",
            Err(RollbackError::Changed {
                file: farmkey::paths::RemotePath::parse(KEYS).unwrap(),
                push_id: "20261128T141500Z-ef56".into(),
                why: Foreign::Changed {
                    sha256: "77aa".into(),
                },
            }),
        )
    };
    a.update(Msg::Work(Work::RollbackDone(Ok(vec![
        rolled(
            "web03",
            Ok(RolledBack {
                left: Vec::new(),
                broke: None,
                unrecorded: None,
                already: false,
            }),
        ),
        keys_result,
    ]))));
    let text = format!("{}", render(&a, 120, 40).backend());
    assert!(
        text.contains("web03 web.config restored and verified")
            && text.contains("web03 keys.config refused:")
            && text.contains("NOT fully rolled back: 1 server(s) refused"),
        "{text}"
    );
}

#[test]
fn history_screen_lists_pushes_newest_first() {
    both_themes("history", with_history);
    let (_dir, mut a) = app("default");
    with_history(&mut a);
    let text = format!("{}", render(&a, 120, 40).backend());
    let at = |id: &str| text.find(id).unwrap_or(usize::MAX);
    assert!(
        at("2026-11-28 14:15") < at("2026-11-27 09:00")
            && at("2026-11-27 09:00") < at("2026-11-26 11:20"),
        "newest first: {text}"
    );
    assert!(text.contains("1 cut short"), "{text}");
    // The filter narrows the list like every other screen's.
    keys(&mut a, "/TOGO\n");
    let text = format!("{}", render(&a, 120, 40).backend());
    assert!(
        text.contains("Process TOGO") && !text.contains("2026-11-28"),
        "{text}"
    );
}

#[test]
fn history_shows_one_push_server_by_server() {
    both_themes("history_push", |a| {
        with_history(a);
        keys(a, "↓↓\n");
    });
}

#[test]
fn history_rollback_asks_first_with_cancel_the_default() {
    both_themes("history_rollback_confirm", |a| {
        with_history(a);
        // The newest push: web03 applied.
        ask_rollback(a);
    });
    let (_dir, mut a) = app("default");
    with_history(&mut a);
    ask_rollback(&mut a);
    assert!(format!("{}", render(&a, 80, 24).backend()).contains("Roll back push"));
    // Enter on the default button cancels: no effect, the dialog closes.
    let effects = keys(&mut a, "\n");
    assert!(effects.is_empty(), "{effects:?}");
    assert!(a.dialogs.is_empty());
    // Right, Enter: the rollback runs on a worker.
    ask_rollback(&mut a);
    keys(&mut a, "→");
    let effects = keys(&mut a, "\n");
    assert!(
        matches!(&effects[..], [farmkey::console::app::Effect::Rollback { records, break_lock: false }]
            if records.len() == 1 && records[0].server == "web03"),
        "{effects:?}"
    );
    // The oldest push: web01 was rolled back already, web03 refused: only
    // web03 remains to roll back.
    let (_dir, mut a) = app("default");
    with_history(&mut a);
    keys(&mut a, "G");
    ask_rollback(&mut a);
    keys(&mut a, "→");
    let text = format!("{}", render(&a, 120, 40).backend());
    assert!(
        text.contains("Roll back push 20261126T112045Z-ab12?")
            && text.contains("web03: C:\\inetpub")
            && !text.contains("web01: C:\\inetpub"),
        "{text}"
    );
}

/// A server refused by a lock, its refusal not recorded either: the
/// console names the lock and offers its button, never the command line's
/// `--break-lock`.
#[test]
fn a_rollback_refused_by_a_lock_offers_the_console_s_way_to_break_it() {
    use farmkey::console::model::Work;
    use farmkey::push::apply::RollbackError;
    use farmkey::push::lock::{Holder, LockInfo};
    let mut info = LockInfo::mine("20261128T141500Z-cd34", "Flowtime");
    info.host = "another-jump-host".into();
    let locked = RollbackError::Locked(Box::new(Holder {
        server: "web03".into(),
        path: farmkey::paths::RemotePath::parse(
            "C:\\inetpub\\Cora\\Flowtime\\web.farmkey-lock.config",
        )
        .unwrap(),
        info: Some(info),
        modified: None,
    }));
    let unrecorded = RollbackError::Unrecorded {
        why: Box::new(locked.clone()),
        audit: farmkey::push::audit::NotAppended {
            log: "/home/op/audit.jsonl".into(),
            kind: std::io::ErrorKind::StorageFull,
            cause: "No space left on device".into(),
        },
    };
    for why in [locked, unrecorded] {
        let (_dir, mut a) = app("default");
        with_history(&mut a);
        ask_rollback(&mut a);
        keys(&mut a, "→\n");
        a.update(Msg::Work(Work::RollbackDone(Ok(vec![rolled(
            "web03",
            Err(why),
        )]))));
        let text = format!("{}", render(&a, 120, 40).backend());
        assert!(
            text.contains("web03 is locked by push 20261128T141500Z-cd34")
                && text.contains("Break the lock and roll back again")
                && !text.contains("--break-lock"),
            "{text}"
        );
    }
}

#[test]
fn read_only_refuses_a_rollback_where_actions_are_dispatched() {
    let (dir, inv) = fixed_demo();
    let mut a = App::new(
        "demo farm".into(),
        inv.servers,
        Theme::built_in("default", false).unwrap(),
        symbols::UNICODE,
        true,
    );
    with_history(&mut a);
    let effects = keys(&mut a, "u");
    assert!(effects.is_empty());
    let text = format!("{}", render(&a, 80, 24).backend());
    assert!(
        text.contains("Read-only") && !text.contains("Roll back push"),
        "{text}"
    );
    drop(dir);
}

/// A worker's question waits behind what the operator is choosing, and
/// comes on top once that waits for a worker itself (which may need the
/// answer: workers take turns with questions).
#[test]
fn a_question_waits_behind_a_choice_and_comes_on_top_of_a_wait() {
    let (_dir, mut a) = app("default");
    keys(&mut a, "p");
    let (reply, _answer) = channel();
    a.update(Msg::Ask(Ask::HostKey {
        question: HostKeyQuestion {
            server: "web04".into(),
            host: "[10.0.0.14]:22".into(),
            key_type: "ssh-ed25519".into(),
            fingerprint: "SHA256:Xk2m6n0QeJrq8u1v4y7B9c3D5f7H9j1L3n5P7r9T1v3".into(),
            known_hosts: PathBuf::from("/home/op/.ssh/known_hosts"),
            other_types: vec![],
        },
        reply,
    }));
    let text = format!("{}", render(&a, 80, 24).backend());
    assert!(
        text.contains("Push to Flowtime") && !text.contains("Unknown host key"),
        "{text}"
    );
    // Enter: plan (the worker would now read the servers).
    let effects = keys(&mut a, "\n");
    assert!(
        matches!(&effects[..], [farmkey::console::app::Effect::Plan(_)]),
        "{effects:?}"
    );
    let text = format!("{}", render(&a, 80, 24).backend());
    assert!(text.contains("Unknown host key"), "{text}");
}

/// The rows inside the page's panel (below the header and tabs, above the
/// footer), as drawn on a `w` x `h` terminal; trailing spaces dropped.
fn panel_rows(a: &App, w: u16, h: u16) -> Vec<String> {
    let buf = render(a, w, h).backend().buffer().clone();
    (3..h - 2)
        .map(|y| {
            let row: String = (1..w - 1).map(|x| buf[(x, y)].symbol()).collect();
            row.trim_end().to_string()
        })
        .collect()
}

fn resize(a: &mut App, w: u16, h: u16) {
    a.update(Msg::Input(Event::Resize(w, h)));
}

/// Every line of a page `w` wide: drawn on a terminal tall enough for all
/// of them (a fresh console opened the same way, never scrolled).
fn whole_page(open: &dyn Fn(&mut App), w: u16) -> Vec<String> {
    let (_dir, mut a) = app("default");
    open(&mut a);
    resize(&mut a, w, 500);
    let mut rows = panel_rows(&a, w, 500);
    while rows.last().is_some_and(|r| r.is_empty()) {
        rows.pop();
    }
    rows
}

/// What a panel of `rows` rows shows of a page scrolled to its end: its
/// last `rows` lines, or all of them from the top when they fit.
fn at_end(whole: &[String], rows: usize) -> Vec<String> {
    let mut shown = whole[whole.len().saturating_sub(rows)..].to_vec();
    shown.resize(rows, String::new());
    shown
}

/// A page scrolls exactly to its end at 80x24: End (`G`) and Down repeated
/// both stop where its last wrapped line is on the panel's last row, Down
/// past it moves nothing, and a larger or wider terminal takes the scroll
/// back within the page.
fn assert_scrolls_to_its_end(open: &dyn Fn(&mut App)) {
    let whole = whole_page(open, 80);
    // The panel's rows: the terminal's less header, tabs, footer, borders.
    let inner = |h: u16| usize::from(h) - 5;
    assert!(
        whole.len() > inner(24),
        "the page must be longer than the panel"
    );
    let (_dir, mut a) = app("default");
    open(&mut a);
    resize(&mut a, 80, 24);
    assert_eq!(
        panel_rows(&a, 80, 24),
        whole[..inner(24)],
        "it opens at its top"
    );
    keys(&mut a, "G");
    assert_eq!(panel_rows(&a, 80, 24), at_end(&whole, inner(24)), "End");
    keys(&mut a, "jjj");
    assert_eq!(
        panel_rows(&a, 80, 24),
        at_end(&whole, inner(24)),
        "Down past the end"
    );
    keys(&mut a, "g");
    assert_eq!(panel_rows(&a, 80, 24), whole[..inner(24)], "Home");
    for _ in 0..whole.len() {
        keys(&mut a, "j");
    }
    assert_eq!(
        panel_rows(&a, 80, 24),
        at_end(&whole, inner(24)),
        "Down repeated"
    );
    // Taller: still at its end, with no blank row below it.
    resize(&mut a, 80, 30);
    assert_eq!(panel_rows(&a, 80, 30), at_end(&whole, inner(30)), "taller");
    // Wider: fewer lines wrap, and the end moves up with them.
    resize(&mut a, 120, 30);
    let wide = whole_page(open, 120);
    assert_eq!(panel_rows(&a, 120, 30), at_end(&wide, inner(30)), "wider");
    // Tall enough for all of it: back at its top.
    resize(&mut a, 80, 200);
    assert_eq!(panel_rows(&a, 80, 200), at_end(&whole, inner(200)), "tall");
}

#[test]
fn the_detail_scrolls_exactly_to_its_last_wrapped_line() {
    // Flowtime on every server: findings long enough to wrap at 80.
    assert_scrolls_to_its_end(&|a| {
        keys(a, "\n");
    });
}

#[test]
fn a_push_server_by_server_scrolls_exactly_to_its_last_wrapped_line() {
    // The oldest push: two servers and a long refusal, wrapped at 80.
    assert_scrolls_to_its_end(&|a| {
        with_history(a);
        keys(a, "G\n");
    });
}

/// A lock beside web03's Flowtime web.config that farmkey cannot read (no
/// holder, no age: the same text every run); the console may break it.
fn unreadable_lock() -> farmkey::push::lock::Holder {
    farmkey::push::lock::Holder {
        server: "web03".into(),
        path: farmkey::paths::RemotePath::parse(
            "C:\\inetpub\\Cora\\Flowtime\\web.farmkey-lock.config",
        )
        .unwrap(),
        info: None,
        modified: None,
    }
}

/// The dialog titled `title`, its rows inside the frame and margins
/// (trailing spaces dropped), as drawn on a `w` x `h` terminal.
fn dialog_rows(a: &App, w: u16, h: u16, title: &str) -> Vec<String> {
    let t = render(a, w, h);
    let buf = t.backend().buffer();
    let cell = |x: u16, y: u16| buf[(x, y)].symbol().to_string();
    let titled = |x: u16, y: u16| {
        cell(x, y) == "┌"
            && format!(" {title} ")
                .chars()
                .enumerate()
                .all(|(i, c)| x + 1 + (i as u16) < w && cell(x + 1 + i as u16, y) == c.to_string())
    };
    let (left, top) = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .find(|&(x, y)| titled(x, y))
        .unwrap_or_else(|| panic!("no dialog {title:?} at {w}x{h}:\n{}", t.backend()));
    let right = (left + 1..w).find(|&x| cell(x, top) == "┐").unwrap();
    let bottom = (top + 1..h).find(|&y| cell(left, y) == "└").unwrap();
    (top + 1..bottom)
        .map(|y| {
            let row: String = (left + 2..right - 1).map(|x| cell(x, y)).collect();
            row.trim_end().to_string()
        })
        .collect()
}

/// A dialog with buttons shows all of its body, however it wraps: its
/// last row holds the buttons, the one above is blank, and the body above
/// that ends with `last`.
fn assert_whole_dialog(a: &App, w: u16, h: u16, title: &str, last: &str) -> Vec<String> {
    let rows = dialog_rows(a, w, h, title);
    let n = rows.len();
    assert!(
        n >= 3
            && rows[n - 1].starts_with("[ ")
            && rows[n - 2].is_empty()
            && rows[..n - 2].join(" ").ends_with(last),
        "{w}x{h}: the body must end with {last:?}, then a blank row and the buttons: {rows:#?}"
    );
    rows
}

/// Dialogs are as tall as their body wrapped word by word: at every width
/// its last line is shown (they were sized by each line's width divided
/// by the dialog's, which word wrapping exceeds, and lost their last
/// line, e.g. a lock's "the lock is stale.").
#[test]
fn a_dialog_shows_its_last_wrapped_line_at_any_width() {
    use farmkey::console::model::Work;
    use farmkey::push::apply::RollbackError;
    use farmkey::push::lock::{Holder, LockInfo};
    // Words of every length, wrapped in a different place at each width.
    let text = "farmkey refused to write web02 because C:\\inetpub\\Cora\\Flowtime\\web.farmkey-lock.config is held by push 20261126T112045Z-ab12 of svc-deploy on jump-host-with-a-long-name (pid 4242) since 2026-11-26T11:20:45Z; that process is no longer running: the lock is stale.";
    let (_dir, mut a) = app("default");
    a.open(Box::new(Message::new("Refused", text, true)));
    for w in ui::MIN_WIDTH..=120 {
        let rows = assert_whole_dialog(&a, w, 40, "Refused", "the lock is stale.");
        let body = rows[..rows.len() - 2].join(" ");
        assert_eq!(
            body.split_whitespace().collect::<Vec<_>>(),
            text.split_whitespace().collect::<Vec<_>>(),
            "{w}x40"
        );
    }
    // The break-lock warning, its lock stale on this machine (a pid no
    // process has): the audit saw its last line lost at 100x40.
    let mut info = LockInfo::mine("20261127T151748Z-42b1", "Flowtime");
    info.pid = u32::MAX;
    let locked = RollbackError::Locked(Box::new(Holder {
        info: Some(info),
        ..unreadable_lock()
    }));
    let (_dir, mut a) = app("default");
    with_history(&mut a);
    ask_rollback(&mut a);
    keys(&mut a, "→\n");
    a.update(Msg::Work(Work::RollbackDone(Ok(vec![rolled(
        "web03",
        Err(locked),
    )]))));
    for w in ui::MIN_WIDTH..=120 {
        assert_whole_dialog(
            &a,
            w,
            40,
            "Push 20261128T141500Z-ef56 NOT fully rolled back",
            "the lock is stale.",
        );
    }
}

/// Push 20261126T112045Z-ab12 as if it had reached web01, web02 and web03,
/// every server applied, and nothing rolled back: the History screen
/// shows it alone.
fn one_push_on_three_servers(a: &mut App) {
    use farmkey::push::audit::AuditAction;
    let web01: Vec<_> = audit_records()
        .into_iter()
        .filter(|r| {
            r.push_id == "20261126T112045Z-ab12"
                && r.action == AuditAction::Push
                && r.server == "web01"
        })
        .collect();
    let records: Vec<_> = ["web01", "web02", "web03"]
        .into_iter()
        .flat_map(|server| {
            web01.iter().cloned().map(move |mut r| {
                r.server = server.into();
                r
            })
        })
        .collect();
    keys(a, "5");
    a.update(Msg::History {
        path: PathBuf::from("/home/op/.local/state/farmkey/audit.jsonl"),
        result: Ok(pushes(&records, None)),
    });
}

/// Rolls back the push of [`one_push_on_three_servers`]: web01 restored,
/// web02 refused (its file changed since the push), web03 refused by a
/// lock, which the operator then breaks; web03 is restored.
fn roll_back_and_break_the_lock(a: &mut App) {
    use farmkey::console::app::Effect;
    use farmkey::console::model::Work;
    use farmkey::push::apply::{RollbackError, RolledBack};
    one_push_on_three_servers(a);
    ask_rollback(a);
    let effects = keys(a, "→\n");
    assert!(
        matches!(&effects[..], [Effect::Rollback { records, break_lock: false }] if records.len() == 3),
        "{effects:?}"
    );
    let restored = || RolledBack {
        left: Vec::new(),
        broke: None,
        unrecorded: None,
        already: false,
    };
    a.update(Msg::Work(Work::RollbackDone(Ok(vec![
        rolled("web01", Ok(restored())),
        rolled(
            "web02",
            Err(RollbackError::Changed {
                file: farmkey::paths::RemotePath::parse("C:\\inetpub\\Cora\\Flowtime\\web.config")
                    .unwrap(),
                push_id: "20261126T112045Z-ab12".into(),
                why: Foreign::Changed {
                    sha256: "77aa".into(),
                },
            }),
        ),
        rolled(
            "web03",
            Err(RollbackError::Locked(Box::new(unreadable_lock()))),
        ),
    ]))));
    let text = format!("{}", render(a, 120, 40).backend());
    assert!(
        text.contains("NOT fully rolled back: 2 server(s) refused")
            && text.contains("[ Break the lock and roll back again ]"),
        "{text}"
    );
    // Only the locked server is tried again.
    let effects = keys(a, "→\n");
    assert!(
        matches!(&effects[..], [Effect::Rollback { records, break_lock: true }]
            if records.len() == 1 && records[0].server == "web03"),
        "{effects:?}"
    );
    // While it runs, the others' results stay in view.
    let text = format!("{}", render(a, 120, 40).backend());
    assert!(
        text.contains("web01        restored and verified")
            && text.contains("web02        refused:")
            && text.contains("web03        ")
            && text.contains(" restoring"),
        "{text}"
    );
    a.update(Msg::Work(Work::RollbackDone(Ok(vec![rolled(
        "web03",
        Ok(RolledBack {
            left: Vec::new(),
            broke: Some(Box::new(unreadable_lock())),
            unrecorded: None,
            already: false,
        }),
    )]))));
}

/// Breaking a lock and rolling back again judges the push on every server:
/// web02, refused before because its file changed since the push, is still
/// refused, and the dialog says the push is NOT fully rolled back (it used
/// to keep the retried server's result alone and claim a full rollback).
#[test]
fn breaking_a_lock_and_rolling_back_again_keeps_the_other_servers_refusals() {
    both_themes("history_rollback_lock_broken", roll_back_and_break_the_lock);
    let (_dir, mut a) = app("default");
    roll_back_and_break_the_lock(&mut a);
    let text = format!("{}", render(&a, 120, 40).backend());
    assert!(
        text.contains("Push 20261126T112045Z-ab12 NOT fully rolled back ")
            && text.contains("NOT fully rolled back: 1 server(s) refused.")
            && text.contains("web01        restored and verified")
            && text
                .contains("web02        refused: C:\\inetpub\\Cora\\Flowtime\\web.config changed")
            && text.contains("web03        restored and verified (broke the stale lock")
            && !text.contains("every server it changed holds its original bytes again")
            && !text.contains("Break the lock and roll back again"),
        "{text}"
    );
}

/// While the terminal is too small only its size is drawn, so no key acts
/// unseen: `p Enter → Enter` pushed at 60x15. Only q (and Ctrl-C) does.
#[test]
fn keys_do_nothing_behind_the_too_small_screen() {
    use farmkey::console::app::Effect;
    use farmkey::console::screens::ScreenId;
    let (_dir, mut a) = app("default");
    resize(&mut a, 60, 15);
    assert!(format!("{}", render(&a, 60, 15).backend()).contains("Terminal too small"));
    let effects = keys(&mut a, "p\n→\n");
    assert!(effects.is_empty(), "{effects:?}");
    assert!(a.dialogs.is_empty(), "a dialog opened behind the screen");
    let effects = keys(&mut a, "r3/zzz\n");
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(a.screen, ScreenId::Matrix);
    assert!(a.data.filter.is_empty() && !a.data.filter.editing);
    a.update(Msg::Input(Event::Paste("zzz".into())));
    assert!(a.data.filter.is_empty());
    // Large enough again: the same key acts.
    resize(&mut a, 60, 16);
    let effects = keys(&mut a, "p\n");
    assert!(matches!(&effects[..], [Effect::Plan(_)]), "{effects:?}");
    // q quits from the too-small screen, even with a dialog open (its
    // worker is answered: nothing is pushed).
    resize(&mut a, 59, 16);
    keys(&mut a, "q");
    assert!(a.quit);
}

/// A push the console asked for (the `Effect::Plan` among `effects`),
/// planned as its worker plans it, with the id and file names fixed so
/// that it reads the same every run; its confirmation is open. The plan
/// and its sessions, to push it, and where the confirmation answers.
fn planned(
    a: &mut App,
    effects: &[farmkey::console::app::Effect],
) -> (
    farmkey::push::Plan,
    farmkey::push::Sessions,
    std::sync::mpsc::Receiver<bool>,
) {
    use farmkey::console::app::Effect;
    use farmkey::console::model::Work;
    use farmkey::paths::RemotePath;
    use farmkey::push::{Sessions, build_plan};
    let [Effect::Plan(request)] = effects else {
        panic!("no plan asked: {effects:?}");
    };
    let servers = a.data.servers.iter().map(|r| r.server.clone()).collect();
    let mut sessions = Sessions::new(servers, ConnectOptions::default());
    let mut plan = build_plan(request, &a.data.report, &mut sessions).unwrap();
    const STAMP: &str = "20261126T112045Z-0badcafe";
    for s in &mut plan.servers {
        s.backup = RemotePath::parse(&s.backup.to_string().replace(&plan.stamp, STAMP)).unwrap();
    }
    plan.stamp = STAMP.into();
    plan.push_id = "20261126T112045Z-ab12".into();
    let (go, decision) = channel();
    a.update(Msg::Work(Work::Planned {
        result: Ok(Box::new(plan.clone())),
        go: Some(go),
    }));
    (plan, sessions, decision)
}

/// `p` on the selected site, then its choice "Import a <machineKey>".
fn choose_import(a: &mut App) {
    keys(a, "p");
    for _ in 0..8 {
        if format!("{}", render(a, 120, 40).backend()).contains("▶ Import") {
            break;
        }
        keys(a, "↓");
    }
    keys(a, "\n");
}

/// The push of imported keys to `site`, [planned](planned), its
/// confirmation open; the worker's answer comes on the receiver.
fn confirm_imported_push(a: &mut App, site: &str) -> std::sync::mpsc::Receiver<bool> {
    plan_imported_push(a, site).2
}

/// [`confirm_imported_push`], with the plan and its sessions.
fn plan_imported_push(
    a: &mut App,
    site: &str,
) -> (
    farmkey::push::Plan,
    farmkey::push::Sessions,
    std::sync::mpsc::Receiver<bool>,
) {
    keys(a, &format!("/{site}\n"));
    choose_import(a);
    let (v, d) = ("0123456789ABCDEF".repeat(8), "FEDCBA9876543210".repeat(4));
    a.update(Msg::Input(Event::Paste(format!(
        "<machineKey validationKey=\"{v}\" decryptionKey=\"{d}\" validation=\"HMACSHA256\" decryption=\"AES\" />"
    ))));
    let effects = keys(a, "\n");
    planned(a, &effects)
}

/// The confirmation of a push to Sequence Administration writes three
/// servers: at 80x24 and at 60x16 its plan is taller than the dialog can
/// be. It opens at its top, says how much more there is, scrolls to the
/// end of the plan with the buttons always in view, and Push acts only
/// once the end was shown (the tester saw web01 alone, then pushed).
#[test]
fn a_plan_taller_than_the_terminal_scrolls_and_is_read_before_it_is_pushed() {
    const TITLE: &str = "Confirm push 20261126T112045Z-ab12";
    let body = |rows: &[String]| rows[..rows.len() - 2].to_vec();
    for (w, h) in [(80, 24), (60, 16)] {
        // The whole plan, on a terminal tall enough for it.
        let whole = {
            let (_dir, mut a) = app("default");
            confirm_imported_push(&mut a, "Sequence Administration");
            resize(&mut a, w, 200);
            body(&assert_whole_dialog(
                &a,
                w,
                200,
                TITLE,
                "sessions there are lost once.",
            ))
        };
        let (_dir, mut a) = app("default");
        resize(&mut a, w, h);
        let decision = confirm_imported_push(&mut a, "Sequence Administration");
        let rows = dialog_rows(&a, w, h, TITLE);
        let shown = rows.len() - 2;
        assert!(whole.len() > shown, "{w}x{h}: the plan fits: {rows:#?}");
        assert_eq!(body(&rows), whole[..shown], "{w}x{h}: it opens at its top");
        assert!(rows[rows.len() - 1].starts_with("[ Cancel ]"), "{rows:#?}");
        let text = format!("{}", render(&a, w, h).backend());
        let more = format!("↓ {} more lines", whole.len() - shown);
        assert!(text.contains(&more) && !text.contains("↑ more"), "{text}");
        assert!(
            text.contains("↑↓ scroll"),
            "the footer says it scrolls: {text}"
        );
        // Push before the end was shown: nothing, and the frame says why.
        let effects = keys(&mut a, "→\n");
        assert!(effects.is_empty(), "{effects:?}");
        assert_eq!(
            decision.try_recv(),
            Err(std::sync::mpsc::TryRecvError::Empty)
        );
        let text = format!("{}", render(&a, w, h).backend());
        assert!(
            text.contains(&format!("{more}: read to the end first")),
            "{text}"
        );
        assert_eq!(body(&dialog_rows(&a, w, h, TITLE)), whole[..shown]);
        // Down one row, then a page, then to the end.
        keys(&mut a, "j");
        assert_eq!(body(&dialog_rows(&a, w, h, TITLE)), whole[1..=shown]);
        keys(&mut a, "g");
        assert_eq!(body(&dialog_rows(&a, w, h, TITLE)), whole[..shown]);
        for _ in 0..whole.len() {
            keys(&mut a, "↓");
        }
        let end = whole[whole.len() - shown..].to_vec();
        let rows = dialog_rows(&a, w, h, TITLE);
        assert_eq!(body(&rows), end, "{w}x{h}: Down repeated stops at the end");
        assert!(rows[rows.len() - 1].starts_with("[ Cancel ]"), "{rows:#?}");
        let text = format!("{}", render(&a, w, h).backend());
        assert!(
            text.contains("↑ more") && !text.contains("more line"),
            "{text}"
        );
        insta::assert_snapshot!(format!("dialog_push_confirm_scrolled_{w}x{h}"), text);
        // Read: Push acts.
        keys(&mut a, "\n");
        assert_eq!(decision.try_recv(), Ok(true), "{w}x{h}");
    }
}

/// Home, End, PgUp and PgDn move a whole dialog's text; ←/→ still move
/// between the buttons, and once read, up again, Push stays allowed.
#[test]
fn a_dialog_scrolls_by_page_and_to_either_end() {
    use ratatui::crossterm::event::KeyCode;
    const TITLE: &str = "Confirm push 20261126T112045Z-ab12";
    let (_dir, mut a) = app("default");
    let decision = confirm_imported_push(&mut a, "Sequence Administration");
    resize(&mut a, 60, 16);
    let first = dialog_rows(&a, 60, 16, TITLE);
    key(&mut a, KeyCode::End);
    let last = dialog_rows(&a, 60, 16, TITLE);
    assert_ne!(first, last);
    key(&mut a, KeyCode::Home);
    assert_eq!(dialog_rows(&a, 60, 16, TITLE), first);
    key(&mut a, KeyCode::PageDown);
    let paged = dialog_rows(&a, 60, 16, TITLE);
    // A page less one row: the last row shown before is the first now.
    assert_eq!(paged[0], first[first.len() - 3], "{paged:#?}");
    key(&mut a, KeyCode::PageUp);
    assert_eq!(dialog_rows(&a, 60, 16, TITLE), first);
    key(&mut a, KeyCode::End);
    key(&mut a, KeyCode::Home);
    key(&mut a, KeyCode::Right);
    assert!(
        dialog_rows(&a, 60, 16, TITLE)
            .last()
            .unwrap()
            .contains("[ Push ]")
    );
    key(&mut a, KeyCode::Left);
    key(&mut a, KeyCode::Enter);
    assert_eq!(decision.try_recv(), Ok(false), "Cancel cancels");
    assert!(a.dialogs.is_empty());
}

/// After a push the sites are sorted again (Flowtime, in step, goes last):
/// the pointer stays on Flowtime, the site the push was about. It went to
/// Process TOGO when the cursor had not been moved before `p`.
#[test]
fn the_pointer_follows_the_pushed_site_when_the_sites_are_sorted_again() {
    use farmkey::console::app::Effect;
    use farmkey::console::model::Work;
    use farmkey::push::audit::AuditLog;
    let (dir, mut a) = app("default");
    let pointed = |a: &App| {
        let text = format!("{}", render(a, 80, 24).backend());
        text.lines()
            .find(|l| l.contains('▶'))
            .unwrap_or("")
            .to_string()
    };
    assert!(pointed(&a).contains("≠ Flowtime"), "{}", pointed(&a));
    // Adopt key set A: web03 is written.
    let effects = keys(&mut a, "p\n");
    let (plan, mut sessions, decision) = planned(&mut a, &effects);
    keys(&mut a, "→\n");
    assert_eq!(decision.try_recv(), Ok(true));
    let audit = AuditLog::new(dir.path().join("audit.jsonl"));
    let outcome = farmkey::push::apply(
        &plan,
        &mut sessions,
        &audit,
        &farmkey::push::Interrupt::new(),
        &mut |_| {},
    );
    assert!(outcome.success(), "{}", outcome.summary());
    // The console rescans every server, as its runtime would.
    let effects = a.update(Msg::Work(Work::PushDone(Ok(outcome))));
    let generation = effects
        .iter()
        .find_map(|e| match e {
            Effect::Scan { generation, .. } => Some(*generation),
            _ => None,
        })
        .expect("a rescan after the push");
    let servers: Vec<_> = a.data.servers.iter().map(|r| r.server.clone()).collect();
    for (index, scan) in scan_all(&servers, ConnectOptions::default(), 3)
        .into_iter()
        .enumerate()
    {
        a.update(Msg::Scan {
            generation,
            event: ScanEvent::Finished {
                index,
                scan: Box::new(scan),
            },
        });
    }
    keys(&mut a, "\n");
    let text = format!("{}", render(&a, 80, 24).backend());
    let first = text.lines().find(|l| l.contains("Process TOGO")).unwrap();
    let flowtime = text.lines().find(|l| l.contains("Flowtime")).unwrap();
    assert!(
        text.find(first).unwrap() < text.find(flowtime).unwrap(),
        "Flowtime, in step, is sorted after the others: {text}"
    );
    assert!(pointed(&a).contains("✓ Flowtime"), "{text}");
}

/// `g` on the Log shows a whole page from its oldest line, not that line
/// alone; `j` then moves one line, `G` back to the newest.
#[test]
fn the_log_scrolls_to_its_top_a_page_at_a_time() {
    use farmkey::console::model::LogLevel;
    let (_dir, mut a) = app("default");
    for i in 0..40 {
        a.log(LogLevel::Info, format!("line {i:02}"));
    }
    keys(&mut a, "4");
    let rows = panel_rows(&a, 80, 24);
    let text: Vec<String> = a.data.log.iter().map(|e| e.text.clone()).collect();
    let shown = |rows: &[String]| -> Vec<String> {
        rows.iter()
            .map(|r| r.get(10..).unwrap_or("").to_string())
            .collect()
    };
    let n = rows.len();
    assert_eq!(shown(&rows), text[text.len() - n..], "the newest at first");
    keys(&mut a, "g");
    assert_eq!(
        shown(&panel_rows(&a, 80, 24)),
        text[..n],
        "g: the first page"
    );
    keys(&mut a, "k");
    assert_eq!(shown(&panel_rows(&a, 80, 24)), text[..n], "k at the top");
    keys(&mut a, "j");
    assert_eq!(
        shown(&panel_rows(&a, 80, 24)),
        text[1..=n],
        "j: one line on"
    );
    keys(&mut a, "G");
    assert_eq!(shown(&panel_rows(&a, 80, 24)), text[text.len() - n..], "G");
}

/// A filter that hides every row says so, not that there is nothing: the
/// matrix said "No Cora sites found. Press a…" and Findings "✓ No
/// findings." after `/zzz`.
#[test]
fn a_filter_that_hides_everything_says_so() {
    let (_dir, mut a) = app("default");
    keys(&mut a, "/zzz\n");
    let text = format!("{}", render(&a, 80, 24).backend());
    assert!(
        text.contains("No site matches the filter “zzz”") && !text.contains("No Cora sites found"),
        "{text}"
    );
    keys(&mut a, "3");
    let text = format!("{}", render(&a, 80, 24).backend());
    assert!(
        text.contains("No finding matches the filter “zzz”") && !text.contains("No findings"),
        "{text}"
    );
    keys(&mut a, "4");
    let text = format!("{}", render(&a, 80, 24).backend());
    assert!(
        text.contains("No log line matches the filter “zzz”"),
        "{text}"
    );
    // Esc clears it: every site again.
    keys(&mut a, "1\u{1b}");
    let text = format!("{}", render(&a, 120, 40).backend());
    assert!(
        text.contains("Flowtime") && !text.contains("matches"),
        "{text}"
    );
}

/// Import: Enter on text that is no element answers with the reason the
/// command line gives for `--keys`, on screen and in the Log, never with
/// a key (Enter added a line, silently). Inside an open tag Enter goes on
/// to the next line, and the dialog says so.
#[test]
fn imported_text_that_is_no_usable_element_is_refused_with_the_reason() {
    use farmkey::config::import::key_set_from_xml;
    let import = |a: &mut App| {
        choose_import(a);
        assert!(format!("{}", render(a, 80, 24).backend()).contains("Paste the <machineKey>"));
    };
    let v = "0123456789ABCDEF".repeat(8);
    let cases = [
        "hello".to_string(),
        String::new(),
        format!("<machineKey validationKey=\"{v}\" decryptionKey=\"00\" />"),
    ];
    for typed in cases {
        let (_dir, mut a) = app("default");
        import(&mut a);
        for c in typed.chars() {
            keys(&mut a, &c.to_string());
        }
        let effects = keys(&mut a, "\n");
        assert!(effects.is_empty(), "{effects:?}");
        let why = key_set_from_xml(&typed).unwrap_err().to_string();
        let text = format!("{}", render(&a, 120, 40).backend());
        let rows = dialog_rows(&a, 120, 40, "These keys cannot be used");
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(
            words(&rows[..rows.len() - 2].join(" ")),
            words(&why),
            "{typed:?}"
        );
        assert!(!text.contains(&v[..16]), "a key on screen: {text}");
        let logged = a.data.log.last().unwrap().text.clone();
        assert_eq!(logged, format!("pasted keys refused: {why}"));
        assert!(!logged.contains(&v[..16]));
    }
    // Inside an open tag, Enter is a new line; the element then ends.
    let (_dir, mut a) = app("default");
    import(&mut a);
    for c in "<machineKey validationKey=\"XYZ\"".chars() {
        keys(&mut a, &c.to_string());
    }
    let effects = keys(&mut a, "\n");
    assert!(effects.is_empty());
    let text = format!("{}", render(&a, 120, 40).backend());
    assert!(
        text.contains("Paste the <machineKey>") && text.contains("A tag is open"),
        "{text}"
    );
    for c in " decryptionKey=\"00\" />".chars() {
        keys(&mut a, &c.to_string());
    }
    keys(&mut a, "\n");
    let text = format!("{}", render(&a, 120, 40).backend());
    assert!(
        text.contains("These keys cannot be used") && text.contains("non-hex"),
        "{text}"
    );
}

/// History says what keys without a fingerprint were, as the matrix does
/// (`↻ auto`): it said "? → 6a63e1f8" and "keys before validationKey ?".
#[test]
fn history_says_auto_where_the_matrix_does() {
    use farmkey::push::audit::AuditLog;
    let (dir, mut a) = app("default");
    // Sequence Administration: web02's keys are auto-generated.
    let (plan, mut sessions, decision) = plan_imported_push(&mut a, "Sequence Administration");
    keys(&mut a, "G→\n");
    assert_eq!(decision.try_recv(), Ok(true));
    let audit = AuditLog::new(dir.path().join("audit.jsonl"));
    let outcome = farmkey::push::apply(
        &plan,
        &mut sessions,
        &audit,
        &farmkey::push::Interrupt::new(),
        &mut |_| {},
    );
    assert!(outcome.success(), "{}", outcome.summary());
    let records: Vec<_> = audit
        .read_all()
        .unwrap()
        .into_iter()
        .filter(|r| r.server == "web02")
        .collect();
    a.update(Msg::Work(farmkey::console::model::Work::PushDone(Ok(
        outcome,
    ))));
    keys(&mut a, "\n5");
    a.update(Msg::History {
        path: PathBuf::from("/home/op/.local/state/farmkey/audit.jsonl"),
        result: Ok(pushes(&records, None)),
    });
    let set = plan.set_fingerprint.clone().unwrap();
    let text = format!("{}", render(&a, 120, 40).backend());
    assert!(text.contains(&format!("auto → {set}")), "{text}");
    keys(&mut a, "\n");
    let text = format!("{}", render(&a, 120, 40).backend());
    assert!(
        text.contains("validationKey auto, decryptionKey auto") && !text.contains("Key ?"),
        "{text}"
    );
}

/// The consistent farm and `web03`, whose applicationHost.config is not
/// well-formed (a reason without a temporary path, for the snapshots).
/// `scans` says how many of its servers have been read.
fn farm_with_unread_web03(theme: &str, scans: usize) -> (tempfile::TempDir, App) {
    let dir = support::farm_copy("consistent");
    let inv_path = dir.path().join("farmkey.toml");
    let mut text = std::fs::read_to_string(&inv_path).unwrap();
    text.push_str("\n[[servers]]\nname = \"web03\"\nlocal_root = \"web03\"\n");
    std::fs::write(&inv_path, text).unwrap();
    let apphost = dir
        .path()
        .join("web03/C:/Windows/System32/inetsrv/config/applicationHost.config");
    std::fs::create_dir_all(apphost.parent().unwrap()).unwrap();
    std::fs::write(&apphost, "<configuration><system.applicationHost>").unwrap();
    let inv = Inventory::load(&inv_path).unwrap();
    let app = console_on("lab farm", &inv, theme, scans);
    (dir, app)
}

#[test]
fn a_site_with_an_unread_server_has_no_tick() {
    for theme in ["default", "mono"] {
        let (_dir, mut a) = farm_with_unread_web03(theme, 3);
        let text = format!("{}", render(&a, 80, 24).backend());
        assert!(text.contains("sites 2, ? 2 unverified"), "{text}");
        assert!(!text.contains('✓'), "no tick: {text}");
        // Reached, its applicationHost.config not well-formed: unreadable,
        // not unreachable.
        assert!(text.contains("✗ unreadable"), "{text}");
        assert!(!text.contains("unreachable"), "{text}");
        snap("matrix_unverified", &mut a);
        // The detail says which server was not read, and why.
        keys(&mut a, "\n");
        let page = whole_detail(&mut a);
        assert!(
            page.iter()
                .any(|l| l.contains("? unverified: not read on web03")),
            "{page:#?}"
        );
        assert!(
            page.iter().any(|l| l.contains(
                "web03  ? not read: its IIS configuration is unreadable: C:\\Windows\\System32"
            )),
            "{page:#?}"
        );
    }
}

#[test]
fn a_server_still_being_read_leaves_no_tick() {
    // web01 and web02 are read and agree; web03 is still being read.
    let (_dir, a) = farm_with_unread_web03("default", 2);
    let text = format!("{}", render(&a, 80, 24).backend());
    assert!(text.contains("? 2 unverified"), "{text}");
    assert!(!text.contains('✓'), "no tick: {text}");
}

#[test]
fn the_findings_screen_has_no_tick_before_every_server_is_read() {
    let (_dir, mut a) = farm_with_unread_web03("default", 0);
    keys(&mut a, "3");
    let text = format!("{}", render(&a, 80, 24).backend());
    assert!(
        text.contains("No findings yet: 3 server(s) still being read."),
        "{text}"
    );
    assert!(!text.contains('✓'), "no tick: {text}");
}

#[test]
fn a_narrow_header_keeps_every_count_of_the_sites() {
    // web03 still being read: the words do not fit at 60 columns (the
    // count was cut off), the marks do, the title giving way.
    let (_dir, mut a) = farm_with_unread_web03("default", 2);
    resize(&mut a, 60, 16);
    let t = render(&a, 60, 16);
    let header: String = format!("{}", t.backend()).lines().next().unwrap().into();
    assert!(
        header.contains("servers 2 ok, 1 scanning") && header.contains("│ sites 2, ? 2"),
        "{header}"
    );
    // The demo's drift in words where it fits, by its mark where not.
    let (_demo, mut d) = app("default");
    let wide = format!("{}", render(&d, 80, 24).backend());
    assert!(wide.contains("sites 3, 3 out of step "), "{wide}");
    // web01 rescanned: the servers' counts grow by "1 scanning".
    d.update(Msg::Scan {
        generation: 1,
        event: ScanEvent::ScanStage {
            index: 0,
            stage: farmkey::scan::ScanStage::Connecting,
        },
    });
    resize(&mut d, 60, 16);
    let narrow = format!("{}", render(&d, 60, 16).backend());
    let header = narrow.lines().next().unwrap();
    assert!(header.contains("sites 3, ≠ 3"), "{header}");
}

#[test]
fn a_refused_host_key_is_said_in_the_cell_and_the_panel() {
    let dir = support::farm_copy("consistent");
    let inv = Inventory::load(&dir.path().join("farmkey.toml")).unwrap();
    let mut a = console_on("lab farm", &inv, "default", 1);
    a.update(Msg::Scan {
        generation: 1,
        event: ScanEvent::Finished {
            index: 1,
            scan: Box::new(farmkey::scan::ServerScan {
                name: "web02".into(),
                address: "web02".into(),
                result: Err(farmkey::scan::ServerFailure::HostKeyChanged(Box::new(
                    farmkey::transport::ssh::ConnectError::HostKeyChanged {
                        host: "web02".into(),
                        key_type: "ssh-ed25519".into(),
                        fingerprint: "SHA256:3cY5Fh1iYpsmvKMX2qx9FQ2b3nCBf1H7wvmh6cA2nUI".into(),
                        known_hosts: "/root/.ssh/known_hosts".into(),
                    },
                ))),
                elapsed: Duration::from_millis(5),
            }),
        },
    });
    resize(&mut a, 120, 40);
    let text = format!("{}", render(&a, 120, 40).backend());
    assert!(text.contains("✗ host key"), "{text}");
    assert!(
        text.contains(
            "? not read on web02: host key refused: WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED"
        ),
        "{text}"
    );
    assert!(!text.contains('✓'), "no tick: {text}");
}

#[test]
fn a_farm_with_no_server_read_says_no_site_was_verified() {
    let dir = support::farm_copy("consistent");
    for server in ["web01", "web02"] {
        std::fs::remove_dir_all(dir.path().join(server)).unwrap();
    }
    let inv = Inventory::load(&dir.path().join("farmkey.toml")).unwrap();
    let a = console_on("lab farm", &inv, "default", 2);
    let text = format!("{}", render(&a, 80, 24).backend());
    assert!(
        text.contains("No site was verified: no server could be read"),
        "{text}"
    );
    assert!(!text.contains("No Cora sites found"), "{text}");
}

/// The rows of the page shown, on a terminal tall enough for all of them.
fn whole_detail(a: &mut App) -> Vec<String> {
    resize(a, 120, 200);
    panel_rows(a, 120, 200)
}

#[test]
fn a_server_with_no_managed_code_shows_no_clr_not_unreadable() {
    let farm = support::farm_copy("consistent");
    let apphost = farm
        .path()
        .join("web02/C:/Windows/System32/inetsrv/config/applicationHost.config");
    let text = std::fs::read_to_string(&apphost).unwrap().replace(
        r#"<add name="Flowtime" managedRuntimeVersion="v4.0" />"#,
        r#"<add name="Flowtime" managedRuntimeVersion="" />"#,
    );
    std::fs::write(&apphost, text).unwrap();
    let app = scanned_app(
        "no clr",
        &farm.path().join("farmkey.toml"),
        "default",
        symbols::UNICODE,
    );
    let screen = format!("{}", render(&app, 120, 40).backend());
    let flowtime = screen
        .lines()
        .find(|l| l.contains("Flowtime"))
        .unwrap_or_default();
    assert!(flowtime.contains("no CLR"), "{screen}");
    assert!(!flowtime.contains("unreadable"), "{screen}");
}

// Nothing is cut off unseen (issue 22 item 1): every cut cell is marked,
// every panel that overflows says so and scrolls, and the full text can
// be reached, at every size the console is drawn at.

const SIZES: [(u16, u16); 3] = [(80, 24), (60, 16), (120, 40)];

/// A push result as long as the console writes them, with a tail to find.
const LONG_LINE: &str = "push Flowtime: key set 4284dd2d written, verified and \
    in step on every server of the farm (web01, web02, web03), backups kept in \
    C:\\inetpub\\Cora\\Flowtime\\web.config.farmkey-backup; END-OF-LINE";

/// The terminal's rows, trailing spaces dropped.
fn screen_rows(a: &App, w: u16, h: u16) -> Vec<String> {
    let buf = render(a, w, h).backend().buffer().clone();
    (0..h)
        .map(|y| {
            let row: String = (0..w).map(|x| buf[(x, y)].symbol()).collect();
            row.trim_end().to_string()
        })
        .collect()
}

#[test]
fn the_log_wraps_long_lines_and_w_cuts_them_with_a_mark_and_scrolls_sideways() {
    for (symbols, mark) in [(symbols::UNICODE, "…"), (symbols::ASCII, "$")] {
        for (w, h) in SIZES {
            let (_dir, mut a) = app("default");
            a.ui.symbols = symbols;
            a.log(farmkey::console::model::LogLevel::Info, LONG_LINE);
            key(&mut a, KeyCode::Char('4'));
            resize(&mut a, w, h);
            // Wrapped (the default): the whole line, its tail on the last row.
            let rows = screen_rows(&a, w, h);
            let text = rows.join("\n");
            assert!(text.contains("Log (wrapped"), "{w}x{h}: {text}");
            assert!(text.contains("END-OF-LINE"), "{w}x{h}: {text}");
            assert!(text.contains("every server of"), "{w}x{h}: {text}");
            // `w`: one row, cut with a mark, the tail out of view.
            key(&mut a, KeyCode::Char('w'));
            let rows = screen_rows(&a, w, h);
            let text = rows.join("\n");
            assert!(text.contains("Log (cut"), "{w}x{h}: {text}");
            if mark == "$" {
                // The time of day differs from run to run.
                insta::assert_snapshot!(
                    format!("log_cut_{w}x{h}_ascii"),
                    // The line after its time of day (which differs every run).
                    rows.iter()
                        .find(|l| l.contains("push Flowtime"))
                        .map(|l| l.chars().skip(11).collect::<String>())
                        .unwrap()
                );
            }
            let line = rows.iter().find(|r| r.contains("push Flowtime")).unwrap();
            assert!(
                line.trim_end_matches(['│', '|']).ends_with(mark),
                "{w}x{h}: no mark where the line is cut: {line}"
            );
            assert!(!text.contains("END-OF-LINE"), "{w}x{h}: {text}");
            assert!(
                rows[usize::from(h) - 1].contains("w wrap"),
                "{w}x{h}: {text}"
            );
            // Sideways to the end: the tail shows, a mark where it begins.
            for _ in 0..20 {
                key(&mut a, KeyCode::Right);
            }
            let rows = screen_rows(&a, w, h);
            let line = rows.iter().find(|r| r.contains("END-OF-LINE")).unwrap();
            assert!(!line.contains("push Flowtime"), "{w}x{h}: {line}");
            // `│ 11:20:45 ` then the text.
            let text: String = line.chars().skip(11).collect();
            assert!(text.starts_with(mark), "{w}x{h}: {line}");
            // And back to wrapping.
            key(&mut a, KeyCode::Char('w'));
            let text = screen_rows(&a, w, h).join("\n");
            assert!(text.contains("push Flowtime") && text.contains("END-OF-LINE"));
        }
    }
}

/// The bottom border of the panel whose top border names `title`.
fn panel_bottom<'a>(rows: &'a [String], title: &str) -> &'a str {
    let top = rows.iter().position(|r| r.contains(title)).unwrap();
    rows[top + 1..]
        .iter()
        .find(|r| r.starts_with('└') || r.starts_with('+'))
        .unwrap()
}

#[test]
fn the_findings_panel_takes_the_rows_the_list_leaves_and_scrolls_to_its_end() {
    for (w, h) in SIZES {
        let (_dir, mut a) = app("default");
        key(&mut a, KeyCode::Char('3'));
        resize(&mut a, w, h);
        let rows = screen_rows(&a, w, h);
        let text = rows.join("\n");
        insta::assert_snapshot!(format!("findings_cut_{w}x{h}"), text);
        // A list with rows below those shown says so; at its end, above.
        if h == 16 {
            assert!(
                panel_bottom(&rows, "Findings (").contains("more line"),
                "{text}"
            );
            let (_dir, mut b) = app("default");
            key(&mut b, KeyCode::Char('3'));
            resize(&mut b, w, h);
            key(&mut b, KeyCode::End);
            let rows = screen_rows(&b, w, h);
            let list = rows.iter().find(|r| r.contains("Findings (")).unwrap();
            assert!(list.contains("↑ more"), "{}", rows.join("\n"));
            assert!(!panel_bottom(&rows, "Findings (").contains("more line"));
        }
        // The list has no empty rows above the panel.
        let top = rows.iter().position(|r| r.contains("What to do")).unwrap();
        assert!(
            !rows[top - 2].trim_matches(['│', ' ']).is_empty(),
            "{w}x{h}: {text}"
        );
        // Overflowing, it says how much more there is; J scrolls to the end.
        if !text.contains("Servers: web01, web02, web03") {
            assert!(
                panel_bottom(&rows, "What to do").contains("more line"),
                "{w}x{h}: {text}"
            );
            assert!(rows[usize::from(h) - 1].contains("J/K"), "{w}x{h}: {text}");
            for _ in 0..30 {
                key(&mut a, KeyCode::Char('J'));
            }
        }
        let rows = screen_rows(&a, w, h);
        let text = rows.join("\n");
        assert!(
            text.contains("Servers: web01, web02, web03"),
            "{w}x{h}: {text}"
        );
        assert!(
            !panel_bottom(&rows, "What to do").contains("more line"),
            "{w}x{h}"
        );
        assert!(
            text.contains("signed in)."),
            "{w}x{h}: the message's end: {text}"
        );
        // A cut SERVERS cell is marked.
        let row = rows.iter().find(|r| r.contains("key-mismatch")).unwrap();
        assert!(
            row.contains("web01, web02, web03")
                || row.trim_end_matches('│').trim_end().ends_with('…'),
            "{w}x{h}: {row}"
        );
        if w >= 120 {
            assert!(row.contains("web01, web02, web03"), "{row}");
            // Names are not cut where the terminal has room.
            assert!(text.contains("Sequence Administration "), "{text}");
        }
    }
}

#[test]
fn the_matrix_findings_panel_says_how_many_more_lines_it_has() {
    for (w, h) in SIZES {
        let mut a = disclosed_app("default", symbols::UNICODE);
        resize(&mut a, w, h);
        let rows = screen_rows(&a, w, h);
        let text = rows.join("\n");
        insta::assert_snapshot!(format!("matrix_cut_{w}x{h}"), text);
        let bottom = rows[usize::from(h) - 2].clone();
        if w < 120 {
            assert!(
                bottom.contains("↓") && bottom.contains("more line"),
                "{w}x{h}: {text}"
            );
            assert!(bottom.contains("(J/K)"), "{w}x{h}: {text}");
        }
        // J scrolls the panel to its end: nothing below, something above.
        for _ in 0..60 {
            key(&mut a, KeyCode::Char('J'));
        }
        let rows = screen_rows(&a, w, h);
        let bottom = &rows[usize::from(h) - 2];
        assert!(
            !bottom.contains("more line"),
            "{w}x{h}: {}",
            rows.join("\n")
        );
        if w < 120 {
            let top = rows
                .iter()
                .rfind(|r| r.contains("Default Web Site ─"))
                .unwrap();
            assert!(top.contains("↑ more"), "{w}x{h}: {}", rows.join("\n"));
            // Moving to another site shows its findings from their top.
            key(&mut a, KeyCode::Down);
            let rows = screen_rows(&a, w, h);
            assert!(!rows.join("\n").contains("↑ more"), "{w}x{h}");
            key(&mut a, KeyCode::Up);
        }
        // The detail has every line of it.
        key(&mut a, KeyCode::Enter);
        for _ in 0..80 {
            key(&mut a, KeyCode::Down);
        }
        let text = screen_rows(&a, w, h).join("\n");
        assert!(
            !text.contains("more line") || text.contains("↑ more"),
            "{w}x{h}: {text}"
        );
    }
}

#[test]
fn history_outcomes_are_marked_where_cut_and_whole_where_there_is_room() {
    for (w, h) in SIZES {
        let (_dir, mut a) = app("default");
        with_history(&mut a);
        resize(&mut a, w, h);
        let rows = screen_rows(&a, w, h);
        let text = rows.join("\n");
        insta::assert_snapshot!(format!("history_cut_{w}x{h}"), text);
        let row = rows.iter().find(|r| r.contains("2026-11-26")).unwrap();
        if w >= 120 {
            assert!(row.contains("1 rolled-back, 1 refused"), "{text}");
        } else {
            assert!(
                row.trim_end_matches('│').trim_end().ends_with('…'),
                "{w}x{h}: a cut outcome is marked: {row}"
            );
        }
        // The push's servers have the whole of it.
        keys(&mut a, "↓↓\n");
        let text = screen_rows(&a, w, h).join("\n");
        assert!(text.contains("refused"), "{w}x{h}: {text}");
    }
}

#[test]
fn the_ascii_cut_mark_is_no_other_mark() {
    let s = symbols::ASCII;
    let others = [
        s.ok,
        s.drift,
        s.unverified,
        s.error,
        s.warning,
        s.info,
        s.disclosed,
        s.auto,
        s.dpapi,
        s.algorithm,
        s.encrypted,
        s.unreadable,
        s.invalid,
        s.absent,
        s.unreachable,
        s.pointer,
        s.hbar,
        s.sep,
        s.times,
        s.mask,
        s.above,
        s.below,
        s.border.top_left,
    ];
    assert!(!others.contains(&s.ellipsis), "{}", s.ellipsis);
    assert_ne!(s.ellipsis, "~", "~ is the auto-generated key's mark");
}

/// A number key or Tab is a fresh navigation: Esc then has nowhere to go
/// back to (in a terminal, a key sent right after Esc reads as Alt with
/// it, so the PTY test cannot show that nothing happens).
#[test]
fn a_number_key_or_tab_empties_the_back_stack() {
    use farmkey::console::screens::ScreenId;
    let (_dir, inv) = fixed_demo();
    let mut app = console_on("demo farm", &inv, "default", inv.servers.len());
    key(&mut app, KeyCode::Char('3'));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, ScreenId::Matrix);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, ScreenId::Detail);
    assert_eq!(app.back, [ScreenId::Findings, ScreenId::Matrix]);
    key(&mut app, KeyCode::Char('1'));
    assert!(app.back.is_empty());
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.screen, ScreenId::Matrix);
    key(&mut app, KeyCode::Char('3'));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, ScreenId::Matrix);
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.screen, ScreenId::Servers);
    assert!(app.back.is_empty());
}

#[test]
fn a_jump_host_that_took_fewer_sessions_is_a_warning_in_the_log() {
    use farmkey::console::model::LogLevel;
    use farmkey::transport::ReachNote;
    let (_dir, mut a) = app("default");
    let note = ReachNote::FewerJumpSessions {
        hop: "jump host gate (ops@[10.0.0.5]:2222)".into(),
        accepted: 2,
        wanted: 3,
        reason: "SSH handshake failed".into(),
    };
    a.update(Msg::Scan {
        generation: 1,
        event: ScanEvent::Notes(vec![note.clone()]),
    });
    let last = a.data.log.last().unwrap();
    assert_eq!(last.level, LogLevel::Warn);
    assert_eq!(last.text, note.to_string());
    assert!(
        last.text
            .starts_with("jump host gate (ops@[10.0.0.5]:2222) accepted 2 of 3 sessions"),
        "{}",
        last.text
    );
}
