//! Hook dispatch: every session event goes to each loaded hook component.
//!
//! Each hook has its own worker and its own bounded queue, so hooks see
//! events in order, one call at a time, on a fresh instance under the hook
//! limits (deadline, memory, output). Nothing waits for a hook: the session's
//! operation has already happened when its event is sent, a slow hook only
//! delays itself, a full queue drops the event for that hook (with a
//! warning), and a failing or trapping hook is logged and called again for
//! the next event.

use std::collections::BTreeMap;
use std::sync::Arc;

use clauderon_runtime::bindings::types as wit;
use clauderon_runtime::{Kind, Runtime};
use tokio::sync::{broadcast, mpsc};

use crate::model::{AccessMode, AgentStatus, Event, EventKind, Status};

/// Events a hook may fall behind by before new ones are dropped for it.
pub const QUEUE: usize = 256;

/// Start dispatching `events` to every hook component `runtime` has loaded —
/// at each event, so a hook a reload adds gets events from then on and one it
/// removes gets no more; returns how many hooks there are now. The workers
/// end when `events` closes.
pub fn spawn(runtime: Arc<Runtime>, mut events: broadcast::Receiver<Event>) -> usize {
    fn hook_ids(runtime: &Runtime) -> Vec<String> {
        runtime.plugins().into_iter().filter(|p| p.kind() == Kind::Hook).map(|p| p.id().to_string()).collect()
    }
    let now = hook_ids(&runtime).len();
    tokio::spawn(async move {
        let mut queues: BTreeMap<String, mpsc::Sender<wit::SessionEvent>> = BTreeMap::new();
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("hooks missed {n} session events (events came faster than they were read)");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            let ids = hook_ids(&runtime);
            queues.retain(|id, _| ids.contains(id));
            for id in ids {
                queues.entry(id.clone()).or_insert_with(|| {
                    let (tx, rx) = mpsc::channel(QUEUE);
                    tokio::spawn(worker(runtime.clone(), id, rx));
                    tx
                });
            }
            let event = to_wit(&event);
            for (id, queue) in &queues {
                if queue.try_send(event.clone()).is_err() {
                    tracing::warn!(hook = %id, "hook `{id}` is {QUEUE} events behind; this event is dropped for it");
                }
            }
        }
    });
    now
}

/// Call hook `id` for each event, one at a time.
async fn worker(runtime: Arc<Runtime>, id: String, mut queue: mpsc::Receiver<wit::SessionEvent>) {
    while let Some(event) = queue.recv().await {
        let called = async { runtime.hook(&id).await?.on_event(&event).await }.await;
        if let Err(e) = called {
            tracing::warn!(hook = %id, session = %event.session_name, "{e}");
        }
    }
}

/// A session event as the WIT contract delivers it.
pub fn to_wit(event: &Event) -> wit::SessionEvent {
    let kind = match &event.kind {
        EventKind::Created => wit::EventKind::Created,
        EventKind::StatusChanged { to, .. } => wit::EventKind::StatusChanged(status(*to)),
        EventKind::AgentStatusChanged { to } => wit::EventKind::AgentStatusChanged(agent_status(*to)),
        EventKind::AccessModeChanged { to } => wit::EventKind::AccessModeChanged(match to {
            AccessMode::ReadOnly => wit::AccessMode::ReadOnly,
            AccessMode::ReadWrite => wit::AccessMode::ReadWrite,
        }),
        EventKind::EgressChanged { to } => wit::EventKind::EgressChanged(wit::EgressPolicy {
            allow_all: to.mode == crate::model::EgressMode::AllowAll,
            hosts: to.hosts.clone(),
        }),
        EventKind::Deleted => wit::EventKind::Deleted,
        EventKind::CreateFailed => wit::EventKind::CreateFailed,
        EventKind::Reconciled { note } => wit::EventKind::Reconciled(note.clone()),
    };
    wit::SessionEvent {
        session_id: event.session_id.clone(),
        session_name: event.session_name.clone(),
        kind,
        timestamp_ms: event.at,
        detail: event.detail.clone(),
    }
}

fn status(s: Status) -> wit::SessionStatus {
    match s {
        Status::Creating => wit::SessionStatus::Creating,
        Status::Running => wit::SessionStatus::Running,
        Status::Stopped => wit::SessionStatus::Stopped,
        Status::Archived => wit::SessionStatus::Archived,
        Status::Failed => wit::SessionStatus::Failed,
    }
}

fn agent_status(s: AgentStatus) -> wit::AgentStatus {
    match s {
        AgentStatus::Working => wit::AgentStatus::Working,
        AgentStatus::WaitingForInput => wit::AgentStatus::WaitingForInput,
        AgentStatus::WaitingForApproval => wit::AgentStatus::WaitingForApproval,
        AgentStatus::Idle => wit::AgentStatus::Idle,
        AgentStatus::Unknown => wit::AgentStatus::Unknown,
    }
}
