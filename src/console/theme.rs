//! Themes: TOML files of semantic style names (`matrix.match`, `selection`,
//! ...). The built-in ones are the files of `themes/`, compiled in.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use toml::Spanned;

crate::spelled::spelled! {
    /// Every semantic key a theme defines, spelled as in the theme files:
    /// code names a style by this enum, so that a typo does not compile.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum StyleKey {
        Text = "text",
        TextDim = "text.dim",
        Title = "title",
        Header = "header",
        Border = "border",
        BorderFocus = "border.focus",
        Selection = "selection",
        Footer = "footer",
        FooterKey = "footer.key",
        BannerReadonly = "banner.readonly",
        MatrixMatch = "matrix.match",
        MatrixMismatch = "matrix.mismatch",
        MatrixMismatchAlt = "matrix.mismatch.alt",
        MatrixMissing = "matrix.missing",
        MatrixPending = "matrix.pending",
        MatrixProblem = "matrix.problem",
        SiteDrift = "site.drift",
        SiteOk = "site.ok",
        StateOk = "state.ok",
        StateError = "state.error",
        StateBusy = "state.busy",
        Danger = "danger",
        Warning = "warning",
        Info = "info",
        Dialog = "dialog",
        DialogTitle = "dialog.title",
        Button = "button",
        ButtonFocus = "button.focus",
        LogError = "log.error",
        LogWarn = "log.warn",
        LogInfo = "log.info",
        Reveal = "reveal",
    }
}

const COUNT: usize = StyleKey::ALL.len();

/// The themes shipped in `themes/`.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("mono", include_str!("../../themes/mono.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("nord", include_str!("../../themes/nord.toml")),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThemeError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ThemeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "theme {}:{l}: {}", self.file, self.message),
            None => write!(f, "theme {}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ThemeError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTheme {
    name: Option<String>,
    inherits: Option<Spanned<String>>,
    #[serde(default)]
    styles: BTreeMap<Spanned<String>, Spanned<RawStyle>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStyle {
    fg: Option<String>,
    bg: Option<String>,
    fg256: Option<u8>,
    bg256: Option<u8>,
    bold: Option<bool>,
    dim: Option<bool>,
    italic: Option<bool>,
    underline: Option<bool>,
    reversed: Option<bool>,
}

/// Whether the terminal shows 24-bit colour (`COLORTERM`).
pub fn truecolor_from_env() -> bool {
    std::env::var("COLORTERM").is_ok_and(|v| v == "truecolor" || v == "24bit")
}

#[derive(Debug, Clone)]
pub struct Theme {
    pub name: String,
    /// Indexed by [`StyleKey`]; `None` where the theme does not set it.
    styles: [Option<Style>; COUNT],
}

/// A style key a theme leaves undefined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("key `{0}` is not defined")]
pub struct Undefined(pub StyleKey);

impl Theme {
    pub fn style(&self, key: StyleKey) -> Style {
        self.styles[key as usize].unwrap_or_default()
    }

    /// Every key is set (theme files must define all of them); else the
    /// first that is not.
    pub fn defines_all(&self) -> Result<(), Undefined> {
        match StyleKey::ALL
            .iter()
            .find(|k| self.styles[**k as usize].is_none())
        {
            Some(k) => Err(Undefined(*k)),
            None => Ok(()),
        }
    }

    pub fn built_in(name: &str, truecolor: bool) -> Option<Theme> {
        let (_, text) = BUILT_IN.iter().find(|(n, _)| *n == name)?;
        Some(
            parse(&format!("{name} (built in)"), text, false, truecolor)
                .expect("built-in themes are valid"),
        )
    }

    /// `--theme NAME|PATH`; `None` gives the default, or `mono` under NO_COLOR.
    pub fn select(
        choice: Option<&str>,
        no_color: bool,
        truecolor: bool,
    ) -> Result<Theme, ThemeError> {
        match choice {
            None if no_color => Ok(Theme::built_in("mono", truecolor).expect("mono exists")),
            None => Ok(Theme::built_in("default", truecolor).expect("default exists")),
            Some(name) => match Theme::built_in(name, truecolor) {
                Some(t) => Ok(t),
                None => Theme::load(Path::new(name), truecolor),
            },
        }
    }

    /// A user theme: the keys it sets over those of the theme it inherits.
    pub fn load(path: &Path, truecolor: bool) -> Result<Theme, ThemeError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ThemeError {
            file: file.clone(),
            line: None,
            message: if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "no such file, and not a built-in theme ({})",
                    BUILT_IN
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                e.to_string()
            },
        })?;
        parse(&file, &text, true, truecolor)
    }
}

/// Parses theme text; a `user` theme without `inherits` starts from `default`.
fn parse(file: &str, text: &str, user: bool, truecolor: bool) -> Result<Theme, ThemeError> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let err = |offset: Option<usize>, message: String| ThemeError {
        file: file.to_string(),
        line: offset.map(line_of),
        message,
    };
    let raw: RawTheme = toml::from_str(text)
        .map_err(|e| err(e.span().map(|s| s.start), e.message().to_string()))?;
    let mut styles: [Option<Style>; COUNT] = [None; COUNT];
    if let Some(base) = &raw.inherits {
        let parent = Theme::built_in(base.get_ref(), truecolor).ok_or_else(|| {
            err(
                Some(base.span().start),
                format!("key `inherits`: no built-in theme {:?}", base.get_ref()),
            )
        })?;
        styles = parent.styles;
    } else if user {
        styles = Theme::built_in("default", truecolor)
            .expect("default exists")
            .styles;
    }
    for (key, value) in raw.styles {
        let at = key.span().start;
        let Some(known) = StyleKey::from_name(key.get_ref()) else {
            return Err(err(
                Some(at),
                format!("key `{}` is not a theme key", key.get_ref()),
            ));
        };
        let style_at = value.span().start;
        let s = value.into_inner();
        let color = |name: &Option<String>,
                     fallback: Option<u8>,
                     which: &str|
         -> Result<Option<Color>, ThemeError> {
            let Some(n) = name else {
                return Ok(fallback.map(Color::Indexed));
            };
            let c: Color = n.parse().map_err(|_| {
                err(
                    Some(style_at),
                    format!(
                        "key `{known}`: {which} {n:?} is not a colour (a name, 0-255, or #rrggbb)"
                    ),
                )
            })?;
            Ok(Some(match (c, truecolor, fallback) {
                (Color::Rgb(..), false, Some(i)) => Color::Indexed(i),
                _ => c,
            }))
        };
        let mut style = Style::default();
        if let Some(c) = color(&s.fg, s.fg256, "fg")? {
            style = style.fg(c);
        }
        if let Some(c) = color(&s.bg, s.bg256, "bg")? {
            style = style.bg(c);
        }
        for (on, m) in [
            (s.bold, Modifier::BOLD),
            (s.dim, Modifier::DIM),
            (s.italic, Modifier::ITALIC),
            (s.underline, Modifier::UNDERLINED),
            (s.reversed, Modifier::REVERSED),
        ] {
            if on == Some(true) {
                style = style.add_modifier(m);
            }
        }
        styles[known as usize] = Some(style);
    }
    Ok(Theme {
        name: raw.name.unwrap_or_else(|| file.to_string()),
        styles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_theme_defines_every_key() {
        for (name, _) in BUILT_IN {
            for truecolor in [false, true] {
                let t = Theme::built_in(name, truecolor).unwrap();
                t.defines_all().unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }

    #[test]
    fn a_theme_missing_a_key_names_the_first() {
        let mut t = Theme::built_in("default", false).unwrap();
        let k = StyleKey::ALL[1];
        t.styles[k as usize] = None;
        assert_eq!(t.defines_all(), Err(Undefined(k)));
        assert_eq!(
            Undefined(StyleKey::Selection).to_string(),
            "key `selection` is not defined"
        );
    }

    #[test]
    fn the_default_theme_uses_the_16_ansi_colours_only() {
        let t = Theme::built_in("default", true).unwrap();
        for &k in StyleKey::ALL {
            let s = t.style(k);
            for c in [s.fg, s.bg].into_iter().flatten() {
                assert!(
                    !matches!(c, Color::Rgb(..) | Color::Indexed(_)),
                    "{k}: {c:?}"
                );
            }
        }
        let mono = Theme::built_in("mono", true).unwrap();
        assert!(
            StyleKey::ALL
                .iter()
                .all(|&k| mono.style(k).fg.is_none() && mono.style(k).bg.is_none())
        );
    }

    #[test]
    fn truecolor_themes_fall_back_to_256_colours() {
        let t = Theme::built_in("nord", false).unwrap();
        assert_eq!(t.style(StyleKey::MatrixMatch).fg, Some(Color::Indexed(144)));
        let t = Theme::built_in("nord", true).unwrap();
        assert_eq!(
            t.style(StyleKey::MatrixMatch).fg,
            Some(Color::Rgb(0xa3, 0xbe, 0x8c))
        );
    }

    #[test]
    fn a_user_theme_overrides_only_the_keys_it_sets() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/themes/user-override.toml");
        let user = Theme::load(&path, false).unwrap();
        let light = Theme::built_in("light", false).unwrap();
        assert_eq!(user.style(StyleKey::Selection).fg, Some(Color::Red));
        for &k in StyleKey::ALL.iter().filter(|&&k| k != StyleKey::Selection) {
            assert_eq!(user.style(k), light.style(k), "{k}");
        }
        user.defines_all().unwrap();
    }

    #[test]
    fn no_color_selects_mono_and_explicit_choices_win() {
        assert_eq!(Theme::select(None, true, false).unwrap().name, "mono");
        assert_eq!(Theme::select(None, false, false).unwrap().name, "default");
        assert_eq!(
            Theme::select(Some("light"), true, false).unwrap().name,
            "light"
        );
        let e = Theme::select(Some("/nonexistent/theme.toml"), false, false).unwrap_err();
        assert!(e.to_string().contains("not a built-in theme"), "{e}");
    }
}
