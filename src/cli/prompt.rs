//! Questions asked on the terminal by the headless commands.

use crate::transport::{HostKeyDecision, HostKeyQuestion, Prompter, SecretQuestion};
use secrecy::SecretString;

/// Reads passphrases and passwords from the controlling terminal with echo
/// off. It does not trust host keys: headless commands refuse unknown hosts
/// and point at --accept-new.
pub struct TerminalPrompter;

impl TerminalPrompter {
    /// `None` when there is no terminal to ask on (cron, CI, pipes).
    pub fn open() -> Option<TerminalPrompter> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()
            .map(|_| TerminalPrompter)
    }
}

impl Prompter for TerminalPrompter {
    fn secret(&self, question: &SecretQuestion) -> Option<SecretString> {
        rpassword::prompt_password(crate::safe_text::escape(&question.prompt()))
            .ok()
            .map(SecretString::from)
    }

    fn unknown_host(&self, _question: &HostKeyQuestion) -> Option<HostKeyDecision> {
        None
    }
}
