//! Sessions end to end: the real daemon, the real zellij, the real git, the
//! bundled shell agent, a temporary CLAUDERON_HOME per test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clauderon_tests::{
    Daemon, Home, LEFTOVERS, World, assert_leftover_request_done, eventually, git_repo, session_processes, unique,
};
use serde_json::Value;

fn zellij_sessions() -> String {
    let out = Command::new("zellij").args(["list-sessions", "--no-formatting"]).output().expect("zellij on PATH");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn branch_exists(repo: &Path, branch: &str) -> bool {
    let out = Command::new("git").arg("-C").arg(repo).args(["branch", "--list", branch]).output().expect("git");
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

fn status_of(home: &Home, name: &str, archived: bool) -> Option<String> {
    let args: &[&str] = if archived { &["list", "--json", "--archived"] } else { &["list", "--json"] };
    let list = home.run(args).ok().json();
    list.as_array()?.iter().find(|s| s["name"] == name).and_then(|s| s["status"].as_str().map(String::from))
}

/// `clauderon create` of a zellij session running the shell agent; the session as JSON.
fn create_shell(home: &Home, repo: &Path, name: &str, prompt: &str) -> Value {
    home.run(&[
        "create",
        "-r",
        repo.to_str().expect("utf-8 path"),
        "-p",
        prompt,
        "-b",
        "zellij",
        "-a",
        "shell",
        "--name",
        name,
        "--json",
    ])
    .ok()
    .json()
}

/// The `x-clauderon-event-seq` header of `GET /api/sessions`: the last event the list reflects.
fn list_event_seq(daemon: &Daemon) -> u64 {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--noproxy", "*", "-o", "/dev/null", "-w", "%header{x-clauderon-event-seq}"])
        .args(["-H", &format!("authorization: Bearer {}", daemon.token)])
        .arg(format!("http://127.0.0.1:{}/api/sessions", daemon.port))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().unwrap_or_else(|_| panic!("no event number on the list: {text:?}"))
}

struct Ws(tungstenite::WebSocket<std::net::TcpStream>);

impl Ws {
    fn connect(daemon: &Daemon) -> Self {
        Self::connect_to(daemon, "/api/events")
    }

    fn connect_to(daemon: &Daemon, path: &str) -> Self {
        use tungstenite::client::IntoClientRequest;
        let stream = std::net::TcpStream::connect(("127.0.0.1", daemon.port)).expect("tcp");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut request = format!("ws://127.0.0.1:{}{path}", daemon.port).into_client_request().expect("request");
        request.headers_mut().insert("authorization", format!("Bearer {}", daemon.token).parse().expect("header"));
        let (ws, _) = tungstenite::client(request, stream).expect("ws handshake");
        Self(ws)
    }

    /// Read events until one of type `kind` arrives; returns every event read.
    fn until(&mut self, kind: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let msg = self.0.read().unwrap_or_else(|e| panic!("waiting for {kind}: {e}; saw {seen:?}"));
            if let tungstenite::Message::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str()).expect("event JSON");
                let done = v["type"] == kind;
                seen.push(v);
                if done {
                    return seen;
                }
            }
        }
    }
}

#[test]
fn a_zellij_session_runs_its_command_in_the_worktree_and_lives_through_every_transition() {
    let (home, port) = Home::with_free_port();
    let daemon = home.daemon(port);
    let mut ws = Ws::connect(&daemon);
    let repo = git_repo();
    let name = unique("life");
    let sub = repo.path().join("sub");
    let s = home
        .run(&[
            "create",
            "--repo",
            sub.to_str().expect("path"),
            "--prompt",
            "pwd > ran-here.txt; exec sleep 600",
            "--backend",
            "zellij",
            "--agent",
            "shell",
            "--name",
            &name,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(s["status"], "running");
    let worktree = PathBuf::from(s["worktree"].as_str().expect("worktree"));
    let marker = worktree.join("sub/ran-here.txt");
    let ran_in = eventually(20, "the shell agent's command to run", || std::fs::read_to_string(&marker).ok());
    assert_eq!(
        Path::new(ran_in.trim()),
        worktree.join("sub").canonicalize().expect("canon"),
        "ran in the worktree's subdirectory"
    );
    // zellij lists the session (retried briefly: once, on a fresh CI machine, it was
    // missing from one listing; the message shows what zellij said).
    let listed = (0..20).any(|_| {
        let found = zellij_sessions().contains(&format!("clauderon-{name}"));
        if !found {
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        found
    });
    assert!(listed, "zellij does not list clauderon-{name}:\n{}", zellij_sessions());
    let events = ws.until("status-changed");
    assert_eq!(events[0]["type"], "created");
    assert_eq!(events[1]["to"], "running");

    home.run(&["stop", &name]).ok();
    assert_eq!(status_of(&home, &name, false).as_deref(), Some("stopped"));
    let stopped = ws.until("status-changed").pop().expect("event");
    assert_eq!(stopped["to"], "stopped");

    // The list names the last event it reflects; the events after it follow
    // on with nothing repeated (what the dashboard relies on).
    let listed_at = list_event_seq(&daemon);
    assert!(listed_at >= stopped["seq"].as_u64().expect("seq"), "the list is at {listed_at}, after {stopped}");
    let mut after = Ws::connect_to(&daemon, &format!("/api/events?after={listed_at}"));

    std::fs::remove_file(&marker).expect("remove marker");
    home.run(&["start", &name]).ok();
    assert_eq!(status_of(&home, &name, false).as_deref(), Some("running"));
    let next = after.until("status-changed");
    assert!(next.iter().all(|e| e["seq"].as_u64() > Some(listed_at)), "replayed from before the list: {next:?}");
    eventually(20, "the command to run again after start", || std::fs::read_to_string(&marker).ok());

    home.run(&["archive", &name]).ok();
    assert_eq!(status_of(&home, &name, false), None, "archived sessions are hidden from list");
    assert_eq!(status_of(&home, &name, true).as_deref(), Some("archived"));
    home.run(&["unarchive", &name]).ok();
    assert_eq!(status_of(&home, &name, false).as_deref(), Some("stopped"));

    home.run(&["set-access-mode", &name, "--mode", "read-only"]).ok();
    let list = home.run(&["list", "--json"]).ok().json();
    assert_eq!(list[0]["access_mode"], "read-only");

    let out = home.run(&["delete", &name]).ok();
    assert!(out.stdout.contains("Deleted"), "{}", out.stdout);
    assert!(!worktree.exists(), "the worktree is removed");
    assert!(!branch_exists(repo.path(), &format!("clauderon/{name}")), "the branch is removed");
    assert!(!zellij_sessions().contains(&format!("clauderon-{name}")), "the zellij session is removed");
    let rest = ws.until("deleted");
    let kinds: Vec<&str> = rest.iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(kinds.contains(&"access-mode-changed"), "{kinds:?}");
}

/// A create that fails removes what it made and nothing else: not a running
/// session whose name ends or starts with the new one's, not the user's own
/// zellij session or branch that is in its way.
#[test]
fn a_failed_create_removes_only_what_it_made() {
    let (home, port) = Home::with_free_port();
    let _daemon = home.daemon(port);
    let repo = git_repo();
    let base = unique("undo");
    let (suffixed, prefixed) = (format!("fix-{base}"), format!("{base}-x"));
    for name in [&suffixed, &prefixed] {
        assert_eq!(create_shell(&home, repo.path(), name, "exec sleep 600")["status"], "running");
    }
    let all_alive = |why: &str| {
        let zellij = zellij_sessions();
        for name in [&suffixed, &prefixed] {
            assert_eq!(status_of(&home, name, false).as_deref(), Some("running"), "{why}: {name}");
            assert!(zellij.contains(&format!("clauderon-{name}")), "{why}: clauderon-{name} is gone:\n{zellij}");
            assert!(branch_exists(repo.path(), &format!("clauderon/{name}")), "{why}: its branch is gone");
        }
    };
    let create = |name: &str| {
        home.run(&[
            "create",
            "-r",
            repo.path().to_str().expect("utf-8"),
            "-p",
            "exec sleep 600",
            "-b",
            "zellij",
            "-a",
            "shell",
            "--name",
            name,
        ])
    };

    // The user's own zellij session has the name clauderon would give the resource.
    struct UsersZellij(String);
    impl Drop for UsersZellij {
        fn drop(&mut self) {
            let _ = Command::new("zellij").args(["delete-session", "--force", &self.0]).output();
        }
    }
    let users = UsersZellij(format!("clauderon-{base}"));
    let made = Command::new("zellij").args(["attach", "--create-background", &users.0]).status().expect("zellij");
    assert!(made.success());
    let refused = create(&base);
    assert_ne!(refused.code, 0);
    assert!(zellij_sessions().contains(&users.0), "the user's zellij session is kept");
    all_alive("after a create refused by the backend");
    assert!(!branch_exists(repo.path(), &format!("clauderon/{base}")), "the branch this create made is removed");
    // The host's check names it; should zellij's listing miss the session
    // (it does under load), the backend's own check does, and nothing of
    // the user's is deleted either way.
    assert!(
        refused.stderr.contains("already has a resource") || refused.stderr.contains("is not this session's"),
        "{}",
        refused.stderr
    );
    drop(users);

    // The user's own branch has the name of the new session's branch.
    let branch = format!("clauderon/{base}");
    let ok = Command::new("git").arg("-C").arg(repo.path()).args(["branch", &branch]).status().expect("git");
    assert!(ok.success());
    let refused = create(&base);
    assert_ne!(refused.code, 0);
    all_alive("after a create refused by git");
    assert!(branch_exists(repo.path(), &branch), "the user's branch is kept");
    assert!(refused.stderr.contains("exists already"), "{}", refused.stderr);

    let list = home.run(&["list", "--json"]).ok().json();
    assert_eq!(list.as_array().map(Vec::len), Some(2), "no record left by the failed creates: {list}");
    for name in [&suffixed, &prefixed] {
        home.run(&["delete", name]).ok();
    }
}

/// What a backend says it cannot do is refused before anything is made:
/// an image or limits on zellij; attach and start on a backend (the `slow`
/// fixture) that says it has neither.
#[test]
fn what_a_backend_cannot_do_is_refused_up_front() {
    let (home, port) = Home::with_free_port();
    home.install_component("fixtures", "slow", "process = [\"sleep\"]\n");
    let daemon = home.daemon(port);
    let repo = git_repo();
    let repo_arg = repo.path().to_str().expect("utf-8");
    let name = unique("cannot");
    for (flags, says) in [
        (&["--image", "alpine"][..], "cannot apply a container image; leave out --image"),
        (&["--cpu-limit", "1"][..], "cannot apply resource limits"),
        (&["--memory-limit", "1000000"][..], "cannot apply resource limits"),
    ] {
        let mut args = vec!["create", "-r", repo_arg, "-p", "true", "-b", "zellij", "-a", "shell", "--name", &name];
        args.extend_from_slice(flags);
        let out = home.run(&args);
        assert_ne!(out.code, 0, "{flags:?}");
        assert!(out.stderr.contains(says), "{flags:?}: {}", out.stderr);
    }
    assert!(!branch_exists(repo.path(), &format!("clauderon/{name}")), "nothing was made");
    assert!(!zellij_sessions().contains(&format!("clauderon-{name}")));

    let body = format!(
        r#"{{"repo": {:?}, "prompt": "true", "backend": "slow", "agent": "shell", "name": "{name}"}}"#,
        repo_arg
    );
    let (code, s) = daemon.http("POST", "/api/sessions", Some(&body));
    assert_eq!(code, 201, "{s}");
    let out = home.run(&["attach", &name]);
    assert!(out.stderr.contains("gives no way to attach"), "{}", out.stderr);
    home.run(&["stop", &name]).ok();
    let out = home.run(&["start", &name]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("cannot start a stopped session again"), "{}", out.stderr);
    home.run(&["delete", &name]).ok();
}

/// The `misbehave` fixture installed in `home` as a user backend granted
/// `true`, `echo` and `sleep`.
fn install_misbehave(home: &Home) {
    home.install_component("fixtures", "misbehave", "process = [\"true\", \"echo\", \"sleep\"]\n");
}

/// A `shell` session named `name` on the `misbehave` backend, created
/// through the daemon's API (the fixture does what the name says).
fn create_on_misbehave(daemon: &clauderon_tests::Daemon, repo: &str, name: &str) {
    let body = format!(
        r#"{{"repo": {repo:?}, "prompt": "true", "backend": "misbehave", "agent": "shell", "name": "{name}"}}"#
    );
    let (code, s) = daemon.http("POST", "/api/sessions", Some(&body));
    assert_eq!(code, 201, "{s}");
}

/// A backend's attach argv runs in the user's own terminal (and, for the
/// dashboard's terminal and typed input, in the daemon): the `misbehave`
/// fixture, installed as a user backend granted only `true`, `echo` and `sleep`, asks
/// to run `sh -c 'echo pwned > …'`. The host refuses it everywhere and
/// nothing runs; an argv starting with a granted executable runs, shown first.
#[test]
fn attach_runs_only_an_executable_the_backend_was_granted_and_shows_it_first() {
    let (home, port) = Home::with_free_port();
    install_misbehave(&home);
    let daemon = home.daemon(port);
    let repo = git_repo();
    let repo_arg = repo.path().to_str().expect("utf-8");
    let create = |name: &str| create_on_misbehave(&daemon, repo_arg, name);
    let hostile = unique("as-asked");
    create(&hostile);
    let marker = std::path::PathBuf::from(format!("/tmp/clauderon-attach-pwned-clauderon-{hostile}"));
    let _ = std::fs::remove_file(&marker);
    let out = home.run(&["attach", &hostile]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("asked to attach by running `sh`, which it was not granted (it may run: true, echo, sleep)"),
        "{}",
        out.stderr
    );
    assert!(!marker.exists(), "the backend's command ran in the user's terminal");
    // The dashboard's terminal and typed input run the attach command in the
    // daemon: refused the same way, and nothing runs.
    let (code, body) =
        daemon.http("POST", &format!("/api/sessions/{hostile}/input"), Some(r#"{"text": "x", "submit": true}"#));
    assert_eq!(code, 502, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("which it was not granted")), "{body}");
    let console = console_transcript(&daemon, &hostile);
    assert_eq!(console["error"], true, "the console WebSocket opened for a refused command: {console}");
    assert!(!marker.exists(), "the backend's command ran in the daemon");

    let granted = unique("as-asked-echo");
    create(&granted);
    let out = home.run(&["attach", &granted]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("clauderon: attaching with `echo attached`"), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "attached");
    let console = console_transcript(&daemon, &granted);
    assert!(console["data"].as_str().is_some_and(|d| d.contains("attached")), "{console}");
    assert_eq!(console["reason"], "the attach command ended", "{console}");
    for name in [&hostile, &granted] {
        home.run(&["delete", name]).ok();
    }
}

/// What a viewer of session `name`'s console WebSocket sees (node's
/// WebSocket with the API token): `{data, reason}` (the terminal's bytes as
/// text, the close reason) or `{error: true}` when it does not open.
fn console_transcript(daemon: &clauderon_tests::Daemon, name: &str) -> serde_json::Value {
    let script = format!(
        "const s = new WebSocket('ws://127.0.0.1:{}/api/sessions/{name}/console?cols=80&rows=24', \
         {{ headers: {{ authorization: 'Bearer {}' }} }}); s.binaryType = 'arraybuffer'; let data = ''; \
         s.onmessage = (m) => {{ data += Buffer.from(m.data).toString(); }}; \
         s.onerror = () => {{ console.log(JSON.stringify({{ error: true }})); process.exit(0); }}; \
         s.onclose = (e) => {{ console.log(JSON.stringify({{ data, reason: e.reason }})); process.exit(0); }}; \
         setTimeout(() => {{ console.log(JSON.stringify({{ data, timeout: true }})); process.exit(0); }}, 15000);",
        daemon.port, daemon.token
    );
    let out = Command::new("node")
        .args(["--experimental-websocket", "-e"])
        .arg(script)
        .env("NO_PROXY", "*")
        .output()
        .expect("node");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {text} {}", String::from_utf8_lossy(&out.stderr)))
}

/// `POST …/input` types into the agent's terminal through a fresh attach
/// each time, and no key is lost: zellij's client drops what it reads in
/// its first half second (while it waits for its terminal's answers), which
/// lost a whole line when typing on a fixed delay. Each line is typed right
/// after the last one returned, the first right after create.
#[test]
fn typed_input_reaches_the_agent_every_time() {
    let (home, port) = Home::with_free_port();
    let daemon = home.daemon(port);
    let repo = git_repo();
    let name = unique("typed");
    create_shell(&home, repo.path(), &name, r#"while read -r line; do echo "got:$line"; done"#);
    for n in 1..=4 {
        let (code, typed) = daemon.http(
            "POST",
            &format!("/api/sessions/{name}/input"),
            Some(&format!(r#"{{"text": "line-{n}", "submit": true}}"#)),
        );
        assert_eq!((code, typed["bytes"].as_u64()), (200, Some(7)), "{typed}");
        eventually(10, &format!("got:line-{n} on the agent's screen"), || {
            let (_, output) = daemon.http("GET", &format!("/api/sessions/{name}/output?lines=40"), None);
            output["output"].as_str().filter(|o| o.contains(&format!("got:line-{n}"))).map(str::to_owned)
        });
    }
    let (_, output) = daemon.http("GET", &format!("/api/sessions/{name}/output?lines=40"), None);
    let output = output["output"].as_str().unwrap_or_default();
    assert_eq!(output.matches("got:line-").count(), 4, "each line once, in order:\n{output}");
    home.run(&["delete", &name]).ok();
}

/// A malicious agent installed with no capabilities (the `path-escape`
/// fixture) points the daemon at files outside the session: its transcript
/// at clauderon's CA key (through `..`) or at `/etc/passwd`, a file to place
/// at clauderon's own config. Each create is refused naming the agent and
/// the rule; nothing outside the session is read or written, the key never
/// reaches the log, and the daemon goes on serving.
#[test]
fn an_agent_cannot_point_the_daemon_outside_the_session() {
    let (home, port) = Home::with_free_port();
    home.install_component("fixtures", "path-escape", "");
    let daemon = home.daemon(port);
    let repo = git_repo();
    let repo_arg = repo.path().to_str().expect("utf-8");
    let config = std::fs::read_to_string(home.path("config.toml")).expect("config");
    for (prompt, says) in [
        ("transcript-ca-key", "is outside the session's config home"),
        ("transcript-absolute", "is outside the session's config home"),
        ("place-outside", "placing the agent's file ../../../config.toml"),
    ] {
        let name = unique("escape");
        let body = format!(
            r#"{{"repo": {repo_arg:?}, "prompt": "{prompt}", "backend": "zellij", "agent": "path-escape", "name": "{name}"}}"#
        );
        let (code, answer) = daemon.http("POST", "/api/sessions", Some(&body));
        assert!(code >= 400, "{prompt}: {code} {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("agent `path-escape`: ") && error.contains(says), "{prompt}: {answer}");
        assert!(!zellij_sessions().contains(&format!("clauderon-{name}")), "{prompt}: a session was started");
    }
    assert_eq!(std::fs::read_to_string(home.path("config.toml")).expect("config"), config, "the config was written");
    let key = std::fs::read_to_string(home.path("proxy-ca-key.pem")).expect("the CA key, made for the sessions");
    let log = std::fs::read_to_string(&daemon.log).unwrap_or_default();
    let key_line = key.lines().nth(1).expect("a line of the key's base64");
    assert!(!log.contains(key_line), "the CA key reached the daemon's log");
    let (code, _) = daemon.http("GET", "/api/sessions", None);
    assert_eq!(code, 200, "the daemon goes on serving");
}

/// Every session event reaches each hook component, in order, and a hook
/// that never returns delays nothing: the daemon runs on one runtime thread
/// here, and the `stall` hook spins in its first event for a minute while
/// the session is created, changed and deleted and the other hook sees it all.
#[test]
fn hooks_get_every_session_event_and_a_stalled_hook_delays_nothing() {
    let (home, port) = Home::with_free_port();
    home.append_config("\n[limits.hook]\ndeadline = 60000\n");
    home.install_component("templates", "example-hook", "");
    home.install_component("fixtures", "stall", "");
    let daemon = home.daemon_with_env(port, &[("TOKIO_WORKER_THREADS", "1")]);
    let log = || std::fs::read_to_string(&daemon.log).unwrap_or_default();
    eventually(10, "the daemon to start both hooks", || {
        log().contains("2 hook component(s) get session events").then_some(())
    });
    let repo = git_repo();
    let name = unique("hooked");
    assert_eq!(create_shell(&home, repo.path(), &name, "exec sleep 600")["status"], "running");
    home.run(&["set-access-mode", &name, "--mode", "read-only"]).ok();
    home.run(&["delete", &name]).ok();

    let lines = eventually(20, "the example hook to see the delete", || {
        let text = log();
        let lines: Vec<String> =
            text.lines().filter(|l| l.contains("example-hook") && l.contains(&name)).map(String::from).collect();
        lines.iter().any(|l| l.contains("was deleted")).then_some(lines)
    });
    let order =
        ["was created", "status to SessionStatus::Running", "access mode to AccessMode::ReadOnly", "was deleted"];
    let at: Vec<Option<usize>> = order.iter().map(|o| lines.iter().position(|l| l.contains(o))).collect();
    assert!(at.iter().all(Option::is_some), "every event reached the hook: {lines:#?}");
    assert!(at.windows(2).all(|w| w[0] < w[1]), "in order: {lines:#?}");
    assert!(!log().contains("component `stall` failed"), "the stalled hook is still in its first event");
    let (code, _) = daemon.http("GET", "/api/sessions", None);
    assert_eq!(code, 200, "the daemon serves on");
}

#[test]
fn a_branch_with_commits_of_its_own_is_kept_on_delete() {
    let (home, port) = Home::with_free_port();
    let _daemon = home.daemon(port);
    let repo = git_repo();
    let name = unique("keep");
    let prompt = "git -c user.email=a@example.invalid -c user.name=a commit -q --allow-empty -m work; exec sleep 600";
    let s = create_shell(&home, repo.path(), &name, prompt);
    let branch = s["branch"].as_str().expect("branch").to_string();
    let base = s["base_commit"].as_str().expect("base").to_string();
    let commits = |dir: &Path| {
        let out =
            Command::new("git").arg("-C").arg(dir).args(["rev-list", "--count", &format!("{base}..{branch}")]).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
    };
    // The session commits in its own clone; the user's repository is never written by it.
    let clone = PathBuf::from(s["worktree"].as_str().expect("worktree"));
    eventually(20, "the agent's commit in its clone", || (commits(&clone) == "1").then_some(()));
    assert_eq!(commits(repo.path()), "0", "the user's branch moves only when clauderon brings it back");
    // Delete brings the branch back first, then keeps it because it has work on it.
    let out = home.run(&["delete", &name]).ok();
    assert!(out.stdout.contains("kept branch"), "{}", out.stdout);
    assert!(branch_exists(repo.path(), &branch));
    assert_eq!(commits(repo.path()), "1", "the session's commit reached the user's branch");
    assert!(!clone.exists(), "the clone is gone");
}

#[test]
fn the_api_drives_sessions_and_refuses_bad_input_leaving_nothing_behind() {
    let (home, port) = Home::with_free_port();
    let daemon = home.daemon(port);
    let repo = git_repo();
    let not_git = tempfile::tempdir().expect("tempdir");
    let name = unique("api");
    let body = |repo: &Path, extra: &str| {
        format!(
            r#"{{"repo": {:?}, "prompt": "exec sleep 600", "backend": "zellij", "agent": "shell"{extra}}}"#,
            repo.display().to_string()
        )
    };

    let (code, s) = daemon.http("POST", "/api/sessions", Some(&body(repo.path(), &format!(r#", "name": "{name}""#))));
    assert_eq!(code, 201, "{s}");
    let (code, s) = daemon.http("GET", &format!("/api/sessions/{name}/attach"), None);
    assert_eq!((code, s["argv"][0].as_str()), (200, Some("zellij")), "{s}");
    let (code, s) = daemon.http("GET", &format!("/api/sessions/{name}/output?lines=5"), None);
    assert_eq!(code, 200, "{s}");
    assert!(s["output"].is_string(), "{s}");
    // The shell agent never waits for approval: answering is refused, and
    // so is an answer that is neither approve nor deny.
    let (code, s) = daemon.http("POST", &format!("/api/sessions/{name}/approval"), Some(r#"{"answer": "approve"}"#));
    assert_eq!(code, 409, "{s}");
    assert!(
        s["error"].as_str().is_some_and(|e| e.contains("is not waiting for approval (its agent is working)")),
        "{s}"
    );
    let (code, s) = daemon.http("POST", &format!("/api/sessions/{name}/approval"), Some(r#"{"answer": "maybe"}"#));
    assert_eq!(code, 400, "{s}");
    for (method, path, expect) in [
        ("POST", "stop", "stopped"),
        ("POST", "start", "running"),
        ("POST", "archive", "archived"),
        ("POST", "unarchive", "stopped"),
    ] {
        let (code, s) = daemon.http(method, &format!("/api/sessions/{name}/{path}"), None);
        assert_eq!((code, s["status"].as_str()), (200, Some(expect)), "{path}: {s}");
    }
    let (code, s) = daemon.http("PUT", &format!("/api/sessions/{name}/access-mode"), Some(r#"{"mode": "read-only"}"#));
    assert_eq!((code, s["access_mode"].as_str()), (200, Some("read-only")));
    let (code, _) = daemon.http("POST", &format!("/api/sessions/{name}/stop"), None);
    assert_eq!(code, 409, "stopping a stopped session is a conflict");

    let bad: Vec<(String, u16, &str)> = vec![
        ("{not json".into(), 400, "malformed"),
        (body(Path::new("/nonexistent/dir"), ""), 400, "does not exist"),
        (body(not_git.path(), ""), 400, "not inside a git repository"),
        (
            body(repo.path(), r#", "backend": "nope""#).replace(r#""backend": "zellij", "#, ""),
            400,
            "unknown backend `nope`",
        ),
        (
            body(repo.path(), r#", "agent": "nope""#).replace(r#""agent": "shell""#, r#""print": false"#),
            400,
            "unknown agent `nope`",
        ),
        (body(repo.path(), &format!(r#", "name": "{name}""#)), 409, "already exists"),
        (body(repo.path(), r#", "access_mode": "sideways""#), 400, "malformed"),
        (body(repo.path(), r#", "name": "Bad Name""#), 400, "lowercase"),
        // Refused by the agent after the worktree was made: it must be removed again.
        (body(repo.path(), "").replace("exec sleep 600", "   "), 400, "--prompt"),
    ];
    for (b, want, says) in bad {
        let (code, s) = daemon.http("POST", "/api/sessions", Some(&b));
        assert_eq!(code, want, "{b} → {s}");
        assert!(s["error"].as_str().unwrap_or_default().contains(says), "{b} → {s}");
    }
    let (_, list) = daemon.http("GET", "/api/sessions?archived=true", None);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "only the good session exists: {list}");
    let worktrees: Vec<_> = std::fs::read_dir(home.path("worktrees")).expect("worktrees").collect();
    assert_eq!(worktrees.len(), 1, "no worktree left behind by refused creates");

    let (code, _) = daemon.http("DELETE", &format!("/api/sessions/{name}"), None);
    assert_eq!(code, 200);
    let (code, s) = daemon.http("GET", &format!("/api/sessions/{name}"), None);
    assert_eq!(code, 404, "{s}");
    let (code, doc) = daemon.http("GET", "/api/openapi.json", None);
    assert_eq!(code, 200);
    assert!(doc["paths"]["/api/sessions"]["post"].is_object());
}

#[test]
fn killing_the_daemon_mid_create_loses_nothing_and_restart_cleans_up() {
    let (home, port) = Home::with_free_port();
    home.install_component("fixtures", "slow", "process = [\"sleep\"]\n");
    let daemon = home.daemon(port);
    let repo = git_repo();
    let name = unique("crash");
    let body = format!(
        r#"{{"repo": {:?}, "prompt": "true", "backend": "slow", "agent": "shell", "name": "{name}"}}"#,
        repo.path().display().to_string()
    );
    let port_copy = port;
    let auth = format!("authorization: Bearer {}", daemon.token);
    let request = std::thread::spawn(move || {
        Command::new("curl")
            .args([
                "-sS",
                "--noproxy",
                "*",
                "-X",
                "POST",
                "-H",
                &auth,
                "-H",
                "content-type: application/json",
                "--data-binary",
                &body,
                &format!("http://127.0.0.1:{port_copy}/api/sessions"),
            ])
            .output()
    });
    let worktree = home.path("worktrees").join(&name);
    eventually(20, "the create to be under way", || {
        let (_, list) = daemon.http("GET", "/api/sessions", None);
        let creating = list.as_array()?.iter().any(|s| s["name"] == name.as_str() && s["status"] == "creating");
        (creating && worktree.exists()).then_some(())
    });
    daemon.kill();
    let _ = request.join();
    assert!(worktree.exists(), "the kill came after the worktree was made");

    let daemon = home.daemon(port);
    let (_, list) = daemon.http("GET", "/api/sessions?archived=true", None);
    assert_eq!(list.as_array().map(Vec::len), Some(0), "the interrupted create was undone: {list}");
    assert!(!worktree.exists(), "its worktree was removed");
    assert!(!branch_exists(repo.path(), &format!("clauderon/{name}")), "its branch was removed");
    // The store is consistent: the name is free again and a new create works.
    let good = format!(
        r#"{{"repo": {:?}, "prompt": "exec sleep 600", "backend": "zellij", "agent": "shell", "name": "{name}"}}"#,
        repo.path().display().to_string()
    );
    let (code, s) = daemon.http("POST", "/api/sessions", Some(&good));
    assert_eq!(code, 201, "{s}");
    let (code, _) = daemon.http("DELETE", &format!("/api/sessions/{name}"), None);
    assert_eq!(code, 200);
}

#[test]
fn client_commands_start_the_daemon_when_it_is_not_running() {
    let (home, _port) = Home::with_free_port();
    let out = home.run(&["list"]).ok();
    assert!(out.stdout.contains("No sessions"), "{}", out.stdout);
    assert!(out.stderr.contains("Starting the clauderon daemon"), "{}", out.stderr);
    assert!(home.path("daemon.pid").is_file(), "the daemon writes its pid");
    let again = home.run(&["list"]).ok();
    assert!(!again.stderr.contains("Starting"), "the second command reuses the running daemon");
    home.stop_started_daemon();
}

#[test]
fn a_broken_config_or_store_is_a_clear_error() {
    let home = Home::new();
    std::fs::write(home.path("config.toml"), "[general\nbroken").expect("config");
    let out = home.run(&["daemon"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("config.toml is not valid"), "{}", out.stderr);

    let home = Home::new();
    std::fs::write(home.path("config.toml"), "[limits.backend]\ndeadline = \"soon\"\n").expect("config");
    let out = home.run(&["daemon"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("config.toml is not valid") && out.stderr.contains("deadline"), "{}", out.stderr);

    let home = Home::new();
    std::fs::write(home.path("clauderon.redb"), vec![0x5a; 4096]).expect("store");
    let out = home.run(&["daemon", "--http-port", "1"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("is not a clauderon store or is damaged"), "{}", out.stderr);
}

#[test]
fn concurrent_creates_and_deletes_are_safe() {
    let (home, port) = Home::with_free_port();
    let daemon = home.daemon(port);
    let repo = git_repo();
    let dup = unique("dup");
    let mut names: Vec<String> = (0..3).map(|i| unique(&format!("par{i}"))).collect();
    names.push(dup.clone());
    names.push(dup.clone());
    let body = |name: &str| {
        format!(
            r#"{{"repo": {:?}, "prompt": "exec sleep 600", "backend": "zellij", "agent": "shell", "name": "{name}"}}"#,
            repo.path().display().to_string()
        )
    };
    let codes: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| {
                let b = body(n);
                let d = &daemon;
                scope.spawn(move || d.http("POST", "/api/sessions", Some(&b)).0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 4, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 1, "exactly one of the duplicate names loses: {codes:?}");
    names.pop();
    let codes: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| {
                let d = &daemon;
                scope.spawn(move || d.http("DELETE", &format!("/api/sessions/{n}"), None).0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert_eq!(codes, vec![200; 4]);
    let (_, list) = daemon.http("GET", "/api/sessions?archived=true", None);
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
    assert_eq!(std::fs::read_dir(home.path("worktrees")).expect("dir").count(), 0, "no worktree left");
    let zellij = zellij_sessions();
    assert!(names.iter().all(|n| !zellij.contains(&format!("clauderon-{n}"))), "{zellij}");
}

#[test]
fn a_configured_token_replaces_the_generated_one() {
    let (home, port) = Home::with_free_port();
    std::fs::write(home.path("config.toml"), format!("[daemon]\nhttp_port = {port}\ntoken = \"s3cret\"\n"))
        .expect("config");
    let daemon = home.daemon(port);
    let (code, s) = daemon.curl("GET", "/api/sessions", None, &[]);
    assert_eq!(code, 401, "{s}");
    assert!(s["error"].as_str().unwrap_or_default().contains("token"), "{s}");
    let (code, s) = daemon.curl("GET", "/api/sessions", None, &["-H", "authorization: Bearer s3cret"]);
    assert_eq!((code, s), (200, serde_json::json!([])));
    assert!(!home.path("api-token").exists(), "no token file is made when one is configured");
    // The CLI reads the same token from the config.
    home.run(&["list"]).ok();
}

#[test]
fn reconcile_marks_a_vanished_session_failed_and_start_brings_it_back() {
    let (home, port) = Home::with_free_port();
    let _daemon = home.daemon(port);
    let repo = git_repo();
    let name = unique("rec");
    let zname = format!("clauderon-{name}");
    let s = create_shell(&home, repo.path(), &name, "date +%s%N > started; exec sleep 600");
    let marker = PathBuf::from(s["worktree"].as_str().expect("worktree")).join("started");
    let first = eventually(20, "the first start", || std::fs::read_to_string(&marker).ok());
    assert_eq!(home.run(&["reconcile"]).ok().stdout.trim(), "Every session matches its backend.");

    // Its zellij session is killed behind clauderon's back.
    assert!(Command::new("zellij").args(["kill-session", &zname]).status().expect("zellij").success());
    let _ = Command::new("zellij").args(["delete-session", "--force", &zname]).status();
    let out = home.run(&["reconcile"]).ok();
    assert!(out.stdout.contains(&name) && out.stdout.contains("gone"), "{}", out.stdout);
    let list = home.run(&["list", "--json"]).ok().json();
    assert_eq!(list[0]["status"], "failed");
    assert!(list[0]["error"].as_str().unwrap_or_default().contains("start it again or delete it"), "{list}");

    // Starting it again recreates the zellij session in the same worktree.
    home.run(&["start", &name]).ok();
    assert_eq!(status_of(&home, &name, false).as_deref(), Some("running"));
    eventually(20, "the agent to run again", || std::fs::read_to_string(&marker).ok().filter(|t| *t != first));
    home.run(&["delete", &name]).ok();
}

/// A backend that loops or panics in `status` holds nothing up: after a
/// restart the API answers while the start-up reconcile is still running
/// (in the background), the other sessions are reconciled all the same (a
/// zellij session whose server was killed meanwhile is marked failed), and
/// the looping and panicking backend's sessions are left as they were, with
/// a line each saying why.
#[test]
fn a_looping_or_panicking_backend_never_stops_reconcile_nor_holds_up_the_api() {
    let (home, port) = Home::with_free_port();
    home.append_config("[limits.backend]\ndeadline = 5000\n");
    install_misbehave(&home);
    let daemon = home.daemon(port);
    let repo = git_repo();
    let repo_arg = repo.path().to_str().expect("utf-8");
    let (looping, panicking, victim) = (unique("as-asked-status-loop"), unique("as-asked-status-panic"), unique("rec"));
    for name in [&looping, &panicking] {
        create_on_misbehave(&daemon, repo_arg, name);
    }
    create_shell(&home, repo.path(), &victim, "exec sleep 600");
    drop(daemon);
    // Its zellij session is killed while the daemon is down.
    let zname = format!("clauderon-{victim}");
    assert!(Command::new("zellij").args(["kill-session", &zname]).status().expect("zellij").success());
    let _ = Command::new("zellij").args(["delete-session", "--force", &zname]).status();

    // Started again, without waiting for its reconcile: the API answers
    // while the looping backend's session is still being asked (5 s).
    let restarted = home.daemon_answering(port);
    let (_, health) = restarted.curl("GET", "/api/health", None, &[]);
    assert_eq!(health["reconciled"], false, "the API waited for the looping backend: {health}");
    let (code, list) = restarted.http("GET", "/api/sessions", None);
    assert_eq!(code, 200, "the session list is served during the reconcile: {list}");
    eventually(60, "the start-up reconcile to finish", || {
        (restarted.curl("GET", "/api/health", None, &[]).1["reconciled"] == true).then_some(())
    });
    assert_eq!(status_of(&home, &victim, false).as_deref(), Some("failed"), "the other backend's session");
    for name in [&looping, &panicking] {
        assert_eq!(status_of(&home, name, false).as_deref(), Some("running"), "{name} is left as it was");
    }
    // Reconcile asked again through the API says why each was not checked, and goes on.
    let (code, changes) = restarted.http("POST", "/api/reconcile", None);
    assert_eq!(code, 200, "{changes}");
    let lines: Vec<&str> = changes["changes"].as_array().expect("changes").iter().filter_map(|c| c.as_str()).collect();
    let line = |name: &str| lines.iter().find(|l| l.starts_with(name)).copied().unwrap_or_default();
    assert!(line(&looping).contains("not checked, left as it was") && line(&looping).contains("deadline"), "{lines:?}");
    assert!(
        line(&panicking).contains("not checked, left as it was") && line(&panicking).contains("panicked on purpose"),
        "{lines:?}"
    );
    home.run(&["delete", &victim]);
}

/// An attach command that fails at once on a running session (zellij's
/// `attach` can miss a busy session and say it does not exist) is run again,
/// saying so, three times at most; its exit status is `attach`'s. The same
/// for the daemon's attach that types input and for the console WebSocket.
#[test]
fn attach_tries_again_when_the_attach_command_fails_at_once_on_a_running_session() {
    let (home, port) = Home::with_free_port();
    install_misbehave(&home);
    let daemon = home.daemon(port);
    let repo = git_repo();
    let repo_arg = repo.path().to_str().expect("utf-8");
    let create = |name: &str| create_on_misbehave(&daemon, repo_arg, name);
    let once = unique("as-asked-fails-once");
    create(&once);
    let out = home.run(&["attach", &once]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "attached", "{}", out.stderr);
    let failed = "sleep: invalid time interval";
    assert_eq!(out.stderr.matches(failed).count(), 1, "the first run failed: {}", out.stderr);
    assert!(
        out.stderr.contains(&format!("failed at once (exit 1) but {once} is running; trying again (2 of 3)")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("attaching with `echo attached`"), "asked again, and shown: {}", out.stderr);

    let always = unique("as-asked-fails-always");
    create(&always);
    let out = home.run(&["attach", &always]);
    assert_eq!(out.code, 1, "the command's own exit status: {}", out.stderr);
    assert_eq!(out.stderr.matches(failed).count(), 3, "{}", out.stderr);
    assert!(out.stderr.contains("trying again (3 of 3)"), "{}", out.stderr);

    // Typed input (and an approval's keys) go through a fresh attach in the
    // daemon: one that ends before the text could be typed is run again,
    // and the error says what it printed.
    let (code, body) =
        daemon.http("POST", &format!("/api/sessions/{always}/input"), Some(r#"{"text": "x", "submit": true}"#));
    assert_eq!(code, 502, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("closed before the text was typed (its attach command said: sleep: invalid time interval"),
        "{body}"
    );
    let log = std::fs::read_to_string(&daemon.log).expect("daemon log");
    assert_eq!(log.matches("ended before the text was typed").count(), 2, "run three times:\n{log}");

    // The dashboard's and the TUI's terminal (the console WebSocket) too,
    // telling the viewer.
    let viewed = unique("as-asked-fails-once-viewed");
    create(&viewed);
    let console = console_transcript(&daemon, &viewed);
    let data = console["data"].as_str().unwrap_or_default();
    assert!(data.contains("invalid time interval"), "the first run failed: {console}");
    assert!(data.contains("failed at once; trying again (2 of 3)") && data.contains("attached"), "{console}");
    assert_eq!(console["reason"], "the attach command ended", "{console}");
    assert!(!out.stdout.contains("attached"), "{}", out.stdout);
}

/// `clauderon attach` in a real terminal (tmux) shows the agent's zellij session.
#[test]
fn attach_opens_the_sessions_zellij_in_a_terminal() {
    let (home, port) = Home::with_free_port();
    let _daemon = home.daemon(port);
    let repo = git_repo();
    let name = unique("att");
    create_shell(&home, repo.path(), &name, "echo \"hello-from-the-agent\" 'in\\one'; exec sleep 600");
    // The agent's output, and zellij's bar naming the session (its plugins load a
    // moment later, longer on the first start in a session's fresh HOME).
    let (found, last) = clauderon_tests::attach_in_terminal(&home, &name, |screen| {
        screen.contains("hello-from-the-agent in\\one") && screen.contains(&format!("clauderon-{name}"))
    });
    assert!(found, "the attached terminal shows the session and the agent's output:\n{last}");
    assert!(!last.contains("About Zellij"), "zellij's tips cover the agent:\n{last}");
    home.run(&["delete", &name]).ok();
}

/// Secrets in the daemon's environment never reach a session on the host.
#[test]
fn the_daemons_environment_does_not_leak_into_a_zellij_session() {
    let canary = "canary-d41d8cd98f00b204e9800998ecf8427e";
    let (home, port) = Home::with_free_port();
    let _daemon = home.daemon_with_env(port, &[("GITHUB_TOKEN", canary), ("ANTHROPIC_API_KEY", canary)]);
    let repo = git_repo();
    let name = unique("env");
    let s = create_shell(&home, repo.path(), &name, "env > env.txt; exec sleep 600");
    let env_file = PathBuf::from(s["worktree"].as_str().expect("worktree")).join("env.txt");
    let env = eventually(20, "the session's environment", || {
        std::fs::read_to_string(&env_file).ok().filter(|t| t.contains("CLAUDERON_SESSION_ID"))
    });
    assert!(!env.contains(canary), "a daemon secret reached the session:\n{env}");
    assert!(env.contains(&format!("CLAUDERON_SESSION_NAME={name}")), "{env}");
    home.run(&["delete", &name]).ok();
}

/// A machine that cannot build the sandbox (here: the daemon runs in a user
/// namespace that allows no more of them, as a kernel without unprivileged
/// user namespaces would): host sessions are refused with the reason, unless
/// `[sandbox] required = false`, and then `list` marks them unsandboxed.
#[test]
fn without_the_sandbox_host_sessions_are_refused_unless_allowed_and_then_marked() {
    let no_userns = ["unshare", "-Ur", "sh", "-c", "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$0\" daemon"];
    let (home, port) = Home::with_free_port();
    let daemon = home.daemon_via(port, &[], &no_userns);
    let repo = git_repo();
    let name = unique("nobox");
    let repo_arg = repo.path().to_str().expect("utf-8");
    let refused = home.run(&["create", "-r", repo_arg, "-a", "shell", "--name", &name, "-p", "exec sleep 600"]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(refused.stderr.contains("cannot sandbox host sessions"), "{}", refused.stderr);
    assert!(refused.stderr.contains("required = false"), "the error says how to go on: {}", refused.stderr);
    drop(daemon);

    home.append_config("[sandbox]\nrequired = false\n");
    let _daemon = home.daemon_via(port, &[], &no_userns);
    home.run(&["create", "-r", repo_arg, "-a", "shell", "--name", &name, "-p", "exec sleep 600"]).ok();
    let list = home.run(&["list"]).ok().stdout;
    assert!(list.contains("NONE") && list.contains("unsandboxed"), "{list}");
    home.run(&["delete", &name]).ok();
}

/// What real bash offers at TAB after `words` (the last one being
/// completed), with `clauderon completions bash` sourced and this home's
/// CLAUDERON_HOME.
fn bash_completes(home: &Home, words: &[&str]) -> Vec<String> {
    let bin = clauderon_tests::clauderon_bin();
    let line = words.join(" ");
    let script = format!(
        "source <({bin} completions bash) || exit 9\n\
         COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}\n\
         _clap_complete_clauderon clauderon '{last}' '{prev}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bin = bin.display(),
        words = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
        cword = words.len() - 1,
        last = words[words.len() - 1],
        prev = words[words.len() - 2],
    );
    let out = Command::new("bash").args(["-c", &script]).env("CLAUDERON_HOME", home.path("")).output().expect("bash");
    assert!(out.status.success(), "bash: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(String::from).collect()
}

/// Shell completion in real bash: commands, option values, and the names
/// of the daemon's sessions — and without a daemon, no names and no daemon
/// started just to complete.
#[test]
fn bash_completes_commands_values_and_the_daemons_session_names() {
    let (home, port) = Home::with_free_port();
    assert_eq!(bash_completes(&home, &["clauderon", "set-acc"]), ["set-access-mode"]);
    assert!(bash_completes(&home, &["clauderon", "comp"]).contains(&"completions".to_string()));
    let offered = bash_completes(&home, &["clauderon", "attach", ""]);
    assert!(offered.iter().all(|o| o.starts_with("--")), "no daemon, no names: {offered:?}");
    assert!(!home.path("daemon.log").exists(), "completing must not start the daemon");

    let _daemon = home.daemon(port);
    let repo = git_repo();
    let name = unique("completed");
    assert_eq!(create_shell(&home, repo.path(), &name, "exec sleep 600")["status"], "running");
    for words in
        [&["clauderon", "attach", ""][..], &["clauderon", "delete", "comp"], &["clauderon", "audit", "--session", ""]]
    {
        let offered = bash_completes(&home, words);
        assert!(offered.contains(&name), "{words:?}: {offered:?}");
    }
    let modes = bash_completes(&home, &["clauderon", "set-access-mode", &name, "--mode", ""]);
    assert!(modes.contains(&"read-only".to_string()) && modes.contains(&"read-write".to_string()), "{modes:?}");
    for shell in ["zsh", "fish"] {
        let script = home.run(&["completions", shell]).ok().stdout;
        assert!(script.contains(&clauderon_tests::clauderon_bin().display().to_string()), "{shell}: {script}");
    }
    home.run(&["delete", &name]).ok();
}

/// Every command that prints data prints JSON with `--json`: the session
/// after a change (stop, start, archive, unarchive, access mode, egress),
/// what delete and reconcile did, the configuration and the paths.
#[test]
fn every_command_that_prints_data_prints_json_when_asked() {
    let (home, port) = Home::with_free_port();
    let _daemon = home.daemon(port);
    let repo = git_repo();
    let name = unique("json");
    assert_eq!(create_shell(&home, repo.path(), &name, "exec sleep 600")["status"], "running");
    let json = |args: &[&str]| home.run(args).ok().json();
    for (action, status) in
        [("stop", "stopped"), ("start", "running"), ("archive", "archived"), ("unarchive", "stopped")]
    {
        let s = json(&[action, &name, "--json"]);
        assert_eq!((s["name"].as_str(), s["status"].as_str()), (Some(name.as_str()), Some(status)), "{action}: {s}");
    }
    assert_eq!(json(&["set-access-mode", &name, "--mode", "read-only", "--json"])["access_mode"], "read-only");
    assert_eq!(json(&["set-egress", &name, "--json"])["egress"]["mode"], "allow-list");
    let s = json(&["set-egress", &name, "--allow-host", "api.stripe.com", "--json"]);
    assert_eq!(s["egress"]["hosts"], serde_json::json!(["api.stripe.com"]), "{s}");
    assert!(json(&["reconcile", "--json"])["changes"].is_array());
    assert_eq!(json(&["config", "show", "--json"])["daemon"]["http_port"], port);
    let paths = json(&["config", "paths", "--json"]);
    assert_eq!(paths["home"].as_str().map(PathBuf::from), Some(home.path("").components().collect()));
    assert!(paths["daemon_log"].as_str().is_some_and(|p| p.ends_with("daemon.log")), "{paths}");
    let deleted = json(&["delete", &name, "--json"]);
    assert!(deleted["message"].as_str().is_some_and(|m| !m.is_empty()), "{deleted}");
}

/// The sandbox's init waits for what the agent left running (Codex's `notify`
/// hook posts a turn's end after Codex exited; killed with the sandbox, the
/// session would stay "working"): a leftover's request a second after the
/// agent exited goes through the proxy, and one that keeps running is killed
/// once the sandbox's linger is up.
#[test]
fn what_a_host_agent_leaves_running_finishes_its_request_and_the_rest_is_killed() {
    let world = World::start();
    let s = create_shell(&world.home, world.repo.path(), &unique("leftovers"), LEFTOVERS);
    assert_leftover_request_done(&world, &s);
    let id = s["id"].as_str().expect("id");
    let linger = clauderon_sandbox::LINGER.as_secs();
    eventually(linger + 15, "the leftover that kept running killed", || {
        (!session_processes(id).contains("sleep\x00600")).then_some(())
    });
}

/// A new user's machine: a clean `HOME` and `CLAUDERON_HOME`, and a PATH
/// without zellij or any agent CLI. `doctor` names each missing piece with
/// the command that installs it and exits 1; `create` says the same; once
/// the tools are on PATH (as the install commands would put them), `doctor`
/// exits 0.
#[test]
fn doctor_names_what_is_missing_with_its_fix_and_passes_once_it_is_installed() {
    let (home, _port) = Home::with_free_port();
    let user_home = tempfile::tempdir().expect("home");
    let bin = tempfile::tempdir().expect("bin");
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.path().display());
    let run = |args: &[&str]| {
        let out = home.command(args).env("PATH", &path).env("HOME", user_home.path()).output().expect("clauderon");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let repo = git_repo();
    let repo = repo.path().to_str().expect("utf-8");

    let (code, out, err) = run(&["doctor", "--json"]);
    assert_eq!(code, Some(1), "the default path cannot work: {out}{err}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    let check = |area: &str, name: &str| {
        report["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["area"] == area && c["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no {area} {name} check: {report}"))
    };
    assert_eq!(report["ok"], false);
    assert_eq!(check("daemon", "daemon")["ok"], true, "{report}");
    let zellij = check("backend", "zellij");
    assert!(zellij["ok"] == false && zellij["required"] == true, "{zellij}");
    assert_eq!(zellij["fix"], "cargo install --locked zellij", "{zellij}");
    let claude = check("agent", "claude-code");
    assert!(claude["ok"] == false && claude["required"] == true, "{claude}");
    assert_eq!(claude["fix"], "npm install -g @anthropic-ai/claude-code", "{claude}");
    let codex = check("agent", "codex");
    assert!(codex["ok"] == false && codex["required"] == false, "not the default agent: {codex}");
    assert_eq!(check("agent", "shell")["ok"], true, "{report}");
    assert_eq!(check("backend", "docker")["required"], false, "{report}");

    let (code, out, _) = run(&["doctor"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("FAIL backend zellij") && out.contains("fix: cargo install --locked zellij"), "{out}");
    assert!(out.contains("cannot work yet"), "{out}");

    let (code, _, err) = run(&["create", "-r", repo, "-p", "hi", "--name", &unique("nozellij"), "-a", "shell"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("`zellij` is not installed") && err.contains("install it with: cargo install --locked zellij"),
        "{err}"
    );
    let (code, _, err) = run(&["create", "-r", repo, "-p", "hi", "--name", &unique("noclaude")]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("`claude` is not installed") && err.contains("npm install -g @anthropic-ai/claude-code"),
        "{err}"
    );

    // What the install commands would do: put the programs on PATH.
    for program in ["zellij", "claude"] {
        let found = clauderon_runtime::capabilities::process::which(program).expect("on the tests' PATH");
        std::os::unix::fs::symlink(&found, bin.path().join(program)).expect("link");
    }
    let (code, out, err) = run(&["doctor"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("ok   backend zellij") && out.contains("can work"), "{out}");
    home.stop_started_daemon();

    // A daemon that cannot start is the one failed check, with where to look.
    let broken = Home::new();
    std::fs::write(broken.path("config.toml"), "[general\nbroken").expect("config");
    let out = broken.command(&["doctor"]).output().expect("clauderon");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL daemon") && text.contains("config.toml is not valid"), "{text}");
    assert!(text.contains("fix: see ") && text.contains("daemon cannot start"), "{text}");
}

/// The README's quick start (the block after its marker), replayed exactly as
/// written by `sh` from a fresh repository with a clean `HOME` (this build's
/// `clauderon` and the tests' tools on PATH, as `./justw run` leaves them):
/// it must leave the session it creates running.
#[test]
fn the_readmes_quick_start_leaves_a_running_session() {
    let readme = std::fs::read_to_string(clauderon_tests::repo_root().join("README.md")).expect("README");
    let after = readme.split("<!-- quick start: replayed by tests/cli/sessions.rs -->").nth(1).expect("the marker");
    let script = after.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("the block after it");
    assert!(script.contains("clauderon create"), "{script}");
    let _ = Command::new("zellij").args(["delete-session", "--force", "clauderon-first"]).output();
    let (home, _port) = Home::with_free_port();
    let user_home = tempfile::tempdir().expect("home");
    let repo = git_repo();
    let bin = clauderon_tests::clauderon_bin();
    let path = format!("{}:{}", bin.parent().expect("bin dir").display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(repo.path())
        .env("PATH", path)
        .env("HOME", user_home.path())
        .env("CLAUDERON_HOME", home.dir.path())
        .env_remove("CLAUDERON_LOG")
        .output()
        .expect("sh");
    let shown = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the quick start failed:\n{shown}");
    assert!(shown.contains("agent shell") && shown.contains("first"), "doctor and list ran:\n{shown}");
    assert_eq!(status_of(&home, "first", false).as_deref(), Some("running"), "{shown}");
    home.run(&["delete", "first"]).ok();
    home.stop_started_daemon();
}
