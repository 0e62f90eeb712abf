//! Publicly disclosed ASP.NET machine keys: Microsoft Threat Intelligence's
//! list of SHA-256 hashes of keys found published online (documentation
//! samples, repositories, forum answers) and used to forge ViewState.
//!
//! The list ships in the binary as `machine-keys.bin`: the distinct hashes of
//! both columns of `MachineKeys.csv`, sorted, 32 bytes each, searched in
//! place (no parsing, no allocation at start-up). It is derived from
//! "MachineKeys.csv" © Microsoft Corporation, CC BY 4.0, converted to a
//! sorted binary table: see `NOTICE.md` beside this file.
//!
//! A key is hashed as Microsoft's scanner does: trimmed, its `,IsolateApps` /
//! `,IsolateByAppId` modifiers dropped, upper-cased, SHA-256 over UTF-8. The
//! validation and decryption keys are checked separately, each against every
//! hash of the list (a key published in either role is public).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One SHA-256 hash.
pub type Hash = [u8; 32];

/// The shipped table (see the module documentation).
static SHIPPED: &[u8] = include_bytes!("machine-keys.bin");

/// Rows (key pairs) of the CSV the shipped table was converted from.
pub const SHIPPED_ROWS: usize = 3713;

/// Where the shipped list comes from, in a line.
pub const SHIPPED_SOURCE: &str = "Microsoft Threat Intelligence, github.com/microsoft/mstic RapidReleaseTI/MachineKeys.csv (2025-02-06)";

/// The attribution the licence asks for, shown by `farmkey disclosed`.
pub const ATTRIBUTION: &str = "The list of publicly disclosed machine keys is derived from \
\"MachineKeys.csv\" © Microsoft Corporation (github.com/microsoft/mstic, \
RapidReleaseTI/MachineKeys.csv), licensed under CC BY 4.0 \
(https://creativecommons.org/licenses/by/4.0/); converted to a sorted binary table of its hashes.";

/// SHA-256 of the empty string: the source pads pairs with one half missing
/// with it. No explicit key is empty, so it never matches anything.
const EMPTY: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The shipped hashes, sorted.
pub fn shipped() -> &'static [Hash] {
    let (hashes, rest) = SHIPPED.as_chunks::<32>();
    debug_assert!(rest.is_empty(), "machine-keys.bin is whole hashes");
    hashes
}

/// The hash a key is listed under: trimmed, modifiers dropped, upper-cased
/// (the digest fingerprints are cut from). ASP.NET splits the value at
/// its commas and the key is the first part, however many modifiers
/// follow (an unknown one makes the key invalid, not less public).
pub fn key_hash(key: &str) -> Hash {
    let base = key.split(',').next().unwrap_or_default();
    crate::keys::key_digest(base)
}

/// A bad line in an additional hash list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {reason}", file.display())]
pub struct ListError {
    pub file: PathBuf,
    pub line: usize,
    pub reason: String,
}

/// Reads a hash list in the format of `MachineKeys.csv`: an optional header
/// row `validationKey, decryptionKey`, then one pair of lower- or upper-case
/// hex SHA-256 hashes per row, separated by a comma (blank lines are
/// allowed). Returns the distinct hashes, sorted, without the empty-string
/// hash.
pub fn parse_list(text: &str, file: &Path) -> Result<Vec<Hash>, ListError> {
    let err = |line: usize, reason: String| ListError {
        file: file.to_path_buf(),
        line,
        reason,
    };
    let mut out = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let row = raw.trim();
        if row.is_empty() {
            continue;
        }
        let fields: Vec<&str> = row.split(',').map(str::trim).collect();
        if line == 1
            && fields
                .first()
                .is_some_and(|f| f.eq_ignore_ascii_case("validationKey"))
        {
            continue;
        }
        if fields.len() != 2 {
            return Err(err(
                line,
                format!(
                    "expected two hashes separated by a comma (validationKey, decryptionKey), found {} field{}",
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" }
                ),
            ));
        }
        for (column, field) in ["validationKey", "decryptionKey"].iter().zip(&fields) {
            let hash = parse_hash(field).ok_or_else(|| {
                err(
                    line,
                    format!(
                        "the {column} column is not a SHA-256 hash (64 hex characters): {}",
                        describe_field(field)
                    ),
                )
            })?;
            if hash != EMPTY {
                out.push(hash);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn parse_hash(field: &str) -> Option<Hash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(field, &mut hash).ok()?;
    Some(hash)
}

/// What a wrong field looks like, without echoing it (a careless operator
/// might paste a key where a hash belongs).
fn describe_field(field: &str) -> String {
    let n = field.chars().count();
    if field.chars().all(|c| c.is_ascii_hexdigit()) {
        format!("{n} hex characters")
    } else {
        format!("{n} characters, not all hex")
    }
}

/// An additional list given by the operator, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraList {
    pub file: PathBuf,
    /// Distinct hashes in the file.
    pub hashes: usize,
    /// Of those, how many the shipped list (and earlier files) lack.
    pub new: usize,
}

/// The lists keys are checked against: the shipped one and any given with
/// `--disclosed-list`. Cheap to clone.
#[derive(Clone, Default)]
pub struct DisclosedKeys {
    /// Hashes of the extra lists that the shipped list lacks, sorted.
    extra: Arc<[Hash]>,
    pub lists: Vec<ExtraList>,
}

impl fmt::Debug for DisclosedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DisclosedKeys({} hashes, lists {:?})",
            self.len(),
            self.lists
        )
    }
}

impl DisclosedKeys {
    /// The shipped list only.
    pub fn shipped() -> Self {
        DisclosedKeys::default()
    }

    /// The shipped list plus the lists in these files.
    pub fn with_lists(files: &[PathBuf]) -> Result<Self, LoadError> {
        let mut extra: Vec<Hash> = Vec::new();
        let mut lists = Vec::new();
        for file in files {
            let bytes = std::fs::read(file).map_err(|e| LoadError::Read {
                file: file.clone(),
                reason: e.to_string(),
            })?;
            let text = String::from_utf8(bytes).map_err(|e| LoadError::Read {
                file: file.clone(),
                reason: format!(
                    "not UTF-8 text (byte {}); expected the CSV format of MachineKeys.csv",
                    e.utf8_error().valid_up_to()
                ),
            })?;
            let hashes = parse_list(&text, file)?;
            if hashes.is_empty() {
                return Err(LoadError::Empty { file: file.clone() });
            }
            // `extra` is kept sorted: both lookups are binary searches.
            let new: Vec<Hash> = hashes
                .iter()
                .filter(|h| shipped().binary_search(h).is_err() && extra.binary_search(h).is_err())
                .copied()
                .collect();
            lists.push(ExtraList {
                file: file.clone(),
                hashes: hashes.len(),
                new: new.len(),
            });
            extra.extend(new);
            extra.sort_unstable();
        }
        Ok(DisclosedKeys {
            extra: extra.into(),
            lists,
        })
    }

    /// Whether a key's text is on a list.
    pub fn is_disclosed(&self, key: &str) -> bool {
        let hash = key_hash(key);
        hash != EMPTY
            && (shipped().binary_search(&hash).is_ok() || self.extra.binary_search(&hash).is_ok())
    }

    /// How many distinct hashes are checked.
    pub fn len(&self) -> usize {
        shipped().len() + self.extra.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An additional list could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("{}: {reason}", file.display())]
    Read { file: PathBuf, reason: String },
    #[error(transparent)]
    Bad(#[from] ListError),
    #[error(
        "{}: no hashes in the file; expected rows of `validationKey, decryptionKey` SHA-256 hashes as in MachineKeys.csv",
        file.display()
    )]
    Empty { file: PathBuf },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Microsoft's sample from "How To: Configure MachineKey in ASP.NET 2.0"
    /// (Web Farm Deployment Considerations), copied into countless
    /// web.config files: public, and on the list. The validation key is 127
    /// hex characters as published (ASP.NET refuses an odd length).
    const SAMPLE_VALIDATION: &str = "21F090935F6E49C2C797F69BBAAD8402ABD2EE0B667A8B44EA7DD4374267A75D7AD972A119482D15A4127461DB1DC347C1A63AE5F1CCFAACFF1B72A7F0A281B";
    const SAMPLE_DECRYPTION: &str =
        "ABAA84D7EC4BB56D75D217CECFFB9628809BDB8BF91CFCD64568A145BE59719F";

    fn fresh_key() -> String {
        use crate::keys::{Decryption, KeySet, Validation};
        let set = KeySet::generate(Validation::HmacSha256, Decryption::Aes).unwrap();
        set.validation_key.expose().to_string()
    }

    fn csv_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/disclosed/MachineKeys.csv")
    }

    #[test]
    fn the_shipped_table_matches_the_csv_row_for_row() {
        let path = csv_path();
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = parse_list(&text, &path).unwrap();
        if std::env::var_os("FARMKEY_UPDATE_DISCLOSED").is_some() {
            // Regenerates the table after the CSV was replaced by a newer list.
            let bytes: Vec<u8> = parsed.iter().flatten().copied().collect();
            let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/disclosed/machine-keys.bin");
            std::fs::write(out, bytes).unwrap();
            return;
        }
        assert_eq!(SHIPPED.len() % 32, 0);
        assert!(shipped().is_sorted(), "the table must be sorted");
        assert_eq!(
            shipped(),
            &parsed[..],
            "machine-keys.bin differs from {}: run the test with FARMKEY_UPDATE_DISCLOSED=1",
            path.display()
        );
        // Row for row: every hash of every row is found (or is the
        // empty-string padding), and the header says what the columns are.
        let mut rows = 0;
        for (i, row) in text.lines().enumerate().skip(1) {
            let (v, d) = row
                .split_once(", ")
                .unwrap_or_else(|| panic!("row {}", i + 1));
            for h in [v, d] {
                let h = parse_hash(h).unwrap();
                assert!(
                    h == EMPTY || shipped().binary_search(&h).is_ok(),
                    "row {} is missing from the table",
                    i + 1
                );
            }
            rows += 1;
        }
        assert_eq!(text.lines().next(), Some("validationKey, decryptionKey"));
        assert_eq!(rows, SHIPPED_ROWS);
    }

    #[test]
    fn keys_are_hashed_as_microsofts_scanner_does() {
        let keys = DisclosedKeys::shipped();
        assert!(keys.is_disclosed(SAMPLE_VALIDATION));
        assert!(keys.is_disclosed(SAMPLE_DECRYPTION));
        // Spelling does not hide a key: case, spaces, modifiers.
        assert!(keys.is_disclosed(&SAMPLE_DECRYPTION.to_lowercase()));
        assert!(keys.is_disclosed(&format!("  {SAMPLE_VALIDATION}\n ")));
        assert!(keys.is_disclosed(&format!("{SAMPLE_VALIDATION},IsolateApps")));
        assert!(keys.is_disclosed(&format!("{SAMPLE_DECRYPTION},isolatebyappid")));
        assert!(keys.is_disclosed(&format!("{SAMPLE_DECRYPTION},IsolateApps,IsolateByAppId")));
        assert!(keys.is_disclosed(&format!("{SAMPLE_VALIDATION} , IsolateApps")));
        // An unknown modifier makes the key invalid, not less public.
        assert!(keys.is_disclosed(&format!("{SAMPLE_VALIDATION},Foo")));
        // A fresh key, the empty string and AutoGenerate are not listed.
        let fresh = fresh_key();
        assert!(!keys.is_disclosed(&fresh));
        assert!(!keys.is_disclosed(""));
        assert!(!keys.is_disclosed("AutoGenerate,IsolateApps"));
    }

    #[test]
    fn an_extra_list_adds_hashes_and_bad_lines_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = fresh_key();
        let list = dir.path().join("newer.csv");
        std::fs::write(
            &list,
            format!(
                "validationKey, decryptionKey\n{}, {}\n",
                hex::encode(key_hash(&fresh)),
                hex::encode(key_hash(""))
            ),
        )
        .unwrap();
        assert!(!DisclosedKeys::shipped().is_disclosed(&fresh));
        let keys = DisclosedKeys::with_lists(std::slice::from_ref(&list)).unwrap();
        assert!(keys.is_disclosed(&fresh));
        assert!(keys.is_disclosed(SAMPLE_DECRYPTION));
        assert_eq!(keys.len(), shipped().len() + 1);
        assert_eq!(
            keys.lists,
            vec![ExtraList {
                file: list.clone(),
                hashes: 1,
                new: 1
            }]
        );

        // A newer list repeats the shipped hashes: each is counted once.
        let newer = dir.path().join("newer-still.csv");
        std::fs::write(
            &newer,
            format!(
                "{}, {}\n",
                hex::encode(key_hash(SAMPLE_VALIDATION)).to_uppercase(),
                hex::encode(key_hash(&fresh))
            ),
        )
        .unwrap();
        let keys = DisclosedKeys::with_lists(&[list.clone(), newer.clone()]).unwrap();
        assert_eq!(keys.len(), shipped().len() + 1);
        assert_eq!((keys.lists[1].hashes, keys.lists[1].new), (2, 0));

        // Nothing usable in the file: refused, not silently ignored.
        let empty = dir.path().join("empty.csv");
        std::fs::write(&empty, "validationKey, decryptionKey\n\n").unwrap();
        let shown = DisclosedKeys::with_lists(std::slice::from_ref(&empty))
            .unwrap_err()
            .to_string();
        assert!(shown.contains("empty.csv: no hashes"), "{shown}");
        std::fs::write(&empty, b"\xff\xfe v\x00").unwrap();
        let shown = DisclosedKeys::with_lists(std::slice::from_ref(&empty))
            .unwrap_err()
            .to_string();
        assert!(shown.contains("empty.csv: not UTF-8"), "{shown}");

        let bad = dir.path().join("bad.csv");
        std::fs::write(
            &bad,
            format!("validationKey, decryptionKey\n\n{fresh}, {fresh}\n"),
        )
        .unwrap();
        let e = DisclosedKeys::with_lists(std::slice::from_ref(&bad)).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("{}:3: ", bad.display())),
            "{shown}"
        );
        assert!(shown.contains("not a SHA-256 hash"), "{shown}");
        assert!(
            !shown.contains(&fresh),
            "a pasted key is never echoed: {shown}"
        );
        std::fs::write(&bad, "abc\n").unwrap();
        let shown = DisclosedKeys::with_lists(&[bad]).unwrap_err().to_string();
        assert!(shown.contains(":1: expected two hashes"), "{shown}");
        let missing = dir.path().join("missing.csv");
        let shown = DisclosedKeys::with_lists(std::slice::from_ref(&missing))
            .unwrap_err()
            .to_string();
        assert!(shown.starts_with(&missing.display().to_string()), "{shown}");
    }
}
