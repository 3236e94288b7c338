//! Attacks from inside a Docker session's container, run by its agent
//! (`scripts/container_escape.sh`): become root, mount, make a user
//! namespace, write the user's object store, reach the Docker socket, the
//! daemon's API (directly and through the proxy) or any network, find
//! clauderon's files among its mounts, plant a setuid binary for the host.
//! The container runs as a non-root uid with no capabilities, no new
//! privileges and no network but loopback, so every attempt fails and the
//! planted binary is not root's.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use clauderon_tests::{World, docker_test_backend};

#[test]
fn a_container_session_cannot_get_root_or_out() {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("attacks");
    let world = World::start_full(Some(&base), "", &docker_test_backend(), &[]);
    let objects = world.repo.path().join(".git/objects");
    let vars = [("API_PORT", world.daemon.port.to_string()), ("OBJECTS", objects.display().to_string())];
    let attack =
        world.attack("container", include_str!("scripts/container_escape.sh"), &vars, &["--backend", "docker"]);
    assert_ne!(attack.get("uid"), "0", "{}", attack.output);
    assert_eq!(attack.get("caps"), "0000000000000000", "no capabilities: {}", attack.output);
    assert_eq!(attack.get("nnp"), "1", "no new privileges: {}", attack.output);
    for name in [
        "root-shell",
        "mount",
        "new-userns",
        "write-objects",
        "docker-socket",
        "api-direct",
        "api-via-proxy",
        "clauderon-home",
        "interfaces",
    ] {
        assert!(attack.get(name).starts_with("denied"), "{name}: {}\n{}", attack.get(name), attack.output);
    }
    assert!(!objects.join("planted").exists());
    let worktree = PathBuf::from(attack.session["worktree"].as_str().expect("worktree"));
    let planted = std::fs::metadata(worktree.join("suid-sh")).expect("the planted binary");
    assert_ne!(planted.uid(), 0, "a setuid binary planted from a container is never root's on the host");
    // The daemon keeps serving.
    world.home.run(&["list"]).ok();
}
