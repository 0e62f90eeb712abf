//! Modal dialogs, one module each, stacked over the screens: only the top
//! one is drawn and gets the keys. A dialog says what it shows
//! ([`Dialog::view`]), handles its keys, and asks for anything that reaches
//! the outside world with a [`DialogReply`]; the console performs it where
//! --read-only is enforced.

pub mod host_key;
pub mod message;
pub mod reveal;
pub mod rollback;
pub mod secret;

use super::model::{Action, Data, Work};
use super::theme::StyleKey;
use super::ui::{KeyHelp, Ui, centered, wrapped};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Margin, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

/// What a dialog asks of the console after a key or a message.
pub enum DialogReply {
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
    fn on_key(&mut self, key: &KeyEvent, data: &mut Data) -> DialogReply;
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
    fn on_work(&mut self, _work: Work, _data: &mut Data) -> DialogReply {
        DialogReply::Stay
    }
    /// It waits for a worker, not for the operator: a worker's question
    /// comes on top of it (the worker it waits for may be the one asking,
    /// or wait for its turn to ask).
    fn waiting(&self) -> bool {
        false
    }
    /// It shows something that moves every tick (a spinner, a countdown).
    fn ticking(&self) -> bool {
        self.waiting()
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
    /// The dialog of unknown host keys, which gathers every such question.
    fn host_keys(&mut self) -> Option<&mut host_key::HostKeys> {
        None
    }
    /// It reads ↑/↓ and j/k itself (a choice, typed text, any key to
    /// close): they never scroll it.
    fn own_keys(&self) -> bool {
        false
    }
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
        (ui.symbols.leftright, "choose"),
        ("Enter", "confirm"),
        ("Esc", "cancel"),
    ]
}

/// A dialog as the console shows it: the dialog, and how far its body is
/// scrolled when it is taller than the terminal allows (the buttons stay
/// in view). The console's keys scroll it (↑/↓, j/k, PgUp/PgDn, Home/End,
/// g/G), unless the dialog [reads them itself](Dialog::own_keys). A button
/// that acts (any but the first, which cancels) acts only once the end of
/// the body was shown: nothing is confirmed unread.
pub struct Shown {
    pub dialog: Box<dyn Dialog>,
    /// The title the scroll is for: a dialog that turns to another page
    /// (a plan, then its result) opens it at its top.
    title: String,
    /// The body's rows scrolled past.
    at: u16,
    /// How far it scrolls, and the rows it shows at once, as last fitted.
    end: u16,
    page: u16,
    /// Its last row was on screen since the page opened.
    read: bool,
}

impl Shown {
    pub fn new(dialog: Box<dyn Dialog>) -> Shown {
        Shown {
            dialog,
            title: String::new(),
            at: 0,
            end: 0,
            page: 0,
            read: false,
        }
    }

    /// Fits the scroll to the dialog as drawn in `area` (the terminal).
    pub fn fit(&mut self, area: Rect, ui: &Ui) {
        let view = self.dialog.view(ui);
        if view.title != self.title {
            self.title = view.title.clone();
            self.at = 0;
            self.read = false;
        }
        let g = Geometry::of(area, &view);
        (self.end, self.page) = (g.end, g.body.height);
        self.at = self.at.min(self.end);
        self.read |= self.at >= self.end;
    }

    /// Its body is taller than its frame, and the console's keys scroll it.
    pub fn scrolls(&self) -> bool {
        self.end > 0 && !self.dialog.own_keys()
    }

    /// Scrolls for a key that scrolls; `false`: not such a key.
    pub fn scroll(&mut self, key: &KeyEvent) -> bool {
        if !self.scrolls() {
            return false;
        }
        let page = self.page.saturating_sub(1).max(1);
        self.at = match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.at.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => self.at.saturating_add(1),
            KeyCode::PageUp => self.at.saturating_sub(page),
            KeyCode::PageDown => self.at.saturating_add(page),
            KeyCode::Home | KeyCode::Char('g') => 0,
            KeyCode::End | KeyCode::Char('G') => self.end,
            _ => return false,
        }
        .min(self.end);
        self.read |= self.at >= self.end;
        true
    }

    /// A key for the dialog: scrolls it, or goes to it; a button that acts
    /// waits until the end of the body was shown (its frame says so).
    pub fn on_key(&mut self, key: &KeyEvent, data: &mut Data, ui: &Ui) -> DialogReply {
        if self.scroll(key) {
            return DialogReply::Stay;
        }
        if matches!(key.code, KeyCode::Enter | KeyCode::Char(' ')) && self.waiting(ui) {
            return DialogReply::Stay;
        }
        self.dialog.on_key(key, data)
    }

    /// The focused button acts, and the end of the body was not shown yet.
    fn waiting(&self, ui: &Ui) -> bool {
        !self.read
            && self.scrolls()
            && matches!(self.dialog.view(ui).buttons, Some((_, focus)) if focus > 0)
    }

    /// Its keys, for the footer: the dialog's, and scrolling when it does.
    pub fn keys(&self, ui: &Ui) -> Vec<KeyHelp> {
        let mut keys = self.dialog.keys(ui);
        if self.scrolls() {
            keys.insert(0, (ui.symbols.updown, "scroll"));
        }
        keys
    }
}

/// Where a dialog's parts are drawn in an area.
struct Geometry {
    frame: Rect,
    /// The body's rows shown at once (a blank row under them when there
    /// are buttons).
    body: Rect,
    buttons: Rect,
    /// How far the body scrolls: its rows wrapped, less those shown.
    end: u16,
}

impl Geometry {
    fn of(area: Rect, view: &View) -> Geometry {
        let width = 76u16.min(area.width.saturating_sub(2));
        // As tall as the body wrapped word by word inside the borders and
        // margins, as far as the area allows.
        let rows = wrapped(view.body.clone()).line_count(width.saturating_sub(4).max(1));
        let rows = u16::try_from(rows).unwrap_or(u16::MAX);
        // Borders, and a blank row and the buttons when there are buttons.
        let buttons_h = u16::from(view.buttons.is_some());
        let frame = centered(area, width, rows.saturating_add(2 + 2 * buttons_h));
        let inner = Block::bordered().inner(frame).inner(Margin {
            horizontal: 1,
            vertical: 0,
        });
        let [body, _, buttons] = Layout::vertical([
            Constraint::Fill(1),
            Constraint::Length(buttons_h),
            Constraint::Length(buttons_h),
        ])
        .areas(inner);
        Geometry {
            frame,
            body,
            buttons,
            end: rows.saturating_sub(body.height),
        }
    }
}

/// Draws the dialog in the middle of `area`, its body scrolled as fitted.
pub fn draw(f: &mut Frame, area: Rect, shown: &Shown, ui: &Ui) {
    let view = shown.dialog.view(ui);
    let g = Geometry::of(area, &view);
    // Within the body as drawn here (the same as fitted, but on a test's
    // terminal of another size).
    let at = shown.at.min(g.end);
    let View {
        title,
        body,
        danger,
        buttons,
    } = view;
    f.render_widget(Clear, g.frame);
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
    let first = if shown.waiting(ui) {
        ": read to the end first"
    } else {
        ""
    };
    let outer = ui.more(outer, at, g.end, first);
    f.render_widget(outer, g.frame);
    f.render_widget(wrapped(body).scroll((at, 0)), g.body);
    let mut spans = Vec::new();
    if let Some((labels, focus)) = buttons {
        // A button that acts looks off until the end was shown.
        let waiting = !shown.read && shown.scrolls();
        for (i, b) in labels.iter().enumerate() {
            let style = ui.style(if i == focus {
                StyleKey::ButtonFocus
            } else if waiting && i > 0 {
                StyleKey::TextDim
            } else {
                StyleKey::Button
            });
            spans.push(Span::styled(format!("[ {b} ]"), style));
            spans.push(Span::raw("  "));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), g.buttons);
}
