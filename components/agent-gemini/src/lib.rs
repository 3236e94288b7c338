//! The `gemini` agent: runs Google's Gemini CLI.
//!
//! - HOME is the session's config home, so `~/.gemini/settings.json` is ours:
//!   API-key auth selected (no login dialog), no telemetry or auto-update, and
//!   hooks that POST every event to clauderon. A project's own
//!   `.gemini/settings.json` in the worktree is never touched.
//! - `GEMINI_API_KEY` holds a placeholder; the proxy sends the real key as
//!   `x-goog-api-key`.
//! - Chats are saved under `~/.gemini/tmp/<project>/chats/session-*.json[l]`;
//!   both the older whole-file JSON and the newer JSONL are read.

use agent_common::{enter_or_escape, compact, env, file, status_command, jsonl, message, need, text_of};
use clauderon_sdk::types::{AgentStatus, LaunchPlan};
use clauderon_sdk::{Agent, AgentInfo, ChatMessage, ChatRole, LaunchRequest, Result};
use serde_json::{Value, json};

/// The placeholder Gemini CLI holds instead of an API key.
const PLACEHOLDER: &str = "AIzaSy-clauderon-placeholder-000000000000";

/// The hook events forwarded to clauderon.
const HOOK_EVENTS: &[&str] =
    &["SessionStart", "BeforeAgent", "BeforeTool", "AfterTool", "Notification", "AfterAgent", "SessionEnd"];

struct Gemini;

impl Agent for Gemini {
    fn info() -> AgentInfo {
        AgentInfo {
            id: "gemini".into(),
            display_name: "Gemini CLI".into(),
            default_model: None,
            credentials: vec![need("gemini", "GEMINI_API_KEY", PLACEHOLDER)],
            approval_keys: Some(enter_or_escape()),
        }
    }

    fn plan(request: LaunchRequest) -> Result<LaunchPlan> {
        Ok(LaunchPlan {
            argv: argv(&request),
            env: vec![
                env("GEMINI_API_KEY", PLACEHOLDER),
                env("GEMINI_CLI_NO_RELAUNCH", "true"),
                // The session's worktree is the user's own repository, checked out for this session.
                env("GEMINI_CLI_TRUST_WORKSPACE", "true"),
            ],
            files: vec![file(".gemini/settings.json", settings(request.status_url.as_deref()).to_string())],
            credentials: vec![need("gemini", "GEMINI_API_KEY", PLACEHOLDER)],
            transcript_path: Some(format!("{}/.gemini/tmp/*/chats/session-*", request.config_home)),
        })
    }

    fn parse_transcript(lines: Vec<String>) -> Result<Vec<ChatMessage>> {
        let mut out = Vec::new();
        for entry in jsonl(&lines) {
            // A whole-file chat (older versions) or one message per line (newer).
            match entry.get("messages").and_then(Value::as_array) {
                Some(all) => out.extend(all.iter().flat_map(chat)),
                None => out.extend(chat(&entry)),
            }
        }
        Ok(out)
    }

    fn status_from_event(event_json: String) -> Option<AgentStatus> {
        let event: Value = serde_json::from_str(&event_json).ok()?;
        match event.get("hook_event_name")?.as_str()? {
            "SessionStart" | "BeforeAgent" | "BeforeTool" | "AfterTool" => Some(AgentStatus::Working),
            "Notification" => Some(AgentStatus::WaitingForApproval),
            "AfterAgent" => Some(AgentStatus::WaitingForInput),
            "SessionEnd" => Some(AgentStatus::Idle),
            _ => None,
        }
    }
}

clauderon_sdk::export_agent!(Gemini);

fn argv(r: &LaunchRequest) -> Vec<String> {
    let mut argv = vec!["gemini".to_string()];
    if let Some(model) = &r.model {
        argv.extend(["--model".into(), model.clone()]);
    }
    if r.skip_permissions {
        argv.push("--yolo".into());
    } else if r.plan_mode {
        argv.extend(["--approval-mode".into(), "plan".into()]);
    }
    if r.resume {
        argv.extend(["--resume".into(), "latest".into()]);
    }
    if !r.prompt.is_empty() && !(r.resume && !r.print_mode) {
        argv.extend([if r.print_mode { "-p" } else { "-i" }.into(), r.prompt.clone()]);
    }
    argv
}

/// `~/.gemini/settings.json`.
fn settings(status_url: Option<&str>) -> Value {
    let mut settings = json!({
        "security": { "auth": { "selectedType": "gemini-api-key" } },
        "general": { "disableAutoUpdate": true, "disableUpdateNag": true },
        "privacy": { "usageStatisticsEnabled": false },
        "telemetry": { "enabled": false },
    });
    if let Some(url) = status_url {
        let handler = json!([{ "matcher": "*", "hooks": [{ "type": "command", "command": status_command(url) }] }]);
        let hooks: serde_json::Map<String, Value> =
            HOOK_EVENTS.iter().map(|e| (e.to_string(), handler.clone())).collect();
        settings["hooks"] = Value::Object(hooks);
        settings["tools"] = json!({ "enableHooks": true });
    }
    settings
}

/// One saved chat message.
fn chat(m: &Value) -> Vec<ChatMessage> {
    let at = m.get("timestamp");
    let text = m.get("content").map(text_of).unwrap_or_default();
    let mut out = Vec::new();
    match m.get("type").and_then(Value::as_str) {
        Some("user") => out.push(message(ChatRole::User, text, None, at)),
        Some("gemini") | Some("model") => {
            if !text.is_empty() {
                out.push(message(ChatRole::Assistant, text, None, at));
            }
            for call in m.get("toolCalls").and_then(Value::as_array).into_iter().flatten() {
                let name = call.get("name").and_then(Value::as_str);
                out.push(message(ChatRole::ToolUse, compact(call.get("args").unwrap_or(&Value::Null)), name, at));
                if let Some(result) = call.get("resultDisplay").or_else(|| call.get("result")) {
                    out.push(message(ChatRole::ToolResult, compact(result), name, at));
                }
            }
        }
        Some("info") | Some("error") | Some("warning") => out.push(message(ChatRole::System, text, None, at)),
        _ => {}
    }
    out
}
