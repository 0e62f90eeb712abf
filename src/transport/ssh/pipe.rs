//! An SFTP (version 3, draft-ietf-secsh-filexfer-02) channel that sends
//! any number of requests before it reads the answers: libssh2's own SFTP
//! keeps one open, one read, one stat and one readdir in flight per
//! channel, so every file of a scan cost its own round trips. Here a
//! scan's files are opened, `lstat`ed and their folders opened in one
//! round trip, read and listed in the next. Used for everything that
//! reads; writes stay with libssh2's SFTP.

use super::Session;
use crate::paths::RemotePath;
use crate::transport::TransportError;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Packet types (draft-ietf-secsh-filexfer-02, section 3).
mod packet {
    pub const INIT: u8 = 1;
    pub const VERSION: u8 = 2;
    pub const OPEN: u8 = 3;
    pub const CLOSE: u8 = 4;
    pub const READ: u8 = 5;
    pub const LSTAT: u8 = 7;
    pub const OPENDIR: u8 = 11;
    pub const READDIR: u8 = 12;
    pub const STAT: u8 = 17;
    pub const READLINK: u8 = 19;
    pub const STATUS: u8 = 101;
    pub const HANDLE: u8 = 102;
    pub const DATA: u8 = 103;
    pub const NAME: u8 = 104;
    pub const ATTRS: u8 = 105;
}
const FX_OK: u32 = 0;
const FX_EOF: u32 = 1;
const FXF_READ: u32 = 1;

/// A read asks for this much: what every sftp-server since OpenSSH 7.7
/// (and Win32-OpenSSH 7.7) answers in full (`process_read`: 64 KiB then,
/// 256 KiB since 8.x).
const READ_LEN: u32 = 64 * 1024;
/// Reads asked at once for a file whose size `stat` did not tell.
const READS_AHEAD: u64 = 4;
/// The largest answer accepted: sftp-server sends at most 256 KiB
/// (SFTP_MAX_MSG_LENGTH); anything far larger is not SFTP.
const MAX_PACKET: usize = 1024 * 1024;

/// One request.
#[derive(Debug, Clone)]
pub enum Query<'a> {
    Open(&'a str),
    Close(Vec<u8>),
    Read(Vec<u8>, u64, u32),
    Lstat(&'a str),
    Stat(&'a str),
    OpenDir(&'a str),
    ReadDir(Vec<u8>),
    ReadLink(&'a str),
}

impl Query<'_> {
    /// The request as sent, with its id (section 6).
    fn encode(&self, id: u32, out: &mut Vec<u8>) {
        let mut b = Vec::new();
        let (kind, name, handle) = match self {
            Query::Open(p) => (packet::OPEN, Some(p), None),
            Query::Close(h) => (packet::CLOSE, None, Some(h)),
            Query::Read(h, _, _) => (packet::READ, None, Some(h)),
            Query::Lstat(p) => (packet::LSTAT, Some(p), None),
            Query::Stat(p) => (packet::STAT, Some(p), None),
            Query::OpenDir(p) => (packet::OPENDIR, Some(p), None),
            Query::ReadDir(h) => (packet::READDIR, None, Some(h)),
            Query::ReadLink(p) => (packet::READLINK, Some(p), None),
        };
        b.push(kind);
        b.extend_from_slice(&id.to_be_bytes());
        if let Some(p) = name {
            put_string(&mut b, p.as_bytes());
        }
        if let Some(h) = handle {
            put_string(&mut b, h);
        }
        match self {
            // Read only, no attributes.
            Query::Open(_) => {
                b.extend_from_slice(&FXF_READ.to_be_bytes());
                b.extend_from_slice(&0u32.to_be_bytes());
            }
            Query::Read(_, offset, len) => {
                b.extend_from_slice(&offset.to_be_bytes());
                b.extend_from_slice(&len.to_be_bytes());
            }
            _ => {}
        }
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(&b);
    }
}

/// One answer.
#[derive(Debug)]
pub enum Reply {
    /// An SFTP status other than OK (and OK for a close).
    Status(u32),
    Handle(Vec<u8>),
    Data(Vec<u8>),
    /// Names with their attributes (READDIR, READLINK).
    Name(Names),
    Attrs(ssh2::FileStat),
}

/// The session is gone or the server spoke something that is not SFTP.
pub type Broken = TransportError;

/// Names with their attributes, as READDIR answers them.
pub type Names = Vec<(String, ssh2::FileStat)>;

/// What a pipe runs over: the session, its socket to wait on, and how
/// long to wait for an answer.
#[derive(Clone, Copy)]
pub struct Wire<'a> {
    pub session: &'a Session,
    pub socket: &'a OwnedFd,
    pub timeout: Duration,
}

fn broken(why: impl Into<String>) -> Broken {
    TransportError::Disconnected(why.into())
}

pub struct Pipe {
    channel: ssh2::Channel,
    next_id: u32,
    /// Closes sent whose answers are not waited for: read and dropped
    /// with the next exchange's.
    unanswered: HashSet<u32>,
    /// Bytes of answers not yet whole (an unanswered close's, arriving
    /// after the last answer waited for).
    inbuf: Vec<u8>,
    /// Once broken, every later exchange fails the same way.
    failed: Option<Broken>,
}

/// Big-endian fields of an answer.
struct Fields<'b>(&'b [u8]);

impl<'b> Fields<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], Broken> {
        if self.0.len() < n {
            return Err(broken("a malformed SFTP answer (too short)"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, Broken> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, Broken> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn string(&mut self) -> Result<&'b [u8], Broken> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// ATTRS (section 5), as the ssh2 crate keeps them.
    fn attrs(&mut self) -> Result<ssh2::FileStat, Broken> {
        let flags = self.u32()?;
        let mut st = ssh2::FileStat {
            size: None,
            uid: None,
            gid: None,
            perm: None,
            atime: None,
            mtime: None,
        };
        if flags & 0x1 != 0 {
            st.size = Some(self.u64()?);
        }
        if flags & 0x2 != 0 {
            st.uid = Some(self.u32()?);
            st.gid = Some(self.u32()?);
        }
        if flags & 0x4 != 0 {
            st.perm = Some(self.u32()?);
        }
        if flags & 0x8 != 0 {
            st.atime = Some(self.u32()? as u64);
            st.mtime = Some(self.u32()? as u64);
        }
        if flags & 0x8000_0000 != 0 {
            for _ in 0..self.u32()? {
                self.string()?;
                self.string()?;
            }
        }
        Ok(st)
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// Waits until the socket is ready in the direction libssh2 waits for,
/// at most until `deadline` (and 100 ms).
fn wait(wire: Wire<'_>, deadline: Instant) -> Result<(), Broken> {
    let now = Instant::now();
    if now >= deadline {
        return Err(broken("the server stopped answering (timeout)"));
    }
    let events = match wire.session.block_directions() {
        ssh2::BlockDirections::Outbound => libc::POLLOUT,
        ssh2::BlockDirections::Both => libc::POLLIN | libc::POLLOUT,
        _ => libc::POLLIN,
    };
    let mut fd = libc::pollfd {
        fd: wire.socket.as_raw_fd(),
        events,
        revents: 0,
    };
    let ms = (deadline - now).as_millis().min(100) as libc::c_int;
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut fd, 1, ms) };
    Ok(())
}

fn would_block(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock
}

impl Pipe {
    /// Opens a session channel, starts the `sftp` subsystem and agrees on
    /// version 3 (three round trips, as libssh2's `sftp_init`).
    pub fn open(who: &str, wire: Wire<'_>) -> Result<Pipe, String> {
        let step = |what| crate::transport::step(who, what);
        let mut channel = wire
            .session
            .channel_session()
            .map_err(|e| e.message().to_string())?;
        step("channel open");
        channel
            .subsystem("sftp")
            .map_err(|e| e.message().to_string())?;
        step("sftp subsystem");
        let mut pipe = Pipe {
            channel,
            next_id: 0,
            unanswered: HashSet::new(),
            inbuf: Vec::new(),
            failed: None,
        };
        let mut init = Vec::new();
        init.extend_from_slice(&5u32.to_be_bytes());
        init.push(packet::INIT);
        init.extend_from_slice(&3u32.to_be_bytes());
        let mut inbuf = std::mem::take(&mut pipe.inbuf);
        wire.session.set_blocking(false);
        let got = pipe.pump(wire, &init, &mut inbuf, true, |p, _| {
            Ok(p.first() == Some(&packet::VERSION))
        });
        wire.session.set_blocking(true);
        pipe.inbuf = inbuf;
        step("SFTP init");
        match got {
            Ok(()) => Ok(pipe),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Writes `out` and reads answers into `inbuf`, handing each whole
    /// packet to `take` until it says all are in (returns `true`).
    fn pump(
        &mut self,
        wire: Wire<'_>,
        out: &[u8],
        inbuf: &mut Vec<u8>,
        answers: bool,
        mut take: impl FnMut(&[u8], &mut HashSet<u32>) -> Result<bool, Broken>,
    ) -> Result<(), Broken> {
        let mut sent = 0;
        let mut chunk = [0u8; 32 * 1024];
        // The timeout counts from the last answer.
        let mut deadline = Instant::now() + wire.timeout;
        let mut done = !answers;
        while !done || sent < out.len() {
            let mut progress = false;
            if sent < out.len() {
                match self.channel.write(&out[sent..]) {
                    Ok(n) => {
                        sent += n;
                        progress |= n > 0;
                    }
                    Err(e) if would_block(&e) => {}
                    Err(e) => return Err(broken(format!("SFTP channel: {e}"))),
                }
            }
            match self.channel.read(&mut chunk) {
                Ok(0) => return Err(broken("the server closed the SFTP channel")),
                Ok(n) => {
                    inbuf.extend_from_slice(&chunk[..n]);
                    progress = true;
                    deadline = Instant::now() + wire.timeout;
                }
                Err(e) if would_block(&e) => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Err(broken("the server stopped answering (timeout)"));
                }
                Err(e) => return Err(broken(format!("SFTP channel: {e}"))),
            }
            // Whole packets: a length, then that many bytes.
            let mut at = 0;
            while inbuf.len() - at >= 4 {
                let len = u32::from_be_bytes(inbuf[at..at + 4].try_into().expect("4 bytes"));
                let len = len as usize;
                if len == 0 || len > MAX_PACKET {
                    return Err(broken(format!("a malformed SFTP answer ({len} bytes)")));
                }
                if inbuf.len() - at - 4 < len {
                    break;
                }
                let body = &inbuf[at + 4..at + 4 + len];
                at += 4 + len;
                if take(body, &mut self.unanswered)? {
                    done = true;
                }
            }
            if at > 0 {
                zeroize::Zeroize::zeroize(&mut inbuf[..at]);
                inbuf.drain(..at);
            }
            if !progress && (!done || sent < out.len()) {
                wait(wire, deadline)?;
            }
        }
        chunk.fill(0);
        Ok(())
    }

    /// Waits for the answers of the closes sent: on Windows a file stays
    /// open until its close is done, and an open file cannot be renamed
    /// or removed through another channel (sftp-server opens with
    /// FILE_SHARE_READ | FILE_SHARE_WRITE only, contrib/win32/win32compat/
    /// fileio.c `createFile_flags_setup`).
    pub fn settle(&mut self, wire: Wire<'_>) -> Result<(), Broken> {
        if self.unanswered.is_empty() {
            return Ok(());
        }
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut inbuf = std::mem::take(&mut self.inbuf);
        wire.session.set_blocking(false);
        let got = self.pump(wire, &[], &mut inbuf, true, |p, unanswered| {
            let mut f = Fields(p);
            f.take(1)?;
            let id = f.u32()?;
            if !unanswered.remove(&id) {
                return Err(broken(format!("an SFTP answer to no request (id {id})")));
            }
            Ok(unanswered.is_empty())
        });
        wire.session.set_blocking(true);
        self.inbuf = inbuf;
        if let Err(e) = &got {
            self.failed = Some(e.clone());
        }
        got
    }

    /// Sends every request at once and waits for all their answers, in
    /// the order asked. A close is sent without waiting for its answer.
    pub fn exchange(&mut self, wire: Wire<'_>, asks: &[Query<'_>]) -> Result<Vec<Reply>, Broken> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut out = Vec::new();
        let mut ids: HashMap<u32, usize> = HashMap::new();
        for (i, ask) in asks.iter().enumerate() {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            ask.encode(id, &mut out);
            if matches!(ask, Query::Close(_)) {
                self.unanswered.insert(id);
            } else {
                ids.insert(id, i);
            }
        }
        let mut answers: Vec<Option<Reply>> = (0..asks.len()).map(|_| None).collect();
        let mut waiting = ids.len();
        let mut inbuf = std::mem::take(&mut self.inbuf);
        wire.session.set_blocking(false);
        let got = if waiting == 0 && out.is_empty() {
            Ok(())
        } else {
            let awaited = waiting > 0;
            self.pump(wire, &out, &mut inbuf, awaited, |p, unanswered| {
                let mut f = Fields(p);
                let kind = f.take(1)?[0];
                let id = f.u32()?;
                if unanswered.remove(&id) {
                    return Ok(waiting == 0);
                }
                let Some(&i) = ids.get(&id) else {
                    return Err(broken(format!("an SFTP answer to no request (id {id})")));
                };
                let answer = match kind {
                    packet::STATUS => Reply::Status(f.u32()?),
                    packet::HANDLE => Reply::Handle(f.string()?.to_vec()),
                    packet::DATA => Reply::Data(f.string()?.to_vec()),
                    packet::ATTRS => Reply::Attrs(f.attrs()?),
                    packet::NAME => {
                        let n = f.u32()?;
                        let mut names = Vec::new();
                        for _ in 0..n {
                            let name = String::from_utf8_lossy(f.string()?).into_owned();
                            f.string()?;
                            names.push((name, f.attrs()?));
                        }
                        Reply::Name(names)
                    }
                    other => {
                        return Err(broken(format!("an SFTP answer of unknown type {other}")));
                    }
                };
                if answers[i].replace(answer).is_none() {
                    waiting -= 1;
                }
                Ok(waiting == 0)
            })
        };
        wire.session.set_blocking(true);
        self.inbuf = inbuf;
        zeroize::Zeroize::zeroize(&mut out);
        if let Err(e) = got {
            self.failed = Some(e.clone());
            return Err(e);
        }
        Ok(answers
            .into_iter()
            .map(|a| a.unwrap_or(Reply::Status(FX_OK)))
            .collect())
    }
}

/// A status as farmkey words it for `path`.
fn status(path: &RemotePath, code: u32) -> TransportError {
    super::status_error(path, code as i32)
}

/// What `lstat` or `stat` answered: `Ok(None)` for "no such file".
pub fn stat_answer(path: &RemotePath, a: Reply) -> Result<Option<ssh2::FileStat>, TransportError> {
    match a {
        Reply::Attrs(st) => Ok(Some(st)),
        Reply::Status(code) => match status(path, code) {
            TransportError::NotFound { .. } => Ok(None),
            other => Err(other),
        },
        _ => Err(broken("an SFTP answer of the wrong type to a stat")),
    }
}

/// A file being read.
struct Reading {
    handle: Vec<u8>,
    /// Bytes by offset, as they came.
    chunks: BTreeMap<u64, Vec<u8>>,
    /// Where an answer said the file ends.
    eof: Option<u64>,
    /// The size `lstat` gave a regular file, until the first reads ask
    /// for all of it.
    size: Option<u64>,
}

impl Reading {
    /// The bytes from 0 without a gap.
    fn contiguous(&self) -> u64 {
        let mut end = 0;
        for (&at, bytes) in &self.chunks {
            if at > end {
                break;
            }
            end = end.max(at + bytes.len() as u64);
        }
        end
    }
}

/// A folder being listed.
struct Listed {
    handle: Vec<u8>,
    /// The names so far.
    names: Names,
    /// "End of file" came.
    done: bool,
}

/// What a read of many files brings back, per file.
pub struct FileRead {
    pub bytes: Result<Vec<u8>, TransportError>,
    /// What `lstat` answered for its name, when asked.
    pub lstat: Option<Result<Option<ssh2::FileStat>, TransportError>>,
    /// Larger than the limit: nothing kept (the size, when known).
    pub too_large: Option<Option<u64>>,
}

/// Files read and folders listed by [`gather`], in the order asked.
pub struct Gathered {
    pub files: Vec<FileRead>,
    pub folders: Vec<Result<Names, TransportError>>,
}

/// Reads `files` (with the `lstat` of each when `lstat`) and lists
/// `folders`, every request in flight together: one round trip opens and
/// `stat`s each file (and `lstat`s it) and opens the folders; the next
/// reads all of each file (its size known from `stat`) with one more read
/// that finds its end, and lists each folder (two READDIRs, enough for a
/// folder of up to 100 entries on OpenSSH's sftp-server); closes are not
/// waited for. A file larger than `max` is never read.
pub fn gather(
    pipe: &mut Pipe,
    wire: Wire<'_>,
    files: &[RemotePath],
    lstat: bool,
    folders: &[RemotePath],
    max: u64,
) -> Result<Gathered, Broken> {
    let names: Vec<&str> = files.iter().map(|p| p.as_sftp()).collect();
    let dirs: Vec<&str> = folders.iter().map(|p| p.as_sftp()).collect();
    let mut asks: Vec<Query> = Vec::new();
    for n in &names {
        // The size of what the open follows, to ask for all of it at once.
        asks.extend([Query::Open(n), Query::Stat(n)]);
        if lstat {
            asks.push(Query::Lstat(n));
        }
    }
    asks.extend(dirs.iter().map(|d| Query::OpenDir(d)));
    let mut answers = pipe.exchange(wire, &asks)?.into_iter();

    let mut reads: Vec<FileRead> = Vec::with_capacity(files.len());
    let mut open: Vec<Option<Reading>> = Vec::with_capacity(files.len());
    let mut closes: Vec<Vec<u8>> = Vec::new();
    for path in files {
        let opened = answers.next().expect("one answer per request");
        let followed = stat_answer(path, answers.next().expect("one answer per request"));
        let st = lstat.then(|| stat_answer(path, answers.next().expect("one answer per request")));
        let mut read = FileRead {
            bytes: Ok(Vec::new()),
            lstat: st,
            too_large: None,
        };
        let mut reading = None;
        match opened {
            Reply::Handle(handle) => {
                // A regular file's size is known: beyond the limit it is
                // never read.
                let size = match &followed {
                    Ok(Some(st)) if st.file_type() == ssh2::FileType::RegularFile => st.size,
                    _ => None,
                };
                if size.is_some_and(|s| s > max) {
                    read.too_large = Some(size);
                    closes.push(handle);
                } else {
                    reading = Some(Reading {
                        handle,
                        chunks: BTreeMap::new(),
                        eof: None,
                        size,
                    });
                }
            }
            Reply::Status(code) => read.bytes = Err(status(path, code)),
            _ => read.bytes = Err(broken("an SFTP answer of the wrong type to an open")),
        }
        reads.push(read);
        open.push(reading);
    }
    let mut listing: Vec<Result<Listed, TransportError>> = folders
        .iter()
        .map(
            |dir| match answers.next().expect("one answer per request") {
                Reply::Handle(handle) => Ok(Listed {
                    handle,
                    names: Vec::new(),
                    done: false,
                }),
                Reply::Status(code) => Err(status(dir, code)),
                _ => Err(broken("an SFTP answer of the wrong type to an opendir")),
            },
        )
        .collect();

    // Rounds of reads and readdirs until every file and folder is done.
    loop {
        let mut asks: Vec<Query> = Vec::new();
        // What each ask is for: a file's read at an offset, a folder.
        let mut what: Vec<(bool, usize, u64)> = Vec::new();
        for (i, r) in open.iter_mut().enumerate() {
            let Some(r) = r else { continue };
            let have = r.contiguous();
            if r.eof.is_some_and(|end| have >= end) || have > max {
                continue;
            }
            // A known size: all of it and the read that finds the end,
            // at once. Else a few reads ahead of the first gap.
            let (until, probe) = match r.size.take() {
                Some(size) => (size, true),
                None => ((have + READS_AHEAD * READ_LEN as u64).min(max + 1), false),
            };
            let mut at = have;
            while at < until {
                let len = (until - at).min(READ_LEN as u64);
                asks.push(Query::Read(r.handle.clone(), at, len as u32));
                what.push((true, i, at));
                at += len;
            }
            if probe {
                asks.push(Query::Read(r.handle.clone(), until, READ_LEN));
                what.push((true, i, until));
            }
        }
        for (i, l) in listing.iter().enumerate() {
            if let Ok(Listed {
                handle: h,
                done: false,
                ..
            }) = l
            {
                for _ in 0..2 {
                    asks.push(Query::ReadDir(h.clone()));
                    what.push((false, i, 0));
                }
            }
        }
        if asks.is_empty() {
            break;
        }
        let answers = pipe.exchange(wire, &asks)?;
        for ((file, i, at), answer) in what.into_iter().zip(answers) {
            if file {
                let Some(r) = &mut open[i] else { continue };
                match answer {
                    Reply::Data(bytes) if bytes.is_empty() => {
                        r.eof = Some(r.eof.map_or(at, |e| e.min(at)));
                    }
                    Reply::Data(bytes) => {
                        r.chunks.insert(at, bytes);
                    }
                    Reply::Status(FX_EOF) => r.eof = Some(r.eof.map_or(at, |e| e.min(at))),
                    Reply::Status(code) => {
                        reads[i].bytes = Err(status(&files[i], code));
                        if let Some(r) = open[i].take() {
                            closes.push(r.handle);
                        }
                    }
                    _ => {
                        reads[i].bytes = Err(broken("an SFTP answer of the wrong type to a read"));
                        if let Some(r) = open[i].take() {
                            closes.push(r.handle);
                        }
                    }
                }
            } else if let Ok(Listed { names, done, .. }) = &mut listing[i] {
                let failed = match answer {
                    Reply::Name(more) if !*done => {
                        names.extend(more);
                        None
                    }
                    Reply::Name(_) => None,
                    Reply::Status(FX_EOF) => {
                        *done = true;
                        None
                    }
                    Reply::Status(code) => Some(status(&folders[i], code)),
                    _ => Some(broken("an SFTP answer of the wrong type to a readdir")),
                };
                if let Some(e) = failed
                    && let Ok(l) = std::mem::replace(&mut listing[i], Err(e))
                {
                    closes.push(l.handle);
                }
            }
        }
    }
    for (i, r) in open.into_iter().enumerate() {
        let Some(mut r) = r else { continue };
        let have = r.contiguous();
        if have > max {
            reads[i].too_large = Some(None);
        } else {
            let mut bytes = Vec::with_capacity(have as usize);
            for (at, chunk) in &r.chunks {
                let from = (bytes.len() as u64).saturating_sub(*at) as usize;
                if *at <= bytes.len() as u64 && from < chunk.len() {
                    bytes.extend_from_slice(&chunk[from..]);
                }
            }
            bytes.truncate(r.eof.unwrap_or(have).min(have) as usize);
            reads[i].bytes = Ok(bytes);
        }
        for chunk in r.chunks.values_mut() {
            zeroize::Zeroize::zeroize(chunk);
        }
        closes.push(r.handle);
    }
    let mut lists = Vec::with_capacity(folders.len());
    for l in listing {
        lists.push(l.map(
            |Listed {
                 handle: h, names, ..
             }| {
                closes.push(h);
                names
            },
        ));
    }
    if !closes.is_empty() {
        let asks: Vec<Query> = closes.into_iter().map(Query::Close).collect();
        pipe.exchange(wire, &asks)?;
    }
    Ok(Gathered {
        files: reads,
        folders: lists,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_encoded_as_the_draft_lays_them_out() {
        let mut out = Vec::new();
        Query::Open("/C:/a").encode(7, &mut out);
        let mut want = vec![0, 0, 0, 22, packet::OPEN, 0, 0, 0, 7, 0, 0, 0, 5];
        want.extend_from_slice(b"/C:/a");
        want.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(out, want);
        out.clear();
        Query::Read(vec![9, 9], 65_536, 1024).encode(1, &mut out);
        let want = [
            0,
            0,
            0,
            23,
            packet::READ,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            2,
            9,
            9,
            0,
            0,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            4,
            0,
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn attributes_are_read_whatever_flags_they_carry() {
        let mut b = Vec::new();
        b.extend_from_slice(&(0x8000_000fu32).to_be_bytes());
        b.extend_from_slice(&5u64.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        b.extend_from_slice(&0o120_777u32.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 4]);
        b.extend_from_slice(&1u32.to_be_bytes());
        put_string(&mut b, b"name@example.com");
        put_string(&mut b, b"value");
        b.push(0xff);
        let mut f = Fields(&b);
        let st = f.attrs().unwrap();
        assert_eq!((st.size, st.uid, st.gid), (Some(5), Some(1), Some(2)));
        assert_eq!((st.atime, st.mtime), (Some(3), Some(4)));
        assert!(st.file_type() == ssh2::FileType::Symlink);
        assert_eq!(f.0, [0xff]);
        // Cut short: an error, never a panic.
        assert!(Fields(&b[..10]).attrs().is_err());
    }

    #[test]
    fn a_file_is_whole_only_up_to_its_first_gap() {
        let mut r = Reading {
            handle: Vec::new(),
            chunks: BTreeMap::new(),
            eof: None,
            size: None,
        };
        assert_eq!(r.contiguous(), 0);
        r.chunks.insert(0, vec![1; 10]);
        r.chunks.insert(20, vec![1; 10]);
        assert_eq!(r.contiguous(), 10);
        r.chunks.insert(5, vec![1; 15]);
        assert_eq!(r.contiguous(), 30);
    }
}
