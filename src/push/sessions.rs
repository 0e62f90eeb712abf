//! One open transport per server for the whole push: the files read while
//! planning are written through the same session.

use crate::inventory::{Server, Target};
use crate::transport::ssh::ConnectError;
use crate::transport::{self, ConnectOptions, Transport};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// A server's session could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("{0} is not in the inventory")]
    NotInInventory(String),
    #[error("{0}")]
    Connect(Box<ConnectError>),
    /// Fresh sessions after one broke: none could be opened.
    #[error(
        "cannot reconnect to {server} ({attempts} attempt{} over {secs} s): {last}",
        if *attempts == 1 { "" } else { "s" }
    )]
    Reconnect {
        server: String,
        attempts: u32,
        secs: u64,
        last: Box<ConnectError>,
    },
}

/// A lost server is looked for again this many connect timeouts long.
pub const RECONNECT_FACTOR: u32 = 2;
/// A `local_root` server is only a folder: it is there or not.
pub(super) const LOCAL_WINDOW: Duration = Duration::from_secs(1);

/// How long a server whose session broke is looked for again, and the
/// pauses between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    pub window: Duration,
}

impl Reconnect {
    /// From the inventory's connect timeout of the server.
    pub fn for_server(server: &Server) -> Reconnect {
        let window = match &server.target {
            Target::Ssh { settings, .. } => {
                settings
                    .connect_timeout
                    .unwrap_or(crate::transport::ssh::config::DEFAULT_CONNECT_TIMEOUT)
                    * RECONNECT_FACTOR
            }
            Target::Local { .. } => LOCAL_WINDOW,
        };
        Reconnect { window }
    }

    /// The pause before attempt `n` (1-based; none before the first).
    pub fn pause(&self, n: u32) -> Duration {
        if n <= 1 {
            return Duration::ZERO;
        }
        Duration::from_millis(250 << (n - 2).min(3))
    }
}

pub struct Sessions {
    servers: Vec<Server>,
    opts: ConnectOptions,
    open: HashMap<String, Box<dyn Transport>>,
    /// Servers looked for a whole reconnect window in vain.
    lost: HashSet<String>,
}

impl Sessions {
    pub fn new(servers: Vec<Server>, opts: ConnectOptions) -> Sessions {
        Sessions {
            servers,
            opts,
            open: HashMap::new(),
            lost: HashSet::new(),
        }
    }

    /// The server's transport, connecting on first use.
    pub fn get(&mut self, name: &str) -> Result<&mut dyn Transport, SessionError> {
        if !self.open.contains_key(name) {
            let server = self.server(name)?;
            let t = transport::connect(server, &self.opts)
                .map_err(|e| SessionError::Connect(Box::new(e)))?;
            self.open.insert(name.to_string(), t);
        }
        Ok(self.open.get_mut(name).expect("just inserted").as_mut())
    }

    /// Uses this transport for a server (a test's wrapper, say) instead of
    /// connecting.
    pub fn insert(&mut self, name: &str, transport: Box<dyn Transport>) {
        self.open.insert(name.to_string(), transport);
    }

    /// A fresh session to a server whose session broke, looked for as
    /// [`Reconnect`] says (from the inventory's connect timeout); a server
    /// already looked for that long in vain during this push is tried once.
    pub fn reconnect(&mut self, name: &str) -> Result<&mut dyn Transport, SessionError> {
        self.forget(name);
        let server = self.server(name)?.clone();
        let policy = Reconnect::for_server(&server);
        let once = self.lost.contains(name);
        let start = std::time::Instant::now();
        let mut last = None;
        let mut tried = 0;
        while tried == 0 || (!once && start.elapsed() < policy.window) {
            tried += 1;
            let pause = policy.pause(tried);
            std::thread::sleep(pause.min(policy.window.saturating_sub(start.elapsed())));
            match transport::connect(&server, &self.opts) {
                Ok(t) => {
                    self.lost.remove(name);
                    self.open.insert(name.to_string(), t);
                    return Ok(self.open.get_mut(name).expect("just inserted").as_mut());
                }
                Err(e) => last = Some(Box::new(e)),
            }
        }
        self.lost.insert(name.to_string());
        let last = last.expect("at least one attempt is made");
        Err(SessionError::Reconnect {
            server: name.to_string(),
            attempts: tried,
            secs: start.elapsed().as_secs(),
            last,
        })
    }

    fn server(&self, name: &str) -> Result<&Server, SessionError> {
        self.servers
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| SessionError::NotInInventory(name.to_string()))
    }

    /// Drops a broken session so that the next use reconnects.
    pub fn forget(&mut self, name: &str) {
        if let Some(t) = self.open.remove(name) {
            // Teardown of a dead session can block: never on the caller.
            std::thread::spawn(move || drop(t));
        }
    }
}

impl Drop for Sessions {
    fn drop(&mut self) {
        let open: Vec<_> = self.open.drain().map(|(_, t)| t).collect();
        if !open.is_empty() {
            std::thread::spawn(move || drop(open));
        }
    }
}
