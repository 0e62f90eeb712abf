//! Property tests of the editor on generated web.config documents.

mod support;

use farmkey::bytes::FileBytes;
use farmkey::config::editor::{EditRequest, SectionFile, edit, edit_section_file};
use farmkey::config::xml::{Document, TextEncoding};
use farmkey::keys::{KeySet, KeyText};
use proptest::prelude::*;

// Names .NET loads: a partial one makes the handler invalid.
const SESSION: &str = farmkey::config::wif::elements::SESSION_HANDLER_TYPE;
const MACHINE: &str = farmkey::config::wif::elements::MACHINE_KEY_HANDLER_TYPE;

#[derive(Debug, Clone)]
enum Node {
    Elem {
        name: &'static str,
        attrs: Vec<(&'static str, String)>,
        quote: char,
        children: Vec<Node>,
        self_close: bool,
    },
    Comment(String),
}

fn elem(name: &'static str, attrs: Vec<(&'static str, String)>, children: Vec<Node>) -> Node {
    Node::Elem {
        name,
        attrs,
        quote: '"',
        children,
        self_close: false,
    }
}

fn machine_key() -> impl Strategy<Value = Node> {
    (
        proptest::option::of("AutoGenerate(,IsolateApps)?|[0-9A-F]{40,128}"),
        proptest::option::of("SHA1|HMACSHA256|AES"),
        proptest::bool::ANY,
        prop::sample::select(vec!['"', '\'']),
    )
        .prop_map(|(key, alg, before, quote)| {
            let mut attrs = Vec::new();
            if before {
                attrs.push(("applicationName", "x&amp;y".to_string()));
            }
            if let Some(k) = key {
                attrs.push(("validationKey", k));
            }
            if let Some(a) = alg {
                attrs.push(("validation", a));
            }
            Node::Elem {
                name: "machineKey",
                attrs,
                quote,
                children: vec![],
                self_close: true,
            }
        })
}

fn system_web() -> impl Strategy<Value = Node> {
    (
        proptest::option::of(machine_key()),
        proptest::bool::ANY,
        proptest::bool::ANY,
    )
        .prop_map(|(mk, compilation, empty)| {
            let mut children = Vec::new();
            if compilation {
                children.push(Node::Elem {
                    name: "compilation",
                    attrs: vec![("debug", "false".into())],
                    quote: '"',
                    children: vec![],
                    self_close: true,
                });
            }
            children.extend(mk);
            Node::Elem {
                name: "system.web",
                attrs: vec![],
                quote: '"',
                self_close: empty && children.is_empty(),
                children,
            }
        })
}

fn handlers() -> impl Strategy<Value = Node> {
    prop::collection::vec(0..4u8, 0..4).prop_map(|ops| {
        let children = ops
            .into_iter()
            .map(|op| match op {
                0 => Node::Elem {
                    name: "clear",
                    attrs: vec![],
                    quote: '"',
                    children: vec![],
                    self_close: true,
                },
                1 => Node::Elem {
                    name: "remove",
                    attrs: vec![("type", SESSION.into())],
                    quote: '"',
                    children: vec![],
                    self_close: true,
                },
                2 => Node::Elem {
                    name: "add",
                    attrs: vec![("type", MACHINE.into())],
                    quote: '"',
                    children: vec![],
                    self_close: true,
                },
                _ => Node::Comment(" handlers ".into()),
            })
            .collect();
        elem("securityTokenHandlers", vec![], children)
    })
}

fn identity_model() -> impl Strategy<Value = Node> {
    (proptest::option::of(handlers()), proptest::bool::ANY).prop_map(|(h, audience)| {
        let mut children = Vec::new();
        if audience {
            children.push(elem("audienceUris", vec![], vec![]));
        }
        children.extend(h);
        elem(
            "system.identityModel",
            vec![],
            vec![elem("identityConfiguration", vec![], children)],
        )
    })
}

fn document() -> impl Strategy<Value = Node> {
    (
        proptest::bool::ANY,
        proptest::option::of(system_web()),
        proptest::option::of(system_web()),
        proptest::option::of(identity_model()),
        proptest::bool::ANY,
    )
        .prop_map(|(sections, web, mut wrapped, identity, comment)| {
            // ASP.NET refuses any section set twice at the file's own level
            // (<location path="."> is that level too; the editor's tests
            // cover that refusal): the wrapper keeps only the others.
            if let (Some(Node::Elem { children: own, .. }), Some(Node::Elem { children, .. })) =
                (&web, &mut wrapped)
            {
                let names: Vec<&str> = own
                    .iter()
                    .filter_map(|c| match c {
                        Node::Elem { name, .. } => Some(*name),
                        Node::Comment(_) => None,
                    })
                    .collect();
                children.retain(|c| !matches!(c, Node::Elem { name, .. } if names.contains(name)));
            }
            let mut children = Vec::new();
            if sections {
                children.push(elem(
                    "configSections",
                    vec![],
                    vec![Node::Elem {
                        name: "section",
                        attrs: vec![
                            ("name", "system.identityModel".into()),
                            ("type", "T".into()),
                        ],
                        quote: '"',
                        children: vec![],
                        self_close: true,
                    }],
                ));
            }
            if comment {
                children.push(Node::Comment(
                    " <machineKey validationKey='not me'/> ".into(),
                ));
            }
            children.push(elem("appSettings", vec![], vec![]));
            children.extend(web);
            if let Some(w) = wrapped {
                children.push(elem(
                    "location",
                    vec![
                        ("path", ".".into()),
                        ("inheritInChildApplications", "false".into()),
                    ],
                    vec![w],
                ));
            }
            children.extend(identity);
            elem("configuration", vec![], children)
        })
}

fn render(node: &Node, depth: usize, unit: &str, nl: &str, out: &mut String) {
    let indent = unit.repeat(depth);
    match node {
        Node::Comment(text) => out.push_str(&format!("{indent}<!--{text}-->{nl}")),
        Node::Elem {
            name,
            attrs,
            quote,
            children,
            self_close,
        } => {
            let attrs: String = attrs
                .iter()
                .map(|(k, v)| format!(" {k}={quote}{v}{quote}"))
                .collect();
            if *self_close || children.is_empty() && name.len() % 2 == 0 {
                out.push_str(&format!("{indent}<{name}{attrs} />{nl}"));
            } else if children.is_empty() {
                out.push_str(&format!("{indent}<{name}{attrs}></{name}>{nl}"));
            } else {
                out.push_str(&format!("{indent}<{name}{attrs}>{nl}"));
                for c in children {
                    render(c, depth + 1, unit, nl, out);
                }
                out.push_str(&format!("{indent}</{name}>{nl}"));
            }
        }
    }
}

fn file() -> impl Strategy<Value = Vec<u8>> {
    (
        document(),
        proptest::bool::ANY,
        proptest::bool::ANY,
        prop::sample::select(vec!["  ", "    ", "\t"]),
        proptest::bool::ANY,
    )
        .prop_map(|(doc, bom, crlf, unit, decl)| {
            let nl = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            if decl {
                text.push_str(&format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>{nl}"));
            }
            render(&doc, 0, unit, nl, &mut text);
            let mut bytes = if bom {
                b"\xEF\xBB\xBF".to_vec()
            } else {
                Vec::new()
            };
            bytes.extend_from_slice(text.as_bytes());
            bytes
        })
}

fn keys() -> KeySet {
    KeySet {
        validation_key: KeyText::new("C0FFEE".repeat(20)),
        decryption_key: KeyText::new("BEEF".repeat(16)),
        validation: farmkey::keys::Validation::HmacSha256,
        decryption: farmkey::keys::Decryption::Aes,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn edits_generated_documents_in_place(bytes in file(), declared_above in proptest::bool::ANY) {
        let req = EditRequest {
            machine_key: Some(keys()),
            handler_swap: true,
            identity_section_declared_above: declared_above,
            ..Default::default()
        };
        let original = FileBytes::new(bytes.clone());
        let out = edit(&original, &req).map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&bytes))))?;
        let (a, b) = (String::from_utf8(bytes.clone()).unwrap(), String::from_utf8(out.bytes.to_vec()).unwrap());
        support::edit_confined(&bytes, &out.bytes).map_err(|e| TestCaseError::fail(format!("{e}\n--- before\n{a}\n--- after\n{b}")))?;
        prop_assert_eq!(out.bytes.starts_with(b"\xEF\xBB\xBF"), bytes.starts_with(b"\xEF\xBB\xBF"));
        if a.contains("\r\n") {
            prop_assert!(!b.replace("\r\n", "").contains('\n'), "new lines must follow CRLF:\n{}", b);
        } else {
            prop_assert!(!b.contains('\r'));
        }
        let again = edit(&out.bytes, &req).unwrap();
        prop_assert!(!again.changed, "a second edit changed:\n{}", b);
        prop_assert!(!b.contains("not me") || a.contains("not me"));
    }

    /// A UTF-16 file gets the same edit as its UTF-8 text, encoded back in
    /// its own byte order and byte order mark.
    #[test]
    fn utf16_documents_get_the_edit_of_their_text(bytes in file(), big_endian in proptest::bool::ANY, bom in proptest::bool::ANY) {
        let text = String::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(&bytes).to_vec()).unwrap();
        let declared_16 = |t: &str| t.replace("encoding=\"utf-8\"", "encoding=\"utf-16\"");
        let encoding = TextEncoding::Utf16 { big_endian, bom };
        let req = EditRequest { machine_key: Some(keys()), handler_swap: true, ..Default::default() };
        let utf8 = edit(&FileBytes::new(text.clone().into_bytes()), &req).unwrap();
        let utf16 = edit(&FileBytes::new(encoding.encode(declared_16(&text).as_bytes())), &req)
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let want = declared_16(std::str::from_utf8(&utf8.bytes).unwrap());
        prop_assert_eq!(&utf16.bytes[..], &encoding.encode(want.as_bytes())[..]);
        prop_assert!(!edit(&utf16.bytes, &req).unwrap().changed);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let req = EditRequest { machine_key: Some(keys()), handler_swap: true, ..Default::default() };
        let _ = edit(&FileBytes::new(bytes.clone()), &req);
        for section in [SectionFile::MachineKey, SectionFile::IdentityModel { in_use: String::new() }] {
            let _ = edit_section_file(&FileBytes::new(bytes.clone()), &section, &req);
        }
    }

    #[test]
    fn mangled_documents_never_panic(bytes in file(), cut in 0usize..2000, junk in "[<>/=\"' a-z&;!-]{0,12}") {
        let mut b = bytes;
        let at = cut.min(b.len());
        b.splice(at..at, junk.into_bytes());
        let req = EditRequest { machine_key: Some(keys()), handler_swap: true, ..Default::default() };
        if let Ok(out) = edit(&FileBytes::new(b), &req) {
            prop_assert!(Document::parse(out.bytes).is_ok());
        }
    }
}
