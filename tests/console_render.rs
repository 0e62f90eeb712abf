//! Console rendering with ratatui's TestBackend, against snapshot files:
//! 80x24 and 120x40, default and mono themes. Snapshots hold screens (and,
//! in the styled ones, styles): fingerprints only, never a key.

mod support;

use farmkey::console::app::{App, Ask, Msg};
use farmkey::console::dialogs::message::Message;
use farmkey::console::symbols;
use farmkey::console::theme::Theme;
use farmkey::console::view;
use farmkey::farm::{ScanEvent, scan_all};
use farmkey::inventory::Inventory;
use farmkey::keys::{KeySet, KeyText};
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
            validation: "SHA1".into(),
            decryption: "AES".into(),
        })
    })
    .unwrap();
    let inv = Inventory::load(&inv).unwrap();
    (dir, inv)
}

fn app(theme: &str) -> (tempfile::TempDir, App) {
    let (dir, inv) = fixed_demo();
    let mut app = App::new(
        "demo farm".into(),
        inv.servers.clone(),
        Theme::built_in(theme, false).unwrap(),
        symbols::UNICODE,
        false,
    );
    app.start();
    for (index, mut scan) in scan_all(&inv.servers, ConnectOptions::default(), 3)
        .into_iter()
        .enumerate()
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
    app.settle();
    (dir, app)
}

fn key(app: &mut App, code: KeyCode) {
    app.update(Msg::Input(Event::Key(KeyEvent::new(
        code,
        KeyModifiers::NONE,
    ))));
}

fn render(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, app)).unwrap();
    t
}

/// Text snapshots for reading; styled snapshots to catch theme regressions.
fn snap(name: &str, app: &App) {
    for (w, h) in [(80, 24), (120, 40)] {
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
        snap(name, &a);
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
    both_themes("dialog_hostkey", |a| {
        let (reply, _rx) = channel();
        std::mem::forget(_rx);
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
    let inv = Inventory::load(&path).unwrap();
    let mut app = App::new(
        "disclosed farm".into(),
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
        let a = disclosed_app(theme, symbols::UNICODE);
        assert_no_farm_key("disclosed", &format!("{}", render(&a, 120, 40).backend()));
        snap("disclosed_matrix", &a);
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
        let a = make(theme);
        assert_no_farm_key("disclosed", &format!("{}", render(&a, 120, 40).backend()));
        snap(name, &a);
    }
}
