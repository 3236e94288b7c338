//! The session model as stored and served: what a session is, its statuses,
//! and the events that record every change.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What a session may do through the proxy (defined by the proxy, which enforces it).
pub use clauderon_proxy::AccessMode;
/// Where a session may connect (defined by the proxy, which enforces it).
pub use clauderon_proxy::{EgressMode, EgressPolicy};

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    #[default]
    Creating,
    Running,
    Stopped,
    Archived,
    Failed,
}

/// What the agent is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AgentStatus {
    Working,
    WaitingForInput,
    WaitingForApproval,
    Idle,
    #[default]
    Unknown,
}

/// What `clauderon sync` brought into the user's repository.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Synced {
    /// A sentence for people: the branch, its commit, how far beyond its base.
    pub message: String,
    /// The session's branch in the user's repository.
    pub branch: String,
    /// The commit it is at now.
    pub commit: String,
    /// How many commits it has that its base commit does not.
    pub commits: u64,
}

/// One session (its `Default` is an empty record in `creating`, read-only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Session {
    /// Unique id (a UUID).
    pub id: String,
    /// Unique, human-friendly name.
    pub name: String,
    /// The repository's root.
    #[schema(value_type = String)]
    pub repo: PathBuf,
    /// Where in the repository the agent works (relative; empty for the root).
    #[schema(value_type = String)]
    pub subdir: PathBuf,
    /// The session's git worktree.
    #[schema(value_type = String)]
    pub worktree: PathBuf,
    /// The worktree's branch.
    pub branch: String,
    /// The commit the branch started from.
    pub base_commit: String,
    /// Backend id.
    pub backend: String,
    /// Agent id.
    pub agent: String,
    /// Model, if one was chosen.
    pub model: Option<String>,
    /// Access mode.
    pub access_mode: AccessMode,
    /// Where it may connect through the proxy (records older than the
    /// egress policy get the allow-list).
    #[serde(default)]
    pub egress: EgressPolicy,
    /// Lifecycle status.
    pub status: Status,
    /// Why it failed, when `status` is `failed`.
    pub error: Option<String>,
    /// What the agent is doing.
    pub agent_status: AgentStatus,
    /// The backend's id for its resource.
    pub resource_id: Option<String>,
    /// The port of the session's proxy listener, once opened.
    #[serde(default)]
    pub proxy_port: Option<u16>,
    /// Where the agent writes its transcript (may hold `*` in path segments).
    #[serde(default)]
    pub transcript_path: Option<String>,
    /// The prompt it started with.
    pub prompt: String,
    /// Print mode (the agent answers once and exits).
    pub print_mode: bool,
    /// Plan mode (the agent plans without changing files).
    #[serde(default)]
    pub plan_mode: bool,
    /// The agent acts without asking for permission.
    #[serde(default)]
    pub skip_permissions: bool,
    /// How the agent is contained (set when it starts; absent in records
    /// older than the sandbox).
    #[serde(default)]
    pub isolation: Option<crate::sandbox::Isolation>,
    /// Container image, if the user chose one.
    #[serde(default)]
    pub image: Option<String>,
    /// CPU limit in cores.
    #[serde(default)]
    pub cpu_limit: Option<f64>,
    /// Memory limit in bytes.
    #[serde(default)]
    pub memory_limit: Option<u64>,
    /// Created, in ms since the Unix epoch.
    pub created_at: u64,
    /// Last changed, in ms since the Unix epoch.
    pub updated_at: u64,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum EventKind {
    Created,
    StatusChanged { from: Status, to: Status },
    AccessModeChanged { to: AccessMode },
    EgressChanged { to: EgressPolicy },
    AgentStatusChanged { to: AgentStatus },
    Deleted,
    CreateFailed,
    Reconciled { note: String },
}

/// One event in a session's life; stored in the event log and broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Its place in the event log (0 until stored).
    pub seq: u64,
    /// When, in ms since the Unix epoch.
    pub at: u64,
    /// The session's id.
    pub session_id: String,
    /// The session's name.
    pub session_name: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
    /// A sentence with more detail.
    pub detail: Option<String>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A valid session name: 1-48 lowercase letters, digits and dashes, starting with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A name from the prompt's first words, e.g. "Fix the login bug" → "fix-the-login-bug".
pub fn name_from_prompt(prompt: &str) -> String {
    let mut name = String::new();
    for word in prompt.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).take(5) {
        if name.len() + word.len() + 1 > 32 {
            break;
        }
        if !name.is_empty() {
            name.push('-');
        }
        name.push_str(&word.to_ascii_lowercase());
    }
    if name.is_empty() { "session".into() } else { name }
}

/// The agent status a component reported, in the session model's terms.
pub fn agent_status_from_wit(status: clauderon_runtime::bindings::types::AgentStatus) -> AgentStatus {
    use clauderon_runtime::bindings::types::AgentStatus as W;
    match status {
        W::Working => AgentStatus::Working,
        W::WaitingForInput => AgentStatus::WaitingForInput,
        W::WaitingForApproval => AgentStatus::WaitingForApproval,
        W::Idle => AgentStatus::Idle,
        W::Unknown => AgentStatus::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_prompts_are_valid() {
        assert_eq!(name_from_prompt("Fix the login bug, please!"), "fix-the-login-bug-please");
        assert_eq!(name_from_prompt("  ...  "), "session");
        assert!(valid_name(&name_from_prompt("Ünïcode 123 words here and more and more")));
        assert!(!valid_name("Bad Name"));
        assert!(!valid_name("-x"));
    }

    #[test]
    fn events_serialize_flat_with_a_type() {
        let e = Event {
            seq: 1,
            at: 2,
            session_id: "i".into(),
            session_name: "n".into(),
            kind: EventKind::StatusChanged { from: Status::Creating, to: Status::Running },
            detail: None,
        };
        let v = serde_json::to_value(&e).expect("json");
        assert_eq!(v["type"], "status-changed");
        assert_eq!(v["to"], "running");
    }
}
