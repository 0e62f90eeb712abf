//! What every screen and dialog draws with: the theme, the symbols, the
//! spinner's tick, the frame's layout, and the small helpers they share.

use super::symbols::Symbols;
use super::theme::{StyleKey, Theme};
use crate::analysis::Severity;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect, Size};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};

pub struct Ui {
    pub theme: Theme,
    pub symbols: Symbols,
    /// Advances every tick, for the spinner.
    pub tick: u64,
}

/// A key and what it does, for the footer and the help.
pub type KeyHelp = (&'static str, &'static str);

impl Ui {
    pub fn style(&self, key: StyleKey) -> Style {
        self.theme.style(key)
    }

    pub fn spinner(&self) -> &'static str {
        let frames = self.symbols.spinner;
        frames[(self.tick as usize) % frames.len()]
    }

    /// Shortest text for a worst severity, for row marks.
    pub fn severity_symbol(&self, s: Option<Severity>) -> &'static str {
        match s {
            Some(Severity::Error) => self.symbols.error,
            Some(Severity::Warning) => self.symbols.warning,
            Some(Severity::Info) => self.symbols.info,
            None => self.symbols.ok,
        }
    }

    pub fn severity_style(&self, s: Severity) -> Style {
        self.style(match s {
            Severity::Error => StyleKey::Danger,
            Severity::Warning => StyleKey::Warning,
            Severity::Info => StyleKey::Info,
        })
    }

    /// At most `width` characters, an ellipsis where cut.
    pub fn truncate(&self, s: &str, width: usize) -> String {
        if s.chars().count() <= width {
            return s.to_string();
        }
        if width == 0 {
            return String::new();
        }
        let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
        out.push_str(self.symbols.ellipsis);
        out
    }

    /// Exactly `width` characters: cut or padded.
    pub fn pad(&self, s: &str, width: usize) -> String {
        let t = self.truncate(s, width);
        let n = t.chars().count();
        format!("{t}{}", " ".repeat(width.saturating_sub(n)))
    }

    /// Keeps the end of a text (a path's file name matters most).
    pub fn truncate_left(&self, s: &str, width: usize) -> String {
        let n = s.chars().count();
        if n <= width {
            return s.to_string();
        }
        let tail: String = s.chars().skip(n - width.saturating_sub(1)).collect();
        format!("{}{tail}", self.symbols.ellipsis)
    }

    /// What a list says when the filter hides all of its rows:
    /// ` No site matches the filter “zzz”.`
    pub fn unmatched(&self, what: &str, filter: &str) -> String {
        let (open, close) = self.symbols.quotes;
        format!(" No {what} matches the filter {open}{filter}{close} (Esc clears it).")
    }

    /// The bordered panel every screen draws in.
    pub fn block<'a>(&self, title: impl Into<Line<'a>>) -> Block<'a> {
        Block::bordered()
            .border_set(self.symbols.border)
            .title(title)
            .border_style(self.style(StyleKey::BorderFocus))
            .title_style(self.style(StyleKey::Title))
    }
}

impl Ui {
    /// Marks a scrolled panel's border: `↑ more` when lines are above,
    /// `↓ 12 more lines` (and `note`) when `below` are.
    pub fn scroll_marks<'a>(
        &self,
        block: Block<'a>,
        above: bool,
        below: usize,
        note: &str,
    ) -> Block<'a> {
        let more = self.style(StyleKey::Warning);
        let mut block = block;
        if above {
            block = block.title_top(
                Line::styled(format!(" {} more ", self.symbols.above), more).right_aligned(),
            );
        }
        if below > 0 {
            let s = if below == 1 { "" } else { "s" };
            block = block.title_bottom(
                Line::styled(
                    format!(" {} {below} more line{s}{note} ", self.symbols.below),
                    more,
                )
                .right_aligned(),
            );
        }
        block
    }

    /// A page of text in a panel, wrapped, scrolled down `scroll` lines;
    /// its frame says what is above and below ([`Ui::more`]), then `note`.
    pub fn page(&self, f: &mut Frame, area: Rect, title: String, lines: Vec<Line>, scroll: u16) {
        self.page_noted(f, area, title, lines, scroll, "");
    }

    /// A [page](Ui::page) whose frame names the keys that scroll it where
    /// the footer has no room for them: `↓ 6 more lines (J/K)`.
    pub fn page_noted(
        &self,
        f: &mut Frame,
        area: Rect,
        title: String,
        lines: Vec<Line>,
        scroll: u16,
        note: &str,
    ) {
        let end = self.page_end(area, lines.clone());
        let at = scroll.min(end);
        let block = self.more(self.block(title), at, end, note);
        f.render_widget(wrapped(lines).scroll((at, 0)).block(block), area);
    }

    /// A frame that marks text out of view: `↑ more` on top when scrolled
    /// down, `↓ N more lines` (then `note`) at the bottom when `at` is
    /// short of `end`. Every panel and dialog that can overflow says so.
    pub fn more<'a>(&self, block: Block<'a>, at: u16, end: u16, note: &str) -> Block<'a> {
        self.scroll_marks(block, at > 0, usize::from(end.saturating_sub(at)), note)
    }

    /// The widths of a table's columns in `width` characters, a space
    /// between each: fixed columns keep their width, the name and text
    /// columns (`Min`, `Fill`) grow with the terminal.
    pub fn columns<const N: usize>(&self, width: u16, cols: [Constraint; N]) -> [usize; N] {
        let rects = Layout::horizontal(cols)
            .spacing(1)
            .split(Rect::new(0, 0, width, 1));
        std::array::from_fn(|i| usize::from(rects[i].width))
    }

    /// How far a [page](Ui::page) of `lines` in `area` scrolls: until its
    /// last line, wrapped as drawn, is on the panel's last row.
    pub fn page_end(&self, area: Rect, lines: Vec<Line>) -> u16 {
        let inner = self.block("").inner(area);
        let rows = wrapped(lines).line_count(inner.width);
        let end = rows.saturating_sub(usize::from(inner.height));
        u16::try_from(end).unwrap_or(u16::MAX)
    }
}

/// Text wrapped word by word, the one way pages and dialogs draw it and
/// count its rows ([`Paragraph::line_count`]).
pub fn wrapped(lines: Vec<Line>) -> Paragraph {
    Paragraph::new(lines).wrap(Wrap { trim: false })
}

/// A `width` x `height` rectangle in the middle of `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width.saturating_sub(2));
    let h = height.min(area.height.saturating_sub(2));
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Below this the console says it is too small instead of drawing.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// Whether the console can be drawn on a terminal of `size`; on a smaller
/// one it says so and takes no key but q and Ctrl-C.
pub fn fits(size: Size) -> bool {
    size.width >= MIN_WIDTH && size.height >= MIN_HEIGHT
}

/// The frame's rows: read-only banner, header, tabs, body, footer.
pub fn areas(area: Rect, read_only: bool) -> [Rect; 5] {
    Layout::vertical([
        Constraint::Length(u16::from(read_only)),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(area)
}

/// Where the screen shown is drawn on a terminal of `size`.
pub fn body(size: Size, read_only: bool) -> Rect {
    areas(Rect::from((Position::ORIGIN, size)), read_only)[3]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::symbols::{ASCII, UNICODE};
    use crate::console::theme::Theme;
    use ratatui::widgets::Borders;

    fn ui(symbols: Symbols) -> Ui {
        Ui {
            theme: Theme::built_in("default", false).unwrap(),
            symbols,
            tick: 0,
        }
    }

    #[test]
    fn a_cut_text_ends_in_the_active_sets_mark() {
        assert_eq!(ui(UNICODE).truncate("web01, web02, web03", 8), "web01, …");
        assert_eq!(ui(ASCII).truncate("web01, web02, web03", 8), "web01, $");
        assert_eq!(ui(ASCII).pad("web01", 8), "web01   ");
        assert_eq!(
            ui(ASCII).truncate_left("C:\\a\\web.config", 11),
            "$web.config"
        );
    }

    #[test]
    fn fixed_columns_keep_their_width_and_the_text_column_takes_the_rest() {
        let cols = |w| {
            ui(UNICODE).columns(
                w,
                [
                    Constraint::Length(8),
                    Constraint::Length(12),
                    Constraint::Fill(1),
                ],
            )
        };
        assert_eq!(cols(58), [8, 12, 36]);
        assert_eq!(cols(118), [8, 12, 96]);
    }

    /// The marks a panel's border gets, as drawn on a 30x3 buffer.
    fn border(at: u16, end: u16) -> String {
        use ratatui::buffer::Buffer;
        use ratatui::widgets::Widget;
        let u = ui(UNICODE);
        let area = Rect::new(0, 0, 30, 3);
        let mut buf = Buffer::empty(area);
        u.more(Block::new().borders(Borders::ALL), at, end, "")
            .render(area, &mut buf);
        (0..3)
            .map(|y| (0..30).map(|x| buf[(x, y)].symbol()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_panel_says_what_is_above_and_below_it() {
        assert!(!border(0, 0).contains("more"));
        let top = border(0, 3);
        assert!(
            top.contains("↓ 3 more lines") && !top.contains("↑"),
            "{top}"
        );
        let middle = border(2, 3);
        assert!(
            middle.contains("↑ more") && middle.contains("↓ 1 more line "),
            "{middle}"
        );
        let end = border(3, 3);
        assert!(end.contains("↑ more") && !end.contains("↓"), "{end}");
    }
}
