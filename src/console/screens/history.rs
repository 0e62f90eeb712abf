//! History (`5`): the pushes of the audit log, newest first; Enter shows
//! one push server by server; `u` rolls it back (after a confirmation).

use super::detail::kv;
use super::{Nav, Reply, Rows, Screen, Scroll, Sort};
use crate::console::model::{Action, Data};
use crate::console::theme::StyleKey;
use crate::console::ui::{KeyHelp, Ui};
use crate::push::audit::{AuditRecord, Fingerprints, Outcome};
use crate::push::history::{PastPush, rollback_text};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

#[derive(Default)]
pub struct History {
    /// The rows shown, newest first: indices into the pushes read.
    rows: Rows,
    /// The push shown server by server (Enter), by id.
    open: Option<String>,
    scroll: Scroll,
    sort: Sort,
}

/// The orders of `s`: newest first, then by these columns.
const ORDERS: [&str; 3] = ["time", "site", "user"];

/// `2026-11-26 11:20` of an RFC 3339 time.
fn short_time(time: &str) -> String {
    time.get(..16).unwrap_or(time).replacen('T', " ", 1)
}

/// `507f8fce → 1a2b3c4d`: the key sets found and the one written.
fn key_sets(push: &PastPush, arrow: &str) -> String {
    let (before, after) = push.key_sets();
    let side = |sets: &[&str]| match sets {
        [] => "?".to_string(),
        [one] => one.to_string(),
        more => format!("{} sets", more.len()),
    };
    if before == after {
        format!("{} (kept)", side(&before))
    } else {
        format!("{} {arrow} {}", side(&before), side(&after))
    }
}

/// `2 applied, 1 unchanged`: where the servers of a push stand.
fn outcome_summary(push: &PastPush) -> String {
    // A rollback's start with no outcome after it is not a push cut short.
    let mut counts: Vec<((Outcome, bool), usize)> = Vec::new();
    for (rec, o) in push.standing() {
        let key = (o, push.rollback_unrecorded(rec));
        match counts.iter_mut().find(|(x, _)| *x == key) {
            Some((_, n)) => *n += 1,
            None => counts.push((key, 1)),
        }
    }
    counts
        .iter()
        .map(|(o, n)| match o {
            (_, true) => format!("{n} rollback unrecorded"),
            (Outcome::Intent, false) => format!("{n} cut short"),
            (o, false) => format!("{n} {o}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
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

impl History {
    fn selected<'a>(&self, data: &'a Data) -> Option<&'a PastPush> {
        self.rows
            .selected()
            .and_then(|i| data.history.pushes.get(i))
    }

    fn shown<'a>(&self, data: &'a Data) -> Option<&'a PastPush> {
        let id = self.open.as_ref()?;
        data.history.pushes.iter().find(|p| p.id == *id)
    }

    fn draw_list(&self, f: &mut Frame, area: Rect, data: &Data, ui: &Ui) {
        let [list_area, panel_area] = list_layout(area);
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
        f.render_widget(outer, list_area);
        let mut lines = vec![Line::styled(
            format!(
                " {:<16} {:<8} {:<14} {:<19} {:>3}  OUTCOME",
                "TIME", "USER", "SITE", "KEY SETS", "SRV"
            ),
            ui.style(StyleKey::TextDim),
        )];
        let height = inner.height.saturating_sub(1) as usize;
        // What the columns before OUTCOME take.
        let room = (inner.width as usize).saturating_sub(67);
        for (i, selected) in self.rows.shown(height) {
            let push = &data.history.pushes[i];
            let fine = push.standing().iter().all(|(_, o)| o.is_fine());
            let style = ui.style(match (selected, fine) {
                (true, _) => StyleKey::Selection,
                (false, true) => StyleKey::Text,
                (false, false) => StyleKey::Warning,
            });
            lines.push(Line::styled(
                format!(
                    " {} {} {} {} {:>3}  {}",
                    ui.pad(&short_time(push.time()), 16),
                    ui.pad(push.user(), 8),
                    ui.pad(push.site(), 14),
                    ui.pad(&key_sets(push, ui.symbols.to), 19),
                    push.servers().len(),
                    ui.truncate(&outcome_summary(push), room)
                ),
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
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: true })
                .block(ui.block(title)),
            panel_area,
        );
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
                outcome_summary(push)
            ),
            ui.style(StyleKey::Text),
        )];
        let arrow = ui.symbols.to;
        for rec in push.pushed() {
            lines.push(Line::raw(""));
            let style = if rec.outcome.is_fine() {
                StyleKey::Header
            } else {
                StyleKey::Warning
            };
            lines.push(Line::styled(
                format!(" {}  {}", push.label(rec), push.pushed_text(rec)),
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

impl Screen for History {
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

    fn on_key(&mut self, key: &KeyEvent, data: &Data) -> Reply {
        if self.open.is_some() {
            if let Some(nav) = Nav::of(key) {
                self.scroll.step(nav);
                return Reply::Done;
            }
            return match key.code {
                KeyCode::Esc => {
                    self.open = None;
                    Reply::Done
                }
                KeyCode::Char('u') => match self.open.clone() {
                    Some(push_id) => Reply::Act(Action::ChooseRollback { push_id }),
                    None => Reply::Done,
                },
                _ => Reply::Unhandled,
            };
        }
        if let Some(nav) = Nav::of(key) {
            self.rows.step(nav);
            return Reply::Done;
        }
        if self.sort.on_key(key, ORDERS.len()) {
            self.refresh(data);
            return Reply::Done;
        }
        let Some(push) = self.selected(data) else {
            return Reply::Unhandled;
        };
        match key.code {
            KeyCode::Enter => {
                self.open = Some(push.id.clone());
                self.scroll.top();
                Reply::Done
            }
            KeyCode::Char('u') => Reply::Act(Action::ChooseRollback {
                push_id: push.id.clone(),
            }),
            _ => Reply::Unhandled,
        }
    }

    fn click(&mut self, y: u16, area: Rect, _data: &Data) {
        if self.open.is_none() {
            self.rows.click_in(y, list_layout(area)[0]);
        }
    }

    fn keys(&self, ui: &Ui) -> Vec<KeyHelp> {
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
                ("s/S", "sort"),
            ]
        }
    }

    fn fit(&mut self, area: Rect, data: &Data, ui: &Ui) {
        let end = self.shown(data).map_or(0, |push| {
            let (_, lines) = Self::push_page(push, ui, area.width);
            ui.page_end(area, lines)
        });
        self.scroll.fit(end);
    }

    fn draw(&self, f: &mut Frame, area: Rect, data: &Data, ui: &Ui) {
        match self.shown(data) {
            Some(push) => {
                let (title, lines) = Self::push_page(push, ui, area.width);
                ui.page(f, area, title, lines, self.scroll.at());
            }
            None => self.draw_list(f, area, data, ui),
        }
    }
}

/// The list of pushes, and the selected one's panel below it.
fn list_layout(area: Rect) -> [Rect; 2] {
    Layout::vertical([Constraint::Min(4), Constraint::Length(7)]).areas(area)
}
