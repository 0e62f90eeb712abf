//! Findings (`3`): every finding of the farm, the most urgent first (`S`
//! reverses, `s` sorts by code or site); what to do about the selected one below: the
//! registry's remedy for its code, then its message.

use super::{Nav, Rows, Screen, ScreenReply, Scroll, Sort};
use crate::analysis::Finding;
use crate::console::model::Data;
use crate::console::theme::StyleKey;
use crate::console::ui::{KeyHelp, Ui, wrapped};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

#[derive(Default)]
pub struct Findings {
    /// The rows shown, in the chosen order: indices into the report's
    /// findings (as `all_findings` lists them).
    rows: Rows,
    sort: Sort,
    /// How far the "What to do" panel is scrolled (`J`/`K`).
    panel: Scroll,
    /// Where the list was last laid out, for mouse clicks.
    list_area: Rect,
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

    /// What to do about the selected finding: the registry's remedy, the
    /// message with the specifics, and every server it is about.
    fn panel_text(&self, data: &Data, ui: &Ui) -> Vec<Line<'static>> {
        self.selected(data)
            .map(|x| {
                let mut lines = vec![
                    Line::styled(x.code.rule().remedy, ui.style(StyleKey::Title)),
                    Line::raw(x.message.clone()),
                ];
                if !x.servers.is_empty() {
                    lines.push(Line::styled(
                        format!("Servers: {}", x.servers.join(", ")),
                        ui.style(StyleKey::TextDim),
                    ));
                }
                lines
            })
            .unwrap_or_default()
    }

    /// The list and the panel: the list takes the rows it needs (at most
    /// half when both are crowded), the panel the rest.
    fn split(&self, area: Rect, data: &Data, ui: &Ui) -> [Rect; 2] {
        // Borders and the header row; a message when there are no rows.
        let list_need = (self.rows.len().max(1) as u16).saturating_add(3);
        let lines = self.panel_text(data, ui);
        let panel_need =
            (wrapped(lines).line_count(area.width.saturating_sub(2)) as u16).saturating_add(2);
        let list_min = list_need.min((area.height / 2).max(5));
        let panel_h = area
            .height
            .saturating_sub(list_need)
            .max(panel_need.min(area.height.saturating_sub(list_min)))
            .max(4);
        Layout::vertical([Constraint::Min(4), Constraint::Length(panel_h)]).areas(area)
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

    fn on_key(&mut self, key: &KeyEvent, data: &Data) -> ScreenReply {
        if let Some(nav) = Nav::of(key) {
            self.rows.step(nav);
            self.panel.top();
            return ScreenReply::Done;
        }
        if self.sort.on_key(key, ORDERS.len()) {
            self.refresh(data);
            return ScreenReply::Done;
        }
        match key.code {
            KeyCode::Char('J') => {
                self.panel.step(Nav::Down);
                ScreenReply::Done
            }
            KeyCode::Char('K') => {
                self.panel.step(Nav::Up);
                ScreenReply::Done
            }
            KeyCode::Enter => match self.selected(data).and_then(|f| f.site.clone()) {
                Some(site) => ScreenReply::ShowSite(site),
                None => ScreenReply::Done,
            },
            _ => ScreenReply::Unhandled,
        }
    }

    fn fit(&mut self, area: Rect, data: &Data, ui: &Ui) {
        let [list_area, panel_area] = self.split(area, data, ui);
        self.list_area = list_area;
        self.panel
            .fit(ui.page_end(panel_area, self.panel_text(data, ui)));
    }

    fn click(&mut self, y: u16, _area: Rect, _data: &Data) {
        self.rows.click_in(y, self.list_area);
    }

    fn keys(&self, ui: &Ui) -> Vec<KeyHelp> {
        let mut keys = vec![
            (ui.symbols.updown, "move"),
            ("Enter", "go to site"),
            ("s/S", "sort"),
        ];
        if self.panel.end() > 0 {
            keys.push(("J/K", "scroll panel"));
        }
        keys
    }

    fn draw(&self, f: &mut Frame, area: Rect, data: &Data, ui: &Ui) {
        let all = all_findings(data);
        let [list_area, panel_area] = self.split(area, data, ui);
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
        // The mark column, then SEVERITY, CODE, SITE and SERVERS: CODE and
        // SITE as wide as their longest (SITE leaving SERVERS a third of
        // what is left), SERVERS the rest; a cut cell is marked.
        let shown: Vec<&Finding> = self
            .rows
            .shown(usize::MAX)
            .filter_map(|(k, _)| all.get(k).copied())
            .collect();
        let longest = |f: &dyn Fn(&Finding) -> usize| shown.iter().map(|x| f(x)).max().unwrap_or(0);
        let code = longest(&|x| x.code.name().chars().count()).max(4) as u16;
        let site = longest(&|x| x.site.as_deref().unwrap_or("(farm)").chars().count()).max(4);
        let free = inner.width.saturating_sub(3 + 8 + 1 + code + 2);
        let site = (site as u16).min(free.saturating_sub(free / 3));
        let [_, sev_w, code_w, site_w, servers_w] = ui.columns(
            inner.width,
            [
                Constraint::Length(2),
                Constraint::Length(8),
                Constraint::Length(code),
                Constraint::Length(site),
                Constraint::Fill(1),
            ],
        );
        let mut lines = vec![Line::styled(
            format!(
                "   {} {} {} SERVERS",
                ui.pad("SEVERITY", sev_w),
                ui.pad("CODE", code_w),
                ui.pad("SITE", site_w)
            ),
            ui.style(StyleKey::TextDim),
        )];
        let height = inner.height.saturating_sub(1) as usize;
        // Rows above and below the list's say so on its border.
        let (at, end) = self.rows.more(height);
        f.render_widget(ui.more(outer, at, end, ""), list_area);
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
                        ui.pad(x.severity.name(), sev_w),
                        ui.pad(x.code.name(), code_w),
                        ui.pad(x.site.as_deref().unwrap_or("(farm)"), site_w),
                        ui.truncate(&x.servers.join(", "), servers_w)
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
        ui.page_noted(
            f,
            panel_area,
            " What to do ".to_string(),
            self.panel_text(data, ui),
            self.panel.at(),
            " (J/K)",
        );
    }
}
