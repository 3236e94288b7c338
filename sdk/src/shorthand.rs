//! Short constructors and checks on the generated records, so plugin code
//! says what it means: `ResourceStatus::running()`, `SessionInfo::running(name)`,
//! `BackendFeatures { attach: true, ..BackendFeatures::NONE }`, `out.success()`,
//! `spec.option("image")`, and a backend's [`PathMap`] of where the
//! session's host paths are seen inside its container or pod.

use crate::BackendFeatures;
use crate::process::Output;
use crate::types::{EnvVar, ResourceState, ResourceStatus, SessionInfo, SessionSpec};

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
    pub const NONE: Self = Self {
        attach: false,
        resource_limits: false,
        custom_image: false,
        resume: false,
        isolated: false,
        remote_workspace: false,
    };

    /// A container's: an isolated backend that can be attached to, limited,
    /// given an image and resumed, whose agent works in the session's clone
    /// (mounted from the host).
    pub const CONTAINER: Self = Self {
        attach: true,
        resource_limits: true,
        custom_image: true,
        resume: true,
        isolated: true,
        remote_workspace: false,
    };
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

impl SessionSpec {
    /// The value of option `key` (the config's `[backends.<id>]`, or one the
    /// host adds; the last one given wins).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The launch plan's value of the environment variable `name`.
    pub fn env_value(&self, name: &str) -> Option<&str> {
        self.launch.env.iter().rev().find(|e| e.name == name).map(|e| e.value.as_str())
    }
}

/// Where an isolated backend shows the session's host paths inside its
/// container or pod: the worktree, the config home (the plan's `HOME`) and
/// clauderon's CA bundle (its `SSL_CERT_FILE`), each at a path of the
/// backend's choosing; the launch plan's environment and working directory
/// are rewritten to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMap(pub Vec<(String, String)>);

impl PathMap {
    /// The map for `spec`, with the worktree at `worktree`, the config home
    /// at `home` and the CA bundle at `ca_bundle` inside.
    pub fn new(spec: &SessionSpec, worktree: &str, home: &str, ca_bundle: &str) -> Self {
        let mut map = vec![(spec.worktree.clone(), worktree.to_string())];
        if let Some(host) = spec.env_value("HOME") {
            map.push((host.to_string(), home.to_string()));
        }
        if let Some(host) = spec.env_value("SSL_CERT_FILE") {
            map.push((host.to_string(), ca_bundle.to_string()));
        }
        Self(map)
    }

    /// `value` with each host path replaced by where it is seen inside.
    pub fn rewrite(&self, value: &str) -> String {
        self.0.iter().fold(value.to_string(), |v, (host, inside)| v.replace(host.as_str(), inside))
    }

    /// The launch plan's environment, as seen inside.
    pub fn env(&self, spec: &SessionSpec) -> Vec<EnvVar> {
        spec.launch.env.iter().map(|e| EnvVar { name: e.name.clone(), value: self.rewrite(&e.value) }).collect()
    }
}
