//! The host sandbox for sessions whose backend runs the agent on this
//! machine (a backend that does not declare itself `isolated`, like zellij):
//! whether a session gets one, the policy written for it, and the command
//! that wraps the agent's (`clauderon sandbox exec --policy FILE -- ARGV`).
//! What the sandbox does is `clauderon_sandbox`'s business.

use std::path::{Path, PathBuf};

use clauderon_sandbox::{Policy, ProxyLink, Support};
use serde::{Deserialize, Serialize};

use crate::error::SessionError;

/// How a session's agent is contained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// A host session inside clauderon's sandbox.
    Sandbox,
    /// The backend isolates it (a container).
    Backend,
    /// A host session running unsandboxed (`[sandbox] required = false` on a
    /// machine that cannot build the sandbox).
    None,
}

/// `[sandbox]` in `config.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Run host sessions in the sandbox (default). `false` runs them
    /// unsandboxed, shown as such — for debugging, and the benchmark's baseline.
    pub enabled: bool,
    /// Refuse to create host sessions when this machine cannot sandbox them
    /// (default); `false` runs them unsandboxed instead, shown as such.
    pub required: bool,
    /// More paths host sessions must not see (`~/` is your home).
    pub hide: Vec<String>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self { enabled: true, required: true, hide: Vec::new() }
    }
}

/// What the manager needs to sandbox host sessions.
#[derive(Debug, Clone)]
pub struct HostSandbox {
    /// The `clauderon` binary that runs `sandbox exec`.
    pub exe: PathBuf,
    /// Whether this machine can build the sandbox (the daemon's probe).
    pub support: Support,
    /// The `[sandbox]` settings.
    pub config: SandboxConfig,
    /// The user's home (their credential stores live there).
    pub user_home: PathBuf,
}

/// Where a session's files are, as the sandbox needs them.
pub(crate) struct Paths<'a> {
    pub clauderon_home: &'a Path,
    pub config_home: &'a Path,
    pub worktree: &'a Path,
    pub workdir: &'a Path,
    /// The user's object store, which the session's clone reads.
    pub objects: &'a Path,
}

impl HostSandbox {
    /// The policy for a host session, `None` if it runs unsandboxed here, or
    /// an error if it may not run at all.
    pub(crate) fn policy(
        &self,
        name: &str,
        paths: &Paths<'_>,
        proxy: Option<(u16, PathBuf)>,
    ) -> Result<Option<Policy>, SessionError> {
        if !self.config.enabled {
            return Ok(None);
        }
        if let Support::Missing(why) = &self.support {
            if self.config.required {
                return Err(SessionError::Invalid(format!(
                    "this machine cannot sandbox host sessions: {why}. Fix that, use an isolated backend \
                     (--backend docker), or set `[sandbox] required = false` in config.toml to run host \
                     sessions unsandboxed (`clauderon list` then marks them)"
                )));
            }
            return Ok(None);
        }
        let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        Ok(Some(Policy {
            session: name.to_string(),
            workdir: canonical(paths.workdir),
            writable: vec![canonical(paths.worktree), canonical(paths.config_home)],
            // The session's clone reads the user's objects through alternates.
            readable: vec![canonical(paths.objects)],
            hidden: clauderon_sandbox::default_hidden(&self.user_home, paths.clauderon_home, &self.config.hide),
            proxy: proxy.map(|(port, socket_dir)| ProxyLink { port, socket_dir }),
        }))
    }

    /// Write `policy` into the session's directory and wrap `argv` in the sandbox.
    pub(crate) fn wrap(
        &self,
        session_dir: &Path,
        policy: &Policy,
        argv: Vec<String>,
    ) -> Result<Vec<String>, SessionError> {
        let path = session_dir.join("sandbox.json");
        policy
            .write(&path)
            .map_err(|e| SessionError::Failed(format!("writing the sandbox policy {}: {e}", path.display())))?;
        let mut wrapped = vec![
            self.exe.to_string_lossy().into_owned(),
            "sandbox".into(),
            "exec".into(),
            "--policy".into(),
            path.to_string_lossy().into_owned(),
            "--".into(),
        ];
        wrapped.extend(argv);
        Ok(wrapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(support: Support, required: bool) -> HostSandbox {
        HostSandbox {
            exe: "/bin/clauderon".into(),
            support,
            config: SandboxConfig { enabled: true, required, hide: vec![] },
            user_home: "/nonexistent-home".into(),
        }
    }

    fn paths<'a>(dir: &'a Path) -> Paths<'a> {
        Paths { clauderon_home: dir, config_home: dir, worktree: dir, workdir: dir, objects: dir }
    }

    #[test]
    fn a_machine_without_the_sandbox_refuses_host_sessions_unless_allowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = Support::Missing("no user namespaces".into());
        let err = sandbox(missing.clone(), true).policy("s", &paths(dir.path()), None).expect_err("refused");
        assert!(
            err.to_string().contains("no user namespaces") && err.to_string().contains("required = false"),
            "{err}"
        );
        assert_eq!(sandbox(missing, false).policy("s", &paths(dir.path()), None).expect("allowed"), None);
    }

    #[test]
    fn the_policy_hides_clauderons_home_and_wraps_the_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = sandbox(Support::Full, true);
        let policy =
            s.policy("s", &paths(dir.path()), Some((4000, dir.path().join("run")))).expect("ok").expect("policy");
        assert!(policy.hidden.contains(&dir.path().canonicalize().expect("canon")), "{policy:?}");
        assert_eq!(policy.proxy.as_ref().map(|p| p.port), Some(4000));
        let argv = s.wrap(dir.path(), &policy, vec!["claude".into(), "-p".into()]).expect("wrap");
        assert_eq!(argv[..3], ["/bin/clauderon".to_string(), "sandbox".into(), "exec".into()]);
        assert_eq!(argv[argv.len() - 3..], ["--".to_string(), "claude".into(), "-p".into()]);
        assert_eq!(Policy::read(&dir.path().join("sandbox.json")).expect("written"), policy);
    }
}
