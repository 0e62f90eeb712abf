//! Reading one server: applicationHost.config, then every file of every
//! application's chain, each read once, then (only when a section names
//! one with `configSource`) the files those sections are kept in, into
//! effective configurations.

use crate::bytes::FileBytes;
use crate::config::apphost::{self, Application};
use crate::config::effective::{self, Effective};
use crate::config::machine_key::Clr;
use crate::config::problem::Problem;
use crate::config::record::{ConfigFile, Layer, Scope};
use crate::config::section::{self, External, SourceFiles};
use crate::config::wif;
use crate::config::xml::{Document, XmlError};
use crate::paths::{PathError, RemotePath, WindowsEnv};
use crate::transport::ssh::ConnectError;
use crate::transport::{
    Fetched, FileKind, FileStat, Listing, NotAFile, Transport, TransportError,
    find_case_insensitive, not_a_file,
};
use std::collections::HashMap;
use std::time::Duration;

/// A file that could not be used, and why (never its content).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {fault}")]
pub struct FileProblem {
    /// Windows form, or the text as configured when it is no usable path.
    pub path: String,
    /// Boxed: a problem travels in results and errors that stay small.
    pub fault: Box<FileFault>,
}

/// Why a file could not be used; worded after its path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileFault {
    /// Read, but not XML that IIS reads.
    #[error("{0}")]
    Xml(XmlError),
    /// Not read (worded without its path, which the problem names).
    #[error("{}", short_reason(.0))]
    Transport(TransportError),
    /// applicationHost.config is not there.
    #[error("not found: is IIS installed on this server?")]
    NoApphost,
    /// Asked for without being fetched first: a defect of farmkey's.
    #[error(
        "not read: farmkey did not fetch it for this application (a defect of farmkey; please report it)"
    )]
    NotFetched,
    #[error("{0}")]
    Ambiguous(AmbiguousChain),
    /// An application's physical path is no usable path.
    #[error("physical path of {app} cannot be read: {error}")]
    PhysicalPath { app: String, error: PathError },
    /// The chain of configuration files does not resolve.
    #[error("{0}")]
    Config(Problem),
}

/// One application as read on one server.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub app: Application,
    /// The application's own web.config (it may not exist).
    pub web_config: Option<RemotePath>,
    /// SHA-256 of that file as read, `None` when it does not exist.
    pub web_config_sha256: Option<String>,
    pub effective: Result<Effective, FileProblem>,
    /// `system.identityModel` is registered in a file above the app's own.
    pub identity_declared_above: bool,
    /// The files the app's own web.config names with `configSource`, with
    /// their SHA-256 as read (`None`: missing).
    pub external_sha256: Vec<(RemotePath, Option<String>)>,
    /// The files of its configuration (applicationHost.config, the chain,
    /// the files named by `configSource`) that are symbolic links: IIS
    /// reads what they lead to, a push never replaces them.
    pub links: Vec<(RemotePath, NotAFile)>,
    /// A push's lock or claims of it beside the app's web.config.
    pub push_leftovers: Vec<PushLeftover>,
}

/// A file a push keeps beside a web.config while it runs, found by the
/// scan: a push runs now, or one stopped without removing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushLeftover {
    /// The site's lock (`web.farmkey-lock.config`).
    Lock(RemotePath),
    /// A claim of the lock (`web.farmkey-lock.<push id>.claim.config`): a
    /// push stopped while breaking a stale lock; the stale lock is in it.
    Claim(RemotePath),
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub apps: Vec<AppConfig>,
    pub files_read: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerFailure {
    /// The server could not be reached or the session broke.
    #[error("{0}")]
    Unreachable(Unreachable),
    /// The server presented a host key other than the one stored: refused
    /// (the error [`ConnectError::is_host_key_changed`]).
    #[error("{0}")]
    HostKeyChanged(Box<ConnectError>),
    /// Reached, but applicationHost.config could not be used.
    #[error("{0}")]
    Unreadable(FileProblem),
}

/// `--json` and the reports show a failure as its sentence.
impl serde::Serialize for ServerFailure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a server could not be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    /// No session could be opened.
    #[error("{0}")]
    Connect(Box<ConnectError>),
    /// The session broke while its files were read.
    #[error("{0}")]
    Lost(Box<TransportError>),
    /// The thread scanning it ended without a result.
    #[error("the scan worker stopped")]
    WorkerStopped,
}

/// The outcome of scanning one server.
#[derive(Debug, Clone)]
pub struct ServerScan {
    pub name: String,
    pub address: String,
    pub result: Result<ServerConfig, ServerFailure>,
    pub elapsed: Duration,
}

/// Where a server's scan is, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanStage {
    Connecting,
    Reading,
}

fn problem(path: &RemotePath, fault: FileFault) -> FileProblem {
    FileProblem {
        path: path.to_string(),
        fault: Box::new(fault),
    }
}

type Read = Result<Option<ConfigFile>, FileProblem>;

/// A name not found, as the listing of its folder tells.
enum OtherCase {
    /// Under no spelling.
    Missing,
    /// Under this one.
    Found(RemotePath),
    /// The folder could not be listed, or the name is there after all:
    /// looked for from the drive down.
    Unknown,
}

/// Reads and parses files, each at most once.
struct FileSet<'t> {
    transport: &'t mut dyn Transport,
    files: HashMap<String, Read>,
    sha: HashMap<String, String>,
    /// The files read that are no regular files (links), by key.
    links: HashMap<String, NotAFile>,
    /// Folders listed (with the files, in the same requests), by key.
    listed: HashMap<String, Listing>,
}

impl<'t> FileSet<'t> {
    /// Reads `paths` and lists `folders`, all asked together.
    fn fetch(&mut self, paths: &[RemotePath], folders: &[RemotePath]) -> Result<(), ServerFailure> {
        let mut wanted: Vec<RemotePath> = Vec::new();
        for p in paths {
            if !self.files.contains_key(&p.key()) && !wanted.iter().any(|w| w.key() == p.key()) {
                wanted.push(p.clone());
            }
        }
        let mut dirs: Vec<RemotePath> = Vec::new();
        for d in folders {
            if !self.listed.contains_key(&d.key()) && !dirs.iter().any(|w| w.key() == d.key()) {
                dirs.push(d.clone());
            }
        }
        let (results, lists) = self.transport.gather(&wanted, &dirs);
        self.keep_listings(&dirs, lists)?;
        // Names not found: their folders, listed together, show another
        // spelling (Windows compares names without regard to case)
        // without a walk from the drive for each.
        let mut parents: Vec<RemotePath> = Vec::new();
        for (path, f) in wanted.iter().zip(&results) {
            if let (Err(e), Some(dir)) = (&f.read, path.parent())
                && e.is_not_found()
                && !self.listed.contains_key(&dir.key())
                && !parents.iter().any(|p| p.key() == dir.key())
            {
                parents.push(dir);
            }
        }
        if !parents.is_empty() {
            let (_, lists) = self.transport.gather(&[], &parents);
            self.keep_listings(&parents, lists)?;
        }
        for (path, Fetched { read, lstat }) in wanted.into_iter().zip(results) {
            let (result, lstat) = match read {
                // What `lstat` said is of the name asked, not of another case.
                Err(e) if e.is_not_found() => match self.other_case(&path) {
                    OtherCase::Missing => (Ok(None), lstat),
                    OtherCase::Found(real) => {
                        (self.transport.read(&real).map(|b| Some((real, b))), None)
                    }
                    OtherCase::Unknown => match (self.read_other_case(&path), lstat) {
                        (Ok(None), Some(Ok(None))) => (Ok(None), Some(Ok(None))),
                        (other, _) => (other, None),
                    },
                },
                other => (other.map(|b| Some((path.clone(), b))), lstat),
            };
            let result = match result {
                // Nothing at all there.
                Ok(None) if matches!(lstat, Some(Ok(None))) => Ok(None),
                // A dangling link or a loop reads as missing: it is not.
                Ok(None) => match not_a_file(self.transport, &path) {
                    Ok(None) => Ok(None),
                    Ok(Some(kind)) => Err(TransportError::NotAFile {
                        path: path.clone(),
                        kind,
                    }),
                    Err(e) => Err(e),
                },
                Ok(Some((real, bytes))) => {
                    self.link_read(&real, lstat).map(|()| Some((real, bytes)))
                }
                // Win32-OpenSSH answers "Failure" for a loop: named as one.
                Err(e) if !e.is_disconnected() && !e.is_not_found() => {
                    match not_a_file(self.transport, &path) {
                        Ok(Some(kind)) if !kind.readable() => Err(TransportError::NotAFile {
                            path: path.clone(),
                            kind,
                        }),
                        _ => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            let read = match result {
                Ok(Some((real, bytes))) => {
                    self.sha.insert(path.key(), bytes.sha256());
                    Document::parse(bytes)
                        .map(|doc| Some(ConfigFile { path: real, doc }))
                        .map_err(|e| problem(&path, FileFault::Xml(e)))
                }
                Ok(None) => Ok(None),
                Err(e) if e.is_disconnected() => {
                    return Err(ServerFailure::Unreachable(Unreachable::Lost(Box::new(e))));
                }
                Err(e) => {
                    if let TransportError::NotAFile { kind, .. } = &e {
                        self.links.insert(path.key(), kind.clone());
                    }
                    Err(problem(&path, FileFault::Transport(e)))
                }
            };
            self.files.insert(path.key(), read);
        }
        Ok(())
    }

    /// Keeps folders' listings; a lost session ends the server's scan.
    fn keep_listings(
        &mut self,
        dirs: &[RemotePath],
        lists: Vec<Listing>,
    ) -> Result<(), ServerFailure> {
        for (dir, list) in dirs.iter().zip(lists) {
            if let Err(e) = &list
                && e.is_disconnected()
            {
                return Err(ServerFailure::Unreachable(Unreachable::Lost(Box::new(
                    e.clone(),
                ))));
            }
            self.listed.insert(dir.key(), list);
        }
        Ok(())
    }

    /// What the listing of its folder says of a name not found.
    fn other_case(&self, path: &RemotePath) -> OtherCase {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return OtherCase::Unknown;
        };
        let Some(Ok(entries)) = self.listed.get(&dir.key()) else {
            return OtherCase::Unknown;
        };
        match entries
            .iter()
            .find(|e| crate::paths::same_name(&e.name, name))
        {
            None => OtherCase::Missing,
            Some(e) if e.name != name => match dir.join(&e.name) {
                Ok(real) => OtherCase::Found(real),
                Err(_) => OtherCase::Unknown,
            },
            // There after all (a link to nothing, or just made).
            Some(_) => OtherCase::Unknown,
        }
    }

    /// Notes a file just read that is a link: IIS follows it, so what
    /// was read is what IIS reads; the link itself is a fact to report.
    /// `lstat`: what it said of `path`, when asked with the read.
    fn link_read(
        &mut self,
        path: &RemotePath,
        lstat: Option<Result<Option<FileStat>, TransportError>>,
    ) -> Result<(), TransportError> {
        let st = match lstat {
            Some(st) => st?,
            None => self.transport.lstat(path)?,
        };
        if st.map(|st| st.kind) == Some(FileKind::Regular) {
            return Ok(());
        }
        if let Some(kind) = not_a_file(self.transport, path)? {
            self.links.insert(path.key(), kind);
        }
        Ok(())
    }

    fn read_other_case(
        &mut self,
        path: &RemotePath,
    ) -> Result<Option<(RemotePath, FileBytes)>, TransportError> {
        match find_case_insensitive(self.transport, path)? {
            Some(real) if real.as_sftp() != path.as_sftp() => {
                self.transport.read(&real).map(|b| Some((real, b)))
            }
            _ => Ok(None),
        }
    }

    /// A file fetched before; one that was not is a problem, never a panic.
    fn get(&self, path: &RemotePath) -> Result<Option<&ConfigFile>, FileProblem> {
        match self.files.get(&path.key()) {
            Some(Ok(file)) => Ok(file.as_ref()),
            Some(Err(p)) => Err(p.clone()),
            None => Err(problem(path, FileFault::NotFetched)),
        }
    }

    /// The files named by `configSource` in the files read so far, not yet read.
    fn config_sources(&self) -> Vec<RemotePath> {
        let mut out: Vec<RemotePath> = Vec::new();
        for read in self.files.values() {
            if let Ok(Some(file)) = read {
                for p in section::config_sources(file) {
                    if !self.files.contains_key(&p.key()) && !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
        }
        out.sort();
        out
    }
}

impl SourceFiles for FileSet<'_> {
    fn external(&self, path: &RemotePath) -> External<'_> {
        match self.files.get(&path.key()) {
            None => External::NotRead,
            Some(Ok(Some(file))) => External::Found(file),
            Some(Ok(None)) => External::Missing,
            Some(Err(p)) => External::Unreadable(p.fault.to_string()),
        }
    }
}

/// The reason of a transport error without repeating its path.
fn short_reason(e: &TransportError) -> String {
    match e {
        TransportError::NotFound { .. } => "no such file".into(),
        TransportError::PermissionDenied { .. } => "permission denied".into(),
        TransportError::Io { message, .. } => message.clone(),
        TransportError::NotAFile { kind, .. } => format!("{kind}: IIS cannot read it"),
        TransportError::TooLarge { size, max, .. } => format!(
            "{}, more than max_config_bytes = {max} allows: not read (raise max_config_bytes in the inventory to read it)",
            crate::transport::size_text(*size)
        ),
        other => other.to_string(),
    }
}

/// Reads one server through an open transport.
pub fn read_server(
    transport: &mut dyn Transport,
    env: &WindowsEnv,
) -> Result<ServerConfig, ServerFailure> {
    let apphost_path = apphost::apphost_path(env);
    let who = transport.describe();
    let step = |what| crate::transport::step(&who, what);
    let mut files = FileSet {
        transport,
        files: HashMap::new(),
        sha: HashMap::new(),
        links: HashMap::new(),
        listed: HashMap::new(),
    };
    files.fetch(std::slice::from_ref(&apphost_path), &[])?;
    step("applicationHost.config");
    let apphost = match files.get(&apphost_path) {
        Ok(Some(f)) => f,
        Ok(None) => {
            return Err(ServerFailure::Unreadable(problem(
                &apphost_path,
                FileFault::NoApphost,
            )));
        }
        Err(p) => return Err(ServerFailure::Unreadable(p)),
    };
    let apps = apphost::discover(&apphost.doc, env);
    let chains: Vec<_> = apps
        .iter()
        .map(|app| {
            ancestors(&apps, app).map_err(|why| problem(&apphost_path, FileFault::Ambiguous(why)))
        })
        .collect();

    let between: Vec<Vec<Between>> = chains
        .iter()
        .map(|c| c.as_ref().map(|c| between(c)).unwrap_or_default())
        .collect();

    // Every file any chain needs, fetched together.
    let mut wanted = Vec::new();
    for ((app, chain), steps) in apps.iter().zip(&chains).zip(&between) {
        let dir = env.framework_config_dir(&app.runtime, app.bits32);
        wanted.extend(dir.join("machine.config"));
        wanted.extend(dir.join("web.config"));
        for a in chain.iter().flatten() {
            if let Ok(p) = a.web_config() {
                wanted.push(p);
            }
        }
        wanted.extend(steps.iter().map(|b| b.web_config.clone()));
    }
    // Each application's folder, listed with the reads for a push's
    // leftover lock and claims.
    let folders: Vec<RemotePath> = apps
        .iter()
        .filter_map(|a| a.web_config().ok()?.parent())
        .collect();
    files.fetch(&wanted, &folders)?;
    step("the applications' files and folders");
    // Sections kept in other files: a second round, only when there are some.
    let external = files.config_sources();
    if !external.is_empty() {
        files.fetch(&external, &[])?;
        step("files named by configSource");
    }

    let mut out = Vec::with_capacity(apps.len());
    for ((app, chain), steps) in apps.iter().zip(&chains).zip(&between) {
        let mut read = resolve_app(&files, chain, steps, app, &apphost_path, env);
        if let Some(file) = &read.web_config {
            read.push_leftovers = push_leftovers(files.transport, &mut files.listed, file)?;
        }
        out.push(read);
    }
    step("read");
    Ok(ServerConfig {
        apps: out,
        files_read: files.files.len(),
    })
}

/// The lock and lock claims beside `file` (a push's, see
/// [`crate::lock_names`]). One listing of the folder per folder and scan
/// (made with the reads, or here); a folder that cannot be listed (or is
/// not there) shows none.
fn push_leftovers(
    t: &mut dyn Transport,
    listed: &mut HashMap<String, Listing>,
    file: &RemotePath,
) -> Result<Vec<PushLeftover>, ServerFailure> {
    use crate::lock_names as lock;
    let (Some(dir), lock) = (file.parent(), lock::lock_path(file)) else {
        return Ok(Vec::new());
    };
    let listing = match listed.entry(dir.key()) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(v) => v.insert(match t.list(&dir) {
            Err(e) if e.is_disconnected() => {
                return Err(ServerFailure::Unreachable(Unreachable::Lost(Box::new(e))));
            }
            other => other,
        }),
    };
    let entries = listing.as_deref().unwrap_or_default();
    Ok(entries
        .iter()
        .filter(|e| !e.is_dir)
        .filter_map(|e| {
            let path = lock.with_file_name(&e.name).ok()?;
            if path.key() == lock.key() {
                Some(PushLeftover::Lock(path))
            } else if lock::is_claim_of(&lock, &e.name) {
                Some(PushLeftover::Claim(path))
            } else {
                None
            }
        })
        .collect())
}

/// Why farmkey cannot tell which web.config files apply to an application:
/// applicationHost.config repeats what IIS refuses to see repeated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmbiguousChain {
    /// Sites of the same name; their ids (`None`: the site has none).
    #[error(
        "the site {site:?} is defined {} times (site ids {}): IIS refuses a repeated site name and starts none of them, and farmkey cannot tell which is meant; remove or rename all but one",
        ids.len(),
        ids.iter().map(|id| id.as_deref().unwrap_or("none")).collect::<Vec<_>>().join(", ")
    )]
    RepeatedSite {
        site: String,
        ids: Vec<Option<String>>,
    },
    /// One application path several times in a site, as each is spelt.
    #[error(
        "the site {site:?} holds the application path {path} more than once ({}): IIS compares paths without regard to case and refuses the repeat, and farmkey cannot tell which web.config applies; remove all but one",
        spellings.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", ")
    )]
    RepeatedPath {
        site: String,
        path: String,
        spellings: Vec<String>,
    },
}

/// The applications whose web.config applies to `app`, root first, `app`
/// last, all of its own `<site>` element; or why farmkey cannot tell.
/// IIS compares site names and application paths without regard to case
/// and refuses a configuration that repeats one, so a repeat is reported,
/// never resolved by picking one of them.
fn ancestors<'a>(
    apps: &'a [Application],
    app: &'a Application,
) -> Result<Vec<&'a Application>, AmbiguousChain> {
    let mut elements: Vec<(usize, Option<String>)> = Vec::new();
    for a in apps.iter().filter(|a| a.site == app.site) {
        if !elements.iter().any(|(e, _)| *e == a.site_element) {
            elements.push((a.site_element, a.site_id.clone()));
        }
    }
    // The same name exactly: one id for two sites, nothing tells them apart.
    if elements.len() > 1 {
        return Err(AmbiguousChain::RepeatedSite {
            site: app.site.clone(),
            ids: elements.into_iter().map(|(_, id)| id).collect(),
        });
    }
    let lower = app.app_path.to_ascii_lowercase();
    let applies =
        |path: &str| path == "/" || path == lower || lower.starts_with(&format!("{path}/"));
    let mut chain: Vec<&Application> = apps
        .iter()
        .filter(|a| a.site_element == app.site_element)
        .filter(|a| applies(&a.app_path.to_ascii_lowercase()))
        .collect();
    chain.sort_by_key(|a| a.app_path.matches('/').count() - usize::from(a.is_root()));
    if let Some(pair) = chain
        .windows(2)
        .find(|w| w[0].app_path.eq_ignore_ascii_case(&w[1].app_path))
    {
        return Err(AmbiguousChain::RepeatedPath {
            site: app.site.clone(),
            path: pair[0].app_path.clone(),
            spellings: chain
                .iter()
                .filter(|a| a.app_path.eq_ignore_ascii_case(&pair[0].app_path))
                .map(|a| a.app_path.clone())
                .collect(),
        });
    }
    Ok(chain)
}

/// A URL path between two applications of a chain (`/Cora` between `/`
/// and `/Cora/Flowtime`): ASP.NET keeps a configuration record for it
/// (WebConfigurationHost.IsConfigRecordRequired), so the `web.config` of
/// the folder it maps to is part of the chain.
#[derive(Debug, Clone)]
struct Between {
    /// The application of the chain it follows.
    after: usize,
    /// As an application id would be (`Site/Cora`): its `<location>` paths
    /// are relative to it.
    id: String,
    web_config: RemotePath,
}

/// The URL paths between the applications of a chain (root first), each
/// mapped through the virtual directories of the application above it.
fn between(chain: &[&Application]) -> Vec<Between> {
    let mut out = Vec::new();
    for (i, pair) in chain.windows(2).enumerate() {
        let (parent, child) = (pair[0], pair[1]);
        let base = if parent.is_root() {
            ""
        } else {
            &parent.app_path
        };
        let Some(rest) = child.app_path.get(base.len()..) else {
            continue;
        };
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let mut url = base.to_string();
        for segment in &segments[..segments.len().saturating_sub(1)] {
            url = format!("{url}/{segment}");
            if let Some(web_config) = parent
                .folder_of(&url)
                .and_then(|f| f.join("web.config").ok())
            {
                out.push(Between {
                    after: i,
                    id: format!("{}{url}", parent.site),
                    web_config,
                });
            }
        }
    }
    out
}

/// The layers of an application's chain that exist, in merge order.
fn chain_layers<'f>(
    files: &'f FileSet<'_>,
    chain: &[&'f Application],
    steps: &'f [Between],
    app: &Application,
    apphost_path: &RemotePath,
    env: &WindowsEnv,
) -> Result<Vec<Layer<'f>>, FileProblem> {
    let dir = env.framework_config_dir(&app.runtime, app.bits32);
    let mut machine_paths: Vec<RemotePath> = Vec::new();
    machine_paths.extend(dir.join("machine.config"));
    machine_paths.extend(dir.join("web.config"));
    let mut layers = Vec::new();
    for p in &machine_paths {
        if let Some(file) = files.get(p)? {
            layers.push(Layer {
                file,
                scope: Scope::Machine,
            });
        }
    }
    // Not a level of ASP.NET's configuration: read for IIS's own sections.
    if let Ok(Some(file)) = files.get(apphost_path) {
        layers.push(Layer {
            file,
            scope: Scope::ApplicationHost,
        });
    }
    for (i, a) in chain.iter().enumerate() {
        let path = a.web_config().map_err(|error| FileProblem {
            path: a.physical_path_raw.clone(),
            fault: Box::new(FileFault::PhysicalPath {
                app: a.id.clone(),
                error,
            }),
        })?;
        if let Some(file) = files.get(&path)? {
            layers.push(Layer {
                file,
                scope: Scope::App(&a.id),
            });
        }
        for b in steps.iter().filter(|b| b.after == i) {
            if let Some(file) = files.get(&b.web_config)? {
                layers.push(Layer {
                    file,
                    scope: Scope::App(&b.id),
                });
            }
        }
    }
    Ok(layers)
}

fn resolve_app(
    files: &FileSet<'_>,
    chain: &Result<Vec<&Application>, FileProblem>,
    steps: &[Between],
    app: &Application,
    apphost_path: &RemotePath,
    env: &WindowsEnv,
) -> AppConfig {
    let web_config = app.web_config().ok();
    let web_config_sha256 = web_config
        .as_ref()
        .and_then(|p| files.sha.get(&p.key()).cloned());
    let mut identity_declared_above = false;
    let layers = chain
        .clone()
        .and_then(|chain| chain_layers(files, &chain, steps, app, apphost_path, env));
    let mut used = vec![apphost_path.clone()];
    if let Ok(layers) = &layers {
        for l in layers {
            used.push(l.file.path.clone());
            used.extend(section::config_sources(l.file));
        }
    }
    used.extend(web_config.clone());
    let mut links: Vec<(RemotePath, NotAFile)> = Vec::new();
    for p in used {
        if let Some(kind) = files.links.get(&p.key())
            && !links.iter().any(|(l, _)| l.key() == p.key())
        {
            links.push((p, kind.clone()));
        }
    }
    let effective = layers.and_then(|layers| {
        let own_is_last = web_config
            .as_ref()
            .is_some_and(|p| layers.last().is_some_and(|l| l.file.path.key() == p.key()));
        let above = if own_is_last {
            &layers[..layers.len() - 1]
        } else {
            &layers[..]
        };
        identity_declared_above = wif::identity_model_declared_in(above).is_some();
        let clr = Clr::of_pool(&app.runtime).unwrap_or_default();
        effective::resolve_in(&layers, &app.id, files, app.pipeline, clr).map_err(|p| FileProblem {
            path: p.file.to_string(),
            fault: Box::new(FileFault::Config(p.problem)),
        })
    });
    let external_sha256 = match web_config.as_ref().map(|p| files.get(p)) {
        Some(Ok(Some(own))) => section::config_sources(own)
            .into_iter()
            .map(|p| {
                let sha = files.sha.get(&p.key()).cloned();
                (p, sha)
            })
            .collect(),
        _ => Vec::new(),
    };
    AppConfig {
        app: app.clone(),
        web_config,
        web_config_sha256,
        effective,
        identity_declared_above,
        external_sha256,
        links,
        push_leftovers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_faults_are_worded_after_the_path() {
        let web = RemotePath::parse("C:\\inetpub\\Flowtime\\web.config").unwrap();
        let at = |fault| problem(&web, fault).to_string();
        assert_eq!(
            at(FileFault::NoApphost),
            "C:\\inetpub\\Flowtime\\web.config: not found: is IIS installed on this server?"
        );
        assert_eq!(
            at(FileFault::NotFetched),
            "C:\\inetpub\\Flowtime\\web.config: not read: farmkey did not fetch it for this application (a defect of farmkey; please report it)"
        );
        assert_eq!(
            at(FileFault::Transport(TransportError::PermissionDenied {
                path: web.clone()
            })),
            "C:\\inetpub\\Flowtime\\web.config: permission denied"
        );
        assert_eq!(
            at(FileFault::Xml(XmlError::Empty)),
            "C:\\inetpub\\Flowtime\\web.config: the file is empty"
        );
        let bad = FileProblem {
            path: "D:web".into(),
            fault: Box::new(FileFault::PhysicalPath {
                app: "Flowtime".into(),
                error: PathError::NotAbsolute("D:web".into()),
            }),
        };
        assert_eq!(
            bad.to_string(),
            "D:web: physical path of Flowtime cannot be read: \"D:web\" is not an absolute path with a drive letter"
        );
    }

    #[test]
    fn ambiguous_chains_are_worded() {
        let site = AmbiguousChain::RepeatedSite {
            site: "Flowtime".into(),
            ids: vec![Some("9".into()), None],
        };
        assert_eq!(
            site.to_string(),
            "the site \"Flowtime\" is defined 2 times (site ids 9, none): IIS refuses a repeated site name and starts none of them, and farmkey cannot tell which is meant; remove or rename all but one"
        );
        let path = AmbiguousChain::RepeatedPath {
            site: "Flowtime".into(),
            path: "/App".into(),
            spellings: vec!["/App".into(), "/app".into()],
        };
        assert_eq!(
            path.to_string(),
            "the site \"Flowtime\" holds the application path /App more than once (\"/App\", \"/app\"): IIS compares paths without regard to case and refuses the repeat, and farmkey cannot tell which web.config applies; remove all but one"
        );
    }
}
