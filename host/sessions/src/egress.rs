//! The session's way out to the network. The manager asks an [`Egress`] (in
//! the daemon: clauderon's proxy) to open a session's listener before its
//! backend starts it, and passes the environment it returns — proxy URL with
//! the session's identity, CA bundle, placeholders — to the backend. Access
//! mode and egress policy changes go to it live; delete and archive close it.

use std::future::Future;
use std::pin::Pin;

use crate::model::{AccessMode, EgressPolicy, Session};

/// A boxed future (the trait must be usable as `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a session's egress gives the session.
#[derive(Debug, Clone, Default)]
pub struct EgressEnv {
    /// The listener's port (kept in the session so a restarted daemon reuses it).
    pub port: u16,
    /// Environment variables for the session.
    pub env: Vec<(String, String)>,
    /// The directory holding the listener's unix socket (`proxy.sock`), the
    /// way out of a sandboxed session.
    pub socket_dir: Option<std::path::PathBuf>,
    /// The CA bundle the environment points TLS clients at (a sandboxed
    /// session is shown it, read-only).
    pub ca_bundle: Option<std::path::PathBuf>,
}

/// Opens and closes sessions' network paths.
pub trait Egress: Send + Sync {
    /// Open (or reopen) the session's path; idempotent.
    fn open<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<EgressEnv, String>>;
    /// Apply a new access mode to the session's next request.
    fn set_access_mode(&self, id: &str, mode: AccessMode);
    /// Apply a new egress policy to the session's next request.
    fn set_egress(&self, id: &str, policy: &EgressPolicy);
    /// Close the session's path.
    fn close(&self, id: &str);
    /// The secret only this session knows (it authenticates its status events).
    fn session_secret(&self, id: &str) -> Option<String>;
    /// Where sessions on other machines dial the proxy's direct door
    /// (`IP:PORT`) and session `id`'s door file; none without a door.
    fn door(&self, id: &str) -> Option<(String, String)>;
}
