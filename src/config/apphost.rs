//! Discovery: the sites and applications of `applicationHost.config`.

use super::xml::{Document, ElemId};
use crate::paths::{PathError, RemotePath, WindowsEnv};
use serde::Serialize;
use std::collections::HashMap;

/// Where IIS keeps its configuration, under `%windir%`.
pub fn apphost_path(env: &WindowsEnv) -> RemotePath {
    let windir = env.get("windir").unwrap_or("C:\\Windows");
    RemotePath::parse(&format!(
        "{windir}\\System32\\inetsrv\\config\\applicationHost.config"
    ))
    .unwrap_or_else(|_| {
        RemotePath::parse("/C:/Windows/System32/inetsrv/config/applicationHost.config")
            .expect("constant path")
    })
}

/// The Cora SeQuence web components farmkey knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Component {
    Flowtime,
    Administration,
    #[serde(rename = "Process TOGO")]
    ProcessTogo,
}

/// The vendor's names, which may come before or after a component's name
/// ("Sequence Administration", "Cora SeQuence Flowtime"), folded.
const VENDOR: [&str; 3] = ["pnmsoft", "sequence", "cora"];

/// Lower case, letters and digits only: `Process TOGO` is `processtogo`.
fn fold(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A folded name without the vendor's names at either end.
fn without_vendor(mut folded: &str) -> &str {
    while let Some(rest) = VENDOR
        .iter()
        .find_map(|v| folded.strip_prefix(v).or_else(|| folded.strip_suffix(v)))
    {
        folded = rest;
    }
    folded
}

impl Component {
    pub const ALL: [Component; 3] = [
        Component::Flowtime,
        Component::Administration,
        Component::ProcessTogo,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Component::Flowtime => "Flowtime",
            Component::Administration => "Administration",
            Component::ProcessTogo => "Process TOGO",
        }
    }

    /// The component of this name, without regard to case or spaces.
    pub fn named(name: &str) -> Option<Component> {
        Component::ALL
            .into_iter()
            .find(|c| fold(c.name()) == fold(name))
    }

    /// The component a site or application name shows, ignoring case,
    /// spaces and punctuation. "Flowtime" and "Process TOGO" are the
    /// vendor's own words, so a name that holds one is evidence; every
    /// product has an "Administration" ("WSUS Administration", "SharePoint
    /// Central Administration v4"), so only the name itself, or with the
    /// vendor's name ("Sequence Administration", "Cora Administration"), is.
    pub fn in_name(text: &str) -> Option<Component> {
        let folded = fold(text);
        if folded.contains("processtogo") {
            Some(Component::ProcessTogo)
        } else if folded.contains("flowtime") {
            Some(Component::Flowtime)
        } else if without_vendor(&folded) == "administration" {
            Some(Component::Administration)
        } else {
            None
        }
    }

    /// The component a physical path shows: a folder named as
    /// [`Component::in_name`] accepts; for Administration, the last folder,
    /// below a folder of the vendor's (`D:\Cora\Administration`,
    /// `%ProgramFiles%\PNMsoft\Sequence Administration`).
    pub fn in_path(raw: &str) -> Option<Component> {
        let folders: Vec<String> = raw
            .split(['\\', '/'])
            .map(fold)
            .filter(|f| !f.is_empty())
            .collect();
        let distinctive = folders.iter().find_map(|f| match Component::in_name(f) {
            Some(Component::Administration) | None => None,
            found => found,
        });
        if distinctive.is_some() {
            return distinctive;
        }
        let last = folders.last()?;
        let vendor =
            last != without_vendor(last) || folders.iter().any(|f| without_vendor(f).is_empty());
        (vendor && without_vendor(last) == "administration").then_some(Component::Administration)
    }
}

/// How the components of a farm are recognised: by evidence (see
/// [`Components::of`]), except for those the inventory names, which are
/// exactly the sites and applications it lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Components {
    /// `(component, Site or Site/app/path)`, from the inventory.
    named: Vec<(Component, String)>,
}

impl Components {
    /// The inventory's lists: each replaces recognition for its component.
    pub fn named(lists: impl IntoIterator<Item = (Component, Vec<String>)>) -> Components {
        let mut named = Vec::new();
        for (component, ids) in lists {
            for id in ids {
                named.push((component, normalise_id(&id)));
            }
        }
        Components { named }
    }

    /// The inventory's entries: `(component, Site or Site/app/path)`.
    pub fn entries(&self) -> impl Iterator<Item = (Component, &str)> {
        self.named.iter().map(|(c, e)| (*c, e.as_str()))
    }

    /// The components the inventory names.
    fn is_named(&self, c: Component) -> bool {
        self.named.iter().any(|(n, _)| *n == c)
    }

    /// The component of an application. An inventory entry holds the
    /// application whose id it is and those below it, the longest entry
    /// winning; otherwise its own folder name, its site's name, then its
    /// physical path, for the components the inventory does not name.
    pub fn of(&self, app: &Application) -> Option<Component> {
        let listed = self
            .named
            .iter()
            .filter(|(_, entry)| holds(entry, app))
            .max_by_key(|(_, entry)| entry.len());
        if let Some((c, _)) = listed {
            return Some(*c);
        }
        let last_segment = app.app_path.rsplit('/').next().unwrap_or("");
        [
            Component::in_name(last_segment),
            Component::in_name(&app.site),
            Component::in_path(&app.physical_path_raw),
        ]
        .into_iter()
        .flatten()
        .find(|c| !self.is_named(*c))
    }
}

/// Whether an inventory entry holds an application: its own id, or one
/// below it, without regard to case.
pub fn holds(entry: &str, app: &Application) -> bool {
    let (id, entry) = (app.id.to_lowercase(), entry.to_lowercase());
    id == entry || id.starts_with(&format!("{entry}/"))
}

/// `Site` or `Site/app/path` as an application's id spells it, whatever
/// the slashes (`/Portal\\flow/` is `Portal/flow`).
pub fn normalise_id(text: &str) -> String {
    let text = text.trim().replace('\\', "/");
    let text = text.trim_start_matches('/');
    match text.split_once('/') {
        Some((site, path)) => {
            let path = normalise_app_path(path);
            if path == "/" {
                site.trim().to_string()
            } else {
                format!("{}{path}", site.trim())
            }
        }
        None => text.to_string(),
    }
}

/// One IIS application: a site's root application or one below it.
#[derive(Debug, Clone, Serialize)]
pub struct Application {
    /// `Site Name` for a root application, `Site Name/app/path` otherwise.
    pub id: String,
    pub site: String,
    /// Which `<site>` element it belongs to, counted in file order: names
    /// may repeat in a broken file, elements do not.
    #[serde(skip)]
    pub site_element: usize,
    pub site_id: Option<String>,
    /// `/` or `/app/path`.
    pub app_path: String,
    pub app_pool: String,
    /// `v4.0`, `v2.0`, or empty for "No Managed Code".
    pub runtime: String,
    pub bits32: bool,
    /// The pool's `managedPipelineMode`: which module registration IIS
    /// loads.
    #[serde(skip)]
    pub pipeline: PipelineMode,
    /// As written in applicationHost.config.
    pub physical_path_raw: String,
    /// Expanded and converted, or why it cannot be.
    #[serde(skip)]
    pub physical_path: Result<RemotePath, PathError>,
    /// The application's other virtual directories (`/Cora`), by path
    /// relative to it: URL paths below them map to their folders.
    #[serde(skip)]
    pub virtual_dirs: Vec<VirtualDir>,
}

/// A `<virtualDirectory>` of an application other than its root one.
#[derive(Debug, Clone)]
pub struct VirtualDir {
    /// `/a/b`, relative to the application.
    pub path: String,
    pub physical_path: Result<RemotePath, PathError>,
}

impl Application {
    /// The folder a URL path at or below the application (`/Cora/x`, the
    /// site's path) maps to, as IIS maps it: through the virtual directory
    /// with the longest path that holds it (compared without regard to
    /// case, on whole segments), the rest appended as folders.
    pub fn folder_of(&self, url: &str) -> Option<RemotePath> {
        let rel = relative_to(url, &self.app_path)?;
        let mut best: Option<(&str, &Result<RemotePath, PathError>)> = None;
        for vd in &self.virtual_dirs {
            if relative_to(&rel, &vd.path).is_some()
                && best.is_none_or(|(p, _)| vd.path.len() > p.len())
            {
                best = Some((&vd.path, &vd.physical_path));
            }
        }
        let (base, folder) = best.unwrap_or(("/", &self.physical_path));
        let mut folder = folder.clone().ok()?;
        let rest = relative_to(&rel, base)?;
        for segment in rest.split('/').filter(|s| !s.is_empty()) {
            folder = folder.join(segment).ok()?;
        }
        Some(folder)
    }

    /// The application's own `web.config`.
    pub fn web_config(&self) -> Result<RemotePath, PathError> {
        self.physical_path.clone()?.join("web.config")
    }

    pub fn is_root(&self) -> bool {
        self.app_path == "/"
    }

    /// Whether its pool loads a CLR: "No Managed Code" (an empty
    /// `managedRuntimeVersion`) runs no ASP.NET, so no machine key.
    pub fn runs_clr(&self) -> bool {
        !self.runtime.trim().is_empty()
    }

    pub fn bitness(&self) -> &'static str {
        if self.bits32 { "32-bit" } else { "64-bit" }
    }
}

/// An application pool's `managedPipelineMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PipelineMode {
    /// IIS runs managed modules of `system.webServer/modules`; ASP.NET's
    /// `system.web/httpModules` are not loaded.
    #[default]
    Integrated,
    /// ASP.NET runs as an ISAPI extension with its own
    /// `system.web/httpModules`; managed modules of `system.webServer` are
    /// not run.
    Classic,
}

impl PipelineMode {
    fn parse(v: &str) -> Self {
        if v.trim().eq_ignore_ascii_case("Classic") {
            PipelineMode::Classic
        } else {
            PipelineMode::Integrated
        }
    }
}

#[derive(Debug, Clone)]
struct Pool {
    runtime: String,
    bits32: bool,
    pipeline: PipelineMode,
}

/// Every application of a server, in file order.
pub fn discover(doc: &Document, env: &WindowsEnv) -> Vec<Application> {
    let root = doc.root();
    let Some(host) = doc.child_named(root, "system.applicationHost") else {
        return Vec::new();
    };
    let pools = read_pools(doc, host);
    let Some(sites) = doc.child_named(host, "sites") else {
        return Vec::new();
    };
    let global_default_pool = doc
        .child_named(sites, "applicationDefaults")
        .and_then(|d| doc.attr(d, "applicationPool"))
        .map(|s| s.into_owned())
        .unwrap_or_else(|| "DefaultAppPool".to_string());

    let mut apps = Vec::new();
    for (site_element, site) in doc.children_named(sites, "site").enumerate() {
        let site_name = doc.attr(site, "name").unwrap_or_default().into_owned();
        let site_id = doc.attr(site, "id").map(|s| s.into_owned());
        let site_default_pool = doc
            .child_named(site, "applicationDefaults")
            .and_then(|d| doc.attr(d, "applicationPool"))
            .map(|s| s.into_owned())
            .unwrap_or_else(|| global_default_pool.clone());
        for app in doc.children_named(site, "application") {
            apps.push(read_application(
                doc,
                app,
                (&site_name, site_element),
                &site_id,
                &site_default_pool,
                &pools,
                env,
            ));
        }
    }
    apps
}

fn read_pools(doc: &Document, host: ElemId) -> HashMap<String, Pool> {
    let mut out = HashMap::new();
    let Some(pools) = doc.child_named(host, "applicationPools") else {
        return out;
    };
    let defaults = doc.child_named(pools, "applicationPoolDefaults");
    let default_runtime = defaults
        .and_then(|d| doc.attr(d, "managedRuntimeVersion"))
        .map(|s| s.into_owned())
        .unwrap_or_else(|| "v4.0".to_string());
    let default_bits32 = defaults
        .and_then(|d| doc.attr(d, "enable32BitAppOnWin64"))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let default_pipeline = defaults
        .and_then(|d| doc.attr(d, "managedPipelineMode"))
        .map_or(PipelineMode::Integrated, |v| PipelineMode::parse(&v));
    for add in doc.children_named(pools, "add") {
        let Some(name) = doc.attr(add, "name") else {
            continue;
        };
        let runtime = doc
            .attr(add, "managedRuntimeVersion")
            .map(|s| s.into_owned())
            .unwrap_or_else(|| default_runtime.clone());
        let bits32 = doc
            .attr(add, "enable32BitAppOnWin64")
            .map_or(default_bits32, |v| v.trim().eq_ignore_ascii_case("true"));
        let pipeline = doc
            .attr(add, "managedPipelineMode")
            .map_or(default_pipeline, |v| PipelineMode::parse(&v));
        out.insert(
            name.to_ascii_lowercase(),
            Pool {
                runtime,
                bits32,
                pipeline,
            },
        );
    }
    out
}

fn read_application(
    doc: &Document,
    app: ElemId,
    (site_name, site_element): (&str, usize),
    site_id: &Option<String>,
    default_pool: &str,
    pools: &HashMap<String, Pool>,
    env: &WindowsEnv,
) -> Application {
    let raw_path = doc.attr(app, "path").unwrap_or_default();
    let app_path = normalise_app_path(&raw_path);
    let app_pool = doc
        .attr(app, "applicationPool")
        .map(|s| s.into_owned())
        .unwrap_or_else(|| default_pool.to_string());
    let pool = pools
        .get(&app_pool.to_ascii_lowercase())
        .cloned()
        .unwrap_or(Pool {
            runtime: "v4.0".to_string(),
            bits32: false,
            pipeline: PipelineMode::Integrated,
        });
    let physical_path_raw = doc
        .children_named(app, "virtualDirectory")
        .find(|&v| doc.attr(v, "path").is_some_and(|p| p.trim() == "/"))
        .and_then(|v| doc.attr(v, "physicalPath"))
        .map(|s| s.into_owned())
        .unwrap_or_default();
    let physical_path = if physical_path_raw.trim().is_empty() {
        Err(PathError::NotAbsolute(String::new()))
    } else {
        env.expand(physical_path_raw.trim())
            .and_then(|p| RemotePath::parse(&p))
    };
    let virtual_dirs = doc
        .children_named(app, "virtualDirectory")
        .filter_map(|v| {
            let path = normalise_app_path(&doc.attr(v, "path")?);
            if path == "/" {
                return None;
            }
            let raw = doc.attr(v, "physicalPath").unwrap_or_default();
            let physical_path = if raw.trim().is_empty() {
                Err(PathError::NotAbsolute(String::new()))
            } else {
                env.expand(raw.trim()).and_then(|p| RemotePath::parse(&p))
            };
            Some(VirtualDir {
                path,
                physical_path,
            })
        })
        .collect();
    let id = if app_path == "/" {
        site_name.to_string()
    } else {
        format!("{site_name}{app_path}")
    };
    Application {
        id,
        site: site_name.to_string(),
        site_element,
        site_id: site_id.clone(),
        app_path,
        app_pool,
        runtime: pool.runtime,
        bits32: pool.bits32,
        pipeline: pool.pipeline,
        physical_path_raw,
        physical_path,
        virtual_dirs,
    }
}

/// `url` below `base` (both `/`-rooted, compared without regard to case on
/// whole segments) as a `/`-rooted path; `None` when it is not below.
fn relative_to(url: &str, base: &str) -> Option<String> {
    if base == "/" {
        return Some(url.to_string());
    }
    if url.len() < base.len() || !url[..base.len()].eq_ignore_ascii_case(base) {
        return None;
    }
    match &url[base.len()..] {
        "" => Some("/".to_string()),
        rest if rest.starts_with('/') => Some(rest.to_string()),
        _ => None,
    }
}

/// `/`, or `/a/b` without a trailing slash.
fn normalise_app_path(raw: &str) -> String {
    let trimmed = raw.trim().replace('\\', "/");
    let inner = trimmed.trim_matches('/');
    if inner.is_empty() {
        "/".to_string()
    } else {
        format!("/{inner}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::FileBytes;

    const APPHOST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<configuration>
  <system.applicationHost>
    <applicationPools>
      <add name="Flowtime" managedRuntimeVersion="v4.0" />
      <add name="Admin32" managedRuntimeVersion="v4.0" enable32BitAppOnWin64="true" />
      <applicationPoolDefaults managedRuntimeVersion="v4.0" />
    </applicationPools>
    <sites>
      <site name="Flowtime" id="2">
        <application path="/" applicationPool="Flowtime">
          <virtualDirectory path="/" physicalPath="%SystemDrive%\inetpub\Flowtime" />
        </application>
        <application path="/api/">
          <virtualDirectory path="/" physicalPath="D:\Cora\FlowtimeApi" />
        </application>
      </site>
      <site name="Sequence Administration" id="3">
        <application path="/" applicationPool="Admin32">
          <virtualDirectory path="/" physicalPath="%PROGRAMFILES%\PNMsoft\Admin" />
        </application>
      </site>
      <site name="Default Web Site" id="1">
        <applicationDefaults applicationPool="SitePool" />
        <application path="/" >
          <virtualDirectory path="/" physicalPath="\\files\share\www" />
        </application>
      </site>
      <applicationDefaults applicationPool="DefaultAppPool" />
    </sites>
  </system.applicationHost>
</configuration>"#;

    #[test]
    fn url_paths_map_to_folders_as_iis_maps_them() {
        let xml = r#"<configuration><system.applicationHost><sites><site name="Web" id="3">
            <application path="/">
              <virtualDirectory path="/" physicalPath="C:\inetpub\wwwroot" />
              <virtualDirectory path="/Cora" physicalPath="D:\Cora" />
              <virtualDirectory path="/Cora/Docs" physicalPath="E:\Docs" />
            </application></site></sites></system.applicationHost></configuration>"#;
        let doc = Document::parse(FileBytes::new(xml.as_bytes().to_vec())).unwrap();
        let app = &discover(&doc, &WindowsEnv::default())[0];
        let folder = |url: &str| app.folder_of(url).map(|p| p.as_sftp().to_string());
        assert_eq!(folder("/apps").as_deref(), Some("/C:/inetpub/wwwroot/apps"));
        assert_eq!(
            folder("/cora").as_deref(),
            Some("/D:/Cora"),
            "case-insensitive"
        );
        assert_eq!(folder("/Cora/x/y").as_deref(), Some("/D:/Cora/x/y"));
        assert_eq!(
            folder("/Cora/Docs/a").as_deref(),
            Some("/E:/Docs/a"),
            "longest"
        );
        assert_eq!(
            folder("/Corax").as_deref(),
            Some("/C:/inetpub/wwwroot/Corax")
        );
    }

    #[test]
    fn discovers_sites_applications_and_components() {
        let doc = Document::parse(FileBytes::new(APPHOST.as_bytes().to_vec())).unwrap();
        let apps = discover(&doc, &WindowsEnv::default());
        let ids: Vec<&str> = apps.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "Flowtime",
                "Flowtime/api",
                "Sequence Administration",
                "Default Web Site"
            ]
        );

        assert_eq!(apps[0].site_id.as_deref(), Some("2"));
        assert_eq!(
            apps[0].web_config().unwrap().as_sftp(),
            "/C:/inetpub/Flowtime/web.config"
        );
        let of = |i: usize| Components::default().of(&apps[i]);
        assert_eq!(of(0), Some(Component::Flowtime));
        // applicationDefaults of <sites> applies when applicationPool is missing
        assert_eq!(apps[1].app_pool, "DefaultAppPool");
        assert_eq!(apps[1].app_path, "/api");
        assert_eq!(of(1), Some(Component::Flowtime));
        assert_eq!(
            apps[1].web_config().unwrap().as_sftp(),
            "/D:/Cora/FlowtimeApi/web.config"
        );
        assert!(apps[2].bits32);
        assert_eq!(of(2), Some(Component::Administration));
        assert_eq!(
            apps[2].physical_path.as_ref().unwrap().as_sftp(),
            "/C:/Program Files/PNMsoft/Admin"
        );
        // a site's own applicationDefaults wins
        assert_eq!(apps[3].app_pool, "SitePool");
        assert!(matches!(apps[3].physical_path, Err(PathError::Unc(_))));
        assert_eq!(of(3), None);
    }

    #[test]
    fn recognises_components_without_regard_to_case_or_spaces() {
        assert_eq!(
            Component::in_name("PROCESS togo"),
            Some(Component::ProcessTogo)
        );
        assert_eq!(
            Component::in_name("ProcessTOGO"),
            Some(Component::ProcessTogo)
        );
        assert_eq!(Component::in_name("Flow Time"), Some(Component::Flowtime));
        assert_eq!(Component::in_name("Default Web Site"), None);
    }

    #[test]
    fn administration_is_cora_s_only_by_its_own_name() {
        for cora in [
            "Administration",
            "Sequence Administration",
            "SequenceAdministration",
            "Cora Administration",
            "Cora SeQuence Administration",
            "PNMsoft Administration",
            "Administration - Sequence",
        ] {
            assert_eq!(
                Component::in_name(cora),
                Some(Component::Administration),
                "{cora}"
            );
        }
        for microsoft in [
            "WSUS Administration",
            "SharePoint Central Administration v4",
            "Exchange Back End",
            "Default Web Site",
            "Remote Desktop Web Administration",
            "Decorated Administration",
            "Administration2",
        ] {
            assert_eq!(Component::in_name(microsoft), None, "{microsoft}");
        }
    }

    #[test]
    fn a_path_shows_administration_only_below_the_vendor_s_folder() {
        let admin = Some(Component::Administration);
        for (path, expected) in [
            ("D:\\Cora\\Administration", admin),
            ("%ProgramFiles%\\PNMsoft\\Sequence Administration\\", admin),
            ("C:\\inetpub\\Administration", None),
            // The last folder names the vendor itself.
            ("C:\\inetpub\\Sequence Administration", admin),
            ("C:\\Program Files\\Update Services\\Administration", None),
            ("C:\\Coral\\Administration", None),
            // The product's own words anywhere.
            ("D:\\Apps\\FlowtimeApi", Some(Component::Flowtime)),
            ("", None),
        ] {
            assert_eq!(Component::in_path(path), expected, "{path}");
        }
    }

    /// applicationHost.config of a server that also runs Microsoft's sites.
    const MIXED: &str = r#"<configuration><system.applicationHost><sites>
      <site name="WSUS Administration" id="5">
        <application path="/"><virtualDirectory path="/" physicalPath="C:\Program Files\Update Services\WebServices\Root" /></application>
        <application path="/ClientWebService"><virtualDirectory path="/" physicalPath="C:\Program Files\Update Services\WebServices\ClientWebService" /></application>
      </site>
      <site name="SharePoint Central Administration v4" id="6">
        <application path="/"><virtualDirectory path="/" physicalPath="C:\inetpub\wwwroot\wss\VirtualDirectories\2016" /></application>
      </site>
      <site name="Exchange Back End" id="7">
        <application path="/"><virtualDirectory path="/" physicalPath="C:\Program Files\Microsoft\Exchange Server\V15\ClientAccess" /></application>
        <application path="/ecp"><virtualDirectory path="/" physicalPath="C:\Program Files\Microsoft\Exchange Server\V15\ClientAccess\ecp" /></application>
      </site>
      <site name="Default Web Site" id="1">
        <application path="/"><virtualDirectory path="/" physicalPath="%SystemDrive%\inetpub\wwwroot" /></application>
        <application path="/Flowtime"><virtualDirectory path="/" physicalPath="D:\Apps\Portal" /></application>
        <application path="/Admin"><virtualDirectory path="/" physicalPath="D:\PNMsoft\Sequence\Administration" /></application>
      </site>
      <site name="Portal" id="2">
        <application path="/"><virtualDirectory path="/" physicalPath="D:\Web\Portal" /></application>
        <application path="/flow"><virtualDirectory path="/" physicalPath="D:\Web\Flow" /></application>
        <application path="/flow/api"><virtualDirectory path="/" physicalPath="D:\Web\FlowApi" /></application>
      </site>
      <site name="Cora Admin" id="3">
        <application path="/"><virtualDirectory path="/" physicalPath="D:\Web\Admin" /></application>
      </site>
    </sites></system.applicationHost></configuration>"#;

    fn components_of(components: &Components) -> Vec<(String, Option<Component>)> {
        let doc = Document::parse(FileBytes::new(MIXED.as_bytes().to_vec())).unwrap();
        discover(&doc, &WindowsEnv::default())
            .iter()
            .map(|a| (a.id.clone(), components.of(a)))
            .collect()
    }

    #[test]
    fn microsoft_s_sites_are_never_cora_s() {
        let found = components_of(&Components::default());
        let cora: Vec<(&str, Component)> = found
            .iter()
            .filter_map(|(id, c)| Some((id.as_str(), (*c)?)))
            .collect();
        assert_eq!(
            cora,
            [
                ("Default Web Site/Flowtime", Component::Flowtime),
                // Its folder, below the vendor's: the evidence is the path.
                ("Default Web Site/Admin", Component::Administration),
            ]
        );
    }

    #[test]
    fn an_application_named_administration_is_administration_wherever_it_is() {
        let app = |site: &str, path: &str, physical: &str| Application {
            id: format!("{site}{path}"),
            site: site.into(),
            site_element: 0,
            site_id: None,
            app_path: path.into(),
            app_pool: String::new(),
            runtime: String::new(),
            bits32: false,
            pipeline: PipelineMode::Integrated,
            physical_path_raw: physical.into(),
            physical_path: Err(PathError::NotAbsolute(String::new())),
            virtual_dirs: Vec::new(),
        };
        let of = |a: &Application| Components::default().of(a);
        let admin = Some(Component::Administration);
        assert_eq!(
            of(&app("Default Web Site", "/Administration", "C:\\x")),
            admin
        );
        // Its own name first, then its site's.
        assert_eq!(of(&app("Flowtime", "/Administration", "C:\\x")), admin);
        assert_eq!(
            of(&app("Default Web Site", "/Flowtime", "C:\\x")),
            Some(Component::Flowtime)
        );
        assert_eq!(of(&app("WSUS Administration", "/", "C:\\x")), None);
        assert_eq!(
            of(&app("SharePoint Central Administration v4", "/", "C:\\x")),
            None
        );
        assert_eq!(of(&app("Exchange Back End", "/ecp", "C:\\x")), None);
        // Administration named by the inventory elsewhere: the next evidence.
        let named = Components::named([(Component::Administration, vec!["Cora Admin".into()])]);
        assert_eq!(
            named.of(&app("Flowtime", "/Administration", "C:\\x")),
            Some(Component::Flowtime)
        );
        assert_eq!(
            named.of(&app("Default Web Site", "/Administration", "C:\\x")),
            None
        );
    }

    #[test]
    fn inventory_ids_are_spelled_as_application_ids() {
        for (entry, id) in [
            ("Portal", "Portal"),
            (" /Portal\\flow/ ", "Portal/flow"),
            ("Portal//flow", "Portal/flow"),
            ("Portal/", "Portal"),
            ("/", ""),
        ] {
            assert_eq!(normalise_id(entry), id, "{entry:?}");
        }
    }

    #[test]
    fn the_inventory_names_a_farm_s_own_layout() {
        let components = Components::named([
            (
                Component::Flowtime,
                vec![
                    "portal/FLOW/".to_string(),
                    "Default Web Site/Flowtime".into(),
                ],
            ),
            (Component::Administration, vec!["Cora Admin".to_string()]),
        ]);
        let found = components_of(&components);
        let of = |id: &str| found.iter().find(|(i, _)| i == id).unwrap().1;
        // Named: the application, and those below it, without regard to case.
        assert_eq!(of("Portal/flow"), Some(Component::Flowtime));
        assert_eq!(of("Portal/flow/api"), Some(Component::Flowtime));
        assert_eq!(of("Portal"), None);
        assert_eq!(of("Cora Admin"), Some(Component::Administration));
        // A named component is exactly its list: the path's evidence no
        // longer makes Default Web Site/Admin Cora's Administration.
        assert_eq!(of("Default Web Site/Admin"), None);
        assert_eq!(of("Default Web Site/Flowtime"), Some(Component::Flowtime));
        assert_eq!(of("WSUS Administration"), None);
        // Process TOGO, not named, is still recognised by evidence.
        let togo = Application {
            id: "Process TOGO".into(),
            site: "Process TOGO".into(),
            site_element: 0,
            site_id: None,
            app_path: "/".into(),
            app_pool: String::new(),
            runtime: String::new(),
            bits32: false,
            pipeline: PipelineMode::Integrated,
            physical_path_raw: String::new(),
            physical_path: Err(PathError::NotAbsolute(String::new())),
            virtual_dirs: Vec::new(),
        };
        assert_eq!(components.of(&togo), Some(Component::ProcessTogo));
    }
}
