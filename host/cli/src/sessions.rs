//! Session commands: create, list, attach, stop, start, archive, unarchive,
//! delete, set-access-mode, set-egress, reconcile. Each is one call to the daemon's API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use clauderon_api::{Answer, ApprovalBody, Argv, Changes, Deleted, ModeBody, Typed};
use clauderon_sessions::{AccessMode, CreateRequest, EgressMode, EgressPolicy, Isolation, Session, Synced};
use reqwest::Method;
use serde_json::Value;

use clauderon_client::{Client, kebab, seg};
use clauderon_daemon::Home;

/// `--access-mode`/`--mode`: `read-only` or `read-write`, parsed as the one [`AccessMode`].
pub fn access_mode_arg() -> impl clap::builder::TypedValueParser<Value = AccessMode> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["read-only", "read-write"]).try_map(|s| s.parse::<AccessMode>())
}

/// `--egress`/`--mode`: `allow-list` or `allow-all`, parsed as the one [`EgressMode`].
pub fn egress_mode_arg() -> impl clap::builder::TypedValueParser<Value = EgressMode> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["allow-list", "allow-all"]).try_map(|s| s.parse::<EgressMode>())
}

#[derive(Args)]
pub struct CreateArgs {
    /// A directory inside the git repository to work on.
    #[arg(short, long)]
    pub repo: PathBuf,
    /// What the agent should do.
    #[arg(short, long)]
    pub prompt: String,
    /// Backend (default from config.toml: zellij).
    #[arg(short, long)]
    pub backend: Option<String>,
    /// Agent (default from config.toml: claude-code).
    #[arg(short, long)]
    pub agent: Option<String>,
    /// Model for the agent.
    #[arg(long)]
    pub model: Option<String>,
    /// What the session may do through the proxy.
    #[arg(long, value_parser = access_mode_arg(), default_value = "read-write")]
    pub access_mode: AccessMode,
    /// Where the session may connect: `allow-list` (the daemon's `[egress]`
    /// list — agents' APIs, GitHub, package registries — plus --allow-host)
    /// or `allow-all`. Default from config.toml: allow-list.
    #[arg(long, value_parser = egress_mode_arg())]
    pub egress: Option<EgressMode>,
    /// Let the session reach this host too (repeatable; `*.example.com` for
    /// its subdomains).
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// Print mode: the agent answers once and exits.
    #[arg(long)]
    pub print: bool,
    /// Plan mode: the agent plans without changing files.
    #[arg(long)]
    pub plan: bool,
    /// Let the agent act without asking for permission (the session is its sandbox).
    #[arg(long)]
    pub skip_permissions: bool,
    /// Container image (docker backend; default from config).
    #[arg(long)]
    pub image: Option<String>,
    /// CPU limit in cores (docker backend), e.g. 2 or 0.5.
    #[arg(long)]
    pub cpu_limit: Option<f64>,
    /// Memory limit (docker backend), e.g. 2g, 512m or bytes.
    #[arg(long, value_parser = parse_size)]
    pub memory_limit: Option<u64>,
    /// Session name (default: from the prompt).
    #[arg(long)]
    pub name: Option<String>,
    /// Print the session as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn create(home: &Home, a: CreateArgs) -> anyhow::Result<ExitCode> {
    let repo = std::path::absolute(&a.repo).with_context(|| format!("bad path {}", a.repo.display()))?;
    let client = Client::connect(home).await?;
    let request = CreateRequest {
        repo,
        prompt: a.prompt,
        name: a.name,
        backend: a.backend,
        agent: a.agent,
        model: a.model,
        access_mode: Some(a.access_mode),
        egress: a.egress,
        allow_hosts: a.allow_hosts,
        print: a.print,
        plan_mode: a.plan,
        skip_permissions: a.skip_permissions,
        image: a.image,
        cpu_limit: a.cpu_limit,
        memory_limit: a.memory_limit,
    };
    // Long steps (an image pull) report progress on the event stream: show it.
    let progress = client.watch_progress().await;
    let created = client.call_as::<Session>(Method::POST, "/api/sessions", Some(&request)).await;
    if let Some(task) = progress {
        task.abort();
    }
    let s = created?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!(
            "Created session {} ({} backend, {} agent, {}, egress {}).",
            s.name,
            s.backend,
            s.agent,
            s.access_mode.as_str(),
            s.egress.describe()
        );
        println!("Worktree: {} (branch {})", s.worktree.display(), s.branch);
        println!("Attach with: clauderon attach {}", s.name);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn list(home: &Home, archived: bool, as_json: bool) -> anyhow::Result<ExitCode> {
    let client = Client::connect(home).await?;
    let path = if archived { "/api/sessions?archived=true" } else { "/api/sessions" };
    let sessions: Vec<Session> = client.call_as(Method::GET, path, None::<&()>).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&sessions)?);
        return Ok(ExitCode::SUCCESS);
    }
    if sessions.is_empty() {
        println!("No sessions. Create one with: clauderon create --repo . --prompt \"…\"");
        return Ok(ExitCode::SUCCESS);
    }
    let isolation = |s: &Session| match s.isolation {
        Some(Isolation::Sandbox) => "sandbox",
        Some(Isolation::Backend) => "container",
        Some(Isolation::None) => "NONE",
        None => "-",
    };
    let rows: Vec<[String; 7]> = sessions
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                kebab(&s.status),
                kebab(&s.agent_status),
                s.backend.clone(),
                s.agent.clone(),
                s.access_mode.as_str().to_string(),
                isolation(s).to_string(),
            ]
        })
        .collect();
    let header = ["NAME", "STATUS", "AGENT STATUS", "BACKEND", "AGENT", "ACCESS", "ISOLATION"].map(String::from);
    // Each column as wide as its widest cell, so a long name never shifts the others.
    let widths: Vec<usize> = (0..header.len())
        .map(|i| std::iter::once(&header).chain(&rows).map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String; 7]| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join(" ").trim_end().to_string()
    };
    println!("{}", line(&header));
    for (s, row) in sessions.iter().zip(&rows) {
        println!("{}", line(row));
        if let Some(err) = &s.error {
            println!("  ! {err}");
        }
        if s.isolation == Some(Isolation::None) {
            println!(
                "  ! unsandboxed: this host session can read your files and reach your network (see [sandbox] in config.toml)"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Print `answer` as JSON (`--json`), or the sentence `human` makes of it.
fn print_answer<T: serde::Serialize>(
    answer: &T,
    json: bool,
    human: impl FnOnce(&T) -> String,
) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(answer)?);
    } else {
        println!("{}", human(answer));
    }
    Ok(ExitCode::SUCCESS)
}

/// `stop`, `start`, `archive`, `unarchive`: POST and report the new status.
pub async fn transition(home: &Home, name: &str, action: &str, json: bool) -> anyhow::Result<ExitCode> {
    let client = Client::connect(home).await?;
    let s: Session =
        client.call_as(Method::POST, &format!("/api/sessions/{}/{action}", seg(name)), None::<&()>).await?;
    print_answer(&s, json, |s| format!("{} is now {}.", s.name, kebab(&s.status)))
}

/// `sync`: the session's commits brought into the user's repository.
pub async fn sync(home: &Home, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let client = Client::connect(home).await?;
    let synced: Synced =
        client.call_as(Method::POST, &format!("/api/sessions/{}/sync", seg(name)), None::<&()>).await?;
    print_answer(&synced, json, |s| s.message.clone())
}

/// `approve` / `deny`: answer the permission prompt the session's agent is waiting on.
pub async fn answer(home: &Home, name: &str, answer: Answer, json: bool) -> anyhow::Result<ExitCode> {
    let client = Client::connect(home).await?;
    let path = format!("/api/sessions/{}/approval", seg(name));
    let typed: Typed = client.call_as(Method::POST, &path, Some(&ApprovalBody { answer })).await?;
    let done = if answer == Answer::Approve { "Approved" } else { "Denied" };
    print_answer(&typed, json, |_| format!("{done}: typed the agent's keys into {name}'s terminal."))
}

pub async fn delete(home: &Home, name: &str, force: bool, json: bool) -> anyhow::Result<ExitCode> {
    let client = Client::connect(home).await?;
    let q = if force { "?force=true" } else { "" };
    let r: Deleted = client.call_as(Method::DELETE, &format!("/api/sessions/{}{q}", seg(name)), None::<&()>).await?;
    print_answer(&r, json, |r| r.message.clone())
}

pub async fn set_access_mode(home: &Home, name: &str, mode: AccessMode, json: bool) -> anyhow::Result<ExitCode> {
    let client = Client::connect(home).await?;
    let path = format!("/api/sessions/{}/access-mode", seg(name));
    let s: Session = client.call_as(Method::PUT, &path, Some(&ModeBody { mode })).await?;
    print_answer(&s, json, |s| format!("{} is now {}.", s.name, s.access_mode.as_str()))
}

/// `set-egress`: the session's policy changed as asked (the mode replaced,
/// hosts added and removed), or shown as it is when nothing is asked.
pub async fn set_egress(
    home: &Home,
    name: &str,
    mode: Option<EgressMode>,
    add: Vec<String>,
    remove: Vec<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let client = Client::connect(home).await?;
    let path = format!("/api/sessions/{}", seg(name));
    let s: Session = client.call_as(Method::GET, &path, None::<&()>).await?;
    if mode.is_none() && add.is_empty() && remove.is_empty() {
        return print_answer(&s, json, |s| format!("{}: egress {}.", s.name, s.egress.describe()));
    }
    let mut policy = EgressPolicy { mode: mode.unwrap_or(s.egress.mode), hosts: s.egress.hosts };
    for host in &remove {
        let host = clauderon_proxy::hosts::check_pattern(host).map_err(anyhow::Error::msg)?;
        if !policy.hosts.contains(&host) {
            anyhow::bail!("{} was not given `{host}` (its hosts: {})", s.name, policy.hosts.join(", "));
        }
        policy.hosts.retain(|h| *h != host);
    }
    policy.hosts.extend(add);
    let s: Session = client.call_as(Method::PUT, &format!("{path}/egress"), Some(&policy)).await?;
    print_answer(&s, json, |s| format!("{}: egress is now {}.", s.name, s.egress.describe()))
}

pub async fn reconcile(home: &Home, json: bool) -> anyhow::Result<ExitCode> {
    let client = Client::connect(home).await?;
    let r: Changes = client.call_as(Method::POST, "/api/reconcile", None::<&()>).await?;
    print_answer(&r, json, |r| match r.changes.is_empty() {
        true => "Every session matches its backend.".to_string(),
        false => r.changes.join("\n"),
    })
}

/// `attach`: run the backend's attach command in this terminal, and exit with
/// its status. A command that fails at once while the daemon still reports the
/// session running is run again (three times at most), saying so.
pub async fn attach(home: &Home, name: &str) -> anyhow::Result<ExitCode> {
    let client = Client::connect(home).await?;
    let path = format!("/api/sessions/{}", seg(name));
    // The command owns the terminal: keys that signal the foreground group
    // are its to handle, and must not end this process under it. (Handled,
    // not ignored: an ignored signal would stay ignored in the command.)
    use clauderon_api::console::{ATTACH_ATTEMPTS, FAILED_AT_ONCE, RETRY_PAUSE};
    use tokio::signal::unix::{SignalKind, signal};
    let _keep = (signal(SignalKind::interrupt())?, signal(SignalKind::quit())?);
    let mut attempt = 1;
    loop {
        // Asked each time: the daemon checks it against the backend's grant.
        let Argv { argv } = client.call_as(Method::GET, &format!("{path}/attach"), None::<&()>).await?;
        let Some((program, args)) = argv.split_first() else { anyhow::bail!("the backend gave no way to attach") };
        let shown = clauderon_client::safe_text::for_terminal(&argv.join(" "));
        // The user sees what runs in their terminal before it runs.
        eprintln!("clauderon: attaching with `{shown}`");
        let started = std::time::Instant::now();
        let status = tokio::process::Command::new(program)
            .args(args)
            .status()
            .await
            .with_context(|| format!("running {shown}"))?;
        if status.success() {
            return Ok(ExitCode::SUCCESS);
        }
        let code = exit_code(status);
        if attempt == ATTACH_ATTEMPTS || started.elapsed() > FAILED_AT_ONCE {
            return Ok(ExitCode::from(code));
        }
        let session: Session = client.call_as(Method::GET, &path, None::<&()>).await?;
        if session.status != clauderon_sessions::Status::Running {
            return Ok(ExitCode::from(code));
        }
        attempt += 1;
        eprintln!(
            "clauderon: `{shown}` failed at once (exit {code}) but {} is running; trying again ({attempt} of {ATTACH_ATTEMPTS})",
            session.name
        );
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// A finished command's status as a shell reports it: its code, or 128 + the
/// signal that ended it.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1);
    u8::try_from(code).unwrap_or(1)
}

/// `history`: the session's chat, from the agent's own transcript.
pub async fn history(home: &Home, name: &str, follow: bool, json: bool) -> anyhow::Result<ExitCode> {
    let client = Client::connect(home).await?;
    let mut cursor = 0;
    loop {
        let path = format!("/api/sessions/{}/history?cursor={cursor}", seg(name));
        let page = client.call(Method::GET, &path, None).await?;
        for m in page["messages"].as_array().into_iter().flatten() {
            if json {
                println!("{}", clauderon_client::safe_text::json_line(m));
            } else {
                print_message(m);
            }
        }
        cursor = page["cursor"].as_u64().unwrap_or(cursor);
        if !follow {
            if page["transcript"].is_null() && !json {
                eprintln!("(no transcript yet: the agent has not written one, or it keeps none)");
            }
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// One chat message; its text is the agent's (or the model's, or a tool's):
/// control sequences in it are shown, not obeyed.
fn print_message(m: &Value) {
    use clauderon_client::safe_text::for_terminal;
    let role = m["role"].as_str().unwrap_or("?");
    let text = for_terminal(m["text"].as_str().unwrap_or(""));
    match m["tool_name"].as_str() {
        Some(tool) => println!("[{role} {}] {text}", for_terminal(tool)),
        None => println!("[{role}] {text}"),
    }
}

/// `2g`, `512m`, `64k` or plain bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits.parse().map_err(|_| format!("`{text}` is not a size like 2g, 512m or 1048576"))?;
    let mult = match unit.trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return Err(format!("`{text}`: unknown unit (use k, m or g)")),
    };
    Ok(n * mult)
}
