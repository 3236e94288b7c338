//! Template agent: how to launch a hypothetical `my-agent` CLI and read its
//! transcript.
//!
//! An agent component does not run anything itself. It answers questions:
//! which argv and environment start the agent (`plan`), which credentials it
//! uses, how to turn its transcript into chat messages, and what a status event
//! (posted by the agent CLI's own hooks) says about its state. The backend then runs the plan.
//!
//! Credentials: the agent never sees a real one. It declares what it needs
//! (service `example`, read from `EXAMPLE_API_KEY`), and gets a placeholder in
//! that variable; clauderon's proxy swaps in the real value on the way out.

use clauderon_sdk::prelude::*;

/// The value the agent finds in `EXAMPLE_API_KEY`.
const PLACEHOLDER: &str = "clauderon-placeholder";

/// Where `my-agent` writes its transcript, relative to its config home.
const TRANSCRIPT: &str = "transcript.jsonl";

struct MyAgent;

impl Agent for MyAgent {
    fn info() -> AgentInfo {
        AgentInfo {
            id: "example-agent".into(),
            display_name: "My Agent (example)".into(),
            default_model: None,
            credentials: vec![credential()],
            approval_keys: None,
        }
    }

    fn plan(request: LaunchRequest) -> Result<LaunchPlan> {
        if request.print_mode && request.prompt.trim().is_empty() {
            return Err(Error::invalid_input("print mode needs a prompt"));
        }
        Ok(LaunchPlan {
            argv: argv(&request),
            env: vec![
                EnvVar { name: "EXAMPLE_API_KEY".into(), value: PLACEHOLDER.into() },
                // Tell the agent where its config home is, so it writes its
                // transcript where `transcript_path` says.
                EnvVar { name: "MY_AGENT_HOME".into(), value: request.config_home },
            ],
            files: Vec::new(),
            credentials: vec![credential()],
            transcript_path: Some(TRANSCRIPT.into()),
        })
    }

    fn parse_transcript(lines: Vec<String>) -> Result<Vec<ChatMessage>> {
        // Lines that are not a user or assistant message are skipped.
        Ok(lines.iter().filter_map(|line| parse_line(line)).collect())
    }

    fn status_from_event(event_json: String) -> Option<AgentStatus> {
        // `my-agent` posts `{"event":"stop"}` when it finishes.
        event_json.contains("\"stop\"").then_some(AgentStatus::Idle)
    }
}

export_agent!(MyAgent);

/// The one credential `my-agent` uses.
fn credential() -> CredentialNeed {
    CredentialNeed {
        service: "example".into(),
        env_name: "EXAMPLE_API_KEY".into(),
        placeholder: PLACEHOLDER.into(),
        required: true,
    }
}

/// `my-agent [--prompt P] [--model M] [--print]`.
fn argv(request: &LaunchRequest) -> Vec<String> {
    let mut argv = vec!["my-agent".to_string()];
    // An empty prompt is an interactive start: no `--prompt`.
    if !request.prompt.is_empty() {
        argv.extend(["--prompt".into(), request.prompt.clone()]);
    }
    if let Some(model) = &request.model {
        argv.extend(["--model".into(), model.clone()]);
    }
    if request.print_mode {
        argv.push("--print".into());
    }
    argv
}

/// One transcript line, `{"role":"user"|"assistant","text":"..."}`, as a
/// chat message; `None` for anything else (the agent's other records, a
/// line cut short).
fn parse_line(line: &str) -> Option<ChatMessage> {
    let record: serde_json::Value = serde_json::from_str(line).ok()?;
    let role = match record["role"].as_str()? {
        "user" => ChatRole::User,
        "assistant" => ChatRole::Assistant,
        _ => return None,
    };
    Some(ChatMessage { role, text: record["text"].as_str()?.to_string(), tool_name: None, timestamp_ms: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(prompt: &str, model: Option<&str>, print_mode: bool) -> LaunchRequest {
        LaunchRequest {
            session_id: "0b7c".into(),
            prompt: prompt.into(),
            model: model.map(String::from),
            print_mode,
            plan_mode: false,
            skip_permissions: false,
            resume: false,
            config_home: "/home/agent/.my-agent".into(),
            worktree: "/tmp".into(),
            workdir: "/tmp".into(),
            status_url: None,
            isolated: false,
        }
    }

    #[test]
    fn builds_the_argv() {
        assert_eq!(argv(&request("fix it", None, false)), ["my-agent", "--prompt", "fix it"]);
        assert_eq!(
            argv(&request("fix it", Some("big"), true)),
            ["my-agent", "--prompt", "fix it", "--model", "big", "--print"]
        );
        assert_eq!(argv(&request("", None, false)), ["my-agent"]);
    }

    #[test]
    fn parses_transcript_lines() {
        let m = parse_line(r#"{"role":"user","text":"hi \"there\"\n\u00e9\ud83d\ude00"}"#).expect("a message");
        assert!(matches!(m.role, ChatRole::User));
        assert_eq!(m.text, "hi \"there\"\n\u{e9}\u{1f600}");

        let m = parse_line(r#" { "n": 3, "meta": {"a": [1, "}"]}, "text": "ok", "role": "assistant" } "#)
            .expect("other fields are skipped");
        assert!(matches!(m.role, ChatRole::Assistant));
        assert_eq!(m.text, "ok");

        for bad in [
            "",
            "not json",
            r#"{"role":"system","text":"x"}"#,
            r#"{"role":"user"}"#,
            r#"{"role":"user","text":"x"} trailing"#,
        ] {
            assert!(parse_line(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn stop_means_idle() {
        assert!(matches!(MyAgent::status_from_event(r#"{"event":"stop"}"#.into()), Some(AgentStatus::Idle)));
        assert!(MyAgent::status_from_event(r#"{"event":"tool"}"#.into()).is_none());
    }
}
