//! git: find the repository of a path, give a session its own working copy
//! on its own branch, bring that branch back, and remove it. Runs the real
//! `git`.
//!
//! A session's working copy (its "worktree", at `CLAUDERON_HOME/worktrees/
//! <name>`) is a clone of the user's repository made with `--shared`: it
//! reads the user's objects through `objects/info/alternates` and writes its
//! own into its own `.git`, so nothing a session does can touch the user's
//! `.git` — not its hooks or config, not its object store, not its other
//! branches. The branch `clauderon/<name>` is made in the user's repository
//! at create (which also keeps the base commit reachable) and updated from
//! the clone by [`sync`]: `git fetch` of exactly that ref, whose serving
//! side (`upload-pack`) git promises is safe to run in an untrusted
//! repository.
//!
//! Every git the daemon runs has a cleared environment (PATH, HOME and the
//! locale only), hooks disabled and no fsmonitor, and runs in the user's
//! repository — never in a session's clone once the session has started.

use std::path::{Path, PathBuf};

use crate::confined::Confined;
use crate::error::SessionError;

/// A repository and where in it a session works.
#[derive(Debug, Clone)]
pub struct Location {
    /// The repository's top-level directory.
    pub root: PathBuf,
    /// The path inside it (empty for the root).
    pub subdir: PathBuf,
}

/// `git -C dir ARGS` with the daemon's hardening; its stdout, or stderr as the error.
async fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.env_clear();
    for var in ["PATH", "HOME", "LANG", "LC_ALL"] {
        if let Some(value) = std::env::var_os(var) {
            cmd.env(var, value);
        }
    }
    let out = cmd
        .env("GIT_TERMINAL_PROMPT", "0")
        .args(["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"])
        .arg("-C")
        .arg(dir)
        .args(args)
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
    if !path.is_absolute() {
        return Err(SessionError::Invalid(format!(
            "the repository must be given as an absolute path, not `{}`",
            path.display()
        )));
    }
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

/// The user's object store, which session clones read (read-only) through alternates.
pub async fn objects_dir(root: &Path) -> Result<PathBuf, SessionError> {
    let common = git(root, &["rev-parse", "--path-format=absolute", "--git-common-dir"])
        .await
        .map_err(|e| SessionError::Failed(format!("finding the git directory of {}: {e}", root.display())))?;
    Ok(PathBuf::from(common).join("objects"))
}

/// Make the session's clone at `worktree` on a new `branch` starting at
/// `commit` (the branch is made in the user's repository too). Refuses a
/// `worktree` or `branch` that exists already; a failure leaves nothing behind.
pub async fn add(root: &Path, worktree: &Path, branch: &str, commit: &str) -> Result<(), SessionError> {
    let wt = worktree.to_string_lossy();
    // Refuse what exists already: a failed create removes what it made, so
    // it must not have adopted anything it did not make.
    if tokio::fs::symlink_metadata(worktree).await.is_ok() {
        return Err(SessionError::Conflict(format!(
            "{wt} exists already (left from an earlier session?); remove it or pick another --name"
        )));
    }
    if git(root, &["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}")]).await.is_ok() {
        return Err(SessionError::Conflict(format!(
            "the branch {branch} exists already in {}; rename or delete it, or pick another --name",
            root.display()
        )));
    }
    let fail = |what: &str, e: String| SessionError::Failed(format!("{what} for the session ({wt}) failed: {e}"));
    git(root, &["branch", branch, commit]).await.map_err(|e| fail("creating its branch", e))?;
    if let Err(e) = clone(root, worktree, branch).await {
        // Leave nothing behind: the branch and any partial clone are ours.
        let _ = tokio::fs::remove_dir_all(worktree).await;
        let _ = git(root, &["branch", "-D", branch]).await;
        return Err(e);
    }
    Ok(())
}

/// Clone `root` at `branch` into `worktree`, sharing its objects.
async fn clone(root: &Path, worktree: &Path, branch: &str) -> Result<(), SessionError> {
    let wt = worktree.to_string_lossy();
    let fail = |what: &str, e: String| SessionError::Failed(format!("{what} for the session ({wt}) failed: {e}"));
    let source = root.to_string_lossy();
    git(root, &["clone", "--quiet", "--shared", "--template=", "--branch", branch, &source, &wt])
        .await
        .map_err(|e| fail("cloning the repository", e))?;
    // The clone's `origin` is the user's own remote, as a worktree's was, so
    // the agent pushes and fetches where the user does (through its proxy).
    if let Some(url) = origin(root).await {
        git(worktree, &["remote", "set-url", "origin", &url]).await.map_err(|e| fail("setting its origin", e))?;
    }
    Ok(())
}

/// The user's `origin`, as a session may see it (see [`public_url`]).
async fn origin(root: &Path) -> Option<String> {
    let url = git(root, &["remote", "get-url", "origin"]).await.ok()?;
    Some(public_url(url.trim())).filter(|u| !u.is_empty())
}

/// A remote's URL without a password or token in it: the proxy adds the
/// credential, so `https://x-access-token:TOKEN@github.com/o/r.git` becomes
/// `https://github.com/o/r.git` (an http(s) user name can be a token too, so
/// it goes as well); another scheme keeps its user name (`ssh://git@host/…`)
/// but not a password; an scp-like `git@host:o/r` has none.
pub fn public_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return url.to_string() };
    let user = userinfo.split(':').next().unwrap_or_default();
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => format!("{scheme}://{host}{path}"),
        _ if user.is_empty() => format!("{scheme}://{host}{path}"),
        _ => format!("{scheme}://{user}@{host}{path}"),
    }
}

/// Write a git bundle of `branch` (its history up to its head, nothing else
/// of the repository) to `file`, made in the user's repository `root`, and
/// say the repository's `origin` URL (without a credential), if it has one.
pub async fn bundle(root: &Path, branch: &str, file: &Path) -> Result<Option<String>, SessionError> {
    let out = file.to_string_lossy();
    git(root, &["bundle", "create", "--quiet", &out, &format!("refs/heads/{branch}")])
        .await
        .map_err(|e| SessionError::Failed(format!("bundling {branch} of {}: {e}", root.display())))?;
    Ok(origin(root).await)
}

/// Bring the session's `branch` from its clone into the user's repository.
/// Refused if the clone no longer reads objects only from the user's store.
/// Nothing to bring back when the clone is gone, or for a session made
/// before clones (a `git worktree`, whose `.git` is a file: its commits are in
/// the user's repository already).
pub async fn sync(root: &Path, worktree: &Path, branch: &str) -> Result<(), SessionError> {
    let git_dir = worktree.join(".git");
    match tokio::fs::symlink_metadata(&git_dir).await {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Ok(meta) if meta.is_file() => return Ok(()),
        _ => {}
    }
    let expected = objects_dir(root).await?;
    let gd = git_dir.clone();
    let alternates = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let dir = Confined::open(&gd)?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut dir.open_file(Path::new("objects/info/alternates"))?, &mut text)?;
        Ok(text)
    })
    .await
    .map_err(|e| SessionError::Failed(format!("checking the session's clone: {e}")))?;
    let alternates = alternates.map_err(|e| {
        SessionError::Failed(format!("the session's clone {} is not as clauderon made it: {e}", git_dir.display()))
    })?;
    let listed: Vec<&str> = alternates.lines().filter(|l| !l.trim().is_empty()).collect();
    if listed != [expected.to_string_lossy().as_ref()] {
        return Err(SessionError::Failed(format!(
            "the session changed where its clone reads objects from ({}); its branch is not brought back",
            listed.join(", ")
        )));
    }
    let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
    let source = git_dir.to_string_lossy();
    // A container session's clone belongs to the container's (unprivileged)
    // user: git refuses a repository of another owner unless told. upload-pack
    // is safe to run there, and this fetch runs nothing else in it; git does
    // not pass `-c` settings on to it, so they go in its command line.
    let upload_pack = format!("git -c safe.directory={} upload-pack", shell_quote(&source));
    git(
        root,
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--no-recurse-submodules",
            "--upload-pack",
            &upload_pack,
            &source,
            &refspec,
        ],
    )
    .await
    .map(|_| ())
    .map_err(|e| SessionError::Failed(format!("bringing back the session's branch {branch}: {e}")))
}

/// Move the session's `branch` in the user's repository `root` forward to
/// what `bundle` (sent from where the session runs, not trusted) holds for
/// it: every object is checked, only that branch is read from the bundle,
/// and only a fast-forward is taken (never a branch checked out in `root`).
/// No git runs anywhere but in `root`, and nothing is checked out. Returns
/// the branch's commit.
pub async fn receive(root: &Path, bundle: &Path, branch: &str) -> Result<String, SessionError> {
    let fail = |what: &str, e: String| SessionError::Failed(format!("{what}: {e}"));
    let incoming = format!("refs/clauderon/incoming/{branch}");
    let current = format!("refs/heads/{branch}");
    let source = bundle.to_string_lossy();
    git(
        root,
        &[
            "-c",
            "transfer.fsckObjects=true",
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--no-recurse-submodules",
            &source,
            &format!("+{current}:{incoming}"),
        ],
    )
    .await
    .map_err(|e| fail(&format!("reading the session's branch {branch} from where it runs"), e))?;
    let taken = async {
        if git(root, &["merge-base", "--is-ancestor", &current, &incoming]).await.is_err() {
            return Err(SessionError::Failed(format!(
                "the session's branch {branch} where it runs does not continue yours (its history was rewritten, \
                 or yours moved); nothing was brought back"
            )));
        }
        // Not forced: git moves the branch only forward, and never one checked out.
        git(root, &["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", ".", &format!("{incoming}:{current}")])
            .await
            .map_err(|e| fail(&format!("moving your branch {branch}"), e))?;
        git(root, &["rev-parse", &current]).await.map_err(|e| fail("reading the session's branch", e))
    }
    .await;
    let _ = git(root, &["update-ref", "-d", &incoming]).await;
    taken
}

/// The commit `branch` is at in `root`, and how many commits it has that
/// `base` does not.
pub async fn head(root: &Path, branch: &str, base: &str) -> Result<(String, u64), SessionError> {
    let commit = git(root, &["rev-parse", "--verify", &format!("refs/heads/{branch}")])
        .await
        .map_err(|e| SessionError::Failed(format!("reading the branch {branch}: {e}")))?;
    let ahead = git(root, &["rev-list", "--count", &format!("{base}..{commit}")]).await.unwrap_or_default();
    Ok((commit, ahead.parse().unwrap_or(0)))
}

/// `text` as one shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Whether `branch` has commits that `base` does not.
pub async fn has_own_commits(root: &Path, branch: &str, base: &str) -> bool {
    let range = format!("{base}..{branch}");
    git(root, &["rev-list", "--count", &range]).await.map(|n| n != "0").unwrap_or(false)
}

/// Remove the session's clone, and its branch unless it has commits of its
/// own. Returns whether the branch was kept.
pub async fn remove(root: &Path, worktree: &Path, branch: &str, base: &str) -> Result<bool, SessionError> {
    if tokio::fs::symlink_metadata(worktree).await.is_ok() {
        tokio::fs::remove_dir_all(worktree)
            .await
            .map_err(|e| SessionError::Failed(format!("removing {}: {e}", worktree.display())))?;
    }
    // Sessions made before clones were worktrees of the repository.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let ok = std::process::Command::new("git").arg("-C").arg(dir).args(args).status().expect("git").success();
        assert!(ok, "git {args:?}");
    }

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        run(dir.path(), &["init", "-q", "-b", "main"]);
        run(dir.path(), &["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "i"]);
        dir
    }

    #[test]
    fn a_remote_url_loses_its_credentials_but_not_its_place() {
        assert_eq!(public_url("https://x-access-token:ghp_secret@github.com/o/r.git"), "https://github.com/o/r.git");
        assert_eq!(public_url("https://ghp_secret@github.com/o/r.git"), "https://github.com/o/r.git");
        assert_eq!(public_url("HTTPS://u:p@git.example:8443/a/b"), "HTTPS://git.example:8443/a/b");
        assert_eq!(public_url("ssh://git:pw@github.com/o/r.git"), "ssh://git@github.com/o/r.git");
        assert_eq!(public_url("ssh://git@github.com/o/r.git"), "ssh://git@github.com/o/r.git");
        assert_eq!(public_url("git@github.com:o/r.git"), "git@github.com:o/r.git");
        assert_eq!(public_url("https://github.com/o/r.git"), "https://github.com/o/r.git");
        assert_eq!(public_url("/srv/git/r.git"), "/srv/git/r.git");
        assert_eq!(public_url("https://u:p@host"), "https://host");
    }

    #[tokio::test]
    async fn a_clone_brings_its_branch_back_and_a_tampered_one_does_not() {
        let user = repo();
        let work = tempfile::tempdir().expect("tempdir");
        let clone = work.path().join("s");
        let head = git(user.path(), &["rev-parse", "HEAD"]).await.expect("head");
        add(user.path(), &clone, "clauderon/s", &head).await.expect("add");
        run(&clone, &["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "w"]);
        sync(user.path(), &clone, "clauderon/s").await.expect("sync");
        assert!(has_own_commits(user.path(), "clauderon/s", &head).await);
        std::fs::write(clone.join(".git/objects/info/alternates"), "/elsewhere/objects\n").expect("tamper");
        let err = sync(user.path(), &clone, "clauderon/s").await.expect_err("refused");
        assert!(err.to_string().contains("changed where its clone reads objects"), "{err}");
    }

    #[tokio::test]
    async fn a_worktree_from_before_clones_or_a_vanished_clone_has_nothing_to_bring_back() {
        let user = repo();
        let work = tempfile::tempdir().expect("tempdir");
        let old = work.path().join("old");
        run(user.path(), &["worktree", "add", "-q", "-b", "clauderon/old", old.to_str().expect("utf-8")]);
        assert!(old.join(".git").is_file());
        sync(user.path(), &old, "clauderon/old").await.expect("an old worktree syncs as a no-op");
        sync(user.path(), &work.path().join("gone"), "clauderon/gone").await.expect("a vanished clone too");
    }

    #[tokio::test]
    async fn add_refuses_what_exists_and_leaves_nothing_when_it_fails() {
        let user = repo();
        let work = tempfile::tempdir().expect("tempdir");
        let head = git(user.path(), &["rev-parse", "HEAD"]).await.expect("head");
        let exists = |b: &str| {
            std::process::Command::new("git")
                .arg("-C")
                .arg(user.path())
                .args(["rev-parse", "--verify", "--quiet", &format!("refs/heads/{b}")])
                .status()
                .expect("git")
                .success()
        };

        // The user's own branch of that name is refused and kept.
        run(user.path(), &["branch", "clauderon/mine"]);
        let err = add(user.path(), &work.path().join("mine"), "clauderon/mine", &head).await.expect_err("refused");
        assert!(matches!(err, SessionError::Conflict(_)) && err.to_string().contains("exists already"), "{err}");
        assert!(exists("clauderon/mine") && !work.path().join("mine").exists());

        // A directory in the way is refused and kept; no branch is made.
        let taken = work.path().join("taken");
        std::fs::create_dir(&taken).expect("dir");
        std::fs::write(taken.join("keep"), "x").expect("file");
        add(user.path(), &taken, "clauderon/taken", &head).await.expect_err("refused");
        assert!(taken.join("keep").exists() && !exists("clauderon/taken"));

        // A clone that fails midway (its parent is a file) removes the branch it made.
        let blocked = work.path().join("file");
        std::fs::write(&blocked, "x").expect("file");
        add(user.path(), &blocked.join("s"), "clauderon/s", &head).await.expect_err("fails");
        assert!(!exists("clauderon/s"), "the branch this add made is removed");
    }
}
