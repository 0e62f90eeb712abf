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
