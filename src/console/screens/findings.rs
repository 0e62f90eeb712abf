//! Findings (`3`): every finding of the farm, the most urgent first (`S`
//! reverses, `s` sorts by code or site); what to do about the selected one below: the
//! registry's remedy for its code, then its message.

use super::{Nav, Reply, Rows, Screen, Sort};
use crate::analysis::Finding;
use crate::console::model::Data;
use crate::console::theme::StyleKey;
use crate::console::ui::{KeyHelp, Ui};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

#[derive(Default)]
pub struct Findings {
    /// The rows shown, in the chosen order: indices into the report's
    /// findings (as `all_findings` lists them).
    rows: Rows,
    sort: Sort,
}

/// The orders of `s`: the most urgent first, then by these columns.
const ORDERS: [&str; 3] = ["severity", "code", "site"];

/// The farm's findings, in the report's order.
fn all_findings(data: &Data) -> Vec<&Finding> {
    data.report.all_findings().collect()
}

impl Findings {
    fn selected<'a>(&self, data: &'a Data) -> Option<&'a Finding> {
        data.report.all_findings().nth(self.rows.selected()?)
    }
}

impl Screen for Findings {
    fn refresh(&mut self, data: &Data) {
        let f = &data.filter;
        let all = all_findings(data);
        let mut rows: Vec<usize> = (0..all.len())
            .filter(|&i| {
                let x = all[i];
                f.matches(x.site.as_deref().unwrap_or(""))
                    || x.servers.iter().any(|s| f.matches(s))
                    || f.matches(x.code.name())
            })
            .collect();
        // Stable sorts: report order within a severity, a disclosed key
        // the most urgent of errors.
        let site = |i: usize| all[i].site.as_deref().unwrap_or("").to_lowercase();
        self.sort.apply(&mut rows, |column, a, b| match column {
            1 => all[a].code.name().cmp(all[b].code.name()),
            2 => site(a).cmp(&site(b)),
            _ => all[b].urgency().cmp(&all[a].urgency()),
        });
        // The cursor keeps its place, not its finding.
        self.rows.set(rows, |_| false);
    }

    fn on_key(&mut self, key: &KeyEvent, data: &Data) -> Reply {
        if let Some(nav) = Nav::of(key) {
            self.rows.step(nav);
            return Reply::Done;
        }
        if self.sort.on_key(key, ORDERS.len()) {
            self.refresh(data);
            return Reply::Done;
        }
        match key.code {
            KeyCode::Enter => match self.selected(data).and_then(|f| f.site.clone()) {
                Some(site) => Reply::ShowSite(site),
                None => Reply::Done,
            },
            _ => Reply::Unhandled,
        }
    }

    fn click(&mut self, y: u16, area: Rect, _data: &Data) {
        self.rows.click_in(y, layout(area)[0]);
    }

    fn keys(&self, ui: &Ui) -> Vec<KeyHelp> {
        vec![
            (ui.symbols.updown, "move"),
            ("Enter", "go to site"),
            ("s/S", "sort"),
        ]
    }

    fn draw(&self, f: &mut Frame, area: Rect, data: &Data, ui: &Ui) {
        let all = all_findings(data);
        let [list_area, panel_area] = layout(area);
        let order = match self.sort {
            Sort {
                column: 0,
                reversed: false,
            } => "worst first".to_string(),
            Sort {
                column: 0,
                reversed: true,
            } => "least first".to_string(),
            Sort { column, reversed } => format!(
                "by {}{}",
                ORDERS[column],
                if reversed { ", reversed" } else { "" }
            ),
        };
        let outer = ui.block(format!(" Findings ({order}) "));
        let inner = outer.inner(list_area);
        f.render_widget(outer, list_area);
        let mut lines = vec![Line::styled(
            format!("   {:<8} {:<28} {:<22} SERVERS", "SEVERITY", "CODE", "SITE"),
            ui.style(StyleKey::TextDim),
        )];
        let height = inner.height.saturating_sub(1) as usize;
        for (k, selected) in self.rows.shown(height) {
            let Some(x) = all.get(k) else { continue };
            let style = if selected {
                ui.style(StyleKey::Selection)
            } else {
                ui.severity_style(x.severity)
            };
            lines.push(Line::from(vec![
                Span::styled(format!(" {} ", ui.severity_symbol(Some(x.severity))), style),
                Span::styled(
                    format!(
                        "{} {} {} {}",
                        ui.pad(x.severity.name(), 8),
                        ui.pad(x.code.name(), 28),
                        ui.pad(x.site.as_deref().unwrap_or("(farm)"), 22),
                        x.servers.join(", ")
                    ),
                    if selected {
                        style
                    } else {
                        ui.style(StyleKey::Text)
                    },
                ),
            ]));
        }
        if self.rows.is_empty() {
            // A server never read may hold findings yet: no tick until then.
            let unread = data.servers.iter().filter(|r| r.scan.is_none()).count();
            lines.push(if all.is_empty() && unread > 0 {
                Line::styled(
                    format!(
                        " {} No findings yet: {unread} server(s) still being read.",
                        ui.spinner()
                    ),
                    ui.style(StyleKey::TextDim),
                )
            } else if all.is_empty() {
                Line::styled(
                    format!(" {} No findings.", ui.symbols.ok),
                    ui.style(StyleKey::SiteOk),
                )
            } else {
                Line::styled(
                    ui.unmatched("finding", data.filter.text()),
                    ui.style(StyleKey::TextDim),
                )
            });
        }
        f.render_widget(Paragraph::new(lines), inner);
        // The registry's remedy first, then the message with the specifics.
        let text: Vec<Line> = self
            .selected(data)
            .map(|x| {
                vec![
                    Line::styled(x.code.rule().remedy, ui.style(StyleKey::Title)),
                    Line::raw(x.message.clone()),
                ]
            })
            .unwrap_or_default();
        f.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .block(ui.block(" What to do ")),
            panel_area,
        );
    }
}

/// The list, and the selected finding's panel below it.
fn layout(area: Rect) -> [Rect; 2] {
    Layout::vertical([Constraint::Min(4), Constraint::Length(9)]).areas(area)
}
