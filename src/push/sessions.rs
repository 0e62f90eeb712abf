//! One open transport per server for the whole push: the files read while
//! planning are written through the same session.

use super::error::SessionError;
use crate::inventory::Server;
use crate::transport::{self, ConnectOptions, Transport};
use std::collections::HashMap;

pub struct Sessions {
    servers: Vec<Server>,
    opts: ConnectOptions,
    open: HashMap<String, Box<dyn Transport>>,
}

impl Sessions {
    pub fn new(servers: Vec<Server>, opts: ConnectOptions) -> Sessions {
        Sessions {
            servers,
            opts,
            open: HashMap::new(),
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

    /// A fresh session to a server whose session broke: a few attempts,
    /// none started after the server's connect timeout has passed.
    pub fn reconnect(&mut self, name: &str) -> Result<&mut dyn Transport, SessionError> {
        const ATTEMPTS: u32 = 3;
        self.forget(name);
        let server = self.server(name)?.clone();
        let server = &server;
        let budget = match &server.target {
            crate::inventory::Target::Ssh { settings, .. } => settings
                .connect_timeout
                .unwrap_or(std::time::Duration::from_secs(10)),
            crate::inventory::Target::Local { .. } => std::time::Duration::from_secs(1),
        };
        let start = std::time::Instant::now();
        let mut last = None;
        let mut tried = 0;
        while tried < ATTEMPTS && (tried == 0 || start.elapsed() < budget) {
            if tried > 0 {
                let pause = std::time::Duration::from_millis(200 * u64::from(tried));
                std::thread::sleep(pause.min(budget.saturating_sub(start.elapsed())));
            }
            tried += 1;
            match transport::connect(server, &self.opts) {
                Ok(t) => {
                    self.open.insert(name.to_string(), t);
                    return Ok(self.open.get_mut(name).expect("just inserted").as_mut());
                }
                Err(e) => last = Some(Box::new(e)),
            }
        }
        let last = last.expect("at least one attempt is made");
        Err(SessionError::Reconnect {
            server: name.to_string(),
            attempts: tried,
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
