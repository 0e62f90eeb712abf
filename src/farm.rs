//! Scanning many servers at once: bounded worker threads, results streamed
//! over a channel as each server finishes, so that one slow server never
//! holds up the others.

use crate::inventory::Server;
use crate::paths::WindowsEnv;
use crate::scan::{ScanStage, ServerFailure, ServerScan, Unreachable, read_server};
use crate::transport::{self, ConnectOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::thread;
use std::time::Instant;

/// Progress of a farm scan; `index` is the server's place in the list given.
#[derive(Debug)]
pub enum ScanEvent {
    ScanStage {
        index: usize,
        stage: ScanStage,
    },
    Finished {
        index: usize,
        scan: Box<ServerScan>,
    },
    /// How the servers were reached, worth telling: sent once, before the
    /// last server's `Finished`, when there is something to tell.
    Notes(Vec<transport::ReachNote>),
}

/// Servers read at once unless `--jobs` says: a server's read waits on the
/// network, not on the client, so a farm of up to 64 is read all at once
/// (16 workers paced a 64-server scan through a bastion at 1.4 times its
/// time with all at once). Bounded so that a large farm does not hold
/// hundreds of sessions and threads; [`transport::session_budget`] bounds it
/// further under a low open-files limit.
pub const DEFAULT_JOBS: usize = 64;

/// `work` on every item, on at most `jobs` threads (at least one), the
/// results in the items' order: the one bounded pool for work on many
/// servers that waits for all of them (a scan streams instead:
/// [`spawn_scan`]). A panic in `work` is the caller's, as in one thread.
pub fn on_each<T, R, F>(items: &[T], jobs: usize, work: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let next = AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<R>>> =
        std::sync::Mutex::new(items.iter().map(|_| None).collect());
    thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(n) else { break };
                    let r = work(item);
                    results.lock().unwrap_or_else(|e| e.into_inner())[n] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item was worked on: a worker that panicked ended the scope"))
        .collect()
}

/// Scans one server: connect, read, report. The transport is dropped after
/// the result is sent, so a session that hangs in teardown delays no one.
pub fn scan_one(server: &Server, opts: &ConnectOptions, index: usize, emit: &dyn Fn(ScanEvent)) {
    let start = Instant::now();
    let waited = transport::operator_wait();
    emit(ScanEvent::ScanStage {
        index,
        stage: ScanStage::Connecting,
    });
    let (result, transport) = match transport::connect(server, opts) {
        Ok(mut t) => {
            emit(ScanEvent::ScanStage {
                index,
                stage: ScanStage::Reading,
            });
            (read_server(t.as_mut(), &WindowsEnv::default()), Some(t))
        }
        Err(e) if e.is_host_key_changed() => {
            (Err(ServerFailure::HostKeyChanged(Box::new(e))), None)
        }
        Err(e) => (
            Err(ServerFailure::Unreachable(Unreachable::Connect(Box::new(
                e,
            )))),
            None,
        ),
    };
    let scan = ServerScan {
        name: server.name.clone(),
        address: server.address(),
        result,
        // The server's time: a dialog the operator took to answer is not.
        elapsed: start
            .elapsed()
            .saturating_sub(transport::operator_wait() - waited),
    };
    emit(ScanEvent::Finished {
        index,
        scan: Box::new(scan),
    });
    drop(transport);
}

/// Starts scanning `servers` (each with the index its events carry) on at
/// most `jobs` threads and returns at once; events arrive on `tx`, wrapped
/// by `wrap`. Threads are not joined: a hung teardown must not block
/// whoever reports the results.
pub fn spawn_scan<M, W>(
    servers: Vec<(usize, Server)>,
    opts: ConnectOptions,
    jobs: usize,
    tx: Sender<M>,
    wrap: W,
) where
    M: Send + 'static,
    W: Fn(ScanEvent) -> M + Send + Sync + 'static,
{
    // A jump host that failed in an earlier scan gets another chance; in
    // this scan, every server behind it shares one attempt.
    opts.jumps.forget_failures();
    let count = servers.len();
    let servers = Arc::new(servers);
    let next = Arc::new(AtomicUsize::new(0));
    let opts = Arc::new(opts);
    let wrap = Arc::new(wrap);
    let left = Arc::new(AtomicUsize::new(count));
    // Never more sessions at once than the open-files limit allows.
    let jobs = jobs.min(crate::transport::session_budget());
    for _ in 0..jobs.clamp(1, count.max(1)) {
        let (servers, next, opts, tx, wrap, left) = (
            servers.clone(),
            next.clone(),
            opts.clone(),
            tx.clone(),
            wrap.clone(),
            left.clone(),
        );
        thread::spawn(move || {
            let emit = |e: ScanEvent| {
                if matches!(e, ScanEvent::Finished { .. })
                    && left.fetch_sub(1, Ordering::SeqCst) == 1
                {
                    let notes = opts.jumps.notes();
                    if !notes.is_empty() {
                        let _ = tx.send(wrap(ScanEvent::Notes(notes)));
                    }
                }
                let _ = tx.send(wrap(e));
            };
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let Some((index, server)) = servers.get(n) else {
                    break;
                };
                scan_one(server, &opts, *index, &emit);
            }
        });
    }
}

/// Scans every server and returns the results in inventory order.
pub fn scan_all(servers: &[Server], opts: ConnectOptions, jobs: usize) -> Vec<ServerScan> {
    let (tx, rx) = channel();
    spawn_scan(
        servers.iter().cloned().enumerate().collect(),
        opts,
        jobs,
        tx,
        |e| e,
    );
    let mut out: Vec<Option<ServerScan>> = servers.iter().map(|_| None).collect();
    let mut remaining = servers.len();
    while remaining > 0 {
        match rx.recv() {
            Ok(ScanEvent::Finished { index, scan }) => {
                out[index] = Some(*scan);
                remaining -= 1;
            }
            // Read from the pool by who wants them ([`transport::ssh::jump::JumpPool::notes`]).
            Ok(ScanEvent::ScanStage { .. } | ScanEvent::Notes(_)) => {}
            Err(_) => break,
        }
    }
    out.into_iter()
        .zip(servers)
        .map(|(scan, server)| {
            scan.unwrap_or_else(|| ServerScan {
                name: server.name.clone(),
                address: server.address(),
                result: Err(ServerFailure::Unreachable(Unreachable::WorkerStopped)),
                elapsed: Default::default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::on_each;

    /// Every item once, results in the items' order, never more threads
    /// than asked (nor none for an empty list).
    #[test]
    fn on_each_keeps_order_and_bounds_its_threads() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let items: Vec<u32> = (0..50).collect();
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let out = on_each(&items, 4, |i| {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(2));
            now.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= 4);
        assert!(on_each(&[] as &[u32], 0, |i| *i).is_empty());
    }
}
