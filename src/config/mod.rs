//! The configuration domain: parsing IIS and ASP.NET configuration files,
//! discovering applications, computing effective values, editing files.
//! Nothing here knows about terminals or SSH.

pub mod apphost;
pub mod editor;
pub mod effective;
pub mod import;
pub mod locks;
pub mod section;
pub mod wif;
pub mod xml;
