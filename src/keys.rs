//! Key material: generation from the OS CSPRNG, fingerprints, validation rules.
//!
//! A key never leaves this module as plain text except through
//! [`KeyText::expose`], which callers use only to write a file or to print
//! `keygen` output. Debug output is redacted and the memory is zeroed on drop.

use rand::TryRng;
use rand::rngs::SysRng;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fmt;

/// The hex text of a validation or decryption key (as written in a file).
#[derive(Clone)]
pub struct KeyText(SecretString);

impl KeyText {
    pub fn new(text: impl Into<String>) -> Self {
        KeyText(SecretString::from(text.into()))
    }

    /// The key as ASP.NET reads it: whitespace-trimmed.
    pub fn expose(&self) -> &str {
        self.0.expose_secret().trim()
    }

    /// First 8 hex characters of SHA-256 over the upper-cased key text.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.expose())
    }

    /// Keys are equal when their trimmed, upper-cased hex is equal.
    pub fn same_key(&self, other: &KeyText) -> bool {
        self.expose().eq_ignore_ascii_case(other.expose())
    }

    pub fn hex_len(&self) -> usize {
        self.expose().len()
    }

    /// Why this text cannot be a key for `alg`, if it cannot.
    pub fn problem(&self, alg: KeyAlg<'_>) -> Option<KeyProblem> {
        key_problem(self.expose(), alg)
    }
}

impl fmt::Debug for KeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyText(fingerprint {})", self.fingerprint())
    }
}

/// Fingerprint of a key text (see [`KeyText::fingerprint`]).
pub fn fingerprint(key: &str) -> String {
    hex::encode(&key_digest(key)[..4])
}

/// SHA-256 over the trimmed, upper-cased key text: what fingerprints show
/// the start of, and what lists of disclosed keys hold.
pub fn key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.trim().to_ascii_uppercase().as_bytes()).into()
}

/// The shortest run of hex digits taken for a key, or a part of one.
const KEY_RUN: usize = 32;

/// Text from a file with every run of 32 or more hex digits (a key, or a
/// part of one) replaced by `[key <fingerprint>]`: runs written as digits,
/// as character references that stand for digits (`&#x46;`, `&#70;`), or
/// as a mix, since what is masked is what the text means, not how it is
/// spelled. Used wherever file text is shown outside a key attribute:
/// comments in a diff, values quoted in findings, parse errors.
pub fn mask_key_text(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let mut digits = String::new();
        while let Some((digit, len)) = hex_digit_at(bytes, at) {
            digits.push(digit);
            at += len;
        }
        if digits.is_empty() {
            at += 1;
            continue;
        }
        if digits.len() >= KEY_RUN {
            // `start` and `at` sit on ASCII bytes: character boundaries.
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[copied..start]);
            o.push_str(&format!("[key {}]", fingerprint(&digits)));
            copied = at;
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

/// The hex digit at `at`, written as itself or as a character reference,
/// and how many bytes it takes.
fn hex_digit_at(bytes: &[u8], at: usize) -> Option<(char, usize)> {
    let first = *bytes.get(at)?;
    if first.is_ascii_hexdigit() {
        return Some((first as char, 1));
    }
    if first != b'&' || bytes.get(at + 1) != Some(&b'#') {
        return None;
    }
    let (radix, from) = match bytes.get(at + 2) {
        Some(b'x' | b'X') => (16, at + 3),
        _ => (10, at + 2),
    };
    let len = bytes[from.min(bytes.len())..]
        .iter()
        .take_while(|b| b.is_ascii_hexdigit())
        .count();
    if len == 0 || bytes.get(from + len) != Some(&b';') {
        return None;
    }
    let number = std::str::from_utf8(&bytes[from..from + len]).ok()?;
    let c = char::from_u32(u32::from_str_radix(number, radix).ok()?)?;
    c.is_ascii_hexdigit().then_some((c, from + len + 1 - at))
}

/// Lower-case hex SHA-256 of some bytes (file hashes).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    Validation,
    Decryption,
}

impl KeyPurpose {
    pub fn attribute(self) -> &'static str {
        match self {
            KeyPurpose::Validation => "validationKey",
            KeyPurpose::Decryption => "decryptionKey",
        }
    }
}

/// Why farmkey does not write a text as a key: ASP.NET refuses it, or it
/// is shorter than the documented size (the scan calls what ASP.NET still
/// takes `short-key`; [`crate::config::machine_key`] says what ASP.NET
/// refuses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    Empty,
    NonHex(char),
    OddLength(usize),
    /// Shorter than validation algorithm `alg` needs.
    TooShort {
        len: usize,
        alg: Validation,
        min: usize,
    },
    /// Not a size decryption algorithm `alg` takes.
    WrongSize {
        len: usize,
        alg: Decryption,
        allowed: &'static [usize],
    },
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::Empty => f.write_str("is empty"),
            KeyProblem::NonHex(c) if c.is_ascii_graphic() => {
                write!(f, "contains a non-hex character '{c}'")
            }
            KeyProblem::NonHex(c) => {
                write!(f, "contains a non-hex character U+{:04X}", *c as u32)
            }
            KeyProblem::OddLength(len) => {
                write!(f, "has an odd number of hex characters ({len})")
            }
            KeyProblem::TooShort { len, alg, min } => {
                write!(
                    f,
                    "is {len} hex characters; farmkey writes {alg} keys of at least {min}"
                )
            }
            KeyProblem::WrongSize { len, alg, allowed } => {
                let sizes: Vec<String> = allowed.iter().map(|n| n.to_string()).collect();
                write!(
                    f,
                    "is {len} hex characters; farmkey writes {} keys of {} only",
                    match alg {
                        Decryption::Auto => "Auto (AES)".into(),
                        other => other.to_string(),
                    },
                    sizes.join(" or ")
                )
            }
        }
    }
}

/// The algorithm a key is for.
#[derive(Debug, Clone, Copy)]
pub enum KeyAlg<'a> {
    Validation(&'a Validation),
    Decryption(&'a Decryption),
}

/// The sizes farmkey writes: what ASP.NET refuses (config::machine_key)
/// and the published recommendations of README's `short-key` finding.
fn key_problem(key: &str, alg: KeyAlg<'_>) -> Option<KeyProblem> {
    if key.is_empty() {
        return Some(KeyProblem::Empty);
    }
    if let Some(bad) = key.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Some(KeyProblem::NonHex(bad));
    }
    let len = key.len();
    if !len.is_multiple_of(2) {
        return Some(KeyProblem::OddLength(len));
    }
    match alg {
        KeyAlg::Validation(v) => {
            let min = v.min_hex()?;
            (len < min).then(|| KeyProblem::TooShort {
                len,
                alg: v.clone(),
                min,
            })
        }
        KeyAlg::Decryption(d) => {
            let allowed = d.allowed_hex()?;
            (!allowed.contains(&len)).then(|| KeyProblem::WrongSize {
                len,
                alg: d.clone(),
                allowed,
            })
        }
    }
}

/// A `<machineKey>` attribute whose value ASP.NET checks against a fixed
/// list of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineKeyEnum {
    /// `validation`
    Validation,
    /// `decryption`
    Decryption,
    /// `compatibilityMode`
    CompatibilityMode,
}

/// The prefix of a custom algorithm (`alg:HMACSHA256`, `alg:MyCompany.Aes`).
pub const CUSTOM_ALGORITHM_PREFIX: &str = "alg:";

impl MachineKeyEnum {
    pub const ALL: [MachineKeyEnum; 3] = [
        MachineKeyEnum::Validation,
        MachineKeyEnum::Decryption,
        MachineKeyEnum::CompatibilityMode,
    ];

    /// The attribute's name in `<machineKey>`.
    pub fn attribute(self) -> &'static str {
        match self {
            MachineKeyEnum::Validation => "validation",
            MachineKeyEnum::Decryption => "decryption",
            MachineKeyEnum::CompatibilityMode => "compatibilityMode",
        }
    }

    /// The values ASP.NET accepts, spelled as it requires them (besides
    /// `alg:NAME` where [`Self::allows_custom`]). From the .NET Framework
    /// reference source: `MachineKeyValidationConverter`,
    /// `MachineKeySection.Decryption`, `MachineKeyCompatibilityMode`.
    pub fn accepted(self) -> &'static [&'static str] {
        match self {
            MachineKeyEnum::Validation => &[
                "SHA1",
                "MD5",
                "3DES",
                "AES",
                "HMACSHA256",
                "HMACSHA384",
                "HMACSHA512",
            ],
            MachineKeyEnum::Decryption => &["Auto", "DES", "3DES", "AES"],
            MachineKeyEnum::CompatibilityMode => {
                &["Framework20SP1", "Framework20SP2", "Framework45"]
            }
        }
    }

    /// Whether `alg:NAME` (a .NET algorithm by name) is accepted.
    pub fn allows_custom(self) -> bool {
        !matches!(self, MachineKeyEnum::CompatibilityMode)
    }

    /// Whether ASP.NET accepts `value` for this attribute, and why not.
    /// `validation` and `decryption` are trimmed first
    /// (WhiteSpaceTrimStringConverter); `compatibilityMode` is not (its enum
    /// converter refuses white space). Names are then compared exactly:
    /// `sha1` stops the application at start-up.
    pub fn check(self, value: &str) -> Result<(), EnumProblem> {
        let v = if self.allows_custom() {
            value.trim()
        } else {
            value
        };
        if v.is_empty() {
            return Err(EnumProblem::Empty);
        }
        if self.accepted().contains(&v) {
            return Ok(());
        }
        if self.allows_custom()
            && let Some(name) = v.strip_prefix(CUSTOM_ALGORITHM_PREFIX)
        {
            return if name.trim().is_empty() {
                Err(EnumProblem::NoCustomName)
            } else {
                Ok(())
            };
        }
        match self
            .accepted()
            .iter()
            .find(|a| a.eq_ignore_ascii_case(v))
            .copied()
            .or_else(|| {
                let prefix = v.get(..CUSTOM_ALGORITHM_PREFIX.len())?;
                (self.allows_custom() && prefix.eq_ignore_ascii_case(CUSTOM_ALGORITHM_PREFIX))
                    .then_some(CUSTOM_ALGORITHM_PREFIX)
            }) {
            Some(right) => Err(EnumProblem::WrongCase { right }),
            None => Err(EnumProblem::Unknown),
        }
    }

    /// Whether ASP.NET accepts the attribute value as written.
    pub fn accepts(self, raw: &str) -> bool {
        self.check(raw).is_ok()
    }

    /// The accepted spelling of a value that differs from it only in case
    /// or surrounding white space (`sha1` is `SHA1`), for writing.
    pub fn canonical(self, value: &str) -> Option<String> {
        let value = value.trim();
        if let Some(name) = self
            .accepted()
            .iter()
            .find(|a| a.eq_ignore_ascii_case(value))
        {
            return Some((*name).to_string());
        }
        let prefix = CUSTOM_ALGORITHM_PREFIX;
        let custom =
            value.get(..prefix.len())?.eq_ignore_ascii_case(prefix) && value.len() > prefix.len();
        (self.allows_custom() && custom).then(|| format!("{prefix}{}", &value[prefix.len()..]))
    }

    /// The accepted values as a sentence: `SHA1, MD5, ... or alg:NAME`.
    pub fn accepted_list(self) -> String {
        let mut all: Vec<&str> = self.accepted().to_vec();
        if self.allows_custom() {
            all.push("alg:NAME");
        }
        let (last, rest) = all.split_last().expect("never empty");
        format!("{} or {last}", rest.join(", "))
    }
}

/// What makes ASP.NET reject a key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySetProblem {
    /// `validation` or `decryption` as ASP.NET does not accept it.
    Value {
        attribute: MachineKeyEnum,
        value: String,
        problem: EnumProblem,
    },
    /// A key that does not fit its algorithm.
    Key {
        purpose: KeyPurpose,
        problem: KeyProblem,
    },
}

impl fmt::Display for KeySetProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySetProblem::Value {
                attribute,
                value,
                problem,
            } => f.write_str(&problem.describe(*attribute, value)),
            KeySetProblem::Key { purpose, problem } => {
                write!(f, "{} {problem}", purpose.attribute())
            }
        }
    }
}

/// Problems as one sentence, `; ` between them.
pub fn joined(problems: &[KeySetProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a value of a [`MachineKeyEnum`] attribute is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnumProblem {
    /// Empty or only whitespace.
    Empty,
    /// An accepted name in other letter case; `right` is the spelling
    /// ASP.NET requires (`alg:` for a custom algorithm prefix).
    WrongCase { right: &'static str },
    /// `alg:` with no algorithm name.
    NoCustomName,
    /// Not a name ASP.NET knows.
    Unknown,
}

impl EnumProblem {
    /// A sentence naming the attribute, the value and what would be right.
    /// The value is an algorithm name, never a key.
    pub fn describe(self, attr: MachineKeyEnum, value: &str) -> String {
        let name = attr.attribute();
        match self {
            EnumProblem::Empty => {
                format!("{name} is empty; ASP.NET accepts {}", attr.accepted_list())
            }
            EnumProblem::WrongCase { right } => format!(
                "{name}=\"{}\" is not spelled as ASP.NET requires: names are case-sensitive, write \"{right}\"",
                value.trim()
            ),
            EnumProblem::NoCustomName => {
                format!("{name}=\"{}\" names no algorithm after alg:", value.trim())
            }
            EnumProblem::Unknown => format!(
                "{name}=\"{}\" is not a value ASP.NET accepts ({})",
                value.trim(),
                attr.accepted_list()
            ),
        }
    }
}

/// A `validation` ASP.NET accepts (MachineKeyValidationConverter).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Validation {
    Sha1,
    Md5,
    TripleDes,
    Aes,
    HmacSha256,
    HmacSha384,
    HmacSha512,
    /// `alg:NAME`, the name as written after `alg:`.
    Custom(String),
}

/// A `decryption` ASP.NET accepts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decryption {
    /// AES, or DES for an 8-byte key in the legacy pipeline.
    Auto,
    Des,
    TripleDes,
    Aes,
    /// `alg:NAME`, the name as written after `alg:`.
    Custom(String),
}

crate::spelled::spelled! {
    /// A `compatibilityMode` ASP.NET accepts.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum CompatibilityMode {
        Framework20SP1 = "Framework20SP1",
        Framework20SP2 = "Framework20SP2",
        Framework45 = "Framework45",
    }
}

/// The name after `alg:` (MachineKeySection takes the rest as it is).
fn custom_name(value: &str) -> Option<&str> {
    value.strip_prefix(CUSTOM_ALGORITHM_PREFIX)
}

impl Validation {
    /// What farmkey generates keys for (`keygen`, `push --generate`).
    pub const GENERATED: [Validation; 4] = [
        Validation::Sha1,
        Validation::HmacSha256,
        Validation::HmacSha384,
        Validation::HmacSha512,
    ];

    /// The value as ASP.NET reads it (trimmed, spelled exactly), or why it
    /// refuses it.
    pub fn parse(value: &str) -> Result<Self, EnumProblem> {
        MachineKeyEnum::Validation.check(value)?;
        let v = value.trim();
        Ok(match v {
            "SHA1" => Validation::Sha1,
            "MD5" => Validation::Md5,
            "3DES" => Validation::TripleDes,
            "AES" => Validation::Aes,
            "HMACSHA256" => Validation::HmacSha256,
            "HMACSHA384" => Validation::HmacSha384,
            "HMACSHA512" => Validation::HmacSha512,
            other => Validation::Custom(custom_name(other).unwrap_or(other).to_string()),
        })
    }

    /// As the runtime resolves it: .NET looks a custom name up without
    /// regard to case (CryptoConfig), so it is upper-cased.
    pub fn resolved(self) -> Self {
        match self {
            Validation::Custom(name) => Validation::Custom(name.to_ascii_uppercase()),
            other => other,
        }
    }

    /// Refused under compatibilityMode Framework45
    /// (MachineKeyCryptoAlgorithmFactory.GetValidationAlgorithmFactory).
    pub fn refused_under_framework45(&self) -> bool {
        matches!(
            self,
            Validation::Md5 | Validation::TripleDes | Validation::Aes
        )
    }

    /// SHA1 or MD5: what the DISA STIG calls weak.
    pub fn is_weak(&self) -> bool {
        matches!(self, Validation::Sha1 | Validation::Md5)
    }

    /// The HMACSHA family, which came with ASP.NET 4.0.
    pub fn is_hmac_sha2(&self) -> bool {
        matches!(
            self,
            Validation::HmacSha256 | Validation::HmacSha384 | Validation::HmacSha512
        )
    }

    /// The shortest key farmkey writes (README's `short-key`); `None` for
    /// a custom algorithm, whose size rules are unknown.
    fn min_hex(&self) -> Option<usize> {
        match self {
            Validation::HmacSha256 => Some(64),
            Validation::HmacSha384 => Some(96),
            Validation::HmacSha512 => Some(128),
            Validation::Custom(_) => None,
            _ => Some(40),
        }
    }

    /// Key size in bytes, as IIS Manager generates it.
    fn key_bytes(&self) -> usize {
        match self {
            Validation::HmacSha384 => 96,
            Validation::HmacSha512 => 128,
            // IIS Manager and KB 2915218 generate 64 random bytes for SHA1 and HMACSHA256.
            _ => 64,
        }
    }
}

impl Decryption {
    /// What farmkey generates keys for.
    pub const GENERATED: [Decryption; 2] = [Decryption::Aes, Decryption::TripleDes];

    /// The value as ASP.NET reads it (trimmed, spelled exactly), or why it
    /// refuses it.
    pub fn parse(value: &str) -> Result<Self, EnumProblem> {
        MachineKeyEnum::Decryption.check(value)?;
        let v = value.trim();
        Ok(match v {
            "Auto" => Decryption::Auto,
            "DES" => Decryption::Des,
            "3DES" => Decryption::TripleDes,
            "AES" => Decryption::Aes,
            other => Decryption::Custom(custom_name(other).unwrap_or(other).to_string()),
        })
    }

    /// As the runtime resolves it: `Auto` is AES (the legacy pipeline's
    /// DES for an 8-byte key is the caller's to see), a custom name is
    /// upper-cased as for [`Validation::resolved`].
    pub fn resolved(self) -> Self {
        match self {
            Decryption::Auto => Decryption::Aes,
            Decryption::Custom(name) => Decryption::Custom(name.to_ascii_uppercase()),
            other => other,
        }
    }

    /// The key sizes farmkey writes, in hex characters; `None` for a
    /// custom algorithm.
    fn allowed_hex(&self) -> Option<&'static [usize]> {
        match self {
            Decryption::TripleDes => Some(&[48]),
            Decryption::Des => Some(&[16]),
            Decryption::Auto | Decryption::Aes => Some(&[32, 48, 64]),
            Decryption::Custom(_) => None,
        }
    }

    fn key_bytes(&self) -> usize {
        match self {
            Decryption::TripleDes => 24,
            Decryption::Des => 8,
            _ => 32,
        }
    }
}

impl CompatibilityMode {
    /// The value as ASP.NET reads it (not trimmed, spelled exactly), or
    /// why it refuses it.
    pub fn parse(value: &str) -> Result<Self, EnumProblem> {
        MachineKeyEnum::CompatibilityMode.check(value)?;
        CompatibilityMode::from_name(value).ok_or(EnumProblem::Unknown)
    }
}

impl fmt::Display for Validation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Validation::Sha1 => "SHA1",
            Validation::Md5 => "MD5",
            Validation::TripleDes => "3DES",
            Validation::Aes => "AES",
            Validation::HmacSha256 => "HMACSHA256",
            Validation::HmacSha384 => "HMACSHA384",
            Validation::HmacSha512 => "HMACSHA512",
            Validation::Custom(name) => return write!(f, "{CUSTOM_ALGORITHM_PREFIX}{name}"),
        })
    }
}

impl fmt::Display for Decryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Decryption::Auto => "Auto",
            Decryption::Des => "DES",
            Decryption::TripleDes => "3DES",
            Decryption::Aes => "AES",
            Decryption::Custom(name) => return write!(f, "{CUSTOM_ALGORITHM_PREFIX}{name}"),
        })
    }
}

/// Audit records and `--json` spell algorithms as `<machineKey>` does.
impl Serialize for Validation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Decryption {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `--validation` takes what farmkey generates keys for.
impl clap::ValueEnum for Validation {
    fn value_variants<'a>() -> &'a [Self] {
        static ALL: [Validation; 4] = Validation::GENERATED;
        &ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let name = match self {
            Validation::Sha1 => "SHA1",
            Validation::HmacSha256 => "HMACSHA256",
            Validation::HmacSha384 => "HMACSHA384",
            Validation::HmacSha512 => "HMACSHA512",
            _ => return None,
        };
        Some(clap::builder::PossibleValue::new(name))
    }
}

/// `--decryption` takes what farmkey generates keys for.
impl clap::ValueEnum for Decryption {
    fn value_variants<'a>() -> &'a [Self] {
        static ALL: [Decryption; 2] = Decryption::GENERATED;
        &ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let name = match self {
            Decryption::Aes => "AES",
            Decryption::TripleDes => "3DES",
            _ => return None,
        };
        Some(clap::builder::PossibleValue::new(name))
    }
}

/// A complete `<machineKey>` value set to write to servers.
#[derive(Clone, Debug)]
pub struct KeySet {
    pub validation_key: KeyText,
    pub decryption_key: KeyText,
    pub validation: Validation,
    pub decryption: Decryption,
}

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RngError(String);

impl KeySet {
    /// A fresh key set from the OS CSPRNG, upper-case hex.
    pub fn generate(validation: Validation, decryption: Decryption) -> Result<Self, RngError> {
        Ok(KeySet {
            validation_key: random_key(validation.key_bytes())?,
            decryption_key: random_key(decryption.key_bytes())?,
            validation,
            decryption,
        })
    }

    /// A set as a file writes it, algorithm names as written: each name
    /// ASP.NET refuses, then each key that does not fit its algorithm
    /// (a key whose algorithm is refused is not judged).
    pub fn from_written(
        validation_key: KeyText,
        decryption_key: KeyText,
        validation: &str,
        decryption: &str,
    ) -> Result<KeySet, Vec<KeySetProblem>> {
        let refused = |attribute: MachineKeyEnum, value: &str, problem| KeySetProblem::Value {
            attribute,
            value: value.to_string(),
            problem,
        };
        let v = Validation::parse(validation)
            .map_err(|p| refused(MachineKeyEnum::Validation, validation, p));
        let d = Decryption::parse(decryption)
            .map_err(|p| refused(MachineKeyEnum::Decryption, decryption, p));
        let mut problems: Vec<KeySetProblem> = [v.as_ref().err(), d.as_ref().err()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let key = |purpose, key: &KeyText, alg| {
            key.problem(alg)
                .map(|problem| KeySetProblem::Key { purpose, problem })
        };
        if let Ok(v) = &v {
            problems.extend(key(
                KeyPurpose::Validation,
                &validation_key,
                KeyAlg::Validation(v),
            ));
        }
        if let Ok(d) = &d {
            problems.extend(key(
                KeyPurpose::Decryption,
                &decryption_key,
                KeyAlg::Decryption(d),
            ));
        }
        match (v, d) {
            (Ok(validation), Ok(decryption)) if problems.is_empty() => Ok(KeySet {
                validation_key,
                decryption_key,
                validation,
                decryption,
            }),
            _ => Err(problems),
        }
    }

    /// Keys that do not fit their algorithm (ASP.NET would refuse them,
    /// or they are shorter than farmkey writes).
    pub fn problems(&self) -> Vec<KeySetProblem> {
        [
            (
                KeyPurpose::Validation,
                &self.validation_key,
                KeyAlg::Validation(&self.validation),
            ),
            (
                KeyPurpose::Decryption,
                &self.decryption_key,
                KeyAlg::Decryption(&self.decryption),
            ),
        ]
        .into_iter()
        .filter_map(|(purpose, key, alg)| {
            let problem = key.problem(alg)?;
            Some(KeySetProblem::Key { purpose, problem })
        })
        .collect()
    }

    /// Short identity of the whole set: fingerprint over both keys.
    pub fn set_fingerprint(&self) -> String {
        set_fingerprint(&self.validation_key, &self.decryption_key)
    }

    /// The `<machineKey ... />` element, for `keygen`. Contains the keys.
    pub fn to_xml_element(&self) -> String {
        format!(
            "<machineKey validationKey=\"{}\" decryptionKey=\"{}\" validation=\"{}\" decryption=\"{}\" />",
            self.validation_key.expose(),
            self.decryption_key.expose(),
            self.validation,
            self.decryption
        )
    }
}

/// Fingerprint of a pair of keys, used to group servers sharing one key set.
pub fn set_fingerprint(validation: &KeyText, decryption: &KeyText) -> String {
    let mut hasher = Sha256::new();
    hasher.update(validation.expose().to_ascii_uppercase().as_bytes());
    hasher.update(b"|");
    hasher.update(decryption.expose().to_ascii_uppercase().as_bytes());
    hex::encode(&hasher.finalize()[..4])
}

fn random_key(bytes: usize) -> Result<KeyText, RngError> {
    let mut buf = zeroize::Zeroizing::new(vec![0u8; bytes]);
    SysRng
        .try_fill_bytes(&mut buf)
        .map_err(|e| RngError(e.to_string()))?;
    Ok(KeyText::new(hex::encode_upper(&*buf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_ignores_case_and_whitespace() {
        let a = KeyText::new("ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12");
        let b = KeyText::new("  AB12CD34EF56AB12CD34EF56AB12CD34EF56AB12\n");
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert!(a.same_key(&b));
        assert_eq!(a.fingerprint().len(), 8);
    }

    #[test]
    fn key_text_is_masked_however_it_is_spelled() {
        let key = "1A2B".repeat(16);
        let fp = fingerprint(&key);
        let hex_refs: String = key.chars().map(|c| format!("&#x{:x};", c as u32)).collect();
        let mixed: String = key
            .chars()
            .enumerate()
            .map(|(i, c)| match i % 3 {
                0 => format!("&#{};", c as u32),
                1 => format!("&#X{:X};", c as u32),
                _ => c.to_string(),
            })
            .collect();
        for spelled in [key.clone(), key.to_lowercase(), hex_refs, mixed] {
            let text = format!("<!-- old=\"{spelled}\" --> é");
            let masked = mask_key_text(&text);
            assert_eq!(
                masked,
                format!("<!-- old=\"[key {fp}]\" --> é"),
                "{spelled}"
            );
        }
        // Short runs, references to other characters and names stay.
        for kept in [
            "PublicKeyToken=b77a5c561934e089",
            "&#x3C;&#60;&amp;&#xZZ;&#;&#x",
            "SHA1 &#x41;&#x42; éé 0123456789abcdef0123456789abcde",
        ] {
            assert!(matches!(mask_key_text(kept), Cow::Borrowed(_)), "{kept}");
        }
    }

    #[test]
    fn debug_is_redacted() {
        let k = KeyText::new("AB12CD34EF56AB12CD34EF56AB12CD34EF56AB12");
        let shown = format!("{k:?}");
        assert!(!shown.contains("AB12CD34"), "{shown}");
        assert!(shown.contains(&k.fingerprint()));
    }

    #[test]
    fn generated_sets_have_iis_sizes_and_are_valid() {
        let set = KeySet::generate(Validation::Sha1, Decryption::Aes).unwrap();
        assert_eq!(set.validation_key.hex_len(), 128);
        assert_eq!(set.decryption_key.hex_len(), 64);
        assert!(set.problems().is_empty());
        let v = set.validation_key.expose();
        assert!(
            v.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        );
        let other = KeySet::generate(Validation::Sha1, Decryption::Aes).unwrap();
        assert!(!set.validation_key.same_key(&other.validation_key));
        let big = KeySet::generate(Validation::HmacSha512, Decryption::TripleDes).unwrap();
        assert_eq!(big.validation_key.hex_len(), 256);
        assert_eq!(big.decryption_key.hex_len(), 48);
        assert!(big.problems().is_empty());
    }

    #[test]
    fn key_problems_follow_runtime_rules() {
        let v = |k: &str, alg: &str| {
            key_problem(k, KeyAlg::Validation(&Validation::parse(alg).unwrap()))
        };
        let d = |k: &str, alg: &str| {
            key_problem(k, KeyAlg::Decryption(&Decryption::parse(alg).unwrap()))
        };
        assert_eq!(v("XYZ0", "SHA1"), Some(KeyProblem::NonHex('X')));
        assert_eq!(d("ABC", "AES"), Some(KeyProblem::OddLength(3)));
        assert_eq!(
            v(&"A".repeat(38), "SHA1"),
            Some(KeyProblem::TooShort {
                len: 38,
                alg: Validation::Sha1,
                min: 40
            })
        );
        assert_eq!(
            d(&"A".repeat(40), " Auto "),
            Some(KeyProblem::WrongSize {
                len: 40,
                alg: Decryption::Auto,
                allowed: &[32, 48, 64]
            })
        );
        assert_eq!(d("", "AES"), Some(KeyProblem::Empty));
        assert!(v(&"A".repeat(40), "SHA1").is_none());
        assert!(v(&"A".repeat(40), "HMACSHA256").is_some());
        assert!(d(&"A".repeat(48), "3DES").is_none());
        assert!(d(&"A".repeat(40), "AES").is_some());
        assert!(d(&"A".repeat(64), "Auto").is_none());
        assert!(d(&"A".repeat(16), "DES").is_none());
        assert!(d(&"A".repeat(10), "alg:Custom").is_none());
        assert!(v(&"A".repeat(10), "alg:Custom").is_none());
    }

    #[test]
    fn algorithms_parse_as_asp_net_spells_them_and_display_as_written() {
        for e in [MachineKeyEnum::Validation, MachineKeyEnum::Decryption] {
            for name in e.accepted() {
                let shown = match e {
                    MachineKeyEnum::Validation => Validation::parse(name).unwrap().to_string(),
                    _ => Decryption::parse(name).unwrap().to_string(),
                };
                assert_eq!(shown, *name);
            }
        }
        for name in MachineKeyEnum::CompatibilityMode.accepted() {
            assert_eq!(CompatibilityMode::parse(name).unwrap().to_string(), *name);
        }
        assert_eq!(
            Validation::parse(" HMACSHA512 "),
            Ok(Validation::HmacSha512)
        );
        let custom = Validation::parse("alg:MyHmac").unwrap();
        assert_eq!(custom, Validation::Custom("MyHmac".into()));
        assert_eq!(custom.to_string(), "alg:MyHmac");
        assert_eq!(custom.resolved(), Validation::Custom("MYHMAC".into()));
        assert_eq!(
            Decryption::parse("Auto").unwrap().resolved(),
            Decryption::Aes
        );
        assert_eq!(
            Validation::parse("sha1"),
            Err(EnumProblem::WrongCase { right: "SHA1" })
        );
        assert_eq!(Decryption::parse("alg:"), Err(EnumProblem::NoCustomName));
        // compatibilityMode is not trimmed: its enum converter refuses white space.
        assert_eq!(
            CompatibilityMode::parse(" Framework45"),
            Err(EnumProblem::Unknown)
        );
        assert_eq!(CompatibilityMode::parse("alg:x"), Err(EnumProblem::Unknown));
    }

    #[test]
    fn command_line_offers_what_farmkey_generates_spelled_as_asp_net_does() {
        use clap::ValueEnum;
        let names = |v: Vec<Option<clap::builder::PossibleValue>>| -> Vec<String> {
            v.into_iter()
                .map(|p| p.unwrap().get_name().to_string())
                .collect()
        };
        assert_eq!(
            names(
                Validation::value_variants()
                    .iter()
                    .map(|v| v.to_possible_value())
                    .collect()
            ),
            ["SHA1", "HMACSHA256", "HMACSHA384", "HMACSHA512"]
        );
        assert_eq!(
            names(
                Decryption::value_variants()
                    .iter()
                    .map(|v| v.to_possible_value())
                    .collect()
            ),
            ["AES", "3DES"]
        );
        assert_eq!(Validation::Md5.to_possible_value(), None);
        assert_eq!(
            serde_json::to_string(&(Validation::HmacSha256, Decryption::TripleDes)).unwrap(),
            r#"["HMACSHA256","3DES"]"#
        );
    }

    #[test]
    fn key_problems_are_worded() {
        for (problem, wording) in [
            (KeyProblem::Empty, "is empty"),
            (KeyProblem::NonHex('x'), "contains a non-hex character 'x'"),
            (
                KeyProblem::NonHex('\u{a0}'),
                "contains a non-hex character U+00A0",
            ),
            (
                KeyProblem::OddLength(63),
                "has an odd number of hex characters (63)",
            ),
            (
                KeyProblem::TooShort {
                    len: 40,
                    alg: Validation::HmacSha256,
                    min: 64,
                },
                "is 40 hex characters; farmkey writes HMACSHA256 keys of at least 64",
            ),
            (
                KeyProblem::WrongSize {
                    len: 40,
                    alg: Decryption::Auto,
                    allowed: &[32, 48, 64],
                },
                "is 40 hex characters; farmkey writes Auto (AES) keys of 32 or 48 or 64 only",
            ),
            (
                KeyProblem::WrongSize {
                    len: 40,
                    alg: Decryption::TripleDes,
                    allowed: &[48],
                },
                "is 40 hex characters; farmkey writes 3DES keys of 48 only",
            ),
        ] {
            assert_eq!(problem.to_string(), wording);
        }
    }

    #[test]
    fn machine_key_enums_are_spelled_as_asp_net_spells_them() {
        use MachineKeyEnum::*;
        assert!(Validation.accepts("SHA1") && Validation.accepts(" HMACSHA256 "));
        assert!(!Validation.accepts("sha1") && !Validation.accepts("Sha1"));
        assert!(Validation.accepts("alg:MyHmac") && !Validation.accepts("ALG:MyHmac"));
        assert!(Decryption.accepts("Auto") && !Decryption.accepts("auto"));
        assert!(!Decryption.accepts("HMACSHA256") && !Decryption.accepts(""));
        assert!(CompatibilityMode.accepts("Framework45"));
        assert!(
            !CompatibilityMode.accepts(" Framework45") && !CompatibilityMode.accepts("framework45")
        );
        assert!(!CompatibilityMode.accepts("alg:x"));
        assert_eq!(Validation.canonical(" sha1 ").as_deref(), Some("SHA1"));
        assert_eq!(Decryption.canonical("AUTO").as_deref(), Some("Auto"));
        assert_eq!(
            Validation.canonical("ALG:Custom").as_deref(),
            Some("alg:Custom")
        );
        assert_eq!(
            CompatibilityMode.canonical("framework20sp2").as_deref(),
            Some("Framework20SP2")
        );
        assert_eq!(Validation.canonical("SHA256"), None);
        assert_eq!(CompatibilityMode.canonical("alg:x"), None);
        for e in MachineKeyEnum::ALL {
            for name in e.accepted() {
                assert!(e.accepts(name) && e.canonical(name).as_deref() == Some(*name));
            }
        }
    }

    #[test]
    fn algorithm_names_are_what_asp_net_accepts_spelled_exactly() {
        use MachineKeyEnum::*;
        for (attr, ok) in [
            (Validation, "SHA1"),
            (Validation, " HMACSHA512 "),
            (Validation, "3DES"),
            (Validation, "alg:HMACSHA256"),
            (Decryption, "Auto"),
            (Decryption, "DES"),
            (Decryption, "alg:Rijndael"),
            (CompatibilityMode, "Framework45"),
        ] {
            assert_eq!(attr.check(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            Validation.check("sha1"),
            Err(EnumProblem::WrongCase { right: "SHA1" })
        );
        assert_eq!(
            Decryption.check("AUTO"),
            Err(EnumProblem::WrongCase { right: "Auto" })
        );
        assert_eq!(
            Validation.check("ALG:HMACSHA256"),
            Err(EnumProblem::WrongCase { right: "alg:" })
        );
        assert_eq!(Validation.check("  "), Err(EnumProblem::Empty));
        assert_eq!(Validation.check("BOGUS"), Err(EnumProblem::Unknown));
        assert_eq!(Decryption.check("HMACSHA256"), Err(EnumProblem::Unknown));
        assert_eq!(Decryption.check("alg:"), Err(EnumProblem::NoCustomName));
        assert_eq!(CompatibilityMode.check("alg:x"), Err(EnumProblem::Unknown));
        assert_eq!(Validation.check("é"), Err(EnumProblem::Unknown));
        let msg = EnumProblem::Unknown.describe(Validation, "BOGUS");
        assert!(
            msg.contains("validation=\"BOGUS\"") && msg.contains("HMACSHA512 or alg:NAME"),
            "{msg}"
        );
    }

    #[test]
    fn a_set_as_written_has_its_refused_names_and_misfit_keys_as_problems() {
        let set = KeySet::generate(Validation::Sha1, Decryption::Aes).unwrap();
        let (vk, dk) = (set.validation_key.clone(), set.decryption_key.clone());
        let p = KeySet::from_written(vk.clone(), dk.clone(), "BOGUS", "").unwrap_err();
        assert_eq!(
            p,
            [
                KeySetProblem::Value {
                    attribute: MachineKeyEnum::Validation,
                    value: "BOGUS".into(),
                    problem: EnumProblem::Unknown,
                },
                KeySetProblem::Value {
                    attribute: MachineKeyEnum::Decryption,
                    value: String::new(),
                    problem: EnumProblem::Empty,
                },
            ]
        );
        let p = KeySet::from_written(vk.clone(), KeyText::new("ABC"), "sha1", "AES").unwrap_err();
        assert_eq!(
            p,
            [
                KeySetProblem::Value {
                    attribute: MachineKeyEnum::Validation,
                    value: "sha1".into(),
                    problem: EnumProblem::WrongCase { right: "SHA1" },
                },
                KeySetProblem::Key {
                    purpose: KeyPurpose::Decryption,
                    problem: KeyProblem::OddLength(3),
                },
            ]
        );
        let ok = KeySet::from_written(vk, dk, " alg:MyHmac ", "Auto").unwrap();
        assert_eq!(ok.validation, Validation::Custom("MyHmac".into()));
        assert_eq!(ok.decryption, Decryption::Auto);
    }

    #[test]
    fn key_set_problems_are_worded_one_by_one_and_joined() {
        let set = KeySet::generate(Validation::Sha1, Decryption::Aes).unwrap();
        let problems = KeySet::from_written(set.validation_key, KeyText::new("ABC"), "sha1", "AES")
            .unwrap_err();
        assert_eq!(
            joined(&problems),
            "validation=\"sha1\" is not spelled as ASP.NET requires: names are case-sensitive, write \"SHA1\"; decryptionKey has an odd number of hex characters (3)"
        );
    }
}
