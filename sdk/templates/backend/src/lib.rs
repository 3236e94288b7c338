//! Template backend: runs each session's agent in its own tmux session.
//!
//! It is the smallest useful backend, and a starting point to copy. Every
//! operation is one `tmux` command run through the `process` capability, so
//! `component.toml` grants exactly `process = ["tmux"]`: clauderon refuses any
//! other program this component tries to run.
//!
//! The resource id clauderon stores for a session is the tmux session name:
//! the `resource-name` clauderon chose (`clauderon-<session name>`). Commands name it as `=NAME`, which makes tmux
//! match the name exactly instead of taking the first session it starts with.

use clauderon_sdk::process::Command;
use clauderon_sdk::types::{ResourceState, ResourceStatus, SessionInfo, SessionSpec};
use clauderon_sdk::{Backend, BackendFeatures, BackendInfo, Error, Result};

/// Every tmux session this backend creates starts with this.
const PREFIX: &str = "clauderon-";

/// tmux answers in milliseconds; give up well before the call's own deadline.
const TMUX_TIMEOUT_MS: u32 = 5_000;

struct Tmux;

impl Backend for Tmux {
    fn info() -> BackendInfo {
        BackendInfo {
            id: "example-backend".into(),
            display_name: "tmux (example)".into(),
            features: BackendFeatures {
                attach: true,
                resource_limits: false,
                custom_image: false,
                resume: false,
                isolated: false,
            },
        }
    }

    fn create(spec: SessionSpec) -> Result<SessionInfo> {
        // Use exactly the name clauderon chose: it deletes that name alone
        // when a create fails, and never another session's.
        let name = spec.resource_name.clone();
        if exists(&target(&name)?)? {
            // Not ours: `invalid_input` tells clauderon to leave it alone.
            return Err(Error::invalid_input(format!("a tmux session `{name}` already exists; pick another name")));
        }
        tmux().args(new_session_args(&name, &spec)?).run()?;
        Ok(SessionInfo { resource_id: name, status: running() })
    }

    fn delete(resource_id: String) -> Result<()> {
        let target = target(&resource_id)?;
        let out = tmux().args(["kill-session", "-t", &target]).output()?;
        // A session that is already gone counts as deleted.
        if out.exit_code == Some(0) || !exists(&target)? {
            return Ok(());
        }
        Err(Error::failed(format!(
            "tmux could not kill session `{resource_id}`: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }

    fn status(resource_id: String) -> Result<ResourceStatus> {
        // tmux closes a session when its command exits, so "gone" also means
        // "the agent finished".
        if exists(&target(&resource_id)?)? {
            Ok(running())
        } else {
            Ok(ResourceStatus {
                state: ResourceState::Missing,
                detail: Some(format!("there is no tmux session named `{resource_id}`")),
            })
        }
    }

    fn output(resource_id: String, lines: u32) -> Result<String> {
        // `-S -N` starts N lines up in the scrollback; the visible screen
        // follows, padded with blank lines, so keep only the last N.
        let pane = format!("{}:", target(&resource_id)?);
        let start = format!("-{lines}");
        let text = tmux().args(["capture-pane", "-p", "-t", &pane, "-S", &start]).run()?;
        Ok(last_lines(&text, lines as usize))
    }

    fn attach_argv(resource_id: String) -> Result<Vec<String>> {
        Ok(vec!["tmux".into(), "-L".into(), SOCKET.into(), "attach".into(), "-t".into(), target(&resource_id)?])
    }

    fn list_resources() -> Result<Vec<String>> {
        let out = tmux().args(["list-sessions", "-F", "#{session_name}"]).output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.exit_code == Some(0) {
            return Ok(stdout.lines().filter(|s| s.starts_with(PREFIX)).map(String::from).collect());
        }
        // No tmux server running means no sessions, not a failure.
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("no server running") || stderr.contains("error connecting to") {
            return Ok(Vec::new());
        }
        Err(Error::failed(format!("tmux list-sessions failed: {}", stderr.trim())))
    }
}

clauderon_sdk::export_backend!(Tmux);

/// The tmux server (socket name) this backend uses. A server of its own
/// keeps sessions away from the user's tmux server, whose global environment
/// may hold real tokens the agent must never inherit.
const SOCKET: &str = "clauderon";

/// A `tmux -L clauderon` command with this backend's timeout.
fn tmux() -> Command {
    Command::new("tmux").args(["-L", SOCKET]).timeout_ms(TMUX_TIMEOUT_MS)
}

/// Whether the session `target` (`=NAME`) exists.
fn exists(target: &str) -> Result<bool> {
    let out = tmux().args(["has-session", "-t", target]).output()?;
    if out.timed_out {
        return Err(Error::failed("tmux has-session timed out"));
    }
    Ok(out.exit_code == Some(0))
}

fn running() -> ResourceStatus {
    ResourceStatus { state: ResourceState::Running, detail: None }
}

// Pure logic below: no host calls, so `cargo test` can check it natively.

/// The exact-match tmux target for a resource id, refusing ids this backend
/// did not make (so it never touches the user's own tmux sessions).
fn target(resource_id: &str) -> Result<String> {
    if !resource_id.starts_with(PREFIX) || resource_id.len() == PREFIX.len() {
        return Err(Error::invalid_input(format!(
            "`{resource_id}` is not a session of this backend (its names start with `{PREFIX}`)"
        )));
    }
    Ok(format!("={resource_id}"))
}

/// Arguments of `tmux new-session` that starts the agent detached.
fn new_session_args(name: &str, spec: &SessionSpec) -> Result<Vec<String>> {
    if spec.launch.argv.is_empty() {
        return Err(Error::invalid_input("the launch plan has no command to run"));
    }
    let mut args: Vec<String> = vec!["new-session".into(), "-d".into(), "-s".into(), name.into()];
    args.extend(["-c".into(), spec.workdir.clone()]);
    // The agent sees only these variables on top of tmux's own environment.
    for var in &spec.launch.env {
        args.extend(["-e".into(), format!("{}={}", var.name, var.value)]);
    }
    // `--` ends tmux's options. With two or more words tmux runs the argv
    // directly; a single word goes through `sh -c`.
    args.push("--".into());
    args.extend(spec.launch.argv.iter().cloned());
    Ok(args)
}

/// The last `n` lines of `text`, ignoring trailing blank lines.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines.iter().rposition(|l| !l.trim().is_empty()).map_or(0, |i| i + 1);
    let start = end.saturating_sub(n);
    lines[start..end].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clauderon_sdk::types::{AccessMode, EnvVar, LaunchPlan};

    fn spec(argv: &[&str]) -> SessionSpec {
        SessionSpec {
            id: "0b7c".into(),
            name: "fix-bug".into(),
            resource_name: "clauderon-fix-bug".into(),
            worktree: "/src/repo".into(),
            workdir: "/src/repo".into(),
            access_mode: AccessMode::ReadOnly,
            launch: LaunchPlan {
                argv: argv.iter().map(|s| s.to_string()).collect(),
                env: vec![EnvVar { name: "API_KEY".into(), value: "placeholder".into() }],
                files: Vec::new(),
                credentials: Vec::new(),
                transcript_path: None,
            },
            image: None,
            cpu_limit: None,
            memory_limit: None,
            options: Vec::new(),
        }
    }

    #[test]
    fn builds_the_new_session_command() {
        let args = new_session_args("clauderon-fix-bug", &spec(&["my-agent", "--print"])).expect("valid spec");
        assert_eq!(
            args,
            [
                "new-session",
                "-d",
                "-s",
                "clauderon-fix-bug",
                "-c",
                "/src/repo",
                "-e",
                "API_KEY=placeholder",
                "--",
                "my-agent",
                "--print",
            ]
        );
        assert!(new_session_args("clauderon-x", &spec(&[])).is_err());
    }

    #[test]
    fn names_and_targets() {
        assert_eq!(target("clauderon-x").expect("ours"), "=clauderon-x");
        assert!(target("work").is_err());
        assert!(target("clauderon-").is_err());
    }

    #[test]
    fn keeps_the_last_lines() {
        assert_eq!(last_lines("a\nb\nc\n\n\n", 2), "b\nc");
        assert_eq!(last_lines("a\nb\n", 5), "a\nb");
        assert_eq!(last_lines("a\n", 0), "");
        assert_eq!(last_lines("\n\n", 3), "");
    }
}
