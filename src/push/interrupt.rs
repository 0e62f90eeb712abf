//! A request to stop a push early, from a signal handler, a closed output
//! or the operator. The push checks it between steps: it never stops
//! half-way through a server, and undoes what it changed before it ends.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why a push was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A signal, by number (any of [`STOP_SIGNALS`]).
    Signal(i32),
    /// Standard output was closed (`| head -1`): nobody sees the results.
    OutputClosed,
    /// The operator asked, in the console.
    Operator,
}

const OUTPUT_CLOSED: usize = 1000;
const OPERATOR: usize = 1001;

impl StopReason {
    fn code(self) -> usize {
        match self {
            StopReason::Signal(n) => n.max(1) as usize,
            StopReason::OutputClosed => OUTPUT_CLOSED,
            StopReason::Operator => OPERATOR,
        }
    }

    fn from_code(code: usize) -> Option<StopReason> {
        match code {
            0 => None,
            OUTPUT_CLOSED => Some(StopReason::OutputClosed),
            OPERATOR => Some(StopReason::Operator),
            n => Some(StopReason::Signal(n as i32)),
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Signal(n) if *n == libc::SIGINT => f.write_str("SIGINT (Ctrl-C)"),
            StopReason::Signal(n) if *n == libc::SIGTERM => f.write_str("SIGTERM"),
            StopReason::Signal(n) if *n == libc::SIGHUP => {
                f.write_str("SIGHUP (the terminal went away)")
            }
            StopReason::Signal(n) => match signal_name(*n) {
                Some(name) => f.write_str(name),
                None => write!(f, "signal {n}"),
            },
            StopReason::OutputClosed => f.write_str("the closing of standard output"),
            StopReason::Operator => f.write_str("the operator"),
        }
    }
}

/// The signals that end a process by default and can be caught, beside
/// SIGINT, SIGTERM and SIGHUP: each asks a push (or a rollback) to stop
/// between steps as Ctrl-C does, never kills it half-way with the
/// server's lock held. Not among them: SIGKILL and SIGSTOP (cannot be
/// caught); SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP and SIGSYS (a fault
/// of the process itself, raised again at once if ignored); SIGPIPE,
/// which Rust's runtime ignores, so a closed output is a write error the
/// push takes as [`StopReason::OutputClosed`]. SIGABRT is among them: one
/// sent by another process is a request; the process's own `abort()`
/// still ends it (glibc raises it again with the default action). The real-time signals
/// (SIGRTMIN to SIGRTMAX) are added by [`catch`].
pub const STOP_SIGNALS: [i32; 15] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGIO,
    libc::SIGPWR,
    libc::SIGSTKFLT,
    libc::SIGABRT,
];

fn signal_name(n: i32) -> Option<&'static str> {
    Some(match n {
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGALRM => "SIGALRM",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGSTKFLT => "SIGSTKFLT",
        libc::SIGABRT => "SIGABRT",
        _ => return None,
    })
}

/// Every signal of [`STOP_SIGNALS`], and the real-time ones, asks
/// `interrupt` to stop (the signal's number is its reason).
pub fn catch(interrupt: &Interrupt) {
    let realtime = libc::SIGRTMIN()..=libc::SIGRTMAX();
    for sig in STOP_SIGNALS.into_iter().chain(realtime) {
        let _ = signal_hook::flag::register_usize(sig, interrupt.flag(), sig as usize);
    }
}

/// Shared between the push and whoever may ask it to stop. Cloning shares.
#[derive(Clone, Debug, Default)]
pub struct Interrupt(Arc<AtomicUsize>);

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Asks the push to stop; the first reason given is kept.
    pub fn request(&self, reason: StopReason) {
        let _ = self
            .0
            .compare_exchange(0, reason.code(), Ordering::SeqCst, Ordering::SeqCst);
    }

    pub fn reason(&self) -> Option<StopReason> {
        StopReason::from_code(self.0.load(Ordering::SeqCst))
    }

    /// The value a signal handler stores the signal's number in
    /// (`signal_hook::flag::register_usize`).
    pub fn flag(&self) -> Arc<AtomicUsize> {
        self.0.clone()
    }

    /// Forgets an earlier request, for the next push of a console session.
    pub fn reset(&self) {
        self.0.store(0, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_is_kept_and_shared() {
        let i = Interrupt::new();
        assert_eq!(i.reason(), None);
        let j = i.clone();
        j.request(StopReason::OutputClosed);
        i.request(StopReason::Operator);
        assert_eq!(i.reason(), Some(StopReason::OutputClosed));
        i.reset();
        i.flag().store(libc::SIGHUP as usize, Ordering::SeqCst);
        assert_eq!(j.reason(), Some(StopReason::Signal(libc::SIGHUP)));
        assert!(j.reason().unwrap().to_string().contains("SIGHUP"));
    }

    /// A signal that would end the process by default asks the push to
    /// stop instead, named in the last line.
    #[test]
    fn signals_that_end_a_process_ask_it_to_stop() {
        let i = Interrupt::new();
        catch(&i);
        // Process-wide, but no other test uses SIGUSR2.
        unsafe { libc::raise(libc::SIGUSR2) };
        assert_eq!(i.reason(), Some(StopReason::Signal(libc::SIGUSR2)));
        assert_eq!(i.reason().unwrap().to_string(), "SIGUSR2");
        for (sig, name) in [
            (libc::SIGQUIT, "SIGQUIT"),
            (libc::SIGUSR1, "SIGUSR1"),
            (libc::SIGALRM, "SIGALRM"),
        ] {
            assert!(STOP_SIGNALS.contains(&sig));
            assert_eq!(StopReason::Signal(sig).to_string(), name);
        }
        for never in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, libc::SIGPIPE] {
            assert!(!STOP_SIGNALS.contains(&never), "{never}");
        }
        assert_eq!(
            StopReason::Signal(libc::SIGRTMIN()).to_string(),
            format!("signal {}", libc::SIGRTMIN())
        );
    }
}
