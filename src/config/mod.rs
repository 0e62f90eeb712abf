//! The configuration domain: parsing IIS and ASP.NET configuration files,
//! discovering applications, computing effective values, editing files.
//! Nothing here knows about terminals or SSH.
//!
//! The modules build on each other in this order, and a module imports only
//! from those before it:
//! `xml` → `problem` (what ASP.NET refuses, as values, worded once) →
//! `record` (files, locations, values with their source, whole-file
//! refusals) → `section` (sections and `configSource`) → `locks` →
//! `machine_key` (the runtime's `<machineKey>` rules) → `wif` (`elements`,
//! then the verdict on the chain) → `effective` (the merge) → `editor`.
//! `apphost` and `import` stand apart, on `xml` alone.

pub mod apphost;
pub mod editor;
pub mod effective;
pub mod import;
pub mod locks;
pub mod machine_key;
pub mod problem;
pub mod record;
pub mod section;
pub mod wif;
pub mod xml;

#[cfg(test)]
mod tests {
    use crate::layers::{entries_of, import_graph};

    #[test]
    fn config_modules_import_in_the_order_above() {
        // No cycle anywhere is `layers::tests::every_import_runs_downward`;
        // here, the order this module's documentation gives.
        let graph = entries_of(&import_graph(), "config/");
        assert!(graph["effective.rs"].contains("wif/"), "{graph:?}");
        assert!(
            graph["effective.rs"].contains("machine_key.rs"),
            "{graph:?}"
        );
        assert!(!graph["xml.rs"].contains("effective.rs"), "{graph:?}");
        for standalone in ["apphost.rs", "import.rs"] {
            assert!(
                graph[standalone].iter().all(|d| d == "xml.rs"),
                "{standalone} stands on xml alone: {graph:?}"
            );
        }
    }
}
