//! The sandbox around a host session (a session whose backend runs the agent
//! on this machine, like zellij). The session manager writes a [`Policy`] and
//! makes the backend run `clauderon sandbox exec --policy FILE -- AGENT…`;
//! [`exec`] then builds, before the agent's first instruction:
//!
//! - **its own user, mount, PID, network, IPC and UTS namespaces** (no
//!   privilege needed: the user namespace maps the user to itself);
//! - **a read-only view of the system** in which `CLAUDERON_HOME`, the user's
//!   credential stores, `/run` (the multiplexer's and Docker's sockets) and
//!   whatever else the policy hides are empty, `/tmp`, `/dev/shm` and `/dev`
//!   are the sandbox's own, `/proc` shows only its own processes, and only the
//!   session's worktree and config home are writable;
//! - **a network with nothing in it but loopback and the session's proxy**:
//!   a relay listens on the proxy's port on the sandbox's own 127.0.0.1 and
//!   [::1] and passes each connection to the proxy's unix socket, so the agent
//!   reaches the world only through its proxy while servers it starts itself
//!   stay reachable to it;
//! - **Landlock** on the agent (writes only where the policy allows, no
//!   signals or abstract sockets outside the sandbox), `no_new_privs`, and
//!   every capability dropped.
//!
//! [`probe`] says whether this kernel can do all of it. Containers get the
//! same way out: [`container_init`] (the static `clauderon-relay`) is their
//! PID 1.

pub mod container_init;
pub mod door;
pub mod policy;
pub mod probe;

mod launch;
mod reap;
pub mod relay;

pub use launch::exec;
pub use policy::{Policy, ProxyLink, default_hidden};
pub use probe::{Support, probe};
pub use reap::LINGER;

/// What can go wrong building a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A step failed; the message names it and what to do.
    #[error("{0}")]
    Step(String),
    /// The policy file could not be read.
    #[error("reading the sandbox policy {path}: {reason}")]
    Policy { path: String, reason: String },
}

impl SandboxError {
    pub(crate) fn step(what: impl std::fmt::Display, e: impl std::fmt::Display) -> Self {
        Self::Step(format!("sandbox: {what}: {e}"))
    }
}
