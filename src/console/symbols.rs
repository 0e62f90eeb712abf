//! The marks the console draws, in Unicode and in ASCII (`--ascii`).
//! Problems always have a symbol, so they read without colour too.

#[derive(Debug, Clone, Copy)]
pub struct Symbols {
    pub ok: &'static str,
    pub drift: &'static str,
    /// A site not read on every server that may host it.
    pub unverified: &'static str,
    pub error: &'static str,
    pub warning: &'static str,
    pub info: &'static str,
    /// A key on a list of publicly disclosed keys.
    pub disclosed: &'static str,
    pub auto: &'static str,
    pub dpapi: &'static str,
    pub algorithm: &'static str,
    pub encrypted: &'static str,
    pub unreadable: &'static str,
    pub invalid: &'static str,
    pub absent: &'static str,
    pub unreachable: &'static str,
    pub pointer: &'static str,
    pub spinner: &'static [&'static str],
    pub hbar: &'static str,
    pub sep: &'static str,
    pub times: &'static str,
    pub mask: &'static str,
    /// Where a text is cut ([`Ui::truncate`](super::ui::Ui::truncate)).
    pub ellipsis: &'static str,
    pub arrows: &'static str,
    pub updown: &'static str,
    pub leftright: &'static str,
    /// Before, then after.
    pub to: &'static str,
    /// Around a text the operator typed.
    pub quotes: (&'static str, &'static str),
    /// More text above, below.
    pub above: &'static str,
    pub below: &'static str,
    pub border: ratatui::symbols::border::Set<'static>,
}

pub const UNICODE: Symbols = Symbols {
    ok: "✓",
    drift: "≠",
    unverified: "?",
    error: "✗",
    warning: "▲",
    info: "•",
    disclosed: "☠",
    auto: "↻",
    dpapi: "⊘",
    algorithm: "≈",
    encrypted: "▣",
    unreadable: "✗",
    invalid: "!",
    absent: "·",
    unreachable: "✗",
    pointer: "▶",
    spinner: &["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"],
    hbar: "─",
    sep: "│",
    times: "×",
    mask: "•",
    ellipsis: "…",
    arrows: "↑↓←→",
    updown: "↑↓",
    leftright: "←→",
    to: "→",
    quotes: ("“", "”"),
    above: "↑",
    below: "↓",
    border: ratatui::symbols::border::PLAIN,
};

pub const ASCII: Symbols = Symbols {
    ok: "ok",
    drift: "!=",
    unverified: "?",
    error: "X",
    warning: "!",
    info: "i",
    disclosed: "P",
    auto: "~",
    dpapi: "D",
    algorithm: "%",
    encrypted: "#",
    unreadable: "x",
    invalid: "!",
    absent: ".",
    unreachable: "x",
    pointer: ">",
    spinner: &["|", "/", "-", "\\"],
    hbar: "-",
    sep: "|",
    times: "x",
    mask: "*",
    // Not `~` (an auto-generated key), `>` (the pointer) nor `+` (borders,
    // more servers): `$`, as nano marks a line that goes on.
    ellipsis: "$",
    arrows: "arrows",
    updown: "up/down",
    leftright: "left/right",
    to: "->",
    quotes: ("\"", "\""),
    above: "^",
    below: "v",
    border: ratatui::symbols::border::Set {
        top_left: "+",
        top_right: "+",
        bottom_left: "+",
        bottom_right: "+",
        vertical_left: "|",
        vertical_right: "|",
        horizontal_top: "-",
        horizontal_bottom: "-",
    },
};

/// The legend of the cell marks, for help and the footer.
pub fn legend(s: &Symbols) -> Vec<(&'static str, &'static str)> {
    vec![
        (s.disclosed, "publicly disclosed key"),
        (s.auto, "auto-generated key"),
        (s.dpapi, "DPAPI session tokens"),
        (s.algorithm, "algorithm differs"),
        (s.encrypted, "encrypted section"),
        (s.unreadable, "unreadable / unreachable"),
        (s.invalid, "invalid key"),
        (s.absent, "site absent"),
    ]
}
