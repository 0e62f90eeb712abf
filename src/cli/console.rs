//! `farmkey` and `farmkey demo`: start the console.

use super::{ConsoleArgs, exit, load_inventory, usage_error};
use crate::console::theme::{Theme, truecolor_from_env};
use crate::console::{self, ConsoleOptions};
use crate::demo::DemoFarm;
use crate::inventory::Inventory;
use std::io::IsTerminal;
use std::process::ExitCode;

fn start(args: &ConsoleArgs, title: String, inventory: &Inventory) -> ExitCode {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = match Theme::select(args.theme.as_deref(), no_color, truecolor_from_env()) {
        Ok(t) => t,
        Err(e) => return usage_error(e),
    };
    let disclosed = match args.disclosed.load() {
        Ok(d) => d,
        Err(code) => return code,
    };
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return usage_error("the console needs a terminal; use `farmkey scan` in scripts");
    }
    let mut connect = args.connect.headless_options();
    connect.prompter = None;
    let opts = ConsoleOptions {
        title,
        servers: inventory.servers.clone(),
        theme,
        ascii: args.ascii,
        read_only: args.read_only,
        mouse: args.mouse,
        log_file: args.log.clone(),
        connect,
        jobs: args.connect.jobs,
        audit: args
            .audit
            .clone()
            .unwrap_or_else(crate::push::audit::default_path),
        disclosed,
    };
    match console::run(opts) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => usage_error(e),
    }
}

pub fn run_inventory(args: &ConsoleArgs) -> ExitCode {
    match load_inventory(&args.inventory) {
        Ok(inv) => start(args, inv.path.display().to_string(), &inv),
        Err(code) => code,
    }
}

pub fn run_demo(args: &ConsoleArgs) -> ExitCode {
    match DemoFarm::new() {
        Ok(demo) => start(args, "demo farm".to_string(), &demo.inventory),
        Err(e) => usage_error(e),
    }
}
