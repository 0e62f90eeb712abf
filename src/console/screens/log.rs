//! Log (`4`): what the session did, newest at the bottom; the filter keeps
//! the lines that mention it. Long lines wrap, or (`w`, as in k9s) stay on
//! one row and scroll sideways with a mark where they go on.

use super::{Nav, Screen, ScreenReply};
use crate::console::model::{Data, LogEntry, LogLevel};
use crate::console::theme::StyleKey;
use crate::console::ui::{KeyHelp, Ui, wrapped};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub struct Log {
    /// The lines shown: indices into the log.
    rows: Vec<usize>,
    /// How many rows up from the newest the view is scrolled.
    offset: usize,
    /// Long lines wrap; else they are cut, and scrolled `sideways`.
    wrap: bool,
    /// Characters of each line's text scrolled past, when not wrapping.
    sideways: usize,
}

impl Default for Log {
    fn default() -> Log {
        Log {
            rows: Vec::new(),
            offset: 0,
            wrap: true,
            sideways: 0,
        }
    }
}

/// ` 11:20:45 ` before each line's text.
const TIME_WIDTH: usize = 10;

/// How far `←`/`→` scroll a line sideways.
const SIDEWAYS_STEP: usize = 20;

/// `11:20:45` of a time.
fn time_of(at: std::time::SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(at).to_string();
    text.get(11..19).unwrap_or("").to_string()
}

impl Log {
    /// The rows that end at the view's last row, oldest first: as many as
    /// fill `height` rows of `width` (wrapped, each may take several).
    fn shown(&self, data: &Data, ui: &Ui, width: u16, height: usize) -> &[usize] {
        let end = self.rows.len().saturating_sub(self.offset);
        let mut start = end;
        let mut used = 0;
        while start > 0 && used < height {
            used += self.rows_of(data, ui, self.rows[start - 1], width);
            start -= 1;
        }
        &self.rows[start..end]
    }

    /// The terminal rows log line `i` takes in `width` columns.
    fn rows_of(&self, data: &Data, ui: &Ui, i: usize, width: u16) -> usize {
        if !self.wrap {
            return 1;
        }
        data.log.get(i).map_or(1, |e| {
            wrapped(vec![self.line(e, ui, usize::from(width))]).line_count(width)
        })
    }

    /// A log line as drawn `width` wide: whole when wrapping, else its
    /// text from the sideways scroll on, marked where it is cut.
    fn line<'a>(&self, e: &'a LogEntry, ui: &Ui, width: usize) -> Line<'a> {
        let style = ui.style(match e.level {
            LogLevel::Info => StyleKey::LogInfo,
            LogLevel::Warn => StyleKey::LogWarn,
            LogLevel::Error => StyleKey::LogError,
        });
        let time = format!(" {:<8} ", time_of(e.at));
        let text = if self.wrap {
            e.text.clone()
        } else {
            let room = width.saturating_sub(TIME_WIDTH);
            let rest: String = e.text.chars().skip(self.sideways).collect();
            let rest = if self.sideways > 0 && !rest.is_empty() {
                // The first character gives way to the mark.
                let tail: String = rest.chars().skip(1).collect();
                format!("{}{tail}", ui.symbols.ellipsis)
            } else {
                rest
            };
            ui.truncate(&rest, room)
        };
        Line::from(vec![
            Span::styled(time, ui.style(StyleKey::TextDim)),
            Span::styled(text, style),
        ])
    }
}

impl Screen for Log {
    fn refresh(&mut self, data: &Data) {
        self.rows = (0..data.log.len())
            .filter(|&i| data.filter.matches(&data.log[i].text))
            .collect();
        self.offset = self.offset.min(self.rows.len().saturating_sub(1));
    }

    fn on_key(&mut self, key: &KeyEvent, _data: &Data) -> ScreenReply {
        if key.code == KeyCode::Char('w') {
            self.wrap = !self.wrap;
            self.sideways = 0;
            return ScreenReply::Done;
        }
        let Some(nav) = Nav::of(key) else {
            return ScreenReply::Unhandled;
        };
        match nav {
            Nav::Left => self.sideways = self.sideways.saturating_sub(SIDEWAYS_STEP),
            Nav::Right if !self.wrap => self.sideways += SIDEWAYS_STEP,
            _ => {}
        }
        // The offset counts up from the newest row, the newest being last;
        // the view moves its last row (`fit` keeps the first page full).
        let last = self.rows.len().saturating_sub(1);
        let at = nav.step(last.saturating_sub(self.offset), self.rows.len());
        self.offset = last - at;
        ScreenReply::Done
    }

    /// At most scrolled so far up that the oldest row is on the first
    /// row: `g` shows a whole page, not the oldest row alone.
    fn fit(&mut self, area: Rect, data: &Data, ui: &Ui) {
        let inner = ui.block("").inner(area);
        let height = usize::from(inner.height);
        // The oldest rows that fill the view.
        let mut first_page = 0;
        let mut used = 0;
        for &i in &self.rows {
            used += self.rows_of(data, ui, i, inner.width);
            if used > height {
                break;
            }
            first_page += 1;
        }
        self.offset = self
            .offset
            .min(self.rows.len().saturating_sub(first_page.max(1)));
        if self.wrap {
            return;
        }
        // Sideways no further than the longest line's end shows.
        let longest = self
            .rows
            .iter()
            .filter_map(|&i| data.log.get(i))
            .map(|e| e.text.chars().count())
            .max()
            .unwrap_or(0);
        let room = usize::from(inner.width).saturating_sub(TIME_WIDTH);
        self.sideways = self
            .sideways
            .min(longest.saturating_sub(room.saturating_sub(1)));
    }

    fn keys(&self, ui: &Ui) -> Vec<KeyHelp> {
        let mut keys = vec![(ui.symbols.updown, "scroll"), ("G", "newest")];
        if self.wrap {
            keys.push(("w", "no wrap"));
        } else {
            keys.push((ui.symbols.leftright, "sideways"));
            keys.push(("w", "wrap"));
        }
        keys
    }

    fn draw(&self, f: &mut Frame, area: Rect, data: &Data, ui: &Ui) {
        let outer = ui.block(if self.wrap {
            " Log (wrapped: w cuts lines) "
        } else {
            " Log (cut: w wraps lines) "
        });
        let inner = outer.inner(area);
        f.render_widget(outer, area);
        let height = usize::from(inner.height);
        let width = usize::from(inner.width);
        let mut lines: Vec<Line> = self
            .shown(data, ui, inner.width, height)
            .iter()
            .filter_map(|&i| data.log.get(i))
            .map(|e| self.line(e, ui, width))
            .collect();
        if self.rows.is_empty() && !data.log.is_empty() {
            lines.push(Line::styled(
                ui.unmatched("log line", data.filter.text()),
                ui.style(StyleKey::TextDim),
            ));
        }
        // The newest row shown on the last row: the oldest one shown may
        // lose its first rows.
        let paragraph = if self.wrap {
            wrapped(lines)
        } else {
            Paragraph::new(lines)
        };
        let rows = paragraph.line_count(inner.width);
        let skip = u16::try_from(rows.saturating_sub(height)).unwrap_or(0);
        f.render_widget(paragraph.scroll((skip, 0)), inner);
    }
}
