use std::process::ExitCode;

fn main() -> ExitCode {
    cap_malloc_arenas();
    let cli = farmkey::cli::Cli::from_env();
    farmkey::cli::run(cli)
}

/// glibc gives threads up to 8 malloc arenas per core; a scan's 64
/// workers, mostly waiting on the network, then hold some 8 MiB more
/// (README "Performance": peak RSS). Four arenas serve them as fast. An
/// operator's own `MALLOC_ARENA_MAX` is left to decide.
fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a tunable; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 4);
        }
    }
}
