//! The screens, one module each. A screen owns its cursor and the rows it
//! shows: [`Screen::refresh`] builds them once from the data, and both its
//! keys and its drawing use that one list, so the cursor can only ever be
//! on a row that is on screen. Each module also lists its keys, for the
//! footer and the help.

pub mod detail;
pub mod findings;
pub mod history;
pub mod log;
pub mod matrix;
pub mod servers;

use super::dialogs::Dialog;
use super::dialogs::reveal::ConfirmReveal;
use super::model::{Action, Data};
use super::ui::{KeyHelp, Ui};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreenId {
    Matrix,
    Servers,
    Findings,
    Log,
    History,
    /// A site, or a site on one server: opened from the matrix.
    Detail,
}

impl ScreenId {
    /// The screens with a number key and a tab, in that order.
    pub const TABS: [ScreenId; 5] = [
        ScreenId::Matrix,
        ScreenId::Servers,
        ScreenId::Findings,
        ScreenId::Log,
        ScreenId::History,
    ];

    /// The tab as drawn, `i`th: ` 1 Matrix `, then a space before the next.
    pub fn tab_label(self, i: usize) -> String {
        format!(" {} {} ", i + 1, self.title())
    }

    /// The tab drawn at column `x` of the tabs' row.
    pub fn tab_at(x: u16) -> Option<ScreenId> {
        let mut left = 0usize;
        for (i, s) in ScreenId::TABS.iter().enumerate() {
            let right = left + s.tab_label(i).chars().count();
            if (left..right).contains(&usize::from(x)) {
                return Some(*s);
            }
            left = right + 1;
        }
        None
    }

    pub fn title(self) -> &'static str {
        match self {
            ScreenId::Matrix => "Matrix",
            ScreenId::Servers => "Servers",
            ScreenId::Findings => "Findings",
            ScreenId::Log => "Log",
            ScreenId::History => "History",
            ScreenId::Detail => "Detail",
        }
    }
}

/// What a key on a screen asks of the console.
pub enum ScreenReply {
    /// Not a key of this screen: the console's own keys apply (Esc clears
    /// the filter).
    Unhandled,
    Done,
    /// An action that reaches the outside world (where --read-only is
    /// enforced).
    Act(Action),
    Open(Box<dyn Dialog>),
    /// A short word in the footer.
    Flash(String),
    /// The detail of a site, or of a site on one server.
    Detail {
        site: String,
        server: Option<String>,
    },
    /// Back to the screen the detail was opened from.
    Back,
    /// The site's row in the matrix.
    ShowSite(String),
}

impl ScreenReply {
    /// `v` on a site, or on a site on one server: only the latter has keys
    /// to reveal (after a confirmation).
    pub fn reveal(site: String, server: Option<String>) -> ScreenReply {
        match server {
            Some(server) => ScreenReply::Open(Box::new(ConfirmReveal::new(site, server))),
            None => ScreenReply::Flash(
                "select a site on one server (a cell of the matrix) to reveal its keys".into(),
            ),
        }
    }
}

pub trait Screen {
    /// Rebuilds the rows shown from the data; the cursor stays on its row
    /// when that is still shown.
    fn refresh(&mut self, data: &Data);
    fn on_key(&mut self, key: &KeyEvent, data: &Data) -> ScreenReply;
    fn draw(&self, f: &mut Frame, area: Rect, data: &Data, ui: &Ui);
    /// Called after every change (a key, new data, a resize) with the
    /// area it is drawn in: a page keeps its scroll within its lines.
    fn fit(&mut self, _area: Rect, _data: &Data, _ui: &Ui) {}
    /// Its keys, for the footer and the help.
    fn keys(&self, ui: &Ui) -> Vec<KeyHelp>;
    /// The server the cursor is on (index into the data's servers), for `R`.
    fn focused_server(&self, _data: &Data) -> Option<usize> {
        None
    }
    /// A click (with --mouse) on row `y` of the terminal, the screen drawn
    /// in `area`: the cursor goes to the row clicked, if it is one.
    fn click(&mut self, _y: u16, _area: Rect, _data: &Data) {}
}

/// Every screen's state.
#[derive(Default)]
pub struct Screens {
    pub matrix: matrix::Matrix,
    pub servers: servers::Servers,
    pub findings: findings::Findings,
    pub log: log::Log,
    pub history: history::HistoryScreen,
    pub detail: detail::Detail,
    /// Screens whose rows were built from older data: built again when
    /// shown, so that a change costs only the screen on view.
    outdated: [bool; 6],
}

impl Screens {
    pub fn get(&self, id: ScreenId) -> &dyn Screen {
        match id {
            ScreenId::Matrix => &self.matrix,
            ScreenId::Servers => &self.servers,
            ScreenId::Findings => &self.findings,
            ScreenId::Log => &self.log,
            ScreenId::History => &self.history,
            ScreenId::Detail => &self.detail,
        }
    }

    pub fn get_mut(&mut self, id: ScreenId) -> &mut dyn Screen {
        match id {
            ScreenId::Matrix => &mut self.matrix,
            ScreenId::Servers => &mut self.servers,
            ScreenId::Findings => &mut self.findings,
            ScreenId::Log => &mut self.log,
            ScreenId::History => &mut self.history,
            ScreenId::Detail => &mut self.detail,
        }
    }

    /// The data changed: every screen's rows are out of date.
    pub fn data_changed(&mut self) {
        self.outdated = [true; 6];
    }

    /// Builds a screen's rows again if the data changed since it last did.
    pub fn refresh(&mut self, id: ScreenId, data: &Data) {
        if std::mem::take(&mut self.outdated[id as usize]) {
            self.get_mut(id).refresh(data);
        }
    }
}

/// Moving through a list or a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Top,
    Bottom,
}

impl Nav {
    pub fn of(key: &KeyEvent) -> Option<Nav> {
        Some(match key.code {
            KeyCode::Up | KeyCode::Char('k') => Nav::Up,
            KeyCode::Down | KeyCode::Char('j') => Nav::Down,
            KeyCode::Left | KeyCode::Char('h') => Nav::Left,
            KeyCode::Right | KeyCode::Char('l') => Nav::Right,
            KeyCode::PageUp => Nav::PageUp,
            KeyCode::PageDown => Nav::PageDown,
            KeyCode::Char('g') | KeyCode::Home => Nav::Top,
            KeyCode::Char('G') | KeyCode::End => Nav::Bottom,
            _ => return None,
        })
    }

    /// The row a cursor on row `at` of `len` rows moves to.
    pub fn step(self, at: usize, len: usize) -> usize {
        let last = len.saturating_sub(1);
        match self {
            Nav::Up => at.saturating_sub(1),
            Nav::Down => (at + 1).min(last),
            Nav::PageUp => at.saturating_sub(10),
            Nav::PageDown => (at + 10).min(last),
            Nav::Top => 0,
            Nav::Bottom => last,
            Nav::Left | Nav::Right => at,
        }
    }
}

/// A table's order: the column it is sorted by (0: the table's own order)
/// and whether that is reversed. `s` takes the next column, `S` reverses.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: usize,
    pub reversed: bool,
}

impl Sort {
    /// `s` or `S` on a table of `columns` orders: whether it was one.
    pub fn on_key(&mut self, key: &KeyEvent, columns: usize) -> bool {
        match key.code {
            KeyCode::Char('s') => self.column = (self.column + 1) % columns.max(1),
            KeyCode::Char('S') => self.reversed = !self.reversed,
            _ => return false,
        }
        true
    }

    /// Sorts `rows` (stable: equal rows keep the table's own order) by
    /// `cmp` for the column, then reverses them if asked.
    pub fn apply(
        &self,
        rows: &mut [usize],
        cmp: impl Fn(usize, usize, usize) -> std::cmp::Ordering,
    ) {
        rows.sort_by(|&a, &b| cmp(self.column, a, b));
        if self.reversed {
            rows.reverse();
        }
    }

    /// ` (by state, reversed)` for a title: nothing in the table's own order.
    pub fn label(&self, names: &[&str]) -> String {
        let by = names.get(self.column).copied().unwrap_or("");
        match (self.column, self.reversed) {
            (0, false) => String::new(),
            (0, true) => " (reversed)".to_string(),
            (_, false) => format!(" (by {by})"),
            (_, true) => format!(" (by {by}, reversed)"),
        }
    }
}

/// The first row to draw so that row `at` shows in `height` rows.
pub fn first_shown(at: usize, height: usize) -> usize {
    at.saturating_sub(height.saturating_sub(1))
}

/// How far a page (the detail, a push) is scrolled, kept within its lines
/// as drawn: the end is where its last line is on the panel's last row.
#[derive(Debug, Default)]
pub struct Scroll {
    at: u16,
    end: u16,
}

impl Scroll {
    /// The lines scrolled past.
    pub fn at(&self) -> u16 {
        self.at
    }

    pub fn top(&mut self) {
        self.at = 0;
    }

    /// How far it scrolls: 0 when it all shows.
    pub fn end(&self) -> u16 {
        self.end
    }

    pub fn step(&mut self, nav: Nav) {
        self.at = nav.step(usize::from(self.at), usize::from(self.end) + 1) as u16;
    }

    /// The page's end, counted for the area it is drawn in.
    pub fn fit(&mut self, end: u16) {
        self.end = end;
        self.at = self.at.min(end);
    }
}

/// The rows a list screen shows (indices into its data, in the order
/// shown) and the cursor on them.
#[derive(Debug, Default)]
pub struct Rows {
    list: Vec<usize>,
    cursor: usize,
}

impl Rows {
    /// The row the cursor is on (index into the data).
    pub fn selected(&self) -> Option<usize> {
        self.list.get(self.cursor).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Shows `list`; the cursor goes to the first row `same` says is the
    /// one it was on, else stays where it was (within the rows).
    pub fn set(&mut self, list: Vec<usize>, same: impl Fn(usize) -> bool) {
        self.list = list;
        self.cursor = self
            .list
            .iter()
            .position(|&i| same(i))
            .unwrap_or(self.cursor)
            .min(self.list.len().saturating_sub(1));
    }

    pub fn step(&mut self, nav: Nav) {
        self.cursor = nav.step(self.cursor, self.list.len());
    }

    /// For [`Ui::more`](super::ui::Ui::more): the rows above those shown
    /// in `height` lines, and how many could be.
    pub fn more(&self, height: usize) -> (u16, u16) {
        let clamp = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
        (
            clamp(first_shown(self.cursor, height)),
            clamp(self.list.len().saturating_sub(height)),
        )
    }

    /// The cursor goes to the `k`th row drawn of [`shown`](Rows::shown)`(height)`.
    pub fn click(&mut self, k: usize, height: usize) {
        let at = first_shown(self.cursor, height) + k;
        if k < height && at < self.list.len() {
            self.cursor = at;
        }
    }

    /// A click on terminal row `y` of a list drawn in `area` (a border,
    /// then a heading line, then the rows).
    pub fn click_in(&mut self, y: u16, area: Rect) {
        let first = area.y + 2;
        let height = area.height.saturating_sub(3);
        if y >= first {
            self.click(usize::from(y - first), usize::from(height));
        }
    }

    /// The rows that fit in `height` lines with the cursor's among them:
    /// each with whether the cursor is on it.
    pub fn shown(&self, height: usize) -> impl Iterator<Item = (usize, bool)> + '_ {
        self.list
            .iter()
            .enumerate()
            .skip(first_shown(self.cursor, height))
            .take(height)
            .map(|(k, &i)| (i, k == self.cursor))
    }
}

/// Server indices shown: those whose name matches the filter, or all when
/// none does (the filter then names sites).
pub fn servers_shown(data: &Data) -> Vec<usize> {
    let matching: Vec<usize> = (0..data.servers.len())
        .filter(|&i| data.filter.matches(&data.servers[i].server.name))
        .collect();
    if matching.is_empty() {
        (0..data.servers.len()).collect()
    } else {
        matching
    }
}
