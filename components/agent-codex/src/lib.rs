//! The `codex` agent: runs OpenAI's Codex CLI.
//!
//! - `CODEX_HOME` is `<config home>/.codex`, holding `config.toml` (API-key
//!   auth, the `notify` hook that POSTs each finished turn to clauderon) and
//!   `auth.json` with the placeholder key — never a real one: the proxy puts
//!   the real key on the way out, also on Codex's `wss://` Responses transport.
//! - Print mode is `codex exec`; resume is `codex resume --last` (or
//!   `codex exec resume --last`).
//! - The transcript is the newest `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl`.

use agent_common::{enter_or_escape, env, file, status_argv, jsonl, message, need, text_of, trusted_dirs};
use clauderon_sdk::types::{AgentStatus, LaunchPlan};
use clauderon_sdk::{Agent, AgentInfo, ChatMessage, ChatRole, LaunchRequest, Result};
use serde_json::{Value, json};

/// The placeholder Codex holds instead of an API key.
const PLACEHOLDER: &str = "sk-proj-clauderon-placeholder-0000000000000000";

struct Codex;

impl Agent for Codex {
    fn info() -> AgentInfo {
        AgentInfo {
            id: "codex".into(),
            display_name: "OpenAI Codex CLI".into(),
            default_model: None,
            credentials: vec![need("openai", "OPENAI_API_KEY", PLACEHOLDER)],
            approval_keys: Some(enter_or_escape()),
        }
    }

    fn plan(request: LaunchRequest) -> Result<LaunchPlan> {
        let codex_home = format!("{}/.codex", request.config_home);
        Ok(LaunchPlan {
            argv: argv(&request),
            env: vec![env("CODEX_HOME", codex_home.clone()), env("OPENAI_API_KEY", PLACEHOLDER)],
            files: vec![
                file(".codex/config.toml", config(&request)),
                file(".codex/auth.json", json!({ "OPENAI_API_KEY": PLACEHOLDER }).to_string()),
            ],
            credentials: vec![need("openai", "OPENAI_API_KEY", PLACEHOLDER)],
            transcript_path: Some(format!("{codex_home}/sessions/*/*/*/rollout-*.jsonl")),
        })
    }

    fn parse_transcript(lines: Vec<String>) -> Result<Vec<ChatMessage>> {
        Ok(jsonl(&lines).filter_map(|entry| chat(&entry)).collect())
    }

    fn status_from_event(event_json: String) -> Option<AgentStatus> {
        let event: Value = serde_json::from_str(&event_json).ok()?;
        match event.get("type")?.as_str()? {
            "agent-turn-complete" => Some(AgentStatus::WaitingForInput),
            "approval-requested" => Some(AgentStatus::WaitingForApproval),
            _ => None,
        }
    }
}

clauderon_sdk::export_agent!(Codex);

fn argv(r: &LaunchRequest) -> Vec<String> {
    let mut argv = vec!["codex".to_string()];
    if r.print_mode {
        argv.extend(["exec".into(), "--skip-git-repo-check".into()]);
    }
    if r.resume {
        argv.extend(["resume".into(), "--last".into()]);
    }
    if !r.print_mode {
        // Without it the TUI installs its shared app-server daemon (hundreds of MB)
        // into CODEX_HOME — every session's own config home — and leaves it running.
        argv.push("--no-daemon".into());
    }
    if let Some(model) = &r.model {
        argv.extend(["--model".into(), model.clone()]);
    }
    if r.skip_permissions {
        argv.push("--dangerously-bypass-approvals-and-sandbox".into());
    } else if r.plan_mode {
        argv.extend(["--sandbox".into(), "read-only".into()]);
    } else if r.isolated {
        // The container (or clauderon's host sandbox) is the sandbox; Codex's
        // own cannot start inside one (it needs namespaces of its own), so
        // every command would fail. Approvals still apply.
        argv.extend(["--sandbox".into(), "danger-full-access".into()]);
    }
    if !r.prompt.is_empty() && !r.resume {
        argv.push(r.prompt.clone());
    }
    argv
}

/// `config.toml`: API-key auth, the notify hook, and the session's
/// directories trusted (Codex's folder-trust dialog would block the first turn).
/// Strings are written as JSON strings, which TOML reads the same.
fn config(r: &LaunchRequest) -> String {
    let quote = |s: &str| Value::String(s.to_string()).to_string();
    let mut text = String::from("preferred_auth_method = \"apikey\"\n");
    if let Some(url) = &r.status_url {
        let argv: Vec<String> = status_argv(url).iter().map(|a| quote(a)).collect();
        text.push_str(&format!("notify = [{}]\n", argv.join(", ")));
    }
    for dir in trusted_dirs(&r.worktree, &r.workdir) {
        text.push_str(&format!("\n[projects.{}]\ntrust_level = \"trusted\"\n", quote(&dir)));
    }
    text
}

/// One rollout line as a chat message (`response_item` entries only).
fn chat(entry: &Value) -> Option<ChatMessage> {
    if entry.get("type")?.as_str()? != "response_item" {
        return None;
    }
    let item = entry.get("payload")?;
    let at = entry.get("timestamp");
    match item.get("type")?.as_str()? {
        "message" => {
            let text = text_of(item.get("content")?);
            let role = match item.get("role")?.as_str()? {
                "user" if is_context(&text) => return None,
                "user" => ChatRole::User,
                "assistant" => ChatRole::Assistant,
                _ => ChatRole::System,
            };
            Some(message(role, text, None, at))
        }
        "function_call" | "custom_tool_call" => {
            let name = item.get("name").and_then(Value::as_str);
            let input = item.get("arguments").or_else(|| item.get("input")).map(text_of).unwrap_or_default();
            Some(message(ChatRole::ToolUse, input, name, at))
        }
        "function_call_output" | "custom_tool_call_output" => {
            let output = item.get("output")?;
            let text = output.get("content").map(text_of).unwrap_or_else(|| text_of(output));
            Some(message(ChatRole::ToolResult, text, None, at))
        }
        _ => None,
    }
}

/// Context Codex injects as user messages (instructions, environment), not the user's words.
fn is_context(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("<environment_context>") || t.starts_with("<user_instructions>") || t.starts_with("# AGENTS.md")
}
