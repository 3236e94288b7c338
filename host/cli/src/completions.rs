//! Shell completions: `clauderon completions bash|zsh|fish` prints the line
//! a shell runs to complete clauderon's commands and options, and session
//! names from the running daemon. The shell calls the binary back with
//! `COMPLETE=<shell>` set (clap_complete's dynamic completion), so what it
//! offers always matches this binary's commands.

use std::time::Duration;

use clap::ValueEnum;
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::EnvCompleter;

use clauderon_daemon::Home;
use clauderon_sessions::Session;

use clauderon_client::Client;

/// The environment variable the shell sets when it asks for completions.
const VAR: &str = "COMPLETE";

/// A shell clauderon can complete in.
#[derive(Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Answer the shell if it is asking for completions (and exit); otherwise
/// return. Runs first in `main`, before anything else.
pub fn answer_if_asked(command: impl Fn() -> clap::Command) {
    clap_complete::CompleteEnv::with_factory(command).var(VAR).complete();
}

/// Print `shell`'s registration: the script that makes it complete clauderon.
pub fn print_registration(shell: Shell) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let completer: &dyn EnvCompleter = match shell {
        Shell::Bash => &clap_complete::env::Bash,
        Shell::Zsh => &clap_complete::env::Zsh,
        Shell::Fish => &clap_complete::env::Fish,
    };
    let exe = std::env::current_exe().context("finding the clauderon binary")?;
    let exe = exe.to_str().context("the clauderon binary's path is not UTF-8")?;
    let mut out = std::io::stdout().lock();
    completer.write_registration(VAR, "clauderon", "clauderon", exe, &mut out).context("writing the script")?;
    Ok(())
}

/// The names of the sessions the daemon has (none if it is not running: a
/// completion never starts it; a daemon that does not answer is given up
/// on after its health check's 2 s, a slow list after 1 s).
pub fn session_names() -> Vec<CompletionCandidate> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return Vec::new() };
    runtime
        .block_on(async {
            let home = Home::locate().ok()?;
            let client = Client::if_running(&home, Duration::from_secs(1)).await.ok()?;
            let path = "/api/sessions?archived=true";
            let sessions: Vec<Session> = client.call_as(reqwest::Method::GET, path, None::<&()>).await.ok()?;
            let names = sessions.iter().map(|s| {
                CompletionCandidate::new(s.name.as_str()).help(Some(clauderon_client::kebab(&s.status).into()))
            });
            Some(names.collect())
        })
        .unwrap_or_default()
}
