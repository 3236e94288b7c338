//! Short constructors and checks on the generated records, so plugin code
//! says what it means: `ResourceStatus::running()`, `SessionInfo::running(name)`,
//! `BackendFeatures { attach: true, ..BackendFeatures::NONE }`, `out.success()`.

use crate::BackendFeatures;
use crate::process::Output;
use crate::types::{ResourceState, ResourceStatus, SessionInfo};

impl ResourceStatus {
    /// Running, nothing more to say.
    pub fn running() -> Self {
        Self { state: ResourceState::Running, detail: None }
    }

    /// Stopped, and can be started again.
    pub fn stopped() -> Self {
        Self { state: ResourceState::Stopped, detail: None }
    }

    /// Gone (finished, or removed outside clauderon), with what you found.
    pub fn missing(detail: impl Into<String>) -> Self {
        Self { state: ResourceState::Missing, detail: Some(detail.into()) }
    }

    /// Broken, with the reason for the person reading `clauderon list`.
    pub fn failed(detail: impl Into<String>) -> Self {
        Self { state: ResourceState::Failed, detail: Some(detail.into()) }
    }
}

impl SessionInfo {
    /// What `create` returns for a resource now running: `resource_id` must
    /// be the spec's `resource_name`.
    pub fn running(resource_id: impl Into<String>) -> Self {
        Self { resource_id: resource_id.into(), status: ResourceStatus::running() }
    }
}

impl BackendFeatures {
    /// No optional features: start from this and set the ones you have,
    /// `BackendFeatures { attach: true, ..BackendFeatures::NONE }`.
    pub const NONE: Self =
        Self { attach: false, resource_limits: false, custom_image: false, resume: false, isolated: false };
}

impl Output {
    /// Whether the program exited with status 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthands_build_the_records_they_name() {
        assert_eq!(ResourceStatus::running().state, ResourceState::Running);
        let gone = ResourceStatus::missing("no such session");
        assert_eq!((gone.state, gone.detail.as_deref()), (ResourceState::Missing, Some("no such session")));
        assert_eq!(ResourceStatus::failed("x").state, ResourceState::Failed);
        assert_eq!(ResourceStatus::stopped().state, ResourceState::Stopped);
        let info = SessionInfo::running("clauderon-a");
        assert_eq!((info.resource_id.as_str(), info.status.state), ("clauderon-a", ResourceState::Running));
        let f = BackendFeatures { attach: true, ..BackendFeatures::NONE };
        assert!(f.attach && !f.resume && !f.isolated && !f.custom_image && !f.resource_limits);
        let out = Output {
            exit_code: Some(0),
            stdout: b"hi\n".to_vec(),
            stderr: vec![0xff],
            truncated: false,
            timed_out: false,
        };
        assert!(out.success() && out.stdout_text() == "hi\n" && out.stderr_text() == "\u{fffd}");
        assert!(!Output { exit_code: None, ..out }.success());
    }
}
