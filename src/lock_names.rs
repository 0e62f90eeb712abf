//! The names of a push's lock and its claims beside a `web.config`
//! (see [`crate::push::lock`]): the push makes them, the scan reports the
//! ones left there.

use crate::paths::RemotePath;

/// `web.config` → `web.farmkey-lock.config` beside it.
pub fn lock_path(file: &RemotePath) -> RemotePath {
    let name = file.file_name().unwrap_or("web.config");
    let stem = name.strip_suffix(".config").unwrap_or(name);
    file.with_file_name(&format!("{stem}.farmkey-lock.config"))
        .unwrap_or_else(|_| file.clone())
}

/// `web.farmkey-lock.config` → `web.farmkey-lock.<push id>.claim.config`:
/// where `push_id` moves a stale lock it breaks. Ends in `.config`, which
/// IIS refuses to serve.
pub fn claim_path(lock: &RemotePath, push_id: &str) -> RemotePath {
    let name = lock.file_name().unwrap_or("web.farmkey-lock.config");
    let stem = name.strip_suffix(".config").unwrap_or(name);
    let id: String = push_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    lock.with_file_name(&format!("{stem}.{id}{CLAIM_SUFFIX}"))
        .unwrap_or_else(|_| lock.clone())
}

const CLAIM_SUFFIX: &str = ".claim.config";

/// Whether `name` is a claim of the lock `lock` ([`claim_path`]).
pub fn is_claim_of(lock: &RemotePath, name: &str) -> bool {
    let lock_name = lock.file_name().unwrap_or("web.farmkey-lock.config");
    let stem = lock_name.strip_suffix(".config").unwrap_or(lock_name);
    let (name, stem) = (name.to_ascii_lowercase(), stem.to_ascii_lowercase());
    name.strip_prefix(&format!("{stem}."))
        .and_then(|rest| rest.strip_suffix(CLAIM_SUFFIX))
        .is_some_and(|id| !id.is_empty())
}
