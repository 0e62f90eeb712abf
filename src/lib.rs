//! farmkey: keeps ASP.NET machine keys in step across the servers of an IIS
//! web farm.
//!
//! The layers, from the bottom up, each knowing only those below it (a
//! test, `layers`, holds every file to that):
//! - [`keys`], [`bytes`], [`paths`], [`safe_text`] (nothing from a server
//!   reaches the terminal raw), [`disclosed`];
//! - [`config`]: parsing, effective values and editing of IIS/ASP.NET files;
//! - [`inventory`]: the servers and their settings; [`demo`];
//! - [`transport`]: reaching a server's files (local folder, SFTP);
//! - [`scan`] and [`farm`]: reading one server, and many at once;
//! - [`analysis`]: comparing sites across servers into findings;
//! - [`report`]: what the command line prints of a scan;
//! - [`push`]: planning and applying a key set, with backups and rollback;
//! - [`console`]: the terminal user interface; [`cli`]: the command line.

pub mod analysis;
pub mod bytes;
pub mod cli;
pub mod config;
pub mod console;
pub mod demo;
pub mod disclosed;
pub mod farm;
pub mod inventory;
pub mod keys;
#[cfg(test)]
mod layers;
pub mod lock_names;
pub mod paths;
pub mod push;
pub mod report;
pub mod safe_text;
pub mod scan;
mod spelled;
pub mod transport;
