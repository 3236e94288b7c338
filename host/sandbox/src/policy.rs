//! What a sandboxed session may see and touch, written by the session
//! manager (as JSON, in the session's directory, which the sandbox hides) and
//! read by `clauderon sandbox exec` before it builds the sandbox.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::SandboxError;

/// The session's way to its proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyLink {
    /// The port of the session's proxy URL: the relay listens on it inside
    /// the sandbox (127.0.0.1 and [::1]), so the URL works unchanged.
    pub port: u16,
    /// The directory holding the proxy's unix socket `proxy.sock` (shown
    /// inside as `/run/clauderon`; a directory, so a restarted daemon's new
    /// socket is seen).
    pub socket_dir: PathBuf,
}

/// The whole policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The session's name (the sandbox's host name, and in messages).
    pub session: String,
    /// Where the agent starts.
    pub workdir: PathBuf,
    /// Shown read-write at their own paths (the worktree, the config home).
    pub writable: Vec<PathBuf>,
    /// Shown read-only at their own paths even where a hidden path or the
    /// sandbox's own `/tmp` would cover them.
    pub readable: Vec<PathBuf>,
    /// Replaced by an empty, read-only directory (or file).
    pub hidden: Vec<PathBuf>,
    /// The session's proxy; without one the sandbox has no way out at all.
    pub proxy: Option<ProxyLink>,
}

impl Policy {
    /// Read a policy file.
    pub fn read(path: &Path) -> Result<Self, SandboxError> {
        let err = |reason: String| SandboxError::Policy { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| err(e.to_string()))
    }

    /// Write it (mode 0600, replacing any previous one).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        file.write_all(&text)?;
        std::fs::rename(&tmp, path)
    }
}

/// Credential stores and private state every host session has hidden, under
/// the user's home (`~/.claude*` matches every entry whose name starts so).
const HIDDEN_IN_HOME: &[&str] = &[
    ".ssh",
    ".aws",
    ".azure",
    ".config/gh",
    ".config/gcloud",
    ".config/op",
    ".config/hub",
    ".config/clauderon",
    ".docker",
    ".kube",
    ".netrc",
    ".git-credentials",
    ".config/git/credentials",
    ".npmrc",
    ".yarnrc",
    ".pypirc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".gnupg",
    ".password-store",
    ".local/share/keyrings",
    ".claude*",
    ".codex",
    ".gemini",
    ".cache/zellij",
    ".local/share/zellij",
];

/// System paths every host session has hidden (besides `/run`, `/tmp` and
/// `/dev`, which are always the sandbox's own).
const HIDDEN_SYSTEM: &[&str] = &["/var/run/docker.sock", "/var/lib/docker"];

/// The paths hidden by default: the system ones, the user's credential
/// stores under `user_home`, `clauderon_home`, and `extra` (from the config;
/// `~/` expands to `user_home`). Paths that do not exist are left out.
pub fn default_hidden(user_home: &Path, clauderon_home: &Path, extra: &[String]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = HIDDEN_SYSTEM.iter().map(PathBuf::from).collect();
    for rel in HIDDEN_IN_HOME {
        match rel.strip_suffix('*') {
            Some(prefix) => {
                let entries = std::fs::read_dir(user_home).into_iter().flatten().flatten();
                out.extend(entries.filter(|e| e.file_name().to_string_lossy().starts_with(prefix)).map(|e| e.path()));
            }
            None => out.push(user_home.join(rel)),
        }
    }
    out.push(clauderon_home.to_path_buf());
    for e in extra {
        out.push(match e.strip_prefix("~/") {
            Some(rest) => user_home.join(rest),
            None => PathBuf::from(e),
        });
    }
    let mut out: Vec<PathBuf> =
        out.into_iter().filter(|p| p.symlink_metadata().is_ok()).map(|p| p.canonicalize().unwrap_or(p)).collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_cover_credential_stores_that_exist_and_expand_globs() {
        let home = tempfile::tempdir().expect("tempdir");
        for dir in [".ssh", ".claude", ".config/gh"] {
            std::fs::create_dir_all(home.path().join(dir)).expect("mkdir");
        }
        std::fs::write(home.path().join(".claude.json"), "{}").expect("write");
        std::fs::write(home.path().join(".netrc"), "").expect("write");
        let ch = home.path().join(".clauderon");
        std::fs::create_dir_all(&ch).expect("mkdir");
        std::fs::create_dir_all(home.path().join("vault")).expect("mkdir");
        let hidden = default_hidden(home.path(), &ch, &["~/vault".into(), "/nonexistent/x".into()]);
        let canon = |p: &str| home.path().join(p).canonicalize().expect("canon");
        for p in [".ssh", ".claude", ".claude.json", ".config/gh", ".netrc", ".clauderon", "vault"] {
            assert!(hidden.contains(&canon(p)), "{p} is hidden: {hidden:?}");
        }
        assert!(!hidden.iter().any(|p| p.ends_with(".aws")), "missing paths are left out");
        assert!(!hidden.iter().any(|p| p.starts_with("/nonexistent")));
    }

    #[test]
    fn a_policy_round_trips_through_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let policy = Policy {
            session: "s".into(),
            workdir: "/w".into(),
            writable: vec!["/w".into()],
            readable: vec![],
            hidden: vec!["/h".into()],
            proxy: Some(ProxyLink { port: 4000, socket_dir: "/run/x".into() }),
        };
        let path = dir.path().join("sandbox.json");
        policy.write(&path).expect("write");
        assert_eq!(Policy::read(&path).expect("read"), policy);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        assert!(Policy::read(&dir.path().join("none.json")).is_err());
    }
}
