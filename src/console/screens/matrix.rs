//! The Matrix (`1`): sites down, servers across, a cell per site and
//! server; the findings of the selected site below.

use super::{Nav, Screen, ScreenReply, Scroll, Sort, first_shown, servers_shown};
use crate::analysis::{NotRead, SiteReport, SiteVerdict, Unverified};
use crate::config::machine_key::KeyState;
use crate::config::wif::HandlerState;
use crate::console::model::{Action, Data, Phase};
use crate::console::theme::StyleKey;
use crate::console::ui::{KeyHelp, Ui};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::Paragraph;

const CELL: usize = 13;

#[derive(Default)]
pub struct Matrix {
    /// The rows shown: indices into the report's sites.
    sites: Vec<usize>,
    /// The columns shown: indices into the servers.
    servers: Vec<usize>,
    row: usize,
    /// 0: the site as a whole; k: the k-th server shown.
    col: usize,
    /// The site the cursor is on. Once the operator has moved the cursor,
    /// or acted on its site (a push re-sorts the sites), it follows its
    /// site when the order changes; before, it stays on the first row.
    selected: Option<String>,
    moved: bool,
    /// How far the selected site's findings are scrolled (`J`/`K`).
    panel: Scroll,
    sort: Sort,
}

/// The orders of `s`: the most urgent first, then by name.
const ORDERS: [&str; 2] = ["urgency", "name"];

/// Sites shown: those matching the filter, or all when none does but a
/// server does (the filter then names servers).
fn sites_shown(data: &Data) -> Vec<usize> {
    let sites = &data.report.sites;
    let matching: Vec<usize> = (0..sites.len())
        .filter(|&i| data.filter.matches(&sites[i].site))
        .collect();
    if matching.is_empty()
        && data
            .servers
            .iter()
            .any(|r| data.filter.matches(&r.server.name))
    {
        return (0..sites.len()).collect();
    }
    matching
}

impl Matrix {
    pub fn selected_site<'a>(&self, data: &'a Data) -> Option<&'a SiteReport> {
        self.sites
            .get(self.row)
            .and_then(|&i| data.report.sites.get(i))
    }

    /// The server of the selected cell (index into the servers).
    pub fn selected_server(&self) -> Option<usize> {
        self.col
            .checked_sub(1)
            .and_then(|k| self.servers.get(k).copied())
    }

    /// The table and the findings panel: the table takes what its rows
    /// need, the panel the rest.
    fn split(&self, area: Rect) -> [Rect; 2] {
        let table_h =
            (self.sites.len().max(1) as u16 + 3).clamp(5, area.height.saturating_sub(7).max(5));
        Layout::vertical([Constraint::Length(table_h), Constraint::Min(5)]).areas(area)
    }

    /// The selected site's panel: its title and lines.
    fn panel_text<'a>(&self, data: &'a Data, ui: &Ui) -> (String, Vec<Line<'a>>) {
        match self.selected_site(data) {
            Some(site) => (format!(" {} ", site.site), findings_text(ui, site).lines),
            None => (" Findings ".to_string(), Vec::new()),
        }
    }

    /// Puts the cursor on a site's row (the filter already cleared).
    pub fn select_site(&mut self, data: &Data, site: &str) -> bool {
        let Some(row) = self
            .sites
            .iter()
            .position(|&i| data.report.sites[i].site == site)
        else {
            return false;
        };
        self.row = row;
        self.col = 0;
        self.moved = true;
        self.selected = Some(site.to_string());
        true
    }
}

impl Screen for Matrix {
    fn refresh(&mut self, data: &Data) {
        let follow = self.selected.take().filter(|_| self.moved);
        self.sites = sites_shown(data);
        let sites = &data.report.sites;
        let name = |i: usize| sites[i].site.to_lowercase();
        self.sort
            .apply(&mut self.sites, |column, a, b| match column {
                1 => name(a).cmp(&name(b)),
                _ => a.cmp(&b),
            });
        self.servers = servers_shown(data);
        let found = follow.and_then(|name| {
            self.sites
                .iter()
                .position(|&i| data.report.sites[i].site == name)
        });
        if let Some(row) = found {
            self.row = row;
        } else if !self.moved {
            self.row = 0;
        }
        self.row = self.row.min(self.sites.len().saturating_sub(1));
        self.col = self.col.min(self.servers.len());
        self.selected = self.selected_site(data).map(|s| s.site.clone());
    }

    fn on_key(&mut self, key: &KeyEvent, data: &Data) -> ScreenReply {
        if self.sort.on_key(key, ORDERS.len()) {
            // The cursor stays on its site.
            self.moved = true;
            self.selected = self.selected_site(data).map(|s| s.site.clone());
            self.refresh(data);
            return ScreenReply::Done;
        }
        if let Some(nav) = Nav::of(key) {
            match nav {
                Nav::Left => self.col = self.col.saturating_sub(1),
                Nav::Right => self.col = (self.col + 1).min(self.servers.len()),
                _ => {
                    let row = nav.step(self.row, self.sites.len());
                    self.moved |= row != self.row;
                    if row != self.row {
                        self.panel.top();
                    }
                    self.row = row;
                    self.selected = self.selected_site(data).map(|s| s.site.clone());
                }
            }
            return ScreenReply::Done;
        }
        match key.code {
            KeyCode::Char('J') => {
                self.panel.step(Nav::Down);
                return ScreenReply::Done;
            }
            KeyCode::Char('K') => {
                self.panel.step(Nav::Up);
                return ScreenReply::Done;
            }
            _ => {}
        }
        let Some(site) = self.selected_site(data).map(|s| s.site.clone()) else {
            return ScreenReply::Unhandled;
        };
        let server = self
            .selected_server()
            .map(|i| data.servers[i].server.name.clone());
        let reply = match key.code {
            KeyCode::Enter => ScreenReply::Detail { site, server },
            KeyCode::Char('v') => ScreenReply::reveal(site, server),
            KeyCode::Char('p') => ScreenReply::Act(Action::ChoosePush { site }),
            _ => return ScreenReply::Unhandled,
        };
        self.moved = true;
        reply
    }

    fn focused_server(&self, _data: &Data) -> Option<usize> {
        self.selected_server()
    }

    fn fit(&mut self, area: Rect, data: &Data, ui: &Ui) {
        let [_, panel_area] = self.split(area);
        let (_, lines) = self.panel_text(data, ui);
        self.panel.fit(ui.page_end(panel_area, lines));
    }

    // J/K are named on the findings panel's frame: the footer is full.

    /// A click on a site's row selects it (the column stays).
    fn click(&mut self, y: u16, area: Rect, data: &Data) {
        // Border, then the heading, then the rows.
        let first = area.y + 2;
        let rows = self.split(area)[0].height.saturating_sub(3);
        if y < first || y >= first + rows {
            return;
        }
        let row = first_shown(self.row, usize::from(rows)) + usize::from(y - first);
        if row < self.sites.len() {
            self.row = row;
            self.moved = true;
            self.selected = self.selected_site(data).map(|s| s.site.clone());
        }
    }

    fn keys(&self, ui: &Ui) -> Vec<KeyHelp> {
        vec![
            (ui.symbols.arrows, "move"),
            ("Enter", "detail"),
            ("p", "push"),
            ("v", "reveal"),
            ("r/R", "rescan"),
        ]
    }

    fn draw(&self, f: &mut Frame, area: Rect, data: &Data, ui: &Ui) {
        let sites: Vec<&SiteReport> = self
            .sites
            .iter()
            .filter_map(|&i| data.report.sites.get(i))
            .collect();
        let [table_area, panel_area] = self.split(area);
        let outer = ui.block(format!(
            " Sites {} servers{} ",
            ui.symbols.times,
            self.sort.label(&ORDERS)
        ));
        let inner = outer.inner(table_area);

        // The names as wide as the longest needs, when the servers' columns
        // leave the room; never narrower than 14 or, when it is short of
        // the longest, than 28 (a cut name is marked).
        let width = inner.width as usize;
        let cells = self.servers.len().max(1) * (CELL + 1);
        let site_w = sites
            .iter()
            .map(|s| s.site.chars().count() + 3)
            .max()
            .unwrap_or(10)
            .min(width.saturating_sub(cells).max(28))
            .max(14);
        let fit = ((width.saturating_sub(site_w + 1)) / (CELL + 1)).max(1);
        // Keep the selected column in view.
        let sel_col = self.col.saturating_sub(1);
        let first_col = if self.col == 0 {
            0
        } else {
            sel_col.saturating_sub(fit - 1).min(sel_col)
        };
        let shown: Vec<usize> = self
            .servers
            .iter()
            .copied()
            .skip(first_col)
            .take(fit)
            .collect();

        let mut lines: Vec<Line> = Vec::new();
        let mut head = vec![Span::styled(
            ui.pad(" SITE", site_w),
            ui.style(StyleKey::TextDim),
        )];
        for (k, &i) in shown.iter().enumerate() {
            let row = &data.servers[i];
            let mark = match row.phase {
                Phase::Done if row.ok() == Some(false) => ui.symbols.unreachable,
                Phase::Done => "",
                _ => ui.spinner(),
            };
            let style = if self.col == first_col + k + 1 {
                ui.style(StyleKey::BorderFocus)
            } else {
                ui.style(StyleKey::TextDim)
            };
            head.push(Span::raw(" "));
            head.push(Span::styled(
                ui.pad(&format!("{}{mark}", row.server.name), CELL),
                style,
            ));
        }
        if self.servers.len() > shown.len() {
            head.push(Span::styled(
                format!(" +{}", self.servers.len() - shown.len()),
                ui.style(StyleKey::TextDim),
            ));
        }
        lines.push(Line::from(head));

        let body_rows = inner.height.saturating_sub(1) as usize;
        if sites.is_empty() {
            let msg = if data.scanning() > 0 {
                format!(" {} reading the servers…", ui.spinner())
            } else if !data.report.sites.is_empty() {
                ui.unmatched("site", data.filter.text())
            } else if data.servers.iter().all(|r| r.ok() == Some(false)) {
                " No site was verified: no server could be read (2 Servers says why).".to_string()
            } else if data.selection.all_sites {
                " No IIS applications found.".to_string()
            } else {
                " No Cora sites found. Press a to show every IIS application.".to_string()
            };
            lines.push(Line::styled(msg, ui.style(StyleKey::TextDim)));
        }
        let first_row = first_shown(self.row, body_rows);
        // Sites above and below the table's say so on its border.
        let more = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
        let end = more(sites.len().saturating_sub(body_rows));
        f.render_widget(ui.more(outer, more(first_row), end, ""), table_area);
        for (r, site) in sites.iter().enumerate().skip(first_row).take(body_rows) {
            let selected_row = r == self.row;
            let (sym, style) = if site.has_disclosed_key() {
                (ui.symbols.disclosed, ui.style(StyleKey::Danger))
            } else {
                match site.verdict() {
                    SiteVerdict::InStep => (ui.symbols.ok, ui.style(StyleKey::SiteOk)),
                    SiteVerdict::Drifted => (ui.symbols.drift, ui.style(StyleKey::SiteDrift)),
                    SiteVerdict::Unverified => (ui.symbols.unverified, ui.style(StyleKey::Warning)),
                }
            };
            let pointer = if selected_row {
                ui.symbols.pointer
            } else {
                " "
            };
            let name_style = if selected_row && self.col == 0 {
                ui.style(StyleKey::Selection)
            } else {
                style
            };
            let mut spans = vec![
                Span::styled(pointer.to_string(), ui.style(StyleKey::BorderFocus)),
                Span::styled(
                    ui.pad(&format!("{sym} {}", site.site), site_w - 1),
                    name_style,
                ),
            ];
            for (k, &i) in shown.iter().enumerate() {
                let (text, mut style) = cell(data, ui, site, i);
                if selected_row && self.col == first_col + k + 1 {
                    style = ui.style(StyleKey::Selection);
                }
                spans.push(Span::raw(" "));
                spans.push(Span::styled(ui.pad(&text, CELL), style));
            }
            lines.push(Line::from(spans));
        }
        f.render_widget(Paragraph::new(lines), inner);

        // Why the selected site is out of step; its frame says how many
        // lines do not fit (J/K scroll them, the detail has them all).
        let (title, lines) = self.panel_text(data, ui);
        ui.page_noted(f, panel_area, title, lines, self.panel.at(), " (J/K)");
    }
}

/// The matrix cell of a site on one server: text and style.
fn cell(data: &Data, ui: &Ui, site: &SiteReport, server: usize) -> (String, Style) {
    let s = &ui.symbols;
    let row = &data.servers[server];
    let name = &row.server.name;
    let Some(scan) = &row.scan else {
        return (
            format!("{} scanning", ui.spinner()),
            ui.style(StyleKey::MatrixPending),
        );
    };
    // Not read: say why as the site's verdict does (an unreadable
    // applicationHost.config was reached, so it is not "unreachable").
    if scan.result.is_err() {
        let word = match site.unverified.iter().find(|u| u.server == *name) {
            Some(Unverified {
                why: NotRead::HostKeyRefused(_),
                ..
            }) => "host key",
            Some(Unverified {
                why: NotRead::ServerUnreadable(_) | NotRead::SiteUnreadable(_),
                ..
            }) => "unreadable",
            _ => "unreachable",
        };
        return (
            format!("{} {word}", s.unreachable),
            ui.style(StyleKey::MatrixProblem),
        );
    }
    let Some(inst) = site.instance(name) else {
        return (
            format!("{} absent", s.absent),
            ui.style(StyleKey::MatrixMissing),
        );
    };
    if !inst.app.runs_clr() {
        // No Managed Code: no ASP.NET there, so no machine key.
        return (
            format!("{} no CLR", s.absent),
            ui.style(StyleKey::MatrixMissing),
        );
    }
    let Ok(eff) = &inst.effective else {
        return (
            format!("{} unreadable", s.unreadable),
            ui.style(StyleKey::MatrixProblem),
        );
    };
    let mut marks = String::new();
    if inst.is_disclosed() {
        marks.push_str(s.disclosed);
    }
    if eff.handler.state == HandlerState::Dpapi {
        marks.push_str(s.dpapi);
    }
    if inst.algorithm_drift.any() {
        marks.push_str(s.algorithm);
    }
    let (text, style) = match (inst.key_group, inst.worst_key()) {
        (Some(g), _) => {
            let fp = inst.set_fingerprint.as_deref().unwrap_or("");
            let style = match g {
                'A' => ui.style(StyleKey::MatrixMatch),
                'B' => ui.style(StyleKey::MatrixMismatch),
                _ => ui.style(StyleKey::MatrixMismatchAlt),
            };
            (format!("{g} {fp}"), style)
        }
        (None, Some(worst)) => {
            let (sym, word) = match worst {
                KeyState::Invalid { .. } => (s.invalid, "invalid"),
                KeyState::Encrypted => (s.encrypted, "encrypted"),
                KeyState::AutoGenerate { .. } => (s.auto, "auto"),
                KeyState::Explicit { .. } => (s.auto, "auto"), // the other key is auto-generated
            };
            (format!("{sym} {word}"), ui.style(StyleKey::MatrixProblem))
        }
        (None, None) => (
            format!("{} unreadable", s.unreadable),
            ui.style(StyleKey::MatrixProblem),
        ),
    };
    let text = if marks.is_empty() {
        text
    } else {
        format!("{text} {marks}")
    };
    let style = if inst.is_disclosed() {
        style.patch(ui.style(StyleKey::Danger))
    } else if marks.is_empty() {
        style
    } else {
        style.patch(ui.style(StyleKey::MatrixProblem))
    };
    (text, style)
}

/// A site's findings, the most urgent first.
fn findings_text<'a>(ui: &Ui, site: &'a SiteReport) -> Text<'a> {
    let mut findings: Vec<_> = site.findings.iter().collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.urgency()));
    if site.verdict() == SiteVerdict::InStep && findings.is_empty() {
        return Text::styled(
            format!("{} In step on every server.", ui.symbols.ok),
            ui.style(StyleKey::SiteOk),
        );
    }
    // Who was not read comes first: until then no one can say it is in step.
    let unread = site.unverified.iter().map(|u| {
        Line::styled(
            format!(
                "{} not read on {}: {}",
                ui.symbols.unverified, u.server, u.why
            ),
            ui.style(StyleKey::Warning),
        )
    });
    let lines: Vec<Line> = unread
        .chain(findings.into_iter().map(|f| {
            Line::from(vec![
                Span::styled(
                    format!("{} {} ", ui.severity_symbol(Some(f.severity)), f.code),
                    ui.severity_style(f.severity),
                ),
                Span::styled(f.message.clone(), ui.style(StyleKey::Text)),
            ])
        }))
        .collect();
    Text::from(lines)
}
