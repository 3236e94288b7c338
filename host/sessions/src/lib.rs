//! clauderon-sessions: the session lifecycle.
//!
//! - [`model`]: sessions, statuses, events;
//! - [`worktree`]: git worktrees on a branch per session;
//! - [`egress`]: the session's proxy (opened before the backend starts it);
//! - [`history`]: chat messages from the agent's transcript;
//! - [`hooks`]: every session event to each hook component;
//! - [`manager`]: create / stop / start / archive / unarchive / delete /
//!   access mode / reconcile, each change stored with its event and broadcast.

pub mod confined;
pub mod egress;
pub mod error;
pub mod history;
pub mod hooks;
pub mod manager;
pub mod model;
pub mod ownership;
pub mod sandbox;
pub mod worktree;

pub use egress::{Egress, EgressEnv};
pub use error::SessionError;
pub use manager::{CreateRequest, Defaults, Manager, ManagerSupport};
pub use model::{AccessMode, AgentStatus, EgressMode, EgressPolicy, Event, EventKind, Session, Status, Synced};
pub use sandbox::{HostSandbox, Isolation, SandboxConfig};
