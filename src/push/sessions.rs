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
    /// The open sessions, least recently used first.
    used: Vec<String>,
    /// Sessions open at most at once ([`transport::session_budget`]): in a
    /// farm larger than the open-files limit allows, the least recently
    /// used session is closed (its lock file stays) and opened again when
    /// needed.
    cap: usize,
    /// Servers looked for a whole reconnect window in vain.
    lost: HashSet<String>,
    /// Why [`Sessions::connect_all`] could not connect a server: its next
    /// [`Sessions::get`] says so instead of trying again.
    refused: HashMap<String, ConnectError>,
}

impl Sessions {
    pub fn new(servers: Vec<Server>, opts: ConnectOptions) -> Sessions {
        Sessions {
            servers,
            opts,
            open: HashMap::new(),
            used: Vec::new(),
            cap: transport::session_budget(),
            lost: HashSet::new(),
            refused: HashMap::new(),
        }
    }

    /// Connects to the servers named, all at once as a scan does (at most
    /// [`crate::farm::DEFAULT_JOBS`] at a time, and no more than the cap
    /// leaves room for): a push to many servers behind a jump host spreads
    /// their channels over its sessions as a scan does, rather than
    /// connecting one server after another. A server that cannot be
    /// reached keeps its error for its next [`Sessions::get`].
    pub fn connect_all(&mut self, names: &[String]) {
        let room = self.cap.saturating_sub(self.open.len());
        let mut wanted: Vec<Server> = Vec::new();
        for name in names {
            if let Ok(server) = self.server(name)
                && !self.open.contains_key(&server.name)
                && !self.refused.contains_key(&server.name)
                && !wanted.iter().any(|w| w.name == server.name)
                && wanted.len() < room
            {
                wanted.push(server.clone());
            }
        }
        if wanted.len() < 2 {
            return;
        }
        let opts = &self.opts;
        let done = crate::farm::on_each(&wanted, crate::farm::DEFAULT_JOBS, |server| {
            (server.name.clone(), transport::connect(server, opts))
        });
        for (name, result) in done {
            match result {
                Ok(t) => {
                    self.mark_used(&name);
                    self.open.insert(name, t);
                }
                Err(e) => {
                    self.refused.insert(name, e);
                }
            }
        }
    }

    /// At most `cap` sessions open at once (at least one).
    pub fn with_cap(mut self, cap: usize) -> Sessions {
        self.cap = cap.max(1);
        self
    }

    /// Closes the least recently used sessions until one more fits.
    fn make_room(&mut self) {
        while self.open.len() >= self.cap && !self.used.is_empty() {
            let oldest = self.used.remove(0);
            // Closed here, not on another thread: its descriptors are
            // needed now.
            drop(self.open.remove(&oldest));
        }
    }

    /// Marks `name` the most recently used.
    fn mark_used(&mut self, name: &str) {
        self.used.retain(|n| n != name);
        self.used.push(name.to_string());
    }

    /// The server's transport, connecting on first use.
    pub fn get(&mut self, name: &str) -> Result<&mut dyn Transport, SessionError> {
        if let Some(e) = self.refused.remove(name) {
            return Err(SessionError::Connect(Box::new(e)));
        }
        if !self.open.contains_key(name) {
            let server = self.server(name)?.clone();
            self.make_room();
            let t = transport::connect(&server, &self.opts)
                .map_err(|e| SessionError::Connect(Box::new(e)))?;
            self.open.insert(name.to_string(), t);
        }
        self.mark_used(name);
        Ok(self.open.get_mut(name).expect("just inserted").as_mut())
    }

    /// Uses this transport for a server (a test's wrapper, say) instead of
    /// connecting.
    pub fn insert(&mut self, name: &str, transport: Box<dyn Transport>) {
        if !self.open.contains_key(name) {
            self.make_room();
        }
        self.mark_used(name);
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
            self.make_room();
            match transport::connect(&server, &self.opts) {
                Ok(t) => {
                    self.lost.remove(name);
                    self.mark_used(name);
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
        self.refused.remove(name);
        self.used.retain(|n| n != name);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Target;
    use crate::paths::RemotePath;

    #[test]
    fn no_more_sessions_than_the_cap_are_open_the_least_recently_used_closed() {
        let dir = tempfile::tempdir().unwrap();
        let servers: Vec<Server> = ["a", "b", "c"]
            .iter()
            .map(|n| {
                std::fs::create_dir_all(dir.path().join(n).join("C:")).unwrap();
                Server {
                    name: n.to_string(),
                    target: Target::Local {
                        root: dir.path().join(n),
                    },
                    max_config_bytes: crate::inventory::DEFAULT_MAX_CONFIG_BYTES,
                    backup_keep: None,
                }
            })
            .collect();
        let mut sessions = Sessions::new(servers, ConnectOptions::default()).with_cap(2);
        let c = RemotePath::parse("C:/").unwrap();
        for name in ["a", "b", "a", "c", "b", "a"] {
            assert!(sessions.get(name).unwrap().list(&c).is_ok(), "{name}");
            assert!(sessions.open.len() <= 2);
            assert_eq!(sessions.used.last().map(String::as_str), Some(name));
        }
        // "b" then "a" were used last: "c" was closed.
        assert!(!sessions.open.contains_key("c"));
        assert_eq!(sessions.used, ["b", "a"]);
    }

    #[test]
    fn servers_connected_at_once_are_open_once_each_and_a_failure_waits_for_its_get() {
        let dir = tempfile::tempdir().unwrap();
        let server = |n: &str, present: bool| {
            if present {
                std::fs::create_dir_all(dir.path().join(n).join("C:")).unwrap();
            }
            Server {
                name: n.to_string(),
                target: Target::Local {
                    root: dir.path().join(n),
                },
                max_config_bytes: crate::inventory::DEFAULT_MAX_CONFIG_BYTES,
                backup_keep: None,
            }
        };
        let servers = vec![
            server("a", true),
            server("b", true),
            server("gone", false),
            server("d", true),
        ];
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let mut sessions = Sessions::new(servers, ConnectOptions::default()).with_cap(3);
        sessions.connect_all(&names(&["a", "b", "a", "gone", "d", "nobody"]));
        // Three fit under the cap: a, b, and gone's failure (d waits).
        let mut open: Vec<&String> = sessions.open.keys().collect();
        open.sort();
        assert_eq!(open, ["a", "b"]);
        assert!(!sessions.open.contains_key("d"));
        match sessions.get("gone") {
            Err(SessionError::Connect(e)) => {
                assert!(matches!(*e, ConnectError::LocalRoot(_)), "{e}")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        // Said once; the next get tries again.
        std::fs::create_dir_all(dir.path().join("gone").join("C:")).unwrap();
        assert!(sessions.get("gone").is_ok());
        // Fewer than two left to connect: nothing is done at once.
        sessions.connect_all(&names(&["a"]));
        assert!(sessions.refused.is_empty());
    }
}
