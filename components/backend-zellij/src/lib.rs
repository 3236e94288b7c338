//! The Zellij backend: one background zellij session per clauderon session,
//! named `clauderon-<session name>`, with the agent as its one pane (started in the
//! session's working directory, with the agent's environment).
//!
//! It only runs `zellij` (its one grant). The agent's environment is given to
//! the zellij server when the session is created, so every pane inherits it
//! and nothing of the daemon's own environment leaks in beyond PATH, HOME,
//! USER, LANG and TERM.

use clauderon_sdk::process::Command;
use clauderon_sdk::types::{ResourceState, ResourceStatus, SessionInfo, SessionSpec};
use clauderon_sdk::{Backend, BackendFeatures, BackendInfo, Error, Result, log};

/// Prefix of every zellij session this backend owns.
const PREFIX: &str = "clauderon-";

/// How many times `stop` asks zellij to kill a session that stays running.
const KILL_ATTEMPTS: u32 = 3;

struct Zellij;

fn zellij() -> Command {
    Command::new("zellij")
}

/// The zellij session for a clauderon session: the name the host chose.
fn session_name(spec: &SessionSpec) -> Result<String> {
    Ok(owned(&spec.resource_name)?.to_string())
}

/// Only ever touch sessions this backend created. (`pub(crate)`, like
/// [`layout`]: fuzz/fuzz_targets compile this file as a module and call it.)
pub(crate) fn owned(resource_id: &str) -> Result<&str> {
    if resource_id.starts_with(PREFIX) && !resource_id.contains(char::is_whitespace) {
        Ok(resource_id)
    } else {
        Err(Error::invalid_input(format!("`{resource_id}` is not a zellij session of clauderon")))
    }
}

/// `zellij list-sessions`, parsed: (name, exited).
fn sessions() -> Result<Vec<(String, bool)>> {
    let out = zellij().args(["list-sessions", "--no-formatting"]).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.exit_code != Some(0) && text.trim().is_empty() && !stderr.contains("No active zellij sessions") {
        return Err(Error::failed(format!("zellij could not list its sessions: {}", stderr.trim())));
    }
    Ok(text
        .lines()
        .filter_map(|line| {
            let name = line.split_whitespace().next()?;
            Some((name.to_string(), line.contains("EXITED")))
        })
        .collect())
}

fn state_of(name: &str) -> Result<ResourceStatus> {
    // zellij 0.45 has left a live session out of one listing (seen under
    // load): only a session missing from three listings in a row is gone.
    let mut found = None;
    for _ in 0..3 {
        found = sessions()?.into_iter().find(|(n, _)| n == name);
        if found.is_some() {
            break;
        }
    }
    let (state, detail) = match found {
        None => (ResourceState::Missing, Some(format!("no zellij session `{name}`"))),
        Some((_, true)) => (ResourceState::Stopped, Some("the zellij session has exited".into())),
        Some((_, false)) => (ResourceState::Running, None),
    };
    Ok(ResourceStatus { state, detail })
}

/// How long the first `attach --create-background` may take. Two zellij
/// sessions created at the same instant can leave one of them hanging (seen
/// with 0.45), so a hung attempt is killed and tried once more, with twice
/// as long (a loaded machine is slow to start one too; the call's deadline
/// still bounds it).
const ATTACH_TIMEOUT_MS: u32 = 4_000;
/// How many times a session's start is tried.
const ATTACH_ATTEMPTS: u32 = 2;

/// The agent's HOME (its own config home), if the plan sets one.
fn agent_home(spec: &SessionSpec) -> Option<&str> {
    spec.launch.env.iter().rev().find(|e| e.name == "HOME").map(|e| e.value.as_str())
}

/// A KDL string literal.
fn kdl_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The agent's pane: the first (and only) terminal pane of [`layout`].
const AGENT_PANE: &str = "terminal_0";

/// The session's layout: one tab, the agent's pane between zellij's tab and
/// status bars. A layout with a tab also keeps zellij's startup tips away
/// (they would cover the agent on attach and take the user's first keystrokes;
/// `--show-startup-tips false` does not reach a session created in the background).
pub(crate) fn layout(spec: &SessionSpec) -> String {
    let mut argv: Vec<String> = agent_home(spec).map(|h| vec!["env".into(), format!("HOME={h}")]).unwrap_or_default();
    argv.extend(spec.launch.argv.iter().cloned());
    let (command, args) = argv.split_first().map(|(c, a)| (c.clone(), a)).unwrap_or_default();
    let args: Vec<String> = args.iter().map(|a| kdl_string(a)).collect();
    let args = if args.is_empty() { String::new() } else { format!(" {{ args {}; }}", args.join(" ")) };
    let bar =
        |plugin: &str, size: u8| format!("pane size={size} borderless=true {{ plugin location=\"zellij:{plugin}\"; }}");
    format!(
        "layout {{\n  default_tab_template {{\n    {}\n    children\n    {}\n  }}\n  tab name=\"agent\" focus=true {{\n    pane command={} cwd={}{args}\n  }}\n}}\n",
        bar("tab-bar", 1),
        bar("status-bar", 2),
        kdl_string(&command),
        kdl_string(&spec.workdir),
    )
}

/// Start the session's zellij server with the agent as its one pane, with the
/// agent's environment — except HOME: zellij itself keeps the user's (their
/// zellij config, no first-run wizard), and only the agent gets the session's
/// own HOME. The pane stays (held) when the agent exits.
fn start_server(name: &str, spec: &SessionSpec) -> Result<()> {
    let layout = layout(spec);
    for attempt in 1..=ATTACH_ATTEMPTS {
        let out = zellij()
            .args(["--layout-string", &layout, "attach", "--create-background", name])
            .cwd(spec.workdir.clone())
            .envs(spec.launch.env.iter().filter(|e| e.name != "HOME").cloned())
            .timeout_ms(ATTACH_TIMEOUT_MS * attempt)
            .output()?;
        if out.timed_out {
            log::warn(&format!("zellij attach --create-background {name} hung (attempt {attempt}); retrying"));
            continue;
        }
        if out.exit_code == Some(0) {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::failed(format!("zellij could not create session `{name}`: {}", stderr.trim())));
    }
    Err(Error::failed(format!(
        "zellij did not create session `{name}` in time, twice (another zellij session may have been starting at the same moment); try again"
    )))
}

fn launch(spec: &SessionSpec) -> Result<SessionInfo> {
    let name = session_name(spec)?;
    if spec.launch.argv.is_empty() {
        return Err(Error::invalid_input("the agent's launch plan has no command"));
    }
    start_server(&name, spec)?;
    Ok(SessionInfo { resource_id: name.clone(), status: state_of(&name)? })
}

impl Backend for Zellij {
    fn info() -> BackendInfo {
        BackendInfo {
            id: "zellij".into(),
            display_name: "Zellij".into(),
            features: BackendFeatures { attach: true, resume: true, ..BackendFeatures::NONE },
        }
    }

    fn create(spec: SessionSpec) -> Result<SessionInfo> {
        let name = session_name(&spec)?;
        if sessions()?.iter().any(|(n, _)| *n == name) {
            return Err(Error::invalid_input(format!(
                "a zellij session `{name}` already exists and is not this session's; \
                 remove it or pick another --name"
            )));
        }
        launch(&spec)
    }

    fn start(resource_id: String, spec: SessionSpec) -> Result<SessionInfo> {
        if !resource_id.is_empty() {
            Self::delete(resource_id)?;
        }
        launch(&spec)
    }

    fn stop(resource_id: String) -> Result<()> {
        let name = owned(&resource_id)?;
        if state_of(name)?.state != ResourceState::Running {
            return Ok(());
        }
        // The session may end on its own between the check and the kill
        // (then kill-session exits 1): a failed kill is an error only if the
        // session is still running afterwards. A busy zellij server (seen
        // under CI load) can also refuse one kill and take the next.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match zellij().args(["kill-session", name]).run() {
                Ok(_) => return Ok(()),
                Err(_) if state_of(name)?.state != ResourceState::Running => return Ok(()),
                Err(e) if attempts == KILL_ATTEMPTS => return Err(e),
                Err(_) => continue,
            }
        }
    }

    fn delete(resource_id: String) -> Result<()> {
        let name = owned(&resource_id)?;
        let state = state_of(name)?.state;
        if state == ResourceState::Missing {
            return Ok(());
        }
        // Outcomes ignored: the session may end on its own meanwhile; the
        // check below is what counts.
        if state == ResourceState::Running {
            zellij().args(["kill-session", name]).output()?;
        }
        zellij().args(["delete-session", "--force", name]).output()?;
        match state_of(name)?.state {
            ResourceState::Missing => Ok(()),
            _ => Err(Error::failed(format!("the zellij session `{name}` could not be deleted"))),
        }
    }

    fn status(resource_id: String) -> Result<ResourceStatus> {
        state_of(owned(&resource_id)?)
    }

    fn output(resource_id: String, lines: u32) -> Result<String> {
        let name = owned(&resource_id)?;
        // zellij cannot dump the screen of a session whose pane has exited
        // (it waits until its own timeout): say so at once.
        let state = state_of(name)?;
        if state.state != ResourceState::Running {
            return Err(Error::unsupported(format!(
                "the zellij session `{name}` is not running{}; start it again to see its screen",
                state.detail.map(|d| format!(" ({d})")).unwrap_or_default()
            )));
        }
        // The agent's pane by its id: the layout's only terminal pane. Without
        // it zellij dumps "the focused pane", which is empty once a client has
        // attached and gone (the dashboard's terminal, `clauderon attach`).
        let screen = zellij()
            .env("ZELLIJ_SESSION_NAME", name)
            .args(["action", "dump-screen", "--full", "--pane-id", AGENT_PANE])
            .run()?;
        let all: Vec<&str> = screen.lines().collect();
        let from = all.len().saturating_sub(lines as usize);
        Ok(all[from..].join("\n"))
    }

    fn attach_argv(resource_id: String) -> Result<Vec<String>> {
        Ok(vec!["zellij".into(), "attach".into(), owned(&resource_id)?.into()])
    }

    fn list_resources() -> Result<Vec<String>> {
        Ok(sessions()?.into_iter().map(|(n, _)| n).filter(|n| n.starts_with(PREFIX)).collect())
    }
}

clauderon_sdk::export_backend!(Zellij);
