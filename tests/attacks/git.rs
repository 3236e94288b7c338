//! Attacks on the user's repository from inside a session, run by the
//! session's agent (`scripts/git_plant.sh`): write the user's `.git` (hooks,
//! config, commondir, refs, objects), and plant in the session's own clone
//! everything that would run code if the daemon ran git there (hooks,
//! `core.hooksPath`, `core.fsmonitor`, `uploadpack.packObjectsHook`), then
//! move other refs. Then the user does what users do — stop and start the
//! session, create another on the same repository, delete — and nothing may
//! have run on the host, no branch but the session's own may have moved, and
//! the session's commits must still arrive on its branch. A clone that
//! points its object store elsewhere is not brought back, with a clear note.

use std::path::PathBuf;
use std::process::Command;

use clauderon_tests::{World, eventually, unique};

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().expect("git");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_session_can_neither_write_the_users_git_nor_plant_code_the_daemon_runs() {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("attacks");
    let world = World::start_full(Some(&base), "", "", &[]);
    let repo = world.repo.path().to_path_buf();
    let marker = base.join(unique("git-marker"));
    let other = clauderon_tests::git_repo_in(&base);
    let main_before = git(&repo, &["rev-parse", "main"]);
    let config_before = std::fs::read_to_string(repo.join(".git/config")).expect("config");
    let vars = [
        ("REPO", repo.display().to_string()),
        ("MARKER", marker.display().to_string()),
        ("OTHER_OBJECTS", other.path().join(".git/objects").display().to_string()),
    ];
    let attack = world.attack("git", include_str!("scripts/git_plant.sh"), &vars, &[]);
    for name in ["user-hook", "user-config", "user-commondir", "user-ref", "user-objects", "marker-direct"] {
        assert!(attack.get(name).starts_with("denied"), "{name}: {}\n{}", attack.get(name), attack.output);
    }
    for name in ["own-hookspath", "own-fsmonitor", "own-packhook", "commit"] {
        assert!(attack.get(name).starts_with("got"), "its own clone is its own: {name}\n{}", attack.output);
    }
    let name = attack.session["name"].as_str().expect("name").to_string();
    let branch = attack.session["branch"].as_str().expect("branch").to_string();

    // The user: stop (brings the branch back), create another session on the same repository, start again.
    world.home.run(&["stop", &name]).ok();
    assert_eq!(git(&repo, &["rev-list", "--count", &format!("main..{branch}")]), "1", "the commit arrived");
    let second = world.attack("git-second", "git status --short > /dev/null; echo RESULT ok got", &[], &[]);
    assert_eq!(second.get("ok"), "got");
    let worktree = PathBuf::from(attack.session["worktree"].as_str().expect("worktree"));
    let _ = std::fs::remove_file(worktree.join("attack.out"));
    world.home.run(&["start", &name]).ok();
    // Second run: the clone now reads objects from another repository.
    let out = eventually(90, "the second run", || {
        std::fs::read_to_string(worktree.join("attack.out")).ok().filter(|t| t.contains("ATTACK-DONE"))
    });
    assert!(out.contains("RESULT own-alternates got"), "{out}");
    let stopped = world.home.run(&["stop", &name]);
    assert_eq!(stopped.code, 0, "stopping still works: {}", stopped.stderr);
    assert_eq!(
        git(&repo, &["rev-list", "--count", &format!("main..{branch}")]),
        "1",
        "a clone with a foreign object store is not brought back"
    );

    // Nothing ran on the host; nothing of the user's moved.
    let planted: Vec<String> = std::fs::read_dir(&base)
        .expect("base")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&marker.file_name().expect("name").to_string_lossy().into_owned()))
        .collect();
    assert!(planted.is_empty(), "code planted by the session ran outside it: {planted:?}");
    assert_eq!(git(&repo, &["rev-parse", "main"]), main_before, "the user's main did not move");
    assert_eq!(std::fs::read_to_string(repo.join(".git/config")).expect("config"), config_before);
    assert!(!repo.join(".git/hooks/post-checkout").exists() && !repo.join(".git/commondir").exists());
    assert!(!repo.join(".git/objects/planted").exists());

    // Delete refuses to drop the work it could not bring back, unless forced.
    let refused = world.home.run(&["delete", &name]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(refused.stderr.contains("object") && refused.stderr.contains("--force"), "{}", refused.stderr);
    world.home.run(&["delete", "--force", &name]).ok();
    assert!(!worktree.exists());
}
