//! Real OpenSSH servers on loopback, one per simulated Windows server.
//!
//! Each `sshd` chroots its SFTP sessions into a folder holding a literal
//! `C:` drive tree (and `D:` where the fixture has one), so that it serves the
//! same `/C:/...` paths as OpenSSH for Windows. Sessions log in as an
//! unprivileged account so that file permissions apply, as on Windows.
//! Servers are stopped by process group when the farm is dropped, also when
//! a test panics.

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::netns::{Netns, unique_port};

pub const SSHD: &str = "/usr/sbin/sshd";
/// The account SFTP sessions run as.
pub const USER: &str = "farmkeytest";
/// The account's password while a password-authentication test runs: fresh
/// and random for each test process, never published. Otherwise the
/// account has no password at all.
pub fn password() -> &'static str {
    static PASSWORD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PASSWORD.get_or_init(|| {
        let mut bytes = [0u8; 18];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .expect("read /dev/urandom");
        hex::encode(bytes)
    })
}
/// Chroot folders must be root-owned all the way up: /tmp is not.
const BASE: &str = "/var/lib/farmkey-tests";

/// Fails with what to install when the tests cannot run here.
pub fn require_sshd() {
    assert!(
        Path::new(SSHD).exists(),
        "these tests start real OpenSSH servers: install Debian's openssh-server (apt-get install -y openssh-server), as .ci/run does"
    );
    assert!(
        unsafe { libc::geteuid() } == 0,
        "these tests start sshd with ChrootDirectory and need root (run them as root, as CI does)"
    );
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Serialises what changes the account's password, across test threads and
/// test processes (flock on one file).
fn account_lock() -> fs::File {
    fs::create_dir_all(BASE).unwrap();
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(Path::new(BASE).join("account.lock"))
        .unwrap();
    use std::os::fd::AsRawFd;
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
    file
}

/// Sets the account's password field: `*` (no password can match, yet the
/// account is not "locked" for sshd without PAM, so keys still work) or a
/// password.
fn set_password(password: Option<&str>) {
    match password {
        None => run(Command::new("usermod").args(["-p", "*", USER])),
        Some(pw) => {
            let mut chpasswd = Command::new("chpasswd")
                .stdin(Stdio::piped())
                .spawn()
                .expect("chpasswd");
            use std::io::Write;
            chpasswd
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{USER}:{pw}\n").as_bytes())
                .unwrap();
            assert!(chpasswd.wait().unwrap().success());
        }
    }
}

/// The account exists, without a password (also when an earlier run was
/// killed while a password was set).
fn ensure_user() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _lock = account_lock();
        let exists = || {
            Command::new("id")
                .arg(USER)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !exists() {
            // useradd may race with another test binary creating it: check again after.
            let _ = Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    USER,
                ])
                .output();
            assert!(
                exists(),
                "could not create the test account {USER} (useradd from Debian's passwd package)"
            );
        }
        set_password(None);
    });
}

/// While alive, the account has [`password`]; dropped, it has none again.
pub struct PasswordWindow {
    _lock: fs::File,
}

impl PasswordWindow {
    fn open() -> PasswordWindow {
        let lock = account_lock();
        set_password(Some(password()));
        PasswordWindow { _lock: lock }
    }
}

impl Drop for PasswordWindow {
    fn drop(&mut self) {
        set_password(None);
    }
}

fn uid_gid(user: &str) -> (u32, u32) {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let out = Command::new("id").args(["-g", user]).output().unwrap();
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    (uid, gid)
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for e in fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn keygen(path: &Path, kind: &str, passphrase: &str) {
    run(Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            kind,
            "-N",
            passphrase,
            "-C",
            "farmkey-test",
            "-f",
        ])
        .arg(path));
}

/// One simulated server.
pub struct SshServer {
    pub name: String,
    pub port: u16,
    /// The chroot: holds `C:` (and maybe `D:`).
    pub root: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
    /// `ssh-ed25519 AAAA...` of its host key.
    pub host_key: String,
    /// Where it listens, when not in this network namespace.
    netns: Option<Arc<Netns>>,
}

impl SshServer {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Path of a server file in the chroot, from its Windows path.
    pub fn file(&self, windows_path: &str) -> PathBuf {
        let unified = windows_path.replace('\\', "/");
        self.root.join(unified.trim_start_matches('/'))
    }

    /// Signals sshd, its process group, and every process below it (the
    /// per-connection sshd children call setsid, so the group is not enough).
    fn signal_group(&self, sig: i32) {
        let Some(c) = &self.child else { return };
        let root = c.id() as i32;
        let mut pids = vec![root];
        let mut i = 0;
        while i < pids.len() {
            let parent = pids[i];
            pids.extend(children_of(parent));
            i += 1;
        }
        unsafe {
            libc::kill(-root, sig);
            for pid in pids {
                libc::kill(pid, sig);
            }
        }
    }

    /// Freezes the listener and its sessions (SIGSTOP): connections hang.
    pub fn freeze(&self) {
        self.signal_group(libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.signal_group(libc::SIGCONT);
    }

    /// Kills sshd and every session it runs, as a crash would.
    pub fn crash(&self) {
        self.signal_group(libc::SIGCONT);
        self.signal_group(libc::SIGKILL);
    }

    /// Kills sshd and every session it runs, and reaps it.
    pub fn kill(&mut self) {
        self.crash();
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// PIDs of the per-connection sshd processes (children of the listener).
    pub fn session_pids(&self) -> Vec<i32> {
        children_of(self.pid() as i32)
    }

    /// Every process serving a connection (the per-connection sshd and the
    /// session it runs), not the listener.
    pub fn session_tree(&self) -> Vec<i32> {
        let mut pids = self.session_pids();
        let mut i = 0;
        while i < pids.len() {
            let parent = pids[i];
            pids.extend(children_of(parent));
            i += 1;
        }
        pids
    }

    /// Signals the processes of the open connections; new connections are
    /// still accepted.
    pub fn signal_sessions(&self, sig: i32) -> Vec<i32> {
        let pids = self.session_tree();
        for &pid in &pids {
            unsafe {
                libc::kill(pid, sig);
            }
        }
        pids
    }

    /// The command that starts this sshd again (same port, keys and
    /// chroot), for a server that comes back after a crash: the caller
    /// reaps the process it spawns.
    pub fn restart_command(&self) -> Command {
        let mut cmd = Command::new(SSHD);
        cmd.arg("-D")
            .arg("-f")
            .arg(self.dir.join("sshd_config"))
            .arg("-E")
            .arg(self.dir.join("sshd.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        cmd
    }

    /// The sshd log, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

fn children_of(parent: i32) -> Vec<i32> {
    {
        let mut out = Vec::new();
        for e in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // Field 4, after the parenthesised command name.
            let after = stat.rsplit(')').next().unwrap_or("");
            let ppid: i32 = after
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            if ppid == parent {
                out.push(pid);
            }
        }
        out
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Clone)]
pub struct Options {
    pub password_auth: bool,
    /// Write the servers' host keys into the client's known_hosts.
    pub trust_host_keys: bool,
    /// Give each server an RSA host key besides its ed25519 one, and store
    /// only the RSA key in known_hosts (a farm known since before ed25519).
    pub rsa_known_only: bool,
    /// Extra flags of the SFTP server (` -u 0000`), with a leading space.
    pub sftp_flags: &'static str,
    /// sshd's `LogLevel` (`VERBOSE`; `DEBUG3` lets `-l DEBUG3` of the SFTP
    /// server log each request).
    pub log_level: &'static str,
    /// Run the servers in this network namespace: on its 127.0.0.1, which
    /// only a jump host inside it reaches.
    pub netns: Option<Arc<Netns>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            password_auth: false,
            trust_host_keys: true,
            rsa_known_only: false,
            sftp_flags: "",
            log_level: "VERBOSE",
            netns: None,
        }
    }
}

/// Several servers plus a client side: a HOME with a key, a known_hosts
/// file and an inventory.
pub struct SshFarm {
    pub servers: Vec<SshServer>,
    pub base: PathBuf,
    pub home: tempfile::TempDir,
    /// The client key authorised on every server.
    pub identity: PathBuf,
    pub known_hosts: PathBuf,
    /// Held by farms that accept passwords.
    _password: Option<PasswordWindow>,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

impl SshFarm {
    /// One sshd per server folder of a fixture farm (`tests/fixtures/farms/NAME`).
    pub fn from_fixture(farm: &Path, names: &[&str], opts: Options) -> SshFarm {
        let trees: Vec<(String, PathBuf)> = names
            .iter()
            .map(|n| (n.to_string(), farm.join(n)))
            .collect();
        SshFarm::start(&trees, opts)
    }

    /// One sshd per (name, folder holding the drives).
    pub fn start(trees: &[(String, PathBuf)], opts: Options) -> SshFarm {
        require_sshd();
        ensure_user();
        let password = opts.password_auth.then(PasswordWindow::open);
        fs::create_dir_all("/run/sshd").unwrap();
        fs::create_dir_all(BASE).unwrap();
        fs::set_permissions(BASE, fs::Permissions::from_mode(0o755)).unwrap();
        let base = PathBuf::from(BASE).join(format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();

        let home = tempfile::tempdir().unwrap();
        let ssh_dir = home.path().join(".ssh");
        fs::create_dir_all(&ssh_dir).unwrap();
        fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700)).unwrap();
        let identity = ssh_dir.join("farm_ed25519");
        keygen(&identity, "ed25519", "");
        let client_pub = fs::read_to_string(identity.with_extension("pub")).unwrap();
        let known_hosts = ssh_dir.join("known_hosts");

        let (uid, gid) = uid_gid(USER);
        let mut servers = Vec::new();
        let mut kh = String::new();
        for (name, tree) in trees {
            let dir = base.join(name);
            let root = dir.join("chroot");
            fs::create_dir_all(&root).unwrap();
            for d in [&dir, &root] {
                fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
            }
            super::copy_tree(tree, &root);
            for e in fs::read_dir(&root).unwrap() {
                chown_tree(&e.unwrap().path(), uid, gid);
            }
            let host_key = dir.join("ssh_host_ed25519_key");
            keygen(&host_key, "ed25519", "");
            let host_pub = fs::read_to_string(host_key.with_extension("pub")).unwrap();
            let mut host_pub: String = host_pub
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            let mut host_keys = format!("HostKey {}\n", host_key.display());
            if opts.rsa_known_only {
                let rsa = dir.join("ssh_host_rsa_key");
                run(Command::new("ssh-keygen")
                    .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
                    .arg(&rsa));
                host_keys.push_str(&format!("HostKey {}\n", rsa.display()));
                let rsa_pub = fs::read_to_string(rsa.with_extension("pub")).unwrap();
                host_pub = rsa_pub
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ");
            }
            fs::write(dir.join("authorized_keys"), &client_pub).unwrap();
            let port = unique_port(opts.netns.as_deref());
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\n{host_keys}PidFile none\nAuthorizedKeysFile {ak}\n\
                 PermitRootLogin no\nAllowUsers {USER}\nPubkeyAuthentication yes\nPasswordAuthentication {pw}\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nChrootDirectory {root}\n\
                 ForceCommand internal-sftp{sftp}\nSubsystem sftp internal-sftp\nAllowTcpForwarding no\n\
                 X11Forwarding no\nMaxStartups 200\nMaxSessions 50\nLogLevel {level}\n",
                ak = dir.join("authorized_keys").display(),
                pw = if opts.password_auth { "yes" } else { "no" },
                root = root.display(),
                sftp = opts.sftp_flags,
                level = opts.log_level,
            );
            let server = spawn(
                name,
                port,
                root,
                dir,
                &config,
                host_pub.clone(),
                &opts.netns,
            );
            kh.push_str(&format!("[127.0.0.1]:{port} {host_pub}\n"));
            servers.push(server);
        }
        if opts.trust_host_keys {
            fs::write(&known_hosts, kh).unwrap();
        }
        SshFarm {
            servers,
            base,
            home,
            identity,
            known_hosts,
            _password: password,
        }
    }

    pub fn server(&self, name: &str) -> &SshServer {
        self.servers.iter().find(|s| s.name == name).unwrap()
    }

    pub fn server_mut(&mut self, name: &str) -> &mut SshServer {
        self.servers.iter_mut().find(|s| s.name == name).unwrap()
    }

    /// An inventory of every server, plus `extra` TOML appended.
    pub fn inventory(&self, extra: &str) -> PathBuf {
        self.inventory_with(&self.defaults(), extra)
    }

    /// The `[defaults]` table: user, key, known_hosts, a short timeout.
    pub fn defaults(&self) -> String {
        format!(
            "[defaults]\nuser = \"{USER}\"\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\nconnect_timeout_secs = 3\n",
            self.identity.display(),
            self.known_hosts.display()
        )
    }

    /// An inventory of every server whose connections wait `secs` for an
    /// answer: for tests that must not mistake a loaded machine for a
    /// server that does not answer.
    pub fn inventory_timeout(&self, secs: u64) -> PathBuf {
        let defaults = self.defaults().replace(
            "connect_timeout_secs = 3\n",
            &format!("connect_timeout_secs = {secs}\n"),
        );
        self.inventory_with(&defaults, "")
    }

    pub fn inventory_with(&self, defaults: &str, extra: &str) -> PathBuf {
        let mut text = defaults.to_string();
        for s in &self.servers {
            text.push_str(&format!(
                "\n[[servers]]\nname = \"{}\"\nhost = \"127.0.0.1\"\nport = {}\n",
                s.name, s.port
            ));
        }
        text.push_str(extra);
        let path = self.home.path().join("farmkey.toml");
        // Whole or not at all: a farmkey process started before may be
        // reading it.
        let tmp = self.home.path().join(format!(
            "farmkey.toml.{}",
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, &path).unwrap();
        path
    }

    /// A command for the farmkey binary with a clean environment: HOME is
    /// the farm's client home, no agent.
    pub fn farmkey(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::from_std(self.farmkey_process());
        cmd.timeout(Duration::from_secs(60));
        cmd
    }

    /// The same command as a process to spawn and hold (no timeout).
    pub fn farmkey_process(&self) -> Command {
        super::farmkey_command(self.home.path())
    }

    /// What a headless command needs on this farm: `--batch`, no ssh
    /// config, the audit log, and an inventory patient enough (20 s) not
    /// to take a loaded machine for a server that does not answer.
    pub fn headless_args(&self, audit: &Path) -> Vec<String> {
        super::headless_args(&self.inventory_timeout(20), audit)
    }

    /// `farmkey push --site Flowtime --generate --yes` on this farm.
    pub fn push_flowtime_args(&self, audit: &Path) -> Vec<String> {
        let mut v: Vec<String> = ["push", "--site", "Flowtime", "--generate", "--yes"]
            .map(String::from)
            .to_vec();
        v.extend(self.headless_args(audit));
        v
    }

    /// Every file of every server, for before/after comparisons.
    pub fn all_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        self.servers
            .iter()
            .flat_map(|s| super::snapshot_tree(&s.root))
            .collect()
    }

    pub fn logs(&self) -> String {
        self.servers
            .iter()
            .map(|s| format!("--- {} ---\n{}", s.name, s.log()))
            .collect()
    }
}

impl Drop for SshFarm {
    fn drop(&mut self) {
        for s in &mut self.servers {
            s.kill();
        }
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// Starts sshd with `config` in `dir` and waits until it answers.
fn spawn(
    name: &str,
    port: u16,
    root: PathBuf,
    dir: PathBuf,
    config: &str,
    host_key: String,
    netns: &Option<Arc<Netns>>,
) -> SshServer {
    let config_path = dir.join("sshd_config");
    fs::write(&config_path, config).unwrap();
    let mut cmd = Command::new(SSHD);
    cmd.arg("-D")
        .arg("-f")
        .arg(&config_path)
        .arg("-E")
        .arg(dir.join("sshd.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    if let Some(ns) = netns {
        ns.spawn_inside(&mut cmd);
    }
    let child = cmd.spawn().expect("start sshd");
    let server = SshServer {
        name: name.to_string(),
        port,
        root,
        dir,
        child: Some(child),
        host_key,
        netns: netns.clone(),
    };
    wait_ready(&server);
    server
}

impl SshFarm {
    /// A jump host: an sshd that lets the farm's client key log in and
    /// forwards TCP connections (`direct-tcpip`) unless `forwarding` is
    /// false, running in `netns` (or here). It serves no shell and no SFTP;
    /// its log (DEBUG1) records every forwarded connection.
    /// Its host key is not added to known_hosts: see [`SshFarm::trust`].
    pub fn bastion(&self, name: &str, netns: Option<&Arc<Netns>>, forwarding: bool) -> SshServer {
        self.bastion_starting(name, netns, forwarding, "200")
    }

    /// A jump host as [`SshFarm::bastion`] with `MaxStartups max_startups`
    /// (`1:100:1` drops every unauthenticated connection beyond one).
    pub fn bastion_starting(
        &self,
        name: &str,
        netns: Option<&Arc<Netns>>,
        forwarding: bool,
        max_startups: &str,
    ) -> SshServer {
        let dir = self.base.join(format!("bastion-{name}"));
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let host_key = dir.join("ssh_host_ed25519_key");
        keygen(&host_key, "ed25519", "");
        let host_pub = fs::read_to_string(host_key.with_extension("pub")).unwrap();
        let host_pub: String = host_pub
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let client_pub = fs::read_to_string(self.identity.with_extension("pub")).unwrap();
        fs::write(dir.join("authorized_keys"), client_pub).unwrap();
        let port = unique_port(netns.map(|n| &**n));
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile none\nAuthorizedKeysFile {ak}\n\
             PermitRootLogin no\nAllowUsers {USER}\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nAllowTcpForwarding {fw}\n\
             PermitTTY no\nForceCommand /bin/false\nX11Forwarding no\nMaxStartups {max_startups}\nLogLevel DEBUG1\n",
            hk = host_key.display(),
            ak = dir.join("authorized_keys").display(),
            fw = if forwarding { "local" } else { "no" },
        );
        spawn(
            name,
            port,
            dir.clone(),
            dir,
            &config,
            host_pub,
            &netns.cloned(),
        )
    }

    /// Adds `[127.0.0.1]:port key` to the client's known_hosts.
    pub fn trust(&self, port: u16, host_key: &str) {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.known_hosts)
            .unwrap();
        writeln!(f, "[127.0.0.1]:{port} {host_key}").unwrap();
    }
}

fn wait_ready(server: &SshServer) {
    let answers = || {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", server.port)) else {
            return false;
        };
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 8];
        s.read(&mut buf).is_ok_and(|n| n >= 4) && buf.starts_with(b"SSH-")
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let ready = match &server.netns {
            Some(ns) => ns.run(answers),
            None => answers(),
        };
        if ready {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "sshd for {} did not start on port {}:\n{}",
        server.name,
        server.port,
        server.log()
    );
}

/// The demo farm laid out locally, and the same files behind three sshd.
pub fn demo_over_ssh(opts: Options) -> (farmkey::demo::DemoFarm, SshFarm) {
    let demo = farmkey::demo::DemoFarm::new().unwrap();
    let trees: Vec<(String, PathBuf)> = farmkey::demo::SERVERS
        .iter()
        .map(|s| (s.to_string(), demo.path().join(s)))
        .collect();
    let farm = SshFarm::start(&trees, opts);
    (demo, farm)
}
