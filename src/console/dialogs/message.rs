//! A message with an OK button: an error, a refusal, a result.

use super::{Dialog, DialogReply, View};
use crate::console::model::Data;
use crate::console::ui::{KeyHelp, Ui};
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::text::Line;

pub struct Message {
    title: String,
    text: String,
    danger: bool,
}

impl Message {
    pub fn new(title: impl Into<String>, text: impl Into<String>, danger: bool) -> Message {
        Message {
            title: title.into(),
            text: text.into(),
            danger,
        }
    }
}

impl Dialog for Message {
    fn view(&self, _ui: &Ui) -> View {
        View {
            title: self.title.clone(),
            body: self
                .text
                .lines()
                .map(|l| Line::raw(l.to_string()))
                .collect(),
            danger: self.danger,
            buttons: Some((vec!["OK"], 0)),
        }
    }

    fn on_key(&mut self, key: &KeyEvent, _data: &mut Data) -> DialogReply {
        match key.code {
            KeyCode::Enter | KeyCode::Esc | KeyCode::Char(' ') | KeyCode::Char('q') => {
                DialogReply::Close
            }
            _ => DialogReply::Stay,
        }
    }

    fn keys(&self, _ui: &Ui) -> Vec<KeyHelp> {
        vec![("Enter", "close")]
    }
}
