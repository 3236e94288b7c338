//! `clauderon plugins …` end to end, with the real binary and built components.

use clauderon_tests::{Home, test_component};

fn find<'a>(list: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    list["plugins"].as_array().expect("a JSON array of plugins").iter().find(|p| p["id"] == id)
}

/// What the running daemon of `world` says about its loaded plugin `id`.
fn loaded(world: &clauderon_tests::World, id: &str) -> Option<serde_json::Value> {
    let (_, list) = world.daemon.http("GET", "/api/plugins", None);
    find(&list, id).cloned()
}

/// Give the plugin crate in `dir` this description (its component.toml).
fn set_description(dir: &std::path::Path, text: &str) {
    let manifest = std::fs::read_to_string(dir.join("component.toml")).expect("component.toml");
    let line = manifest.lines().find(|l| l.starts_with("description = ")).expect("a description").to_string();
    std::fs::write(dir.join("component.toml"), manifest.replace(&line, &format!("description = {text:?}")))
        .expect("write component.toml");
}

#[test]
fn list_json_shows_bundled_components_with_kind_and_grants() {
    let home = Home::new();
    let list = home.run(&["plugins", "list", "--json"]).ok().json();
    let shell = find(&list, "shell").expect("the bundled shell agent is listed");
    assert_eq!(shell["kind"], "agent");
    assert_eq!(shell["source"], "bundled");
    assert_eq!(shell["version"], "0.1.0");
    assert_eq!(shell["capabilities"], serde_json::json!({}), "the shell agent is granted nothing");
    assert!(shell["grants"].as_array().is_some_and(|g| g.is_empty()), "{shell}");
}

#[test]
fn list_table_has_a_header_and_a_row_per_component() {
    let home = Home::new();
    let out = home.run(&["plugins", "list"]).ok();
    let mut lines = out.stdout.lines();
    assert!(lines.next().expect("header").starts_with("ID"), "{}", out.stdout);
    assert!(out.stdout.lines().any(|l| l.starts_with("shell ") && l.contains("bundled")), "{}", out.stdout);
}

#[test]
fn inspect_shows_world_kind_imports_and_capabilities() {
    let home = Home::new();
    let file = test_component("templates", "example-backend");
    let out = home.run(&["plugins", "inspect", file.to_str().expect("utf-8 path")]).ok();
    for expected in [
        "id:           example-backend",
        "kind:         backend",
        "world:        backend",
        "run executables: tmux",
        "never: run a program not named here or by path",
        "clauderon:plugin/process@0.1.0",
        "clauderon:plugin/backend-api@0.1.0",
        "problems:     none",
    ] {
        assert!(out.stdout.contains(expected), "missing {expected:?} in:\n{}", out.stdout);
    }
    let json = home.run(&["plugins", "inspect", "--json", file.to_str().expect("path")]).ok().json();
    assert_eq!(json["world"], "backend");
    assert_eq!(json["manifest"]["capabilities"]["process"], serde_json::json!(["tmux"]));
}

#[test]
fn inspect_says_what_is_wrong_and_exits_1() {
    let home = Home::new();
    let ungranted = test_component("fixtures", "ungranted");
    let out = home.run(&["plugins", "inspect", ungranted.to_str().expect("path")]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("clauderon:plugin/http@0.1.0") && out.stdout.contains("without the grant"),
        "{}",
        out.stdout
    );

    let junk = home.path("junk.wasm");
    std::fs::write(&junk, b"definitely not wasm").expect("write junk");
    let out = home.run(&["plugins", "inspect", junk.to_str().expect("path")]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("no clauderon manifest") && out.stdout.contains("not a valid WebAssembly component"),
        "{}",
        out.stdout
    );

    let out = home.run(&["plugins", "inspect", "/nonexistent/x.wasm"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("cannot read /nonexistent/x.wasm"), "{}", out.stderr);
}

#[test]
fn install_shows_grants_needs_approval_then_loads_as_user_component() {
    let home = Home::new();
    let file = test_component("templates", "example-backend");
    let path = file.to_str().expect("path");

    let refused = home.run(&["plugins", "install", path]);
    assert_ne!(refused.code, 0);
    assert!(refused.stdout.contains("run executables: tmux"), "grants are shown first:\n{}", refused.stdout);
    let never = clauderon_runtime::manifest::never::PROCESS;
    assert!(refused.stdout.contains(&format!("never: {never}")), "and what they never allow:\n{}", refused.stdout);
    assert!(refused.stderr.contains("pass --yes"), "{}", refused.stderr);
    assert!(!home.path("components/example-backend.wasm").exists(), "nothing installed without approval");

    home.run(&["plugins", "install", "--yes", path]).ok();
    assert!(home.path("components/example-backend.wasm").exists());
    let grants = std::fs::read_to_string(home.path("components/example-backend.grants.toml")).expect("grants file");
    assert!(grants.contains("process = [\"tmux\"]"), "{grants}");

    let list = home.run(&["plugins", "list", "--json"]).ok().json();
    let mine = find(&list, "example-backend").expect("installed component is loaded");
    assert_eq!(mine["source"], "user");
    assert_eq!(mine["kind"], "backend");
    assert_eq!(mine["capabilities"]["process"], serde_json::json!(["tmux"]));

    home.run(&["plugins", "remove", "example-backend"]).ok();
    let list = home.run(&["plugins", "list", "--json"]).ok().json();
    assert!(find(&list, "example-backend").is_none());
}

#[test]
fn a_component_asking_for_more_than_approved_is_refused_and_others_still_load() {
    let home = Home::new();
    let file = test_component("templates", "example-backend");
    home.run(&["plugins", "install", "--yes", file.to_str().expect("path")]).ok();
    let grants = home.path("components/example-backend.grants.toml");
    let narrowed = std::fs::read_to_string(&grants).expect("grants").replace("process = [\"tmux\"]", "process = []");
    std::fs::write(&grants, narrowed).expect("narrow grants");
    let out = home.run(&["plugins", "list", "--json"]).ok();
    assert!(find(&out.json(), "example-backend").is_none());
    let refused = &out.json()["refused"];
    assert!(refused.to_string().contains("asks for more than was approved"), "{refused}");
    assert!(find(&out.json(), "shell").is_some(), "the bundled components still load");
    assert!(out.stderr.contains("asks for more than was approved") && out.stderr.contains("tmux"), "{}", out.stderr);
}

#[test]
fn a_replaced_or_changed_component_file_does_not_keep_its_approval() {
    let home = Home::new();
    let file = test_component("templates", "example-backend");
    home.run(&["plugins", "install", "--yes", file.to_str().expect("path")]).ok();
    let installed = home.path("components/example-backend.wasm");
    // The attack: another component (which would ask for other grants) put in
    // place of the approved file, under its name.
    std::fs::copy(test_component("templates", "example-hook"), &installed).expect("swap the file");
    let out = home.run(&["plugins", "list", "--json"]).ok();
    assert!(find(&out.json(), "example-backend").is_none() && find(&out.json(), "example-hook").is_none());
    let refused = out.json()["refused"].to_string();
    assert!(
        refused.contains("the approval is for `example-backend`, but this file is now `example-hook`"),
        "{refused}"
    );
    assert!(find(&out.json(), "shell").is_some(), "the bundled components still load");
    // The same component with bytes added (a custom section: still a valid
    // component with the same manifest).
    let mut bytes = std::fs::read(&file).expect("read");
    bytes.extend_from_slice(&[0x00, 0x05, 0x01, b'p', b'x', b'y', b'z']);
    std::fs::write(&installed, &bytes).expect("patch the file");
    let refused = home.run(&["plugins", "list", "--json"]).ok().json()["refused"].to_string();
    assert!(refused.contains("the file changed since it was approved"), "{refused}");
    // Approving it again is the way back.
    home.run(&["plugins", "install", "--yes", file.to_str().expect("path")]).ok();
    assert!(find(&home.run(&["plugins", "list", "--json"]).ok().json(), "example-backend").is_some());
}

#[test]
fn install_refuses_ungranted_imports_and_bundled_ids() {
    let home = Home::new();
    let ungranted = test_component("fixtures", "ungranted");
    let out = home.run(&["plugins", "install", "--yes", ungranted.to_str().expect("path")]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("cannot be installed") && out.stderr.contains("http"), "{}", out.stderr);
    assert!(!home.path("components/ungranted.wasm").exists());
}

/// `cargo` for a crate `plugins new` wrote: offline (the crate must build
/// from the SDK on disk and the registry cache alone), sharing the wasm target
/// dir so std and the SDK's dependencies are built once.
fn cargo_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new("cargo");
    cmd.args(args).current_dir(dir).env("CARGO_NET_OFFLINE", "true");
    if let Some(target) = std::env::var_os("CLAUDERON_WASM_TARGET_DIR") {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    for var in ["RUSTC", "RUSTC_WRAPPER", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET"] {
        cmd.env_remove(var);
    }
    cmd.output().expect("cargo runs")
}

/// An author's first hour: `plugins new` writes a backend that passes its own
/// unit tests (against the SDK's mock host) and builds outside this
/// repository; installed, the daemon runs a session on it, and deletes it.
#[test]
fn plugins_new_writes_a_backend_that_tests_builds_and_runs_a_session() {
    let mut world = clauderon_tests::World::start();
    let home = &world.home;
    let work = tempfile::tempdir().expect("workdir");
    let dir = work.path().join("my-tmux");
    let dir_arg = dir.to_str().expect("path");
    let created = home.run(&["plugins", "new", "--kind", "backend", "my-tmux", dir_arg]).ok();
    assert!(created.stdout.contains("clauderon plugins build"), "it says what to do next: {}", created.stdout);
    let sdk = std::fs::read_dir(home.path("sdk")).expect("the SDK was written").count();
    assert_eq!(sdk, 1, "one copy of the SDK");

    let tested = cargo_in(&dir, &["test", "-q"]);
    let out = String::from_utf8_lossy(&tested.stdout).into_owned() + &String::from_utf8_lossy(&tested.stderr);
    assert!(tested.status.success() && out.contains("4 passed"), "its own tests pass natively: {out}");

    let built = home.run(&["plugins", "build", dir_arg]).ok();
    assert!(built.stdout.contains("built my-tmux (backend"), "{}", built.stdout);
    let wasm = dir.join("target/clauderon/my-tmux.wasm");
    let wasm = wasm.to_str().expect("path");
    home.run(&["plugins", "inspect", wasm]).ok();
    home.run(&["plugins", "install", "--yes", wasm]).ok();
    world.restart_daemon();

    let repo = world.repo.path().to_str().expect("utf-8").to_string();
    let name = clauderon_tests::unique("mine");
    let session = world
        .home
        .run(&["create", "-r", &repo, "-b", "my-tmux", "-a", "shell", "--name", &name, "-p", "sleep 600", "--json"])
        .ok()
        .json();
    assert_eq!(session["status"], "running", "{session}");
    let tmux = |args: &[&str]| std::process::Command::new("tmux").args(["-L", "my-tmux"]).args(args).output();
    let listed = tmux(&["ls", "-F", "#{session_name}"]).expect("tmux");
    let resource = format!("clauderon-{name}");
    assert!(String::from_utf8_lossy(&listed.stdout).lines().any(|l| l == resource), "on its own tmux server");
    world.home.run(&["delete", &name]).ok();
    let listed = tmux(&["ls", "-F", "#{session_name}"]).expect("tmux");
    assert!(!String::from_utf8_lossy(&listed.stdout).contains(&resource), "deleted with its session");
}

/// The author's loop against a running daemon: install loads a new backend,
/// a rebuild replaces it while its session keeps running (no question asked
/// when it asks for nothing new), more grants are asked about, a file the
/// daemon cannot accept leaves the old code running, and remove unloads it
/// once no session uses it — never a restart.
#[test]
fn install_reload_and_remove_act_on_the_running_daemon_while_sessions_keep_running() {
    let world = clauderon_tests::World::start();
    let home = &world.home;
    let work = tempfile::tempdir().expect("workdir");
    let dir = work.path().join("live-tmux");
    let dir_arg = dir.to_str().expect("path");
    home.run(&["plugins", "new", "--kind", "backend", "live-tmux", dir_arg]).ok();
    let wasm = dir.join("target/clauderon/live-tmux.wasm");
    let wasm = wasm.to_str().expect("path");
    let set_description = |text: &str| set_description(&dir, text);
    let loaded = |id: &str| loaded(&world, id);
    set_description("first build");
    home.run(&["plugins", "build", dir_arg]).ok();
    let installed = home.run(&["plugins", "install", "--yes", wasm]).ok();
    assert!(installed.stdout.contains("live-tmux: loaded into the running daemon"), "{}", installed.stdout);
    assert_eq!(loaded("live-tmux").expect("loaded without a restart")["description"], "first build");

    let repo = world.repo.path().to_str().expect("utf-8").to_string();
    let name = clauderon_tests::unique("live");
    let create = ["create", "-r", &repo, "-b", "live-tmux", "-a", "shell", "--name", &name, "-p", "sleep 600"];
    home.run(&create).ok();

    set_description("second build");
    home.run(&["plugins", "build", dir_arg]).ok();
    // No --yes and no terminal: it must not need to ask.
    let replaced = home.run(&["plugins", "install", wasm]).ok();
    assert!(replaced.stdout.contains("nothing beyond the grants you approved before"), "{}", replaced.stdout);
    assert!(replaced.stdout.contains("live-tmux: replaced in the running daemon"), "{}", replaced.stdout);
    assert_eq!(loaded("live-tmux").expect("still loaded")["description"], "second build");
    let (_, session) = world.daemon.http("GET", &format!("/api/sessions/{name}"), None);
    assert_eq!(session["status"], "running", "the session kept running: {session}");
    let (code, _) = world.daemon.http("POST", "/api/reconcile", None);
    assert_eq!(code, 200);
    let (_, session) = world.daemon.http("GET", &format!("/api/sessions/{name}"), None);
    assert_eq!(session["status"], "running", "the new code sees the session: {session}");

    // More grants: asked about, so refused without a terminal.
    let manifest = std::fs::read_to_string(dir.join("component.toml")).expect("component.toml");
    std::fs::write(dir.join("component.toml"), format!("{manifest}http = [\"status.example.com\"]\n")).expect("write");
    home.run(&["plugins", "build", dir_arg]).ok();
    let asked = home.run(&["plugins", "install", wasm]);
    assert_ne!(asked.code, 0);
    assert!(asked.stdout.contains("+ ") && asked.stderr.contains("pass --yes"), "{} {}", asked.stdout, asked.stderr);

    // Bytes the approval is not for: the daemon refuses them and keeps the old code.
    std::fs::copy(test_component("templates", "example-hook"), home.path("components/live-tmux.wasm")).expect("copy");
    let refused = home.run(&["plugins", "reload", "live-tmux"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("the daemon refused"), "{}", refused.stderr);
    assert_eq!(loaded("live-tmux").expect("the old code stays")["description"], "second build");
    home.run(&["plugins", "install", "--yes", wasm]).ok();

    let in_use = home.run(&["plugins", "remove", "live-tmux"]);
    assert!(in_use.code != 0 && in_use.stderr.contains(&name), "{}", in_use.stderr);
    home.run(&["delete", &name]).ok();
    let removed = home.run(&["plugins", "remove", "live-tmux"]).ok();
    assert!(removed.stdout.contains("live-tmux: unloaded from the running daemon"), "{}", removed.stdout);
    assert!(loaded("live-tmux").is_none());
    let listed = home.run(&["plugins", "list", "--json"]).ok();
    assert!(find(&listed.json(), "live-tmux").is_none() && !listed.stderr.contains("not running"));
}

/// The other three kinds: written, their own tests pass, and they build into
/// components clauderon loads as they are.
#[test]
fn plugins_new_writes_every_kind_ready_to_build_and_load() {
    let home = Home::new();
    let work = tempfile::tempdir().expect("workdir");
    for (kind, name) in [("agent", "my-agent"), ("credential-source", "my-creds"), ("hook", "my-hook")] {
        let dir = work.path().join(name);
        let dir_arg = dir.to_str().expect("path");
        home.run(&["plugins", "new", "--kind", kind, name, dir_arg, "--display-name", "Mine"]).ok();
        let tested = cargo_in(&dir, &["test", "-q"]);
        assert!(tested.status.success(), "{kind}: {}", String::from_utf8_lossy(&tested.stderr));
        home.run(&["plugins", "build", dir_arg]).ok();
        let wasm = dir.join(format!("target/clauderon/{name}.wasm"));
        let found = home.run(&["plugins", "inspect", "--json", wasm.to_str().expect("path")]).ok().json();
        assert_eq!((found["manifest"]["id"].as_str(), found["manifest"]["kind"].as_str()), (Some(name), Some(kind)));
    }
    assert_eq!(std::fs::read_dir(home.path("sdk")).expect("sdk").count(), 1, "the SDK is written once");
}

/// A backend that calls `http` without the grant builds with cargo, but
/// `plugins build` refuses it, naming the one line to write in its own
/// component.toml; written, the build passes.
#[test]
fn plugins_build_refuses_an_ungranted_import_and_names_the_line_to_write() {
    let home = Home::new();
    let work = tempfile::tempdir().expect("workdir");
    let dir = work.path().join("calls-out");
    let dir_arg = dir.to_str().expect("path");
    home.run(&["plugins", "new", "--kind", "backend", "calls-out", dir_arg]).ok();
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).expect("lib.rs");
    let old = "    fn status(resource_id: String) -> Result<ResourceStatus> {\n";
    assert!(lib.contains(old), "the template's status()");
    let calls = format!("{old}        http::get(\"https://status.example.com/\")?;\n");
    std::fs::write(dir.join("src/lib.rs"), lib.replace(old, &calls)).expect("write lib.rs");

    let refused = home.run(&["plugins", "build", dir_arg]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(refused.stderr.contains(r#"write `http = ["HOST"]`"#), "{}", refused.stderr);
    assert!(!dir.join("target/clauderon/calls-out.wasm").exists(), "no file left to install by mistake");

    let manifest = std::fs::read_to_string(dir.join("component.toml")).expect("component.toml");
    let fixed = format!("{manifest}{}\n", r#"http = ["status.example.com"]"#);
    std::fs::write(dir.join("component.toml"), fixed).expect("write component.toml");
    home.run(&["plugins", "build", dir_arg]).ok();
    assert!(dir.join("target/clauderon/calls-out.wasm").exists());
}

/// `plugins call` runs one function with the component's real capabilities
/// (here the template backend's tmux) and limits, and reports a wrong
/// function, bad arguments, a panic and a denial as clearly as the daemon.
#[test]
fn plugins_call_runs_one_function_with_real_capabilities_and_says_what_went_wrong() {
    let home = Home::new();
    let backend = test_component("templates", "example-backend");
    let backend = backend.to_str().expect("path");
    let call = |file: &str, args: &[&str]| {
        let mut all = vec!["plugins", "call", "--yes", file];
        all.extend_from_slice(args);
        home.run(&all)
    };
    assert_eq!(call(backend, &["info"]).ok().json()["id"], "example-backend");

    // A real tmux session on the backend's server, seen and then gone.
    let name = clauderon_tests::unique("clauderon-call");
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux").args(["-L", "example-backend"]).args(args).status().expect("tmux")
    };
    assert!(tmux(&["new-session", "-d", "-s", &name, "sleep", "600"]).success());
    let quoted = format!("{name:?}");
    assert_eq!(call(backend, &["status", &quoted]).ok().json()["state"], "Running");
    call(backend, &["delete", &quoted]).ok();
    let gone = call(backend, &["status", &quoted]).ok().json();
    assert_eq!(gone["state"], "Missing", "{gone}");

    let wrong = call(backend, &["stauts"]);
    assert!(wrong.code != 0 && wrong.stderr.contains("it has: info, create, start"), "{}", wrong.stderr);
    let bad = call(backend, &["output", r#"["clauderon-x"]"#]);
    assert!(bad.code != 0 && bad.stderr.contains("`lines: u32` is missing"), "{}", bad.stderr);

    let misbehave = test_component("fixtures", "misbehave");
    let misbehave = misbehave.to_str().expect("path");
    let spec = |name: &str| {
        serde_json::json!({
            "id": "0b7c", "name": name, "resource_name": "clauderon-x", "worktree": "/nonexistent",
            "workdir": "/nonexistent", "access_mode": "ReadOnly",
            "launch": {"argv": ["x"], "env": [], "files": [], "credentials": [], "transcript_path": null},
            "image": null, "cpu_limit": null, "memory_limit": null, "options": []
        })
        .to_string()
    };
    let logged = call(misbehave, &["create", &spec("log-flood")]).ok();
    assert!(logged.stderr.contains("misbehave") && logged.stderr.contains("yyyy"), "its log on stderr");
    let panicked = call(misbehave, &["create", &spec("panic")]);
    assert!(panicked.code != 0 && panicked.stderr.contains("the fixture panicked on purpose"), "{}", panicked.stderr);
    let denied = call(misbehave, &["create", &spec("exec-denied")]);
    let line = r#"write `process = ["true", "echo", "sleep", "sh"]`"#;
    assert!(denied.code != 0 && denied.stderr.contains(line), "{}", denied.stderr);
}

/// A credential source's `get` says a value is there, never what it is.
#[test]
fn plugins_call_never_prints_a_credential() {
    let home = Home::new();
    let source = test_component("templates", "example-credentials");
    let canary = clauderon_tests::canary("NPM_TOKEN");
    let out = home
        .command(&["plugins", "call", "--yes", source.to_str().expect("path"), "get", "\"example\""])
        .env("EXAMPLE_TOKEN", canary)
        .output()
        .expect("run clauderon");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("\"present\": true") && stdout.contains(&format!("\"length\": {}", canary.len())));
    assert!(!stdout.contains(canary) && !stderr.contains(canary), "the value never shows: {stdout} {stderr}");
}

/// Bad names and places are refused before anything is written.
#[test]
fn plugins_new_refuses_bad_names_taken_ids_and_full_directories() {
    let home = Home::new();
    let work = tempfile::tempdir().expect("workdir");
    let at = |d: &str| work.path().join(d).to_str().expect("path").to_string();
    for (name, says) in
        [("My_Plugin", "lowercase letters"), ("9lives", "starting with a letter"), ("zellij", "bundled")]
    {
        let out = home.run(&["plugins", "new", "--kind", "backend", name, &at(name)]);
        assert_ne!(out.code, 0, "{name}");
        assert!(out.stderr.contains(says), "{name}: {}", out.stderr);
        assert!(!work.path().join(name).exists());
    }
    std::fs::create_dir_all(work.path().join("full")).expect("mkdir");
    std::fs::write(work.path().join("full/keep.txt"), "mine").expect("write");
    let out = home.run(&["plugins", "new", "--kind", "hook", "full", &at("full")]);
    assert!(out.code != 0 && out.stderr.contains("is not empty"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(work.path().join("full/keep.txt")).expect("kept"), "mine");
}

#[test]
fn the_api_and_the_cli_list_plugins_in_one_shape() {
    let (home, port) = Home::with_free_port();
    let file = test_component("templates", "example-backend");
    home.run(&["plugins", "install", "--yes", file.to_str().expect("path")]).ok();
    let cli = home.run(&["plugins", "list", "--json"]).ok().json();
    let daemon = home.daemon(port);
    let (code, api) = daemon.http("GET", "/api/plugins", None);
    assert_eq!(code, 200, "{api}");
    assert_eq!(api, cli, "GET /api/plugins and `plugins list --json` differ");
    let mine = find(&api, "example-backend").expect("the installed backend");
    assert_eq!(mine["capabilities"]["process"], serde_json::json!(["tmux"]));
    assert!(mine["grants"].to_string().contains("tmux"), "{mine}");
}

/// A user component's `[requires]` names programs for `doctor` to look for;
/// it is not a grant, so the daemon looks the program up on PATH and never
/// runs it (only programs bundled components name, or that you approved in a
/// `process` grant, are asked for their version). The trap on the daemon's
/// PATH records any run.
#[test]
fn a_user_components_requirement_is_looked_up_but_never_run() {
    let (home, port) = Home::with_free_port();
    home.install_component("fixtures", "path-escape", "");
    let bin = tempfile::tempdir().expect("bin");
    let marker = bin.path().join("ran");
    let trap = bin.path().join("clauderon-trap");
    std::fs::write(&trap, format!("#!/bin/sh\ntouch '{}'\necho trap 1.0\n", marker.display())).expect("trap");
    std::fs::set_permissions(&trap, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default());
    let daemon = home.daemon_with_env(port, &[("PATH", &path)]);
    let (code, report) = daemon.http("GET", "/api/doctor", None);
    assert_eq!(code, 200, "{report}");
    let check = report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["area"] == "agent" && c["name"] == "path-escape").cloned())
        .unwrap_or_else(|| panic!("no check of the user agent: {report}"));
    assert_eq!(check["ok"], true, "found on PATH: {check}");
    assert!(check["detail"].as_str().is_some_and(|d| d.contains("(not run)")), "{check}");
    assert!(!marker.exists(), "the daemon ran a program a user component named");
    // The bundled agents' CLIs are asked (their answer is a version, not a path).
    let claude = report["checks"].as_array().and_then(|c| c.iter().find(|c| c["name"] == "claude-code").cloned());
    assert!(claude.is_some_and(|c| c["detail"].as_str().is_some_and(|d| !d.contains("(not run)"))), "{report}");
}

/// `plugins dev`: the first build is installed into the running daemon, each
/// saved change is rebuilt and replaces it while a session on it keeps
/// running, and a change that does not compile is shown while the daemon
/// keeps the last good build — one process, never a restart.
#[test]
fn plugins_dev_rebuilds_and_reloads_on_every_change_and_survives_a_broken_one() {
    let world = clauderon_tests::World::start();
    let home = &world.home;
    let work = tempfile::tempdir().expect("workdir");
    let dir = work.path().join("dev-tmux");
    let dir_arg = dir.to_str().expect("path");
    home.run(&["plugins", "new", "--kind", "backend", "dev-tmux", dir_arg]).ok();
    let set_description = |text: &str| set_description(&dir, text);
    let loaded = |id: &str| loaded(&world, id);
    set_description("first build");

    let log_path = work.path().join("dev.log");
    let log = std::fs::File::create(&log_path).expect("log");
    /// `plugins dev`, killed if the test fails before it is stopped.
    struct Dev(std::process::Child);
    impl Drop for Dev {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut dev = Dev(home
        .command(&["plugins", "dev", "--yes", dir_arg])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("plugins dev"));
    let said = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let wait_for = |what: &str, times: usize| {
        clauderon_tests::eventually(300, &format!("plugins dev to say {what:?} {times} time(s)"), || {
            let text = said();
            (text.matches(what).count() >= times && text.ends_with("(Ctrl-C to stop).\n")).then_some(text)
        })
    };
    let first = wait_for("Ready in", 1);
    assert!(first.contains("dev-tmux: loaded into the running daemon"), "{first}");
    assert_eq!(loaded("dev-tmux").expect("loaded by plugins dev")["description"], "first build");

    let repo = world.repo.path().to_str().expect("utf-8").to_string();
    let name = clauderon_tests::unique("dev");
    home.run(&["create", "-r", &repo, "-b", "dev-tmux", "-a", "shell", "--name", &name, "-p", "sleep 600"]).ok();

    set_description("second build");
    let second = wait_for("Ready in", 2);
    assert!(second.contains("Changed: component.toml"), "{second}");
    assert!(second.contains("dev-tmux: replaced in the running daemon"), "{second}");
    assert_eq!(loaded("dev-tmux").expect("still loaded")["description"], "second build");

    // A save that does not compile: the compiler's message, and the last good build keeps running.
    let lib = dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).expect("lib.rs");
    std::fs::write(&lib, format!("{source}\nfn half_written( {{\n")).expect("write lib.rs");
    let broken = wait_for("Failed after", 1);
    assert!(broken.contains("src/lib.rs") && broken.contains("error"), "the compiler's error is shown: {broken}");
    assert_eq!(loaded("dev-tmux").expect("kept")["description"], "second build");

    set_description("third build");
    std::fs::write(&lib, &source).expect("write lib.rs");
    wait_for("Ready in", 3);
    assert_eq!(loaded("dev-tmux").expect("still loaded")["description"], "third build");
    let (_, session) = world.daemon.http("GET", &format!("/api/sessions/{name}"), None);
    assert_eq!(session["status"], "running", "the session kept running through every reload: {session}");

    let _ = std::process::Command::new("kill").args(["-INT", &dev.0.id().to_string()]).status();
    let ended = dev.0.wait().expect("plugins dev ends");
    assert!(ended.success(), "Ctrl-C ends plugins dev cleanly: {ended:?}\n{}", said());
    home.run(&["delete", &name]).ok();
}

/// The `sh` blocks of `sdk/README.md`'s "From nothing to a running session",
/// in order: the guide as a person would type it.
fn guide_commands() -> Vec<String> {
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk/README.md")).expect("the guide");
    let start = guide.find("\n## From nothing to a running session\n").expect("the guide's walk-through");
    let section = &guide[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in section.lines() {
        match (in_sh, line.trim_start()) {
            (false, "```sh") => in_sh = true,
            (true, "```") => in_sh = false,
            (true, command) if !command.is_empty() => commands.push(command.to_string()),
            _ => {}
        }
    }
    assert!(!in_sh, "a sh block of the guide is not closed");
    commands
}

/// Issue 17's last promise: the plugin guide works as written. Its commands
/// run in a real terminal as a shell script with `~` a fresh home, the
/// `clauderon` on PATH and a daemon running; questions are answered `y` and
/// the attached session is left with Ctrl-b d, as a person would. From
/// `plugins new` to a session on the new backend, attached to, deleted, and
/// the plugin removed.
#[test]
fn the_plugin_guide_runs_as_written_in_a_terminal() {
    let world = clauderon_tests::World::start();
    let commands = guide_commands();
    for step in ["plugins new", "cargo test", "plugins build", "plugins install", "create", "attach", "plugins remove"]
    {
        assert!(commands.iter().any(|c| c.contains(step)), "the guide shows `{step}`: {commands:?}");
    }
    let person = tempfile::tempdir().expect("a home for the person");
    let home_dir = person.path();
    std::fs::create_dir_all(home_dir.join("src")).expect("~/src");
    std::os::unix::fs::symlink(world.repo.path(), home_dir.join("src/some-repo")).expect("~/src/some-repo");
    // The wasm build cache the guide asks for, shared with the other tests so std is built once.
    std::fs::create_dir_all(home_dir.join(".cache")).expect("~/.cache");
    let wasm_cache = home_dir.join(".cache/clauderon-wasm");
    match std::env::var_os("CLAUDERON_WASM_TARGET_DIR") {
        Some(shared) => std::os::unix::fs::symlink(shared, &wasm_cache).expect("link the wasm cache"),
        None => std::fs::create_dir_all(&wasm_cache).expect("the wasm cache"),
    }
    let bin = home_dir.join("bin");
    std::fs::create_dir_all(&bin).expect("~/bin");
    std::os::unix::fs::symlink(clauderon_tests::clauderon_bin(), bin.join("clauderon")).expect("clauderon on PATH");
    let work = home_dir.join("work");
    std::fs::create_dir_all(&work).expect("~/work");

    let real_home = std::env::var("HOME").expect("HOME");
    let var_or = |name: &str, default: String| std::env::var(name).unwrap_or(default);
    let quoted = |p: &std::path::Path| format!("'{}'", p.display());
    let script = format!(
        "set -eE\ntrap 'echo \"[guide failed at: $BASH_COMMAND]\"; exec sleep 3600' ERR\n\
         export HOME={home} CLAUDERON_HOME={chome} PATH={bin}:\"$PATH\" CARGO_HOME='{cargo}' RUSTUP_HOME='{rustup}'\n\
         export CARGO_NET_OFFLINE=true CARGO_TARGET_DIR={wasm}\n\
         unset RUSTC RUSTC_WRAPPER RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_TARGET CLAUDERON_WASM_TARGET_DIR CLAUDERON_LOG\n\
         cd {work}\nSECONDS=0\nset -x\n{commands}\nset +x\necho \"[guide done in $SECONDS s]\"\nexec sleep 3600\n",
        home = quoted(home_dir),
        chome = quoted(world.home.path("").as_path()),
        bin = quoted(&bin),
        cargo = var_or("CARGO_HOME", format!("{real_home}/.cargo")),
        rustup = var_or("RUSTUP_HOME", format!("{real_home}/.rustup")),
        wasm = quoted(&wasm_cache),
        work = quoted(&work),
        commands = commands.join("\n"),
    );
    let script_path = home_dir.join("guide.sh");
    std::fs::write(&script_path, &script).expect("the script");
    let terminal = clauderon_tests::Terminal::start("plugin-guide", &format!("bash {}", quoted(&script_path)));

    let (mut answered, mut detached, mut saw_hello) = (0, false, false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    let history = loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let screen = terminal.screen();
        let last = screen.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().trim_end().to_string();
        if screen.contains("[guide done in") || screen.contains("[guide failed at") {
            break terminal.history();
        }
        assert!(std::time::Instant::now() < deadline, "the guide did not finish in 10 min:\n{}", terminal.history());
        if last.ends_with("[y/N]") {
            answered += 1;
            terminal.send(&["y", "Enter"]);
            terminal.wait_for(|now| now != screen);
        } else if !detached && terminal.pane("#{alternate_on}") == "1" && screen.contains("hello") {
            // Attached: the session's terminal shows its agent's output. Leave as the guide says.
            saw_hello = true;
            terminal.send(&["C-b", "d"]);
            detached = true;
        }
    };
    println!("{history}");
    assert!(history.contains("[guide done in"), "every command of the guide succeeded:\n{history}");
    assert!(saw_hello && detached, "attach showed the session's own terminal, left with Ctrl-b d");
    assert!(answered >= 3, "the grants were asked about (call twice, install): {answered} questions");
    for said in [
        "4 passed",
        "built my-backend (backend",
        "problems:     none",
        "\"state\": \"Missing\"",
        "my-backend: loaded into the running daemon.",
        "try-it",
        "Removed my-backend.",
        "my-backend: unloaded from the running daemon.",
    ] {
        assert!(history.contains(said), "the guide's run shows {said:?}:\n{history}");
    }
    let header = history.lines().find(|l| l.starts_with("NAME ")).expect("clauderon list's header");
    let row = history.lines().find(|l| l.starts_with("try-it ")).expect("the session in clauderon list");
    assert_eq!(
        header.find("BACKEND"),
        row.find("my-backend"),
        "a long backend name keeps its column:\n{header}\n{row}"
    );
    let (_, list) = world.daemon.http("GET", "/api/sessions", None);
    assert!(!list.to_string().contains("try-it"), "the session was deleted: {list}");
    let took = history.split("[guide done in ").nth(1).and_then(|t| t.split(' ').next()).unwrap_or("?");
    println!("FIGURE plugin guide, `plugins new` to the plugin removed, in a terminal: {took} s");
}

/// Credential sources are the one kind the daemon never swaps live (it reads
/// their variables from its environment when it starts): installing or
/// removing one while it runs succeeds, says a restart takes it up, and
/// changes nothing in the running daemon until then — not reported as a
/// refusal.
#[test]
fn a_credential_source_installed_or_removed_live_waits_for_a_restart() {
    let mut world = clauderon_tests::World::start();
    let file = test_component("templates", "example-credentials");
    let loaded = |world: &clauderon_tests::World| loaded(world, "example-credentials").is_some();
    let installed = world.home.run(&["plugins", "install", "--yes", file.to_str().expect("path")]).ok();
    assert!(
        installed
            .stdout
            .contains("example-credentials: a credential source; the running daemon takes it up when it next starts"),
        "{}",
        installed.stdout
    );
    assert!(!installed.stderr.contains("refused"), "{}", installed.stderr);
    assert!(!loaded(&world), "not swapped into the running daemon");
    let listed = world.home.run(&["plugins", "list"]).ok();
    assert!(!listed.stderr.contains("example-credentials"), "not listed as refused: {}", listed.stderr);

    world.restart_daemon();
    assert!(loaded(&world), "taken up at the next start");
    let removed = world.home.run(&["plugins", "remove", "example-credentials"]).ok();
    assert!(removed.stdout.contains("takes it up when it next starts"), "{}", removed.stdout);
    assert!(loaded(&world), "kept until the restart");
    world.restart_daemon();
    assert!(!loaded(&world), "gone after it");
}
