//! A backend that runs each session's agent in its own tmux session.
//!
//! Every operation is one `tmux` command run through the `process`
//! capability, so `component.toml` grants exactly `process = ["tmux"]`:
//! clauderon refuses any other program this component tries to run.
//!
//! The resource id clauderon stores for a session is the tmux session name,
//! the `resource_name` clauderon chose (`clauderon-<session name>`). Commands
//! name it as `=NAME`, so tmux matches it exactly.

use clauderon_sdk::prelude::*;

/// The component's id: the same as `id` in component.toml.
const ID: &str = "example-backend";
/// The tmux server (`tmux -L SOCKET`) of this backend. A server of its own
/// keeps sessions away from the user's, whose global environment may hold
/// real tokens the agent must never inherit.
const SOCKET: &str = "example-backend";
/// clauderon starts every resource name with this.
const PREFIX: &str = "clauderon-";

struct Tmux;

impl Backend for Tmux {
    fn info() -> BackendInfo {
        let features = BackendFeatures { attach: true, ..BackendFeatures::NONE };
        BackendInfo { id: ID.into(), display_name: "tmux (example)".into(), features }
    }

    fn create(spec: SessionSpec) -> Result<SessionInfo> {
        // Exactly the name clauderon chose: after a failed create it deletes
        // that name alone, never another session's.
        let name = spec.resource_name.clone();
        if exists(&name)? {
            // Not ours: `invalid_input` tells clauderon to leave it alone.
            return Err(Error::invalid_input(format!("a tmux session `{name}` already exists")));
        }
        if spec.launch.argv.is_empty() {
            return Err(Error::invalid_input("the launch plan has no command to run"));
        }
        let mut new_session = tmux().args(["new-session", "-d", "-s", &name, "-c", &spec.workdir]);
        // The agent sees only these variables on top of tmux's own environment.
        for var in spec.launch.env {
            new_session = new_session.args(["-e", &format!("{}={}", var.name, var.value)]);
        }
        // `--` ends tmux's options; two or more words run without a shell.
        new_session.arg("--").args(spec.launch.argv).run()?;
        Ok(SessionInfo::running(name))
    }

    fn delete(resource_id: String) -> Result<()> {
        let out = tmux().args(["kill-session", "-t", &target(&resource_id)?]).output()?;
        // A session that is already gone counts as deleted.
        if out.success() || !exists(&resource_id)? {
            return Ok(());
        }
        Err(Error::failed(format!("tmux could not kill `{resource_id}`: {}", out.stderr_text())))
    }

    fn status(resource_id: String) -> Result<ResourceStatus> {
        // tmux closes a session when its command exits: gone means finished.
        if exists(&resource_id)? {
            return Ok(ResourceStatus::running());
        }
        Ok(ResourceStatus::missing(format!("no tmux session `{resource_id}`")))
    }

    fn attach_argv(resource_id: String) -> Result<Vec<String>> {
        Ok(vec!["tmux".into(), "-L".into(), SOCKET.into(), "attach".into(), "-t".into(), target(&resource_id)?])
    }

    fn list_resources() -> Result<Vec<String>> {
        // No tmux server running means no sessions, not a failure.
        let out = tmux().args(["list-sessions", "-F", "#{session_name}"]).output()?.stdout_text();
        Ok(out.lines().filter(|s| s.starts_with(PREFIX)).map(String::from).collect())
    }
}

export_backend!(Tmux);

/// A `tmux -L SOCKET` command; tmux answers in milliseconds.
fn tmux() -> Command {
    Command::new("tmux").args(["-L", SOCKET]).timeout_ms(5_000)
}

/// Whether this backend's session `name` exists.
fn exists(name: &str) -> Result<bool> {
    Ok(tmux().args(["has-session", "-t", &target(name)?]).output()?.success())
}

/// The exact-match tmux target for a resource id, refusing ids this backend
/// did not make (so it never touches the user's own tmux sessions).
fn target(resource_id: &str) -> Result<String> {
    match resource_id.strip_prefix(PREFIX) {
        Some(rest) if !rest.is_empty() => Ok(format!("={resource_id}")),
        _ => Err(Error::invalid_input(format!("`{resource_id}` is not a session of {ID}"))),
    }
}

// Unit tests run natively against the SDK's mock host: `cargo test`.
#[cfg(test)]
mod tests {
    use super::*;
    use clauderon_sdk::testing::{MockHost, exited};

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

    /// A tmux whose `has-session` answers `present`, everything else 0.
    fn tmux_with(present: bool) -> MockHost {
        MockHost::new().on_process(move |cmd| {
            let asks_has_session = cmd.args.get(2).is_some_and(|a| a == "has-session");
            Ok(if present || !asks_has_session { exited(0, "", "") } else { exited(1, "", "can't find session") })
        })
    }

    #[test]
    fn create_starts_the_agent_in_a_new_session() {
        let host = tmux_with(false);
        let info = Tmux::create(spec(&["my-agent", "--print"])).expect("created");
        assert_eq!(info.resource_id, "clauderon-fix-bug");
        let new_session = &host.commands()[1];
        let expected = "tmux -L example-backend new-session -d -s clauderon-fix-bug -c /src/repo \
                        -e API_KEY=placeholder -- my-agent --print";
        assert_eq!(new_session.join(" "), expected);
    }

    #[test]
    fn create_refuses_a_name_in_use_and_an_empty_command() {
        let _host = tmux_with(true);
        assert!(matches!(Tmux::create(spec(&["a"])), Err(Error::InvalidInput(_))));
        let _host = tmux_with(false);
        assert!(matches!(Tmux::create(spec(&[])), Err(Error::InvalidInput(_))));
    }

    #[test]
    fn status_and_delete_follow_tmux() {
        let _host = tmux_with(false);
        assert!(matches!(Tmux::status("clauderon-x".into()).expect("status").state, ResourceState::Missing));
        Tmux::delete("clauderon-x".into()).expect("deleting a session that is gone succeeds");
        let _host = tmux_with(true);
        assert!(matches!(Tmux::status("clauderon-x".into()).expect("status").state, ResourceState::Running));
    }

    #[test]
    fn never_touches_sessions_it_did_not_make() {
        let host = MockHost::new();
        assert!(Tmux::delete("work".into()).is_err() && Tmux::status("clauderon-".into()).is_err());
        assert!(host.commands().is_empty());
    }
}
