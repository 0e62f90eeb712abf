//! The frame around the screens: header, tabs, footer, the help overlay
//! (drawn by [`super::help`]), and the dialog on top. What is inside comes from the screen shown and
//! the top dialog, each drawn by its own module. Drawing reads the [`App`]
//! and cannot change it; no view touches the network or the disk.

use super::app::App;
use super::dialogs::{self, Activity};
use super::screens::ScreenId;
use super::theme::StyleKey;
use super::ui::{KeyHelp, MIN_HEIGHT, MIN_WIDTH, areas, fits};
use crate::analysis::SiteVerdict;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    if !fits(area.as_size()) {
        return too_small(f, app, area);
    }
    let [banner_area, header, tabs, body, footer] = areas(area, app.read_only);
    if app.read_only {
        f.render_widget(
            Paragraph::new(" READ-ONLY: nothing on the servers can be changed in this session")
                .style(app.ui.style(StyleKey::BannerReadonly)),
            banner_area,
        );
    }
    draw_header(f, app, header);
    draw_tabs(f, app, tabs);
    app.screens
        .get(app.screen)
        .draw(f, body, &app.data, &app.ui);
    draw_footer(f, app, footer);
    if let Some(help) = &app.help {
        help.draw(f, area, &app.ui, &app.help_state());
    }
    if let Some(d) = app.dialogs.last() {
        dialogs::draw(f, area, d, &app.ui);
    }
}

/// The banner (under --read-only), header, tabs, body and footer.
/// Nothing but this is drawn, so no key but q and Ctrl-C acts
/// ([`App::update`]): what q does then depends on what runs.
fn too_small(f: &mut Frame, app: &App, area: Rect) {
    let then = match app.activity() {
        Activity::Idle => "Enlarge the window, or press q to quit.",
        Activity::Pushing => {
            "A push is running: enlarge the window to follow it, or press q to stop it (it rolls back what it changed)."
        }
        Activity::RollingBack => {
            "A rollback is running (it is not interrupted): enlarge the window to follow it."
        }
    };
    let text = format!(
        "Terminal too small: farmkey needs {MIN_WIDTH}x{MIN_HEIGHT}, this one is {}x{}. {then}",
        area.width, area.height
    );
    f.render_widget(
        Paragraph::new(text)
            .style(app.ui.style(StyleKey::Warning))
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn draw_header(f: &mut Frame, app: &App, area: Rect) {
    let (ui, data) = (&app.ui, &app.data);
    let ok = data.servers.iter().filter(|r| r.ok() == Some(true)).count();
    let failed = data
        .servers
        .iter()
        .filter(|r| r.ok() == Some(false))
        .count();
    let busy = data.scanning();
    let count = |v: SiteVerdict| {
        data.report
            .sites
            .iter()
            .filter(|s| s.verdict() == v)
            .count()
    };
    let drifting = count(SiteVerdict::Drifted);
    let unverified = count(SiteVerdict::Unverified);
    let disclosed = data
        .report
        .sites
        .iter()
        .filter(|s| s.has_disclosed_key())
        .count();
    let sep = || Span::styled(format!(" {} ", ui.symbols.sep), ui.style(StyleKey::Border));
    let mut spans = vec![
        sep(),
        Span::styled(format!("servers {ok} ok"), ui.style(StyleKey::StateOk)),
    ];
    if failed > 0 {
        spans.push(Span::styled(
            format!(", {failed} failed"),
            ui.style(StyleKey::StateError),
        ));
    }
    if busy > 0 {
        spans.push(Span::styled(
            format!(", {busy} scanning {}", ui.spinner()),
            ui.style(StyleKey::StateBusy),
        ));
    }
    spans.push(sep());
    // The counts of the sites, in words; by their marks alone when the
    // words would not fit beside the name (`sites 2, ? 2`), so that no
    // count is ever cut off.
    // (count, mark, word, style, the mark shown beside the word too)
    let counts = [
        (
            drifting,
            ui.symbols.drift,
            "out of step",
            StyleKey::SiteDrift,
            false,
        ),
        (
            unverified,
            ui.symbols.unverified,
            "unverified",
            StyleKey::Warning,
            true,
        ),
        (
            disclosed,
            ui.symbols.disclosed,
            "disclosed",
            StyleKey::Danger,
            true,
        ),
    ];
    let sites = |compact: bool| {
        let mut out = vec![Span::styled(
            format!("sites {}", data.report.sites.len()),
            ui.style(StyleKey::Text),
        )];
        for (n, mark, word, style, marked) in counts {
            if n == 0 {
                continue;
            }
            let text = match (compact, marked) {
                (true, _) => format!(", {mark} {n}"),
                (false, false) => format!(", {n} {word}"),
                (false, true) => format!(", {mark} {n} {word}"),
            };
            out.push(Span::styled(text, ui.style(style)));
        }
        out
    };
    let width = |spans: &[Span]| spans.iter().map(|s| s.width()).sum::<usize>();
    let fixed = width(&spans) + " farmkey".len() + 3;
    let full = sites(false);
    if fixed + width(&full) + 8 <= area.width as usize {
        spans.extend(full);
    } else {
        spans.extend(sites(true));
    }
    // The state of the farm always shows; the title gets what is left,
    // down to its ellipsis.
    let used: usize = width(&spans) + " farmkey".len() + 3;
    let room = (area.width as usize).saturating_sub(used).max(1);
    let mut line = vec![
        Span::styled(" farmkey", ui.style(StyleKey::Header)),
        sep(),
        Span::styled(
            ui.truncate_left(&data.title, room),
            ui.style(StyleKey::Title),
        ),
    ];
    line.extend(spans);
    f.render_widget(Paragraph::new(Line::from(line)), area);
}

fn draw_tabs(f: &mut Frame, app: &App, area: Rect) {
    let ui = &app.ui;
    let back = app.back.last().copied();
    let mut spans = Vec::new();
    for (i, s) in ScreenId::TABS.iter().enumerate() {
        let current = *s == app.screen || (app.screen == ScreenId::Detail && Some(*s) == back);
        let style = ui.style(if current {
            StyleKey::Selection
        } else {
            StyleKey::TextDim
        });
        spans.push(Span::styled(s.tab_label(i), style));
        spans.push(Span::raw(" "));
    }
    if app.screen == ScreenId::Detail {
        spans.push(Span::styled(" Detail ", ui.style(StyleKey::Selection)));
    }
    let filter = &app.data.filter;
    if filter.editing || !filter.is_empty() {
        let cursor = if filter.editing { "_" } else { "" };
        spans.push(Span::styled(
            format!("  / {}{cursor}", filter.text()),
            ui.style(StyleKey::FooterKey),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The keys that apply now: the top dialog's, the filter's, or the
/// screen's and the console's.
fn footer_keys(app: &App) -> Vec<KeyHelp> {
    if let Some(d) = app.dialogs.last() {
        return d.keys(&app.ui);
    }
    if app.data.filter.editing {
        return vec![
            ("type", "filter sites/servers"),
            ("Enter", "keep"),
            ("Esc", "clear"),
        ];
    }
    let mut keys = app.screens.get(app.screen).keys(&app.ui);
    // What would change a server is not offered under --read-only.
    keys.retain(|(k, _)| {
        crate::console::keys::KEYS
            .iter()
            .all(|d| d.offered(app.read_only) || !d.keys.contains(k))
    });
    // The toggle says what it shows now.
    let sites = if app.data.selection.all_sites {
        "all"
    } else {
        "Cora"
    };
    keys.extend([("Tab", "next"), ("a", sites)]);
    if app.screen != ScreenId::Detail {
        keys.push(("/", "filter"));
    }
    keys.extend([("?", "help"), ("q", "quit")]);
    keys
}

fn draw_footer(f: &mut Frame, app: &App, area: Rect) {
    let ui = &app.ui;
    if let Some((text, _)) = &app.flash {
        f.render_widget(
            Paragraph::new(format!(" {text}")).style(ui.style(StyleKey::Warning)),
            area,
        );
        return;
    }
    // When the line is too narrow, the navigation hints go first: help and
    // quit always stay.
    let mut keys = footer_keys(app);
    let width = |keys: &[KeyHelp]| -> usize {
        keys.iter()
            .map(|(k, w)| k.chars().count() + w.chars().count() + 2)
            .sum()
    };
    for dropped in ["Tab", "a", "/"] {
        if width(&keys) <= area.width as usize {
            break;
        }
        keys.retain(|(k, _)| *k != dropped);
    }
    let mut spans = Vec::new();
    for (k, what) in keys {
        spans.push(Span::styled(format!(" {k}"), ui.style(StyleKey::FooterKey)));
        spans.push(Span::styled(format!(" {what}"), ui.style(StyleKey::Footer)));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}
