//! Many pushes breaking one stale lock at once, over SSH, through a slow
//! link: exactly one takes it each time.

mod support;

use farmkey::inventory::{Inventory, Target};
use farmkey::paths::RemotePath;
use farmkey::push::lock::{self, LockError, LockInfo, Taken};
use farmkey::transport::ConnectOptions;
use farmkey::transport::ssh::SshTransport;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::Duration;
use support::proxy::DelayProxy;
use support::sshd::{Options, demo_over_ssh};

const ROUNDS: usize = 100;
const PUSHES: usize = 4;

#[test]
fn many_pushes_breaking_one_stale_lock_at_once_over_a_slow_link_leave_one_holder() {
    let (_demo, farm) = demo_over_ssh(Options::default());
    let server = farm.server("web01");
    let proxy = DelayProxy::start(server.port, Duration::from_millis(5));
    farm.trust(proxy.port, &server.host_key);
    let dir = server.root.join("C:/race");
    fs::create_dir_all(&dir).unwrap();
    let uid = std::process::Command::new("id")
        .args(["-u", support::sshd::USER])
        .output()
        .unwrap();
    let uid: u32 = String::from_utf8_lossy(&uid.stdout).trim().parse().unwrap();
    std::os::unix::fs::chown(&dir, Some(uid), None).unwrap();
    let inv = Inventory::load(&farm.inventory("")).unwrap();
    let Target::Ssh { host, settings } = &inv.servers[0].target else {
        panic!()
    };
    let mut settings = settings.clone();
    settings.port = Some(proxy.port);
    let opts = ConnectOptions {
        ssh_config: Some(PathBuf::from("/nonexistent/ssh_config")),
        ..Default::default()
    };
    let connect = || SshTransport::connect("web01", host, &settings, &opts).unwrap();
    let mut transports: Vec<SshTransport> = (0..PUSHES).map(|_| connect()).collect();
    let path = lock::lock_path(&RemotePath::parse("C:\\race\\web.config").unwrap());
    let local = dir.join("web.farmkey-lock.config");
    for round in 0..ROUNDS {
        let mut stale = LockInfo::mine(&format!("stale{round}"), "Flowtime");
        stale.host = "jump9".into();
        stale.time = "2020-01-01T00:00:00Z".into();
        let mut bytes = serde_json::to_vec(&stale).unwrap();
        bytes.extend_from_slice(b"\r\n");
        fs::write(&local, &bytes).unwrap();
        std::os::unix::fs::chown(&local, Some(uid), None).unwrap();
        let shown = lock::read_holder(&mut transports[0], "web01", &path)
            .unwrap()
            .unwrap();
        let start = Arc::new(Barrier::new(PUSHES));
        let handles: Vec<_> = transports
            .drain(..)
            .enumerate()
            .map(|(i, mut t)| {
                let (start, path, shown) = (start.clone(), path.clone(), shown.clone());
                std::thread::spawn(move || {
                    let mine = LockInfo::mine(&format!("r{round}-p{i}"), "Flowtime");
                    start.wait();
                    let r = lock::acquire(&mut t, "web01", &path, &mine, Some(&shown));
                    (t, mine.push_id, r)
                })
            })
            .collect();
        let mut winners = Vec::new();
        let mut refused = Vec::new();
        for h in handles {
            let (t, id, r) = h.join().unwrap();
            transports.push(t);
            match r {
                Ok(Taken::Broke(h)) => {
                    assert_eq!(h.info, shown.info, "round {round}");
                    winners.push(id);
                }
                Err(LockError::Held(h)) => refused.push(h.push_id().map(str::to_string)),
                other => panic!("round {round}: {id}: {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?} {refused:?}");
        let winner = &winners[0];
        assert!(
            refused
                .iter()
                .all(|r| r.as_deref() == Some(winner.as_str())),
            "round {round}: winner {winner}, refused naming {refused:?}"
        );
        let held: LockInfo = serde_json::from_slice(&fs::read(&local).unwrap()).unwrap();
        assert_eq!(&held.push_id, winner, "round {round}");
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["web.farmkey-lock.config"], "round {round}");
        fs::remove_file(&local).unwrap();
    }
}
