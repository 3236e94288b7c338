//! The session list's logic, apart from how it is drawn: the filter tabs
//! (the web dashboard's, with the same keys `1`–`6`), search, sort, and how an
//! event from the daemon changes a session.

use clauderon_client::kebab;
use clauderon_sessions::{AgentStatus, Session, Status};

/// The filter tabs, in the order of their keys (`1`–`6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tab {
    /// Every session but the archived ones.
    #[default]
    All,
    Working,
    /// Waiting for input or for approval.
    Waiting,
    Idle,
    StoppedOrFailed,
    Archived,
}

impl Tab {
    pub const ALL: [Tab; 6] = [Tab::All, Tab::Working, Tab::Waiting, Tab::Idle, Tab::StoppedOrFailed, Tab::Archived];

    pub fn label(self) -> &'static str {
        match self {
            Tab::All => "All",
            Tab::Working => "Working",
            Tab::Waiting => "Waiting",
            Tab::Idle => "Idle",
            Tab::StoppedOrFailed => "Stopped/failed",
            Tab::Archived => "Archived",
        }
    }

    /// Whether `s` is shown under this tab.
    pub fn keeps(self, s: &Session) -> bool {
        let running = s.status == Status::Running;
        match self {
            Tab::All => s.status != Status::Archived,
            Tab::Working => running && s.agent_status == AgentStatus::Working,
            Tab::Waiting => {
                running && matches!(s.agent_status, AgentStatus::WaitingForInput | AgentStatus::WaitingForApproval)
            }
            Tab::Idle => running && s.agent_status == AgentStatus::Idle,
            Tab::StoppedOrFailed => matches!(s.status, Status::Stopped | Status::Failed),
            Tab::Archived => s.status == Status::Archived,
        }
    }

    /// The tab after (`step` 1) or before (`step` -1) this one, wrapping round.
    pub fn step(self, step: isize) -> Tab {
        let i = Tab::ALL.iter().position(|t| *t == self).unwrap_or(0) as isize;
        Tab::ALL[(i + step).rem_euclid(Tab::ALL.len() as isize) as usize]
    }
}

/// Whether `s` matches the search `query` (case folded) in its name,
/// repository, branch, backend, agent, model or prompt.
pub fn matches(s: &Session, query: &str) -> bool {
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        return true;
    }
    let repo = s.repo.to_string_lossy();
    [&s.name, repo.as_ref(), &s.branch, &s.backend, &s.agent, s.model.as_deref().unwrap_or(""), &s.prompt]
        .iter()
        .any(|field| field.to_lowercase().contains(&q))
}

/// The columns the list can be sorted by (`o` picks the next one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Repository,
    Backend,
    Agent,
    State,
    AgentState,
    Access,
    Age,
    LastActivity,
}

impl SortKey {
    pub const ALL: [SortKey; 9] = [
        SortKey::Name,
        SortKey::Repository,
        SortKey::Backend,
        SortKey::Agent,
        SortKey::State,
        SortKey::AgentState,
        SortKey::Access,
        SortKey::Age,
        SortKey::LastActivity,
    ];

    /// The column's heading.
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "Session",
            SortKey::Repository => "Repository",
            SortKey::Backend => "Backend",
            SortKey::Agent => "Agent",
            SortKey::State => "State",
            SortKey::AgentState => "Agent state",
            SortKey::Access => "Access",
            SortKey::Age => "Age",
            SortKey::LastActivity => "Last activity",
        }
    }
}

/// An order for the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Default for Sort {
    /// Most recently active first.
    fn default() -> Self {
        Sort { key: SortKey::LastActivity, descending: true }
    }
}

impl Sort {
    /// The next column, in the order its values read best (times newest
    /// first, the rest A to Z).
    pub fn next_key(self) -> Sort {
        let i = SortKey::ALL.iter().position(|k| *k == self.key).unwrap_or(0);
        let key = SortKey::ALL[(i + 1) % SortKey::ALL.len()];
        Sort { key, descending: matches!(key, SortKey::Age | SortKey::LastActivity) }
    }

    /// `sessions` in this order; ties fall back to the most recently active first.
    pub fn apply(self, sessions: &mut [&Session]) {
        use std::cmp::Ordering;
        let text = |s: &Session| -> String {
            match self.key {
                SortKey::Name => s.name.clone(),
                SortKey::Repository => s.repo.to_string_lossy().into_owned(),
                SortKey::Backend => s.backend.clone(),
                SortKey::Agent => s.agent.clone(),
                SortKey::State => kebab(&s.status),
                SortKey::AgentState => kebab(&s.agent_status),
                SortKey::Access => s.access_mode.as_str().to_string(),
                SortKey::Age | SortKey::LastActivity => String::new(),
            }
        };
        let order = |a: &Session, b: &Session| -> Ordering {
            match self.key {
                // The youngest session has the latest creation time.
                SortKey::Age => a.created_at.cmp(&b.created_at),
                SortKey::LastActivity => a.updated_at.cmp(&b.updated_at),
                _ => text(a).cmp(&text(b)),
            }
        };
        sessions.sort_by(|a, b| {
            let o = order(a, b);
            let o = if self.descending { o.reverse() } else { o };
            o.then_with(|| b.updated_at.cmp(&a.updated_at)).then_with(|| a.name.cmp(&b.name))
        });
    }
}

/// What an event from the daemon's stream means for the list.
#[derive(Debug, PartialEq)]
pub enum Change {
    /// The session's new state is in the event: it was applied.
    Applied,
    /// The session is gone.
    Deleted(String),
    /// The event does not carry the new state: ask for the session.
    Fetch(String),
    /// Not about the list (audit records, progress), or older than what is shown.
    Nothing,
}

/// Apply a session event (`{"seq":…,"type":"status-changed","to":…}`) to
/// `s`, the session it names (when the list has it).
pub fn apply(s: Option<&mut Session>, event: &serde_json::Value) -> Change {
    let Some(id) = event["session_id"].as_str() else { return Change::Nothing };
    let at = event["at"].as_u64().unwrap_or(0);
    let kind = event["type"].as_str().unwrap_or("");
    if kind == "deleted" {
        return Change::Deleted(id.to_string());
    }
    let Some(s) = s else {
        return Change::Fetch(id.to_string());
    };
    if at < s.updated_at && event.get("to").is_some() {
        // A replay older than what the list shows.
        return Change::Nothing;
    }
    let to = &event["to"];
    let done = match kind {
        "status-changed" => serde_json::from_value(to.clone()).map(|v| s.status = v).is_ok(),
        "agent-status-changed" => serde_json::from_value(to.clone()).map(|v| s.agent_status = v).is_ok(),
        "access-mode-changed" => serde_json::from_value(to.clone()).map(|v| s.access_mode = v).is_ok(),
        "egress-changed" => serde_json::from_value(to.clone()).map(|v| s.egress = v).is_ok(),
        _ => false,
    };
    if done {
        s.updated_at = s.updated_at.max(at);
        Change::Applied
    } else {
        Change::Fetch(id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn session(name: &str, status: Status, agent: AgentStatus, updated_at: u64) -> Session {
        Session {
            id: format!("id-{name}"),
            name: name.into(),
            status,
            agent_status: agent,
            updated_at,
            ..Session::default()
        }
    }

    #[test]
    fn tabs_keep_what_their_label_says() {
        let working = session("w", Status::Running, AgentStatus::Working, 1);
        let approval = session("a", Status::Running, AgentStatus::WaitingForApproval, 1);
        let stopped = session("s", Status::Stopped, AgentStatus::Unknown, 1);
        let failed = session("f", Status::Failed, AgentStatus::Unknown, 1);
        let archived = session("x", Status::Archived, AgentStatus::Idle, 1);
        assert!(Tab::Working.keeps(&working) && !Tab::Working.keeps(&approval));
        assert!(Tab::Waiting.keeps(&approval));
        assert!(Tab::StoppedOrFailed.keeps(&stopped) && Tab::StoppedOrFailed.keeps(&failed));
        assert!(!Tab::All.keeps(&archived) && Tab::Archived.keeps(&archived));
        assert!(!Tab::Idle.keeps(&archived), "an archived session is not idle");
        assert_eq!(Tab::All.step(-1), Tab::Archived);
        assert_eq!(Tab::Archived.step(1), Tab::All);
    }

    #[test]
    fn search_looks_at_name_repo_branch_and_prompt() {
        let mut s = session("fix-login", Status::Running, AgentStatus::Idle, 1);
        s.prompt = "Make the Login page accessible".into();
        s.repo = "/src/web-app".into();
        assert!(matches(&s, "LOGIN"));
        assert!(matches(&s, " web-app "));
        assert!(matches(&s, ""));
        assert!(!matches(&s, "payments"));
    }

    #[test]
    fn sorting_by_a_column_then_by_last_activity() {
        let a = session("b-one", Status::Running, AgentStatus::Idle, 10);
        let b = session("a-two", Status::Stopped, AgentStatus::Idle, 30);
        let c = session("c-three", Status::Running, AgentStatus::Idle, 20);
        let mut list = vec![&a, &b, &c];
        Sort::default().apply(&mut list);
        assert_eq!(list.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["a-two", "c-three", "b-one"]);
        let by_name = Sort::default().next_key();
        assert_eq!(by_name, Sort { key: SortKey::Name, descending: false });
        by_name.apply(&mut list);
        assert_eq!(list.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["a-two", "b-one", "c-three"]);
        let by_state = Sort { key: SortKey::State, descending: false };
        by_state.apply(&mut list);
        // Both running: the more recently active first.
        assert_eq!(list.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["c-three", "b-one", "a-two"]);
    }

    #[test]
    fn events_change_the_session_they_name_unless_older() {
        let mut s = session("x", Status::Running, AgentStatus::Working, 100);
        let e = json!({"seq": 5, "at": 200, "session_id": "id-x", "type": "agent-status-changed", "to": "idle"});
        assert_eq!(apply(Some(&mut s), &e), Change::Applied);
        assert_eq!(s.agent_status, AgentStatus::Idle);
        assert_eq!(s.updated_at, 200);
        let old = json!({"seq": 4, "at": 150, "session_id": "id-x", "type": "status-changed", "from": "running", "to": "stopped"});
        assert_eq!(apply(Some(&mut s), &old), Change::Nothing);
        assert_eq!(s.status, Status::Running);
        let created = json!({"seq": 6, "at": 300, "session_id": "id-y", "type": "created"});
        assert_eq!(apply(None, &created), Change::Fetch("id-y".into()));
        let deleted = json!({"seq": 7, "at": 300, "session_id": "id-x", "type": "deleted"});
        assert_eq!(apply(Some(&mut s), &deleted), Change::Deleted("id-x".into()));
        let reconciled = json!({"seq": 8, "at": 400, "session_id": "id-x", "type": "reconciled", "note": "gone"});
        assert_eq!(apply(Some(&mut s), &reconciled), Change::Fetch("id-x".into()));
        let audit = json!({"type": "audit", "record": {}});
        assert_eq!(apply(None, &audit), Change::Nothing);
    }
}
