//! Revealing the keys of a site on one server: asked first (Cancel is the
//! default), then shown for a few seconds, until any key.

use super::{Button, Buttons, Dialog, DialogReply, View, button_keys};
use crate::console::model::{Action, Data};
use crate::console::theme::StyleKey;
use crate::console::ui::{KeyHelp, Ui};
use crate::keys::KeyText;
use ratatui::crossterm::event::KeyEvent;
use ratatui::text::Line;
use std::time::{Duration, Instant};

/// How long revealed keys stay on screen.
pub const REVEAL_FOR: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevealButton {
    Cancel,
    Reveal,
}

impl Button for RevealButton {
    fn label(self) -> &'static str {
        match self {
            RevealButton::Cancel => "Cancel",
            RevealButton::Reveal => "Reveal",
        }
    }
}

pub struct ConfirmReveal {
    site: String,
    server: String,
    buttons: Buttons<RevealButton>,
}

impl ConfirmReveal {
    pub fn new(site: String, server: String) -> ConfirmReveal {
        ConfirmReveal {
            site,
            server,
            buttons: Buttons::new(&[RevealButton::Cancel, RevealButton::Reveal]),
        }
    }
}

impl Dialog for ConfirmReveal {
    fn view(&self, _ui: &Ui) -> View {
        View {
            title: "Reveal keys?".into(),
            body: vec![
                Line::raw(format!(
                    "Show the machine keys of {} on {} on this screen?",
                    self.site, self.server
                )),
                Line::raw(""),
                Line::raw("Anyone who can see the screen (or a recording of it) can forge"),
                Line::raw("authentication tickets for this site. They hide after a few"),
                Line::raw("seconds or at any key."),
            ],
            danger: true,
            buttons: self.buttons.view(),
        }
    }

    fn on_key(&mut self, key: &KeyEvent, _data: &mut Data) -> DialogReply {
        match self.buttons.on_key(key) {
            None => DialogReply::Stay,
            Some(RevealButton::Cancel) => DialogReply::Close,
            Some(RevealButton::Reveal) => DialogReply::CloseAnd(Action::Reveal {
                site: self.site.clone(),
                server: self.server.clone(),
            }),
        }
    }

    fn keys(&self, ui: &Ui) -> Vec<KeyHelp> {
        button_keys(ui)
    }
}

/// The keys on screen, until any key or the time is up.
pub struct Revealed {
    site: String,
    server: String,
    validation_key: KeyText,
    decryption_key: KeyText,
    until: Instant,
}

impl Revealed {
    pub fn new(
        site: String,
        server: String,
        validation_key: KeyText,
        decryption_key: KeyText,
    ) -> Revealed {
        Revealed {
            site,
            server,
            validation_key,
            decryption_key,
            until: Instant::now() + REVEAL_FOR,
        }
    }
}

impl Dialog for Revealed {
    fn view(&self, ui: &Ui) -> View {
        let left = self
            .until
            .saturating_duration_since(Instant::now())
            .as_secs();
        View {
            title: format!(
                "Keys of {} on {} (hiding in {left}s)",
                self.site, self.server
            ),
            body: vec![
                Line::styled("validationKey", ui.style(StyleKey::TextDim)),
                Line::styled(
                    self.validation_key.expose().to_string(),
                    ui.style(StyleKey::Reveal),
                ),
                Line::raw(""),
                Line::styled("decryptionKey", ui.style(StyleKey::TextDim)),
                Line::styled(
                    self.decryption_key.expose().to_string(),
                    ui.style(StyleKey::Reveal),
                ),
            ],
            danger: false,
            buttons: None,
        }
    }

    fn on_key(&mut self, _key: &KeyEvent, _data: &mut Data) -> DialogReply {
        DialogReply::Close // any key hides the keys
    }

    fn keys(&self, _ui: &Ui) -> Vec<KeyHelp> {
        vec![("any key", "hide")]
    }

    fn expired(&mut self) -> bool {
        Instant::now() >= self.until
    }

    /// Its title counts down.
    fn ticking(&self) -> bool {
        true
    }

    fn own_keys(&self) -> bool {
        true // any key hides them
    }
}
