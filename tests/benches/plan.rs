//! Large and hostile configuration files: the time to scan and to plan a
//! push when `web.config` is one long line of many elements (planning was
//! quadratic in the elements of a line), and what a file above the size
//! cap costs (it is refused from its size, never read). Run with
//! `cargo bench --bench plan [-- --runs 5]`.

use farmkey::analysis::{Selection, analyze};
use farmkey::farm::scan_all;
use farmkey::inventory::Inventory;
use farmkey::keys::{Decryption, Validation};
use farmkey::push::diff::masked_diff;
use farmkey::push::{KeySource, PushRequest, Sessions, build_plan};
use farmkey::transport::ConnectOptions;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const APPHOST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<configuration><system.applicationHost><applicationPools><add name="Cora" managedRuntimeVersion="v4.0" /></applicationPools>
<sites><site name="Flowtime" id="2"><application path="/" applicationPool="Cora"><virtualDirectory path="/" physicalPath="C:\inetpub\Flowtime" /></application></site></sites></system.applicationHost></configuration>"#;

/// One server whose Flowtime web.config is `bytes` long on a single line:
/// `<add>` elements, then the `<machineKey>` the push edits.
fn lay_out(dir: &Path, bytes: usize) -> (PathBuf, usize) {
    let root = dir.join("web01");
    let put = |rel: &str, text: &[u8]| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    put(
        "C:/Windows/System32/inetsrv/config/applicationHost.config",
        APPHOST.as_bytes(),
    );
    for f in ["machine.config", "web.config"] {
        put(
            &format!("C:/Windows/Microsoft.NET/Framework64/v4.0.30319/Config/{f}"),
            b"<configuration><system.web/></configuration>",
        );
    }
    let keys = farmkey::keys::KeySet::generate(Validation::Sha1, Decryption::Aes).unwrap();
    let tail = format!(
        "</appSettings><system.web>{}</system.web></configuration>",
        keys.to_xml_element()
    );
    let mut text = String::from("<configuration><appSettings>");
    let mut elements = 0;
    while text.len() + tail.len() < bytes {
        text.push_str(&format!("<add key=\"k{elements}\" value=\"v\"/>"));
        elements += 1;
    }
    text.push_str(&tail);
    put("C:/inetpub/Flowtime/web.config", text.as_bytes());
    let inv = dir.join("farmkey.toml");
    fs::write(
        &inv,
        "[[servers]]\nname = \"web01\"\nlocal_root = \"web01\"\n",
    )
    .unwrap();
    (inv, elements)
}

/// CPU time of this thread: what the work costs, whatever else the
/// machine runs.
fn cpu() -> Duration {
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn one_line(bytes: usize, runs: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (inv_path, elements) = lay_out(dir.path(), bytes);
    let inv = Inventory::load(&inv_path).unwrap();
    let all = Selection {
        all_sites: true,
        sites: vec![],
        ..Default::default()
    };
    let (mut scan, mut plan, mut diff) = (Vec::new(), Vec::new(), Vec::new());
    let (mut plan_cpu, mut diff_cpu) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let report = analyze(&scan_all(&inv.servers, ConnectOptions::default(), 1), &all);
        scan.push(t.elapsed());
        let request = PushRequest::new(
            "Flowtime",
            KeySource::Generate {
                validation: Validation::HmacSha256,
                decryption: Decryption::Aes,
            },
        );
        let mut sessions = Sessions::new(inv.servers.clone(), ConnectOptions::default());
        let (t, c) = (Instant::now(), cpu());
        let p = build_plan(&request, &report, &mut sessions).unwrap();
        plan.push(t.elapsed());
        plan_cpu.push(cpu() - c);
        assert_eq!(p.writes(), 1, "{p}");
        let s = &p.servers[0];
        let (t, c) = (Instant::now(), cpu());
        let d = masked_diff(
            "web01",
            s.original.as_deref().unwrap(),
            s.edited.as_deref().unwrap(),
        );
        diff.push(t.elapsed());
        diff_cpu.push(cpu() - c);
        assert!(d.contains("[key "));
    }
    println!(
        "one-line web.config, {:.2} MB, {elements} elements: scan {:.1} ms, plan {:.1} ms (CPU {:.1} ms), masked diff {:.1} ms (CPU {:.1} ms) (median of {runs})",
        bytes as f64 / 1e6,
        median(scan),
        median(plan),
        median(plan_cpu),
        median(diff),
        median(diff_cpu)
    );
}

/// A file far above the cap: refused from its size; the scan's time and
/// peak RSS show it is never read.
fn over_cap(bytes: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (inv_path, _) = lay_out(dir.path(), 1000);
    let web = dir.path().join("web01/C:/inetpub/Flowtime/web.config");
    // Sparse: the disk holds almost nothing, the size says `bytes`.
    fs::OpenOptions::new()
        .write(true)
        .open(&web)
        .unwrap()
        .set_len(bytes)
        .unwrap();
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_farmkey"))
        .args(["scan", "--format", "json", "-i"])
        .arg(&inv_path)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let took = t.elapsed();
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(json.contains("max_config_bytes"), "{json}");
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid rusage for the call to fill.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    println!(
        "web.config of {} MB (above the 16 MiB cap): `farmkey scan` {:.0} ms, peak RSS {:.1} MiB, reported unreadable with its size",
        bytes / 1_000_000,
        took.as_secs_f64() * 1e3,
        usage.ru_maxrss as f64 / 1024.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    // First, while this process is small: a child's peak RSS counts what
    // it shared with its parent before it started farmkey.
    over_cap(226_000_000);
    for bytes in [660_000, 5_000_000, 16_000_000] {
        one_line(bytes, runs);
    }
}
