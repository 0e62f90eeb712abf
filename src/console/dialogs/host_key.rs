//! Unknown host keys, every one the connections ask about gathered in one
//! dialog: each listed with its fingerprint and what was decided for it.
//! The buttons answer the first host not yet answered (Refuse, the
//! default; accept once; accept and store), or every one left at once.

use super::{Button, Buttons, Dialog, DialogReply, View, button_keys};
use crate::console::model::{Data, LogLevel};
use crate::console::theme::StyleKey;
use crate::console::ui::{KeyHelp, Ui};
use crate::transport::{HostKeyDecision, HostKeyQuestion};
use ratatui::crossterm::event::KeyEvent;
use ratatui::text::Line;
use std::sync::mpsc::Sender;

/// A button: a decision for the next host, or for every host left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Next(HostKeyDecision),
    All(HostKeyDecision),
}

impl Button for Choice {
    fn label(self) -> &'static str {
        match self {
            Choice::Next(HostKeyDecision::Refuse) => "Refuse",
            Choice::Next(HostKeyDecision::AcceptOnce) => "Once",
            Choice::Next(HostKeyDecision::AcceptAndStore) => "Store",
            Choice::All(HostKeyDecision::AcceptOnce) => "All once",
            Choice::All(HostKeyDecision::AcceptAndStore) => "Store all",
            Choice::All(HostKeyDecision::Refuse) => "Refuse all",
        }
    }
}

/// What the decisions read as in the list.
fn decided(d: HostKeyDecision) -> &'static str {
    match d {
        HostKeyDecision::Refuse => "refused",
        HostKeyDecision::AcceptOnce => "accepted once",
        HostKeyDecision::AcceptAndStore => "accepted, stored",
    }
}

struct Asked {
    question: HostKeyQuestion,
    /// The worker waits here; `None` is no answer (a refusal).
    reply: Option<Sender<Option<HostKeyDecision>>>,
    decision: Option<HostKeyDecision>,
}

pub struct HostKeys {
    asked: Vec<Asked>,
    buttons: Buttons<Choice>,
}

impl HostKeys {
    pub fn new(question: HostKeyQuestion, reply: Sender<Option<HostKeyDecision>>) -> HostKeys {
        let mut d = HostKeys {
            asked: Vec::new(),
            buttons: Buttons::new(&[
                Choice::Next(HostKeyDecision::Refuse),
                Choice::Next(HostKeyDecision::AcceptOnce),
                Choice::Next(HostKeyDecision::AcceptAndStore),
                Choice::All(HostKeyDecision::AcceptOnce),
                Choice::All(HostKeyDecision::AcceptAndStore),
            ]),
        };
        d.add(question, reply);
        d
    }

    /// Another connection's question, listed below the others.
    pub fn add(&mut self, question: HostKeyQuestion, reply: Sender<Option<HostKeyDecision>>) {
        self.asked.push(Asked {
            question,
            reply: Some(reply),
            decision: None,
        });
    }

    fn answer(&mut self, i: usize, decision: HostKeyDecision, data: &mut Data) {
        let a = &mut self.asked[i];
        a.decision = Some(decision);
        let level = if decision == HostKeyDecision::Refuse {
            LogLevel::Warn
        } else {
            LogLevel::Info
        };
        data.log(
            level,
            format!(
                "{}: host key {} {}",
                a.question.server,
                a.question.fingerprint,
                decided(decision)
            ),
        );
        if let Some(reply) = a.reply.take() {
            let _ = reply.send(Some(decision));
        }
    }

    fn next(&self) -> Option<usize> {
        self.asked.iter().position(|a| a.decision.is_none())
    }
}

impl Dialog for HostKeys {
    fn view(&self, ui: &Ui) -> View {
        let next = self.next();
        let mut body = vec![
            Line::raw(format!(
                "{} present{} a host key that known_hosts does not hold.",
                if self.asked.len() == 1 {
                    "A server".to_string()
                } else {
                    format!("{} servers", self.asked.len())
                },
                if self.asked.len() == 1 { "s" } else { "" }
            )),
            Line::raw(
                "Compare each fingerprint with the server's own (ssh-keygen -lf) before trusting it.",
            ),
        ];
        for (i, a) in self.asked.iter().enumerate() {
            let q = &a.question;
            let mark = if Some(i) == next {
                ui.symbols.pointer
            } else {
                " "
            };
            let state = a.decision.map_or("", decided);
            body.push(Line::raw(""));
            body.push(Line::styled(
                format!("{mark} {} ({})  {state}", q.server, q.host),
                ui.style(if Some(i) == next {
                    StyleKey::Selection
                } else {
                    StyleKey::Text
                }),
            ));
            body.push(Line::styled(
                format!("    {} {}", q.key_type, q.fingerprint),
                ui.style(StyleKey::Reveal),
            ));
            body.push(Line::raw(format!("    not in {}", q.known_hosts.display())));
            if !q.other_types.is_empty() {
                body.push(Line::styled(
                    format!(
                        "    keys of another type are stored: {}",
                        q.other_types.join(", ")
                    ),
                    ui.style(StyleKey::Warning),
                ));
            }
        }
        body.push(Line::raw(""));
        body.push(Line::raw(
            "Refuse, Once and Store answer the host marked; All once and Store all every one left.",
        ));
        View {
            title: if self.asked.len() == 1 {
                "Unknown host key".into()
            } else {
                format!("Unknown host keys ({})", self.asked.len())
            },
            body,
            danger: false,
            buttons: self.buttons.view(),
        }
    }

    fn on_key(&mut self, key: &KeyEvent, data: &mut Data) -> DialogReply {
        let Some(choice) = self.buttons.on_key(key) else {
            return DialogReply::Stay;
        };
        match choice {
            Choice::Next(decision) => {
                if let Some(i) = self.next() {
                    self.answer(i, decision, data);
                }
            }
            Choice::All(decision) => {
                while let Some(i) = self.next() {
                    self.answer(i, decision, data);
                }
            }
        }
        if self.next().is_none() {
            DialogReply::Close
        } else {
            DialogReply::Stay
        }
    }

    fn question(&self) -> bool {
        true
    }

    fn keys(&self, ui: &Ui) -> Vec<KeyHelp> {
        button_keys(ui)
    }

    fn host_keys(&mut self) -> Option<&mut HostKeys> {
        Some(self)
    }

    fn abandon(&mut self) {
        for a in &mut self.asked {
            if let Some(reply) = a.reply.take() {
                let _ = reply.send(None);
            }
        }
    }
}
