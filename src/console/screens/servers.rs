//! Servers (`2`): one row per server of the inventory, its scan state, time
//! and error; the selected server below.

use super::{Nav, Rows, Screen, ScreenReply, Sort, servers_shown};
use crate::console::model::{Data, Phase};
use crate::console::theme::StyleKey;
use crate::console::ui::{KeyHelp, Ui};
use ratatui::Frame;
use ratatui::crossterm::event::KeyEvent;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::Paragraph;

#[derive(Default)]
pub struct Servers {
    /// The rows shown: indices into the servers.
    rows: Rows,
    sort: Sort,
}

/// The orders of `s`: the inventory's, then by these columns.
const ORDERS: [&str; 4] = ["inventory", "name", "state", "time"];

impl Servers {
    /// The server the cursor is on.
    pub fn selected(&self) -> Option<usize> {
        self.rows.selected()
    }
}

impl Screen for Servers {
    fn refresh(&mut self, data: &Data) {
        let was = self.selected();
        let mut rows = servers_shown(data);
        let rank = |i: usize| {
            let r = &data.servers[i];
            (r.phase == Phase::Done, r.ok())
        };
        let time = |i: usize| data.servers[i].scan.as_ref().map(|s| s.elapsed);
        let name = |i: usize| data.servers[i].server.name.to_lowercase();
        self.sort.apply(&mut rows, |column, a, b| match column {
            1 => name(a).cmp(&name(b)),
            2 => rank(a).cmp(&rank(b)),
            3 => time(a).cmp(&time(b)),
            _ => a.cmp(&b),
        });
        self.rows.set(rows, |i| Some(i) == was);
    }

    fn on_key(&mut self, key: &KeyEvent, data: &Data) -> ScreenReply {
        if self.sort.on_key(key, ORDERS.len()) {
            self.refresh(data);
            return ScreenReply::Done;
        }
        match Nav::of(key) {
            Some(nav) => {
                self.rows.step(nav);
                ScreenReply::Done
            }
            None => ScreenReply::Unhandled,
        }
    }

    fn focused_server(&self, _data: &Data) -> Option<usize> {
        self.selected()
    }

    fn click(&mut self, y: u16, area: Rect, _data: &Data) {
        self.rows.click_in(y, list_area(area));
    }

    fn keys(&self, ui: &Ui) -> Vec<KeyHelp> {
        vec![
            (ui.symbols.updown, "move"),
            ("R", "rescan server"),
            ("s/S", "sort"),
            ("r", "rescan all"),
        ]
    }

    fn draw(&self, f: &mut Frame, area: Rect, data: &Data, ui: &Ui) {
        let [list_area, panel_area] = layout(area);
        let outer = ui.block(format!(" Servers{} ", self.sort.label(&ORDERS)));
        let inner = outer.inner(list_area);
        f.render_widget(outer, list_area);
        let mut lines = vec![Line::styled(
            format!(
                " {:<14} {:<22} {:<14} {:>7}  ERROR",
                "NAME", "ADDRESS", "STATE", "TIME"
            ),
            ui.style(StyleKey::TextDim),
        )];
        let height = inner.height.saturating_sub(1) as usize;
        for (i, selected) in self.rows.shown(height) {
            let row = &data.servers[i];
            let busy = |word: &str| (format!("{} {word}", ui.spinner()), StyleKey::StateBusy);
            let (state, style) = match (row.phase, row.ok()) {
                (Phase::Waiting, _) => busy("waiting"),
                (Phase::Connecting, _) => busy("connecting"),
                (Phase::Reading, _) => busy("reading"),
                (Phase::Done, Some(true)) => (format!("{} ok", ui.symbols.ok), StyleKey::StateOk),
                (Phase::Done, _) => (format!("{} error", ui.symbols.error), StyleKey::StateError),
            };
            let elapsed = match (&row.scan, row.started, row.phase) {
                (Some(s), _, Phase::Done) => format!("{:.2}s", s.elapsed.as_secs_f64()),
                (_, Some(start), _) => format!("{:.1}s", start.elapsed().as_secs_f64()),
                _ => String::new(),
            };
            let base = ui.style(if selected {
                StyleKey::Selection
            } else {
                StyleKey::Text
            });
            let unless_selected = |key| if selected { base } else { ui.style(key) };
            lines.push(Line::from(vec![
                Span::styled(format!(" {} ", ui.pad(&row.server.name, 14)), base),
                Span::styled(format!("{} ", ui.pad(&row.server.address(), 22)), base),
                Span::styled(format!("{} ", ui.pad(&state, 14)), unless_selected(style)),
                Span::styled(format!("{elapsed:>7}  "), base),
                Span::styled(
                    row.error().unwrap_or_default(),
                    unless_selected(StyleKey::StateError),
                ),
            ]));
        }
        f.render_widget(Paragraph::new(lines), inner);
        let detail = self
            .selected()
            .map(|i| {
                let r = &data.servers[i];
                let mut text = match r.error() {
                    Some(e) => Text::styled(e, ui.style(StyleKey::StateError)),
                    None => Text::styled(
                        format!("{} via {}", r.server.name, r.server.address()),
                        ui.style(StyleKey::Text),
                    ),
                };
                if !r.jumps.is_empty() {
                    // The chain first: it is what an error above is about.
                    text.lines.insert(
                        0,
                        Line::styled(
                            format!("through {}", r.jumps.join(&format!(" {} ", ui.symbols.to))),
                            ui.style(StyleKey::Text),
                        ),
                    );
                }
                text
            })
            .unwrap_or_default();
        // A long error says how much more it has (Findings has all of it).
        ui.page(f, panel_area, " Server ".to_string(), detail.lines, 0);
    }
}

/// The list, and the selected server below it.
fn layout(area: Rect) -> [Rect; 2] {
    Layout::vertical([Constraint::Min(4), Constraint::Length(6)]).areas(area)
}

fn list_area(area: Rect) -> Rect {
    layout(area)[0]
}
