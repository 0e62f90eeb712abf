//! The real farmkey binary in a pseudo-terminal, its screen parsed by vt100,
//! driven with keys as a person would.

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const UP: &str = "\x1b[A";
pub const DOWN: &str = "\x1b[B";
pub const RIGHT: &str = "\x1b[C";
pub const LEFT: &str = "\x1b[D";
pub const ENTER: &str = "\r";
pub const ESC: &str = "\x1b";
pub const TAB: &str = "\t";

fn nz(n: u16) -> std::num::NonZero<u16> {
    std::num::NonZero::new(n).expect("a terminal has a size")
}

pub struct Pty {
    child: Box<dyn Child + Send + Sync>,
    master: Box<dyn MasterPty + Send>,
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
    parser: Arc<Mutex<vt100::Parser>>,
    /// Everything the program wrote, for failure messages.
    raw: Arc<Mutex<Vec<u8>>>,
    /// Signalled when the reader has seen the end of the output.
    done: std::sync::mpsc::Receiver<()>,
}

const BEGIN_FRAME: &[u8] = b"\x1b[?2026h";
const END_FRAME: &[u8] = b"\x1b[?2026l";

/// Holds back the bytes of a frame until the frame is complete, as a
/// terminal with synchronized output (DEC mode 2026) does: the screen the
/// tests read is never a frame drawn half-way.
#[derive(Default)]
pub struct FrameSplitter {
    pending: Vec<u8>,
    in_frame: bool,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl FrameSplitter {
    /// Takes new output; returns what may be shown now.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(bytes);
        let mut ready = Vec::new();
        loop {
            if self.in_frame {
                let Some(i) = find(&self.pending, END_FRAME) else {
                    break;
                };
                ready.extend_from_slice(&self.pending[..i]);
                self.pending.drain(..i + END_FRAME.len());
                self.in_frame = false;
            } else if let Some(i) = find(&self.pending, BEGIN_FRAME) {
                ready.extend_from_slice(&self.pending[..i]);
                self.pending.drain(..i + BEGIN_FRAME.len());
                self.in_frame = true;
            } else {
                // Keep a tail that may be the start of a split BEGIN_FRAME.
                let keep = (1..BEGIN_FRAME.len())
                    .rev()
                    .find(|&k| self.pending.ends_with(&BEGIN_FRAME[..k]))
                    .unwrap_or(0);
                let cut = self.pending.len() - keep;
                ready.extend(self.pending.drain(..cut));
                break;
            }
        }
        ready
    }

    /// The output has ended: whatever is held back is shown.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

impl Pty {
    /// Starts `farmkey ARGS` with a clean environment plus `env`.
    pub fn farmkey(args: &[&str], env: &[(&str, &str)], cols: u16, rows: u16, cwd: &Path) -> Pty {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pseudo-terminal");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_farmkey"));
        cmd.args(args);
        cmd.env_clear();
        cmd.env("TERM", "xterm-256color");
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
        cmd.env("HOME", cwd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.cwd(cwd);
        let child = pair.slave.spawn_command(cmd).expect("start farmkey");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = Arc::new(Mutex::new(pair.master.take_writer().unwrap()));
        let parser = Arc::new(Mutex::new(vt100::Parser::new(nz(rows), nz(cols), 0)));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let (p, r, w) = (parser.clone(), raw.clone(), writer.clone());
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut frames = FrameSplitter::default();
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                r.lock().unwrap().extend_from_slice(&buf[..n]);
                let ready = frames.push(&buf[..n]);
                let mut parser = p.lock().unwrap();
                parser.process(&ready);
                // Answer cursor-position queries as a real terminal does.
                if buf[..n].windows(4).any(|x| x == b"\x1b[6n") {
                    let (row, col) = parser.screen().cursor_position();
                    let mut w = w.lock().unwrap();
                    let _ = write!(w, "\x1b[{};{}R", row + 1, col + 1);
                    let _ = w.flush();
                }
            }
            let rest = frames.finish();
            p.lock().unwrap().process(&rest);
            let _ = done_tx.send(());
        });
        Pty {
            child,
            master: pair.master,
            writer,
            parser,
            raw,
            done,
        }
    }

    pub fn screen(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits until the screen satisfies `pred`; panics with the screen if not.
    pub fn wait_until(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn wait_for(&self, text: &str, timeout: Duration) -> String {
        self.wait_until(&format!("{text:?}"), timeout, |s| s.contains(text))
    }

    pub fn send(&mut self, keys: &str) {
        let mut w = self.writer.lock().unwrap();
        w.write_all(keys.as_bytes()).unwrap();
        w.flush().unwrap();
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.parser.lock().unwrap().set_size(nz(rows), nz(cols));
        self.master
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
    }

    pub fn alternate_screen(&self) -> bool {
        self.parser.lock().unwrap().screen().alternate_screen()
    }

    pub fn cursor_hidden(&self) -> bool {
        self.parser.lock().unwrap().screen().hide_cursor()
    }

    /// Waits for the program to end and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> u32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The screen is final once the reader has seen the end.
                let left = deadline.saturating_duration_since(Instant::now());
                let _ = self.done.recv_timeout(left.max(Duration::from_secs(5)));
                return status.exit_code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("farmkey did not exit; screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The farmkey process, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.process_id().expect("a running process")
    }

    /// Whether the process has ended.
    pub fn ended(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Bytes the program has written so far.
    pub fn output_len(&self) -> usize {
        self.raw.lock().unwrap().len()
    }

    /// Waits until the program has written nothing for `quiet` (the screen
    /// settled); panics if it never does within `timeout`.
    pub fn wait_quiet(&self, quiet: Duration, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (mut len, mut since) = (self.output_len(), Instant::now());
        loop {
            std::thread::sleep(Duration::from_millis(25));
            let now = self.output_len();
            if now != len {
                (len, since) = (now, Instant::now());
            } else if since.elapsed() >= quiet {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "never quiet for {quiet:?}: {} bytes written; screen:\n{}",
                    now,
                    self.screen()
                );
            }
        }
    }

    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.raw.lock().unwrap()).into_owned()
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
