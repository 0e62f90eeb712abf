//! Enums whose variants have one fixed spelling, written once: in JSON, in
//! files and on screen. [`spelled!`] derives `name()`, `from_name()`,
//! `ALL`, `Display` and serde from a single table, so that no second
//! spelling is kept by hand next to serde's.

/// Declares an enum with one spelling per variant:
///
/// ```text
/// spelled! {
///     #[derive(Debug, Clone, Copy, PartialEq, Eq)]
///     pub enum Action { Push = "push", Rollback = "rollback" }
/// }
/// ```
macro_rules! spelled {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant, in the order declared.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Its spelling, the same everywhere it is written.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The variant spelled exactly `text`.
            pub fn from_name(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(d)?;
                $name::from_name(&text).ok_or_else(|| {
                    <D::Error as ::serde::de::Error>::unknown_variant(&text, &[$($text),+])
                })
            }
        }
    };
}

pub(crate) use spelled;

#[cfg(test)]
mod tests {
    spelled! {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Fruit {
            Apple = "apple",
            BloodOrange = "blood-orange",
        }
    }

    #[test]
    fn one_spelling_serves_names_display_and_serde() {
        assert_eq!(Fruit::BloodOrange.name(), "blood-orange");
        assert_eq!(Fruit::BloodOrange.to_string(), "blood-orange");
        assert_eq!(Fruit::from_name("apple"), Some(Fruit::Apple));
        assert_eq!(Fruit::from_name("Apple"), None);
        assert_eq!(
            serde_json::to_string(&Fruit::ALL).unwrap(),
            r#"["apple","blood-orange"]"#
        );
        let back: Fruit = serde_json::from_str(r#""blood-orange""#).unwrap();
        assert_eq!(back, Fruit::BloodOrange);
        let err = serde_json::from_str::<Fruit>(r#""pear""#).unwrap_err();
        assert!(err.to_string().contains("unknown variant `pear`"), "{err}");
    }
}
