//! The Docker backend with a real engine: the container gets the worktree at
//! /workspace, the proxy environment with container paths, clauderon's CA
//! read-only, a non-root user, no capabilities and no network but its own
//! loopback; it reaches the mock upstream only through its proxy (the relay
//! on its loopback, the proxy's unix socket) with the real key injected;
//! neither its environment nor `docker inspect` holds a real key; and the
//! three agents run in it end to end.

use std::process::Command;

use clauderon_tests::{
    CANARIES, LEFTOVERS, MOCK_ANSWER, World, assert_leftover_request_done, canary, docker_test_backend, eventually,
    interactive_turn, session_processes, unique, walk,
};
use serde_json::Value;

fn docker_inspect(name: &str) -> Value {
    let out = Command::new("docker").args(["inspect", name]).output().expect("docker inspect");
    serde_json::from_slice::<Value>(&out.stdout).ok().and_then(|v| v.get(0).cloned()).unwrap_or(Value::Null)
}

fn create(world: &World, agent: &str, prompt: &str, extra: &[&str]) -> Value {
    let name = unique(&format!("dk-{agent}"));
    let repo = world.repo.path().to_str().expect("utf-8").to_string();
    let mut args = vec!["create", "-r", &repo, "-b", "docker", "-a", agent, "--name", &name, "-p", prompt, "--json"];
    args.extend_from_slice(extra);
    world.home.run(&args).ok().json()
}

#[test]
fn a_docker_session_gets_the_proxy_and_never_a_real_key() {
    // A mount the user declared in config.toml: the only source besides the session's own.
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::write(data.path().join("hello.txt"), "declared\n").expect("data");
    std::fs::set_permissions(data.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let data_dir = data.path().canonicalize().expect("canonical").display().to_string();
    let mut world = World::start_with(&format!("{}mounts = \"{data_dir}:/data:ro\"\n", docker_test_backend()));
    let script = "env > /workspace/env.txt; id -u > /workspace/uid.txt; cat /data/hello.txt > /workspace/data.txt; \
         curl -sS https://api.github.com/user > /workspace/user.json; sleep 600";
    let s = create(&world, "shell", script, &["--memory-limit", "512m", "--cpu-limit", "1"]);
    let worktree = std::path::PathBuf::from(s["worktree"].as_str().expect("worktree"));
    let user = eventually(30, "the container's request", || {
        std::fs::read_to_string(worktree.join("user.json")).ok().filter(|t| t.contains("headers"))
    });
    let seen = world.mock.requests().into_iter().rev().find(|r| r["path"] == "/user").expect("the mock saw /user");
    assert_eq!(seen["headers"]["authorization"].as_str(), Some(format!("Bearer {}", canary("GITHUB_TOKEN")).as_str()));
    assert!(!user.contains(canary("GITHUB_TOKEN")), "the echo reached the container unmasked: {user}");
    let env = std::fs::read_to_string(worktree.join("env.txt")).expect("env");
    let uid = std::fs::read_to_string(worktree.join("uid.txt")).expect("uid");
    assert_ne!(uid.trim(), "0", "containers never run as root");
    assert!(env.contains("SSL_CERT_FILE=/etc/clauderon/ca-bundle.pem"), "{env}");
    assert!(env.contains("HOME=/home/clauderon"), "{env}");
    assert!(env.contains("HTTPS_PROXY=http://session:") && env.contains("@127.0.0.1:"), "{env}");
    assert!(env.contains("GH_TOKEN=clauderon-placeholder-github"), "{env}");
    let resource = s["resource_id"].as_str().expect("container");
    let inspect = docker_inspect(resource);
    assert_eq!(inspect["Config"]["Labels"]["dev.clauderon.session-id"], s["id"]);
    assert_eq!(inspect["HostConfig"]["Memory"], 512 << 20);
    assert_eq!(inspect["HostConfig"]["NanoCpus"], 1_000_000_000_i64);
    let host = &inspect["HostConfig"];
    assert_eq!(host["NetworkMode"], "none", "no network but loopback");
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
    assert_eq!(host["SecurityOpt"], serde_json::json!(["no-new-privileges:true"]));
    assert_eq!(host["PidsLimit"], 4096);
    assert_eq!(host["Privileged"], false);
    assert_ne!(inspect["Config"]["User"], "0:0");
    // Mounts are structured bind mounts (never `src:dst` strings); shown here as `src:dst[:ro]`.
    assert!(host["Binds"].is_null(), "no string binds: {}", host["Binds"]);
    let mounts = host["Mounts"].as_array().expect("mounts");
    assert!(mounts.iter().all(|m| m["Type"] == "bind"), "{mounts:?}");
    let binds: Vec<String> = mounts
        .iter()
        .map(|m| {
            let ro = if m["ReadOnly"] == true { ":ro" } else { "" };
            format!("{}:{}{ro}", m["Source"].as_str().unwrap_or_default(), m["Target"].as_str().unwrap_or_default())
        })
        .collect();
    assert!(binds.iter().any(|b| b.ends_with(":/etc/clauderon/ca-bundle.pem:ro")), "{binds:?}");
    assert!(binds.iter().any(|b| b.ends_with(":/run/clauderon:ro")), "the proxy's socket: {binds:?}");
    assert!(binds.contains(&format!("{data_dir}:/data:ro")), "the declared mount: {binds:?}");
    assert_eq!(std::fs::read_to_string(worktree.join("data.txt")).expect("data.txt"), "declared\n");
    assert!(binds.iter().all(|b| !b.contains("proxy-ca-key") && !b.contains("/secrets")), "{binds:?}");
    // Of the user's repository only its objects, read-only (the clone reads them).
    let repo = world.repo.path().display().to_string();
    let from_repo: Vec<&String> = binds.iter().filter(|b| b.starts_with(&repo)).collect();
    assert_eq!(from_repo.len(), 1, "{binds:?}");
    assert!(from_repo[0].ends_with("/.git/objects:ro"), "{binds:?}");
    let text = format!("{env}{inspect}");
    for (var, c) in CANARIES {
        assert!(!text.contains(c), "the {var} canary is in the container");
    }
    // The container outlives the daemon: after a restart the session is still running.
    world.restart_daemon();
    let (_, after) = world.daemon.http("GET", &format!("/api/sessions/{}", s["id"].as_str().expect("id")), None);
    assert_eq!(after["status"], "running", "{after}");
    assert_eq!(docker_inspect(resource)["State"]["Running"], true);
    // …and still reaches the restarted daemon's proxy (its socket is made anew; the relay finds it).
    let again = Command::new("docker")
        .args(["exec", resource, "sh", "-c", "curl -sS -o /dev/null -w '%{http_code}' https://api.github.com/user"])
        .output()
        .expect("docker exec");
    assert_eq!(String::from_utf8_lossy(&again.stdout), "200", "{}", String::from_utf8_lossy(&again.stderr));
    // Delete removes the container.
    world.home.run(&["delete", s["name"].as_str().expect("name")]).ok();
    assert!(docker_inspect(resource).is_null(), "the container is gone");
}

/// Run `agent` in print mode in a container; check the answer, the key, the
/// history, the idle status and `docker inspect`.
fn agent_in_a_container(agent: &str, path_end: &str, header: &str, expected: &str) {
    let world = World::start_with(&docker_test_backend());
    let s = create(&world, agent, "Say hello", &["--print"]);
    let id = s["id"].as_str().expect("id").to_string();
    let done = eventually(90, &format!("{agent} in docker to finish"), || {
        let (_, s) = world.daemon.http("GET", &format!("/api/sessions/{id}"), None);
        (s["agent_status"] == "idle").then_some(s)
    });
    let text = eventually(20, "the history to hold the exchange", || {
        let (_, history) = world.daemon.http("GET", &format!("/api/sessions/{id}/history"), None);
        let text = history.to_string();
        (text.contains(MOCK_ANSWER) && text.contains("Say hello")).then_some(text)
    });
    assert!(text.contains("\"role\":\"assistant\""), "{text}");
    let call = world
        .mock
        .requests()
        .into_iter()
        .rev()
        .find(|r| r["path"].as_str().is_some_and(|p| p.ends_with(path_end)))
        .expect("a model call");
    assert_eq!(call["headers"][header].as_str(), Some(expected), "{call}");
    let inspect = docker_inspect(done["resource_id"].as_str().expect("container")).to_string();
    for (var, c) in CANARIES {
        assert!(!inspect.contains(c), "the {var} canary is in docker inspect");
    }
}

#[test]
fn claude_code_runs_in_a_container_with_history_and_idle_status() {
    agent_in_a_container("claude-code", "/v1/messages", "x-api-key", canary("ANTHROPIC_API_KEY"));
}

#[test]
fn codex_runs_in_a_container_with_history_and_idle_status() {
    let bearer = format!("Bearer {}", canary("OPENAI_API_KEY"));
    agent_in_a_container("codex", "/v1/responses", "authorization", &bearer);
}

#[test]
fn gemini_runs_in_a_container_with_history_and_idle_status() {
    agent_in_a_container("gemini", ":generateContent", "x-goog-api-key", canary("GEMINI_API_KEY"));
}

/// No canary in a running container: not in `docker inspect`, not in any
/// process's environment or command line seen from inside the container or
/// from the host, not in any file of the session (worktree, config home).
fn assert_no_canary_in_container(world: &World, session: &Value) {
    let container = session["resource_id"].as_str().expect("container");
    let inside = Command::new("docker")
        .args(["exec", container, "sh", "-c", "cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null"])
        .output()
        .expect("docker exec");
    let mut places = vec![
        ("docker inspect".to_string(), docker_inspect(container).to_string()),
        ("processes (inside)".into(), String::from_utf8_lossy(&inside.stdout).into_owned()),
        ("processes (host)".into(), session_processes(session["id"].as_str().expect("id"))),
    ];
    assert!(places[1].1.contains("CLAUDERON_SESSION_ID"), "read the container's processes: {}", places[1].1);
    for dir in [world.home.path("sessions"), world.home.path("worktrees")] {
        for file in walk(&dir) {
            places.push((
                file.display().to_string(),
                String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned(),
            ));
        }
    }
    for (place, text) in &places {
        for (var, c) in CANARIES {
            assert!(!text.contains(c), "the {var} canary is in {place}");
        }
    }
}

#[test]
fn every_agent_runs_interactively_in_a_container_and_waits_for_input() {
    let world = World::start_with(&docker_test_backend());
    for agent in ["claude-code", "codex", "gemini"] {
        let session = interactive_turn(&world, agent, &["-b", "docker"]);
        assert_no_canary_in_container(&world, &session);
        if agent == "codex" {
            // The container is the sandbox: Codex's own (bubblewrap) cannot start in one.
            let cmd = docker_inspect(session["resource_id"].as_str().expect("container"))["Config"]["Cmd"].to_string();
            assert!(cmd.contains(r#""--sandbox","danger-full-access""#), "{cmd}");
        }
    }
}

/// Health and recreate: a container removed behind clauderon's back is found
/// by reconcile, `start` recreates it and the agent resumes its own
/// conversation; `attach` starts a stopped container and shows it.
#[test]
fn a_removed_container_is_recreated_resuming_the_conversation_and_attach_starts_a_stopped_one() {
    let world = World::start_with(&docker_test_backend());
    let s = interactive_turn(&world, "claude-code", &["-b", "docker"]);
    let (id, name) = (s["id"].as_str().expect("id"), s["name"].as_str().expect("name"));
    let first = s["resource_id"].as_str().expect("container").to_string();
    let first_id = docker_inspect(&first)["Id"].clone();
    assert!(Command::new("docker").args(["rm", "-f", &first]).status().expect("docker rm").success());

    let reconciled = world.home.run(&["reconcile"]).ok().stdout;
    assert!(reconciled.contains(name) && reconciled.contains("gone"), "{reconciled}");
    let (_, failed) = world.daemon.http("GET", &format!("/api/sessions/{id}"), None);
    assert_eq!(failed["status"], "failed", "{failed}");

    world.home.run(&["start", name]).ok();
    let inspect = docker_inspect(&first);
    assert_ne!(inspect["Id"], first_id, "a new container");
    assert_eq!(inspect["State"]["Running"], true);
    let cmd = inspect["Config"]["Cmd"].to_string();
    assert!(cmd.contains("--resume") && cmd.contains(id), "Claude Code resumes its own conversation: {cmd}");

    assert!(Command::new("docker").args(["stop", "-t", "1", &first]).status().expect("docker stop").success());
    let (found, screen) = clauderon_tests::attach_in_terminal(&world.home, name, |screen| screen.contains(MOCK_ANSWER));
    assert!(found, "attach starts the container and shows the resumed conversation:\n{screen}");
    assert_eq!(docker_inspect(&first)["State"]["Running"], true);
}

#[test]
fn a_missing_image_is_pulled_with_progress_on_the_cli_and_a_clear_error() {
    let config = docker_test_backend().replace("pull = \"never\"", "pull = \"missing\"");
    let world = World::start_with(&config);
    // A registry on a closed loopback port: the pull starts, reports, and fails fast.
    let image = "127.0.0.1:1/clauderon/missing:1";
    let name = unique("dk-pull");
    let repo = world.repo.path().to_str().expect("utf-8").to_string();
    let run = world
        .home
        .run(&["create", "-r", &repo, "-b", "docker", "-a", "shell", "--name", &name, "-p", "true", "--image", image]);
    assert_ne!(run.code, 0, "the create fails");
    assert!(run.stderr.contains(&format!("pulling {image}")), "progress on the CLI:\n{}", run.stderr);
    assert!(run.stderr.contains("pulling") && run.stderr.contains("failed"), "{}", run.stderr);
    let (_, list) = world.daemon.http("GET", "/api/sessions", None);
    assert_eq!(list.as_array().map(Vec::len), Some(0), "nothing is left behind: {list}");
}

/// A create whose container name is taken by the user's own container (one
/// clauderon did not make) is refused in the engine's terms turned into
/// clauderon's — the name and what to do — and the user's container is left
/// as it was; no session is left behind.
#[test]
fn a_create_named_like_a_users_container_is_refused_and_leaves_it_alone() {
    let world = World::start_with(&docker_test_backend());
    let name = unique("dk-taken");
    let container = format!("clauderon-{name}");
    let made = Command::new("docker")
        .args(["create", "--name", &container, clauderon_tests::DOCKER_SESSION_IMAGE, "true"])
        .output()
        .expect("docker create");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let id_before = docker_inspect(&container)["Id"].clone();
    let repo = world.repo.path().to_str().expect("utf-8").to_string();
    let run = world.home.run(&["create", "-r", &repo, "-b", "docker", "-a", "shell", "--name", &name, "-p", "true"]);
    println!("create said: {}", run.stderr);
    let id_after = docker_inspect(&container)["Id"].clone();
    let _ = Command::new("docker").args(["rm", "-f", &container]).output();
    assert_eq!(id_after, id_before, "the user's container was removed or replaced");
    assert_ne!(run.code, 0, "the create succeeded");
    assert!(
        run.stderr.contains(&format!("`{container}`"))
            && (run.stderr.contains("already exists") || run.stderr.contains("already has")),
        "{}",
        run.stderr
    );
    let (_, list) = world.daemon.http("GET", "/api/sessions", None);
    assert_eq!(list.as_array().map(Vec::len), Some(0), "nothing is left behind: {list}");
}

/// A container has no network but its own loopback: no interface but `lo`, no
/// route, nothing of the host reachable (the daemon's API included); its
/// proxy URL names its own 127.0.0.1, where `clauderon-relay` (its PID 1)
/// passes connections to the proxy's unix socket; and servers it starts
/// itself answer it.
#[test]
fn a_container_has_no_network_but_its_proxy() {
    let world = World::start_with(&docker_test_backend());
    let script = format!(
        "cat /proc/net/dev > /workspace/dev.txt; cat /proc/net/route > /workspace/route.txt; \
         (curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:{api}/api/health; echo \" rc=$?\") > /workspace/api.txt 2>&1; \
         cat /proc/1/cmdline | tr '\\0' ' ' > /workspace/init.txt; \
         (node -e \"require('http').createServer((q,r)=>r.end('own')).listen(18081,'127.0.0.1')\" &); sleep 1; \
         curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:18081/ > /workspace/own.txt 2>&1; sleep 600",
        api = world.daemon.port
    );
    let s = create(&world, "shell", &script, &[]);
    let worktree = std::path::PathBuf::from(s["worktree"].as_str().expect("worktree"));
    let own = eventually(30, "its own server's answer", || {
        std::fs::read_to_string(worktree.join("own.txt")).ok().filter(|t| !t.is_empty())
    });
    assert_eq!(own.trim(), "own", "servers it starts itself answer it");
    let dev = std::fs::read_to_string(worktree.join("dev.txt")).expect("dev");
    let interfaces: Vec<&str> = dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert_eq!(interfaces, ["lo"], "{dev}");
    let routes = std::fs::read_to_string(worktree.join("route.txt")).expect("route");
    assert_eq!(routes.lines().count(), 1, "no route: {routes}");
    let api = std::fs::read_to_string(worktree.join("api.txt")).expect("api");
    assert!(!api.contains("\"ok\"") && !api.contains("rc=0"), "the daemon's API answered from inside: {api}");
    let init = std::fs::read_to_string(worktree.join("init.txt")).expect("init");
    assert!(init.contains("/run/clauderon-relay --port"), "the relay is PID 1: {init}");
    world.home.run(&["delete", s["name"].as_str().expect("name")]).ok();
}

/// A container's init (`clauderon-relay`) waits for what the agent left
/// running, as the host sandbox's does: a leftover's request after the agent
/// exited goes through the proxy, and the container stops once the linger is
/// up although another leftover would have run for ten minutes.
#[test]
fn what_a_container_agent_leaves_running_finishes_its_request_and_the_container_stops() {
    let world = World::start_with(&docker_test_backend());
    let s = create(&world, "shell", LEFTOVERS, &[]);
    assert_leftover_request_done(&world, &s);
    let resource = s["resource_id"].as_str().expect("container");
    let linger = clauderon_sandbox::LINGER.as_secs();
    eventually(linger + 15, "the container stopped", || {
        (docker_inspect(resource)["State"]["Running"] == false).then_some(())
    });
}
