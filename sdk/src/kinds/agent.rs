//! Agents: how to launch an AI coding agent and read its transcript.

use core::marker::PhantomData;

use crate::Result;
use crate::bindings::agent::exports::clauderon::plugin::agent_api as api;
use crate::types::{AgentStatus, LaunchPlan};
pub use api::{AgentInfo, ApprovalKeys, ChatMessage, ChatRole, LaunchRequest};

/// An agent. Implement it on a unit struct and export it with
/// [`export_agent!`](crate::export_agent).
pub trait Agent {
    /// Describe the agent.
    fn info() -> AgentInfo;
    /// The launch plan for a session.
    fn plan(request: LaunchRequest) -> Result<LaunchPlan>;
    /// Parse whole transcript lines into chat messages (none by default).
    fn parse_transcript(lines: Vec<String>) -> Result<Vec<ChatMessage>> {
        let _ = lines;
        Ok(Vec::new())
    }
    /// The status a status event implies (none by default): the event is what
    /// the agent CLI's own hooks posted to `SessionInfo::status_url`.
    fn status_from_event(event_json: String) -> Option<AgentStatus> {
        let _ = event_json;
        None
    }
}

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: Agent> api::Guest for Export<T> {
    fn info() -> AgentInfo {
        crate::__init();
        T::info()
    }
    fn plan(request: LaunchRequest) -> Result<LaunchPlan> {
        crate::__init();
        T::plan(request)
    }
    fn parse_transcript(lines: Vec<String>) -> Result<Vec<ChatMessage>> {
        crate::__init();
        T::parse_transcript(lines)
    }
    fn status_from_event(event_json: String) -> Option<AgentStatus> {
        crate::__init();
        T::status_from_event(event_json)
    }
}

/// Export a type implementing [`Agent`] as this component's agent.
#[macro_export]
macro_rules! export_agent {
    ($ty:ty) => {
        type __ClauderonAgentExport = $crate::__agent_export::Export<$ty>;
        $crate::bindings::agent::__export_agent_world!(__ClauderonAgentExport with_types_in $crate::bindings::agent);
    };
}
