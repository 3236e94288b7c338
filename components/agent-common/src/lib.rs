//! What the bundled agents (Claude Code, Codex, Gemini CLI) share: building
//! launch-plan pieces, the status command that forwards an agent CLI's own
//! hook events to clauderon as status events, and reading JSONL transcripts into chat messages.

use clauderon_sdk::types::{CredentialNeed, EnvVar, FileToPlace};
use clauderon_sdk::{ApprovalKeys, ChatMessage, ChatRole};
use serde_json::Value;

/// Where container backends mount the worktree.
const CONTAINER_WORKSPACE: &str = "/workspace";

/// The session's directories an agent must trust without asking (folder-trust
/// dialogs would block an unattended first turn): the worktree and the working
/// directory, as on the host and as container backends mount them.
pub fn trusted_dirs(worktree: &str, workdir: &str) -> Vec<String> {
    let worktree = worktree.trim_end_matches('/');
    let workdir = workdir.trim_end_matches('/');
    let sub = workdir.strip_prefix(worktree).unwrap_or_default();
    let mut dirs = vec![worktree.to_string(), workdir.to_string(), CONTAINER_WORKSPACE.to_string()];
    dirs.push(format!("{CONTAINER_WORKSPACE}{sub}"));
    dirs.dedup();
    dirs.retain(|d| !d.is_empty());
    dirs
}

/// An environment variable for the plan.
pub fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.into(), value: value.into() }
}

/// A file to place under the agent's config home (mode 0600).
pub fn file(path: &str, contents: impl Into<Vec<u8>>) -> FileToPlace {
    FileToPlace { path: path.into(), contents: contents.into(), mode: 0o600 }
}

/// The keys of a permission prompt that is a list of choices with "allow
/// once" first and selected (Claude Code's, Gemini CLI's, Codex's): Enter
/// allows, Escape refuses.
pub fn enter_or_escape() -> ApprovalKeys {
    ApprovalKeys { approve: "\r".into(), deny: "\u{1b}".into() }
}

/// A credential the agent needs: the proxy injects `service`; the agent holds `placeholder`.
pub fn need(service: &str, env_name: &str, placeholder: &str) -> CredentialNeed {
    CredentialNeed {
        service: service.into(),
        env_name: env_name.into(),
        placeholder: placeholder.into(),
        required: true,
    }
}

/// The shell script that POSTs a status event (the CLI's hook event) to the URL in `$0`: the event is
/// `$1` when the agent passes it as an argument (Codex's `notify`), else stdin.
/// It never fails the agent.
const STATUS_SCRIPT: &str = "if [ -n \"$1\" ]; then printf %s \"$1\"; else cat; fi | curl -sS -m 3 -X POST \
     -H content-type:application/json --data-binary @- \"$0\" >/dev/null 2>&1; exit 0";

/// A shell command line that POSTs the status event on its stdin to `url`.
pub fn status_command(url: &str) -> String {
    format!("sh -c '{STATUS_SCRIPT}' '{}'", url.replace('\'', ""))
}

/// An argv that POSTs the event the agent appends as the last argument to `url`.
pub fn status_argv(url: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), STATUS_SCRIPT.into(), url.into()]
}

/// The JSON objects of transcript lines (lines that are not JSON are skipped).
pub fn jsonl(lines: &[String]) -> impl Iterator<Item = Value> + '_ {
    lines.iter().filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
}

/// A chat message.
pub fn message(role: ChatRole, text: impl Into<String>, tool: Option<&str>, at: Option<&Value>) -> ChatMessage {
    ChatMessage {
        role,
        text: text.into(),
        tool_name: tool.map(String::from),
        timestamp_ms: at.and_then(Value::as_str).and_then(timestamp_ms),
    }
}

/// The text of a content value: a string, or the `text` of each block in an array.
pub fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str).or_else(|| b.as_str()))
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A compact text form of a tool's input.
pub fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Milliseconds since the Unix epoch of an RFC 3339 UTC time
/// (`2026-11-26T15:50:07.104Z`, also with `+00:00` or no fraction).
pub fn timestamp_ms(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z').split(['+']).next()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    let ms: i64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 86_400 + h * 3600 + min * 60 + s) * 1000) + ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_as_utc() {
        assert_eq!(timestamp_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(timestamp_ms("2026-11-26T15:50:07.104Z"), Some(1_795_708_207_104));
        assert_eq!(timestamp_ms("2026-11-26T15:50:07+00:00"), Some(1_795_708_207_000));
        assert_eq!(timestamp_ms("yesterday"), None);
    }

    #[test]
    fn content_text_joins_blocks() {
        let v: Value = serde_json::json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]);
        assert_eq!(text_of(&v), "a\nb");
        assert_eq!(text_of(&Value::String("x".into())), "x");
    }

    #[test]
    fn trusted_dirs_cover_host_and_container_paths() {
        assert_eq!(
            trusted_dirs("/w/t/", "/w/t/sub/"),
            ["/w/t", "/w/t/sub", "/workspace", "/workspace/sub"].map(String::from).to_vec()
        );
        assert_eq!(trusted_dirs("/w/t", "/w/t"), ["/w/t", "/workspace"].map(String::from).to_vec());
    }

    #[test]
    fn status_commands_post_stdin_or_the_appended_argument() {
        let url = "http://127.0.0.1:3030/api/sessions/x/status-event?key=k";
        let cmd = status_command(url);
        assert!(cmd.ends_with(&format!("'{url}'")), "{cmd}");
        assert!(!STATUS_SCRIPT.contains('\''), "the script can be single-quoted");
        assert_eq!(status_argv(url)[3], url);
    }
}
