//! A push from the console, as one state machine: choose the keys (or paste
//! them), plan (a blocked plan says why, and may offer to leave servers
//! out or break a stale lock, then plan again), confirm (Cancel is the
//! default), push (Ctrl-C stops it between steps and rolls back), and the
//! result. It is a dialog; the planning and the push run on a worker that
//! reports with [`Work`] messages.

use super::dialogs::{Activity, Button, Buttons, Dialog, DialogReply, View, button_keys};
use super::model::{Action, Data, LogLevel, Work};
use super::theme::StyleKey;
use super::ui::{KeyHelp, Ui};
use crate::analysis::{Code, FarmReport};
use crate::keys::{Decryption, Validation};
use crate::paths::RemotePath;
use crate::push::apply::{Progress, Step};
use crate::push::lock::Holder;
use crate::push::saved::SavedPlan;
use crate::push::{
    KeySource, Plan, PlanAction, PlanError, PlanVerdict, PushOutcome, PushRequest, PushVerdict,
    Remedy, SignOuts, exclusion_effect, sign_outs,
};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::text::Line;
use std::sync::mpsc::Sender;
use zeroize::Zeroizing;

/// `farmkey-plan-Flowtime-20261207T042000Z.toml`, in the current folder.
fn default_plan_name(site: &str) -> String {
    let site: String = site
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("farmkey-plan-{site}-{}.toml", crate::push::utc_stamp())
}

/// A way to choose the key set, as offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChoice {
    Adopt {
        server: String,
        group: char,
        servers: usize,
    },
    Generate(Validation, Decryption),
    Import,
    HandlerOnly,
    /// A key set in use whose keys are publicly disclosed: shown, but a
    /// push of it is refused.
    AdoptDisclosed {
        server: String,
        group: char,
    },
}

impl KeyChoice {
    pub fn label(&self) -> String {
        match self {
            KeyChoice::Adopt {
                server,
                group,
                servers,
            } => format!(
                "Adopt key set {group} from {server} (in use on {servers} server{})",
                if *servers == 1 { "" } else { "s" },
            ),
            KeyChoice::Generate(v, d) => {
                let why = if *v == Validation::Sha1 {
                    "the vendor's choice"
                } else {
                    "the DISA IIS 10 STIG asks for it"
                };
                format!("Generate new keys: {} + {} ({why})", v, d)
            }
            KeyChoice::Import => "Import a <machineKey> element (paste it)".into(),
            KeyChoice::HandlerOnly => "Only fix the session-token handler (DPAPI)".into(),
            KeyChoice::AdoptDisclosed { server, group } => {
                format!("Adopt key set {group} from {server}: refused, its keys are public")
            }
        }
    }

    /// Offered, but refused when chosen.
    pub fn disabled(&self) -> bool {
        matches!(self, KeyChoice::AdoptDisclosed { .. })
    }

    /// The key source the plan is made for; `None` for keys still to be
    /// pasted.
    fn source(&self) -> Option<KeySource> {
        Some(match self {
            // The plan refuses it, with the reason, as it refuses any
            // disclosed key.
            KeyChoice::Adopt { server, .. } | KeyChoice::AdoptDisclosed { server, .. } => {
                KeySource::Adopt(Some(server.clone()))
            }
            KeyChoice::Generate(validation, decryption) => KeySource::Generate {
                validation: validation.clone(),
                decryption: decryption.clone(),
            },
            KeyChoice::HandlerOnly => KeySource::HandlerOnly,
            KeyChoice::Import => return None,
        })
    }
}

/// Who keeps their sign-ins, as a choice of keys and a plan say it:
/// `sign-ins kept: web01, web02; signed out: web03`.
pub fn sign_out_text(s: &SignOuts) -> String {
    if s.everyone() {
        return "everyone is signed out".into();
    }
    let mut parts = Vec::new();
    if s.signed_out.is_empty() && s.unknown.is_empty() {
        parts.push("everyone keeps their sign-ins".to_string());
    } else if !s.keep.is_empty() {
        parts.push(format!("sign-ins kept: {}", s.keep.join(", ")));
    }
    if !s.signed_out.is_empty() {
        parts.push(format!("signed out: {}", s.signed_out.join(", ")));
    }
    if !s.unknown.is_empty() {
        parts.push(format!("not known (not read): {}", s.unknown.join(", ")));
    }
    parts.join("; ")
}

/// The ways to choose the keys for a push to `site`: adopting each key set
/// in use (most used first), generating, importing, and the handler swap
/// alone when a server needs it. Where a key is publicly disclosed,
/// generating comes first and its sets are shown refused, last.
pub fn key_choices(report: &FarmReport, site: &str) -> Vec<KeyChoice> {
    let mut out = Vec::new();
    let Some(report) = report.site(site) else {
        return out;
    };
    let mut groups: Vec<(char, String, usize, bool)> = Vec::new();
    for inst in &report.instances {
        if let Some(g) = inst.key_group {
            match groups.iter_mut().find(|(l, _, _, _)| *l == g) {
                Some((_, _, n, _)) => *n += 1,
                None => groups.push((g, inst.server.clone(), 1, inst.is_disclosed())),
            }
        }
    }
    groups.sort_by_key(|(g, _, _, _)| *g);
    let generate = [
        KeyChoice::Generate(Validation::Sha1, Decryption::Aes),
        KeyChoice::Generate(Validation::HmacSha256, Decryption::Aes),
    ];
    let disclosed = report.has_disclosed_key();
    if disclosed {
        out.extend(generate.clone());
    }
    for (group, server, servers, _) in groups.iter().filter(|g| !g.3) {
        out.push(KeyChoice::Adopt {
            server: server.clone(),
            group: *group,
            servers: *servers,
        });
    }
    if !disclosed {
        out.extend(generate);
    }
    out.push(KeyChoice::Import);
    if report
        .findings
        .iter()
        .any(|f| f.code == Code::DpapiSessionTokens)
    {
        out.push(KeyChoice::HandlerOnly);
    }
    for (group, server, _, _) in groups.into_iter().filter(|g| g.3) {
        out.push(KeyChoice::AdoptDisclosed { server, group });
    }
    out
}

/// What a blocked plan lets the operator do from the console: one button
/// for the verdict's remedies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// Plan again without these servers.
    Exclude(Vec<String>),
    /// Plan again, breaking these locks.
    BreakLock(Vec<Holder>),
    /// Only waiting helps (a push of this machine that still runs).
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockedButton {
    Cancel,
    LeaveOut,
    BreakLock,
    Ok,
}

impl Button for BlockedButton {
    fn label(self) -> &'static str {
        match self {
            BlockedButton::Cancel => "Cancel",
            BlockedButton::LeaveOut => "Leave out and plan again",
            BlockedButton::BreakLock => "Break the lock and plan again",
            BlockedButton::Ok => "OK",
        }
    }
}

impl Offer {
    /// The verdict's remedies as the console offers them: leaving servers
    /// out first (the files to fix are named in the plan), breaking the
    /// locks once only they block and every one may be broken.
    pub fn of(verdict: &PlanVerdict) -> Offer {
        let remedies = verdict.remedies();
        let exclude: Vec<String> = remedies
            .iter()
            .filter_map(|r| match r {
                Remedy::Exclude(server) => Some(server.clone()),
                _ => None,
            })
            .collect();
        if !exclude.is_empty() {
            return Offer::Exclude(exclude);
        }
        let locks: Vec<Holder> = remedies
            .iter()
            .filter_map(|r| match r {
                Remedy::BreakLock(h) => Some((**h).clone()),
                _ => None,
            })
            .collect();
        if !locks.is_empty() && locks.len() == remedies.len() {
            Offer::BreakLock(locks)
        } else {
            Offer::Nothing
        }
    }

    fn buttons(&self) -> Buttons<BlockedButton> {
        Buttons::new(match self {
            Offer::Exclude(_) => &[BlockedButton::Cancel, BlockedButton::LeaveOut],
            Offer::BreakLock(_) => &[BlockedButton::Cancel, BlockedButton::BreakLock],
            Offer::Nothing => &[BlockedButton::Ok],
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushButton {
    Cancel,
    Push,
}

impl Button for PushButton {
    fn label(self) -> &'static str {
        match self {
            PushButton::Cancel => "Cancel",
            PushButton::Push => "Push",
        }
    }
}

enum PushStage {
    Choose {
        choices: Vec<KeyChoice>,
        /// Per choice, who keeps their sign-ins if it is pushed (not known
        /// for keys still to be pasted).
        fates: Vec<Option<SignOuts>>,
        focus: usize,
        /// A key of the site is publicly disclosed.
        disclosed: bool,
    },
    Paste {
        text: Zeroizing<String>,
    },
    /// The worker reads the files and plans.
    Planning,
    /// A plan that cannot be pushed as it is: why, and what may be done.
    Blocked {
        plan: Box<Plan>,
        offer: Offer,
        buttons: Buttons<BlockedButton>,
    },
    /// The plan, before anything is written; the worker waits on `go`.
    Confirm {
        plan: Box<Plan>,
        go: Sender<bool>,
        buttons: Buttons<PushButton>,
    },
    /// The plan to be saved instead of pushed: the file's name as typed,
    /// and why the last try did not write it.
    SavePlan {
        plan: Box<Plan>,
        go: Sender<bool>,
        path: String,
        error: Option<String>,
    },
    Pushing {
        /// Per file of the plan: its server, the file, how it is named, and
        /// where it is.
        lines: Vec<(String, RemotePath, String, Status)>,
        /// What the push does now: the latest stage of the whole push
        /// (locks, rollback...) or the step of the server at work.
        note: Option<String>,
        /// Set once the operator asked to stop.
        interrupting: bool,
    },
    /// How it ended: nothing to write, no plan, keys refused, the result.
    Told {
        title: String,
        text: String,
        danger: bool,
    },
}

/// Where a server of a running push is.
enum Status {
    Said(String),
    /// At this step now (drawn with the spinner).
    At(Step),
}

pub struct PushFlow {
    site: String,
    /// The request planned last, to plan it again with servers left out
    /// or a lock broken.
    request: Option<PushRequest>,
    stage: PushStage,
}

impl PushFlow {
    /// Starts with the choice of keys.
    pub fn new(site: String, report: &FarmReport) -> PushFlow {
        let choices = key_choices(report, &site);
        let fates = choices
            .iter()
            .map(|c| {
                c.source()
                    .filter(|_| !c.disabled())
                    .and_then(|source| sign_outs::preview(report, &site, &source))
            })
            .collect();
        PushFlow {
            stage: PushStage::Choose {
                choices,
                fates,
                focus: 0,
                disclosed: report.site(&site).is_some_and(|s| s.has_disclosed_key()),
            },
            site,
            request: None,
        }
    }

    /// Whether the plan can be saved: `farmkey apply` needs the keys it
    /// was made with, which generated keys are not kept anywhere.
    fn saveable(&self) -> bool {
        self.request
            .as_ref()
            .is_some_and(|r| !matches!(r.source, KeySource::Generate { .. }))
    }

    /// Writes the plan to the file typed; the push is dropped once it is
    /// written (nothing was written on the servers).
    fn save_plan(&mut self, data: &mut Data) {
        let (
            PushStage::SavePlan {
                plan, path, error, ..
            },
            Some(request),
        ) = (&mut self.stage, &self.request)
        else {
            return;
        };
        let file = std::path::absolute(path.trim()).unwrap_or_else(|_| path.trim().into());
        let servers: Vec<crate::inventory::Server> =
            data.servers.iter().map(|r| r.server.clone()).collect();
        let saved = SavedPlan::of(
            plan,
            request,
            &servers,
            SavedPlan::planner(),
            crate::push::audit::now(),
        )
        .seal(plan.keys.as_ref());
        if let Err(e) = saved.write(&file, false) {
            *error = Some(if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!("{} exists already: type another name.", file.display())
            } else {
                format!("{}: {e}", file.display())
            });
            return;
        }
        let keys = match &request.source {
            KeySource::Adopt(Some(server)) => format!(" --adopt {server}"),
            KeySource::Adopt(None) => " --adopt".to_string(),
            KeySource::Import(_) => " --keys FILE (the <machineKey> it was planned with)".into(),
            KeySource::Generate { .. } | KeySource::HandlerOnly => String::new(),
        };
        let text = format!(
            "Plan {} of {} written to {}.\nNothing was written on any server.\n\nApply it, once approved, with:\nfarmkey apply {}{keys}",
            saved.id,
            saved.site,
            file.display(),
            file.display()
        );
        data.log(
            LogLevel::Info,
            format!(
                "plan {} saved to {}: nothing was written",
                saved.id,
                file.display()
            ),
        );
        let PushStage::SavePlan { go, .. } =
            std::mem::replace(&mut self.stage, PushStage::Planning)
        else {
            return;
        };
        let _ = go.send(false);
        self.tell("Plan saved", text, false);
    }

    fn plan(&mut self, request: PushRequest) -> DialogReply {
        self.request = Some(request.clone());
        self.stage = PushStage::Planning;
        DialogReply::Act(Action::PlanPush(request))
    }

    fn tell(&mut self, title: impl Into<String>, text: impl Into<String>, danger: bool) {
        self.stage = PushStage::Told {
            title: title.into(),
            text: text.into(),
            danger,
        };
    }

    fn choose(&mut self, choice: KeyChoice) -> DialogReply {
        let Some(source) = choice.source() else {
            self.stage = PushStage::Paste {
                text: Zeroizing::new(String::new()),
            };
            return DialogReply::Stay;
        };
        self.plan(PushRequest::new(self.site.clone(), source))
    }

    /// The pasted element, checked: keys ASP.NET accepts, none disclosed.
    fn use_pasted(&mut self, text: &str, data: &mut Data) -> DialogReply {
        let keys = crate::config::import::key_set_from_xml(text)
            .map_err(|e| e.to_string())
            .and_then(|set| {
                crate::push::refuse_disclosed(&set, "the pasted keys", &data.report.disclosed)
                    .map_err(|e| e.to_string())?;
                Ok(set)
            });
        match keys {
            Ok(set) => self.plan(PushRequest::new(self.site.clone(), KeySource::Import(set))),
            Err(e) => {
                data.log(LogLevel::Warn, format!("pasted keys refused: {e}"));
                self.tell("These keys cannot be used", e, true);
                DialogReply::Stay
            }
        }
    }

    /// Plans once more, leaving out the servers that blocked the plan, or
    /// breaking the locks shown.
    fn plan_again(&mut self, offer: Offer, data: &mut Data) -> DialogReply {
        let Some(mut request) = self.request.clone() else {
            return DialogReply::Close;
        };
        match offer {
            Offer::Exclude(servers) => {
                for s in &servers {
                    data.log(
                        LogLevel::Warn,
                        format!(
                            "{s} left out of the push to {}: {}",
                            request.site,
                            exclusion_effect(s)
                        ),
                    );
                }
                request.exclude.extend(servers);
            }
            Offer::BreakLock(_) => request.break_lock = true,
            Offer::Nothing => return DialogReply::Close,
        }
        self.plan(request)
    }

    fn planned(
        &mut self,
        result: Result<Box<Plan>, PlanError>,
        go: Option<Sender<bool>>,
        data: &mut Data,
    ) {
        let plan = match result {
            Ok(plan) => plan,
            Err(e) => {
                data.log(LogLevel::Error, format!("no plan: {e}"));
                return self.tell("Cannot plan the push", e.to_string(), true);
            }
        };
        let verdict = plan.verdict();
        let go = match go {
            Some(go) if verdict == PlanVerdict::Ready => go,
            go => {
                if let Some(go) = go {
                    let _ = go.send(false);
                }
                if !matches!(verdict, PlanVerdict::Blocked(_)) {
                    let title = format!("Nothing to write on {}", plan.site);
                    return self.tell(title, plan.to_string(), false);
                }
                data.log(
                    LogLevel::Warn,
                    format!("plan {} blocked: nothing is written", plan.push_id),
                );
                let offer = Offer::of(&verdict);
                self.stage = PushStage::Blocked {
                    plan,
                    buttons: offer.buttons(),
                    offer,
                };
                return;
            }
        };
        data.log(
            LogLevel::Info,
            format!(
                "plan {} ready: {} server(s) to write",
                plan.push_id,
                plan.writes()
            ),
        );
        self.stage = PushStage::Confirm {
            plan,
            go,
            buttons: Buttons::new(&[PushButton::Cancel, PushButton::Push]),
        };
    }

    fn progress(&mut self, p: Progress, data: &mut Data) {
        let PushStage::Pushing { lines, note, .. } = &mut self.stage else {
            return;
        };
        let (server, file, status, level) = match p {
            Progress::Step { server, file, step } => (server, file, Status::At(step), None),
            Progress::Done(r) => {
                let level = if r.outcome.recorded().is_fine() {
                    LogLevel::Info
                } else {
                    LogLevel::Error
                };
                let status = Status::Said(r.outcome.to_string());
                (r.server, r.file, status, Some(level))
            }
            Progress::Note(text) => {
                data.log(LogLevel::Info, format!("push: {text}"));
                *note = Some(text);
                return;
            }
        };
        let line = lines
            .iter_mut()
            .find(|(s, f, _, _)| *s == server && f.key() == file.key());
        if let Some((_, _, label, now)) = line {
            if let (Some(level), Status::Said(text)) = (level, &status) {
                data.log(level, format!("push {label}: {text}"));
            }
            // The line below the servers follows them: the step of the
            // server at work, not the stage that came before (locking).
            *note = match &status {
                Status::At(step) => Some(format!("{label}: {step}")),
                Status::Said(_) => None,
            };
            *now = status;
        }
    }

    fn done(&mut self, result: Result<PushOutcome, std::io::Error>, data: &mut Data) {
        match result {
            Ok(outcome) => {
                let mut text = outcome
                    .results
                    .iter()
                    .map(|r| format!("{}: {}", outcome.label(r), r.outcome))
                    .collect::<Vec<_>>()
                    .join("\n");
                text.push_str(&format!("\n\n{}", outcome.summary()));
                for e in &outcome.audit_errors {
                    text.push_str(&format!("\nThe audit log did not take a record: {e}"));
                }
                let level = if outcome.success() {
                    LogLevel::Info
                } else {
                    LogLevel::Error
                };
                data.log(level, outcome.summary());
                let title = match (outcome.verdict(), outcome.interrupted) {
                    (PushVerdict::InStep, _) => "Push done".to_string(),
                    (PushVerdict::AsBefore, Some(r)) => {
                        format!("Push interrupted ({r}): rolled back")
                    }
                    (PushVerdict::AsBefore, None) => "Push not made".to_string(),
                    (PushVerdict::OutOfStep, _) => "Push left the site OUT OF STEP".to_string(),
                };
                self.tell(title, text, !outcome.success());
            }
            Err(e) => {
                let why = format!("{e}; nothing was written");
                data.log(LogLevel::Error, format!("push not started: {why}"));
                self.tell("Push not started", why, true);
            }
        }
    }

    fn confirm(&mut self, start: bool, data: &mut Data) -> DialogReply {
        let PushStage::Confirm { plan, go, .. } =
            std::mem::replace(&mut self.stage, PushStage::Planning)
        else {
            return DialogReply::Stay;
        };
        if !start {
            data.log(
                LogLevel::Info,
                format!("push {} cancelled: nothing was written", plan.push_id),
            );
            let _ = go.send(false);
            return DialogReply::Close;
        }
        let lines = plan
            .servers
            .iter()
            .map(|s| {
                let status = match &s.action {
                    PlanAction::Write => "waiting".to_string(),
                    PlanAction::Unchanged => "unchanged".to_string(),
                    PlanAction::Blocked(why) => format!("cannot be pushed: {why}"),
                };
                (
                    s.server.clone(),
                    s.file.clone(),
                    plan.label(&s.server, &s.file),
                    Status::Said(status),
                )
            })
            .collect();
        data.log(
            LogLevel::Warn,
            format!("push {} to {} started", plan.push_id, plan.site),
        );
        self.stage = PushStage::Pushing {
            lines,
            note: None,
            interrupting: false,
        };
        DialogReply::Act(Action::StartPush { go, start: true })
    }
}

/// The text typed so far ends inside a tag (`<machineKey validationKey=`):
/// the element goes on, on the next line.
fn in_a_tag(text: &str) -> bool {
    // `None` (no `>` at all) orders before any place.
    text.rfind('<') > text.rfind('>')
}

/// A plan's text, the lines that need attention marked.
fn plan_lines(plan: &Plan, ui: &Ui) -> Vec<Line<'static>> {
    plan.lines()
        .into_iter()
        .map(|(attention, l)| {
            let style = if attention {
                StyleKey::Warning
            } else {
                StyleKey::Text
            };
            Line::styled(l, ui.style(style))
        })
        .collect()
}

impl Dialog for PushFlow {
    fn view(&self, ui: &Ui) -> View {
        let site = &self.site;
        let view = |title: String, body, danger, buttons| View {
            title,
            body,
            danger,
            buttons,
        };
        match &self.stage {
            PushStage::Choose {
                choices,
                fates,
                focus,
                disclosed,
            } => {
                let mut body = Vec::new();
                if *disclosed {
                    body.push(Line::styled(
                        format!(
                            "{} A key of this site is publicly disclosed: generate a new key set.",
                            ui.symbols.disclosed
                        ),
                        ui.style(StyleKey::Danger),
                    ));
                }
                body.push(Line::raw(
                    "Which keys should every server of this site use?",
                ));
                body.push(Line::raw(""));
                for (i, c) in choices.iter().enumerate() {
                    let selected = i == *focus;
                    let style = ui.style(if selected {
                        StyleKey::Selection
                    } else if c.disabled() {
                        StyleKey::TextDim
                    } else {
                        StyleKey::Text
                    });
                    let pointer = if selected { ui.symbols.pointer } else { " " };
                    body.push(Line::styled(format!("{pointer} {}", c.label()), style));
                    if let Some(Some(fate)) = fates.get(i) {
                        body.push(Line::styled(
                            format!("    {}", sign_out_text(fate)),
                            ui.style(StyleKey::TextDim),
                        ));
                    }
                }
                body.push(Line::raw(""));
                body.push(Line::styled(
                    "The plan is shown before anything is written.",
                    ui.style(StyleKey::TextDim),
                ));
                view(format!("Push to {site}"), body, false, None)
            }
            PushStage::Paste { text } => {
                let shown = crate::push::diff::mask_keys(text);
                let mut body = vec![
                    Line::raw(format!(
                        "Paste the <machineKey> element for {site} (the terminal's paste),"
                    )),
                    Line::raw("then Enter. Keys are shown as fingerprints."),
                    Line::raw(""),
                ];
                for l in shown.lines().take(6) {
                    body.push(Line::styled(l.to_string(), ui.style(StyleKey::Title)));
                }
                body.push(Line::styled("_", ui.style(StyleKey::Title)));
                if in_a_tag(text) {
                    body.push(Line::raw(""));
                    body.push(Line::styled(
                        "A tag is open: Enter adds a line until its >; Alt-Enter uses the text as it is.",
                        ui.style(StyleKey::TextDim),
                    ));
                }
                view("Import keys".into(), body, false, None)
            }
            PushStage::Planning => view(
                format!("Push to {site}"),
                vec![Line::raw(format!(
                    "{} Reading the web.config of {site} on every server...",
                    ui.spinner()
                ))],
                false,
                None,
            ),
            PushStage::Confirm { plan, buttons, .. } => {
                let mut body = plan_lines(plan, ui);
                // Beside the restart, the plan's last line: what users meet.
                body.insert(
                    body.len().saturating_sub(1),
                    Line::styled(
                        format!("Signed-in users: {}.", sign_out_text(&plan.sign_outs())),
                        ui.style(StyleKey::Warning),
                    ),
                );
                view(
                    format!("Confirm push {}", plan.push_id),
                    body,
                    true,
                    buttons.view(),
                )
            }
            PushStage::SavePlan {
                plan, path, error, ..
            } => {
                let mut body = vec![
                    Line::raw(format!(
                        "Plan {} of {} is written to this file, for review and `farmkey apply`. It holds no key text; nothing is written on any server.",
                        plan.push_id, plan.site
                    )),
                    Line::raw(""),
                    Line::styled(format!("File: {path}_"), ui.style(StyleKey::Header)),
                ];
                if let Some(e) = error {
                    body.push(Line::styled(e.clone(), ui.style(StyleKey::Warning)));
                }
                view(format!("Save plan {}", plan.push_id), body, false, None)
            }
            PushStage::Blocked {
                plan,
                offer,
                buttons,
            } => {
                let mut body = plan_lines(plan, ui);
                body.push(Line::raw(""));
                let warn = |text: String| Line::styled(text, ui.style(StyleKey::Warning));
                match offer {
                    Offer::Exclude(servers) => {
                        for s in servers {
                            body.push(warn(format!("Leaving {s} out: {}.", exclusion_effect(s))));
                        }
                    }
                    Offer::BreakLock(locks) => {
                        for h in locks {
                            body.push(warn(format!(
                                "Break the lock only if that push no longer runs: {h}."
                            )));
                        }
                    }
                    Offer::Nothing => body.push(Line::raw(
                        "Nothing was written. Wait for the push that holds the lock to end.",
                    )),
                }
                view(
                    format!("Push {} blocked: nothing written", plan.push_id),
                    body,
                    true,
                    buttons.view(),
                )
            }
            PushStage::Pushing {
                lines,
                note,
                interrupting,
            } => {
                let mut body: Vec<Line> = lines
                    .iter()
                    .map(|(_, _, label, status)| {
                        Line::raw(match status {
                            Status::Said(text) => format!("{label:<12} {text}"),
                            Status::At(step) => format!("{label:<12} {} {step}", ui.spinner()),
                        })
                    })
                    .collect();
                if let Some(n) = note {
                    body.push(Line::styled(
                        format!("{} {n}", ui.spinner()),
                        ui.style(StyleKey::TextDim),
                    ));
                }
                body.push(Line::raw(""));
                body.push(if *interrupting {
                    Line::styled(
                        "Interrupting: the server in progress is finished or restored, then the servers already changed are rolled back.",
                        ui.style(StyleKey::Warning),
                    )
                } else {
                    Line::styled(
                        "Ctrl-C stops the push between steps and rolls back what it changed.",
                        ui.style(StyleKey::TextDim),
                    )
                });
                view(format!("Pushing to {site}"), body, true, None)
            }
            PushStage::Told {
                title,
                text,
                danger,
            } => view(
                title.clone(),
                text.lines().map(|l| Line::raw(l.to_string())).collect(),
                *danger,
                Some((vec!["OK"], 0)),
            ),
        }
    }

    fn on_key(&mut self, key: &KeyEvent, data: &mut Data) -> DialogReply {
        let saveable = self.saveable();
        match &mut self.stage {
            PushStage::Choose { choices, focus, .. } => match key.code {
                KeyCode::Up | KeyCode::Char('k') => *focus = focus.saturating_sub(1),
                KeyCode::Down | KeyCode::Char('j') => {
                    *focus = (*focus + 1).min(choices.len().saturating_sub(1))
                }
                KeyCode::Esc => return DialogReply::Close,
                KeyCode::Enter => {
                    if let Some(choice) = choices.get(*focus).cloned() {
                        return self.choose(choice);
                    }
                }
                _ => {}
            },
            PushStage::Paste { text } => match key.code {
                KeyCode::Esc => return DialogReply::Close,
                // Whatever was typed gets an answer: the keys planned, or
                // why they cannot be (the reason `--keys` gets).
                KeyCode::Enter if key.modifiers.contains(KeyModifiers::ALT) || !in_a_tag(text) => {
                    let text = std::mem::take(text);
                    return self.use_pasted(&text, data);
                }
                KeyCode::Enter => text.push('\n'),
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) => text.push(c),
                _ => {}
            },
            PushStage::Planning => {} // the worker answers
            PushStage::Blocked { offer, buttons, .. } => match buttons.on_key(key) {
                None => {}
                Some(BlockedButton::Cancel | BlockedButton::Ok) => return DialogReply::Close,
                Some(BlockedButton::LeaveOut | BlockedButton::BreakLock) => {
                    let offer = offer.clone();
                    return self.plan_again(offer, data);
                }
            },
            PushStage::Confirm { .. } if key.code == KeyCode::Char('w') && saveable => {
                let PushStage::Confirm { plan, go, .. } =
                    std::mem::replace(&mut self.stage, PushStage::Planning)
                else {
                    return DialogReply::Stay;
                };
                let path = default_plan_name(&plan.site);
                self.stage = PushStage::SavePlan {
                    plan,
                    go,
                    path,
                    error: None,
                };
            }
            PushStage::Confirm { buttons, .. } => match buttons.on_key(key) {
                None => {}
                Some(b) => return self.confirm(b == PushButton::Push, data),
            },
            PushStage::SavePlan { path, error, .. } => match key.code {
                KeyCode::Esc => {
                    let PushStage::SavePlan { plan, go, .. } =
                        std::mem::replace(&mut self.stage, PushStage::Planning)
                    else {
                        return DialogReply::Stay;
                    };
                    self.stage = PushStage::Confirm {
                        plan,
                        go,
                        buttons: Buttons::new(&[PushButton::Cancel, PushButton::Push]),
                    };
                }
                KeyCode::Enter => self.save_plan(data),
                KeyCode::Backspace => {
                    path.pop();
                    *error = None;
                }
                KeyCode::Char(c) => {
                    path.push(c);
                    *error = None;
                }
                _ => {}
            },
            PushStage::Pushing { .. } => {
                if matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) && self.interrupt() {
                    return DialogReply::Act(Action::InterruptPush);
                }
            }
            PushStage::Told { .. } => {
                if matches!(
                    key.code,
                    KeyCode::Enter | KeyCode::Esc | KeyCode::Char(' ') | KeyCode::Char('q')
                ) {
                    return DialogReply::Close;
                }
            }
        }
        DialogReply::Stay
    }

    fn on_paste(&mut self, pasted: &str) {
        if let PushStage::Paste { text } = &mut self.stage {
            text.push_str(pasted);
        }
    }

    fn takes(&self, work: &Work) -> bool {
        matches!(
            work,
            Work::Planned { .. } | Work::PushProgress(_) | Work::PushDone(_)
        )
    }

    fn on_work(&mut self, work: Work, data: &mut Data) -> DialogReply {
        match work {
            Work::Planned { result, go } => self.planned(result, go, data),
            Work::PushProgress(progress) => self.progress(progress, data),
            Work::PushDone(result) => self.done(result, data),
            Work::RollbackLocks(_) | Work::RollbackProgress(_) | Work::RollbackDone(_) => {}
        }
        DialogReply::Stay
    }

    fn keys(&self, ui: &Ui) -> Vec<KeyHelp> {
        match &self.stage {
            PushStage::Choose { .. } => vec![
                (ui.symbols.updown, "choose"),
                ("Enter", "plan"),
                ("Esc", "cancel"),
            ],
            PushStage::Paste { .. } => vec![
                ("paste", "the element"),
                ("Enter", "use it"),
                ("Esc", "cancel"),
            ],
            PushStage::Pushing {
                interrupting: false,
                ..
            } => vec![("Ctrl-C", "stop and roll back")],
            PushStage::Planning | PushStage::Pushing { .. } => vec![("", "working...")],
            PushStage::Told { .. } => vec![("Enter", "close")],
            PushStage::Confirm { .. } if self.saveable() => {
                let mut keys = button_keys(ui);
                keys.push(("w", "save plan"));
                keys
            }
            PushStage::SavePlan { .. } => vec![
                ("type", "the file"),
                ("Enter", "save"),
                ("Esc", "back to the plan"),
            ],
            PushStage::Blocked { .. } | PushStage::Confirm { .. } => button_keys(ui),
        }
    }

    fn waiting(&self) -> bool {
        matches!(self.stage, PushStage::Planning | PushStage::Pushing { .. })
    }

    /// The choice moves with ↑/↓ and j/k; the element is typed.
    fn own_keys(&self) -> bool {
        matches!(
            self.stage,
            PushStage::Choose { .. } | PushStage::Paste { .. } | PushStage::SavePlan { .. }
        )
    }

    fn activity(&self) -> Activity {
        match self.stage {
            PushStage::Pushing { .. } => Activity::Pushing,
            _ => Activity::Idle,
        }
    }

    fn interrupt(&mut self) -> bool {
        match &mut self.stage {
            PushStage::Pushing { interrupting, .. } if !*interrupting => {
                *interrupting = true;
                true
            }
            _ => false,
        }
    }

    fn abandon(&mut self) {
        if let PushStage::Confirm { go, .. } | PushStage::SavePlan { go, .. } = &self.stage {
            let _ = go.send(false);
        }
    }
}
