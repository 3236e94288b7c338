//! `clauderon`: the command-line face of clauderon.
//!
//! `daemon` runs the host; every session command talks to it over its API
//! (starting it in the background when needed); `plugins` manages components.
//! Every command reads `CLAUDERON_HOME` (default `~/.clauderon`).

mod audit;
mod bundled;
mod completions;
mod daemon;
mod doctor;
mod plugin_dev;
mod plugins;
mod scaffold;
mod sessions;
mod web;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::engine::ArgValueCandidates;

use clauderon_api::Answer;
use clauderon_daemon::Home;

/// mimalloc: the proxy allocates on every request, and spent ~12% of its
/// CPU in glibc's malloc (`just bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Run AI coding agents in isolated sessions; they never hold a real credential.
#[derive(Parser)]
#[command(name = "clauderon", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: the API on 127.0.0.1:3030, sessions and plugins.
    Daemon(daemon::DaemonArgs),
    /// Create a session: a git worktree, the agent, and a backend to run it in.
    #[command(after_help = "Examples:\n  clauderon create -r . -p 'make test' -a shell\n  \
        clauderon create -r ~/src/app/web -p 'Fix the login bug' --name login-bug --access-mode read-only")]
    Create(sessions::CreateArgs),
    /// List sessions.
    List {
        /// Include archived sessions.
        #[arg(long)]
        archived: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The terminal UI: every session live, with filters, search, each
    /// session's chat (approve or deny what its agent asks, write to it) and
    /// the keys to attach, stop, start, archive, delete and switch access
    /// mode (`?` lists them). Quits with q; the terminal is restored on any exit.
    #[command(after_help = "Keys, colours (NO_COLOR turns them off) and more: docs/tui.md")]
    Tui,
    /// Attach your terminal to a session: runs the backend's attach command
    /// (shown first) and exits with its status. One that fails at once while
    /// the session is running is tried again, three times at most.
    Attach {
        #[arg(add = ArgValueCandidates::new(completions::session_names))]
        name: String,
    },
    /// Allow what a session's agent is asking permission for (its agent
    /// status is waiting-for-approval): types the agent's own "allow once"
    /// keys into its terminal.
    #[command(after_help = "Example:\n  clauderon list   # its agent is waiting-for-approval\n  \
        clauderon history fix-login   # what it asks\n  clauderon approve fix-login")]
    Approve {
        #[arg(add = ArgValueCandidates::new(completions::session_names))]
        name: String,
        /// Print what the API answered as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Refuse what a session's agent is asking permission for (types the
    /// agent's own "no" keys into its terminal).
    Deny {
        #[arg(add = ArgValueCandidates::new(completions::session_names))]
        name: String,
        /// Print what the API answered as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop a session (keeps it for `start`).
    Stop {
        #[arg(add = ArgValueCandidates::new(completions::session_names))]
        name: String,
        /// Print the session as JSON (what the API answered).
        #[arg(long)]
        json: bool,
    },
    /// Bring a session's commits into your repository now. They also come
    /// back by themselves when a turn ends, and on stop, archive and
    /// delete; for a Kubernetes session they are copied out of its pod
    /// (only its branch, only forward).
    #[command(after_help = "Example:\n  clauderon sync fix-login   # then: git log clauderon/fix-login")]
    Sync {
        #[arg(add = ArgValueCandidates::new(completions::session_names))]
        name: String,
        /// Print what the API answered as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start a stopped session again.
    Start {
        #[arg(add = ArgValueCandidates::new(completions::session_names))]
        name: String,
        /// Print the session as JSON (what the API answered).
        #[arg(long)]
        json: bool,
    },
    /// Archive a session (stops it and hides it from `list`).
    Archive {
        #[arg(add = ArgValueCandidates::new(completions::session_names))]
        name: String,
        /// Print the session as JSON (what the API answered).
        #[arg(long)]
        json: bool,
    },
    /// Bring an archived session back.
    Unarchive {
        #[arg(add = ArgValueCandidates::new(completions::session_names))]
        name: String,
        /// Print the session as JSON (what the API answered).
        #[arg(long)]
        json: bool,
    },
    /// Delete a session, its backend resource, worktree and branch (a branch
    /// with commits of its own is kept).
    Delete {
        #[arg(add = ArgValueCandidates::new(completions::session_names))]
        name: String,
        /// Delete even if the backend cannot remove its resource.
        #[arg(short, long)]
        force: bool,
        /// Print what was done as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change what a session may do through the proxy.
    SetAccessMode {
        #[arg(add = ArgValueCandidates::new(completions::session_names))]
        name: String,
        #[arg(long, value_parser = sessions::access_mode_arg())]
        mode: clauderon_sessions::AccessMode,
        /// Print the session as JSON (what the API answered).
        #[arg(long)]
        json: bool,
    },
    /// Change where a session may connect through the proxy; with no options,
    /// show it. An allow-list session reaches the daemon's `[egress]` list
    /// (agents' APIs, GitHub, package registries) and the hosts it was given;
    /// anything else gets 403. Taking a host away ends its open connections.
    ///
    /// Examples:
    ///   clauderon set-egress fix-login --allow-host api.stripe.com
    ///   clauderon set-egress fix-login --remove-host api.stripe.com
    ///   clauderon set-egress fix-login --mode allow-all
    #[command(verbatim_doc_comment)]
    SetEgress {
        #[arg(add = ArgValueCandidates::new(completions::session_names))]
        name: String,
        /// `allow-list` (the daemon's list plus the session's hosts) or `allow-all`.
        #[arg(long, value_parser = sessions::egress_mode_arg())]
        mode: Option<clauderon_sessions::EgressMode>,
        /// Let the session reach this host too (repeatable; `*.example.com` for its subdomains).
        #[arg(long = "allow-host", value_name = "HOST")]
        allow_host: Vec<String>,
        /// Take away a host the session was given (repeatable).
        #[arg(long = "remove-host", value_name = "HOST")]
        remove_host: Vec<String>,
        /// Print the session as JSON (what the API answered).
        #[arg(long)]
        json: bool,
    },
    /// Compare every session with its backend and fix what drifted.
    Reconcile {
        /// Print what changed as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a session's chat (user, assistant, tool use and results), read
    /// from the agent's own transcript.
    History {
        #[arg(add = ArgValueCandidates::new(completions::session_names))]
        name: String,
        /// Keep printing new messages as the agent writes them (Ctrl-C to stop).
        #[arg(long, short)]
        follow: bool,
        /// One JSON object per message.
        #[arg(long)]
        json: bool,
    },
    /// Show the proxy's audit: every request sessions made, what was decided,
    /// which credential was injected (by name, never its value).
    #[command(after_help = "Examples:\n  clauderon audit\n  clauderon audit --session login-bug --follow\n  \
        clauderon audit --json > audit.jsonl   # export everything as JSONL")]
    Audit(audit::AuditArgs),
    /// Check what this machine can run now: the daemon, the sandbox, each
    /// backend and agent (with the command that installs what is missing),
    /// each credential. Exits 1 when the default backend and agent cannot work.
    #[command(
        after_help = "Examples:\n  clauderon doctor\n  clauderon doctor --json | jq '.checks[] | select(.ok | not)'"
    )]
    Doctor {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Open the web dashboard in your browser, signed in. The daemon makes a
    /// one-time login link (it works once, for two minutes); the browser
    /// trades it for a login cookie, and never sees the API token.
    #[command(after_help = "Examples:\n  clauderon web\n  \
        clauderon web --print   # only print the link (e.g. to open through an SSH tunnel: ssh -L 3030:127.0.0.1:3030 HOST)")]
    Web {
        /// Print the link instead of opening a browser.
        #[arg(long)]
        print: bool,
    },
    /// Show the configuration or where clauderon keeps things.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Manage plugins: backends, agents, credential sources and hooks.
    #[command(subcommand)]
    Plugins(plugins::PluginsCmd),
    /// Print the script that makes your shell complete clauderon's commands,
    /// options and session names.
    #[command(after_help = "Set up (once):\n  \
        bash: echo 'source <(clauderon completions bash)' >> ~/.bashrc\n  \
        zsh:  echo 'source <(clauderon completions zsh)' >> ~/.zshrc\n  \
        fish: echo 'clauderon completions fish | source' >> ~/.config/fish/config.fish")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: completions::Shell,
    },
    /// The sandbox host sessions run in (see docs/security.md).
    #[command(subcommand)]
    Sandbox(SandboxCmd),
}

#[derive(Subcommand)]
enum SandboxCmd {
    /// Check that this machine can sandbox host sessions (user, mount, PID
    /// and network namespaces, Landlock); says what is missing if not.
    Probe,
    /// Run COMMAND in the sandbox a policy file describes. Host backends run
    /// agents this way; the daemon writes the policy.
    #[command(hide = true)]
    Exec {
        /// The policy file (JSON, written by the daemon).
        #[arg(long)]
        policy: std::path::PathBuf,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

/// `clauderon sandbox …`, run before any thread exists (entering a user
/// namespace needs a single-threaded process).
fn sandbox(cmd: SandboxCmd) -> ExitCode {
    let (policy, command) = match cmd {
        SandboxCmd::Probe => (clauderon_sandbox::probe::probe_policy(), vec!["true".to_string()]),
        SandboxCmd::Exec { policy, command } => match clauderon_sandbox::Policy::read(&policy) {
            Ok(p) => (p, command),
            Err(e) => {
                eprintln!("clauderon {e}");
                return ExitCode::from(125);
            }
        },
    };
    match clauderon_sandbox::exec(&policy, &command) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("clauderon {e}");
            ExitCode::from(125)
        }
    }
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// The effective configuration (config.toml with defaults filled in).
    Show {
        /// Print JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
    /// Where clauderon keeps its files.
    Paths {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Each service the proxy can inject: available, from which source, masked value.
    Credentials {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    let home = Home::locate()?;
    match command {
        Command::Daemon(args) => daemon::run(&home, args).await,
        Command::Create(args) => sessions::create(&home, args).await,
        Command::List { archived, json } => sessions::list(&home, archived, json).await,
        Command::Tui => clauderon_tui::run(&home).await,
        Command::Attach { name } => sessions::attach(&home, &name).await,
        Command::Approve { name, json } => sessions::answer(&home, &name, Answer::Approve, json).await,
        Command::Deny { name, json } => sessions::answer(&home, &name, Answer::Deny, json).await,
        Command::Stop { name, json } => sessions::transition(&home, &name, "stop", json).await,
        Command::Start { name, json } => sessions::transition(&home, &name, "start", json).await,
        Command::Sync { name, json } => sessions::sync(&home, &name, json).await,
        Command::Archive { name, json } => sessions::transition(&home, &name, "archive", json).await,
        Command::Unarchive { name, json } => sessions::transition(&home, &name, "unarchive", json).await,
        Command::Delete { name, force, json } => sessions::delete(&home, &name, force, json).await,
        Command::SetAccessMode { name, mode, json } => sessions::set_access_mode(&home, &name, mode, json).await,
        Command::SetEgress { name, mode, allow_host, remove_host, json } => {
            sessions::set_egress(&home, &name, mode, allow_host, remove_host, json).await
        }
        Command::Reconcile { json } => sessions::reconcile(&home, json).await,
        Command::History { name, follow, json } => sessions::history(&home, &name, follow, json).await,
        Command::Audit(args) => audit::audit(&home, args).await,
        Command::Doctor { json } => doctor::run(&home, json).await,
        Command::Web { print } => web::run(&home, print).await,
        Command::Config(ConfigCmd::Credentials { json }) => audit::credentials(&home, json).await,
        Command::Config(ConfigCmd::Show { json }) => {
            let config = clauderon_daemon::Config::load(&home.config())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&config)?);
            } else {
                print!("{}", toml::to_string(&config)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCmd::Paths { json }) => {
            let paths = [
                ("home", home.root.clone()),
                ("config", home.config()),
                ("store", home.store()),
                ("components", home.components()),
                ("daemon log", home.daemon_log()),
            ];
            if json {
                let map: serde_json::Map<String, serde_json::Value> =
                    paths.iter().map(|(k, p)| (k.replace(' ', "_"), p.display().to_string().into())).collect();
                println!("{}", serde_json::to_string_pretty(&map)?);
            } else {
                for (what, path) in paths {
                    println!("{what:<11} {}", path.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugins(cmd) => plugins::run(cmd).await,
        Command::Completions { shell } => completions::print_registration(shell).map(|()| ExitCode::SUCCESS),
        Command::Sandbox(_) => anyhow::bail!("`clauderon sandbox` runs before the async runtime; this is a bug"),
    }
}

fn main() -> ExitCode {
    completions::answer_if_asked(Cli::command);
    let cli = Cli::parse();
    if let Command::Sandbox(cmd) = cli.command {
        return sandbox(cmd);
    }
    if matches!(cli.command, Command::Daemon(_)) {
        // Before any thread exists: the daemon holds credentials in memory,
        // so no other process of this user may read its memory or
        // environment, and credential sources read a snapshot of the
        // environment (the daemon wipes those variables once it knows them).
        // SAFETY: prctl(PR_SET_DUMPABLE, 0) only changes this process's flag.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            eprintln!("warning: could not make the daemon non-dumpable: {}", std::io::Error::last_os_error());
        }
        clauderon_runtime::capabilities::environment::capture();
    }
    let default_level = match &cli.command {
        Command::Daemon(_) => "info",
        // An author trying one function sees everything it logs.
        Command::Plugins(plugins::PluginsCmd::Call { .. }) => "warn,clauderon_runtime::capabilities::log=trace",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLAUDERON_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
