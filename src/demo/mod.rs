//! The embedded demo farm: three servers hosting the three Cora components,
//! with the drift operators meet in practice. Keys are generated fresh from
//! the OS CSPRNG each time the farm is laid out: no key ships in the binary.

use crate::inventory::{Inventory, InventoryError};
use crate::keys::{Decryption, KeySet, Validation};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const APPHOST: &str = include_str!("farm/applicationHost.config");
const MACHINE: &str = include_str!("farm/machine.config");
const ROOT_WEB: &str = include_str!("farm/root-web.config");
const WWWROOT: &str = include_str!("farm/wwwroot.config");
const FLOWTIME: &str = include_str!("farm/flowtime.config");
const ADMIN: &str = include_str!("farm/administration.config");
const ADMIN_NO_KEY: &str = include_str!("farm/administration-nokey.config");
const TOGO: &str = include_str!("farm/togo.config");
const TOGO_DPAPI: &str = include_str!("farm/togo-dpapi.config");

pub const SERVERS: [&str; 3] = ["web01", "web02", "web03"];

const FW64: &str = "C:/Windows/Microsoft.NET/Framework64/v4.0.30319/Config";
const FW32: &str = "C:/Windows/Microsoft.NET/Framework/v4.0.30319/Config";
const FLOWTIME_DIR: &str = "C:/inetpub/Cora/Flowtime";
const ADMIN_DIR: &str = "D:/Cora/Administration";
const TOGO_DIR: &str = "C:/Program Files/PNMsoft/Process TOGO";

/// The files of one server: (path under the server's folder, template, key set name).
fn files_of(server: &str) -> Vec<(String, &'static str, &'static str)> {
    let mut files = vec![
        (
            "C:/Windows/System32/inetsrv/config/applicationHost.config".to_string(),
            APPHOST,
            "",
        ),
        (format!("{FW64}/machine.config"), MACHINE, ""),
        (format!("{FW64}/web.config"), ROOT_WEB, ""),
        (format!("{FW32}/machine.config"), MACHINE, ""),
        (format!("{FW32}/web.config"), ROOT_WEB, ""),
        ("C:/inetpub/wwwroot/web.config".to_string(), WWWROOT, ""),
    ];
    // web03 was rebuilt last year and got its own Flowtime key.
    let flowtime_set = if server == "web03" {
        "FLOWTIME_WEB03"
    } else {
        "FLOWTIME"
    };
    files.push((format!("{FLOWTIME_DIR}/web.config"), FLOWTIME, flowtime_set));
    // web02's Administration never had its key pasted in.
    let admin = if server == "web02" {
        ADMIN_NO_KEY
    } else {
        ADMIN
    };
    files.push((format!("{ADMIN_DIR}/web.config"), admin, "ADMIN"));
    // web03's Process TOGO lacks the session-token handler swap.
    let togo = if server == "web03" { TOGO_DPAPI } else { TOGO };
    files.push((format!("{TOGO_DIR}/web.config"), togo, "TOGO"));
    files
}

/// `{{X_VK}}`/`{{X_DK}}` placeholders filled from the named key set.
fn fill(template: &str, set: Option<&KeySet>) -> String {
    let mut text = template.to_string();
    for prefix in ["FLOWTIME", "ADMIN", "TOGO"] {
        if let Some(set) = set {
            text = text
                .replace(&format!("{{{{{prefix}_VK}}}}"), set.validation_key.expose())
                .replace(&format!("{{{{{prefix}_DK}}}}"), set.decryption_key.expose());
        }
    }
    text
}

/// Windows style: UTF-8 BOM and CRLF.
fn windows_bytes(text: &str) -> Vec<u8> {
    let mut out = b"\xEF\xBB\xBF".to_vec();
    out.extend_from_slice(text.replace('\n', "\r\n").as_bytes());
    out
}

/// Writes the demo farm into `dir` (one folder per server plus
/// `farmkey.toml`) and returns its inventory.
pub fn lay_out(dir: &Path) -> io::Result<PathBuf> {
    lay_out_with(dir, |_| {
        KeySet::generate(Validation::Sha1, Decryption::Aes)
            .map_err(|e| io::Error::other(e.to_string()))
    })
}

/// [`lay_out`] with the key sets given by `keys` (by set name), for tests
/// that need the same fingerprints every run.
pub fn lay_out_with(
    dir: &Path,
    mut keys: impl FnMut(&str) -> io::Result<KeySet>,
) -> io::Result<PathBuf> {
    let mut sets: HashMap<&str, KeySet> = HashMap::new();
    for name in ["FLOWTIME", "FLOWTIME_WEB03", "ADMIN", "TOGO"] {
        sets.insert(name, keys(name)?);
    }
    let mut inventory = String::from("# The farmkey demo farm: three servers as local folders.\n");
    for server in SERVERS {
        let root = dir.join(server);
        for (rel, template, set) in files_of(server) {
            let path = root.join(&rel);
            fs::create_dir_all(path.parent().expect("files have folders"))?;
            fs::write(&path, windows_bytes(&fill(template, sets.get(set))))?;
        }
        inventory.push_str(&format!(
            "\n[[servers]]\nname = \"{server}\"\nlocal_root = \"{server}\"\n"
        ));
    }
    let inv_path = dir.join("farmkey.toml");
    fs::write(&inv_path, inventory)?;
    Ok(inv_path)
}

/// A demo farm in a fresh temporary folder, removed when dropped.
pub struct DemoFarm {
    dir: tempfile::TempDir,
    pub inventory: Inventory,
}

/// Why the demo farm could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot create a folder for the demo farm: {0}")]
    Folder(io::Error),
    #[error("cannot lay out the demo farm: {0}")]
    LayOut(io::Error),
    /// The inventory it wrote does not load: a bug of the demo's.
    #[error("{0}")]
    Inventory(InventoryError),
}

impl DemoFarm {
    pub fn new() -> Result<DemoFarm, DemoError> {
        let dir = tempfile::Builder::new()
            .prefix("farmkey-demo-")
            .tempdir()
            .map_err(DemoError::Folder)?;
        let inv_path = lay_out(dir.path()).map_err(DemoError::LayOut)?;
        let inventory = Inventory::load(&inv_path).map_err(DemoError::Inventory)?;
        Ok(DemoFarm { dir, inventory })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_errors_are_worded() {
        let denied = || io::Error::new(io::ErrorKind::PermissionDenied, "denied");
        assert_eq!(
            DemoError::Folder(denied()).to_string(),
            "cannot create a folder for the demo farm: denied"
        );
        assert_eq!(
            DemoError::LayOut(denied()).to_string(),
            "cannot lay out the demo farm: denied"
        );
        let bad = InventoryError {
            file: "farmkey.toml".into(),
            line: Some(3),
            message: "no servers".into(),
        };
        assert_eq!(
            DemoError::Inventory(bad).to_string(),
            "farmkey.toml:3: no servers"
        );
    }
}
