//! The help (`?`, F1): every key of every screen from the key table, and
//! every mark in the active symbols. It scrolls, and closes only on Esc,
//! q, ? or F1, so that a key pressed to read on does not close it.

use super::keys;
use super::screens::{Nav, Scroll};
use super::theme::StyleKey;
use super::ui::{Ui, centered, wrapped};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear};

#[derive(Debug, Default)]
pub struct Help {
    scroll: Scroll,
}

/// What the help shows besides the table: the state of the `a` toggle.
pub struct HelpState {
    pub read_only: bool,
    pub all_sites: bool,
}

/// Whether `key` closes the help.
pub fn closes(key: &KeyEvent) -> bool {
    matches!(
        key.code,
        KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?') | KeyCode::F(1)
    )
}

impl Help {
    /// A key while the help is shown: `false` when it closes it.
    pub fn on_key(&mut self, key: &KeyEvent) -> bool {
        if closes(key) {
            return false;
        }
        if let Some(nav) = Nav::of(key) {
            self.scroll.step(nav);
        }
        true
    }

    /// The lines scrolled past.
    pub fn at(&self) -> u16 {
        self.scroll.at()
    }

    /// Fits the scroll to the help as drawn on a frame of `area`.
    pub fn fit(&mut self, area: Rect, ui: &Ui, state: &HelpState) {
        let inner = block(ui).inner(panel(area));
        let rows = wrapped(lines(ui, state, inner.width)).line_count(inner.width);
        let end = rows.saturating_sub(usize::from(inner.height));
        self.scroll.fit(u16::try_from(end).unwrap_or(u16::MAX));
    }

    pub fn draw(&self, f: &mut Frame, area: Rect, ui: &Ui, state: &HelpState) {
        let r = panel(area);
        let inner = block(ui).inner(r);
        let lines = lines(ui, state, inner.width);
        let rows = wrapped(lines.clone()).line_count(inner.width);
        let at = self.scroll.at();
        let below = rows.saturating_sub(usize::from(inner.height) + usize::from(at));
        let outer = ui.scroll_marks(block(ui), at > 0, below, "");
        f.render_widget(Clear, r);
        f.render_widget(outer, r);
        f.render_widget(
            wrapped(lines)
                .style(ui.style(StyleKey::Dialog))
                .scroll((at, 0)),
            inner,
        );
    }
}

fn panel(area: Rect) -> Rect {
    centered(area, 100, area.height.saturating_sub(2))
}

fn block(ui: &Ui) -> Block<'static> {
    Block::bordered()
        .border_set(ui.symbols.border)
        .title(" Help: Esc, q or ? closes ")
        .title_style(ui.style(StyleKey::DialogTitle))
        .border_style(ui.style(StyleKey::BorderFocus))
        .style(ui.style(StyleKey::Dialog))
}

/// Where a key's description starts.
const WHAT_AT: usize = 16;

/// `text` in lines of at most `width` characters, cut between words.
fn words_in(text: &str, width: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let n = line.chars().count();
        if n > 0 && n + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push(line);
    out
}

/// The help's text for a panel `width` wide: the keys by where they act
/// (a description's following lines under its first), then the marks.
fn lines(ui: &Ui, state: &HelpState, width: u16) -> Vec<Line<'static>> {
    let room = usize::from(width).saturating_sub(WHAT_AT).max(20);
    let mut out = Vec::new();
    for (place, docs) in keys::groups(state.read_only) {
        out.push(Line::styled(format!(" {place}"), ui.style(StyleKey::Title)));
        for doc in docs {
            let mut what = doc.what.to_string();
            if doc.keys == ["a"] {
                what = format!(
                    "{what}; now: {}",
                    if state.all_sites {
                        "every IIS application"
                    } else {
                        "Cora sites only"
                    }
                );
            }
            let keys = format!("  {:<13} ", doc.keys_text(&ui.symbols));
            // Keys too long for their column take a line of their own.
            let mut key = Some(keys.clone());
            if keys.chars().count() > WHAT_AT {
                out.push(Line::styled(keys, ui.style(StyleKey::FooterKey)));
                key = None;
            }
            for text in words_in(&what, room) {
                let lead = key.take().unwrap_or_else(|| " ".repeat(WHAT_AT));
                out.push(Line::from(vec![
                    Span::styled(lead, ui.style(StyleKey::FooterKey)),
                    Span::styled(text, ui.style(StyleKey::Text)),
                ]));
            }
        }
    }
    if state.read_only {
        out.push(Line::styled(
            "  (--read-only: push and roll back are not offered)",
            ui.style(StyleKey::TextDim),
        ));
    }
    out.push(Line::raw(""));
    out.push(Line::styled(" Marks", ui.style(StyleKey::Title)));
    for (mark, what) in keys::marks(&ui.symbols) {
        out.push(Line::from(vec![
            Span::styled(format!("  {mark:<3}"), ui.style(StyleKey::MatrixProblem)),
            Span::styled(what, ui.style(StyleKey::Text)),
        ]));
    }
    out.push(Line::styled(
        "  A, B, C  key set: same letter, same keys",
        ui.style(StyleKey::Text),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::words_in;

    #[test]
    fn descriptions_are_cut_between_words() {
        assert_eq!(
            words_in("rescan the selected server now", 12),
            ["rescan the", "selected", "server now"]
        );
        // A word longer than the line stands alone, whole.
        assert_eq!(words_in("a verylongword b", 5), ["a", "verylongword", "b"]);
        assert_eq!(words_in("", 5), [""]);
    }
}
