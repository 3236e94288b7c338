//! `clauderon`: the command-line face of clauderon.
//!
//! Today it manages plugins (`clauderon plugins …`). Every command reads
//! `CLAUDERON_HOME` (default `~/.clauderon`) for its state.

mod bundled;
mod home;
mod plugins;

use clap::{Parser, Subcommand};

/// Run AI coding agents in isolated sessions; they never hold a real credential.
#[derive(Parser)]
#[command(name = "clauderon", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage plugins: backends, agents, credential sources and hooks.
    #[command(subcommand)]
    Plugins(plugins::PluginsCmd),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLAUDERON_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Plugins(cmd) => plugins::run(cmd).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
