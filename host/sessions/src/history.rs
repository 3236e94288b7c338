//! A session's chat history: the agent's own transcript file (named by its
//! launch plan, possibly with `*` segments), read incrementally from a byte
//! cursor — only whole lines — and turned into chat messages by the agent
//! component's `parse-transcript`.

use std::path::{Path, PathBuf};

use clauderon_runtime::Instance;
use clauderon_runtime::bindings::agent::Agent;
use clauderon_runtime::bindings::agent::exports::clauderon::plugin::agent_api::{ChatMessage, ChatRole};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::SessionError;
use crate::model::Session;

/// At most this much of the transcript is read per call.
const MAX_READ: u64 = 4 << 20;
/// Lines go to the agent component in batches of about this many bytes.
const BATCH_BYTES: usize = 256 << 10;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// `user`, `assistant`, `tool-use`, `tool-result` or `system`.
    pub role: &'static str,
    /// The text (for tool use, the input).
    pub text: String,
    /// The tool, for tool use and results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// When, in ms since the Unix epoch, if the transcript says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<u64>,
}

/// Messages after a cursor, and the cursor to continue from.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub messages: Vec<Message>,
    /// Byte offset in the transcript after the last whole line read.
    pub cursor: u64,
    /// The transcript file, once the agent has written one.
    pub transcript: Option<PathBuf>,
}

/// Read the session's transcript after `cursor`.
pub async fn read(session: &Session, agent: &mut Instance<Agent>, cursor: u64) -> Result<History, SessionError> {
    let empty = |transcript| History { messages: Vec::new(), cursor, transcript };
    let Some(pattern) = session.transcript_path.clone() else { return Ok(empty(None)) };
    let found = tokio::task::spawn_blocking(move || newest_match(Path::new(&pattern)))
        .await
        .map_err(|e| SessionError::Failed(format!("finding the transcript: {e}")))?;
    let Some(path) = found else { return Ok(empty(None)) };
    let (lines, consumed) = whole_lines(&path, cursor).await?;
    let mut messages = Vec::new();
    for batch in batches(lines) {
        let parsed = agent.parse_transcript(&batch).await.map_err(|e| SessionError::Failed(e.to_string()))?;
        messages.extend(parsed.into_iter().map(convert));
    }
    Ok(History { messages, cursor: cursor + consumed, transcript: Some(path) })
}

fn convert(m: ChatMessage) -> Message {
    let role = match m.role {
        ChatRole::User => "user",
        ChatRole::Assistant => "assistant",
        ChatRole::ToolUse => "tool-use",
        ChatRole::ToolResult => "tool-result",
        ChatRole::System => "system",
    };
    Message { role, text: m.text, tool_name: m.tool_name, timestamp_ms: m.timestamp_ms }
}

/// Whole lines after `cursor` (at most [`MAX_READ`] bytes), and how many bytes they took.
async fn whole_lines(path: &Path, cursor: u64) -> Result<(Vec<String>, u64), SessionError> {
    let io = |e: std::io::Error| SessionError::Failed(format!("reading {}: {e}", path.display()));
    let mut file = tokio::fs::File::open(path).await.map_err(io)?;
    let len = file.metadata().await.map_err(io)?.len();
    if cursor >= len {
        return Ok((Vec::new(), 0));
    }
    file.seek(std::io::SeekFrom::Start(cursor)).await.map_err(io)?;
    let mut buf = Vec::new();
    file.take(MAX_READ).read_to_end(&mut buf).await.map_err(io)?;
    let Some(end) = buf.iter().rposition(|b| *b == b'\n') else { return Ok((Vec::new(), 0)) };
    let text = String::from_utf8_lossy(&buf[..end]);
    Ok((text.lines().map(String::from).collect(), end as u64 + 1))
}

fn batches(lines: Vec<String>) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    let mut size = 0;
    for line in lines {
        if size + line.len() > BATCH_BYTES && !out.last().is_some_and(Vec::is_empty) {
            out.push(Vec::new());
            size = 0;
        }
        size += line.len();
        if let Some(last) = out.last_mut() {
            last.push(line);
        }
    }
    out.retain(|b| !b.is_empty());
    out
}

/// The most recently modified file matching `pattern` (`*` within segments).
pub fn newest_match(pattern: &Path) -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("/")];
    for part in pattern.components().skip(1) {
        let part = part.as_os_str().to_string_lossy();
        let mut next = Vec::new();
        for dir in &candidates {
            if !part.contains('*') {
                next.push(dir.join(part.as_ref()));
                continue;
            }
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if wildcard(&part, &entry.file_name().to_string_lossy()) {
                    next.push(entry.path());
                }
            }
        }
        candidates = next;
    }
    candidates.into_iter().filter(|p| p.is_file()).max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
}

/// Whether `name` matches `pattern` with `*` for any run of characters.
fn wildcard(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || !name[first.len()..].ends_with(last) || name.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_within_a_segment() {
        assert!(wildcard("rollout-*.jsonl", "rollout-2026-x.jsonl"));
        assert!(wildcard("*", "anything"));
        assert!(!wildcard("rollout-*.jsonl", "rollout.json"));
        assert!(wildcard("a*b*c", "axxbyyc"));
        assert!(!wildcard("a*b*c", "axxc"));
    }

    #[test]
    fn the_newest_match_wins_and_only_whole_lines_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (sub, name) in [("p1", "s.jsonl"), ("p2", "s.jsonl")] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
            std::fs::write(dir.path().join(sub).join(name), "{}\n").expect("write");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let found = newest_match(&dir.path().join("*/s.jsonl")).expect("match");
        assert!(found.ends_with("p2/s.jsonl"), "{}", found.display());
        assert!(newest_match(&dir.path().join("*/none.jsonl")).is_none());
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("rt");
        std::fs::write(&found, "one\ntwo\nhalf").expect("write");
        let (lines, used) = rt.block_on(whole_lines(&found, 0)).expect("read");
        assert_eq!((lines, used), (vec!["one".to_string(), "two".to_string()], 8));
        let (lines, used) = rt.block_on(whole_lines(&found, 8)).expect("read");
        assert_eq!((lines.len(), used), (0, 0), "a partial line waits");
    }
}
