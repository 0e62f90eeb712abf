//! The `<machineKey>` as ASP.NET applies it at run time: key text and its
//! modifiers, the algorithm names it accepts (exact spellings), and what
//! compatibilityMode Framework45 (set, or implied by `<httpRuntime
//! targetFramework>`) refuses.

use super::locks::LOCK_ATTRIBUTES;
use super::record::{Setting, Source, Sourced};
use super::xml::{Document, ElemId};
use crate::keys::{KeyProblem, KeyPurpose, KeyText, MachineKeyEnum, mask_key_text};
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
    /// Elements of the chain that ConfigurationElement refuses as it reads
    /// them: the section cannot be read, so the application does not start.
    pub refused: Vec<RefusedElement>,
}

impl Default for MachineKey {
    fn default() -> Self {
        MachineKey {
            validation_key: Sourced::default_value(KeyText::new("AutoGenerate,IsolateApps")),
            decryption_key: Sourced::default_value(KeyText::new("AutoGenerate,IsolateApps")),
            validation: Sourced::default_value("HMACSHA256".into()),
            decryption: Sourced::default_value("Auto".into()),
            compatibility_mode: Sourced::default_value("Framework20SP1".into()),
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

/// Why ASP.NET refuses a key attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFault {
    /// A modifier other than IsolateApps or IsolateByAppId, as written.
    UnknownModifier(String),
    /// The key text does not fit its algorithm.
    Text(KeyProblem),
    /// Modifiers on an explicit key under compatibilityMode Framework45.
    ModifiersUnderFramework45(Vec<String>),
}

impl fmt::Display for KeyFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFault::UnknownModifier(m) => {
                write!(f, "has an unknown modifier {:?}", mask_key_text(m))
            }
            KeyFault::Text(problem) => write!(f, "{problem}"),
            KeyFault::ModifiersUnderFramework45(modifiers) => write!(
                f,
                "carries {} on an explicit key, which compatibilityMode Framework45 rejects",
                modifiers.join(",")
            ),
        }
    }
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
    pub refusal: Refusal,
}

/// Why ASP.NET refuses an enum value of `<machineKey>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a spelling ASP.NET accepts (`sha1`): the converters compare exactly.
    Spelling,
    /// A `validation` that compatibilityMode Framework45 refuses (`MD5`,
    /// `3DES`, `AES`): MachineKeyCryptoAlgorithmFactory knows only SHA1, the
    /// HMACSHA family and `alg:`, and throws Wrong_validation_enum_FX45.
    /// `mode`: where Framework45 comes from (`set in C:\site\web.config
    /// line 4`, `implied by <httpRuntime targetFramework="4.8"> in ...`).
    Framework45 { mode: String },
}

/// A `validation` ASP.NET accepts, as the runtime reads it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Validation {
    Sha1,
    Md5,
    TripleDes,
    Aes,
    HmacSha256,
    HmacSha384,
    HmacSha512,
    /// `alg:NAME`; .NET looks the name up without regard to case
    /// (CryptoConfig), so it is kept upper-cased.
    Custom(String),
}

/// A `decryption` ASP.NET accepts, with `Auto` read as the AES it means.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Decryption {
    Des,
    TripleDes,
    Aes,
    /// `alg:NAME`, upper-cased as for [`Validation::Custom`].
    Custom(String),
}

/// A `compatibilityMode` ASP.NET accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompatibilityMode {
    Framework20SP1,
    Framework20SP2,
    Framework45,
}

/// The name after `alg:` (MachineKeySection takes the rest as it is),
/// upper-cased, if `value` is a custom algorithm.
fn custom(value: &str) -> Option<String> {
    value
        .strip_prefix(crate::keys::CUSTOM_ALGORITHM_PREFIX)
        .map(str::to_ascii_uppercase)
}

impl Validation {
    /// An accepted value (see [`MachineKey::accepted`]).
    fn from_accepted(value: &str) -> Option<Self> {
        Some(match value {
            "SHA1" => Validation::Sha1,
            "MD5" => Validation::Md5,
            "3DES" => Validation::TripleDes,
            "AES" => Validation::Aes,
            "HMACSHA256" => Validation::HmacSha256,
            "HMACSHA384" => Validation::HmacSha384,
            "HMACSHA512" => Validation::HmacSha512,
            other => Validation::Custom(custom(other)?),
        })
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
}

impl Decryption {
    fn from_accepted(value: &str) -> Option<Self> {
        Some(match value {
            "Auto" | "AES" => Decryption::Aes,
            "DES" => Decryption::Des,
            "3DES" => Decryption::TripleDes,
            other => Decryption::Custom(custom(other)?),
        })
    }
}

impl CompatibilityMode {
    fn from_accepted(value: &str) -> Option<Self> {
        Some(match value {
            "Framework20SP1" => CompatibilityMode::Framework20SP1,
            "Framework20SP2" => CompatibilityMode::Framework20SP2,
            "Framework45" => CompatibilityMode::Framework45,
            _ => return None,
        })
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
            Validation::Custom(name) => return write!(f, "alg:{name}"),
        })
    }
}

impl fmt::Display for Decryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Decryption::Des => "DES",
            Decryption::TripleDes => "3DES",
            Decryption::Aes => "AES",
            Decryption::Custom(name) => return write!(f, "alg:{name}"),
        })
    }
}

impl fmt::Display for CompatibilityMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CompatibilityMode::Framework20SP1 => "Framework20SP1",
            CompatibilityMode::Framework20SP2 => "Framework20SP2",
            CompatibilityMode::Framework45 => "Framework45",
        })
    }
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

    pub fn key_state(&self, purpose: KeyPurpose) -> KeyState {
        let key = self.key(purpose);
        let alg = match purpose {
            KeyPurpose::Validation => &self.validation,
            KeyPurpose::Decryption => &self.decryption,
        };
        let Setting::Value(text) = &key.setting else {
            return KeyState::Encrypted;
        };
        let mut parts = text.expose().split(',').map(str::trim);
        let base = parts.next().unwrap_or("");
        let modifiers: Vec<String> = parts.map(str::to_string).collect();
        if let Some(bad) = modifiers.iter().find(|m| {
            !m.eq_ignore_ascii_case("IsolateApps") && !m.eq_ignore_ascii_case("IsolateByAppId")
        }) {
            return KeyState::Invalid {
                reason: KeyFault::UnknownModifier(bad.clone()),
            };
        }
        if base.eq_ignore_ascii_case("AutoGenerate") {
            return KeyState::AutoGenerate { modifiers };
        }
        let key = KeyText::new(base);
        let alg_name = alg.value().map_or("", String::as_str);
        if let Some(problem) = key.problem(purpose, alg_name) {
            return KeyState::Invalid {
                reason: KeyFault::Text(problem),
            };
        }
        if !modifiers.is_empty() && self.compatibility() == Some(CompatibilityMode::Framework45) {
            return KeyState::Invalid {
                reason: KeyFault::ModifiersUnderFramework45(modifiers),
            };
        }
        KeyState::Explicit { key, modifiers }
    }

    fn enum_setting(&self, e: MachineKeyEnum) -> &Sourced<String> {
        match e {
            MachineKeyEnum::Validation => &self.validation,
            MachineKeyEnum::Decryption => &self.decryption,
            MachineKeyEnum::CompatibilityMode => &self.compatibility_mode,
        }
    }

    /// An enum value as ASP.NET accepts it; `None` when refused or unreadable.
    pub fn accepted(&self, e: MachineKeyEnum) -> Option<&str> {
        self.enum_setting(e)
            .value()
            .map(String::as_str)
            .filter(|v| e.accepts(v))
    }

    /// The enum values ASP.NET refuses (`validation="sha1"`, or `MD5`
    /// under Framework45): each stops the application.
    pub fn invalid_values(&self) -> Vec<InvalidValue> {
        let mut out: Vec<InvalidValue> = MachineKeyEnum::ALL
            .into_iter()
            .filter_map(|e| {
                let s = self.enum_setting(e);
                let value = s.value()?;
                (!e.accepts(value)).then(|| InvalidValue {
                    attribute: e.attribute(),
                    value: s.shown().into_owned(),
                    at: s.located(),
                    refusal: Refusal::Spelling,
                })
            })
            .collect();
        // Under Framework45 every protected value (ViewState, forms and
        // session cookies, MachineKey.Protect) goes through
        // AspNetCryptoServiceProvider, whose factory refuses these.
        if self.compatibility() == Some(CompatibilityMode::Framework45)
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
                refusal: Refusal::Framework45 {
                    mode: match &mode.source {
                        Source::Implied(why) => format!("implied by {why}"),
                        _ => format!("set in {}", mode.located()),
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
            .and_then(|v| Validation::from_accepted(v.trim()))
    }

    /// The decryption algorithm, `Auto` read as the AES it means.
    pub fn decryption_alg(&self) -> Option<Decryption> {
        self.accepted(MachineKeyEnum::Decryption)
            .and_then(|v| Decryption::from_accepted(v.trim()))
    }

    /// The compatibilityMode; `None` when refused or unreadable.
    pub fn compatibility(&self) -> Option<CompatibilityMode> {
        self.accepted(MachineKeyEnum::CompatibilityMode)
            .and_then(CompatibilityMode::from_accepted)
    }

    pub fn is_encrypted(&self) -> bool {
        matches!(self.validation_key.setting, Setting::Encrypted)
            || matches!(self.decryption_key.setting, Setting::Encrypted)
    }

    /// Where no file sets compatibilityMode, `<httpRuntime
    /// targetFramework="4.5">` or later implies Framework45.
    pub fn imply_compatibility_mode(&mut self, target_framework: &Sourced<String>) {
        if matches!(self.compatibility_mode.source, Source::Default)
            && target_framework
                .value()
                .is_some_and(|v| framework_at_least_45(v))
        {
            self.compatibility_mode = Sourced {
                setting: Setting::Value("Framework45".into()),
                source: Source::Implied(format!(
                    "<httpRuntime targetFramework=\"{}\"> in {}",
                    target_framework.shown(),
                    target_framework.source
                )),
                line: None,
            };
        }
    }
}

/// `4.5`, `4.7.2`, `4.8` are; `4.0`, `2.0` are not.
fn framework_at_least_45(v: &str) -> bool {
    let mut parts = v.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= (4, 5)
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
        assert_eq!(
            invalid(mk.validation_key_state()),
            KeyFault::ModifiersUnderFramework45(vec!["IsolateApps".into()])
        );
        mk.validation_key.setting = Setting::Value(KeyText::new("XYZ"));
        assert_eq!(
            invalid(mk.validation_key_state()),
            KeyFault::Text(KeyProblem::NonHex('X'))
        );
        mk.validation_key.setting = Setting::Value(KeyText::new(format!("{K1},IsolateAll")));
        assert_eq!(
            invalid(mk.validation_key_state()),
            KeyFault::UnknownModifier("IsolateAll".into())
        );
        mk.decryption_key.setting = Setting::Encrypted;
        assert!(matches!(mk.decryption_key_state(), KeyState::Encrypted));
    }

    #[test]
    fn key_faults_are_worded() {
        let key = "A".repeat(64);
        assert_eq!(
            KeyFault::UnknownModifier(format!("Isolate-{key}")).to_string(),
            format!(
                "has an unknown modifier \"Isolate-[key {}]\"",
                crate::keys::fingerprint(&key)
            ),
            "a key pasted as a modifier shows as its fingerprint"
        );
        assert_eq!(
            KeyFault::Text(KeyProblem::OddLength(3)).to_string(),
            "has an odd number of hex characters (3)"
        );
        assert_eq!(
            KeyFault::ModifiersUnderFramework45(vec![
                "IsolateApps".into(),
                "IsolateByAppId".into()
            ])
            .to_string(),
            "carries IsolateApps,IsolateByAppId on an explicit key, which compatibilityMode Framework45 rejects"
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

    #[test]
    fn algorithm_names_are_spelled_as_asp_net_spells_them() {
        for e in [MachineKeyEnum::Validation, MachineKeyEnum::Decryption] {
            for name in e.accepted() {
                let shown = match e {
                    MachineKeyEnum::Validation => {
                        Validation::from_accepted(name).unwrap().to_string()
                    }
                    _ => Decryption::from_accepted(name).unwrap().to_string(),
                };
                let expected = if *name == "Auto" { "AES" } else { name };
                assert_eq!(shown, expected);
            }
        }
        for name in MachineKeyEnum::CompatibilityMode.accepted() {
            assert_eq!(
                CompatibilityMode::from_accepted(name).unwrap().to_string(),
                *name
            );
        }
        assert_eq!(
            Validation::Custom("MYHMAC".into()).to_string(),
            "alg:MYHMAC"
        );
        assert_eq!(Decryption::Custom("MYAES".into()).to_string(), "alg:MYAES");
    }
}
