//! An unknown host key: refuse it (the default), accept it once, or
//! accept it and store it in known_hosts.

use super::{Button, Buttons, Dialog, Reply, View, button_keys};
use crate::console::model::{Data, Level};
use crate::console::theme::StyleKey;
use crate::console::ui::{KeyHelp, Ui};
use crate::transport::{HostKeyDecision, HostKeyQuestion};
use ratatui::crossterm::event::KeyEvent;
use ratatui::text::Line;
use std::sync::mpsc::Sender;

impl Button for HostKeyDecision {
    fn label(self) -> &'static str {
        match self {
            HostKeyDecision::Refuse => "Refuse",
            HostKeyDecision::AcceptOnce => "Accept once",
            HostKeyDecision::AcceptAndStore => "Accept and store",
        }
    }
}

pub struct HostKey {
    question: HostKeyQuestion,
    /// The worker waits here; `None` is no answer (a refusal).
    reply: Option<Sender<Option<HostKeyDecision>>>,
    buttons: Buttons<HostKeyDecision>,
}

impl HostKey {
    pub fn new(question: HostKeyQuestion, reply: Sender<Option<HostKeyDecision>>) -> HostKey {
        HostKey {
            question,
            reply: Some(reply),
            buttons: Buttons::new(&[
                HostKeyDecision::Refuse,
                HostKeyDecision::AcceptOnce,
                HostKeyDecision::AcceptAndStore,
            ]),
        }
    }
}

impl Dialog for HostKey {
    fn view(&self, ui: &Ui) -> View {
        let q = &self.question;
        let mut body = vec![
            Line::raw(format!(
                "{} ({}) presents a host key that",
                q.server, q.host
            )),
            Line::raw(format!("{} does not hold:", q.known_hosts.display())),
            Line::raw(""),
            Line::styled(
                format!("  {} {}", q.key_type, q.fingerprint),
                ui.style(StyleKey::Reveal),
            ),
            Line::raw(""),
        ];
        if !q.other_types.is_empty() {
            body.push(Line::styled(
                format!(
                    "Keys of another type are stored: {}",
                    q.other_types.join(", ")
                ),
                ui.style(StyleKey::Warning),
            ));
        }
        body.push(Line::raw(
            "Compare the fingerprint with the server's own (ssh-keygen -lf) before trusting it.",
        ));
        View {
            title: "Unknown host key".into(),
            body,
            danger: false,
            buttons: self.buttons.view(),
        }
    }

    fn on_key(&mut self, key: &KeyEvent, data: &mut Data) -> Reply {
        let Some(decision) = self.buttons.on_key(key) else {
            return Reply::Stay;
        };
        let level = if decision == HostKeyDecision::Refuse {
            Level::Warn
        } else {
            Level::Info
        };
        data.log(
            level,
            format!(
                "{}: host key {} {decision:?}",
                self.question.server, self.question.fingerprint
            ),
        );
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Some(decision));
        }
        Reply::Close
    }

    fn question(&self) -> bool {
        true
    }

    fn keys(&self, ui: &Ui) -> Vec<KeyHelp> {
        button_keys(ui)
    }

    fn abandon(&mut self) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(None);
        }
    }
}
