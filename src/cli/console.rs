//! `farmkey` and `farmkey demo`: start the console.

use super::{
    AuditArg, ConsoleArgs, DemoArgs, DisclosedListArg, DisplayArgs, exit, load_inventory,
    usage_error,
};
use crate::console::theme::{Theme, truecolor_from_env};
use crate::console::{self, ConsoleOptions};
use crate::demo::DemoFarm;
use crate::inventory::Inventory;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

fn start(
    args: &DisplayArgs,
    audit: &AuditArg,
    disclosed: &DisclosedListArg,
    mut connect: crate::transport::ConnectOptions,
    jobs: usize,
    title: String,
    inventory: &Inventory,
) -> ExitCode {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = match Theme::select(args.theme.as_deref(), no_color, truecolor_from_env()) {
        Ok(t) => t,
        Err(e) => return usage_error(e),
    };
    let disclosed = match disclosed.load() {
        Ok(d) => d,
        Err(code) => return code,
    };
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return usage_error("the console needs a terminal; use `farmkey scan` in scripts");
    }
    connect.prompter = None;
    let opts = ConsoleOptions {
        title,
        servers: inventory.servers.clone(),
        components: inventory.components.clone(),
        theme,
        ascii: args.ascii,
        read_only: args.read_only,
        mouse: args.mouse,
        log_file: args.log.clone(),
        connect,
        jobs,
        audit: audit.path(),
        disclosed,
    };
    match console::run(opts) {
        Ok(end) => {
            let say = |text: String| {
                let _ = writeln!(
                    std::io::stderr(),
                    "farmkey: {}",
                    crate::safe_text::escape(&text)
                );
            };
            match (end.push, end.signal) {
                (Some(outcome), _) => {
                    say(outcome.summary());
                    ExitCode::from(super::push::push_exit_code(&outcome))
                }
                (None, Some(sig)) => {
                    say(format!(
                        "{sig}: the console was closed; no push was running"
                    ));
                    ExitCode::from(exit::FINDINGS)
                }
                (None, None) => ExitCode::from(exit::OK),
            }
        }
        Err(e) => usage_error(e),
    }
}

pub fn run_inventory(args: &ConsoleArgs) -> ExitCode {
    match load_inventory(args.farm.inventory.as_deref()) {
        Ok(inv) => start(
            &args.display,
            &args.audit,
            &args.disclosed,
            args.farm.connect.headless_options(),
            args.jobs.jobs,
            inv.path.display().to_string(),
            &inv,
        ),
        Err(code) => code,
    }
}

pub fn run_demo(args: &DemoArgs) -> ExitCode {
    match DemoFarm::new() {
        Ok(demo) => start(
            &args.display,
            // The demo's pushes are recorded beside its farm, gone with it,
            // never among the operator's real pushes (unless --audit says).
            &AuditArg {
                path: Some(
                    args.audit
                        .clone()
                        .unwrap_or_else(|| demo.path().join("audit.jsonl")),
                ),
            },
            &args.disclosed,
            Default::default(),
            crate::farm::DEFAULT_JOBS,
            "demo farm".to_string(),
            &demo.inventory,
        ),
        Err(e) => usage_error(e),
    }
}
