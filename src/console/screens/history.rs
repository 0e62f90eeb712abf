//! History (`5`): the pushes of the audit log, newest first; Enter shows
//! one push server by server; `u` rolls it back (after a confirmation);
//! `b` lists the backups beside the selected push's site on every server
//! (read by a worker, as `farmkey backups` lists them).

use super::detail::kv;
use super::{Nav, Rows, Screen, ScreenReply, Scroll, Sort};
use crate::console::model::{Action, Data};
use crate::console::theme::StyleKey;
use crate::console::ui::{KeyHelp, Ui};
use crate::push::audit::{AuditRecord, Fingerprints};
use crate::push::history::{PastPush, rollback_text};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

#[derive(Default)]
pub struct HistoryScreen {
    /// The rows shown, newest first: indices into the pushes read.
    rows: Rows,
    /// The push shown server by server (Enter), by id.
    open: Option<String>,
    scroll: Scroll,
    sort: Sort,
    /// The backups view (`b`) is shown.
    backups: bool,
}

/// The orders of `s`: newest first, then by these columns.
const ORDERS: [&str; 3] = ["time", "site", "user"];

/// `2026-11-26 11:20` of an RFC 3339 time.
fn short_time(time: &str) -> String {
    time.get(..16).unwrap_or(time).replacen('T', " ", 1)
}

/// A cell `width` wide and the space after it; nothing for a column
/// left out.
fn column(ui: &Ui, text: &str, width: usize) -> String {
    if width == 0 {
        String::new()
    } else {
        format!("{} ", ui.pad(text, width))
    }
}

/// Keys as the matrix says them: fingerprints, or what they were
/// (`auto`); `?` where an older record does not say.
fn fingerprint_text(f: &Fingerprints) -> String {
    let (v, d) = (
        f.validation_text().unwrap_or("?"),
        f.decryption_text().unwrap_or("?"),
    );
    match &f.key_set {
        Some(set) => format!("{set} (validationKey {v}, decryptionKey {d})"),
        None => format!("validationKey {v}, decryptionKey {d}"),
    }
}

impl HistoryScreen {
    fn selected<'a>(&self, data: &'a Data) -> Option<&'a PastPush> {
        self.rows
            .selected()
            .and_then(|i| data.history.pushes.get(i))
    }

    fn shown<'a>(&self, data: &'a Data) -> Option<&'a PastPush> {
        let id = self.open.as_ref()?;
        data.history.pushes.iter().find(|p| p.id == *id)
    }

    /// The list of pushes, taking the rows it needs, and the selected
    /// one's panel below it, the rest.
    fn list_layout(&self, area: Rect) -> [Rect; 2] {
        let list_need = (self.rows.len().max(1) as u16).saturating_add(3);
        let panel_h = area.height.saturating_sub(list_need).max(7);
        Layout::vertical([Constraint::Min(4), Constraint::Length(panel_h)]).areas(area)
    }

    fn draw_list(&self, f: &mut Frame, area: Rect, data: &Data, ui: &Ui) {
        let [list_area, panel_area] = self.list_layout(area);
        let order = match self.sort {
            Sort {
                column: 0,
                reversed: true,
            } => " (oldest first)".to_string(),
            sort => sort.label(&ORDERS),
        };
        let title = match &data.history.path {
            Some(p) => format!(" Pushes{order} in {} ", p.display()),
            None => format!(" Pushes{order} "),
        };
        let outer = ui.block(ui.truncate_left(&title, list_area.width.saturating_sub(4) as usize));
        let inner = outer.inner(list_area);
        // SITE as wide as its longest name while OUTCOME keeps half of
        // what the fixed columns leave; OUTCOME takes the rest.
        let longest = data
            .history
            .pushes
            .iter()
            .map(|p| p.site().chars().count())
            .max()
            .unwrap_or(0);
        let free = inner.width.saturating_sub(1 + 16 + 8 + 19 + 4 + 5);
        let site = (longest as u16).min(free / 2).max(8);
        let (time_w, user_w, site_w) = (16, 8, usize::from(site));
        let room = usize::from(free.saturating_sub(site));
        // Too narrow for OUTCOME: KEY SETS gives way (the push's page has
        // them).
        let (sets_w, room) = if room < 12 {
            (0, room + 20)
        } else {
            (19, room)
        };
        let mut lines = vec![Line::styled(
            format!(
                " {} {} {} {}SRV  OUTCOME",
                ui.pad("TIME", time_w),
                ui.pad("USER", user_w),
                ui.pad("SITE", site_w),
                column(ui, "KEY SETS", sets_w),
            ),
            ui.style(StyleKey::TextDim),
        )];
        let height = inner.height.saturating_sub(1) as usize;
        // Rows above and below the list's say so on its border.
        let (at, end) = self.rows.more(height);
        f.render_widget(ui.more(outer, at, end, ""), list_area);
        for (i, selected) in self.rows.shown(height) {
            let push = &data.history.pushes[i];
            let fine = push.standing().iter().all(|(_, o)| o.is_fine());
            let style = ui.style(match (selected, fine) {
                (true, _) => StyleKey::Selection,
                (false, true) => StyleKey::Text,
                (false, false) => StyleKey::Warning,
            });
            // Too narrow for every column: the row is cut, and marked.
            let row = format!(
                " {} {} {} {}{:>3}  {}",
                ui.pad(&short_time(push.time()), time_w),
                ui.pad(push.user(), user_w),
                ui.pad(push.site(), site_w),
                column(ui, &push.key_sets_text(ui.symbols.to), sets_w),
                push.servers().len(),
                ui.truncate(&push.outcome_summary(), room)
            );
            lines.push(Line::styled(
                ui.truncate(&row, usize::from(inner.width)),
                style,
            ));
        }
        if self.rows.is_empty() {
            let text = if data.history.loading {
                format!(" {} reading the audit log…", ui.spinner())
            } else if let Some(e) = &data.history.error {
                format!(" {} {e}", ui.symbols.error)
            } else if data.history.pushes.is_empty() {
                " No pushes recorded yet.".to_string()
            } else {
                ui.unmatched("push", data.filter.text())
            };
            lines.push(Line::styled(text, ui.style(StyleKey::TextDim)));
        }
        f.render_widget(Paragraph::new(lines), inner);

        // The selected push's servers, and what `u` would do.
        let (title, lines) = match self.selected(data) {
            Some(push) => {
                let mut lines: Vec<Line> = push
                    .standing()
                    .into_iter()
                    .map(|(rec, o)| {
                        let style = if o.is_fine() {
                            StyleKey::Text
                        } else {
                            StyleKey::Warning
                        };
                        let text = if push.rollback_unrecorded(rec) {
                            rollback_text(push.rollbacks_of(rec).last().unwrap_or(rec))
                        } else {
                            o.to_string()
                        };
                        Line::styled(format!("{:<12} {text}", push.label(rec)), ui.style(style))
                    })
                    .collect();
                let undo = push.to_roll_back();
                lines.insert(
                    0,
                    Line::styled(
                        if undo.is_empty() {
                            "Nothing to roll back.".to_string()
                        } else {
                            format!(
                                "u rolls back {}.",
                                undo.iter()
                                    .map(|r| push.label(r))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        },
                        ui.style(StyleKey::TextDim),
                    ),
                );
                (format!(" Push {} ", push.id), lines)
            }
            None => (" Push ".to_string(), Vec::new()),
        };
        // Its frame says how many lines do not fit (Enter shows them all).
        ui.page(f, panel_area, title, lines, 0);
    }

    /// The backups view: `farmkey backups`' columns, a site's backups on
    /// every server, then the servers not read.
    fn backups_page<'a>(data: &'a Data, ui: &Ui) -> (String, Vec<Line<'a>>) {
        use crate::push::backups::COLUMNS;
        let b = &data.history.backups;
        let title = match &b.site {
            Some(s) => format!(" Backups of {s} (they hold the old keys) "),
            None => " Backups (they hold the old keys) ".to_string(),
        };
        if b.loading {
            let text = format!(" {} reading every server…", ui.spinner());
            return (title, vec![Line::styled(text, ui.style(StyleKey::TextDim))]);
        }
        let now = std::time::SystemTime::now();
        let mut rows: Vec<(bool, [String; 6])> = vec![(false, COLUMNS.map(String::from))];
        for backup in b
            .servers
            .iter()
            .filter_map(|s| s.result.as_ref().ok())
            .flatten()
        {
            rows.push((backup.needed_by.is_some(), backup.cells(now)));
        }
        let widths: Vec<usize> = (0..COLUMNS.len())
            .map(|i| {
                rows.iter()
                    .map(|(_, r)| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut lines: Vec<Line> = rows
            .iter()
            .enumerate()
            .map(|(i, (needed, cells))| {
                let text: Vec<String> = cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| ui.pad(c, *w))
                    .collect();
                let style = match (i, needed) {
                    (0, _) => StyleKey::TextDim,
                    (_, true) => StyleKey::Header,
                    _ => StyleKey::Text,
                };
                Line::styled(format!(" {}", text.join("  ")), ui.style(style))
            })
            .collect();
        if rows.len() == 1 {
            lines.push(Line::styled(
                " No backups found.",
                ui.style(StyleKey::TextDim),
            ));
        }
        for s in &b.servers {
            if let Err(e) = &s.result {
                lines.push(Line::styled(
                    format!(" {} {}: not read: {e}", ui.symbols.error, s.server),
                    ui.style(StyleKey::Warning),
                ));
            }
        }
        (title, lines)
    }

    /// The push server by server, for a panel `width` wide: its title and
    /// lines, what is drawn and what the scroll's end is counted from.
    fn push_page<'a>(push: &'a PastPush, ui: &Ui, width: u16) -> (String, Vec<Line<'a>>) {
        let width = width.saturating_sub(2) as usize;
        let mut lines = vec![Line::styled(
            format!(
                " {} by {}: {}",
                short_time(push.time()),
                push.user(),
                push.outcome_summary()
            ),
            ui.style(StyleKey::Text),
        )];
        if let Some(plan) = push.plan_text() {
            lines.push(Line::styled(
                format!(" from saved plan {plan}"),
                ui.style(StyleKey::TextDim),
            ));
        }
        // A prune: the backups it removed, and those it did not, and why.
        for l in push.prune_lines() {
            lines.push(Line::styled(format!(" {l}"), ui.style(StyleKey::Text)));
        }
        let arrow = ui.symbols.to;
        let standing = push.standing();
        for rec in push.pushed() {
            lines.push(Line::raw(""));
            // Where the file stands now: a rollback since shows, not the
            // push's outcome alone.
            let now = standing
                .iter()
                .find(|(r, _)| {
                    r.server == rec.server && crate::paths::same_name(&r.file, &rec.file)
                })
                .map_or(rec.outcome, |(_, o)| *o);
            let style = if now.is_fine() {
                StyleKey::Header
            } else {
                StyleKey::Warning
            };
            lines.push(Line::styled(
                format!(" {}  {}", push.label(rec), push.standing_text(rec)),
                ui.style(style),
            ));
            server_lines(ui, rec, width, arrow, &mut lines);
            if let Some((_, copies)) = push
                .left_behind()
                .into_iter()
                .find(|(r, _)| std::ptr::eq(*r, rec))
            {
                kv(
                    ui,
                    &mut lines,
                    width,
                    "left behind",
                    copies.join(", "),
                    String::new(),
                );
            }
            let shown = push.rollbacks_shown();
            for r in push
                .rollbacks_of(rec)
                .filter(|r| shown.iter().any(|s| std::ptr::eq(*s, *r)))
            {
                let what = if r.message.is_empty() {
                    format!("{} at {}", rollback_text(r), short_time(&r.time))
                } else {
                    format!(
                        "{} at {}: {}",
                        rollback_text(r),
                        short_time(&r.time),
                        r.message
                    )
                };
                lines.push(Line::from(vec![
                    Span::styled(format!(" {:<16}", "rollback"), ui.style(StyleKey::TextDim)),
                    Span::styled(
                        what,
                        ui.style(if r.outcome.is_fine() {
                            StyleKey::Text
                        } else {
                            StyleKey::Warning
                        }),
                    ),
                ]));
            }
        }
        let title = format!(" Push {} to {} ", push.id, push.site());
        (title, lines)
    }
}

/// One server of a push: its file, keys, bytes and backup.
fn server_lines(ui: &Ui, rec: &AuditRecord, width: usize, arrow: &str, lines: &mut Vec<Line>) {
    kv(ui, lines, width, "file", rec.file.clone(), String::new());
    kv(
        ui,
        lines,
        width,
        "keys before",
        fingerprint_text(&rec.fingerprints_before),
        String::new(),
    );
    kv(
        ui,
        lines,
        width,
        "keys after",
        fingerprint_text(&rec.fingerprints_after),
        String::new(),
    );
    let sha = |s: &Option<String>| {
        s.as_deref().map_or("(none)".to_string(), |s| {
            s.get(..12).unwrap_or(s).to_string()
        })
    };
    kv(
        ui,
        lines,
        width,
        "sha256",
        format!(
            "{} {arrow} {}",
            sha(&rec.sha256_before),
            sha(&rec.sha256_after)
        ),
        String::new(),
    );
    kv(
        ui,
        lines,
        width,
        "backup",
        rec.backup
            .clone()
            .unwrap_or_else(|| "(none: the push created the file)".into()),
        String::new(),
    );
    if !rec.message.is_empty() {
        kv(
            ui,
            lines,
            width,
            "message",
            rec.message.clone(),
            String::new(),
        );
    }
}

impl Screen for HistoryScreen {
    fn refresh(&mut self, data: &Data) {
        let was = self.selected(data).map(|p| p.id.clone());
        let f = &data.filter;
        let pushes = &data.history.pushes;
        let mut rows: Vec<usize> = (0..pushes.len())
            .rev()
            .filter(|&i| {
                let p = &pushes[i];
                f.matches(p.site())
                    || f.matches(p.user())
                    || f.matches(&p.id)
                    || p.records.iter().any(|r| f.matches(&r.server))
            })
            .collect();
        let site = |i: usize| pushes[i].site().to_lowercase();
        self.sort.apply(&mut rows, |column, a, b| match column {
            1 => site(a).cmp(&site(b)),
            2 => pushes[a].user().cmp(pushes[b].user()),
            _ => std::cmp::Ordering::Equal,
        });
        self.rows
            .set(rows, |i| was.as_ref().is_some_and(|id| pushes[i].id == *id));
        if self.shown(data).is_none() {
            self.open = None;
        }
    }

    fn on_key(&mut self, key: &KeyEvent, data: &Data) -> ScreenReply {
        if self.backups {
            if let Some(nav) = Nav::of(key) {
                self.scroll.step(nav);
                return ScreenReply::Done;
            }
            return match key.code {
                KeyCode::Esc | KeyCode::Char('b') => {
                    self.backups = false;
                    ScreenReply::Done
                }
                _ => ScreenReply::Unhandled,
            };
        }
        if self.open.is_none() && key.code == KeyCode::Char('b') {
            self.backups = true;
            self.scroll.top();
            let site = self.selected(data).map(|p| p.site().to_string());
            return ScreenReply::Act(Action::LoadBackups { site });
        }
        if self.open.is_some() {
            if let Some(nav) = Nav::of(key) {
                self.scroll.step(nav);
                return ScreenReply::Done;
            }
            return match key.code {
                KeyCode::Esc => {
                    self.open = None;
                    ScreenReply::Done
                }
                KeyCode::Char('u') => match self.open.clone() {
                    Some(push_id) => ScreenReply::Act(Action::ChooseRollback { push_id }),
                    None => ScreenReply::Done,
                },
                _ => ScreenReply::Unhandled,
            };
        }
        if let Some(nav) = Nav::of(key) {
            self.rows.step(nav);
            return ScreenReply::Done;
        }
        if self.sort.on_key(key, ORDERS.len()) {
            self.refresh(data);
            return ScreenReply::Done;
        }
        let Some(push) = self.selected(data) else {
            return ScreenReply::Unhandled;
        };
        match key.code {
            KeyCode::Enter => {
                self.open = Some(push.id.clone());
                self.scroll.top();
                ScreenReply::Done
            }
            KeyCode::Char('u') => ScreenReply::Act(Action::ChooseRollback {
                push_id: push.id.clone(),
            }),
            _ => ScreenReply::Unhandled,
        }
    }

    fn click(&mut self, y: u16, area: Rect, _data: &Data) {
        if self.open.is_none() {
            self.rows.click_in(y, self.list_layout(area)[0]);
        }
    }

    fn keys(&self, ui: &Ui) -> Vec<KeyHelp> {
        if self.backups {
            return vec![(ui.symbols.updown, "scroll"), ("b/Esc", "back")];
        }
        if self.open.is_some() {
            vec![
                (ui.symbols.updown, "scroll"),
                ("Esc", "back"),
                ("u", "roll back"),
            ]
        } else {
            vec![
                (ui.symbols.updown, "move"),
                ("Enter", "servers"),
                ("u", "roll back"),
                // `b` (backups) is in the help: here it would push the
                // global keys out of an 80-column footer.
                ("s/S", "sort"),
            ]
        }
    }

    fn fit(&mut self, area: Rect, data: &Data, ui: &Ui) {
        if self.backups {
            let (_, lines) = Self::backups_page(data, ui);
            self.scroll.fit(ui.page_end(area, lines));
            return;
        }
        let end = self.shown(data).map_or(0, |push| {
            let (_, lines) = Self::push_page(push, ui, area.width);
            ui.page_end(area, lines)
        });
        self.scroll.fit(end);
    }

    fn draw(&self, f: &mut Frame, area: Rect, data: &Data, ui: &Ui) {
        if self.backups {
            let (title, lines) = Self::backups_page(data, ui);
            ui.page(f, area, title, lines, self.scroll.at());
            return;
        }
        match self.shown(data) {
            Some(push) => {
                let (title, lines) = Self::push_page(push, ui, area.width);
                ui.page(f, area, title, lines, self.scroll.at());
            }
            None => self.draw_list(f, area, data, ui),
        }
    }
}
