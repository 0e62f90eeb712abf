//! Network namespaces, to put servers where only a jump host can reach
//! them: a server listening on 127.0.0.1 inside a namespace cannot be
//! reached from outside it at all. Relays carry connections from one
//! namespace's loopback into another's, as a route to a bastion would.
//!
//! A namespace lives as long as its file handle (and the processes in it);
//! nothing is named or left behind in /run/netns.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;

pub struct Netns {
    fd: File,
}

impl Netns {
    /// A fresh namespace with its loopback interface up.
    pub fn new() -> Arc<Netns> {
        let fd = thread::spawn(|| {
            // SAFETY: plain system calls; only this thread changes namespace.
            let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "unshare(CLONE_NEWNET): {} (the jump host tests need root and network namespaces, as CI has)",
                io::Error::last_os_error()
            );
            loopback_up();
            File::open("/proc/thread-self/ns/net").expect("open /proc/thread-self/ns/net")
        })
        .join()
        .expect("create a network namespace");
        Arc::new(Netns { fd })
    }

    fn enter(&self) {
        // SAFETY: a valid namespace file handle; affects the calling thread.
        let rc = unsafe { libc::setns(self.fd.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
    }

    /// Runs `f` on a thread inside the namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        thread::scope(|s| {
            s.spawn(|| {
                self.enter();
                f()
            })
            .join()
            .expect("thread in the namespace")
        })
    }

    /// Makes `cmd` start inside the namespace.
    pub fn spawn_inside(&self, cmd: &mut Command) {
        let fd = self.fd.as_raw_fd();
        // SAFETY: setns is async-signal-safe; fd stays open while self lives,
        // and the child is spawned while the caller holds self.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
    }
}

fn loopback_up() {
    // SAFETY: an ioctl on a socket of our own with a zeroed, named ifreq.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        assert!(sock >= 0, "socket: {}", io::Error::last_os_error());
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *s as libc::c_char;
        }
        assert_eq!(libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req), 0);
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        let rc = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req);
        let err = io::Error::last_os_error();
        libc::close(sock);
        assert_eq!(rc, 0, "bring lo up: {err}");
    }
}

/// A free loopback port in `ns` (or here), never handed out twice in this
/// process: servers in different namespaces must not share a port, or
/// their `[127.0.0.1]:port` known_hosts entries would collide.
pub fn unique_port(ns: Option<&Netns>) -> u16 {
    static USED: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    loop {
        let port = match ns {
            Some(ns) => ns.run(super::sshd::free_port),
            None => super::sshd::free_port(),
        };
        if USED
            .lock()
            .unwrap()
            .get_or_insert_with(HashSet::new)
            .insert(port)
        {
            return port;
        }
    }
}

/// Carries each connection to `127.0.0.1:port` of one namespace (or this
/// one) on to `127.0.0.1:to_port` of another.
pub struct Relay {
    pub port: u16,
}

impl Relay {
    pub fn start(from: Option<&Arc<Netns>>, to: &Arc<Netns>, to_port: u16) -> Relay {
        let port = unique_port(from.map(|n| &**n));
        let bind = move || TcpListener::bind(("127.0.0.1", port)).expect("bind the relay");
        let listener = match from {
            Some(ns) => ns.run(bind),
            None => bind(),
        };
        let to = to.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let to = to.clone();
                thread::spawn(move || {
                    let server = to.run(|| TcpStream::connect(("127.0.0.1", to_port)));
                    let Ok(server) = server else {
                        let _ = client.shutdown(Shutdown::Both);
                        return;
                    };
                    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let copy = |mut from: TcpStream, mut to: TcpStream| {
                        let _ = io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    };
                    let up = thread::spawn(move || copy(client, server));
                    copy(s2, c2);
                    let _ = up.join();
                });
            }
        });
        Relay { port }
    }
}
