//! The `shell` agent: runs the session's prompt with `sh -c`.
//!
//! It is the "bring your own agent" escape hatch (any command line is an
//! agent) and the deterministic agent the tests use. It needs no credentials
//! and keeps no transcript; its status comes from the backend's process state.

use clauderon_sdk::types::LaunchPlan;
use clauderon_sdk::{Agent, AgentInfo, Error, LaunchRequest, Result};

struct Shell;

impl Agent for Shell {
    fn info() -> AgentInfo {
        AgentInfo {
            id: "shell".into(),
            display_name: "Shell command".into(),
            default_model: None,
            credentials: Vec::new(),
            approval_keys: None,
        }
    }

    fn plan(request: LaunchRequest) -> Result<LaunchPlan> {
        if request.prompt.trim().is_empty() {
            return Err(Error::invalid_input(
                "the shell agent runs the prompt as a command: give it one, e.g. --prompt 'make test'",
            ));
        }
        Ok(LaunchPlan {
            argv: vec!["sh".into(), "-c".into(), request.prompt],
            env: Vec::new(),
            files: Vec::new(),
            credentials: Vec::new(),
            transcript_path: None,
        })
    }
}

clauderon_sdk::export_agent!(Shell);
