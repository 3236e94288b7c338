//! Attacks from inside a host (zellij) session — the default backend — run
//! by the session's agent (`scripts/host_escape.sh`): read clauderon's keys,
//! token, secrets and store, the user's credential stores (canaries in a
//! fake `$HOME`), another session's worktree, the daemon's environment and
//! memory; signal the daemon; reach the API or another session's proxy
//! without going through its own; run a command through zellij in another
//! session; write outside its worktree; undo the sandbox. Everything must
//! fail, while its own files, its own local server and its proxy keep
//! working, and the daemon keeps serving.
//!
//! Homes, repositories and the fake `$HOME` live outside /tmp (which the
//! sandbox replaces), so what hides them is the sandbox's rule, not luck.

use std::path::{Path, PathBuf};

use clauderon_tests::{CANARIES, World, eventually, unique};

/// Canary credential stores in a fake home, one file each.
const HOME_CANARIES: &[(&str, &str)] = &[
    (".ssh/id_ed25519", "canary-ssh-7f3a9c"),
    (".aws/credentials", "canary-aws-2b8e41"),
    (".config/gh/hosts.yml", "canary-gh-cli-5d0c77"),
    (".claude.json", "canary-claude-login-91aa3e"),
    (".netrc", "canary-netrc-0c4f12"),
    (".git-credentials", "canary-git-cred-6e2d58"),
    (".docker/config.json", "canary-docker-cfg-3a7b90"),
];
/// A credential the `file` source would serve, in clauderon's secrets directory.
const FILE_CANARY: &str = "ghp_canaryFILE0123456789abcdef";

fn base() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("attacks")
}

fn fake_home(base: &Path) -> tempfile::TempDir {
    std::fs::create_dir_all(base).expect("base");
    let home = tempfile::tempdir_in(base).expect("fake home");
    for (rel, canary) in HOME_CANARIES {
        let path = home.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, format!("{canary}\n")).expect("canary file");
    }
    home
}

#[test]
fn a_host_session_cannot_get_out_of_its_sandbox() {
    let base = base();
    let user_home = fake_home(&base);
    let home_var = user_home.path().to_str().expect("utf-8").to_string();
    let world = World::start_full(Some(&base), "", "", &[("HOME", &home_var)]);
    let ch = world.home.dir.path().to_path_buf();
    std::fs::create_dir_all(ch.join("secrets")).expect("secrets dir");
    std::fs::write(ch.join("secrets/github"), FILE_CANARY).expect("file canary");

    // Another session, whose worktree, listener and zellij session the attacker goes for.
    let other = world.session("victim", "read-write", "true");
    let other_name = other.iter().find(|(k, _)| k == "CLAUDERON_SESSION_NAME").map(|(_, v)| v.clone()).expect("name");
    let other_port = other
        .iter()
        .find(|(k, _)| k == "HTTPS_PROXY")
        .and_then(|(_, v)| v.rsplit(':').next().map(String::from))
        .expect("port");
    let marker = std::env::temp_dir().join(unique("host-tmp-marker"));
    std::fs::write(&marker, "host /tmp").expect("marker");

    let canaries: Vec<&str> =
        CANARIES.iter().map(|(_, c)| *c).chain(HOME_CANARIES.iter().map(|(_, c)| *c)).chain([FILE_CANARY]).collect();
    let daemon_pid = std::fs::read_to_string(ch.join("daemon.pid")).expect("daemon pid");
    let vars = [
        ("CH", ch.display().to_string()),
        ("USER_HOME", home_var.clone()),
        ("DAEMON_PID", daemon_pid.trim().to_string()),
        ("API_PORT", world.daemon.port.to_string()),
        ("OTHER_WORKTREE", ch.join("worktrees").join(&other_name).display().to_string()),
        ("OTHER_PORT", other_port),
        ("OTHER_ZELLIJ", format!("clauderon-{other_name}")),
        ("HOST_TMP_MARKER", marker.display().to_string()),
        ("REPO", world.repo.path().display().to_string()),
    ];
    let attack = world.attack("escape", include_str!("scripts/host_escape.sh"), &vars, &["--access-mode", "read-only"]);
    let got = |name: &str| attack.get(name).starts_with("got");

    let must_fail = [
        "read-secrets/github",
        "read-proxy-ca-key.pem",
        "read-proxy-identity.key",
        "read-api-token",
        "read-clauderon.redb",
        "read-config.toml",
        "read-daemon.log",
        "list-home",
        "other-worktree",
        "other-sessions",
        "read-~/.ssh/id_ed25519",
        "read-~/.aws/credentials",
        "read-~/.config/gh/hosts.yml",
        "read-~/.claude.json",
        "read-~/.netrc",
        "read-~/.git-credentials",
        "read-~/.docker/config.json",
        "daemon-environ",
        "daemon-mem",
        "daemon-signal",
        "init-signal",
        "see-processes",
        "api-direct",
        "other-listener",
        "routes",
        "interfaces",
        "zellij-list",
        "zellij-run",
        "docker-socket",
        "write-user-home",
        "write-repo",
        "write-etc",
        "host-tmp",
        "unmount",
        "new-userns",
        "mount-proc",
    ];
    let escaped: Vec<String> = must_fail.iter().filter(|n| got(n)).map(|n| format!("{n}: {}", attack.get(n))).collect();
    assert!(escaped.is_empty(), "the session got out:\n{}\n\nwhole output:\n{}", escaped.join("\n"), attack.output);
    for name in ["write-worktree", "write-config-home", "write-tmp", "own-server"] {
        assert!(got(name), "{name} must keep working inside the sandbox: {}\n{}", attack.get(name), attack.output);
    }
    assert_eq!(attack.get("via-proxy"), "got 200", "its own proxy is its way out:\n{}", attack.output);

    // Everything it could read — every process's environment and command line,
    // its homes, /tmp, the user's home and clauderon's as it sees them — holds no credential.
    let worktree = PathBuf::from(attack.session["worktree"].as_str().expect("worktree"));
    let loot = std::fs::read(worktree.join("loot.txt")).expect("loot");
    let loot = String::from_utf8_lossy(&loot);
    assert!(loot.contains("CLAUDERON_SESSION_ID="), "the search read the session's own environment");
    let found: Vec<&&str> = canaries.iter().filter(|c| loot.contains(**c)).collect();
    assert!(found.is_empty(), "the session could read credentials: {found:?}");

    // Nothing was written where the attempts aimed, and nothing ran through zellij.
    let _ = attack.get("loot");
    for path in [user_home.path().join("pwned"), world.repo.path().join("pwned"), PathBuf::from("/etc/pwned")] {
        assert!(!path.exists(), "{} was written", path.display());
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        !marker.with_extension("zellij").exists() && !PathBuf::from(format!("{}.zellij", marker.display())).exists()
    );
    let _ = std::fs::remove_file(&marker);
    assert_eq!(attack.session["isolation"], "sandbox", "{}", attack.session);

    // The daemon kept serving, and both sessions are intact.
    let list = world.home.run(&["list", "--json"]).ok().json();
    let running = list.as_array().map(|l| l.iter().filter(|s| s["status"] == "running").count());
    assert_eq!(running, Some(2), "{list}");
    eventually(5, "the other session's worktree untouched", || {
        ch.join("worktrees").join(&other_name).join("sub/README").exists().then_some(())
    });
}
