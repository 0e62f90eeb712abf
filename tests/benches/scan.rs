//! Scan speed: `farmkey scan` against N real sshd servers behind delaying
//! proxies, side by side with OpenSSH's own `sftp` fetching the same files
//! from every server in parallel; then the same through a bastion (the
//! delay between the client and the bastion, the servers next to it),
//! against `sftp -J`. Beside each farmkey time, farmkey's own CPU time
//! per server (user + system, from `wait4`; see README "Performance").
//! Run with `cargo bench --bench scan` (as root, like the
//! tests). Options: `--sizes 1,4,16,64 --delays 0,20 --bastion-sizes 1,16,64`
//! (`--jump-sessions K` bounds the sessions to the bastion).

#[path = "../support/mod.rs"]
mod support;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::proxy::DelayProxy;
use support::sshd::{Options, SshFarm, SshServer, USER};

/// The files a scan of a demo server reads.
const FILES: &[&str] = &[
    "/C:/Windows/System32/inetsrv/config/applicationHost.config",
    "/C:/Windows/Microsoft.NET/Framework64/v4.0.30319/Config/machine.config",
    "/C:/Windows/Microsoft.NET/Framework64/v4.0.30319/Config/web.config",
    "/C:/Windows/Microsoft.NET/Framework/v4.0.30319/Config/machine.config",
    "/C:/Windows/Microsoft.NET/Framework/v4.0.30319/Config/web.config",
    "/C:/inetpub/wwwroot/web.config",
    "/C:/inetpub/Cora/Flowtime/web.config",
    "/D:/Cora/Administration/web.config",
    "/C:/Program Files/PNMsoft/Process TOGO/web.config",
];

/// Round trips a scan of one server needs at the very least: TCP (1), SSH
/// banners (1), key exchange (2), service request (1), authentication (2),
/// channel, subsystem and SFTP init (3), then applicationHost.config opened
/// and read (2), then every other file opened and read at once (2).
const FLOOR_ROUND_TRIPS: u32 = 14;

/// Through a bastion: its session first (TCP, banners, key exchange,
/// service, authentication: 7), then per server a channel instead of TCP
/// and the 13 round trips that follow it.
const BASTION_FLOOR_ROUND_TRIPS: u32 = 7 + 1 + 13;

fn arg_list(name: &str, default: &[u64]) -> Vec<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

struct Farm {
    _demo: tempfile::TempDir,
    ssh: SshFarm,
    /// One per server, or one in front of the bastion.
    proxies: Vec<DelayProxy>,
    /// Where the client dials each server.
    ports: Vec<u16>,
    bastion: Option<SshServer>,
    inventory: PathBuf,
    /// An OpenSSH client configuration for the sftp baseline (passed on
    /// to the ssh that `-J` starts for the bastion).
    ssh_config: PathBuf,
}

impl Farm {
    /// `-J user@127.0.0.1:port` for sftp, when through a bastion.
    fn jump(&self) -> Option<String> {
        self.bastion
            .as_ref()
            .map(|_| format!("{USER}@127.0.0.1:{}", self.proxies[0].port))
    }
}

fn build(n: usize, delay: Duration, through_bastion: bool) -> Farm {
    let demo = tempfile::tempdir().unwrap();
    farmkey::demo::lay_out(demo.path()).unwrap();
    let trees: Vec<(String, PathBuf)> = (0..n)
        .map(|i| {
            (
                format!("web{:02}", i + 1),
                demo.path().join(farmkey::demo::SERVERS[i % 3]),
            )
        })
        .collect();
    let ssh = SshFarm::start(
        &trees,
        Options {
            trust_host_keys: false,
            ..Default::default()
        },
    );
    let mut kh = String::new();
    let mut inv = ssh
        .defaults()
        .replace("connect_timeout_secs = 3", "connect_timeout_secs = 30");
    let (proxies, ports, bastion) = if through_bastion {
        let bastion = ssh.bastion("bastion", None, true);
        let proxy = DelayProxy::start(bastion.port, delay);
        kh.push_str(&format!(
            "[127.0.0.1]:{} {}\n",
            proxy.port, bastion.host_key
        ));
        inv.push_str(&format!("jump = \"{USER}@127.0.0.1:{}\"\n", proxy.port));
        // `--jump-sessions K`: at most K sessions to the bastion (1 is how
        // farmkey worked before it kept several).
        if let Some(k) = arg_list("--jump-sessions", &[]).first() {
            inv.push_str(&format!("jump_sessions = {k}\n"));
        }
        let ports = ssh.servers.iter().map(|s| s.port).collect();
        (vec![proxy], ports, Some(bastion))
    } else {
        let proxies: Vec<DelayProxy> = ssh
            .servers
            .iter()
            .map(|s| DelayProxy::start(s.port, delay))
            .collect();
        let ports = proxies.iter().map(|p| p.port).collect();
        (proxies, ports, None)
    };
    for (s, port) in ssh.servers.iter().zip(&ports) {
        kh.push_str(&format!("[127.0.0.1]:{port} {}\n", s.host_key));
        inv.push_str(&format!(
            "\n[[servers]]\nname = \"{}\"\nhost = \"127.0.0.1\"\nport = {port}\n",
            s.name
        ));
    }
    fs::write(&ssh.known_hosts, kh).unwrap();
    let inventory = ssh.home.path().join("bench.toml");
    fs::write(&inventory, inv).unwrap();
    let ssh_config = ssh.home.path().join("sftp_config");
    fs::write(
        &ssh_config,
        format!(
            "Host *\n    BatchMode yes\n    StrictHostKeyChecking yes\n    UserKnownHostsFile {}\n    IdentityFile {}\n    IdentitiesOnly yes\n",
            ssh.known_hosts.display(),
            ssh.identity.display()
        ),
    )
    .unwrap();
    Farm {
        _demo: demo,
        ssh,
        proxies,
        ports,
        bastion,
        inventory,
        ssh_config,
    }
}

/// One scan: its wall time and farmkey's own CPU time (user, system).
struct Timed {
    wall: Duration,
    user: Duration,
    system: Duration,
}

/// Runs farmkey and waits for it with `wait4`, which gives that process's
/// own resource usage (never the sshd processes or proxies, which are no
/// children of it).
// Waited with `wait4`, which std's `wait` does not offer.
#[allow(clippy::zombie_processes)]
fn time_farmkey(farm: &Farm, jobs: usize) -> Timed {
    use std::io::Read;
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_farmkey"))
        .args([
            "scan",
            "--format",
            "json",
            "--batch",
            "--ssh-config",
            "/nonexistent",
            "--jobs",
        ])
        .arg(jobs.to_string())
        .arg("-i")
        .arg(&farm.inventory)
        .env("HOME", farm.ssh.home.path())
        .env_remove("SSH_AUTH_SOCK")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; the pid is our child's, waited once.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let pid = libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage);
        assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
        usage
    };
    let wall = start.elapsed();
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let json: serde_json::Value = serde_json::from_slice(&stdout).expect("scan JSON");
    let ok = json["servers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["reachable"] == true && s["error"].is_null());
    assert!(ok, "a server was not read: {json}");
    Timed {
        wall,
        user: tv(usage.ru_utime),
        system: tv(usage.ru_stime),
    }
}

fn time_sftp(farm: &Farm) -> Duration {
    let dir = farm.ssh.home.path().join("sftp-out");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let mut children = Vec::new();
    let start = Instant::now();
    for (i, port) in farm.ports.iter().enumerate() {
        let out = dir.join(i.to_string());
        fs::create_dir_all(&out).unwrap();
        let batch: String = FILES
            .iter()
            .enumerate()
            .map(|(k, f)| format!("get \"{f}\" \"{}\"\n", out.join(k.to_string()).display()))
            .collect();
        let batch_file = out.join("batch");
        fs::write(&batch_file, batch).unwrap();
        let mut cmd = Command::new("sftp");
        cmd.arg("-q")
            .arg("-b")
            .arg(&batch_file)
            .arg("-F")
            .arg(&farm.ssh_config);
        if let Some(jump) = farm.jump() {
            cmd.arg("-J").arg(jump);
        }
        let child = cmd
            .arg("-P")
            .arg(port.to_string())
            .arg(format!("{USER}@127.0.0.1"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        children.push(child);
    }
    for mut c in children {
        assert!(c.wait().unwrap().success(), "sftp failed");
    }
    let took = start.elapsed();
    for i in 0..farm.ports.len() {
        assert_eq!(
            fs::read_dir(dir.join(i.to_string())).unwrap().count(),
            FILES.len() + 1
        );
    }
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

fn main() {
    support::sshd::require_sshd();
    let sizes = arg_list("--sizes", &[1, 4, 16, 64]);
    let delays = arg_list("--delays", &[0, 20]);
    let bastion_sizes = arg_list("--bastion-sizes", &[1, 16, 64]);
    let runs = arg_list("--runs", &[3])[0] as usize;
    println!(
        "farmkey scan (--jobs N: all servers at once; also the default --jobs {} above 16 servers) vs OpenSSH sftp (batch mode, all servers in parallel); median of {runs} runs",
        farmkey::farm::DEFAULT_JOBS
    );
    table(&sizes, &delays, runs, false);
    if !bastion_sizes.is_empty() {
        println!(
            "\nthrough a bastion: the delay between the client and the bastion, the servers next to it; farmkey (a session to the bastion per 8 servers, at most 8) vs sftp -J (one per server)"
        );
        table(&bastion_sizes, &delays, runs, true);
    }
    println!(
        "floor: {FLOOR_ROUND_TRIPS} round trips of 2 x delay, {BASTION_FLOOR_ROUND_TRIPS} through a bastion (see FLOOR_ROUND_TRIPS); machine: {}",
        machine()
    );
}

fn table(sizes: &[u64], delays: &[u64], runs: usize, through_bastion: bool) {
    println!(
        "{:>7} {:>9} {:>11} {:>19} {:>12} {:>9} {:>7} {:>10} {:>9} {:>12}",
        "servers",
        "delay ms",
        "farmkey ms",
        "CPU/server usr+sys",
        "(default)",
        if through_bastion {
            "sftp -J"
        } else {
            "sftp ms"
        },
        "ratio",
        "floor ms",
        "x floor",
        "vs 1 server"
    );
    let round_trips = if through_bastion {
        BASTION_FLOOR_ROUND_TRIPS
    } else {
        FLOOR_ROUND_TRIPS
    };
    for &delay in delays {
        let mut one: Option<Duration> = None;
        for &n in sizes {
            let n = n as usize;
            let farm = build(n, Duration::from_millis(delay), through_bastion);
            // Warm both: first connections pay for key loading and caches.
            let _ = time_farmkey(&farm, n.max(1));
            let _ = time_sftp(&farm);
            let timed: Vec<Timed> = (0..runs).map(|_| time_farmkey(&farm, n.max(1))).collect();
            let fk = median(timed.iter().map(|t| t.wall).collect());
            // CPU per server: the run's median, divided among its servers.
            let per_server = |d: Duration| d / n.max(1) as u32;
            let user = per_server(median(timed.iter().map(|t| t.user).collect()));
            let system = per_server(median(timed.iter().map(|t| t.system).collect()));
            let fk16 = if n > 16 {
                let jobs = farmkey::farm::DEFAULT_JOBS;
                Some(median(
                    (0..runs).map(|_| time_farmkey(&farm, jobs).wall).collect(),
                ))
            } else {
                None
            };
            let base = median((0..runs).map(|_| time_sftp(&farm)).collect());
            let floor = Duration::from_millis(2 * delay * round_trips as u64);
            if n == 1 {
                one = Some(fk);
            }
            let vs_one = one.map_or("-".to_string(), |o| {
                format!("{:.2}", fk.as_secs_f64() / o.as_secs_f64())
            });
            let x_floor = if delay == 0 {
                "-".to_string()
            } else {
                format!("{:.2}", fk.as_secs_f64() / floor.as_secs_f64())
            };
            println!(
                "{:>7} {:>9} {:>11} {:>19} {:>12} {:>9} {:>7.2} {:>10} {:>9} {:>12}",
                n,
                delay,
                ms(fk),
                format!(
                    "{:.1}+{:.1} ms",
                    user.as_secs_f64() * 1e3,
                    system.as_secs_f64() * 1e3
                ),
                fk16.map_or("-".to_string(), ms),
                ms(base),
                fk.as_secs_f64() / base.as_secs_f64(),
                ms(floor),
                x_floor,
                vs_one
            );
            drop(farm);
        }
    }
}

fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cores} cores, {cpu}")
}
