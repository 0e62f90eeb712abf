//! The detail of a site (Enter on the matrix): every value of its
//! configuration with the file and line it comes from, per server or on
//! one server, and its findings.

use super::{Nav, Screen, ScreenReply, Scroll};
use crate::analysis::{Instance, SiteVerdict};
use crate::config::machine_key::KeyState;
use crate::console::model::{Action, Data};
use crate::console::theme::StyleKey;
use crate::console::ui::{KeyHelp, Ui};
use crate::keys::KeyPurpose;
use crate::report::key_cell;
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

#[derive(Default)]
pub struct Detail {
    /// The site, and the server when it is the site on one server.
    target: Option<(String, Option<String>)>,
    scroll: Scroll,
}

impl Detail {
    pub fn open(&mut self, site: String, server: Option<String>) {
        self.target = Some((site, server));
        self.scroll.top();
    }
}

impl Screen for Detail {
    fn refresh(&mut self, _data: &Data) {}

    fn on_key(&mut self, key: &KeyEvent, _data: &Data) -> ScreenReply {
        if let Some(nav) = Nav::of(key) {
            self.scroll.step(nav);
            return ScreenReply::Done;
        }
        let Some((site, server)) = self.target.clone() else {
            return ScreenReply::Unhandled;
        };
        match key.code {
            KeyCode::Esc => ScreenReply::Back,
            KeyCode::Char('p') => ScreenReply::Act(Action::ChoosePush { site }),
            KeyCode::Char('v') => ScreenReply::reveal(site, server),
            _ => ScreenReply::Unhandled,
        }
    }

    fn focused_server(&self, data: &Data) -> Option<usize> {
        let server = self.target.as_ref()?.1.as_ref()?;
        data.servers.iter().position(|r| r.server.name == *server)
    }

    fn keys(&self, ui: &Ui) -> Vec<KeyHelp> {
        vec![
            (ui.symbols.updown, "scroll"),
            ("Esc", "back"),
            ("p", "push"),
            ("v", "reveal"),
        ]
    }

    fn fit(&mut self, area: Rect, data: &Data, ui: &Ui) {
        let end = self
            .page(data, ui, area.width)
            .map_or(0, |(_, lines)| ui.page_end(area, lines));
        self.scroll.fit(end);
    }

    fn draw(&self, f: &mut Frame, area: Rect, data: &Data, ui: &Ui) {
        if self.target.is_none() {
            return;
        }
        match self.page(data, ui, area.width) {
            Some((title, lines)) => ui.page(f, area, title, lines, self.scroll.at()),
            None => f.render_widget(
                Paragraph::new(" This site is no longer reported.").block(ui.block(" Detail ")),
                area,
            ),
        }
    }
}

impl Detail {
    /// Its title and lines for a panel `width` wide: what is drawn, and
    /// what the scroll's end is counted from. `None`: no site, or one no
    /// longer reported.
    fn page<'a>(&self, data: &'a Data, ui: &Ui, width: u16) -> Option<(String, Vec<Line<'a>>)> {
        let (site_name, server) = self.target.as_ref()?;
        let site = data.report.site(site_name)?;
        let title = match server {
            Some(s) => format!(" {} on {s} ", site.site),
            None => format!(" {} on every server ", site.site),
        };
        let mut lines: Vec<Line> = Vec::new();
        let verdict = site.verdict();
        let state = match verdict {
            SiteVerdict::InStep => Span::styled(
                format!("{} in step", ui.symbols.ok),
                ui.style(StyleKey::SiteOk),
            ),
            SiteVerdict::Drifted => Span::styled(
                format!("{} out of step", ui.symbols.drift),
                ui.style(StyleKey::SiteDrift),
            ),
            SiteVerdict::Unverified => Span::styled(
                format!(
                    "{} unverified: not read on {}",
                    ui.symbols.unverified,
                    site.unverified_on().collect::<Vec<_>>().join(", ")
                ),
                ui.style(StyleKey::Warning),
            ),
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!(
                    " component {}  ",
                    site.component.map_or("(not Cora)", |c| c.name())
                ),
                ui.style(StyleKey::Text),
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
                ui.style(StyleKey::Header),
            ));
            instance_lines(ui, inst, width.saturating_sub(2) as usize, &mut lines);
        }
        for absent in &site.absent_on {
            if server.as_ref().is_none_or(|s| s == absent) {
                lines.push(Line::raw(""));
                lines.push(Line::styled(
                    format!(" {absent}  {} site absent", ui.symbols.absent),
                    ui.style(StyleKey::MatrixMissing),
                ));
            }
        }
        // Servers not read at all (a site's unreadable files show above).
        for u in site
            .unverified
            .iter()
            .filter(|u| site.instance(&u.server).is_none())
        {
            if server.as_ref().is_none_or(|s| *s == u.server) {
                lines.push(Line::raw(""));
                lines.push(Line::styled(
                    format!(
                        " {}  {} not read: {}",
                        u.server, ui.symbols.unverified, u.why
                    ),
                    ui.style(StyleKey::Warning),
                ));
            }
        }
        lines.push(Line::raw(""));
        lines.push(Line::styled(" Findings", ui.style(StyleKey::Title)));
        let relevant: Vec<_> = site
            .findings
            .iter()
            .filter(|x| server.as_ref().is_none_or(|s| x.servers.contains(s)))
            .collect();
        if relevant.is_empty() {
            // No tick where a server was not read.
            let line = match verdict {
                SiteVerdict::InStep => Line::styled(
                    format!(" {} none", ui.symbols.ok),
                    ui.style(StyleKey::SiteOk),
                ),
                _ => Line::styled(" none", ui.style(StyleKey::Text)),
            };
            lines.push(line);
        }
        for x in relevant {
            lines.push(Line::from(vec![
                Span::styled(
                    format!(" {} {} ", ui.severity_symbol(Some(x.severity)), x.code),
                    ui.severity_style(x.severity),
                ),
                Span::styled(x.message.clone(), ui.style(StyleKey::Text)),
            ]));
        }
        Some((title, lines))
    }
}

/// A `key value source` line; the source goes on a line of its own when
/// the three do not fit.
pub(super) fn kv(
    ui: &Ui,
    lines: &mut Vec<Line<'_>>,
    width: usize,
    key: &str,
    value: String,
    source: String,
) {
    let head = vec![
        Span::styled(format!(" {key:<16}"), ui.style(StyleKey::TextDim)),
        Span::styled(format!("{value:<19} "), ui.style(StyleKey::Text)),
    ];
    let used = 17 + value.chars().count().max(19) + 1;
    if used + source.chars().count() <= width {
        let mut spans = head;
        spans.push(Span::styled(source, ui.style(StyleKey::TextDim)));
        lines.push(Line::from(spans));
    } else {
        lines.push(Line::from(head));
        lines.push(Line::styled(
            format!("{:17}{source}", ""),
            ui.style(StyleKey::TextDim),
        ));
    }
}

fn instance_lines(ui: &Ui, inst: &Instance, width: usize, lines: &mut Vec<Line<'_>>) {
    let app_info = &inst.app;
    kv(
        ui,
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
        ui,
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
    // Read through, as IIS reads them; a push never replaces one.
    for (path, link) in &inst.links {
        kv(ui, lines, width, "link", path.to_string(), link.to_string());
    }
    if !app_info.runs_clr() {
        lines.push(Line::styled(
            format!(
                " {} pool {:?} has No Managed Code: no ASP.NET, no machine key",
                ui.symbols.absent, app_info.app_pool
            ),
            ui.style(StyleKey::TextDim),
        ));
        return;
    }
    let eff = match &inst.effective {
        Ok(e) => e,
        Err(p) => {
            lines.push(Line::styled(
                format!(" {} {p}", ui.symbols.unreadable),
                ui.style(StyleKey::Danger),
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
            ui,
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
                value.push_str(&format!(" {} publicly disclosed", ui.symbols.disclosed));
            }
            kv(ui, lines, width, name, value, src.to_string());
        }
    }
    let compat = &mk.compatibility_mode;
    kv(
        ui,
        lines,
        width,
        "compatibility",
        compat.shown().into(),
        compat.source.to_string(),
    );
    kv(
        ui,
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
        ui,
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
    if let Some(d) = &eff.handler.reason {
        lines.push(Line::styled(
            format!("                {d}"),
            ui.style(StyleKey::TextDim),
        ));
    }
}
