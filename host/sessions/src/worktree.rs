//! git: find the repository of a path, and make or remove a session's
//! worktree on its own branch. Runs the real `git`.

use std::path::{Path, PathBuf};

use crate::error::SessionError;

/// A repository and where in it a session works.
#[derive(Debug, Clone)]
pub struct Location {
    /// The repository's top-level directory.
    pub root: PathBuf,
    /// The path inside it (empty for the root).
    pub subdir: PathBuf,
}

async fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .await
        .map_err(|e| format!("could not run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Find the repository holding `path`.
pub async fn locate(path: &Path) -> Result<Location, SessionError> {
    let abs = tokio::fs::canonicalize(path)
        .await
        .map_err(|_| SessionError::Invalid(format!("{} does not exist", path.display())))?;
    if !abs.is_dir() {
        return Err(SessionError::Invalid(format!("{} is not a directory", path.display())));
    }
    let root = git(&abs, &["rev-parse", "--show-toplevel"]).await.map_err(|_| {
        SessionError::Invalid(format!("{} is not inside a git repository (run `git init` there first)", path.display()))
    })?;
    let root = PathBuf::from(root);
    let subdir = abs.strip_prefix(&root).map(Path::to_path_buf).unwrap_or_default();
    Ok(Location { root, subdir })
}

/// The base a new session branches from: the current branch name (or commit) and its commit.
pub async fn base(root: &Path) -> Result<(String, String), SessionError> {
    let commit = git(root, &["rev-parse", "--verify", "HEAD"])
        .await
        .map_err(|_| SessionError::Invalid(format!("{} has no commits yet; commit something first", root.display())))?;
    let name = git(root, &["symbolic-ref", "--quiet", "--short", "HEAD"]).await.unwrap_or_else(|_| commit.clone());
    Ok((name, commit))
}

/// Create `worktree` on a new `branch` starting at `commit`.
pub async fn add(root: &Path, worktree: &Path, branch: &str, commit: &str) -> Result<(), SessionError> {
    let wt = worktree.to_string_lossy();
    git(root, &["worktree", "add", "--quiet", "-b", branch, &wt, commit])
        .await
        .map(|_| ())
        .map_err(|e| SessionError::Failed(format!("creating the worktree {wt} failed: {e}")))
}

/// Whether `branch` has commits that `base` does not.
pub async fn has_own_commits(root: &Path, branch: &str, base: &str) -> bool {
    let range = format!("{base}..{branch}");
    git(root, &["rev-list", "--count", &range]).await.map(|n| n != "0").unwrap_or(false)
}

/// Remove the worktree, and the branch unless it has commits of its own.
/// Returns whether the branch was kept.
pub async fn remove(root: &Path, worktree: &Path, branch: &str, base: &str) -> Result<bool, SessionError> {
    let wt = worktree.to_string_lossy();
    if worktree.exists() {
        git(root, &["worktree", "remove", "--force", &wt])
            .await
            .map_err(|e| SessionError::Failed(format!("removing the worktree {wt} failed: {e}")))?;
    }
    let _ = git(root, &["worktree", "prune"]).await;
    let branch_exists = git(root, &["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}")]).await.is_ok();
    if !branch_exists {
        return Ok(false);
    }
    if has_own_commits(root, branch, base).await {
        return Ok(true);
    }
    git(root, &["branch", "-D", branch])
        .await
        .map(|_| false)
        .map_err(|e| SessionError::Failed(format!("deleting the branch {branch} failed: {e}")))
}

/// The user's git identity for `repo` as environment variables, so commits in
/// a session (whose HOME is its own config home) carry the user's name.
pub async fn identity_env(repo: &Path) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for (key, vars) in [
        ("user.name", ["GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"]),
        ("user.email", ["GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"]),
    ] {
        if let Ok(value) = git(repo, &["config", "--get", key]).await
            && !value.is_empty()
        {
            env.extend(vars.iter().map(|v| (v.to_string(), value.clone())));
        }
    }
    env
}
