//! farmkey as an installed ops tool: shell completions and manual pages
//! generated from the command definitions, options only where they apply,
//! and the inventory found where operators keep it.

mod support;

use assert_cmd::Command;
use predicates::prelude::*;
use std::fs;
use std::path::Path;
use support::*;

fn farmkey() -> Command {
    let mut cmd = Command::cargo_bin("farmkey").unwrap();
    cmd.env_remove("SSH_AUTH_SOCK")
        .env_remove("FARMKEY_INVENTORY")
        .env_remove("XDG_CONFIG_HOME");
    cmd
}

fn stdout_of(args: &[&str]) -> String {
    let out = farmkey().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What bash completes after `words` (the last one being completed), with
/// the script farmkey generated loaded.
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    let words_list: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\n_farmkey farmkey '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        words_list.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(program)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn completions_are_generated_for_every_shell_and_complete_what_applies() {
    let expected = [
        ("bash", "complete -F _farmkey"),
        ("zsh", "#compdef farmkey"),
        ("fish", "complete -c farmkey"),
        (
            "powershell",
            "Register-ArgumentCompleter -Native -CommandName 'farmkey'",
        ),
    ];
    for (shell, marker) in expected {
        let script = stdout_of(&["completions", shell]);
        assert!(script.contains(marker), "{shell}: {script}");
        for word in [
            "scan",
            "push",
            "import-ssh-config",
            "inventory",
            "accept-new",
        ] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("farmkey.bash");
    fs::write(&script, stdout_of(&["completions", "bash"])).unwrap();
    assert!(bash_completes(&script, &["farmkey", "pu"]).contains(&"push".to_string()));
    let scan = bash_completes(&script, &["farmkey", "scan", "--"]);
    assert!(scan.contains(&"--inventory".to_string()), "{scan:?}");
    for console_only in ["--theme", "--mouse", "--ascii", "--log", "--read-only"] {
        assert!(!scan.contains(&console_only.to_string()), "{scan:?}");
    }
    let console = bash_completes(&script, &["farmkey", "--"]);
    assert!(console.contains(&"--theme".to_string()), "{console:?}");
    farmkey().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn manual_pages_are_generated_for_the_tool_and_each_command() {
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH farmkey 1"), "{page}");
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH OPTIONS",
        ".SH SUBCOMMANDS",
        ".SH EXTRA",
        ".SH \"CONSOLE KEYS\"",
        ".SH \"EXIT STATUS\"",
    ] {
        assert!(page.contains(section), "{section}: {page}");
    }
    // The console's keys, from its key table, and every exit code.
    assert!(page.contains("\\fB? F1\\fR (everywhere)"), "{page}");
    assert!(page.contains(".TP\n\\fB3\\fR\npush"), "{page}");
    assert!(page.contains("farmkey\\-scan(1)"), "{page}");
    assert!(page.contains("FARMKEY_INVENTORY"), "{page}");

    let dir = tempfile::tempdir().unwrap();
    farmkey()
        .arg("man")
        .arg("--dir")
        .arg(dir.path())
        .assert()
        .code(0);
    let mut pages: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for name in [
        "farmkey.1",
        "farmkey-scan.1",
        "farmkey-push.1",
        "farmkey-rollback.1",
        "farmkey-completions.1",
    ] {
        assert!(pages.contains(&name.to_string()), "{pages:?}");
    }
    let main = fs::read_to_string(dir.path().join("farmkey.1")).unwrap();
    assert_eq!(main, page, "farmkey.1 is the page `farmkey man` prints");
    let scan = fs::read_to_string(dir.path().join("farmkey-scan.1")).unwrap();
    assert!(
        scan.contains("\\-\\-inventory") && scan.contains("\\-\\-accept\\-new"),
        "{scan}"
    );
    assert!(
        !scan.contains("\\-\\-theme") && !scan.contains("\\-\\-log"),
        "{scan}"
    );
    farmkey()
        .args(["man", "--dir", "/nonexistent/man1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/man1"));
}

#[test]
fn options_are_offered_and_accepted_only_where_they_apply() {
    let inv = farm_fixture("consistent").join("farmkey.toml");
    let inv = inv.to_str().unwrap();
    let console_only: [&[&str]; 5] = [
        &["--theme", "nord"],
        &["--mouse"],
        &["--ascii"],
        &["--read-only"],
        &["--log", "LOG"],
    ];
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("session.log");
    for command in [
        vec!["scan", "-i", inv],
        vec![
            "push",
            "-i",
            inv,
            "--site",
            "Flowtime",
            "--generate",
            "--dry-run",
        ],
    ] {
        let help = stdout_of(&[command[0], "--help"]);
        assert!(
            help.contains("--inventory") && help.contains("--batch"),
            "{help}"
        );
        for option in console_only {
            assert!(
                !help.contains(option[0]),
                "{} --help lists {}",
                command[0],
                option[0]
            );
            let option: Vec<&str> = option
                .iter()
                .map(|o| {
                    if *o == "LOG" {
                        log.to_str().unwrap()
                    } else {
                        o
                    }
                })
                .collect();
            // Refused by the parser, before anything runs: --log on scan and
            // push is never silently ignored, and no log file appears.
            farmkey()
                .args(&command)
                .args(&option)
                .assert()
                .code(2)
                .stderr(predicate::str::contains(format!(
                    "unexpected argument '{}'",
                    option[0]
                )));
            // Nor before the command name, where the console would take
            // them: read as if after it, they are refused the same way.
            farmkey()
                .args(&option)
                .args(&command)
                .assert()
                .code(2)
                .stderr(predicate::str::contains(format!(
                    "unexpected argument '{}'",
                    option[0]
                )));
        }
    }
    assert!(!log.exists());
    // The console and the demo take them.
    let console = stdout_of(&["--help"]);
    let demo = stdout_of(&["demo", "--help"]);
    for option in [
        "--theme",
        "--mouse",
        "--ascii",
        "--read-only",
        "--log",
        "--audit",
    ] {
        assert!(
            console.contains(option) && demo.contains(option),
            "{option}"
        );
    }
    // Commands list only their own.
    let history = stdout_of(&["history", "--help"]);
    assert!(
        history.contains("--audit")
            && !history.contains("--inventory")
            && !history.contains("--batch")
    );
    let import = stdout_of(&["import-ssh-config", "--help"]);
    assert!(import.contains("--ssh-config") && !import.contains("--inventory"));
    let rollback = stdout_of(&["rollback", "--help"]);
    assert!(rollback.contains("--inventory") && !rollback.contains("--jobs"));
    let keygen = stdout_of(&["keygen", "--help"]);
    assert!(!keygen.contains("--inventory") && !keygen.contains("--batch"));
}

/// An inventory of one local server, named after where it was found.
fn inventory_named(path: &Path, name: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let root = farm_fixture("consistent").join("web01");
    fs::write(
        path,
        format!(
            "[[servers]]\nname = \"{name}\"\nlocal_root = \"{}\"\n",
            root.display()
        ),
    )
    .unwrap();
}

#[test]
fn the_inventory_is_looked_for_where_operators_keep_it() {
    let home = tempfile::tempdir().unwrap();
    let work = home.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let xdg = home.path().join("xdg");
    let scan = |env: &[(&str, &Path)], args: &[&str]| {
        let mut cmd = farmkey();
        cmd.current_dir(&work).env("HOME", home.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(["scan", "--format", "json"])
            .args(args)
            .output()
            .unwrap()
    };
    let found = |env: &[(&str, &Path)], args: &[&str]| -> String {
        let out = scan(env, args);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        json["servers"][0]["name"].as_str().unwrap().to_string()
    };

    // Nowhere: the error lists where it looked and what to do.
    let out = scan(&[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let default_config = home.path().join(".config/farmkey/farmkey.toml");
    for place in [
        "./farmkey.toml",
        "$FARMKEY_INVENTORY (not set)",
        &default_config.display().to_string(),
        "farmkey import-ssh-config",
        "farmkey demo",
        "--inventory FILE",
    ] {
        assert!(err.contains(place), "{place}: {err}");
    }
    // $FARMKEY_INVENTORY naming no file is an error, never a fall through
    // to another inventory (the one in ~/.config, or ./farmkey.toml, which
    // comes first in the order).
    let named = home.path().join("named.toml");
    inventory_named(&default_config, "from-home-config");
    inventory_named(&work.join("farmkey.toml"), "from-cwd");
    let out = scan(&[("FARMKEY_INVENTORY", &named)], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "$FARMKEY_INVENTORY names {}, which is not a file",
            named.display()
        )),
        "{err}"
    );
    fs::remove_file(work.join("farmkey.toml")).unwrap();

    // ~/.config when XDG_CONFIG_HOME is not set, then XDG_CONFIG_HOME,
    // then $FARMKEY_INVENTORY, then ./farmkey.toml, then --inventory.
    inventory_named(&default_config, "from-home-config");
    assert_eq!(found(&[], &[]), "from-home-config");
    inventory_named(&xdg.join("farmkey/farmkey.toml"), "from-xdg");
    assert_eq!(found(&[("XDG_CONFIG_HOME", &xdg)], &[]), "from-xdg");
    inventory_named(&named, "from-env");
    let env: &[(&str, &Path)] = &[("XDG_CONFIG_HOME", &xdg), ("FARMKEY_INVENTORY", &named)];
    assert_eq!(found(env, &[]), "from-env");
    inventory_named(&work.join("farmkey.toml"), "from-cwd");
    assert_eq!(found(env, &[]), "from-cwd");
    let given = home.path().join("given.toml");
    inventory_named(&given, "given");
    assert_eq!(found(env, &["-i", given.to_str().unwrap()]), "given");
    // A given file that does not exist is an error, not a search.
    farmkey()
        .current_dir(&work)
        .args(["scan", "-i", "/nonexistent/farmkey.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "/nonexistent/farmkey.toml: cannot read the inventory",
        ));
}
