//! A password or passphrase a connection worker asks for, typed masked.

use super::{Dialog, DialogReply, View};
use crate::console::model::Data;
use crate::console::theme::StyleKey;
use crate::console::ui::{KeyHelp, Ui};
use crate::transport::SecretQuestion;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::text::Line;
use secrecy::SecretString;
use std::sync::mpsc::Sender;
use zeroize::Zeroizing;

pub struct Secret {
    question: SecretQuestion,
    input: Zeroizing<String>,
    /// The worker waits here; `None` is no answer.
    reply: Option<Sender<Option<SecretString>>>,
}

impl Secret {
    pub fn new(question: SecretQuestion, reply: Sender<Option<SecretString>>) -> Secret {
        Secret {
            question,
            input: Zeroizing::new(String::new()),
            reply: Some(reply),
        }
    }

    fn answer(&mut self, secret: Option<SecretString>) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(secret);
        }
    }
}

impl Dialog for Secret {
    fn view(&self, ui: &Ui) -> View {
        View {
            title: "Authentication".into(),
            body: vec![
                Line::raw(self.question.prompt()),
                Line::raw(""),
                Line::styled(
                    format!("  {}_", ui.symbols.mask.repeat(self.input.chars().count())),
                    ui.style(StyleKey::Title),
                ),
            ],
            danger: false,
            buttons: None,
        }
    }

    fn on_key(&mut self, key: &KeyEvent, _data: &mut Data) -> DialogReply {
        match key.code {
            KeyCode::Enter => {
                let secret = SecretString::from(self.input.as_str().to_string());
                self.answer(Some(secret));
                return DialogReply::Close;
            }
            KeyCode::Esc => {
                self.answer(None);
                return DialogReply::Close;
            }
            KeyCode::Backspace => {
                self.input.pop();
            }
            KeyCode::Char(c) => self.input.push(c),
            _ => {}
        }
        DialogReply::Stay
    }

    fn on_paste(&mut self, text: &str) {
        self.input.push_str(text.trim_end_matches(['\r', '\n']));
    }

    fn question(&self) -> bool {
        true
    }

    fn own_keys(&self) -> bool {
        true // typed
    }

    fn keys(&self, _ui: &Ui) -> Vec<KeyHelp> {
        vec![("Enter", "submit"), ("Esc", "cancel")]
    }

    fn abandon(&mut self) {
        self.answer(None);
    }
}
