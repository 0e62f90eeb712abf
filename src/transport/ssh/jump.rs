//! Jump hosts (`ProxyJump`, the inventory's `jump`).
//!
//! A server behind a jump host is reached through a `direct-tcpip` channel
//! of the jump host's session: the server's own session runs over one end
//! of a Unix socket pair, and the jump host's thread copies between the
//! other end and the channel. libssh2 locks a whole session on every call,
//! so each jump session is driven by one thread, non-blocking, with one
//! poll loop serving all its channels. In a chain, each hop is reached
//! through a session of the hop before it.
//!
//! libssh2 opens one channel at a time per session, so the channel opens of
//! many servers queue on one session, a round trip each. A chain keeps up
//! to `jump_sessions` sessions (lanes) to its last hop: the first connected
//! alone, more side by side while more than [`OPENS_PER_LANE`] connections
//! wait per lane, and each open goes to the lane with the fewest opens
//! pending. A jump host that refuses an extra session (OpenSSH's
//! `MaxStartups` drops unauthenticated connections beyond its first number)
//! keeps the lanes it has, with a [`ReachNote`], for the rest of the round.
//! OpenSSH's `MaxSessions` does not count `direct-tcpip` channels: it
//! bounds "shell, login or subsystem sessions" (sshd_config(5)), checked in
//! session.c's `session_new`, which serverloop.c's `direct-tcpip` handler
//! never calls.
//!
//! A server the jump host
//! cannot connect to (a black-holed address) would hold up every open
//! behind it, so the opens still waiting after [`SPILL_AFTER`] move to a new
//! session; one that waits out its timeout retires the session, so that a
//! hung jump host fails the next connection to it (and, shared, everything
//! waiting on that).
//!
//! libssh2 in non-blocking mode completes a half-sent packet only when the
//! call that started it is made again, and sends nothing else meanwhile; so
//! every call that may have started a packet (a channel's write, an open,
//! even one whose requester gave up) is repeated until it completes.

use super::config::Resolved;
use super::{ConnectError, start_session, tcp_connect};
use crate::transport::{ConnectOptions, ReachNote};
use ssh2::{BlockDirections, Channel, ErrorCode, Session};
use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long an open may keep the ones queued behind it waiting before they
/// move to a new session.
const SPILL_AFTER: Duration = Duration::from_secs(2);
/// Bytes buffered per direction per channel.
const BUF: usize = 64 * 1024;
/// Upper bound of one wait while the session is in use, so that deadlines
/// are looked at.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// Sessions tried for one open before giving up (a session may end while
/// an open waits in it).
const ATTEMPTS: usize = 3;

/// Opens queued on one session before another session is worth opening: a
/// session costs about seven round trips (TCP, banners, key exchange,
/// service, authentication), an open queued behind others one each.
const OPENS_PER_LANE: usize = 8;

/// Sessions to jump hosts, keyed by the chain that reaches them.
#[derive(Default)]
pub struct JumpPool {
    chains: Mutex<HashMap<Vec<Resolved>, Arc<Chain>>>,
    /// Failures and refusals are remembered for the round (scan) they
    /// happened in.
    round: AtomicU64,
}

/// The sessions (lanes) to the last hop of one chain.
#[derive(Default)]
struct Chain {
    state: Mutex<ChainState>,
    changed: Condvar,
}

#[derive(Default)]
struct ChainState {
    lanes: Vec<LaneEntry>,
    /// Sessions being connected.
    connecting: usize,
    /// Connections that want a channel and have no lane yet.
    waiting: usize,
    /// The first session could not be had: every connection of that round
    /// fails with this.
    failed: Option<(ConnectError, u64)>,
    /// An extra session was refused: the chain keeps the lanes it has for
    /// the rest of the round.
    refused: Option<SessionRefused>,
    /// The most sessions wanted in a round, and that round.
    wanted: (u64, usize),
}

struct LaneEntry {
    lane: Arc<Lane>,
    /// Opens given to this lane and not answered yet: how busy it is.
    pending: usize,
}

struct SessionRefused {
    round: u64,
    reason: String,
}

impl ChainState {
    fn usable(&self) -> impl Iterator<Item = &LaneEntry> {
        self.lanes.iter().filter(|l| l.lane.usable())
    }
}

/// Sessions wanted for `demand` connections waiting for or opening a
/// channel, at most `limit`.
fn lanes_for(demand: usize, limit: usize) -> usize {
    demand.div_ceil(OPENS_PER_LANE).clamp(1, limit.max(1))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `host:port`, as messages show where a channel goes.
fn target_name(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl JumpPool {
    /// Lets the next connection retry jump hosts that failed before (a new
    /// scan); until then every server behind a failed one fails at once
    /// with its error, and a jump host that refused an extra session is
    /// not asked for another.
    pub fn forget_failures(&self) {
        self.round.fetch_add(1, Ordering::SeqCst);
    }

    /// What this round's connections through jump hosts should tell the
    /// operator: the jump hosts that took fewer sessions than wanted.
    pub fn notes(&self) -> Vec<ReachNote> {
        let round = self.round.load(Ordering::SeqCst);
        let chains: Vec<(Vec<Resolved>, Arc<Chain>)> = lock(&self.chains)
            .iter()
            .map(|(hops, chain)| (hops.clone(), chain.clone()))
            .collect();
        let mut notes: Vec<ReachNote> = chains
            .iter()
            .filter_map(|(hops, chain)| {
                let st = lock(&chain.state);
                let refused = st.refused.as_ref().filter(|r| r.round == round)?;
                Some(ReachNote::FewerJumpSessions {
                    hop: hops.last().expect("a chain has hops").hop_label(),
                    accepted: st.usable().count(),
                    wanted: st.wanted.1,
                    reason: refused.reason.clone(),
                })
            })
            .collect();
        notes.sort_by_key(ToString::to_string);
        notes
    }

    /// A stream to `host:port` through `hops` (first hop first), with at
    /// most `limit` sessions to each hop.
    pub(super) fn open(
        &self,
        hops: &[Resolved],
        host: &str,
        port: u16,
        timeout: Duration,
        limit: usize,
        opts: &ConnectOptions,
    ) -> Result<UnixStream, ConnectError> {
        let mut lost = String::new();
        for _ in 0..ATTEMPTS {
            let reserved = self.lane(hops, limit, opts)?;
            match reserved.lane.open(host, port, timeout) {
                Opened::Stream(s) => return Ok(s),
                Opened::Failed(e) => return Err(e),
                Opened::Retry(why) => lost = why,
            }
        }
        let hop = hops.last().expect("a chain has hops");
        Err(ConnectError::JumpChannel {
            hop: hop.hop_label(),
            target: target_name(host, port),
            reason: format!("its session kept ending ({lost})"),
        })
    }

    /// The first hop of `hops` whose session has ended (0 for the first),
    /// if one has: the one a connection through them lost.
    pub(super) fn lost_hop(&self, hops: &[Resolved]) -> Option<usize> {
        let chains = lock(&self.chains);
        (1..=hops.len())
            .find(|&n| {
                chains.get(&hops[..n]).is_some_and(|chain| {
                    let st = lock(&chain.state);
                    st.lanes.iter().any(|l| !l.lane.usable())
                        || (st.failed.is_some() && st.usable().next().is_none())
                })
            })
            .map(|n| n - 1)
    }

    /// The least busy session to the last hop of `hops`, the open counted
    /// on it until the returned value is dropped. The first session is
    /// connected alone (one host-key question, one login to refuse);
    /// then, while the connections waiting outnumber what the sessions
    /// serve soon, more are connected side by side, up to `limit`.
    fn lane(
        &self,
        hops: &[Resolved],
        limit: usize,
        opts: &ConnectOptions,
    ) -> Result<Reserved, ConnectError> {
        let chain = lock(&self.chains).entry(hops.to_vec()).or_default().clone();
        let round = self.round.load(Ordering::SeqCst);
        let mut st = lock(&chain.state);
        st.waiting += 1;
        let result = loop {
            let usable = st.usable().count();
            let lanes = usable + st.connecting;
            if lanes == 0
                && let Some((error, r)) = &st.failed
                && *r == round
            {
                break Err(error.clone());
            }
            let demand = st.waiting + st.usable().map(|l| l.pending).sum::<usize>();
            let want = lanes_for(demand, limit);
            if st.wanted.0 != round || st.wanted.1 < want {
                st.wanted = (round, want);
            }
            let refused = st.refused.as_ref().is_some_and(|r| r.round == round);
            if lanes < want && (lanes == 0 || (usable > 0 && !refused)) {
                let first = lanes == 0;
                st.connecting += 1;
                drop(st);
                let mut attempt = Connecting {
                    chain: &chain,
                    counted: true,
                };
                let result = if first {
                    self.connect(hops, limit, opts)
                } else {
                    // Whatever needs the operator was settled by the first
                    // session (and cached); an extra one never asks.
                    let quiet = ConnectOptions {
                        batch: true,
                        prompter: None,
                        ..opts.clone()
                    };
                    self.connect(hops, limit, &quiet)
                };
                st = lock(&chain.state);
                st.connecting -= 1;
                attempt.counted = false;
                match result {
                    Ok(lane) => {
                        st.lanes.retain(|l| l.lane.usable() || l.pending > 0);
                        st.lanes.push(LaneEntry { lane, pending: 0 });
                        st.failed = None;
                    }
                    Err(error) if first => st.failed = Some((error, round)),
                    Err(error) => {
                        if !refused {
                            st.refused = Some(SessionRefused {
                                round,
                                reason: refusal_reason(&error),
                            });
                        }
                    }
                }
                chain.changed.notify_all();
                continue;
            }
            let connecting = st.connecting;
            if let Some(entry) = st
                .lanes
                .iter_mut()
                .filter(|l| l.lane.usable())
                .min_by_key(|l| l.pending)
                && (entry.pending < OPENS_PER_LANE || connecting == 0)
            {
                entry.pending += 1;
                break Ok(Reserved {
                    chain: chain.clone(),
                    lane: entry.lane.clone(),
                });
            }
            st = chain
                .changed
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        };
        st.waiting -= 1;
        result
    }

    fn connect(
        &self,
        hops: &[Resolved],
        limit: usize,
        opts: &ConnectOptions,
    ) -> Result<Arc<Lane>, ConnectError> {
        let (hop, before) = hops.split_last().expect("a chain has hops");
        let label = hop.hop_label();
        let wrap = |error| ConnectError::Jump {
            hop: label.clone(),
            error: Box::new(error),
        };
        let stream: OwnedFd = if before.is_empty() {
            let tcp = tcp_connect(hop).map_err(wrap)?;
            let _ = tcp.set_nodelay(true);
            tcp.into()
        } else {
            self.open(
                before,
                &hop.host_name,
                hop.port,
                hop.connect_timeout,
                limit,
                opts,
            )?
            .into()
        };
        let who = format!("jump host {}", hop.alias);
        let (session, socket) = start_session(&who, hop, stream, opts).map_err(wrap)?;
        Lane::start(hop.hop_label(), session, socket).map_err(|e| {
            wrap(ConnectError::Network {
                addr: hop.known_hosts_name(),
                message: e.to_string(),
            })
        })
    }
}

/// Why an extra session was not had, without the hop's name (the note
/// names it).
fn refusal_reason(error: &ConnectError) -> String {
    match error {
        ConnectError::Jump { error, .. } => error.to_string(),
        other => other.to_string(),
    }
}

/// Takes a session being connected off the count, also when connecting
/// panicked, and wakes those waiting for it.
struct Connecting<'a> {
    chain: &'a Chain,
    counted: bool,
}

impl Drop for Connecting<'_> {
    fn drop(&mut self) {
        if self.counted {
            lock(&self.chain.state).connecting -= 1;
            self.chain.changed.notify_all();
        }
    }
}

/// A lane given one open; dropping it counts the open as answered.
struct Reserved {
    chain: Arc<Chain>,
    lane: Arc<Lane>,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        let mut st = lock(&self.chain.state);
        if let Some(entry) = st
            .lanes
            .iter_mut()
            .find(|l| Arc::ptr_eq(&l.lane, &self.lane))
        {
            entry.pending = entry.pending.saturating_sub(1);
        }
        self.chain.changed.notify_all();
    }
}

enum Opened {
    Stream(UnixStream),
    Failed(ConnectError),
    /// The session ended or can open no more: try a new one.
    Retry(String),
}

struct Request {
    host: String,
    port: u16,
    timeout: Duration,
    reply: Sender<Opened>,
}

/// A handle on one session's thread.
struct Lane {
    requests: Sender<Request>,
    wake: UnixStream,
    /// Set by the thread when the session opens no more channels.
    retired: Arc<AtomicBool>,
}

impl Lane {
    fn start(label: String, session: Session, socket: OwnedFd) -> std::io::Result<Arc<Lane>> {
        let (wake, wake_rx) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let (requests, rx) = mpsc::channel();
        let retired = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            label,
            session,
            socket,
            requests: rx,
            wake: wake_rx,
            retired: retired.clone(),
        };
        std::thread::Builder::new()
            .name("farmkey-jump".into())
            .spawn(move || worker.run())?;
        Ok(Arc::new(Lane {
            requests,
            wake,
            retired,
        }))
    }

    fn usable(&self) -> bool {
        !self.retired.load(Ordering::SeqCst)
    }

    fn open(&self, host: &str, port: u16, timeout: Duration) -> Opened {
        let (reply, answer) = mpsc::channel();
        let request = Request {
            host: host.to_string(),
            port,
            timeout,
            reply,
        };
        if self.requests.send(request).is_err() {
            return Opened::Retry("the session had ended".into());
        }
        let _ = (&self.wake).write(&[1]);
        // The thread answers every request or drops it when it ends; it
        // never blocks, and looks at deadlines at least every MAX_WAIT.
        answer
            .recv()
            .unwrap_or_else(|_| Opened::Retry("the session ended".into()))
    }
}

/// An open in progress. libssh2 must be called again with the same
/// arguments until it completes, also once its requester has given up.
struct InFlight {
    host: String,
    port: u16,
    timeout: Duration,
    /// None once answered (the requester got a timeout).
    reply: Option<Sender<Opened>>,
    started: Instant,
}

/// One forwarded connection: a channel and the local end of its pair.
struct Pump {
    channel: Channel,
    local: UnixStream,
    /// From the local end, to send on the channel.
    up: Vec<u8>,
    /// From the channel, to write to the local end.
    down: Vec<u8>,
    local_eof: bool,
    /// The local end is gone: nothing more can be delivered to it.
    local_gone: bool,
    eof_sent: bool,
    remote_eof: bool,
    shut: bool,
}

/// A libssh2 error that ends the whole session (not just one channel).
struct SessionLost(String);

fn eagain(e: &ssh2::Error) -> bool {
    e.code() == ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_EAGAIN)
}

/// Errors that concern one channel only: it was closed, refused, or
/// already at EOF.
fn channel_level(code: ErrorCode) -> bool {
    use libssh2_sys::{
        LIBSSH2_ERROR_CHANNEL_EOF_SENT as FIRST, LIBSSH2_ERROR_CHANNEL_OUTOFORDER as LAST,
        LIBSSH2_ERROR_CHANNEL_WINDOW_FULL,
    };
    matches!(code, ErrorCode::Session(c) if (FIRST..=LAST).contains(&c) || c == LIBSSH2_ERROR_CHANNEL_WINDOW_FULL)
}

impl Pump {
    fn new(channel: Channel, local: UnixStream) -> Pump {
        Pump {
            channel,
            local,
            up: Vec::new(),
            down: Vec::new(),
            local_eof: false,
            local_gone: false,
            eof_sent: false,
            remote_eof: false,
            shut: false,
        }
    }

    /// Why the last channel call failed: the channel's end, or the session's.
    fn failed(&mut self, session: &Session) -> Result<(), SessionLost> {
        match ssh2::Error::last_session_error(session) {
            Some(e) if !channel_level(e.code()) => Err(SessionLost(e.message().to_string())),
            _ => {
                // This channel is over; the server behind it sees EOF.
                self.up.clear();
                self.local_eof = true;
                self.local_gone = true;
                self.remote_eof = true;
                Ok(())
            }
        }
    }

    /// Moves what can move without waiting. `Ok(true)` when something moved.
    fn step(&mut self, session: &Session, chunk: &mut [u8]) -> Result<bool, SessionLost> {
        let mut moved = false;
        if !self.local_eof && self.up.len() < BUF {
            let room = (BUF - self.up.len()).min(chunk.len());
            match self.local.read(&mut chunk[..room]) {
                Ok(0) => {
                    self.local_eof = true;
                    moved = true;
                }
                Ok(n) => {
                    self.up.extend_from_slice(&chunk[..n]);
                    moved = true;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(_) => {
                    self.local_eof = true;
                    self.local_gone = true;
                    moved = true;
                }
            }
        }
        // Flushed even when the local end is gone: libssh2 may hold half of
        // a packet that only this channel's next write completes.
        while !self.up.is_empty() {
            match self.channel.write(&self.up) {
                Ok(0) => break,
                Ok(n) => {
                    self.up.drain(..n);
                    moved = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.failed(session)?;
                    moved = true;
                }
            }
        }
        if self.local_eof && self.up.is_empty() && !self.eof_sent {
            match self.channel.send_eof() {
                Ok(()) => {
                    self.eof_sent = true;
                    moved = true;
                }
                Err(e) if eagain(&e) => {}
                Err(e) if channel_level(e.code()) => {
                    self.eof_sent = true;
                    moved = true;
                }
                Err(e) => return Err(SessionLost(e.message().to_string())),
            }
        }
        if !self.remote_eof && self.down.len() < BUF {
            let room = (BUF - self.down.len()).min(chunk.len());
            match self.channel.read(&mut chunk[..room]) {
                Ok(0) => {
                    self.remote_eof = true;
                    moved = true;
                }
                Ok(n) => {
                    self.down.extend_from_slice(&chunk[..n]);
                    moved = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => {
                    self.failed(session)?;
                    moved = true;
                }
            }
        }
        if !self.down.is_empty() && !self.local_gone {
            match self.local.write(&self.down) {
                Ok(n) => {
                    self.down.drain(..n);
                    moved = n > 0 || moved;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(_) => {
                    self.local_gone = true;
                    self.local_eof = true;
                    moved = true;
                }
            }
        }
        if self.remote_eof && (self.down.is_empty() || self.local_gone) && !self.shut {
            let _ = self.local.shutdown(std::net::Shutdown::Write);
            self.shut = true;
            moved = true;
        }
        Ok(moved)
    }

    /// Both directions are over: the channel can be closed.
    fn finished(&self) -> bool {
        self.eof_sent && self.shut
    }

    /// Whether libssh2 already holds something for this channel that a
    /// poll on the socket would not announce.
    fn held_by_libssh2(&self) -> bool {
        let readable = !self.remote_eof
            && self.down.len() < BUF
            && (self.channel.read_window().available > 0 || self.channel.eof());
        let writable = !self.up.is_empty() && self.channel.write_window().remaining > 0;
        readable || writable
    }

    /// Whether this channel waits for data from the jump host.
    fn wants_remote(&self) -> bool {
        (!self.remote_eof && self.down.len() < BUF) || !self.up.is_empty()
    }

    fn poll_events(&self) -> libc::c_short {
        let mut events = 0;
        if !self.local_eof && self.up.len() < BUF {
            events |= libc::POLLIN;
        }
        if !self.down.is_empty() && !self.local_gone {
            events |= libc::POLLOUT;
        }
        events
    }
}

/// How a session's thread ended.
enum End {
    /// Nobody needs it any more.
    Done,
    /// The session broke: those waiting may try a new one.
    Lost(String),
}

/// The thread that drives one jump session.
struct Worker {
    label: String,
    session: Session,
    socket: OwnedFd,
    requests: Receiver<Request>,
    wake: UnixStream,
    retired: Arc<AtomicBool>,
}

impl Worker {
    fn channel_error(&self, f: &InFlight, reason: String) -> ConnectError {
        ConnectError::JumpChannel {
            hop: self.label.clone(),
            target: target_name(&f.host, f.port),
            reason,
        }
    }

    fn run(self) {
        self.session.set_blocking(false);
        let mut queue: VecDeque<Request> = VecDeque::new();
        let mut opening: Option<InFlight> = None;
        let mut pumps = Vec::new();
        let end = self.serve(&mut queue, &mut opening, &mut pumps);
        // Retired before the forwarded connections close: a handshake that
        // fails because this session ended finds it ended ([`JumpPool::lost_hop`]).
        self.retired.store(true, Ordering::SeqCst);
        drop(pumps);
        let waiting = queue
            .into_iter()
            .map(|r| r.reply)
            .chain(opening.and_then(|f| f.reply))
            .chain(self.requests.try_iter().map(|r| r.reply));
        for reply in waiting {
            let answer = match &end {
                End::Lost(why) => Opened::Retry(why.clone()),
                End::Done => Opened::Retry("the session was closed".into()),
            };
            let _ = reply.send(answer);
        }
        // Dropping the session here, off every caller's thread: a
        // non-blocking session is freed without waiting.
    }

    fn serve(
        &self,
        queue: &mut VecDeque<Request>,
        opening: &mut Option<InFlight>,
        pumps: &mut Vec<Pump>,
    ) -> End {
        let mut closing: Vec<Channel> = Vec::new();
        let mut chunk = vec![0u8; 32 * 1024];
        let mut owners = true;
        let mut idle_passes = 0;
        loop {
            loop {
                match self.requests.try_recv() {
                    Ok(r) => queue.push_back(r),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        owners = false;
                        break;
                    }
                }
            }
            let mut drain = [0u8; 64];
            while matches!((&self.wake).read(&mut drain), Ok(n) if n > 0) {}
            if self.retired.load(Ordering::SeqCst) {
                for r in queue.drain(..) {
                    let _ = r.reply.send(Opened::Retry("moved to a new session".into()));
                }
            }

            let mut moved = false;
            for p in pumps.iter_mut() {
                match p.step(&self.session, &mut chunk) {
                    Ok(m) => moved |= m,
                    Err(SessionLost(why)) => return End::Lost(why),
                }
            }
            let mut i = 0;
            while i < pumps.len() {
                if pumps[i].finished() {
                    closing.push(pumps.swap_remove(i).channel);
                    moved = true;
                } else {
                    i += 1;
                }
            }
            closing.retain_mut(|c| match c.close() {
                Err(e) if eagain(&e) => true,
                _ => {
                    moved = true;
                    false
                }
            });

            // The open goes last: what it reads for the channels is found
            // by held_by_libssh2 below.
            let now = Instant::now();
            if opening.is_none()
                && !self.retired.load(Ordering::SeqCst)
                && let Some(r) = queue.pop_front()
            {
                *opening = Some(InFlight {
                    host: r.host,
                    port: r.port,
                    timeout: r.timeout,
                    reply: Some(r.reply),
                    started: now,
                });
            }
            if let Some(f) = opening.as_ref() {
                match self.session.channel_direct_tcpip(&f.host, f.port, None) {
                    Err(e) if eagain(&e) => {}
                    result => {
                        moved = true;
                        let f = opening.take().expect("in flight");
                        match (result, f.reply.as_ref()) {
                            (Ok(channel), None) => closing.push(channel),
                            (Ok(channel), Some(reply)) => match UnixStream::pair() {
                                Ok((theirs, ours)) if ours.set_nonblocking(true).is_ok() => {
                                    if reply.send(Opened::Stream(theirs)).is_ok() {
                                        pumps.push(Pump::new(channel, ours));
                                    } else {
                                        closing.push(channel);
                                    }
                                }
                                _ => {
                                    let reason = "cannot create a local socket pair".into();
                                    let e = self.channel_error(&f, reason);
                                    let _ = reply.send(Opened::Failed(e));
                                    closing.push(channel);
                                }
                            },
                            (Err(e), reply) if channel_level(e.code()) => {
                                if let Some(reply) = reply {
                                    let e = self.channel_error(&f, refusal(&e));
                                    let _ = reply.send(Opened::Failed(e));
                                }
                            }
                            (Err(e), reply) => {
                                let why = e.message().to_string();
                                if let Some(reply) = reply {
                                    let _ = reply.send(Opened::Retry(why.clone()));
                                }
                                return End::Lost(why);
                            }
                        }
                    }
                }
            }
            if let Some(f) = opening.as_mut()
                && f.reply.is_some()
            {
                if now >= f.started + f.timeout {
                    let reply = f.reply.take().expect("answered once");
                    let reason = format!(
                        "no answer within {}s (the jump host did not connect to it, or does not answer at all)",
                        f.timeout.as_secs()
                    );
                    let _ = reply.send(Opened::Failed(self.channel_error(f, reason)));
                    // libssh2 keeps waiting for that open: this session
                    // can open no more channels. A jump host that is hung
                    // fails the next connection to it.
                    self.retired.store(true, Ordering::SeqCst);
                    moved = true;
                } else if !queue.is_empty() && now >= f.started + SPILL_AFTER {
                    // The ones waiting behind it take a new session.
                    self.retired.store(true, Ordering::SeqCst);
                    moved = true;
                }
            }

            // Unused: no channel carries a connection and no open is awaited
            // (closing channels and an abandoned open go with the session).
            let unused = pumps.is_empty()
                && queue.is_empty()
                && opening.as_ref().is_none_or(|f| f.reply.is_none());
            if unused && (!owners || self.retired.load(Ordering::SeqCst)) {
                return End::Done;
            }
            if moved {
                idle_passes = 0;
                continue;
            }
            let sending = matches!(
                self.session.block_directions(),
                BlockDirections::Outbound | BlockDirections::Both
            );
            // Bounded, in case libssh2 holds data it cannot hand over yet.
            if !sending && idle_passes < 2 && pumps.iter().any(Pump::held_by_libssh2) {
                idle_passes += 1;
                continue;
            }
            idle_passes = 0;

            // Wait for the socket, the local ends, a new request, or a deadline.
            let wants_remote =
                opening.is_some() || !closing.is_empty() || pumps.iter().any(Pump::wants_remote);
            let mut hop_events = libc::POLLRDHUP;
            if wants_remote {
                hop_events |= libc::POLLIN;
            }
            if sending {
                hop_events |= libc::POLLOUT;
            }
            let mut fds = vec![
                libc::pollfd {
                    fd: self.socket.as_raw_fd(),
                    events: hop_events,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.wake.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            for p in pumps.iter() {
                let events = p.poll_events();
                fds.push(libc::pollfd {
                    // A negative fd is skipped, so a closed local end that
                    // nobody reads does not wake the loop again and again.
                    fd: if events == 0 { -1 } else { p.local.as_raw_fd() },
                    events,
                    revents: 0,
                });
            }
            let mut wait = MAX_WAIT;
            if let Some(f) = opening.as_ref().filter(|f| f.reply.is_some()) {
                let next = if queue.is_empty() {
                    f.started + f.timeout
                } else {
                    f.started + SPILL_AFTER
                };
                wait = wait.min(next.saturating_duration_since(Instant::now()));
            }
            // An idle session waits for a request or its jump host alone.
            let idle = pumps.is_empty() && closing.is_empty() && opening.is_none();
            let millis = if idle {
                -1
            } else {
                wait.as_millis().max(1) as libc::c_int
            };
            // SAFETY: fds is a valid array of pollfd for the whole call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
            if n <= 0 {
                continue;
            }
            let hop = fds[0].revents;
            if hop & (libc::POLLHUP | libc::POLLERR) != 0
                || (hop & libc::POLLRDHUP != 0 && !wants_remote)
            {
                return End::Lost("the jump host closed the session".into());
            }
            for (p, fd) in pumps.iter_mut().zip(&fds[2..]) {
                if fd.revents & (libc::POLLHUP | libc::POLLERR) != 0
                    && fd.revents & libc::POLLIN == 0
                {
                    p.local_eof = true;
                    p.local_gone = true;
                }
            }
        }
    }
}

/// Why a jump host refused a `direct-tcpip` channel: the reason codes of
/// RFC 4254 (5.1). libssh2 does not hand the code over; it renders each as
/// a fixed message (its channel.c), which [`OpenFailure::of`] maps back
/// through this one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenFailure {
    AdministrativelyProhibited,
    ConnectFailed,
    UnknownChannelType,
    ResourceShortage,
}

impl OpenFailure {
    const RENDERED: [(OpenFailure, &'static str); 4] = [
        (
            OpenFailure::AdministrativelyProhibited,
            "Channel open failure (administratively prohibited)",
        ),
        (
            OpenFailure::ConnectFailed,
            "Channel open failure (connect failed)",
        ),
        (
            OpenFailure::UnknownChannelType,
            "Channel open failure (unknown channel type)",
        ),
        (
            OpenFailure::ResourceShortage,
            "Channel open failure (resource shortage)",
        ),
    ];

    fn of(e: &ssh2::Error) -> Option<OpenFailure> {
        if e.code() != ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_CHANNEL_FAILURE) {
            return None;
        }
        Self::RENDERED
            .iter()
            .find(|(_, rendered)| *rendered == e.message())
            .map(|(reason, _)| *reason)
    }
}

/// What a refused `direct-tcpip` open means, in an operator's words.
fn refusal(e: &ssh2::Error) -> String {
    match OpenFailure::of(e) {
        Some(OpenFailure::AdministrativelyProhibited) => {
            "the jump host refuses to forward (AllowTcpForwarding or PermitOpen in its sshd_config)"
                .into()
        }
        Some(OpenFailure::ConnectFailed) => {
            "the jump host could not connect to it (nothing listening there, or no route)".into()
        }
        _ => e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_refusals_read_as_an_operator_would_write_them() {
        assert_eq!(target_name("10.0.0.11", 22), "10.0.0.11:22");
        assert_eq!(target_name("fe80::1", 2222), "[fe80::1]:2222");
        let refused = |message: &'static str| {
            refusal(&ssh2::Error::new(
                ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_CHANNEL_FAILURE),
                message,
            ))
        };
        assert!(
            refused("Channel open failure (administratively prohibited)")
                .contains("AllowTcpForwarding")
        );
        assert!(refused("Channel open failure (connect failed)").contains("could not connect"));
        assert_eq!(refused("something else"), "something else");
        assert_eq!(
            OpenFailure::of(&ssh2::Error::new(
                ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_CHANNEL_FAILURE),
                "Channel open failure (resource shortage)",
            )),
            Some(OpenFailure::ResourceShortage)
        );
        // Another error code with the same words is not a refusal.
        assert_eq!(
            OpenFailure::of(&ssh2::Error::new(
                ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_SOCKET_RECV),
                "Channel open failure (connect failed)",
            )),
            None
        );
    }

    #[test]
    fn a_lane_is_added_per_eight_connections_waiting_up_to_the_limit() {
        assert_eq!(lanes_for(0, 8), 1);
        assert_eq!(lanes_for(1, 8), 1);
        assert_eq!(lanes_for(8, 8), 1);
        assert_eq!(lanes_for(9, 8), 2);
        assert_eq!(lanes_for(64, 8), 8);
        assert_eq!(lanes_for(200, 8), 8);
        assert_eq!(lanes_for(64, 3), 3);
        // A limit of 0 is not a setting; one lane is the least.
        assert_eq!(lanes_for(64, 0), 1);
    }

    #[test]
    fn a_refused_session_reads_as_the_jump_host_and_its_numbers() {
        let note = ReachNote::FewerJumpSessions {
            hop: "jump host bastion (ops@[10.0.0.5]:2222)".into(),
            accepted: 3,
            wanted: 8,
            reason: "SSH handshake failed: banner".into(),
        };
        assert_eq!(
            note.to_string(),
            "jump host bastion (ops@[10.0.0.5]:2222) accepted 3 of 8 sessions; the servers behind it went through those (the next was refused: SSH handshake failed: banner)"
        );
        let one = ReachNote::FewerJumpSessions {
            hop: "jump host b (ops@b)".into(),
            accepted: 1,
            wanted: 2,
            reason: "refused".into(),
        };
        assert!(one.to_string().contains("went through that one"), "{one}");
    }

    #[test]
    fn channel_errors_are_told_from_session_errors() {
        use libssh2_sys as raw;
        for code in [
            raw::LIBSSH2_ERROR_CHANNEL_FAILURE,
            raw::LIBSSH2_ERROR_CHANNEL_CLOSED,
            raw::LIBSSH2_ERROR_CHANNEL_EOF_SENT,
            raw::LIBSSH2_ERROR_CHANNEL_OUTOFORDER,
            raw::LIBSSH2_ERROR_CHANNEL_WINDOW_FULL,
        ] {
            assert!(channel_level(ErrorCode::Session(code)), "{code}");
        }
        for code in [
            raw::LIBSSH2_ERROR_SOCKET_DISCONNECT,
            raw::LIBSSH2_ERROR_SOCKET_RECV,
            raw::LIBSSH2_ERROR_TIMEOUT,
            raw::LIBSSH2_ERROR_DECRYPT,
            raw::LIBSSH2_ERROR_EAGAIN,
        ] {
            assert!(!channel_level(ErrorCode::Session(code)), "{code}");
        }
        assert!(!channel_level(ErrorCode::SFTP(4)));
    }
}
