//! `clauderon plugins …` end to end, with the real binary and built components.

use clauderon_tests::{Home, repo_root, test_component};

fn find<'a>(list: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    list["plugins"].as_array().expect("a JSON array of plugins").iter().find(|p| p["id"] == id)
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

/// The SDK guide's journey: copy a template out of the tree, give it its own
/// id, build it with `clauderon plugins build`, inspect, install, list.
#[test]
fn an_author_builds_installs_and_loads_a_backend_from_the_template() {
    let home = Home::new();
    let work = tempfile::tempdir().expect("workdir");
    let crate_dir = work.path().join("my-backend");
    std::fs::create_dir_all(crate_dir.join("src")).expect("mkdir");
    let template = repo_root().join("sdk/templates/backend");
    std::fs::copy(template.join("src/lib.rs"), crate_dir.join("src/lib.rs")).expect("copy lib.rs");
    let manifest = std::fs::read_to_string(template.join("component.toml")).expect("component.toml");
    std::fs::write(crate_dir.join("component.toml"), manifest.replace("\"example-backend\"", "\"my-backend\""))
        .expect("write component.toml");
    let sdk = repo_root().join("sdk");
    let cargo_toml = format!(
        "[package]\nname = \"my-backend\"\nedition = \"2024\"\nversion = \"0.1.0\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n\
         [dependencies]\nclauderon-sdk = {{ path = {:?} }}\n\n[workspace]\n\n[profile.release]\nopt-level = \"s\"\n\
         lto = true\ncodegen-units = 1\npanic = \"abort\"\nstrip = true\n",
        sdk.display().to_string()
    );
    std::fs::write(crate_dir.join("Cargo.toml"), cargo_toml).expect("write Cargo.toml");

    let built = home.run(&["plugins", "build", crate_dir.to_str().expect("path")]).ok();
    assert!(built.stdout.contains("built my-backend (backend"), "{}", built.stdout);
    let wasm = crate_dir.join("target/clauderon/my-backend.wasm");
    let wasm = wasm.to_str().expect("path");
    // The guide's step 2 has two places to rename; forgetting info()'s is refused, clearly.
    let refused = home.run(&["plugins", "install", "--yes", wasm]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("calls itself `example-backend` in info() but `my-backend`"), "{}", refused.stderr);
    let lib = std::fs::read_to_string(crate_dir.join("src/lib.rs")).expect("lib.rs");
    std::fs::write(crate_dir.join("src/lib.rs"), lib.replace("id: \"example-backend\"", "id: \"my-backend\""))
        .expect("write lib.rs");
    home.run(&["plugins", "build", crate_dir.to_str().expect("path")]).ok();
    home.run(&["plugins", "inspect", wasm]).ok();
    home.run(&["plugins", "install", "--yes", wasm]).ok();
    let list = home.run(&["plugins", "list", "--json"]).ok().json();
    let mine = find(&list, "my-backend").expect("the author's backend is loaded");
    assert_eq!((mine["kind"].as_str(), mine["source"].as_str()), (Some("backend"), Some("user")));
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
