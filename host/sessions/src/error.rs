//! Session errors, each a sentence saying what to do.

use clauderon_store::StoreError;

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The request was wrong (bad path, unknown backend, bad name…).
    #[error("{0}")]
    Invalid(String),
    /// No such session.
    #[error("no session named or with id `{0}` (see `clauderon list --archived`)")]
    NotFound(String),
    /// The request conflicts with the current state (duplicate name, wrong status).
    #[error("{0}")]
    Conflict(String),
    /// A backend, agent, git or the store failed.
    #[error("{0}")]
    Failed(String),
}

impl From<StoreError> for SessionError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NameTaken(_) => SessionError::Conflict(e.to_string()),
            StoreError::NotFound(id) => SessionError::NotFound(id),
            other => SessionError::Failed(other.to_string()),
        }
    }
}

impl SessionError {
    /// The same error, its sentence starting with `who` (the component to blame).
    pub fn blaming(self, who: &str) -> Self {
        match self {
            SessionError::Invalid(m) => SessionError::Invalid(format!("{who}: {m}")),
            SessionError::NotFound(m) => SessionError::NotFound(m),
            SessionError::Conflict(m) => SessionError::Conflict(format!("{who}: {m}")),
            SessionError::Failed(m) => SessionError::Failed(format!("{who}: {m}")),
        }
    }
}

/// A component's own answer keeps its meaning (bad input, no such thing,
/// not possible now); a trap, timeout or failure is a failure.
impl From<clauderon_runtime::CallError> for SessionError {
    fn from(e: clauderon_runtime::CallError) -> Self {
        use clauderon_runtime::bindings::PluginError as P;
        use clauderon_runtime::error::CallErrorKind as K;
        match &e.kind {
            K::Plugin(P::InvalidInput(_)) => SessionError::Invalid(e.to_string()),
            K::Plugin(P::NotFound(_)) => SessionError::NotFound(e.to_string()),
            K::Plugin(P::Unsupported(_)) => SessionError::Conflict(e.to_string()),
            _ => SessionError::Failed(e.to_string()),
        }
    }
}
