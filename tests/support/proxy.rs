//! A TCP proxy that holds every chunk for a fixed one-way delay, to measure
//! over a slow link on a kernel without netem.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::channel;
use std::thread;
use std::time::{Duration, Instant};

pub struct DelayProxy {
    pub port: u16,
    /// Connections forwarded and not yet closed at both ends.
    live: Arc<AtomicUsize>,
}

/// Copies `from` to `to`, each chunk sent `delay` after it was read. Chunks
/// keep their order; throughput is not limited.
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = channel::<(Instant, Vec<u8>)>();
    let writer = thread::spawn(move || {
        for (at, chunk) in rx {
            let due = at + delay;
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.join();
}

impl DelayProxy {
    /// Listens on a free loopback port and forwards to `target_port`.
    pub fn start(target_port: u16, one_way: Duration) -> DelayProxy {
        DelayProxy::admitting(target_port, one_way, usize::MAX)
    }

    /// Forwards at most `admit` connections at a time and closes one
    /// beyond as soon as it is accepted, before a byte: as a server that
    /// takes no more connections from this client (a firewall's limit,
    /// OpenSSH's `MaxStartups` dropping one).
    pub fn admitting(target_port: u16, one_way: Duration, admit: usize) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let live = Arc::new(AtomicUsize::new(0));
        let counted = live.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if counted.load(Ordering::SeqCst) >= admit {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                counted.fetch_add(1, Ordering::SeqCst);
                let done = counted.clone();
                thread::spawn(move || {
                    let up = thread::spawn(move || pump(client, server, one_way));
                    pump(s2, c2, one_way);
                    let _ = up.join();
                    done.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        DelayProxy { port, live }
    }

    /// Connections forwarded and not yet closed at both ends.
    pub fn open_connections(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}
