//! The `<machineKey>` as ASP.NET applies it at run time: key text and its
//! modifiers, the algorithm names it accepts (exact spellings), and what
//! compatibilityMode Framework45 (set, or implied by `<httpRuntime
//! targetFramework>`) refuses.
//!
//! Two pipelines read the keys, with different rules (reference source):
//! the legacy one (MachineKeySection.RuntimeDataInitialize and
//! ConfigureEncryptionObject) protects ViewState and forms tickets unless
//! compatibilityMode is Framework45; the 4.5 one (AspNetCryptoServiceProvider
//! with MachineKeyMasterKeyProvider and MachineKeyCryptoAlgorithmFactory)
//! protects them under Framework45, and always protects what
//! `MachineKey.Protect` protects, which is what WIF's
//! MachineKeySessionSecurityTokenHandler does with session tokens. A key is
//! judged by every pipeline that reads it.

use super::locks::LOCK_ATTRIBUTES;
use super::problem::bounded;
use super::record::{Implication, Setting, Source, Sourced};
use super::xml::{Document, ElemId};
pub use crate::keys::{CompatibilityMode, Decryption, Validation};
use crate::keys::{KeyPurpose, KeyText, MachineKeyEnum, mask_key_text};
use crate::paths::RemotePath;
use std::borrow::Cow;
use std::fmt;

/// The effective `<machineKey>` of an application.
#[derive(Debug, Clone)]
pub struct MachineKey {
    pub validation_key: Sourced<KeyText>,
    pub decryption_key: Sourced<KeyText>,
    /// As ASP.NET reads it: trimmed.
    pub validation: Sourced<String>,
    /// As ASP.NET reads it: trimmed.
    pub decryption: Sourced<String>,
    /// As written: ASP.NET does not trim it.
    pub compatibility_mode: Sourced<String>,
    /// Trimmed; empty when unset.
    pub data_protector_type: Sourced<String>,
    /// Trimmed; only a data protector reads it.
    pub application_name: Sourced<String>,
    /// The CLR the application's pool loads.
    pub clr: Clr,
    /// WIF's MachineKeySessionSecurityTokenHandler protects session tokens
    /// with `MachineKey.Protect`: the 4.5 pipeline, whatever the mode.
    pub protect_api: bool,
    /// Elements of the chain that ConfigurationElement refuses as it reads
    /// them: the section cannot be read, so the application does not start.
    pub refused: Vec<RefusedElement>,
}

/// The CLR of an application pool (`managedRuntimeVersion`): 4.0 unless
/// `v2.0` (ASP.NET 2.0 to 3.5: no HMACSHA256, no Framework45, no
/// targetFramework). "No Managed Code" loads none and has no machine key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clr {
    V2,
    #[default]
    V4,
}

impl Clr {
    /// From `managedRuntimeVersion`; `None` for "No Managed Code" (empty).
    pub fn of_pool(runtime: &str) -> Option<Clr> {
        let r = runtime.trim();
        if r.is_empty() {
            None
        } else if r.eq_ignore_ascii_case("v2.0") {
            Some(Clr::V2)
        } else {
            Some(Clr::V4)
        }
    }
}

impl Default for MachineKey {
    fn default() -> Self {
        MachineKey {
            validation_key: Sourced::default_value(KeyText::new("AutoGenerate,IsolateApps")),
            decryption_key: Sourced::default_value(KeyText::new("AutoGenerate,IsolateApps")),
            validation: Sourced::default_value(Validation::HmacSha256.to_string()),
            decryption: Sourced::default_value(Decryption::Auto.to_string()),
            compatibility_mode: Sourced::default_value(
                CompatibilityMode::Framework20SP1.to_string(),
            ),
            data_protector_type: Sourced::default_value(String::new()),
            application_name: Sourced::default_value(String::new()),
            clr: Clr::V4,
            protect_api: false,
            refused: Vec::new(),
        }
    }
}

/// The properties of MachineKeySection: the attributes `<machineKey>` may
/// carry besides the lock attributes. ConfigurationPropertyCollection
/// matches them exactly (`ValidationKey` is none of them).
pub const ATTRIBUTES: [&str; 7] = [
    "validationKey",
    "decryptionKey",
    "validation",
    "decryption",
    "compatibilityMode",
    "applicationName",
    "dataProtectorType",
];

/// Why ConfigurationElement.DeserializeElement refuses a `<machineKey>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElementFault {
    /// An attribute the section does not have (Config_base_unrecognized_attribute);
    /// `meant`: the attribute it spells in another case (`ValidationKey`).
    UnrecognizedAttribute {
        name: String,
        meant: Option<&'static str>,
    },
    /// A child element (Config_base_unrecognized_element_name).
    UnrecognizedElement { name: String },
    /// Text or CDATA inside the element (Config_base_section_invalid_content).
    TextContent,
    /// A lock attribute ConfigurationElement cannot apply: a list that is
    /// empty or names what the section does not have, a `lockItem` that is
    /// no boolean (ParseLockedAttributes, ReportInvalidLock).
    InvalidLock {
        attribute: &'static str,
        /// The item refused, as written (`None`: the list is empty).
        item: Option<String>,
        resource: &'static str,
    },
}

impl ElementFault {
    /// The resource name of the exception .NET throws.
    pub fn resource(&self) -> &'static str {
        match self {
            ElementFault::UnrecognizedAttribute { .. } => "Config_base_unrecognized_attribute",
            ElementFault::UnrecognizedElement { .. } => "Config_base_unrecognized_element_name",
            ElementFault::TextContent => "Config_base_section_invalid_content",
            ElementFault::InvalidLock { resource, .. } => resource,
        }
    }
}

/// A `<machineKey>` of the chain that ASP.NET refuses, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedElement {
    pub file: RemotePath,
    pub line: usize,
    pub fault: ElementFault,
}

/// The attribute of MachineKeySection a name spells in another case.
pub fn meant_attribute(name: &str) -> Option<&'static str> {
    ATTRIBUTES
        .into_iter()
        .chain(LOCK_ATTRIBUTES)
        .find(|a| a.eq_ignore_ascii_case(name))
}

/// An attribute of `<machineKey>` by its exact name, else (as farmkey
/// compares a refused element) spelled in another case.
pub fn attr_as_meant<'d>(doc: &'d Document, elem: ElemId, name: &str) -> Option<Cow<'d, str>> {
    doc.attr(elem, name).or_else(|| {
        doc.attrs(elem)
            .iter()
            .find(|a| doc.attr_name(a).eq_ignore_ascii_case(name))
            .map(|a| doc.attr_value(a))
    })
}

/// What DeserializeElement refuses in a (not encrypted) `<machineKey>`:
/// attributes it does not have (names are case-sensitive), child elements,
/// text. Comments and white space are fine.
pub fn element_faults(doc: &Document, elem: ElemId) -> Vec<ElementFault> {
    let mut out: Vec<ElementFault> = doc
        .attrs(elem)
        .iter()
        .map(|a| doc.attr_name(a))
        .filter(|name| {
            !ATTRIBUTES.contains(name) && !LOCK_ATTRIBUTES.contains(name) && *name != "configSource"
        })
        .map(|name| ElementFault::UnrecognizedAttribute {
            name: name.to_string(),
            meant: meant_attribute(name),
        })
        .collect();
    out.extend(
        doc.children(elem)
            .iter()
            .map(|&c| ElementFault::UnrecognizedElement {
                name: doc.name(c).to_string(),
            }),
    );
    if has_text(doc, elem) {
        out.push(ElementFault::TextContent);
    }
    out.extend(lock_faults(doc, elem));
    out
}

/// What ParseLockedAttributes refuses in the lock attributes of a
/// `<machineKey>`: it has attributes only (no element to lock), so
/// lockAttributes takes them or `*`, lockAllAttributesExcept them,
/// lockElements only `*`, lockAllElementsExcept nothing; an empty list is
/// an error too. `lockItem` is read by bool.Parse.
fn lock_faults(doc: &Document, elem: ElemId) -> Vec<ElementFault> {
    let mut out = Vec::new();
    for attribute in LOCK_ATTRIBUTES {
        let Some(value) = doc.attr(elem, attribute) else {
            continue;
        };
        let fault = |item: Option<&str>, resource| ElementFault::InvalidLock {
            attribute,
            item: item.map(str::to_string),
            resource,
        };
        if attribute == "lockItem" {
            let v = value.trim();
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                out.push(fault(Some(v), "Config_invalid_boolean_attribute"));
            }
            continue;
        }
        if value.is_empty() {
            let resource = match attribute {
                "lockAllAttributesExcept" => "Config_empty_lock_attributes_except",
                "lockAllElementsExcept" => "Config_empty_lock_element_except",
                _ => "Empty_attribute",
            };
            out.push(fault(None, resource));
            continue;
        }
        let refused = value
            .split([',', ':', ';'])
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .find(|item| match attribute {
                "lockAttributes" => *item != "*" && !ATTRIBUTES.contains(item),
                "lockAllAttributesExcept" => !ATTRIBUTES.contains(item),
                "lockElements" => *item != "*",
                _ => true,
            });
        if let Some(item) = refused {
            let resource = if attribute.contains("Element") {
                "Config_base_invalid_element_to_lock"
            } else {
                "Config_base_invalid_attribute_to_lock"
            };
            out.push(fault(Some(item), resource));
        }
    }
    out
}

/// Whether an element holds text of its own (not only white space,
/// comments and child elements).
fn has_text(doc: &Document, elem: ElemId) -> bool {
    let el = doc.element(elem);
    let Some(end) = el.end_tag() else {
        return false;
    };
    let mut at = el.start_tag().end;
    let mut pieces = Vec::new();
    for &c in doc.children(elem) {
        let outer = doc.element(c).outer();
        pieces.push(at..outer.start);
        at = outer.end;
    }
    pieces.push(at..end.start);
    pieces.into_iter().any(|r| {
        let mut text = doc.text(r);
        // Comments are not content; anything else left is.
        while let Some(start) = text.find("<!--") {
            if !text[..start].trim().is_empty() {
                return true;
            }
            match text[start..].find("-->") {
                Some(e) => text = &text[start + e + 3..],
                None => return true,
            }
        }
        !text.trim().is_empty()
    })
}

/// What a key attribute holds, judged as the runtime would.
#[derive(Debug, Clone)]
pub enum KeyState {
    Explicit {
        key: KeyText,
        modifiers: Vec<String>,
    },
    AutoGenerate {
        modifiers: Vec<String>,
    },
    Encrypted,
    Invalid {
        reason: KeyFault,
    },
}

impl KeyState {
    pub fn name(&self) -> &'static str {
        match self {
            KeyState::Explicit { .. } => "explicit",
            KeyState::AutoGenerate { .. } => "autogenerate",
            KeyState::Encrypted => "encrypted",
            KeyState::Invalid { .. } => "invalid",
        }
    }

    pub fn fingerprint(&self) -> Option<String> {
        match self {
            KeyState::Explicit { key, .. } => Some(key.fingerprint()),
            _ => None,
        }
    }

    pub fn key(&self) -> Option<&KeyText> {
        match self {
            KeyState::Explicit { key, .. } => Some(key),
            _ => None,
        }
    }

    pub fn modifiers(&self) -> &[String] {
        match self {
            KeyState::Explicit { modifiers, .. } | KeyState::AutoGenerate { modifiers } => {
                modifiers
            }
            _ => &[],
        }
    }
}

/// An enum attribute of `<machineKey>` written in a way ASP.NET refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    pub attribute: &'static str,
    /// As [`Sourced::shown`] shows it: a key pasted there is masked.
    pub value: String,
    /// `C:\site\web.config line 4`.
    pub at: String,
    pub refusal: EnumRefusal,
}

/// Why ASP.NET refuses an enum value of `<machineKey>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnumRefusal {
    /// Not a spelling ASP.NET accepts (`sha1`): the converters compare exactly.
    Spelling,
    /// A `validation` that compatibilityMode Framework45 refuses (`MD5`,
    /// `3DES`, `AES`): MachineKeyCryptoAlgorithmFactory knows only SHA1, the
    /// HMACSHA family and `alg:`, and throws Wrong_validation_enum_FX45.
    /// `mode`: where Framework45 comes from.
    Framework45 { mode: ModeOrigin },
    /// The same, met only through `MachineKey.Protect` (WIF's session
    /// tokens) in a legacy compatibilityMode.
    ProtectApi,
    /// A value ASP.NET 2.0 (a `v2.0` pool) does not know: the HMACSHA
    /// family came with 4.0, Framework45 with 4.5.
    Clr2,
    /// `validation="alg:NAME"` naming a hash that takes no key (`SHA256`,
    /// `MD5`): both pipelines need a KeyedHashAlgorithm and throw
    /// Wrong_validation_enum (legacy) or Wrong_validation_enum_FX45.
    UnkeyedHash,
    /// `decryption="alg:NAME"` naming a hash (`SHA256`, `HMACSHA256`):
    /// both pipelines need a SymmetricAlgorithm and throw
    /// Wrong_decryption_enum.
    NotACipher,
}

/// Where the compatibilityMode in effect comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeOrigin {
    /// Written, `at` a file and line (`C:\site\web.config line 4`).
    Set { at: String },
    /// Implied by another setting.
    Implied(Implication),
}

impl std::fmt::Display for ModeOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModeOrigin::Set { at } => write!(f, "set in {at}"),
            ModeOrigin::Implied(why) => write!(f, "implied by {why}"),
        }
    }
}

/// The names CryptoConfig maps to keyed hash algorithms (cryptoconfig.cs).
const KEYED_HASH_NAMES: &[&str] = &[
    "System.Security.Cryptography.HMAC",
    "System.Security.Cryptography.KeyedHashAlgorithm",
    "HMACMD5",
    "System.Security.Cryptography.HMACMD5",
    "HMACRIPEMD160",
    "System.Security.Cryptography.HMACRIPEMD160",
    "HMACSHA1",
    "System.Security.Cryptography.HMACSHA1",
    "HMACSHA256",
    "System.Security.Cryptography.HMACSHA256",
    "HMACSHA384",
    "System.Security.Cryptography.HMACSHA384",
    "HMACSHA512",
    "System.Security.Cryptography.HMACSHA512",
    "MACTripleDES",
    "System.Security.Cryptography.MACTripleDES",
];

fn named_in(names: &[&str], name: &str) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// The names .NET's CryptoConfig maps to hash algorithms that take no key
/// (mscorlib cryptoconfig.cs, DefaultNameHT; compared without regard to
/// case, as CryptoConfig compares them).
const UNKEYED_HASH_NAMES: &[&str] = &[
    "SHA",
    "SHA1",
    "System.Security.Cryptography.SHA1",
    "System.Security.Cryptography.SHA1Cng",
    "System.Security.Cryptography.HashAlgorithm",
    "MD5",
    "System.Security.Cryptography.MD5",
    "System.Security.Cryptography.MD5Cng",
    "SHA256",
    "SHA-256",
    "System.Security.Cryptography.SHA256",
    "System.Security.Cryptography.SHA256Cng",
    "System.Security.Cryptography.SHA256CryptoServiceProvider",
    "SHA384",
    "SHA-384",
    "System.Security.Cryptography.SHA384",
    "System.Security.Cryptography.SHA384Cng",
    "System.Security.Cryptography.SHA384CryptoServiceProvider",
    "SHA512",
    "SHA-512",
    "System.Security.Cryptography.SHA512",
    "System.Security.Cryptography.SHA512Cng",
    "System.Security.Cryptography.SHA512CryptoServiceProvider",
    "RIPEMD160",
    "RIPEMD-160",
    "System.Security.Cryptography.RIPEMD160",
    "System.Security.Cryptography.RIPEMD160Managed",
];

/// The pipeline a key or algorithm is read by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipeline {
    /// MachineKeySection's own code: ViewState and forms tickets unless
    /// compatibilityMode is Framework45.
    Legacy,
    /// AspNetCryptoServiceProvider under compatibilityMode Framework45.
    Framework45,
    /// AspNetCryptoServiceProvider reached through `MachineKey.Protect`
    /// (WIF's session tokens) in a legacy compatibilityMode.
    ProtectApi,
}

impl Pipeline {
    fn named(self) -> &'static str {
        match self {
            Pipeline::Legacy => {
                "the legacy pipeline (compatibilityMode other than Framework45, MachineKeySection)"
            }
            Pipeline::Framework45 => "the 4.5 pipeline (compatibilityMode Framework45)",
            Pipeline::ProtectApi => {
                "MachineKey.Protect, which WIF's MachineKeySessionSecurityTokenHandler uses for session tokens whatever compatibilityMode says (the 4.5 pipeline)"
            }
        }
    }
}

/// Which pipelines read this application's keys.
#[derive(Debug, Clone, Copy)]
struct Pipelines {
    legacy: bool,
    fx45: Option<Pipeline>,
}

/// Why a pipeline refuses a key attribute, with what the reference source
/// throws. Worded once, by `Display`, as what the key "is".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFault {
    /// Empty once trimmed: the property's NonEmptyStringValidator refuses
    /// the section as it loads.
    Empty,
    /// RuntimeDataInitialize: a literal validationKey shorter than 40
    /// characters or of odd length.
    LegacyValidationLength { len: usize },
    /// HexStringToByteArray: a character beyond its table (above `f`), or
    /// (decryptionKey) an odd length.
    LegacyNotHex {
        purpose: KeyPurpose,
        bad: Option<char>,
        len: usize,
    },
    /// The cipher refuses the key's size. `by`: the attribute that picks it.
    CipherSize {
        via: Pipeline,
        cipher: Decryption,
        by: PickedBy,
        hex: usize,
    },
    /// An auto-generated decryptionKey: the 4.5 pipeline derives 256 bits
    /// (MachineKeyMasterKeyProvider, AES-256), which 3DES and DES refuse.
    AutoKeySize { via: Pipeline, cipher: Decryption },
    /// Modifiers the legacy pipeline does not see as such (not at the end,
    /// spelled otherwise, with a space): it reads the whole text as a
    /// literal key, which `thrown` refuses.
    LegacyMisplaced { text: String, thrown: Box<KeyFault> },
    /// SetKeyOnSymAlgorithm: the cipher's Key setter refuses a weak key
    /// (TripleDES.IsWeakKey, DES.IsWeakKey / IsSemiWeakKey), rethrown as
    /// Bad_machine_key. Legacy pipeline only: the 4.5 one keys the cipher
    /// with a key derived from the one written.
    WeakCipherKey {
        cipher: Decryption,
        by: PickedBy,
        weakness: CipherWeakness,
    },
    /// SetInnerOuterKeys XORs every key byte into pads of `max` bytes.
    HmacPads {
        validation: Validation,
        hex: usize,
        max: usize,
    },
    /// MachineKeyMasterKeyProvider: neither hex nor AutoGenerate with
    /// known flags, spelled exactly.
    NotKeyOrFlags {
        purpose: KeyPurpose,
        via: Pipeline,
        what: NotKey,
    },
}

/// The attribute that picks a cipher, with its value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickedBy {
    Decryption(Decryption),
    /// ConfigureEncryptionObject keys validation's cipher (`3DES`, `AES`)
    /// with the decryptionKey too.
    Validation(Validation),
}

impl fmt::Display for PickedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PickedBy::Decryption(d) => write!(f, "decryption=\"{d}\""),
            PickedBy::Validation(v) => write!(f, "validation=\"{v}\""),
        }
    }
}

/// Which weak-key rule of mscorlib a cipher key falls under (each compared
/// once parity is fixed, as Utils.FixupKeyParity does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherWeakness {
    /// TripleDES.IsWeakKey: K1 == K2.
    TripleDesK1K2,
    /// TripleDES.IsWeakKey: K2 == K3 (three-key keys).
    TripleDesK2K3,
    /// DES.IsWeakKey: one of the four weak DES keys.
    DesWeak,
    /// DES.IsSemiWeakKey: one of the twelve semi-weak DES keys.
    DesSemiWeak,
}

/// What makes a key attribute neither hex nor a list of flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotKey {
    /// One text; its first character that is not hex, if any (else its
    /// length is odd, or it is a flag without AutoGenerate).
    Text(Option<char>),
    /// A comma list with a part that is no flag, as written.
    UnknownModifier(String),
    /// Hex followed by modifiers: a key the 4.5 pipeline cannot isolate.
    ModifiersOnKey(Vec<String>),
}

impl KeyFault {
    fn resource(purpose: KeyPurpose) -> &'static str {
        match purpose {
            KeyPurpose::Validation => "Invalid_validation_key",
            KeyPurpose::Decryption => "Invalid_decryption_key",
        }
    }
}

impl fmt::Display for KeyFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFault::Empty => write!(
                f,
                "is empty: its validator (StringValidator MinLength 1) refuses the section as it loads"
            ),
            KeyFault::LegacyValidationLength { len } => write!(
                f,
                "is {len} characters: {} needs an even number, at least 40, and throws Unable_to_get_cookie_authentication_validation_key",
                Pipeline::Legacy.named()
            ),
            KeyFault::LegacyNotHex { purpose, bad, len } => match bad {
                Some(c) => write!(
                    f,
                    "holds {}, which {} cannot read as hex (it reads only characters up to 'f'): it throws {}",
                    shown_char(*c),
                    Pipeline::Legacy.named(),
                    Self::resource(*purpose)
                ),
                None => write!(
                    f,
                    "has an odd number of characters ({len}): {} throws {}",
                    Pipeline::Legacy.named(),
                    Self::resource(*purpose)
                ),
            },
            KeyFault::CipherSize {
                via,
                cipher,
                by,
                hex,
            } => {
                let thrown = match via {
                    Pipeline::Legacy => "ConfigureEncryptionObject throws Bad_machine_key",
                    _ => {
                        "the key derived from it has the same size and the cipher throws a CryptographicException"
                    }
                };
                write!(
                    f,
                    "is {hex} hex characters, a size {} does not take ({by}; it takes {}): in {}, {thrown} when a value is first protected",
                    cipher,
                    cipher.sizes(*via),
                    via.named()
                )
            }
            KeyFault::LegacyMisplaced { text, thrown } => write!(
                f,
                "is \"{}\", in which {} sees no modifier (it strips only a trailing \",IsolateByAppId\" and then \",IsolateApps\", spelled exactly, no space, and compares the rest with \"AutoGenerate\" exactly), so it reads the whole text as a key that {thrown}",
                bounded(&mask_key_text(text)),
                Pipeline::Legacy.named()
            ),
            KeyFault::AutoKeySize { via, cipher } => write!(
                f,
                "is auto-generated, and {} derives an auto-generated decryption key of 256 bits (for AES-256), a size {} does not take: the cipher throws a CryptographicException when a value is first protected",
                via.named(),
                cipher
            ),
            KeyFault::WeakCipherKey {
                cipher,
                by,
                weakness,
            } => {
                let (what, resource) = match weakness {
                    CipherWeakness::TripleDesK1K2 => (
                        "its first and second 8 bytes are the same",
                        "TripleDES.IsWeakKey, Cryptography_InvalidKey_Weak",
                    ),
                    CipherWeakness::TripleDesK2K3 => (
                        "its second and third 8 bytes are the same",
                        "TripleDES.IsWeakKey, Cryptography_InvalidKey_Weak",
                    ),
                    CipherWeakness::DesWeak => (
                        "its first 8 bytes are a weak DES key",
                        "DES.IsWeakKey, Cryptography_InvalidKey_Weak",
                    ),
                    CipherWeakness::DesSemiWeak => (
                        "its first 8 bytes are a semi-weak DES key",
                        "DES.IsSemiWeakKey, Cryptography_InvalidKey_SemiWeak",
                    ),
                };
                write!(
                    f,
                    "is a key {cipher} refuses as weak ({by}): {what} once parity is fixed, so in {} the cipher's Key setter throws ({resource}) and ConfigureEncryptionObject throws Bad_machine_key when a value is first protected",
                    Pipeline::Legacy.named()
                )
            }
            KeyFault::HmacPads {
                validation,
                hex,
                max,
            } => write!(
                f,
                "is {hex} hex characters, longer than the {max}-byte pads {} fills for validation=\"{validation}\" (MachineKeySection.SetInnerOuterKeys): an IndexOutOfRangeException when a value is first protected; use at most {} hex characters",
                Pipeline::Legacy.named(),
                max * 2
            ),
            KeyFault::NotKeyOrFlags { purpose, via, what } => {
                match what {
                    NotKey::Text(bad) => write!(
                        f,
                        "is neither hex{} nor AutoGenerate",
                        bad.map(|c| format!(" (it holds {})", shown_char(c)))
                            .unwrap_or_default()
                    )?,
                    NotKey::UnknownModifier(m) => write!(
                        f,
                        "has an unknown modifier \"{}\"",
                        bounded(&mask_key_text(m))
                    )?,
                    NotKey::ModifiersOnKey(modifiers) => {
                        write!(f, "carries {} on an explicit key", modifiers.join(","))?
                    }
                }
                write!(
                    f,
                    ": {} takes hex as a whole, or AutoGenerate with the flags IsolateApps or IsolateByAppId spelled exactly and separated by bare commas, and throws {} (MachineKeyMasterKeyProvider)",
                    via.named(),
                    Self::resource(*purpose)
                )
            }
        }
    }
}

fn shown_char(c: char) -> String {
    if c.is_ascii_graphic() {
        format!("'{c}'")
    } else {
        format!("U+{:04X}", c as u32)
    }
}

impl Decryption {
    /// Whether the cipher takes a key of `bytes` in this pipeline; the
    /// legacy one cuts a longer DES key to its first 8 bytes. A custom
    /// algorithm's sizes are its own.
    fn takes(&self, via: Pipeline, bytes: usize) -> bool {
        match self {
            Decryption::Auto | Decryption::Aes => matches!(bytes, 16 | 24 | 32),
            Decryption::TripleDes => matches!(bytes, 16 | 24),
            Decryption::Des if via == Pipeline::Legacy => bytes >= 8,
            Decryption::Des => bytes == 8,
            Decryption::Custom(_) => true,
        }
    }

    fn sizes(&self, via: Pipeline) -> &'static str {
        match self {
            Decryption::Auto | Decryption::Aes => "32, 48 or 64 hex characters",
            Decryption::TripleDes => "32 or 48 hex characters",
            Decryption::Des if via == Pipeline::Legacy => "16 hex characters or more",
            Decryption::Des => "16 hex characters",
            Decryption::Custom(_) => "its own sizes",
        }
    }
}

/// An explicit key ASP.NET takes that is weaker than a published
/// recommendation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeakKey {
    pub purpose: KeyPurpose,
    pub hex: usize,
    pub advice: Recommendation,
}

/// The published recommendation a key falls short of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recommendation {
    /// RFC 2104 section 3: HMAC keys shorter than the hash output are
    /// strongly discouraged. `hash_hex`: the output in hex characters.
    Rfc2104 { hmac: &'static str, hash_hex: usize },
    /// NIST SP 800-131A: two-key Triple DES is disallowed for encryption.
    TwoKeyTripleDes,
    /// NIST withdrew DES (FIPS 46-3) and SP 800-131A disallows it.
    Des,
}

impl fmt::Display for WeakKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.hex;
        match &self.advice {
            Recommendation::Rfc2104 { hmac, hash_hex } => write!(
                f,
                "is {hex} hex characters, shorter than the {hmac} output ({hash_hex} hex characters): ASP.NET takes it, but RFC 2104 (HMAC, section 3) strongly discourages keys shorter than the hash output; use {hash_hex} hex characters or more"
            ),
            Recommendation::TwoKeyTripleDes => write!(
                f,
                "is a two-key Triple DES key ({hex} hex characters): ASP.NET takes it, but NIST SP 800-131A disallows two-key Triple DES for encryption; use 48 hex characters, or AES"
            ),
            Recommendation::Des => write!(
                f,
                "is a DES key (56 bits): ASP.NET takes it, but NIST withdrew DES (FIPS 46-3) and SP 800-131A disallows it for encryption; use AES"
            ),
        }
    }
}

/// A data protector that replaces the machine keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataProtectorUse {
    /// `dataProtectorType`, as ASP.NET reads it (trimmed).
    pub type_name: String,
    pub application_name: String,
    /// Where it is set: `C:\site\web.config line 4`.
    pub at: String,
    /// Which values it protects: everything under Framework45, only
    /// `MachineKey.Protect` (WIF's session tokens) otherwise.
    pub via: Pipeline,
}

impl DataProtectorUse {
    /// The class `dataProtectorType` names, without its assembly.
    pub fn class(&self) -> &str {
        self.type_name.split(',').next().unwrap_or("").trim()
    }
}

/// Why ASP.NET refuses `<httpRuntime targetFramework>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetFrameworkRefusal {
    /// Not a Version (HttpRuntimeSection.GetTargetFrameworkName throws
    /// HttpRuntimeSection_TargetFramework_Invalid).
    NotAVersion,
    /// ASP.NET 2.0's httpRuntime has no such attribute (unrecognized
    /// attribute).
    Clr2,
}

/// The validation algorithms the legacy pipeline keys an HMAC with, and
/// the pad size SetInnerOuterKeys uses (`_AutoGenValidationKeySize`).
fn legacy_hmac_pad(validation: &Validation) -> Option<usize> {
    use Validation::*;
    match validation {
        Sha1 | Aes | TripleDes | HmacSha256 => Some(64),
        HmacSha384 | HmacSha512 => Some(128),
        Md5 | Custom(_) => None,
    }
}

/// The HMAC a validation algorithm signs with, and its output in hex.
fn hmac_output(validation: &Validation) -> Option<(&'static str, usize)> {
    use Validation::*;
    match validation {
        Sha1 | Aes | TripleDes => Some(("HMACSHA1", 40)),
        HmacSha256 => Some(("HMACSHA256", 64)),
        HmacSha384 => Some(("HMACSHA384", 96)),
        HmacSha512 => Some(("HMACSHA512", 128)),
        Md5 | Custom(_) => None,
    }
}

/// RuntimeDataInitialize: strips `,IsolateByAppId` then `,IsolateApps`
/// (ordinal, at the end only), then compares with `AutoGenerate` exactly.
fn legacy_key(text: &str, purpose: KeyPurpose) -> Result<KeyState, KeyFault> {
    legacy_literal(text, purpose).map_err(|fault| {
        // A comma left in the literal: modifiers it does not see as such.
        match text.rsplit_once(',') {
            Some(_) if !matches!(fault, KeyFault::Empty) => KeyFault::LegacyMisplaced {
                text: text.to_string(),
                thrown: Box::new(fault),
            },
            _ => fault,
        }
    })
}

fn legacy_literal(text: &str, purpose: KeyPurpose) -> Result<KeyState, KeyFault> {
    let mut rest = text;
    let mut modifiers = Vec::new();
    if let Some(r) = rest.strip_suffix(",IsolateByAppId") {
        rest = r;
        modifiers.push("IsolateByAppId".to_string());
    }
    if let Some(r) = rest.strip_suffix(",IsolateApps") {
        rest = r;
        modifiers.insert(0, "IsolateApps".to_string());
    }
    if rest == "AutoGenerate" {
        return Ok(KeyState::AutoGenerate { modifiers });
    }
    // .NET counts UTF-16 units.
    let len = rest.encode_utf16().count();
    if purpose == KeyPurpose::Validation && (len < 40 || !len.is_multiple_of(2)) {
        return Err(KeyFault::LegacyValidationLength { len });
    }
    if !len.is_multiple_of(2) {
        return Err(KeyFault::LegacyNotHex {
            purpose,
            bad: None,
            len,
        });
    }
    // Its table reads every character up to 'f' (non-hex ones as 0).
    if let Some(bad) = rest.chars().find(|&c| c > 'f') {
        return Err(KeyFault::LegacyNotHex {
            purpose,
            bad: Some(bad),
            len,
        });
    }
    Ok(KeyState::Explicit {
        key: KeyText::new(legacy_read(rest)),
        modifiers,
    })
}

/// The key as HexStringToByteArray reads it: its table holds 0 for every
/// character up to 'f' that is not hex, so `O` (or `G`, or a space) reads
/// as `0`. Hex keys come back unchanged, and so do their fingerprints.
fn legacy_read(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_hexdigit() { c } else { '0' })
        .collect()
}

/// Utils.FixupKeyParity: each byte's low bit set for odd parity.
fn fixup_parity(key: &[u8]) -> Vec<u8> {
    key.iter()
        .map(|b| {
            let high = b & 0xFE;
            if high.count_ones() % 2 == 0 {
                high | 1
            } else {
                high
            }
        })
        .collect()
}

/// Why the cipher's Key setter refuses this key as weak, if it does.
fn cipher_weakness(cipher: &Decryption, key: &[u8]) -> Option<CipherWeakness> {
    match cipher {
        Decryption::TripleDes if matches!(key.len(), 16 | 24) => {
            let k = fixup_parity(key);
            if k[..8] == k[8..16] {
                Some(CipherWeakness::TripleDesK1K2)
            } else if k.len() == 24 && k[8..16] == k[16..] {
                Some(CipherWeakness::TripleDesK2K3)
            } else {
                None
            }
        }
        // The legacy pipeline keys DES with the first 8 bytes.
        Decryption::Des if key.len() >= 8 => {
            let k = u64::from_be_bytes(fixup_parity(&key[..8]).try_into().ok()?);
            const WEAK: [u64; 4] = [
                0x0101010101010101,
                0xfefefefefefefefe,
                0x1f1f1f1f0e0e0e0e,
                0xe0e0e0e0f1f1f1f1,
            ];
            const SEMI_WEAK: [u64; 12] = [
                0x01fe01fe01fe01fe,
                0xfe01fe01fe01fe01,
                0x1fe01fe00ef10ef1,
                0xe01fe01ff10ef10e,
                0x01e001e001f101f1,
                0xe001e001f101f101,
                0x1ffe1ffe0efe0efe,
                0xfe1ffe1ffe0efe0e,
                0x011f011f010e010e,
                0x1f011f010e010e01,
                0xe0fee0fef1fef1fe,
                0xfee0fee0fef1fef1,
            ];
            if WEAK.contains(&k) {
                Some(CipherWeakness::DesWeak)
            } else if SEMI_WEAK.contains(&k) {
                Some(CipherWeakness::DesSemiWeak)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// MachineKeyMasterKeyProvider.GenerateCryptographicKey: hex as a whole,
/// else a comma list of exact flags that holds AutoGenerate.
fn fx45_key(text: &str, purpose: KeyPurpose, via: Pipeline) -> Result<KeyState, KeyFault> {
    if !text.is_empty()
        && text.len().is_multiple_of(2)
        && text.chars().all(|c| c.is_ascii_hexdigit())
    {
        return Ok(KeyState::Explicit {
            key: KeyText::new(text),
            modifiers: Vec::new(),
        });
    }
    let refused = |what| KeyFault::NotKeyOrFlags { purpose, via, what };
    let is_flag = |p: &str| matches!(p, "AutoGenerate" | "IsolateApps" | "IsolateByAppId");
    let parts: Vec<&str> = text.split(',').collect();
    if let [first, rest @ ..] = parts.as_slice()
        && !rest.is_empty()
        && let Some(unknown) = parts.iter().find(|p| !is_flag(p))
    {
        let hex_key = !first.is_empty()
            && first.chars().all(|c| c.is_ascii_hexdigit())
            && rest.iter().all(|p| is_flag(p));
        return Err(refused(if hex_key {
            NotKey::ModifiersOnKey(rest.iter().map(|m| m.to_string()).collect())
        } else {
            NotKey::UnknownModifier(unknown.to_string())
        }));
    }
    if !parts.iter().all(|p| is_flag(p)) || !parts.contains(&"AutoGenerate") {
        return Err(refused(NotKey::Text(
            text.chars().find(|c| !c.is_ascii_hexdigit()),
        )));
    }
    let modifiers = parts
        .into_iter()
        .filter(|p| *p != "AutoGenerate")
        .map(str::to_string)
        .collect();
    Ok(KeyState::AutoGenerate { modifiers })
}

/// `Version.TryParse`: two to four parts, each an Int32 of at least 0
/// (white space and a `+` sign allowed, as Int32 parsing allows).
fn parse_version(text: &str) -> Option<[i64; 4]> {
    let parts: Vec<&str> = text.split('.').collect();
    if !(2..=4).contains(&parts.len()) {
        return None;
    }
    let mut out = [-1i64; 4];
    for (slot, part) in out.iter_mut().zip(&parts) {
        let p = part.trim();
        let p = p.strip_prefix('+').unwrap_or(p);
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let n: i64 = p.parse().ok()?;
        if n > i64::from(i32::MAX) {
            return None;
        }
        *slot = n;
    }
    Some(out)
}

/// Why ASP.NET refuses this `<httpRuntime targetFramework>`, if it does.
pub fn target_framework_refusal(
    target_framework: &Sourced<String>,
    clr: Clr,
) -> Option<TargetFrameworkRefusal> {
    let v = target_framework.value()?;
    if clr == Clr::V2 {
        return Some(TargetFrameworkRefusal::Clr2);
    }
    (!v.is_empty() && parse_version(v).is_none()).then_some(TargetFrameworkRefusal::NotAVersion)
}

/// `4.5`, `4.7.2`, `4.8` are; `4.0`, `2.0` and what is no Version are not.
fn framework_at_least_45(v: &str) -> bool {
    parse_version(v).is_some_and(|parts| parts >= [4, 5, -1, -1])
}

impl MachineKey {
    pub fn validation_key_state(&self) -> KeyState {
        self.key_state(KeyPurpose::Validation)
    }

    pub fn decryption_key_state(&self) -> KeyState {
        self.key_state(KeyPurpose::Decryption)
    }

    /// The validationKey or decryptionKey attribute, with its source.
    pub fn key(&self, purpose: KeyPurpose) -> &Sourced<KeyText> {
        match purpose {
            KeyPurpose::Validation => &self.validation_key,
            KeyPurpose::Decryption => &self.decryption_key,
        }
    }

    /// Whether AspNetCryptoServiceProvider is the default provider
    /// (compatibilityMode Framework45 on CLR 4).
    pub fn framework45(&self) -> bool {
        self.compatibility() == Some(CompatibilityMode::Framework45)
    }

    fn pipelines(&self) -> Pipelines {
        let fx45 = self.framework45();
        Pipelines {
            legacy: !fx45,
            fx45: if fx45 {
                Some(Pipeline::Framework45)
            } else if self.protect_api && self.clr == Clr::V4 {
                Some(Pipeline::ProtectApi)
            } else {
                None
            },
        }
    }

    /// The key as every pipeline that reads it judges it: refused by one,
    /// it is invalid.
    pub fn key_state(&self, purpose: KeyPurpose) -> KeyState {
        match self.judge_key(purpose) {
            Ok(state) => state,
            Err(reason) => KeyState::Invalid { reason },
        }
    }

    fn judge_key(&self, purpose: KeyPurpose) -> Result<KeyState, KeyFault> {
        let Setting::Value(text) = &self.key(purpose).setting else {
            return Ok(KeyState::Encrypted);
        };
        let text = text.expose();
        if text.is_empty() {
            return Err(KeyFault::Empty);
        }
        let p = self.pipelines();
        let mut state = None;
        if p.legacy {
            state = Some(legacy_key(text, purpose)?);
        }
        if let Some(via) = p.fx45 {
            let judged = fx45_key(text, purpose, via)?;
            state.get_or_insert(judged);
        }
        let state = state.expect("some pipeline reads the keys");
        match &state {
            KeyState::Explicit { key, modifiers } => {
                self.size_refusal(purpose, key.hex_len(), p)
                    .map_or(Ok(()), Err)?;
                if purpose == KeyPurpose::Decryption {
                    self.weak_refusal(key, modifiers, p).map_or(Ok(()), Err)?;
                }
            }
            KeyState::AutoGenerate { .. } if purpose == KeyPurpose::Decryption => {
                if let Some(via) = p.fx45
                    && let Some(cipher) = self.cipher_for(via, 32)
                    && !cipher.takes(via, 32)
                {
                    return Err(KeyFault::AutoKeySize { via, cipher });
                }
            }
            _ => {}
        }
        Ok(state)
    }

    /// A key the cipher or the legacy HMAC set-up cannot take.
    fn size_refusal(&self, purpose: KeyPurpose, hex: usize, p: Pipelines) -> Option<KeyFault> {
        let bytes = hex / 2;
        let decryption = self.written_decryption().map(PickedBy::Decryption);
        match purpose {
            KeyPurpose::Validation => {
                let v = self.validation_alg()?;
                let max = legacy_hmac_pad(&v).filter(|_| p.legacy)?;
                (bytes > max).then_some(KeyFault::HmacPads {
                    validation: v,
                    hex,
                    max,
                })
            }
            KeyPurpose::Decryption => {
                let mut checks: Vec<(Pipeline, Decryption, PickedBy)> = Vec::new();
                if p.legacy {
                    checks.extend(
                        self.legacy_ciphers(bytes)
                            .into_iter()
                            .map(|(c, by)| (Pipeline::Legacy, c, by)),
                    );
                }
                if let Some(via) = p.fx45
                    && let Some(c) = self.cipher_for(via, bytes)
                    && let Some(by) = decryption
                {
                    checks.push((via, c, by));
                }
                checks
                    .into_iter()
                    .find(|(via, c, _)| !c.takes(*via, bytes))
                    .map(|(via, cipher, by)| KeyFault::CipherSize {
                        via,
                        cipher,
                        by,
                        hex,
                    })
            }
        }
    }

    /// The ciphers the legacy pipeline keys with the decryptionKey, each
    /// with the attribute that picks it: `decryption`'s, and
    /// ConfigureEncryptionObject keys validation's cipher with the
    /// decryptionKey too (DES for an 8-byte key under `validation="3DES"`).
    fn legacy_ciphers(&self, bytes: usize) -> Vec<(Decryption, PickedBy)> {
        let mut out = Vec::new();
        if let Some(c) = self.cipher_for(Pipeline::Legacy, bytes)
            && let Some(d) = self.written_decryption()
        {
            out.push((c, PickedBy::Decryption(d)));
        }
        let validation = self.validation_alg();
        let cipher = match validation {
            Some(Validation::TripleDes) if bytes == 8 => Some(Decryption::Des),
            Some(Validation::TripleDes) => Some(Decryption::TripleDes),
            Some(Validation::Aes) => Some(Decryption::Aes),
            _ => None,
        };
        if let (Some(c), Some(v)) = (cipher, validation) {
            out.push((c, PickedBy::Validation(v)));
        }
        out
    }

    /// `decryption` as written, when ASP.NET accepts it.
    fn written_decryption(&self) -> Option<Decryption> {
        Decryption::parse(self.accepted(MachineKeyEnum::Decryption)?).ok()
    }

    /// A decryptionKey the legacy pipeline's cipher refuses as weak.
    fn weak_refusal(&self, key: &KeyText, modifiers: &[String], p: Pipelines) -> Option<KeyFault> {
        // A modifier replaces the first bytes with a hash: the key in use
        // is not the one written.
        if !p.legacy || !modifiers.is_empty() {
            return None;
        }
        let bytes = hex::decode(key.expose()).ok()?;
        self.legacy_ciphers(bytes.len())
            .into_iter()
            .find_map(|(cipher, by)| {
                let weakness = cipher_weakness(&cipher, &bytes)?;
                Some(KeyFault::WeakCipherKey {
                    cipher,
                    by,
                    weakness,
                })
            })
    }

    /// The cipher `decryption` picks in a pipeline: `Auto` is AES, but DES
    /// for an 8-byte key in the legacy one; `None` for `alg:` or a refused
    /// value.
    fn cipher_for(&self, via: Pipeline, key_bytes: usize) -> Option<Decryption> {
        let written = self.written_decryption()?;
        if written == Decryption::Auto && via == Pipeline::Legacy && key_bytes == 8 {
            return Some(Decryption::Des);
        }
        Some(written.resolved()).filter(|d| !matches!(d, Decryption::Custom(_)))
    }

    /// The cipher ViewState and forms tickets are encrypted with.
    pub fn cipher(&self) -> Option<Decryption> {
        let p = self.pipelines();
        let via = if p.legacy {
            Pipeline::Legacy
        } else {
            Pipeline::Framework45
        };
        let bytes = match self.decryption_key_state() {
            KeyState::Explicit { key, .. } => key.hex_len() / 2,
            _ => 0,
        };
        self.cipher_for(via, bytes)
    }

    /// Explicit keys ASP.NET takes that fall short of a published
    /// recommendation.
    pub fn weak_keys(&self) -> Vec<WeakKey> {
        let mut out = Vec::new();
        if let KeyState::Explicit { key, .. } = self.validation_key_state()
            && let Some((hmac, hash_hex)) = self.validation_alg().as_ref().and_then(hmac_output)
            && key.hex_len() < hash_hex
        {
            out.push(WeakKey {
                purpose: KeyPurpose::Validation,
                hex: key.hex_len(),
                advice: Recommendation::Rfc2104 { hmac, hash_hex },
            });
        }
        if let KeyState::Explicit { key, .. } = self.decryption_key_state() {
            let advice = match self.cipher() {
                Some(Decryption::TripleDes) if key.hex_len() == 32 => {
                    Some(Recommendation::TwoKeyTripleDes)
                }
                Some(Decryption::Des) => Some(Recommendation::Des),
                _ => None,
            };
            out.extend(advice.map(|advice| WeakKey {
                purpose: KeyPurpose::Decryption,
                hex: key.hex_len(),
                advice,
            }));
        }
        out
    }

    /// The data protector ASP.NET uses instead of the machine keys, and
    /// for what (AspNetCryptoServiceProvider: a non-blank
    /// dataProtectorType).
    pub fn data_protector(&self) -> Option<DataProtectorUse> {
        let type_name = self.data_protector_type.value()?;
        if type_name.trim().is_empty() {
            return None;
        }
        Some(DataProtectorUse {
            type_name: type_name.clone(),
            application_name: self.application_name.value().cloned().unwrap_or_default(),
            at: self.data_protector_type.located(),
            via: self.pipelines().fx45?,
        })
    }

    fn enum_setting(&self, e: MachineKeyEnum) -> &Sourced<String> {
        match e {
            MachineKeyEnum::Validation => &self.validation,
            MachineKeyEnum::Decryption => &self.decryption,
            MachineKeyEnum::CompatibilityMode => &self.compatibility_mode,
        }
    }

    /// A value ASP.NET 4 accepts that ASP.NET 2.0 does not know.
    fn unknown_to_clr2(&self, e: MachineKeyEnum, value: &str) -> bool {
        self.clr == Clr::V2
            && match e {
                MachineKeyEnum::Validation => {
                    Validation::parse(value).is_ok_and(|v| v.is_hmac_sha2())
                }
                MachineKeyEnum::CompatibilityMode => {
                    CompatibilityMode::parse(value) == Ok(CompatibilityMode::Framework45)
                }
                MachineKeyEnum::Decryption => false,
            }
    }

    /// An enum value as ASP.NET accepts it; `None` when refused or unreadable.
    pub fn accepted(&self, e: MachineKeyEnum) -> Option<&str> {
        self.enum_setting(e)
            .value()
            .map(String::as_str)
            .filter(|v| e.accepts(v) && !self.unknown_to_clr2(e, v))
            .map(|v| if e.allows_custom() { v.trim() } else { v })
    }

    /// The enum values ASP.NET refuses (`validation="sha1"`, or `MD5`
    /// under Framework45): each stops the application.
    pub fn invalid_values(&self) -> Vec<InvalidValue> {
        let mut out: Vec<InvalidValue> = MachineKeyEnum::ALL
            .into_iter()
            .filter_map(|e| {
                let s = self.enum_setting(e);
                let value = s.value()?;
                let refusal = if !e.accepts(value) {
                    EnumRefusal::Spelling
                } else if self.unknown_to_clr2(e, value) {
                    EnumRefusal::Clr2
                } else {
                    return None;
                };
                Some(InvalidValue {
                    attribute: e.attribute(),
                    value: s.shown().into_owned(),
                    at: s.located(),
                    refusal,
                })
            })
            .collect();
        if let Some(Decryption::Custom(name)) = self.decryption_alg()
            && (named_in(UNKEYED_HASH_NAMES, &name) || named_in(KEYED_HASH_NAMES, &name))
        {
            out.push(InvalidValue {
                attribute: MachineKeyEnum::Decryption.attribute(),
                value: self.decryption.shown().into_owned(),
                at: self.decryption.located(),
                refusal: EnumRefusal::NotACipher,
            });
        }
        if let Some(Validation::Custom(name)) = self.validation_alg()
            && named_in(UNKEYED_HASH_NAMES, &name)
        {
            out.push(InvalidValue {
                attribute: MachineKeyEnum::Validation.attribute(),
                value: self.validation.shown().into_owned(),
                at: self.validation.located(),
                refusal: EnumRefusal::UnkeyedHash,
            });
        }
        // Every value the 4.5 pipeline protects goes through
        // MachineKeyCryptoAlgorithmFactory, which refuses these.
        if let Some(via) = self.pipelines().fx45
            && let Some(v) = self.accepted(MachineKeyEnum::Validation)
            && self
                .validation_alg()
                .is_some_and(|a| a.refused_under_framework45())
        {
            let mode = &self.compatibility_mode;
            out.push(InvalidValue {
                attribute: MachineKeyEnum::Validation.attribute(),
                value: v.to_string(),
                at: self.validation.located(),
                refusal: match via {
                    Pipeline::ProtectApi => EnumRefusal::ProtectApi,
                    _ => EnumRefusal::Framework45 {
                        mode: match &mode.source {
                            Source::Implied(why) => ModeOrigin::Implied(why.clone()),
                            _ => ModeOrigin::Set { at: mode.located() },
                        },
                    },
                },
            });
        }
        out
    }

    /// The validation algorithm; `None` when ASP.NET refuses the value
    /// (it is then no algorithm at all) or it cannot be read.
    pub fn validation_alg(&self) -> Option<Validation> {
        self.accepted(MachineKeyEnum::Validation)
            .and_then(|v| Some(Validation::parse(v).ok()?.resolved()))
    }

    /// The cipher as ASP.NET picks it: `Auto` is AES, or DES for an 8-byte
    /// key in the legacy pipeline.
    pub fn decryption_alg(&self) -> Option<Decryption> {
        self.cipher().or_else(|| {
            self.accepted(MachineKeyEnum::Decryption)
                .and_then(|v| Some(Decryption::parse(v).ok()?.resolved()))
        })
    }

    /// The compatibilityMode; `None` when refused or unreadable.
    pub fn compatibility(&self) -> Option<CompatibilityMode> {
        self.accepted(MachineKeyEnum::CompatibilityMode)
            .and_then(|v| CompatibilityMode::parse(v).ok())
    }

    pub fn is_encrypted(&self) -> bool {
        matches!(self.validation_key.setting, Setting::Encrypted)
            || matches!(self.decryption_key.setting, Setting::Encrypted)
    }

    /// Whether no file sets any of its values: ASP.NET's defaults.
    pub fn all_default(&self) -> bool {
        [&self.validation_key.source, &self.decryption_key.source]
            .into_iter()
            .chain([
                &self.validation.source,
                &self.decryption.source,
                &self.compatibility_mode.source,
            ])
            .all(|s| matches!(s, Source::Default))
    }

    /// Sets the CLR the pool loads: ASP.NET 2.0 validates with SHA1 by
    /// default.
    pub fn run_on(&mut self, clr: Clr) {
        self.clr = clr;
        if clr == Clr::V2 && matches!(self.validation.source, Source::Default) {
            self.validation = Sourced::default_value(Validation::Sha1.to_string());
        }
    }

    /// Where no file sets compatibilityMode, `<httpRuntime
    /// targetFramework="4.5">` or later implies Framework45 (CLR 4 only).
    pub fn imply_compatibility_mode(&mut self, target_framework: &Sourced<String>) {
        if self.clr == Clr::V4
            && matches!(self.compatibility_mode.source, Source::Default)
            && target_framework
                .value()
                .is_some_and(|v| framework_at_least_45(v))
        {
            self.compatibility_mode = Sourced {
                setting: Setting::Value(CompatibilityMode::Framework45.to_string()),
                source: Source::Implied(Implication::TargetFramework {
                    shown: target_framework.shown().into_owned(),
                    source: Box::new(target_framework.source.clone()),
                }),
                line: None,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn key_states() {
        let mut mk = MachineKey::default();
        assert!(
            matches!(mk.validation_key_state(), KeyState::AutoGenerate { ref modifiers } if modifiers == &["IsolateApps"])
        );
        mk.validation_key.setting = Setting::Value(KeyText::new(format!("{K1},IsolateApps")));
        assert!(
            matches!(mk.validation_key_state(), KeyState::Explicit { ref modifiers, .. } if modifiers.len() == 1)
        );
        mk.compatibility_mode.setting = Setting::Value("Framework45".into());
        let invalid = |state| match state {
            KeyState::Invalid { reason } => reason,
            other => panic!("{other:?}"),
        };
        let fx45 = |what| KeyFault::NotKeyOrFlags {
            purpose: KeyPurpose::Validation,
            via: Pipeline::Framework45,
            what,
        };
        assert_eq!(
            invalid(mk.validation_key_state()),
            fx45(NotKey::ModifiersOnKey(vec!["IsolateApps".into()]))
        );
        mk.validation_key.setting = Setting::Value(KeyText::new("XYZ"));
        assert_eq!(
            invalid(mk.validation_key_state()),
            fx45(NotKey::Text(Some('X')))
        );
        mk.validation_key.setting = Setting::Value(KeyText::new(format!("AutoGenerate,{K1}")));
        let fault = invalid(mk.validation_key_state());
        assert_eq!(fault, fx45(NotKey::UnknownModifier(K1.into())));
        assert!(
            fault.to_string().starts_with(&format!(
                "has an unknown modifier \"[key {}]\"",
                crate::keys::fingerprint(K1)
            )),
            "a key pasted as a modifier shows as its fingerprint: {fault}"
        );
        mk.decryption_key.setting = Setting::Encrypted;
        assert!(matches!(mk.decryption_key_state(), KeyState::Encrypted));
    }

    fn legacy(text: &str, purpose: KeyPurpose) -> Result<&'static str, KeyFault> {
        legacy_key(text, purpose).map(|s| s.name())
    }

    fn fx45(text: &str, purpose: KeyPurpose) -> Result<&'static str, KeyFault> {
        fx45_key(text, purpose, Pipeline::Framework45).map(|s| s.name())
    }

    #[test]
    fn the_legacy_pipeline_strips_modifiers_at_the_end_and_compares_exactly() {
        use KeyPurpose::*;
        assert_eq!(
            legacy("AutoGenerate,IsolateApps,IsolateByAppId", Validation),
            Ok("autogenerate")
        );
        assert!(legacy("AutoGenerate,IsolateByAppId,IsolateApps", Validation).is_err());
        assert!(legacy("IsolateApps,AutoGenerate", Validation).is_err());
        assert!(legacy("autogenerate", Validation).is_err());
        assert!(legacy("AutoGenerate, IsolateApps", Decryption).is_err());
        assert_eq!(
            legacy(&format!("{K1},IsolateApps"), Validation),
            Ok("explicit")
        );
        assert_eq!(
            legacy(&"A".repeat(38), Validation),
            Err(KeyFault::LegacyValidationLength { len: 38 })
        );
        // Its table reads up to 'f'; non-hex characters below are 0.
        assert_eq!(
            legacy(&format!("G{}", &K1[1..]), Validation),
            Ok("explicit")
        );
        assert!(matches!(
            legacy(&format!("g{}", &K1[1..]), Validation),
            Err(KeyFault::LegacyNotHex { bad: Some('g'), .. })
        ));
        assert_eq!(legacy("ABCD", Decryption), Ok("explicit"));
        let misplaced = legacy_key("IsolateApps,AutoGenerate", Validation).unwrap_err();
        assert_eq!(
            misplaced,
            KeyFault::LegacyMisplaced {
                text: "IsolateApps,AutoGenerate".into(),
                thrown: Box::new(KeyFault::LegacyValidationLength { len: 24 }),
            }
        );
        let worded = misplaced.to_string();
        assert!(
            worded.starts_with("is \"IsolateApps,AutoGenerate\", in which")
                && worded.contains("Unable_to_get_cookie_authentication_validation_key"),
            "{worded}"
        );
        let pasted = legacy_key(&format!("AutoGenerate,{K1}"), Decryption)
            .unwrap_err()
            .to_string();
        assert!(!pasted.contains(K1) && pasted.contains("[key "), "{pasted}");
        assert!(legacy("ABC", Decryption).is_err());
    }

    #[test]
    fn the_45_pipeline_takes_hex_or_a_list_of_exact_flags() {
        use KeyPurpose::*;
        assert_eq!(fx45("A1B2", Validation), Ok("explicit"));
        assert_eq!(
            fx45("IsolateApps,AutoGenerate", Decryption),
            Ok("autogenerate")
        );
        assert_eq!(fx45("AutoGenerate", Decryption), Ok("autogenerate"));
        for bad in [
            "IsolateApps",
            "AutoGenerate, IsolateApps",
            "Autogenerate",
            "A1B",
            "G1",
            "",
        ] {
            assert!(fx45(bad, Validation).is_err(), "{bad}");
        }
        assert!(fx45(&format!("{K1},IsolateApps"), Validation).is_err());
    }

    fn with(validation: &str, decryption: &str, vk: &str, dk: &str, mode: &str) -> MachineKey {
        let mut mk = MachineKey::default();
        mk.validation.setting = Setting::Value(validation.into());
        mk.decryption.setting = Setting::Value(decryption.into());
        mk.validation_key.setting = Setting::Value(KeyText::new(vk));
        mk.decryption_key.setting = Setting::Value(KeyText::new(dk));
        mk.compatibility_mode.setting = Setting::Value(mode.into());
        mk
    }

    #[test]
    fn cipher_sizes_follow_the_pipeline() {
        let des8 = "1122334455667788";
        let legacy_auto = with("SHA1", "Auto", K1, des8, "Framework20SP1");
        assert_eq!(legacy_auto.decryption_key_state().name(), "explicit");
        assert_eq!(legacy_auto.cipher(), Some(Decryption::Des));
        let fx45_auto = with("SHA1", "Auto", K1, des8, "Framework45");
        assert_eq!(fx45_auto.decryption_key_state().name(), "invalid");
        assert_eq!(
            with("SHA1", "DES", K1, K1, "Framework20SP2")
                .decryption_key_state()
                .name(),
            "explicit"
        );
        assert_eq!(
            with("SHA1", "DES", K1, K1, "Framework45")
                .decryption_key_state()
                .name(),
            "invalid"
        );
        // validation="3DES" keys TripleDES with the decryptionKey.
        assert_eq!(
            with("3DES", "AES", K1, K1, "Framework20SP1")
                .decryption_key_state()
                .name(),
            "invalid"
        );
        // SetInnerOuterKeys' 64-byte pads for SHA1 in the legacy pipeline.
        let long = K1.repeat(4);
        assert_eq!(
            with("SHA1", "AES", &long, K1, "Framework20SP1")
                .validation_key_state()
                .name(),
            "invalid"
        );
        assert_eq!(
            with("HMACSHA512", "AES", &long, K1, "Framework20SP1")
                .validation_key_state()
                .name(),
            "explicit"
        );
        assert_eq!(
            with("SHA1", "AES", &long, K1, "Framework45")
                .validation_key_state()
                .name(),
            "explicit"
        );
    }

    #[test]
    fn machine_key_protect_adds_the_45_rules_in_legacy_mode() {
        let mut mk = with(
            "HMACSHA256",
            "AES",
            &format!("{K1},IsolateApps"),
            K1,
            "Framework20SP1",
        );
        assert_eq!(mk.validation_key_state().name(), "explicit");
        mk.protect_api = true;
        let KeyState::Invalid { reason } = mk.validation_key_state() else {
            panic!()
        };
        assert!(matches!(
            reason,
            KeyFault::NotKeyOrFlags {
                via: Pipeline::ProtectApi,
                ..
            }
        ));
        assert!(reason.to_string().contains("MachineKey.Protect"));
        let mut md5 = with("MD5", "AES", K1, K1, "Framework20SP1");
        assert!(md5.invalid_values().is_empty());
        md5.protect_api = true;
        assert_eq!(md5.invalid_values()[0].refusal, EnumRefusal::ProtectApi);
    }

    #[test]
    fn weak_keys_name_their_recommendation() {
        let short = with(
            "HMACSHA256",
            "3DES",
            &K1[..40],
            "11223344556677888877665544332211",
            "Framework20SP1",
        );
        let weak = short.weak_keys();
        assert_eq!(weak.len(), 2);
        assert!(weak[0].to_string().contains("RFC 2104"));
        assert!(weak[1].to_string().contains("SP 800-131A"));
        assert!(
            with("HMACSHA256", "AES", K1, K1, "Framework45")
                .weak_keys()
                .is_empty()
        );
    }

    #[test]
    fn clr2_has_its_own_defaults_and_values() {
        let mut mk = MachineKey::default();
        mk.run_on(Clr::V2);
        assert_eq!(mk.validation.value().map(String::as_str), Some("SHA1"));
        let mut hmac = with("HMACSHA256", "AES", K1, K1, "Framework45");
        hmac.clr = Clr::V2;
        let refused: Vec<_> = hmac
            .invalid_values()
            .into_iter()
            .map(|v| v.refusal)
            .collect();
        assert_eq!(refused, vec![EnumRefusal::Clr2, EnumRefusal::Clr2]);
        assert!(!hmac.framework45());
    }

    #[test]
    fn the_legacy_pipeline_refuses_weak_cipher_keys() {
        let vk = "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90";
        let weak = |v: &str, d: &str, dk: &str, mode: &str| match with(v, d, vk, dk, mode)
            .decryption_key_state()
        {
            KeyState::Invalid {
                reason: KeyFault::WeakCipherKey { weakness, by, .. },
            } => Some((weakness, by)),
            _ => None,
        };
        // K1 == K2 (two-key), and equal once parity is fixed (low bits differ).
        let k1k2 = "11223344556677881122334455667788";
        let k1k2_parity = "11223344556677881023324554677689";
        let k2k3 = "0102030405060708112233445566778811223344556677881122334455667788";
        let k2k3 = &k2k3[..48];
        let three = "11223344556677888877665544332211A1B2C3D4E5F60718";
        let sp2 = "Framework20SP2";
        assert_eq!(
            weak("SHA1", "3DES", k1k2, sp2).map(|w| w.0),
            Some(CipherWeakness::TripleDesK1K2)
        );
        assert_eq!(
            weak("SHA1", "3DES", k1k2_parity, sp2).map(|w| w.0),
            Some(CipherWeakness::TripleDesK1K2)
        );
        assert_eq!(
            weak("SHA1", "3DES", k2k3, sp2).map(|w| w.0),
            Some(CipherWeakness::TripleDesK2K3)
        );
        assert_eq!(weak("SHA1", "3DES", three, sp2), None);
        // validation="3DES" keys TripleDES with the decryptionKey too.
        let (w, by) = weak("3DES", "AES", k1k2, sp2).unwrap();
        assert_eq!(w, CipherWeakness::TripleDesK1K2);
        assert_eq!(by, PickedBy::Validation(Validation::TripleDes));
        // DES, and Auto with an 8-byte key (DES), cut to the first 8 bytes.
        assert_eq!(
            weak("SHA1", "DES", "0101010101010101", sp2).map(|w| w.0),
            Some(CipherWeakness::DesWeak)
        );
        assert_eq!(
            weak("SHA1", "Auto", "FEFEFEFEFEFEFEFE", sp2).map(|w| w.0),
            Some(CipherWeakness::DesWeak)
        );
        assert_eq!(
            weak("SHA1", "DES", "01FE01FE01FE01FE", sp2).map(|w| w.0),
            Some(CipherWeakness::DesSemiWeak)
        );
        assert_eq!(weak("SHA1", "DES", "1122334455667788", sp2), None);
        // The 4.5 pipeline keys the cipher with a derived key: no refusal.
        assert!(matches!(
            with("SHA1", "3DES", vk, k1k2, "Framework45").decryption_key_state(),
            KeyState::Explicit { .. }
        ));
        // A modifier replaces the first bytes: not the key written.
        let iso = format!("{k1k2},IsolateApps");
        assert!(matches!(
            with("SHA1", "3DES", vk, &iso, sp2).decryption_key_state(),
            KeyState::Explicit { .. }
        ));
        let said = KeyFault::WeakCipherKey {
            cipher: Decryption::TripleDes,
            by: PickedBy::Decryption(Decryption::TripleDes),
            weakness: CipherWeakness::TripleDesK2K3,
        }
        .to_string();
        assert!(
            said.contains("Cryptography_InvalidKey_Weak") && said.contains("Bad_machine_key"),
            "{said}"
        );
    }

    #[test]
    fn the_legacy_pipeline_reads_non_hex_up_to_f_as_0() {
        let vk = "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90";
        let written = "11223344556677889900AABBCCDDEEFF";
        let with_o = "11223344556677889900AABBCCDDEEFF".replace("00", "O0");
        let legacy = |dk: &str| {
            with("SHA1", "AES", vk, dk, "Framework20SP2")
                .decryption_key_state()
                .fingerprint()
        };
        // 'O', 'G' and ' ' read as 0; the key is the same as ASP.NET reads it.
        assert_eq!(legacy(&with_o), legacy(written));
        assert_eq!(
            legacy(&written.replace("11", "G1")),
            legacy(&written.replace("11", "01"))
        );
        // A real hex key keeps the fingerprint of its text.
        assert_eq!(legacy(written), Some(KeyText::new(written).fingerprint()));
        // The 4.5 pipeline refuses the same text.
        assert!(matches!(
            with("SHA1", "AES", vk, &with_o, "Framework45").decryption_key_state(),
            KeyState::Invalid {
                reason: KeyFault::NotKeyOrFlags { .. }
            }
        ));
    }

    #[test]
    fn key_faults_are_worded_with_what_the_source_throws() {
        let legacy = KeyFault::LegacyValidationLength { len: 38 }.to_string();
        assert!(legacy.starts_with("is 38 characters"), "{legacy}");
        assert!(legacy.contains("Unable_to_get_cookie_authentication_validation_key"));
        let size = KeyFault::CipherSize {
            via: Pipeline::Legacy,
            cipher: Decryption::Aes,
            by: PickedBy::Decryption(Decryption::Aes),
            hex: 40,
        }
        .to_string();
        assert!(
            size.contains("Bad_machine_key") && size.contains("32, 48 or 64"),
            "{size}"
        );
        let not_hex = KeyFault::LegacyNotHex {
            purpose: KeyPurpose::Decryption,
            bad: Some('\u{202e}'),
            len: 32,
        }
        .to_string();
        assert!(not_hex.contains("U+202E") && not_hex.contains("Invalid_decryption_key"));
    }

    #[test]
    fn a_custom_validation_must_be_a_keyed_hash() {
        for (alg, refused) in [
            ("alg:SHA256", true),
            ("alg:md5", true),
            ("alg:System.Security.Cryptography.SHA1Cng", true),
            ("alg:HMACSHA256", false),
            ("alg:MyCompany.Mac", false),
        ] {
            let mk = with(alg, "AES", K1, K1, "Framework20SP1");
            let got: Vec<EnumRefusal> =
                mk.invalid_values().into_iter().map(|v| v.refusal).collect();
            assert_eq!(got == [EnumRefusal::UnkeyedHash], refused, "{alg}: {got:?}");
        }
    }

    #[test]
    fn a_custom_decryption_must_be_a_cipher() {
        for (alg, refused) in [
            ("alg:SHA256", true),
            ("alg:hmacsha256", true),
            ("alg:Rijndael", false),
            ("alg:MyCompany.Cipher", false),
        ] {
            let mk = with("HMACSHA256", alg, K1, K1, "Framework20SP1");
            let got: Vec<EnumRefusal> =
                mk.invalid_values().into_iter().map(|v| v.refusal).collect();
            assert_eq!(got == [EnumRefusal::NotACipher], refused, "{alg}: {got:?}");
        }
    }

    #[test]
    fn target_framework_is_a_version() {
        assert_eq!(parse_version("4.7.2"), Some([4, 7, 2, -1]));
        assert_eq!(parse_version(" 4 . 5 "), Some([4, 5, -1, -1]));
        for bad in ["4", "v4.5", "4.5.", "4.-5", "1.2.3.4.5", ""] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
        assert!(framework_at_least_45("4.5") && framework_at_least_45("4.10"));
        assert!(!framework_at_least_45("4.0") && !framework_at_least_45("v4.8"));
        let tf = |v: &str| Sourced::default_value(v.to_string());
        assert_eq!(
            target_framework_refusal(&tf("v4.5"), Clr::V4),
            Some(TargetFrameworkRefusal::NotAVersion)
        );
        assert_eq!(target_framework_refusal(&tf("4.8"), Clr::V4), None);
        assert_eq!(
            target_framework_refusal(&tf("4.8"), Clr::V2),
            Some(TargetFrameworkRefusal::Clr2)
        );
    }

    #[test]
    fn algorithms_are_read_as_the_runtime_reads_them() {
        let mut mk = MachineKey::default();
        assert_eq!(mk.validation_alg(), Some(Validation::HmacSha256));
        assert_eq!(mk.decryption_alg(), Some(Decryption::Aes), "Auto is AES");
        assert_eq!(mk.compatibility(), Some(CompatibilityMode::Framework20SP1));
        mk.validation.setting = Setting::Value("alg:MyHmac".into());
        mk.decryption.setting = Setting::Value("3DES".into());
        mk.compatibility_mode.setting = Setting::Value("framework45".into());
        assert_eq!(
            mk.validation_alg(),
            Some(Validation::Custom("MYHMAC".into()))
        );
        assert_eq!(mk.decryption_alg(), Some(Decryption::TripleDes));
        assert_eq!(mk.compatibility(), None, "a misspelled mode is no mode");
        mk.validation.setting = Setting::Value("sha1".into());
        assert_eq!(mk.validation_alg(), None);
        assert!(
            Validation::Md5.refused_under_framework45()
                && !Validation::Sha1.refused_under_framework45()
        );
        assert!(Validation::Sha1.is_weak() && !Validation::HmacSha256.is_weak());
    }
}
