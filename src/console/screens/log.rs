//! Log (`4`): what the session did, newest at the bottom; the filter keeps
//! the lines that mention it.

use super::{Nav, Reply, Screen};
use crate::console::model::{Data, Level};
use crate::console::theme::StyleKey;
use crate::console::ui::{KeyHelp, Ui};
use ratatui::Frame;
use ratatui::crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

#[derive(Default)]
pub struct Log {
    /// The lines shown: indices into the log.
    rows: Vec<usize>,
    /// How many rows up from the newest the view is scrolled.
    offset: usize,
}

/// `11:20:45` of a time.
fn time_of(at: std::time::SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(at).to_string();
    text.get(11..19).unwrap_or("").to_string()
}

impl Log {
    /// The rows shown in `height` rows, oldest first.
    fn shown(&self, height: usize) -> &[usize] {
        let end = self.rows.len().saturating_sub(self.offset);
        &self.rows[end.saturating_sub(height)..end]
    }
}

impl Screen for Log {
    fn refresh(&mut self, data: &Data) {
        self.rows = (0..data.log.len())
            .filter(|&i| data.filter.matches(&data.log[i].text))
            .collect();
        self.offset = self.offset.min(self.rows.len().saturating_sub(1));
    }

    fn on_key(&mut self, key: &KeyEvent, _data: &Data) -> Reply {
        let Some(nav) = Nav::of(key) else {
            return Reply::Unhandled;
        };
        // The offset counts up from the newest row, the newest being last;
        // the view moves its last row (`fit` keeps the first page full).
        let last = self.rows.len().saturating_sub(1);
        let at = nav.step(last.saturating_sub(self.offset), self.rows.len());
        self.offset = last - at;
        Reply::Done
    }

    /// At most scrolled so far up that the oldest row is on the first
    /// row: `g` shows a whole page, not the oldest row alone.
    fn fit(&mut self, area: Rect, _data: &Data, ui: &Ui) {
        let height = usize::from(ui.block("").inner(area).height);
        self.offset = self.offset.min(self.rows.len().saturating_sub(height));
    }

    fn keys(&self, ui: &Ui) -> Vec<KeyHelp> {
        vec![(ui.symbols.updown, "scroll"), ("G", "newest")]
    }

    fn draw(&self, f: &mut Frame, area: Rect, data: &Data, ui: &Ui) {
        let outer = ui.block(" Log ");
        let inner = outer.inner(area);
        f.render_widget(outer, area);
        let mut lines: Vec<Line> = self
            .shown(usize::from(inner.height))
            .iter()
            .filter_map(|&i| data.log.get(i))
            .map(|e| {
                let style = ui.style(match e.level {
                    Level::Info => StyleKey::LogInfo,
                    Level::Warn => StyleKey::LogWarn,
                    Level::Error => StyleKey::LogError,
                });
                Line::from(vec![
                    Span::styled(format!(" {} ", time_of(e.at)), ui.style(StyleKey::TextDim)),
                    Span::styled(e.text.clone(), style),
                ])
            })
            .collect();
        if self.rows.is_empty() && !data.log.is_empty() {
            lines.push(Line::styled(
                ui.unmatched("log line", data.filter.text()),
                ui.style(StyleKey::TextDim),
            ));
        }
        f.render_widget(Paragraph::new(lines), inner);
    }
}
