//! File content that may hold key material.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use zeroize::Zeroize;

/// The bytes of a configuration file. They can contain keys, so Debug shows
/// only the length and the buffer is zeroed when the last clone is dropped.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FileBytes(Arc<ZeroOnDrop>);

#[derive(Default, PartialEq, Eq)]
struct ZeroOnDrop(Vec<u8>);

impl Drop for ZeroOnDrop {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl FileBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        FileBytes(Arc::new(ZeroOnDrop(bytes)))
    }

    /// SHA-256 of the content, lower-case hex.
    pub fn sha256(&self) -> String {
        crate::keys::sha256_hex(self)
    }
}

impl From<Vec<u8>> for FileBytes {
    fn from(bytes: Vec<u8>) -> Self {
        FileBytes::new(bytes)
    }
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0.0
    }
}

impl AsRef<[u8]> for FileBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileBytes({} bytes)", self.len())
    }
}
