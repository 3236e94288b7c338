//! A session's chat history: the agent's own transcript file (named by its
//! launch plan, possibly with `*` segments, inside the session's config
//! home), read incrementally from a byte cursor — only whole lines — and
//! turned into chat messages by the agent component's `parse-transcript`.
//! The session can write its config home, so the transcript is found and
//! opened through [`Confined`]: never through a symlink, never outside.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use clauderon_runtime::Instance;
use clauderon_runtime::bindings::agent::Agent;
use clauderon_runtime::bindings::agent::exports::clauderon::plugin::agent_api::{ChatMessage, ChatRole};
use serde::Serialize;

use crate::confined::Confined;
use crate::error::SessionError;
use crate::model::Session;

/// At most this much of the transcript is read per call.
const MAX_READ: u64 = 4 << 20;
/// Lines go to the agent component in batches of about this many bytes.
const BATCH_BYTES: usize = 256 << 10;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Message {
    /// `user`, `assistant`, `tool-use`, `tool-result` or `system`.
    #[schema(value_type = String)]
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct History {
    /// The messages, oldest first.
    pub messages: Vec<Message>,
    /// Byte offset in the transcript after the last whole line read.
    pub cursor: u64,
    /// The transcript file, once the agent has written one.
    #[schema(value_type = Option<String>)]
    pub transcript: Option<PathBuf>,
}

/// Read the session's transcript after `cursor`; `config_home` is the
/// session's config home, which the transcript must lie in.
pub async fn read(
    session: &Session,
    config_home: &Path,
    agent: &mut Instance<Agent>,
    cursor: u64,
) -> Result<History, SessionError> {
    let empty = |transcript| History { messages: Vec::new(), cursor, transcript };
    let Some(pattern) = session.transcript_path.clone() else { return Ok(empty(None)) };
    let rel = inside(config_home, Path::new(&pattern))?;
    let home = config_home.to_path_buf();
    let found = tokio::task::spawn_blocking(move || -> Result<Option<(PathBuf, Vec<String>, u64)>, SessionError> {
        let Ok(dir) = Confined::open(&home) else { return Ok(None) };
        let Some(path) = dir.newest_match(&rel) else { return Ok(None) };
        let (lines, consumed) = whole_lines(&dir, &path, cursor)?;
        Ok(Some((home.join(path), lines, consumed)))
    })
    .await
    .map_err(|e| SessionError::Failed(format!("reading the transcript: {e}")))??;
    let Some((path, lines, consumed)) = found else { return Ok(empty(None)) };
    let mut messages = Vec::new();
    for batch in batches(lines) {
        let parsed = agent.parse_transcript(&batch).await.map_err(|e| SessionError::Failed(e.to_string()))?;
        messages.extend(parsed.into_iter().map(convert));
    }
    Ok(History { messages, cursor: cursor + consumed, transcript: Some(path) })
}

/// `path` relative to `home`, or an error if the agent named a file outside
/// it: not under `home`, or climbing out of it with `..`. (Reads go through
/// [`crate::confined`] too, which also refuses symlinks out.)
pub fn inside(home: &Path, path: &Path) -> Result<PathBuf, SessionError> {
    let outside = || {
        SessionError::Invalid(format!(
            "the agent's transcript {} is outside the session's config home {}; refused",
            path.display(),
            home.display()
        ))
    };
    let rel = path.strip_prefix(home).map_err(|_| outside())?;
    if !rel.components().all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir)) {
        return Err(outside());
    }
    Ok(rel.to_path_buf())
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

/// Whole lines of `path` after `cursor` (at most [`MAX_READ`] bytes), and how many bytes they took.
fn whole_lines(dir: &Confined, path: &Path, cursor: u64) -> Result<(Vec<String>, u64), SessionError> {
    let io = |e: std::io::Error| SessionError::Failed(format!("reading the transcript: {e}"));
    let mut file = dir.open_file(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if cursor >= len {
        return Ok((Vec::new(), 0));
    }
    file.seek(std::io::SeekFrom::Start(cursor)).map_err(io)?;
    let mut buf = Vec::new();
    file.take(MAX_READ).read_to_end(&mut buf).map_err(io)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_lines_are_read_and_the_transcript_must_be_in_the_home() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("t.jsonl"), "one\ntwo\nhalf").expect("write");
        let c = Confined::open(dir.path()).expect("open");
        let (lines, used) = whole_lines(&c, Path::new("t.jsonl"), 0).expect("read");
        assert_eq!((lines, used), (vec!["one".to_string(), "two".to_string()], 8));
        let (lines, used) = whole_lines(&c, Path::new("t.jsonl"), 8).expect("read");
        assert_eq!((lines.len(), used), (0, 0), "a partial line waits");
        assert!(inside(dir.path(), &dir.path().join("a/*.jsonl")).is_ok());
        assert!(inside(dir.path(), Path::new("/root/.clauderon/proxy-ca-key.pem")).is_err());
        assert!(inside(dir.path(), &dir.path().join("../../proxy-ca-key.pem")).is_err(), "climbing out with ..");
    }
}
