//! The `claude-code` agent: runs Anthropic's `claude` CLI.
//!
//! - The session's HOME is its config home, so Claude reads only what is
//!   placed there: `.claude.json` (onboarding done, the placeholder API key
//!   approved) and `.claude/settings.json` (hooks that POST every event to
//!   clauderon). Both are user-level files: a project's own
//!   `.claude/settings.json` in the worktree is never touched.
//! - `ANTHROPIC_API_KEY` holds a placeholder; the proxy puts the real key (or
//!   an OAuth token) on the way out.
//! - The transcript is `~/.claude/projects/<encoded cwd>/<session id>.jsonl`:
//!   the session id is passed with `--session-id`, so the file is known, and
//!   `--resume <id>` continues the same conversation after a restart.

use agent_common::{enter_or_escape, compact, env, file, status_command, jsonl, message, need, text_of, trusted_dirs};
use clauderon_sdk::types::{AgentStatus, LaunchPlan};
use clauderon_sdk::{Agent, AgentInfo, ChatMessage, ChatRole, LaunchRequest, Result};
use serde_json::{Value, json};

/// The placeholder Claude holds instead of an API key.
const PLACEHOLDER: &str = "sk-ant-api03-clauderon-placeholder-0000000000000000";

/// The hook events forwarded to clauderon.
const HOOK_EVENTS: &[&str] = &[
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "PostToolUseFailure",
    "Notification",
    "Stop",
    "SessionEnd",
];

struct ClaudeCode;

impl Agent for ClaudeCode {
    fn info() -> AgentInfo {
        AgentInfo {
            id: "claude-code".into(),
            display_name: "Claude Code".into(),
            default_model: None,
            credentials: vec![need("anthropic", "ANTHROPIC_API_KEY", PLACEHOLDER)],
            approval_keys: Some(enter_or_escape()),
        }
    }

    fn plan(request: LaunchRequest) -> Result<LaunchPlan> {
        let mut environment = vec![
            env("ANTHROPIC_API_KEY", PLACEHOLDER),
            env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
            env("DISABLE_AUTOUPDATER", "1"),
        ];
        if request.isolated {
            // Claude Code's own word for "this runs in a sandbox": without it,
            // --dangerously-skip-permissions is refused to a root user, which
            // the agent is inside a container or the host sandbox of a root user.
            environment.push(env("IS_SANDBOX", "1"));
        }
        Ok(LaunchPlan {
            argv: argv(&request),
            env: environment,
            files: vec![
                file(".claude.json", state_file(&request).to_string()),
                file(".claude/settings.json", settings(request.status_url.as_deref()).to_string()),
            ],
            credentials: vec![need("anthropic", "ANTHROPIC_API_KEY", PLACEHOLDER)],
            transcript_path: Some(format!("{}/.claude/projects/*/{}.jsonl", request.config_home, request.session_id)),
        })
    }

    fn parse_transcript(lines: Vec<String>) -> Result<Vec<ChatMessage>> {
        Ok(jsonl(&lines).flat_map(|entry| messages(&entry)).collect())
    }

    fn status_from_event(event_json: String) -> Option<AgentStatus> {
        let event: Value = serde_json::from_str(&event_json).ok()?;
        match event.get("hook_event_name")?.as_str()? {
            "UserPromptSubmit" | "PreToolUse" | "PostToolUse" | "PostToolUseFailure" => Some(AgentStatus::Working),
            // A resumed or restarted session waits for the user until a prompt arrives.
            "SessionStart" => Some(AgentStatus::WaitingForInput),
            "PermissionRequest" => Some(AgentStatus::WaitingForApproval),
            "Notification" => {
                let kind = event.get("notification_type").and_then(Value::as_str).unwrap_or_default();
                let text = event.get("message").and_then(Value::as_str).unwrap_or_default();
                if kind == "permission_prompt" || text.contains("permission") {
                    Some(AgentStatus::WaitingForApproval)
                } else {
                    Some(AgentStatus::WaitingForInput)
                }
            }
            "Stop" => Some(AgentStatus::WaitingForInput),
            "SessionEnd" => Some(AgentStatus::Idle),
            _ => None,
        }
    }
}

clauderon_sdk::export_agent!(ClaudeCode);

fn argv(r: &LaunchRequest) -> Vec<String> {
    let mut argv = vec!["claude".to_string()];
    if r.resume {
        argv.extend(["--resume".into(), r.session_id.clone()]);
    } else {
        argv.extend(["--session-id".into(), r.session_id.clone()]);
    }
    if let Some(model) = &r.model {
        argv.extend(["--model".into(), model.clone()]);
    }
    if r.plan_mode {
        argv.extend(["--permission-mode".into(), "plan".into()]);
    }
    if r.skip_permissions {
        argv.push("--dangerously-skip-permissions".into());
    }
    if r.print_mode {
        argv.push("-p".into());
    }
    if !r.prompt.is_empty() && !(r.resume && !r.print_mode) {
        argv.push(r.prompt.clone());
    }
    argv
}

/// `~/.claude.json`: onboarding done, the placeholder key approved (Claude
/// asks once for a key from the environment, keyed by its last 20
/// characters), and the session's working directory trusted — on the host and
/// as container backends mount it — so the first-run dialogs never block.
fn state_file(r: &LaunchRequest) -> Value {
    let tail: String = PLACEHOLDER.chars().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
    let trusted = json!({ "hasTrustDialogAccepted": true, "hasCompletedProjectOnboarding": true });
    let projects: serde_json::Map<String, Value> =
        trusted_dirs(&r.worktree, &r.workdir).into_iter().map(|p| (p, trusted.clone())).collect();
    json!({
        "hasCompletedOnboarding": true,
        "bypassPermissionsModeAccepted": true,
        "customApiKeyResponses": { "approved": [tail], "rejected": [] },
        "projects": projects,
    })
}

/// `~/.claude/settings.json`: hooks forwarding every event to clauderon.
fn settings(status_url: Option<&str>) -> Value {
    let Some(url) = status_url else { return json!({}) };
    let handler = json!([{ "hooks": [{ "type": "command", "command": status_command(url), "timeout": 5 }] }]);
    let hooks: serde_json::Map<String, Value> = HOOK_EVENTS.iter().map(|e| (e.to_string(), handler.clone())).collect();
    json!({ "hooks": hooks })
}

/// The chat messages of one transcript entry.
fn messages(entry: &Value) -> Vec<ChatMessage> {
    let at = entry.get("timestamp");
    let content = entry.pointer("/message/content").cloned().unwrap_or(Value::Null);
    match entry.get("type").and_then(Value::as_str) {
        Some("user") => match &content {
            Value::String(text) => vec![message(ChatRole::User, text.clone(), None, at)],
            Value::Array(blocks) => blocks
                .iter()
                .filter_map(|b| match b.get("type").and_then(Value::as_str) {
                    Some("text") => Some(message(ChatRole::User, text_of(&json!([b])), None, at)),
                    Some("tool_result") => {
                        Some(message(ChatRole::ToolResult, text_of(b.get("content").unwrap_or(&Value::Null)), None, at))
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        },
        Some("assistant") => content
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| match b.get("type").and_then(Value::as_str) {
                Some("text") => Some(message(ChatRole::Assistant, text_of(&json!([b])), None, at)),
                Some("tool_use") => {
                    let name = b.get("name").and_then(Value::as_str);
                    Some(message(ChatRole::ToolUse, compact(b.get("input").unwrap_or(&Value::Null)), name, at))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}
