//! The API keeps its contract: schemathesis (from PyPI, installed by `just
//! tools`) reads the daemon's own generated OpenAPI document and throws
//! generated requests at every operation of a live daemon — valid ones and
//! malformed ones. No answer may be a 5xx, and every answer must match the
//! document (status code, content type, body schema).

use std::process::Command;

use clauderon_tests::{Home, git_repo, tools_dir};

/// schemathesis's `st`, from the tools directory `just tools` fills.
fn schemathesis() -> std::path::PathBuf {
    let st = tools_dir().join("py/bin/st");
    assert!(st.exists(), "{} is missing: run `just tools` (it installs schemathesis from PyPI)", st.display());
    st
}

#[test]
fn schemathesis_finds_no_5xx_and_no_answer_outside_the_document() {
    let (home, port) = Home::with_free_port();
    let daemon = home.daemon(port);
    // A real session, so that the per-session operations have one to find.
    let repo = git_repo();
    let body = format!(
        r#"{{"repo": {:?}, "prompt": "true", "backend": "zellij", "agent": "shell", "name": "contract"}}"#,
        repo.path().display().to_string()
    );
    let (code, s) = daemon.http("POST", "/api/sessions", Some(&body));
    assert_eq!(code, 201, "{s}");

    let report = home.path("schemathesis");
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cli/schemathesis.toml");
    let out = Command::new(schemathesis())
        .args(["--config-file", config.to_str().expect("utf-8"), "--no-color"])
        .args(["run", &format!("http://127.0.0.1:{port}/api/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {}", daemon.token)])
        // Every check (schemathesis's default) but where schemathesis.toml says why not.
        .args(["--max-examples", "25", "--seed", "1", "--generation-database", "none"])
        .args(["--report", "junit", "--report-dir", report.to_str().expect("utf-8")])
        // Only this daemon: schemathesis must not wander off loopback.
        .env("NO_PROXY", "*")
        .current_dir(home.path(""))
        .output()
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(out.status.success(), "schemathesis found problems:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    // Every operation it loaded from the document was tested.
    let total = text
        .split_once(" selected / ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok())
        .expect("schemathesis says how many operations the document has");
    assert!(total >= 30 && text.contains(&format!("Tested: {total}")), "schemathesis tested every operation:\n{text}");

    // Its stateful phase may have deleted the session already; remove what is left.
    let (code, list) = daemon.http("GET", "/api/sessions?archived=true", None);
    assert_eq!(code, 200, "the daemon serves on after the run: {list}");
    for s in list.as_array().into_iter().flatten() {
        let id = s["id"].as_str().unwrap_or_default();
        daemon.http("DELETE", &format!("/api/sessions/{id}?force=true"), None);
    }
}
