//! The real farmkey binary in a pseudo-terminal, driven as a person would,
//! against the demo farm, fixture farms and real sshd servers.

mod support;

use std::fs;
use std::time::Duration;
use support::pty::*;
use support::sshd::{Options, demo_over_ssh};

const T: Duration = Duration::from_secs(10);

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The line of the matrix the pointer is on.
fn pointed_line(screen: &str) -> String {
    screen
        .lines()
        .find(|l| l.contains('▶'))
        .unwrap_or("")
        .to_string()
}

#[test]
fn demo_walk_through_and_terminal_restored() {
    let dir = tmp();
    let mut p = Pty::farmkey(&["demo"], &[], 80, 24, dir.path());
    let s = p.wait_for("servers 3 ok", T);
    assert!(s.contains("3 out of step"), "{s}");
    assert!(p.alternate_screen() && p.cursor_hidden());
    assert!(pointed_line(&s).contains("Flowtime"), "{s}");
    assert!(
        s.contains("key-mismatch"),
        "the first site's findings are shown: {s}"
    );

    p.send(DOWN);
    let s = p.wait_until("pointer on Process TOGO", T, |s| {
        pointed_line(s).contains("Process TOGO")
    });
    assert!(s.contains("dpapi-session-tokens"), "{s}");

    p.send(ENTER);
    let s = p.wait_for("Process TOGO on every server", T);
    assert!(s.contains("web01  key set A"), "{s}");
    // Scroll down to web03, whose handler swap is missing.
    for _ in 0..60 {
        let before = p.screen();
        if before.contains("web03") && before.contains("dpapi") {
            break;
        }
        p.send("j");
        p.wait_until("the detail scrolled", T, |s| s != before);
    }
    p.wait_until("web03's detail", T, |s| {
        s.contains("web03") && s.contains("dpapi")
    });
    p.send(ESC);
    p.wait_for("Sites × servers", T);

    p.send("/");
    p.send("admin");
    p.send(ENTER);
    let s = p.wait_until("filtered matrix", T, |s| {
        s.contains("/ admin") && !s.contains("Flowtime")
    });
    assert!(
        s.contains("Sequence Administration") && s.contains("↻ auto"),
        "{s}"
    );
    p.send(ESC);
    p.wait_for("Flowtime", T);

    p.send("?");
    p.wait_for("Help", T);
    let s = read_help(&mut p);
    assert!(
        s.contains("auto-generated key") && s.contains("DPAPI session tokens"),
        "{s}"
    );
    p.send(ESC);
    p.wait_until("help closed", T, |s| !s.contains("Help"));

    p.send(TAB);
    let s = p.wait_for("ADDRESS", T);
    assert!(s.contains("web01") && s.contains("ok"), "{s}");
    p.send(TAB);
    let s = p.wait_for("Findings (worst first)", T);
    p.send("S");
    p.wait_for("Findings (least first)", T);
    assert!(s.contains("auto-generated"));
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
    assert!(!p.alternate_screen(), "the alternate screen was left");
    assert!(!p.cursor_hidden(), "the cursor is shown again");
}

#[test]
fn findings_enter_jumps_to_the_site() {
    let dir = tmp();
    let mut p = Pty::farmkey(&["demo"], &[], 100, 30, dir.path());
    p.wait_for("servers 3 ok", T);
    p.send("3");
    p.wait_for("Findings (worst first)", T);
    p.send(DOWN); // second finding: the DPAPI one of Process TOGO
    p.send(ENTER);
    let s = p.wait_until("matrix on Process TOGO", T, |s| {
        pointed_line(s).contains("Process TOGO")
    });
    assert!(s.contains("Sites × servers"), "{s}");
    p.send("q");
    p.wait_exit(T);
}

#[test]
fn resize_redraws_and_too_small_says_so() {
    let dir = tmp();
    let mut p = Pty::farmkey(&["demo"], &[], 120, 40, dir.path());
    p.wait_for("servers 3 ok", T);
    p.resize(50, 12);
    p.wait_for("Terminal too small", T);
    p.resize(80, 24);
    let s = p.wait_for("Sites × servers", T);
    assert!(s.lines().all(|l| l.chars().count() <= 80));
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
}

/// Behind "Terminal too small" no key acts unseen: `p Enter → Enter`
/// pushed at 60x15. q still quits (with the bug it answered the push
/// dialog and the console stayed).
#[test]
fn keys_behind_the_too_small_screen_do_nothing() {
    let dir = tmp();
    let audit = dir.path().join("audit.jsonl");
    let log = dir.path().join("session.log");
    let mut p = Pty::farmkey(
        &[
            "demo",
            "--audit",
            audit.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
        ],
        &[],
        80,
        24,
        dir.path(),
    );
    p.wait_for("servers 3 ok", T);
    p.resize(60, 15);
    p.wait_for("Terminal too small", T);
    for key in ["p", ENTER, RIGHT, ENTER, "q"] {
        p.send(key);
    }
    assert_eq!(p.wait_exit(T), 0);
    assert!(!audit.exists(), "a push was made behind the screen");
    let text = fs::read_to_string(&log).unwrap();
    assert!(!text.contains("planning a push"), "{text}");
}

#[test]
fn read_only_ascii_and_no_color() {
    let dir = tmp();
    let mut p = Pty::farmkey(
        &["demo", "--read-only", "--ascii"],
        &[("NO_COLOR", "1")],
        80,
        24,
        dir.path(),
    );
    let s = p.wait_for("servers 3 ok", T);
    assert!(s.contains("READ-ONLY"), "{s}");
    let odd: String = s.chars().filter(|c| !c.is_ascii()).collect();
    assert!(
        odd.is_empty(),
        "--ascii draws ASCII only, not {odd:?}:\n{s}"
    );
    assert!(s.contains("Sites x servers") && s.contains("!="), "{s}");
    let out = p.output();
    // NO_COLOR: attributes, but no colour escape (SGR 30-37, 38, 40-47, 48, 90-97).
    assert!(
        !out.contains("\x1b[38;") && !out.contains("\x1b[31m") && !out.contains("\x1b[32m"),
        "colours drawn under NO_COLOR"
    );
    p.send("q");
    p.wait_exit(T);

    // Without NO_COLOR the default theme draws colours.
    let mut p = Pty::farmkey(&["demo"], &[], 80, 24, dir.path());
    p.wait_for("servers 3 ok", T);
    let out = p.output();
    assert!(out.contains("\x1b[3"), "no colour drawn");
    p.send("q");
    p.wait_exit(T);
}

#[test]
fn themes_by_name_and_bad_theme_files() {
    let dir = tmp();
    for theme in ["light", "high-contrast", "nord", "mono"] {
        let mut p = Pty::farmkey(&["demo", "--theme", theme], &[], 80, 24, dir.path());
        p.wait_for("servers 3 ok", T);
        p.send("q");
        assert_eq!(p.wait_exit(T), 0, "theme {theme}");
    }
    let themes = support::fixtures().join("themes");
    let user = themes.join("user-override.toml");
    let mut p = Pty::farmkey(
        &["demo", "--theme", user.to_str().unwrap()],
        &[],
        80,
        24,
        dir.path(),
    );
    p.wait_for("servers 3 ok", T);
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);

    let cases = [
        (
            "unknown-key.toml",
            ":4: key `matrix.matc` is not a theme key",
        ),
        (
            "bad-colour.toml",
            ":3: key `danger`: fg \"reddish\" is not a colour",
        ),
        ("bad-attribute.toml", ":3:"),
        (
            "bad-inherits.toml",
            ":2: key `inherits`: no built-in theme \"neon\"",
        ),
        ("not-toml.toml", ":2:"),
    ];
    for (file, expected) in cases {
        let path = themes.join(file);
        let out = assert_cmd::Command::cargo_bin("farmkey")
            .unwrap()
            .args(["demo", "--theme"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("theme {}", path.display())) && err.contains(expected),
            "{file}: {err}"
        );
    }
}

#[test]
fn a_panic_restores_the_terminal() {
    let dir = tmp();
    let mut p = Pty::farmkey(
        &["demo"],
        &[("FARMKEY_TEST_PANIC", "1")],
        80,
        24,
        dir.path(),
    );
    let code = p.wait_exit(T);
    assert_eq!(code, 101);
    assert!(!p.alternate_screen() && !p.cursor_hidden());
    assert!(
        p.screen().contains("FARMKEY_TEST_PANIC is set"),
        "the panic message is shown after restoring: {}",
        p.screen()
    );
}

#[test]
fn the_session_log_goes_to_a_file_without_keys() {
    let dir = tmp();
    let log = dir.path().join("session.log");
    let inv = support::farm_fixture("root-keys").join("farmkey.toml");
    let mut p = Pty::farmkey(
        &["-i", inv.to_str().unwrap(), "--log", log.to_str().unwrap()],
        &[],
        80,
        24,
        dir.path(),
    );
    p.wait_for("servers 3 ok", T);
    p.send("4");
    p.wait_for("web03: read", T);
    p.send("q");
    p.wait_exit(T);
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("web01: read") && text.contains("scanning web01, web02, web03"),
        "{text}"
    );
    assert!(!text.contains("6F1D3A9C2B7E40A1"), "a key in the log");
}

#[test]
fn revealing_a_key_asks_first_and_hides_again() {
    let dir = tmp();
    let inv = support::farm_fixture("consistent").join("farmkey.toml");
    let mut p = Pty::farmkey(&["-i", inv.to_str().unwrap()], &[], 120, 30, dir.path());
    p.wait_for("servers 2 ok", T);
    p.send("v");
    p.wait_for("select a site on one server", T);
    p.send(RIGHT);
    p.send("v");
    p.wait_for("Reveal keys?", T);
    p.send(ENTER); // Cancel is the default
    let s = p.wait_until("dialog closed", T, |s| !s.contains("Reveal keys?"));
    assert!(!s.contains("6F1D3A9C"));
    p.send("v");
    p.wait_for("Reveal keys?", T);
    p.send(RIGHT);
    p.send(ENTER);
    let s = p.wait_for("6F1D3A9C2B7E40A1", T);
    assert!(s.contains("hiding in"), "{s}");
    p.send("x"); // any key hides them
    p.wait_until("keys hidden", T, |s| !s.contains("6F1D3A9C"));
    p.send("q");
    p.wait_exit(T);
}

#[test]
fn the_ui_answers_keys_while_a_server_hangs() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    farm.server("web03").freeze();
    let defaults = farm
        .defaults()
        .replace("connect_timeout_secs = 3", "connect_timeout_secs = 12");
    let inv = farm.inventory_with(&defaults, "");
    let mut p = Pty::farmkey(
        &["-i", inv.to_str().unwrap(), "--ssh-config", "/nonexistent"],
        &[],
        100,
        30,
        farm.home.path(),
    );
    p.wait_for("servers 2 ok", T);
    // While web03 hangs, keys are answered: each screen asked for appears
    // while web03 is still being scanned.
    for screen in ["2", "1", "2"] {
        p.send(screen);
        let want = if screen == "2" {
            "ADDRESS"
        } else {
            "Sites × servers"
        };
        let s = p.wait_for(want, T);
        assert!(s.contains("1 scanning"), "web03 should still hang: {s}");
    }
    let s = p.screen();
    assert!(
        s.contains("connecting") || s.contains("reading") || s.contains("waiting"),
        "{s}"
    );
    p.wait_for("error", Duration::from_secs(30));
    p.send(DOWN);
    p.send(DOWN);
    let s = p.wait_for("within 12s", T);
    assert!(s.contains("did not complete the handshake"), "{s}");
    farm.server("web03").thaw();
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
}

#[test]
fn unknown_host_keys_are_asked_about_and_stored_on_request() {
    let (_demo, farm) = demo_over_ssh(Options {
        trust_host_keys: false,
        ..Default::default()
    });
    let inv = farm.inventory("");
    let mut p = Pty::farmkey(
        &["-i", inv.to_str().unwrap(), "--ssh-config", "/nonexistent"],
        &[],
        100,
        30,
        farm.home.path(),
    );
    // Each server asks once, in one dialog: refuse the first host (the
    // default button), accept and store the two others (Store, then Store
    // all for the one left).
    let mut answered: Vec<String> = Vec::new();
    while answered.len() < 3 {
        let s = p.wait_until("a new question", T, |s| {
            s.contains("Unknown host key")
                && farmkey::demo::SERVERS.iter().any(|n| {
                    s.contains(&format!("{n} ([127")) && !answered.contains(&n.to_string())
                })
        });
        assert!(s.contains("SHA256:") && s.contains("[ Refuse ]"), "{s}");
        let server = farmkey::demo::SERVERS
            .iter()
            .find(|n| s.contains(&format!("{n} ([127")) && !answered.contains(&n.to_string()))
            .unwrap()
            .to_string();
        if answered.is_empty() {
            p.send(ENTER);
        } else {
            p.send(RIGHT);
            p.send(RIGHT);
            p.send(ENTER);
        }
        answered.push(server);
    }
    let s = p.wait_for("servers 2 ok", T);
    assert!(s.contains("1 failed"), "{s}");
    p.send("2");
    // The matrix's panel names the refused host key too: wait for the
    // Servers screen itself.
    let s = p.wait_until("the Servers screen with the refusal", T, |s| {
        s.contains("ADDRESS") && s.contains("host key of")
    });
    assert!(s.contains("error"), "{s}");
    p.send("q");
    p.wait_exit(T);
    let stored = fs::read_to_string(&farm.known_hosts).unwrap();
    assert_eq!(stored.lines().count(), 2, "{stored}");
}

#[test]
fn passwords_are_asked_in_a_masked_dialog() {
    let (_demo, farm) = demo_over_ssh(Options {
        password_auth: true,
        ..Default::default()
    });
    let defaults = farm
        .defaults()
        .replace(&farm.identity.display().to_string(), "/nonexistent/key");
    let inv = farm.inventory_with(&defaults, "");
    let mut p = Pty::farmkey(
        &["-i", inv.to_str().unwrap(), "--ssh-config", "/nonexistent"],
        &[],
        100,
        30,
        farm.home.path(),
    );
    let s = p.wait_for("password for farmkeytest@127.0.0.1", T);
    assert!(s.contains("Authentication"), "{s}");
    p.send(support::sshd::password());
    let s = p.wait_for("••••", T);
    assert!(!s.contains(support::sshd::password()));
    p.send(ENTER);
    // One answer serves the whole farm (one service account).
    p.wait_for("servers 3 ok", T);
    assert!(!p.output().contains(support::sshd::password()));
    p.send("q");
    p.wait_exit(T);
}

/// A copy of a fixture farm of local servers, and the console's arguments
/// for it: its inventory, and an audit log beside it.
fn fixture_copy(name: &str) -> (tempfile::TempDir, Vec<String>) {
    let dir = tmp();
    support::copy_tree(&support::farm_fixture(name), dir.path());
    let path = |file: &str| dir.path().join(file).to_str().unwrap().to_string();
    let args = vec![
        "-i".to_string(),
        path("farmkey.toml"),
        "--audit".to_string(),
        path("audit.jsonl"),
    ];
    (dir, args)
}

/// A site is ticked only once every server was read: with web03's folder
/// missing the header counts the sites unverified and no site has a tick;
/// once web03 is there and rescanned, both are in step.
#[test]
fn no_tick_for_a_site_until_every_server_was_read() {
    let (dir, mut args) = fixture_copy("consistent");
    let inv = dir.path().join("farmkey.toml");
    let mut text = fs::read_to_string(&inv).unwrap();
    text.push_str("\n[[servers]]\nname = \"web03\"\nlocal_root = \"web03\"\n");
    fs::write(&inv, text).unwrap();
    args.push("--read-only".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = Pty::farmkey(&args, &[], 100, 30, dir.path());
    let s = p.wait_until("web03 failed, both sites unverified", T, |s| {
        s.contains("servers 2 ok, 1 failed") && s.contains("sites 2, ? 2 unverified")
    });
    assert!(!s.contains('✓'), "no tick while web03 is unread: {s}");
    assert!(
        s.contains("? Flowtime") && s.contains("? Sequence Administration"),
        "{s}"
    );
    assert!(s.contains("not read on web03: unreachable"), "{s}");

    support::copy_tree(&dir.path().join("web02"), &dir.path().join("web03"));
    p.send("r");
    let s = p.wait_until("every server read, both in step", T, |s| {
        s.contains("servers 3 ok") && !s.contains("unverified") && !s.contains("scanning")
    });
    assert!(
        s.contains("✓ Flowtime") && s.contains("✓ Sequence Administration"),
        "{s}"
    );
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
}

/// A push that writes two files of one server (the keys in web.config,
/// the handler in the configSource file of system.identityModel) shows
/// each file on its own line while it runs and in its result.
#[test]
fn a_console_push_shows_each_file_of_a_server_on_its_own_line() {
    const TOGO: &str = "web02/C:/Program Files/PNMsoft/Process TOGO";
    let (dir, args) = fixture_copy("config-source");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let before = [
        fs::read(dir.path().join(TOGO).join("web.config")).unwrap(),
        fs::read(dir.path().join(TOGO).join("App_Config/identity.config")).unwrap(),
    ];
    let pause = support::Pause::new("swapped:web02");
    let env = pause.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut p = Pty::farmkey(&args, &env, 120, 40, dir.path());
    p.wait_for("servers 2 ok", T);
    p.send("/TOGO");
    p.send(ENTER);
    p.wait_until("Process TOGO selected", T, |s| {
        pointed_line(s).contains("Process TOGO")
    });
    p.send("p");
    // The dialog's choice: the last line pointed at (the matrix's is above).
    let choice = |s: &str| {
        s.lines()
            .rfind(|l| l.contains('▶'))
            .unwrap_or("")
            .to_string()
    };
    let mut s = p.wait_for("Push to Process TOGO", T);
    for _ in 0..4 {
        if choice(&s).contains("Generate new keys") {
            break;
        }
        let was = choice(&s);
        p.send(DOWN);
        s = p.wait_until("the next choice", T, |s| choice(s) != was);
    }
    assert!(choice(&s).contains("Generate new keys"), "{s}");
    p.send(ENTER);
    p.wait_for("Confirm push", T);
    p.send(RIGHT);
    p.send(ENTER);
    pause.wait(|| p.ended());
    // web02's web.config (the keys, first) is swapped; identity.config waits.
    // Waits for the whole state: the worker holds at the swap, and the
    // steps it reported before are drawn once the console takes them.
    p.wait_until("web02's first file at its swap", T, |s| {
        s.contains("Pushing to Process TOGO")
            && s.contains("web02 identity.config waiting")
            && s.lines()
                .any(|l| l.contains("web02 web.config") && !l.contains("waiting"))
    });
    pause.go();
    let s = p.wait_until("the result", T, |s| s.contains("in step on every server"));
    assert!(
        s.contains("web02 web.config: applied") && s.contains("web02 identity.config: applied"),
        "{s}"
    );
    for (now, was) in [
        fs::read(dir.path().join(TOGO).join("web.config")).unwrap(),
        fs::read(dir.path().join(TOGO).join("App_Config/identity.config")).unwrap(),
    ]
    .iter()
    .zip(&before)
    {
        assert_ne!(now, was);
    }
    p.send(ENTER);
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
}

/// The console on an sshd farm, its audit log in the farm's home.
fn console_on(farm: &support::sshd::SshFarm, env: &[(&str, &str)], cols: u16, rows: u16) -> Pty {
    let inv = farm.inventory_timeout(20);
    let audit = farm.home.path().join("audit.jsonl");
    Pty::farmkey(
        &[
            "-i",
            inv.to_str().unwrap(),
            "--ssh-config",
            "/nonexistent",
            "--audit",
            audit.to_str().unwrap(),
        ],
        env,
        cols,
        rows,
        farm.home.path(),
    )
}

/// `farmkey demo` with its own audit log, the push dialog of Flowtime open.
fn demo_with_push_choice() -> (tempfile::TempDir, std::path::PathBuf, Pty) {
    let dir = tmp();
    let audit = dir.path().join("audit.jsonl");
    let mut p = Pty::farmkey(
        &["demo", "--audit", audit.to_str().unwrap()],
        &[],
        100,
        30,
        dir.path(),
    );
    p.wait_for("servers 3 ok", T);
    p.send("p");
    (dir, audit, p)
}

/// On the demo once read: Flowtime pushed with its first choice, the
/// result read and closed.
fn push_flowtime_on_the_demo(p: &mut Pty) {
    p.wait_for("servers 3 ok", T);
    p.send("p");
    p.wait_for("Push to Flowtime", T);
    p.send(ENTER);
    p.wait_for("Confirm push", T);
    p.send(RIGHT);
    p.send(ENTER);
    p.wait_for("Push done", T);
    p.send(ENTER);
    p.wait_until("the dialog closed", T, |s| !s.contains("Push done"));
}

/// The demo's pushes are recorded in a log of its own, beside its farm:
/// they show in its History screen, never in the operator's audit log.
#[test]
fn the_demo_never_writes_the_operators_audit_log() {
    let dir = tmp();
    let real_log = dir.path().join(".local/state/farmkey/audit.jsonl");
    let mut p = Pty::farmkey(&["demo"], &[], 100, 30, dir.path());
    push_flowtime_on_the_demo(&mut p);
    p.send("5");
    let s = p.wait_until("the demo's push in History", T, |s| {
        s.lines()
            .any(|l| l.contains("Flowtime") && l.contains("applied"))
    });
    assert!(!s.contains(".local/state"), "{s}");
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
    assert!(!real_log.exists(), "the operator's audit log was written");
}

#[test]
fn pushing_from_the_console_on_the_demo_farm() {
    let (_dir, audit, mut p) = demo_with_push_choice();
    let s = p.wait_for("Push to Flowtime", T);
    assert!(
        s.contains("Adopt key set A from web01") && s.contains("Generate new keys: SHA1 + AES"),
        "{s}"
    );
    p.send(ENTER);
    let s = p.wait_for("Confirm push", T);
    assert!(
        s.contains("web01      unchanged")
            && s.contains("web03      C:\\inetpub\\Cora\\Flowtime\\web.config"),
        "{s}"
    );
    assert!(s.contains("restarts the application"), "{s}");
    // Cancel is the default.
    p.send(ENTER);
    p.wait_until("plan dropped", T, |s| !s.contains("Confirm push"));
    assert!(!audit.exists(), "a cancelled push writes nothing");
    p.send("p");
    p.wait_for("Push to Flowtime", T);
    p.send(ENTER);
    p.wait_for("Confirm push", T);
    p.send(RIGHT);
    p.send(ENTER);
    let s = p.wait_for("Push done", T);
    assert!(
        s.contains("web03: applied and verified") && s.contains("Flowtime is in step"),
        "{s}"
    );
    p.send(ENTER);
    let s = p.wait_until("Flowtime in step", T, |s| {
        s.contains("✓ Flowtime") && s.contains("servers 3 ok")
    });
    // Sorted after the sites out of step, it keeps the pointer.
    assert!(pointed_line(&s).contains("Flowtime"), "{s}");
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
    // web03's intent and outcome.
    let records = fs::read_to_string(&audit).unwrap();
    assert_eq!(records.lines().count(), 2, "{records}");
}

/// In the push's confirmation: `w`, the default name erased, `name`
/// typed and Enter. The screen as `w` opened the question.
fn save_plan_as(p: &mut Pty, name: &str) -> String {
    p.send("w");
    let asked = p.wait_for("Save plan", T);
    for _ in 0.."farmkey-plan-Flowtime-20261207T042000Z.toml".len() {
        p.send("\x7f");
    }
    p.wait_until("the name erased", T, |s| s.contains("File: _"));
    p.send(name);
    p.wait_for(&format!("File: {name}_"), T);
    p.send(ENTER);
    asked
}

/// The push's confirmation saves the plan instead (`w`): a file named by
/// default in the current folder, that `farmkey apply` reads; nothing
/// pushed, nothing recorded.
#[test]
fn the_push_confirmation_saves_the_plan_to_a_file_instead() {
    let (dir, audit, mut p) = demo_with_push_choice();
    p.wait_for("Push to Flowtime", T);
    // Adopt key set A from web01.
    p.send(ENTER);
    p.wait_for("Confirm push", T);
    let s = save_plan_as(&mut p, "cab-1234.toml");
    assert!(s.contains("File: farmkey-plan-Flowtime-"), "{s}");
    let s = p.wait_for("Plan saved", T);
    let file = dir.path().join("cab-1234.toml");
    assert!(s.contains("Nothing was written on any server."), "{s}");
    assert!(s.contains("farmkey apply"), "{s}");
    let plan = farmkey::push::saved::SavedPlan::load(&file).unwrap();
    assert_eq!(plan.site, "Flowtime");
    assert!(plan.source.contains("from web01"), "{}", plan.source);
    assert_eq!(
        plan.tag.as_ref().map(|t| t.kind),
        Some(farmkey::push::saved::TagKind::HmacSha256)
    );
    assert!(
        plan.files
            .iter()
            .any(|f| f.server == "web03" && f.action == farmkey::push::saved::SavedAction::Write)
    );
    p.send(ENTER);
    p.wait_until("the dialog closed", T, |s| !s.contains("Plan saved"));
    assert!(!audit.exists(), "saving a plan recorded a push");
    // The same name again: refused, the file kept.
    p.send("p");
    p.wait_for("Push to Flowtime", T);
    p.send(ENTER);
    p.wait_for("Confirm push", T);
    save_plan_as(&mut p, "cab-1234.toml");
    p.wait_for("exists already: type another name.", T);
    assert_eq!(farmkey::push::saved::SavedPlan::load(&file).unwrap(), plan);
    p.send(ESC);
    p.wait_for("Confirm push", T);
    p.send(ESC);
    p.wait_until("the push dropped", T, |s| !s.contains("Confirm push"));
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
    assert!(!audit.exists(), "saving a plan recorded a push");
}

/// `p` and `u` under --read-only: refused where actions are dispatched,
/// before any dialog that could lead to a write opens.
#[test]
fn read_only_refuses_a_push_and_a_rollback_where_actions_are_dispatched() {
    use farmkey::push::audit::{AuditAction, AuditLog, AuditRecord, Fingerprints, Outcome};
    let dir = tmp();
    let audit = AuditLog::new(dir.path().join("audit.jsonl"));
    audit
        .append(&AuditRecord {
            time: "2026-11-26T11:20:45Z".into(),
            push_id: "20261126T112045Z-ab12".into(),
            action: AuditAction::Push,
            user: "alice".into(),
            server: "web03".into(),
            site: "Flowtime".into(),
            file: "C:\\inetpub\\Cora\\Flowtime\\web.config".into(),
            sha256_before: None,
            sha256_after: None,
            fingerprints_before: Fingerprints::default(),
            fingerprints_after: Fingerprints::default(),
            backup: None,
            lock: None,
            temporary: Vec::new(),
            outcome: Outcome::Applied,
            message: String::new(),
            plan: None,
        })
        .unwrap();
    let args = [
        "demo",
        "--read-only",
        "--audit",
        audit.path.to_str().unwrap(),
    ];
    let mut p = Pty::farmkey(&args, &[], 100, 30, dir.path());
    p.wait_for("servers 3 ok", T);
    for (screen, key, opened) in [("1", "p", "Push to Flowtime"), ("5", "u", "Roll back push")] {
        p.send(screen);
        if screen == "5" {
            p.wait_for("1 applied", T);
        }
        p.send(key);
        let s = p.wait_for("Read-only", T);
        assert!(!s.contains(opened), "{s}");
        p.send(ENTER);
        p.wait_until("the refusal closed", T, |s| !s.contains("Read-only"));
    }
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
}

#[test]
fn pushing_from_the_console_to_real_servers() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let before: Vec<Vec<u8>> = farm
        .servers
        .iter()
        .map(|s| fs::read(s.file("C:/inetpub/Cora/Flowtime/web.config")).unwrap())
        .collect();
    let mut p = console_on(&farm, &[], 100, 30);
    p.wait_for("servers 3 ok", T);
    p.send("p");
    p.wait_for("Push to Flowtime", T);
    // Third choice: generate SHA1 + AES.
    p.send(DOWN);
    p.send(DOWN);
    let s = p.wait_until("generate selected", T, |s| {
        s.lines().any(|l| l.contains("▶ Generate new keys: SHA1"))
    });
    assert!(s.contains("vendor's choice"));
    p.send(ENTER);
    let s = p.wait_for("Confirm push", T);
    assert_eq!(s.matches("backup").count(), 3, "{s}");
    // The plan is a line taller than the dialog at 100x30: Push acts once
    // its end was shown.
    assert!(s.contains("more line"), "{s}");
    p.send("G");
    p.wait_for("sessions there are lost once", T);
    p.send(RIGHT);
    p.send(ENTER);
    let s = p.wait_for("Push done", T);
    assert_eq!(s.matches("applied and verified").count(), 3, "{s}");
    p.send(ENTER);
    p.wait_until("Flowtime in step", T, |s| s.contains("✓ Flowtime"));
    p.send("q");
    p.wait_exit(T);
    for (i, s) in farm.servers.iter().enumerate() {
        let now = fs::read(s.file("C:/inetpub/Cora/Flowtime/web.config")).unwrap();
        assert_ne!(now, before[i]);
        support::edit_confined(&before[i], &now).unwrap();
    }
}

#[test]
fn a_headless_push_asks_on_the_terminal() {
    let dir = tmp();
    let inv_path = farmkey::demo::lay_out(dir.path()).unwrap();
    let audit = dir.path().join("audit.jsonl");
    let args = [
        "push",
        "--site",
        "Flowtime",
        "--adopt",
        "-i",
        inv_path.to_str().unwrap(),
        "--audit",
        audit.to_str().unwrap(),
    ];
    let mut p = Pty::farmkey(&args, &[], 100, 30, dir.path());
    p.wait_for("[y/N]", T);
    p.send("n\r");
    p.wait_for("Cancelled: nothing was written.", T);
    assert_eq!(p.wait_exit(T), 1);
    let mut p = Pty::farmkey(&args, &[], 100, 30, dir.path());
    p.wait_for("[y/N]", T);
    p.send("y\r");
    p.wait_for("in step on every server of the push", T);
    assert_eq!(p.wait_exit(T), 0);
}

#[test]
fn keys_pasted_into_the_console_are_validated_and_never_shown() {
    let (_dir, _audit, mut p) = demo_with_push_choice();
    p.wait_for("Push to Flowtime", T);
    for _ in 0..4 {
        p.send(DOWN);
    }
    p.wait_until("import selected", T, |s| {
        s.lines().any(|l| l.contains("▶ Import a <machineKey>"))
    });
    p.send(ENTER);
    p.wait_for("Paste the <machineKey> element", T);
    // A bad key first: refused with a reason, no key echoed.
    p.send("\x1b[200~<machineKey validationKey=\"XYZ\" decryptionKey=\"00\" />\x1b[201~");
    p.send(ENTER);
    let s = p.wait_for("These keys cannot be used", T);
    assert!(s.contains("non-hex"), "{s}");
    p.send(ENTER);
    p.send("p");
    p.wait_for("Push to Flowtime", T);
    for _ in 0..4 {
        p.send(DOWN);
    }
    p.send(ENTER);
    p.wait_for("Paste the <machineKey> element", T);
    let v = "0123456789ABCDEF".repeat(8);
    let d = "FEDCBA9876543210".repeat(4);
    p.send(&format!(
        "\x1b[200~<machineKey validationKey=\"{v}\" decryptionKey=\"{d}\" validation=\"HMACSHA256\" decryption=\"AES\" />\x1b[201~"
    ));
    let s = p.wait_for("[key ", T);
    assert!(!s.contains(&v[..32]), "a pasted key is shown: {s}");
    p.send(ENTER);
    let s = p.wait_for("Confirm push", T);
    assert!(s.contains("imported keys (HMACSHA256 + AES)"), "{s}");
    assert!(s.contains(&farmkey::keys::fingerprint(&v)), "{s}");
    p.send(ESC);
    p.wait_until("cancelled", T, |s| !s.contains("Confirm push"));
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
    assert!(!p.output().contains(&v[..32]));
}

#[test]
fn the_test_terminal_shows_only_whole_frames() {
    let mut f = FrameSplitter::default();
    assert_eq!(f.push(b"plain"), b"plain");
    // A frame split anywhere, even inside its markers, shows when it ends.
    let frame = b"\x1b[?2026hAB\x1b[?2026lC";
    let mut shown = Vec::new();
    for (i, b) in frame.iter().enumerate() {
        let out = f.push(&[*b]);
        if i + 1 < frame.len() - 1 {
            assert!(out.is_empty(), "shown early at byte {i}: {out:?}");
        }
        shown.extend(out);
    }
    assert_eq!(shown, b"ABC");
    assert_eq!(f.push(b"\x1b[?2026hhalf"), b"");
    assert_eq!(f.finish(), b"half");
}

/// The console on the demo farm behind sshd, a generated push to Flowtime
/// planned and confirmed, held at `pause` (`swapped:web01`).
struct ConsolePush {
    farm: support::sshd::SshFarm,
    _demo: farmkey::demo::DemoFarm,
    original: Vec<Vec<u8>>,
    pause: support::Pause,
    p: Pty,
}

const FLOWTIME: &str = "C:/inetpub/Cora/Flowtime/web.config";

fn flowtime_files(farm: &support::sshd::SshFarm) -> Vec<Vec<u8>> {
    farm.servers
        .iter()
        .map(|s| fs::read(s.file(FLOWTIME)).unwrap())
        .collect()
}

/// No staged, restore or lock file beside any Flowtime web.config.
fn assert_clean(farm: &support::sshd::SshFarm) {
    for s in &farm.servers {
        let dir = s.file("C:/inetpub/Cora/Flowtime");
        for e in fs::read_dir(&dir).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            assert!(
                !name.contains(".farmkey") || name.ends_with(".farmkey.config"),
                "{}: {name} left behind",
                s.name
            );
        }
    }
}

fn console_push_held(pause: &str) -> ConsolePush {
    let (demo, farm) = demo_over_ssh(Options::default());
    let original = flowtime_files(&farm);
    let pause = support::Pause::new(pause);
    let env = pause.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut p = console_on(&farm, &env, 120, 40);
    p.wait_for("servers 3 ok", T);
    p.send("p");
    p.wait_for("Push to Flowtime", T);
    p.send(DOWN);
    p.send(DOWN);
    p.wait_until("generate selected", T, |s| {
        s.lines().any(|l| l.contains("▶ Generate new keys: SHA1"))
    });
    p.send(ENTER);
    p.wait_for("Confirm push", T);
    p.send(RIGHT);
    p.send(ENTER);
    pause.wait(|| p.ended());
    ConsolePush {
        farm,
        _demo: demo,
        original,
        pause,
        p,
    }
}

#[test]
fn ctrl_c_during_a_console_push_rolls_back_and_the_dialog_says_so() {
    let mut c = console_push_held("swapped:web01");
    let s = c.p.wait_for("Pushing to Flowtime", T);
    assert!(s.contains("Ctrl-C stops the push"), "{s}");
    c.p.send("\x03");
    c.p.wait_for("Interrupting", T);
    c.pause.wait_stopping();
    c.pause.go();
    let s = c.p.wait_for("Push interrupted", T);
    assert!(
        s.contains("web01: rolled back") && s.contains("Flowtime is as it was"),
        "{s}"
    );
    assert_eq!(flowtime_files(&c.farm), c.original);
    assert_clean(&c.farm);
    c.p.send(ENTER);
    c.p.send("q");
    assert_eq!(c.p.wait_exit(T), 0);
}

#[test]
fn sighup_during_a_console_push_rolls_back_before_the_console_ends() {
    let mut c = console_push_held("swapped:web01");
    c.p.wait_for("Pushing to Flowtime", T);
    unsafe { libc::kill(c.p.pid() as i32, libc::SIGHUP) };
    c.p.wait_for("Interrupting", T);
    c.pause.wait_stopping();
    c.pause.go();
    let code = c.p.wait_exit(T);
    assert_eq!(code, 1, "{}", c.p.output());
    let out = c.p.output();
    assert!(
        out.contains("interrupted by SIGHUP") && out.contains("web01 rolled back"),
        "{out}"
    );
    assert!(!c.p.alternate_screen(), "the terminal is restored");
    assert_eq!(flowtime_files(&c.farm), c.original);
    assert_clean(&c.farm);
}

#[test]
fn the_console_shows_why_a_push_is_blocked_and_acts_only_on_request() {
    let (_demo, mut farm) = demo_over_ssh(Options::default());
    farm.server_mut("web03").kill();
    let lock = farm
        .server("web02")
        .file("C:/inetpub/Cora/Flowtime/web.farmkey-lock.config");
    fs::write(&lock, support::STALE_LOCK).unwrap();
    let original = flowtime_files(&farm);
    let mut p = console_on(&farm, &[], 120, 50);
    p.wait_for("servers 2 ok", T);
    // Flowtime looks in step without web03: select it by filtering.
    p.send("/Flowtime");
    p.send(ENTER);
    p.wait_until("Flowtime selected", T, |s| {
        pointed_line(s).contains("Flowtime")
    });
    p.send("p");
    p.wait_for("Push to Flowtime", T);
    p.send(DOWN);
    p.wait_until("generate selected", T, |s| {
        s.lines().any(|l| l.contains("▶ Generate new keys: SHA1"))
    });
    p.send(ENTER);
    // Blocked by the unreachable server (and the lock): nothing written;
    // leaving it out says what that means for its users.
    let s = p.wait_for("blocked: nothing written", T);
    assert!(
        s.contains("web03      CANNOT BE PUSHED") && s.contains("Leaving web03 out"),
        "{s}"
    );
    assert!(s.contains("signed out"), "{s}");
    assert!(s.contains("[ Leave out and plan again ]"), "{s}");
    p.send(RIGHT);
    p.send(ENTER);
    // Still blocked by the lock: its holder and age are shown.
    let s = p.wait_until("the lock", T, |s| {
        s.contains("[ Break the lock and plan again ]")
    });
    assert!(
        s.contains("web02 is locked by push")
            && s.contains("20200101T000000Z-dead of alice on jump9")
            && s.contains("h ago"),
        "{s}"
    );
    assert!(s.contains("web03      left out"), "{s}");
    p.send(RIGHT);
    p.send(ENTER);
    let s = p.wait_for("Confirm push", T);
    assert!(
        s.contains("broken, as asked") && s.contains("web03      left out"),
        "{s}"
    );
    p.send(RIGHT);
    p.send(ENTER);
    let s = p.wait_for("Push done", T);
    assert!(s.contains("web03 (not pushed)"), "{s}");
    p.send(ENTER);
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
    let now = flowtime_files(&farm);
    assert_ne!(now[0], original[0]);
    assert_ne!(now[1], original[1]);
    assert_eq!(now[2], original[2], "web03 left out");
    assert!(!lock.exists(), "the stale lock was broken, ours released");
}

/// The fixture farm whose sites use Microsoft's published sample keys: its
/// own mark in the matrix (and in ASCII), generation offered first, and a
/// disclosed key refused whether pasted or adopted, with the reason.
#[test]
fn disclosed_keys_are_marked_and_never_pushed_from_the_console() {
    let (dir, args) = fixture_copy("disclosed");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = Pty::farmkey(&args, &[], 100, 30, dir.path());
    let s = p.wait_until("the analysis of both servers", T, |s| {
        s.contains("servers 2 ok") && s.contains("☠ 3 disclosed")
    });
    assert!(pointed_line(&s).contains("☠ Flowtime"), "{s}");
    assert_eq!(s.matches("A 03eb02f6 ☠").count(), 2, "{s}");
    assert!(s.contains("disclosed-key Flowtime uses a publicly disclosed machine key"));

    p.send("p");
    let s = p.wait_for("Push to Flowtime", T);
    assert!(
        s.contains("A key of this site is publicly disclosed: generate a new key set."),
        "{s}"
    );
    assert!(
        s.lines()
            .any(|l| l.contains("▶ Generate new keys: SHA1 + AES")),
        "generation first: {s}"
    );
    assert!(
        s.contains("Adopt key set A from web01: refused, its keys are public"),
        "{s}"
    );
    // Import (third) and paste Microsoft's "How To" decryption key.
    p.send(DOWN);
    p.send(DOWN);
    p.wait_until("import selected", T, |s| {
        s.lines().any(|l| l.contains("▶ Import a <machineKey>"))
    });
    p.send(ENTER);
    p.wait_for("Paste the <machineKey> element", T);
    let v = "0123456789ABCDEF".repeat(8);
    let d = "ABAA84D7EC4BB56D75D217CECFFB9628809BDB8BF91CFCD64568A145BE59719F";
    p.send(&format!(
        "\x1b[200~<machineKey validationKey=\"{v}\" decryptionKey=\"{d}\" validation=\"HMACSHA256\" decryption=\"AES\" />\x1b[201~"
    ));
    p.wait_for("[key ", T);
    p.send(ENTER);
    let s = p.wait_for("These keys cannot be used", T);
    assert!(
        s.contains("(the pasted keys): its decryptionKey")
            && s.contains("51ef2ec8 is publicly disclosed"),
        "{s}"
    );
    p.send(ENTER);
    p.wait_until("the dialog closed", T, |s| !s.contains("These keys cannot"));

    // The disclosed set, chosen anyway: the plan refuses it with the reason.
    p.send("p");
    p.wait_for("Push to Flowtime", T);
    for _ in 0..3 {
        p.send(DOWN);
    }
    p.wait_until("the refused adopt selected", T, |s| {
        s.lines()
            .any(|l| l.contains("▶ Adopt key set A from web01: refused"))
    });
    p.send(ENTER);
    let s = p.wait_for("Cannot plan the push", T);
    assert!(s.contains("(adopt set A from web01)"), "{s}");
    p.send(ENTER);
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
    assert!(
        fs::read_to_string(dir.path().join("audit.jsonl"))
            .unwrap_or_default()
            .is_empty()
    );
    let out = p.output();
    assert!(!out.contains(&v[..24]), "the pasted key on the screen");
    support::assert_no_farm_key("disclosed", &out);

    // Without Unicode: the ASCII mark, in the matrix and in the help.
    let mut p = Pty::farmkey(
        &[&args[..], &["--ascii"]].concat(),
        &[],
        100,
        30,
        dir.path(),
    );
    let s = p.wait_until("the ASCII matrix", T, |s| {
        s.contains("servers 2 ok") && s.contains("P 3 disclosed")
    });
    assert!(
        s.contains("P Flowtime") && s.contains("A 03eb02f6 P"),
        "{s}"
    );
    p.send("?");
    p.wait_for("Help: Esc, q or ? closes", T);
    let s = read_help(&mut p);
    assert!(s.contains("P  publicly disclosed key"), "{s}");
    p.send(ESC);
    p.wait_until("the help closed", T, |s| {
        !s.contains("Help: Esc, q or ? closes")
    });
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
}

/// Long enough for a rollback over sshd on a loaded machine; waits end
/// as soon as the screen shows the result.
const LONG: Duration = Duration::from_secs(60);

/// A push from the console to Flowtime on every server (generated keys),
/// its result dialog closed.
fn push_generated_keys(p: &mut Pty) {
    p.send("p");
    p.wait_for("Push to Flowtime", T);
    p.send(DOWN);
    p.send(DOWN);
    p.wait_until("generate selected", T, |s| {
        s.lines().any(|l| l.contains("▶ Generate new keys: SHA1"))
    });
    p.send(ENTER);
    p.wait_for("Confirm push", T);
    p.send(RIGHT);
    p.send(ENTER);
    p.wait_for("Push done", LONG);
    p.send(ENTER);
    p.wait_until("the result closed", T, |s| !s.contains("Push done"));
}

/// Flowtime pushed from the console (generated keys) to web01-03 over
/// sshd, then web02's file written by a deploy.
struct Deployed {
    _demo: farmkey::demo::DemoFarm,
    farm: support::sshd::SshFarm,
    p: Pty,
    /// Each server's file before the push, and as the push left it.
    original: Vec<Vec<u8>>,
    pushed: Vec<Vec<u8>>,
    /// What the deploy wrote on web02.
    theirs: String,
}

fn pushed_then_deployed(cols: u16, rows: u16) -> Deployed {
    let (demo, farm) = demo_over_ssh(Options::default());
    let original = flowtime_files(&farm);
    let mut p = console_on(&farm, &[], cols, rows);
    p.wait_for("servers 3 ok", T);
    push_generated_keys(&mut p);
    let pushed = flowtime_files(&farm);
    assert!(pushed.iter().zip(&original).all(|(a, b)| a != b));
    let theirs = String::from_utf8(pushed[1].clone()).unwrap().replace(
        "</configuration>",
        "<!-- deployed meanwhile --></configuration>",
    );
    fs::write(farm.server("web02").file(FLOWTIME), &theirs).unwrap();
    Deployed {
        _demo: demo,
        farm,
        p,
        original,
        pushed,
        theirs,
    }
}

/// After a rollback: web01 and web03 hold their original bytes again,
/// web02 still holds the deploy's, and no lock or staged file is left.
fn assert_restored_but_web02(farm: &support::sshd::SshFarm, original: &[Vec<u8>], theirs: &str) {
    let now = flowtime_files(farm);
    assert_eq!(now[0], original[0]);
    assert_eq!(now[2], original[2]);
    assert_eq!(
        fs::read_to_string(farm.server("web02").file(FLOWTIME)).unwrap(),
        theirs,
        "the file changed since the push is left alone"
    );
    assert_clean(farm);
}

/// Closes the rollback's result: the history, read again, says where each
/// server now stands (web02 refused, the others rolled back); then quits.
fn close_and_quit_on_web02_refused(p: &mut Pty) {
    p.send(ENTER);
    p.wait_for("2 rolled-back, 1 refused", T);
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
}

#[test]
fn the_history_screen_rolls_a_push_back_and_leaves_a_file_changed_since_alone() {
    let Deployed {
        _demo,
        farm,
        mut p,
        original,
        pushed,
        theirs,
    } = pushed_then_deployed(120, 40);

    p.send("5");
    let s = p.wait_until("the push in the history", T, |s| {
        s.contains("Pushes in") && s.contains("3 applied")
    });
    assert!(
        s.contains("Flowtime") && s.contains("u rolls back web01, web02, web03."),
        "{s}"
    );
    // Enter: server by server.
    p.send(ENTER);
    let s = p.wait_until("the push server by server", T, |s| {
        s.contains(" to Flowtime ") && s.contains("keys after")
    });
    assert!(
        s.contains("web01  applied")
            && s.contains("web03  applied")
            && s.contains("farmkey.config"),
        "{s}"
    );
    p.send(ESC);
    p.wait_for("Pushes in", T);

    // Cancel is the default: nothing is restored.
    p.send("u");
    let s = p.wait_for("Roll back push", T);
    assert!(
        s.contains("[ Cancel ]") && s.contains("web02: C:\\inetpub\\Cora\\Flowtime\\web.config"),
        "{s}"
    );
    p.send(ENTER);
    p.wait_until("the confirmation closed", T, |s| {
        !s.contains("Roll back push")
    });
    assert_eq!(flowtime_files(&farm)[0], pushed[0]);

    p.send("u");
    p.wait_for("Roll back push", T);
    p.send(RIGHT);
    p.send(ENTER);
    let s = p.wait_for("NOT fully rolled back", LONG);
    assert!(
        s.contains("web01        restored and verified")
            && s.contains("web03        restored and verified")
            && s.contains("web02        refused:"),
        "{s}"
    );
    assert_restored_but_web02(&farm, &original, &theirs);
    close_and_quit_on_web02_refused(&mut p);
    let audit = farmkey::push::audit::AuditLog::new(farm.home.path().join("audit.jsonl"));
    let refused: Vec<_> = audit
        .read_all()
        .unwrap()
        .into_iter()
        .filter(|r| r.outcome == farmkey::push::audit::Outcome::Refused)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].server == "web02"
            && refused[0].message.contains("changed since push")
            && refused[0].message.contains("refusing to overwrite it"),
        "{refused:?}"
    );
}

#[test]
fn the_history_screen_finds_a_push_cut_short_and_breaks_its_stale_lock_on_request() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let original = flowtime_files(&farm);
    let audit = farm.home.path().join("audit.jsonl");
    // A headless push killed (SIGKILL: nothing can be honoured) right after
    // web01's swap: only its intent is recorded, its locks stay.
    let pause = support::Pause::new("swapped:web01");
    let mut cmd = farm.farmkey_process();
    cmd.args(farm.push_flowtime_args(&audit))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    pause.set(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    pause.wait(|| child.try_wait().unwrap().is_some());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_ne!(flowtime_files(&farm)[0], original[0]);

    let mut p = console_on(&farm, &[], 120, 40);
    p.wait_for("servers 3 ok", T);
    p.send("5");
    p.wait_for("1 cut short", T);
    p.send("u");
    // The dead push's lock is read before anything is asked: nothing can
    // be rolled back without breaking it, which is offered.
    let s = p.wait_for("Roll back push", T);
    let text = dialog_text(&s, "Roll back push");
    assert!(
        s.contains("the cut-short push changed it)")
            && text.contains("Left alone, locked: web01 is locked by push")
            && text.contains("Nothing can be rolled back now")
            && text.contains("Break the lock only if that push no longer runs")
            && text.ends_with("[ Cancel ] [ Break the lock and roll back ]"),
        "{s}"
    );
    assert_ne!(flowtime_files(&farm)[0], original[0]);
    p.send(RIGHT);
    p.send(ENTER);
    // The result, not the progress (which shows web01's line first).
    let s = p.wait_until("rolled back, the lock broken", LONG, |s| {
        s.contains("restored and verified (broke the stale lock") && s.contains("[ OK ]")
    });
    assert!(s.contains("rolled back: every server it changed"), "{s}");
    assert_eq!(flowtime_files(&farm)[0], original[0]);
    p.send(ENTER);
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
}

/// The text of the dialog whose title holds `title`: its rows inside the
/// frame, words separated by single spaces.
fn dialog_text(screen: &str, title: &str) -> String {
    let rows: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    let at = |y: usize, x: usize| rows[y].get(x).copied().unwrap_or(' ');
    let Some(top) = screen.lines().position(|l| l.contains(title)) else {
        return String::new();
    };
    let start = rows[top]
        .windows(title.chars().count())
        .position(|w| w.iter().copied().eq(title.chars()))
        .unwrap_or(0);
    let left = (0..start).rev().find(|&x| at(top, x) == '┌').unwrap_or(0);
    let right = (start..rows[top].len())
        .find(|&x| at(top, x) == '┐')
        .unwrap_or(rows[top].len());
    let mut words = Vec::new();
    for y in top + 1..rows.len() {
        if at(y, left) == '└' {
            break;
        }
        let row: String = (left + 1..right).map(|x| at(y, x)).collect();
        words.extend(row.split_whitespace().map(str::to_string));
    }
    words.join(" ")
}

/// Two servers refuse a rollback, web02 because its file changed since
/// the push and web03 because a push that ended left its lock: breaking
/// the lock rolls web03 back, and the dialog still says the push is NOT
/// fully rolled back (it used to judge the push on web03 alone and say
/// every server held its original bytes again). At 100x40, where the
/// break-lock warning used to lose its last wrapped line.
#[test]
fn breaking_a_stale_lock_leaves_a_server_refused_before_refused() {
    let Deployed {
        _demo,
        farm,
        mut p,
        original,
        pushed,
        theirs,
    } = pushed_then_deployed(100, 40);
    // A push of this machine that has ended left its lock on web03 (a pid
    // no process can have: the lock is stale whatever runs meanwhile).
    let mut stale = farmkey::push::lock::LockInfo::mine("20261127T151748Z-42b1", "Flowtime");
    stale.pid = u32::MAX;
    fs::write(
        farm.server("web03")
            .file("C:/inetpub/Cora/Flowtime/web.farmkey-lock.config"),
        serde_json::to_vec(&stale).unwrap(),
    )
    .unwrap();

    p.send("5");
    p.wait_until("the push in the history", T, |s| {
        s.contains("Pushes in") && s.contains("3 applied")
    });
    p.send("u");
    // web03's lock is named before anything is asked; the others may be
    // rolled back.
    let s = p.wait_for("Roll back push", T);
    let text = dialog_text(&s, "Roll back push");
    assert!(
        text.contains("Left alone, locked: web03 is locked by push 20261127T151748Z-42b1")
            && text.ends_with("[ Cancel ] [ Roll back ] [ Break the lock and roll back ]"),
        "{s}"
    );
    p.send(RIGHT);
    p.send(ENTER);
    let s = p.wait_for("NOT fully rolled back", LONG);
    let text = dialog_text(&s, "NOT fully rolled back");
    assert!(
        text.contains("web01 restored and verified")
            && text.contains("web02 refused: C:\\inetpub\\Cora\\Flowtime\\web.config changed")
            && text.contains("web03 refused: web03 is locked by push 20261127T151748Z-42b1")
            && text.contains("NOT fully rolled back: 2 server(s) refused."),
        "{s}"
    );
    // The warning's last line, then the buttons.
    assert!(
        text.ends_with(
            "that process is no longer running: the lock is stale. [ OK ] [ Break the lock and roll back again ]"
        ),
        "{s}"
    );
    assert_eq!(flowtime_files(&farm)[2], pushed[2]);

    p.send(RIGHT);
    p.send(ENTER);
    // The result, not the progress (which shows web03's line first).
    let s = p.wait_until("the lock broken and web03 rolled back", LONG, |s| {
        s.contains("(broke the stale lock") && s.contains("[ OK ]")
    });
    let text = dialog_text(&s, "NOT fully rolled back");
    assert!(
        text.contains("web01 restored and verified")
            && text.contains("web02 refused: C:\\inetpub\\Cora\\Flowtime\\web.config changed")
            && text.contains("web03 restored and verified (broke the stale lock")
            && text.ends_with("NOT fully rolled back: 1 server(s) refused. [ OK ]")
            && !s.contains("every server it changed"),
        "{s}"
    );
    assert_restored_but_web02(&farm, &original, &theirs);
    close_and_quit_on_web02_refused(&mut p);
}

/// The Servers screen filtered: the cursor stays on the rows shown, and
/// `R` rescans the server the panel shows.
#[test]
fn the_servers_screen_filtered_rescans_the_server_shown() {
    let dir = tmp();
    let mut p = Pty::farmkey(&["demo"], &[], 100, 30, dir.path());
    p.wait_for("servers 3 ok", T);
    p.send("2");
    p.wait_for("ADDRESS", T);
    p.send("/web03");
    p.send(ENTER);
    p.send(DOWN);
    p.send(DOWN);
    let s = p.wait_until("the filtered list", T, |s| {
        s.contains("/ web03") && !s.contains("web01") && s.contains("web03 via")
    });
    assert!(!s.contains("web02"), "{s}");
    p.send("R");
    // The log, filtered the same way, says which server was rescanned.
    p.send("4");
    let rescanned = |s: &str, server: &str| {
        s.lines().any(|l| {
            l.trim_end_matches(['│', ' '])
                .ends_with(&format!("scanning {server}"))
        })
    };
    let s = p.wait_until("web03 rescanned", T, |s| rescanned(s, "web03"));
    assert!(!rescanned(&s, "web02") && !rescanned(&s, "web01"), "{s}");
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
}

/// A host key accepted once is asked about again by the next connection:
/// the plan's. Its question comes on top of the dialog that waits for the
/// plan (it used to wait behind it, and the plan waited for its answer).
#[test]
fn a_host_key_question_while_planning_comes_on_top_of_the_plan() {
    let (_demo, farm) = demo_over_ssh(Options {
        trust_host_keys: false,
        ..Default::default()
    });
    let mut p = console_on(&farm, &[], 120, 40);
    // "All once" for every host the dialog lists, until `done` shows and no
    // question is left. Questions may join a dialog at any moment (even
    // between the screen read and the keys), so the hosts answered are not
    // counted: each dialog is answered, then the screen must change.
    let listed = |s: &str| -> Vec<&str> {
        farmkey::demo::SERVERS
            .iter()
            .copied()
            .filter(|n| s.contains(&format!("{n} ([127")))
            .collect()
    };
    let open = |s: &str| s.contains("Unknown host key") && !listed(s).is_empty();
    let answer_all_once = |p: &mut Pty, done: &str| loop {
        let s = p.wait_until("a question or the end", LONG, |s| {
            open(s) || s.contains(done)
        });
        if !open(&s) {
            break;
        }
        let asked = listed(&s);
        for key in [LEFT, LEFT, LEFT, LEFT, RIGHT, RIGHT, RIGHT, ENTER] {
            p.send(key);
        }
        p.wait_until("the dialog answered", LONG, |s| {
            !open(s) || listed(s) != asked
        });
    };
    answer_all_once(&mut p, "servers 3 ok");
    p.wait_for("servers 3 ok", LONG);
    p.send("p");
    p.wait_for("Push to Flowtime", T);
    p.send(DOWN);
    p.send(DOWN);
    p.wait_until("generate selected", T, |s| {
        s.lines().any(|l| l.contains("▶ Generate new keys: SHA1"))
    });
    p.send(ENTER);
    answer_all_once(&mut p, "Confirm push");
    let s = p.wait_for("Confirm push", LONG);
    assert!(s.contains("restarts the application"), "{s}");
    p.send(ESC);
    p.wait_until("cancelled", T, |s| !s.contains("Confirm push"));
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
    assert!(
        !farm.known_hosts.exists() || fs::read_to_string(&farm.known_hosts).unwrap().is_empty(),
        "accepted once: nothing stored"
    );
}

/// The audit log turned unwritable after the history was read: the
/// rollback is refused before any server is touched, naming the log, as
/// `farmkey rollback` does (not reported as each server's restore failing).
#[test]
fn a_rollback_without_a_writable_audit_log_is_refused_before_anything() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let mut p = console_on(&farm, &[], 120, 40);
    p.wait_for("servers 3 ok", T);
    push_generated_keys(&mut p);
    let pushed = flowtime_files(&farm);
    p.send("5");
    p.wait_until("the push in the history", T, |s| {
        s.contains("Pushes in") && s.contains("3 applied")
    });
    // A folder where the log was: it can no longer take a record.
    let audit = farm.home.path().join("audit.jsonl");
    fs::rename(&audit, farm.home.path().join("audit.jsonl.moved")).unwrap();
    fs::create_dir(&audit).unwrap();
    p.send("u");
    p.wait_for("Roll back push", T);
    p.send(RIGHT);
    p.send(ENTER);
    let s = p.wait_for("Rollback not started", LONG);
    // The dialog wraps its text: compared without spaces and borders.
    let bare = |t: &str| -> String {
        t.chars()
            .filter(|c| !c.is_whitespace() && *c != '│')
            .collect()
    };
    assert!(
        bare(&s).contains(&bare(&format!("audit log {}", audit.display())))
            && bare(&s).contains(&bare("nothing was attempted"))
            && !s.contains("refused:"),
        "{s}"
    );
    assert_eq!(flowtime_files(&farm), pushed, "no server was touched");
    assert_clean(&farm);
    p.send(ENTER);
    p.wait_until("the refusal closed", T, |s| {
        !s.contains("Rollback not started")
    });
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
}

/// The rows inside the page's panel: between the border below the tabs
/// and the one above the footer.
fn page_rows(screen: &str) -> Vec<String> {
    let lines: Vec<&str> = screen.lines().collect();
    let bottom = lines.iter().rposition(|l| l.starts_with('└')).unwrap_or(0);
    lines
        .get(3..bottom)
        .unwrap_or_default()
        .iter()
        .map(|l| {
            let row = l.trim_end().trim_end_matches('│').trim_start_matches('│');
            row.trim_end().to_string()
        })
        .collect()
}

/// On 80x24 the detail's findings wrap: End reaches the last wrapped line,
/// on the panel's last row, and the scroll follows the terminal's size.
#[test]
fn the_detail_scrolls_to_its_last_wrapped_line_at_any_size() {
    let dir = tmp();
    let mut p = Pty::farmkey(&["demo"], &[], 80, 24, dir.path());
    p.wait_for("servers 3 ok", T);
    p.send(ENTER);
    p.wait_for("Flowtime on every server", T);
    // The last finding's message ends the page.
    let at_end = |s: &str| {
        page_rows(s)
            .last()
            .is_some_and(|r| r.ends_with("Choose one policy for the farm."))
    };
    p.send("G");
    let s = p.wait_until("the end of the detail", T, at_end);
    assert_eq!(page_rows(&s).len(), 24 - 5, "{s}");
    // Taller: the end stays on the last row, no blank space below it.
    p.resize(80, 30);
    p.wait_until("the end on the taller panel", T, |s| {
        page_rows(s).len() == 30 - 5 && at_end(s)
    });
    // Tall enough for the whole page: back at its top.
    p.resize(80, 100);
    p.wait_until("the whole detail", T, |s| {
        page_rows(s)
            .first()
            .is_some_and(|r| r.contains("component Flowtime"))
    });
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
}

/// Idle, the console sends nothing: no frame while nothing changes (it
/// drew ten a second). A key still draws at once, then it is quiet again.
#[test]
fn an_idle_console_writes_nothing() {
    for (cols, rows) in [(80, 24), (60, 16)] {
        let dir = tmp();
        let mut p = Pty::farmkey(&["demo"], &[], cols, rows, dir.path());
        p.wait_for("servers 3 ok", T);
        // Settled: the scans drawn, whatever followed them.
        p.wait_quiet(Duration::from_secs(2), LONG);
        let idle = p.output_len();
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(
            p.output_len(),
            idle,
            "{cols}x{rows}: frames sent while idle"
        );
        p.send("2");
        p.wait_until("the Servers screen", T, |_| p.output_len() > idle);
        p.wait_quiet(Duration::from_secs(2), LONG);
        p.send("q");
        assert_eq!(p.wait_exit(T), 0);
    }
}

/// The line under the servers of a running push follows them: held while
/// web03 verifies, it says so (it stayed on "locking..."). After a
/// rollback, History's server view says the file was rolled back.
#[test]
fn the_push_progress_line_follows_the_servers_and_history_shows_the_rollback() {
    for (cols, rows) in [(80, 24), (60, 16)] {
        let dir = tmp();
        let audit = dir.path().join("audit.jsonl");
        let pause = support::Pause::new("verifying:web03");
        let env = pause.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut p = Pty::farmkey(
            &["demo", "--audit", audit.to_str().unwrap()],
            &env,
            cols,
            rows,
            dir.path(),
        );
        p.wait_for("servers 3 ok", T);
        p.send("p");
        p.wait_for("Push to Flowtime", T);
        // Adopting set A writes web03 alone.
        p.send(ENTER);
        p.wait_for("Confirm push", T);
        // Read to its end (it scrolls on a small terminal), then Push.
        p.send("G");
        p.send(RIGHT);
        p.send(ENTER);
        pause.wait(|| p.ended());
        let s = p.wait_for("web03: verifying the result", LONG);
        assert!(!s.contains("locking"), "{cols}x{rows}:\n{s}");
        pause.go();
        p.wait_for("Push done", LONG);
        p.send(ENTER);
        p.wait_until("the dialog closed", T, |s| !s.contains("Push done"));

        p.send("5");
        // The panel of the push selected (the list's outcome column is
        // cut at 60 columns).
        p.wait_for("u rolls back web03.", T);
        p.send(ENTER);
        let s = p.wait_until("the push server by server", T, |s| {
            s.contains("web03  applied")
        });
        assert!(!s.contains("rolled-back"), "{cols}x{rows}:\n{s}");
        p.send("u");
        p.wait_for("Roll back push", T);
        p.send("G");
        p.send(RIGHT);
        p.send(ENTER);
        p.wait_until("the rollback done", LONG, |s| {
            s.contains("rolled back") && !s.contains("Rolling back")
        });
        p.send(ENTER);
        let s = p.wait_until("the server view after the rollback", LONG, |s| {
            s.contains("web03  rolled-back (applied by the push)")
        });
        assert!(!s.contains("web03  applied"), "{cols}x{rows}:\n{s}");
        p.send("q");
        assert_eq!(p.wait_exit(T), 0);
    }
}

/// A push's result is longer than the Log is wide at 80x24: wrapped, all
/// of it shows; `w` cuts it with a mark, and `→` scrolls to its end.
#[test]
fn the_log_wraps_a_push_result_and_w_toggles_sideways_scrolling() {
    let dir = tmp();
    let audit = dir.path().join("audit.jsonl");
    let mut p = Pty::farmkey(
        &["demo", "--audit", audit.to_str().unwrap()],
        &[],
        80,
        24,
        dir.path(),
    );
    push_flowtime_on_the_demo(&mut p);
    p.send("4");
    // Wrapped: the result's end is on screen, on a row of its own.
    let s = p.wait_until("the push result wrapped", T, |s| {
        s.contains("Log (wrapped") && s.contains("re-read from each server).")
    });
    let line = s
        .lines()
        .find(|l| l.contains("Flowtime is in step on every server"))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(!line.contains(")."), "it does not fit one row: {s}");
    // `w`: one row, cut with a mark; the footer offers wrapping back.
    p.send("w");
    let s = p.wait_until("the push result cut", T, |s| {
        s.contains("Log (cut") && s.contains("w wrap")
    });
    let line = s
        .lines()
        .find(|l| l.contains("Flowtime is in step"))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(line.trim_end_matches([' ', '│']).ends_with('…'), "{s}");
    assert!(!s.contains("re-read from each server)."), "{s}");
    // Sideways to its end: the tail shows, marked where it begins.
    for _ in 0..10 {
        p.send(RIGHT);
    }
    let s = p.wait_until("the end of the push result", T, |s| {
        s.lines().any(|l| l.contains("re-read from each server)."))
    });
    assert!(!s.contains("Flowtime is in step"), "{s}");
    let line = s
        .lines()
        .find(|l| l.contains("re-read from each server)."))
        .unwrap();
    // `│ 11:20:45 ` then the text, its first character the mark.
    assert_eq!(line.chars().nth(11), Some('…'), "{s}");
    p.send("w");
    p.wait_for("Log (wrapped", T);
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
}

/// Several unknown hosts at start: one dialog lists them all with their
/// fingerprints; each is answered in turn or all at once, only after the
/// list was read to its end; the servers' connect time leaves out the time
/// the dialog was open.
#[test]
fn one_dialog_lists_every_unknown_host_key() {
    const HELD: Duration = Duration::from_secs(6);
    for (cols, rows) in [(80, 24), (60, 16)] {
        let (_demo, farm) = demo_over_ssh(Options {
            trust_host_keys: false,
            ..Default::default()
        });
        let mut p = console_on(&farm, &[], cols, rows);
        let s = p.wait_for("Unknown host keys (3)", LONG);
        let asked = std::time::Instant::now();
        if rows >= 24 {
            // Every host with its fingerprint in view.
            let s = p.wait_until("every host listed", T, |s| {
                farmkey::demo::SERVERS
                    .iter()
                    .all(|n| s.contains(&format!("{n} ([127")))
            });
            assert!(s.matches("SHA256:").count() >= 2, "{s}");
        }
        assert!(s.contains("Refuse"), "{s}");
        // Refuse the host marked first (the default button).
        p.send(ENTER);
        let s = p.wait_until("one refused", T, |s| s.contains("refused"));
        assert!(
            s.contains("Unknown host keys (3)"),
            "the dialog stays for the others: {s}"
        );
        // Store all: the button acts once the list was read to its end.
        for key in [RIGHT, RIGHT, RIGHT, RIGHT] {
            p.send(key);
        }
        p.send("G");
        if rows >= 24 {
            // The dialog stays open long enough to tell its time from the
            // servers': their connect time leaves it out.
            p.wait_until("the dialog open for 6s", LONG, |_| asked.elapsed() > HELD);
        }
        p.send(ENTER);
        let s = p.wait_for("servers 2 ok", LONG);
        assert!(s.contains("1 failed"), "{s}");
        assert!(!s.contains("Unknown host key"), "{s}");
        let stored = fs::read_to_string(&farm.known_hosts).unwrap();
        assert_eq!(stored.lines().count(), 2, "{cols}x{rows}: {stored}");
        if rows >= 24 {
            p.send("2");
            let s = p.wait_for("ADDRESS", T);
            for server in farmkey::demo::SERVERS {
                let row = s
                    .lines()
                    .find(|l| l.contains(&format!(" {server}  ")))
                    .unwrap_or_else(|| panic!("{server}: {s}"));
                let time: f64 = row
                    .split_whitespace()
                    .find_map(|w| w.strip_suffix('s')?.parse().ok())
                    .unwrap_or_else(|| panic!("{row}"));
                assert!(
                    time < HELD.as_secs_f64(),
                    "{row}: the dialog's time counted"
                );
            }
        }
        p.send("q");
        assert_eq!(p.wait_exit(T), 0);
    }
}

const F1: &str = "\x1bOP";
const F5: &str = "\x1b[15~";
const F10: &str = "\x1b[21~";

/// A left click at column `x`, row `y` of the screen (0-based), as a
/// terminal with SGR mouse reporting sends it.
fn click(x: u16, y: u16) -> String {
    format!("\x1b[<0;{};{}M\x1b[<0;{};{}m", x + 1, y + 1, x + 1, y + 1)
}

/// The help read from top to bottom, a page at a time (waiting for each
/// page to be drawn), as one text.
fn read_help(p: &mut Pty) -> String {
    p.send("g");
    let mut s = p.wait_until("the help at its top", T, |s| {
        s.contains("Help: Esc, q or ? closes") && !s.contains("↑ more") && !s.contains("^ more")
    });
    let mut all = s.clone();
    while s.contains("more line") {
        let before = s.clone();
        p.send("\x1b[6~"); // PgDn
        s = p.wait_until("the help scrolled a page", T, |s| s != before);
        all.push_str(&s);
    }
    all
}

/// Every key of the table and every mark, in the active symbols, are in
/// the help's text.
fn assert_complete(help: &str, symbols: &farmkey::console::symbols::Symbols, read_only: bool) {
    use farmkey::console::keys;
    for doc in keys::KEYS {
        let first = doc.what.split(' ').next().unwrap();
        let keys = doc.keys_text(symbols);
        // Keys too long for their column are on a line of their own.
        let line = if keys.chars().count() > 13 {
            format!("  {keys}  ")
        } else {
            format!("  {keys:<13} {first}")
        };
        assert_eq!(
            help.contains(&line),
            doc.offered(read_only),
            "{line:?} (read-only {read_only}) in:\n{help}"
        );
    }
    for (mark, what) in keys::marks(symbols) {
        let first = what.split(' ').next().unwrap();
        let line = format!("{mark:<3}{first}");
        assert!(help.contains(&line), "{line:?} not in:\n{help}");
    }
}

#[test]
fn help_lists_every_key_and_mark_scrolls_and_closes_only_on_esc_q_or_question() {
    use farmkey::console::symbols::{ASCII, UNICODE};
    for (cols, rows, ascii) in [(80, 24, false), (60, 16, true), (120, 40, false)] {
        let dir = tmp();
        let args: &[&str] = if ascii {
            &["demo", "--ascii"]
        } else {
            &["demo"]
        };
        let mut p = Pty::farmkey(args, &[], cols, rows, dir.path());
        p.wait_for("servers 3 ok", T);
        p.send("?");
        let s = p.wait_for("Help: Esc, q or ? closes", T);
        assert!(
            s.contains("more line"),
            "the help does not fit: it says so\n{s}"
        );
        // Enter and space do not close it; j scrolls it, which shows that
        // they were read.
        p.send(ENTER);
        p.send(" ");
        p.send("j");
        let up = if ascii { "^ more" } else { "↑ more" };
        p.wait_for(up, T);
        let help = read_help(&mut p);
        assert_complete(&help, if ascii { &ASCII } else { &UNICODE }, false);
        if ascii {
            let odd: String = help.chars().filter(|c| !c.is_ascii()).collect();
            assert!(odd.is_empty(), "--ascii help draws {odd:?}");
        }
        // Esc, q and ? close it (q does not quit then), F1 opens it.
        for close in [ESC, "q", "?"] {
            p.wait_for("Help: Esc, q or ? closes", T);
            p.send(close);
            p.wait_until("the help closed", T, |s| !s.contains("Help: Esc"));
            p.send(F1);
        }
        p.wait_for("Help: Esc, q or ? closes", T);
        p.send(ESC);
        p.wait_until("the help closed", T, |s| !s.contains("Help: Esc"));
        p.send("q");
        assert_eq!(p.wait_exit(T), 0);
    }
}

/// The last line of the screen: the footer.
fn footer(s: &str) -> String {
    s.lines().last().unwrap_or("").to_string()
}

#[test]
fn read_only_offers_neither_push_nor_rollback_in_footer_or_help() {
    use farmkey::console::symbols::UNICODE;
    for (cols, rows) in [(80, 24), (60, 16)] {
        let dir = tmp();
        let mut p = Pty::farmkey(&["demo", "--read-only"], &[], cols, rows, dir.path());
        let s = p.wait_for("servers 3 ok", T);
        assert!(
            footer(&s).contains("v reveal") && !footer(&s).contains("push"),
            "{s}"
        );
        p.send(ENTER);
        let s = p.wait_for("Esc back", T);
        assert!(!footer(&s).contains("push"), "{s}");
        p.send("5");
        let s = p.wait_until("History's footer", T, |s| {
            footer(s).contains("Enter servers")
        });
        assert!(!footer(&s).contains("roll back"), "{s}");
        p.send(F1);
        let help = read_help(&mut p);
        assert_complete(&help, &UNICODE, true);
        assert!(
            help.contains("push and roll back are not offered"),
            "{help}"
        );
        p.send(ESC);
        p.wait_until("the help closed", T, |s| !s.contains("Help: Esc"));
        p.send("q");
        assert_eq!(p.wait_exit(T), 0);
    }
    // Without --read-only both are offered.
    let dir = tmp();
    let mut p = Pty::farmkey(&["demo"], &[], 80, 24, dir.path());
    let s = p.wait_for("servers 3 ok", T);
    assert!(footer(&s).contains("p push"), "{s}");
    p.send("5");
    p.wait_until("History's footer", T, |s| footer(s).contains("u roll back"));
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
}

#[test]
fn f5_rescans_f10_quits_and_the_a_toggle_shows_its_state() {
    for (cols, rows) in [(80, 24), (60, 16)] {
        let dir = tmp();
        let mut p = Pty::farmkey(&["demo"], &[], cols, rows, dir.path());
        p.wait_for("servers 3 ok", T);
        if cols == 80 {
            p.wait_until("the toggle's state", T, |s| footer(s).contains("a Cora"));
            p.send("a");
            p.wait_until("the toggle's new state", T, |s| footer(s).contains("a all"));
            p.send("a");
            p.wait_until("the toggle back", T, |s| footer(s).contains("a Cora"));
        }
        p.send("4");
        let scans = |s: &str| s.matches("scanning web01").count();
        p.wait_until("the first scan in the log", T, |s| scans(s) == 1);
        p.send(F5);
        p.wait_until("a second scan in the log", T, |s| scans(s) == 2);
        p.send(F10);
        assert_eq!(p.wait_exit(T), 0);
    }
}

#[test]
fn esc_goes_back_from_the_detail_to_where_it_was() {
    for (cols, rows) in [(80, 24), (60, 16)] {
        let dir = tmp();
        let mut p = Pty::farmkey(&["demo"], &[], cols, rows, dir.path());
        p.wait_for("servers 3 ok", T);
        p.send(DOWN);
        p.wait_until("pointer on Process TOGO", T, |s| {
            pointed_line(s).contains("Process TOGO")
        });
        p.send(RIGHT);
        p.send(ENTER);
        let s = p.wait_for("Esc back", T);
        // The Detail has nothing to filter: / is not offered, and does
        // nothing (else the Esc below would only close the filter).
        assert!(!footer(&s).contains("filter"), "{s}");
        p.send("/");
        p.send(ESC);
        let s = p.wait_until("the matrix again", T, |s| s.contains("Sites × servers"));
        assert!(pointed_line(&s).contains("Process TOGO"), "{s}");
        p.send("q");
        assert_eq!(p.wait_exit(T), 0);
    }
}

/// Esc goes back more than one level, k9s-style: Findings, Enter (the
/// site on the Matrix), Enter (its Detail), Esc (the Matrix), Esc (the
/// Findings, the same finding selected). (That a number key or Tab starts
/// afresh is tested in console_render: a key sent right after Esc reads as
/// Alt with it.)
#[test]
fn esc_goes_back_through_every_screen_enter_came_from() {
    for (cols, rows) in [(80, 24), (60, 16)] {
        let dir = tmp();
        let mut p = Pty::farmkey(&["demo"], &[], cols, rows, dir.path());
        p.wait_for("servers 3 ok", T);
        p.send("3");
        let first = p.wait_for("Findings (worst first)", T);
        p.send(DOWN); // the DPAPI finding of Process TOGO
        // The selection shows in the "What to do" panel.
        let dpapi = |s: &str| {
            s.contains("Findings (worst first)") && s.contains("Swap WIF's session handler")
        };
        p.wait_until("the second finding selected", T, |s| dpapi(s));
        assert!(!dpapi(&first), "{first}");
        p.send(ENTER);
        p.wait_until("the matrix on Process TOGO", T, |s| {
            s.contains("Sites × servers") && pointed_line(s).contains("Process TOGO")
        });
        p.send(ENTER);
        p.wait_for("Esc back", T);
        p.send(ESC);
        p.wait_until("the matrix again", T, |s| {
            s.contains("Sites × servers") && pointed_line(s).contains("Process TOGO")
        });
        p.send(ESC);
        // The Findings as they were left: the same finding selected.
        p.wait_until("the findings, the second selected", T, |s| dpapi(s));

        p.send("q");
        assert_eq!(p.wait_exit(T), 0);
    }
}

#[test]
fn with_mouse_a_click_shows_a_tab_and_selects_a_row() {
    for (cols, rows) in [(80, 24), (60, 16)] {
        let dir = tmp();
        let mut p = Pty::farmkey(&["demo", "--mouse"], &[], cols, rows, dir.path());
        p.wait_for("servers 3 ok", T);
        // " 1 Matrix   2 Servers   3 Findings ...": the tabs are on row 1.
        p.send(&click(13, 1));
        p.wait_for("ADDRESS", T);
        p.send(&click(26, 1));
        let s = p.wait_for("Findings (worst first)", T);
        if rows == 24 {
            // Border, heading, then the rows: the second is on row 5. The
            // selection shows in the "What to do" panel below.
            let first = s.clone();
            p.send(&click(10, 5));
            let second = p.wait_until("another finding selected", T, |s| *s != first);
            // It is the second row: the top row, then one down, is the same.
            p.send("g");
            p.wait_until("the first finding again", T, |s| *s == first);
            p.send(DOWN);
            p.wait_until("the second finding again", T, |s| *s == second);
        }
        p.send(&click(3, 1));
        let s = p.wait_for("Sites × servers", T);
        assert!(pointed_line(&s).contains("Flowtime"), "{s}");
        // The Matrix's third site: border, heading, then the rows.
        p.send(&click(5, 6));
        p.wait_until("the third site selected", T, |s| {
            pointed_line(s).contains("Sequence Administration")
        });
        p.send("q");
        assert_eq!(p.wait_exit(T), 0);
    }
}

/// Whether `a` first shows above `b` on the screen.
fn above(s: &str, a: &str, b: &str) -> bool {
    match (s.find(a), s.find(b)) {
        (Some(x), Some(y)) => x < y,
        _ => false,
    }
}

#[test]
fn s_sorts_tables_by_the_next_column_and_shift_s_reverses() {
    for (cols, rows) in [(80, 24), (60, 16)] {
        let dir = tmp();
        let mut p = Pty::farmkey(&["demo"], &[], cols, rows, dir.path());
        let s = p.wait_for("servers 3 ok", T);
        assert!(above(&s, "Flowtime", "Process TOGO"), "{s}");
        // Matrix: reversed, the cursor stays on its site.
        p.send("S");
        let s = p.wait_for("servers (reversed)", T);
        assert!(
            above(&s, "Sequence Admin", "Process TOGO") && above(&s, "Process TOGO", "≠ Flowtime"),
            "{s}"
        );
        assert!(pointed_line(&s).contains("Flowtime"), "{s}");
        p.send("s");
        p.wait_for("servers (by name, reversed)", T);
        p.send("S");
        let s = p.wait_for("servers (by name)", T);
        assert!(above(&s, "Flowtime", "Process TOGO"), "{s}");
        // Servers: the inventory's order, reversed.
        p.send("2");
        let s = p.wait_for("ADDRESS", T);
        assert!(above(&s, "web01", "web03"), "{s}");
        p.send("S");
        let s = p.wait_for("Servers (reversed)", T);
        assert!(
            above(&s, "web03", "web02") && above(&s, "web02", "web01"),
            "{s}"
        );
        p.send("s");
        p.wait_for("Servers (by name, reversed)", T);
        // Findings: worst first, least first, then by code.
        p.send("3");
        p.wait_for("Findings (worst first)", T);
        p.send("S");
        p.wait_for("Findings (least first)", T);
        p.send("s");
        p.wait_for("Findings (by code, reversed)", T);
        p.send("q");
        assert_eq!(p.wait_exit(T), 0);
    }
}

/// History's `b`: the backups beside the selected push's site on every
/// server, read by a worker, with `farmkey backups`' columns: the push
/// that made each, the one its rollback needs; `b` goes back.
#[test]
fn the_history_screen_lists_the_backups_of_the_selected_site() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let audit = farm.home.path().join("audit.jsonl");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let out = farm
            .farmkey()
            .args(farm.push_flowtime_args(&audit))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.code(), Some(0), "{text}");
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("Push "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_string();
        ids.push(id);
    }
    let mut p = console_on(&farm, &[], 200, 40);
    p.wait_for("servers 3 ok", T);
    p.send("5");
    p.wait_for("Pushes in", T);
    p.send("b");
    let s = p.wait_until("the backups of Flowtime", T, |s| {
        s.contains("Backups of Flowtime") && s.matches(".farmkey.config").count() == 6
    });
    assert!(
        s.contains("MADE BY")
            && s.contains("ROLLBACK")
            && s.matches(&format!("needed by push {}", ids[1])).count() == 3
            && s.matches(&format!("{}  not needed", ids[0])).count() == 3,
        "{s}"
    );
    p.send("b");
    p.wait_until("back to the pushes", T, |s| {
        s.contains("Pushes in") && !s.contains("Backups of")
    });
    p.send("q");
    assert_eq!(p.wait_exit(T), 0);
}
