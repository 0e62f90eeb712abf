//! The console at scale: frame times of the matrix and the detail view for
//! 200 servers x 30 sites, the cost of a filter keystroke, and the peak RSS
//! of `farmkey scan` over such a farm (local folders, or real sshd servers
//! with `--ssh`). Run with `cargo bench --bench console [-- --ssh]`.

#[path = "../support/mod.rs"]
mod support;

use farmkey::console::app::{App, Msg};
use farmkey::console::symbols;
use farmkey::console::theme::Theme;
use farmkey::console::view;
use farmkey::farm::{ScanEvent, scan_all};
use farmkey::inventory::Inventory;
use farmkey::keys::{Decryption, KeySet, Validation};
use farmkey::transport::ConnectOptions;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERVERS: usize = 200;
const SITES: usize = 30;

fn apphost(sites: usize) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<configuration>\r\n  <system.applicationHost>\r\n    <applicationPools>\r\n      <add name=\"Cora\" managedRuntimeVersion=\"v4.0\" />\r\n    </applicationPools>\r\n    <sites>\r\n",
    );
    for i in 0..sites {
        s.push_str(&format!(
            "      <site name=\"Flowtime {i:02}\" id=\"{}\">\r\n        <application path=\"/\" applicationPool=\"Cora\">\r\n          <virtualDirectory path=\"/\" physicalPath=\"%SystemDrive%\\inetpub\\Flowtime{i:02}\" />\r\n        </application>\r\n      </site>\r\n",
            i + 2
        ));
    }
    s.push_str("    </sites>\r\n  </system.applicationHost>\r\n</configuration>\r\n");
    s
}

/// A farm where most servers share a site's key set and a few drift.
fn lay_out(dir: &Path, servers: usize) -> PathBuf {
    let sets: Vec<Vec<KeySet>> = (0..SITES)
        .map(|_| {
            (0..3)
                .map(|_| KeySet::generate(Validation::HmacSha256, Decryption::Aes).unwrap())
                .collect()
        })
        .collect();
    let host = apphost(SITES);
    let mut inv = String::new();
    for s in 0..servers {
        let root = dir.join(format!("s{s:03}"));
        let cfg = root.join("C:/Windows/System32/inetsrv/config");
        fs::create_dir_all(&cfg).unwrap();
        fs::write(cfg.join("applicationHost.config"), &host).unwrap();
        let fw = root.join("C:/Windows/Microsoft.NET/Framework64/v4.0.30319/Config");
        fs::create_dir_all(&fw).unwrap();
        fs::write(
            fw.join("machine.config"),
            "<configuration><system.web/></configuration>",
        )
        .unwrap();
        fs::write(
            fw.join("web.config"),
            "<configuration><system.web/></configuration>",
        )
        .unwrap();
        for (i, site_sets) in sets.iter().enumerate() {
            let set = &site_sets[if (s + i) % 17 == 0 { 1 + s % 2 } else { 0 }];
            let site = root.join(format!("C:/inetpub/Flowtime{i:02}"));
            fs::create_dir_all(&site).unwrap();
            fs::write(
                site.join("web.config"),
                format!(
                    "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<configuration>\r\n  <system.web>\r\n    <httpRuntime targetFramework=\"4.8\" />\r\n    {}\r\n  </system.web>\r\n</configuration>\r\n",
                    set.to_xml_element()
                ),
            )
            .unwrap();
        }
        inv.push_str(&format!(
            "[[servers]]\nname = \"web{s:03}\"\nlocal_root = \"s{s:03}\"\n\n"
        ));
    }
    let path = dir.join("farmkey.toml");
    fs::write(&path, inv).unwrap();
    path
}

fn frame_time(app: &App, terminal: &mut Terminal<TestBackend>, frames: usize) -> Duration {
    let mut times: Vec<Duration> = (0..frames)
        .map(|_| {
            let t = Instant::now();
            terminal.draw(|f| view::draw(f, app)).unwrap();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn key(app: &mut App, code: KeyCode) {
    app.update(Msg::Input(Event::Key(KeyEvent::new(
        code,
        KeyModifiers::NONE,
    ))));
}

/// Peak RSS of a child process, from the kernel's account of children.
fn peak_rss_of(cmd: &mut Command) -> (u64, Duration) {
    let start = Instant::now();
    let status = cmd.stdout(Stdio::null()).status().unwrap();
    let took = start.elapsed();
    assert!(
        status.code().is_some_and(|c| c <= 1),
        "scan failed: {status}"
    );
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid rusage for the call to fill.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    (usage.ru_maxrss as u64, took)
}

fn main() {
    let ssh = std::env::args().any(|a| a == "--ssh");
    let dir = tempfile::tempdir().unwrap();
    let inv_path = lay_out(dir.path(), SERVERS);
    let inv = Inventory::load(&inv_path).unwrap();

    let t = Instant::now();
    let scans = scan_all(&inv.servers, ConnectOptions::default(), 16);
    println!(
        "scan of {SERVERS} local servers x {SITES} sites: {:.0} ms (in process)",
        t.elapsed().as_secs_f64() * 1e3
    );
    let mut app = App::new(
        "bench".into(),
        inv.servers.clone(),
        Theme::built_in("default", true).unwrap(),
        symbols::UNICODE,
        false,
    );
    app.start();
    let t = Instant::now();
    for (index, scan) in scans.into_iter().enumerate() {
        app.update(Msg::Scan {
            generation: 1,
            event: ScanEvent::Finished {
                index,
                scan: Box::new(scan),
            },
        });
    }
    app.settle();
    println!(
        "{SERVERS} results into the console, then one analysis: {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let drifting = app
        .data
        .report
        .sites
        .iter()
        .filter(|s| s.consistent() != Some(true))
        .count();
    assert_eq!(app.data.report.sites.len(), SITES);

    for (w, h) in [(80u16, 24u16), (200, 60)] {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        let matrix = frame_time(&app, &mut term, 300);
        key(&mut app, KeyCode::Right);
        key(&mut app, KeyCode::Enter);
        let detail = frame_time(&app, &mut term, 300);
        key(&mut app, KeyCode::Esc);
        key(&mut app, KeyCode::Left);
        // A filter keystroke: update and the frame after it.
        let t = Instant::now();
        for c in ["/", "1", "7"] {
            key(&mut app, KeyCode::Char(c.chars().next().unwrap()));
            term.draw(|f| view::draw(f, &app)).unwrap();
        }
        let filter = t.elapsed() / 3;
        key(&mut app, KeyCode::Esc);
        key(&mut app, KeyCode::Esc);
        // Scrolling down the whole matrix.
        let t = Instant::now();
        for _ in 0..SITES {
            key(&mut app, KeyCode::Down);
            term.draw(|f| view::draw(f, &app)).unwrap();
        }
        let scroll = t.elapsed() / SITES as u32;
        key(&mut app, KeyCode::Char('g'));
        println!(
            "{w}x{h}: matrix frame {:.3} ms, detail frame {:.3} ms, filter key+frame {:.3} ms, scroll key+frame {:.3} ms ({drifting} of {SITES} sites drifting)",
            matrix.as_secs_f64() * 1e3,
            detail.as_secs_f64() * 1e3,
            filter.as_secs_f64() * 1e3,
            scroll.as_secs_f64() * 1e3
        );
    }

    let bin = env!("CARGO_BIN_EXE_farmkey");
    let (rss, took) = peak_rss_of(
        Command::new(bin)
            .args(["scan", "--format", "json", "-i"])
            .arg(&inv_path),
    );
    println!(
        "peak RSS of `farmkey scan --format json` over {SERVERS} local servers: {:.1} MiB ({:.0} ms)",
        rss as f64 / 1024.0,
        took.as_secs_f64() * 1e3
    );

    if ssh {
        support::sshd::require_sshd();
        let trees: Vec<(String, PathBuf)> = inv
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), dir.path().join(format!("s{i:03}"))))
            .collect();
        let farm = support::sshd::SshFarm::start(&trees, support::sshd::Options::default());
        let ssh_inv = farm.inventory("");
        let (rss, took) = peak_rss_of(
            Command::new(bin)
                .args([
                    "scan",
                    "--format",
                    "json",
                    "--batch",
                    "--ssh-config",
                    "/nonexistent",
                    "-i",
                ])
                .arg(&ssh_inv)
                .env("HOME", farm.home.path())
                .env_remove("SSH_AUTH_SOCK"),
        );
        println!(
            "peak RSS of `farmkey scan --format json` over {SERVERS} sshd servers ({} at once, the default --jobs): {:.1} MiB ({:.0} ms)",
            farmkey::farm::DEFAULT_JOBS,
            rss as f64 / 1024.0,
            took.as_secs_f64() * 1e3
        );
    }
}
