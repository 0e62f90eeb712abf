//! Drawing: every function reads the [`App`] and writes to the frame. No
//! view touches the network or the disk.

use super::app::{App, Dialog, Level, Phase, Screen};
use crate::analysis::{Code, Instance, Severity, SiteReport};
use crate::config::effective::{HandlerState, KeyState};
use crate::keys::KeyPurpose;
use crate::report::key_cell;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

/// Below this the console says it is too small instead of drawing.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

const CELL: usize = 13;

pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return too_small(f, app, area);
    }
    let banner = u16::from(app.read_only);
    let [banner_area, header, tabs, body, footer] = Layout::vertical([
        Constraint::Length(banner),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(area);
    if app.read_only {
        f.render_widget(
            Paragraph::new(" READ-ONLY: nothing on the servers can be changed in this session")
                .style(app.theme.style("banner.readonly")),
            banner_area,
        );
    }
    draw_header(f, app, header);
    draw_tabs(f, app, tabs);
    match app.screen {
        Screen::Matrix => draw_matrix(f, app, body),
        Screen::Servers => draw_servers(f, app, body),
        Screen::Findings => draw_findings(f, app, body),
        Screen::Log => draw_log(f, app, body),
        Screen::Detail => draw_detail(f, app, body),
    }
    draw_footer(f, app, footer);
    if app.help {
        draw_help(f, app, area);
    }
    if let Some(d) = app.dialogs.last() {
        draw_dialog(f, app, d, area);
    }
}

fn too_small(f: &mut Frame, app: &App, area: Rect) {
    let text = format!(
        "Terminal too small: farmkey needs {MIN_WIDTH}x{MIN_HEIGHT}, this one is {}x{}. Enlarge the window, or press q to quit.",
        area.width, area.height
    );
    f.render_widget(
        Paragraph::new(text)
            .style(app.theme.style("warning"))
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn truncate(app: &App, s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push_str(app.symbols.ellipsis);
    out
}

fn pad(app: &App, s: &str, width: usize) -> String {
    let t = truncate(app, s, width);
    let n = t.chars().count();
    format!("{t}{}", " ".repeat(width.saturating_sub(n)))
}

fn draw_header(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let ok = app.servers.iter().filter(|r| r.ok() == Some(true)).count();
    let failed = app.servers.iter().filter(|r| r.ok() == Some(false)).count();
    let busy = app.scanning();
    let drifting = app.report.sites.iter().filter(|s| !s.consistent()).count();
    let disclosed = app
        .report
        .sites
        .iter()
        .filter(|s| s.has_disclosed_key())
        .count();
    let sep = || Span::styled(format!(" {} ", app.symbols.sep), t.style("border"));
    let mut spans = vec![
        sep(),
        Span::styled(format!("servers {ok} ok"), t.style("state.ok")),
    ];
    if failed > 0 {
        spans.push(Span::styled(
            format!(", {failed} failed"),
            t.style("state.error"),
        ));
    }
    if busy > 0 {
        spans.push(Span::styled(
            format!(", {busy} scanning {}", app.spinner()),
            t.style("state.busy"),
        ));
    }
    spans.push(sep());
    spans.push(Span::styled("sites ", t.style("text")));
    spans.push(Span::styled(
        app.report.sites.len().to_string(),
        t.style("text"),
    ));
    if drifting > 0 {
        spans.push(Span::styled(
            format!(", {drifting} out of step"),
            t.style("site.drift"),
        ));
    }
    if disclosed > 0 {
        spans.push(Span::styled(
            format!(", {} {disclosed} disclosed", app.symbols.disclosed),
            t.style("danger"),
        ));
    }
    // The state of the farm always shows; the title gets what is left.
    let used: usize = spans.iter().map(|s| s.width()).sum::<usize>() + " farmkey".len() + 3;
    let room = (area.width as usize).saturating_sub(used).max(8);
    let mut line = vec![
        Span::styled(" farmkey", t.style("header")),
        sep(),
        Span::styled(truncate_left(app, &app.title, room), t.style("title")),
    ];
    line.extend(spans);
    f.render_widget(Paragraph::new(Line::from(line)), area);
}

/// Keeps the end of a text (a path's file name matters most).
fn truncate_left(app: &App, s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    let tail: String = s.chars().skip(n - width.saturating_sub(1)).collect();
    format!("{}{tail}", app.symbols.ellipsis)
}

fn draw_tabs(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let mut spans = Vec::new();
    for (i, s) in Screen::TABS.iter().enumerate() {
        let current = *s == app.screen || (app.screen == Screen::Detail && *s == app.back);
        let style = if current {
            t.style("selection")
        } else {
            t.style("text.dim")
        };
        spans.push(Span::styled(format!(" {} {} ", i + 1, s.title()), style));
        spans.push(Span::raw(" "));
    }
    if app.screen == Screen::Detail {
        spans.push(Span::styled(" Detail ", t.style("selection")));
    }
    if app.filter_editing || !app.filter.is_empty() {
        let cursor = if app.filter_editing { "_" } else { "" };
        spans.push(Span::styled(
            format!("  / {}{cursor}", app.filter),
            t.style("footer.key"),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn footer_keys(app: &App) -> Vec<(&'static str, &'static str)> {
    if let Some(d) = app.dialogs.last() {
        return match d {
            Dialog::Secret { .. } => vec![("Enter", "submit"), ("Esc", "cancel")],
            Dialog::Message { .. } => vec![("Enter", "close")],
            Dialog::Revealed { .. } => vec![("any key", "hide")],
            Dialog::ChooseKeys { .. } => vec![
                (app.symbols.updown, "choose"),
                ("Enter", "plan"),
                ("Esc", "cancel"),
            ],
            Dialog::Paste { .. } => vec![
                ("paste", "the element"),
                ("Enter", "use it"),
                ("Esc", "cancel"),
            ],
            Dialog::Pushing {
                interrupting: false,
                ..
            } => vec![("Ctrl-C", "stop and roll back")],
            Dialog::Planning { .. } | Dialog::Pushing { .. } => vec![("", "working...")],
            _ => vec![
                (app.symbols.arrows, "choose"),
                ("Enter", "confirm"),
                ("Esc", "cancel"),
            ],
        };
    }
    if app.filter_editing {
        return vec![
            ("type", "filter sites/servers"),
            ("Enter", "keep"),
            ("Esc", "clear"),
        ];
    }
    let mut keys = match app.screen {
        Screen::Matrix => vec![
            (app.symbols.arrows, "move"),
            ("Enter", "detail"),
            ("p", "push"),
            ("v", "reveal"),
            ("r/R", "rescan"),
        ],
        Screen::Servers => vec![
            (app.symbols.updown, "move"),
            ("R", "rescan server"),
            ("r", "rescan all"),
        ],
        Screen::Findings => vec![
            (app.symbols.updown, "move"),
            ("Enter", "go to site"),
            ("s", "sort"),
        ],
        Screen::Log => vec![(app.symbols.updown, "scroll"), ("G", "newest")],
        Screen::Detail => vec![
            (app.symbols.updown, "scroll"),
            ("Esc", "back"),
            ("p", "push"),
            ("v", "reveal"),
        ],
    };
    keys.extend([
        ("Tab", "next"),
        ("/", "filter"),
        ("?", "help"),
        ("q", "quit"),
    ]);
    keys
}

fn draw_footer(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    if let Some((text, _)) = &app.flash {
        f.render_widget(
            Paragraph::new(format!(" {text}")).style(t.style("warning")),
            area,
        );
        return;
    }
    // When the line is too narrow, the navigation hints go first: help and
    // quit always stay.
    let mut keys = footer_keys(app);
    let width = |keys: &[(&str, &str)]| -> usize {
        keys.iter()
            .map(|(k, w)| k.chars().count() + w.chars().count() + 2)
            .sum()
    };
    for dropped in ["Tab", "/"] {
        if width(&keys) <= area.width as usize {
            break;
        }
        keys.retain(|(k, _)| *k != dropped);
    }
    let mut spans = Vec::new();
    for (k, what) in keys {
        spans.push(Span::styled(format!(" {k}"), t.style("footer.key")));
        spans.push(Span::styled(format!(" {what}"), t.style("footer")));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn block<'a>(app: &App, title: impl Into<Line<'a>>) -> Block<'a> {
    Block::bordered()
        .border_set(app.symbols.border)
        .title(title)
        .border_style(app.theme.style("border.focus"))
        .title_style(app.theme.style("title"))
}

/// The matrix cell of a site on one server: text and style.
fn cell(app: &App, site: &SiteReport, server: usize) -> (String, Style) {
    let t = &app.theme;
    let s = &app.symbols;
    let row = &app.servers[server];
    let name = &row.server.name;
    let Some(scan) = &row.scan else {
        return (
            format!("{} scanning", app.spinner()),
            t.style("matrix.pending"),
        );
    };
    if scan.result.is_err() {
        return (
            format!("{} unreachable", s.unreachable),
            t.style("matrix.problem"),
        );
    }
    let Some(inst) = site.instance(name) else {
        return (format!("{} absent", s.absent), t.style("matrix.missing"));
    };
    let Ok(eff) = &inst.effective else {
        return (
            format!("{} unreadable", s.unreadable),
            t.style("matrix.problem"),
        );
    };
    let mut marks = String::new();
    if inst.is_disclosed() {
        marks.push_str(s.disclosed);
    }
    if eff.handler.state == HandlerState::Dpapi {
        marks.push_str(s.dpapi);
    }
    if algorithms_differ(site, inst) {
        marks.push_str(s.algorithm);
    }
    let (text, style) = match (inst.key_group, &inst.keys) {
        (Some(g), _) => {
            let fp = inst.set_fingerprint.as_deref().unwrap_or("");
            let style = match g {
                'A' => t.style("matrix.match"),
                'B' => t.style("matrix.mismatch"),
                _ => t.style("matrix.mismatch.alt"),
            };
            (format!("{g} {fp}"), style)
        }
        (None, Some((v, d))) => {
            let worst = [v, d]
                .into_iter()
                .find(|k| matches!(k, KeyState::Invalid { .. }))
                .or_else(|| {
                    [v, d]
                        .into_iter()
                        .find(|k| matches!(k, KeyState::Encrypted))
                })
                .unwrap_or(v);
            let (sym, word) = match worst {
                KeyState::Invalid { .. } => (s.invalid, "invalid"),
                KeyState::Encrypted => (s.encrypted, "encrypted"),
                KeyState::AutoGenerate { .. } => (s.auto, "auto"),
                KeyState::Explicit { .. } => (s.auto, "auto"), // the other key is auto-generated
            };
            (format!("{sym} {word}"), t.style("matrix.problem"))
        }
        (None, None) => (
            format!("{} unreadable", s.unreadable),
            t.style("matrix.problem"),
        ),
    };
    let text = if marks.is_empty() {
        text
    } else {
        format!("{text} {marks}")
    };
    let style = if inst.is_disclosed() {
        style.patch(t.style("danger"))
    } else if marks.is_empty() {
        style
    } else {
        style.patch(t.style("matrix.problem"))
    };
    (text, style)
}

/// Whether an instance's algorithms differ from the site's most common ones.
fn algorithms_differ(site: &SiteReport, inst: &Instance) -> bool {
    if !site
        .findings
        .iter()
        .any(|f| f.code == Code::AlgorithmMismatch)
    {
        return false;
    }
    let algs = |i: &Instance| {
        i.effective.as_ref().ok().map(|e| {
            (
                e.machine_key.validation_normalised(),
                e.machine_key.decryption_normalised(),
            )
        })
    };
    let Some(mine) = algs(inst) else { return false };
    let mut counts: Vec<(_, usize)> = Vec::new();
    for pair in site.instances.iter().filter_map(algs) {
        match counts.iter_mut().find(|(p, _)| *p == pair) {
            Some((_, n)) => *n += 1,
            None => counts.push((pair, 1)),
        }
    }
    // The first of the most common pairs counts as the norm.
    let best = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
    counts
        .iter()
        .find(|(_, n)| *n == best)
        .is_some_and(|(p, _)| *p != mine)
}

fn draw_matrix(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let sites = app.visible_sites();
    let servers = app.visible_servers();
    // The table takes what its rows need; the findings panel the rest.
    let table_h = (sites.len().max(1) as u16 + 3).clamp(5, area.height.saturating_sub(7).max(5));
    let [table_area, panel_area] =
        Layout::vertical([Constraint::Length(table_h), Constraint::Min(5)]).areas(area);
    let outer = block(app, format!(" Sites {} servers ", app.symbols.times));
    let inner = outer.inner(table_area);
    f.render_widget(outer, table_area);

    let site_w = sites
        .iter()
        .map(|s| s.site.chars().count() + 3)
        .max()
        .unwrap_or(10)
        .clamp(14, 28);
    let width = inner.width as usize;
    let fit = ((width.saturating_sub(site_w + 1)) / (CELL + 1)).max(1);
    // Keep the selected column in view.
    let sel_col = app.matrix_col.saturating_sub(1);
    let first_col = if app.matrix_col == 0 {
        0
    } else {
        sel_col.saturating_sub(fit - 1).min(sel_col)
    };
    let shown: Vec<usize> = servers.iter().copied().skip(first_col).take(fit).collect();

    let mut lines: Vec<Line> = Vec::new();
    let mut head = vec![Span::styled(pad(app, " SITE", site_w), t.style("text.dim"))];
    for (k, &i) in shown.iter().enumerate() {
        let row = &app.servers[i];
        let mark = match row.phase {
            Phase::Done if row.ok() == Some(false) => app.symbols.unreachable,
            Phase::Done => "",
            _ => app.spinner(),
        };
        let selected = app.matrix_col == first_col + k + 1;
        let style = if selected {
            t.style("border.focus")
        } else {
            t.style("text.dim")
        };
        head.push(Span::raw(" "));
        head.push(Span::styled(
            pad(app, &format!("{}{mark}", row.server.name), CELL),
            style,
        ));
    }
    if servers.len() > shown.len() {
        head.push(Span::styled(
            format!(" +{}", servers.len() - shown.len()),
            t.style("text.dim"),
        ));
    }
    lines.push(Line::from(head));

    let body_rows = inner.height.saturating_sub(1) as usize;
    let first_row = app.matrix_row.saturating_sub(body_rows.saturating_sub(1));
    if sites.is_empty() {
        let msg = if app.scanning() > 0 {
            format!(" {} reading the servers…", app.spinner())
        } else if app.selection.all_sites {
            " No IIS applications found.".to_string()
        } else {
            " No Cora sites found. Press a to show every IIS application.".to_string()
        };
        lines.push(Line::styled(msg, t.style("text.dim")));
    }
    for (r, site) in sites.iter().enumerate().skip(first_row).take(body_rows) {
        let selected_row = r == app.matrix_row;
        let (sym, style) = if site.has_disclosed_key() {
            (app.symbols.disclosed, t.style("danger"))
        } else if site.consistent() {
            (app.symbols.ok, t.style("site.ok"))
        } else {
            (app.symbols.drift, t.style("site.drift"))
        };
        let pointer = if selected_row {
            app.symbols.pointer
        } else {
            " "
        };
        let name_style = if selected_row && app.matrix_col == 0 {
            t.style("selection")
        } else {
            style
        };
        let mut spans = vec![
            Span::styled(pointer.to_string(), t.style("border.focus")),
            Span::styled(
                pad(app, &format!("{sym} {}", site.site), site_w - 1),
                name_style,
            ),
        ];
        for (k, &i) in shown.iter().enumerate() {
            let (text, mut style) = cell(app, site, i);
            if selected_row && app.matrix_col == first_col + k + 1 {
                style = t.style("selection");
            }
            spans.push(Span::raw(" "));
            spans.push(Span::styled(pad(app, &text, CELL), style));
        }
        lines.push(Line::from(spans));
    }
    f.render_widget(Paragraph::new(lines), inner);

    // Why the selected site is out of step.
    let (title, text) = match app.selected_site() {
        Some(site) => (
            format!(" {} ", site.site),
            findings_text(app, site, panel_area.width),
        ),
        None => (" Findings ".to_string(), Text::raw("")),
    };
    f.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .block(block(app, title)),
        panel_area,
    );
}

fn severity_style(app: &App, s: Severity) -> Style {
    app.theme.style(match s {
        Severity::Error => "danger",
        Severity::Warning => "warning",
        Severity::Info => "info",
    })
}

fn findings_text<'a>(app: &App, site: &'a SiteReport, _width: u16) -> Text<'a> {
    let mut findings: Vec<_> = site.findings.iter().collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.urgency()));
    if findings.is_empty() {
        return Text::styled(
            format!("{} In step on every server.", app.symbols.ok),
            app.theme.style("site.ok"),
        );
    }
    let lines: Vec<Line> = findings
        .into_iter()
        .map(|f| {
            Line::from(vec![
                Span::styled(
                    format!("{} {} ", app.severity_symbol(Some(f.severity)), f.code),
                    severity_style(app, f.severity),
                ),
                Span::styled(f.message.clone(), app.theme.style("text")),
            ])
        })
        .collect();
    Text::from(lines)
}

fn draw_servers(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let [list_area, panel_area] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(6)]).areas(area);
    let outer = block(app, " Servers ");
    let inner = outer.inner(list_area);
    f.render_widget(outer, list_area);
    let mut lines = vec![Line::styled(
        format!(
            " {:<14} {:<22} {:<14} {:>7}  ERROR",
            "NAME", "ADDRESS", "STATE", "TIME"
        ),
        t.style("text.dim"),
    )];
    let f_lc = app.filter.to_lowercase();
    let rows = inner.height.saturating_sub(1) as usize;
    let first = app.servers_row.saturating_sub(rows.saturating_sub(1));
    for (i, row) in app.servers.iter().enumerate().skip(first).take(rows) {
        if !f_lc.is_empty() && !row.server.name.to_lowercase().contains(&f_lc) {
            continue;
        }
        let (state, style) = match (row.phase, row.ok()) {
            (Phase::Waiting, _) => (format!("{} waiting", app.spinner()), t.style("state.busy")),
            (Phase::Connecting, _) => (
                format!("{} connecting", app.spinner()),
                t.style("state.busy"),
            ),
            (Phase::Reading, _) => (format!("{} reading", app.spinner()), t.style("state.busy")),
            (Phase::Done, Some(true)) => (format!("{} ok", app.symbols.ok), t.style("state.ok")),
            (Phase::Done, _) => (
                format!("{} error", app.symbols.error),
                t.style("state.error"),
            ),
        };
        let elapsed = match (&row.scan, row.started, row.phase) {
            (Some(s), _, Phase::Done) => format!("{:.2}s", s.elapsed.as_secs_f64()),
            (_, Some(start), _) => format!("{:.1}s", start.elapsed().as_secs_f64()),
            _ => String::new(),
        };
        let selected = i == app.servers_row;
        let base = if selected {
            t.style("selection")
        } else {
            t.style("text")
        };
        let err = row.error().unwrap_or_default();
        lines.push(Line::from(vec![
            Span::styled(format!(" {} ", pad(app, &row.server.name, 14)), base),
            Span::styled(format!("{} ", pad(app, &row.server.address(), 22)), base),
            Span::styled(
                format!("{} ", pad(app, &state, 14)),
                if selected { base } else { style },
            ),
            Span::styled(format!("{elapsed:>7}  "), base),
            Span::styled(
                err,
                if selected {
                    base
                } else {
                    t.style("state.error")
                },
            ),
        ]));
    }
    f.render_widget(Paragraph::new(lines), inner);
    let detail = app
        .servers
        .get(app.servers_row)
        .map(|r| match r.error() {
            Some(e) => Text::styled(e, t.style("state.error")),
            None => Text::styled(
                format!("{} via {}", r.server.name, r.server.address()),
                t.style("text"),
            ),
        })
        .unwrap_or_default();
    f.render_widget(
        Paragraph::new(detail)
            .wrap(Wrap { trim: true })
            .block(block(app, " Server ")),
        panel_area,
    );
}

fn draw_findings(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let [list_area, panel_area] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(7)]).areas(area);
    let order = if app.findings_worst_first {
        "worst first"
    } else {
        "least first"
    };
    let outer = block(app, format!(" Findings ({order}) "));
    let inner = outer.inner(list_area);
    f.render_widget(outer, list_area);
    let findings = app.sorted_findings();
    let mut lines = vec![Line::styled(
        format!("   {:<8} {:<28} {:<22} SERVERS", "SEVERITY", "CODE", "SITE"),
        t.style("text.dim"),
    )];
    let rows = inner.height.saturating_sub(1) as usize;
    let first = app.findings_row.saturating_sub(rows.saturating_sub(1));
    for (i, x) in findings.iter().enumerate().skip(first).take(rows) {
        let selected = i == app.findings_row;
        let style = if selected {
            t.style("selection")
        } else {
            severity_style(app, x.severity)
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!(" {} ", app.severity_symbol(Some(x.severity))),
                style,
            ),
            Span::styled(
                format!(
                    "{} {} {} {}",
                    pad(app, x.severity.name(), 8),
                    pad(app, x.code.name(), 28),
                    pad(app, x.site.as_deref().unwrap_or("(farm)"), 22),
                    x.servers.join(", ")
                ),
                if selected { style } else { t.style("text") },
            ),
        ]));
    }
    if findings.is_empty() {
        lines.push(Line::styled(
            format!(" {} No findings.", app.symbols.ok),
            t.style("site.ok"),
        ));
    }
    f.render_widget(Paragraph::new(lines), inner);
    let message = findings
        .get(app.findings_row)
        .map(|x| x.message.clone())
        .unwrap_or_default();
    f.render_widget(
        Paragraph::new(message)
            .wrap(Wrap { trim: true })
            .block(block(app, " What to do ")),
        panel_area,
    );
}

fn time_of(at: std::time::SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(at).to_string();
    text.get(11..19).unwrap_or("").to_string()
}

fn draw_log(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let outer = block(app, " Log ");
    let inner = outer.inner(area);
    f.render_widget(outer, area);
    let rows = inner.height as usize;
    let end = app.log.len().saturating_sub(app.log_offset);
    let start = end.saturating_sub(rows);
    let lines: Vec<Line> = app.log[start..end]
        .iter()
        .map(|e| {
            let style = t.style(match e.level {
                Level::Info => "log.info",
                Level::Warn => "log.warn",
                Level::Error => "log.error",
            });
            Line::from(vec![
                Span::styled(format!(" {} ", time_of(e.at)), t.style("text.dim")),
                Span::styled(e.text.clone(), style),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

/// A `key value source` line; the source goes on a line of its own when
/// the three do not fit.
fn kv(
    app: &App,
    lines: &mut Vec<Line<'_>>,
    width: usize,
    key: &str,
    value: String,
    source: String,
) {
    let head = vec![
        Span::styled(format!(" {key:<16}"), app.theme.style("text.dim")),
        Span::styled(format!("{value:<19} "), app.theme.style("text")),
    ];
    let used = 17 + value.chars().count().max(19) + 1;
    if used + source.chars().count() <= width {
        let mut spans = head;
        spans.push(Span::styled(source, app.theme.style("text.dim")));
        lines.push(Line::from(spans));
    } else {
        lines.push(Line::from(head));
        lines.push(Line::styled(
            format!("{:17}{source}", ""),
            app.theme.style("text.dim"),
        ));
    }
}

fn instance_lines(app: &App, inst: &Instance, width: usize, lines: &mut Vec<Line<'_>>) {
    let t = &app.theme;
    let app_info = &inst.app;
    kv(
        app,
        lines,
        width,
        "application",
        format!("site id {}", app_info.site_id.as_deref().unwrap_or("?")),
        format!(
            "pool {} ({}, {})",
            app_info.app_pool,
            app_info.runtime,
            app_info.bitness()
        ),
    );
    kv(
        app,
        lines,
        width,
        "web.config",
        match &inst.config_sha256 {
            Some(sha) => format!("sha256 {}", &sha[..8]),
            None => "(none)".into(),
        },
        inst.config_path
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_else(|| app_info.physical_path_raw.clone()),
    );
    let eff = match &inst.effective {
        Ok(e) => e,
        Err(p) => {
            lines.push(Line::styled(
                format!(" {} {p}", app.symbols.unreadable),
                t.style("danger"),
            ));
            return;
        }
    };
    let mk = &eff.machine_key;
    for (name, attr) in [
        ("validation", &mk.validation),
        ("decryption", &mk.decryption),
    ] {
        kv(
            app,
            lines,
            width,
            name,
            attr.shown().into(),
            attr.source.to_string(),
        );
    }
    if let Some((v, d)) = &inst.keys {
        for (name, state, src, purpose) in [
            (
                "validationKey",
                v,
                &mk.validation_key.source,
                KeyPurpose::Validation,
            ),
            (
                "decryptionKey",
                d,
                &mk.decryption_key.source,
                KeyPurpose::Decryption,
            ),
        ] {
            let mut value = match state {
                KeyState::Invalid { reason } => format!("invalid: {reason}"),
                KeyState::Explicit { .. } => format!("explicit {}", key_cell(state)),
                other => key_cell(other),
            };
            if inst.disclosed_key(purpose) {
                value.push_str(&format!(" {} publicly disclosed", app.symbols.disclosed));
            }
            kv(app, lines, width, name, value, src.to_string());
        }
    }
    let compat = &mk.compatibility_mode;
    kv(
        app,
        lines,
        width,
        "compatibility",
        compat.shown().into(),
        compat.source.to_string(),
    );
    kv(
        app,
        lines,
        width,
        "targetFramework",
        eff.target_framework
            .as_ref()
            .map_or("(not set)".into(), |t| t.shown().to_string()),
        eff.target_framework
            .as_ref()
            .map_or(String::new(), |t| t.source.to_string()),
    );
    kv(
        app,
        lines,
        width,
        "session tokens",
        eff.handler.state.name().into(),
        eff.handler
            .source
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
    );
    if let Some(d) = &eff.handler.detail {
        lines.push(Line::styled(
            format!("                {d}"),
            t.style("text.dim"),
        ));
    }
}

fn draw_detail(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let Some((site_name, server)) = &app.detail else {
        return;
    };
    let Some(site) = app.report.site(site_name) else {
        f.render_widget(
            Paragraph::new(" This site is no longer reported.").block(block(app, " Detail ")),
            area,
        );
        return;
    };
    let title = match server {
        Some(s) => format!(" {} on {s} ", site.site),
        None => format!(" {} on every server ", site.site),
    };
    let mut lines: Vec<Line> = Vec::new();
    let state = if site.consistent() {
        Span::styled(format!("{} in step", app.symbols.ok), t.style("site.ok"))
    } else {
        Span::styled(
            format!("{} out of step", app.symbols.drift),
            t.style("site.drift"),
        )
    };
    lines.push(Line::from(vec![
        Span::styled(
            format!(
                " component {}  ",
                site.component.map_or("(not Cora)", |c| c.name())
            ),
            t.style("text"),
        ),
        state,
    ]));
    let instances: Vec<&Instance> = site
        .instances
        .iter()
        .filter(|i| server.as_ref().is_none_or(|s| *s == i.server))
        .collect();
    for inst in instances {
        lines.push(Line::raw(""));
        let group = inst
            .key_group
            .map_or(String::new(), |g| format!("  key set {g}"));
        lines.push(Line::styled(
            format!(" {}{group}", inst.server),
            t.style("header"),
        ));
        instance_lines(app, inst, area.width.saturating_sub(2) as usize, &mut lines);
    }
    for absent in &site.absent_on {
        if server.as_ref().is_none_or(|s| s == absent) {
            lines.push(Line::raw(""));
            lines.push(Line::styled(
                format!(" {absent}  {} site absent", app.symbols.absent),
                t.style("matrix.missing"),
            ));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(" Findings", t.style("title")));
    let relevant: Vec<_> = site
        .findings
        .iter()
        .filter(|x| server.as_ref().is_none_or(|s| x.servers.contains(s)))
        .collect();
    if relevant.is_empty() {
        lines.push(Line::styled(
            format!(" {} none", app.symbols.ok),
            t.style("site.ok"),
        ));
    }
    for x in relevant {
        lines.push(Line::from(vec![
            Span::styled(
                format!(" {} {} ", app.severity_symbol(Some(x.severity)), x.code),
                severity_style(app, x.severity),
            ),
            Span::styled(x.message.clone(), t.style("text")),
        ]));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((app.detail_scroll, 0))
            .block(block(app, title)),
        area,
    );
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width.saturating_sub(2));
    let h = height.min(area.height.saturating_sub(2));
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn draw_help(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let mut lines = vec![Line::styled(
        format!(" {} screen", app.screen.title()),
        t.style("title"),
    )];
    for (k, what) in footer_keys(app) {
        lines.push(Line::from(vec![
            Span::styled(format!("  {k:<10}"), t.style("footer.key")),
            Span::styled(what, t.style("text")),
        ]));
    }
    lines.push(Line::from(vec![
        Span::styled(format!("  {:<10}", "1-4"), t.style("footer.key")),
        Span::styled("Matrix, Servers, Findings, Log", t.style("text")),
    ]));
    lines.push(Line::from(vec![
        Span::styled(format!("  {:<10}", "a"), t.style("footer.key")),
        Span::styled("Cora sites only / every IIS application", t.style("text")),
    ]));
    lines.push(Line::raw(""));
    lines.push(Line::styled(" Marks", t.style("title")));
    for (sym, what) in super::symbols::legend(&app.symbols) {
        lines.push(Line::from(vec![
            Span::styled(format!("  {sym:<4}"), t.style("matrix.problem")),
            Span::styled(what, t.style("text")),
        ]));
    }
    lines.push(Line::styled(
        "  A, B…  key set: same letter, same keys",
        t.style("text"),
    ));
    let h = lines.len() as u16 + 2;
    let r = centered(area, 60, h);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).style(t.style("dialog")).block(
            Block::bordered()
                .border_set(app.symbols.border)
                .title(" Help: any key closes ")
                .title_style(t.style("dialog.title"))
                .border_style(t.style("border.focus")),
        ),
        r,
    );
}

fn draw_dialog(f: &mut Frame, app: &App, dialog: &Dialog, area: Rect) {
    let t = &app.theme;
    let (title, body, danger, focus): (String, Vec<Line>, bool, Option<usize>) = match dialog {
        Dialog::HostKey {
            question, focus, ..
        } => {
            let mut body = vec![
                Line::raw(format!(
                    "{} ({}) presents a host key that",
                    question.server, question.host
                )),
                Line::raw(format!("{} does not hold:", question.known_hosts.display())),
                Line::raw(""),
                Line::styled(
                    format!("  {} {}", question.key_type, question.fingerprint),
                    t.style("reveal"),
                ),
                Line::raw(""),
            ];
            if !question.other_types.is_empty() {
                body.push(Line::styled(
                    format!(
                        "Keys of another type are stored: {}",
                        question.other_types.join(", ")
                    ),
                    t.style("warning"),
                ));
            }
            body.push(Line::raw("Compare the fingerprint with the server's own (ssh-keygen -lf) before trusting it."));
            ("Unknown host key".into(), body, false, Some(*focus))
        }
        Dialog::Secret {
            question, input, ..
        } => {
            let mask = app.symbols.mask;
            (
                "Authentication".into(),
                vec![
                    Line::raw(question.prompt()),
                    Line::raw(""),
                    Line::styled(
                        format!("  {}_", mask.repeat(input.chars().count())),
                        t.style("title"),
                    ),
                ],
                false,
                None,
            )
        }
        Dialog::Message {
            title,
            text,
            danger,
        } => (
            title.clone(),
            text.lines().map(|l| Line::raw(l.to_string())).collect(),
            *danger,
            Some(0),
        ),
        Dialog::ConfirmReveal {
            site,
            server,
            focus,
        } => (
            "Reveal keys?".into(),
            vec![
                Line::raw(format!(
                    "Show the machine keys of {site} on {server} on this screen?"
                )),
                Line::raw(""),
                Line::raw("Anyone who can see the screen (or a recording of it) can forge"),
                Line::raw("authentication tickets for this site. They hide after a few"),
                Line::raw("seconds or at any key."),
            ],
            true,
            Some(*focus),
        ),
        Dialog::ChooseKeys {
            site,
            choices,
            focus,
        } => {
            let mut body = vec![
                Line::raw("Which keys should every server of this site use?"),
                Line::raw(""),
            ];
            if app.report.site(site).is_some_and(|s| s.has_disclosed_key()) {
                body.insert(
                    0,
                    Line::styled(
                        format!(
                            "{} A key of this site is publicly disclosed: generate a new key set.",
                            app.symbols.disclosed
                        ),
                        t.style("danger"),
                    ),
                );
            }
            for (i, c) in choices.iter().enumerate() {
                let selected = i == *focus;
                let style = if selected {
                    t.style("selection")
                } else if c.disabled() {
                    t.style("text.dim")
                } else {
                    t.style("text")
                };
                let pointer = if selected { app.symbols.pointer } else { " " };
                body.push(Line::styled(format!("{pointer} {}", c.label()), style));
            }
            body.push(Line::raw(""));
            body.push(Line::styled(
                "The plan is shown before anything is written.",
                t.style("text.dim"),
            ));
            (format!("Push to {site}"), body, false, None)
        }
        Dialog::Paste { site, text } => {
            let shown = crate::push::diff::mask_keys(text);
            let mut body = vec![
                Line::raw(format!(
                    "Paste the <machineKey> element for {site} (the terminal's paste),"
                )),
                Line::raw("then Enter. Keys are shown as fingerprints."),
                Line::raw(""),
            ];
            for l in shown.lines().take(6) {
                body.push(Line::styled(l.to_string(), t.style("title")));
            }
            body.push(Line::styled("_", t.style("title")));
            ("Import keys".into(), body, false, None)
        }
        Dialog::Planning { site } => (
            format!("Push to {site}"),
            vec![Line::raw(format!(
                "{} Reading the web.config of {site} on every server...",
                app.spinner()
            ))],
            false,
            None,
        ),
        Dialog::ConfirmPush { plan, focus, .. } => {
            let body: Vec<Line> = plan
                .to_string()
                .lines()
                .map(|l| {
                    let style = if l.starts_with("Saving web.config") {
                        t.style("warning")
                    } else {
                        t.style("text")
                    };
                    Line::styled(l.to_string(), style)
                })
                .collect();
            (
                format!("Confirm push {}", plan.push_id),
                body,
                true,
                Some(*focus),
            )
        }
        Dialog::Pushing {
            site,
            lines,
            note,
            interrupting,
        } => {
            let mut body: Vec<Line> = lines
                .iter()
                .map(|(server, status)| Line::raw(format!("{server:<12} {status}")))
                .collect();
            if let Some(n) = note {
                body.push(Line::styled(
                    format!("{} {n}", app.spinner()),
                    t.style("text.dim"),
                ));
            }
            body.push(Line::raw(""));
            if *interrupting {
                body.push(Line::styled(
                    "Interrupting: the server in progress is finished or restored, then the servers already changed are rolled back.",
                    t.style("warning"),
                ));
            } else {
                body.push(Line::styled(
                    "Ctrl-C stops the push between steps and rolls back what it changed.",
                    t.style("text.dim"),
                ));
            }
            (format!("Pushing to {site}"), body, true, None)
        }
        Dialog::Blocked { plan, offer, focus } => {
            let mut body: Vec<Line> = plan
                .to_string()
                .lines()
                .map(|l| {
                    let style = if l.contains("CANNOT BE PUSHED")
                        || l.contains("LOCKED")
                        || l.starts_with("Blocked")
                    {
                        t.style("warning")
                    } else {
                        t.style("text")
                    };
                    Line::styled(l.to_string(), style)
                })
                .collect();
            body.push(Line::raw(""));
            match offer {
                crate::console::app::Offer::Exclude(servers) => {
                    for s in servers {
                        body.push(Line::styled(
                            format!("Leaving {s} out: {}.", crate::push::exclusion_effect(s)),
                            t.style("warning"),
                        ));
                    }
                }
                crate::console::app::Offer::BreakLock => {
                    for h in plan.locks_held() {
                        body.push(Line::styled(
                            format!("Break the lock only if that push no longer runs: {h}."),
                            t.style("warning"),
                        ));
                    }
                }
                crate::console::app::Offer::Nothing => body.push(Line::raw(
                    "Nothing was written. Wait for the push that holds the lock to end.",
                )),
            }
            (
                format!("Push {} blocked: nothing written", plan.push_id),
                body,
                true,
                Some(*focus),
            )
        }
        Dialog::Revealed {
            site,
            server,
            validation_key,
            decryption_key,
            until,
        } => {
            let left = until
                .saturating_duration_since(std::time::Instant::now())
                .as_secs();
            (
                format!("Keys of {site} on {server} (hiding in {left}s)"),
                vec![
                    Line::styled("validationKey", t.style("text.dim")),
                    Line::styled(validation_key.expose().to_string(), t.style("reveal")),
                    Line::raw(""),
                    Line::styled("decryptionKey", t.style("text.dim")),
                    Line::styled(decryption_key.expose().to_string(), t.style("reveal")),
                ],
                false,
                None,
            )
        }
    };
    let width = 76u16.min(area.width.saturating_sub(2));
    let text = Text::from(body);
    // Height: wrapped body, a blank line, the buttons, and borders.
    let inner_w = width.saturating_sub(4).max(1) as usize;
    let body_h: usize = text
        .lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(inner_w))
        .sum();
    // Borders, and a blank line and the buttons when there are buttons.
    let h = (body_h + if focus.is_some() { 4 } else { 2 }) as u16;
    let r = centered(area, width, h);
    f.render_widget(Clear, r);
    let border = if danger {
        t.style("danger")
    } else {
        t.style("border.focus")
    };
    let outer = Block::bordered()
        .borders(Borders::ALL)
        .border_set(app.symbols.border)
        .title(format!(" {title} "))
        .title_style(t.style("dialog.title"))
        .border_style(border)
        .style(t.style("dialog"));
    let inner = outer.inner(r);
    f.render_widget(outer, r);
    let buttons_h = u16::from(focus.is_some());
    let [body_area, buttons_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(buttons_h)]).areas(inner.inner(
            ratatui::layout::Margin {
                horizontal: 1,
                vertical: 0,
            },
        ));
    f.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), body_area);
    let mut spans = Vec::new();
    for (i, b) in dialog.buttons().iter().enumerate() {
        let focused = focus == Some(i);
        let style = if focused {
            t.style("button.focus")
        } else {
            t.style("button")
        };
        spans.push(Span::styled(format!("[ {b} ]"), style));
        spans.push(Span::raw("  "));
    }
    if focus.is_none() {
        spans.clear();
    }
    f.render_widget(Paragraph::new(Line::from(spans)), buttons_area);
}
