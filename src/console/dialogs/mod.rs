//! Modal dialogs, one module each, stacked over the screens: only the top
//! one is drawn and gets the keys. A dialog says what it shows
//! ([`Dialog::view`]), handles its keys, and asks for anything that reaches
//! the outside world with a [`Reply`]; the console performs it where
//! --read-only is enforced.

pub mod host_key;
pub mod message;
pub mod reveal;
pub mod rollback;
pub mod secret;

use super::app::{Action, Data, Work};
use super::theme::StyleKey;
use super::ui::{KeyHelp, Ui, centered, wrapped};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Margin, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

/// What a dialog asks of the console after a key or a message.
pub enum Reply {
    Stay,
    Close,
    /// Perform this action; the dialog stays (it is closed if the action
    /// is refused).
    Act(Action),
    /// Close, then perform this action.
    CloseAnd(Action),
}

/// A long-running operation a dialog shows: the console does not close
/// under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    Idle,
    Pushing,
    RollingBack,
}

/// What a dialog shows: drawn the same way for all of them.
pub struct View {
    pub title: String,
    pub body: Vec<Line<'static>>,
    /// Something on a server could change: a red frame.
    pub danger: bool,
    /// Button labels and the focused one; `None`: no buttons row.
    pub buttons: Option<(Vec<&'static str>, usize)>,
}

pub trait Dialog {
    fn view(&self, ui: &Ui) -> View;
    fn on_key(&mut self, key: &KeyEvent, data: &mut Data) -> Reply;
    /// Its keys, for the footer.
    fn keys(&self, ui: &Ui) -> Vec<KeyHelp>;
    /// Text pasted into the terminal.
    fn on_paste(&mut self, _text: &str) {}
    /// Called every tick: `true` closes it (keys shown for long enough).
    fn expired(&mut self) -> bool {
        false
    }
    /// Whether a worker's message is about what this dialog shows.
    fn takes(&self, _work: &Work) -> bool {
        false
    }
    /// A worker's message it [takes](Dialog::takes).
    fn on_work(&mut self, _work: Work, _data: &mut Data) -> Reply {
        Reply::Stay
    }
    /// It waits for a worker, not for the operator: a worker's question
    /// comes on top of it (the worker it waits for may be the one asking,
    /// or wait for its turn to ask).
    fn waiting(&self) -> bool {
        false
    }
    /// It is a worker's question (a host key, a password).
    fn question(&self) -> bool {
        false
    }
    fn activity(&self) -> Activity {
        Activity::Idle
    }
    /// Asks the operation it shows to stop between steps: `true` when
    /// that is newly asked.
    fn interrupt(&mut self) -> bool {
        false
    }
    /// The console closes: answer whatever a worker waits for.
    fn abandon(&mut self) {}
}

/// A button row's buttons: each dialog names its own.
pub trait Button: Copy + PartialEq + 'static {
    fn label(self) -> &'static str;
}

/// A row of buttons. The first is the default, and what Esc chooses: it
/// is Cancel (or Refuse, or OK) wherever something could change.
#[derive(Debug, Clone)]
pub struct Buttons<B: Button> {
    list: &'static [B],
    focus: usize,
}

impl<B: Button> Buttons<B> {
    pub fn new(list: &'static [B]) -> Buttons<B> {
        Buttons { list, focus: 0 }
    }

    pub fn focused(&self) -> B {
        self.list[self.focus]
    }

    /// Moves the focus; returns the button chosen (Enter or Space: the
    /// focused one; Esc: the first).
    pub fn on_key(&mut self, key: &KeyEvent) -> Option<B> {
        match key.code {
            KeyCode::Left | KeyCode::Char('h') | KeyCode::BackTab => {
                self.focus = self.focus.saturating_sub(1)
            }
            KeyCode::Right | KeyCode::Char('l') | KeyCode::Tab => {
                self.focus = (self.focus + 1).min(self.list.len() - 1)
            }
            KeyCode::Esc => return Some(self.list[0]),
            KeyCode::Enter | KeyCode::Char(' ') => return Some(self.focused()),
            _ => {}
        }
        None
    }

    pub fn view(&self) -> Option<(Vec<&'static str>, usize)> {
        Some((self.list.iter().map(|b| b.label()).collect(), self.focus))
    }
}

/// The footer of a dialog with buttons.
pub fn button_keys(ui: &Ui) -> Vec<KeyHelp> {
    vec![
        (ui.symbols.arrows, "choose"),
        ("Enter", "confirm"),
        ("Esc", "cancel"),
    ]
}

/// Draws a dialog in the middle of `area`.
pub fn draw(f: &mut Frame, area: Rect, dialog: &dyn Dialog, ui: &Ui) {
    let View {
        title,
        body,
        danger,
        buttons,
    } = dialog.view(ui);
    let width = 76u16.min(area.width.saturating_sub(2));
    let body = wrapped(body);
    // As tall as the body wrapped word by word inside the borders and margins.
    let body_h = body.line_count(width.saturating_sub(4).max(1));
    // Borders, and a blank line and the buttons when there are buttons.
    let frame_h = if buttons.is_some() { 4 } else { 2 };
    let h = u16::try_from(body_h + frame_h).unwrap_or(u16::MAX);
    let r = centered(area, width, h);
    f.render_widget(Clear, r);
    let border = ui.style(if danger {
        StyleKey::Danger
    } else {
        StyleKey::BorderFocus
    });
    let outer = Block::bordered()
        .borders(Borders::ALL)
        .border_set(ui.symbols.border)
        .title(format!(" {title} "))
        .title_style(ui.style(StyleKey::DialogTitle))
        .border_style(border)
        .style(ui.style(StyleKey::Dialog));
    let inner = outer.inner(r);
    f.render_widget(outer, r);
    let buttons_h = u16::from(buttons.is_some());
    let [body_area, buttons_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(buttons_h)]).areas(inner.inner(
            Margin {
                horizontal: 1,
                vertical: 0,
            },
        ));
    f.render_widget(body, body_area);
    let mut spans = Vec::new();
    if let Some((labels, focus)) = buttons {
        for (i, b) in labels.iter().enumerate() {
            let style = ui.style(if i == focus {
                StyleKey::ButtonFocus
            } else {
                StyleKey::Button
            });
            spans.push(Span::styled(format!("[ {b} ]"), style));
            spans.push(Span::raw("  "));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), buttons_area);
}
