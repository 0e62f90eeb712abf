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

/// The Cora SeQuence web components farmkey knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Component {
    Flowtime,
    Administration,
    #[serde(rename = "Process TOGO")]
    ProcessTogo,
}

impl Component {
    pub fn name(self) -> &'static str {
        match self {
            Component::Flowtime => "Flowtime",
            Component::Administration => "Administration",
            Component::ProcessTogo => "Process TOGO",
        }
    }

    /// Recognises a component in a name or path, ignoring case and spaces.
    pub fn recognise(text: &str) -> Option<Component> {
        let folded: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect();
        [
            ("processtogo", Component::ProcessTogo),
            ("flowtime", Component::Flowtime),
            ("administration", Component::Administration),
        ]
        .into_iter()
        .find(|(needle, _)| folded.contains(needle))
        .map(|(_, c)| c)
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
    /// As written in applicationHost.config.
    pub physical_path_raw: String,
    /// Expanded and converted, or why it cannot be.
    #[serde(skip)]
    pub physical_path: Result<RemotePath, PathError>,
    pub component: Option<Component>,
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

    pub fn bitness(&self) -> &'static str {
        if self.bits32 { "32-bit" } else { "64-bit" }
    }
}

#[derive(Debug, Clone)]
struct Pool {
    runtime: String,
    bits32: bool,
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
        out.insert(name.to_ascii_lowercase(), Pool { runtime, bits32 });
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
    let last_segment = app_path.rsplit('/').next().unwrap_or("");
    let component = Component::recognise(last_segment)
        .or_else(|| Component::recognise(site_name))
        .or_else(|| Component::recognise(&physical_path_raw));
    Application {
        id,
        site: site_name.to_string(),
        site_element,
        site_id: site_id.clone(),
        app_path,
        app_pool,
        runtime: pool.runtime,
        bits32: pool.bits32,
        physical_path_raw,
        physical_path,
        component,
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
        assert_eq!(apps[0].component, Some(Component::Flowtime));
        // applicationDefaults of <sites> applies when applicationPool is missing
        assert_eq!(apps[1].app_pool, "DefaultAppPool");
        assert_eq!(apps[1].app_path, "/api");
        assert_eq!(apps[1].component, Some(Component::Flowtime));
        assert_eq!(
            apps[1].web_config().unwrap().as_sftp(),
            "/D:/Cora/FlowtimeApi/web.config"
        );
        assert!(apps[2].bits32);
        assert_eq!(apps[2].component, Some(Component::Administration));
        assert_eq!(
            apps[2].physical_path.as_ref().unwrap().as_sftp(),
            "/C:/Program Files/PNMsoft/Admin"
        );
        // a site's own applicationDefaults wins
        assert_eq!(apps[3].app_pool, "SitePool");
        assert!(matches!(apps[3].physical_path, Err(PathError::Unc(_))));
        assert_eq!(apps[3].component, None);
    }

    #[test]
    fn recognises_components_without_regard_to_case_or_spaces() {
        assert_eq!(
            Component::recognise("PROCESS togo"),
            Some(Component::ProcessTogo)
        );
        assert_eq!(
            Component::recognise("ProcessTOGO"),
            Some(Component::ProcessTogo)
        );
        assert_eq!(Component::recognise("Flow Time"), Some(Component::Flowtime));
        assert_eq!(Component::recognise("Default Web Site"), None);
    }
}
